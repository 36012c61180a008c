//! Parsing a 10,000-entry playlist (a month of 4-minute tracks), also written on one line,
//! and writing it.

use alluvium_playlist::{parse, write, Blake3Hash, Channel, Entry, Playlist};
use chrono::{TimeDelta, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn playlist(entries: usize) -> Playlist {
    let Some(mut start) = Utc.with_ymd_and_hms(2026, 11, 25, 20, 0, 0).single() else {
        unreachable!("a fixed, valid date")
    };
    let entries = (0..entries)
        .map(|i| {
            let duration = TimeDelta::milliseconds(180_000 + (i as i64 * 7919) % 120_000);
            let entry = Entry {
                title: Some(format!("Track number {i} & friends")),
                creator: Some(format!("Artist {}", i % 97)),
                media_url: format!("http://radio.example/media/track-{:05}.mp3", i % 500),
                media_type: Some("audio/mpeg".into()),
                length: Some(3_000_000 + i as u64),
                start: Some(start),
                duration: Some(duration),
                hash: Some(Blake3Hash([(i % 251) as u8; 32])),
                ..Entry::default()
            };
            start += duration;
            entry
        })
        .collect();
    Playlist {
        channel: Channel {
            about: "http://radio.example/station.rss".into(),
            title: "Bench Radio".into(),
            ..Channel::default()
        },
        entries,
    }
}

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
