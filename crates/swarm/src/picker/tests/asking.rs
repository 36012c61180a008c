//! Tests of the picker: which parts are asked of peers and of the origin, and when.

use super::*;

#[test]
fn alone_it_takes_random_parts_from_the_origin() {
    let mut p = Picker::new(
        Bitfield::new(100),
        Deadlines::None,
        PickerConfig::default(),
        1,
    );
    assert!(
        p.next(0, &mut rng()).is_empty(),
        "waits for the tracker first"
    );
    let reqs = p.next(1000, &mut rng());
    assert_eq!(reqs.len(), 2, "origin slots");
    assert!(reqs.iter().all(|r| r.source == Source::Origin));
    assert!(p.next(1000, &mut rng()).is_empty(), "slots full");
}

#[test]
fn peers_come_first_and_the_origin_only_gets_what_no_peer_has() {
    let mut p = Picker::new(
        Bitfield::new(64),
        Deadlines::None,
        PickerConfig::default(),
        1,
    );
    p.add_peer(peer(1));
    let mut half = Bitfield::new(64);
    for i in 0..32 {
        half.set(i);
    }
    p.set_peer_have(peer(1), half, 0);
    let reqs = p.next(1000, &mut rng());
    for r in &reqs {
        match r.source {
            Source::Peer(_) => assert!(r.first + r.count <= 32),
            Source::Origin => assert!(r.first >= 32, "{r:?}"),
        }
    }
    assert_eq!(
        reqs.iter()
            .filter(|r| matches!(r.source, Source::Peer(_)))
            .count(),
        PickerConfig::default().peer_slots
    );
}

#[test]
fn live_asks_few_parts_most_urgent_first_each_of_another_peer() {
    let d = Deadlines::Linear {
        start_ms: 0,
        per_part_ms: 1000.0,
    };
    let config = PickerConfig::live();
    let mut have = Bitfield::new(60);
    for part in [0, 1, 59] {
        have.set(part);
    }
    let mut p = Picker::new(have.clone(), d.clone(), config, 1);
    for i in 1..=6 {
        p.add_peer(peer(i));
        p.set_peer_have(peer(i), full(60), 0);
    }
    // Joining at 10 s: parts due from 11 s on (an ask takes about a second), the most
    // urgent first, one part per ask, one ask per peer, four in all, one of which copies
    // on a part not due within 6 s.
    let reqs = p.next(10_000, &mut rng());
    let mut firsts: Vec<u32> = reqs.iter().map(|r| r.first).collect();
    firsts.sort();
    assert_eq!(firsts[..3], [11, 12, 13], "{reqs:?}");
    assert!(firsts[3] > 16, "{reqs:?}");
    let urgent = reqs.iter().find(|r| r.first == 11).unwrap();
    assert!(reqs.iter().all(|r| r.count == 1), "{reqs:?}");
    let mut sources: Vec<Source> = reqs.iter().map(|r| r.source).collect();
    sources.sort_by_key(|s| format!("{s:?}"));
    sources.dedup();
    assert_eq!(sources.len(), 4, "each ask to another peer: {reqs:?}");
    // Nothing more while four are in flight.
    assert!(p.next(10_100, &mut rng()).is_empty());
    // One answer frees one ask: for the next part due, a part is already being copied on.
    p.completed(urgent.id, 11, 1, 16_384, 10_500);
    let more = p.next(10_500, &mut rng());
    assert_eq!(more.len(), 1, "{more:?}");
    assert_eq!(more[0].first, 14);

    // With two spread asks, two of the four copy parts on that are not due within 6 s.
    let config = PickerConfig {
        spread_slots: 2,
        ..PickerConfig::live()
    };
    let mut p = Picker::new(have, d.clone(), config, 1);
    for i in 1..=8 {
        p.add_peer(peer(i));
        p.set_peer_have(peer(i), full(60), 0);
    }
    let mut firsts: Vec<u32> = p.next(10_000, &mut rng()).iter().map(|r| r.first).collect();
    firsts.sort();
    assert_eq!(firsts[..2], [11, 12], "{firsts:?}");
    assert!(firsts[2..].iter().all(|&f| f > 16), "{firsts:?}");
}

#[test]
fn a_listener_tuning_in_asks_only_for_its_first_seconds() {
    // The entry on air is 10 s in (part 10 plays now), the next one starts in 20 s.
    let on_air = Deadlines::Linear {
        start_ms: -10_000,
        per_part_ms: 1000.0,
    };
    let next = Deadlines::Linear {
        start_ms: 20_000,
        per_part_ms: 1000.0,
    };
    let asks_with = |deadlines: &Deadlines, started: u64, now: u64, head: bool| {
        let mut have = Bitfield::new(60);
        if head {
            have.set(0);
        }
        let mut p = Picker::new(have, deadlines.clone(), PickerConfig::live(), 1);
        p.set_started(started, EPOCH);
        for i in 1..=8 {
            p.add_peer(peer(i));
            p.set_peer_have(peer(i), full(60), 0);
        }
        let mut firsts: Vec<u32> = p.next(now, &mut rng()).iter().map(|r| r.first).collect();
        firsts.sort();
        firsts
    };
    let asks = |deadlines: &Deadlines, started, now| asks_with(deadlines, started, now, true);
    // Just started, every peer holding everything: all that plays within 5 s is asked
    // at once (six asks: the part playing now and the five after it), nothing of the
    // next entry.
    let firsts = asks(&on_air, EPOCH, 100);
    assert_eq!(firsts, (10..=15).collect::<Vec<_>>());
    // The entry's head missing as well: it has an ask of its own, the six stay.
    let firsts = asks_with(&on_air, EPOCH, 100, false);
    assert_eq!(firsts.len(), 7, "{firsts:?}");
    assert_eq!(firsts[0], 0, "{firsts:?}");
    assert_eq!(firsts[1..], (10..=15).collect::<Vec<_>>());
    // Not once the first seconds are over: four, the head's among them.
    assert_eq!(asks_with(&on_air, EPOCH - 10_000, 100, false).len(), 4);
    assert!(asks(&next, EPOCH, 100).is_empty());
    // Started 10 s before: one ask copies a rare part on, and the next entry is traded.
    let firsts = asks(&on_air, EPOCH - 10_000, 100);
    assert_eq!(firsts.len(), 4, "{firsts:?}");
    assert!(firsts[3] > 16, "{firsts:?}");
    assert!(!asks(&next, EPOCH - 10_000, 100).is_empty());
}

#[test]
fn a_tuning_in_listener_asks_past_four_only_for_parts_many_hold() {
    // The entry on air is 10 s in (part 10 plays now); the listener has just started.
    let on_air = Deadlines::Linear {
        start_ms: -10_000,
        per_part_ms: 1000.0,
    };
    let mut have = Bitfield::new(60);
    have.set(0);
    let mut p = Picker::new(have, on_air.clone(), PickerConfig::live(), 1);
    p.set_started(EPOCH, EPOCH);
    // Eight peers hold the entry up to part 13; three of them parts 14 and 15 as well.
    let mut to_13 = Bitfield::new(60);
    for part in 0..=13 {
        to_13.set(part);
    }
    let mut to_15 = to_13.clone();
    to_15.set(14);
    to_15.set(15);
    for i in 1..=8 {
        p.add_peer(peer(i));
        p.set_peer_have(
            peer(i),
            if i <= 3 { to_15.clone() } else { to_13.clone() },
            0,
        );
    }
    // The four asks go to the first four parts; parts 14 and 15, held by three, wait
    // for one of them to be answered (their holders' uplinks are the busy ones).
    let reqs = p.next(100, &mut rng());
    let mut firsts: Vec<u32> = reqs.iter().map(|r| r.first).collect();
    firsts.sort();
    assert_eq!(firsts, [10, 11, 12, 13], "{reqs:?}");
    assert!(p.next(200, &mut rng()).is_empty());
    // A fourth holder of part 14 comes: now it is asked at once, beside the four.
    let mut to_14 = to_13.clone();
    to_14.set(14);
    p.add_peer(peer(9));
    p.set_peer_have(peer(9), to_14, 0);
    let more = p.next(300, &mut rng());
    assert_eq!(
        more.iter().map(|r| r.first).collect::<Vec<_>>(),
        [14],
        "{more:?}"
    );
}

#[test]
fn a_download_yields_its_peer_asks_while_another_is_short() {
    // The entry on air is 10 s in; part 11 plays in 1 s.
    let on_air = Deadlines::Linear {
        start_ms: -10_000,
        per_part_ms: 1000.0,
    };
    let mut have = Bitfield::new(60);
    for part in 0..=12 {
        have.set(part);
    }
    let p = Picker::new(have.clone(), on_air.clone(), PickerConfig::live(), 1);
    assert!(
        p.short(100),
        "parts 13 and 14 play within 4 s and are missing"
    );
    for part in 13..=14 {
        have.set(part);
    }
    let p2 = Picker::new(have, on_air.clone(), PickerConfig::live(), 1);
    assert!(!p2.short(100), "everything due within 4 s is held");

    // The next entry, 20 s away: four asks, or one while the entry on air is short.
    let next = Deadlines::Linear {
        start_ms: 20_000,
        per_part_ms: 1000.0,
    };
    let asks = |yielding: bool| {
        let mut p = Picker::new(Bitfield::new(60), next.clone(), PickerConfig::live(), 1);
        for i in 1..=8 {
            p.add_peer(peer(i));
            p.set_peer_have(peer(i), full(60), 0);
        }
        p.set_yielding(yielding);
        p.next(100, &mut rng()).len()
    };
    assert_eq!(asks(false), 4);
    assert_eq!(asks(true), 1);
}

/// A live picker of 60 one-second parts from 0, the head held, one ask at a time, and one
/// peer (`peer(1)`) holding everything; and its config.
fn one_peer_asked_at_a_time() -> (Picker, PickerConfig) {
    let d = Deadlines::Linear {
        start_ms: 0,
        per_part_ms: 1000.0,
    };
    let config = PickerConfig {
        peer_total_slots: 1,
        spread_slots: 0,
        ..PickerConfig::live()
    };
    let mut have = Bitfield::new(60);
    have.set(0);
    let mut p = Picker::new(have, d.clone(), config, 1);
    p.add_peer(peer(1));
    p.set_peer_have(peer(1), full(60), 0);
    (p, config)
}

#[test]
fn a_slow_peer_is_asked_only_for_parts_due_later_than_its_answers_take() {
    let (mut p, config) = one_peer_asked_at_a_time();
    // Its first answer took 4 s.
    let first = p.next(10_000, &mut rng());
    assert_eq!(first[0].first, 11, "{first:?}");
    p.completed(first[0].id, 11, 1, 16_384, 14_000);
    // At 14 s, part 16 (due in 2 s) would come too late from it: part 18 is asked.
    let next = p.next(14_000, &mut rng());
    assert_eq!(next[0].first, 18, "{next:?}");
    // A peer known to answer fast is asked for the part due soonest.
    p.add_peer(peer(2));
    p.set_peer_have(peer(2), full(60), 14_000);
    let config = PickerConfig {
        peer_total_slots: 2,
        ..config
    };
    p.config = config;
    let more = p.next(14_000, &mut rng());
    assert_eq!(
        (more[0].first, more[0].source),
        (15, Source::Peer(peer(2))),
        "{more:?}"
    );
}

#[test]
fn a_peer_that_answers_fast_is_asked_for_a_part_due_sooner_than_an_unknown_one() {
    let (mut p, _) = one_peer_asked_at_a_time();
    let to_peer = |reqs: Vec<Request>| -> Vec<u32> {
        reqs.iter()
            .filter(|r| r.source == Source::Peer(peer(1)))
            .map(|r| r.first)
            .collect()
    };
    // Its answer time unknown: part 11, due in 0.3 s, is not asked of it (`peer_min_lead_ms`
    // is 1 s); part 12 is.
    let first = p.next(10_700, &mut rng());
    assert_eq!(to_peer(first.clone()), [12], "{first:?}");
    // It answered in 20 ms (a peer on this machine): part 11, due in 0.28 s, is asked now.
    p.completed(first[0].id, 12, 1, 16_384, 10_720);
    assert_eq!(to_peer(p.next(10_720, &mut rng())), [11]);
}

#[test]
fn deadlines_order_and_urgent_parts_may_come_from_the_origin() {
    let d = Deadlines::Linear {
        start_ms: 10_000,
        per_part_ms: 1000.0,
    };
    let mut p = Picker::new(Bitfield::new(50), d.clone(), PickerConfig::default(), 1);
    p.add_peer(peer(1));
    p.set_peer_have(peer(1), full(50), 0);
    // At t=8000 parts 0..=5 are due within 3 s; the peer takes the first ones in order.
    let reqs = p.next(8_000, &mut rng());
    let peer_reqs: Vec<_> = reqs.iter().filter(|r| r.source != Source::Origin).collect();
    assert_eq!((peer_reqs[0].first, peer_reqs[0].count), (0, 2));
    assert_eq!(
        (peer_reqs[1].first, peer_reqs[1].count),
        (2, 2),
        "then the next in order: the last part waits for its turn"
    );
    assert_eq!(peer_reqs.len(), 2, "two asks at a time per peer");
    // Nothing is lacking at any peer, and parts are in flight in time: no origin.
    assert!(reqs.iter().all(|r| r.source != Source::Origin), "{reqs:?}");
    // The peer is slow: after 1 s the urgent parts are asked of the origin too.
    let again = p.next(9_100, &mut rng());
    assert!(
        again
            .iter()
            .any(|r| r.source == Source::Origin && r.first == 0),
        "{again:?}"
    );
}

#[test]
fn a_later_entry_waits_for_its_window_and_busy_peers_are_not_faulted() {
    // The next entry starts in 60 s: nothing of it is urgent yet, not even the parts the
    // stream reads first, and peers are asked only for what is due within the window.
    let d = Deadlines::Linear {
        start_ms: 60_000,
        per_part_ms: 1000.0,
    };
    let mut p = Picker::new(Bitfield::new(50), d.clone(), PickerConfig::default(), 1);
    p.add_peer(peer(1));
    p.set_peer_have(peer(1), full(50), 0);
    assert!(
        p.next(2_000, &mut rng()).is_empty(),
        "too early for anything"
    );
    let window = PickerConfig::default().peer_ahead_ms;
    let reqs = p.next((60_000 - window + 1) as u64, &mut rng());
    assert_eq!(
        reqs.len(),
        1,
        "only the head: the last part waits for its time {reqs:?}"
    );
    assert!(reqs.iter().all(|r| r.source == Source::Peer(peer(1))));
    assert_eq!((reqs[0].first, reqs[0].count), (0, 2), "the head first");
    // A busy answer: a short pause for that peer, no fault, no ban.
    let now = (60_000 - window + 10) as u64;
    assert_eq!(p.failed(reqs[0].id, Failure::Busy, now), PeerVerdict::Fine);
    let state = &p.peers[&peer(1)];
    assert_eq!(state.failures, 0);
    assert_eq!(state.backoff_until, now + BUSY_BACKOFF_MS);
}

#[test]
fn a_listener_joining_mid_entry_does_not_fetch_what_has_aired() {
    // The entry started 20 parts ago.
    let d = Deadlines::Linear {
        start_ms: -20_000,
        per_part_ms: 1000.0,
    };
    let mut p = Picker::new(Bitfield::new(40), d.clone(), PickerConfig::default(), 1);
    assert!(
        p.next(0, &mut rng()).is_empty(),
        "waits for the tracker first"
    );
    let reqs = p.next(500, &mut rng());
    assert!(!reqs.is_empty());
    assert!(
        reqs.iter().any(|r| r.first == 0),
        "the head is needed: {reqs:?}"
    );
    for r in &reqs {
        assert!(
            r.first >= 19 || r.first + r.count <= 2,
            "{r:?} asks for parts that have aired"
        );
    }
    // With a peer holding everything, it starts at the play position, not at 0.
    p.add_peer(peer(1));
    p.set_peer_have(peer(1), full(40), 0);
    let reqs = p.next(501, &mut rng());
    let first_peer = reqs.iter().find(|r| r.source != Source::Origin).unwrap();
    assert!(first_peer.first >= 19, "{first_peer:?}");

    // Live, with peers holding everything: the first part (the head) before the play
    // position, and no other part that has aired, until the stream says it needs one
    // (a head longer than a part): then that part comes first.
    let mut p = Picker::new(Bitfield::new(40), d.clone(), PickerConfig::live(), 1);
    for i in 1..=6 {
        p.add_peer(peer(i));
        p.set_peer_have(peer(i), full(40), 0);
    }
    p.set_tracker_answered();
    let reqs = p.next(1_000, &mut rng());
    let head = reqs.iter().find(|r| r.first == 0).expect("the head");
    assert!(
        reqs.iter().all(|r| r.first == 0 || r.first >= 21),
        "only the head of what has aired: {reqs:?}"
    );
    p.set_wanted(vec![1]);
    p.completed(head.id, 0, 1, 16_384, 1_500);
    let more = p.next(1_500, &mut rng());
    assert_eq!(more.len(), 1, "{more:?}");
    assert_eq!((more[0].first, more[0].count), (1, 1), "{more:?}");
}

#[test]
fn a_listener_tuning_in_asks_for_the_part_playing_now_if_others_can_spare_it() {
    // The entry started 20 parts (20 s) ago: part 21 plays from 1 s to 2 s.
    let d = Deadlines::Linear {
        start_ms: -20_000,
        per_part_ms: 1000.0,
    };
    let tuned = |holders: &[u8], now: u64| {
        let mut p = Picker::new(Bitfield::new(40), d.clone(), PickerConfig::live(), 1);
        for i in 1..=6 {
            p.add_peer(peer(i));
            let mut bits = full(40);
            if !holders.contains(&i) {
                bits = Bitfield::new(40);
                for part in 23..40 {
                    bits.set(part);
                }
            }
            p.set_peer_have(peer(i), bits, 0);
        }
        p.set_tracker_answered();
        let asked: Vec<u32> = p
            .next(now, &mut rng())
            .iter()
            .filter(|r| r.source != Source::Origin)
            .map(|r| r.first)
            .collect();
        asked
    };
    // At 1.2 s part 21 plays on 0.8 s: asked, though it is due sooner than any ask made
    // once the listener plays (1 s ahead).
    let asked = tuned(&[1, 2, 3, 4], 1_200);
    assert!(asked.contains(&21), "{asked:?}");
    // Held by three peers only (`join_min_holders` is 4 live): their uplinks are spared.
    let asked = tuned(&[1, 2, 3], 1_200);
    assert!(!asked.contains(&21) && !asked.contains(&22), "{asked:?}");
    // Too little of part 21 left (0.4 s): only part 22 on.
    let asked = tuned(&[1, 2, 3, 4], 1_600);
    assert!(!asked.contains(&21) && asked.contains(&22), "{asked:?}");
    // After the first 3 s a listener is playing: nothing due within a second is asked
    // (the head, part 0, is needed whenever it comes).
    let asked = tuned(&[1, 2, 3, 4, 5, 6], 3_500);
    assert!(asked.iter().all(|&p| p == 0 || p >= 25), "{asked:?}");
}
