//! One player's stream: frames of what is on air, paced at the media's own rate from the
//! schedule, silence where there is nothing to play.
//!
//! The client keeps a stream clock: the scheduled time of the next frame it sends. A new
//! client starts at the station's now, so it joins the entry on air at the scheduled position
//! (the frame nearest it), and bytes run `LEAD` ahead of real time (the burst that lets a
//! player start at once). Each entry is anchored at its slot's start and counted in samples
//! from there, so nothing drifts; at the slot's end the next entry's first audio frame
//! follows the last frame of this one (no tags, no Xing frame in between). Missing data at
//! play time, or no entry, is filled with silent frames of the station's shape and counted in
//! `stall_seconds`; when data is back the stream rejoins the schedule where it is by then.

use std::sync::Arc;
use std::time::Duration;

use alluvium_playlist::Slot;
use alluvium_swarm::station::StationState;
use alluvium_swarm::Node;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc;

use crate::icy::IcyWriter;
use crate::track::Track;

/// How far ahead of real time bytes are sent: the burst a new player gets at once (80 KiB at
/// 128 kbit/s; Chromium waits for about 4 s of audio before it starts playing).
pub const LEAD: TimeDelta = TimeDelta::seconds(5);
/// Data for a frame due later than this is waited for; closer than this, the frame is
/// given up as a stall and played as silence.
const STALL_MARGIN: TimeDelta = TimeDelta::milliseconds(500);
/// Within this of a slot's start, the stream starts the entry at its first frame.
const SNAP: TimeDelta = TimeDelta::milliseconds(80);
/// Bytes gathered before a write to the player.
const CHUNK: usize = 8 * 1024;

/// What every client shares.
pub struct Station {
    pub node: Arc<Node>,
    pub state: Arc<StationState>,
}

struct Playing {
    slot: Slot,
    title: String,
    track: Track,
    cursor: u64,
    /// Scheduled time of the frame at which `samples` started counting.
    anchor: DateTime<Utc>,
    samples: u64,
    rate: u32,
    /// Lost the thread (missing data): rejoin at the stream clock.
    rejoin: bool,
}

fn samples_to(samples: u64, rate: u32) -> TimeDelta {
    if rate == 0 {
        return TimeDelta::zero();
    }
    TimeDelta::microseconds((u128::from(samples) * 1_000_000 / u128::from(rate)) as i64)
}

/// Where a media time falls in the file's audio, by proportion (exact for CBR; the next frame
/// boundary is found from there).
fn estimate_offset(track: &Track, slot: &Slot, at: DateTime<Utc>) -> u64 {
    let (start, end) = (track.layout.audio_start, track.layout.audio_end);
    let total = slot.duration().num_microseconds().unwrap_or(1).max(1) as f64;
    let into = (at - slot.start).num_microseconds().unwrap_or(0).max(0) as f64;
    start + ((end - start) as f64 * (into / total).clamp(0.0, 1.0)) as u64
}

/// The scheduled time of the frame at `offset`, by the same proportion.
fn offset_time(track: &Track, slot: &Slot, offset: u64) -> DateTime<Utc> {
    let (start, end) = (track.layout.audio_start, track.layout.audio_end);
    let frac = (offset.saturating_sub(start)) as f64 / (end - start).max(1) as f64;
    let total = slot.duration().num_microseconds().unwrap_or(0) as f64;
    slot.start + TimeDelta::microseconds((total * frac) as i64)
}

/// Runs one player's stream until it disconnects (the channel closes).
pub async fn run(station: Arc<Station>, tx: mpsc::Sender<Bytes>, mut icy: Option<IcyWriter>) {
    let metrics = station.node.metrics.clone();
    metrics.stream_clients.inc();
    let mut clock = station.state.now();
    let mut playing: Option<Playing> = None;
    let mut template: Option<[u8; 4]> = None;
    let mut title = String::new();
    let mut out: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    loop {
        let now = station.state.now();
        if clock - LEAD > now || out.len() >= CHUNK {
            if !out.is_empty() {
                if tx
                    .send(Bytes::from(std::mem::take(&mut out)))
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
            let wait = (clock - LEAD - now).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = tx.closed() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }

        // The entry for the stream clock.
        if playing
            .as_ref()
            // A lost entry whose slot is over is done with, found or not.
            .is_none_or(|p| {
                p.cursor >= p.track.layout.audio_end || (p.rejoin && clock >= p.slot.end)
            })
        {
            playing = next_entry(&station, playing.take(), clock);
        }
        let frame = match playing.as_mut() {
            Some(p) => {
                if p.rejoin {
                    rejoin(p, clock);
                }
                let at = if p.rejoin {
                    None
                } else {
                    p.track.frame(p.cursor)
                };
                match at {
                    Some(Ok((h, bytes))) => {
                        p.cursor += bytes.len() as u64;
                        p.samples += u64::from(h.samples);
                        p.rate = h.sample_rate;
                        clock = p.anchor + samples_to(p.samples, p.rate);
                        template = Some(p.track.layout.first_bytes);
                        title.clone_from(&p.title);
                        Some(bytes)
                    }
                    // Junk: find the next frame.
                    Some(Err(())) => {
                        match p.track.sync(p.cursor + 1) {
                            Some(next) => p.cursor = next,
                            None => p.cursor = p.track.layout.audio_end,
                        }
                        continue;
                    }
                    // Not held yet: wait while there is time, else it is a stall.
                    None if clock - now > STALL_MARGIN => {
                        if !flush(&tx, &mut out).await {
                            break;
                        }
                        tokio::select! {
                            _ = tx.closed() => break,
                            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                        }
                        continue;
                    }
                    None => {
                        p.rejoin = true;
                        None
                    }
                }
            }
            // No entry playable yet (not resolved, head not held, dead air): wait while the
            // moment is still ahead, else play silence.
            None if clock - now > STALL_MARGIN => {
                if !flush(&tx, &mut out).await {
                    break;
                }
                tokio::select! {
                    _ = tx.closed() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                continue;
            }
            None => None,
        };
        match frame {
            Some(bytes) => write(&mut icy, &bytes, &title, &mut out),
            None => match template.and_then(alluvium_media::silent_frame) {
                Some(silence) => {
                    let d = alluvium_media::FrameHeader::parse(&silence)
                        .map(|h| samples_to(u64::from(h.samples), h.sample_rate))
                        .unwrap_or(TimeDelta::milliseconds(26));
                    write(&mut icy, &silence, &title, &mut out);
                    clock += d;
                    metrics
                        .stall_seconds
                        .inc_by(d.num_microseconds().unwrap_or(0) as f64 / 1e6);
                }
                None => {
                    // Nothing has ever played: no shape for silence yet. Wait for data.
                    tokio::select! {
                        _ = tx.closed() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                    clock = station.state.now();
                }
            },
        }
    }
    metrics.stream_clients.dec();
}

/// Sends what is gathered; false when the player is gone.
async fn flush(tx: &mpsc::Sender<Bytes>, out: &mut Vec<u8>) -> bool {
    out.is_empty() || tx.send(Bytes::from(std::mem::take(out))).await.is_ok()
}

fn write(icy: &mut Option<IcyWriter>, audio: &[u8], title: &str, out: &mut Vec<u8>) {
    match icy {
        Some(w) => w.write(audio, title, out),
        None => out.extend_from_slice(audio),
    }
}

/// The entry to play from stream time `clock`, after `previous` (finished), positioned.
fn next_entry(
    station: &Station,
    previous: Option<Playing>,
    clock: DateTime<Utc>,
) -> Option<Playing> {
    let playlist = station.state.playlist()?;
    let schedule = &playlist.schedule;
    // The slot at the stream clock (one that ends by then cannot be played any more).
    let mut slot = schedule.slots_from(clock - SNAP).find(|s| s.end > clock)?;
    if let Some(prev) = &previous {
        if prev.slot.start == slot.start {
            slot = schedule
                .slots_from(prev.slot.end)
                .find(|s| s.start >= prev.slot.end)?;
        }
    }
    if slot.start > clock + SNAP {
        return None; // dead air until it starts
    }
    let entry = playlist.playlist.entries.get(slot.entry)?;
    let root = station.state.root_of(&entry.media_url)?;
    let content = station.node.store.get(&root)?;
    let track = Track::open(content)?;
    let mut p = Playing {
        slot,
        title: entry.display_title(),
        cursor: track.layout.audio_start,
        anchor: slot.start,
        samples: 0,
        rate: track.layout.first.sample_rate,
        track,
        rejoin: false,
    };
    if clock - slot.start > SNAP {
        rejoin(&mut p, clock);
    }
    Some(p)
}

/// Positions `p` at the frame for stream time `clock`.
fn rejoin(p: &mut Playing, clock: DateTime<Utc>) {
    if clock >= p.slot.end {
        p.cursor = p.track.layout.audio_end; // its time is over
        p.rejoin = false;
        return;
    }
    let estimate = estimate_offset(&p.track, &p.slot, clock);
    match p.track.sync(estimate) {
        Some(frame) => {
            p.cursor = frame;
            p.anchor = offset_time(&p.track, &p.slot, frame);
            p.samples = 0;
            p.rejoin = false;
        }
        // The bytes there are not held either: stay lost, play silence.
        None => p.rejoin = true,
    }
}
