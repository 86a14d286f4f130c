//! Requests that one node forwards to another (usually to a group's leader), bincode-encoded
//! inside the internal gRPC `Forward` call.

use braid_control::{ControlRequest, ControlResponse};
use braid_raft::shard::{ShardRequest, ShardResponse};
use braid_types::seqnum::Position;
use braid_types::{BraidError, GroupId, NodeId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ForwardOp {
    ControlWrite(ControlRequest),
    ControlApplied,
    ShardWrite {
        group: GroupId,
        req: ShardRequest,
    },
    ShardRead {
        group: GroupId,
        from: Position,
        limit: u32,
        bytes_max: u64,
        /// At the tip of an open shard, wait this long for records (long poll).
        wait_ms: u32,
    },
    ShardTip {
        group: GroupId,
    },
    ShardSeekTime {
        group: GroupId,
        ts_ms: u64,
    },
    LocalStatus,
    /// Quiescence: the sender leads these (group, term)s, which are idle and have stopped
    /// heartbeats; the receiver's followers hold off elections for an election timeout.
    Quiesced {
        from: NodeId,
        groups: Vec<(GroupId, u64)>,
    },
}

impl ForwardOp {
    /// Whether running the op twice could store something twice.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            ForwardOp::ControlWrite(_) | ForwardOp::ShardWrite { .. }
        )
    }

    /// Whether the op must run on the group's leader.
    pub fn group(&self) -> Option<GroupId> {
        match self {
            ForwardOp::ControlWrite(_) | ForwardOp::ControlApplied => {
                Some(braid_types::CONTROL_GROUP)
            }
            ForwardOp::ShardWrite { group, .. }
            | ForwardOp::ShardRead { group, .. }
            | ForwardOp::ShardTip { group }
            | ForwardOp::ShardSeekTime { group, .. } => Some(*group),
            ForwardOp::LocalStatus | ForwardOp::Quiesced { .. } => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReadRecord {
    pub position: Position,
    pub arrival_ms: u64,
    pub partition_key: String,
    #[serde(with = "serde_bytes_compat")]
    pub data: Vec<u8>,
}

/// serde_bytes through braid-raft's dependency, so large blobs encode as one memcpy.
mod serde_bytes_compat {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReadBatch {
    pub records: Vec<ReadRecord>,
    /// Where the next read starts.
    pub next: Position,
    /// Arrival time of the newest record of the shard.
    pub tip_arrival_ms: u64,
    /// Whether the read reached the last applied entry.
    pub caught_up: bool,
    /// The shard is sealed and every record was returned.
    pub closed: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GroupStatus {
    pub group: GroupId,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub committed: Option<u64>,
    pub applied: Option<u64>,
    /// On the leader: the last index known to be stored on each replica.
    pub matched: Vec<(NodeId, Option<u64>)>,
    /// This replica's Raft timers are stopped because the group is idle.
    pub quiesced: bool,
    /// This replica's Raft instance stopped on this error (a storage failure, until restart).
    pub failed: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LocalStatus {
    pub node_id: NodeId,
    pub zone: String,
    pub groups: Vec<GroupStatus>,
    pub forwarded_ops: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ForwardReply {
    ControlWritten {
        resp: ControlResponse,
        applied: Option<u64>,
    },
    ControlApplied(Option<u64>),
    ShardWritten(ShardResponse),
    ShardRead(ReadBatch),
    ShardTip {
        applied: Option<u64>,
        first: Option<u64>,
    },
    ShardSeek(u64),
    LocalStatus(LocalStatus),
    Done,
    /// This node does not lead the group; `leader` is its best guess.
    NotLeader {
        leader: Option<NodeId>,
    },
    Error(BraidError),
}
