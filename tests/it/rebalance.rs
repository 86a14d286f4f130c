//! Leaders return to their preferred replicas (spread over nodes and zones) after a node that
//! led shards is killed and comes back.

use std::time::Duration;

use braid_tests::cluster::{leader_counts, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leaders_rebalance_when_a_node_returns() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client();
    client
        .create_stream("balance", 6)
        .await
        .expect("create stream");
    client
        .wait_active("balance", Duration::from_secs(60))
        .await
        .expect("stream active");
    cluster
        .wait_status("two leaders per node", Duration::from_secs(60), |s| {
            let c = leader_counts(s, "balance");
            if c == vec![(1, 2), (2, 2), (3, 2)] {
                Ok(())
            } else {
                Err(format!("leaders {c:?}"))
            }
        })
        .await;

    cluster.kill9(1);
    cluster
        .wait_status(
            "node 1's shards led elsewhere",
            Duration::from_secs(60),
            |s| {
                let c = leader_counts(s, "balance");
                let led: usize = c.iter().filter(|(id, _)| *id != 1).map(|(_, n)| n).sum();
                if led == 6 {
                    Ok(())
                } else {
                    Err(format!("leaders {c:?}"))
                }
            },
        )
        .await;

    cluster.restart(1);
    let started = std::time::Instant::now();
    cluster
        .wait_status(
            "leaders back to two per node",
            Duration::from_secs(90),
            |s| {
                let c = leader_counts(s, "balance");
                if c == vec![(1, 2), (2, 2), (3, 2)] {
                    Ok(())
                } else {
                    Err(format!("leaders {c:?}"))
                }
            },
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
    client
        .create_stream("stall", 6)
        .await
        .expect("create stream");
    client
        .wait_active("stall", Duration::from_secs(60))
        .await
        .expect("stream active");
    cluster
        .wait_status("two leaders per node", Duration::from_secs(60), |s| {
            let c = leader_counts(s, "stall");
            if c == vec![(1, 2), (2, 2), (3, 2)] {
                Ok(())
            } else {
                Err(format!("leaders {c:?}"))
            }
        })
        .await;

    cluster.kill9(1);
    cluster
        .wait_status(
            "node 1's shards led elsewhere",
            Duration::from_secs(60),
            |s| {
                let c = leader_counts(s, "stall");
                let led: usize = c.iter().filter(|(id, _)| *id != 1).map(|(_, n)| n).sum();
                if led == 6 {
                    Ok(())
                } else {
                    Err(format!("leaders {c:?}"))
                }
            },
        )
        .await;

    cluster.restart_with_env(1, &[(IGNORE_TRANSFER_LEADER_ENV, "1")]);
    let started = std::time::Instant::now();
    cluster
        .wait_status(
            "leaders back to two per node (by elections)",
            Duration::from_secs(120),
            |s| {
                let c = leader_counts(s, "stall");
                if c == vec![(1, 2), (2, 2), (3, 2)] {
                    Ok(())
                } else {
                    Err(format!("leaders {c:?}"))
                }
            },
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
