//! The shard group: its type config, its log entries and its (tiny) state machine.
//!
//! A shard's records live in its Raft log: one `Put` entry per PutRecord/PutRecords batch. A
//! record's position is `(entry index, place in entry)`, from which its sequence number is
//! derived, so applying an entry is O(1): the state machine only tracks the tip and the seal.

use serde::{Deserialize, Serialize};

use crate::log_store::EntryTimestamp;
use crate::records::RecordBatch;
use crate::state_machine::AppState;
use crate::{BraidTypeConfig, LogId, NodeInfo};

openraft::declare_raft_types!(
    /// Type config of shard groups.
    pub ShardTypeConfig:
        D = ShardRequest,
        R = ShardResponse,
        NodeId = u64,
        Node = NodeInfo,
);

impl BraidTypeConfig for ShardTypeConfig {
    const KIND: &'static str = "shard";
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardRequest {
    /// A batch of records, all arriving at `arrival_ms` (the leader's clock).
    Put {
        arrival_ms: u64,
        records: RecordBatch,
    },
    /// Closes the shard (resharding): no `Put` after this entry is part of the shard.
    Seal { at_ms: u64 },
}

impl std::fmt::Display for ShardRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardRequest::Put {
                arrival_ms,
                records,
            } => write!(f, "put({} records at {arrival_ms})", records.len()),
            ShardRequest::Seal { at_ms } => write!(f, "seal(at {at_ms})"),
        }
    }
}

impl EntryTimestamp for ShardRequest {
    fn timestamp_ms(&self) -> Option<u64> {
        match self {
            ShardRequest::Put { arrival_ms, .. } => Some(*arrival_ms),
            ShardRequest::Seal { at_ms } => Some(*at_ms),
        }
    }
    fn payload_bytes(&self) -> usize {
        match self {
            ShardRequest::Put { records, .. } => records.bytes(),
            ShardRequest::Seal { .. } => 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardResponse {
    /// Records were appended at positions `(index, first .. first + count)`, all arriving at
    /// `arrival_ms`. The state machine answers for the whole entry (`first` 0); the leader's
    /// proposer hands each merged call its own slice.
    Appended {
        index: u64,
        first: u32,
        count: u32,
        arrival_ms: u64,
    },
    /// The shard was sealed before this entry; its records are not part of the shard.
    Sealed,
    /// Blank, membership and seal entries.
    None,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardState {
    /// Index of the entry that sealed the shard.
    pub sealed_at: Option<u64>,
    /// Index of the last entry that carried records.
    pub last_record_index: Option<u64>,
    /// Arrival time of the last record.
    pub last_arrival_ms: u64,
    pub records_total: u64,
}

impl AppState<ShardTypeConfig> for ShardState {
    fn apply(&mut self, log_id: LogId, req: &ShardRequest) -> ShardResponse {
        match req {
            ShardRequest::Put { .. } if self.sealed_at.is_some() => ShardResponse::Sealed,
            ShardRequest::Put {
                arrival_ms,
                records,
            } => {
                assert!(records.len() as usize <= braid_types::limits::ENTRY_RECORDS_MAX);
                if let Some(prev) = self.last_record_index {
                    assert!(log_id.index > prev);
                }
                if !records.is_empty() {
                    self.last_record_index = Some(log_id.index);
                    self.last_arrival_ms = self.last_arrival_ms.max(*arrival_ms);
                    self.records_total += u64::from(records.len());
                }
                ShardResponse::Appended {
                    index: log_id.index,
                    first: 0,
                    count: records.len(),
                    arrival_ms: *arrival_ms,
                }
            }
            ShardRequest::Seal { .. } => {
                if self.sealed_at.is_none() {
                    self.sealed_at = Some(log_id.index);
                }
                ShardResponse::None
            }
        }
    }

    fn blank_response(&self) -> ShardResponse {
        ShardResponse::None
    }
}

pub type ShardEntry = crate::Entry<ShardRequest>;
pub type ShardRaft =
    openraft::Raft<ShardTypeConfig, crate::state_machine::SmStore<ShardTypeConfig, ShardState>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_rejects_later_puts() {
        let mut s = ShardState::default();
        let id = |i| LogId::new(crate::leader_id(1, 1), i);
        let put = ShardRequest::Put {
            arrival_ms: 5,
            records: {
                let mut b = crate::records::RecordBatchBuilder::with_capacity(1, 2);
                b.push("k", &[1]);
                b.finish()
            },
        };
        assert_eq!(
            s.apply(id(1), &put),
            ShardResponse::Appended {
                index: 1,
                first: 0,
                count: 1,
                arrival_ms: 5
            }
        );
        assert_eq!(
            s.apply(id(2), &ShardRequest::Seal { at_ms: 6 }),
            ShardResponse::None
        );
        assert_eq!(s.apply(id(3), &put), ShardResponse::Sealed);
        assert_eq!(s.sealed_at, Some(2));
        assert_eq!(s.last_record_index, Some(1));
        assert_eq!(s.records_total, 1);
    }
}
