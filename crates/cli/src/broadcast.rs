//! `alluvium broadcast`: a folder of media -> the station's playlist.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use alluvium_media::MediaInfo;
use alluvium_playlist::time::{format_clock, format_w3cdtf};
use alluvium_playlist::{Blake3Hash, Channel, Entry, Playlist, UpdateHint, UpdatePeriod};
use anyhow::{bail, Context};
use chrono::{DateTime, TimeDelta, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tracing::{info, warn};

use crate::bad_input;
use crate::timearg::parse_instant;

/// Write a station's playlist from a folder of media files.
///
/// Every file in MEDIA_DIR (not its subfolders; hidden files ignored) is probed for its real
/// duration and format and hashed with BLAKE3; files that are not playable media are skipped
/// with a warning naming each. The files play in file-name order (or shuffled), back to back,
/// from --start, once or --repeat N times or for --for a duration. Each entry's media URL is
/// --base-url plus the file name.
///
/// All files must share one stream: MP3 cannot mix with Ogg, and differing sample rates or
/// channel counts are refused unless --allow-mixed. The playlist is written atomically: on any
/// failure no half-written file is left behind.
///
/// MPEG-TS clips (.ts: H.264 video with AAC or MPEG audio) make a TV station, measured by
/// their timestamps. A clip a joining viewer could not start in (no keyframe for over 5 s,
/// no PAT/PMT at its start) is skipped with the ffmpeg command that fixes it:
///   ffmpeg -i IN -c:v libx264 -force_key_frames 'expr:gte(t,n_forced*2)' \
///       -c:a aac -b:a 128k -f mpegts OUT.ts
///
/// Example:
///   alluvium broadcast ./www/media --base-url http://radio.example/media \
///       --title "Night Radio" --start 2026-11-25T20:00:00Z --repeat 3 -o ./www/station.rss
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Args {
    /// Folder holding the media files.
    #[arg(env = "ALLUVIUM_MEDIA_DIR")]
    media_dir: PathBuf,

    /// Public URL of MEDIA_DIR on the web server (file names are appended).
    #[arg(long, env = "ALLUVIUM_BASE_URL", value_name = "URL")]
    base_url: String,

    /// Where to write the playlist.
    #[arg(
        short,
        long,
        env = "ALLUVIUM_OUTPUT",
        default_value = "station.rss",
        value_name = "FILE"
    )]
    output: PathBuf,

    /// Public URL of the playlist itself [default: worked out from --base-url and where
    /// --output lies relative to MEDIA_DIR].
    #[arg(long, env = "ALLUVIUM_FEED_URL", value_name = "URL")]
    feed_url: Option<String>,

    /// When the first entry starts: 'now', or a time like 2026-11-25T20:00:00Z.
    #[arg(
        long,
        env = "ALLUVIUM_START",
        default_value = "now",
        value_name = "TIME"
    )]
    start: String,

    /// Play the whole list this many times.
    #[arg(long, env = "ALLUVIUM_REPEAT", value_name = "N", conflicts_with = "for_", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    repeat: Option<u32>,

    /// Repeat the list until the schedule lasts at least this long (e.g. 24h, 90m).
    #[arg(long = "for", id = "for_", env = "ALLUVIUM_FOR", value_name = "DURATION", value_parser = humantime::parse_duration)]
    for_: Option<Duration>,

    /// Shuffle the order (each repetition anew).
    #[arg(long, env = "ALLUVIUM_SHUFFLE")]
    shuffle: bool,

    /// Seed for --shuffle, to get the same order again.
    #[arg(long, env = "ALLUVIUM_SEED", requires = "shuffle")]
    seed: Option<u64>,

    /// The station's name [default: the folder's name].
    #[arg(long, env = "ALLUVIUM_TITLE")]
    title: Option<String>,

    /// A line about the station.
    #[arg(long, env = "ALLUVIUM_DESCRIPTION")]
    description: Option<String>,

    /// Allow files with differing sample rates or channel counts in one station.
    #[arg(long, env = "ALLUVIUM_ALLOW_MIXED")]
    allow_mixed: bool,

    /// After writing, have this gateway fetch and hash every media URL now (so listeners
    /// never wait for it), and check it sees the same files as MEDIA_DIR.
    #[arg(long, env = "ALLUVIUM_GATEWAY", value_name = "URL")]
    gateway: Option<String>,
}

/// Most entries one playlist may hold (matches what the parser accepts).
const MAX_ENTRIES: usize = alluvium_playlist::MAX_ITEMS;

/// A validated broadcast job.
struct Config {
    media_dir: PathBuf,
    base_url: url::Url,
    feed_url: String,
    output: PathBuf,
    start: DateTime<Utc>,
    length: Length,
    shuffle: Option<u64>,
    title: String,
    description: String,
    allow_mixed: bool,
    gateway: Option<alluvium_gateway::Client>,
}

enum Length {
    Repeat(u32),
    AtLeast(Duration),
}

/// One probed, hashed file.
struct Track {
    file_name: String,
    info: MediaInfo,
    hash: Blake3Hash,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::from_args(args, Utc::now())?;
    let tracks = probe_all(&config.media_dir)?;
    check_compatible(&tracks, config.allow_mixed).map_err(bad_input)?;
    let playlist = build(&config, &tracks)?;
    let xml = alluvium_playlist::write(&playlist);
    write_atomically(&config.output, xml.as_bytes())
        .with_context(|| format!("writing {}", config.output.display()))?;
    let first = playlist.entries.first().and_then(|e| e.start);
    let last = playlist
        .entries
        .last()
        .and_then(|e| Some(e.start? + e.duration?));
    if let (Some(first), Some(last)) = (first, last) {
        crate::out::say!(
            "wrote {}: {} files, {} entries, {} on air from {} to {}",
            config.output.display(),
            tracks.len(),
            playlist.entries.len(),
            format_clock(last - first),
            format_w3cdtf(first),
            format_w3cdtf(last)
        );
        crate::out::say!("playlist URL: {}", config.feed_url);
    }
    if let Some(gateway) = &config.gateway {
        warm_gateway(gateway, &config, &tracks, xml.as_bytes())?;
    }
    Ok(())
}

/// Writes the playlist of `media_dir` (served at `base_url`) to `output`, on air from `start`
/// for at least `length`: what `alluvium demo` broadcasts. Returns the playlist URL.
pub(crate) fn write_station(
    media_dir: &Path,
    base_url: url::Url,
    output: &Path,
    title: &str,
    start: DateTime<Utc>,
    length: Duration,
) -> anyhow::Result<String> {
    let name = output
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("station.rss")
        .to_string();
    let config = Config {
        media_dir: media_dir.to_path_buf(),
        feed_url: feed_url_for(&base_url, media_dir, output, &name),
        base_url,
        output: output.to_path_buf(),
        start,
        length: Length::AtLeast(length),
        shuffle: None,
        title: title.to_string(),
        description: "An Alluvium station.".into(),
        allow_mixed: false,
        gateway: None,
    };
    let tracks = probe_all(&config.media_dir)?;
    check_compatible(&tracks, config.allow_mixed).map_err(bad_input)?;
    let playlist = build(&config, &tracks)?;
    write_atomically(output, alluvium_playlist::write(&playlist).as_bytes())
        .with_context(|| format!("writing {}", output.display()))?;
    Ok(config.feed_url)
}

/// Has the gateway fetch and hash every media URL, a few at a time, and checks its roots
/// against the local files: a difference means the web server serves other bytes. Then has
/// it read the playlist, so that the station's first listener gets it from the gateway at
/// once (read then, 60 KB of playlist held up the first listener's start by a second on a
/// 512 kbit/s origin); a playlist not yet on the server is only a warning (it is often
/// uploaded after it is written).
fn warm_gateway(
    gateway: &alluvium_gateway::Client,
    config: &Config,
    tracks: &[Track],
    playlist: &[u8],
) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    /// Files the gateway is asked about at once (it queues beyond its own fetch limit).
    const AT_ONCE: usize = 4;
    /// Longest wait for one file to be hashed.
    const LIMIT: Duration = Duration::from_secs(3600);

    let mut jobs = Vec::new();
    for t in tracks {
        let url = config.base_url.join(&encode(&t.file_name))?.to_string();
        jobs.push((url, t.hash, t.file_name.clone()));
    }
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(jobs.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} warming the gateway [{bar:30}] {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Some(bar)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results: Vec<(
        String,
        String,
        Blake3Hash,
        Result<alluvium_gateway::ContentInfo, alluvium_gateway::ClientError>,
    )> = runtime.block_on(
        futures_util::stream::iter(jobs)
            .map(|(url, hash, name)| {
                let bar = bar.clone();
                async move {
                    let r = gateway
                        .resolve(&url, LIMIT, |p| {
                            if let Some(bar) = &bar {
                                bar.set_message(format!(
                                    "{name}: {} of {} bytes",
                                    p.bytes_done,
                                    p.size.map_or("?".into(), |s| s.to_string())
                                ));
                            }
                        })
                        .await;
                    if let Some(bar) = &bar {
                        bar.inc(1);
                    }
                    (url, name, hash, r)
                }
            })
            .buffer_unordered(AT_ONCE)
            .collect(),
    );
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let mut failed = 0;
    for (url, name, hash, result) in &results {
        match result {
            Ok(info) if info.blake3 == *hash => info!(%url, "gateway ready"),
            Ok(info) => {
                failed += 1;
                warn!(
                    %url,
                    gateway = %info.blake3,
                    local = %hash.to_hex(),
                    "the web server serves different bytes than {name} here: upload it again"
                );
            }
            Err(e) => {
                failed += 1;
                warn!(%url, "gateway could not resolve it: {e:#}");
            }
        }
    }
    if failed > 0 {
        bail!(
            "the playlist was written, but {failed} of {} media URLs are not ready at the gateway (see the warnings above)",
            results.len()
        );
    }
    let feed = &config.feed_url;
    let read = runtime.block_on(async {
        match gateway.playlist(feed).await {
            // A copy the gateway read just before this one was written: it reads again
            // once its copy is 5 s old.
            Ok(served) if served.as_ref() != playlist => {
                let fresh = alluvium_gateway::config::PLAYLIST_FRESH;
                tokio::time::sleep(fresh + Duration::from_millis(500)).await;
                gateway.playlist(feed).await
            }
            other => other,
        }
    });
    let read = match read {
        Ok(served) if served.as_ref() == playlist => " and the playlist read",
        Ok(_) => {
            warn!(url = %feed, "the web server serves another playlist than {}: upload it again", config.output.display());
            ""
        }
        Err(e) => {
            warn!(url = %feed, "the gateway could not read the playlist (its first listener will wait for that read): {e:#}");
            ""
        }
    };
    crate::out::say!(
        "gateway warmed: {} media URLs hashed and ready{read}",
        results.len()
    );
    Ok(())
}

impl Config {
    fn from_args(args: Args, now: DateTime<Utc>) -> anyhow::Result<Config> {
        let meta = std::fs::metadata(&args.media_dir)
            .with_context(|| format!("media folder {}", args.media_dir.display()))
            .map_err(bad_input)?;
        if !meta.is_dir() {
            return Err(bad_input(anyhow::anyhow!(
                "{} is not a folder",
                args.media_dir.display()
            )));
        }
        let mut base_url = url::Url::parse(&args.base_url)
            .with_context(|| format!("--base-url '{}'", args.base_url))
            .map_err(bad_input)?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(bad_input(anyhow::anyhow!(
                "--base-url '{}' must be an http(s) URL",
                args.base_url
            )));
        }
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        let output_name = args
            .output
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                bad_input(anyhow::anyhow!(
                    "-o {} is not a file name",
                    args.output.display()
                ))
            })?
            .to_string();
        let feed_url = match args.feed_url {
            Some(u) => u,
            None => feed_url_for(&base_url, &args.media_dir, &args.output, &output_name),
        };
        let start = parse_instant(&args.start, now)
            .map_err(|m| bad_input(anyhow::anyhow!("--start: {m}")))?;
        let length = match (args.repeat, args.for_) {
            (_, Some(d)) if d.is_zero() => {
                return Err(bad_input(anyhow::anyhow!("--for must be longer than zero")))
            }
            (_, Some(d)) => Length::AtLeast(d),
            (Some(n), None) => Length::Repeat(n),
            (None, None) => Length::Repeat(1),
        };
        let title = args.title.unwrap_or_else(|| {
            let dir = args
                .media_dir
                .canonicalize()
                .unwrap_or(args.media_dir.clone());
            dir.file_name().map_or("Alluvium station".into(), |n| {
                n.to_string_lossy().into_owned()
            })
        });
        Ok(Config {
            media_dir: args.media_dir,
            base_url,
            feed_url,
            output: args.output,
            start,
            length,
            shuffle: args.shuffle.then(|| args.seed.unwrap_or_else(rand::random)),
            title,
            description: args
                .description
                .unwrap_or_else(|| "An Alluvium station.".into()),
            allow_mixed: args.allow_mixed,
            gateway: args
                .gateway
                .map(|g| {
                    alluvium_gateway::Client::new(&g).with_context(|| format!("--gateway {g}"))
                })
                .transpose()
                .map_err(bad_input)?,
        })
    }
}

/// The playlist's URL: where --output sits relative to MEDIA_DIR, applied to --base-url
/// (`www/media` + `www/station.rss` -> `BASE/../station.rss`).
fn feed_url_for(base: &url::Url, media_dir: &Path, output: &Path, name: &str) -> String {
    let media = media_dir.canonicalize().ok();
    let out_dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let out_dir = out_dir.canonicalize().ok();
    if let (Some(media), Some(out_dir)) = (media, out_dir) {
        let common = media.ancestors().find(|a| out_dir.starts_with(a));
        if let Some(common) = common {
            let ups = media
                .strip_prefix(common)
                .map_or(0, |p| p.components().count());
            let downs = out_dir.strip_prefix(common).ok();
            let mut rel = "../".repeat(ups);
            if let Some(downs) = downs {
                for c in downs.components() {
                    rel.push_str(&encode(&c.as_os_str().to_string_lossy()));
                    rel.push('/');
                }
            }
            rel.push_str(&encode(name));
            if let Ok(url) = base.join(&rel) {
                return url.to_string();
            }
        }
    }
    base.join(&encode(name))
        .map_or_else(|_| format!("{base}{name}"), |u| u.to_string())
}

/// Percent-encodes one path segment.
fn encode(segment: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

/// Probes and hashes every file in the folder, with a progress bar on a terminal.
fn probe_all(dir: &Path) -> anyhow::Result<Vec<Track>> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))
        .map_err(bad_input)?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => files.push((name, path, m.len())),
            Ok(_) => {} // subfolders are not part of the station
            Err(e) => warn!(file = %path.display(), "skipped: cannot read it: {e}"),
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    if files.is_empty() {
        return Err(bad_input(anyhow::anyhow!(
            "{} holds no files",
            dir.display()
        )));
    }

    let total: u64 = files.iter().map(|f| f.2).sum();
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} probing and hashing [{bar:30}] {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Some(bar)
    } else {
        None
    };
    let mut tracks = Vec::new();
    for (name, path, size) in files {
        if let Some(bar) = &bar {
            bar.set_message(name.clone());
        }
        match probe_one(&path) {
            Ok((info, hash)) => {
                let line = if info.format.is_video() {
                    format!(
                        "{name}: {} {} kbit/s, sound {} Hz {}ch, {}",
                        info.format.name(),
                        info.bitrate / 1000,
                        info.sample_rate,
                        info.channels,
                        format_clock(to_delta(info.duration))
                    )
                } else {
                    format!(
                        "{name}: {} {} Hz {}ch {} kbit/s, {}",
                        info.format.name(),
                        info.sample_rate,
                        info.channels,
                        info.bitrate / 1000,
                        format_clock(to_delta(info.duration))
                    )
                };
                match &bar {
                    Some(bar) => bar.println(line),
                    None => info!("{line}"),
                }
                tracks.push(Track {
                    file_name: name,
                    info,
                    hash,
                });
            }
            Err(e) => {
                let line = format!("skipped: {e:#}");
                match &bar {
                    Some(bar) => bar.suspend(|| warn!("{line}")),
                    None => warn!("{line}"),
                }
            }
        }
        if let Some(bar) = &bar {
            bar.inc(size);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if tracks.is_empty() {
        return Err(bad_input(anyhow::anyhow!(
            "{} holds no playable media files",
            dir.display()
        )));
    }
    Ok(tracks)
}

fn probe_one(path: &Path) -> anyhow::Result<(MediaInfo, Blake3Hash)> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let info = alluvium_media::probe_data(path, &data)?;
    let hash = Blake3Hash(*blake3::hash(&data).as_bytes());
    Ok((info, hash))
}

/// All files must be able to share one stream.
fn check_compatible(tracks: &[Track], allow_mixed: bool) -> anyhow::Result<()> {
    let mut by_format: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in tracks {
        by_format
            .entry(t.info.format.name())
            .or_default()
            .push(&t.file_name);
    }
    if by_format.len() > 1 {
        let listing: Vec<String> = by_format
            .iter()
            .map(|(f, names)| format!("{f}: {}", sample(names)))
            .collect();
        let mixes_video = tracks.iter().any(|t| t.info.format.is_video())
            && tracks.iter().any(|t| !t.info.format.is_video());
        bail!(
            "these files cannot share one stream, they are in different formats ({}); \
             make one station per format{}",
            listing.join("; "),
            if mixes_video {
                " (a TV station's viewers need pictures in every entry: re-encode the sound \
                 as video clips with ffmpeg, or make a radio station of them)"
            } else {
                ""
            }
        );
    }
    if !allow_mixed {
        let mut by_shape: BTreeMap<(u32, u16), Vec<&str>> = BTreeMap::new();
        for t in tracks {
            by_shape
                .entry((t.info.sample_rate, t.info.channels))
                .or_default()
                .push(&t.file_name);
        }
        if by_shape.len() > 1 {
            let listing: Vec<String> = by_shape
                .iter()
                .map(|((rate, ch), names)| format!("{rate} Hz {ch}ch: {}", sample(names)))
                .collect();
            bail!(
                "the files differ in sample rate or channels ({}); many players stumble when \
                 a stream changes them mid-way. Re-encode them alike, or pass --allow-mixed",
                listing.join("; ")
            );
        }
    }
    Ok(())
}

fn sample(names: &[&str]) -> String {
    match names {
        [a] => a.to_string(),
        [a, b] => format!("{a}, {b}"),
        [a, b, rest @ ..] => format!("{a}, {b} and {} more", rest.len()),
        [] => String::new(),
    }
}

fn to_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn build(config: &Config, tracks: &[Track]) -> anyhow::Result<Playlist> {
    let mut rng = config.shuffle.map(rand::rngs::StdRng::seed_from_u64);
    let mut order: Vec<usize> = (0..tracks.len()).collect();
    let mut entries: Vec<Entry> = Vec::new();
    // Starts come from the exact running total of real durations (in nanoseconds), rounded to
    // milliseconds only when written, so rounding never accumulates into drift.
    let mut elapsed = Duration::ZERO;
    let mut round = 0u32;
    loop {
        let done = match config.length {
            Length::Repeat(n) => round >= n,
            Length::AtLeast(d) => elapsed >= d,
        };
        if done {
            break;
        }
        if let Some(rng) = rng.as_mut() {
            order.shuffle(rng);
        }
        for &i in &order {
            if let Length::AtLeast(d) = config.length {
                if elapsed >= d {
                    break;
                }
            }
            if entries.len() >= MAX_ENTRIES {
                return Err(bad_input(anyhow::anyhow!(
                    "the schedule would need more than {MAX_ENTRIES} entries; use a shorter --for or fewer --repeat"
                )));
            }
            let t = &tracks[i];
            let start = config.start + round_ms(elapsed);
            elapsed += t.info.duration;
            let end = config.start + round_ms(elapsed);
            entries.push(Entry {
                title: Some(
                    t.info
                        .tags
                        .title
                        .clone()
                        .unwrap_or_else(|| stem(&t.file_name)),
                ),
                creator: t.info.tags.artist.clone(),
                media_url: config.base_url.join(&encode(&t.file_name))?.to_string(),
                media_type: Some(t.info.format.mime_type().to_string()),
                length: Some(t.info.size),
                start: Some(start),
                duration: Some(end - start),
                hash: Some(t.hash),
                ..Entry::default()
            });
        }
        round += 1;
    }
    Ok(Playlist {
        channel: Channel {
            about: config.feed_url.clone(),
            title: config.title.clone(),
            link: Some(config.base_url.to_string()),
            description: Some(config.description.clone()),
            language: None,
            creator: None,
            date: Some(config.start),
            // Ask listeners to look for a new playlist every five minutes.
            update: Some(UpdateHint {
                period: UpdatePeriod::Hourly,
                frequency: 12,
                base: None,
            }),
        },
        entries,
    })
}

fn round_ms(d: Duration) -> TimeDelta {
    TimeDelta::milliseconds(i64::try_from((d.as_nanos() + 500_000) / 1_000_000).unwrap_or(i64::MAX))
}

fn stem(file_name: &str) -> String {
    Path::new(file_name)
        .file_stem()
        .map_or(file_name.to_string(), |s| s.to_string_lossy().into_owned())
}

/// Writes `data` to `path` through a temporary file in the same folder and a rename, so readers
/// (and a crash) see either the old file or the whole new one.
fn write_atomically(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".alluvium-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    // Web servers must be able to read it: tempfiles are created owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_url_follows_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let media = dir.path().join("www/media");
        std::fs::create_dir_all(&media).unwrap();
        let base = url::Url::parse("http://o.example:8080/media/").unwrap();
        let out = dir.path().join("www/station.rss");
        assert_eq!(
            feed_url_for(&base, &media, &out, "station.rss"),
            "http://o.example:8080/station.rss"
        );
        let inside = media.join("station.rss");
        assert_eq!(
            feed_url_for(&base, &media, &inside, "station.rss"),
            "http://o.example:8080/media/station.rss"
        );
    }

    #[test]
    fn rounding_never_drifts() {
        // 1000 entries of 1.0004 s: naive per-entry rounding would lose 0.4 s.
        let mut elapsed = Duration::ZERO;
        for _ in 0..1000 {
            elapsed += Duration::from_micros(1_000_400);
        }
        assert_eq!(round_ms(elapsed), TimeDelta::milliseconds(1_000_400));
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode("night tide #2.mp3"), "night%20tide%20%232.mp3");
        assert_eq!(encode("été.ogg"), "%C3%A9t%C3%A9.ogg");
    }
}
