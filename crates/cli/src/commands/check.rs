//! `cairn check`.

use crate::cli::CheckArgs;
use crate::context::Context;
use crate::exit;
use crate::output;
use crate::progress::CliProgress;
use anyhow::Result;
use cairn_repository::{CheckOptions, check};

/// Check the repository; exit 1 when anything is wrong.
pub fn run(ctx: &Context, args: &CheckArgs) -> Result<u8> {
    let repo = ctx.open(false)?;
    let opts = CheckOptions {
        read_data: args.read_data || args.read_data_subset.is_some(),
        subset: args.read_data_subset,
    };
    let progress = CliProgress::new(ctx.global.quiet, ctx.global.json);
    let report = check(&repo, &opts, &progress)?;
    if ctx.global.json {
        output::json(&report)?;
    } else {
        for w in &report.warnings {
            ctx.note(&format!("warning: {w}"));
        }
        for e in &report.errors {
            outln!("error: {e}");
        }
        for d in &report.damaged {
            outln!(
                "damaged: snapshot {} /{}: {}",
                d.snapshot.short(),
                d.path.display(),
                d.problem
            );
        }
        for d in &report.damaged_logs {
            outln!(
                "damaged: log {}/{} segment {}: {}",
                d.account,
                d.stream,
                d.segment,
                d.problem
            );
        }
        let read = if opts.read_data {
            format!(", read {} packs", report.packs_read)
        } else {
            String::new()
        };
        if report.is_ok() {
            ctx.say(&format!(
                "no errors: {}, {}, {}, {}{read}",
                output::count(report.snapshots as u64, "snapshot", "snapshots"),
                output::count(report.trees as u64, "tree", "trees"),
                output::count(report.packs as u64, "pack", "packs"),
                output::count(report.blobs as u64, "blob", "blobs"),
            ));
        } else {
            outln!(
                "check found {}; damaged: {}, {}",
                output::count(report.errors.len() as u64, "error", "errors"),
                output::count(report.damaged.len() as u64, "entry", "entries"),
                output::count(
                    report.damaged_logs.len() as u64,
                    "log segment",
                    "log segments"
                ),
            );
        }
    }
    Ok(if report.is_ok() {
        exit::OK
    } else {
        exit::FATAL
    })
}
