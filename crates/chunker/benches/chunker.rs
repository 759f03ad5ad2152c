//! cairn's chunker against the `fastcdc` crate's v2020 module, on the same
//! buffer with the same parameters. Target (foundation issue): throughput
//! ratio cairn/fastcdc >= 1.0 and >= 1 GB/s on one core.
//!
//! Run with `cargo bench -p cairn-chunker`; `benches/chunker-ratio.sh` runs it
//! and prints the ratio.

#![allow(clippy::expect_used)] // constant, known-good parameters

use cairn_chunker::{Chunker, ChunkerParams, Gear};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fastcdc::v2020::{FastCDC, Normalization};
use std::hint::black_box;

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn bench(c: &mut Criterion) {
    let data = pseudo_random(64 << 20, 0x5eed);
    let configs = [
        ("default-512k-1m-8m", 512u32 << 10, 1u32 << 20, 8u32 << 20),
        ("small-16k-64k-256k", 16 << 10, 64 << 10, 256 << 10),
    ];
    let mut group = c.benchmark_group("chunking");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(20);
    for (name, min, avg, max) in configs {
        let params = ChunkerParams::new(min, avg, max, 1).expect("valid parameters");
        let chunker = Chunker::new(params, Gear::public());
        group.bench_with_input(BenchmarkId::new("cairn", name), &data, |b, data| {
            b.iter(|| {
                let mut count = 0usize;
                for chunk in chunker.chunks(black_box(data)) {
                    count += chunk.len() & 1;
                }
                count
            })
        });
        group.bench_with_input(BenchmarkId::new("fastcdc-v2020", name), &data, |b, data| {
            b.iter(|| {
                let mut count = 0usize;
                for chunk in FastCDC::with_level(
                    black_box(data),
                    min as usize,
                    avg as usize,
                    max as usize,
                    Normalization::Level1,
                ) {
                    count += chunk.length & 1;
                }
                count
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
