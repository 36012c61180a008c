//! The schedule: which entry is on air at an instant, and what comes next.
//!
//! Pure and clock-free: every question takes the instant `t` as an argument, so the listener,
//! the `schedule` command and the tests all ask the same function with their own notion of now.
//!
//! Rules (docs/design.md section 2):
//! - an entry with `ev:startdate` starts then; one without follows the entry before it in the
//!   document, and the first such entry starts at the channel's `dc:date`;
//! - an entry without any duration ends where the next entry with a start begins;
//! - entries are sorted by start; when two overlap the later start wins (the earlier is cut
//!   short), and of two with the same start the later in the document wins;
//! - a playlist where no entry has a start (the 2003 format) loops forever from `dc:date`.

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::Playlist;
use crate::time::MAX_ENTRY_DURATION;
use crate::warning::{Warning, WarningKind};

/// One airing of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Index into [`Playlist::entries`].
    pub entry: usize,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Slot {
    pub fn duration(&self) -> TimeDelta {
        self.end - self.start
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// What is on air at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnAir {
    pub slot: Slot,
    /// How far into the entry `t` is.
    pub offset: TimeDelta,
}

/// Sorted, non-overlapping slots; optionally repeating with a period (the 2003 format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// One cycle, sorted by start, no overlaps.
    slots: Vec<Slot>,
    /// Length of one cycle when the schedule loops.
    period: Option<TimeDelta>,
}

impl Schedule {
    /// Works out the schedule a playlist describes, with a warning for every entry dropped or
    /// changed on the way.
    pub fn build(playlist: &Playlist) -> (Schedule, Vec<Warning>) {
        let mut warnings = Vec::new();
        let entries = &playlist.entries;
        let mut warn = |i: usize, kind: WarningKind| {
            let e = &entries[i];
            warnings.push(Warning {
                line: e.line,
                column: e.column,
                subject: format!("item {} ({})", i + 1, e.label()),
                kind,
            });
        };

        // 1. Place every entry in document order.
        let mut cursor = playlist.channel.date;
        let mut placed = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let Some(start) = entry.start.or(cursor) else {
                warn(i, WarningKind::NoStart);
                continue;
            };
            let duration = match entry.duration {
                Some(d) => d,
                None => match entries[i + 1..]
                    .iter()
                    .find_map(|n| n.start)
                    .filter(|&n| n > start)
                {
                    Some(next) => next - start,
                    None => {
                        warn(i, WarningKind::NoDuration);
                        continue;
                    }
                },
            };
            if duration <= TimeDelta::zero() || duration > MAX_ENTRY_DURATION {
                warn(i, WarningKind::DurationOutOfRange { duration });
                continue;
            }
            let Some(end) = start.checked_add_signed(duration) else {
                warn(i, WarningKind::DurationOutOfRange { duration });
                continue;
            };
            placed.push(Slot {
                entry: i,
                start,
                end,
            });
            cursor = Some(end);
        }

        // 2. Sort by start (stable: document order breaks ties) and resolve overlaps.
        placed.sort_by_key(|s| s.start);
        let mut slots: Vec<Slot> = Vec::with_capacity(placed.len());
        for slot in placed {
            if let Some(last) = slots.last_mut() {
                if slot.start == last.start {
                    let replaced_by = entries[slot.entry].label().to_string();
                    warn(last.entry, WarningKind::SameStart { replaced_by });
                    *last = slot;
                    continue;
                }
                if slot.start < last.end {
                    let cut_by = entries[slot.entry].label().to_string();
                    warn(
                        last.entry,
                        WarningKind::Overlap {
                            cut_by,
                            lost: last.end - slot.start,
                        },
                    );
                    last.end = slot.start;
                }
            }
            slots.push(slot);
        }

        // 3. The 2003 format (no entry names its own start) repeats the list forever.
        let period = match (slots.first(), slots.last()) {
            (Some(first), Some(last)) if entries.iter().all(|e| e.start.is_none()) => {
                Some(last.end - first.start)
            }
            _ => None,
        };
        (Schedule { slots, period }, warnings)
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// One cycle of slots (the whole schedule when it does not loop).
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The length of a cycle, when the schedule loops.
    pub fn period(&self) -> Option<TimeDelta> {
        self.period
    }

    /// When the schedule begins.
    pub fn start(&self) -> Option<DateTime<Utc>> {
        self.slots.first().map(|s| s.start)
    }

    /// When the schedule runs out; `None` when it is empty or loops forever.
    pub fn end(&self) -> Option<DateTime<Utc>> {
        match self.period {
            Some(_) => None,
            None => self.slots.last().map(|s| s.end),
        }
    }

    /// The entry on air at `t`, and how far into it `t` is.
    pub fn on_air(&self, t: DateTime<Utc>) -> Option<OnAir> {
        let slot = self.slots_from(t).next()?;
        slot.contains(t).then(|| OnAir {
            slot,
            offset: t - slot.start,
        })
    }

    /// Every slot that has not ended by `t`, in order: the one on air at `t` (if any) first.
    /// Endless when the schedule loops.
    pub fn slots_from(&self, t: DateTime<Utc>) -> SlotIter<'_> {
        let (Some(first), Some(period)) = (self.slots.first(), self.period) else {
            let index = self.slots.partition_point(|s| s.end <= t);
            return SlotIter {
                schedule: self,
                cycle: 0,
                index,
            };
        };
        if t < first.start {
            return SlotIter {
                schedule: self,
                cycle: 0,
                index: 0,
            };
        }
        let period_ms = period.num_milliseconds().max(1);
        let cycle = (t - first.start).num_milliseconds() / period_ms;
        let within = t - TimeDelta::milliseconds(cycle * period_ms);
        let index = self.slots.partition_point(|s| s.end <= within);
        SlotIter {
            schedule: self,
            cycle,
            index,
        }
    }

    /// Slots that start at or after `t` and before `t + horizon`.
    pub fn starting_within(
        &self,
        t: DateTime<Utc>,
        horizon: TimeDelta,
    ) -> impl Iterator<Item = Slot> + '_ {
        let until = t + horizon;
        self.slots_from(t)
            .skip_while(move |s| s.start < t)
            .take_while(move |s| s.start < until)
    }

    /// The next instant after `t` at which what is on air changes (an entry starts or ends).
    pub fn next_change(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let slot = self.slots_from(t).next()?;
        Some(if slot.start > t { slot.start } else { slot.end })
    }
}

/// Iterates slots forward in time, across cycles when the schedule loops.
#[derive(Debug, Clone)]
pub struct SlotIter<'a> {
    schedule: &'a Schedule,
    cycle: i64,
    index: usize,
}

impl Iterator for SlotIter<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        let slots = &self.schedule.slots;
        if self.index >= slots.len() {
            self.schedule.period?;
            if slots.is_empty() {
                return None;
            }
            self.cycle += 1;
            self.index = 0;
        }
        let slot = slots[self.index];
        self.index += 1;
        let shift = match self.schedule.period {
            Some(p) => TimeDelta::milliseconds(p.num_milliseconds().checked_mul(self.cycle)?),
            None => TimeDelta::zero(),
        };
        Some(Slot {
            entry: slot.entry,
            start: slot.start.checked_add_signed(shift)?,
            end: slot.end.checked_add_signed(shift)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, Entry};

    fn t(s: &str) -> DateTime<Utc> {
        crate::time::parse_w3cdtf(s).unwrap()
    }

    fn entry(start: Option<&str>, secs: Option<i64>) -> Entry {
        Entry {
            media_url: format!("http://o/{}.mp3", start.unwrap_or("x")),
            start: start.map(t),
            duration: secs.map(TimeDelta::seconds),
            ..Entry::default()
        }
    }

    fn playlist(date: Option<&str>, entries: Vec<Entry>) -> Playlist {
        Playlist {
            channel: Channel {
                date: date.map(t),
                ..Channel::default()
            },
            entries,
        }
    }

    #[test]
    fn timed_entries_with_gap() {
        let p = playlist(
            None,
            vec![
                entry(Some("2026-01-01T10:00:00Z"), Some(60)),
                entry(Some("2026-01-01T10:02:00Z"), Some(60)),
            ],
        );
        let (s, w) = Schedule::build(&p);
        assert!(w.is_empty());
        assert_eq!(s.on_air(t("2026-01-01T09:59:59Z")), None);
        let on = s.on_air(t("2026-01-01T10:00:30Z")).unwrap();
        assert_eq!((on.slot.entry, on.offset), (0, TimeDelta::seconds(30)));
        assert_eq!(
            s.on_air(t("2026-01-01T10:01:00Z")),
            None,
            "end is exclusive"
        );
        assert_eq!(s.on_air(t("2026-01-01T10:01:30Z")), None, "in the gap");
        assert_eq!(
            s.next_change(t("2026-01-01T10:01:30Z")),
            Some(t("2026-01-01T10:02:00Z"))
        );
        assert_eq!(
            s.next_change(t("2026-01-01T10:02:00Z")),
            Some(t("2026-01-01T10:03:00Z"))
        );
        assert_eq!(s.next_change(t("2026-01-01T10:03:00Z")), None);
        assert_eq!(s.end(), Some(t("2026-01-01T10:03:00Z")));
        let next: Vec<_> = s
            .starting_within(
                t("2026-01-01T09:00:00Z"),
                TimeDelta::hours(1) + TimeDelta::seconds(60),
            )
            .collect();
        assert_eq!(next.len(), 1);
    }

    #[test]
    fn back_to_back_loops_from_channel_date() {
        let p = playlist(
            Some("2026-01-01T00:00:00Z"),
            vec![entry(None, Some(10)), entry(None, Some(20))],
        );
        let (s, w) = Schedule::build(&p);
        assert!(w.is_empty());
        assert_eq!(s.period(), Some(TimeDelta::seconds(30)));
        assert_eq!(s.end(), None);
        let on = s.on_air(t("2026-01-01T00:01:15Z")).unwrap();
        assert_eq!(on.slot.entry, 1);
        assert_eq!(on.slot.start, t("2026-01-01T00:01:10Z"));
        assert_eq!(on.offset, TimeDelta::seconds(5));
        let upcoming: Vec<_> = s
            .starting_within(t("2026-01-01T00:00:05Z"), TimeDelta::seconds(60))
            .map(|s| s.entry)
            .collect();
        assert_eq!(upcoming, vec![1, 0, 1, 0]);
        assert_eq!(
            s.on_air(t("2025-12-31T23:59:59Z")),
            None,
            "nothing before the first start"
        );
    }

    #[test]
    fn overlaps_and_duplicates() {
        let p = playlist(
            None,
            vec![
                entry(Some("2026-01-01T10:00:00Z"), Some(120)),
                entry(Some("2026-01-01T10:01:00Z"), Some(60)),
                entry(Some("2026-01-01T10:01:00Z"), Some(30)),
            ],
        );
        let (s, w) = Schedule::build(&p);
        assert_eq!(s.slots().len(), 2);
        assert_eq!(s.slots()[0].end, t("2026-01-01T10:01:00Z"));
        assert_eq!(s.slots()[1].entry, 2);
        assert!(matches!(w[0].kind, WarningKind::Overlap { .. }));
        assert!(matches!(w[1].kind, WarningKind::SameStart { .. }));
    }

    #[test]
    fn mixed_follow_and_missing() {
        let p = playlist(
            None,
            vec![
                entry(None, Some(10)),                         // no start, nothing to follow
                entry(Some("2026-01-01T10:00:00Z"), None),     // ends where the next start is
                entry(Some("2026-01-01T10:05:00Z"), Some(60)), // timed
                entry(None, Some(30)),                         // follows at 10:06
                entry(None, None),                             // nothing to end at
            ],
        );
        let (s, w) = Schedule::build(&p);
        let got: Vec<_> = s
            .slots()
            .iter()
            .map(|s| (s.entry, s.start, s.end))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, t("2026-01-01T10:00:00Z"), t("2026-01-01T10:05:00Z")),
                (2, t("2026-01-01T10:05:00Z"), t("2026-01-01T10:06:00Z")),
                (3, t("2026-01-01T10:06:00Z"), t("2026-01-01T10:06:30Z")),
            ]
        );
        let kinds: Vec<_> = w.iter().map(|w| w.kind.clone()).collect();
        assert_eq!(kinds, vec![WarningKind::NoStart, WarningKind::NoDuration]);
        assert_eq!(s.period(), None);
    }
}
