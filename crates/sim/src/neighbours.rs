//! Whom each listener follows, as `follow.rs`'s `Neighbours` chooses.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::{addr, Download, ARRIVAL_MS, ROTATE_EVERY_MS};

/// Whom `d` (node `i`'s download) follows from `t`, as `Neighbours::tend` chooses:
/// arrivals the tracker's `answer` named (members it has known under `ARRIVAL_MS`;
/// `arrived`: when it first recorded each; `members`: the swarm's size) at once with a
/// chance of neighbours over members, one let go every `ROTATE_EVERY` for another, and more
/// at random among the peers it knows that are `present` while it follows fewer than `want`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tend(
    d: &mut Download,
    i: usize,
    answer: &[usize],
    arrived: &[u64],
    members: usize,
    t: u64,
    want: usize,
    present: impl Fn(usize) -> bool,
    rng: &mut StdRng,
) -> Tended {
    let mut tended = Tended::default();
    let others = members.saturating_sub(1);
    let chance = want as f64 / others.max(want).max(1) as f64;
    if t.saturating_sub(d.began) >= ARRIVAL_MS {
        for (&j, &arrived) in answer.iter().zip(arrived) {
            if j == i || d.follows.contains(&j) || t.saturating_sub(arrived) > ARRIVAL_MS {
                continue;
            }
            if d.considered.insert(j) && rng.random_bool(chance) {
                if d.follows.len() >= want {
                    tended.gone.extend(let_go_of_one(d, rng));
                }
                d.follows.push(j);
                tended.new.push(j);
            }
        }
    }
    // Among every peer it knows, as the node does (the picker's peers), not the last answer:
    // that names the eldest every time, and they would be followed by many times their share.
    // One that left is skipped (the node's attempt to follow it fails at once).
    let mut candidates: Vec<usize> = d
        .learned
        .iter()
        .copied()
        .filter(|j| *j != i && present(*j) && !d.follows.contains(j))
        .collect();
    candidates.shuffle(rng);
    if d.follows.len() >= want && t >= d.last_rotation + ROTATE_EVERY_MS && !candidates.is_empty() {
        d.last_rotation = t;
        tended.gone.extend(let_go_of_one(d, rng));
    }
    for j in candidates {
        if d.follows.len() >= want {
            break;
        }
        d.follows.push(j);
        tended.new.push(j);
    }
    tended
}

/// Whom a listener began and stopped following.
#[derive(Default)]
pub(crate) struct Tended {
    pub(crate) new: Vec<usize>,
    pub(crate) gone: Vec<usize>,
}

fn let_go_of_one(d: &mut Download, rng: &mut StdRng) -> Option<usize> {
    if d.follows.is_empty() {
        return None;
    }
    let gone = d.follows.swap_remove(rng.random_range(0..d.follows.len()));
    d.picker.unfollow(addr(gone));
    Some(gone)
}
