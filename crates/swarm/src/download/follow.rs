//! Following peers' news: their bitfields by long poll, peer exchange, and which
//! neighbours a live download follows.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alluvium_content::Hash;
use rand::seq::{IndexedRandom, SliceRandom};
use reqwest::header;
use reqwest::StatusCode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Event;
use crate::bitfield::Bitfield;
use crate::node::{unix_ms, Node};
use crate::picker::{member_hash, Picker};
use crate::proto::{RecordReader, HAVE_STREAM_TYPE, HAVE_VERSION_HEADER, PEER_PORT_HEADER};
use crate::store::Content;

/// How often one known peer is asked for the peers it knows.
const PEER_EXCHANGE_EVERY: Duration = Duration::from_secs(10);
/// A followed peer whose first bitfield has not come in this long owns no blocks until it
/// does (`Picker::set_silent`). A first record is sent at once (`server::have_records`).
const SILENT_AFTER: Duration = Duration::from_secs(5);
/// A download the tracker has not answered for this long carries the station's peers over
/// (see `Neighbours::carry`); a tracker that answers names them sooner, as members.
const CARRY_AFTER: Duration = Duration::from_secs(2);
/// Entries with more parts than this poll for news without saying what they know (see
/// `poll_have`): 512 bytes of bitfield, 1 KiB in the query.
const MAX_KNOWN_PARTS: u32 = 4_096;
/// Peers a live download follows (see [`super::DownloadConfig::neighbours`]).
pub const LIVE_NEIGHBOURS: usize = 8;
/// A member the tracker has known for less than this is an arrival: a live download follows it at
/// once with a chance of its neighbours over the members (see `adopt_arrivals`).
const ARRIVAL_MS: u64 = 5_000;

fn spawn_poller(
    node: &Arc<Node>,
    content: &Arc<Content>,
    peer: SocketAddr,
    tx: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    let (node, content) = (node.clone(), content.clone());
    let span = tracing::debug_span!("have-poll", %peer);
    alluvium_task::spawn(
        "have-poll",
        &cancel,
        poll_have(node, content, peer, tx).instrument(span),
    );
}

pub(super) async fn poll_have(
    node: Arc<Node>,
    content: Arc<Content>,
    peer: SocketAddr,
    tx: mpsc::Sender<Event>,
) {
    let mut follow = Follow {
        base: format!("http://{peer}/v1/blob/{}/have", content.root()),
        content,
        peer,
        version: None,
        told: None,
    };
    // A have stream (one answer that stays open, a record per piece of news) until the peer
    // shows it does not know them (it answers as to a plain poll): then long polls.
    let mut streaming = true;
    let mut failures = 0u32;
    loop {
        let outcome = if streaming {
            follow.stream(&node, &tx).await
        } else {
            follow.poll(&node, &tx).await
        };
        match outcome {
            Followed::News => failures = 0,
            Followed::Polled => {
                streaming = false;
                failures = 0;
            }
            Followed::Gone => {
                let _ = tx.send(Event::PeerGone(peer)).await;
                return;
            }
            Followed::Closed => return,
            Followed::Failed => {
                failures += 1;
                if failures >= 3 {
                    let _ = tx.send(Event::PeerGone(peer)).await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500 * u64::from(failures))).await;
            }
        }
    }
}

/// A peer's bitfield as this node follows it.
pub(super) struct Follow {
    base: String,
    content: Arc<Content>,
    peer: SocketAddr,
    /// The version of what the peer said last.
    version: Option<u64>,
    /// What the peer said it holds last.
    told: Option<Bitfield>,
}

/// How one ask of a [`Follow`] ended.
pub(super) enum Followed {
    /// It answered (news, or none for a long poll's time): ask again at once.
    News,
    /// It answered a stream ask as a plain poll (a peer that does not stream): poll from now.
    Polled,
    /// It sent what is not a bitfield of this content: not a peer to use.
    Gone,
    /// This download no longer listens.
    Closed,
    /// No answer, or a bad status.
    Failed,
}

impl Follow {
    /// The query telling the peer what this node knows: its own parts and those the peer said
    /// it held, so that the peer sends only news this node can use (a peer followed by eight
    /// answered each new part to all eight, also to those that already had it). Not for long
    /// entries: the list would outgrow the news it saves.
    fn known(&self) -> Option<String> {
        self.told
            .as_ref()
            .filter(|_| self.content.parts() <= MAX_KNOWN_PARTS)
            .and_then(|t| self.content.have().0.union(t))
            .map(|k| hex::encode(k.as_bytes()))
    }

    /// Takes a bitfield the peer sent; false when this download no longer listens.
    async fn told(&mut self, tx: &mpsc::Sender<Event>, version: u64, bits: Bitfield) -> bool {
        self.version = Some(version);
        self.told = Some(bits.clone());
        tx.send(Event::Have(self.peer, bits)).await.is_ok()
    }

    /// One long poll (docs/design.md section 4): `?after=N`, answered with news or `304`.
    async fn poll(&mut self, node: &Node, tx: &mpsc::Sender<Event>) -> Followed {
        let url = match (self.version, self.known()) {
            (Some(v), Some(k)) => format!("{}?after={v}&known={k}", self.base),
            (Some(v), None) => format!("{}?after={v}", self.base),
            (None, _) => self.base.clone(),
        };
        let sent = node
            .http
            .get(&url)
            .header(PEER_PORT_HEADER, node.port())
            .timeout(node.long_poll + Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == StatusCode::OK => self.answer(r, tx).await,
            Ok(r) if r.status() == StatusCode::NOT_MODIFIED => Followed::News,
            _ => Followed::Failed,
        }
    }

    /// A plain answer: the bitfield, its version in a header.
    async fn answer(&mut self, r: reqwest::Response, tx: &mpsc::Sender<Event>) -> Followed {
        let version = r
            .headers()
            .get(HAVE_VERSION_HEADER)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let parts = self.content.parts();
        let bits = r
            .bytes()
            .await
            .ok()
            .and_then(|b| Bitfield::from_bytes(parts, &b));
        match (bits, version) {
            (Some(bits), Some(v)) => {
                if self.told(tx, v, bits).await {
                    Followed::News
                } else {
                    Followed::Closed
                }
            }
            // A bitfield of the wrong size or without a version: not a peer we can use.
            _ => Followed::Gone,
        }
    }

    /// A have stream (`?stream=1`): records until the peer ends it or goes quiet past a
    /// long poll's time (it repeats its last record when it has no news).
    async fn stream(&mut self, node: &Node, tx: &mpsc::Sender<Event>) -> Followed {
        let mut url = format!("{}?stream=1", self.base);
        if let Some(v) = self.version {
            url.push_str(&format!("&after={v}"));
            if let Some(k) = self.known() {
                url.push_str(&format!("&known={k}"));
            }
        }
        let quiet = node.long_poll + Duration::from_secs(10);
        let ask = node
            .http
            .get(&url)
            .header(PEER_PORT_HEADER, node.port())
            .send();
        let mut r = match tokio::time::timeout(quiet, ask).await {
            Ok(Ok(r)) if r.status() == StatusCode::OK => r,
            _ => return Followed::Failed,
        };
        let is_stream = r
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes() == HAVE_STREAM_TYPE.as_bytes());
        if !is_stream {
            return match self.answer(r, tx).await {
                Followed::News => Followed::Polled,
                other => other,
            };
        }
        let mut records = RecordReader::new(self.content.parts());
        let mut any = false;
        loop {
            match tokio::time::timeout(quiet, r.chunk()).await {
                Ok(Ok(Some(chunk))) => records.push(&chunk),
                // Ended or quiet: ask again (at once if it said something).
                _ => {
                    return if any {
                        Followed::News
                    } else {
                        Followed::Failed
                    }
                }
            }
            while let Some(record) = records.next_record() {
                let Ok((version, bits)) = record else {
                    return Followed::Gone;
                };
                any = true;
                if !self.told(tx, version, bits).await {
                    return Followed::Closed;
                }
            }
        }
    }
}

fn spawn_exchange(node: &Arc<Node>, root: Hash, peer: SocketAddr, cancel: CancellationToken) {
    let node = node.clone();
    alluvium_task::spawn("peer-exchange", &cancel, async move {
        let ask = async {
            let r = node
                .http
                .get(format!("http://{peer}/v1/blob/{root}/peers"))
                .header(PEER_PORT_HEADER, node.port())
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .ok()?;
            if r.status() != StatusCode::OK {
                return None;
            }
            let list: Vec<String> = r.json().await.ok()?;
            for a in list.iter().take(50) {
                if let Ok(addr) = a.parse::<SocketAddr>() {
                    node.learn(root, addr);
                }
            }
            Some(())
        };
        // A peer that does not answer, or answers nonsense, just teaches nothing.
        let _ = ask.await;
    });
}

/// The peers a download follows (its neighbours), and when it last rotated them or asked one
/// for the peers it knows.
pub(super) struct Neighbours {
    node: Arc<Node>,
    content: Arc<Content>,
    tx: mpsc::Sender<Event>,
    scope: CancellationToken,
    /// How many to follow (see `DownloadConfig::neighbours`).
    want: usize,
    followed: HashMap<SocketAddr, CancellationToken>,
    /// When each followed peer was followed, until its first bitfield is in (`SILENT_AFTER`).
    followed_at: HashMap<SocketAddr, Instant>,
    last_rotation: Instant,
    /// Arrivals already decided on (see `adopt_arrivals`).
    considered: HashSet<SocketAddr>,
    last_exchange: Instant,
    /// When the download began, and when it last carried the station's peers over (see
    /// `carry`).
    began: Instant,
    last_carry: Option<Instant>,
}

impl Neighbours {
    pub(super) fn new(
        node: &Arc<Node>,
        content: &Arc<Content>,
        tx: &mpsc::Sender<Event>,
        scope: &CancellationToken,
        want: usize,
    ) -> Self {
        Self {
            node: node.clone(),
            content: content.clone(),
            tx: tx.clone(),
            scope: scope.clone(),
            want,
            followed: HashMap::new(),
            followed_at: HashMap::new(),
            last_rotation: Instant::now(),
            considered: HashSet::new(),
            // Ask for other peers at once: a listener that knows only one peer learns the rest.
            last_exchange: Instant::now()
                .checked_sub(PEER_EXCHANGE_EVERY)
                .unwrap_or_else(Instant::now),
            began: Instant::now(),
            last_carry: None,
        }
    }

    /// When `tend` next has something to do by the clock alone: a rotation, a peer exchange,
    /// or this node ceasing to be an arrival (it then adopts others'). A rotation already due
    /// waits for a peer to rotate in, which comes as news.
    pub(super) fn next_due(&self) -> Instant {
        let now = Instant::now();
        let mut due = self.last_exchange + PEER_EXCHANGE_EVERY;
        let rotation = self.last_rotation + ROTATE_EVERY;
        if rotation > now {
            due = due.min(rotation);
        }
        if !self.node.announced(&self.content.root()) {
            let carry = match self.last_carry {
                Some(t) => t + PEER_EXCHANGE_EVERY,
                None => self.began + CARRY_AFTER,
            };
            due = due.min(carry);
        }
        if let Some(silent) = self.followed_at.values().map(|&at| at + SILENT_AFTER).min() {
            due = due.min(silent.max(now));
        }
        let arrived_ms = self.joined_ms().saturating_add(ARRIVAL_MS);
        if arrived_ms > unix_ms() {
            due = due.min(now + Duration::from_millis(arrived_ms - unix_ms()));
        }
        due
    }

    /// When this node joined the swarm, as the tracker counts (its first answer), or when the
    /// node started while no tracker has answered.
    fn joined_ms(&self) -> u64 {
        self.node
            .joined_ms(&self.content.root())
            .unwrap_or_else(|| self.node.started_ms())
    }

    pub(super) fn follows(&self, peer: SocketAddr) -> bool {
        self.followed.contains_key(&peer)
    }

    /// A followed peer's news stopped for good.
    pub(super) fn gone(&mut self, peer: SocketAddr) {
        self.followed.remove(&peer);
    }

    /// Tells the picker the members the node knows, follows arrivals, lets one neighbour make
    /// way every `ROTATE_EVERY`, follows more peers while fewer than `want` are, and now and
    /// then asks one peer for the peers it knows.
    pub(super) fn tend(&mut self, picker: &mut Picker, rng: &mut impl rand::Rng) {
        let root = self.content.root();
        self.carry();
        self.mark_silent(picker);
        let starts = tell_members(picker, self.node.known_members(&root));
        let joined = self.joined_ms();
        picker.set_joined(joined);
        picker.set_members_whole(self.node.members_whole(&root));
        let adopted = adopt_arrivals(
            &starts,
            joined,
            self.want,
            &self.followed,
            &mut self.considered,
            rng,
        );
        for addr in adopted {
            if picker.is_banned(addr) {
                continue;
            }
            if self.followed.len() >= self.want {
                let_go_of_one(&mut self.followed, picker, rng);
            }
            self.follow(addr);
        }
        let rotate =
            self.followed.len() >= self.want && self.last_rotation.elapsed() >= ROTATE_EVERY;
        // Peers to follow, looked for only when one is wanted.
        let mut candidates: Vec<SocketAddr> = if rotate || self.followed.len() < self.want {
            picker
                .peers()
                .filter(|a| !self.followed.contains_key(a) && !picker.is_banned(*a))
                .collect()
        } else {
            Vec::new()
        };
        if rotate && !candidates.is_empty() {
            self.last_rotation = Instant::now();
            let_go_of_one(&mut self.followed, picker, rng);
        }
        if self.followed.len() < self.want {
            candidates.sort();
            candidates.shuffle(rng);
            for addr in candidates.into_iter().take(self.want - self.followed.len()) {
                self.follow(addr);
            }
        }
        if self.last_exchange.elapsed() >= PEER_EXCHANGE_EVERY {
            self.last_exchange = Instant::now();
            let peers: Vec<SocketAddr> = picker.peers().collect();
            if let Some(&peer) = peers.choose(rng) {
                spawn_exchange(&self.node, root, peer, self.scope.clone());
            }
        }
    }

    /// Tells the picker of followed peers whose first bitfield has not come in
    /// `SILENT_AFTER`: they own no blocks until it comes.
    fn mark_silent(&mut self, picker: &mut Picker) {
        let followed = &self.followed;
        self.followed_at.retain(|a, _| followed.contains_key(a));
        self.followed_at.retain(|&addr, at| {
            if picker.has_bitfield(addr) {
                return false;
            }
            if at.elapsed() >= SILENT_AFTER {
                picker.set_silent(addr);
                return false;
            }
            true
        });
    }

    /// While no tracker has answered for this content (`CARRY_AFTER` in), takes the station's
    /// recent peers as this content's, every `PEER_EXCHANGE_EVERY`: those not holding it yet
    /// answer `404` and are asked again next time.
    fn carry(&mut self) {
        let root = self.content.root();
        let due = self.began.elapsed() >= CARRY_AFTER
            && self
                .last_carry
                .is_none_or(|t| t.elapsed() >= PEER_EXCHANGE_EVERY);
        if due && !self.node.announced(&root) {
            self.last_carry = Some(Instant::now());
            self.node.carry_peers(root);
        }
    }

    /// Follows `addr`: its bitfield news comes to the download loop until it is let go.
    fn follow(&mut self, addr: SocketAddr) {
        let poller = self.scope.child_token();
        self.followed.insert(addr, poller.clone());
        self.followed_at.insert(addr, Instant::now());
        spawn_poller(&self.node, &self.content, addr, self.tx.clone(), poller);
    }
}

/// Every so often one neighbour makes way for another peer, at random: the listeners who
/// joined first, whom everyone knew at the start, do not stay everyone's neighbours.
const ROTATE_EVERY: Duration = Duration::from_secs(5);

/// Stops following one of the `followed` peers, at random: it makes way for another.
fn let_go_of_one(
    followed: &mut HashMap<SocketAddr, CancellationToken>,
    picker: &mut Picker,
    rng: &mut impl rand::Rng,
) {
    let mut current: Vec<SocketAddr> = followed.keys().copied().collect();
    current.sort();
    if let Some(gone) = current.choose(rng).copied() {
        if let Some(poller) = followed.remove(&gone) {
            poller.cancel();
        }
        picker.unfollow(gone);
    }
}

/// Arrivals (members the tracker has known for less than `ARRIVAL_MS`) among `known` that
/// this download has not decided on yet, each to be followed with a chance of `neighbours` over
/// the members: a new listener takes a part from the origin as it arrives (a cold entry's
/// seed), and the swarm learns it holds it only from those who follow it (docs/decisions/022).
/// Nothing while this node is an arrival itself (`my_start_ms`, when it joined the swarm): its neighbours are the
/// holders of its first seconds, and an arrival holds little of them.
pub(super) fn adopt_arrivals(
    known: &[(SocketAddr, Option<u64>)],
    my_start_ms: u64,
    neighbours: usize,
    followed: &HashMap<SocketAddr, CancellationToken>,
    considered: &mut HashSet<SocketAddr>,
    rng: &mut impl rand::Rng,
) -> Vec<SocketAddr> {
    let now = unix_ms();
    if neighbours == usize::MAX || now.saturating_sub(my_start_ms) < ARRIVAL_MS {
        return Vec::new();
    }
    let chance = neighbours as f64 / known.len().max(neighbours) as f64;
    let mut adopted = Vec::new();
    for &(addr, started) in known {
        let Some(started) = started else {
            continue;
        };
        if followed.contains_key(&addr) || now.saturating_sub(started) > ARRIVAL_MS {
            continue;
        }
        if considered.insert(addr) && rng.random_bool(chance) {
            adopted.push(addr);
        }
    }
    adopted
}

/// Tells the picker the members the node knows (`known`), and that a peer the node forgot
/// (its list full, or gone) is no member either: it would own blocks nobody takes
/// (docs/decisions/053). Returns each known peer with when the tracker first saw it.
fn tell_members(
    picker: &mut Picker,
    known: Vec<crate::node::Member>,
) -> Vec<(SocketAddr, Option<u64>)> {
    let mut starts: Vec<(SocketAddr, Option<u64>)> = Vec::new();
    for (addr, member) in known {
        picker.add_peer(addr);
        let since = member.as_ref().map(|m| m.since_ms);
        picker.set_membership(addr, member.map(|m| (member_hash(&m.id), m.since_ms)));
        starts.push((addr, since));
    }
    let known: std::collections::HashSet<SocketAddr> = starts.iter().map(|(a, _)| *a).collect();
    let forgotten: Vec<SocketAddr> = picker.peers().filter(|a| !known.contains(a)).collect();
    for addr in forgotten {
        picker.set_membership(addr, None);
    }
    starts
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;

    fn member(port: u16, started_ms: u64) -> (SocketAddr, Option<u64>) {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        (addr, Some(started_ms))
    }

    #[test]
    fn arrivals_are_followed_once_with_a_chance_of_neighbours_over_members() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let now = unix_ms();
        // A small swarm: every arrival is followed, a member there for a minute is not, nor
        // one already followed, nor one without an id.
        let mut known = vec![
            member(1, now - 1_000),
            member(2, now - 60_000),
            member(3, now),
        ];
        known.push(("127.0.0.1:4".parse().unwrap(), None));
        let mut followed = HashMap::new();
        followed.insert(known[2].0, CancellationToken::new());
        let mut considered = HashSet::new();
        let mine = now - 60_000;
        // An arrival itself keeps the neighbours it found (and decides nothing yet).
        let adopted = adopt_arrivals(&known, now, 8, &followed, &mut considered, &mut rng);
        assert!(adopted.is_empty() && considered.is_empty());
        let adopted = adopt_arrivals(&known, mine, 8, &followed, &mut considered, &mut rng);
        assert_eq!(adopted, vec![known[0].0]);
        // Decided once: asked again, nothing new.
        assert!(adopt_arrivals(&known, mine, 8, &followed, &mut considered, &mut rng).is_empty());
        // A plain fetch follows everyone anyway.
        let mut fresh = HashSet::new();
        let none = HashMap::new();
        assert!(adopt_arrivals(&known, mine, usize::MAX, &none, &mut fresh, &mut rng).is_empty());

        // 400 members arriving at once, 8 neighbours: about 8 of them followed.
        let known: Vec<_> = (0..400).map(|i| member(1_000 + i, now)).collect();
        let mut considered = HashSet::new();
        let adopted = adopt_arrivals(&known, mine, 8, &none, &mut considered, &mut rng);
        assert!((2..=20).contains(&adopted.len()), "{}", adopted.len());
        assert_eq!(considered.len(), 400);
    }

    /// The parts a plain fetch takes from the origin before any peer could be orphaned:
    /// those of the blocks this node owns among the members its picker knows.
    fn owned_from_origin(picker: &mut Picker) -> u32 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut parts = 0;
        loop {
            let asks = picker.next(1_000, &mut rng);
            if asks.is_empty() {
                return parts;
            }
            for a in asks {
                assert_eq!(a.source, crate::picker::Source::Origin);
                picker.completed(
                    a.id,
                    a.first,
                    a.count,
                    u64::from(a.count) * alluvium_content::PART_SIZE,
                    1_000,
                );
                parts += a.count;
            }
        }
    }

    #[test]
    fn a_member_the_node_forgot_owns_no_block() {
        use crate::picker::{Deadlines, PickerConfig};
        let picker = || {
            let mut p = Picker::new(
                Bitfield::new(32),
                Deadlines::None,
                PickerConfig::default(),
                member_hash("me"),
            );
            p.set_tracker_answered();
            p
        };
        let other: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let known = vec![(
            other,
            Some(crate::node::Membership {
                id: "other".into(),
                since_ms: 1_000,
            }),
        )];
        // Known, the other member owns some of the blocks: this node takes only its own.
        let mut with = picker();
        let starts = tell_members(&mut with, known.clone());
        assert_eq!(starts, [(other, Some(1_000))]);
        let mine = owned_from_origin(&mut with);
        assert!(mine > 0 && mine < 32, "{mine}");
        // Forgotten by the node (gone, or its list full), it owns nothing here: this node
        // takes every block, as it would alone.
        let mut forgot = picker();
        tell_members(&mut forgot, known);
        assert_eq!(tell_members(&mut forgot, Vec::new()), []);
        assert_eq!(owned_from_origin(&mut forgot), 32);
    }
}
