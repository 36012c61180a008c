//! `cargo run --release -p alluvium-sim -- --help`: one simulated station run, its figures, or
//! a matrix of them (`--matrix crates/sim/scenarios.txt`).

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
    /// Runs every scenario of FILE (lines `name: flags`, `#` comments) and prints them as a
    /// Markdown table, with how long each took.
    #[arg(long, value_name = "FILE")]
    matrix: Option<std::path::PathBuf>,
}

impl Args {
    fn scenario(&self) -> Scenario {
        Scenario {
            listeners: self.listeners,
            arrival_gap_ms: (self.arrival_gap_s * 1000.0) as u64,
            uplink_x: self.uplink_x,
            origin_x: self.origin_x,
            kbit: self.kbit,
            seconds: self.seconds,
            latency_ms: self.latency_ms,
            pace_x: (self.pace_x > 0.0).then_some(self.pace_x),
            neighbours: self.neighbours,
            burst_ms: (self.burst_s * 1000.0) as u64,
            seed: self.seed,
        }
    }
}

/// The scenarios of a matrix file: each line's name and flags, parsed.
fn scenarios(text: &str) -> anyhow::Result<Vec<(String, String, Scenario)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, flags) = line
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("line {}: want `name: flags`", i + 1))?;
        let argv = std::iter::once("alluvium-sim").chain(flags.split_whitespace());
        let args = Args::try_parse_from(argv)
            .map_err(|e| anyhow::anyhow!("line {} ({name}): {e}", i + 1))?;
        out.push((
            name.trim().to_string(),
            flags.trim().to_string(),
            args.scenario(),
        ));
    }
    Ok(out)
}

/// Runs a matrix file's scenarios, one table row each as it finishes.
fn matrix(path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    println!(
        "| scenario | flags | origin copies | startup median / p90 | silence median / max | run |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, flags, scenario) in scenarios(&text)? {
        let started = std::time::Instant::now();
        let o = run(&scenario)?;
        let s = |ms: u64| ms as f64 / 1000.0;
        let flags = if flags.is_empty() {
            "(none)".to_string()
        } else {
            format!("`{flags}`")
        };
        println!(
            "| {name} | {flags} | {:.2} | {:.2} / {:.2} s | {:.2} / {:.2} s | {:.1} s |",
            o.origin_copies(),
            s(o.startup_quantile(0.5)),
            s(o.startup_quantile(0.9)),
            s(o.silence_quantile(0.5)),
            s(o.silence_quantile(1.0)),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if let Some(path) = &a.matrix {
        return matrix(path);
    }
    let outcome = run(&a.scenario())?;
    println!("{}", outcome.summary());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_of_the_checked_in_matrix_parses() {
        let all = scenarios(include_str!("../scenarios.txt")).unwrap();
        assert!(all.len() >= 10, "{}", all.len());
        let lan = all.iter().find(|(n, _, _)| n.starts_with("a LAN")).unwrap();
        assert_eq!(
            (lan.2.uplink_x, lan.2.pace_x, lan.2.latency_ms),
            (100.0, None, 1)
        );
        assert!(scenarios("broken line").is_err());
        assert!(scenarios("x: --no-such-flag").is_err());
    }
}
