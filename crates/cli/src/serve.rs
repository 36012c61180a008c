//! `alluvium serve`: a static origin for demos and tests.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use tracing::info;

use crate::bad_input;

/// Serve a folder over HTTP, as a station's web server would.
///
/// Range requests, ETag / Last-Modified / If-Range, and the right types: playlists (.rss) as
/// application/x-alluvium, media as audio/mpeg, audio/ogg, audio/flac... Paths cannot leave
/// DIR. For a real station use nginx or Apache with the snippets in contrib/.
///
/// Example:
///   alluvium broadcast www/media --base-url http://127.0.0.1:8080/media -o www/station.rss
///   alluvium serve www --listen 127.0.0.1:8080
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Folder to serve.
    #[arg(env = "ALLUVIUM_SERVE_DIR")]
    dir: PathBuf,

    /// Address to listen on (port 0 picks a free port).
    #[arg(
        long,
        env = "ALLUVIUM_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    listen: SocketAddr,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if !args.dir.is_dir() {
        return Err(bad_input(anyhow::anyhow!(
            "{} is not a folder",
            args.dir.display()
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = crate::bind(args.listen, "the origin").await?;
        let addr = listener.local_addr()?;
        info!(dir = %args.dir.display(), "serving");
        // The one line scripts wait for: where to reach it.
        crate::out::say!("serving {} at http://{addr}/", args.dir.display());
        axum::serve(listener, alluvium_origin::router(&args.dir))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
                info!("shutting down");
            })
            .await
            .context("serving")
    })
}
