//! `alluvium gateway` as a process: SIGKILL mid-hash and restart, `broadcast --gateway`,
//! `--follow`. (The gateway's behaviour in detail is tested in-process in its own crate.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alluvium_testkit::{
    b3sum, bytes_of, free_port, public_dir, wait_for_port, write_public, Nginx, Process,
};
use serde_json::Value;

use super::{broadcast_now, get, station, BIN};

pub(super) fn start_gateway(port: u16, store: &Path, extra: &[&str]) -> Process {
    start_gateway_on(port, &format!("sqlite:{}", store.display()), extra)
}

/// `alluvium gateway` on `port` with `--store STORE` and `extra`, once its port is open.
pub(super) fn start_gateway_on(port: u16, store: &str, extra: &[&str]) -> Process {
    let child = Command::new(BIN)
        .args([
            "gateway",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--allow-private",
        ])
        .args(["--store", store])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut p = Process { child };
    wait_for_port(port, &mut p.child, "alluvium gateway");
    p
}

fn content(port: u16, url: &str, wait: &str) -> (u16, Value) {
    let path = format!("/v1/content?url={url}&wait={wait}");
    let r = get(port, &path, &[]);
    (
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

fn resolve(port: u16, url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = content(port, url, "2");
        match status {
            200 => return body,
            202 if Instant::now() < deadline => {}
            _ => panic!("{url}: {status} {body}"),
        }
    }
}

#[test]
fn gateway_killed_mid_hash_leaves_no_half_entry() {
    let www = public_dir();
    for (name, size) in [("small.bin", 100_000usize), ("large.bin", 40 << 20)] {
        write_public(&www.path().join(name), &bytes_of(size, name));
    }
    // 8 MB/s: the large file takes about 5 s to hash, time to kill it midway.
    let nginx = Nginx::start(www.path(), "limit_rate 8m;");
    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("gateway.sqlite");
    let port = free_port();
    let small = format!("{}/small.bin", nginx.url());
    let large = format!("{}/large.bin", nginx.url());

    let gw = start_gateway(port, &store, &[]);
    let before = resolve(port, &small);
    assert_eq!(
        before["blake3"],
        b3sum(&www.path().join("small.bin")).as_str()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = content(port, &large, "0.2");
        assert_eq!(
            status, 202,
            "the large file should still be hashing: {body}"
        );
        if body["bytes_done"].as_u64().unwrap_or(0) > 8 << 20 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {body}");
    }
    drop(gw); // SIGKILL, by PID

    let _gw = start_gateway(port, &store, &[]);
    // Resolved before the kill: served from the store, no new GET.
    let (status, again) = content(port, &small, "0");
    assert_eq!((status, &again), (200, &before));
    assert_eq!(nginx.gets("/small.bin"), 1);
    // Killed mid-hash: nothing was stored; it is fetched anew and completes.
    let (status, body) = content(port, &large, "0");
    assert_eq!(status, 202, "no half entry may be served: {body}");
    let info = resolve(port, &large);
    assert_eq!(
        info["blake3"],
        b3sum(&www.path().join("large.bin")).as_str()
    );
    assert_eq!(info["size"], 40 << 20);
}

#[test]
fn broadcast_warms_the_gateway_and_follow_resolves_ahead() {
    let port = free_port();
    let st = station(&format!("http://127.0.0.1:{port}"));
    let nginx = Nginx::start_at(port, &st.www, "");
    let state = tempfile::tempdir().unwrap();

    // broadcast --gateway: every media URL is fetched and hashed once, and checked.
    let gw_port = free_port();
    let _gw = start_gateway(gw_port, &state.path().join("a.sqlite"), &[]);
    let media = st.www.join("media");
    let gateway = format!("http://127.0.0.1:{gw_port}");
    let out = broadcast_now(
        &media,
        &nginx.url(),
        &st.www.join("live.rss"),
        &["--gateway", &gateway],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("gateway warmed: 3 media URLs hashed and ready and the playlist read"),
        "{stdout}"
    );
    for name in ["01-low-tide.mp3", "02-sandbar.mp3", "03-estuary.mp3"] {
        assert_eq!(nginx.gets(&format!("/media/{name}")), 1, "{name}");
    }
    // The playlist too was read once, so a first listener gets it from the gateway at once.
    assert_eq!(nginx.gets("/live.rss"), 1, "{:?}", nginx.access_log());
    let feed = format!("{}/live.rss", nginx.url());
    let r = get(gw_port, &format!("/v1/playlist?url={feed}"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, std::fs::read(st.www.join("live.rss")).unwrap());
    assert_eq!(nginx.gets("/live.rss"), 1, "served from the gateway's copy");

    // A playlist written where the web server does not serve it is only a warning: it is
    // often uploaded after it is written.
    let out = broadcast_now(
        &media,
        &nginx.url(),
        &st.root.join("not-served.rss"),
        &["--gateway", &gateway],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("gateway warmed: 3 media URLs hashed and ready\n"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the gateway could not read the playlist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One that differs from what the web server serves (an older upload) is named.
    let out = broadcast_now(
        &media,
        &nginx.url(),
        &st.root.join("not-uploaded.rss"),
        &[
            "--gateway",
            &gateway,
            "--feed-url",
            &feed,
            "--title",
            "Another",
        ],
    );
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the web server serves another playlist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Read again after the gateway's 5 s (a third time when its copy had aged before).
    assert!(
        (2..=3).contains(&nginx.gets("/live.rss")),
        "read again after 5 s"
    );

    // A file on the web server that differs from the local one is reported.
    std::fs::write(media.join("01-low-tide.mp3.bak"), b"x").unwrap();
    let out = Command::new(BIN)
        .arg("broadcast")
        .arg(&media)
        .args(["--base-url", "http://127.0.0.1:9/media"])
        .args(["--gateway", &format!("http://127.0.0.1:{gw_port}")])
        .arg("-o")
        .arg(st.root.join("other.rss"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ready at the gateway"));

    // --follow: a fresh gateway resolves what airs in the next hour before anyone asks.
    let gw2_port = free_port();
    let _gw2 = start_gateway(
        gw2_port,
        &state.path().join("b.sqlite"),
        &["--follow", &format!("{}/live.rss", nginx.url())],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while nginx.gets("/media/03-estuary.mp3") < 2 {
        assert!(Instant::now() < deadline, "{:?}", nginx.access_log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!("{}/media/03-estuary.mp3", nginx.url());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = content(gw2_port, &url, "0");
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        nginx.gets("/media/03-estuary.mp3"),
        2,
        "one fetch per gateway"
    );
}
