//! Asking the origin for a run of parts by HTTP Range.

use std::time::Duration;

use reqwest::header;
use reqwest::StatusCode;
use tracing::debug;

use super::peer::transport_failure;
use super::request::{done, failed, range_of, receive, Received};
use super::Event;
use crate::health::Service;
use crate::node::Node;
use crate::picker::{Failure, Request};
use crate::proto::range_header;
use crate::store::Content;

/// A request to the origin taking longer than this is abandoned.
const ORIGIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn from_origin(
    node: &Node,
    content: &Content,
    origin: &url::Url,
    if_range: Option<&str>,
    request: Request,
) -> Event {
    let (start, end) = range_of(content, &request);
    let failed = |failure| failed(&request, failure);
    let mut get = node
        .http
        .get(origin.clone())
        .header(header::RANGE, range_header(start, end))
        .timeout(ORIGIN_REQUEST_TIMEOUT);
    if let Some(v) = if_range {
        get = get.header(header::IF_RANGE, v);
    }
    let response = match get.send().await {
        Ok(r) => r,
        Err(e) => {
            let cause = crate::error_chain(&e);
            debug!("origin request failed: {cause}");
            node.metrics.health().failed(Service::Origin, &cause);
            return failed(transport_failure(&e));
        }
    };
    super::tree::report_origin_status(node, response.status());
    match response.status() {
        StatusCode::PARTIAL_CONTENT => {}
        // If-Range failed: the whole new file is coming. Drop it unread.
        StatusCode::OK | StatusCode::RANGE_NOT_SATISFIABLE => {
            return Event::OriginChanged { id: request.id }
        }
        other => {
            debug!(status = %other, "origin refused a range");
            return failed(Failure::Refused {
                status: other.as_u16(),
            });
        }
    }
    match receive(
        response,
        end - start,
        content,
        request.first,
        Duration::ZERO,
    )
    .await
    {
        Received::Kept { count, bytes, .. } => done(&request, count, bytes),
        // The origin's bytes no longer match the tree: its file changed under the same
        // validators (a weak or missing ETag). Never mixed in; peers finish the job.
        Received::Invalid { .. } => {
            node.metrics.parts_failed_verification.inc();
            Event::OriginChanged { id: request.id }
        }
        other => {
            debug!(?other, "origin answer not kept");
            failed(other.failure().unwrap_or(Failure::Broken))
        }
    }
}
