//! `alluvium listen`: follow a station and keep what is on air and next downloading.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alluvium_station::{self as station, StationConfig, StationState};
use alluvium_swarm::store::DEFAULT_MEMORY_PER_CONTENT;
use alluvium_swarm::{Node, PickerConfig};
use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::bad_input;
use crate::swarm_args::{stop_on_ctrl_c, SwarmArgs};

/// Tune in to a station: follow its playlist and swarm what is on air and what comes next.
///
/// The playlist is re-read as often as it says (sy:updatePeriod/Frequency), and the web
/// server's Date header corrects a wrong local clock, so every listener works on the same
/// moment of the schedule. Each entry is fetched from other listeners and, for parts no peer
/// has in time, from its origin, every part verified, nearest its play time first; what this
/// listener holds is served to others on --peer-listen.
///
/// The station plays as a local internet-radio stream at http://STREAM-LISTEN/stream, paced
/// in real time (MP3 stations with ICY titles, Ogg Vorbis and Opus stations as a chained Ogg
/// stream): open it in VLC, mpv, mpg123 or a browser (http://STREAM-LISTEN/ has a player and
/// the swarm's numbers). Like Icecast, a player that connects gets the last --burst seconds at
/// once and then real time, so it starts at once and every player hears the same moment.
/// Swarm numbers are also logged and at /metrics.
///
/// Example:
///   alluvium listen http://radio.example/station.rss --gateway http://gw.example:7000
///   mpv http://127.0.0.1:8000/stream
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// The station's playlist URL.
    #[arg(env = "ALLUVIUM_PLAYLIST_URL")]
    playlist_url: String,

    #[command(flatten)]
    swarm: SwarmArgs,

    /// Address to serve other listeners on (port 0 picks a free port).
    #[arg(
        long,
        env = "ALLUVIUM_PEER_LISTEN",
        default_value = "0.0.0.0:7001",
        value_name = "ADDR"
    )]
    peer_listen: SocketAddr,

    /// Address of the local stream for players (/stream) and its page (/).
    #[arg(
        long,
        env = "ALLUVIUM_STREAM_LISTEN",
        default_value = "127.0.0.1:8000",
        value_name = "ADDR"
    )]
    stream_listen: SocketAddr,

    /// Entries after the one on air to fetch ahead.
    #[arg(long, env = "ALLUVIUM_AHEAD", default_value_t = 1, value_name = "N")]
    ahead: usize,

    /// Seconds of audio a player gets at once when it connects, as Icecast's burst-on-connect
    /// does: players start at once from audio every peer already holds, and every player
    /// hears the schedule this much late, all alike. 0 plays at the scheduled moment.
    #[arg(
        long,
        env = "ALLUVIUM_BURST",
        default_value_t = DEFAULT_BURST.as_secs_f64(),
        value_name = "SECONDS",
        value_parser = parse_burst
    )]
    burst: f64,
}

/// Icecast's 64 KiB burst-on-connect at 128 kbit/s; Chromium waits for about 4 s of audio.
pub(crate) const DEFAULT_BURST: Duration = Duration::from_secs(4);

/// The longest burst: players would hear the schedule this late, and a joiner's first ask
/// would reach back past what peers keep of an entry on air.
const MAX_BURST_S: f64 = 30.0;

fn parse_burst(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(0.0..=MAX_BURST_S).contains(&v) {
        return Err(format!("{v} s: the burst must be 0 to {MAX_BURST_S} s"));
    }
    Ok(v)
}

/// How a listener follows its station.
pub(crate) struct Follow {
    /// Entries after the one on air to fetch ahead.
    pub(crate) ahead: usize,
    /// The audio a joining player gets at once (see `Args::burst`).
    pub(crate) burst: Duration,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    url::Url::parse(&args.playlist_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            bad_input(anyhow::anyhow!(
                "'{}' is not an http(s) playlist URL",
                args.playlist_url
            ))
        })?;
    let gateway = args.swarm.gateway()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        stop_on_ctrl_c(cancel.clone());
        let listener = start(
            &args.swarm,
            gateway,
            &args.playlist_url,
            args.peer_listen,
            args.stream_listen,
            Follow {
                ahead: args.ahead,
                burst: Duration::from_secs_f64(args.burst),
            },
            cancel,
        )
        .await?;
        crate::out::say!(
            "peer server and metrics at http://{}/metrics",
            listener.peer_addr
        );
        crate::out::say!("stream at http://{}/stream", listener.stream_addr);
        crate::out::say!("page at http://{}/", listener.stream_addr);
        listener.task.await?
    })
}

/// A running listener: its node, where it serves, and the task following the station.
pub(crate) struct Listener {
    pub(crate) node: Arc<Node>,
    pub(crate) state: Arc<StationState>,
    pub(crate) peer_addr: SocketAddr,
    pub(crate) stream_addr: SocketAddr,
    pub(crate) task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts a listener: the peer server on `peer_listen`, the stream on `stream_listen`, and
/// the station follower, until `cancel`.
pub(crate) async fn start(
    swarm: &SwarmArgs,
    gateway: alluvium_gateway::Client,
    playlist_url: &str,
    peer_listen: SocketAddr,
    stream_listen: SocketAddr,
    follow: Follow,
    cancel: CancellationToken,
) -> anyhow::Result<Listener> {
    let (node, peer_addr) = swarm
        .start_node(
            None,
            DEFAULT_MEMORY_PER_CONTENT,
            peer_listen,
            cancel.clone(),
        )
        .await?;
    let state = StationState::new(follow.burst);
    let player = Arc::new(alluvium_stream::Station::new(
        node.clone(),
        state.clone(),
        cancel.clone(),
    ));
    let listener = crate::bind(stream_listen, "the stream server").await?;
    let stream_addr = listener.local_addr()?;
    alluvium_task::spawn_graceful("stream-server", &cancel, |stop| {
        alluvium_stream::serve(player, listener, stop)
    });
    let config = StationConfig {
        playlist_url: playlist_url.to_string(),
        ahead: follow.ahead,
        picker: PickerConfig::live(),
    };
    let task = alluvium_task::spawn_awaited("station", &cancel, |cancel| {
        station::run(node.clone(), gateway, config, state.clone(), cancel).map(|r| {
            r.map_err(|e| match e {
                station::StationError::Unusable { .. } => bad_input(e),
                other => anyhow::Error::new(other),
            })
        })
    });
    Ok(Listener {
        node,
        state,
        peer_addr,
        stream_addr,
        task,
    })
}
