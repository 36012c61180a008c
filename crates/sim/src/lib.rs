//! A deterministic simulator of a station's swarm: listeners follow a schedule of entries with
//! the real [`Picker`], one per entry they fetch (the one on air and the next, as `alluvium
//! listen --ahead 1` does). Each listener's peer server takes a few answers and refuses the
//! rest (`503`) as `answers.rs` does, and sends the soonest due first, whatever the entry, at
//! its paced rate (the lesser of its link and `--upload-limit`); the origin takes every ask
//! and shares its link; one latency between any two nodes; the tracker exact per entry,
//! naming 50 members an answer as it does; each listener follows a few neighbours' news.
//! Players join as the stream lets them (Icecast's burst: they hear the schedule `burst_ms`
//! late and get that much at once), play for a while and leave; under churn the oldest leave
//! early and others take their place. It reports what the harness (`../shared/bench`)
//! measures: origin copies (wire bytes over what was aired while listeners were on), startup
//! (to a 64 KiB prebuffer), silence per listener.
//!
//! Not modelled: how neighbours are chosen beyond the tracker's sample (here at random), peer
//! exchange, lying or silent peers, packet loss (a sender paced past its link just sends at
//! the link), the gateway (its trees are known at once).

pub mod plot;
mod server;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};

use alluvium_gateway_client::wire::{DEFAULT_PEERS_PER_ANSWER, ELDEST_PER_ANSWER};
use alluvium_swarm::picker::{member_hash, Deadlines, Failure, Picker, PickerConfig, Source};
use alluvium_swarm::Bitfield;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use server::{Answer, Server};

/// A part's size: the swarm's unit (`alluvium_content::PART_SIZE`).
pub const PART: u64 = 16 * 1024;
/// What a link carries on the wire per byte of payload: a full Ethernet frame (1,514 bytes)
/// carries 1,448 (the harness shapes and counts wire bytes).
pub const WIRE: f64 = 1514.0 / 1448.0;
/// The simulation's step: each picker is woken at most this often.
const STEP_MS: u64 = 10;
/// Simulated time 0 in Unix ms (the pickers count members' starts from the epoch).
const EPOCH_MS: u64 = 1_800_000_000_000;
/// A live download announces every 2 s (`Announcing::Live`).
const ANNOUNCE_MS: u64 = 2_000;
/// The stream waits this long past a part's moment before it plays silence, its player
/// having audio left (`stream/src/client.rs`, `LATE_GRACE`).
const LATE_GRACE_MS: u64 = 1_000;
/// A new player starts at the first held moment this far past the heard one (`JOIN_AHEAD`).
const JOIN_AHEAD_MS: u64 = 1_000;
/// A player has started once it has this much (the harness's 64 KiB prebuffer).
const PREBUFFER_BYTES: u64 = 64 * 1024;
/// The tracker names at most this many members an answer, the eldest first, then complete
/// holders, the rest at random.
const PEERS_PER_ANSWER: usize = DEFAULT_PEERS_PER_ANSWER;
/// A node knows at most this many peers of a content (`MAX_KNOWN_PEERS`).
const MAX_KNOWN: usize = 200;
/// A member the tracker has known for less than this is an arrival (`follow.rs`).
const ARRIVAL_MS: u64 = 5_000;
/// A full set of neighbours lets one go this often (`follow.rs`).
const ROTATE_EVERY_MS: u64 = 5_000;
/// A download stops this long after its entry's slot (`station/src/follow.rs`).
const STOP_AFTER_MS: i64 = 5_000;
/// Entries after the one on air that a listener fetches (`alluvium listen --ahead`).
const AHEAD: usize = 1;
/// Answers the peer servers take at once (`DEFAULT_MAX_BLOB_ANSWERS`).
const ANSWERS: usize = 2;

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
    /// Uploads paced at this multiple of the bitrate (`--upload-limit auto` is 1.6); `None`:
    /// the link's rate.
    pub pace_x: Option<f64>,
    /// Peers whose news each listener follows (`LIVE_NEIGHBOURS`).
    pub neighbours: usize,
    /// Players hear the schedule this late and get this much at once (`--burst`).
    pub burst_ms: u64,
    pub seed: u64,
}

impl Default for Scenario {
    /// The harness's defaults (`./bench.sh alluvium N=30 T=120`): a station on air for 20 s
    /// of four 60 s entries, listeners a second apart with 2x uplinks paced at 1.6x, the
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
            pace_x: Some(1.6),
            neighbours: 8,
            burst_ms: 4_000,
            seed: 1,
        }
    }
}

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
}

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
fn quantile(v: &[u64], q: f64) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len().max(1)) - 1;
    v.get(i).copied().unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("a scenario needs at least one listener and uplink, a bitrate and lengths")]
    Empty,
}

/// One entry of the schedule.
struct Entry {
    size: u64,
    parts: u32,
    per_part_ms: f64,
    /// When the schedule plays its first byte (sim ms; before 0 for the entry on air).
    starts: i64,
}

impl Entry {
    /// When players hear part `p` (sim ms).
    fn heard(&self, p: u32, burst_ms: u64) -> f64 {
        self.starts as f64 + burst_ms as f64 + f64::from(p) * self.per_part_ms
    }
}

/// One listener.
struct Node {
    arrived: u64,
    /// When its player stops and it leaves.
    leaves: u64,
    gone: bool,
    hash: u64,
    server: Server,
    /// Its downloads by entry.
    downloads: Vec<Option<Download>>,
}

/// One listener's download of one entry.
struct Download {
    /// The picker's time 0 (sim ms), and the tracker's first record of it in this swarm.
    began: u64,
    /// Stopped asking (its slot is over); still serves and tells what it holds.
    stopped: bool,
    picker: Picker,
    /// Whose news it follows.
    follows: Vec<usize>,
    /// Who follows its news.
    followers: Vec<usize>,
    /// Peers it knows (named by the tracker).
    known: HashSet<usize>,
    /// Arrivals already decided on (`adopt_arrivals`).
    considered: HashSet<usize>,
    last_rotation: u64,
    held_at: Vec<Option<u64>>,
    next_announce: u64,
    /// When its picker next wants waking (sim ms), or now when news came.
    wake: Option<u64>,
}

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

/// A swarm's members by node: hash, when the tracker first saw it (sim ms), whether complete.
type Since = std::collections::HashMap<usize, (u64, u64, bool)>;

/// News on its way: when it lands, its order among equals, whose, of which entry, to whom
/// (`None`: every follower).
type News = Reverse<(u64, u64, usize, usize, Option<usize>)>;

/// A run in progress. Every message takes one latency; each queue is in time order.
struct Sim<'a> {
    s: &'a Scenario,
    entries: Vec<Entry>,
    rng: StdRng,
    /// When each listener arrives and leaves (sim ms), in arrival order.
    plan: Vec<(u64, u64)>,
    /// Under churn: when the listener here longest leaves for a newcomer.
    churn_at: VecDeque<u64>,
    nodes: Vec<Node>,
    origin: Server,
    /// Asks reaching their sender (`None`: the origin).
    asks: VecDeque<(u64, Option<usize>, Answer)>,
    /// Answers' last bytes reaching their askers.
    landings: VecDeque<(u64, Answer)>,
    /// Refusals reaching their askers: when, who, which entry, which request, why.
    refusals: VecDeque<(u64, usize, usize, u64, Failure)>,
    /// What a node holds reaching its followers, or one new follower.
    news: BinaryHeap<News>,
    news_seq: u64,
    origin_bytes: f64,
    peer_bytes: f64,
    seconds: Vec<Second>,
}

/// Runs `s` until every listener has left.
pub fn run(s: &Scenario) -> Result<Outcome, SimError> {
    if s.listeners == 0
        || s.uplinks_x.is_empty()
        || s.kbit == 0
        || s.entry_s == 0
        || s.listen_s == 0
    {
        return Err(SimError::Empty);
    }
    let byte_rate = f64::from(s.kbit) * 1000.0 / 8.0;
    let mut rng = StdRng::seed_from_u64(s.seed);
    let (plan, churn_at) = plan(s, &mut rng);
    let end = plan.iter().map(|p| p.1).max().unwrap_or(0);
    let entry_ms = u64::from(s.entry_s) * 1000;
    let size = (byte_rate * f64::from(s.entry_s)) as u64;
    let parts = size.div_ceil(PART) as u32;
    let start = -(i64::from(s.start_ago_s) * 1000);
    let count = ((end as i64 - start) as u64).div_ceil(entry_ms) as usize + 1 + AHEAD;
    let entries = (0..count)
        .map(|e| Entry {
            size,
            parts,
            per_part_ms: entry_ms as f64 / f64::from(parts),
            starts: start + (e as u64 * entry_ms) as i64,
        })
        .collect();
    let mut sim = Sim {
        s,
        entries,
        rng,
        plan,
        churn_at,
        nodes: Vec::new(),
        origin: Server::origin(byte_rate * s.origin_x / WIRE / 1000.0),
        asks: VecDeque::new(),
        landings: VecDeque::new(),
        refusals: VecDeque::new(),
        news: BinaryHeap::new(),
        news_seq: 0,
        origin_bytes: 0.0,
        peer_bytes: 0.0,
        seconds: vec![Second::default(); (end / 1000 + 2) as usize],
    };
    let mut t = 0;
    while t <= end + STEP_MS {
        sim.arrive(t);
        sim.leave(t);
        sim.follow_schedule(t);
        sim.deliver_asks(t);
        sim.send(t);
        sim.land(t);
        sim.refuse(t);
        sim.spread_news(t);
        sim.announce(t);
        sim.ask(t);
        t += STEP_MS;
    }
    let play = Playback {
        entries: &sim.entries,
        burst_ms: s.burst_ms,
        prebuffer_ms: PREBUFFER_BYTES as f64 * 1000.0 / byte_rate,
    };
    let first = sim.plan.first().map_or(0, |p| p.0);
    let mut startup_ms = Vec::new();
    let mut silence_ms = Vec::new();
    let mut listened_ms = Vec::new();
    let mut seconds = std::mem::take(&mut sim.seconds);
    for n in &sim.nodes {
        let (startup, silence) = play.heard(n, &mut seconds);
        startup_ms.push(startup);
        silence_ms.push(silence);
        listened_ms.push(n.leaves - n.arrived);
        for s in &mut seconds[(n.arrived / 1000) as usize..(n.leaves / 1000) as usize] {
            s.listeners += 1;
        }
    }
    let parts = spread(&sim, s.burst_ms, &startup_ms);
    Ok(Outcome {
        aired_bytes: (byte_rate * (end - first) as f64 / 1000.0) as u64,
        origin_bytes: (sim.origin_bytes * WIRE) as u64,
        peer_bytes: sim.peer_bytes as u64,
        startup_ms,
        silence_ms,
        listened_ms,
        seconds,
        parts,
        entry_changes_s: sim
            .entries
            .iter()
            .map(|e| e.heard(0, s.burst_ms) / 1000.0)
            .filter(|&at| at > 0.0 && at < end as f64 / 1000.0)
            .collect(),
    })
}

/// How every part heard while listeners were on spread among them (`startup_ms` per node:
/// a listener plays the parts heard after its first sound).
fn spread(sim: &Sim<'_>, burst_ms: u64, startup_ms: &[u64]) -> Vec<PartSpread> {
    let mut out = Vec::new();
    for (e, entry) in sim.entries.iter().enumerate() {
        for p in 0..entry.parts {
            let heard = entry.heard(p, burst_ms);
            let mut held: Vec<u64> = sim
                .nodes
                .iter()
                .filter_map(|n| n.downloads[e].as_ref()?.held_at[p as usize])
                .collect();
            held.sort_unstable();
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
            });
        }
    }
    out
}

/// When each listener arrives and leaves, and when churn's leavings are (as the harness:
/// after the last arrival, every `churn_ms` while a newcomer has a second left to play).
fn plan(s: &Scenario, rng: &mut StdRng) -> (Vec<(u64, u64)>, VecDeque<u64>) {
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

impl Sim<'_> {
    fn later(&self, t: u64) -> u64 {
        t + self.s.latency_ms
    }

    /// Listeners arriving by `t`.
    fn arrive(&mut self, t: u64) {
        while let Some(&(arrived, leaves)) = self.plan.get(self.nodes.len()) {
            if arrived > t {
                break;
            }
            let i = self.nodes.len();
            let x = self.s.uplinks_x[i % self.s.uplinks_x.len()];
            let byte_rate = f64::from(self.s.kbit) * 1000.0 / 8.0;
            let link = byte_rate * x / WIRE / 1000.0;
            let rate = self
                .s
                .pace_x
                .map_or(link, |p| link.min(byte_rate * p / 1000.0));
            self.nodes.push(Node {
                arrived,
                leaves,
                gone: false,
                hash: member_hash(&format!("listener-{i}")),
                server: Server::peer(rate, ANSWERS),
                downloads: (0..self.entries.len()).map(|_| None).collect(),
            });
        }
    }

    /// Under churn the listener here longest leaves at each churn time; every listener
    /// leaves when its player is done. A leaver's answers stop, its asks are forgotten, and
    /// those following it let it go.
    fn leave(&mut self, t: u64) {
        let mut early = None;
        if self.churn_at.front().is_some_and(|&at| at <= t) {
            self.churn_at.pop_front();
            early = self.nodes.iter().position(|n| !n.gone);
        }
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if n.gone || (n.leaves > t && early != Some(i)) {
                continue;
            }
            self.nodes[i].leaves = t;
            self.nodes[i].gone = true;
            // Its connections reset: answers to it stop, and answers from it are cut off.
            self.origin.drop_asker(i);
            for n in &mut self.nodes {
                n.server.drop_asker(i);
            }
            let cut = self.later(t);
            for a in self.nodes[i].server.drop_all() {
                self.refusals
                    .push_back((cut, a.asker, a.entry, a.id, Failure::Broken));
            }
            for e in 0..self.entries.len() {
                let Some(d) = self.nodes[i].downloads[e].as_mut() else {
                    continue;
                };
                d.stopped = true;
                let (followers, follows) = (
                    std::mem::take(&mut d.followers),
                    std::mem::take(&mut d.follows),
                );
                for f in followers {
                    if let Some(fd) = self.nodes[f].downloads[e].as_mut() {
                        fd.follows.retain(|&j| j != i);
                        fd.picker.remove_peer(addr(i));
                        fd.known.remove(&i);
                        fd.wake = Some(t);
                    }
                }
                for j in follows {
                    if let Some(jd) = self.nodes[j].downloads[e].as_mut() {
                        jd.followers.retain(|&f| f != i);
                    }
                }
            }
        }
    }

    /// Each present listener fetches the entry its players hear and the next (`AHEAD`), from
    /// `setup_ms` after it arrived; a download stops asking once its slot is over.
    fn follow_schedule(&mut self, t: u64) {
        let heard = t as i64 - self.s.burst_ms as i64;
        let entry_ms = i64::from(self.s.entry_s) * 1000;
        let on_air = (heard - self.entries[0].starts).div_euclid(entry_ms).max(0) as usize;
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if n.gone || t < n.arrived + self.s.setup_ms {
                continue;
            }
            for e in on_air..(on_air + 1 + AHEAD).min(self.entries.len()) {
                if self.nodes[i].downloads[e].is_none() {
                    self.begin(i, e, t);
                }
            }
            for e in 0..on_air {
                let over = self.entries[e].starts + entry_ms + STOP_AFTER_MS;
                if let Some(d) = self.nodes[i].downloads[e].as_mut() {
                    d.stopped |= heard > over;
                }
            }
        }
    }

    /// Node `i` starts fetching entry `e` at `t`: a part is due when players hear it.
    fn begin(&mut self, i: usize, e: usize, t: u64) {
        let entry = &self.entries[e];
        let deadlines = Deadlines::Linear {
            start_ms: entry.starts + self.s.burst_ms as i64 - t as i64,
            per_part_ms: entry.per_part_ms,
        };
        let n = &mut self.nodes[i];
        let mut picker = Picker::new(
            Bitfield::new(entry.parts),
            deadlines,
            PickerConfig::live(),
            n.hash,
        );
        picker.set_started(EPOCH_MS + n.arrived, EPOCH_MS + t);
        n.downloads[e] = Some(Download {
            began: t,
            stopped: false,
            picker,
            follows: Vec::new(),
            followers: Vec::new(),
            known: HashSet::new(),
            considered: HashSet::new(),
            last_rotation: t,
            held_at: vec![None; entry.parts as usize],
            next_announce: t + 2 * self.s.latency_ms,
            wake: Some(t),
        });
    }

    /// Asks reaching their senders: taken, or refused (`503`; a listener gone: broken).
    fn deliver_asks(&mut self, t: u64) {
        while self.asks.front().is_some_and(|(at, _, _)| *at <= t) {
            let Some((_, to, answer)) = self.asks.pop_front() else {
                break;
            };
            let back = t + self.s.latency_ms;
            let server = match to {
                None => &mut self.origin,
                Some(j) if self.nodes[j].gone => {
                    self.refusals.push_back((
                        back,
                        answer.asker,
                        answer.entry,
                        answer.id,
                        Failure::Broken,
                    ));
                    continue;
                }
                Some(j) => &mut self.nodes[j].server,
            };
            if let Err(refused) = server.take(answer, t as i64) {
                self.refusals.push_back((
                    back,
                    refused.asker,
                    refused.entry,
                    refused.id,
                    Failure::Busy,
                ));
            }
        }
    }

    /// A step of every sender's link.
    fn send(&mut self, t: u64) {
        let at = self.later(t);
        let second = &mut self.seconds[(t / 1000) as usize];
        let sent = self.origin.send(STEP_MS);
        self.origin_bytes += sent.bytes;
        second.origin_bytes += sent.bytes * WIRE;
        self.landings.extend(sent.done.into_iter().map(|a| (at, a)));
        for n in &mut self.nodes {
            let sent = n.server.send(STEP_MS);
            self.peer_bytes += sent.bytes;
            second.peer_bytes += sent.bytes;
            self.landings.extend(sent.done.into_iter().map(|a| (at, a)));
        }
    }

    /// Answers that land by `t`: kept, and told to the followers a latency later.
    fn land(&mut self, t: u64) {
        let at = self.later(t);
        while self.landings.front().is_some_and(|(when, _)| *when <= t) {
            let Some((_, a)) = self.landings.pop_front() else {
                break;
            };
            let n = &mut self.nodes[a.asker];
            let Some(d) = n.downloads[a.entry].as_mut().filter(|_| !n.gone) else {
                continue; // it left
            };
            let _cancelled = d
                .picker
                .completed(a.id, a.first, a.count, a.bytes, t - d.began);
            for p in a.first..a.first + a.count {
                if d.picker.have().get(p) {
                    d.held_at[p as usize].get_or_insert(t);
                }
            }
            d.wake = Some(t);
            self.news_seq += 1;
            self.news
                .push(Reverse((at, self.news_seq, a.asker, a.entry, None)));
        }
    }

    /// Refusals that reach their askers by `t`.
    fn refuse(&mut self, t: u64) {
        while self.refusals.front().is_some_and(|r| r.0 <= t) {
            let Some((_, asker, e, id, why)) = self.refusals.pop_front() else {
                break;
            };
            if let Some(d) = self.nodes[asker].downloads[e].as_mut() {
                d.picker.failed(id, why, t - d.began);
                d.wake = Some(t);
            }
        }
    }

    /// What a node holds, reaching those that follow it.
    fn spread_news(&mut self, t: u64) {
        while self.news.peek().is_some_and(|n| n.0 .0 <= t) {
            let Some(Reverse((_, _, from, e, to))) = self.news.pop() else {
                break;
            };
            let Some(d) = self.nodes[from].downloads[e].as_ref() else {
                continue;
            };
            let have = d.picker.have().clone();
            let mut to_whom = match to {
                Some(j) => vec![j],
                None => d.followers.clone(),
            };
            to_whom.sort_unstable();
            for j in to_whom {
                if let Some(jd) = self.nodes[j].downloads[e].as_mut() {
                    if jd.follows.contains(&from) {
                        jd.picker
                            .set_peer_have(addr(from), have.clone(), t - jd.began);
                        jd.wake = Some(t);
                    }
                }
            }
        }
    }

    /// Announces due by `t`, per entry: the tracker names that swarm's present members with
    /// when it first saw each (all of them, or `PEERS_PER_ANSWER` of a larger swarm: the
    /// eldest, complete holders, the rest at random), and a listener following fewer than its
    /// neighbours follows more, at random.
    fn announce(&mut self, t: u64) {
        for e in 0..self.entries.len() {
            let due = self.nodes.iter().any(|n| {
                !n.gone
                    && n.downloads[e]
                        .as_ref()
                        .is_some_and(|d| d.next_announce <= t)
            });
            if due {
                self.announce_entry(e, t);
            }
        }
    }

    fn announce_entry(&mut self, e: usize, t: u64) {
        // The swarm: who, its hash, when the tracker first saw it, whether complete.
        let members: Vec<(usize, u64, u64, bool)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.gone)
            .filter_map(|(i, n)| {
                let d = n.downloads[e].as_ref()?;
                Some((i, n.hash, d.began, d.picker.have().is_complete()))
            })
            .collect();
        let since: Since = members.iter().map(|m| (m.0, (m.1, m.2, m.3))).collect();
        let at = t + 2 * self.s.latency_ms;
        for &(i, ..) in &members {
            let Some(d) = self.nodes[i].downloads[e].as_ref() else {
                continue;
            };
            if d.next_announce > t {
                continue;
            }
            let mut answer: Vec<usize> = members.iter().filter(|m| m.0 != i).map(|m| m.0).collect();
            if answer.len() > PEERS_PER_ANSWER {
                // The eldest first, then complete holders, the rest at random (`pick`).
                answer.sort_unstable_by_key(|j| {
                    since.get(j).map_or((u64::MAX, 0, *j), |m| (m.1, m.0, *j))
                });
                let rest = &mut answer[ELDEST_PER_ANSWER..];
                rest.shuffle(&mut self.rng);
                rest.sort_by_key(|&j| !since.get(&j).is_some_and(|m| m.2));
                answer.truncate(PEERS_PER_ANSWER);
                answer.sort_unstable();
            }
            let want = self.s.neighbours;
            let Some(d) = self.nodes[i].downloads[e].as_mut() else {
                continue;
            };
            d.next_announce = t + ANNOUNCE_MS;
            for &j in &answer {
                if !d.known.contains(&j) {
                    if d.known.len() >= MAX_KNOWN {
                        continue;
                    }
                    d.known.insert(j);
                    d.picker.add_peer(addr(j));
                }
                if let Some(&(hash, began, _)) = since.get(&j) {
                    d.picker
                        .set_membership(addr(j), Some((hash, EPOCH_MS + began)));
                }
            }
            // Known peers the answer does not list are no longer members (`tracker_members`).
            for &j in &d.known {
                if answer.binary_search(&j).is_err() {
                    d.picker.set_membership(addr(j), None);
                }
            }
            d.picker.set_joined(EPOCH_MS + d.began);
            d.picker.set_tracker_answered();
            d.wake = Some(t);
            let tended = tend(d, i, &answer, &since, t, want, &mut self.rng);
            for j in tended.gone {
                if let Some(jd) = self.nodes[j].downloads[e].as_mut() {
                    jd.followers.retain(|&f| f != i);
                }
            }
            for j in tended.new {
                if let Some(jd) = self.nodes[j].downloads[e].as_mut() {
                    jd.followers.push(i);
                    self.news_seq += 1;
                    self.news.push(Reverse((at, self.news_seq, j, e, Some(i))));
                }
            }
        }
    }

    /// Every picker that wants waking asks; each ask reaches its sender a latency later.
    fn ask(&mut self, t: u64) {
        let at = self.later(t);
        for i in 0..self.nodes.len() {
            for e in 0..self.entries.len() {
                let Some(d) = self.nodes[i].downloads[e].as_mut() else {
                    continue;
                };
                if d.stopped || d.wake.is_none_or(|w| w > t) {
                    continue;
                }
                let local = t - d.began;
                let asks = d.picker.next(local, &mut self.rng);
                d.wake = d.picker.poll_timeout(local).map(|w| w + d.began);
                let entry = &self.entries[e];
                for q in asks {
                    let end = (u64::from(q.first + q.count) * PART).min(entry.size);
                    let bytes = end - u64::from(q.first) * PART;
                    let deadline = q.due_in_ms.map_or(i64::MAX, |d| t as i64 + d);
                    let answer = Answer::new(i, e, q.id, (q.first, q.count), bytes, deadline);
                    let to = match q.source {
                        Source::Origin => None,
                        Source::Peer(a) => {
                            let j = index(a);
                            if j >= self.nodes.len() {
                                continue;
                            }
                            Some(j)
                        }
                    };
                    self.asks.push_back((at, to, answer));
                }
            }
        }
    }
}

/// Whom `d` (node `i`'s download) follows from `t`, as `Neighbours::tend` chooses among the
/// members the tracker's `answer` named (`since`: each member's hash and first record):
/// arrivals (members the tracker has known under `ARRIVAL_MS`) at once with a chance of
/// neighbours over members, one let go every `ROTATE_EVERY` for another, and more at random
/// while it follows fewer than `want`.
fn tend(
    d: &mut Download,
    i: usize,
    answer: &[usize],
    since: &Since,
    t: u64,
    want: usize,
    rng: &mut StdRng,
) -> Tended {
    let mut tended = Tended::default();
    let others = since.len().saturating_sub(1);
    let chance = want as f64 / others.max(want).max(1) as f64;
    if t.saturating_sub(d.began) >= ARRIVAL_MS {
        for &j in answer {
            let arrived = since.get(&j).map_or(0, |s| s.1);
            if j == i || d.follows.contains(&j) || t.saturating_sub(arrived) > ARRIVAL_MS {
                continue;
            }
            if d.considered.insert(j) && rng.random_bool(chance) {
                if d.follows.len() >= want {
                    tended.gone.extend(let_go_of_one(d, rng));
                }
                d.follows.push(j);
                tended.new.push(j);
            }
        }
    }
    let mut candidates: Vec<usize> = answer
        .iter()
        .copied()
        .filter(|j| *j != i && !d.follows.contains(j))
        .collect();
    candidates.shuffle(rng);
    if d.follows.len() >= want && t >= d.last_rotation + ROTATE_EVERY_MS && !candidates.is_empty() {
        d.last_rotation = t;
        tended.gone.extend(let_go_of_one(d, rng));
    }
    for j in candidates {
        if d.follows.len() >= want {
            break;
        }
        d.follows.push(j);
        tended.new.push(j);
    }
    tended
}

/// Whom a listener began and stopped following.
#[derive(Default)]
struct Tended {
    new: Vec<usize>,
    gone: Vec<usize>,
}

fn let_go_of_one(d: &mut Download, rng: &mut StdRng) -> Option<usize> {
    if d.follows.is_empty() {
        return None;
    }
    let gone = d.follows.swap_remove(rng.random_range(0..d.follows.len()));
    d.picker.unfollow(addr(gone));
    Some(gone)
}

/// How players join and play (`stream::client`), to score a listener by.
struct Playback<'a> {
    entries: &'a [Entry],
    burst_ms: u64,
    /// The audio a player gathers before it plays (the harness's 64 KiB).
    prebuffer_ms: f64,
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
    fn heard(&self, n: &Node, seconds: &mut [Second]) -> (u64, u64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One listener who hears a 30 s entry's start as it arrives (a burst after the
    /// schedule), for 30 s.
    fn alone(origin_x: f64) -> Scenario {
        Scenario {
            listeners: 1,
            origin_x,
            entry_s: 30,
            start_ago_s: 4,
            listen_s: 30,
            ..Scenario::default()
        }
    }

    #[test]
    fn a_listener_alone_fetches_the_entry_on_air_and_the_next_and_hears_everything() {
        let o = run(&alone(10.0)).unwrap();
        // The entry, and most of the next before it leaves.
        let entry = 30.0 * 16_000.0 * WIRE;
        let copies = o.origin_bytes as f64 / entry;
        assert!((1.5..=2.0).contains(&copies), "{copies}: {}", o.summary());
        assert_eq!(o.peer_bytes, 0);
        assert_eq!(o.silence_ms, [0], "{}", o.summary());
        assert!(o.startup_ms[0] < 800 + 1_500, "{}", o.summary());
        assert_eq!(o.listened_ms, [30_000]);
        // Every part it played came in time: 28 of them (the first two before its sound).
        assert!(o.parts.len() >= 25, "{}", o.parts.len());
        assert!(o
            .parts
            .iter()
            .all(|p| p.on_time == 1 && p.late + p.missed == 0));
    }

    #[test]
    fn an_origin_slower_than_the_bitrate_is_heard_as_silence() {
        let o = run(&alone(0.8)).unwrap();
        assert!(o.silence_ms[0] > 5_000, "{}", o.summary());
        // It starts late, and the parts it then hears as silence came late or never.
        let lost: usize = o.parts.iter().map(|p| p.late + p.missed).sum();
        assert!(lost >= 5, "{lost}");
        assert!(o
            .parts
            .iter()
            .all(|p| p.listeners == 1 && p.first_s.is_none_or(|f| f > 0.0)));
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
        assert!(a.origin_copies() < 2.5, "{}", a.summary());
    }

    #[test]
    fn with_a_burst_a_joiner_has_its_prebuffer_at_once_from_what_others_hold() {
        // Listeners 3 s apart with uplinks to spare, set up at once: each joiner's burst is
        // held by those before it, and its player has 4 s of audio (the harness's 64 KiB)
        // within a second and a half. Without a burst it waits for real time to bring it.
        let s = Scenario {
            listeners: 8,
            arrivals: Arrivals::Fixed(3_000),
            uplinks_x: vec![10.0],
            pace_x: None,
            setup_ms: 0,
            ..alone(4.0)
        };
        let with = run(&s).unwrap();
        let joiners = &with.startup_ms[1..];
        assert!(joiners.iter().all(|&ms| ms < 1_500), "{}", with.summary());
        let without = run(&Scenario { burst_ms: 0, ..s }).unwrap();
        assert!(
            without.startup_ms[1..].iter().all(|&ms| ms >= 4_000),
            "{}",
            without.summary()
        );
    }

    #[test]
    fn past_fifty_members_the_tracker_names_a_sample_and_everyone_still_plays() {
        // 120 listeners, ten a second: each announce names 50 of them, the eight eldest and
        // 42 others, as the tracker does. Each starts, almost all of it from peers. (Naming 50
        // at random, each listener saw other owners at each announce: 3.4 copies, 15 s of
        // silence each.)
        let s = Scenario {
            listeners: 120,
            arrivals: Arrivals::Fixed(100),
            ..alone(4.0)
        };
        let o = run(&s).unwrap();
        assert!(
            o.startup_ms.iter().all(|&ms| ms < 20_000),
            "{}",
            o.summary()
        );
        assert!(o.peer_bytes > 10 * o.origin_bytes, "{}", o.summary());
    }

    #[test]
    fn under_churn_newcomers_replace_leavers_and_all_play_across_entry_changes() {
        // Ten listeners a second apart, 20 s into a station; from the last arrival, every 4 s the
        // one here longest leaves, its answers cut off, and a newcomer comes. Everyone
        // starts; asks to a leaver go elsewhere, and newcomers start sooner than the crowd
        // did.
        let s = Scenario {
            listeners: 10,
            listen_s: 40,
            churn_ms: 4_000,
            uplinks_x: vec![4.0],
            ..Scenario::default()
        };
        let o = run(&s).unwrap();
        assert_eq!(o.startup_ms.len(), 10 + 9, "{}", o.summary());
        assert!(
            o.startup_ms.iter().all(|&ms| ms < 15_000),
            "{:?}",
            o.startup_ms
        );
        let (crowd, newcomers) = o.startup_ms.split_at(10);
        assert!(
            quantile(newcomers, 0.5) < quantile(crowd, 0.5),
            "{:?}",
            o.startup_ms
        );
        assert!(
            o.listened_ms[..9].iter().all(|&ms| ms < 40_000),
            "{:?}",
            o.listened_ms
        );
        // Each hears more than half its stay (what churn costs is the matrix's figure).
        for (silent, listened) in o.silence_ms.iter().zip(&o.listened_ms) {
            assert!(
                silent * 2 < *listened,
                "{silent} of {listened}: {}",
                o.summary()
            );
        }
    }

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

    #[test]
    fn quantiles_are_nearest_rank() {
        assert_eq!(quantile(&[5, 1, 3], 0.5), 3);
        assert_eq!(quantile(&[5, 1, 3], 1.0), 5);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
