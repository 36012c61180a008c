//! A run's setting, and when its listeners come and go.

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::Rng;

/// How listeners arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrivals {
    /// This many ms apart.
    Fixed(u64),
    /// Exponential gaps with this mean (ms), from the seed, as the harness's `ARRIVALS=poisson`.
    Poisson(u64),
}

/// One run's setting.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub listeners: usize,
    /// Between arrivals; the first arrives at time 0.
    pub arrivals: Arrivals,
    /// Each listener's uplink, a multiple of the bitrate: listener `i` has `uplinks_x[i % len]`.
    pub uplinks_x: Vec<f64>,
    /// The origin's uplink, a multiple of the bitrate.
    pub origin_x: f64,
    pub kbit: u32,
    /// Each entry's length (every entry is a different file).
    pub entry_s: u32,
    /// The station went on air this long before the first arrival: 0 is a cold flash crowd
    /// on the first entry's start.
    pub start_ago_s: u32,
    /// Each listener plays this long from its arrival, then leaves.
    pub listen_s: u32,
    /// After the last arrival, every this many ms the listener here longest leaves and a new
    /// one arrives, playing until the last arrival's `listen_s` is over (0: none).
    pub churn_ms: u64,
    /// From a listener's arrival to its first ask: process start, playlist, gateway, tracker.
    pub setup_ms: u64,
    /// One way, between any two nodes.
    pub latency_ms: u64,
    /// How each listener paces its uploads.
    pub pace: Pace,
    /// How a listener's server treats asks for parts it alone holds (not the node's yet).
    pub sole_first: SoleFirst,
    /// Every answer due at its sender earlier by the hops its part still needs to reach
    /// every member, by how many of the sender's followed peers hold it, as the node does
    /// (`Node::spread_lead`, docs/decisions/052).
    pub spread_lead: bool,
    /// Peers whose news each listener follows (`LIVE_NEIGHBOURS`).
    pub neighbours: usize,
    /// A listener announces every 2 s while its swarm grows or it knows fewer than 8 peers,
    /// else every this many ms (the node: the tracker's interval, at most 10 s), and so
    /// learns this late at worst that a member left.
    pub announce_ms: u64,
    /// Players hear the schedule this late and get this much at once (`--burst`).
    pub burst_ms: u64,
    pub seed: u64,
    /// Prints this listener's asks, answers and refusals to stderr as they happen, and the
    /// asks it gets (its index in arrival order, from 0).
    pub trace: Option<usize>,
}

/// How a listener paces its uploads (`alluvium listen --upload-limit`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// `auto`: from 1.6x the bitrate, following the link by the askers' delivery reports
    /// (the real `LinkFollower`).
    Auto,
    /// At this multiple of the bitrate, or the link if slower.
    Fixed(f64),
    /// At the link's rate.
    Link,
}

/// How a listener's server treats an ask for a part it took from the origin and has not sent
/// on: the swarm's only copy (BitTorrent's super-seeding sends each piece once before any
/// twice). One such answer in flight at most, and each part so until one such answer went
/// out whole. The node does as `Lead` (`swarm/src/server/mod.rs`, docs/decisions/058); the
/// others are the simulator's experiments (docs/decisions/049, 051).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SoleFirst {
    /// As any ask: soonest due first (the node before decision 051).
    Off,
    /// Taken past the answer cap and sent before anything.
    First,
    /// Taken and sent as an urgent ask is (due within 3 s), within its cap.
    Urgent,
    /// Taken past the cap, due earlier by the hops it takes to reach every member the
    /// holder knows (log2 of them), each an answer sent behind the cap's answers.
    Lead,
    /// As `Lead`, but never ahead of an urgent ask: those are silence now if late (the node
    /// from decision 051 to 058).
    LeadAfterUrgent,
}

impl Default for Scenario {
    /// The harness's defaults (`./bench.sh alluvium N=30 T=120`): a station on air for 20 s
    /// of four 60 s entries, listeners a second apart with 2x uplinks paced `auto`, the
    /// origin at 4x, 128 kbit/s.
    fn default() -> Self {
        Self {
            listeners: 30,
            arrivals: Arrivals::Fixed(1_000),
            uplinks_x: vec![2.0],
            origin_x: 4.0,
            kbit: 128,
            entry_s: 60,
            start_ago_s: 20,
            listen_s: 120,
            churn_ms: 0,
            setup_ms: 800,
            latency_ms: 20,
            pace: Pace::Auto,
            sole_first: SoleFirst::Lead,
            spread_lead: true,
            neighbours: 8,
            announce_ms: alluvium_swarm::download::MAX_ANNOUNCE.as_millis() as u64,
            burst_ms: 4_000,
            seed: 1,
            trace: None,
        }
    }
}

/// When each listener arrives and leaves, and when churn's leavings are (as the harness:
/// after the last arrival, every `churn_ms` while a newcomer has a second left to play).
pub(crate) fn plan(s: &Scenario, rng: &mut StdRng) -> (Vec<(u64, u64)>, VecDeque<u64>) {
    let listen = u64::from(s.listen_s) * 1000;
    let mut arrivals = Vec::with_capacity(s.listeners);
    let mut t = 0.0f64;
    for i in 0..s.listeners {
        if i > 0 {
            t += match s.arrivals {
                Arrivals::Fixed(gap) => gap as f64,
                Arrivals::Poisson(mean) => -(1.0 - rng.random::<f64>()).ln() * mean as f64,
            };
        }
        arrivals.push(t as u64);
    }
    let last = arrivals.last().copied().unwrap_or(0);
    let mut plan: Vec<(u64, u64)> = arrivals.iter().map(|&a| (a, a + listen)).collect();
    let mut churn = VecDeque::new();
    if s.churn_ms > 0 {
        let end = last + listen;
        let mut at = last + s.churn_ms;
        while at + 1_000 <= end {
            churn.push_back(at);
            plan.push((at, end));
            at += s.churn_ms;
        }
    }
    (plan, churn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn poisson_arrivals_follow_the_seed_and_their_mean() {
        let s = Scenario {
            listeners: 2_000,
            arrivals: Arrivals::Poisson(1_000),
            ..Scenario::default()
        };
        let (a, _) = plan(&s, &mut StdRng::seed_from_u64(1));
        let (b, _) = plan(&s, &mut StdRng::seed_from_u64(1));
        assert_eq!(a, b);
        let mean = a.last().unwrap().0 as f64 / 1_999.0;
        assert!((900.0..1_100.0).contains(&mean), "{mean}");
        assert!(a.iter().all(|p| p.1 == p.0 + 120_000));
        let churn = Scenario {
            listeners: 3,
            churn_ms: 5_000,
            listen_s: 12,
            ..Scenario::default()
        };
        let (p, at) = plan(&churn, &mut StdRng::seed_from_u64(1));
        // The last arrives at 2 s and plays until 14 s: newcomers at 7 and 12 s.
        assert_eq!(at, [7_000, 12_000]);
        assert_eq!(&p[3..], [(7_000, 14_000), (12_000, 14_000)]);
    }
}
