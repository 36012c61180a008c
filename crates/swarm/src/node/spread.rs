//! How far each part this node holds still has to spread, and how much earlier than its
//! asker's moment an answer of it is therefore due (docs/decisions/051, 052). A part must
//! reach every member by its moment, each holder passing it on doubles them, and each
//! hop is a part sent behind the answer cap's at the uplink's pace: a part few hold is due
//! at its holders by as many hops sooner, though never ahead of an urgent ask. Otherwise a
//! block fetched ahead leaves its owner, and each later holder, only when it is due for
//! everyone at once.
//! - The swarm's only copies (parts taken from the origin and not sent on) reach every
//!   member known by log2 of them, and one such answer is taken past the cap, ahead of
//!   urgent asks too: behind them it waits as long as joiners keep coming (decision 058).
//!   A part stays the only copy until an answer of it went out whole.
//! - Any other part: by what this node's download last saw of its peers, held by a share
//!   of those whose bitfields it follows, so by that share of the members.

use std::collections::HashSet;

use alluvium_content::{Hash, PART_SIZE};

use super::{lock, Node};

impl Node {
    /// Parts `first..first + count` of `root` came from the origin.
    pub(crate) fn took_from_origin(&self, root: Hash, first: u32, count: u32) {
        lock(&self.only_copies)
            .entry(root)
            .or_default()
            .extend(first..first.saturating_add(count));
    }

    /// If an ask of parts `first..first + count` of `root` includes one this node alone holds,
    /// how much earlier than its asker's moment it is due (ms): the hops to reach every
    /// member this node knows.
    pub(crate) fn only_copy_lead(&self, root: &Hash, first: u32, count: u32) -> Option<i64> {
        let sole = lock(&self.only_copies)
            .get(root)
            .is_some_and(|s| (first..first.saturating_add(count)).any(|p| s.contains(&p)));
        if !sole {
            return None;
        }
        Some(self.lead_to_reach(self.known_count(root) + 1))
    }

    /// What this node's download of `root` sees of its peers: `followed` peers' bitfields,
    /// of which `avail[p]` hold part `p`.
    pub(crate) fn saw_spread(&self, root: Hash, followed: usize, avail: &[u16]) {
        let mut seen = lock(&self.seen);
        let entry = seen.entry(root).or_default();
        entry.followed = followed;
        entry.avail.clear();
        entry.avail.extend_from_slice(avail);
    }

    /// How much earlier than its asker's moment an answer of `part` of `root` is due (ms):
    /// the hops from the share of followed peers that hold it (this node one of them) to all
    /// of them, at most to every member known. 0 while nothing is seen.
    pub(crate) fn spread_lead(&self, root: &Hash, part: u32) -> i64 {
        let reach = {
            let seen = lock(&self.seen);
            let Some(s) = seen.get(root) else {
                return 0;
            };
            let holders = f64::from(s.avail.get(part as usize).copied().unwrap_or(0)) + 1.0;
            ((s.followed as f64 + 1.0) / holders).max(1.0)
        };
        let members = (self.known_count(root) + 1) as f64;
        self.lead_to_reach(reach.min(members) as usize)
    }

    /// The time to double a part's holders until they are `reach` times as many: log2 of it
    /// in hops, each a part sent behind the answer cap's at the uplink's pace. A round trip
    /// on the way is left out: a fraction of a part's time at the pace on the links a pace
    /// matters on. Not paced, 0: the link's queue decides, and nothing is known of it.
    fn lead_to_reach(&self, reach: usize) -> i64 {
        let hops = (reach.max(1) as f64).log2().ceil();
        let hop_ms = match self.uplink.rate() {
            Some(rate) => PART_SIZE as f64 * 1000.0 / rate as f64 * (self.answers.cap() + 1) as f64,
            None => 0.0,
        };
        (hops * hop_ms) as i64
    }

    /// Parts `first..first + count` of `root` were sent on: no longer the only copies.
    pub(crate) fn sent_on(&self, root: &Hash, first: u32, count: u32) {
        if let Some(s) = lock(&self.only_copies).get_mut(root) {
            for p in first..first.saturating_add(count) {
                s.remove(&p);
            }
        }
    }

    /// Forgets how `root`'s parts spread (see [`Node::forget_swarm`]).
    pub(super) fn forget_spread(&self, root: &Hash) {
        lock(&self.only_copies).remove(root);
        lock(&self.seen).remove(root);
    }
}

/// Per content, the parts taken from the origin and not sent on.
pub(super) type OnlyCopies = std::collections::HashMap<Hash, HashSet<u32>>;

/// What a download last saw of its peers' bitfields.
#[derive(Debug, Default)]
pub(super) struct Seen {
    followed: usize,
    avail: Vec<u16>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::node::{NodeConfig, UploadLimit};

    /// A node whose uplink sends a 16 KiB part a second: a hop behind the cap's two is 3 s.
    fn paced_at_a_part_a_second() -> std::sync::Arc<Node> {
        Node::new(NodeConfig {
            upload_limit: UploadLimit::Rate(16_384),
            ..NodeConfig::default()
        })
    }

    #[test]
    fn an_only_copy_is_due_earlier_by_its_hops_until_sent_on() {
        let node = paced_at_a_part_a_second();
        let root = Hash([7; 32]);
        node.took_from_origin(root, 4, 4);
        assert_eq!(node.only_copy_lead(&root, 0, 4), None, "from a peer");
        // Alone in its swarm: no hop to make.
        assert_eq!(node.only_copy_lead(&root, 5, 1), Some(0));
        // 7 peers and itself: 3 hops, each a part behind the cap's 2 at a part a second.
        for i in 0..7u16 {
            node.learn(root, std::net::SocketAddr::from(([10, 0, 0, 1], 9000 + i)));
        }
        assert_eq!(node.only_copy_lead(&root, 3, 2), Some(9_000));
        node.sent_on(&root, 4, 2);
        assert_eq!(node.only_copy_lead(&root, 4, 2), None);
        assert!(node.only_copy_lead(&root, 6, 1).is_some());
        node.forget_swarm(&root);
        assert_eq!(node.only_copy_lead(&root, 6, 1), None);
    }

    #[test]
    fn a_part_few_followed_peers_hold_is_due_earlier_by_the_hops_to_all() {
        let node = paced_at_a_part_a_second();
        let root = Hash([8; 32]);
        assert_eq!(node.spread_lead(&root, 0), 0, "nothing seen");
        for i in 0..30u16 {
            node.learn(root, std::net::SocketAddr::from(([10, 0, 0, 1], 9000 + i)));
        }
        // 7 followed: part 0 held by all, part 1 by one (and this node: 8 / 2, 2 hops),
        // part 2 by none (8 / 1, 3 hops), each hop 3 s.
        node.saw_spread(root, 7, &[7, 1, 0]);
        assert_eq!(node.spread_lead(&root, 0), 0);
        assert_eq!(node.spread_lead(&root, 1), 6_000);
        assert_eq!(node.spread_lead(&root, 2), 9_000);
        assert_eq!(
            node.spread_lead(&root, 9),
            9_000,
            "past the end: held by none"
        );
        node.forget_swarm(&root);
        assert_eq!(node.spread_lead(&root, 2), 0);
    }
}
