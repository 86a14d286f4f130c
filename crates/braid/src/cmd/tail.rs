//! `braid tail`: follow new records on every shard concurrently until Ctrl-C.

use std::io::Write;
use std::time::Duration;

use braid_client::{ClientError, ShardReader, StartingPosition};
use braid_types::names;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{format_record, ConnArgs};

#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// Stream name.
    pub stream: String,
    /// Where to start: latest, trim-horizon, at:SEQ, after:SEQ or timestamp:MS.
    #[arg(long, default_value = "latest")]
    pub from: StartingPosition,
    /// Follow only this shard.
    #[arg(long)]
    pub shard: Option<String>,
    /// Sleep between polls of a shard that had nothing new, in milliseconds (after the
    /// server's long poll of `--wait-ms` found nothing).
    #[arg(long, default_value_t = 200)]
    pub poll_ms: u64,
    /// How long the server may hold a read at the tip of a shard for new records, in
    /// milliseconds (Braid's long poll, at most 1,000; 0 polls like Kinesis GetRecords).
    #[arg(long, default_value_t = 1000)]
    pub wait_ms: u32,
    /// Stop after this many records.
    #[arg(long)]
    pub max: Option<u64>,
    /// Print data as hex instead of (lossy) UTF-8.
    #[arg(long)]
    pub hex: bool,
}

pub async fn run(conn: &ConnArgs, args: TailArgs) -> anyhow::Result<()> {
    let client = conn.client()?;
    let shards: Vec<String> = match &args.shard {
        Some(s) => vec![names::shard_id(names::parse_shard_id(s)?)],
        None => client
            .list_shards(&args.stream)
            .await?
            .into_iter()
            // From LATEST, closed shards have nothing more to give.
            .filter(|s| {
                args.from != StartingPosition::Latest
                    || s.sequence_number_range
                        .as_ref()
                        .is_none_or(|r| r.ending_sequence_number.is_empty())
            })
            .map(|s| s.shard_id)
            .collect(),
    };
    if shards.is_empty() {
        anyhow::bail!("stream {} has no shard to follow", args.stream);
    }
    let (tx, mut rx) = mpsc::channel::<Vec<String>>(64);
    let mut tasks = JoinSet::new();
    for shard in shards {
        let reader = ShardReader::open(client.clone(), &args.stream, &shard, args.from.clone())
            .await?
            .with_wait(args.wait_ms);
        tasks.spawn(follow(
            reader,
            tx.clone(),
            Duration::from_millis(args.poll_ms),
            args.hex,
        ));
    }
    drop(tx);

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut printed = 0u64;
    let mut out = std::io::stdout().lock();
    let result = loop {
        tokio::select! {
            _ = &mut ctrl_c => break Ok(()),
            lines = rx.recv() => match lines {
                Some(lines) => {
                    for line in lines {
                        writeln!(out, "{line}")?;
                        printed += 1;
                        if args.max.is_some_and(|m| printed >= m) {
                            break;
                        }
                    }
                    out.flush()?;
                    if args.max.is_some_and(|m| printed >= m) {
                        break Ok(());
                    }
                }
                None => break Ok(()), // every shard is closed and fully read
            },
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break Err(anyhow::Error::from(e)),
                Err(e) => break Err(anyhow::anyhow!("shard reader task failed: {e}")),
            },
        }
    };
    tasks.abort_all();
    result
}

/// Polls one shard, sending formatted lines, until the shard is finished, the printer is gone,
/// or a non-retryable error. Retryable errors (after the client's own retries) are reported and
/// waited out, so that tail survives node restarts.
async fn follow(
    mut reader: ShardReader,
    tx: mpsc::Sender<Vec<String>>,
    poll: Duration,
    hex: bool,
) -> Result<(), ClientError> {
    loop {
        match reader.next_batch(0).await {
            Ok(records) if records.is_empty() => {
                if reader.is_finished() {
                    return Ok(());
                }
                tokio::time::sleep(poll).await;
            }
            Ok(records) => {
                let lines = records
                    .iter()
                    .map(|r| format_record(reader.shard_id(), r, hex))
                    .collect();
                if tx.send(lines).await.is_err() {
                    return Ok(());
                }
            }
            Err(e) if e.is_retryable() => {
                eprintln!("warning: {}: {e}; retrying", reader.shard_id());
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
