//! The listener's metrics (`GET /metrics` on the peer port), also read by progress displays.

use std::sync::Arc;

use crate::health::{Health, ServiceLabel};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters of one node. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub bytes_from_origin: Counter,
    pub bytes_from_peers: Counter,
    pub bytes_uploaded: Counter,
    /// Bitfield answers sent to peers (`have`, each a few hundred bytes on the wire).
    pub have_answers: Counter,
    pub parts_failed_verification: Counter,
    pub peers_banned: Counter,
    pub origin_changed: Counter,
    pub peers: Gauge,
    /// Seconds of silence the local stream played for want of data or of an entry.
    pub stall_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// Upload bytes per second the node paces at (0: not paced).
    pub upload_limit: Gauge,
    /// Players connected to the local stream.
    pub stream_clients: Gauge,
    /// How far a player hears ahead of the schedule less the burst, where every player should
    /// be (seconds; negative: behind), from what the local stream has sent (`stream::client`).
    pub schedule_drift_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// The gateway's and the origin's outages (see [`Health`]).
    health: Arc<Health>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let m = Self {
            registry: Arc::new(Registry::default()),
            bytes_from_origin: Counter::default(),
            bytes_from_peers: Counter::default(),
            bytes_uploaded: Counter::default(),
            have_answers: Counter::default(),
            parts_failed_verification: Counter::default(),
            peers_banned: Counter::default(),
            origin_changed: Counter::default(),
            peers: Gauge::default(),
            stall_seconds: Counter::default(),
            upload_limit: Gauge::default(),
            stream_clients: Gauge::default(),
            schedule_drift_seconds: Gauge::default(),
            health: Arc::new(Health::new(Family::default(), Family::default())),
        };
        let mut r = Registry::with_prefix("alluvium");
        r.register(
            "bytes_from_origin",
            "Verified bytes fetched from origins",
            m.bytes_from_origin.clone(),
        );
        r.register(
            "upload_limit_bytes_per_second",
            "Upload rate the node paces at (0: not paced)",
            m.upload_limit.clone(),
        );
        r.register(
            "have_answers",
            "Bitfield answers sent to peers",
            m.have_answers.clone(),
        );
        r.register(
            "bytes_from_peers",
            "Verified bytes fetched from peers",
            m.bytes_from_peers.clone(),
        );
        r.register(
            "bytes_uploaded",
            "Bytes served to other peers",
            m.bytes_uploaded.clone(),
        );
        r.register(
            "parts_failed_verification",
            "Parts received that failed verification (dropped)",
            m.parts_failed_verification.clone(),
        );
        r.register(
            "peers_banned",
            "Peers banned for sending bad data or false claims",
            m.peers_banned.clone(),
        );
        r.register(
            "origin_changed",
            "Times an origin file changed under a download",
            m.origin_changed.clone(),
        );
        r.register("peers", "Peers known across downloads", m.peers.clone());
        r.register(
            "stall_seconds",
            "Seconds of silence played for want of data or of an entry",
            m.stall_seconds.clone(),
        );
        r.register(
            "stream_clients",
            "Players connected to the local stream",
            m.stream_clients.clone(),
        );
        r.register(
            "schedule_drift_seconds",
            "How far a player of the stream hears ahead of the schedule less the join burst (where every player should be), negative when behind, from what the stream has sent (MP3 stations)",
            m.schedule_drift_seconds.clone(),
        );
        let unreachable = Family::<ServiceLabel, Gauge>::default();
        let outages = Family::<ServiceLabel, Counter>::default();
        r.register(
            "unreachable",
            "1 while a service (gateway, origin) does not answer",
            unreachable.clone(),
        );
        r.register(
            "outages",
            "Outages of a service (gateway, origin) since start",
            outages.clone(),
        );
        Self {
            registry: Arc::new(r),
            health: Arc::new(Health::new(unreachable, outages)),
            ..m
        }
    }

    /// The gateway's and the origin's health, counted here.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
