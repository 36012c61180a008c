//! Tests of `poll_timeout` against the picker itself: from any state, once `next` has asked
//! for all it will at `now`, it asks for nothing at any instant before `poll_timeout(now)`.

use proptest::prelude::*;

use super::*;

/// What a request in flight comes to.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Kept,
    Failed(Failure),
    InFlight,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => Just(Outcome::Kept),
        1 => Just(Outcome::Failed(Failure::Busy)),
        1 => Just(Outcome::Failed(Failure::TimedOut)),
        1 => Just(Outcome::Failed(Failure::NotHeld)),
        1 => Just(Outcome::Failed(Failure::BadData)),
        1 => Just(Outcome::Failed(Failure::Local)),
        3 => Just(Outcome::InFlight),
    ]
}

/// A picker in a state reached by asking and answering at random instants.
#[derive(Debug, Clone)]
struct Scenario {
    parts: u32,
    deadline_start: Option<i64>,
    live: bool,
    peers: Vec<(Vec<bool>, u64)>,
    my_start: u64,
    tracker_answered: bool,
    steps: Vec<(u64, Vec<Outcome>)>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        8u32..60,
        proptest::option::of(-40_000i64..30_000),
        any::<bool>(),
        proptest::collection::vec(
            (proptest::collection::vec(any::<bool>(), 60), 0u64..8),
            0..6,
        ),
        0u64..8,
        any::<bool>(),
        proptest::collection::vec(
            (0u64..4_000, proptest::collection::vec(outcome(), 0..12)),
            1..12,
        ),
    )
        .prop_map(
            |(parts, deadline_start, live, peers, my_start, tracker_answered, steps)| Scenario {
                parts,
                deadline_start,
                live,
                peers,
                my_start,
                tracker_answered,
                steps,
            },
        )
}

/// The picker of `s` at the end of its steps, and that instant.
fn play(s: &Scenario) -> (Picker, u64) {
    let deadlines = s
        .deadline_start
        .map_or(Deadlines::None, |start_ms| Deadlines::Linear {
            start_ms,
            per_part_ms: 1000.0,
        });
    let config = if s.live {
        PickerConfig::live()
    } else {
        PickerConfig::default()
    };
    let mut p = Picker::new(
        Bitfield::new(s.parts),
        deadlines.clone(),
        config,
        member(0).0,
    );
    p.set_started(member(s.my_start).1, EPOCH);
    for (i, (held, started)) in s.peers.iter().enumerate() {
        let addr = peer(i as u8 + 1);
        p.add_peer(addr);
        p.set_membership(addr, Some(member(*started + 1)));
        let mut have = Bitfield::new(s.parts);
        for part in 0..s.parts {
            if held[part as usize] {
                have.set(part);
            }
        }
        p.set_peer_have(addr, have, 0);
    }
    if s.tracker_answered {
        p.set_tracker_answered();
    }
    let mut now = 0;
    let mut rng = rng();
    for (wait, outcomes) in &s.steps {
        now += wait;
        let asked = p.next(now, &mut rng);
        for (r, o) in asked.iter().zip(outcomes.iter().cycle()) {
            match o {
                Outcome::Kept => {
                    p.completed(
                        r.id,
                        r.first,
                        r.count,
                        u64::from(r.count) * 16_384,
                        now + 300,
                    );
                }
                Outcome::Failed(f) => {
                    p.failed(r.id, *f, now + 300);
                }
                Outcome::InFlight => {}
            }
        }
        now += 300;
    }
    // Everything `next` asks for at `now`.
    for _ in 0..20 {
        if p.next(now, &mut rng).is_empty() {
            break;
        }
    }
    (p, now)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn nothing_is_asked_before_the_picker_said_to_wake_it(
        s in scenario(),
        probes in proptest::collection::vec(0.0f64..1.0, 1..6),
    ) {
        let (mut p, mut now) = play(&s);
        // Several wakes in a row: each interval until the next wake asks for nothing.
        for _ in 0..6 {
            let wake = p.poll_timeout(now);
            prop_assert!(wake.is_none_or(|w| w > now));
            // Without a timeout, nothing changes by the clock: probe the next minute.
            let until = wake.unwrap_or(now + 60_000);
            let mut instants: Vec<u64> = probes
                .iter()
                .map(|f| now + 1 + ((until - now - 1) as f64 * f) as u64)
                .collect();
            instants.push(until - 1);
            for t in instants.into_iter().filter(|&t| t > now && t < until) {
                let asked = p.clone().next(t, &mut rng());
                prop_assert!(asked.is_empty(), "at {} (woken at {:?}, now {}): {:?}", t, wake, now, asked);
            }
            let Some(wake) = wake else { break };
            now = wake;
            for _ in 0..20 {
                if p.next(now, &mut rng()).is_empty() {
                    break;
                }
            }
        }
    }
}

#[test]
fn a_complete_download_never_needs_waking() {
    let mut p = Picker::new(full(4), ONE_A_SECOND, PickerConfig::live(), 1);
    assert_eq!(p.poll_timeout(0), None);
}

#[test]
fn a_listener_is_woken_when_its_next_part_enters_the_trading_window() {
    let mut p = Picker::new(Bitfield::new(100), ONE_A_SECOND, PickerConfig::live(), 1);
    p.add_peer(peer(1));
    p.set_peer_have(peer(1), full(100), 0);
    p.set_started(EPOCH, EPOCH);
    for _ in 0..20 {
        if p.next(10_000, &mut rng()).is_empty() {
            break;
        }
    }
    let wake = p.poll_timeout(10_000).unwrap();
    assert!(wake > 10_000 && wake <= 11_000, "{wake}");
}
