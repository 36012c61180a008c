//! The simulator's tracker: each entry's swarm as the gateway keeps it (`tracker.rs`), its
//! answers, and what a listener does with one (`download/tracker.rs`, `Node`).

use std::cmp::Reverse;
use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::Rng;

use super::*;

/// The tracker's record of one entry's swarm, kept as members come and go, so an answer
/// reads it without sorting the swarm (a swarm may be 10,000).
#[derive(Default)]
pub(crate) struct Swarm {
    /// Present members by (first record, hash, index): the eldest first.
    pub(crate) by_since: Vec<(u64, u64, usize)>,
    /// Members whose announces said they are complete, in no order.
    complete: Vec<usize>,
}

impl Swarm {
    pub(crate) fn join(&mut self, key: (u64, u64, usize)) {
        let at = self.by_since.partition_point(|m| *m < key);
        self.by_since.insert(at, key);
    }

    pub(crate) fn leave(&mut self, key: (u64, u64, usize)) {
        if let Ok(at) = self.by_since.binary_search(&key) {
            self.by_since.remove(at);
        }
        if let Some(at) = self.complete.iter().position(|&j| j == key.2) {
            self.complete.swap_remove(at);
        }
    }
}

/// Adds up to `want` members of `pool` not `taken` to `chosen`, at random: all of them from a
/// small pool, else by drawing (a pool may be 10,000; an answer is 50).
fn sample_into(
    pool: &[usize],
    want: usize,
    taken: &mut HashSet<usize>,
    chosen: &mut Vec<usize>,
    rng: &mut StdRng,
) {
    if want == 0 || pool.is_empty() {
        return;
    }
    if pool.len() <= 4 * (want + taken.len()) {
        let mut free: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|j| !taken.contains(j))
            .collect();
        free.shuffle(rng);
        free.truncate(want);
        taken.extend(&free);
        chosen.extend(free);
        return;
    }
    let mut added = 0;
    // At most a quarter of the pool is taken here, so a draw lands on a free one 3 times in 4.
    while added < want {
        let j = pool[rng.random_range(0..pool.len())];
        if taken.insert(j) {
            chosen.push(j);
            added += 1;
        }
    }
}

impl Sim<'_> {
    /// Announces due by `t`, per entry: the tracker names that swarm's present members with
    /// when it first saw each (all of them, or `PEERS_PER_ANSWER` of a larger swarm: the
    /// eldest, complete holders, the rest at random), and a listener following fewer than its
    /// neighbours follows more, at random.
    pub(crate) fn announce(&mut self, t: u64) {
        let mut due: Vec<(usize, usize)> = Vec::new();
        while self.announces.peek().is_some_and(|a| a.0 .0 <= t) {
            let Some(Reverse((at, e, i))) = self.announces.pop() else {
                break;
            };
            let n = &self.nodes[i];
            if !n.gone
                && n.downloads[e]
                    .as_ref()
                    .is_some_and(|d| d.next_announce == at)
            {
                due.push((e, i));
            }
        }
        due.sort_unstable();
        for group in due.chunk_by(|a, b| a.0 == b.0) {
            let e = group[0].0;
            let who: Vec<usize> = group.iter().map(|g| g.1).collect();
            self.announce_entry(e, &who, t);
        }
    }

    /// The tracker's answer to `i` in entry `e`'s swarm, ascending: every other member, or of
    /// a larger swarm `PEERS_PER_ANSWER`: the eldest, then complete holders at random, then
    /// the rest at random (`tracker.rs`'s `pick`).
    fn answer(&mut self, e: usize, i: usize) -> Vec<usize> {
        let sw = &self.swarms[e];
        let others = sw
            .by_since
            .iter()
            .filter(|m| m.2 != i)
            .count()
            .min(PEERS_PER_ANSWER + 1);
        if others <= PEERS_PER_ANSWER {
            let mut all: Vec<usize> = sw
                .by_since
                .iter()
                .map(|m| m.2)
                .filter(|&j| j != i)
                .collect();
            all.sort_unstable();
            return all;
        }
        let mut chosen: Vec<usize> = sw
            .by_since
            .iter()
            .map(|m| m.2)
            .filter(|&j| j != i)
            .take(ELDEST_PER_ANSWER)
            .collect();
        let mut taken: HashSet<usize> = chosen.iter().copied().chain([i]).collect();
        let all: Vec<usize> = sw.by_since.iter().map(|m| m.2).collect();
        for pool in [&sw.complete, &all] {
            let want = PEERS_PER_ANSWER - chosen.len();
            sample_into(pool, want, &mut taken, &mut chosen, &mut self.rng);
        }
        chosen.sort_unstable();
        chosen
    }

    fn announce_entry(&mut self, e: usize, due: &[usize], t: u64) {
        let at = t + 2 * self.s.latency_ms;
        // What the announcers say of themselves.
        for &i in due {
            if let Some(d) = self.nodes[i].downloads[e].as_mut() {
                if !d.told_complete && d.picker.have().is_complete() {
                    d.told_complete = true;
                    self.swarms[e].complete.push(i);
                }
            }
        }
        let members = self.swarms[e].by_since.len();
        let gone: Vec<bool> = self.nodes.iter().map(|n| n.gone).collect();
        for &i in due {
            let answer = self.answer(e, i);
            // Each named member's hash and first record (its download began then).
            let named: Vec<(u64, u64)> = answer
                .iter()
                .map(|&j| {
                    let began = self.nodes[j].downloads[e].as_ref().map_or(0, |d| d.began);
                    (self.nodes[j].hash, began)
                })
                .collect();
            let want = self.s.neighbours;
            let Some(d) = self.nodes[i].downloads[e].as_mut() else {
                continue;
            };
            // As `download/tracker.rs`: every 2 s while the swarm gathers (the list grows)
            // or few peers are known, else every `announce_ms`.
            let gathering = answer.len() > d.listed.len() || d.known.len() < FEW_PEERS;
            d.next_announce = t + if gathering && !d.picker.is_complete() {
                ANNOUNCE_MS
            } else {
                self.s.announce_ms
            };
            self.announces.push(Reverse((d.next_announce, e, i)));
            for (&j, &(hash, began)) in answer.iter().zip(&named) {
                if !d.known.contains(&j) {
                    // Full, it forgets the first learnt of those this answer does not name
                    // and it does not follow, as `Node::learn_member` does.
                    if d.known.len() >= MAX_KNOWN {
                        let old = d.learned.iter().position(|k| {
                            d.known.contains(k)
                                && answer.binary_search(k).is_err()
                                && !d.follows.contains(k)
                        });
                        let Some(old) = old.and_then(|at| d.learned.remove(at)) else {
                            continue;
                        };
                        d.known.remove(&old);
                        d.picker.remove_peer(addr(old));
                    }
                    d.known.insert(j);
                    d.learned.push_back(j);
                    d.picker.add_peer(addr(j));
                }
                d.picker
                    .set_membership(addr(j), Some((hash, EPOCH_MS + began)));
            }
            // Known peers the answer does not list are no longer members (`tracker_members`);
            // only those the last answer named were.
            for &j in &d.listed {
                if answer.binary_search(&j).is_err() && d.known.contains(&j) {
                    d.picker.set_membership(addr(j), None);
                }
            }
            d.picker.set_joined(EPOCH_MS + d.began);
            // As the node reads an answer (`download/tracker.rs`): a full one may leave
            // members out.
            d.picker.set_members_whole(answer.len() < PEERS_PER_ANSWER);
            d.picker.set_tracker_answered();
            d.wake = Some(t);
            let arrived: Vec<u64> = named.iter().map(|n| n.1).collect();
            let present = |j: usize| !gone[j];
            let tended = tend(
                d,
                i,
                &answer,
                &arrived,
                members,
                t,
                want,
                present,
                &mut self.rng,
            );
            d.listed = answer;
            for j in tended.gone {
                if let Some(jd) = self.nodes[j].downloads[e].as_mut() {
                    jd.followers.retain(|&f| f != i);
                }
            }
            for j in tended.new {
                if let Some(jd) = self.nodes[j].downloads[e].as_mut() {
                    jd.followers.push(i);
                    self.news_seq += 1;
                    self.news.push(Reverse((at, self.news_seq, j, e, Some(i))));
                }
            }
        }
    }
}
