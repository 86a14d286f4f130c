//! `braid bench`: put throughput and latency, and put→read end-to-end latency.
//!
//! Every record's data starts with 16 bytes: the send time (u64 little-endian, nanoseconds since
//! the Unix epoch) and the record id (u64 little-endian); the rest is random. Consumers (one per
//! open shard, positioned at LATEST before producing starts) compute end-to-end latency from the
//! embedded send time, so it includes their polling interval (`--poll-ms`).
//!
//! Puts go over gRPC, or with `--kinesis-endpoint` through the Kinesis HTTP API (AWS JSON 1.1
//! over HTTP/1.1, or h2c with `--http2`; see `bench_kinesis.rs`). Stream creation and the
//! consumers always use gRPC, so put→read latency is measured the same way for both.

use std::io::Write;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use braid_client::{v1, Client, ClientError, ShardReader, StartingPosition};
use braid_types::{limits, ErrorCode};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::{progress, ConnArgs};

#[path = "bench_kinesis.rs"]
mod kinesis;

/// Bytes at the front of every record: send time and record id.
const HEADER_BYTES: usize = 16;
/// Extra random bytes, so that payloads start at different offsets of the random pool.
const POOL_SLACK: usize = 4096;
/// Distinct errors reported.
const ERRORS_SHOWN_MAX: usize = 5;
/// Histograms count microseconds up to an hour.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Stream to write to.
    #[arg(long)]
    pub stream: String,
    /// Create the stream with this many shards first (an existing stream is used as is).
    #[arg(long)]
    pub create_shards: Option<u32>,
    /// Records to put in total.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Bytes of data per record (at least 16).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(HEADER_BYTES as u64..=limits::RECORD_DATA_BYTES_MAX as u64))]
    pub size: u64,
    /// Concurrent producer tasks, each with one call in flight.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub producers: u64,
    /// Records per PutRecords call.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=limits::PUT_RECORDS_COUNT_MAX as u64))]
    pub batch: u64,
    /// Send one PutRecord call per record instead of PutRecords batches.
    #[arg(long)]
    pub single: bool,
    /// Cap on the total put rate, in records per second. Producers are staggered evenly over
    /// one call interval, so calls arrive spread out rather than in bursts of `--producers`.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Also read every open shard from LATEST and measure put→read latency per record.
    #[arg(long)]
    pub consumers: bool,
    /// Consumers' sleep after an empty read, in milliseconds.
    #[arg(long, default_value_t = 10)]
    pub poll_ms: u64,
    /// Consumers read with Braid's long poll: at the tip, the server holds the read up to this
    /// many milliseconds (at most 1,000) for new records. 0: plain GetRecords polling.
    #[arg(long, default_value_t = 0)]
    pub wait_ms: u32,
    /// After the last put, how long consumers may go without receiving anything before the
    /// bench stops waiting for the remaining records, in seconds.
    #[arg(long, default_value_t = 10)]
    pub drain_timeout_secs: u64,
    /// Calls sent within this many milliseconds of the start (and the records they carry) are
    /// a warm-up: their latencies are reported apart from the rest (connections, the client's
    /// shard routes and the servers' buffers are still being set up). Throughput always covers
    /// the whole run.
    #[arg(long, default_value_t = 0)]
    pub warmup_ms: u64,
    /// Report on stderr each call at least this slow, with the time it was sent (at most
    /// five per producer), to find the cause in the servers' logs.
    #[arg(long, default_value_t = 250)]
    pub slow_ms: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Put through the Kinesis HTTP API at this URL (http://HOST:PORT; comma-separated for
    /// failover) instead of gRPC: PutRecords (PutRecord with --single) as AWS JSON 1.1, one
    /// connection per producer. Stream creation and consumers still use gRPC (--endpoint).
    #[arg(long, value_delimiter = ',', value_name = "URL")]
    pub kinesis_endpoint: Vec<String>,
    /// With --kinesis-endpoint: HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    #[arg(long, requires = "kinesis_endpoint")]
    pub http2: bool,
    /// With --kinesis-endpoint: sign every request with SigV4 using this key (as SDKs do), for
    /// a node that verifies signatures. Without it requests carry a placeholder signature,
    /// which a node with no configured access keys accepts unchecked.
    #[arg(long, value_name = "AKID:SECRET", requires = "kinesis_endpoint")]
    pub kinesis_access_key: Option<String>,
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("valid histogram bounds")
}

fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) -> anyhow::Result<()> {
    into.add(from)
        .map_err(|e| anyhow::anyhow!("merging histograms: {e}"))
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(HISTOGRAM_MAX_US)) as u64
}

/// Ids `[start, end)` of producer `p` of `n`, splitting `total` as evenly as possible.
fn id_range(total: u64, n: u64, p: u64) -> Range<u64> {
    let start = total * p / n;
    let end = total * (p + 1) / n;
    start..end
}

#[derive(Default)]
struct Errors(Vec<String>);

impl Errors {
    fn add(&mut self, e: impl ToString) {
        let e = e.to_string();
        if self.0.len() < ERRORS_SHOWN_MAX && !self.0.contains(&e) {
            self.0.push(e);
        }
    }
}

/// Calls at least `--slow-ms` slow reported on stderr per producer.
const SLOW_CALLS_REPORTED_MAX: u32 = 5;

struct ProducerStats {
    latency: Histogram<u64>,
    /// Latencies of the calls sent during the warm-up.
    warmup_latency: Histogram<u64>,
    slow_calls_reported: u32,
    ok: u64,
    failed: u64,
    calls: u64,
    errors: Errors,
}

struct Producing {
    client: Client,
    /// Put through the Kinesis HTTP API instead of gRPC.
    kinesis: Option<Arc<kinesis::Target>>,
    stream: Arc<str>,
    size: usize,
    /// Calls sent before this (ns since the epoch, the clock of the records' send stamps) are
    /// the warm-up.
    warm_until_ns: u64,
    /// Calls at least this slow are reported on stderr.
    slow_call: Duration,
    batch: u64,
    single: bool,
    /// Records per second for this task.
    rate: Option<f64>,
    bar: ProgressBar,
}

/// `phase` in [0, 1): with a rate cap, where in one call interval this producer's calls fall,
/// so that producers' calls are spread evenly over time instead of arriving in bursts.
async fn produce(
    cfg: Arc<Producing>,
    ids: Range<u64>,
    phase: f64,
) -> Result<ProducerStats, ClientError> {
    let mut rng = StdRng::from_entropy();
    let mut pool = vec![0u8; cfg.size + POOL_SLACK];
    rng.fill(&mut pool[..]);
    let mut stats = ProducerStats {
        latency: new_histogram(),
        warmup_latency: new_histogram(),
        slow_calls_reported: 0,
        ok: 0,
        failed: 0,
        calls: 0,
        errors: Errors::default(),
    };
    let started = tokio::time::Instant::now();
    let mut http = cfg.kinesis.clone().map(kinesis::Conn::new);
    let mut id = ids.start;
    while id < ids.end {
        if let Some(rate) = cfg.rate {
            let per_call = if cfg.single { 1 } else { cfg.batch } as f64;
            let due = started
                + Duration::from_secs_f64(((id - ids.start) as f64 + phase * per_call) / rate);
            tokio::time::sleep_until(due).await;
        }
        let n = if cfg.single {
            1
        } else {
            cfg.batch.min(ids.end - id)
        };
        let mut datas: Vec<(u64, Vec<u8>)> = (id..id + n)
            .map(|rid| {
                let offset = rng.gen_range(0..=POOL_SLACK);
                let mut data = pool[offset..offset + cfg.size].to_vec();
                data[8..16].copy_from_slice(&rid.to_le_bytes());
                (rid, data)
            })
            .collect();
        let sent_ns = unix_nanos().to_le_bytes();
        for (_, d) in &mut datas {
            d[..8].copy_from_slice(&sent_ns);
        }
        let mut entries: Vec<v1::PutRecordsRequestEntry> = datas
            .into_iter()
            .map(|(rid, data)| v1::PutRecordsRequestEntry {
                data: data.into(),
                partition_key: format!("{rid:016x}"),
                explicit_hash_key: String::new(),
            })
            .collect();
        let t0 = Instant::now();
        let result = if let Some(http) = http.as_mut() {
            if cfg.single {
                let e = &entries[0];
                http.put_record(&cfg.stream, &e.partition_key, &e.data)
                    .await
                    .map(|()| 0u64)
            } else {
                http.put_records(&cfg.stream, &entries).await.map(|r| {
                    for e in r.errors {
                        stats.errors.add(e);
                    }
                    r.failed
                })
            }
        } else if cfg.single {
            let e = entries.pop().expect("one entry");
            cfg.client
                .put_record(&cfg.stream, &e.partition_key, e.data, None)
                .await
                .map(|_| 0u64)
        } else {
            cfg.client
                .put_records(&cfg.stream, entries)
                .await
                .map(|resp| {
                    for r in resp.records.iter().filter(|r| !r.error_code.is_empty()) {
                        stats
                            .errors
                            .add(format!("{}: {}", r.error_code, r.error_message));
                    }
                    u64::from(resp.failed_record_count).min(n)
                })
        };
        let took = t0.elapsed();
        let histogram = if u64::from_le_bytes(sent_ns) < cfg.warm_until_ns {
            &mut stats.warmup_latency
        } else {
            &mut stats.latency
        };
        histogram.saturating_record(micros(took).max(1));
        if took >= cfg.slow_call && stats.slow_calls_reported < SLOW_CALLS_REPORTED_MAX {
            // When, to find the cause in the servers' logs.
            let sent_ms = u64::from_le_bytes(sent_ns) / 1_000_000;
            eprintln!(
                "bench: a call took {} ms (sent at {}.{:03} s since the epoch)",
                took.as_millis(),
                sent_ms / 1000,
                sent_ms % 1000
            );
            stats.slow_calls_reported += 1;
        }
        stats.calls += 1;
        match result {
            Ok(failed) => {
                stats.ok += n - failed;
                stats.failed += failed;
            }
            // A wrong stream or argument fails every call the same way: stop at once.
            Err(e)
                if matches!(
                    e.code(),
                    Some(
                        ErrorCode::ResourceNotFound
                            | ErrorCode::InvalidArgument
                            | ErrorCode::Validation
                    )
                ) =>
            {
                return Err(e);
            }
            Err(e) => {
                stats.failed += n;
                stats.errors.add(e);
            }
        }
        cfg.bar.inc(n);
        id += n;
    }
    Ok(stats)
}

struct ConsumerStats {
    latency: Histogram<u64>,
    /// Latencies of the records put during the warm-up.
    warmup_latency: Histogram<u64>,
}

/// Reads one shard until `stop`, recording the end-to-end latency of this run's records.
async fn consume(
    mut reader: ShardReader,
    since_ns: u64,
    // Records sent before this (ns since the epoch) belong to the warm-up; set before the
    // producers start.
    warm_until_ns: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    poll: Duration,
) -> Result<ConsumerStats, ClientError> {
    let mut latency = new_histogram();
    let mut warmup_latency = new_histogram();
    while !stop.load(Ordering::Relaxed) {
        match reader.next_batch(0).await {
            Ok(records) if records.is_empty() => {
                if reader.is_finished() {
                    break;
                }
                tokio::time::sleep(poll).await;
            }
            Ok(records) => {
                let now = unix_nanos();
                let mut ours = 0;
                for r in &records {
                    let Some(sent) = r
                        .data
                        .get(..8)
                        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                    else {
                        continue;
                    };
                    if sent < since_ns || r.data.len() < HEADER_BYTES {
                        continue; // not written by this run
                    }
                    let h = if sent < warm_until_ns.load(Ordering::Relaxed) {
                        &mut warmup_latency
                    } else {
                        &mut latency
                    };
                    h.saturating_record((now.saturating_sub(sent) / 1_000).max(1));
                    ours += 1;
                }
                received.fetch_add(ours, Ordering::Relaxed);
            }
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => return Err(e),
        }
    }
    Ok(ConsumerStats {
        latency,
        warmup_latency,
    })
}

pub async fn run(conn: &ConnArgs, args: BenchArgs) -> anyhow::Result<()> {
    let client = conn.client()?;
    let kinesis = if args.kinesis_endpoint.is_empty() {
        None
    } else {
        Some(Arc::new(kinesis::Target {
            endpoints: args
                .kinesis_endpoint
                .iter()
                .map(|e| kinesis::Endpoint::parse(e))
                .collect::<anyhow::Result<_>>()?,
            http2: args.http2,
            key: args
                .kinesis_access_key
                .as_deref()
                .map(kinesis::parse_access_key)
                .transpose()?,
            retries: conn.retries,
            timeout: Duration::from_millis(conn.timeout_ms.max(1)),
        }))
    };
    let transport = kinesis
        .as_ref()
        .map(|k| k.describe())
        .unwrap_or_else(|| format!("gRPC {}", client.endpoints().join(",")));
    if let Some(shards) = args.create_shards {
        match client.create_stream(&args.stream, shards).await {
            Ok(()) => {}
            Err(e) if e.code() == Some(ErrorCode::ResourceInUse) => {
                eprintln!("stream {} already exists; using it", args.stream);
            }
            Err(e) => return Err(e.into()),
        }
        client
            .wait_active(&args.stream, Duration::from_secs(120))
            .await?;
    }

    let since_ns = unix_nanos();
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let warm_until_ns = Arc::new(AtomicU64::new(u64::MAX));
    let mut consumers = JoinSet::new();
    if args.consumers {
        let shards = client.list_shards(&args.stream).await?;
        for shard in shards.iter().filter(|s| {
            s.sequence_number_range
                .as_ref()
                .is_none_or(|r| r.ending_sequence_number.is_empty())
        }) {
            let reader = ShardReader::open(
                client.clone(),
                &args.stream,
                &shard.shard_id,
                StartingPosition::Latest,
            )
            .await?
            .with_wait(args.wait_ms);
            consumers.spawn(consume(
                reader,
                since_ns,
                warm_until_ns.clone(),
                received.clone(),
                stop.clone(),
                Duration::from_millis(args.poll_ms),
            ));
        }
    }

    let bar = progress(Some(args.records), "records");
    let cfg = Arc::new(Producing {
        client: client.clone(),
        kinesis,
        stream: Arc::from(args.stream.as_str()),
        size: args.size as usize,
        batch: args.batch,
        single: args.single,
        rate: args.rate.map(|r| r.max(1) as f64 / args.producers as f64),
        slow_call: Duration::from_millis(args.slow_ms),
        warm_until_ns: unix_nanos().saturating_add(args.warmup_ms.saturating_mul(1_000_000)),
        bar: bar.clone(),
    });
    let started = Instant::now();
    // Calls and the records they carry are classified by the same stamp and the same bound.
    warm_until_ns.store(cfg.warm_until_ns, Ordering::Relaxed);
    let mut producers = JoinSet::new();
    for p in 0..args.producers {
        producers.spawn(produce(
            cfg.clone(),
            id_range(args.records, args.producers, p),
            p as f64 / args.producers.max(1) as f64,
        ));
    }
    let mut put_latency = new_histogram();
    let mut put_warmup_latency = new_histogram();
    let (mut ok, mut failed, mut calls) = (0u64, 0u64, 0u64);
    let mut errors = Errors::default();
    let mut fatal = None;
    while let Some(joined) = producers.join_next().await {
        match joined {
            Ok(Ok(s)) => {
                merge(&mut put_latency, &s.latency)?;
                merge(&mut put_warmup_latency, &s.warmup_latency)?;
                ok += s.ok;
                failed += s.failed;
                calls += s.calls;
                for e in s.errors.0 {
                    errors.add(e);
                }
            }
            Ok(Err(e)) => {
                if fatal.is_none() {
                    fatal = Some(e);
                }
                producers.abort_all();
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => return Err(anyhow::anyhow!("producer task failed: {e}")),
        }
    }
    let put_elapsed = started.elapsed();
    bar.finish_and_clear();
    if let Some(e) = fatal {
        stop.store(true, Ordering::Relaxed);
        return Err(e.into());
    }

    // Wait for the consumers to see every record that was put, while they make progress.
    let mut e2e_latency = new_histogram();
    let mut e2e_warmup_latency = new_histogram();
    let mut e2e_elapsed = None;
    if args.consumers {
        let drain_timeout = Duration::from_secs(args.drain_timeout_secs);
        let mut last_seen = received.load(Ordering::Relaxed);
        let mut last_progress = Instant::now();
        while received.load(Ordering::Relaxed) < ok && !consumers.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now_seen = received.load(Ordering::Relaxed);
            if now_seen != last_seen {
                last_seen = now_seen;
                last_progress = Instant::now();
            } else if last_progress.elapsed() >= drain_timeout {
                eprintln!(
                    "warning: consumers stopped receiving; {} of {ok} records read",
                    now_seen
                );
                break;
            }
        }
        e2e_elapsed = Some(started.elapsed());
        stop.store(true, Ordering::Relaxed);
        while let Some(joined) = consumers.join_next().await {
            match joined {
                Ok(Ok(s)) => {
                    merge(&mut e2e_latency, &s.latency)?;
                    merge(&mut e2e_warmup_latency, &s.warmup_latency)?;
                }
                Ok(Err(e)) => errors.add(format!("consumer: {e}")),
                Err(e) => errors.add(format!("consumer task failed: {e}")),
            }
        }
    }

    let report = Report {
        args: &args,
        transport: &transport,
        ok,
        failed,
        calls,
        put_elapsed,
        put_latency: &put_latency,
        put_warmup_latency: &put_warmup_latency,
        e2e: e2e_elapsed.map(|elapsed| (elapsed, received.load(Ordering::Relaxed), &e2e_latency)),
        e2e_warmup_latency: &e2e_warmup_latency,
    };
    for e in &errors.0 {
        eprintln!("error seen: {e}");
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report.json())?)?;
    } else {
        report.write_text(&mut out)?;
    }
    Ok(())
}

struct Report<'a> {
    args: &'a BenchArgs,
    /// `gRPC http://...` or `Kinesis HTTP/1.1 http://...`.
    transport: &'a str,
    ok: u64,
    failed: u64,
    calls: u64,
    put_elapsed: Duration,
    /// Latencies of the calls sent after the warm-up (all of them without one).
    put_latency: &'a Histogram<u64>,
    put_warmup_latency: &'a Histogram<u64>,
    /// Time until the consumers were done, records they read, their latencies.
    e2e: Option<(Duration, u64, &'a Histogram<u64>)>,
    e2e_warmup_latency: &'a Histogram<u64>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

fn latency_json(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.5)),
        "p90_ms": ms(h.value_at_quantile(0.9)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "mean_ms": h.mean() / 1_000.0,
    })
}

fn latency_text(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".to_string();
    }
    format!(
        "p50 {:.3}  p90 {:.3}  p99 {:.3}  p999 {:.3}  max {:.3}  ({} samples)",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
        h.len()
    )
}

impl Report<'_> {
    fn records_per_sec(&self) -> f64 {
        let secs = self.put_elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    fn mb_per_sec(&self) -> f64 {
        self.records_per_sec() * self.args.size as f64 / 1e6
    }

    fn json(&self) -> Value {
        let a = self.args;
        json!({
            "stream": a.stream,
            "transport": self.transport,
            "records": a.records,
            "size_bytes": a.size,
            "producers": a.producers,
            "batch": if a.single { 1 } else { a.batch },
            "single": a.single,
            "rate_cap": a.rate,
            "ok": self.ok,
            "failed": self.failed,
            "calls": self.calls,
            "elapsed_s": self.put_elapsed.as_secs_f64(),
            "records_per_s": self.records_per_sec(),
            "mb_per_s": self.mb_per_sec(),
            "warmup_ms": a.warmup_ms,
            "put_latency": latency_json(self.put_latency),
            "put_warmup_latency": latency_json(self.put_warmup_latency),
            "e2e": self.e2e.map(|(elapsed, received, h)| json!({
                "received": received,
                "elapsed_s": elapsed.as_secs_f64(),
                "latency": latency_json(h),
                "warmup_latency": latency_json(self.e2e_warmup_latency),
            })),
        })
    }

    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        let a = self.args;
        let mode = if a.single {
            "PutRecord calls".to_string()
        } else {
            format!("PutRecords batches of {}", a.batch)
        };
        writeln!(
            out,
            "bench: stream {}, {} records of {} bytes, {} producers, {mode} via {}{}",
            a.stream,
            a.records,
            a.size,
            a.producers,
            self.transport,
            a.rate
                .map(|r| format!(", capped at {r} records/s"))
                .unwrap_or_default()
        )?;
        writeln!(
            out,
            "put:   {} ok, {} failed, {} calls in {:.3}s: {:.0} records/s, {:.2} MB/s",
            self.ok,
            self.failed,
            self.calls,
            self.put_elapsed.as_secs_f64(),
            self.records_per_sec(),
            self.mb_per_sec()
        )?;
        writeln!(
            out,
            "put latency per call (ms):    {}",
            latency_text(self.put_latency)
        )?;
        if a.warmup_ms > 0 {
            writeln!(
                out,
                "  warm-up ({} ms) calls (ms): {}",
                a.warmup_ms,
                latency_text(self.put_warmup_latency)
            )?;
        }
        if let Some((elapsed, received, h)) = self.e2e {
            writeln!(
                out,
                "read:  {received} of {} records in {:.3}s",
                self.ok,
                elapsed.as_secs_f64()
            )?;
            writeln!(out, "e2e latency per record (ms):  {}", latency_text(h))?;
            if a.warmup_ms > 0 {
                writeln!(
                    out,
                    "  warm-up records (ms):       {}",
                    latency_text(self.e2e_warmup_latency)
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_ranges_cover_everything_once() {
        for (total, n) in [(0, 1), (10, 3), (100_000, 7), (5, 8)] {
            let mut next = 0;
            for p in 0..n {
                let r = id_range(total, n, p);
                assert_eq!(r.start, next);
                next = r.end;
            }
            assert_eq!(next, total);
        }
    }

    #[test]
    fn latency_summaries() {
        let mut h = new_histogram();
        assert_eq!(latency_text(&h), "no samples");
        assert!(latency_json(&h).is_null());
        for v in 1..=1000 {
            h.saturating_record(v * 1000);
        }
        let j = latency_json(&h);
        assert_eq!(j["count"], 1000);
        assert!((j["p50_ms"].as_f64().unwrap() - 500.0).abs() < 1.0);
        assert!((j["p90_ms"].as_f64().unwrap() - 900.0).abs() < 1.0);
        assert!((j["max_ms"].as_f64().unwrap() - 1000.0).abs() < 1.0);
    }
}
