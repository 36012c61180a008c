//! One fetch of an origin URL: a (conditional) GET whose body is hashed as it streams in.

use std::error::Error as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use alluvium_content::{ContentError, ContentInfo, Outboard};
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{self, HeaderMap};
use reqwest::StatusCode;
use tokio_util::io::{StreamReader, SyncIoBridge};
use url::Url;

use crate::config::Config;
use crate::error::FetchError;
use crate::policy::{Policy, Refused, UrlRefusal};

/// What a fetch found.
pub(crate) enum Fetched {
    /// The origin confirmed the stored version (`304`).
    NotModified,
    /// A new or changed file, hashed.
    New { info: ContentInfo, tree: Vec<u8> },
}

/// Progress of a running fetch, read by waiting clients.
#[derive(Default)]
pub(crate) struct Progress {
    pub(crate) bytes_done: AtomicU64,
    /// The size once known; 0 until then.
    pub(crate) size: AtomicU64,
}

/// Validators of the version the gateway holds, for a conditional GET.
pub(crate) struct Validators<'a> {
    pub(crate) etag: Option<&'a str>,
    pub(crate) last_modified: Option<&'a str>,
}

/// Fetches and hashes `url`.
pub(crate) async fn fetch(
    client: &reqwest::Client,
    config: &Config,
    url: &Url,
    previous: Option<Validators<'_>>,
    progress: Arc<Progress>,
) -> Result<Fetched, FetchError> {
    let name = url.as_str().to_string();
    check_url(config, url)?;

    let mut request = client.get(url.clone());
    if let Some(v) = &previous {
        if let Some(etag) = v.etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = v.last_modified {
            request = request.header(header::IF_MODIFIED_SINCE, lm);
        }
    }
    // reqwest's read timeout covers the body; the wait for the status line needs its own.
    let response = tokio::time::timeout(config.idle_timeout, request.send())
        .await
        .map_err(|_| FetchError::Timeout {
            url: name.clone(),
            seconds: config.idle_timeout.as_secs(),
        })?
        .map_err(|e| request_error(&name, config, e))?;

    let status = response.status();
    if status == StatusCode::NOT_MODIFIED && previous.is_some() {
        return Ok(Fetched::NotModified);
    }
    if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
        return Err(FetchError::OriginNotFound { url: name });
    }
    if status != StatusCode::OK {
        return Err(FetchError::OriginStatus {
            url: name,
            status: status.as_u16(),
        });
    }
    let size = response
        .content_length()
        .ok_or_else(|| FetchError::NoContentLength { url: name.clone() })?;
    if size > config.max_size {
        return Err(FetchError::TooLarge {
            url: name,
            size,
            max: config.max_size,
        });
    }
    progress.size.store(size, Ordering::Relaxed);
    let (etag, last_modified) = validators(response.headers());

    // Hash on the blocking pool, reading the body through a bridge: one part in memory at a
    // time, however large the file.
    let body = at_least(
        response.bytes_stream().map_err(std::io::Error::other),
        config.min_rate,
        config.rate_grace,
    );
    let reader = SyncIoBridge::new(StreamReader::new(body));
    let counter = progress.clone();
    let outboard = tokio::task::spawn_blocking(move || {
        Outboard::compute(reader, size, |n| {
            counter.bytes_done.store(n, Ordering::Relaxed)
        })
    })
    .await
    .map_err(|_| FetchError::Unreachable {
        url: name.clone(),
        reason: "hashing task failed".into(),
    })?
    .map_err(|e| content_error(&name, config, e))?;

    // A file rewritten in place while it streamed would hash to a mix of versions: make sure
    // the origin still describes the same file.
    if etag.is_some() || last_modified.is_some() {
        let head = tokio::time::timeout(config.idle_timeout, client.head(url.clone()).send()).await;
        if let Ok(Ok(head)) = head {
            if head.status() == StatusCode::OK {
                let now = validators(head.headers());
                if now != (etag.clone(), last_modified.clone())
                    // reqwest's content_length() is the body's length, 0 for HEAD: read
                    // the header itself.
                    || head
                        .headers()
                        .get(header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .is_some_and(|l| l != size)
                {
                    return Err(FetchError::Changed {
                        url: name,
                        detail: "its validators changed".into(),
                    });
                }
            }
        }
    }

    let info = ContentInfo::new(name, size, outboard.root().into(), etag, last_modified);
    Ok(Fetched::New {
        info,
        tree: outboard.as_bytes().to_vec(),
    })
}

fn validators(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let get = |h| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    (get(header::ETAG), get(header::LAST_MODIFIED))
}

/// Whether the address policy lets the gateway fetch `url`.
pub(crate) fn check_url(config: &Config, url: &Url) -> Result<(), FetchError> {
    let policy = Policy {
        allow_private: config.allow_private,
    };
    policy.check_url(url).map_err(|e| match e {
        UrlRefusal::Address(host) => FetchError::NotAllowed {
            url: url.as_str().to_string(),
            host,
        },
        other => FetchError::BadUrl(format!("{url}: {other}")),
    })
}

pub(crate) fn request_error(url: &str, config: &Config, e: reqwest::Error) -> FetchError {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<Refused>() {
            return FetchError::NotAllowed {
                url: url.to_string(),
                host: refused.host.clone(),
            };
        }
        source = s.source();
    }
    if e.is_timeout() {
        return FetchError::Timeout {
            url: url.to_string(),
            seconds: config.idle_timeout.as_secs(),
        };
    }
    FetchError::Unreachable {
        url: url.to_string(),
        reason: alluvium_task::error_chain(&e),
    }
}

/// A body slower than this on average, once `grace` has passed.
#[derive(Debug, thiserror::Error)]
#[error("sending {rate} bytes/s")]
struct TooSlow {
    rate: u64,
}

/// `body`, failing with [`TooSlow`] when, after `grace`, it has come slower than `min` bytes a
/// second on average: an origin that drips would otherwise hold a fetch slot for ever.
fn at_least<S>(
    body: S,
    min: u64,
    grace: std::time::Duration,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>>
where
    S: futures_util::Stream<Item = std::io::Result<bytes::Bytes>>,
{
    let started = std::time::Instant::now();
    let mut came = 0u64;
    body.map(move |chunk| {
        let chunk = chunk?;
        came += chunk.len() as u64;
        let elapsed = started.elapsed();
        if elapsed > grace {
            let rate = (came as f64 / elapsed.as_secs_f64()) as u64;
            if rate < min {
                return Err(std::io::Error::other(TooSlow { rate }));
            }
        }
        Ok(chunk)
    })
}

fn content_error(url: &str, config: &Config, e: ContentError) -> FetchError {
    match e {
        ContentError::Truncated { expected, got } => FetchError::Changed {
            url: url.to_string(),
            detail: format!("the body ended after {got} of {expected} bytes"),
        },
        ContentError::TooLong { expected } => FetchError::Changed {
            url: url.to_string(),
            detail: format!("the body ran past its {expected} bytes"),
        },
        ContentError::Io(io) => {
            if let Some(slow) = io.get_ref().and_then(|i| i.downcast_ref::<TooSlow>()) {
                return FetchError::TooSlow {
                    url: url.to_string(),
                    rate: slow.rate,
                    min: config.min_rate,
                };
            }
            // The bridge hands reqwest's error through as the io error's inner error.
            if let Some(inner) = io
                .get_ref()
                .and_then(|i| i.downcast_ref::<reqwest::Error>())
            {
                if inner.is_timeout() {
                    return FetchError::Timeout {
                        url: url.to_string(),
                        seconds: config.idle_timeout.as_secs(),
                    };
                }
            }
            // The connection closed before Content-Length bytes came: the origin's file was
            // cut short (replaced or truncated) while it streamed.
            let mut source: Option<&(dyn std::error::Error + 'static)> =
                io.get_ref().map(|e| e as _);
            while let Some(s) = source {
                // hyper reports it as an UnexpectedEof io error deep in reqwest's chain.
                if s.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof)
                {
                    return FetchError::Changed {
                        url: url.to_string(),
                        detail: "the body ended before its Content-Length".into(),
                    };
                }
                source = s.source();
            }
            if io.kind() == std::io::ErrorKind::TimedOut {
                return FetchError::Timeout {
                    url: url.to_string(),
                    seconds: config.idle_timeout.as_secs(),
                };
            }
            FetchError::Unreachable {
                url: url.to_string(),
                reason: format!(
                    "the transfer broke off: {}",
                    alluvium_task::error_chain(&io)
                ),
            }
        }
        other => FetchError::Unreachable {
            url: url.to_string(),
            reason: other.to_string(),
        },
    }
}
