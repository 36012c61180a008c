//! Scaling out as docs/deployment.md shows it: a real redis-server, two `alluvium gateway`
//! processes on it, and nginx in front with the shipped `contrib/nginx/gateways.conf`;
//! listeners know only the balancer. Peers and fetches are shared, a gateway killed costs
//! the listeners no sound, the broadcaster's report shows what the listeners told, and a
//! Redis restart is recovered from as announces come back.

use std::process::Command;
use std::time::{Duration, Instant};

use alluvium_testkit::{
    bytes_of, free_port, public_dir, public_subdir, write_public, Nginx, Process, RedisServer,
};
use serde_json::Value;

use super::gateway::start_gateway_on;
use super::stream::{noise_mp3, on_air, spawn_listener, BURST};
use super::swarm::metric_of;
use super::{get, repo};

/// nginx as the balancer, with the shipped config pointed at `gateways`.
fn balancer(www: &std::path::Path, port: u16, gateways: [u16; 2]) -> Nginx {
    let shipped = std::fs::read_to_string(repo().join("contrib/nginx/gateways.conf")).unwrap();
    let conf = shipped
        .replace("10.0.0.11:7000", &format!("127.0.0.1:{}", gateways[0]))
        .replace("10.0.0.12:7000", &format!("127.0.0.1:{}", gateways[1]))
        .replace("listen 7000;", &format!("listen 127.0.0.1:{port};"));
    assert_ne!(
        conf, shipped,
        "the shipped config names its gateways and port as expected"
    );
    let nginx = Nginx::start_with_http(www, &conf, "");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the balancer did not open {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nginx
}

fn announce(port: u16, root: &str, peer: &str, listen_port: u16) -> Value {
    let body = format!(
        r#"{{"blake3":"{root}","port":{listen_port},"peer_id":"{peer}","have":"complete"}}"#
    );
    let out = Command::new("curl")
        .args(["-sS", "-X", "POST", "-H", "content-type: application/json"])
        .args(["--data", &body])
        .arg(format!("http://127.0.0.1:{port}/v1/announce"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn gateways_behind_nginx_on_one_redis_share_everything_and_survive_failures() {
    let www = public_dir();
    let media = www.path().join("media");
    public_subdir(&media);
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        noise_mp3(
            &media.join(format!("{name}.mp3")),
            31 + i as u32,
            6,
            &format!("Track {i}"),
        );
    }
    let air = on_air(www.path(), "s.rss", BURST, &["--for", "10m"]);
    drop(air.gw); // this station's gateways are the pair below
    let mut redis = RedisServer::start();
    let gw_ports = [free_port(), free_port()];
    let mut gateways: Vec<Option<Process>> = gw_ports
        .iter()
        .map(|&p| {
            Some(start_gateway_on(
                p,
                &redis.url(),
                &["--trusted-proxy", "127.0.0.1"],
            ))
        })
        .collect();
    let lb_port = free_port();
    let _balancer = balancer(www.path(), lb_port, gw_ports);

    // A peer announced through one gateway is named by the other.
    let root = "ab".repeat(32);
    announce(gw_ports[0], &root, "through-one", 9001);
    let r = announce(gw_ports[1], &root, "through-two", 9002);
    assert_eq!(r["peers"][0]["peer_id"], "through-one", "{r}");

    // Ten concurrent asks, spread over both gateways, fetch the origin once.
    asks_over_both_fetch_once(www.path(), &air.nginx, gw_ports);

    // Three listeners that know only the balancer, each with a player.
    let playlist = format!("{}/s.rss", air.nginx.url());
    let logs = tempfile::tempdir().unwrap();
    let log_of = |port: u16| logs.path().join(format!("listener-{port}.log"));
    let listeners: Vec<(Process, u16)> = (0..3)
        .map(|_| spawn_listener(&playlist, lb_port, log_of, &[], &["--upload-limit", "0"]))
        .collect();
    let players: Vec<_> = listeners
        .iter()
        .map(|&(_, port)| std::thread::spawn(move || super::stream::read_stream(port, 55)))
        .collect();
    let stall = |port: u16| metric_of(port, "alluvium_stall_seconds_total");
    let silence = |before: &[f64]| -> Vec<f64> {
        listeners
            .iter()
            .zip(before)
            .map(|(&(_, p), b)| stall(p) - b)
            .collect()
    };
    std::thread::sleep(Duration::from_secs(8));
    let peers_on = |port: u16| metric_of(port, "alluvium_gateway_peers");
    // Each listener is in a swarm or two (the entry on air, the next): both gateways count
    // them all, whichever one their announces went through.
    for port in gw_ports {
        assert!(peers_on(port) >= 3.0, "both gateways see every listener");
    }

    // One gateway killed: the balancer sends everything to the other; nobody hears it.
    let before: Vec<f64> = listeners.iter().map(|&(_, p)| stall(p)).collect();
    drop(gateways[0].take());
    std::thread::sleep(Duration::from_secs(15));
    let heard = silence(&before);
    for (i, s) in heard.iter().enumerate() {
        let port = listeners[i].1;
        assert!(
            *s <= 0.0,
            "listener {i}: {s} s of silence with one gateway killed; its log:\n{}",
            std::fs::read_to_string(log_of(port)).unwrap_or_default()
        );
    }

    // The broadcaster's report, through the balancer, in Chromium: every entry aired so far
    // with its origin and peer bytes, as the listeners told them.
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-page.png");
    let page = format!(
        "http://127.0.0.1:{lb_port}/report?station={}&hours=1",
        percent_encoding::utf8_percent_encode(&playlist, percent_encoding::NON_ALPHANUMERIC)
    );
    let shown = super::browser::run_script("report.js", &[&page, &shot.display().to_string()]);
    check_report(&shown, &playlist);

    // Redis restarted empty: the gateway answers again and the swarms refill as listeners
    // announce (each entry change is an announce), with no restart of anything else.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while peers_on(gw_ports[1]) < 3.0 {
        assert!(
            Instant::now() < deadline,
            "the swarms did not refill after Redis restarted"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for (i, p) in players.into_iter().enumerate() {
        let (head, body, _) = p.join().unwrap();
        assert!(head.starts_with("http/1.0 200"), "{head}");
        assert!(
            body.len() > 40 * 16_000,
            "listener {i}'s stream broke off: {} bytes",
            body.len()
        );
    }
    let heard = silence(&before);
    eprintln!("silence after the gateway was killed and Redis restarted: {heard:?}");
    drop(gateways);
}

fn asks_over_both_fetch_once(www: &std::path::Path, nginx: &Nginx, gw_ports: [u16; 2]) {
    write_public(&www.join("big.bin"), &bytes_of(3 << 20, "spread"));
    let url = format!("{}/big.bin", nginx.url());
    let asks: Vec<_> = (0..10)
        .map(|i| {
            let port = gw_ports[i % 2];
            let path = format!("/v1/content?url={url}&wait=30");
            std::thread::spawn(move || get(port, &path, &[]))
        })
        .collect();
    let roots: std::collections::HashSet<String> = asks
        .into_iter()
        .map(|a| {
            let reply = a.join().unwrap();
            assert_eq!(
                reply.status,
                200,
                "{}",
                String::from_utf8_lossy(&reply.body)
            );
            let v: Value = serde_json::from_slice(&reply.body).unwrap();
            v["blake3"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(roots.len(), 1);
    assert_eq!(nginx.gets("/big.bin"), 1, "{:?}", nginx.access_log());
}

/// The report page's data after about 25 s of three listeners on 6 s entries.
fn check_report(shown: &Value, playlist: &str) {
    let data = &shown["data"];
    assert_eq!(data["station"], playlist, "{shown}");
    let entries = data["entries"].as_array().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let aired: Vec<&Value> = entries
        .iter()
        .filter(|e| e["start_ms"].as_i64().unwrap() + 6000 < now - 4000)
        .collect();
    assert!(aired.len() >= 3, "entries aired in the run: {shown}");
    for e in &aired {
        let (o, p) = (
            e["origin_bytes"].as_u64().unwrap(),
            e["peer_bytes"].as_u64().unwrap(),
        );
        // 96 KiB files; three listeners fetch each whole at least once between them.
        assert!(o + p >= 97_051, "{e}");
        assert!(
            e["title"].as_str().unwrap().contains("Track"),
            "titles from the playlist: {e}"
        );
        assert_eq!(e["size"], 97_051);
    }
    let total_peers: u64 = aired
        .iter()
        .map(|e| e["peer_bytes"].as_u64().unwrap())
        .sum();
    assert!(total_peers > 0, "listeners passed parts on: {shown}");
    assert!(
        data["totals"]["peak_listeners"].as_u64().unwrap() >= 3,
        "{shown}"
    );
    // What is drawn is that data: a row per entry, its bytes in human units.
    let rows = shown["rows"].as_array().unwrap();
    assert_eq!(rows.len(), entries.len(), "{shown}");
    assert!(
        rows.iter().all(|r| r[2].as_str().unwrap().ends_with("B")),
        "{shown}"
    );
    assert!(shown["drawn"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w.as_u64().unwrap() > 0));
    assert!(
        shown["narrow"].as_u64().unwrap() <= 390,
        "fits a phone: {shown}"
    );
}
