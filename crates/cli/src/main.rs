//! `alluvium`: one binary, one module per subcommand. Raw arguments (clap) become a validated
//! config in each module before anything runs; errors are reported with `{:#}` and exit codes
//! 0 (ok), 1 (runtime failure), 2 (bad usage or bad input).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod broadcast;
mod demo;
mod fetch;
mod gateway;
mod listen;
mod out;
mod schedule;
mod serve;
mod swarm_args;
mod timearg;
mod units;

/// Alluvium: a radio station on any ordinary web server, however many people tune in.
///
/// A broadcaster puts media files and a playlist (RSS 1.0, served as application/x-alluvium) on
/// a web server. Listeners follow the playlist, fetch what is on air from each other and from
/// the origin, and play it as a local internet-radio stream.
///
/// Start here:
///   alluvium broadcast ./media --base-url http://radio.example/media -o ./station.rss
///   alluvium serve .                       # a static origin for trying it out
///   alluvium gateway --allow-private       # content info, hash trees and the tracker
///   alluvium fetch http://127.0.0.1:8080/media/01-low-tide.mp3   # one file by swarming
///   alluvium listen http://127.0.0.1:8080/station.rss              # tune in: http://127.0.0.1:8000/
///   alluvium demo                          # all of it on this machine, 3 listeners
///   alluvium schedule http://127.0.0.1:8080/station.rss
///
/// Every flag can also be set in the environment as ALLUVIUM_<FLAG> (for example
/// ALLUVIUM_BASE_URL). Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad input.
#[derive(Debug, Parser)]
#[command(name = "alluvium", version, verbatim_doc_comment, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Log more (-v: debug, -vv: trace). ALLUVIUM_LOG or RUST_LOG set filters in detail.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, env = "ALLUVIUM_VERBOSE")]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    Broadcast(broadcast::Args),
    Demo(demo::Args),
    Fetch(fetch::Args),
    Gateway(gateway::Args),
    Listen(listen::Args),
    Schedule(schedule::Args),
    Serve(serve::Args),
}

/// Binds a server's listening socket, naming the address and the likely cause on failure.
pub(crate) async fn bind(
    addr: std::net::SocketAddr,
    what: &str,
) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context;
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {what} to {addr} (is the port in use?)"))
}

/// Marks an error as the user's input being wrong (exit code 2), not a runtime failure.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub(crate) struct BadInput(#[from] pub(crate) anyhow::Error);

/// Wraps any error as bad input.
pub(crate) fn bad_input(e: impl Into<anyhow::Error>) -> anyhow::Error {
    BadInput(e.into()).into()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(
        cli.verbose,
        matches!(
            cli.command,
            Command::Serve(_) | Command::Gateway(_) | Command::Fetch(_) | Command::Listen(_)
        ),
        // The demo's status line says what matters; its components' logs only on -v.
        matches!(cli.command, Command::Demo(_)),
    );
    let result = match cli.command {
        Command::Broadcast(args) => broadcast::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Fetch(args) => fetch::run(args),
        Command::Gateway(args) => gateway::run(args),
        Command::Listen(args) => listen::run(args),
        Command::Schedule(args) => schedule::run(args),
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `| head` read what it wanted: not a failure.
        Err(e) if out::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.chain().any(|c| c.is::<BadInput>()) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn init_logging(verbose: u8, server: bool, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    // symphonia logs its own probing chatter ("using xing header"); ours says what matters.
    let default = match verbose {
        0 if quiet => "warn,symphonia=off",
        0 => "info,symphonia=off",
        1 => "debug,symphonia=warn",
        _ => "trace",
    };
    let filter = std::env::var("ALLUVIUM_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // Servers log with timestamps; one-shot commands read better without.
    if server {
        builder.init();
    } else {
        builder.without_time().init();
    }
}
