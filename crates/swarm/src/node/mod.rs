//! A listener's swarm node: its part store, its peer server, the peers it knows per content,
//! its upload budget and its metrics. Downloads ([`crate::download`]) run against a node.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alluvium_content::Hash;
use tokio_util::sync::CancellationToken;

use crate::answers::Answers;
use crate::link::{Delivered, LinkFollower};
use crate::metrics::Metrics;
use crate::proto::LONG_POLL;
use crate::store::{Store, DEFAULT_MEMORY_PER_CONTENT};
use crate::uplink::Uplink;

mod peers;
mod spread;

/// Peers remembered per content (tracker answers, peer exchange, incoming requests).
pub const MAX_KNOWN_PEERS: usize = 200;
/// Peers last learnt for any content, carried to the station's next entries (see
/// [`Node::carry_peers`]).
pub const MAX_CARRIED_PEERS: usize = 32;
/// Default connections the peer server holds at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Blob answers in progress at once due no later than a new ask (see `crate::answers`: an ask
/// due sooner than those may add up to two more); past them, `503`, and the asker asks
/// someone else.
pub const DEFAULT_MAX_BLOB_ANSWERS: usize = 2;

/// How much a node uploads to other listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UploadLimit {
    /// As fast as the sockets take it: the link's queue decides.
    #[default]
    Unlimited,
    /// Paced at this many bytes per second.
    Rate(u64),
    /// Paced at the link's rate as askers find it ([`crate::link`]), never below
    /// [`AUTO_UPLOAD_FACTOR`] times the bitrate of the entries being fetched (the highest
    /// seen), from the first one on; unlimited until then, for a plain fetch, and to askers on
    /// this machine.
    Auto,
}

/// `--upload-limit auto` paces at least at this many times the station's bitrate, until
/// askers show the link carries more: a listener needs 1x in, so this leaves a swarm room to
/// spread new parts while the headers, acknowledgements and have records that come on top of
/// it still fit a 2x uplink (docs/decisions/006).
pub const AUTO_UPLOAD_FACTOR: f64 = 1.6;

/// Askers' addresses remembered as this machine's or not; past this the table starts over.
const MAX_ADDRESSES_KNOWN: usize = 4_096;
/// Peers whose last answer's delivery waits to be reported; past this the table starts over.
const MAX_DELIVERIES_KEPT: usize = 1_024;

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Disk cache folder; `None` keeps parts in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Most bytes the disk cache holds.
    pub cache_size: u64,
    /// Memory for parts per content.
    pub memory_per_content: usize,
    pub upload_limit: UploadLimit,
    pub max_connections: usize,
    /// When a peer connection that says nothing is closed.
    pub timeouts: crate::server::Timeouts,
    /// See [`DEFAULT_MAX_BLOB_ANSWERS`].
    pub max_blob_answers: usize,
    /// How long a `have` long-poll is held.
    pub long_poll: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            cache_size: 2 << 30,
            memory_per_content: DEFAULT_MEMORY_PER_CONTENT,
            upload_limit: UploadLimit::Unlimited,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            timeouts: crate::server::Timeouts::default(),
            max_blob_answers: DEFAULT_MAX_BLOB_ANSWERS,
            long_poll: LONG_POLL,
        }
    }
}

/// What the tracker said of a member of a swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Its peer id: opaque and random, only told apart from others.
    pub id: String,
    /// When the tracker first recorded it in this swarm, on this node's clock (ms since the
    /// Unix epoch): now less the `age_ms` the tracker gave. What a peer says of itself
    /// decides nothing (docs/design.md section 4).
    pub since_ms: u64,
}

/// A known peer: its address and, while the tracker lists it, its membership.
pub type Member = (SocketAddr, Option<Membership>);

/// A node's tables stay usable if a thread panicked holding one: each change is whole.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Now, in ms since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One listener's swarm node. Shared as `Arc<Node>`.
pub struct Node {
    pub store: Store,
    pub metrics: Metrics,
    /// What this listener has to tell its station's broadcaster (`crate::report`).
    pub report: crate::report::Report,
    /// Blob answers in flight (see [`crate::answers`]).
    pub(crate) answers: Arc<Answers>,
    pub(crate) long_poll: Duration,
    pub(crate) http: reqwest::Client,
    pub(crate) uplink: Uplink,
    /// `--upload-limit auto`: the uplink's rate starts at a multiple of the bitrate fetched
    /// and follows the link (`link`).
    auto_upload: bool,
    /// Askers' addresses, and whether each is this machine's own (see `paces_to`).
    own_addresses: Mutex<HashMap<std::net::IpAddr, bool>>,
    /// `auto`: the rate the askers' reports find (see [`crate::link`]).
    link: Mutex<LinkFollower>,
    /// How each peer's last answer came, told in the next ask of it.
    deliveries: Mutex<HashMap<SocketAddr, Delivered>>,
    /// Time 0 of the link follower's clock.
    epoch: std::time::Instant,
    /// Peers per content, with their ids when the tracker named them.
    known: Mutex<HashMap<Hash, Vec<Member>>>,
    /// The peers learnt last, whatever the content, the latest first (see `carry_peers`).
    recent: Mutex<std::collections::VecDeque<SocketAddr>>,
    /// Peers that sent what does not verify: never learnt again this session.
    distrusted: Mutex<std::collections::HashSet<SocketAddr>>,
    /// Contents the tracker has answered an announce for, and when it first did (this node's
    /// own "since" in that swarm, on its clock).
    announced: Mutex<HashMap<Hash, u64>>,
    /// Contents whose downloads are short of parts due soon (see [`Node::set_short`]).
    short: Mutex<std::collections::HashSet<Hash>>,
    /// Contents whose last tracker answer was full: it may have left members out.
    partial: Mutex<std::collections::HashSet<Hash>>,
    /// Parts taken from the origin and not sent on (see `spread`).
    only_copies: Mutex<spread::OnlyCopies>,
    /// What each download last saw of its peers' bitfields (see `spread`).
    seen: Mutex<HashMap<Hash, spread::Seen>>,
    /// Grows whenever what downloads read from the node changes: peers or members learnt or
    /// forgotten, a tracker answer, a download's shortness.
    news: tokio::sync::watch::Sender<u64>,
    pub(crate) port: AtomicU16,
    /// The peer server's address as bound (its IP may be unspecified).
    pub(crate) bound: std::sync::Mutex<Option<SocketAddr>>,
    /// Fires when the peer server stops: answers that stay open (have streams) end.
    pub(crate) stopping: CancellationToken,
    peer_id: String,
    /// When this node started, on its own clock (ms since the Unix epoch).
    started_ms: u64,
    pub(crate) max_connections: usize,
    pub(crate) timeouts: crate::server::Timeouts,
}

impl Node {
    pub fn new(config: NodeConfig) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("alluvium/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(8)
            // Bytes are verified as sent: never decompressed on the way.
            .no_gzip()
            .no_brotli()
            .no_deflate()
            .build()
            .unwrap_or_default();
        let node = Arc::new(Self {
            store: Store::new(
                config.cache_dir,
                config.cache_size,
                config.memory_per_content,
            ),
            metrics: Metrics::new(),
            report: crate::report::Report::default(),
            answers: Answers::new(config.max_blob_answers),
            long_poll: config.long_poll,
            http,
            uplink: Uplink::new(match config.upload_limit {
                UploadLimit::Rate(r) if r > 0 => Some(r),
                _ => None,
            }),
            auto_upload: config.upload_limit == UploadLimit::Auto,
            own_addresses: Mutex::default(),
            link: Mutex::default(),
            deliveries: Mutex::default(),
            epoch: std::time::Instant::now(),
            known: Mutex::new(HashMap::new()),
            recent: Mutex::new(std::collections::VecDeque::new()),
            distrusted: Mutex::new(std::collections::HashSet::new()),
            announced: Mutex::new(HashMap::new()),
            partial: Mutex::new(std::collections::HashSet::new()),
            only_copies: Mutex::default(),
            seen: Mutex::default(),
            short: Mutex::new(std::collections::HashSet::new()),
            news: tokio::sync::watch::Sender::new(0),
            port: AtomicU16::new(0),
            bound: std::sync::Mutex::new(None),
            stopping: CancellationToken::new(),
            peer_id: format!(
                "{:016x}{:016x}",
                rand::random::<u64>(),
                rand::random::<u64>()
            ),
            started_ms: unix_ms(),
            max_connections: config.max_connections,
            timeouts: config.timeouts,
        });
        node.show_upload_rate();
        node
    }

    /// The peer server's port (0 before it is started).
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }

    /// This node's id in announces.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// Whether answers to `asker` are paced by the uplink. `auto` paces for the link to the
    /// network, which an asker on this machine (at an address this machine can bind, such
    /// as 127.0.0.1) is not reached over; a rate the user set holds for every answer.
    pub(crate) fn paces_to(&self, asker: std::net::IpAddr) -> bool {
        if !self.auto_upload {
            return true;
        }
        let asker = asker.to_canonical();
        let mut own = lock(&self.own_addresses);
        if own.len() >= MAX_ADDRESSES_KNOWN {
            own.clear();
        }
        let local = *own
            .entry(asker)
            .or_insert_with(|| std::net::UdpSocket::bind((asker, 0)).is_ok());
        !local
    }

    /// Tells the node the bitrate (bytes per second) of media it fetches for playing: with
    /// [`UploadLimit::Auto`] the uplink then paces at [`AUTO_UPLOAD_FACTOR`] times the
    /// highest such bitrate at least. Otherwise nothing changes.
    pub fn offer_bitrate(&self, bytes_per_second: u64) {
        if self.auto_upload && bytes_per_second > 0 {
            let floor = (bytes_per_second as f64 * AUTO_UPLOAD_FACTOR) as u64;
            let mut link = lock(&self.link);
            link.set_floor(floor);
            self.uplink.set_rate(link.rate());
            drop(link);
            self.show_upload_rate();
        }
    }

    /// An asker's report of how this node's last answer to it came (`auto` only; the answer
    /// went over the link).
    pub(crate) fn delivered(&self, report: Delivered) {
        if !self.auto_upload {
            return;
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        let mut link = lock(&self.link);
        if let Some(rate) = link.delivered(now, report) {
            self.uplink.set_rate(rate);
            drop(link);
            tracing::debug!(
                rate,
                delivered = report.rate(),
                "upload rate follows the link"
            );
            self.show_upload_rate();
        }
    }

    /// Keeps how `peer`'s answer came, to tell it in the next ask of it.
    pub(crate) fn note_delivery(&self, peer: SocketAddr, d: Delivered) {
        let mut kept = lock(&self.deliveries);
        if kept.len() >= MAX_DELIVERIES_KEPT {
            kept.clear();
        }
        kept.insert(peer, d);
    }

    /// How `peer`'s last answer came, if not told yet.
    pub(crate) fn take_delivery(&self, peer: SocketAddr) -> Option<Delivered> {
        lock(&self.deliveries).remove(&peer)
    }

    /// The uplink's rate in `/metrics` (0: not paced).
    fn show_upload_rate(&self) {
        let rate = self.uplink.rate().unwrap_or(0);
        self.metrics.upload_limit.set(rate as i64);
    }

    /// When this node started, on its own clock (ms since the Unix epoch).
    pub fn started_ms(&self) -> u64 {
        self.started_ms
    }

    /// Wakes the downloads: what they read from the node has changed.
    fn tell_downloads(&self) {
        self.news.send_modify(|n| *n += 1);
    }

    /// Watches what downloads read from the node (see `news`).
    pub fn subscribe_news(&self) -> tokio::sync::watch::Receiver<u64> {
        self.news.subscribe()
    }

    /// Whether `addr` is this node's own peer server: its bound address, or, bound to all
    /// addresses, its port on a loopback address. (Other listeners on this machine, each in its
    /// own namespace or on its own 127.x address, share the port but not the address.)
    fn is_self(&self, addr: SocketAddr) -> bool {
        match *lock(&self.bound) {
            Some(b) if b.ip().is_unspecified() => {
                addr.port() == b.port() && addr.ip().is_loopback()
            }
            Some(b) => addr == b,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn auto_upload_follows_the_highest_bitrate_offered_and_only_in_auto() {
        let auto = Node::new(NodeConfig {
            upload_limit: UploadLimit::Auto,
            ..NodeConfig::default()
        });
        assert_eq!(auto.uplink.rate(), None, "unpaced until a bitrate is known");
        auto.offer_bitrate(16_000); // 128 kbit/s
        assert_eq!(auto.uplink.rate(), Some(25_600));
        auto.offer_bitrate(8_000); // a 64 kbit/s entry does not lower it
        auto.offer_bitrate(0);
        assert_eq!(auto.uplink.rate(), Some(25_600));
        assert!(auto
            .metrics
            .encode()
            .contains("alluvium_upload_limit_bytes_per_second 25600"));

        for (limit, rate) in [
            (UploadLimit::Unlimited, None),
            (UploadLimit::Rate(0), None),
            (UploadLimit::Rate(50_000), Some(50_000)),
        ] {
            let node = Node::new(NodeConfig {
                upload_limit: limit,
                ..NodeConfig::default()
            });
            node.offer_bitrate(16_000);
            assert_eq!(node.uplink.rate(), rate, "{limit:?}");
        }
    }

    #[test]
    fn auto_upload_rises_to_the_link_askers_report_and_a_set_rate_does_not_move() {
        use crate::link::Delivered;
        // Answers of 16 KiB reported as coming at `got` bytes per second, paced at `pace`.
        let came = |got: u64, pace: u64| Delivered {
            bytes: 16_384,
            us: 16_384 * 1_000_000 / got,
            paced: pace,
        };
        let auto = Node::new(NodeConfig {
            upload_limit: UploadLimit::Auto,
            ..NodeConfig::default()
        });
        auto.offer_bitrate(16_000);
        // A 10x link (160 kB/s): each answer at the pace raises it, until two come slower.
        for _ in 0..20 {
            let pace = auto.uplink.rate().unwrap();
            auto.delivered(came(pace.min(160_000), pace));
        }
        let rate = auto.uplink.rate().unwrap();
        assert!((100_000..=160_000).contains(&rate), "{rate}");
        assert!(auto
            .metrics
            .encode()
            .contains(&format!("alluvium_upload_limit_bytes_per_second {rate}")));
        let set = Node::new(NodeConfig {
            upload_limit: UploadLimit::Rate(50_000),
            ..NodeConfig::default()
        });
        set.delivered(came(50_000, 50_000));
        assert_eq!(set.uplink.rate(), Some(50_000));
    }

    #[test]
    fn auto_pacing_spares_askers_on_this_machine_and_a_set_rate_does_not() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let auto = Node::new(NodeConfig {
            upload_limit: UploadLimit::Auto,
            ..NodeConfig::default()
        });
        assert!(
            !auto.paces_to(ip("127.0.0.1")),
            "this machine's own address"
        );
        assert!(!auto.paces_to(ip("::ffff:127.0.0.1")), "the same, mapped");
        // An address this machine does not have (TEST-NET-1), as another namespace's
        // 127.77.x.y is not the harness's listeners': across a link.
        assert!(auto.paces_to(ip("192.0.2.7")));
        let set = Node::new(NodeConfig {
            upload_limit: UploadLimit::Rate(50_000),
            ..NodeConfig::default()
        });
        assert!(
            set.paces_to(ip("127.0.0.1")),
            "the user's limit holds for all"
        );
    }

    #[tokio::test]
    async fn other_listeners_on_this_machine_are_peers_not_itself() {
        let node = Node::new(NodeConfig::default());
        let cancel = CancellationToken::new();
        let me = node
            .start_server("127.0.0.1:0".parse().unwrap(), cancel.clone())
            .await
            .unwrap();
        let root = Hash::from(blake3::hash(b"x"));
        node.learn(root, me);
        let itself = Membership {
            id: node.peer_id().to_string(),
            since_ms: 0,
        };
        node.learn_member(root, "127.0.0.9:1".parse().unwrap(), Some(itself));
        assert!(
            node.known_peers(&root).is_empty(),
            "itself, by address or by id"
        );
        // Same port, another loopback address: another listener (as in network namespaces).
        let other = SocketAddr::new("127.0.0.2".parse().unwrap(), me.port());
        node.learn(root, other);
        assert_eq!(node.known_peers(&root), vec![other]);
        cancel.cancel();
    }
}
