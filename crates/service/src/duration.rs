//! Durations in config files: a number and a unit, `30s`, `15m`, `24h`,
//! `7d`, `2w`, or several (`1h30m`), in the grammar of
//! [`cairn_protocol::duration`].

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

    /// Parse `24h`, `90m`, `1h30m`, `7d`, `2w`, `30s`: the grammar of
    /// [`cairn_protocol::duration`], shared with cairn's options.
    pub fn parse(text: &str) -> Result<Self, String> {
        cairn_protocol::parse_duration(text).map(Interval)
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&cairn_protocol::duration::format_duration(self.0))
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
        for bad in ["", "h", "24", "24x", "-1h", "1mo", "99999999999999999999s"] {
            assert!(Interval::parse(bad).is_err(), "{bad}");
        }
        assert!(Interval::parse("9999999999999999w").is_err());
    }
}
