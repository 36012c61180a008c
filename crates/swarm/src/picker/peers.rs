//! The peers a download knows: what they hold, how they answer, and which are banned.

use std::net::SocketAddr;

use crate::bitfield::Bitfield;

use super::Picker;

#[derive(Debug, Clone)]
pub(super) struct PeerState {
    /// Hash of the peer's id, when known (from the tracker): a member for block ownership.
    pub(super) member: Option<u64>,
    /// When the tracker first recorded the member (ms since the Unix epoch on this node's
    /// clock; `u64::MAX` unknown).
    pub(super) started_ms: u64,
    pub(super) have: Option<Bitfield>,
    pub(super) inflight: usize,
    /// Bytes per millisecond, averaged.
    pub(super) score: f64,
    /// How long its answers took (ms), averaged; 0 until one came (or failed).
    pub(super) latency_ms: f64,
    pub(super) failures: u32,
    pub(super) false_claims: u32,
    pub(super) banned: bool,
    pub(super) backoff_until: u64,
    /// Followed, and no bitfield came in its first moments (see [`Picker::set_silent`]).
    pub(super) silent: bool,
}

impl PeerState {
    pub(super) fn usable(&self, now: u64) -> bool {
        !self.banned && self.have.is_some() && self.backoff_until <= now
    }

    pub(super) fn note_latency(&mut self, ms: f64) {
        self.latency_ms = if self.latency_ms == 0.0 {
            ms
        } else {
            0.7 * self.latency_ms + 0.3 * ms
        };
    }
}

impl Picker {
    /// How long before a part is due `peer` must be asked for it: its answers' usual time
    /// (`peer_lead_by_latency` of it), or `peer_min_lead_ms` until one came. A peer on this
    /// machine or a fast link is asked for a part due in a few milliseconds; a slow one not
    /// for what it would send after its moment.
    pub(super) fn lead(&self, peer: &PeerState) -> f64 {
        if peer.latency_ms > 0.0 {
            self.config.peer_lead_by_latency * peer.latency_ms
        } else {
            self.config.peer_min_lead_ms as f64
        }
    }

    /// The shortest [`Picker::lead`] of the peers usable now (`peer_min_lead_ms` with none):
    /// a part due sooner is asked of no peer.
    pub(super) fn quickest_lead(&self, now: u64) -> i64 {
        self.peers
            .values()
            .filter(|p| p.usable(now))
            .map(|p| self.lead(p).ceil() as i64)
            .min()
            .unwrap_or(self.config.peer_min_lead_ms)
    }

    /// Whether a peer holding `part` can still send it in time: one not backing off, or one
    /// back from its backoff (after failing or being busy) with its usual answer time to
    /// spare before the part is due. When none can, the part is as if no peer held it: the
    /// origin may send it (`ask_origin`).
    pub(super) fn held_by_a_peer_in_time(&self, part: u32, now: u64) -> bool {
        if self.avail[part as usize] == 0 {
            return false;
        }
        let due = self.deadline(part);
        self.peers.values().any(|p| {
            let back = p.backoff_until.max(now) as f64 + p.latency_ms;
            !p.banned
                && p.have.as_ref().is_some_and(|h| h.get(part))
                && (p.backoff_until <= now || due.is_some_and(|d| back <= d as f64))
        })
    }

    /// No peer known but banned ones.
    pub(super) fn alone(&self) -> bool {
        self.peers.values().all(|p| p.banned)
    }

    /// Peers known and not banned.
    pub fn peer_count(&self) -> usize {
        self.peers.values().filter(|p| !p.banned).count()
    }

    /// Peers not banned whose bitfields are known: those `availability` counts.
    pub fn followed_count(&self) -> usize {
        self.peers
            .values()
            .filter(|p| !p.banned && p.have.is_some())
            .count()
    }

    /// Whether `peer`'s bitfield is known.
    pub fn has_bitfield(&self, peer: SocketAddr) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.have.is_some())
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
                silent: false,
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
        if state.silent {
            state.silent = false;
            if state.member.is_some() {
                self.owned = None; // an owner again
            }
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

    /// A followed peer sent no bitfield in its first moments: a member that says nothing owns
    /// no blocks until it does (an owner that never fetches would leave them to no one).
    pub fn set_silent(&mut self, peer: SocketAddr) {
        if let Some(state) = self.peers.get_mut(&peer) {
            if !state.silent && state.have.is_none() {
                state.silent = true;
                if state.member.is_some() {
                    self.owned = None;
                }
            }
        }
    }

    /// The peer's news is no longer followed: it stays a member (block ownership) but is not
    /// asked until its bitfield comes again.
    pub fn unfollow(&mut self, peer: SocketAddr) {
        self.forget_claims(peer);
    }

    pub(super) fn forget_claims(&mut self, peer: SocketAddr) {
        if let Some(state) = self.peers.get_mut(&peer) {
            if let Some(old) = state.have.take() {
                for p in old.iter() {
                    self.avail[p as usize] = self.avail[p as usize].saturating_sub(1);
                }
            }
        }
    }

    pub(super) fn peer_has(&self, peer: SocketAddr, part: u32) -> bool {
        self.peers
            .get(&peer)
            .and_then(|p| p.have.as_ref())
            .is_some_and(|h| h.get(part))
    }

    /// The shell gave up on a peer (it went away): its claims no longer count.
    pub fn remove_peer(&mut self, peer: SocketAddr) {
        self.forget_claims(peer);
        self.owned = None;
        if let Some(s) = self.peers.get_mut(&peer) {
            if !s.banned && s.inflight == 0 {
                self.peers.remove(&peer);
            } else {
                // Kept for its asks in flight (or its ban), but gone: no longer a member, or
                // it would own blocks nobody takes (docs/decisions/053).
                s.member = None;
                s.started_ms = u64::MAX;
            }
        }
    }
}
