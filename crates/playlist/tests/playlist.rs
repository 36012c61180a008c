//! Playlist round trips, the 2003 format, and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use alluvium_playlist::{
    parse, write, Blake3Hash, Channel, Entry, Error, Playlist, Schedule, UpdateHint, UpdatePeriod,
    WarningKind, MAX_PLAYLIST_BYTES,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

fn t(s: &str) -> DateTime<Utc> {
    alluvium_playlist::time::parse_w3cdtf(s).unwrap()
}

// ---------------------------------------------------------------- round trip

/// Text as a broadcaster might write it: any printable characters, markup included.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 <>&'\"é€日本\u{1F3B5}.,;:!?-]{1,40}"
        .prop_map(|s| s.trim().to_string())
        .prop_filter("non-empty", |s| !s.is_empty())
}

/// Title, creator, file name, duration (ms), hash, length, and whether a gap comes before it.
type GeneratedEntry = (
    Option<String>,
    Option<String>,
    String,
    u64,
    Option<[u8; 32]>,
    Option<u64>,
    bool,
);

fn entry_strategy() -> impl Strategy<Value = GeneratedEntry> {
    (
        proptest::option::of(text()),
        proptest::option::of(text()),
        "[a-z0-9_-]{1,20}(\\.mp3|\\.ogg|\\.opus)?",
        1u64..=7_200_000, // duration in ms, up to 2 h
        proptest::option::of(any::<[u8; 32]>()),
        proptest::option::of(0u64..=u64::MAX),
        any::<bool>(), // a gap before this entry?
    )
}

prop_compose! {
    fn playlist_strategy()(
        title in text(),
        base_ms in 0i64..=4_102_444_800_000, // 1970..2100
        entries in proptest::collection::vec((entry_strategy(), 0u64..=600_000), 0..12),
        timed in any::<bool>(),
        update in proptest::option::of((0usize..5, 1u32..=60)),
    ) -> Playlist {
        let base = Utc.timestamp_millis_opt(base_ms).unwrap();
        let mut cursor = base;
        let mut out = Vec::new();
        for ((title, creator, file, dur_ms, hash, length, gap), gap_ms) in entries {
            if gap { cursor += TimeDelta::milliseconds(gap_ms as i64); }
            let duration = TimeDelta::milliseconds(dur_ms as i64);
            out.push(Entry {
                title,
                creator,
                media_url: format!("http://radio.example/media/{file}"),
                media_type: Some("audio/mpeg".into()),
                length,
                start: timed.then_some(cursor),
                duration: Some(duration),
                hash: hash.map(Blake3Hash),
                ..Entry::default()
            });
            cursor += duration;
        }
        let periods = [UpdatePeriod::Hourly, UpdatePeriod::Daily, UpdatePeriod::Weekly, UpdatePeriod::Monthly, UpdatePeriod::Yearly];
        Playlist {
            channel: Channel {
                about: "http://radio.example/station.rss".into(),
                title,
                link: Some("http://radio.example/".into()),
                description: Some("Music <all> night & day".into()),
                language: Some("en".into()),
                creator: None,
                date: (!timed).then_some(base),
                update: update.map(|(p, f)| UpdateHint { period: periods[p], frequency: f, base: None }),
            },
            entries: out,
        }
    }
}

fn without_positions(mut p: Playlist) -> Vec<Entry> {
    for e in &mut p.entries {
        e.line = 0;
        e.column = 0;
        e.about = None;
    }
    p.entries
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn write_then_parse_gives_the_same_schedule(playlist in playlist_strategy()) {
        let (expected, warnings) = Schedule::build(&playlist);
        prop_assert!(warnings.is_empty(), "{warnings:?}");
        let xml = write(&playlist);
        match parse(xml.as_bytes()) {
            Ok(parsed) => {
                prop_assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
                prop_assert_eq!(&parsed.schedule, &expected);
                prop_assert_eq!(&parsed.playlist.channel.title, &playlist.channel.title);
                prop_assert_eq!(parsed.playlist.channel.update, playlist.channel.update);
                prop_assert_eq!(without_positions(parsed.playlist), without_positions(playlist));
            }
            Err(Error::NoUsableEntries { .. }) => prop_assert!(playlist.entries.is_empty()),
            Err(e) => prop_assert!(false, "{e}\n{xml}"),
        }
    }
}

// ---------------------------------------------------------------- the 2003 format

const PLAYLIST_2003: &str = r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/"
         xmlns:mm="http://musicbrainz.org/mm/mm-2.0#">
  <channel rdf:about="http://tristero.example/alluvium/station.rss">
    <title>Tristero Radio</title>
    <link>http://tristero.example/</link>
    <description>An Alluvium station, 2003 style.</description>
    <dc:date>2003-06-01T12:00:00-05:00</dc:date>
    <items><rdf:Seq>
      <rdf:li rdf:resource="http://tristero.example/media/one.mp3"/>
      <rdf:li rdf:resource="http://tristero.example/media/two.mp3"/>
      <rdf:li rdf:resource="http://tristero.example/media/three.mp3"/>
    </rdf:Seq></items>
  </channel>
  <item rdf:about="http://tristero.example/media/one.mp3">
    <title>One</title>
    <link>http://tristero.example/media/one.mp3</link>
    <dc:creator>The Ones</dc:creator>
    <mm:duration>180000</mm:duration>
  </item>
  <item rdf:about="http://tristero.example/media/two.mp3">
    <title>Two</title>
    <link>http://tristero.example/media/two.mp3</link>
    <mm:duration>240500</mm:duration>
  </item>
  <item rdf:about="http://tristero.example/media/three.mp3">
    <title>Three</title>
    <link>http://tristero.example/media/three.mp3</link>
    <mm:duration>60000</mm:duration>
  </item>
</rdf:RDF>
"#;

#[test]
fn format_2003_plays_back_to_back_and_loops() {
    let parsed = parse(PLAYLIST_2003.as_bytes()).unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let s = &parsed.schedule;
    let got: Vec<_> = s
        .slots()
        .iter()
        .map(|s| (s.entry, s.start, s.end))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, t("2003-06-01T17:00:00Z"), t("2003-06-01T17:03:00Z")),
            (1, t("2003-06-01T17:03:00Z"), t("2003-06-01T17:07:00.500Z")),
            (
                2,
                t("2003-06-01T17:07:00.500Z"),
                t("2003-06-01T17:08:00.500Z")
            ),
        ]
    );
    assert_eq!(s.period(), Some(TimeDelta::milliseconds(480_500)));
    // Ten cycles later the same order repeats.
    let later = t("2003-06-01T17:00:00Z") + TimeDelta::milliseconds(10 * 480_500 + 190_000);
    let on = s.on_air(later).unwrap();
    assert_eq!(on.slot.entry, 1);
    assert_eq!(on.offset, TimeDelta::seconds(10));
    let e = &parsed.playlist.entries[0];
    assert_eq!(e.media_url, "http://tristero.example/media/one.mp3");
    assert_eq!(e.display_title(), "The Ones - One");
}

#[test]
fn mixed_playlist_follows_the_entry_before() {
    let xml = PLAYLIST_2003.replace(
        "<mm:duration>240500</mm:duration>",
        "<mm:duration>240500</mm:duration><ev:startdate xmlns:ev=\"http://purl.org/rss/1.0/modules/event/\">2003-06-01T18:00:00Z</ev:startdate>",
    );
    let parsed = parse(xml.as_bytes()).unwrap();
    let got: Vec<_> = parsed
        .schedule
        .slots()
        .iter()
        .map(|s| (s.entry, s.start))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, t("2003-06-01T17:00:00Z")),
            (1, t("2003-06-01T18:00:00Z")),
            (2, t("2003-06-01T18:04:00.500Z"))
        ]
    );
    assert_eq!(
        parsed.schedule.period(),
        None,
        "a playlist with times does not loop"
    );
}

// ---------------------------------------------------------------- hostile input

const HEAD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"
 xmlns:enc="http://purl.oclc.org/net/rss_2.0/enc#" xmlns:ev="http://purl.org/rss/1.0/modules/event/"
 xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
<channel rdf:about="http://r.example/s.rss"><title>R</title><link>http://r.example/</link><description/></channel>
"#;

fn good_item(start: &str, extent: &str) -> String {
    format!(
        r#"<item rdf:about="http://r.example/s.rss#{start}"><title>Good {start}</title>
<ev:startdate>{start}</ev:startdate><dcterms:extent>{extent}</dcterms:extent>
<enc:enclosure rdf:resource="http://r.example/good.mp3" enc:type="audio/mpeg" enc:length="10"/></item>
"#
    )
}

/// A playlist with one good item plus `extra` items.
fn with_items(extra: &str) -> String {
    format!(
        "{HEAD}{}{extra}</rdf:RDF>",
        good_item("2026-01-01T00:00:00Z", "PT1M")
    )
}

fn item(body: &str) -> String {
    format!(
        "<item rdf:about=\"http://r.example/s.rss#x{}\"><title>Bad</title>{body}</item>\n",
        body.len()
    )
}

const ENCLOSURE: &str = r#"<enc:enclosure rdf:resource="http://r.example/b.mp3"/>"#;

enum Expect {
    Fails(fn(&Error) -> bool),
    Warns(fn(&WarningKind) -> bool),
}

#[test]
fn hostile_playlists_give_clear_errors_or_named_warnings() {
    let laughs = {
        let mut dtd =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
        for i in 1..10 {
            let prev = if i == 1 {
                "lol".to_string()
            } else {
                format!("lol{}", i - 1)
            };
            dtd.push_str(&format!(
                " <!ENTITY lol{i} \"{}\">\n",
                format!("&{prev};").repeat(10)
            ));
        }
        dtd.push_str("]>\n<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">&lol9;</rdf:RDF>");
        dtd
    };
    let huge = {
        let mut s = with_items("");
        s.push_str(&" ".repeat(MAX_PLAYLIST_BYTES));
        s
    };
    let deep = format!(
        "{HEAD}{}{}</rdf:RDF>",
        "<x>".repeat(100),
        "</x>".repeat(100)
    );
    let many_items = format!("{HEAD}{}</rdf:RDF>", item(ENCLOSURE).repeat(100_001));

    use Expect::*;
    let cases: Vec<(&str, String, Expect)> = vec![
        ("empty document", String::new(), Fails(|e| matches!(e, Error::Xml { .. }))),
        ("not XML", "this is not a playlist".into(), Fails(|e| matches!(e, Error::Xml { .. }))),
        ("binary junk", String::from_utf8_lossy(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2]).into_owned(), Fails(|e| matches!(e, Error::Xml { .. }))),
        ("text after the root", format!("{}trailing words", with_items("")), Fails(|e| matches!(e, Error::Xml { .. }))),
        ("unclosed element", format!("{HEAD}<item>"), Fails(|e| matches!(e, Error::Xml { .. }))),
        ("mismatched end tag", format!("{HEAD}<item></channel></rdf:RDF>"), Fails(|e| matches!(e, Error::Xml { .. }))),
        ("RSS 2.0 root", "<rss version=\"2.0\"><channel/></rss>".into(), Fails(|e| matches!(e, Error::NotRss1 { hint, .. } if hint.contains("RSS 2.0")))),
        ("Atom root", "<feed xmlns=\"http://www.w3.org/2005/Atom\"/>".into(), Fails(|e| matches!(e, Error::NotRss1 { hint, .. } if hint.contains("Atom")))),
        ("RDF root in a wrong namespace", "<rdf:RDF xmlns:rdf=\"urn:not-rdf\"/>".into(), Fails(|e| matches!(e, Error::NotRss1 { .. }))),
        ("missing channel", "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"/>".into(), Fails(|e| matches!(e, Error::NoChannel { .. }))),
        ("channel in an unknown namespace", "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><channel xmlns=\"http://my.netscape.com/rdf/simple/0.9/\"/></rdf:RDF>".into(), Fails(|e| matches!(e, Error::NoChannel { .. }))),
        ("undeclared prefix", format!("{HEAD}<item><foo:bar/></item></rdf:RDF>"), Fails(|e| matches!(e, Error::Xml { message, .. } if message.contains("foo")))),
        ("billion laughs", laughs, Fails(|e| matches!(e, Error::Doctype { .. }))),
        ("external entity", "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>".into(), Fails(|e| matches!(e, Error::Doctype { .. }))),
        ("undefined entity", with_items(&item("<title>&nbsp;</title>")), Fails(|e| matches!(e, Error::Entity { .. }))),
        ("declared non-UTF-8 encoding", HEAD.replace("utf-8", "ISO-8859-1") + "</rdf:RDF>", Fails(|e| matches!(e, Error::Encoding { .. }))),
        ("huge file", huge, Fails(|e| matches!(e, Error::TooLarge { .. }))),
        ("absurd nesting", deep, Fails(|e| matches!(e, Error::Xml { message, .. } if message.contains("nested")))),
        ("too many items", many_items, Fails(|e| matches!(e, Error::TooManyItems { .. }))),
        ("empty schedule", format!("{HEAD}</rdf:RDF>"), Fails(|e| matches!(e, Error::NoUsableEntries { items: 0, .. }))),
        ("only unusable items", format!("{HEAD}{}</rdf:RDF>", item("")), Fails(|e| matches!(e, Error::NoUsableEntries { items: 1, warnings, .. } if warnings.len() == 1))),
        ("two roots", format!("{}<x/>", with_items("")), Fails(|e| matches!(e, Error::Xml { .. }))),
        ("missing enclosure", with_items(&item("<ev:startdate>2026-01-01T01:00:00Z</ev:startdate><dcterms:extent>PT1M</dcterms:extent>")), Warns(|k| matches!(k, WarningKind::NoMedia))),
        ("relative media URL", with_items(&item("<enc:enclosure rdf:resource=\"b.mp3\"/><ev:startdate>2026-01-01T01:00:00Z</ev:startdate><dcterms:extent>PT1M</dcterms:extent>")), Warns(|k| matches!(k, WarningKind::MediaNotHttp { .. }))),
        ("file: media URL", with_items(&item("<enc:enclosure rdf:resource=\"file:///etc/passwd\"/><dcterms:extent>PT1M</dcterms:extent>")), Warns(|k| matches!(k, WarningKind::MediaNotHttp { .. }))),
        ("bad start date", with_items(&item(&format!("{ENCLOSURE}<ev:startdate>next tuesday</ev:startdate><dcterms:extent>PT1M</dcterms:extent>"))), Warns(|k| matches!(k, WarningKind::BadDate { field: "ev:startdate", .. }))),
        ("impossible date", with_items(&item(&format!("{ENCLOSURE}<ev:startdate>2026-02-30T00:00:00Z</ev:startdate><dcterms:extent>PT1M</dcterms:extent>"))), Warns(|k| matches!(k, WarningKind::BadDate { .. }))),
        ("end before start", with_items(&item(&format!("{ENCLOSURE}<ev:startdate>2026-01-01T02:00:00Z</ev:startdate><ev:enddate>2026-01-01T01:00:00Z</ev:enddate>"))), Warns(|k| matches!(k, WarningKind::DurationOutOfRange { .. }))),
        ("negative duration", with_items(&item(&format!("{ENCLOSURE}<ev:startdate>2026-01-01T02:00:00Z</ev:startdate><dcterms:extent>-PT1M</dcterms:extent>"))), Warns(|k| matches!(k, WarningKind::BadDuration { .. }))),
        ("zero duration", with_items(&item(&format!("{ENCLOSURE}<ev:startdate>2026-01-01T02:00:00Z</ev:startdate><dcterms:extent>PT0S</dcterms:extent>"))), Warns(|k| matches!(k, WarningKind::DurationOutOfRange { .. }))),
        ("absurd duration", with_items(&item(&format!("{ENCLOSURE}<ev:startdate>2026-01-01T02:00:00Z</ev:startdate><dcterms:extent>P400D</dcterms:extent>"))), Warns(|k| matches!(k, WarningKind::DurationOutOfRange { .. }))),
        ("overflowing duration", with_items(&item(&format!("{ENCLOSURE}<ev:startdate>2026-01-01T02:00:00Z</ev:startdate><dcterms:extent>PT99999999999999999999S</dcterms:extent>"))), Warns(|k| matches!(k, WarningKind::BadDuration { .. }))),
        ("unreadable mm:duration", with_items(&item("<link>http://r.example/b.mp3</link><mm:duration xmlns:mm=\"http://musicbrainz.org/mm/mm-2.0#\">three minutes</mm:duration>")), Warns(|k| matches!(k, WarningKind::BadDuration { field: "mm:duration", .. }))),
        ("bad hash", with_items(&item(&format!("{ENCLOSURE}<ev:startdate>2026-01-01T02:00:00Z</ev:startdate><dcterms:extent>PT1M</dcterms:extent><dc:identifier>urn:blake3:1234</dc:identifier>"))), Warns(|k| matches!(k, WarningKind::BadHash { .. }))),
        ("bad length", with_items(&item("<enc:enclosure rdf:resource=\"http://r.example/b.mp3\" enc:length=\"-5\"/><ev:startdate>2026-01-01T02:00:00Z</ev:startdate><dcterms:extent>PT1M</dcterms:extent>")), Warns(|k| matches!(k, WarningKind::BadLength { .. }))),
        ("duplicate items", with_items(&good_item("2026-01-01T00:00:00Z", "PT1M")), Warns(|k| matches!(k, WarningKind::DuplicateItem))),
        ("same start twice", with_items(&item(&format!("{ENCLOSURE}<ev:startdate>2026-01-01T00:00:00Z</ev:startdate><dcterms:extent>PT2M</dcterms:extent>"))), Warns(|k| matches!(k, WarningKind::SameStart { .. }))),
        ("overlapping entries", with_items(&item(&format!("{ENCLOSURE}<ev:startdate>2026-01-01T00:00:30Z</ev:startdate><dcterms:extent>PT2M</dcterms:extent>"))), Warns(|k| matches!(k, WarningKind::Overlap { .. }))),
        ("no start and nothing to follow", format!("{HEAD}{}{}</rdf:RDF>", item(&format!("{ENCLOSURE}<dcterms:extent>PT1M</dcterms:extent>")), good_item("2026-01-01T00:00:00Z", "PT1M")), Warns(|k| matches!(k, WarningKind::NoStart))),
        ("no duration and nothing after", with_items(&item(&format!("{ENCLOSURE}<ev:startdate>2026-01-01T05:00:00Z</ev:startdate>"))), Warns(|k| matches!(k, WarningKind::NoDuration))),
        ("second channel", with_items("<channel rdf:about=\"http://other/\"><title>Other</title></channel>"), Warns(|k| matches!(k, WarningKind::ExtraChannel))),
        ("bad update hint", with_items("").replace("<title>R</title>", "<title>R</title><sy:updatePeriod>fortnightly</sy:updatePeriod>"), Warns(|k| matches!(k, WarningKind::BadUpdateHint { .. }))),
        ("channel without title", with_items("").replace("<title>R</title>", ""), Warns(|k| matches!(k, WarningKind::NoChannelTitle))),
        ("bad channel date", with_items("").replace("<title>R</title>", "<title>R</title><dc:date>soon</dc:date>"), Warns(|k| matches!(k, WarningKind::BadChannelDate { .. }))),
    ];
    assert!(cases.len() >= 25);
    for (name, doc, expect) in cases {
        let result = std::panic::catch_unwind(|| parse(doc.as_bytes()));
        let Ok(result) = result else {
            panic!("{name}: the parser panicked")
        };
        match (result, expect) {
            (Err(e), Fails(check)) => {
                assert!(check(&e), "{name}: unexpected error: {e}");
                let message = e.to_string();
                eprintln!("{name}: error: {message}");
                assert!(
                    message.len() > 20,
                    "{name}: error message too terse: {message}"
                );
            }
            (Ok(parsed), Warns(check)) => {
                let w = parsed.warnings.iter().find(|w| check(&w.kind));
                let Some(w) = w else {
                    panic!("{name}: expected warning missing: {:?}", parsed.warnings)
                };
                let shown = w.to_string();
                eprintln!("{name}: warning: {shown}");
                assert!(
                    shown.contains("line "),
                    "{name}: warning without a place: {shown}"
                );
                assert!(
                    w.subject.contains("item") || w.subject == "channel",
                    "{name}: {shown}"
                );
                assert!(
                    !parsed.schedule.is_empty(),
                    "{name}: the good entry must survive"
                );
            }
            (Err(e), Warns(_)) => panic!("{name}: expected a warning, got error: {e}"),
            (Ok(p), Fails(_)) => panic!("{name}: expected an error, got {:?}", p.warnings),
        }
    }
}

#[test]
fn errors_carry_line_and_column() {
    let doc = "<?xml version=\"1.0\"?>\n<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n  <channel>\n</rdf:RDF>";
    let err = parse(doc.as_bytes()).unwrap_err();
    let (line, _) = err.position().unwrap();
    assert_eq!(line, 4, "{err}");
    assert!(err.to_string().starts_with("line 4, column"), "{err}");

    let not_utf8 = b"<?xml version=\"1.0\"?>\n<a>\xff</a>";
    let err = parse(not_utf8).unwrap_err();
    assert!(
        matches!(err, Error::NotUtf8 { line: 2, column: 4 }),
        "{err}"
    );
}

#[test]
fn warnings_name_the_item_and_keep_the_rest() {
    let doc = with_items(&item("<ev:startdate>2026-01-01T01:00:00Z</ev:startdate>"));
    let parsed = parse(doc.as_bytes()).unwrap();
    assert_eq!(parsed.warnings.len(), 1);
    let shown = parsed.warnings[0].to_string();
    assert!(shown.contains("item 2 (Bad)"), "{shown}");
    assert!(shown.contains("no media"), "{shown}");
    assert_eq!(parsed.schedule.slots().len(), 1);
}

#[test]
fn entity_references_and_cdata_are_text() {
    let doc = with_items("").replace(
        "<title>Good 2026-01-01T00:00:00Z</title>",
        "<title>Rock &amp; Roll &#x1F3B5; <![CDATA[<live>]]></title>",
    );
    let parsed = parse(doc.as_bytes()).unwrap();
    assert_eq!(
        parsed.playlist.entries[0].title.as_deref(),
        Some("Rock & Roll \u{1F3B5} <live>")
    );
}
