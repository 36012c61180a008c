//! The local Icecast-compatible stream (docs/design.md section 4): what a listener's swarm fetched,
//! re-streamed so any internet-radio player plays it, on schedule.
//!
//! - [`icy`]: ICY metadata blocks (`StreamTitle`), every 16,000 bytes for clients that ask.
//! - [`track`]: an entry's MPEG frames or Ogg pages read out of its verified parts, its
//!   layout from the file's first and last parts (Ogg: its header pages).
//! - [`client`]: one player's paced stream (join at the scheduled position, gapless entries,
//!   silence for dead air, stall seconds).
//! - [`tv`]: one player's transport stream for a TV station: entries spliced at keyframes,
//!   timestamps on one timeline, paced by their PCRs.
//! - [`hls`]: a TV station's live HLS playlist for browsers, keyframe-aligned segments of
//!   the entries from the verified store.
//! - [`server`]: `/stream`, `/status-json.xsl`, `/metrics`, `/`.
//!
//! MP3 stations stream as MP3 (ICY metadata on request); Ogg Vorbis and Opus stations as
//! chained Ogg streams, one logical stream per entry, titled in its comments.

pub mod client;
pub mod hls;
pub mod icy;
pub mod server;
mod silence;
mod station;
pub mod track;
pub mod tv;

pub use client::Station;
pub use server::{router, serve};
