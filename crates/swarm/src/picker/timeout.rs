//! When the picker next needs to be woken: the earliest instant at which something `next`
//! decides by the clock may change (a part entering a window, becoming urgent or missed, a
//! back-off or a late request running out), as quinn-proto's `poll_timeout` does. News from
//! outside (an answer, a bitfield, a member) wakes the driver on its own.

use super::{Deadlines, Picker, MISSED_MS};

impl Picker {
    /// The earliest instant after `now` at which [`Picker::next`] may ask for something it
    /// would not ask for at `now`, if nothing else happens meanwhile; `None` when only news
    /// can change that. Waking earlier is harmless, never later: each candidate is the first
    /// instant one of `next`'s conditions on the clock may flip.
    pub fn poll_timeout(&mut self, now: u64) -> Option<u64> {
        if self.is_complete() {
            return None;
        }
        let mut soonest = Soonest::after(now);
        let c = self.config;
        soonest.at(c.join_ms);
        soonest.at(c.origin_grace_ms);
        soonest.at(self.origin_backoff_until);
        if let Some(epoch) = self.epoch_ms {
            let focus_end = self.my_start_ms.saturating_add(c.focus_ms);
            soonest.at(focus_end.saturating_sub(epoch));
        }
        for peer in self.peers.values() {
            soonest.at(peer.backoff_until);
        }
        for r in self.requests.values() {
            soonest.at(r.since.saturating_add(c.late_ms));
            soonest.at(r.since.saturating_add(c.urgent_late_ms));
        }
        if self.deadlines == Deadlines::None {
            soonest.at(self.last_news.saturating_add(c.orphan_ms));
            return soonest.get();
        }
        // Each peer's lead, in whole ms, ascending and once each: for a deadline `d` only the
        // largest lead that still puts `d - lead` after now can be the soonest.
        let mut leads: Vec<i64> = self
            .peers
            .values()
            .map(|p| c.peer_lead_by_latency * p.latency_ms)
            .filter(|&l| l > 0.0)
            .map(|l| l.ceil() as i64)
            .collect();
        leads.sort_unstable();
        leads.dedup();
        let epoch = self.epoch_ms.map(|e| e as i64);
        for p in 0..self.have.len() {
            if self.have.get(p) {
                continue;
            }
            if let Some(d) = self.deadline(p) {
                let rescue_windows = (1..=i64::from(c.rescue_backups))
                    .map(|rank| d - (c.urgent_ms - (rank - 1) * c.urgent_ms / 3));
                let windows = [
                    d - c.peer_ahead_ms,
                    d - c.peer_in_order_ms.min(i64::MAX / 2),
                    d - c.peer_min_lead_ms,
                    d - c.urgent_ms,
                    d - c.focus_wide_ms,
                    d - c.origin_ahead_ms,
                    d - c.cold_ahead_ms,
                    d - c.short_ms,
                    d,
                    d + MISSED_MS + 1,
                ];
                for t in windows.into_iter().chain(rescue_windows) {
                    soonest.at_ms(t);
                }
                let before = leads.partition_point(|&lead| d - lead > now as i64);
                if let Some(first) = before.checked_sub(1) {
                    soonest.at_ms(d - leads[first]);
                }
                if let Some(end) = self.deadlines.of(p + 1) {
                    soonest.at_ms(end - c.join_min_left_ms);
                }
            }
            // When an owned part's designated member could no longer come (a cold entry).
            let not_before = self.ownership_of(p).not_before_ms;
            if let Some(epoch) = epoch.filter(|_| not_before != i64::MIN) {
                soonest.at_ms(not_before - epoch);
            }
        }
        soonest.get()
    }

    /// `part`'s ownership, worked out if the members changed.
    fn ownership_of(&mut self, part: u32) -> super::Ownership {
        self.rank(part);
        self.ownership(part)
    }
}

/// The earliest of the instants given that come after `now`.
struct Soonest {
    now: u64,
    soonest: Option<u64>,
}

impl Soonest {
    fn after(now: u64) -> Self {
        Self { now, soonest: None }
    }

    fn at(&mut self, t: u64) {
        if t > self.now && self.soonest.is_none_or(|s| t < s) {
            self.soonest = Some(t);
        }
    }

    fn at_ms(&mut self, t: i64) {
        if let Ok(t) = u64::try_from(t) {
            self.at(t);
        }
    }

    fn get(&self) -> Option<u64> {
        self.soonest
    }
}
