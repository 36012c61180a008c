//! The picker's settings (a live station's derived from [`Model`]).

use super::model::Model;

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
    /// With deadlines, parts due sooner than this are not asked of a peer whose answer time
    /// is not known yet (an ask takes about that long on a thin uplink); once it is,
    /// `peer_lead_by_latency` decides.
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
    /// time, rescue them): this many of them, by when the tracker first saw them (`usize::MAX`:
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
    /// player's first seconds (its prebuffer) while it waits for them, each asked as due now
    /// if due within `focus_wide_ms` (the player starts when it holds them all). 0: never so.
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
    /// The same counted in media time rather than parts, for parts of `per_part_ms` each:
    /// a peer ask carries about a second of media and an origin block about four, whatever
    /// the bitrate (at 128 kbit/s a part is about a second, and nothing changes). At
    /// 1.5 Mbit/s a part is 87 ms, and asks of one part each would bring a joiner its first
    /// seconds an eleventh as fast as at 128 kbit/s.
    pub fn scaled_to(self, per_part_ms: f64) -> Self {
        let k = if per_part_ms > 0.0 {
            (1000.0 / per_part_ms).floor().clamp(1.0, 64.0) as u32
        } else {
            1
        };
        Self {
            max_run: self.max_run * k,
            peer_max_run: self.peer_max_run * k,
            cold_seed_parts: self.cold_seed_parts * k,
            ..self
        }
    }

    /// For a live station: every listener wants each part at the same moment, so each asks
    /// the origin one thing at a time (one block it owns, one rescue): many concurrent
    /// requests into a thin origin uplink share it so finely that nothing arrives in time.
    /// Every value is derived from the model's twelve parameters ([`Model::LIVE`]).
    pub fn live() -> Self {
        Model::LIVE.picker()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_parts_become_counts_in_media_time() {
        let live = PickerConfig::live();
        // 128 kbit/s: a 16 KiB part plays 1.024 s; nothing changes.
        let radio = live.scaled_to(1024.0);
        assert_eq!(
            (radio.max_run, radio.peer_max_run, radio.cold_seed_parts),
            (live.max_run, live.peer_max_run, live.cold_seed_parts)
        );
        // 1.5 Mbit/s: 87 ms a part; an ask carries about a second, a block about four.
        let tv = live.scaled_to(16384.0 * 8.0 / 1500.0);
        assert_eq!(tv.peer_max_run, 11 * live.peer_max_run);
        assert_eq!(tv.max_run, 11 * live.max_run);
        assert_eq!(tv.peer_total_slots, live.peer_total_slots);
        // No deadlines known: as it was.
        assert_eq!(live.scaled_to(0.0).max_run, live.max_run);
    }
}
