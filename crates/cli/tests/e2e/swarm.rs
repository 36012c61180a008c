//! `alluvium fetch` and `alluvium listen` as processes, with `alluvium gateway` and real
//! nginx: files arrive whole and verified, and the second comes mostly from the first.
//! (The swarm's behaviour in detail is tested in-process in its own crate.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alluvium_testkit::{
    b3sum, bytes_of, free_port, public_dir, public_subdir, wait_for_port, write_public, Nginx,
    Process,
};

use super::gateway::start_gateway;
use super::{broadcast_now, get, BIN};

/// A metric's value from `/metrics` on `port` (0 when absent).
pub(super) fn metric_of(port: u16, name: &str) -> f64 {
    let body = String::from_utf8(get(port, "/metrics", &[]).body).unwrap();
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

fn metric(port: u16, name: &str) -> u64 {
    metric_of(port, name) as u64
}

#[test]
fn fetch_swarms_between_two_processes() {
    let www = public_dir();
    let data = bytes_of(6 << 20, "fetch");
    let file = www.path().join("show.bin");
    write_public(&file, &data);
    let nginx = Nginx::start(www.path(), "");
    let state = tempfile::tempdir().unwrap();
    let gw_port = free_port();
    let _gw = start_gateway(gw_port, &state.path().join("g.sqlite"), &[]);
    let gateway = format!("http://127.0.0.1:{gw_port}");
    let url = format!("{}/show.bin", nginx.url());

    // The first stays on as a seed.
    let first_out = state.path().join("first.bin");
    let mut first = Process {
        child: Command::new(BIN)
            .args([
                "fetch",
                &url,
                "--gateway",
                &gateway,
                "--seed-for",
                "60s",
                "-o",
            ])
            .arg(&first_out)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    };
    let line = BufReader::new(first.child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(line, format!("{}  {}", b3sum(&file), first_out.display()));
    assert_eq!(std::fs::read(&first_out).unwrap(), data);

    let second_out = state.path().join("second.bin");
    let out = Command::new(BIN)
        .args(["fetch", &url, "--gateway", &gateway, "-o"])
        .arg(&second_out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(std::fs::read(&second_out).unwrap(), data);
    // "N bytes: P from peers, O from the origin"
    let summary = stderr
        .lines()
        .find(|l| l.contains("from the origin"))
        .unwrap();
    let numbers: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        numbers[1] >= (data.len() as u64) * 9 / 10,
        "mostly from the peer: {summary}"
    );

    // Bad input is exit 2 with a clear message.
    let out = Command::new(BIN)
        .args(["fetch", "ftp://x/y", "--gateway", &gateway])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an http(s) URL"));
}

#[test]
fn listen_swarms_what_is_on_air() {
    // Three 40 s tracks (40 parts each): most parts of an entry are neither due at once nor
    // the head and tail every listener needs first, so listeners trade them.
    let www = public_dir();
    let media = www.path().join("media");
    public_subdir(&media);
    for i in 0..3 {
        let f = media.join(format!("t{i}.mp3"));
        super::stream::noise_mp3(&f, 40 + i, 40, &format!("Long {i}"));
    }
    let nginx = Nginx::start(www.path(), "");
    let state = tempfile::tempdir().unwrap();
    let gw_port = free_port();
    let _gw = start_gateway(gw_port, &state.path().join("g.sqlite"), &[]);
    // A schedule starting now.
    let out = broadcast_now(
        &media,
        &nginx.url(),
        &www.path().join("now.rss"),
        &["--for", "5m"],
    );
    assert!(out.status.success());

    let mut listeners = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..3 {
        let peer_port = free_port();
        listeners.push(Process {
            child: Command::new(BIN)
                .args(["listen", &format!("{}/now.rss", nginx.url())])
                .args(["--gateway", &format!("http://127.0.0.1:{gw_port}")])
                .args(["--peer-listen", &format!("127.0.0.1:{peer_port}")])
                .args(["--stream-listen", "127.0.0.1:0"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        });
        ports.push(peer_port);
        let last = listeners.len() - 1;
        wait_for_port(peer_port, &mut listeners[last].child, "alluvium listen");
        std::thread::sleep(Duration::from_millis(700)); // listeners join a moment apart
    }
    // Within a few seconds all three hold what is on air and next, and trade with each other.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let got: Vec<(u64, u64)> = ports
            .iter()
            .map(|&p| {
                (
                    metric(p, "alluvium_bytes_from_origin_total"),
                    metric(p, "alluvium_bytes_from_peers_total"),
                )
            })
            .collect();
        let total: u64 = got.iter().map(|(o, p)| o + p).sum();
        let peers: u64 = got.iter().map(|(_, p)| p).sum();
        // A 40 s entry is about 640 kB: each of the three holds at least that much.
        if total >= 3 * 640_000 && peers > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "listeners did not fetch: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let listen_once = |playlist: &str| {
        Command::new(BIN)
            .args(["listen", &format!("{}/{playlist}", nginx.url())])
            .args(["--gateway", &format!("http://127.0.0.1:{gw_port}")])
            .args([
                "--peer-listen",
                "127.0.0.1:0",
                "--stream-listen",
                "127.0.0.1:0",
            ])
            .output()
            .unwrap()
    };
    let missing = listen_once("missing.rss");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("404"), "{stderr}");
    let not_rss = listen_once("media/t0.mp3");
    let stderr = String::from_utf8_lossy(&not_rss.stderr);
    assert_eq!(not_rss.status.code(), Some(2), "{stderr}");
}
