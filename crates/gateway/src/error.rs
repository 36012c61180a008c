//! The gateway's errors, and the HTTP status and public code each maps to.

use axum::http::StatusCode;
use thiserror::Error;

/// Why content info for a URL could not be had.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("not a usable media URL: {0}")]
    BadUrl(String),
    #[error("{url}: fetching from {host} is not allowed (private, loopback or link-local address; the gateway runs without --allow-private)")]
    NotAllowed { url: String, host: String },
    #[error("{url}: origin unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url}: origin did not answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("{url}: origin sent {rate} bytes/s, under the gateway's minimum of {min}")]
    TooSlow { url: String, rate: u64, min: u64 },
    #[error("{url}: origin answered 404 Not Found")]
    OriginNotFound { url: String },
    #[error("{url}: origin answered {status}")]
    OriginStatus { url: String, status: u16 },
    #[error("{url}: origin sent no Content-Length, so the file's size is unknown")]
    NoContentLength { url: String },
    #[error("{url}: {size} bytes, over the gateway's limit of {max}")]
    TooLarge { url: String, size: u64, max: u64 },
    #[error("{url}: the file changed while it was being fetched ({detail}); ask again")]
    Changed { url: String, detail: String },
    #[error("too many URLs are being fetched; ask again later")]
    Busy,
    #[error("{url}: not an Alluvium playlist ({reason})")]
    NotAPlaylist { url: String, reason: String },
    #[error("the gateway's store failed: {0}")]
    Store(#[from] StoreError),
}

impl FetchError {
    /// Status and stable code for the HTTP answer.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadUrl(_) => (StatusCode::BAD_REQUEST, "bad_url"),
            Self::NotAllowed { .. } => (StatusCode::FORBIDDEN, "not_allowed"),
            Self::Unreachable { .. } => (StatusCode::BAD_GATEWAY, "origin_unreachable"),
            Self::Timeout { .. } | Self::TooSlow { .. } => {
                (StatusCode::GATEWAY_TIMEOUT, "origin_timeout")
            }
            Self::OriginNotFound { .. } => (StatusCode::NOT_FOUND, "origin_not_found"),
            Self::OriginStatus { .. } => (StatusCode::BAD_GATEWAY, "origin_error"),
            Self::NoContentLength { .. } => (StatusCode::BAD_GATEWAY, "no_content_length"),
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::Changed { .. } => (StatusCode::SERVICE_UNAVAILABLE, "changed_during_fetch"),
            Self::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            Self::NotAPlaylist { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "not_a_playlist"),
            Self::Store(e) if e.is_unavailable() => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
            }
            Self::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The text a client sees: the message, except for internal failures.
    pub fn public_message(&self) -> String {
        match self {
            Self::Store(e) if e.is_unavailable() => {
                "the gateway's shared store is unreachable; ask again soon".to_string()
            }
            Self::Store(_) => "internal error".to_string(),
            other => other.to_string(),
        }
    }
}

/// The store failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("opening {path}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored entry for {0} is damaged")]
    Damaged(String),
    #[error("store task failed")]
    Task,
    #[error("unknown store {0:?}: use sqlite:PATH or redis://HOST:PORT[/DB]")]
    UnknownKind(String),
    #[error("{spec}: {reason}")]
    BadSpec { spec: String, reason: String },
    #[error("the shared store (Redis) failed: {0}")]
    Redis(#[from] redis::RedisError),
}

impl StoreError {
    /// Whether the store could not be reached (try again soon), rather than broken.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Redis(e) => {
                e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || matches!(e.code(), Some("LOADING" | "TRYAGAIN" | "MASTERDOWN"))
            }
            _ => false,
        }
    }
}
