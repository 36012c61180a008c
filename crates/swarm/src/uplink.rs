//! The uplink: which answer's bytes go out next, and how fast.
//!
//! With an upload rate (`--upload-limit`), every answer's body passes through one
//! [`Uplink`] in small steps. Steps are granted at that rate, a short burst at most, so the
//! bytes this node hands its sockets never exceed what the link carries: the link's queue (a
//! home router's, or a shaper's) stays short, packets are not dropped, and acknowledgements
//! and asks still get through. And because the queue that matters is then this one, the
//! order is ours to choose: the waiting step whose ask is due soonest goes first (earliest
//! deadline first; asks with no deadline, a plain fetch, after them in arrival order). A
//! listener that has just joined, or is about to play silence, gets its part at the link's
//! full rate instead of a share of it.
//!
//! Without a rate, steps pass at once and the kernel's queue decides (taking turns without
//! a rate was measured worse: docs/decisions/005).
//!
//! The rate may be set late, and changed ([`Uplink::set_rate`]): `--upload-limit auto` (the
//! default) paces at a multiple of the station's bitrate once the first entry's is known, and
//! follows the link from there as askers report it (see [`crate::link`]).
//!
//! Written by hand: rate limiters (`governor`) grant in arrival order, and the order is the
//! point here.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Bytes that may be granted at once beyond the rate: about two steps.
pub const BURST: u64 = 4 * 1024;
/// How far ahead of the link small answers may charge it without waiting in line
/// ([`Uplink::charge_small`]).
pub const MAX_DEBT: Duration = Duration::from_millis(500);

/// Which waiting step goes first: urgency class (0 with a deadline, 1 without), then the
/// deadline (ms since the uplink was made), then arrival.
type Key = (u8, i64, u64);

#[derive(Debug)]
struct State {
    /// When the link will have sent everything granted so far.
    free_at: Instant,
    waiting: BTreeSet<Key>,
    seq: u64,
}

/// One node's upload: see the module documentation.
#[derive(Debug)]
pub struct Uplink {
    /// Bytes per second; 0: no pacing.
    rate: AtomicU64,
    state: Mutex<State>,
    /// Wakes waiters when the first in line may have changed.
    turn: Notify,
    base: Instant,
}

/// Takes a waiter out of line however its future ends (granted, or dropped because the
/// asker went away), so the next one is not held up.
struct InLine<'a> {
    uplink: &'a Uplink,
    key: Key,
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        let removed = self.uplink.lock().waiting.remove(&self.key);
        if removed {
            self.uplink.turn.notify_waiters();
        }
    }
}

impl Uplink {
    /// An uplink sending `rate` bytes per second (`None`: as fast as the sockets take them).
    pub fn new(rate: Option<u64>) -> Self {
        let now = Instant::now();
        Self {
            rate: AtomicU64::new(rate.unwrap_or(0)),
            state: Mutex::new(State {
                free_at: now,
                waiting: BTreeSet::new(),
                seq: 0,
            }),
            turn: Notify::new(),
            base: now,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn rate(&self) -> Option<u64> {
        Some(self.rate.load(Ordering::Relaxed)).filter(|r| *r > 0)
    }

    /// Paces at `rate` bytes per second from now on (0: not at all), faster or slower.
    pub fn set_rate(&self, rate: u64) {
        self.rate.store(rate, Ordering::Relaxed);
        self.turn.notify_waiters();
    }

    /// The deadline of something due in `due_in_ms` (negative: overdue), as
    /// [`Uplink::send`] takes it: ms on the uplink's own clock.
    pub fn deadline(&self, due_in_ms: i64) -> i64 {
        let now = Instant::now()
            .saturating_duration_since(self.base)
            .as_millis();
        i64::try_from(now)
            .unwrap_or(i64::MAX)
            .saturating_add(due_in_ms)
    }

    /// Waits until `n` bytes may be handed to a socket. `due`: when the asker plays them
    /// (from [`Uplink::deadline`]; `None`: no deadline). The soonest due goes first.
    pub async fn send(&self, n: usize, due: Option<i64>) {
        if self.rate().is_none() {
            return;
        }
        let key = {
            let mut s = self.lock();
            s.seq += 1;
            let key = match due {
                Some(d) => (0, d, s.seq),
                None => (1, 0, s.seq),
            };
            s.waiting.insert(key);
            key
        };
        let _in_line = InLine { uplink: self, key };
        loop {
            let turn = self.turn.notified();
            tokio::pin!(turn);
            // Registered before the check, so a change in between is not missed.
            turn.as_mut().enable();
            // Read each turn: the rate may have been raised while this step waited.
            let Some(rate) = self.rate() else { return };
            let wake = {
                let mut s = self.lock();
                let now = Instant::now();
                let first = s.waiting.first() == Some(&key);
                let ready_at = s.free_at.checked_sub(span(BURST, rate)).unwrap_or(now);
                if first && now >= ready_at {
                    s.waiting.remove(&key);
                    s.free_at = s.free_at.max(now) + span(n as u64, rate);
                    drop(s);
                    self.turn.notify_waiters();
                    return;
                }
                first.then_some(ready_at)
            };
            match wake {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut turn => {}
                    }
                }
                None => turn.await,
            }
        }
    }

    /// Counts `n` bytes of a small answer (a bitfield, a tree, an answer's head) before it
    /// is sent: at once while the link owes less than [`MAX_DEBT`] (news is not made to wait
    /// behind parts), else in line after every ask that has a deadline. So a flood of cheap
    /// asks delays the parts honest peers wait for by `MAX_DEBT` at most.
    pub async fn charge_small(&self, n: usize) {
        let Some(rate) = self.rate() else { return };
        {
            let mut s = self.lock();
            let now = Instant::now();
            if s.free_at.saturating_duration_since(now) < MAX_DEBT {
                s.free_at = s.free_at.max(now) + span(n as u64, rate);
                return;
            }
        }
        self.send(n, None).await;
    }

    /// Counts `n` bytes sent outside the line (small answers that are not worth a wait) so
    /// the rate holds for everything.
    pub fn charge(&self, n: usize) {
        if let Some(rate) = self.rate() {
            let mut s = self.lock();
            let now = Instant::now();
            s.free_at = s.free_at.max(now) + span(n as u64, rate);
        }
    }
}

/// How long `bytes` take at `rate` bytes per second.
fn span(bytes: u64, rate: u64) -> Duration {
    Duration::from_nanos((u128::from(bytes) * 1_000_000_000 / u128::from(rate.max(1))) as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn steps_pass_at_the_rate_and_the_soonest_due_goes_first() {
        let up = Arc::new(Uplink::new(Some(8 * 1024)));
        let t0 = Instant::now();
        // The first step fills the burst and more: the next waits.
        up.send(8 * 1024, None).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, due) in [("late", None), ("soon", Some(2)), ("sooner", Some(1))] {
            let (up, order) = (up.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                up.send(8 * 1024, due.map(|s| up.deadline(s * 1000))).await;
                order.lock().unwrap().push((name, t0.elapsed().as_millis()));
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        let names: Vec<&str> = order.iter().map(|o| o.0).collect();
        assert_eq!(names, ["sooner", "soon", "late"], "{order:?}");
        // 8 KiB a second, a 4 KiB burst: each 8 KiB step half a second after the one before.
        let times: Vec<u128> = order.iter().map(|o| o.1).collect();
        assert_eq!(times, [500, 1500, 2500], "{order:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_goes_away_holds_no_one_up() {
        let up = Arc::new(Uplink::new(Some(1024)));
        let t0 = Instant::now();
        // 8 s of sending granted: the next step may go at 4 s (the burst is 4 s ahead).
        up.send(8 * 1024, None).await;
        // First in line, then dropped while waiting.
        let gone = {
            let up = up.clone();
            tokio::spawn(async move { up.send(1024, Some(up.deadline(0))).await })
        };
        tokio::task::yield_now().await;
        gone.abort();
        assert!(gone.await.is_err(), "aborted while waiting");
        // The next one is not stuck behind it, and the aborted step took no time.
        up.send(1024, None).await;
        assert_eq!(t0.elapsed().as_millis(), 4000);
        up.send(1024, None).await;
        assert_eq!(t0.elapsed().as_millis(), 5000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_set_late_paces_from_then_on() {
        let up = Uplink::new(None);
        let t0 = Instant::now();
        up.send(1 << 20, None).await;
        assert_eq!(t0.elapsed().as_millis(), 0, "no rate: no wait");
        assert_eq!(up.rate(), None);

        up.set_rate(1000);
        assert_eq!(up.rate(), Some(1000));
        up.send(5096, None).await; // within the burst: at once
        up.send(10, None).await;
        // 5096 bytes at 1000 B/s, less the 4096-byte burst.
        assert_eq!(t0.elapsed().as_millis(), 1000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_small_answers_does_not_hold_up_a_part() {
        // 200 bitfield answers of 100 bytes: 20 s of a 1,000 B/s link.
        let up = Arc::new(Uplink::new(Some(1000)));
        let t0 = Instant::now();
        let flood: Vec<_> = (0..200)
            .map(|_| {
                let up = up.clone();
                tokio::spawn(async move { up.charge_small(100).await })
            })
            .collect();
        tokio::task::yield_now().await;
        up.send(1000, Some(up.deadline(1_000))).await;
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "a part due in a second waited {:?} behind the flood",
            t0.elapsed()
        );
        for f in flood {
            f.await.unwrap();
        }
        assert!(
            t0.elapsed() >= Duration::from_secs(15),
            "the flood is paced: {:?}",
            t0.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn charged_bytes_count_and_no_rate_means_no_wait() {
        let up = Uplink::new(Some(1000));
        up.charge(5096);
        let t0 = Instant::now();
        up.send(10, None).await;
        // 5096 bytes charged at 1000 B/s, less the 4096-byte burst: one second.
        assert_eq!(t0.elapsed().as_millis(), 1000);

        let free = Uplink::new(None);
        free.charge(1 << 30);
        let t1 = Instant::now();
        free.send(1 << 20, Some(free.deadline(0))).await;
        assert_eq!(t1.elapsed().as_millis(), 0);
    }
}
