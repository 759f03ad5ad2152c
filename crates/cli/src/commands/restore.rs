//! `cairn restore SNAP[:PATH] --target DIR`.

use crate::cli::RestoreArgs;
use crate::context::Context;
use crate::exit;
use crate::output::{self, size};
use crate::progress::CliProgress;
use anyhow::{Context as _, Result};
use cairn_repository::{RestoreOptions, restore};

/// Split `SNAP:PATH`.
fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((snap, path)) => (snap, Some(path)),
        None => (spec, None),
    }
}

/// Point-in-time restore: a snapshot plus the log segments after it.
fn point_in_time(ctx: &Context, args: &RestoreArgs) -> Result<u8> {
    let Some(account) = &args.filter.account else {
        anyhow::bail!("--until and --latest need --account");
    };
    if args.logs_dir.is_absolute()
        || args
            .logs_dir
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        anyhow::bail!("--logs-dir must be a relative path inside the target");
    }
    let repo = ctx.open(false)?;
    let forced = match &args.from_snapshot {
        Some(spec) => Some(super::find_snapshot(&repo, spec, &args.filter)?.0),
        None => None,
    };
    let filter = |s: &cairn_repository::Snapshot| args.filter.accepts(s);
    let point = cairn_repository::logs::point_in_time(
        &repo,
        account,
        &cairn_repository::logs::PointOptions {
            until: args.until,
            stream: args.stream.as_deref(),
            filter: &filter,
            snapshot: forced,
        },
    )?;
    let (id, snap) = &point.snapshot;
    if !ctx.global.quiet && !ctx.global.json {
        for s in &point.skipped {
            eprintln!(
                "cairn: passed over snapshot {} ({}): {}",
                s.id.short(),
                output::local_time(s.time),
                s.why
            );
        }
        if point.verdict == Some(cairn_repository::Verdict::Failed) {
            eprintln!(
                "cairn: warning: snapshot {} failed its verification; restoring it as asked",
                id.short()
            );
        }
    }
    let summary = super::logs::restore_snapshot(ctx, &repo, snap, &args.target)?;
    let files = super::logs::deliver_segments(
        &repo,
        &point.segments,
        &args.target.join(&args.logs_dir),
        snap.time,
    )?;
    let applied = match &args.apply_command {
        Some(cmd) => Some(super::logs::apply_segments(
            cmd,
            &point.segments,
            &files,
            &args.target,
        )?),
        None => None,
    };
    let last = point.segments.last();
    if ctx.global.json {
        // One shape for both restores: `logs` is null without --until
        // or --latest.
        output::json(&serde_json::json!({
            "snapshot": id,
            "snapshot_time": snap.time,
            "target": args.target,
            "summary": summary,
            "logs": {
                "segments": point.segments.len(),
                "first_segment": point.segments.first().map(|s| &s.manifest.name),
                "last_segment": last.map(|s| &s.manifest.name),
                "reached": last.map_or(snap.time, |s| s.manifest.pushed),
                "applied": applied,
                "passed_over": point.skipped,
            },
        }))?;
    } else if !ctx.global.quiet {
        outln!(
            "restored snapshot {} ({}) into {}: {} files",
            id.short(),
            output::local_time(snap.time),
            args.target.display(),
            summary.files
        );
        match last {
            Some(l) => outln!(
                "delivered {} log segments into {} ({} to {}, pushed up to {}){}",
                point.segments.len(),
                args.target.join(&args.logs_dir).display(),
                point.segments[0].manifest.name,
                l.manifest.name,
                output::local_time(l.manifest.pushed),
                applied
                    .map(|n| format!("; applied {n}"))
                    .unwrap_or_default()
            ),
            None => {
                outln!("no log segments were pushed after the snapshot up to the target time")
            }
        }
    }
    Ok(exit::OK)
}

/// Restore a snapshot, a folder or one file.
pub fn run(ctx: &Context, args: &RestoreArgs) -> Result<u8> {
    if args.until.is_some() || args.latest {
        return point_in_time(ctx, args);
    }
    if args.apply_command.is_some() || args.stream.is_some() || args.from_snapshot.is_some() {
        anyhow::bail!("--apply-command, --stream and --snapshot go with --until or --latest");
    }
    let Some(spec_arg) = &args.snapshot else {
        anyhow::bail!("give a snapshot, or --until/--latest with --account");
    };
    let (spec, path) = split_spec(spec_arg);
    let mut opts = RestoreOptions::new(args.target.clone());
    opts.include = args.include.clone();
    opts.iinclude = args.iinclude.clone();
    opts.exclude = args.exclude.clone();
    opts.iexclude = args.iexclude.clone();
    opts.verify = args.verify;
    let repo = ctx.open(false)?;
    let (id, snap) = super::find_snapshot(&repo, spec, &args.filter)?;
    // A path the snapshot does not hold fails before the target exists.
    if let Some(p) = path
        && !p.trim_matches('/').is_empty()
        && cairn_repository::browse::find_node(&repo, &snap.tree, p.as_bytes())?.is_none()
    {
        return Err(super::missing_path(&repo, &id, &snap, p));
    }
    let progress = CliProgress::new(ctx.global.quiet, ctx.global.json);
    let summary = restore(&repo, &snap, path.map(str::as_bytes), &opts, &progress)
        .with_context(|| format!("restoring snapshot {}", id.short()))?;
    if ctx.global.json {
        output::json(&serde_json::json!({
            "snapshot": id,
            "snapshot_time": snap.time,
            "target": args.target,
            "summary": summary,
            "logs": null,
        }))?;
    } else if !ctx.global.quiet {
        outln!(
            "restored snapshot {} into {}: {} files, {} directories, {} other entries, {}{}",
            id.short(),
            args.target.display(),
            summary.files,
            summary.dirs,
            summary.other,
            size(summary.bytes),
            if args.verify {
                format!("; {} files verified", summary.verified)
            } else {
                String::new()
            }
        );
        for s in &summary.skipped {
            eprintln!("cairn: skipped /{}: {}", s.path.display(), s.reason);
        }
    }
    if !summary.errors.is_empty() {
        // Each was named as it happened ("not restoring ...").
        eprintln!(
            "cairn: error: {} could not be restored",
            crate::output::count(summary.errors.len() as u64, "entry", "entries")
        );
        return Ok(exit::FATAL);
    }
    Ok(exit::OK)
}
