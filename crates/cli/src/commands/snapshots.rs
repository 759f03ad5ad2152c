//! `cairn snapshots`.

use crate::cli::{GroupField, SnapshotsArgs};
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
    let (snaps, unreadable) = args.filter.candidates(&repo)?;
    for (id, e) in &unreadable {
        eprintln!(
            "cairn: warning: snapshot {} cannot be read: {e}",
            id.short()
        );
    }
    let segments = if args.logs {
        cairn_repository::logs::all_log_segments(&repo)?
    } else {
        Vec::new()
    };
    // The newest verification of each snapshot decides its status.
    let verdicts = cairn_repository::verification::verdicts(&repo).unwrap_or_else(|e| {
        eprintln!(
            "cairn: warning: verification records cannot be read ({e}); statuses shown as written"
        );
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
    let fields = args.group_by.as_ref().map_or(&[][..], |g| &g.0[..]);
    let groups = group(&shown, fields, args.latest);
    if ctx.global.json {
        /// A row of `snapshots --json`: the manifest, its status and,
        /// with --logs, its log ranges (null without).
        #[derive(serde::Serialize)]
        struct Row<'a> {
            #[serde(flatten)]
            row: SnapshotRow<'a>,
            status: &'static str,
            logs: Option<Vec<Value>>,
        }
        fn row<'a>(
            id: &SnapshotId,
            s: &'a Snapshot,
            status: &'static str,
            logs: Option<Vec<Value>>,
        ) -> Row<'a> {
            Row {
                row: SnapshotRow::new(*id, s),
                status,
                logs,
            }
        }
        let logs = |s: &Snapshot| args.logs.then(|| log_ranges(&repo, s, &segments, &snaps));
        if args.group_by.is_some() {
            #[derive(serde::Serialize)]
            struct Group<'a> {
                group: &'a Value,
                snapshots: Vec<Row<'a>>,
            }
            let out: Vec<Group<'_>> = groups
                .iter()
                .map(|(key, members)| Group {
                    group: key,
                    snapshots: members
                        .iter()
                        .map(|(id, s)| row(id, s, status(id), logs(s)))
                        .collect(),
                })
                .collect();
            output::json(&out)?;
        } else {
            let rows: Vec<Row<'_>> = groups
                .iter()
                .flat_map(|(_, m)| m.iter())
                .map(|(id, s)| row(id, s, status(id), logs(s)))
                .collect();
            output::json(&rows)?;
        }
        return Ok(crate::exit::OK);
    }
    let mut total = 0u64;
    for (key, members) in &groups {
        if args.group_by.is_some() {
            let said: Vec<String> = key
                .as_object()
                .map(|o| o.iter().map(|(k, v)| format!("{k} {}", plain(v))).collect())
                .unwrap_or_default();
            outln!("group: {}", said.join(", "));
        }
        let mut table = output::table(
            &[
                "id", "time", "host", "account", "size", "status", "tags", "paths",
            ],
            &[4],
        );
        for (id, s) in members {
            let paths: Vec<String> = s.paths.iter().map(|p| p.display()).collect();
            table.add_row(vec![
                id.short(),
                output::local_time(s.time),
                s.host.clone(),
                s.account.clone(),
                size(s.summary.bytes_total),
                status(id).to_string(),
                s.tags.join(","),
                paths.join(" "),
            ]);
        }
        output::print_table(&table);
        if args.logs {
            for (id, s) in members {
                for r in log_ranges(&repo, s, &segments, &snaps) {
                    outln!(
                        "{} logs {}: {} .. {} ({} since the previous snapshot){}",
                        id.short(),
                        r["stream"].as_str().unwrap_or_default(),
                        r["first"].as_str().unwrap_or_default(),
                        r["last"].as_str().unwrap_or_default(),
                        output::count(r["segments"].as_u64().unwrap_or(0), "segment", "segments"),
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
        if args.group_by.is_some() {
            outln!();
        }
        total += members.len() as u64;
    }
    outln!("{}", output::count(total, "snapshot", "snapshots"));
    Ok(crate::exit::OK)
}

/// A JSON value as words: strings bare, lists joined with commas.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Snapshots (oldest first) in groups by `fields` (one group without
/// fields), in the order each group's newest snapshot appears, each
/// keeping its `latest` newest when given.
fn group<'a>(
    shown: &[&'a (SnapshotId, Snapshot)],
    fields: &[GroupField],
    latest: Option<usize>,
) -> Vec<(Value, Vec<&'a (SnapshotId, Snapshot)>)> {
    let mut groups: Vec<(Value, Vec<&'a (SnapshotId, Snapshot)>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for entry in shown {
        let s = &entry.1;
        let mut key = serde_json::Map::new();
        for f in fields {
            let (name, value) = match f {
                GroupField::Host => ("host", json!(s.host)),
                GroupField::Account => ("account", json!(s.account)),
                GroupField::Paths => (
                    "paths",
                    json!(s.paths.iter().map(|p| p.display()).collect::<Vec<_>>()),
                ),
                GroupField::Tags => ("tags", json!(s.tags)),
            };
            key.insert(name.to_string(), value);
        }
        let key = Value::Object(key);
        let text = key.to_string();
        match index.get(&text) {
            Some(&at) => groups[at].1.push(entry),
            None => {
                index.insert(text, groups.len());
                groups.push((key, vec![entry]));
            }
        }
    }
    if let Some(n) = latest {
        for (_, members) in &mut groups {
            let skip = members.len().saturating_sub(n);
            members.drain(..skip);
        }
    }
    groups
}
