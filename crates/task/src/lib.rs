//! Spawning tasks one way. Every task is named, runs in a tracing span (a child of the span it
//! was spawned from), stops when its cancellation token is cancelled, and reports its failure
//! once, here, with the whole chain of causes. Modelled on rqbit's `spawn_utils`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use tokio_util::sync::CancellationToken;
//!
//! let stop = CancellationToken::new();
//! let task = alluvium_task::spawn("ticker", &stop, async {
//!     std::future::pending::<()>().await;
//! });
//! stop.cancel();
//! task.await.unwrap(); // ends at once: cancelled
//! # }
//! ```

use std::error::Error;
use std::future::Future;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What a task's future may end with: nothing, or a result whose error is logged when the
/// task ends.
pub trait Outcome {
    fn report(self, name: &'static str);
}

impl Outcome for () {
    fn report(self, _: &'static str) {}
}

impl<E> Outcome for Result<(), E>
where
    E: Into<Box<dyn Error + Send + Sync>>,
{
    fn report(self, name: &'static str) {
        if let Err(e) = self {
            let e: Box<dyn Error + Send + Sync> = e.into();
            tracing::warn!(task = name, "{}", error_chain(e.as_ref()));
        }
    }
}

/// An error and its causes on one line (`a: b: c`), each cause once, for logs.
pub fn error_chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s = s.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = source.and_then(Error::source);
    }
    text
}

/// Spawns `task` as `name`; it is stopped (dropped at its next await) when `cancel` is
/// cancelled. To have a tracker count it, pass `tracker.track_future(task)`.
pub fn spawn<F>(name: &'static str, cancel: &CancellationToken, task: F) -> JoinHandle<()>
where
    F: Future + Send + 'static,
    F::Output: Outcome,
{
    let cancel = cancel.clone();
    tokio::spawn(
        async move {
            tokio::select! {
                biased;
                () = cancel.cancelled() => tracing::trace!("cancelled"),
                outcome = task => outcome.report(name),
            }
        }
        .instrument(tracing::debug_span!("task", name)),
    )
}

/// Spawns the task `make` returns as `name`, handing it `cancel`: for a task that ends
/// itself when told to, with something to finish first (a last announce, open answers).
pub fn spawn_graceful<M, F>(
    name: &'static str,
    cancel: &CancellationToken,
    make: M,
) -> JoinHandle<()>
where
    M: FnOnce(CancellationToken) -> F,
    F: Future + Send + 'static,
    F::Output: Outcome,
{
    let task = make(cancel.clone());
    tokio::spawn(
        async move { task.await.report(name) }.instrument(tracing::debug_span!("task", name)),
    )
}

/// Spawns the task `make` returns as `name`, handing it `cancel`, for a spawner that awaits
/// its result and reports it itself (a program's exit status, say).
pub fn spawn_awaited<M, F>(
    name: &'static str,
    cancel: &CancellationToken,
    make: M,
) -> JoinHandle<F::Output>
where
    M: FnOnce(CancellationToken) -> F,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(make(cancel.clone()).instrument(tracing::debug_span!("task", name)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("reading the cache")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_chain_names_each_cause_once() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(error_chain(&e), "reading the cache: disk full");
    }

    #[tokio::test]
    async fn cancelled_tasks_end_and_tracked_ones_are_counted() {
        let stop = CancellationToken::new();
        let tracker = tokio_util::task::TaskTracker::new();
        let never = spawn(
            "never",
            &stop,
            tracker.track_future(std::future::pending::<()>()),
        );
        let fails = spawn("fails", &stop, async {
            Err::<(), _>(std::io::Error::other("no"))
        });
        fails.await.unwrap();
        let graceful = spawn_graceful("graceful", &stop, |c| async move {
            c.cancelled().await;
            Ok::<(), std::io::Error>(())
        });
        assert_eq!(tracker.len(), 1);
        stop.cancel();
        never.await.unwrap();
        graceful.await.unwrap();
        assert!(tracker.is_empty());
    }
}
