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
    let segs = repo.segments_since_previous_snapshot(s, segments, all);
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
            Some(json!({
                "stream": stream,
                "segments": v.len(),
                "first": first.manifest.name,
                "last": last.manifest.name,
                "first_seq": first.manifest.seq,
                "last_seq": last.manifest.seq,
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
        repo.all_log_segments()?
    } else {
        Vec::new()
    };
    // The newest verification of each snapshot decides its status.
    let verdicts = repo.verdicts().unwrap_or_else(|e| {
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
    println!(
        "{:<8}  {:<19}  {:<12}  {:<12}  {:>10}  {:<8}  {:<10}  paths",
        "id", "time", "host", "account", "size", "status", "tags"
    );
    for (id, s) in &shown {
        let paths: Vec<String> = s.paths.iter().map(|p| p.display()).collect();
        println!(
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
                println!(
                    "          logs {}: {} .. {} ({} segments since the previous snapshot)",
                    r["stream"].as_str().unwrap_or_default(),
                    r["first"].as_str().unwrap_or_default(),
                    r["last"].as_str().unwrap_or_default(),
                    r["segments"]
                );
            }
        }
    }
    println!("{} snapshots", shown.len());
    Ok(crate::exit::OK)
}
