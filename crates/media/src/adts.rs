//! AAC in ADTS frames: counting frames for an exact duration (each frame holds 1024 samples per
//! raw data block). symphonia's ADTS reader does not know a file's length up front, and
//! ffprobe only estimates it from the bitrate.

use crate::index::IndexError;
use crate::mp3::id3v2_len;

pub(crate) const RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// Samples per channel, sample rate and channels of an ADTS stream.
pub(crate) fn scan(data: &[u8]) -> Result<(u64, u32, u16), IndexError> {
    let mut pos = id3v2_len(data);
    let mut samples = 0u64;
    let mut format = None;
    while let Some(h) = data.get(pos..pos + 7) {
        if h[0] != 0xFF || h[1] & 0xF6 != 0xF0 {
            if format.is_none() {
                pos += 1; // leading junk before the first frame
                continue;
            }
            break; // trailing tag or junk
        }
        let rate = *RATES
            .get(usize::from((h[2] >> 2) & 0x0F))
            .ok_or(IndexError::NoFrames {
                format: "AAC (ADTS)",
            })?;
        let channels = u16::from(((h[2] & 1) << 2) | (h[3] >> 6));
        let len =
            (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        if len < 7 || pos + len > data.len() {
            break; // a truncated last frame
        }
        format.get_or_insert((rate, channels));
        samples += 1024 * (u64::from(h[6] & 0x03) + 1);
        pos += len;
    }
    let (rate, channels) = format.ok_or(IndexError::NoFrames {
        format: "AAC (ADTS)",
    })?;
    Ok((samples, rate, channels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_frames() {
        // 44.1 kHz (index 4), stereo, 100-byte frames, one raw block each.
        let len = 100usize;
        let header = [
            0xFF,
            0xF1,
            0x50,
            0x80 | ((len >> 11) as u8),
            (len >> 3) as u8,
            ((len & 7) << 5) as u8,
            0xFC,
        ];
        let mut data = Vec::new();
        for _ in 0..10 {
            data.extend(header);
            data.extend([0u8; 93]);
        }
        data.extend(b"TAG");
        assert_eq!(scan(&data), Ok((10_240, 44_100, 2)));
        assert!(scan(b"nothing here").is_err());
    }
}
