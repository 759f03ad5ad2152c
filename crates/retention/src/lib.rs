//! Retention for cairn: which snapshots and transaction-log segments to
//! keep, and why.
//!
//! This crate owns the policy file format ([`Policy`], specified in
//! `docs/RETENTION.md`) and the decision. It is pure: snapshot and account
//! metadata and a clock go in ([`plan`]), a decision for every snapshot comes
//! out, with every reason that kept it. It must not know about repositories,
//! storage, encryption or the file system, and it performs no I/O: the
//! caller lists, prints and deletes.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod logs;
mod policy;

pub use logs::{LogDecision, LogInfo, LogReason, plan_logs};
pub use policy::{Count, Duration, Policy, PolicyError, Rules};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// The state a snapshot's verification left it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Written completely.
    Complete,
    /// Written and verified.
    Verified,
    /// Verification failed.
    Failed,
}

impl Status {
    /// Whether the snapshot counts toward the rules.
    pub fn counts(self) -> bool {
        matches!(self, Status::Complete | Status::Verified)
    }
}

/// What retention needs to know about a snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotInfo<Id> {
    /// The caller's identifier.
    pub id: Id,
    /// When it was taken.
    pub time: Timestamp,
    /// Its account.
    pub account: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its status.
    pub status: Status,
}

/// The lifecycle state of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    /// Backed up normally.
    Active,
    /// Takes no new backups; purged once `purge-after` has passed.
    Disabled {
        /// When it was disabled.
        since: Timestamp,
    },
    /// Its data has been purged.
    Purged {
        /// When.
        at: Timestamp,
    },
}

/// Calendar periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeriodKind {
    /// Local clock hours.
    Hourly,
    /// Local calendar days.
    Daily,
    /// ISO 8601 weeks (Monday to Sunday; week 1 holds the year's first Thursday).
    Weekly,
    /// Calendar months.
    Monthly,
    /// Calendar quarters: January-March, April-June, July-September, October-December.
    Quarterly,
    /// Calendar years.
    Yearly,
}

impl PeriodKind {
    /// Every kind, shortest first.
    pub const ALL: [PeriodKind; 6] = [
        PeriodKind::Hourly,
        PeriodKind::Daily,
        PeriodKind::Weekly,
        PeriodKind::Monthly,
        PeriodKind::Quarterly,
        PeriodKind::Yearly,
    ];

    /// `hourly`, `daily`...
    pub fn name(self) -> &'static str {
        match self {
            PeriodKind::Hourly => "hourly",
            PeriodKind::Daily => "daily",
            PeriodKind::Weekly => "weekly",
            PeriodKind::Monthly => "monthly",
            PeriodKind::Quarterly => "quarterly",
            PeriodKind::Yearly => "yearly",
        }
    }

    /// The period holding `t` in `tz`, as a sortable key and a label
    /// (`2026-11-20T14`, `2026-11-20`, `2026-W47`, `2026-11`, `2026-Q3`, `2026`).
    pub fn period(self, t: Timestamp, tz: &TimeZone) -> (i64, String) {
        let z = t.to_zoned(tz.clone());
        let (y, m, d, h) = (
            i64::from(z.year()),
            i64::from(z.month()),
            i64::from(z.day()),
            i64::from(z.hour()),
        );
        match self {
            PeriodKind::Hourly => (
                ((y * 100 + m) * 100 + d) * 100 + h,
                format!("{y:04}-{m:02}-{d:02}T{h:02}"),
            ),
            PeriodKind::Daily => ((y * 100 + m) * 100 + d, format!("{y:04}-{m:02}-{d:02}")),
            PeriodKind::Weekly => {
                let iso = z.date().iso_week_date();
                let (wy, w) = (i64::from(iso.year()), i64::from(iso.week()));
                (wy * 100 + w, format!("{wy:04}-W{w:02}"))
            }
            PeriodKind::Monthly => (y * 100 + m, format!("{y:04}-{m:02}")),
            PeriodKind::Quarterly => {
                let q = (m - 1) / 3 + 1;
                (y * 10 + q, format!("{y:04}-Q{q}"))
            }
            PeriodKind::Yearly => (y, format!("{y:04}")),
        }
    }
}

/// Why a snapshot is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The account's newest counting snapshot (always kept: the next backup may fail).
    Newest,
    /// Among the `keep-last` newest.
    Last(Count),
    /// The last snapshot of a period kept by `keep-<period>`.
    Period {
        /// Which rule.
        kind: PeriodKind,
        /// The period (`2026-Q3`).
        label: String,
    },
    /// Within `keep-within` of the newest snapshot.
    Within(String),
    /// The last snapshot of a period within `keep-within-<period>`.
    WithinPeriod {
        /// Which rule.
        kind: PeriodKind,
        /// The duration.
        within: String,
        /// The period.
        label: String,
    },
    /// Carries a kept tag.
    Tag(String),
    /// Dated ahead of the clock (a wrong `--time`, a host whose clock runs
    /// ahead): an anomaly, kept, and left out of every rule, so that it
    /// neither counts as the newest nor anchors `keep-within`.
    Future,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Newest => f.write_str("newest"),
            Reason::Last(n) => write!(f, "last {n}"),
            Reason::Period { kind, label } => write!(f, "{} {label}", kind.name()),
            Reason::Within(d) => write!(f, "within {d}"),
            Reason::WithinPeriod {
                kind,
                within,
                label,
            } => write!(f, "within-{} {within} {label}", kind.name()),
            Reason::Tag(t) => write!(f, "tag {t}"),
            Reason::Future => f.write_str("dated in the future (an anomaly: kept, not counted)"),
        }
    }
}

/// Why a snapshot is removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// No rule keeps it.
    NoRule,
    /// It does not count (failed verification).
    NotCounting(Status),
    /// Its account was disabled long enough ago to be purged.
    Purge,
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Removal::NoRule => f.write_str("no rule keeps it"),
            Removal::NotCounting(s) => write!(f, "status {s:?} does not count"),
            Removal::Purge => f.write_str("account purged"),
        }
    }
}

/// The decision for one snapshot.
#[derive(Debug, Clone)]
pub struct Decision<Id> {
    /// The snapshot.
    pub id: Id,
    /// Its time.
    pub time: Timestamp,
    /// Every reason that keeps it (empty: removed).
    pub reasons: Vec<Reason>,
    /// Why it is removed, when it is.
    pub removal: Option<Removal>,
}

impl<Id> Decision<Id> {
    /// Whether it is kept.
    pub fn keep(&self) -> bool {
        self.removal.is_none()
    }
}

/// When a disabled account is (or was) due for purging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purge {
    /// `disabled since + purge-after`.
    pub date: Timestamp,
    /// Whether `now` is past it: everything of the account goes.
    pub due: bool,
}

/// The plan for one account.
#[derive(Debug, Clone)]
pub struct AccountPlan<Id> {
    /// The account.
    pub account: String,
    /// The policy section its rules come from.
    pub section: String,
    /// The rules applied.
    pub rules: Rules,
    /// Its state.
    pub state: AccountState,
    /// Its purge date, for disabled accounts with `purge-after`.
    pub purge: Option<Purge>,
    /// One decision per snapshot, newest first.
    pub snapshots: Vec<Decision<Id>>,
}

impl<Id> AccountPlan<Id> {
    /// The oldest kept snapshot's time (log segments after it are needed).
    pub fn oldest_kept(&self) -> Option<Timestamp> {
        self.snapshots
            .iter()
            .filter(|d| d.keep())
            .map(|d| d.time)
            .min()
    }
}

/// Decide, for every snapshot, keep or remove and why. `accounts` gives the
/// state of accounts that have one (others are active); accounts with a
/// state but no snapshots get a plan too (a disabled account still shows
/// its purge date). Plans are sorted by account name.
pub fn plan<Id: Clone>(
    snapshots: &[SnapshotInfo<Id>],
    accounts: &HashMap<String, AccountState>,
    policy: &Policy,
    now: Timestamp,
) -> Vec<AccountPlan<Id>> {
    let mut by_account: BTreeMap<&str, Vec<&SnapshotInfo<Id>>> = BTreeMap::new();
    for s in snapshots {
        by_account.entry(&s.account).or_default().push(s);
    }
    for name in accounts.keys() {
        by_account.entry(name).or_default();
    }
    by_account
        .into_iter()
        .map(|(account, mut snaps)| {
            snaps.sort_by_key(|s| std::cmp::Reverse(s.time));
            let state = accounts
                .get(account)
                .copied()
                .unwrap_or(AccountState::Active);
            plan_account(account, &snaps, state, policy, now)
        })
        .collect()
}

fn plan_account<Id: Clone>(
    account: &str,
    snaps: &[&SnapshotInfo<Id>],
    state: AccountState,
    policy: &Policy,
    now: Timestamp,
) -> AccountPlan<Id> {
    let tz = policy.timezone();
    let (section, rules) = policy.rules_for(account);
    let purge = match (state, &rules.purge_after) {
        (AccountState::Disabled { since }, Some(after)) => {
            let date = after.after(since, tz);
            Some(Purge {
                date,
                due: now >= date,
            })
        }
        (AccountState::Purged { at }, _) => Some(Purge {
            date: at,
            due: true,
        }),
        _ => None,
    };
    let purging = purge.is_some_and(|p| p.due);
    let mut reasons: Vec<Vec<Reason>> = vec![Vec::new(); snaps.len()];
    if !purging {
        keep_reasons(snaps, &rules, tz, now, &mut reasons);
        for (s, r) in snaps.iter().zip(&mut reasons) {
            if s.time > now {
                r.push(Reason::Future);
            }
        }
    }
    let decisions = snaps
        .iter()
        .zip(reasons)
        .map(|(s, reasons)| {
            let removal = if purging {
                Some(Removal::Purge)
            } else if s.time > now {
                None
            } else if !s.status.counts() {
                Some(Removal::NotCounting(s.status))
            } else if reasons.is_empty() {
                Some(Removal::NoRule)
            } else {
                None
            };
            Decision {
                id: s.id.clone(),
                time: s.time,
                reasons: if removal.is_some() {
                    Vec::new()
                } else {
                    reasons
                },
                removal,
            }
        })
        .collect();
    AccountPlan {
        account: account.to_string(),
        section,
        rules,
        state,
        purge,
        snapshots: decisions,
    }
}

/// Fill `reasons` (parallel to `snaps`, newest first) from every rule.
/// Snapshots dated after `now` take no part.
fn keep_reasons<Id>(
    snaps: &[&SnapshotInfo<Id>],
    rules: &Rules,
    tz: &TimeZone,
    now: Timestamp,
    reasons: &mut [Vec<Reason>],
) {
    let counting: Vec<usize> = (0..snaps.len())
        .filter(|&i| snaps[i].status.counts() && snaps[i].time <= now)
        .collect();
    let Some(&newest) = counting.first() else {
        return;
    };
    let newest_time = snaps[newest].time;
    reasons[newest].push(Reason::Newest);

    if let Some(n) = rules.keep_last {
        for (rank, &i) in counting.iter().enumerate() {
            if n.allows(rank) {
                reasons[i].push(Reason::Last(n));
            }
        }
    }
    // Newest first, so the first snapshot met in a period is its last one.
    let keep_per_period = |kind: PeriodKind,
                           count: Count,
                           candidates: &[usize],
                           reasons: &mut [Vec<Reason>],
                           make: &dyn Fn(String) -> Reason| {
        let mut seen: HashSet<i64> = HashSet::new();
        for &i in candidates {
            let (key, label) = kind.period(snaps[i].time, tz);
            if seen.contains(&key) {
                continue;
            }
            if !count.allows(seen.len()) {
                break;
            }
            seen.insert(key);
            reasons[i].push(make(label));
        }
    };
    for &(kind, count) in &rules.keep_periods {
        keep_per_period(kind, count, &counting, reasons, &|label| Reason::Period {
            kind,
            label,
        });
    }
    if let Some(within) = &rules.keep_within {
        let cutoff = within.before(newest_time, tz);
        for &i in &counting {
            if snaps[i].time >= cutoff {
                reasons[i].push(Reason::Within(within.to_string()));
            }
        }
    }
    for (kind, within) in &rules.keep_within_periods {
        let cutoff = within.before(newest_time, tz);
        let inside: Vec<usize> = counting
            .iter()
            .copied()
            .filter(|&i| snaps[i].time >= cutoff)
            .collect();
        let kind = *kind;
        keep_per_period(kind, Count::All, &inside, reasons, &|label| {
            Reason::WithinPeriod {
                kind,
                within: within.to_string(),
                label,
            }
        });
    }
    if !rules.keep_tags.is_empty() {
        for &i in &counting {
            for tag in &snaps[i].tags {
                if rules.keep_tags.contains(tag) {
                    reasons[i].push(Reason::Tag(tag.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
