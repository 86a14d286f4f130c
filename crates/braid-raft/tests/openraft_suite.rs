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
