//! The gateway: resolving a URL to its verified tree, and announcing to the tracker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alluvium_content::{ContentInfo, Hash, Outboard};
use alluvium_gateway_client::wire::{AnnounceRequest, Event as AnnounceEvent, Have};
use alluvium_gateway_client::Client;
use tokio_util::sync::CancellationToken;
use tracing::{debug, Instrument};

use super::SwarmError;
use crate::node::{unix_ms, Membership, Node};
use crate::store::Content;

/// Announce this often while few peers are known, whatever the tracker's interval.
pub const EAGER_ANNOUNCE: Duration = Duration::from_secs(2);
/// The first eager announce comes this soon after the first, each next one twice as late up
/// to `EAGER_ANNOUNCE`: listeners that start together each saw only those who announced
/// before them, and until they see each other they take the same blocks from the origin
/// (docs/decisions/013).
const EAGER_FIRST: Duration = Duration::from_millis(500);
/// Announce at least this often, whatever the tracker's interval: its answers say who has
/// left (see [`Node::tracker_members`]).
pub const MAX_ANNOUNCE: Duration = Duration::from_secs(10);
/// Fewer known peers than this makes the announcer eager; so does a tracker answer that
/// named more members than the one before (the swarm is still gathering).
pub const FEW_PEERS: usize = 8;

/// Asks the gateway for `url`'s content info and verified tree, checking the root against
/// the one a playlist pins, if any.
pub async fn resolve(
    gateway: &Client,
    url: &str,
    expected: Option<Hash>,
    limit: Duration,
    progress: impl FnMut(&alluvium_gateway_client::wire::Pending),
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
    /// origin too. Beginning 0.5 s after the first announce, as a fetch does, cost the origin
    /// more (docs/decisions/013).
    Live,
}

/// Announces `content` to the gateway until `cancel`, learning peers into the node, in a task
/// of its own that ends after its `stopped` announce (at most 2 s after `cancel`).
pub fn spawn_announcer(
    node: Arc<Node>,
    gateway: Client,
    content: Arc<Content>,
    announcing: Announcing,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    alluvium_task::spawn_graceful("announce", &cancel, |cancel| {
        announce(node, gateway, content, announcing, cancel)
    })
}

/// What [`spawn_announcer`] runs, for a caller that spawns it its own way.
pub async fn announce(
    node: Arc<Node>,
    gateway: Client,
    content: Arc<Content>,
    announcing: Announcing,
    cancel: CancellationToken,
) {
    let root = content.root();
    let span = tracing::info_span!("announce", %root);
    async move {
        let mut event = AnnounceEvent::Started;
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
            let (station, report) = node.report.take(unix_ms() as i64);
            let request = AnnounceRequest {
                blake3: root,
                port: node.port(),
                peer_id: node.peer_id().to_string(),
                have,
                event,
                station,
                report,
            };
            let answer = gateway.announce(&request).await;
            if answer.is_err() {
                node.report.give_back(request.report);
            }
            crate::health::report_gateway(node.metrics.health(), answer.as_ref().err());
            let wait = match answer {
                Ok(answer) => {
                    event = AnnounceEvent::Update;
                    let mut listed = Vec::with_capacity(answer.peers.len());
                    let now = unix_ms();
                    for p in &answer.peers {
                        if let Ok(addr) = p.addr.parse::<SocketAddr>() {
                            let member = Membership {
                                id: p.peer_id.clone(),
                                since_ms: now.saturating_sub(p.age_ms),
                            };
                            node.learn_member(root, addr, Some(member));
                            listed.push(addr);
                        }
                    }
                    // A full answer may leave members out; a shorter one names them all.
                    let whole = answer.peers.len()
                        < alluvium_gateway_client::wire::DEFAULT_PEERS_PER_ANSWER;
                    if whole {
                        node.tracker_members(&root, &listed);
                    }
                    node.tracker_named(root, whole);
                    node.mark_announced(root, now.saturating_sub(answer.age_ms.unwrap_or(0)));
                    // While members keep coming, each one's view of who is there lags
                    // by up to an interval, and blocks it wrongly thinks its own are
                    // fetched twice.
                    let gathering = listed.len() > listed_before;
                    listed_before = listed.len();
                    // Often enough that members who left stop owning blocks in time.
                    let interval = Duration::from_secs(answer.interval_s.max(1)).min(MAX_ANNOUNCE);
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
                    // An outage is said once by the node's health; a refusal is this
                    // announce's own.
                    if crate::health::gateway_outage(&e).is_none() {
                        debug!("announce refused: {}", crate::error_chain(&e));
                    }
                    Duration::from_secs(5)
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let (station, report) = node.report.take(unix_ms() as i64);
        let stop = AnnounceRequest {
            blake3: root,
            port: node.port(),
            peer_id: node.peer_id().to_string(),
            have: Have::None,
            event: AnnounceEvent::Stopped,
            station,
            report,
        };
        let sent = tokio::time::timeout(Duration::from_secs(2), gateway.announce(&stop)).await;
        if !matches!(sent, Ok(Ok(_))) {
            node.report.give_back(stop.report);
        }
        node.forget_swarm(&root);
    }
    .instrument(span)
    .await
}
