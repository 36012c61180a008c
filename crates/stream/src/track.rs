//! Reading an entry's units (MPEG frames or Ogg pages) out of its verified parts.

use std::sync::Arc;

use alluvium_content::PART_SIZE;
use alluvium_media::{
    find_frame, mpeg_layout, ogg_head, page_info, page_len, FrameHeader, MpegLayout, OggHead,
    FLAG_CONTINUED, FLAG_EOS,
};
use alluvium_playlist::{Entry, Playlist};
use alluvium_swarm::picker::AudioMap;
use alluvium_swarm::Content;
use bytes::Bytes;

/// Bytes of a content, through its verified parts (one part kept at hand).
pub struct Reader {
    content: Arc<Content>,
    cached: Option<(u32, Bytes)>,
}

impl Reader {
    pub fn new(content: Arc<Content>) -> Self {
        Self {
            content,
            cached: None,
        }
    }

    pub fn size(&self) -> u64 {
        self.content.size()
    }

    pub fn content(&self) -> &Content {
        &self.content
    }

    fn part(&mut self, part: u32) -> Option<Bytes> {
        if let Some((p, b)) = &self.cached {
            if *p == part {
                return Some(b.clone());
            }
        }
        let b = self.content.read(part, 1).ok()?;
        self.cached = Some((part, b.clone()));
        Some(b)
    }

    /// Up to `len` bytes at `offset`, as far as the parts held from there reach; `None`
    /// while the part at `offset` is not held.
    pub fn bytes_held(&mut self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let end = (offset + len as u64).min(self.size());
        let mut out = Vec::with_capacity(len);
        let mut at = offset;
        while at < end {
            let part = (at / PART_SIZE) as u32;
            let Some(data) = self.part(part) else { break };
            let start = (at - u64::from(part) * PART_SIZE) as usize;
            let take = ((end - at) as usize).min(data.len().saturating_sub(start));
            if take == 0 {
                break;
            }
            out.extend_from_slice(&data[start..start + take]);
            at += take as u64;
        }
        (!out.is_empty() || offset >= self.size()).then_some(out)
    }

    /// `len` bytes at `offset` (fewer at the end of the file), or `None` while a part they
    /// need is not held.
    pub fn bytes(&mut self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let want = (offset + len as u64)
            .min(self.size())
            .saturating_sub(offset);
        self.bytes_held(offset, len)
            .filter(|b| b.len() as u64 == want)
    }

    /// Like [`Reader::bytes`], for bytes needed before any audio (a file's head): the parts
    /// missing are asked for at once, whatever their play time.
    pub fn head_bytes(&mut self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let got = self.bytes(offset, len);
        if got.is_none() {
            self.want(offset, len);
        }
        got
    }

    /// Asks for the parts of `len` bytes at `offset` that are not held.
    pub(crate) fn want(&self, offset: u64, len: usize) {
        let end = (offset + len as u64).min(self.size());
        if end <= offset {
            return;
        }
        for part in (offset / PART_SIZE)..=((end - 1) / PART_SIZE) {
            self.content.want(part as u32);
        }
    }
}

/// A station's stream format: every entry must have it (`alluvium broadcast` refuses to mix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mpeg,
    /// Ogg Vorbis or Ogg Opus, streamed as a chained Ogg stream (one link per entry).
    Ogg,
    /// MPEG-TS video (a TV station), spliced into one transport stream (`crate::tv`).
    Ts,
}

impl Kind {
    /// The kind an entry declares (`enc:type`, else its URL's extension); MP3 when unsure.
    pub fn of_entry(entry: &Entry) -> Kind {
        let ogg_type = entry.media_type.as_deref().is_some_and(|t| {
            let t = t
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            matches!(
                t.as_str(),
                "audio/ogg"
                    | "application/ogg"
                    | "audio/opus"
                    | "audio/vorbis"
                    | "audio/x-vorbis+ogg"
            )
        });
        let ts_type = entry.media_type.as_deref().is_some_and(|t| {
            let t = t.split(';').next().unwrap_or("").trim();
            t.eq_ignore_ascii_case("video/mp2t")
        });
        let path = entry.media_url.split(['?', '#']).next().unwrap_or("");
        let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        if ogg_type || matches!(ext.as_deref(), Some("ogg" | "oga" | "opus")) {
            Kind::Ogg
        } else if ts_type || matches!(ext.as_deref(), Some("ts" | "m2t" | "mts")) {
            Kind::Ts
        } else {
            Kind::Mpeg
        }
    }

    /// The station's kind: its first entry's.
    pub fn of_playlist(playlist: &Playlist) -> Kind {
        playlist
            .entries
            .first()
            .map(Kind::of_entry)
            .unwrap_or(Kind::Mpeg)
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            Kind::Mpeg => "audio/mpeg",
            Kind::Ogg => "audio/ogg",
            Kind::Ts => "video/mp2t",
        }
    }
}

/// Sync bytes where a transport stream's second and third packets start.
fn looks_like_ts(reader: &mut Reader) -> bool {
    use alluvium_media::ts::{PACKET_LEN, SYNC_BYTE};
    reader.head_bytes(0, 3 * PACKET_LEN).is_some_and(|h| {
        h.len() == 3 * PACKET_LEN && h[PACKET_LEN] == SYNC_BYTE && h[2 * PACKET_LEN] == SYNC_BYTE
    })
}

/// How a unit moves the stream clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// By this many samples (an MPEG frame).
    By(u64),
    /// To this many samples after the entry's start (an Ogg page's granule position).
    To(u64),
    /// Not at all (an Ogg page where no packet ends).
    None,
}

/// One unit of an entry, ready to send.
#[derive(Debug)]
pub struct Unit {
    /// What to send (empty: skip, e.g. a page of another logical stream).
    pub bytes: Vec<u8>,
    /// Bytes of the file it takes (where the next unit starts).
    pub len: u64,
    pub advance: Advance,
    /// Samples per second of `advance`.
    pub rate: u32,
    /// The last unit of the entry's stream (an Ogg page flagged end-of-stream).
    pub last: bool,
}

/// An entry ready to stream: where its units lie.
pub struct Track {
    pub reader: Reader,
    pub format: Format,
    pub audio_start: u64,
    pub audio_end: u64,
}

/// What the track's bytes are.
pub enum Format {
    Mpeg(MpegLayout),
    Ogg(Arc<OggHead>),
}

/// Bytes after the ID3v2 tag read to find the first frames.
const HEAD_FRAMES: usize = 16 * 1024;
/// Bytes at the end read for ID3v1 / APEv2 tags.
const TAIL: usize = 4096;
/// Bytes searched for a frame or page when joining mid-file.
const JOIN_WINDOW: usize = 16 * 1024;
/// Ogg header pages read at most (cover art in the comments can be large).
const MAX_OGG_HEADERS: usize = 4 * 1024 * 1024;

impl Track {
    /// The track, once the parts that give its layout are held (`None` until then, or if it
    /// is neither MPEG audio nor Ogg Vorbis/Opus). The content learns where the audio lies:
    /// its download then times each part as the stream finds its moments.
    pub fn open(content: Arc<Content>) -> Option<Self> {
        let track = Self::layout(content.clone())?;
        content.set_audio(track.audio_map());
        Some(track)
    }

    /// Where the play time falls in the file, as the stream finds a moment's bytes: by the
    /// seek table of a VBR MP3 that has one, else in proportion to the audio bytes.
    pub fn audio_map(&self) -> AudioMap {
        let (start, end) = (self.audio_start, self.audio_end);
        let toc = match &self.format {
            Format::Mpeg(layout) => layout.toc,
            Format::Ogg(_) => None,
        };
        toc.and_then(|toc| {
            AudioMap::from_knots(
                (0..=100)
                    .map(|pct| toc.offset_at(f64::from(pct) / 100.0).clamp(start, end))
                    .collect(),
            )
        })
        .unwrap_or_else(|| AudioMap::even(start..end))
    }

    fn layout(content: Arc<Content>) -> Option<Self> {
        let mut reader = Reader::new(content);
        let size = reader.size();
        let magic = reader.head_bytes(0, 4)?;
        if magic.first() == Some(&alluvium_media::ts::SYNC_BYTE) && looks_like_ts(&mut reader) {
            return None; // video: not frames of sound, whatever their bytes look like
        }
        if magic == b"OggS" {
            // The header pages, read in growing windows until whole.
            let mut window = HEAD_FRAMES;
            loop {
                let head = reader.head_bytes(0, window)?;
                match ogg_head(&head) {
                    Ok(Some(h)) => {
                        return Some(Self {
                            audio_start: h.audio_start,
                            audio_end: size,
                            format: Format::Ogg(Arc::new(h)),
                            reader,
                        })
                    }
                    Ok(None) if (window as u64) < size && window < MAX_OGG_HEADERS => {
                        window *= 4;
                    }
                    _ => return None,
                }
            }
        }
        // The ID3v2 tag's size is in its 10-byte header (cover art can make it large).
        let header = reader.head_bytes(0, 10)?;
        let tag = if header.len() == 10 && &header[..3] == b"ID3" {
            let body = header[6..10]
                .iter()
                .fold(0u64, |acc, &b| (acc << 7) | u64::from(b & 0x7F));
            10 + body + if header[5] & 0x10 != 0 { 10 } else { 0 }
        } else {
            0
        };
        let tail_start = size.saturating_sub(TAIL as u64);
        // The tail says where trailing tags (ID3v1, APEv2) cut the audio short. Until it is
        // held the audio runs to the end of the file: playing mid-entry does not wait for
        // it, and tag bytes reached without it are junk the frame sync skips.
        let tail = reader.bytes(tail_start, TAIL).unwrap_or_default();
        // The first frames after the tag, from what is held: the first part is nearly always
        // enough (a small tag, a Xing frame, the first audio frames), and a joiner whose
        // neighbours are busy then waits for one part, not two. The rest of a longer head is
        // asked for only when it is needed.
        let head_len = (tag as usize) + HEAD_FRAMES;
        let head = reader.bytes_held(0, head_len).unwrap_or_default();
        let layout = match mpeg_layout(&head, &tail, size) {
            Some(layout) => layout,
            None => {
                reader.head_bytes(0, head_len)?;
                // All of it held, and still no layout: not MPEG audio.
                mpeg_layout(&reader.bytes(0, head_len)?, &tail, size)?
            }
        };
        Some(Self {
            audio_start: layout.audio_start,
            audio_end: layout.audio_end,
            format: Format::Mpeg(layout),
            reader,
        })
    }

    pub fn kind(&self) -> Kind {
        match self.format {
            Format::Mpeg(_) => Kind::Mpeg,
            Format::Ogg(_) => Kind::Ogg,
        }
    }

    /// The unit at `offset`: `None` while not held, `Err` where there is no valid unit.
    pub fn unit(&mut self, offset: u64) -> Option<Result<Unit, ()>> {
        match &self.format {
            Format::Mpeg(_) => {
                let head = self.reader.bytes(offset, 4)?;
                let Some(h) = FrameHeader::parse(&head) else {
                    return Some(Err(()));
                };
                if offset + h.frame_len as u64 > self.audio_end {
                    return Some(Err(()));
                }
                let bytes = self.reader.bytes(offset, h.frame_len)?;
                Some(Ok(Unit {
                    len: bytes.len() as u64,
                    bytes,
                    advance: Advance::By(u64::from(h.samples)),
                    rate: h.sample_rate,
                    last: false,
                }))
            }
            Format::Ogg(head) => {
                let head = head.clone();
                let (bytes, info) = match self.page(offset)? {
                    Ok(page) => page,
                    Err(()) => return Some(Err(())),
                };
                if info.serial != head.serial {
                    // Another logical stream's page (a chained file's next link): not ours.
                    return Some(Ok(Unit {
                        bytes: Vec::new(),
                        len: info.len as u64,
                        advance: Advance::None,
                        rate: head.rate,
                        last: false,
                    }));
                }
                let advance = match u64::try_from(info.granule) {
                    Ok(g) => Advance::To(g.saturating_sub(head.pre_skip)),
                    Err(_) => Advance::None,
                };
                Some(Ok(Unit {
                    bytes,
                    len: info.len as u64,
                    advance,
                    rate: head.rate,
                    last: info.flags & FLAG_EOS != 0,
                }))
            }
        }
    }

    /// The verified Ogg page at `offset`.
    fn page(&mut self, offset: u64) -> Option<Result<(Vec<u8>, alluvium_media::PageInfo), ()>> {
        let header = self.reader.bytes(offset, 27)?;
        let nsegs = usize::from(*header.get(26).unwrap_or(&0));
        let with_lacing = self.reader.bytes(offset, 27 + nsegs)?;
        let len = match page_len(&with_lacing) {
            Ok(Some(len)) if offset + len as u64 <= self.audio_end => len,
            _ => return Some(Err(())),
        };
        let bytes = self.reader.bytes(offset, len)?;
        Some(page_info(&bytes).map(|info| (bytes, info)).map_err(|_| ()))
    }

    /// Where an Ogg stream joined at `target` (samples after the entry's start) should start:
    /// walking from the startable page at `from`, the page boundary nearest the moment, so a
    /// joining player is off the schedule by at most half a page. `None` while a page on the
    /// way is not held.
    pub fn ogg_join(&mut self, from: u64, target: u64) -> Option<u64> {
        /// Pages walked at most (the start is estimated about a second early).
        const WALK: usize = 64;
        let Format::Ogg(head) = &self.format else {
            return None;
        };
        let (serial, pre_skip) = (head.serial, head.pre_skip);
        // The last startable page (ours, starting a fresh packet) that starts by the moment,
        // and when it starts (unknown for the first page walked: taken as early).
        let mut before: Option<(u64, u64)> = None;
        // When the page at `at` starts: the previous page's end.
        let mut page_start: Option<u64> = None;
        let mut at = from;
        for _ in 0..WALK {
            if at >= self.audio_end {
                break;
            }
            let info = match self.page(at)? {
                Ok((_, info)) => info,
                Err(()) => break,
            };
            let ours = info.serial == serial;
            if ours && info.flags & FLAG_CONTINUED == 0 {
                match page_start {
                    Some(start) if start > target => {
                        // The first start after the moment: take the nearer of the two.
                        return Some(match before {
                            Some((o, b)) if target - b <= start - target => o,
                            _ => at,
                        });
                    }
                    _ => before = Some((at, page_start.unwrap_or(0).min(target))),
                }
            }
            if let (true, Ok(g)) = (ours, u64::try_from(info.granule)) {
                page_start = Some(g.saturating_sub(pre_skip));
            }
            at += info.len as u64;
        }
        before.map(|(o, _)| o)
    }

    /// The first unit at or after `offset` a stream can start with (for joining mid-file or
    /// after junk): an MPEG frame, or an Ogg page of this stream that starts a fresh packet.
    pub fn sync(&mut self, offset: u64) -> Option<u64> {
        let offset = offset.max(self.audio_start);
        // As far as held parts reach: at the live edge the next part is often still on its
        // way, and the frame here should not wait for it.
        let window = self.reader.bytes_held(offset, JOIN_WINDOW)?;
        match &self.format {
            Format::Mpeg(_) => find_frame(&window, 0).map(|(p, _)| offset + p as u64),
            Format::Ogg(head) => {
                let serial = head.serial;
                let candidates: Vec<u64> = window
                    .windows(4)
                    .enumerate()
                    .filter(|(_, w)| *w == b"OggS")
                    .map(|(i, _)| offset + i as u64)
                    .collect();
                for at in candidates {
                    if let Ok((_, info)) = self.page(at)? {
                        if info.serial == serial && info.flags & FLAG_CONTINUED == 0 {
                            return Some(at);
                        }
                    }
                }
                None
            }
        }
    }
}
