//! [`Cluster`]: real `braid node` processes on loopback ports, for black-box tests.
//!
//! Each node gets a config file, a data directory and a log file (its stderr and stdout) in a
//! temporary directory owned by the cluster. Nodes can be killed with SIGKILL and restarted on
//! the same config and data directory. Every wait is bounded and panics with the last observed
//! state when it runs out; a node process that exits on its own is reported at the next wait.
//! When the cluster is dropped, every node still running is killed; if the drop happens while
//! the thread is panicking (a failed test), the tail of every node's log is printed first.
//!
//! Environment:
//! * `BRAID_BIN`: the `braid` binary to run (default: `braid` next to the test executable's
//!   `deps` directory, built with `cargo build -p braid --bin braid` if missing).
//! * `BRAID_TESTS_BUILD=1`: run that `cargo build` even if the binary exists (it may be older
//!   than the sources: `cargo test -p braid-tests` does not rebuild it).
//! * `BRAID_TESTS_KEEP=1`: keep the temporary directory (configs, data, logs) after the test.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use braid_client::{v1, Client, ClientError, ClientOptions};

/// The default bound of the harness' waits.
pub const WAIT: Duration = Duration::from_secs(60);
/// Lines of each node's log printed when a test fails.
const LOG_TAIL_LINES: usize = 60;
/// Environment variables the `braid node` command reads; removed so the config file rules.
const BRAID_NODE_ENV: [&str; 8] = [
    "BRAID_CONFIG",
    "BRAID_NODE_ID",
    "BRAID_ZONE",
    "BRAID_DATA_DIR",
    "BRAID_LISTEN",
    "BRAID_ADVERTISE",
    "BRAID_PEERS",
    "BRAID_HEALTH_LISTEN",
];

/// Ports handed out by this process, so that two clusters of one test binary never share one.
static PORTS_GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// `n` free loopback ports: each one bound on 127.0.0.1:0, read and released.
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut given = PORTS_GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local addr").port();
        held.push(l);
        if given.insert(port) {
            ports.push(port);
        }
        assert!(held.len() < 1000, "cannot find {n} unused loopback ports");
    }
    ports
}

/// The `braid` binary the harness runs (see the module docs).
pub fn braid_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(find_or_build_binary).clone()
}

fn find_or_build_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BRAID_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "BRAID_BIN={} is not a file", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/it-<hash> -> target/<profile>/braid
    let deps = exe.parent().expect("test executable has a directory");
    let profile_dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps has a parent")
    } else {
        deps
    };
    let bin = profile_dir.join(format!("braid{}", std::env::consts::EXE_SUFFIX));
    let rebuild = std::env::var_os("BRAID_TESTS_BUILD").is_some_and(|v| v != "0");
    if bin.is_file() && !rebuild {
        return bin;
    }
    let cargo = std::env::var("CARGO")
        .ok()
        .or_else(|| option_env!("CARGO").map(String::from))
        .unwrap_or_else(|| "cargo".to_string());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace)
        .args(["build", "-p", "braid", "--bin", "braid"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    eprintln!(
        "braid-tests: {} {}, running {cmd:?}",
        bin.display(),
        if rebuild {
            "rebuild asked (BRAID_TESTS_BUILD)"
        } else {
            "is missing"
        },
    );
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    assert!(
        status.success(),
        "building the braid binary failed: {status}"
    );
    assert!(
        bin.is_file(),
        "cargo built braid but {} does not exist (a different target dir?); set BRAID_BIN",
        bin.display()
    );
    bin
}

/// One node of a [`Cluster`].
#[derive(Debug)]
pub struct NodeInfo {
    pub id: u64,
    pub zone: String,
    /// `127.0.0.1:port`, the node's gRPC address.
    pub addr: String,
    pub data_dir: PathBuf,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
}

struct NodeProc {
    info: NodeInfo,
    /// `Some` while the node is meant to be running.
    child: Mutex<Option<Child>>,
    starts: AtomicU32,
}

/// A cluster of `braid node` processes. See the module docs.
pub struct Cluster {
    dir: Option<tempfile::TempDir>,
    binary: PathBuf,
    nodes: Vec<NodeProc>,
}

fn zone_name(i: usize) -> String {
    let letter = (b'a' + (i % 26) as u8) as char;
    format!("az-{letter}")
}

impl Cluster {
    /// Starts `n` nodes (ids 1..=n, zones az-a, az-b, ...) and waits until the cluster is ready
    /// (see [`Cluster::wait_ready`]).
    pub async fn start(n: usize) -> Cluster {
        let cluster = Cluster::spawn(n);
        cluster.wait_ready(WAIT).await;
        cluster
    }

    /// Writes the configs and spawns `n` nodes without waiting for anything.
    pub fn spawn(n: usize) -> Cluster {
        Cluster::spawn_with_peer_addrs(n, |_, _, addr| addr.to_string())
    }

    /// Like [`Cluster::spawn`], but node `from` is told that node `to` (another node) is at
    /// `peer_addr(from, to, real address of to)`: a test can put a proxy on every path between
    /// two nodes (to cut them apart) while clients still reach each node directly.
    pub fn spawn_with_peer_addrs(
        n: usize,
        mut peer_addr: impl FnMut(u64, u64, &str) -> String,
    ) -> Cluster {
        assert!(n >= 1, "a cluster needs at least one node");
        let binary = braid_binary();
        let dir = tempfile::Builder::new()
            .prefix("braid-it-")
            .tempdir()
            .expect("create temp dir");
        let ports = free_ports(n);
        let peers: Vec<(u64, String, String)> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u64 + 1, zone_name(i), format!("127.0.0.1:{p}")))
            .collect();
        let mut nodes = Vec::new();
        for (id, zone, addr) in &peers {
            let node_dir = dir.path().join(format!("node-{id}"));
            std::fs::create_dir_all(&node_dir).expect("create node dir");
            let info = NodeInfo {
                id: *id,
                zone: zone.clone(),
                addr: addr.clone(),
                data_dir: node_dir.join("data"),
                config_path: node_dir.join("node.toml"),
                log_path: node_dir.join("node.log"),
            };
            let seen: Vec<(u64, String, String)> = peers
                .iter()
                .map(|(to, zone, addr)| {
                    let addr = if to == id {
                        addr.clone()
                    } else {
                        peer_addr(*id, *to, addr)
                    };
                    (*to, zone.clone(), addr)
                })
                .collect();
            std::fs::write(&info.config_path, node_config(&info, &seen))
                .expect("write node config");
            nodes.push(NodeProc {
                info,
                child: Mutex::new(None),
                starts: AtomicU32::new(0),
            });
        }
        let cluster = Cluster {
            dir: Some(dir),
            binary,
            nodes,
        };
        for id in cluster.node_ids() {
            cluster.spawn_node(id);
        }
        cluster
    }

    /// The temporary directory holding every node's config, data and log.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("dir").path()
    }

    pub fn node_ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.info.id).collect()
    }

    pub fn node(&self, id: u64) -> &NodeInfo {
        &self.proc_(id).info
    }

    fn proc_(&self, id: u64) -> &NodeProc {
        self.nodes
            .iter()
            .find(|n| n.info.id == id)
            .unwrap_or_else(|| panic!("no node {id} in this cluster"))
    }

    /// The gRPC endpoint (`127.0.0.1:port`) of node `id`.
    pub fn endpoint(&self, id: u64) -> String {
        self.node(id).addr.clone()
    }

    /// Every node's endpoint, running or not, in id order.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.info.addr.clone()).collect()
    }

    /// A client of every node with the default options.
    pub fn client(&self) -> Client {
        self.client_with(ClientOptions::default())
    }

    pub fn client_with(&self, options: ClientOptions) -> Client {
        Client::new(&self.endpoints(), options).expect("client")
    }

    /// A client of node `id` only.
    pub fn node_client(&self, id: u64, options: ClientOptions) -> Client {
        Client::new(&[self.endpoint(id)], options).expect("client")
    }

    /// Whether node `id` is meant to be running (started and not killed since).
    pub fn is_running(&self, id: u64) -> bool {
        self.proc_(id).child.lock().expect("lock").is_some()
    }

    pub fn running_ids(&self) -> Vec<u64> {
        self.node_ids()
            .into_iter()
            .filter(|id| self.is_running(*id))
            .collect()
    }

    fn spawn_node(&self, id: u64) {
        self.spawn_node_with_env(id, &[]);
    }

    fn spawn_node_with_env(&self, id: u64, env: &[(&str, &str)]) {
        let node = self.proc_(id);
        let mut child = node.child.lock().expect("lock");
        assert!(child.is_none(), "node {id} is already running");
        let start = node.starts.fetch_add(1, Ordering::SeqCst) + 1;
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.info.log_path)
            .expect("open node log");
        let _ = writeln!(
            log,
            "===== braid-tests: start #{start} of node {id} (unix ms {unix_ms}) ====="
        );
        let stdout = log.try_clone().expect("clone log handle");
        let mut cmd = Command::new(&self.binary);
        cmd.arg("node")
            .arg("--config")
            .arg(&node.info.config_path)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .env("NO_COLOR", "1");
        for var in BRAID_NODE_ENV.iter().chain(&braid_types::faults::ALL_ENV) {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let spawned = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", self.binary.display()));
        *child = Some(spawned);
    }

    /// Kills node `id` with SIGKILL and reaps it. The node must be running.
    pub fn kill9(&self, id: u64) {
        self.kill9_many(&[id]);
    }

    /// Sends SIGKILL to every node of `ids` first, then reaps them all.
    pub fn kill9_many(&self, ids: &[u64]) {
        let mut killed = Vec::new();
        for &id in ids {
            let node = self.proc_(id);
            let mut c = node
                .child
                .lock()
                .expect("lock")
                .take()
                .unwrap_or_else(|| panic!("kill9: node {id} is not running"));
            if let Ok(Some(status)) = c.try_wait() {
                panic!(
                    "kill9: node {id} had already exited ({status})\n{}",
                    self.log_tail(id, LOG_TAIL_LINES)
                );
            }
            c.kill().expect("SIGKILL");
            killed.push((id, c));
        }
        for (id, mut c) in killed {
            let _ = c.wait();
            let _ = OpenOptions::new()
                .append(true)
                .open(&self.node(id).log_path)
                .and_then(|mut f| writeln!(f, "===== braid-tests: SIGKILL node {id} ====="));
        }
    }

    /// The process id of node `id`, if it is meant to be running.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.proc_(id)
            .child
            .lock()
            .expect("lock")
            .as_ref()
            .map(|c| c.id())
    }

    /// Sends `signal` (a `kill -s` name: STOP, CONT, TERM, ...) to node `id`, which must be
    /// running. The node stays marked running (use [`Cluster::terminate`] to stop it).
    pub fn signal(&self, id: u64, signal: &str) {
        let pid = self
            .pid(id)
            .unwrap_or_else(|| panic!("signal {signal}: node {id} is not running"));
        let status = Command::new("kill")
            .args(["-s", signal, &pid.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(
            status.success(),
            "kill -s {signal} {pid} (node {id}) failed: {status}"
        );
    }

    /// Stops node `id` gracefully: SIGTERM, then waits for it to exit (SIGKILL after `timeout`).
    /// Returns how long it took to exit and whether it exited on its own.
    pub fn terminate(&self, id: u64, timeout: Duration) -> (Duration, bool) {
        let started = Instant::now();
        self.signal(id, "TERM");
        let node = self.proc_(id);
        let mut c = node
            .child
            .lock()
            .expect("lock")
            .take()
            .unwrap_or_else(|| panic!("terminate: node {id} is not running"));
        let clean = loop {
            match c.try_wait() {
                Ok(Some(_)) => break true,
                Ok(None) if started.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = c.kill();
                    let _ = c.wait();
                    break false;
                }
            }
        };
        let _ = OpenOptions::new()
            .append(true)
            .open(&node.info.log_path)
            .and_then(|mut f| {
                writeln!(
                    f,
                    "===== braid-tests: SIGTERM node {id} (exited on its own: {clean}) ====="
                )
            });
        (started.elapsed(), clean)
    }

    /// Starts node `id` again with the same config and data directory (does not wait).
    pub fn restart(&self, id: u64) {
        self.spawn_node(id);
    }

    /// Like [`Cluster::restart`], with extra environment variables for this start only (fault
    /// injection: `braid_types::faults`).
    pub fn restart_with_env(&self, id: u64, env: &[(&str, &str)]) {
        self.spawn_node_with_env(id, env);
    }

    /// Kills every running node with SIGKILL (all signals sent before any node is reaped).
    pub fn stop_all(&self) {
        self.kill9_many(&self.running_ids());
    }

    /// Starts every node that is not running (does not wait).
    pub fn start_all(&self) {
        for id in self.node_ids() {
            if !self.is_running(id) {
                self.spawn_node(id);
            }
        }
    }

    /// Panics (with the node's log tail) if a node meant to be running has exited.
    pub fn assert_alive(&self) {
        for node in &self.nodes {
            let mut child = node.child.lock().expect("lock");
            if let Some(c) = child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    *child = None;
                    drop(child);
                    panic!(
                        "node {} exited unexpectedly ({status})\n{}",
                        node.info.id,
                        self.log_tail(node.info.id, LOG_TAIL_LINES)
                    );
                }
            }
        }
    }

    /// The last `lines` lines of node `id`'s log, with a header.
    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        let path = &self.node(id).log_path;
        let text = std::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
        let all: Vec<&str> = text.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        format!(
            "----- node {id} log ({}), last {} of {} lines -----\n{}\n",
            path.display(),
            tail.len(),
            all.len(),
            tail.join("\n")
        )
    }

    /// Prints the tail of every node's log to stderr.
    pub fn dump_logs(&self) {
        for id in self.node_ids() {
            eprintln!("{}", self.log_tail(id, LOG_TAIL_LINES));
        }
    }

    /// A client of the running nodes for the harness' own status polling.
    fn status_client(&self) -> Option<Client> {
        let endpoints: Vec<String> = self
            .running_ids()
            .into_iter()
            .map(|id| self.endpoint(id))
            .collect();
        if endpoints.is_empty() {
            return None;
        }
        let options = ClientOptions {
            retries: endpoints.len() as u32,
            retry_backoff_ms: 20,
            timeout_ms: 3_000,
            ..ClientOptions::default()
        };
        Some(Client::new(&endpoints, options).expect("client"))
    }

    /// `ClusterStatus` from any running node.
    pub async fn status(&self) -> Result<v1::ClusterStatusResponse, ClientError> {
        match self.status_client() {
            Some(c) => c.cluster_status().await,
            None => Err(ClientError::Transport("no node is running".into())),
        }
    }

    /// Polls `check` on the cluster status every 100 ms until it returns `Ok(())`, for at most
    /// `timeout`. `check` returns `Err(what is missing)`; on timeout this panics with `what` and
    /// the last answer. Also panics as soon as a node exits on its own.
    pub async fn wait_status<F>(&self, what: &str, timeout: Duration, mut check: F)
    where
        F: FnMut(&v1::ClusterStatusResponse) -> Result<(), String>,
    {
        let started = Instant::now();
        loop {
            self.assert_alive();
            let last = match self.status().await {
                Ok(s) => match check(&s) {
                    Ok(()) => return,
                    Err(missing) => format!("{missing}; status: {}", brief_status(&s)),
                },
                Err(e) => format!("ClusterStatus failed: {e}"),
            };
            if started.elapsed() >= timeout {
                // The log tails are printed when the cluster is dropped during the unwind.
                panic!(
                    "timed out after {:?} waiting for {what}: {last}",
                    started.elapsed()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every running node is reachable, a running node leads the control group and
    /// the cluster has its identity (so iterators can be issued).
    pub async fn wait_ready(&self, timeout: Duration) {
        let running = self.running_ids();
        self.wait_status("the cluster to be ready", timeout, |s| {
            for id in &running {
                match s.nodes.iter().find(|n| n.node_id == *id) {
                    Some(n) if n.reachable => {}
                    Some(_) => return Err(format!("node {id} is not reachable")),
                    None => return Err(format!("node {id} is missing from the status")),
                }
            }
            if !running.contains(&s.control_leader_node_id) {
                return Err(format!(
                    "control leader is {} (running nodes {running:?})",
                    s.control_leader_node_id
                ));
            }
            if s.cluster_id.is_empty() {
                return Err("no cluster id yet".into());
            }
            Ok(())
        })
        .await
    }

    /// Waits until node `id` is reported reachable.
    pub async fn wait_reachable(&self, id: u64, timeout: Duration) {
        self.wait_status(&format!("node {id} to be reachable"), timeout, |s| match s
            .nodes
            .iter()
            .find(|n| n.node_id == id)
        {
            Some(n) if n.reachable => Ok(()),
            _ => Err(format!("node {id} is not reachable")),
        })
        .await
    }

    /// Waits until every shard of `stream` has a leader among the running nodes.
    pub async fn wait_stream_leaders(&self, stream: &str, timeout: Duration) {
        let running = self.running_ids();
        self.wait_status(
            &format!("every shard of {stream} to have a leader"),
            timeout,
            |s| {
                let shards: Vec<&v1::ShardStatus> = s
                    .shards
                    .iter()
                    .filter(|x| x.stream_name == stream)
                    .collect();
                if shards.is_empty() {
                    return Err(format!("no shard of {stream} in the status"));
                }
                for sh in shards {
                    if !running.contains(&sh.leader_node_id) {
                        return Err(format!(
                            "{} has leader {} (running nodes {running:?})",
                            sh.shard_id, sh.leader_node_id
                        ));
                    }
                }
                Ok(())
            },
        )
        .await
    }

    /// Waits until every shard group has a leader and, in the leader's view, every replica's
    /// matched index equals the leader's last log index.
    pub async fn wait_caught_up(&self, timeout: Duration) {
        self.wait_status("every replica to catch up", timeout, |s| {
            for sh in &s.shards {
                if sh.leader_node_id == 0 {
                    return Err(format!("{}/{} has no leader", sh.stream_name, sh.shard_id));
                }
                for r in &sh.replicas {
                    if r.matched_index != sh.last_log_index {
                        return Err(format!(
                            "{}/{}: node {} matched {} of {}",
                            sh.stream_name,
                            sh.shard_id,
                            r.node_id,
                            r.matched_index,
                            sh.last_log_index
                        ));
                    }
                }
            }
            Ok(())
        })
        .await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if panicking {
            eprintln!(
                "braid-tests: test failed; cluster directory {} (removed unless BRAID_TESTS_KEEP=1)",
                self.dir().display()
            );
            self.dump_logs();
        }
        for node in &self.nodes {
            let mut child = node.child.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(mut c) = child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::env::var_os("BRAID_TESTS_KEEP").is_some_and(|v| v != "0") {
            if let Some(dir) = self.dir.take() {
                let path = dir.keep();
                eprintln!("braid-tests: kept {}", path.display());
            }
        }
    }
}

fn node_config(node: &NodeInfo, peers: &[(u64, String, String)]) -> String {
    let mut table = toml::Table::new();
    table.insert("node_id".into(), toml::Value::Integer(node.id as i64));
    table.insert("zone".into(), node.zone.clone().into());
    table.insert(
        "data_dir".into(),
        node.data_dir.display().to_string().into(),
    );
    table.insert("listen".into(), node.addr.clone().into());
    let peers: Vec<toml::Value> = peers
        .iter()
        .map(|(id, zone, addr)| {
            let mut p = toml::Table::new();
            p.insert("id".into(), toml::Value::Integer(*id as i64));
            p.insert("zone".into(), zone.clone().into());
            p.insert("addr".into(), addr.clone().into());
            toml::Value::Table(p)
        })
        .collect();
    table.insert("peers".into(), toml::Value::Array(peers));
    toml::to_string(&table).expect("serialize node config")
}

/// A one-line summary of a status, for wait failures.
pub fn brief_status(s: &v1::ClusterStatusResponse) -> String {
    let nodes: Vec<String> = s
        .nodes
        .iter()
        .map(|n| format!("{}:{}", n.node_id, if n.reachable { "up" } else { "DOWN" }))
        .collect();
    let shards: Vec<String> = s
        .shards
        .iter()
        .map(|sh| {
            let matched: Vec<String> = sh
                .replicas
                .iter()
                .map(|r| format!("{}={}", r.node_id, r.matched_index))
                .collect();
            format!(
                "{}/{} leader {} last {} [{}]",
                sh.stream_name,
                sh.shard_id,
                sh.leader_node_id,
                sh.last_log_index,
                matched.join(" ")
            )
        })
        .collect();
    format!(
        "answered by {}, control leader {}, nodes [{}], shards [{}]",
        s.answering_node_id,
        s.control_leader_node_id,
        nodes.join(" "),
        shards.join("; ")
    )
}

/// Which node leads how many shards of `stream`, from a status (leaderless shards omitted).
pub fn leader_counts(s: &v1::ClusterStatusResponse, stream: &str) -> Vec<(u64, usize)> {
    let mut counts: Vec<(u64, usize)> = Vec::new();
    for sh in s.shards.iter().filter(|x| x.stream_name == stream) {
        if sh.leader_node_id == 0 {
            continue;
        }
        match counts.iter_mut().find(|(id, _)| *id == sh.leader_node_id) {
            Some((_, c)) => *c += 1,
            None => counts.push((sh.leader_node_id, 1)),
        }
    }
    counts.sort();
    counts
}
