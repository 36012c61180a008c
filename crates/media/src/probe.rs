//! Identifying a media file and measuring it.

use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use symphonia::core::codecs::audio::well_known::{
    CODEC_ID_AAC, CODEC_ID_FLAC, CODEC_ID_MP3, CODEC_ID_OPUS, CODEC_ID_VORBIS,
};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::{MetadataOptions, StandardTag};

use crate::index::{samples_to_duration, FrameIndex};
use crate::ogg::OggCodec;
use crate::{adts, mp3, ogg, ts, Error};

/// A container + codec pair Alluvium can stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Mp3,
    OggVorbis,
    OggOpus,
    Flac,
    /// AAC in ADTS frames.
    Aac,
    Wav,
    /// MPEG transport stream: H.264 video with AAC or MPEG audio (a TV station).
    MpegTs,
}

impl Format {
    /// The MIME type to serve and stream it as.
    pub fn mime_type(self) -> &'static str {
        match self {
            Format::Mp3 => "audio/mpeg",
            Format::OggVorbis | Format::OggOpus => "audio/ogg",
            Format::Flac => "audio/flac",
            Format::Aac => "audio/aac",
            Format::Wav => "audio/wav",
            Format::MpegTs => "video/mp2t",
        }
    }

    pub fn codec(self) -> &'static str {
        match self {
            Format::Mp3 => "mp3",
            Format::OggVorbis => "vorbis",
            Format::OggOpus => "opus",
            Format::Flac => "flac",
            Format::Aac => "aac",
            Format::Wav => "pcm",
            Format::MpegTs => "h264",
        }
    }

    /// A name for people: `MP3`, `Ogg Vorbis`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Mp3 => "MP3",
            Format::OggVorbis => "Ogg Vorbis",
            Format::OggOpus => "Ogg Opus",
            Format::Flac => "FLAC",
            Format::Aac => "AAC (ADTS)",
            Format::Wav => "WAV",
            Format::MpegTs => "MPEG-TS (H.264)",
        }
    }

    /// Whether files of this format can be joined into one continuous stream with a frame
    /// index (MP3 frame to frame, Ogg as chained streams).
    pub fn has_frame_index(self) -> bool {
        matches!(self, Format::Mp3 | Format::OggVorbis | Format::OggOpus)
    }

    /// Pictures as well as sound: a TV station's format.
    pub fn is_video(self) -> bool {
        self == Format::MpegTs
    }
}

/// Title and artist from the file's own tags, when it has them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tags {
    pub title: Option<String>,
    pub artist: Option<String>,
}

/// What a media file is and how long it plays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaInfo {
    pub format: Format,
    pub sample_rate: u32,
    pub channels: u16,
    /// Average bits per second of the audio data.
    pub bitrate: u32,
    /// Real playing time.
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    /// Bytes in the file.
    pub size: u64,
    pub tags: Tags,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Probes a file on disk.
pub fn probe(path: &Path) -> Result<MediaInfo, Error> {
    let data = std::fs::read(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })?;
    probe_data(path, &data)
}

/// Probes a file already read into memory (`path` names it in errors and hints its type).
pub fn probe_data(path: &Path, data: &[u8]) -> Result<MediaInfo, Error> {
    let ext = path.extension().and_then(|e| e.to_str());
    probe_bytes(data, ext).map_err(|e| e.at(path))
}

/// The frame index of an MP3 or Ogg file on disk.
pub fn frame_index(path: &Path) -> Result<FrameIndex, Error> {
    let data = std::fs::read(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })?;
    let index = if ogg::codec(&data).is_some() {
        ogg::index(&data)
    } else {
        mp3::index(&data)
    };
    index.map_err(|source| Error::Corrupt {
        path: path.into(),
        source,
    })
}

/// A probe failure before it knows the file's name.
#[derive(Debug)]
enum ProbeError {
    Unsupported(String),
    Corrupt(crate::IndexError),
}

impl ProbeError {
    fn at(self, path: &Path) -> Error {
        match self {
            ProbeError::Unsupported(reason) => Error::Unsupported {
                path: path.into(),
                reason,
            },
            ProbeError::Corrupt(source) => Error::Corrupt {
                path: path.into(),
                source,
            },
        }
    }
}

/// Probes a file held in memory; `extension` is a hint only.
fn probe_bytes(data: &[u8], extension: Option<&str>) -> Result<MediaInfo, ProbeError> {
    if looks_like_ts(data, extension) {
        return probe_ts(data);
    }
    let mut hint = Hint::new();
    if let Some(ext) = extension {
        hint.with_extension(ext);
    }
    let source = MediaSourceStream::new(Box::new(Cursor::new(data.to_vec())), Default::default());
    let mut reader = symphonia::default::get_probe()
        .probe(
            &hint,
            source,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|_| {
            ProbeError::Unsupported(
                "not recognised as MP3, Ogg Vorbis, Ogg Opus, FLAC, AAC (ADTS) or WAV".into(),
            )
        })?;
    let container = reader.format_info().short_name;
    let track = reader
        .first_track(TrackType::Audio)
        .ok_or_else(|| ProbeError::Unsupported("no audio track".into()))?
        .clone();
    let Some(CodecParameters::Audio(params)) = &track.codec_params else {
        return Err(ProbeError::Unsupported("no audio codec parameters".into()));
    };
    let tags = read_tags(&mut *reader);
    let size = data.len() as u64;
    let unsupported = |what: String| Err(ProbeError::Unsupported(what));

    let (format, samples, rate, channels, audio_bytes) = match (container, params.codec) {
        ("mp3", CODEC_ID_MP3) => {
            let idx = mp3::index(data).map_err(ProbeError::Corrupt)?;
            (
                Format::Mp3,
                idx.total_samples(),
                idx.sample_rate(),
                idx.channels(),
                idx.audio_bytes(),
            )
        }
        ("ogg", CODEC_ID_VORBIS | CODEC_ID_OPUS) => {
            let idx = ogg::index(data).map_err(ProbeError::Corrupt)?;
            let format = match ogg::codec(data) {
                Some(OggCodec::Vorbis) => Format::OggVorbis,
                Some(OggCodec::Opus) => Format::OggOpus,
                None => return unsupported("an Ogg stream that is neither Vorbis nor Opus".into()),
            };
            let samples = idx.total_samples().saturating_sub(idx.pre_skip);
            (
                format,
                samples,
                idx.sample_rate(),
                idx.channels(),
                idx.audio_bytes(),
            )
        }
        ("aac", CODEC_ID_AAC) => {
            let (samples, rate, channels) = adts::scan(data).map_err(ProbeError::Corrupt)?;
            (Format::Aac, samples, rate, channels, size)
        }
        ("flac" | "wave", codec) if codec == CODEC_ID_FLAC || container == "wave" => {
            let format = if container == "flac" {
                Format::Flac
            } else {
                Format::Wav
            };
            let rate = params.sample_rate.filter(|&r| r > 0);
            let (Some(rate), Some(frames)) = (rate, track.num_frames) else {
                return unsupported(format!("{} without a known length", format.name()));
            };
            let channels = params.channels.as_ref().map_or(0, |c| c.count());
            (
                format,
                frames,
                rate,
                u16::try_from(channels).unwrap_or(0),
                size,
            )
        }
        (container, codec) => {
            return unsupported(format!(
                "{container} container with codec {codec:?} is not supported"
            ))
        }
    };
    let duration = samples_to_duration(samples, rate);
    if duration.is_zero() {
        return Err(ProbeError::Corrupt(crate::IndexError::NoFrames {
            format: format.name(),
        }));
    }
    let bitrate = (u128::from(audio_bytes) * 8 * 1_000_000 / duration.as_micros().max(1)) as u64;
    Ok(MediaInfo {
        format,
        sample_rate: params.sample_rate.filter(|&r| r > 0).unwrap_or(rate),
        channels,
        bitrate: u32::try_from(bitrate).unwrap_or(u32::MAX),
        duration,
        size,
        tags,
    })
}

/// A transport stream by its name, or by sync bytes where its first packets would be.
fn looks_like_ts(data: &[u8], extension: Option<&str>) -> bool {
    let named = extension.is_some_and(|e| {
        matches!(
            e.to_ascii_lowercase().as_str(),
            "ts" | "m2t" | "mts" | "tsv"
        )
    });
    let synced = data.len() >= 3 * ts::PACKET_LEN
        && (0..3).all(|i| data[i * ts::PACKET_LEN] == ts::SYNC_BYTE);
    named || synced
}

/// The command that makes a clip every joining player can start in (H.264 with a keyframe
/// every 2 s, AAC, PAT and PMT at the start).
pub const TS_FIX: &str = "ffmpeg -i IN -c:v libx264 -force_key_frames 'expr:gte(t,n_forced*2)' \
     -c:a aac -b:a 128k -f mpegts OUT.ts";

fn probe_ts(data: &[u8]) -> Result<MediaInfo, ProbeError> {
    let info = ts::scan(data).map_err(|e| {
        ProbeError::Unsupported(format!("MPEG-TS: {e}; re-encode it with `{TS_FIX}`"))
    })?;
    if info.duration.is_zero() {
        return Err(ProbeError::Corrupt(crate::IndexError::NoFrames {
            format: "MPEG-TS",
        }));
    }
    let (sample_rate, channels) = info.audio.unwrap_or((0, 0));
    let size = data.len() as u64;
    let bitrate = u128::from(size) * 8 * 1_000_000 / info.duration.as_micros().max(1);
    Ok(MediaInfo {
        format: Format::MpegTs,
        sample_rate,
        channels,
        bitrate: u32::try_from(bitrate).unwrap_or(u32::MAX),
        duration: info.duration,
        size,
        tags: Tags::default(),
    })
}

fn read_tags(reader: &mut dyn symphonia::core::formats::FormatReader) -> Tags {
    let mut tags = Tags::default();
    let mut metadata = reader.metadata();
    let Some(revision) = metadata.skip_to_latest() else {
        return tags;
    };
    let all = revision.media.tags.iter().chain(
        revision
            .per_track
            .iter()
            .flat_map(|t| t.metadata.tags.iter()),
    );
    for tag in all {
        match &tag.std {
            Some(StandardTag::TrackTitle(t)) if tags.title.is_none() => tags.title = clean(t),
            Some(StandardTag::Artist(a)) if tags.artist.is_none() => tags.artist = clean(a),
            _ => {}
        }
    }
    tags
}

fn clean(s: &str) -> Option<String> {
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!s.is_empty()).then(|| s.to_string())
}
