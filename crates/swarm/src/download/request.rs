//! One request for a run of parts, to a peer or to the origin, and how its body is kept.

use std::sync::Arc;
use std::time::Duration;

use alluvium_content::PART_SIZE;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::origin::from_origin;
use super::peer::from_peer;
use super::Event;
use crate::node::Node;
use crate::picker::{Failure, Request, Source};
use crate::store::{Content, StoreError};

/// A transfer from which nothing arrives for this long is given up, keeping the whole parts
/// that did arrive. A thin uplink shared by many TCP flows drops packets, and a flow that
/// loses its retransmissions too waits seconds, doubling, before it tries again: asking
/// anew beats waiting for it (the block's parts are then still spread in time).
pub(super) const IDLE_LIMIT: Duration = Duration::from_secs(4);

/// How long an answer may send nothing before it is given up, until `due_in_ms` from the ask:
/// a peer sends the answers due soonest first, so one due later may wait behind others
/// until about then; given up sooner, it held a place at the sender for nothing and lost its
/// turn (and a part the sender alone held stayed unspread). After that, [`IDLE_LIMIT`].
pub(super) fn patience(due_in_ms: Option<i64>) -> Duration {
    due_in_ms.map_or(Duration::ZERO, |ms| {
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    })
}

pub(super) fn spawn_request(
    node: &Arc<Node>,
    content: &Arc<Content>,
    origin: &url::Url,
    if_range: Option<String>,
    request: Request,
    tx: mpsc::Sender<Event>,
    scope: &CancellationToken,
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
    alluvium_task::spawn(
        "request",
        scope,
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

pub(super) fn range_of(content: &Content, request: &Request) -> (u64, u64) {
    crate::proto::part_bytes(request.first, request.count, content.size())
}

/// The report of a request whose first `count` parts (`bytes` bytes) were verified and kept.
pub(super) fn done(request: &Request, count: u32, bytes: u64) -> Event {
    Event::Done {
        id: request.id,
        first: request.first,
        count,
        bytes,
        source: request.source,
    }
}

/// The report of a request that failed.
pub(super) fn failed(request: &Request, failure: Failure) -> Event {
    Event::Failed {
        id: request.id,
        failure,
    }
}

/// What came of a body of parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Received {
    /// The first `count` parts, `bytes` bytes, verified and kept. `flow`: for a whole body
    /// in more than one chunk, the bytes after the first chunk and how long they took (how
    /// fast the sender's link delivered, told back to it: [`crate::link`]).
    Kept {
        count: u32,
        bytes: u64,
        flow: Option<(u64, Duration)>,
    },
    /// Longer than asked.
    Broken,
    /// Not one whole part came: why the body ended.
    Nothing(Ended),
    /// `part` failed verification. The parts before it that came in earlier chunks were kept
    /// (those in its own chunk were not: a chunk's parts are verified together); the picker,
    /// told only of the failure, asks for them again, and the store takes a part it holds as
    /// a no-op.
    Invalid { part: u32 },
    /// The store could not keep a part (the store logs why).
    Failed,
}

/// Why a body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// Whole.
    Whole,
    /// Short of its length: the sender closed it.
    Short,
    /// Nothing came for [`IDLE_LIMIT`], past the answer's [`patience`].
    Stalled,
    /// The connection broke.
    Cut,
}

impl Received {
    /// The failure a body that kept nothing is, for the picker.
    pub(super) fn failure(self) -> Option<Failure> {
        match self {
            Received::Kept { .. } => None,
            Received::Invalid { .. } => Some(Failure::BadData),
            Received::Nothing(Ended::Stalled) => Some(Failure::TimedOut),
            Received::Broken | Received::Nothing(_) => Some(Failure::Broken),
            Received::Failed => Some(Failure::Local),
        }
    }
}

/// Reads a body of `len` bytes holding the parts from `first`, and keeps each part
/// (verified) as soon as it is whole: the first part of a run plays, and is offered to
/// peers, while the rest is on its way. Before, a run was kept when all of it had come: a
/// first listener's opening three parts from the origin were held back until the third,
/// 2.7 s after the ask. If the body breaks off or stalls (see [`Ended::Stalled`]), the
/// whole parts that came are what is kept (the last part of a file may be short, and is
/// whole when the body is). Until `patient` from now, any wait is no stall (see
/// [`patience`]).
pub(super) async fn receive(
    response: reqwest::Response,
    len: u64,
    content: &Content,
    first: u32,
    patient: Duration,
) -> Received {
    let patient_until = tokio::time::Instant::now() + patient;
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
    // When the first chunk came and its length; when the last came.
    let mut first_chunk: Option<(tokio::time::Instant, u64)> = None;
    let mut last_chunk = None;
    let ended = loop {
        let wait =
            IDLE_LIMIT.max(patient_until.saturating_duration_since(tokio::time::Instant::now()));
        let chunk = match tokio::time::timeout(wait, stream.next()).await {
            Err(_) => break Ended::Stalled,
            Ok(None) if came == len => break Ended::Whole,
            Ok(None) => break Ended::Short,
            Ok(Some(Err(_))) => break Ended::Cut,
            Ok(Some(Ok(chunk))) => chunk,
        };
        let now = tokio::time::Instant::now();
        first_chunk.get_or_insert((now, chunk.len() as u64));
        last_chunk = Some(now);
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
    };
    if came == len && !pending.is_empty() {
        let last = pending.len() as u64;
        if let Some(bad) = keep(pending, kept) {
            return bad;
        }
        kept += last;
    }
    if kept == 0 {
        return Received::Nothing(ended);
    }
    let flow = match (ended, first_chunk, last_chunk) {
        (Ended::Whole, Some((t0, first)), Some(t1)) if t1 > t0 => Some((came - first, t1 - t0)),
        _ => None,
    };
    Received::Kept {
        count: kept.div_ceil(PART_SIZE) as u32,
        bytes: kept,
        flow,
    }
}

/// Reads a refusal's short body so that its connection goes back to the pool: a response
/// dropped unread closes its connection, and the next ask of that peer opens a new one (a
/// handshake and a close, about half a kilobyte across two thin uplinks, and a fresh slow
/// start).
pub(super) async fn drain(response: reqwest::Response) {
    if response.content_length().is_some_and(|n| n <= 1_024) {
        let _ = tokio::time::timeout(Duration::from_millis(500), response.bytes()).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
        let tree =
            alluvium_content::Outboard::compute(&data[..], data.len() as u64, |_| {}).unwrap();
        let store = crate::store::Store::new(None, 1 << 30, 1 << 20);
        let part = PART_SIZE as usize;

        // Parts 1-3 asked; parts 1 and 2 come in odd pieces, then the body waits.
        let content = store.open(tree.clone());
        let (tx, rx) = mpsc::channel(8);
        let reading = tokio::spawn({
            let content = content.clone();
            async move { receive(streamed(rx), 3 * PART_SIZE, &content, 1, Duration::ZERO).await }
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
        let got = receive(streamed(rx), len, &content, 5, Duration::ZERO).await;
        assert!(matches!(got, Received::Kept { count: 2, bytes, .. } if bytes == len));
        let (tx, rx) = mpsc::channel(8);
        tx.send(data[..part + 1].to_vec()).await.unwrap();
        drop(tx);
        let got = receive(streamed(rx), PART_SIZE, &content, 0, Duration::ZERO).await;
        assert!(matches!(got, Received::Broken));

        // A body that breaks off keeps its whole parts.
        let (tx, rx) = mpsc::channel(8);
        tx.send(data[..part + 5].to_vec()).await.unwrap();
        drop(tx);
        let got = receive(streamed(rx), 2 * PART_SIZE, &content, 0, Duration::ZERO).await;
        assert!(matches!(got, Received::Kept { count: 1, bytes, .. } if bytes == PART_SIZE));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_due_later_may_wait_until_about_then_behind_sooner_ones() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i * 3 % 253) as u8).collect();
        let tree =
            alluvium_content::Outboard::compute(&data[..], data.len() as u64, |_| {}).unwrap();
        let store = crate::store::Store::new(None, 1 << 30, 1 << 20);
        let content = store.open(tree);
        let part = PART_SIZE as usize;
        // Receives part `first` asked with `patient`, its body sent as `chunks`, each after
        // `gap_s` seconds of nothing.
        let receive_after = |chunks: Vec<Vec<u8>>, gap_s: u64, first: u32, patient: Duration| {
            let (tx, rx) = mpsc::channel(8);
            tokio::spawn(async move {
                for c in chunks {
                    tokio::time::sleep(Duration::from_secs(gap_s)).await;
                    if tx.send(c).await.is_err() {
                        return;
                    }
                }
            });
            receive(streamed(rx), PART_SIZE, &content, first, patient)
        };
        let whole = |n: usize| vec![data[n * part..(n + 1) * part].to_vec()];
        let halves = |n: usize| {
            let (a, b) = (n * part, (n + 1) * part);
            vec![data[a..a + 100].to_vec(), data[a + 100..b].to_vec()]
        };

        // Due in 20 s: its bytes may pause 15 s, behind answers due sooner.
        let later = patience(Some(20_000));
        let got = receive_after(whole(0), 15, 0, later).await;
        assert!(matches!(got, Received::Kept { count: 1, .. }), "{got:?}");
        let got = receive_after(halves(1), 9, 1, later).await;
        assert!(matches!(got, Received::Kept { count: 1, .. }), "{got:?}");
        // Past its moment, the idle limit: nothing for 5 s after 17 s is a stall.
        let slow = vec![data[part..part + 100].to_vec(); 2];
        let got = receive_after(slow, 17, 1, later).await;
        assert_eq!(got, Received::Nothing(Ended::Stalled));
        // Due now (a joiner's first seconds), or with no moment: the idle limit.
        for due in [Some(0), Some(-3_000), None] {
            assert_eq!(patience(due), Duration::ZERO);
        }
        let got = receive_after(whole(1), 5, 1, patience(Some(0))).await;
        assert_eq!(got, Received::Nothing(Ended::Stalled));
    }

    /// A body of parts as chunks cut at `cuts` (cycled), then the end of the body.
    fn chunked(body: &[u8], cuts: &[usize]) -> reqwest::Response {
        let mut chunks = Vec::new();
        let mut at = 0;
        for cut in cuts.iter().cycle() {
            if at >= body.len() {
                break;
            }
            let next = (at + cut).min(body.len());
            chunks.push(Ok::<_, std::io::Error>(Bytes::copy_from_slice(
                &body[at..next],
            )));
            at = next;
        }
        let stream = futures_util::stream::iter(chunks);
        axum::http::Response::new(reqwest::Body::wrap_stream(stream)).into()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

        /// A peer's answer, cut into any chunks, maybe corrupt, short or too long: only whole,
        /// verified parts are kept, and the answer says what came of it.
        #[test]
        fn any_answer_keeps_only_verified_whole_parts(
            cuts in proptest::collection::vec(1usize..40_000, 1..12),
            corrupt in proptest::option::of(0usize..100_000),
            end in 0usize..100_010,
        ) {
            let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
            let tree =
                alluvium_content::Outboard::compute(&data[..], data.len() as u64, |_| {}).unwrap();
            let store = crate::store::Store::new(None, 1 << 30, 1 << 20);
            let content = store.open(tree);
            let mut body = data.clone();
            if let Some(at) = corrupt {
                body[at] ^= 0x55;
            }
            body.resize(end, 0xEE);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let got = runtime
                .block_on(receive(chunked(&body, &cuts), data.len() as u64, &content, 0, Duration::ZERO));

            let part = PART_SIZE as usize;
            // Parts whole in what came, and the first corrupt one.
            let whole = if end >= data.len() { 7 } else { end / part };
            let bad = corrupt.map(|at| at / part).filter(|&b| b < whole);
            let (have, _) = content.have();
            for p in have.iter() {
                let range = p as usize * part..((p as usize + 1) * part).min(data.len());
                proptest::prop_assert!(
                    corrupt.is_none_or(|at| !range.contains(&at)),
                    "kept corrupt part {}", p
                );
                proptest::prop_assert_eq!(&content.read(p, 1).unwrap()[..], &data[range]);
            }
            if end > data.len() {
                // Too long: refused, unless a corrupt part before the excess stopped it.
                let invalid = bad.map(|b| Received::Invalid { part: b as u32 });
                proptest::prop_assert!(got == Received::Broken || Some(got) == invalid, "{:?}", got);
            } else if let Some(b) = bad {
                proptest::prop_assert_eq!(got, Received::Invalid { part: b as u32 });
                proptest::prop_assert!(have.count() <= b as u32);
            } else if whole == 0 {
                proptest::prop_assert!(matches!(got, Received::Nothing(_)), "{:?}", got);
            } else {
                let bytes = if whole == 7 { data.len() as u64 } else { (whole * part) as u64 };
                proptest::prop_assert!(
                    matches!(got, Received::Kept { count, bytes: b, .. } if count == whole as u32 && b == bytes),
                    "{:?}", got
                );
            }
        }
    }

    /// Found by `any_answer_keeps_only_verified_whole_parts`: parts 0 and 1 whole in one chunk,
    /// part 1 corrupt. Neither is kept, and the answer names part 1.
    #[test]
    fn a_chunk_with_a_good_and_a_bad_part_keeps_neither() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let tree =
            alluvium_content::Outboard::compute(&data[..], data.len() as u64, |_| {}).unwrap();
        let content = crate::store::Store::new(None, 1 << 30, 1 << 20).open(tree);
        let mut body = data[..32_768].to_vec();
        body[16_384] ^= 0x55;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = runtime.block_on(receive(
            chunked(&body, &[1, 32_767]),
            data.len() as u64,
            &content,
            0,
            Duration::ZERO,
        ));
        assert_eq!(got, Received::Invalid { part: 1 });
        assert_eq!(content.have().0.count(), 0);
    }
}
