//! One player's transport stream for a TV station (docs/design.md section 8): the entries'
//! packets spliced into one stream that VLC, mpv and ffplay play as one.
//!
//! Joining is Icecast's, as for sound: a new player starts at the keyframe at or before the
//! heard moment (the live edge less the burst), with the stream's PAT and PMT first, and gets
//! everything up to the live edge at once, then real time, paced by the entries' own PCRs.
//! Each entry's timestamps are moved onto one timeline anchored at its slot's start, so time
//! runs on across entries and across a gap; continuity counters are numbered on per PID. A
//! player that runs dry (data missing when its moment comes) counts the time as stall and
//! starts again at a keyframe where the schedule is by then, once that is held.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use alluvium_content::PART_SIZE;
use alluvium_media::ts::{
    find_program, first_video_pts, ticks_between, Packet, Program, Splicer, CLOCK_HZ, PACKET_LEN,
    TABLES_WITHIN,
};
use alluvium_playlist::Slot;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc;

use crate::client::Station;
use crate::track::{Kind, Reader};

/// Bytes gathered before a write to the player.
const CHUNK: usize = 32 * 1024;
/// A packet due sooner than this after the heard moment is waited for no longer: the player
/// is running dry.
const STALL_MARGIN: TimeDelta = TimeDelta::milliseconds(500);
/// Within this of a slot's start, the entry starts at its first packet.
const SNAP: TimeDelta = TimeDelta::milliseconds(80);
/// Joining, a keyframe up to this far after the heard moment is taken when none before it is
/// held: the player starts that much ahead rather than waiting.
const JOIN_AHEAD: TimeDelta = TimeDelta::milliseconds(1_000);
/// Seconds of an entry searched before the heard moment for a keyframe: `broadcast` refuses
/// clips with longer gaps (`ts::MAX_KEYFRAME_GAP`), and a VBR estimate errs some.
const SEARCH_BEFORE: f64 = 7.0;
/// See `SEARCH_BEFORE`: after the moment, a PCR runs ahead of the pictures by the mux delay.
const SEARCH_AFTER: f64 = 2.0;
/// A start is taken only where the held parts reach this many seconds past the moment.
const HELD_AFTER: f64 = 1.0;
/// Seconds before the moment asked for at once when no start is held: a keyframe's worth at
/// the usual 2 s between keyframes.
const JOIN_WANT: f64 = 2.5;
/// The stream's timeline starts this long before the moment the player first hears, so
/// timestamps of audio muxed ahead of the pictures stay positive.
const LEAD: TimeDelta = TimeDelta::seconds(10);

/// An entry being streamed.
struct Entry {
    slot: Slot,
    reader: Reader,
    program: Program,
    video: u16,
    /// The first video PTS: the entry's zero, at its slot's start.
    zero: u64,
    size: u64,
    cursor: u64,
    /// PIDs whose PES packets started since the cursor was placed: packets that continue one
    /// begun before are left out.
    started: HashSet<u16>,
    /// The splice has not begun here yet (tables, timestamp shift).
    fresh: bool,
    /// A keyframe to start at is looked for from here on (after a stall: never back).
    floor: u64,
}

impl Entry {
    /// The entry of `slot`, once its head (PAT, PMT, first picture) is held.
    fn open(station: &Station, slot: Slot) -> Option<Entry> {
        let playlist = station.state.playlist()?;
        let entry = playlist.playlist.entries.get(slot.entry)?;
        if Kind::of_entry(entry) != Kind::Ts {
            return None; // not video: dead air on a TV station
        }
        let root = station.state.root_of(&entry.media_url)?;
        let content = station.node.store.get(&root)?;
        let mut reader = Reader::new(content);
        let size = reader.size();
        let head = reader.head_bytes(0, TABLES_WITHIN.min(size as usize))?;
        let program = find_program(&head)?;
        let video = program.video_pid()?;
        let zero = first_video_pts(&head, video)?;
        Some(Entry {
            slot,
            reader,
            program,
            video,
            zero,
            size,
            cursor: 0,
            started: HashSet::new(),
            fresh: true,
            floor: 0,
        })
    }

    /// Where a timestamp of this entry falls on the schedule.
    fn at(&self, ticks: u64) -> DateTime<Utc> {
        let t = ticks_between(ticks, self.zero);
        self.slot.start + TimeDelta::microseconds(t * 1_000_000 / CLOCK_HZ as i64)
    }

    fn bytes_per_second(&self) -> f64 {
        let seconds = self.slot.duration().num_milliseconds().max(1) as f64 / 1000.0;
        self.size as f64 / seconds
    }

    /// The byte where the entry's moment `t` is, by proportion (exact for a constant mux rate).
    fn estimate(&self, t: DateTime<Utc>) -> u64 {
        let into = (t - self.slot.start).num_milliseconds().max(0) as f64 / 1000.0;
        ((into * self.bytes_per_second()) as u64).min(self.size)
    }

    /// The keyframe to start at for moment `target`: the last one at or before it, else the
    /// first within `JOIN_AHEAD` after it; never before `floor`; one the held parts reach
    /// on from, past the moment and `HELD_AFTER` beyond, so the start does not run dry at
    /// once.
    fn keyframe_for(&mut self, target: DateTime<Utc>) -> Option<(u64, DateTime<Utc>)> {
        let rate = self.bytes_per_second();
        let est = self.estimate(target);
        let packet = PACKET_LEN as u64;
        let lo = est
            .saturating_sub((SEARCH_BEFORE * rate) as u64)
            .max(self.floor);
        let hi = (est + (SEARCH_AFTER * rate) as u64).min(self.size);
        // Keyframes held, and their moments.
        let mut seen: Vec<(u64, DateTime<Utc>)> = Vec::new();
        let mut at = lo.div_ceil(packet) * packet;
        while at + packet <= hi {
            let Some(bytes) = self.reader.bytes(at, PACKET_LEN) else {
                // Not held: on to the next part.
                let next = (at / PART_SIZE + 1) * PART_SIZE;
                at = next.div_ceil(packet) * packet;
                continue;
            };
            if let Some(p) = Packet::new(&bytes) {
                if p.pid() == self.video && p.starts_h264_keyframe() {
                    if let Some((pts, _)) = p.pes_times() {
                        seen.push((at, self.at(pts)));
                    }
                }
            }
            at += packet;
        }
        // Nothing from `from` to `reach` is missing.
        let (have, _) = self.reader.content().have();
        let held_to = |from: u64, reach: u64| -> bool {
            let reach = reach.min(self.size);
            let first = (from / PART_SIZE) as u32;
            let last = reach.div_ceil(PART_SIZE) as u32;
            have.has_all(first, last.saturating_sub(first))
        };
        let beyond = (HELD_AFTER * rate) as u64;
        let before = seen
            .iter()
            .rev()
            .find(|(o, t)| *t <= target && held_to(*o, est.max(*o) + beyond));
        let after = seen
            .iter()
            .find(|(o, t)| *t > target && *t <= target + JOIN_AHEAD && held_to(*o, *o + beyond));
        before.or(after).copied()
    }

    /// Asks for the parts a start at `target` needs (a keyframe's worth before it).
    fn want_around(&self, target: DateTime<Utc>) {
        let rate = self.bytes_per_second();
        let est = self.estimate(target);
        let from = est
            .saturating_sub((JOIN_WANT * rate) as u64)
            .max(self.floor);
        let to = (est + (HELD_AFTER * rate) as u64).min(self.size);
        self.reader.want(from, (to - from.min(to)) as usize);
    }

    fn place(&mut self, offset: u64) {
        self.cursor = offset;
        self.started.clear();
        self.fresh = true;
    }
}

/// The entry on the schedule at `clock`, if its head is held.
fn entry_at(station: &Station, clock: DateTime<Utc>) -> Option<Entry> {
    let playlist = station.state.playlist()?;
    let slot = playlist
        .schedule
        .slots_from(clock - SNAP)
        .find(|s| s.end > clock)?;
    if slot.start > clock + SNAP {
        return None; // dead air until it starts
    }
    Entry::open(station, slot)
}

/// Runs one player's transport stream until it disconnects (the channel closes).
pub async fn run(station: Arc<Station>, tx: mpsc::Sender<Bytes>) {
    let metrics = station.node.metrics.clone();
    metrics.stream_clients.inc();
    let burst = station.state.burst();
    let base = station.state.heard_now() - LEAD;
    let mut splicer = Splicer::new();
    let mut out: Vec<u8> = Vec::with_capacity(CHUNK + PACKET_LEN);
    let mut entry: Option<Entry> = None;
    // The schedule moment the stream has reached: the time of the last PCR sent.
    let mut clock = station.state.heard_now();
    // Needs a keyframe to start at (joining, or after running dry).
    let mut lost = true;
    let mut playing = false;
    // When the first packet since the last (re)start went out, and its moment: the player
    // plays from there in real time, so what it has left is the stream clock less that.
    let mut first: Option<(tokio::time::Instant, DateTime<Utc>)> = None;
    // Since when the player has been running dry, counted as stall as it goes.
    let mut dry: Option<tokio::time::Instant> = None;
    loop {
        let heard = station.state.heard_now();
        if let Some(since) = dry.as_mut() {
            let now = tokio::time::Instant::now();
            metrics.stall_seconds.inc_by((now - *since).as_secs_f64());
            *since = now;
        }
        if out.len() >= CHUNK {
            if tx
                .send(Bytes::from(std::mem::take(&mut out)))
                .await
                .is_err()
            {
                break;
            }
            continue;
        }
        if lost {
            clock = clock.max(heard);
        }
        if entry.as_ref().is_none_or(|e| lost && heard >= e.slot.end) {
            entry = entry_at(&station, clock);
            match entry.as_mut() {
                Some(e) if !lost && clock <= e.slot.start + SNAP => e.place(0),
                Some(_) => lost = true,
                None => {
                    if playing && clock < heard + STALL_MARGIN {
                        dry.get_or_insert_with(tokio::time::Instant::now);
                        lost = true;
                    }
                    if !pause(&tx, &mut out).await {
                        break;
                    }
                    continue;
                }
            }
        }
        let Some(e) = entry.as_mut() else { continue };
        if lost {
            match e.keyframe_for(heard) {
                Some((offset, t)) => {
                    e.place(offset);
                    clock = t;
                    lost = false;
                    first = None;
                }
                None => {
                    e.want_around(heard);
                    if !pause(&tx, &mut out).await {
                        break;
                    }
                    continue;
                }
            }
        }
        // Paced: nothing due after the live edge is sent yet.
        if clock > heard + burst {
            let wait = (clock - heard - burst)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(Duration::from_millis(100));
            if !flush(&tx, &mut out).await {
                break;
            }
            tokio::select! {
                _ = tx.closed() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        if e.cursor + PACKET_LEN as u64 > e.size {
            // The entry is over: the next one starts where its slot ends.
            clock = e.slot.end;
            entry = None;
            continue;
        }
        match e.reader.bytes(e.cursor, PACKET_LEN) {
            Some(bytes) => {
                dry = None;
                playing = true;
                first.get_or_insert((tokio::time::Instant::now(), clock));
                send_packet(e, &bytes, base, &mut splicer, &mut clock, &mut out);
                e.cursor += PACKET_LEN as u64;
            }
            // Not held yet: waited for while the player has enough left to play, or, before
            // it has anything, while its start is still near the moment it hears.
            None if left(first, clock) > STALL_MARGIN
                || (first.is_none() && heard - clock < JOIN_AHEAD) =>
            {
                if !pause(&tx, &mut out).await {
                    break;
                }
            }
            None => {
                if playing {
                    dry.get_or_insert_with(tokio::time::Instant::now);
                }
                e.floor = e.cursor;
                lost = true;
                if !pause(&tx, &mut out).await {
                    break;
                }
            }
        }
    }
    metrics.stream_clients.dec();
}

/// What a player has left to play: the stream clock less where it is, having played in real
/// time from the `first` packet's moment on (nothing before that).
fn left(first: Option<(tokio::time::Instant, DateTime<Utc>)>, clock: DateTime<Utc>) -> TimeDelta {
    match first {
        Some((when, at)) => {
            let played = TimeDelta::from_std(when.elapsed()).unwrap_or(TimeDelta::MAX);
            clock - (at + played)
        }
        None => TimeDelta::zero(),
    }
}

/// Writes the packet at the entry's cursor, spliced onto the stream's timeline from `base`;
/// moves `clock` to its PCR's moment.
fn send_packet(
    e: &mut Entry,
    bytes: &[u8],
    base: DateTime<Utc>,
    splicer: &mut Splicer,
    clock: &mut DateTime<Utc>,
    out: &mut Vec<u8>,
) {
    let Some(p) = Packet::new(bytes) else {
        return; // not a packet: skipped
    };
    if e.fresh {
        let from_base = (e.slot.start - base).num_microseconds().unwrap_or(0);
        let anchor = (i128::from(from_base) * i128::from(CLOCK_HZ) / 1_000_000) as i64;
        let wrap = 1i64 << 33;
        let shift = (anchor.rem_euclid(wrap) + wrap - (e.zero as i64 % wrap)) % wrap;
        splicer.begin(&e.program, shift as u64);
        splicer.tables(out);
        e.fresh = false;
    } else if p.pid() == e.video && p.starts_h264_keyframe() {
        splicer.tables(out);
    }
    if let Some(pcr) = p.pcr() {
        *clock = e.at(pcr);
    }
    if p.unit_start() {
        e.started.insert(p.pid());
    } else if !e.started.contains(&p.pid()) {
        return; // the rest of a PES packet begun before the join
    }
    splicer.packet(&p, out);
}

/// Sends what is gathered and waits a moment for data; false when the player is gone.
async fn pause(tx: &mpsc::Sender<Bytes>, out: &mut Vec<u8>) -> bool {
    if !flush(tx, out).await {
        return false;
    }
    tokio::select! {
        _ = tx.closed() => false,
        _ = tokio::time::sleep(Duration::from_millis(50)) => true,
    }
}

async fn flush(tx: &mpsc::Sender<Bytes>, out: &mut Vec<u8>) -> bool {
    out.is_empty() || tx.send(Bytes::from(std::mem::take(out))).await.is_ok()
}
