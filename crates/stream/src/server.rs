//! The stream server (docs/design.md section 4): `/stream` like Icecast, `/status-json.xsl` in
//! Icecast's JSON shape, `/metrics`, and a small page at `/`.
//!
//! A TV station's `/stream` (alias `/stream.ts`) is one MPEG transport stream (`crate::tv`).
//!
//! `/stream` answers `HTTP/1.0 200 OK` with a body that ends when the connection does (no
//! chunked encoding, as Icecast), `Content-Type` of the station's format and the `icy-*`
//! headers; with `Icy-MetaData: 1` it adds `icy-metaint: 16000` and interleaves
//! `StreamTitle` blocks.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode, Version};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::client::{self, Station};
use crate::icy::{IcyWriter, METAINT};
use crate::track::Kind;

/// The routes.
pub fn router(station: Arc<Station>) -> Router {
    Router::new()
        .route("/stream", get(stream))
        .route("/stream.mp3", get(stream))
        .route("/stream.ogg", get(stream))
        .route("/stream.ts", get(stream))
        .route("/live.m3u8", get(live_playlist))
        .route("/hls/{segment}", get(live_segment))
        .route("/hls.js", get(hls_js))
        .route("/hls.js/LICENSE", get(hls_js_license))
        .route("/status-json.xsl", get(status))
        .route("/metrics", get(metrics))
        .route("/", get(page))
        .with_state(station)
}

/// Serves on `listener` until `cancel`.
pub async fn serve(
    station: Arc<Station>,
    listener: tokio::net::TcpListener,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(station))
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

fn station_name(station: &Station) -> (String, String) {
    station
        .state
        .playlist()
        .map(|p| {
            let c = &p.playlist.channel;
            (c.title.clone(), c.description.clone().unwrap_or_default())
        })
        .unwrap_or_else(|| ("Alluvium".into(), String::new()))
}

fn on_air(station: &Station) -> Option<String> {
    let playlist = station.state.playlist()?;
    let on = playlist.schedule.on_air(station.state.heard_now())?;
    let entry = playlist.playlist.entries.get(on.slot.entry)?;
    Some(entry.display_title())
}

/// What comes after the entry on air: start (W3C-DTF) and title of the next few.
fn next_up(station: &Station, count: usize) -> Vec<serde_json::Value> {
    let Some(playlist) = station.state.playlist() else {
        return Vec::new();
    };
    let now = station.state.heard_now();
    playlist
        .schedule
        .slots_from(now)
        .filter(|s| s.start > now)
        .take(count)
        .filter_map(|s| {
            let e = playlist.playlist.entries.get(s.entry)?;
            Some(serde_json::json!({
                "start": alluvium_playlist::time::format_w3cdtf(s.start),
                "title": e.display_title(),
            }))
        })
        .collect()
}

async fn stream(State(station): State<Arc<Station>>, headers: HeaderMap) -> impl IntoResponse {
    let wants_meta = headers
        .get("icy-metadata")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "1");
    let kind = station
        .kind_when_known(std::time::Duration::from_secs(10))
        .await;
    let (name, description) = station_name(&station);
    // Like Icecast: ICY metadata for MP3 only; an Ogg stream names entries in its comments.
    let wants_meta = wants_meta && kind == Kind::Mpeg;
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let icy = wants_meta.then(|| IcyWriter::new(METAINT));
    if kind == Kind::Ts {
        alluvium_task::spawn(
            "player",
            &station.stop,
            crate::tv::run(station.clone(), tx).instrument(tracing::debug_span!("player")),
        );
    } else {
        alluvium_task::spawn(
            "player",
            &station.stop,
            client::run(station.clone(), tx, icy).instrument(tracing::debug_span!("player")),
        );
    }
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    }));
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .version(Version::HTTP_10)
        .header(header::CONTENT_TYPE, kind.mime_type())
        .header(header::CACHE_CONTROL, "no-cache, no-store")
        .header("icy-name", sanitize(&name))
        .header("icy-description", sanitize(&description))
        .header("icy-genre", "Alluvium")
        .header("icy-pub", "0");
    if wants_meta {
        builder = builder.header("icy-metaint", METAINT.to_string());
    }
    builder
        .body(body)
        .unwrap_or_else(|_| (StatusCode::INTERNAL_SERVER_ERROR, "error").into_response())
}

async fn live_playlist(State(station): State<Arc<Station>>) -> Response<Body> {
    if station
        .kind_when_known(std::time::Duration::from_secs(10))
        .await
        != Kind::Ts
    {
        return (
            StatusCode::NOT_FOUND,
            "not a TV station: its stream is /stream\n",
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        station.hls.playlist(&station),
    )
        .into_response()
}

async fn live_segment(
    State(station): State<Arc<Station>>,
    axum::extract::Path(segment): axum::extract::Path<String>,
) -> Response<Body> {
    let seq = segment
        .strip_suffix(".ts")
        .and_then(|s| s.parse::<u64>().ok());
    match seq.and_then(|seq| station.hls.segment(&station, seq)) {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, "video/mp2t"),
                (header::CACHE_CONTROL, "max-age=60"),
            ],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such segment (any more)\n").into_response(),
    }
}

/// A header-safe copy of a text (no control characters, ASCII-folded where needed).
fn sanitize(s: &str) -> HeaderValue {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| {
        let ascii: String = clean
            .chars()
            .map(|c| if c.is_ascii() { c } else { '?' })
            .collect();
        HeaderValue::from_str(&ascii).unwrap_or(HeaderValue::from_static(""))
    })
}

async fn status(State(station): State<Arc<Station>>, headers: HeaderMap) -> impl IntoResponse {
    let (name, description) = station_name(&station);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8000")
        .to_string();
    let m = &station.node.metrics;
    let json = serde_json::json!({
        "icestats": {
            "admin": "",
            "host": host.split(':').next().unwrap_or(""),
            "location": "",
            "server_id": concat!("Alluvium ", env!("CARGO_PKG_VERSION")),
            "source": {
                "listenurl": format!("http://{host}/stream"),
                "listeners": m.stream_clients.get(),
                "server_name": name,
                "server_description": description,
                "server_type": station.kind().mime_type(),
                "title": on_air(&station).unwrap_or_default(),
                "genre": "Alluvium",
                "alluvium": {
                    "bytes_from_origin": m.bytes_from_origin.get(),
                    "bytes_from_peers": m.bytes_from_peers.get(),
                    "bytes_uploaded": m.bytes_uploaded.get(),
                    "peers": m.peers.get(),
                    "stall_seconds": m.stall_seconds.get(),
                    "schedule_drift_seconds": m.schedule_drift_seconds.get(),
                    "outages": m.health().outages().iter().map(|o| serde_json::json!({
                        "service": o.service.name(),
                        "since": o.since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "cause": o.cause,
                    })).collect::<Vec<_>>(),
                    "next": next_up(&station, 5),
                    "on_air": on_air_parts(&station),
                },
            }
        }
    });
    (
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        axum::Json(json),
    )
}

async fn metrics(State(station): State<Arc<Station>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        station.node.metrics.encode(),
    )
}

/// hls.js (Apache-2.0), shipped inside the binary so the page plays HLS in browsers without
/// native support, with no third party to reach.
const HLS_JS: &str = include_str!("../assets/hls.light.min.js");
const HLS_JS_LICENSE: &str = include_str!("../assets/hls.js-LICENSE");
const HLS_JS_VERSION: &str = "1.7.4";

async fn hls_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        HLS_JS,
    )
}

async fn hls_js_license() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        HLS_JS_LICENSE,
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn page(State(station): State<Arc<Station>>) -> Html<String> {
    let (name, description) = station_name(&station);
    let tv = station
        .kind_when_known(std::time::Duration::from_secs(10))
        .await
        == Kind::Ts;
    let burst = station.state.burst().num_milliseconds() as f64 / 1000.0;
    let (player, script, gaps, credits) = if tv {
        (
            "<video id=\"player\" controls autoplay playsinline></video>\n\
             <script src=\"/hls.js\"></script>"
                .to_string(),
            format!(
                "(() => {{ const v = document.getElementById('player'), src = '/live.m3u8';\n\
                 if (window.Hls && Hls.isSupported()) {{\n\
                   const hls = new Hls({{ liveSyncDuration: {burst}, liveMaxLatencyDuration: {max} }});\n\
                   hls.loadSource(src); hls.attachMedia(v);\n\
                   hls.on(Hls.Events.MANIFEST_PARSED, () => v.play().catch(() => {{}}));\n\
                   hls.on(Hls.Events.ERROR, (e, d) => {{ if (!d.fatal) return;\n\
                     if (d.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError(); else hls.startLoad(); }});\n\
                 }} else if (v.canPlayType('application/vnd.apple.mpegurl')) {{ v.src = src; }}\n\
                 }})();",
                max = burst + 8.0
            ),
            "stalled",
            format!(
                " · video played by <a href=\"/hls.js/LICENSE\">hls.js</a> {HLS_JS_VERSION} (Apache-2.0)"
            ),
        )
    } else {
        (
            "<audio id=\"player\" src=\"/stream\" controls autoplay></audio>".to_string(),
            String::new(),
            "of silence",
            String::new(),
        )
    };
    Html(
        include_str!("page.html")
            .replace("{{NAME}}", &escape(&name))
            .replace("{{DESCRIPTION}}", &escape(&description))
            .replace("{{PLAYER}}", &player)
            .replace("{{SCRIPT}}", &script)
            .replace("{{GAPS}}", gaps)
            .replace("{{CREDITS}}", &credits)
            .replace("{{VERSION}}", env!("CARGO_PKG_VERSION")),
    )
}

/// The entry players hear now: its parts, which are held ('0'/'1' each), and the part being
/// heard, for the page's picture.
fn on_air_parts(station: &Station) -> Option<serde_json::Value> {
    let playlist = station.state.playlist()?;
    let heard = station.state.heard_now();
    let on = playlist.schedule.on_air(heard)?;
    let entry = playlist.playlist.entries.get(on.slot.entry)?;
    let root = station.state.root_of(&entry.media_url)?;
    let content = station.node.store.get(&root)?;
    let (have, _) = content.have();
    let parts = content.parts();
    let into = (heard - on.slot.start).num_milliseconds().max(0) as f64;
    let whole = on.slot.duration().num_milliseconds().max(1) as f64;
    let playing = ((into / whole) * f64::from(parts)) as u32;
    let bits: String = (0..parts)
        .map(|p| if have.get(p) { '1' } else { '0' })
        .collect();
    Some(serde_json::json!({
        "title": entry.display_title(),
        "parts": parts,
        "have": bits,
        "playing": playing.min(parts.saturating_sub(1)),
    }))
}
