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
        subset_percent: args.read_data_subset,
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
            eprintln!("error: {e}");
        }
        for d in &report.damaged {
            eprintln!(
                "damaged: snapshot {} /{}: {}",
                d.snapshot.short(),
                d.path.display(),
                d.problem
            );
        }
        for d in &report.damaged_logs {
            eprintln!(
                "damaged: log {}/{} segment {}: {}",
                d.account, d.stream, d.segment, d.problem
            );
        }
        let read = if opts.read_data {
            format!(", read {} packs", report.packs_read)
        } else {
            String::new()
        };
        if report.is_ok() {
            ctx.note(&format!(
                "no errors: {} snapshots, {} trees, {} packs, {} blobs{read}",
                report.snapshots, report.trees, report.packs, report.blobs
            ));
        } else {
            eprintln!(
                "cairn: check found {} errors affecting {} entries and {} log segments",
                report.errors.len(),
                report.damaged.len(),
                report.damaged_logs.len()
            );
        }
    }
    Ok(if report.is_ok() {
        exit::OK
    } else {
        exit::FATAL
    })
}
