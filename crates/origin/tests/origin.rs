//! The origin through its router (no socket): ranges, validators, types, escapes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use axum::body::{to_bytes, Body};
use axum::http::{header, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

struct Site {
    dir: tempfile::TempDir,
    router: Router,
}

fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("media")).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(www.join("media/track one.mp3"), &data).unwrap();
    std::fs::write(www.join("station.rss"), "<rdf:RDF/>").unwrap();
    std::fs::write(www.join(".hidden"), "secret").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "outside").unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), www.join("link.txt")).unwrap();
    let router = alluvium_origin::router(&www);
    Site { dir, router }
}

async fn get(
    site: &Site,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut request = Request::get(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = site
        .router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn full_and_range_requests() {
    let site = site();
    let data = std::fs::read(site.dir.path().join("www/media/track one.mp3")).unwrap();
    let (status, h, body) = get(&site, "/media/track%20one.mp3", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, data);
    assert_eq!(h[header::CONTENT_TYPE], "audio/mpeg");
    assert_eq!(h[header::ACCEPT_RANGES], "bytes");
    assert_eq!(h[header::CONTENT_LENGTH], "100000");
    let etag = h[header::ETAG].to_str().unwrap().to_string();
    let last_modified = h[header::LAST_MODIFIED].to_str().unwrap().to_string();
    assert!(etag.starts_with('"'));

    let (status, h, body) = get(
        &site,
        "/media/track%20one.mp3",
        &[("range", "bytes=16384-32767")],
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(h[header::CONTENT_RANGE], "bytes 16384-32767/100000");
    assert_eq!(body, &data[16384..32768]);

    let (status, _, body) = get(
        &site,
        "/media/track%20one.mp3",
        &[("range", "bytes=99990-")],
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &data[99990..]);

    // If-Range with the current validator: the range; with a stale one: the whole file.
    let (status, _, _) = get(
        &site,
        "/media/track%20one.mp3",
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    let (status, _, _) = get(
        &site,
        "/media/track%20one.mp3",
        &[("range", "bytes=0-9"), ("if-range", &last_modified)],
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    let (status, _, body) = get(
        &site,
        "/media/track%20one.mp3",
        &[("range", "bytes=0-9"), ("if-range", "\"stale\"")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), data.len());

    let (status, h, _) = get(
        &site,
        "/media/track%20one.mp3",
        &[("range", "bytes=200000-")],
    )
    .await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h[header::CONTENT_RANGE], "bytes */100000");

    let (status, _, body) = get(&site, "/media/track%20one.mp3", &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
    let (status, _, _) = get(
        &site,
        "/media/track%20one.mp3",
        &[("if-modified-since", &last_modified)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn head_and_methods() {
    let site = site();
    let request = Request::head("/media/track%20one.mp3")
        .body(Body::empty())
        .unwrap();
    let response = site.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_LENGTH], "100000");
    assert!(to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .is_empty());
    let request = Request::post("/station.rss").body(Body::empty()).unwrap();
    let response = site.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn playlist_type() {
    let site = site();
    let (status, h, _) = get(&site, "/station.rss", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "application/x-alluvium");
}

#[tokio::test]
async fn no_escape() {
    let site = site();
    for path in [
        "/../outside.txt",
        "/media/../../outside.txt",
        "/%2e%2e/outside.txt",
        "/media/..%2f..%2foutside.txt",
        "/..%5coutside.txt",
        "/link.txt",
        "/.hidden",
        "/media/nothing.mp3",
        "/%00",
    ] {
        let (status, _, body) = get(&site, path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !String::from_utf8_lossy(&body).contains("outside"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn directory_listing() {
    let site = site();
    let (status, _, body) = get(&site, "/media/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("track%20one.mp3"), "{html}");
}
