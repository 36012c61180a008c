//! Prometheus metrics of the gateway (`GET /metrics`).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// The gateway's counters and gauges. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    resolves: Family<Outcome, Counter>,
    fetches: Family<Outcome, Counter>,
    fetches_started: Counter,
    fetched_bytes: Counter,
    announces: Family<Outcome, Counter>,
    rate_limited: Counter,
    pub(crate) peers: Gauge,
    pub(crate) swarms: Gauge,
    pub(crate) flights: Gauge,
    pub(crate) stored_urls: Gauge,
    pub(crate) stored_trees: Gauge,
    pub(crate) stations: crate::report::StationMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("alluvium_gateway");
        let m = Self {
            registry: Arc::new(Registry::default()),
            resolves: Family::default(),
            fetches: Family::default(),
            fetches_started: Counter::default(),
            fetched_bytes: Counter::default(),
            announces: Family::default(),
            rate_limited: Counter::default(),
            peers: Gauge::default(),
            swarms: Gauge::default(),
            flights: Gauge::default(),
            stored_urls: Gauge::default(),
            stored_trees: Gauge::default(),
            stations: crate::report::StationMetrics::default(),
        };
        r.register(
            "resolves",
            "Content info requests, by outcome",
            m.resolves.clone(),
        );
        r.register(
            "fetches",
            "Origin fetches finished, by outcome",
            m.fetches.clone(),
        );
        r.register(
            "fetches_started",
            "Origin fetches started",
            m.fetches_started.clone(),
        );
        r.register(
            "fetched_bytes",
            "Body bytes read from origins",
            m.fetched_bytes.clone(),
        );
        r.register("announces", "Announces, by outcome", m.announces.clone());
        r.register(
            "rate_limited",
            "Requests refused by the per-IP limit",
            m.rate_limited.clone(),
        );
        r.register("peers", "Peers recorded by the tracker", m.peers.clone());
        r.register(
            "swarms",
            "Contents with at least one peer",
            m.swarms.clone(),
        );
        r.register(
            "flights",
            "Origin fetches queued or running",
            m.flights.clone(),
        );
        r.register(
            "stored_urls",
            "URLs with stored content info",
            m.stored_urls.clone(),
        );
        r.register("stored_trees", "Hash trees stored", m.stored_trees.clone());
        let st = &m.stations;
        r.register(
            "station_origin_bytes",
            "Bytes listeners report they took from a station's origin",
            st.origin_bytes.clone(),
        );
        r.register(
            "station_peer_bytes",
            "Bytes listeners report they took from each other",
            st.peer_bytes.clone(),
        );
        r.register(
            "station_silence_seconds",
            "Silence listeners report their players played",
            st.silence_seconds.clone(),
        );
        r.register(
            "station_listeners",
            "Distinct listeners of a station in the last whole minute (all gateways)",
            st.listeners.clone(),
        );
        Self {
            registry: Arc::new(r),
            ..m
        }
    }

    pub(crate) fn resolve(&self, outcome: &'static str) {
        self.resolves.get_or_create(&Outcome { outcome }).inc();
    }
    pub(crate) fn fetch_started(&self) {
        self.fetches_started.inc();
    }
    pub(crate) fn fetch_done(&self, outcome: &'static str) {
        self.fetches.get_or_create(&Outcome { outcome }).inc();
    }
    pub(crate) fn fetched_bytes(&self, n: u64) {
        self.fetched_bytes.inc_by(n);
    }
    pub(crate) fn announce(&self, outcome: &'static str) {
        self.announces.get_or_create(&Outcome { outcome }).inc();
    }
    pub(crate) fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
