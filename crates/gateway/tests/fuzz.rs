//! Fuzzing announce bodies through the gateway's router (no socket): on stable Rust, inside
//! `cargo test`, a bounded number of cases. Arbitrary bytes and mutated good bodies get a
//! `200` or a `4xx`, never a `5xx` or a panic, and only a well-formed body is recorded.
//! A failure found once stays below as a named case.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use alluvium_gateway::wire::AnnounceResponse;
use alluvium_gateway::{Config, Gateway, Store};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const CASES: u32 = 256;

const GOOD: &str = r#"{"blake3":"9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c9f2c","port":7001,"peer_id":"al-1","have":"partial","event":"started"}"#;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    gateway: Gateway,
    _dir: tempfile::TempDir,
    _cancel: tokio_util::sync::DropGuard,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("g.sqlite")).unwrap();
    let cancel = CancellationToken::new();
    let config = Config {
        rate_limit: 0,
        ..Config::default()
    };
    let gateway = runtime.block_on(async { Gateway::new(config, store, cancel.clone()).unwrap() });
    Fixture {
        runtime,
        gateway,
        _dir: dir,
        _cancel: cancel.drop_guard(),
    }
}

/// Posts `body` as an announce from 127.0.0.9; the status and body of the answer.
fn announce(f: &Fixture, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    f.runtime.block_on(async {
        let mut request = Request::post("/v1/announce")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let from: SocketAddr = "127.0.0.9:50000".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(from));
        let answer = f.gateway.router().oneshot(request).await.unwrap();
        let status = answer.status();
        let body = axum::body::to_bytes(answer.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, body.to_vec())
    })
}

fn check(f: &Fixture, body: Vec<u8>) -> Result<(), TestCaseError> {
    let (status, answer) = announce(f, body);
    prop_assert!(
        status == StatusCode::OK || status.is_client_error(),
        "{status}: {}",
        String::from_utf8_lossy(&answer)
    );
    if status == StatusCode::OK {
        prop_assert!(serde_json::from_slice::<AnnounceResponse>(&answer).is_ok());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn arbitrary_bodies_get_an_answer(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let f = fixture();
        check(&f, body)?;
    }

    #[test]
    fn mutated_good_bodies_get_an_answer(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let f = fixture();
        let mut body = GOOD.as_bytes().to_vec();
        for (at, byte) in edits {
            let at = at % body.len();
            body[at] = byte;
        }
        body.truncate(body.len() - cut % body.len());
        check(&f, body)?;
    }

    #[test]
    fn any_field_values_get_an_answer(
        root in "[0-9a-fA-Fz]{0,70}",
        port in any::<i64>(),
        peer_id in ".{0,80}",
        have in "(none|partial|complete|all|)",
        event in "(started|update|stopped|completed|)",
    ) {
        let f = fixture();
        let body = serde_json::json!({
            "blake3": root, "port": port, "peer_id": peer_id, "have": have, "event": event,
        });
        check(&f, serde_json::to_vec(&body).unwrap())?;
    }
}

#[test]
fn a_good_body_is_recorded() {
    let f = fixture();
    let (status, answer) = announce(&f, GOOD.as_bytes().to_vec());
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer)
    );
}
