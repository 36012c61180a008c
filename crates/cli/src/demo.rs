//! `alluvium demo`: a whole station on this machine, in one process: the project's own sample
//! tracks on an embedded origin, a gateway with a temporary store, and N listeners, each with
//! its own peer and stream ports; a live status line shows the swarm at work.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use alluvium_gateway::{Gateway, Store};
use anyhow::Context;
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::bad_input;
use crate::listen::{self, Listener};
use crate::swarm_args::{stop_on_ctrl_c, SwarmArgs};

/// The sample tracks the project made for itself (about 12 s each, 95 kbit/s MP3), built in so
/// the demo needs nothing but this binary.
const TRACKS: [(&str, &[u8]); 3] = [
    (
        "01-low-tide.mp3",
        include_bytes!("../../../examples/station/media/01-low-tide.mp3"),
    ),
    (
        "02-sandbar.mp3",
        include_bytes!("../../../examples/station/media/02-sandbar.mp3"),
    ),
    (
        "03-estuary.mp3",
        include_bytes!("../../../examples/station/media/03-estuary.mp3"),
    ),
];

/// The clips of the project's own TV station (`--video`): test patterns and tones it made
/// for itself (about 15 s each, H.264 and AAC in MPEG-TS, one at another resolution).
const CLIPS: [(&str, &[u8]); 3] = [
    (
        "01-test-card.ts",
        include_bytes!("../../../examples/tv/media/01-test-card.ts"),
    ),
    (
        "02-mandelbrot.ts",
        include_bytes!("../../../examples/tv/media/02-mandelbrot.ts"),
    ),
    (
        "03-colour-bars.ts",
        include_bytes!("../../../examples/tv/media/03-colour-bars.ts"),
    ),
];

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Run a whole station on this machine: an origin, a gateway and listeners, URLs printed.
///
/// The demo writes the built-in sample tracks (or --media) to a temporary folder, broadcasts
/// them (a playlist on air from now, for a day), serves the folder like any web server, runs a
/// gateway with a temporary SQLite store, and starts --listeners listeners a moment apart, each
/// with its own peer port (from --peer-port) and stream port (from --stream-port). It prints
/// every listener's stream and page, then a live status line: bytes the listeners fetched from
/// the origin and from each other, peers, stall seconds, and the drift between listeners.
/// Ctrl-C stops everything and removes the temporary folder.
///
/// --video runs a TV station instead, from the project's own clips: each listener's
/// /stream.ts plays in VLC, mpv or ffplay, and its page plays the video in a browser.
///
/// Example:
///   alluvium demo --listeners 3
///   mpv http://127.0.0.1:8000/stream        # or open http://127.0.0.1:8001/ in a browser
///   alluvium demo --video
///   vlc http://127.0.0.1:8000/stream.ts     # or open http://127.0.0.1:8000/ in a browser
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Listeners to run.
    #[arg(long, env = "ALLUVIUM_LISTENERS", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=50), value_name = "N")]
    listeners: u16,

    /// Stream port of the first listener (the others take the next ports).
    #[arg(
        long,
        env = "ALLUVIUM_STREAM_PORT",
        default_value_t = 8000,
        value_name = "PORT"
    )]
    stream_port: u16,

    /// Peer port of the first listener (the others take the next ports).
    #[arg(
        long,
        env = "ALLUVIUM_PEER_PORT",
        default_value_t = 7001,
        value_name = "PORT"
    )]
    peer_port: u16,

    /// Port of the embedded origin (the web server holding media and playlist).
    #[arg(
        long,
        env = "ALLUVIUM_ORIGIN_PORT",
        default_value_t = 8080,
        value_name = "PORT"
    )]
    origin_port: u16,

    /// Port of the gateway.
    #[arg(
        long,
        env = "ALLUVIUM_GATEWAY_PORT",
        default_value_t = 7000,
        value_name = "PORT"
    )]
    gateway_port: u16,

    /// Broadcast this folder of media files instead of the built-in tracks.
    #[arg(long, env = "ALLUVIUM_MEDIA", value_name = "DIR")]
    media: Option<PathBuf>,

    /// A TV station: the built-in video clips instead of the sample tracks.
    #[arg(long, conflicts_with = "media")]
    video: bool,

    /// Time between listeners' starts, so later ones find peers holding the music.
    #[arg(long, env = "ALLUVIUM_STAGGER", default_value = "2s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    stagger: Duration,
}

/// Ports `first`, `first + 1`, ... for `n` listeners, or bad input when they run past 65535.
fn ports(first: u16, n: u16, what: &str) -> anyhow::Result<Vec<u16>> {
    (0..n)
        .map(|i| {
            first.checked_add(i).filter(|p| *p != 0).ok_or_else(|| {
                bad_input(anyhow::anyhow!(
                    "--{what} {first} leaves no room for {n} listeners"
                ))
            })
        })
        .collect()
}

/// The listeners' stream and peer ports, each port wanted once, and the media folder there.
fn checked_ports(args: &Args) -> anyhow::Result<(Vec<u16>, Vec<u16>)> {
    let stream_ports = ports(args.stream_port, args.listeners, "stream-port")?;
    let peer_ports = ports(args.peer_port, args.listeners, "peer-port")?;
    let mut all: Vec<(u16, String)> = vec![
        (args.origin_port, "--origin-port".into()),
        (args.gateway_port, "--gateway-port".into()),
    ];
    all.extend(stream_ports.iter().map(|p| (*p, "--stream-port".into())));
    all.extend(peer_ports.iter().map(|p| (*p, "--peer-port".into())));
    for (i, (p, what)) in all.iter().enumerate() {
        if let Some((_, other)) = all[..i].iter().find(|(q, _)| q == p) {
            return Err(bad_input(anyhow::anyhow!(
                "port {p} is wanted by both {other} and {what}: move one"
            )));
        }
    }
    if let Some(dir) = &args.media {
        if !dir.is_dir() {
            return Err(bad_input(anyhow::anyhow!(
                "--media {} is not a folder",
                dir.display()
            )));
        }
    }
    Ok((stream_ports, peer_ports))
}

/// Waits until every listener can play the entry on air: `false` if cancelled meanwhile, an
/// error after a minute.
async fn on_air_everywhere(
    listeners: &[Listener],
    cancel: &CancellationToken,
) -> anyhow::Result<bool> {
    let started = tokio::time::Instant::now();
    while !listeners.iter().all(can_play) {
        if started.elapsed() > Duration::from_secs(60) {
            anyhow::bail!(
                "no listener could play the station within a minute (run with -v to see why)"
            );
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(false),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    Ok(true)
}

/// The lines that say where the demo's folder, origin and gateway are.
fn say_where(folder: &std::path::Path, origin: SocketAddr, playlist: &str, gateway: SocketAddr) {
    crate::out::say!(
        "folder    {} (removed when the demo stops)",
        folder.display()
    );
    crate::out::say!("origin    http://{origin}/ (playlist {playlist})");
    crate::out::say!(
        "gateway   http://{gateway}/  report http://{gateway}/report?station={}",
        percent_encoding::utf8_percent_encode(playlist, percent_encoding::NON_ALPHANUMERIC)
    );
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let (stream_ports, peer_ports) = checked_ports(&args)?;

    let work = tempfile::Builder::new()
        .prefix("alluvium-demo-")
        .tempdir()
        .context("making a temporary folder")?;
    let www = work.path().join("www");
    let media = www.join("media");
    std::fs::create_dir_all(&media).with_context(|| format!("creating {}", media.display()))?;
    write_media(&args, &media)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        stop_on_ctrl_c(cancel.clone());

        // The origin: the folder, as any web server would serve it.
        let origin =
            crate::bind(SocketAddr::new(LOCALHOST, args.origin_port), "the origin").await?;
        let origin_addr = origin.local_addr()?;
        let router = alluvium_origin::router(&www);
        alluvium_task::spawn_graceful("origin", &cancel, |stop| async move {
            axum::serve(origin, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });

        // The gateway, with a store that goes with the temporary folder.
        let store_path = work.path().join("gateway.sqlite");
        let store = Store::open_spec(&format!("sqlite:{}", store_path.display()))
            .context("opening the gateway's store")?;
        let gw_listener =
            crate::bind(SocketAddr::new(LOCALHOST, args.gateway_port), "the gateway").await?;
        let gateway_addr = gw_listener.local_addr()?;
        let config = alluvium_gateway::config::Config {
            allow_private: true, // the origin is on this machine
            ..Default::default()
        };
        let gateway =
            Gateway::new(config, store, cancel.clone()).context("starting the gateway")?;
        alluvium_task::spawn_graceful("gateway", &cancel, |stop| async move {
            gateway.serve(gw_listener, stop).await
        });

        // The playlist: on air from now, for a day.
        let base = url::Url::parse(&format!("http://{origin_addr}/media/"))?;
        let rss = www.join("station.rss");
        let playlist_url = crate::broadcast::write_station(
            &media,
            base,
            &rss,
            if args.video {
                "Alluvium Demo TV"
            } else {
                "Alluvium Demo Radio"
            },
            Utc::now(),
            Duration::from_secs(24 * 3600),
        )?;
        say_where(work.path(), origin_addr, &playlist_url, gateway_addr);

        let swarm = SwarmArgs {
            gateway: format!("http://{gateway_addr}"),
            cache: None,
            cache_size: 64 * 1024 * 1024,
            // All on loopback: no thin uplink to keep short, and pacing at 1.6x the bitrate
            // would only slow a joiner's first burst from the one or two peers it has.
            upload_limit: alluvium_swarm::UploadLimit::Unlimited,
        };
        let tv = std::fs::read_dir(&media)?
            .filter_map(Result::ok)
            .any(|e| e.path().extension().is_some_and(|x| x == "ts"));
        let mut listeners: Vec<Listener> = Vec::new();
        for (i, (&stream, &peer)) in stream_ports.iter().zip(&peer_ports).enumerate() {
            if i > 0 {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(args.stagger) => {}
                }
            }
            let listener = listen::start(
                &swarm,
                swarm.gateway()?,
                &playlist_url,
                SocketAddr::new(LOCALHOST, peer),
                SocketAddr::new(LOCALHOST, stream),
                listen::Follow {
                    ahead: 1,
                    burst: listen::DEFAULT_BURST,
                },
                cancel.clone(),
            )
            .await
            .with_context(|| format!("starting listener {}", i + 1))?;
            let stream = if tv { "stream.ts" } else { "stream" };
            crate::out::say!(
                "listener {}  stream http://{}/{stream}  page http://{}/",
                i + 1,
                listener.stream_addr,
                listener.stream_addr
            );
            listeners.push(listener);
        }
        if cancel.is_cancelled() {
            return Ok(());
        }

        if !on_air_everywhere(&listeners, &cancel).await? {
            return Ok(());
        }
        crate::out::say!(
            "on air: {} (Ctrl-C stops)",
            on_air(&listeners[0]).unwrap_or_default()
        );

        status_loop(&listeners, &cancel).await;
        for l in listeners {
            if let Ok(Err(e)) = l.task.await {
                tracing::warn!("listener: {e:#}");
            }
        }
        crate::out::say!("stopped");
        Ok(())
    })
}

/// Puts the station's media in `media`: --media's files, or the built-in tracks or clips.
fn write_media(args: &Args, media: &std::path::Path) -> anyhow::Result<()> {
    match &args.media {
        Some(dir) => copy_media(dir, media),
        None => {
            for (name, bytes) in if args.video { CLIPS } else { TRACKS } {
                std::fs::write(media.join(name), bytes)
                    .with_context(|| format!("writing {}", media.join(name).display()))?;
            }
            Ok(())
        }
    }
}

/// Copies the media files of `from` (not its subfolders) into `to`.
fn copy_media(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The entry on air at the listener's station clock.
fn on_air_entry(l: &Listener) -> Option<alluvium_playlist::Entry> {
    let playlist = l.state.playlist()?;
    let on = playlist.schedule.on_air(l.state.heard_now())?;
    playlist.playlist.entries.get(on.slot.entry).cloned()
}

/// Whether the listener holds what its stream needs to play the entry on air.
fn can_play(l: &Listener) -> bool {
    on_air_entry(l)
        .and_then(|entry| l.state.root_of(&entry.media_url))
        .and_then(|root| l.node.store.get(&root))
        .is_some_and(|content| {
            alluvium_stream::tv::head_ready(content.clone())
                || alluvium_stream::track::Track::open(content).is_some()
        })
}

fn on_air(l: &Listener) -> Option<String> {
    on_air_entry(l).map(|e| e.display_title())
}

/// The swarm in one line, every second on a terminal (every 10 s otherwise), until `cancel`.
async fn status_loop(listeners: &[Listener], cancel: &CancellationToken) {
    let tty = std::io::stdout().is_terminal();
    let every = if tty { 1 } else { 10 };
    let mut tick = tokio::time::interval(Duration::from_secs(every));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let line = status(listeners);
        let mut out = std::io::stdout().lock();
        let _ = if tty {
            write!(out, "\r\x1b[2K{line}")
        } else {
            writeln!(out, "{line}")
        };
        let _ = out.flush();
    }
    if tty {
        crate::out::say!("");
    }
}

/// `origin 1.2 MB | peers 0.8 MB (40 %) | 2.0 peers each | stalls 0.0 s | drift 0.00 s | on air`
fn status(listeners: &[Listener]) -> String {
    let (mut origin, mut peers, mut known, mut stalls) = (0u64, 0u64, 0i64, 0f64);
    let mut drifts = Vec::new();
    for l in listeners {
        let m = &l.node.metrics;
        origin += m.bytes_from_origin.get();
        peers += m.bytes_from_peers.get();
        known += m.peers.get();
        stalls += m.stall_seconds.get();
        if m.stream_clients.get() > 0 {
            drifts.push(m.schedule_drift_seconds.get());
        }
    }
    let share = if origin + peers > 0 {
        peers as f64 * 100.0 / (origin + peers) as f64
    } else {
        0.0
    };
    // Listeners with players: how far apart their streams run (all follow one clock here).
    let drift = match (
        drifts.iter().copied().reduce(f64::max),
        drifts.iter().copied().reduce(f64::min),
    ) {
        (Some(hi), Some(lo)) => format!("drift {:.2} s", hi - lo),
        _ => "drift - (no players)".into(),
    };
    format!(
        "origin {} | peers {} ({share:.0} %) | {:.1} peers each | stalls {stalls:.1} s | {drift} | {}",
        mb(origin),
        mb(peers),
        known as f64 / listeners.len().max(1) as f64,
        listeners
            .first()
            .and_then(on_air)
            .unwrap_or_else(|| "dead air".into())
    )
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_run_on_and_stop_at_the_end() {
        assert_eq!(
            ports(8000, 3, "stream-port").unwrap(),
            vec![8000, 8001, 8002]
        );
        assert!(ports(65535, 2, "stream-port").is_err());
    }

    #[test]
    fn the_built_in_tracks_are_mp3() {
        for (name, bytes) in TRACKS {
            let info = alluvium_media::probe_data(std::path::Path::new(name), bytes).unwrap();
            assert_eq!(info.format, alluvium_media::Format::Mp3, "{name}");
        }
    }

    #[test]
    fn megabytes() {
        assert_eq!(mb(1_234_567), "1.23 MB");
    }
}
