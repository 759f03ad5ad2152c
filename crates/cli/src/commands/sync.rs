//! `cairn sync --to URL | --from URL [--delete [--delete-after D]] [--verify | --repair]`.

use crate::cli::SyncArgs;
use crate::context::Context;
use crate::exit;
use crate::output::{self, size};
use crate::progress::CliProgress;
use anyhow::{Context as _, Result};
use cairn_remote_sync::{Source, SyncOptions, repair, sync, verify};

/// Sync or verify.
pub fn run(ctx: &Context, args: &SyncArgs) -> Result<u8> {
    let progress = CliProgress::new(ctx.global.quiet, ctx.global.json);
    let opts = SyncOptions {
        delete: args.delete,
        delete_after: args.delete_after,
        concurrency: args.concurrency.max(1),
        multipart_threshold: args.multipart_threshold,
        part_size: usize::try_from(args.part_size).context("--part-size is too large")?,
        dry_run: args.dry_run,
        // SIGTERM or Ctrl-C: finish the transfers in flight and stop.
        cancel: Some(crate::signals::stop_requested()?),
    };
    if args.verify || args.repair {
        let (src, dst) = match (&args.to, &args.from) {
            (Some(to), _) => (ctx.store(false)?, ctx.store_at(to, false)?),
            (_, Some(from)) => (ctx.store_at(from, false)?, ctx.store(false)?),
            _ => anyhow::bail!("give --to or --from"),
        };
        let mut report = verify(&src, &dst, args.concurrency, &progress)?;
        if args.repair && !report.to_repair.is_empty() {
            report.repaired = repair(&src, &dst, &report, &opts, &progress)?;
        }
        if ctx.global.json {
            output::json(&report)?;
        } else {
            for m in &report.missing {
                outln!("missing on {}: {m}", dst.location());
            }
            for (path, why) in &report.corrupt {
                outln!("corrupt on {}: {path}: {why}", dst.location());
            }
            for e in &report.extra {
                ctx.say(&format!("extra on {}: {e}", dst.location()));
            }
            ctx.say(&format!(
                "{} objects read on {} ({}): {} missing, {} corrupt, {} extra{}",
                report.checked,
                dst.location(),
                size(report.bytes_read),
                report.missing.len(),
                report.corrupt.len(),
                report.extra.len(),
                if args.repair {
                    format!("; {} sent again", report.repaired)
                } else {
                    String::new()
                }
            ));
        }
        let repaired = args.repair && report.repaired as usize == report.to_repair.len();
        return Ok(if report.is_ok() || repaired {
            exit::OK
        } else {
            exit::FATAL
        });
    }
    // Copying needs only the objects; deleting needs the repository (its
    // lock and index), hence the password.
    let (src_store, dest) = match (&args.to, &args.from) {
        (Some(to), _) => (ctx.store(false)?, ctx.store_at(to, true)?),
        (_, Some(from)) => (ctx.store_at(from, false)?, ctx.store(true)?),
        _ => anyhow::bail!("give --to or --from"),
    };
    let location = src_store.location().to_string();
    let repo;
    let source = if args.delete {
        repo = ctx.open_store(src_store).context(
            "--delete needs the source repository's password (to lock it and read its index)",
        )?;
        Source::Repository(&repo)
    } else {
        if !src_store.has_config()? {
            return Err(cairn_repository::Error::NoRepository(location).into());
        }
        Source::Store(&src_store)
    };
    let report = sync(source, &dest, &opts, &progress)
        .with_context(|| format!("sync from {location} to {}", dest.location()))?;
    if ctx.global.json {
        output::json(&report)?;
    } else if !ctx.global.quiet {
        let copied = report.copied_total();
        let rate = copied.bytes as f64 / report.duration_secs.max(1e-3);
        let parts: Vec<String> = report
            .copied
            .iter()
            .map(|(k, c)| format!("{} {k}", c.objects))
            .collect();
        outln!(
            "{} {} objects ({}) to {} in {:.1}s ({}/s){}; {} objects already there",
            if report.dry_run {
                "would copy"
            } else {
                "copied"
            },
            copied.objects,
            size(copied.bytes),
            dest.location(),
            report.duration_secs,
            size(rate as u64),
            if parts.is_empty() {
                String::new()
            } else {
                format!(": {}", parts.join(", "))
            },
            report.present.objects
        );
        if report.resent > 0 {
            outln!(
                "{} uploads failed verification and were sent again",
                report.resent
            );
        }
        if args.delete {
            let deleted = report.deleted_total();
            outln!(
                "{} {} objects ({}) the source no longer has{}",
                if report.dry_run {
                    "would delete"
                } else {
                    "deleted"
                },
                deleted.objects,
                size(deleted.bytes),
                if report.pending_deletions > 0 {
                    format!(
                        "; {} more wait for their grace period",
                        report.pending_deletions
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    Ok(exit::OK)
}
