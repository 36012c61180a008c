//! MPEG audio (MP1/2/3) frames: header parsing and the frame index.
//!
//! Written by hand because symphonia's demuxer does not expose the byte offset of each frame,
//! which is exactly what the stream needs to pace and to join mid-file. Tags are located and
//! kept out of the index: ID3v2 at the front, the Xing/Info/VBRI frame (a valid frame that
//! carries no audio, only a table), and ID3v1 / APEv2 at the end.

use crate::index::{FrameIndex, IndexError, IndexPoint};

/// A decoded 4-byte MPEG audio frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// 1 = MPEG-1, 2 = MPEG-2, 25 = MPEG-2.5.
    pub version: u8,
    pub layer: u8,
    pub bitrate_kbps: u32,
    pub sample_rate: u32,
    pub channels: u16,
    /// Bytes in the frame, header included.
    pub frame_len: usize,
    /// Samples per channel the frame decodes to.
    pub samples: u32,
}

const BITRATES_V1: [[u32; 15]; 3] = [
    [
        0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
    ],
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
    ],
    [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ],
];
const BITRATES_V2: [[u32; 15]; 2] = [
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
    ],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];

impl FrameHeader {
    /// Parses a header; `None` for anything that is not a usable frame header (including
    /// free-format bitrate, which no streaming encoder produces).
    pub fn parse(b: &[u8]) -> Option<FrameHeader> {
        let b: &[u8; 4] = b.get(..4)?.try_into().ok()?;
        if b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
            return None;
        }
        let version = match (b[1] >> 3) & 3 {
            0 => 25,
            2 => 2,
            3 => 1,
            _ => return None,
        };
        let layer = match (b[1] >> 1) & 3 {
            1 => 3,
            2 => 2,
            3 => 1,
            _ => return None,
        };
        let bitrate_index = usize::from(b[2] >> 4);
        if bitrate_index == 0 || bitrate_index == 15 {
            return None;
        }
        let rate_index = usize::from((b[2] >> 2) & 3);
        let base_rate = [44_100, 48_000, 32_000].get(rate_index)?;
        let sample_rate = match version {
            1 => *base_rate,
            2 => base_rate / 2,
            _ => base_rate / 4,
        };
        let bitrate_kbps = if version == 1 {
            BITRATES_V1[usize::from(layer - 1)][bitrate_index]
        } else {
            BITRATES_V2[usize::from(layer != 1)][bitrate_index]
        };
        let padding = usize::from((b[2] >> 1) & 1);
        let bitrate = bitrate_kbps as usize * 1000;
        let rate = sample_rate as usize;
        let (frame_len, samples) = match (layer, version) {
            (1, _) => ((12 * bitrate / rate + padding) * 4, 384),
            (2, _) | (3, 1) => (144 * bitrate / rate + padding, 1152),
            _ => (72 * bitrate / rate + padding, 576),
        };
        let channels = if b[3] >> 6 == 3 { 1 } else { 2 };
        Some(FrameHeader {
            version,
            layer,
            bitrate_kbps,
            sample_rate,
            channels,
            frame_len,
            samples,
        })
    }

    /// Same stream: a following frame must agree on these, or the first "frame" was noise.
    fn compatible(&self, other: &FrameHeader) -> bool {
        self.version == other.version
            && self.layer == other.layer
            && self.sample_rate == other.sample_rate
    }

    /// Where a Xing/Info tag would start inside this frame (after the side information).
    fn xing_offset(&self) -> usize {
        4 + match (self.version == 1, self.channels == 1) {
            (true, false) => 32,
            (true, true) => 17,
            (false, false) => 17,
            (false, true) => 9,
        }
    }
}

/// Size of an ID3v2 tag at the start of `data` (header, body and footer), or 0.
pub fn id3v2_len(data: &[u8]) -> usize {
    if data.len() < 10 || &data[..3] != b"ID3" {
        return 0;
    }
    let size = data[6..10]
        .iter()
        .fold(0usize, |acc, &b| (acc << 7) | usize::from(b & 0x7F));
    let footer = if data[5] & 0x10 != 0 { 10 } else { 0 };
    (10 + size + footer).min(data.len())
}

/// Where the audio ends: before a trailing ID3v1 tag and/or APEv2 tag.
fn tagless_end(data: &[u8]) -> usize {
    let mut end = data.len();
    if end >= 128 && &data[end - 128..end - 125] == b"TAG" {
        end -= 128;
    }
    if end >= 32 && &data[end - 32..end - 24] == b"APETAGEX" {
        let footer = &data[end - 32..end];
        let size = u32::from_le_bytes([footer[12], footer[13], footer[14], footer[15]]) as usize;
        let flags = u32::from_le_bytes([footer[20], footer[21], footer[22], footer[23]]);
        let header = if flags & 0x8000_0000 != 0 { 32 } else { 0 };
        end = end.saturating_sub(size + header);
    }
    end
}

/// How many frames in a row must check out before a sync word is believed.
const SYNC_CONFIRM_FRAMES: usize = 3;

/// A frame header at `pos` followed by `SYNC_CONFIRM_FRAMES - 1` compatible ones (or the end).
fn confirmed_header(data: &[u8], pos: usize, end: usize) -> Option<FrameHeader> {
    let first = FrameHeader::parse(&data[pos..end])?;
    let mut at = pos;
    let mut header = first;
    for _ in 1..SYNC_CONFIRM_FRAMES {
        at += header.frame_len;
        if at == end {
            break;
        }
        header = FrameHeader::parse(data.get(at..end)?)?;
        if !first.compatible(&header) {
            return None;
        }
    }
    Some(first)
}

/// Where an MPEG audio file's audio frames lie: after any ID3v2 tag and Xing/Info/VBRI frame,
/// before any ID3v1 / APEv2 tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpegLayout {
    pub audio_start: u64,
    pub audio_end: u64,
    /// The first audio frame's header.
    pub first: FrameHeader,
    /// Its four header bytes (a template for silence).
    pub first_bytes: [u8; 4],
    /// The Xing header's seek table, when the file is VBR and has one (LAME writes it).
    pub toc: Option<XingToc>,
}

/// A Xing seek table: for each percent of the playing time, where in the stream it falls, in
/// 256ths of `bytes` counted from the Xing frame at `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XingToc {
    pub base: u64,
    pub bytes: u64,
    pub table: [u8; 100],
}

impl XingToc {
    /// Reads the table from the Xing/Info frame at `frame` (its header first); `None` without
    /// one.
    fn parse(frame: &[u8], base: u64, tag_at: usize, fallback_bytes: u64) -> Option<Self> {
        let flags = u32::from_be_bytes(frame.get(tag_at + 4..tag_at + 8)?.try_into().ok()?);
        let mut at = tag_at + 8;
        if flags & 1 != 0 {
            at += 4; // frame count
        }
        let mut bytes = fallback_bytes;
        if flags & 2 != 0 {
            let b = u32::from_be_bytes(frame.get(at..at + 4)?.try_into().ok()?);
            if b > 0 {
                bytes = u64::from(b);
            }
            at += 4;
        }
        if flags & 4 == 0 {
            return None;
        }
        let table: [u8; 100] = frame.get(at..at + 100)?.try_into().ok()?;
        // A table must not go backwards.
        if table.windows(2).any(|w| w[1] < w[0]) {
            return None;
        }
        Some(Self { base, bytes, table })
    }

    /// The byte offset of `fraction` (0..=1) of the playing time: the table interpolated
    /// linearly between its percent points, as mpg123 and FFmpeg seek.
    pub fn offset_at(&self, fraction: f64) -> u64 {
        let pct = (fraction * 100.0).clamp(0.0, 100.0);
        let i = (pct as usize).min(99);
        let a = f64::from(self.table[i]);
        let b = self
            .table
            .get(i + 1)
            .map(|&v| f64::from(v))
            .unwrap_or(256.0);
        let x = a + (b - a) * (pct - i as f64);
        self.base + (x / 256.0 * self.bytes as f64) as u64
    }

    /// The fraction of the playing time at byte `offset`: the inverse of [`offset_at`].
    ///
    /// [`offset_at`]: XingToc::offset_at
    pub fn fraction_at(&self, offset: u64) -> f64 {
        let x = (offset.saturating_sub(self.base)) as f64 / self.bytes.max(1) as f64 * 256.0;
        for i in 0..100 {
            let a = f64::from(self.table[i]);
            let b = self
                .table
                .get(i + 1)
                .map(|&v| f64::from(v))
                .unwrap_or(256.0);
            if x < b || i == 99 {
                let within = if b > a {
                    ((x - a) / (b - a)).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                return ((i as f64 + within) / 100.0).clamp(0.0, 1.0);
            }
        }
        1.0
    }
}

/// The layout from the file's first bytes `head` (enough to hold the ID3v2 tag and three
/// frames) and its last bytes `tail` (128 or more, or the whole file), for a file of `size`
/// bytes: the stream needs no more to start anywhere in the file.
pub fn mpeg_layout(head: &[u8], tail: &[u8], size: u64) -> Option<MpegLayout> {
    let start = id3v2_len(head);
    if start >= head.len() {
        return None;
    }
    let (pos, first) = find_frame(head, start)?;
    let mut audio_start = pos;
    let tag_at = pos + first.xing_offset();
    let xing = matches!(head.get(tag_at..tag_at + 4), Some(b"Xing") | Some(b"Info"));
    let is_tag = xing || head.get(pos + 36..pos + 40) == Some(b"VBRI");
    if is_tag {
        audio_start += first.frame_len;
    }
    let (real_start, real_first) = find_frame(head, audio_start)?;
    let cut = (tail.len() - tagless_end(tail)) as u64;
    let audio_end = size.saturating_sub(cut);
    let first_bytes: [u8; 4] = head.get(real_start..real_start + 4)?.try_into().ok()?;
    // An `Info` frame (LAME's CBR) carries a table too, but a constant bitrate maps time to
    // bytes exactly by proportion, and the table rounds each point to 1/256 of the file.
    let vbr = head.get(tag_at..tag_at + 4) == Some(b"Xing");
    let toc = vbr
        .then(|| {
            let frame = head.get(pos..pos + first.frame_len)?;
            XingToc::parse(
                frame,
                pos as u64,
                first.xing_offset(),
                audio_end.saturating_sub(pos as u64),
            )
        })
        .flatten();
    Some(MpegLayout {
        audio_start: real_start as u64,
        audio_end,
        first: real_first,
        first_bytes,
        toc,
    })
}

/// The first confirmed frame at or after `from` in `data` (its header followed by compatible
/// ones, so a stray sync word in audio data is not taken for a frame).
pub fn find_frame(data: &[u8], from: usize) -> Option<(usize, FrameHeader)> {
    (from..data.len().saturating_sub(3))
        .find_map(|p| confirmed_header(data, p, data.len()).map(|h| (p, h)))
}

/// A frame of silence shaped like the frame whose header is `header` (same version, layer,
/// rate, bitrate and channel mode): header without CRC or padding, then zeros. For Layer III
/// zeroed side information means no coded samples: every decoder outputs silence.
pub fn silent_frame(header: [u8; 4]) -> Option<Vec<u8>> {
    let mut h = header;
    h[1] |= 1; // no CRC
    h[2] &= !0b11; // no padding, private bit clear
    h[3] &= 0b1100_0000; // channel mode kept; no mode extension, copyright or emphasis
    let parsed = FrameHeader::parse(&h)?;
    let mut frame = vec![0u8; parsed.frame_len];
    frame[..4].copy_from_slice(&h);
    Some(frame)
}

/// Builds the frame index of an MPEG audio file.
pub(crate) fn index(data: &[u8]) -> Result<FrameIndex, IndexError> {
    let start = id3v2_len(data);
    let end = tagless_end(data).max(start);
    let mut pos = start;
    let first = loop {
        if pos + 4 > end {
            return Err(IndexError::NoFrames {
                format: "MPEG audio",
            });
        }
        if let Some(h) = confirmed_header(data, pos, end) {
            break h;
        }
        pos += 1;
    };

    let mut audio_start = pos as u64;
    // A Xing/Info or VBRI frame is a valid frame with no audio: keep it out of the index.
    let tag_at = pos + first.xing_offset();
    let is_tag = matches!(data.get(tag_at..tag_at + 4), Some(b"Xing") | Some(b"Info"))
        || data.get(pos + 36..pos + 40) == Some(b"VBRI");
    let vbr_tag = is_tag.then(|| (pos as u64, (pos + first.frame_len) as u64));
    if is_tag {
        pos += first.frame_len;
        audio_start = pos as u64;
    }

    let mut points = Vec::with_capacity((end - pos) / first.frame_len.max(1) + 1);
    let mut samples: u64 = 0;
    let mut audio_bytes: u64 = 0;
    let mut skipped_bytes: u64 = 0;
    let mut audio_end = audio_start;
    while pos + 4 <= end {
        match FrameHeader::parse(&data[pos..end]) {
            Some(h) if first.compatible(&h) && pos + h.frame_len <= end => {
                points.push(IndexPoint {
                    offset: pos as u64,
                    sample: samples,
                });
                samples += u64::from(h.samples);
                audio_bytes += h.frame_len as u64;
                pos += h.frame_len;
                audio_end = pos as u64;
            }
            Some(h) if first.compatible(&h) => break, // a truncated last frame
            _ => {
                // Junk between frames: find the next confirmed frame.
                let resume = (pos + 1..end.saturating_sub(3))
                    .find(|&p| confirmed_header(data, p, end).is_some());
                match resume {
                    Some(p) => {
                        skipped_bytes += (p - pos) as u64;
                        pos = p;
                    }
                    None => break,
                }
            }
        }
    }
    if points.is_empty() {
        return Err(IndexError::NoFrames {
            format: "MPEG audio",
        });
    }
    Ok(FrameIndex {
        sample_rate: first.sample_rate,
        channels: first.channels,
        audio_start,
        audio_end,
        total_samples: samples,
        audio_bytes,
        skipped_bytes,
        header: vbr_tag.map(|(s, e)| s..e),
        points,
        pre_skip: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A silent-looking MPEG-1 Layer III frame: 128 kbit/s, 44.1 kHz, stereo.
    pub(crate) fn frame(padding: bool) -> Vec<u8> {
        let h =
            FrameHeader::parse(&[0xFF, 0xFB, 0x90 | if padding { 2 } else { 0 }, 0x00]).unwrap();
        let mut f = vec![0u8; h.frame_len];
        f[..4].copy_from_slice(&[0xFF, 0xFB, 0x90 | if padding { 2 } else { 0 }, 0x00]);
        f
    }

    #[test]
    fn header_sizes() {
        let h = FrameHeader::parse(&[0xFF, 0xFB, 0x90, 0x00]).unwrap();
        assert_eq!(
            (h.version, h.layer, h.bitrate_kbps, h.sample_rate),
            (1, 3, 128, 44_100)
        );
        assert_eq!((h.frame_len, h.samples, h.channels), (417, 1152, 2));
        let padded = FrameHeader::parse(&[0xFF, 0xFB, 0x92, 0xC0]).unwrap();
        assert_eq!((padded.frame_len, padded.channels), (418, 1));
        // MPEG-2 Layer III, 64 kbit/s, 22.05 kHz: 72 * 64000 / 22050 = 208.
        let v2 = FrameHeader::parse(&[0xFF, 0xF3, 0x80, 0x00]).unwrap();
        assert_eq!(
            (v2.version, v2.sample_rate, v2.frame_len, v2.samples),
            (2, 22_050, 208, 576)
        );
        assert_eq!(
            FrameHeader::parse(&[0xFF, 0xFB, 0xF0, 0x00]),
            None,
            "bad bitrate"
        );
        assert_eq!(
            FrameHeader::parse(&[0xFF, 0xFB, 0x0C, 0x00]),
            None,
            "free format / bad rate"
        );
        assert_eq!(
            FrameHeader::parse(&[0xFF, 0xE9, 0x90, 0x00]),
            None,
            "reserved layer"
        );
        assert_eq!(FrameHeader::parse(&[0xFF, 0xFB]), None, "short");
    }

    #[test]
    fn index_skips_tags_and_junk() {
        let mut data = b"ID3\x04\x00\x00\x00\x00\x00\x05hello".to_vec();
        let mut frames = Vec::new();
        for i in 0..10 {
            frames.push(data.len());
            data.extend(frame(i % 3 == 0));
            if i == 5 {
                data.extend(b"junk\xFF\xFB");
            }
        }
        data.extend(b"TAG");
        data.extend([0u8; 125]);
        let idx = index(&data).unwrap();
        assert_eq!(idx.points.len(), 10);
        assert_eq!(idx.audio_start, 15);
        let offsets: Vec<usize> = idx.points.iter().map(|p| p.offset as usize).collect();
        assert_eq!(offsets, frames);
        assert_eq!(idx.total_samples, 11_520);
        assert_eq!(idx.skipped_bytes, 6);
        assert_eq!(idx.audio_end as usize, data.len() - 128);
    }

    #[test]
    fn no_frames_is_an_error() {
        assert!(index(b"").is_err());
        assert!(index(&[0xFF; 1000]).is_err());
        assert!(index(&vec![0u8; 10_000]).is_err());
    }
}
