//! The peer server: what this listener holds, served to other listeners by the rules of
//! [`crate::proto`], within its limits: connections ([`CappedListener`]), concurrent blob
//! answers (`503` past them), upload bytes per second
//! (`--upload-limit`, paced in small steps by the [`crate::uplink`], the soonest-due ask first).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use alluvium_content::{Hash, PART_SIZE};
use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::answers::Slot;
use crate::bitfield::Bitfield;
use crate::node::Node;
use crate::proto::{
    encode_record, RangeError, DUE_HEADER, HAVE_STREAM_TYPE, HAVE_VERSION_HEADER, MAX_RANGE_PARTS,
    PEER_PORT_HEADER,
};
use crate::store::Content;

/// After news, wait this long for more before answering a long poll, so a peer gaining many
/// parts in a burst is not polled once per part (every answer and the ask that follows it
/// cost a thin uplink about 0.5 KB).
pub const NEWS_GATHER: Duration = Duration::from_millis(400);
/// What a have stream's record takes on the wire besides itself (chunk framing, TCP and IP
/// headers), counted against the uplink.
const RECORD_HEAD: usize = 80;
/// Unsent bytes a peer connection's socket takes (`TCP_NOTSENT_LOWAT`): past them it takes
/// more only as bytes go out, so what it has taken is on the wire or nearly.
pub const UNSENT_LOW: u32 = 4 * 1024;
/// Steps in which an answer's body is handed to the connection.
const BODY_STEP: usize = 8 * 1024;
/// Steps when the uplink paces (`--upload-limit`): small, so the soonest-due answer takes
/// the link within a few milliseconds.
const PACED_STEP: usize = 2 * 1024;
/// About what an answer's status line and headers take on the wire, counted against the
/// upload rate besides bodies.
const ANSWER_HEAD: usize = 200;
/// An answer whose connection takes nothing for this long is cut off (the connection closes:
/// its body ends short of its length), freeing the slot.
const STUCK: Duration = Duration::from_secs(30);

/// A connection accepted by [`CappedListener`]: its remote address, and what its socket has
/// taken so far.
#[derive(Debug, Clone)]
pub struct PeerAddr(pub SocketAddr, pub Written);

/// Bytes a connection's socket has accepted from the HTTP server (which buffers answers
/// itself: an answer handed over is not yet sent).
#[derive(Debug, Clone, Default)]
pub struct Written(Arc<WrittenInner>);

#[derive(Debug, Default)]
struct WrittenInner {
    total: AtomicU64,
    /// The connection has closed: nothing more will be taken.
    closed: AtomicBool,
    more: Notify,
    /// The connection's segment size (TCP's MSS; 0: unknown).
    segment: u32,
}

impl Written {
    /// For a connection whose segments carry `segment` bytes (0: unknown).
    fn with_segment(segment: u32) -> Self {
        Self(Arc::new(WrittenInner {
            segment,
            ..WrittenInner::default()
        }))
    }

    pub fn total(&self) -> u64 {
        self.0.total.load(Ordering::Acquire)
    }

    fn add(&self, n: usize) {
        self.0.total.fetch_add(n as u64, Ordering::AcqRel);
        self.0.more.notify_waiters();
    }

    fn close(&self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.more.notify_waiters();
    }

    /// Waits until the socket has taken `target` bytes in all; false if the connection
    /// closed first, or took nothing for [`STUCK`] (an asker that stopped reading).
    async fn reach(&self, target: u64) -> bool {
        loop {
            let more = self.0.more.notified();
            tokio::pin!(more);
            // Registered before the check, so a write in between is not missed.
            more.as_mut().enable();
            if self.total() >= target {
                return true;
            }
            if self.0.closed.load(Ordering::Acquire) {
                return false;
            }
            if tokio::time::timeout(STUCK, more).await.is_err() {
                return false;
            }
        }
    }
}

/// A TCP listener that holds at most `max` connections: accepting waits for a free slot, and
/// each slot is freed when its connection closes.
pub struct CappedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
}

impl CappedListener {
    pub fn new(inner: TcpListener, max: usize) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max.max(1))),
        }
    }
}

/// A connection holding its slot, counting what its socket takes.
pub struct CappedStream {
    inner: TcpStream,
    _slot: OwnedSemaphorePermit,
    written: Written,
}

impl Drop for CappedStream {
    fn drop(&mut self) {
        // Answers still waiting for their last bytes to be taken give up at once.
        self.written.close();
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            this.written.add(*n);
        }
        r
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            this.written.add(*n);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                // The semaphore is never closed; wait rather than spin if it were.
                std::future::pending::<()>().await;
                continue;
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    // Little unsent data in the kernel, so an answer holds its blob slot
                    // until its bytes are nearly on the wire (see `paced`): past the slots,
                    // askers get `503` and go elsewhere instead of queueing seconds behind a
                    // slow uplink. (Linux and Android; elsewhere the kernel's buffer counts.)
                    #[cfg(any(target_os = "linux", target_os = "android"))]
                    let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(UNSENT_LOW);
                    let segment = socket2::SockRef::from(&stream).tcp_mss().unwrap_or(0);
                    return (
                        CappedStream {
                            inner: stream,
                            _slot: slot,
                            written: Written::with_segment(segment),
                        },
                        addr,
                    );
                }
                // Out of file descriptors and the like: back off briefly (as axum does).
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl Connected<axum::serve::IncomingStream<'_, CappedListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, CappedListener>) -> Self {
        PeerAddr(*stream.remote_addr(), stream.io().written.clone())
    }
}

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
        CappedListener::new(listener, max_connections),
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

/// Parses `bytes=S-E` into (first part, part count) for a file of `size`; `Err(status)`.
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
    let content = match held(&node, &root) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let root = content.root();
    learn(&node, root, from, &headers);
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
    let due = due_ms.map(|ms| node.uplink.deadline(ms));
    let Some(permit) = node.answers.try_take(due, due_ms) else {
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
    node.uplink.charge(ANSWER_HEAD);
    let body = paced(node.clone(), bytes, due, permit, written);
    builder
        .body(body)
        .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR, "error\n"))
}

/// The body in steps, each waiting for the upload limit and for the socket to have taken the
/// steps before it; the blob slot is held until the socket has taken the last byte. The HTTP
/// server buffers whatever it is handed, so without the wait every answer would be handed
/// over at once, its slot freed at once, and a thin uplink would queue answers for many
/// seconds: with it, only a few answers are on their way (`crate::answers`), and askers past
/// them get `503` and go elsewhere. Bytes count as uploaded when the socket takes them.
fn paced(node: Arc<Node>, bytes: Bytes, due: Option<i64>, slot: Slot, written: Written) -> Body {
    // What the socket had taken before this answer (earlier answers on the connection are
    // complete: HTTP/1 answers one request at a time, and peers do not pipeline).
    let tail = Tail {
        target: written.total(),
        node,
        written,
        pending: 0,
        slot: Some(slot),
    };
    let stream = futures_util::stream::unfold((bytes, tail), move |(rest, mut tail)| async move {
        if !tail.written.reach(tail.target).await {
            tail.give_up();
            return None;
        }
        tail.count();
        if rest.is_empty() {
            return None;
        }
        // What the socket took in all (the answer's head too, once it went with the first
        // step): where the next step starts on the wire.
        let n = if tail.node.uplink.rate().is_some() {
            paced_step(tail.written.total(), tail.written.0.segment)
        } else {
            BODY_STEP
        };
        let n = rest.len().min(n);
        tail.node.uplink.send(n, due).await;
        tail.target += n as u64;
        tail.pending = n as u64;
        Some((
            Ok::<_, std::io::Error>(rest.slice(..n)),
            (rest.slice(n..), tail),
        ))
    });
    Body::from_stream(stream)
}

/// The next paced step of a connection whose socket has taken `taken` bytes: at least
/// [`PACED_STEP`], ending on a segment's boundary (`segment`, the MSS), so that steps go out
/// as full segments, two or so at a time. A 2 KiB step on a 1,448-byte MSS went out as a
/// full segment and one of 600 bytes: 16 segments a part instead of 12, each with 66 bytes
/// of headers (about 2 % of a saturated uplink). Steps of one segment would cost the asker
/// an acknowledgement per segment (its delayed ACK fires between paced steps) instead of one
/// per two. An unknown or large segment (loopback) leaves the step as it is.
fn paced_step(taken: u64, segment: u32) -> usize {
    let segment = u64::from(segment);
    if segment == 0 || segment > PACED_STEP as u64 {
        return PACED_STEP;
    }
    let want = taken + PACED_STEP as u64;
    (want.div_ceil(segment) * segment - taken) as usize
}

/// An answer's last step, handed to the HTTP server but not yet taken by the socket, and its
/// blob slot. The server stops polling a body once its length is met, so when the body is
/// dropped with a step pending, a task of its own waits for the socket to take it, counts it
/// and frees the slot (at once if the connection closes).
struct Tail {
    node: Arc<Node>,
    written: Written,
    /// What the socket must have taken in all for the handed bytes to be out.
    target: u64,
    /// Bytes handed over and not yet counted as uploaded.
    pending: u64,
    slot: Option<Slot>,
}

impl Tail {
    fn count(&mut self) {
        self.node
            .metrics
            .bytes_uploaded
            .inc_by(std::mem::take(&mut self.pending));
    }

    /// The connection closed or stuck: what is pending never went out.
    fn give_up(&mut self) {
        self.pending = 0;
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        if self.pending == 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (node, written, target) = (self.node.clone(), self.written.clone(), self.target);
        let (pending, slot) = (std::mem::take(&mut self.pending), self.slot.take());
        runtime.spawn(async move {
            if written.reach(target).await {
                node.metrics.bytes_uploaded.inc_by(pending);
            }
            drop(slot);
        });
    }
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
    let content = match held(&node, &root) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let root = content.root();
    learn(&node, root, from, &headers);
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
    node.uplink.charge(ANSWER_HEAD + bits.as_bytes().len());
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
            node.uplink.charge(RECORD_HEAD + 8 + bits.as_bytes().len());
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::node::NodeConfig;
    use alluvium_content::Outboard;
    use tower::ServiceExt;

    #[tokio::test]
    async fn an_ask_due_sooner_is_answered_while_the_slots_are_busy() {
        let node = Node::new(NodeConfig {
            max_blob_answers: 1,
            ..NodeConfig::default()
        });
        let data = Bytes::from(vec![7u8; 2 * PART_SIZE as usize]);
        let tree = Outboard::compute(&data[..], data.len() as u64, |_| {}).unwrap();
        let content = node.store.open(tree);
        content.insert(0, &data).unwrap();
        let root = content.root();
        let ask = |due: Option<&str>| {
            let mut r = axum::http::Request::get(format!("/v1/blob/{root}"))
                .header(header::RANGE, "bytes=0-16383");
            if let Some(due) = due {
                r = r.header(DUE_HEADER, due);
            }
            let mut r = r.body(Body::empty()).unwrap();
            let from = PeerAddr("127.0.0.9:7001".parse().unwrap(), Written::default());
            r.extensions_mut().insert(ConnectInfo(from));
            router(node.clone()).oneshot(r)
        };
        // The one blob slot is taken by an answer due in 10 s.
        let deadline = node.uplink.deadline(10_000);
        let _busy = node.answers.try_take(Some(deadline), Some(10_000)).unwrap();
        assert_eq!(
            ask(None).await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            ask(Some("20000")).await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "due after the answer in flight"
        );
        assert_eq!(
            ask(Some("junk")).await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let sooner = ask(Some("5000")).await.unwrap();
        assert_eq!(sooner.status(), StatusCode::PARTIAL_CONTENT, "due in 5 s");
        assert_eq!(
            ask(Some("8000")).await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "the answer due in 5 s goes first"
        );
        let urgent = ask(Some("800")).await.unwrap();
        assert_eq!(urgent.status(), StatusCode::PARTIAL_CONTENT, "due in 0.8 s");
        // An answer holds its place until it is on the wire: three is the most.
        assert_eq!(
            ask(Some("-300")).await.unwrap().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        drop(urgent);
        assert_eq!(
            ask(Some("-300")).await.unwrap().status(),
            StatusCode::PARTIAL_CONTENT,
            "overdue is urgent too"
        );
    }

    /// A node whose long polls last 1.5 s, holding part 0 of content of `parts` parts, and
    /// a way to take part `p` of it.
    fn news_fixture(parts: usize) -> (Arc<Node>, Arc<Content>, impl Fn(usize) -> Bytes) {
        let node = Node::new(NodeConfig {
            long_poll: Duration::from_millis(1_500),
            ..NodeConfig::default()
        });
        let data = Bytes::from(vec![5u8; parts * PART_SIZE as usize]);
        let tree = Outboard::compute(&data[..], data.len() as u64, |_| {}).unwrap();
        let content = node.store.open(tree);
        let part = move |p: usize| data.slice(p * PART_SIZE as usize..(p + 1) * PART_SIZE as usize);
        content.insert(0, &part(0)).unwrap();
        (node, content, part)
    }

    /// `GET /v1/blob/{root}/have?{query}` of `node`, from a peer at 127.0.0.9.
    async fn ask_have(node: &Arc<Node>, root: Hash, query: &str) -> Response {
        let mut r = axum::http::Request::get(format!("/v1/blob/{root}/have?{query}"))
            .body(Body::empty())
            .unwrap();
        let from = PeerAddr("127.0.0.9:7001".parse().unwrap(), Written::default());
        r.extensions_mut().insert(ConnectInfo(from));
        router(node.clone()).oneshot(r).await.unwrap()
    }

    #[tokio::test]
    async fn a_long_poll_answers_only_news_the_asker_can_use() {
        let (node, content, part) = news_fixture(3);
        let root = content.root();
        let poll = |query: &str| {
            let (node, query) = (node.clone(), query.to_string());
            async move { ask_have(&node, root, &query).await }
        };
        // The asker holds part 1 and knows part 0 is here: "c0" is parts 0 and 1.
        let waiting = tokio::spawn(poll("after=1&known=c0"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        content.insert(1, &part(1)).unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(!waiting.is_finished(), "part 1 is no news to it");
        content.insert(2, &part(2)).unwrap();
        let answer = waiting.await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "part 2 is");
        let body = axum::body::to_bytes(answer.into_body(), 16).await.unwrap();
        assert_eq!(&body[..], &[0b1110_0000]);
        // Knowing everything here: nothing until the poll ends.
        let r = poll("after=2&known=e0").await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        // A `known` that does not parse is left out: any new part is news, as before.
        let r = poll("after=2&known=zz").await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_have_stream_sends_a_record_per_piece_of_news_the_asker_can_use() {
        use futures_util::StreamExt;
        let (node, content, part) = news_fixture(4);
        let root = content.root();
        let record = |version: u64, bits: u8| {
            let mut r = version.to_be_bytes().to_vec();
            r.push(bits);
            r
        };
        // Records may come split or together: read exactly one.
        async fn next(body: &mut axum::body::BodyDataStream, buf: &mut Vec<u8>) -> Vec<u8> {
            while buf.len() < 9 {
                buf.extend_from_slice(&body.next().await.unwrap().unwrap());
            }
            buf.drain(..9).collect()
        }
        let answer = ask_have(&node, root, "stream=1").await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers()[header::CONTENT_TYPE], HAVE_STREAM_TYPE);
        let mut body = answer.into_body().into_data_stream();
        let mut buf = Vec::new();
        // What is held now comes at once.
        let version = || content.have().1;
        assert_eq!(
            next(&mut body, &mut buf).await,
            record(version(), 0b1000_0000)
        );
        content.insert(1, &part(1)).unwrap();
        let v = version();
        assert_eq!(next(&mut body, &mut buf).await, record(v, 0b1100_0000));

        // Reopened after that, the asker holding part 2 itself ("e0": parts 0-2).
        let answer = ask_have(&node, root, &format!("stream=1&after={v}&known=e0")).await;
        let mut body = answer.into_body().into_data_stream();
        let mut buf = Vec::new();
        let first = tokio::spawn(async move {
            let r = next(&mut body, &mut buf).await;
            (r, body, buf)
        });
        content.insert(2, &part(2)).unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(!first.is_finished(), "part 2 is no news to it");
        content.insert(3, &part(3)).unwrap();
        let (r, mut body, mut buf) = first.await.unwrap();
        let v = version();
        assert_eq!(r, record(v, 0b1111_0000), "part 3 is");
        // No news for a long poll's time: the last record again, so the asker knows the
        // peer is there.
        let started = tokio::time::Instant::now();
        assert_eq!(next(&mut body, &mut buf).await, record(v, 0b1111_0000));
        assert!(started.elapsed() >= Duration::from_millis(1_400));
        // A stopping node ends its streams.
        node.stopping.cancel();
        assert!(body.next().await.is_none());
    }

    #[test]
    fn paced_steps_end_on_segment_boundaries() {
        // 1,448-byte segments (Ethernet with TCP timestamps): from a 300-byte head on, each
        // step ends on a boundary, at least 2 KiB and less than a segment more; once on a
        // boundary, two segments at a time.
        let mut taken = 300u64;
        for k in 0..20 {
            let n = paced_step(taken, 1_448);
            assert!((PACED_STEP..PACED_STEP + 1_448).contains(&n), "{n}");
            if k > 0 {
                assert_eq!(n, 2 * 1_448);
            }
            taken += n as u64;
            assert_eq!(taken % 1_448, 0);
        }
        assert_eq!(paced_step(0, 0), PACED_STEP);
        assert_eq!(paced_step(777, 65_483), PACED_STEP);
    }

    #[test]
    fn ranges() {
        let size = 3 * PART_SIZE + 100;
        assert_eq!(parse_range("bytes=0-16383", size), Ok((0, 1)));
        assert_eq!(parse_range("bytes=16384-", size), Ok((1, 3)));
        assert_eq!(
            parse_range(&format!("bytes=49152-{}", size - 1), size),
            Ok((3, 1))
        );
        assert_eq!(
            parse_range("bytes=0-100", size),
            Err(StatusCode::RANGE_NOT_SATISFIABLE)
        );
        assert_eq!(
            parse_range("bytes=1-16383", size),
            Err(StatusCode::RANGE_NOT_SATISFIABLE)
        );
        assert_eq!(
            parse_range("bytes=0-999999", size),
            Err(StatusCode::RANGE_NOT_SATISFIABLE)
        );
        assert_eq!(
            parse_range("bytes=0-1,5-6", size),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(parse_range("items=0-1", size), Err(StatusCode::BAD_REQUEST));
        assert_eq!(parse_range("bytes=x-y", size), Err(StatusCode::BAD_REQUEST));
        assert_eq!(
            parse_range("bytes=-500", size),
            Err(StatusCode::BAD_REQUEST)
        );
    }
}
