//! The control plane: a Raft group over all nodes whose state machine is the catalog.
//!
//! The control plane decides and the data plane executes: it records streams, shards, hash
//! ranges, lineage and replica placement; nodes watch the applied catalog and start, stop or
//! delete their shard groups to match. No shard write ever waits on this group.

pub mod catalog;
pub mod planner;

pub use catalog::{
    AccountSettings, ControlRequest, ControlResponse, ControlState, ShardMeta, StreamMeta,
    StreamOptions, StreamStatus,
};

use braid_raft::{BraidTypeConfig, NodeInfo};

openraft::declare_raft_types!(
    /// Type config of the control-plane group.
    pub ControlTypeConfig:
        D = ControlRequest,
        R = ControlResponse,
        NodeId = u64,
        Node = NodeInfo,
);

impl BraidTypeConfig for ControlTypeConfig {
    const KIND: &'static str = "control";
}

impl braid_raft::log_store::EntryTimestamp for ControlRequest {
    fn timestamp_ms(&self) -> Option<u64> {
        None
    }
}

impl std::fmt::Display for ControlRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

pub type ControlRaft = openraft::Raft<
    ControlTypeConfig,
    braid_raft::state_machine::SmStore<ControlTypeConfig, ControlState>,
>;
