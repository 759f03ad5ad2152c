//! When jobs are due: pure functions of the config, the jobs' state and
//! the time.
//!
//! - A job that never ran is due at once (the service's start-up run).
//! - After a success it is due `interval` after that run started, so a
//!   restart does not take another snapshot before the interval has
//!   elapsed since the last one, and runs missed while the service was
//!   down make one run at start-up, not one per missed interval.
//! - After a failure it is due `retry` after the failed run started.
//! - A run that never finished (the service stopped or died) is due at
//!   once.
//! - A disabled backup job is never due; its reminder is due every 24 h.

use crate::config::{Config, JobRef, RETENTION};
use crate::duration::Interval;
use crate::state::JobState;
use jiff::Timestamp;

/// How often a disabled job's reminder repeats.
pub const REMINDER: Interval = Interval::secs(86_400);

/// What the scheduler wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Queue this job.
    Enqueue(String),
    /// Remind the administrator that this backup job is disabled.
    Remind(String),
}

/// When a job with this state is next due.
pub fn due_at(interval: Interval, retry: Interval, st: &JobState) -> Timestamp {
    match (st.last_start, st.last_ok) {
        (None, _) | (Some(_), None) => Timestamp::MIN,
        (Some(_), Some(true)) => st
            .last_success
            .and_then(|t| t.checked_add(interval.signed()).ok())
            .unwrap_or(Timestamp::MIN),
        (Some(start), Some(false)) => start.checked_add(retry.signed()).unwrap_or(Timestamp::MAX),
    }
}

/// When the next reminder for a disabled job is due.
pub fn reminder_at(st: &JobState) -> Timestamp {
    st.last_reminder
        .and_then(|t| t.checked_add(REMINDER.signed()).ok())
        .unwrap_or(Timestamp::MIN)
}

/// When `job`, with this state, is next due.
pub fn job_due_at(job: JobRef<'_>, st: &JobState) -> Timestamp {
    let (interval, retry) = timing(job);
    due_at(interval, retry, st)
}

/// A job's interval and retry.
fn timing(job: JobRef<'_>) -> (Interval, Interval) {
    match job {
        JobRef::Backup(b) => (b.interval, b.retry()),
        JobRef::Retention(r) => (r.interval, r.interval.min(Interval::secs(3600))),
        JobRef::Sync(s) => (s.interval, s.interval.min(Interval::secs(3600))),
    }
}

/// Everything due at `now`, in config order (backup jobs, whose runs
/// include verification, then retention, then syncs). `busy` says whether
/// a job is already queued or running.
pub fn actions(
    config: &Config,
    state: &dyn Fn(&str) -> JobState,
    busy: &dyn Fn(&str) -> bool,
    now: Timestamp,
) -> Vec<Action> {
    let mut out = Vec::new();
    for name in config.job_names() {
        let Some(job) = config.job(&name) else {
            continue;
        };
        let st = state(&name);
        if !job.enabled() {
            if matches!(job, JobRef::Backup(_)) && reminder_at(&st) <= now {
                out.push(Action::Remind(name));
            }
            continue;
        }
        if name == RETENTION && config.policy.is_none() {
            continue;
        }
        let (interval, retry) = timing(job);
        if due_at(interval, retry, &st) <= now && !busy(&name) {
            out.push(Action::Enqueue(name));
        }
    }
    out
}

/// The earliest time anything becomes due (for sleeping until then).
pub fn next_wake(config: &Config, state: &dyn Fn(&str) -> JobState) -> Option<Timestamp> {
    config
        .job_names()
        .iter()
        .filter_map(|name| {
            let job = config.job(name)?;
            let st = state(name);
            if job.enabled() {
                let (interval, retry) = timing(job);
                Some(due_at(interval, retry, &st))
            } else if matches!(job, JobRef::Backup(_)) {
                Some(reminder_at(&st))
            } else {
                None
            }
        })
        .min()
}
