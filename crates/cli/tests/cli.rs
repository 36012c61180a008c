//! End to end with the real programs: `alluvium broadcast` -> rapper (RDF/XML), real nginx and
//! Apache with the shipped snippets, `alluvium serve`, and `alluvium schedule --json`.
//! Needs nginx, apache2, rapper on PATH (`./test.sh` installs them); never skips.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use alluvium_testkit::{free_port, require, wait_for_port, Process};
use serde_json::Value;

#[path = "e2e/browser.rs"]
mod browser;
#[path = "e2e/demo.rs"]
mod demo;
#[path = "e2e/gateway.rs"]
mod gateway;
#[path = "e2e/scale.rs"]
mod scale;
#[path = "e2e/stream.rs"]
mod stream;
#[path = "e2e/swarm.rs"]
mod swarm;
#[path = "e2e/tv.rs"]
mod tv;

const BIN: &str = env!("CARGO_BIN_EXE_alluvium");
const START: &str = "2026-11-25T20:00:00Z";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `alluvium broadcast MEDIA --base-url BASE/media --start now EXTRA... -o OUT`: a schedule
/// starting now, for the tests that listen to it.
fn broadcast_now(media: &Path, base: &str, out: &Path, extra: &[&str]) -> Output {
    broadcast_from("now", media, base, out, extra)
}

/// `alluvium broadcast` of a station on air from `start` (a time or `now`).
fn broadcast_from(start: &str, media: &Path, base: &str, out: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("broadcast")
        .arg(media)
        .args(["--base-url", &format!("{base}/media"), "--start", start])
        .args(extra)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap()
}

fn alluvium(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// A station folder the web servers can read: www/media (the sample tracks) + www/station.rss.
struct Station {
    _dir: tempfile::TempDir,
    root: PathBuf,
    www: PathBuf,
}

fn station(base_url: &str) -> Station {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let www = root.join("www");
    let media = www.join("media");
    std::fs::create_dir_all(&media).unwrap();
    for entry in std::fs::read_dir(repo().join("examples/station/media")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), media.join(entry.file_name())).unwrap();
    }
    std::fs::write(media.join("README.txt"), "not media").unwrap();
    // A TV clip beside the station, for its type.
    let tv = www.join("tv");
    std::fs::create_dir_all(&tv).unwrap();
    std::fs::copy(
        repo().join("examples/tv/media/03-colour-bars.ts"),
        tv.join("bars.ts"),
    )
    .unwrap();
    // Web servers run as an unprivileged user: let them in.
    use std::os::unix::fs::PermissionsExt;
    for p in [&root, &www, &media, &tv] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = alluvium(&[
        "broadcast",
        media.to_str().unwrap(),
        "--base-url",
        &format!("{base_url}/media"),
        "--start",
        START,
        "--repeat",
        "2",
        "--title",
        "Test Radio",
        "-o",
        www.join("station.rss").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "broadcast failed: {stderr}");
    assert!(
        stderr.contains("README.txt"),
        "the non-media file is named in a warning: {stderr}"
    );
    // Uploaded an hour ago: Apache gives files changed within the last second only a weak
    // ETag, which (rightly) never satisfies If-Range.
    let past = std::time::SystemTime::now() - Duration::from_secs(3600);
    for path in [www.join("station.rss")].into_iter().chain(
        std::fs::read_dir(&media)
            .unwrap()
            .map(|e| e.unwrap().path()),
    ) {
        std::fs::File::options()
            .append(true)
            .open(&path)
            .unwrap()
            .set_modified(past)
            .unwrap();
    }
    Station {
        _dir: dir,
        root,
        www,
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 GET, so the checks see exactly what the server sent.
fn get(port: u16, path: &str, extra: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in extra {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// What every origin must do for a station: the playlist's type, ranges, validators.
fn check_origin(port: u16, station: &Station, server: &str) {
    let playlist = get(port, "/station.rss", &[]);
    assert_eq!(playlist.status, 200, "{server}");
    assert_eq!(
        playlist
            .header("content-type")
            .map(|t| t.split(';').next().unwrap()),
        Some("application/x-alluvium"),
        "{server}"
    );
    assert_eq!(
        playlist.body,
        std::fs::read(station.www.join("station.rss")).unwrap(),
        "{server}"
    );

    let clip = get(port, "/tv/bars.ts", &[("Range", "bytes=0-187")]);
    assert_eq!(clip.header("content-type"), Some("video/mp2t"), "{server}");

    let file = std::fs::read(station.www.join("media/02-sandbar.mp3")).unwrap();
    let full = get(port, "/media/02-sandbar.mp3", &[]);
    assert_eq!(full.status, 200, "{server}");
    assert_eq!(full.header("content-type"), Some("audio/mpeg"), "{server}");
    assert_eq!(full.body, file, "{server}");
    let etag = full.header("etag").expect("an ETag").to_string();
    assert!(full.header("last-modified").is_some(), "{server}");

    let part = get(
        port,
        "/media/02-sandbar.mp3",
        &[("Range", "bytes=16384-32767")],
    );
    assert_eq!(part.status, 206, "{server}");
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 16384-32767/{}", file.len()).as_str()),
        "{server}"
    );
    assert_eq!(part.body, &file[16384..32768], "{server}");

    let same = get(
        port,
        "/media/02-sandbar.mp3",
        &[("Range", "bytes=0-99"), ("If-Range", &etag)],
    );
    assert_eq!(
        (same.status, same.body.len()),
        (206, 100),
        "{server}: If-Range with the current ETag"
    );
    let changed = get(
        port,
        "/media/02-sandbar.mp3",
        &[("Range", "bytes=0-99"), ("If-Range", "\"another-version\"")],
    );
    assert_eq!(
        (changed.status, changed.body.len()),
        (200, file.len()),
        "{server}: If-Range with a stale ETag"
    );
    let cached = get(port, "/media/02-sandbar.mp3", &[("If-None-Match", &etag)]);
    assert_eq!(cached.status, 304, "{server}");
    let beyond = get(
        port,
        "/media/02-sandbar.mp3",
        &[("Range", "bytes=99999999-")],
    );
    assert_eq!(beyond.status, 416, "{server}");
}

#[test]
fn broadcast_writes_valid_rdf_with_every_item_time_and_enclosure() {
    let rapper = require("rapper");
    let st = station("http://radio.example");
    let playlist = st.www.join("station.rss");
    let check = Command::new(&rapper)
        .args(["-i", "rdfxml", "-c"])
        .arg(&playlist)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "rapper rejects the playlist: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    let triples = Command::new(&rapper)
        .args(["-q", "-i", "rdfxml", "-o", "ntriples"])
        .arg(&playlist)
        .output()
        .unwrap();
    assert!(triples.status.success());
    let triples = String::from_utf8(triples.stdout).unwrap();
    let items: Vec<&str> = triples
        .lines()
        .filter(|l| {
            l.contains(
                "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://purl.org/rss/1.0/item>",
            )
        })
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(items.len(), 6, "3 files x 2 repeats:\n{triples}");
    for item in &items {
        let has = |predicate: &str| {
            triples
                .lines()
                .any(|l| l.starts_with(&format!("{item} <{predicate}>")))
        };
        assert!(
            has("http://purl.org/rss/1.0/modules/event/startdate"),
            "{item} has no ev:startdate"
        );
        assert!(
            has("http://purl.org/rss/1.0/modules/event/enddate"),
            "{item} has no ev:enddate"
        );
        assert!(
            has("http://purl.oclc.org/net/rss_2.0/enc#enclosure"),
            "{item} has no enclosure"
        );
        assert!(
            has("http://purl.org/dc/elements/1.1/identifier"),
            "{item} has no dc:identifier"
        );
    }
    // The enclosure resources carry type and length.
    // One enclosure resource per file (a file airing twice has one URL), each typed.
    let typed: std::collections::BTreeSet<&str> = triples
        .lines()
        .filter(|l| l.contains("<http://purl.oclc.org/net/rss_2.0/enc#type> \"audio/mpeg\""))
        .collect();
    assert_eq!(typed.len(), 3, "{triples}");
    assert!(triples.contains(&format!("<http://radio.example/station.rss#{START}>")));
}

#[test]
fn broadcast_hashes_match_the_files() {
    let st = station("http://radio.example");
    let out = alluvium(&[
        "schedule",
        st.www.join("station.rss").to_str().unwrap(),
        "--at",
        START,
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    for e in report["entries"].as_array().unwrap() {
        let name = e["media_url"].as_str().unwrap().rsplit('/').next().unwrap();
        let data = std::fs::read(st.www.join("media").join(name)).unwrap();
        assert_eq!(
            e["blake3"].as_str().unwrap(),
            blake3::hash(&data).to_hex().as_str()
        );
        assert_eq!(e["length"].as_u64().unwrap(), data.len() as u64);
    }
}

#[test]
fn broadcast_refuses_mixed_formats_and_leaves_nothing() {
    let st = station("http://radio.example");
    let media = st.www.join("media");
    // A file that is really Ogg, among MP3s.
    let mut ogg = b"OggS\0\x02".to_vec();
    ogg.extend([0u8; 100]);
    std::fs::write(media.join("zz.ogg"), ogg).unwrap();
    let out_file = st.root.join("mixed.rss");
    let wav = st.root.join("tone.wav");
    write_wav(&wav, 22_050);
    std::fs::copy(&wav, media.join("zz-tone.wav")).unwrap();
    let out = alluvium(&[
        "broadcast",
        media.to_str().unwrap(),
        "--base-url",
        "http://r/m",
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("different formats"));
    assert!(!out_file.exists());
    assert!(std::fs::read_dir(&st.root).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));
}

/// A tiny valid WAV file (one second of silence).
fn write_wav(path: &Path, rate: u32) {
    let data_len = rate * 2;
    let mut w = b"RIFF".to_vec();
    w.extend((36 + data_len).to_le_bytes());
    w.extend(b"WAVEfmt ");
    w.extend(16u32.to_le_bytes());
    w.extend(1u16.to_le_bytes());
    w.extend(1u16.to_le_bytes());
    w.extend(rate.to_le_bytes());
    w.extend((rate * 2).to_le_bytes());
    w.extend(2u16.to_le_bytes());
    w.extend(16u16.to_le_bytes());
    w.extend(b"data");
    w.extend(data_len.to_le_bytes());
    w.extend(vec![0u8; data_len as usize]);
    std::fs::write(path, w).unwrap();
}

#[test]
fn nginx_serves_the_station_with_the_shipped_snippet() {
    let nginx = require("nginx");
    let port = free_port();
    let st = station(&format!("http://127.0.0.1:{port}"));
    let conf_dir = st.root.join("nginx");
    std::fs::create_dir_all(conf_dir.join("tmp")).unwrap();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n\
         access_log {d}/access.log;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n\
         fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
         server {{\n    listen 127.0.0.1:{port};\n    root {www};\n    include {snippet};\n  }}\n}}\n",
        d = conf_dir.display(),
        www = st.www.display(),
        snippet = repo().join("contrib/nginx/alluvium.conf").display(),
    );
    std::fs::write(conf_dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(nginx)
        .arg("-p")
        .arg(&conf_dir)
        .arg("-e")
        .arg(conf_dir.join("error.log"))
        .arg("-c")
        .arg(conf_dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Process { child };
    wait_for_port(port, &mut server.child, "nginx");
    check_origin(port, &st, "nginx");
}

#[test]
fn apache_serves_the_station_with_the_shipped_snippet() {
    let apache = require("apache2");
    let port = free_port();
    let st = station(&format!("http://127.0.0.1:{port}"));
    let d = st.root.join("apache");
    std::fs::create_dir_all(&d).unwrap();
    let modules = "/usr/lib/apache2/modules";
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let user = if is_root {
        "User www-data\nGroup www-data\n"
    } else {
        ""
    };
    let conf = format!(
        "ServerRoot \"{d}\"\nServerName 127.0.0.1\nListen 127.0.0.1:{port}\nPidFile {d}/httpd.pid\n\
         DefaultRuntimeDir {d}\nErrorLog {d}/error.log\n{user}\
         LoadModule mpm_event_module {modules}/mod_mpm_event.so\n\
         LoadModule authz_core_module {modules}/mod_authz_core.so\n\
         LoadModule mime_module {modules}/mod_mime.so\n\
         LoadModule headers_module {modules}/mod_headers.so\n\
         TypesConfig /etc/mime.types\nDocumentRoot \"{www}\"\n\
         <Directory \"{www}\">\n  Require all granted\n</Directory>\n\
         LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b\" common\nCustomLog {d}/access.log common\n\
         Include {snippet}\n",
        d = d.display(),
        www = st.www.display(),
        snippet = repo().join("contrib/apache/alluvium.conf").display(),
    );
    std::fs::write(d.join("httpd.conf"), conf).unwrap();
    let child = Command::new(apache)
        .arg("-f")
        .arg(d.join("httpd.conf"))
        .arg("-DFOREGROUND")
        // One process (-X), so stopping it by PID stops all of Apache: a parent killed with
        // SIGKILL would leave its children serving.
        .arg("-X")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Process { child };
    wait_for_port(port, &mut server.child, "apache2");
    check_origin(port, &st, "apache");
}

#[test]
fn alluvium_serve_passes_the_same_checks_and_refuses_escapes() {
    let port = free_port();
    let st = station(&format!("http://127.0.0.1:{port}"));
    std::fs::write(st.root.join("secret.txt"), "secret").unwrap();
    let child = Command::new(BIN)
        .args([
            "serve",
            st.www.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Process { child };
    wait_for_port(port, &mut server.child, "alluvium serve");
    check_origin(port, &st, "alluvium serve");
    for path in [
        "/../secret.txt",
        "/media/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/media/..%2f..%2fsecret.txt",
    ] {
        let reply = get(port, path, &[]);
        assert_eq!(reply.status, 404, "{path}");
        assert!(
            !String::from_utf8_lossy(&reply.body).contains("secret"),
            "{path}"
        );
    }
}

#[test]
fn serve_names_a_port_in_use() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = alluvium(&["serve", ".", "--listen", &addr]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&addr));
    let store = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", store.path().join("g.sqlite").display());
    let out = alluvium(&["gateway", "--listen", &addr, "--store", &store]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&addr));
    let out = alluvium(&["gateway", "--store", "mysql://127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2), "an unknown store is bad input");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("sqlite:PATH") && said.contains("redis://"),
        "{said}"
    );
    let out = alluvium(&["gateway", "--store", "redis://no host/"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a malformed Redis URL is bad input"
    );
}

fn schedule_json(playlist: &Path, at: &str) -> Value {
    let out = alluvium(&["schedule", playlist.to_str().unwrap(), "--at", at, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn schedule_json_lists_entries_and_finds_the_right_one() {
    let st = station("http://radio.example");
    let playlist = st.www.join("station.rss");
    let report = schedule_json(&playlist, START);
    let entries = report["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 6);
    // Back to back from the start, each as long as its file (12 s tracks).
    assert_eq!(entries[0]["start"], START);
    for pair in entries.windows(2) {
        assert_eq!(pair[0]["end"], pair[1]["start"]);
    }
    for e in entries {
        let d = e["duration_s"].as_f64().unwrap();
        assert!((d - 12.0).abs() < 0.1, "duration {d}");
        assert!(e["title"].is_string() && e["creator"].is_string() && e["media_url"].is_string());
    }
    let titles: Vec<&str> = entries
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["Low Tide", "Sandbar", "Estuary", "Low Tide", "Sandbar", "Estuary"]
    );

    // Inside the second entry, 5 s in.
    let second_start = entries[1]["start"].as_str().unwrap().to_string();
    let inside = alluvium_playlist::time::parse_w3cdtf(&second_start).unwrap()
        + chrono::TimeDelta::seconds(5);
    let r = schedule_json(&playlist, &alluvium_playlist::time::format_w3cdtf(inside));
    assert_eq!(r["on_air"]["title"], "Sandbar");
    assert_eq!(r["on_air"]["offset_s"], 5.0);
    assert_eq!(r["next"][0]["title"], "Estuary");

    // Exactly at a boundary: the new entry, at offset 0.
    let r = schedule_json(&playlist, &second_start);
    assert_eq!(
        (
            r["on_air"]["title"].as_str(),
            r["on_air"]["offset_s"].as_f64()
        ),
        (Some("Sandbar"), Some(0.0))
    );

    // Before the schedule and after it: nothing on air.
    let r = schedule_json(&playlist, "2026-11-25T19:00:00Z");
    assert!(r["on_air"].is_null());
    assert_eq!(r["next"][0]["start"], START);
    assert_eq!(r["next_change"], START);
    let end = entries[5]["end"].as_str().unwrap();
    let r = schedule_json(&playlist, end);
    assert!(r["on_air"].is_null());
    assert_eq!(r["next"].as_array().unwrap().len(), 0);
}

#[test]
fn schedule_between_entries_and_bad_playlists() {
    let dir = tempfile::tempdir().unwrap();
    let gapped = dir.path().join("gapped.rss");
    let item = |start: &str, end: &str, title: &str| {
        format!(
            "<item rdf:about=\"http://r/s.rss#{start}\"><title>{title}</title>\
             <ev:startdate>{start}</ev:startdate><ev:enddate>{end}</ev:enddate>\
             <enc:enclosure rdf:resource=\"http://r/{title}.mp3\"/></item>"
        )
    };
    let doc = format!(
        "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\" \
         xmlns:enc=\"http://purl.oclc.org/net/rss_2.0/enc#\" xmlns:ev=\"http://purl.org/rss/1.0/modules/event/\">\
         <channel rdf:about=\"http://r/s.rss\"><title>Gaps</title></channel>{}{}{}</rdf:RDF>",
        item("2026-01-01T10:00:00Z", "2026-01-01T10:01:00Z", "a"),
        item("2026-01-01T10:05:00Z", "2026-01-01T10:06:00Z", "b"),
        "<item rdf:about=\"http://r/s.rss#bad\"><title>broken</title><ev:startdate>soon</ev:startdate></item>",
    );
    std::fs::write(&gapped, doc).unwrap();
    let out = alluvium(&[
        "schedule",
        gapped.to_str().unwrap(),
        "--at",
        "2026-01-01T10:03:00Z",
        "--json",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken") && stderr.contains("skipped"),
        "warning names the entry: {stderr}"
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["on_air"].is_null(), "between entries nothing is on air");
    assert_eq!(r["next_change"], "2026-01-01T10:05:00Z");
    assert_eq!(r["next"][0]["title"], "b");

    let human = alluvium(&[
        "schedule",
        gapped.to_str().unwrap(),
        "--at",
        "2026-01-01T10:03:00Z",
    ]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("off air until 2026-01-01T10:05:00Z"));

    let junk = dir.path().join("junk.rss");
    std::fs::write(&junk, "<rss version=\"2.0\"/>").unwrap();
    let out = alluvium(&["schedule", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 1, column 1") && stderr.contains("RSS 2.0"),
        "{stderr}"
    );

    let missing = alluvium(&["schedule", dir.path().join("nope.rss").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
    let bad_time = alluvium(&["schedule", gapped.to_str().unwrap(), "--at", "teatime"]);
    assert_eq!(bad_time.status.code(), Some(2));
}

#[test]
fn help_teaches() {
    let out = alluvium(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["broadcast", "schedule", "serve", "ALLUVIUM_"] {
        assert!(help.contains(word), "{word} missing from --help:\n{help}");
    }
    let out = alluvium(&["broadcast", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Example")
            && help.contains("--base-url")
            && help.contains("ALLUVIUM_BASE_URL"),
        "{help}"
    );
    assert_eq!(alluvium(&["no-such-command"]).status.code(), Some(2));
}

/// A 2003-style playlist (no start times: it loops for ever), for as long a schedule as asked.
const LOOPING: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/"
         xmlns:mm="http://musicbrainz.org/mm/mm-2.0#">
  <channel rdf:about="http://radio.example/station.rss">
    <title>Loop Radio</title>
    <link>http://radio.example/</link>
    <description>Round and round.</description>
    <dc:date>2026-11-25T20:00:00Z</dc:date>
  </channel>
  <item rdf:about="http://radio.example/media/one.mp3">
    <title>One</title>
    <link>http://radio.example/media/one.mp3</link>
    <mm:duration>1000</mm:duration>
  </item>
</rdf:RDF>
"#;

#[test]
fn a_reader_that_goes_away_ends_schedule_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let playlist = dir.path().join("loop.rss");
    std::fs::write(&playlist, LOOPING).unwrap();
    // Far more than a pipe holds, read one line of, then the pipe closed: `| head -1`.
    let mut child = Command::new(BIN)
        .args(["schedule", playlist.to_str().unwrap(), "--next", "100000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
}
