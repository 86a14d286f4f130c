//! Model-based test: random operations against a `Vec` model; after every operation the log
//! matches the model.

mod common;

use std::path::Path;

use braid_storage::{SegmentLog, StorageError};
use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Appends entries with these payload sizes. `gap` chooses the first index when the log is
    /// empty (above the purge point).
    Append {
        sizes: Vec<usize>,
        gap: u8,
    },
    Sync,
    /// `pick` chooses an index in [first - 1, last + 1].
    TruncateFrom {
        pick: u16,
    },
    PurgeUpto {
        pick: u16,
    },
    Reopen,
    /// An append that must be refused (not contiguous).
    BadAppend {
        offset: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::collection::vec(0usize..2000, 1..6), any::<u8>())
            .prop_map(|(sizes, gap)| Op::Append { sizes, gap }),
        2 => Just(Op::Sync),
        2 => any::<u16>().prop_map(|pick| Op::TruncateFrom { pick }),
        2 => any::<u16>().prop_map(|pick| Op::PurgeUpto { pick }),
        1 => Just(Op::Reopen),
        1 => any::<u8>().prop_map(|offset| Op::BadAppend { offset }),
    ]
}

#[derive(Default)]
struct Model {
    entries: Vec<(u64, u64, Vec<u8>)>,
    purged: Option<u64>,
    generation: u64,
}

impl Model {
    fn first(&self) -> Option<u64> {
        self.entries.first().map(|e| e.0)
    }
    fn last(&self) -> Option<u64> {
        self.entries.last().map(|e| e.0)
    }
    fn next_index(&self, gap: u8) -> u64 {
        match self.last() {
            Some(l) => l + 1,
            None => self.purged.map_or(0, |p| p + 1) + u64::from(gap % 4) * 7,
        }
    }
    /// An index in [first - 1, last + 1] (or near the purge point when empty).
    fn pick(&self, pick: u16) -> u64 {
        match (self.first(), self.last()) {
            (Some(f), Some(l)) => f.saturating_sub(1) + u64::from(pick) % (l - f + 3),
            _ => self.purged.unwrap_or(0) + u64::from(pick % 3),
        }
    }
}

fn check(log: &SegmentLog, model: &Model, dir: &Path) {
    assert_eq!(log.first_index(), model.first());
    assert_eq!(log.last_index(), model.last());
    assert_eq!(log.purged_index(), model.purged);
    for (i, t, p) in &model.entries {
        assert_eq!(log.read(*i).unwrap(), Some((*t, p.clone())), "entry {i}");
    }
    if let Some(f) = model.first() {
        if f > 0 {
            assert_eq!(log.read(f - 1).unwrap(), None);
        }
    }
    if let Some(l) = model.last() {
        assert_eq!(log.read(l + 1).unwrap(), None);
    }
    assert_eq!(
        log.read_range(0, u64::MAX - 1, usize::MAX).unwrap(),
        model.entries
    );
    if let (Some(f), Some(l)) = (model.first(), model.last()) {
        let mid = f + (l - f) / 2;
        let want: Vec<_> = model
            .entries
            .iter()
            .filter(|e| e.0 >= mid)
            .take(1)
            .cloned()
            .collect();
        assert_eq!(log.read_range(mid, l + 1, 0).unwrap(), want);
    }
    if let Some(s) = log.synced_index() {
        assert!(Some(s) <= model.last());
    }
    let segs = log.segments();
    for w in segs.windows(2) {
        assert_eq!(w[1].base_index, w[0].last_index.unwrap() + 1);
    }
    let files = segment_files(dir);
    assert_eq!(files.len(), segs.len());
    let on_disk: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(log.disk_bytes(), on_disk);
}

fn run(ops: Vec<Op>, segment_bytes_max: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), segment_bytes_max);
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append { sizes, gap } => {
                let start = model.next_index(gap);
                for (index, size) in (start..).zip(sizes) {
                    model.generation += 1;
                    let g = model.generation;
                    let payload: Vec<u8> = (0..size).map(|k| (g as usize + k) as u8).collect();
                    log.append(index, g, &payload).unwrap();
                    model.entries.push((index, g, payload));
                }
            }
            Op::Sync => {
                log.sync().unwrap();
                assert_eq!(log.synced_index(), model.last());
            }
            Op::TruncateFrom { pick } => {
                let index = model.pick(pick);
                let removes = model.last().is_some_and(|l| index <= l);
                log.truncate_from(index).unwrap();
                model.entries.retain(|e| e.0 < index);
                if removes {
                    // A truncation is durable and leaves only durable entries.
                    assert_eq!(log.synced_index(), model.last());
                }
            }
            Op::PurgeUpto { pick } => {
                let index = model.pick(pick);
                log.purge_upto(index).unwrap();
                if model.purged.is_none_or(|p| p < index) {
                    model.purged = Some(index);
                    model.entries.retain(|e| e.0 > index);
                }
            }
            Op::Reopen => {
                drop(log);
                log = open(dir.path(), segment_bytes_max);
                assert_eq!(log.synced_index(), model.last());
            }
            Op::BadAppend { offset } => {
                let good = model.next_index(0);
                if model.last().is_some() {
                    let bad = good.wrapping_add(u64::from(offset) + 1);
                    assert!(matches!(
                        log.append(bad, 0, b"bad"),
                        Err(StorageError::NotContiguous { .. })
                    ));
                } else if let Some(p) = model.purged {
                    let bad = p.saturating_sub(u64::from(offset % 3));
                    assert!(matches!(
                        log.append(bad, 0, b"bad"),
                        Err(StorageError::BelowPurged { .. })
                    ));
                }
            }
        }
        check(&log, &model, dir.path());
    }
    drop(log);
    let log = open(dir.path(), segment_bytes_max);
    check(&log, &model, dir.path());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(
        ops in prop::collection::vec(op(), 1..40),
        segment_bytes_max in prop_oneof![Just(0u64), Just(1500u64), Just(4096u64), Just(1u64 << 20)],
    ) {
        run(ops, segment_bytes_max);
    }
}
