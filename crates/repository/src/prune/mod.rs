//! `prune`: delete what no snapshot needs.
//!
//! Mark and sweep. Mark: every blob reachable from a snapshot's tree, and
//! every chunk of a log segment, is used. Sweep: packs with no used blob are deleted; packs with much unused
//! space are repacked (their used blobs copied, still encrypted, into new
//! packs) until the unused share is below `max_unused_percent`; the index is
//! rewritten to cover exactly the packs that stay.
//!
//! Safety:
//! - prune holds the **exclusive lock** for its whole run, so no backup can
//!   be adding references to blobs it is about to delete; a backup that
//!   started first makes prune fail (or wait, with `--retry-lock`) instead.
//! - prune refuses to run on a repository whose index objects or snapshots
//!   cannot be read, or where a used blob is missing: then nobody can tell
//!   what is in use.
//! - **crash safety** comes from the order of the steps. At every instant
//!   every used blob is in a pack that exists and that an index object
//!   lists:
//!   1. repacked blobs are uploaded to new packs and indexed;
//!   2. new index objects for the packs that stay are written;
//!   3. the old index objects are deleted;
//!   4. the packs that go are deleted (they are unindexed by now; an
//!      interrupted run leaves them as orphans that the next prune deletes).
//!
//!   Killing prune at any point leaves a repository that `check
//!   --read-data` passes; the next prune finishes the job.

use crate::crypto;
use crate::error::{Error, Result};
use crate::id::{ID_LEN, IndexId, PackId};
use crate::index::{IndexFile, IndexedPack};
use crate::inventory::Inventory;
use crate::lock::LockGuard;
use crate::pack::{self, PackEntry};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::store::ObjectKind;
use crate::util::failpoint;
use crate::writer::BlobWriter;
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

/// Blobs per index object written by prune.
const BLOBS_PER_INDEX: usize = 100_000;
/// Staging files left by killed uploads are removed once this old.
const STAGING_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// How hard to prune.
#[derive(Debug, Clone, Copy)]
pub struct PruneOptions {
    /// Repack until unused space is at most this share of what stays.
    pub max_unused_percent: f64,
    /// Repack at most this many bytes of packs (`None`: no limit).
    pub max_repack_bytes: Option<u64>,
    /// Only compute and report the plan.
    pub dry_run: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            max_unused_percent: 5.0,
            max_repack_bytes: None,
            dry_run: false,
        }
    }
}

/// What prune will do (or did).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    /// Whether anything was changed.
    pub dry_run: bool,
    /// Snapshots whose data is kept.
    pub snapshots: usize,
    /// Log segments whose data is kept.
    pub log_segments: usize,
    /// Packs before.
    pub packs_before: usize,
    /// Bytes of packs before.
    pub bytes_before: u64,
    /// Blobs in use.
    pub blobs_used: usize,
    /// Blobs (distinct) before.
    pub blobs_before: usize,
    /// Packs with nothing in use: deleted.
    pub packs_deleted: usize,
    /// Their bytes.
    pub bytes_deleted: u64,
    /// Packs rewritten to drop unused blobs.
    pub packs_repacked: usize,
    /// Their bytes.
    pub bytes_repacked: u64,
    /// Bytes of used blobs copied into new packs.
    pub bytes_copied: u64,
    /// New packs written by repacking.
    pub packs_written: u64,
    /// Packs no index listed, whose header was read and which were indexed
    /// (left by interrupted runs).
    pub orphans_adopted: usize,
    /// Orphan packs whose header could not be read: deleted.
    pub orphans_unreadable: usize,
    /// Staging files of killed uploads removed (local repositories).
    pub staging_files_removed: usize,
    /// Unused bytes left in packs that stay.
    pub unused_bytes_after: u64,
    /// Bytes of packs after.
    pub bytes_after: u64,
    /// Index objects written.
    pub index_objects_written: usize,
    /// Index objects removed.
    pub index_objects_removed: usize,
}

impl PruneReport {
    /// Bytes freed.
    pub fn bytes_reclaimed(&self) -> u64 {
        self.bytes_before.saturating_sub(self.bytes_after)
    }
}

/// The packs and decisions behind a report.
struct Plan {
    report: PruneReport,
    inventory: Inventory,
    /// Used blob -> the one present pack it is kept in.
    home: HashMap<[u8; ID_LEN], PackId>,
    /// Packs that stay as they are.
    keep: Vec<PackId>,
    /// Packs whose used blobs are copied out, then deleted.
    repack: Vec<PackId>,
    /// Packs deleted outright.
    delete: Vec<PackId>,
    staging: Vec<PathBuf>,
}

fn plan(repo: &Repository, opts: &PruneOptions, progress: &dyn Progress) -> Result<Plan> {
    progress.phase("prune: index", None);
    let mut inventory = Inventory::load(repo)?;
    if !inventory.errors.is_empty() {
        return Err(Error::corrupt(
            "the index",
            format!(
                "{}; run `cairn repair index` before pruning",
                inventory.errors.join("; ")
            ),
        ));
    }
    let listing = repo.store().list(ObjectKind::Pack)?;
    let present: HashMap<PackId, u64> = listing
        .objects
        .iter()
        .filter_map(|o| PackId::from_hex(&o.name).ok().map(|id| (id, o.size)))
        .collect();

    // Orphans: adopt what can be read, delete what cannot.
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        ..PruneReport::default()
    };
    let orphans: Vec<(PackId, u64)> = present
        .iter()
        .filter(|(id, _)| !inventory.packs.contains_key(id))
        .map(|(id, size)| (*id, *size))
        .collect();
    let headers: Vec<(PackId, u64, Result<Vec<PackEntry>>)> = orphans
        .par_iter()
        .map(|(id, size)| {
            (
                *id,
                *size,
                pack::read_header(repo.store(), repo.keys(), id, *size),
            )
        })
        .collect();
    let mut delete = Vec::new();
    for (id, size, header) in headers {
        match header {
            Ok(blobs) => {
                inventory.add_pack(id, size, blobs);
                report.orphans_adopted += 1;
            }
            Err(e) => {
                tracing::warn!(
                    "orphan pack {} is unreadable ({e}); deleting it",
                    id.short()
                );
                report.orphans_unreadable += 1;
                delete.push(id);
            }
        }
    }

    // Mark.
    progress.phase("prune: mark", None);
    let (snapshots, unreadable) = repo.snapshots()?;
    if let Some((id, e)) = unreadable.first() {
        return Err(Error::corrupt(
            format!("snapshot {}", id.short()),
            format!("{e}; prune cannot tell what it uses (remove it or repair it first)"),
        ));
    }
    report.snapshots = snapshots.len();
    let roots: Vec<_> = snapshots.iter().map(|(id, s)| (*id, s.tree)).collect();
    let mut used = inventory.used_blobs(repo, &roots)?;
    // Log segments hold data no snapshot references.
    let segments = repo.all_log_segments().map_err(|e| {
        Error::corrupt(
            "the log segments",
            format!("{e}; prune cannot tell what they use"),
        )
    })?;
    report.log_segments = segments.len();
    for seg in &segments {
        used.extend(seg.manifest.chunks.iter().map(|c| *c.as_bytes()));
    }
    report.blobs_used = used.len();
    report.blobs_before = inventory.blobs.len();

    // Each used blob lives on in one present pack.
    let mut packs_sorted: Vec<PackId> = inventory
        .packs
        .keys()
        .filter(|p| present.contains_key(p))
        .copied()
        .collect();
    packs_sorted.sort();
    let mut home: HashMap<[u8; ID_LEN], PackId> = HashMap::with_capacity(used.len());
    for p in &packs_sorted {
        for b in &inventory.packs[p].blobs {
            if used.contains(&b.id) {
                home.entry(b.id).or_insert(*p);
            }
        }
    }
    let missing = used.iter().filter(|b| !home.contains_key(*b)).count();
    if missing > 0 {
        return Err(Error::corrupt(
            "the repository",
            format!(
                "{missing} blobs that snapshots use are in no existing pack; run `cairn check`, then `cairn repair index` and a new backup, before pruning"
            ),
        ));
    }

    // Sweep: classify packs.
    report.packs_before = present.len();
    report.bytes_before = present.values().sum();
    let mut partial: Vec<(PackId, u64, u64)> = Vec::new(); // id, used, unused
    let mut keep = Vec::new();
    let mut unused_total = 0u64;
    let mut used_total = 0u64;
    for p in &packs_sorted {
        let info = &inventory.packs[p];
        let mut used_bytes = 0u64;
        let mut unused_bytes = 0u64;
        for b in &info.blobs {
            if home.get(&b.id) == Some(p) {
                used_bytes += u64::from(b.length);
            } else {
                unused_bytes += u64::from(b.length);
            }
        }
        if used_bytes == 0 {
            delete.push(*p);
            report.packs_deleted += 1;
            report.bytes_deleted += info.size;
        } else if unused_bytes == 0 {
            keep.push(*p);
            used_total += used_bytes;
        } else {
            partial.push((*p, used_bytes, unused_bytes));
            used_total += used_bytes;
            unused_total += unused_bytes;
        }
    }
    // Repack the emptiest packs first, until the unused share is small
    // enough or the repack budget is spent.
    partial.sort_by(|a, b| {
        let ra = a.2 as f64 / (a.1 + a.2) as f64;
        let rb = b.2 as f64 / (b.1 + b.2) as f64;
        rb.total_cmp(&ra).then(a.0.cmp(&b.0))
    });
    let mut repack = Vec::new();
    let mut budget = opts.max_repack_bytes.unwrap_or(u64::MAX);
    for (p, used_bytes, unused_bytes) in partial {
        let size = inventory.packs[&p].size;
        let too_much = unused_total as f64
            > opts.max_unused_percent / 100.0 * (used_total + unused_total) as f64;
        if too_much && size <= budget {
            budget -= size;
            repack.push(p);
            unused_total -= unused_bytes;
            report.packs_repacked += 1;
            report.bytes_repacked += size;
            report.bytes_copied += used_bytes;
        } else {
            keep.push(p);
        }
    }
    report.unused_bytes_after = unused_total;
    let kept_bytes: u64 = keep.iter().map(|p| present[p]).sum();
    report.bytes_after = kept_bytes + report.bytes_copied;

    let staging = staging_files(repo);
    report.staging_files_removed = staging.len();
    Ok(Plan {
        report,
        inventory,
        home,
        keep,
        repack,
        delete,
        staging,
    })
}

/// Staging files of uploads killed before their rename (local stores
/// only; object stores never show partial objects).
fn staging_files(repo: &Repository) -> Vec<PathBuf> {
    let Some(root) = repo.store().local_root() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for kind in [
        ObjectKind::Pack,
        ObjectKind::Index,
        ObjectKind::Snapshot,
        ObjectKind::Account,
    ] {
        let dir = root.join(kind.dir());
        let mut dirs = vec![dir];
        while let Some(d) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                let Ok(md) = e.metadata() else { continue };
                if md.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let name = e.file_name();
                let name = name.to_string_lossy();
                let staging = name
                    .split_once('#')
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                let old = md
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age >= STAGING_MIN_AGE);
                if staging && old {
                    out.push(path);
                }
            }
        }
    }
    out
}

fn apply(repo: &Repository, plan: Plan, progress: &dyn Progress) -> Result<PruneReport> {
    let Plan {
        mut report,
        inventory,
        home,
        keep,
        repack,
        delete,
        staging,
    } = plan;
    let store = repo.store();

    // 1. Copy the used blobs of the packs to repack into new packs.
    let mut new_indexes: HashSet<IndexId> = HashSet::new();
    if !repack.is_empty() {
        progress.phase("prune: repack", Some(report.bytes_repacked));
        let writer = BlobWriter::for_repack(repo)?;
        repack.par_iter().try_for_each(|p| -> Result<()> {
            let bytes = store.get(ObjectKind::Pack, &p.to_hex())?;
            progress.bytes(bytes.len() as u64);
            pack::verify_pack(repo.keys(), p, &bytes)?;
            for b in &inventory.packs[p].blobs {
                if home.get(&b.id) != Some(p) {
                    continue;
                }
                let stored = bytes
                    .get(b.offset as usize..(b.offset + b.length) as usize)
                    .ok_or_else(|| {
                        Error::corrupt(format!("pack {}", p.short()), "blob outside the pack")
                    })?;
                // Never copy damage forward: decrypt and check first.
                crypto::with_blob(repo.keys(), b.kind, &b.id, stored, b.raw_length, |_| ())?;
                writer.store_encoded(b.kind, b.id, stored, b.raw_length)?;
            }
            Ok(())
        })?;
        let stats = writer.finish()?;
        report.packs_written = stats.packs_written;
        new_indexes.extend(writer.written_indexes());
        failpoint("prune-after-repack");
    }

    // 2. Index objects for the packs that stay.
    progress.phase("prune: index", None);
    let mut current = IndexFile::default();
    let mut keep_sorted: Vec<PackId> = keep;
    keep_sorted.sort();
    for p in &keep_sorted {
        let info = &inventory.packs[p];
        current.packs.push(IndexedPack {
            id: *p,
            size: info.size,
            blobs: info.blobs.clone(),
        });
        if current.blob_count() >= BLOBS_PER_INDEX {
            new_indexes.insert(write_index(repo, std::mem::take(&mut current))?);
        }
    }
    if !current.packs.is_empty() {
        new_indexes.insert(write_index(repo, current)?);
    }
    failpoint("prune-after-index-write");

    // 3. Retire the old index objects.
    for id in &inventory.index_ids {
        if !new_indexes.contains(id) {
            store.delete(ObjectKind::Index, &id.to_hex())?;
            report.index_objects_removed += 1;
        }
    }
    report.index_objects_written = new_indexes.len();
    failpoint("prune-after-index-delete");

    // 4. Delete the packs that go (unindexed since step 3).
    progress.phase("prune: delete", None);
    let doomed: BTreeSet<PackId> = delete.iter().chain(repack.iter()).copied().collect();
    for (i, p) in doomed.iter().enumerate() {
        store.delete(ObjectKind::Pack, &p.to_hex())?;
        if i + 1 == doomed.len() / 2 {
            failpoint("prune-mid-pack-delete");
        }
    }
    for path in &staging {
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!("could not remove {}: {e}", path.display());
        }
    }
    repo.rebuild_index_cache()?;
    progress.done();
    Ok(report)
}

fn write_index(repo: &Repository, index: IndexFile) -> Result<IndexId> {
    let (id, bytes) = index.seal(repo.keys())?;
    repo.store()
        .put(ObjectKind::Index, &id.to_hex(), bytes.into())?;
    Ok(id)
}

/// Prune under an exclusive lock the caller already holds (forget
/// `--prune` keeps one lock for both steps).
pub fn prune_locked(
    repo: &Repository,
    opts: &PruneOptions,
    _lock: &LockGuard,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    let plan = plan(repo, opts, progress)?;
    if opts.dry_run {
        progress.done();
        return Ok(plan.report);
    }
    apply(repo, plan, progress)
}

/// Take the exclusive lock and prune.
pub fn prune(
    repo: &Repository,
    opts: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    let lock = repo.lock(true, "prune")?;
    prune_locked(repo, opts, &lock, progress)
}

#[cfg(test)]
mod tests;
