//! `alluvium gateway`: content info, hash trees and the tracker for listeners.

use std::net::SocketAddr;
use std::time::Duration;

use alluvium_gateway::config::{self as limits, Config};
use alluvium_gateway::{Gateway, Store};
use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::bad_input;

/// Run a gateway: content info and hash trees for any media URL, and the tracker.
///
/// For each media URL a listener asks about, the gateway fetches the file from its origin once
/// (however many ask at once), hashes it (BLAKE3, 16 KiB parts) and keeps size, root, origin
/// validators and hash tree in its store; later asks are answered from the store, and the
/// origin is asked again (conditional GET) once --fresh has passed. Listeners announce to it
/// and get back peers for the same content.
///
/// Fetches from private, loopback and link-local addresses are refused unless
/// --allow-private (needed when the origin runs on this machine, as in a demo).
///
/// Example:
///   alluvium gateway --listen 0.0.0.0:7000 --store sqlite:/var/lib/alluvium/gateway.sqlite \
///       --follow https://radio.example/station.rss
///
/// Behind a load balancer, several gateways share one Redis (docs/deployment.md):
///   alluvium gateway --listen 10.0.0.11:7000 --store redis://10.0.0.5:6379/0 \
///       --trusted-proxy 10.0.0.2
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(
        long,
        env = "ALLUVIUM_LISTEN",
        default_value = "127.0.0.1:7000",
        value_name = "ADDR"
    )]
    listen: SocketAddr,

    /// Where content info and hash trees are kept: sqlite:PATH (one gateway; peers kept in its
    /// memory), or redis://[:PASSWORD@]HOST:PORT[/DB], shared by several gateways behind a
    /// load balancer (peers, rate limits and fetch locks kept there too).
    #[arg(
        long,
        env = "ALLUVIUM_STORE",
        default_value = "sqlite:alluvium-gateway.sqlite",
        value_name = "STORE"
    )]
    store: String,

    /// Allow fetching from private, loopback and link-local addresses.
    #[arg(long, env = "ALLUVIUM_ALLOW_PRIVATE")]
    allow_private: bool,

    /// Largest file fetched and hashed (e.g. 4GiB, 500MB).
    #[arg(long, env = "ALLUVIUM_MAX_SIZE", default_value = "4GiB", value_parser = crate::units::parse_size, value_name = "SIZE")]
    max_size: u64,

    /// Origin fetches running at once (more wait their turn).
    #[arg(long, env = "ALLUVIUM_MAX_FETCHES", default_value_t = limits::DEFAULT_MAX_FETCHES as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
    max_fetches: u16,

    /// How long a content request waits for a fetch before answering 202 (ask again).
    #[arg(long, env = "ALLUVIUM_WAIT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    wait: Duration,

    /// How long content info is trusted before the origin is asked whether the file changed.
    #[arg(long, env = "ALLUVIUM_FRESH", default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    fresh: Duration,

    /// Connect timeout towards origins.
    #[arg(long, env = "ALLUVIUM_CONNECT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    connect_timeout: Duration,

    /// Longest silence from an origin before a fetch is abandoned.
    #[arg(long, env = "ALLUVIUM_IDLE_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    idle_timeout: Duration,

    /// Least average rate of an origin's body once it has had 20 s (per second, e.g. 1KiB):
    /// a slower origin's fetch fails and frees its slot.
    #[arg(long, env = "ALLUVIUM_MIN_RATE", default_value = "1KiB", value_parser = crate::units::parse_size, value_name = "SIZE")]
    min_rate: u64,

    /// How often peers are told to announce.
    #[arg(long, env = "ALLUVIUM_ANNOUNCE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    announce_interval: Duration,

    /// Requests per second allowed from one IP address (bursts of 4x); 0 for no limit.
    #[arg(long, env = "ALLUVIUM_RATE_LIMIT", default_value_t = limits::DEFAULT_RATE_LIMIT, value_name = "N")]
    rate_limit: u32,

    /// A station's playlist URL whose next hour is resolved ahead of listeners (repeatable).
    #[arg(
        long,
        env = "ALLUVIUM_FOLLOW",
        value_name = "PLAYLIST_URL",
        value_delimiter = ','
    )]
    follow: Vec<String>,

    /// A load balancer (address or CIDR, repeatable) whose X-Forwarded-For header names the
    /// client: the tracker records and rate-limits that client, not the balancer. From any
    /// other address the header is ignored, so no client can pose as another.
    #[arg(
        long,
        env = "ALLUVIUM_TRUSTED_PROXY",
        value_name = "CIDR",
        value_delimiter = ',',
        value_parser = parse_cidr
    )]
    trusted_proxy: Vec<ipnet::IpNet>,
}

/// `10.0.0.0/8`, `fd00::/8`, or one address.
fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("'{s}' is not an address or CIDR block (e.g. 10.0.0.0/8, 192.0.2.7)"))
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    for f in &args.follow {
        url::Url::parse(f)
            .with_context(|| format!("--follow '{f}'"))
            .map_err(bad_input)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Redis's connection lives on the runtime.
    let store = {
        let _in_runtime = runtime.enter();
        Store::open_spec(&args.store)
            .with_context(|| format!("--store {}", redact(&args.store)))
            .map_err(bad_input)?
    };
    let config = Config {
        allow_private: args.allow_private,
        max_size: args.max_size,
        max_fetches: usize::from(args.max_fetches),
        wait: args.wait,
        fresh: args.fresh,
        connect_timeout: args.connect_timeout,
        idle_timeout: args.idle_timeout,
        min_rate: args.min_rate,
        rate_grace: limits::DEFAULT_RATE_GRACE,
        announce_interval: args.announce_interval,
        peers_per_answer: limits::DEFAULT_PEERS_PER_ANSWER,
        rate_limit: args.rate_limit,
        follow: args.follow,
        trusted_proxies: args.trusted_proxy,
    };
    runtime.block_on(async {
        let listener = crate::bind(args.listen, "the gateway").await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let gateway = Gateway::new(config.clone(), store.clone(), cancel.clone())
            .context("starting the gateway")?;
        for playlist in &config.follow {
            alluvium_gateway::follow::spawn(
                gateway.resolver().clone(),
                playlist.clone(),
                cancel.clone(),
            );
        }
        let shown = redact(&args.store);
        if let Err(e) = store.check().await {
            warn!(store = %shown, error = %e, "the store does not answer yet: answering 503 until it does");
        }
        info!(%addr, store = %shown, allow_private = config.allow_private, "gateway up");
        // The one line scripts wait for: where to reach it.
        crate::out::say!("gateway at http://{addr}/");
        alluvium_task::spawn_graceful("signals", &cancel, stop_on_ctrl_c);
        gateway.serve(listener, cancel).await.context("serving")
    })
}

/// A store spec fit for logs: a Redis password left out.
fn redact(spec: &str) -> String {
    match url::Url::parse(spec) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => spec.to_string(),
    }
}

/// Cancels `stop` on Ctrl-C; a second Ctrl-C quits at once.
async fn stop_on_ctrl_c(stop: CancellationToken) {
    let _ = tokio::signal::ctrl_c().await;
    info!("shutting down (Ctrl-C again to quit at once)");
    stop.cancel();
    let _ = tokio::signal::ctrl_c().await;
    std::process::exit(130);
}
