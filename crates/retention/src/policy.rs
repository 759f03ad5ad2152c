//! Policy files: TOML, strict, specified in `docs/RETENTION.md`.
//!
//! ```toml
//! timezone = "Europe/Berlin"      # calendar boundaries; default UTC
//!
//! [default]                       # applies to every account
//! keep-daily = 7
//! keep-quarterly = "all"
//! keep-within = "69d"
//! purge-after = "99d"
//!
//! [[account]]                     # first matching pattern wins
//! pattern = "archive-*"
//! keep-yearly = 10                # settings not given here come from [default]
//! ```

use crate::PeriodKind;
use globset::{Glob, GlobMatcher};
use serde::Deserialize;
use std::fmt;
use toml::Spanned;

/// A keep count: a number of periods (or snapshots), or every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// At most this many.
    N(u32),
    /// No limit.
    All,
}

impl Count {
    /// Whether `n` items are still within the count.
    pub fn allows(self, n: usize) -> bool {
        match self {
            Count::All => true,
            Count::N(limit) => n < limit as usize,
        }
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Count::N(n) => write!(f, "{n}"),
            Count::All => f.write_str("all"),
        }
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a count of 0 or more, or \"all\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Count, E> {
                if v < 0 {
                    return Err(E::custom(format!(
                        "{v} is not a count: use 0 or more, or \"all\""
                    )));
                }
                self.visit_u64(v.unsigned_abs())
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Count, E> {
                u32::try_from(v).map(Count::N).map_err(|_| {
                    E::custom(format!(
                        "{v} is too large a count (at most {}; \"all\" keeps every one)",
                        u32::MAX
                    ))
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Count, E> {
                if v == "all" {
                    Ok(Count::All)
                } else {
                    Err(E::custom(format!(
                        "{v:?} is not a count: use a number or \"all\""
                    )))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A calendar-aware duration (`69d`, `2w`, `3mo`, `1y 6mo`, `12h`).
#[derive(Debug, Clone)]
pub struct Duration {
    span: jiff::Span,
    text: String,
}

impl Duration {
    /// Parse and validate: positive, whole units from hours to years.
    pub fn parse(text: &str) -> Result<Self, String> {
        let span: jiff::Span = text.trim().parse().map_err(|_| {
            format!(
                "{text:?} is not a duration (examples: 12h, 69d, 2w, 3mo, 1y, 1y6mo, \"3 months\")"
            )
        })?;
        if span.is_negative() || span.is_zero() {
            return Err(format!("{text:?} must be a positive duration"));
        }
        if span.get_minutes() != 0
            || span.get_seconds() != 0
            || span.get_milliseconds() != 0
            || span.get_microseconds() != 0
            || span.get_nanoseconds() != 0
        {
            return Err(format!(
                "{text:?}: durations are counted in hours, days, weeks, months and years"
            ));
        }
        Ok(Self {
            span,
            text: text.trim().to_string(),
        })
    }

    /// `t` minus this duration, in calendar terms in `tz` (a month back from
    /// March 31 is February 28 or 29; days follow local time across DST).
    pub fn before(&self, t: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> jiff::Timestamp {
        t.to_zoned(tz.clone())
            .checked_sub(self.span)
            .map(|z| z.timestamp())
            .unwrap_or(jiff::Timestamp::MIN)
    }

    /// `t` plus this duration, in calendar terms in `tz`.
    pub fn after(&self, t: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> jiff::Timestamp {
        t.to_zoned(tz.clone())
            .checked_add(self.span)
            .map(|z| z.timestamp())
            .unwrap_or(jiff::Timestamp::MAX)
    }
}

/// Durations compare as written (`1w` and `7d` differ; both mean what they say).
impl PartialEq for Duration {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Duration::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The rules of one policy section, as written (every setting optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRules {
    pattern: Option<Spanned<String>>,
    keep_last: Option<Count>,
    keep_hourly: Option<Count>,
    keep_daily: Option<Count>,
    keep_weekly: Option<Count>,
    keep_monthly: Option<Count>,
    keep_quarterly: Option<Count>,
    keep_yearly: Option<Count>,
    keep_within: Option<Duration>,
    keep_within_hourly: Option<Duration>,
    keep_within_daily: Option<Duration>,
    keep_within_weekly: Option<Duration>,
    keep_within_monthly: Option<Duration>,
    keep_within_quarterly: Option<Duration>,
    keep_within_yearly: Option<Duration>,
    keep_tag: Option<Vec<String>>,
    logs_within: Option<Duration>,
    purge_after: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPolicy {
    timezone: Option<Spanned<String>>,
    default: Option<Spanned<RawRules>>,
    #[serde(default)]
    account: Vec<Spanned<RawRules>>,
}

/// The effective rules for one account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    /// Keep the N newest snapshots.
    pub keep_last: Option<Count>,
    /// Keep the last snapshot of each of the N newest periods that have
    /// snapshots, per period kind.
    pub keep_periods: Vec<(PeriodKind, Count)>,
    /// Keep everything within this duration of the account's newest snapshot.
    pub keep_within: Option<Duration>,
    /// Keep the last snapshot per period within a duration of the newest.
    pub keep_within_periods: Vec<(PeriodKind, Duration)>,
    /// Keep snapshots carrying any of these tags.
    pub keep_tags: Vec<String>,
    /// Keep transaction-log segments this long after the newest segment,
    /// whatever the snapshots.
    pub logs_within: Option<Duration>,
    /// Purge a disabled account this long after it was disabled.
    pub purge_after: Option<Duration>,
}

impl Rules {
    /// Whether any keep rule keeps something: a count of 0 keeps nothing,
    /// so a section whose counts are all 0 has no keep rule.
    pub fn has_keep_rule(&self) -> bool {
        let keeps = |c: &Count| *c != Count::N(0);
        self.keep_last.as_ref().is_some_and(keeps)
            || self.keep_periods.iter().any(|(_, c)| keeps(c))
            || self.keep_within.is_some()
            || !self.keep_within_periods.is_empty()
            || !self.keep_tags.is_empty()
    }
}

impl RawRules {
    /// `self` with the unset settings taken from `base`.
    fn over(&self, base: &RawRules) -> RawRules {
        macro_rules! pick {
            ($($f:ident),*) => { RawRules { pattern: self.pattern.clone(), $($f: self.$f.clone().or_else(|| base.$f.clone()),)* } };
        }
        pick!(
            keep_last,
            keep_hourly,
            keep_daily,
            keep_weekly,
            keep_monthly,
            keep_quarterly,
            keep_yearly,
            keep_within,
            keep_within_hourly,
            keep_within_daily,
            keep_within_weekly,
            keep_within_monthly,
            keep_within_quarterly,
            keep_within_yearly,
            keep_tag,
            logs_within,
            purge_after
        )
    }

    fn resolve(&self) -> Rules {
        let periods = [
            (
                PeriodKind::Hourly,
                self.keep_hourly,
                &self.keep_within_hourly,
            ),
            (PeriodKind::Daily, self.keep_daily, &self.keep_within_daily),
            (
                PeriodKind::Weekly,
                self.keep_weekly,
                &self.keep_within_weekly,
            ),
            (
                PeriodKind::Monthly,
                self.keep_monthly,
                &self.keep_within_monthly,
            ),
            (
                PeriodKind::Quarterly,
                self.keep_quarterly,
                &self.keep_within_quarterly,
            ),
            (
                PeriodKind::Yearly,
                self.keep_yearly,
                &self.keep_within_yearly,
            ),
        ];
        Rules {
            keep_last: self.keep_last,
            keep_periods: periods
                .iter()
                .filter_map(|(k, c, _)| c.map(|c| (*k, c)))
                .collect(),
            keep_within: self.keep_within.clone(),
            keep_within_periods: periods
                .iter()
                .filter_map(|(k, _, d)| (*d).clone().map(|d| (*k, d)))
                .collect(),
            keep_tags: self.keep_tag.clone().unwrap_or_default(),
            logs_within: self.logs_within.clone(),
            purge_after: self.purge_after.clone(),
        }
    }
}

/// An invalid policy file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// `line L, column C` of byte offset `at` in `text`.
fn position(text: &str, at: usize) -> String {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, l)| l)
        .chars()
        .count()
        + 1;
    format!("line {line}, column {column}")
}

/// An error about the text at `span`, named by position and key.
fn error_at(text: &str, span: std::ops::Range<usize>, key: &str, what: String) -> PolicyError {
    PolicyError(format!("{}: `{key}`: {what}", position(text, span.start)))
}

/// A parsed, validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    timezone: jiff::tz::TimeZone,
    timezone_name: String,
    default: RawRules,
    accounts: Vec<(String, GlobMatcher, RawRules)>,
}

impl Policy {
    /// Parse a policy file's text. Errors name the line, column and key.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        if text.trim().is_empty() {
            return Err(PolicyError(
                "the policy file is empty: it needs a [default] section with at least one keep rule"
                    .into(),
            ));
        }
        let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError(e.to_string()))?;
        if raw.timezone.is_none() && raw.default.is_none() && raw.account.is_empty() {
            return Err(PolicyError(
                "the policy file is empty (only comments): it needs a [default] section with at least one keep rule"
                    .into(),
            ));
        }
        let (timezone_name, timezone) = match &raw.timezone {
            None => ("UTC".to_string(), jiff::tz::TimeZone::UTC),
            Some(tz) => {
                let name = tz.get_ref().clone();
                let zone = jiff::tz::TimeZone::get(&name).map_err(|e| {
                    error_at(
                        text,
                        tz.span(),
                        "timezone",
                        format!(
                            "{name:?} is not an IANA time zone name ({e}); examples: UTC, Europe/Berlin, America/New_York"
                        ),
                    )
                })?;
                (name, zone)
            }
        };
        let default_span = raw.default.as_ref().map(Spanned::span);
        let default = raw.default.map(Spanned::into_inner).ok_or_else(|| {
            PolicyError("the policy file has no [default] section (it applies to every account without a matching [[account]])".into())
        })?;
        if let Some(p) = &default.pattern {
            return Err(error_at(
                text,
                p.span(),
                "pattern",
                "[default] takes no pattern (patterns belong in [[account]] sections)".into(),
            ));
        }
        if !default.resolve().has_keep_rule() {
            return Err(error_at(
                text,
                default_span.unwrap_or(0..0),
                "default",
                "[default] sets no keep rule that keeps anything (a count of 0 keeps nothing): without one every snapshot but the newest would be removed"
                    .into(),
            ));
        }
        let mut accounts = Vec::new();
        for (i, section) in raw.account.iter().enumerate() {
            let span = section.span();
            let section = section.get_ref();
            let pattern = section.pattern.as_ref().ok_or_else(|| {
                error_at(
                    text,
                    span.clone(),
                    "pattern",
                    format!(
                        "[[account]] section {} has no pattern (which accounts it applies to)",
                        i + 1
                    ),
                )
            })?;
            let name = pattern.get_ref().clone();
            let glob = Glob::new(&name)
                .map_err(|e| {
                    error_at(
                        text,
                        pattern.span(),
                        "pattern",
                        format!("{name:?} is not a glob: {e}"),
                    )
                })?
                .compile_matcher();
            let effective = section.over(&default);
            if !effective.resolve().has_keep_rule() {
                return Err(error_at(
                    text,
                    span,
                    "account",
                    format!(
                        "[[account]] {name:?} ends up with no keep rule that keeps anything (a count of 0 keeps nothing)"
                    ),
                ));
            }
            accounts.push((name, glob, effective));
        }
        Ok(Self {
            timezone,
            timezone_name,
            default,
            accounts,
        })
    }

    /// The time zone that decides calendar boundaries.
    pub fn timezone(&self) -> &jiff::tz::TimeZone {
        &self.timezone
    }

    /// Its name.
    pub fn timezone_name(&self) -> &str {
        &self.timezone_name
    }

    /// The rules for an account, and the section they come from (`default`
    /// or the matching pattern). The first matching `[[account]]` wins.
    pub fn rules_for(&self, account: &str) -> (String, Rules) {
        for (pattern, glob, rules) in &self.accounts {
            if glob.is_match(account) {
                return (format!("account {pattern:?}"), rules.resolve());
            }
        }
        ("default".to_string(), self.default.resolve())
    }
}
