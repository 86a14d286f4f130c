//! Concurrent appends, group-committed syncs and lock-free reads.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use braid_storage::SegmentLog;
use common::*;

const WRITERS: u64 = 4;
const PER_WRITER: u64 = 250;

#[test]
fn group_commit_with_concurrent_readers() {
    let dir = tempfile::tempdir().unwrap();
    // Small enough segments that rolls happen during the test.
    let log = Arc::new(open(dir.path(), 16 * 1024));
    let next = Arc::new(Mutex::new(0u64));
    let syncs = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (log, next, syncs) = (log.clone(), next.clone(), syncs.clone());
            thread::spawn(move || {
                for _ in 0..PER_WRITER {
                    let index = {
                        let mut next = next.lock().unwrap();
                        let index = *next;
                        log.append(index, ts(index), &payload(index)).unwrap();
                        *next += 1;
                        index
                    };
                    log.sync().unwrap();
                    syncs.fetch_add(1, Ordering::Relaxed);
                    let synced = log.synced_index().unwrap();
                    assert!(
                        synced >= index,
                        "sync returned before {index} was durable ({synced})"
                    );
                }
            })
        })
        .collect();

    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let (log, done) = (log.clone(), done.clone());
            thread::spawn(move || {
                let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ r;
                let mut reads = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let Some(last) = log.last_index() else {
                        thread::yield_now();
                        continue;
                    };
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let i = (seed >> 33) % (last + 1);
                    assert_eq!(log.read(i).unwrap(), Some((ts(i), payload(i))));
                    let got = log.read_range(i, i + 20, 4096).unwrap();
                    assert!(!got.is_empty());
                    for (k, (index, t, p)) in got.into_iter().enumerate() {
                        assert_eq!(index, i + k as u64);
                        assert_eq!((t, p), (ts(index), payload(index)));
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();

    // A caller with nothing new to sync.
    let idle = {
        let (log, done, syncs) = (log.clone(), done.clone(), syncs.clone());
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                log.sync().unwrap();
                syncs.fetch_add(1, Ordering::Relaxed);
                thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };

    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    idle.join().unwrap();

    let total = WRITERS * PER_WRITER;
    let syncs = syncs.load(Ordering::Relaxed);
    let fsyncs = log.fsync_count();
    eprintln!(
        "{syncs} sync calls, {fsyncs} fsyncs, {reads} reader iterations, {} segments",
        log.segments().len()
    );
    assert!(log.segments().len() > 2);
    assert!(
        fsyncs < syncs,
        "group commit: {fsyncs} fsyncs for {syncs} sync calls"
    );
    // Appends alone, each followed by a sync, would need one fsync each.
    assert!(fsyncs < total + log.segments().len() as u64 * 2);
    assert_eq!(log.synced_index(), Some(total - 1));
    assert_holds(&log, 0..total);
    drop(log);
    assert_holds(&open(dir.path(), 16 * 1024), 0..total);
}

#[test]
fn syncs_coalesce_when_many_wait() {
    // Many threads append then sync at the same moment: far fewer fsyncs than syncs.
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(SegmentLog::open(dir.path(), Default::default()).unwrap());
    let next = Arc::new(Mutex::new(0u64));
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let rounds: u64 = 20;
    let before = log.fsync_count();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (log, next, barrier) = (log.clone(), next.clone(), barrier.clone());
            thread::spawn(move || {
                for _ in 0..rounds {
                    barrier.wait();
                    {
                        let mut next = next.lock().unwrap();
                        log.append(*next, ts(*next), &payload(*next)).unwrap();
                        *next += 1;
                    }
                    log.sync().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let fsyncs = log.fsync_count() - before;
    eprintln!("{} sync calls, {fsyncs} fsyncs", 8 * rounds);
    assert!(fsyncs < 8 * rounds, "{fsyncs} fsyncs");
    assert_holds(&log, 0..8 * rounds);
}

#[test]
fn truncate_and_purge_race_with_readers() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), 4096));
    fill(&log, 0..200);
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (log, done) = (log.clone(), done.clone());
            thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let (Some(first), Some(last)) = (log.first_index(), log.last_index()) else {
                        continue;
                    };
                    for i in [first, (first + last) / 2, last] {
                        // Entries come and go, but a read never fails and never returns
                        // anything but the entry's contents.
                        if let Some(got) = log.read(i).unwrap() {
                            assert_eq!(got, (ts(i), payload(i)));
                        }
                    }
                    for (i, t, p) in log.read_range(first, last + 1, 2000).unwrap() {
                        assert_eq!((t, p), (ts(i), payload(i)));
                    }
                }
            })
        })
        .collect();
    let mut end = 200;
    for round in 0..30u64 {
        let cut = end - 20 - round % 7;
        log.truncate_from(cut).unwrap();
        fill(&log, cut..cut + 25);
        end = cut + 25;
        if round % 5 == 4 {
            log.purge_upto(log.first_index().unwrap() + 10).unwrap();
        }
        log.sync().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let first = log.first_index().unwrap();
    assert_holds(&log, first..end);
    drop(log);
    assert_holds(&open(dir.path(), 4096), first..end);
}
