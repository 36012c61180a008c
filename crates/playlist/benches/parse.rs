//! Parsing a 10,000-entry playlist (a month of 4-minute tracks), also written on one line,
//! and writing it.

use alluvium_playlist::{parse, write};
use common::playlist;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod common;

fn bench(c: &mut Criterion) {
    let playlist = playlist(10_000);
    let xml = write(&playlist);
    let mut group = c.benchmark_group("playlist_10000_entries");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(xml.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| parse(std::hint::black_box(xml.as_bytes())).map(|p| p.schedule.slots().len()))
    });
    group.bench_function("write", |b| {
        b.iter(|| write(std::hint::black_box(&playlist)).len())
    });
    // The same document on one line: parsing stays linear (each item's line and column are
    // counted on from the previous one's).
    let one_line = xml.replace('\n', " ");
    group.bench_function("parse_one_line", |b| {
        b.iter(|| {
            parse(std::hint::black_box(one_line.as_bytes())).map(|p| p.schedule.slots().len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
