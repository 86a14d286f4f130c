//! openraft's state machine over any [`AppState`], persisted in sled after every applied batch.
//!
//! Invariant: the persisted `last_applied` never runs ahead of what `app` reflects, because both
//! are written in one sled value. Losing the latest write (sled flushes in the background) only
//! makes openraft re-apply committed entries, and `AppState::apply` is deterministic.

use std::io::Cursor;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::meta::MetaStore;
use crate::{codec, BraidTypeConfig, NodeInfo};

/// The application half of a state machine.
pub trait AppState<C: BraidTypeConfig>:
    Default + Clone + Send + Sync + Serialize + DeserializeOwned + 'static
{
    fn apply(&mut self, log_id: LogId<u64>, req: &C::D) -> C::R;
    /// The response for blank and membership entries.
    fn blank_response(&self) -> C::R;
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(bound = "A: Serialize + DeserializeOwned")]
struct Persisted<A> {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, NodeInfo>,
    app: A,
    snapshot_id: u64,
}

struct Shared<A> {
    state: RwLock<Persisted<A>>,
    applied: watch::Sender<Option<u64>>,
}

/// A read handle on a group's applied state, for the node.
pub struct SmHandle<A> {
    shared: Arc<Shared<A>>,
}

impl<A> Clone for SmHandle<A> {
    fn clone(&self) -> Self {
        SmHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<A> SmHandle<A> {
    pub fn read<T>(&self, f: impl FnOnce(&A) -> T) -> T {
        f(&self.shared.state.read().expect("lock").app)
    }
    pub fn applied_index(&self) -> Option<u64> {
        *self.shared.applied.borrow()
    }
    pub fn subscribe(&self) -> watch::Receiver<Option<u64>> {
        self.shared.applied.subscribe()
    }
}

pub struct SmStore<C: BraidTypeConfig, A: AppState<C>> {
    shared: Arc<Shared<A>>,
    meta: MetaStore,
    /// Persist at most this often (membership changes always persist); `None`: every batch.
    /// Safe because a stale persisted state only makes openraft re-apply committed entries.
    persist_every: Option<std::time::Duration>,
    persisted_at: Option<std::time::Instant>,
    _c: PhantomData<C>,
}

fn sm_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::write_state_machine(&e).into()
}

impl<C: BraidTypeConfig, A: AppState<C>> SmStore<C, A> {
    pub fn open(meta: MetaStore) -> Result<(SmStore<C, A>, SmHandle<A>), StorageError<u64>> {
        let persisted: Persisted<A> = meta
            .get("sm")
            .map_err(|e| StorageError::from(StorageIOError::read_state_machine(&e)))?
            .unwrap_or_default();
        let (tx, _) = watch::channel(persisted.last_applied.map(|l| l.index));
        let shared = Arc::new(Shared {
            state: RwLock::new(persisted),
            applied: tx,
        });
        Ok((
            SmStore {
                persist_every: None,
                persisted_at: None,
                shared: shared.clone(),
                meta,
                _c: PhantomData,
            },
            SmHandle { shared },
        ))
    }

    /// Persist the state at most every `every` (plus on membership changes) instead of after
    /// every applied batch.
    pub fn with_persist_interval(mut self, every: std::time::Duration) -> Self {
        self.persist_every = Some(every);
        self
    }

    fn persist(&self, p: &Persisted<A>) -> Result<(), StorageError<u64>> {
        self.meta.put("sm", p).map_err(sm_err)
    }
}

impl<C: BraidTypeConfig, A: AppState<C>> RaftSnapshotBuilder<C> for SmStore<C, A> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError<u64>> {
        let (meta, bytes) = {
            let mut st = self.shared.state.write().expect("lock");
            st.snapshot_id += 1;
            let meta = SnapshotMeta {
                last_log_id: st.last_applied,
                last_membership: st.membership.clone(),
                snapshot_id: format!(
                    "{}-{}",
                    st.last_applied.map(|l| l.index).unwrap_or(0),
                    st.snapshot_id
                ),
            };
            (meta, codec::encode(&*st))
        };
        self.meta.put("snapshot_meta", &meta).map_err(sm_err)?;
        self.meta.put("snapshot", &bytes).map_err(sm_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl<C: BraidTypeConfig, A: AppState<C>> RaftStateMachine<C> for SmStore<C, A> {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, NodeInfo>), StorageError<u64>> {
        let st = self.shared.state.read().expect("lock");
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<C::R>, StorageError<u64>>
    where
        I: IntoIterator<Item = openraft::Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let mut membership_changed = false;
        let last_index;
        {
            let mut st = self.shared.state.write().expect("lock");
            for e in entries {
                if let Some(prev) = st.last_applied {
                    assert!(
                        e.log_id.index > prev.index,
                        "apply went backwards: {} after {}",
                        e.log_id.index,
                        prev.index
                    );
                }
                st.last_applied = Some(e.log_id);
                let r = match &e.payload {
                    EntryPayload::Blank => st.app.blank_response(),
                    EntryPayload::Normal(d) => st.app.apply(e.log_id, d),
                    EntryPayload::Membership(m) => {
                        membership_changed = true;
                        st.membership = StoredMembership::new(Some(e.log_id), m.clone());
                        st.app.blank_response()
                    }
                };
                out.push(r);
            }
            let due = match (self.persist_every, self.persisted_at) {
                (Some(every), Some(at)) => membership_changed || at.elapsed() >= every,
                _ => true,
            };
            if due {
                self.persist(&st)?;
                self.persisted_at = Some(std::time::Instant::now());
            }
            last_index = st.last_applied.map(|l| l.index);
        }
        self.shared.applied.send_replace(last_index);
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SmStore {
            shared: self.shared.clone(),
            meta: self.meta.clone(),
            persist_every: self.persist_every,
            persisted_at: None,
            _c: PhantomData,
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, NodeInfo>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let bytes = snapshot.into_inner();
        let mut p: Persisted<A> = codec::decode(&bytes).map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(Some(meta.signature()), &e))
        })?;
        p.last_applied = meta.last_log_id;
        p.membership = meta.last_membership.clone();
        self.persist(&p)?;
        self.meta.put("snapshot_meta", meta).map_err(sm_err)?;
        self.meta.put("snapshot", &bytes).map_err(sm_err)?;
        self.meta.flush().await.map_err(sm_err)?;
        let idx = p.last_applied.map(|l| l.index);
        *self.shared.state.write().expect("lock") = p;
        self.shared.applied.send_replace(idx);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<C>>, StorageError<u64>> {
        let meta: Option<SnapshotMeta<u64, NodeInfo>> =
            self.meta.get("snapshot_meta").map_err(sm_err)?;
        let bytes: Option<Vec<u8>> = self.meta.get("snapshot").map_err(sm_err)?;
        Ok(match (meta, bytes) {
            (Some(meta), Some(bytes)) => Some(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(bytes)),
            }),
            _ => None,
        })
    }
}
