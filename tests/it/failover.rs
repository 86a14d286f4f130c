//! Stopping the busiest shard leader under a concurrent write load, by SIGKILL or gracefully by
//! SIGTERM, loses no acknowledged record, keeps per-key order, and write unavailability stays
//! bounded. A graceful stop hands every leadership over before the process exits.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use braid_client::{Client, ClientOptions};
use braid_tests::cluster::{leader_counts, WAIT};
use braid_tests::ledger::record_data;
use braid_tests::verify::{read_stream, verify};
use braid_tests::{Clock, Cluster, Ledger};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const STREAM: &str = "load";
const SHARDS: u32 = 4;
const PRODUCERS: usize = 4;
/// Load phases: kill the busiest leader after the first, restart it after the second, keep
/// writing for the third (and until writes are acknowledged again, at most RECOVERY_MAX).
const BEFORE_KILL: Duration = Duration::from_secs(3);
const KILLED_FOR: Duration = Duration::from_secs(3);
const AFTER_RESTART: Duration = Duration::from_secs(3);
const RECOVERY_MAX: Duration = Duration::from_secs(40);
/// Records acknowledged after the restart before the load may end.
const ACKS_AFTER_RESTART_MIN: u64 = 200;
/// Offered load per producer (records per second) and a hard cap on its records.
const RATE_PER_PRODUCER: f64 = 300.0;
const RECORDS_PER_PRODUCER_MAX: usize = 6_000;
/// Attempts of one record before the producer gives up on it.
const ATTEMPTS_MAX: u32 = 12;
/// Partition keys shared by all producers: a few hot ones, many cold ones.
const HOT_KEYS: usize = 5;
const COLD_KEYS: usize = 45;
const HOT_WEIGHT: u32 = 15;
const BATCH_MAX: usize = 50;
/// Sanity bound on the longest write gap after the kill.
const UNAVAILABILITY_MAX: Duration = Duration::from_secs(30);

fn keys() -> Vec<(String, u32)> {
    (0..HOT_KEYS)
        .map(|i| (format!("hot-{i}"), HOT_WEIGHT))
        .chain((0..COLD_KEYS).map(|i| (format!("cold-{i}"), 1)))
        .collect()
}

/// What the producers share.
struct Shared {
    clock: Clock,
    stop: AtomicBool,
    acked: AtomicU64,
}

/// One producer: sequential calls (a quarter PutRecord, the rest PutRecords of 1..=50 records)
/// through its preferred node, moving to the next node after an error. At most one record per
/// partition key is outstanding: the next record of a key is created only once the previous one
/// was acknowledged or given up after ATTEMPTS_MAX attempts.
async fn produce(p: usize, clients: Vec<Client>, shared: Arc<Shared>) -> Ledger {
    let mut rng = StdRng::seed_from_u64(0x5eed + p as u64);
    let keys = keys();
    let total_weight: u32 = keys.iter().map(|k| k.1).sum();
    let mut ledger = Ledger::new();
    // key index -> record index of the key's outstanding record
    let mut pending: BTreeMap<usize, usize> = BTreeMap::new();
    let mut next_in_key = vec![0u64; keys.len()];
    let mut created = 0usize;
    let mut preferred = p % clients.len();
    let mut failures_in_row = 0u32;
    let started = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) {
        let allowed = ((started.elapsed().as_secs_f64() * RATE_PER_PRODUCER) as usize + BATCH_MAX)
            .min(RECORDS_PER_PRODUCER_MAX);
        let fresh_budget = allowed.saturating_sub(created);
        let single = rng.gen_bool(0.25);
        let size = if single {
            1
        } else {
            rng.gen_range(1..=BATCH_MAX)
        };
        // Retries first, then new records on keys without an outstanding record.
        let mut batch: Vec<usize> = pending.values().take(size).copied().collect();
        let mut free: Vec<usize> = (0..keys.len())
            .filter(|k| !pending.contains_key(k))
            .collect();
        let mut fresh = 0;
        while batch.len() < size && fresh < fresh_budget && !free.is_empty() {
            let free_weight: u32 = free.iter().map(|k| keys[*k].1).sum();
            debug_assert!(free_weight <= total_weight);
            let mut pick = rng.gen_range(0..free_weight);
            let mut j = 0;
            while pick >= keys[free[j]].1 {
                pick -= keys[free[j]].1;
                j += 1;
            }
            let k = free.swap_remove(j);
            let id = format!("p{p}-{created}");
            created += 1;
            let key = keys[k].0.clone();
            let data = record_data(&id, &key, rng.gen_range(0..200));
            let order = Some((format!("p{p}/{key}"), next_in_key[k]));
            next_in_key[k] += 1;
            let ix = ledger.add(id, key, data, order);
            pending.insert(k, ix);
            batch.push(ix);
            fresh += 1;
        }
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let outcome = ledger
            .put(
                &clients[preferred],
                STREAM,
                &batch,
                single && batch.len() == 1,
                &shared.clock,
            )
            .await;
        shared
            .acked
            .fetch_add(outcome.acked as u64, Ordering::SeqCst);
        pending.retain(|_, ix| {
            let r = &ledger.records[*ix];
            r.ack.is_none() && r.attempts < ATTEMPTS_MAX
        });
        if outcome.not_acked > 0 {
            preferred = (preferred + 1) % clients.len();
            failures_in_row += 1;
            let backoff = 50u64 << (failures_in_row - 1).min(4);
            tokio::time::sleep(Duration::from_millis(backoff)).await;
        } else {
            failures_in_row = 0;
        }
    }
    ledger
}

/// The longest time without an acknowledgement between `from` and `to`.
fn longest_gap(ack_times: &[Instant], from: Instant, to: Instant) -> Duration {
    let mut times: Vec<Instant> = ack_times.iter().copied().filter(|t| *t >= from).collect();
    times.sort();
    let mut prev = from;
    let mut longest = Duration::ZERO;
    for t in times {
        longest = longest.max(t - prev);
        prev = t;
    }
    longest.max(to.saturating_duration_since(prev))
}

/// How the busiest leader is stopped.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    Kill9,
    Terminate,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_leader_under_load_loses_nothing() {
    stop_leader_under_load(Stop::Kill9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_hands_leadership_over_and_loses_nothing() {
    stop_leader_under_load(Stop::Terminate).await;
}

async fn stop_leader_under_load(stop: Stop) {
    let test_started = Instant::now();
    let cluster = Cluster::start(3).await;
    let admin = cluster.client();
    admin
        .create_stream(STREAM, SHARDS)
        .await
        .expect("CreateStream");
    admin
        .wait_active(STREAM, WAIT)
        .await
        .expect("stream ACTIVE");
    cluster.wait_stream_leaders(STREAM, WAIT).await;

    // One client per node, without retries: the producers do their own retries and accounting.
    let options = ClientOptions {
        retries: 0,
        retry_backoff_ms: 0,
        timeout_ms: 8_000,
        ..ClientOptions::default()
    };
    let clients: Vec<Client> = cluster
        .node_ids()
        .into_iter()
        .map(|id| cluster.node_client(id, options.clone()))
        .collect();
    let shared = Arc::new(Shared {
        clock: Clock::new(),
        stop: AtomicBool::new(false),
        acked: AtomicU64::new(0),
    });
    let load_started = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| tokio::spawn(produce(p, clients.clone(), shared.clone())))
        .collect();

    // Phase 1: load, then kill the node leading the most shards.
    tokio::time::sleep_until((load_started + BEFORE_KILL).into()).await;
    let status = cluster
        .status()
        .await
        .expect("ClusterStatus before the kill");
    let counts = leader_counts(&status, STREAM);
    let (victim, led) = counts
        .iter()
        .copied()
        .max_by_key(|(id, n)| (*n, std::cmp::Reverse(*id)))
        .unwrap_or_else(|| panic!("no shard of {STREAM} has a leader: {status:?}"));
    let acked_before_kill = shared.acked.load(Ordering::SeqCst);
    assert!(
        acked_before_kill > 0,
        "no record was acknowledged in the {BEFORE_KILL:?} before the kill"
    );
    let killed_at = Instant::now();
    match stop {
        Stop::Kill9 => cluster.kill9(victim),
        Stop::Terminate => {
            let (took, clean) =
                tokio::task::block_in_place(|| cluster.terminate(victim, Duration::from_secs(30)));
            assert!(clean, "node {victim} did not exit within 30 s of SIGTERM");
            // Handed over, not failed over: the survivors already know the new leaders (after
            // a crash they would go on naming the dead node for at least the vote lease plus an
            // election timeout, 2.4 s with the default timing).
            let status = cluster.status().await.expect("ClusterStatus after SIGTERM");
            let running = cluster.running_ids();
            let orphans: Vec<String> = status
                .shards
                .iter()
                .filter(|sh| sh.stream_name == STREAM && !running.contains(&sh.leader_node_id))
                .map(|sh| format!("{} (leader {})", sh.shard_id, sh.leader_node_id))
                .collect();
            assert!(
                orphans.is_empty(),
                "right after node {victim} exited, shards are not led by a running node: \
                 {orphans:?}; {}\n{}",
                braid_tests::cluster::brief_status(&status),
                cluster.log_tail(victim, 30)
            );
            println!("failover: node {victim} exited {took:?} after SIGTERM");
        }
    }
    println!(
        "failover: stopped node {victim} by {stop:?} (leader of {led} of {SHARDS} shards; \
         leaders {counts:?}) at {:.1}s, {acked_before_kill} records acknowledged before",
        (killed_at - load_started).as_secs_f64()
    );

    // Phase 2: load without the victim, then restart it.
    tokio::time::sleep_until((killed_at + KILLED_FOR).into()).await;
    let acked_while_down = shared.acked.load(Ordering::SeqCst) - acked_before_kill;
    cluster.restart(victim);
    let restarted_at = Instant::now();
    let acked_at_restart = shared.acked.load(Ordering::SeqCst);
    cluster.wait_reachable(victim, WAIT).await;
    println!(
        "failover: restarted node {victim} at {:.1}s, reachable after {:.1}s; {acked_while_down} \
         records acknowledged while it was down",
        (restarted_at - load_started).as_secs_f64(),
        restarted_at.elapsed().as_secs_f64()
    );

    // Phase 3: load with the node back, until writes are acknowledged again (bounded).
    let earliest_end = restarted_at + AFTER_RESTART;
    let latest_end = restarted_at + RECOVERY_MAX;
    loop {
        let now = Instant::now();
        let acked_since = shared.acked.load(Ordering::SeqCst) - acked_at_restart;
        if now >= latest_end || (now >= earliest_end && acked_since >= ACKS_AFTER_RESTART_MIN) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shared.stop.store(true, Ordering::SeqCst);
    let stopped_at = Instant::now();
    let mut ledger = Ledger::new();
    for (p, handle) in producers.into_iter().enumerate() {
        let l = tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .unwrap_or_else(|_| panic!("producer {p} did not stop within 30 s"))
            .unwrap_or_else(|e| panic!("producer {p} failed: {e}"));
        ledger.merge(l);
    }
    let load_secs = (stopped_at - load_started).as_secs_f64();
    let unavailability = longest_gap(&ledger.ack_times, killed_at, stopped_at);
    let acks_after_kill = ledger.ack_times.iter().filter(|t| **t > killed_at).count();
    let acks_after_restart = ledger
        .ack_times
        .iter()
        .filter(|t| **t > restarted_at)
        .count();

    // Wait for the restarted node to catch up, then read everything back.
    cluster.wait_caught_up(WAIT).await;
    let reader = cluster.client();
    let reads = read_stream(&reader, STREAM, WAIT)
        .await
        .unwrap_or_else(|e| panic!("reading {STREAM} back failed: {e}"));
    let verdict = verify(&ledger, &reads);
    let c = ledger.counts();
    println!(
        "failover summary ({stop:?}): sent={} acked={} failed={} unknown={} retried={} duplicates={} \
         unacked_but_stored={} read={} longest_unavailability_ms={} load={load_secs:.1}s \
         calls={} attempts(acked/failed/unknown)={}/{}/{} errors={:?} test_time={:.1}s",
        c.sent,
        c.acked,
        c.failed,
        c.unknown,
        c.retried,
        verdict.duplicates,
        verdict.unacked_present,
        verdict.read,
        unavailability.as_millis(),
        ledger.calls,
        ledger.attempts_acked,
        ledger.attempts_failed,
        ledger.attempts_unknown,
        ledger.errors,
        test_started.elapsed().as_secs_f64()
    );

    assert!(
        ledger.anomalies.is_empty(),
        "{} answers broke the API contract during the load, e.g. {:#?}",
        ledger.anomalies.len(),
        &ledger.anomalies[..ledger.anomalies.len().min(10)]
    );
    verdict.assert_ok(&format!("after stopping the leader by {stop:?} under load"));
    assert!(
        c.acked >= 1_000,
        "only {} records were acknowledged; the load did not run",
        c.acked
    );
    assert!(
        acks_after_kill > 0 && acks_after_restart > 0,
        "writes did not resume: {acks_after_kill} acknowledging calls after the kill, \
         {acks_after_restart} after the restart"
    );
    assert!(
        unavailability < UNAVAILABILITY_MAX,
        "writes were unavailable for {unavailability:?} after the kill (bound {UNAVAILABILITY_MAX:?})"
    );
}
