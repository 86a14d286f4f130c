//! The internal gRPC service: Raft messages for any hosted group, and forwarded operations.

use std::sync::Arc;

use braid_proto::internal::internal_server::{Internal, InternalServer};
use braid_proto::internal::{
    ForwardReply as PbForwardReply, ForwardRequest, RaftBatchReply, RaftBatchRequest,
    RaftKind as PbKind, RaftMessage, RaftReply,
};
use braid_raft::codec;
use braid_raft::network::{serve, RaftKind};
use braid_types::limits::GRPC_MESSAGE_BYTES_MAX;
use braid_types::CONTROL_GROUP;
use tonic::{Request, Response, Status};

use crate::forward::{ForwardOp, ForwardReply};
use crate::node::Node;

pub struct InternalService {
    node: Arc<Node>,
}

pub fn internal_server(node: Arc<Node>) -> InternalServer<InternalService> {
    InternalServer::new(InternalService { node })
        .max_decoding_message_size(GRPC_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(GRPC_MESSAGE_BYTES_MAX)
}

impl InternalService {
    /// Hands one Raft message to its group.
    async fn handle(&self, msg: RaftMessage) -> RaftReply {
        let fail = |error: String| RaftReply {
            payload: Default::default(),
            unknown_group: false,
            error,
        };
        let kind = match PbKind::try_from(msg.kind) {
            Ok(PbKind::AppendEntries) => RaftKind::AppendEntries,
            Ok(PbKind::Vote) => RaftKind::Vote,
            Ok(PbKind::InstallSnapshot) => RaftKind::InstallSnapshot,
            Ok(PbKind::TransferLeader) => RaftKind::TransferLeader,
            _ => return fail("unknown raft message kind".into()),
        };
        let res = if msg.group_id == CONTROL_GROUP {
            serve(&self.node.control, kind, &msg.payload).await
        } else {
            match self.node.group(msg.group_id) {
                Some(g) => serve(&g.raft, kind, &msg.payload).await,
                None => {
                    return RaftReply {
                        payload: Default::default(),
                        unknown_group: true,
                        error: String::new(),
                    }
                }
            }
        };
        match res {
            Ok(payload) => RaftReply {
                payload: payload.into(),
                unknown_group: false,
                error: String::new(),
            },
            Err(e) => fail(e),
        }
    }
}

#[tonic::async_trait]
impl Internal for InternalService {
    async fn raft(&self, req: Request<RaftMessage>) -> Result<Response<RaftReply>, Status> {
        Ok(Response::new(self.handle(req.into_inner()).await))
    }

    async fn raft_batch(
        &self,
        req: Request<RaftBatchRequest>,
    ) -> Result<Response<RaftBatchReply>, Status> {
        let messages = req.into_inner().messages;
        let replies = futures::future::join_all(messages.into_iter().map(|m| self.handle(m))).await;
        Ok(Response::new(RaftBatchReply { replies }))
    }

    async fn forward(
        &self,
        req: Request<ForwardRequest>,
    ) -> Result<Response<PbForwardReply>, Status> {
        let op: ForwardOp = codec::decode(&req.into_inner().payload)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        // Forwarded ops run here or fail with NotLeader; they are never forwarded twice.
        let reply: ForwardReply = self.node.exec_local(op).await;
        Ok(Response::new(PbForwardReply {
            payload: codec::encode(&reply).into(),
        }))
    }
}
