//! Following the playlist: the station loop and its entry jobs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use alluvium_content::{Hash, PART_SIZE};
use alluvium_gateway_client::Client;
use alluvium_playlist::{Parsed, Slot, MAX_PLAYLIST_BYTES};
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header;
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn, Instrument};

use crate::clock::ClockOffset;
use alluvium_swarm::download::{
    announce, download, find_tree, Announcing, DownloadConfig, TreeFrom,
};
use alluvium_swarm::picker::{AudioMap, Deadlines, PickerConfig};
use alluvium_swarm::{Node, Service};

/// Re-read the playlist at least this often, and at most this often.
const MIN_REFRESH: Duration = Duration::from_secs(10);
const MAX_REFRESH: Duration = Duration::from_secs(900);
/// Without an `sy:` hint or Cache-Control.
const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// How long a content is still announced after its last slot ended.
const KEEP_ANNOUNCING: TimeDelta = TimeDelta::minutes(10);
/// How long the gateway may take to hash an entry before the attempt is retried.
const RESOLVE_LIMIT: Duration = Duration::from_secs(120);
/// See `may_hash_here`.
const HASH_HERE_PATIENCE: Duration = Duration::from_secs(10);
/// See `may_hash_here`.
const HASH_HERE_LEAD: TimeDelta = TimeDelta::seconds(20);
/// How often the station loop looks at the schedule.
const TICK: Duration = Duration::from_millis(500);

/// Why listening could not start.
#[derive(Debug, thiserror::Error)]
pub enum StationError {
    #[error("{url}: {reason}")]
    Playlist { url: String, reason: String },
    /// Unreachable, or a server error: worth trying again.
    #[error("{url}: {reason}")]
    Transient { url: String, reason: String },
    #[error("{url}: not a usable playlist")]
    Unusable {
        url: String,
        #[source]
        source: alluvium_playlist::Error,
    },
}

/// How a station is followed.
#[derive(Debug, Clone)]
pub struct StationConfig {
    pub playlist_url: String,
    /// Entries after the one on air that are kept downloading.
    pub ahead: usize,
    pub picker: PickerConfig,
}

/// What the station loop knows, shared with the stream: the playlist, the clock, the root
/// each media URL resolved to, and how far behind the schedule players hear it.
#[derive(Default)]
pub struct StationState {
    playlist: std::sync::RwLock<Option<Arc<Parsed>>>,
    clock: std::sync::Mutex<ClockOffset>,
    roots: std::sync::Mutex<HashMap<String, Hash>>,
    burst: TimeDelta,
}

impl StationState {
    /// A station whose players get `burst` of audio at once when they join, and so hear the
    /// schedule that much late, all alike (Icecast's burst-on-connect; design section 4).
    pub fn new(burst: Duration) -> Arc<Self> {
        Arc::new(Self {
            burst: TimeDelta::from_std(burst).unwrap_or(TimeDelta::zero()),
            ..Self::default()
        })
    }

    /// The burst a joining player gets at once: how far behind the live edge players hear.
    pub fn burst(&self) -> TimeDelta {
        self.burst
    }

    /// The moment of the schedule players hear now: the station's now less the burst. Each
    /// part is due when it is heard, so this is the clock downloads are scheduled by.
    pub fn heard_now(&self) -> DateTime<Utc> {
        self.now() - self.burst
    }

    /// The last good playlist.
    pub fn playlist(&self) -> Option<Arc<Parsed>> {
        self.playlist
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The station's time now (local clock corrected by the server's `Date`).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.lock().unwrap_or_else(|p| p.into_inner()).now()
    }

    /// The content a media URL resolved to, once resolved.
    pub fn root_of(&self, url: &str) -> Option<Hash> {
        self.roots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
            .copied()
    }

    fn set_playlist(&self, parsed: Arc<Parsed>) {
        *self.playlist.write().unwrap_or_else(|p| p.into_inner()) = Some(parsed);
    }

    /// The station's clock as known so far.
    pub fn clock(&self) -> ClockOffset {
        *self.clock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes in a `Date` the station's web server sent (see [`ClockOffset::observe`]).
    fn observe_clock(&self, sent: DateTime<Utc>, received: DateTime<Utc>, date: DateTime<Utc>) {
        self.clock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(sent, received, date);
    }

    fn set_root(&self, url: &str, root: Hash) {
        self.roots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url.to_string(), root);
    }
}

/// Validators of the copy last read from one place.
#[derive(Default)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

/// Reads a playlist with conditional GETs and keeps the clock offset from `Date`: through
/// the gateway (which reads it from the station's server once for all its listeners), and
/// from the server itself when the gateway cannot give it.
struct PlaylistSource {
    url: String,
    /// The gateway's `/v1/playlist` URL for it.
    via: Option<String>,
    http: reqwest::Client,
    origin: Validators,
    gateway: Validators,
    /// Where the station's clock is kept (from the web server's `Date`, not the gateway's).
    state: Arc<StationState>,
    /// From Cache-Control max-age.
    max_age: Option<Duration>,
    /// Where the gateway's and the web server's outages are told.
    metrics: alluvium_swarm::Metrics,
}

impl PlaylistSource {
    /// The playlist if it changed (`None` when unchanged).
    async fn poll(&mut self) -> Result<Option<Parsed>, StationError> {
        if let Some(via) = self.via.clone() {
            match self.read(&via, true).await {
                Ok(p) => return Ok(p),
                Err(e) => debug!("the gateway did not give the playlist ({e}); asking its server"),
            }
        }
        let url = self.url.clone();
        self.read(&url, false).await
    }

    /// Reads from `from` (the gateway's copy when `via_gateway`).
    async fn read(
        &mut self,
        from: &str,
        via_gateway: bool,
    ) -> Result<Option<Parsed>, StationError> {
        let err = |reason: String| StationError::Playlist {
            url: self.url.clone(),
            reason,
        };
        let transient = |reason: String| StationError::Transient {
            url: self.url.clone(),
            reason,
        };
        let validators = if via_gateway {
            &self.gateway
        } else {
            &self.origin
        };
        let mut request = self.http.get(from).timeout(Duration::from_secs(30));
        if let Some(e) = &validators.etag {
            request = request.header(header::IF_NONE_MATCH, e);
        }
        if let Some(lm) = &validators.last_modified {
            request = request.header(header::IF_MODIFIED_SINCE, lm);
        }
        let service = if via_gateway {
            Service::Gateway
        } else {
            Service::Origin
        };
        let health = self.metrics.health();
        let sent = Utc::now();
        let mut response = request.send().await.map_err(|e| {
            let cause = alluvium_task::error_chain(&e);
            health.failed(service, &format!("reading the playlist: {cause}"));
            transient(format!("unreachable: {cause}"))
        })?;
        let received = Utc::now();
        // The gateway answers for the station's server too: only its silence is its outage.
        if !via_gateway && response.status().is_server_error() {
            health.failed(service, &format!("the playlist: {}", response.status()));
        } else {
            health.answered(service);
        }
        let header_str = |h| {
            response
                .headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if let Some(date) = header_str(header::DATE)
            .and_then(|d| httpdate::parse_http_date(&d).ok())
            .filter(|_| !via_gateway)
        {
            self.state
                .observe_clock(sent, received, DateTime::<Utc>::from(date));
        }
        self.max_age = header_str(header::CACHE_CONTROL).and_then(|cc| {
            cc.split(',')
                .filter_map(|d| d.trim().strip_prefix("max-age="))
                .find_map(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs)
        });
        if response.status() == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if response.status().is_server_error() {
            return Err(transient(format!(
                "the server answered {}",
                response.status()
            )));
        }
        if !response.status().is_success() {
            return Err(err(format!("the server answered {}", response.status())));
        }
        let etag = header_str(header::ETAG);
        let last_modified = header_str(header::LAST_MODIFIED);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transient(format!("reading: {e}")))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_PLAYLIST_BYTES {
                break; // the parser names the limit
            }
        }
        let parsed = alluvium_playlist::parse(&body).map_err(|source| StationError::Unusable {
            url: self.url.clone(),
            source,
        })?;
        for w in &parsed.warnings {
            warn!("{}: {w}", self.url);
        }
        let validators = if via_gateway {
            &mut self.gateway
        } else {
            &mut self.origin
        };
        validators.etag = etag;
        validators.last_modified = last_modified;
        Ok(Some(parsed))
    }

    /// Reads the playlist again, keeping the last good one (`parsed`) on failure, and tells
    /// `state` what changed. Returns when to read it next.
    async fn reread(
        &mut self,
        parsed: &mut Arc<Parsed>,
        state: &StationState,
    ) -> tokio::time::Instant {
        match self.poll().await {
            Ok(Some(p)) => {
                info!(entries = p.playlist.entries.len(), "playlist changed");
                *parsed = Arc::new(p);
                state.set_playlist(parsed.clone());
            }
            Ok(None) => debug!("playlist unchanged"),
            // An unreachable server is said once per outage (the node's health).
            Err(e @ StationError::Transient { .. }) => {
                debug!("keeping the last good playlist: {e}")
            }
            Err(e) => warn!("keeping the last good playlist: {e}"),
        }
        tokio::time::Instant::now() + self.refresh_after(parsed, self.state.now())
    }

    /// When to read the playlist again.
    fn refresh_after(&self, parsed: &Parsed, now: DateTime<Utc>) -> Duration {
        let mut wait = DEFAULT_REFRESH;
        if let Some(hint) = &parsed.playlist.channel.update {
            if let Ok(i) = hint.interval().to_std() {
                wait = i;
            }
        }
        if let Some(max_age) = self.max_age {
            wait = wait.min(max_age.max(MIN_REFRESH));
        }
        // Before the known schedule runs out (unless it loops forever).
        if parsed.schedule.period().is_none() {
            if let Some(end) = parsed.schedule.end() {
                if let Ok(left) = (end - now - TimeDelta::seconds(60)).to_std() {
                    wait = wait.min(left);
                }
            }
        }
        wait.clamp(MIN_REFRESH, MAX_REFRESH)
    }
}

/// How often the station's clock is checked once it is known well enough (a clock may be
/// stepped, here or at the server).
const CLOCK_RECHECK: Duration = Duration::from_secs(600);

/// One `HEAD` of the playlist at the station's web server, its `Date` taken in; the round
/// trip, if it answered.
async fn probe_clock(http: &reqwest::Client, url: &str, state: &StationState) -> Option<TimeDelta> {
    let sent = Utc::now();
    let response = http
        .head(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let received = Utc::now();
    let date = response
        .headers()
        .get(header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d).ok())?;
    state.observe_clock(sent, received, DateTime::<Utc>::from(date));
    Some(received - sent)
}

/// Narrows the station's clock with probes timed on the server's tick
/// ([`ClockOffset::next_probe`]) until it is known within about the round trip, then checks
/// it now and then.
async fn keep_time(
    http: reqwest::Client,
    url: String,
    state: Arc<StationState>,
    cancel: CancellationToken,
) {
    let mut rtt = TimeDelta::milliseconds(50);
    loop {
        let wait = match state.clock().next_probe(Utc::now(), rtt) {
            Some(at) => (at - Utc::now()).to_std().unwrap_or(Duration::ZERO),
            None => CLOCK_RECHECK,
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match probe_clock(&http, &url, &state).await {
            Some(took) => rtt = took,
            // Unreachable: the playlist's reads say so; try again in a while.
            None => tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            },
        }
        debug!(
            offset_ms = state.clock().offset().num_milliseconds(),
            width_ms = state.clock().width().map(|w| w.num_milliseconds()),
            "station clock"
        );
    }
}

/// One entry being fetched or kept.
struct Tracked {
    /// Cancels the download (at the end of its last wanted slot).
    download: Option<CancellationToken>,
    /// Cancels announcing (a while after it last aired).
    announce: CancellationToken,
    /// The end of the latest slot it was wanted for.
    until: DateTime<Utc>,
}

/// The first read of the playlist. A station whose server is briefly down is waited for
/// (`None` if cancelled meanwhile); one that answers with something unusable (404, not a
/// playlist) is an error.
async fn first_read(
    source: &mut PlaylistSource,
    cancel: &CancellationToken,
) -> Result<Option<Arc<Parsed>>, StationError> {
    loop {
        match source.poll().await {
            Ok(Some(p)) => return Ok(Some(Arc::new(p))),
            Ok(None) => {
                return Err(StationError::Playlist {
                    url: source.url.clone(),
                    reason: "the server answered 304 to an unconditional request".into(),
                })
            }
            Err(e @ StationError::Transient { .. }) => {
                warn!("{e}; trying again in 5 s");
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// A line of what the swarm did, for the log.
fn log_swarm(node: &Node) {
    let m = &node.metrics;
    info!(
        from_origin = m.bytes_from_origin.get(),
        from_peers = m.bytes_from_peers.get(),
        uploaded = m.bytes_uploaded.get(),
        peers = m.peers.get(),
        "swarm"
    );
}

/// Follows the station until `cancel`. Fails only if the first read of the playlist does.
pub async fn run(
    node: Arc<Node>,
    gateway: Client,
    config: StationConfig,
    state: Arc<StationState>,
    cancel: CancellationToken,
) -> Result<(), StationError> {
    let http = reqwest::Client::builder()
        .user_agent(concat!("alluvium/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut source = PlaylistSource {
        url: config.playlist_url.clone(),
        via: Some(gateway.playlist_url(&config.playlist_url)),
        http,
        origin: Validators::default(),
        gateway: Validators::default(),
        state: state.clone(),
        max_age: None,
        metrics: node.metrics.clone(),
    };
    node.report.set_station(&config.playlist_url);
    // The clock first: what plays when depends on it.
    probe_clock(&source.http, &source.url, &state).await;
    alluvium_task::spawn(
        "clock",
        &cancel,
        keep_time(
            source.http.clone(),
            source.url.clone(),
            state.clone(),
            cancel.clone(),
        ),
    );
    let Some(mut parsed) = first_read(&mut source, &cancel).await? else {
        return Ok(());
    };
    state.set_playlist(parsed.clone());
    info!(
        station = %parsed.playlist.channel.title,
        entries = parsed.playlist.entries.len(),
        clock_offset_ms = state.clock().offset().num_milliseconds(),
        "following the playlist"
    );
    let mut next_read = tokio::time::Instant::now() + source.refresh_after(&parsed, state.now());
    let mut tracked: HashMap<String, Tracked> = HashMap::new();
    let announcers = TaskTracker::new();
    let jobs = TaskTracker::new();
    let mut tick = tokio::time::interval(TICK);
    let mut last_log = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        if tokio::time::Instant::now() >= next_read {
            next_read = source.reread(&mut parsed, &state).await;
        }
        let now = state.heard_now();
        let wanted: Vec<Slot> = parsed
            .schedule
            .slots_from(now)
            .take(1 + config.ahead)
            .collect();
        for slot in wanted {
            let entry = &parsed.playlist.entries[slot.entry];
            let url = entry.media_url.clone();
            let t = tracked.entry(url.clone()).or_insert_with(|| Tracked {
                download: None,
                announce: cancel.child_token(),
                until: slot.end,
            });
            t.until = t.until.max(slot.end);
            // Running, or finished for this airing (a content held whole finishes at once).
            if t.download.as_ref().is_some_and(|d| !d.is_cancelled()) {
                continue;
            }
            let token = t.announce.child_token();
            t.download = Some(token.clone());
            let job = EntryJob {
                node: node.clone(),
                gateway: gateway.clone(),
                url,
                expected: entry.hash,
                title: entry.display_title(),
                slot,
                picker: config.picker,
                announce: t.announce.clone(),
                announcers: announcers.clone(),
                state: state.clone(),
            };
            let span = tracing::info_span!("entry", title = %job.title);
            alluvium_task::spawn(
                "entry",
                &token,
                jobs.track_future(job.run(token.clone())).instrument(span),
            );
        }
        // Downloads stop when their slot is over; announcing a while later.
        tracked.retain(|_, t| {
            if now > t.until + TimeDelta::seconds(5) {
                if let Some(d) = t.download.take() {
                    d.cancel();
                }
            }
            if now > t.until + KEEP_ANNOUNCING {
                t.announce.cancel();
                return false;
            }
            true
        });
        if last_log.elapsed() >= Duration::from_secs(10) {
            last_log = tokio::time::Instant::now();
            log_swarm(&node);
        }
    }
    for t in tracked.values() {
        t.announce.cancel();
    }
    // Entry jobs end with their tokens, children of `cancel`.
    jobs.close();
    jobs.wait().await;
    // The tracker hears that this listener left (its `stopped` announces take at most 2 s):
    // the swarm stops counting on it at once, not after the tracker's expiry.
    announcers.close();
    let _ = tokio::time::timeout(Duration::from_secs(3), announcers.wait()).await;
    Ok(())
}

/// Whether an entry's tree may come from the origin's whole file, fetched and hashed here,
/// once neither the gateway nor a peer gave it: one more copy from the origin for this
/// listener alone, so only when nothing else would play. A gateway that does not answer has
/// not for `HASH_HERE_PATIENCE` (`outage`: not a blip, nor a listener whose network is still
/// coming up; one that answered, say that the origin failed it, is not waited for), the entry
/// plays within `HASH_HERE_LEAD` (the gateway or a peer may answer before), and at least half
/// of it is still to play (not a copy for its last seconds).
fn may_hash_here(outage: Option<Duration>, slot: &Slot, now: DateTime<Utc>) -> bool {
    outage.is_none_or(|lasted| lasted >= HASH_HERE_PATIENCE)
        && slot.start - now <= HASH_HERE_LEAD
        && slot.end - now >= slot.duration() / 2
}

/// Fetching one entry for its slot.
struct EntryJob {
    node: Arc<Node>,
    gateway: Client,
    url: String,
    expected: Option<Hash>,
    title: String,
    slot: Slot,
    picker: PickerConfig,
    announce: CancellationToken,
    /// Where its announcer is tracked, so the station waits for its `stopped` announce.
    announcers: TaskTracker,
    state: Arc<StationState>,
}

impl EntryJob {
    /// See [`may_hash_here`].
    fn may_hash_here(&self) -> bool {
        let outage = self.node.metrics.health().outage(Service::Gateway);
        may_hash_here(
            outage.map(|o| o.lasted()),
            &self.slot,
            self.state.heard_now(),
        )
    }

    fn report_entry(&self, root: Hash) {
        self.node.report.entry(
            root,
            &self.url,
            self.slot.start.timestamp_millis(),
            self.slot.end.timestamp_millis(),
        );
    }

    async fn run(self, cancel: CancellationToken) {
        // Known now when the playlist pins the root: silence heard while no tree can be had
        // is this entry's, in the broadcaster's report.
        if let Some(root) = self.expected {
            self.report_entry(root);
        }
        loop {
            let attempt = async {
                let (info, tree, from) = find_tree(
                    &self.node,
                    &self.gateway,
                    &self.url,
                    self.expected,
                    RESOLVE_LIMIT,
                    || self.may_hash_here(),
                )
                .await?;
                if from != TreeFrom::Gateway {
                    info!(root = %info.blake3, "hash tree from {from}: the gateway did not give it");
                }
                let content = self.node.store.open(tree.clone());
                self.state.set_root(&self.url, info.blake3);
                self.report_entry(info.blake3);
                if from == TreeFrom::Origin {
                    // Hashed here: the whole file came from the origin.
                    let now = self.state.now().timestamp_millis();
                    self.node.report.bytes(info.blake3, true, info.size, now);
                }
                let (node, gateway, announced) =
                    (self.node.clone(), self.gateway.clone(), content.clone());
                alluvium_task::spawn_graceful("announce", &self.announce, |cancel| {
                    self.announcers.track_future(announce(
                        node,
                        gateway,
                        announced,
                        Announcing::Live,
                        cancel,
                    ))
                });
                // The entry's bitrate, for `--upload-limit auto`.
                let seconds = self.slot.duration().num_milliseconds() as f64 / 1000.0;
                if seconds > 0.0 {
                    self.node
                        .offer_bitrate((content.size() as f64 / seconds) as u64);
                }
                let start_ms = (self.slot.start - self.state.heard_now()).num_milliseconds();
                let duration_ms = self.slot.duration().num_milliseconds();
                // The whole file counts as audio until a reader finds its tags: the stream
                // finds a moment's bytes by that same proportion.
                let deadlines = Deadlines::Audio {
                    start_ms,
                    duration_ms,
                    map: AudioMap::even(0..content.size()),
                };
                let per_part_ms =
                    duration_ms as f64 * PART_SIZE as f64 / content.size().max(1) as f64;
                let config = DownloadConfig {
                    picker: self.picker.scaled_to(per_part_ms),
                    deadlines,
                    neighbours: alluvium_swarm::download::LIVE_NEIGHBOURS,
                };
                info!(url = %self.url, root = %info.blake3, parts = content.parts(), starts_in_ms = start_ms, "fetching");
                download(self.node.clone(), &info, tree, config, cancel.clone()).await
            };
            match attempt.await {
                Ok(_) => return,
                Err(alluvium_swarm::SwarmError::Cancelled) => return,
                Err(e) => {
                    let text = alluvium_task::error_chain(&e);
                    // During an outage the node's health has said why, once.
                    if self.node.metrics.health().outages().is_empty() {
                        warn!("{text}; trying again in 5 s");
                    } else {
                        debug!("{text}; trying again in 5 s");
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_s_file_is_hashed_here_only_when_nothing_else_would_play() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let slot = |start_s: i64, len_s: i64| Slot {
            entry: 0,
            start: now + TimeDelta::seconds(start_s),
            end: now + TimeDelta::seconds(start_s + len_s),
        };
        let outage = Some(Duration::from_secs(30));
        assert!(may_hash_here(outage, &slot(10, 60), now), "due in 10 s");
        assert!(
            may_hash_here(None, &slot(10, 60), now),
            "the gateway answered, failing: not waited for"
        );
        let blip = Some(Duration::from_secs(3));
        assert!(!may_hash_here(blip, &slot(10, 60), now), "a blip");
        assert!(!may_hash_here(outage, &slot(45, 60), now), "due in 45 s");
        assert!(
            may_hash_here(outage, &slot(-20, 60), now),
            "40 s of 60 to play"
        );
        assert!(
            !may_hash_here(outage, &slot(-40, 60), now),
            "20 s of 60 to play"
        );
    }
}
