//! The network of every group: one [`RaftTransport`] per node, shared by all groups; each
//! message names its group. The node implements the transport over its internal gRPC service
//! (one HTTP/2 connection per peer, multiplexing all groups).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use braid_types::limits::RAFT_TIMEOUTS_BEFORE_UNREACHABLE;

use std::future::Future;
use std::io::Cursor;

use futures::future::BoxFuture;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::Raft;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{codec, BraidTypeConfig, NodeInfo, SnapshotMeta, Vote};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaftKind {
    AppendEntries,
    /// An AppendEntries without entries: latency-tolerant, so transports may coalesce them.
    Heartbeat,
    Vote,
    /// A whole snapshot in one message (the control group's catalog; shards never snapshot).
    InstallSnapshot,
    /// The leader hands its leadership to the receiver (or tells the others it does).
    TransferLeader,
}

/// What [`RaftKind::InstallSnapshot`] carries.
#[derive(Serialize, Deserialize)]
struct SnapshotMessage {
    vote: Vote,
    meta: SnapshotMeta,
    data: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer could not be reached; openraft backs off.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The peer answered with an error that is not a Raft error.
    #[error("network: {0}")]
    Network(String),
}

pub trait RaftTransport: Send + Sync + 'static {
    fn call(
        &self,
        target: u64,
        target_addr: &str,
        group: u64,
        kind: RaftKind,
        payload: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>>;
}

pub struct GroupNetworkFactory<C> {
    group: u64,
    transport: Arc<dyn RaftTransport>,
    _c: PhantomData<C>,
}

impl<C> GroupNetworkFactory<C> {
    pub fn new(group: u64, transport: Arc<dyn RaftTransport>) -> Self {
        GroupNetworkFactory {
            group,
            transport,
            _c: PhantomData,
        }
    }
}

pub struct GroupConnection<C> {
    group: u64,
    target: u64,
    addr: String,
    transport: Arc<dyn RaftTransport>,
    /// Calls to this peer that timed out in a row (reset by any answer).
    timeouts: AtomicU32,
    /// The highest commit index an AppendEntries carried to this peer that it accepted.
    commit_sent: Option<u64>,
    _c: PhantomData<C>,
}

impl<C: BraidTypeConfig> RaftNetworkFactory<C> for GroupNetworkFactory<C> {
    type Network = GroupConnection<C>;

    async fn new_client(&mut self, target: u64, node: &NodeInfo) -> Self::Network {
        GroupConnection {
            group: self.group,
            target,
            addr: node.addr.clone(),
            transport: self.transport.clone(),
            timeouts: AtomicU32::new(0),
            commit_sent: None,
            _c: PhantomData,
        }
    }
}

impl<C: BraidTypeConfig> GroupConnection<C> {
    async fn rpc<Req, Resp>(
        &self,
        kind: RaftKind,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<C>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let payload = codec::encode(req);
        let fut = self
            .transport
            .call(self.target, &self.addr, self.group, kind, payload);
        let reply = match tokio::time::timeout(option.hard_ttl(), fut).await {
            // A slow answer (openraft gives AppendEntries one heartbeat interval) is not a lost
            // peer: `Unreachable` would make openraft stop replicating to it for a backoff, so
            // it is retried at once; only a peer silent for several calls in a row counts as
            // unreachable (and is not sent the same entries every 100 ms).
            Err(_) => {
                let n = self.timeouts.fetch_add(1, Ordering::Relaxed) + 1;
                let e = TransportError::Network(format!(
                    "no answer within {} ms ({n} in a row)",
                    option.hard_ttl().as_millis()
                ));
                return Err(if n >= RAFT_TIMEOUTS_BEFORE_UNREACHABLE {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                });
            }
            Ok(Err(e @ TransportError::Unreachable(_))) => {
                return Err(RPCError::Unreachable(Unreachable::new(&e)))
            }
            Ok(Err(e)) => return Err(RPCError::Network(NetworkError::new(&e))),
            Ok(Ok(bytes)) => {
                self.timeouts.store(0, Ordering::Relaxed);
                bytes
            }
        };
        let res: Result<Resp, Fatal<C>> =
            codec::decode(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        // The peer's Raft for this group stopped (it is shutting down, or its storage failed):
        // back off as from a peer that is down.
        res.map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
    }
}

/// The intervals of [`RaftNetworkV2::backoff`]: doubling from
/// `RAFT_UNREACHABLE_BACKOFF_MS_MIN` to `RAFT_UNREACHABLE_BACKOFF_MS_MAX`, then that forever.
fn unreachable_backoff() -> impl Iterator<Item = std::time::Duration> + Send + 'static {
    let min = braid_types::limits::RAFT_UNREACHABLE_BACKOFF_MS_MIN;
    let max = braid_types::limits::RAFT_UNREACHABLE_BACKOFF_MS_MAX;
    std::iter::successors(Some(min), move |ms| Some((ms * 2).min(max)))
        .map(std::time::Duration::from_millis)
}

impl<C: BraidTypeConfig> RaftNetworkV2<C> for GroupConnection<C> {
    type SnapshotData = Cursor<Vec<u8>>;

    /// After errors (an `Unreachable` one: peer down, its queue full, or the group not opened
    /// there yet, as right after a stream is created), openraft sends nothing to that peer for
    /// these intervals, until one call succeeds: short at first, so that a group that opens a
    /// moment late is not left behind for long, and up to 500 ms for a peer that is down.
    fn backoff(&self) -> Option<Backoff> {
        Some(Backoff::new(unreachable_backoff()))
    }

    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        // A heartbeat carries no entries and no news. An empty AppendEntries that advances the
        // follower's commit index is not one: the leader sends it right after a commit, and
        // openraft replicates the group's next entries to this peer only once it was answered,
        // so it must not wait in the heartbeat lane's linger.
        let commit = req.leader_commit.map(|l| l.index);
        let kind = if req.entries.is_empty() && commit <= self.commit_sent {
            RaftKind::Heartbeat
        } else {
            RaftKind::AppendEntries
        };
        let res = self.rpc(kind, &req, &option).await;
        if matches!(
            res,
            Ok(AppendEntriesResponse::Success | AppendEntriesResponse::PartialSuccess(_))
        ) {
            self.commit_sent = self.commit_sent.max(commit);
        }
        res
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: crate::Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let msg = SnapshotMessage {
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot.into_inner(),
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            res = self.rpc::<_, SnapshotResponse<C>>(RaftKind::InstallSnapshot, &msg, &option) => {
                res.map_err(|e| match e {
                    RPCError::Timeout(t) => StreamingError::Timeout(t),
                    RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                    RPCError::Network(n) => StreamingError::Network(n),
                    RPCError::RemoteError(r) => StreamingError::Network(NetworkError::new(&r)),
                })
            }
        }
    }

    async fn vote(
        &mut self,
        req: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.rpc(RaftKind::Vote, &req, &option).await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<C>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<C>, RPCError<C>> {
        self.rpc(RaftKind::TransferLeader, &req, &option).await
    }
}

/// `RaftError<C>` (whose API error is `Infallible`) as the `Fatal` it must be.
fn fatal_only<T, C: BraidTypeConfig>(r: Result<T, RaftError<C>>) -> Result<T, Fatal<C>> {
    r.map_err(|e| match e {
        RaftError::Fatal(f) => f,
        RaftError::APIError(never) => match never {},
    })
}

/// See [`braid_types::faults::IGNORE_TRANSFER_LEADER_ENV`].
fn fault_ignore_transfer_leader() -> bool {
    use braid_types::faults;
    static SET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SET.get_or_init(|| {
        let set = faults::enabled(faults::IGNORE_TRANSFER_LEADER_ENV);
        if set {
            tracing::warn!(
                "{}=1: this node ignores leadership transfers to it (fault injection)",
                faults::IGNORE_TRANSFER_LEADER_ENV
            );
        }
        set
    })
}

/// Serves one incoming Raft message on the receiving node: decodes it, hands it to the group's
/// Raft, and encodes `Result<Response, Fatal>` for the sender.
pub async fn serve<C, SM>(
    raft: &Raft<C, SM>,
    kind: RaftKind,
    payload: &bytes::Bytes,
) -> Result<Vec<u8>, String>
where
    C: BraidTypeConfig,
    SM: RaftStateMachine<C, SnapshotData = Cursor<Vec<u8>>>,
{
    Ok(match kind {
        RaftKind::AppendEntries | RaftKind::Heartbeat => {
            // The entries keep their records in the received buffer (no copy).
            let req: AppendEntriesRequest<C> =
                codec::decode_shared(payload).map_err(|e| e.to_string())?;
            codec::encode(&fatal_only(raft.append_entries(req).await))
        }
        RaftKind::Vote => {
            let req: VoteRequest<C> = codec::decode(payload).map_err(|e| e.to_string())?;
            codec::encode(&fatal_only(raft.vote(req).await))
        }
        RaftKind::InstallSnapshot => {
            let m: SnapshotMessage = codec::decode(payload).map_err(|e| e.to_string())?;
            let snapshot = Snapshot {
                meta: m.meta,
                snapshot: Cursor::new(m.data),
            };
            codec::encode(&raft.install_full_snapshot(m.vote, snapshot).await)
        }
        RaftKind::TransferLeader => {
            let req: TransferLeaderRequest<C> =
                codec::decode(payload).map_err(|e| e.to_string())?;
            if fault_ignore_transfer_leader()
                && *req.to_node_id() == raft.metrics().borrow_watched().id
            {
                // Fault injection: the target behaves as if it died on receipt (the leader,
                // which refuses writes from now on, must abdicate; see braid-node's leadership).
                tracing::warn!(from = ?req.from_leader(), "fault injected: ignoring a leadership transfer to this node");
                let answer: Result<TransferLeaderResponse<C>, Fatal<C>> = Ok(Ok(()));
                return Ok(codec::encode(&answer));
            }
            codec::encode(&raft.handle_transfer_leader(req).await)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::ShardTypeConfig;
    use crate::LogId;
    use std::sync::Mutex;

    /// Records the kind each AppendEntries was sent as, and answers with the queued answers
    /// (success once they run out).
    #[derive(Default)]
    struct Recorder {
        kinds: Mutex<Vec<RaftKind>>,
        answers: Mutex<Vec<Answer>>,
    }

    #[derive(Clone, Copy)]
    enum Answer {
        Lost,
        Conflict,
    }

    impl RaftTransport for Recorder {
        fn call(
            &self,
            _target: u64,
            _target_addr: &str,
            _group: u64,
            kind: RaftKind,
            _payload: Vec<u8>,
        ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
            self.kinds.lock().unwrap().push(kind);
            let answer = self.answers.lock().unwrap().pop();
            let reply: Result<AppendEntriesResponse<ShardTypeConfig>, Fatal<ShardTypeConfig>> =
                match answer {
                    Some(Answer::Lost) => {
                        return Box::pin(async { Err(TransportError::Network("lost".into())) })
                    }
                    Some(Answer::Conflict) => Ok(AppendEntriesResponse::Conflict),
                    None => Ok(AppendEntriesResponse::Success),
                };
            Box::pin(async move { Ok(codec::encode(&reply)) })
        }
    }

    #[tokio::test]
    async fn an_empty_append_that_advances_the_commit_index_is_not_a_heartbeat() {
        let rec = Arc::new(Recorder::default());
        let mut factory = GroupNetworkFactory::<ShardTypeConfig>::new(7, rec.clone());
        let mut conn = factory.new_client(2, &NodeInfo::default()).await;
        let id = |i| LogId::new(crate::leader_id(1, 1), i);
        let empty = |commit: Option<u64>| AppendEntriesRequest::<ShardTypeConfig> {
            vote: Vote::new_committed(1, 1),
            prev_log_id: Some(id(5)),
            entries: Vec::new(),
            leader_commit: commit.map(id),
        };
        let opt = RPCOption::new(std::time::Duration::from_secs(1));
        for (commit, answer) in [
            (None, None),                      // no commit index: a heartbeat
            (Some(4), None),                   // news
            (Some(4), None),                   // accepted before: a heartbeat
            (Some(5), Some(Answer::Lost)),     // news, but not delivered
            (Some(5), Some(Answer::Conflict)), // still news, refused
            (Some(5), None),                   // still news, accepted now
            (Some(5), None),                   // a heartbeat again
        ] {
            rec.answers.lock().unwrap().extend(answer);
            let _ = conn.append_entries(empty(commit), opt.clone()).await;
        }
        let mut with_entry = empty(Some(5));
        with_entry.entries.push(crate::Entry {
            log_id: id(6),
            payload: openraft::EntryPayload::Blank,
        });
        conn.append_entries(with_entry, opt)
            .await
            .expect("answered");
        use RaftKind::{AppendEntries as A, Heartbeat as H};
        assert_eq!(*rec.kinds.lock().unwrap(), [H, A, H, A, A, A, H, A]);
    }

    #[test]
    fn unreachable_backoff_doubles_up_to_the_cap() {
        let ms: Vec<u128> = unreachable_backoff()
            .take(8)
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(ms, [25, 50, 100, 200, 400, 500, 500, 500]);
    }
}
