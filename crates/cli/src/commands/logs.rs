//! `cairn log push|list|get|verify` and `cairn export archival`, plus the
//! segment delivery and apply steps of point-in-time restores.

use crate::cli::{ExportCommand, LogCommand};
use crate::context::Context;
use crate::exit;
use crate::output::{self, size};
use crate::progress::CliProgress;
use anyhow::{Context as _, Result, bail};
use cairn_repository::logs::{
    LogVerifyOptions, PushOutcome, Segment, gap_error, select_segments, unreadable_segment,
    verify_logs,
};
use cairn_repository::{Repository, RestoreOptions, RestoreSummary, Snapshot, restore};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Restore a snapshot for a point-in-time or archival restore: the contents
/// of its path when it has exactly one (a database directory), the whole
/// snapshot under absolute paths otherwise.
pub(crate) fn restore_snapshot(
    ctx: &Context,
    repo: &Repository,
    snap: &Snapshot,
    target: &Path,
) -> Result<RestoreSummary> {
    let sub = match snap.paths.as_slice() {
        [one] => Some(one.0.clone()),
        _ => None,
    };
    let progress = CliProgress::new(ctx.global.quiet, ctx.global.json);
    let summary = restore(
        repo,
        snap,
        sub.as_deref(),
        &RestoreOptions::new(target.to_path_buf()),
        &progress,
    )?;
    if !summary.errors.is_empty() {
        // Each was named as it happened ("not restoring ...").
        bail!(
            "{} of the snapshot could not be restored",
            crate::output::count(summary.errors.len() as u64, "entry", "entries")
        );
    }
    Ok(summary)
}

/// Write segments to `dir/<stream>/<name>`, in order. A segment that cannot
/// be read stops the delivery with the last point that can be reached.
pub fn deliver_segments(
    repo: &Repository,
    segments: &[Segment],
    dir: &Path,
    snapshot_time: jiff::Timestamp,
) -> Result<Vec<PathBuf>> {
    let (files, _) = deliver(repo, segments, dir, snapshot_time, false)?;
    Ok(files)
}

/// [`deliver_segments`]; with `skip_unreadable`, a segment that cannot be
/// read is left out and named in the second list instead.
fn deliver(
    repo: &Repository,
    segments: &[Segment],
    dir: &Path,
    snapshot_time: jiff::Timestamp,
    skip_unreadable: bool,
) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let mut out = Vec::with_capacity(segments.len());
    let mut skipped = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        let stream_dir = dir.join(&seg.manifest.stream);
        std::fs::create_dir_all(&stream_dir)
            .with_context(|| format!("creating {}", stream_dir.display()))?;
        let dest = stream_dir.join(&seg.manifest.name);
        let prev = i
            .checked_sub(1)
            .and_then(|p| segments.get(p))
            .filter(|p| p.manifest.stream == seg.manifest.stream);
        match write_segment(repo, seg, &dest) {
            Ok(_) => out.push(dest),
            Err(e) if skip_unreadable => skipped.push(format!(
                "segment {} of stream {} cannot be read ({e})",
                seg.manifest.name, seg.manifest.stream
            )),
            Err(e) => {
                return Err(unreadable_segment(
                    &seg.manifest.account,
                    prev,
                    snapshot_time,
                    seg,
                    &e,
                )
                .into());
            }
        }
    }
    Ok((out, skipped))
}

/// Write one segment atomically (temporary file, then rename).
fn write_segment(repo: &Repository, seg: &Segment, dest: &Path) -> cairn_repository::Result<u64> {
    let tmp = dest.with_extension("cairn-partial");
    let io = |e: std::io::Error| cairn_repository::Error::io(&tmp, e);
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    let written = match cairn_repository::logs::read_segment(repo, seg, &mut file) {
        Ok(n) => n,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, dest).map_err(io)?;
    Ok(written)
}

/// Run the apply command once per delivered segment, in order, inside the
/// target; `CAIRN_SEGMENT` and `CAIRN_TARGET` are absolute paths, so they
/// hold whatever directory the command changes to.
pub fn apply_segments(
    command: &str,
    segments: &[Segment],
    files: &[PathBuf],
    target: &Path,
) -> Result<usize> {
    let target = &std::path::absolute(target)
        .with_context(|| format!("the absolute path of {}", target.display()))?;
    for (i, (seg, file)) in segments.iter().zip(files).enumerate() {
        let file = &std::path::absolute(file)
            .with_context(|| format!("the absolute path of {}", file.display()))?;
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(target)
            .env("CAIRN_SEGMENT", file)
            .env("CAIRN_SEGMENT_NAME", &seg.manifest.name)
            .env("CAIRN_SEGMENT_SEQ", seg.manifest.seq.to_string())
            .env("CAIRN_STREAM", &seg.manifest.stream)
            .env("CAIRN_TARGET", target)
            .status()
            .with_context(|| {
                format!(
                    "running the apply command for segment {}",
                    seg.manifest.name
                )
            })?;
        if !status.success() {
            let reached = match i.checked_sub(1).and_then(|p| segments.get(p)) {
                Some(p) => format!(
                    "the snapshot plus segments up to {} (pushed {})",
                    p.manifest.name, p.manifest.pushed
                ),
                None => "the snapshot only".to_string(),
            };
            bail!(
                "applying segment {} (stream {}, sequence {}) failed with {status}; {} of {} segments were applied and the target holds {reached}",
                seg.manifest.name,
                seg.manifest.stream,
                seg.manifest.seq,
                i,
                segments.len()
            );
        }
    }
    Ok(segments.len())
}

fn segment_json(seg: &Segment) -> serde_json::Value {
    json!({
        "id": seg.id,
        "account": seg.manifest.account,
        "stream": seg.manifest.stream,
        "seq": seg.manifest.seq,
        "name": seg.manifest.name,
        "size": seg.manifest.size,
        "pushed": seg.manifest.pushed,
        "position": seg.manifest.position,
    })
}

/// Run a log subcommand.
pub fn run(ctx: &Context, cmd: &LogCommand) -> Result<u8> {
    match cmd {
        LogCommand::Push {
            account,
            stream,
            position,
            name,
            files,
        } => {
            cairn_repository::snapshot::validate_account(account)?;
            cairn_repository::logs::validate_stream(stream)?;
            let repo = ctx.open(false)?;
            let mut results = Vec::new();
            for file in files {
                let (seg_name, mut input): (String, Box<dyn std::io::Read>) = if file
                    == Path::new("-")
                {
                    let n = name
                        .clone()
                        .context("a segment read from standard input needs --name")?;
                    (n, Box::new(std::io::stdin().lock()))
                } else {
                    let n = match name {
                        Some(n) if files.len() == 1 => n.clone(),
                        Some(_) => bail!("--name applies to a single segment"),
                        None => file
                            .file_name()
                            .and_then(|f| f.to_str())
                            .with_context(|| format!("{} has no usable file name", file.display()))?
                            .to_string(),
                    };
                    let f = std::fs::File::open(file)
                        .with_context(|| format!("opening {}", file.display()))?;
                    (n, Box::new(f))
                };
                let outcome = cairn_repository::logs::push_segment(
                    &repo,
                    account,
                    stream,
                    &seg_name,
                    position.clone(),
                    &mut *input,
                )?;
                let (stored, seg) = match &outcome {
                    PushOutcome::Stored(s) => (true, s),
                    PushOutcome::AlreadyStored(s) => (false, s),
                };
                if !ctx.global.json {
                    ctx.say(&format!(
                        "{} segment {seg_name} of {account}/{stream} (sequence {}, {})",
                        if stored { "stored" } else { "already had" },
                        seg.manifest.seq,
                        size(seg.manifest.size)
                    ));
                }
                let mut v = segment_json(seg);
                v["stored"] = json!(stored);
                results.push(v);
            }
            if ctx.global.json {
                output::json(&results)?;
            }
        }
        LogCommand::List { account, stream } => {
            let repo = ctx.open(false)?;
            let segs = select_segments(&repo, account.as_deref(), stream.as_deref())?;
            if ctx.global.json {
                output::json(&segs.iter().map(segment_json).collect::<Vec<_>>())?;
            } else {
                let mut table = output::table(
                    &[
                        "account/stream",
                        "seq",
                        "pushed",
                        "size",
                        "segment",
                        "position",
                    ],
                    &[1, 3],
                );
                for s in &segs {
                    table.add_row(vec![
                        format!("{}/{}", s.manifest.account, s.manifest.stream),
                        s.manifest.seq.to_string(),
                        output::local_time(s.manifest.pushed),
                        size(s.manifest.size),
                        s.manifest.name.clone(),
                        s.manifest.position.clone().unwrap_or_default(),
                    ]);
                }
                if !segs.is_empty() {
                    output::print_table(&table);
                }
                ctx.say(&output::count(segs.len() as u64, "segment", "segments"));
            }
        }
        LogCommand::Get {
            account,
            stream,
            name,
            dest,
        } => {
            let repo = ctx.open(false)?;
            let segs = cairn_repository::logs::log_segments(&repo, account, stream)?;
            let Some(seg) = segs.iter().rev().find(|s| &s.manifest.name == name) else {
                // restore_command callers (PostgreSQL) take any non-zero
                // status as "not archived"; say so briefly.
                eprintln!("cairn: no segment {name} in stream {stream} of account {account}");
                return Ok(exit::FATAL);
            };
            let written = write_segment(&repo, seg, dest)?;
            if ctx.global.json {
                let mut v = segment_json(seg);
                v["written"] = json!(written);
                output::json(&v)?;
            }
        }
        LogCommand::Verify {
            account,
            stream,
            read_data,
        } => {
            let repo = ctx.open(false)?;
            let r = verify_logs(
                &repo,
                &LogVerifyOptions {
                    account: account.as_deref(),
                    stream: stream.as_deref(),
                    read_data: *read_data,
                },
            )?;
            let (problems, count) = (&r.problems, r.segments);
            if ctx.global.json {
                output::json(
                    &json!({ "streams": r.streams, "segments": count, "problems": problems }),
                )?;
            } else {
                for p in problems {
                    outln!("error: {p}");
                }
                if problems.is_empty() {
                    ctx.say(&format!(
                        "{} streams, {count} segments: chains unbroken, every chunk present",
                        r.streams
                    ));
                }
            }
            if !problems.is_empty() {
                return Ok(exit::FATAL);
            }
        }
    }
    Ok(exit::OK)
}

/// Export an archival backup.
pub fn export(ctx: &Context, cmd: &ExportCommand) -> Result<u8> {
    match cmd {
        ExportCommand::Archival {
            snapshot,
            target,
            logs_dir,
            allow_gaps,
            filter,
        } => {
            if logs_dir.is_absolute()
                || logs_dir
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                bail!("--logs-dir must be a relative path inside the target");
            }
            let repo = ctx.open(false)?;
            let (id, snap) = super::find_snapshot(&repo, snapshot, filter)?;
            let (all_snaps, _) = repo.snapshots()?;
            let all_segs = cairn_repository::logs::all_log_segments(&repo)?;
            let (segs, gaps) = cairn_repository::logs::segments_since_previous_snapshot(
                &repo, &snap, &all_segs, &all_snaps,
            );
            let since = cairn_repository::logs::previous_snapshot_time(&repo, &snap, &all_snaps)
                .unwrap_or(snap.time);
            if let (Some(gap), false) = (gaps.first(), *allow_gaps) {
                return Err(anyhow::Error::from(gap_error(&snap.account, since, gap)).context(
                    format!(
                        "the archival backup of snapshot {} would lack logs (--allow-gaps exports what exists)",
                        id.short()
                    ),
                ));
            }
            let summary = restore_snapshot(ctx, &repo, &snap, target)?;
            let (files, unreadable) =
                deliver(&repo, &segs, &target.join(logs_dir), since, *allow_gaps)?;
            let mut missing: Vec<String> = gaps
                .iter()
                .map(|g| {
                    format!(
                        "stream {}: before segment {}: {}",
                        g.stream, g.before, g.problem
                    )
                })
                .collect();
            missing.extend(unreadable);
            if ctx.global.json {
                output::json(&json!({
                    "snapshot": id,
                    "files": summary.files,
                    "segments": segs.iter().map(segment_json).collect::<Vec<_>>(),
                    "delivered": files.len(),
                    "missing": missing,
                }))?;
            } else {
                for m in &missing {
                    eprintln!("cairn: warning: missing from the archival backup: {m}");
                }
                ctx.note(&format!(
                    "archival backup of snapshot {} ({}): {} files and {} log segments in {}{}",
                    id.short(),
                    output::local_time(snap.time),
                    summary.files,
                    files.len(),
                    target.display(),
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; {} gaps or unreadable segments (see above)",
                            missing.len()
                        )
                    }
                ));
            }
            if !missing.is_empty() {
                return Ok(exit::INCOMPLETE);
            }
        }
    }
    Ok(exit::OK)
}
