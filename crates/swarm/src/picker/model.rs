//! The live picker's model: the twelve quantities a station's swarm is scheduled by, each
//! bounding one invariant, and every setting of [`PickerConfig`] derived from them.
//!
//! Most of the picker's settings are thresholds on one quantity, the time left before a part
//! is due; they come in families that bound the same thing (a joiner's first seconds, the
//! window in which parts go in deadline order, what one ask carries). Each family is one
//! parameter here, and the others follow from it. Inputs that are not parameters: the entry's
//! part duration ([`PickerConfig::scaled_to`] turns asks and blocks into parts), and each
//! source's measured answer time (a peer is asked for a part only if its answers come before
//! the part's moment, `peer_lead_by_latency` 1).
//!
//! What each one moves in the simulator's matrix is docs/decisions/054; how the settings were
//! folded into these, docs/decisions/056.

use super::PickerConfig;

/// See the module documentation; [`Model::LIVE`] is what `alluvium listen` uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    /// Media one peer ask carries (ms). Bounds a thin uplink's queue: an ask that is taken
    /// goes at the uplink's full rate and ends within about this long, so it is also how long
    /// an answer is expected to take from a peer not measured yet.
    pub ask_ms: i64,
    /// Media one origin block carries (ms): what its owner takes from the origin in one
    /// request, a whole number of asks. Bounds the origin's requests per copy aired.
    pub block_ms: i64,
    /// A joiner's first seconds (ms), what its player needs before it starts (the stream's
    /// default burst): asked first, as due now, of as many holders as hold them.
    pub prebuffer_ms: i64,
    /// Parts due within this (ms) are asked in deadline order, later ones rarest first; the
    /// origin rescues parts due within half of it that no peer can deliver in time.
    pub in_order_ms: i64,
    /// How far ahead parts are traded among peers (ms): the window in which a part spreads.
    pub trade_ms: i64,
    /// How far ahead a block's owner takes it from the origin (ms): time for the hops that
    /// carry it to every listener (decision 027).
    pub origin_lead_ms: i64,
    /// An entry nobody holds: its later blocks are taken this far ahead by several owners,
    /// its first ones by the first listener (decisions 010, 012).
    pub cold_lead_ms: i64,
    /// A listener owns blocks once it has been in the swarm this long (ms), so a block's
    /// owner stays the same while listeners join (decision 001).
    pub settle_ms: i64,
    /// Members that own blocks (the first to have started).
    pub owners: usize,
    /// Peer asks in flight at once, across the download: the soonest due go first.
    pub peer_asks: usize,
    /// Followed peers holding a part for it to count as widely held: a joiner may then ask
    /// it past the cap, and even while it plays (decisions 011, 025).
    pub holders: u16,
    /// No part that is not urgent is asked of the origin in a download's first moments (ms),
    /// while the peers' bitfields come in.
    pub grace_ms: u64,
}

impl Model {
    /// A live station's model. Each value names the decision record with its measurements.
    pub const LIVE: Model = Model {
        ask_ms: 1_000,
        block_ms: 4_000,
        prebuffer_ms: 4_000, // decision 017
        in_order_ms: 6_000,  // decision 028
        trade_ms: 45_000,
        origin_lead_ms: 25_000, // decision 027
        cold_lead_ms: 12_000,   // decision 010
        settle_ms: 5_000,       // decision 001
        owners: 6,              // decision 001
        peer_asks: 4,
        holders: 4, // decisions 011, 025
        grace_ms: 500,
    };

    /// The picker's settings, counted in parts of about an ask (`scaled_to` turns them into
    /// the entry's parts).
    pub fn picker(&self) -> PickerConfig {
        let asks = |ms: i64| (ms / self.ask_ms.max(1)).max(1);
        let prebuffer_asks = asks(self.prebuffer_ms);
        PickerConfig {
            // One ask per peer (its uplink's full rate, and a listener's asks spread over
            // peers), one from the origin at a time (a thin origin uplink shared finely
            // delivers nothing in time), one copying a rare part on while due parts are
            // missing (decision 028), one rescue backup per block (decision 003).
            peer_slots: 1,
            peer_total_slots: self.peer_asks,
            origin_slots: 1,
            urgent_origin_slots: 0,
            max_run: asks(self.block_ms) as u32,
            peer_max_run: 1,
            spread_slots: 1,
            rescue_backups: 1,
            // A source only if its answers come before the part's moment (decision 009).
            peer_lead_by_latency: 1.0,
            peer_min_lead_ms: self.ask_ms,
            peer_ahead_ms: self.trade_ms,
            peer_in_order_ms: self.in_order_ms,
            urgent_ms: self.in_order_ms / 2,
            // Asking again elsewhere too soon doubles the load that made the ask slow.
            urgent_late_ms: (self.in_order_ms / 2) as u64,
            // Any other ask (5 s and 10 s measured alike: decision 054).
            late_ms: 10_000,
            origin_ahead_ms: self.origin_lead_ms,
            owners: self.owners,
            min_owners: 1,
            owner_settle_ms: self.settle_ms,
            cold_ahead_ms: self.cold_lead_ms,
            cold_first_blocks: (self.cold_lead_ms / self.block_ms.max(1)).max(1) as u32,
            cold_seed_parts: 1,
            // A seeding arrival has settled and taken its own first seconds first.
            cold_owner_lead_ms: self.settle_ms + self.prebuffer_ms,
            cold_fallback_lag_ms: 2 * self.ask_ms,
            // Tuning in: the part playing now, while the first seconds but the last ask's
            // are still coming.
            join_ms: (self.prebuffer_ms - self.ask_ms).max(0) as u64,
            join_min_left_ms: self.grace_ms as i64,
            join_min_holders: self.holders,
            // The next entry yields while the entry on air lacks a prebuffer's worth (018).
            short_ms: self.prebuffer_ms,
            yield_slots: 1,
            // A joiner's first seconds, and the part after them (the stream may start up to
            // an ask ahead), all at once where widely held, the entry's head beside them.
            focus_ms: self.prebuffer_ms as u64,
            focus_wide_ms: self.prebuffer_ms + self.ask_ms,
            focus_wide_slots: prebuffer_asks as usize + 2,
            focus_wide_holders: self.holders,
            max_false_claims: 3,
            orphan_ms: (2 * self.ask_ms) as u64,
            origin_grace_ms: self.grace_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_longer_prebuffer_moves_the_whole_family_of_a_joiner_s_first_seconds() {
        let live = Model::LIVE.picker();
        let longer = Model {
            prebuffer_ms: 8_000,
            ..Model::LIVE
        }
        .picker();
        assert_eq!(longer.focus_ms, 2 * live.focus_ms);
        assert_eq!(longer.focus_wide_ms, 9_000);
        assert_eq!(longer.focus_wide_slots, 10);
        assert_eq!(longer.short_ms, 8_000);
        assert_eq!(longer.join_ms, 7_000);
        assert_eq!(longer.urgent_ms, live.urgent_ms, "the rescue window stays");
    }

    #[test]
    fn blocks_and_cold_heads_are_counted_in_asks() {
        let c = Model {
            block_ms: 2_000,
            ..Model::LIVE
        }
        .picker();
        assert_eq!(c.max_run, 2);
        assert_eq!(c.cold_first_blocks, 6, "12 s of two-second blocks");
        assert_eq!(Model::LIVE.picker().cold_first_blocks, 3);
    }
}
