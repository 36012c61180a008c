//! `alluvium fetch`: one file by swarming.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use alluvium_swarm::{download, resolve, spawn_announcer, Announcing, DownloadConfig, Node};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::bad_input;
use crate::swarm_args::{stop_on_ctrl_c, SwarmArgs};

/// Download one file by swarming: from other listeners and the origin, every part verified.
///
/// The gateway gives the file's size, BLAKE3 root and hash tree (hashing it first if it has
/// never seen the URL) and the peers that hold or fetch it. Parts come from many peers at
/// once; the origin is asked by HTTP Range only for parts no peer has. Every part is checked
/// against the tree before it is kept. While it runs (and --seed-for after), it serves what
/// it holds to others on --peer-listen. At the end it prints the root, as b3sum would.
///
/// Example:
///   alluvium fetch http://radio.example/media/night-tide.mp3 --gateway http://gw:7000 -o tide.mp3
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// The file's URL at its origin.
    #[arg(env = "ALLUVIUM_URL")]
    url: String,

    /// Where to write the file [default: its name from the URL, in this folder].
    #[arg(short, long, env = "ALLUVIUM_OUTPUT", value_name = "FILE")]
    output: Option<PathBuf>,

    #[command(flatten)]
    swarm: SwarmArgs,

    /// Address to serve other peers on (port 0 picks a free port).
    #[arg(
        long,
        env = "ALLUVIUM_PEER_LISTEN",
        default_value = "0.0.0.0:0",
        value_name = "ADDR"
    )]
    peer_listen: SocketAddr,

    /// Keep serving the file to others this long after it is complete (e.g. 10m).
    #[arg(long, env = "ALLUVIUM_SEED_FOR", default_value = "0s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    seed_for: Duration,
}

/// Memory for parts when the disk cache fails: the whole file must be held to be written.
const FETCH_MEMORY: usize = 256 << 20;

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let url = url::Url::parse(&args.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| bad_input(anyhow::anyhow!("'{}' is not an http(s) URL", args.url)))?;
    let output = match args.output {
        Some(o) => o,
        None => {
            let name = url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .filter(|n| !n.is_empty() && *n != "." && *n != "..")
                .ok_or_else(|| {
                    bad_input(anyhow::anyhow!(
                        "cannot name the file from {url}: use -o FILE"
                    ))
                })?;
            PathBuf::from(
                percent_encoding::percent_decode_str(name)
                    .decode_utf8_lossy()
                    .to_string(),
            )
        }
    };
    let gateway = args.swarm.gateway()?;
    // Without --cache, parts go to a temporary folder removed at the end.
    let temp_cache = match &args.swarm.cache {
        Some(_) => None,
        None => Some(tempfile::tempdir().context("creating a temporary cache folder")?),
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        stop_on_ctrl_c(cancel.clone());
        let temp = temp_cache.as_ref().map(|t| t.path().to_path_buf());
        let (node, _) = args
            .swarm
            .start_node(temp, FETCH_MEMORY, args.peer_listen, cancel.clone())
            .await?;

        let bar = progress_bar();
        let (info, tree) = resolve(
            &gateway,
            url.as_str(),
            None,
            Duration::from_secs(3600),
            |p| {
                if let Some(bar) = &bar {
                    bar.set_message(format!(
                        "gateway hashing: {} of {} bytes",
                        p.bytes_done,
                        p.size.map_or("?".into(), |s| s.to_string())
                    ));
                }
            },
        )
        .await
        .with_context(|| format!("resolving {url} at the gateway"))?;
        let content = node.store.open(tree.clone());
        spawn_announcer(
            node.clone(),
            gateway.clone(),
            content,
            Announcing::Fetch,
            cancel.clone(),
        );

        let shown = cancel.child_token();
        show_progress(node.clone(), info.size, info.blake3, bar.clone(), &shown);
        let result = download(
            node.clone(),
            &info,
            tree,
            DownloadConfig::default(),
            cancel.clone(),
        )
        .await;
        shown.cancel();
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let content = result.with_context(|| format!("fetching {url}"))?;
        let origin = node.metrics.bytes_from_origin.get();
        let peers = node.metrics.bytes_from_peers.get();
        info!(origin_bytes = origin, peer_bytes = peers, "done");

        write_output(&output, &content).with_context(|| format!("writing {}", output.display()))?;
        crate::out::result(format_args!("{}  {}", info.blake3, output.display()))?;
        eprintln!(
            "{} bytes: {} from peers, {} from the origin",
            info.size, peers, origin
        );
        if !args.seed_for.is_zero() {
            eprintln!(
                "serving it to others for {} (Ctrl-C to stop)",
                humantime::format_duration(args.seed_for)
            );
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(args.seed_for) => {}
            }
        }
        cancel.cancel();
        Ok(())
    })
}

fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    Some(bar)
}

/// Updates the bar (or, off a terminal, logs a line every few seconds) with origin and peer
/// bytes.
fn show_progress(
    node: std::sync::Arc<Node>,
    size: u64,
    root: alluvium_content::Hash,
    bar: Option<ProgressBar>,
    cancel: &CancellationToken,
) {
    alluvium_task::spawn("progress", cancel, progress(node, size, root, bar));
}

async fn progress(
    node: std::sync::Arc<Node>,
    size: u64,
    root: alluvium_content::Hash,
    bar: Option<ProgressBar>,
) {
    if let Some(bar) = &bar {
        bar.set_length(size);
    }
    let mut ticks = 0u32;
    loop {
        let held = node.store.get(&root).map_or(0, |c| {
            let (have, _) = c.have();
            (u64::from(have.count()) * alluvium_content::PART_SIZE).min(size)
        });
        let (o, p) = (
            node.metrics.bytes_from_origin.get(),
            node.metrics.bytes_from_peers.get(),
        );
        let peers = node.known_peers(&root).len();
        match &bar {
            Some(bar) => {
                bar.set_position(held);
                bar.set_message(format!(
                    "peers {peers}, from peers {p} B, from origin {o} B"
                ));
            }
            None if ticks % 20 == 0 => {
                info!(
                    held,
                    size,
                    peers,
                    from_peers = p,
                    from_origin = o,
                    "progress"
                );
            }
            None => {}
        }
        ticks += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Writes the verified content to `path` atomically (a temporary file beside it, renamed).
fn write_output(path: &std::path::Path, content: &alluvium_swarm::Content) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    let parts = content.parts();
    let mut first = 0;
    while first < parts {
        let count = (parts - first).min(64);
        tmp.write_all(&content.read(first, count)?)?;
        first += count;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path)?;
    Ok(())
}
