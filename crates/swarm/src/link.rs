//! `--upload-limit auto` following the link: the rate the uplink paces at, from how fast the
//! askers say its answers came.
//!
//! An asker times each answer from its first body bytes to its last and reports that, with
//! the rate the answer was paced at ([`crate::proto::PACED_HEADER`]), in its next ask of the
//! same peer ([`crate::proto::DELIVERED_HEADER`]). Only answers paced at the rate now count.
//! One that came as fast as it was paced says the link carried the pace: the rate is raised
//! by [`PROBE`]. [`SLOW_IN_A_ROW`] that came slower say the link is the limit (one answer
//! that a sooner-due one overtook comes slower than the link; the one that took it does not):
//! the rate drops to [`SHARE`] of the fastest delivery of the last [`WINDOW_MS`] and is not
//! raised for [`HOLD_MS`]. Never below the floor: [`crate::node::AUTO_UPLOAD_FACTOR`] times
//! the bitrate.
//!
//! What the sockets take is not what the link delivers (docs/decisions/041); what the askers
//! receive is (docs/decisions/042).

use std::collections::VecDeque;

/// A delivery at or above this share of its pace kept up with it: have news and answer heads
/// share the pace, so an answer paced below the link comes at 0.92-1.1 of it (measured).
pub const KEPT_UP: f64 = 0.9;
/// Each answer that kept up with the current rate raises it by this factor.
pub const PROBE: f64 = 1.25;
/// Once the link is found, pace at this share of it: the rest carries what is not paced (have
/// news, acknowledgements, this node's own asks) and the measurement's error. At 0.8 a probe
/// (`SHARE * PROBE` = 1) paces at the link found, not past it.
pub const SHARE: f64 = 0.8;
/// Deliveries this recent count for the link's rate.
pub const WINDOW_MS: u64 = 10_000;
/// After the link was found, the rate is not probed again for this long.
pub const HOLD_MS: u64 = 30_000;
/// Slow deliveries of answers paced at the rate, one after another, that lower it: one answer
/// a sooner-due one overtook (which then came at the pace) does not.
pub const SLOW_IN_A_ROW: u32 = 2;
/// Deliveries remembered at most (a flood of reports costs no more).
const MAX_SAMPLES: usize = 64;

/// What an asker reported of an answer: `bytes` came in `us` microseconds after its first,
/// paced at `paced` bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub bytes: u64,
    pub us: u64,
    pub paced: u64,
}

impl Delivered {
    /// Bytes per second (0 for a report too short to tell).
    pub fn rate(&self) -> u64 {
        if self.us == 0 {
            return 0;
        }
        (u128::from(self.bytes) * 1_000_000 / u128::from(self.us)).min(u128::from(u64::MAX)) as u64
    }
}

/// The rate an auto uplink paces at: see the module's documentation. Clock-free: `now` is ms
/// on any one clock.
#[derive(Debug, Clone, Default)]
pub struct LinkFollower {
    floor: u64,
    rate: u64,
    /// Recent deliveries: when reported, bytes per second (at most what was paced).
    samples: VecDeque<(u64, u64)>,
    /// No probe before this.
    hold_until: u64,
    /// Deliveries at the rate that came slower than it, since the last that did not.
    slow: u32,
}

impl LinkFollower {
    /// The rate to pace at (0: none yet).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Never pace below `floor` bytes per second (the floor only rises).
    pub fn set_floor(&mut self, floor: u64) {
        self.floor = self.floor.max(floor);
        self.rate = self.rate.max(self.floor);
    }

    /// Takes an asker's report at `now`; the new rate if it changed.
    pub fn delivered(&mut self, now: u64, d: Delivered) -> Option<u64> {
        if self.rate == 0 {
            return None;
        }
        // The pace a report claims is at most the rate now (a rate lowered since, or a lie),
        // and a delivery faster than its pace is only its start's burst.
        let paced = d.paced.min(self.rate);
        if paced == 0 || d.rate() == 0 {
            return None;
        }
        let got = d.rate().min(paced);
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| at + WINDOW_MS < now)
            || self.samples.len() >= MAX_SAMPLES
        {
            self.samples.pop_front();
        }
        self.samples.push_back((now, got));
        // Only an answer paced at the rate now says whether the link carries it.
        if (paced as f64) < KEPT_UP * self.rate as f64 {
            return None;
        }
        let before = self.rate;
        if got as f64 >= KEPT_UP * paced as f64 {
            self.slow = 0;
            if now >= self.hold_until {
                self.rate = (self.rate as f64 * PROBE) as u64;
            }
        } else {
            self.slow += 1;
            let best = self.samples.iter().map(|s| s.1).max().unwrap_or(0);
            if self.slow >= SLOW_IN_A_ROW && (best as f64) < KEPT_UP * self.rate as f64 {
                self.rate = ((best as f64 * SHARE) as u64).max(self.floor);
                self.hold_until = now + HOLD_MS;
                self.slow = 0;
            }
        }
        (self.rate != before).then_some(self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer of 16 KiB that came at `rate` bytes per second, paced at `paced`.
    fn came(rate: u64, paced: u64) -> Delivered {
        Delivered {
            bytes: 16_384,
            us: 16_384 * 1_000_000 / rate,
            paced,
        }
    }

    /// Feeds deliveries one every 100 ms from `t`, over a link of `link` bytes per second.
    fn run(f: &mut LinkFollower, link: u64, t: &mut u64, n: usize) {
        for _ in 0..n {
            let r = f.rate();
            f.delivered(*t, came(r.min(link), r));
            *t += 100;
        }
    }

    #[test]
    fn nothing_before_a_floor_and_never_below_it() {
        let mut f = LinkFollower::default();
        assert_eq!(f.delivered(0, came(1000, 1000)), None);
        f.set_floor(25_600);
        assert_eq!(f.rate(), 25_600);
        let mut t = 0;
        // A link slower than the floor: the floor holds.
        run(&mut f, 10_000, &mut t, 20);
        assert_eq!(f.rate(), 25_600);
    }

    #[test]
    fn a_fast_link_is_found_and_paced_at_its_share() {
        let mut f = LinkFollower::default();
        f.set_floor(25_600); // 1.6x a 128 kbit/s station
        let mut t = 0;
        run(&mut f, 160_000, &mut t, 40); // 10x
        let r = f.rate();
        assert!(
            (0.8 * 160_000.0 * SHARE..=160_000.0).contains(&(r as f64)),
            "{r}"
        );
        // Held: the rate stays put through the hold, then probes and comes back.
        run(&mut f, 160_000, &mut t, 20);
        assert_eq!(f.rate(), r);
        run(&mut f, 160_000, &mut t, 400);
        assert!(f.rate() <= 160_000, "{}", f.rate());
        assert!(f.rate() as f64 >= 160_000.0 * SHARE * 0.8, "{}", f.rate());
    }

    #[test]
    fn a_link_that_slows_is_followed_down() {
        let mut f = LinkFollower::default();
        f.set_floor(10_000);
        let mut t = 0;
        run(&mut f, 100_000, &mut t, 40);
        assert!(f.rate() >= 70_000, "{}", f.rate());
        run(&mut f, 40_000, &mut t, 150);
        assert!(f.rate() <= 40_000, "{}", f.rate());
        assert!(f.rate() >= 25_000, "{}", f.rate());
    }

    #[test]
    fn one_overtaken_answer_does_not_lower_the_rate_and_old_paces_raise_nothing() {
        let mut f = LinkFollower::default();
        f.set_floor(10_000);
        assert_eq!(f.delivered(0, came(10_000, 10_000)), Some(12_500));
        // Reported of an answer paced before the raise: it says nothing of the new rate.
        assert_eq!(f.delivered(100, came(10_000, 10_000)), None);
        // A slow one alone (a sooner-due answer took the link meanwhile, and came at the pace).
        assert_eq!(f.delivered(200, came(3_000, 12_500)), None);
        assert_eq!(f.delivered(300, came(12_500, 12_500)), Some(15_625));
        assert_eq!(f.delivered(400, came(3_000, 15_625)), None);
        // A report claiming a pace above the rate counts as the rate.
        assert_eq!(f.delivered(500, came(1 << 30, 1 << 30)), Some(19_531));
        // Two slow ones in a row: the link is the limit, its share of the best recent (the
        // last, at 15,625).
        assert_eq!(f.delivered(600, came(14_000, 19_531)), None);
        assert_eq!(f.delivered(700, came(14_000, 19_531)), Some(12_500));
        // And no probe for a while.
        assert_eq!(f.delivered(800, came(12_500, 12_500)), None);
        assert_eq!(
            f.delivered(800 + HOLD_MS, came(12_500, 12_500)),
            Some(15_625)
        );
    }

    #[test]
    fn a_report_with_no_time_is_ignored() {
        let mut f = LinkFollower::default();
        f.set_floor(10_000);
        let zero = Delivered {
            bytes: 100,
            us: 0,
            paced: 10_000,
        };
        assert_eq!(f.delivered(0, zero), None);
        assert_eq!(f.rate(), 10_000);
    }
}
