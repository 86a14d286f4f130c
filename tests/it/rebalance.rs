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
