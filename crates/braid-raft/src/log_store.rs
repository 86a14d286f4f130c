//! openraft's log storage over a [`SegmentLog`]: one Raft entry per log frame.
//!
//! Invariants:
//! - The segment log holds exactly the entries `(purged, last]`, consecutive (checked by the
//!   segment log on every append).
//! - An entry is reported flushed to openraft only after the segment log's `sync` returned for
//!   it (fsync). Appends of many client writes share one fsync: the flusher task drains every
//!   pending callback before it syncs (group commit).
//! - Flush callbacks complete in append order.

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use braid_storage::SegmentLog;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    EntryPayload, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};
use tokio::sync::mpsc;

use crate::meta::MetaStore;
use crate::{codec, BraidTypeConfig};

/// Pending flush callbacks per log (bounded: openraft has at most a few appends in flight).
const FLUSH_QUEUE_MAX: usize = 1024;

pub struct LogStore<C: BraidTypeConfig> {
    log: Arc<SegmentLog>,
    meta: MetaStore,
    /// Cached id of the last entry (or the purged id when the log is empty).
    last: Arc<Mutex<Option<LogId<u64>>>>,
    flusher: mpsc::Sender<LogFlushed<C>>,
    _c: PhantomData<C>,
}

impl<C: BraidTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            log: self.log.clone(),
            meta: self.meta.clone(),
            last: self.last.clone(),
            flusher: self.flusher.clone(),
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

fn read_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::read_logs(&e).into()
}
fn write_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::write_logs(&e).into()
}

/// Lets the state machine pick a timestamp for an entry (used for retention and AT_TIMESTAMP).
pub trait EntryTimestamp {
    fn timestamp_ms(&self) -> Option<u64>;
}

impl<C> LogStore<C>
where
    C: BraidTypeConfig,
    C::D: EntryTimestamp,
{
    /// Opens the group's log. Must run inside a tokio runtime (it spawns the flusher task).
    pub fn open(log: Arc<SegmentLog>, meta: MetaStore) -> Result<LogStore<C>, StorageError<u64>> {
        let last = match log.last_index() {
            Some(i) => Some(Self::decode_at(&log, i)?.log_id),
            None => meta.get::<LogId<u64>>("purged").map_err(|e| read_err(e))?,
        };
        let (tx, mut rx) = mpsc::channel::<LogFlushed<C>>(FLUSH_QUEUE_MAX);
        let flush_log = log.clone();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while let Some(cb) = rx.recv().await {
                batch.push(cb);
                while let Ok(cb) = rx.try_recv() {
                    batch.push(cb);
                }
                let l = flush_log.clone();
                let res = tokio::task::spawn_blocking(move || l.sync()).await;
                let res: Result<(), io::Error> = match res {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(io::Error::other(e.to_string())),
                    Err(e) => Err(io::Error::other(e.to_string())),
                };
                if let Err(e) = &res {
                    tracing::error!(error = %e, "log fsync failed; the group stops acknowledging writes");
                }
                for cb in batch.drain(..) {
                    let r = match &res {
                        Ok(()) => Ok(()),
                        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                    };
                    cb.log_io_completed(r);
                }
            }
        });
        Ok(LogStore {
            log,
            meta,
            last: Arc::new(Mutex::new(last)),
            flusher: tx,
            _c: PhantomData,
        })
    }

    fn decode_at(log: &SegmentLog, index: u64) -> Result<openraft::Entry<C>, StorageError<u64>> {
        let (_, bytes) = log
            .read(index)
            .map_err(read_err)?
            .ok_or_else(|| read_err(io::Error::other(format!("log entry {index} missing"))))?;
        let e: openraft::Entry<C> = codec::decode(&bytes).map_err(read_err)?;
        assert_eq!(e.log_id.index, index, "entry stored under the wrong index");
        Ok(e)
    }

    pub fn segment_log(&self) -> &Arc<SegmentLog> {
        &self.log
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
    ) -> Result<Vec<openraft::Entry<C>>, StorageError<u64>> {
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
        let mut out = Vec::new();
        let mut next = from;
        while next < to {
            let chunk = self
                .log
                .read_range(next, to, 16 * 1024 * 1024)
                .map_err(read_err)?;
            if chunk.is_empty() {
                break;
            }
            for (index, _, bytes) in chunk {
                let e: openraft::Entry<C> = codec::decode(&bytes).map_err(read_err)?;
                assert_eq!(e.log_id.index, index);
                next = index + 1;
                out.push(e);
            }
        }
        Ok(out)
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: BraidTypeConfig,
    C::D: EntryTimestamp,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<u64>> {
        let purged = self
            .meta
            .get::<LogId<u64>>("purged")
            .map_err(|e| read_err(e))?;
        let last = *self.last.lock().expect("lock");
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last.or(purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        self.meta
            .put("vote", vote)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.meta
            .flush()
            .await
            .map_err(|e| StorageIOError::write_vote(&e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        self.meta
            .get("vote")
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        self.meta.put("committed", &committed).map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self
            .meta
            .get::<Option<LogId<u64>>>("committed")
            .map_err(read_err)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = openraft::Entry<C>> + OptionalSend,
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
                .map_err(write_err)?;
            last = Some(e.log_id);
        }
        if let Some(l) = last {
            *self.last.lock().expect("lock") = Some(l);
        }
        self.flusher
            .send(callback)
            .await
            .map_err(|_| write_err(io::Error::other("log flusher stopped")))?;
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        tracing::debug!(?log_id, "truncate log suffix");
        self.log.truncate_from(log_id.index).map_err(write_err)?;
        let last = match self.log.last_index() {
            Some(i) => Some(Self::decode_at(&self.log, i)?.log_id),
            None => self.meta.get::<LogId<u64>>("purged").map_err(read_err)?,
        };
        *self.last.lock().expect("lock") = last;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        tracing::debug!(?log_id, "purge log prefix");
        self.meta.put("purged", &log_id).map_err(write_err)?;
        self.meta.flush().await.map_err(write_err)?;
        self.log.purge_upto(log_id.index).map_err(write_err)?;
        let mut last = self.last.lock().expect("lock");
        if last.map(|l| l.index < log_id.index).unwrap_or(true) {
            *last = Some(log_id);
        }
        Ok(())
    }
}
