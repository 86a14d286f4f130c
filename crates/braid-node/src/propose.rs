//! Group commit within a shard: concurrent writes to one shard share one Raft entry.
//!
//! Every Raft entry costs a log frame, a replication message and an fsync on every replica (the
//! flusher shares fsyncs, but the entries still queue behind one another), so the leader's
//! [`Proposer`] keeps at most [`SHARD_PROPOSALS_IN_FLIGHT_MAX`] entries in the Raft core; the
//! writes that arrive meanwhile wait in a bounded queue and go out together, as one `Put` entry,
//! when a slot frees up. Each caller then gets its own slice of the entry:
//! `(index, first .. first + count)`.
//!
//! Invariants:
//! - Order: calls enter the queue in the order they arrive and leave it in that order; one task
//!   submits entries with `client_write_ff`, which hands them to the Raft core in submission
//!   order. So per-key order holds for callers that wait for each acknowledgement.
//! - An entry holds at most [`ENTRY_RECORDS_MAX`] records and [`PUT_RECORDS_BYTES_MAX`] bytes of
//!   keys and data, so it always fits [`braid_types::limits::ENTRY_BYTES_MAX`]. A call is never
//!   split over two entries.
//! - Arrival times are stamped here, on the leader, and never go backwards within a shard
//!   (AT_TIMESTAMP's binary search relies on it): a stamp is at least the newest timestamp in
//!   the replica's log, which holds every entry of earlier leaders that may be committed.
//! - A slot is held at most [`SHARD_WRITE_CONFIRM_MS_MAX`]: openraft answers an entry only
//!   when it is applied or discarded, and an ex-leader's entry may be neither for long; its
//!   callers then learn that the outcome is unknown.
//! - openraft 0.10 refuses writes (before appending them) on a leader that heard from no quorum
//!   within its lease, and a quiesced group sends no heartbeats, so its lease has always lapsed
//!   when its first write in a while arrives. Before it submits an entry, the proposer task
//!   itself renews a lease older than half its length (restarts the ticks, heartbeats, waits for
//!   a quorum's answer): in line, so entries keep their order and their arrival stamps. A write
//!   refused anyway comes back as `NotLeader` (nothing was written) and the router retries it.
//! - All calls in one entry share its outcome: committed, or not (then each caller gets the
//!   error and nothing of theirs is acknowledged).

use std::sync::Arc;

use braid_raft::records::{RecordBatch, RECORD_OVERHEAD_BYTES};
use braid_raft::shard::{ShardRaft, ShardRequest, ShardResponse, ShardState};
use braid_raft::state_machine::SmHandle;
use braid_storage::SegmentLog;
use braid_types::limits::{
    ENTRY_RECORDS_MAX, PUT_RECORDS_BYTES_MAX, SHARD_PROPOSALS_IN_FLIGHT_MAX,
    SHARD_WRITES_QUEUED_MAX, SHARD_WRITE_CONFIRM_MS_MAX,
};
use braid_types::{GroupId, NodeId};
use openraft::async_runtime::WatchReceiver;
use openraft::error::ClientWriteError;
use openraft::impls::ProgressResponder;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::node::now_ms;

/// What became of one call.
#[derive(Debug)]
pub enum Outcome {
    /// Committed and applied; for a `Put`, the caller's records are at
    /// `(index, first .. first + count)`.
    Written(ShardResponse),
    /// This replica does not lead the group (nothing was written); `leader` is its hint.
    NotLeader(Option<NodeId>),
    /// The write may or may not have been committed.
    Failed(String),
}

struct Pending {
    req: ShardRequest,
    reply: oneshot::Sender<Outcome>,
}

impl Pending {
    /// (records, bytes of keys and data) if this is a `Put`.
    fn put_size(&self) -> Option<(usize, usize)> {
        match &self.req {
            ShardRequest::Put { records, .. } => {
                let n = records.len() as usize;
                Some((n, records.bytes() - n * RECORD_OVERHEAD_BYTES))
            }
            ShardRequest::Seal { .. } => None,
        }
    }
}

/// The write queue in front of one shard group's Raft core.
pub struct Proposer {
    tx: mpsc::Sender<Pending>,
}

impl Proposer {
    /// Starts the group's proposer task; it ends when the `Proposer` is dropped.
    pub fn spawn(
        group: GroupId,
        raft: ShardRaft,
        sm: SmHandle<ShardState>,
        log: Arc<SegmentLog>,
        lease: Duration,
    ) -> Proposer {
        let (tx, rx) = mpsc::channel(SHARD_WRITES_QUEUED_MAX);
        tokio::spawn(run(group, raft, sm, log, lease, rx));
        Proposer { tx }
    }

    /// Queues a write and waits for its outcome. A full queue makes the caller wait (it is
    /// bounded by [`SHARD_WRITES_QUEUED_MAX`] calls).
    pub async fn write(&self, req: ShardRequest) -> Outcome {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Pending { req, reply }).await.is_err() {
            return Outcome::NotLeader(None);
        }
        rx.await
            .unwrap_or_else(|_| Outcome::Failed("the shard's proposer stopped".into()))
    }
}

async fn run(
    group: GroupId,
    raft: ShardRaft,
    sm: SmHandle<ShardState>,
    log: Arc<SegmentLog>,
    lease: Duration,
    mut rx: mpsc::Receiver<Pending>,
) {
    let slots = Arc::new(Semaphore::new(SHARD_PROPOSALS_IN_FLIGHT_MAX));
    let mut carry: Option<Pending> = None;
    let mut last_arrival_ms = 0u64;
    loop {
        // Take a slot first: everything that queues while the slots are busy joins one entry.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carry.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let size = first.put_size();
        if let Some((n, bytes)) = size.filter(|&(n, bytes)| {
            n > ENTRY_RECORDS_MAX || bytes > PUT_RECORDS_BYTES_MAX + PUT_RECORD_SLACK_BYTES
        }) {
            // The API never builds such a call; a peer's bug must not commit an entry that
            // every replica would refuse to apply.
            let _ = first.reply.send(Outcome::Failed(format!(
                "a write of {n} records and {bytes} bytes is above one entry's limits"
            )));
            drop(slot);
            continue;
        }
        let mut batch = vec![first];
        if let Some((mut n, mut bytes)) = size {
            while let Ok(p) = rx.try_recv() {
                match p.put_size() {
                    Some((pn, pb))
                        if n + pn <= ENTRY_RECORDS_MAX && bytes + pb <= PUT_RECORDS_BYTES_MAX =>
                    {
                        n += pn;
                        bytes += pb;
                        batch.push(p);
                    }
                    _ => {
                        carry = Some(p);
                        break;
                    }
                }
            }
        }

        ensure_lease(&raft, lease).await;
        // One entry for the whole batch; remember each caller's slice.
        let mut replies = Vec::with_capacity(batch.len());
        let req = if matches!(batch[0].req, ShardRequest::Seal { .. }) {
            let p = batch.pop().expect("one seal");
            replies.push((p.reply, 0u32));
            p.req
        } else {
            last_arrival_ms = last_arrival_ms
                .max(now_ms())
                .max(sm.read(|s| s.last_arrival_ms))
                .max(log.last_timestamp_ms());
            let mut records = RecordBatch::default();
            for p in batch {
                let ShardRequest::Put { records: r, .. } = p.req else {
                    unreachable!("only puts are merged");
                };
                replies.push((p.reply, r.len()));
                records.extend(r);
            }
            debug_assert!(records.len() as usize <= ENTRY_RECORDS_MAX);
            ShardRequest::Put {
                arrival_ms: last_arrival_ms,
                records,
            }
        };

        match submit(&raft, req).await {
            Err(fatal) => {
                for (reply, _) in replies {
                    let _ = reply.send(Outcome::Failed(format!("shard {group} stopped: {fatal}")));
                }
            }
            Ok(done) => {
                tokio::spawn(async move {
                    let confirm = Duration::from_millis(SHARD_WRITE_CONFIRM_MS_MAX);
                    let res = tokio::time::timeout(confirm, done).await;
                    drop(slot);
                    match res {
                        Ok(res) => distribute(res, replies),
                        Err(_) => {
                            for (reply, _) in replies {
                                let _ = reply.send(Outcome::Failed(format!(
                                    "write not confirmed within {SHARD_WRITE_CONFIRM_MS_MAX} ms"
                                )));
                            }
                        }
                    }
                });
            }
        }
    }
}

type Confirmation = oneshot::Receiver<WriteResult>;

/// Hands one entry to the Raft core; the receiver yields its outcome.
async fn submit(
    raft: &ShardRaft,
    req: ShardRequest,
) -> Result<Confirmation, openraft::error::Fatal<braid_raft::shard::ShardTypeConfig>> {
    let (responder, done) = ProgressResponder::complete_only();
    raft.client_write_ff(req, Some(responder)).await?;
    Ok(done)
}

/// Renews this leader's lease if a quorum last acknowledged it more than half a lease ago (a
/// quiesced group: no heartbeats), so that openraft does not refuse the next entry.
async fn ensure_lease(raft: &ShardRaft, lease: Duration) {
    let stale = {
        let m = raft.metrics();
        let m = m.borrow_watched();
        m.state == openraft::ServerState::Leader
            && m.last_quorum_acked
                .as_ref()
                .is_none_or(|at| openraft::Instant::elapsed(&**at) >= lease / 2)
    };
    if stale {
        renew_lease(raft).await;
    }
}

/// Restarts a leader's ticks and heartbeats and waits (boundedly) until a quorum has
/// acknowledged one, or this replica stopped leading. If that fails, openraft refuses the next
/// entry and its callers retry through the router.
async fn renew_lease(raft: &ShardRaft) {
    let before = raft.metrics().borrow_watched().last_quorum_acked;
    raft.runtime_config().tick(true);
    if raft.trigger().heartbeat().await.is_err() {
        return;
    }
    let _ = raft
        .wait(Some(Duration::from_millis(
            braid_types::limits::SHARD_LEASE_RENEW_MS_MAX,
        )))
        .metrics(
            |m| m.state != openraft::ServerState::Leader || m.last_quorum_acked != before,
            "quorum acknowledged a heartbeat",
        )
        .await;
}

/// A single call may carry one record of the largest size plus its key, a little above
/// [`PUT_RECORDS_BYTES_MAX`] (see the limits' assertions); merging stays within the limit.
const PUT_RECORD_SLACK_BYTES: usize = braid_types::limits::PARTITION_KEY_CHARS_MAX * 4;

type WriteResult = Result<
    openraft::raft::ClientWriteResponse<braid_raft::shard::ShardTypeConfig>,
    ClientWriteError<braid_raft::shard::ShardTypeConfig>,
>;

/// Hands each caller its slice of the entry's outcome.
fn distribute(
    res: Result<WriteResult, oneshot::error::RecvError>,
    replies: Vec<(oneshot::Sender<Outcome>, u32)>,
) {
    match res {
        Ok(Ok(r)) => match r.data {
            ShardResponse::Appended {
                index,
                first,
                count,
                arrival_ms,
            } => {
                debug_assert_eq!(count, replies.iter().map(|(_, n)| n).sum::<u32>());
                let mut at = first;
                for (reply, n) in replies {
                    let _ = reply.send(Outcome::Written(ShardResponse::Appended {
                        index,
                        first: at,
                        count: n,
                        arrival_ms,
                    }));
                    at += n;
                }
            }
            other => {
                for (reply, _) in replies {
                    let _ = reply.send(Outcome::Written(other.clone()));
                }
            }
        },
        // Refused before it was appended: nothing was written.
        Ok(Err(ClientWriteError::ForwardToLeader(f))) => {
            for (reply, _) in replies {
                let _ = reply.send(Outcome::NotLeader(f.leader_id));
            }
        }
        // Anything else, `LogEntryDiscarded` among it (appended, then discarded by a leader
        // change: it may have been committed elsewhere), leaves the outcome unknown.
        Ok(Err(e)) => {
            for (reply, _) in replies {
                let _ = reply.send(Outcome::Failed(format!("write not confirmed: {e}")));
            }
        }
        Err(_) => {
            for (reply, _) in replies {
                let _ = reply.send(Outcome::Failed(
                    "write not confirmed: the Raft core dropped it".into(),
                ));
            }
        }
    }
}
