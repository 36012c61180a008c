//! Writing a playlist as RSS 1.0 RDF/XML (docs/design.md section 2).

use std::fmt::Write as _;

use quick_xml::escape::escape;

use crate::model::{Entry, Playlist};
use crate::ns;
use crate::time::{format_iso_duration, format_w3cdtf};

/// Writes the playlist as RDF/XML. Every entry with a start gets `ev:startdate`, `ev:enddate`
/// and `dc:date`; an entry's `rdf:about` is the playlist URL with its start as the fragment, so
/// the same file can air many times.
pub fn write(playlist: &Playlist) -> String {
    let ch = &playlist.channel;
    let mut out = String::with_capacity(1024 + playlist.entries.len() * 900);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    let _ = writeln!(
        out,
        "<rdf:RDF xmlns:rdf=\"{}\"\n         xmlns=\"{}\"\n         xmlns:dc=\"{}\"\n         \
         xmlns:dcterms=\"{}\"\n         xmlns:enc=\"{}\"\n         xmlns:ev=\"{}\"\n         \
         xmlns:sy=\"{}\">",
        ns::RDF,
        ns::RSS,
        ns::DC,
        ns::DCTERMS,
        ns::ENC,
        ns::EV,
        ns::SY
    );
    let _ = writeln!(
        out,
        "  <channel rdf:about=\"{}\">",
        escape(xml_safe(&ch.about))
    );
    element(&mut out, 4, "title", &ch.title);
    element(&mut out, 4, "link", ch.link.as_deref().unwrap_or(&ch.about));
    element(
        &mut out,
        4,
        "description",
        ch.description.as_deref().unwrap_or(""),
    );
    if let Some(lang) = &ch.language {
        element(&mut out, 4, "dc:language", lang);
    }
    if let Some(creator) = &ch.creator {
        element(&mut out, 4, "dc:creator", creator);
    }
    if let Some(date) = ch.date {
        element(&mut out, 4, "dc:date", &format_w3cdtf(date));
    }
    if let Some(hint) = &ch.update {
        element(&mut out, 4, "sy:updatePeriod", hint.period.as_str());
        element(
            &mut out,
            4,
            "sy:updateFrequency",
            &hint.frequency.to_string(),
        );
        if let Some(base) = hint.base {
            element(&mut out, 4, "sy:updateBase", &format_w3cdtf(base));
        }
    }
    let abouts: Vec<String> = playlist
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| item_about(ch.about.as_str(), i, e))
        .collect();
    out.push_str("    <items>\n      <rdf:Seq>\n");
    for about in &abouts {
        let _ = writeln!(
            out,
            "        <rdf:li rdf:resource=\"{}\"/>",
            escape(xml_safe(about))
        );
    }
    out.push_str("      </rdf:Seq>\n    </items>\n  </channel>\n");
    for (entry, about) in playlist.entries.iter().zip(&abouts) {
        write_item(&mut out, entry, about);
    }
    out.push_str("</rdf:RDF>\n");
    out
}

/// The item's `rdf:about`: as given, else `PLAYLIST#START`, else `PLAYLIST#item-N`.
fn item_about(playlist_url: &str, index: usize, entry: &Entry) -> String {
    if let Some(about) = &entry.about {
        return about.clone();
    }
    match entry.start {
        Some(start) => format!("{playlist_url}#{}", format_w3cdtf(start)),
        None => format!("{playlist_url}#item-{}", index + 1),
    }
}

fn write_item(out: &mut String, entry: &Entry, about: &str) {
    let _ = writeln!(out, "  <item rdf:about=\"{}\">", escape(xml_safe(about)));
    element(out, 4, "title", entry.title.as_deref().unwrap_or(""));
    element(out, 4, "link", &entry.media_url);
    if let Some(creator) = &entry.creator {
        element(out, 4, "dc:creator", creator);
    }
    if let Some(t) = &entry.media_type {
        element(out, 4, "dc:format", t);
    }
    if let Some(start) = entry.start {
        let start_text = format_w3cdtf(start);
        element(out, 4, "dc:date", &start_text);
        element(out, 4, "ev:startdate", &start_text);
        if let Some(end) = entry.duration.and_then(|d| start.checked_add_signed(d)) {
            element(out, 4, "ev:enddate", &format_w3cdtf(end));
        }
    }
    if let Some(d) = entry.duration {
        element(out, 4, "dcterms:extent", &format_iso_duration(d));
    }
    if let Some(hash) = &entry.hash {
        element(out, 4, "dc:identifier", &hash.to_urn());
    }
    let _ = write!(
        out,
        "    <enc:enclosure rdf:resource=\"{}\"",
        escape(xml_safe(&entry.media_url))
    );
    if let Some(t) = &entry.media_type {
        let _ = write!(out, " enc:type=\"{}\"", escape(xml_safe(t)));
    }
    if let Some(len) = entry.length {
        let _ = write!(out, " enc:length=\"{len}\"");
    }
    out.push_str("/>\n  </item>\n");
}

fn element(out: &mut String, indent: usize, name: &str, text: &str) {
    let _ = writeln!(
        out,
        "{:indent$}<{name}>{}</{name}>",
        "",
        escape(xml_safe(text))
    );
}

/// Text as the reader will see it: control characters (not allowed in XML 1.0, or normalized
/// away by XML readers) become spaces, non-characters are dropped, ends are trimmed.
fn xml_safe(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .filter(|&c| c != '\u{FFFE}' && c != '\u{FFFF}')
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.trim().to_string()
}
