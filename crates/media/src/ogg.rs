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
pub(crate) enum OggCodec {
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
    pub(crate) fn name(self) -> &'static str {
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
