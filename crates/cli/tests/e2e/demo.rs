//! `alluvium demo`: the whole station in one process, as a newcomer runs it. It reaches "on
//! air", a printed stream URL gives 10 s of MP3 that ffmpeg decodes, peers serve part of the
//! bytes (status line and `/metrics`), Ctrl-C stops it and removes its folder, and a port in
//! use is named.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use alluvium_testkit::{free_port, require, Process};

use super::BIN;

/// A first port with `n` free ports from it.
fn free_ports(n: u16) -> u16 {
    loop {
        let first = free_port();
        let held: Vec<_> = (0..n)
            .map_while(|i| first.checked_add(i))
            .map_while(|p| TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return first;
        }
    }
}

/// The metric's value at `/metrics` of the stream server on `port`.
fn metric(port: u16, name: &str) -> f64 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut s, b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The demo's stdout, line by line.
struct Lines {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    /// The first line from now that satisfies `what`, within `limit`.
    fn wait_for(&mut self, what: &dyn Fn(&str) -> bool, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if what(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("demo output so far: {:#?}", self.seen),
            }
        }
    }
}

#[test]
fn the_demo_runs_a_station_with_peers_and_stops_cleanly() {
    require("ffmpeg");
    let stream_port = free_ports(3);
    let peer_port = free_ports(3);
    let mut demo = Process {
        child: Command::new(BIN)
            .args(["demo", "--listeners", "3", "--stagger", "1s"])
            .args(["--stream-port", &stream_port.to_string()])
            .args(["--peer-port", &peer_port.to_string()])
            .args(["--origin-port", &free_port().to_string()])
            .args(["--gateway-port", &free_port().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    };
    let (tx, lines) = mpsc::channel::<String>();
    let out = BufReader::new(demo.child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = Lines {
        rx: lines,
        seen: Vec::new(),
    };
    let folder = out.wait_for(&|l| l.starts_with("folder "), Duration::from_secs(30));
    let folder = folder.split_whitespace().nth(1).unwrap().to_string();
    assert!(std::path::Path::new(&folder).is_dir());
    out.wait_for(&|l| l.starts_with("on air: "), Duration::from_secs(60));
    let urls: Vec<String> = out
        .seen
        .iter()
        .filter(|l| l.starts_with("listener "))
        .map(|l| l.split_whitespace().nth(3).unwrap().to_string())
        .collect();
    assert_eq!(urls.len(), 3, "{:#?}", out.seen);
    assert_eq!(urls[0], format!("http://127.0.0.1:{stream_port}/stream"));

    // 10 s of the second listener's stream, as `curl -sN` would get it.
    let curl = Command::new(require("curl"))
        .args(["-sN", "-m", "10", &urls[1]])
        .output()
        .unwrap();
    assert_eq!(curl.status.code(), Some(28), "curl stops at -m 10");
    assert!(curl.stdout.len() > 100_000, "{} bytes", curl.stdout.len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo.mp3");
    std::fs::write(&file, &curl.stdout).unwrap();
    let decoded = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "s16le", "-ac", "2", "-ar", "44100", "-"])
        .output()
        .unwrap();
    assert!(
        decoded.status.success() && decoded.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    let seconds = decoded.stdout.len() as f64 / 4.0 / 44_100.0;
    assert!(seconds >= 9.0, "decoded {seconds:.1} s");

    // Peers served part of the bytes: in the status line and in the listeners' /metrics.
    let status = out.wait_for(
        &|l| l.starts_with("origin ") && !l.contains("| peers 0.00 MB"),
        Duration::from_secs(30),
    );
    assert!(status.contains("stalls"), "{status}");
    let from_peers: f64 = (0..3)
        .map(|i| metric(stream_port + i, "alluvium_bytes_from_peers_total"))
        .sum();
    assert!(from_peers > 0.0, "no bytes from peers: {status}");

    // Ctrl-C: everything stops, the folder goes.
    let pid = demo.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = demo.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    out.wait_for(&|l| l == "stopped", Duration::from_secs(5));
    assert!(
        !std::path::Path::new(&folder).exists(),
        "{folder} left behind"
    );
    assert!(TcpStream::connect(("127.0.0.1", stream_port)).is_err());
}

#[test]
fn a_port_in_use_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(BIN)
        .args(["demo", "--origin-port", &port.to_string()])
        .args(["--gateway-port", &free_port().to_string()])
        .args(["--stream-port", &free_ports(3).to_string()])
        .args(["--peer-port", &free_ports(3).to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("in use"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["demo", "--stream-port", "7000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("port 7000"));
}
