//! The gateway and tracker (`alluvium gateway`): for any media URL, what a swarm needs (size,
//! origin validators, BLAKE3 root and hash tree), fetched once and cached; and the peers that
//! hold or fetch each content.
//!
//! # Protocol (docs/design.md section 4; JSON bodies)
//!
//! - `GET /v1/content?url=URL[&wait=SECONDS]` → `200` [`ContentInfo`]. An unknown or stale URL
//!   starts one shared fetch (a conditional GET when the URL is known); the request waits for it
//!   up to `wait` (capped by `--wait`), then gets `202` [`wire::Pending`] with `Retry-After`.
//!   Errors are [`wire::ErrorBody`] `{error, message}` with a status naming the cause:
//!   `400 bad_url`, `403 not_allowed`, `404 origin_not_found`, `413 too_large`,
//!   `502 origin_unreachable | origin_error | no_content_length`, `503 changed_during_fetch |
//!   busy`, `504 origin_timeout`, `429 rate_limited`.
//! - `GET /v1/content/{blake3}/outboard` → the pre-order bao outboard (see
//!   [`alluvium_content`]), `application/octet-stream`, immutable; `404` unknown root.
//! - `POST /v1/announce` [`wire::AnnounceRequest`] → [`wire::AnnounceResponse`]: up to 50 other
//!   peers, the eight eldest first ([`wire::ELDEST_PER_ANSWER`]), then holders first, with how
//!   long the tracker has known each and the announcer. The
//!   address recorded is the IP the request came from with the port given; a body naming an
//!   address is ignored. Malformed bodies get `400`.
//! - `GET /metrics` (Prometheus / OpenMetrics text), `GET /healthz`.
//!
//! # Limits
//!
//! All in [`config`]: fetch size, concurrent fetches, URLs in flight, timeouts, peers per
//! content and in total, per-IP request rate. Fetches obey the address policy ([`policy`]).

pub mod config;
mod error;
mod fetch;
pub mod follow;
mod forwarded;
mod http;
mod metrics;
mod peers;
mod playlists;
pub mod policy;
mod report;
mod resolve;
mod store;
mod tracker;

pub use alluvium_content::ContentInfo;
pub use alluvium_gateway_client::{wire, Client, ClientError, ContentStatus};
pub use config::Config;
pub use error::{FetchError, StoreError};
pub use http::Gateway;
pub use metrics::Metrics;
pub use resolve::{Resolution, Resolver};
pub use store::Store;
pub use tracker::{RateLimiter, Tracker, TrackerLimits};
