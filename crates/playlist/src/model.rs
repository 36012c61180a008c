//! What a playlist says, as plain data: the channel and its entries in document order.

use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// A station's playlist: its channel and the entries it lists, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playlist {
    pub channel: Channel,
    pub entries: Vec<Entry>,
}

/// The `channel` element: the station itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Channel {
    /// `rdf:about`: the playlist's own URL.
    pub about: String,
    pub title: String,
    pub link: Option<String>,
    pub description: Option<String>,
    /// `dc:language`.
    pub language: Option<String>,
    /// `dc:creator`: the broadcaster.
    pub creator: Option<String>,
    /// `dc:date`: where entries without a start begin (the 2003 format's whole schedule).
    pub date: Option<DateTime<Utc>>,
    /// `sy:updatePeriod`, `sy:updateFrequency`, `sy:updateBase`.
    pub update: Option<UpdateHint>,
}

/// One scheduled slot: a media URL and when it plays.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// `rdf:about`, when the item has one.
    pub about: Option<String>,
    pub title: Option<String>,
    /// `dc:creator`: the artist.
    pub creator: Option<String>,
    /// `enc:enclosure/@rdf:resource`, or the 2003 format's `link`.
    pub media_url: String,
    /// `enc:type` or `dc:format`.
    pub media_type: Option<String>,
    /// `enc:length`: the file's size in bytes.
    pub length: Option<u64>,
    /// `ev:startdate`; `None` means "right after the entry before" (or at the channel's date).
    pub start: Option<DateTime<Utc>>,
    /// From `ev:enddate` - start, else `dcterms:extent`, else the 2003 `mm:duration`.
    pub duration: Option<TimeDelta>,
    /// `dc:identifier` `urn:blake3:...`: the content's verified hash.
    pub hash: Option<Blake3Hash>,
    /// Where the item starts in the document (1-based), for messages; 0 when built in code.
    pub line: u32,
    pub column: u32,
}

impl Entry {
    /// A short name for messages: the title, else the media URL.
    pub fn label(&self) -> &str {
        self.title
            .as_deref()
            .filter(|t| !t.is_empty())
            .unwrap_or(&self.media_url)
    }

    /// `Creator - Title`, as radio players show it.
    pub fn display_title(&self) -> String {
        match (self.creator.as_deref(), self.title.as_deref()) {
            (Some(c), Some(t)) if !c.is_empty() => format!("{c} - {t}"),
            (_, Some(t)) => t.to_string(),
            (Some(c), None) => c.to_string(),
            (None, None) => self.media_url.clone(),
        }
    }
}

/// How often a reader should fetch the playlist again (RSS 1.0 syndication module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateHint {
    pub period: UpdatePeriod,
    /// Times per period; at least 1.
    pub frequency: u32,
    pub base: Option<DateTime<Utc>>,
}

impl UpdateHint {
    /// The interval between fetches the hint asks for.
    pub fn interval(&self) -> TimeDelta {
        self.period.length() / i32::try_from(self.frequency.max(1)).unwrap_or(i32::MAX)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdatePeriod {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl UpdatePeriod {
    pub fn length(self) -> TimeDelta {
        match self {
            UpdatePeriod::Hourly => TimeDelta::hours(1),
            UpdatePeriod::Daily => TimeDelta::days(1),
            UpdatePeriod::Weekly => TimeDelta::weeks(1),
            UpdatePeriod::Monthly => TimeDelta::days(30),
            UpdatePeriod::Yearly => TimeDelta::days(365),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UpdatePeriod::Hourly => "hourly",
            UpdatePeriod::Daily => "daily",
            UpdatePeriod::Weekly => "weekly",
            UpdatePeriod::Monthly => "monthly",
            UpdatePeriod::Yearly => "yearly",
        }
    }
}

impl FromStr for UpdatePeriod {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "hourly" => UpdatePeriod::Hourly,
            "daily" => UpdatePeriod::Daily,
            "weekly" => UpdatePeriod::Weekly,
            "monthly" => UpdatePeriod::Monthly,
            "yearly" => UpdatePeriod::Yearly,
            _ => return Err(()),
        })
    }
}

/// The content hash an entry pins (`dc:identifier`, `urn:blake3:<hex>`): the content crate's.
pub use alluvium_content::Hash as Blake3Hash;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_interval() {
        let hint = UpdateHint {
            period: UpdatePeriod::Hourly,
            frequency: 12,
            base: None,
        };
        assert_eq!(hint.interval(), TimeDelta::minutes(5));
        let zero = UpdateHint {
            period: UpdatePeriod::Daily,
            frequency: 0,
            base: None,
        };
        assert_eq!(zero.interval(), TimeDelta::days(1));
    }
}
