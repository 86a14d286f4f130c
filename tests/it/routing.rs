//! Leader-aware clients: puts and reads go straight to each shard's leader, so the nodes forward
//! nothing, while a client that does not route makes the node it calls forward to the leaders.
//! Routed `PutRecords` calls are split by leader and answered as one response in request order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use braid_client::{v1, Client, ClientOptions, ShardReader};
use braid_tests::cluster::{leader_counts, Cluster};
use braid_types::hash::partition_key_hash;

const STREAM: &str = "routed";
const SHARDS: u32 = 6;

/// Shard operations forwarded by all nodes together since they started.
async fn forwarded(cluster: &Cluster) -> u64 {
    let s = cluster.status().await.expect("cluster status");
    assert_eq!(s.nodes.len(), 3, "every node answers: {s:?}");
    assert!(s.nodes.iter().all(|n| n.reachable), "{s:?}");
    s.nodes.iter().map(|n| n.forwarded_ops).sum()
}

fn batch(tag: &str, n: usize) -> Vec<v1::PutRecordsRequestEntry> {
    (0..n)
        .map(|i| v1::PutRecordsRequestEntry {
            partition_key: format!("{tag}-{i}"),
            data: format!("{tag}-{i}").into_bytes().into(),
            explicit_hash_key: String::new(),
        })
        .collect()
}

/// Puts a batch and checks every entry's answer: stored, on the shard its key hashes to.
/// Returns (sequence number → key) of the batch.
async fn put_checked(
    client: &Client,
    ranges: &[(u128, u128, String)],
    tag: &str,
    n: usize,
) -> HashMap<String, String> {
    let entries = batch(tag, n);
    let keys: Vec<String> = entries.iter().map(|e| e.partition_key.clone()).collect();
    let resp = client.put_records(STREAM, entries).await.expect("put");
    assert_eq!(resp.failed_record_count, 0, "{resp:?}");
    assert_eq!(resp.records.len(), n);
    let mut stored = HashMap::new();
    for (key, r) in keys.into_iter().zip(resp.records) {
        let h = partition_key_hash(&key);
        let want = ranges
            .iter()
            .find(|(s, e, _)| *s <= h && h <= *e)
            .map(|(_, _, id)| id.clone())
            .expect("a shard for every key");
        assert_eq!(r.shard_id, want, "the answer for {key} is in request order");
        assert!(!r.sequence_number.is_empty());
        assert!(stored.insert(r.sequence_number, key).is_none());
    }
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_aware_clients_put_and_read_without_forwards() {
    let cluster = Cluster::start(3).await;
    let routed = cluster.client();
    let plain = cluster.client_with(ClientOptions {
        route_to_leaders: false,
        ..ClientOptions::default()
    });
    routed.create_stream(STREAM, SHARDS).await.expect("create");
    routed
        .wait_active(STREAM, Duration::from_secs(60))
        .await
        .expect("active");
    // Leaders settle at two per node; routes learned before that would go stale.
    cluster
        .wait_status("two leaders per node", Duration::from_secs(60), |s| {
            let c = leader_counts(s, STREAM);
            if c == vec![(1, 2), (2, 2), (3, 2)] {
                Ok(())
            } else {
                Err(format!("leaders {c:?}"))
            }
        })
        .await;
    let ranges: Vec<(u128, u128, String)> = routed
        .describe_stream(STREAM)
        .await
        .expect("describe")
        .shards
        .iter()
        .map(|s| {
            let r = s.hash_key_range.as_ref().expect("range");
            (
                r.starting_hash_key.parse().unwrap(),
                r.ending_hash_key.parse().unwrap(),
                s.shard_id.clone(),
            )
        })
        .collect();
    assert_eq!(ranges.len(), SHARDS as usize);

    let mut stored: HashMap<String, String> = HashMap::new();
    // The routes are learned in the background after the first call: the client's calls stop
    // being forwarded within a few refresh intervals.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut round = 0;
    loop {
        let before = forwarded(&cluster).await;
        stored.extend(put_checked(&routed, &ranges, &format!("warm{round}"), 100).await);
        let after = forwarded(&cluster).await;
        if after == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a routed client's puts are still forwarded after 30 s ({} in the last call)",
            after - before
        );
        round += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Routed: batches spanning every shard, and single puts, reach the leaders themselves.
    let before = forwarded(&cluster).await;
    for i in 0..10 {
        stored.extend(put_checked(&routed, &ranges, &format!("routed{i}"), 500).await);
    }
    for i in 0..20 {
        let key = format!("single-{i}");
        let r = routed
            .put_record(STREAM, &key, key.clone().into_bytes(), None)
            .await
            .expect("put record");
        assert!(stored.insert(r.sequence_number, key).is_none());
    }
    let routed_forwards = forwarded(&cluster).await - before;

    // Not routed: the node called forwards the other nodes' shards.
    let before = forwarded(&cluster).await;
    for i in 0..10 {
        stored.extend(put_checked(&plain, &ranges, &format!("plain{i}"), 500).await);
    }
    let plain_forwards = forwarded(&cluster).await - before;

    // Reads (iterators and GetRecords) go to the leaders too; every stored record reads back
    // once, with its own key and data.
    let before = forwarded(&cluster).await;
    let mut read: HashMap<String, String> = HashMap::new();
    for (_, _, shard) in &ranges {
        let mut reader = ShardReader::new(
            routed.clone(),
            STREAM,
            shard,
            v1::ShardIteratorType::TrimHorizon,
            None,
        )
        .await
        .expect("reader");
        loop {
            let records = reader.next_batch(0).await.expect("read");
            if records.is_empty() {
                break;
            }
            for r in records {
                assert_eq!(
                    r.data,
                    r.partition_key.as_bytes(),
                    "data of {}",
                    r.partition_key
                );
                assert!(
                    read.insert(r.sequence_number.clone(), r.partition_key)
                        .is_none(),
                    "{} read twice",
                    r.sequence_number
                );
            }
        }
    }
    let read_forwards = forwarded(&cluster).await - before;
    assert_eq!(read.len(), stored.len(), "every stored record is read");
    assert_eq!(read, stored, "each sequence number holds its own record");

    eprintln!(
        "forwards: routed puts {routed_forwards}, plain puts {plain_forwards}, routed reads {read_forwards}"
    );
    // A leader change in the middle would cost a forward or two; with stable leaders, none.
    assert!(
        routed_forwards <= 2,
        "routed puts were forwarded {routed_forwards} times"
    );
    assert!(
        read_forwards <= 2,
        "routed reads were forwarded {read_forwards} times"
    );
    // Each plain batch spans all six shards; the node called leads two of them.
    assert!(
        plain_forwards >= 20,
        "plain puts were forwarded only {plain_forwards} times"
    );
}
