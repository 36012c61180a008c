//! Where content info and hash trees live across restarts, chosen by `--store`:
//! - `sqlite:PATH` (the default): one file, for one gateway process; the tracker and the rate
//!   limit stay in that process's memory.
//! - `redis://HOST:PORT[/DB]`: shared by several gateways behind a load balancer; the tracker,
//!   the rate limit and the single-flight locks live there too ([`redis`]).
//!
//! Trees are keyed by root and never rewritten: a URL whose file changed gets a new root and
//! a new tree, and peers still swarming the old version keep finding theirs. A URL's entry
//! (its current root, the origin's validators, when they were last confirmed) is written at
//! once after the whole file is hashed, so a crash leaves the old entry or the new, never half.

pub(crate) mod redis;
mod sqlite;

use std::path::Path;

use alluvium_content::{ContentInfo, Hash};

use crate::error::StoreError;

/// A stored entry: the info and when the origin last confirmed it (Unix milliseconds).
#[derive(Debug, Clone)]
pub struct Stored {
    pub info: ContentInfo,
    pub checked_at_ms: i64,
}

/// The gateway's store. Cheap to clone.
#[derive(Clone)]
pub struct Store(Kind);

#[derive(Clone)]
enum Kind {
    Sqlite(sqlite::Sqlite),
    Redis(redis::Redis),
}

impl Store {
    /// Opens a store from a `--store` value: `sqlite:PATH` or `redis://HOST:PORT[/DB]`. Redis
    /// is connected lazily (a gateway starts while it is down), from within a Tokio runtime.
    pub fn open_spec(spec: &str) -> Result<Self, StoreError> {
        if let Some(path) = spec.strip_prefix("sqlite:").filter(|p| !p.is_empty()) {
            return Self::open(Path::new(path));
        }
        if spec.starts_with("redis://") {
            return Ok(Self(Kind::Redis(redis::Redis::open(spec)?)));
        }
        Err(StoreError::UnknownKind(spec.to_string()))
    }

    /// Opens (creating if needed) the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self(Kind::Sqlite(sqlite::Sqlite::open(path)?)))
    }

    /// The shared store, when gateways share one: where trackers, limits and locks go.
    pub(crate) fn shared(&self) -> Option<&redis::Redis> {
        match &self.0 {
            Kind::Redis(r) => Some(r),
            Kind::Sqlite(_) => None,
        }
    }

    /// Whether the store answers (for `/healthz`: a balancer stops sending to a gateway
    /// whose Redis is gone).
    pub async fn check(&self) -> Result<(), StoreError> {
        match &self.0 {
            Kind::Sqlite(_) => Ok(()),
            Kind::Redis(r) => r.ping().await,
        }
    }

    /// The current entry for `url`.
    pub async fn get(&self, url: &str) -> Result<Option<Stored>, StoreError> {
        match &self.0 {
            Kind::Sqlite(s) => s.get(url).await,
            Kind::Redis(r) => r.get(url).await,
        }
    }

    /// The hash tree of `root`, with the size it was made for.
    pub async fn outboard(&self, root: Hash) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        match &self.0 {
            Kind::Sqlite(s) => s.outboard(root).await,
            Kind::Redis(r) => r.outboard(root).await,
        }
    }

    /// Records a freshly hashed file: its tree (kept if already there) and the URL's entry.
    pub async fn put(
        &self,
        info: ContentInfo,
        tree: Vec<u8>,
        checked_at_ms: i64,
    ) -> Result<(), StoreError> {
        match &self.0 {
            Kind::Sqlite(s) => s.put(info, tree, checked_at_ms).await,
            Kind::Redis(r) => r.put(info, tree, checked_at_ms).await,
        }
    }

    /// The origin confirmed the entry for `url` is still current.
    pub async fn touch(&self, url: &str, checked_at_ms: i64) -> Result<(), StoreError> {
        match &self.0 {
            Kind::Sqlite(s) => s.touch(url, checked_at_ms).await,
            Kind::Redis(r) => r.touch(url, checked_at_ms).await,
        }
    }

    /// Adds a batch of report sums and listeners; drops what is older than `keep_after_ms`.
    pub(crate) async fn add_report(
        &self,
        batch: &crate::report::Batch,
        keep_after_ms: i64,
    ) -> Result<(), StoreError> {
        match &self.0 {
            Kind::Sqlite(s) => s.add_report(batch, keep_after_ms).await,
            Kind::Redis(r) => r.add_report(batch, keep_after_ms).await,
        }
    }

    /// A station's listeners per minute and entries starting in `[from_ms, to_ms)`.
    pub(crate) async fn report(
        &self,
        station: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<crate::report::Stored, StoreError> {
        match &self.0 {
            Kind::Sqlite(s) => s.report(station, from_ms, to_ms).await,
            Kind::Redis(r) => r.report(station, from_ms, to_ms).await,
        }
    }

    /// How many URLs and trees are stored (for /metrics).
    pub async fn counts(&self) -> Result<(u64, u64), StoreError> {
        match &self.0 {
            Kind::Sqlite(s) => s.counts().await,
            Kind::Redis(r) => r.counts().await,
        }
    }
}
