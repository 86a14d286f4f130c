//! openraft's state machine over any [`AppState`], persisted in sled after every applied batch.
//!
//! Invariant: the persisted `last_applied` never runs ahead of what `app` reflects, because both
//! are written in one sled value. Losing the latest write (sled flushes in the background) only
//! makes openraft re-apply committed entries, and `AppState::apply` is deterministic.
//!
//! Invariant: an entry is applied (and `last_applied` persisted past it) only once it is durable
//! in this replica's log ([`DurableIndex`]). openraft 0.10 may hand the state machine committed
//! entries that this replica has not fsynced yet; were `last_applied` persisted ahead of the
//! durable log, a restart would find a hole in the log below it.

use std::io::{self, Cursor};
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::log_store::DurableIndex;
use crate::meta::{io_err, MetaStore};
use crate::{codec, BraidTypeConfig, LogId, SnapshotMeta, StoredMembership};

/// The application half of a state machine.
pub trait AppState<C: BraidTypeConfig>:
    Default + Clone + Send + Sync + Serialize + DeserializeOwned + 'static
{
    fn apply(&mut self, log_id: LogId, req: &C::D) -> C::R;
    /// The response for blank and membership entries.
    fn blank_response(&self) -> C::R;
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(bound = "A: Serialize + DeserializeOwned")]
struct Persisted<A> {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    app: A,
    /// No longer read (openraft 0.10's snapshot metadata has no id); kept for the stored layout.
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
    /// How far this replica's log is durable: entries are applied only up to it.
    durable: DurableIndex,
    _c: PhantomData<C>,
}

impl<C: BraidTypeConfig, A: AppState<C>> SmStore<C, A> {
    pub fn open(
        meta: MetaStore,
        durable: DurableIndex,
    ) -> io::Result<(SmStore<C, A>, SmHandle<A>)> {
        let persisted: Persisted<A> = meta.get("sm")?.unwrap_or_default();
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
                durable,
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

    fn persist(&self, p: &Persisted<A>) -> io::Result<()> {
        self.meta.put("sm", p)
    }
}

impl<C: BraidTypeConfig, A: AppState<C>> RaftSnapshotBuilder<C> for SmStore<C, A> {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> io::Result<crate::Snapshot> {
        let (meta, bytes) = {
            let st = self.shared.state.read().expect("lock");
            let meta = SnapshotMeta {
                last_log_id: st.last_applied,
                last_membership: st.membership.clone(),
            };
            (meta, codec::encode(&*st))
        };
        self.meta.put("snapshot_meta", &meta)?;
        self.meta.put("snapshot", &bytes)?;
        Ok(Snapshot {
            meta,
            snapshot: Cursor::new(bytes),
        })
    }
}

impl<C: BraidTypeConfig, A: AppState<C>> RaftStateMachine<C> for SmStore<C, A> {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        let st = self.shared.state.read().expect("lock");
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<Strm>(&mut self, entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<C>>> + Unpin + OptionalSend,
    {
        let entries: Vec<EntryResponder<C>> = entries.try_collect().await?;
        let Some(last) = entries.last().map(|(e, _)| e.log_id.index) else {
            return Ok(());
        };
        self.durable.wait_for(last).await?;
        let mut responders = Vec::with_capacity(entries.len());
        let mut membership_changed = false;
        let last_index;
        {
            let mut st = self.shared.state.write().expect("lock");
            for (e, responder) in entries {
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
                if let Some(responder) = responder {
                    responders.push((responder, r));
                }
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
        for (responder, r) in responders {
            responder.send(r);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SmStore {
            shared: self.shared.clone(),
            meta: self.meta.clone(),
            persist_every: self.persist_every,
            persisted_at: None,
            durable: self.durable.clone(),
            _c: PhantomData,
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Cursor<Vec<u8>>,
    ) -> io::Result<()> {
        let bytes = snapshot.into_inner();
        let mut p: Persisted<A> = codec::decode(&bytes).map_err(io_err)?;
        p.last_applied = meta.last_log_id;
        p.membership = meta.last_membership.clone();
        self.persist(&p)?;
        self.meta.put("snapshot_meta", meta)?;
        self.meta.put("snapshot", &bytes)?;
        self.meta.flush().await?;
        let idx = p.last_applied.map(|l| l.index);
        *self.shared.state.write().expect("lock") = p;
        self.shared.applied.send_replace(idx);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<crate::Snapshot>> {
        let meta: Option<SnapshotMeta> = self.meta.get("snapshot_meta")?;
        let bytes: Option<Vec<u8>> = self.meta.get("snapshot")?;
        Ok(match (meta, bytes) {
            (Some(meta), Some(bytes)) => Some(Snapshot {
                meta,
                snapshot: Cursor::new(bytes),
            }),
            _ => None,
        })
    }
}
