//! Sizes and rates as people write them on a command line.

/// A size like `4GiB`, `500MB`, `1048576`.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("'{s}' is not a size like 4GiB or 500MB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "'{s}': unknown unit (use B, KB, KiB, MB, MiB, GB, GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// A rate in bytes per second: a size per second (`256KiB`, `1MB`, with or without `/s`), or
/// bits per second (`320kbit`, `2mbit`).
pub(crate) fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix("/s").unwrap_or(&t);
    for (suffix, bits) in [
        ("kbit", 1_000u64),
        ("mbit", 1_000_000),
        ("gbit", 1_000_000_000),
    ] {
        if let Some(n) = t.strip_suffix(suffix) {
            let n: u64 = n
                .trim()
                .parse()
                .map_err(|_| format!("'{s}' is not a rate like 320kbit or 256KiB"))?;
            return Ok(n.saturating_mul(bits) / 8);
        }
    }
    parse_size(t).map_err(|_| format!("'{s}' is not a rate like 320kbit or 256KiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("10 kib"), Ok(10 << 10));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5XB").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("256KiB"), Ok(256 << 10));
        assert_eq!(parse_rate("256KiB/s"), Ok(256 << 10));
        assert_eq!(parse_rate("320kbit"), Ok(40_000));
        assert_eq!(parse_rate("2mbit"), Ok(250_000));
        assert!(parse_rate("fast").is_err());
    }
}
