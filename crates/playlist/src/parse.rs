//! Reading a playlist: bytes -> a small element tree -> [`Playlist`] + warnings -> [`Schedule`].
//!
//! Safety first: the input is capped ([`MAX_PLAYLIST_BYTES`]), must be UTF-8, may not contain a
//! DOCTYPE (so no DTD and no entity definitions: the billion-laughs attack has nothing to expand),
//! and only XML's five predefined entities and character references are resolved. Nesting depth
//! and item count are capped. Everything else that is wrong with one item skips that item with a
//! [`Warning`] naming it; only a document that is not an RSS 1.0 playlist at all is an [`Error`].

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

use crate::model::{Blake3Hash, Channel, Entry, Playlist, UpdateHint, UpdatePeriod};
use crate::schedule::Schedule;
use crate::time::{parse_iso_duration, parse_w3cdtf, MAX_ENTRY_DURATION};
use crate::warning::{Warning, WarningKind};
use crate::{ns, Error};

/// Largest playlist accepted. A 10,000-entry playlist is about 9 MB; a week of 3-minute tracks
/// is 3,400 entries. Anything beyond this is refused before parsing.
pub const MAX_PLAYLIST_BYTES: usize = 32 << 20;
/// Most `item` elements accepted in one playlist.
pub const MAX_ITEMS: usize = 100_000;
/// Deepest element nesting accepted (a playlist needs 5).
const MAX_DEPTH: usize = 64;

/// A parsed playlist: what it says, the schedule that follows from it, and what was skipped.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub playlist: Playlist,
    pub schedule: Schedule,
    pub warnings: Vec<Warning>,
}

/// Parses a playlist document (RSS 1.0 of docs/design.md section 2, the 2003 format, or a mixture).
pub fn parse(input: &[u8]) -> Result<Parsed, Error> {
    if input.len() > MAX_PLAYLIST_BYTES {
        return Err(Error::TooLarge {
            size: input.len(),
            limit: MAX_PLAYLIST_BYTES,
        });
    }
    let lines = Lines::new(input);
    let text = std::str::from_utf8(input).map_err(|e| {
        let (line, column) = lines.locate(e.valid_up_to());
        Error::NotUtf8 { line, column }
    })?;
    let mut items = Items::default();
    let tree = Tree::read(text, &lines, &mut |tree, item| {
        items.take(tree, item, &lines)
    })?;
    let mut warnings = Vec::new();
    let (playlist, items) = interpret(&tree, &lines, items, &mut warnings)?;
    let (schedule, schedule_warnings) = Schedule::build(&playlist);
    warnings.extend(schedule_warnings);
    if schedule.is_empty() {
        return Err(Error::NoUsableEntries { items, warnings });
    }
    Ok(Parsed {
        playlist,
        schedule,
        warnings,
    })
}

/// Byte offset -> (line, column), both 1-based; columns count characters.
struct Lines<'a> {
    input: &'a [u8],
    starts: Vec<usize>,
    /// The last place located (offset, line index, column): items are located in document
    /// order, so the next column is counted on from there, not from its line's start. A
    /// playlist written on one line would otherwise cost time quadratic in its length.
    last: std::cell::Cell<(usize, usize, usize)>,
}

impl<'a> Lines<'a> {
    fn new(input: &'a [u8]) -> Self {
        let mut starts = vec![0];
        starts.extend(
            input
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Lines {
            input,
            starts,
            last: std::cell::Cell::new((0, 0, 1)),
        }
    }

    fn locate(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.input.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let (last_offset, last_line, last_column) = self.last.get();
        let (from, column) = if last_line == line && last_offset <= offset {
            (last_offset, last_column)
        } else {
            (self.starts[line - 1], 1)
        };
        // Count characters, not bytes: continuation bytes are 0b10xxxxxx.
        let column = column
            + self.input[from..offset]
                .iter()
                .filter(|&&b| b & 0xC0 != 0x80)
                .count();
        self.last.set((offset, line, column));
        (to_u32(line), to_u32(column))
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// An attribute: its namespace, local name and value.
type Attribute = (String, String, String);

/// One element: just what interpreting RSS 1.0 needs.
struct Elem {
    ns: String,
    local: String,
    attrs: Vec<Attribute>,
    text: String,
    children: Vec<usize>,
    offset: usize,
}

impl Elem {
    fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }

    fn attr(&self, ns: &str, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, l, _)| n == ns && l == local)
            .map(|(_, _, v)| v.as_str())
    }

    fn qualified_name(&self) -> String {
        match self.ns.as_str() {
            "" => self.local.clone(),
            ns::RDF => format!("rdf:{}", self.local),
            ns => format!("{{{ns}}}{}", self.local),
        }
    }
}

/// An element's namespace and local name, and its attributes (namespace, local name, value),
/// namespace declarations left out.
fn names_and_attributes(
    reader: &NsReader<&[u8]>,
    start: &quick_xml::events::BytesStart<'_>,
    offset: usize,
    xml_error: &impl Fn(u64, String) -> Error,
    at: &impl Fn() -> (u32, u32),
) -> Result<(String, String, Vec<Attribute>), Error> {
    let namespace = |r: ResolveResult<'_>| match r {
        ResolveResult::Bound(ns) => Ok(ns.0.to_string()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(prefix) => Err(xml_error(
            offset as u64,
            format!("namespace prefix '{prefix}' is not declared"),
        )),
    };
    let resolver = reader.resolver();
    let (ns, local) = resolver.resolve_element(start.name());
    let ns = namespace(ns)?;
    let local = local.as_ref().to_string();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| xml_error(offset as u64, e.to_string()))?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let (ans, alocal) = resolver.resolve_attribute(attr.key);
        let ans = namespace(ans)?;
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| {
                let (line, column) = at();
                Error::Entity {
                    line,
                    column,
                    message: e.to_string(),
                }
            })?;
        attrs.push((ans, alocal.as_ref().to_string(), value.into_owned()));
    }
    Ok((ns, local, attrs))
}

/// The character an entity or character reference stands for: only XML's five predefined
/// entities and character references.
fn reference(
    r: &quick_xml::events::BytesRef<'_>,
    at: &impl Fn() -> (u32, u32),
) -> Result<char, Error> {
    let resolved = match r.resolve_char_ref() {
        Ok(Some(c)) => Some(c),
        Ok(None) => match r.xml10_content().as_ref() {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "apos" => Some('\''),
            "quot" => Some('"'),
            _ => None,
        },
        Err(_) => None,
    };
    resolved.ok_or_else(|| {
        let (line, column) = at();
        Error::Entity {
            line,
            column,
            message: format!(
                "unknown entity '&{};' (only XML's five predefined entities \
                 and character references are allowed)",
                r.xml10_content()
            ),
        }
    })
}

struct Tree {
    elems: Vec<Elem>,
}

/// The items read so far, each made an [`Entry`] (or a warning) as soon as it ends and its
/// elements let go: a playlist's tree never holds more than one item, so reading takes a few
/// times the document's size, not tens.
#[derive(Default)]
struct Items {
    entries: Vec<Entry>,
    warnings: Vec<Warning>,
    seen_about: HashSet<String>,
    count: usize,
}

impl Items {
    /// Takes in the item `item` of `tree` (ended just now).
    fn take(&mut self, tree: &Tree, item: usize, lines: &Lines<'_>) -> Result<(), Error> {
        self.count += 1;
        if self.count > MAX_ITEMS {
            return Err(Error::TooManyItems {
                count: self.count,
                limit: MAX_ITEMS,
            });
        }
        let item = &tree.elems[item];
        let about = item.attr(ns::RDF, "about").map(str::to_string);
        if let Some(about) = &about {
            if !self.seen_about.insert(about.clone()) {
                let name = format!("item {} ({about})", self.count);
                let w = warn(lines, item.offset, &name, WarningKind::DuplicateItem);
                self.warnings.push(w);
                return Ok(());
            }
        }
        match read_item(tree, item, about) {
            Ok(mut entry) => {
                (entry.line, entry.column) = lines.locate(item.offset);
                self.entries.push(entry);
            }
            Err((name, kind)) => {
                let name = format!("item {} ({name})", self.count);
                self.warnings.push(warn(lines, item.offset, &name, kind));
            }
        }
        Ok(())
    }
}

/// Hands element `ended` to `on_item` if it is an item of an `rdf:RDF` root (`depth` 1 once
/// it ended), then drops it and its elements from the tree.
fn take_item(
    elems: &mut Vec<Elem>,
    ended: usize,
    depth: usize,
    on_item: &mut impl FnMut(&Tree, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    if depth != 1 || !elems[0].is(ns::RDF, "RDF") || !elems[ended].is(ns::RSS, "item") {
        return Ok(());
    }
    let view = Tree {
        elems: std::mem::take(elems),
    };
    on_item(&view, ended)?;
    *elems = view.elems;
    // The item is the root's last child, and its elements the last ones.
    elems.truncate(ended);
    elems[0].children.pop();
    Ok(())
}

impl Tree {
    /// Reads the document's elements. Each `item` of an `rdf:RDF` root goes to `on_item` as
    /// it ends, and is then dropped from the tree.
    fn read(
        text: &str,
        lines: &Lines<'_>,
        on_item: &mut impl FnMut(&Tree, usize) -> Result<(), Error>,
    ) -> Result<Tree, Error> {
        let mut reader = NsReader::from_str(text);
        reader.config_mut().expand_empty_elements = true;
        let mut tree = Tree { elems: Vec::new() };
        let elems = &mut tree.elems;
        let mut stack: Vec<usize> = Vec::new();
        let xml_error = |offset: u64, message: String| {
            let (line, column) = lines.locate(usize::try_from(offset).unwrap_or(usize::MAX));
            Error::Xml {
                line,
                column,
                message,
            }
        };
        loop {
            let offset = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            let at = || lines.locate(offset);
            let event = match reader.read_event() {
                Ok(event) => event,
                Err(e) => return Err(xml_error(reader.error_position(), e.to_string())),
            };
            match event {
                Event::Decl(decl) => {
                    if let Some(Ok(enc)) = decl.encoding() {
                        let enc = enc.to_ascii_lowercase();
                        if !matches!(enc.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
                            let (line, column) = at();
                            return Err(Error::Encoding {
                                line,
                                column,
                                encoding: enc,
                            });
                        }
                    }
                }
                Event::DocType(_) => {
                    let (line, column) = at();
                    return Err(Error::Doctype { line, column });
                }
                Event::Start(start) => {
                    if stack.is_empty() && !elems.is_empty() {
                        return Err(xml_error(
                            offset as u64,
                            "more than one root element".into(),
                        ));
                    }
                    if stack.len() >= MAX_DEPTH {
                        return Err(xml_error(
                            offset as u64,
                            format!("elements nested deeper than {MAX_DEPTH} levels"),
                        ));
                    }
                    let (ns, local, attrs) =
                        names_and_attributes(&reader, &start, offset, &xml_error, &at)?;
                    let id = elems.len();
                    elems.push(Elem {
                        ns,
                        local,
                        attrs,
                        text: String::new(),
                        children: Vec::new(),
                        offset,
                    });
                    if let Some(&parent) = stack.last() {
                        elems[parent].children.push(id);
                    }
                    stack.push(id);
                }
                Event::End(_) => {
                    if let Some(ended) = stack.pop() {
                        take_item(elems, ended, stack.len(), on_item)?;
                    }
                }
                Event::Text(t) => {
                    if let Some(&top) = stack.last() {
                        elems[top].text.push_str(&t.xml10_content());
                    } else if !t.xml10_content().trim().is_empty() {
                        return Err(xml_error(
                            offset as u64,
                            "text outside the root element".into(),
                        ));
                    }
                }
                Event::CData(c) => {
                    if let Some(&top) = stack.last() {
                        elems[top].text.push_str(&c.xml10_content());
                    }
                }
                Event::GeneralRef(r) => {
                    let c = reference(&r, &at)?;
                    if let Some(&top) = stack.last() {
                        elems[top].text.push(c);
                    }
                }
                // `expand_empty_elements` turns `<a/>` into Start + End, so Empty never comes.
                Event::Comment(_) | Event::PI(_) | Event::Empty(_) => {}
                Event::Eof => break,
            }
        }
        if elems.is_empty() {
            let (line, column) = lines.locate(lines.input.len());
            return Err(Error::Xml {
                line,
                column,
                message: "no root element".into(),
            });
        }
        if !stack.is_empty() {
            let (line, column) = lines.locate(lines.input.len());
            return Err(Error::Xml {
                line,
                column,
                message: format!("<{}> is never closed", elems[stack[stack.len() - 1]].local),
            });
        }
        Ok(tree)
    }

    fn children<'t>(&'t self, of: &'t Elem) -> impl Iterator<Item = &'t Elem> + 't {
        of.children.iter().map(move |&i| &self.elems[i])
    }

    /// The trimmed text of the first child `ns:local`, if it has any.
    fn child_text(&self, of: &Elem, ns: &str, local: &str) -> Option<String> {
        self.children(of)
            .find(|c| c.is(ns, local))
            .map(|c| c.text.trim().to_string())
            .filter(|t| !t.is_empty())
    }
}

fn interpret(
    tree: &Tree,
    lines: &Lines<'_>,
    items: Items,
    warnings: &mut Vec<Warning>,
) -> Result<(Playlist, usize), Error> {
    let root = &tree.elems[0];
    if !root.is(ns::RDF, "RDF") {
        let (line, column) = lines.locate(root.offset);
        let hint = match root.local.as_str() {
            "rss" => " (this looks like RSS 2.0; Alluvium playlists are RSS 1.0)",
            "feed" => " (this looks like an Atom feed; Alluvium playlists are RSS 1.0)",
            "RDF" => " (the RDF namespace is wrong)",
            _ => "",
        };
        return Err(Error::NotRss1 {
            line,
            column,
            found: root.qualified_name(),
            hint,
        });
    }
    let mut channels = tree.children(root).filter(|c| c.is(ns::RSS, "channel"));
    let Some(channel_elem) = channels.next() else {
        let (line, column) = lines.locate(root.offset);
        return Err(Error::NoChannel { line, column });
    };
    for extra in channels {
        warnings.push(warn(
            lines,
            extra.offset,
            "channel",
            WarningKind::ExtraChannel,
        ));
    }
    let channel = read_channel(tree, channel_elem, lines, warnings);

    warnings.extend(items.warnings);
    let item_count = items.count;
    let entries = items.entries;
    Ok((Playlist { channel, entries }, item_count))
}

fn warn(lines: &Lines<'_>, offset: usize, subject: &str, kind: WarningKind) -> Warning {
    let (line, column) = lines.locate(offset);
    Warning {
        line,
        column,
        subject: subject.to_string(),
        kind,
    }
}

fn read_channel(
    tree: &Tree,
    elem: &Elem,
    lines: &Lines<'_>,
    warnings: &mut Vec<Warning>,
) -> Channel {
    let text = |ns: &str, local: &str| tree.child_text(elem, ns, local);
    let mut bad = |kind: WarningKind| warnings.push(warn(lines, elem.offset, "channel", kind));
    let title = text(ns::RSS, "title").or_else(|| text(ns::DC, "title"));
    if title.is_none() {
        bad(WarningKind::NoChannelTitle);
    }
    let date = text(ns::DC, "date").and_then(|d| {
        let parsed = parse_w3cdtf(&d);
        if parsed.is_none() {
            bad(WarningKind::BadChannelDate { value: d });
        }
        parsed
    });
    let period = text(ns::SY, "updatePeriod");
    let frequency = text(ns::SY, "updateFrequency");
    let update = if period.is_some() || frequency.is_some() {
        let p = period
            .as_deref()
            .map_or(Ok(UpdatePeriod::Daily), str::parse);
        let f = frequency
            .as_deref()
            .map_or(Ok(1), |f| f.parse::<u32>().map_err(|_| ()));
        match (p, f) {
            (Ok(period), Ok(frequency)) if frequency > 0 => Some(UpdateHint {
                period,
                frequency,
                base: text(ns::SY, "updateBase").as_deref().and_then(parse_w3cdtf),
            }),
            _ => {
                let value = format!(
                    "{} x {}",
                    period.as_deref().unwrap_or("daily"),
                    frequency.as_deref().unwrap_or("1")
                );
                bad(WarningKind::BadUpdateHint { value });
                None
            }
        }
    } else {
        None
    };
    Channel {
        about: elem.attr(ns::RDF, "about").unwrap_or_default().to_string(),
        title: title.unwrap_or_default(),
        link: text(ns::RSS, "link"),
        description: text(ns::RSS, "description"),
        language: text(ns::DC, "language"),
        creator: text(ns::DC, "creator"),
        date,
        update,
    }
}

/// Reads one `item`; on failure, the item's best name and why it is skipped.
/// A date-time field, if present.
fn date_field(
    value: Option<String>,
    field: &'static str,
) -> Result<Option<DateTime<Utc>>, WarningKind> {
    match value {
        None => Ok(None),
        Some(s) => match parse_w3cdtf(&s) {
            Some(t) => Ok(Some(t)),
            None => Err(WarningKind::BadDate { field, value: s }),
        },
    }
}

/// The duration from `dcterms:extent`, else the 2003 format's `mm:duration` (milliseconds).
fn duration_field(
    extent: Option<String>,
    mm_duration: Option<String>,
) -> Result<Option<TimeDelta>, WarningKind> {
    match (extent, mm_duration) {
        (Some(extent), _) => match parse_iso_duration(&extent) {
            Some(d) => Ok(Some(d)),
            None => Err(WarningKind::BadDuration {
                field: "dcterms:extent",
                value: extent,
            }),
        },
        (None, Some(ms)) => match ms.parse::<i64>().ok().and_then(TimeDelta::try_milliseconds) {
            Some(d) => Ok(Some(d)),
            None => Err(WarningKind::BadDuration {
                field: "mm:duration",
                value: ms,
            }),
        },
        (None, None) => Ok(None),
    }
}

/// The content hash an item pins (`dc:identifier` of `urn:blake3:`), the last one if several.
fn pinned_hash(tree: &Tree, item: &Elem) -> Result<Option<Blake3Hash>, WarningKind> {
    let mut hash = None;
    for id in tree.children(item).filter(|c| c.is(ns::DC, "identifier")) {
        let id = id.text.trim();
        if id.len() >= Blake3Hash::URN_PREFIX.len()
            && id[..Blake3Hash::URN_PREFIX.len()].eq_ignore_ascii_case(Blake3Hash::URN_PREFIX)
        {
            match Blake3Hash::from_urn(id) {
                Some(h) => hash = Some(h),
                None => {
                    return Err(WarningKind::BadHash {
                        value: id.to_string(),
                    })
                }
            }
        }
    }
    Ok(hash)
}

fn read_item(
    tree: &Tree,
    item: &Elem,
    about: Option<String>,
) -> Result<Entry, (String, WarningKind)> {
    let text = |ns: &str, local: &str| tree.child_text(item, ns, local);
    let title = text(ns::RSS, "title").or_else(|| text(ns::DC, "title"));
    let link = text(ns::RSS, "link");
    let enclosure = tree.children(item).find(|c| c.is(ns::ENC, "enclosure"));
    let enclosure_url = enclosure.and_then(|e| {
        e.attr(ns::RDF, "resource")
            .or_else(|| e.attr(ns::ENC, "url"))
            .map(|u| u.trim().to_string())
    });
    let mm_duration = text(ns::MM, "duration");
    let name = title
        .clone()
        .or_else(|| about.clone())
        .or_else(|| enclosure_url.clone())
        .or_else(|| link.clone())
        .unwrap_or_else(|| "untitled".into());
    let fail = |kind: WarningKind| Err((name.clone(), kind));

    // The media: the enclosure, else the 2003 format's link (recognised by its mm:duration).
    let media_url = match (enclosure_url, &mm_duration, &link) {
        (Some(url), _, _) if !url.is_empty() => url,
        (_, Some(_), Some(link)) => link.clone(),
        _ => return fail(WarningKind::NoMedia),
    };
    if !is_http_url(&media_url) {
        return fail(WarningKind::MediaNotHttp { url: media_url });
    }

    let named = |kind: WarningKind| (name.clone(), kind);
    let start = date_field(text(ns::EV, "startdate"), "ev:startdate").map_err(named)?;
    let end = date_field(text(ns::EV, "enddate"), "ev:enddate").map_err(named)?;
    let duration = match (start, end) {
        (Some(s), Some(e)) => Some(e - s),
        _ => duration_field(text(ns::DCTERMS, "extent"), mm_duration).map_err(named)?,
    };
    if let Some(d) = duration {
        if d <= TimeDelta::zero() || d > MAX_ENTRY_DURATION {
            return fail(WarningKind::DurationOutOfRange { duration: d });
        }
    }
    let hash = pinned_hash(tree, item).map_err(named)?;

    let length = match enclosure.and_then(|e| e.attr(ns::ENC, "length")) {
        None => None,
        Some(l) => match l.trim().parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return fail(WarningKind::BadLength {
                    value: l.to_string(),
                })
            }
        },
    };
    let media_type = enclosure
        .and_then(|e| e.attr(ns::ENC, "type"))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| text(ns::DC, "format"));

    Ok(Entry {
        about,
        title,
        creator: text(ns::DC, "creator"),
        media_url,
        media_type,
        length,
        start,
        duration,
        hash,
        line: 0,
        column: 0,
    })
}

fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("http://") && url.len() > 7)
        || (lower.starts_with("https://") && url.len() > 8)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_and_columns_are_the_same_counted_on_or_afresh() {
        let text = "ab\nc\u{e9}d\n\nxyz \u{1f3b5} w\n".repeat(3);
        let lines = Lines::new(text.as_bytes());
        let afresh = |offset: usize| Lines::new(text.as_bytes()).locate(offset);
        // In order, out of order, and repeated: counting on never differs from afresh.
        let mut offsets: Vec<usize> = (0..=text.len()).collect();
        offsets.extend((0..=text.len()).rev());
        offsets.extend([5, 5, 2, 40, 3]);
        for offset in offsets {
            assert_eq!(lines.locate(offset), afresh(offset), "offset {offset}");
        }
    }

    use super::*;

    #[test]
    fn locate_counts_characters() {
        let lines = Lines::new("ab\nçd\n".as_bytes());
        assert_eq!(lines.locate(0), (1, 1));
        assert_eq!(lines.locate(3), (2, 1));
        assert_eq!(lines.locate(5), (2, 2));
        assert_eq!(lines.locate(100), (3, 1));
    }

    #[test]
    fn http_urls() {
        assert!(is_http_url("http://a/b.mp3"));
        assert!(is_http_url("HTTPS://a/b.mp3"));
        assert!(!is_http_url("http://"));
        assert!(!is_http_url("file:///etc/passwd"));
        assert!(!is_http_url("media/a.mp3"));
        assert!(!is_http_url("ftp://a/b"));
    }
}
