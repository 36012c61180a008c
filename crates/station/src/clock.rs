//! The listener's view of the station's clock, from the web server's `Date` headers.
//!
//! `Date` has one-second resolution, so one answer says only that the server's clock, at the
//! moment it answered (somewhere between our request and its reply), read a time in
//! `[date, date + 1 s)`. Each answer bounds the offset (server minus local) to an interval;
//! the intersection of the answers narrows it. A local clock consistent with every answer is
//! left alone (offset 0): an NTP-synced machine keeps its millisecond accuracy, and a wrong
//! clock is corrected to within the bounds.

use chrono::{DateTime, TimeDelta, Utc};

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
    /// the server, else the nearest consistent value.
    pub fn offset(&self) -> TimeDelta {
        match self.bounds {
            None => TimeDelta::zero(),
            Some((lo, hi)) => TimeDelta::zero().clamp(lo, hi),
        }
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
}
