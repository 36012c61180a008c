//! Tests of the picker: which member owns a block, seeds a cold entry or rescues a part.

use super::*;
use crate::picker::ownership::{balanced_rank, score};

#[test]
fn only_the_owner_and_its_backups_rescue_from_the_origin() {
    // Part 0 is due at 3 s; no peer holds anything yet.
    let d = Deadlines::Linear {
        start_ms: 3_000,
        per_part_ms: 1000.0,
    };
    let me = 1u64;
    let rescues = |backups: u16, members_before: usize, now: u64| {
        let ahead: Vec<u64> = (2..)
            .filter(|m| score(*m, 0) > score(me, 0))
            .take(members_before)
            .collect();
        let behind: Vec<u64> = (2..)
            .filter(|m| score(*m, 0) < score(me, 0))
            .take(3)
            .collect();
        let config = PickerConfig {
            rescue_backups: backups,
            ..PickerConfig::live()
        };
        let mut p = Picker::new(Bitfield::new(20), d.clone(), config, me);
        for (i, m) in ahead.iter().chain(&behind).enumerate() {
            p.add_peer(peer(i as u8 + 1));
            p.set_membership(peer(i as u8 + 1), Some((*m, u64::MAX)));
        }
        p.set_tracker_answered();
        p.next(now, &mut rng())
            .iter()
            .filter(|r| r.source == Source::Origin && r.first < 4)
            .count()
    };
    let rescues_of_block_0 = |members_before, now| rescues(2, members_before, now);
    // With two backups: the owner fetches its block ahead of time; the first backup from
    // 3 s before, the second from 2 s before; the fourth member never (it waits).
    assert_eq!(rescues_of_block_0(0, 600), 1, "the owner");
    assert_eq!(rescues_of_block_0(1, 600), 1, "first backup, 2.4 s before");
    assert_eq!(
        rescues_of_block_0(2, 600),
        0,
        "second backup: not yet at 2.4 s"
    );
    assert_eq!(rescues_of_block_0(2, 1_100), 1, "second backup at 1.9 s");
    assert_eq!(rescues_of_block_0(3, 2_900), 0, "the rest never");
    // Live: one backup; the second member after the owner never rescues.
    assert_eq!(PickerConfig::live().rescue_backups, 1);
    assert_eq!(rescues(1, 1, 600), 1, "the backup");
    assert_eq!(rescues(1, 2, 2_900), 0, "no second backup");
}

#[test]
fn a_member_whose_start_is_unknown_owns_nothing_until_it_is_known() {
    // The tracker named a member but not when it started: it is not counted among the
    // settled members, so the blocks this node owns are the same as without it.
    let owned = |unknown: bool| -> Vec<bool> {
        let (hash, started) = member(0);
        let mut p = Picker::new(Bitfield::new(400), ONE_A_SECOND, PickerConfig::live(), hash);
        p.set_started(started, EPOCH);
        for o in 1..3u64 {
            p.add_peer(peer(o as u8));
            p.set_membership(peer(o as u8), Some(member(o)));
        }
        if unknown {
            p.add_peer(peer(9));
            p.set_membership(peer(9), Some((member_hash("m9"), u64::MAX)));
        }
        (0..100).map(|b| p.owns(b * 4)).collect()
    };
    let without = owned(false);
    assert!(without.iter().any(|&o| o) && !without.iter().all(|&o| o));
    assert_eq!(owned(true), without);
}

/// The owner of each of the first 50 blocks (4 parts, due one a second from `EPOCH`) as
/// every member of `members` (started a second apart, see `member`) sees it, knowing the
/// others: exactly one must own each block.
fn owner_map(config: PickerConfig, members: &[u64]) -> Vec<u64> {
    owners_of((0..50).map(|b| b * 4), config, members, 0)
}

/// The owner of each of `parts` (of 200, due one a second from `EPOCH`) as every member
/// of `members` sees it: exactly one must own each. With `skew_ms`, member `i`'s own clock
/// is `i * skew_ms` wrong, and it learns when it joined from the tracker (`set_joined`).
fn owners_of(
    parts: impl Iterator<Item = u32> + Clone,
    config: PickerConfig,
    members: &[u64],
    skew_ms: i64,
) -> Vec<u64> {
    let owners_seen_by = |me: u64| -> Vec<bool> {
        let (hash, started) = member(me);
        let mut p = Picker::new(Bitfield::new(200), ONE_A_SECOND, config, hash);
        if skew_ms == 0 {
            p.set_started(started, EPOCH);
        } else {
            let wrong = started.saturating_add_signed(skew_ms * me as i64);
            p.set_started(wrong, EPOCH);
            p.set_joined(started);
        }
        for &o in members.iter().filter(|&&o| o != me) {
            p.add_peer(peer(o as u8 + 1));
            p.set_membership(peer(o as u8 + 1), Some(member(o)));
        }
        parts.clone().map(|part| p.owns(part)).collect()
    };
    let views: Vec<(u64, Vec<bool>)> = members.iter().map(|&me| (me, owners_seen_by(me))).collect();
    parts
        .enumerate()
        .map(|(i, part)| {
            let owners: Vec<u64> = views
                .iter()
                .filter(|(_, v)| v[i])
                .map(|(m, _)| *m)
                .collect();
            assert_eq!(owners.len(), 1, "part {part}: one owner, not {owners:?}");
            owners[0]
        })
        .collect()
}

#[test]
fn the_first_members_own_the_blocks_and_newcomers_change_nothing() {
    // Ten members who joined a second apart; parts due one a second from the picker's
    // time 0, which is `EPOCH` in Unix ms. Blocks are 4 parts; live, a block is owned by
    // one of the first 6 members that had been there 5 s when it is taken (25 s before
    // it is due), or, when none had (the entry was joined cold), when it is taken late
    // (12 s before it is due), or by the first member when none had even then.
    // Each arrival seeds a whole block here (`cold_seed_parts` 4; one part each is
    // `a_cold_entry_is_seeded_a_part_per_arrival`).
    let blocks = PickerConfig {
        cold_seed_parts: 4,
        ..PickerConfig::live()
    };
    let owner_map = |members: &[u64]| owner_map(blocks, members);
    let ten: Vec<u64> = (0..10).collect();
    let owners = owner_map(&ten);
    // Block b is taken at 4b - 25 s; members joined by 4b - 30 s had settled. Nobody
    // had for blocks 0-7 (the cold half minute): the first three are the first's, and
    // each next one is the next arrival's (member 1's, 2's, ...), as it started 6 s
    // before the block is due.
    assert!(
        owners[..3].iter().all(|&o| o == 0),
        "the first blocks: the first alone"
    );
    assert_eq!(owners[3..8], [1, 2, 3, 4, 5], "then one block per arrival");
    assert!(owners.iter().all(|&o| o < 6), "only the first six own");
    let distinct: std::collections::HashSet<_> = owners[9..].iter().collect();
    assert!(
        distinct.len() >= 4,
        "later blocks spread over them: {distinct:?}"
    );
    // A newcomer is never among the first six: nobody's blocks move.
    let eleven: Vec<u64> = (0..11).collect();
    assert_eq!(owner_map(&eleven), owners);
    // The first member leaves (the tracker stops naming it): its blocks pass on, and
    // the cold blocks to the next arrival each.
    let rest: Vec<u64> = (1..10).collect();
    let after = owner_map(&rest);
    assert!(
        after[..3].iter().all(|&o| o == 1),
        "now the first is member 1"
    );
    assert_eq!(after[3..8], [2, 3, 4, 5, 6]);
    // Its blocks pass to the new sixth member (6), and as shares are rebalanced some
    // others move too; the shares stay even.
    assert!(after[8..].contains(&6), "the new sixth member owns blocks");
    for (map, six) in [(&owners, 0..6), (&after, 1..7)] {
        let counts: Vec<usize> = six
            .map(|m| map[8..].iter().filter(|&&o| o == m).count())
            .collect();
        let (fewest, most) = (counts.iter().min(), counts.iter().max());
        assert!(
            most.zip(fewest).is_some_and(|(a, b)| a - b <= 2),
            "blocks 8-49 shared evenly: {counts:?}"
        );
    }
}

#[test]
fn a_member_s_place_is_when_the_tracker_first_saw_it_whatever_its_clock_says() {
    let config = PickerConfig::live();
    let ten: Vec<u64> = (0..10).collect();
    let owners = owner_map(config, &ten);
    for skew_ms in [-3_600_000, -7_000, 90_000] {
        assert_eq!(
            owners_of((0..50).map(|b| b * 4), config, &ten, skew_ms),
            owners,
            "clocks {skew_ms} ms apart each"
        );
    }
}

#[test]
fn blocks_are_shared_evenly_among_owners() {
    // Rendezvous alone gave one of six owners 5 of 15 blocks (benchmark): with shares,
    // each owner has 2 or 3, every block has one owner, and the ranks after it are a
    // strict order of the others (the backups).
    for set in 0..200u64 {
        let owners: Vec<(u64, u64)> = (0..6)
            .map(|i| (i, member_hash(&format!("set{set}-m{i}"))))
            .collect();
        let mut counts = vec![0u32; owners.len()];
        let mut loads_of: Vec<HashMap<u64, u32>> = vec![HashMap::new(); owners.len()];
        for block in 0..15 {
            let mut ranks: Vec<u16> = owners
                .iter()
                .zip(loads_of.iter_mut())
                .map(|(m, loads)| balanced_rank(&owners, block, m.1, loads).0)
                .collect();
            let owner = ranks.iter().position(|&r| r == 0).expect("an owner");
            counts[owner] += 1;
            ranks.sort_unstable();
            assert_eq!(ranks, [0, 1, 2, 3, 4, 5], "set {set} block {block}");
        }
        assert!(
            counts.iter().all(|&c| (2..=3).contains(&c)),
            "set {set}: {counts:?}"
        );
        // A member that is not an owner has no rank.
        let outsider = member_hash("outsider");
        assert_eq!(
            balanced_rank(&owners, 0, outsider, &mut HashMap::new()).0,
            u16::MAX
        );
    }
}

#[test]
fn a_cold_entry_is_seeded_a_part_per_arrival() {
    // Live, each arrival seeds one part: after the first member's three blocks
    // (parts 0-11), part 12 is member 1's, part 13 member 2's, and so on while members
    // came; the rest of the cold half minute (due before 30 s) falls back to its block's
    // owners among those settled 17 s before it is due, and later blocks are owned as
    // before.
    let one = PickerConfig::live();
    let ten: Vec<u64> = (0..10).collect();
    let owners = owners_of(0..48, one, &ten, 0);
    assert!(owners[..12].iter().all(|&o| o == 0), "{owners:?}");
    assert_eq!(owners[12..21], [1, 2, 3, 4, 5, 6, 7, 8, 9], "one part each");
    for block in [&owners[21..24], &owners[24..28], &owners[28..32]] {
        assert!(block.iter().all(|&o| o == block[0] && o < 6), "{owners:?}");
    }
    let blocks = owner_map(
        PickerConfig {
            cold_seed_parts: 4,
            ..one
        },
        &ten,
    );
    for part in 32..48 {
        assert_eq!(owners[part], blocks[part / 4], "part {part}");
    }
    // Arrivals each a fraction of a second too late for the part they would have
    // seeded (a lead of 11.5 s: member 1, at 1 s, had to come by 0.5 s for part 12):
    // each seeds the next one instead, and only part 12 is left to its block's owners.
    let late = PickerConfig {
        cold_owner_lead_ms: 11_500,
        ..one
    };
    let owners = owners_of(0..48, late, &ten, 0);
    assert!(owners[..12].iter().all(|&o| o == 0), "{owners:?}");
    assert_eq!(owners[13..22], [1, 2, 3, 4, 5, 6, 7, 8, 9], "{owners:?}");
    // Each owner's origin ask stays within its part.
    let (hash, started) = member(3);
    let mut p = Picker::new(Bitfield::new(60), ONE_A_SECOND, one, hash);
    p.set_started(started, EPOCH);
    for o in ten.iter().filter(|&&o| o != 3) {
        p.add_peer(peer(*o as u8 + 1));
        p.set_membership(peer(*o as u8 + 1), Some(member(*o)));
    }
    p.set_tracker_answered();
    let asks = p.next(3_000, &mut rng());
    let origin: Vec<(u32, u32)> = asks
        .iter()
        .filter(|q| q.source == Source::Origin)
        .map(|q| (q.first, q.count))
        .collect();
    assert_eq!(origin, [(14, 1)], "{asks:?}");
}

#[test]
fn a_cold_entry_s_later_blocks_are_taken_late() {
    // The first listener, alone, joins an entry whose parts are due one a second from its
    // start: it takes its first three blocks at once, the next only 7 s before they are
    // due (the members they were for did not come), and every block in time.
    let mut p = Picker::new(
        Bitfield::new(60),
        ONE_A_SECOND,
        PickerConfig {
            cold_seed_parts: 4,
            ..PickerConfig::live()
        },
        member_hash("m0"),
    );
    p.set_started(EPOCH, EPOCH);
    p.set_tracker_answered();
    let mut r = rng();
    // Blocks of 4 parts: when each was first asked of the origin.
    let mut asked_at: HashMap<u32, u64> = HashMap::new();
    for t in (0..40_000).step_by(100) {
        for q in p.next(t, &mut r) {
            assert_eq!(q.source, Source::Origin);
            for part in q.first..q.first + q.count {
                asked_at.entry(part / 4).or_insert(t);
            }
            p.completed(q.id, q.first, q.count, 16384 * u64::from(q.count), t);
        }
    }
    assert!((0..3).all(|b| asked_at[&b] < 1_000), "{asked_at:?}");
    // Blocks 3-7 would have been taken 25 s ahead before anyone was there, and each
    // was for a member who had to start 9 s before it is due.
    assert_eq!(asked_at[&3], 5_000, "due at 12 s");
    assert_eq!(asked_at[&4], 9_000);
    assert_eq!(asked_at[&5], 13_000);
    assert_eq!(asked_at[&6], 17_000);
    assert_eq!(asked_at[&7], 21_000);
    // Block 8 is taken 25 s ahead (at 7 s), when the members there by 2 s own it.
    assert_eq!(asked_at[&8], 7_000);
    assert_eq!(asked_at[&9], 11_000);
    assert_eq!(asked_at.len(), 15, "the whole entry");
    for (b, t) in &asked_at {
        assert!(*t <= u64::from(*b) * 4_000, "block {b} asked in time");
    }
}

#[test]
fn a_cold_entry_s_next_block_is_taken_by_the_next_listener_at_once() {
    // The second listener joins 1 s after the first, whose entry's parts are due one a
    // second from the first's start. Block 3 (due at 12 s) is the second's: it takes it
    // from the origin as soon as the first moments are over, 11 s ahead; the first,
    // knowing the second, leaves it alone and takes only its own three blocks.
    let (first, second) = (member_hash("m0"), member_hash("m1"));
    // Origin asks (block, picker ms) in a picker's first 3 s; it starts `late` ms after
    // the first, and its time 0 is then.
    let origin_asks = |me: u64, late: u64, other: (u64, u64)| {
        let d = Deadlines::Linear {
            start_ms: -(late as i64),
            per_part_ms: 1000.0,
        };
        let mut p = Picker::new(Bitfield::new(60), d.clone(), PickerConfig::live(), me);
        p.set_started(EPOCH + late, EPOCH + late);
        p.add_peer(peer(9));
        p.set_membership(peer(9), Some(other));
        p.set_tracker_answered();
        let mut r = rng();
        let mut asked = Vec::new();
        for t in (0..3_000).step_by(100) {
            for q in p.next(t, &mut r) {
                if q.source == Source::Origin {
                    asked.push((q.first / 4, t));
                }
                p.completed(q.id, q.first, q.count, 16384 * u64::from(q.count), t);
            }
        }
        asked
    };
    let asked = origin_asks(second, 1_000, (first, EPOCH));
    assert_eq!(asked.first().map(|a| a.0), Some(3), "{asked:?}");
    assert!(asked[0].1 <= 600, "at once: {asked:?}");
    assert!(asked.iter().all(|a| a.0 == 3), "only its block: {asked:?}");
    let asked = origin_asks(first, 0, (second, EPOCH + 1_000));
    let blocks: Vec<u32> = asked.iter().map(|a| a.0).collect();
    assert_eq!(blocks, [0, 1, 2], "the first's own three: {asked:?}");
}

#[test]
fn members_split_the_origin_between_them() {
    // Three listeners that know each other's ids ask the origin for disjoint blocks.
    let ids = [member_hash("a"), member_hash("b"), member_hash("c")];
    let mut asked = std::collections::HashSet::new();
    for (i, me) in ids.iter().enumerate() {
        let mut p = Picker::new(
            Bitfield::new(400),
            Deadlines::None,
            PickerConfig::default(),
            *me,
        );
        for (j, other) in ids.iter().enumerate() {
            if i != j {
                p.add_peer(peer(j as u8 + 1));
                p.set_membership(peer(j as u8 + 1), Some((*other, u64::MAX)));
            }
        }
        let mut r = rng();
        let mut t = 1000;
        loop {
            let reqs = p.next(t, &mut r);
            let origin: Vec<_> = reqs.iter().filter(|q| q.source == Source::Origin).collect();
            if origin.is_empty() {
                break;
            }
            for q in origin {
                for part in q.first..q.first + q.count {
                    assert!(asked.insert(part), "part {part} asked twice");
                }
                p.completed(q.id, q.first, q.count, 16384, t);
            }
            t += 1; // no peer news, but not yet orphaned (2 s)
        }
    }
    assert_eq!(asked.len(), 400, "together they cover the file");
}

#[test]
fn a_first_member_that_never_sends_owns_nothing_once_found_silent() {
    // Members 0-3 joined a cold entry a second apart (`member`; its parts due one a second
    // from `EPOCH`). Member 0 never sends anything: no bitfield, no part; each of the others
    // finds it silent 5 s after it started following it (`Neighbours`' `SILENT_AFTER`). They
    // trade, every ask landing at once. From then on each part they play comes in time, from
    // the origin once.
    let parts = 40u32;
    let live = [1u64, 2, 3];
    let mut pickers: Vec<Picker> = live
        .iter()
        .map(|&i| {
            let (hash, started) = member(i);
            let d = Deadlines::Linear {
                start_ms: -1000 * i as i64,
                per_part_ms: 1000.0,
            };
            let mut p = Picker::new(Bitfield::new(parts), d.clone(), PickerConfig::live(), hash);
            p.set_started(started, started);
            for o in (0..4).filter(|&o| o != i) {
                p.add_peer(peer(o as u8 + 1));
                p.set_membership(peer(o as u8 + 1), Some(member(o)));
            }
            p.set_tracker_answered();
            p
        })
        .collect();
    let mut r = rng();
    let mut from_origin = vec![0u32; parts as usize];
    let mut held_at = vec![vec![None::<u64>; parts as usize]; live.len()];
    for g in (0..45_000u64).step_by(50) {
        for (k, &i) in live.iter().enumerate() {
            let Some(now) = g.checked_sub(1000 * i) else {
                continue;
            };
            if now == 5_000 {
                pickers[k].set_silent(peer(1));
            }
            let asks = pickers[k].next(now, &mut r);
            if asks.is_empty() {
                continue;
            }
            for q in asks {
                if q.source == Source::Origin {
                    for part in q.first..q.first + q.count {
                        from_origin[part as usize] += 1;
                    }
                }
                pickers[k].completed(q.id, q.first, q.count, 16384 * u64::from(q.count), now);
                for part in q.first..q.first + q.count {
                    held_at[k][part as usize].get_or_insert(g);
                }
            }
            let have = pickers[k].have().clone();
            for (j, &o) in live.iter().enumerate() {
                if j != k {
                    let their_now = g.saturating_sub(1000 * o);
                    pickers[j].set_peer_have(peer(i as u8 + 1), have.clone(), their_now);
                }
            }
        }
    }
    // Member 3 finds member 0 silent at 8 s: from 9 s on every part comes in time, to each.
    for (k, held) in held_at.iter().enumerate() {
        for (part, at) in held.iter().enumerate().skip(9) {
            let at = at.unwrap_or_else(|| panic!("member {} lacks {part}", live[k]));
            assert!(
                at <= part as u64 * 1000,
                "member {}: part {part} at {at} ms",
                live[k]
            );
        }
    }
    assert!(
        from_origin[9..].iter().all(|&n| n == 1),
        "each part from the origin once: {from_origin:?}"
    );
}

#[test]
fn past_the_eldest_a_full_answer_names_no_role_is_given_by_place() {
    // Twenty members a second apart; the tracker's answers are full, so each knows the
    // eight eldest besides itself and only some of the rest (here every third). By its own
    // list, member 15 would be the ninth to arrive and seed the cold entry's ninth part,
    // as member 8 does: that part fetched twice, and every arrival after them doing the
    // same. Told its list is partial, each leaves the places past the eldest to the
    // block's owners: one owner for every part, all of them among the eldest.
    let views = |whole: bool| -> Vec<Vec<u32>> {
        (0..20u64)
            .map(|me| {
                let (hash, started) = member(me);
                let mut p =
                    Picker::new(Bitfield::new(200), ONE_A_SECOND, PickerConfig::live(), hash);
                p.set_started(started, EPOCH);
                let others: Vec<u64> = (0..20).filter(|&o| o != me).collect();
                for (i, &o) in others.iter().enumerate() {
                    if i < 8 || o % 3 == 0 {
                        p.add_peer(peer(o as u8 + 1));
                        p.set_membership(peer(o as u8 + 1), Some(member(o)));
                    }
                }
                p.set_members_whole(whole);
                (0..48).filter(|&part| p.owns(part)).collect()
            })
            .collect()
    };
    let owners_of = |views: &[Vec<u32>], part: u32| -> Vec<usize> {
        (0..views.len())
            .filter(|&m| views[m].contains(&part))
            .collect()
    };
    let believed = views(true);
    assert!(
        (12..48).any(|part| owners_of(&believed, part).len() > 1),
        "lists taken for whole: some part has several owners"
    );
    let told = views(false);
    for part in 0..48 {
        let owners = owners_of(&told, part);
        assert_eq!(owners.len(), 1, "part {part}: {owners:?}");
        assert!(owners[0] < 8, "part {part}: {owners:?}");
    }
}

#[test]
fn a_peer_gone_with_asks_in_flight_owns_nothing() {
    // Blocks owned by a member that left would be taken by nobody: the rest wait for it.
    let owned = |with_gone: bool| -> Vec<bool> {
        let (hash, started) = member(1);
        let mut p = Picker::new(Bitfield::new(400), ONE_A_SECOND, PickerConfig::live(), hash);
        p.set_started(started, EPOCH);
        p.add_peer(peer(2));
        p.set_membership(peer(2), Some(member(2)));
        if with_gone {
            p.add_peer(peer(9));
            p.set_membership(peer(9), Some(member(0)));
            p.set_peer_have(peer(9), full(400), 0);
            let asked = p.next(0, &mut rng());
            assert!(
                asked.iter().any(|r| r.source == Source::Peer(peer(9))),
                "{asked:?}"
            );
            p.remove_peer(peer(9));
        }
        (0..100).map(|b| p.owns(b * 4)).collect()
    };
    let without = owned(false);
    assert!(without.iter().any(|&o| o) && !without.iter().all(|&o| o));
    assert_eq!(owned(true), without);
}

/// Asks `p` for its requests at `now`, landing each at once; returns the parts asked of the
/// origin.
fn origin_asks_landed(p: &mut Picker, now: u64) -> Vec<u32> {
    let mut asked = Vec::new();
    loop {
        let requests = p.next(now, &mut rng());
        if requests.is_empty() {
            return asked;
        }
        for r in requests {
            if r.source == Source::Origin {
                asked.extend(r.first..r.first + r.count);
            }
            p.completed(r.id, r.first, r.count, 16384 * u64::from(r.count), now);
        }
    }
}

#[test]
fn a_block_dealt_anew_after_another_member_took_it_waits_while_that_member_stays() {
    // Eight members a second apart; blocks are dealt among the six eldest. The eldest
    // leaves and the blocks are dealt again among the next six: one that another member
    // took ahead (25 s before it is due) moves to this node. That member is passing it on:
    // this node takes it from the origin only as late as a cold entry's block (12 s before
    // it is due), not at once; at once when that member is gone too.
    let live = PickerConfig::live();
    let picker = |me: u64, now: u64| -> Picker {
        let mut p = Picker::new(Bitfield::new(400), ONE_A_SECOND, live, member(me).0);
        p.set_started(member(me).1, EPOCH);
        for o in (0..8).filter(|&o| o != me) {
            p.add_peer(peer(o as u8 + 1));
            p.set_membership(peer(o as u8 + 1), Some(member(o)));
        }
        p.set_tracker_answered();
        origin_asks_landed(&mut p, now);
        p.set_membership(peer(1), None);
        p
    };
    // Blocks taken ahead by now and not yet due within 12 s.
    let cases = (1..8u64).flat_map(|me| {
        (40..100u64).step_by(10).flat_map(move |now| {
            let first = (now as u32 + 12) / 4 + 1;
            (first..=(now as u32 + 25) / 4).map(move |b| (me, now * 1000, b))
        })
    });
    let found = cases.into_iter().find_map(|(me, now, b)| {
        let mut p = picker(me, now);
        let taker = p.taken_by.get(b as usize).copied().flatten()?;
        let moved = taker != member(0).0 && taker != member(me).0 && p.owns(b * 4);
        moved.then_some((me, now, b, taker))
    });
    let (me, now, b, taker) = found.expect("a block that moves to this node");
    let run = |taker_gone: bool| -> (Vec<u32>, Vec<u32>) {
        let mut p = picker(me, now);
        if taker_gone {
            let o = (0..8).find(|&o| member(o).0 == taker).unwrap();
            p.set_membership(peer(o as u8 + 1), None);
        }
        let at_once = origin_asks_landed(&mut p, now);
        let late = origin_asks_landed(&mut p, u64::from(b) * 4_000 - 12_000);
        (at_once, late)
    };
    let block: Vec<u32> = (b * 4..b * 4 + 4).collect();
    let (at_once, late) = run(false);
    assert!(!block.iter().any(|p| at_once.contains(p)), "{at_once:?}");
    assert!(block.iter().all(|p| late.contains(p)), "{late:?}");
    let (at_once, _) = run(true);
    assert!(block.iter().all(|p| at_once.contains(p)), "{at_once:?}");
}
