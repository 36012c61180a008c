//! When each part is due, and what that makes urgent, missed or wanted first.

use std::ops::Range;
use std::sync::Arc;

use alluvium_content::PART_SIZE;

use super::{Picker, MISSED_MS};

/// When each part is due, if the download has deadlines.
#[derive(Debug, Clone, PartialEq)]
pub enum Deadlines {
    /// A plain fetch: no part is more urgent than another.
    None,
    /// Part `p` is due at `start_ms + p * per_part_ms`: parts of equal play time.
    Linear { start_ms: i64, per_part_ms: f64 },
    /// An entry of `duration_ms` from `start_ms` whose audio lies in the file as `map` says:
    /// a part is due when its first byte plays. The map is the stream's own, so both agree
    /// on which part plays when, whatever the tags around the audio, a short last part or a
    /// VBR file's seek table.
    Audio {
        start_ms: i64,
        duration_ms: i64,
        map: AudioMap,
    },
}

/// Where an entry's play time falls in its file: the byte offsets at equal steps of its
/// time, from the first audio byte to the end of the audio (two knots for audio spread
/// evenly; 101 for an MP3's Xing seek table, one a percent), read linearly between knots.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioMap(Arc<[u64]>);

impl AudioMap {
    /// Audio spread evenly over the bytes `audio`.
    pub fn even(audio: Range<u64>) -> Self {
        Self(Arc::from([audio.start, audio.end.max(audio.start)]))
    }

    /// From knots at equal steps of the play time; `None` unless there are two or more,
    /// never decreasing, and the audio has a length.
    pub fn from_knots(knots: Vec<u64>) -> Option<Self> {
        let (first, last) = (*knots.first()?, *knots.last()?);
        (knots.len() >= 2 && last > first && knots.windows(2).all(|w| w[0] <= w[1]))
            .then(|| Self(knots.into()))
    }

    /// The byte at which `fraction` (0 to 1) of the play time has passed.
    pub fn offset_at(&self, fraction: f64) -> u64 {
        let k = &self.0;
        let at = fraction.clamp(0.0, 1.0) * (k.len() - 1) as f64;
        let i = (at as usize).min(k.len() - 2);
        let (a, b) = (k[i], k[i + 1]);
        a + ((b - a) as f64 * (at - i as f64)) as u64
    }

    /// The share (0 to 1) of the play time before `byte` plays: the inverse of
    /// [`AudioMap::offset_at`].
    pub fn fraction_at(&self, byte: u64) -> f64 {
        let k = &self.0;
        let steps = (k.len() - 1) as f64;
        // The last knot at or before the byte (none: it plays first).
        let i = k.partition_point(|&o| o <= byte);
        if i == 0 {
            return 0.0;
        }
        if i >= k.len() {
            return 1.0;
        }
        let (a, b) = (k[i - 1], k[i]);
        let within = (byte - a) as f64 / (b - a).max(1) as f64;
        ((i - 1) as f64 + within) / steps
    }
}

impl Deadlines {
    pub fn of(&self, part: u32) -> Option<i64> {
        match self {
            Deadlines::None => None,
            Deadlines::Linear {
                start_ms,
                per_part_ms,
            } => Some(start_ms + (f64::from(part) * per_part_ms) as i64),
            Deadlines::Audio {
                start_ms,
                duration_ms,
                map,
            } => {
                let share = map.fraction_at(u64::from(part) * PART_SIZE);
                Some(start_ms + (share * *duration_ms as f64) as i64)
            }
        }
    }

    /// The same entry with its audio found where `map` says.
    pub fn with_audio(self, map: AudioMap) -> Self {
        match self {
            Deadlines::Audio {
                start_ms,
                duration_ms,
                ..
            } => Deadlines::Audio {
                start_ms,
                duration_ms,
                map,
            },
            other => other,
        }
    }
}

impl Picker {
    /// When `part` is needed: its play time, or for a pinned part the entry's start (the
    /// stream reads those before any audio).
    pub(super) fn deadline(&self, part: u32) -> Option<i64> {
        let d = self.deadlines.of(part)?;
        if self.pinned(part) {
            return Some(d.min(self.deadlines.of(0)?));
        }
        Some(d)
    }

    /// Due soon, and not already missed (a part whose moment has passed is no longer
    /// played: the stream has moved on). A pinned part is urgent from shortly before its
    /// entry starts until it is held, however long the entry has played.
    pub(super) fn urgent(&self, part: u32, now: u64) -> bool {
        if self.pinned(part) && !self.have.get(part) {
            return self
                .deadline(part)
                .is_some_and(|d| d - now as i64 <= self.config.urgent_ms);
        }
        self.deadline(part).is_some_and(|d| {
            let left = d - now as i64;
            left <= self.config.urgent_ms && left >= -MISSED_MS
        })
    }

    /// Whether this download is tuning in to an entry on air (see `PickerConfig::join_ms`).
    pub(super) fn tuning_in(&self, now: u64) -> bool {
        now < self.config.join_ms && self.deadlines.of(0).is_some_and(|d| d < 0)
    }

    /// Whether a part due within `short_ms` from `now` is not held (see
    /// `PickerConfig::short_ms`).
    pub fn short(&self, now: u64) -> bool {
        let until = now as i64 + self.config.short_ms;
        // Deadlines grow with the part: only the window is walked past its start.
        self.config.short_ms > 0
            && (0..self.have.len())
                .skip_while(|&p| self.deadline(p).is_some_and(|d| d < now as i64))
                .take_while(|&p| self.deadline(p).is_some_and(|d| d <= until))
                .any(|p| !self.have.get(p))
    }

    /// Whether another download of this node is short: this one then asks peers for less.
    pub fn set_yielding(&mut self, yielding: bool) {
        self.yielding = yielding;
    }

    /// Whether this node started less than `focus_ms` ago (see `PickerConfig::focus_ms`).
    pub(super) fn focused(&self, now: u64) -> bool {
        self.epoch_ms.is_some_and(|epoch| {
            epoch.saturating_add(now) < self.my_start_ms.saturating_add(self.config.focus_ms)
        })
    }

    /// While tuning in: how long `part` plays on after now, less `join_min_left_ms` (its end
    /// is the next part's deadline).
    pub(super) fn left_tuning_in(&self, part: u32, now: u64) -> Option<i64> {
        let end = self.deadlines.of(part + 1)?;
        Some(end - now as i64 - self.config.join_min_left_ms)
    }

    /// A part of a joiner's first seconds that enough followed peers hold to be asked past
    /// the cap (see `PickerConfig::focus_wide_slots`).
    pub(super) fn widely_held(&self, part: u32, now: u64) -> bool {
        self.avail[part as usize] >= self.config.focus_wide_holders
            && self
                .deadline(part)
                .is_some_and(|d| d <= now as i64 + self.config.focus_wide_ms)
    }

    /// A part due sooner than `peer_min_lead_ms` that a listener tuning in asks for anyway.
    pub(super) fn asked_tuning_in(&self, part: u32, now: u64) -> bool {
        self.tuning_in(now)
            && self.avail[part as usize] >= self.config.join_min_holders
            && self.left_tuning_in(part, now).is_some_and(|left| left >= 0)
    }

    /// Whether `part`'s moment passed long enough ago that playback no longer needs it.
    /// Pinned parts are never missed.
    pub(super) fn missed(&self, part: u32, now: u64) -> bool {
        !self.pinned(part)
            && self
                .deadline(part)
                .is_some_and(|d| d < now as i64 - MISSED_MS)
    }

    /// With deadlines, the file's first part is needed at once whatever the play position: it
    /// says where the audio lies (tags, stream headers). So is any part a reader waits for out
    /// of play order ([`Picker::set_wanted`]: the rest of a head longer than one part). The
    /// last part is not: it only says where trailing tags cut the audio, and until it is held
    /// the stream skips tag bytes as junk.
    pub(super) fn pinned(&self, part: u32) -> bool {
        self.deadlines != Deadlines::None && (part == 0 || self.wanted.contains(&part))
    }

    /// Parts readers wait for out of play order (`Content::wanted`): pinned, like the first.
    pub fn set_wanted(&mut self, parts: Vec<u32>) {
        self.wanted = parts;
    }

    /// Pinned parts not held, then parts from the first not missed: the order in which
    /// deadlines make parts wanted.
    pub(super) fn wanted_order(&self, now: u64) -> impl Iterator<Item = u32> + '_ {
        let n = self.have.len();
        let from = (1..n).find(|&p| !self.missed(p, now)).unwrap_or(n);
        let pinned = std::iter::once(0)
            .chain(self.wanted.iter().copied())
            .filter(move |&p| p < n && !self.have.get(p));
        let rest = (from..n).chain(1..from).filter(move |&p| !self.pinned(p));
        pinned.chain(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_due_when_its_first_byte_of_audio_plays() {
        // 59 parts, the last a fifth of one: 58.2 parts over 60 s.
        let size = 58 * PART_SIZE + PART_SIZE / 5;
        let d = Deadlines::Audio {
            start_ms: -1_000,
            duration_ms: 60_000,
            map: AudioMap::even(0..size),
        };
        assert_eq!(d.of(0), Some(-1_000));
        // Part 55's first byte is 55 / 58.2 of the way in: 56.70 s, not 55 * 60 / 59.
        assert_eq!(d.of(55), Some(-1_000 + 56_701));
        // A 100 KB tag before the audio: its parts are due as the entry starts, the
        // audio's by where they fall in it.
        let tagged = d.with_audio(AudioMap::even(100_000..size));
        assert_eq!(tagged.of(3), Some(-1_000), "inside the tag");
        assert_eq!(tagged.of(6), Some(-1_000), "the tag ends in part 6");
        let into = (55 * PART_SIZE - 100_000) as f64 / (size - 100_000) as f64;
        assert_eq!(tagged.of(55), Some(-1_000 + (into * 60_000.0) as i64));
    }

    #[test]
    fn a_seek_table_times_a_vbr_file_s_parts() {
        // A quiet first half at a quarter of the second half's bitrate: 20 % of the audio
        // bytes play in the first 50 % of the time.
        let knots: Vec<u64> = (0..=100u64)
            .map(|pct| {
                if pct <= 50 {
                    pct * 4_000
                } else {
                    200_000 + (pct - 50) * 16_000
                }
            })
            .collect();
        let map = AudioMap::from_knots(knots).expect("a map");
        let d = Deadlines::Audio {
            start_ms: 0,
            duration_ms: 100_000,
            map,
        };
        // Byte 196,608 (part 12) is 49.15 % of the time in, not 19.7 % (even bytes).
        assert_eq!(d.of(12), Some(49_152));
        assert_eq!(d.of(0), Some(0));
        // Past the last knot (trailing tags): the entry's end.
        assert_eq!(d.of(70), Some(100_000));
        // And back: the stream finds 49.152 % of the time at that byte.
        let Deadlines::Audio { map, .. } = &d else {
            unreachable!()
        };
        assert_eq!(map.offset_at(0.49152), 12 * PART_SIZE);
        assert_eq!(map.offset_at(1.0), 1_000_000);
        assert_eq!(map.offset_at(0.0), 0);
    }

    #[test]
    fn a_map_must_run_forward_over_some_audio() {
        assert!(AudioMap::from_knots(vec![5]).is_none());
        assert!(AudioMap::from_knots(vec![5, 5]).is_none());
        assert!(AudioMap::from_knots(vec![0, 9, 4, 12]).is_none());
        assert!(AudioMap::from_knots(vec![0, 4, 4, 12]).is_some());
        let linear = Deadlines::Linear {
            start_ms: 0,
            per_part_ms: 1_000.0,
        };
        let map = AudioMap::even(10..20);
        assert_eq!(linear.clone().with_audio(map.clone()), linear);
        assert_eq!(Deadlines::None.with_audio(map), Deadlines::None);
    }
}
