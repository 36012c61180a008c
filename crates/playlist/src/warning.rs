//! Warnings: something in the playlist was unusable or contradictory, and what was done about it.

use std::fmt;

use chrono::TimeDelta;

use crate::time::format_clock;

/// A named problem with one part of the playlist (the rest is still used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where the element starts (1-based); 0 when the entry was built in code.
    pub line: u32,
    pub column: u32,
    /// What it is about: `item 3 (Night Tide)`, `channel`.
    pub subject: String,
    pub kind: WarningKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// Skipped: neither `enc:enclosure` nor a 2003-style `link` with `mm:duration`.
    NoMedia,
    /// Skipped: the media URL is not an absolute http(s) URL.
    MediaNotHttp { url: String },
    /// Skipped: a date that is not W3C-DTF.
    BadDate { field: &'static str, value: String },
    /// Ignored: the channel's `dc:date` is not W3C-DTF (entries without a start have no base).
    BadChannelDate { value: String },
    /// Skipped: a duration that cannot be read.
    BadDuration { field: &'static str, value: String },
    /// Skipped: zero, negative (an end before the start) or longer than the limit.
    DurationOutOfRange { duration: TimeDelta },
    /// Skipped: a `urn:blake3:` identifier that is not 64 hex digits.
    BadHash { value: String },
    /// Skipped: `enc:length` is not a byte count.
    BadLength { value: String },
    /// Skipped: a second item with the same `rdf:about`.
    DuplicateItem,
    /// Skipped: no `ev:startdate`, nothing before it to follow, and no channel `dc:date`.
    NoStart,
    /// Skipped: no end, no duration, and no later start to end at.
    NoDuration,
    /// Dropped: another entry starts at the same instant; the later one in the document wins.
    SameStart { replaced_by: String },
    /// Cut short: the next entry starts before this one ends (the later start wins).
    Overlap { cut_by: String, lost: TimeDelta },
    /// Ignored: more than one `channel`; the first is used.
    ExtraChannel,
    /// The channel has no title.
    NoChannelTitle,
    /// Ignored: `sy:updatePeriod` / `sy:updateFrequency` that cannot be read.
    BadUpdateHint { value: String },
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WarningKind::NoMedia => write!(
                f,
                "skipped: no media (no enc:enclosure rdf:resource, and no 2003-style link with \
                 mm:duration)"
            ),
            WarningKind::MediaNotHttp { url } => {
                write!(f, "skipped: media URL '{url}' is not an absolute http(s) URL")
            }
            WarningKind::BadDate { field, value } => {
                write!(f, "skipped: {field} '{value}' is not a W3C-DTF date-time")
            }
            WarningKind::BadChannelDate { value } => {
                write!(f, "ignored: dc:date '{value}' is not a W3C-DTF date-time")
            }
            WarningKind::BadDuration { field, value } => {
                write!(f, "skipped: {field} '{value}' is not a duration")
            }
            WarningKind::DurationOutOfRange { duration } => write!(
                f,
                "skipped: duration {} is not between zero and {}",
                format_clock(*duration),
                format_clock(crate::time::MAX_ENTRY_DURATION)
            ),
            WarningKind::BadHash { value } => {
                write!(f, "skipped: dc:identifier '{value}' is not urn:blake3: and 64 hex digits")
            }
            WarningKind::BadLength { value } => {
                write!(f, "skipped: enc:length '{value}' is not a size in bytes")
            }
            WarningKind::DuplicateItem => write!(f, "skipped: the same rdf:about appears earlier"),
            WarningKind::NoStart => write!(
                f,
                "skipped: no ev:startdate, no entry before it to follow, and no channel dc:date"
            ),
            WarningKind::NoDuration => write!(
                f,
                "skipped: no ev:enddate, dcterms:extent or mm:duration, and no later entry to end at"
            ),
            WarningKind::SameStart { replaced_by } => {
                write!(f, "dropped: '{replaced_by}' starts at the same instant (the later item wins)")
            }
            WarningKind::Overlap { cut_by, lost } => write!(
                f,
                "cut short by {}: '{cut_by}' starts before it ends (the later start wins)",
                format_clock(*lost)
            ),
            WarningKind::ExtraChannel => write!(f, "ignored: only the first channel is used"),
            WarningKind::NoChannelTitle => write!(f, "the channel has no title"),
            WarningKind::BadUpdateHint { value } => {
                write!(f, "ignored: sy: update hint '{value}' cannot be read")
            }
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}, column {}: ", self.line, self.column)?;
        }
        write!(f, "{}: {}", self.subject, self.kind)
    }
}
