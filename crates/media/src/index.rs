//! The frame index: byte offset <-> media time, for pacing and for joining mid-file.
//!
//! Times are kept as sample counts (never as floating seconds), so a stream paced from the index
//! accumulates no drift however long it runs.

use std::ops::Range;
use std::time::Duration;

/// One seek point: a frame (MP3) or page (Ogg) starts at `offset`, `sample` samples into the
/// media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexPoint {
    pub offset: u64,
    pub sample: u64,
}

/// Byte offsets of a file's frames (MP3) or pages (Ogg) and the media time at each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameIndex {
    pub(crate) sample_rate: u32,
    pub(crate) channels: u16,
    pub(crate) audio_start: u64,
    pub(crate) audio_end: u64,
    pub(crate) total_samples: u64,
    pub(crate) audio_bytes: u64,
    pub(crate) skipped_bytes: u64,
    pub(crate) header: Option<Range<u64>>,
    pub(crate) points: Vec<IndexPoint>,
    /// Samples at the start that decoders drop (Opus pre-skip); not counted in the duration.
    pub(crate) pre_skip: u64,
}

/// Why a frame index could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("no {format} frames found")]
    NoFrames { format: &'static str },
    #[error("Ogg page at byte {offset}: {reason}")]
    BadPage { offset: u64, reason: &'static str },
    #[error("Ogg stream headers: {reason}")]
    BadHeaders { reason: &'static str },
}

impl FrameIndex {
    /// Samples per second per channel (for Opus, the 48 kHz granule rate).
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Playing time of the indexed audio.
    pub fn duration(&self) -> Duration {
        samples_to_duration(
            self.total_samples.saturating_sub(self.pre_skip),
            self.sample_rate,
        )
    }

    /// Samples in the indexed audio (pre-skip included).
    pub fn total_samples(&self) -> u64 {
        self.total_samples
    }

    /// Bytes `[audio_start, audio_end)` hold the audio frames or pages.
    pub fn audio_range(&self) -> Range<u64> {
        self.audio_start..self.audio_end
    }

    /// Bytes of audio frames (for the average bitrate).
    pub fn audio_bytes(&self) -> u64 {
        self.audio_bytes
    }

    /// Bytes between frames that were not audio (junk, stray tags).
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped_bytes
    }

    /// Bytes that must reach a decoder before any audio but never repeat mid-stream: the Ogg
    /// header pages, or the MP3 Xing/Info/VBRI frame.
    pub fn header(&self) -> Option<Range<u64>> {
        self.header.clone()
    }

    /// Every seek point, in order.
    pub fn points(&self) -> &[IndexPoint] {
        &self.points
    }

    /// The seek point at or before media time `t` (clamped to the first and last).
    pub fn point_at(&self, t: Duration) -> Option<IndexPoint> {
        let sample = duration_to_samples(t, self.sample_rate) + self.pre_skip;
        let i = self.points.partition_point(|p| p.sample <= sample);
        self.points.get(i.saturating_sub(1)).copied()
    }

    /// The media time at which the frame or page holding byte `offset` starts.
    pub fn time_at(&self, offset: u64) -> Option<Duration> {
        let i = self.points.partition_point(|p| p.offset <= offset);
        let point = self.points.get(i.checked_sub(1)?)?;
        Some(samples_to_duration(
            point.sample.saturating_sub(self.pre_skip),
            self.sample_rate,
        ))
    }
}

/// Exact sample count to time (no floating point).
pub fn samples_to_duration(samples: u64, rate: u32) -> Duration {
    if rate == 0 {
        return Duration::ZERO;
    }
    let rate = u64::from(rate);
    let secs = samples / rate;
    let nanos = (samples % rate) * 1_000_000_000 / rate;
    Duration::new(secs, u32::try_from(nanos).unwrap_or(0))
}

/// Time to the sample count at or before it.
pub fn duration_to_samples(t: Duration, rate: u32) -> u64 {
    let nanos = t.as_nanos() * u128::from(rate) / 1_000_000_000;
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> FrameIndex {
        FrameIndex {
            sample_rate: 1000,
            channels: 2,
            audio_start: 100,
            audio_end: 400,
            total_samples: 300,
            audio_bytes: 300,
            skipped_bytes: 0,
            header: None,
            points: (0..3)
                .map(|i| IndexPoint {
                    offset: 100 + i * 100,
                    sample: i * 100,
                })
                .collect(),
            pre_skip: 0,
        }
    }

    #[test]
    fn lookups() {
        let idx = index();
        assert_eq!(idx.duration(), Duration::from_millis(300));
        assert_eq!(idx.point_at(Duration::ZERO).unwrap().offset, 100);
        assert_eq!(
            idx.point_at(Duration::from_millis(150)).unwrap().offset,
            200
        );
        assert_eq!(
            idx.point_at(Duration::from_millis(200)).unwrap().offset,
            300
        );
        assert_eq!(idx.point_at(Duration::from_secs(99)).unwrap().offset, 300);
        assert_eq!(idx.time_at(250), Some(Duration::from_millis(100)));
        assert_eq!(idx.time_at(50), None);
    }

    #[test]
    fn sample_math_is_exact() {
        assert_eq!(samples_to_duration(44_100, 44_100), Duration::from_secs(1));
        assert_eq!(
            samples_to_duration(1152, 44_100),
            Duration::from_nanos(26_122_448)
        );
        assert_eq!(
            duration_to_samples(Duration::from_secs(3600), 44_100),
            158_760_000
        );
        assert_eq!(samples_to_duration(5, 0), Duration::ZERO);
    }
}
