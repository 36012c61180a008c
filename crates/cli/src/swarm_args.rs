//! Flags shared by the commands that join a swarm (`fetch`, `listen`), and the node they make.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use alluvium_swarm::{Node, NodeConfig, UploadLimit};
use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::bad_input;

#[derive(Debug, clap::Args)]
pub(crate) struct SwarmArgs {
    /// The gateway (content info, hash trees, tracker).
    #[arg(
        long,
        env = "ALLUVIUM_GATEWAY",
        default_value = "http://127.0.0.1:7000",
        value_name = "URL"
    )]
    pub(crate) gateway: String,

    /// Folder for the disk cache of parts.
    #[arg(long, env = "ALLUVIUM_CACHE", value_name = "DIR")]
    pub(crate) cache: Option<PathBuf>,

    /// Most bytes the disk cache holds.
    #[arg(long, env = "ALLUVIUM_CACHE_SIZE", default_value = "1GiB", value_parser = crate::units::parse_size, value_name = "SIZE")]
    pub(crate) cache_size: u64,

    /// Upload at most this much per second to other listeners (e.g. 256KiB, 2mbit; 0: no
    /// limit). A little below what your link uploads (about 90 %) keeps its queue short, so
    /// the parts other listeners need soonest go out first and your own traffic still flows.
    /// `auto`: from the first entry on, 1.6 times the station's bitrate (about 205 kbit/s for a
    /// 128 kbit/s station), then higher while the listeners you send to report that your
    /// answers come as fast as they are paced, settling at about 80 % of what your link
    /// delivers; no limit to listeners on this machine; none for a plain `fetch`.
    #[arg(long, env = "ALLUVIUM_UPLOAD_LIMIT", default_value = "auto", value_parser = parse_upload_limit, value_name = "RATE")]
    pub(crate) upload_limit: UploadLimit,
}

/// `auto`, `0` (no limit), or a rate.
fn parse_upload_limit(s: &str) -> Result<UploadLimit, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(UploadLimit::Auto);
    }
    match crate::units::parse_rate(s)
        .map_err(|e| format!("{e}, or auto (from 1.6 times the station's bitrate, following the link), or 0 (no limit)"))?
    {
        0 => Ok(UploadLimit::Unlimited),
        r => Ok(UploadLimit::Rate(r)),
    }
}

impl SwarmArgs {
    /// The gateway client, or bad input.
    pub(crate) fn gateway(&self) -> anyhow::Result<alluvium_gateway::Client> {
        alluvium_gateway::Client::new(&self.gateway)
            .with_context(|| format!("--gateway {}", self.gateway))
            .map_err(bad_input)
    }

    /// A node caching in `cache` (or `--cache`), serving peers on `listen` until `cancel`.
    pub(crate) async fn start_node(
        &self,
        cache: Option<PathBuf>,
        memory_per_content: usize,
        listen: SocketAddr,
        cancel: CancellationToken,
    ) -> anyhow::Result<(Arc<Node>, SocketAddr)> {
        let node = Node::new(NodeConfig {
            cache_dir: self.cache.clone().or(cache),
            cache_size: self.cache_size,
            memory_per_content,
            upload_limit: self.upload_limit,
            ..NodeConfig::default()
        });
        let addr = node.start_server(listen, cancel).await.with_context(|| {
            format!("binding the peer server to {listen} (is the port in use?)")
        })?;
        info!(%addr, "serving peers");
        Ok((node, addr))
    }
}

/// Cancels `cancel` on Ctrl-C or SIGTERM (how service managers stop a program); a second
/// Ctrl-C quits at once.
pub(crate) fn stop_on_ctrl_c(cancel: CancellationToken) {
    alluvium_task::spawn_graceful("signals", &cancel, stop_on_signals);
}

async fn stop_on_signals(cancel: CancellationToken) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated() => {}
    }
    info!("stopping (Ctrl-C again to quit at once)");
    cancel.cancel();
    let _ = tokio::signal::ctrl_c().await;
    std::process::exit(130);
}

/// Resolves on SIGTERM (never where there is no such signal, or it cannot be watched).
async fn terminated() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        term.recv().await;
        return;
    }
    std::future::pending::<()>().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn upload_limits() {
        assert_eq!(parse_upload_limit("auto"), Ok(UploadLimit::Auto));
        assert_eq!(parse_upload_limit(" AUTO "), Ok(UploadLimit::Auto));
        assert_eq!(parse_upload_limit("0"), Ok(UploadLimit::Unlimited));
        assert_eq!(parse_upload_limit("2mbit"), Ok(UploadLimit::Rate(250_000)));
        assert_eq!(parse_upload_limit("256KiB"), Ok(UploadLimit::Rate(262_144)));
        let e = parse_upload_limit("fast").unwrap_err();
        assert!(e.contains("auto"), "{e}");
    }
}
