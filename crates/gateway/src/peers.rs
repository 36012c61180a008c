//! The tracker and the per-address rate limit, wherever they live: in this process (the
//! SQLite default: one gateway) or in the shared store (several gateways on one Redis).

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use alluvium_content::Hash;
use rand::SeedableRng;

use crate::config::{
    Config, EXPIRY_INTERVALS, MAX_PEERS_PER_CONTENT, MAX_PEERS_PER_HOST, MAX_PEERS_TOTAL,
    MAX_RATE_LIMITED_IPS,
};
use crate::error::StoreError;
use crate::store::redis::{Redis, SwarmLimits};
use crate::store::Store;
use crate::tracker::{host_key, RateLimiter, Tracker, TrackerLimits};
use crate::wire::{Event, Have, PeerInfo, ELDEST_PER_ANSWER};

/// An announce as the tracker takes it: the address is the client's, the rest its body's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Announce<'a> {
    pub(crate) root: Hash,
    pub(crate) addr: SocketAddr,
    pub(crate) peer_id: &'a str,
    pub(crate) have: Have,
    pub(crate) event: Event,
}

pub(crate) enum Peers {
    Local {
        tracker: Mutex<Tracker>,
        limiter: Mutex<RateLimiter>,
        rng: Box<Mutex<rand::rngs::StdRng>>,
    },
    Shared {
        redis: Redis,
        limits: SwarmLimits,
        rate: u32,
        /// When a failing store was last reported, so an outage is one line, not one a request.
        warned: Mutex<Option<Instant>>,
    },
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The tracker's and the rate limiter's clock in this process: monotonic, so peers' ages and
/// expiries do not jump when the machine's clock is set.
pub(crate) fn now_ms() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Peers {
    pub(crate) fn new(store: &Store, config: &Config) -> Self {
        let ttl_ms = (config.announce_interval * EXPIRY_INTERVALS).as_millis() as u64;
        match store.shared() {
            Some(redis) => Self::Shared {
                redis: redis.clone(),
                limits: SwarmLimits {
                    per_content: MAX_PEERS_PER_CONTENT,
                    per_host: MAX_PEERS_PER_HOST,
                    ttl_ms,
                    eldest: ELDEST_PER_ANSWER,
                },
                rate: config.rate_limit,
                warned: Mutex::new(None),
            },
            None => Self::Local {
                tracker: Mutex::new(Tracker::new(TrackerLimits {
                    per_content: MAX_PEERS_PER_CONTENT,
                    per_host: MAX_PEERS_PER_HOST,
                    total: MAX_PEERS_TOTAL,
                    ttl_ms,
                })),
                limiter: Mutex::new(RateLimiter::new(config.rate_limit, MAX_RATE_LIMITED_IPS)),
                rng: Box::new(Mutex::new(rand::rngs::StdRng::from_os_rng())),
            },
        }
    }

    /// Whether `ip` may make a request now. With the shared store down, requests are let
    /// through: the limit protects the gateway, and an outage should not also lock everyone out.
    pub(crate) async fn allow(&self, ip: IpAddr) -> bool {
        match self {
            Self::Local { limiter, .. } => lock(limiter).allow(ip, now_ms()),
            Self::Shared {
                redis,
                rate,
                warned,
                ..
            } => {
                if *rate == 0 {
                    return true;
                }
                let rate = f64::from(*rate);
                match redis.allow(&ip.to_string(), rate, rate * 4.0).await {
                    Ok(allowed) => allowed,
                    Err(e) => {
                        warn_once(warned, &e);
                        true
                    }
                }
            }
        }
    }

    /// Records an announce; answers up to `max` other peers and the announcer's own age.
    pub(crate) async fn announce(
        &self,
        a: Announce<'_>,
        max: usize,
    ) -> Result<(Vec<PeerInfo>, Option<u64>), StoreError> {
        match self {
            Self::Local { tracker, rng, .. } => {
                let mut rng = lock(rng);
                let mut tracker = lock(tracker);
                let now = now_ms();
                let peers = tracker.announce(
                    now, a.root, a.addr, a.peer_id, a.have, a.event, max, &mut *rng,
                );
                Ok((peers, tracker.age_of(&a.root, a.addr, now)))
            }
            Self::Shared {
                redis,
                limits,
                warned,
                ..
            } => {
                let host = host_key(a.addr);
                let answer = redis
                    .announce(
                        a.root, a.addr, host, a.peer_id, a.have, a.event, max, *limits,
                    )
                    .await;
                match &answer {
                    Err(e) => warn_once(warned, e),
                    Ok(_) => recovered(warned),
                }
                answer
            }
        }
    }

    /// Peers and swarms recorded.
    pub(crate) async fn counts(&self) -> Result<(u64, u64), StoreError> {
        match self {
            Self::Local { tracker, .. } => {
                let t = lock(tracker);
                Ok((t.peers() as u64, t.swarms() as u64))
            }
            Self::Shared { redis, .. } => redis.swarm_counts().await,
        }
    }

    /// Drops expired peers (the shared store's swarms expire on their own).
    pub(crate) fn expire(&self) {
        if let Self::Local { tracker, .. } = self {
            lock(tracker).expire(now_ms());
        }
    }
}

fn warn_once(warned: &Mutex<Option<Instant>>, e: &StoreError) {
    let mut w = lock(warned);
    if w.is_none() {
        tracing::warn!(error = %e, "the shared store is failing: announces get 503 until it answers");
        *w = Some(Instant::now());
    }
}

fn recovered(warned: &Mutex<Option<Instant>>) {
    let mut w = lock(warned);
    if let Some(since) = w.take() {
        tracing::info!(
            seconds = since.elapsed().as_secs(),
            "the shared store answers again"
        );
    }
}
