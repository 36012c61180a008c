//! The picker's knobs.

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
