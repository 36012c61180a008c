//! One player's transport stream for a TV station (docs/design.md section 8): the entries'
//! packets spliced into one stream that VLC, mpv and ffplay play as one.
//!
//! Joining is Icecast's, as for sound: a new player starts at the keyframe nearest the heard
//! moment (the live edge less the burst; the one before it, or one up to a second after),
//! with the stream's PAT and PMT first, and gets everything up to the live edge at once, then
//! real time, paced by the entries' own PCRs.
//! Each entry's timestamps are moved onto one timeline anchored at its slot's start, so time
//! runs on across entries and across a gap; continuity counters are numbered on per PID. A
//! player that runs out of pictures (data missing when its moment comes) stalls, counted,
//! and gets the data if it comes within a second; later than that the stream starts again at
//! a keyframe where the schedule is by then, once that is held.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use alluvium_content::{Hash, PART_SIZE};
use alluvium_media::ts::{
    find_program, first_video_pts, ticks_between, Packet, Program, Splicer, CLOCK_HZ, PACKET_LEN,
    TABLES_WITHIN,
};
use alluvium_playlist::Slot;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc;

use crate::client::{flush, pause, Station};
use crate::track::{Kind, Reader};

/// Bytes gathered before a write to the player.
const CHUNK: usize = 32 * 1024;
/// The next entry's head is waited for no longer when the stream clock is this close to
/// what players hear: the player is running dry.
const STALL_MARGIN: TimeDelta = TimeDelta::milliseconds(500);
/// A player that ran out of pictures waits this long for the next (a stall, counted) before
/// the stream starts again where the schedule is: players stay within about this of each
/// other, and data a little late is shown rather than skipped.
const LATE_GRACE: TimeDelta = TimeDelta::milliseconds(1_000);
/// Within this of a slot's start, the entry starts at its first packet.
const SNAP: TimeDelta = TimeDelta::milliseconds(80);
/// Joining, a keyframe up to this far after the heard moment is taken when it is nearer than
/// one before it, or none before it is held: the player starts that much ahead rather than
/// waiting (parts before the moment are overdue, asked only this far back).
const JOIN_AHEAD: TimeDelta = TimeDelta::milliseconds(1_000);
/// Seconds of an entry searched before the heard moment for a keyframe: `broadcast` refuses
/// clips with longer gaps (`ts::MAX_KEYFRAME_GAP`), and a VBR estimate errs some.
const SEARCH_BEFORE: f64 = 7.0;
/// See `SEARCH_BEFORE`: after the moment, a PCR runs ahead of the pictures by the mux delay.
const SEARCH_AFTER: f64 = 2.0;
/// Pictures a player holds before it starts to play (players buffer about this much first).
const PREBUFFER: TimeDelta = TimeDelta::milliseconds(1_000);
/// The stream's timeline starts this long before the moment the player first hears, so
/// timestamps of audio muxed ahead of the pictures stay positive.
const LEAD: TimeDelta = TimeDelta::seconds(10);

/// An entry being streamed (or cut into HLS segments, `crate::hls`).
pub(crate) struct Entry {
    pub(crate) slot: Slot,
    pub(crate) root: Hash,
    pub(crate) title: String,
    pub(crate) reader: Reader,
    pub(crate) program: Program,
    pub(crate) video: u16,
    /// The first video PTS: the entry's zero, at its slot's start.
    pub(crate) zero: u64,
    pub(crate) size: u64,
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
    pub(crate) fn open(station: &Station, slot: Slot) -> Option<Entry> {
        let playlist = station.state.playlist()?;
        let entry = playlist.playlist.entries.get(slot.entry)?;
        if Kind::of_entry(entry) != Kind::Ts {
            return None; // not video: dead air on a TV station
        }
        let root = station.state.root_of(&entry.media_url)?;
        let content = station.node.store.get(&root)?;
        let mut reader = Reader::new(content);
        let size = reader.size();
        // The first part nearly always holds the tables and the first picture, and every
        // download fetches it first; the rest of the head is asked for only when needed.
        let read = |head: &[u8]| {
            let program = find_program(head)?;
            let video = program.video_pid()?;
            let zero = first_video_pts(head, video)?;
            Some((program, video, zero))
        };
        let first = reader.head_bytes(0, (PART_SIZE as usize).min(size as usize))?;
        let (program, video, zero) = match read(&first) {
            Some(found) => found,
            None => read(&reader.head_bytes(0, TABLES_WITHIN.min(size as usize))?)?,
        };
        Some(Entry {
            slot,
            root,
            title: entry.display_title(),
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
    pub(crate) fn at(&self, ticks: u64) -> DateTime<Utc> {
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

    /// The keyframe to start at for moment `target`, never before `floor`: of the last one at
    /// or before it from which every part up to the moment is held, and the first held within
    /// `JOIN_AHEAD` after it, the nearer.
    pub(crate) fn keyframe_for(&mut self, target: DateTime<Utc>) -> Option<(u64, DateTime<Utc>)> {
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
        // Before the moment: held from the keyframe to the moment (all of it is sent at once,
        // and what follows comes by its deadline). After it: the keyframe's own part held.
        let before = seen
            .iter()
            .rev()
            .find(|(o, t)| *t <= target && held_to(*o, est.max(*o + packet)));
        let after = seen
            .iter()
            .find(|(o, t)| *t > target && *t <= target + JOIN_AHEAD && held_to(*o, *o + packet));
        // The nearer of the two: a start is off the schedule by at most half the time
        // between keyframes, and a later one needs no part that is overdue already.
        match (before, after) {
            (Some(b), Some(a)) if a.1 - target < target - b.1 => Some(*a),
            (b, a) => b.or(a).copied(),
        }
    }

    /// Asks for the overdue parts a start at a keyframe up to `JOIN_AHEAD` before `target`
    /// needs (one after it comes by its deadline anyway).
    pub(crate) fn want_around(&self, target: DateTime<Utc>) {
        let rate = self.bytes_per_second();
        let est = self.estimate(target);
        let ahead = JOIN_AHEAD.num_milliseconds() as f64 / 1000.0;
        let from = est.saturating_sub((ahead * rate) as u64).max(self.floor);
        self.reader
            .want(from, (est - from.min(est)) as usize + PACKET_LEN);
    }

    /// The first keyframe after the one at `from`, as far as held parts reach.
    pub(crate) fn next_keyframe(&mut self, from: u64) -> Next {
        let mut at = from + PACKET_LEN as u64;
        while at + PACKET_LEN as u64 <= self.size {
            let Some(bytes) = self.reader.bytes(at, PACKET_LEN) else {
                return Next::NotHeld;
            };
            if let Some(p) = Packet::new(&bytes) {
                if p.pid() == self.video && p.starts_h264_keyframe() {
                    if let Some((pts, _)) = p.pes_times() {
                        return Next::At(at, self.at(pts));
                    }
                }
            }
            at += PACKET_LEN as u64;
        }
        Next::End
    }

    fn place(&mut self, offset: u64) {
        self.cursor = offset;
        self.started.clear();
        self.fresh = true;
    }
}

/// Whether a TV entry's head (PAT, PMT, first picture) is held: a player can start it.
pub fn head_ready(content: Arc<alluvium_swarm::Content>) -> bool {
    let mut reader = Reader::new(content);
    let size = reader.size() as usize;
    reader
        .bytes(0, TABLES_WITHIN.min(size))
        .and_then(|head| {
            let program = find_program(&head)?;
            first_video_pts(&head, program.video_pid()?)
        })
        .is_some()
}

/// What follows a keyframe.
pub(crate) enum Next {
    /// The next keyframe: its offset and moment.
    At(u64, DateTime<Utc>),
    /// No keyframe before the entry's end.
    End,
    /// Parts before the next keyframe are not held yet.
    NotHeld,
}

/// The entry on the schedule at `clock`, if its head is held.
pub(crate) fn entry_at(station: &Station, clock: DateTime<Utc>) -> Option<Entry> {
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

/// Where one player's stream is.
struct Player {
    /// The schedule moment the stream has reached: the time of the last PCR sent.
    clock: DateTime<Utc>,
    /// Needs a keyframe to start at (joining, or after running dry).
    lost: bool,
    /// The parts a start needs were asked for in this episode of being lost (once: they are
    /// due already, so every download asks for them before anything else).
    asked: bool,
    /// Has had pictures since it connected.
    playing: bool,
    /// Where the last (re)start was, and the moment of the last picture sent since (the
    /// stream clock, from PCRs, runs ahead of the pictures by the mux delay).
    start: DateTime<Utc>,
    shown: DateTime<Utc>,
    /// Since when the player plays, and from which moment: once it has `PREBUFFER` of
    /// pictures after a (re)start. It plays in real time from there, so what it has left is
    /// `shown` less where it is.
    first: Option<(tokio::time::Instant, DateTime<Utc>)>,
    /// Since when the player has been running dry, counted as stall as it goes.
    dry: Option<tokio::time::Instant>,
}

impl Player {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            clock: now,
            lost: true,
            asked: false,
            playing: false,
            start: now,
            shown: now,
            first: None,
            dry: None,
        }
    }

    /// Adds the time since the last call to the stall count, while running dry.
    fn count_stall(&mut self, station: &Station, heard: DateTime<Utc>) {
        if let Some(since) = self.dry.as_mut() {
            let now = tokio::time::Instant::now();
            let seconds = (now - *since).as_secs_f64();
            station.node.metrics.stall_seconds.inc_by(seconds);
            station
                .node
                .report
                .silence(heard.timestamp_millis(), seconds);
            *since = now;
        }
    }

    /// Places the entry at a keyframe to start at for what players hear now; false (and the
    /// parts a start needs asked for, once) while none is held.
    fn find_start(&mut self, e: &mut Entry, heard: DateTime<Utc>) -> bool {
        match e.keyframe_for(heard) {
            Some((offset, t)) => {
                tracing::debug!(entry = %e.title, offset, at = %t, heard = %heard, "starting at a keyframe");
                e.place(offset);
                (self.clock, self.shown, self.start) = (t, t, t);
                self.lost = false;
                self.asked = false;
                self.first = None;
                true
            }
            None => {
                if !self.asked {
                    tracing::debug!(entry = %e.title, heard = %heard, "no keyframe held to start at: asking");
                    e.want_around(heard);
                    self.asked = true;
                }
                false
            }
        }
    }

    /// The packet at the entry's cursor went out.
    fn sent(&mut self, e: &Entry, bytes: &[u8]) {
        if self.dry.take().is_some() && self.first.is_some() {
            // The player stopped where its pictures ran out and plays on from there.
            self.first = Some((tokio::time::Instant::now(), self.shown));
        }
        self.playing = true;
        if let Some(t) = shown_at(e, bytes) {
            self.shown = self.shown.max(t);
        }
        if self.first.is_none() && self.shown - self.start >= PREBUFFER {
            self.first = Some((tokio::time::Instant::now(), self.start));
        }
    }

    /// Whether missing data can still be waited for: the player has not waited `LATE_GRACE`
    /// past its last picture (it stalls, counted, from when it runs out), or it fills its
    /// buffer and the moment it should hear is not yet well past its start.
    fn may_wait(&mut self, heard: DateTime<Utc>) -> bool {
        if self.first.is_none() {
            return heard - self.start < JOIN_AHEAD + PREBUFFER;
        }
        let left = left(self.first, self.shown);
        if left < TimeDelta::zero() {
            self.dry.get_or_insert_with(tokio::time::Instant::now);
        }
        left > -LATE_GRACE
    }

    /// The data the player needs is later than `LATE_GRACE`: it starts again at a keyframe
    /// where the schedule is, from here on, once one is held.
    fn ran_dry(&mut self, e: &mut Entry) {
        if self.playing {
            self.dry.get_or_insert_with(tokio::time::Instant::now);
        }
        e.floor = e.cursor;
        self.lost = true;
    }
}

/// Runs one player's transport stream until it disconnects (the channel closes).
pub async fn run(station: Arc<Station>, tx: mpsc::Sender<Bytes>) {
    let metrics = station.node.metrics.clone();
    metrics.stream_clients.inc();
    let burst = station.state.burst();
    let base = station.state.heard_now() - LEAD;
    let mut splicer = Splicer::keeping_padding();
    let mut out: Vec<u8> = Vec::with_capacity(CHUNK + PACKET_LEN);
    let mut entry: Option<Entry> = None;
    let mut p = Player::new(station.state.heard_now());
    loop {
        let heard = station.state.heard_now();
        p.count_stall(&station, heard);
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
        if p.lost {
            p.clock = p.clock.max(heard);
        }
        if entry.as_ref().is_none_or(|e| p.lost && heard >= e.slot.end) {
            entry = entry_at(&station, p.clock);
            p.asked &= entry.is_none();
            match entry.as_mut() {
                Some(e) if !p.lost && p.clock <= e.slot.start + SNAP => e.place(0),
                Some(_) => p.lost = true,
                None => {
                    // Dead air, or the next entry not here in time.
                    if p.playing && p.clock < heard + STALL_MARGIN {
                        p.dry.get_or_insert_with(tokio::time::Instant::now);
                        p.lost = true;
                    }
                    if !pause(&tx, &mut out).await {
                        break;
                    }
                    continue;
                }
            }
        }
        let Some(e) = entry.as_mut() else { continue };
        if p.lost && !p.find_start(e, heard) {
            if !pause(&tx, &mut out).await {
                break;
            }
            continue;
        }
        // Paced: nothing due after the live edge is sent yet.
        if p.clock > heard + burst {
            let wait = (p.clock - heard - burst)
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
            p.clock = e.slot.end;
            entry = None;
            continue;
        }
        match e.reader.bytes(e.cursor, PACKET_LEN) {
            Some(bytes) => {
                send_packet(e, &bytes, base, &mut splicer, &mut p.clock, &mut out);
                p.sent(e, &bytes);
                e.cursor += PACKET_LEN as u64;
            }
            None if p.may_wait(heard) => {
                if !pause(&tx, &mut out).await {
                    break;
                }
            }
            None => {
                tracing::debug!(entry = %e.title, offset = e.cursor, clock = %p.clock, heard = %heard, "ran dry");
                p.ran_dry(e);
                if !pause(&tx, &mut out).await {
                    break;
                }
            }
        }
    }
    metrics.stream_clients.dec();
}

/// What a player has left to play: the last picture sent (`shown`) less where it is, having
/// played in real time since `first` (nothing before that).
fn left(first: Option<(tokio::time::Instant, DateTime<Utc>)>, shown: DateTime<Utc>) -> TimeDelta {
    match first {
        Some((when, at)) => {
            let played = TimeDelta::from_std(when.elapsed()).unwrap_or(TimeDelta::MAX);
            shown - (at + played)
        }
        None => TimeDelta::zero(),
    }
}

/// The moment of the picture a packet starts, if it starts one.
fn shown_at(e: &Entry, bytes: &[u8]) -> Option<DateTime<Utc>> {
    let p = Packet::new(bytes)?;
    (p.pid() == e.video)
        .then(|| p.pes_times())
        .flatten()
        .map(|(pts, _)| e.at(pts))
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
    } else if e.program.carries(p.pid()) && !e.started.contains(&p.pid()) {
        return; // the rest of a PES packet begun before the join
    }
    splicer.packet(&p, out);
}
