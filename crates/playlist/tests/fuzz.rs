//! Fuzzing the playlist parser with bytes from outside: on stable Rust, inside `cargo test`, a
//! bounded number of cases. Arbitrary bytes and a good playlist mutated (bytes changed,
//! cut short, elements repeated) parse or are refused with an error; never a panic, and a
//! schedule built from what parses answers every question. A failure found once stays below
//! as a named case.

use alluvium_playlist::parse;
use chrono::{TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

const CASES: u32 = 256;

const GOOD: &str = include_str!("fuzz/station.rss");

/// Parses `data`; if it parses, asks its schedule about a few instants.
fn parse_and_ask(data: &[u8]) {
    if let Ok(parsed) = parse(data) {
        let t = Utc
            .with_ymd_and_hms(2026, 11, 25, 20, 1, 0)
            .single()
            .unwrap_or_default();
        for dt in [-86_400, 0, 30, 3_600, 86_400 * 365] {
            let at = t + TimeDelta::seconds(dt);
            let _ = parsed.schedule.on_air(at);
            let _ = parsed.schedule.next_change(at);
            let _ = parsed.schedule.slots_from(at).take(5).count();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn arbitrary_bytes_parse_or_are_refused(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse_and_ask(&data);
    }

    #[test]
    fn a_mutated_playlist_parses_or_is_refused(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..10),
        cut in any::<usize>(),
    ) {
        let mut data = GOOD.as_bytes().to_vec();
        for (at, byte) in edits {
            let at = at % data.len();
            data[at] = byte;
        }
        data.truncate(data.len() - cut % data.len());
        parse_and_ask(&data);
    }

    #[test]
    fn items_repeated_or_spliced_parse_or_are_refused(
        copies in 0usize..50,
        from in any::<usize>(),
        to in any::<usize>(),
    ) {
        let item_start = GOOD.find("<item").unwrap_or(0);
        let item_end = GOOD.find("</item>").map_or(GOOD.len(), |i| i + "</item>".len());
        let item = &GOOD[item_start..item_end];
        let mut doc = String::from(&GOOD[..item_end]);
        for _ in 0..copies {
            doc.push_str(item);
        }
        doc.push_str(&GOOD[item_end..]);
        // Splice a stretch of the document somewhere else.
        let bytes = doc.into_bytes();
        let (a, b) = (from % bytes.len(), to % bytes.len());
        let (a, b) = (a.min(b), a.max(b));
        let mut spliced = bytes[..a].to_vec();
        spliced.extend_from_slice(&bytes[b..]);
        spliced.extend_from_slice(&bytes[a..b]);
        parse_and_ask(&bytes);
        parse_and_ask(&spliced);
    }
}

#[test]
fn the_sample_parses_with_one_entry() {
    let parsed = parse(GOOD.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.playlist.entries.len(), 1);
}
