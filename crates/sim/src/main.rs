//! `cargo run --release -p alluvium-sim -- --help`: one simulated station run, its figures.

use alluvium_sim::{run, Scenario};
use clap::Parser;

/// Simulates listeners swarming one entry of a station with the real picker, each uplink a
/// queue at its rate, and prints what the harness (`../shared/bench`) measures: origin
/// copies, startup, silence per listener. Deterministic for a seed.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Listeners.
    #[arg(long, default_value_t = 30)]
    listeners: usize,
    /// Seconds between arrivals (the first arrives as the entry starts: a cold flash crowd).
    #[arg(long, default_value_t = 1.0)]
    arrival_gap_s: f64,
    /// Each listener's uplink, as a multiple of the bitrate.
    #[arg(long, default_value_t = 2.0)]
    uplink_x: f64,
    /// The origin's uplink, as a multiple of the bitrate.
    #[arg(long, default_value_t = 4.0)]
    origin_x: f64,
    /// The entry's bitrate in kbit/s.
    #[arg(long, default_value_t = 128)]
    kbit: u32,
    /// The entry's length in seconds.
    #[arg(long, default_value_t = 120)]
    seconds: u32,
    /// One-way latency between any two nodes, in ms.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Uploads paced at this multiple of the bitrate (as `--upload-limit auto`, 1.6); 0: the
    /// link's rate.
    #[arg(long, default_value_t = 1.6)]
    pace_x: f64,
    /// Peers whose news each listener follows.
    #[arg(long, default_value_t = 8)]
    neighbours: usize,
    /// Seconds of audio a joining player gets at once; players hear the schedule this late
    /// (`alluvium listen --burst`).
    #[arg(long, default_value_t = 4.0)]
    burst_s: f64,
    /// The seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let scenario = Scenario {
        listeners: a.listeners,
        arrival_gap_ms: (a.arrival_gap_s * 1000.0) as u64,
        uplink_x: a.uplink_x,
        origin_x: a.origin_x,
        kbit: a.kbit,
        seconds: a.seconds,
        latency_ms: a.latency_ms,
        pace_x: (a.pace_x > 0.0).then_some(a.pace_x),
        neighbours: a.neighbours,
        burst_ms: (a.burst_s * 1000.0) as u64,
        seed: a.seed,
    };
    let outcome = run(&scenario)?;
    println!("{}", outcome.summary());
    Ok(())
}
