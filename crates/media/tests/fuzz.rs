//! Fuzzing the parsers of media bytes from outside (MP3 frames and tags, Ogg pages, ADTS
//! frames, and the probe over all of them): on stable Rust, inside `cargo test`, a bounded
//! number of cases. Inputs are arbitrary bytes and real frames mutated; a parser may refuse
//! them, never panic. A failure found once stays below as a named case.

use std::path::Path;

use alluvium_media::{
    find_frame, id3v2_len, mpeg_layout, ogg_head, page_info, page_len, probe_data, silent_frame,
    FrameHeader, PageWriter,
};
use proptest::prelude::*;

const CASES: u32 = 256;

/// A stream of `n` silent MPEG-1 layer III frames (128 kbit/s, 44.1 kHz, stereo).
fn mp3_frames(n: usize) -> Vec<u8> {
    let frame = silent_frame([0xFF, 0xFB, 0x90, 0x64]).unwrap_or_default();
    frame.repeat(n)
}

/// A stream of `n` ADTS frames of 32 bytes (AAC LC, 44.1 kHz, stereo).
fn adts_frames(n: usize) -> Vec<u8> {
    let len: usize = 32;
    let header = [
        0xFF,
        0xF1,
        0x50,
        0x80 | ((len >> 11) & 0x03) as u8,
        ((len >> 3) & 0xFF) as u8,
        (((len & 0x07) << 5) | 0x1F) as u8,
        0xFC,
    ];
    let mut frame = header.to_vec();
    frame.resize(len, 0);
    frame.repeat(n)
}

/// An Ogg stream of one logical stream: `n` pages of one packet each.
fn ogg_pages(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = PageWriter::new(7);
    w.packets(
        &[b"OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0"],
        0,
        true,
        &mut out,
    );
    w.packets(&[b"OpusTags\0\0\0\0\0\0\0\0"], 0, false, &mut out);
    for i in 0..n {
        w.packets(
            &[&[0xF8, 0xFF, 0xFE][..]],
            960 * (i as i64 + 1),
            false,
            &mut out,
        );
    }
    out
}

/// Applies `edits` (position, new byte) and a truncation to `data`.
fn mutate(mut data: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    if data.is_empty() {
        return data;
    }
    for &(at, byte) in edits {
        let at = at % data.len();
        data[at] = byte;
    }
    let keep = data.len() - cut % data.len().max(1);
    data.truncate(keep);
    data
}

/// Every parser of media bytes, on `data`: none may panic.
fn parse_all(data: &[u8]) {
    let _ = FrameHeader::parse(data);
    let _ = id3v2_len(data);
    let mut from = 0;
    while let Some((at, header)) = find_frame(data, from) {
        assert!(at >= from && header.frame_len > 0);
        from = at + 1;
    }
    let half = data.len() / 2;
    let _ = mpeg_layout(&data[..half], &data[half..], data.len() as u64);
    let _ = page_len(data);
    let _ = page_info(data);
    let _ = ogg_head(data);
    for ext in ["mp3", "ogg", "opus", "aac", "flac", "wav", "bin"] {
        let _ = probe_data(Path::new(&format!("fuzz.{ext}")), data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn arbitrary_bytes_are_refused_or_parsed(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        parse_all(&data);
    }

    #[test]
    fn mutated_mp3_frames(
        frames in 1usize..40,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
    ) {
        parse_all(&mutate(mp3_frames(frames), &edits, cut));
    }

    #[test]
    fn mutated_adts_frames(
        frames in 1usize..60,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
    ) {
        parse_all(&mutate(adts_frames(frames), &edits, cut));
    }

    #[test]
    fn mutated_ogg_pages(
        pages in 0usize..30,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
    ) {
        parse_all(&mutate(ogg_pages(pages), &edits, cut));
    }

    /// A tag header claiming any size: the length is within what it says, never past it.
    #[test]
    fn id3v2_lengths_are_what_the_header_says(size in any::<[u8; 4]>(), flags in any::<u8>()) {
        let mut data = b"ID3\x04\x00".to_vec();
        data.push(flags);
        data.extend_from_slice(&size);
        let len = id3v2_len(&data);
        prop_assert!(len == 0 || len >= 10, "{len}");
    }
}

#[test]
fn the_unmutated_streams_parse() {
    let mp3 = mp3_frames(40);
    assert!(find_frame(&mp3, 0).is_some());
    let adts = adts_frames(60);
    assert!(probe_data(Path::new("a.aac"), &adts).is_ok());
    let ogg = ogg_pages(3);
    assert!(page_info(&ogg).is_ok());
}
