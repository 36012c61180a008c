//! BLAKE3 + outboard throughput on one core (goal: at least 1 GB/s), and part verification.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use alluvium_content::{Outboard, PART_SIZE};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let size = 64 << 20;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut g = c.benchmark_group("outboard_64MiB");
    g.throughput(Throughput::Bytes(size as u64));
    g.sample_size(10);
    g.bench_function("compute", |b| {
        b.iter(|| Outboard::compute(&data[..], size as u64, |_| {}).unwrap())
    });
    let ob = Outboard::compute(&data[..], size as u64, |_| {}).unwrap();
    g.bench_function("verify_all_parts", |b| {
        b.iter(|| ob.verify_parts(0, &data).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("part");
    g.throughput(Throughput::Bytes(PART_SIZE));
    let mid = ob.parts() / 2;
    let part = &data[(mid * PART_SIZE) as usize..((mid + 1) * PART_SIZE) as usize];
    g.bench_function("verify_one_part", |b| {
        b.iter(|| ob.verify_parts(mid, part).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
