//! What a node knows of each content's swarm: its peers and members as the tracker and peer
//! exchange told them, this node's own place, the peers carried to the next entries, and the
//! distrusted; forgotten once the content is no longer announced.

use std::net::SocketAddr;

use alluvium_content::Hash;

use super::{lock, Member, Membership, Node, MAX_CARRIED_PEERS, MAX_KNOWN_PEERS};

impl Node {
    /// Remembers `addr` as a peer for `root`.
    pub fn learn(&self, root: Hash, addr: SocketAddr) {
        self.learn_member(root, addr, None);
    }

    /// Remembers `addr` as a peer for `root`, with its membership when the tracker named it.
    /// A member's `since_ms` keeps its earliest estimate: each answer's differs by its delay.
    pub fn learn_member(&self, root: Hash, addr: SocketAddr, member: Option<Membership>) {
        if self.is_self(addr) || member.as_ref().is_some_and(|m| m.id == self.peer_id) {
            return; // ourselves (a tracker answer may list us under another address too)
        }
        if self.is_distrusted(addr) {
            return;
        }
        self.remember_recent(addr);
        let mut known = lock(&self.known);
        let list = known.entry(root).or_default();
        let changed = match list.iter_mut().find(|(a, _)| *a == addr) {
            Some(entry) => match (&mut entry.1, member) {
                (_, None) => false,
                (Some(old), Some(new)) if old.id == new.id => {
                    let earlier = new.since_ms < old.since_ms;
                    old.since_ms = old.since_ms.min(new.since_ms);
                    earlier
                }
                (slot, new) => {
                    *slot = new;
                    true
                }
            },
            None => {
                // Full: the first learnt that is no longer a member goes, else the first.
                if list.len() >= MAX_KNOWN_PEERS {
                    let old = list.iter().position(|(_, m)| m.is_none()).unwrap_or(0);
                    list.remove(old);
                }
                list.push((addr, member));
                true
            }
        };
        drop(known);
        if changed {
            self.tell_downloads();
        }
    }

    fn remember_recent(&self, addr: SocketAddr) {
        let mut recent = lock(&self.recent);
        if recent.front() != Some(&addr) {
            recent.retain(|a| *a != addr);
            recent.push_front(addr);
            recent.truncate(MAX_CARRIED_PEERS);
        }
    }

    /// The peers learnt last, whatever the content (at most [`MAX_CARRIED_PEERS`]): the
    /// station's swarm, as this node last saw it.
    pub fn recent_peers(&self) -> Vec<SocketAddr> {
        let recent = lock(&self.recent);
        recent.iter().copied().collect()
    }

    /// Learns the station's recent peers as peers of `root` too (peer exchange across a
    /// station's entries): listeners of one entry are those of the next, so a swarm
    /// gathers while no tracker answers. They are peers, not members: only the tracker
    /// makes members.
    pub fn carry_peers(&self, root: Hash) {
        for addr in self.recent_peers() {
            let known = lock(&self.known)
                .get(&root)
                .is_some_and(|l| l.iter().any(|(a, _)| *a == addr));
            if !known {
                self.learn(root, addr);
            }
        }
    }

    /// Never learns `addr` again this session, and forgets it everywhere: it sent what does
    /// not verify (a part, a tree).
    pub fn distrust(&self, addr: SocketAddr) {
        lock(&self.distrusted).insert(addr);
        lock(&self.recent).retain(|a| *a != addr);
        let mut known = lock(&self.known);
        for list in known.values_mut() {
            list.retain(|(a, _)| *a != addr);
        }
        drop(known);
        self.tell_downloads();
    }

    /// Whether `addr` sent what does not verify (see [`Node::distrust`]).
    pub fn is_distrusted(&self, addr: SocketAddr) -> bool {
        lock(&self.distrusted).contains(&addr)
    }

    /// The tracker's answer for `root` lists every member it knows (`listed`, by address):
    /// known peers it no longer lists are no longer members (they left; they stay peers,
    /// without an id, while they answer).
    pub fn tracker_members(&self, root: &Hash, listed: &[SocketAddr]) {
        let mut known = lock(&self.known);
        let mut changed = false;
        if let Some(list) = known.get_mut(root) {
            for (addr, id) in list.iter_mut() {
                if id.is_some() && !listed.contains(addr) {
                    *id = None;
                    changed = true;
                }
            }
        }
        drop(known);
        if changed {
            self.tell_downloads();
        }
    }

    /// Peers known for `root`.
    pub fn known_peers(&self, root: &Hash) -> Vec<SocketAddr> {
        self.known_members(root)
            .into_iter()
            .map(|(a, _)| a)
            .collect()
    }

    /// How many peers are known for `root` (without copying them: asked on every blob ask).
    pub(crate) fn known_count(&self, root: &Hash) -> usize {
        lock(&self.known).get(root).map_or(0, Vec::len)
    }

    /// Notes that the tracker answered an announce for `root` (its peers are learnt), and
    /// when it says this node joined that swarm (`since_ms`, on this node's clock: the answer's
    /// arrival less the age the tracker gave it, as for every other member; the answer's
    /// arrival when it gave none). The earliest estimate is kept: each answer's differs by its
    /// delay, as the others' estimates of this node do.
    pub fn mark_announced(&self, root: Hash, since_ms: u64) {
        let changed = {
            let mut announced = lock(&self.announced);
            match announced.entry(root) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(since_ms);
                    true
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let earlier = since_ms < *o.get();
                    if earlier {
                        o.insert(since_ms);
                    }
                    earlier
                }
            }
        };
        if changed {
            self.tell_downloads();
        }
    }

    /// When this node joined `root`'s swarm, as the tracker counts ages, on this node's clock
    /// (ms since the Unix epoch; see `mark_announced`); `None` before any answer.
    pub fn joined_ms(&self, root: &Hash) -> Option<u64> {
        lock(&self.announced).get(root).copied()
    }

    /// Whether `root`'s download is short of parts due soon: while one is, this node's other
    /// downloads ask peers for less (`PickerConfig::yield_slots`), leaving the swarm's
    /// uplinks to what plays first.
    pub fn set_short(&self, root: Hash, short: bool) {
        let mut set = lock(&self.short);
        let changed = if short {
            set.insert(root)
        } else {
            set.remove(&root)
        };
        drop(set);
        if changed {
            self.tell_downloads();
        }
    }

    /// Whether a download other than `root`'s is short of parts due soon.
    pub fn short_elsewhere(&self, root: &Hash) -> bool {
        lock(&self.short).iter().any(|r| r != root)
    }

    /// Forgets what the tracker said of `root`'s swarm (its members, this node's place, the
    /// answers' wholeness) once this node no longer announces it: a listener follows a new
    /// swarm every entry, and none of this would be read again.
    pub fn forget_swarm(&self, root: &Hash) {
        lock(&self.known).remove(root);
        lock(&self.announced).remove(root);
        lock(&self.partial).remove(root);
        self.forget_spread(root);
    }

    /// Whether the tracker's last answer for `root` named every member (`whole`) or, full,
    /// only some: the eldest, then some of the rest (see `Picker::set_members_whole`).
    pub fn tracker_named(&self, root: Hash, whole: bool) {
        let changed = {
            let mut partial = lock(&self.partial);
            if whole {
                partial.remove(&root)
            } else {
                partial.insert(root)
            }
        };
        if changed {
            self.tell_downloads();
        }
    }

    /// Whether the members known for `root` are the whole swarm, as far as the tracker said.
    pub fn members_whole(&self, root: &Hash) -> bool {
        !lock(&self.partial).contains(root)
    }

    /// Whether the tracker has answered for `root`: with no peers known then, this node is
    /// alone in the swarm.
    pub fn announced(&self, root: &Hash) -> bool {
        lock(&self.announced).contains_key(root)
    }

    /// Peers known for `root`, with their ids when known.
    pub fn known_members(&self, root: &Hash) -> Vec<Member> {
        let known = lock(&self.known);
        known.get(root).cloned().unwrap_or_default()
    }

    /// Forgets a peer (it went away or misbehaved).
    pub fn forget(&self, root: &Hash, addr: SocketAddr) {
        let mut known = lock(&self.known);
        if let Some(list) = known.get_mut(root) {
            list.retain(|(a, _)| *a != addr);
        }
        drop(known);
        self.tell_downloads();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::NodeConfig;
    use super::*;

    #[test]
    fn ids_are_opaque_members_keep_their_earliest_since_and_the_tracker_says_who_left() {
        let node = Node::new(NodeConfig::default());
        let other = Node::new(NodeConfig::default());
        assert_ne!(node.peer_id(), other.peer_id());
        assert!(
            node.peer_id().len() == 32 && node.peer_id().bytes().all(|b| b.is_ascii_hexdigit()),
            "random, saying nothing of the node: {}",
            node.peer_id()
        );
        let root = Hash::from(blake3::hash(b"x"));
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.2:1".parse().unwrap(),
            "127.0.0.3:1".parse().unwrap(),
        );
        let member = |id: &str, since_ms| {
            Some(Membership {
                id: id.to_string(),
                since_ms,
            })
        };
        node.learn_member(root, a, member("a", 1_000));
        node.learn_member(root, a, member("a", 1_040)); // a later answer, a longer delay
        node.learn_member(root, b, member("b", 2_000));
        assert_eq!(node.known_members(&root)[0].1, member("a", 1_000));
        node.tracker_members(&root, &[a]);
        assert_eq!(
            node.known_members(&root),
            vec![(a, member("a", 1_000)), (b, None)],
            "b left: still a peer, no longer a member"
        );
        node.learn_member(root, b, member("b", 9_000));
        assert_eq!(node.known_members(&root)[1].1, member("b", 9_000), "back");
        assert_eq!(node.joined_ms(&root), None);
        node.mark_announced(root, 5_000);
        node.mark_announced(root, 5_040);
        assert_eq!(node.joined_ms(&root), Some(5_000), "the earliest estimate");
        node.mark_announced(root, 4_990);
        assert_eq!(node.joined_ms(&root), Some(4_990), "a quicker answer");
    }

    #[test]
    fn a_full_list_of_peers_forgets_former_members_first_and_a_full_answer_is_partial() {
        let node = Node::new(NodeConfig::default());
        let root = Hash::from(blake3::hash(b"x"));
        let addr = |i: usize| -> SocketAddr {
            format!("127.0.1.{}:{}", i % 250 + 1, 1000 + i)
                .parse()
                .unwrap()
        };
        let member = |i: usize| {
            Some(Membership {
                id: format!("m{i}"),
                since_ms: i as u64,
            })
        };
        for i in 0..MAX_KNOWN_PEERS {
            node.learn_member(root, addr(i), member(i));
        }
        // The tracker no longer names peer 7 (it left); a newcomer takes its place, and
        // the eldest, learnt first, stays.
        let listed: Vec<SocketAddr> = (0..MAX_KNOWN_PEERS).filter(|&i| i != 7).map(addr).collect();
        node.tracker_members(&root, &listed);
        node.learn_member(root, addr(MAX_KNOWN_PEERS), member(MAX_KNOWN_PEERS));
        let known: Vec<SocketAddr> = node.known_peers(&root);
        assert_eq!(known.len(), MAX_KNOWN_PEERS);
        assert!(known.contains(&addr(0)) && !known.contains(&addr(7)));
        // With no former member left, the first learnt goes.
        node.learn_member(root, addr(MAX_KNOWN_PEERS + 1), member(MAX_KNOWN_PEERS + 1));
        assert!(!node.known_peers(&root).contains(&addr(0)));
        // Whole until a full answer says otherwise.
        assert!(node.members_whole(&root));
        node.tracker_named(root, false);
        assert!(!node.members_whole(&root));
        node.tracker_named(root, true);
        assert!(node.members_whole(&root));
        // Once it no longer announces the swarm, none of it is kept.
        node.tracker_named(root, false);
        node.mark_announced(root, 5_000);
        node.forget_swarm(&root);
        assert!(node.known_peers(&root).is_empty());
        assert!(!node.announced(&root) && node.members_whole(&root));
    }
}
