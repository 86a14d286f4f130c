//! `braid put`: one record from flags, or one record per stdin line through the batching producer.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use braid_client::{v1, Producer, ProducerConfig};
use braid_types::limits;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{progress, ConnArgs};

/// Tickets awaited at once before reading more of stdin.
const PENDING_MAX: usize = 100_000;
/// Distinct record errors printed.
const ERRORS_SHOWN_MAX: usize = 5;

#[derive(clap::Args, Debug)]
pub struct PutArgs {
    /// Stream name.
    pub stream: String,
    /// Partition key of the record (or of every stdin line).
    #[arg(long, conflicts_with = "key_from_line")]
    pub key: Option<String>,
    /// Record data. Without it, records are read from stdin, one per line (empty lines skipped).
    #[arg(long, conflicts_with = "key_from_line")]
    pub data: Option<String>,
    /// Read stdin; each line is a record and also its partition key (first 256 characters).
    #[arg(long)]
    pub key_from_line: bool,
    /// Explicit hash key (decimal, 0..2^128-1) overriding the partition key's hash.
    #[arg(long)]
    pub explicit_hash_key: Option<String>,
    /// How long the producer waits to fill a batch, in milliseconds (stdin mode).
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
}

pub async fn run(conn: &ConnArgs, args: PutArgs) -> anyhow::Result<()> {
    let client = conn.client()?;
    if let Some(data) = &args.data {
        let key = args
            .key
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("--key is required with --data"))?;
        let r = client
            .put_record(
                &args.stream,
                key,
                data.as_bytes().to_vec(),
                args.explicit_hash_key.clone(),
            )
            .await?;
        writeln!(
            std::io::stdout().lock(),
            "{} {}",
            r.shard_id,
            r.sequence_number
        )?;
        return Ok(());
    }
    if args.key.is_none() && !args.key_from_line {
        anyhow::bail!("give --data with --key for one record, or --key or --key-from-line to read records from stdin");
    }
    if std::io::stdin().is_terminal() {
        eprintln!("reading records from stdin, one per line (Ctrl-D to end)");
    }

    let config = ProducerConfig {
        linger_ms: args.linger_ms,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client, args.stream.clone(), config);
    let bar = progress(None, "records");
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut pending = FuturesUnordered::new();
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    loop {
        line.clear();
        if stdin.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.is_empty() {
            summary.skipped += 1;
            continue;
        }
        let partition_key = match &args.key {
            Some(k) => k.clone(),
            None => String::from_utf8_lossy(&line)
                .chars()
                .take(limits::PARTITION_KEY_CHARS_MAX)
                .collect(),
        };
        let entry = v1::PutRecordsRequestEntry {
            data: line.clone().into(),
            partition_key,
            explicit_hash_key: args.explicit_hash_key.clone().unwrap_or_default(),
        };
        pending.push(producer.submit_entry(entry).await?);
        while pending.len() >= PENDING_MAX {
            if let Some(result) = pending.next().await {
                summary.record(result);
                bar.inc(1);
            }
        }
        while let Some(Some(result)) = pending.next().now_or_never() {
            summary.record(result);
            bar.inc(1);
        }
    }
    while let Some(result) = pending.next().await {
        summary.record(result);
        bar.inc(1);
    }
    producer.close().await;
    bar.finish_and_clear();

    let elapsed = started.elapsed().as_secs_f64();
    let total = summary.ok + summary.failed;
    let rate = if elapsed > 0.0 {
        total as f64 / elapsed
    } else {
        0.0
    };
    for e in &summary.errors {
        eprintln!("record failed: {e}");
    }
    let mut out = std::io::stdout().lock();
    write!(
        out,
        "records: {total}, failed: {}, elapsed: {elapsed:.3}s, {rate:.0} records/s",
        summary.failed
    )?;
    if summary.skipped > 0 {
        write!(out, " ({} empty lines skipped)", summary.skipped)?;
    }
    writeln!(out)?;
    if summary.failed > 0 {
        anyhow::bail!("{} of {total} records failed", summary.failed);
    }
    Ok(())
}

#[derive(Default)]
struct Summary {
    ok: u64,
    failed: u64,
    skipped: u64,
    errors: Vec<String>,
}

impl Summary {
    fn record(&mut self, result: Result<braid_client::PutOutcome, braid_client::ClientError>) {
        match result {
            Ok(_) => self.ok += 1,
            Err(e) => {
                self.failed += 1;
                let e = e.to_string();
                if self.errors.len() < ERRORS_SHOWN_MAX && !self.errors.contains(&e) {
                    self.errors.push(e);
                }
            }
        }
    }
}
