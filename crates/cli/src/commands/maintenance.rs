//! `cairn stats`, `unlock`, `index rebuild` and `repair index`.

use crate::cli::{IndexCommand, RepairCommand, UnlockArgs};
use crate::context::Context;
use crate::output::{self, size};
use anyhow::Result;
use cairn_repository::{lock, repair_index, stats as repo_stats};

/// Repository size figures.
pub fn stats(ctx: &Context) -> Result<u8> {
    let repo = ctx.open(false)?;
    let s = repo_stats(&repo)?;
    if ctx.global.json {
        output::json(&s)?;
    } else {
        outln!("snapshots:          {}", s.snapshots);
        outln!("packs:              {} ({})", s.packs, size(s.pack_bytes));
        outln!(
            "blobs:              {} data, {} tree",
            s.data_blobs,
            s.tree_blobs
        );
        outln!(
            "unique data:        {} ({} stored)",
            size(s.raw_bytes),
            size(s.stored_bytes)
        );
        outln!("all snapshots hold: {}", size(s.snapshot_bytes));
        outln!("deduplication:      {:.2}x", s.dedup_ratio);
        outln!("compression:        {:.2}x", s.compression_ratio);
    }
    Ok(crate::exit::OK)
}

/// Remove stale locks (or all).
pub fn unlock(ctx: &Context, args: &UnlockArgs) -> Result<u8> {
    let repo = ctx.open(false)?;
    let removed = lock::unlock(repo.store(), repo.keys(), args.remove_all)?;
    if ctx.global.json {
        let rows: Vec<_> = removed
            .iter()
            .map(|(id, why)| serde_json::json!({ "id": id, "lock": why }))
            .collect();
        output::json(&rows)?;
    } else {
        for (_, why) in &removed {
            ctx.say(&format!("removed {why}"));
        }
        ctx.say(&format!(
            "{} removed",
            output::count(removed.len() as u64, "lock", "locks")
        ));
    }
    Ok(crate::exit::OK)
}

/// Rebuild the local index cache.
pub fn index(ctx: &Context, cmd: &IndexCommand) -> Result<u8> {
    match cmd {
        IndexCommand::Rebuild => {
            let repo = ctx.open(false)?;
            let report = repo.rebuild_index_cache()?;
            for (id, e) in &report.unreadable {
                eprintln!("warning: index object {} unreadable: {e}", id.short());
            }
            let blobs = repo.index()?.blob_count()?;
            if ctx.global.json {
                output::json(&serde_json::json!({
                    "index_objects": report.loaded, "blobs": blobs,
                    "unreadable": report.unreadable.len(),
                }))?;
            } else {
                ctx.say(&format!(
                    "index cache rebuilt from {} index objects: {blobs} blobs",
                    report.loaded
                ));
            }
        }
    }
    Ok(crate::exit::OK)
}

/// Repair the repository.
pub fn repair(ctx: &Context, cmd: &RepairCommand) -> Result<u8> {
    match cmd {
        RepairCommand::Index => {
            let repo = ctx.open(false)?;
            let report = repair_index(&repo)?;
            if ctx.global.json {
                output::json(&report)?;
            } else {
                for (pack, e) in &report.unreadable_packs {
                    eprintln!("warning: pack {} left out: {e}", &pack[..8]);
                }
                ctx.say(&format!(
                    "index rebuilt from {} packs ({} blobs); {} blobs forgotten; {} index objects written, {} removed",
                    report.packs,
                    report.blobs,
                    report.blobs_forgotten,
                    report.indexes_written,
                    report.indexes_removed
                ));
            }
        }
    }
    Ok(crate::exit::OK)
}
