//! Three nodes in one process (internal gRPC on loopback, the public Api called directly):
//! retention deletes whole expired segments through openraft, and reads and writes go on.

use openraft::async_runtime::WatchReceiver;
use std::sync::Arc;
use std::time::Duration;

use braid_node::{Api, Node, NodeConfig};
use braid_proto::v1;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_cluster(dir: &std::path::Path) -> Vec<Arc<Node>> {
    start_cluster_with(dir, |_| {}).await
}

async fn start_cluster_with(
    dir: &std::path::Path,
    tweak: impl Fn(&mut NodeConfig),
) -> Vec<Arc<Node>> {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let mut c = NodeConfig::local_three(i, dir, 0);
        for (j, p) in c.peers.iter_mut().enumerate() {
            p.addr = format!("127.0.0.1:{}", ports[j]);
        }
        c.listen = c.peers[i].addr.clone();
        c.segment_bytes_max = 4096;
        tweak(&mut c);
        let addr: std::net::SocketAddr = c.listen.parse().unwrap();
        let node = Node::start(c).await.unwrap();
        let svc = braid_node::internal::internal_server(node.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve(addr)
                .await
        });
        nodes.push(node);
    }
    nodes
}

async fn eventually<F: FnMut() -> bool>(what: &str, mut f: F) {
    for _ in 0..600 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Waits for the cluster's identity, creates the one-shard stream `name` and waits until it is
/// ACTIVE.
async fn create_active_stream(nodes: &[Arc<Node>], api: &Api, name: &str) {
    eventually("cluster identity", || {
        nodes[0].control_sm.read(|s| s.cluster_id.is_some())
    })
    .await;
    api.create_stream(v1::CreateStreamRequest {
        stream_name: name.into(),
        shard_count: 1,
    })
    .await
    .unwrap();
    for _ in 0..600 {
        let d = api
            .describe_stream_summary(v1::DescribeStreamSummaryRequest {
                stream_name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        if d.stream_description_summary.unwrap().stream_status == "ACTIVE" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("stream {name} not ACTIVE");
}

async fn read_all(api: &Api, stream: &str, shard: &str) -> Vec<v1::Record> {
    let it = api
        .get_shard_iterator(v1::GetShardIteratorRequest {
            stream_name: stream.into(),
            shard_id: shard.into(),
            shard_iterator_type: v1::ShardIteratorType::TrimHorizon as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .shard_iterator;
    let mut out = Vec::new();
    let mut it = it;
    loop {
        let r = api
            .get_records(v1::GetRecordsRequest {
                shard_iterator: it.clone(),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let n = r.records.len();
        out.extend(r.records);
        it = r.next_shard_iterator;
        if n == 0 && r.millis_behind_latest == 0 {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_deletes_whole_expired_segments_and_service_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(dir.path()).await;
    let api = Api::new(nodes[0].clone());
    create_active_stream(&nodes, &api, "r").await;

    // 40 entries of 10 records of 100 bytes: ~1.1 KB per entry, ~3 entries per 4 KiB segment.
    let mut old = Vec::new();
    for i in 0..40 {
        let records = (0..10)
            .map(|j| v1::PutRecordsRequestEntry {
                data: vec![b'x'; 100].into(),
                partition_key: format!("k{i}-{j}"),
                ..Default::default()
            })
            .collect();
        let r = api
            .put_records(v1::PutRecordsRequest {
                stream_name: "r".into(),
                records,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(r.failed_record_count, 0);
        old.extend(r.records.into_iter().map(|x| x.sequence_number));
    }
    assert_eq!(read_all(&api, "r", "shardId-000000000000").await.len(), 400);
    let group = nodes[0].control_sm.read(|s| s.streams["r"].shards[0].group);
    // ACTIVE needs a leader, not every replica: the third one may still be opening or
    // catching up.
    eventually("every replica open and caught up", || {
        nodes
            .iter()
            .all(|n| n.group(group).is_some_and(|g| g.log.segments().len() > 5))
    })
    .await;
    let segments_before: Vec<usize> = nodes
        .iter()
        .map(|n| n.group(group).unwrap().log.segments().len())
        .collect();
    assert!(
        segments_before.iter().all(|s| *s > 5),
        "{segments_before:?}"
    );

    // 25 hours later, retention (24 h) expires every sealed segment.
    for n in &nodes {
        n.advance_retention_clock(25 * 3_600_000);
        n.enforce_retention().await;
    }
    eventually("expired segments deleted on every replica", || {
        nodes
            .iter()
            .all(|n| n.group(group).unwrap().log.segments().len() <= 2)
    })
    .await;
    let first = nodes[0].group(group).unwrap().log.first_index().unwrap();
    assert!(first > 30, "first retained index {first}");

    // TRIM_HORIZON now starts at the oldest retained record; nothing returned is from a purged entry.
    let left = read_all(&api, "r", "shardId-000000000000").await;
    assert!(
        left.len() < 400 && left.len() % 10 == 0,
        "{} records left",
        left.len()
    );
    assert_eq!(left.last().unwrap().sequence_number, *old.last().unwrap());

    // Writes and reads go on.
    let r = api
        .put_record(v1::PutRecordRequest {
            stream_name: "r".into(),
            data: b"after".to_vec().into(),
            partition_key: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let after = read_all(&api, "r", "shardId-000000000000").await;
    assert_eq!(after.last().unwrap().sequence_number, r.sequence_number);
    assert_eq!(&after.last().unwrap().data[..], b"after");
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follower_reads_serve_committed_records_from_the_local_replica() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster_with(dir.path(), |c| c.follower_reads = true).await;
    let api = Api::new(nodes[0].clone());
    create_active_stream(&nodes, &api, "f").await;
    let group = nodes[0].control_sm.read(|s| s.streams["f"].shards[0].group);
    eventually("a leader", || nodes[0].leader_of(group).is_some()).await;
    let mut acked = Vec::new();
    for i in 0..20 {
        let r = api
            .put_record(v1::PutRecordRequest {
                stream_name: "f".into(),
                data: format!("r{i}").into_bytes().into(),
                partition_key: "k".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        acked.push(r.sequence_number);
    }
    // A follower serves the read from its own replica, and eventually has every record.
    let leader = nodes[0].leader_of(group).unwrap();
    let follower = nodes.iter().find(|n| n.id != leader).unwrap().clone();
    let local = Api::new(follower.clone());
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = read_all(&local, "f", "shardId-000000000000")
            .await
            .into_iter()
            .map(|r| r.sequence_number)
            .collect();
        if seen.len() == acked.len() {
            break;
        }
        // Never more than what is committed, and always a prefix, in order.
        assert!(
            seen.len() < acked.len() && seen[..] == acked[..seen.len()],
            "{seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(seen, acked);
    let g = follower.group(group).unwrap();
    assert_ne!(
        g.raft.metrics().borrow_watched().current_leader,
        Some(follower.id),
        "read was served by a follower"
    );
    for n in &nodes {
        n.shutdown().await;
    }
}

/// Group commit: concurrent calls to one shard share entries, yet each caller gets its own
/// sequence numbers, which GetRecords then returns with exactly the caller's data, and per-key
/// order holds for producers that wait for each acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_entries_and_keep_their_own_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster_with(dir.path(), |c| c.segment_bytes_max = 1 << 20).await;
    let api = Arc::new(Api::new(nodes[0].clone()));
    create_active_stream(&nodes, &api, "g").await;
    let group = nodes[0].control_sm.read(|s| s.streams["g"].shards[0].group);
    eventually("a leader", || nodes[0].leader_of(group).is_some()).await;
    let first = api
        .put_record(v1::PutRecordRequest {
            stream_name: "g".into(),
            data: b"first".to_vec().into(),
            partition_key: "first".into(),
            ..Default::default()
        })
        .await
        .expect("stream writable")
        .sequence_number;
    let leader = nodes[0].leader_of(group).unwrap();
    let leader_node = nodes.iter().find(|n| n.id == leader).unwrap().clone();
    let entries_before = leader_node.group(group).unwrap().log.last_index().unwrap();

    const PRODUCERS: usize = 8;
    const CALLS: usize = 50;
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("p{p}");
            let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
            for c in 0..CALLS {
                if p % 2 == 0 {
                    let data = format!("{key}-{c}").into_bytes();
                    let r = api
                        .put_record(v1::PutRecordRequest {
                            stream_name: "g".into(),
                            data: data.clone().into(),
                            partition_key: key.clone(),
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                    acked.push((r.sequence_number, data));
                } else {
                    let datas: Vec<Vec<u8>> = (0..5)
                        .map(|k| format!("{key}-{c}.{k}").into_bytes())
                        .collect();
                    let r = api
                        .put_records(v1::PutRecordsRequest {
                            stream_name: "g".into(),
                            records: datas
                                .iter()
                                .map(|d| v1::PutRecordsRequestEntry {
                                    data: d.clone().into(),
                                    partition_key: key.clone(),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                    assert_eq!(r.failed_record_count, 0);
                    for (e, d) in r.records.into_iter().zip(datas) {
                        acked.push((e.sequence_number, d));
                    }
                }
            }
            acked
        }));
    }
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let calls = PRODUCERS * CALLS;
    assert_eq!(acked.len(), 4 * CALLS + 4 * CALLS * 5);
    let entries = leader_node.group(group).unwrap().log.last_index().unwrap() - entries_before;
    assert!(
        (entries as usize) < calls * 3 / 4,
        "{calls} concurrent calls took {entries} entries: writes were not merged"
    );

    // Every acknowledged sequence number is read back with exactly its caller's data, once.
    let read = read_all(&api, "g", "shardId-000000000000").await;
    assert_eq!(read.len(), acked.len() + 1);
    assert_eq!(read[0].sequence_number, first);
    let by_seq: std::collections::HashMap<&str, &v1::Record> = read
        .iter()
        .map(|r| (r.sequence_number.as_str(), r))
        .collect();
    assert_eq!(by_seq.len(), read.len(), "sequence numbers are unique");
    for (seq, data) in &acked {
        let r = by_seq
            .get(seq.as_str())
            .unwrap_or_else(|| panic!("acknowledged {seq} not read back"));
        assert_eq!(&r.data, data, "record at {seq}");
    }
    // Strictly increasing in the shard, and in each producer's order per key.
    for w in read.windows(2) {
        // Decimal strings of up to 57 digits: compare by length, then digits.
        let (a, b) = (&w[0].sequence_number, &w[1].sequence_number);
        assert!((a.len(), a) < (b.len(), b), "{a} then {b}");
    }
    for p in 0..PRODUCERS {
        let key = format!("p{p}");
        let got: Vec<&[u8]> = read
            .iter()
            .filter(|r| r.partition_key == key)
            .map(|r| &r.data[..])
            .collect();
        let want: Vec<Vec<u8>> = acked
            .iter()
            .filter(|(_, d)| d.starts_with(format!("{key}-").as_bytes()))
            .map(|(_, d)| d.clone())
            .collect();
        assert_eq!(got, want.iter().map(|d| d.as_slice()).collect::<Vec<_>>());
    }
    // Status reports what the leader knows committed: everything, once all writes are answered.
    let status = leader_node.local_status();
    let gs = status.groups.iter().find(|g| g.group == group).unwrap();
    assert_eq!(gs.committed, gs.last_log_index, "{gs:?}");
    assert!(gs.committed >= gs.applied, "{gs:?}");
    for n in &nodes {
        n.shutdown().await;
    }
}

/// GetRecords' long poll (a Braid extension): at the tip of a shard the leader holds the read
/// until a record is applied, and answers with it; without records it answers empty at the
/// deadline; a wait above the maximum is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_records_long_poll_answers_with_the_next_record() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(dir.path()).await;
    let api = Arc::new(Api::new(nodes[0].clone()));
    create_active_stream(&nodes, &api, "w").await;
    let put = |data: &'static [u8]| {
        let api = api.clone();
        async move {
            api.put_record(v1::PutRecordRequest {
                stream_name: "w".into(),
                data: data.to_vec().into(),
                partition_key: "k".into(),
                ..Default::default()
            })
            .await
        }
    };
    put(b"first").await.expect("stream writable");
    let latest = api
        .get_shard_iterator(v1::GetShardIteratorRequest {
            stream_name: "w".into(),
            shard_id: "shardId-000000000000".into(),
            shard_iterator_type: v1::ShardIteratorType::Latest as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .shard_iterator;
    let read = |wait_ms: u32| {
        let api = api.clone();
        let it = latest.clone();
        async move {
            api.get_records(v1::GetRecordsRequest {
                shard_iterator: it,
                wait_ms,
                ..Default::default()
            })
            .await
        }
    };

    // Nothing arrives: the read answers empty (after its wait).
    let r = read(200).await.unwrap();
    assert!(r.records.is_empty());
    assert!(!r.next_shard_iterator.is_empty());

    // A record put while the read waits is its answer.
    let waiting = tokio::spawn(read(1_000));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let acked = put(b"second").await.unwrap();
    let r = waiting.await.unwrap().unwrap();
    assert_eq!(r.records.len(), 1, "{r:?}");
    assert_eq!(&r.records[0].data[..], b"second");
    assert_eq!(r.records[0].sequence_number, acked.sequence_number);

    let err = read(1_001).await.unwrap_err();
    assert_eq!(err.code, braid_types::ErrorCode::InvalidArgument, "{err:?}");
    for n in &nodes {
        n.shutdown().await;
    }
}

/// A replica whose storage fails stops (its node does not), shows as failed in ClusterStatus,
/// and the other two replicas carry the shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_whose_storage_fails_shows_as_failed_and_the_shard_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(dir.path()).await;
    let api = Api::new(nodes[0].clone());
    create_active_stream(&nodes, &api, "d").await;
    let put = |i: usize| {
        api.put_record(v1::PutRecordRequest {
            stream_name: "d".into(),
            data: vec![b'x'; 500].into(),
            partition_key: format!("k{i}"),
            ..Default::default()
        })
    };
    put(0).await.expect("stream writable");
    let group = nodes[0].control_sm.read(|s| s.streams["d"].shards[0].group);
    let leader = nodes[0].leader_of(group).unwrap();
    let broken = nodes.iter().find(|n| n.id != leader).unwrap().clone();
    eventually("the follower's replica is open", || {
        broken.group(group).is_some()
    })
    .await;

    // The follower's segment directory disappears: its next segment roll fails (segments are
    // 4 KiB here, so within a few entries).
    let shard_dir = broken
        .config
        .data_dir
        .join("shards")
        .join(format!("{group:020}"));
    std::fs::remove_dir_all(&shard_dir).unwrap();
    for i in 0..40 {
        put(i).await.unwrap();
    }
    let failed_here = || {
        broken
            .local_status()
            .groups
            .iter()
            .find(|g| g.group == group)
            .and_then(|g| g.failed.clone())
    };
    eventually("the broken replica reports its failure", || {
        failed_here().is_some()
    })
    .await;

    let status = api.cluster_status().await.unwrap();
    let shard = status.shards.iter().find(|s| s.group_id == group).unwrap();
    for r in &shard.replicas {
        if r.node_id == broken.id {
            assert!(!r.failed.is_empty(), "{shard:?}");
        } else {
            assert!(r.failed.is_empty(), "{shard:?}");
        }
    }
    // The shard goes on with two replicas; the node itself still serves.
    put(1000).await.unwrap();
    let read = read_all(&api, "d", "shardId-000000000000").await;
    assert!(read.len() >= 41, "{} records", read.len());
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_fsync_failure_on_the_leader_acknowledges_nothing_that_is_not_durable() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(dir.path()).await;
    let api = Api::new(nodes[0].clone());
    create_active_stream(&nodes, &api, "f").await;
    let put = |key: String| {
        api.put_record(v1::PutRecordRequest {
            stream_name: "f".into(),
            data: key.clone().into_bytes().into(),
            partition_key: key,
            ..Default::default()
        })
    };
    // (sequence number, key) of every acknowledged record.
    let mut acked: Vec<(String, String)> = Vec::new();
    let r = put("before".into()).await.expect("stream writable");
    acked.push((r.sequence_number, "before".into()));

    let group = nodes[0].control_sm.read(|s| s.streams["f"].shards[0].group);
    let leader_id = nodes[0].leader_of(group).unwrap();
    let leader = nodes.iter().find(|n| n.id == leader_id).unwrap().clone();
    leader.group(group).unwrap().log.fail_next_sync();

    // The next entry cannot be made durable on the leader: its write must not be acknowledged
    // unless it was made durable on a quorum after all (under a new leader, after a retry).
    let failed_write = put("during".into()).await;
    eprintln!("the write whose fsync failed answered: {failed_write:?}");
    if let Ok(r) = &failed_write {
        acked.push((r.sequence_number.clone(), "during".into()));
    }
    let failure = || {
        leader
            .local_status()
            .groups
            .iter()
            .find(|g| g.group == group)
            .and_then(|g| g.failed.clone())
    };
    eventually("the leader's replica stops on the fsync error", || {
        failure().is_some()
    })
    .await;
    assert!(
        failure().unwrap().contains("injected fsync failure"),
        "{:?}",
        failure()
    );

    // The other two replicas elect a leader and the shard takes writes again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for i in 0..20 {
        let key = format!("after-{i}");
        loop {
            match put(key.clone()).await {
                Ok(r) => {
                    acked.push((r.sequence_number, key));
                    break;
                }
                Err(e) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "no write succeeded within 30 s of the fsync failure: {e:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    assert_ne!(nodes[0].leader_of(group), Some(leader_id));
    let status = api.cluster_status().await.unwrap();
    let shard = status.shards.iter().find(|s| s.group_id == group).unwrap();
    assert_ne!(shard.leader_node_id, leader_id, "{shard:?}");
    assert_ne!(shard.leader_node_id, 0, "{shard:?}");
    let broken = shard
        .replicas
        .iter()
        .find(|r| r.node_id == leader_id)
        .unwrap();
    assert!(broken.failed.contains("fsync"), "{shard:?}");

    // Every acknowledged record is there, once, with its own data.
    let read = read_all(&api, "f", "shardId-000000000000").await;
    for (seq, key) in &acked {
        let found: Vec<&v1::Record> = read.iter().filter(|r| &r.sequence_number == seq).collect();
        assert_eq!(found.len(), 1, "acknowledged {key} at {seq}: {found:?}");
        assert_eq!(&found[0].partition_key, key);
        assert_eq!(&found[0].data[..], key.as_bytes());
    }
    for n in &nodes {
        n.shutdown().await;
    }
}
