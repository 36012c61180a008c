//! A local live HLS playlist of a TV station, for browsers (docs/design.md section 8): a
//! browser cannot play a progressive transport stream in `<video>`, but plays HLS (natively
//! or with hls.js).
//!
//! Segments are keyframe-to-keyframe ranges of the entries, cut as the held parts reach and
//! listed once the live edge (the schedule's now) has passed their end, so a browser's player,
//! which starts a few segments from the end, hears about what the stream's players hear.
//! Each is served from the verified store with the stream's own PAT and PMT first. Entry
//! changes, and a skip after data came too late, are `EXT-X-DISCONTINUITY` (counted by
//! `EXT-X-DISCONTINUITY-SEQUENCE` as they leave the window); every segment has its
//! `EXT-X-PROGRAM-DATE-TIME` from the schedule. Sequence numbers are this process's own:
//! the playlist is only ever read from this listener.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::Mutex;

use alluvium_content::Hash;
use alluvium_media::ts::{Packet, Program, Splicer, PACKET_LEN};
use chrono::{DateTime, TimeDelta, Utc};

use crate::client::Station;
use crate::track::Reader;
use crate::tv::{entry_at, Entry, Next};

/// Segments kept in the playlist at most.
const WINDOW: usize = 30;
/// A segment leaves the playlist this long after its end.
const KEPT: TimeDelta = TimeDelta::seconds(90);
// Segments begin at the keyframe at or before the heard moment when the playlist starts, or
// starts again after data came too late: the parts from there on are the ones held first,
// and a browser's player, which starts a few seconds from the end of a live playlist,
// starts there while the playlist is short.
/// The cut waits this long at most for data it needs; then it starts again where the
/// schedule is (a discontinuity).
const STALE: TimeDelta = TimeDelta::seconds(8);
/// Segments cut per request at most (the first request after a while catches up).
const CUTS_PER_CALL: usize = 64;

/// One segment: a keyframe-aligned range of an entry.
#[derive(Debug, Clone)]
struct Segment {
    seq: u64,
    root: Hash,
    program: Program,
    range: std::ops::Range<u64>,
    time: DateTime<Utc>,
    duration: TimeDelta,
    discontinuity: bool,
    title: String,
}

impl Segment {
    fn end(&self) -> DateTime<Utc> {
        self.time + self.duration
    }
}

/// Where the next segment starts.
struct Cut {
    entry: Entry,
    offset: u64,
    time: DateTime<Utc>,
    discontinuity: bool,
}

#[derive(Default)]
struct Packager {
    segments: VecDeque<Segment>,
    next_seq: u64,
    discontinuity_seq: u64,
    /// Whole seconds no segment has exceeded (it only grows, as RFC 8216 asks it not to change).
    target: i64,
    cut: Option<Cut>,
    /// The moment the next entry starts, when the last one ended and the next is not open yet.
    resume_at: Option<DateTime<Utc>>,
    /// The parts a start needs were asked for (once until a start is made: they are due
    /// already, so the download asks for them before anything else).
    asked: bool,
}

/// The playlist and its segments, shared by every browser of this listener.
#[derive(Default)]
pub struct Hls {
    packager: Mutex<Packager>,
}

impl Hls {
    /// The playlist as of now (RFC 8216 media playlist, live).
    pub fn playlist(&self, station: &Station) -> String {
        let mut p = self.packager.lock().unwrap_or_else(|e| e.into_inner());
        p.advance(station);
        p.render()
    }

    /// Segment `seq`'s bytes: the stream's tables, then its packets; `None` when it is not in
    /// the window or its parts are gone.
    pub fn segment(&self, station: &Station, seq: u64) -> Option<Vec<u8>> {
        let segment = {
            let p = self.packager.lock().unwrap_or_else(|e| e.into_inner());
            p.segments.iter().find(|s| s.seq == seq)?.clone()
        };
        let content = station.node.store.get(&segment.root)?;
        let mut reader = Reader::new(content);
        let len = (segment.range.end - segment.range.start) as usize;
        let bytes = reader.bytes(segment.range.start, len)?;
        let mut splicer = Splicer::new();
        splicer.begin(&segment.program, 0);
        let mut out = Vec::with_capacity(bytes.len() + 2 * PACKET_LEN);
        splicer.tables(&mut out);
        for chunk in bytes.chunks_exact(PACKET_LEN) {
            if let Some(p) = Packet::new(chunk) {
                splicer.packet(&p, &mut out);
            }
        }
        Some(out)
    }
}

impl Packager {
    /// Cuts the segments whose end the live edge has passed, as far as held parts reach.
    fn advance(&mut self, station: &Station) {
        let now = station.state.now();
        for _ in 0..CUTS_PER_CALL {
            if self.cut.is_none() && !self.start(station, now) {
                break;
            }
            let Some(cut) = self.cut.as_mut() else { break };
            let (end, end_time) = match cut.entry.next_keyframe(cut.offset) {
                Next::At(offset, time) => (offset, time),
                Next::End => (cut.entry.size, cut.entry.slot.end),
                Next::NotHeld => {
                    if now - cut.time > STALE {
                        self.cut = None; // too late: start again where the schedule is
                    }
                    break;
                }
            };
            if end_time > now {
                break; // not on air to its end yet
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            let entry = &cut.entry;
            self.segments.push_back(Segment {
                seq,
                root: entry.root,
                program: entry.program.clone(),
                range: cut.offset..end,
                time: cut.time,
                duration: end_time - cut.time,
                discontinuity: cut.discontinuity,
                title: entry.title.clone(),
            });
            if end >= entry.size {
                self.resume_at = Some(entry.slot.end);
                self.cut = None;
            } else {
                cut.offset = end;
                cut.time = end_time;
                cut.discontinuity = false;
            }
        }
        while self.segments.len() > WINDOW
            || self.segments.front().is_some_and(|s| s.end() + KEPT < now)
        {
            if let Some(s) = self.segments.pop_front() {
                self.discontinuity_seq += u64::from(s.discontinuity);
            }
        }
        for s in &self.segments {
            let seconds = (s.duration.num_milliseconds() + 999) / 1000;
            self.target = self.target.max(seconds).max(1);
        }
    }

    /// Places the cut: at the next entry's start, after an entry ended; else at a keyframe a
    /// little before the heard moment. False when nothing there is held yet.
    fn start(&mut self, station: &Station, now: DateTime<Utc>) -> bool {
        if let Some(at) = self.resume_at {
            if now - at < STALE {
                let Some(entry) = entry_at(station, at).filter(|e| e.slot.start == at) else {
                    return false;
                };
                self.cut = Some(Cut {
                    time: entry.slot.start,
                    entry,
                    offset: 0,
                    discontinuity: true,
                });
                self.resume_at = None;
                return true;
            }
            self.resume_at = None;
        }
        let target = station.state.heard_now();
        let Some(mut entry) = entry_at(station, target) else {
            return false;
        };
        match entry.keyframe_for(target) {
            Some((offset, time)) => {
                self.asked = false;
                self.cut = Some(Cut {
                    entry,
                    offset,
                    time,
                    discontinuity: !self.segments.is_empty(),
                });
                true
            }
            None => {
                if !self.asked {
                    entry.want_around(target);
                    self.asked = true;
                }
                false
            }
        }
    }

    fn render(&self) -> String {
        let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
        let _ = writeln!(m, "#EXT-X-TARGETDURATION:{}", self.target.max(1));
        let first = self.segments.front().map_or(self.next_seq, |s| s.seq);
        let _ = writeln!(m, "#EXT-X-MEDIA-SEQUENCE:{first}");
        let _ = writeln!(
            m,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            self.discontinuity_seq
        );
        for s in &self.segments {
            if s.discontinuity {
                m.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(
                m,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                s.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
            let title: String = s
                .title
                .chars()
                .filter(|c| !c.is_control() && *c != ',')
                .collect();
            let _ = writeln!(
                m,
                "#EXTINF:{:.3},{title}",
                s.duration.num_milliseconds() as f64 / 1000.0
            );
            let _ = writeln!(m, "/hls/{}.ts", s.seq);
        }
        m
    }
}
