//! A deterministic simulator of a station's swarm (issue 34, first step): listeners swarm one
//! entry with the real [`Picker`], each uplink a queue at its rate (as the harness's `tbf`),
//! one latency between any two nodes, the tracker exact. It reports what the harness
//! (`../shared/bench`) measures: origin copies, startup, silence per listener.
//!
//! Not modelled yet: neighbour sets (every listener follows every other), upload pacing and
//! the order answers are sent in (`uplink.rs`: here first asked, first sent), churn, lying or
//! silent peers, a warm station, plots.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};

use alluvium_swarm::picker::{member_hash, Deadlines, Picker, PickerConfig, Source};
use alluvium_swarm::Bitfield;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// A part's size: the swarm's unit (`alluvium_content::PART_SIZE`).
pub const PART: u64 = 16 * 1024;
/// The simulation's step: each picker is woken at most this often.
const STEP_MS: u64 = 10;
/// Simulated time 0 in Unix ms (the pickers count members' starts from the epoch).
const EPOCH_MS: u64 = 1_800_000_000_000;
/// A live download announces every 2 s (`Announcing::Live`).
const ANNOUNCE_MS: u64 = 2_000;

/// One run's setting.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub listeners: usize,
    /// Between arrivals; the first arrives as the entry starts (a cold flash crowd).
    pub arrival_gap_ms: u64,
    /// Each listener's uplink, a multiple of the bitrate.
    pub uplink_x: f64,
    /// The origin's uplink, a multiple of the bitrate.
    pub origin_x: f64,
    pub kbit: u32,
    /// The entry's length.
    pub seconds: u32,
    /// One way, between any two nodes.
    pub latency_ms: u64,
    pub seed: u64,
}

/// What a run gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub content_bytes: u64,
    pub origin_bytes: u64,
    pub peer_bytes: u64,
    /// Per listener: from its arrival to its first sound.
    pub startup_ms: Vec<u64>,
    /// Per listener: what it should have heard after its first sound and did not hold in time.
    pub silence_ms: Vec<u64>,
}

impl Outcome {
    /// The origin's bytes over the entry's size.
    pub fn origin_copies(&self) -> f64 {
        self.origin_bytes as f64 / self.content_bytes.max(1) as f64
    }

    /// One line of figures, as the harness's RESULT line names them.
    pub fn summary(&self) -> String {
        let s = |v: &[u64], q: f64| quantile(v, q) as f64 / 1000.0;
        format!(
            "origin_copies={:.3} peer_share={:.3} median_startup_s={:.2} p90_startup_s={:.2} \
             listener_silence_median_s={:.2} listener_silence_max_s={:.2}",
            self.origin_copies(),
            self.peer_bytes as f64 / (self.peer_bytes + self.origin_bytes).max(1) as f64,
            s(&self.startup_ms, 0.5),
            s(&self.startup_ms, 0.9),
            s(&self.silence_ms, 0.5),
            s(&self.silence_ms, 1.0),
        )
    }
}

/// The `q` quantile of `v` (nearest rank), 0 for none.
fn quantile(v: &[u64], q: f64) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len().max(1)) - 1;
    v.get(i).copied().unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("a scenario needs at least one listener, a bitrate and a length")]
    Empty,
}

struct Node {
    arrived: u64,
    picker: Picker,
    hash: u64,
    /// When its uplink is free.
    busy_until: u64,
    held_at: Vec<Option<u64>>,
    next_announce: u64,
    /// When its picker next wants waking (simulated ms), or now when news came.
    wake: Option<u64>,
}

/// A transfer on its way: lands at `.0`.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Landing(u64, u64, usize, u64, u32, u32, u64);

fn addr(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
    SocketAddr::from((ip, 7001))
}

fn index(a: SocketAddr) -> usize {
    match a.ip() {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            (usize::from(o[1]) << 16) | (usize::from(o[2]) << 8) | usize::from(o[3])
        }
        std::net::IpAddr::V6(_) => usize::MAX,
    }
}

/// A run in progress.
struct Sim<'a> {
    s: &'a Scenario,
    size: u64,
    parts: u32,
    per_part_ms: f64,
    /// Bytes per ms.
    uplink: f64,
    origin_rate: f64,
    rng: StdRng,
    nodes: Vec<Node>,
    landings: BinaryHeap<Reverse<Landing>>,
    /// A node's news (what it holds) reaching the others: when, whose.
    news: VecDeque<(u64, usize)>,
    origin_busy: u64,
    origin_bytes: u64,
    peer_bytes: u64,
    seq: u64,
}

/// Runs `s` to the end of its entry and a moment more.
pub fn run(s: &Scenario) -> Result<Outcome, SimError> {
    if s.listeners == 0 || s.kbit == 0 || s.seconds == 0 {
        return Err(SimError::Empty);
    }
    let byte_rate = f64::from(s.kbit) * 1000.0 / 8.0;
    let size = (byte_rate * f64::from(s.seconds)) as u64;
    let parts = size.div_ceil(PART) as u32;
    let mut sim = Sim {
        s,
        size,
        parts,
        per_part_ms: f64::from(s.seconds) * 1000.0 / f64::from(parts),
        uplink: byte_rate * s.uplink_x / 1000.0,
        origin_rate: byte_rate * s.origin_x / 1000.0,
        rng: StdRng::seed_from_u64(s.seed),
        nodes: Vec::with_capacity(s.listeners),
        landings: BinaryHeap::new(),
        news: VecDeque::new(),
        origin_busy: 0,
        origin_bytes: 0,
        peer_bytes: 0,
        seq: 0,
    };
    let end = u64::from(s.seconds) * 1000 + 2_000;
    let mut t = 0;
    while t <= end {
        sim.arrive(t);
        sim.land(t);
        sim.spread_news(t);
        sim.announce(t);
        sim.ask(t);
        t += STEP_MS;
    }
    let per_part_ms = sim.per_part_ms;
    let due = |p: u32| (f64::from(p) * per_part_ms) as u64;
    let (startup_ms, silence_ms) = sim
        .nodes
        .iter()
        .map(|n| heard(n, parts, per_part_ms as u64, &due))
        .unzip();
    Ok(Outcome {
        content_bytes: size,
        origin_bytes: sim.origin_bytes,
        peer_bytes: sim.peer_bytes,
        startup_ms,
        silence_ms,
    })
}

impl Sim<'_> {
    /// Listeners arriving by `t`, each with its picker, deadlines on its own time 0.
    fn arrive(&mut self, t: u64) {
        while self.nodes.len() < self.s.listeners
            && self.nodes.len() as u64 * self.s.arrival_gap_ms <= t
        {
            let hash = member_hash(&format!("listener-{}", self.nodes.len()));
            let deadlines = Deadlines::Linear {
                start_ms: -(t as i64),
                per_part_ms: self.per_part_ms,
            };
            let mut picker = Picker::new(
                Bitfield::new(self.parts),
                deadlines,
                PickerConfig::live(),
                hash,
            );
            picker.set_started(EPOCH_MS + t, EPOCH_MS + t);
            self.nodes.push(Node {
                arrived: t,
                picker,
                hash,
                busy_until: 0,
                held_at: vec![None; self.parts as usize],
                next_announce: t + 2 * self.s.latency_ms,
                wake: Some(t),
            });
        }
    }

    /// Transfers that land by `t`: kept, and told to the others a latency later.
    fn land(&mut self, t: u64) {
        while self.landings.peek().is_some_and(|l| l.0 .0 <= t) {
            let Some(Reverse(Landing(_, _, i, id, first, count, bytes))) = self.landings.pop()
            else {
                break;
            };
            let n = &mut self.nodes[i];
            let _cancelled = n.picker.completed(id, first, count, bytes, t - n.arrived);
            for p in first..first + count {
                if n.picker.have().get(p) {
                    n.held_at[p as usize].get_or_insert(t);
                }
            }
            n.wake = Some(t);
            self.news.push_back((t + self.s.latency_ms, i));
        }
    }

    /// What each holds, reaching the others.
    fn spread_news(&mut self, t: u64) {
        while self.news.front().is_some_and(|&(at, _)| at <= t) {
            let Some((_, from)) = self.news.pop_front() else {
                break;
            };
            let have = self.nodes[from].picker.have().clone();
            for (j, n) in self.nodes.iter_mut().enumerate() {
                if j != from {
                    n.picker
                        .set_peer_have(addr(from), have.clone(), t - n.arrived);
                    n.wake = Some(t);
                }
            }
        }
    }

    /// Announces due by `t`: the tracker names every member, with when it first saw each.
    fn announce(&mut self, t: u64) {
        let members: Vec<(u64, u64)> = self.nodes.iter().map(|n| (n.hash, n.arrived)).collect();
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if n.next_announce > t {
                continue;
            }
            n.next_announce = t + ANNOUNCE_MS;
            for (j, &(hash, arrived)) in members.iter().enumerate() {
                if j != i {
                    n.picker.add_peer(addr(j));
                    n.picker
                        .set_membership(addr(j), Some((hash, EPOCH_MS + arrived)));
                }
            }
            n.picker.set_joined(EPOCH_MS + n.arrived);
            n.picker.set_tracker_answered();
            n.wake = Some(t);
        }
    }

    /// Every picker that wants waking asks; each ask waits its turn on its source's uplink.
    fn ask(&mut self, t: u64) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].wake.is_none_or(|w| w > t) {
                continue;
            }
            let local = t - self.nodes[i].arrived;
            let asks = self.nodes[i].picker.next(local, &mut self.rng);
            for q in asks {
                let end = (u64::from(q.first + q.count) * PART).min(self.size);
                let bytes = end - u64::from(q.first) * PART;
                let sent_at = t + self.s.latency_ms;
                let done = match q.source {
                    Source::Origin => {
                        self.origin_busy = self.origin_busy.max(sent_at)
                            + (bytes as f64 / self.origin_rate) as u64;
                        self.origin_bytes += bytes;
                        self.origin_busy + self.s.latency_ms
                    }
                    Source::Peer(a) => {
                        let Some(server) = self.nodes.get_mut(index(a)) else {
                            continue;
                        };
                        server.busy_until =
                            server.busy_until.max(sent_at) + (bytes as f64 / self.uplink) as u64;
                        self.peer_bytes += bytes;
                        server.busy_until + self.s.latency_ms
                    }
                };
                self.seq += 1;
                let landing = Landing(done, self.seq, i, q.id, q.first, q.count, bytes);
                self.landings.push(Reverse(landing));
            }
            let n = &mut self.nodes[i];
            n.wake = n.picker.poll_timeout(local).map(|w| w + n.arrived);
        }
    }
}

/// A listener's startup and silence: it starts at the first moment it holds the part playing
/// then, and from there each part it lacks at its moment is silence until it comes (a whole
/// part at most). One that never starts heard silence from its arrival to the end.
fn heard(n: &Node, parts: u32, part_ms: u64, due: &impl Fn(u32) -> u64) -> (u64, u64) {
    let first = (0..parts).find(|&p| due(p + 1) > n.arrived);
    let Some(first) = first else {
        return (0, 0);
    };
    let start = (first..parts).find_map(|p| {
        let at = n.held_at[p as usize]?.max(due(p)).max(n.arrived);
        (at < due(p + 1)).then_some(at)
    });
    // Never a sound: all of it was silence.
    let Some(start) = start else {
        let left = due(parts).saturating_sub(n.arrived);
        return (left, left);
    };
    let silence = (first..parts)
        .filter(|&p| due(p) >= start)
        .map(|p| match n.held_at[p as usize] {
            Some(at) => at.saturating_sub(due(p)).min(part_ms),
            None => part_ms,
        })
        .sum();
    (start - n.arrived, silence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alone(origin_x: f64) -> Scenario {
        Scenario {
            listeners: 1,
            arrival_gap_ms: 1_000,
            uplink_x: 2.0,
            origin_x,
            kbit: 128,
            seconds: 30,
            latency_ms: 20,
            seed: 1,
        }
    }

    #[test]
    fn a_listener_alone_takes_one_copy_from_a_fast_origin_and_hears_everything() {
        let o = run(&alone(10.0)).unwrap();
        assert_eq!(o.origin_bytes, o.content_bytes, "{}", o.summary());
        assert_eq!(o.peer_bytes, 0);
        assert_eq!(o.silence_ms, [0], "{}", o.summary());
        assert!(o.startup_ms[0] < 1_500, "{}", o.summary());
    }

    #[test]
    fn an_origin_slower_than_the_bitrate_is_heard_as_silence() {
        let o = run(&alone(0.5)).unwrap();
        assert!(o.silence_ms[0] > 5_000, "{}", o.summary());
    }

    #[test]
    fn listeners_share_what_the_origin_sends_and_a_seed_gives_the_same_run() {
        let s = Scenario {
            listeners: 8,
            ..alone(4.0)
        };
        let (a, b) = (run(&s).unwrap(), run(&s).unwrap());
        assert_eq!(a.summary(), b.summary(), "deterministic");
        assert!(a.peer_bytes > a.origin_bytes, "{}", a.summary());
        assert!(a.origin_copies() < 2.0, "{}", a.summary());
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        assert_eq!(quantile(&[5, 1, 3], 0.5), 3);
        assert_eq!(quantile(&[5, 1, 3], 1.0), 5);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
