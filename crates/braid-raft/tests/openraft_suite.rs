//! openraft's own storage test suite (`openraft::testing::log::Suite`) against Braid's log store
//! (segment log plus sled) and state machine: the contract openraft 0.10 relies on — appends
//! readable at once, flush callbacks, `truncate_after`, purge, vote and committed id, membership
//! recovery and snapshots.

use std::sync::Arc;

use braid_raft::log_store::{CacheBudget, DurableIndex, LogStore};
use braid_raft::meta::MetaStore;
use braid_raft::shard::{ShardState, ShardTypeConfig};
use braid_raft::state_machine::SmStore;
use braid_storage::{LogConfig, SegmentLog};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;

struct Builder;

type Sm = SmStore<ShardTypeConfig, ShardState>;

impl StoreBuilder<ShardTypeConfig, LogStore<ShardTypeConfig>, Sm, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore<ShardTypeConfig>, Sm), StorageError<ShardTypeConfig>>
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::Config::new()
            .path(dir.path().join("meta"))
            .open()
            .expect("sled");
        let meta = MetaStore::new(&db, "shard", 1).expect("meta");
        let log = Arc::new(
            SegmentLog::open(&dir.path().join("log"), LogConfig::default()).expect("segment log"),
        );
        let store = LogStore::open(log, meta.clone(), CacheBudget::new(1 << 20, 1 << 20))
            .expect("log store");
        // The suite applies entries that it never appended to the log: the state machine must
        // not wait for them to become durable there.
        let (sm, _) = Sm::open(meta, DurableIndex::fixed(u64::MAX)).expect("state machine");
        Ok((dir, store, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_store_and_state_machine_pass_openraft_suite() {
    Suite::test_all(Builder)
        .await
        .expect("openraft storage suite");
}

/// openraft 0.10 goes on before an append is fsynced, so nothing this replica persists about its
/// log may run ahead of the fsync: a committed id is persisted only once durable here, and a
/// vote only after every earlier append is synced (openraft counts a saved vote as "all IO
/// before it flushed"). The segment log holds its fsyncs (`hold_syncs`, as a stalled disk
/// would) so that the appends below are written but not durable while this is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_about_the_log_is_persisted_ahead_of_its_fsync() {
    use openraft::storage::{IOFlushed, RaftLogStorage};
    use openraft::RaftLogReader;
    use std::time::Duration;

    let (_dir, mut store, _sm) = Builder.build().await.expect("build");
    let id = |i| braid_raft::LogId::new(braid_raft::leader_id(1, 1), i);
    let entries: Vec<braid_raft::shard::ShardEntry> = (1..=3)
        .map(|i| braid_raft::Entry {
            log_id: id(i),
            payload: openraft::EntryPayload::Blank,
        })
        .collect();
    let log = store.segment_log().clone();
    /// Releases the held fsyncs however the test ends: a runtime does not shut down while a
    /// blocking task (the flusher's held fsync) runs.
    struct Release(Arc<SegmentLog>);
    impl Drop for Release {
        fn drop(&mut self) {
            self.0.release_syncs();
        }
    }
    let _release = Release(log.clone());
    log.hold_syncs();
    store
        .append(entries, IOFlushed::noop())
        .await
        .expect("append");
    assert_eq!(log.synced_index(), None, "nothing synced yet");

    store.save_committed(Some(id(3))).await.expect("committed");
    assert_eq!(
        store.read_committed().await.expect("read"),
        None,
        "a committed id beyond the durable log is not persisted"
    );
    assert_eq!(
        store.committed().get(),
        Some(3),
        "but it is known in memory"
    );

    let vote = braid_raft::Vote::new_committed(2, 1);
    let mut voter = store.clone();
    let saving = tokio::spawn(async move { voter.save_vote(&vote).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !saving.is_finished(),
        "a vote is not saved while the appends before it are not durable"
    );
    assert_eq!(store.read_vote().await.expect("read vote"), None);

    log.release_syncs();
    tokio::time::timeout(Duration::from_secs(5), saving)
        .await
        .expect("the vote is saved once the log is synced")
        .expect("task")
        .expect("vote");
    assert_eq!(log.synced_index(), Some(3));
    assert_eq!(store.read_vote().await.expect("read vote"), Some(vote));
    let mut durable = store.durable();
    tokio::time::timeout(Duration::from_secs(5), durable.wait_for(3))
        .await
        .expect("durable index published")
        .expect("flusher running");

    store.save_committed(Some(id(3))).await.expect("committed");
    assert_eq!(store.read_committed().await.expect("read"), Some(id(3)));
}
