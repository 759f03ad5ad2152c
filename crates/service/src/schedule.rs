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
//! - A job with `at` times of day (in the config's `timezone`) is, after a
//!   success, due at the first of those times after that run started; the
//!   other rules are the same (a missed time makes one run at start-up).

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

/// When a job scheduled at times of day is next due: as [`due_at`],
/// except that after a success it is the first of `times` (in `tz`) after
/// that run started.
pub fn due_at_times(
    times: &[jiff::civil::Time],
    tz: &jiff::tz::TimeZone,
    retry: Interval,
    st: &JobState,
) -> Timestamp {
    match (st.last_start, st.last_ok, st.last_success) {
        (Some(_), Some(true), Some(last)) => next_time_of_day(times, tz, last),
        _ => due_at(Interval::secs(86_400), retry, st),
    }
}

/// The first of `times` (local times of day in `tz`) strictly after
/// `after`. A time a DST change skips is taken as the moment after the gap.
pub fn next_time_of_day(
    times: &[jiff::civil::Time],
    tz: &jiff::tz::TimeZone,
    after: Timestamp,
) -> Timestamp {
    let day = after.to_zoned(tz.clone()).date();
    (0..=2i64)
        .filter_map(|d| day.checked_add(jiff::Span::new().days(d)).ok())
        .flat_map(|date| times.iter().map(move |t| date.to_datetime(*t)))
        .filter_map(|dt| tz.to_ambiguous_zoned(dt).compatible().ok())
        .map(|z| z.timestamp())
        .filter(|t| *t > after)
        .min()
        .unwrap_or(Timestamp::MAX)
}

/// When `job`, with this state, is next due.
pub fn job_due_at(job: JobRef<'_>, st: &JobState, tz: &jiff::tz::TimeZone) -> Timestamp {
    let at = match job {
        JobRef::Backup(b) => &b.at,
        JobRef::Retention(r) => &r.at,
        JobRef::Sync(s) => &s.at,
    };
    let (interval, retry) = timing(job);
    if at.is_empty() {
        due_at(interval, retry, st)
    } else {
        due_at_times(at, tz, retry, st)
    }
}

/// A job's interval and retry.
fn timing(job: JobRef<'_>) -> (Interval, Interval) {
    match job {
        JobRef::Backup(b) => (b.interval(), b.retry()),
        JobRef::Retention(r) => (r.interval(), r.interval().min(Interval::secs(3600))),
        JobRef::Sync(s) => (s.interval(), s.interval().min(Interval::secs(3600))),
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
    let tz = config.time_zone();
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
        if job_due_at(job, &st, &tz) <= now && !busy(&name) {
            out.push(Action::Enqueue(name));
        }
    }
    out
}

/// The earliest time anything becomes due (for sleeping until then).
pub fn next_wake(config: &Config, state: &dyn Fn(&str) -> JobState) -> Option<Timestamp> {
    let tz = config.time_zone();
    config
        .job_names()
        .iter()
        .filter_map(|name| {
            let job = config.job(name)?;
            let st = state(name);
            if job.enabled() {
                Some(job_due_at(job, &st, &tz))
            } else if matches!(job, JobRef::Backup(_)) {
                Some(reminder_at(&st))
            } else {
                None
            }
        })
        .min()
}

#[cfg(test)]
mod at_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jiff::civil::time;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn times_of_day_follow_the_last_successful_start_in_the_zone() {
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let times = [time(2, 0, 0, 0), time(14, 30, 0, 0)];
        // 01:00 Berlin (00:00 UTC in winter): 02:00 the same day.
        assert_eq!(
            next_time_of_day(&times, &berlin, ts("2026-12-02T00:00:00Z")),
            ts("2026-12-02T01:00:00Z")
        );
        // Just after 14:30 Berlin: 02:00 the next day.
        assert_eq!(
            next_time_of_day(&times, &berlin, ts("2026-12-02T13:30:01Z")),
            ts("2026-12-03T01:00:00Z")
        );
        // 02:30 is skipped by the spring change in Berlin: the moment
        // after the gap (03:30 CEST).
        let gap = [time(2, 30, 0, 0)];
        assert_eq!(
            next_time_of_day(&gap, &berlin, ts("2026-03-28T12:00:00Z")),
            ts("2026-03-29T01:30:00Z")
        );
        // Never ran: at once; failed: the retry delay; succeeded: the next time.
        let never = JobState::default();
        assert_eq!(
            due_at_times(&times, &berlin, Interval::secs(3600), &never),
            Timestamp::MIN
        );
        let failed = JobState {
            last_start: Some(ts("2026-12-02T01:00:00Z")),
            last_ok: Some(false),
            ..Default::default()
        };
        assert_eq!(
            due_at_times(&times, &berlin, Interval::secs(3600), &failed),
            ts("2026-12-02T02:00:00Z")
        );
        let ok = JobState {
            last_start: Some(ts("2026-12-02T01:00:00Z")),
            last_success: Some(ts("2026-12-02T01:00:00Z")),
            last_ok: Some(true),
            ..Default::default()
        };
        assert_eq!(
            due_at_times(&times, &berlin, Interval::secs(3600), &ok),
            ts("2026-12-02T13:30:00Z")
        );
    }

    #[test]
    fn at_in_the_config() {
        let base = "repository = \"/r\"\npassword-file = \"/p\"\nstate-dir = \"/s\"\ntimezone = \"Europe/Berlin\"\n[[backup]]\nname = \"n\"\npaths = [\"/x\"]\n";
        let c = Config::parse(&format!("{base}at = [\"02:00\", \"14:30\"]\n")).unwrap();
        assert_eq!(c.backups[0].at, [time(2, 0, 0, 0), time(14, 30, 0, 0)]);
        let c = Config::parse(&format!("{base}at = \"02:00\"\n")).unwrap();
        assert_eq!(c.backups[0].at, [time(2, 0, 0, 0)]);
        let err = Config::parse(&format!("{base}at = \"2am\"\n")).unwrap_err();
        assert!(err.to_string().contains("not a time of day"), "{err}");
        let err = Config::parse(&format!("{base}at = \"02:00\"\ninterval = \"1d\"\n")).unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
        let c = Config::parse(&format!(
            "policy = \"/pol\"\n{base}[retention]\nat = \"03:00\"\n[[sync]]\nname = \"off\"\nto = \"/o\"\nat = [\"04:00\"]\n"
        ))
        .unwrap();
        assert_eq!(c.retention.as_ref().unwrap().at, [time(3, 0, 0, 0)]);
        assert_eq!(c.syncs[0].at, [time(4, 0, 0, 0)]);
        let bad_tz = base.replace("Europe/Berlin", "Mars/Olympus");
        assert!(Config::parse(&format!("{bad_tz}at = \"02:00\"\n")).is_err());
    }
}
