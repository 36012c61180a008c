//! What a sender does with the asks it gets: a listener's peer server (a few answers taken,
//! sent soonest due first at its paced rate, `503` past them) or the origin (every ask taken,
//! its link shared among them, as TCP shares it).

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
    /// When the asker plays it (simulated ms; `i64::MAX`: no deadline).
    deadline: i64,
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
        }
    }
}

/// What a step of sending did.
pub(crate) struct Sent {
    /// The answers whose last byte went.
    pub(crate) done: Vec<Answer>,
    pub(crate) bytes: f64,
}

/// Answers taken past `cap` by asks due sooner than those in flight (`answers.rs`'s `JUMP`).
const JUMP: usize = 2;
/// An ask due within this may be taken past one more answer (`proto::URGENT_DUE_MS`).
const URGENT_MS: i64 = 3_000;

#[derive(Debug)]
pub(crate) struct Server {
    /// Bytes per ms.
    rate: f64,
    /// Answers due no later than an ask that are in flight before it is refused (`None`: the
    /// origin, which takes every ask and shares its link).
    cap: Option<usize>,
    answers: Vec<Answer>,
}

impl Server {
    pub(crate) fn peer(rate: f64, cap: usize) -> Self {
        Self {
            rate,
            cap: Some(cap.max(1)),
            answers: Vec::new(),
        }
    }

    pub(crate) fn origin(rate: f64) -> Self {
        Self {
            rate,
            cap: None,
            answers: Vec::new(),
        }
    }

    /// Takes `a` at `now`, or gives it back (`503`): as `answers.rs` decides.
    pub(crate) fn take(&mut self, a: Answer, now: i64) -> Result<(), Answer> {
        if let Some(cap) = self.cap {
            let urgent = a.deadline - now <= URGENT_MS;
            let ahead = self
                .answers
                .iter()
                .filter(|b| b.deadline <= a.deadline)
                .count();
            if ahead >= cap + usize::from(urgent) || self.answers.len() >= cap + JUMP {
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

    /// Sends for `ms`: the answers whose last byte went, and the bytes sent.
    pub(crate) fn send(&mut self, ms: u64) -> Sent {
        let full = self.rate * ms as f64;
        let mut budget = full;
        if self.cap.is_some() {
            // Soonest due first (`uplink.rs`).
            self.answers.sort_by_key(|a| a.deadline);
            for a in &mut self.answers {
                let sent = a.left.min(budget);
                a.left -= sent;
                budget -= sent;
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
        let (done, open): (Vec<Answer>, Vec<Answer>) =
            self.answers.drain(..).partition(|a| a.left <= 1e-9);
        self.answers = open;
        Sent {
            done,
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
        let sent = s.send(10);
        assert_eq!(sent.bytes, 1000.0);
        let done: Vec<u64> = sent.done.iter().map(|a| a.id).collect();
        assert_eq!(done, [5], "the soonest due first");
    }

    #[test]
    fn the_origin_takes_everything_and_shares_its_link() {
        let mut o = Server::origin(100.0);
        for id in 0..4 {
            assert!(o.take(ask(id, 0), 0).is_ok());
        }
        assert!(o.send(39).done.is_empty(), "each has had a quarter");
        assert_eq!(o.send(1).done.len(), 4);
    }
}
