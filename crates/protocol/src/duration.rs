//! The one duration grammar of cairn's options (`--retry-lock`,
//! `--delete-after`) and the service's config files: jiff's friendly
//! format (`30s`, `15m`, `12h`, `7d`, `2w`, `1h30m`, `1 day 2 hours`) or
//! ISO 8601 (`PT1H`), with days of 24 hours and weeks of 7 days; `0` alone
//! is zero. Months and years have no fixed length and are refused, and so
//! are negative durations.

use jiff::{Span, SpanRelativeTo};
use std::time::Duration;

const EXAMPLES: &str = "examples: 30s, 5m, 6h, 1d, 2w, 1d12h, \"6 hours\"";

/// Parse a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err(format!("an empty duration ({EXAMPLES})"));
    }
    let span: Span = t
        .parse()
        .map_err(|_| format!("{text:?} is not a duration ({EXAMPLES})"))?;
    if span.is_negative() {
        return Err(format!("{text:?} must not be negative"));
    }
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err(format!(
            "{text:?}: months and years have no fixed length; use days or weeks"
        ));
    }
    let signed = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("{text:?} is too long: {e}"))?;
    Duration::try_from(signed).map_err(|_| format!("{text:?} must not be negative"))
}

/// Print a duration the way [`parse_duration`] reads it back (`1d2h3m4s`).
pub fn format_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_grammar() {
        assert_eq!(parse_duration("24h").unwrap(), secs(86_400));
        assert_eq!(parse_duration("1h30m").unwrap(), secs(5400));
        assert_eq!(parse_duration("2w").unwrap(), secs(14 * 86_400));
        assert_eq!(parse_duration("1d").unwrap(), secs(86_400));
        assert_eq!(parse_duration(" 30s ").unwrap(), secs(30));
        assert_eq!(parse_duration("0").unwrap(), secs(0));
        assert_eq!(parse_duration("0s").unwrap(), secs(0));
        assert_eq!(parse_duration("PT1H").unwrap(), secs(3600));
        assert_eq!(parse_duration("1 day 2 hours").unwrap(), secs(93_600));
        assert_eq!(parse_duration("1.5h").unwrap(), secs(5400));
        assert_eq!(parse_duration("5m").unwrap(), secs(300));
        assert_eq!(parse_duration("1d12h").unwrap(), secs(129_600));
        assert_eq!(parse_duration("6 hours").unwrap(), secs(21_600));
        let err = parse_duration("soon").unwrap_err();
        assert!(err.contains("examples: 30s, 5m"), "{err}");
        for bad in [
            "",
            "h",
            "24",
            "24x",
            "-1h",
            "1mo",
            "1y",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("9999999999999999w").is_err());
    }

    #[test]
    fn printing_round_trips() {
        assert_eq!(format_duration(secs(93_784)), "1d2h3m4s");
        assert_eq!(format_duration(secs(0)), "0s");
        for s in [1, 59, 60, 3600, 86_400, 93_784, 14 * 86_400] {
            assert_eq!(parse_duration(&format_duration(secs(s))).unwrap(), secs(s));
        }
    }
}
