//! Micro-benchmarks of a shard entry's encoding: what every replica does once per entry it
//! appends (encode), and what a follower does once per entry it receives (decode). Run with
//! `cargo bench -p braid-raft --bench entry_codec`; results go in docs/perf/.

use std::hint::black_box;

use braid_raft::codec;
use braid_raft::records::RecordBatchBuilder;
use braid_raft::shard::{ShardEntry, ShardRequest};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use openraft::EntryPayload;

/// An entry like the 75k rec/s benchmark's: 125 records of 1 KiB with 16-character keys.
fn entry() -> ShardEntry {
    let data = vec![0x5au8; 1024];
    let mut b = RecordBatchBuilder::with_capacity(125, 125 * (16 + 1024));
    for i in 0..125u32 {
        b.push(&format!("{i:016x}"), &data);
    }
    openraft::Entry {
        log_id: braid_raft::LogId::new(braid_raft::leader_id(3, 1), 123_456),
        payload: EntryPayload::Normal(ShardRequest::Put {
            arrival_ms: 1_764_230_000_000,
            records: b.finish(),
        }),
    }
}

fn entry_codec(c: &mut Criterion) {
    let e = entry();
    let encoded = Bytes::from(codec::encode(&e));
    let mut g = c.benchmark_group("shard entry of 125 x 1 KiB");
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function("encode", |b| b.iter(|| codec::encode(black_box(&e))));
    g.bench_function("decode (copies the records)", |b| {
        b.iter(|| codec::decode::<ShardEntry>(black_box(&encoded)).expect("valid"))
    });
    g.bench_function("decode_shared (slices the buffer)", |b| {
        b.iter(|| codec::decode_shared::<ShardEntry>(black_box(&encoded)).expect("valid"))
    });
    g.finish();
}

criterion_group!(benches, entry_codec);
criterion_main!(benches);
