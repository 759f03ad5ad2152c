//! Transaction-log segments: kept while a retained snapshot may need them
//! for point-in-time restore (`docs/RETENTION.md`, "Transaction logs").

use crate::{AccountPlan, Policy};
use jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// What retention needs to know about a log segment.
#[derive(Debug, Clone)]
pub struct LogInfo<Id> {
    /// The caller's identifier.
    pub id: Id,
    /// Its account.
    pub account: String,
    /// Its stream (one database's log).
    pub stream: String,
    /// When it was pushed.
    pub time: Timestamp,
}

/// Why a segment is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogReason {
    /// Pushed at or after the account's oldest kept snapshot: replaying it
    /// brings that snapshot (or a later one) forward in time.
    AfterOldestSnapshot,
    /// The last segment pushed before the oldest kept snapshot: it may hold
    /// the start of that snapshot's log range.
    ChainStart,
    /// Within `logs-within` of the stream's newest segment.
    Within(String),
    /// The account has no kept snapshot yet (nothing decides what is
    /// needed, so nothing is removed).
    NoSnapshot,
}

impl fmt::Display for LogReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogReason::AfterOldestSnapshot => f.write_str("after the oldest kept snapshot"),
            LogReason::ChainStart => f.write_str("start of the oldest kept snapshot's log range"),
            LogReason::Within(d) => write!(f, "logs within {d}"),
            LogReason::NoSnapshot => f.write_str("no kept snapshot yet"),
        }
    }
}

/// The decision for one segment.
#[derive(Debug, Clone)]
pub struct LogDecision<Id> {
    /// The segment.
    pub id: Id,
    /// Why it is kept (empty: removed).
    pub reasons: Vec<LogReason>,
    /// Removed because its account is purged.
    pub purged: bool,
}

impl<Id> LogDecision<Id> {
    /// Whether it is kept.
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// Decide every segment, given the snapshot plans of their accounts.
pub fn plan_logs<Id: Clone, S>(
    logs: &[LogInfo<Id>],
    plans: &[AccountPlan<S>],
    policy: &Policy,
) -> Vec<LogDecision<Id>> {
    let plans: HashMap<&str, &AccountPlan<S>> =
        plans.iter().map(|p| (p.account.as_str(), p)).collect();
    let mut streams: BTreeMap<(&str, &str), Vec<&LogInfo<Id>>> = BTreeMap::new();
    for l in logs {
        streams.entry((&l.account, &l.stream)).or_default().push(l);
    }
    let mut out = Vec::with_capacity(logs.len());
    for ((account, _), mut segs) in streams {
        segs.sort_by_key(|s| std::cmp::Reverse(s.time));
        let plan = plans.get(account);
        let purged = plan.is_some_and(|p| p.purge.is_some_and(|p| p.due));
        let oldest = plan.and_then(|p| p.oldest_kept());
        let (_, rules) = policy.rules_for(account);
        let within_cutoff = rules.logs_within.as_ref().and_then(|w| {
            segs.first()
                .map(|newest| (w.to_string(), w.before(newest.time, policy.timezone())))
        });
        let mut chain_start_taken = false;
        for seg in segs {
            let mut reasons = Vec::new();
            if !purged {
                match oldest {
                    None => reasons.push(LogReason::NoSnapshot),
                    Some(o) if seg.time >= o => reasons.push(LogReason::AfterOldestSnapshot),
                    Some(_) if !chain_start_taken => {
                        chain_start_taken = true;
                        reasons.push(LogReason::ChainStart);
                    }
                    Some(_) => {}
                }
                if let Some((text, cutoff)) = &within_cutoff
                    && seg.time >= *cutoff
                {
                    reasons.push(LogReason::Within(text.clone()));
                }
            }
            out.push(LogDecision {
                id: seg.id.clone(),
                reasons,
                purged,
            });
        }
    }
    out
}
