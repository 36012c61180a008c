//! The broadcaster's report (docs/design.md section 9): listeners' per-entry counters, summed
//! per station and entry, and distinct listeners per minute, counted by peer id (opaque and
//! random: no listener's address is kept).
//!
//! Announces only add to sums held here; a flush every few seconds writes them to the store
//! in one batch (one transaction, or one pipeline), so reports cost an announce a map update,
//! and several gateways' flushes add up in a shared store. A flush that fails is retried
//! with the next one's.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::error::StoreError;
use crate::store::Store;
use crate::wire::{EntryReport, EntryTotals, ListenersAt, Report, ReportTotals};

/// How often sums are written to the store.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// How long the store keeps a station's report.
pub(crate) const KEEP: Duration = Duration::from_secs(8 * 24 * 3600);
/// Stations whose reports one gateway takes between flushes, and labels its metrics carry:
/// bounds memory and metric cardinality against announces naming made-up stations.
const MAX_STATIONS: usize = 1000;
/// Listeners counted per station and minute (past it, later ones are not).
const MAX_LISTENERS_PER_MINUTE: usize = 200_000;
/// Entries whose sums wait for a flush (past it, reports of new entries are dropped): bounds
/// memory while the store is down and someone reports made-up entries.
const MAX_PENDING_ENTRIES: usize = 100_000;
/// How far past now a report looks for entries (listeners fetch up to an entry ahead).
const AHEAD: Duration = Duration::from_secs(6 * 3600);
/// The longest window a report covers.
pub(crate) const MAX_HOURS: u32 = 8 * 24;

/// One entry's sums.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sums {
    pub(crate) origin_bytes: u64,
    pub(crate) peer_bytes: u64,
    pub(crate) silence_ms: u64,
}

/// What a flush writes: sums to add per (station, start, url), and per (station, minute)
/// every listener this gateway has seen in that minute so far (the store keeps the union).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) entries: Vec<(Arc<str>, i64, String, Sums)>,
    pub(crate) listeners: Vec<(Arc<str>, i64, Vec<String>)>,
}

/// A station's report as stored: listeners per minute and sums per entry in a window.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    pub(crate) listeners: Vec<(i64, u64)>,
    pub(crate) entries: Vec<(i64, String, Sums)>,
}

#[derive(Default)]
struct Pending {
    entries: HashMap<(Arc<str>, i64, String), Sums>,
    /// Peer ids seen per (station, minute): this minute's and the last.
    listeners: HashMap<(Arc<str>, i64), HashSet<String>>,
    stations: HashMap<String, Arc<str>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StationLabel {
    pub(crate) station: String,
}

/// Per-station metrics (registered in the gateway's registry).
#[derive(Clone, Default)]
pub(crate) struct StationMetrics {
    pub(crate) origin_bytes: Family<StationLabel, Counter>,
    pub(crate) peer_bytes: Family<StationLabel, Counter>,
    pub(crate) silence_seconds: Family<StationLabel, Counter<f64, std::sync::atomic::AtomicU64>>,
    pub(crate) listeners: Family<StationLabel, Gauge>,
}

pub(crate) struct Reports {
    pending: Mutex<Pending>,
    store: Store,
    metrics: StationMetrics,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn minute_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(60_000)
}

impl Reports {
    pub(crate) fn new(store: Store, metrics: StationMetrics) -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            store,
            metrics,
        }
    }

    /// Takes one announce's report: `peer_id` listens to `station` now, and heard `entries`.
    pub(crate) fn record(
        &self,
        station: &str,
        peer_id: &str,
        now_ms: i64,
        entries: &[EntryReport],
    ) {
        let mut p = lock(&self.pending);
        let station: Arc<str> = match p.stations.get(station) {
            Some(s) => s.clone(),
            None if p.stations.len() < MAX_STATIONS => {
                let s: Arc<str> = Arc::from(station);
                p.stations.insert(station.to_string(), s.clone());
                s
            }
            None => return,
        };
        let seen = p
            .listeners
            .entry((station.clone(), minute_of(now_ms)))
            .or_default();
        if seen.len() < MAX_LISTENERS_PER_MINUTE {
            seen.insert(peer_id.to_string());
        }
        let label = StationLabel {
            station: station.to_string(),
        };
        for e in entries {
            let key = (station.clone(), e.start_ms, e.url.clone());
            if p.entries.len() >= MAX_PENDING_ENTRIES && !p.entries.contains_key(&key) {
                continue;
            }
            let sums = p.entries.entry(key).or_default();
            sums.origin_bytes = sums.origin_bytes.saturating_add(e.origin_bytes);
            sums.peer_bytes = sums.peer_bytes.saturating_add(e.peer_bytes);
            sums.silence_ms = sums.silence_ms.saturating_add(e.silence_ms);
            self.metrics
                .origin_bytes
                .get_or_create(&label)
                .inc_by(e.origin_bytes);
            self.metrics
                .peer_bytes
                .get_or_create(&label)
                .inc_by(e.peer_bytes);
            self.metrics
                .silence_seconds
                .get_or_create(&label)
                .inc_by(e.silence_ms as f64 / 1000.0);
        }
    }

    /// Writes what was reported since the last flush; on failure it stays for the next.
    pub(crate) async fn flush(&self, now_ms: i64) -> Result<(), StoreError> {
        let batch = {
            let mut p = lock(&self.pending);
            let current = minute_of(now_ms);
            // Listener sets stay while their minute can still get announces.
            p.listeners
                .retain(|(_, minute), _| *minute >= current - 60_000);
            Batch {
                entries: p
                    .entries
                    .iter()
                    .map(|((st, start, url), sums)| (st.clone(), *start, url.clone(), *sums))
                    .collect(),
                listeners: p
                    .listeners
                    .iter()
                    .map(|((st, minute), ids)| (st.clone(), *minute, ids.iter().cloned().collect()))
                    .collect(),
            }
        };
        if batch.entries.is_empty() && batch.listeners.is_empty() {
            return Ok(());
        }
        self.store
            .add_report(&batch, now_ms - KEEP.as_millis() as i64)
            .await?;
        let mut p = lock(&self.pending);
        // Only what was written is taken away: announces since added to the same sums.
        for (st, start, url, written) in batch.entries {
            let key = (st, start, url);
            if let Some(sums) = p.entries.get_mut(&key) {
                sums.origin_bytes -= written.origin_bytes.min(sums.origin_bytes);
                sums.peer_bytes -= written.peer_bytes.min(sums.peer_bytes);
                sums.silence_ms -= written.silence_ms.min(sums.silence_ms);
                if *sums == Sums::default() {
                    p.entries.remove(&key);
                }
            }
        }
        // Stations with nothing left pending are let go (their Arc re-made when they return).
        let live: HashSet<Arc<str>> = p
            .entries
            .keys()
            .map(|(s, _, _)| s.clone())
            .chain(p.listeners.keys().map(|(s, _)| s.clone()))
            .collect();
        p.stations.retain(|_, s| live.contains(s));
        Ok(())
    }

    /// Sets each station's listeners gauge to its last whole minute, as the store counts it.
    pub(crate) async fn update_gauges(&self, now_ms: i64) {
        let stations: Vec<Arc<str>> = lock(&self.pending).stations.values().cloned().collect();
        let minute = minute_of(now_ms) - 60_000;
        for station in stations {
            if let Ok(stored) = self.store.report(&station, minute, minute + 60_000).await {
                let n = stored.listeners.first().map_or(0, |l| l.1);
                let label = StationLabel {
                    station: station.to_string(),
                };
                self.metrics.listeners.get_or_create(&label).set(n as i64);
            }
        }
    }

    /// The report of `station` for the `hours` before `now_ms` (sums not yet flushed are
    /// written first, so it is current).
    pub(crate) async fn report(
        &self,
        station: &str,
        now_ms: i64,
        hours: u32,
        titles: &HashMap<String, String>,
    ) -> Result<Report, StoreError> {
        self.flush(now_ms).await?;
        let from_ms = now_ms - i64::from(hours.clamp(1, MAX_HOURS)) * 3_600_000;
        // Entries still to come count too: listeners fetch them ahead of their air time.
        let stored = self
            .store
            .report(station, from_ms, now_ms + AHEAD.as_millis() as i64)
            .await?;
        let mut entries = Vec::with_capacity(stored.entries.len());
        for (start_ms, url, sums) in stored.entries {
            let size = self
                .store
                .get(&url)
                .await
                .ok()
                .flatten()
                .map(|s| s.info.size);
            entries.push(EntryTotals {
                title: titles.get(&url).cloned(),
                url,
                start_ms,
                origin_bytes: sums.origin_bytes,
                peer_bytes: sums.peer_bytes,
                silence_s: sums.silence_ms as f64 / 1000.0,
                size,
            });
        }
        entries.sort_by(|a, b| (a.start_ms, &a.url).cmp(&(b.start_ms, &b.url)));
        let listeners: Vec<ListenersAt> = stored
            .listeners
            .into_iter()
            .map(|(minute_ms, listeners)| ListenersAt {
                minute_ms,
                listeners,
            })
            .collect();
        Ok(Report {
            station: station.to_string(),
            from_ms,
            to_ms: now_ms,
            totals: ReportTotals {
                origin_bytes: entries.iter().map(|e| e.origin_bytes).sum(),
                peer_bytes: entries.iter().map(|e| e.peer_bytes).sum(),
                silence_s: entries.iter().map(|e| e.silence_s).sum(),
                peak_listeners: listeners.iter().map(|l| l.listeners).max().unwrap_or(0),
            },
            listeners,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(url: &str, start_ms: i64, o: u64, p: u64, s: u64) -> EntryReport {
        EntryReport {
            url: url.into(),
            start_ms,
            origin_bytes: o,
            peer_bytes: p,
            silence_ms: s,
        }
    }

    #[tokio::test]
    async fn reports_add_up_per_entry_and_listeners_count_once_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.sqlite")).unwrap();
        let reports = Reports::new(store, StationMetrics::default());
        let st = "http://radio.example/s.rss";
        let t0 = 1_800_000_000_000;
        reports.record(st, "a", t0, &[entry("http://o/1.mp3", t0, 100, 900, 0)]);
        reports.record(
            st,
            "b",
            t0 + 1000,
            &[entry("http://o/1.mp3", t0, 50, 50, 1500)],
        );
        reports.record(st, "a", t0 + 2000, &[]);
        reports.flush(t0 + 3000).await.unwrap();
        // The same listener again in the same minute, after a flush: still one.
        reports.record(st, "a", t0 + 4000, &[entry("http://o/1.mp3", t0, 1, 0, 0)]);
        reports.record(
            st,
            "a",
            t0 + 61_000,
            &[entry("http://o/2.mp3", t0 + 60_000, 7, 3, 0)],
        );
        reports.record(
            "http://other.example/s.rss",
            "z",
            t0,
            &[entry("http://o/9.mp3", t0, 1, 1, 1)],
        );
        let r = reports
            .report(st, t0 + 62_000, 1, &HashMap::new())
            .await
            .unwrap();
        assert_eq!(
            r.listeners.iter().map(|l| l.listeners).collect::<Vec<_>>(),
            [2, 1]
        );
        assert_eq!(r.entries.len(), 2);
        assert_eq!(
            (
                r.entries[0].origin_bytes,
                r.entries[0].peer_bytes,
                r.entries[0].silence_s
            ),
            (151, 950, 1.5)
        );
        assert_eq!(r.totals.origin_bytes, 158);
        assert_eq!(r.totals.peak_listeners, 2);
    }
}
