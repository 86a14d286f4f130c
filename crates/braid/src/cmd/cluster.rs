//! `braid cluster status`.

use std::io::Write;

use braid_client::v1;
use serde_json::{json, Value};

use super::stream::replica_json;
use super::{write_table, ConnArgs};

#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Nodes (zone, address, reachability, leaders) and shard groups (leader, term, log
    /// indexes, replication lag per replica).
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(conn: &ConnArgs, command: ClusterCommand) -> anyhow::Result<()> {
    let client = conn.client()?;
    match command {
        ClusterCommand::Status { json } => {
            let status = client.cluster_status().await?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&status_json(&status))?
                )?;
            } else {
                write_status(&mut out, &status)?;
            }
        }
    }
    Ok(())
}

fn node_name(id: u64) -> String {
    if id == 0 {
        "-".to_string()
    } else {
        id.to_string()
    }
}

fn write_status(out: &mut impl Write, s: &v1::ClusterStatusResponse) -> std::io::Result<()> {
    writeln!(
        out,
        "Cluster:        {}",
        if s.cluster_id.is_empty() {
            "-"
        } else {
            &s.cluster_id
        }
    )?;
    writeln!(
        out,
        "Answered by:    node {}",
        node_name(s.answering_node_id)
    )?;
    writeln!(
        out,
        "Control leader: node {}",
        node_name(s.control_leader_node_id)
    )?;
    writeln!(out)?;
    let nodes: Vec<Vec<String>> = s
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.node_id.to_string(),
                n.zone.clone(),
                n.address.clone(),
                if n.reachable { "yes" } else { "NO" }.to_string(),
                n.leader_count.to_string(),
                n.replica_count.to_string(),
                n.forwarded_ops.to_string(),
            ]
        })
        .collect();
    write_table(
        out,
        &[
            "NODE",
            "ZONE",
            "ADDRESS",
            "REACHABLE",
            "LEADERS",
            "REPLICAS",
            "FORWARDED",
        ],
        &nodes,
    )?;
    writeln!(out)?;
    let shards: Vec<Vec<String>> = s
        .shards
        .iter()
        .map(|g| {
            vec![
                g.stream_name.clone(),
                g.shard_id.clone(),
                g.group_id.to_string(),
                node_name(g.leader_node_id),
                g.term.to_string(),
                g.last_log_index.to_string(),
                g.committed_index.to_string(),
                format_lag(g),
            ]
        })
        .collect();
    write_table(
        out,
        &[
            "STREAM",
            "SHARD",
            "GROUP",
            "LEADER",
            "TERM",
            "LAST",
            "COMMITTED",
            "REPLICAS (node=matched index, *leader)",
        ],
        &shards,
    )
}

/// `1*=120 (lag 0)  2=118 (lag 2)`: each replica's matched index and its lag behind the last log
/// index; `*` marks the leader.
fn format_lag(g: &v1::ShardStatus) -> String {
    let parts: Vec<String> = g
        .replicas
        .iter()
        .map(|r| {
            let leader = if r.leader { "*" } else { "" };
            if !r.failed.is_empty() {
                return format!("{}=FAILED", r.node_id);
            }
            format!(
                "{}{leader}={} (lag {})",
                r.node_id,
                r.matched_index,
                g.last_log_index.saturating_sub(r.matched_index)
            )
        })
        .collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join("  ")
    }
}

fn status_json(s: &v1::ClusterStatusResponse) -> Value {
    let nodes: Vec<Value> = s
        .nodes
        .iter()
        .map(|n| {
            json!({
                "node_id": n.node_id,
                "zone": n.zone,
                "address": n.address,
                "reachable": n.reachable,
                "leader_count": n.leader_count,
                "replica_count": n.replica_count,
                "forwarded_ops": n.forwarded_ops,
            })
        })
        .collect();
    let shards: Vec<Value> = s
        .shards
        .iter()
        .map(|g| {
            let replicas: Vec<Value> = g
                .replicas
                .iter()
                .map(|r| {
                    let mut v = replica_json(r);
                    v["lag"] = json!(g.last_log_index.saturating_sub(r.matched_index));
                    v
                })
                .collect();
            json!({
                "stream_name": g.stream_name,
                "shard_id": g.shard_id,
                "group_id": g.group_id,
                "leader_node_id": g.leader_node_id,
                "term": g.term,
                "last_log_index": g.last_log_index,
                "committed_index": g.committed_index,
                "quiesced": g.quiesced,
                "replicas": replicas,
            })
        })
        .collect();
    json!({
        "cluster_id": s.cluster_id,
        "answering_node_id": s.answering_node_id,
        "control_leader_node_id": s.control_leader_node_id,
        "nodes": nodes,
        "shards": shards,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag() {
        let r = |node_id, matched_index, leader| v1::Replica {
            node_id,
            zone: String::new(),
            leader,
            matched_index,
            failed: String::new(),
        };
        let g = v1::ShardStatus {
            last_log_index: 120,
            replicas: vec![r(1, 120, true), r(2, 118, false)],
            ..Default::default()
        };
        assert_eq!(format_lag(&g), "1*=120 (lag 0)  2=118 (lag 2)");
        let mut broken = g.clone();
        broken.replicas[1].failed = "storage error".into();
        assert_eq!(format_lag(&broken), "1*=120 (lag 0)  2=FAILED");
        assert_eq!(
            status_json(&v1::ClusterStatusResponse {
                shards: vec![g],
                ..Default::default()
            })["shards"][0]["replicas"][1]["lag"],
            2
        );
    }
}
