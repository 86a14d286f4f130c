//! Full disk: appends that really fail in the kernel, then recovery.
//!
//! No root needed: each test re-runs this test binary as a child process (the env var
//! [`CHILD_ENV`] names the test it should play the child of). The child ignores SIGXFSZ and
//! lowers its own `RLIMIT_FSIZE`, so a `write` reaching the limit writes what fits and then fails
//! with `EFBIG` (what a full disk's `ENOSPC` looks like to the log), opens a [`SegmentLog`] in
//! the directory the parent gave it and appends (syncing every few entries) until an append or a
//! sync fails. It does not stop there: it syncs again, appends one small entry, and reopens the
//! log while still limited. Every outcome goes to stdout as a `DISKFULL ...` line. The parent,
//! without the limit, then checks what is on disk against that report: no partial frame left
//! behind, the log opens, every appended entry (so every synced one) is there byte for byte,
//! nothing of a failed append is visible, and appends and syncs work again.
//!
//! `RLIMIT_FSIZE` cannot make `fdatasync` fail, so the path of a failed fsync (the log turns
//! `StorageError::Failed` until it is reopened) is not reached here.

mod common;

use std::path::Path;
use std::process::Command;

use braid_storage::{LogConfig, SegmentLog, StorageError};
use common::{segment_files, ts, HEADER_BYTES};

/// Set in the child: the name of the test it runs.
const CHILD_ENV: &str = "BRAID_DISK_FULL_CHILD";
/// Set in the child: the log directory.
const DIR_ENV: &str = "BRAID_DISK_FULL_DIR";
/// Prefix of the child's report lines.
const TAG: &str = "DISKFULL";
/// The child gives up (and the parent fails) if no write failed after this many appends.
const APPENDS_MAX: u64 = 10_000;

struct Scenario {
    /// The test function's name (the child runs it with `--exact`).
    name: &'static str,
    segment_bytes_max: u64,
    /// `RLIMIT_FSIZE` of the child.
    limit_bytes: u64,
    /// Lower the limit only once this many entries are appended, and then to the active
    /// segment's size at the first point where the next frame goes to that segment (so the write
    /// starts at the limit and writes nothing). `None`: `limit_bytes` from the start.
    limit_after: Option<u64>,
    /// Sync after every this many appends.
    sync_every: u64,
    /// Entry `index` gets payload length `len` instead of the usual one.
    big: Option<(u64, usize)>,
}

impl Scenario {
    fn len_of(&self, index: u64) -> usize {
        match self.big {
            Some((i, len)) if i == index => len,
            _ => 500 + (index.wrapping_mul(2_654_435_761) % 4000) as usize,
        }
    }
}

/// The payload of entry `index` with `len` bytes (the length is part of the pattern, so a
/// retry with another length is told apart).
fn payload(index: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (index.wrapping_mul(131) as usize ^ len).wrapping_add(i.wrapping_mul(7)) as u8)
        .collect()
}

/// Big segments: the write that reaches the limit is cut in the middle of a segment.
#[test]
fn efbig_mid_segment_keeps_synced_prefix() {
    run(&Scenario {
        name: "efbig_mid_segment_keeps_synced_prefix",
        segment_bytes_max: 64 * 1024 * 1024,
        limit_bytes: 256 * 1024,
        limit_after: None,
        sync_every: 3,
        big: None,
    });
}

/// Small segments roll below the limit; then an entry larger than the limit needs a fresh
/// segment, and the write of its first frame fails part-way.
#[test]
fn efbig_in_fresh_segment_after_rolls() {
    run(&Scenario {
        name: "efbig_in_fresh_segment_after_rolls",
        segment_bytes_max: 48 * 1024,
        limit_bytes: 64 * 1024,
        limit_after: None,
        sync_every: 4,
        big: Some((60, 100 * 1024)),
    });
}

/// A large entry (written as header, then payload, without a copy) whose header fits under the
/// limit and whose payload does not: the write fails after the header, mid-segment.
#[test]
fn efbig_between_header_and_payload() {
    run(&Scenario {
        name: "efbig_between_header_and_payload",
        segment_bytes_max: 64 * 1024 * 1024,
        limit_bytes: 256 * 1024,
        limit_after: None,
        sync_every: 3,
        big: Some((20, 400 * 1024)),
    });
}

/// After several rolls the limit drops to the active segment's size: the next write starts at
/// the limit and fails without writing a byte.
#[test]
fn efbig_when_limit_drops_below_active_segment() {
    run(&Scenario {
        name: "efbig_when_limit_drops_below_active_segment",
        segment_bytes_max: 32 * 1024,
        limit_bytes: 0, // chosen by the child
        limit_after: Some(50),
        sync_every: 2,
        big: None,
    });
}

fn run(s: &Scenario) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(s.name) {
        let dir = std::env::var(DIR_ENV).expect("the parent sets the log directory");
        child(s, Path::new(&dir));
    } else {
        parent(s);
    }
}

// ---------------------------------------------------------------------------------------------
// Child

/// Ignores SIGXFSZ (so `write` fails with EFBIG instead of killing the process) and sets the soft
/// `RLIMIT_FSIZE` of this process to `bytes`.
fn limit_file_size(bytes: u64) {
    // SAFETY: plain libc calls with valid arguments; `lim` outlives both calls.
    unsafe {
        assert_ne!(
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN),
            libc::SIG_ERR,
            "ignoring SIGXFSZ"
        );
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = (bytes as libc::rlim_t).min(lim.rlim_max);
        assert_eq!(
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim),
            0,
            "setrlimit(RLIMIT_FSIZE, {bytes})"
        );
    }
}

fn report(line: std::fmt::Arguments<'_>) {
    println!("{TAG} {line}");
}

/// `io <errno> <message>` for an OS error, `other <message>` otherwise (one line).
fn describe(e: &StorageError) -> String {
    let errno = match e {
        StorageError::Io { source, .. } => source.raw_os_error(),
        _ => None,
    };
    let msg = e.to_string().replace('\n', " ");
    match errno {
        Some(n) => format!("io {n} {msg}"),
        None => format!("other {msg}"),
    }
}

fn opt(i: Option<u64>) -> String {
    i.map_or("none".to_string(), |i| i.to_string())
}

fn child_append(log: &SegmentLog, index: u64, len: usize) -> bool {
    match log.append(index, ts(index), &payload(index, len)) {
        Ok(()) => {
            report(format_args!("append {index} {len} ok"));
            true
        }
        Err(e) => {
            report(format_args!(
                "append {index} {len} err {} segments={}",
                describe(&e),
                log.segments().len()
            ));
            false
        }
    }
}

fn child_sync(log: &SegmentLog) -> bool {
    match log.sync() {
        Ok(()) => {
            report(format_args!("sync ok {}", opt(log.synced_index())));
            true
        }
        Err(e) => {
            report(format_args!("sync err {}", describe(&e)));
            false
        }
    }
}

fn child(s: &Scenario, dir: &Path) {
    let config = LogConfig {
        segment_bytes_max: s.segment_bytes_max,
    };
    if s.limit_after.is_none() {
        limit_file_size(s.limit_bytes);
        report(format_args!("limit {}", s.limit_bytes));
    }
    let log = SegmentLog::open(dir, config).expect("open the empty log");
    let mut limited = s.limit_after.is_none();
    let mut index = 0u64;
    let mut failed = false;
    while index < APPENDS_MAX {
        let len = s.len_of(index);
        if !limited && index >= s.limit_after.expect("set when not limited") {
            let active = log.segments().last().map_or(0, |seg| seg.bytes);
            let frame = HEADER_BYTES + len as u64;
            if active > 0 && active + frame <= s.segment_bytes_max {
                limit_file_size(active);
                limited = true;
                report(format_args!("limit {active}"));
            }
        }
        if !child_append(&log, index, len) {
            failed = true;
            break;
        }
        index += 1;
        if index.is_multiple_of(s.sync_every) && !child_sync(&log) {
            failed = true;
            break;
        }
    }
    if !failed {
        report(format_args!("noerror"));
        return;
    }
    // The disk is still full. Whatever was appended must become durable, a small entry may still
    // fit, and the log must reopen.
    child_sync(&log);
    let next = log.last_index().map_or(0, |l| l + 1);
    if child_append(&log, next, 10) {
        child_sync(&log);
    }
    drop(log);
    match SegmentLog::open(dir, config) {
        Ok(log) => report(format_args!("reopen ok {}", opt(log.last_index()))),
        Err(e) => report(format_args!("reopen err {}", describe(&e))),
    }
    report(format_args!("done"));
}

// ---------------------------------------------------------------------------------------------
// Parent

/// What the child's report says happened.
#[derive(Debug, Default)]
struct Outcome {
    /// Successful appends in order: (index, payload length).
    appended: Vec<(u64, usize)>,
    /// Failed appends: (index, payload length, description, segments at the time).
    append_errors: Vec<(u64, usize, String)>,
    sync_errors: Vec<String>,
    /// Largest index reported synced by a successful `sync`.
    last_synced: Option<u64>,
    /// The first failure (append or sync) and how many successful appends preceded it.
    first_error: Option<(String, usize)>,
    reopened_last: Option<Option<u64>>,
    reopen_error: Option<String>,
    done: bool,
    noerror: bool,
}

fn parse(stdout: &str) -> Outcome {
    let mut out = Outcome::default();
    let prefix = format!("{TAG} ");
    // libtest's "test NAME ... " may start the line of the first report.
    for line in stdout
        .lines()
        .filter_map(|l| l.split_once(&prefix).map(|(_, r)| r))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["append", i, len, "ok"] => out
                .appended
                .push((i.parse().unwrap(), len.parse().unwrap())),
            ["append", i, len, "err", rest @ ..] => {
                let what = rest.join(" ");
                if out.first_error.is_none() {
                    out.first_error = Some((format!("append: {what}"), out.appended.len()));
                }
                out.append_errors
                    .push((i.parse().unwrap(), len.parse().unwrap(), what));
            }
            ["sync", "ok", i] => {
                let synced = (*i != "none").then(|| i.parse::<u64>().unwrap());
                out.last_synced = out.last_synced.max(synced);
            }
            ["sync", "err", rest @ ..] => {
                let what = rest.join(" ");
                if out.first_error.is_none() {
                    out.first_error = Some((format!("sync: {what}"), out.appended.len()));
                }
                out.sync_errors.push(what);
            }
            ["reopen", "ok", last] => {
                out.reopened_last = Some((*last != "none").then(|| last.parse().unwrap()))
            }
            ["reopen", "err", rest @ ..] => out.reopen_error = Some(rest.join(" ")),
            ["limit", _] => {}
            ["done"] => out.done = true,
            ["noerror"] => out.noerror = true,
            _ => panic!("unexpected report line {line:?}"),
        }
    }
    out
}

/// Checks that `log` holds exactly the entries of `expected` (index → payload length, from 0),
/// through `read` and `read_range`.
fn assert_holds(log: &SegmentLog, expected: &[(u64, usize)]) {
    for (k, &(i, _)) in expected.iter().enumerate() {
        assert_eq!(i, k as u64, "the model is consecutive from 0");
    }
    let last = expected.last().map(|&(i, _)| i);
    assert_eq!(log.first_index(), last.map(|_| 0));
    assert_eq!(log.last_index(), last);
    for &(i, len) in expected {
        let got = log.read(i).unwrap();
        assert!(
            got == Some((ts(i), payload(i, len))),
            "entry {i} ({len} bytes) differs: {:?}",
            got.map(|(t, p)| (t, p.len()))
        );
    }
    let next = last.map_or(0, |l| l + 1);
    assert_eq!(log.read(next).unwrap(), None, "nothing past the last entry");
    let all = log.read_range(0, u64::MAX, usize::MAX).unwrap();
    assert_eq!(all.len(), expected.len());
    for ((i, t, p), &(ei, elen)) in all.iter().zip(expected) {
        assert_eq!((*i, *t), (ei, ts(ei)));
        assert!(*p == payload(ei, elen), "read_range entry {ei} differs");
    }
}

fn parent(s: &Scenario) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(&exe)
        .args(["--exact", s.name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, s.name)
        .env(DIR_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!("child stdout:\n{stdout}\nchild stderr:\n{stderr}");
    assert!(
        output.status.success(),
        "the child failed (a panic on a write error?): {}\n{context}",
        output.status
    );
    let out = parse(&stdout);
    assert!(
        out.done,
        "the child did not finish (no write failed: {})\n{context}",
        out.noerror
    );

    // The first failure is the append that reached the limit: EFBIG, not a poisoned log.
    let (first, appended_before) = out.first_error.clone().expect("a write failed");
    assert!(
        first.starts_with(&format!("append: io {} ", libc::EFBIG)),
        "first failure: {first}\n{context}"
    );
    assert!(
        appended_before > 0,
        "something was appended before the disk filled up"
    );
    assert!(
        out.sync_errors.is_empty(),
        "syncs after a failed append work: {:?}\n{context}",
        out.sync_errors
    );
    for (i, len, what) in &out.append_errors {
        assert!(
            what.starts_with(&format!("io {} ", libc::EFBIG)),
            "append {i} ({len} bytes) failed with EFBIG, not {what}\n{context}"
        );
    }
    if let Some((i, len)) = s.big {
        let (ei, elen, what) = &out.append_errors[0];
        assert_eq!((*ei, *elen), (i, len), "the big entry failed\n{context}");
        let segments: usize = what
            .rsplit_once("segments=")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap();
        // Segments smaller than the limit have rolled by then.
        if s.segment_bytes_max < s.limit_bytes {
            assert!(
                segments >= 2,
                "segments rolled before the failure\n{context}"
            );
        }
    }
    if let Some(after) = s.limit_after {
        assert!(
            appended_before as u64 >= after,
            "the limit was lowered only after the first appends\n{context}"
        );
    }

    // What the child acknowledged: consecutive from 0, ending in the last successful append.
    let expected = out.appended.clone();
    let last = expected.last().map(|&(i, _)| i);
    let synced = out.last_synced.expect("the child synced something");
    assert!(
        Some(synced) <= last,
        "synced index {synced} is an appended one"
    );
    assert_eq!(
        out.reopen_error, None,
        "the log reopens while the disk is full\n{context}"
    );
    assert_eq!(
        out.reopened_last,
        Some(last),
        "reopened under the limit\n{context}"
    );

    // No partial frame of a failed append is left in any file: the files hold exactly the frames
    // of the successful appends.
    let on_disk: u64 = segment_files(dir.path())
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let frames: u64 = expected
        .iter()
        .map(|&(_, len)| HEADER_BYTES + len as u64)
        .sum();
    assert_eq!(
        on_disk, frames,
        "segment bytes on disk vs appended frames\n{context}"
    );

    // Reopen without the limit: every synced entry, indeed every appended one, byte for byte,
    // and nothing of a failed append.
    let config = LogConfig {
        segment_bytes_max: s.segment_bytes_max,
    };
    let log = SegmentLog::open(dir.path(), config).expect("reopen after the full disk");
    assert!(expected.iter().any(|&(i, _)| i == synced));
    assert_holds(&log, &expected);
    assert_eq!(log.synced_index(), last);
    if (s.big.is_some() && s.segment_bytes_max < s.limit_bytes) || s.limit_after.is_some() {
        assert!(log.segments().len() >= 2, "{:?}", log.segments());
    }

    // Space is back: appends (including entries as big as the one that failed) and syncs work.
    let mut expected = expected;
    let start = last.map_or(0, |l| l + 1);
    for i in start..start + 20 {
        let len = match s.big {
            Some((_, big)) if i == start => big,
            _ => s.len_of(i),
        };
        log.append(i, ts(i), &payload(i, len)).unwrap();
        expected.push((i, len));
    }
    log.sync().unwrap();
    assert_eq!(log.synced_index(), Some(start + 19));
    assert_holds(&log, &expected);
    drop(log);
    let log = SegmentLog::open(dir.path(), config).unwrap();
    assert_holds(&log, &expected);
}
