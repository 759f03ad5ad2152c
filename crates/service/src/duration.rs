//! Durations in config files: a number and a unit, `30s`, `15m`, `24h`,
//! `7d`, `2w`, or several (`1h30m`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A configured duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval(pub Duration);

impl Interval {
    /// From seconds.
    pub const fn secs(s: u64) -> Self {
        Interval(Duration::from_secs(s))
    }

    /// As a signed duration for timestamp arithmetic (saturating).
    pub fn signed(self) -> jiff::SignedDuration {
        jiff::SignedDuration::try_from(self.0).unwrap_or(jiff::SignedDuration::MAX)
    }

    /// Parse `24h`, `90m`, `1h30m`, `7d`, `2w`, `30s`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("an empty duration".into());
        }
        let mut total: u64 = 0;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(format!(
                    "{text:?} is not a duration (like 30s, 15m, 24h, 7d, 2w, 1h30m)"
                ));
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("{text:?}: the number is too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = match &rest[..unit_len] {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                "w" => 7 * 86_400,
                "" => return Err(format!("{text:?}: a number needs a unit (s, m, h, d, w)")),
                other => {
                    return Err(format!(
                        "{text:?}: unknown unit {other:?} (use s, m, h, d or w)"
                    ));
                }
            };
            rest = &rest[unit_len..];
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("{text:?} is too long"))?;
        }
        Ok(Interval(Duration::from_secs(total)))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.0.as_secs();
        if s == 0 {
            return write!(f, "0s");
        }
        for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if s >= len {
                write!(f, "{}{unit}", s / len)?;
                s %= len;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Interval::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!(Interval::parse("24h").unwrap(), Interval::secs(86_400));
        assert_eq!(Interval::parse("1h30m").unwrap(), Interval::secs(5400));
        assert_eq!(Interval::parse("2w").unwrap(), Interval::secs(14 * 86_400));
        assert_eq!(Interval::parse(" 30s ").unwrap(), Interval::secs(30));
        assert_eq!(Interval::secs(93_784).to_string(), "1d2h3m4s");
        for bad in ["", "h", "24", "24x", "1.5h", "-1h", "99999999999999999999s"] {
            assert!(Interval::parse(bad).is_err(), "{bad}");
        }
        assert!(Interval::parse("9999999999999999w").is_err());
    }
}
