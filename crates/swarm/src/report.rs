//! What this listener tells its station's broadcaster (docs/design.md section 9): per entry,
//! bytes from the origin and from peers, and the silence its players played while the entry
//! was on air. Counted as it happens; each announce takes what is not yet told and gives it
//! back if the announce fails, so nothing is told twice or lost to an outage.

use std::collections::HashMap;
use std::sync::Mutex;

use alluvium_content::Hash;
use alluvium_gateway_client::wire::{EntryReport, MAX_REPORTS_PER_ANNOUNCE};

/// Entries remembered (the one on air, those ahead, a few just past): bounds memory if the
/// gateway stays away for a long time.
const MAX_ENTRIES: usize = 64;

#[derive(Debug, Clone)]
struct Entry {
    url: String,
    start_ms: i64,
    end_ms: i64,
    root: Hash,
    origin_bytes: u64,
    peer_bytes: u64,
    silence_ms: f64,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.origin_bytes == 0 && self.peer_bytes == 0 && self.silence_ms < 1.0
    }
}

#[derive(Debug, Default)]
struct State {
    station: Option<String>,
    /// By (start, url): a file aired twice is two entries.
    entries: HashMap<(i64, String), Entry>,
}

/// A listener's untold counters. One per node.
#[derive(Debug, Default)]
pub struct Report {
    state: Mutex<State>,
}

impl Report {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The station (playlist URL) reports are for.
    pub fn set_station(&self, url: &str) {
        self.state().station = Some(url.to_string());
    }

    /// An entry being fetched or played: `root`'s content airs from `start_ms` to `end_ms`.
    pub fn entry(&self, root: Hash, url: &str, start_ms: i64, end_ms: i64) {
        let mut s = self.state();
        if s.entries.len() >= MAX_ENTRIES && !s.entries.contains_key(&(start_ms, url.to_string())) {
            // The oldest goes, told or not.
            if let Some(oldest) = s.entries.keys().min().cloned() {
                s.entries.remove(&oldest);
            }
        }
        s.entries
            .entry((start_ms, url.to_string()))
            .or_insert_with(|| Entry {
                url: url.to_string(),
                start_ms,
                end_ms,
                root,
                origin_bytes: 0,
                peer_bytes: 0,
                silence_ms: 0.0,
            });
    }

    /// `bytes` of `root` arrived at `now_ms`, from the origin or from a peer. Counted for the
    /// airing of that content that is on air or comes next (the one being fetched for).
    pub fn bytes(&self, root: Hash, from_origin: bool, bytes: u64, now_ms: i64) {
        let mut s = self.state();
        let Some(e) = s
            .entries
            .values_mut()
            .filter(|e| e.root == root)
            .min_by_key(|e| (e.end_ms <= now_ms, e.start_ms))
        else {
            return;
        };
        if from_origin {
            e.origin_bytes += bytes;
        } else {
            e.peer_bytes += bytes;
        }
    }

    /// Players played `seconds` of silence at `heard_ms` on the schedule.
    pub fn silence(&self, heard_ms: i64, seconds: f64) {
        let mut s = self.state();
        if let Some(e) = s
            .entries
            .values_mut()
            .find(|e| e.start_ms <= heard_ms && heard_ms < e.end_ms)
        {
            e.silence_ms += seconds * 1000.0;
        }
    }

    /// What is untold, for an announce: the station and up to 8 entries' counters, which are
    /// zeroed here (`give_back` if the announce fails). Entries over before `now_ms` by more
    /// than a minute and fully told are forgotten.
    pub fn take(&self, now_ms: i64) -> (Option<String>, Vec<EntryReport>) {
        let mut s = self.state();
        s.entries
            .retain(|_, e| !(e.is_empty() && e.end_ms + 60_000 < now_ms));
        let mut told = Vec::new();
        let mut keys: Vec<(i64, String)> = s
            .entries
            .iter()
            .filter(|(_, e)| !e.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort_unstable();
        for key in keys.into_iter().take(MAX_REPORTS_PER_ANNOUNCE) {
            if let Some(e) = s.entries.get_mut(&key) {
                let whole_ms = e.silence_ms.floor();
                told.push(EntryReport {
                    url: e.url.clone(),
                    start_ms: e.start_ms,
                    origin_bytes: std::mem::take(&mut e.origin_bytes),
                    peer_bytes: std::mem::take(&mut e.peer_bytes),
                    silence_ms: whole_ms as u64,
                });
                e.silence_ms -= whole_ms;
            }
        }
        (s.station.clone(), told)
    }

    /// Puts back what an announce that failed was to tell.
    pub fn give_back(&self, told: Vec<EntryReport>) {
        let mut s = self.state();
        for r in told {
            if let Some(e) = s.entries.get_mut(&(r.start_ms, r.url)) {
                e.origin_bytes += r.origin_bytes;
                e.peer_bytes += r.peer_bytes;
                e.silence_ms += r.silence_ms as f64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_told_once_and_given_back_when_an_announce_fails() {
        let r = Report::default();
        r.set_station("http://radio.example/s.rss");
        let a = Hash::from(blake3::hash(b"a"));
        let b = Hash::from(blake3::hash(b"b"));
        r.entry(a, "http://o/a.mp3", 0, 60_000);
        r.entry(b, "http://o/b.mp3", 60_000, 120_000);
        r.bytes(a, true, 100, 0);
        r.bytes(a, false, 900, 0);
        r.bytes(b, false, 5, 0);
        r.silence(30_000, 1.25);
        r.silence(200_000, 9.0); // dead air between entries: no entry's
        let (station, told) = r.take(30_000);
        assert_eq!(station.as_deref(), Some("http://radio.example/s.rss"));
        assert_eq!(told.len(), 2);
        assert_eq!(
            (told[0].origin_bytes, told[0].peer_bytes, told[0].silence_ms),
            (100, 900, 1250)
        );
        assert!(r.take(30_000).1.is_empty(), "told once");
        r.give_back(told);
        let (_, again) = r.take(30_000);
        assert_eq!(again.len(), 2, "the failed announce's counters come back");
        // Past and told: forgotten.
        assert!(r.take(500_000).1.is_empty());
        r.bytes(a, true, 1, 500_000);
        assert!(
            r.take(500_000).1.is_empty(),
            "forgotten entries take nothing"
        );
    }

    #[test]
    fn a_file_aired_twice_counts_for_its_next_airing() {
        let r = Report::default();
        let a = Hash::from(blake3::hash(b"a"));
        r.entry(a, "http://o/a.mp3", 120_000, 180_000);
        r.entry(a, "http://o/a.mp3", 0, 60_000);
        r.bytes(a, true, 7, 0);
        r.bytes(a, true, 3, 70_000);
        let (_, told) = r.take(70_000);
        assert_eq!((told[0].start_ms, told[0].origin_bytes), (0, 7));
        assert_eq!((told[1].start_ms, told[1].origin_bytes), (120_000, 3));
    }
}
