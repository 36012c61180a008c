//! Runs of whole scenarios: what the simulator says of a few settings.

use super::*;
use crate::outcome::quantile;

/// One listener who hears a 30 s entry's start as it arrives (a burst after the
/// schedule), for 30 s.
fn alone(origin_x: f64) -> Scenario {
    Scenario {
        listeners: 1,
        origin_x,
        entry_s: 30,
        start_ago_s: 4,
        listen_s: 30,
        ..Scenario::default()
    }
}

#[test]
fn a_listener_alone_fetches_the_entry_on_air_and_the_next_and_hears_everything() {
    let o = run(&alone(10.0)).unwrap();
    // The entry, and most of the next before it leaves.
    let entry = 30.0 * 16_000.0 * WIRE;
    let copies = o.origin_bytes as f64 / entry;
    assert!((1.5..=2.0).contains(&copies), "{copies}: {}", o.summary());
    assert_eq!(o.peer_bytes, 0);
    assert_eq!(o.silence_ms, [0], "{}", o.summary());
    assert!(o.startup_ms[0] < 800 + 1_500, "{}", o.summary());
    assert_eq!(o.listened_ms, [30_000]);
    // Every part it played came in time: 28 of them (the first two before its sound).
    assert!(o.parts.len() >= 25, "{}", o.parts.len());
    assert!(o
        .parts
        .iter()
        .all(|p| p.on_time == 1 && p.late + p.missed == 0));
}

#[test]
fn an_origin_slower_than_the_bitrate_is_heard_as_silence() {
    let o = run(&alone(0.8)).unwrap();
    assert!(o.silence_ms[0] > 5_000, "{}", o.summary());
    // It starts late, and the parts it then hears as silence came late or never.
    let lost: usize = o.parts.iter().map(|p| p.late + p.missed).sum();
    assert!(lost >= 5, "{lost}");
    assert!(o.parts.iter().all(|p| p.listeners == 1
        && p.first_s.is_none_or(|f| f > 0.0)
        && p.holders <= 1
        && p.first_left_s.is_none()));
}

#[test]
fn listeners_share_what_the_origin_sends_and_a_seed_gives_the_same_run() {
    let s = Scenario {
        listeners: 8,
        ..alone(4.0)
    };
    let (a, b) = (run(&s).unwrap(), run(&s).unwrap());
    assert_eq!(a.summary(), b.summary(), "deterministic");
    assert!(a.peer_bytes > a.origin_bytes, "{}", a.summary());
    assert!(a.origin_copies() < 2.5, "{}", a.summary());
}

#[test]
fn with_a_burst_a_joiner_has_its_prebuffer_at_once_from_what_others_hold() {
    // Listeners 3 s apart with uplinks to spare, set up at once: each joiner's burst is
    // held by those before it, and its player has 4 s of audio (the harness's 64 KiB)
    // within a second and a half. Without a burst it waits for real time to bring it.
    let s = Scenario {
        listeners: 8,
        arrivals: Arrivals::Fixed(3_000),
        uplinks_x: vec![10.0],
        pace: Pace::Link,
        setup_ms: 0,
        ..alone(4.0)
    };
    let with = run(&s).unwrap();
    let joiners = &with.startup_ms[1..];
    assert!(joiners.iter().all(|&ms| ms < 1_500), "{}", with.summary());
    let without = run(&Scenario { burst_ms: 0, ..s }).unwrap();
    assert!(
        without.startup_ms[1..].iter().all(|&ms| ms >= 4_000),
        "{}",
        without.summary()
    );
}

#[test]
fn past_fifty_members_the_tracker_names_a_sample_and_everyone_still_plays() {
    // 120 listeners, ten a second: each announce names 50 of them, the eight eldest and
    // 42 others, as the tracker does. Each starts, almost all of it from peers. (Naming 50
    // at random, each listener saw other owners at each announce: 3.4 copies, 15 s of
    // silence each.)
    let s = Scenario {
        listeners: 120,
        arrivals: Arrivals::Fixed(100),
        ..alone(4.0)
    };
    let o = run(&s).unwrap();
    assert!(
        o.startup_ms.iter().all(|&ms| ms < 20_000),
        "{}",
        o.summary()
    );
    assert!(o.peer_bytes > 10 * o.origin_bytes, "{}", o.summary());
}

#[test]
fn under_churn_newcomers_replace_leavers_and_all_play_across_entry_changes() {
    // Ten listeners a second apart, 20 s into a station; from the last arrival, every 4 s the
    // one here longest leaves, its answers cut off, and a newcomer comes. Everyone
    // starts; asks to a leaver go elsewhere, and newcomers start sooner than the crowd
    // did.
    let s = Scenario {
        listeners: 10,
        listen_s: 40,
        churn_ms: 4_000,
        uplinks_x: vec![4.0],
        ..Scenario::default()
    };
    let o = run(&s).unwrap();
    assert_eq!(o.startup_ms.len(), 10 + 9, "{}", o.summary());
    assert!(
        o.startup_ms.iter().all(|&ms| ms < 15_000),
        "{:?}",
        o.startup_ms
    );
    let (crowd, newcomers) = o.startup_ms.split_at(10);
    assert!(
        quantile(newcomers, 0.5) < quantile(crowd, 0.5),
        "{:?}",
        o.startup_ms
    );
    assert!(
        o.listened_ms[..9].iter().all(|&ms| ms < 40_000),
        "{:?}",
        o.listened_ms
    );
    // Each hears more than half its stay (what churn costs is the matrix's figure).
    for (silent, listened) in o.silence_ms.iter().zip(&o.listened_ms) {
        assert!(
            silent * 2 < *listened,
            "{silent} of {listened}: {}",
            o.summary()
        );
    }
}

#[test]
fn in_a_crowd_gathering_fast_only_the_eldest_ask_the_origin() {
    // 70 listeners joining 33 a second: the tracker's answers are full, so each knows
    // the eldest and some of the rest, and places itself among them by its own list.
    // Were a place past the eldest given a role, dozens would take it (each first part
    // of a cold unit fetched by up to eight listeners: 3.6 copies for 200 of them).
    let s = Scenario {
        listeners: 70,
        arrivals: Arrivals::Fixed(30),
        ..Scenario::default()
    };
    let o = run(&s).unwrap();
    for (class, a) in o.origin_askers.iter().enumerate() {
        assert_eq!(a.by_eldest, a.asks, "class {class}: {a:?}");
    }
    assert!(o.origin_copies() < 1.6, "{}", o.summary());
}

#[test]
fn owners_that_leave_hand_their_blocks_to_the_members_present() {
    // The harness's churn, smaller: every 5 s the eldest leaves, and the eldest own the
    // origin's blocks. A block whose owner left before it aired is the next owner's among
    // those present; counted a member while asks to it were in flight, the one gone kept
    // it, and most listeners heard its parts as silence (decision 053).
    // Announcing every 2 s, so that members learn of a departure soon: with the node's
    // 10 s, 4 parts are missed by most here while they have not learnt it yet (decision
    // 059, "What is left").
    let s = Scenario {
        listeners: 16,
        listen_s: 70,
        churn_ms: 5_000,
        announce_ms: 2_000,
        ..Scenario::default()
    };
    let o = run(&s).unwrap();
    // A first holder that left did so after it got the part and before the part aired.
    for p in &o.parts {
        if let (Some(left), Some(first)) = (p.first_left_s, p.first_s) {
            assert!(first <= left && left < p.heard_s, "{p:?}");
        }
    }
    // After the first listeners' cold start (their first seconds are a matter of their own).
    let missed_by_most = o
        .parts
        .iter()
        .filter(|p| p.heard_s > 20.0 && p.missed * 2 > p.listeners)
        .count();
    assert_eq!(missed_by_most, 0, "{}", o.summary());
}
