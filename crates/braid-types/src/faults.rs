//! Fault injection for tests: the environment variables that make a `braid node` misbehave on
//! purpose, so that a test can drive a recovery path that real faults reach only by bad timing.
//! Each is read once, at the first use. Never set one in production.

/// Set to `1`: the node ignores every leadership transfer addressed to it (it answers as if it
/// took over, and does nothing), as a target that dies right after receiving it would. The
/// leader, which refuses writes once it started the transfer, must abdicate (braid-node's
/// `leadership` module).
pub const IGNORE_TRANSFER_LEADER_ENV: &str = "BRAID_FAULT_IGNORE_TRANSFER_LEADER";

/// Every fault variable (a test harness clears them for the nodes it starts).
pub const ALL_ENV: [&str; 1] = [IGNORE_TRANSFER_LEADER_ENV];

/// Whether the fault variable `name` is set to `1` in this process.
pub fn enabled(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}
