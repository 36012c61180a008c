//! `cargo run --release -p alluvium-sim -- --help`: one simulated station run, its figures, or
//! a matrix of them (`--matrix crates/sim/scenarios.txt --seeds 5`).

use alluvium_sim::{run, Arrivals, Pace, Scenario, SoleFirst};
use clap::Parser;

/// A line of output; an error when the reader has gone (see `main`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
/// Simulates a station's listeners with the real picker, each uplink a queue at its rate, and
/// prints what the harness (`../shared/bench`) measures: origin copies, startup, silence per
/// listener. Deterministic for a seed. The defaults are the harness's (`./bench.sh alluvium
/// N=30 T=120`): entries of 60 s, on air 20 s before the first listener,
/// who arrive a second apart and play 120 s each.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Listeners (churn's newcomers besides).
    #[arg(long, default_value_t = 30)]
    listeners: usize,
    /// Seconds between arrivals (the mean gap with `--arrivals poisson`).
    #[arg(long, default_value_t = 1.0)]
    arrival_gap_s: f64,
    /// `fixed` gaps or `poisson` (exponential gaps from the seed).
    #[arg(long, default_value = "fixed", value_parser = ["fixed", "poisson"])]
    arrivals: String,
    /// Each listener's uplink as a multiple of the bitrate; a list (`1.25,2,8`) is cycled over
    /// the listeners, as the harness's `CLIENT_UP_LIST`.
    #[arg(long, value_delimiter = ',', default_value = "2")]
    uplink_x: Vec<f64>,
    /// The origin's uplink, as a multiple of the bitrate.
    #[arg(long, default_value_t = 4.0)]
    origin_x: f64,
    /// The station's bitrate in kbit/s.
    #[arg(long, default_value_t = 128)]
    kbit: u32,
    /// Each entry's length in seconds (each a different file).
    #[arg(long, default_value_t = 60)]
    entry_s: u32,
    /// The station was on air this long before the first listener came (0: a cold crowd at
    /// the first entry's start).
    #[arg(long, default_value_t = 20)]
    start_ago_s: u32,
    /// Each listener plays this long, then leaves.
    #[arg(long, default_value_t = 120)]
    listen_s: u32,
    /// After the last arrival, every this many seconds the listener here longest leaves and a
    /// new one comes (the harness's `CHURN_S`; 0: none).
    #[arg(long, default_value_t = 0.0)]
    churn_s: f64,
    /// Seconds from a listener's arrival to its first ask (process, playlist, gateway,
    /// tracker).
    #[arg(long, default_value_t = 0.8)]
    setup_s: f64,
    /// One-way latency between any two nodes, in ms.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Uploads paced as `--upload-limit auto` does (from 1.6x the bitrate, following the
    /// link by what askers report), or at this multiple of the bitrate; 0: the link's rate.
    #[arg(long, default_value = "auto", value_parser = pace)]
    pace_x: Pace,
    /// How a listener's server treats an ask for a part it took from the origin and has not
    /// sent on, the swarm's only copy: ahead by the hops to every member, urgent asks too
    /// (the node's rule, docs/decisions/058), or as any ask, first, as urgent, or by its
    /// hops but after urgent asks (experiments: docs/decisions/049, 051).
    #[arg(long, value_enum, default_value = "lead")]
    sole_first: SoleFirst,
    /// Whether an answer is due at its sender earlier by the hops its part still needs to
    /// reach every member, after urgent asks (the node's rule: docs/decisions/052).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    spread_lead: bool,
    /// Peers whose news each listener follows.
    #[arg(long, default_value_t = 8)]
    neighbours: usize,
    /// Once its swarm stops growing and it knows 8 peers, each listener announces every this
    /// many seconds (the node: the tracker's interval, at most 10 s), and learns that a
    /// member left this late at worst.
    #[arg(long, default_value_t = alluvium_swarm::download::MAX_ANNOUNCE.as_secs_f64())]
    announce_s: f64,
    /// Seconds of audio a joining player gets at once; players hear the schedule this late
    /// (`alluvium listen --burst`).
    #[arg(long, default_value_t = 4.0)]
    burst_s: f64,
    /// The seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Draws the run as an SVG picture at FILE: bytes from the origin and from peers each
    /// second, listeners present, and the silence they heard.
    #[arg(long, value_name = "FILE")]
    plot: Option<std::path::PathBuf>,
    /// Lists the parts some listener playing heard late or never held: when players heard
    /// each, when its first holder and the median one got it, how many of the listeners
    /// then playing held it in time, late, or never, how many ever held it, and when its first
    /// holder left if that was before it aired (a part that left with its taker).
    #[arg(long)]
    late_parts: bool,
    /// Prints listener N's asks (whom, which parts, due in how long), answers and refusals
    /// to stderr as they happen, and the asks it gets from others (taken or refused); N
    /// counts arrivals from 0.
    #[arg(long, value_name = "N")]
    trace: Option<usize>,
    /// Runs every scenario of FILE (lines `name: flags`, `#` comments) and prints them as a
    /// Markdown table, with how long each took.
    #[arg(long, value_name = "FILE")]
    matrix: Option<std::path::PathBuf>,
    /// With `--matrix`: runs each scenario with seeds 1 to N (a line's own `--seed` is the
    /// first) and shows the mean of each figure: one seed is one run, and a rule is judged
    /// on several.
    #[arg(long, default_value_t = 1, value_name = "N")]
    seeds: u64,
}

impl Args {
    fn scenario(&self) -> Scenario {
        let ms = |s: f64| (s * 1000.0) as u64;
        Scenario {
            listeners: self.listeners,
            arrivals: if self.arrivals == "poisson" {
                Arrivals::Poisson(ms(self.arrival_gap_s))
            } else {
                Arrivals::Fixed(ms(self.arrival_gap_s))
            },
            uplinks_x: self.uplink_x.clone(),
            origin_x: self.origin_x,
            kbit: self.kbit,
            entry_s: self.entry_s,
            start_ago_s: self.start_ago_s,
            listen_s: self.listen_s,
            churn_ms: ms(self.churn_s),
            setup_ms: ms(self.setup_s),
            latency_ms: self.latency_ms,
            pace: self.pace_x,
            sole_first: self.sole_first,
            spread_lead: self.spread_lead,
            neighbours: self.neighbours,
            announce_ms: ms(self.announce_s),
            burst_ms: ms(self.burst_s),
            seed: self.seed,
            trace: self.trace,
        }
    }
}

/// `--pace-x`: `auto`, `0` (the link) or a multiple of the bitrate.
fn pace(s: &str) -> Result<Pace, String> {
    if s == "auto" {
        return Ok(Pace::Auto);
    }
    match s.parse::<f64>() {
        Ok(0.0) => Ok(Pace::Link),
        Ok(x) if x > 0.0 && x.is_finite() => Ok(Pace::Fixed(x)),
        _ => Err(format!("`{s}`: want auto, 0 or a positive multiple")),
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
fn matrix(path: &std::path::Path, seeds: u64) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    out!(
        "| scenario | flags | origin copies | startup median / p90 | silence median / max | \
         silence per listener-hour | run |"
    )?;
    out!("|---|---|---|---|---|---|---|")?;
    for (name, flags, scenario) in scenarios(&text)? {
        let started = std::time::Instant::now();
        let seeds = seeds.max(1);
        let mut sum = [0.0; 6];
        for k in 0..seeds {
            let o = run(&Scenario {
                seed: scenario.seed + k,
                ..scenario.clone()
            })?;
            let s = |ms: u64| ms as f64 / 1000.0;
            let figures = [
                o.origin_copies(),
                s(o.startup_quantile(0.5)),
                s(o.startup_quantile(0.9)),
                s(o.silence_quantile(0.5)),
                s(o.silence_quantile(1.0)),
                o.silence_per_hour_s(),
            ];
            for (sum, f) in sum.iter_mut().zip(figures) {
                *sum += f / seeds as f64;
            }
        }
        let flags = if flags.is_empty() {
            "(none)".to_string()
        } else {
            format!("`{flags}`")
        };
        out!(
            "| {name} | {flags} | {:.2} | {:.2} / {:.2} s | {:.2} / {:.2} s | {:.0} s | {:.1} s |",
            sum[0],
            sum[1],
            sum[2],
            sum[3],
            sum[4],
            sum[5],
            started.elapsed().as_secs_f64(),
        )?;
    }
    Ok(())
}

/// `--late-parts`: one line per part that did not reach every listener playing in time.
fn late_parts(o: &alluvium_sim::Outcome) -> std::io::Result<()> {
    let s = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{t:.1}"));
    let [overdue, soon, ahead] = o.origin_asked;
    let all = (overdue + soon + ahead).max(1) as f64;
    out!(
        "asked of the origin: {:.0} % overdue, {:.0} % due within 5 s, {:.0} % later ({:.2} copies asked)",
        100.0 * overdue as f64 / all,
        100.0 * soon as f64 / all,
        100.0 * ahead as f64 / all,
        all / o.aired_bytes.max(1) as f64
    )?;
    for (name, a) in ["overdue", "due within 5 s", "later"]
        .iter()
        .zip(o.origin_askers)
    {
        out!(
            "  {name}: {} parts, {} asks by {} listeners, {} parts by several listeners, {} asks by the {} eldest",
            a.parts,
            a.asks,
            a.askers,
            a.by_several,
            a.by_eldest,
            alluvium_sim::OWNERS_PLACES
        )?;
    }
    out!("entry part  heard_s first_s median_s  playing on_time late missed holders first_left_s")?;
    for p in o.parts.iter().filter(|p| p.late + p.missed > 0) {
        out!(
            "{:>5} {:>4} {:>8.1} {:>7} {:>8} {:>8} {:>7} {:>4} {:>6} {:>7} {:>12}",
            p.entry,
            p.part,
            p.heard_s,
            s(p.first_s),
            s(p.median_s),
            p.listeners,
            p.on_time,
            p.late,
            p.missed,
            p.holders,
            s(p.first_left_s)
        )?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match run_main() {
        // `| head` closed the pipe: end quietly, as `cat` does.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            Ok(())
        }
        r => r,
    }
}

fn run_main() -> anyhow::Result<()> {
    let a = Args::parse();
    if let Some(path) = &a.matrix {
        return matrix(path, a.seeds);
    }
    let outcome = run(&a.scenario())?;
    out!("{}", outcome.summary())?;
    if a.late_parts {
        late_parts(&outcome)?;
    }
    if let Some(path) = &a.plot {
        let flags: Vec<String> = std::env::args().skip(1).collect();
        alluvium_sim::plot::plot(&outcome, &format!("alluvium-sim {}", flags.join(" ")), path)?;
        out!("drew {}", path.display())?;
    }
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
            (lan.2.uplinks_x.clone(), lan.2.pace, lan.2.latency_ms),
            (vec![100.0], Pace::Link, 1)
        );
        let mixed = all.iter().find(|(n, _, _)| n.starts_with("mixed")).unwrap();
        assert_eq!(mixed.2.uplinks_x, [1.25, 2.0, 8.0]);
        assert!(matches!(mixed.2.arrivals, Arrivals::Poisson(2_000)));
        let defaults = Args::try_parse_from(["alluvium-sim"]).unwrap().scenario();
        let lib = Scenario::default();
        assert_eq!(
            format!("{defaults:?}"),
            format!("{lib:?}"),
            "one set of defaults"
        );
        assert!(scenarios("broken line").is_err());
        assert!(scenarios("x: --no-such-flag").is_err());
    }
}
