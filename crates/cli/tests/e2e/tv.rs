//! A TV station with the real programs: clips made by ffmpeg (one at another resolution),
//! served by nginx, resolved by a gateway, played by a listener; `/stream.ts` read by ffprobe
//! across three entries joined mid-entry (timestamps run on), and played by mpv, ffplay and
//! VLC (as an unprivileged user) with no timestamp or clock warnings.

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alluvium_testkit::{public_dir, public_subdir, require, write_public, Nginx, Process};

use super::stream::{on_air, spawn_listener, OnAir, BURST};

/// Each clip's length.
const CLIP_S: u32 = 6;

/// A clip of `CLIP_S` seconds at `size`, 25 pictures a second with a keyframe every 2 s, a
/// tone, muxed at 1.5 Mbit/s as the shared harness makes its video.
fn tv_clip(path: &Path, size: &str, hue: u32, tone: u32) {
    let status = Command::new(require("ffmpeg"))
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={size}:rate=25:duration={CLIP_S},hue=h={hue}"
        ))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency={tone}:sample_rate=48000:duration={CLIP_S}"
        ))
        .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "50"])
        .args(["-keyint_min", "50", "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "128k", "-muxrate", "1500k"])
        .args(["-f", "mpegts"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
    let data = std::fs::read(path).unwrap();
    write_public(path, &data);
}

/// A TV station of three clips on nginx, on air `ago` before now, with a gateway.
pub(super) struct Tv {
    www: tempfile::TempDir,
    _nginx: Nginx,
    port: u16,
    gw_port: u16,
    _gw: Process,
    state: tempfile::TempDir,
}

impl Tv {
    pub(super) fn start(ago: chrono::TimeDelta) -> Self {
        let www = public_dir();
        let media = www.path().join("media");
        public_subdir(&media);
        tv_clip(&media.join("1-news.ts"), "320x180", 0, 440);
        tv_clip(&media.join("2-film.ts"), "480x270", 120, 550);
        tv_clip(&media.join("3-weather.ts"), "320x180", 240, 660);
        let OnAir {
            nginx,
            port,
            gw,
            gw_port,
            state,
        } = on_air(
            www.path(),
            "tv.rss",
            ago,
            &["--for", "10m", "--title", "Test TV"],
        );
        Tv {
            www,
            _nginx: nginx,
            port,
            gw_port,
            _gw: gw,
            state,
        }
    }

    /// A listener and its stream port, once the port is open.
    pub(super) fn listen(&self) -> (Process, u16) {
        let playlist = format!("http://127.0.0.1:{}/tv.rss", self.port);
        spawn_listener(&playlist, self.gw_port, |port| self.log_of(port), &[], &[])
    }

    fn log_of(&self, stream_port: u16) -> std::path::PathBuf {
        self.state.path().join(format!("l-{stream_port}.log"))
    }

    pub(super) fn log(&self, stream_port: u16) -> String {
        std::fs::read_to_string(self.log_of(stream_port)).unwrap_or_default()
    }
}

/// Reads `path` of the stream server for `seconds`: the response head and the body.
fn read_for(port: u16, path: &str, seconds: u64) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(
        &mut s,
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut all = Vec::new();
    let mut buf = [0u8; 65536];
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let at = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&all[..at]).to_lowercase();
    (head, all[at..].to_vec())
}

/// The share of null packets (PID 0x1FFF) in a transport stream.
fn null_share(ts: &[u8]) -> f64 {
    let packets: Vec<&[u8]> = ts.chunks_exact(188).filter(|p| p[0] == 0x47).collect();
    let null = packets
        .iter()
        .filter(|p| (u16::from(p[1] & 0x1F) << 8 | u16::from(p[2])) == 0x1FFF)
        .count();
    null as f64 / packets.len().max(1) as f64
}

/// Lines a player printed that speak of timing: timestamps, PCR, clock, discontinuities.
fn timing_warnings(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            let l = l.to_lowercase();
            [
                "timestamp",
                "pcr",
                "pts",
                "dts",
                "discontinu",
                "clock",
                "late",
                "resync",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .collect()
}

#[test]
fn ffprobe_reads_one_stream_across_three_entries_joined_mid_entry() {
    require("ffprobe");
    // The player hears 2.5 s into the first clip when it connects (a second or so later).
    let tv = Tv::start(BURST + chrono::TimeDelta::milliseconds(2_500));
    let (_listener, port) = tv.listen();
    let (head, body) = read_for(port, "/stream.ts", 16);
    assert!(head.contains("content-type: video/mp2t"), "{head}");
    let file = tv.www.path().join("got.ts");
    std::fs::write(&file, &body).unwrap();
    // A constant-rate clip stays at its rate: its null packets are passed on.
    let source = std::fs::read(tv.www.path().join("media/1-news.ts")).unwrap();
    let (sent, made) = (null_share(&body), null_share(&source));
    assert!(
        sent > 0.8 * made,
        "{sent:.3} of the stream null, {made:.3} of the clip"
    );

    let out = Command::new("ffprobe")
        .args([
            "-v",
            "warning",
            "-show_entries",
            "packet=stream_index,pts_time,dts_time",
        ])
        .args(["-of", "csv=p=0"])
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.trim().is_empty(), "ffprobe said: {said}");
    let rows: Vec<(u32, f64, f64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((
                f.first()?.parse().ok()?,
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
            ))
        })
        .collect();
    let video: Vec<f64> = rows.iter().filter(|r| r.0 == 0).map(|r| r.2).collect();
    let audio: Vec<f64> = rows.iter().filter(|r| r.0 == 1).map(|r| r.1).collect();
    let seconds = video.len() as f64 / 25.0;
    assert!(seconds >= 14.0, "{seconds} s of pictures in 16 s read");
    for w in video.windows(2) {
        assert!(
            (w[1] - w[0] - 0.04).abs() < 0.002,
            "pictures run on one at a time: {} then {}\n{}",
            w[0],
            w[1],
            tv.log(port)
        );
    }
    let widest = audio.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(widest < 0.1, "sound runs on: a gap of {widest:.3} s");

    // Three entries, the second at another resolution: the pictures' sizes, in order.
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "frame=width", "-of", "csv=p=0"])
        .arg(&file)
        .output()
        .unwrap();
    // Runs of equal width: (width, pictures).
    let mut runs: Vec<(u32, usize)> = Vec::new();
    for w in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(w) = w.trim_end_matches(',').parse::<u32>() else {
            continue;
        };
        match runs.last_mut() {
            Some((last, n)) if *last == w => *n += 1,
            _ => runs.push((w, 1)),
        }
    }
    let widths: Vec<u32> = runs.iter().map(|r| r.0).collect();
    assert_eq!(widths[..3], [320, 480, 320], "entries in order: {runs:?}");
    assert_eq!(runs[1].1, 25 * CLIP_S as usize, "the second entry whole");
    // Joined mid-entry, at a keyframe: the first clip from 2 or 4 s in.
    assert!(
        [50, 100].contains(&runs[0].1),
        "{} pictures of the first clip",
        runs[0].1
    );
}

#[test]
fn mpv_ffplay_and_vlc_play_the_stream_without_clock_warnings() {
    let tv = Tv::start(BURST + chrono::TimeDelta::seconds(3));
    let (_listener, port) = tv.listen();
    let url = format!("http://127.0.0.1:{port}/stream.ts");

    let started = Instant::now();
    let mpv = Command::new(require("mpv"))
        .args(["--no-config", "--vo=null", "--ao=null", "--length=20"])
        .args(["--msg-level=all=warn", &url])
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&mpv.stdout).into_owned() + &String::from_utf8_lossy(&mpv.stderr);
    assert!(mpv.status.success(), "mpv: {said}");
    assert!(
        said.trim().is_empty(),
        "mpv said: {said}\nlistener: {}",
        tv.log(port)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(19),
        "mpv played {:?}",
        started.elapsed()
    );

    // ffplay never ends a live stream by itself: 20 s, then stopped.
    let started = Instant::now();
    let mut ffplay = Process {
        child: Command::new(require("ffplay"))
            .args(["-nodisp", "-v", "warning", &url])
            .env("SDL_AUDIODRIVER", "dummy")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    };
    std::thread::sleep(Duration::from_secs(20));
    assert!(
        ffplay.child.try_wait().unwrap().is_none(),
        "ffplay stopped after {:?}",
        started.elapsed()
    );
    let _ = ffplay.child.kill();
    let mut said = String::new();
    ffplay
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    assert!(said.trim().is_empty(), "ffplay said: {said}");

    // VLC refuses to run as root: as nobody when the tests are root.
    let mut vlc = if is_root() {
        let mut c = Command::new(require("runuser"));
        c.args(["-u", "nobody", "--"]).arg(require("cvlc"));
        c
    } else {
        Command::new(require("cvlc"))
    };
    let started = Instant::now();
    let out = vlc
        .args([
            "--verbose=1",
            "--intf",
            "dummy",
            "--aout",
            "dummy",
            "--vout",
            "dummy",
        ])
        .args(["--run-time=20", "--play-and-exit", &url])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        started.elapsed() >= Duration::from_secs(19),
        "VLC played {:?}: {said}",
        started.elapsed()
    );
    let timing = timing_warnings(&said);
    assert!(timing.is_empty(), "VLC: {timing:?}");
    let decoder: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("decoder warning") || l.contains("decoder error"))
        .collect();
    assert!(
        decoder.len() <= 1,
        "VLC, beyond one at start-up: {decoder:?}"
    );
    assert!(
        !tv.log(port).contains("ERROR"),
        "the listener: {}",
        tv.log(port)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
