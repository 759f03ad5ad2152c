//! Values of options: sizes, times, durations, percentages, check
//! subsets and `--group-by` fields, parsed with errors that show examples.

/// The fields of `--group-by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupBy(pub Vec<GroupField>);

/// What `snapshots --group-by` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupField {
    /// The host.
    Host,
    /// The account.
    Account,
    /// The backed-up paths.
    Paths,
    /// The tags.
    Tags,
}

/// Parse `123`, `64K`, `256KiB`, `16MiB`, `1G`... (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (examples: 4096, 256KiB, 16MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        "t" | "tib" | "tb" => 1 << 40,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parse RFC 3339 (`2026-11-20T10:00:00Z`), or a local date and time
/// (`2026-11-20 10:00[:00]`, `2026-11-20`).
pub fn parse_time(s: &str) -> Result<jiff::Timestamp, String> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts);
    }
    let tz = jiff::tz::TimeZone::system();
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(tz)
            .map(|z| z.timestamp())
            .map_err(|e| e.to_string());
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return d
            .to_zoned(tz)
            .map(|z| z.timestamp())
            .map_err(|e| e.to_string());
    }
    Err(format!(
        "{s:?} is not a time (examples: 2026-11-20T10:00:00Z, \"2026-11-20 10:00\", 2026-11-20)"
    ))
}

/// Parse a duration (`30s`, `5m`, `12h`, `7d`, `2w`, `1h30m`, `0`): the one
/// grammar of [`cairn_protocol::duration`].
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    cairn_protocol::parse_duration(s)
}

/// An object-lock period: a number of days, or a duration (`90d`, `2w`,
/// `30s` for tests).
pub fn parse_lock_period(s: &str) -> Result<std::time::Duration, String> {
    match s.trim().parse::<u64>() {
        Ok(days) => days
            .checked_mul(86_400)
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| format!("{s} days is too long")),
        Err(_) => parse_duration(s),
    }
}

/// The number in `5%` or `5`.
fn percent_number(s: &str) -> Result<f64, String> {
    s.trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage"))
}

/// Parse `5%` or `5` into a percentage in [0, 100].
pub fn parse_percent_or_zero(s: &str) -> Result<f64, String> {
    let n = percent_number(s)?;
    if (0.0..=100.0).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{s:?} must be between 0% and 100%"))
    }
}

/// A `--path` filter as backup records paths: absolute (relative to the
/// current directory), without a trailing slash.
pub fn parse_snapshot_path(s: &str) -> Result<String, String> {
    let abs = std::path::absolute(s).unwrap_or_else(|_| s.into());
    let text = abs.to_string_lossy();
    let p = text.trim_end_matches('/');
    Ok(if p.is_empty() { "/" } else { p }.to_string())
}

/// Parse `--read-data-subset`: `n/t`, `10%` (or `10`), or a size with a
/// unit (`5GiB`).
pub fn parse_subset(s: &str) -> Result<cairn_repository::Subset, String> {
    use cairn_repository::Subset;
    let t = s.trim();
    if let Some((n, of)) = t.split_once('/') {
        let parse = |x: &str| x.trim().parse::<u32>().ok();
        return match (parse(n), parse(of)) {
            (Some(n), Some(of)) if n >= 1 && n <= of => Ok(Subset::Part { n, of }),
            _ => Err(format!(
                "{s:?}: give n/t with 1 <= n <= t (2/5 is the second of five groups)"
            )),
        };
    }
    let is_size = t.ends_with(|c: char| c.is_ascii_alphabetic());
    if is_size {
        return match parse_size(t) {
            Ok(0) => Err(format!("{s:?} must be more than zero bytes")),
            Ok(n) => Ok(Subset::Bytes(n)),
            Err(_) => Err(format!("{s:?} is not a subset (examples: 10%, 2/5, 5GiB)")),
        };
    }
    parse_percent(t)
        .map(Subset::Percent)
        .map_err(|e| format!("{e} (examples: 10%, 2/5, 5GiB)"))
}

/// Parse `10%` or `10` into a percentage in (0, 100].
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let n = percent_number(s)?;
    if n > 0.0 && n <= 100.0 {
        Ok(n)
    } else {
        Err(format!("{s:?} must be above 0% and at most 100%"))
    }
}

/// Parse `--group-by host,account,paths,tags`.
pub fn parse_group_by(s: &str) -> Result<GroupBy, String> {
    s.split(',')
        .map(|f| match f.trim() {
            "host" => Ok(GroupField::Host),
            "account" => Ok(GroupField::Account),
            "paths" | "path" => Ok(GroupField::Paths),
            "tags" | "tag" => Ok(GroupField::Tags),
            other => Err(format!(
                "{other:?}: group by host, account, paths or tags (comma-separated)"
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(GroupBy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("256KiB"), Ok(256 << 10));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1XB").is_err());
        assert!(parse_size("99999999999999999T").is_err());
    }

    #[test]
    fn snapshot_paths() {
        assert_eq!(parse_snapshot_path("/a/b/"), Ok("/a/b".into()));
        assert_eq!(parse_snapshot_path("/"), Ok("/".into()));
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            parse_snapshot_path("x"),
            Ok(here.join("x").to_string_lossy().into_owned())
        );
    }

    #[test]
    fn subsets() {
        use cairn_repository::Subset;
        assert_eq!(parse_subset("10%"), Ok(Subset::Percent(10.0)));
        assert_eq!(parse_subset("10"), Ok(Subset::Percent(10.0)));
        assert_eq!(parse_subset("2/5"), Ok(Subset::Part { n: 2, of: 5 }));
        assert_eq!(parse_subset("5GiB"), Ok(Subset::Bytes(5 << 30)));
        for bad in ["0/5", "6/5", "x/5", "0%", "101%", "0GiB", "5XB", ""] {
            assert!(parse_subset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn object_lock_periods() {
        use std::time::Duration;
        assert_eq!(
            parse_lock_period("30").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            parse_lock_period("2w").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
        assert_eq!(parse_lock_period("8s").unwrap(), Duration::from_secs(8));
        assert!(parse_lock_period("soon").is_err());
        assert!(parse_lock_period("99999999999999999999").is_err());
    }

    #[test]
    fn times_and_percentages() {
        assert!(parse_time("2026-11-20T10:00:00Z").is_ok());
        assert!(parse_time("2026-11-20 10:00").is_ok());
        assert!(parse_time("2026-11-20").is_ok());
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_percent("10%"), Ok(10.0));
        assert!(parse_percent("0").is_err());
        assert!(parse_percent("101%").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        crate::cli::Cli::command().debug_assert();
    }
}
