//! The compose cluster (`deploy/compose/compose.yaml`) as a chaos [`Backend`].
//!
//! Each run is its own compose project (`braidchaos<pid>`) with its own host ports (free
//! loopback ports) and subnets (a `172.x` prefix no Docker network uses), so it can run next to a
//! `docker-compose up` of the same file or another chaos run. The restart policy is off, so a
//! killed container stays down until the nemesis starts it. On drop the project is removed with
//! its volumes (kept with `BRAID_TESTS_KEEP=1`); when the test failed, every container's log tail
//! is printed first. Projects left behind by a chaos run whose process is gone are removed at
//! start.
//!
//! Environment: `BRAID_CHAOS_IMAGE` (default `braid:local`; built with
//! `deploy/build-image.sh` when missing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::backend::Backend;

const SERVICES: [(u64, &str, &str); 3] = [
    (1, "braid-a", "az-a"),
    (2, "braid-b", "az-b"),
    (3, "braid-c", "az-c"),
];
const PROJECT_PREFIX: &str = "braidchaos";
/// Bound on the containers becoming healthy after `up`.
const HEALTHY_WAIT: Duration = Duration::from_secs(120);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn compose_file() -> PathBuf {
    workspace().join("deploy/compose/compose.yaml")
}

fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn stdout(out: Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker(args: &[&str]) -> Result<String, String> {
    run(Command::new("docker").args(args)).map(stdout)
}

/// `docker-compose` (the standalone v1 CLI) if present, else the `docker compose` plugin.
fn compose_program() -> Result<(String, Vec<String>), String> {
    let ok = |c: &mut Command| {
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ok(Command::new("docker-compose").arg("version")) {
        Ok(("docker-compose".into(), vec![]))
    } else if ok(Command::new("docker").args(["compose", "version"])) {
        Ok(("docker".into(), vec!["compose".into()]))
    } else {
        Err("neither docker-compose nor the docker compose plugin is installed".into())
    }
}

/// Why the Docker backend cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    if let Err(e) = docker(&["version", "--format", "{{.Server.Version}}"]) {
        return Some(format!("the Docker engine does not answer: {e}"));
    }
    compose_program().err()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The `172.x` prefix of the first `172.20-31.0.0/16` range no Docker network overlaps.
fn free_net_prefix(skip: &[String]) -> String {
    let ids = docker(&["network", "ls", "-q"]).unwrap_or_default();
    let mut subnets = String::new();
    for id in ids.lines() {
        if let Ok(s) = docker(&[
            "network",
            "inspect",
            id,
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
        ]) {
            subnets.push_str(&s);
            subnets.push(' ');
        }
    }
    (20..=31)
        .map(|x| format!("172.{x}"))
        .filter(|p| p != "172.17" && p != "172.28" && !skip.contains(p))
        .find(|p| {
            !subnets
                .split_whitespace()
                .any(|s| s.starts_with(&format!("{p}.")) || s.starts_with("172.16.0.0/12"))
        })
        .expect("no free 172.x.0.0/16 prefix for the chaos networks")
}

/// The compose project of one chaos run. See the module docs.
pub struct Compose {
    project: String,
    program: (String, Vec<String>),
    env: Vec<(String, String)>,
    net: String,
    ports: BTreeMap<u64, u16>,
    containers: BTreeMap<u64, String>,
}

impl Compose {
    fn compose(&self, args: &[&str]) -> Command {
        compose_command(&self.program, &self.project, &self.env, args)
    }

    /// Builds the image if it is missing, starts the project and waits until all three
    /// containers report healthy (their health check is `braid node --probe`).
    pub fn up() -> Compose {
        let program = compose_program().expect("compose CLI");
        remove_stale_projects(&program);
        let image = std::env::var("BRAID_CHAOS_IMAGE").unwrap_or_else(|_| "braid:local".into());
        ensure_image(&image);
        let project = format!("{PROJECT_PREFIX}{}", std::process::id());
        let mut tried = Vec::new();
        loop {
            let net = free_net_prefix(&tried);
            let ports = braid_tests::cluster::free_ports(6);
            let mut env: Vec<(String, String)> = vec![
                ("BRAID_IMAGE".into(), image.clone()),
                ("BRAID_NET".into(), net.clone()),
                ("BRAID_RESTART".into(), "no".into()),
            ];
            for (i, (_, _, zone)) in SERVICES.iter().enumerate() {
                let z = zone.trim_start_matches("az-").to_uppercase();
                env.push((format!("BRAID_GRPC_{z}"), ports[i].to_string()));
                env.push((format!("BRAID_KINESIS_{z}"), ports[3 + i].to_string()));
            }
            let mut c = Compose {
                project: project.clone(),
                program: program.clone(),
                env,
                net: net.clone(),
                ports: SERVICES
                    .iter()
                    .enumerate()
                    .map(|(i, (id, _, _))| (*id, ports[i]))
                    .collect(),
                containers: BTreeMap::new(),
            };
            let started = Instant::now();
            match run(&mut c.compose(&["up", "-d"])) {
                Ok(_) => {
                    for (id, service, _) in SERVICES {
                        let ctr = run(&mut c.compose(&["ps", "-q", service]))
                            .map(stdout)
                            .unwrap_or_else(|e| panic!("no container for {service}: {e}"));
                        assert!(!ctr.is_empty(), "no container for {service}");
                        c.containers.insert(id, ctr);
                    }
                    c.wait_healthy(started);
                    return c;
                }
                Err(e) if e.contains("overlap") && tried.len() < 3 => {
                    // Another run took the prefix between the look and the up.
                    eprintln!("chaos: {net}.0.0/16 was taken, trying another prefix ({e})");
                    let _ = run(&mut c.compose(&["down", "-v", "--remove-orphans"]));
                    tried.push(net);
                }
                Err(e) => {
                    let _ = run(&mut c.compose(&["down", "-v", "--remove-orphans"]));
                    panic!("docker-compose up failed: {e}");
                }
            }
        }
    }

    fn wait_healthy(&self, started: Instant) {
        loop {
            let states: Vec<(u64, String)> = self
                .containers
                .iter()
                .map(|(id, ctr)| {
                    let s = docker(&[
                        "inspect",
                        "-f",
                        "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                        ctr,
                    ])
                    .unwrap_or_else(|e| e);
                    (*id, s)
                })
                .collect();
            if states.iter().all(|(_, s)| s == "running/healthy") {
                println!(
                    "chaos: compose project {} healthy after {:.1}s (gRPC ports {:?}, networks {}.0-3.0/24)",
                    self.project,
                    started.elapsed().as_secs_f64(),
                    self.ports.values().collect::<Vec<_>>(),
                    self.net
                );
                return;
            }
            if started.elapsed() > HEALTHY_WAIT
                || states.iter().any(|(_, s)| s.starts_with("exited"))
            {
                self.dump_logs();
                panic!(
                    "the compose cluster did not become healthy within {HEALTHY_WAIT:?}: {states:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn ctr(&self, id: u64) -> &str {
        self.containers
            .get(&id)
            .unwrap_or_else(|| panic!("no container for node {id}"))
    }

    fn docker_on(&self, what: &str, args: &[&str]) {
        if let Err(e) = docker(args) {
            self.dump_logs();
            panic!("{what}: {e}");
        }
    }

    fn interzone(&self) -> String {
        format!("{}_interzone", self.project)
    }

    fn state(&self, id: u64) -> String {
        docker(&["inspect", "-f", "{{.State.Status}}", self.ctr(id)]).unwrap_or_else(|e| e)
    }
}

fn compose_command(
    program: &(String, Vec<String>),
    project: &str,
    env: &[(String, String)],
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(&program.0);
    cmd.args(&program.1)
        .arg("-p")
        .arg(project)
        .arg("-f")
        .arg(compose_file())
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Removes compose projects of earlier chaos runs whose test process no longer exists.
fn remove_stale_projects(program: &(String, Vec<String>)) {
    let Ok(projects) = docker(&[
        "ps",
        "-a",
        "--filter",
        "label=com.docker.compose.project",
        "--format",
        "{{.Label \"com.docker.compose.project\"}}",
    ]) else {
        return;
    };
    let mut seen: Vec<&str> = projects.lines().collect();
    seen.sort();
    seen.dedup();
    for p in seen {
        let Some(pid) = p
            .strip_prefix(PROJECT_PREFIX)
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        eprintln!("chaos: removing compose project {p} left by a finished run");
        for ctr in docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={p}"),
        ])
        .unwrap_or_default()
        .lines()
        {
            let _ = docker(&["unpause", ctr]);
        }
        let _ = run(&mut compose_command(
            program,
            p,
            &[],
            &["down", "-v", "--remove-orphans", "-t", "1"],
        ));
    }
}

/// Builds `image` with `deploy/build-image.sh` if Docker does not have it.
fn ensure_image(image: &str) {
    if let Ok(created) = docker(&["image", "inspect", "-f", "{{.Created}}", image]) {
        println!(
            "chaos: using image {image} built {created} (rebuild with deploy/build-image.sh after changing the sources)"
        );
        return;
    }
    eprintln!("chaos: image {image} is missing; running deploy/build-image.sh (a static release build takes minutes)");
    let status = Command::new(workspace().join("deploy/build-image.sh"))
        .args(["--tag", image])
        .status()
        .expect("run deploy/build-image.sh");
    assert!(status.success(), "deploy/build-image.sh failed: {status}");
}

impl Backend for Compose {
    fn kind(&self) -> &'static str {
        "docker"
    }

    fn node_ids(&self) -> Vec<u64> {
        SERVICES.iter().map(|s| s.0).collect()
    }

    fn zone(&self, id: u64) -> String {
        SERVICES
            .iter()
            .find(|s| s.0 == id)
            .map(|s| s.2.to_string())
            .unwrap_or_default()
    }

    fn endpoint(&self, id: u64) -> String {
        format!("127.0.0.1:{}", self.ports[&id])
    }

    fn kill(&self, id: u64) {
        self.docker_on("docker kill", &["kill", "-s", "KILL", self.ctr(id)]);
    }

    fn start(&self, id: u64) {
        self.docker_on("docker start", &["start", self.ctr(id)]);
    }

    fn stop(&self, id: u64) -> Duration {
        let started = Instant::now();
        self.docker_on("docker stop", &["stop", "-t", "30", self.ctr(id)]);
        let took = started.elapsed();
        let code =
            docker(&["inspect", "-f", "{{.State.ExitCode}}", self.ctr(id)]).unwrap_or_else(|e| e);
        assert_eq!(
            code, "0",
            "node {id} exited with {code} after SIGTERM (137 means docker had to SIGKILL it)"
        );
        took
    }

    fn pause(&self, id: u64) {
        self.docker_on("docker pause", &["pause", self.ctr(id)]);
    }

    fn resume(&self, id: u64) {
        self.docker_on("docker unpause", &["unpause", self.ctr(id)]);
    }

    fn partition(&self, id: u64) {
        let net = self.interzone();
        self.docker_on(
            "docker network disconnect",
            &["network", "disconnect", &net, self.ctr(id)],
        );
    }

    fn heal(&self, id: u64) {
        let net = self.interzone();
        let ip = format!("{}.0.{}", self.net, 10 + id);
        self.docker_on(
            "docker network connect",
            &["network", "connect", "--ip", &ip, &net, self.ctr(id)],
        );
    }

    fn assert_alive(&self) {
        // Only nodes that should be running are asked about by the nemeses; an exited
        // container that nobody stopped is a crash.
        for (id, ctr) in &self.containers {
            let s = self.state(*id);
            if s == "exited" || s == "dead" {
                let code =
                    docker(&["inspect", "-f", "{{.State.ExitCode}}", ctr]).unwrap_or_default();
                let oom =
                    docker(&["inspect", "-f", "{{.State.OOMKilled}}", ctr]).unwrap_or_default();
                if code != "137" && code != "0" {
                    self.dump_logs();
                    panic!(
                        "node {id} ({ctr}) exited on its own with code {code} (OOM killed: {oom})"
                    );
                }
            }
        }
    }

    fn dump_logs(&self) {
        for (id, ctr) in &self.containers {
            let logs = run(Command::new("docker").args(["logs", "--tail", "60", ctr]))
                .map(|o| {
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                })
                .unwrap_or_else(|e| e);
            eprintln!(
                "----- node {id} container {ctr} ({}), last 60 log lines -----\n{logs}",
                self.state(*id)
            );
        }
    }

    fn describe(&self) -> String {
        format!(
            "compose project {} of deploy/compose/compose.yaml, image {}, gRPC on 127.0.0.1:{:?}",
            self.project,
            self.env
                .iter()
                .find(|(k, _)| k == "BRAID_IMAGE")
                .map(|(_, v)| v.as_str())
                .unwrap_or("?"),
            self.ports.values().collect::<Vec<_>>()
        )
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("chaos: test failed; compose project {}", self.project);
            self.dump_logs();
        }
        if std::env::var_os("BRAID_TESTS_KEEP").is_some_and(|v| v != "0") {
            eprintln!(
                "chaos: kept compose project {} (remove with: {} {} -p {} -f {} down -v)",
                self.project,
                self.program.0,
                self.program.1.join(" "),
                self.project,
                compose_file().display()
            );
            return;
        }
        for ctr in self.containers.values() {
            let _ = docker(&["unpause", ctr]);
        }
        if let Err(e) = run(&mut self.compose(&["down", "-v", "--remove-orphans", "-t", "5"])) {
            eprintln!(
                "chaos: removing compose project {} failed: {e}",
                self.project
            );
        }
    }
}
