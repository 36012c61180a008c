//! Ogg pages (RFC 3533): the page index of an Ogg Vorbis or Ogg Opus file.
//!
//! Written by hand because symphonia's Ogg reader yields packets, not the byte offsets of pages,
//! and the stream needs pages: they are the unit at which an Ogg stream can be cut and joined,
//! and the header pages must be sent again to every client that joins mid-entry.

use crate::index::{FrameIndex, IndexError, IndexPoint};

const HEADER_LEN: usize = 27;

/// One Ogg page's header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page<'a> {
    pub(crate) offset: usize,
    pub(crate) flags: u8,
    /// Samples at the end of the last packet that ends on this page; -1 when none ends here.
    pub(crate) granule: i64,
    pub(crate) serial: u32,
    pub(crate) lacing: &'a [u8],
    pub(crate) body: &'a [u8],
}

impl Page<'_> {
    pub(crate) fn len(&self) -> usize {
        HEADER_LEN + self.lacing.len() + self.body.len()
    }

    /// Packets that end on this page (a lacing value below 255 ends a packet).
    fn packets_ending(&self) -> usize {
        self.lacing.iter().filter(|&&l| l < 255).count()
    }
}

/// Reads the page at `offset`, checking its CRC.
pub(crate) fn read_page(data: &[u8], offset: usize) -> Result<Page<'_>, IndexError> {
    let bad = |reason| IndexError::BadPage {
        offset: offset as u64,
        reason,
    };
    let head = data
        .get(offset..offset + HEADER_LEN)
        .ok_or(bad("truncated page header"))?;
    if &head[..4] != b"OggS" {
        return Err(bad("no OggS capture pattern"));
    }
    if head[4] != 0 {
        return Err(bad("unknown Ogg version"));
    }
    let nsegs = usize::from(head[26]);
    let lacing = data
        .get(offset + HEADER_LEN..offset + HEADER_LEN + nsegs)
        .ok_or(bad("truncated lacing table"))?;
    let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
    let body_start = offset + HEADER_LEN + nsegs;
    let body = data
        .get(body_start..body_start + body_len)
        .ok_or(bad("truncated page body"))?;
    let stored = u32::from_le_bytes([head[22], head[23], head[24], head[25]]);
    let mut crc = crc32_update(0, &head[..22]);
    crc = crc32_update(crc, &[0; 4]);
    crc = crc32_update(crc, &head[26..]);
    crc = crc32_update(crc, lacing);
    crc = crc32_update(crc, body);
    if crc != stored {
        return Err(bad("CRC mismatch (corrupt data)"));
    }
    let granule = i64::from_le_bytes(head[6..14].try_into().map_err(|_| bad("granule"))?);
    let serial = u32::from_le_bytes([head[14], head[15], head[16], head[17]]);
    Ok(Page {
        offset,
        flags: head[5],
        granule,
        serial,
        lacing,
        body,
    })
}

/// Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial value 0, no final xor.
fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The codec inside an Ogg stream, from its first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OggCodec {
    Vorbis,
    Opus,
}

/// Builds the page index of an Ogg Vorbis or Opus file (its first logical stream).
pub(crate) fn index(data: &[u8]) -> Result<FrameIndex, IndexError> {
    let first = read_page(data, 0)?;
    let (codec, rate, channels, pre_skip, header_packets) = identify(first.body)?;
    let serial = first.serial;

    let mut pos = 0;
    let mut headers_seen = 0;
    let mut audio_start = None;
    let mut points = Vec::new();
    let mut last_granule: u64 = 0;
    let mut audio_bytes = 0u64;
    let mut skipped = 0u64;
    while pos < data.len() {
        let page = match read_page(data, pos) {
            Ok(p) => p,
            // Trailing garbage (or a tag) after the last page ends the stream.
            Err(_) if audio_start.is_some() && data[pos..].windows(4).all(|w| w != b"OggS") => {
                skipped += (data.len() - pos) as u64;
                break;
            }
            Err(e) => return Err(e),
        };
        let len = page.len();
        if page.serial != serial {
            // Another logical stream (a chained file's next link): not ours.
            skipped += len as u64;
            pos += len;
            continue;
        }
        if audio_start.is_none() {
            headers_seen += page.packets_ending();
            if headers_seen >= header_packets {
                audio_start = Some((pos + len) as u64);
            }
        } else {
            points.push(IndexPoint {
                offset: pos as u64,
                sample: last_granule,
            });
            audio_bytes += len as u64;
            if page.granule >= 0 {
                last_granule = page.granule as u64;
            }
        }
        pos += len;
        if page.flags & 0x04 != 0 {
            break; // end of stream
        }
    }
    let audio_start = audio_start.ok_or(IndexError::BadHeaders {
        reason: "the stream ends inside its headers",
    })?;
    if points.is_empty() {
        return Err(IndexError::NoFrames {
            format: codec.name(),
        });
    }
    Ok(FrameIndex {
        sample_rate: rate,
        channels,
        audio_start,
        audio_end: pos as u64,
        total_samples: last_granule,
        audio_bytes,
        skipped_bytes: skipped,
        header: Some(0..audio_start),
        points,
        pre_skip,
    })
}

impl OggCodec {
    pub fn name(self) -> &'static str {
        match self {
            OggCodec::Vorbis => "Ogg Vorbis",
            OggCodec::Opus => "Ogg Opus",
        }
    }
}

/// Codec, granule rate, channels, pre-skip and number of header packets, from the first packet.
fn identify(packet: &[u8]) -> Result<(OggCodec, u32, u16, u64, usize), IndexError> {
    let bad = |reason| IndexError::BadHeaders { reason };
    if packet.starts_with(b"\x01vorbis") {
        let channels = *packet
            .get(11)
            .ok_or(bad("short Vorbis identification header"))?;
        let rate = packet
            .get(12..16)
            .ok_or(bad("short Vorbis identification header"))?;
        let rate = u32::from_le_bytes([rate[0], rate[1], rate[2], rate[3]]);
        if rate == 0 || channels == 0 {
            return Err(bad("Vorbis header with zero rate or channels"));
        }
        return Ok((OggCodec::Vorbis, rate, u16::from(channels), 0, 3));
    }
    if packet.starts_with(b"OpusHead") {
        let channels = *packet.get(9).ok_or(bad("short OpusHead"))?;
        let pre_skip = packet.get(10..12).ok_or(bad("short OpusHead"))?;
        let pre_skip = u16::from_le_bytes([pre_skip[0], pre_skip[1]]);
        if channels == 0 {
            return Err(bad("OpusHead with zero channels"));
        }
        // Opus granule positions always count 48 kHz samples.
        return Ok((
            OggCodec::Opus,
            48_000,
            u16::from(channels),
            u64::from(pre_skip),
            2,
        ));
    }
    Err(bad("the first Ogg stream is neither Vorbis nor Opus"))
}

/// The codec of an Ogg file, from its first page.
pub(crate) fn codec(data: &[u8]) -> Option<OggCodec> {
    let page = read_page(data, 0).ok()?;
    identify(page.body).ok().map(|(c, ..)| c)
}

/// Page flag: the page starts with the rest of a packet begun on the page before.
pub const FLAG_CONTINUED: u8 = 0x01;
/// Page flag: first page of a logical stream.
pub const FLAG_BOS: u8 = 0x02;
/// Page flag: last page of a logical stream.
pub const FLAG_EOS: u8 = 0x04;

/// What the stream needs of one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    /// Bytes in the page, header included.
    pub len: usize,
    pub flags: u8,
    /// Samples at the end of the last packet ending on this page; -1 when none ends here.
    pub granule: i64,
    pub serial: u32,
}

/// The length of the page whose first bytes are `head`, from its header and lacing table:
/// `Ok(None)` while `head` is too short to tell, `Err` when it is not a page header.
pub fn page_len(head: &[u8]) -> Result<Option<usize>, IndexError> {
    if head.len() < HEADER_LEN {
        return Ok(None);
    }
    if &head[..4] != b"OggS" {
        return Err(IndexError::BadPage {
            offset: 0,
            reason: "no OggS capture pattern",
        });
    }
    let nsegs = usize::from(head[26]);
    let Some(lacing) = head.get(HEADER_LEN..HEADER_LEN + nsegs) else {
        return Ok(None);
    };
    Ok(Some(
        HEADER_LEN + nsegs + lacing.iter().map(|&l| usize::from(l)).sum::<usize>(),
    ))
}

/// The page that starts `data`, its CRC checked.
pub fn page_info(data: &[u8]) -> Result<PageInfo, IndexError> {
    let page = read_page(data, 0)?;
    Ok(PageInfo {
        len: page.len(),
        flags: page.flags,
        granule: page.granule,
        serial: page.serial,
    })
}

/// An Ogg stream's header packets and where its audio starts: what a client joining
/// mid-stream must receive first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OggHead {
    pub codec: OggCodec,
    /// Granule positions per second (48,000 for Opus).
    pub rate: u32,
    pub channels: u16,
    /// Samples decoders drop at the start (Opus pre-skip).
    pub pre_skip: u64,
    pub serial: u32,
    /// Vorbis: identification, comments, setup. Opus: OpusHead, OpusTags.
    pub packets: Vec<Vec<u8>>,
    /// Where the first audio page starts.
    pub audio_start: u64,
}

/// The header of the Ogg stream at the start of `data`: `Ok(None)` while `data` ends before
/// the headers do (read more), `Err` when they are not Vorbis or Opus headers.
pub fn ogg_head(data: &[u8]) -> Result<Option<OggHead>, IndexError> {
    let mut pos = 0;
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut ident = None;
    let mut serial = None;
    loop {
        let Some(len) = page_len(&data[pos.min(data.len())..])? else {
            return Ok(None);
        };
        if pos + len > data.len() {
            return Ok(None);
        }
        let page = read_page(data, pos)?;
        pos += len;
        if *serial.get_or_insert(page.serial) != page.serial {
            continue; // another logical stream's page
        }
        let mut at = 0;
        for &l in page.lacing {
            let l = usize::from(l);
            partial.extend_from_slice(&page.body[at..at + l]);
            at += l;
            if l < 255 {
                packets.push(std::mem::take(&mut partial));
            }
        }
        if ident.is_none() {
            let first = packets.first().ok_or(IndexError::BadHeaders {
                reason: "the first page holds no whole packet",
            })?;
            ident = Some(identify(first)?);
        }
        let (codec, rate, channels, pre_skip, count) = ident.ok_or(IndexError::BadHeaders {
            reason: "no identification header",
        })?;
        if packets.len() >= count {
            if packets.len() > count || !partial.is_empty() {
                return Err(IndexError::BadHeaders {
                    reason: "audio data on a header page",
                });
            }
            return Ok(Some(OggHead {
                codec,
                rate,
                channels,
                pre_skip,
                serial: page.serial,
                packets,
                audio_start: pos as u64,
            }));
        }
    }
}

impl OggHead {
    /// The header packets with the comment packet replaced by one holding `tags` (and the
    /// original vendor string): how a chained stream names each entry.
    pub fn with_comments(&self, tags: &[(&str, &str)]) -> Vec<Vec<u8>> {
        let (magic, framing): (&[u8], bool) = match self.codec {
            OggCodec::Vorbis => (b"\x03vorbis", true),
            OggCodec::Opus => (b"OpusTags", false),
        };
        let vendor = self
            .packets
            .get(1)
            .and_then(|p| p.strip_prefix(magic))
            .and_then(|rest| {
                let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
                rest.get(4..4 + len)
            })
            .unwrap_or(b"Alluvium");
        let mut comment = magic.to_vec();
        comment.extend((vendor.len() as u32).to_le_bytes());
        comment.extend_from_slice(vendor);
        comment.extend((tags.len() as u32).to_le_bytes());
        for (key, value) in tags {
            let field = format!("{key}={value}");
            comment.extend((field.len() as u32).to_le_bytes());
            comment.extend_from_slice(field.as_bytes());
        }
        if framing {
            comment.push(1);
        }
        let mut packets = self.packets.clone();
        if let Some(p) = packets.get_mut(1) {
            *p = comment;
        }
        packets
    }

    /// A packet that decodes to silence, and the samples it lasts (granule units), for
    /// filling dead air inside this stream; `None` where the codec has none Alluvium can
    /// make (multichannel Opus, a Vorbis setup header it cannot read).
    ///
    /// Opus: a CELT 20 ms frame with the silence flag set (RFC 6716 4.3: `FF FE` decodes the
    /// silence bit as 1). Vorbis: an audio packet of zero bits, mode 0, every channel's floor
    /// flagged unused, so the decoder outputs zeros; it lasts half of mode 0's block size.
    pub fn silent_packet(&self) -> Option<(Vec<u8>, u64)> {
        match self.codec {
            OggCodec::Opus => {
                let family = *self.packets.first()?.get(18)?;
                if family != 0 || self.channels > 2 {
                    return None;
                }
                let stereo = if self.channels == 2 { 0x04 } else { 0 };
                Some((vec![0xF8 | stereo, 0xFF, 0xFE], 960))
            }
            OggCodec::Vorbis => {
                let ident = self.packets.first()?;
                let sizes = *ident.get(28)?;
                let (short, long) = (1u64 << (sizes & 0x0F), 1u64 << (sizes >> 4));
                let long_block = vorbis_mode0_blockflag(self.packets.get(2)?)?;
                let block = if long_block { long } else { short };
                Some((vec![0; 4], block / 2))
            }
        }
    }
}

/// Whether Vorbis mode 0 uses the long block, read from the end of the setup header.
///
/// The setup header ends with the mode table (6 bits count - 1, then per mode 1 bit
/// blockflag, 16 bits window type = 0, 16 bits transform type = 0, 8 bits mapping) and a
/// framing bit; reading the codebooks before it would mean decoding all of them, so, as
/// FFmpeg's and liboggz's parsers do, this reads the table backwards from the framing bit
/// and takes the longest table whose count field agrees.
fn vorbis_mode0_blockflag(setup: &[u8]) -> Option<bool> {
    let bit = |i: usize| (setup[i / 8] >> (i % 8)) & 1;
    let bits =
        |from: usize, n: usize| (0..n).fold(0u32, |v, k| v | (u32::from(bit(from + k)) << k));
    let last = setup.iter().rposition(|&b| b != 0)?;
    let framing = last * 8 + (7 - setup[last].leading_zeros() as usize);
    for count in (1..=64usize).rev() {
        let Some(table) = framing.checked_sub(41 * count) else {
            continue;
        };
        let Some(count_at) = table.checked_sub(6) else {
            continue;
        };
        if bits(count_at, 6) as usize != count - 1 {
            continue;
        }
        let fits = (0..count).all(|m| {
            let at = table + 41 * m;
            bits(at + 1, 16) == 0 && bits(at + 17, 16) == 0 && bits(at + 33, 8) < 64
        });
        if fits {
            return Some(bit(table) == 1);
        }
    }
    None
}

/// Writes pages of one logical stream: whole packets into new pages, or pages of another
/// stream copied in with this stream's serial number, sequence numbers and CRC.
#[derive(Debug, Clone)]
pub struct PageWriter {
    serial: u32,
    seq: u32,
}

impl PageWriter {
    pub fn new(serial: u32) -> Self {
        Self { serial, seq: 0 }
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Pages holding `packets` whole; the last page ends with the last packet and carries
    /// `granule` (earlier pages where no packet ends carry -1). `bos` marks the first page as
    /// the stream's beginning.
    pub fn packets(&mut self, packets: &[&[u8]], granule: i64, bos: bool, out: &mut Vec<u8>) {
        // Lacing values per packet, then cut into pages of at most 255 segments.
        let mut segments: Vec<(u8, bool)> = Vec::new(); // (lacing value, ends a packet)
        let mut body: Vec<u8> = Vec::new();
        for p in packets {
            let mut n = p.len();
            while n >= 255 {
                segments.push((255, false));
                n -= 255;
            }
            segments.push((n as u8, true));
            body.extend_from_slice(p);
        }
        let pages = segments.chunks(255).count();
        let mut at = 0;
        let mut continued = false;
        for (i, chunk) in segments.chunks(255).enumerate() {
            let len: usize = chunk.iter().map(|&(l, _)| usize::from(l)).sum();
            let ends_packet = chunk.iter().any(|&(_, end)| end);
            let mut flags = if continued { FLAG_CONTINUED } else { 0 };
            if bos && i == 0 {
                flags |= FLAG_BOS;
            }
            // Only the last page's position is known; an earlier page where a packet ends
            // gets the same one, exact for headers (0), and callers keep audio to one page.
            let g = if i + 1 == pages || ends_packet {
                granule
            } else {
                -1
            };
            let lacing: Vec<u8> = chunk.iter().map(|&(l, _)| l).collect();
            self.page(flags, g, &lacing, &body[at..at + len], out);
            at += len;
            continued = chunk.last().is_some_and(|&(_, end)| !end);
        }
    }

    /// Copies a whole page (as checked by [`page_info`]) into this stream, flags kept but
    /// BOS.
    pub fn copy(&mut self, page: &[u8], out: &mut Vec<u8>) {
        let Some(nsegs) = page.get(26).map(|&n| usize::from(n)) else {
            return;
        };
        let Some(lacing) = page.get(HEADER_LEN..HEADER_LEN + nsegs) else {
            return;
        };
        let Some(body) = page.get(HEADER_LEN + nsegs..) else {
            return;
        };
        let granule = i64::from_le_bytes(page[6..14].try_into().unwrap_or([0xFF; 8]));
        self.page(page[5] & !FLAG_BOS, granule, lacing, body, out);
    }

    fn page(&mut self, flags: u8, granule: i64, lacing: &[u8], body: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(b"OggS\0");
        out.push(flags);
        out.extend(granule.to_le_bytes());
        out.extend(self.serial.to_le_bytes());
        out.extend(self.seq.to_le_bytes());
        out.extend([0; 4]);
        out.push(lacing.len() as u8);
        out.extend_from_slice(lacing);
        out.extend_from_slice(body);
        let crc = crc32_update(0, &out[start..]);
        out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
        self.seq = self.seq.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a page with a correct CRC.
    pub(crate) fn page(
        flags: u8,
        granule: i64,
        serial: u32,
        seq: u32,
        packets: &[&[u8]],
    ) -> Vec<u8> {
        let mut lacing = Vec::new();
        let mut body = Vec::new();
        for p in packets {
            let mut n = p.len();
            while n >= 255 {
                lacing.push(255);
                n -= 255;
            }
            lacing.push(n as u8);
            body.extend_from_slice(p);
        }
        let mut out = b"OggS\0".to_vec();
        out.push(flags);
        out.extend(granule.to_le_bytes());
        out.extend(serial.to_le_bytes());
        out.extend(seq.to_le_bytes());
        out.extend([0; 4]);
        out.push(lacing.len() as u8);
        out.extend(lacing);
        out.extend(body);
        let crc = crc32_update(0, &out);
        out[22..26].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn opus_head() -> Vec<u8> {
        let mut h = b"OpusHead\x01\x02".to_vec();
        h.extend(312u16.to_le_bytes());
        h.extend(48_000u32.to_le_bytes());
        h.extend([0, 0, 0]);
        h
    }

    #[test]
    fn opus_index() {
        let mut data = page(2, 0, 7, 0, &[&opus_head()]);
        data.extend(page(0, 0, 7, 1, &[b"OpusTags"]));
        let audio_start = data.len();
        data.extend(page(0, 48_312, 7, 2, &[&[1; 100], &[2; 300]]));
        data.extend(page(0, -1, 9, 0, &[&[3; 10]])); // another stream's page
        data.extend(page(4, 96_312, 7, 3, &[&[4; 50]]));
        let idx = index(&data).unwrap();
        assert_eq!(idx.audio_start as usize, audio_start);
        assert_eq!(idx.header(), Some(0..audio_start as u64));
        assert_eq!(idx.duration(), std::time::Duration::from_secs(2));
        assert_eq!(idx.points().len(), 2);
        assert_eq!(idx.points()[1].sample, 48_312);
        assert_eq!(codec(&data), Some(OggCodec::Opus));
    }

    #[test]
    fn corrupt_pages_are_named() {
        let mut data = page(2, 0, 7, 0, &[&opus_head()]);
        let last = data.len() - 1;
        data[last] ^= 1;
        assert_eq!(
            index(&data),
            Err(IndexError::BadPage {
                offset: 0,
                reason: "CRC mismatch (corrupt data)"
            })
        );
        assert!(matches!(index(b"OggS"), Err(IndexError::BadPage { .. })));
        assert!(matches!(
            index(&page(2, 0, 7, 0, &[b"not a codec"])),
            Err(IndexError::BadHeaders { .. })
        ));
        let headers_only = page(2, 0, 7, 0, &[&opus_head()]);
        assert!(index(&headers_only).is_err());
    }
}
