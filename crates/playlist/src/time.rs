//! W3C-DTF instants (`ev:startdate`, `dc:date`) and ISO 8601 durations (`dcterms:extent`).
//!
//! The schedule works in whole milliseconds: finer fractions are truncated on reading, so a
//! written playlist reads back to exactly the schedule that was written.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta, TimeZone, Utc};

/// The longest duration a single entry may have. Anything longer is taken for a typo or an
/// attack (a schedule that never moves on), not for a programme.
pub const MAX_ENTRY_DURATION: TimeDelta = TimeDelta::hours(48);

/// Parses a W3C-DTF date-time (`2026-11-25T20:00:00Z`, `2026-11-25T21:00:00.5+01:00`,
/// `2026-11-25T20:00Z`) or a plain date (`2026-11-25`, midnight UTC).
pub fn parse_w3cdtf(text: &str) -> Option<DateTime<Utc>> {
    let s = text.trim();
    let (date, rest) = match s.find(['T', 't']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let date = parse_date(date)?;
    let Some(rest) = rest else {
        return Some(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?));
    };
    // Split the time from its zone designator.
    let (time, zone) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, Some(0))
    } else {
        let i = rest.rfind(['+', '-'])?;
        (&rest[..i], parse_offset(&rest[i..]))
    };
    let offset = FixedOffset::east_opt(zone?)?;
    let mut fields = time.splitn(3, ':');
    let hour = parse_fixed(fields.next()?, 2)?;
    let minute = parse_fixed(fields.next()?, 2)?;
    let (second, millis) = match fields.next() {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = match sec.split_once('.') {
                Some((w, f)) => (w, Some(f)),
                None => (sec, None),
            };
            let second = parse_fixed(whole, 2)?;
            let millis = match frac {
                None => 0,
                Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
                    // Truncate (never round) to milliseconds.
                    let digits: String = f.chars().chain("000".chars()).take(3).collect();
                    digits.parse().ok()?
                }
                Some(_) => return None,
            };
            (second, millis)
        }
    };
    let naive = date.and_hms_milli_opt(hour, minute, second, millis)?;
    let local = offset.from_local_datetime(&naive).single()?;
    Some(local.with_timezone(&Utc))
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    let mut parts = s.splitn(3, '-');
    let year = parse_fixed(parts.next()?, 4)?;
    let month = parse_fixed(parts.next()?, 2)?;
    let day = parse_fixed(parts.next()?, 2)?;
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

fn parse_offset(s: &str) -> Option<i32> {
    let sign = if s.starts_with('-') { -1 } else { 1 };
    let (h, m) = s[1..].split_once(':')?;
    let (h, m) = (parse_fixed(h, 2)?, parse_fixed(m, 2)?);
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * i32::try_from(h * 3600 + m * 60).ok()?)
}

/// Exactly `len` ASCII digits.
fn parse_fixed(s: &str, len: usize) -> Option<u32> {
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Formats an instant as W3C-DTF in UTC, with milliseconds only when there are any.
pub fn format_w3cdtf(t: DateTime<Utc>) -> String {
    let millis = t.timestamp_subsec_millis();
    if millis == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        format!("{}.{millis:03}Z", t.format("%Y-%m-%dT%H:%M:%S"))
    }
}

/// Parses an ISO 8601 duration without years or months (their length depends on the calendar):
/// `PT3M12.480S`, `P1DT2H`, `PT90S`, `P2W`. Fractions finer than a millisecond are truncated.
pub fn parse_iso_duration(text: &str) -> Option<TimeDelta> {
    let s = text.trim();
    let body = s.strip_prefix(['P', 'p'])?;
    if body.is_empty() {
        return None;
    }
    let mut total_ms: i64 = 0;
    let mut in_time = false;
    let mut number = String::new();
    let mut any = false;
    for c in body.chars() {
        match c {
            '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
            'T' | 't' if !in_time && number.is_empty() => in_time = true,
            _ => {
                let unit_ms: i64 = match (in_time, c.to_ascii_uppercase()) {
                    (false, 'W') => 7 * 86_400_000,
                    (false, 'D') => 86_400_000,
                    (true, 'H') => 3_600_000,
                    (true, 'M') => 60_000,
                    (true, 'S') => 1000,
                    _ => return None,
                };
                total_ms = total_ms.checked_add(scaled_millis(&number, unit_ms)?)?;
                number.clear();
                any = true;
            }
        }
    }
    if !number.is_empty() || !any {
        return None;
    }
    TimeDelta::try_milliseconds(total_ms)
}

/// `number` (decimal, non-negative) times `unit_ms`, truncated to whole milliseconds.
fn scaled_millis(number: &str, unit_ms: i64) -> Option<i64> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut ms = whole.checked_mul(unit_ms)?;
    // Fractional part: digit by digit, so no float rounding creeps in.
    let mut scale = unit_ms;
    for d in frac.bytes() {
        if !d.is_ascii_digit() {
            return None;
        }
        scale /= 10;
        if scale == 0 {
            break;
        }
        ms = ms.checked_add(i64::from(d - b'0') * scale)?;
    }
    Some(ms)
}

/// Formats a non-negative duration as `PT1H2M3.456S` (only the fields that are there).
pub fn format_iso_duration(d: TimeDelta) -> String {
    let ms = d.num_milliseconds().max(0);
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rem) = (rem / 60_000, rem % 60_000);
    let (s, frac) = (rem / 1000, rem % 1000);
    let mut out = String::from("PT");
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || frac > 0 || (h == 0 && m == 0) {
        if frac > 0 {
            out.push_str(&format!("{s}.{frac:03}S"));
        } else {
            out.push_str(&format!("{s}S"));
        }
    }
    out
}

/// Formats a duration for people: `3:12.480`, `1:02:03`.
pub fn format_clock(d: TimeDelta) -> String {
    let ms = d.num_milliseconds();
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.abs();
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = if h > 0 {
        format!("{sign}{h}:{m:02}:{s:02}")
    } else {
        format!("{sign}{m}:{s:02}")
    };
    if frac > 0 {
        out.push_str(&format!(".{frac:03}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn w3cdtf_forms() {
        let t = utc("2026-11-25T20:00:00Z");
        assert_eq!(parse_w3cdtf("2026-11-25T20:00:00Z"), Some(t));
        assert_eq!(parse_w3cdtf("2026-11-25T20:00Z"), Some(t));
        assert_eq!(parse_w3cdtf("2026-11-25T21:00:00+01:00"), Some(t));
        assert_eq!(parse_w3cdtf(" 2026-11-25t20:00:00z "), Some(t));
        assert_eq!(
            parse_w3cdtf("2026-11-25T20:03:12.48Z"),
            Some(utc("2026-11-25T20:03:12.480Z"))
        );
        assert_eq!(
            parse_w3cdtf("2026-11-25T20:03:12.4809Z"),
            Some(utc("2026-11-25T20:03:12.480Z"))
        );
        assert_eq!(
            parse_w3cdtf("2026-11-25"),
            Some(utc("2026-11-25T00:00:00Z"))
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-25T25:00:00Z",
            "2026-11-25T20:00:00",
            "2026-11-25T20:00:00+1:00",
            "2026-11-25T20:00:00.Z",
            "26-11-25T20:00:00Z",
            "2026-11-25T20:00:61Z",
            "2026-11-25T20:00:00+24:00",
        ] {
            assert_eq!(parse_w3cdtf(bad), None, "{bad}");
        }
    }

    #[test]
    fn w3cdtf_round_trip() {
        for s in [
            "2026-11-25T20:00:00Z",
            "2026-11-25T20:03:12.480Z",
            "1999-01-01T00:00:00.001Z",
        ] {
            assert_eq!(format_w3cdtf(parse_w3cdtf(s).unwrap()), s);
        }
    }

    #[test]
    fn iso_durations() {
        let ms = |n| Some(TimeDelta::milliseconds(n));
        assert_eq!(parse_iso_duration("PT3M12.480S"), ms(192_480));
        assert_eq!(parse_iso_duration("PT90S"), ms(90_000));
        assert_eq!(parse_iso_duration("P1DT2H"), ms(93_600_000));
        assert_eq!(parse_iso_duration("PT0.0015S"), ms(1));
        assert_eq!(parse_iso_duration("PT1,5S"), ms(1500));
        assert_eq!(parse_iso_duration("P2W"), ms(1_209_600_000));
        assert_eq!(parse_iso_duration("PT0S"), ms(0));
        for bad in [
            "", "P", "PT", "3M", "P1M", "P1Y", "PT-3S", "PT3", "PTS", "PT1H1D", "PT.S",
        ] {
            assert_eq!(parse_iso_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_iso_duration("PT99999999999999999999S"), None);
    }

    #[test]
    fn iso_duration_round_trip() {
        for ms in [0, 1, 999, 1000, 192_480, 3_600_000, 3_723_004, 172_800_000] {
            let d = TimeDelta::milliseconds(ms);
            assert_eq!(parse_iso_duration(&format_iso_duration(d)), Some(d), "{ms}");
        }
        assert_eq!(
            format_iso_duration(TimeDelta::milliseconds(192_480)),
            "PT3M12.480S"
        );
    }

    #[test]
    fn clock() {
        assert_eq!(format_clock(TimeDelta::milliseconds(192_480)), "3:12.480");
        assert_eq!(format_clock(TimeDelta::seconds(3723)), "1:02:03");
        assert_eq!(format_clock(TimeDelta::seconds(-5)), "-0:05");
    }
}
