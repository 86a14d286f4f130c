//! Node-to-node transport over gRPC: one lazily connected HTTP/2 channel per peer, shared by
//! the control group, every shard group and forwarded requests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use braid_proto::internal::internal_client::InternalClient;
use braid_proto::internal::{ForwardRequest, RaftKind as PbKind, RaftMessage};
use braid_raft::codec;
use braid_raft::network::{RaftKind, RaftTransport, TransportError};
use braid_types::limits::GRPC_MESSAGE_BYTES_MAX;
use braid_types::{BraidError, NodeId};
use futures::future::BoxFuture;
use tonic::transport::{Channel, Endpoint};

use crate::forward::{ForwardOp, ForwardReply};

#[derive(Clone)]
pub struct Peer {
    pub id: NodeId,
    pub zone: String,
    pub addr: String,
    client: InternalClient<Channel>,
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
}

impl GrpcTransport {
    pub fn new(peers: &[crate::config::PeerConfig]) -> Arc<GrpcTransport> {
        let peers = peers
            .iter()
            .map(|p| {
                let client = InternalClient::new(endpoint(&p.addr).connect_lazy())
                    .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
                    .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX);
                (
                    p.id,
                    Peer {
                        id: p.id,
                        zone: p.zone.clone(),
                        addr: p.addr.clone(),
                        client,
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
            payload: codec::encode(op),
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
        let client = self.peers.get(&target).map(|p| p.client.clone());
        Box::pin(async move {
            let mut client = client
                .ok_or_else(|| TransportError::Unreachable(format!("unknown node {target}")))?;
            let kind = match kind {
                RaftKind::AppendEntries => PbKind::AppendEntries,
                RaftKind::Vote => PbKind::Vote,
                RaftKind::InstallSnapshot => PbKind::InstallSnapshot,
            };
            let msg = RaftMessage {
                group_id: group,
                kind: kind as i32,
                payload,
            };
            let reply = client
                .raft(msg)
                .await
                .map_err(|s| TransportError::Unreachable(s.message().to_string()))?;
            let reply = reply.into_inner();
            if reply.unknown_group {
                return Err(TransportError::Unreachable(format!(
                    "group {group} not hosted on node {target} yet"
                )));
            }
            Ok(reply.payload)
        })
    }
}
