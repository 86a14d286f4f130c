//! [`SegmentLog`]: the segment files, the in-memory index, recovery and group commit.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use braid_types::limits::{ENTRY_BYTES_MAX, SEGMENT_BYTES_MAX};

/// Payloads up to this size are copied behind their header and written at once; larger ones
/// are written after it (two `pwrite`s, no copy).
const FRAME_COPY_BYTES_MAX: usize = 16 * 1024;
use tracing::{debug, info, warn};

use crate::error::StorageError;
use crate::frame::{self, FRAME_BYTES_MAX, HEADER_BYTES};

/// Name of the file holding the purge point.
pub const PURGED_FILE: &str = "purged";
const PURGED_TMP_FILE: &str = "purged.tmp";
const SEGMENT_SUFFIX: &str = ".seg";
/// Bytes of the `purged` file: index u64 LE + crc32c u32 LE of those 8 bytes.
const PURGED_FILE_BYTES: usize = 12;
/// Largest `segment_bytes_max` accepted: frame offsets are kept as u32 in memory.
pub const SEGMENT_BYTES_MAX_LIMIT: u64 = u32::MAX as u64 - FRAME_BYTES_MAX as u64;
/// `read_range` reads runs of adjacent frames with one positional read of at most this many
/// bytes (a single bigger frame is read on its own).
const READ_SPAN_BYTES_MAX: usize = 1024 * 1024;

/// Configuration of a [`SegmentLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// A new segment file is started when appending a frame would make the active one larger
    /// than this. A frame is never split, so a segment holding a single frame may be larger.
    pub segment_bytes_max: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes_max: SEGMENT_BYTES_MAX,
        }
    }
}

/// A description of one segment file, for retention and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Index of the first frame in the file (also the file's name). Frames at or below the purge
    /// point may still be physically present in the first segment.
    pub base_index: u64,
    /// Index of the last frame in the file (`None` only for a segment without frames, which the
    /// log never keeps).
    pub last_index: Option<u64>,
    /// Bytes of the file.
    pub bytes: u64,
    /// Largest timestamp of the frames in the file (0 if none).
    pub max_timestamp_ms: u64,
    /// Whether this is the segment appends go to (the last one).
    pub active: bool,
}

/// One segment file and its index. Segments kept in memory always hold at least one frame.
struct Segment {
    base: u64,
    file: Arc<File>,
    /// `offsets[i]` is the file offset of the frame holding index `base + i`.
    offsets: Vec<u32>,
    /// File length (== end of the last frame).
    bytes: u64,
    max_timestamp_ms: u64,
}

impl Segment {
    fn last(&self) -> Option<u64> {
        (self.offsets.len() as u64)
            .checked_sub(1)
            .map(|n| self.base + n)
    }

    /// (offset, length) of frame number `i` in this file.
    fn frame_span(&self, i: usize) -> (u64, usize) {
        let start = u64::from(self.offsets[i]);
        let end = self
            .offsets
            .get(i + 1)
            .map_or(self.bytes, |&o| u64::from(o));
        assert!(
            end >= start + HEADER_BYTES as u64,
            "frame shorter than a header"
        );
        (start, (end - start) as usize)
    }

    fn info(&self, active: bool) -> SegmentInfo {
        SegmentInfo {
            base_index: self.base,
            last_index: self.last(),
            bytes: self.bytes,
            max_timestamp_ms: self.max_timestamp_ms,
            active,
        }
    }
}

/// The mutable state, behind [`SegmentLog::state`].
struct State {
    /// Ascending by base; consecutive (each base is the previous segment's last + 1); never
    /// holds a segment without frames. The last one is the active segment.
    segments: Vec<Segment>,
    /// Durable purge point: entries <= this are logically gone.
    purged: Option<u64>,
    /// `purged`, or a higher value being written by a `purge_upto` in progress. Appends to an
    /// empty log must be above it.
    purge_floor: Option<u64>,
    /// Number of appends so far (group-commit sequence).
    append_seq: u64,
    /// Every append with sequence number <= this is durable (or was removed).
    synced_seq: u64,
    /// A `sync` is performing an fsync without the lock.
    sync_in_flight: bool,
    /// Last durable index; `None` when nothing is durable or the log is empty.
    durable: Option<u64>,
    /// Bumped whenever bytes at an already indexed (file, offset) may change or the log is
    /// emptied: by `truncate_from` and by a purge that empties the log. Lock-free readers and
    /// syncs compare it to know whether what they looked up is still valid.
    epoch: u64,
    /// Set after an fsync failure or a half-done update: writes and syncs refuse from then on.
    failed: bool,
}

impl State {
    fn usable(&self) -> Result<(), StorageError> {
        if self.failed {
            Err(StorageError::Failed)
        } else {
            Ok(())
        }
    }

    fn last_index(&self) -> Option<u64> {
        let last = self.segments.last()?.last();
        assert!(last.is_some(), "a kept segment holds at least one frame");
        last
    }

    fn first_index(&self) -> Option<u64> {
        let base = self.segments.first()?.base;
        let last = self.last_index()?;
        let first = match self.purged {
            Some(p) => {
                assert!(p < last, "a non-empty log ends after its purge point");
                base.max(p + 1)
            }
            None => base,
        };
        assert!(first <= last, "first index {first} > last index {last}");
        Some(first)
    }

    /// (segment number, frame number) of `index`, if it is stored.
    fn locate(&self, index: u64) -> Option<(usize, usize)> {
        let first = self.first_index()?;
        let last = self.last_index()?;
        if index < first || index > last {
            return None;
        }
        let s = self.segments.partition_point(|seg| seg.base <= index) - 1;
        let seg = &self.segments[s];
        let i = (index - seg.base) as usize;
        assert!(
            i < seg.offsets.len(),
            "index {index} missing from its segment"
        );
        Some((s, i))
    }

    /// Everything currently stored is durable (after an fsync covering it).
    fn mark_all_durable(&mut self) {
        self.synced_seq = self.append_seq;
        self.durable = self.last_index();
    }

    fn check_invariants(&self) {
        for pair in self.segments.windows(2) {
            let prev_last = pair[0].last().expect("non-empty segment");
            assert_eq!(pair[1].base, prev_last + 1, "segments are consecutive");
        }
        if let (Some(d), Some(l)) = (self.durable, self.last_index()) {
            assert!(d <= l, "durable index {d} beyond last index {l}");
        }
        assert!(self.synced_seq <= self.append_seq);
        let _ = self.first_index();
    }
}

/// A per-shard append-only log of entries stored in segment files. See the crate docs for the
/// format and invariants. All methods take `&self`; the log is `Send + Sync`.
pub struct SegmentLog {
    dir: PathBuf,
    config: LogConfig,
    state: Mutex<State>,
    /// Signalled when a group-commit fsync ends (or durability changes otherwise).
    synced: Condvar,
    /// Serializes `purge_upto` calls (which write the purge file without the state lock).
    purge_lock: Mutex<()>,
    fsyncs: AtomicU64,
    /// Fault injection: the next group-commit fsync fails (see [`SegmentLog::fail_next_sync`]).
    fail_next_sync: AtomicBool,
    /// Test seam: fsyncs wait while set (see [`SegmentLog::hold_syncs`]).
    syncs_held: AtomicBool,
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<SegmentLog>();
};

impl fmt::Debug for SegmentLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("SegmentLog")
            .field("dir", &self.dir)
            .field("first_index", &st.first_index())
            .field("last_index", &st.last_index())
            .field("purged", &st.purged)
            .field("segments", &st.segments.len())
            .finish()
    }
}

fn segment_file_name(base: u64) -> String {
    format!("{base:020}{SEGMENT_SUFFIX}")
}

fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn purged_file_bytes(index: u64) -> [u8; PURGED_FILE_BYTES] {
    let mut b = [0u8; PURGED_FILE_BYTES];
    b[..8].copy_from_slice(&index.to_le_bytes());
    let crc = crc32c::crc32c(&index.to_le_bytes());
    b[8..].copy_from_slice(&crc.to_le_bytes());
    b
}

impl SegmentLog {
    /// Opens the log in `dir`, creating the directory if needed.
    ///
    /// Recovery scans every segment. In the last segment a torn or corrupt tail (short frame, bad
    /// magic or length, bad CRC, non-consecutive index) is cut off (`set_len` + fsync) with a
    /// warning; a last segment left without frames is deleted. A bad frame in any other segment,
    /// an empty non-last segment, or segments whose indexes do not follow each other make `open`
    /// fail with [`StorageError::Corrupt`]. Entries at or below the stored purge point are
    /// ignored, and segment files holding only such entries are deleted.
    pub fn open(dir: &Path, config: LogConfig) -> Result<SegmentLog, StorageError> {
        if config.segment_bytes_max > SEGMENT_BYTES_MAX_LIMIT {
            return Err(StorageError::InvalidConfig {
                reason: format!(
                    "segment_bytes_max {} exceeds {SEGMENT_BYTES_MAX_LIMIT}",
                    config.segment_bytes_max
                ),
            });
        }
        fs::create_dir_all(dir)
            .map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
        let log = SegmentLog {
            dir: dir.to_path_buf(),
            config,
            state: Mutex::new(State {
                segments: Vec::new(),
                purged: None,
                purge_floor: None,
                append_seq: 0,
                synced_seq: 0,
                sync_in_flight: false,
                durable: None,
                epoch: 0,
                failed: false,
            }),
            synced: Condvar::new(),
            purge_lock: Mutex::new(()),
            fsyncs: AtomicU64::new(0),
            fail_next_sync: AtomicBool::new(false),
            syncs_held: AtomicBool::new(false),
        };
        log.recover()?;
        Ok(log)
    }

    fn recover(&self) -> Result<(), StorageError> {
        let tmp = self.dir.join(PURGED_TMP_FILE);
        match fs::remove_file(&tmp) {
            Ok(()) => info!(path = %tmp.display(), "removed leftover purge temp file"),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(format!("removing {}", tmp.display()), e)),
        }
        let purged = self.read_purged_file()?;

        let mut bases = Vec::new();
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| StorageError::io(format!("listing {}", self.dir.display()), e))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| StorageError::io(format!("listing {}", self.dir.display()), e))?;
            if let Some(base) = entry.file_name().to_str().and_then(parse_segment_file_name) {
                bases.push(base);
            }
        }
        bases.sort_unstable();

        let mut dir_changed = false;
        // Segments followed by one starting at or below purged + 1 hold only purged entries:
        // delete them without reading them.
        if let Some(p) = purged {
            while bases.len() >= 2 && bases[1] <= p.saturating_add(1) {
                let base = bases.remove(0);
                self.remove_segment_file(base)?;
                info!(base, purged = p, "deleted fully purged segment");
                dir_changed = true;
            }
        }

        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
        let count = bases.len();
        for (n, &base) in bases.iter().enumerate() {
            let is_last = n + 1 == count;
            let path = self.segment_path(base);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| StorageError::io(format!("opening {}", path.display()), e))?;
            let file_len = file
                .metadata()
                .map_err(|e| {
                    StorageError::io(format!("reading metadata of {}", path.display()), e)
                })?
                .len();
            let mut scan = frame::scan(&file, file_len, base)
                .map_err(|e| StorageError::io(format!("reading {}", path.display()), e))?;
            if let Some(reason) = scan.stop.take() {
                if !is_last {
                    return Err(StorageError::Corrupt {
                        path,
                        offset: scan.valid_bytes,
                        reason,
                    });
                }
                warn!(
                    path = %path.display(),
                    offset = scan.valid_bytes,
                    dropped_bytes = file_len - scan.valid_bytes,
                    %reason,
                    "truncating torn or corrupt tail of the last segment"
                );
                file.set_len(scan.valid_bytes)
                    .map_err(|e| StorageError::io(format!("truncating {}", path.display()), e))?;
                self.fsync_file(&file, &path)?;
            }
            if scan.offsets.is_empty() {
                if !is_last {
                    return Err(StorageError::Corrupt {
                        path,
                        offset: 0,
                        reason: "segment without frames before the last segment".to_string(),
                    });
                }
                drop(file);
                self.remove_segment_file(base)?;
                info!(base, "deleted last segment without complete frames");
                dir_changed = true;
                continue;
            }
            if !is_last {
                scan.offsets.shrink_to_fit();
            }
            segments.push(Segment {
                base,
                file: Arc::new(file),
                offsets: scan.offsets,
                bytes: scan.valid_bytes,
                max_timestamp_ms: scan.max_timestamp_ms,
            });
        }

        // Apply the purge point: drop leading segments holding only purged entries.
        if let Some(p) = purged {
            let keep_from = segments
                .iter()
                .position(|s| s.last().expect("non-empty") > p)
                .unwrap_or(segments.len());
            for seg in segments.drain(..keep_from) {
                self.remove_segment_file(seg.base)?;
                info!(base = seg.base, purged = p, "deleted fully purged segment");
                dir_changed = true;
            }
        }

        for pair in segments.windows(2) {
            let prev_last = pair[0].last().expect("non-empty");
            if pair[1].base != prev_last + 1 {
                return Err(StorageError::Corrupt {
                    path: self.segment_path(pair[1].base),
                    offset: 0,
                    reason: format!(
                        "segment starts at index {} but the previous one ends at {prev_last}",
                        pair[1].base
                    ),
                });
            }
        }

        if dir_changed {
            self.fsync_dir()?;
        }
        // Whatever survived may still be only in the page cache (process restart without a
        // machine crash): make it durable so `synced_index` can start at the last entry.
        if let Some(seg) = segments.last() {
            self.fsync_file(&seg.file, &self.segment_path(seg.base))?;
        }

        let mut st = self.lock();
        st.segments = segments;
        st.purged = purged;
        st.purge_floor = purged;
        st.mark_all_durable();
        st.check_invariants();
        debug!(
            dir = %self.dir.display(),
            segments = st.segments.len(),
            first = ?st.first_index(),
            last = ?st.last_index(),
            purged = ?st.purged,
            "opened segment log"
        );
        Ok(())
    }

    fn read_purged_file(&self) -> Result<Option<u64>, StorageError> {
        let path = self.dir.join(PURGED_FILE);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io(format!("opening {}", path.display()), e)),
        };
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)
            .map_err(|e| StorageError::io(format!("reading {}", path.display()), e))?;
        let Ok(bytes) = <[u8; PURGED_FILE_BYTES]>::try_from(buf.as_slice()) else {
            return Err(StorageError::Corrupt {
                path,
                offset: 0,
                reason: format!(
                    "purge file has {} bytes, expected {PURGED_FILE_BYTES}",
                    buf.len()
                ),
            });
        };
        let index = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        if purged_file_bytes(index) != bytes {
            return Err(StorageError::Corrupt {
                path,
                offset: 0,
                reason: "purge file CRC mismatch".to_string(),
            });
        }
        Ok(Some(index))
    }

    /// Writes the purge point durably: tmp file + fsync + rename + fsync dir.
    fn write_purged_file(&self, index: u64) -> Result<(), StorageError> {
        let tmp = self.dir.join(PURGED_TMP_FILE);
        let path = self.dir.join(PURGED_FILE);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| StorageError::io(format!("creating {}", tmp.display()), e))?;
        file.write_all(&purged_file_bytes(index))
            .map_err(|e| StorageError::io(format!("writing {}", tmp.display()), e))?;
        self.fsync_file(&file, &tmp)?;
        drop(file);
        fs::rename(&tmp, &path).map_err(|e| {
            StorageError::io(
                format!("renaming {} to {}", tmp.display(), path.display()),
                e,
            )
        })?;
        self.fsync_dir()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("segment log state mutex poisoned")
    }

    fn segment_path(&self, base: u64) -> PathBuf {
        self.dir.join(segment_file_name(base))
    }

    fn remove_segment_file(&self, base: u64) -> Result<(), StorageError> {
        let path = self.segment_path(base);
        fs::remove_file(&path)
            .map_err(|e| StorageError::io(format!("deleting {}", path.display()), e))
    }

    fn fsync_file(&self, file: &File, path: &Path) -> Result<(), StorageError> {
        let res = file.sync_data();
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        res.map_err(|e| StorageError::io(format!("fsyncing {}", path.display()), e))
    }

    fn fsync_dir(&self) -> Result<(), StorageError> {
        let res = File::open(&self.dir).and_then(|d| d.sync_all());
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        res.map_err(|e| StorageError::io(format!("fsyncing directory {}", self.dir.display()), e))
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// First entry still stored (`None` if the log is empty).
    pub fn first_index(&self) -> Option<u64> {
        self.lock().first_index()
    }

    /// Last entry (`None` if the log is empty).
    pub fn last_index(&self) -> Option<u64> {
        self.lock().last_index()
    }

    /// The newest entry timestamp in the active segment (0 if there is none).
    pub fn last_timestamp_ms(&self) -> u64 {
        self.lock()
            .segments
            .last()
            .map_or(0, |s| s.max_timestamp_ms)
    }

    /// Appends one entry. `index` must be `last_index + 1`; when the log is empty any index above
    /// the purge point is accepted. The frame is written (one positional `write`, not synced)
    /// before returning and is immediately readable.
    ///
    /// Rolling to a new segment fsyncs the finished segment first and the directory after
    /// creating the new file (so a segment that is not the last is always complete on disk).
    pub fn append(
        &self,
        index: u64,
        timestamp_ms: u64,
        payload: &[u8],
    ) -> Result<(), StorageError> {
        if payload.len() > ENTRY_BYTES_MAX {
            return Err(StorageError::TooLarge {
                len: payload.len(),
                max: ENTRY_BYTES_MAX,
            });
        }
        if index == u64::MAX {
            return Err(StorageError::IndexOutOfRange { index });
        }
        // Small frames go in one write; large ones as header then payload, which spares a copy
        // of the payload (the frame is whole once both writes are, as recovery checks).
        let small = payload.len() <= FRAME_COPY_BYTES_MAX;
        let header = frame::header(index, timestamp_ms, payload);
        let frame_len = frame::HEADER_BYTES + payload.len();

        let mut st = self.lock();
        st.usable()?;
        match st.last_index() {
            Some(last) if index != last + 1 => {
                return Err(StorageError::NotContiguous {
                    expected: last + 1,
                    got: index,
                })
            }
            Some(_) => {}
            None => {
                if let Some(floor) = st.purge_floor.filter(|&f| index <= f) {
                    return Err(StorageError::BelowPurged {
                        index,
                        purged: floor,
                    });
                }
            }
        }
        let fresh = match st.segments.last() {
            None => true,
            Some(seg) => seg.bytes + frame_len as u64 > self.config.segment_bytes_max,
        };
        if fresh {
            self.roll(&mut st, index)?;
        }
        let seg = st.segments.last_mut().expect("an active segment");
        assert_eq!(
            seg.base + seg.offsets.len() as u64,
            index,
            "indexes are consecutive"
        );
        let offset = seg.bytes;
        assert!(offset + frame_len as u64 <= u64::from(u32::MAX));
        let written = if small {
            let mut frame = Vec::with_capacity(frame_len);
            frame.extend_from_slice(&header);
            frame.extend_from_slice(payload);
            seg.file.write_all_at(&frame, offset)
        } else {
            seg.file.write_all_at(&header, offset).and_then(|()| {
                seg.file
                    .write_all_at(payload, offset + frame::HEADER_BYTES as u64)
            })
        };
        if let Err(e) = written {
            let path = self.segment_path(seg.base);
            if fresh {
                // Do not keep a segment without frames.
                st.segments.pop();
                if fs::remove_file(&path).is_err() {
                    st.failed = true;
                }
            } else if seg.file.set_len(offset).is_err() {
                st.failed = true;
            }
            return Err(StorageError::io(
                format!("writing to {}", path.display()),
                e,
            ));
        }
        seg.offsets.push(offset as u32);
        seg.bytes = offset + frame_len as u64;
        seg.max_timestamp_ms = seg.max_timestamp_ms.max(timestamp_ms);
        st.append_seq += 1;
        Ok(())
    }

    /// Starts a new active segment whose first frame will be `base`. Called with the lock held.
    fn roll(&self, st: &mut State, base: u64) -> Result<(), StorageError> {
        if let Some(prev) = st.segments.last() {
            // Seal the finished segment: it must be complete on disk before a later file exists,
            // so that recovery may treat a bad frame in a non-last segment as corruption.
            if let Err(e) = self.fsync_file(&prev.file, &self.segment_path(prev.base)) {
                st.failed = true;
                return Err(e);
            }
            st.mark_all_durable();
            self.synced.notify_all();
        }
        let path = self.segment_path(base);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| StorageError::io(format!("creating {}", path.display()), e))?;
        if let Err(e) = self.fsync_dir() {
            st.failed = true;
            return Err(e);
        }
        debug!(dir = %self.dir.display(), base, "started a new segment");
        st.segments.push(Segment {
            base,
            file: Arc::new(file),
            offsets: Vec::new(),
            bytes: 0,
            max_timestamp_ms: 0,
        });
        Ok(())
    }

    /// Makes every entry appended before this call durable.
    ///
    /// Group commit: while one caller fsyncs (without holding the state lock, so appends and
    /// reads go on), later callers wait; when it ends, one waiter whose entries are not yet
    /// covered performs a single fsync for all of them. Finished segments and the directory are
    /// already made durable when a segment is rolled, so only the active segment is synced here.
    pub fn sync(&self) -> Result<(), StorageError> {
        let mut st = self.lock();
        let target = st.append_seq;
        loop {
            st.usable()?;
            if st.synced_seq >= target {
                return Ok(());
            }
            if st.sync_in_flight || self.syncs_held.load(Ordering::SeqCst) {
                st = self
                    .synced
                    .wait(st)
                    .expect("segment log state mutex poisoned");
                continue;
            }
            let Some(seg) = st.segments.last() else {
                // Nothing stored: whatever was appended has been removed.
                st.synced_seq = st.append_seq;
                continue;
            };
            let file = Arc::clone(&seg.file);
            let base = seg.base;
            let seq = st.append_seq;
            let last = st.last_index();
            let epoch = st.epoch;
            st.sync_in_flight = true;
            drop(st);

            let res = if self.fail_next_sync.swap(false, Ordering::SeqCst) {
                Err(StorageError::io(
                    format!("fsyncing {}", self.segment_path(base).display()),
                    io::Error::other("injected fsync failure"),
                ))
            } else {
                self.fsync_file(&file, &self.segment_path(base))
            };

            st = self.lock();
            st.sync_in_flight = false;
            self.synced.notify_all();
            if let Err(e) = res {
                st.failed = true;
                return Err(e);
            }
            st.synced_seq = st.synced_seq.max(seq);
            if st.epoch == epoch {
                // No truncation or emptying since the snapshot: entries up to `last` are still
                // the ones that were just made durable.
                st.durable = st.durable.max(last);
            }
        }
    }

    /// Fault injection for tests (the seam `tests/` and `braid-node`'s in-process tests use): the
    /// next [`sync`](Self::sync) that has entries to make durable fails as an fsync error would,
    /// without calling fsync; the log then refuses writes and syncs, as after a real one.
    pub fn fail_next_sync(&self) {
        self.fail_next_sync.store(true, Ordering::SeqCst);
    }

    /// Test seam: until [`release_syncs`](Self::release_syncs), every [`sync`](Self::sync) that
    /// has entries to make durable waits (as behind a very slow disk), so a test can observe
    /// what its callers do before their entries are durable.
    pub fn hold_syncs(&self) {
        self.syncs_held.store(true, Ordering::SeqCst);
    }

    /// Ends [`hold_syncs`](Self::hold_syncs): the waiting syncs go on.
    pub fn release_syncs(&self) {
        // Under the state lock, so that no sync checks the flag and then misses the wake-up.
        let _st = self.lock();
        self.syncs_held.store(false, Ordering::SeqCst);
        self.synced.notify_all();
    }

    /// Index of the last durable entry (`None` if nothing stored is durable yet).
    pub fn synced_index(&self) -> Option<u64> {
        self.lock().durable
    }

    /// Reads entry `index`: `Some((timestamp_ms, payload))`, or `None` if it is not stored. The
    /// CRC is verified; a mismatch is [`StorageError::Corrupt`].
    pub fn read(&self, index: u64) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        loop {
            let (file, base, offset, len, epoch) = {
                let st = self.lock();
                let Some((s, i)) = st.locate(index) else {
                    return Ok(None);
                };
                let seg = &st.segments[s];
                let (offset, len) = seg.frame_span(i);
                (Arc::clone(&seg.file), seg.base, offset, len, st.epoch)
            };
            let mut buf = vec![0u8; len];
            let res = file
                .read_exact_at(&mut buf, offset)
                .map_err(|e| self.read_error(base, offset, e))
                .and_then(|()| {
                    frame::decode(&buf, index).map_err(|reason| StorageError::Corrupt {
                        path: self.segment_path(base),
                        offset,
                        reason,
                    })
                });
            match res {
                Ok(timestamp_ms) => {
                    buf.copy_within(HEADER_BYTES.., 0);
                    buf.truncate(len - HEADER_BYTES);
                    return Ok(Some((timestamp_ms, buf)));
                }
                Err(e) => {
                    if self.lock().epoch != epoch {
                        continue; // raced with a truncation: look it up again
                    }
                    return Err(e);
                }
            }
        }
    }

    fn read_error(&self, base: u64, offset: u64, e: io::Error) -> StorageError {
        StorageError::io(
            format!(
                "reading {} at offset {offset}",
                self.segment_path(base).display()
            ),
            e,
        )
    }

    /// Reads the entries with index in `[from, to)` in order as `(index, timestamp_ms, payload)`.
    /// Stops after the entry that makes the accumulated payload bytes reach `bytes_max`, so the
    /// result may exceed `bytes_max` by at most its last entry, and holds at least one entry if
    /// one is stored in the range.
    pub fn read_range(
        &self,
        from: u64,
        to: u64,
        bytes_max: usize,
    ) -> Result<Vec<(u64, u64, Vec<u8>)>, StorageError> {
        if from >= to {
            return Ok(Vec::new());
        }
        loop {
            // Plan under the lock: which frames, where.
            struct Planned {
                file: usize,
                index: u64,
                offset: u64,
                len: usize,
            }
            let mut files: Vec<(Arc<File>, u64)> = Vec::new();
            let mut plan: Vec<Planned> = Vec::new();
            let epoch = {
                let st = self.lock();
                let (Some(first), Some(last)) = (st.first_index(), st.last_index()) else {
                    return Ok(Vec::new());
                };
                let start = from.max(first);
                let end = (to - 1).min(last);
                if start > end {
                    return Ok(Vec::new());
                }
                let (mut s, mut i) = st.locate(start).expect("start is stored");
                let mut acc = 0usize;
                let mut index = start;
                loop {
                    let seg = &st.segments[s];
                    if files.last().is_none_or(|(_, b)| *b != seg.base) {
                        files.push((Arc::clone(&seg.file), seg.base));
                    }
                    let (offset, len) = seg.frame_span(i);
                    plan.push(Planned {
                        file: files.len() - 1,
                        index,
                        offset,
                        len,
                    });
                    acc = acc.saturating_add(len - HEADER_BYTES);
                    if acc >= bytes_max || index == end {
                        break;
                    }
                    index += 1;
                    i += 1;
                    if i == seg.offsets.len() {
                        s += 1;
                        i = 0;
                    }
                }
                st.epoch
            };

            // Read without the lock, adjacent frames of one file with one positional read.
            let mut out = Vec::with_capacity(plan.len());
            let mut failure = None;
            let mut p = 0;
            'spans: while p < plan.len() {
                let first = &plan[p];
                let mut q = p + 1;
                let mut span = first.len;
                while q < plan.len()
                    && plan[q].file == first.file
                    && plan[q].offset == first.offset + span as u64
                    && span + plan[q].len <= READ_SPAN_BYTES_MAX
                {
                    span += plan[q].len;
                    q += 1;
                }
                let (file, base) = &files[first.file];
                let mut buf = vec![0u8; span];
                if let Err(e) = file.read_exact_at(&mut buf, first.offset) {
                    failure = Some(self.read_error(*base, first.offset, e));
                    break 'spans;
                }
                let mut at = 0;
                for e in &plan[p..q] {
                    let bytes = &buf[at..at + e.len];
                    match frame::decode(bytes, e.index) {
                        Ok(ts) => out.push((e.index, ts, bytes[HEADER_BYTES..].to_vec())),
                        Err(reason) => {
                            failure = Some(StorageError::Corrupt {
                                path: self.segment_path(*base),
                                offset: e.offset,
                                reason,
                            });
                            break 'spans;
                        }
                    }
                    at += e.len;
                }
                p = q;
            }
            match failure {
                None => return Ok(out),
                Some(e) => {
                    if self.lock().epoch != epoch {
                        continue; // raced with a truncation: plan again
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Removes every entry with index >= `index`; durable before returning. Later segment files
    /// are deleted newest first and the directory fsynced, then the segment holding `index` is
    /// cut (`set_len` + fsync), so a crash part-way leaves a prefix of the old log.
    pub fn truncate_from(&self, index: u64) -> Result<(), StorageError> {
        let mut st = self.lock();
        st.usable()?;
        let Some(last) = st.last_index() else {
            return Ok(());
        };
        if index > last {
            return Ok(());
        }
        let first = st.first_index().expect("non-empty");
        st.epoch += 1;
        let res = if index <= first {
            self.remove_all_segments(&mut st)
        } else {
            self.truncate_within(&mut st, index)
        };
        if res.is_err() {
            st.failed = true;
        }
        res?;
        st.mark_all_durable();
        self.synced.notify_all();
        st.check_invariants();
        debug!(dir = %self.dir.display(), index, "truncated log suffix");
        Ok(())
    }

    /// Deletes every segment file (newest first) and fsyncs the directory. Lock held.
    fn remove_all_segments(&self, st: &mut State) -> Result<(), StorageError> {
        if st.segments.is_empty() {
            return Ok(());
        }
        while let Some(seg) = st.segments.last() {
            self.remove_segment_file(seg.base)?;
            st.segments.pop();
        }
        self.fsync_dir()
    }

    /// Removes entries >= `index` where first_index < index <= last_index. Lock held.
    fn truncate_within(&self, st: &mut State, index: u64) -> Result<(), StorageError> {
        let k = st.segments.partition_point(|s| s.base <= index) - 1;
        let mut removed = false;
        while st.segments.len() > k + 1 {
            let base = st.segments.last().expect("segment").base;
            self.remove_segment_file(base)?;
            st.segments.pop();
            removed = true;
        }
        if st.segments[k].base == index {
            assert!(k > 0, "truncation above the first index keeps a segment");
            self.remove_segment_file(index)?;
            st.segments.pop();
            removed = true;
        }
        if removed {
            self.fsync_dir()?;
        }
        let Some(seg) = st.segments.get_mut(k).filter(|s| s.base < index) else {
            return Ok(());
        };
        let keep = (index - seg.base) as usize;
        assert!(keep >= 1 && keep < seg.offsets.len());
        let new_len = u64::from(seg.offsets[keep]);
        let path = self.dir.join(segment_file_name(seg.base));
        seg.file
            .set_len(new_len)
            .map_err(|e| StorageError::io(format!("truncating {}", path.display()), e))?;
        self.fsync_file(&seg.file, &path)?;
        seg.offsets.truncate(keep);
        seg.bytes = new_len;
        seg.max_timestamp_ms = frame::max_timestamp(&seg.file, &seg.offsets)
            .map_err(|e| StorageError::io(format!("reading {}", path.display()), e))?;
        Ok(())
    }

    /// Logically removes every entry with index <= `index`: `first_index` becomes `index + 1`,
    /// or the log becomes empty if `index >= last_index`. The purge point is stored durably in
    /// the file `purged` first; then segment files holding only purged entries are deleted
    /// (all of them if the log becomes empty; otherwise never the active one). Purge points
    /// only move forward: a lower `index` than the current purge point does nothing.
    pub fn purge_upto(&self, index: u64) -> Result<(), StorageError> {
        let _serial = self.purge_lock.lock().expect("purge mutex poisoned");
        {
            let mut st = self.lock();
            st.usable()?;
            if st.purged.is_some_and(|p| p >= index) {
                return Ok(());
            }
            st.purge_floor = st.purge_floor.max(Some(index));
        }
        if let Err(e) = self.write_purged_file(index) {
            let mut st = self.lock();
            st.purge_floor = st.purged;
            return Err(e);
        }
        let removed: Vec<Segment> = {
            let mut st = self.lock();
            st.purged = Some(index);
            if st.last_index().is_none_or(|last| last <= index) {
                // The log becomes empty. Delete the files under the lock, so that no new segment
                // (which may start anywhere above the purge point) can exist next to them.
                if !st.segments.is_empty() {
                    st.epoch += 1;
                    let res = self.remove_all_segments(&mut st);
                    if res.is_err() {
                        st.failed = true;
                    }
                    res?;
                }
                st.mark_all_durable();
                self.synced.notify_all();
                st.check_invariants();
                return Ok(());
            }
            let n = st
                .segments
                .iter()
                .take_while(|s| s.last().expect("non-empty") <= index)
                .count();
            assert!(n < st.segments.len(), "the active segment is kept");
            let removed = st.segments.drain(..n).collect();
            st.check_invariants();
            removed
        };
        // The remaining segments still follow the removed ones, so the deletions need not be
        // ordered with appends: recovery deletes leftovers itself.
        for seg in &removed {
            self.remove_segment_file(seg.base)?;
        }
        if !removed.is_empty() {
            self.fsync_dir()?;
            debug!(dir = %self.dir.display(), index, segments = removed.len(), "purged segments");
        }
        Ok(())
    }

    /// The durable purge point (`None` if nothing was ever purged).
    pub fn purged_index(&self) -> Option<u64> {
        self.lock().purged
    }

    /// The segment files, oldest first; the last one is active.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let st = self.lock();
        let n = st.segments.len();
        st.segments
            .iter()
            .enumerate()
            .map(|(i, s)| s.info(i + 1 == n))
            .collect()
    }

    /// Total bytes of the segment files.
    pub fn disk_bytes(&self) -> u64 {
        self.lock().segments.iter().map(|s| s.bytes).sum()
    }

    /// Number of fsyncs (files and directory) this log has performed since it was opened.
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_file_names() {
        assert_eq!(segment_file_name(57), "00000000000000000057.seg");
        assert_eq!(
            parse_segment_file_name("00000000000000000057.seg"),
            Some(57)
        );
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX - 1)),
            Some(u64::MAX - 1)
        );
        assert_eq!(parse_segment_file_name("57.seg"), None);
        assert_eq!(parse_segment_file_name("0000000000000000005x.seg"), None);
        assert_eq!(parse_segment_file_name("00000000000000000057.log"), None);
        assert_eq!(parse_segment_file_name("99999999999999999999.seg"), None);
        assert_eq!(parse_segment_file_name("purged"), None);
    }

    #[test]
    fn purge_file_encoding() {
        let b = purged_file_bytes(1234);
        assert_eq!(u64::from_le_bytes(b[..8].try_into().unwrap()), 1234);
        assert_ne!(purged_file_bytes(1235), b);
    }

    #[test]
    fn empty_log_state_is_small() {
        // An idle empty log holds no buffers: only the fixed-size structs and the dir path.
        assert!(std::mem::size_of::<SegmentLog>() < 512);
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path(), LogConfig::default()).unwrap();
        let st = log.lock();
        assert_eq!(st.segments.capacity(), 0);
    }

    #[test]
    fn a_failed_fsync_fails_the_sync_and_every_later_write() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path(), LogConfig::default()).unwrap();
        log.append(1, 0, b"durable").unwrap();
        log.sync().unwrap();
        log.append(2, 0, b"not durable").unwrap();
        log.fail_next_sync();
        let err = log.sync().unwrap_err();
        assert!(err.to_string().contains("injected fsync failure"), "{err}");
        assert_eq!(
            log.synced_index(),
            Some(1),
            "entry 2 never counted as durable"
        );
        assert!(matches!(log.sync(), Err(StorageError::Failed)));
        assert!(matches!(log.append(3, 0, b"x"), Err(StorageError::Failed)));
        drop(log);
        // Reopened, the log serves what it has; entry 1 was made durable before the failure.
        let log = SegmentLog::open(dir.path(), LogConfig::default()).unwrap();
        assert_eq!(log.read(1).unwrap().unwrap().1, b"durable");
    }

    #[test]
    fn rejects_oversized_config() {
        let dir = tempfile::tempdir().unwrap();
        let err = SegmentLog::open(
            dir.path(),
            LogConfig {
                segment_bytes_max: u64::from(u32::MAX),
            },
        )
        .unwrap_err();
        assert!(matches!(err, StorageError::InvalidConfig { .. }), "{err}");
    }

    #[test]
    fn frame_span_and_locate() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(
            dir.path(),
            LogConfig {
                segment_bytes_max: 100,
            },
        )
        .unwrap();
        for i in 10..20 {
            log.append(i, i, &[i as u8; 30]).unwrap();
        }
        let st = log.lock();
        // 58-byte frames: one per segment with a 100-byte limit.
        assert_eq!(st.segments.len(), 10);
        assert_eq!(st.locate(9), None);
        assert_eq!(st.locate(10), Some((0, 0)));
        assert_eq!(st.locate(19), Some((9, 0)));
        assert_eq!(st.locate(20), None);
        assert_eq!(st.segments[3].frame_span(0), (0, HEADER_BYTES + 30));
        st.check_invariants();
    }
}
