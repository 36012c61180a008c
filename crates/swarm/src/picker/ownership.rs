//! Which member takes each block from the origin ahead of time, and who may rescue it.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::Picker;

/// One block's ownership as this node sees it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Ownership {
    /// This node's rank among the block's owners: 0 when it owns it, `u16::MAX` when it is
    /// not one of them.
    pub(super) rank: u16,
    /// Taken `cold_ahead_ms` ahead, not `origin_ahead_ms`, and no backups rescue it: a cold
    /// entry's block (see `PickerConfig::cold_ahead_ms` and `cold_first_blocks`).
    pub(super) late: bool,
    /// Not taken ahead of time before this (ms since the Unix epoch): the member it is
    /// designated for could still come.
    pub(super) not_before_ms: i64,
    /// Where the parts owned with it end (exclusive): the block's end, or a seeded unit's
    /// (`PickerConfig::cold_seed_parts`). An owner's origin asks stay within it.
    pub(super) end: u32,
    /// The owner's member hash (`None` for a block nobody owns).
    pub(super) owner: Option<u64>,
}

/// A 64-bit hash of a peer id: the same on every node, and on the tracker, which names the
/// eldest by it among members it first saw in the same millisecond.
pub use alluvium_gateway_client::wire::member_hash;
use alluvium_gateway_client::wire::ELDEST_PER_ANSWER;

/// The rendezvous score of `member` for `block` (splitmix64 of the pair).
pub(super) fn score(member: u64, block: u32) -> u64 {
    let mut z = member ^ u64::from(block).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `me`'s rank among `owners` (start time, member hash) for `block`: 0 when it is the
/// block's owner, `u16::MAX` when it is not one of them. The owner is the first by
/// rendezvous score among those given fewest of the blocks before (`loads`, updated here;
/// the caller clears it when the owners change), so each has its share within one; the
/// others follow by score. Plain rendezvous can give one owner many blocks, the same in
/// every entry, on one uplink (docs/decisions/015). Also the owner.
pub(super) fn balanced_rank(
    owners: &[(u64, u64)],
    block: u32,
    me: u64,
    loads: &mut HashMap<u64, u32>,
) -> (u16, Option<u64>) {
    let load = |m: &u64| loads.get(m).copied().unwrap_or(0);
    let Some(fewest) = owners.iter().map(|m| load(&m.1)).min() else {
        return (u16::MAX, None);
    };
    let mut by_score: Vec<u64> = owners.iter().map(|m| m.1).collect();
    by_score.sort_unstable_by_key(|&m| std::cmp::Reverse(score(m, block)));
    let Some(owner) = by_score.iter().copied().find(|m| load(m) == fewest) else {
        return (u16::MAX, None);
    };
    *loads.entry(owner).or_insert(0) += 1;
    if owner == me {
        return (0, Some(owner));
    }
    let rank = by_score
        .iter()
        .filter(|&&m| m != owner)
        .position(|&m| m == me)
        .map_or(u16::MAX, |i| u16::try_from(i + 1).unwrap_or(u16::MAX));
    (rank, Some(owner))
}

/// The member designated for each of a cold entry's seed units (`seed_parts` parts each, from
/// part `from` of `parts`): the next arrival by start (`members` sorted, the first member
/// skipped) that came `lead` before the unit is due, or `None`; none past the `agreed`
/// places (see `Picker::agreed_places`).
fn seeders(
    members: &[(u64, u64)],
    agreed: usize,
    from: u32,
    parts: u32,
    seed_parts: u32,
    lead: i64,
    due_of: &impl Fn(u32) -> Option<i64>,
) -> Vec<Option<u64>> {
    let units = parts.saturating_sub(from).div_ceil(seed_parts);
    let mut next = 1;
    (0..units)
        .map(|u| {
            let due = due_of(from + u * seed_parts)?;
            let &(started, member) = members.get(next).filter(|_| next < agreed)?;
            let in_time = i64::try_from(started).is_ok_and(|s| s <= due - lead);
            in_time.then(|| {
                next += 1;
                member
            })
        })
        .collect()
}

impl Picker {
    pub(super) fn block_of(&self, part: u32) -> u32 {
        part / self.config.max_run.max(1)
    }

    /// This node's rank for `part`'s block among the owning members it knows (the
    /// `owners` that started first): 0 when it owns it, 1 when one owner comes before it, and
    /// so on; `u16::MAX` when this node is not one of the owners.
    pub(super) fn rank(&mut self, part: u32) -> u16 {
        if self.owned.is_none() {
            self.owned = Some(self.ownerships());
        }
        self.ownership(part).rank
    }

    /// The members this node knows (start, member hash), itself included, by start; not the
    /// silent ones (`set_silent`).
    fn members(&self) -> Vec<(u64, u64)> {
        let mut members: Vec<(u64, u64)> = self
            .peers
            .values()
            .filter(|p| !p.banned && !p.silent)
            .filter_map(|p| Some((p.started_ms, p.member?)))
            .collect();
        members.push((self.my_joined_ms.unwrap_or(self.my_start_ms), self.me));
        members.sort_unstable();
        members
    }

    /// The first places every member computes alike, the only ones that give a role: all
    /// while the tracker names the whole swarm, else the eldest that every answer names
    /// (past them each knows only some members; docs/decisions/048).
    fn agreed_places(&self) -> usize {
        if self.members_whole {
            usize::MAX
        } else {
            ELDEST_PER_ANSWER
        }
    }

    /// Every part's ownership as this node sees it (see `rank`).
    fn ownerships(&self) -> Vec<Ownership> {
        let members = self.members();
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
            due_of(((b + 1) * per_block).min(parts).saturating_sub(1)).is_some_and(|d| d >= first)
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
        let ahead_of =
            |b: u32| due_of(b * per_block).map(|due| due - self.config.origin_ahead_ms - settle);
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
                .min(self.agreed_places())
                .max(1);
            let owners = &members[..owners.min(members.len())];
            if owners.len() != loads_among {
                loads.clear();
                loads_among = owners.len();
            }
            let (rank, owner) = balanced_rank(owners, b, self.me, &mut loads);
            Ownership {
                rank,
                late,
                not_before_ms: i64::MIN,
                end: ((b + 1) * per_block).min(parts),
                owner,
            }
        };
        // A cold entry's seed units, from the part after the first member's first blocks,
        // each to the next arrival (by start) that came `lead` before the unit is due;
        // a unit no arrival came in time for is the owners'. Matched in order, so an
        // arrival a moment too late for its unit seeds the next (docs/decisions/012).
        let seeders: Vec<Option<u64>> = seed_from.map_or_else(Vec::new, |from| {
            seeders(
                &members,
                self.agreed_places(),
                from,
                parts,
                seed_parts,
                lead,
                &due_of,
            )
        });
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
                        owner: Some(member),
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
        ranks
    }

    /// Notes the owner of each block whose time to be taken ahead has come (as this node
    /// sees it then): its taker, in all likelihood, even once the owners are dealt again.
    pub(super) fn note_takers(&mut self, now: u64) {
        let Some(epoch) = self.epoch_ms else {
            return;
        };
        let now_unix = epoch as i64 + now as i64;
        let per_block = self.config.max_run.max(1);
        let blocks = self.block_of(self.have.len().saturating_sub(1)) + 1;
        while (self.taken_by.len() as u32) < blocks {
            let first = self.taken_by.len() as u32 * per_block;
            let Some(due) = self.deadlines.of(first) else {
                return;
            };
            if epoch as i64 + due - self.config.origin_ahead_ms > now_unix {
                return;
            }
            self.rank(first);
            let o = self.ownership(first);
            self.taken_by.push(o.owner.filter(|_| !o.late));
        }
    }

    /// Whether `part`'s block was another member's when it was taken ahead, and that member
    /// is still here: it took it and is passing it on, though the block is dealt to this
    /// node now (the owners changed). Taken from the origin as late as a cold entry's, if no
    /// peer has passed it on by then.
    pub(super) fn taken_by_another(&self, part: u32) -> bool {
        let Some(taker) = self
            .taken_by
            .get(self.block_of(part) as usize)
            .copied()
            .flatten()
        else {
            return false;
        };
        taker != self.me
            && self
                .peers
                .values()
                .any(|p| p.member == Some(taker) && !p.banned && !p.silent)
    }

    /// The ownership of `part`, once `rank` has worked it out.
    pub(super) fn ownership(&self, part: u32) -> Ownership {
        self.owned
            .as_ref()
            .and_then(|o| o.get(part as usize).copied())
            .unwrap_or_default()
    }

    /// Whether this node owns `part`'s block among the owners it knows.
    pub(super) fn owns(&mut self, part: u32) -> bool {
        self.rank(part) == 0
    }

    /// Tells the picker when this node started and what its time 0 is, both in ms since
    /// the Unix epoch (see `PickerConfig::owners`).
    pub fn set_started(&mut self, started_ms: u64, epoch_ms: u64) {
        self.my_start_ms = started_ms;
        self.epoch_ms = Some(epoch_ms);
        self.owned = None;
    }

    /// When this node joined the swarm (ms since the Unix epoch, as `set_membership`'s):
    /// its place among the members. Until told, when it started (`set_started`).
    pub fn set_joined(&mut self, joined_ms: u64) {
        if self.my_joined_ms != Some(joined_ms) {
            self.my_joined_ms = Some(joined_ms);
            self.owned = None;
        }
    }

    /// Whether the members known are the whole swarm (the tracker's last answer named every
    /// member) or only some of it (a full answer: the eldest, then some of the rest). Until
    /// told, whole.
    pub fn set_members_whole(&mut self, whole: bool) {
        if self.members_whole != whole {
            self.members_whole = whole;
            self.owned = None;
        }
    }

    /// A known peer's membership: its [`member_hash`] and when the tracker first recorded it
    /// in this swarm (ms since the Unix epoch on this node's clock, `u64::MAX` unknown), or
    /// `None` when it is no longer a member (the tracker no longer lists it). Unknown peers
    /// are ignored.
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
    /// rest never. So a part that nobody has yet reaches the swarm from the origin about
    /// once, not once per listener, and a congested origin does not turn every part urgent
    /// for everyone.
    pub(super) fn may_rescue(&mut self, part: u32, now: u64) -> bool {
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
        // A block taken late (a cold entry's) has no backups: its parts would be rescued
        // twice (docs/decisions/010).
        if rank > self.config.rescue_backups || self.ownership(part).late {
            return false;
        }
        let limit = urgent - i64::from(rank - 1) * urgent / 3;
        // A part already due (a listener joining mid-entry, the head of the entry on air)
        // is for peers to send: from the origin it would come late anyway, once per joiner.
        (0..=limit).contains(&left)
    }
}
