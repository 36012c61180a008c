//! What is asked of the origin: urgent parts no peer sends in time, and the blocks this
//! node owns ahead of time.

use rand::seq::SliceRandom;
use rand::Rng;

use super::{Deadlines, Picker, Request, Source};

impl Picker {
    /// Urgent parts no peer sends in time (held by none, in flight too long, or not yet due
    /// and held only by peers that cannot send it in time: see `held_by_a_peer_in_time`; in
    /// turn, see `may_rescue`), then parts no peer holds that this node owns, nearest first.
    pub(super) fn ask_origin(&mut self, now: u64, rng: &mut impl Rng, out: &mut Vec<Request>) {
        let n = self.have.len();
        if self.origin_enabled && self.origin_backoff_until <= now {
            let urgent_cap = self.config.origin_slots + self.config.urgent_origin_slots;
            if self.deadlines != Deadlines::None {
                let order: Vec<u32> = self
                    .wanted_order(now)
                    .take_while(|&p| self.urgent(p, now))
                    .collect();
                for p in order {
                    if self.origin_inflight - self.origin_ahead_inflight >= urgent_cap {
                        break;
                    }
                    if self.askable(p, now, Source::Origin)
                        && (self.avail[p as usize] == 0
                            || self.by_part.contains_key(&p)
                            || (self.deadline(p).is_some_and(|d| d > now as i64)
                                && !self.held_by_a_peer_in_time(p, now)))
                        && self.may_rescue(p, now)
                    {
                        let count = self.run(p, Source::Origin, now, false);
                        out.push(self.start(p, count, Source::Origin, now));
                    }
                }
            }
            // Alone (the tracker named no one), at once; else after the first moments, while
            // the peers' bitfields come in (what they hold is not fetched again).
            let alone = self.tracker_answered && self.alone();
            if self.origin_ahead_inflight < self.config.origin_slots
                && (alone || now >= self.config.origin_grace_ms)
            {
                let horizon = now as i64 + self.config.origin_ahead_ms;
                // Without deadlines (a plain fetch), blocks of a silent owner are taken over
                // after a while; with them, urgency does that, in turn (`may_rescue`).
                let orphans = self.deadlines == Deadlines::None
                    && now.saturating_sub(self.last_news) >= self.config.orphan_ms;
                let late_horizon = now as i64 + self.config.cold_ahead_ms;
                let now_unix = self.epoch_ms.map_or(i64::MAX, |e| e as i64 + now as i64);
                let mut candidates: Vec<u32> = Vec::new();
                for p in 0..n {
                    if self.avail[p as usize] == 0
                        && !self.have.get(p)
                        && !self.by_part.contains_key(&p)
                        && !self.missed(p, now)
                        && (orphans || self.owns(p))
                        && self.ownership(p).not_before_ms <= now_unix
                        && self.deadline(p).is_none_or(|d| {
                            d <= if self.ownership(p).late || self.taken_by_another(p) {
                                late_horizon
                            } else {
                                horizon
                            }
                        })
                    {
                        candidates.push(p);
                    }
                }
                // Without deadlines, at random (members that see different owners then
                // still spread over the file); with them, the nearest first: a listener
                // that owns much (the first to join owns everything) takes what plays
                // soonest before what plays in 40 s.
                candidates.shuffle(rng);
                if self.deadlines != Deadlines::None {
                    candidates.sort_by_key(|&p| self.deadline(p));
                }
                for p in candidates {
                    if self.origin_ahead_inflight >= self.config.origin_slots {
                        break;
                    }
                    if self.by_part.contains_key(&p) {
                        continue; // taken by a run just started
                    }
                    // Runs stay within what is owned together (a block, which the owner
                    // fetches whole, or a seeded unit).
                    let end = self.ownership(p).end.max(p + 1);
                    let count = self.run(p, Source::Origin, now, false).min(end - p);
                    let request = self.start(p, count, Source::Origin, now);
                    if let Some(r) = self.requests.get_mut(&request.id) {
                        r.ahead = true;
                        self.origin_ahead_inflight += 1;
                    }
                    out.push(request);
                }
            }
        }
    }
}
