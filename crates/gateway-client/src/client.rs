//! A typed client of the gateway, used by listeners and by `alluvium broadcast --gateway`.

use std::time::Duration;

use alluvium_content::{ContentError, ContentInfo, Outboard};
use reqwest::StatusCode;
use url::Url;

use crate::wire::{AnnounceRequest, AnnounceResponse, ErrorBody, Pending};

/// Why a gateway call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("not a gateway URL: {0}")]
    BadGatewayUrl(String),
    #[error("gateway {gateway} unreachable")]
    Unreachable {
        gateway: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("gateway answered {status}: {message}")]
    Gateway {
        status: u16,
        /// The gateway's stable error code (`origin_not_found`, `too_large`...).
        code: String,
        message: String,
    },
    #[error("gateway sent an answer that is not what the protocol says: {0}")]
    BadAnswer(String),
    #[error("the gateway's hash tree for {url} is not valid")]
    Tree {
        url: String,
        #[source]
        source: ContentError,
    },
    #[error("{url}: still hashing after {seconds} s")]
    StillPending { url: String, seconds: u64 },
}

/// What `/v1/content` said.
#[derive(Debug, Clone)]
pub enum ContentStatus {
    Ready(ContentInfo),
    Pending(Pending),
}

/// A gateway client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
}

impl Client {
    /// A client of the gateway at `base` (e.g. `http://127.0.0.1:7000`).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let base = Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| ClientError::BadGatewayUrl(base.to_string()))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("alluvium/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|source| ClientError::Unreachable {
                gateway: base.to_string(),
                source,
            })?;
        Ok(Self { http, base })
    }

    fn endpoint(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        let prefix = u.path().trim_end_matches('/').to_string();
        u.set_path(&format!("{prefix}{path}"));
        u
    }

    /// Where the gateway hands out the playlist at `playlist_url` (`/v1/playlist?url=`),
    /// read from its server once per few seconds however many listeners ask.
    pub fn playlist_url(&self, playlist_url: &str) -> String {
        let mut u = self.endpoint("/v1/playlist");
        u.query_pairs_mut().append_pair("url", playlist_url);
        u.to_string()
    }

    /// The playlist at `playlist_url` as the gateway hands it out (reading it from its server
    /// if its copy is not fresh): what a broadcaster calls to have it read before listeners
    /// come, so the first of them does not wait for the read.
    pub async fn playlist(&self, playlist_url: &str) -> Result<bytes::Bytes, ClientError> {
        let response = self
            .http
            .get(self.playlist_url(playlist_url))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if response.status() != StatusCode::OK {
            return Err(Self::error_of(response).await);
        }
        response.bytes().await.map_err(|e| self.unreachable(e))
    }

    fn unreachable(&self, source: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            gateway: self.base.to_string(),
            source,
        }
    }

    async fn error_of(response: reqwest::Response) -> ClientError {
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => ClientError::Gateway {
                status,
                code: e.error,
                message: e.message,
            },
            Err(_) => ClientError::Gateway {
                status,
                code: String::new(),
                message: String::from_utf8_lossy(&body).chars().take(200).collect(),
            },
        }
    }

    /// Asks once for `url`'s content info; the gateway waits up to `wait` (its own limit when
    /// `None`) before answering pending.
    pub async fn content(
        &self,
        url: &str,
        wait: Option<Duration>,
    ) -> Result<ContentStatus, ClientError> {
        let mut endpoint = self.endpoint("/v1/content");
        endpoint.query_pairs_mut().append_pair("url", url);
        if let Some(w) = wait {
            endpoint
                .query_pairs_mut()
                .append_pair("wait", &format!("{:.3}", w.as_secs_f64()));
        }
        let response = self
            .http
            .get(endpoint)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        match response.status() {
            StatusCode::OK => response
                .json()
                .await
                .map(ContentStatus::Ready)
                .map_err(|e| ClientError::BadAnswer(e.to_string())),
            StatusCode::ACCEPTED => response
                .json()
                .await
                .map(ContentStatus::Pending)
                .map_err(|e| ClientError::BadAnswer(e.to_string())),
            _ => Err(Self::error_of(response).await),
        }
    }

    /// Content info for `url`, asking again while the gateway hashes, for at most `limit`.
    /// `progress` sees each pending answer.
    pub async fn resolve(
        &self,
        url: &str,
        limit: Duration,
        mut progress: impl FnMut(&Pending),
    ) -> Result<ContentInfo, ClientError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self
                .content(url, Some(left.min(Duration::from_secs(2))))
                .await?
            {
                ContentStatus::Ready(info) => return Ok(info),
                ContentStatus::Pending(p) => {
                    progress(&p);
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ClientError::StillPending {
                            url: url.to_string(),
                            seconds: limit.as_secs(),
                        });
                    }
                }
            }
        }
    }

    /// The hash tree of `info`, checked against its root before it is returned.
    pub async fn outboard(&self, info: &ContentInfo) -> Result<Outboard, ClientError> {
        let response = self
            .http
            .get(self.endpoint(&format!("/v1/content/{}/outboard", info.blake3)))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if response.status() != StatusCode::OK {
            return Err(Self::error_of(response).await);
        }
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        Outboard::from_bytes(info.blake3.into(), info.size, bytes.to_vec()).map_err(|source| {
            ClientError::Tree {
                url: info.url.clone(),
                source,
            }
        })
    }

    /// Announces to the tracker and gets peers back.
    pub async fn announce(
        &self,
        request: &AnnounceRequest,
    ) -> Result<AnnounceResponse, ClientError> {
        let response = self
            .http
            .post(self.endpoint("/v1/announce"))
            .json(request)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if response.status() != StatusCode::OK {
            return Err(Self::error_of(response).await);
        }
        response
            .json()
            .await
            .map_err(|e| ClientError::BadAnswer(e.to_string()))
    }
}
