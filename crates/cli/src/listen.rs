//! `alluvium listen`: follow a station and keep what is on air and next downloading.

use std::net::SocketAddr;
use std::path::PathBuf;

use alluvium_swarm::station::{self, StationConfig};
use alluvium_swarm::{Node, NodeConfig, PickerConfig};
use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::bad_input;

/// Tune in to a station: follow its playlist and swarm what is on air and what comes next.
///
/// The playlist is re-read as often as it says (sy:updatePeriod/Frequency), and the web
/// server's Date header corrects a wrong local clock, so every listener works on the same
/// moment of the schedule. Each entry is fetched from other listeners and, for parts no peer
/// has in time, from its origin, every part verified, nearest its play time first; what this
/// listener holds is served to others on --peer-listen.
///
/// Swarm numbers (bytes from origin and from peers, uploads, bad parts, bans) are logged and
/// at http://PEER-LISTEN/metrics. (The local stream for players comes in a later release.)
///
/// Example:
///   alluvium listen http://radio.example/station.rss --gateway http://gw.example:7000
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// The station's playlist URL.
    #[arg(env = "ALLUVIUM_PLAYLIST_URL")]
    playlist_url: String,

    /// The gateway (content info, hash trees, tracker).
    #[arg(
        long,
        env = "ALLUVIUM_GATEWAY",
        default_value = "http://127.0.0.1:7000",
        value_name = "URL"
    )]
    gateway: String,

    /// Address to serve other listeners on (port 0 picks a free port).
    #[arg(
        long,
        env = "ALLUVIUM_PEER_LISTEN",
        default_value = "0.0.0.0:7001",
        value_name = "ADDR"
    )]
    peer_listen: SocketAddr,

    /// Folder for the disk cache of parts [default: memory only].
    #[arg(long, env = "ALLUVIUM_CACHE", value_name = "DIR")]
    cache: Option<PathBuf>,

    /// Most bytes the disk cache holds.
    #[arg(long, env = "ALLUVIUM_CACHE_SIZE", default_value = "1GiB", value_parser = crate::units::parse_size, value_name = "SIZE")]
    cache_size: u64,

    /// Upload at most this much per second to other listeners (e.g. 256KiB, 2mbit).
    #[arg(long, env = "ALLUVIUM_UPLOAD_LIMIT", value_parser = crate::units::parse_rate, value_name = "RATE")]
    upload_limit: Option<u64>,

    /// Entries after the one on air to fetch ahead.
    #[arg(long, env = "ALLUVIUM_AHEAD", default_value_t = 1, value_name = "N")]
    ahead: usize,
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
    let gateway = alluvium_gateway::Client::new(&args.gateway)
        .with_context(|| format!("--gateway {}", args.gateway))
        .map_err(bad_input)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            info!("stopping (Ctrl-C again to quit at once)");
            stop.cancel();
            let _ = tokio::signal::ctrl_c().await;
            std::process::exit(130);
        });
        let node = Node::new(NodeConfig {
            cache_dir: args.cache.clone(),
            cache_size: args.cache_size,
            upload_limit: args.upload_limit,
            ..NodeConfig::default()
        });
        let peer_addr = node
            .start_server(args.peer_listen, cancel.clone())
            .await
            .with_context(|| {
                format!(
                    "binding the peer server to {} (is the port in use?)",
                    args.peer_listen
                )
            })?;
        println!("peer server and metrics at http://{peer_addr}/metrics");
        let config = StationConfig {
            playlist_url: args.playlist_url.clone(),
            ahead: args.ahead,
            picker: PickerConfig::default(),
        };
        station::run(node, gateway, config, cancel.clone())
            .await
            .map_err(|e| match e {
                station::StationError::Unusable { .. } => bad_input(e),
                other => anyhow::Error::new(other),
            })
    })
}
