//! `cairn stats`, `unlock`, `cache rebuild|cleanup`, `repair index` and
//! `version`.

use crate::cli::{CacheCommand, RepairCommand, StatsArgs, StatsMode, UnlockArgs};
use crate::context::Context;
use crate::output::{self, size};
use anyhow::Result;
use cairn_repository::{lock, repair_index, stats as repo_stats};

/// Figures for some snapshots (`stats SNAPSHOT… --mode`).
fn snapshot_stats(ctx: &Context, args: &StatsArgs) -> Result<u8> {
    let repo = ctx.open(false)?;
    let chosen: Vec<cairn_repository::Snapshot> = if args.snapshots.is_empty() {
        let (snaps, _) = args.filter.candidates(&repo)?;
        snaps
            .into_iter()
            .filter(|(_, s)| args.filter.accepts(s))
            .map(|(_, s)| s)
            .collect()
    } else {
        let mut v = Vec::new();
        for spec in &args.snapshots {
            v.push(super::find_snapshot(&repo, spec, &args.filter)?.1);
        }
        v
    };
    let mode = args.mode.unwrap_or(StatsMode::RestoreSize);
    let s = cairn_repository::snapshot_stats(&repo, &chosen)?;
    if ctx.global.json {
        let mut v = serde_json::to_value(&s)?;
        v["mode"] = serde_json::json!(match mode {
            StatsMode::RestoreSize => "restore-size",
            StatsMode::RawData => "raw-data",
        });
        output::json(&v)?;
        return Ok(crate::exit::OK);
    }
    outln!(
        "{}",
        output::count(s.snapshots as u64, "snapshot", "snapshots")
    );
    match mode {
        StatsMode::RestoreSize => {
            outln!("files:        {}", s.files);
            outln!("restore size: {}", size(s.restore_size));
        }
        StatsMode::RawData => {
            outln!("blobs:        {} data, {} tree", s.data_blobs, s.tree_blobs);
            outln!("raw data:     {}", size(s.raw_bytes));
            outln!("stored:       {}", size(s.stored_bytes));
            if s.stored_bytes > 0 {
                outln!(
                    "compression:  {:.2}x",
                    s.raw_bytes as f64 / s.stored_bytes as f64
                );
            }
        }
    }
    if s.missing_blobs > 0 {
        eprintln!(
            "cairn: warning: {} the index does not list (run `cairn check`)",
            output::count(s.missing_blobs, "referenced blob", "referenced blobs")
        );
    }
    Ok(crate::exit::OK)
}

/// Repository size figures.
pub fn stats(ctx: &Context, args: &StatsArgs) -> Result<u8> {
    if !args.snapshots.is_empty() || args.mode.is_some() {
        return snapshot_stats(ctx, args);
    }
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
    repo.require_delete_rights(if args.remove_all {
        "unlock --remove-all"
    } else {
        "unlock"
    })?;
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

/// The version, the commit and the format versions this build reads.
pub fn version(ctx: &Context) -> Result<u8> {
    use cairn_repository::{config, snapshot};
    let version = env!("CARGO_PKG_VERSION");
    let commit = env!("CAIRN_COMMIT");
    let formats = serde_json::json!({
        "repository": config::FORMAT_VERSION,
        "snapshot": snapshot::SNAPSHOT_VERSION,
        "tree": cairn_repository::tree::TREE_VERSION,
        "index": cairn_repository::index::INDEX_VERSION,
        "key_file": cairn_repository::keyfile::KEY_FILE_VERSION,
    });
    if ctx.global.json {
        output::json(&serde_json::json!({
            "version": version,
            "commit": commit,
            "formats": formats,
        }))?;
    } else {
        outln!("cairn {version} (commit {commit})");
        outln!(
            "reads repository format {}, snapshots {}, trees {}, indexes {}, key files {}",
            formats["repository"],
            formats["snapshot"],
            formats["tree"],
            formats["index"],
            formats["key_file"]
        );
    }
    Ok(crate::exit::OK)
}

/// Remove caches (directories named by a repository id) whose index was
/// not opened within `max_age`.
fn cleanup(ctx: &Context, max_age: std::time::Duration, dry_run: bool) -> Result<u8> {
    use anyhow::Context as _;
    let cairn_repository::CacheLocation::Directory(dir) = ctx.cache()? else {
        ctx.say("no cache directory (--no-cache): nothing to clean up");
        return Ok(crate::exit::OK);
    };
    let now = std::time::SystemTime::now();
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            ctx.say(&format!(
                "{} does not exist: nothing to clean up",
                dir.display()
            ));
            return Ok(crate::exit::OK);
        }
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Only what cairn made: 64 hex digits, a directory.
        if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let used = std::fs::metadata(path.join("index.redb"))
            .or_else(|_| std::fs::metadata(&path))
            .and_then(|m| m.modified())
            .with_context(|| format!("reading {}", path.display()))?;
        let age = now.duration_since(used).unwrap_or_default();
        if age > max_age {
            if !dry_run {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
            removed.push(serde_json::json!({
                "path": path.display().to_string(),
                "unused_for": cairn_protocol::duration::format_duration(age),
            }));
        }
    }
    if ctx.global.json {
        output::json(&serde_json::json!({ "dry_run": dry_run, "removed": removed }))?;
    } else {
        for r in &removed {
            ctx.say(&format!(
                "{} {} (unused for {})",
                if dry_run { "would remove" } else { "removed" },
                r["path"].as_str().unwrap_or_default(),
                r["unused_for"].as_str().unwrap_or_default()
            ));
        }
        ctx.say(&format!(
            "{} {}",
            output::count(removed.len() as u64, "cache", "caches"),
            if dry_run {
                "would be removed"
            } else {
                "removed"
            }
        ));
    }
    Ok(crate::exit::OK)
}

/// The local index cache: rebuild it, or clean old ones up.
pub fn cache(ctx: &Context, cmd: &CacheCommand) -> Result<u8> {
    match cmd {
        CacheCommand::Cleanup { max_age, dry_run } => return cleanup(ctx, *max_age, *dry_run),
        CacheCommand::Rebuild => {
            let repo = ctx.open(false)?;
            let report = repo.rebuild_index_cache()?;
            for (id, e) in &report.unreadable {
                eprintln!(
                    "cairn: warning: index object {} unreadable: {e}",
                    id.short()
                );
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
                    eprintln!("cairn: warning: pack {} left out: {e}", &pack[..8]);
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
