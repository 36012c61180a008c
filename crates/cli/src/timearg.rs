//! Instants given on the command line: `now`, W3C-DTF / RFC 3339, or a plain date.

use chrono::{DateTime, SubsecRound, Utc};

/// Parses `now` (this second), `2026-11-25T20:00:00Z`, `2026-11-25T21:00+01:00` or `2026-11-25`.
pub(crate) fn parse_instant(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if text.trim().eq_ignore_ascii_case("now") {
        return Ok(now.trunc_subsecs(0));
    }
    alluvium_playlist::time::parse_w3cdtf(text).ok_or_else(|| {
        format!(
            "'{text}' is not a time: use 'now', 2026-11-25T20:00:00Z or 2026-11-25T21:00:00+01:00"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let now = parse_instant("2026-11-25T20:00:00.750Z", Utc::now()).unwrap();
        assert_eq!(
            parse_instant("now", now).unwrap().to_rfc3339(),
            "2026-11-25T20:00:00+00:00"
        );
        assert!(parse_instant("tomorrow", now)
            .unwrap_err()
            .contains("tomorrow"));
    }
}
