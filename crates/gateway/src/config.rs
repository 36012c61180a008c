//! The gateway's settings and its limits, each with the reason for its value.

use std::time::Duration;

/// Default largest file the gateway fetches and hashes.
pub const DEFAULT_MAX_SIZE: u64 = 4 << 30;
/// Default origin fetches running at once: each holds a connection and a core while hashing.
pub const DEFAULT_MAX_FETCHES: usize = 4;
/// URLs waiting for or holding a fetch slot at once; past it, new URLs get `503`. Bounds the
/// memory of the single-flight table against a client inventing URLs.
pub const MAX_FLIGHTS: usize = 1024;
/// A failed fetch is remembered this long, so a burst of asks for a dead URL costs one try.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Redirects followed per fetch (each re-checked against the address policy).
pub const MAX_REDIRECTS: usize = 5;
/// Default time a `/v1/content` request waits for a fetch before answering `202`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// Default time content info is trusted before the origin is asked again (conditional GET).
pub const DEFAULT_FRESH: Duration = Duration::from_secs(300);
/// Default connect timeout towards origins.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default longest silence from an origin (headers or body) before the fetch is abandoned.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default least average rate of an origin's body, from `DEFAULT_RATE_GRACE` on: below it the
/// fetch fails and frees its slot. Far under any origin worth swarming, whose fetches share
/// its uplink unevenly (a 512 kbit/s origin hashing four files at once gave one of them
/// 4 KB/s), far over one that drips to hold slots (docs/decisions/037).
pub const DEFAULT_MIN_RATE: u64 = 1024;
/// Time an origin's body is given before its rate is judged (slow starts, a busy origin).
pub const DEFAULT_RATE_GRACE: Duration = Duration::from_secs(20);
/// Default announce interval told to peers.
pub const DEFAULT_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(30);
/// A peer not heard from for this many intervals is dropped.
pub const EXPIRY_INTERVALS: u32 = 3;
pub use alluvium_gateway_client::wire::DEFAULT_PEERS_PER_ANSWER;
/// How long a playlist read from its server is handed out before it is checked again.
pub const PLAYLIST_FRESH: Duration = Duration::from_secs(5);
/// Peers kept per content: enough for a large audience, bounded against fake announces.
pub const MAX_PEERS_PER_CONTENT: usize = 5_000;
/// Peers of one swarm kept from one host (an address, or an IPv6 /64): a household or office
/// behind one NAT with many listeners, not a machine announcing thousands of ports.
pub const MAX_PEERS_PER_HOST: usize = 32;
/// Peers kept in all (about 150 bytes each: ~30 MiB at most).
pub const MAX_PEERS_TOTAL: usize = 200_000;
/// Default per-IP request rate on /v1 (requests per second; bursts of 4x). A household or
/// office behind one NAT has a few listeners each announcing every half minute or on news.
pub const DEFAULT_RATE_LIMIT: u32 = 50;
/// Client IPs tracked by the rate limiter; past it idle ones are forgotten first.
pub const MAX_RATE_LIMITED_IPS: usize = 100_000;
/// How far ahead `--follow` resolves a playlist's entries.
pub const FOLLOW_HORIZON: Duration = Duration::from_secs(3600);
/// How often a followed playlist is read again, at most and at least.
pub const FOLLOW_MIN_INTERVAL: Duration = Duration::from_secs(30);
pub const FOLLOW_MAX_INTERVAL: Duration = Duration::from_secs(300);

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Fetch from private, loopback and link-local addresses (local demos and tests).
    pub allow_private: bool,
    pub max_size: u64,
    pub max_fetches: usize,
    pub wait: Duration,
    pub fresh: Duration,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// Least average rate of an origin's body (bytes/s) once `rate_grace` has passed.
    pub min_rate: u64,
    pub rate_grace: Duration,
    pub announce_interval: Duration,
    pub peers_per_answer: usize,
    /// Requests per second per client IP on /v1; 0 turns the limit off.
    pub rate_limit: u32,
    /// Playlists whose upcoming entries are resolved before anyone asks.
    pub follow: Vec<String>,
    /// Load balancers whose `X-Forwarded-For` names the client (`--trusted-proxy`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            allow_private: false,
            max_size: DEFAULT_MAX_SIZE,
            max_fetches: DEFAULT_MAX_FETCHES,
            wait: DEFAULT_WAIT,
            fresh: DEFAULT_FRESH,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            min_rate: DEFAULT_MIN_RATE,
            rate_grace: DEFAULT_RATE_GRACE,
            announce_interval: DEFAULT_ANNOUNCE_INTERVAL,
            peers_per_answer: DEFAULT_PEERS_PER_ANSWER,
            rate_limit: DEFAULT_RATE_LIMIT,
            follow: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}
