//! `braid bench` against three real nodes: every record it puts is acknowledged and read back by
//! its consumers, and its report accounts for every call and record (warm-up included).

use std::process::Command;
use std::time::Duration;

use braid_tests::cluster::{braid_binary, Cluster};
use serde_json::Value;

const RECORDS: u64 = 3_000;
const BATCH: u64 = 100;

fn count(v: &Value) -> u64 {
    if v.is_null() {
        return 0;
    }
    v["count"].as_u64().expect("a latency summary has a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_puts_and_reads_back_every_record_and_reports_them_all() {
    let cluster = Cluster::start(3).await;
    let endpoints = cluster.endpoints().join(",");
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(braid_binary())
            .args(["bench", "--endpoint", &endpoints, "--stream", "bench"])
            .args(["--create-shards", "2", "--records", &RECORDS.to_string()])
            .args(["--size", "256", "--producers", "3"])
            .args(["--batch", &BATCH.to_string()])
            .args(["--rate", "3000", "--warmup-ms", "300", "--consumers"])
            .args(["--wait-ms", "200", "--json"])
            .output()
            .expect("run braid bench")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("braid bench ran {:?}", started.elapsed());
    assert!(out.status.success(), "braid bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bench --json printed no JSON ({e}): {stderr}"));

    assert_eq!(report["ok"], RECORDS, "{report:#}");
    assert_eq!(report["failed"], 0, "{report:#}");
    // 3 producers split 3,000 records into 1,000 each: 10 calls of 100 per producer.
    let calls = report["calls"].as_u64().expect("calls");
    assert_eq!(calls, RECORDS / BATCH, "{report:#}");
    // Every call is in exactly one of the two histograms; at 3,000 records/s the run lasts
    // about a second, so both hold some.
    let (measured, warmup) = (
        count(&report["put_latency"]),
        count(&report["put_warmup_latency"]),
    );
    assert_eq!(measured + warmup, calls, "{report:#}");
    assert!(measured > 0 && warmup > 0, "{report:#}");
    assert!(report["records_per_s"].as_f64().expect("rate") > 0.0);

    // The consumers (one per shard, from LATEST) read every record back.
    let e2e = &report["e2e"];
    assert_eq!(e2e["received"], RECORDS, "{report:#}");
    assert_eq!(
        count(&e2e["latency"]) + count(&e2e["warmup_latency"]),
        RECORDS,
        "{report:#}"
    );
    let p99 = e2e["latency"]["p99_ms"].as_f64().expect("p99");
    assert!(p99 > 0.0 && p99 < Duration::from_secs(60).as_millis() as f64);
}
