//! How players join and play, to score listeners by, and how each part spread among them.

use crate::{Entry, Node, PartSpread, Second, Sim, JOIN_AHEAD_MS, LATE_GRACE_MS};

/// How players join and play (`stream::client`), to score a listener by.
pub(crate) struct Playback<'a> {
    pub(crate) entries: &'a [Entry],
    pub(crate) burst_ms: u64,
    /// The audio a player gathers before it plays (the harness's 64 KiB).
    pub(crate) prebuffer_ms: f64,
}

/// One part of a listener's timeline: when players hear it begin and end, when it was held.
struct Moment {
    from: f64,
    to: f64,
    held: Option<f64>,
}

impl Playback<'_> {
    /// Every part of every entry in the order players hear them, with when `n` held each.
    fn timeline(&self, n: &Node) -> Vec<Moment> {
        let mut out = Vec::new();
        for (e, entry) in self.entries.iter().enumerate() {
            let d = n.downloads[e].as_ref();
            for p in 0..entry.parts {
                out.push(Moment {
                    from: entry.heard(p, self.burst_ms),
                    to: entry.heard(p + 1, self.burst_ms),
                    held: d.and_then(|d| d.held_at[p as usize]).map(|t| t as f64),
                });
            }
        }
        out
    }

    /// A listener's startup and silence. Its player connects as it arrives, when players
    /// hear the moment a burst back. The stream starts at the first part held within
    /// `JOIN_AHEAD_MS` past the heard moment, which moves on while nothing is (from the
    /// heard moment if that part plays then), and sends what it holds in order from there
    /// up to the live edge at once, then in real time: startup is when the player has its
    /// prebuffer. Silence: each later part the ear reaches before the listener leaves that
    /// comes more than `LATE_GRACE_MS` after the ear reaches it, for as late as it is (a
    /// whole part at most). One that never starts heard silence from its arrival on.
    /// Each second's silence is added to `seconds`.
    pub(crate) fn heard(&self, n: &Node, seconds: &mut [Second]) -> (u64, u64) {
        let arrived = n.arrived as f64;
        let leaves = n.leaves as f64;
        let parts = self.timeline(n);
        // The part and moment the stream starts with, and when: the earliest a held part is
        // within reach of the heard moment (a part held early waits for it to come near).
        let start = parts
            .iter()
            .enumerate()
            .filter_map(|(p, m)| {
                // Moments here are when players hear them: at `at` they hear `at`.
                let at = m.held?.max(arrived).max(m.from - JOIN_AHEAD_MS as f64);
                (m.to > at).then(|| (p, m.from.max(at), at))
            })
            .min_by(|a, b| a.2.total_cmp(&b.2))
            .filter(|s| s.2 < leaves);
        let Some((first, moment, began)) = start else {
            let left = (leaves - arrived).max(0.0) as u64;
            for s in seconds
                .iter_mut()
                .take(n.leaves as usize / 1000)
                .skip(n.arrived as usize / 1000)
            {
                s.silence_ms += 1000.0;
            }
            return (left, left);
        };
        // Prebuffered once every part up to `moment + prebuffer` is held and the live edge
        // has passed it; or, past a part that is not, once the silence the stream plays from
        // when the ear reaches it has filled the rest (at the latest a prebuffer after the
        // first sound).
        let until = moment + self.prebuffer_ms;
        // The live edge (the schedule's now) passes a moment a burst before players hear it.
        let mut ready = (until - self.burst_ms as f64).max(began);
        for m in parts[first..].iter().take_while(|m| m.from < until) {
            ready = ready.max(m.held.unwrap_or(f64::INFINITY));
        }
        let startup = (ready.min(began + self.prebuffer_ms) - arrived) as u64;
        // The ear reaches moment `m` at `began + (m - moment)`.
        let silence = parts[first + 1..]
            .iter()
            .map(|m| (m, began + m.from - moment))
            .take_while(|(_, ear)| *ear < leaves)
            .map(|(m, ear)| {
                let needed = ear + LATE_GRACE_MS as f64;
                let part_ms = m.to - m.from;
                let silent = match m.held {
                    Some(t) if t <= needed => 0.0,
                    Some(t) => (t - needed + LATE_GRACE_MS as f64).min(part_ms),
                    None => part_ms,
                };
                if let Some(s) = seconds.get_mut((ear / 1000.0) as usize) {
                    s.silence_ms += silent;
                }
                silent
            })
            .sum::<f64>();
        (startup, silence as u64)
    }
}

/// How every part heard while listeners were on spread among them (`startup_ms` per node:
/// a listener plays the parts heard after its first sound).
pub(crate) fn spread(sim: &Sim<'_>, burst_ms: u64, startup_ms: &[u64]) -> Vec<PartSpread> {
    let mut out = Vec::new();
    for (e, entry) in sim.entries.iter().enumerate() {
        for p in 0..entry.parts {
            let heard = entry.heard(p, burst_ms);
            let mut held: Vec<(u64, u64)> = sim
                .nodes
                .iter()
                .filter_map(|n| Some((n.downloads[e].as_ref()?.held_at[p as usize]?, n.leaves)))
                .collect();
            held.sort_unstable();
            let first_left = held
                .first()
                .map(|h| h.1)
                .filter(|&left| (left as f64) < heard);
            let held: Vec<u64> = held.into_iter().map(|h| h.0).collect();
            let playing: Vec<&Node> = sim
                .nodes
                .iter()
                .zip(startup_ms)
                .filter(|(n, up)| (n.arrived + **up) as f64 <= heard && n.leaves as f64 > heard)
                .map(|(n, _)| n)
                .collect();
            if playing.is_empty() {
                continue;
            }
            let (mut on_time, mut late, mut missed) = (0, 0, 0);
            for n in &playing {
                match n.downloads[e].as_ref().and_then(|d| d.held_at[p as usize]) {
                    Some(t) if t as f64 <= heard + LATE_GRACE_MS as f64 => on_time += 1,
                    Some(_) => late += 1,
                    None => missed += 1,
                }
            }
            let s = |t: u64| t as f64 / 1000.0;
            out.push(PartSpread {
                entry: e,
                part: p,
                heard_s: heard / 1000.0,
                first_s: held.first().copied().map(s),
                median_s: held.get(held.len() / 2).copied().map(s),
                listeners: playing.len(),
                on_time,
                late,
                missed,
                holders: held.len(),
                first_left_s: first_left.map(s),
            });
        }
    }
    out
}
