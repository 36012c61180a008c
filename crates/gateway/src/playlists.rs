//! `GET /v1/playlist?url=URL`: a station's playlist, read from its web server once per
//! freshness window however many listeners ask, and handed out with its own validators.
//!
//! A playlist is small next to its media but is read by every listener at every start and
//! refresh; from a thin origin uplink (the case Alluvium is for) that costs each listener's
//! start seconds and the origin a copy per listener. The gateway is already trusted with the
//! stations' hashes, so it may also pass on their schedules. Only documents that parse as
//! playlists are served: the gateway is not an open proxy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{header, StatusCode};
use url::Url;

use crate::config::Config;
use crate::error::FetchError;
use crate::fetch::{check_url, request_error};
use crate::store::redis::{Redis, SharedPlaylist};

/// Largest playlist read (the parser's own limits are lower).
pub(crate) const MAX_PLAYLIST_BYTES: usize = 16 * 1024 * 1024;
/// Playlists kept at once; the least recently read goes first.
const MAX_PLAYLISTS: usize = 1024;
/// Bytes of playlists kept at once (any client may name URLs): past it, the least recently
/// read go first.
const MAX_PLAYLIST_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// One playlist as last read.
#[derive(Debug, Clone)]
pub(crate) struct Playlist {
    pub(crate) body: Bytes,
    /// `"b3-…"`: of the body, for listeners' conditional requests.
    pub(crate) etag: String,
}

#[derive(Default)]
struct Slot {
    current: Option<Playlist>,
    origin_etag: Option<String>,
    origin_last_modified: Option<String>,
    checked: Option<Instant>,
}

/// The playlists the gateway has read.
pub(crate) struct Playlists {
    client: reqwest::Client,
    config: Config,
    fresh: Duration,
    /// With gateways sharing a store, one read per freshness window across all of them.
    shared: Option<Redis>,
    slots: Mutex<HashMap<String, Cached>>,
}

/// A URL's slot, when it was last asked for, and the bytes its copy holds.
struct Cached {
    slot: Shared,
    used: Instant,
    bytes: usize,
}

/// Forgets the least recently asked-for playlists other than `keep` until those kept hold
/// at most `budget` bytes.
fn make_room(slots: &mut HashMap<String, Cached>, budget: usize, keep: &str) {
    let mut total: usize = slots.values().map(|c| c.bytes).sum();
    while total > budget {
        let Some(oldest) = slots
            .iter()
            .filter(|(url, _)| url.as_str() != keep)
            .min_by_key(|(_, c)| c.used)
            .map(|(url, _)| url.clone())
        else {
            return;
        };
        if let Some(gone) = slots.remove(&oldest) {
            total -= gone.bytes;
        }
    }
}

fn playlist_of(copy: &SharedPlaylist) -> Playlist {
    Playlist {
        body: Bytes::from(copy.body.clone()),
        etag: copy.etag.clone(),
    }
}

/// One URL's slot, locked while it is read from its server (so one read serves all).
type Shared = Arc<tokio::sync::Mutex<Slot>>;

impl Playlists {
    pub(crate) fn new(
        client: reqwest::Client,
        config: Config,
        fresh: Duration,
        shared: Option<Redis>,
    ) -> Self {
        Self {
            client,
            config,
            fresh,
            shared,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The playlist at `url`, read again from its server when the copy is older than the
    /// freshness window (one read at a time per URL: the others wait for it).
    pub(crate) async fn get(&self, url: &str) -> Result<Playlist, FetchError> {
        let parsed = Url::parse(url).map_err(|e| FetchError::BadUrl(format!("{url}: {e}")))?;
        check_url(&self.config, &parsed)?;
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if !slots.contains_key(url) && slots.len() >= MAX_PLAYLISTS {
                if let Some(oldest) = slots
                    .iter()
                    .min_by_key(|(_, c)| c.used)
                    .map(|(k, _)| k.clone())
                {
                    slots.remove(&oldest);
                }
            }
            let entry = slots.entry(url.to_string()).or_insert_with(|| Cached {
                slot: Arc::default(),
                used: Instant::now(),
                bytes: 0,
            });
            entry.used = Instant::now();
            entry.slot.clone()
        };
        let mut slot = slot.lock().await;
        if let (Some(current), Some(checked)) = (&slot.current, slot.checked) {
            if checked.elapsed() < self.fresh {
                return Ok(current.clone());
            }
        }
        let from_shared = match &self.shared {
            Some(redis) => self.get_shared(redis, url, &parsed).await,
            None => Ok(None),
        };
        match from_shared {
            Ok(Some((playlist, fresh_for))) => {
                slot.current = Some(playlist);
                slot.checked = Instant::now().checked_sub(self.fresh.saturating_sub(fresh_for));
            }
            Err(e) if slot.current.is_some() => {
                tracing::warn!(%url, error = %e, "keeping the last good playlist");
                slot.checked = Some(Instant::now());
            }
            Err(e) => return Err(e),
            Ok(None) => self.get_here(url, &parsed, &mut slot).await?,
        }
        let bytes = slot.current.as_ref().map_or(0, |p| p.body.len());
        {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(cached) = slots.get_mut(url) {
                cached.bytes = bytes;
            }
            make_room(&mut slots, MAX_PLAYLIST_CACHE_BYTES, url);
        }
        slot.current.clone().ok_or(FetchError::OriginStatus {
            url: url.to_string(),
            status: 304,
        })
    }

    /// Reads the playlist into this gateway's own slot.
    async fn get_here(&self, url: &str, parsed: &Url, slot: &mut Slot) -> Result<(), FetchError> {
        match self.read(url, parsed, slot).await {
            Ok(Some((playlist, etag, last_modified))) => {
                slot.current = Some(playlist);
                slot.origin_etag = etag;
                slot.origin_last_modified = last_modified;
            }
            Ok(None) => {} // 304: unchanged
            // A server briefly down: the last good copy stands until it answers again.
            Err(e) if slot.current.is_some() => {
                tracing::warn!(%url, error = %e, "keeping the last good playlist");
            }
            Err(e) => return Err(e),
        }
        slot.checked = Some(Instant::now());
        Ok(())
    }

    /// The playlist as the gateways sharing a store hold it, read from its server by one of
    /// them when stale (the others wait for that read): the copy and how long it stays fresh.
    /// `None` when the store fails (then each gateway reads for itself).
    async fn get_shared(
        &self,
        redis: &Redis,
        url: &str,
        parsed: &Url,
    ) -> Result<Option<(Playlist, Duration)>, FetchError> {
        let lock = format!("playlist:{url}");
        let give_up = Instant::now() + self.config.idle_timeout * 2;
        loop {
            let (fresh_ms, copy) = match redis.playlist(url).await {
                Ok(got) => got,
                Err(e) => {
                    tracing::warn!(%url, error = %e, "shared store failing: reading the playlist here");
                    return Ok(None);
                }
            };
            if let Some(copy) = copy.as_ref().filter(|_| fresh_ms > 0) {
                return Ok(Some((playlist_of(copy), Duration::from_millis(fresh_ms))));
            }
            let read = self.read_shared(redis, url, parsed, copy);
            match redis
                .while_locked(
                    &lock,
                    self.config.idle_timeout + Duration::from_secs(5),
                    read,
                )
                .await
            {
                Ok(Some(read)) => return read.map(|p| Some((p, self.fresh))),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%url, error = %e, "shared store failing: reading the playlist here");
                    return Ok(None);
                }
            }
            if Instant::now() > give_up {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reads the playlist (conditionally, from the shared copy's validators) and records it
    /// in the shared store.
    async fn read_shared(
        &self,
        redis: &Redis,
        url: &str,
        parsed: &Url,
        copy: Option<SharedPlaylist>,
    ) -> Result<Playlist, FetchError> {
        let held = Slot {
            current: copy.as_ref().map(playlist_of),
            origin_etag: copy.as_ref().and_then(|c| c.origin_etag.clone()),
            origin_last_modified: copy.as_ref().and_then(|c| c.origin_last_modified.clone()),
            checked: None,
        };
        let now = match (self.read(url, parsed, &held).await, copy) {
            (Ok(Some((p, origin_etag, origin_last_modified))), _) => SharedPlaylist {
                body: p.body.to_vec(),
                etag: p.etag,
                origin_etag,
                origin_last_modified,
            },
            (Ok(None), Some(copy)) => copy,
            (Err(e), Some(copy)) => {
                tracing::warn!(%url, error = %e, "keeping the last good playlist");
                copy
            }
            (Err(e), None) => return Err(e),
            (Ok(None), None) => {
                return Err(FetchError::OriginStatus {
                    url: url.to_string(),
                    status: 304,
                })
            }
        };
        if let Err(e) = redis.put_playlist(url, &now, self.fresh).await {
            tracing::warn!(%url, error = %e, "could not share the playlist read");
        }
        Ok(playlist_of(&now))
    }

    /// Reads the playlist (conditionally when a copy is held): `None` when unchanged.
    async fn read(
        &self,
        url: &str,
        parsed: &Url,
        slot: &Slot,
    ) -> Result<Option<(Playlist, Option<String>, Option<String>)>, FetchError> {
        let mut request = self.client.get(parsed.clone());
        if slot.current.is_some() {
            if let Some(e) = &slot.origin_etag {
                request = request.header(header::IF_NONE_MATCH, e);
            }
            if let Some(lm) = &slot.origin_last_modified {
                request = request.header(header::IF_MODIFIED_SINCE, lm);
            }
        }
        let mut response = tokio::time::timeout(self.config.idle_timeout, request.send())
            .await
            .map_err(|_| FetchError::Timeout {
                url: url.to_string(),
                seconds: self.config.idle_timeout.as_secs(),
            })?
            .map_err(|e| request_error(url, &self.config, e))?;
        match response.status() {
            StatusCode::NOT_MODIFIED if slot.current.is_some() => return Ok(None),
            StatusCode::NOT_FOUND => {
                return Err(FetchError::OriginNotFound {
                    url: url.to_string(),
                })
            }
            s if !s.is_success() => {
                return Err(FetchError::OriginStatus {
                    url: url.to_string(),
                    status: s.as_u16(),
                })
            }
            _ => {}
        }
        let text = |h| {
            response
                .headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (etag, last_modified) = (text(header::ETAG), text(header::LAST_MODIFIED));
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| request_error(url, &self.config, e))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_PLAYLIST_BYTES {
                return Err(FetchError::TooLarge {
                    url: url.to_string(),
                    size: body.len() as u64,
                    max: MAX_PLAYLIST_BYTES as u64,
                });
            }
        }
        if let Err(e) = alluvium_playlist::parse(&body) {
            return Err(FetchError::NotAPlaylist {
                url: url.to_string(),
                reason: e.to_string(),
            });
        }
        let tag = format!("\"b3-{}\"", &blake3::hash(&body).to_hex()[..32]);
        Ok(Some((
            Playlist {
                body: Bytes::from(body),
                etag: tag,
            },
            etag,
            last_modified,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_asked_playlists_go_past_the_byte_budget() {
        let start = Instant::now();
        let mut slots: HashMap<String, Cached> = (0..10u64)
            .map(|i| {
                let cached = Cached {
                    slot: Arc::default(),
                    used: start + Duration::from_secs(i),
                    bytes: 8 << 20,
                };
                (format!("http://r.example/{i}.rss"), cached)
            })
            .collect();
        // 80 MiB held, 32 MiB allowed: the six asked for longest ago go, but the one just
        // read (the oldest here) stays.
        make_room(&mut slots, 32 << 20, "http://r.example/0.rss");
        let mut kept: Vec<&str> = slots.keys().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(
            kept,
            [
                "http://r.example/0.rss",
                "http://r.example/7.rss",
                "http://r.example/8.rss",
                "http://r.example/9.rss"
            ]
        );
        // One playlist over the budget alone is kept: it is the one being served.
        let mut one: HashMap<String, Cached> = HashMap::new();
        one.insert(
            "big".into(),
            Cached {
                slot: Arc::default(),
                used: start,
                bytes: 100 << 20,
            },
        );
        make_room(&mut one, 32 << 20, "big");
        assert_eq!(one.len(), 1);
    }
}
