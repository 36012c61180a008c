//! A static HTTP origin: what nginx or Apache would do for a station, built in, for demos and
//! tests.
//!
//! It serves files under one directory with single-range `Range` requests (`206`, `416`),
//! strong `ETag`s and `Last-Modified`, `If-Range`, `If-None-Match` / `If-Modified-Since`
//! (`304`), `HEAD`, and the right types: `application/x-alluvium` for `.rss` playlists and the
//! audio types for media. Paths that try to leave the directory (`..`, encoded or not, or a
//! symlink pointing outside) get `404`, as do hidden files.
//!
//! Written against axum rather than with tower-http's `ServeDir` because the swarm relies on
//! `ETag` and `If-Range` (a changed origin file must answer `200`, never a range of new bytes
//! glued to old ones), and `ServeDir` offers neither.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

/// The MIME type of playlists.
pub const PLAYLIST_CONTENT_TYPE: &str = "application/x-alluvium";

/// The router serving `root`.
pub fn router(root: impl Into<PathBuf>) -> Router {
    let root = root.into();
    let root = root.canonicalize().unwrap_or(root);
    Router::new().fallback(serve).with_state(Arc::new(root))
}

/// The type a file is served with, by extension.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("rss") => PLAYLIST_CONTENT_TYPE,
        Some("mp3") => "audio/mpeg",
        Some("ogg" | "oga" | "opus") => "audio/ogg",
        Some("flac") => "audio/flac",
        Some("aac") => "audio/aac",
        Some("m4a") => "audio/mp4",
        Some("wav") => "audio/wav",
        Some("ts") => "video/mp2t",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        _ => mime_guess::from_path(path)
            .first_raw()
            .unwrap_or("application/octet-stream"),
    }
}

async fn serve(State(root): State<Arc<PathBuf>>, request: Request) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "method not allowed\n",
        )
            .into_response();
    }
    let Some(path) = resolve(&root, request.uri().path()) else {
        return not_found();
    };
    match serve_file(&path, &method, request.headers()).await {
        Ok(response) => response,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => not_found(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot serve file");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n").into_response()
        }
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// Maps a request path to a file under `root`, or `None` if it would leave `root`.
fn resolve(root: &Path, uri_path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(uri_path)
        .decode_utf8()
        .ok()?;
    let mut path = root.to_path_buf();
    for segment in decoded.split('/') {
        if segment.is_empty() || segment == "." {
            continue;
        }
        // Each segment must be one plain name: no "..", no hidden files, no separators or NULs.
        let mut components = Path::new(segment).components();
        let (Some(Component::Normal(name)), None) = (components.next(), components.next()) else {
            return None;
        };
        if segment.starts_with('.') || segment.contains(['\\', '\0']) {
            return None;
        }
        path.push(name);
    }
    // Symlinks may point anywhere: what they resolve to must still be inside root.
    let real = path.canonicalize().ok()?;
    real.starts_with(root).then_some(real)
}

async fn serve_file(
    path: &Path,
    method: &Method,
    headers: &HeaderMap,
) -> std::io::Result<Response> {
    let meta = tokio::fs::metadata(path).await?;
    if meta.is_dir() {
        let index = path.join("index.html");
        if tokio::fs::metadata(&index).await.is_ok_and(|m| m.is_file()) {
            return Box::pin(serve_file(&index, method, headers)).await;
        }
        return Ok(listing(path).await);
    }
    let len = meta.len();
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let mtime = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // nginx's form: hex mtime and size. Strong: the same bytes for the same validator.
    let etag = format!("\"{mtime:x}-{len:x}\"");
    let last_modified = httpdate::fmt_http_date(modified);

    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, content_type(path))
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, &last_modified)
        .header(header::ACCEPT_RANGES, "bytes");

    if not_modified(headers, &etag, modified) {
        return Ok(response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_default());
    }

    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = match range {
        Some(r) if if_range_allows(headers, &etag, modified) => match single_range(r, len) {
            RangeAnswer::Partial(start, end) => Some((start, end)),
            RangeAnswer::Full => None,
            RangeAnswer::Unsatisfiable => {
                return Ok(response
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                    .body(Body::empty())
                    .unwrap_or_default());
            }
        },
        _ => None,
    };
    let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
    let body_len = if len == 0 { 0 } else { end - start + 1 };
    if let Some((start, end)) = range {
        response = response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    response = response.header(header::CONTENT_LENGTH, body_len);
    if *method == Method::HEAD {
        return Ok(response.body(Body::empty()).unwrap_or_default());
    }
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let body = Body::from_stream(ReaderStream::new(file.take(body_len)));
    Ok(response.body(body).unwrap_or_default())
}

/// `If-None-Match` (weak comparison, as RFC 9110 says for it) or `If-Modified-Since`.
fn not_modified(headers: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        return inm
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == etag);
    }
    match header_date(headers.get(header::IF_MODIFIED_SINCE)) {
        Some(since) => truncate_to_seconds(modified) <= since,
        None => false,
    }
}

/// `If-Range`: the range applies only if the validator still matches (strong comparison).
fn if_range_allows(headers: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    let Some(value) = headers.get(header::IF_RANGE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    if value.starts_with('"') {
        return value == etag;
    }
    header_date(Some(
        &HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
    ))
    .is_some_and(|date| date == truncate_to_seconds(modified))
}

fn header_date(value: Option<&HeaderValue>) -> Option<SystemTime> {
    httpdate::parse_http_date(value?.to_str().ok()?).ok()
}

fn truncate_to_seconds(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

enum RangeAnswer {
    Partial(u64, u64),
    /// Ignore the header and send everything (malformed, or several ranges: allowed by RFC 9110).
    Full,
    Unsatisfiable,
}

fn single_range(value: &str, len: u64) -> RangeAnswer {
    let Ok(parsed) = http_range_header::parse_range_header(value) else {
        return RangeAnswer::Full;
    };
    match parsed.validate(len) {
        Ok(ranges) if ranges.len() == 1 => {
            RangeAnswer::Partial(*ranges[0].start(), *ranges[0].end())
        }
        Ok(_) => RangeAnswer::Full,
        Err(_) => RangeAnswer::Unsatisfiable,
    }
}

/// A plain listing of a directory without index.html (hidden files left out).
async fn listing(dir: &Path) -> Response {
    let mut names = Vec::new();
    if let Ok(mut entries) = tokio::fs::read_dir(dir).await {
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let is_dir = entry.file_type().await.is_ok_and(|t| t.is_dir());
            names.push(if is_dir { format!("{name}/") } else { name });
        }
    }
    names.sort();
    let mut html = String::from("<!doctype html><meta charset=utf-8><title>Index</title><ul>\n");
    for name in names {
        let href = percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
            .replace("%2F", "/")
            .replace("%2E", ".")
            .replace("%2D", "-")
            .replace("%5F", "_");
        let text = name.replace('&', "&amp;").replace('<', "&lt;");
        html.push_str(&format!("<li><a href=\"{href}\">{text}</a></li>\n"));
    }
    html.push_str("</ul>\n");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert_eq!(
            content_type(Path::new("station.rss")),
            PLAYLIST_CONTENT_TYPE
        );
        assert_eq!(content_type(Path::new("a.MP3")), "audio/mpeg");
        assert_eq!(content_type(Path::new("a.opus")), "audio/ogg");
        assert_eq!(content_type(Path::new("a.flac")), "audio/flac");
        assert_eq!(content_type(Path::new("news.ts")), "video/mp2t");
        assert_eq!(content_type(Path::new("a.bin")), "application/octet-stream");
    }

    #[test]
    fn ranges() {
        assert!(matches!(
            single_range("bytes=0-9", 100),
            RangeAnswer::Partial(0, 9)
        ));
        assert!(matches!(
            single_range("bytes=90-", 100),
            RangeAnswer::Partial(90, 99)
        ));
        assert!(matches!(
            single_range("bytes=-10", 100),
            RangeAnswer::Partial(90, 99)
        ));
        assert!(matches!(
            single_range("bytes=0-1,5-6", 100),
            RangeAnswer::Full
        ));
        assert!(matches!(
            single_range("bytes=200-300", 100),
            RangeAnswer::Unsatisfiable
        ));
        assert!(matches!(single_range("nonsense", 100), RangeAnswer::Full));
    }
}
