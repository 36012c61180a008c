//! Whether the services a listener depends on answer: the gateway and the origin. An outage
//! is logged at WARN once when it starts (with its cause) and once when it ends, counted in
//! `/metrics`, and listed for the page and `/status-json.xsl` while it lasts.

use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tracing::warn;

/// A service a listener depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// The gateway: trees, the tracker, the playlist's copy.
    Gateway,
    /// The station's web server: the playlist and the media.
    Origin,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Origin => "origin",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The labels of the health metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ServiceLabel {
    service: &'static str,
}

/// A service not answering, since when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub service: Service,
    pub since: DateTime<Utc>,
    /// The first failure's cause.
    pub cause: String,
    started: Instant,
}

impl Outage {
    /// How long it has lasted.
    pub fn lasted(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

/// The services' health. Shared by the node.
pub struct Health {
    outages: Mutex<[Option<Outage>; 2]>,
    unreachable: Family<ServiceLabel, Gauge>,
    outages_total: Family<ServiceLabel, Counter>,
}

impl Health {
    pub(crate) fn new(
        unreachable: Family<ServiceLabel, Gauge>,
        outages_total: Family<ServiceLabel, Counter>,
    ) -> Self {
        for s in [Service::Gateway, Service::Origin] {
            // Listed at 0 from the start, so a dashboard sees the series before any outage.
            unreachable.get_or_create(&label(s)).set(0);
            outages_total.get_or_create(&label(s)).inc_by(0);
        }
        Self {
            outages: Mutex::new([None, None]),
            unreachable,
            outages_total,
        }
    }

    /// `service` failed to answer (unreachable, timed out, or a server error): the start of
    /// an outage unless one is on.
    pub fn failed(&self, service: Service, cause: &str) {
        let mut outages = self.outages.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut outages[service.index()];
        if slot.is_none() {
            warn!(
                service = service.name(),
                "{} unreachable: {cause}",
                service.name()
            );
            *slot = Some(Outage {
                service,
                since: Utc::now(),
                cause: cause.to_string(),
                started: Instant::now(),
            });
            self.unreachable.get_or_create(&label(service)).set(1);
            self.outages_total.get_or_create(&label(service)).inc();
        }
    }

    /// `service` answered: the end of an outage if one is on.
    pub fn answered(&self, service: Service) {
        let mut outages = self.outages.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(outage) = outages[service.index()].take() {
            warn!(
                service = service.name(),
                "{} reachable again after {:.0} s",
                service.name(),
                outage.started.elapsed().as_secs_f64()
            );
            self.unreachable.get_or_create(&label(service)).set(0);
        }
    }

    /// The outages going on.
    pub fn outages(&self) -> Vec<Outage> {
        let outages = self.outages.lock().unwrap_or_else(|p| p.into_inner());
        outages.iter().flatten().cloned().collect()
    }

    /// The outage of `service` going on, if any.
    pub fn outage(&self, service: Service) -> Option<Outage> {
        let outages = self.outages.lock().unwrap_or_else(|p| p.into_inner());
        outages[service.index()].clone()
    }
}

/// Whether a gateway call's failure means the gateway is not answering (rather than an
/// answer about the content or the origin), and then its cause.
pub fn gateway_outage(e: &alluvium_gateway_client::ClientError) -> Option<String> {
    use alluvium_gateway_client::ClientError;
    match e {
        ClientError::Unreachable { .. } | ClientError::BadAnswer(_) => Some(crate::error_chain(e)),
        _ => None,
    }
}

/// Reports a gateway call's outcome (its error, if any) to `health`.
pub fn report_gateway(health: &Health, error: Option<&alluvium_gateway_client::ClientError>) {
    match error.and_then(gateway_outage) {
        Some(cause) => health.failed(Service::Gateway, &cause),
        None => health.answered(Service::Gateway),
    }
}

fn label(service: Service) -> ServiceLabel {
    ServiceLabel {
        service: service.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Metrics;

    #[test]
    fn an_outage_is_counted_once_listed_while_it_lasts_and_ended_by_an_answer() {
        let metrics = Metrics::new();
        let health = metrics.health();
        assert!(health.outages().is_empty());
        assert!(metrics
            .encode()
            .contains("alluvium_unreachable{service=\"gateway\"} 0"));
        health.failed(Service::Gateway, "connection refused");
        health.failed(Service::Gateway, "connection refused again");
        let on = health.outages();
        assert_eq!(on.len(), 1);
        assert_eq!(
            (on[0].service, on[0].cause.as_str()),
            (Service::Gateway, "connection refused")
        );
        let text = metrics.encode();
        assert!(text.contains("alluvium_unreachable{service=\"gateway\"} 1"));
        assert!(text.contains("alluvium_outages_total{service=\"gateway\"} 1"));
        assert!(text.contains("alluvium_outages_total{service=\"origin\"} 0"));
        health.answered(Service::Origin);
        assert_eq!(
            health.outages().len(),
            1,
            "another service's answer ends nothing"
        );
        health.answered(Service::Gateway);
        assert!(health.outages().is_empty());
        health.failed(Service::Gateway, "down again");
        assert!(metrics
            .encode()
            .contains("alluvium_outages_total{service=\"gateway\"} 2"));
    }
}
