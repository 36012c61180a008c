//! Fuzzing the peer protocol's parsers (`Range` headers, have records, bitfields) against
//! simple reference models: on stable Rust, inside `cargo test`, a bounded number of cases.
//! A failure found once stays below as a named case.

use alluvium_content::PART_SIZE;
use alluvium_swarm::link::Delivered;
use alluvium_swarm::proto::{
    delivered_header, encode_record, parse_delivered, parse_range, RangeError, RecordReader,
    MAX_RANGE_PARTS,
};
use alluvium_swarm::Bitfield;
use proptest::prelude::*;

const CASES: u32 = 512;

/// What `parse_range` must answer, written the slow, obvious way.
fn reference_range(start: u64, end: Option<u64>, size: u64) -> Result<(u32, u32), RangeError> {
    let end = end.unwrap_or(size.saturating_sub(1));
    if start > end || end >= size || start % PART_SIZE != 0 {
        return Err(RangeError::NotParts);
    }
    if (end + 1) % PART_SIZE != 0 && end + 1 != size {
        return Err(RangeError::NotParts);
    }
    let parts: Vec<u64> = (start / PART_SIZE..=end / PART_SIZE).collect();
    if parts.len() as u64 > MAX_RANGE_PARTS {
        return Err(RangeError::NotParts);
    }
    Ok((parts[0] as u32, parts.len() as u32))
}

/// A bitfield of `len` parts holding those `held` picks.
fn bitfield(len: u32, held: &[bool]) -> Bitfield {
    let mut b = Bitfield::new(len);
    for (p, &h) in held.iter().enumerate().take(len as usize) {
        if h {
            b.set(p as u32);
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_range_header_is_answered_without_panic(value in ".{0,40}", size in any::<u64>()) {
        let _ = parse_range(&value, size);
    }

    #[test]
    fn delivery_reports_round_trip_and_anything_else_parses_or_is_none(
        bytes in any::<u64>(), us in any::<u64>(), paced in any::<u64>(), junk in ".{0,40}",
    ) {
        let d = Delivered { bytes, us, paced };
        prop_assert_eq!(parse_delivered(&delivered_header(&d)), Some(d));
        if let Some(parsed) = parse_delivered(&junk) {
            prop_assert_eq!(parse_delivered(&delivered_header(&parsed)), Some(parsed));
        }
        let _ = Delivered { bytes, us, paced }.rate();
    }

    #[test]
    fn ranges_match_the_reference(
        start_part in 0u64..200,
        start_off in prop_oneof![Just(0u64), 1u64..PART_SIZE],
        end in proptest::option::of(0u64..200 * PART_SIZE),
        size in 0u64..200 * PART_SIZE,
    ) {
        let start = start_part * PART_SIZE + start_off;
        let header = match end {
            Some(e) => format!("bytes={start}-{e}"),
            None => format!("bytes={start}-"),
        };
        prop_assert_eq!(parse_range(&header, size), reference_range(start, end, size), "{}", header);
    }

    #[test]
    fn records_round_trip_in_any_chunking(
        len in 0u32..300,
        records in proptest::collection::vec(
            (any::<u64>(), proptest::collection::vec(any::<bool>(), 300)), 1..5),
        cuts in proptest::collection::vec(1usize..64, 1..20),
    ) {
        let sent: Vec<(u64, Bitfield)> =
            records.iter().map(|(v, held)| (*v, bitfield(len, held))).collect();
        let wire: Vec<u8> = sent.iter().flat_map(|(v, b)| encode_record(*v, b)).collect();
        let mut reader = RecordReader::new(len);
        let mut got = Vec::new();
        let mut at = 0;
        for cut in cuts.iter().cycle() {
            if at >= wire.len() {
                break;
            }
            let next = (at + cut).min(wire.len());
            reader.push(&wire[at..next]);
            at = next;
            while let Some(r) = reader.next_record() {
                got.push(r.unwrap());
            }
        }
        prop_assert_eq!(got, sent);
    }

    #[test]
    fn arbitrary_record_bytes_give_only_valid_bitfields(
        len in 0u32..100,
        wire in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut reader = RecordReader::new(len);
        reader.push(&wire);
        let mut records = 0;
        while let Some(r) = reader.next_record() {
            if let Ok((_, bits)) = r {
                prop_assert_eq!(bits.len(), len);
                prop_assert!(bits.iter().all(|p| p < len));
            }
            records += 1;
        }
        prop_assert_eq!(records, wire.len() / (8 + len.div_ceil(8) as usize));
    }

    #[test]
    fn bitfields_parse_exactly_their_own_bytes(
        len in 0u32..100,
        bytes in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        match Bitfield::from_bytes(len, &bytes) {
            Some(b) => {
                prop_assert_eq!(b.as_bytes(), &bytes[..]);
                prop_assert_eq!(b.count(), b.iter().count() as u32);
            }
            None => {
                let spare_set = bytes.len() == len.div_ceil(8) as usize
                    && (len..bytes.len() as u32 * 8)
                        .any(|bit| bytes[(bit / 8) as usize] & (0x80 >> (bit % 8)) != 0);
                prop_assert!(bytes.len() != len.div_ceil(8) as usize || spare_set);
            }
        }
    }
}

#[test]
fn a_range_past_the_end_or_off_part_boundaries_is_refused() {
    let size = 3 * PART_SIZE;
    assert_eq!(
        parse_range(&format!("bytes=0-{}", size), size),
        Err(RangeError::NotParts)
    );
    assert_eq!(parse_range("bytes=1-", size), Err(RangeError::NotParts));
    assert_eq!(parse_range("bytes=-1", size), Err(RangeError::Malformed));
}

#[test]
fn a_delivery_report_is_three_whole_numbers() {
    let d = Delivered {
        bytes: 14_936,
        us: 93_000,
        paced: 160_000,
    };
    assert_eq!(parse_delivered(" 14936  93000 160000 "), Some(d));
    assert_eq!(d.rate(), 160_602);
    for bad in ["", "1 2", "1 2 3 4", "1 -2 3", "a b c", "1.5 2 3"] {
        assert_eq!(parse_delivered(bad), None, "{bad:?}");
    }
}
