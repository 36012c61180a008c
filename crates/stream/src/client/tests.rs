//! The stream's joining and timing, checked against held parts of real frames.

use super::*;
use alluvium_content::{Outboard, PART_SIZE};
use alluvium_swarm::Store;

/// A CBR MP3 of silent frames (128 kbit/s, 44.1 kHz) about `seconds` long.
fn mp3(seconds: u64) -> Vec<u8> {
    let frame = alluvium_media::silent_frame([0xFF, 0xFB, 0x90, 0x44]).expect("a frame");
    let frames = seconds * 44_100 / 1_152;
    frame.repeat(frames as usize)
}

/// The entry of `bytes`, joined `into` its slot at `now`, with only `parts` held.
fn playing(bytes: &[u8], parts: &[u32], now: DateTime<Utc>, into: TimeDelta) -> Playing {
    let tree = Outboard::compute(bytes, bytes.len() as u64, |_| {}).expect("a tree");
    let content = Store::new(None, u64::MAX, usize::MAX).open(tree);
    for &part in parts {
        let start = part as usize * PART_SIZE as usize;
        let end = (start + PART_SIZE as usize).min(bytes.len());
        let part_bytes = Bytes::copy_from_slice(&bytes[start..end]);
        content.insert(part, &part_bytes).expect("verified");
    }
    let track = Track::open(content).expect("the head is held");
    let seconds = bytes.len() as i64 * 8 / 128;
    let slot = Slot {
        entry: 0,
        start: now - into,
        end: now - into + TimeDelta::milliseconds(seconds),
    };
    let mut p = at_start(track, slot);
    rejoin(&mut p, now);
    p
}

/// `track` in `slot`, at its first frame.
fn at_start(track: Track, slot: Slot) -> Playing {
    Playing {
        slot,
        title: String::new(),
        comments: Vec::new(),
        cursor: track.audio_start,
        anchor: slot.start,
        samples: 0,
        rate: 44_100,
        track,
        new_link: false,
        rejoin: false,
    }
}

#[test]
fn the_swarm_times_each_part_as_the_stream_finds_its_moment() {
    // 40 s of audio after a 100 KB ID3v2 tag (cover art): the audio starts in part 6,
    // and its last part is short.
    let padding: u64 = 100_000;
    let mut bytes = b"ID3\x04\x00\x00".to_vec();
    bytes.extend((0..4).rev().map(|i| ((padding >> (7 * i)) & 0x7F) as u8));
    bytes.resize(10 + padding as usize, 0);
    bytes.extend(mp3(40));
    let tree = Outboard::compute(&bytes[..], bytes.len() as u64, |_| {}).expect("a tree");
    let content = Store::new(None, u64::MAX, usize::MAX).open(tree);
    for part in 0..content.parts() {
        let range = alluvium_content::part_range(u64::from(part), bytes.len() as u64);
        let data = Bytes::copy_from_slice(&bytes[range.start as usize..range.end as usize]);
        content.insert(part, &data).expect("verified");
    }
    assert_eq!(content.audio(), None, "no reader has looked yet");
    let track = Track::open(content.clone()).expect("the head is held");
    let audio = content
        .audio()
        .expect("opening the track tells the content");
    assert_eq!(audio, track.audio_map());
    assert!(audio.offset_at(0.0) > 6 * PART_SIZE, "{audio:?}");

    let duration_ms = (40 * 44_100 / 1_152) * 1_152 * 1_000 / 44_100;
    let now = Utc::now();
    let slot = Slot {
        entry: 0,
        start: now,
        end: now + TimeDelta::milliseconds(duration_ms),
    };
    let deadlines = alluvium_swarm::picker::Deadlines::Audio {
        start_ms: 0,
        duration_ms,
        map: alluvium_swarm::picker::AudioMap::even(0..bytes.len() as u64),
    }
    .with_audio(audio.clone());
    let mut p = at_start(track, slot);
    for ms in (0..duration_ms).step_by(250) {
        rejoin(&mut p, now + TimeDelta::milliseconds(ms));
        let streamed = (p.cursor / PART_SIZE) as u32;
        // The part due last by then is the one the stream plays (or the stream's frame
        // starts just past its end: frames are found from the same proportion).
        let due = (0..content.parts())
            .rev()
            .find(|&q| deadlines.of(q).is_some_and(|d| d <= ms))
            .expect("the first audio part is due at the start");
        assert!(
            due == streamed || (streamed == due + 1 && p.cursor % PART_SIZE < 450),
            "at {ms} ms the stream plays part {streamed} (byte {}), the swarm has part {due} due",
            p.cursor
        );
    }
}

#[test]
fn drift_is_where_the_player_hears_against_the_schedule() {
    let now = Utc::now();
    let ms = TimeDelta::milliseconds;
    assert_eq!(drift(now, ms(0), None, now), None, "no sound yet");
    // 5 s burst then real time, started on schedule: 10 s sent in 5 s, the last frame
    // gathered 5 s ahead: the ear is on the schedule.
    let five = Some(Duration::from_secs(5));
    assert_eq!(drift(now + ms(5_000), ms(10_000), five, now), Some(ms(0)));
    // Started 0.89 s ahead of the schedule (a later part held first).
    assert_eq!(drift(now + ms(5_890), ms(10_000), five, now), Some(ms(890)));
    // Behind: a stall the stream has not caught up on.
    assert_eq!(
        drift(now + ms(4_000), ms(10_000), five, now),
        Some(ms(-1_000))
    );
}

#[test]
fn a_late_frame_is_waited_for_only_while_the_player_surely_has_audio_left() {
    let s = TimeDelta::seconds;
    let on_time = TimeDelta::zero();
    // No sound yet: given up 0.5 s before its moment, as a joiner's always was.
    assert_eq!(wait_margin(TimeDelta::zero(), None, on_time), STALL_MARGIN);
    // 6 s sent in the 2 s since the first sound: at least 4 s left, wait past the moment.
    assert_eq!(
        wait_margin(s(6), Some(Duration::from_secs(2)), on_time),
        -LATE_GRACE
    );
    // Sent at real-time pace (a listener just tuned in, parts coming as they play):
    // nothing sure to be left, so no waiting past the old limit.
    let paced = Some(Duration::from_millis(9_700));
    assert_eq!(wait_margin(s(10), paced, on_time), STALL_MARGIN);
    // A player started 0.8 s ahead of the schedule needs each frame 0.8 s sooner.
    let early = TimeDelta::milliseconds(800);
    assert_eq!(wait_margin(s(10), paced, early), STALL_MARGIN + early);
}

#[test]
fn a_joining_player_starts_at_the_next_held_moment_within_a_second() {
    let bytes = mp3(6);
    let now = Utc::now();
    // A part lasts about 1.02 s at 128 kbit/s; the moment is 0.2 s into part 1, which is
    // not held. Part 2 starts about 0.8 s from now.
    let into = TimeDelta::milliseconds(1_224);
    let mut p = playing(&bytes, &[0, 2], now, into);
    assert!(p.rejoin, "the moment's part is not held");
    let ahead = start_ahead(&mut p, now, JOIN_AHEAD).unwrap();
    assert!(ahead > TimeDelta::zero() && ahead <= JOIN_AHEAD, "{ahead}");
    assert!(!p.rejoin);
    let part = p.cursor / PART_SIZE;
    assert_eq!(part, 2, "starts in part 2, at {}", p.cursor);
    let early = p.anchor - now;
    assert!(
        early >= TimeDelta::zero() && early <= JOIN_AHEAD,
        "ahead of the schedule by {early}, not more than {JOIN_AHEAD}"
    );
    assert!(matches!(p.track.unit(p.cursor), Some(Ok(_))));

    // Only part 3 held (about 1.8 s ahead): too far, nothing changes.
    let mut p = playing(&bytes, &[0, 3], now, into);
    let before = (p.cursor, p.anchor, p.rejoin);
    assert_eq!(start_ahead(&mut p, now, JOIN_AHEAD), None);
    assert_eq!((p.cursor, p.anchor, p.rejoin), before);
}
