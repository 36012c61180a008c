//! Which part to ask of whom, and when to give up: the deterministic core of a download.
//!
//! No I/O and no clock: time comes in as `now` (milliseconds), randomness as an `Rng`. The
//! async shell ([`crate::download`]) turns [`Request`]s into HTTP requests and reports back
//! with [`Picker::completed`] and [`Picker::failed`].
//!
//! Rules, in the order they apply:
//! 1. **Peers first.** With deadlines (a schedule), part by part: parts due within
//!    `peer_in_order_ms` in deadline order (the first part, which says where the audio lies,
//!    and parts a reader waits for out of order are due at the entry's start however long it
//!    has played), later ones rarest first (`spread_slots` of those even while due parts
//!    are missing), each asked of a free peer that holds it
//!    (fewest of our requests, at random among equals), up to `peer_slots` per peer and
//!    `peer_total_slots` in all. Without (a plain fetch), each usable peer gets up to
//!    `peer_slots` requests for the rarest parts it has and we lack, from a random start.
//!    A listener tuning in to an entry on air also asks for the part playing now
//!    (`join_ms`), when enough peers hold it to spare a copy, and, while it has just
//!    started, the parts of its first seconds that many peers hold past the cap
//!    (`focus_wide_slots`).
//! 2. **The origin only for what no peer can give in time**: a part whose deadline is within
//!    `urgent_ms` and that no peer is already sending in time, and, ahead of time, parts that no
//!    known peer holds and that this listener *owns*: each block of `max_run` parts belongs to
//!    the swarm member (this node and the peers whose ids the tracker gave) with the highest
//!    rendezvous hash of (member, block). Every listener computes the same owners from nearly
//!    the same member list, so many listeners fetching one file ask the origin for different
//!    blocks and trade them, and the origin sends each part about once. A block whose owner
//!    does not deliver (no peer news for `orphan_ms`) is taken by whoever is free, at random.
//! 3. **Late requests are re-issued elsewhere**: a request older than `late_ms`, or one whose
//!    parts fall due within `urgent_ms` while still in flight after `urgent_late_ms`, may be
//!    asked of another source (at most two requests per part). When every missing part is in
//!    flight (the endgame) idle peers duplicate them; whichever copy lands first wins and the
//!    others are cancelled ([`Picker::completed`] says which).
//! 4. **Scoring.** Throughput (an average of bytes per millisecond) orders the peers. A failed
//!    or timed-out request backs a peer off (1 s, doubling); a `416` for a part it claimed loses
//!    it that claim, and three such claims drop it for the session; a part that fails
//!    verification bans it for the session and it is never asked again.

mod asks;
mod config;
mod deadline;
mod inflight;
mod model;
mod origin;
mod ownership;
mod peers;
#[cfg(test)]
mod tests;
mod timeout;

use std::collections::HashMap;
use std::net::SocketAddr;

use rand::Rng;

use crate::bitfield::Bitfield;

pub use config::PickerConfig;
pub use deadline::{AudioMap, Deadlines};
pub use model::Model;
pub use ownership::member_hash;

use inflight::Inflight;
use ownership::Ownership;
use peers::PeerState;

/// A part due this long ago has been played (as silence) already: it is no longer urgent,
/// and the origin is not asked for it.
const MISSED_MS: i64 = 1_000;
/// A busy peer (`503`) is not asked again for this long.
const BUSY_BACKOFF_MS: u64 = 500;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Origin,
    Peer(SocketAddr),
}

/// One request to make: parts `first..first+count` from `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub first: u32,
    pub count: u32,
    pub source: Source,
    /// With deadlines, how long until the first part is due (ms; negative: overdue).
    pub due_in_ms: Option<i64>,
}

/// How a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Bytes that failed verification (from a peer: ban it).
    BadData,
    /// A peer answered 416: it does not hold what its bitfield claimed.
    NotHeld,
    /// A peer answered 503: it is serving as much as it can; not a fault.
    Busy,
    /// No answer in time, or the body stopped coming.
    TimedOut,
    /// Answered with a status that is neither the parts nor one of the above.
    Refused { status: u16 },
    /// The connection failed or broke off, or the body broke the protocol (longer than asked,
    /// or not one whole part).
    Broken,
    /// The origin's file changed (`If-Range`): its bytes are no longer this content.
    Changed,
    /// This node could not keep the bytes (its store failed): not the source's fault.
    Local,
}

impl Failure {
    /// Whether the source is at fault, and the failure counts against it.
    pub fn is_remote(self) -> bool {
        !matches!(self, Failure::Busy | Failure::Local)
    }
}

/// What a failure did to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerVerdict {
    Fine,
    /// The peer has just been banned for the session (bad data, or too many false claims).
    Banned,
}

/// The scheduling state of one content's download.
#[derive(Debug, Clone)]
pub struct Picker {
    have: Bitfield,
    /// How many known, unbanned peers hold each part.
    avail: Vec<u16>,
    peers: HashMap<SocketAddr, PeerState>,
    requests: HashMap<u64, Inflight>,
    /// Requests covering each part (at most two).
    by_part: HashMap<u32, Vec<u64>>,
    origin_inflight: usize,
    /// Of those, requests ahead of time: they have their own slots, so rescues that are
    /// slow on a congested origin never starve the owners' fetches (which would turn
    /// every part into a rescue).
    origin_ahead_inflight: usize,
    origin_backoff_until: u64,
    origin_failures: u32,
    origin_enabled: bool,
    deadlines: Deadlines,
    config: PickerConfig,
    next_id: u64,
    /// This node's member hash.
    me: u64,
    /// When this node started (ms since the Unix epoch).
    my_start_ms: u64,
    /// When this node joined the swarm (see `set_joined`).
    my_joined_ms: Option<u64>,
    /// The picker's time 0 in ms since the Unix epoch (`None`: unknown; owners are then
    /// the first members whatever the block).
    epoch_ms: Option<u64>,
    /// This node's rank per block among the members it knows (0: the owner), and whether
    /// the block is taken late, recomputed when the members change.
    owned: Option<Vec<Ownership>>,
    /// When a peer last gained parts (ms).
    last_news: u64,
    /// Parts readers wait for out of play order (see `pinned`).
    wanted: Vec<u32>,
    /// Another download of this node is short (see `PickerConfig::short_ms`).
    yielding: bool,
    /// The tracker has answered: peers it named are known (none known: alone).
    tracker_answered: bool,
    /// The members known are the whole swarm (see `set_members_whole`).
    members_whole: bool,
    /// Each block's owner as this node saw it when the block was taken ahead of time
    /// (`note_takers`), by block, for the blocks whose time has come.
    taken_by: Vec<Option<u64>>,
}

impl Picker {
    /// A picker for `parts` parts, some already held. `me` is this node's [`member_hash`].
    pub fn new(have: Bitfield, deadlines: Deadlines, config: PickerConfig, me: u64) -> Self {
        Self {
            avail: vec![0; have.len() as usize],
            have,
            peers: HashMap::new(),
            requests: HashMap::new(),
            by_part: HashMap::new(),
            origin_inflight: 0,
            origin_ahead_inflight: 0,
            origin_backoff_until: 0,
            origin_failures: 0,
            origin_enabled: true,
            deadlines,
            config,
            next_id: 1,
            me,
            my_start_ms: 0,
            my_joined_ms: None,
            epoch_ms: None,
            owned: None,
            last_news: 0,
            wanted: Vec::new(),
            yielding: false,
            tracker_answered: false,
            members_whole: true,
            taken_by: Vec::new(),
        }
    }

    /// How many known peers hold `part` (for logs).
    pub fn availability(&self, part: u32) -> u16 {
        self.avail.get(part as usize).copied().unwrap_or(0)
    }

    /// How many known peers hold each part.
    pub fn availabilities(&self) -> &[u16] {
        &self.avail
    }

    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    pub fn is_complete(&self) -> bool {
        self.have.is_complete()
    }

    /// Stops (or resumes) asking the origin: its file changed, only peers can finish.
    pub fn set_origin_enabled(&mut self, enabled: bool) {
        self.origin_enabled = enabled;
    }

    /// The tracker has answered (the peers it knows are added): no need to wait for it.
    pub fn set_tracker_answered(&mut self) {
        self.tracker_answered = true;
    }

    pub fn set_deadlines(&mut self, deadlines: Deadlines) {
        self.deadlines = deadlines;
    }

    /// Where the entry's audio lies, once a reader has found it (see [`Deadlines::Audio`];
    /// `None`: not yet, the whole file counts).
    pub fn set_audio(&mut self, map: Option<AudioMap>) {
        if let Some(map) = map {
            let deadlines = std::mem::replace(&mut self.deadlines, Deadlines::None);
            self.deadlines = deadlines.with_audio(map);
        }
    }

    /// The requests to make now.
    pub fn next(&mut self, now: u64, rng: &mut impl Rng) -> Vec<Request> {
        let mut out = Vec::new();
        if self.is_complete() {
            return out;
        }
        self.note_takers(now);

        // 1. Peers: with deadlines, the most urgent parts each to a free peer holding it;
        // without, best peers first, each with what it is best placed to send.
        if self.deadlines != Deadlines::None {
            self.ask_peers_by_deadline(now, rng, &mut out);
        } else {
            self.ask_peers_by_rarity(now, rng, &mut out);
        }

        // 2. The origin: urgent parts no peer sends in time, then parts no peer holds.
        self.ask_origin(now, rng, &mut out);
        out
    }

    /// Requests in flight.
    pub fn inflight(&self) -> usize {
        self.requests.len()
    }
}
