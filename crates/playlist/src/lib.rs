//! The Alluvium playlist: RSS 1.0 (RDF/XML) with standard vocabularies only, and the schedule it
//! describes.
//!
//! # Format (docs/design.md section 2)
//!
//! An `rdf:RDF` root holds one RSS 1.0 `channel` (the station) and one `item` per scheduled slot.
//! An item names its media with `enc:enclosure rdf:resource` (`enc:type`, `enc:length`), its
//! slot with the event module's `ev:startdate` / `ev:enddate` (W3C-DTF, UTC, milliseconds
//! allowed), its duration with `dcterms:extent` (ISO 8601), and pins its content with
//! `dc:identifier` `urn:blake3:<hex>`. Title and `dc:creator` name what plays; `dc:date`
//! repeats the start for plain feed readers; `sy:updatePeriod` / `sy:updateFrequency` tell
//! listeners how often to fetch the playlist again.
//!
//! The 2003 format is read too: items whose media is their `link` and whose length is
//! `mm:duration` (milliseconds, `xmlns:mm="http://musicbrainz.org/mm/mm-2.0#"`), without times,
//! playing back to back from the channel's `dc:date` and looping. Mixtures work: an entry with no
//! start follows the one before it.
//!
//! # Limits and errors
//!
//! Input over [`MAX_PLAYLIST_BYTES`], not UTF-8, not well-formed, with a DOCTYPE (no DTDs, no
//! entity expansion), not RSS 1.0, or with no usable entry is an [`Error`] carrying line and
//! column. A single unusable entry is skipped with a [`Warning`] that names it; overlapping
//! entries are resolved by the later start winning (see [`Schedule`]).
//!
//! # Example
//!
//! ```
//! use alluvium_playlist::{parse, write, Channel, Entry, Playlist};
//! use chrono::{TimeDelta, TimeZone, Utc};
//!
//! let start = Utc.with_ymd_and_hms(2026, 11, 25, 20, 0, 0).unwrap();
//! let playlist = Playlist {
//!     channel: Channel {
//!         about: "http://radio.example/station.rss".into(),
//!         title: "Example Radio".into(),
//!         ..Channel::default()
//!     },
//!     entries: vec![Entry {
//!         title: Some("Night Tide".into()),
//!         media_url: "http://radio.example/media/night-tide.mp3".into(),
//!         start: Some(start),
//!         duration: Some(TimeDelta::milliseconds(192_480)),
//!         ..Entry::default()
//!     }],
//! };
//! let xml = write(&playlist);
//! let parsed = parse(xml.as_bytes()).unwrap();
//! assert!(parsed.warnings.is_empty());
//! let on_air = parsed.schedule.on_air(start + TimeDelta::seconds(60)).unwrap();
//! assert_eq!(parsed.playlist.entries[on_air.slot.entry].title.as_deref(), Some("Night Tide"));
//! assert_eq!(on_air.offset, TimeDelta::seconds(60));
//! ```

mod model;
mod parse;
mod schedule;
pub mod time;
mod warning;
mod write;

pub use model::{Blake3Hash, Channel, Entry, Playlist, UpdateHint, UpdatePeriod};
pub use parse::{parse, Parsed, MAX_ITEMS, MAX_PLAYLIST_BYTES};
pub use schedule::{OnAir, Schedule, Slot, SlotIter};
pub use warning::{Warning, WarningKind};
pub use write::write;

/// The vocabularies a playlist uses.
pub mod ns {
    pub const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
    pub const RSS: &str = "http://purl.org/rss/1.0/";
    pub const DC: &str = "http://purl.org/dc/elements/1.1/";
    pub const DCTERMS: &str = "http://purl.org/dc/terms/";
    pub const ENC: &str = "http://purl.oclc.org/net/rss_2.0/enc#";
    pub const EV: &str = "http://purl.org/rss/1.0/modules/event/";
    pub const SY: &str = "http://purl.org/rss/1.0/modules/syndication/";
    /// The 2003 format's MusicBrainz metadata (`mm:duration` in milliseconds).
    pub const MM: &str = "http://musicbrainz.org/mm/mm-2.0#";
}

/// The MIME type playlists are served with.
pub const CONTENT_TYPE: &str = "application/x-alluvium";

/// Why a document is not a usable playlist.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the playlist is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("line {line}, column {column}: not UTF-8 text")]
    NotUtf8 { line: u32, column: u32 },
    #[error("line {line}, column {column}: the document declares encoding '{encoding}'; playlists must be UTF-8")]
    Encoding {
        line: u32,
        column: u32,
        encoding: String,
    },
    #[error("line {line}, column {column}: not well-formed XML: {message}")]
    Xml {
        line: u32,
        column: u32,
        message: String,
    },
    #[error("line {line}, column {column}: a DOCTYPE is not allowed in a playlist (no DTDs, no entity definitions)")]
    Doctype { line: u32, column: u32 },
    #[error("line {line}, column {column}: {message}")]
    Entity {
        line: u32,
        column: u32,
        message: String,
    },
    #[error("line {line}, column {column}: the root element is <{found}>, not RSS 1.0's <rdf:RDF>{hint}")]
    NotRss1 {
        line: u32,
        column: u32,
        found: String,
        hint: &'static str,
    },
    #[error("line {line}, column {column}: <rdf:RDF> has no RSS 1.0 <channel> (namespace http://purl.org/rss/1.0/)")]
    NoChannel { line: u32, column: u32 },
    #[error("{count} items, over the limit of {limit}")]
    TooManyItems { count: usize, limit: usize },
    #[error("{}", no_usable_entries(*.items, .warnings))]
    NoUsableEntries {
        items: usize,
        warnings: Vec<Warning>,
    },
}

fn no_usable_entries(items: usize, warnings: &[Warning]) -> String {
    match (items, warnings.first()) {
        (0, _) => "the schedule is empty: the playlist lists no items".to_string(),
        (n, Some(w)) => {
            format!("the schedule is empty: none of its {n} item(s) is usable (first problem: {w})")
        }
        (n, None) => format!("the schedule is empty: none of its {n} item(s) is usable"),
    }
}

impl Error {
    /// Line and column of the problem, when it has a place in the document.
    pub fn position(&self) -> Option<(u32, u32)> {
        match self {
            Error::NotUtf8 { line, column }
            | Error::Encoding { line, column, .. }
            | Error::Xml { line, column, .. }
            | Error::Doctype { line, column }
            | Error::Entity { line, column, .. }
            | Error::NotRss1 { line, column, .. }
            | Error::NoChannel { line, column } => Some((*line, *column)),
            Error::TooLarge { .. } | Error::TooManyItems { .. } | Error::NoUsableEntries { .. } => {
                None
            }
        }
    }
}
