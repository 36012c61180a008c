//! Probing files that ffmpeg makes, checked against ffprobe. Needs ffmpeg and ffprobe on PATH
//! (`./test.sh` installs them); without them these tests fail, they never skip.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use alluvium_media::{frame_index, probe, Format};

fn require(program: &str) {
    let found = Command::new(program)
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{program} is required for this test (run ./test.sh, which installs it)"
    );
}

/// Makes `name` in `dir` with ffmpeg from a test tone: `args` go between input and output.
fn make(dir: &Path, name: &str, rate: u32, channels: u32, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let tone = format!("sine=frequency=330:sample_rate={rate}:duration=6.37");
    let status = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &tone,
        ])
        .args(["-ac", &channels.to_string()])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg failed to make {name}");
    out
}

/// ffprobe's decoded frame count times samples per frame: exact where its plain duration is a
/// bitrate estimate (VBR MP3 without a Xing header).
fn ffprobe_counted_duration(path: &Path, samples_per_frame: u64, rate: u64) -> Duration {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "a:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let frames: u64 = text
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("ffprobe said {text:?}"));
    Duration::from_nanos(frames * samples_per_frame * 1_000_000_000 / rate)
}

fn ffprobe_duration(path: &Path) -> Duration {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&out.stdout);
    Duration::from_secs_f64(
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("ffprobe said {text:?} for {}", path.display())),
    )
}

/// The files `durations_agree_with_ffprobe_in_every_format` makes: name, sample rate,
/// channels, ffmpeg's encoding arguments, and the format the probe must name.
const FORMATS: &[(&str, u32, u16, &[&str], Format)] = &[
    (
        "cbr.mp3",
        44_100,
        2,
        &["-c:a", "libmp3lame", "-b:a", "128k"],
        Format::Mp3,
    ),
    (
        "vbr.mp3",
        44_100,
        2,
        &["-c:a", "libmp3lame", "-q:a", "5"],
        Format::Mp3,
    ),
    (
        "vbr-noxing.mp3",
        44_100,
        2,
        &["-c:a", "libmp3lame", "-q:a", "2", "-write_xing", "0"],
        Format::Mp3,
    ),
    (
        "tagged.mp3",
        44_100,
        2,
        &[
            "-c:a",
            "libmp3lame",
            "-b:a",
            "96k",
            "-id3v2_version",
            "3",
            "-write_id3v1",
            "1",
            "-metadata",
            "title=Night Tide",
            "-metadata",
            "artist=Ana Example",
        ],
        Format::Mp3,
    ),
    (
        "mono-22k.mp3",
        22_050,
        1,
        &["-c:a", "libmp3lame", "-b:a", "32k"],
        Format::Mp3,
    ),
    (
        "tone.ogg",
        44_100,
        2,
        &["-c:a", "libvorbis", "-q:a", "3"],
        Format::OggVorbis,
    ),
    (
        "tone.opus",
        48_000,
        2,
        &["-c:a", "libopus", "-b:a", "64k"],
        Format::OggOpus,
    ),
    ("tone.flac", 44_100, 2, &["-c:a", "flac"], Format::Flac),
    (
        "tone.aac",
        44_100,
        2,
        &["-c:a", "aac", "-b:a", "128k", "-f", "adts"],
        Format::Aac,
    ),
    ("tone.wav", 48_000, 1, &["-c:a", "pcm_s16le"], Format::Wav),
];

#[test]
fn durations_agree_with_ffprobe_in_every_format() {
    require("ffmpeg");
    require("ffprobe");
    let dir = tempfile::tempdir().unwrap();
    for &(name, rate, channels, args, format) in FORMATS {
        let path = make(dir.path(), name, rate, u32::from(channels), args);
        check_probe(&path, format, rate, channels);
    }
}

/// What the probe says of `path` agrees with ffprobe and with how it was made.
fn check_probe(path: &Path, format: Format, rate: u32, channels: u16) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let info = probe(path).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let expected = if name == "vbr-noxing.mp3" {
        // Without a Xing header ffprobe's duration is only an estimate from the first
        // frame's bitrate (off by ~180 ms here); its frame count is the truth.
        let estimate = ffprobe_duration(path);
        eprintln!("{name}: ffprobe's bitrate estimate is {estimate:?}");
        ffprobe_counted_duration(path, 1152, 44_100)
    } else {
        ffprobe_duration(path)
    };
    let diff = info.duration.abs_diff(expected);
    eprintln!(
        "{name}: ours {:?}, ffprobe {expected:?}, diff {diff:?}, {} bit/s",
        info.duration, info.bitrate
    );
    assert!(
        diff <= Duration::from_millis(30),
        "{name}: {:?} vs ffprobe {expected:?}",
        info.duration
    );
    assert_eq!(info.format, format, "{name}");
    assert_eq!(
        (info.sample_rate, info.channels),
        (rate, channels),
        "{name}"
    );
    assert_eq!(info.size, std::fs::metadata(path).unwrap().len());
    assert!(info.bitrate > 8_000, "{name}: bitrate {}", info.bitrate);
    if name == "tagged.mp3" {
        assert_eq!(info.tags.title.as_deref(), Some("Night Tide"));
        assert_eq!(info.tags.artist.as_deref(), Some("Ana Example"));
    }
    if name == "cbr.mp3" {
        assert!(
            (127_000..=129_000).contains(&info.bitrate),
            "CBR bitrate {}",
            info.bitrate
        );
    }
    if format.has_frame_index() {
        check_index(path, format, info.duration);
    }
}

/// Every seek point is a frame or page start, the index agrees with the probe, and tags and
/// headers are outside the audio range.
fn check_index(path: &Path, format: Format, duration: Duration) {
    let data = std::fs::read(path).unwrap();
    let idx = frame_index(path).unwrap();
    assert_eq!(idx.duration(), duration);
    let points = idx.points();
    // MP3 frames are 26 ms; an Ogg page holds up to a few seconds at low bitrates.
    let (min_points, max_step) = match format {
        Format::Mp3 => (100, Duration::from_millis(60)),
        _ => (2, Duration::from_millis(3000)),
    };
    assert!(points.len() >= min_points, "{} points", points.len());
    for p in points {
        let at = &data[p.offset as usize..];
        match format {
            Format::Mp3 => assert!(
                at[0] == 0xFF && at[1] & 0xE0 == 0xE0,
                "no sync at {}",
                p.offset
            ),
            _ => assert_eq!(&at[..4], b"OggS", "no page at {}", p.offset),
        }
    }
    assert!(points
        .windows(2)
        .all(|w| w[0].offset < w[1].offset && w[0].sample <= w[1].sample));
    let audio = idx.audio_range();
    assert_eq!(points[0].offset, audio.start);
    assert!(audio.end <= data.len() as u64);
    if let Some(header) = idx.header() {
        assert!(
            header.end <= audio.start,
            "header {header:?} overlaps audio {audio:?}"
        );
    }
    if path.file_name().is_some_and(|n| n == "tagged.mp3") {
        assert_eq!(&data[..3], b"ID3");
        assert!(audio.start > 10, "ID3v2 is not audio");
        assert_eq!(
            &data[audio.end as usize..audio.end as usize + 3],
            b"TAG",
            "ID3v1 is not audio"
        );
    }
    if format == Format::Mp3 && path.file_name().is_some_and(|n| n != "vbr-noxing.mp3") {
        let xing = idx.header().expect("LAME writes a Xing/Info frame");
        let tag = &data[xing.start as usize..xing.end as usize];
        assert!(tag.windows(4).any(|w| w == b"Xing" || w == b"Info"));
    }
    // Joining mid-file: the point for 3 s starts within one frame/page of 3 s.
    let target = Duration::from_secs(3);
    let p = idx.point_at(target).unwrap();
    let t = idx.time_at(p.offset).unwrap();
    assert!(
        t <= target && target - t < max_step,
        "point for 3 s is at {t:?}"
    );
    if matches!(format, Format::OggVorbis | Format::OggOpus) {
        // Header pages + pages from the join point decode cleanly.
        let header = idx.header().unwrap();
        let mut joined = data[header.start as usize..header.end as usize].to_vec();
        joined.extend_from_slice(&data[p.offset as usize..]);
        let cut = path.with_extension("joined.ogg");
        std::fs::write(&cut, joined).unwrap();
        let out = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(&cut)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "joined Ogg: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn non_media_and_damage_give_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not audio at all\n".repeat(100)).unwrap();
    let err = probe(&text).unwrap_err().to_string();
    assert!(
        err.contains("notes.txt") && err.contains("not a media file"),
        "{err}"
    );

    let missing = dir.path().join("missing.mp3");
    let err = probe(&missing).unwrap_err().to_string();
    assert!(err.contains("missing.mp3"), "{err}");

    let empty = dir.path().join("empty.mp3");
    std::fs::write(&empty, b"").unwrap();
    assert!(probe(&empty).is_err());
}

#[test]
fn silent_frames_decode_to_silence_and_layouts_match_the_index() {
    require("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, rate, channels, args) in [
        (
            "s-cbr.mp3",
            44_100,
            2,
            &["-c:a", "libmp3lame", "-b:a", "128k"][..],
        ),
        (
            "s-vbr-tags.mp3",
            48_000,
            1,
            &[
                "-c:a",
                "libmp3lame",
                "-q:a",
                "4",
                "-id3v2_version",
                "3",
                "-write_id3v1",
                "1",
                "-metadata",
                "title=Tagged",
            ][..],
        ),
        (
            "s-lsf.mp3",
            22_050,
            2,
            &["-c:a", "libmp3lame", "-b:a", "64k"][..],
        ),
    ] {
        let path = make(d, name, rate, channels, args);
        let data = std::fs::read(&path).unwrap();
        let index = frame_index(&path).unwrap();
        let layout = alluvium_media::mpeg_layout(
            &data[..data.len().min(64 * 1024)],
            &data[data.len().saturating_sub(4096)..],
            data.len() as u64,
        )
        .unwrap();
        assert_eq!(
            layout.audio_start..layout.audio_end,
            index.audio_range(),
            "{name}"
        );
        assert_eq!(layout.first.sample_rate, rate, "{name}");

        // 200 frames of silence in the file's own shape: ffmpeg decodes them without a
        // complaint, to zeros, for exactly their samples.
        let silent = alluvium_media::silent_frame(layout.first_bytes).unwrap();
        let silence: Vec<u8> = (0..200).flat_map(|_| silent.clone()).collect();
        let out = d.join(format!("{name}.silence.mp3"));
        std::fs::write(&out, &silence).unwrap();
        let decoded = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(&out)
            .args(["-f", "s16le", "-"])
            .output()
            .unwrap();
        assert!(decoded.status.success());
        assert!(
            decoded.stderr.is_empty(),
            "{name}: {}",
            String::from_utf8_lossy(&decoded.stderr)
        );
        let samples = decoded.stdout.len() / 2 / channels as usize;
        let per_frame = layout.first.samples as usize;
        assert!(
            samples.abs_diff(200 * per_frame) <= per_frame,
            "{name}: {samples} samples"
        );
        assert!(decoded.stdout.iter().all(|&b| b == 0), "{name}: not silent");
    }
}

/// Pages of the Ogg file `data` from `from` on, as (offset, info).
fn pages_from(data: &[u8], from: usize) -> Vec<(usize, alluvium_media::PageInfo)> {
    let mut out = Vec::new();
    let mut at = from;
    while at < data.len() {
        let info = alluvium_media::page_info(&data[at..]).unwrap();
        out.push((at, info));
        at += info.len;
    }
    out
}

/// The titles ffprobe finds in `path`'s stream and format tags.
fn ffprobe_titles(path: &Path) -> String {
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream_tags=title:format_tags=title",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&probe.stdout).into_owned()
}

/// `path` decoded by ffmpeg to mono 48 kHz samples, with no error on the way.
fn decode_mono_48k(path: &Path) -> Vec<i16> {
    let decoded = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-ac", "1", "-ar", "48000", "-f", "s16le", "-"])
        .output()
        .unwrap();
    assert!(
        decoded.status.success() && decoded.stderr.is_empty(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&decoded.stderr)
    );
    decoded
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn ogg_links_with_new_comments_and_silence_decode_cleanly() {
    use alluvium_media::{ogg_head, PageWriter, FLAG_CONTINUED, FLAG_EOS};
    require("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, rate, channels, args) in [
        ("v.ogg", 44_100, 2, &["-c:a", "libvorbis", "-q:a", "4"][..]),
        ("v-mono.ogg", 22_050, 1, &["-c:a", "libvorbis"][..]),
        ("o.opus", 48_000, 2, &["-c:a", "libopus", "-b:a", "96k"][..]),
        ("o-mono.opus", 48_000, 1, &["-c:a", "libopus"][..]),
    ] {
        let path = make(d, name, rate, channels, args);
        let data = std::fs::read(&path).unwrap();
        let index = frame_index(&path).unwrap();
        // Headers need the whole header pages: a short read asks for more.
        assert_eq!(ogg_head(&data[..40]).unwrap(), None, "{name}");
        let head = ogg_head(&data).unwrap().unwrap();
        assert_eq!(Some(0..head.audio_start), index.header(), "{name}");
        assert_eq!(head.channels, channels as u16, "{name}");
        let (silent, silent_samples) = head.silent_packet().expect("a silent packet");
        let second = |granule_rate: u64| granule_rate / silent_samples; // packets per second

        let pages = pages_from(&data, head.audio_start as usize);
        let half = pages.len() / 2;
        let join = pages[half..]
            .iter()
            .find(|(_, p)| p.flags & FLAG_CONTINUED == 0)
            .unwrap()
            .0;
        let page_bytes = |(at, p): &(usize, alluvium_media::PageInfo)| &data[*at..*at + p.len];
        let mut stream = Vec::new();
        let header = |w: &mut PageWriter, title: &str, out: &mut Vec<u8>| {
            let packets = head.with_comments(&[("TITLE", title), ("ARTIST", "Alluvium")]);
            w.packets(
                &packets[..1].iter().map(Vec::as_slice).collect::<Vec<_>>(),
                0,
                true,
                out,
            );
            let rest: Vec<&[u8]> = packets[1..].iter().map(Vec::as_slice).collect();
            w.packets(&rest, 0, false, out);
        };
        // Link 1: the first half, then a stall of one second of silence in the same link.
        let mut w = PageWriter::new(0x1000);
        header(&mut w, "First", &mut stream);
        let mut granule = 0;
        for page in &pages[..half] {
            w.copy(page_bytes(page), &mut stream);
            if page.1.granule >= 0 {
                granule = page.1.granule;
            }
        }
        let n = second(u64::from(head.rate)) as usize;
        for chunk in vec![silent.as_slice(); n].chunks(50) {
            granule += (chunk.len() as u64 * silent_samples) as i64;
            w.packets(chunk, granule, false, &mut stream);
        }
        // Link 2: rejoining mid-file (headers again, pages from a fresh packet) to the end.
        let mut w = PageWriter::new(0x1001);
        header(&mut w, "Second", &mut stream);
        let rest = pages
            .iter()
            .filter(|(at, _)| *at >= join)
            .collect::<Vec<_>>();
        for page in &rest {
            w.copy(page_bytes(page), &mut stream);
        }
        assert!(rest.last().unwrap().1.flags & FLAG_EOS != 0);
        // Link 3: dead air after the entry, one second of silence in a link of its own.
        let mut w = PageWriter::new(0x1002);
        header(&mut w, "Dead air", &mut stream);
        let mut granule = 0;
        for chunk in vec![silent.as_slice(); n].chunks(50) {
            granule += (chunk.len() as u64 * silent_samples) as i64;
            w.packets(chunk, granule, false, &mut stream);
        }

        let out = d.join(format!("chained-{name}"));
        std::fs::write(&out, &stream).unwrap();
        let tags = ffprobe_titles(&out);
        assert!(
            tags.to_lowercase().contains("tag:title=first"),
            "{name}: {tags}"
        );
        let pcm = decode_mono_48k(&out);
        let secs = pcm.len() as f64 / 48_000.0;
        let file = index.duration().as_secs_f64();
        let half_time = index.time_at(pages[half].0 as u64).unwrap().as_secs_f64();
        let join_time = index.time_at(join as u64).unwrap().as_secs_f64();
        let expected = half_time + 1.0 + (file - join_time) + 1.0;
        assert!(
            (secs - expected).abs() < 0.25,
            "{name}: decoded {secs:.2} s, expected {expected:.2} s"
        );
        // The middle of each silence is digital silence; the tone around it is not.
        let at = |t: f64| (t * 48_000.0) as usize;
        let quiet = |from: f64, to: f64| pcm[at(from)..at(to)].iter().all(|&s| s.abs() <= 1);
        assert!(
            quiet(half_time + 0.3, half_time + 0.7),
            "{name}: stall not silent"
        );
        assert!(quiet(secs - 0.7, secs - 0.3), "{name}: dead air not silent");
        assert!(
            !quiet(half_time - 0.5, half_time - 0.1),
            "{name}: tone missing"
        );
    }
}

#[test]
fn the_xing_seek_table_finds_times_in_vbr_files() {
    require("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vbr.mp3");
    // Loud noise, near silence, loud noise: the bitrate swings, so byte proportion is far off.
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("anoisesrc=d=12:c=white:r=44100:a=0.5:s=7,volume='if(between(t,4,8),0,1)':eval=frame")
        .args(["-ac", "2", "-c:a", "libmp3lame", "-q:a", "2"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let data = std::fs::read(&path).unwrap();
    let index = frame_index(&path).unwrap();
    let layout = alluvium_media::mpeg_layout(
        &data[..64 * 1024],
        &data[data.len() - 4096..],
        data.len() as u64,
    )
    .unwrap();
    let toc = layout.toc.expect("LAME writes a seek table in VBR files");
    let total = index.duration().as_secs_f64();
    let range = index.audio_range();
    let (mut worst_toc, mut worst_proportion) = (0.0f64, 0.0f64);
    for t in [1.0, 3.0, 5.0, 7.0, 9.0, 11.0] {
        let fraction = t / total;
        let by_toc = toc.offset_at(fraction);
        let by_proportion = range.start + ((range.end - range.start) as f64 * fraction) as u64;
        let time = |o: u64| index.time_at(o).unwrap().as_secs_f64();
        worst_toc = worst_toc.max((time(by_toc) - t).abs());
        worst_proportion = worst_proportion.max((time(by_proportion) - t).abs());
        // And back: the inverse lands on the same bytes, within the table's resolution
        // (in silence many percents share one byte position, so the fraction itself is not
        // unique there).
        let back = toc.offset_at(toc.fraction_at(by_toc));
        assert!(back.abs_diff(by_toc) <= toc.bytes / 256 + 1, "at {t} s");
    }
    assert!(worst_toc < 0.3, "seek table off by {worst_toc:.2} s");
    assert!(
        worst_proportion > 1.0,
        "the file is not VBR enough to tell ({worst_proportion:.2} s)"
    );
}

#[test]
fn a_cbr_file_is_mapped_by_proportion_not_by_its_info_table() {
    require("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cbr.mp3");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("anoisesrc=d=12:c=white:r=44100:a=0.5:s=7")
        .args(["-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let data = std::fs::read(&path).unwrap();
    assert!(
        data[..4096].windows(4).any(|w| w == b"Info"),
        "LAME's CBR tag"
    );
    let layout = alluvium_media::mpeg_layout(
        &data[..64 * 1024],
        &data[data.len() - 4096..],
        data.len() as u64,
    )
    .unwrap();
    // Its table rounds each point to 1/256 of the file; the proportion is exact.
    assert!(layout.toc.is_none());
    let index = frame_index(&path).unwrap();
    let total = index.duration().as_secs_f64();
    let range = index.audio_range();
    for t in [1.0, 5.0, 11.0] {
        let at = range.start + ((range.end - range.start) as f64 * t / total) as u64;
        let heard = index.time_at(at).unwrap().as_secs_f64();
        assert!(
            (heard - t).abs() < 0.03,
            "{t} s is at {heard:.3} s by proportion"
        );
    }
}
