//! The peer protocol: what listeners say to each other, over plain HTTP/1.1 (the contract is
//! section 4 of `docs/design.md`; this page adds what the design leaves to the project).
//!
//! Goals: any part of any content a peer holds can be fetched with the same client that reads
//! the origin (HTTP Range), and news of new parts spreads without polling storms. Non-goals:
//! authentication (every part is verified against the tree pinned in the playlist, so a
//! lying peer costs time, never bytes played), NAT traversal, encryption.
//!
//! # Routes (on the peer port, default 7001)
//! - `GET /v1/blob/{blake3}` with `Range: bytes=S-E`: `206` with exactly those verified
//!   bytes. The range must start on a part boundary and end on one or at the end of the file
//!   ([`parse_range`]), and cover at most [`MAX_RANGE_PARTS`] parts. `404` unknown content;
//!   `416` a part in the range is not held, or the range breaks these rules; `400` a malformed
//!   or multiple range; `503` the uplink is answering as much as it can (not a fault: ask
//!   elsewhere). Without `Range`, the whole content if complete and small enough, else `416`.
//! - `GET /v1/blob/{blake3}/have[?after=N[&known=HEX]]`: the bitfield (one bit per part,
//!   most significant first, `ceil(parts/8)` bytes) with [`HAVE_VERSION_HEADER`]. With
//!   `after`, the answer waits until the version passes `N`, or `304` after [`LONG_POLL`];
//!   with `known` too (a bitfield in hex: what the asker holds or knows is here), until a
//!   part outside `known` is held.
//! - `GET /v1/blob/{blake3}/have?stream=1[&after=N][&known=HEX]`: the same news on one
//!   answer that stays open, typed [`HAVE_STREAM_TYPE`]: a **have record** per piece of news
//!   ([`encode_record`], [`RecordReader`]). With no news for [`LONG_POLL`] the last record is
//!   sent again, so the asker knows the peer is there. A peer that does not know `stream`
//!   answers as to a plain poll. (An extension of the design's long poll: a record takes about
//!   160 bytes of the uplinks, an answered poll and the next ask about 550.)
//! - `GET /v1/blob/{blake3}/peers`: the peers this node knows for the content, as JSON
//!   `["IP:PORT", ...]` (peer exchange).
//! - `GET /v1/blob/{blake3}/outboard`: the content's hash tree (the gateway's
//!   `/v1/content/{blake3}/outboard` bytes), with the content's size in [`SIZE_HEADER`];
//!   `404` unknown content. The asker checks it against the root it expects before any use
//!   (`Outboard::from_bytes`): a station outlives its gateway.
//! - `GET /metrics`, `GET /healthz`.
//!
//! # Headers
//! - [`PEER_PORT_HEADER`] on any ask: the asker serves on that port at the address it connects
//!   from; the server learns it as a peer.
//! - [`DUE_HEADER`] on a blob ask: in how many milliseconds the asker plays the first part
//!   asked (negative: overdue). The server answers the soonest due first; an ask due within
//!   [`URGENT_DUE_MS`] is **urgent** and may be taken past one more answer due sooner.
//! - [`PACED_HEADER`] on a blob answer the server's uplink paces: the rate, bytes per second.
//! - [`DELIVERED_HEADER`] on a blob ask: how the asker's last answer from this server came,
//!   `BYTES US PACED`: `BYTES` of its body came in `US` microseconds after its first bytes,
//!   and it was paced at `PACED` (that answer's [`PACED_HEADER`]). An `auto` uplink follows
//!   the link by it ([`crate::link`]); a server ignores a value that does not parse.
//!
//! # Have record
//! The version (8 bytes, big-endian) then the bitfield (`ceil(parts/8)` bytes, spare bits
//! zero):
//! ```
//! use alluvium_swarm::proto::{encode_record, RecordReader};
//! use alluvium_swarm::Bitfield;
//!
//! let mut held = Bitfield::new(10);
//! held.set(0);
//! held.set(9);
//! let record = encode_record(7, &held);
//! assert_eq!(record, [0, 0, 0, 0, 0, 0, 0, 7, 0b1000_0000, 0b0100_0000]);
//!
//! // Records arrive in pieces of any size.
//! let mut reader = RecordReader::new(10);
//! reader.push(&record[..3]);
//! assert!(reader.next_record().is_none());
//! reader.push(&record[3..]);
//! assert_eq!(reader.next_record(), Some(Ok((7, held))));
//! ```

use std::time::Duration;

use alluvium_content::PART_SIZE;

use crate::bitfield::Bitfield;

/// Longest a `have?after=N` ask is held open, and how long a have stream stays quiet before it
/// repeats its last record.
pub const LONG_POLL: Duration = Duration::from_secs(30);
/// Header with the content's size on an `/outboard` answer.
pub const SIZE_HEADER: &str = "alluvium-size";
/// Header naming the asker's own peer port.
pub const PEER_PORT_HEADER: &str = "alluvium-peer-port";
/// Header with the bitfield's version, which grows whenever the peer gains parts.
pub const HAVE_VERSION_HEADER: &str = "alluvium-have-version";
/// Content type of a have stream (`/have?stream=1`): have records, one after another.
pub const HAVE_STREAM_TYPE: &str = "application/x-alluvium-have-stream";
/// Header of a blob ask: in how many ms the asker plays the first part asked.
pub const DUE_HEADER: &str = "alluvium-due-ms";
/// Header of a paced blob answer: the rate it is paced at, bytes per second.
pub const PACED_HEADER: &str = "alluvium-paced";
/// Header of a blob ask: how the last answer from that server came (see the module's docs).
pub const DELIVERED_HEADER: &str = "alluvium-delivered";
/// An ask due within this is urgent: the server may take it past one more answer due sooner,
/// so a listener that has just joined (or is about to play silence) is not turned away
/// because the uplink is busy with other urgent answers.
pub const URGENT_DUE_MS: i64 = 3_000;
/// Most parts served in one answer.
pub const MAX_RANGE_PARTS: u64 = 64;

/// The [`DELIVERED_HEADER`] value of `d`.
pub fn delivered_header(d: &crate::link::Delivered) -> String {
    format!("{} {} {}", d.bytes, d.us, d.paced)
}

/// A [`DELIVERED_HEADER`] value; `None` unless three whole numbers.
pub fn parse_delivered(value: &str) -> Option<crate::link::Delivered> {
    let mut n = value
        .split_ascii_whitespace()
        .map(|v| v.parse::<u64>().ok());
    let d = crate::link::Delivered {
        bytes: n.next()??,
        us: n.next()??,
        paced: n.next()??,
    };
    n.next().is_none().then_some(d)
}

/// Why a `Range` header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Not one `bytes=S-E` range (`400`).
    #[error("not one byte range")]
    Malformed,
    /// Outside the file, not on part boundaries, or more than [`MAX_RANGE_PARTS`] (`416`).
    #[error("the range must be whole parts of the file, at most {MAX_RANGE_PARTS}")]
    NotParts,
}

/// The parts `(first, count)` a `Range` header asks of content of `size` bytes.
pub fn parse_range(value: &str, size: u64) -> Result<(u32, u32), RangeError> {
    let spec = value
        .trim()
        .strip_prefix("bytes=")
        .ok_or(RangeError::Malformed)?;
    if spec.contains(',') {
        return Err(RangeError::Malformed);
    }
    let (s, e) = spec.split_once('-').ok_or(RangeError::Malformed)?;
    let start: u64 = s.trim().parse().map_err(|_| RangeError::Malformed)?;
    let end: u64 = if e.trim().is_empty() {
        size.saturating_sub(1)
    } else {
        e.trim().parse().map_err(|_| RangeError::Malformed)?
    };
    let aligned_end = (end + 1) % PART_SIZE == 0 || end + 1 == size;
    if start > end || end >= size || start % PART_SIZE != 0 || !aligned_end {
        return Err(RangeError::NotParts);
    }
    let first = start / PART_SIZE;
    let count = (end / PART_SIZE) - first + 1;
    if count > MAX_RANGE_PARTS {
        return Err(RangeError::NotParts);
    }
    Ok((first as u32, count as u32))
}

/// The bytes `start..end` of parts `first..first + count` of content of `size` bytes (the last
/// part may be short).
pub fn part_bytes(first: u32, count: u32, size: u64) -> (u64, u64) {
    let start = u64::from(first) * PART_SIZE;
    let end = (u64::from(first + count) * PART_SIZE).min(size);
    (start, end)
}

/// The `Range` header value that asks for the bytes `start..end` (`end` exclusive, past
/// `start`), of a peer or of the origin.
pub fn range_header(start: u64, end: u64) -> String {
    format!("bytes={start}-{}", end.saturating_sub(1))
}

/// A have record: `version` then `bits`.
pub fn encode_record(version: u64, bits: &Bitfield) -> Vec<u8> {
    let mut record = Vec::with_capacity(8 + bits.as_bytes().len());
    record.extend_from_slice(&version.to_be_bytes());
    record.extend_from_slice(bits.as_bytes());
    record
}

/// A have record whose bitfield is not one of the content's (wrong spare bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a have record's bitfield has bits set past part {parts}")]
pub struct BadRecord {
    pub parts: u32,
}

/// Reads have records for content of `parts` parts from a stream's chunks, whatever their
/// sizes.
#[derive(Debug)]
pub struct RecordReader {
    parts: u32,
    buf: Vec<u8>,
}

impl RecordReader {
    pub fn new(parts: u32) -> Self {
        Self {
            parts,
            buf: Vec::new(),
        }
    }

    /// The length of one record.
    fn record_len(&self) -> usize {
        8 + (self.parts as usize).div_ceil(8)
    }

    /// Takes the next chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole record, if one has come.
    pub fn next_record(&mut self) -> Option<Result<(u64, Bitfield), BadRecord>> {
        let len = self.record_len();
        if self.buf.len() < len {
            return None;
        }
        let mut version = [0u8; 8];
        version.copy_from_slice(&self.buf[..8]);
        let bits = Bitfield::from_bytes(self.parts, &self.buf[8..len]);
        self.buf.drain(..len);
        Some(
            bits.map(|b| (u64::from_be_bytes(version), b))
                .ok_or(BadRecord { parts: self.parts }),
        )
    }
}
