//! Node-to-node transport over gRPC: one lazily connected HTTP/2 channel per peer, shared by
//! the control group, every shard group and forwarded requests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use braid_proto::internal::internal_client::InternalClient;
use braid_proto::internal::{
    ForwardRequest, RaftBatchRequest, RaftKind as PbKind, RaftMessage, RaftReply,
};
use braid_raft::codec;
use braid_raft::network::{RaftKind, RaftTransport, TransportError};
use braid_types::limits::{
    GRPC_MESSAGE_BYTES_MAX, RAFT_BATCHES_IN_FLIGHT_MAX, RAFT_BATCH_BYTES_MAX,
    RAFT_BATCH_MESSAGES_MAX, RAFT_BATCH_MESSAGE_BYTES_MAX, RAFT_BATCH_QUEUE_MAX,
    RAFT_HEARTBEAT_LINGER_MS,
};
use braid_types::{BraidError, NodeId};
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tonic::transport::{Channel, Endpoint};

use crate::forward::{ForwardOp, ForwardReply};

#[derive(Clone)]
pub struct Peer {
    pub id: NodeId,
    pub zone: String,
    pub addr: String,
    client: InternalClient<Channel>,
    /// Small Raft messages for this peer, coalesced by `run_batcher`.
    batch: mpsc::Sender<Pending>,
    /// Heartbeats for this peer, coalesced with a short linger.
    heartbeats: mpsc::Sender<Pending>,
}

type Pending = (RaftMessage, oneshot::Sender<Result<RaftReply, String>>);

/// Sends the queued small Raft messages of one peer as RaftBatch calls: takes everything queued
/// (up to the batch limits) whenever a call slot is free, so at low rates a message goes at once
/// and at high rates many share one call (and one socket write).
async fn run_batcher(
    client: InternalClient<Channel>,
    mut rx: mpsc::Receiver<Pending>,
    linger: Option<Duration>,
) {
    let slots = Arc::new(Semaphore::new(RAFT_BATCHES_IN_FLIGHT_MAX));
    while let Some(first) = rx.recv().await {
        if let Some(linger) = linger {
            tokio::time::sleep(linger).await;
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut bytes = first.0.payload.len();
        let mut batch = vec![first];
        while batch.len() < RAFT_BATCH_MESSAGES_MAX && bytes < RAFT_BATCH_BYTES_MAX {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.0.payload.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let mut client = client.clone();
        tokio::spawn(async move {
            let (messages, replies): (Vec<RaftMessage>, Vec<_>) = batch.into_iter().unzip();
            let n = messages.len();
            match client.raft_batch(RaftBatchRequest { messages }).await {
                Ok(r) => {
                    let got = r.into_inner().replies;
                    if got.len() == n {
                        for (tx, rep) in replies.into_iter().zip(got) {
                            let _ = tx.send(Ok(rep));
                        }
                    } else {
                        for tx in replies {
                            let _ = tx
                                .send(Err(format!("batch reply has {} of {n} replies", got.len())));
                        }
                    }
                }
                Err(status) => {
                    for tx in replies {
                        let _ = tx.send(Err(status.message().to_string()));
                    }
                }
            }
            drop(slot);
        });
    }
}

pub struct GrpcTransport {
    peers: BTreeMap<NodeId, Peer>,
}

fn endpoint(addr: &str) -> Endpoint {
    let uri = if addr.starts_with("http") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Endpoint::from_shared(uri)
        .expect("peer address is a valid URI")
        .connect_timeout(Duration::from_millis(500))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true)
        .initial_connection_window_size(Some(8 * 1024 * 1024))
        .initial_stream_window_size(Some(4 * 1024 * 1024))
        .max_frame_size(Some(braid_types::limits::GRPC_FRAME_BYTES_MAX))
}

impl GrpcTransport {
    pub fn new(peers: &[crate::config::PeerConfig]) -> Arc<GrpcTransport> {
        let peers = peers
            .iter()
            .map(|p| {
                let client = InternalClient::new(endpoint(&p.addr).connect_lazy())
                    .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
                    .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX);
                let (batch, rx) = mpsc::channel(RAFT_BATCH_QUEUE_MAX);
                tokio::spawn(run_batcher(client.clone(), rx, None));
                let (heartbeats, rx) = mpsc::channel(RAFT_BATCH_QUEUE_MAX);
                let linger = Duration::from_millis(RAFT_HEARTBEAT_LINGER_MS);
                tokio::spawn(run_batcher(client.clone(), rx, Some(linger)));
                (
                    p.id,
                    Peer {
                        id: p.id,
                        zone: p.zone.clone(),
                        addr: p.addr.clone(),
                        client,
                        batch,
                        heartbeats,
                    },
                )
            })
            .collect();
        Arc::new(GrpcTransport { peers })
    }

    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values()
    }

    pub fn peer(&self, id: NodeId) -> Option<&Peer> {
        self.peers.get(&id)
    }

    /// Sends a forwarded op to `target` and decodes its reply.
    pub async fn forward(
        &self,
        target: NodeId,
        op: &ForwardOp,
        timeout: Duration,
    ) -> Result<ForwardReply, ForwardError> {
        let peer = self.peers.get(&target).ok_or_else(|| {
            ForwardError::NotDelivered(BraidError::internal(format!("unknown node {target}")))
        })?;
        let mut client = peer.client.clone();
        let req = ForwardRequest {
            payload: codec::encode(op).into(),
        };
        let reply = match tokio::time::timeout(timeout, client.forward(req)).await {
            Err(_) => {
                return Err(ForwardError::Unknown(BraidError::unavailable(format!(
                    "node {target} did not answer in time"
                ))))
            }
            Ok(Err(status)) => {
                let e = BraidError::unavailable(format!("node {target}: {}", status.message()));
                return Err(if was_refused(&status) {
                    ForwardError::NotDelivered(e)
                } else {
                    ForwardError::Unknown(e)
                });
            }
            Ok(Ok(r)) => r,
        };
        codec::decode(&reply.into_inner().payload).map_err(|e| {
            ForwardError::Unknown(BraidError::internal(format!(
                "bad reply from node {target}: {e}"
            )))
        })
    }
}

/// Why a forwarded op has no reply.
#[derive(Debug)]
pub enum ForwardError {
    /// The op never reached the peer (no connection could be made): safe to send elsewhere.
    NotDelivered(BraidError),
    /// The peer may or may not have executed it (connection lost mid-call, timeout).
    Unknown(BraidError),
}

impl ForwardError {
    pub fn into_error(self) -> BraidError {
        match self {
            ForwardError::NotDelivered(e) | ForwardError::Unknown(e) => e,
        }
    }
}

/// Whether a failed call failed to connect (connection refused), so nothing was sent.
fn was_refused(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = e.source();
    }
    let text = format!("{status:?}");
    text.contains("Connection refused") || text.contains("ConnectionRefused")
}

impl RaftTransport for GrpcTransport {
    fn call(
        &self,
        target: u64,
        _target_addr: &str,
        group: u64,
        kind: RaftKind,
        payload: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let lane = |p: &Peer| {
            if kind == RaftKind::Heartbeat {
                p.heartbeats.clone()
            } else {
                p.batch.clone()
            }
        };
        let peer = self.peers.get(&target).map(|p| (p.client.clone(), lane(p)));
        Box::pin(async move {
            let (mut client, batch) =
                peer.ok_or_else(|| TransportError::Unreachable(format!("unknown node {target}")))?;
            let kind = match kind {
                RaftKind::AppendEntries | RaftKind::Heartbeat => PbKind::AppendEntries,
                RaftKind::Vote => PbKind::Vote,
                RaftKind::InstallSnapshot => PbKind::InstallSnapshot,
                RaftKind::TransferLeader => PbKind::TransferLeader,
            };
            let msg = RaftMessage {
                group_id: group,
                kind: kind as i32,
                payload: payload.into(),
            };
            let reply = if msg.payload.len() <= RAFT_BATCH_MESSAGE_BYTES_MAX {
                let (tx, rx) = oneshot::channel();
                batch.try_send((msg, tx)).map_err(|_| {
                    TransportError::Unreachable(format!("raft queue to node {target} is full"))
                })?;
                rx.await
                    .map_err(|_| TransportError::Unreachable("raft batcher stopped".into()))?
                    .map_err(TransportError::Unreachable)?
            } else {
                client
                    .raft(msg)
                    .await
                    .map_err(|s| TransportError::Unreachable(s.message().to_string()))?
                    .into_inner()
            };
            if !reply.error.is_empty() {
                return Err(TransportError::Network(reply.error));
            }
            if reply.unknown_group {
                return Err(TransportError::Unreachable(format!(
                    "group {group} not hosted on node {target} yet"
                )));
            }
            Ok(reply.payload.into())
        })
    }
}
