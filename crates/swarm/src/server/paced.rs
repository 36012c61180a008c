//! An answer's body, handed to its connection in steps paced by the uplink.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;

use alluvium_content::Hash;

use crate::answers::Slot;
use crate::node::Node;

use super::listener::Written;

/// Steps in which an answer's body is handed to the connection.
const BODY_STEP: usize = 8 * 1024;
/// Steps when the uplink paces (`--upload-limit`): small, so the soonest-due answer takes
/// the link within a few milliseconds.
pub(super) const PACED_STEP: usize = 2 * 1024;
/// About what an answer's status line and headers take on the wire, counted against the
/// upload rate besides bodies.
pub(super) const ANSWER_HEAD: usize = 200;

/// Parts this node alone held that an answer carries: sent on once its last byte went out.
pub(super) struct OnlyCopy {
    pub(super) root: Hash,
    pub(super) first: u32,
    pub(super) count: u32,
}

/// The body in steps, each waiting for the upload limit (`due`: `Some` with when the asker
/// plays it, if known; `None` for an answer that does not cross the uplink, such as one to
/// this machine) and for the socket to have taken the steps before it; the blob slot is held
/// until the socket has taken the last byte. The HTTP server buffers whatever it is handed,
/// so without the wait every answer would be handed over at once, its slot freed at once, and
/// a thin uplink would queue answers for many seconds: with it, only a few answers are on
/// their way (`crate::answers`), and askers past them get `503` and go elsewhere. Bytes count
/// as uploaded when the socket takes them.
pub(super) fn paced(
    node: Arc<Node>,
    bytes: Bytes,
    due: Option<Option<i64>>,
    slot: Slot,
    written: Written,
    only_copy: Option<OnlyCopy>,
) -> Body {
    // What the socket had taken before this answer (earlier answers on the connection are
    // complete: HTTP/1 answers one request at a time, and peers do not pipeline).
    let tail = Tail {
        target: written.total(),
        node,
        written,
        pending: 0,
        slot: Some(slot),
        left: bytes.len() as u64,
        only_copy,
    };
    let stream = futures_util::stream::unfold((bytes, tail), move |(rest, mut tail)| async move {
        if !tail.written.reach(tail.target).await {
            tail.give_up();
            return None;
        }
        tail.count();
        if rest.is_empty() {
            tail.went_out();
            return None;
        }
        // What the socket took in all (the answer's head too, once it went with the first
        // step): where the next step starts on the wire.
        let n = match due {
            Some(_) if tail.node.uplink.rate().is_some() => {
                paced_step(tail.written.total(), tail.written.segment())
            }
            _ => BODY_STEP,
        };
        let n = rest.len().min(n);
        if let Some(due) = due {
            tail.node.uplink.send(n, due).await;
        }
        tail.target += n as u64;
        tail.pending = n as u64;
        tail.left -= n as u64;
        if let Some(slot) = &tail.slot {
            slot.sent(n as u64);
        }
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
pub(super) fn paced_step(taken: u64, segment: u32) -> usize {
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
pub(super) struct Tail {
    node: Arc<Node>,
    written: Written,
    /// What the socket must have taken in all for the handed bytes to be out.
    target: u64,
    /// Bytes handed over and not yet counted as uploaded.
    pending: u64,
    slot: Option<Slot>,
    /// Body bytes not yet handed over.
    left: u64,
    only_copy: Option<OnlyCopy>,
}

impl Tail {
    /// The socket took the whole body: the parts it carries are held elsewhere now.
    fn went_out(&mut self) {
        if let Some(o) = self.only_copy.take() {
            self.node.sent_on(&o.root, o.first, o.count);
        }
    }

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
        let only_copy = self.only_copy.take().filter(|_| self.left == 0);
        runtime.spawn(async move {
            if written.reach(target).await {
                node.metrics.bytes_uploaded.inc_by(pending);
                if let Some(o) = only_copy {
                    node.sent_on(&o.root, o.first, o.count);
                }
            }
            drop(slot);
        });
    }
}
