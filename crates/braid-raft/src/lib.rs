//! Braid's Raft layer, on openraft 0.10 (pinned exactly in the workspace).
//!
//! - [`log_store::LogStore`]: openraft's `RaftLogStorage` over a per-group
//!   [`braid_storage::SegmentLog`] (entries) and the node's sled database ([`meta::MetaStore`]:
//!   vote, committed and purged log ids, state-machine state).
//! - [`state_machine::SmStore`]: openraft's `RaftStateMachine` over any [`state_machine::AppState`];
//!   the shard state machine is [`shard::ShardState`], the control plane's lives in braid-control.
//! - [`network`]: one transport shared by every group; messages carry their group id.
//!
//! This crate knows nothing about gRPC: the node supplies a [`network::RaftTransport`].

pub mod codec;
pub mod log_store;
pub mod meta;
pub mod network;
pub mod records;
pub mod shard;
pub mod state_machine;

use std::time::Duration;

pub use openraft;

/// Where a node can be reached, and its zone. Stored in Raft memberships.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    pub addr: String,
    pub zone: String,
}

impl std::fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.addr, self.zone)
    }
}

/// A leader's id (term, node): openraft's "advanced" leader id, as in 0.9.
pub type LeaderId = openraft::impls::leader_id_adv::LeaderId<u64, u64>;
/// A log entry's id.
pub type LogId = openraft::LogId<LeaderId>;
/// A replica's vote.
pub type Vote = openraft::impls::Vote<LeaderId>;
/// A group's membership as stored with its log id.
pub type StoredMembership = openraft::StoredMembership<LeaderId, u64, NodeInfo>;
/// A snapshot's metadata.
pub type SnapshotMeta = openraft::storage::SnapshotMeta<LeaderId, u64, NodeInfo>;
/// A snapshot as Braid stores and sends it: the state machine's bytes in memory.
pub type Snapshot = openraft::storage::Snapshot<LeaderId, u64, NodeInfo, std::io::Cursor<Vec<u8>>>;
/// A log entry carrying application data `D`.
pub type Entry<D> = openraft::Entry<LeaderId, openraft::EntryPayload<D, u64, NodeInfo>>;

/// The shape every Braid Raft group shares.
pub trait BraidTypeConfig:
    openraft::RaftTypeConfig<
    NodeId = u64,
    Node = NodeInfo,
    Term = u64,
    LeaderId = LeaderId,
    Vote = Vote,
    Payload = openraft::EntryPayload<<Self as openraft::RaftTypeConfig>::D, u64, NodeInfo>,
    Entry = Entry<<Self as openraft::RaftTypeConfig>::D>,
>
{
    /// A short name for logs and sled keys.
    const KIND: &'static str;
}

/// Timing of a Raft group. Zones are within one region, so round trips are sub-millisecond;
/// the election timeout bounds how long writes to a shard stall after its leader dies.
#[derive(Clone, Debug)]
pub struct RaftTiming {
    pub heartbeat_interval: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            heartbeat_interval: Duration::from_millis(200),
            election_timeout_min: Duration::from_millis(800),
            election_timeout_max: Duration::from_millis(1600),
        }
    }
}

/// openraft configuration for a shard group: never snapshot on its own (the log *is* the data;
/// retention, not snapshots, decides what is purged).
pub fn shard_raft_config(t: &RaftTiming) -> openraft::Config {
    let c = openraft::Config {
        cluster_name: "braid-shard".into(),
        heartbeat_interval: t.heartbeat_interval.as_millis() as u64,
        election_timeout_min: t.election_timeout_min.as_millis() as u64,
        election_timeout_max: t.election_timeout_max.as_millis() as u64,
        max_payload_entries: braid_types::limits::RAFT_PAYLOAD_ENTRIES_MAX,
        snapshot_policy: openraft::SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: u64::MAX / 2,
        // A restarted leader takes part in an election like any replica (as in openraft 0.9).
        enable_leader_restore: Some(false),
        ..Default::default()
    };
    c.validate().expect("valid shard raft config")
}

/// openraft configuration for the control-plane group: small state, snapshot every 1000 entries.
pub fn control_raft_config(t: &RaftTiming) -> openraft::Config {
    let c = openraft::Config {
        cluster_name: "braid-control".into(),
        heartbeat_interval: t.heartbeat_interval.as_millis() as u64,
        election_timeout_min: t.election_timeout_min.as_millis() as u64,
        election_timeout_max: t.election_timeout_max.as_millis() as u64,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1000),
        max_in_snapshot_log_to_keep: 1000,
        // A snapshot (the whole catalog) travels, is installed and flushed in one call.
        install_snapshot_timeout: braid_types::limits::CONTROL_SNAPSHOT_MS_MAX,
        enable_leader_restore: Some(false),
        ..Default::default()
    };
    c.validate().expect("valid control raft config")
}

/// The leader id of `node_id` in `term`.
pub fn leader_id(term: u64, node_id: u64) -> LeaderId {
    LeaderId { term, node_id }
}
