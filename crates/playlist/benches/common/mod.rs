//! The playlist both benchmarks read: `entries` 3-5 minute tracks back to back, each with
//! every field a station writes.

use alluvium_playlist::{Blake3Hash, Channel, Entry, Playlist};
use chrono::{TimeDelta, TimeZone, Utc};

pub(crate) fn playlist(entries: usize) -> Playlist {
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
