//! openraft's log storage over a [`SegmentLog`]: one Raft entry per log frame.
//!
//! Invariants:
//! - The segment log holds exactly the entries `(purged, last]`, consecutive (checked by the
//!   segment log on every append).
//! - An entry is reported flushed to openraft only after the segment log's `sync` returned for
//!   it (fsync). Appends of many client writes share one fsync: the [`Flusher`] drains every
//!   pending callback before it syncs (group commit).
//! - Flush callbacks complete in append order.
//! - openraft 0.10 does not wait for an append's fsync before it replicates the entry or applies
//!   it, so what this replica persists about its log never runs ahead of what is durable in it:
//!   a vote is saved only after every earlier append is synced, the persisted committed id never
//!   exceeds the durable index, and the state machine applies an entry only once it is durable
//!   here ([`DurableIndex`]).
//! - The [`EntryCache`] holds a contiguous run of the latest entries, `[first, last]`, equal to
//!   what the segment log holds for them (appends push, truncations and purges trim it first).

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use braid_storage::SegmentLog;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{EntryPayload, OptionalSend, RaftLogReader};
use tokio::sync::{mpsc, watch};

use crate::meta::{io_err, MetaStore};
use crate::{codec, BraidTypeConfig, LogId, Vote};

/// A log entry of group type `C`.
type Ent<C> = crate::Entry<<C as openraft::RaftTypeConfig>::D>;

/// Pending flush callbacks per log: openraft 0.10 appends without waiting for flushes, so this
/// is the backpressure between the Raft core and the disk.
const FLUSH_QUEUE_MAX: usize = 1024;

/// What the flusher publishes: how far the log is durable, and whether an fsync failed (the
/// log then accepts nothing more, see `SegmentLog::sync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Durable {
    index: Option<u64>,
    failed: bool,
}

/// The index up to which this replica's log is durable (fsynced), published by the flusher and
/// by truncations and purges (which are durable when they return). The state machine waits on
/// it before applying an entry.
#[derive(Clone)]
pub struct DurableIndex(watch::Receiver<Durable>);

impl DurableIndex {
    /// Waits until every entry up to `index` is durable in this replica's log. Fails if an
    /// fsync of the log failed, or the log was closed.
    pub async fn wait_for(&mut self, index: u64) -> io::Result<()> {
        let d = *self
            .0
            .wait_for(|d| d.failed || d.index.is_some_and(|d| d >= index))
            .await
            .map_err(|_| io::Error::other("the log was closed"))?;
        if d.failed {
            return Err(io::Error::other("an fsync of the log failed"));
        }
        Ok(())
    }

    /// A durable index that is always `index` (for tests and state machines without a log).
    pub fn fixed(index: u64) -> DurableIndex {
        let (tx, rx) = watch::channel(Durable {
            index: Some(index),
            failed: false,
        });
        std::mem::forget(tx);
        DurableIndex(rx)
    }
}

/// Publishes a log's durable index. The flusher and the Raft core (truncations, purges) both
/// publish; each reads `synced_index` and sends it under one lock, so a value read before a
/// truncation can never be sent after the truncation's own (lower) value.
struct DurablePublisher {
    tx: watch::Sender<Durable>,
    lock: Mutex<()>,
}

impl DurablePublisher {
    fn publish(&self, log: &SegmentLog) {
        let _g = self.lock.lock().expect("lock");
        let index = log.synced_index();
        self.tx.send_modify(|d| d.index = index);
    }

    fn fail(&self) {
        let _g = self.lock.lock().expect("lock");
        self.tx.send_modify(|d| d.failed = true);
    }
}

/// One log's group commit. `append` queues its flush callback and, unless a sync of this log is
/// already running, starts one on the blocking pool; the runner syncs everything appended so
/// far, completes every callback queued before the sync, and goes on while more arrived. The
/// fsync starts from the appending task itself: no async task stands between an append and
/// its fsync, so a busy runtime (every worker polling other groups' work) does not delay it.
///
/// At most one runner per log exists (`running`); the queue is bounded by [`FLUSH_QUEUE_MAX`]
/// (backpressure on the Raft core when the disk falls behind).
struct Flusher<C: BraidTypeConfig> {
    queue: mpsc::Sender<IOFlushed<C>>,
    /// Taken by the runner; a second runner (started in the hand-over race below) waits on it.
    waiting: Mutex<mpsc::Receiver<IOFlushed<C>>>,
    running: AtomicBool,
    log: Arc<SegmentLog>,
    durable: Arc<DurablePublisher>,
}

impl<C: BraidTypeConfig> Flusher<C> {
    async fn request(self: &Arc<Self>, callback: IOFlushed<C>) -> io::Result<()> {
        self.queue
            .send(callback)
            .await
            .map_err(|_| io::Error::other("log flusher stopped"))?;
        if !self.running.swap(true, Ordering::SeqCst) {
            let me = self.clone();
            tokio::task::spawn_blocking(move || me.run());
        }
        Ok(())
    }

    /// Syncs until no callback waits. Runs on the blocking pool.
    fn run(&self) {
        let mut waiting = self.waiting.lock().expect("lock");
        let mut batch = Vec::new();
        loop {
            while let Ok(cb) = waiting.try_recv() {
                batch.push(cb);
            }
            if batch.is_empty() {
                self.running.store(false, Ordering::SeqCst);
                // A callback queued after the drain whose sender still saw `running` set has
                // no runner but this one; if its sender saw it cleared, it started another.
                if waiting.is_empty() || self.running.swap(true, Ordering::SeqCst) {
                    return;
                }
                continue;
            }
            let started = std::time::Instant::now();
            let res = self.log.sync().map_err(io_err);
            let took = started.elapsed();
            if took >= std::time::Duration::from_millis(SLOW_FSYNC_MS) {
                // A disk or scheduler stall: every write of this group waits for it.
                tracing::warn!(
                    took_ms = took.as_millis() as u64,
                    writes = batch.len(),
                    "slow log fsync"
                );
            }
            match &res {
                Ok(()) => self.durable.publish(&self.log),
                Err(e) => {
                    tracing::error!(error = %e, "log fsync failed; the group stops acknowledging writes");
                    self.durable.fail();
                }
            }
            for cb in batch.drain(..) {
                let r = match &res {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
                cb.io_completed(r);
            }
        }
    }
}

/// A node-wide bound on the bytes all [`EntryCache`]s hold, counted as the entries' record
/// bytes. A follower's entries are slices of the AppendEntries buffer they arrived in
/// (`codec::decode_shared`), which stays allocated while any of them is cached: the memory
/// behind a full cache can be up to about twice its count.
pub struct CacheBudget {
    used: AtomicUsize,
    max: usize,
    group_max: usize,
}

impl CacheBudget {
    pub fn new(max: usize, group_max: usize) -> Arc<CacheBudget> {
        Arc::new(CacheBudget {
            used: AtomicUsize::new(0),
            max,
            group_max,
        })
    }
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Per-entry bookkeeping charged to the budget on top of the payload.
const CACHE_ENTRY_OVERHEAD_BYTES: usize = 128;

/// The latest entries of one log, so that replication and the state machine take them from
/// memory instead of reading and decoding them back from the segment files. Entries are cheap
/// to clone (record payloads are reference-counted).
pub struct EntryCache<C: BraidTypeConfig> {
    inner: Mutex<CacheInner<C>>,
    budget: Arc<CacheBudget>,
}

struct CacheInner<C: BraidTypeConfig> {
    entries: VecDeque<(Ent<C>, usize)>,
    bytes: usize,
}

impl<C: BraidTypeConfig> EntryCache<C>
where
    C::D: EntryTimestamp,
{
    fn new(budget: Arc<CacheBudget>) -> EntryCache<C> {
        EntryCache {
            inner: Mutex::new(CacheInner {
                entries: VecDeque::new(),
                bytes: 0,
            }),
            budget,
        }
    }

    fn cost(e: &Ent<C>) -> usize {
        CACHE_ENTRY_OVERHEAD_BYTES
            + match &e.payload {
                EntryPayload::Normal(d) => d.payload_bytes(),
                _ => 0,
            }
    }

    fn pop_front(&self, inner: &mut CacheInner<C>) {
        if let Some((_, c)) = inner.entries.pop_front() {
            inner.bytes -= c;
            self.budget.used.fetch_sub(c, Ordering::Relaxed);
        }
    }

    /// Caches a just-appended entry, evicting this log's oldest entries to stay within the
    /// group's and the node's budgets (if it still does not fit, the cache is emptied: it
    /// must stay contiguous up to the last entry).
    fn push(&self, e: &Ent<C>) {
        let cost = Self::cost(e);
        let mut inner = self.inner.lock().expect("lock");
        if inner
            .entries
            .back()
            .is_some_and(|(b, _)| b.log_id.index + 1 != e.log_id.index)
        {
            self.clear_locked(&mut inner);
        }
        while !inner.entries.is_empty()
            && (inner.bytes + cost > self.budget.group_max
                || self.budget.used() + cost > self.budget.max)
        {
            self.pop_front(&mut inner);
        }
        // Reserve the bytes atomically: other groups push at the same time.
        let reserved = cost <= self.budget.group_max
            && self
                .budget
                .used
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                    (used + cost <= self.budget.max).then_some(used + cost)
                })
                .is_ok();
        if !reserved {
            // Not cached: the cache must not stop short of the log, so it empties.
            self.clear_locked(&mut inner);
            return;
        }
        inner.bytes += cost;
        inner.entries.push_back((e.clone(), cost));
    }

    /// Entries `[from, to)` if the cache holds `from` (then it holds everything after it).
    fn get(&self, from: u64, to: u64) -> Option<Vec<Ent<C>>> {
        let inner = self.inner.lock().expect("lock");
        let first = inner.entries.front()?.0.log_id.index;
        let last = inner.entries.back()?.0.log_id.index;
        if from < first || from > last {
            return None;
        }
        let skip = (from - first) as usize;
        Some(
            inner
                .entries
                .iter()
                .skip(skip)
                .take_while(|(e, _)| e.log_id.index < to)
                .map(|(e, _)| e.clone())
                .collect(),
        )
    }

    /// Drops entries at `index` and after (a truncated suffix).
    fn truncate_from(&self, index: u64) {
        let mut inner = self.inner.lock().expect("lock");
        while inner
            .entries
            .back()
            .is_some_and(|(b, _)| b.log_id.index >= index)
        {
            let (_, c) = inner.entries.pop_back().expect("non-empty");
            inner.bytes -= c;
            self.budget.used.fetch_sub(c, Ordering::Relaxed);
        }
    }

    /// Drops entries up to `index` (a purged prefix).
    fn purge_upto(&self, index: u64) {
        let mut inner = self.inner.lock().expect("lock");
        while inner
            .entries
            .front()
            .is_some_and(|(f, _)| f.log_id.index <= index)
        {
            self.pop_front(&mut inner);
        }
    }

    fn clear_locked(&self, inner: &mut CacheInner<C>) {
        self.budget.used.fetch_sub(inner.bytes, Ordering::Relaxed);
        inner.bytes = 0;
        inner.entries.clear();
    }

    /// Empties the cache (an idle group gives its memory back).
    pub fn clear(&self) {
        let mut inner = self.inner.lock().expect("lock");
        self.clear_locked(&mut inner);
    }

    /// Entries and bytes held.
    pub fn held(&self) -> (usize, usize) {
        let inner = self.inner.lock().expect("lock");
        (inner.entries.len(), inner.bytes)
    }
}

impl<C: BraidTypeConfig> Drop for EntryCache<C> {
    fn drop(&mut self) {
        let bytes = match self.inner.get_mut() {
            Ok(i) => i.bytes,
            Err(poisoned) => poisoned.into_inner().bytes,
        };
        self.budget.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The highest log index this replica knows to be committed (openraft reports it to
/// `save_committed`), readable by the node for status.
#[derive(Clone, Default)]
pub struct CommittedIndex(Arc<AtomicU64>);

impl CommittedIndex {
    const NONE: u64 = u64::MAX;
    fn set(&self, index: Option<u64>) {
        self.0.store(index.unwrap_or(Self::NONE), Ordering::Relaxed);
    }
    pub fn get(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|i| *i != Self::NONE)
    }
}

pub struct LogStore<C: BraidTypeConfig> {
    log: Arc<SegmentLog>,
    cache: Arc<EntryCache<C>>,
    committed: CommittedIndex,
    meta: MetaStore,
    /// Cached id of the last entry (or the purged id when the log is empty).
    last: Arc<Mutex<Option<LogId>>>,
    flusher: Arc<Flusher<C>>,
    durable_tx: Arc<DurablePublisher>,
    durable: DurableIndex,
    _c: PhantomData<C>,
}

impl<C: BraidTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            log: self.log.clone(),
            cache: self.cache.clone(),
            committed: self.committed.clone(),
            meta: self.meta.clone(),
            last: self.last.clone(),
            flusher: self.flusher.clone(),
            durable_tx: self.durable_tx.clone(),
            durable: self.durable.clone(),
            _c: PhantomData,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Lets the state machine pick a timestamp for an entry (used for retention and AT_TIMESTAMP).
pub trait EntryTimestamp: Clone {
    fn timestamp_ms(&self) -> Option<u64>;
    /// Roughly how much memory the entry holds (for the entry cache's budget).
    fn payload_bytes(&self) -> usize {
        0
    }
}

/// `SegmentLog::sync` (fsync) on the blocking pool.
async fn sync_blocking(log: &Arc<SegmentLog>) -> io::Result<()> {
    let l = log.clone();
    tokio::task::spawn_blocking(move || l.sync())
        .await
        .map_err(io_err)?
        .map_err(io_err)
}

/// A group-commit fsync at least this slow is logged.
const SLOW_FSYNC_MS: u64 = 50;

impl<C> LogStore<C>
where
    C: BraidTypeConfig,
    C::D: EntryTimestamp,
{
    /// Opens the group's log. Appends must run inside a tokio runtime (they start fsyncs on its
    /// blocking pool).
    pub fn open(
        log: Arc<SegmentLog>,
        meta: MetaStore,
        cache: Arc<CacheBudget>,
    ) -> io::Result<LogStore<C>> {
        let last = match log.last_index() {
            Some(i) => Some(Self::decode_at(&log, i)?.log_id),
            None => meta.get::<LogId>("purged")?,
        };
        let (tx, rx) = mpsc::channel::<IOFlushed<C>>(FLUSH_QUEUE_MAX);
        let (tx_durable, durable_rx) = watch::channel(Durable {
            index: log.synced_index(),
            failed: false,
        });
        let durable_tx = Arc::new(DurablePublisher {
            tx: tx_durable,
            lock: Mutex::new(()),
        });
        let flusher = Arc::new(Flusher {
            queue: tx,
            waiting: Mutex::new(rx),
            running: AtomicBool::new(false),
            log: log.clone(),
            durable: durable_tx.clone(),
        });
        let committed = CommittedIndex(Arc::new(AtomicU64::new(CommittedIndex::NONE)));
        committed.set(
            meta.get::<Option<LogId>>("committed")?
                .flatten()
                .map(|l| l.index),
        );
        Ok(LogStore {
            log,
            committed,
            cache: Arc::new(EntryCache::new(cache)),
            meta,
            last: Arc::new(Mutex::new(last)),
            flusher,
            durable_tx,
            durable: DurableIndex(durable_rx),
            _c: PhantomData,
        })
    }

    fn decode_at(log: &SegmentLog, index: u64) -> io::Result<Ent<C>> {
        let (_, bytes) = log
            .read(index)
            .map_err(io_err)?
            .ok_or_else(|| io::Error::other(format!("log entry {index} missing")))?;
        let e: Ent<C> = codec::decode_shared(&bytes.into()).map_err(io_err)?;
        assert_eq!(e.log_id.index, index, "entry stored under the wrong index");
        Ok(e)
    }

    pub fn segment_log(&self) -> &Arc<SegmentLog> {
        &self.log
    }

    pub fn cache(&self) -> &Arc<EntryCache<C>> {
        &self.cache
    }

    pub fn committed(&self) -> &CommittedIndex {
        &self.committed
    }

    /// The index up to which this log is durable; the group's state machine waits on it.
    pub fn durable(&self) -> DurableIndex {
        self.durable.clone()
    }

    /// Publishes the durable index after a truncation or purge (both durable on return).
    fn publish_durable(&self) {
        self.durable_tx.publish(&self.log);
    }

    /// Makes every entry appended so far durable (for the vote, which must not become durable
    /// before the appends that preceded it: openraft counts a saved vote as "everything before
    /// it is flushed").
    async fn sync_appended(&self) -> io::Result<()> {
        sync_blocking(&self.log).await?;
        self.publish_durable();
        Ok(())
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: BraidTypeConfig,
    C::D: EntryTimestamp,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Ent<C>>> {
        let from = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x + 1,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(x) => x + 1,
            Bound::Excluded(x) => *x,
            Bound::Unbounded => u64::MAX,
        };
        if let Some(hit) = self.cache.get(from, to) {
            return Ok(hit);
        }
        let mut out = Vec::new();
        let mut next = from;
        while next < to {
            let chunk = self
                .log
                .read_range(next, to, 16 * 1024 * 1024)
                .map_err(io_err)?;
            if chunk.is_empty() {
                break;
            }
            for (index, _, bytes) in chunk {
                let e: Ent<C> = codec::decode_shared(&bytes.into()).map_err(io_err)?;
                assert_eq!(e.log_id.index, index);
                next = index + 1;
                out.push(e);
            }
        }
        Ok(out)
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        self.meta.get("vote")
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: BraidTypeConfig,
    C::D: EntryTimestamp,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> io::Result<LogState<C>> {
        let purged = self.meta.get::<LogId>("purged")?;
        let last = *self.last.lock().expect("lock");
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        self.sync_appended().await?;
        self.meta.put("vote", vote)?;
        self.meta.flush().await?;
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // Persist only what is durable here: on restart openraft re-applies up to the persisted
        // committed id from this log, which must hold it.
        let durable = self.log.synced_index();
        if committed.map(|c| Some(c.index) <= durable).unwrap_or(true) {
            self.meta.put("committed", &committed)?;
        }
        self.committed.set(committed.map(|l| l.index));
        Ok(())
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(self.meta.get::<Option<LogId>>("committed")?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> io::Result<()>
    where
        I: IntoIterator<Item = Ent<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut last = None;
        for e in entries {
            let ts = match &e.payload {
                EntryPayload::Normal(d) => d.timestamp_ms(),
                _ => None,
            }
            .unwrap_or_else(now_ms);
            let bytes = codec::encode(&e);
            self.log
                .append(e.log_id.index, ts, &bytes)
                .map_err(io_err)?;
            self.cache.push(&e);
            last = Some(e.log_id);
        }
        if let Some(l) = last {
            *self.last.lock().expect("lock") = Some(l);
        }
        self.flusher.request(callback).await
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        tracing::debug!(?last_log_id, "truncate log suffix");
        let from = last_log_id.map_or(0, |l| l.index + 1);
        self.cache.truncate_from(from);
        self.log.truncate_from(from).map_err(io_err)?;
        let last = match self.log.last_index() {
            Some(i) => Some(Self::decode_at(&self.log, i)?.log_id),
            None => self.meta.get::<LogId>("purged")?,
        };
        *self.last.lock().expect("lock") = last;
        self.publish_durable();
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        tracing::debug!(?log_id, "purge log prefix");
        self.cache.purge_upto(log_id.index);
        self.meta.put("purged", &log_id)?;
        self.meta.flush().await?;
        self.log.purge_upto(log_id.index).map_err(io_err)?;
        {
            let mut last = self.last.lock().expect("lock");
            if last.map(|l| l.index < log_id.index).unwrap_or(true) {
                *last = Some(log_id);
            }
        }
        self.publish_durable();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::RecordBatchBuilder;
    use crate::shard::{ShardRequest, ShardTypeConfig};

    fn entry(index: u64, data_bytes: usize) -> Ent<ShardTypeConfig> {
        let mut b = RecordBatchBuilder::with_capacity(1, data_bytes + 1);
        b.push("k", &vec![7u8; data_bytes]);
        openraft::Entry {
            log_id: LogId::new(crate::leader_id(1, 1), index),
            payload: EntryPayload::Normal(ShardRequest::Put {
                arrival_ms: index,
                records: b.finish(),
            }),
        }
    }

    fn indexes(v: &[Ent<ShardTypeConfig>]) -> Vec<u64> {
        v.iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn serves_a_contiguous_suffix_and_trims_with_the_log() {
        let budget = CacheBudget::new(1 << 20, 1 << 20);
        let c = EntryCache::<ShardTypeConfig>::new(budget.clone());
        for i in 1..=5 {
            c.push(&entry(i, 100));
        }
        assert_eq!(indexes(&c.get(2, 4).unwrap()), vec![2, 3]);
        assert_eq!(indexes(&c.get(4, u64::MAX).unwrap()), vec![4, 5]);
        assert!(c.get(0, 3).is_none(), "0 was never cached");
        assert!(
            c.get(6, 10).is_none(),
            "past the last entry: the log answers"
        );
        c.truncate_from(4);
        assert_eq!(indexes(&c.get(1, u64::MAX).unwrap()), vec![1, 2, 3]);
        c.purge_upto(2);
        assert!(c.get(2, 4).is_none());
        assert_eq!(indexes(&c.get(3, u64::MAX).unwrap()), vec![3]);
        // A gap (the log moved on without the cache) empties it rather than leave a hole.
        c.push(&entry(9, 100));
        assert!(c.get(3, 10).is_none());
        assert_eq!(indexes(&c.get(9, 10).unwrap()), vec![9]);
        assert_eq!(budget.used(), c.held().1);
        drop(c);
        assert_eq!(budget.used(), 0, "a dropped cache returns its bytes");
    }

    #[test]
    fn stays_within_the_group_and_node_budgets() {
        let cost = EntryCache::<ShardTypeConfig>::cost(&entry(1, 1000));
        // A group may hold three entries, the node four.
        let budget = CacheBudget::new(4 * cost, 3 * cost);
        let a = EntryCache::<ShardTypeConfig>::new(budget.clone());
        let b = EntryCache::<ShardTypeConfig>::new(budget.clone());
        for i in 1..=5 {
            a.push(&entry(i, 1000));
        }
        assert_eq!(a.held().0, 3);
        assert_eq!(indexes(&a.get(3, u64::MAX).unwrap()), vec![3, 4, 5]);
        // `b` may take only what the node has left, evicting its own entries, never `a`'s.
        for i in 1..=3 {
            b.push(&entry(i, 1000));
        }
        assert_eq!(b.held().0, 1);
        assert_eq!(indexes(&b.get(3, u64::MAX).unwrap()), vec![3]);
        assert_eq!(a.held().0, 3);
        assert_eq!(budget.used(), 4 * cost);
        // An entry larger than a group's share is not cached, and the cache is emptied.
        let big = entry(6, 4 * 1000);
        assert!(EntryCache::<ShardTypeConfig>::cost(&big) > 3 * cost);
        a.push(&big);
        assert_eq!(a.held().0, 0);
        assert!(a.get(6, 7).is_none());
        a.clear();
        b.clear();
        assert_eq!(budget.used(), 0);
    }

    /// Whatever the other groups take of the node's budget, a cache either is empty or ends at
    /// the entry pushed last (so it never serves a short read of the log's tail).
    #[test]
    fn a_cache_never_stops_short_of_the_last_push() {
        let cost = EntryCache::<ShardTypeConfig>::cost(&entry(1, 100));
        let budget = CacheBudget::new(5 * cost, 3 * cost);
        let caches: Vec<_> = (0..3)
            .map(|_| EntryCache::<ShardTypeConfig>::new(budget.clone()))
            .collect();
        let mut next = [1u64; 3];
        for step in 0..300u64 {
            let i = (step * 7 + step / 5) as usize % 3;
            caches[i].push(&entry(next[i], 100));
            if let Some(got) = caches[i].get(next[i], next[i] + 1) {
                assert_eq!(indexes(&got), vec![next[i]], "step {step}");
            } else {
                assert_eq!(caches[i].held().0, 0, "step {step}: not cached, so empty");
            }
            next[i] += 1;
            assert!(budget.used() <= 5 * cost);
        }
        drop(caches);
        assert_eq!(budget.used(), 0);
    }
}
