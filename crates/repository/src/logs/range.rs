//! Ranges of log segments: what a point-in-time restore replays after its
//! snapshot, what an archival backup holds, and the gaps in them.

use super::{Segment, chain_breaks};
use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::repo::Repository;
use crate::snapshot::Snapshot;
use crate::verification::Verdict;
use serde::Serialize;
use std::collections::BTreeMap;

/// A hole in a range of segments: a missing or altered link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RangeGap {
    /// The stream.
    pub stream: String,
    /// The last segment before the hole (`None`: the range's start).
    pub after: Option<String>,
    /// The first segment after it.
    pub before: String,
    /// What is wrong.
    pub problem: String,
}

/// The segments of `account` (of `stream`, or of every stream) pushed
/// after `after` and up to `until`: per stream (in name order) in sequence
/// order, with the breaks in their chains. Each stream's chain is checked
/// from the segment before the first one in the range, when retention kept
/// it, so a hole at the range's start is found too.
pub fn log_range(
    all: &[Segment],
    account: &str,
    stream: Option<&str>,
    after: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
) -> (Vec<Segment>, Vec<RangeGap>) {
    let mut by_stream: BTreeMap<&str, Vec<&Segment>> = BTreeMap::new();
    for seg in all {
        if seg.manifest.account == account && stream.is_none_or(|s| s == seg.manifest.stream) {
            by_stream.entry(&seg.manifest.stream).or_default().push(seg);
        }
    }
    let mut segments = Vec::new();
    let mut gaps = Vec::new();
    for (name, mut segs) in by_stream {
        segs.sort_by_key(|s| (s.manifest.seq, s.id));
        let Some(first) = segs
            .iter()
            .position(|s| after.is_none_or(|a| s.manifest.pushed > a))
        else {
            continue;
        };
        let Some(last) = segs
            .iter()
            .rposition(|s| until.is_none_or(|t| s.manifest.pushed <= t))
            .filter(|l| *l >= first)
        else {
            continue;
        };
        let from = first.saturating_sub(1);
        let window: Vec<Segment> = segs[from..=last].iter().map(|s| (*s).clone()).collect();
        for b in chain_breaks(&window) {
            gaps.push(RangeGap {
                stream: name.to_string(),
                after: b.after,
                before: b.before,
                problem: b.problem,
            });
        }
        segments.extend(segs[first..=last].iter().map(|s| (*s).clone()));
    }
    (segments, gaps)
}

/// A snapshot a point-in-time restore passed over.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedSnapshot {
    /// Its id.
    pub id: SnapshotId,
    /// When it was taken.
    pub time: jiff::Timestamp,
    /// Why it was not used.
    pub why: String,
}

/// What a point-in-time restore delivers.
#[derive(Debug, Clone)]
pub struct RestorePoint {
    /// The newest good snapshot taken at or before the target time (or the
    /// one asked for).
    pub snapshot: (SnapshotId, Snapshot),
    /// Its verification verdict, when it has one.
    pub verdict: Option<Verdict>,
    /// Newer snapshots passed over (their verification failed).
    pub skipped: Vec<SkippedSnapshot>,
    /// Segments pushed after the snapshot, up to the target time: per
    /// stream (in name order) in sequence order.
    pub segments: Vec<Segment>,
}

/// How a point-in-time restore picks its snapshot.
pub struct PointOptions<'a> {
    /// The target time (`None`: the newest segment).
    pub until: Option<jiff::Timestamp>,
    /// One stream only.
    pub stream: Option<&'a str>,
    /// Which snapshots may be used (host, tags).
    pub filter: &'a dyn Fn(&Snapshot) -> bool,
    /// Use this snapshot, whatever its verification said.
    pub snapshot: Option<SnapshotId>,
}

impl std::fmt::Debug for PointOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PointOptions")
            .field("until", &self.until)
            .field("stream", &self.stream)
            .field("snapshot", &self.snapshot)
            .finish_non_exhaustive()
    }
}

/// A point-in-time restore (or an archival export) cannot reach its target.
pub(super) fn unreachable(account: &str, last: &str, problem: &str) -> Error {
    Error::invalid(
        "point-in-time restore",
        format!("{problem}; for account {account} the last point that can be reached is {last}"),
    )
}

/// The error for the first gap of a range that starts at `since`.
pub fn gap_error(account: &str, since: jiff::Timestamp, gap: &RangeGap) -> Error {
    let reach = gap.after.clone().map_or_else(
        || format!("the snapshot of {since}"),
        |n| format!("segment {n} of stream {}", gap.stream),
    );
    unreachable(
        account,
        &reach,
        &format!(
            "stream {} breaks before segment {}: {}",
            gap.stream, gap.before, gap.problem
        ),
    )
}

/// Report that a segment could not be read during a restore.
pub fn unreadable_segment(
    account: &str,
    prev: Option<&Segment>,
    snapshot_time: jiff::Timestamp,
    seg: &Segment,
    e: &Error,
) -> Error {
    let reach = prev.map_or_else(
        || format!("the snapshot of {snapshot_time}"),
        |p| format!("segment {} (pushed {})", p.manifest.name, p.manifest.pushed),
    );
    unreachable(
        account,
        &reach,
        &format!(
            "segment {} of stream {} cannot be read ({e})",
            seg.manifest.name, seg.manifest.stream
        ),
    )
}

/// The snapshot and log segments that bring `account` to `opts.until`
/// (or to its newest segment). The snapshot is the newest one taken at
/// or before the target that the filter accepts and whose verification
/// did not fail (seeds 000 and 001: fall back to the newest *good*
/// snapshot and replay the logs after it); `opts.snapshot` forces one.
/// Segments pushed after the target are not included: a database
/// replaying to a target time fetches the one in progress at that time
/// itself (`cairn log get`). A gap in a chain is an error naming the
/// last point that can be reached.
pub fn point_in_time(
    repo: &Repository,
    account: &str,
    opts: &PointOptions<'_>,
) -> Result<RestorePoint> {
    let (snaps, _) = repo.snapshots()?;
    let verdicts = crate::verification::verdicts(repo).map_err(|e| {
        Error::invalid(
            "point-in-time restore",
            format!(
                "{e}; without the verification records cairn cannot tell a good snapshot from a failed one (name one with --snapshot)"
            ),
        )
    })?;
    let mut skipped = Vec::new();
    let chosen = match opts.snapshot {
        Some(id) => {
            let found = snaps
                .into_iter()
                .find(|(i, s)| *i == id && s.account == account)
                .ok_or_else(|| Error::NotFound {
                    what: format!("snapshot {} of account {account}", id.short()),
                })?;
            if let Some(t) = opts.until
                && found.1.time > t
            {
                return Err(Error::invalid(
                    "--snapshot",
                    format!(
                        "snapshot {} was taken at {}, after the target time {t}",
                        id.short(),
                        found.1.time
                    ),
                ));
            }
            found
        }
        None => {
            let mut chosen = None;
            for (id, s) in snaps.into_iter().rev() {
                if s.account != account
                    || opts.until.is_some_and(|t| s.time > t)
                    || !(opts.filter)(&s)
                {
                    continue;
                }
                if verdicts.get(&id) == Some(&Verdict::Failed) {
                    skipped.push(SkippedSnapshot {
                        id,
                        time: s.time,
                        why: "its verification failed".into(),
                    });
                    continue;
                }
                chosen = Some((id, s));
                break;
            }
            chosen.ok_or_else(|| Error::NotFound {
                what: format!(
                    "a snapshot of account {account}{} that the filters accept{}",
                    match opts.until {
                        Some(t) => format!(" taken at or before {t}"),
                        None => String::new(),
                    },
                    if skipped.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " and whose verification did not fail ({} failed ones passed over)",
                            skipped.len()
                        )
                    }
                ),
            })?
        }
    };
    let since = chosen.1.time;
    let all = crate::logs::all_log_segments(repo)?;
    if let Some(s) = opts.stream
        && !all
            .iter()
            .any(|seg| seg.manifest.account == account && seg.manifest.stream == s)
    {
        return Err(Error::NotFound {
            what: format!("log stream {s} of account {account}"),
        });
    }
    let (segments, gaps) = log_range(&all, account, opts.stream, Some(since), opts.until);
    if let Some(gap) = gaps.first() {
        return Err(gap_error(account, since, gap));
    }
    Ok(RestorePoint {
        verdict: verdicts.get(&chosen.0).copied(),
        snapshot: chosen,
        skipped,
        segments,
    })
}

/// When the snapshot before `snapshot` (of the same account) was taken:
/// where the log range of an archival backup starts.
pub fn previous_snapshot_time(
    _repo: &Repository,
    snapshot: &Snapshot,
    snapshots: &[(SnapshotId, Snapshot)],
) -> Option<jiff::Timestamp> {
    snapshots
        .iter()
        .filter(|(_, s)| s.account == snapshot.account && s.time < snapshot.time)
        .map(|(_, s)| s.time)
        .max()
}

/// Segments pushed between the previous snapshot of the same account
/// and this one: the log range an archival backup holds, with the gaps
/// in it.
pub fn segments_since_previous_snapshot(
    repo: &Repository,
    snapshot: &Snapshot,
    all: &[Segment],
    snapshots: &[(SnapshotId, Snapshot)],
) -> (Vec<Segment>, Vec<RangeGap>) {
    let previous = crate::logs::previous_snapshot_time(repo, snapshot, snapshots);
    log_range(all, &snapshot.account, None, previous, Some(snapshot.time))
}
