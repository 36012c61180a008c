//! The gateway's JSON bodies (docs/design.md section 4), shared by the service and its client.

use alluvium_content::Hash;
use serde::{Deserialize, Serialize};

/// Default most peers in one announce answer (BitTorrent trackers give 50 too): an answer with
/// fewer names every peer the tracker knows.
pub const DEFAULT_PEERS_PER_ANSWER: usize = 50;
/// An announce answer names the swarm's eldest members first, this many of them (fewer if
/// the answer is smaller): past the answer's size every member still knows the same eldest,
/// who own the origin's blocks (`PickerConfig::owners`, 6 on a live station), so all agree
/// on who fetches what from the origin.
pub const ELDEST_PER_ANSWER: usize = 8;

/// A 64-bit hash of a peer id (FNV-1a). Members are ordered by when the tracker first saw
/// them, then by this: the tracker names the eldest in that order, and each member's picker
/// gives the origin's blocks to the first of them (`alluvium_swarm::picker`).
pub fn member_hash(peer_id: &str) -> u64 {
    peer_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How much of a content a peer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Have {
    None,
    Partial,
    Complete,
}

/// Why a peer announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// Joining the swarm.
    Started,
    /// A periodic or progress announce.
    #[default]
    Update,
    /// Now holds the whole content.
    Completed,
    /// Leaving: forget this peer.
    Stopped,
}

/// `POST /v1/announce`. The peer's address is never in the body: the gateway takes the IP the
/// request came from and the `port` given (fields it does not know, such as an `addr`, are
/// ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceRequest {
    pub blake3: Hash,
    pub port: u16,
    pub peer_id: String,
    pub have: Have,
    #[serde(default)]
    pub event: Event,
    /// The station (its playlist URL) the announcer listens to: its `report` is counted there,
    /// and so is the announcer, as one listener, by its peer id (docs/design.md section 9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
    /// What the announcer heard since its last announce that got an answer, per entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub report: Vec<EntryReport>,
}

/// A listener's counters for one entry of a station since it last reported them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryReport {
    /// The entry's media URL.
    pub url: String,
    /// When the entry's slot starts, Unix milliseconds: a file aired twice is two entries.
    pub start_ms: i64,
    #[serde(default)]
    pub origin_bytes: u64,
    #[serde(default)]
    pub peer_bytes: u64,
    /// Silence its players played while this entry was on air.
    #[serde(default)]
    pub silence_ms: u64,
}

/// Most entries in one announce's report (a listener follows the entry on air and the next).
pub const MAX_REPORTS_PER_ANNOUNCE: usize = 8;
/// Longest station or entry URL in a report.
pub const MAX_REPORT_URL: usize = 2048;
/// Most bytes and silence one report may claim for one entry: what a day of 50 Mbit/s or a
/// day of silence comes to. Reports are the listeners' word; these bound what one can skew.
pub const MAX_REPORT_BYTES: u64 = 1 << 39;
pub const MAX_REPORT_SILENCE_MS: u64 = 86_400_000;

/// `GET /v1/report?station=URL[&hours=N]`: what the station's last hours cost its origin and
/// what its listeners heard, aggregated from listeners' reports (no listener's address).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub station: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub totals: ReportTotals,
    /// Distinct listeners per minute, oldest first; minutes with none are left out.
    pub listeners: Vec<ListenersAt>,
    /// Entries aired in the window, by start.
    pub entries: Vec<EntryTotals>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportTotals {
    pub origin_bytes: u64,
    pub peer_bytes: u64,
    pub silence_s: f64,
    pub peak_listeners: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenersAt {
    pub minute_ms: i64,
    pub listeners: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryTotals {
    pub url: String,
    /// From the station's playlist, when the gateway could read it.
    pub title: Option<String>,
    pub start_ms: i64,
    pub origin_bytes: u64,
    pub peer_bytes: u64,
    pub silence_s: f64,
    /// The file's size, when the gateway knows the URL: `origin_bytes / size` is what the
    /// entry cost the origin in copies of the file.
    pub size: Option<u64>,
}

/// One peer in an announce answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub peer_id: String,
    /// `IP:PORT` (IPv6 in brackets).
    pub addr: String,
    pub have: Have,
    /// How long the tracker has known this peer in this swarm, on the tracker's clock: what
    /// "who came first" means in a swarm (docs/design.md section 4). Absent from older
    /// trackers: then 0.
    #[serde(default)]
    pub age_ms: u64,
}

/// The answer to an announce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceResponse {
    /// Announce again after this many seconds.
    pub interval_s: u64,
    /// How long the tracker has known the announcer itself in this swarm, as `PeerInfo`'s
    /// `age_ms` is for the others: so each peer places itself as the others place it.
    /// Absent when it is not recorded (it stopped, or the swarm is full), or from older
    /// trackers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_ms: Option<u64>,
    pub peers: Vec<PeerInfo>,
}

/// `202` from `/v1/content`: the gateway is still fetching and hashing the URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// `queued` (waiting for a fetch slot) or `hashing`.
    pub state: String,
    pub bytes_done: u64,
    /// The size, once the origin has said it.
    pub size: Option<u64>,
}

/// Any error answer: a stable code for programs, a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

/// Longest peer id accepted.
pub const MAX_PEER_ID: usize = 64;

impl AnnounceRequest {
    /// Whether the report (station and entries) can be counted. A bad one is dropped, never
    /// the announce: a listener's swarm does not depend on its report.
    pub fn report_is_valid(&self) -> Result<(), &'static str> {
        let web = |u: &str| {
            u.len() <= MAX_REPORT_URL && (u.starts_with("http://") || u.starts_with("https://"))
        };
        if self.station.as_deref().is_some_and(|s| !web(s)) {
            return Err("station must be an http(s) URL of at most 2048 bytes");
        }
        if self.report.len() > MAX_REPORTS_PER_ANNOUNCE {
            return Err("at most 8 entries in a report");
        }
        if !self.report.is_empty() && self.station.is_none() {
            return Err("a report needs its station");
        }
        for r in &self.report {
            if !web(&r.url) {
                return Err("a reported entry's url must be an http(s) URL of at most 2048 bytes");
            }
            if r.origin_bytes > MAX_REPORT_BYTES
                || r.peer_bytes > MAX_REPORT_BYTES
                || r.silence_ms > MAX_REPORT_SILENCE_MS
            {
                return Err("a reported entry's counters are out of range");
            }
        }
        Ok(())
    }

    /// Checks what serde cannot: a usable port and a short, printable peer id.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.port == 0 {
            return Err("port must be 1-65535");
        }
        if self.peer_id.is_empty() || self.peer_id.len() > MAX_PEER_ID {
            return Err("peer_id must be 1-64 characters");
        }
        if !self
            .peer_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err("peer_id may hold only letters, digits, '-', '_' and '.'");
        }
        Ok(())
    }
}
