//! Reading an entry's MPEG frames out of its verified parts.

use std::sync::Arc;

use alluvium_content::PART_SIZE;
use alluvium_media::{find_frame, mpeg_layout, FrameHeader, MpegLayout};
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

    /// `len` bytes at `offset` (fewer at the end of the file), or `None` while a part they
    /// need is not held.
    pub fn bytes(&mut self, offset: u64, len: usize) -> Option<Vec<u8>> {
        let end = (offset + len as u64).min(self.size());
        let mut out = Vec::with_capacity(len);
        let mut at = offset;
        while at < end {
            let part = (at / PART_SIZE) as u32;
            let data = self.part(part)?;
            let start = (at - u64::from(part) * PART_SIZE) as usize;
            let take = ((end - at) as usize).min(data.len().saturating_sub(start));
            if take == 0 {
                return None;
            }
            out.extend_from_slice(&data[start..start + take]);
            at += take as u64;
        }
        Some(out)
    }
}

/// An entry ready to stream: where its audio frames lie.
pub struct Track {
    pub reader: Reader,
    pub layout: MpegLayout,
}

/// Bytes after the ID3v2 tag read to find the first frames.
const HEAD_FRAMES: usize = 16 * 1024;
/// Bytes at the end read for ID3v1 / APEv2 tags.
const TAIL: usize = 4096;
/// Bytes searched for a frame when joining mid-file.
const JOIN_WINDOW: usize = 8 * 1024;

impl Track {
    /// The track, once its first and last parts are held (`None` until then, or if it holds
    /// no MPEG audio).
    pub fn open(content: Arc<Content>) -> Option<Self> {
        let mut reader = Reader::new(content);
        let size = reader.size();
        // The ID3v2 tag's size is in its 10-byte header (cover art can make it large).
        let header = reader.bytes(0, 10)?;
        let tag = if header.len() == 10 && &header[..3] == b"ID3" {
            let body = header[6..10]
                .iter()
                .fold(0u64, |acc, &b| (acc << 7) | u64::from(b & 0x7F));
            10 + body + if header[5] & 0x10 != 0 { 10 } else { 0 }
        } else {
            0
        };
        let head = reader.bytes(0, (tag as usize) + HEAD_FRAMES)?;
        let tail_start = size.saturating_sub(TAIL as u64);
        let tail = reader.bytes(tail_start, TAIL)?;
        let layout = mpeg_layout(&head, &tail, size)?;
        Some(Self { reader, layout })
    }

    /// The frame at `offset`: its header and bytes, `None` while not held or not a frame.
    pub fn frame(&mut self, offset: u64) -> Option<Result<(FrameHeader, Vec<u8>), ()>> {
        let head = self.reader.bytes(offset, 4)?;
        let Some(h) = FrameHeader::parse(&head) else {
            return Some(Err(()));
        };
        if offset + h.frame_len as u64 > self.layout.audio_end {
            return Some(Err(()));
        }
        let bytes = self.reader.bytes(offset, h.frame_len)?;
        Some(Ok((h, bytes)))
    }

    /// The first frame at or after `offset` (for joining mid-file or after junk).
    pub fn sync(&mut self, offset: u64) -> Option<u64> {
        let offset = offset.max(self.layout.audio_start);
        let window = self.reader.bytes(offset, JOIN_WINDOW)?;
        find_frame(&window, 0).map(|(p, _)| offset + p as u64)
    }
}
