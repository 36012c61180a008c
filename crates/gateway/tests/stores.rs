//! One suite, both stores: every test here runs against SQLite (the embedded default, tracker
//! in memory) and against a real redis-server (tracker, limits and locks shared), and expects
//! the same answers. Then what only sharing gives: two gateways on one Redis act as one.
//! Needs nginx, b3sum and redis-server (`./test.sh` installs them); never skips.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::net::IpAddr;
use std::time::Duration;

use alluvium_content::{ContentInfo, Hash};
use alluvium_gateway::wire::AnnounceResponse;
use alluvium_gateway::{Client, Config, Gateway, Store};
mod common;

use alluvium_testkit::{b3sum, bytes_of, public_dir, write_public, Nginx, RedisServer};
use tokio_util::sync::CancellationToken;

/// Where a test's gateways keep their state; holds the server or file alive.
enum Backing {
    Sqlite(tempfile::TempDir),
    Redis(RedisServer),
}

impl Backing {
    fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    fn redis() -> Self {
        Self::Redis(RedisServer::start())
    }

    fn store(&self) -> Store {
        match self {
            Self::Sqlite(dir) => Store::open(&dir.path().join("gateway.sqlite")).unwrap(),
            Self::Redis(r) => Store::open_spec(&r.url()).unwrap(),
        }
    }
}

/// A gateway serving on a loopback port, stopped on drop.
struct Running {
    url: String,
    cancel: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn gateway(store: Store, config: Config) -> Running {
    let cancel = CancellationToken::new();
    let gw = Gateway::new(config, store, cancel.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let c = cancel.clone();
    tokio::spawn(async move { gw.serve(listener, c).await });
    Running { url, cancel }
}

fn local() -> Config {
    Config {
        allow_private: true,
        rate_limit: 0,
        ..Config::default()
    }
}

/// Runs `$name(backing)` once per store.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backing::sqlite()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                super::$name(super::Backing::redis()).await;
            }
        }
    };
}

both!(entries_are_replaced_whole_and_old_trees_stay);
async fn entries_are_replaced_whole_and_old_trees_stay(backing: Backing) {
    let store = backing.store();
    store.check().await.unwrap();
    let a = Hash::from(blake3::hash(b"a"));
    let b = Hash::from(blake3::hash(b"b"));
    let url = "http://o/x.mp3";
    assert!(store.get(url).await.unwrap().is_none());
    let info = ContentInfo::new(url.into(), 1, a, Some("\"1\"".into()), None);
    store.put(info, vec![1, 2, 3], 10).await.unwrap();
    let info = ContentInfo::new(
        url.into(),
        2,
        b,
        None,
        Some("Tue, 01 Dec 2026 10:00:00 GMT".into()),
    );
    store.put(info.clone(), vec![4, 5], 20).await.unwrap();
    drop(store);

    let store = backing.store();
    let got = store.get(url).await.unwrap().unwrap();
    assert_eq!(got.info, info, "the new version whole, no field of the old");
    assert_eq!(got.checked_at_ms, 20);
    assert_eq!(
        store.outboard(a).await.unwrap(),
        Some((1, vec![1, 2, 3])),
        "old tree kept"
    );
    assert_eq!(store.outboard(b).await.unwrap(), Some((2, vec![4, 5])));
    store.touch(url, 30).await.unwrap();
    store.touch("http://o/never-stored.mp3", 30).await.unwrap();
    assert_eq!(store.get(url).await.unwrap().unwrap().checked_at_ms, 30);
    assert!(store
        .get("http://o/never-stored.mp3")
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.counts().await.unwrap(), (1, 2));
}

both!(one_fetch_for_many_asks_and_the_root_b3sum_gives);
async fn one_fetch_for_many_asks_and_the_root_b3sum_gives(backing: Backing) {
    let www = public_dir();
    write_public(&www.path().join("song.bin"), &bytes_of(3 << 20, "song"));
    let nginx = Nginx::start(www.path(), "limit_rate 4m;");
    let gw = gateway(backing.store(), local()).await;
    let url = format!("{}/song.bin", nginx.url());
    let asks = (0..10).map(|_| {
        let (gw, url) = (gw.url.clone(), url.clone());
        tokio::spawn(async move {
            Client::new(&gw)
                .unwrap()
                .resolve(&url, Duration::from_secs(60), |_| {})
                .await
                .unwrap()
        })
    });
    let root = b3sum(&www.path().join("song.bin"));
    for info in futures_util::future::join_all(asks).await {
        assert_eq!(info.unwrap().blake3.to_hex(), root);
    }
    assert_eq!(nginx.gets("/song.bin"), 1, "{:?}", nginx.access_log());
    let metrics = reqwest::get(format!("{}/metrics", gw.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("alluvium_gateway_stored_urls 1"),
        "{metrics}"
    );
    let health = reqwest::get(format!("{}/healthz", gw.url)).await.unwrap();
    assert_eq!(health.status(), 200);
}

async fn announce(
    gw: &str,
    from: &str,
    root: &Hash,
    id: &str,
    port: u16,
    have: &str,
    event: &str,
) -> AnnounceResponse {
    let client = reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let body = format!(
        r#"{{"blake3":"{root}","port":{port},"peer_id":"{id}","have":"{have}","event":"{event}"}}"#,
        root = root.to_hex()
    );
    let r = client
        .post(format!("{gw}/v1/announce"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn ids(r: &AnnounceResponse) -> Vec<&str> {
    r.peers.iter().map(|p| p.peer_id.as_str()).collect()
}

both!(the_tracker_names_the_eldest_then_holders_and_forgets_the_silent);
async fn the_tracker_names_the_eldest_then_holders_and_forgets_the_silent(backing: Backing) {
    let gw = gateway(
        backing.store(),
        Config {
            announce_interval: Duration::from_secs(1),
            peers_per_answer: 3,
            ..local()
        },
    )
    .await;
    let root = Hash::from(blake3::hash(b"tracker"));
    let first = announce(&gw.url, "127.0.0.2", &root, "a", 7001, "none", "started").await;
    assert!(first.peers.is_empty());
    assert!(first.age_ms.is_some(), "the announcer is recorded");
    tokio::time::sleep(Duration::from_millis(30)).await;
    announce(&gw.url, "127.0.0.3", &root, "b", 7001, "partial", "started").await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    announce(
        &gw.url,
        "127.0.0.4",
        &root,
        "c",
        7002,
        "complete",
        "completed",
    )
    .await;
    let r = announce(&gw.url, "127.0.0.5", &root, "d", 7001, "none", "started").await;
    assert_eq!(ids(&r), ["a", "b", "c"], "the eldest first, in order");
    assert_eq!(
        r.peers[0].addr, "127.0.0.2:7001",
        "the address it came from"
    );
    assert_eq!(r.peers[2].addr, "127.0.0.4:7002");
    assert!(
        r.peers[0].age_ms > r.peers[1].age_ms && r.peers[1].age_ms > r.peers[2].age_ms,
        "{r:?}"
    );
    assert!(r.peers[0].age_ms >= 50 && r.peers[0].age_ms < 5000, "{r:?}");

    // Announcing again does not make a peer younger; a stopped one is gone at once.
    announce(&gw.url, "127.0.0.2", &root, "a", 7001, "complete", "update").await;
    announce(&gw.url, "127.0.0.3", &root, "b", 7001, "partial", "stopped").await;
    let r = announce(&gw.url, "127.0.0.5", &root, "d", 7001, "none", "update").await;
    assert_eq!(ids(&r), ["a", "c"]);
    assert!(r.age_ms.unwrap() < r.peers[0].age_ms);

    // Nobody heard from for three intervals is forgotten.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        announce(&gw.url, "127.0.0.5", &root, "d", 7001, "none", "update").await;
    }
    let r = announce(&gw.url, "127.0.0.6", &root, "e", 7001, "none", "started").await;
    assert_eq!(ids(&r), ["d"], "{r:?}");
}

both!(one_host_cannot_crowd_a_swarm_and_holders_come_first);
async fn one_host_cannot_crowd_a_swarm_and_holders_come_first(backing: Backing) {
    let root = Hash::from(blake3::hash(b"crowd"));
    // Loopback is not capped (this machine's own listeners), so the crowd comes from a
    // forwarded public address: the gateway trusts loopback as its balancer here.
    let gw = gateway(
        backing.store(),
        Config {
            peers_per_answer: 12,
            trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
            ..local()
        },
    )
    .await;
    let client = reqwest::Client::new();
    for port in 1000..1100u16 {
        let body = format!(
            r#"{{"blake3":"{}","port":{port},"peer_id":"flood{port}","have":"complete"}}"#,
            root.to_hex()
        );
        let r = client
            .post(format!("{}/v1/announce", gw.url))
            .header("x-forwarded-for", "203.0.113.9")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Eight eldest are the flood's (it came first); past them, holders before the rest.
    for i in 0..20u8 {
        let have = if i < 10 { "none" } else { "complete" };
        announce(
            &gw.url,
            &format!("127.0.1.{i}"),
            &root,
            &format!("p{i}"),
            7001,
            have,
            "started",
        )
        .await;
    }
    let r = announce(
        &gw.url,
        "127.0.2.1",
        &root,
        "asker",
        7001,
        "none",
        "started",
    )
    .await;
    assert_eq!(r.peers.len(), 12);
    assert!(
        r.peers[..8].iter().all(|p| p.peer_id.starts_with("flood")),
        "the flood came first, so its eldest are named first: {r:?}"
    );
    assert!(
        r.peers[8..]
            .iter()
            .all(|p| p.have == alluvium_gateway::wire::Have::Complete),
        "holders first past the eldest: {r:?}"
    );
    let metrics = reqwest::get(format!("{}/metrics", gw.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("alluvium_gateway_peers 53"),
        "32 from one host + 20 + the asker: {metrics}"
    );
}

both!(one_address_is_rate_limited);
async fn one_address_is_rate_limited(backing: Backing) {
    let gw = gateway(
        backing.store(),
        Config {
            rate_limit: 5,
            ..local()
        },
    )
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
    let ok = codes.iter().filter(|&&c| c == 404).count();
    // A burst of 4x5, and perhaps a token refilled while the 40 ran.
    assert!((20..=22).contains(&ok), "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 429).count(), 40 - ok);
}

async fn announce_report(gw: &str, from: &str, id: &str, station: &str, report: &str) -> u16 {
    let client = reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let root = Hash::from(blake3::hash(b"reported"));
    let body = format!(
        r#"{{"blake3":"{}","port":7001,"peer_id":"{id}","have":"partial","station":"{station}","report":[{report}]}}"#,
        root.to_hex()
    );
    let r = client
        .post(format!("{gw}/v1/announce"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

async fn report_of(gw: &str, station: &str) -> (alluvium_gateway::wire::Report, String) {
    let r = reqwest::Client::new()
        .get(format!("{gw}/v1/report"))
        .query(&[("station", station)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

const STATION: &str = "http://radio.example/station.rss";

fn entry(url: &str, start_ms: i64, origin: u64, peers: u64, silence_ms: u64) -> String {
    format!(
        r#"{{"url":"{url}","start_ms":{start_ms},"origin_bytes":{origin},"peer_bytes":{peers},"silence_ms":{silence_ms}}}"#
    )
}

both!(listeners_reports_add_up_per_entry_with_no_address_kept);
async fn listeners_reports_add_up_per_entry_with_no_address_kept(backing: Backing) {
    let gw = gateway(backing.store(), local()).await;
    let start = chrono::Utc::now().timestamp_millis() - 30_000;
    let one = "http://radio.example/one.mp3";
    let two = "http://radio.example/two.mp3";
    let both = format!(
        "{},{}",
        entry(one, start, 500, 500, 1500),
        entry(two, start + 60_000, 10, 0, 0)
    );
    let small = entry(one, start, 1, 1, 1);
    let announces = [
        ("127.0.0.2", "a", STATION, entry(one, start, 1000, 9000, 0)),
        ("127.0.0.3", "b", STATION, both),
        ("127.0.0.2", "a", STATION, String::new()),
        // Another station's reports stay its own; a malformed report is dropped, not the
        // announce.
        (
            "127.0.0.4",
            "c",
            "http://other.example/s.rss",
            small.clone(),
        ),
        ("127.0.0.4", "c", "not a url", small),
        ("127.0.0.4", "c", STATION, entry(one, start, 1 << 50, 1, 1)),
    ];
    for (from, id, station, report) in &announces {
        let status = announce_report(&gw.url, from, id, station, report).await;
        assert_eq!(status, 200, "{station} {report}");
    }

    let (r, text) = report_of(&gw.url, STATION).await;
    assert!(!text.contains("127.0.0"), "no listener's address: {text}");
    assert_eq!(r.entries.len(), 2, "{r:?}");
    let e = &r.entries[0];
    assert_eq!(
        (e.url.as_str(), e.origin_bytes, e.peer_bytes, e.silence_s),
        (one, 1500, 9500, 1.5)
    );
    assert_eq!(r.entries[1].origin_bytes, 10);
    assert_eq!((r.totals.origin_bytes, r.totals.peer_bytes), (1510, 9500));
    assert_eq!(r.totals.peak_listeners, 2, "a and b, each once: {r:?}");
    let metrics = reqwest::get(format!("{}/metrics", gw.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "alluvium_gateway_station_origin_bytes_total{{station=\"{STATION}\"}} 1510"
        )),
        "{metrics}"
    );
    // The page that draws it.
    let page = reqwest::get(format!("{}/report?station={STATION}", gw.url))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/v1/report"));
}

/// Two gateways on one Redis act as one: a peer announced through one is named by the other,
/// asks spread over both fetch the origin once, a playlist is read once for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_redis_act_as_one() {
    let redis = RedisServer::start();
    let store = || Store::open_spec(&redis.url()).unwrap();
    let (one, two) = (
        gateway(store(), local()).await,
        gateway(store(), local()).await,
    );
    let root = Hash::from(blake3::hash(b"shared"));
    announce(
        &one.url,
        "127.0.0.2",
        &root,
        "through-one",
        7001,
        "complete",
        "started",
    )
    .await;
    let r = announce(
        &two.url,
        "127.0.0.3",
        &root,
        "through-two",
        7001,
        "none",
        "started",
    )
    .await;
    assert_eq!(ids(&r), ["through-one"]);

    let www = public_dir();
    write_public(
        &www.path().join("song.bin"),
        &bytes_of(4 << 20, "shared song"),
    );
    let nginx = Nginx::start(www.path(), "limit_rate 2m;");
    let url = format!("{}/song.bin", nginx.url());
    let asks = (0..10).map(|i| {
        let gw = if i % 2 == 0 {
            one.url.clone()
        } else {
            two.url.clone()
        };
        let url = url.clone();
        tokio::spawn(async move {
            Client::new(&gw)
                .unwrap()
                .resolve(&url, Duration::from_secs(60), |_| {})
                .await
                .unwrap()
        })
    });
    let root_hex = b3sum(&www.path().join("song.bin"));
    for info in futures_util::future::join_all(asks).await {
        assert_eq!(info.unwrap().blake3.to_hex(), root_hex);
    }
    assert_eq!(nginx.gets("/song.bin"), 1, "{:?}", nginx.access_log());
    let tree = reqwest::get(format!("{}/v1/content/{root_hex}/outboard", two.url))
        .await
        .unwrap();
    assert_eq!(
        tree.status(),
        200,
        "the tree hashed by one is served by both"
    );

    write_public(
        &www.path().join("station.rss"),
        common::playlist("Shared").as_bytes(),
    );
    let playlist = format!("{}/station.rss", nginx.url());
    let asks = (0..20).map(|i| {
        let gw = if i % 2 == 0 { &one.url } else { &two.url };
        let u = Client::new(gw).unwrap().playlist_url(&playlist);
        tokio::spawn(async move { reqwest::get(u).await.unwrap() })
    });
    let mut tags = std::collections::HashSet::new();
    for r in futures_util::future::join_all(asks).await {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        tags.insert(r.headers()["etag"].to_str().unwrap().to_string());
    }
    assert_eq!(tags.len(), 1, "the same copy from both");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(nginx.gets("/station.rss"), 1, "{:?}", nginx.access_log());

    // Reports through either add up; a listener announcing through both counts once.
    // Listeners are counted per minute: the three announces must share one.
    let into_minute = chrono::Utc::now().timestamp_millis().rem_euclid(60_000);
    if into_minute > 55_000 {
        tokio::time::sleep(Duration::from_millis((60_500 - into_minute) as u64)).await;
    }
    let start = chrono::Utc::now().timestamp_millis();
    let e = entry("http://radio.example/one.mp3", start, 100, 200, 0);
    announce_report(&one.url, "127.0.0.2", "a", STATION, &e).await;
    announce_report(&two.url, "127.0.0.2", "a", STATION, &e).await;
    announce_report(&two.url, "127.0.0.3", "b", STATION, &e).await;
    // Each gateway writes its sums every 5 s: the other's arrive within that.
    let mut r = report_of(&one.url, STATION).await.0;
    for _ in 0..40 {
        if r.totals.origin_bytes == 300 && r.totals.peak_listeners == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        r = report_of(&one.url, STATION).await.0;
    }
    assert_eq!(r.totals.origin_bytes, 300, "{r:?}");
    assert_eq!(r.totals.peak_listeners, 2, "{r:?}");
}

/// Redis dies: announces get 503 and `/healthz` says so (a balancer drains the gateway);
/// Redis comes back empty: the gateway answers again and the swarm refills as peers announce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_outlives_a_redis_restart() {
    let mut redis = RedisServer::start();
    let gw = gateway(Store::open_spec(&redis.url()).unwrap(), local()).await;
    let root = Hash::from(blake3::hash(b"restart"));
    announce(
        &gw.url,
        "127.0.0.2",
        &root,
        "a",
        7001,
        "complete",
        "started",
    )
    .await;
    redis.kill();
    let client = reqwest::Client::new();
    let body = format!(
        r#"{{"blake3":"{}","port":7001,"peer_id":"b","have":"none"}}"#,
        root.to_hex()
    );
    let r = client
        .post(format!("{}/v1/announce", gw.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let health = reqwest::get(format!("{}/healthz", gw.url)).await.unwrap();
    assert_eq!(health.status(), 503);

    redis.restart();
    let mut healthy = false;
    for _ in 0..50 {
        if reqwest::get(format!("{}/healthz", gw.url))
            .await
            .unwrap()
            .status()
            == 200
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(healthy, "the gateway reconnects by itself");
    let r = announce(&gw.url, "127.0.0.3", &root, "b", 7001, "none", "started").await;
    assert!(r.peers.is_empty(), "Redis came back empty");
    announce(&gw.url, "127.0.0.2", &root, "a", 7001, "complete", "update").await;
    let r = announce(&gw.url, "127.0.0.3", &root, "b", 7001, "none", "update").await;
    assert_eq!(ids(&r), ["a"], "refilled as peers announce");
}
