//! `cairn snapshots`.

use crate::cli::SnapshotsArgs;
use crate::context::Context;
use crate::output::{self, SnapshotRow, size};
use anyhow::Result;
use cairn_repository::logs::Segment;
use cairn_repository::{Repository, Snapshot, SnapshotId, Verdict};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The log range of `s` since the previous snapshot of its account, per stream.
fn log_ranges(
    repo: &Repository,
    s: &Snapshot,
    segments: &[Segment],
    all: &[(SnapshotId, Snapshot)],
) -> Vec<Value> {
    let (segs, gaps) =
        cairn_repository::logs::segments_since_previous_snapshot(repo, s, segments, all);
    let mut by_stream: BTreeMap<&str, Vec<&Segment>> = BTreeMap::new();
    for seg in &segs {
        by_stream
            .entry(seg.manifest.stream.as_str())
            .or_default()
            .push(seg);
    }
    by_stream
        .into_iter()
        .filter_map(|(stream, v)| {
            let (first, last) = (v.first()?, v.last()?);
            let holes: Vec<Value> = gaps
                .iter()
                .filter(|g| g.stream == stream)
                .map(|g| json!({ "after": g.after, "before": g.before, "problem": g.problem }))
                .collect();
            Some(json!({
                "stream": stream,
                "segments": v.len(),
                "first": first.manifest.name,
                "last": last.manifest.name,
                "first_seq": first.manifest.seq,
                "last_seq": last.manifest.seq,
                "gaps": holes,
            }))
        })
        .collect()
}

/// List snapshots, oldest first.
pub fn run(ctx: &Context, args: &SnapshotsArgs) -> Result<u8> {
    let repo = ctx.open(false)?;
    let (snaps, unreadable) = repo.snapshots()?;
    for (id, e) in &unreadable {
        eprintln!("warning: snapshot {} cannot be read: {e}", id.short());
    }
    let segments = if args.logs {
        cairn_repository::logs::all_log_segments(&repo)?
    } else {
        Vec::new()
    };
    // The newest verification of each snapshot decides its status.
    let verdicts = cairn_repository::verification::verdicts(&repo).unwrap_or_else(|e| {
        eprintln!("warning: verification records cannot be read ({e}); statuses shown as written");
        Default::default()
    });
    let status = |id: &SnapshotId| match verdicts.get(id) {
        Some(Verdict::Verified) => "verified",
        Some(Verdict::Failed) => "failed",
        None => "complete",
    };
    let shown: Vec<&(SnapshotId, Snapshot)> = snaps
        .iter()
        .filter(|(_, s)| args.filter.accepts(s))
        .collect();
    if ctx.global.json {
        let mut rows = Vec::new();
        for (id, s) in &shown {
            let mut v = serde_json::to_value(SnapshotRow::new(*id, s))?;
            v["status"] = json!(status(id));
            if args.logs {
                v["logs"] = json!(log_ranges(&repo, s, &segments, &snaps));
            }
            rows.push(v);
        }
        output::json(&rows)?;
        return Ok(crate::exit::OK);
    }
    outln!(
        "{:<8}  {:<19}  {:<12}  {:<12}  {:>10}  {:<8}  {:<10}  paths",
        "id",
        "time",
        "host",
        "account",
        "size",
        "status",
        "tags"
    );
    for (id, s) in &shown {
        let paths: Vec<String> = s.paths.iter().map(|p| p.display()).collect();
        outln!(
            "{:<8}  {:<19}  {:<12}  {:<12}  {:>10}  {:<8}  {:<10}  {}",
            id.short(),
            output::local_time(s.time),
            s.host,
            s.account,
            size(s.summary.bytes_total),
            status(id),
            s.tags.join(","),
            paths.join(" ")
        );
        if args.logs {
            for r in log_ranges(&repo, s, &segments, &snaps) {
                outln!(
                    "          logs {}: {} .. {} ({} segments since the previous snapshot){}",
                    r["stream"].as_str().unwrap_or_default(),
                    r["first"].as_str().unwrap_or_default(),
                    r["last"].as_str().unwrap_or_default(),
                    r["segments"],
                    r["gaps"]
                        .as_array()
                        .map_or(String::new(), |g| if g.is_empty() {
                            String::new()
                        } else {
                            let what: Vec<String> = g
                                .iter()
                                .map(|h| h["problem"].as_str().unwrap_or_default().to_string())
                                .collect();
                            format!(" GAP: {}", what.join("; "))
                        })
                );
            }
        }
    }
    outln!("{} snapshots", shown.len());
    Ok(crate::exit::OK)
}
