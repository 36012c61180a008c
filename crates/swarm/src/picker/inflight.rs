//! Requests in flight: starting them, runs of parts, duplicates, and how they end.

use super::{Failure, PeerVerdict, Picker, Request, Source, BUSY_BACKOFF_MS};

#[derive(Debug, Clone, Copy)]
pub(super) struct Inflight {
    pub(super) first: u32,
    pub(super) count: u32,
    pub(super) source: Source,
    pub(super) since: u64,
    /// An origin request ahead of time (a block this node owns), not a rescue.
    pub(super) ahead: bool,
    /// A peer request for a rare part not due soon: copying it on.
    pub(super) spread: bool,
}

impl Picker {
    /// Whether another request may be made for `part` (not held, and not already asked of
    /// someone still in time; at most two requests).
    pub(super) fn askable(&self, part: u32, now: u64, from: Source) -> bool {
        if self.have.get(part) {
            return false;
        }
        let Some(ids) = self.by_part.get(&part) else {
            return true;
        };
        if ids.len() >= 2 {
            return false;
        }
        ids.iter().all(|id| {
            self.requests.get(id).is_none_or(|r| {
                let age = now.saturating_sub(r.since);
                r.source != from
                    && (age >= self.config.late_ms
                        || (age >= self.config.urgent_late_ms && self.urgent(part, now)))
            })
        })
    }

    /// Every missing part is in flight (parts in `by_part` are never held: completion
    /// removes them).
    pub(super) fn endgame(&self) -> bool {
        let missing = (self.have.len() - self.have.count()) as usize;
        missing > 0 && self.by_part.len() >= missing
    }

    pub(super) fn start(&mut self, first: u32, count: u32, source: Source, now: u64) -> Request {
        let id = self.next_id;
        self.next_id += 1;
        self.requests.insert(
            id,
            Inflight {
                first,
                count,
                source,
                since: now,
                ahead: false,
                spread: false,
            },
        );
        for p in first..first + count {
            self.by_part.entry(p).or_default().push(id);
        }
        match source {
            Source::Origin => self.origin_inflight += 1,
            Source::Peer(a) => {
                if let Some(s) = self.peers.get_mut(&a) {
                    s.inflight += 1;
                }
            }
        }
        Request {
            id,
            first,
            count,
            source,
            due_in_ms: self.deadline(first).map(|d| {
                // A player tuning in starts once it holds its first seconds: each of them is
                // due at its start, now, not when the player will reach it (decision 052).
                let due = d - now as i64;
                let prebuffer = matches!(source, Source::Peer(_))
                    && self.focused(now)
                    && due <= self.config.focus_wide_ms;
                if prebuffer {
                    due.min(0)
                } else {
                    due
                }
            }),
        }
    }

    /// Extends a run from `first` while parts stay askable from `source` (and held by it).
    pub(super) fn run(&self, first: u32, source: Source, now: u64, endgame: bool) -> u32 {
        let max = match source {
            Source::Peer(_) => self.config.peer_max_run,
            Source::Origin => self.config.max_run,
        };
        let mut count = 1;
        while count < max {
            let p = first + count;
            // A run does not reach from a pinned part into parts that have aired.
            if p >= self.have.len() || (self.missed(p, now) && !self.missed(first, now)) {
                break;
            }
            let ok = match source {
                Source::Peer(a) => {
                    self.peer_has(a, p)
                        && (self.askable(p, now, source) || (endgame && self.dup_ok(p, source)))
                }
                Source::Origin => self.askable(p, now, source) && !self.by_part.contains_key(&p),
            };
            if !ok {
                break;
            }
            count += 1;
        }
        count
    }

    pub(super) fn dup_ok(&self, part: u32, source: Source) -> bool {
        !self.have.get(part)
            && self.by_part.get(&part).is_none_or(|ids| {
                ids.len() < 2
                    && ids
                        .iter()
                        .all(|id| self.requests.get(id).is_none_or(|r| r.source != source))
            })
    }

    pub(super) fn finish(&mut self, id: u64) -> Option<Inflight> {
        let r = self.requests.remove(&id)?;
        for p in r.first..r.first + r.count {
            if let Some(ids) = self.by_part.get_mut(&p) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.by_part.remove(&p);
                }
            }
        }
        match r.source {
            Source::Origin => {
                self.origin_inflight = self.origin_inflight.saturating_sub(1);
                if r.ahead {
                    self.origin_ahead_inflight = self.origin_ahead_inflight.saturating_sub(1);
                }
            }
            Source::Peer(a) => {
                if let Some(s) = self.peers.get_mut(&a) {
                    s.inflight = s.inflight.saturating_sub(1);
                }
            }
        }
        Some(r)
    }

    /// Request `id` delivered verified parts `first..first+count` (possibly fewer than
    /// asked, when the shell stops early). Returns requests now pointless (all their parts
    /// held) for the shell to cancel.
    pub fn completed(&mut self, id: u64, first: u32, count: u32, bytes: u64, now: u64) -> Vec<u64> {
        let Some(r) = self.finish(id) else {
            // Already cancelled or timed out, but its bytes verified: keep them.
            for p in first..first + count {
                self.have.set(p);
            }
            return Vec::new();
        };
        let elapsed = now.saturating_sub(r.since).max(1) as f64;
        match r.source {
            Source::Peer(a) => {
                if let Some(s) = self.peers.get_mut(&a) {
                    let rate = bytes as f64 / elapsed;
                    s.score = 0.7 * s.score + 0.3 * rate;
                    s.note_latency(elapsed);
                    s.failures = 0;
                }
            }
            Source::Origin => self.origin_failures = 0,
        }
        let mut cancel = Vec::new();
        for p in first..first + count {
            self.have.set(p);
            if let Some(ids) = self.by_part.get(&p) {
                cancel.extend(ids.iter().copied());
            }
        }
        cancel.sort_unstable();
        cancel.dedup();
        cancel.retain(|other| {
            self.requests
                .get(other)
                .is_some_and(|o| (o.first..o.first + o.count).all(|p| self.have.get(p)))
        });
        for c in &cancel {
            self.finish(*c);
        }
        cancel
    }

    /// Request `id` failed. Says whether its peer is now banned.
    pub fn failed(&mut self, id: u64, failure: Failure, now: u64) -> PeerVerdict {
        let Some(r) = self.finish(id) else {
            return PeerVerdict::Fine;
        };
        match r.source {
            Source::Origin if !failure.is_remote() => PeerVerdict::Fine,
            Source::Origin => {
                self.origin_failures += 1;
                let backoff = 500u64 << self.origin_failures.min(3); // at most 4 s: urgent parts wait on it
                self.origin_backoff_until = now + backoff;
                PeerVerdict::Fine
            }
            Source::Peer(a) => {
                let Some(s) = self.peers.get_mut(&a) else {
                    return PeerVerdict::Fine;
                };
                if s.banned {
                    return PeerVerdict::Fine; // a request sent before the ban
                }
                match failure {
                    Failure::BadData => {
                        s.banned = true;
                        self.owned = None;
                        self.forget_claims(a);
                        PeerVerdict::Banned
                    }
                    Failure::NotHeld => {
                        s.false_claims += 1;
                        s.score /= 2.0;
                        if s.false_claims >= self.config.max_false_claims {
                            s.banned = true;
                            self.owned = None;
                            self.forget_claims(a);
                            return PeerVerdict::Banned;
                        }
                        if let Some(h) = s.have.as_mut() {
                            for p in r.first..r.first + r.count {
                                if h.get(p) {
                                    h.clear(p);
                                    self.avail[p as usize] =
                                        self.avail[p as usize].saturating_sub(1);
                                }
                            }
                        }
                        PeerVerdict::Fine
                    }
                    Failure::Busy => {
                        // Not a fault: ask others for a moment.
                        s.score *= 0.8;
                        s.backoff_until = now + BUSY_BACKOFF_MS;
                        PeerVerdict::Fine
                    }
                    Failure::Local => PeerVerdict::Fine,
                    Failure::TimedOut
                    | Failure::Refused { .. }
                    | Failure::Broken
                    | Failure::Changed => {
                        s.failures += 1;
                        s.score /= 2.0;
                        // Timed out or cut off: it took at least this long.
                        s.note_latency(now.saturating_sub(r.since) as f64);
                        s.backoff_until = now + (1000u64 << s.failures.min(5));
                        PeerVerdict::Fine
                    }
                }
            }
        }
    }
}
