//! The gateway in-process against a real nginx origin on loopback: roots equal to `b3sum`, one
//! origin GET however many ask, changed files hashed again, every failure named, the tracker.
//! Needs nginx and b3sum (`./test.sh` installs them); never skips.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use alluvium_gateway::wire::{AnnounceResponse, ErrorBody, Pending};
use alluvium_gateway::{Client, ClientError, Config, ContentInfo, Gateway, Store};
mod common;

use alluvium_testkit::{b3sum, bytes_of, free_port, public_dir, write_public, Nginx};
use tokio_util::sync::CancellationToken;

/// A gateway serving on a loopback port, stopped on drop.
struct Running {
    url: String,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn gateway(config: Config) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("gateway.sqlite")).unwrap();
    let cancel = CancellationToken::new();
    let gw = Gateway::new(config, store, cancel.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let c = cancel.clone();
    tokio::spawn(async move { gw.serve(listener, c).await });
    Running {
        url,
        cancel,
        _dir: dir,
    }
}

fn local() -> Config {
    Config {
        allow_private: true,
        rate_limit: 0,
        ..Config::default()
    }
}

/// `size` bytes that do not compress or repeat, where nginx can read them.
fn write_file(path: &Path, size: usize, seed: &str) {
    write_public(path, &bytes_of(size, seed));
}

fn www() -> tempfile::TempDir {
    public_dir()
}

async fn ask(gw: &str, url: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .get(format!("{gw}/v1/content"))
        .query(&[("url", url)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fetch_for_many_asks_and_the_root_b3sum_gives() {
    let www = www();
    write_file(&www.path().join("big.bin"), 50 << 20, "big");
    let nginx = Nginx::start(www.path(), "");
    let gw = gateway(local()).await;
    let url = format!("{}/big.bin", nginx.url());

    let asks = (0..20).map(|_| {
        let (gw, url) = (gw.url.clone(), url.clone());
        tokio::spawn(async move {
            Client::new(&gw)
                .unwrap()
                .resolve(&url, Duration::from_secs(120), |_| {})
                .await
                .unwrap()
        })
    });
    let infos: Vec<ContentInfo> = futures_util::future::join_all(asks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let root = b3sum(&www.path().join("big.bin"));
    for info in &infos {
        assert_eq!(info.blake3.to_hex(), root);
        assert_eq!(info.size, 50 << 20);
        assert_eq!(info.chunk_size, 16384);
        assert!(info.etag.is_some());
    }
    assert_eq!(nginx.gets("/big.bin"), 1, "{:?}", nginx.access_log());

    // The tree verifies against the root (the client checks it), part by part.
    let client = Client::new(&gw.url).unwrap();
    let tree = client.outboard(&infos[0]).await.unwrap();
    let data = std::fs::read(www.path().join("big.bin")).unwrap();
    tree.verify_parts(0, &data).unwrap();
    tree.verify_parts(100, &data[100 * 16384..101 * 16384])
        .unwrap();

    // Known now: answered from the store, no new GET.
    let (status, _) = ask(&gw.url, &url).await;
    assert_eq!(status, 200);
    assert_eq!(nginx.gets("/big.bin"), 1);

    // Bad roots and unknown roots for the tree endpoint.
    let r = reqwest::get(format!("{}/v1/content/nothex/outboard", gw.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = reqwest::get(format!("{}/v1/content/{}/outboard", gw.url, "0".repeat(64)))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_hashed_again_after_the_freshness_window() {
    let www = www();
    let file = www.path().join("song.bin");
    write_file(&file, 300_000, "one");
    let nginx = Nginx::start(www.path(), "");
    let gw = gateway(Config {
        fresh: Duration::from_millis(500),
        ..local()
    })
    .await;
    let url = format!("{}/song.bin", nginx.url());
    let client = Client::new(&gw.url).unwrap();
    let first = client
        .resolve(&url, Duration::from_secs(30), |_| {})
        .await
        .unwrap();
    assert_eq!(first.blake3.to_hex(), b3sum(&file));

    // Unchanged: the check past the window is a conditional GET answered 304.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let same = client
        .resolve(&url, Duration::from_secs(30), |_| {})
        .await
        .unwrap();
    assert_eq!(same.blake3, first.blake3);
    assert!(
        nginx
            .access_log()
            .iter()
            .any(|l| l.starts_with("GET /song.bin 304")),
        "{:?}",
        nginx.access_log()
    );

    // Replaced (new size, new mtime): the new root, and the old tree is still served.
    write_file(&file, 310_000, "two");
    let past = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .append(true)
        .open(&file)
        .unwrap()
        .set_modified(past)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let second = client
        .resolve(&url, Duration::from_secs(30), |_| {})
        .await
        .unwrap();
    assert_eq!(second.blake3.to_hex(), b3sum(&file));
    assert_ne!(second.blake3, first.blake3);
    client
        .outboard(&first)
        .await
        .expect("old tree kept for peers still on it");
}

/// An origin that answers with a Content-Length of 100,000 and then drips a byte every
/// 100 ms; its port.
fn dripping_origin() -> u16 {
    let drip = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = drip.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for conn in drip.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
                if conn.write_all(head).is_err() {
                    return;
                }
                while conn.write_all(&[1]).is_ok() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dripping_origin_fails_and_frees_its_fetch_slot() {
    let www = www();
    write_file(&www.path().join("ok.bin"), 40_000, "ok");
    let nginx = Nginx::start(www.path(), "");
    let gw = gateway(Config {
        max_fetches: 1,
        min_rate: 1024,
        rate_grace: Duration::from_secs(1),
        wait: Duration::from_secs(20),
        ..local()
    })
    .await;
    let drip = format!("http://127.0.0.1:{}/slow.mp3", dripping_origin());
    let started = std::time::Instant::now();
    let (status, body) = ask(&gw.url, &drip).await;
    let body: ErrorBody = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, body.error.as_str()),
        (504, "origin_timeout"),
        "{}",
        body.message
    );
    assert!(body.message.contains("bytes/s"), "{}", body.message);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // Its one fetch slot is free again: an honest origin is served.
    let (ok, info) = ask(&gw.url, &format!("{}/ok.bin", nginx.url())).await;
    assert_eq!(ok, 200, "{info}");
}

/// An origin that accepts connections and never answers; its port.
fn stalled_origin() -> u16 {
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = stalled.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in stalled.incoming() {
            held.push(conn);
        }
    });
    port
}

/// An origin whose body ends before its Content-Length (the file changed under it); its port.
fn short_origin() -> u16 {
    let short = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = short.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for conn in short.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n",
            );
            let _ = conn.write_all(&[7u8; 500]);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_is_named_and_the_gateway_keeps_serving() {
    let www = www();
    write_file(&www.path().join("ok.bin"), 40_000, "ok");
    write_file(&www.path().join("large.bin"), 2 << 20, "large");
    let nginx = Nginx::start(www.path(), "");
    let stalled_port = stalled_origin();
    let short_port = short_origin();
    let gw = gateway(Config {
        max_size: 1 << 20,
        idle_timeout: Duration::from_secs(2),
        ..local()
    })
    .await;
    let strict = gateway(Config {
        rate_limit: 0,
        ..Config::default()
    })
    .await;

    let cases = [
        (
            &gw.url,
            format!("{}/missing.bin", nginx.url()),
            404,
            "origin_not_found",
        ),
        (
            &gw.url,
            format!("http://127.0.0.1:{}/x.mp3", free_port()),
            502,
            "origin_unreachable",
        ),
        (
            &gw.url,
            format!("http://127.0.0.1:{stalled_port}/x.mp3"),
            504,
            "origin_timeout",
        ),
        (
            &gw.url,
            format!("{}/large.bin", nginx.url()),
            413,
            "too_large",
        ),
        (
            &gw.url,
            format!("http://127.0.0.1:{short_port}/x.mp3"),
            503,
            "changed_during_fetch",
        ),
        (&gw.url, "not a url".to_string(), 400, "bad_url"),
        (&gw.url, "file:///etc/passwd".to_string(), 400, "bad_url"),
        (
            &strict.url,
            format!("{}/ok.bin", nginx.url()),
            403,
            "not_allowed",
        ),
        (
            &strict.url,
            "http://localhost:1/x.mp3".to_string(),
            403,
            "not_allowed",
        ),
        (
            &strict.url,
            "http://[::1]:1/x.mp3".to_string(),
            403,
            "not_allowed",
        ),
    ];
    for (gateway, url, status, code) in cases {
        let (got, body) = ask(gateway, &url).await;
        let body: ErrorBody = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{url}: not an error body ({e}): {body}"));
        assert_eq!(
            (got, body.error.as_str()),
            (status, code),
            "{url}: {}",
            body.message
        );
        assert!(!body.message.is_empty());
        // The gateway still answers other requests.
        let (ok, info) = ask(&gw.url, &format!("{}/ok.bin", nginx.url())).await;
        assert_eq!(ok, 200, "{info}");
    }
    let r = reqwest::get(format!("{}/healthz", gw.url)).await.unwrap();
    assert_eq!(r.status(), 200);
    let metrics = reqwest::get(format!("{}/metrics", gw.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("alluvium_gateway_fetches_total{outcome=\"too_large\"} 1"),
        "{metrics}"
    );

    // The typed client reports the gateway's code.
    let err = Client::new(&gw.url)
        .unwrap()
        .resolve(
            &format!("{}/missing.bin", nginx.url()),
            Duration::from_secs(5),
            |_| {},
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Gateway { status: 404, ref code, .. } if code == "origin_not_found"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_fetches_answer_202_with_progress() {
    let www = www();
    write_file(&www.path().join("slow.bin"), 3 << 20, "slow");
    let nginx = Nginx::start(www.path(), "limit_rate 1m;");
    let gw = gateway(Config {
        wait: Duration::from_millis(300),
        ..local()
    })
    .await;
    let url = format!("{}/slow.bin", nginx.url());
    let r = reqwest::Client::new()
        .get(format!("{}/v1/content", gw.url))
        .query(&[("url", url.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["retry-after"], "2");
    let p: Pending = r.json().await.unwrap();
    assert!(p.state == "hashing" || p.state == "queued", "{p:?}");
    let mut seen = Vec::new();
    let info = Client::new(&gw.url)
        .unwrap()
        .resolve(&url, Duration::from_secs(60), |p| seen.push(p.bytes_done))
        .await
        .unwrap();
    assert_eq!(info.size, 3 << 20);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(seen.iter().any(|&b| b > 0), "progress was shown: {seen:?}");
    assert_eq!(nginx.gets("/slow.bin"), 1);
}

async fn announce_from(gw: &str, from: IpAddr, body: &str) -> (u16, String) {
    announce_via(gw, from, None, body).await
}

/// An announce from `from`, with `X-Forwarded-For: FORWARDED` if given.
async fn announce_via(
    gw: &str,
    from: IpAddr,
    forwarded: Option<&str>,
    body: &str,
) -> (u16, String) {
    let client = reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap();
    let mut request = client
        .post(format!("{gw}/v1/announce"))
        .header("content-type", "application/json");
    if let Some(f) = forwarded {
        request = request.header("x-forwarded-for", f);
    }
    let r = request.body(body.to_string()).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announce_records_the_requesters_address_only() {
    let gw = gateway(Config {
        announce_interval: Duration::from_secs(1),
        ..local()
    })
    .await;
    let root = blake3::hash(b"some song").to_hex().to_string();
    let a: IpAddr = "127.0.0.2".parse().unwrap();
    let b: IpAddr = "127.0.0.3".parse().unwrap();
    // A names a third party's address in its body: ignored.
    let body = format!(
        r#"{{"blake3":"{root}","port":7001,"peer_id":"a","have":"complete","event":"started","addr":"203.0.113.9:80","ip":"203.0.113.9"}}"#
    );
    let (status, text) = announce_from(&gw.url, a, &body).await;
    assert_eq!(status, 200, "{text}");
    let r: AnnounceResponse = serde_json::from_str(&text).unwrap();
    assert_eq!(r.interval_s, 1);
    assert!(r.peers.is_empty());

    let body = format!(r#"{{"blake3":"{root}","port":7002,"peer_id":"b","have":"none"}}"#);
    let (status, text) = announce_from(&gw.url, b, &body).await;
    assert_eq!(status, 200, "{text}");
    let r: AnnounceResponse = serde_json::from_str(&text).unwrap();
    assert_eq!(r.peers.len(), 1);
    assert_eq!(
        r.peers[0].addr, "127.0.0.2:7001",
        "the requester's IP, the port it gave"
    );
    assert_eq!(r.peers[0].peer_id, "a");

    // A stops announcing; after 3 intervals it is gone.
    tokio::time::sleep(Duration::from_millis(3300)).await;
    let (_, text) = announce_from(&gw.url, b, &body).await;
    let r: AnnounceResponse = serde_json::from_str(&text).unwrap();
    assert!(r.peers.is_empty(), "expired peer still listed: {r:?}");
}

async fn announce_forwarded(
    gw: &str,
    from: IpAddr,
    forwarded: &str,
    body: &str,
) -> AnnounceResponse {
    let (status, text) = announce_via(gw, from, Some(forwarded), body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_counts_only_from_a_trusted_proxy() {
    let gw = gateway(Config {
        trusted_proxies: vec!["127.0.0.8/30".parse().unwrap()],
        ..local()
    })
    .await;
    let root = blake3::hash(b"forwarded").to_hex().to_string();
    let body = |id: &str| {
        format!(r#"{{"blake3":"{root}","port":7001,"peer_id":"{id}","have":"complete"}}"#)
    };
    // From an untrusted address a forged header changes nothing: the connection's address.
    announce_forwarded(
        &gw.url,
        "127.0.0.2".parse().unwrap(),
        "198.51.100.7",
        &body("forger"),
    )
    .await;
    // The balancer (trusted) names its client; the client's own forged entry, left of it, is not believed.
    announce_forwarded(
        &gw.url,
        "127.0.0.9".parse().unwrap(),
        "203.0.113.1, 127.0.0.3",
        &body("behind"),
    )
    .await;
    let r = announce_forwarded(&gw.url, "127.0.0.4".parse().unwrap(), "", &body("asker")).await;
    let mut seen: Vec<(String, String)> =
        r.peers.into_iter().map(|p| (p.peer_id, p.addr)).collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("behind".to_string(), "127.0.0.3:7001".to_string()),
            ("forger".to_string(), "127.0.0.2:7001".to_string()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_malformed_announces_get_400() {
    let gw = gateway(local()).await;
    let root = blake3::hash(b"x").to_hex().to_string();
    let good = format!(r#"{{"blake3":"{root}","port":7001,"peer_id":"p","have":"partial"}}"#);
    let mut bodies: Vec<String> = vec![
        String::new(),
        "null".into(),
        "[]".into(),
        "{}".into(),
        "{".into(),
        good.replace("7001", "0"),
        good.replace("7001", "70000"),
        good.replace("7001", "-1"),
        good.replace("7001", "\"7001\""),
        good.replace(&root, "abc"),
        good.replace(&root, &"z".repeat(64)),
        good.replace("\"p\"", "\"\""),
        good.replace("\"p\"", &format!("\"{}\"", "p".repeat(65))),
        good.replace("\"p\"", "\"has space\""),
        good.replace("partial", "some"),
        good.replace("partial", "PARTIAL"),
        good.replace("\"have\":\"partial\"", "\"have\":null"),
        format!("{good}{good}"),
        good.replace('{', "{\"event\":\"exploded\","),
        good.replace("\"port\":7001,", ""),
        "\u{0}\u{1}\u{2}".into(),
        "{\"blake3\":".repeat(100),
    ];
    // Then truncations and byte flips of a good body.
    let mut seed = 1u32;
    while bodies.len() < 1000 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let mut b = good.clone().into_bytes();
        match seed % 3 {
            0 => b.truncate((seed as usize / 7) % good.len()),
            1 => {
                let at = (seed as usize / 7) % b.len();
                b[at] = b"{}[]\",:0x\\"[(seed as usize / 13) % 10];
            }
            _ => {
                let at = (seed as usize / 7) % b.len();
                b.insert(at, b"{[\"]},:"[(seed as usize / 13) % 7]);
            }
        }
        let s = String::from_utf8_lossy(&b).to_string();
        if serde_json::from_str::<alluvium_gateway::wire::AnnounceRequest>(&s)
            .map(|r| r.validate().is_err())
            .unwrap_or(true)
        {
            bodies.push(s);
        }
    }
    let client = reqwest::Client::new();
    for body in &bodies {
        let r = client
            .post(format!("{}/v1/announce", gw.url))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body:?}");
    }
    let r = client
        .post(format!("{}/v1/announce", gw.url))
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{}/v1/announce", gw.url))
        .body(" ".repeat(40_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413, "oversized bodies are refused unread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_flood_the_gateway() {
    let gw = gateway(Config {
        rate_limit: 5,
        ..local()
    })
    .await;
    let client = reqwest::Client::new();
    let mut codes = Vec::new();
    for _ in 0..40 {
        let r = client
            .get(format!("{}/v1/content/{}/outboard", gw.url, "0".repeat(64)))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert_eq!(
        codes.iter().filter(|&&c| c == 404).count(),
        20,
        "a burst of 4x5"
    );
    assert_eq!(codes.iter().filter(|&&c| c == 429).count(), 20);
    let addr: SocketAddr = gw.url.trim_start_matches("http://").parse().unwrap();
    assert!(addr.ip().is_loopback());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlists_are_read_once_for_many_listeners_and_only_playlists() {
    let www = www();
    write_public(
        &www.path().join("station.rss"),
        common::playlist("First").as_bytes(),
    );
    write_file(&www.path().join("not.rss"), 1000, "junk");
    let nginx = Nginx::start(www.path(), "");
    let gw = gateway(local()).await;
    let client = Client::new(&gw.url).unwrap();
    let url = format!("{}/station.rss", nginx.url());

    // Twenty listeners at once: one GET at the origin, the same bytes for all.
    let asks = (0..20).map(|_| {
        let u = client.playlist_url(&url);
        tokio::spawn(async move { reqwest::get(u).await.unwrap() })
    });
    let mut etag = String::new();
    for r in futures_util::future::join_all(asks).await {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/x-alluvium");
        etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert!(r.text().await.unwrap().contains("<title>First</title>"));
    }
    // nginx writes its log line after the last byte, which the gateway may have before.
    for _ in 0..40 {
        if nginx.gets("/station.rss") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(nginx.gets("/station.rss"), 1, "{:?}", nginx.access_log());

    // A listener's conditional read: 304 while unchanged.
    let r = reqwest::Client::new()
        .get(client.playlist_url(&url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    // Changed at the server: after the freshness window the new one is handed out.
    write_public(
        &www.path().join("station.rss"),
        common::playlist("Second").as_bytes(),
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let r = reqwest::get(client.playlist_url(&url)).await.unwrap();
    assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);
    assert!(r.text().await.unwrap().contains("<title>Second</title>"));

    // Not a playlist, not there, not allowed: named errors, never the bytes.
    let (status, body) = get_json(&client.playlist_url(&format!("{}/not.rss", nginx.url()))).await;
    assert_eq!((status, body.error.as_str()), (422, "not_a_playlist"));
    let (status, body) = get_json(&client.playlist_url(&format!("{}/gone.rss", nginx.url()))).await;
    assert_eq!((status, body.error.as_str()), (404, "origin_not_found"));
    let strict = gateway(Config {
        rate_limit: 0,
        ..Config::default()
    })
    .await;
    let (status, body) = get_json(&Client::new(&strict.url).unwrap().playlist_url(&url)).await;
    assert_eq!((status, body.error.as_str()), (403, "not_allowed"));
}

async fn get_json(url: &str) -> (u16, ErrorBody) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}
