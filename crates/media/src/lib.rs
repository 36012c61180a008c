//! Media files: what they are and how long they play, and where their frames are.
//!
//! [`probe`] identifies a file (MP3, Ogg Vorbis, Ogg Opus, FLAC, AAC in ADTS, WAV) with
//! symphonia and measures its real duration exactly: by counting frames or pages for MP3, Ogg
//! and ADTS (so VBR files without a Xing header, and tags at either end, give the right answer),
//! and from the stream header for FLAC and WAV.
//!
//! [`ts`] reads MPEG transport streams (TV): their timestamps and keyframes, and splices them.
//!
//! [`FrameIndex`] maps byte offsets to media time for MP3 frames and Ogg pages; the stream uses
//! it to pace bytes at the media's real rate and to join a file mid-way on a frame boundary.

mod adts;
mod index;
mod mp3;
mod ogg;
mod probe;
pub mod ts;

use std::path::PathBuf;

pub use index::{duration_to_samples, samples_to_duration, FrameIndex, IndexError, IndexPoint};
pub use mp3::{find_frame, id3v2_len, mpeg_layout, silent_frame, FrameHeader, MpegLayout, XingToc};
pub use ogg::{
    ogg_head, page_info, page_len, OggCodec, OggHead, PageInfo, PageWriter, FLAG_BOS,
    FLAG_CONTINUED, FLAG_EOS,
};
pub use probe::{frame_index, probe, probe_data, Format, MediaInfo, Tags, TS_FIX};

/// Why a file could not be probed or indexed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a media file Alluvium can stream ({reason})", path.display())]
    Unsupported { path: PathBuf, reason: String },
    #[error("{}: damaged or truncated media", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: IndexError,
    },
}
