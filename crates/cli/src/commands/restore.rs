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

/// Restore a snapshot, a folder or one file.
pub fn run(ctx: &Context, args: &RestoreArgs) -> Result<u8> {
    let (spec, path) = split_spec(&args.snapshot);
    let mut opts = RestoreOptions::new(args.target.clone());
    opts.include = args.include.clone();
    opts.verify = args.verify;
    let repo = ctx.open(false)?;
    let (id, snap) = super::find_snapshot(&repo, spec, &args.filter)?;
    let progress = CliProgress::new(ctx.global.quiet, ctx.global.json);
    let summary = restore(&repo, &snap, path.map(str::as_bytes), &opts, &progress)
        .with_context(|| format!("restoring snapshot {}", id.short()))?;
    if ctx.global.json {
        output::json(&serde_json::json!({ "snapshot": id, "summary": summary }))?;
    } else if !ctx.global.quiet {
        println!(
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
            eprintln!("skipped /{}: {}", s.path.display(), s.reason);
        }
    }
    if !summary.errors.is_empty() {
        if !ctx.global.quiet {
            for e in &summary.errors {
                eprintln!("error: /{}: {}", e.path.display(), e.reason);
            }
            eprintln!(
                "cairn: {} entries could not be restored",
                summary.errors.len()
            );
        }
        return Ok(exit::FATAL);
    }
    Ok(exit::OK)
}
