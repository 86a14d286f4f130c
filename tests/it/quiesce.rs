//! Idle shard groups quiesce (their Raft timers stop, one message per peer stands in for their
//! heartbeats), stay led without elections while quiet, wake on a write, and still fail over
//! when their leader's node dies.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use braid_client::v1;
use braid_tests::cluster::{leader_counts, Cluster, WAIT};

const STREAM: &str = "idle";
const SHARDS: u32 = 6;
/// Longer than a follower's election timeout after its last heartbeat (vote lease plus the
/// largest election timeout, 3.2 s with the default timing): had the followers kept their
/// timers while the leaders stopped heartbeats, they would have started elections by then.
const QUIET_FOR: Duration = Duration::from_secs(5);

fn shards(s: &v1::ClusterStatusResponse) -> Vec<&v1::ShardStatus> {
    s.shards
        .iter()
        .filter(|x| x.stream_name == STREAM)
        .collect()
}

fn all_quiesced(s: &v1::ClusterStatusResponse) -> Result<(), String> {
    let loud: Vec<String> = shards(s)
        .iter()
        .filter(|x| !x.quiesced || x.leader_node_id == 0)
        .map(|x| x.shard_id.clone())
        .collect();
    if loud.is_empty() && !shards(s).is_empty() {
        Ok(())
    } else {
        Err(format!("not quiesced: {loud:?}"))
    }
}

fn terms(s: &v1::ClusterStatusResponse) -> BTreeMap<String, (u64, u64)> {
    shards(s)
        .iter()
        .map(|x| (x.shard_id.clone(), (x.term, x.leader_node_id)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_shards_quiesce_wake_and_fail_over() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client();
    client.create_stream(STREAM, SHARDS).await.expect("create");
    client.wait_active(STREAM, WAIT).await.expect("active");
    cluster.wait_stream_leaders(STREAM, WAIT).await;

    // Idle groups quiesce, and then nothing happens: no election, no new term.
    cluster
        .wait_status("every shard quiesced", WAIT, all_quiesced)
        .await;
    let before = terms(&cluster.status().await.expect("status"));
    tokio::time::sleep(QUIET_FOR).await;
    let after = cluster.status().await.expect("status");
    all_quiesced(&after).unwrap_or_else(|e| panic!("after {QUIET_FOR:?} quiet: {e}"));
    assert_eq!(
        before,
        terms(&after),
        "terms or leaders changed while every shard was quiet"
    );

    // A write wakes its shard and is served; afterwards the shard quiesces again.
    let put = client
        .put_record(STREAM, "wake", b"up".to_vec(), None)
        .await
        .expect("put to a quiesced shard");
    let it = client
        .get_shard_iterator(
            STREAM,
            &put.shard_id,
            v1::ShardIteratorType::AtSequenceNumber,
            Some(put.sequence_number.clone()),
            None,
        )
        .await
        .expect("iterator");
    let got = client.get_records(&it, 10).await.expect("read back");
    assert_eq!(got.records.first().map(|r| &r.data[..]), Some(&b"up"[..]));
    cluster
        .wait_status("every shard quiesced again", WAIT, all_quiesced)
        .await;

    // The leader of the most quiesced shards dies: its shards elect new leaders anyway.
    let status = cluster.status().await.expect("status");
    let (victim, led) = leader_counts(&status, STREAM)
        .into_iter()
        .max_by_key(|(id, n)| (*n, std::cmp::Reverse(*id)))
        .expect("leaders");
    let killed = Instant::now();
    cluster.kill9(victim);
    cluster.wait_stream_leaders(STREAM, WAIT).await;
    println!(
        "quiesce: node {victim} led {led} quiesced shards; all led again {:?} after kill -9",
        killed.elapsed()
    );
    for i in 0..32 {
        client
            .put_record(STREAM, &format!("after-{i}"), b"x".to_vec(), None)
            .await
            .unwrap_or_else(|e| panic!("put after failover: {e}"));
    }
}
