//! `braid get`: read records from every shard of a stream (or one shard).

use std::io::Write;
use std::time::Duration;

use braid_client::{ShardReader, StartingPosition};
use braid_types::{limits, names, SequenceNumber};

use super::{format_record, ConnArgs};

/// Empty `GetRecords` answers tolerated in a row while the shard reports being behind.
const EMPTY_READS_MAX: u32 = 10;

#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// Stream name.
    pub stream: String,
    /// Where to start: trim-horizon, latest, at:SEQ, after:SEQ or timestamp:MS (ms since the epoch).
    #[arg(long, default_value = "trim-horizon")]
    pub from: StartingPosition,
    /// Records to print at most, per shard.
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    /// Read only this shard (e.g. shardId-000000000001 or 1). With at:/after: positions the
    /// shard defaults to the one the sequence number belongs to.
    #[arg(long)]
    pub shard: Option<String>,
    /// Print data as hex instead of (lossy) UTF-8.
    #[arg(long)]
    pub hex: bool,
}

pub async fn run(conn: &ConnArgs, args: GetArgs) -> anyhow::Result<()> {
    let client = conn.client()?;
    let shards: Vec<String> = match (&args.shard, &args.from) {
        (Some(s), _) => vec![names::shard_id(names::parse_shard_id(s)?)],
        (
            None,
            StartingPosition::AtSequenceNumber(seq) | StartingPosition::AfterSequenceNumber(seq),
        ) => {
            vec![names::shard_id(SequenceNumber::parse(seq)?.shard_index)]
        }
        (None, _) => client
            .list_shards(&args.stream)
            .await?
            .into_iter()
            .map(|s| s.shard_id)
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    for shard in shards {
        let mut reader =
            ShardReader::open(client.clone(), &args.stream, &shard, args.from.clone()).await?;
        let mut printed = 0u64;
        let mut empty_reads = 0u32;
        while printed < args.limit && !reader.is_finished() {
            let want = (args.limit - printed).min(u64::from(limits::GET_RECORDS_COUNT_MAX)) as u32;
            let records = reader.next_batch(want).await?;
            if records.is_empty() {
                empty_reads += 1;
                if reader.millis_behind_latest() <= 0 || empty_reads >= EMPTY_READS_MAX {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            empty_reads = 0;
            for record in records.iter().take((args.limit - printed) as usize) {
                writeln!(out, "{}", format_record(&shard, record, args.hex))?;
                printed += 1;
            }
        }
        out.flush()?;
    }
    Ok(())
}
