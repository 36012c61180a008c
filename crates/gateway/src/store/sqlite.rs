//! The embedded store: SQLite (one file, transactional), for one gateway process.
//!
//! Two tables. `outboard` is keyed by root and never rewritten: a URL whose file changed gets a
//! new root and a new tree, and peers still swarming the old version keep finding theirs.
//! `content` maps each URL to its current root, with the origin's validators and when they were
//! last confirmed. An entry is written in one transaction after the whole file is hashed, so a
//! crash at any point leaves either the old entry or the new one, never half of one.

use std::path::Path;
use std::sync::{Arc, Mutex};

use alluvium_content::{ContentInfo, Hash};
use rusqlite::{params, Connection, OptionalExtension};

use super::Stored;
use crate::error::StoreError;
use crate::report::{Batch, Stored as Report, Sums};

/// The SQLite store. Cheap to clone; calls run on the blocking pool.
#[derive(Clone)]
pub(crate) struct Sqlite {
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS outboard (
    root BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    tree BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS report_entries (
    station TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    url TEXT NOT NULL,
    origin_bytes INTEGER NOT NULL,
    peer_bytes INTEGER NOT NULL,
    silence_ms INTEGER NOT NULL,
    PRIMARY KEY (station, start_ms, url)
);
CREATE TABLE IF NOT EXISTS report_minutes (
    station TEXT NOT NULL,
    minute_ms INTEGER NOT NULL,
    listeners INTEGER NOT NULL,
    PRIMARY KEY (station, minute_ms)
);
CREATE TABLE IF NOT EXISTS content (
    url TEXT PRIMARY KEY,
    root BLOB NOT NULL REFERENCES outboard(root),
    size INTEGER NOT NULL,
    etag TEXT,
    last_modified TEXT,
    checked_at_ms INTEGER NOT NULL
);
";

impl Sqlite {
    /// Opens (creating if needed) the database at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let open = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open)?;
        conn.execute_batch(SCHEMA).map_err(open)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A panic elsewhere while holding the lock leaves a connection that SQLite itself
            // keeps consistent (transactions roll back), so the poisoned guard is still usable.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|_| StoreError::Task)?
    }

    /// The current entry for `url`.
    pub(crate) async fn get(&self, url: &str) -> Result<Option<Stored>, StoreError> {
        let url = url.to_string();
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT root, size, etag, last_modified, checked_at_ms FROM content WHERE url = ?1",
                    params![url],
                    |r| {
                        Ok((
                            r.get::<_, Vec<u8>>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()?;
            let Some((root, size, etag, last_modified, checked_at_ms)) = row else {
                return Ok(None);
            };
            let root: [u8; 32] = root
                .try_into()
                .map_err(|_| StoreError::Damaged(url.clone()))?;
            let size = u64::try_from(size).map_err(|_| StoreError::Damaged(url.clone()))?;
            Ok(Some(Stored {
                info: ContentInfo::new(url, size, Hash(root), etag, last_modified),
                checked_at_ms,
            }))
        })
        .await
    }

    /// The hash tree of `root`, with the size it was made for.
    pub(crate) async fn outboard(&self, root: Hash) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT size, tree FROM outboard WHERE root = ?1",
                    params![&root.0[..]],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
                )
                .optional()?;
            row.map(|(size, tree)| {
                u64::try_from(size)
                    .map(|s| (s, tree))
                    .map_err(|_| StoreError::Damaged(root.to_hex()))
            })
            .transpose()
        })
        .await
    }

    /// Records a freshly hashed file: its tree (kept if already there) and the URL's entry,
    /// in one transaction.
    pub(crate) async fn put(
        &self,
        info: ContentInfo,
        tree: Vec<u8>,
        checked_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let size = i64::try_from(info.size).map_err(|_| StoreError::Damaged(info.url.clone()))?;
            tx.execute(
                "INSERT OR IGNORE INTO outboard (root, size, tree) VALUES (?1, ?2, ?3)",
                params![&info.blake3.0[..], size, tree],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO content (url, root, size, etag, last_modified, checked_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    info.url,
                    &info.blake3.0[..],
                    size,
                    info.etag,
                    info.last_modified,
                    checked_at_ms
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The origin confirmed the entry for `url` is still current.
    pub(crate) async fn touch(&self, url: &str, checked_at_ms: i64) -> Result<(), StoreError> {
        let url = url.to_string();
        self.with(move |c| {
            c.execute(
                "UPDATE content SET checked_at_ms = ?2 WHERE url = ?1",
                params![url, checked_at_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// One process counts all of a minute's listeners: the set it passes is the minute's
    /// whole count so far, and a restart mid-minute keeps the larger.
    pub(crate) async fn add_report(
        &self,
        batch: &Batch,
        keep_after_ms: i64,
    ) -> Result<(), StoreError> {
        let entries: Vec<(String, i64, String, Sums)> = batch
            .entries
            .iter()
            .map(|(st, start, url, sums)| (st.to_string(), *start, url.clone(), *sums))
            .collect();
        let minutes: Vec<(String, i64, i64)> = batch
            .listeners
            .iter()
            .map(|(st, minute, ids)| (st.to_string(), *minute, ids.len() as i64))
            .collect();
        self.with(move |c| {
            let tx = c.transaction()?;
            {
                let mut add = tx.prepare_cached(
                    "INSERT INTO report_entries (station, start_ms, url, origin_bytes, peer_bytes, silence_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (station, start_ms, url) DO UPDATE SET
                       origin_bytes = origin_bytes + excluded.origin_bytes,
                       peer_bytes = peer_bytes + excluded.peer_bytes,
                       silence_ms = silence_ms + excluded.silence_ms",
                )?;
                for (st, start, url, s) in &entries {
                    add.execute(params![
                        st,
                        start,
                        url,
                        s.origin_bytes as i64,
                        s.peer_bytes as i64,
                        s.silence_ms as i64
                    ])?;
                }
                let mut count = tx.prepare_cached(
                    "INSERT INTO report_minutes (station, minute_ms, listeners) VALUES (?1, ?2, ?3)
                     ON CONFLICT (station, minute_ms) DO UPDATE SET
                       listeners = MAX(listeners, excluded.listeners)",
                )?;
                for (st, minute, n) in &minutes {
                    count.execute(params![st, minute, n])?;
                }
            }
            tx.execute("DELETE FROM report_entries WHERE start_ms < ?1", params![keep_after_ms])?;
            tx.execute("DELETE FROM report_minutes WHERE minute_ms < ?1", params![keep_after_ms])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn report(
        &self,
        station: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Report, StoreError> {
        let station = station.to_string();
        self.with(move |c| {
            let mut out = Report::default();
            let mut q = c.prepare_cached(
                "SELECT minute_ms, listeners FROM report_minutes
                 WHERE station = ?1 AND minute_ms >= ?2 AND minute_ms < ?3 ORDER BY minute_ms",
            )?;
            for row in q.query_map(params![station, from_ms, to_ms], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })? {
                let (minute, n) = row?;
                out.listeners.push((minute, n.max(0) as u64));
            }
            let mut q = c.prepare_cached(
                "SELECT start_ms, url, origin_bytes, peer_bytes, silence_ms FROM report_entries
                 WHERE station = ?1 AND start_ms >= ?2 AND start_ms < ?3 ORDER BY start_ms, url",
            )?;
            for row in q.query_map(params![station, from_ms, to_ms], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })? {
                let (start, url, o, p, s) = row?;
                let sums = Sums {
                    origin_bytes: o.max(0) as u64,
                    peer_bytes: p.max(0) as u64,
                    silence_ms: s.max(0) as u64,
                };
                out.entries.push((start, url, sums));
            }
            Ok(out)
        })
        .await
    }

    /// How many URLs and trees are stored (for /metrics).
    pub(crate) async fn counts(&self) -> Result<(u64, u64), StoreError> {
        self.with(|c| {
            let urls: i64 = c.query_row("SELECT COUNT(*) FROM content", [], |r| r.get(0))?;
            let trees: i64 = c.query_row("SELECT COUNT(*) FROM outboard", [], |r| r.get(0))?;
            Ok((urls.max(0) as u64, trees.max(0) as u64))
        })
        .await
    }
}
