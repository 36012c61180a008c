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
