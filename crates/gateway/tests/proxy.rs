//! The gateway reaches origins directly whatever proxy its environment names: a proxy would
//! connect where the address policy cannot look. A test binary of its own, because it sets
//! `HTTP_PROXY` for the whole process.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alluvium_gateway::{Config, Gateway, Store};
use tokio_util::sync::CancellationToken;

/// A listener that counts the connections it gets and closes them.
fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (port, count)
}

/// An origin serving the same 1,000 bytes for any request.
fn origin() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap_or(0);
            let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n";
            let _ = conn.write_all(head);
            if !buf[..n].starts_with(b"HEAD") {
                let _ = conn.write_all(&[7u8; 1000]);
            }
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_are_fetched_directly_whatever_http_proxy_says() {
    let (proxy, proxied) = counting_listener();
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        std::env::set_var(var, format!("http://127.0.0.1:{proxy}"));
    }
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    let origin = origin();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("g.sqlite")).unwrap();
    let cancel = CancellationToken::new();
    let config = Config {
        allow_private: true,
        rate_limit: 0,
        ..Config::default()
    };
    let gw = Gateway::new(config, store, cancel.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = cancel.clone();
    tokio::spawn(async move { gw.serve(listener, stop).await });

    // The test's own client goes to the gateway directly too.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let answer = client
        .get(format!("{url}/v1/content"))
        .query(&[("url", format!("http://127.0.0.1:{origin}/a.mp3"))])
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body = answer.text().await.unwrap();
    cancel.cancel();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        proxied.load(Ordering::SeqCst),
        0,
        "the fetch went through the proxy"
    );
}
