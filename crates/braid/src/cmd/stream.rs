//! `braid stream create|delete|list|describe`.

use std::io::Write;
use std::time::Duration;

use braid_client::v1;
use serde_json::{json, Value};

use super::{format_timestamp_ms, write_table, ConnArgs};

#[derive(clap::Subcommand, Debug)]
pub enum StreamCommand {
    /// Create a stream and wait until it is ACTIVE.
    Create {
        /// Stream name: 1..=128 characters of [a-zA-Z0-9_.-].
        name: String,
        /// Number of shards.
        #[arg(long, default_value_t = 1)]
        shards: u32,
        /// How long to wait for the stream to become ACTIVE, in seconds.
        #[arg(long, default_value_t = 60)]
        wait_secs: u64,
    },
    /// Delete a stream.
    Delete { name: String },
    /// List stream names.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show a stream: shards, hash-key and sequence ranges, replicas and leaders.
    Describe {
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(conn: &ConnArgs, command: StreamCommand) -> anyhow::Result<()> {
    let client = conn.client()?;
    let mut out = std::io::stdout().lock();
    match command {
        StreamCommand::Create {
            name,
            shards,
            wait_secs,
        } => {
            client.create_stream(&name, shards).await?;
            client
                .wait_active(&name, Duration::from_secs(wait_secs))
                .await?;
            writeln!(
                out,
                "created stream {name} with {shards} shard{} (ACTIVE)",
                if shards == 1 { "" } else { "s" }
            )?;
        }
        StreamCommand::Delete { name } => {
            client.delete_stream(&name).await?;
            writeln!(out, "deleted stream {name}")?;
        }
        StreamCommand::List { json } => {
            let names = client.list_streams().await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&names)?)?;
            } else {
                for name in names {
                    writeln!(out, "{name}")?;
                }
            }
        }
        StreamCommand::Describe { name, json } => {
            let d = client.describe_stream(&name).await?;
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&description_json(&d))?
                )?;
            } else {
                write_description(&mut out, &d)?;
            }
        }
    }
    Ok(())
}

fn write_description(out: &mut impl Write, d: &v1::StreamDescription) -> std::io::Result<()> {
    writeln!(out, "Stream:     {}", d.stream_name)?;
    writeln!(out, "Status:     {}", d.stream_status)?;
    writeln!(out, "ARN:        {}", d.stream_arn)?;
    writeln!(
        out,
        "Created:    {}",
        format_timestamp_ms(d.stream_creation_timestamp_ms)
    )?;
    writeln!(out, "Retention:  {} hours", d.retention_period_hours)?;
    writeln!(
        out,
        "Shards:     {} ({} open)",
        d.shards.len(),
        d.open_shard_count
    )?;
    writeln!(out)?;
    let rows: Vec<Vec<String>> = d
        .shards
        .iter()
        .map(|s| {
            let hash = s
                .hash_key_range
                .as_ref()
                .map(|h| format!("{}..{}", h.starting_hash_key, h.ending_hash_key))
                .unwrap_or_default();
            let (state, seq) = match &s.sequence_number_range {
                Some(r) if r.ending_sequence_number.is_empty() => {
                    ("open", format!("{}..", r.starting_sequence_number))
                }
                Some(r) => (
                    "closed",
                    format!(
                        "{}..{}",
                        r.starting_sequence_number, r.ending_sequence_number
                    ),
                ),
                None => ("?", String::new()),
            };
            vec![
                s.shard_id.clone(),
                s.group_id.to_string(),
                state.to_string(),
                format_replicas(&s.replicas),
                hash,
                seq,
            ]
        })
        .collect();
    write_table(
        out,
        &[
            "SHARD",
            "GROUP",
            "STATE",
            "REPLICAS (node@zone, *leader)",
            "HASH KEY RANGE",
            "SEQUENCE RANGE",
        ],
        &rows,
    )
}

pub fn format_replicas(replicas: &[v1::Replica]) -> String {
    let mut parts: Vec<String> = replicas
        .iter()
        .map(|r| {
            format!(
                "{}@{}{}",
                r.node_id,
                if r.zone.is_empty() { "-" } else { &r.zone },
                if r.leader { "*" } else { "" }
            )
        })
        .collect();
    if parts.is_empty() {
        parts.push("-".to_string());
    }
    parts.join(" ")
}

pub fn replica_json(r: &v1::Replica) -> Value {
    json!({ "node_id": r.node_id, "zone": r.zone, "leader": r.leader, "matched_index": r.matched_index, "failed": r.failed })
}

fn description_json(d: &v1::StreamDescription) -> Value {
    let shards: Vec<Value> = d
        .shards
        .iter()
        .map(|s| {
            json!({
                "shard_id": s.shard_id,
                "parent_shard_id": s.parent_shard_id,
                "adjacent_parent_shard_id": s.adjacent_parent_shard_id,
                "group_id": s.group_id,
                "hash_key_range": s.hash_key_range.as_ref().map(|h| json!({
                    "starting_hash_key": h.starting_hash_key,
                    "ending_hash_key": h.ending_hash_key,
                })),
                "sequence_number_range": s.sequence_number_range.as_ref().map(|r| json!({
                    "starting_sequence_number": r.starting_sequence_number,
                    "ending_sequence_number": r.ending_sequence_number,
                })),
                "replicas": s.replicas.iter().map(replica_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "stream_name": d.stream_name,
        "stream_arn": d.stream_arn,
        "stream_status": d.stream_status,
        "retention_period_hours": d.retention_period_hours,
        "stream_creation_timestamp_ms": d.stream_creation_timestamp_ms,
        "open_shard_count": d.open_shard_count,
        "shards": shards,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_are_compact() {
        let r = |node_id, zone: &str, leader| v1::Replica {
            node_id,
            zone: zone.into(),
            leader,
            matched_index: 0,
            failed: String::new(),
        };
        assert_eq!(
            format_replicas(&[r(1, "a", false), r(2, "b", true)]),
            "1@a 2@b*"
        );
        assert_eq!(format_replicas(&[]), "-");
    }
}
