//! Basic writes, reads, rolls and reopening.

mod common;

use std::fs;

use braid_storage::{LogConfig, SegmentLog, StorageError};
use braid_types::limits::{ENTRY_BYTES_MAX, SEGMENT_BYTES_MAX};
use common::*;

#[test]
fn write_read_roll_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), 1024);
        assert_holds(&log, 0..0);
        fill(&log, 0..300);
        assert_holds(&log, 0..300);
        let segs = log.segments();
        assert!(segs.len() > 10, "{} segments", segs.len());
        // Consecutive, sized within the limit, only the last active.
        for (k, s) in segs.iter().enumerate() {
            assert!(s.bytes <= 1024);
            assert_eq!(s.active, k + 1 == segs.len());
            let last = s.last_index.unwrap();
            assert!(last >= s.base_index);
            if let Some(next) = segs.get(k + 1) {
                assert_eq!(next.base_index, last + 1);
                // Rolled only because the next frame did not fit.
                assert!(s.bytes + frame_len(last + 1) > 1024);
            }
            assert_eq!(s.max_timestamp_ms, ts(last));
        }
        assert_eq!(segs[0].base_index, 0);
        assert_eq!(segs.last().unwrap().last_index, Some(299));
        // File names and sizes match.
        let files = segment_files(dir.path());
        assert_eq!(files.len(), segs.len());
        let mut total = 0;
        for (f, s) in files.iter().zip(&segs) {
            assert_eq!(
                f.file_name().unwrap().to_str().unwrap(),
                format!("{:020}.seg", s.base_index)
            );
            assert_eq!(fs::metadata(f).unwrap().len(), s.bytes);
            total += s.bytes;
        }
        assert_eq!(log.disk_bytes(), total);
        assert_eq!(total, (0..300).map(frame_len).sum::<u64>());
        log.sync().unwrap();
        assert_eq!(log.synced_index(), Some(299));
    }
    let log = open(dir.path(), 1024);
    assert_holds(&log, 0..300);
    assert_eq!(log.synced_index(), Some(299));
    fill(&log, 300..400);
    assert_holds(&log, 0..400);
    drop(log);
    // A different segment size on reopen is fine.
    let log = open(dir.path(), 100_000);
    assert_holds(&log, 0..400);
    fill(&log, 400..450);
    assert_holds(&log, 0..450);
}

#[test]
fn first_index_can_be_anything_and_appends_must_be_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 4096);
    log.append(57, ts(57), &payload(57)).unwrap();
    assert_eq!(log.first_index(), Some(57));
    assert_eq!(
        segment_files(dir.path())[0].file_name().unwrap(),
        "00000000000000000057.seg"
    );
    for bad in [0, 57, 59, u64::MAX - 1] {
        match log.append(bad, 0, b"x") {
            Err(StorageError::NotContiguous { expected: 58, got }) => assert_eq!(got, bad),
            other => panic!("append({bad}): {other:?}"),
        }
    }
    fill(&log, 58..70);
    assert_holds(&log, 57..70);

    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 4096);
    log.append(0, 0, b"").unwrap();
    assert_eq!(log.read(0).unwrap(), Some((0, Vec::new())));
}

#[test]
fn input_errors_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 4096);
    let big = vec![0u8; ENTRY_BYTES_MAX + 1];
    assert!(matches!(
        log.append(0, 0, &big),
        Err(StorageError::TooLarge { len, max }) if len == ENTRY_BYTES_MAX + 1 && max == ENTRY_BYTES_MAX
    ));
    assert!(matches!(
        log.append(u64::MAX, 0, b"x"),
        Err(StorageError::IndexOutOfRange { .. })
    ));
    assert_eq!(log.last_index(), None);
    assert!(segment_files(dir.path()).is_empty());
    // The largest index that can be stored.
    log.append(u64::MAX - 1, u64::MAX, b"last").unwrap();
    assert_eq!(
        log.read(u64::MAX - 1).unwrap(),
        Some((u64::MAX, b"last".to_vec()))
    );
    assert!(log.append(u64::MAX, 0, b"x").is_err());
    assert_eq!(log.read(u64::MAX).unwrap(), None);
    assert_eq!(log.read_range(u64::MAX - 1, u64::MAX, 0).unwrap().len(), 1);
    drop(log);
    let log = open(dir.path(), 4096);
    assert_eq!(log.last_index(), Some(u64::MAX - 1));
}

#[test]
fn largest_entry_gets_its_own_oversized_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 1024);
    let big: Vec<u8> = (0..ENTRY_BYTES_MAX).map(|i| (i % 251) as u8).collect();
    log.append(1, 1, b"small").unwrap();
    log.append(2, 2, &big).unwrap();
    log.append(3, 3, b"after").unwrap();
    let segs = log.segments();
    assert_eq!(segs.len(), 3);
    assert_eq!(segs[1].bytes, (ENTRY_BYTES_MAX + 28) as u64);
    log.sync().unwrap();
    drop(log);
    let log = open(dir.path(), 1024);
    assert_eq!(log.read(2).unwrap(), Some((2, big)));
    assert_eq!(log.read(3).unwrap(), Some((3, b"after".to_vec())));
}

#[test]
fn read_range_limits() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 700);
    fill(&log, 10..60);
    let sizes: Vec<usize> = (10..60).map(|i| payload(i).len()).collect();
    let got = |from, to, max| -> Vec<u64> {
        log.read_range(from, to, max)
            .unwrap()
            .into_iter()
            .map(|(i, t, p)| {
                assert_eq!(t, ts(i));
                assert_eq!(p, payload(i));
                i
            })
            .collect()
    };
    assert_eq!(got(0, 100, usize::MAX), (10..60).collect::<Vec<_>>());
    assert_eq!(got(20, 30, usize::MAX), (20..30).collect::<Vec<_>>());
    assert_eq!(got(55, 100, usize::MAX), (55..60).collect::<Vec<_>>());
    assert!(got(60, 100, usize::MAX).is_empty());
    assert!(got(0, 10, usize::MAX).is_empty());
    assert!(got(30, 30, usize::MAX).is_empty());
    assert!(got(31, 30, usize::MAX).is_empty());
    // At least one entry, whatever the limit.
    assert_eq!(got(10, 60, 0), vec![10]);
    assert_eq!(got(10, 60, 1), vec![10]);
    // Stops once the limit is reached: exactly three entries' worth gives three entries...
    let three: usize = sizes[..3].iter().sum();
    assert_eq!(got(10, 60, three), vec![10, 11, 12]);
    // ...and one byte more takes the entry that crosses the limit.
    assert_eq!(got(10, 60, three + 1), vec![10, 11, 12, 13]);
    // Across many segments.
    let total: usize = sizes.iter().sum();
    assert_eq!(got(10, 60, total - 1).len(), 50);
}

#[test]
fn synced_index_follows_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 1024);
    assert_eq!(log.synced_index(), None);
    log.sync().unwrap();
    assert_eq!(log.synced_index(), None);
    fill(&log, 5..8);
    assert_eq!(log.segments().len(), 1);
    assert_eq!(log.synced_index(), None);
    log.sync().unwrap();
    assert_eq!(log.synced_index(), Some(7));
    let n = log.fsync_count();
    log.sync().unwrap();
    assert_eq!(log.fsync_count(), n, "nothing new to sync, no fsync");
    fill(&log, 8..100);
    // Rolls made the sealed segments durable.
    let sealed = log.synced_index().unwrap();
    assert!(sealed > 7 && sealed < 99, "{sealed}");
    log.sync().unwrap();
    assert_eq!(log.synced_index(), Some(99));
}

#[test]
fn ignores_unrelated_files_and_default_config() {
    assert_eq!(LogConfig::default().segment_bytes_max, SEGMENT_BYTES_MAX);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    fs::write(dir.path().join("12.seg"), b"not a segment name").unwrap();
    let log = SegmentLog::open(&dir.path().join("nested/dir"), LogConfig::default()).unwrap();
    fill(&log, 0..10);
    drop(log);
    let log = SegmentLog::open(&dir.path().join("nested/dir"), LogConfig::default()).unwrap();
    assert_holds(&log, 0..10);
    assert_eq!(log.segments().len(), 1);
    let log = SegmentLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_holds(&log, 0..0);
    assert!(format!("{log:?}").contains("SegmentLog"));
}
