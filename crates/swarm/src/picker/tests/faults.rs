//! Tests of the picker: bans, false claims, duplicates and back-off.

use super::*;

#[test]
fn bad_data_bans_and_false_claims_drop() {
    let mut p = Picker::new(
        Bitfield::new(16),
        Deadlines::None,
        PickerConfig::default(),
        1,
    );
    p.add_peer(peer(1));
    p.add_peer(peer(2));
    p.set_peer_have(peer(1), full(16), 0);
    p.set_peer_have(peer(2), full(16), 0);
    let reqs = p.next(0, &mut rng());
    let r1 = reqs
        .iter()
        .find(|r| r.source == Source::Peer(peer(1)))
        .unwrap();
    assert_eq!(p.failed(r1.id, Failure::BadData, 10), PeerVerdict::Banned);
    assert!(p.is_banned(peer(1)));
    let later = p.next(20, &mut rng());
    assert!(later.iter().all(|r| r.source != Source::Peer(peer(1))));
}

#[test]
fn false_claims_cost_the_claim_then_the_peer() {
    let mut p = Picker::new(
        Bitfield::new(16),
        Deadlines::None,
        PickerConfig::default(),
        1,
    );
    p.add_peer(peer(2));
    let mut verdicts = Vec::new();
    for t in 0..3 {
        p.set_peer_have(peer(2), full(16), 0);
        let reqs = p.next(100 + t, &mut rng());
        let r = reqs
            .iter()
            .find(|r| r.source == Source::Peer(peer(2)))
            .unwrap();
        verdicts.push(p.failed(r.id, Failure::NotHeld, 100 + t));
    }
    assert_eq!(
        verdicts,
        [PeerVerdict::Fine, PeerVerdict::Fine, PeerVerdict::Banned]
    );
    assert!(p.is_banned(peer(2)));
}

#[test]
fn completion_cancels_duplicates_and_finishes() {
    let mut p = Picker::new(
        Bitfield::new(2),
        Deadlines::None,
        PickerConfig::default(),
        1,
    );
    p.add_peer(peer(1));
    p.add_peer(peer(2));
    p.set_peer_have(peer(1), full(2), 0);
    p.set_peer_have(peer(2), full(2), 0);
    let reqs = p.next(0, &mut rng());
    // Endgame: both peers asked for the same two parts.
    assert!(reqs.len() >= 2, "{reqs:?}");
    let first = reqs[0];
    let cancel = p.completed(first.id, first.first, first.count, 32768, 5);
    for c in &cancel {
        assert!(reqs.iter().any(|r| r.id == *c && r.id != first.id));
    }
    for r in &reqs[1..] {
        if !cancel.contains(&r.id) {
            p.completed(r.id, r.first, r.count, 16384, 6);
        }
    }
    assert!(p.is_complete());
    assert_eq!(p.inflight(), 0);
}

#[test]
fn failing_sources_back_off() {
    let mut p = Picker::new(
        Bitfield::new(8),
        Deadlines::None,
        PickerConfig::default(),
        1,
    );
    let r = p.next(1000, &mut rng());
    p.failed(r[0].id, Failure::TimedOut, 1010);
    assert!(p.next(1020, &mut rng()).is_empty(), "origin backs off");
    assert!(!p.next(5_000, &mut rng()).is_empty());
}

/// Part 0 due 2 s after time 1,000 and held only by a peer, whose first asks end with
/// `failure`; this node owns every block (it knows no member). What is asked just after.
fn after_the_only_holder_fails(failure: Failure) -> Vec<Request> {
    let d = Deadlines::Linear {
        start_ms: 3_000,
        per_part_ms: 1000.0,
    };
    let mut p = Picker::new(Bitfield::new(10), d.clone(), PickerConfig::live(), 1);
    p.add_peer(peer(1));
    p.set_peer_have(peer(1), full(10), 0);
    let now = 1_000;
    let asked = p.next(now, &mut rng());
    assert!(
        !asked.is_empty() && asked.iter().all(|r| r.source == Source::Peer(peer(1))),
        "peers first, the origin waits while the peer can send: {asked:?}"
    );
    for r in &asked {
        p.failed(r.id, failure, now + 5);
    }
    p.next(now + 10, &mut rng())
}

#[test]
fn an_urgent_part_whose_only_holder_stopped_answering_comes_from_the_origin() {
    // Timed out: back off 2 s, past the part's moment.
    let asked = after_the_only_holder_fails(Failure::TimedOut);
    assert!(
        asked
            .iter()
            .any(|r| r.first == 0 && r.source == Source::Origin),
        "{asked:?}"
    );
}

#[test]
fn an_urgent_part_whose_only_holder_is_busy_a_moment_waits_for_it() {
    // Busy: back in 0.5 s, well before the part's moment.
    let asked = after_the_only_holder_fails(Failure::Busy);
    assert!(
        !asked.iter().any(|r| r.source == Source::Origin),
        "{asked:?}"
    );
}
