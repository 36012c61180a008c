//! Outboards and part verification against a simple reference: a part verifies exactly when
//! its bytes are the file's bytes, and the root is what `blake3::hash` (and `b3sum`) gives.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use alluvium_content::{part_count, part_range, ContentError, Outboard, PART_SIZE};
use proptest::prelude::*;

fn data(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

fn outboard(data: &[u8]) -> Outboard {
    let built = Outboard::compute(data, data.len() as u64, |_| {}).unwrap();
    // What a listener does: take the bytes as received, check them against the root.
    Outboard::from_bytes(built.root(), built.size(), built.as_bytes().to_vec()).unwrap()
}

/// Every part of `data` verifies; `bad` (a copy with changes) verifies exactly where it equals
/// `data`, one part at a time and as one range.
fn check_against_reference(data: &[u8], bad: &[u8]) {
    let ob = outboard(data);
    assert_eq!(ob.root(), blake3::hash(data));
    assert_eq!(ob.parts(), part_count(data.len() as u64));
    for part in 0..ob.parts() {
        let r = part_range(part, data.len() as u64);
        let r = r.start as usize..r.end as usize;
        ob.verify_parts(part, &data[r.clone()]).unwrap();
        let expect_ok = bad[r.clone()] == data[r.clone()];
        match ob.verify_parts(part, &bad[r]) {
            Ok(()) => assert!(expect_ok, "corrupt part {part} verified"),
            Err(ContentError::PartMismatch { part: p }) => {
                assert!(!expect_ok, "good part {part} failed");
                assert_eq!(p, part);
            }
            Err(e) => panic!("unexpected error for part {part}: {e}"),
        }
    }
    if !data.is_empty() {
        ob.verify_parts(0, data).unwrap();
        let first_bad = (0..ob.parts()).find(|&p| {
            let r = part_range(p, data.len() as u64);
            bad[r.start as usize..r.end as usize] != data[r.start as usize..r.end as usize]
        });
        match (ob.verify_parts(0, bad), first_bad) {
            (Ok(()), None) => {}
            (Err(ContentError::PartMismatch { part }), Some(b)) => assert_eq!(part, b),
            (got, want) => panic!("whole-range check: got {got:?}, first bad part {want:?}"),
        }
    }
}

#[test]
fn flipping_any_byte_of_a_part_fails_that_part_and_no_other() {
    let p = PART_SIZE as usize;
    for size in [1, p - 1, p, p + 1, 5 * p, 5 * p + 3, 17 * p + 1000] {
        let d = data(size, 1);
        for at in [0, size / 2, size - 1, p.min(size - 1)] {
            let mut bad = d.clone();
            bad[at] ^= 0x80;
            check_against_reference(&d, &bad);
        }
    }
}

#[test]
fn empty_file() {
    let ob = outboard(&[]);
    assert_eq!(ob.root(), blake3::hash(&[]));
    assert_eq!(ob.parts(), 0);
    assert!(ob.as_bytes().is_empty());
    ob.verify_parts(0, &[]).unwrap();
}

#[test]
fn a_tree_for_another_root_or_size_is_refused() {
    let d = data(10 * PART_SIZE as usize, 3);
    let ob = outboard(&d);
    let other = blake3::hash(b"something else");
    assert!(matches!(
        Outboard::from_bytes(other, ob.size(), ob.as_bytes().to_vec()),
        Err(ContentError::OutboardMismatch { .. })
    ));
    assert!(matches!(
        Outboard::from_bytes(ob.root(), ob.size() + PART_SIZE, ob.as_bytes().to_vec()),
        Err(ContentError::OutboardSize { .. })
    ));
    let mut tampered = ob.as_bytes().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        Outboard::from_bytes(ob.root(), ob.size(), tampered),
        Err(ContentError::OutboardMismatch { .. })
    ));
}

#[test]
fn progress_reaches_the_size() {
    let d = data(100_000, 5);
    let mut last = 0;
    Outboard::compute(&d[..], d.len() as u64, |n| last = n).unwrap();
    assert_eq!(last, 100_000);
}

fn sizes() -> impl Strategy<Value = usize> {
    let p = PART_SIZE as usize;
    prop_oneof![
        Just(0),
        Just(1),
        Just(p - 1),
        Just(p),
        Just(p + 1),
        Just(2 * p),
        1usize..(40 * p),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn parts_verify_exactly_when_unchanged(
        size in sizes(),
        seed in any::<u8>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
    ) {
        let d = data(size, seed);
        let mut bad = d.clone();
        if size > 0 {
            for (at, mask) in flips {
                bad[at.index(size)] ^= mask;
            }
        }
        check_against_reference(&d, &bad);
    }
}
