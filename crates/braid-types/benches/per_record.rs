//! Micro-benchmarks of the work `braid-types` does once per record written or read: printing and
//! parsing sequence numbers, and hashing partition keys. Run with
//! `cargo bench -p braid-types --bench per_record`; results go in docs/perf/.

use std::hint::black_box;

use braid_types::hash;
use braid_types::seqnum::{Position, SequenceNumber};
use criterion::{criterion_group, criterion_main, Criterion};

fn per_record(c: &mut Criterion) {
    let s = SequenceNumber::new(
        1_764_200_000,
        3,
        Position::new(1_234_567, 42),
        1_764_230_000,
    );
    c.bench_function("sequence number to_string", |b| {
        b.iter(|| black_box(s).to_string())
    });
    let text = s.to_string();
    c.bench_function("sequence number parse", |b| {
        b.iter(|| SequenceNumber::parse(black_box(&text)).expect("valid"))
    });
    c.bench_function("partition key hash (16 chars)", |b| {
        b.iter(|| hash::partition_key_hash(black_box("0000000000012d68")))
    });
}

criterion_group!(benches, per_record);
criterion_main!(benches);
