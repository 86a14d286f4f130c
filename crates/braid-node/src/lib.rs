//! A Braid storage node.
//!
//! - [`node::Node`] opens the node's disk (one sled database, one segment log per group), runs
//!   the control group and the shard groups placed here, and keeps them in step with the catalog.
//! - [`node::Node::route`] reaches a group's leader: locally, or by forwarding over the
//!   internal gRPC service ([`internal`]), following leader hints through elections.
//! - [`api::Api`] implements the public operations with Kinesis semantics.

pub mod api;
pub mod config;
pub mod format;
pub mod forward;
pub mod internal;
pub mod leadership;
pub mod node;
pub mod propose;
pub mod quiesce;
pub mod transport;

pub use api::Api;
pub use config::{AccessKey, NodeConfig, PeerConfig};
pub use node::Node;
