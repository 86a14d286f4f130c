//! [`Producer`]: packs single records into `PutRecords` calls.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use braid_proto::v1;
use braid_types::{limits, ErrorCode};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::batcher::{entry_bytes, BatchLimits, Batcher};
use crate::client::{random_backoff, Client};
use crate::error::ClientError;

/// Settings of a [`Producer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Records per `PutRecords` call (at most 500).
    pub batch_records_max: usize,
    /// Bytes (data plus partition keys) per `PutRecords` call (at most 5 MiB).
    pub batch_bytes_max: usize,
    /// How long a record may wait for more records to fill its batch.
    pub linger_ms: u64,
    /// `PutRecords` calls in flight at once.
    pub in_flight_batches_max: usize,
    /// Records queued in front of the batching task; `send` waits when the queue is full.
    pub queue_records_max: usize,
    /// `PutRecords` attempts of one record that keeps failing with a retryable per-record error
    /// (e.g. `ProvisionedThroughputExceededException`) before its error is returned.
    pub record_attempts_max: u32,
}

impl Default for ProducerConfig {
    fn default() -> ProducerConfig {
        ProducerConfig {
            batch_records_max: limits::PUT_RECORDS_COUNT_MAX,
            // Slack below the 5 MiB limit, so that a full batch is never rejected for its size.
            batch_bytes_max: limits::PUT_RECORDS_BYTES_MAX - 64 * 1024,
            linger_ms: 5,
            in_flight_batches_max: 8,
            queue_records_max: 10_000,
            record_attempts_max: 10,
        }
    }
}

/// Where a record was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutOutcome {
    pub shard_id: String,
    pub sequence_number: String,
}

/// The pending result of one record handed to [`Producer::submit`].
#[derive(Debug)]
pub struct PutTicket {
    rx: oneshot::Receiver<Result<PutOutcome, ClientError>>,
}

impl Future for PutTicket {
    type Output = Result<PutOutcome, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(closed_error())))
    }
}

fn closed_error() -> ClientError {
    ClientError::api(ErrorCode::InvalidArgument, "the producer is closed")
}

/// Counts records accepted but not yet resolved; flush waits for zero.
struct Shared {
    outstanding: AtomicUsize,
    idle: Notify,
}

/// Held by every accepted record; dropping it (after the reply, or when the record is dropped
/// for any other reason) marks the record resolved.
struct Outstanding(Arc<Shared>);

impl Outstanding {
    fn new(shared: &Arc<Shared>) -> Outstanding {
        shared.outstanding.fetch_add(1, Ordering::SeqCst);
        Outstanding(shared.clone())
    }
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        if self.0.outstanding.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

struct Pending {
    entry: v1::PutRecordsRequestEntry,
    /// `PutRecords` calls that carried this record so far.
    attempts: u32,
    /// When the batching task took the record (the linger clock).
    enqueued: Instant,
    reply: oneshot::Sender<Result<PutOutcome, ClientError>>,
    _outstanding: Outstanding,
}

enum Msg {
    Record(Pending),
    Flush,
    Close,
}

/// A batching producer for one stream.
///
/// Records go through a bounded queue to a background task that packs them into `PutRecords`
/// calls (at most [`ProducerConfig::batch_records_max`] records and
/// [`ProducerConfig::batch_bytes_max`] bytes, waiting at most [`ProducerConfig::linger_ms`] for a
/// batch to fill), with at most [`ProducerConfig::in_flight_batches_max`] calls in flight. Each
/// record resolves with its own result. Records failing with a retryable per-record error are
/// sent again in a later batch, after a backoff, up to [`ProducerConfig::record_attempts_max`]
/// times.
///
/// Delivery is at-least-once (a retried call may store records twice), and a retried record can
/// land after records of the same partition key that were sent later, as with Kinesis
/// `PutRecords`. Send one record at a time with [`Client::put_record`] if strict per-key order
/// matters.
///
/// Must be created inside a Tokio runtime. Dropping the producer without [`close`](Self::close)
/// still sends every accepted record, in the background.
pub struct Producer {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Producer {
    pub fn new(client: Client, stream: impl Into<String>, config: ProducerConfig) -> Producer {
        let (tx, rx) = mpsc::channel(config.queue_records_max.max(1));
        let shared = Arc::new(Shared {
            outstanding: AtomicUsize::new(0),
            idle: Notify::new(),
        });
        let task = tokio::spawn(run(client, Arc::from(stream.into()), config, rx));
        Producer {
            tx,
            shared,
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues a record (waiting while the queue is full) and returns a ticket that resolves with
    /// the record's own result.
    pub async fn submit(
        &self,
        key: String,
        data: impl Into<bytes::Bytes>,
    ) -> Result<PutTicket, ClientError> {
        self.submit_entry(v1::PutRecordsRequestEntry {
            data: data.into(),
            partition_key: key,
            explicit_hash_key: String::new(),
        })
        .await
    }

    /// [`submit`](Self::submit) with a full entry (for an explicit hash key).
    pub async fn submit_entry(
        &self,
        entry: v1::PutRecordsRequestEntry,
    ) -> Result<PutTicket, ClientError> {
        let (reply, rx) = oneshot::channel();
        let pending = Pending {
            entry,
            attempts: 0,
            enqueued: Instant::now(),
            reply,
            _outstanding: Outstanding::new(&self.shared),
        };
        self.tx
            .send(Msg::Record(pending))
            .await
            .map_err(|_| closed_error())?;
        Ok(PutTicket { rx })
    }

    /// Sends one record and waits for its result.
    pub async fn send(
        &self,
        key: String,
        data: impl Into<bytes::Bytes>,
    ) -> Result<PutOutcome, ClientError> {
        self.submit(key, data).await?.await
    }

    /// Sends everything queued at once (without lingering) and waits until every accepted record
    /// has its result, including records submitted concurrently with the flush.
    pub async fn flush(&self) {
        let _ = self.tx.send(Msg::Flush).await;
        loop {
            let notified = self.shared.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.outstanding.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Records accepted and not yet resolved.
    pub fn outstanding(&self) -> usize {
        self.shared.outstanding.load(Ordering::SeqCst)
    }

    /// Sends every accepted record, waits for all results and stops the background task. Later
    /// `send`s fail.
    pub async fn close(&self) {
        let _ = self.tx.send(Msg::Close).await;
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "producer task failed");
            }
        }
        self.flush().await;
    }
}

async fn run(
    client: Client,
    stream: Arc<str>,
    config: ProducerConfig,
    mut rx: mpsc::Receiver<Msg>,
) {
    let mut batcher: Batcher<Pending> = Batcher::new(BatchLimits {
        records_max: config.batch_records_max,
        bytes_max: config.batch_bytes_max,
    });
    let in_flight_max = config.in_flight_batches_max.max(1);
    // Records held by the batcher before the queue is left to fill (and push back on senders).
    let buffer_max = batcher.limits().records_max * 2;
    let linger = Duration::from_millis(config.linger_ms);
    let backoff_ms = client.options().retry_backoff_ms;
    let attempts_max = config.record_attempts_max.max(1);
    let mut in_flight: JoinSet<Vec<Pending>> = JoinSet::new();
    let mut force = false;
    let mut closing = false;
    loop {
        while in_flight.len() < in_flight_max && !batcher.is_empty() {
            let lingered = batcher
                .front()
                .is_some_and(|p| p.enqueued + linger <= Instant::now());
            if !(force || closing || lingered || batcher.has_full_batch()) {
                break;
            }
            let batch = batcher.take_batch();
            in_flight.spawn(send_batch(
                client.clone(),
                stream.clone(),
                batch,
                backoff_ms,
                attempts_max,
            ));
        }
        if batcher.is_empty() {
            force = false;
            if closing && in_flight.is_empty() {
                return;
            }
        }
        let linger_deadline = match batcher.front() {
            Some(p) if in_flight.len() < in_flight_max => Some(p.enqueued + linger),
            _ => None,
        };
        let can_receive = !closing && batcher.len() < buffer_max;
        tokio::select! {
            msg = rx.recv(), if can_receive => match msg {
                Some(Msg::Record(mut p)) => {
                    p.enqueued = Instant::now();
                    let bytes = entry_bytes(&p.entry);
                    batcher.push_back(p, bytes);
                }
                Some(Msg::Flush) => force = true,
                Some(Msg::Close) | None => {
                    closing = true;
                    rx.close();
                    while let Ok(msg) = rx.try_recv() {
                        if let Msg::Record(mut p) = msg {
                            p.enqueued = Instant::now();
                            let bytes = entry_bytes(&p.entry);
                            batcher.push_back(p, bytes);
                        }
                    }
                }
            },
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => match joined {
                Ok(retries) => {
                    for p in retries.into_iter().rev() {
                        let bytes = entry_bytes(&p.entry);
                        batcher.push_front(p, bytes);
                    }
                }
                Err(e) => tracing::error!(error = %e, "producer batch task failed"),
            },
            _ = tokio::time::sleep_until(linger_deadline.unwrap_or_else(Instant::now)), if linger_deadline.is_some() => {}
            else => return,
        }
    }
}

/// Sends one batch and resolves its records; returns those to retry (after sleeping a backoff).
async fn send_batch(
    client: Client,
    stream: Arc<str>,
    batch: Vec<Pending>,
    backoff_ms: u64,
    attempts_max: u32,
) -> Vec<Pending> {
    let entries: Vec<v1::PutRecordsRequestEntry> = batch.iter().map(|p| p.entry.clone()).collect();
    let count = batch.len();
    let mut retries = Vec::new();
    match client.put_records(&stream, entries).await {
        Ok(resp) if resp.records.len() == count => {
            for (mut p, r) in batch.into_iter().zip(resp.records) {
                p.attempts += 1;
                if r.error_code.is_empty() {
                    let _ = p.reply.send(Ok(PutOutcome {
                        shard_id: r.shard_id,
                        sequence_number: r.sequence_number,
                    }));
                    continue;
                }
                let (code, message) = match ErrorCode::from_kinesis_name(&r.error_code) {
                    Some(code) => (code, r.error_message),
                    None => (
                        ErrorCode::InternalFailure,
                        format!("{}: {}", r.error_code, r.error_message),
                    ),
                };
                if code.is_retryable() && p.attempts < attempts_max {
                    retries.push(p);
                } else {
                    let _ = p.reply.send(Err(ClientError::api(code, message)));
                }
            }
        }
        Ok(resp) => {
            let e = ClientError::api(
                ErrorCode::InternalFailure,
                format!(
                    "malformed PutRecords response: {} results for {count} records",
                    resp.records.len()
                ),
            );
            for p in batch {
                let _ = p.reply.send(Err(e.clone()));
            }
        }
        Err(e) => {
            for p in batch {
                let _ = p.reply.send(Err(e.clone()));
            }
        }
    }
    if let Some(attempts) = retries.iter().map(|p| p.attempts).max() {
        tokio::time::sleep(random_backoff(backoff_ms, attempts.saturating_sub(1))).await;
    }
    retries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientOptions;

    fn unreachable_client() -> Client {
        let options = ClientOptions {
            retries: 0,
            retry_backoff_ms: 1,
            timeout_ms: 1_000,
            ..ClientOptions::default()
        };
        Client::new(&["127.0.0.1:1".to_string()], options).unwrap()
    }

    #[tokio::test]
    async fn records_resolve_with_errors_when_unreachable_and_flush_returns() {
        let p = Producer::new(unreachable_client(), "s", ProducerConfig::default());
        let mut tickets = Vec::new();
        for i in 0..1_200 {
            tickets.push(p.submit(format!("k{i}"), vec![1, 2, 3]).await.unwrap());
        }
        p.flush().await;
        assert_eq!(p.outstanding(), 0);
        for t in tickets {
            assert!(matches!(t.await, Err(ClientError::Transport(_))));
        }
        p.close().await;
        let err = p.send("k".into(), vec![]).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidArgument));
    }

    #[tokio::test]
    async fn dropping_the_producer_still_resolves_tickets() {
        let p = Producer::new(
            unreachable_client(),
            "s",
            ProducerConfig {
                linger_ms: 10_000,
                ..Default::default()
            },
        );
        let t = p.submit("k".into(), b"x".to_vec()).await.unwrap();
        drop(p);
        assert!(t.await.is_err());
    }
}
