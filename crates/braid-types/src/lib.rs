//! Braid's domain vocabulary: the types every other crate speaks.
//!
//! Nothing here does IO or knows about Raft, gRPC or AWS wire shapes. Everything here is
//! deterministic and unit-tested: hash-key math ([`hash`]), sequence numbers ([`seqnum`]),
//! shard iterator tokens ([`iterator`]), names ([`names`]), error codes ([`error`]), every
//! numeric limit of the system ([`limits`]) and the fault-injection switches of tests ([`faults`]).

pub mod error;
pub mod faults;
pub mod hash;
pub mod iterator;
pub mod limits;
pub mod names;
pub mod seqnum;

pub use error::{BraidError, ErrorCode};
pub use hash::HashKeyRange;
pub use seqnum::SequenceNumber;

/// A node's identity in the cluster. Never reused for a node that lost its disk.
pub type NodeId = u64;

/// The id of a Raft group hosted by the nodes. Group 0 is the control plane; shard groups get
/// ids from the control plane's counter, starting at 1, never reused.
pub type GroupId = u64;

/// The control plane's Raft group.
pub const CONTROL_GROUP: GroupId = 0;
