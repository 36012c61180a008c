//! MPEG transport streams (ISO/IEC 13818-1) as TV stations use them: H.264 video with AAC or
//! MPEG audio in 188-byte packets. Only what a station needs: what time a packet carries and
//! where keyframes are (probing, joining), and the rewriting that splices entries into one
//! stream (timestamps shifted, continuity counters renumbered, tables of our own).
//!
//! Written by hand: the TS crates parse packets into their own structures and write them
//! anew, while a splice changes a few bytes of each packet in place and keeps the rest.

use std::time::Duration;

/// Bytes in a transport packet.
pub const PACKET_LEN: usize = 188;
/// The first byte of every packet.
pub const SYNC_BYTE: u8 = 0x47;
/// Ticks per second of PTS, DTS and the PCR's base.
pub const CLOCK_HZ: u64 = 90_000;
/// PTS, DTS and the PCR base are 33-bit counters.
const WRAP: u64 = 1 << 33;
const PAT_PID: u16 = 0;
const NULL_PID: u16 = 0x1FFF;
/// Stream types (table 2-34) a station carries.
pub const STREAM_H264: u8 = 0x1B;
const STREAM_MPEG1_AUDIO: u8 = 0x03;
const STREAM_MPEG2_AUDIO: u8 = 0x04;
const STREAM_AAC_ADTS: u8 = 0x0F;
/// The longest a joining player may have to wait for a keyframe: a clip with a longer gap is
/// refused (`scan`).
pub const MAX_KEYFRAME_GAP: Duration = Duration::from_secs(5);
/// Where a clip's PAT and PMT must be: a listener reads them from the head of the file.
pub const TABLES_WITHIN: usize = 64 * 1024;

const MPEG2: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_MPEG_2);

/// Why a file is not a transport stream a station can carry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TsError {
    #[error("not 188-byte transport packets (byte {offset} is not a packet start)")]
    NotPackets { offset: u64 },
    #[error("no PAT and PMT in the first {} KiB", TABLES_WITHIN / 1024)]
    NoTables,
    #[error("no H.264 video stream")]
    NoVideo,
    #[error("video stream type 0x{0:02x}: only H.264 is played by every player and browser")]
    VideoCodec(u8),
    #[error("audio stream type 0x{0:02x}: only AAC (ADTS) and MPEG audio are")]
    AudioCodec(u8),
    #[error("scrambled packets")]
    Scrambled,
    #[error("no timestamped video")]
    NoTimestamps,
    #[error("no PCR: a player cannot pace it")]
    NoPcr,
    #[error(
        "no keyframe for {gap:.1} s from {at:.1} s: a joining player waits that long for a picture"
    )]
    KeyframeGap { at: f64, gap: f64 },
}

/// A view of one packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a>(&'a [u8]);

impl<'a> Packet<'a> {
    /// The packet at the start of `b`, if `b` holds one (its sync byte first).
    pub fn new(b: &'a [u8]) -> Option<Self> {
        let p = b.get(..PACKET_LEN)?;
        (p[0] == SYNC_BYTE).then_some(Self(p))
    }

    pub fn pid(&self) -> u16 {
        (u16::from(self.0[1] & 0x1F) << 8) | u16::from(self.0[2])
    }

    /// A PES packet or a table section starts in this packet.
    pub fn unit_start(&self) -> bool {
        self.0[1] & 0x40 != 0
    }

    pub fn scrambled(&self) -> bool {
        self.0[3] & 0xC0 != 0
    }

    fn control(&self) -> u8 {
        (self.0[3] >> 4) & 3
    }

    pub fn has_payload(&self) -> bool {
        self.control() & 1 != 0
    }

    /// The adaptation field after its length byte (empty when there is none).
    fn adaptation(&self) -> &'a [u8] {
        if self.control() & 2 == 0 {
            return &[];
        }
        let len = usize::from(self.0[4]);
        self.0.get(5..5 + len).unwrap_or(&[])
    }

    pub fn payload(&self) -> &'a [u8] {
        if !self.has_payload() {
            return &[];
        }
        let start = if self.control() & 2 != 0 {
            5 + usize::from(self.0[4])
        } else {
            4
        };
        self.0.get(start..).unwrap_or(&[])
    }

    /// The encoder marked this packet as a place to start decoding.
    pub fn random_access(&self) -> bool {
        self.adaptation().first().is_some_and(|f| f & 0x40 != 0)
    }

    /// The PCR's base (90 kHz), if the packet carries one.
    pub fn pcr(&self) -> Option<u64> {
        let af = self.adaptation();
        if af.first()? & 0x10 == 0 {
            return None;
        }
        let b = af.get(1..7)?;
        Some(
            (u64::from(b[0]) << 25)
                | (u64::from(b[1]) << 17)
                | (u64::from(b[2]) << 9)
                | (u64::from(b[3]) << 1)
                | (u64::from(b[4]) >> 7),
        )
    }

    /// PTS and DTS of the PES packet starting here (DTS as PTS when absent).
    pub fn pes_times(&self) -> Option<(u64, u64)> {
        if !self.unit_start() {
            return None;
        }
        let at = pes_times_at(self.payload())?;
        let p = self.payload();
        let pts = read_timestamp(p.get(at..at + 5)?);
        let dts = if p[7] >> 6 == 3 {
            read_timestamp(p.get(at + 5..at + 10)?)
        } else {
            pts
        };
        Some((pts, dts))
    }

    /// Whether the PES packet starting here begins an H.264 picture a decoder can start at:
    /// marked random access, or carrying a sequence parameter set or an IDR slice.
    pub fn starts_h264_keyframe(&self) -> bool {
        if !self.unit_start() {
            return false;
        }
        if self.random_access() {
            return true;
        }
        let p = self.payload();
        let Some(header) = p.get(8).map(|&l| 9 + usize::from(l)) else {
            return false;
        };
        let es = p.get(header..).unwrap_or(&[]);
        es.windows(4)
            .any(|w| w[..3] == [0, 0, 1] && matches!(w[3] & 0x1F, 5 | 7))
    }
}

/// Where the PTS starts in a PES payload, if it has one.
fn pes_times_at(p: &[u8]) -> Option<usize> {
    if p.get(..3)? != [0, 0, 1] {
        return None;
    }
    // Streams whose PES header has no optional fields (padding, private 2, ECM, ...).
    if matches!(
        p.get(3)?,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    ) {
        return None;
    }
    (p.get(7)? >> 6 >= 2).then_some(9)
}

fn read_timestamp(b: &[u8]) -> u64 {
    (u64::from((b[0] >> 1) & 7) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | (u64::from(b[4]) >> 1)
}

fn write_timestamp(b: &mut [u8], v: u64) {
    let v = v % WRAP;
    b[0] = (b[0] & 0xF1) | (((v >> 29) as u8) & 0x0E);
    b[1] = (v >> 22) as u8;
    b[2] = (((v >> 14) as u8) & 0xFE) | 1;
    b[3] = (v >> 7) as u8;
    b[4] = (((v << 1) as u8) & 0xFE) | 1;
}

/// `a - b` on the 33-bit clock, as the shorter way round.
pub fn ticks_between(a: u64, b: u64) -> i64 {
    let d = (a % WRAP + WRAP - b % WRAP) % WRAP;
    if d >= WRAP / 2 {
        d as i64 - WRAP as i64
    } else {
        d as i64
    }
}

/// `t` ticks as a duration (negative counts as zero).
pub fn ticks_to_duration(t: i64) -> Duration {
    let t = t.max(0) as u64;
    Duration::from_secs(t / CLOCK_HZ)
        + Duration::from_nanos((t % CLOCK_HZ) * 1_000_000_000 / CLOCK_HZ)
}

/// One elementary stream of the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub pid: u16,
    pub stream_type: u8,
    /// Its descriptors, as the PMT carried them.
    pub descriptors: Vec<u8>,
}

/// The program a clip carries (its PMT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub number: u16,
    pub pmt_pid: u16,
    pub pcr_pid: u16,
    pub descriptors: Vec<u8>,
    pub streams: Vec<Stream>,
}

impl Program {
    /// The H.264 video stream's PID.
    pub fn video_pid(&self) -> Option<u16> {
        self.streams
            .iter()
            .find(|s| s.stream_type == STREAM_H264)
            .map(|s| s.pid)
    }

    pub fn carries(&self, pid: u16) -> bool {
        self.streams.iter().any(|s| s.pid == pid)
    }

    /// Refuses what a station cannot carry to every player.
    fn check(&self) -> Result<(), TsError> {
        let mut video = false;
        for s in &self.streams {
            match s.stream_type {
                STREAM_H264 => video = true,
                0x02 | 0x10 | 0x24 | 0x42 | 0xEA => return Err(TsError::VideoCodec(s.stream_type)),
                STREAM_AAC_ADTS | STREAM_MPEG1_AUDIO | STREAM_MPEG2_AUDIO => {}
                // Subtitles, teletext, data: carried as they come.
                0x06 => {}
                other => return Err(TsError::AudioCodec(other)),
            }
        }
        video.then_some(()).ok_or(TsError::NoVideo)
    }
}

/// The section starting in a packet's payload, if whole there and its CRC holds.
fn section<'a>(packet: &Packet<'a>) -> Option<&'a [u8]> {
    if !packet.unit_start() {
        return None;
    }
    let p = packet.payload();
    let pointer = usize::from(*p.first()?);
    let s = p.get(1 + pointer..)?;
    let len = (usize::from(*s.get(1)? & 0x0F) << 8) | usize::from(*s.get(2)?);
    let s = s.get(..3 + len)?;
    (len >= 9 && MPEG2.checksum(s) == 0).then_some(s)
}

/// The first program's number and PMT PID, from a PAT packet.
pub fn parse_pat(packet: &Packet<'_>) -> Option<(u16, u16)> {
    let s = section(packet).filter(|s| s[0] == 0)?;
    s[8..s.len() - 4]
        .chunks_exact(4)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u16::from_be_bytes([c[2] & 0x1F, c[3]]),
            )
        })
        .find(|&(number, _)| number != 0)
}

/// The program described by a PMT packet.
pub fn parse_pmt(packet: &Packet<'_>, pmt_pid: u16) -> Option<Program> {
    let s = section(packet).filter(|s| s[0] == 2)?;
    let end = s.len() - 4;
    let number = u16::from_be_bytes([s[3], s[4]]);
    let pcr_pid = u16::from_be_bytes([s.get(8)? & 0x1F, *s.get(9)?]);
    let info = usize::from(u16::from_be_bytes([s.get(10)? & 0x0F, *s.get(11)?]));
    let descriptors = s.get(12..12 + info)?.to_vec();
    let mut streams = Vec::new();
    let mut i = 12 + info;
    while i + 5 <= end {
        let es = usize::from(u16::from_be_bytes([s[i + 3] & 0x0F, s[i + 4]]));
        streams.push(Stream {
            stream_type: s[i],
            pid: u16::from_be_bytes([s[i + 1] & 0x1F, s[i + 2]]),
            descriptors: s.get(i + 5..i + 5 + es)?.to_vec(),
        });
        i += 5 + es;
    }
    Some(Program {
        number,
        pmt_pid,
        pcr_pid,
        descriptors,
        streams,
    })
}

/// Finds the program in the first `TABLES_WITHIN` bytes of a clip.
pub fn find_program(head: &[u8]) -> Option<Program> {
    let mut pmt_pid = None;
    for chunk in head
        .chunks_exact(PACKET_LEN)
        .take(TABLES_WITHIN / PACKET_LEN)
    {
        let packet = Packet::new(chunk)?;
        match (packet.pid(), pmt_pid) {
            (PAT_PID, _) => pmt_pid = parse_pat(&packet).map(|(_, pid)| pid).or(pmt_pid),
            (pid, Some(pmt)) if pid == pmt => {
                if let Some(program) = parse_pmt(&packet, pmt) {
                    return Some(program);
                }
            }
            _ => {}
        }
    }
    None
}

/// The PTS of the first video PES packet in `data` (the clip's own zero: the first picture
/// in decoding order, which a closed GOP also shows first).
pub fn first_video_pts(data: &[u8], video_pid: u16) -> Option<u64> {
    data.chunks_exact(PACKET_LEN)
        .filter_map(Packet::new)
        .filter(|p| p.pid() == video_pid)
        .find_map(|p| p.pes_times())
        .map(|(pts, _)| pts)
}

/// A place a joining player can start: a keyframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyframe {
    /// Byte offset of the packet where its PES starts.
    pub offset: u64,
    /// Its presentation time from the clip's zero, in ticks.
    pub time: i64,
}

/// What a clip is, from reading it whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsInfo {
    pub program: Program,
    /// The first video PTS: the clip's zero.
    pub zero: u64,
    /// From the zero to the end of the last picture shown.
    pub duration: Duration,
    pub keyframes: Vec<Keyframe>,
    /// The first audio stream's sample rate and channels (AAC), if it has one.
    pub audio: Option<(u32, u16)>,
}

/// Reads a whole clip: its program, duration from its timestamps, and keyframes; refuses one a
/// joining player could not start in.
pub fn scan(data: &[u8]) -> Result<TsInfo, TsError> {
    if let Some(bad) = (0..data.len())
        .step_by(PACKET_LEN)
        .find(|&i| data[i] != SYNC_BYTE || i + PACKET_LEN > data.len())
    {
        return Err(TsError::NotPackets { offset: bad as u64 });
    }
    let program = find_program(data).ok_or(TsError::NoTables)?;
    program.check()?;
    let video = program.video_pid().ok_or(TsError::NoVideo)?;
    let zero = first_video_pts(data, video).ok_or(TsError::NoTimestamps)?;
    let audio_pid = program
        .streams
        .iter()
        .find(|s| s.stream_type == STREAM_AAC_ADTS)
        .map(|s| s.pid);
    let mut audio = None;
    let mut keyframes = Vec::new();
    let (mut last, mut pictures) = (i64::MIN, 0u64);
    let mut first = i64::MAX;
    let mut clocked = false;
    for (i, chunk) in data.chunks_exact(PACKET_LEN).enumerate() {
        let Some(packet) = Packet::new(chunk) else {
            continue;
        };
        clocked |= packet.pid() == program.pcr_pid && packet.pcr().is_some();
        if packet.scrambled() && program.carries(packet.pid()) {
            return Err(TsError::Scrambled);
        }
        if Some(packet.pid()) == audio_pid && audio.is_none() && packet.unit_start() {
            audio = adts_shape(packet.payload());
        }
        if packet.pid() != video {
            continue;
        }
        let Some((pts, _)) = packet.pes_times() else {
            continue;
        };
        let time = ticks_between(pts, zero);
        pictures += 1;
        last = last.max(time);
        first = first.min(time);
        if packet.starts_h264_keyframe() {
            keyframes.push(Keyframe {
                offset: (i * PACKET_LEN) as u64,
                time,
            });
        }
    }
    if pictures == 0 {
        return Err(TsError::NoTimestamps);
    }
    if !clocked {
        return Err(TsError::NoPcr);
    }
    // Constant frame rate: the last picture lasts as long as the average one.
    let frame = if pictures > 1 {
        (last - first) / (pictures as i64 - 1)
    } else {
        0
    };
    let end = last + frame;
    let mut at = 0i64;
    for t in keyframes.iter().map(|k| k.time).chain([end]) {
        let gap = ticks_to_duration(t - at);
        if gap > MAX_KEYFRAME_GAP {
            return Err(TsError::KeyframeGap {
                at: at as f64 / CLOCK_HZ as f64,
                gap: gap.as_secs_f64(),
            });
        }
        at = at.max(t);
    }
    Ok(TsInfo {
        program,
        zero,
        duration: ticks_to_duration(end),
        keyframes,
        audio,
    })
}

/// Sample rate and channels of the ADTS frame at the start of a PES payload.
fn adts_shape(pes: &[u8]) -> Option<(u32, u16)> {
    let at = 9 + usize::from(*pes.get(8)?);
    let h = pes.get(at..at + 4)?;
    if h[0] != 0xFF || h[1] & 0xF6 != 0xF0 {
        return None;
    }
    let rate = *crate::adts::RATES.get(usize::from((h[2] >> 2) & 0x0F))?;
    Some((rate, u16::from(((h[2] & 1) << 2) | (h[3] >> 6))))
}

mod splice;
pub use splice::Splicer;

#[cfg(test)]
mod tests;
