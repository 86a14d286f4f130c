//! Killing all three nodes at once (SIGKILL) and restarting them keeps every acknowledged
//! record, exactly once and in order, and the cluster keeps working afterwards.

use std::time::{Duration, Instant};

use braid_client::{Client, ClientOptions};
use braid_tests::cluster::WAIT;
use braid_tests::ledger::record_data;
use braid_tests::verify::{read_stream, verify, Verdict};
use braid_tests::{Clock, Cluster, Ledger};

const STREAM: &str = "durable";
const SHARDS: u32 = 3;
const FIRST_RECORDS: usize = 2_000;
const MORE_RECORDS: usize = 500;
const BATCH: usize = 100;
const KEYS: usize = 40;
const ATTEMPTS_MAX: u32 = 5;
/// After a failed check, how long to keep re-reading to tell a delay from a loss.
const RECHECK: Duration = Duration::from_secs(20);

/// Puts records `from..to` in PutRecords batches of BATCH, one call at a time. Records not
/// acknowledged are sent again (through the next node) up to ATTEMPTS_MAX times.
async fn put_range(clients: &[Client], ledger: &mut Ledger, clock: &Clock, from: usize, to: usize) {
    let mut preferred = 0;
    for start in (from..to).step_by(BATCH) {
        let mut batch: Vec<usize> = (start..(start + BATCH).min(to))
            .map(|n| {
                let id = format!("r-{n}");
                let key = format!("key-{}", n % KEYS);
                let data = record_data(&id, &key, 20 + n % 100);
                ledger.add(id, key, data, None)
            })
            .collect();
        while !batch.is_empty() {
            let outcome = ledger
                .put(&clients[preferred], STREAM, &batch, false, clock)
                .await;
            batch.retain(|ix| {
                let r = &ledger.records[*ix];
                r.ack.is_none() && r.attempts < ATTEMPTS_MAX
            });
            if outcome.not_acked > 0 {
                preferred = (preferred + 1) % clients.len();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Reads the stream back and checks it; returns the verdict and, if it failed, the failure
/// (after re-reading for up to RECHECK to tell a delay from a loss).
async fn read_and_verify(
    cluster: &Cluster,
    ledger: &Ledger,
    context: &str,
) -> (Verdict, Option<String>) {
    let read = || async {
        let reads = read_stream(&cluster.client(), STREAM, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{context}: reading {STREAM} failed: {e}"));
        verify(ledger, &reads)
    };
    let verdict = read().await;
    if verdict.violation_count() > 0 {
        // Diagnose before failing: do the missing records show up later, without new writes?
        let started = Instant::now();
        let later = loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let again = read().await;
            if again.violation_count() == 0 {
                break format!(
                    "a re-read {} ms later (no write in between) found no violation",
                    started.elapsed().as_millis()
                );
            }
            if started.elapsed() >= RECHECK {
                break format!(
                    "re-reads for {RECHECK:?} (no write in between) still found {} violation(s)",
                    again.violation_count()
                );
            }
        };
        let failure = format!(
            "{context}: a read right after the cluster reported ready found {} violation(s) \
             of the stream's guarantees ({later}):\n{}",
            verdict.violation_count(),
            verdict.describe()
        );
        return (verdict, Some(failure));
    }
    // Exactly once: nothing beyond the acknowledged records (a copy more is allowed only for a
    // record that was sent twice, and verify() already rejects any other duplicate).
    let c = ledger.counts();
    let expected = c.acked + verdict.duplicates + verdict.unacked_present;
    let failure = (verdict.read != expected).then(|| {
        format!(
            "{context}: read {} records for {} acknowledged (+{} duplicates)",
            verdict.read, c.acked, verdict.duplicates
        )
    });
    (verdict, failure)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_cluster_restart_keeps_every_acknowledged_record() {
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

    let options = ClientOptions {
        retries: 0,
        retry_backoff_ms: 0,
        timeout_ms: 10_000,
        ..ClientOptions::default()
    };
    let clients: Vec<Client> = cluster
        .node_ids()
        .into_iter()
        .map(|id| cluster.node_client(id, options.clone()))
        .collect();
    let clock = Clock::new();
    let mut ledger = Ledger::new();
    put_range(&clients, &mut ledger, &clock, 0, FIRST_RECORDS).await;
    let c = ledger.counts();
    assert_eq!(
        c.acked, FIRST_RECORDS,
        "a healthy cluster did not acknowledge every record: {c:?}, errors {:?}",
        ledger.errors
    );

    // Kill every node at once, right after the last acknowledgement, and restart them all.
    cluster.stop_all();
    let restarted_at = Instant::now();
    cluster.start_all();
    cluster.wait_ready(WAIT).await;
    cluster.wait_stream_leaders(STREAM, WAIT).await;
    let ready_after = restarted_at.elapsed();
    let mut failures = Vec::new();
    let (first, failure) = read_and_verify(
        &cluster,
        &ledger,
        "after a full-cluster SIGKILL and restart",
    )
    .await;
    failures.extend(failure);

    // The cluster keeps working: more records, then everything read back again.
    put_range(
        &clients,
        &mut ledger,
        &clock,
        FIRST_RECORDS,
        FIRST_RECORDS + MORE_RECORDS,
    )
    .await;
    let c = ledger.counts();
    assert_eq!(
        c.acked,
        FIRST_RECORDS + MORE_RECORDS,
        "the restarted cluster did not acknowledge every record: {c:?}, errors {:?}",
        ledger.errors
    );
    let (second, failure) =
        read_and_verify(&cluster, &ledger, "after writing to the restarted cluster").await;
    failures.extend(failure);
    println!(
        "restart summary: acked={} retried={} duplicates={} read_after_restart={} \
         read_at_end={} ready_after_restart_ms={} errors={:?} test_time={:.1}s",
        c.acked,
        c.retried,
        second.duplicates,
        first.read,
        second.read,
        ready_after.as_millis(),
        ledger.errors,
        test_started.elapsed().as_secs_f64()
    );
    assert!(
        ledger.anomalies.is_empty(),
        "answers broke the API contract: {:#?}",
        ledger.anomalies
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
