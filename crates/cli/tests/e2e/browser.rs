//! The stream's page in Debian's headless Chromium (driven by playwright-core, which
//! `./test.sh` installs with npm): the `<audio>` element plays (its `currentTime` advances at
//! the pace of real time), and the page shows the title on air, what comes next and the
//! swarm's numbers. The screenshot is left in the test's temporary target folder.

use std::process::Command;

use alluvium_testkit::require;
use serde_json::Value;

use super::stream::Noise;

#[test]
fn the_page_plays_and_shows_the_station_in_chromium() {
    let noise = Noise::start();
    let (_listener, port) = noise.listen();
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stream-page.png");
    let shown = open_page(&format!("http://127.0.0.1:{port}/"), &shot, 12, 1000);
    eprintln!("screenshot: {}", shot.display());
    let times: Vec<f64> = shown["times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect();
    let last = *times.last().unwrap();
    assert!(last >= 4.0, "the <audio> element hardly played: {times:?}");
    // Once started, it plays in real time (each second adds about one).
    let started = times.iter().position(|&t| t > 0.0).unwrap();
    let rate = (last - times[started]) / (times.len() - 1 - started) as f64;
    assert!(
        (0.8..1.2).contains(&rate),
        "played {rate:.2} s per second: {times:?}"
    );
    assert_eq!(shown["paused"], false);
    assert!(shown["error"].is_null(), "{shown}");
    assert!(
        shown["now"]
            .as_str()
            .unwrap()
            .starts_with("Noise Band - Track "),
        "{shown}"
    );
    assert!(!shown["next"].as_array().unwrap().is_empty(), "{shown}");
    assert!(
        shown["fromOrigin"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0,
        "{shown}"
    );
    let human = shown["shownOrigin"].as_str().unwrap();
    assert!(human.ends_with(" kB") || human.ends_with(" MB"), "{shown}");
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
    assert!(
        shown["narrow"].as_u64().unwrap() <= 390,
        "nothing wider than a phone: {shown}"
    );
}

/// Runs the page script on `url`: what it saw, sampling every `every_ms`.
pub(super) fn open_page(url: &str, shot: &std::path::Path, seconds: u32, every_ms: u32) -> Value {
    run_script(
        "page.js",
        &[
            url,
            &shot.display().to_string(),
            &seconds.to_string(),
            &every_ms.to_string(),
        ],
    )
}

/// Runs `tests/browser/SCRIPT` with node and playwright-core on Debian's chromium: its JSON.
pub(super) fn run_script(script: &str, args: &[&str]) -> Value {
    require("chromium");
    let node = require("node");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(script);
    assert!(
        script
            .with_file_name("node_modules")
            .join("playwright-core")
            .is_dir(),
        "playwright-core is required for this test (run ./test.sh, which installs it)"
    );
    let out = Command::new(node).arg(&script).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A TV station's page in Chromium: the `<video>` plays the local HLS playlist (hls.js from
/// the binary) across entry changes, one at another resolution, with no stall over 0.5 s; the
/// swarm is shown in human units, and the page fits a phone's width.
#[test]
fn the_tv_page_plays_video_across_entry_changes_in_chromium() {
    let tv = super::tv::Tv::start(super::stream::BURST + chrono::TimeDelta::seconds(2));
    let (_listener, port) = tv.listen();
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tv-page.png");
    let shown = open_page(&format!("http://127.0.0.1:{port}/"), &shot, 26, 250);
    eprintln!("screenshots: {} (and -narrow)", shot.display());
    let samples = shown["samples"].as_array().unwrap();
    let at = |i: usize, k: &str| samples[i][k].as_f64().unwrap_or(0.0);
    let first = (0..samples.len())
        .find(|&i| at(i, "ct") > 0.0)
        .unwrap_or_else(|| panic!("the video never played: {shown}"));
    assert!(
        at(first, "t") < 12.0,
        "the video started after {} s",
        at(first, "t")
    );
    // Stalls: time passing while the picture does not move.
    let mut stalled = 0.0f64;
    let mut worst = 0.0f64;
    for i in first + 1..samples.len() {
        let wall = at(i, "t") - at(i - 1, "t");
        if at(i, "ct") - at(i - 1, "ct") < 0.01 {
            stalled += wall;
            worst = worst.max(stalled);
        } else {
            stalled = 0.0;
        }
    }
    assert!(
        worst <= 0.5,
        "a stall of {worst:.2} s: {samples:?}\n{}",
        tv.log(port)
    );
    let played = at(samples.len() - 1, "ct") - at(first, "ct");
    let wall = at(samples.len() - 1, "t") - at(first, "t");
    assert!(
        (played - wall).abs() < 1.5,
        "played {played:.1} s in {wall:.1} s"
    );
    let widths: Vec<u64> = samples.iter().filter_map(|s| s["w"].as_u64()).collect();
    assert!(
        widths.contains(&320) && widths.contains(&480),
        "entry changes seen (320 and 480 wide): {widths:?}"
    );
    assert!(shown["error"].is_null(), "{shown}");
    assert!(!shown["held"].as_str().unwrap().is_empty(), "{shown}");
    assert!(
        shown["narrow"].as_u64().unwrap() <= 390,
        "nothing wider than a phone: {shown}"
    );
}
