//! `--follow PLAYLIST_URL`: resolve what a station will air in the next hour before anyone
//! asks, so its first listeners never wait for hashing.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use reqwest::header;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::config::{FOLLOW_HORIZON, FOLLOW_MAX_INTERVAL, FOLLOW_MIN_INTERVAL};
use crate::resolve::{Resolution, Resolver};

/// Longest a followed entry is waited for (a large file on a slow origin).
const WARM_WAIT: Duration = Duration::from_secs(3600);

/// Spawns the follower of `playlist_url`.
pub fn spawn(resolver: Resolver, playlist_url: String, cancel: CancellationToken) {
    let span = tracing::info_span!("follow", playlist = %playlist_url);
    alluvium_task::spawn(
        "follow",
        &cancel,
        follow(resolver, playlist_url).instrument(span),
    );
}

async fn follow(resolver: Resolver, playlist_url: String) {
    // The playlist URL is the operator's own choice, so it is fetched without the address
    // policy; the media URLs in it go through the resolver, policy and all.
    let client = match reqwest::Client::builder()
        .user_agent(concat!("alluvium-gateway/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(60))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot build an HTTP client; not following");
            return;
        }
    };
    let mut etag: Option<String> = None;
    let mut schedule: Option<alluvium_playlist::Parsed> = None;
    loop {
        let mut request = client.get(&playlist_url);
        if let Some(e) = &etag {
            request = request.header(header::IF_NONE_MATCH, e);
        }
        match request.send().await {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_MODIFIED => {
                debug!("playlist unchanged")
            }
            Ok(r) if r.status().is_success() => {
                let new_etag = r
                    .headers()
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                match r.bytes().await.map(|b| alluvium_playlist::parse(&b)) {
                    Ok(Ok(parsed)) => {
                        etag = new_etag;
                        schedule = Some(parsed);
                    }
                    // Keep the last good playlist.
                    Ok(Err(e)) => warn!(error = %e, "playlist unusable"),
                    Err(e) => warn!(error = %e, "reading the playlist failed"),
                }
            }
            Ok(r) => warn!(status = %r.status(), "playlist fetch failed"),
            Err(e) => warn!(error = %e, "playlist unreachable"),
        }

        let mut wait = FOLLOW_MAX_INTERVAL;
        if let Some(parsed) = &schedule {
            let now = Utc::now();
            let horizon = TimeDelta::from_std(FOLLOW_HORIZON).unwrap_or(TimeDelta::hours(1));
            let entries = &parsed.playlist.entries;
            let mut urls = BTreeSet::new();
            if let Some(on) = parsed.schedule.on_air(now) {
                urls.insert(entries[on.slot.entry].media_url.clone());
            }
            for slot in parsed.schedule.starting_within(now, horizon) {
                urls.insert(entries[slot.entry].media_url.clone());
            }
            for url in urls {
                match resolver.resolve(&url, WARM_WAIT).await {
                    Ok(Resolution::Ready(i)) => debug!(%url, root = %i.blake3, "ready"),
                    Ok(Resolution::Pending(_)) => info!(%url, "still hashing"),
                    Err(e) => warn!(%url, error = %e, "cannot resolve a scheduled entry"),
                }
            }
            if let Some(hint) = &parsed.playlist.channel.update {
                if let Ok(i) = hint.interval().to_std() {
                    wait = wait.min(i);
                }
            }
        }
        tokio::time::sleep(wait.max(FOLLOW_MIN_INTERVAL)).await;
    }
}
