//! Downloading one content by swarming: the async shell around the [`Picker`].
//!
//! Actors: the download loop owns the picker. It spawns one task per request (to a peer or to
//! the origin), one long-poll task per followed peer (its `have` bitfield; a live download
//! follows a few neighbours in turn, see [`DownloadConfig::neighbours`]), and now and then a
//! peer exchange ask; they all report back on one bounded channel. The announcer
//! ([`spawn_announcer`]) runs beside it for as long as the node holds the content, putting
//! tracker answers into the node's known peers, where the loop picks them up.

mod follow;
mod origin;
mod peer;
mod request;
mod tracker;
mod tree;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alluvium_content::{ContentInfo, Hash, Outboard};
use alluvium_gateway_client::ClientError;
use rand::SeedableRng;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::bitfield::Bitfield;
use crate::node::{unix_ms, Node};
use crate::picker::{member_hash, Deadlines, Failure, PeerVerdict, Picker, PickerConfig, Source};
use crate::store::Content;
use follow::Neighbours;
pub use follow::LIVE_NEIGHBOURS;
use request::spawn_request;
pub use tracker::{
    announce, resolve, spawn_announcer, Announcing, EAGER_ANNOUNCE, FEW_PEERS, MAX_ANNOUNCE,
};
pub use tree::{find_tree, TreeFrom, MAX_HASHED_HERE};

/// The longest the loop sleeps without being woken: a backstop, should a reason to wake
/// (`Picker::poll_timeout`, the node's news, the neighbours' timers) ever be missed.
const MAX_SLEEP: Duration = Duration::from_secs(1); // docs/decisions/031
/// Give up when nothing arrives for this long and nothing is in flight.
const STALL_LIMIT: Duration = Duration::from_secs(120);

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
    #[error("{url}: no hash tree: {reason}")]
    NoTree {
        url: String,
        reason: String,
        /// Why the gateway did not give it.
        #[source]
        gateway: Box<SwarmError>,
    },
    #[error("cancelled")]
    Cancelled,
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
    /// uplink those add up (following all of a 30-listener live swarm took a third of each
    /// 2x uplink). A plain fetch follows everyone (fewer, larger
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
    let mut neighbours = Neighbours::new(&node, &content, &tx, &scope, config.neighbours.max(1));
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut last_news = Instant::now();
    // What the loop reads from the node and the store changes without an event: it is told.
    let mut node_news = node.subscribe_news();
    let mut wants = content.subscribe_wants();

    while !picker.is_complete() {
        let now = now_ms(clock);
        // Read before the members: the announcer learns them before it marks the answer.
        let answered = node.announced(&root);
        neighbours.tend(&mut picker, &mut rng);
        if answered {
            picker.set_tracker_answered();
        }
        picker.set_wanted(content.wanted());
        picker.set_audio(content.audio());
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
                &scope,
            );
            running.insert(request.id, handle);
        }
        if picker.inflight() == 0 && last_news.elapsed() >= STALL_LIMIT {
            return Err(SwarmError::Stalled {
                url: info.url.clone(),
                seconds: STALL_LIMIT.as_secs(),
            });
        }

        let wake = [
            picker
                .poll_timeout(now)
                .map(|t| clock + Duration::from_millis(t)),
            Some(neighbours.next_due()),
            (picker.inflight() == 0).then(|| last_news + STALL_LIMIT),
        ]
        .into_iter()
        .flatten()
        .fold(Instant::now() + MAX_SLEEP, Instant::min);
        let event = tokio::select! {
            _ = cancel.cancelled() => return Err(SwarmError::Cancelled),
            _ = tokio::time::sleep_until(wake.into()) => continue,
            Ok(()) = node_news.changed() => continue,
            Ok(()) = wants.changed() => continue,
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
                Event::PeerGone(peer) => neighbours.gone(*peer),
                // News from a neighbour just let go, still on its way.
                Event::Have(peer, _) if !neighbours.follows(*peer) => continue,
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
            Event::Have(peer, bits) => {
                picker.set_peer_have(peer, bits, now);
                node.saw_spread(root, picker.followed_count(), picker.availabilities());
            }
            Event::PeerGone(peer) => {
                debug!(%peer, "peer gone");
                picker.remove_peer(peer);
                node.forget(&root, peer);
                node.saw_spread(root, picker.followed_count(), picker.availabilities());
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
                    Source::Origin => {
                        node.metrics.bytes_from_origin.inc_by(bytes);
                        node.took_from_origin(root, first, count);
                    }
                    Source::Peer(_) => {
                        node.metrics.bytes_from_peers.inc_by(bytes);
                    }
                }
                node.report.bytes(
                    root,
                    matches!(source, Source::Origin),
                    bytes,
                    crate::node::unix_ms() as i64,
                );
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
                picker.failed(id, Failure::Changed, now);
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
fn report_ban(node: &Node, peer: SocketAddr, what: &str) {
    warn!(%peer, "peer sent {what}: banned for this session");
    node.distrust(peer);
}
