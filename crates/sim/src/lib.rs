//! A deterministic simulator of a station's swarm (issue 34, first step): listeners swarm one
//! entry with the real [`Picker`]. Each listener's peer server takes a few answers and refuses
//! the rest (`503`) as `answers.rs` does, and sends the soonest due first at its paced rate
//! (the lesser of its link and `--upload-limit`); the origin takes every ask and shares its
//! link; one latency between any two nodes; the tracker exact, naming 50 members an answer as
//! it does; each listener follows a few neighbours' news. Players join as the stream lets them (Icecast's burst: they hear the
//! schedule `burst_ms` late and get that much at once). It reports what the harness
//! (`../shared/bench`) measures: origin copies, startup (to a 64 KiB prebuffer), silence per
//! listener.
//!
//! Not modelled yet: how neighbours are chosen and rotated (here at random, once), peer
//! exchange, churn, lying or silent peers, a warm station, the next entry, plots.

mod server;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};

use alluvium_swarm::picker::{member_hash, Deadlines, Failure, Picker, PickerConfig, Source};
use alluvium_swarm::Bitfield;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use server::{Answer, Server};

/// A part's size: the swarm's unit (`alluvium_content::PART_SIZE`).
pub const PART: u64 = 16 * 1024;
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
/// The tracker names at most this many members an answer (`DEFAULT_PEERS_PER_ANSWER`),
/// complete holders first, the rest at random.
const PEERS_PER_ANSWER: usize = 50;
/// A node knows at most this many peers of a content (`MAX_KNOWN_PEERS`).
const MAX_KNOWN: usize = 200;
/// A member the tracker has known for less than this is an arrival (`follow.rs`).
const ARRIVAL_MS: u64 = 5_000;
/// A full set of neighbours lets one go this often (`follow.rs`).
const ROTATE_EVERY_MS: u64 = 5_000;

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
    /// Uploads paced at this multiple of the bitrate (`--upload-limit auto` is 1.6); `None`:
    /// the link's rate.
    pub pace_x: Option<f64>,
    /// Peers whose news each listener follows (`LIVE_NEIGHBOURS`).
    pub neighbours: usize,
    /// Players hear the schedule this late and get this much at once (`--burst`).
    pub burst_ms: u64,
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

    /// The `q` quantile of the listeners' startups (ms).
    pub fn startup_quantile(&self, q: f64) -> u64 {
        quantile(&self.startup_ms, q)
    }

    /// The `q` quantile of the listeners' silences (ms).
    pub fn silence_quantile(&self, q: f64) -> u64 {
        quantile(&self.silence_ms, q)
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
    server: Server,
    /// Whose news it follows.
    follows: Vec<usize>,
    /// Who follows its news.
    followers: Vec<usize>,
    /// Peers it knows (named by the tracker).
    known: std::collections::HashSet<usize>,
    /// Arrivals already decided on (`adopt_arrivals`).
    considered: std::collections::HashSet<usize>,
    last_rotation: u64,
    held_at: Vec<Option<u64>>,
    next_announce: u64,
    /// When its picker next wants waking (simulated ms), or now when news came.
    wake: Option<u64>,
}

/// Answers the peer servers take at once (`DEFAULT_MAX_BLOB_ANSWERS`).
const ANSWERS: usize = 2;

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

/// News on its way: when it lands, its order among equals, whose, to whom (`None`: every
/// follower).
type News = Reverse<(u64, u64, usize, Option<usize>)>;

/// A run in progress. Every message takes one latency; each queue is in time order.
struct Sim<'a> {
    s: &'a Scenario,
    size: u64,
    parts: u32,
    per_part_ms: f64,
    /// A listener's sending rate, bytes per ms.
    uplink: f64,
    rng: StdRng,
    nodes: Vec<Node>,
    origin: Server,
    /// Asks reaching their sender (`None`: the origin).
    asks: VecDeque<(u64, Option<usize>, Answer)>,
    /// Answers' last bytes reaching their askers.
    landings: VecDeque<(u64, Answer)>,
    /// `503`s reaching their askers: when, who, which request.
    refusals: VecDeque<(u64, usize, u64)>,
    /// What a node holds reaching its followers, or one new follower.
    news: BinaryHeap<News>,
    news_seq: u64,
    origin_bytes: u64,
    peer_bytes: u64,
}

/// Runs `s` to the end of its entry and a moment more.
pub fn run(s: &Scenario) -> Result<Outcome, SimError> {
    if s.listeners == 0 || s.kbit == 0 || s.seconds == 0 {
        return Err(SimError::Empty);
    }
    let byte_rate = f64::from(s.kbit) * 1000.0 / 8.0;
    let size = (byte_rate * f64::from(s.seconds)) as u64;
    let parts = size.div_ceil(PART) as u32;
    let link = byte_rate * s.uplink_x / 1000.0;
    let mut sim = Sim {
        s,
        size,
        parts,
        per_part_ms: f64::from(s.seconds) * 1000.0 / f64::from(parts),
        uplink: s.pace_x.map_or(link, |x| link.min(byte_rate * x / 1000.0)),
        rng: StdRng::seed_from_u64(s.seed),
        nodes: Vec::with_capacity(s.listeners),
        origin: Server::origin(byte_rate * s.origin_x / 1000.0),
        asks: VecDeque::new(),
        landings: VecDeque::new(),
        refusals: VecDeque::new(),
        news: BinaryHeap::new(),
        news_seq: 0,
        origin_bytes: 0,
        peer_bytes: 0,
    };
    let end = u64::from(s.seconds) * 1000 + s.burst_ms + 2_000;
    let mut t = 0;
    while t <= end {
        sim.arrive(t);
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
        parts,
        part_ms: sim.per_part_ms,
        burst_ms: s.burst_ms,
        prebuffer_ms: PREBUFFER_BYTES as f64 * 1000.0 / byte_rate,
    };
    let (startup_ms, silence_ms) = sim.nodes.iter().map(|n| play.heard(n)).unzip();
    Ok(Outcome {
        content_bytes: size,
        origin_bytes: sim.origin_bytes,
        peer_bytes: sim.peer_bytes,
        startup_ms,
        silence_ms,
    })
}

impl Sim<'_> {
    fn later(&self, t: u64) -> u64 {
        t + self.s.latency_ms
    }

    /// Listeners arriving by `t`, each with its picker, deadlines on its own time 0.
    fn arrive(&mut self, t: u64) {
        while self.nodes.len() < self.s.listeners
            && self.s.burst_ms + self.nodes.len() as u64 * self.s.arrival_gap_ms <= t
        {
            let hash = member_hash(&format!("listener-{}", self.nodes.len()));
            // A part is due when players hear it, a burst after the schedule plays it.
            let deadlines = Deadlines::Linear {
                start_ms: self.s.burst_ms as i64 - t as i64,
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
                server: Server::peer(self.uplink, ANSWERS),
                follows: Vec::new(),
                followers: Vec::new(),
                known: std::collections::HashSet::new(),
                considered: std::collections::HashSet::new(),
                last_rotation: t,
                held_at: vec![None; self.parts as usize],
                next_announce: t + 2 * self.s.latency_ms,
                wake: Some(t),
            });
        }
    }

    /// Asks reaching their senders: taken, or refused.
    fn deliver_asks(&mut self, t: u64) {
        while self.asks.front().is_some_and(|(at, _, _)| *at <= t) {
            let Some((_, to, answer)) = self.asks.pop_front() else {
                break;
            };
            let server = match to {
                None => &mut self.origin,
                Some(j) => &mut self.nodes[j].server,
            };
            if let Err(refused) = server.take(answer, t as i64) {
                self.refusals
                    .push_back((t + self.s.latency_ms, refused.asker, refused.id));
            }
        }
    }

    /// A step of every sender's link.
    fn send(&mut self, t: u64) {
        let at = self.later(t);
        for done in self.origin.send(STEP_MS) {
            self.origin_bytes += done.bytes;
            self.landings.push_back((at, done));
        }
        for n in &mut self.nodes {
            for done in n.server.send(STEP_MS) {
                self.peer_bytes += done.bytes;
                self.landings.push_back((at, done));
            }
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
            let _cancelled = n
                .picker
                .completed(a.id, a.first, a.count, a.bytes, t - n.arrived);
            for p in a.first..a.first + a.count {
                if n.picker.have().get(p) {
                    n.held_at[p as usize].get_or_insert(t);
                }
            }
            n.wake = Some(t);
            self.news_seq += 1;
            self.news.push(Reverse((at, self.news_seq, a.asker, None)));
        }
    }

    /// `503`s that reach their askers by `t`.
    fn refuse(&mut self, t: u64) {
        while self.refusals.front().is_some_and(|(at, _, _)| *at <= t) {
            let Some((_, asker, id)) = self.refusals.pop_front() else {
                break;
            };
            let n = &mut self.nodes[asker];
            n.picker.failed(id, Failure::Busy, t - n.arrived);
            n.wake = Some(t);
        }
    }

    /// What a node holds, reaching those that follow it.
    fn spread_news(&mut self, t: u64) {
        while self.news.peek().is_some_and(|n| n.0 .0 <= t) {
            let Some(Reverse((_, _, from, to))) = self.news.pop() else {
                break;
            };
            let have = self.nodes[from].picker.have().clone();
            let mut to_whom = match to {
                Some(j) => vec![j],
                None => self.nodes[from].followers.clone(),
            };
            to_whom.sort_unstable();
            for j in to_whom {
                let n = &mut self.nodes[j];
                if n.follows.contains(&from) {
                    n.picker
                        .set_peer_have(addr(from), have.clone(), t - n.arrived);
                    n.wake = Some(t);
                }
            }
        }
    }

    /// Announces due by `t`: the tracker names members with when it first saw each (all of
    /// them, or `PEERS_PER_ANSWER` of a larger swarm: complete holders first, the rest at
    /// random), and a listener following fewer than its neighbours follows more, at random.
    fn announce(&mut self, t: u64) {
        if self.nodes.iter().all(|n| n.next_announce > t) {
            return;
        }
        let members: Vec<(u64, u64)> = self.nodes.iter().map(|n| (n.hash, n.arrived)).collect();
        let complete: Vec<bool> = self
            .nodes
            .iter()
            .map(|n| n.picker.have().is_complete())
            .collect();
        let at = t + 2 * self.s.latency_ms;
        for i in 0..self.nodes.len() {
            if self.nodes[i].next_announce > t {
                continue;
            }
            let mut answer: Vec<usize> = (0..members.len()).filter(|&j| j != i).collect();
            if answer.len() > PEERS_PER_ANSWER {
                answer.shuffle(&mut self.rng);
                answer.sort_by_key(|&j| !complete[j]);
                answer.truncate(PEERS_PER_ANSWER);
                answer.sort_unstable();
            }
            let n = &mut self.nodes[i];
            n.next_announce = t + ANNOUNCE_MS;
            for &j in &answer {
                if !n.known.contains(&j) {
                    if n.known.len() >= MAX_KNOWN {
                        continue;
                    }
                    n.known.insert(j);
                    n.picker.add_peer(addr(j));
                }
                let (hash, arrived) = members[j];
                n.picker
                    .set_membership(addr(j), Some((hash, EPOCH_MS + arrived)));
            }
            n.picker.set_joined(EPOCH_MS + n.arrived);
            n.picker.set_tracker_answered();
            n.wake = Some(t);
            let tended = tend(n, i, &answer, &members, t, self.s.neighbours, &mut self.rng);
            for j in tended.gone {
                self.nodes[j].followers.retain(|&f| f != i);
            }
            for j in tended.new {
                self.nodes[j].followers.push(i);
                self.news_seq += 1;
                self.news.push(Reverse((at, self.news_seq, j, Some(i))));
            }
        }
    }

    /// Every picker that wants waking asks; each ask reaches its sender a latency later.
    fn ask(&mut self, t: u64) {
        let at = self.later(t);
        for i in 0..self.nodes.len() {
            if self.nodes[i].wake.is_none_or(|w| w > t) {
                continue;
            }
            let local = t - self.nodes[i].arrived;
            let asks = self.nodes[i].picker.next(local, &mut self.rng);
            for q in asks {
                let end = (u64::from(q.first + q.count) * PART).min(self.size);
                let bytes = end - u64::from(q.first) * PART;
                let deadline = q.due_in_ms.map_or(i64::MAX, |d| t as i64 + d);
                let answer = Answer::new(i, q.id, (q.first, q.count), bytes, deadline);
                let to = match q.source {
                    Source::Origin => None,
                    Source::Peer(a) => Some(index(a)).filter(|&j| j < self.nodes.len()),
                };
                if to.is_none() && q.source != Source::Origin {
                    continue;
                }
                self.asks.push_back((at, to, answer));
            }
            let n = &mut self.nodes[i];
            n.wake = n.picker.poll_timeout(local).map(|w| w + n.arrived);
        }
    }
}

/// Whom `n` (node `i`) follows from `t`, as `Neighbours::tend` chooses among the members the
/// tracker's `answer` named: arrivals (members the tracker has known under `ARRIVAL_MS`) at
/// once with a chance of neighbours over members, one let go every `ROTATE_EVERY` for
/// another, and more at random while it follows fewer than `want`.
fn tend(
    n: &mut Node,
    i: usize,
    answer: &[usize],
    members: &[(u64, u64)],
    t: u64,
    want: usize,
    rng: &mut StdRng,
) -> Tended {
    let mut tended = Tended::default();
    let others = members.len().saturating_sub(1);
    let chance = want as f64 / others.max(want).max(1) as f64;
    if t.saturating_sub(n.arrived) >= ARRIVAL_MS {
        for &j in answer {
            let arrived = members[j].1;
            if j == i || n.follows.contains(&j) || t.saturating_sub(arrived) > ARRIVAL_MS {
                continue;
            }
            if n.considered.insert(j) && rng.random_bool(chance) {
                if n.follows.len() >= want {
                    tended.gone.extend(let_go_of_one(n, rng));
                }
                n.follows.push(j);
                tended.new.push(j);
            }
        }
    }
    let mut candidates: Vec<usize> = answer
        .iter()
        .copied()
        .filter(|j| *j != i && !n.follows.contains(j))
        .collect();
    candidates.shuffle(rng);
    if n.follows.len() >= want && t >= n.last_rotation + ROTATE_EVERY_MS && !candidates.is_empty() {
        n.last_rotation = t;
        tended.gone.extend(let_go_of_one(n, rng));
    }
    for j in candidates {
        if n.follows.len() >= want {
            break;
        }
        n.follows.push(j);
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

fn let_go_of_one(n: &mut Node, rng: &mut StdRng) -> Option<usize> {
    if n.follows.is_empty() {
        return None;
    }
    let gone = n.follows.swap_remove(rng.random_range(0..n.follows.len()));
    n.picker.unfollow(addr(gone));
    Some(gone)
}

/// How players join and play (`stream::client`), to score a listener by.
struct Playback {
    parts: u32,
    part_ms: f64,
    burst_ms: u64,
    /// The audio a player gathers before it plays (the harness's 64 KiB).
    prebuffer_ms: f64,
}

impl Playback {
    /// When part `p` starts on the schedule (the entry starts at 0).
    fn at(&self, p: u32) -> f64 {
        f64::from(p) * self.part_ms
    }

    /// A listener's startup and silence. Its player connects as it arrives, when players
    /// hear the moment a burst back. The stream starts at the first part held within
    /// `JOIN_AHEAD_MS` past the heard moment, which moves on while nothing is (from the
    /// heard moment if that part plays then), and sends what it holds in order from there
    /// up to the live edge at once, then in real time: startup is when the player has its
    /// prebuffer. Silence: each later part that comes more than `LATE_GRACE_MS` after the
    /// player's ear reaches it, for as late as it is (a whole part at most). One that never
    /// starts heard silence from its arrival to the end.
    fn heard(&self, n: &Node) -> (u64, u64) {
        let arrived = n.arrived as f64;
        let burst = self.burst_ms as f64;
        let held = |p: u32| n.held_at[p as usize].map(|t| t as f64);
        // The part and moment the stream starts with, and when: the earliest a held part is
        // within reach of the heard moment (a part held early waits for it to come near).
        let start = (0..self.parts)
            .filter_map(|p| {
                let (from, to) = (self.at(p), self.at(p + 1));
                let at = held(p)?
                    .max(arrived)
                    .max(from + burst - JOIN_AHEAD_MS as f64);
                let heard = at - burst;
                (to > heard).then(|| (p, from.max(heard), at))
            })
            .min_by(|a, b| a.2.total_cmp(&b.2));
        let Some((first, moment, began)) = start else {
            let left = (self.at(self.parts) + burst - arrived).max(0.0) as u64;
            return (left, left);
        };
        // Prebuffered once every part up to `moment + prebuffer` is held and the live edge
        // has passed it; or, past a part that is not, once the silence the stream plays from
        // when the ear reaches it has filled the rest (at the latest a prebuffer after the
        // first sound).
        let until = moment + self.prebuffer_ms;
        let mut ready = until.max(began);
        let mut p = first;
        while p < self.parts && self.at(p) < until {
            ready = ready.max(held(p).unwrap_or(f64::INFINITY));
            p += 1;
        }
        let startup = (ready.min(began + self.prebuffer_ms) - arrived) as u64;
        // The ear reaches moment `m` at `began + (m - moment)`.
        let silence = (first + 1..self.parts)
            .map(|p| {
                let needed = began + self.at(p) - moment + LATE_GRACE_MS as f64;
                match held(p) {
                    Some(t) if t <= needed => 0.0,
                    Some(t) => (t - needed + LATE_GRACE_MS as f64).min(self.part_ms),
                    None => self.part_ms,
                }
            })
            .sum::<f64>();
        (startup, silence as u64)
    }
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
            pace_x: Some(1.6),
            neighbours: 8,
            burst_ms: 4_000,
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
    fn with_a_burst_a_joiner_has_its_prebuffer_at_once_from_what_others_hold() {
        // Listeners 3 s apart with uplinks to spare: each joiner's burst is held by those
        // before it, and its player has 4 s of audio (the harness's 64 KiB) within a second
        // and a half. Without a burst it waits for real time to bring the prebuffer.
        let s = Scenario {
            listeners: 8,
            arrival_gap_ms: 3_000,
            uplink_x: 10.0,
            pace_x: None,
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
        // 120 listeners, ten a second into a 30 s entry: each announce names 50 of them, as
        // the tracker does. Each hears the entry before it ends, almost all of it from peers.
        let s = Scenario {
            listeners: 120,
            arrival_gap_ms: 100,
            ..alone(4.0)
        };
        let o = run(&s).unwrap();
        assert!(
            o.startup_ms.iter().all(|&ms| ms < 20_000),
            "{}",
            o.summary()
        );
        assert!(o.peer_bytes > 20 * o.origin_bytes, "{}", o.summary());
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        assert_eq!(quantile(&[5, 1, 3], 0.5), 3);
        assert_eq!(quantile(&[5, 1, 3], 1.0), 5);
        assert_eq!(quantile(&[], 0.5), 0);
    }
}
