//! `alluvium schedule`: the station's guide.

use alluvium_playlist::time::{format_clock, format_w3cdtf};
use alluvium_playlist::{Parsed, Slot, MAX_PLAYLIST_BYTES};
use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use tracing::warn;

use crate::bad_input;
use crate::timearg::parse_instant;

/// Show what is on air and what comes next.
///
/// Reads a playlist from a file or an http(s) URL and prints, for an instant (default now),
/// the entry on air and how far into it, then what comes next. Problems with single entries
/// are warned about on stderr; a playlist that cannot be used at all exits with code 2.
///
/// Examples:
///   alluvium schedule station.rss
///   alluvium schedule http://radio.example/station.rss --at 2026-11-25T20:05:00Z
///   alluvium schedule station.rss --json | jq '.on_air.title'
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Playlist file or http(s) URL.
    #[arg(env = "ALLUVIUM_PLAYLIST")]
    playlist: String,

    /// The instant to look at: 'now' or a time like 2026-11-25T20:00:00Z.
    #[arg(long, env = "ALLUVIUM_AT", default_value = "now", value_name = "TIME")]
    at: String,

    /// How many upcoming entries to show.
    #[arg(long, env = "ALLUVIUM_NEXT", default_value_t = 10, value_name = "N")]
    next: usize,

    /// Print JSON for scripts: the instant, on_air (with offset_s), next, and every entry.
    #[arg(long, env = "ALLUVIUM_JSON")]
    json: bool,
}

/// How long to wait for a playlist URL.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let at =
        parse_instant(&args.at, Utc::now()).map_err(|m| bad_input(anyhow::anyhow!("--at: {m}")))?;
    let bytes = load(&args.playlist)?;
    let parsed = alluvium_playlist::parse(&bytes)
        .with_context(|| format!("{} is not a usable playlist", args.playlist))
        .map_err(bad_input)?;
    for w in &parsed.warnings {
        warn!("{}: {w}", args.playlist);
    }
    if args.json {
        let report = json_report(&parsed, &args.playlist, at, args.next);
        crate::out::result(format_args!("{}", serde_json::to_string_pretty(&report)?))?;
    } else {
        crate::out::result(format_args!(
            "{}",
            human_report(&parsed, at, args.next).trim_end()
        ))?;
    }
    Ok(())
}

/// Reads the playlist from a file or URL, refusing anything over the parser's size cap.
fn load(source: &str) -> anyhow::Result<Vec<u8>> {
    let lower = source.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(fetch(source));
    }
    let file = std::fs::File::open(source)
        .with_context(|| format!("opening {source}"))
        .map_err(bad_input)?;
    let mut data = Vec::new();
    use std::io::Read;
    file.take(MAX_PLAYLIST_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .with_context(|| format!("reading {source}"))?;
    Ok(data)
}

async fn fetch(url: &str) -> anyhow::Result<Vec<u8>> {
    let client = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build()?;
    let mut response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("fetching {url}"))?;
    if !response.status().is_success() {
        anyhow::bail!("fetching {url}: the server answered {}", response.status());
    }
    let mut data = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .with_context(|| format!("reading {url}"))?
    {
        data.extend_from_slice(&chunk);
        if data.len() > MAX_PLAYLIST_BYTES {
            break; // the parser names the limit
        }
    }
    Ok(data)
}

fn slot_json(parsed: &Parsed, slot: &Slot) -> Value {
    let e = &parsed.playlist.entries[slot.entry];
    json!({
        "start": format_w3cdtf(slot.start),
        "end": format_w3cdtf(slot.end),
        "duration_s": seconds(slot.duration()),
        "title": e.title,
        "creator": e.creator,
        "media_url": e.media_url,
        "type": e.media_type,
        "length": e.length,
        "blake3": e.hash.map(|h| h.to_hex()),
    })
}

fn seconds(d: TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn json_report(parsed: &Parsed, source: &str, at: DateTime<Utc>, next: usize) -> Value {
    let schedule = &parsed.schedule;
    let on_air = schedule.on_air(at).map(|on| {
        let mut v = slot_json(parsed, &on.slot);
        v["offset_s"] = json!(seconds(on.offset));
        v
    });
    let upcoming: Vec<Value> = schedule
        .slots_from(at)
        .filter(|s| s.start > at)
        .take(next)
        .map(|s| slot_json(parsed, &s))
        .collect();
    let entries: Vec<Value> = schedule
        .slots()
        .iter()
        .map(|s| slot_json(parsed, s))
        .collect();
    json!({
        "playlist": source,
        "title": parsed.playlist.channel.title,
        "at": format_w3cdtf(at),
        "on_air": on_air,
        "next_change": schedule.next_change(at).map(format_w3cdtf),
        "next": upcoming,
        "loop_period_s": schedule.period().map(seconds),
        "entries": entries,
        "warnings": parsed.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
    })
}

fn human_report(parsed: &Parsed, at: DateTime<Utc>, next: usize) -> String {
    let schedule = &parsed.schedule;
    let channel = &parsed.playlist.channel;
    let name = |slot: &Slot| parsed.playlist.entries[slot.entry].display_title();
    let mut out = format!(
        "{}\n",
        if channel.title.is_empty() {
            "(untitled station)"
        } else {
            &channel.title
        }
    );
    out.push_str(&format!("at {}\n", format_w3cdtf(at)));
    match schedule.on_air(at) {
        Some(on) => out.push_str(&format!(
            "  on air  {}  ({} of {}, until {})\n",
            name(&on.slot),
            format_clock(on.offset),
            format_clock(on.slot.duration()),
            format_w3cdtf(on.slot.end)
        )),
        None => {
            let line = match (schedule.start(), schedule.end(), schedule.next_change(at)) {
                (Some(start), _, _) if at < start => {
                    format!("off air: the schedule starts at {}", format_w3cdtf(start))
                }
                (_, Some(end), _) if at >= end => {
                    format!("off air: the schedule ended at {}", format_w3cdtf(end))
                }
                (_, _, Some(next)) => format!("off air until {}", format_w3cdtf(next)),
                _ => "off air".to_string(),
            };
            out.push_str(&format!("  {line}\n"));
        }
    }
    let upcoming: Vec<Slot> = schedule
        .slots_from(at)
        .filter(|s| s.start > at)
        .take(next)
        .collect();
    if !upcoming.is_empty() {
        out.push_str("  next\n");
        for s in upcoming {
            out.push_str(&format!(
                "    {}  {}  ({})\n",
                format_w3cdtf(s.start),
                name(&s),
                format_clock(s.duration())
            ));
        }
    }
    out
}
