//! Runs the built `braid` binary: help output, and failing fast without a cluster.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_braid");

/// Runs `braid args`, killing it (and failing) if it does not finish within `limit`.
fn run(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("BRAID_ENDPOINT")
        .env_remove("BRAID_TIMEOUT_MS")
        .env_remove("BRAID_RETRIES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn braid");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait braid").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "braid {args:?} did not finish within {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn help_lists_every_subcommand() {
    let out = run(&["--help"], Duration::from_secs(30));
    assert!(out.status.success());
    let text = stdout(&out);
    for sub in [
        "dev", "node", "stream", "put", "get", "tail", "cluster", "bench",
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{sub} "))),
            "`{sub}` missing from braid --help:\n{text}"
        );
    }
    assert!(text.contains("--endpoint"));
}

#[test]
fn stream_help_lists_its_subcommands() {
    let out = run(&["stream", "--help"], Duration::from_secs(30));
    assert!(out.status.success());
    let text = stdout(&out);
    for sub in ["create", "delete", "list", "describe"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{sub} "))),
            "`{sub}` missing:\n{text}"
        );
    }
}

#[test]
fn other_help_pages_parse() {
    for args in [
        &["put", "--help"][..],
        &["get", "--help"],
        &["tail", "--help"],
        &["cluster", "status", "--help"],
        &["bench", "--help"],
        &["node", "--help"],
        &["dev", "--help"],
    ] {
        let out = run(args, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "braid {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn unreachable_endpoint_fails_fast_with_a_clear_error() {
    let started = Instant::now();
    let out = run(
        &[
            "stream",
            "list",
            "--endpoint",
            "127.0.0.1:1",
            "--timeout-ms",
            "1000",
            "--retries",
            "1",
        ],
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error:"), "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn bad_arguments_are_usage_errors() {
    let out = run(
        &["get", "s", "--from", "yesterday"],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &["bench", "--stream", "s", "--size", "8"],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
}
