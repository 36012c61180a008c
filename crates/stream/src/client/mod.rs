//! One player's stream: frames of what is on air, paced at the media's own rate from the
//! schedule, silence where there is nothing to play.
//!
//! Joining is Icecast's (design section 4): the stream's live edge is the schedule's now, and a
//! new player gets the last `burst` seconds at once, then real time, so every player hears the
//! schedule a burst late, alike (`StationState::heard_now`). The client keeps a stream clock:
//! the scheduled time of the next frame it sends. It starts at the heard moment (the frame
//! nearest it) and runs up to the live edge. Each entry is anchored at its slot's start and
//! counted in samples from there, so nothing drifts; at the slot's end the next entry's first
//! audio frame follows the last frame of this one (no tags, no Xing frame in between). Missing
//! data when the player's ear reaches it, or no entry, is filled with silent frames of the
//! station's shape and counted in `stall_seconds`; when data is back the stream rejoins the
//! schedule where it is by then.
//!
//! Ogg stations are chained Ogg streams: each entry, and each rejoin, starts a new logical
//! stream (a fresh serial number, the entry's header pages with its title in the comments),
//! and pages are copied with that serial and their own sequence numbers. Silence is the
//! codec's silent packet, inside the open logical stream (or a new one after an entry ended).

use std::sync::Arc;
use std::time::Duration;

use alluvium_playlist::Slot;
use alluvium_swarm::Metrics;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc;

use alluvium_media::{OggHead, PageWriter};

pub use crate::station::Station;

use crate::icy::IcyWriter;
use crate::silence::{count_silence, Gap};
use crate::track::{Advance, Format, Kind, Track, Unit};

/// Data for a frame due later than this is waited for; closer than this, the frame is
/// given up as a stall and played as silence (unless `LATE_GRACE` applies).
const STALL_MARGIN: TimeDelta = TimeDelta::milliseconds(500);
/// A frame whose data is late is waited for until this long after its moment (the stream
/// stays within a second of the schedule) while the player surely has more than
/// `BUFFER_FLOOR` of audio left to play: a part that comes that late then plays without a
/// gap, where it was silence before. What the player has left is at least the audio sent
/// since its first sound less the time since then (it cannot play faster than real time,
/// and starts after a prebuffer), so the wait never empties it (docs/decisions/016).
const LATE_GRACE: TimeDelta = TimeDelta::milliseconds(1_000);
/// See `LATE_GRACE`.
const BUFFER_FLOOR: TimeDelta = TimeDelta::milliseconds(500);
/// Within this of a slot's start, the stream starts the entry at its first frame.
const SNAP: TimeDelta = TimeDelta::milliseconds(80);
/// Joining an Ogg entry, pages are walked from about this long before the moment.
const OGG_EARLY: TimeDelta = TimeDelta::seconds(2);
/// Bytes gathered before a write to the player.
const CHUNK: usize = 8 * 1024;
/// A new player whose moment is not held yet gets nothing (rather than silence) for up to
/// this long, its moment moving with real time: when data arrives it starts with sound, at
/// the heard moment, and gets its burst at once.
const JOIN_WAIT: Duration = Duration::from_secs(3);
/// A new player whose moment is not held yet, while a moment a little later is (the part
/// after the one heard now came first), starts there at once, up to this far ahead of the
/// others (and never past the live edge), rather than waiting for its own moment's part. A
/// player starts late by its own buffering anyway; this takes some of that back, and players
/// stay within a second of each other.
const JOIN_AHEAD: TimeDelta = TimeDelta::milliseconds(1_000);
/// The steps in which `JOIN_AHEAD` is searched for held audio.
const JOIN_STEP: TimeDelta = TimeDelta::milliseconds(100);

struct Playing {
    slot: Slot,
    title: String,
    /// Vorbis comments for an Ogg link: title and artist.
    comments: Vec<(&'static str, String)>,
    track: Track,
    /// An Ogg link must start (headers) before the next page.
    new_link: bool,
    cursor: u64,
    /// Scheduled time of the frame at which `samples` started counting.
    anchor: DateTime<Utc>,
    samples: u64,
    rate: u32,
    /// Lost the thread (missing data): rejoin at the stream clock.
    rejoin: bool,
}

impl Playing {
    /// The data at the cursor did not come in time for `clock`: silence until it is held,
    /// then rejoin the schedule.
    fn lost(&mut self, clock: DateTime<Utc>) {
        tracing::debug!(title = %self.title, clock = %clock.format("%H:%M:%S%.3f"),
            offset = self.cursor, "not held in time: silence until it is");
        self.rejoin = true;
    }

    /// Moves past `unit`, the entry's next unit: the cursor, the samples played, and the
    /// stream `clock` when the unit moves time on.
    fn advance(&mut self, unit: &Unit, clock: &mut DateTime<Utc>) {
        self.cursor = if unit.last {
            self.track.audio_end
        } else {
            self.cursor + unit.len
        };
        match unit.advance {
            Advance::By(n) => self.samples += n,
            Advance::To(n) => self.samples = n,
            Advance::None => {}
        }
        self.rate = unit.rate;
        if unit.advance != Advance::None {
            *clock = self.anchor + samples_to(self.samples, self.rate);
        }
    }
}

fn samples_to(samples: u64, rate: u32) -> TimeDelta {
    if rate == 0 {
        return TimeDelta::zero();
    }
    TimeDelta::microseconds((u128::from(samples) * 1_000_000 / u128::from(rate)) as i64)
}

/// Where a media time falls in the file's audio (exact for CBR; the next frame boundary is
/// found from there).
fn estimate_offset(track: &Track, slot: &Slot, at: DateTime<Utc>) -> u64 {
    let total = slot.duration().num_microseconds().unwrap_or(1).max(1) as f64;
    let into = (at - slot.start).num_microseconds().unwrap_or(0).max(0) as f64;
    // The map the download times its parts by (a VBR file's seek table, or the proportion).
    track.audio_map().offset_at(into / total)
}

/// The scheduled time of the frame at `offset`, by the same mapping.
fn offset_time(track: &Track, slot: &Slot, offset: u64) -> DateTime<Utc> {
    let frac = track.audio_map().fraction_at(offset);
    let total = slot.duration().num_microseconds().unwrap_or(0) as f64;
    slot.start + TimeDelta::microseconds((total * frac) as i64)
}

/// How far the player's ear is ahead of where players should be (negative: behind), from what
/// the stream has sent: the scheduled moment of the last audio gathered (`clock`), less the
/// audio the player has not played yet (`sent` since its first sound, less the time since),
/// against the heard moment `now` (the schedule's now less the burst). A player plays from
/// its first sound in real time; one that waits to fill a buffer first is behind by that too,
/// which the stream cannot see. `None` before the first sound.
fn drift(
    clock: DateTime<Utc>,
    sent: TimeDelta,
    since_first_sound: Option<Duration>,
    now: DateTime<Utc>,
) -> Option<TimeDelta> {
    let played = TimeDelta::from_std(since_first_sound?).ok()?;
    Some(clock - (sent - played) - now)
}

/// Sends what is ready, showing the `heard` drift, or, with nothing ready, waits `ahead` (how
/// far the stream clock is past the live edge). `false` when the player has gone.
async fn send_or_wait(
    tx: &mpsc::Sender<Bytes>,
    out: &mut Vec<u8>,
    ahead: TimeDelta,
    heard: Option<TimeDelta>,
    metrics: &Metrics,
) -> bool {
    if let Some(d) = heard {
        metrics
            .schedule_drift_seconds
            .set(d.num_microseconds().unwrap_or(0) as f64 / 1e6);
    }
    if !out.is_empty() {
        return tx.send(Bytes::from(std::mem::take(out))).await.is_ok();
    }
    let wait = ahead.to_std().unwrap_or(Duration::ZERO);
    tokio::select! {
        _ = tx.closed() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}

/// Runs one player's stream until it disconnects (the channel closes).
pub async fn run(station: Arc<Station>, tx: mpsc::Sender<Bytes>, mut icy: Option<IcyWriter>) {
    let metrics = station.node.metrics.clone();
    metrics.stream_clients.inc();
    let burst = station.state.burst();
    let mut clock = station.state.heard_now();
    let mut playing: Option<Playing> = None;
    let mut output = Output::new(station.kind(), clock);
    let mut title = String::new();
    let mut out: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    let connected = tokio::time::Instant::now();
    // Audio sent since the first sound (MP3 frames and silence; Ogg pages are not counted,
    // so an Ogg stream never waits past `STALL_MARGIN`), and when that was (`None`: the
    // player has had no sound yet).
    let mut sent = TimeDelta::zero();
    let mut first_sound: Option<tokio::time::Instant> = None;
    // How far ahead of the schedule the player started (`JOIN_AHEAD`): it plays each frame
    // that much before its moment, so every wait ends that much sooner.
    let mut early = TimeDelta::zero();
    let mut gap = Gap::default();
    loop {
        // The moment the player's ear is at, had it played from the first sound without a gap.
        let now = station.state.heard_now();
        let margin = wait_margin(sent, first_sound.map(|t| t.elapsed()), early);
        if clock - burst > now || out.len() >= CHUNK {
            // Ogg pages are not counted in `sent`: no measure for them.
            let heard = drift(clock, sent, first_sound.map(|t| t.elapsed()), now)
                .filter(|_| output.kind() == Kind::Mpeg);
            if !send_or_wait(&tx, &mut out, clock - burst - now, heard, &metrics).await {
                break;
            }
            continue;
        }

        // The entry for the stream clock.
        if playing
            .as_ref()
            // A lost entry whose slot is over is done with, found or not.
            .is_none_or(|p| p.cursor >= p.track.audio_end || (p.rejoin && clock >= p.slot.end))
        {
            playing = next_entry(&station, playing.take(), clock, output.kind());
            if let Some(p) = &playing {
                output.learn_shape(&p.track);
            }
        }
        let unit = match playing.as_mut() {
            Some(p) => {
                if p.rejoin {
                    rejoin(p, clock);
                }
                let at = if p.rejoin {
                    None
                } else {
                    p.track.unit(p.cursor)
                };
                match at {
                    Some(Ok(unit)) => {
                        p.advance(&unit, &mut clock);
                        title.clone_from(&p.title);
                        Some(unit)
                    }
                    // Junk: find the next frame or page.
                    Some(Err(())) => {
                        match p.track.sync(p.cursor + 1) {
                            Some(next) => p.cursor = next,
                            None => p.cursor = p.track.audio_end,
                        }
                        continue;
                    }
                    // Not held yet: wait while there is time, else it is a stall.
                    None if clock - now > margin => {
                        if !pause(&tx, &mut out).await {
                            break;
                        }
                        continue;
                    }
                    None => {
                        p.lost(clock);
                        None
                    }
                }
            }
            // No entry playable yet (not resolved, head not held, dead air): wait while the
            // moment is still ahead, else play silence.
            None if clock - now > margin => {
                if !pause(&tx, &mut out).await {
                    break;
                }
                continue;
            }
            None => None,
        };
        if unit.is_none() && first_sound.is_none() && connected.elapsed() < JOIN_WAIT {
            let reach = JOIN_AHEAD.min(burst);
            if let Some(ahead) = playing.as_mut().and_then(|p| start_ahead(p, now, reach)) {
                early = ahead;
                continue;
            }
            if !pause(&tx, &mut out).await {
                break;
            }
            clock = station.state.heard_now();
            if let Some(p) = playing.as_mut() {
                p.rejoin = true;
            }
            continue;
        }
        match unit {
            Some(unit) => {
                if let Some(p) = playing.as_mut() {
                    gap.ended();
                    output.audio(p, &unit, &mut icy, &title, &mut out);
                    first_sound.get_or_insert_with(tokio::time::Instant::now);
                    if let Advance::By(samples) = unit.advance {
                        sent += samples_to(samples, unit.rate);
                    }
                }
            }
            None => match output.silence(&mut icy, &title, &mut out) {
                Some(d) => {
                    count_silence(&station, &mut gap, &title, clock, d);
                    clock += d;
                    sent += d;
                }
                None => {
                    // Nothing has ever played: no shape for silence yet. Wait for data.
                    if !pause(&tx, &mut out).await {
                        break;
                    }
                    clock = station.state.heard_now();
                }
            },
        }
    }
    metrics.stream_clients.dec();
}

/// Sends what is gathered and waits a moment for data; false when the player is gone.
pub(crate) async fn pause(tx: &mpsc::Sender<Bytes>, out: &mut Vec<u8>) -> bool {
    if !flush(tx, out).await {
        return false;
    }
    tokio::select! {
        _ = tx.closed() => false,
        _ = tokio::time::sleep(Duration::from_millis(50)) => true,
    }
}

/// Sends what is gathered; false when the player is gone.
pub(crate) async fn flush(tx: &mpsc::Sender<Bytes>, out: &mut Vec<u8>) -> bool {
    out.is_empty() || tx.send(Bytes::from(std::mem::take(out))).await.is_ok()
}

fn write(icy: &mut Option<IcyWriter>, audio: &[u8], title: &str, out: &mut Vec<u8>) {
    match icy {
        Some(w) => w.write(audio, title, out),
        None => out.extend_from_slice(audio),
    }
}

/// What the player is sent, per format: MPEG frames as they are, Ogg pages rewritten into
/// the stream's chain of logical streams; and silence in the same shape.
enum Output {
    Mpeg {
        /// The last frame header played: the shape of silence.
        template: Option<[u8; 4]>,
    },
    Ogg {
        /// The logical stream being written, until its last page.
        link: Option<Link>,
        /// The last entry's headers: the shape of silence when no link is open.
        template: Option<Arc<OggHead>>,
        /// The next link's serial number.
        serial: u32,
    },
}

struct Link {
    writer: PageWriter,
    granule: i64,
    head: Arc<OggHead>,
}

/// Dead air is filled in pieces of about this much.
const SILENCE_PIECE: TimeDelta = TimeDelta::milliseconds(200);

impl Output {
    fn new(kind: Kind, seed: DateTime<Utc>) -> Self {
        match kind {
            // A TV station's players are served by `crate::tv`; this never carries video.
            Kind::Mpeg | Kind::Ts => Output::Mpeg { template: None },
            Kind::Ogg => Output::Ogg {
                link: None,
                template: None,
                // Serial numbers need only differ between links of one stream; a per-client
                // start keeps players that record several streams from seeing equal ones.
                serial: seed.timestamp_subsec_nanos() | 1,
            },
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Output::Mpeg { .. } => Kind::Mpeg,
            Output::Ogg { .. } => Kind::Ogg,
        }
    }

    /// Takes the shape of silence from an entry's layout when none is known yet, so a player
    /// that connects before the data at its moment has arrived hears silence at once (and
    /// the entry from where the schedule is when it comes), not nothing.
    fn learn_shape(&mut self, track: &Track) {
        match (self, &track.format) {
            (Output::Mpeg { template }, Format::Mpeg(layout)) if template.is_none() => {
                *template = Some(layout.first_bytes);
            }
            (Output::Ogg { template, .. }, Format::Ogg(head)) if template.is_none() => {
                *template = Some(head.clone());
            }
            _ => {}
        }
    }

    fn audio(
        &mut self,
        p: &mut Playing,
        unit: &Unit,
        icy: &mut Option<IcyWriter>,
        title: &str,
        out: &mut Vec<u8>,
    ) {
        match (self, &p.track.format) {
            (Output::Mpeg { template }, Format::Mpeg(layout)) => {
                *template = Some(layout.first_bytes);
                write(icy, &unit.bytes, title, out);
            }
            (
                Output::Ogg {
                    link,
                    template,
                    serial,
                },
                Format::Ogg(head),
            ) => {
                if unit.bytes.is_empty() {
                    return;
                }
                if p.new_link || link.is_none() {
                    let tags: Vec<(&str, &str)> =
                        p.comments.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    *link = Some(start_link(head.clone(), serial, &tags, out));
                    *template = Some(head.clone());
                    p.new_link = false;
                }
                if let Some(l) = link.as_mut() {
                    l.writer.copy(&unit.bytes, out);
                    if let Advance::To(g) = unit.advance {
                        l.granule = (g + head.pre_skip) as i64;
                    }
                }
                if unit.last {
                    *link = None;
                }
            }
            // An entry of another format than the station's is never opened.
            _ => {}
        }
    }

    /// Writes a piece of silence and says how long it lasts; `None` when there is no shape
    /// for it yet (nothing has played).
    fn silence(
        &mut self,
        icy: &mut Option<IcyWriter>,
        title: &str,
        out: &mut Vec<u8>,
    ) -> Option<TimeDelta> {
        match self {
            Output::Mpeg { template } => {
                let silence = alluvium_media::silent_frame((*template)?)?;
                let d = alluvium_media::FrameHeader::parse(&silence)
                    .map(|h| samples_to(u64::from(h.samples), h.sample_rate))
                    .unwrap_or(TimeDelta::milliseconds(26));
                write(icy, &silence, title, out);
                Some(d)
            }
            Output::Ogg {
                link,
                template,
                serial,
            } => {
                if link.is_none() {
                    let head = template.clone()?;
                    *link = Some(start_link(head, serial, &[("TITLE", title)], out));
                }
                let l = link.as_mut()?;
                let (packet, samples) = l.head.silent_packet()?;
                let per_piece = (SILENCE_PIECE.num_microseconds().unwrap_or(200_000) as u64
                    * u64::from(l.head.rate)
                    / 1_000_000)
                    .div_ceil(samples)
                    .clamp(1, 255);
                let packets = vec![packet.as_slice(); per_piece as usize];
                l.granule += (per_piece * samples) as i64;
                l.writer.packets(&packets, l.granule, false, out);
                Some(samples_to(per_piece * samples, l.head.rate))
            }
        }
    }
}

/// Starts a logical stream: the header pages, with `tags` as its comments.
fn start_link(
    head: Arc<OggHead>,
    serial: &mut u32,
    tags: &[(&str, &str)],
    out: &mut Vec<u8>,
) -> Link {
    let mut writer = PageWriter::new(*serial);
    *serial = serial.wrapping_add(1);
    let packets = head.with_comments(tags);
    if let Some((first, rest)) = packets.split_first() {
        // The identification header alone on the first page, as both codecs require.
        writer.packets(&[first.as_slice()], 0, true, out);
        let rest: Vec<&[u8]> = rest.iter().map(Vec::as_slice).collect();
        writer.packets(&rest, 0, false, out);
    }
    Link {
        writer,
        granule: 0,
        head,
    }
}

/// The entry to play from stream time `clock`, after `previous` (finished), positioned.
fn next_entry(
    station: &Station,
    previous: Option<Playing>,
    clock: DateTime<Utc>,
    kind: Kind,
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
    if track.kind() != kind {
        return None; // not the station's format: dead air
    }
    let rate = match &track.format {
        Format::Mpeg(layout) => layout.first.sample_rate,
        Format::Ogg(head) => head.rate,
    };
    let mut comments = vec![(
        "TITLE",
        entry.title.clone().unwrap_or_else(|| entry.display_title()),
    )];
    if let Some(artist) = entry.creator.clone().filter(|c| !c.is_empty()) {
        comments.push(("ARTIST", artist));
    }
    let mut p = Playing {
        slot,
        title: entry.display_title(),
        comments,
        cursor: track.audio_start,
        anchor: slot.start,
        samples: 0,
        rate,
        track,
        new_link: true,
        rejoin: false,
    };
    if clock - slot.start > SNAP {
        rejoin(&mut p, clock);
    }
    Some(p)
}

/// The frame at the stream clock is waited for while it is due later than now plus this:
/// `-LATE_GRACE` while the player surely has more than `BUFFER_FLOOR` of audio left (`sent`
/// since its first sound, `since` then), else `STALL_MARGIN`; both plus `early`, how far
/// ahead of the schedule the player started: one started 1 s ahead runs dry 1 s before the
/// moment it waits for.
fn wait_margin(sent: TimeDelta, since: Option<Duration>, early: TimeDelta) -> TimeDelta {
    let left = since.map(|t| sent - TimeDelta::from_std(t).unwrap_or(TimeDelta::MAX));
    early
        + if left.is_some_and(|left| left > BUFFER_FLOOR) {
            -LATE_GRACE
        } else {
            STALL_MARGIN
        }
}

/// Positions `p` at the first held unit within `reach` after `now` (in the entry on air),
/// if there is one, and says how far ahead that is; otherwise leaves it as it was.
fn start_ahead(p: &mut Playing, now: DateTime<Utc>, reach: TimeDelta) -> Option<TimeDelta> {
    let mut ahead = JOIN_STEP;
    while ahead <= reach && now + ahead < p.slot.end {
        let before = (p.cursor, p.anchor, p.samples, p.new_link, p.rejoin);
        rejoin(p, now + ahead);
        if !p.rejoin && matches!(p.track.unit(p.cursor), Some(Ok(_))) {
            return Some(ahead);
        }
        (p.cursor, p.anchor, p.samples, p.new_link, p.rejoin) = before;
        ahead += JOIN_STEP;
    }
    None
}

/// Positions `p` at the frame for stream time `clock`.
fn rejoin(p: &mut Playing, clock: DateTime<Utc>) {
    if clock >= p.slot.end {
        p.cursor = p.track.audio_end; // its time is over
        p.rejoin = false;
        return;
    }
    let start = match p.track.format {
        Format::Mpeg(_) => p.track.sync(estimate_offset(&p.track, &p.slot, clock)),
        // Pages carry their time: walk from a little before the moment to the nearest start.
        Format::Ogg(_) => {
            let early = estimate_offset(&p.track, &p.slot, clock - OGG_EARLY);
            let target = (clock - p.slot.start)
                .num_microseconds()
                .unwrap_or(0)
                .max(0) as u128
                * u128::from(p.rate)
                / 1_000_000;
            p.track
                .sync(early)
                .and_then(|from| p.track.ogg_join(from, target as u64))
        }
    };
    match start {
        Some(frame) => {
            tracing::debug!(title = %p.title, clock = %clock.format("%H:%M:%S%.3f"),
                offset = frame, "joined the entry");
            p.cursor = frame;
            match p.track.format {
                // Frames count samples from here.
                Format::Mpeg(_) => {
                    p.anchor = offset_time(&p.track, &p.slot, frame);
                    p.samples = 0;
                }
                // Pages carry their position in the entry; a new link starts here.
                Format::Ogg(_) => {
                    p.anchor = p.slot.start;
                    p.new_link = true;
                }
            }
            p.rejoin = false;
        }
        // The bytes there are not held either: stay lost, play silence.
        None => p.rejoin = true,
    }
}

#[cfg(test)]
mod tests;
