//! Suffix truncation and prefix purging, and their persistence.

mod common;

use std::fs;

use braid_storage::StorageError;
use common::*;

const SEG: u64 = 1024;

fn reopened(dir: &std::path::Path) -> braid_storage::SegmentLog {
    open(dir, SEG)
}

#[test]
fn truncate_from_inside_and_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), SEG);
    fill(&log, 0..100);
    let segs = log.segments();
    assert!(segs.len() > 5);

    // Beyond the end: nothing happens.
    log.truncate_from(100).unwrap();
    log.truncate_from(u64::MAX).unwrap();
    assert_holds(&log, 0..100);

    // Inside the active segment.
    let active = segs.last().unwrap();
    assert!(active.last_index.unwrap() > active.base_index);
    let cut = active.base_index + 1;
    log.truncate_from(cut).unwrap();
    assert_holds(&log, 0..cut);
    assert_eq!(log.synced_index(), Some(cut - 1), "truncation is durable");
    assert_eq!(log.segments().len(), segs.len());
    assert_eq!(log.segments().last().unwrap().max_timestamp_ms, ts(cut - 1));
    assert_eq!(
        fs::metadata(segment_files(dir.path()).pop().unwrap())
            .unwrap()
            .len(),
        log.segments().last().unwrap().bytes
    );

    // Exactly at a segment boundary: the segment file goes away.
    let b = segs[3].base_index;
    log.truncate_from(b).unwrap();
    assert_holds(&log, 0..b);
    assert_eq!(log.segments().len(), 3);
    assert_eq!(segment_files(dir.path()).len(), 3);

    // In the middle of an earlier segment, deleting the later ones.
    let mid = segs[1].base_index + 1;
    assert!(mid <= segs[1].last_index.unwrap());
    log.truncate_from(mid).unwrap();
    assert_holds(&log, 0..mid);
    assert_eq!(log.segments().len(), 2);
    assert_eq!(segment_files(dir.path()).len(), 2);
    drop(log);

    let log = reopened(dir.path());
    assert_holds(&log, 0..mid);
    // Appends continue at the cut, with fresh contents, rolling into reused file names.
    fill(&log, mid..120);
    assert_holds(&log, 0..120);
    drop(log);
    let log = reopened(dir.path());
    assert_holds(&log, 0..120);

    // At or below the first index: the log empties and any index may come next.
    log.truncate_from(0).unwrap();
    assert_holds(&log, 0..0);
    assert!(segment_files(dir.path()).is_empty());
    assert_eq!(log.synced_index(), None);
    fill(&log, 500..510);
    assert_holds(&log, 500..510);
    drop(log);
    assert_holds(&reopened(dir.path()), 500..510);
}

#[test]
fn truncated_contents_do_not_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), SEG);
    fill(&log, 0..50);
    log.truncate_from(20).unwrap();
    // Different contents at the same indexes.
    for i in 20..30 {
        log.append(i, 7, format!("new {i}").as_bytes()).unwrap();
    }
    log.sync().unwrap();
    drop(log);
    let log = reopened(dir.path());
    assert_eq!(log.last_index(), Some(29));
    for i in 20..30 {
        assert_eq!(
            log.read(i).unwrap(),
            Some((7, format!("new {i}").into_bytes()))
        );
    }
    assert_eq!(log.read(19).unwrap(), Some((ts(19), payload(19))));
}

#[test]
fn purge_upto_inside_and_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), SEG);
    fill(&log, 10..110);
    let segs = log.segments();
    assert!(segs.len() > 5);
    assert_eq!(log.purged_index(), None);

    // Inside the first segment: nothing deleted, first index moves.
    let p = segs[0].base_index + 1;
    log.purge_upto(p).unwrap();
    assert_eq!(log.purged_index(), Some(p));
    assert_holds(&log, p + 1..110);
    assert_eq!(segment_files(dir.path()).len(), segs.len());

    // Lower purge points do nothing.
    log.purge_upto(5).unwrap();
    log.purge_upto(p).unwrap();
    assert_eq!(log.purged_index(), Some(p));

    // Exactly at the end of segment 2: segments 0..=2 are deleted.
    let p = segs[2].last_index.unwrap();
    log.purge_upto(p).unwrap();
    assert_holds(&log, p + 1..110);
    assert_eq!(log.segments().len(), segs.len() - 3);
    assert_eq!(log.segments()[0].base_index, segs[3].base_index);
    assert_eq!(segment_files(dir.path()).len(), segs.len() - 3);
    let disk: u64 = segs[3..].iter().map(|s| s.bytes).sum();
    assert_eq!(log.disk_bytes(), disk);

    // Inside the active segment: every older segment goes, the active one stays.
    let active = segs.last().unwrap();
    let p = active.base_index + 1;
    assert!(p < 109);
    log.purge_upto(p).unwrap();
    assert_holds(&log, p + 1..110);
    assert_eq!(log.segments().len(), 1);
    drop(log);

    let log = reopened(dir.path());
    assert_eq!(log.purged_index(), Some(p));
    assert_holds(&log, p + 1..110);
    fill(&log, 110..150);
    assert_holds(&log, p + 1..150);
    drop(log);
    assert_holds(&reopened(dir.path()), p + 1..150);
}

#[test]
fn purge_everything_then_start_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), SEG);
    fill(&log, 0..60);
    log.sync().unwrap();
    log.purge_upto(59).unwrap();
    assert_holds(&log, 0..0);
    assert!(segment_files(dir.path()).is_empty());
    assert_eq!(log.disk_bytes(), 0);
    assert_eq!(log.synced_index(), None);
    assert_eq!(log.purged_index(), Some(59));
    // Entries at or below the purge point cannot come back.
    assert!(matches!(
        log.append(59, 0, b"x"),
        Err(StorageError::BelowPurged {
            index: 59,
            purged: 59
        })
    ));
    assert!(matches!(
        log.append(3, 0, b"x"),
        Err(StorageError::BelowPurged { .. })
    ));
    fill(&log, 60..70);
    assert_holds(&log, 60..70);
    drop(log);
    let log = reopened(dir.path());
    assert_holds(&log, 60..70);

    // Purging beyond the end (a snapshot ahead of the log): the next entry may skip ahead.
    log.purge_upto(1000).unwrap();
    assert_holds(&log, 0..0);
    assert!(log.append(1000, 0, b"x").is_err());
    fill(&log, 1001..1010);
    assert_holds(&log, 1001..1010);
    drop(log);
    let log = reopened(dir.path());
    assert_eq!(log.purged_index(), Some(1000));
    assert_holds(&log, 1001..1010);

    // Purging an empty log moves the purge point too.
    log.truncate_from(0).unwrap();
    log.purge_upto(2000).unwrap();
    assert_holds(&log, 0..0);
    drop(log);
    let log = reopened(dir.path());
    assert_eq!(log.purged_index(), Some(2000));
    assert!(log.append(1500, 0, b"x").is_err());
    log.append(2500, 0, b"x").unwrap();
}

#[test]
fn truncate_after_purge() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), SEG);
    fill(&log, 0..40);
    log.purge_upto(2).unwrap();
    // Entries 0..=2 are still in the first file but are gone logically.
    assert_eq!(log.segments()[0].base_index, 0);
    log.truncate_from(10).unwrap();
    assert_holds(&log, 3..10);
    log.truncate_from(3).unwrap();
    assert_holds(&log, 0..0);
    assert!(segment_files(dir.path()).is_empty());
    assert!(log.append(2, 0, b"x").is_err());
    fill(&log, 3..8);
    drop(log);
    let log = reopened(dir.path());
    assert_holds(&log, 3..8);
}

#[test]
fn leftover_purged_segments_are_deleted_on_open() {
    // A crash after writing the purge point but before deleting segment files.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), SEG);
    fill(&log, 0..80);
    let segs = log.segments();
    let keep = segment_files(dir.path());
    let saved: Vec<Vec<u8>> = keep.iter().map(|f| fs::read(f).unwrap()).collect();
    let p = segs[3].base_index + 1;
    log.purge_upto(p).unwrap();
    drop(log);
    for (f, bytes) in keep.iter().zip(&saved) {
        fs::write(f, bytes).unwrap();
    }
    let log = reopened(dir.path());
    assert_holds(&log, p + 1..80);
    assert_eq!(segment_files(dir.path()).len(), segs.len() - 3);
    drop(log);

    // And after the log was emptied by a purge and restarted above it.
    let log = reopened(dir.path());
    log.purge_upto(500).unwrap();
    fill(&log, 600..610);
    drop(log);
    for (f, bytes) in keep.iter().zip(&saved) {
        fs::write(f, bytes).unwrap();
    }
    let log = reopened(dir.path());
    assert_holds(&log, 600..610);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), log.segments().len());
    assert!(files[0].ends_with("00000000000000000600.seg"));
}

#[test]
fn operations_on_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), SEG);
    log.truncate_from(0).unwrap();
    log.truncate_from(5).unwrap();
    log.sync().unwrap();
    assert_eq!(log.read(0).unwrap(), None);
    assert!(log.segments().is_empty());
    assert_eq!(log.disk_bytes(), 0);
    log.purge_upto(0).unwrap();
    assert_eq!(log.purged_index(), Some(0));
    assert!(log.append(0, 0, b"").is_err());
    log.append(1, 0, b"").unwrap();
    assert_eq!(log.first_index(), Some(1));
}
