//! A chaos scenario: the workload of [`crate::workload`] under a sequence of nemeses, then the
//! checker, then a summary.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use braid_client::{v1, Client, ClientError, ClientOptions};
use braid_tests::cluster::{brief_status, leader_counts};
use braid_tests::verify::{read_stream, verify, ShardRead, Verdict};
use braid_tests::Ledger;

use crate::backend::Backend;
use crate::check::{consumer_divergence, first_ack_after, longest_gap};
use crate::workload::{self, ConsumerLog, ProbeLog, ShardInfo, Shared, STREAM};

/// One fault.
#[derive(Clone, Debug)]
pub enum Nemesis {
    /// SIGKILL the node leading the most shards (its whole zone: one node per zone), keep it
    /// down, start it again on its data.
    KillZone { down: Duration },
    /// Cut the zone of the node leading the most shards off the other zones, then heal.
    Partition { cut: Duration },
    /// Freeze the node leading the most shards (past the election timeout), then resume it.
    Pause { paused: Duration },
    /// SIGKILL the control-plane leader, keep it down, start it again.
    KillControlLeader { down: Duration },
    /// Restart every node gracefully (SIGTERM), one at a time, waiting until every replica has
    /// caught up before the next, as docs/operations.md prescribes.
    RollingRestart,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: &'static str,
    pub shards: u32,
    pub producers: usize,
    /// Records per second offered by each producer.
    pub rate: f64,
    /// Load before the first fault.
    pub warmup: Duration,
    /// Load after each recovery, before the next fault.
    pub settle: Duration,
    /// Bound on a node becoming reachable and caught up after a fault is healed.
    pub recovery_max: Duration,
    /// Repeat the nemeses until this much time has passed (at least once).
    pub run_for: Duration,
    pub nemeses: Vec<Nemesis>,
}

/// One injected fault and what was measured around it.
#[derive(Clone, Debug)]
pub struct Fault {
    pub label: String,
    pub node: u64,
    /// Shards of the stream whose leader was the faulted node when the fault began.
    pub led: Vec<String>,
    pub start: Instant,
    /// When the fault was undone (node started, resumed, reconnected).
    pub healed: Instant,
    /// When the node was reachable and every replica had caught up, if within the bound.
    pub recovered: Option<Instant>,
    pub reachable_after: Option<Duration>,
    /// A graceful stop: how long the node took to exit after SIGTERM.
    pub exit_took: Option<Duration>,
    /// For control-leader kills: how long until another node led the control plane.
    pub control_failover: Option<Duration>,
}

/// Write availability of one fault, computed from the probe writers' acknowledgements.
#[derive(Clone, Debug, Default)]
pub struct Availability {
    /// Longest write gap over the shards the faulted node led.
    pub gap_led: Option<Duration>,
    /// Longest write gap over the other shards.
    pub gap_other: Duration,
    /// Shards without any acknowledgement after the fault was healed.
    pub never_resumed: Vec<String>,
    /// Every shard's longest gap, `*` marking the shards the faulted node led.
    pub per_shard: Vec<String>,
}

/// Everything a scenario produced.
pub struct Outcome {
    pub plan: Plan,
    pub backend: String,
    pub ledger: Ledger,
    pub verdict: Verdict,
    pub consumer_divergences: Vec<String>,
    pub consumer_records: usize,
    pub consumer_errors: u64,
    pub faults: Vec<(Fault, Availability)>,
    pub longest_unavailability: Duration,
    pub load: Duration,
    pub total: Duration,
    /// Problems that fail the test besides the verdict (recovery bounds, writes not resuming).
    pub failures: Vec<String>,
}

struct Runner {
    backend: Arc<dyn Backend>,
    /// Nodes not to ask for the cluster status (down, paused or cut off).
    impaired: Mutex<BTreeSet<u64>>,
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

impl Runner {
    fn endpoints(&self) -> Vec<String> {
        self.backend
            .node_ids()
            .into_iter()
            .map(|id| self.backend.endpoint(id))
            .collect()
    }

    async fn status(&self) -> Result<v1::ClusterStatusResponse, ClientError> {
        let impaired = self.impaired.lock().expect("lock").clone();
        let eps: Vec<String> = self
            .backend
            .node_ids()
            .into_iter()
            .filter(|id| !impaired.contains(id))
            .map(|id| self.backend.endpoint(id))
            .collect();
        let options = ClientOptions {
            retries: eps.len() as u32,
            retry_backoff_ms: 20,
            timeout_ms: 2_000,
            ..ClientOptions::default()
        };
        Client::new(&eps, options)?.cluster_status().await
    }

    /// Polls the status every 100 ms until `check` passes; Err(last state) after `timeout`.
    async fn wait<F>(&self, what: &str, timeout: Duration, mut check: F) -> Result<Duration, String>
    where
        F: FnMut(&v1::ClusterStatusResponse) -> Result<(), String>,
    {
        let started = Instant::now();
        loop {
            blocking(|| self.backend.assert_alive());
            let last = match self.status().await {
                Ok(s) => match check(&s) {
                    Ok(()) => return Ok(started.elapsed()),
                    Err(missing) => format!("{missing}; status: {}", brief_status(&s)),
                },
                Err(e) => format!("ClusterStatus failed: {e}"),
            };
            if started.elapsed() >= timeout {
                return Err(format!(
                    "timed out after {:?} waiting for {what}: {last}",
                    started.elapsed()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn must_wait<F>(&self, what: &str, timeout: Duration, check: F) -> Duration
    where
        F: FnMut(&v1::ClusterStatusResponse) -> Result<(), String>,
    {
        match self.wait(what, timeout, check).await {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    /// The node leading the most shards of the stream (lowest id on ties) and those shards.
    async fn busiest_leader(&self) -> (u64, Vec<String>) {
        let s = self
            .status()
            .await
            .unwrap_or_else(|e| panic!("ClusterStatus before a fault: {e}"));
        let counts = leader_counts(&s, STREAM);
        let node = counts
            .iter()
            .max_by_key(|(id, n)| (*n, std::cmp::Reverse(*id)))
            .map(|(id, _)| *id)
            .unwrap_or(1);
        (node, led_by(&s, node))
    }

    /// The last log index of every shard now (the backlog a returning node must catch up).
    async fn last_indexes(&self) -> BTreeMap<String, u64> {
        match self.status().await {
            Ok(s) => s
                .shards
                .iter()
                .filter(|x| x.stream_name == STREAM)
                .map(|x| (x.shard_id.clone(), x.last_log_index))
                .collect(),
            Err(_) => BTreeMap::new(),
        }
    }

    /// After `node` came back: waits until it is reachable and every replica of every shard
    /// has matched at least `backlog` (the last index when the fault was healed).
    async fn recover(
        &self,
        node: u64,
        backlog: &BTreeMap<String, u64>,
        bound: Duration,
        fault: &mut Fault,
    ) -> Result<(), String> {
        self.impaired.lock().expect("lock").remove(&node);
        let reachable = self
            .wait(&format!("node {node} to be reachable"), bound, |s| match s
                .nodes
                .iter()
                .find(|n| n.node_id == node)
            {
                Some(n) if n.reachable => Ok(()),
                _ => Err(format!("node {node} is not reachable")),
            })
            .await?;
        let _ = reachable;
        fault.reachable_after = Some(fault.healed.elapsed());
        self.wait(
            &format!("every replica to catch up after node {node} returned"),
            bound.saturating_sub(fault.healed.elapsed()),
            |s| caught_up_to(s, backlog),
        )
        .await?;
        fault.recovered = Some(Instant::now());
        Ok(())
    }

    fn fault(&self, label: String, node: u64, led: Vec<String>) -> Fault {
        let now = Instant::now();
        Fault {
            label,
            node,
            led,
            start: now,
            healed: now,
            recovered: None,
            reachable_after: None,
            exit_took: None,
            control_failover: None,
        }
    }

    /// Runs one nemesis; returns its faults (a rolling restart makes three).
    async fn inject(
        &self,
        nemesis: &Nemesis,
        bound: Duration,
        failures: &mut Vec<String>,
    ) -> Vec<Fault> {
        let backend = self.backend.clone();
        let mut out = Vec::new();
        match nemesis {
            Nemesis::KillZone { down }
            | Nemesis::Partition { cut: down }
            | Nemesis::Pause { paused: down }
            | Nemesis::KillControlLeader { down } => {
                let (node, led, label) = match nemesis {
                    Nemesis::KillControlLeader { .. } => {
                        let s = self
                            .status()
                            .await
                            .unwrap_or_else(|e| panic!("ClusterStatus: {e}"));
                        let node = s.control_leader_node_id;
                        assert!(
                            node != 0,
                            "no control leader before the fault: {}",
                            brief_status(&s)
                        );
                        (node, led_by(&s, node), "kill control leader")
                    }
                    Nemesis::KillZone { .. } => {
                        let (n, l) = self.busiest_leader().await;
                        (n, l, "kill zone")
                    }
                    Nemesis::Partition { .. } => {
                        let (n, l) = self.busiest_leader().await;
                        (n, l, "partition zone")
                    }
                    _ => {
                        let (n, l) = self.busiest_leader().await;
                        (n, l, "pause node")
                    }
                };
                let zone = backend.zone(node);
                let mut f = self.fault(format!("{label} {zone} ({down:?})"), node, led);
                self.impaired.lock().expect("lock").insert(node);
                println!(
                    "chaos: {} at node {node} (leading {} shards)",
                    f.label,
                    f.led.len()
                );
                f.start = Instant::now();
                blocking(|| match nemesis {
                    Nemesis::Partition { .. } => backend.partition(node),
                    Nemesis::Pause { .. } => backend.pause(node),
                    _ => backend.kill(node),
                });
                if matches!(nemesis, Nemesis::KillControlLeader { .. }) {
                    match self
                        .wait(
                            "another node to lead the control plane",
                            *down + bound,
                            |s| {
                                if s.control_leader_node_id != 0 && s.control_leader_node_id != node
                                {
                                    Ok(())
                                } else {
                                    Err(format!("control leader is {}", s.control_leader_node_id))
                                }
                            },
                        )
                        .await
                    {
                        Ok(_) => f.control_failover = Some(f.start.elapsed()),
                        Err(e) => failures.push(format!("{}: {e}", f.label)),
                    }
                }
                tokio::time::sleep_until((f.start + *down).into()).await;
                let backlog = self.last_indexes().await;
                f.healed = Instant::now();
                blocking(|| match nemesis {
                    Nemesis::Partition { .. } => backend.heal(node),
                    Nemesis::Pause { .. } => backend.resume(node),
                    _ => backend.start(node),
                });
                if let Err(e) = self.recover(node, &backlog, bound, &mut f).await {
                    failures.push(format!("{}: {e}", f.label));
                }
                out.push(f);
            }
            Nemesis::RollingRestart => {
                for node in backend.node_ids() {
                    let s = self
                        .status()
                        .await
                        .unwrap_or_else(|e| panic!("ClusterStatus: {e}"));
                    let zone = backend.zone(node);
                    let mut f =
                        self.fault(format!("rolling restart {zone}"), node, led_by(&s, node));
                    println!(
                        "chaos: {} (node {node}, leading {} shards)",
                        f.label,
                        f.led.len()
                    );
                    self.impaired.lock().expect("lock").insert(node);
                    f.start = Instant::now();
                    f.exit_took = Some(blocking(|| backend.stop(node)));
                    let backlog = self.last_indexes().await;
                    f.healed = Instant::now();
                    blocking(|| backend.start(node));
                    if let Err(e) = self.recover(node, &backlog, bound, &mut f).await {
                        failures.push(format!("{}: {e}", f.label));
                        out.push(f);
                        break;
                    }
                    out.push(f);
                }
            }
        }
        out
    }
}

fn led_by(s: &v1::ClusterStatusResponse, node: u64) -> Vec<String> {
    s.shards
        .iter()
        .filter(|x| x.stream_name == STREAM && x.leader_node_id == node)
        .map(|x| x.shard_id.clone())
        .collect()
}

/// Every shard of the stream has a leader and each replica matched at least `backlog[shard]`.
fn caught_up_to(
    s: &v1::ClusterStatusResponse,
    backlog: &BTreeMap<String, u64>,
) -> Result<(), String> {
    let shards: Vec<&v1::ShardStatus> = s
        .shards
        .iter()
        .filter(|x| x.stream_name == STREAM)
        .collect();
    if shards.is_empty() {
        return Err(format!("no shard of {STREAM} in the status"));
    }
    for sh in shards {
        if sh.leader_node_id == 0 {
            return Err(format!("{} has no leader", sh.shard_id));
        }
        let need = backlog
            .get(&sh.shard_id)
            .copied()
            .unwrap_or(sh.last_log_index);
        for r in &sh.replicas {
            if r.matched_index < need {
                return Err(format!(
                    "{}: node {} matched {} of {need}",
                    sh.shard_id, r.node_id, r.matched_index
                ));
            }
        }
    }
    Ok(())
}

/// Runs `plan` against the cluster of `backend` (started, not necessarily ready).
pub async fn run(backend: Arc<dyn Backend>, plan: Plan) -> Outcome {
    let started = Instant::now();
    let runner = Runner {
        backend: backend.clone(),
        impaired: Mutex::new(BTreeSet::new()),
    };
    let ids = backend.node_ids();
    runner
        .must_wait("the cluster to be ready", Duration::from_secs(120), |s| {
            for id in &ids {
                if !s.nodes.iter().any(|n| n.node_id == *id && n.reachable) {
                    return Err(format!("node {id} is not reachable"));
                }
            }
            if s.control_leader_node_id == 0 || s.cluster_id.is_empty() {
                return Err("no control leader or cluster id yet".into());
            }
            Ok(())
        })
        .await;
    let endpoints = runner.endpoints();
    let admin = Client::new(&endpoints, ClientOptions::default()).expect("client");
    admin
        .create_stream(STREAM, plan.shards)
        .await
        .expect("CreateStream");
    admin
        .wait_active(STREAM, Duration::from_secs(60))
        .await
        .expect("stream ACTIVE");
    runner
        .must_wait(
            "every shard to have a leader",
            Duration::from_secs(60),
            |s| caught_up_to(s, &BTreeMap::new()),
        )
        .await;
    let shards = ShardInfo::from_shards(&admin.list_shards(STREAM).await.expect("ListShards"));
    assert_eq!(shards.len(), plan.shards as usize, "ListShards");

    // The workload.
    let shared = Shared::new();
    let reader_client = Client::new(
        &endpoints,
        ClientOptions {
            retries: 10,
            retry_backoff_ms: 50,
            timeout_ms: 3_000,
            ..ClientOptions::default()
        },
    )
    .expect("client");
    let consumers: Vec<(Arc<ConsumerLog>, tokio::task::JoinHandle<()>)> = shards
        .iter()
        .map(|sh| {
            let log = Arc::new(ConsumerLog {
                shard_id: sh.shard_id.clone(),
                seen: Mutex::new(Vec::new()),
                errors: Default::default(),
            });
            let task = tokio::spawn(workload::consume(
                reader_client.clone(),
                sh.shard_id.clone(),
                log.clone(),
                shared.clone(),
            ));
            (log, task)
        })
        .collect();
    let load_started = Instant::now();
    let producers: Vec<_> = (0..plan.producers)
        .map(|p| {
            tokio::spawn(workload::produce(
                p,
                workload::writer_clients(&endpoints, workload::WRITE_TIMEOUT),
                shared.clone(),
                plan.rate,
            ))
        })
        .collect();
    let probes: Vec<_> = shards
        .iter()
        .enumerate()
        .map(|(s, sh)| {
            tokio::spawn(workload::probe(
                s,
                sh.clone(),
                workload::writer_clients(&endpoints, workload::PROBE_TIMEOUT),
                shared.clone(),
            ))
        })
        .collect();

    // The nemeses.
    let mut failures = Vec::new();
    let mut faults = Vec::new();
    tokio::time::sleep(plan.warmup).await;
    let mut round = 0;
    while round == 0 || load_started.elapsed() < plan.run_for {
        round += 1;
        for n in &plan.nemeses {
            let acked_before = shared.acked.load(std::sync::atomic::Ordering::SeqCst);
            faults.extend(runner.inject(n, plan.recovery_max, &mut failures).await);
            tokio::time::sleep(plan.settle).await;
            let acked = shared.acked.load(std::sync::atomic::Ordering::SeqCst) - acked_before;
            println!(
                "chaos: round {round}, {n:?} done at {:.1}s, {acked} records acknowledged meanwhile",
                load_started.elapsed().as_secs_f64()
            );
            if !failures.is_empty() {
                break;
            }
        }
        if !failures.is_empty() {
            break;
        }
    }

    // Stop writing, then check.
    shared.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let load_ended = Instant::now();
    let mut ledger = Ledger::new();
    for (p, h) in producers.into_iter().enumerate() {
        let l = tokio::time::timeout(Duration::from_secs(60), h)
            .await
            .unwrap_or_else(|_| panic!("producer {p} did not stop within 60 s"))
            .unwrap_or_else(|e| panic!("producer {p} failed: {e}"));
        ledger.merge(l);
    }
    let mut probe_logs: Vec<ProbeLog> = Vec::new();
    for (s, h) in probes.into_iter().enumerate() {
        let l = tokio::time::timeout(Duration::from_secs(60), h)
            .await
            .unwrap_or_else(|_| panic!("probe {s} did not stop within 60 s"))
            .unwrap_or_else(|e| panic!("probe {s} failed: {e}"));
        probe_logs.push(l);
    }
    for p in &mut probe_logs {
        ledger.merge(std::mem::take(&mut p.ledger));
    }
    runner.impaired.lock().expect("lock").clear();
    runner
        .must_wait(
            "every replica to catch up after the load",
            Duration::from_secs(180),
            |s| {
                for id in &ids {
                    if !s.nodes.iter().any(|n| n.node_id == *id && n.reachable) {
                        return Err(format!("node {id} is not reachable"));
                    }
                }
                let exact: BTreeMap<String, u64> = s
                    .shards
                    .iter()
                    .filter(|x| x.stream_name == STREAM)
                    .map(|x| (x.shard_id.clone(), x.last_log_index))
                    .collect();
                caught_up_to(s, &exact)
            },
        )
        .await;
    let reads: Vec<ShardRead> = read_stream(&admin, STREAM, Duration::from_secs(180))
        .await
        .unwrap_or_else(|e| panic!("reading {STREAM} back failed: {e}"));
    let verdict = verify(&ledger, &reads);

    // Consumers: let them reach the end, then compare.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let behind: Vec<String> = consumers
            .iter()
            .filter_map(|(log, _)| {
                let fin = reads.iter().find(|r| r.shard_id == log.shard_id)?;
                let n = log.seen.lock().expect("lock").len();
                (n < fin.records.len())
                    .then(|| format!("{} {n}/{}", log.shard_id, fin.records.len()))
            })
            .collect();
        if behind.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            failures.push(format!(
                "consumers did not reach the end of their shards within 90 s: {behind:?}"
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shared
        .stop_consumers
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut consumer_divergences = Vec::new();
    let mut consumer_records = 0;
    let mut consumer_errors = 0;
    for (log, task) in consumers {
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        let seen = log.seen.lock().expect("lock");
        consumer_records += seen.len();
        consumer_errors += log.errors.load(std::sync::atomic::Ordering::SeqCst);
        match reads.iter().find(|r| r.shard_id == log.shard_id) {
            Some(fin) => consumer_divergences.extend(consumer_divergence(&seen, fin)),
            None => consumer_divergences
                .push(format!("{} is missing from the final read", log.shard_id)),
        }
    }

    // Availability, from the probes' acknowledgements.
    let acks: BTreeMap<String, Vec<Instant>> = probe_logs
        .iter()
        .map(|p| (p.shard_id.clone(), p.acks.clone()))
        .collect();
    let faults: Vec<(Fault, Availability)> = faults
        .into_iter()
        .map(|f| {
            let end = f.recovered.unwrap_or(load_ended).min(load_ended);
            let mut a = Availability::default();
            for (shard, times) in &acks {
                let gap = longest_gap(times, f.start, end);
                if f.led.contains(shard) {
                    a.gap_led = Some(a.gap_led.unwrap_or_default().max(gap));
                } else {
                    a.gap_other = a.gap_other.max(gap);
                }
                a.per_shard.push(format!(
                    "{}{}={:.2}",
                    shard
                        .rsplit('-')
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| shard.clone()),
                    if f.led.contains(shard) { "*" } else { "" },
                    gap.as_secs_f64()
                ));
                if first_ack_after(times, f.healed).is_none() {
                    a.never_resumed.push(shard.clone());
                }
            }
            (f, a)
        })
        .collect();
    for (f, a) in &faults {
        if !a.never_resumed.is_empty() {
            failures.push(format!(
                "{}: writes never resumed on {:?} after the fault was healed",
                f.label, a.never_resumed
            ));
        }
    }
    let longest_unavailability = acks
        .values()
        .map(|t| longest_gap(t, load_started + plan.warmup / 2, load_ended))
        .max()
        .unwrap_or_default();
    Outcome {
        backend: format!("{} backend: {}", backend.kind(), backend.describe()),
        plan,
        ledger,
        verdict,
        consumer_divergences,
        consumer_records,
        consumer_errors,
        faults,
        longest_unavailability,
        load: load_ended - load_started,
        total: started.elapsed(),
        failures,
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

impl Outcome {
    /// Records lost: acknowledged and missing, or read elsewhere than acknowledged.
    pub fn lost(&self) -> usize {
        [
            "acknowledged record missing from the read",
            "acknowledged record read at another shard or sequence number",
        ]
        .iter()
        .filter_map(|k| self.verdict.violations.get(k).map(|v| v.0))
        .sum()
    }

    /// Ordering violations: per shard sequence order, per key order, real-time order, and
    /// consumers that saw another order than the final one.
    pub fn reordered(&self) -> usize {
        [
            "sequence numbers not strictly increasing within a shard",
            "per-key order broken (first appearances out of send order)",
            "real-time order broken (a record acknowledged earlier appears after one sent later)",
        ]
        .iter()
        .filter_map(|k| self.verdict.violations.get(k).map(|v| v.0))
        .sum::<usize>()
            + self.consumer_divergences.len()
    }

    pub fn passed(&self) -> bool {
        self.verdict.violations.is_empty()
            && self.consumer_divergences.is_empty()
            && self.ledger.anomalies.is_empty()
            && self.failures.is_empty()
    }

    /// The human summary.
    pub fn summary(&self) -> String {
        let c = self.ledger.counts();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "chaos summary: scenario {}, {}\n  {} shards, {} producers at {}/s + {} probe writers + {} consumers; load {} (total {})",
            self.plan.name,
            self.backend,
            self.plan.shards,
            self.plan.producers,
            self.plan.rate,
            self.plan.shards,
            self.plan.shards,
            secs(self.load),
            secs(self.total)
        );
        let _ = writeln!(
            s,
            "  records: sent {}, acked {}, failed {}, unknown {}, retried {}; read back {} (duplicated {}, unacknowledged but present {})",
            c.sent,
            c.acked,
            c.failed,
            c.unknown,
            c.retried,
            self.verdict.read,
            self.verdict.duplicates,
            self.verdict.unacked_present
        );
        let _ = writeln!(
            s,
            "  checker: lost {}, reordered {}, other violations {}, consumer divergences {}, contract anomalies {} => {}",
            self.lost(),
            self.reordered(),
            self.verdict
                .violation_count()
                .saturating_sub(self.lost() + self.reordered() - self.consumer_divergences.len()),
            self.consumer_divergences.len(),
            self.ledger.anomalies.len(),
            if self.passed() { "PASS" } else { "FAIL" }
        );
        let _ = writeln!(
            s,
            "  consumers: {} records seen live, {} read errors (retried); attempts acked/failed/unknown {}/{}/{}, errors {:?}",
            self.consumer_records,
            self.consumer_errors,
            self.ledger.attempts_acked,
            self.ledger.attempts_failed,
            self.ledger.attempts_unknown,
            self.ledger.errors
        );
        let _ = writeln!(
            s,
            "  longest write unavailability of any shard over the whole load: {}",
            secs(self.longest_unavailability)
        );
        let _ = writeln!(
            s,
            "  {:<44} {:>4} {:>4}  {:>14} {:>13} {:>10} {:>10} {:>10}",
            "fault",
            "node",
            "led",
            "gap led shards",
            "gap others",
            "reachable",
            "caught up",
            "extra"
        );
        for (f, a) in &self.faults {
            let extra = match (f.exit_took, f.control_failover) {
                (Some(d), _) => format!("exit {}", secs(d)),
                (_, Some(d)) => format!("ctl {}", secs(d)),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "  {:<44} {:>4} {:>4}  {:>14} {:>13} {:>10} {:>10} {:>10}",
                f.label,
                f.node,
                f.led.len(),
                a.gap_led.map(secs).unwrap_or_else(|| "-".into()),
                secs(a.gap_other),
                f.reachable_after.map(secs).unwrap_or_else(|| "NO".into()),
                f.recovered
                    .map(|r| secs(r - f.healed))
                    .unwrap_or_else(|| "NO".into()),
                extra
            );
            let _ = writeln!(s, "      per shard: {}", a.per_shard.join(" "));
        }
        let _ = writeln!(
            s,
            "  (gaps: longest time without an acknowledged probe write from the fault until recovery, per shard group; \
             reachable/caught up: after the fault was undone; probes give up on a silent node after {}, producers after {})",
            secs(workload::PROBE_TIMEOUT),
            secs(workload::WRITE_TIMEOUT)
        );
        if !self.verdict.violations.is_empty() {
            let _ = writeln!(s, "  violations:\n{}", self.verdict.describe());
        }
        for d in &self.consumer_divergences {
            let _ = writeln!(s, "  consumer divergence: {d}");
        }
        for a in self.ledger.anomalies.iter().take(10) {
            let _ = writeln!(s, "  anomaly: {a}");
        }
        for f in &self.failures {
            let _ = writeln!(s, "  failure: {f}");
        }
        s
    }
}
