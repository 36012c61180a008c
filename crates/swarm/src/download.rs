//! Downloading one content by swarming: the async shell around the [`Picker`].
//!
//! Actors: the download loop owns the picker. It spawns one task per request (to a peer or to
//! the origin), one long-poll task per followed peer (its `have` bitfield; a live download
//! follows a few neighbours in turn, see [`DownloadConfig::neighbours`]), and now and then a
//! peer exchange ask; they all report back on one bounded channel. The announcer
//! ([`spawn_announcer`]) runs beside it for as long as the node holds the content, putting
//! tracker answers into the node's known peers, where the loop picks them up.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alluvium_content::{ContentInfo, Hash, Outboard, PART_SIZE};
use alluvium_gateway::wire::{AnnounceRequest, Event as AnnounceEvent, Have};
use alluvium_gateway::{Client, ClientError};
use bytes::Bytes;
use futures_util::StreamExt;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::SeedableRng;
use reqwest::header;
use reqwest::StatusCode;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::bitfield::Bitfield;
use crate::node::{started_ms_of, unix_ms, Node};
use crate::picker::{
    member_hash, Deadlines, Failure, PeerVerdict, Picker, PickerConfig, Request, Source,
};
use crate::server::{DUE_HEADER, HAVE_STREAM_TYPE, HAVE_VERSION_HEADER, PEER_PORT_HEADER};
use crate::store::{Content, StoreError};

/// How often the loop looks for new peers and new requests without other news.
const TICK: Duration = Duration::from_millis(100);
/// A request to a peer taking longer than this is abandoned (and the peer backs off).
const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A request to the origin taking longer than this is abandoned.
const ORIGIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A transfer from which nothing arrives for this long is given up, keeping the whole parts
/// that did arrive. A thin uplink shared by many TCP flows drops packets, and a flow that
/// loses its retransmissions too waits seconds, doubling, before it tries again: asking
/// anew beats waiting for it (the block's parts are then still spread in time).
const IDLE_LIMIT: Duration = Duration::from_secs(4);
/// How often one known peer is asked for the peers it knows.
const PEER_EXCHANGE_EVERY: Duration = Duration::from_secs(10);
/// Give up when nothing arrives for this long and nothing is in flight.
const STALL_LIMIT: Duration = Duration::from_secs(120);
/// Announce this often while few peers are known, whatever the tracker's interval.
const EAGER_ANNOUNCE: Duration = Duration::from_secs(2);
/// The first eager announce comes this soon after the first, each next one twice as late up
/// to `EAGER_ANNOUNCE`: listeners that start together each saw only those who announced
/// before them, and until they see each other they take the same blocks from the origin.
/// 20 listeners of a plain fetch took 1.3-1.5 copies with the first one 2 s later, 1.02-1.06
/// with it 0.5 s later (swarm test `twenty_listeners_share_one_copy_from_a_capped_origin`,
/// 2026-12-02): their whole origin phase lasts about 3 s.
const EAGER_FIRST: Duration = Duration::from_millis(500);
/// Announce at least this often, whatever the tracker's interval: its answers say who has
/// left (see [`Node::tracker_members`]).
const MAX_ANNOUNCE: Duration = Duration::from_secs(10);
/// Fewer known peers than this makes the announcer eager; so does a tracker answer that
/// named more members than the one before (the swarm is still gathering).
const FEW_PEERS: usize = 8;
/// Entries with more parts than this poll for news without saying what they know (see
/// `poll_have`): 512 bytes of bitfield, 1 KiB in the query.
const MAX_KNOWN_PARTS: u32 = 4_096;
/// Peers a live download follows (see [`DownloadConfig::neighbours`]).
pub const LIVE_NEIGHBOURS: usize = 8;
/// Every so often one neighbour makes way for another peer, at random: the listeners who
/// joined first, whom everyone knew at the start, do not stay everyone's neighbours.
const ROTATE_EVERY: Duration = Duration::from_secs(5);
/// A member that started less than this ago is an arrival: a live download follows it at
/// once with a chance of its neighbours over the members (see `adopt_arrivals`).
const ARRIVAL_MS: u64 = 5_000;

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    #[error("gateway")]
    Gateway(#[from] ClientError),
    #[error("{url}: the gateway says its content is {got}, the playlist pins {expected}: refused")]
    RootMismatch {
        url: String,
        expected: Hash,
        got: Hash,
    },
    #[error("{url}: not an http(s) URL")]
    BadUrl { url: String },
    #[error("{url}: the origin's file changed during the transfer and no peer holds the rest")]
    OriginChanged { url: String },
    #[error("{url}: no data for {seconds} s from the origin or any peer")]
    Stalled { url: String, seconds: u64 },
    #[error("cancelled")]
    Cancelled,
}

/// Asks the gateway for `url`'s content info and verified tree, checking the root against
/// the one a playlist pins, if any.
pub async fn resolve(
    gateway: &Client,
    url: &str,
    expected: Option<Hash>,
    limit: Duration,
    progress: impl FnMut(&alluvium_gateway::wire::Pending),
) -> Result<(ContentInfo, Outboard), SwarmError> {
    let info = gateway.resolve(url, limit, progress).await?;
    if let Some(expected) = expected {
        if expected != info.blake3 {
            return Err(SwarmError::RootMismatch {
                url: url.to_string(),
                expected,
                got: info.blake3,
            });
        }
    }
    let tree = gateway.outboard(&info).await?;
    Ok((info, tree))
}

/// How eagerly an announcer comes back while the swarm gathers (while fewer than 8 peers are
/// known, and while the tracker's list grows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcing {
    /// A plain fetch: the first time 0.5 s after the first announce (`EAGER_FIRST`), then
    /// 1 s, then every 2 s.
    Fetch,
    /// A live entry: every 2 s. So does a listener hear of each arrival within 2 s, not 10:
    /// an entry joined cold is seeded a part per arrival (`PickerConfig::cold_seed_parts`),
    /// and a listener that did not know an arrival yet took that arrival's part from the
    /// origin too. Beginning 0.5 s after the first announce, as a fetch does, sent 1.33x
    /// the bytes aired at N=30 in two runs against 1.28-1.29x (benchmark, 2026-12-02, before
    /// the seeding by part; not known why).
    Live,
}

/// Announces `content` to the gateway until `cancel`, learning peers into the node. The task
/// ends after its `stopped` announce (at most 2 s after `cancel`).
pub fn spawn_announcer(
    node: Arc<Node>,
    gateway: Client,
    content: Arc<Content>,
    announcing: Announcing,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let root = content.root();
    let span = tracing::info_span!("announce", %root);
    tokio::spawn(
        async move {
            let mut event = AnnounceEvent::Started;
            let mut failing = false;
            let mut listed_before = 0;
            let mut eager = match announcing {
                Announcing::Fetch => EAGER_FIRST,
                Announcing::Live => EAGER_ANNOUNCE,
            };
            loop {
                let (bits, _) = content.have();
                let have = if bits.is_complete() {
                    Have::Complete
                } else if bits.count() > 0 {
                    Have::Partial
                } else {
                    Have::None
                };
                let request = AnnounceRequest {
                    blake3: root,
                    port: node.port(),
                    peer_id: node.peer_id().to_string(),
                    have,
                    event,
                };
                let wait = match gateway.announce(&request).await {
                    Ok(answer) => {
                        if failing {
                            info!("tracker reachable again");
                            failing = false;
                        }
                        event = AnnounceEvent::Update;
                        let mut listed = Vec::with_capacity(answer.peers.len());
                        for p in &answer.peers {
                            if let Ok(addr) = p.addr.parse::<SocketAddr>() {
                                node.learn_member(root, addr, Some(&p.peer_id));
                                listed.push(addr);
                            }
                        }
                        // A full answer may leave members out; a shorter one names them all.
                        if answer.peers.len() < alluvium_gateway::config::DEFAULT_PEERS_PER_ANSWER {
                            node.tracker_members(&root, &listed);
                        }
                        node.mark_announced(root);
                        // While members keep coming, each one's view of who is there lags
                        // by up to an interval, and blocks it wrongly thinks its own are
                        // fetched twice.
                        let gathering = listed.len() > listed_before;
                        listed_before = listed.len();
                        // Often enough that members who left stop owning blocks in time.
                        let interval =
                            Duration::from_secs(answer.interval_s.max(1)).min(MAX_ANNOUNCE);
                        if (gathering || node.known_peers(&root).len() < FEW_PEERS)
                            && !bits.is_complete()
                        {
                            let wait = interval.min(eager);
                            eager = (eager * 2).min(EAGER_ANNOUNCE);
                            wait
                        } else {
                            interval
                        }
                    }
                    Err(e) => {
                        if !failing {
                            warn!(
                                "tracker unreachable, swarming with the peers already known: {e:#}"
                            );
                            failing = true;
                        }
                        Duration::from_secs(5)
                    }
                };
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            let stop = AnnounceRequest {
                blake3: root,
                port: node.port(),
                peer_id: node.peer_id().to_string(),
                have: Have::None,
                event: AnnounceEvent::Stopped,
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), gateway.announce(&stop)).await;
        }
        .instrument(span),
    )
}

enum Event {
    Have(SocketAddr, Bitfield),
    PeerGone(SocketAddr),
    Done {
        id: u64,
        first: u32,
        count: u32,
        bytes: u64,
        source: Source,
    },
    Failed {
        id: u64,
        failure: Failure,
    },
    OriginChanged {
        id: u64,
    },
}

/// Settings of one download.
#[derive(Debug, Clone)]
pub struct DownloadConfig {
    pub picker: PickerConfig,
    pub deadlines: Deadlines,
    /// Peers whose bitfields the download follows (and whom it asks); others stay members
    /// (block ownership) and take turns: every so often one neighbour makes way for another,
    /// at random. Every followed peer sends an answer for each piece of news, and on a thin
    /// uplink those add up: following all of a 30-listener live swarm took a third of each
    /// 256 kbit/s uplink in the benchmark. A plain fetch follows everyone (fewer, larger
    /// transfers, and the origin's share depends on seeing who holds what).
    pub neighbours: usize,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self {
            picker: PickerConfig::default(),
            deadlines: Deadlines::None,
            neighbours: usize::MAX,
        }
    }
}

fn now_ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// Downloads `info` (whose verified tree is `tree`) into the node's store, from peers and
/// the origin, until every part is held. The node serves what it holds meanwhile.
pub async fn download(
    node: Arc<Node>,
    info: &ContentInfo,
    tree: Outboard,
    config: DownloadConfig,
    cancel: CancellationToken,
) -> Result<Arc<Content>, SwarmError> {
    let origin = url::Url::parse(&info.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| SwarmError::BadUrl {
            url: info.url.clone(),
        })?;
    let content = node.store.open(tree);
    let root = content.root();
    let _short = NotShort(node.clone(), root);
    // Strong validators only: a weak ETag never satisfies If-Range.
    let if_range = info
        .etag
        .clone()
        .filter(|e| !e.starts_with("W/"))
        .or_else(|| info.last_modified.clone());

    let clock = Instant::now();
    let mut picker = Picker::new(
        content.have().0,
        config.deadlines,
        config.picker,
        member_hash(node.peer_id()),
    );
    picker.set_started(node.started_ms(), unix_ms());
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    let scope = cancel.child_token();
    let _stop_tasks = scope.clone().drop_guard();
    let mut running: HashMap<u64, AbortHandle> = HashMap::new();
    let mut followed: HashMap<SocketAddr, CancellationToken> = HashMap::new();
    let mut last_rotation = Instant::now();
    let mut considered: HashSet<SocketAddr> = HashSet::new();
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut last_news = Instant::now();
    // Ask for other peers at once: a listener that knows only one peer learns the rest.
    let mut last_exchange = Instant::now()
        .checked_sub(PEER_EXCHANGE_EVERY)
        .unwrap_or_else(Instant::now);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    while !picker.is_complete() {
        let now = now_ms(clock);
        // Read before the members: the announcer learns them before it marks the answer.
        let answered = node.announced(&root);
        let mut starts: Vec<(SocketAddr, Option<u64>)> = Vec::new();
        for (addr, id) in node.known_members(&root) {
            picker.add_peer(addr);
            let started = id.as_deref().and_then(started_ms_of);
            let member = id
                .as_deref()
                .map(|id| (member_hash(id), started.unwrap_or(u64::MAX)));
            picker.set_membership(addr, member);
            starts.push((addr, started));
        }
        let neighbours = config.neighbours.max(1);
        let adopted = adopt_arrivals(
            &starts,
            node.started_ms(),
            neighbours,
            &followed,
            &mut considered,
            &mut rng,
        );
        for addr in adopted {
            if picker.is_banned(addr) {
                continue;
            }
            if followed.len() >= neighbours {
                let_go_of_one(&mut followed, &mut picker, &mut rng);
            }
            follow(&node, &content, addr, &mut followed, &tx, &scope);
        }
        let rotate = followed.len() >= neighbours && last_rotation.elapsed() >= ROTATE_EVERY;
        // Peers to follow, looked for only when one is wanted.
        let mut candidates: Vec<SocketAddr> = if rotate || followed.len() < neighbours {
            picker
                .peers()
                .filter(|a| !followed.contains_key(a) && !picker.is_banned(*a))
                .collect()
        } else {
            Vec::new()
        };
        if rotate && !candidates.is_empty() {
            last_rotation = Instant::now();
            let_go_of_one(&mut followed, &mut picker, &mut rng);
        }
        if followed.len() < neighbours {
            candidates.sort();
            candidates.shuffle(&mut rng);
            for addr in candidates.into_iter().take(neighbours - followed.len()) {
                follow(&node, &content, addr, &mut followed, &tx, &scope);
            }
        }
        if last_exchange.elapsed() >= PEER_EXCHANGE_EVERY {
            last_exchange = Instant::now();
            let peers: Vec<SocketAddr> = picker.peers().collect();
            if let Some(&peer) = peers.choose(&mut rng) {
                spawn_exchange(&node, root, peer, scope.clone());
            }
        }
        if answered {
            picker.set_tracker_answered();
        }
        picker.set_wanted(content.wanted());
        let short = picker.short(now);
        node.set_short(root, short);
        picker.set_yielding(!short && node.short_elsewhere(&root));
        for request in picker.next(now, &mut rng) {
            debug!(
                id = request.id,
                first = request.first,
                count = request.count,
                from = ?request.source,
                avail = picker.availability(request.first),
                "ask"
            );
            let handle = spawn_request(
                &node,
                &content,
                &origin,
                if_range.clone(),
                request,
                tx.clone(),
            );
            running.insert(request.id, handle);
        }
        if picker.inflight() == 0 && last_news.elapsed() >= STALL_LIMIT {
            return Err(SwarmError::Stalled {
                url: info.url.clone(),
                seconds: STALL_LIMIT.as_secs(),
            });
        }

        let event = tokio::select! {
            _ = cancel.cancelled() => return Err(SwarmError::Cancelled),
            _ = tick.tick() => continue,
            e = rx.recv() => e,
        };
        let Some(event) = event else { continue };
        // Take in everything that has arrived before deciding anew: one pass of the picker
        // per batch of news, not per message.
        let mut batch = vec![event];
        while let Ok(e) = rx.try_recv() {
            batch.push(e);
        }
        for event in batch {
            let now = now_ms(clock);
            match &event {
                Event::PeerGone(peer) => {
                    followed.remove(peer);
                }
                // News from a neighbour just let go, still on its way.
                Event::Have(peer, _) if !followed.contains_key(peer) => continue,
                _ => {}
            }
            if let Some(e) = handle(
                &node,
                &mut picker,
                &mut running,
                event,
                now,
                info,
                &mut last_news,
            ) {
                return Err(e);
            }
        }
        node.metrics.peers.set(picker.peer_count() as i64);
    }
    for (_, h) in running {
        h.abort();
    }
    info!(url = %info.url, %root, "complete");
    Ok(content)
}

/// Clears a download's short mark (`Node::set_short`) however the download ends.
struct NotShort(Arc<Node>, Hash);

impl Drop for NotShort {
    fn drop(&mut self) {
        self.0.set_short(self.1, false);
    }
}

/// Applies one report to the picker; an error ends the download.
fn handle(
    node: &Node,
    picker: &mut Picker,
    running: &mut HashMap<u64, AbortHandle>,
    event: Event,
    now: u64,
    info: &ContentInfo,
    last_news: &mut Instant,
) -> Option<SwarmError> {
    let root = info.blake3;
    {
        match event {
            Event::Have(peer, bits) => picker.set_peer_have(peer, bits, now),
            Event::PeerGone(peer) => {
                debug!(%peer, "peer gone");
                picker.remove_peer(peer);
                node.forget(&root, peer);
            }
            Event::Done {
                id,
                first,
                count,
                bytes,
                source,
            } => {
                *last_news = Instant::now();
                running.remove(&id);
                debug!(id, first, count, from = ?source, "got");
                match source {
                    Source::Origin => node.metrics.bytes_from_origin.inc_by(bytes),
                    Source::Peer(_) => node.metrics.bytes_from_peers.inc_by(bytes),
                };
                for other in picker.completed(id, first, count, bytes, now) {
                    if let Some(h) = running.remove(&other) {
                        h.abort();
                    }
                }
            }
            Event::Failed { id, failure } => {
                debug!(id, ?failure, "failed");
                let source = running.remove(&id);
                drop(source);
                if let PeerVerdict::Banned = picker.failed(id, failure, now) {
                    node.metrics.peers_banned.inc();
                }
            }
            Event::OriginChanged { id } => {
                running.remove(&id);
                picker.failed(id, Failure::Error, now);
                picker.set_origin_enabled(false);
                node.metrics.origin_changed.inc();
                warn!(url = %info.url, "the origin's file changed (If-Range); finishing from peers only");
                if picker.peer_count() == 0 {
                    return Some(SwarmError::OriginChanged {
                        url: info.url.clone(),
                    });
                }
            }
        }
    }
    None
}

/// Bans are reported where they happen; this names the peer.
fn report_ban(peer: SocketAddr, what: &str) {
    warn!(%peer, "peer sent {what}: banned for this session");
}

fn spawn_request(
    node: &Arc<Node>,
    content: &Arc<Content>,
    origin: &url::Url,
    if_range: Option<String>,
    request: Request,
    tx: mpsc::Sender<Event>,
) -> AbortHandle {
    let node = node.clone();
    let content = content.clone();
    let origin = origin.clone();
    let span = tracing::debug_span!(
        "request",
        id = request.id,
        first = request.first,
        count = request.count
    );
    tokio::spawn(
        async move {
            let event = match request.source {
                Source::Origin => {
                    from_origin(&node, &content, &origin, if_range.as_deref(), request).await
                }
                Source::Peer(peer) => from_peer(&node, &content, peer, request).await,
            };
            let _ = tx.send(event).await;
        }
        .instrument(span),
    )
    .abort_handle()
}

fn range_of(content: &Content, request: &Request) -> (u64, u64) {
    let start = u64::from(request.first) * PART_SIZE;
    let end = (u64::from(request.first + request.count) * PART_SIZE).min(content.size());
    (start, end)
}

/// The report of a request whose first `count` parts (`bytes` bytes) were verified and kept.
fn done(request: &Request, count: u32, bytes: u64) -> Event {
    Event::Done {
        id: request.id,
        first: request.first,
        count,
        bytes,
        source: request.source,
    }
}

/// What came of a body of parts.
enum Received {
    /// The first `count` parts, `bytes` bytes, verified and kept.
    Kept { count: u32, bytes: u64 },
    /// Longer than asked, or not one whole part came.
    Broken,
    /// `part` failed verification. The parts before it were kept; the picker, told only of
    /// the failure, asks for them again, and the store takes a part it holds as a no-op.
    Invalid { part: u32 },
    /// The store could not keep a part.
    Failed,
}

/// Reads a body of `len` bytes holding the parts from `first`, and keeps each part
/// (verified) as soon as it is whole: the first part of a run plays, and is offered to
/// peers, while the rest is on its way. Before, a run was kept when all of it had come: a
/// first listener's opening three parts from the origin were held back until the third,
/// 2.7 s after the ask. If the body breaks off or nothing comes for [`IDLE_LIMIT`], the
/// whole parts that came are what is kept (the last part of a file may be short, and is
/// whole when the body is).
async fn receive(response: reqwest::Response, len: u64, content: &Content, first: u32) -> Received {
    let part = PART_SIZE as usize;
    let mut pending: Vec<u8> = Vec::with_capacity(part * 2);
    // Bytes came, and bytes kept: whole parts (the file's short last part only at the end),
    // so the next part to keep is `first + kept / PART_SIZE`.
    let (mut came, mut kept) = (0u64, 0u64);
    let keep = |bytes: Vec<u8>, kept: u64| match content
        .insert(first + (kept / PART_SIZE) as u32, &Bytes::from(bytes))
    {
        Ok(_) => None,
        Err(StoreError::Invalid { part, .. }) => Some(Received::Invalid { part }),
        Err(_) => Some(Received::Failed),
    };
    let mut stream = response.bytes_stream();
    while let Ok(Some(chunk)) = tokio::time::timeout(IDLE_LIMIT, stream.next()).await {
        let Ok(chunk) = chunk else { break };
        came += chunk.len() as u64;
        if came > len {
            return Received::Broken;
        }
        pending.extend_from_slice(&chunk);
        let whole = pending.len() - pending.len() % part;
        if whole > 0 {
            let rest = pending.split_off(whole);
            let parts = std::mem::replace(&mut pending, rest);
            if let Some(bad) = keep(parts, kept) {
                return bad;
            }
            kept += whole as u64;
        }
    }
    if came == len && !pending.is_empty() {
        let last = pending.len() as u64;
        if let Some(bad) = keep(pending, kept) {
            return bad;
        }
        kept += last;
    }
    if kept == 0 {
        return Received::Broken;
    }
    Received::Kept {
        count: kept.div_ceil(PART_SIZE) as u32,
        bytes: kept,
    }
}

/// Reads a refusal's short body so that its connection goes back to the pool: a response
/// dropped unread closes its connection, and the next ask of that peer opens a new one (a
/// handshake and a close, about half a kilobyte across two thin uplinks, and a fresh slow
/// start).
async fn drain(response: reqwest::Response) {
    if response.content_length().is_some_and(|n| n <= 1_024) {
        let _ = tokio::time::timeout(Duration::from_millis(500), response.bytes()).await;
    }
}

async fn from_peer(node: &Node, content: &Content, peer: SocketAddr, request: Request) -> Event {
    let (start, end) = range_of(content, &request);
    let failed = |failure| Event::Failed {
        id: request.id,
        failure,
    };
    let url = format!("http://{peer}/v1/blob/{}", content.root());
    let mut get = node
        .http
        .get(url)
        .header(header::RANGE, format!("bytes={start}-{}", end - 1))
        .header(PEER_PORT_HEADER, node.port())
        .timeout(PEER_REQUEST_TIMEOUT);
    if let Some(due) = request.due_in_ms {
        get = get.header(DUE_HEADER, due);
    }
    let sent = get.send().await;
    let response = match sent {
        Ok(r) => r,
        Err(_) => return failed(Failure::Error),
    };
    match response.status() {
        StatusCode::PARTIAL_CONTENT => {}
        StatusCode::RANGE_NOT_SATISFIABLE => {
            drain(response).await;
            return failed(Failure::NotHeld);
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            drain(response).await;
            return failed(Failure::Busy);
        }
        _ => return failed(Failure::Error),
    }
    match receive(response, end - start, content, request.first).await {
        Received::Kept { count, bytes } => done(&request, count, bytes),
        Received::Invalid { part } => {
            node.metrics.parts_failed_verification.inc();
            report_ban(peer, &format!("part {part} failing verification"));
            failed(Failure::BadData)
        }
        Received::Broken | Received::Failed => failed(Failure::Error),
    }
}

async fn from_origin(
    node: &Node,
    content: &Content,
    origin: &url::Url,
    if_range: Option<&str>,
    request: Request,
) -> Event {
    let (start, end) = range_of(content, &request);
    let failed = |failure| Event::Failed {
        id: request.id,
        failure,
    };
    let mut get = node
        .http
        .get(origin.clone())
        .header(header::RANGE, format!("bytes={start}-{}", end - 1))
        .timeout(ORIGIN_REQUEST_TIMEOUT);
    if let Some(v) = if_range {
        get = get.header(header::IF_RANGE, v);
    }
    let response = match get.send().await {
        Ok(r) => r,
        Err(e) => {
            debug!("origin request failed: {e}");
            return failed(Failure::Error);
        }
    };
    match response.status() {
        StatusCode::PARTIAL_CONTENT => {}
        // If-Range failed: the whole new file is coming. Drop it unread.
        StatusCode::OK | StatusCode::RANGE_NOT_SATISFIABLE => {
            return Event::OriginChanged { id: request.id }
        }
        other => {
            debug!(status = %other, "origin refused a range");
            return failed(Failure::Error);
        }
    }
    match receive(response, end - start, content, request.first).await {
        Received::Kept { count, bytes } => done(&request, count, bytes),
        // The origin's bytes no longer match the tree: its file changed under the same
        // validators (a weak or missing ETag). Never mixed in; peers finish the job.
        Received::Invalid { .. } => {
            node.metrics.parts_failed_verification.inc();
            Event::OriginChanged { id: request.id }
        }
        Received::Broken | Received::Failed => failed(Failure::Error),
    }
}

fn spawn_poller(
    node: &Arc<Node>,
    content: &Arc<Content>,
    peer: SocketAddr,
    tx: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    let (node, content) = (node.clone(), content.clone());
    let span = tracing::debug_span!("have-poll", %peer);
    tokio::spawn(
        async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = poll_have(node, content, peer, tx) => {}
            }
        }
        .instrument(span),
    );
}

async fn poll_have(
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
struct Follow {
    base: String,
    content: Arc<Content>,
    peer: SocketAddr,
    /// The version of what the peer said last.
    version: Option<u64>,
    /// What the peer said it holds last.
    told: Option<Bitfield>,
}

/// How one ask of a [`Follow`] ended.
enum Followed {
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

    /// One long poll (DESIGN section 4): `?after=N`, answered with news or `304`.
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
        let parts = self.content.parts();
        let record = 8 + parts.div_ceil(8) as usize;
        let mut buf: Vec<u8> = Vec::with_capacity(record * 2);
        let mut any = false;
        loop {
            match tokio::time::timeout(quiet, r.chunk()).await {
                Ok(Ok(Some(chunk))) => buf.extend_from_slice(&chunk),
                // Ended or quiet: ask again (at once if it said something).
                _ => {
                    return if any {
                        Followed::News
                    } else {
                        Followed::Failed
                    }
                }
            }
            while buf.len() >= record {
                let mut version = [0u8; 8];
                version.copy_from_slice(&buf[..8]);
                let Some(bits) = Bitfield::from_bytes(parts, &buf[8..record]) else {
                    return Followed::Gone;
                };
                buf.drain(..record);
                any = true;
                if !self.told(tx, u64::from_be_bytes(version), bits).await {
                    return Followed::Closed;
                }
            }
        }
    }
}

fn spawn_exchange(node: &Arc<Node>, root: Hash, peer: SocketAddr, cancel: CancellationToken) {
    let node = node.clone();
    tokio::spawn(async move {
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
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = ask => {}
        }
    });
}

/// Follows `addr`: its bitfield news comes to the download loop until its token is cancelled.
fn follow(
    node: &Arc<Node>,
    content: &Arc<Content>,
    addr: SocketAddr,
    followed: &mut HashMap<SocketAddr, CancellationToken>,
    tx: &mpsc::Sender<Event>,
    scope: &CancellationToken,
) {
    let poller = scope.child_token();
    followed.insert(addr, poller.clone());
    spawn_poller(node, content, addr, tx.clone(), poller);
}

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

/// Arrivals (members that started less than `ARRIVAL_MS` ago, by the start in their ids)
/// among `known` that this
/// download has not decided on yet, each to be followed with a chance of `neighbours` over
/// the members: a new listener takes a part from the origin as it arrives (a cold entry's
/// seed), and the swarm learns it holds it only from those who follow it. With neighbours
/// rotating at random every 5 s, an arrival had one or two followers in its first seconds,
/// and its seed was asked of it by three or four listeners in all before it was due.
/// Nothing while this node is an arrival itself (`my_start_ms`): its neighbours are the
/// holders of its first seconds, and an arrival holds little of them.
fn adopt_arrivals(
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

    /// A response whose body is what `chunks` sends, as it sends it.
    fn streamed(chunks: mpsc::Receiver<Vec<u8>>) -> reqwest::Response {
        let body = futures_util::stream::unfold(chunks, |mut rx| async move {
            let chunk = rx.recv().await?;
            Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), rx))
        });
        axum::http::Response::new(reqwest::Body::wrap_stream(body)).into()
    }

    #[tokio::test]
    async fn a_run_s_parts_are_kept_as_each_comes_and_a_bad_one_stops_it() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let tree = Outboard::compute(&data[..], data.len() as u64, |_| {}).unwrap();
        let store = crate::store::Store::new(None, 1 << 30, 1 << 20);
        let part = PART_SIZE as usize;

        // Parts 1-3 asked; parts 1 and 2 come in odd pieces, then the body waits.
        let content = store.open(tree.clone());
        let (tx, rx) = mpsc::channel(8);
        let reading = tokio::spawn({
            let content = content.clone();
            async move { receive(streamed(rx), 3 * PART_SIZE, &content, 1).await }
        });
        tx.send(data[part..part + 10_000].to_vec()).await.unwrap();
        tx.send(data[part + 10_000..3 * part].to_vec())
            .await
            .unwrap();
        let mut have = content.subscribe();
        let kept = async {
            while !content.have().0.get(2) {
                have.changed().await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(10), kept)
            .await
            .expect("parts 1 and 2 kept while part 3 is still to come");
        assert!(content.have().0.get(1) && !reading.is_finished());
        // Part 3 is corrupt: it is not kept, and the request says which part failed.
        let mut bad = data[3 * part..4 * part].to_vec();
        bad[100] ^= 1;
        tx.send(bad).await.unwrap();
        drop(tx);
        assert!(matches!(
            reading.await.unwrap(),
            Received::Invalid { part: 3 }
        ));
        assert!(!content.have().0.get(3));

        // The file's short last part is kept when the body is whole, and a body longer
        // than asked is refused.
        let (tx, rx) = mpsc::channel(8);
        tx.send(data[5 * part..].to_vec()).await.unwrap();
        drop(tx);
        let len = (data.len() - 5 * part) as u64;
        let got = receive(streamed(rx), len, &content, 5).await;
        assert!(matches!(got, Received::Kept { count: 2, bytes } if bytes == len));
        let (tx, rx) = mpsc::channel(8);
        tx.send(data[..part + 1].to_vec()).await.unwrap();
        drop(tx);
        let got = receive(streamed(rx), PART_SIZE, &content, 0).await;
        assert!(matches!(got, Received::Broken));

        // A body that breaks off keeps its whole parts.
        let (tx, rx) = mpsc::channel(8);
        tx.send(data[..part + 5].to_vec()).await.unwrap();
        drop(tx);
        let got = receive(streamed(rx), 2 * PART_SIZE, &content, 0).await;
        assert!(matches!(got, Received::Kept { count: 1, bytes } if bytes == PART_SIZE));
    }
}
