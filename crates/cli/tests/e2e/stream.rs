//! The local stream with real players' tools: ffmpeg reads `/stream` across entry boundaries
//! and decodes it without an error; the decoded audio is the origin files' audio at the
//! scheduled positions (PCM compared, windows found in the files' own decoding); ICY titles
//! follow the schedule; the bytes are paced in real time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alluvium_testkit::{
    free_port, public_dir, public_subdir, require, wait_for_port, write_public, Nginx, Process,
};
use serde_json::Value;

use super::gateway::start_gateway;
use super::{broadcast_from, BIN};

/// The listener's default `--burst`: a player that connects gets this much audio at once and
/// hears the schedule this much late.
pub(super) const BURST: chrono::TimeDelta = chrono::TimeDelta::seconds(4);

/// A station's codec in these tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codec {
    Mp3,
    /// LAME's VBR, with a Xing seek table.
    Mp3Vbr,
    Vorbis,
    Opus,
}

impl Codec {
    fn ext(self) -> &'static str {
        match self {
            Codec::Mp3 | Codec::Mp3Vbr => "mp3",
            Codec::Vorbis => "ogg",
            Codec::Opus => "opus",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Codec::Mp3 => &["-c:a", "libmp3lame", "-b:a", "128k"],
            Codec::Mp3Vbr => &["-c:a", "libmp3lame", "-q:a", "2"],
            Codec::Vorbis => &["-c:a", "libvorbis", "-q:a", "4"],
            Codec::Opus => &["-c:a", "libopus", "-b:a", "96k"],
        }
    }

    /// What ffmpeg may say while decoding the stream: FFmpeg 5.1 (Debian 12) says this at
    /// every link of a chained Ogg Vorbis stream; two files it made itself, joined with
    /// `cat`, give the same line. It is its command line's timestamp check, not a decoding
    /// error; Opus links pass without it.
    fn tolerated(self) -> &'static [&'static str] {
        match self {
            Codec::Vorbis => &["non monotonically increasing dts to muxer"],
            _ => &[],
        }
    }

    /// The decoder's own rate: PCM is compared there (resampling would shift the phase).
    fn rate(self) -> usize {
        match self {
            Codec::Opus => 48_000,
            _ => 44_100,
        }
    }
}

/// A station on nginx and its gateway (see `on_air`).
pub(super) struct OnAir {
    pub(super) nginx: Nginx,
    pub(super) port: u16,
    pub(super) gw: Process,
    pub(super) gw_port: u16,
    pub(super) state: tempfile::TempDir,
}

/// The media in `www/media` broadcast to `www/rss` (on air `ago` before now, with `extra`
/// arguments), served by nginx, with a gateway.
pub(super) fn on_air(www: &Path, rss: &str, ago: chrono::TimeDelta, extra: &[&str]) -> OnAir {
    let port = free_port();
    let nginx = Nginx::start_at(port, www, "");
    let start = (chrono::Utc::now() - ago).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let out = broadcast_from(
        &start,
        &www.join("media"),
        &nginx.url(),
        &www.join(rss),
        extra,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = tempfile::tempdir().unwrap();
    let gw_port = free_port();
    let gw = start_gateway(gw_port, &state.path().join("g.sqlite"), &[]);
    OnAir {
        nginx,
        port,
        gw,
        gw_port,
        state,
    }
}

/// `alluvium listen PLAYLIST` with the gateway on `gw_port`, its log at `log_of(stream port)`,
/// returned as soon as its stream port is open.
pub(super) fn spawn_listener(
    playlist: &str,
    gw_port: u16,
    log_of: impl Fn(u16) -> std::path::PathBuf,
    env: &[(&str, &str)],
    extra: &[&str],
) -> (Process, u16) {
    let stream_port = free_port();
    let log = std::fs::File::create(log_of(stream_port)).unwrap();
    let mut command = Command::new(BIN);
    command.envs(env.iter().copied());
    let mut listener = Process {
        child: command
            .args(["listen", playlist])
            .args(["--gateway", &format!("http://127.0.0.1:{gw_port}")])
            .args(["--peer-listen", "127.0.0.1:0"])
            .args(["--stream-listen", &format!("127.0.0.1:{stream_port}")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    };
    wait_for_port(stream_port, &mut listener.child, "alluvium listen");
    (listener, stream_port)
}

/// `seconds` of stereo pink noise (no window repeats) as a tagged 128 kbit/s MP3, readable
/// by web servers.
pub(super) fn noise_mp3(path: &Path, seed: u32, seconds: u32, title: &str) {
    noise_file(path, Codec::Mp3, seed, seconds, title)
}

/// `seconds` of stereo pink noise as a tagged file of `codec`, readable by web servers.
fn noise_file(path: &Path, codec: Codec, seed: u32, seconds: u32, title: &str) {
    noise_file_with(path, codec, seed, seconds, title, &[])
}

/// The same, with more `-metadata` arguments (a long comment makes a long head).
fn noise_file_with(
    path: &Path,
    codec: Codec,
    seed: u32,
    seconds: u32,
    title: &str,
    metadata: &[String],
) {
    let status = Command::new(require("ffmpeg"))
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "anoisesrc=d={seconds}:c=pink:r=44100:a=0.3:s={seed}"
        ))
        .args(["-ac", "2"])
        .args(codec.args())
        .args([
            "-metadata",
            &format!("title={title}"),
            "-metadata",
            "artist=Noise Band",
        ])
        .args(metadata.iter().flat_map(|m| ["-metadata", m.as_str()]))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
    let data = std::fs::read(path).unwrap();
    write_public(path, &data);
}

fn pcm_of(path: &Path, rate: usize) -> Vec<i16> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "s16le", "-ac", "2", "-ar", &rate.to_string(), "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Where `window` occurs in `haystack` (samples equal within 2), if anywhere.
fn find(haystack: &[i16], window: &[i16]) -> Option<usize> {
    let close = |a: i16, b: i16| (i32::from(a) - i32::from(b)).abs() <= 2;
    (0..haystack.len().checked_sub(window.len())?).find(|&i| {
        close(haystack[i], window[0])
            && haystack[i..i + window.len()]
                .iter()
                .zip(window)
                .all(|(a, b)| close(*a, *b))
    })
}

/// Reads `/stream` raw, asking for ICY metadata, for `seconds`: the response head (lower
/// case), the bytes read, and where the body starts in them.
pub(super) fn read_stream(port: u16, seconds: u64) -> (String, Vec<u8>, usize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\nIcy-MetaData: 1\r\n\r\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    (head, raw, split + 4)
}

/// Reads `/stream` with ICY metadata for `seconds`: the titles in order of appearance.
fn icy_titles(port: u16, seconds: u64) -> Vec<String> {
    let (head, raw, split) = read_stream(port, seconds);
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert!(head.contains("icy-metaint: 16000"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    let mut pos = split;
    let mut titles: Vec<String> = Vec::new();
    while pos + 16_000 < raw.len() {
        pos += 16_000;
        let len = raw[pos] as usize * 16;
        if len > 0 && pos + 1 + len <= raw.len() {
            let text = String::from_utf8_lossy(&raw[pos + 1..pos + 1 + len])
                .trim_end_matches('\0')
                .to_string();
            if titles.last() != Some(&text) {
                titles.push(text);
            }
        }
        pos += 1 + len;
    }
    titles
}

/// A noise station (three files, 6 s each unless said) on nginx, a gateway, and `alluvium listen` processes.
pub(super) struct Noise {
    www: tempfile::TempDir,
    /// The origin (taken away to simulate an outage).
    nginx: Option<Nginx>,
    port: u16,
    gw_port: u16,
    /// The gateway (taken away to simulate its outage).
    gw: Option<Process>,
    state: tempfile::TempDir,
    names: Vec<String>,
    pcms: Vec<Vec<i16>>,
    /// Samples per second of `pcms` (per channel; two channels).
    rate: usize,
    /// Each file's length.
    seconds: u32,
}

impl Noise {
    pub(super) fn start() -> Self {
        Self::start_as(Codec::Mp3)
    }

    pub(super) fn start_as(codec: Codec) -> Self {
        Self::start_with(codec, 6, &[])
    }

    /// Files of `seconds` each, with more `-metadata` arguments.
    fn start_with(codec: Codec, seconds: u32, metadata: &[String]) -> Self {
        let www = public_dir();
        let media = www.path().join("media");
        public_subdir(&media);
        let names: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|n| format!("{n}.{}", codec.ext()))
            .collect();
        for (i, name) in names.iter().enumerate() {
            noise_file_with(
                &media.join(name),
                codec,
                11 + i as u32,
                seconds,
                &format!("Track {}", i + 1),
                metadata,
            );
        }
        let rate = codec.rate();
        let pcms: Vec<Vec<i16>> = names.iter().map(|n| pcm_of(&media.join(n), rate)).collect();
        // On air a burst ago: a player that connects hears the station from its start on.
        let OnAir {
            nginx,
            port,
            gw,
            gw_port,
            state,
        } = on_air(www.path(), "s.rss", BURST, &["--for", "10m"]);
        Noise {
            www,
            nginx: Some(nginx),
            port,
            gw_port,
            gw: Some(gw),
            state,
            names,
            pcms,
            rate,
            seconds,
        }
    }

    /// A listener; returns it and its stream port, once the stream is up and has data. Its
    /// log goes to `log_of(stream port)`.
    pub(super) fn listen(&self) -> (Process, u16) {
        self.listen_with(&[])
    }

    /// A listener with more arguments (see `listen`).
    pub(super) fn listen_with(&self, extra: &[&str]) -> (Process, u16) {
        self.listen_as(&[], extra)
    }

    /// A listener with more environment (such as libfaketime's: the process itself is the
    /// listener, so it is stopped by its PID) and more arguments (see `listen`).
    pub(super) fn listen_as(&self, env: &[(&str, &str)], extra: &[&str]) -> (Process, u16) {
        let listener = self.spawn_listener(env, extra);
        std::thread::sleep(Duration::from_millis(1500)); // the first entries arrive
        listener
    }

    /// A listener (see `listen_as`), returned as soon as its stream port is open.
    fn spawn_listener(&self, env: &[(&str, &str)], extra: &[&str]) -> (Process, u16) {
        let playlist = format!("http://127.0.0.1:{}/s.rss", self.port);
        spawn_listener(
            &playlist,
            self.gw_port,
            |port| self.log_of(port),
            env,
            extra,
        )
    }

    fn log_of(&self, stream_port: u16) -> std::path::PathBuf {
        self.state
            .path()
            .join(format!("listener-{stream_port}.log"))
    }

    /// The log of the listener streaming on `stream_port`.
    pub(super) fn log(&self, stream_port: u16) -> String {
        std::fs::read_to_string(self.log_of(stream_port)).unwrap_or_default()
    }

    /// The on-air file and offset (seconds) at `at`, from `alluvium schedule --json`.
    pub(super) fn on_air(&self, at: chrono::DateTime<chrono::Utc>) -> (usize, f64) {
        let sched = Command::new(BIN)
            .args([
                "schedule",
                self.www.path().join("s.rss").to_str().unwrap(),
                "--json",
                "--at",
            ])
            .arg(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .output()
            .unwrap();
        let sched: Value = serde_json::from_slice(&sched.stdout).unwrap();
        let file = sched["on_air"]["media_url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        let index = self.names.iter().position(|n| *n == file).unwrap();
        (index, sched["on_air"]["offset_s"].as_f64().unwrap())
    }

    /// Windows of `stream` found in the files' decoding: (stream sample, file, file sample).
    fn locate(&self, stream: &[i16]) -> (Vec<(usize, usize, usize)>, usize) {
        let step = self.rate; // samples (both channels) in half a second
        let window = self.rate / 25; // 20 ms of stereo samples
        let (mut hits, mut tried, mut at) = (Vec::new(), 0, 0);
        while at + window < stream.len() {
            let w = &stream[at..at + window];
            if let Some((f, p)) = self
                .pcms
                .iter()
                .enumerate()
                .find_map(|(f, pcm)| find(pcm, w).map(|p| (f, p)))
            {
                hits.push((at, f, p));
            }
            tried += 1;
            at += step;
        }
        (hits, tried)
    }

    /// Checks the stream's first located window against the schedule a burst before
    /// `connected` (the moment players hear then); returns the stream's position (file,
    /// seconds) at its sample 0.
    fn check_on_schedule(
        &self,
        hits: &[(usize, usize, usize)],
        connected: chrono::DateTime<chrono::Utc>,
    ) -> (usize, f64) {
        let (file, offset_s) = self.on_air(connected - BURST);
        let (first_at, first_file, first_pos) = hits[0];
        let pos_s = (first_pos as f64 - first_at as f64) / (2 * self.rate) as f64;
        if first_file == file {
            assert!(
                (pos_s - offset_s).abs() < 1.0,
                "stream at {pos_s:.3} s, schedule at {offset_s:.3} s"
            );
        } else {
            // Joined within a second of a boundary: the next file, near its start.
            assert!(
                pos_s < 1.0 && f64::from(self.seconds) - offset_s < 1.0,
                "stream in {} at {pos_s:.3}, schedule in {} at {offset_s:.3}",
                self.names[first_file],
                self.names[file]
            );
        }
        (first_file, pos_s)
    }
}

fn decode_stream(port: u16, seconds: u32) -> (Vec<i16>, Duration) {
    decode_stream_at(port, seconds, 44_100, &[])
}

/// Decodes `seconds` of `/stream` at `rate`; ffmpeg must report nothing but lines containing
/// one of `tolerated`.
fn decode_stream_at(
    port: u16,
    seconds: u32,
    rate: usize,
    tolerated: &[&str],
) -> (Vec<i16>, Duration) {
    let started = Instant::now();
    let decoded = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-i",
            &format!("http://127.0.0.1:{port}/stream"),
        ])
        .args([
            "-t",
            &seconds.to_string(),
            "-f",
            "s16le",
            "-ac",
            "2",
            "-ar",
            &rate.to_string(),
            "-",
        ])
        .output()
        .unwrap();
    assert!(decoded.status.success());
    let stderr = String::from_utf8_lossy(&decoded.stderr);
    assert!(
        stderr
            .lines()
            .all(|l| tolerated.iter().any(|t| l.contains(t))),
        "decoder errors: {stderr}"
    );
    let pcm = decoded
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    (pcm, started.elapsed())
}

#[test]
fn the_stream_is_the_schedule_decoded_by_ffmpeg_with_icy_titles() {
    let noise = Noise::start();
    let (_listener, stream_port) = noise.listen();
    let titles = std::thread::spawn(move || icy_titles(stream_port, 30));
    let drift = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(15));
        super::swarm::metric_of(stream_port, "alluvium_schedule_drift_seconds")
    });
    let connected = chrono::Utc::now();
    let (stream, took) = decode_stream(stream_port, 30);
    // Paced: 30 s of audio cannot arrive much faster than 30 s less the 4 s burst and the
    // up to 1 s a joining player may start ahead of its moment (`JOIN_AHEAD`); a second
    // more for frame and decoder slack. Unpaced, it takes a second.
    assert!(
        took >= Duration::from_secs(23),
        "30 s of audio arrived in {took:?}"
    );
    assert!(stream.len() >= 29 * 44_100 * 2, "{} samples", stream.len());

    // Every half second, a 20 ms window of the stream must be found, sample for sample, in
    // the files' own decoding, in schedule order (a, b, c, a, ...) and advancing with time.
    let (hits, tried) = noise.locate(&stream);
    assert!(
        hits.len() * 10 >= tried * 8,
        "only {} of {tried} windows are the files' audio: {hits:?}",
        hits.len()
    );
    for pair in hits.windows(2) {
        let ((a0, f0, p0), (a1, f1, p1)) = (pair[0], pair[1]);
        if f0 == f1 && p1 > p0 {
            assert_eq!(
                p1 - p0,
                a1 - a0,
                "within a file the stream advances with the file"
            );
        } else {
            assert_eq!(f1, (f0 + 1) % 3, "entries follow the schedule: {hits:?}");
        }
    }
    // In time with the schedule: the stream's first sample is what was on air a burst before
    // the connection (Icecast's joining).
    let (file, pos_s) = noise.check_on_schedule(&hits, connected);
    // The drift metric says where the stream is against the schedule less the burst.
    let (on_air, offset_s) = noise.on_air(connected - BURST);
    let drift = drift.join().unwrap();
    if file == on_air {
        assert!(
            (drift - (pos_s - offset_s)).abs() < 0.35,
            "the metric says {drift:.3} s, the stream is {:.3} s off the schedule",
            pos_s - offset_s
        );
    }

    let titles = titles.join().unwrap();
    assert!(titles.len() >= 5, "{titles:?}");
    for t in &titles {
        assert!(t.starts_with("StreamTitle='Noise Band - Track "), "{t}");
    }
}

#[test]
fn an_entry_with_a_head_longer_than_a_part_plays_from_mid_entry() {
    // A 40 KB comment in the ID3v2 tag: the first frames lie in the file's third part. A
    // listener joining mid-entry needs parts whose play time has passed; the stream asks
    // for them (`Content::want`) and plays the entry on air, on schedule.
    let comment = format!("comment={}", "long liner notes ".repeat(2_400));
    let noise = Noise::start_with(Codec::Mp3, 20, &[comment]);
    let head = std::fs::read(noise.www.path().join("media").join(&noise.names[0])).unwrap();
    assert_eq!(&head[..3], b"ID3");
    let tag = head[6..10]
        .iter()
        .fold(0usize, |acc, &b| (acc << 7) | usize::from(b & 0x7F));
    assert!(tag > 32 * 1024, "the tag is {tag} bytes");
    // Well into the first entry: the parts of its head played (by the schedule) seconds ago.
    let _listener = plays_on_schedule_seconds_into_an_entry(&noise);
}

/// A listener started 7 s into the first entry plays 8 s of the files' audio on schedule;
/// the listener (stopped when dropped) and its stream port, to ask more of it.
fn plays_on_schedule_seconds_into_an_entry(noise: &Noise) -> (Process, u16) {
    std::thread::sleep(Duration::from_secs(7));
    let (listener, stream_port) = noise.listen();
    let connected = chrono::Utc::now();
    let (stream, _) = decode_stream(stream_port, 8);
    let (hits, tried) = noise.locate(&stream);
    assert!(
        hits.len() * 10 >= tried * 8,
        "only {} of {tried} windows are the files' audio: {hits:?}",
        hits.len()
    );
    noise.check_on_schedule(&hits, connected);
    (listener, stream_port)
}

#[test]
fn a_vbr_entry_plays_on_schedule_from_mid_entry() {
    // A Xing seek table maps the entry's time to its bytes: the stream finds the heard
    // moment by it, and the download times each part by the same table.
    let noise = Noise::start_with(Codec::Mp3Vbr, 20, &[]);
    let head = std::fs::read(noise.www.path().join("media").join(&noise.names[0])).unwrap();
    assert!(
        head[..4096].windows(4).any(|w| w == b"Xing"),
        "LAME wrote no Xing frame"
    );
    let (_listener, stream_port) = plays_on_schedule_seconds_into_an_entry(&noise);
    let silence = super::swarm::metric_of(stream_port, "alluvium_stall_seconds_total");
    assert_eq!(silence, 0.0, "{silence} s of silence");
}

#[test]
fn players_play_it_and_two_listeners_ten_seconds_apart_agree() {
    let noise = Noise::start();
    let (_first, port) = noise.listen();
    let url = format!("http://127.0.0.1:{port}/stream");
    // mpg123 and mpv (no audio device) and VLC (as an unprivileged user: it refuses root) play
    // 20 s at once.
    let mpg123 = Command::new(require("mpg123"))
        .args(["--test", "-n", "766", &url]) // 766 frames of 1152 samples: 20 s
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mpv = Command::new(require("mpv"))
        .args(["--no-config", "--ao=null", "--vo=null", "--length=20", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let vlc = Command::new(require("runuser"))
        .args(["-u", "nobody", "--", "env"])
        .arg(format!("HOME={}", home.path().display()))
        .arg(require("cvlc"))
        .args([
            "-vv",
            "-I",
            "dummy",
            "--aout=dummy",
            "--no-video",
            &url,
            "--run-time=20",
            "vlc://quit",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Meanwhile a second listener starts 10 s after the first; both must deliver the same
    // media moment, within 1 s of each other and of the schedule.
    std::thread::sleep(Duration::from_secs(8));
    let (_second, port2) = noise.listen();
    let both = std::thread::scope(|s| {
        let a = s.spawn(|| (chrono::Utc::now(), decode_stream(port, 5).0));
        let b = s.spawn(|| (chrono::Utc::now(), decode_stream(port2, 5).0));
        [a.join().unwrap(), b.join().unwrap()]
    });
    let mut positions = Vec::new();
    for (connected, pcm) in &both {
        let (hits, _) = noise.locate(pcm);
        assert!(!hits.is_empty());
        let (file, pos) = noise.check_on_schedule(&hits, *connected);
        let ms = (*connected - both[0].0).num_milliseconds() as f64 / 1000.0;
        positions.push((file, pos - ms));
    }
    let (a, b) = (positions[0], positions[1]);
    if a.0 == b.0 {
        assert!((a.1 - b.1).abs() < 1.0, "listeners apart: {a:?} vs {b:?}");
    }

    let out = mpg123.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mpg123: {err}");
    assert!(
        err.contains("ICY-META: StreamTitle='Noise Band - Track"),
        "mpg123: {err}"
    );
    assert!(!err.to_lowercase().contains("error"), "mpg123: {err}");
    let out = mpv.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mpv: {text}");
    assert!(
        text.contains("icy-title: Noise Band - Track"),
        "mpv: {text}"
    );
    assert!(!text.contains("Error"), "mpv: {text}");
    let out = vlc.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "vlc: {text}");
    assert!(
        text.contains("New Icy-Title=Noise Band - Track"),
        "vlc did not get the stream: {text}"
    );
    assert!(
        text.contains("using audio decoder module"),
        "vlc did not decode: {text}"
    );
    assert!(!text.contains("decoder error"), "vlc: {text}");
}

#[test]
fn the_stream_stays_up_through_an_outage_and_comes_back_on_schedule() {
    outage(Codec::Mp3);
}

#[test]
fn an_ogg_vorbis_stream_fills_an_outage_with_its_own_silence() {
    outage(Codec::Vorbis);
}

#[test]
fn listeners_whose_clocks_are_minutes_wrong_play_the_same_moment_as_the_schedule() {
    // libfaketime preloaded into the listener itself: the `faketime` program would fork it
    // and leave it running when killed. `$LIB` is the dynamic linker's own expansion.
    require("faketime");
    let lib = "/usr/$LIB/faketime/libfaketime.so.1";
    let clock = |offset| [("LD_PRELOAD", lib), ("FAKETIME", offset)];
    let noise = Noise::start();
    let (_fast, fast) = noise.listen_as(&clock("+90s"), &[]);
    let (_slow, slow) = noise.listen_as(&clock("-45s"), &[]);
    // Their clocks settle (a few probes a second apart) and the entry on air is held.
    std::thread::sleep(Duration::from_secs(8));
    let both = std::thread::scope(|s| {
        let a = s.spawn(|| (chrono::Utc::now(), decode_stream(fast, 5).0));
        let b = s.spawn(|| (chrono::Utc::now(), decode_stream(slow, 5).0));
        [a.join().unwrap(), b.join().unwrap()]
    });
    let mut apart = Vec::new();
    for (port, (connected, pcm)) in [fast, slow].into_iter().zip(&both) {
        let (hits, _) = noise.locate(pcm);
        assert!(!hits.is_empty(), "{}", noise.log(port));
        let (file, pos) = noise.check_on_schedule(&hits, *connected);
        let (on_air, offset) = noise.on_air(*connected - BURST);
        if file == on_air {
            assert!(
                (pos - offset).abs() < 0.5,
                "{:.3} s off the schedule; its log:\n{}",
                pos - offset,
                noise.log(port)
            );
        }
        let since_first = (*connected - both[0].0).num_milliseconds() as f64 / 1000.0;
        apart.push((file, pos - since_first));
    }
    eprintln!("positions (file, s): {apart:?}");
    if apart[0].0 == apart[1].0 {
        assert!((apart[0].1 - apart[1].1).abs() < 0.5, "{apart:?}");
    }
}

#[test]
fn four_listeners_play_on_through_a_minute_without_their_gateway() {
    let mut noise = Noise::start();
    // Uploads as fast as loopback takes them: the default pacing (1.6 times the bitrate)
    // starves a swarm this small whether or not the gateway is up (issue 34).
    let listeners: Vec<(Process, u16)> = (0..4)
        .map(|_| noise.listen_with(&["--upload-limit", "0"]))
        .collect();
    let stall = |p: u16| super::swarm::metric_of(p, "alluvium_stall_seconds_total");
    // A player on each, for the whole outage.
    let readers: Vec<_> = listeners
        .iter()
        .map(|&(_, port)| std::thread::spawn(move || read_stream(port, 70)))
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let before: Vec<f64> = listeners.iter().map(|&(_, p)| stall(p)).collect();
    // SIGKILL, for a minute: ten entry changes of 6 s.
    drop(noise.gw.take());
    std::thread::sleep(Duration::from_secs(20));
    let (_, first) = listeners[0];
    let shown = outages(first);
    assert!(
        shown.iter().any(|o| o["service"] == "gateway"),
        "the outage is shown while it lasts: {shown:?}"
    );
    std::thread::sleep(Duration::from_secs(40));
    for (i, &(_, port)) in listeners.iter().enumerate() {
        let silence = stall(port) - before[i];
        eprintln!("listener {i}: {silence:.2} s of silence in the gateway's minute away");
        assert!(
            silence <= 0.5,
            "listener {i} heard {silence:.2} s of silence without its gateway; its log:\n{}",
            noise.log(port)
        );
    }
    // It comes back on its address: the listeners announce again, with no restart.
    let gw =
        super::gateway::start_gateway(noise.gw_port, &noise.state.path().join("g.sqlite"), &[]);
    noise.gw = Some(gw);
    let deadline = Instant::now() + Duration::from_secs(30);
    while super::swarm::metric_of(noise.gw_port, "alluvium_gateway_peers") < 4.0 {
        assert!(
            Instant::now() < deadline,
            "the listeners did not announce to the gateway back up"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for r in readers {
        let (head, body, _) = r.join().unwrap();
        assert!(head.starts_with("http/1.0 200"), "{head}");
        assert!(
            body.len() > 60 * 16_000,
            "the stream broke off: {} bytes",
            body.len()
        );
    }
    // Said once when it began, once when it ended, and no longer shown.
    let log = noise.log(first);
    let said = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    assert_eq!(said("gateway unreachable"), 1, "{log}");
    assert_eq!(said("gateway reachable again"), 1, "{log}");
    assert!(outages(first).is_empty());
    assert_eq!(
        super::swarm::metric_of(first, "alluvium_outages_total{service=\"gateway\"}"),
        1.0
    );
}

/// The outages a listener's `/status-json.xsl` lists.
fn outages(stream_port: u16) -> Vec<Value> {
    let reply = super::get(stream_port, "/status-json.xsl", &[]);
    let status: Value = serde_json::from_slice(&reply.body).unwrap();
    status["icestats"]["source"]["alluvium"]["outages"]
        .as_array()
        .cloned()
        .unwrap()
}

fn outage(codec: Codec) {
    let mut noise = Noise::start_as(codec);
    let (_listener, port) = noise.listen();
    let log_path = noise.log_of(port);
    let log = |what: &str| {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        text.lines().filter(|l| l.contains(what)).count()
    };
    let rate = codec.rate();
    let tolerated = codec.tolerated();
    let reader = std::thread::spawn(move || decode_stream_at(port, 30, rate, tolerated));
    // Every source goes: the origin stops (a lone listener has no peers). What is held runs
    // out within two entries, then the stream plays silence, still connected.
    std::thread::sleep(Duration::from_secs(1));
    drop(noise.nginx.take());
    let stall = |p: u16| super::swarm::metric_of(p, "alluvium_stall_seconds_total");
    let deadline = Instant::now() + Duration::from_secs(20);
    while stall(port) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no stall counted while the origin is down"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Said once, and shown while it lasts.
    assert_eq!(log("origin unreachable"), 1, "{}", noise.log(port));
    assert!(outages(port).iter().any(|o| o["service"] == "origin"));
    // The origin returns on its address: sound resumes on schedule.
    noise.nginx = Some(Nginx::start_at(noise.port, noise.www.path(), ""));
    let (pcm, _) = reader.join().unwrap();
    assert!(
        pcm.len() >= 29 * 2 * rate,
        "the stream broke off: {} samples",
        pcm.len()
    );
    let silent_windows = pcm
        .chunks(rate / 10)
        .filter(|w| w.iter().all(|&x| x == 0))
        .count();
    assert!(silent_windows >= 10, "no silence during the outage");
    let tail = &pcm[pcm.len() - 5 * 2 * rate..];
    let (hits, tried) = noise.locate(tail);
    assert!(
        hits.len() * 10 >= tried * 7,
        "sound did not come back: {} of {tried}",
        hits.len()
    );
    assert!(stall(port) >= 1.0);
    assert_eq!(log("origin reachable again"), 1, "{}", noise.log(port));
    assert!(outages(port).is_empty());
}

/// Reads `/stream` raw (asking for ICY metadata, which an Ogg stream does not add) for
/// `seconds`: the response head, and per logical stream its codec and comment `TITLE`.
/// Checks on the way that the body starts with a stream's first page, every page's CRC holds,
/// and each logical stream's pages are numbered without a gap.
fn ogg_links(port: u16, seconds: u64) -> (String, Vec<(alluvium_media::OggCodec, String)>) {
    use alluvium_media::{ogg_head, page_info, FLAG_BOS};
    let (head, raw, split) = read_stream(port, seconds);
    let body = &raw[split..];
    let mut links = Vec::new();
    let mut seqs = std::collections::HashMap::new();
    let mut at = 0;
    while at + 27 <= body.len() {
        let Ok(info) = page_info(&body[at..]) else {
            // Only the last page may be cut off by the end of the read.
            let len = alluvium_media::page_len(&body[at..]).unwrap();
            assert!(len.is_none_or(|l| at + l > body.len()), "bad page at {at}");
            break;
        };
        if at == 0 {
            assert!(
                info.flags & FLAG_BOS != 0,
                "the stream must start a logical stream"
            );
        }
        let seq = u32::from_le_bytes(body[at + 18..at + 22].try_into().unwrap());
        if info.flags & FLAG_BOS != 0 {
            assert!(seqs.insert(info.serial, seq).is_none(), "serial reused");
            assert_eq!(seq, 0);
            if let Ok(Some(h)) = ogg_head(&body[at..]) {
                links.push((h.codec, comment_title(&h.packets[1])));
            }
        } else {
            let last = seqs
                .get_mut(&info.serial)
                .expect("a page of a stream that never began");
            assert_eq!(seq, *last + 1, "page sequence gap");
            *last = seq;
        }
        at += info.len;
    }
    (head, links)
}

/// The `TITLE` of a Vorbis or Opus comment packet.
fn comment_title(packet: &[u8]) -> String {
    let skip = if packet.starts_with(b"OpusTags") {
        8
    } else {
        7
    };
    let u32_at = |p: usize| u32::from_le_bytes(packet[p..p + 4].try_into().unwrap()) as usize;
    let mut p = skip + 4 + u32_at(skip);
    let count = u32_at(p);
    p += 4;
    for _ in 0..count {
        let len = u32_at(p);
        let field = String::from_utf8_lossy(&packet[p + 4..p + 4 + len]).to_string();
        if let Some((k, v)) = field.split_once('=') {
            if k.eq_ignore_ascii_case("title") {
                return v.to_string();
            }
        }
        p += 4 + len;
    }
    String::new()
}

/// An Ogg station: joined mid-entry, the stream decodes from its first byte, the decoded
/// audio is the files' audio on schedule, each entry is a new logical stream titled in its
/// comments (what ffmpeg reports), and no ICY metadata is mixed into the Ogg pages.
fn an_ogg_station_plays(codec: Codec) {
    let noise = Noise::start_as(codec);
    let (_listener, port) = noise.listen();
    let mid_entry = || loop {
        let now = chrono::Utc::now();
        let (file, offset) = noise.on_air(now - BURST);
        if (1.5..3.5).contains(&offset) {
            return (now, file);
        }
        std::thread::sleep(Duration::from_millis(150));
    };

    // ffprobe, joining mid-entry, reports the entry's title from the stream's comments.
    let (_, file) = mid_entry();
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream_tags=title:format_tags=title",
        ])
        .arg(format!("http://127.0.0.1:{port}/stream"))
        .output()
        .unwrap();
    let tags = String::from_utf8_lossy(&probe.stdout).to_lowercase();
    assert!(
        tags.contains(&format!("tag:title=track {}", file + 1)),
        "ffprobe: {tags} {}",
        String::from_utf8_lossy(&probe.stderr)
    );

    let (connected, file) = mid_entry();
    let raw = std::thread::spawn(move || ogg_links(port, 14));
    let tolerated = codec.tolerated();
    let (pcm, took) = decode_stream_at(port, 14, codec.rate(), tolerated);
    // Paced: the 5 s lead, plus up to a page (these are about 1 s) sent whole.
    assert!(took >= Duration::from_secs(7), "14 s arrived in {took:?}");
    let (hits, tried) = noise.locate(&pcm);
    assert!(
        hits.len() * 10 >= tried * 7,
        "only {} of {tried} windows are the files' audio: {hits:?}",
        hits.len()
    );
    for pair in hits.windows(2) {
        let ((a0, f0, p0), (a1, f1, p1)) = (pair[0], pair[1]);
        if f0 == f1 && p1 > p0 {
            assert_eq!(
                p1 - p0,
                a1 - a0,
                "within a file the stream advances with it"
            );
        } else {
            assert_eq!(f1, (f0 + 1) % 3, "entries follow the schedule: {hits:?}");
        }
    }
    noise.check_on_schedule(&hits, connected);

    let (head, links) = raw.join().unwrap();
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert!(head.contains("content-type: audio/ogg"), "{head}");
    assert!(!head.contains("icy-metaint"), "{head}");
    let want = match codec {
        Codec::Opus => alluvium_media::OggCodec::Opus,
        _ => alluvium_media::OggCodec::Vorbis,
    };
    assert!(links.len() >= 3, "{links:?}");
    for (i, (c, title)) in links.iter().enumerate() {
        assert_eq!(*c, want);
        assert_eq!(*title, format!("Track {}", (file + i) % 3 + 1), "{links:?}");
    }
}

#[test]
fn an_ogg_vorbis_station_plays_through_ffmpeg() {
    an_ogg_station_plays(Codec::Vorbis);
}

#[test]
fn an_opus_station_plays_through_ffmpeg() {
    an_ogg_station_plays(Codec::Opus);
}

/// Plays `/stream` on `port` for `seconds` as a player does: the body's bytes, and when the
/// first 64 KiB (4 s at 128 kbit/s, a player's prebuffer) had come.
fn play(port: u16, seconds: u64) -> (usize, Option<Duration>) {
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let deadline = started + Duration::from_secs(seconds);
    let (mut got, mut prebuffered) = (0, None);
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        if got >= 64 * 1024 && prebuffered.is_none() {
            prebuffered = Some(started.elapsed());
        }
    }
    (got, prebuffered)
}

/// `n` listeners on this machine, each with a player from the moment it starts, joining as
/// the station starts or mid-entry: none plays a moment of silence over 20 s, three entry
/// changes included (design section 6).
fn few_listeners_hear_no_silence(n: usize, mid_entry: bool) {
    const SECONDS: u64 = 20;
    let noise = Noise::start();
    // Mid-entry: the moment players hear 2.5-3.5 s into an entry.
    while mid_entry && !(2.5..3.5).contains(&noise.on_air(chrono::Utc::now() - BURST).1) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut listeners = Vec::new();
    let mut players = Vec::new();
    for _ in 0..n {
        let (listener, port) = noise.spawn_listener(&[], &[]);
        players.push(std::thread::spawn(move || play(port, SECONDS)));
        listeners.push((listener, port));
    }
    for ((_, port), player) in listeners.iter().zip(players) {
        let (got, prebuffered) = player.join().unwrap();
        let silence = super::swarm::metric_of(*port, "alluvium_stall_seconds_total");
        eprintln!(
            "listener {port}: {got} bytes, 64 KiB after {prebuffered:?}, {silence} s of silence"
        );
        assert_eq!(
            silence,
            0.0,
            "{silence} s of silence; its log:\n{}",
            noise.log(*port)
        );
        // The stream ran: the burst and real time since (128 kbit/s), less a second of slack.
        assert!(
            got as u64 >= 16_000 * (SECONDS - 1),
            "{got} bytes in {SECONDS} s; its log:\n{}",
            noise.log(*port)
        );
    }
}

#[test]
fn two_listeners_joining_as_the_station_starts_hear_no_silence() {
    few_listeners_hear_no_silence(2, false);
}

#[test]
fn three_listeners_joining_mid_entry_hear_no_silence() {
    few_listeners_hear_no_silence(3, true);
}

#[test]
fn eight_listeners_joining_as_the_station_starts_hear_no_silence() {
    few_listeners_hear_no_silence(8, false);
}
