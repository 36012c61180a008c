//! The peer server: what this listener holds, served to other listeners by the rules of
//! [`crate::proto`], within its limits: connections ([`CappedListener`]), concurrent blob
//! answers (`503` past them), upload bytes per second
//! (`--upload-limit`, paced in small steps by the [`crate::uplink`], the soonest-due ask first).

mod listener;
mod paced;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use alluvium_content::{Hash, PART_SIZE};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::bitfield::Bitfield;
use crate::node::Node;
use crate::proto::{
    encode_record, parse_delivered, RangeError, DELIVERED_HEADER, DUE_HEADER, HAVE_STREAM_TYPE,
    HAVE_VERSION_HEADER, MAX_RANGE_PARTS, PACED_HEADER, PEER_PORT_HEADER, SIZE_HEADER,
    URGENT_DUE_MS,
};
use crate::store::Content;
use paced::OnlyCopy;

pub use listener::{
    CappedListener, CappedStream, PeerAddr, Timeouts, Written, MAX_CONNECTIONS_PER_ADDRESS,
    UNSENT_LOW,
};
use paced::{paced, ANSWER_HEAD};

/// After news, wait this long for more before answering a long poll, so a peer gaining many
/// parts in a burst is not polled once per part (every answer and the ask that follows it
/// cost a thin uplink about 0.5 KB).
pub const NEWS_GATHER: Duration = Duration::from_millis(400);
/// What a have stream's record takes on the wire besides itself (chunk framing, TCP and IP
/// headers), counted against the uplink.
const RECORD_HEAD: usize = 80;

impl Node {
    /// Binds the peer server at `addr` (port 0 picks one) and serves until `cancel`.
    pub async fn start_server(
        self: &Arc<Self>,
        addr: SocketAddr,
        cancel: CancellationToken,
    ) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        self.port.store(local.port(), Ordering::Relaxed);
        *self.bound.lock().unwrap_or_else(|p| p.into_inner()) = Some(local);
        let node = self.clone();
        let max = self.max_connections;
        alluvium_task::spawn_graceful("peer-server", &cancel, |cancel| {
            serve(node, listener, max, cancel)
                .instrument(tracing::info_span!("peer-server", %local))
        });
        Ok(local)
    }
}

/// The peer server's routes.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/v1/blob/{blake3}", get(blob))
        .route("/v1/blob/{blake3}/have", get(have))
        .route("/v1/blob/{blake3}/peers", get(peers))
        .route("/v1/blob/{blake3}/outboard", get(outboard))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(node)
}

/// Serves the peer protocol on `listener` until `cancel` fires.
pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    max_connections: usize,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let stopping = node.stopping.clone();
    axum::serve(
        CappedListener::new(listener, max_connections, node.timeouts),
        router(node).into_make_service_with_connect_info::<PeerAddr>(),
    )
    .with_graceful_shutdown(async move {
        cancel.cancelled().await;
        // Graceful shutdown waits for open answers: have streams end now.
        stopping.cancel();
    })
    .await
}

fn status(code: StatusCode, text: &'static str) -> Response {
    (code, text).into_response()
}

/// The content named by a path's hex root: `400` for a bad hash, `404` if not held here.
#[allow(clippy::result_large_err)] // the error is the answer itself
fn held(node: &Node, root: &str) -> Result<Arc<Content>, Response> {
    let root = root
        .parse::<Hash>()
        .map_err(|_| status(StatusCode::BAD_REQUEST, "not a BLAKE3 hash\n"))?;
    node.store
        .get(&root)
        .ok_or_else(|| status(StatusCode::NOT_FOUND, "unknown content\n"))
}

/// The content `root` names, held, asked for by a peer at `from`: learnt as a peer when its
/// headers say where it serves.
#[allow(clippy::result_large_err)] // the error is the answer itself
fn held_for(
    node: &Node,
    root: &str,
    from: SocketAddr,
    headers: &HeaderMap,
) -> Result<Arc<Content>, Response> {
    let content = held(node, root)?;
    learn(node, content.root(), from, headers);
    Ok(content)
}

fn learn(node: &Node, root: Hash, from: SocketAddr, headers: &HeaderMap) {
    if let Some(port) = headers
        .get(PEER_PORT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u16>().ok())
        .filter(|p| *p != 0)
    {
        node.learn(root, SocketAddr::new(from.ip().to_canonical(), port));
    }
}

/// [`crate::proto::parse_range`], with the status each refusal answers.
fn parse_range(value: &str, size: u64) -> Result<(u32, u32), StatusCode> {
    crate::proto::parse_range(value, size).map_err(|e| match e {
        RangeError::Malformed => StatusCode::BAD_REQUEST,
        RangeError::NotParts => StatusCode::RANGE_NOT_SATISFIABLE,
    })
}

async fn blob(
    State(node): State<Arc<Node>>,
    ConnectInfo(PeerAddr(from, written)): ConnectInfo<PeerAddr>,
    Path(root): Path<String>,
    headers: HeaderMap,
) -> Response {
    let content = match held_for(&node, &root, from, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    // How this asker's last answer came (told whether or not this ask is taken): what `auto`
    // learns the link's rate from.
    if let Some(d) = headers
        .get(DELIVERED_HEADER)
        .and_then(|v| parse_delivered(v.to_str().ok()?))
    {
        if node.paces_to(from.ip()) {
            node.delivered(d);
        }
    }
    let size = content.size();
    let (first, count, partial) = match headers.get(header::RANGE) {
        Some(v) => {
            let Ok(v) = v.to_str() else {
                return status(StatusCode::BAD_REQUEST, "bad Range\n");
            };
            match parse_range(v, size) {
                Ok((f, c)) => (f, c, true),
                Err(code) => return status(code, "Range must be whole parts of the file\n"),
            }
        }
        None if content.is_complete() && content.parts() as u64 <= MAX_RANGE_PARTS => {
            (0, content.parts(), false)
        }
        None => {
            return status(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "ask for a Range of parts\n",
            )
        }
    };
    let due_ms = headers
        .get(DUE_HEADER)
        .and_then(|v| v.to_str().ok()?.trim().parse::<i64>().ok());
    // When the asker plays it: the uplink sends the soonest due first, and takes an ask
    // while few answers in flight are due before it.
    // A part goes as early as it must leave here to reach every member by its moment, but
    // after the asks due within the urgent window: those are silence now if late.
    let after_urgent = node.uplink.deadline(URGENT_DUE_MS + 1);
    let sooner = |d: i64, lead: i64| (d - lead).max(after_urgent).min(d);
    let root = content.root();
    let asker_due = due_ms.map(|ms| node.uplink.deadline(ms));
    let mut due = asker_due.map(|d| sooner(d, node.spread_lead(&root, first)));
    let over_link = node.paces_to(from.ip());
    let answer_bytes =
        (u64::from(count) * PART_SIZE).min(size.saturating_sub(u64::from(first) * PART_SIZE));
    // The swarm's only copy goes ahead of the cap, and by its hops ahead of urgent asks too:
    // behind them it waits as long as joiners keep coming (decision 058). It is one no more
    // once it has gone out (an answer its asker gave up on leaves it the only copy).
    let only = asker_due.zip(node.only_copy_lead(&root, first, count));
    let mut only_copy = None;
    let permit = match only.and_then(|(d, lead)| {
        let earlier = d - lead.max(0);
        Some((
            node.answers.try_take_only_copy(earlier, answer_bytes)?,
            earlier,
        ))
    }) {
        Some((slot, earlier)) => {
            only_copy = Some(OnlyCopy { root, first, count });
            due = Some(earlier);
            Some(slot)
        }
        None => node.answers.try_take(
            due,
            due_ms,
            answer_bytes,
            node.uplink.rate().filter(|_| over_link),
        ),
    };
    let Some(permit) = permit else {
        let mut r = status(StatusCode::SERVICE_UNAVAILABLE, "busy\n");
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let bytes = match content.read(first, count) {
        Ok(b) => b,
        Err(_) => return status(StatusCode::RANGE_NOT_SATISFIABLE, "part not held\n"),
    };
    let start = u64::from(first) * PART_SIZE;
    let len = bytes.len() as u64;
    let mut builder = Response::builder()
        .status(if partial {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        })
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len);
    if partial {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    if over_link {
        node.uplink.charge(ANSWER_HEAD);
        if let Some(rate) = node.uplink.rate() {
            builder = builder.header(PACED_HEADER, rate);
        }
    }
    let due = over_link.then_some(due);
    let body = paced(node.clone(), bytes, due, permit, written, only_copy);
    builder
        .body(body)
        .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR, "error\n"))
}

#[derive(Deserialize)]
struct HaveQuery {
    after: Option<u64>,
    /// The asker's parts and those it knows this peer holds, as hex of the bitfield layout:
    /// a long poll then answers only when this peer holds a part outside them (news the
    /// asker can use), not on every new part.
    known: Option<String>,
    /// `1`: news as records on one answer that stays open (see the module's docs).
    stream: Option<u8>,
}

async fn have(
    State(node): State<Arc<Node>>,
    ConnectInfo(PeerAddr(from, _)): ConnectInfo<PeerAddr>,
    Path(root): Path<String>,
    Query(q): Query<HaveQuery>,
    headers: HeaderMap,
) -> Response {
    let content = match held_for(&node, &root, from, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    // A `known` that does not parse is ignored: every new part is news, as without it.
    let known = q
        .known
        .as_deref()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| Bitfield::from_bytes(content.parts(), &b));
    if q.stream.is_some_and(|s| s != 0) {
        let version = content.have().1;
        let records = have_records(node, content, q.after, known);
        return have_answer(HAVE_STREAM_TYPE, version, Body::from_stream(records));
    }
    if let Some(after) = q.after {
        if news(&node, &content, after, known.as_ref()).await != News::Some {
            return status(StatusCode::NOT_MODIFIED, "");
        }
        tokio::time::sleep(NEWS_GATHER).await;
    }
    let (bits, version) = content.have();
    node.metrics.have_answers.inc();
    node.uplink
        .charge_small(ANSWER_HEAD + bits.as_bytes().len())
        .await;
    have_answer(
        "application/octet-stream",
        version,
        Body::from(bits.as_bytes().to_vec()),
    )
}

/// A `have` answer: its type, the bitfield's version, and the bitfield or the records.
fn have_answer(content_type: &'static str, version: u64, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::HeaderName::from_static(HAVE_VERSION_HEADER),
                HeaderValue::from(version),
            ),
        ],
        body,
    )
        .into_response()
}

/// What a long wait for news ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum News {
    /// The version passed `after`, with a part outside `known` if one was given.
    Some,
    /// [`LONG_POLL`](crate::proto::LONG_POLL) passed without.
    None,
    /// The node is stopping: the answer ends.
    Stopping,
}

/// Waits until the version passes `after` and, with `known`, a part outside it is held, for
/// at most [`LONG_POLL`](crate::proto::LONG_POLL).
async fn news(node: &Node, content: &Content, after: u64, known: Option<&Bitfield>) -> News {
    let until = tokio::time::Instant::now() + node.long_poll;
    let mut rx = content.subscribe();
    // The version is read and let go before the parts are looked at: the store takes its
    // lock before the version's.
    loop {
        let version = *rx.borrow_and_update();
        if version > after && known.is_none_or(|k| content.holds_beyond(k)) {
            return News::Some;
        }
        tokio::select! {
            _ = node.stopping.cancelled() => return News::Stopping,
            changed = tokio::time::timeout_at(until, rx.changed()) => match changed {
                Ok(Ok(())) => {}
                Err(_) => return News::None,
                // The version's sender is gone with the content (it cannot be while the
                // content is held here): nothing more will come.
                Ok(Err(_)) => return News::Stopping,
            },
        }
    }
}

/// A have stream's records: the first at once (without `after`) or at the first news past
/// it, then one per piece of news (gathered for [`NEWS_GATHER`]) the asker can use: a part
/// outside what it said it knew and what the stream has told it. With no news for
/// [`LONG_POLL`](crate::proto::LONG_POLL), the last record again. Ends when the node stops.
fn have_records(
    node: Arc<Node>,
    content: Arc<Content>,
    after: Option<u64>,
    known: Option<Bitfield>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    futures_util::stream::unfold(
        (node, content, after, known),
        |(node, content, after, known)| async move {
            if let Some(after) = after {
                match news(&node, &content, after, known.as_ref()).await {
                    News::Stopping => return None,
                    News::None => {}
                    News::Some => tokio::select! {
                        _ = node.stopping.cancelled() => return None,
                        _ = tokio::time::sleep(NEWS_GATHER) => {}
                    },
                }
            }
            let (bits, version) = content.have();
            node.metrics.have_answers.inc();
            let n = RECORD_HEAD + 8 + bits.as_bytes().len();
            // A stream's first record goes at once: an asker that hears nothing from a
            // member for a few seconds takes it for silent (`download::follow`). One per
            // stream, and a stream holds its connection.
            if after.is_none() {
                node.uplink.charge(n);
            } else {
                node.uplink.charge_small(n).await;
            }
            let record = encode_record(version, &bits);
            let known = match known {
                Some(k) => k.union(&bits).or(Some(bits)),
                None => Some(bits),
            };
            Some((
                Ok(Bytes::from(record)),
                (node, content, Some(version), known),
            ))
        },
    )
}

async fn peers(State(node): State<Arc<Node>>, Path(root): Path<String>) -> Response {
    let root = match held(&node, &root) {
        Ok(c) => c.root(),
        Err(r) => return r,
    };
    let list: Vec<String> = node
        .known_peers(&root)
        .iter()
        .map(ToString::to_string)
        .collect();
    axum::Json(list).into_response()
}

/// The tree of held content: another listener resolves an entry with it while no gateway
/// answers. Charged to the uplink like parts (64 bytes a part).
async fn outboard(State(node): State<Arc<Node>>, Path(root): Path<String>) -> Response {
    let content = match held(&node, &root) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let tree = Bytes::copy_from_slice(content.tree().as_bytes());
    node.uplink.charge_small(tree.len()).await;
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::HeaderName::from_static(SIZE_HEADER),
                content.size().to_string(),
            ),
        ],
        tree,
    )
        .into_response()
}

async fn metrics(State(node): State<Arc<Node>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        node.metrics.encode(),
    )
        .into_response()
}
