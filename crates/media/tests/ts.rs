//! Transport streams that ffmpeg makes, read by `ts::scan` and spliced by `ts::Splicer`,
//! checked against ffprobe. Needs ffmpeg and ffprobe (`./test.sh` installs them).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use alluvium_media::ts::{self, Packet, Splicer, TsError, CLOCK_HZ, PACKET_LEN};
use alluvium_media::{probe, Format};

/// A clip of `seconds` at `size`, 25 pictures a second, keyframes every `gop` pictures, a
/// tone, muxed at a constant 1.5 Mbit/s as the shared harness makes its video.
fn clip(dir: &Path, name: &str, seconds: u32, size: &str, gop: u32) -> PathBuf {
    let out = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=25:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={seconds}"
        ))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            &gop.to_string(),
        ])
        .args(["-keyint_min", &gop.to_string(), "-sc_threshold", "0"])
        .args([
            "-c:a", "aac", "-b:a", "128k", "-muxrate", "1500k", "-f", "mpegts",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg runs (./test.sh installs it)");
    assert!(status.success(), "ffmpeg failed to make {name}");
    out
}

/// `ffprobe` of `path`: per packet, stream index, PTS and DTS in seconds; and what it said on
/// stderr at warning level.
fn packets(path: &Path) -> (Vec<(u32, f64, f64)>, String) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "warning",
            "-show_entries",
            "packet=stream_index,pts_time,dts_time",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((
                f.first()?.parse().ok()?,
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
            ))
        })
        .collect();
    (rows, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Keyframe times by ffprobe, from the clip's first video PTS.
fn ffprobe_keyframes(path: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-skip_frame",
            "nokey",
        ])
        .args(["-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim_end_matches(',').parse().ok())
        .collect();
    let zero = times[0];
    times.iter().map(|t| t - zero).collect()
}

#[test]
fn a_clip_is_measured_by_its_timestamps_as_ffprobe_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = clip(dir.path(), "a.ts", 7, "320x180", 50);
    let data = std::fs::read(&path).unwrap();
    let info = ts::scan(&data).unwrap();
    assert_eq!(
        info.duration,
        Duration::from_secs(7),
        "25 fps x 175 pictures"
    );
    let ours: Vec<f64> = info
        .keyframes
        .iter()
        .map(|k| k.time as f64 / CLOCK_HZ as f64)
        .collect();
    assert_eq!(ours, ffprobe_keyframes(&path));
    assert_eq!(ours, [0.0, 2.0, 4.0, 6.0]);
    assert_eq!(info.audio, Some((48_000, 1)));
    for k in &info.keyframes {
        let p = Packet::new(&data[k.offset as usize..]).unwrap();
        assert_eq!(Some(p.pid()), info.program.video_pid());
    }
    let probed = probe(&path).unwrap();
    assert_eq!(probed.format, Format::MpegTs);
    assert_eq!(probed.duration, Duration::from_secs(7));
    assert_eq!(probed.sample_rate, 48_000);
    assert!(
        (1_400_000..1_600_000).contains(&probed.bitrate),
        "{}",
        probed.bitrate
    );
}

#[test]
fn a_clip_a_joiner_could_not_start_in_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = clip(dir.path(), "rare.ts", 14, "320x180", 250);
    let err = ts::scan(&std::fs::read(&path).unwrap()).unwrap_err();
    assert!(matches!(err, TsError::KeyframeGap { .. }), "{err}");
    let said = probe(&path).unwrap_err().to_string();
    assert!(said.contains("no keyframe for 10.0 s"), "{said}");
    assert!(said.contains("force_key_frames"), "{said}");

    // An MP4 is not a transport stream, whatever its name.
    let mp4 = dir.path().join("movie.mp4");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=160x90:rate=25:duration=1")
        .args(["-c:v", "libx264"])
        .arg(&mp4)
        .status()
        .unwrap();
    assert!(status.success());
    let fake = dir.path().join("movie.ts");
    std::fs::rename(&mp4, &fake).unwrap();
    let said = probe(&fake).unwrap_err().to_string();
    assert!(said.contains("not 188-byte transport packets"), "{said}");
}

/// Three clips spliced as a listener does (the second at another resolution, the first
/// joined at a keyframe mid-way): ffprobe reads one stream whose timestamps run on without
/// a jump, and says nothing.
#[test]
fn spliced_clips_read_as_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    let clips = [
        clip(dir.path(), "1.ts", 6, "320x180", 50),
        clip(dir.path(), "2.ts", 4, "480x270", 50),
        clip(dir.path(), "3.ts", 4, "320x180", 50),
    ];
    let mut splicer = Splicer::new();
    let mut out = Vec::new();
    // The stream's timeline: 10 s in at the first clip's zero.
    let mut at = 10 * CLOCK_HZ;
    for (n, path) in clips.iter().enumerate() {
        let data = std::fs::read(path).unwrap();
        let info = ts::scan(&data).unwrap();
        let (from, skip) = if n == 0 {
            let k = info.keyframes[1];
            (k.offset as usize, k.time as u64)
        } else {
            (0, 0)
        };
        splicer.begin(&info.program, at + (1 << 33) - info.zero - skip);
        splicer.tables(&mut out);
        for chunk in data[from..].chunks_exact(PACKET_LEN) {
            splicer.packet(&Packet::new(chunk).unwrap(), &mut out);
        }
        at += (info.duration.as_micros() as u64 * CLOCK_HZ / 1_000_000) - skip;
    }
    let spliced = dir.path().join("spliced.ts");
    std::fs::write(&spliced, &out).unwrap();
    let (rows, said) = packets(&spliced);
    assert!(said.trim().is_empty(), "ffprobe said: {said}");
    let video: Vec<f64> = rows.iter().filter(|r| r.0 == 0).map(|r| r.2).collect();
    assert_eq!(
        video.len(),
        (4 + 4 + 4) * 25,
        "every picture after the join"
    );
    assert!(
        video.windows(2).all(|w| (w[1] - w[0] - 0.04).abs() < 1e-3),
        "decoding times run on a picture at a time"
    );
    let audio: Vec<f64> = rows.iter().filter(|r| r.0 == 1).map(|r| r.1).collect();
    let widest = audio.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(widest < 0.1, "audio runs on: a gap of {widest} s");
    assert!(
        (video[0] - 9.92).abs() < 0.05,
        "starts where it was put: {}",
        video[0]
    );
}
