//! What a swarm needs to know about one content URL: the gateway's `200` answer.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ContentError, PART_SIZE};

/// A BLAKE3 hash: 64 lowercase hex digits (what `b3sum` prints), or in a playlist
/// `urn:blake3:<hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub const URN_PREFIX: &'static str = "urn:blake3:";

    /// The hex form.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from(self.0).to_hex().to_string()
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        blake3::Hash::from_hex(hex).ok().map(Self::from)
    }

    /// Parses `urn:blake3:<hex>` (the prefix is case-insensitive, as URN schemes are).
    pub fn from_urn(urn: &str) -> Option<Self> {
        let urn = urn.trim();
        let prefix = urn.get(..Self::URN_PREFIX.len())?;
        if !prefix.eq_ignore_ascii_case(Self::URN_PREFIX) {
            return None;
        }
        Self::from_hex(&urn[Self::URN_PREFIX.len()..])
    }

    /// `urn:blake3:<hex>`.
    pub fn to_urn(&self) -> String {
        format!("{}{}", Self::URN_PREFIX, self.to_hex())
    }
}

impl From<blake3::Hash> for Hash {
    fn from(h: blake3::Hash) -> Self {
        Self(*h.as_bytes())
    }
}

impl From<Hash> for blake3::Hash {
    fn from(h: Hash) -> Self {
        blake3::Hash::from(h.0)
    }
}

impl FromStr for Hash {
    type Err = ContentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s).ok_or_else(|| ContentError::BadHash(s.chars().take(80).collect()))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_hex(&s)
            .or_else(|| Self::from_urn(&s))
            .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// Content info for one URL (docs/design.md section 4, `GET /v1/content?url=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentInfo {
    /// The media URL as asked.
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 root of the whole file.
    pub blake3: Hash,
    /// Bytes per part ([`PART_SIZE`]).
    pub chunk_size: u64,
    /// The origin's `ETag` when it was hashed, for `If-Range`.
    pub etag: Option<String>,
    /// The origin's `Last-Modified` when it was hashed.
    pub last_modified: Option<String>,
    /// Path (on the gateway) of the outboard: `/v1/content/{blake3}/outboard`.
    pub outboard: String,
}

impl ContentInfo {
    /// Info for `url` with the outboard path filled in.
    pub fn new(
        url: String,
        size: u64,
        blake3: Hash,
        etag: Option<String>,
        last_modified: Option<String>,
    ) -> Self {
        Self {
            url,
            size,
            blake3,
            chunk_size: PART_SIZE,
            etag,
            last_modified,
            outboard: format!("/v1/content/{blake3}/outboard"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_text_forms() {
        let h = Hash::from(blake3::hash(b"abc"));
        let hex = h.to_hex();
        assert_eq!(hex.parse::<Hash>().ok(), Some(h));
        assert_eq!(hex.to_uppercase().parse::<Hash>().ok(), Some(h));
        assert!("abc".parse::<Hash>().is_err());
        assert!("g".repeat(64).parse::<Hash>().is_err());
        assert_eq!(Hash::from_urn(&h.to_urn()), Some(h));
        assert_eq!(Hash::from_urn(&h.to_urn().to_uppercase()), Some(h));
        assert_eq!(Hash::from_urn("urn:blake3:abc"), None);
        assert_eq!(Hash::from_urn("urn:sha1:"), None);
        assert_eq!(Hash::from_urn("urn:blake3:é"), None);
        let json = serde_json::to_string(&h).unwrap_or_default();
        assert_eq!(json, format!("\"{hex}\""));
    }
}
