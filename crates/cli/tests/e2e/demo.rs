//! `alluvium demo`: the whole station in one process, as a newcomer runs it. It reaches "on
//! air", a printed stream URL gives 10 s of MP3 that ffmpeg decodes, peers serve part of the
//! bytes (status line and `/metrics`), Ctrl-C stops it and removes its folder, and a port in
//! use is named. `--video` runs a TV station the same way.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use alluvium_testkit::{free_port, require, Process};

use super::BIN;

/// A first port with `n` free ports from it, below the kernel's ephemeral range (32768 up) so
/// no other test's client socket takes one between this check and the demo's bind.
fn free_ports(n: u16) -> u16 {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id();
    loop {
        // A xorshift step: enough to spread the tries, no crate needed for it.
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let first = 20_000 + (seed % 12_000) as u16;
        let held: Vec<_> = (0..n)
            .map_while(|i| TcpListener::bind(("127.0.0.1", first + i)).ok())
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

/// The demo's stdout, line by line, and its stderr so far.
struct Lines {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Lines {
    /// The first line from now that satisfies `what`, within `limit`; `None` when the demo
    /// closed its stdout (it exited) first.
    fn try_wait_for(&mut self, what: &dyn Fn(&str) -> bool, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if what(&line) {
                        return Some(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => self.fail("timed out"),
            }
        }
    }

    fn wait_for(&mut self, what: &dyn Fn(&str) -> bool, limit: Duration) -> String {
        match self.try_wait_for(what, limit) {
            Some(line) => line,
            None => self.fail("the demo exited"),
        }
    }

    fn fail(&self, why: &str) -> ! {
        // Give the stderr reader a moment to take the demo's last words.
        std::thread::sleep(Duration::from_millis(200));
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        panic!(
            "{why}; demo output so far: {:#?}\nstderr:\n{stderr}",
            self.seen
        )
    }
}

/// A line-reading thread for `from`, sending each line.
fn read_lines(from: impl Read + Send + 'static, to: impl Fn(String) -> bool + Send + 'static) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if !to(line) {
                break;
            }
        }
    });
}

/// The demo with `listeners` listeners, on air; its stream ports start at the returned port.
/// Ports are checked free before the demo binds them, and another test may take one in
/// between: then the demo names it "in use", and it is started again on other ports.
fn start_demo(listeners: u16) -> (Process, Lines, u16) {
    start_demo_with(listeners, &[])
}

/// The same with more arguments (`--video`).
fn start_demo_with(listeners: u16, extra: &[&str]) -> (Process, Lines, u16) {
    for _ in 0..5 {
        let first = free_ports(2 * listeners + 2);
        let (stream_port, peer_port) = (first, first + listeners);
        let mut demo = Process {
            child: Command::new(BIN)
                .args(["demo", "--listeners", &listeners.to_string()])
                .args(["--stagger", "1s"])
                .args(["--stream-port", &stream_port.to_string()])
                .args(["--peer-port", &peer_port.to_string()])
                .args(["--origin-port", &(first + 2 * listeners).to_string()])
                .args(["--gateway-port", &(first + 2 * listeners + 1).to_string()])
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        };
        let (tx, rx) = mpsc::channel::<String>();
        read_lines(demo.child.stdout.take().unwrap(), move |l| {
            tx.send(l).is_ok()
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let keep = Arc::clone(&stderr);
        read_lines(demo.child.stderr.take().unwrap(), move |l| {
            keep.lock().map(|mut s| s.push_str(&(l + "\n"))).is_ok()
        });
        let mut out = Lines {
            rx,
            seen: Vec::new(),
            stderr,
        };
        if out
            .try_wait_for(&|l| l.starts_with("on air: "), Duration::from_secs(60))
            .is_some()
        {
            return (demo, out, stream_port);
        }
        let _ = demo.child.wait();
        let in_use = out.stderr.lock().is_ok_and(|s| s.contains("in use"));
        if !in_use {
            out.fail("the demo exited before it was on air");
        }
    }
    panic!("five blocks of ports were taken before the demo could bind them");
}

#[test]
fn the_demo_runs_a_station_with_peers_and_stops_cleanly() {
    require("ffmpeg");
    let (mut demo, mut out, stream_port) = start_demo(3);
    let folder = out
        .seen
        .iter()
        .find(|l| l.starts_with("folder "))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| out.fail("no folder line"))
        .to_string();
    assert!(std::path::Path::new(&folder).is_dir());
    let urls = stream_urls(&out);
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

    // The broadcaster's report it prints: what the listeners told, entry by entry.
    let page = out
        .seen
        .iter()
        .find_map(|l| l.strip_prefix("gateway ")?.split("report ").nth(1))
        .unwrap_or_else(|| out.fail("no report line"))
        .trim()
        .to_string();
    let json = page.replace("/report?", "/v1/report?");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = Command::new("curl").args(["-sf", &json]).output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap_or_default();
        let told = report["totals"]["origin_bytes"].as_u64().unwrap_or(0)
            + report["totals"]["peer_bytes"].as_u64().unwrap_or(0);
        if told > 0 && report["entries"].as_array().is_some_and(|e| !e.is_empty()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the report stayed empty: {report}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Ctrl-C: everything stops, the folder goes.
    let status = ctrl_c(&mut demo);
    assert!(status.success(), "{status:?}");
    out.wait_for(&|l| l == "stopped", Duration::from_secs(5));
    assert!(
        !std::path::Path::new(&folder).exists(),
        "{folder} left behind"
    );
    assert!(TcpStream::connect(("127.0.0.1", stream_port)).is_err());
}

/// `demo --video`: a TV station from the project's own clips; a printed `/stream.ts` gives
/// pictures and sound ffprobe reads, and the page is a video player.
#[test]
fn the_demo_runs_a_tv_station() {
    require("ffprobe");
    let (mut demo, out, stream_port) = start_demo_with(2, &["--video"]);
    let urls = stream_urls(&out);
    assert_eq!(urls[0], format!("http://127.0.0.1:{stream_port}/stream.ts"));
    let curl = Command::new(require("curl"))
        .args(["-sN", "-m", "8", &urls[1]])
        .output()
        .unwrap();
    assert!(curl.stdout.len() > 200_000, "{} bytes", curl.stdout.len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo.ts");
    std::fs::write(&file, &curl.stdout).unwrap();
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let codecs = String::from_utf8_lossy(&probe.stdout);
    assert!(
        codecs.contains("h264") && codecs.contains("aac"),
        "{codecs}"
    );
    let page = Command::new(require("curl"))
        .args(["-s", &format!("http://127.0.0.1:{stream_port}/")])
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(
        page.contains("<video") && page.contains("Alluvium Demo TV"),
        "{page}"
    );
    // Stopped as a user would, so it removes its folder.
    assert!(ctrl_c(&mut demo).success());
}

/// The stream URLs the demo printed, one per listener.
fn stream_urls(out: &Lines) -> Vec<String> {
    out.seen
        .iter()
        .filter(|l| l.starts_with("listener "))
        .map(|l| l.split_whitespace().nth(3).unwrap().to_string())
        .collect()
}

/// Ctrl-C to the demo: its exit status, once it stopped (within 15 s).
fn ctrl_c(demo: &mut Process) -> std::process::ExitStatus {
    let pid = demo.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = demo.child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_port_in_use_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let first = free_ports(6);
    let out = Command::new(BIN)
        .args(["demo", "--origin-port", &port.to_string()])
        .args(["--gateway-port", &free_port().to_string()])
        .args(["--stream-port", &first.to_string()])
        .args(["--peer-port", &(first + 3).to_string()])
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
