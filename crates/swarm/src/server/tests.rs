//! Tests of the peer server through its router, without a socket.

#![allow(clippy::unwrap_used)]
use super::paced::{paced_step, PACED_STEP};
use super::*;
use crate::node::NodeConfig;
use alluvium_content::Outboard;
use tower::ServiceExt;

/// A node taking one blob answer at a time (past asks due sooner), holding both parts of a
/// content.
fn busy_node_holding_two_parts() -> (Arc<Node>, Hash) {
    let node = Node::new(NodeConfig {
        max_blob_answers: 1,
        ..NodeConfig::default()
    });
    let data = Bytes::from(vec![7u8; 2 * PART_SIZE as usize]);
    let tree = Outboard::compute(&data[..], data.len() as u64, |_| {}).unwrap();
    let content = node.store.open(tree);
    content.insert(0, &data).unwrap();
    let root = content.root();
    (node, root)
}

#[tokio::test]
async fn an_ask_due_sooner_is_answered_while_the_slots_are_busy() {
    let (node, root) = busy_node_holding_two_parts();
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
    let _busy = node
        .answers
        .try_take(Some(deadline), Some(10_000), 0, None)
        .unwrap();
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

#[tokio::test]
async fn an_ask_of_the_swarm_s_only_copy_is_taken_past_busy_slots_until_it_went_out() {
    let (node, root) = busy_node_holding_two_parts();
    // One connection: what its socket takes is counted as the test reads.
    let written = Written::default();
    let ask = |part: u64| {
        let start = part * PART_SIZE;
        let r = axum::http::Request::get(format!("/v1/blob/{root}"))
            .header(
                header::RANGE,
                format!("bytes={start}-{}", start + PART_SIZE - 1),
            )
            .header(DUE_HEADER, "20000");
        let mut r = r.body(Body::empty()).unwrap();
        let from = PeerAddr("127.0.0.9:7001".parse().unwrap(), written.clone());
        r.extensions_mut().insert(ConnectInfo(from));
        router(node.clone()).oneshot(r)
    };
    // Part 1 came from the origin; part 0 from a peer. Three answers due sooner fill the
    // slots (the cap, and two that jumped it).
    node.took_from_origin(root, 1, 1);
    let busy: Vec<_> = [1_000, 900, 800]
        .map(|due| {
            node.answers
                .try_take(Some(node.uplink.deadline(due)), Some(due), 0, None)
        })
        .into_iter()
        .collect();
    assert!(busy.iter().all(Option::is_some));
    assert_eq!(
        ask(0).await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let only = ask(1).await.unwrap();
    assert_eq!(only.status(), StatusCode::PARTIAL_CONTENT, "the only copy");
    // Its asker gave up before a byte went: still the swarm's only copy.
    drop(only);
    let only = ask(1).await.unwrap();
    assert_eq!(
        only.status(),
        StatusCode::PARTIAL_CONTENT,
        "still the only copy"
    );
    // Once the socket took all of it, it is a part like any other.
    let mut body = only.into_body().into_data_stream();
    let mut got = 0;
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        let chunk = chunk.unwrap();
        got += chunk.len();
        written.add(chunk.len());
    }
    assert_eq!(got as u64, PART_SIZE);
    assert_eq!(
        ask(1).await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
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

#[tokio::test]
async fn auto_pacing_follows_what_askers_over_the_link_report_and_says_its_pace() {
    let node = Node::new(NodeConfig {
        upload_limit: crate::UploadLimit::Auto,
        ..NodeConfig::default()
    });
    node.offer_bitrate(16_000); // 128 kbit/s: paced at 25,600 B/s to begin with
    let data = Bytes::from(vec![3u8; PART_SIZE as usize]);
    let tree = Outboard::compute(&data[..], data.len() as u64, |_| {}).unwrap();
    let content = node.store.open(tree);
    content.insert(0, &data).unwrap();
    let root = content.root();
    let ask = |from: &str, delivered: &str| {
        let mut r = axum::http::Request::get(format!("/v1/blob/{root}"))
            .header(header::RANGE, "bytes=0-16383")
            .header(DELIVERED_HEADER, delivered)
            .body(Body::empty())
            .unwrap();
        let from = PeerAddr(from.parse().unwrap(), Written::default());
        r.extensions_mut().insert(ConnectInfo(from));
        router(node.clone()).oneshot(r)
    };
    let paced = |r: &Response| {
        r.headers()
            .get(PACED_HEADER)
            .map(|v| v.to_str().unwrap().to_string())
    };
    // An asker across the link got its last answer at the pace: the link carries more.
    let r = ask("192.0.2.7:7001", "14000 546875 25600").await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(node.uplink.rate(), Some(32_000));
    assert_eq!(paced(&r).as_deref(), Some("32000"));
    // Reports that do not parse, and from askers on this machine (not paced), change nothing.
    for (from, report) in [
        ("192.0.2.7:7001", "fast"),
        ("192.0.2.7:7001", "1 2"),
        ("127.0.0.9:7001", "14000 437500 32000"),
    ] {
        let r = ask(from, report).await.unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(node.uplink.rate(), Some(32_000), "{from} {report}");
        if from.starts_with("127.") {
            assert_eq!(paced(&r), None, "not paced to this machine");
        }
    }
}
