//! Leaders return to their preferred replicas (spread over nodes and zones) after a node that
//! led shards is killed and comes back.

use std::time::Duration;

use braid_client::{v1, Client};
use braid_tests::cluster::{leader_counts, Cluster};

/// Creates `stream` with 6 shards, waits until each node leads two of them, kills node 1 and
/// waits until its shards are led elsewhere.
async fn balanced_then_node_1_killed(cluster: &Cluster, client: &Client, stream: &str) {
    client
        .create_stream(stream, 6)
        .await
        .expect("create stream");
    client
        .wait_active(stream, Duration::from_secs(60))
        .await
        .expect("stream active");
    cluster
        .wait_status("two leaders per node", Duration::from_secs(60), |s| {
            two_leaders_per_node(s, stream)
        })
        .await;

    cluster.kill9(1);
    cluster
        .wait_status(
            "node 1's shards led elsewhere",
            Duration::from_secs(60),
            |s| {
                let c = leader_counts(s, stream);
                let led: usize = c.iter().filter(|(id, _)| *id != 1).map(|(_, n)| n).sum();
                if led == 6 {
                    Ok(())
                } else {
                    Err(format!("leaders {c:?}"))
                }
            },
        )
        .await;
}

fn two_leaders_per_node(s: &v1::ClusterStatusResponse, stream: &str) -> Result<(), String> {
    let c = leader_counts(s, stream);
    if c == vec![(1, 2), (2, 2), (3, 2)] {
        Ok(())
    } else {
        Err(format!("leaders {c:?}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leaders_rebalance_when_a_node_returns() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client();
    balanced_then_node_1_killed(&cluster, &client, "balance").await;

    cluster.restart(1);
    let started = std::time::Instant::now();
    cluster
        .wait_status(
            "leaders back to two per node",
            Duration::from_secs(90),
            |s| two_leaders_per_node(s, "balance"),
        )
        .await;
    println!(
        "rebalance: leaders back to 2/2/2 {:?} after node 1 restarted",
        started.elapsed()
    );

    // And the stream still takes writes and serves them.
    let r = client
        .put_record("balance", "k", b"after".to_vec(), None)
        .await
        .expect("put after rebalance");
    assert!(!r.sequence_number.is_empty());
}

/// The leadership transfer's recovery path: node 1 comes back *ignoring* every transfer to it
/// (fault injection, as if it died on receipt each time). A leader that started such a
/// transfer refuses writes and, in openraft, never cancels it; it must abdicate (stop its
/// heartbeats) so that the group elects someone. Leaders still end up 2/2/2, now through
/// ordinary elections, and every shard takes writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_whose_transfer_stalls_abdicates() {
    use braid_types::faults::IGNORE_TRANSFER_LEADER_ENV;
    let cluster = Cluster::start(3).await;
    let client = cluster.client();
    balanced_then_node_1_killed(&cluster, &client, "stall").await;

    cluster.restart_with_env(1, &[(IGNORE_TRANSFER_LEADER_ENV, "1")]);
    let started = std::time::Instant::now();
    cluster
        .wait_status(
            "leaders back to two per node (by elections)",
            Duration::from_secs(120),
            |s| two_leaders_per_node(s, "stall"),
        )
        .await;
    println!(
        "stalled transfers: leaders back to 2/2/2 {:?} after node 1 restarted",
        started.elapsed()
    );
    let log1 = std::fs::read_to_string(&cluster.node(1).log_path).expect("node 1 log");
    assert!(
        log1.contains("fault injected: ignoring a leadership transfer"),
        "node 1 was never asked to take over, so nothing stalled:\n{}",
        cluster.log_tail(1, 30)
    );
    let abdications: usize = [2, 3]
        .iter()
        .map(|id| {
            std::fs::read_to_string(&cluster.node(*id).log_path)
                .expect("node log")
                .matches("leadership transfer stalled; abdicating")
                .count()
        })
        .sum();
    assert!(abdications >= 1, "no leader abdicated");
    println!("stalled transfers: {abdications} abdications by nodes 2 and 3");

    // Every shard takes writes again (60 keys cover all six hash ranges many times over).
    let mut shards = std::collections::HashSet::new();
    for i in 0..60 {
        let r = client
            .put_record("stall", &format!("key-{i}"), b"after".to_vec(), None)
            .await
            .expect("put after the stalled transfers");
        shards.insert(r.shard_id);
    }
    assert_eq!(shards.len(), 6, "writes reached {shards:?}");
    cluster.assert_alive();
}
