//! A deterministic simulator of a station's swarm: listeners follow a schedule of entries with
//! the real [`Picker`], one per entry they fetch (the one on air and the next, as `alluvium
//! listen --ahead 1` does; one yields while the other is short of parts due soon). Each
//! listener's peer server takes a few answers and refuses the rest (`503`) as `answers.rs`
//! does, and sends the soonest due first, whatever the entry, at its paced rate (the lesser
//! of its link and `--upload-limit`; `auto` follows the link as the node's does, by how fast
//! its answers came, with the real `LinkFollower`); the origin takes every ask
//! and shares its link; one latency between any two nodes; the tracker exact per entry,
//! naming 50 members an answer as it does (the eldest, then those whose announces said they
//! are complete, the rest at random); each listener follows a few neighbours' news.
//! Players join as the stream lets them (Icecast's burst: they hear the schedule `burst_ms`
//! late and get that much at once), play for a while and leave; under churn the oldest leave
//! early and others take their place. It reports what the harness (`../shared/bench`)
//! measures: origin copies (wire bytes over what was aired while listeners were on), startup
//! (to a 64 KiB prebuffer), silence per listener.
//!
//! Not modelled: how neighbours are chosen beyond the tracker's sample (here at random), peer
//! exchange, lying or silent peers, packet loss (a sender paced past its link just sends at
//! the link), the gateway (its trees are known at once).

mod neighbours;
mod outcome;
mod playback;
pub mod plot;
mod scenario;
mod server;
#[cfg(test)]
mod tests;
mod tracker;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};

use alluvium_gateway_client::wire::{DEFAULT_PEERS_PER_ANSWER, ELDEST_PER_ANSWER};
use alluvium_swarm::download::{EAGER_ANNOUNCE, FEW_PEERS};
use alluvium_swarm::node::AUTO_UPLOAD_FACTOR;
use alluvium_swarm::picker::{member_hash, Deadlines, Failure, Picker, PickerConfig, Source};
use alluvium_swarm::proto::URGENT_DUE_MS;
use alluvium_swarm::Bitfield;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use neighbours::tend;
pub use outcome::{OriginAskers, Outcome, PartSpread, Second, OWNERS_PLACES};
use playback::{spread, Playback};
use scenario::plan;
pub use scenario::{Arrivals, Pace, Scenario, SoleFirst};
use server::{Answer, Server};
use tracker::Swarm;

/// A part's size: the swarm's unit (`alluvium_content::PART_SIZE`).
pub const PART: u64 = 16 * 1024;
/// What a link carries on the wire per byte of payload: a full Ethernet frame (1,514 bytes)
/// carries 1,448 (the harness shapes and counts wire bytes).
pub const WIRE: f64 = 1514.0 / 1448.0;
/// The simulation's step: each picker is woken at most this often.
const STEP_MS: u64 = 10;
/// Simulated time 0 in Unix ms (the pickers count members' starts from the epoch).
const EPOCH_MS: u64 = 1_800_000_000_000;
/// A live download announces this often while its swarm gathers, and while it knows fewer
/// peers than `FEW_PEERS` (`download/tracker.rs`); else every `Scenario::announce_ms`.
const ANNOUNCE_MS: u64 = EAGER_ANNOUNCE.as_millis() as u64;
/// The stream waits this long past a part's moment before it plays silence, its player
/// having audio left (`stream/src/client/mod.rs`, `LATE_GRACE`).
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
    /// Entries before this one it has no running download of (never began, or stopped):
    /// the per-step loops start here, not at the first entry.
    first_running: usize,
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
    /// Peers it knows (named by the tracker), and in the order it learnt them.
    known: HashSet<usize>,
    learned: VecDeque<usize>,
    /// Arrivals already decided on (`adopt_arrivals`).
    considered: HashSet<usize>,
    last_rotation: u64,
    held_at: Vec<Option<u64>>,
    /// What it holds as its peers see it (`have`): each part as soon as it is whole, before
    /// the picker hears that its request is done.
    stored: Bitfield,
    next_announce: u64,
    /// Its announces have told the tracker it is complete.
    told_complete: bool,
    /// The tracker's last answer, ascending: members it named (the others are not members).
    listed: Vec<usize>,
    /// When its picker next wants waking (sim ms), or now when news came.
    wake: Option<u64>,
    /// A part due soon is not held (`Picker::short`), as of its last waking.
    short: bool,
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
    /// Parts' last bytes reaching their askers: when, who, which entry, which part.
    parts_landing: VecDeque<(u64, usize, usize, u32)>,
    /// Refusals reaching their askers: when, who, which entry, which request, why.
    refusals: VecDeque<(u64, usize, usize, u64, Failure)>,
    /// What a node holds reaching its followers, or one new follower.
    news: BinaryHeap<News>,
    /// The tracker's swarms, by entry.
    swarms: Vec<Swarm>,
    /// Announces due: when, which entry, who (stale ones, of a node gone, are skipped).
    announces: BinaryHeap<Reverse<(u64, usize, usize)>>,
    news_seq: u64,
    origin_bytes: f64,
    peer_bytes: f64,
    seconds: Vec<Second>,
    /// See `Outcome::origin_asked`.
    origin_asked: [u64; 3],
    origin_askers: Askers,
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
        parts_landing: VecDeque::new(),
        refusals: VecDeque::new(),
        news: BinaryHeap::new(),
        swarms: (0..count).map(|_| Swarm::default()).collect(),
        announces: BinaryHeap::new(),
        news_seq: 0,
        origin_bytes: 0.0,
        peer_bytes: 0.0,
        origin_asked: [0; 3],
        origin_askers: HashMap::new(),
        seconds: vec![Second::default(); (end / 1000 + 2) as usize],
    };
    let mut t = 0;
    while t <= end + STEP_MS {
        sim.arrive(t);
        sim.leave(t);
        sim.follow_schedule(t);
        sim.deliver_asks(t);
        sim.send(t);
        sim.land_parts(t);
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
        origin_asked: sim.origin_asked,
        origin_askers: askers(&sim.origin_askers),
        entry_changes_s: sim
            .entries
            .iter()
            .map(|e| e.heard(0, s.burst_ms) / 1000.0)
            .filter(|&at| at > 0.0 && at < end as f64 / 1000.0)
            .collect(),
    })
}

/// Per entry, part and how soon it was due (as `Outcome::origin_asked`): the listeners that
/// asked the origin for it, and their places among the swarm's members when they asked.
type Askers = HashMap<(usize, u32, usize), Vec<(usize, usize)>>;

/// See `Outcome::origin_askers`.
fn askers(asked: &Askers) -> [OriginAskers; 3] {
    let mut out = [OriginAskers::default(); 3];
    for ((_, _, class), who) in asked {
        let o = &mut out[*class];
        let mut distinct: Vec<usize> = who.iter().map(|w| w.0).collect();
        distinct.sort_unstable();
        distinct.dedup();
        o.parts += 1;
        o.asks += who.len() as u64;
        o.askers += distinct.len() as u64;
        o.by_several += u64::from(distinct.len() > 1);
        o.by_eldest += who.iter().filter(|w| w.1 < OWNERS_PLACES).count() as u64;
    }
    out
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
            let server = match self.s.pace {
                Pace::Link => Server::peer(link, ANSWERS),
                Pace::Fixed(x) => Server::peer(link.min(byte_rate * x / 1000.0), ANSWERS),
                Pace::Auto => Server::following(link, byte_rate * AUTO_UPLOAD_FACTOR, ANSWERS),
            }
            .with_sole_first(self.s.sole_first);
            self.nodes.push(Node {
                arrived,
                leaves,
                gone: false,
                hash: member_hash(&format!("listener-{i}")),
                server,
                downloads: (0..self.entries.len()).map(|_| None).collect(),
                first_running: 0,
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
                let hash = self.nodes[i].hash;
                let Some(d) = self.nodes[i].downloads[e].as_mut() else {
                    continue;
                };
                self.swarms[e].leave((d.began, hash, i));
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
                        fd.learned.retain(|&k| k != i);
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
            let first = self.nodes[i].first_running;
            for e in first..on_air {
                let over = self.entries[e].starts + entry_ms + STOP_AFTER_MS;
                if let Some(d) = self.nodes[i].downloads[e].as_mut() {
                    d.stopped |= heard > over;
                }
            }
            let n = &mut self.nodes[i];
            while n.first_running < on_air
                && n.downloads[n.first_running]
                    .as_ref()
                    .is_none_or(|d| d.stopped)
            {
                n.first_running += 1;
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
            PickerConfig::live().scaled_to(entry.per_part_ms),
            n.hash,
        );
        picker.set_started(EPOCH_MS + n.arrived, EPOCH_MS + t);
        if self.s.trace == Some(i) {
            eprintln!("{t:>7} begin e{e} (member hash {})", n.hash);
        }
        self.swarms[e].join((t, n.hash, i));
        self.announces
            .push(Reverse((t + 2 * self.s.latency_ms, e, i)));
        n.downloads[e] = Some(Download {
            began: t,
            stopped: false,
            picker,
            follows: Vec::new(),
            followers: Vec::new(),
            known: HashSet::new(),
            learned: VecDeque::new(),
            considered: HashSet::new(),
            last_rotation: t,
            held_at: vec![None; entry.parts as usize],
            stored: Bitfield::new(entry.parts),
            next_announce: t + 2 * self.s.latency_ms,
            told_complete: false,
            short: false,
            listed: Vec::new(),
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
            if to.is_some_and(|j| self.nodes[j].gone) {
                self.refusals.push_back((
                    back,
                    answer.asker,
                    answer.entry,
                    answer.id,
                    Failure::Broken,
                ));
                continue;
            }
            // Due at the sender as early as the part must leave it to reach every member
            // (`Node::spread_lead`), after the urgent asks.
            let mut answer = answer;
            if let (true, Some(j)) = (self.s.spread_lead, to) {
                if let Some(d) = self.nodes[j].downloads[answer.entry].as_ref() {
                    let followed = d.picker.followed_count() as f64;
                    let holders = f64::from(d.picker.availability(answer.first)) + 1.0;
                    let members = (d.known.len() + 1) as f64;
                    let reach = ((followed + 1.0) / holders).max(1.0).min(members);
                    let lead = self.nodes[j].server.lead(reach as usize);
                    if answer.deadline != i64::MAX {
                        answer.deadline = (answer.deadline - lead)
                            .max(t as i64 + URGENT_DUE_MS + 1)
                            .min(answer.deadline);
                    }
                }
            }
            let traced = to.is_some() && to == self.s.trace;
            let what = (answer.asker, answer.entry, answer.first, answer.count);
            let server = match to {
                None => &mut self.origin,
                Some(j) => &mut self.nodes[j].server,
            };
            let taken = server.take(answer, t as i64);
            if traced {
                let (asker, e, first, count) = what;
                let how = if taken.is_ok() { "taken" } else { "refused" };
                eprintln!("{t:>7} asked e{e} parts {first}+{count} by {asker}: {how}");
            }
            if let Err(refused) = taken {
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
        let sent = self.origin.send(t, STEP_MS);
        self.origin_bytes += sent.bytes;
        second.origin_bytes += sent.bytes * WIRE;
        self.landings.extend(sent.done.into_iter().map(|a| (at, a)));
        let part_at = |(asker, entry, part)| (at, asker, entry, part);
        self.parts_landing
            .extend(sent.parts.into_iter().map(part_at));
        for n in &mut self.nodes {
            let sent = n.server.send(t, STEP_MS);
            self.peer_bytes += sent.bytes;
            second.peer_bytes += sent.bytes;
            self.landings.extend(sent.done.into_iter().map(|a| (at, a)));
            self.parts_landing
                .extend(sent.parts.into_iter().map(part_at));
        }
    }

    /// Answers that land by `t`: kept, and told to the followers a latency later.
    fn land(&mut self, t: u64) {
        let at = self.later(t);
        while self.landings.front().is_some_and(|(when, _)| *when <= t) {
            let Some((_, a)) = self.landings.pop_front() else {
                break;
            };
            if self.s.trace == Some(a.asker) {
                let from = if a.from_origin { "origin" } else { "a peer" };
                eprintln!(
                    "{t:>7} got   e{} parts {}+{} from {from} (id {})",
                    a.entry, a.first, a.count, a.id
                );
            }
            let n = &mut self.nodes[a.asker];
            let Some(d) = n.downloads[a.entry].as_mut().filter(|_| !n.gone) else {
                continue; // it left
            };
            let _cancelled = d
                .picker
                .completed(a.id, a.first, a.count, a.bytes, t - d.began);
            // Its parts were kept as each came (`land_parts`); this node's only copies are
            // noted when the request is done, as the node does.
            if a.from_origin {
                let members = d.known.len() + 1;
                for p in (a.first..a.first + a.count).filter(|&p| d.picker.have().get(p)) {
                    n.server.took_from_origin(a.entry, p, members);
                }
            }
            d.wake = Some(t);
            self.news_seq += 1;
            self.news
                .push(Reverse((at, self.news_seq, a.asker, a.entry, None)));
        }
    }

    /// Parts that land whole by `t`, each as it comes (an answer's last with the answer):
    /// kept (the stream plays them) and told to the followers a latency later.
    fn land_parts(&mut self, t: u64) {
        let at = self.later(t);
        while self.parts_landing.front().is_some_and(|l| l.0 <= t) {
            let Some((_, asker, e, p)) = self.parts_landing.pop_front() else {
                break;
            };
            let n = &mut self.nodes[asker];
            let Some(d) = n.downloads[e].as_mut().filter(|_| !n.gone) else {
                continue;
            };
            d.held_at[p as usize].get_or_insert(t);
            if d.stored.set(p) {
                self.news_seq += 1;
                self.news.push(Reverse((at, self.news_seq, asker, e, None)));
            }
        }
    }

    /// Refusals that reach their askers by `t`.
    fn refuse(&mut self, t: u64) {
        while self.refusals.front().is_some_and(|r| r.0 <= t) {
            let Some((_, asker, e, id, why)) = self.refusals.pop_front() else {
                break;
            };
            if self.s.trace == Some(asker) {
                eprintln!("{t:>7} fail  e{e} id {id}: {why:?}");
            }
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
            let have = d.stored.clone();
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

    /// Every picker that wants waking asks; each ask reaches its sender a latency later.
    fn ask(&mut self, t: u64) {
        let at = self.later(t);
        let nodes = self.nodes.len();
        for i in 0..self.nodes.len() {
            for e in self.nodes[i].first_running..self.entries.len() {
                let Some(d) = self.nodes[i].downloads[e].as_mut() else {
                    continue;
                };
                if d.stopped || d.wake.is_none_or(|w| w > t) {
                    continue;
                }
                let local = t - d.began;
                // As the node's downloads do: while another is short of parts due soon,
                // this one asks peers for less.
                d.short = d.picker.short(local);
                let short = d.short;
                let elsewhere = self.nodes[i].downloads[self.nodes[i].first_running..]
                    .iter()
                    .enumerate()
                    .any(|(k, o)| {
                        k + self.nodes[i].first_running != e
                            && o.as_ref().is_some_and(|o| !o.stopped && o.short)
                    });
                let Some(d) = self.nodes[i].downloads[e].as_mut() else {
                    continue;
                };
                d.picker.set_yielding(!short && elsewhere);
                let asks = d.picker.next(local, &mut self.rng);
                d.wake = d.picker.poll_timeout(local).map(|w| w + d.began);
                let entry = &self.entries[e];
                for q in asks {
                    let end = (u64::from(q.first + q.count) * PART).min(entry.size);
                    let bytes = end - u64::from(q.first) * PART;
                    let deadline = q.due_in_ms.map_or(i64::MAX, |d| t as i64 + d);
                    let mut answer = Answer::new(i, e, q.id, (q.first, q.count), bytes, deadline);
                    answer.from_origin = q.source == Source::Origin;
                    answer.overdue = q.due_in_ms.is_some_and(|d| d < 0);
                    if self.s.trace == Some(i) {
                        let due = q.due_in_ms.map_or("-".into(), |d| format!("{d}"));
                        eprintln!(
                            "{t:>7} ask   e{e} parts {}+{} of {:?} due in {due} ms (id {})",
                            q.first, q.count, q.source, q.id
                        );
                    }
                    let to = match q.source {
                        Source::Origin => {
                            let class = match q.due_in_ms {
                                Some(d) if d < 0 => 0,
                                Some(d) if d <= 5_000 => 1,
                                _ => 2,
                            };
                            self.origin_asked[class] += bytes;
                            let place = self.swarms[e]
                                .by_since
                                .iter()
                                .position(|m| m.2 == i)
                                .unwrap_or(usize::MAX);
                            for p in q.first..q.first + q.count {
                                self.origin_askers
                                    .entry((e, p, class))
                                    .or_default()
                                    .push((i, place));
                            }
                            None
                        }
                        Source::Peer(a) => {
                            let j = index(a);
                            if j >= nodes {
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
