//! Braid's multi-process integration-test support.
//!
//! * [`cluster`]: runs real `braid node` processes (start, SIGKILL, restart, bounded waits on
//!   `ClusterStatus`, log tails on failure).
//! * [`ledger`]: puts records while recording every attempt and acknowledgement.
//! * [`verify`]: reads a stream back and checks it against a ledger.
//!
//! The test suites live in `it/` (one test binary, `cargo test -p braid-tests`).

pub mod cluster;
pub mod ledger;
pub mod verify;

pub use cluster::Cluster;
pub use ledger::{Clock, Ledger};
