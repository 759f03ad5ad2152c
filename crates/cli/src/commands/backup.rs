//! `cairn backup`.

use crate::cli::BackupArgs;
use crate::context::Context;
use crate::exit;
use crate::output::{self, size};
use crate::progress::CliProgress;
use anyhow::{Context as _, Result};
use cairn_repository::exclude::Excludes;
use cairn_repository::{BackupOptions, ParentChoice, backup, snapshot};

/// Back up paths into a new snapshot.
pub fn run(ctx: &Context, args: &BackupArgs) -> Result<u8> {
    snapshot::validate_account(&args.account)?;
    for t in &args.tags {
        snapshot::validate_tag(t)?;
    }
    let mut opts = BackupOptions::new(args.paths.clone());
    opts.account = args.account.clone();
    opts.tags = args.tags.clone();
    if let Some(h) = &args.host {
        opts.host = h.clone();
    }
    if let Some(t) = args.time
        && t > jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24)
        && !args.allow_future_time
    {
        anyhow::bail!(
            "--time {t} is more than a day ahead of this machine's clock; retention would count it as the newest snapshot (--allow-future-time records it anyway)"
        );
    }
    opts.time = args.time;
    opts.excludes = args.excludes.clone();
    opts.iexcludes = args.iexcludes.clone();
    for f in &args.exclude_files {
        opts.excludes.extend(Excludes::read_pattern_file(f)?);
    }
    Excludes::with_insensitive(&opts.excludes, &opts.iexcludes, args.exclude_caches)?;
    opts.exclude_caches = args.exclude_caches;

    let repo = ctx.open(true)?;
    opts.parent = if args.force {
        ParentChoice::None
    } else if let Some(p) = &args.parent {
        let (id, _) = super::find_snapshot(&repo, p, &Default::default())?;
        ParentChoice::Snapshot(id)
    } else {
        ParentChoice::Auto
    };
    // SIGTERM or Ctrl-C stops at a safe point (the service relies on
    // this); a second one ends the process at once, which is safe too.
    opts.cancel = Some(crate::signals::stop_requested()?);
    let progress = CliProgress::new(ctx.global.quiet, ctx.global.json).listing_files(
        if ctx.global.json || ctx.global.quiet {
            0
        } else {
            ctx.global.verbose
        },
    );
    let outcome = backup(&repo, &opts, &progress).context("backup failed")?;
    let s = &outcome.snapshot.summary;
    if ctx.global.json {
        output::json(&cairn_protocol::report::BackupReport {
            id: outcome.id.to_hex(),
            short_id: outcome.id.short(),
            parent: outcome.snapshot.parent.map(|p| p.to_hex()),
            adopted_packs: outcome.adopted_packs as u64,
            lost_packs: outcome.lost_packs.iter().map(|p| p.to_hex()).collect(),
            summary: serde_json::from_value(serde_json::to_value(s)?)?,
        })?;
    } else if !ctx.global.quiet {
        if outcome.adopted_packs > 0 {
            eprintln!(
                "cairn: reused {} packs left by an interrupted backup",
                outcome.adopted_packs
            );
        }
        outln!(
            "snapshot {} saved ({} account, {})",
            outcome.id.short(),
            outcome.snapshot.account,
            output::local_time(outcome.snapshot.time)
        );
        outln!(
            "files: {} new, {} changed, {} unchanged; {}, {}",
            s.files_new,
            s.files_changed,
            s.files_unmodified,
            output::count(s.dirs, "directory", "directories"),
            output::count(s.other_entries, "other entry", "other entries")
        );
        outln!(
            "read {} of {}; added {} ({} before compression) in {} blobs; took {:.1}s",
            size(s.bytes_read),
            size(s.bytes_total),
            size(s.bytes_added),
            size(s.raw_bytes_added),
            s.blobs_added,
            s.duration_secs
        );
    }
    if s.changed_during_read_count > 0 && !ctx.global.quiet {
        eprintln!(
            "cairn: warning: {} changed while being read (listed in the snapshot summary)",
            output::count(s.changed_during_read_count, "file", "files")
        );
    }
    if s.unreadable_count > 0 {
        // Kept under -q: the snapshot lacks these.
        eprintln!(
            "cairn: warning: {} could not be read and {} not in the snapshot (exit status 3)",
            output::count(s.unreadable_count, "entry", "entries"),
            if s.unreadable_count == 1 { "is" } else { "are" }
        );
        return Ok(exit::INCOMPLETE);
    }
    Ok(exit::OK)
}
