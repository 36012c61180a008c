//! Content identity and verification: what makes a byte from a stranger safe to play.
//!
//! Content is named by its BLAKE3 hash (`urn:blake3:<hex>`, the value `b3sum` prints). Its hash
//! tree is a [bao](https://github.com/oconnor663/bao) *outboard* built by the `bao-tree` crate
//! with 16 KiB chunk groups: one group is a **part**, the unit of verification and of exchange
//! between peers. Size + root + outboard is all a listener needs to check any part of a file
//! it gets from a peer or from the origin, before it keeps, plays or passes on a byte.
//!
//! # The outboard on the wire
//!
//! `GET /v1/content/{blake3}/outboard` (the gateway) answers the **pre-order** outboard without a
//! size prefix: `64 * (parts - 1)` bytes, each a pair of child hashes, in the order bao-tree's
//! `PreOrderMemOutboard` keeps them. The size comes from the content info. A file of one part
//! (up to 16 KiB) has an empty outboard: the root alone verifies it.
//!
//! ```
//! use alluvium_content::{Outboard, PART_SIZE};
//!
//! let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
//! let outboard = Outboard::compute(&data[..], data.len() as u64, |_| {})?;
//! assert_eq!(outboard.root(), blake3::hash(&data));
//! assert_eq!(outboard.parts(), 3);
//!
//! // A peer sends part 1: check it against the tree (rebuilt from the bytes received).
//! let tree = Outboard::from_bytes(outboard.root(), outboard.size(), outboard.as_bytes().to_vec())?;
//! let part = &data[PART_SIZE as usize..2 * PART_SIZE as usize];
//! tree.verify_parts(1, part)?;
//!
//! let mut bad = part.to_vec();
//! bad[7] ^= 1;
//! assert!(tree.verify_parts(1, &bad).is_err());
//! # Ok::<(), alluvium_content::ContentError>(())
//! ```

mod error;
mod info;
mod outboard;

pub use error::ContentError;
pub use info::{ContentInfo, Hash};
pub use outboard::{part_count, part_range, Outboard, PART_SIZE};
