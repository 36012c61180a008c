//! What the gateway's test files share.

/// A one-entry station playlist (the 2003 format) titled `title`.
pub(crate) fn playlist(title: &str) -> String {
    PLAYLIST.replace("TITLE", title)
}

const PLAYLIST: &str = r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/"
         xmlns:mm="http://musicbrainz.org/mm/mm-2.0#">
  <channel rdf:about="http://radio.example/station.rss">
    <title>TITLE</title>
    <dc:date>2026-11-25T12:00:00Z</dc:date>
    <link>http://radio.example/</link>
    <description>A station.</description>
    <items><rdf:Seq><rdf:li rdf:resource="http://radio.example/one.mp3"/></rdf:Seq></items>
  </channel>
  <item rdf:about="http://radio.example/one.mp3">
    <title>One</title>
    <link>http://radio.example/one.mp3</link>
    <mm:duration>180000</mm:duration>
  </item>
</rdf:RDF>
"#;
