//! Content info for a URL: from the store while fresh, else from one shared origin fetch.
//!
//! Actors: each request task calls [`Resolver::resolve`]; at most one *flight* (a spawned fetch
//! task) exists per URL, and every request for that URL waits on the flight's `watch` channel,
//! up to its own limit, then answers `202` with the flight's progress. Flights wait for one of
//! `max_fetches` slots. A finished flight publishes its result and leaves the table (a failure
//! stays [`NEGATIVE_TTL`] so a burst of asks for a dead URL costs one try).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alluvium_content::ContentInfo;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};
use url::Url;

use crate::config::{Config, MAX_FLIGHTS, MAX_URL_LEN, NEGATIVE_TTL};
use crate::error::FetchError;
use crate::fetch::{fetch, Fetched, Progress, Validators};
use crate::metrics::Metrics;
use crate::store::{Store, Stored};
use crate::wire::Pending;

/// How long a gateway's claim to be fetching a URL lasts unless it extends it: a gateway
/// that dies mid-fetch holds the others up this long at most.
const FETCH_LOCK_TTL: Duration = Duration::from_secs(15);
/// How often a gateway waiting on another's fetch looks at the store.
const SHARED_POLL: Duration = Duration::from_millis(200);
/// After a failed revalidation the stored version is served and checked again this soon.
const RETRY_AFTER_FAILED_CHECK: Duration = Duration::from_secs(30);

type Outcome = Result<ContentInfo, Arc<FetchError>>;

struct Flight {
    progress: Arc<Progress>,
    fetching: AtomicBool,
    done: watch::Sender<Option<Outcome>>,
    finished_at: Mutex<Option<Instant>>,
}

impl Flight {
    /// Whether a new ask may join this flight rather than start another.
    fn joinable(&self, now: Instant) -> bool {
        match *self.finished_at.lock().unwrap_or_else(|p| p.into_inner()) {
            None => true,
            Some(at) => now.duration_since(at) < NEGATIVE_TTL,
        }
    }

    fn pending(&self) -> Pending {
        let size = self.progress.size.load(Ordering::Relaxed);
        Pending {
            state: if self.fetching.load(Ordering::Relaxed) {
                "hashing"
            } else {
                "queued"
            }
            .to_string(),
            bytes_done: self.progress.bytes_done.load(Ordering::Relaxed),
            size: (size > 0).then_some(size),
        }
    }
}

/// What a resolve gives.
#[derive(Debug)]
pub enum Resolution {
    Ready(ContentInfo),
    /// Still fetching when the wait ran out.
    Pending(Pending),
}

struct Inner {
    store: Store,
    client: reqwest::Client,
    config: Config,
    flights: Mutex<HashMap<String, Arc<Flight>>>,
    slots: Semaphore,
    metrics: Metrics,
    cancel: CancellationToken,
}

/// Resolves URLs to content info. Cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Resolver {
    pub fn new(
        store: Store,
        client: reqwest::Client,
        config: Config,
        metrics: Metrics,
        cancel: CancellationToken,
    ) -> Self {
        let slots = Semaphore::new(config.max_fetches.max(1));
        Self {
            inner: Arc::new(Inner {
                store,
                client,
                config,
                flights: Mutex::new(HashMap::new()),
                slots,
                metrics,
                cancel,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Content info for `url`, waiting at most `wait` for a fetch.
    pub async fn resolve(&self, url: &str, wait: Duration) -> Result<Resolution, Arc<FetchError>> {
        let result = self.resolve_inner(url, wait).await;
        let outcome = match &result {
            Ok(Resolution::Ready(_)) => "ready",
            Ok(Resolution::Pending(_)) => "pending",
            Err(e) => e.status().1,
        };
        self.inner.metrics.resolve(outcome);
        result
    }

    async fn resolve_inner(
        &self,
        raw: &str,
        wait: Duration,
    ) -> Result<Resolution, Arc<FetchError>> {
        if raw.len() > MAX_URL_LEN {
            return Err(Arc::new(FetchError::BadUrl(format!(
                "URL longer than {MAX_URL_LEN} bytes"
            ))));
        }
        let url =
            Url::parse(raw).map_err(|e| Arc::new(FetchError::BadUrl(format!("{raw:?}: {e}"))))?;
        let key = url.as_str().to_string();
        let stored = self
            .inner
            .store
            .get(&key)
            .await
            .map_err(|e| Arc::new(e.into()))?;
        if let Some(s) = &stored {
            let age = now_ms().saturating_sub(s.checked_at_ms);
            if age >= 0 && (age as u128) < self.inner.config.fresh.as_millis() {
                return Ok(Resolution::Ready(s.info.clone()));
            }
        }
        let flight = self.flight(&key, url, stored)?;
        let mut done = flight.done.subscribe();
        let finished = tokio::time::timeout(wait, done.wait_for(Option::is_some)).await;
        match finished {
            Ok(Ok(outcome)) => match outcome.as_ref() {
                Some(Ok(info)) => Ok(Resolution::Ready(info.clone())),
                Some(Err(e)) => Err(e.clone()),
                None => Ok(Resolution::Pending(flight.pending())),
            },
            // The flight task ended without a result: the gateway is shutting down.
            Ok(Err(_)) => Err(Arc::new(FetchError::Busy)),
            Err(_) => Ok(Resolution::Pending(flight.pending())),
        }
    }

    /// The flight for `key`, joined or started.
    fn flight(
        &self,
        key: &str,
        url: Url,
        stored: Option<Stored>,
    ) -> Result<Arc<Flight>, Arc<FetchError>> {
        let now = Instant::now();
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = flights.get(key) {
            if f.joinable(now) {
                return Ok(f.clone());
            }
        }
        if flights.len() >= MAX_FLIGHTS {
            flights.retain(|_, f| f.joinable(now));
            if flights.len() >= MAX_FLIGHTS {
                return Err(Arc::new(FetchError::Busy));
            }
        }
        let flight = Arc::new(Flight {
            progress: Arc::default(),
            fetching: AtomicBool::new(false),
            done: watch::Sender::new(None),
            finished_at: Mutex::new(None),
        });
        flights.insert(key.to_string(), flight.clone());
        drop(flights);

        let this = self.clone();
        let f = flight.clone();
        let key = key.to_string();
        let span = tracing::info_span!("fetch", url = %key);
        let cancel = self.inner.cancel.clone();
        alluvium_task::spawn(
            "fetch",
            &cancel,
            async move { this.fly(key, url, stored, f).await }.instrument(span),
        );
        Ok(flight)
    }

    async fn fly(&self, key: String, url: Url, stored: Option<Stored>, flight: Arc<Flight>) {
        let outcome = match self.inner.store.shared() {
            Some(redis) => self.fly_shared(redis, &key, url, stored, &flight).await,
            None => self.fetch_once(&key, url, stored, &flight).await,
        };
        let Some(outcome) = outcome else { return };
        let inner = &self.inner;
        let failed = outcome.is_err();
        flight.done.send_replace(Some(outcome));
        let mut flights = inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        if failed {
            *flight.finished_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        } else if flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            flights.remove(&key);
        }
    }

    /// With gateways sharing a store, one of them fetches a URL at a time: the others wait
    /// for its entry to change in the store, or for its lock to go (it failed or died), and
    /// then try themselves.
    async fn fly_shared(
        &self,
        redis: &crate::store::redis::Redis,
        key: &str,
        url: Url,
        stored: Option<Stored>,
        flight: &Arc<Flight>,
    ) -> Option<Outcome> {
        let lock = format!("fetch:{key}");
        let seen = stored.as_ref().map(|s| (s.info.blake3, s.checked_at_ms));
        loop {
            let work = self.fetch_once(key, url.clone(), stored.clone(), flight);
            match redis.while_locked(&lock, FETCH_LOCK_TTL, work).await {
                Ok(Some(outcome)) => return outcome,
                Ok(None) => {}
                Err(e) => return Some(Err(Arc::new(e.into()))),
            }
            flight.fetching.store(true, Ordering::Relaxed);
            loop {
                tokio::select! {
                    () = self.inner.cancel.cancelled() => return None,
                    () = tokio::time::sleep(SHARED_POLL) => {}
                }
                match self.inner.store.get(key).await {
                    Ok(Some(now)) if Some((now.info.blake3, now.checked_at_ms)) != seen => {
                        return Some(Ok(now.info));
                    }
                    Ok(_) => {}
                    Err(e) => return Some(Err(Arc::new(e.into()))),
                }
                match redis.is_locked(&lock).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => return Some(Err(Arc::new(e.into()))),
                }
            }
        }
    }

    /// Fetches `url` from its origin once (when a fetch slot is free) and records the result.
    async fn fetch_once(
        &self,
        key: &str,
        url: Url,
        stored: Option<Stored>,
        flight: &Arc<Flight>,
    ) -> Option<Outcome> {
        let inner = &self.inner;
        let Ok(_permit) = inner.slots.acquire().await else {
            return None;
        };
        flight.fetching.store(true, Ordering::Relaxed);
        inner.metrics.fetch_started();
        let previous = stored.as_ref().map(|s| Validators {
            etag: s.info.etag.as_deref(),
            last_modified: s.info.last_modified.as_deref(),
        });
        let started = Instant::now();
        let fetched = fetch(
            &inner.client,
            &inner.config,
            &url,
            previous,
            flight.progress.clone(),
        )
        .await;
        inner
            .metrics
            .fetched_bytes(flight.progress.bytes_done.load(Ordering::Relaxed));
        let outcome: Outcome = match fetched {
            Ok(Fetched::NotModified) => match stored {
                Some(s) => {
                    inner.metrics.fetch_done("not_modified");
                    match inner.store.touch(key, now_ms()).await {
                        Ok(()) => Ok(s.info),
                        Err(e) => Err(Arc::new(e.into())),
                    }
                }
                None => Err(Arc::new(FetchError::OriginStatus {
                    url: key.to_string(),
                    status: 304,
                })),
            },
            Ok(Fetched::New { info, tree }) => {
                inner.metrics.fetch_done("hashed");
                let secs = started.elapsed().as_secs_f64();
                match &stored {
                    Some(old) if old.info.blake3 != info.blake3 => info!(
                        old = %old.info.blake3, new = %info.blake3, size = info.size,
                        seconds = secs, "origin file changed: hashed again (old tree kept)"
                    ),
                    _ => info!(root = %info.blake3, size = info.size, seconds = secs, "hashed"),
                }
                match inner.store.put(info.clone(), tree, now_ms()).await {
                    Ok(()) => Ok(info),
                    Err(e) => Err(Arc::new(e.into())),
                }
            }
            Err(e) => {
                let code = e.status().1;
                inner.metrics.fetch_done(code);
                match stored {
                    // The origin is down or confused, but we know the file: keep serving it
                    // (peers may hold it) and ask the origin again soon.
                    Some(s)
                        if matches!(
                            e,
                            FetchError::Unreachable { .. }
                                | FetchError::Timeout { .. }
                                | FetchError::TooSlow { .. }
                                | FetchError::OriginStatus { .. }
                                | FetchError::Changed { .. }
                        ) =>
                    {
                        warn!(error = %e, "revalidation failed: serving the stored version");
                        let fresh = i64::try_from(inner.config.fresh.as_millis()).unwrap_or(0);
                        let retry = RETRY_AFTER_FAILED_CHECK.as_millis() as i64;
                        let at = now_ms() - fresh + retry.min(fresh);
                        if let Err(e) = inner.store.touch(key, at).await {
                            warn!(error = %e, "could not record the check");
                        }
                        Ok(s.info)
                    }
                    _ => {
                        warn!(error = %e, "fetch failed");
                        Err(Arc::new(e))
                    }
                }
            }
        };
        Some(outcome)
    }

    /// Flights queued or running (for /metrics).
    pub fn flights_in_progress(&self) -> usize {
        let flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights
            .values()
            .filter(|f| f.done.borrow().is_none())
            .count()
    }
}
