//! What a run gave: the harness's figures, second by second, part by part.

/// What a run gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The bitrate times the time from the first arrival to the last listener's leaving.
    pub aired_bytes: u64,
    /// On the wire ([`WIRE`]).
    pub origin_bytes: u64,
    pub peer_bytes: u64,
    /// Per listener (churn's newcomers after the others): from its arrival to its first sound.
    pub startup_ms: Vec<u64>,
    /// Per listener: what it should have heard after its first sound and did not hold in time.
    pub silence_ms: Vec<u64>,
    /// Per listener: how long it played.
    pub listened_ms: Vec<u64>,
    /// Second by second from the first arrival: what a picture of the run shows.
    pub seconds: Vec<Second>,
    /// When players heard each entry begin (s from the first arrival), within the run.
    pub entry_changes_s: Vec<f64>,
    /// How each part heard while listeners were on spread among them.
    pub parts: Vec<PartSpread>,
    /// Bytes asked of the origin, by how soon the first part was due when asked: overdue,
    /// within 5 s, later (an owner's block ahead).
    pub origin_asked: [u64; 3],
    /// Who asked the origin for each part, by the same three classes.
    pub origin_askers: [OriginAskers; 3],
}

/// Who asked the origin for parts of one class (see `Outcome::origin_asked`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OriginAskers {
    /// Parts asked for, and asks of a part (one listener may ask twice).
    pub parts: u64,
    pub asks: u64,
    /// Listeners that asked for a part, summed over the parts.
    pub askers: u64,
    /// Parts asked for by more than one listener.
    pub by_several: u64,
    /// Asks by a listener among the swarm's first [`OWNERS_PLACES`] members (by first record).
    pub by_eldest: u64,
}

/// The members that may own blocks: `PickerConfig::live().owners` and its rescuing backup.
pub const OWNERS_PLACES: usize = 8;

/// How one part spread: who held it by the time players heard it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartSpread {
    pub entry: usize,
    pub part: u32,
    /// When players heard it (s from the first arrival).
    pub heard_s: f64,
    /// When its first holder got it, and the median holder (s).
    pub first_s: Option<f64>,
    pub median_s: Option<f64>,
    /// Listeners playing when it was heard (there since a burst before it at least), and of
    /// them: held it a second after at the latest, later, never.
    pub listeners: usize,
    pub on_time: usize,
    pub late: usize,
    pub missed: usize,
    /// Listeners that ever held it, whether playing then or not.
    pub holders: usize,
    /// When its first holder (in a live run, the listener that took it from the origin)
    /// left, if it left before the part was heard (s): a part that left with its taker.
    pub first_left_s: Option<f64>,
}

/// One second of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Second {
    /// Wire bytes the origin sent.
    pub origin_bytes: f64,
    /// Bytes listeners sent each other.
    pub peer_bytes: f64,
    /// Listeners present.
    pub listeners: u32,
    /// Silence heard, all listeners together (ms).
    pub silence_ms: f64,
}

impl Outcome {
    /// The origin's wire bytes over the bytes aired while listeners were on.
    pub fn origin_copies(&self) -> f64 {
        self.origin_bytes as f64 / self.aired_bytes.max(1) as f64
    }

    /// The `q` quantile of the listeners' startups (ms).
    pub fn startup_quantile(&self, q: f64) -> u64 {
        quantile(&self.startup_ms, q)
    }

    /// The `q` quantile of the listeners' silences (ms).
    pub fn silence_quantile(&self, q: f64) -> u64 {
        quantile(&self.silence_ms, q)
    }

    /// Seconds of silence per hour listened, all listeners together.
    pub fn silence_per_hour_s(&self) -> f64 {
        let heard: u64 = self.listened_ms.iter().sum();
        let silent: u64 = self.silence_ms.iter().sum();
        silent as f64 / 1000.0 / (heard.max(1) as f64 / 3_600_000.0)
    }

    /// One line of figures, as the harness's RESULT line names them.
    pub fn summary(&self) -> String {
        let s = |v: &[u64], q: f64| quantile(v, q) as f64 / 1000.0;
        format!(
            "listeners={} origin_copies={:.3} peer_share={:.3} median_startup_s={:.2} \
             p90_startup_s={:.2} listener_silence_median_s={:.2} listener_silence_max_s={:.2} \
             silence_per_hour_s={:.1}",
            self.startup_ms.len(),
            self.origin_copies(),
            self.peer_bytes as f64 / (self.peer_bytes + self.origin_bytes).max(1) as f64,
            s(&self.startup_ms, 0.5),
            s(&self.startup_ms, 0.9),
            s(&self.silence_ms, 0.5),
            s(&self.silence_ms, 1.0),
            self.silence_per_hour_s(),
        )
    }
}

/// The `q` quantile of `v` (nearest rank), 0 for none.
pub(crate) fn quantile(v: &[u64], q: f64) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len().max(1)) - 1;
    v.get(i).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        assert_eq!(quantile(&[5, 1, 3], 0.5), 3);
        assert_eq!(quantile(&[5, 1, 3], 1.0), 5);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
