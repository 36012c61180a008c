//! Which blob asks a peer server takes: its answers in flight and when their askers play
//! them.
//!
//! An uplink carries a few answers at once (the pacer sends the soonest due first), and an
//! ask past them gets `503` and goes elsewhere. An ask is taken while fewer than `cap` answers
//! in flight are due no later than it (one more for an urgent ask, due within
//! [`URGENT_DUE_MS`]), and at most `cap + JUMP` answers are in flight in all: answers for
//! parts playing much later, which the pacer sends last, would otherwise hold the slots that
//! a joiner's first seconds need (docs/decisions/019). With a known upload rate, an ask is also
//! taken only if the answers due no later than it can be sent before it is due (at once, for
//! an ask due now, as a joiner's first seconds are): one that would wait past its moment goes
//! to another holder, or to the origin, while it still can; an overdue part is taken by the
//! counts alone (docs/decisions/057). An ask of a part this node alone holds
//! is taken past them, one such answer at a time (docs/decisions/051).

use std::sync::{Arc, Mutex};

use crate::proto::URGENT_DUE_MS;

/// Answers past the cap that asks due sooner than those in flight may add.
const JUMP: usize = 2;

/// The answers in flight, by deadline.
#[derive(Debug)]
pub(crate) struct Answers {
    cap: usize,
    inner: Mutex<InFlight>,
}

/// One answer in flight.
#[derive(Debug)]
struct Due {
    id: u64,
    /// When the uplink sends it by (on the uplink's clock; `i64::MAX`: none): its asker's
    /// moment, or earlier for a part that must still spread (`Node::spread_lead`).
    deadline: i64,
    /// Its bytes not yet handed to the connection.
    left: u64,
}

#[derive(Debug, Default)]
struct InFlight {
    dues: Vec<Due>,
    next_id: u64,
    /// The answer in flight of a part this node alone held, if any.
    only: Option<u64>,
}

/// An answer in flight; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct Slot {
    answers: Arc<Answers>,
    id: u64,
}

impl Answers {
    /// At most `cap` answers due no later than any ask taken (at least one).
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            inner: Mutex::new(InFlight::default()),
        })
    }

    /// The answers in flight due no later than an ask taken.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// A place past the cap for an answer of a part this node alone holds, due at
    /// `deadline`; `None` while another such answer is in flight.
    pub(crate) fn try_take_only_copy(self: &Arc<Self>, deadline: i64, bytes: u64) -> Option<Slot> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.only.is_some() {
            return None;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.dues.push(Due {
            id,
            deadline,
            left: bytes,
        });
        inner.only = Some(id);
        Some(Slot {
            answers: self.clone(),
            id,
        })
    }

    /// A place for an answer of `bytes` whose asker plays it at `deadline` (`None`: no
    /// deadline, after everything), due in `due_in_ms`, over an uplink sending `rate` bytes a
    /// second (`None`: not paced); `None` if the uplink has enough to send first.
    pub(crate) fn try_take(
        self: &Arc<Self>,
        deadline: Option<i64>,
        due_in_ms: Option<i64>,
        bytes: u64,
        rate: Option<u64>,
    ) -> Option<Slot> {
        let deadline = deadline.unwrap_or(i64::MAX);
        let urgent = due_in_ms.is_some_and(|d| d <= URGENT_DUE_MS);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // The answers due no later, and the bytes they have still to send.
        let (ahead, before) = inner
            .dues
            .iter()
            .filter(|d| d.deadline <= deadline)
            .fold((0, 0u64), |(n, b), d| (n + 1, b + d.left));
        if ahead >= self.cap + usize::from(urgent) || inner.dues.len() >= self.cap + JUMP {
            return None;
        }
        // A part already overdue by the counts alone: refused, it would be silence now.
        let in_time = due_in_ms.filter(|d| *d >= 0);
        if let (Some(due), Some(rate)) = (in_time, rate.filter(|r| *r > 0)) {
            let wait_ms = before.saturating_mul(1000) / rate;
            if before > 0 && wait_ms > due as u64 {
                return None;
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.dues.push(Due {
            id,
            deadline,
            left: bytes,
        });
        Some(Slot {
            answers: self.clone(),
            id,
        })
    }

    /// Answers in flight.
    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dues
            .len()
    }
}

impl Slot {
    /// `n` more of its bytes were handed to the connection.
    pub(crate) fn sent(&self, n: u64) {
        let mut inner = self.answers.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = inner.dues.iter_mut().find(|d| d.id == self.id) {
            d.left = d.left.saturating_sub(n);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.answers.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.dues.retain(|d| d.id != self.id);
        if inner.only == Some(self.id) {
            inner.only = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ask_due_sooner_than_the_answers_in_flight_is_taken() {
        let answers = Answers::new(2);
        // Two answers for parts playing in 20 s fill the cap for anything due later.
        let a = answers.try_take(Some(20_000), Some(20_000), 0, None);
        let b = answers.try_take(Some(20_000), Some(20_000), 0, None);
        assert!(a.is_some() && b.is_some());
        assert!(answers
            .try_take(Some(25_000), Some(25_000), 0, None)
            .is_none());
        assert!(
            answers.try_take(None, None, 0, None).is_none(),
            "no deadline: last"
        );
        assert!(
            answers
                .try_take(Some(20_000), Some(20_000), 0, None)
                .is_none(),
            "a tie"
        );
        // A part due in 5 s goes ahead of them; so does a second one.
        let c = answers.try_take(Some(5_000), Some(5_000), 0, None);
        assert!(c.is_some());
        let d = answers.try_take(Some(6_000), Some(6_000), 0, None);
        assert!(d.is_some());
        // Four in flight: the most there is room for, even for an urgent ask.
        assert!(answers.try_take(Some(500), Some(500), 0, None).is_none());
        drop(a);
        // Two are due before 7 s: a third is not taken, unless urgent.
        assert!(answers
            .try_take(Some(7_000), Some(7_000), 0, None)
            .is_none());
        let e = answers.try_take(Some(-300), Some(-300), 0, None);
        assert!(e.is_some(), "overdue is urgent");
        assert_eq!(answers.in_flight(), 4);
        drop((b, c, d, e));
        assert_eq!(answers.in_flight(), 0);
    }

    #[test]
    fn an_only_copy_is_taken_past_the_cap_one_at_a_time() {
        let answers = Answers::new(2);
        let a = answers.try_take(Some(1_000), Some(1_000), 0, None);
        let b = answers.try_take(Some(1_000), Some(1_000), 0, None);
        let c = answers.try_take(Some(900), Some(900), 0, None);
        let d = answers.try_take(Some(800), Some(800), 0, None);
        assert!(a.is_some() && b.is_some() && c.is_some() && d.is_some());
        let only = answers.try_take_only_copy(20_000, 0);
        assert!(only.is_some(), "past the cap and the jump");
        assert!(
            answers.try_take_only_copy(500, 0).is_none(),
            "one at a time"
        );
        assert_eq!(answers.in_flight(), 5);
        drop(only);
        assert!(answers.try_take_only_copy(500, 0).is_some());
    }

    #[test]
    fn without_deadlines_the_cap_is_plain() {
        let answers = Answers::new(2);
        let a = answers.try_take(None, None, 0, None);
        let b = answers.try_take(None, None, 0, None);
        assert!(a.is_some() && b.is_some());
        assert!(answers.try_take(None, None, 0, None).is_none());
        // An urgent ask still gets the one more it always had.
        let u = answers.try_take(Some(1_000), Some(1_000), 0, None);
        assert!(u.is_some());
        let v = answers.try_take(Some(900), Some(900), 0, None);
        assert!(v.is_some(), "due before the urgent one: jumps too");
        assert!(
            answers.try_take(Some(800), Some(800), 0, None).is_none(),
            "four in flight"
        );
        drop(a);
        assert!(
            answers.try_take(None, None, 0, None).is_none(),
            "two are in flight"
        );
    }

    #[test]
    fn an_ask_is_taken_only_if_the_answers_before_it_leave_it_time() {
        // 16 KiB a second: a part takes a second to send.
        let (part, rate) = (16_384, Some(16_384));
        let answers = Answers::new(2);
        let now_a = answers.try_take(Some(0), Some(0), part, rate);
        assert!(now_a.is_some(), "nothing before it");
        // A second joiner's first part, due now too: it would wait a second. Elsewhere.
        assert!(answers.try_take(Some(0), Some(0), part, rate).is_none());
        // Due in 2 s: the second before it leaves time.
        let soon = answers.try_take(Some(2_000), Some(2_000), part, rate);
        assert!(soon.is_some());
        // Due in half a second: the second before it does not.
        assert!(answers.try_take(Some(500), Some(500), part, rate).is_none());
        // As the first answer goes out, less is before the next.
        let a = now_a.unwrap();
        a.sent(12_288);
        assert!(answers.try_take(Some(500), Some(500), part, rate).is_some());
        // Overdue: the counts alone decide (a refusal would be silence now).
        assert!(answers
            .try_take(Some(-200), Some(-200), part, rate)
            .is_some());
        // Not paced: the counts alone decide.
        drop(a);
        assert!(Answers::new(2)
            .try_take(Some(0), Some(0), part, None)
            .is_some());
    }
}
