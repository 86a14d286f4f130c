//! Test support: a real `braid dev` process on free loopback ports with a temporary data dir.
#![allow(dead_code)]

pub mod fake;
pub mod tls;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The cargo target directory these tests were built in (`<target>/debug/deps/<test>`).
pub fn target_dir() -> PathBuf {
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(t);
    }
    let exe = std::env::current_exe().expect("current exe");
    // <target>/<profile>/deps/<test binary>
    exe.parent()
        .and_then(|p| p.parent())
        .and_then(|p| p.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The newest modification time of the sources the `braid` binary is built from.
fn newest_source(root: &Path) -> std::time::SystemTime {
    fn walk(dir: &Path, newest: &mut std::time::SystemTime) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name();
            if path.is_dir() {
                // Test sources and Python caches do not go into the binary.
                if name != "target" && name != "tests" && name != "__pycache__" {
                    walk(&path, newest);
                }
            } else if let Ok(m) = e.metadata().and_then(|m| m.modified()) {
                *newest = (*newest).max(m);
            }
        }
    }
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    walk(&root.join("crates"), &mut newest);
    walk(&root.join("proto"), &mut newest);
    for f in ["Cargo.toml", "Cargo.lock"] {
        if let Ok(m) = std::fs::metadata(root.join(f)).and_then(|m| m.modified()) {
            newest = newest.max(m);
        }
    }
    newest
}

/// The `braid` binary: `$BRAID_BIN`, else `<target>/<profile>/braid`, built first with
/// `cargo build -p braid --bin braid` when it is missing or older than the sources (under
/// `cargo test --workspace` it is already fresh, and rebuilding it alone would only redo the
/// dependencies with other features).
pub fn braid_bin() -> PathBuf {
    if let Ok(b) = std::env::var("BRAID_BIN") {
        return PathBuf::from(b);
    }
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("profile dir")
        .to_path_buf();
    let bin = profile_dir.join("braid");
    let fresh = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .map(|built| built >= newest_source(&workspace_root()))
        .unwrap_or(false);
    if fresh {
        return bin;
    }
    let release = profile_dir
        .file_name()
        .map(|n| n == "release")
        .unwrap_or(false);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", "braid", "--bin", "braid"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build -p braid");
    assert!(status.success(), "cargo build -p braid --bin braid failed");
    assert!(bin.exists(), "no braid binary at {}", bin.display());
    bin
}

fn ports_free(base: u16) -> bool {
    (0..3).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok())
}

/// A base port whose next three ports are free (best effort: another process may take them).
pub fn free_port_triple(avoid: &[u16]) -> u16 {
    loop {
        let base = 20_000 + (rand_u16() % 30_000);
        if avoid.iter().any(|a| base.abs_diff(*a) < 3) {
            continue;
        }
        if ports_free(base) {
            return base;
        }
    }
}

fn rand_u16() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let pid = std::process::id();
    ((t ^ (pid.wrapping_mul(2_654_435_761))) >> 3) as u16
}

/// A running `braid dev`; killed on drop.
pub struct BraidDev {
    child: Child,
    pub dir: tempfile::TempDir,
    pub grpc_base: u16,
    pub kinesis_base: u16,
}

impl BraidDev {
    /// Starts `braid dev` and waits until all three Kinesis ports answer; retries on fresh
    /// ports if another process took them in between.
    pub fn start() -> BraidDev {
        BraidDev::start_with(&[])
    }

    /// [`BraidDev::start`] with extra `braid dev` arguments. With `--kinesis-access-key`,
    /// readiness is any Kinesis answer (the probe's signature is not a valid one), so callers
    /// retry their first call until the cluster serves it.
    pub fn start_with(extra: &[&str]) -> BraidDev {
        let bin = braid_bin();
        let mut last_log = String::new();
        for _ in 0..3 {
            match BraidDev::start_once(&bin, extra) {
                Ok(dev) => return dev,
                Err(log) => last_log = log,
            }
        }
        panic!("braid dev did not become ready; last log:\n{last_log}");
    }

    fn start_once(bin: &Path, extra: &[&str]) -> Result<BraidDev, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let grpc_base = free_port_triple(&[]);
        let kinesis_base = free_port_triple(&[grpc_base]);
        let log = std::fs::File::create(dir.path().join("braid.log")).expect("log file");
        let child = Command::new(bin)
            .args([
                "dev",
                "--data-dir",
                &dir.path().join("data").display().to_string(),
                "--base-port",
                &grpc_base.to_string(),
                "--kinesis-base-port",
                &kinesis_base.to_string(),
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn braid dev");
        let mut dev = BraidDev {
            child,
            dir,
            grpc_base,
            kinesis_base,
        };
        let signed = extra.contains(&"--kinesis-access-key");
        if dev.wait_ready(Duration::from_secs(90), signed) {
            Ok(dev)
        } else {
            Err(dev.log())
        }
    }

    /// `http://127.0.0.1:<port>` of node `i`'s Kinesis API.
    pub fn endpoint(&self, i: u16) -> String {
        format!("http://127.0.0.1:{}", self.kinesis_base + i)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("braid.log")).unwrap_or_default()
    }

    /// Waits until every node answers a signed ListStreams with 200.
    fn wait_ready(&mut self, timeout: Duration, keys: bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut ready = [false; 3];
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            for (i, r) in ready.iter_mut().enumerate() {
                if !*r {
                    *r = raw_post(
                        self.kinesis_base + i as u16,
                        "ListStreams",
                        "application/x-amz-json-1.1",
                        b"{}",
                    )
                    .map(|(status, _)| status == 200 || (keys && status == 400))
                    .unwrap_or(false);
                }
            }
            if ready.iter().all(|r| *r) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }
}

impl Drop for BraidDev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One signed-looking HTTP/1.1 POST to a Kinesis port; (status, body).
pub fn raw_post(
    port: u16,
    op: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let head = format!(
        "POST / HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nx-amz-target: Kinesis_20131202.{op}\r\ncontent-type: {content_type}\r\nx-amz-date: 20260101T000000Z\r\nauthorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=00\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text_end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(out.len());
    let status_line = String::from_utf8_lossy(&out[..text_end]).to_string();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, out[text_end..].to_vec()))
}
