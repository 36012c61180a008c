//! Which part to ask of which peer.

use std::net::SocketAddr;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

use super::{Picker, Request, Source};

impl Picker {
    /// Without deadlines: each usable peer, best first, up to `peer_slots` requests for the
    /// rarest parts it holds; in the endgame, duplicates of what is in flight.
    pub(super) fn ask_peers_by_rarity(
        &mut self,
        now: u64,
        rng: &mut impl Rng,
        out: &mut Vec<Request>,
    ) {
        let mut peers: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| p.usable(now) && p.inflight < self.config.peer_slots)
            .map(|(a, _)| *a)
            .collect();
        peers.shuffle(rng);
        peers.sort_by(|a, b| {
            let (sa, sb) = (self.peers[a].score, self.peers[b].score);
            sb.partial_cmp(&sa).unwrap_or(std::cmp::Ordering::Equal)
        });
        for peer in peers {
            let source = Source::Peer(peer);
            while self.peers[&peer].inflight < self.config.peer_slots {
                let mut endgame = false;
                let mut pick = self.pick_for_peer(peer, now, rng, false);
                if pick.is_none() && self.endgame() {
                    endgame = true;
                    pick = self.pick_for_peer(peer, now, rng, true);
                }
                let Some(first) = pick else { break };
                let count = self.run(first, source, now, endgame);
                out.push(self.start(first, count, source, now));
            }
        }
    }

    /// Parts in deadline order within the trading window, each asked of a free peer that
    /// holds it (the one with fewest of our requests, at random among equals), until
    /// `peer_total_slots` requests are in flight.
    pub(super) fn ask_peers_by_deadline(
        &mut self,
        now: u64,
        rng: &mut impl Rng,
        out: &mut Vec<Request>,
    ) {
        let cap = if self.yielding {
            self.config.yield_slots.min(self.config.peer_total_slots)
        } else {
            self.config.peer_total_slots
        };
        // A listener tuning in asks for the entry's head besides its first seconds' parts:
        // the head is read before any audio, and an ask for it is not one of the prebuffer's
        // (docs/decisions/023).
        let head = usize::from(self.focused(now) && !self.have.get(0));
        let cap = cap.saturating_add(head);
        // Beyond the cap while focused: a joiner's first seconds, where many hold them.
        let wide_cap = if self.focused(now) && !self.yielding {
            self.config.focus_wide_slots.saturating_add(head).max(cap)
        } else {
            cap
        };
        let mut total = self
            .requests
            .values()
            .filter(|r| matches!(r.source, Source::Peer(_)))
            .count();
        if total >= wide_cap {
            return;
        }
        // Not past the trading window, nor due sooner than an ask takes: such parts would
        // come after their moment, and chasing them keeps a listener behind for good (the
        // stream plays silence briefly and takes up from the parts that do arrive in time).
        let horizon = now as i64 + self.config.peer_ahead_ms;
        let soonest = now as i64 + self.quickest_lead(now);
        let in_order = now as i64 + self.config.peer_in_order_ms.min(i64::MAX / 2);
        let (order, mut later): (Vec<u32>, Vec<u32>) = self
            .wanted_order(now)
            .filter(|&p| {
                self.deadline(p).is_none_or(|d| {
                    d <= horizon && (d >= soonest || self.pinned(p) || self.asked_tuning_in(p, now))
                })
            })
            // A pinned part by its deadline too: the head of an entry on air is overdue (first),
            // the next entry's is due at its start, and copied on rarest first until then.
            .partition(|&p| self.deadline(p).is_none_or(|d| d <= in_order));
        if self.focused(now) {
            later.clear();
        }
        later.shuffle(rng);
        later.sort_by_key(|&p| self.avail[p as usize]);
        // A few asks (`spread_slots`) copy rare parts on even while this listener is behind
        // on what is due soon: otherwise, when every listener is behind (a crowd joining at
        // once), new parts wait at their owner until everyone wants them at once.
        let mut spreading = self.requests.values().filter(|r| r.spread).count();
        while spreading < self.config.spread_slots && total < cap {
            let Some(request) = later
                .iter()
                .find_map(|&p| self.ask_free_peer(p, true, now, rng))
            else {
                break;
            };
            out.push(request);
            total += 1;
            spreading += 1;
        }
        let parts = order
            .into_iter()
            .map(|p| (p, false))
            .chain(later.into_iter().map(|p| (p, true)));
        for (p, spread) in parts {
            if total >= wide_cap {
                break;
            }
            if total >= cap && (spread || !self.widely_held(p, now)) {
                continue;
            }
            if let Some(request) = self.ask_free_peer(p, spread, now, rng) {
                out.push(request);
                total += 1;
            }
        }
    }

    /// Asks a free peer holding `part` for it (the one with fewest of our requests, at random
    /// among equals), if there is one; `spread`: to copy a rare part on.
    pub(super) fn ask_free_peer(
        &mut self,
        part: u32,
        spread: bool,
        now: u64,
        rng: &mut impl Rng,
    ) -> Option<Request> {
        // No peer claims it: nothing to look through (most parts ahead, in a young swarm).
        if self.avail[part as usize] == 0 {
            return None;
        }
        let mut free: Vec<SocketAddr> = Vec::new();
        let mut least = usize::MAX;
        // Time left before the part plays (pinned parts are needed whenever they come); for
        // the part playing as a listener tunes in, before too little of it is left, and then
        // only answers measured slower than that rule a peer out.
        let tuning_in = self
            .deadline(part)
            .is_some_and(|d| d < now as i64 + self.config.peer_min_lead_ms)
            && self.tuning_in(now);
        let left = (!self.pinned(part))
            .then(|| {
                let d = self.deadline(part)?;
                if tuning_in {
                    self.left_tuning_in(part, now)
                } else {
                    Some(d - now as i64)
                }
            })
            .flatten();
        for (&addr, state) in &self.peers {
            if !state.usable(now)
                || state.inflight >= self.config.peer_slots
                || state.inflight > least
                || !state.have.as_ref().is_some_and(|h| h.get(part))
                || !self.askable(part, now, Source::Peer(addr))
                || left.is_some_and(|left| {
                    let lead = if tuning_in {
                        self.config.peer_lead_by_latency * state.latency_ms
                    } else {
                        self.lead(state)
                    };
                    (left as f64) < lead
                })
            {
                continue;
            }
            if state.inflight < least {
                least = state.inflight;
                free.clear();
            }
            free.push(addr);
        }
        // Sorted first: the map's order must not decide, the seeded rng does.
        free.sort();
        let peer = *free.choose(rng)?;
        let source = Source::Peer(peer);
        let count = self.run(part, source, now, false);
        let request = self.start(part, count, source, now);
        if let Some(r) = self.requests.get_mut(&request.id) {
            r.spread = spread;
        }
        Some(request)
    }

    pub(super) fn pick_for_peer(
        &self,
        peer: SocketAddr,
        now: u64,
        rng: &mut impl Rng,
        endgame: bool,
    ) -> Option<u32> {
        let n = self.have.len();
        let source = Source::Peer(peer);
        let ok = |p: u32| {
            self.peer_has(peer, p)
                && (self.askable(p, now, source) || (endgame && self.dup_ok(p, source)))
        };
        // Rarest first among a sample, from a random start so peers spread their asks.
        let start = rng.random_range(0..n.max(1));
        let mut best: Option<(u16, u32)> = None;
        let mut seen = 0;
        for i in 0..n {
            let p = (start + i) % n;
            if ok(p) {
                let a = self.avail[p as usize];
                if best.is_none_or(|(ba, _)| a < ba) {
                    best = Some((a, p));
                }
                seen += 1;
                if seen >= 32 {
                    break;
                }
            }
        }
        best.map(|(_, p)| p)
    }
}
