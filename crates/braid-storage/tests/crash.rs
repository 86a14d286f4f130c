//! Recovery: torn tails, flipped bytes, garbage, and corruption that must be refused.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use braid_storage::{SegmentLog, StorageError};
use common::*;

const SEG: u64 = 1024;
const N: u64 = 40;

/// A synced log of entries 0..N in several segments; returns (dir, last segment path).
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), SEG);
    fill(&log, 0..N);
    log.sync().unwrap();
    assert!(log.segments().len() >= 4);
    drop(log);
    let last = segment_files(dir.path()).pop().unwrap();
    (dir, last)
}

fn base_of(path: &Path) -> u64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// Frame boundaries (offsets) in the segment starting at `base` and ending at entry N-1.
fn boundaries(base: u64) -> Vec<u64> {
    let mut v = vec![0];
    for i in base..N {
        v.push(v.last().unwrap() + frame_len(i));
    }
    v
}

/// Opens a copy of `src` in `scratch/name` after applying `damage` to the copy's last segment.
fn reopen_damaged(src: &Path, scratch: &Path, name: &str, damage: impl FnOnce(&Path)) -> PathBuf {
    let dir = scratch.join(name);
    copy_dir(src, &dir);
    let last = segment_files(&dir).pop().unwrap();
    damage(&last);
    dir
}

/// After recovery the log holds exactly 0..end, appends continue at `end`, and a reopen agrees.
fn check_recovered(dir: &Path, end: u64) {
    let log = open(dir, SEG);
    assert_holds(&log, 0..end);
    assert_eq!(log.synced_index(), Some(end - 1));
    fill(&log, end..end + 3);
    assert_holds(&log, 0..end + 3);
    log.sync().unwrap();
    drop(log);
    let log = open(dir, SEG);
    assert_holds(&log, 0..end + 3);
}

#[test]
fn torn_tail_at_every_byte_offset() {
    let (src, last) = setup();
    let base = base_of(&last);
    let bounds = boundaries(base);
    let full = *bounds.last().unwrap();
    assert_eq!(fs::metadata(&last).unwrap().len(), full);
    assert!(
        bounds.len() >= 3,
        "the last segment holds at least two frames"
    );
    let scratch = tempfile::tempdir().unwrap();
    for len in 0..=full {
        let dir = reopen_damaged(src.path(), scratch.path(), &format!("len{len}"), |p| {
            OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(len)
                .unwrap();
        });
        let complete = bounds.iter().filter(|&&b| b <= len).count() as u64 - 1;
        let end = base + complete;
        {
            let log = open(&dir, SEG);
            assert_eq!(log.last_index(), Some(end - 1), "cut at {len}");
            let seg_file = dir.join(last.file_name().unwrap());
            if complete == 0 {
                assert!(!seg_file.exists(), "an empty last segment is deleted");
            } else {
                assert_eq!(
                    fs::metadata(&seg_file).unwrap().len(),
                    bounds[complete as usize]
                );
            }
        }
        check_recovered(&dir, end);
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn flipped_byte_in_the_tail_frame_truncates_it() {
    let (src, last) = setup();
    let base = base_of(&last);
    let bounds = boundaries(base);
    let scratch = tempfile::tempdir().unwrap();
    let tail_start = bounds[bounds.len() - 2];
    let full = *bounds.last().unwrap();
    for at in tail_start..full {
        let dir = reopen_damaged(src.path(), scratch.path(), &format!("flip{at}"), |p| {
            let f = OpenOptions::new().read(true).write(true).open(p).unwrap();
            let mut b = [0u8];
            f.read_exact_at(&mut b, at).unwrap();
            f.write_all_at(&[b[0] ^ 0x20], at).unwrap();
        });
        check_recovered(&dir, N - 1);
        fs::remove_dir_all(&dir).unwrap();
    }
    // A flipped payload byte in an earlier frame of the last segment cuts the log there.
    let at = bounds[1] + 30;
    let dir = reopen_damaged(src.path(), scratch.path(), "flip-middle", |p| {
        let f = OpenOptions::new().read(true).write(true).open(p).unwrap();
        f.write_all_at(&[0xAA, 0x55], at).unwrap();
    });
    check_recovered(&dir, base + 1);
}

/// A valid frame for `index`, built independently of the crate.
fn raw_frame(index: u64, ts: u64, payload: &[u8]) -> Vec<u8> {
    let mut covered = Vec::new();
    covered.extend_from_slice(&index.to_le_bytes());
    covered.extend_from_slice(&ts.to_le_bytes());
    covered.extend_from_slice(payload);
    let mut f = Vec::new();
    f.extend_from_slice(b"BRDF");
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&crc32c::crc32c(&covered).to_le_bytes());
    f.extend_from_slice(&covered);
    f
}

#[test]
fn garbage_after_the_last_frame_is_cut() {
    let (src, last) = setup();
    let full = fs::metadata(&last).unwrap().len();
    let scratch = tempfile::tempdir().unwrap();
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect()
    };
    let mut header_only = raw_frame(N, 0, b"payload that is missing");
    header_only.truncate(28);
    let garbages: Vec<(&str, Vec<u8>)> = vec![
        ("zeros", vec![0u8; 4096]),
        ("random-small", random(5)),
        ("random-big", random(3000)),
        ("header-only", header_only),
        ("skipped-index", raw_frame(N + 1, 0, b"x")),
        ("old-index", raw_frame(N - 1, 0, b"x")),
        ("bad-magic", {
            let mut f = raw_frame(N, 0, b"x");
            f[0] = b'X';
            f
        }),
        ("huge-len", {
            let mut f = raw_frame(N, 0, b"x");
            f[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
            f
        }),
    ];
    for (name, garbage) in garbages {
        let dir = reopen_damaged(src.path(), scratch.path(), name, |p| {
            let mut f = OpenOptions::new().append(true).open(p).unwrap();
            f.write_all(&garbage).unwrap();
        });
        {
            let log = open(&dir, SEG);
            assert_eq!(log.last_index(), Some(N - 1), "{name}");
            assert_eq!(
                fs::metadata(dir.join(last.file_name().unwrap()))
                    .unwrap()
                    .len(),
                full,
                "{name}"
            );
        }
        check_recovered(&dir, N);
    }
    // Whereas a valid next frame appended by hand is simply the next entry.
    let dir = reopen_damaged(src.path(), scratch.path(), "valid", |p| {
        let mut f = OpenOptions::new().append(true).open(p).unwrap();
        f.write_all(&raw_frame(N, ts(N), &payload(N))).unwrap();
    });
    check_recovered(&dir, N + 1);
}

#[test]
fn empty_last_segment_file_is_removed() {
    let (src, _) = setup();
    fs::write(src.path().join(format!("{N:020}.seg")), b"").unwrap();
    check_recovered(src.path(), N);
    // Also when it is the only one.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(format!("{:020}.seg", 5)), b"").unwrap();
    let log = open(dir.path(), SEG);
    assert_holds(&log, 0..0);
    assert!(segment_files(dir.path()).is_empty());
    log.append(9, 1, b"x").unwrap();
}

fn assert_corrupt(dir: &Path) {
    match SegmentLog::open(dir, small(SEG)) {
        Err(StorageError::Corrupt { .. }) => {}
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("expected Corrupt, opened"),
    }
}

#[test]
fn corruption_in_a_non_last_segment_is_refused() {
    let (src, _) = setup();
    let files = segment_files(src.path());
    let scratch = tempfile::tempdir().unwrap();
    type Damage = Box<dyn Fn(&Path)>;
    for (k, file) in files.iter().enumerate().take(files.len() - 1) {
        let name = file.file_name().unwrap().to_owned();
        let len = fs::metadata(file).unwrap().len();
        let damages: Vec<(&str, Damage)> = vec![
            ("flip-first", Box::new(|p| flip(p, 40))),
            ("flip-last-byte", Box::new(move |p| flip(p, len - 1))),
            ("flip-magic", Box::new(|p| flip(p, 0))),
            ("short", Box::new(move |p| set_len(p, len - 1))),
            ("empty", Box::new(|p| set_len(p, 0))),
            (
                "lost-frame",
                Box::new(move |p| set_len(p, len - frame_len(0).min(len))),
            ),
            (
                "garbage",
                Box::new(|p| {
                    let mut f = OpenOptions::new().append(true).open(p).unwrap();
                    f.write_all(&[1, 2, 3]).unwrap();
                }),
            ),
        ];
        for (what, damage) in damages {
            let dir = scratch.path().join(format!("{k}-{what}"));
            copy_dir(src.path(), &dir);
            damage(&dir.join(&name));
            assert_corrupt(&dir);
            // Refusing must not have changed anything: a repaired copy opens.
            fs::copy(file, dir.join(&name)).unwrap();
            assert_holds(&open(&dir, SEG), 0..N);
        }
    }
    // A missing segment in the middle leaves a gap.
    let dir = scratch.path().join("gap");
    copy_dir(src.path(), &dir);
    fs::remove_file(dir.join(files[1].file_name().unwrap())).unwrap();
    assert_corrupt(&dir);
}

fn flip(p: &Path, at: u64) {
    let f = OpenOptions::new().read(true).write(true).open(p).unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[!b[0]], at).unwrap();
}

fn set_len(p: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(p)
        .unwrap()
        .set_len(len)
        .unwrap();
}

#[test]
fn reads_verify_the_crc() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), SEG);
    fill(&log, 0..N);
    let files = segment_files(dir.path());
    // Damage entry 0's timestamp behind the log's back (its payload is empty).
    assert_eq!(payload(0).len(), 0);
    flip(&files[0], 20);
    match log.read(0) {
        Err(StorageError::Corrupt { reason, .. }) => assert!(reason.contains("CRC"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        log.read_range(0, 5, usize::MAX),
        Err(StorageError::Corrupt { .. })
    ));
    assert!(log.read(1).unwrap().is_some());
    assert!(log.read_range(1, 5, usize::MAX).unwrap().len() == 4);
}

#[test]
fn purge_file_damage_and_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), SEG);
    fill(&log, 0..N);
    log.purge_upto(3).unwrap();
    drop(log);
    // A leftover temp file from a crashed purge is ignored and removed.
    fs::write(dir.path().join("purged.tmp"), b"partial").unwrap();
    let log = open(dir.path(), SEG);
    assert_holds(&log, 4..N);
    assert!(!dir.path().join("purged.tmp").exists());
    drop(log);

    let good = fs::read(dir.path().join("purged")).unwrap();
    assert_eq!(good.len(), 12);
    let mut bad = good.clone();
    bad[0] ^= 1;
    fs::write(dir.path().join("purged"), &bad).unwrap();
    assert_corrupt(dir.path());
    fs::write(dir.path().join("purged"), &good[..11]).unwrap();
    assert_corrupt(dir.path());
    fs::write(dir.path().join("purged"), &good).unwrap();
    assert_holds(&open(dir.path(), SEG), 4..N);
}
