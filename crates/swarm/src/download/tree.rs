//! Finding an entry's hash tree: from the gateway, else from peers, else by hashing the
//! origin's file here. A station outlives its gateway (docs/design.md sections 4 and 7).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alluvium_content::{ContentInfo, Hash, Outboard};
use alluvium_gateway_client::Client;
use bytes::Bytes;
use rand::seq::SliceRandom;
use reqwest::header;
use reqwest::StatusCode;
use tracing::{debug, warn};

use super::{resolve, SwarmError};
use crate::health::Service;
use crate::node::Node;
use crate::proto::{PEER_PORT_HEADER, SIZE_HEADER};

/// Peers asked for a tree before the origin's file is hashed here.
const TREE_ASKS: usize = 8;
/// How long one peer may take to send a tree.
const TREE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest file hashed here (it is held in memory meanwhile): past it, only a gateway or
/// a peer can give the tree.
pub const MAX_HASHED_HERE: u64 = 1 << 30;
/// While the origin's file is fetched to be hashed here, the gateway and the peers are asked
/// again this often.
const RECHECK_WHILE_HASHING: Duration = Duration::from_secs(5);
/// How long fetching a whole file to hash it may take.
const WHOLE_FILE_TIMEOUT: Duration = Duration::from_secs(600);

/// Where an entry's tree came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeFrom {
    Gateway,
    /// A peer, checked against the root the playlist pins.
    Peer(SocketAddr),
    /// The origin's whole file, hashed here (this node then holds all of it).
    Origin,
}

impl std::fmt::Display for TreeFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TreeFrom::Gateway => f.write_str("the gateway"),
            TreeFrom::Peer(addr) => write!(f, "peer {addr}"),
            TreeFrom::Origin => f.write_str("the origin's file, hashed here"),
        }
    }
}

/// `url`'s content info and verified tree: the gateway's (waiting up to `limit` while it
/// hashes); when the gateway fails, a peer's, checked against `expected` (the root the
/// playlist pins), asking this node's peers for that content and the station's; else, if
/// `hash_here()` (asked then), the origin's file, fetched whole and hashed here (and kept:
/// this node then holds it all). That is one more copy from the origin for this listener
/// alone: the caller allows it only when nothing else would play.
pub async fn find_tree(
    node: &Arc<Node>,
    gateway: &Client,
    url: &str,
    expected: Option<Hash>,
    limit: Duration,
    hash_here: impl FnOnce() -> bool,
) -> Result<(ContentInfo, Outboard, TreeFrom), SwarmError> {
    let failed = match from_gateway(node, gateway, url, expected, limit).await {
        Ok(found) => return Ok(found),
        Err(e) => e,
    };
    debug!("no tree from the gateway: {}", crate::error_chain(&failed));
    if let Some(found) = from_any_peer(node, url, expected).await {
        return Ok(found);
    }
    if !hash_here() {
        return Err(SwarmError::NoTree {
            url: url.to_string(),
            reason: "no peer gave it, and the origin's file is not hashed here yet".into(),
            gateway: Box::new(failed),
        });
    }
    // The whole file takes a copy's time; a gateway or a peer that answers meanwhile ends it.
    let better = async {
        loop {
            tokio::time::sleep(RECHECK_WHILE_HASHING).await;
            if let Ok(found) = from_gateway(node, gateway, url, expected, limit).await {
                return found;
            }
            if let Some(found) = from_any_peer(node, url, expected).await {
                return found;
            }
        }
    };
    tokio::select! {
        found = better => Ok(found),
        hashed = hash_origin(node, url, expected) => match hashed {
            Ok((info, tree)) => Ok((info, tree, TreeFrom::Origin)),
            Err(reason) => Err(SwarmError::NoTree {
                url: url.to_string(),
                reason,
                gateway: Box::new(failed),
            }),
        },
    }
}

/// The gateway's tree, its answer (or outage) told to the node's health.
async fn from_gateway(
    node: &Arc<Node>,
    gateway: &Client,
    url: &str,
    expected: Option<Hash>,
    limit: Duration,
) -> Result<(ContentInfo, Outboard, TreeFrom), SwarmError> {
    match resolve(gateway, url, expected, limit, |_| {}).await {
        Ok((info, tree)) => {
            node.metrics.health().answered(Service::Gateway);
            Ok((info, tree, TreeFrom::Gateway))
        }
        Err(e) => {
            if let SwarmError::Gateway(e) = &e {
                crate::health::report_gateway(node.metrics.health(), Some(e));
            }
            Err(e)
        }
    }
}

/// A peer's tree of the pinned root, if the playlist pins one and a peer gives it.
async fn from_any_peer(
    node: &Arc<Node>,
    url: &str,
    expected: Option<Hash>,
) -> Option<(ContentInfo, Outboard, TreeFrom)> {
    let (info, tree, peer) = from_peers(node, url, expected?).await?;
    Some((info, tree, TreeFrom::Peer(peer)))
}

/// The tree of `root` from the first of this node's peers (for `root`, then the station's)
/// that sends one that checks out. A peer whose tree does not is distrusted.
async fn from_peers(
    node: &Arc<Node>,
    url: &str,
    root: Hash,
) -> Option<(ContentInfo, Outboard, SocketAddr)> {
    let mut candidates = node.known_peers(&root);
    let mut carried = node.recent_peers();
    carried.shuffle(&mut rand::rng());
    carried.retain(|a| !candidates.contains(a));
    candidates.extend(carried);
    for peer in candidates.into_iter().take(TREE_ASKS) {
        match tree_of_peer(node, peer, root).await {
            Ok(Some(tree)) => {
                let (etag, last_modified) = validators(node, url, tree.size()).await;
                let info =
                    ContentInfo::new(url.to_string(), tree.size(), root, etag, last_modified);
                return Some((info, tree, peer));
            }
            Ok(None) => {}
            Err(e) => {
                warn!(%peer, "peer sent a hash tree that is not {root}'s: banned for this session: {e}");
                node.distrust(peer);
            }
        }
    }
    None
}

/// A peer's tree of `root`: `Ok(None)` when it has none or does not answer, `Err` when
/// what it sent is not that tree.
async fn tree_of_peer(
    node: &Node,
    peer: SocketAddr,
    root: Hash,
) -> Result<Option<Outboard>, String> {
    let sent = node
        .http
        .get(format!("http://{peer}/v1/blob/{root}/outboard"))
        .header(PEER_PORT_HEADER, node.port())
        .timeout(TREE_TIMEOUT)
        .send()
        .await;
    let response = match sent {
        Ok(r) if r.status() == StatusCode::OK => r,
        Ok(r) => {
            debug!(%peer, status = %r.status(), "no tree");
            return Ok(None);
        }
        Err(e) => {
            debug!(%peer, "no tree: {}", crate::error_chain(&e));
            return Ok(None);
        }
    };
    let size = response
        .headers()
        .get(SIZE_HEADER)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .ok_or("no size")?;
    // 64 bytes a part: anything much longer is not a tree of this size.
    let most = size / 256 + 1024;
    let body = read_at_most(response, most)
        .await
        .map_err(|e| e.to_string())?;
    Outboard::from_bytes(root.into(), size, body.to_vec())
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The origin's validators for `url` (for `If-Range`), if it answers a `HEAD` with a file of
/// `size` bytes.
async fn validators(node: &Node, url: &str, size: u64) -> (Option<String>, Option<String>) {
    let Ok(r) = node.http.head(url).timeout(TREE_TIMEOUT).send().await else {
        return (None, None);
    };
    let text = |h| {
        r.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    // The header itself: a HEAD answer's body is empty whatever it says.
    let length = text(header::CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok());
    if !r.status().is_success() || length != Some(size) {
        return (None, None);
    }
    (text(header::ETAG), text(header::LAST_MODIFIED))
}

/// Fetches `url` whole, hashes it here, checks the root against `expected`, and keeps it in
/// the node's store. One copy from the origin: the way a listener alone, with no gateway,
/// still plays.
async fn hash_origin(
    node: &Arc<Node>,
    url: &str,
    expected: Option<Hash>,
) -> Result<(ContentInfo, Outboard), String> {
    let response = node
        .http
        .get(url)
        .timeout(WHOLE_FILE_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            let cause = crate::error_chain(&e);
            node.metrics.health().failed(Service::Origin, &cause);
            format!("the origin is unreachable too: {cause}")
        })?;
    report_origin_status(node, response.status());
    if response.status() != StatusCode::OK {
        return Err(format!("the origin answered {}", response.status()));
    }
    let text = |h| {
        response
            .headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (etag, last_modified) = (text(header::ETAG), text(header::LAST_MODIFIED));
    let data = read_at_most(response, MAX_HASHED_HERE)
        .await
        .map_err(|e| format!("reading the origin's file: {e}"))?;
    let size = data.len() as u64;
    let hashed = data.clone();
    let tree = tokio::task::spawn_blocking(move || Outboard::compute(&hashed[..], size, |_| {}))
        .await
        .map_err(|e| format!("hashing: {e}"))?
        .map_err(|e| format!("hashing: {e}"))?;
    let root = Hash::from(tree.root());
    if let Some(expected) = expected {
        if root != expected {
            return Err(format!(
                "the origin's file is {root}, the playlist pins {expected}: refused"
            ));
        }
    }
    node.metrics.bytes_from_origin.inc_by(size);
    let content = node.store.open(tree.clone());
    content
        .insert(0, &data)
        .map_err(|e| format!("keeping the file: {e}"))?;
    let info = ContentInfo::new(url.to_string(), size, root, etag, last_modified);
    Ok((info, tree))
}

/// Reports an origin's answer to the node's health: a server error (but `503`, a busy
/// server) is an outage, any other answer is the origin answering.
pub(super) fn report_origin_status(node: &Node, status: StatusCode) {
    let health = node.metrics.health();
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        health.failed(Service::Origin, &format!("it answered {status}"));
    } else {
        health.answered(Service::Origin);
    }
}

/// A body of at most `most` bytes.
async fn read_at_most(mut response: reqwest::Response, most: u64) -> Result<Bytes, String> {
    if response.content_length().is_some_and(|n| n > most) {
        return Err(format!("longer than {most} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| crate::error_chain(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > most {
            return Err(format!("longer than {most} bytes"));
        }
    }
    Ok(Bytes::from(body))
}
