//! When each part is due, and what that makes urgent, missed or wanted first.

use alluvium_content::PART_SIZE;

use super::{Picker, MISSED_MS};

/// When each part is due, if the download has deadlines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Deadlines {
    /// A plain fetch: no part is more urgent than another.
    None,
    /// Part `p` is due at `start_ms + p * per_part_ms`: parts of equal play time.
    Linear { start_ms: i64, per_part_ms: f64 },
    /// An entry of `duration_ms` from `start_ms` whose audio lies evenly over the bytes
    /// `audio_start..audio_end`: a part is due when its first byte plays. This is how the
    /// stream finds a moment's bytes, so both agree on which part plays when, whatever the
    /// tags before and after the audio and however short the last part is.
    Audio {
        start_ms: i64,
        duration_ms: i64,
        audio_start: u64,
        audio_end: u64,
    },
}

impl Deadlines {
    pub fn of(&self, part: u32) -> Option<i64> {
        match *self {
            Deadlines::None => None,
            Deadlines::Linear {
                start_ms,
                per_part_ms,
            } => Some(start_ms + (f64::from(part) * per_part_ms) as i64),
            Deadlines::Audio {
                start_ms,
                duration_ms,
                audio_start,
                audio_end,
            } => {
                let first = u64::from(part) * PART_SIZE;
                let into = first.saturating_sub(audio_start) as f64;
                let audio = audio_end.saturating_sub(audio_start).max(1) as f64;
                Some(start_ms + (into / audio * duration_ms as f64) as i64)
            }
        }
    }

    /// The same entry with its audio found at `audio` (the bytes between its tags).
    pub fn with_audio(self, audio: std::ops::Range<u64>) -> Self {
        match self {
            Deadlines::Audio {
                start_ms,
                duration_ms,
                ..
            } if audio.start < audio.end => Deadlines::Audio {
                start_ms,
                duration_ms,
                audio_start: audio.start,
                audio_end: audio.end,
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
            audio_start: 0,
            audio_end: size,
        };
        assert_eq!(d.of(0), Some(-1_000));
        // Part 55's first byte is 55 / 58.2 of the way in: 56.70 s, not 55 * 60 / 59.
        assert_eq!(d.of(55), Some(-1_000 + 56_701));
        // A 100 KB tag before the audio: its parts are due as the entry starts, the
        // audio's by where they fall in it.
        let tagged = d.with_audio(100_000..size);
        assert_eq!(tagged.of(3), Some(-1_000), "inside the tag");
        assert_eq!(tagged.of(6), Some(-1_000), "the tag ends in part 6");
        let into = (55 * PART_SIZE - 100_000) as f64 / (size - 100_000) as f64;
        assert_eq!(tagged.of(55), Some(-1_000 + (into * 60_000.0) as i64));
        assert_eq!(tagged.with_audio(7..7), tagged, "no audio found: kept");
    }

    #[test]
    fn only_an_entry_s_deadlines_follow_its_audio() {
        let linear = Deadlines::Linear {
            start_ms: 0,
            per_part_ms: 1_000.0,
        };
        assert_eq!(linear.with_audio(10..20), linear);
        assert_eq!(Deadlines::None.with_audio(10..20), Deadlines::None);
    }
}
