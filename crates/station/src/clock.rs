//! The listener's view of the station's clock, from the web server's `Date` headers.
//!
//! `Date` has one-second resolution, so one answer says only that the server's clock, at the
//! moment it answered (somewhere between our request and its reply), read a time in
//! `[date, date + 1 s)`. Each answer bounds the offset (server minus local) to an interval;
//! the intersection of the answers narrows it. Answers are asked for at chosen instants
//! ([`ClockOffset::next_probe`]): each timed so that the server's second ticks in the middle
//! of what is known, which halves it, down to about the round trip. A local clock consistent
//! with every answer is left alone (offset 0): an NTP-synced machine keeps its millisecond
//! accuracy; a wrong clock is corrected to the middle of the bounds.

use chrono::{DateTime, TimeDelta, Utc};

/// Bounds narrower than this (plus the round trip) are good enough: no more probes.
pub(crate) const GOOD_ENOUGH: TimeDelta = TimeDelta::milliseconds(100);

/// Bounds on (server clock - local clock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockOffset {
    bounds: Option<(TimeDelta, TimeDelta)>,
}

impl ClockOffset {
    /// Takes in one answer: sent at local `sent`, received at local `received`, saying `date`.
    pub fn observe(&mut self, sent: DateTime<Utc>, received: DateTime<Utc>, date: DateTime<Utc>) {
        if received < sent {
            return;
        }
        // The server read `date..date+1s` at some local instant in `sent..received`.
        let lo = date - received;
        let hi = date + TimeDelta::seconds(1) - sent;
        self.bounds = Some(match self.bounds {
            None => (lo, hi),
            Some((a, b)) => {
                let (nlo, nhi) = (a.max(lo), b.min(hi));
                // Disagreeing answers (the server's clock was stepped): start over from this one.
                if nlo > nhi {
                    (lo, hi)
                } else {
                    (nlo, nhi)
                }
            }
        });
    }

    /// The correction to add to the local clock: 0 when the local clock is consistent with
    /// the server, else the middle of the bounds.
    pub fn offset(&self) -> TimeDelta {
        match self.bounds {
            None => TimeDelta::zero(),
            Some((lo, hi)) if lo <= TimeDelta::zero() && TimeDelta::zero() <= hi => {
                TimeDelta::zero()
            }
            Some((lo, hi)) => lo + (hi - lo) / 2,
        }
    }

    /// How wide the bounds are (`None`: no answer yet).
    pub fn width(&self) -> Option<TimeDelta> {
        self.bounds.map(|(lo, hi)| hi - lo)
    }

    /// When (local time) to send the next probe, given the round trip `rtt`, so that the
    /// server's second ticks as it answers if the offset is the middle of the bounds: either
    /// way the answer halves them. `None` once they are narrower than [`GOOD_ENOUGH`] plus
    /// the round trip. With no answer yet, at once.
    pub fn next_probe(&self, now: DateTime<Utc>, rtt: TimeDelta) -> Option<DateTime<Utc>> {
        let Some((lo, hi)) = self.bounds else {
            return Some(now);
        };
        if hi - lo <= GOOD_ENOUGH + rtt {
            return None;
        }
        let mid = lo + (hi - lo) / 2;
        // The first whole second of server time the probe can still meet.
        let earliest = now + mid + rtt + TimeDelta::milliseconds(20);
        let tick = DateTime::<Utc>::from_timestamp(earliest.timestamp() + 1, 0)?;
        Some(tick - mid - rtt / 2)
    }

    /// Local now, corrected.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap_or_default()
    }

    #[test]
    fn a_right_clock_is_left_alone_and_a_wrong_one_corrected() {
        let mut c = ClockOffset::default();
        // Server time = local time; the Date header truncates to the second.
        c.observe(t(200), t(250), t(0));
        assert_eq!(c.offset(), TimeDelta::zero());

        // Local clock 5 s fast: the server says 5 s earlier than we read.
        let mut c = ClockOffset::default();
        c.observe(t(5_200), t(5_250), t(0));
        let off = c.offset();
        assert!(
            off <= TimeDelta::milliseconds(-4_200) && off >= TimeDelta::milliseconds(-5_250),
            "{off}"
        );
        // More answers narrow it down: this one came just before the server's second ticked.
        c.observe(t(5_990), t(6_000), t(0));
        let off = c.offset();
        assert!(
            off <= TimeDelta::milliseconds(-4_990) && off >= TimeDelta::milliseconds(-5_250),
            "{off}"
        );
    }

    /// A server whose clock is `offset_ms` ahead of the local one, answering a probe sent at
    /// local `sent_ms` after `rtt_ms` (stamped half way).
    fn answer(c: &mut ClockOffset, offset_ms: i64, sent_ms: i64, rtt_ms: i64) {
        let stamped = sent_ms + rtt_ms / 2 + offset_ms;
        let date = t(stamped.div_euclid(1000) * 1000);
        c.observe(t(sent_ms), t(sent_ms + rtt_ms), date);
    }

    #[test]
    fn probes_timed_on_the_server_s_tick_find_the_offset_to_the_round_trip() {
        // Clocks wrong by minutes either way, and one right: each is corrected to within
        // 60 ms in a few probes, so listeners agree with each other and with the server.
        for offset_ms in [90_000, -45_000, 0, 437, -1_999, 123_456] {
            let mut c = ClockOffset::default();
            let rtt = TimeDelta::milliseconds(20);
            let mut now = t(0);
            let mut probes = 0;
            while let Some(at) = c.next_probe(now, rtt) {
                assert!(at >= now, "never in the past");
                let sent = (at - t(0)).num_milliseconds();
                answer(&mut c, offset_ms, sent, 20);
                now = t(sent + 20);
                probes += 1;
                assert!(probes <= 8, "{offset_ms}: still {:?} wide", c.width());
            }
            let error = (c.offset() - TimeDelta::milliseconds(offset_ms)).abs();
            assert!(
                error <= TimeDelta::milliseconds(60),
                "{offset_ms}: corrected by {} ({probes} probes)",
                c.offset()
            );
        }
    }
}
