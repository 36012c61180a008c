//! What a sender does with the asks it gets: a listener's peer server (a few answers taken,
//! sent soonest due first at its paced rate, `503` past them) or the origin (every ask taken,
//! its link shared among them, as TCP shares it). An `auto` pace follows the link as the
//! node's does: the real `LinkFollower`, told how fast each answer came.

use alluvium_swarm::link::{Delivered, LinkFollower};

use crate::scenario::SoleFirst;
use crate::PART;

/// An answer being sent.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) asker: usize,
    /// Of which entry.
    pub(crate) entry: usize,
    pub(crate) id: u64,
    pub(crate) first: u32,
    pub(crate) count: u32,
    pub(crate) bytes: u64,
    /// Bytes not sent yet.
    left: f64,
    /// When the sender sends it by (simulated ms; `i64::MAX`: no deadline): when the asker
    /// plays it, or earlier for a part that must spread (`Node::spread_lead`).
    pub(crate) deadline: i64,
    /// When the asker plays it.
    due_at: i64,
    /// Asked after its moment had passed (not a joiner's first seconds, asked as due now).
    pub(crate) overdue: bool,
    /// When its first byte went (simulated ms), and the pace then (bytes per second).
    began: Option<(f64, u64)>,
    /// When its last byte went (simulated ms).
    ended: f64,
    /// Asked of the origin.
    pub(crate) from_origin: bool,
    /// Of a part its sender alone held (see `Server::sole`).
    sole: bool,
    /// Its first parts whose last byte went (the asker keeps each as it is whole).
    whole: u32,
}

impl Answer {
    pub(crate) fn new(
        asker: usize,
        entry: usize,
        id: u64,
        (first, count): (u32, u32),
        bytes: u64,
        deadline: i64,
    ) -> Self {
        Self {
            asker,
            entry,
            id,
            first,
            count,
            bytes,
            left: bytes as f64,
            deadline,
            due_at: deadline,
            overdue: false,
            began: None,
            ended: 0.0,
            from_origin: false,
            sole: false,
            whole: 0,
        }
    }
}

/// What a step of sending did.
pub(crate) struct Sent {
    /// The answers whose last byte went.
    pub(crate) done: Vec<Answer>,
    /// Parts whose last byte went (asker, entry, part), of answers done or not: the asker
    /// keeps each part as soon as it is whole (`download/request.rs`'s `receive`).
    pub(crate) parts: Vec<(usize, usize, u32)>,
    pub(crate) bytes: f64,
}

/// Answers taken past `cap` by asks due sooner than those in flight (`answers.rs`'s `JUMP`).
const JUMP: usize = 2;
/// An ask due within this may be taken past one more answer (`proto::URGENT_DUE_MS`).
const URGENT_MS: i64 = alluvium_swarm::proto::URGENT_DUE_MS;

#[derive(Debug)]
pub(crate) struct Server {
    /// Bytes per ms: the pace, or the link when it paces `auto` (see `follower`).
    rate: f64,
    /// An `auto` pace: the rate is the lesser of the link and what this says.
    follower: Option<LinkFollower>,
    /// Answers due no later than an ask that are in flight before it is refused (`None`: the
    /// origin, which takes every ask and shares its link).
    cap: Option<usize>,
    answers: Vec<Answer>,
    /// Parts (entry, part) this sender took from the origin and has not sent on yet, each
    /// with the members it knew of then, itself included (see `SoleFirst`).
    sole: std::collections::HashMap<(usize, u32), usize>,
    sole_first: SoleFirst,
}

impl Server {
    pub(crate) fn peer(rate: f64, cap: usize) -> Self {
        Self {
            rate,
            follower: None,
            cap: Some(cap.max(1)),
            answers: Vec::new(),
            sole: Default::default(),
            sole_first: SoleFirst::Off,
        }
    }

    /// Treats asks for parts it alone holds as `rule` says.
    pub(crate) fn with_sole_first(self, rule: SoleFirst) -> Self {
        Self {
            sole_first: rule,
            ..self
        }
    }

    /// A peer server over a link of `link` bytes per ms that paces `auto`, from `floor` bytes
    /// per second.
    pub(crate) fn following(link: f64, floor: f64, cap: usize) -> Self {
        let mut follower = LinkFollower::default();
        follower.set_floor(floor as u64);
        Self {
            follower: Some(follower),
            ..Self::peer(link, cap)
        }
    }

    pub(crate) fn origin(rate: f64) -> Self {
        Self {
            rate,
            follower: None,
            cap: None,
            answers: Vec::new(),
            sole: Default::default(),
            sole_first: SoleFirst::Off,
        }
    }

    /// Bytes per ms it sends at now, and its pace in bytes per second.
    fn pace(&self) -> (f64, u64) {
        match &self.follower {
            Some(f) => {
                let paced = f.rate();
                (self.rate.min(paced as f64 / 1000.0), paced)
            }
            None => (self.rate, (self.rate * 1000.0) as u64),
        }
    }

    /// This sender took `part` of `entry` from the origin, knowing `members` of its swarm
    /// (itself included).
    pub(crate) fn took_from_origin(&mut self, entry: usize, part: u32, members: usize) {
        if self.sole_first != SoleFirst::Off {
            self.sole.insert((entry, part), members);
        }
    }

    /// How much earlier an only copy known to `members` is due (`SoleFirst::Lead`): the hops
    /// it takes to reach every member, each an answer sent behind the cap's at the pace, as
    /// `Node::only_copy_lead` reckons them.
    pub(crate) fn lead(&self, members: usize) -> i64 {
        let hops = (members as f64).log2().ceil();
        let cap = self.cap.unwrap_or(1);
        let hop_ms = PART as f64 / self.pace().0 * (cap + 1) as f64;
        (hops * hop_ms) as i64
    }

    /// Takes `a` at `now`, or gives it back (`503`): as `answers.rs` decides, and for a part
    /// it alone holds as its `SoleFirst` says (one such answer in flight at most).
    pub(crate) fn take(&mut self, mut a: Answer, now: i64) -> Result<(), Answer> {
        let lead = self
            .sole
            .get(&(a.entry, a.first))
            .copied()
            .filter(|_| !self.answers.iter().any(|b| b.sole));
        if let Some(members) = lead {
            match self.sole_first {
                SoleFirst::Off => {}
                SoleFirst::First => a.sole = true,
                SoleFirst::Urgent => {
                    // Taken as an urgent ask is, due no later than one.
                    let due = a.deadline.min(now + URGENT_MS);
                    let ahead = self.answers.iter().filter(|b| b.deadline <= due).count();
                    let cap = self.cap.unwrap_or(usize::MAX - JUMP);
                    if ahead < cap + 1 && self.answers.len() < cap + JUMP {
                        a.deadline = due;
                        a.sole = true;
                    }
                }
                SoleFirst::Lead => {
                    a.deadline -= self.lead(members);
                    a.sole = true;
                }
                SoleFirst::LeadAfterUrgent => {
                    let lead = self.lead(members);
                    a.deadline = (a.deadline - lead).max(now + URGENT_MS + 1).min(a.deadline);
                    a.sole = true;
                }
            }
            if a.sole {
                self.answers.push(a);
                return Ok(());
            }
        }
        if let Some(cap) = self.cap {
            let urgent = a.deadline - now <= URGENT_MS;
            // The answers due no later, and the bytes they have still to send.
            let (ahead, before) = self
                .answers
                .iter()
                .filter(|b| b.deadline <= a.deadline)
                .fold((0, 0.0), |(n, left), b| (n + 1, left + b.left));
            if ahead >= cap + usize::from(urgent) || self.answers.len() >= cap + JUMP {
                return Err(a);
            }
            // Only if they leave it time (`answers.rs`): sent at the pace before the asker
            // plays it (at once if due now); a part already overdue by the counts alone.
            if !a.overdue && before > 0.0 && before / self.pace().0 > (a.due_at - now).max(0) as f64
            {
                return Err(a);
            }
        }
        self.answers.push(a);
        Ok(())
    }

    /// Stops sending to `asker`: it went away.
    pub(crate) fn drop_asker(&mut self, asker: usize) {
        self.answers.retain(|a| a.asker != asker);
    }

    /// Every answer taken and not sent: the sender went away.
    pub(crate) fn drop_all(&mut self) -> Vec<Answer> {
        std::mem::take(&mut self.answers)
    }

    /// Sends for `ms` from `now`: the answers whose last byte went, and the bytes sent.
    pub(crate) fn send(&mut self, now: u64, ms: u64) -> Sent {
        let (rate, paced) = self.pace();
        let full = rate * ms as f64;
        let mut budget = full;
        if self.cap.is_some() {
            // Soonest due first (`uplink.rs`); under `SoleFirst::First` the swarm's only
            // copy before anything.
            let first = self.sole_first == SoleFirst::First;
            self.answers
                .sort_by_key(|a| (!(first && a.sole), a.deadline));
            // Within the step, to the byte: a delivery's time is what the follower reads.
            let at = |budget: f64| now as f64 + (full - budget) / rate;
            for a in &mut self.answers {
                let sent = a.left.min(budget);
                if sent > 0.0 {
                    a.began.get_or_insert((at(budget), paced));
                }
                a.left -= sent;
                budget -= sent;
                a.ended = at(budget);
                if budget <= 0.0 {
                    break;
                }
            }
        } else {
            // Shared alike; what a short one leaves goes to the others.
            while budget > 1e-9 {
                let open = self.answers.iter().filter(|a| a.left > 0.0).count();
                if open == 0 {
                    break;
                }
                let share = budget / open as f64;
                for a in self.answers.iter_mut().filter(|a| a.left > 0.0) {
                    let sent = a.left.min(share);
                    a.left -= sent;
                    budget -= sent;
                }
            }
        }
        let mut parts = Vec::new();
        for a in &mut self.answers {
            let whole = if a.left <= 1e-9 {
                a.count
            } else {
                (((a.bytes as f64 - a.left) / PART as f64) as u32).min(a.count)
            };
            parts.extend((a.whole..whole).map(|k| (a.asker, a.entry, a.first + k)));
            a.whole = a.whole.max(whole);
        }
        let (done, open): (Vec<Answer>, Vec<Answer>) =
            self.answers.drain(..).partition(|a| a.left <= 1e-9);
        self.answers = open;
        // An only copy is one no more once it went out (`server/paced.rs`).
        for a in done.iter().filter(|a| a.sole) {
            self.sole.remove(&(a.entry, a.first));
        }
        // Each asker says how fast its answer came, from its first bytes to its last.
        if let Some(f) = self.follower.as_mut() {
            for a in &done {
                if let Some((began, paced)) = a.began {
                    let us = ((a.ended - began) * 1000.0) as u64;
                    f.delivered(
                        now + ms,
                        Delivered {
                            bytes: a.bytes,
                            us,
                            paced,
                        },
                    );
                }
            }
        }
        Sent {
            done,
            parts,
            bytes: full - budget.max(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(id: u64, deadline: i64) -> Answer {
        Answer::new(0, 0, id, (0, 1), 1000, deadline)
    }

    #[test]
    fn a_peer_takes_a_few_and_sends_the_soonest_due_first() {
        let mut s = Server::peer(100.0, 2);
        assert!(s.take(ask(1, 20_000), 0).is_ok());
        assert!(s.take(ask(2, 30_000), 0).is_ok());
        assert!(s.take(ask(3, 40_000), 0).is_err(), "two ahead of it");
        assert!(s.take(ask(4, 10_000), 0).is_ok(), "due sooner than both");
        assert!(s.take(ask(5, 2_000), 0).is_ok(), "urgent: one more");
        assert!(s.take(ask(6, 1_000), 0).is_err(), "cap + JUMP in flight");
        let sent = s.send(0, 10);
        assert_eq!(sent.bytes, 1000.0);
        let done: Vec<u64> = sent.done.iter().map(|a| a.id).collect();
        assert_eq!(done, [5], "the soonest due first");
    }

    #[test]
    fn an_ask_is_taken_only_in_time_and_an_overdue_one_by_the_counts() {
        // 100 bytes a ms: an answer of 1000 bytes takes 10 ms.
        let mut s = Server::peer(100.0, 2);
        assert!(
            s.take(ask(1, 100), 100).is_ok(),
            "due now, nothing before it"
        );
        assert!(
            s.take(ask(2, 100), 100).is_err(),
            "due now, 10 ms before it"
        );
        assert!(
            s.take(ask(3, 105), 100).is_err(),
            "due in 5 ms, 10 ms before it"
        );
        assert!(s.take(ask(4, 120), 100).is_ok(), "due in 20 ms");
        let mut late = ask(5, 90);
        late.overdue = true;
        assert!(s.take(late, 100).is_ok(), "overdue: the counts alone");
    }

    #[test]
    fn the_origin_takes_everything_and_shares_its_link() {
        let mut o = Server::origin(100.0);
        for id in 0..4 {
            assert!(o.take(ask(id, 0), 0).is_ok());
        }
        assert!(o.send(0, 39).done.is_empty(), "each has had a quarter");
        assert_eq!(o.send(39, 1).done.len(), 4);
    }

    #[test]
    fn an_auto_pace_rises_to_a_fast_link_and_stays_under_a_slow_one() {
        // 16 kB/s is the bitrate; the floor 1.6x of it.
        let busy = |link: f64| {
            let mut s = Server::following(link, 25_600.0, 2);
            let mut t = 0;
            for id in 0..2_000 {
                while s.answers.len() < 2 {
                    let part = Answer::new(0, 0, id, (0, 1), 16_384, i64::MAX);
                    assert!(s.take(part, t as i64).is_ok());
                }
                s.send(t, 10);
                t += 10;
            }
            s.pace().0
        };
        // A 10x link (160 bytes per ms): found within the run, paced under it.
        let fast = busy(160.0);
        assert!((100.0..=160.0).contains(&fast), "{fast}");
        // A link under the floor: the floor holds, and the link is what goes.
        assert_eq!(busy(20.0), 20.0);
    }

    #[test]
    fn the_swarm_s_only_copy_is_taken_past_the_cap_as_the_rule_says() {
        let busy = |rule: SoleFirst| {
            let mut s = Server::peer(100.0, 2).with_sole_first(rule);
            s.took_from_origin(0, 7, 1 << 14);
            assert!(s.take(ask(1, 1_000), 0).is_ok());
            assert!(s.take(ask(2, 1_500), 0).is_ok());
            s
        };
        // As any ask: two due sooner are in flight.
        let mut off = busy(SoleFirst::Off);
        let sole = |id| Answer::new(0, 0, id, (7, 1), 1000, 20_000);
        assert!(off.take(sole(3), 0).is_err());
        // First: taken, and its bytes go before the others'.
        let mut first = busy(SoleFirst::First);
        assert!(first.take(sole(3), 0).is_ok());
        assert_eq!(first.send(0, 10).done[0].id, 3);
        // Once: the next ask of it is any ask.
        assert!(first.take(sole(4), 0).is_err());
        // Given up before it went out (its asker left), it is still the only copy.
        let mut gone = busy(SoleFirst::First);
        assert!(gone
            .take(Answer::new(5, 0, 3, (7, 1), 1000, 20_000), 0)
            .is_ok());
        gone.drop_asker(5);
        assert!(gone.take(sole(4), 0).is_ok());
        // Lead: taken, due sooner by 14 hops (about 7 s), after the two due within 1.5 s.
        let mut lead = busy(SoleFirst::Lead);
        assert!(lead.take(sole(3), 0).is_ok());
        let order: Vec<u64> = (0..3)
            .flat_map(|k| lead.send(k * 10, 10).done)
            .map(|a| a.id)
            .collect();
        assert_eq!(order, [1, 2, 3]);
        // After urgent asks: a lead of minutes puts it after the ask due in 2 s, before the
        // one due in 4 s.
        let mut after = Server::peer(1.0, 2).with_sole_first(SoleFirst::LeadAfterUrgent);
        after.took_from_origin(0, 7, 1 << 14);
        assert!(after.take(ask(1, 2_000), 0).is_ok());
        assert!(after.take(ask(2, 4_000), 0).is_ok());
        assert!(after.take(sole(3), 0).is_ok());
        after.answers.iter_mut().for_each(|a| a.left = 1.0);
        let order: Vec<u64> = (0..3)
            .flat_map(|k| after.send(k, 1).done)
            .map(|a| a.id)
            .collect();
        assert_eq!(order, [1, 3, 2]);
    }

    #[test]
    fn each_part_of_an_answer_lands_as_it_is_whole() {
        // The origin sends a block of four parts at a part per 100 ms: the asker keeps the
        // first after 100 ms, not after 400 with the last (`download/request.rs`).
        let mut s = Server::origin(PART as f64 / 100.0);
        let block = Answer::new(3, 1, 9, (8, 4), 4 * PART, i64::MAX);
        assert!(s.take(block, 0).is_ok());
        let mut landed = Vec::new();
        for step in 0..40 {
            let sent = s.send(step * 10, 10);
            landed.extend(sent.parts.iter().map(|&(asker, entry, part)| {
                assert_eq!((asker, entry), (3, 1));
                (part, step * 10 + 10)
            }));
            if !sent.done.is_empty() {
                assert_eq!(step * 10 + 10, 400, "the whole answer");
            }
        }
        assert_eq!(landed, [(8, 100), (9, 200), (10, 300), (11, 400)]);
    }
}
