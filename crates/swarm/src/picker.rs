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

use std::collections::HashMap;
use std::net::SocketAddr;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

use crate::bitfield::Bitfield;

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
    /// Connection error, bad status, timeout, cancelled by the shell for slowness.
    Error,
}

/// When each part is due, if the download has deadlines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Deadlines {
    /// A plain fetch: no part is more urgent than another.
    None,
    /// Part `p` is due at `start_ms + p * per_part_ms` (estimated from the entry's duration
    /// until the frame index is known).
    Linear { start_ms: i64, per_part_ms: f64 },
}

impl Deadlines {
    pub fn of(&self, part: u32) -> Option<i64> {
        match *self {
            Deadlines::None => None,
            Deadlines::Linear {
                start_ms,
                per_part_ms,
            } => Some(start_ms + (f64::from(part) * per_part_ms) as i64),
        }
    }
}

/// Tuning of the picker; the defaults suit 16 KiB parts on residential links.
#[derive(Debug, Clone, Copy)]
pub struct PickerConfig {
    /// Requests in flight to one peer.
    pub peer_slots: usize,
    /// Requests in flight to all peers together, with deadlines: the most urgent parts go
    /// out first and are not slowed by asks for parts due much later.
    pub peer_total_slots: usize,
    /// Requests in flight to the origin for parts ahead of time.
    pub origin_slots: usize,
    /// Extra origin requests allowed for urgent parts.
    pub urgent_origin_slots: usize,
    /// Most parts in one request (to the origin: a block, fetched by its owner whole).
    pub max_run: u32,
    /// Most parts in one request to a peer: small asks keep a slow uplink's queue short.
    pub peer_max_run: u32,
    /// With deadlines, how far ahead of their play time parts are asked of peers: the window
    /// in which the swarm trades, so uplinks carry what is due soon, not what plays later.
    pub peer_ahead_ms: i64,
    /// With deadlines, parts due sooner than this are not asked of peers (an ask takes
    /// about that long on a thin uplink).
    pub peer_min_lead_ms: i64,
    /// With deadlines, parts due within this are asked of peers in deadline order, later ones
    /// rarest first: a part new in the swarm (its owner just took it from the origin) is
    /// copied on at once by a few listeners, and from them by more, instead of waiting at its
    /// owner until everyone wants it at the same moment.
    pub peer_in_order_ms: i64,
    /// With deadlines, asks that copy a rare part on (one not due within
    /// `peer_in_order_ms`) made even while parts due sooner are missing.
    pub spread_slots: usize,
    /// With deadlines, a peer is asked for a part only if the part is due later than this
    /// many times the peer's recent answer time (0: never mind): a busy peer's answer would
    /// come after the part's moment, useless to this listener and to everyone it could pass
    /// the part on to, while the peer's uplink could have carried a part due later.
    pub peer_lead_by_latency: f64,
    /// A part due within this is urgent: the origin may send it if no peer does in time.
    pub urgent_ms: i64,
    /// An urgent part's request still in flight after this is duplicated elsewhere.
    pub urgent_late_ms: u64,
    /// Any request still in flight after this may be duplicated elsewhere.
    pub late_ms: u64,
    /// With deadlines, how far ahead parts no peer holds are taken from the origin.
    pub origin_ahead_ms: i64,
    /// Members after a block's owner that may rescue its late parts from the origin (the
    /// first from `urgent_ms` before the part is due, each next one a third of that later);
    /// the rest never do.
    pub rescue_backups: u16,
    /// Only the members that started first own blocks (take them from the origin ahead of
    /// time, rescue them): this many of them, by the start time in their ids (`usize::MAX`:
    /// every member). With deadlines, a block's owners are chosen among the members that
    /// had started `owner_settle_ms` before the block is taken ahead of time (at least the
    /// `min_owners` first): a block's owners then stay the same while listeners join, and it
    /// is not fetched again by each newcomer who would have been its owner.
    pub owners: usize,
    /// See `owners`.
    pub min_owners: usize,
    /// See `owners`.
    pub owner_settle_ms: i64,
    /// With deadlines, a block that would be taken ahead (`origin_ahead_ms`) before any
    /// member had settled, because the swarm started after that (an entry joined cold), is
    /// taken this long before it is due instead, by the members settled then (0: it is the
    /// first member's, taken `origin_ahead_ms` ahead like any other). Only the blocks due
    /// sooner than this plus `owner_settle_ms` after the first member's start are then its
    /// alone: the rest of the entry on air enters the swarm through several owners' uplinks,
    /// not all through the first listener's.
    pub cold_ahead_ms: i64,
    /// With deadlines, an entry joined cold (a block that would be taken ahead before any
    /// member had settled) is seeded by the listeners as they arrive: the first member
    /// takes its first this many blocks (from the one playing at its start), and each next
    /// `cold_seed_parts` parts are the next member's by start time (the second member's,
    /// the third's, ...), if that member started `cold_owner_lead_ms` before they are due;
    /// it takes them `cold_ahead_ms` before they are due (at once if that has passed), and
    /// no backups rescue them. Parts whose member did not come by then fall back to the
    /// rules above, taken no sooner than `cold_fallback_lag_ms` after that. 0: nothing is
    /// seeded so.
    pub cold_first_blocks: u32,
    /// See `cold_first_blocks`.
    pub cold_owner_lead_ms: i64,
    /// Parts each arrival seeds (see `cold_first_blocks`): a block (`max_run`) or fewer.
    pub cold_seed_parts: u32,
    /// See `cold_first_blocks`.
    pub cold_fallback_lag_ms: i64,
    /// With deadlines, for this long after a download of an entry already on air starts (a
    /// listener tuning in), peers are also asked for a part due sooner than
    /// `peer_min_lead_ms`, even one playing now, if it plays on `join_min_left_ms` after
    /// now and at least `join_min_holders` followed peers hold it: the stream starts where
    /// the schedule is when that part comes, not when the moment reaches the first part
    /// due later (about a second more). A part only its first holder has is left alone: that
    /// holder is busy, and the ask would come late and hold up its other askers.
    pub join_ms: u64,
    /// See `join_ms`.
    pub join_min_left_ms: i64,
    /// See `join_ms`.
    pub join_min_holders: u16,
    /// With deadlines, a download is short when a part due within this is not held (0:
    /// never): while another download of the node is short, this one keeps at most
    /// `yield_slots` peer asks in flight.
    pub short_ms: i64,
    /// See `short_ms`.
    pub yield_slots: usize,
    /// With deadlines, for this long after this node started (a listener tuning in), peers
    /// are asked only for parts due within `peer_in_order_ms`, in deadline order: no rare
    /// part is copied on and no later entry is fetched ahead, so every ask goes to the
    /// player's first seconds (its prebuffer) while it waits for them. 0: never so.
    pub focus_ms: u64,
    /// With deadlines, while focused (`focus_ms`), parts due within `focus_wide_ms` that at
    /// least `focus_wide_holders` followed peers hold are asked beyond `peer_total_slots`, up
    /// to this many asks in flight (the entry's head on top): where the swarm holds a
    /// joiner's first seconds widely, all of them are asked at once, not four first and the
    /// rest as answers come. Parts few hold stay within the four: their holders are busy.
    /// 0: never more than `peer_total_slots`.
    pub focus_wide_slots: usize,
    /// See `focus_wide_slots`.
    pub focus_wide_ms: i64,
    /// See `focus_wide_slots`.
    pub focus_wide_holders: u16,
    /// Claims of parts not served before a peer is dropped.
    pub max_false_claims: u32,
    /// Without news from any peer for this long, blocks owned by others are fair game.
    pub orphan_ms: u64,
    /// Parts that are not urgent are not asked of the origin in the first moments of a
    /// download, while the tracker and the peers' bitfields come in.
    pub origin_grace_ms: u64,
}

impl Default for PickerConfig {
    fn default() -> Self {
        Self {
            peer_slots: 2,
            peer_total_slots: usize::MAX,
            origin_slots: 2,
            urgent_origin_slots: 2,
            max_run: 4,
            peer_max_run: 2,
            peer_ahead_ms: 30_000,
            peer_min_lead_ms: 0,
            peer_in_order_ms: i64::MAX,
            spread_slots: 1,
            peer_lead_by_latency: 0.0,
            urgent_ms: 3_000,
            urgent_late_ms: 1_000,
            late_ms: 5_000,
            origin_ahead_ms: 25_000,
            rescue_backups: 2,
            owners: usize::MAX,
            min_owners: 1,
            owner_settle_ms: 0,
            cold_ahead_ms: 0,
            cold_first_blocks: 0,
            cold_owner_lead_ms: 6_000,
            cold_seed_parts: 4,
            cold_fallback_lag_ms: 2_000,
            join_ms: 0,
            join_min_left_ms: 500,
            join_min_holders: 2,
            short_ms: 0,
            yield_slots: usize::MAX,
            focus_ms: 0,
            focus_wide_slots: 0,
            focus_wide_ms: 5_000,
            focus_wide_holders: 4,
            max_false_claims: 3,
            orphan_ms: 2_000,
            origin_grace_ms: 500,
        }
    }
}

impl PickerConfig {
    /// For a live station: every listener wants each part at the same moment, so each asks
    /// the origin one thing at a time (one block it owns, one rescue): many concurrent
    /// requests into a thin origin uplink share it so finely that nothing arrives in time.
    pub fn live() -> Self {
        Self {
            origin_slots: 1,
            urgent_origin_slots: 0,
            // Asks are slow on thin uplinks; asking again elsewhere too soon doubles the
            // load that made them slow.
            urgent_late_ms: 3_000,
            late_ms: 10_000,
            // A peer answers one small ask at a time, so an ask that is taken is sent at the
            // uplink's full rate (16 KiB in half a second at 256 kbit/s), and a listener's
            // few asks go to different peers, most urgent first.
            peer_slots: 1,
            peer_total_slots: 4,
            peer_max_run: 1,
            peer_min_lead_ms: 1_000,
            peer_in_order_ms: 6_000,
            // One ask at a time copies rare parts on while due parts are missing. Two or
            // three were no clear gain (N=30, uploads paced, one run each: median silence
            // 12, 15, 15 s with two and 18 s with three, against 12-18 s with one).
            spread_slots: 1,
            peer_lead_by_latency: 1.0,
            // Owners take their blocks from the origin well ahead, and the swarm trades
            // them from then on: a part spread long before its moment needs no rescue. Not
            // further: what is fetched ahead of the last listener's leaving is never aired,
            // and the origin's budget is 1.3 copies of what is.
            origin_ahead_ms: 25_000,
            peer_ahead_ms: 45_000,
            // Every rescue is one more copy from the origin, on the link that made the part
            // late: with two backups the origin sent 2.6x the bytes aired at N=30 and the
            // median listener heard 23 s of silence, with one 2.2x and 16 s, with none 2.2x
            // and 22 s (one benchmark run each).
            rescue_backups: 1,
            // A block belongs to one of the first six listeners that had been there 5 s when
            // it is taken ahead (25 s before it is due), or, when none had, to the first one.
            // At N=30 (benchmark, one run each): with every member an owner
            // the origin sent 2.3x the bytes aired, with this 1.3x, and the median listener
            // heard 14-17 s of silence instead of 20-29 s. With the first three owning the
            // early blocks, 1.5x and 14 s: joiners' views of who is there differ for a
            // moment, and blocks are fetched twice.
            owners: 6,
            min_owners: 1,
            owner_settle_ms: 5_000,
            // An entry joined cold: the first listener takes what is due within 17 s of its
            // start, and the later blocks are taken 12 s ahead by the listeners there by
            // then. When the first took all it could (everything due within 30 s), its one
            // uplink was the only source of that half minute, and most of it reached nobody
            // else in time. N=30, alternating runs: silence summed over the listeners 272-323
            // s against 327-374 s, origin 1.27-1.34x against 1.28x (docs/benchmarks.md,
            // eighth round).
            cold_ahead_ms: 12_000,
            // And the blocks after the first listener's first three go one to each next
            // arrival, which takes its block 12 s ahead through an uplink nobody asks yet:
            // before, the first listener took everything due within 17 s, and its askers
            // turned most of that into `503`s. N=30, five runs each, alternating: silence
            // summed over the listeners 276 s against 310 s on average (222-339 against
            // 278-347), median startup 5.28 s against 5.55 s, origin 1.30x against 1.28x
            // (docs/benchmarks.md, eleventh round): a small gain. Taking the block at once,
            // not 12 s ahead, crowded the origin while the first listener's own next block
            // was on its way (321 s); two first blocks, not three: 255 s.
            cold_first_blocks: 3,
            // One part each, not a block: a block of four at one new listener reached few
            // in time past its first part (its uplink turned the askers of the other three
            // away), and the last arrivals seeded nothing. N=30, with the listeners' eager
            // announces while the swarm grows (`download::Announcing`), one run each:
            // silence summed over the listeners 180 and 169 s against 228-298 s (five runs
            // of the block rule), origin 1.27x both (docs/benchmarks.md, thirteenth round).
            // Without the eager announces, a listener that did not know an arrival yet took
            // its part itself as well (237 and 292 s).
            cold_seed_parts: 1,
            // A part seeded by an arrival that does not come falls back to the owners 7 s
            // before it is due (the arrival must have started 9 s before). With 6 s, at N=10
            // the parts after the tenth arrival's were taken 3-4 s before their moment, one
            // at a time, and reached few others in time: 63 % of parts on time in the
            // listeners' 20-40 s.
            cold_owner_lead_ms: 9_000,
            // A listener tuning in asks for the part playing now for its first 3 s (the
            // stream's wait for sound), from peers when four of those it follows hold it.
            // N=30, one run each, uplinks 4x the bitrate: median startup 1.66 s against
            // 2.39 s (listeners from the 12th on: median 1.09 s against 1.6 s), silence
            // summed over the listeners 22 s against 16 s. Uplinks 2x, where nearly every
            // listener joins while the entry on air is held by one or two: 5.69 s against
            // 5.65-6.05 s, silence 307 s against 279-515 s. When two holders were enough,
            // startup at 2x fell to 4.9-5.4 s but the listeners first there, tuning in on
            // those two busy uplinks, heard more silence (docs/benchmarks.md, tenth round).
            join_ms: 3_000,
            join_min_holders: 4,
            // While the entry on air is short of what plays within 4 s, the next entry keeps
            // one peer ask in flight, not four: in a cold start the swarm carried more of the
            // next entry than of the one on air, and each of those answers held one of a
            // peer's two answer slots while its uplink sent it last.
            short_ms: 4_000,
            yield_slots: 1,
            // A listener's first 4 s: its prebuffer first. Before, a joiner spent one of its
            // four asks copying a rare part on, and its next-entry download four more on
            // parts due in 20 s, while the parts of its first seconds waited. N=30, three
            // runs: median startup 3.88, 4.56 and 4.15 s against 5.09 s (main) and 5.81 s
            // (seeding alone) the same hour; silence summed over the listeners 179, 242 and
            // 258 s against 290 and 195 s (docs/benchmarks.md, fifteenth round).
            focus_ms: 4_000,
            // A joiner's 64 KiB is four parts and a sliver of a fifth after its moment, each
            // half a second or more through a paced 2x uplink: with four asks the fifth part
            // waited for an answer, and the fourth or fifth answer decided the start. N=30,
            // alternating: median startup 2.55-3.59 s in three runs against 3.12-3.64 s in
            // four, silence summed over the listeners 60-73 s against 72-150 s: a small gain,
            // mostly within the noise (docs/benchmarks.md, twenty-second round).
            focus_wide_slots: 6,
            ..Self::default()
        }
    }
}

#[derive(Debug)]
struct PeerState {
    /// Hash of the peer's id, when known (from the tracker): a member for block ownership.
    member: Option<u64>,
    /// When the member started (ms since the Unix epoch, from its id; `u64::MAX` unknown).
    started_ms: u64,
    have: Option<Bitfield>,
    inflight: usize,
    /// Bytes per millisecond, averaged.
    score: f64,
    /// How long its answers took (ms), averaged; 0 until one came (or failed).
    latency_ms: f64,
    failures: u32,
    false_claims: u32,
    banned: bool,
    backoff_until: u64,
}

impl PeerState {
    fn usable(&self, now: u64) -> bool {
        !self.banned && self.have.is_some() && self.backoff_until <= now
    }

    fn note_latency(&mut self, ms: f64) {
        self.latency_ms = if self.latency_ms == 0.0 {
            ms
        } else {
            0.7 * self.latency_ms + 0.3 * ms
        };
    }
}

#[derive(Debug, Clone, Copy)]
struct Inflight {
    first: u32,
    count: u32,
    source: Source,
    since: u64,
    /// An origin request ahead of time (a block this node owns), not a rescue.
    ahead: bool,
    /// A peer request for a rare part not due soon: copying it on.
    spread: bool,
}

/// One block's ownership as this node sees it.
#[derive(Debug, Clone, Copy, Default)]
struct Ownership {
    /// This node's rank among the block's owners: 0 when it owns it, `u16::MAX` when it is
    /// not one of them.
    rank: u16,
    /// Taken `cold_ahead_ms` ahead, not `origin_ahead_ms`, and no backups rescue it: a cold
    /// entry's block (see `PickerConfig::cold_ahead_ms` and `cold_first_blocks`).
    late: bool,
    /// Not taken ahead of time before this (ms since the Unix epoch): the member it is
    /// designated for could still come.
    not_before_ms: i64,
    /// Where the parts owned with it end (exclusive): the block's end, or a seeded unit's
    /// (`PickerConfig::cold_seed_parts`). An owner's origin asks stay within it.
    end: u32,
}

/// What a failure did to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerVerdict {
    Fine,
    /// The peer has just been banned for the session (bad data, or too many false claims).
    Banned,
}

/// The scheduling state of one content's download.
#[derive(Debug)]
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
}

/// A 64-bit hash of a peer id (FNV-1a): the same on every node.
pub fn member_hash(peer_id: &str) -> u64 {
    peer_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The rendezvous score of `member` for `block` (splitmix64 of the pair).
fn score(member: u64, block: u32) -> u64 {
    let mut z = member ^ u64::from(block).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `me`'s rank among `owners` (start time, member hash) for `block`: 0 when it is the
/// block's owner, `u16::MAX` when it is not one of them. The owner is the first by
/// rendezvous score among those given fewest of the blocks before (`loads`, updated here;
/// the caller clears it when the owners change), so each has its share within one; the
/// others follow by score. Plain rendezvous gave one of six owners 5 of an entry's 15
/// blocks in one run, and the same ones in every entry (the score does not depend on the
/// entry): its uplink was the only source of them, turned most asks away, and two of their
/// parts reached 2 and 5 of 30 listeners in time (docs/benchmarks.md, fourteenth round).
fn balanced_rank(owners: &[(u64, u64)], block: u32, me: u64, loads: &mut HashMap<u64, u32>) -> u16 {
    let load = |m: &u64| loads.get(m).copied().unwrap_or(0);
    let Some(fewest) = owners.iter().map(|m| load(&m.1)).min() else {
        return u16::MAX;
    };
    let mut by_score: Vec<u64> = owners.iter().map(|m| m.1).collect();
    by_score.sort_unstable_by_key(|&m| std::cmp::Reverse(score(m, block)));
    let Some(owner) = by_score.iter().copied().find(|m| load(m) == fewest) else {
        return u16::MAX;
    };
    *loads.entry(owner).or_insert(0) += 1;
    if owner == me {
        return 0;
    }
    by_score
        .iter()
        .filter(|&&m| m != owner)
        .position(|&m| m == me)
        .map_or(u16::MAX, |i| u16::try_from(i + 1).unwrap_or(u16::MAX))
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
            epoch_ms: None,
            owned: None,
            last_news: 0,
            wanted: Vec::new(),
            yielding: false,
            tracker_answered: false,
        }
    }

    fn block_of(&self, part: u32) -> u32 {
        part / self.config.max_run.max(1)
    }

    /// This node's rank for `part`'s block among the owning members it knows (the
    /// `owners` that started first): 0 when it owns it, 1 when one owner comes before it, and
    /// so on; `u16::MAX` when this node is not one of the owners.
    fn rank(&mut self, part: u32) -> u16 {
        if self.owned.is_none() {
            let mut members: Vec<(u64, u64)> = self
                .peers
                .values()
                .filter(|p| !p.banned)
                .filter_map(|p| Some((p.started_ms, p.member?)))
                .collect();
            members.push((self.my_start_ms, self.me));
            members.sort_unstable();
            let blocks = self.block_of(self.have.len().saturating_sub(1)) + 1;
            let per_block = self.config.max_run.max(1);
            let first = members
                .first()
                .map_or(i64::MAX, |m| i64::try_from(m.0).unwrap_or(i64::MAX));
            let settle = self.config.owner_settle_ms;
            let cold_ahead = self.config.cold_ahead_ms;
            let due_of = |part: u32| {
                self.epoch_ms
                    .zip(self.deadlines.of(part))
                    .map(|(epoch, d)| epoch as i64 + d)
            };
            let parts = self.have.len();
            // The block playing when the first member started: the cold entry's first.
            let first_block = (0..blocks).find(|&b| {
                due_of(((b + 1) * per_block).min(parts).saturating_sub(1))
                    .is_some_and(|d| d >= first)
            });
            let cold_first = self.config.cold_first_blocks;
            let lead = self.config.cold_owner_lead_ms;
            let seed_parts = self.config.cold_seed_parts.clamp(1, per_block);
            // Where a cold entry's seeding starts: after the first member's first blocks.
            let seed_from = first_block
                .filter(|_| cold_first > 0)
                .map(|b0| (b0 + cold_first) * per_block);
            // Block `b`'s owners among the members settled when it is taken ahead of time.
            // Blocks each owner was given so far, in block order (see `balanced_rank`).
            let mut loads: HashMap<u64, u32> = HashMap::new();
            let mut loads_among = 0;
            // When block `b` would be taken ahead of time, by the members settled then.
            let ahead_of = |b: u32| {
                due_of(b * per_block).map(|due| due - self.config.origin_ahead_ms - settle)
            };
            let mut block_owner = |b: u32| -> Ownership {
                let due = due_of(b * per_block);
                let ahead = ahead_of(b);
                // A block nobody was there to take ahead is taken late, by those there by then.
                let (taken, late) = match due.zip(ahead) {
                    None => (None, false),
                    Some((due, ahead)) => {
                        let cold = due - cold_ahead - settle;
                        let late = cold_ahead > 0 && ahead < first && cold >= first;
                        (Some(if late { cold } else { ahead }), late)
                    }
                };
                let settled = taken.map_or(members.len(), |t| {
                    // Sorted by start, an unknown one (`u64::MAX`) last: never settled.
                    members
                        .iter()
                        .take_while(|m| i64::try_from(m.0).is_ok_and(|s| s <= t))
                        .count()
                });
                let owners = settled
                    .max(self.config.min_owners)
                    .min(self.config.owners)
                    .max(1);
                let owners = &members[..owners.min(members.len())];
                if owners.len() != loads_among {
                    loads.clear();
                    loads_among = owners.len();
                }
                let rank = balanced_rank(owners, b, self.me, &mut loads);
                Ownership {
                    rank,
                    late,
                    not_before_ms: i64::MIN,
                    end: ((b + 1) * per_block).min(parts),
                }
            };
            // A cold entry's seed units, from the part after the first member's first blocks,
            // each to the next arrival (by start) that came `lead` before the unit is due;
            // a unit no arrival came in time for is the owners'. Matched in order, not unit
            // `u` to the `u + 1`-th member: with one arrival a second and parts of 1.02 s,
            // an arrival that missed its unit by a fraction of a second missed every later
            // one too, and when the second listener came 0.6 s too late for the first unit
            // every seed fell back to the first listener, whose uplink was then the
            // entry's only source (benchmark, N=30: 331 s of silence, startup 6.6 s).
            let seeders: Vec<Option<u64>> = match seed_from {
                Some(from) => {
                    let units = parts.saturating_sub(from).div_ceil(seed_parts);
                    let mut next = 1;
                    (0..units)
                        .map(|u| {
                            let due = due_of(from + u * seed_parts)?;
                            let &(started, member) = members.get(next)?;
                            let in_time = i64::try_from(started).is_ok_and(|s| s <= due - lead);
                            in_time.then(|| {
                                next += 1;
                                member
                            })
                        })
                        .collect()
                }
                None => Vec::new(),
            };
            let mut ranks: Vec<Ownership> = Vec::with_capacity(parts as usize);
            for b in 0..blocks {
                let owner = block_owner(b);
                let block_parts = b * per_block..((b + 1) * per_block).min(parts);
                let ahead = ahead_of(b);
                // A cold entry's block (nobody settled when it would be taken ahead), after the
                // first member's first ones: seeded `seed_parts` at a time, each by the member
                // designated by arrival, if it came in time.
                let seeded_from = seed_from
                    .filter(|_| ahead.is_some_and(|a| a < first))
                    .filter(|&from| b * per_block >= from);
                let Some(from) = seeded_from else {
                    ranks.extend(block_parts.map(|_| owner));
                    continue;
                };
                for p in block_parts {
                    let unit = (p - from) / seed_parts;
                    let unit_first = from + unit * seed_parts;
                    let end = (unit_first + seed_parts).min(parts);
                    let Some(due) = due_of(unit_first) else {
                        ranks.push(owner);
                        continue;
                    };
                    let designated = seeders.get(unit as usize).copied().flatten();
                    ranks.push(match designated {
                        Some(member) => Ownership {
                            rank: if member == self.me { 0 } else { u16::MAX },
                            late: true,
                            not_before_ms: i64::MIN,
                            end,
                        },
                        // Its member did not come: the block's owners take it, no sooner
                        // than that member could still have come.
                        None => Ownership {
                            not_before_ms: due - lead + self.config.cold_fallback_lag_ms,
                            end,
                            ..owner
                        },
                    });
                }
            }
            self.owned = Some(ranks);
        }
        self.ownership(part).rank
    }

    /// The ownership of `part`, once `rank` has worked it out.
    fn ownership(&self, part: u32) -> Ownership {
        self.owned
            .as_ref()
            .and_then(|o| o.get(part as usize).copied())
            .unwrap_or_default()
    }

    /// Whether this node owns `part`'s block among the owners it knows.
    fn owns(&mut self, part: u32) -> bool {
        self.rank(part) == 0
    }

    /// Tells the picker when this node started and what its time 0 is, both in ms since
    /// the Unix epoch (see `PickerConfig::owners`).
    pub fn set_started(&mut self, started_ms: u64, epoch_ms: u64) {
        self.my_start_ms = started_ms;
        self.epoch_ms = Some(epoch_ms);
        self.owned = None;
    }

    /// A known peer's membership: its [`member_hash`] and when it started (ms since the
    /// Unix epoch, `u64::MAX` unknown), or `None` when it is no longer a member (the
    /// tracker no longer lists it). Unknown peers are ignored.
    pub fn set_membership(&mut self, peer: SocketAddr, member: Option<(u64, u64)>) {
        if let Some(state) = self.peers.get_mut(&peer) {
            let (hash, started) = member.map_or((None, u64::MAX), |(h, s)| (Some(h), s));
            if state.member != hash || state.started_ms != started {
                state.member = hash;
                state.started_ms = started;
                self.owned = None;
            }
        }
    }

    /// Whether an urgent part no peer sends in time may be taken from the origin now. Alone,
    /// always. With peers, not in the first moments (their bitfields are on the way), and
    /// then in turn: the block's owner at once, the next members as the moment nears, the
    /// rest only in the last second. So a part that nobody has yet reaches the swarm from
    /// the origin about once, not once per listener, and a congested origin does not turn
    /// every part urgent for everyone.
    fn may_rescue(&mut self, part: u32, now: u64) -> bool {
        let alone = self.alone();
        // The tracker's answer and the peers' bitfields come in the first moments; a node
        // the tracker answered with no one else starts at once.
        if alone && self.tracker_answered {
            return true;
        }
        if now < self.config.origin_grace_ms {
            return false;
        }
        if alone {
            return true;
        }
        let Some(left) = self.deadline(part).map(|d| d - now as i64) else {
            return true;
        };
        let urgent = self.config.urgent_ms;
        let rank = self.rank(part);
        if rank == 0 {
            return true;
        }
        // The rest wait for the owner and its backups: from the origin it would be one more
        // copy per listener, on the link that made the part late.
        // A block taken late (a cold entry's) has no backups: with them, its parts were
        // rescued a second time as they neared their moment, and the origin sent 1.34x the
        // bytes aired in three of five runs (benchmark, eighth round).
        if rank > self.config.rescue_backups || self.ownership(part).late {
            return false;
        }
        let limit = urgent - i64::from(rank - 1) * urgent / 3;
        // A part already due (a listener joining mid-entry, the head of the entry on air)
        // is for peers to send: from the origin it would come late anyway, once per joiner.
        (0..=limit).contains(&left)
    }

    /// No peer known but banned ones.
    fn alone(&self) -> bool {
        self.peers.values().all(|p| p.banned)
    }

    /// How many known peers hold `part` (for logs).
    pub fn availability(&self, part: u32) -> u16 {
        self.avail.get(part as usize).copied().unwrap_or(0)
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

    /// Peers known and not banned.
    pub fn peer_count(&self) -> usize {
        self.peers.values().filter(|p| !p.banned).count()
    }

    pub fn is_banned(&self, peer: SocketAddr) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.banned)
    }

    /// Learns of a peer (from the tracker, peer exchange or an incoming request); whether it
    /// is a member is [`Picker::set_membership`]'s.
    pub fn add_peer(&mut self, peer: SocketAddr) -> bool {
        if self.peers.contains_key(&peer) {
            return false;
        }
        self.peers.insert(
            peer,
            PeerState {
                member: None,
                started_ms: u64::MAX,
                have: None,
                inflight: 0,
                score: 1.0,
                latency_ms: 0.0,
                failures: 0,
                false_claims: 0,
                banned: false,
                backoff_until: 0,
            },
        );
        true
    }

    /// Peers worth polling for news (known, not banned).
    pub fn peers(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.peers
            .iter()
            .filter(|(_, p)| !p.banned)
            .map(|(a, _)| *a)
    }

    /// A peer's whole bitfield, as its `have` endpoint sent it.
    pub fn set_peer_have(&mut self, peer: SocketAddr, have: Bitfield, now: u64) {
        if have.len() != self.have.len() {
            return;
        }
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        if state.banned {
            return;
        }
        if state
            .have
            .as_ref()
            .is_none_or(|old| have.count() > old.count())
        {
            self.last_news = now;
        }
        if let Some(old) = &state.have {
            for p in old.iter() {
                self.avail[p as usize] = self.avail[p as usize].saturating_sub(1);
            }
        }
        for p in have.iter() {
            self.avail[p as usize] = self.avail[p as usize].saturating_add(1);
        }
        state.have = Some(have);
    }

    /// The peer's news is no longer followed: it stays a member (block ownership) but is not
    /// asked until its bitfield comes again.
    pub fn unfollow(&mut self, peer: SocketAddr) {
        self.forget_claims(peer);
    }

    fn forget_claims(&mut self, peer: SocketAddr) {
        if let Some(state) = self.peers.get_mut(&peer) {
            if let Some(old) = state.have.take() {
                for p in old.iter() {
                    self.avail[p as usize] = self.avail[p as usize].saturating_sub(1);
                }
            }
        }
    }

    /// When `part` is needed: its play time, or for a pinned part the entry's start (the
    /// stream reads those before any audio).
    fn deadline(&self, part: u32) -> Option<i64> {
        let d = self.deadlines.of(part)?;
        if self.pinned(part) {
            return Some(d.min(self.deadlines.of(0)?));
        }
        Some(d)
    }

    /// Due soon, and not already missed (a part whose moment has passed is no longer
    /// played: the stream has moved on). A pinned part is urgent from shortly before its
    /// entry starts until it is held, however long the entry has played.
    fn urgent(&self, part: u32, now: u64) -> bool {
        if self.pinned(part) && !self.have.get(part) {
            return self
                .deadline(part)
                .is_some_and(|d| d - now as i64 <= self.config.urgent_ms);
        }
        self.deadline(part).is_some_and(|d| {
            let left = d - now as i64;
            left <= self.config.urgent_ms && left >= -MISSED_MS
        })
    }

    /// Whether this download is tuning in to an entry on air (see `PickerConfig::join_ms`).
    fn tuning_in(&self, now: u64) -> bool {
        now < self.config.join_ms && self.deadlines.of(0).is_some_and(|d| d < 0)
    }

    /// Whether a part due within `short_ms` from `now` is not held (see
    /// `PickerConfig::short_ms`).
    pub fn short(&self, now: u64) -> bool {
        let until = now as i64 + self.config.short_ms;
        // Deadlines grow with the part: only the window is walked past its start.
        self.config.short_ms > 0
            && (0..self.have.len())
                .skip_while(|&p| self.deadline(p).is_some_and(|d| d < now as i64))
                .take_while(|&p| self.deadline(p).is_some_and(|d| d <= until))
                .any(|p| !self.have.get(p))
    }

    /// Whether another download of this node is short: this one then asks peers for less.
    pub fn set_yielding(&mut self, yielding: bool) {
        self.yielding = yielding;
    }

    /// Whether this node started less than `focus_ms` ago (see `PickerConfig::focus_ms`).
    fn focused(&self, now: u64) -> bool {
        self.epoch_ms.is_some_and(|epoch| {
            epoch.saturating_add(now) < self.my_start_ms.saturating_add(self.config.focus_ms)
        })
    }

    /// While tuning in: how long `part` plays on after now, less `join_min_left_ms` (its end
    /// is the next part's deadline).
    fn left_tuning_in(&self, part: u32, now: u64) -> Option<i64> {
        let end = self.deadlines.of(part + 1)?;
        Some(end - now as i64 - self.config.join_min_left_ms)
    }

    /// A part of a joiner's first seconds that enough followed peers hold to be asked past
    /// the cap (see `PickerConfig::focus_wide_slots`).
    fn widely_held(&self, part: u32, now: u64) -> bool {
        self.avail[part as usize] >= self.config.focus_wide_holders
            && self
                .deadline(part)
                .is_some_and(|d| d <= now as i64 + self.config.focus_wide_ms)
    }

    /// A part due sooner than `peer_min_lead_ms` that a listener tuning in asks for anyway.
    fn asked_tuning_in(&self, part: u32, now: u64) -> bool {
        self.tuning_in(now)
            && self.avail[part as usize] >= self.config.join_min_holders
            && self.left_tuning_in(part, now).is_some_and(|left| left >= 0)
    }

    /// Whether `part`'s moment passed long enough ago that playback no longer needs it.
    /// Pinned parts are never missed.
    fn missed(&self, part: u32, now: u64) -> bool {
        !self.pinned(part)
            && self
                .deadline(part)
                .is_some_and(|d| d < now as i64 - MISSED_MS)
    }

    /// With deadlines, the file's first part is needed at once whatever the play position: it
    /// says where the audio lies (tags, stream headers). So is any part a reader waits for out
    /// of play order ([`Picker::set_wanted`]: the rest of a head longer than one part). The
    /// last part is not: it only says where trailing tags cut the audio, and until it is held
    /// the stream skips tag bytes as junk.
    fn pinned(&self, part: u32) -> bool {
        self.deadlines != Deadlines::None && (part == 0 || self.wanted.contains(&part))
    }

    /// Parts readers wait for out of play order (`Content::wanted`): pinned, like the first.
    pub fn set_wanted(&mut self, parts: Vec<u32>) {
        self.wanted = parts;
    }

    /// Pinned parts not held, then parts from the first not missed: the order in which
    /// deadlines make parts wanted.
    fn wanted_order(&self, now: u64) -> impl Iterator<Item = u32> + '_ {
        let n = self.have.len();
        let from = (1..n).find(|&p| !self.missed(p, now)).unwrap_or(n);
        let pinned = std::iter::once(0)
            .chain(self.wanted.iter().copied())
            .filter(move |&p| p < n && !self.have.get(p));
        let rest = (from..n).chain(1..from).filter(move |&p| !self.pinned(p));
        pinned.chain(rest)
    }

    /// Whether another request may be made for `part` (not held, and not already asked of
    /// someone still in time; at most two requests).
    fn askable(&self, part: u32, now: u64, from: Source) -> bool {
        if self.have.get(part) {
            return false;
        }
        let Some(ids) = self.by_part.get(&part) else {
            return true;
        };
        if ids.len() >= 2 {
            return false;
        }
        ids.iter().all(|id| {
            self.requests.get(id).is_none_or(|r| {
                let age = now.saturating_sub(r.since);
                r.source != from
                    && (age >= self.config.late_ms
                        || (age >= self.config.urgent_late_ms && self.urgent(part, now)))
            })
        })
    }

    /// Every missing part is in flight (parts in `by_part` are never held: completion
    /// removes them).
    fn endgame(&self) -> bool {
        let missing = (self.have.len() - self.have.count()) as usize;
        missing > 0 && self.by_part.len() >= missing
    }

    fn start(&mut self, first: u32, count: u32, source: Source, now: u64) -> Request {
        let id = self.next_id;
        self.next_id += 1;
        self.requests.insert(
            id,
            Inflight {
                first,
                count,
                source,
                since: now,
                ahead: false,
                spread: false,
            },
        );
        for p in first..first + count {
            self.by_part.entry(p).or_default().push(id);
        }
        match source {
            Source::Origin => self.origin_inflight += 1,
            Source::Peer(a) => {
                if let Some(s) = self.peers.get_mut(&a) {
                    s.inflight += 1;
                }
            }
        }
        Request {
            id,
            first,
            count,
            source,
            due_in_ms: self.deadline(first).map(|d| d - now as i64),
        }
    }

    /// Extends a run from `first` while parts stay askable from `source` (and held by it).
    fn run(&self, first: u32, source: Source, now: u64, endgame: bool) -> u32 {
        let max = match source {
            Source::Peer(_) => self.config.peer_max_run,
            Source::Origin => self.config.max_run,
        };
        let mut count = 1;
        while count < max {
            let p = first + count;
            // A run does not reach from a pinned part into parts that have aired.
            if p >= self.have.len() || (self.missed(p, now) && !self.missed(first, now)) {
                break;
            }
            let ok = match source {
                Source::Peer(a) => {
                    self.peer_has(a, p)
                        && (self.askable(p, now, source) || (endgame && self.dup_ok(p, source)))
                }
                Source::Origin => self.askable(p, now, source) && !self.by_part.contains_key(&p),
            };
            if !ok {
                break;
            }
            count += 1;
        }
        count
    }

    fn dup_ok(&self, part: u32, source: Source) -> bool {
        !self.have.get(part)
            && self.by_part.get(&part).is_none_or(|ids| {
                ids.len() < 2
                    && ids
                        .iter()
                        .all(|id| self.requests.get(id).is_none_or(|r| r.source != source))
            })
    }

    fn peer_has(&self, peer: SocketAddr, part: u32) -> bool {
        self.peers
            .get(&peer)
            .and_then(|p| p.have.as_ref())
            .is_some_and(|h| h.get(part))
    }

    /// The requests to make now.
    pub fn next(&mut self, now: u64, rng: &mut impl Rng) -> Vec<Request> {
        let mut out = Vec::new();
        if self.is_complete() {
            return out;
        }
        let n = self.have.len();

        // 1. Peers: with deadlines, the most urgent parts each to a free peer holding it;
        // without, best peers first, each with what it is best placed to send.
        if self.deadlines != Deadlines::None {
            self.ask_peers_by_deadline(now, rng, &mut out);
        } else {
            self.ask_peers_by_rarity(now, rng, &mut out);
        }

        // 2. The origin: urgent parts no peer sends in time, then parts no peer holds.
        if self.origin_enabled && self.origin_backoff_until <= now {
            let urgent_cap = self.config.origin_slots + self.config.urgent_origin_slots;
            if self.deadlines != Deadlines::None {
                let order: Vec<u32> = self
                    .wanted_order(now)
                    .take_while(|&p| self.urgent(p, now))
                    .collect();
                for p in order {
                    if self.origin_inflight - self.origin_ahead_inflight >= urgent_cap {
                        break;
                    }
                    if self.askable(p, now, Source::Origin)
                        && (self.avail[p as usize] == 0 || self.by_part.contains_key(&p))
                        && self.may_rescue(p, now)
                    {
                        let count = self.run(p, Source::Origin, now, false);
                        out.push(self.start(p, count, Source::Origin, now));
                    }
                }
            }
            // Alone (the tracker named no one), at once; else after the first moments, while
            // the peers' bitfields come in (what they hold is not fetched again).
            let alone = self.tracker_answered && self.alone();
            if self.origin_ahead_inflight < self.config.origin_slots
                && (alone || now >= self.config.origin_grace_ms)
            {
                let horizon = now as i64 + self.config.origin_ahead_ms;
                // Without deadlines (a plain fetch), blocks of a silent owner are taken over
                // after a while; with them, urgency does that, in turn (`may_rescue`).
                let orphans = self.deadlines == Deadlines::None
                    && now.saturating_sub(self.last_news) >= self.config.orphan_ms;
                let late_horizon = now as i64 + self.config.cold_ahead_ms;
                let now_unix = self.epoch_ms.map_or(i64::MAX, |e| e as i64 + now as i64);
                let mut candidates: Vec<u32> = Vec::new();
                for p in 0..n {
                    if self.avail[p as usize] == 0
                        && !self.have.get(p)
                        && !self.by_part.contains_key(&p)
                        && !self.missed(p, now)
                        && (orphans || self.owns(p))
                        && self.ownership(p).not_before_ms <= now_unix
                        && self.deadline(p).is_none_or(|d| {
                            d <= if self.ownership(p).late {
                                late_horizon
                            } else {
                                horizon
                            }
                        })
                    {
                        candidates.push(p);
                    }
                }
                // Without deadlines, at random (members that see different owners then
                // still spread over the file); with them, the nearest first: a listener
                // that owns much (the first to join owns everything) takes what plays
                // soonest before what plays in 40 s.
                candidates.shuffle(rng);
                if self.deadlines != Deadlines::None {
                    candidates.sort_by_key(|&p| self.deadline(p));
                }
                for p in candidates {
                    if self.origin_ahead_inflight >= self.config.origin_slots {
                        break;
                    }
                    if self.by_part.contains_key(&p) {
                        continue; // taken by a run just started
                    }
                    // Runs stay within what is owned together (a block, which the owner
                    // fetches whole, or a seeded unit).
                    let end = self.ownership(p).end.max(p + 1);
                    let count = self.run(p, Source::Origin, now, false).min(end - p);
                    let request = self.start(p, count, Source::Origin, now);
                    if let Some(r) = self.requests.get_mut(&request.id) {
                        r.ahead = true;
                        self.origin_ahead_inflight += 1;
                    }
                    out.push(request);
                }
            }
        }
        out
    }

    /// Without deadlines: each usable peer, best first, up to `peer_slots` requests for the
    /// rarest parts it holds; in the endgame, duplicates of what is in flight.
    fn ask_peers_by_rarity(&mut self, now: u64, rng: &mut impl Rng, out: &mut Vec<Request>) {
        let mut peers: Vec<SocketAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| p.usable(now) && p.inflight < self.config.peer_slots)
            .map(|(a, _)| *a)
            .collect();
        peers.shuffle(rng);
        peers.sort_by(|a, b| {
            let (sa, sb) = (self.peers[a].score, self.peers[b].score);
            sb.partial_cmp(&sa).unwrap_or(std::cmp::Ordering::Equal)
        });
        for peer in peers {
            let source = Source::Peer(peer);
            while self.peers[&peer].inflight < self.config.peer_slots {
                let mut endgame = false;
                let mut pick = self.pick_for_peer(peer, now, rng, false);
                if pick.is_none() && self.endgame() {
                    endgame = true;
                    pick = self.pick_for_peer(peer, now, rng, true);
                }
                let Some(first) = pick else { break };
                let count = self.run(first, source, now, endgame);
                out.push(self.start(first, count, source, now));
            }
        }
    }

    /// Parts in deadline order within the trading window, each asked of a free peer that
    /// holds it (the one with fewest of our requests, at random among equals), until
    /// `peer_total_slots` requests are in flight.
    fn ask_peers_by_deadline(&mut self, now: u64, rng: &mut impl Rng, out: &mut Vec<Request>) {
        let cap = if self.yielding {
            self.config.yield_slots.min(self.config.peer_total_slots)
        } else {
            self.config.peer_total_slots
        };
        // A listener tuning in asks for the entry's head besides its first seconds' parts:
        // the head is read before any audio, and an ask for it is not one of the prebuffer's.
        // N=30: median startup 3.20-3.54 s in five runs against 3.62-3.76 s in four,
        // silence summed over the listeners 62-155 s against 65-234 s; at N=10, where every
        // joiner waits on the first listener's uplink, no gain (docs/benchmarks.md,
        // twentieth round).
        let head = usize::from(self.focused(now) && !self.have.get(0));
        let cap = cap.saturating_add(head);
        // Beyond the cap while focused: a joiner's first seconds, where many hold them.
        let wide_cap = if self.focused(now) && !self.yielding {
            self.config.focus_wide_slots.saturating_add(head).max(cap)
        } else {
            cap
        };
        let mut total = self
            .requests
            .values()
            .filter(|r| matches!(r.source, Source::Peer(_)))
            .count();
        if total >= wide_cap {
            return;
        }
        // Not past the trading window, nor due sooner than an ask takes: such parts would
        // come after their moment, and chasing them keeps a listener behind for good (the
        // stream plays silence briefly and takes up from the parts that do arrive in time).
        let horizon = now as i64 + self.config.peer_ahead_ms;
        let soonest = now as i64 + self.config.peer_min_lead_ms;
        let in_order = now as i64 + self.config.peer_in_order_ms.min(i64::MAX / 2);
        let (order, mut later): (Vec<u32>, Vec<u32>) = self
            .wanted_order(now)
            .filter(|&p| {
                self.deadline(p).is_none_or(|d| {
                    d <= horizon && (d >= soonest || self.pinned(p) || self.asked_tuning_in(p, now))
                })
            })
            // A pinned part by its deadline too: the head of an entry on air is overdue (first),
            // the next entry's is due at its start, and copied on rarest first until then.
            .partition(|&p| self.deadline(p).is_none_or(|d| d <= in_order));
        if self.focused(now) {
            later.clear();
        }
        later.shuffle(rng);
        later.sort_by_key(|&p| self.avail[p as usize]);
        // A few asks (`spread_slots`) copy rare parts on even while this listener is behind
        // on what is due soon: otherwise, when every listener is behind (a crowd joining at
        // once), new parts wait at their owner until everyone wants them at once.
        let mut spreading = self.requests.values().filter(|r| r.spread).count();
        while spreading < self.config.spread_slots && total < cap {
            let Some(request) = later
                .iter()
                .find_map(|&p| self.ask_free_peer(p, true, now, rng))
            else {
                break;
            };
            out.push(request);
            total += 1;
            spreading += 1;
        }
        let parts = order
            .into_iter()
            .map(|p| (p, false))
            .chain(later.into_iter().map(|p| (p, true)));
        for (p, spread) in parts {
            if total >= wide_cap {
                break;
            }
            if total >= cap && (spread || !self.widely_held(p, now)) {
                continue;
            }
            if let Some(request) = self.ask_free_peer(p, spread, now, rng) {
                out.push(request);
                total += 1;
            }
        }
    }

    /// Asks a free peer holding `part` for it (the one with fewest of our requests, at random
    /// among equals), if there is one; `spread`: to copy a rare part on.
    fn ask_free_peer(
        &mut self,
        part: u32,
        spread: bool,
        now: u64,
        rng: &mut impl Rng,
    ) -> Option<Request> {
        let mut free: Vec<SocketAddr> = Vec::new();
        let mut least = usize::MAX;
        // Time left before the part plays (pinned parts are needed whenever they come); for
        // the part playing as a listener tunes in, before too little of it is left.
        let left = (!self.pinned(part))
            .then(|| {
                let d = self.deadline(part)?;
                if d < now as i64 + self.config.peer_min_lead_ms && self.tuning_in(now) {
                    self.left_tuning_in(part, now)
                } else {
                    Some(d - now as i64)
                }
            })
            .flatten();
        for (&addr, state) in &self.peers {
            if !state.usable(now)
                || state.inflight >= self.config.peer_slots
                || state.inflight > least
                || !self.peer_has(addr, part)
                || !self.askable(part, now, Source::Peer(addr))
                || left.is_some_and(|left| {
                    (left as f64) < self.config.peer_lead_by_latency * state.latency_ms
                })
            {
                continue;
            }
            if state.inflight < least {
                least = state.inflight;
                free.clear();
            }
            free.push(addr);
        }
        // Sorted first: the map's order must not decide, the seeded rng does.
        free.sort();
        let peer = *free.choose(rng)?;
        let source = Source::Peer(peer);
        let count = self.run(part, source, now, false);
        let request = self.start(part, count, source, now);
        if let Some(r) = self.requests.get_mut(&request.id) {
            r.spread = spread;
        }
        Some(request)
    }

    fn pick_for_peer(
        &self,
        peer: SocketAddr,
        now: u64,
        rng: &mut impl Rng,
        endgame: bool,
    ) -> Option<u32> {
        let n = self.have.len();
        let source = Source::Peer(peer);
        let ok = |p: u32| {
            self.peer_has(peer, p)
                && (self.askable(p, now, source) || (endgame && self.dup_ok(p, source)))
        };
        // Rarest first among a sample, from a random start so peers spread their asks.
        let start = rng.random_range(0..n.max(1));
        let mut best: Option<(u16, u32)> = None;
        let mut seen = 0;
        for i in 0..n {
            let p = (start + i) % n;
            if ok(p) {
                let a = self.avail[p as usize];
                if best.is_none_or(|(ba, _)| a < ba) {
                    best = Some((a, p));
                }
                seen += 1;
                if seen >= 32 {
                    break;
                }
            }
        }
        best.map(|(_, p)| p)
    }

    fn finish(&mut self, id: u64) -> Option<Inflight> {
        let r = self.requests.remove(&id)?;
        for p in r.first..r.first + r.count {
            if let Some(ids) = self.by_part.get_mut(&p) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.by_part.remove(&p);
                }
            }
        }
        match r.source {
            Source::Origin => {
                self.origin_inflight = self.origin_inflight.saturating_sub(1);
                if r.ahead {
                    self.origin_ahead_inflight = self.origin_ahead_inflight.saturating_sub(1);
                }
            }
            Source::Peer(a) => {
                if let Some(s) = self.peers.get_mut(&a) {
                    s.inflight = s.inflight.saturating_sub(1);
                }
            }
        }
        Some(r)
    }

    /// Request `id` delivered verified parts `first..first+count` (possibly fewer than
    /// asked, when the shell stops early). Returns requests now pointless (all their parts
    /// held) for the shell to cancel.
    pub fn completed(&mut self, id: u64, first: u32, count: u32, bytes: u64, now: u64) -> Vec<u64> {
        let Some(r) = self.finish(id) else {
            // Already cancelled or timed out, but its bytes verified: keep them.
            for p in first..first + count {
                self.have.set(p);
            }
            return Vec::new();
        };
        let elapsed = now.saturating_sub(r.since).max(1) as f64;
        match r.source {
            Source::Peer(a) => {
                if let Some(s) = self.peers.get_mut(&a) {
                    let rate = bytes as f64 / elapsed;
                    s.score = 0.7 * s.score + 0.3 * rate;
                    s.note_latency(elapsed);
                    s.failures = 0;
                }
            }
            Source::Origin => self.origin_failures = 0,
        }
        let mut cancel = Vec::new();
        for p in first..first + count {
            self.have.set(p);
            if let Some(ids) = self.by_part.get(&p) {
                cancel.extend(ids.iter().copied());
            }
        }
        cancel.sort_unstable();
        cancel.dedup();
        cancel.retain(|other| {
            self.requests
                .get(other)
                .is_some_and(|o| (o.first..o.first + o.count).all(|p| self.have.get(p)))
        });
        for c in &cancel {
            self.finish(*c);
        }
        cancel
    }

    /// Request `id` failed. Says whether its peer is now banned.
    pub fn failed(&mut self, id: u64, failure: Failure, now: u64) -> PeerVerdict {
        let Some(r) = self.finish(id) else {
            return PeerVerdict::Fine;
        };
        match r.source {
            Source::Origin => {
                self.origin_failures += 1;
                let backoff = 500u64 << self.origin_failures.min(3); // at most 4 s: urgent parts wait on it
                self.origin_backoff_until = now + backoff;
                PeerVerdict::Fine
            }
            Source::Peer(a) => {
                let Some(s) = self.peers.get_mut(&a) else {
                    return PeerVerdict::Fine;
                };
                if s.banned {
                    return PeerVerdict::Fine; // a request sent before the ban
                }
                match failure {
                    Failure::BadData => {
                        s.banned = true;
                        self.owned = None;
                        self.forget_claims(a);
                        PeerVerdict::Banned
                    }
                    Failure::NotHeld => {
                        s.false_claims += 1;
                        s.score /= 2.0;
                        if s.false_claims >= self.config.max_false_claims {
                            s.banned = true;
                            self.owned = None;
                            self.forget_claims(a);
                            return PeerVerdict::Banned;
                        }
                        if let Some(h) = s.have.as_mut() {
                            for p in r.first..r.first + r.count {
                                if h.get(p) {
                                    h.clear(p);
                                    self.avail[p as usize] =
                                        self.avail[p as usize].saturating_sub(1);
                                }
                            }
                        }
                        PeerVerdict::Fine
                    }
                    Failure::Busy => {
                        // Not a fault: ask others for a moment.
                        s.score *= 0.8;
                        s.backoff_until = now + BUSY_BACKOFF_MS;
                        PeerVerdict::Fine
                    }
                    Failure::Error => {
                        s.failures += 1;
                        s.score /= 2.0;
                        // Timed out or cut off: it took at least this long.
                        s.note_latency(now.saturating_sub(r.since) as f64);
                        s.backoff_until = now + (1000u64 << s.failures.min(5));
                        PeerVerdict::Fine
                    }
                }
            }
        }
    }

    /// The shell gave up on a peer (it went away): its claims no longer count.
    pub fn remove_peer(&mut self, peer: SocketAddr) {
        self.forget_claims(peer);
        self.owned = None;
        if let Some(s) = self.peers.get(&peer) {
            if !s.banned && s.inflight == 0 {
                self.peers.remove(&peer);
            }
        }
    }

    /// Requests in flight.
    pub fn inflight(&self) -> usize {
        self.requests.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    fn peer(i: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, i], 7001))
    }

    /// A picker's time 0 in Unix ms, for tests of ownership by start time.
    const EPOCH: u64 = 1_000_000_000;
    /// Parts due one a second from time 0.
    const ONE_A_SECOND: Deadlines = Deadlines::Linear {
        start_ms: 0,
        per_part_ms: 1000.0,
    };

    /// Member `i` of a swarm whose members started a second apart from `EPOCH`: its hash
    /// and start.
    fn member(i: u64) -> (u64, u64) {
        (member_hash(&format!("m{i}")), EPOCH + 1000 * i)
    }

    fn full(n: u32) -> Bitfield {
        let mut b = Bitfield::new(n);
        for p in 0..n {
            b.set(p);
        }
        b
    }

    #[test]
    fn alone_it_takes_random_parts_from_the_origin() {
        let mut p = Picker::new(
            Bitfield::new(100),
            Deadlines::None,
            PickerConfig::default(),
            1,
        );
        assert!(
            p.next(0, &mut rng()).is_empty(),
            "waits for the tracker first"
        );
        let reqs = p.next(1000, &mut rng());
        assert_eq!(reqs.len(), 2, "origin slots");
        assert!(reqs.iter().all(|r| r.source == Source::Origin));
        assert!(p.next(1000, &mut rng()).is_empty(), "slots full");
    }

    #[test]
    fn peers_come_first_and_the_origin_only_gets_what_no_peer_has() {
        let mut p = Picker::new(
            Bitfield::new(64),
            Deadlines::None,
            PickerConfig::default(),
            1,
        );
        p.add_peer(peer(1));
        let mut half = Bitfield::new(64);
        for i in 0..32 {
            half.set(i);
        }
        p.set_peer_have(peer(1), half, 0);
        let reqs = p.next(1000, &mut rng());
        for r in &reqs {
            match r.source {
                Source::Peer(_) => assert!(r.first + r.count <= 32),
                Source::Origin => assert!(r.first >= 32, "{r:?}"),
            }
        }
        assert_eq!(
            reqs.iter()
                .filter(|r| matches!(r.source, Source::Peer(_)))
                .count(),
            PickerConfig::default().peer_slots
        );
    }

    #[test]
    fn live_asks_few_parts_most_urgent_first_each_of_another_peer() {
        let d = Deadlines::Linear {
            start_ms: 0,
            per_part_ms: 1000.0,
        };
        let config = PickerConfig::live();
        let mut have = Bitfield::new(60);
        for part in [0, 1, 59] {
            have.set(part);
        }
        let mut p = Picker::new(have.clone(), d, config, 1);
        for i in 1..=6 {
            p.add_peer(peer(i));
            p.set_peer_have(peer(i), full(60), 0);
        }
        // Joining at 10 s: parts due from 11 s on (an ask takes about a second), the most
        // urgent first, one part per ask, one ask per peer, four in all, one of which copies
        // on a part not due within 6 s.
        let reqs = p.next(10_000, &mut rng());
        let mut firsts: Vec<u32> = reqs.iter().map(|r| r.first).collect();
        firsts.sort();
        assert_eq!(firsts[..3], [11, 12, 13], "{reqs:?}");
        assert!(firsts[3] > 16, "{reqs:?}");
        let urgent = reqs.iter().find(|r| r.first == 11).unwrap();
        assert!(reqs.iter().all(|r| r.count == 1), "{reqs:?}");
        let mut sources: Vec<Source> = reqs.iter().map(|r| r.source).collect();
        sources.sort_by_key(|s| format!("{s:?}"));
        sources.dedup();
        assert_eq!(sources.len(), 4, "each ask to another peer: {reqs:?}");
        // Nothing more while four are in flight.
        assert!(p.next(10_100, &mut rng()).is_empty());
        // One answer frees one ask: for the next part due, a part is already being copied on.
        p.completed(urgent.id, 11, 1, 16_384, 10_500);
        let more = p.next(10_500, &mut rng());
        assert_eq!(more.len(), 1, "{more:?}");
        assert_eq!(more[0].first, 14);

        // With two spread asks, two of the four copy parts on that are not due within 6 s.
        let config = PickerConfig {
            spread_slots: 2,
            ..PickerConfig::live()
        };
        let mut p = Picker::new(have, d, config, 1);
        for i in 1..=8 {
            p.add_peer(peer(i));
            p.set_peer_have(peer(i), full(60), 0);
        }
        let mut firsts: Vec<u32> = p.next(10_000, &mut rng()).iter().map(|r| r.first).collect();
        firsts.sort();
        assert_eq!(firsts[..2], [11, 12], "{firsts:?}");
        assert!(firsts[2..].iter().all(|&f| f > 16), "{firsts:?}");
    }

    #[test]
    fn a_listener_tuning_in_asks_only_for_its_first_seconds() {
        // The entry on air is 10 s in (part 10 plays now), the next one starts in 20 s.
        let on_air = Deadlines::Linear {
            start_ms: -10_000,
            per_part_ms: 1000.0,
        };
        let next = Deadlines::Linear {
            start_ms: 20_000,
            per_part_ms: 1000.0,
        };
        let asks_with = |deadlines: Deadlines, started: u64, now: u64, head: bool| {
            let mut have = Bitfield::new(60);
            if head {
                have.set(0);
            }
            let mut p = Picker::new(have, deadlines, PickerConfig::live(), 1);
            p.set_started(started, EPOCH);
            for i in 1..=8 {
                p.add_peer(peer(i));
                p.set_peer_have(peer(i), full(60), 0);
            }
            let mut firsts: Vec<u32> = p.next(now, &mut rng()).iter().map(|r| r.first).collect();
            firsts.sort();
            firsts
        };
        let asks = |deadlines, started, now| asks_with(deadlines, started, now, true);
        // Just started, every peer holding everything: all that plays within 5 s is asked
        // at once (six asks: the part playing now and the five after it), nothing of the
        // next entry.
        let firsts = asks(on_air, EPOCH, 100);
        assert_eq!(firsts, (10..=15).collect::<Vec<_>>());
        // The entry's head missing as well: it has an ask of its own, the six stay.
        let firsts = asks_with(on_air, EPOCH, 100, false);
        assert_eq!(firsts.len(), 7, "{firsts:?}");
        assert_eq!(firsts[0], 0, "{firsts:?}");
        assert_eq!(firsts[1..], (10..=15).collect::<Vec<_>>());
        // Not once the first seconds are over: four, the head's among them.
        assert_eq!(asks_with(on_air, EPOCH - 10_000, 100, false).len(), 4);
        assert!(asks(next, EPOCH, 100).is_empty());
        // Started 10 s before: one ask copies a rare part on, and the next entry is traded.
        let firsts = asks(on_air, EPOCH - 10_000, 100);
        assert_eq!(firsts.len(), 4, "{firsts:?}");
        assert!(firsts[3] > 16, "{firsts:?}");
        assert!(!asks(next, EPOCH - 10_000, 100).is_empty());
    }

    #[test]
    fn a_tuning_in_listener_asks_past_four_only_for_parts_many_hold() {
        // The entry on air is 10 s in (part 10 plays now); the listener has just started.
        let on_air = Deadlines::Linear {
            start_ms: -10_000,
            per_part_ms: 1000.0,
        };
        let mut have = Bitfield::new(60);
        have.set(0);
        let mut p = Picker::new(have, on_air, PickerConfig::live(), 1);
        p.set_started(EPOCH, EPOCH);
        // Eight peers hold the entry up to part 13; three of them parts 14 and 15 as well.
        let mut to_13 = Bitfield::new(60);
        for part in 0..=13 {
            to_13.set(part);
        }
        let mut to_15 = to_13.clone();
        to_15.set(14);
        to_15.set(15);
        for i in 1..=8 {
            p.add_peer(peer(i));
            p.set_peer_have(
                peer(i),
                if i <= 3 { to_15.clone() } else { to_13.clone() },
                0,
            );
        }
        // The four asks go to the first four parts; parts 14 and 15, held by three, wait
        // for one of them to be answered (their holders' uplinks are the busy ones).
        let reqs = p.next(100, &mut rng());
        let mut firsts: Vec<u32> = reqs.iter().map(|r| r.first).collect();
        firsts.sort();
        assert_eq!(firsts, [10, 11, 12, 13], "{reqs:?}");
        assert!(p.next(200, &mut rng()).is_empty());
        // A fourth holder of part 14 comes: now it is asked at once, beside the four.
        let mut to_14 = to_13.clone();
        to_14.set(14);
        p.add_peer(peer(9));
        p.set_peer_have(peer(9), to_14, 0);
        let more = p.next(300, &mut rng());
        assert_eq!(
            more.iter().map(|r| r.first).collect::<Vec<_>>(),
            [14],
            "{more:?}"
        );
    }

    #[test]
    fn a_download_yields_its_peer_asks_while_another_is_short() {
        // The entry on air is 10 s in; part 11 plays in 1 s.
        let on_air = Deadlines::Linear {
            start_ms: -10_000,
            per_part_ms: 1000.0,
        };
        let mut have = Bitfield::new(60);
        for part in 0..=12 {
            have.set(part);
        }
        let p = Picker::new(have.clone(), on_air, PickerConfig::live(), 1);
        assert!(
            p.short(100),
            "parts 13 and 14 play within 4 s and are missing"
        );
        for part in 13..=14 {
            have.set(part);
        }
        let p2 = Picker::new(have, on_air, PickerConfig::live(), 1);
        assert!(!p2.short(100), "everything due within 4 s is held");

        // The next entry, 20 s away: four asks, or one while the entry on air is short.
        let next = Deadlines::Linear {
            start_ms: 20_000,
            per_part_ms: 1000.0,
        };
        let asks = |yielding: bool| {
            let mut p = Picker::new(Bitfield::new(60), next, PickerConfig::live(), 1);
            for i in 1..=8 {
                p.add_peer(peer(i));
                p.set_peer_have(peer(i), full(60), 0);
            }
            p.set_yielding(yielding);
            p.next(100, &mut rng()).len()
        };
        assert_eq!(asks(false), 4);
        assert_eq!(asks(true), 1);
    }

    #[test]
    fn a_slow_peer_is_asked_only_for_parts_due_later_than_its_answers_take() {
        let d = Deadlines::Linear {
            start_ms: 0,
            per_part_ms: 1000.0,
        };
        let config = PickerConfig {
            peer_total_slots: 1,
            spread_slots: 0,
            ..PickerConfig::live()
        };
        let mut have = Bitfield::new(60);
        have.set(0);
        let mut p = Picker::new(have, d, config, 1);
        p.add_peer(peer(1));
        p.set_peer_have(peer(1), full(60), 0);
        // Its first answer took 4 s.
        let first = p.next(10_000, &mut rng());
        assert_eq!(first[0].first, 11, "{first:?}");
        p.completed(first[0].id, 11, 1, 16_384, 14_000);
        // At 14 s, part 16 (due in 2 s) would come too late from it: part 18 is asked.
        let next = p.next(14_000, &mut rng());
        assert_eq!(next[0].first, 18, "{next:?}");
        // A peer known to answer fast is asked for the part due soonest.
        p.add_peer(peer(2));
        p.set_peer_have(peer(2), full(60), 14_000);
        let config = PickerConfig {
            peer_total_slots: 2,
            ..config
        };
        p.config = config;
        let more = p.next(14_000, &mut rng());
        assert_eq!(
            (more[0].first, more[0].source),
            (15, Source::Peer(peer(2))),
            "{more:?}"
        );
    }

    #[test]
    fn deadlines_order_and_urgent_parts_may_come_from_the_origin() {
        let d = Deadlines::Linear {
            start_ms: 10_000,
            per_part_ms: 1000.0,
        };
        let mut p = Picker::new(Bitfield::new(50), d, PickerConfig::default(), 1);
        p.add_peer(peer(1));
        p.set_peer_have(peer(1), full(50), 0);
        // At t=8000 parts 0..=5 are due within 3 s; the peer takes the first ones in order.
        let reqs = p.next(8_000, &mut rng());
        let peer_reqs: Vec<_> = reqs.iter().filter(|r| r.source != Source::Origin).collect();
        assert_eq!((peer_reqs[0].first, peer_reqs[0].count), (0, 2));
        assert_eq!(
            (peer_reqs[1].first, peer_reqs[1].count),
            (2, 2),
            "then the next in order: the last part waits for its turn"
        );
        assert_eq!(peer_reqs.len(), 2, "two asks at a time per peer");
        // Nothing is lacking at any peer, and parts are in flight in time: no origin.
        assert!(reqs.iter().all(|r| r.source != Source::Origin), "{reqs:?}");
        // The peer is slow: after 1 s the urgent parts are asked of the origin too.
        let again = p.next(9_100, &mut rng());
        assert!(
            again
                .iter()
                .any(|r| r.source == Source::Origin && r.first == 0),
            "{again:?}"
        );
    }

    #[test]
    fn a_later_entry_waits_for_its_window_and_busy_peers_are_not_faulted() {
        // The next entry starts in 60 s: nothing of it is urgent yet, not even the parts the
        // stream reads first, and peers are asked only for what is due within the window.
        let d = Deadlines::Linear {
            start_ms: 60_000,
            per_part_ms: 1000.0,
        };
        let mut p = Picker::new(Bitfield::new(50), d, PickerConfig::default(), 1);
        p.add_peer(peer(1));
        p.set_peer_have(peer(1), full(50), 0);
        assert!(
            p.next(2_000, &mut rng()).is_empty(),
            "too early for anything"
        );
        let window = PickerConfig::default().peer_ahead_ms;
        let reqs = p.next((60_000 - window + 1) as u64, &mut rng());
        assert_eq!(
            reqs.len(),
            1,
            "only the head: the last part waits for its time {reqs:?}"
        );
        assert!(reqs.iter().all(|r| r.source == Source::Peer(peer(1))));
        assert_eq!((reqs[0].first, reqs[0].count), (0, 2), "the head first");
        // A busy answer: a short pause for that peer, no fault, no ban.
        let now = (60_000 - window + 10) as u64;
        assert_eq!(p.failed(reqs[0].id, Failure::Busy, now), PeerVerdict::Fine);
        let state = &p.peers[&peer(1)];
        assert_eq!(state.failures, 0);
        assert_eq!(state.backoff_until, now + BUSY_BACKOFF_MS);
    }

    #[test]
    fn only_the_owner_and_its_backups_rescue_from_the_origin() {
        // Part 0 is due at 3 s; no peer holds anything yet.
        let d = Deadlines::Linear {
            start_ms: 3_000,
            per_part_ms: 1000.0,
        };
        let me = 1u64;
        let rescues = |backups: u16, members_before: usize, now: u64| {
            let ahead: Vec<u64> = (2..)
                .filter(|m| score(*m, 0) > score(me, 0))
                .take(members_before)
                .collect();
            let behind: Vec<u64> = (2..)
                .filter(|m| score(*m, 0) < score(me, 0))
                .take(3)
                .collect();
            let config = PickerConfig {
                rescue_backups: backups,
                ..PickerConfig::live()
            };
            let mut p = Picker::new(Bitfield::new(20), d, config, me);
            for (i, m) in ahead.iter().chain(&behind).enumerate() {
                p.add_peer(peer(i as u8 + 1));
                p.set_membership(peer(i as u8 + 1), Some((*m, u64::MAX)));
            }
            p.set_tracker_answered();
            p.next(now, &mut rng())
                .iter()
                .filter(|r| r.source == Source::Origin && r.first < 4)
                .count()
        };
        let rescues_of_block_0 = |members_before, now| rescues(2, members_before, now);
        // With two backups: the owner fetches its block ahead of time; the first backup from
        // 3 s before, the second from 2 s before; the fourth member never (it waits).
        assert_eq!(rescues_of_block_0(0, 600), 1, "the owner");
        assert_eq!(rescues_of_block_0(1, 600), 1, "first backup, 2.4 s before");
        assert_eq!(
            rescues_of_block_0(2, 600),
            0,
            "second backup: not yet at 2.4 s"
        );
        assert_eq!(rescues_of_block_0(2, 1_100), 1, "second backup at 1.9 s");
        assert_eq!(rescues_of_block_0(3, 2_900), 0, "the rest never");
        // Live: one backup; the second member after the owner never rescues.
        assert_eq!(PickerConfig::live().rescue_backups, 1);
        assert_eq!(rescues(1, 1, 600), 1, "the backup");
        assert_eq!(rescues(1, 2, 2_900), 0, "no second backup");
    }

    #[test]
    fn a_listener_joining_mid_entry_does_not_fetch_what_has_aired() {
        // The entry started 20 parts ago.
        let d = Deadlines::Linear {
            start_ms: -20_000,
            per_part_ms: 1000.0,
        };
        let mut p = Picker::new(Bitfield::new(40), d, PickerConfig::default(), 1);
        assert!(
            p.next(0, &mut rng()).is_empty(),
            "waits for the tracker first"
        );
        let reqs = p.next(500, &mut rng());
        assert!(!reqs.is_empty());
        assert!(
            reqs.iter().any(|r| r.first == 0),
            "the head is needed: {reqs:?}"
        );
        for r in &reqs {
            assert!(
                r.first >= 19 || r.first + r.count <= 2,
                "{r:?} asks for parts that have aired"
            );
        }
        // With a peer holding everything, it starts at the play position, not at 0.
        p.add_peer(peer(1));
        p.set_peer_have(peer(1), full(40), 0);
        let reqs = p.next(501, &mut rng());
        let first_peer = reqs.iter().find(|r| r.source != Source::Origin).unwrap();
        assert!(first_peer.first >= 19, "{first_peer:?}");

        // Live, with peers holding everything: the first part (the head) before the play
        // position, and no other part that has aired, until the stream says it needs one
        // (a head longer than a part): then that part comes first.
        let mut p = Picker::new(Bitfield::new(40), d, PickerConfig::live(), 1);
        for i in 1..=6 {
            p.add_peer(peer(i));
            p.set_peer_have(peer(i), full(40), 0);
        }
        p.set_tracker_answered();
        let reqs = p.next(1_000, &mut rng());
        let head = reqs.iter().find(|r| r.first == 0).expect("the head");
        assert!(
            reqs.iter().all(|r| r.first == 0 || r.first >= 21),
            "only the head of what has aired: {reqs:?}"
        );
        p.set_wanted(vec![1]);
        p.completed(head.id, 0, 1, 16_384, 1_500);
        let more = p.next(1_500, &mut rng());
        assert_eq!(more.len(), 1, "{more:?}");
        assert_eq!((more[0].first, more[0].count), (1, 1), "{more:?}");
    }

    #[test]
    fn a_listener_tuning_in_asks_for_the_part_playing_now_if_others_can_spare_it() {
        // The entry started 20 parts (20 s) ago: part 21 plays from 1 s to 2 s.
        let d = Deadlines::Linear {
            start_ms: -20_000,
            per_part_ms: 1000.0,
        };
        let tuned = |holders: &[u8], now: u64| {
            let mut p = Picker::new(Bitfield::new(40), d, PickerConfig::live(), 1);
            for i in 1..=6 {
                p.add_peer(peer(i));
                let mut bits = full(40);
                if !holders.contains(&i) {
                    bits = Bitfield::new(40);
                    for part in 23..40 {
                        bits.set(part);
                    }
                }
                p.set_peer_have(peer(i), bits, 0);
            }
            p.set_tracker_answered();
            let asked: Vec<u32> = p
                .next(now, &mut rng())
                .iter()
                .filter(|r| r.source != Source::Origin)
                .map(|r| r.first)
                .collect();
            asked
        };
        // At 1.2 s part 21 plays on 0.8 s: asked, though it is due sooner than any ask made
        // once the listener plays (1 s ahead).
        let asked = tuned(&[1, 2, 3, 4], 1_200);
        assert!(asked.contains(&21), "{asked:?}");
        // Held by three peers only (`join_min_holders` is 4 live): their uplinks are spared.
        let asked = tuned(&[1, 2, 3], 1_200);
        assert!(!asked.contains(&21) && !asked.contains(&22), "{asked:?}");
        // Too little of part 21 left (0.4 s): only part 22 on.
        let asked = tuned(&[1, 2, 3, 4], 1_600);
        assert!(!asked.contains(&21) && asked.contains(&22), "{asked:?}");
        // After the first 3 s a listener is playing: nothing due within a second is asked
        // (the head, part 0, is needed whenever it comes).
        let asked = tuned(&[1, 2, 3, 4, 5, 6], 3_500);
        assert!(asked.iter().all(|&p| p == 0 || p >= 25), "{asked:?}");
    }

    #[test]
    fn bad_data_bans_and_false_claims_drop() {
        let mut p = Picker::new(
            Bitfield::new(16),
            Deadlines::None,
            PickerConfig::default(),
            1,
        );
        p.add_peer(peer(1));
        p.add_peer(peer(2));
        p.set_peer_have(peer(1), full(16), 0);
        p.set_peer_have(peer(2), full(16), 0);
        let reqs = p.next(0, &mut rng());
        let r1 = reqs
            .iter()
            .find(|r| r.source == Source::Peer(peer(1)))
            .unwrap();
        assert_eq!(p.failed(r1.id, Failure::BadData, 10), PeerVerdict::Banned);
        assert!(p.is_banned(peer(1)));
        let later = p.next(20, &mut rng());
        assert!(later.iter().all(|r| r.source != Source::Peer(peer(1))));
    }

    #[test]
    fn false_claims_cost_the_claim_then_the_peer() {
        let mut p = Picker::new(
            Bitfield::new(16),
            Deadlines::None,
            PickerConfig::default(),
            1,
        );
        p.add_peer(peer(2));
        let mut verdicts = Vec::new();
        for t in 0..3 {
            p.set_peer_have(peer(2), full(16), 0);
            let reqs = p.next(100 + t, &mut rng());
            let r = reqs
                .iter()
                .find(|r| r.source == Source::Peer(peer(2)))
                .unwrap();
            verdicts.push(p.failed(r.id, Failure::NotHeld, 100 + t));
        }
        assert_eq!(
            verdicts,
            [PeerVerdict::Fine, PeerVerdict::Fine, PeerVerdict::Banned]
        );
        assert!(p.is_banned(peer(2)));
    }

    #[test]
    fn completion_cancels_duplicates_and_finishes() {
        let mut p = Picker::new(
            Bitfield::new(2),
            Deadlines::None,
            PickerConfig::default(),
            1,
        );
        p.add_peer(peer(1));
        p.add_peer(peer(2));
        p.set_peer_have(peer(1), full(2), 0);
        p.set_peer_have(peer(2), full(2), 0);
        let reqs = p.next(0, &mut rng());
        // Endgame: both peers asked for the same two parts.
        assert!(reqs.len() >= 2, "{reqs:?}");
        let first = reqs[0];
        let cancel = p.completed(first.id, first.first, first.count, 32768, 5);
        for c in &cancel {
            assert!(reqs.iter().any(|r| r.id == *c && r.id != first.id));
        }
        for r in &reqs[1..] {
            if !cancel.contains(&r.id) {
                p.completed(r.id, r.first, r.count, 16384, 6);
            }
        }
        assert!(p.is_complete());
        assert_eq!(p.inflight(), 0);
    }

    #[test]
    fn a_member_whose_start_is_unknown_owns_nothing_until_it_is_known() {
        // The tracker named a member but not when it started: it is not counted among the
        // settled members, so the blocks this node owns are the same as without it.
        let owned = |unknown: bool| -> Vec<bool> {
            let (hash, started) = member(0);
            let mut p = Picker::new(Bitfield::new(400), ONE_A_SECOND, PickerConfig::live(), hash);
            p.set_started(started, EPOCH);
            for o in 1..3u64 {
                p.add_peer(peer(o as u8));
                p.set_membership(peer(o as u8), Some(member(o)));
            }
            if unknown {
                p.add_peer(peer(9));
                p.set_membership(peer(9), Some((member_hash("m9"), u64::MAX)));
            }
            (0..100).map(|b| p.owns(b * 4)).collect()
        };
        let without = owned(false);
        assert!(without.iter().any(|&o| o) && !without.iter().all(|&o| o));
        assert_eq!(owned(true), without);
    }

    /// The owner of each of the first 50 blocks (4 parts, due one a second from `EPOCH`) as
    /// every member of `members` (started a second apart, see `member`) sees it, knowing the
    /// others: exactly one must own each block.
    fn owner_map(config: PickerConfig, members: &[u64]) -> Vec<u64> {
        owners_of((0..50).map(|b| b * 4), config, members)
    }

    /// The owner of each of `parts` (of 200, due one a second from `EPOCH`) as every member
    /// of `members` sees it: exactly one must own each.
    fn owners_of(
        parts: impl Iterator<Item = u32> + Clone,
        config: PickerConfig,
        members: &[u64],
    ) -> Vec<u64> {
        let owners_seen_by = |me: u64| -> Vec<bool> {
            let (hash, started) = member(me);
            let mut p = Picker::new(Bitfield::new(200), ONE_A_SECOND, config, hash);
            p.set_started(started, EPOCH);
            for &o in members.iter().filter(|&&o| o != me) {
                p.add_peer(peer(o as u8 + 1));
                p.set_membership(peer(o as u8 + 1), Some(member(o)));
            }
            parts.clone().map(|part| p.owns(part)).collect()
        };
        let views: Vec<(u64, Vec<bool>)> =
            members.iter().map(|&me| (me, owners_seen_by(me))).collect();
        parts
            .enumerate()
            .map(|(i, part)| {
                let owners: Vec<u64> = views
                    .iter()
                    .filter(|(_, v)| v[i])
                    .map(|(m, _)| *m)
                    .collect();
                assert_eq!(owners.len(), 1, "part {part}: one owner, not {owners:?}");
                owners[0]
            })
            .collect()
    }

    #[test]
    fn the_first_members_own_the_blocks_and_newcomers_change_nothing() {
        // Ten members who joined a second apart; parts due one a second from the picker's
        // time 0, which is `EPOCH` in Unix ms. Blocks are 4 parts; live, a block is owned by
        // one of the first 6 members that had been there 5 s when it is taken (25 s before
        // it is due), or, when none had (the entry was joined cold), when it is taken late
        // (12 s before it is due), or by the first member when none had even then.
        // Each arrival seeds a whole block here (`cold_seed_parts` 4; one part each is
        // `a_cold_entry_is_seeded_a_part_per_arrival`).
        let blocks = PickerConfig {
            cold_seed_parts: 4,
            ..PickerConfig::live()
        };
        let owner_map = |members: &[u64]| owner_map(blocks, members);
        let ten: Vec<u64> = (0..10).collect();
        let owners = owner_map(&ten);
        // Block b is taken at 4b - 25 s; members joined by 4b - 30 s had settled. Nobody
        // had for blocks 0-7 (the cold half minute): the first three are the first's, and
        // each next one is the next arrival's (member 1's, 2's, ...), as it started 6 s
        // before the block is due.
        assert!(
            owners[..3].iter().all(|&o| o == 0),
            "the first blocks: the first alone"
        );
        assert_eq!(owners[3..8], [1, 2, 3, 4, 5], "then one block per arrival");
        assert!(owners.iter().all(|&o| o < 6), "only the first six own");
        let distinct: std::collections::HashSet<_> = owners[9..].iter().collect();
        assert!(
            distinct.len() >= 4,
            "later blocks spread over them: {distinct:?}"
        );
        // A newcomer is never among the first six: nobody's blocks move.
        let eleven: Vec<u64> = (0..11).collect();
        assert_eq!(owner_map(&eleven), owners);
        // The first member leaves (the tracker stops naming it): its blocks pass on, and
        // the cold blocks to the next arrival each.
        let rest: Vec<u64> = (1..10).collect();
        let after = owner_map(&rest);
        assert!(
            after[..3].iter().all(|&o| o == 1),
            "now the first is member 1"
        );
        assert_eq!(after[3..8], [2, 3, 4, 5, 6]);
        // Its blocks pass to the new sixth member (6), and as shares are rebalanced some
        // others move too; the shares stay even.
        assert!(after[8..].contains(&6), "the new sixth member owns blocks");
        for (map, six) in [(&owners, 0..6), (&after, 1..7)] {
            let counts: Vec<usize> = six
                .map(|m| map[8..].iter().filter(|&&o| o == m).count())
                .collect();
            let (fewest, most) = (counts.iter().min(), counts.iter().max());
            assert!(
                most.zip(fewest).is_some_and(|(a, b)| a - b <= 2),
                "blocks 8-49 shared evenly: {counts:?}"
            );
        }
    }

    #[test]
    fn blocks_are_shared_evenly_among_owners() {
        // Rendezvous alone gave one of six owners 5 of 15 blocks (benchmark): with shares,
        // each owner has 2 or 3, every block has one owner, and the ranks after it are a
        // strict order of the others (the backups).
        for set in 0..200u64 {
            let owners: Vec<(u64, u64)> = (0..6)
                .map(|i| (i, member_hash(&format!("set{set}-m{i}"))))
                .collect();
            let mut counts = vec![0u32; owners.len()];
            let mut loads_of: Vec<HashMap<u64, u32>> = vec![HashMap::new(); owners.len()];
            for block in 0..15 {
                let mut ranks: Vec<u16> = owners
                    .iter()
                    .zip(loads_of.iter_mut())
                    .map(|(m, loads)| balanced_rank(&owners, block, m.1, loads))
                    .collect();
                let owner = ranks.iter().position(|&r| r == 0).expect("an owner");
                counts[owner] += 1;
                ranks.sort_unstable();
                assert_eq!(ranks, [0, 1, 2, 3, 4, 5], "set {set} block {block}");
            }
            assert!(
                counts.iter().all(|&c| (2..=3).contains(&c)),
                "set {set}: {counts:?}"
            );
            // A member that is not an owner has no rank.
            let outsider = member_hash("outsider");
            assert_eq!(
                balanced_rank(&owners, 0, outsider, &mut HashMap::new()),
                u16::MAX
            );
        }
    }

    #[test]
    fn a_cold_entry_is_seeded_a_part_per_arrival() {
        // Live, each arrival seeds one part: after the first member's three blocks
        // (parts 0-11), part 12 is member 1's, part 13 member 2's, and so on while members
        // came; the rest of the cold half minute (due before 30 s) falls back to its block's
        // owners among those settled 17 s before it is due, and later blocks are owned as
        // before.
        let one = PickerConfig::live();
        let ten: Vec<u64> = (0..10).collect();
        let owners = owners_of(0..48, one, &ten);
        assert!(owners[..12].iter().all(|&o| o == 0), "{owners:?}");
        assert_eq!(owners[12..21], [1, 2, 3, 4, 5, 6, 7, 8, 9], "one part each");
        for block in [&owners[21..24], &owners[24..28], &owners[28..32]] {
            assert!(block.iter().all(|&o| o == block[0] && o < 6), "{owners:?}");
        }
        let blocks = owner_map(
            PickerConfig {
                cold_seed_parts: 4,
                ..one
            },
            &ten,
        );
        for part in 32..48 {
            assert_eq!(owners[part], blocks[part / 4], "part {part}");
        }
        // Arrivals each a fraction of a second too late for the part they would have
        // seeded (a lead of 11.5 s: member 1, at 1 s, had to come by 0.5 s for part 12):
        // each seeds the next one instead, and only part 12 is left to its block's owners.
        let late = PickerConfig {
            cold_owner_lead_ms: 11_500,
            ..one
        };
        let owners = owners_of(0..48, late, &ten);
        assert!(owners[..12].iter().all(|&o| o == 0), "{owners:?}");
        assert_eq!(owners[13..22], [1, 2, 3, 4, 5, 6, 7, 8, 9], "{owners:?}");
        // Each owner's origin ask stays within its part.
        let (hash, started) = member(3);
        let mut p = Picker::new(Bitfield::new(60), ONE_A_SECOND, one, hash);
        p.set_started(started, EPOCH);
        for o in ten.iter().filter(|&&o| o != 3) {
            p.add_peer(peer(*o as u8 + 1));
            p.set_membership(peer(*o as u8 + 1), Some(member(*o)));
        }
        p.set_tracker_answered();
        let asks = p.next(3_000, &mut rng());
        let origin: Vec<(u32, u32)> = asks
            .iter()
            .filter(|q| q.source == Source::Origin)
            .map(|q| (q.first, q.count))
            .collect();
        assert_eq!(origin, [(14, 1)], "{asks:?}");
    }

    #[test]
    fn a_cold_entry_s_later_blocks_are_taken_late() {
        // The first listener, alone, joins an entry whose parts are due one a second from its
        // start: it takes its first three blocks at once, the next only 7 s before they are
        // due (the members they were for did not come), and every block in time.
        let mut p = Picker::new(
            Bitfield::new(60),
            ONE_A_SECOND,
            PickerConfig {
                cold_seed_parts: 4,
                ..PickerConfig::live()
            },
            member_hash("m0"),
        );
        p.set_started(EPOCH, EPOCH);
        p.set_tracker_answered();
        let mut r = rng();
        // Blocks of 4 parts: when each was first asked of the origin.
        let mut asked_at: HashMap<u32, u64> = HashMap::new();
        for t in (0..40_000).step_by(100) {
            for q in p.next(t, &mut r) {
                assert_eq!(q.source, Source::Origin);
                for part in q.first..q.first + q.count {
                    asked_at.entry(part / 4).or_insert(t);
                }
                p.completed(q.id, q.first, q.count, 16384 * u64::from(q.count), t);
            }
        }
        assert!((0..3).all(|b| asked_at[&b] < 1_000), "{asked_at:?}");
        // Blocks 3-7 would have been taken 25 s ahead before anyone was there, and each
        // was for a member who had to start 9 s before it is due.
        assert_eq!(asked_at[&3], 5_000, "due at 12 s");
        assert_eq!(asked_at[&4], 9_000);
        assert_eq!(asked_at[&5], 13_000);
        assert_eq!(asked_at[&6], 17_000);
        assert_eq!(asked_at[&7], 21_000);
        // Block 8 is taken 25 s ahead (at 7 s), when the members there by 2 s own it.
        assert_eq!(asked_at[&8], 7_000);
        assert_eq!(asked_at[&9], 11_000);
        assert_eq!(asked_at.len(), 15, "the whole entry");
        for (b, t) in &asked_at {
            assert!(*t <= u64::from(*b) * 4_000, "block {b} asked in time");
        }
    }

    #[test]
    fn a_cold_entry_s_next_block_is_taken_by_the_next_listener_at_once() {
        // The second listener joins 1 s after the first, whose entry's parts are due one a
        // second from the first's start. Block 3 (due at 12 s) is the second's: it takes it
        // from the origin as soon as the first moments are over, 11 s ahead; the first,
        // knowing the second, leaves it alone and takes only its own three blocks.
        let (first, second) = (member_hash("m0"), member_hash("m1"));
        // Origin asks (block, picker ms) in a picker's first 3 s; it starts `late` ms after
        // the first, and its time 0 is then.
        let origin_asks = |me: u64, late: u64, other: (u64, u64)| {
            let d = Deadlines::Linear {
                start_ms: -(late as i64),
                per_part_ms: 1000.0,
            };
            let mut p = Picker::new(Bitfield::new(60), d, PickerConfig::live(), me);
            p.set_started(EPOCH + late, EPOCH + late);
            p.add_peer(peer(9));
            p.set_membership(peer(9), Some(other));
            p.set_tracker_answered();
            let mut r = rng();
            let mut asked = Vec::new();
            for t in (0..3_000).step_by(100) {
                for q in p.next(t, &mut r) {
                    if q.source == Source::Origin {
                        asked.push((q.first / 4, t));
                    }
                    p.completed(q.id, q.first, q.count, 16384 * u64::from(q.count), t);
                }
            }
            asked
        };
        let asked = origin_asks(second, 1_000, (first, EPOCH));
        assert_eq!(asked.first().map(|a| a.0), Some(3), "{asked:?}");
        assert!(asked[0].1 <= 600, "at once: {asked:?}");
        assert!(asked.iter().all(|a| a.0 == 3), "only its block: {asked:?}");
        let asked = origin_asks(first, 0, (second, EPOCH + 1_000));
        let blocks: Vec<u32> = asked.iter().map(|a| a.0).collect();
        assert_eq!(blocks, [0, 1, 2], "the first's own three: {asked:?}");
    }

    #[test]
    fn members_split_the_origin_between_them() {
        // Three listeners that know each other's ids ask the origin for disjoint blocks.
        let ids = [member_hash("a"), member_hash("b"), member_hash("c")];
        let mut asked = std::collections::HashSet::new();
        for (i, me) in ids.iter().enumerate() {
            let mut p = Picker::new(
                Bitfield::new(400),
                Deadlines::None,
                PickerConfig::default(),
                *me,
            );
            for (j, other) in ids.iter().enumerate() {
                if i != j {
                    p.add_peer(peer(j as u8 + 1));
                    p.set_membership(peer(j as u8 + 1), Some((*other, u64::MAX)));
                }
            }
            let mut r = rng();
            let mut t = 1000;
            loop {
                let reqs = p.next(t, &mut r);
                let origin: Vec<_> = reqs.iter().filter(|q| q.source == Source::Origin).collect();
                if origin.is_empty() {
                    break;
                }
                for q in origin {
                    for part in q.first..q.first + q.count {
                        assert!(asked.insert(part), "part {part} asked twice");
                    }
                    p.completed(q.id, q.first, q.count, 16384, t);
                }
                t += 1; // no peer news, but not yet orphaned (2 s)
            }
        }
        assert_eq!(asked.len(), 400, "together they cover the file");
    }

    #[test]
    fn failing_sources_back_off() {
        let mut p = Picker::new(
            Bitfield::new(8),
            Deadlines::None,
            PickerConfig::default(),
            1,
        );
        let r = p.next(1000, &mut rng());
        p.failed(r[0].id, Failure::Error, 1010);
        assert!(p.next(1020, &mut rng()).is_empty(), "origin backs off");
        assert!(!p.next(5_000, &mut rng()).is_empty());
    }
}
