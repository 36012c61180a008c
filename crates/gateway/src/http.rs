//! The gateway's HTTP service (docs/design.md section 4): routes, handlers, and the errors they map to.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use alluvium_content::Hash;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{debug, Instrument};

use crate::config::Config;
use crate::error::FetchError;
use crate::forwarded::client_ip;
use crate::metrics::Metrics;
use crate::peers::{Announce, Peers};
use crate::playlists::Playlists;
use crate::report::Reports;
use crate::resolve::{Resolution, Resolver};
use crate::store::Store;
use crate::wire::{AnnounceRequest, AnnounceResponse, ErrorBody};

/// Largest announce body: about 150 bytes, and with a report up to 8 entries' URLs (at most
/// 2 KiB each, usually a tenth of that).
const MAX_ANNOUNCE_BODY: usize = 32 * 1024;
/// What a `202` tells clients to wait before asking again.
const PENDING_RETRY_AFTER_S: u64 = 2;

struct Shared {
    resolver: Resolver,
    playlists: Playlists,
    peers: Peers,
    reports: Reports,
    metrics: Metrics,
    config: Config,
}

/// A running gateway's state; [`Gateway::router`] serves it.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl Gateway {
    /// A gateway over `store`. Background work (fetches, expiry, `--follow`) stops when
    /// `cancel` fires.
    pub fn new(
        config: Config,
        store: Store,
        cancel: CancellationToken,
    ) -> Result<Self, reqwest::Error> {
        let metrics = Metrics::new();
        let client = crate::policy::origin_client(&config)?;
        let playlists = Playlists::new(
            client.clone(),
            config.clone(),
            crate::config::PLAYLIST_FRESH,
            store.shared().cloned(),
        );
        let peers = Peers::new(&store, &config);
        let reports = Reports::new(store.clone(), metrics.stations.clone());
        let resolver = Resolver::new(
            store,
            client,
            config.clone(),
            metrics.clone(),
            cancel.clone(),
        );
        let gateway = Self {
            shared: Arc::new(Shared {
                peers,
                reports,
                resolver,
                playlists,
                metrics,
                config,
            }),
        };
        gateway.spawn_expiry(cancel.clone());
        gateway.spawn_report_flush(cancel);
        Ok(gateway)
    }

    /// The resolver, for `--follow` and tests.
    pub fn resolver(&self) -> &Resolver {
        &self.shared.resolver
    }

    fn spawn_expiry(&self, cancel: CancellationToken) {
        let weak = Arc::downgrade(&self.shared);
        let every = self
            .shared
            .config
            .announce_interval
            .max(Duration::from_secs(1));
        alluvium_task::spawn(
            "tracker-expiry",
            &cancel,
            async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    let Some(shared) = weak.upgrade() else { return };
                    shared.peers.expire();
                }
            }
            .instrument(tracing::info_span!("tracker-expiry")),
        );
    }

    fn spawn_report_flush(&self, cancel: CancellationToken) {
        let weak = Arc::downgrade(&self.shared);
        alluvium_task::spawn_graceful("report-flush", &cancel, |cancel| async move {
            let mut tick = tokio::time::interval(crate::report::FLUSH_EVERY);
            let mut failing = false;
            loop {
                let stopping = tokio::select! {
                    _ = tick.tick() => false,
                    () = cancel.cancelled() => true,
                };
                let Some(shared) = weak.upgrade() else { return };
                let now = chrono::Utc::now().timestamp_millis();
                match shared.reports.flush(now).await {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("listeners' reports are stored again");
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "could not store listeners' reports: kept for the next try");
                    }
                    Err(_) => {}
                }
                shared.reports.update_gauges(now).await;
                if stopping {
                    return;
                }
            }
        });
    }

    /// The routes of docs/design.md section 4. Serve with connect info
    /// (`into_make_service_with_connect_info::<SocketAddr>()`): the tracker needs the peer's
    /// address.
    pub fn router(&self) -> Router {
        let v1 = Router::new()
            .route("/v1/content", get(content))
            .route("/v1/content/{blake3}/outboard", get(outboard))
            .route("/v1/playlist", get(playlist))
            .route("/v1/report", get(report))
            .route(
                "/v1/announce",
                post(announce).layer(DefaultBodyLimit::max(MAX_ANNOUNCE_BODY)),
            )
            .route_layer(middleware::from_fn_with_state(self.shared.clone(), admit));
        Router::new()
            .merge(v1)
            .route("/metrics", get(metrics))
            .route("/report", get(report_page))
            .route("/healthz", get(healthz))
            .with_state(self.shared.clone())
    }

    /// Serves on `listener` until `cancel` fires.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        cancel: CancellationToken,
    ) -> std::io::Result<()> {
        axum::serve(
            listener,
            self.router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
    }
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let mut response = (
        status,
        Json(ErrorBody {
            error: code.to_string(),
            message: message.into(),
        }),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn fetch_error(e: &FetchError) -> Response {
    let (status, code) = e.status();
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "internal error");
    }
    error(status, code, e.public_message())
}

/// The address a request is from: the connection's, or the client a trusted proxy names.
#[derive(Debug, Clone, Copy)]
struct ClientIp(IpAddr);

/// Works out who is asking, then applies the per-address rate limit.
async fn admit(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let ip = client_ip(addr.ip(), request.headers(), &shared.config.trusted_proxies);
    request.extensions_mut().insert(ClientIp(ip));
    if !shared.peers.allow(ip).await {
        shared.metrics.rate_limited();
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from your address; slow down",
        );
    }
    next.run(request).await
}

#[derive(Deserialize)]
struct ContentQuery {
    url: String,
    /// Seconds to wait for a fetch before answering 202 (at most the gateway's own limit).
    wait: Option<f64>,
}

async fn content(State(shared): State<Arc<Shared>>, Query(q): Query<ContentQuery>) -> Response {
    let limit = shared.config.wait;
    let wait = q
        .wait
        .filter(|w| w.is_finite() && *w >= 0.0)
        .map_or(limit, |w| Duration::from_secs_f64(w).min(limit));
    match shared.resolver.resolve(&q.url, wait).await {
        Ok(Resolution::Ready(info)) => Json(info).into_response(),
        Ok(Resolution::Pending(p)) => {
            let mut r = (StatusCode::ACCEPTED, Json(p)).into_response();
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(PENDING_RETRY_AFTER_S),
            );
            r
        }
        Err(e) => fetch_error(&e),
    }
}

#[derive(Deserialize)]
struct PlaylistQuery {
    url: String,
}

async fn playlist(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<PlaylistQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    match shared.playlists.get(&q.url).await {
        Ok(p) => {
            let etag = HeaderValue::from_str(&p.etag).unwrap_or(HeaderValue::from_static("\"\""));
            let matches = headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|v| v.as_bytes() == etag.as_bytes());
            let common = [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-alluvium"),
                ),
                (header::ETAG, etag),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ];
            if matches {
                (StatusCode::NOT_MODIFIED, common).into_response()
            } else {
                (common, p.body).into_response()
            }
        }
        Err(e) => fetch_error(&e),
    }
}

async fn outboard(State(shared): State<Arc<Shared>>, Path(root): Path<String>) -> Response {
    let Ok(root) = root.parse::<Hash>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_hash",
            "not a BLAKE3 hash (64 hex digits)",
        );
    };
    let store: &Store = shared.resolver.store();
    match store.outboard(root).await {
        Ok(Some((_size, tree))) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            tree,
        )
            .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "unknown_content",
            "no hash tree for this root",
        ),
        Err(e) => fetch_error(&FetchError::Store(e)),
    }
}

async fn announce(
    State(shared): State<Arc<Shared>>,
    Extension(ClientIp(from)): Extension<ClientIp>,
    body: Bytes,
) -> Response {
    let request: AnnounceRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            shared.metrics.announce("bad_request");
            debug!(peer = %from, error = %e, "malformed announce");
            return error(
                StatusCode::BAD_REQUEST,
                "bad_announce",
                format!("malformed announce: {e}"),
            );
        }
    };
    if let Err(why) = request.validate() {
        shared.metrics.announce("bad_request");
        return error(StatusCode::BAD_REQUEST, "bad_announce", why);
    }
    // The address is the one the request came from; only the port is the peer's to say.
    let addr = SocketAddr::new(from, request.port);
    let recorded = shared
        .peers
        .announce(
            Announce {
                root: request.blake3,
                addr,
                peer_id: &request.peer_id,
                have: request.have,
                event: request.event,
            },
            shared.config.peers_per_answer,
        )
        .await;
    let (peers, age_ms) = match recorded {
        Ok(answer) => answer,
        Err(e) => {
            shared.metrics.announce("store_unavailable");
            return fetch_error(&FetchError::Store(e));
        }
    };
    shared.metrics.announce("ok");
    match (&request.station, request.report_is_valid()) {
        (Some(station), Ok(())) => {
            let now = chrono::Utc::now().timestamp_millis();
            shared
                .reports
                .record(station, &request.peer_id, now, &request.report);
        }
        (None, Ok(())) => {}
        (_, Err(why)) => {
            shared.metrics.announce("report_dropped");
            debug!(peer = %addr, why, "report dropped");
        }
    }
    Json(AnnounceResponse {
        interval_s: shared.config.announce_interval.as_secs().max(1),
        age_ms,
        peers,
    })
    .into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let m = &shared.metrics;
    if let Ok((peers, swarms)) = shared.peers.counts().await {
        m.peers.set(peers as i64);
        m.swarms.set(swarms as i64);
    }
    m.flights.set(shared.resolver.flights_in_progress() as i64);
    if let Ok((urls, trees)) = shared.resolver.store().counts().await {
        m.stored_urls.set(urls as i64);
        m.stored_trees.set(trees as i64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
        .into_response()
}

/// `200 ok` while the gateway can answer; `503` while its store is unreachable, so a load
/// balancer sends listeners to another gateway.
async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    match shared.resolver.store().check().await {
        Ok(()) => "ok\n".into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store unreachable: {e}\n"),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct ReportQuery {
    station: String,
    hours: Option<u32>,
}

/// `GET /v1/report?station=URL[&hours=N]`: the broadcaster's report as JSON.
async fn report(State(shared): State<Arc<Shared>>, Query(q): Query<ReportQuery>) -> Response {
    if url::Url::parse(&q.station).is_err() || q.station.len() > crate::wire::MAX_REPORT_URL {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_url",
            "station must be the station's playlist URL",
        );
    }
    // Titles from the playlist, when it can be read (the copy listeners get, at most 5 s old).
    let titles: HashMap<String, String> = match shared.playlists.get(&q.station).await {
        Ok(p) => alluvium_playlist::parse(&p.body)
            .map(|parsed| {
                parsed
                    .playlist
                    .entries
                    .iter()
                    .map(|e| (e.media_url.clone(), e.display_title()))
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => HashMap::new(),
    };
    let now = chrono::Utc::now().timestamp_millis();
    match shared
        .reports
        .report(&q.station, now, q.hours.unwrap_or(24), &titles)
        .await
    {
        Ok(r) => (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
            Json(r),
        )
            .into_response(),
        Err(e) => fetch_error(&FetchError::Store(e)),
    }
}

/// `GET /report?station=URL`: the report as a page with charts (it reads `/v1/report`).
async fn report_page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        include_str!("report.html"),
    )
        .into_response()
}
