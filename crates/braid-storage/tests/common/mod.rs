//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use braid_storage::{LogConfig, SegmentLog};

/// A deterministic payload for `index`, of a length that varies with the index.
pub fn payload(index: u64) -> Vec<u8> {
    let len = (index.wrapping_mul(37) % 301) as usize;
    (0..len)
        .map(|i| (index as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

pub fn ts(index: u64) -> u64 {
    1_700_000_000_000 + index * 10
}

pub fn small(segment_bytes_max: u64) -> LogConfig {
    LogConfig { segment_bytes_max }
}

pub fn open(dir: &Path, segment_bytes_max: u64) -> SegmentLog {
    SegmentLog::open(dir, small(segment_bytes_max)).expect("open")
}

/// Appends `payload(i)` with `ts(i)` for every `i` in `range`.
pub fn fill(log: &SegmentLog, range: std::ops::Range<u64>) {
    for i in range {
        log.append(i, ts(i), &payload(i)).expect("append");
    }
}

/// Checks that the log holds exactly `payload(i)`/`ts(i)` for `i` in `range` (empty range: the
/// log is empty), through `read` and `read_range`.
pub fn assert_holds(log: &SegmentLog, range: std::ops::Range<u64>) {
    if range.is_empty() {
        assert_eq!(log.first_index(), None);
        assert_eq!(log.last_index(), None);
        assert!(log.read_range(0, u64::MAX, usize::MAX).unwrap().is_empty());
        return;
    }
    assert_eq!(log.first_index(), Some(range.start));
    assert_eq!(log.last_index(), Some(range.end - 1));
    for i in range.clone() {
        assert_eq!(log.read(i).unwrap(), Some((ts(i), payload(i))), "entry {i}");
    }
    assert_eq!(log.read(range.end).unwrap(), None);
    if range.start > 0 {
        assert_eq!(log.read(range.start - 1).unwrap(), None);
    }
    let all = log.read_range(0, u64::MAX, usize::MAX).unwrap();
    let expected: Vec<_> = range.map(|i| (i, ts(i), payload(i))).collect();
    assert_eq!(all, expected);
}

/// Segment files in `dir`, sorted.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

/// Copies every file of `from` into the (new) directory `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

pub const HEADER_BYTES: u64 = 28;

pub fn frame_len(index: u64) -> u64 {
    HEADER_BYTES + payload(index).len() as u64
}
