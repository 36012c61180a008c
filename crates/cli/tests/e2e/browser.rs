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
    require("chromium");
    let node = require("node");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/page.js");
    assert!(
        script
            .with_file_name("node_modules")
            .join("playwright-core")
            .is_dir(),
        "playwright-core is required for this test (run ./test.sh, which installs it)"
    );
    let noise = Noise::start();
    let (_listener, port) = noise.listen();
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("stream-page.png");
    let out = Command::new(node)
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .arg(&shot)
        .arg("12")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("screenshot: {}", shot.display());
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
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
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
}
