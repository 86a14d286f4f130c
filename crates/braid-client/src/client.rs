//! [`Client`]: the public API with retries and endpoint failover.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use braid_proto::v1::{self, braid_client::BraidClient};
use braid_types::{limits, ErrorCode};
use rand::Rng;
use tonic::transport::{Channel, Endpoint};

use crate::error::{status_to_error, ClientError};

/// Longest sleep between two attempts of one call.
const BACKOFF_CAP_MS: u64 = 1_000;
/// Pages followed by one listing call before it gives up (guards against a looping server).
const PAGES_MAX: usize = 10_000;
/// HTTP/2 keep-alive, so that a dead node is noticed on an idle connection.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Retry and timeout settings of a [`Client`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// Retries after the first attempt of a call (so at most `retries + 1` attempts).
    pub retries: u32,
    /// Base backoff between attempts; doubles each attempt, with jitter, capped at 1 s.
    pub retry_backoff_ms: u64,
    /// Deadline of each attempt (connection included).
    pub timeout_ms: u64,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            retries: 10,
            retry_backoff_ms: 50,
            timeout_ms: 10_000,
        }
    }
}

/// A handle on a Braid cluster. Cheap to clone; clones share connections and the preferred
/// endpoint.
///
/// Every call is retried (at most [`ClientOptions::retries`] times) on a transport error
/// (connection refused, timeout, HTTP/2 error) and on an API error whose code
/// [`is_retryable`](ErrorCode::is_retryable) (`ServiceUnavailable`, `InternalFailure`,
/// `ProvisionedThroughputExceededException`). Before each retry the client moves to the next
/// endpoint (round-robin) and sleeps an exponential backoff with jitter. All other API errors
/// are returned at once.
///
/// Retries are at-least-once: a write whose answer was lost (timeout, connection reset) may have
/// been applied, so a retried `PutRecord`/`PutRecords` can store a record twice, exactly as with
/// Kinesis. Likewise a retried `CreateStream` may answer `ResourceInUseException`.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    endpoints: Vec<String>,
    targets: Vec<Endpoint>,
    /// Created on first use, so that [`Client::new`] works outside a Tokio runtime.
    channels: Vec<OnceLock<Channel>>,
    /// Index (modulo the endpoint count) of the preferred endpoint.
    current: AtomicUsize,
    options: ClientOptions,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.inner.endpoints)
            .field("options", &self.inner.options)
            .finish()
    }
}

/// Turns `127.0.0.1:7401` or `http://127.0.0.1:7401/` into `http://127.0.0.1:7401`.
pub fn normalize_endpoint(s: &str) -> Result<String, ClientError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ClientError::api(
            ErrorCode::InvalidArgument,
            "empty endpoint",
        ));
    }
    let uri = if let Some(rest) = s.strip_prefix("http://") {
        format!("http://{}", rest.trim_end_matches('/'))
    } else if s.contains("://") {
        return Err(ClientError::api(
            ErrorCode::InvalidArgument,
            format!("unsupported endpoint {s}: only plain http:// (h2c) endpoints are supported"),
        ));
    } else {
        format!("http://{}", s.trim_end_matches('/'))
    };
    if uri == "http://" || uri.contains(char::is_whitespace) {
        return Err(ClientError::api(
            ErrorCode::InvalidArgument,
            format!("invalid endpoint {s}"),
        ));
    }
    Ok(uri)
}

/// The sleep before retry number `attempt + 1`: `base * 2^attempt` capped at 1 s, of which the
/// upper half is scaled by `jitter` (in `[0, 1]`).
pub(crate) fn backoff_delay(base_ms: u64, attempt: u32, jitter: f64) -> Duration {
    let full = base_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(BACKOFF_CAP_MS);
    let half = full / 2;
    let jittered = half + ((full - half) as f64 * jitter.clamp(0.0, 1.0)) as u64;
    Duration::from_millis(jittered)
}

pub(crate) fn random_backoff(base_ms: u64, attempt: u32) -> Duration {
    backoff_delay(base_ms, attempt, rand::thread_rng().gen_range(0.0..=1.0))
}

impl Client {
    /// A client for the given endpoints (`host:port` or `http://host:port`). Connections are
    /// opened lazily on first use; gRPC messages of up to 64 MiB are accepted both ways.
    pub fn new(endpoints: &[String], options: ClientOptions) -> Result<Client, ClientError> {
        let endpoints: Vec<String> = endpoints
            .iter()
            .flat_map(|e| e.split(','))
            .filter(|e| !e.trim().is_empty())
            .map(normalize_endpoint)
            .collect::<Result<_, _>>()?;
        if endpoints.is_empty() {
            return Err(ClientError::api(
                ErrorCode::InvalidArgument,
                "no endpoint given",
            ));
        }
        let timeout = Duration::from_millis(options.timeout_ms.max(1));
        let targets = endpoints
            .iter()
            .map(|uri| {
                Endpoint::from_shared(uri.clone())
                    .map(|e| {
                        e.connect_timeout(timeout)
                            .timeout(timeout)
                            .tcp_nodelay(true)
                            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
                            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
                    })
                    .map_err(|e| {
                        ClientError::api(
                            ErrorCode::InvalidArgument,
                            format!("invalid endpoint {uri}: {e}"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let channels = endpoints.iter().map(|_| OnceLock::new()).collect();
        Ok(Client {
            inner: Arc::new(Inner {
                endpoints,
                targets,
                channels,
                current: AtomicUsize::new(0),
                options,
            }),
        })
    }

    /// The normalised endpoints, in failover order.
    pub fn endpoints(&self) -> &[String] {
        &self.inner.endpoints
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    fn grpc(&self, idx: usize) -> BraidClient<Channel> {
        let channel = self.inner.channels[idx]
            .get_or_init(|| self.inner.targets[idx].connect_lazy())
            .clone();
        BraidClient::new(channel)
            .max_decoding_message_size(limits::GRPC_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(limits::GRPC_MESSAGE_BYTES_MAX)
    }

    /// Runs one RPC with the retry/failover rule of [`Client`].
    async fn call<Req, Resp, F, Fut>(
        &self,
        op: &'static str,
        req: Req,
        f: F,
    ) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(BraidClient<Channel>, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let inner = &self.inner;
        let n = inner.endpoints.len();
        let timeout = Duration::from_millis(inner.options.timeout_ms.max(1));
        let mut attempt = 0u32;
        loop {
            let position = inner.current.load(Ordering::Relaxed);
            let idx = position % n;
            let err = match tokio::time::timeout(timeout, f(self.grpc(idx), req.clone())).await {
                Ok(Ok(resp)) => return Ok(resp.into_inner()),
                Ok(Err(status)) => match status_to_error(&status) {
                    ClientError::Transport(m) => {
                        ClientError::Transport(format!("{}: {m}", inner.endpoints[idx]))
                    }
                    api => api,
                },
                Err(_) => ClientError::Transport(format!(
                    "{}: no answer within {} ms",
                    inner.endpoints[idx], inner.options.timeout_ms
                )),
            };
            if !err.is_retryable() || attempt >= inner.options.retries {
                return Err(err);
            }
            // Fail over, unless a concurrent call already moved the preferred endpoint on.
            let _ = inner.current.compare_exchange(
                position,
                position.wrapping_add(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            let delay = random_backoff(inner.options.retry_backoff_ms, attempt);
            tracing::debug!(op, attempt, endpoint = %inner.endpoints[idx], error = %err, ?delay, "retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    pub async fn create_stream(&self, name: &str, shards: u32) -> Result<(), ClientError> {
        let req = v1::CreateStreamRequest {
            stream_name: name.to_string(),
            shard_count: shards,
        };
        self.call("CreateStream", req, |mut c, r| async move {
            c.create_stream(r).await
        })
        .await?;
        Ok(())
    }

    /// Polls `DescribeStreamSummary` until the stream is `ACTIVE`. A stream that is not (yet)
    /// found is polled again until `timeout`.
    pub async fn wait_active(&self, name: &str, timeout: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(20);
        loop {
            let status = match self.describe_stream_summary(name).await {
                Ok(d) => d.stream_status,
                Err(e) if e.code() == Some(ErrorCode::ResourceNotFound) => {
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    String::from("(not found)")
                }
                Err(e) => return Err(e),
            };
            if status == "ACTIVE" {
                return Ok(());
            }
            if status == "DELETING" {
                return Err(ClientError::api(
                    ErrorCode::ResourceInUse,
                    format!("Stream {name} is being deleted."),
                ));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::api(
                    ErrorCode::Unavailable,
                    format!(
                        "Stream {name} did not become ACTIVE within {timeout:?} (status {status})."
                    ),
                ));
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }

    pub async fn delete_stream(&self, name: &str) -> Result<(), ClientError> {
        let req = v1::DeleteStreamRequest {
            stream_name: name.to_string(),
            ..Default::default()
        };
        self.call("DeleteStream", req, |mut c, r| async move {
            c.delete_stream(r).await
        })
        .await?;
        Ok(())
    }

    /// All stream names, following `has_more_streams`.
    pub async fn list_streams(&self) -> Result<Vec<String>, ClientError> {
        let mut names = Vec::new();
        let mut req = v1::ListStreamsRequest {
            limit: limits::LIST_STREAMS_PAGE_MAX,
            exclusive_start_stream_name: String::new(),
        };
        for _ in 0..PAGES_MAX {
            let resp = self
                .call("ListStreams", req.clone(), |mut c, r| async move {
                    c.list_streams(r).await
                })
                .await?;
            let last = resp.stream_names.last().cloned();
            names.extend(resp.stream_names);
            match last {
                Some(last) if resp.has_more_streams && last != req.exclusive_start_stream_name => {
                    req.exclusive_start_stream_name = last;
                }
                _ if resp.has_more_streams => return Err(no_progress("ListStreams")),
                _ => return Ok(names),
            }
        }
        Err(no_progress("ListStreams"))
    }

    /// The stream's summary (no shards).
    pub async fn describe_stream_summary(
        &self,
        name: &str,
    ) -> Result<v1::StreamDescription, ClientError> {
        let req = v1::DescribeStreamSummaryRequest {
            stream_name: name.to_string(),
            ..Default::default()
        };
        let resp = self
            .call("DescribeStreamSummary", req, |mut c, r| async move {
                c.describe_stream_summary(r).await
            })
            .await?;
        resp.stream_description_summary
            .ok_or_else(|| malformed("DescribeStreamSummary", "no description"))
    }

    /// The stream with all its shards, following `has_more_shards`.
    pub async fn describe_stream(&self, name: &str) -> Result<v1::StreamDescription, ClientError> {
        let mut req = v1::DescribeStreamRequest {
            stream_name: name.to_string(),
            limit: limits::LIST_SHARDS_PAGE_MAX,
            ..Default::default()
        };
        let mut description: Option<v1::StreamDescription> = None;
        for _ in 0..PAGES_MAX {
            let resp = self
                .call("DescribeStream", req.clone(), |mut c, r| async move {
                    c.describe_stream(r).await
                })
                .await?;
            let page = resp
                .stream_description
                .ok_or_else(|| malformed("DescribeStream", "no description"))?;
            let more = page.has_more_shards;
            let last = page.shards.last().map(|s| s.shard_id.clone());
            match description.as_mut() {
                None => description = Some(page),
                Some(d) => d.shards.extend(page.shards),
            }
            match last {
                Some(last) if more && last != req.exclusive_start_shard_id => {
                    req.exclusive_start_shard_id = last
                }
                _ if more => return Err(no_progress("DescribeStream")),
                _ => {
                    let mut d = description.unwrap_or_default();
                    d.has_more_shards = false;
                    return Ok(d);
                }
            }
        }
        Err(no_progress("DescribeStream"))
    }

    /// All shards of the stream (open and closed), following `next_token`.
    pub async fn list_shards(&self, name: &str) -> Result<Vec<v1::Shard>, ClientError> {
        let mut shards = Vec::new();
        let mut req = v1::ListShardsRequest {
            stream_name: name.to_string(),
            max_results: limits::LIST_SHARDS_PAGE_MAX,
            ..Default::default()
        };
        for _ in 0..PAGES_MAX {
            let resp = self
                .call("ListShards", req.clone(), |mut c, r| async move {
                    c.list_shards(r).await
                })
                .await?;
            shards.extend(resp.shards);
            if resp.next_token.is_empty() {
                return Ok(shards);
            }
            if resp.next_token == req.next_token {
                return Err(no_progress("ListShards"));
            }
            // As in Kinesis, a request with a NextToken names no stream.
            req = v1::ListShardsRequest {
                next_token: resp.next_token,
                max_results: limits::LIST_SHARDS_PAGE_MAX,
                ..Default::default()
            };
        }
        Err(no_progress("ListShards"))
    }

    /// Puts one record. A retry after a lost answer may store the record twice (see [`Client`]).
    pub async fn put_record(
        &self,
        stream: &str,
        key: &str,
        data: Vec<u8>,
        explicit_hash_key: Option<String>,
    ) -> Result<v1::PutRecordResponse, ClientError> {
        let req = v1::PutRecordRequest {
            stream_name: stream.to_string(),
            data,
            partition_key: key.to_string(),
            explicit_hash_key: explicit_hash_key.unwrap_or_default(),
            ..Default::default()
        };
        self.call(
            "PutRecord",
            req,
            |mut c, r| async move { c.put_record(r).await },
        )
        .await
    }

    /// Puts a batch of records. Per-record failures are reported in the response entries
    /// (`error_code`), not as an error; the whole call is retried only when it failed as a whole.
    /// A retry after a lost answer may store records twice (see [`Client`]).
    pub async fn put_records(
        &self,
        stream: &str,
        entries: Vec<v1::PutRecordsRequestEntry>,
    ) -> Result<v1::PutRecordsResponse, ClientError> {
        let req = v1::PutRecordsRequest {
            stream_name: stream.to_string(),
            records: entries,
            ..Default::default()
        };
        self.call("PutRecords", req, |mut c, r| async move {
            c.put_records(r).await
        })
        .await
    }

    /// A shard iterator. `sequence_number` is used by `AT_SEQUENCE_NUMBER` and
    /// `AFTER_SEQUENCE_NUMBER`, `timestamp_ms` by `AT_TIMESTAMP`.
    pub async fn get_shard_iterator(
        &self,
        stream: &str,
        shard_id: &str,
        kind: v1::ShardIteratorType,
        sequence_number: Option<String>,
        timestamp_ms: Option<i64>,
    ) -> Result<String, ClientError> {
        let req = v1::GetShardIteratorRequest {
            stream_name: stream.to_string(),
            shard_id: shard_id.to_string(),
            shard_iterator_type: kind as i32,
            starting_sequence_number: sequence_number.unwrap_or_default(),
            timestamp_ms: timestamp_ms.unwrap_or_default(),
            ..Default::default()
        };
        let resp = self
            .call("GetShardIterator", req, |mut c, r| async move {
                c.get_shard_iterator(r).await
            })
            .await?;
        Ok(resp.shard_iterator)
    }

    /// Reads records at `iterator`; `limit` 0 means the server's maximum (10,000).
    pub async fn get_records(
        &self,
        iterator: &str,
        limit: u32,
    ) -> Result<v1::GetRecordsResponse, ClientError> {
        self.get_records_wait(iterator, limit, 0).await
    }

    /// GetRecords with Braid's long poll: at the tip of an open shard the server waits up to
    /// `wait_ms` (at most 1,000) for records before answering.
    pub async fn get_records_wait(
        &self,
        iterator: &str,
        limit: u32,
        wait_ms: u32,
    ) -> Result<v1::GetRecordsResponse, ClientError> {
        let req = v1::GetRecordsRequest {
            shard_iterator: iterator.to_string(),
            limit,
            wait_ms,
            ..Default::default()
        };
        self.call("GetRecords", req, |mut c, r| async move {
            c.get_records(r).await
        })
        .await
    }

    pub async fn cluster_status(&self) -> Result<v1::ClusterStatusResponse, ClientError> {
        self.call(
            "ClusterStatus",
            v1::ClusterStatusRequest {},
            |mut c, r| async move { c.cluster_status(r).await },
        )
        .await
    }
}

fn malformed(op: &str, what: &str) -> ClientError {
    ClientError::api(
        ErrorCode::InternalFailure,
        format!("malformed {op} response: {what}"),
    )
}

fn no_progress(op: &str) -> ClientError {
    ClientError::api(
        ErrorCode::InternalFailure,
        format!("{op} pagination made no progress"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:7401").unwrap(),
            "http://127.0.0.1:7401"
        );
        assert_eq!(
            normalize_endpoint(" http://127.0.0.1:7401/ ").unwrap(),
            "http://127.0.0.1:7401"
        );
        assert_eq!(
            normalize_endpoint("localhost:1").unwrap(),
            "http://localhost:1"
        );
        assert!(normalize_endpoint("").is_err());
        assert!(normalize_endpoint("http://").is_err());
        assert!(normalize_endpoint("https://x:1").is_err());
        assert!(normalize_endpoint("a b:1").is_err());
    }

    #[test]
    fn new_splits_commas_and_rejects_empty() {
        let c = Client::new(
            &[
                "127.0.0.1:1, http://127.0.0.1:2".to_string(),
                "127.0.0.1:3".into(),
            ],
            ClientOptions::default(),
        )
        .unwrap();
        assert_eq!(
            c.endpoints(),
            [
                "http://127.0.0.1:1",
                "http://127.0.0.1:2",
                "http://127.0.0.1:3"
            ]
        );
        assert!(Client::new(&[], ClientOptions::default()).is_err());
        assert!(Client::new(&[" , ".to_string()], ClientOptions::default()).is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_delay(50, 0, 1.0), Duration::from_millis(50));
        assert_eq!(backoff_delay(50, 0, 0.0), Duration::from_millis(25));
        assert_eq!(backoff_delay(50, 3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff_delay(50, 10, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff_delay(50, 60, 0.0), Duration::from_millis(500));
        for attempt in 0..40 {
            let d = random_backoff(50, attempt);
            assert!(d <= Duration::from_millis(BACKOFF_CAP_MS));
        }
    }

    #[tokio::test]
    async fn unreachable_endpoints_fail_fast_with_transport_error() {
        let options = ClientOptions {
            retries: 2,
            retry_backoff_ms: 1,
            timeout_ms: 2_000,
        };
        let c = Client::new(
            &["127.0.0.1:1".to_string(), "127.0.0.1:2".to_string()],
            options,
        )
        .unwrap();
        let started = Instant::now();
        let err = c.list_streams().await.unwrap_err();
        assert!(matches!(err, ClientError::Transport(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        // Three attempts (endpoints 1, 2, 1): the preferred endpoint moved after each failed one
        // that was followed by a retry.
        assert_eq!(c.inner.current.load(Ordering::Relaxed), 2);
    }
}
