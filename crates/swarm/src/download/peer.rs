//! Asking a peer for a run of parts.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::header;
use reqwest::StatusCode;
use tracing::debug;

use super::request::{done, drain, failed, patience, range_of, receive, Received, IDLE_LIMIT};
use super::{report_ban, Event};
use crate::link::Delivered;
use crate::node::Node;
use crate::picker::{Failure, Request};
use crate::proto::{
    delivered_header, range_header, DELIVERED_HEADER, DUE_HEADER, PACED_HEADER, PEER_PORT_HEADER,
};
use crate::store::Content;

/// A peer that has not answered (its status) within this is given up (and backs off), and a
/// request taking longer than this is, unless its part is due later (see `patience`).
const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn from_peer(
    node: &Node,
    content: &Content,
    peer: SocketAddr,
    request: Request,
) -> Event {
    let (start, end) = range_of(content, &request);
    let failed = |failure| failed(&request, failure);
    // An answer due later may come later: the peer sends the soonest due first.
    let patient = patience(request.due_in_ms);
    let url = format!("http://{peer}/v1/blob/{}", content.root());
    let mut get = node
        .http
        .get(url)
        .header(header::RANGE, range_header(start, end))
        .header(PEER_PORT_HEADER, node.port())
        .timeout(PEER_REQUEST_TIMEOUT.max(patient + IDLE_LIMIT));
    if let Some(due) = request.due_in_ms {
        get = get.header(DUE_HEADER, due);
    }
    if let Some(d) = node.take_delivery(peer) {
        get = get.header(DELIVERED_HEADER, delivered_header(&d));
    }
    // A peer answers at once, if only `503`: the wait is for the body.
    let response = match tokio::time::timeout(PEER_REQUEST_TIMEOUT, get.send()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            debug!(%peer, "ask failed: {}", crate::error_chain(&e));
            return failed(transport_failure(&e));
        }
        Err(_) => {
            debug!(%peer, "ask failed: no answer");
            return failed(Failure::TimedOut);
        }
    };
    match response.status() {
        StatusCode::PARTIAL_CONTENT => {}
        StatusCode::RANGE_NOT_SATISFIABLE => {
            drain(response).await;
            return failed(Failure::NotHeld);
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            drain(response).await;
            return failed(Failure::Busy);
        }
        status => {
            debug!(%peer, %status, "ask refused");
            return failed(Failure::Refused {
                status: status.as_u16(),
            });
        }
    }
    let paced = response
        .headers()
        .get(PACED_HEADER)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    match receive(response, end - start, content, request.first, patient).await {
        Received::Kept { count, bytes, flow } => {
            if let (Some(paced), Some((came, took))) = (paced, flow) {
                let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                node.note_delivery(
                    peer,
                    Delivered {
                        bytes: came,
                        us,
                        paced,
                    },
                );
            }
            done(&request, count, bytes)
        }
        Received::Invalid { part } => {
            node.metrics.parts_failed_verification.inc();
            report_ban(node, peer, &format!("part {part} failing verification"));
            failed(Failure::BadData)
        }
        other => {
            debug!(%peer, ?other, "answer not kept");
            failed(other.failure().unwrap_or(Failure::Broken))
        }
    }
}

/// A request that got no answer: timed out, or the connection failed.
pub(super) fn transport_failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::TimedOut
    } else {
        Failure::Broken
    }
}
