//! Parts this node took from the origin and has not sent on: the swarm's only copies, as
//! far as it knows. An ask of one is taken past the answer cap and sent as if due earlier by
//! the hops the part still has to make to reach every member, though never ahead of an
//! urgent ask (docs/decisions/051): a block fetched ahead by its owner otherwise leaves it
//! only when it is due for everyone at once.

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
    /// member this node knows, doubling at each (log2 of them), each hop a part sent behind
    /// the answer cap's at the uplink's pace. A round trip on the way is left out: a
    /// fraction of a part's time at the pace on the links a pace matters on.
    pub(crate) fn only_copy_lead(&self, root: &Hash, first: u32, count: u32) -> Option<i64> {
        let sole = lock(&self.only_copies)
            .get(root)
            .is_some_and(|s| (first..first.saturating_add(count)).any(|p| s.contains(&p)));
        if !sole {
            return None;
        }
        let members = self.known_peers(root).len() + 1;
        let hops = (members as f64).log2().ceil();
        let hop_ms = match self.uplink.rate() {
            Some(rate) => PART_SIZE as f64 * 1000.0 / rate as f64 * (self.answers.cap() + 1) as f64,
            None => 0.0, // not paced: the link's queue decides, and nothing is known of it
        };
        Some((hops * hop_ms) as i64)
    }

    /// Parts `first..first + count` of `root` were sent on: no longer the only copies.
    pub(crate) fn sent_on(&self, root: &Hash, first: u32, count: u32) {
        if let Some(s) = lock(&self.only_copies).get_mut(root) {
            for p in first..first.saturating_add(count) {
                s.remove(&p);
            }
        }
    }

    /// Forgets `root`'s only copies (see [`Node::forget_swarm`]).
    pub(super) fn forget_only_copies(&self, root: &Hash) {
        lock(&self.only_copies).remove(root);
    }
}

/// Per content, the parts taken from the origin and not sent on.
pub(super) type OnlyCopies = std::collections::HashMap<Hash, HashSet<u32>>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::node::{NodeConfig, UploadLimit};

    #[test]
    fn an_only_copy_is_due_earlier_by_its_hops_until_sent_on() {
        let node = Node::new(NodeConfig {
            upload_limit: UploadLimit::Rate(16_384),
            ..NodeConfig::default()
        });
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
}
