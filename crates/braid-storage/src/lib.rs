//! Braid's per-shard append-only segment log: the storage of one shard's Raft log.
//!
//! A [`SegmentLog`] owns one directory. Entries are opaque byte payloads identified by a
//! consecutive `u64` index (the Raft log index) and carry a `u64` timestamp (milliseconds since
//! the epoch, used by retention).
//!
//! # On-disk format
//!
//! * Segment files are named `{base_index:020}.seg`, where `base_index` is the index of the first
//!   frame in the file. Other files in the directory are ignored, except `purged`.
//! * A segment is a sequence of frames, all integers little-endian:
//!
//!   ```text
//!   magic u32 ("BRDF") | len u32 | crc32c u32 | index u64 | timestamp_ms u64 | payload (len bytes)
//!   ```
//!
//!   The CRC (crc32c) covers `index`, `timestamp_ms` and the payload. A payload is at most
//!   [`braid_types::limits::ENTRY_BYTES_MAX`] bytes.
//! * A new segment is started when appending a frame would make the active (last) segment larger
//!   than [`LogConfig::segment_bytes_max`]; frames are never split, so a segment is never empty
//!   and a single large frame may exceed the limit.
//! * `purged` holds the purge point: index u64 + crc32c u32 of it (12 bytes), replaced
//!   atomically (write `purged.tmp`, fsync, rename, fsync the directory). Entries at or below it
//!   are ignored even if still present in the first segment.
//!
//! # Invariants
//!
//! * Indexes are consecutive within a segment and across segments: segment `k + 1` starts at the
//!   last index of segment `k` plus one; `first_index <= last_index`.
//! * Every segment except the last is complete and durable: when a segment is rolled, the
//!   finished one is fsynced before the next file is created, and the directory is fsynced after.
//!   So recovery cuts a torn or corrupt tail off the **last** segment (a crash mid-append), but
//!   a bad frame in any **other** segment is corruption and [`SegmentLog::open`] refuses it.
//! * `truncate_from` deletes later segments newest first before cutting the segment holding the
//!   truncation point, and `purge_upto` deletes segments oldest first, so a crash part-way
//!   through either leaves consecutive segments.
//! * The CRC is checked when recovering and again on every read.
//! * `append` writes the frame with one positional write but does not sync; [`SegmentLog::sync`]
//!   makes everything appended before it durable, with group commit: concurrent callers share
//!   one fsync, performed without holding the lock that appends and reads need.
//! * After a failed fsync the on-disk state is unknown: the log turns [`StorageError::Failed`]
//!   for writes and syncs until it is reopened.
//!
//! # Memory
//!
//! Per segment the log keeps a `Vec<u32>` of frame offsets (4 bytes per entry), the file handle
//! and a few counters; an empty log holds no buffers. Reads allocate only what they return.

mod error;
mod frame;
mod log;

pub use error::StorageError;
pub use log::{LogConfig, SegmentInfo, SegmentLog, PURGED_FILE, SEGMENT_BYTES_MAX_LIMIT};

/// Retention: the last index of the longest prefix of *sealed* segments whose newest entry is
/// older than `cutoff_ms`. Purging up to it deletes exactly those whole segment files; the active
/// segment is never selected, so retention never deletes a segment still being written.
pub fn retention_upto(segments: &[SegmentInfo], cutoff_ms: u64) -> Option<u64> {
    let mut upto = None;
    for s in segments {
        if s.active || s.max_timestamp_ms >= cutoff_ms {
            break;
        }
        match s.last_index {
            Some(last) => upto = Some(last),
            None => break,
        }
    }
    upto
}

#[cfg(test)]
mod retention_tests {
    use super::*;

    fn seg(base: u64, last: u64, ts: u64, active: bool) -> SegmentInfo {
        SegmentInfo {
            base_index: base,
            last_index: Some(last),
            bytes: 1,
            max_timestamp_ms: ts,
            active,
        }
    }

    #[test]
    fn selects_only_an_expired_sealed_prefix() {
        let segs = [
            seg(0, 9, 100, false),
            seg(10, 19, 200, false),
            seg(20, 29, 150, false),
            seg(30, 31, 50, true),
        ];
        assert_eq!(retention_upto(&segs, 50), None);
        assert_eq!(retention_upto(&segs, 101), Some(9));
        assert_eq!(retention_upto(&segs, 201), Some(29));
        // The active segment is never selected, however old.
        assert_eq!(retention_upto(&segs, 10_000), Some(29));
        assert_eq!(retention_upto(&[], 10_000), None);
    }
}
