//! Multi-process integration tests. Every test starts its own three-node cluster of real
//! `braid node` processes on its own loopback ports (see `braid_tests::cluster`).

mod bench;
mod errors;
mod failover;
mod quiesce;
mod rebalance;
mod restart;
mod routing;
