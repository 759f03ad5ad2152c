//! `prune`: delete what no snapshot needs, in two phases.
//!
//! Mark and sweep. Mark: every blob reachable from a snapshot's tree, and
//! every chunk of a log segment, is used. Sweep: packs with no used blob
//! leave the index; packs with much unused space are repacked (their used
//! blobs copied, still encrypted, into new packs) until the unused share is
//! below `max_unused_percent`; the index is rewritten to cover exactly the
//! packs that stay.
//!
//! Safety (`docs/FORMAT.md`, "Concurrency and deletion"):
//! - prune holds the **exclusive lock** for its whole run and confirms it
//!   before every commit point, so no backup can be adding references to
//!   blobs it is about to delete.
//! - **Readers are never pulled from under**: a pack that leaves the index
//!   is *retired*, not deleted: a pending-deletion record notes when, and a
//!   later prune deletes it once it has waited `delete_after` (default
//!   24 h) and is still unused. Restores, verifications, checks and key-less
//!   syncs that started before take no lock and still find their packs.
//! - **Nothing is deleted on a doubtful picture**: packs no index lists and
//!   no record names (an interrupted backup's, or one a faulty listing hid
//!   an index object of) are deleted only when older than `delete_after`
//!   and at least [`ORPHAN_MIN_AGE`]; before deleting anything, prune lists
//!   index objects, snapshots and log segments again and deletes nothing if
//!   something appeared that it did not see.
//! - **Never the last copy**: when a used blob is listed in several packs,
//!   the headers of those packs are read and the kept copy confirmed; an
//!   index entry that a header contradicts is reported and never acted on.
//! - prune refuses to run on a repository whose index objects, snapshots or
//!   pending-deletion records cannot be read, or where a used blob is in no
//!   existing pack: then nobody can tell what is in use.
//! - **crash safety** comes from the order of the steps ([`apply`]). At
//!   every instant every used blob is in a pack that exists and that an
//!   index object lists: repacked blobs are uploaded and indexed; the
//!   records of retired packs are written; new index objects for the packs
//!   that stay are written; the old index objects are deleted; the packs due
//!   are deleted; the old records last.

mod apply;
mod extend;
mod plan;

use crate::error::Result;
use crate::lock::LockGuard;
use crate::progress::Progress;
use crate::repo::Repository;
use std::time::Duration;

/// How long a retired pack waits before it is deleted, by default. It bounds
/// how long a reader that takes no lock (a restore, a verification, a
/// key-less sync) may run and still find every pack it planned to read.
pub const DEFAULT_DELETE_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Packs that no index lists and no record names (an interrupted backup's)
/// are never deleted while younger than this, whatever `delete_after` says:
/// twice the default lock lease, so a backup whose lock went stale has been
/// told so long before.
pub const ORPHAN_MIN_AGE: Duration = Duration::from_secs(3600);
/// Blobs per index object written by prune.
const BLOBS_PER_INDEX: usize = 100_000;
/// Staging files left by killed uploads are removed once this old.
const STAGING_MIN_AGE: Duration = Duration::from_secs(3600);

/// How hard to prune.
#[derive(Debug, Clone, Copy)]
pub struct PruneOptions {
    /// Repack until unused space is at most this share of what stays.
    pub max_unused_percent: f64,
    /// Repack at most this many bytes of packs (`None`: no limit).
    pub max_repack_bytes: Option<u64>,
    /// Only compute and report the plan.
    pub dry_run: bool,
    /// How long a pack retired from the index waits before it is deleted
    /// (zero: at once, for repositories nobody reads while prune runs).
    pub delete_after: Duration,
    /// The time ages are judged by; `None` is now (tests set it).
    pub now: Option<jiff::Timestamp>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            max_unused_percent: 5.0,
            max_repack_bytes: None,
            dry_run: false,
            delete_after: DEFAULT_DELETE_AFTER,
            now: None,
        }
    }
}

/// What prune will do (or did).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    /// Whether anything was changed.
    pub dry_run: bool,
    /// The wait before a retired pack is deleted, in seconds.
    pub delete_after_secs: u64,
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
    /// Packs that left the index in this run (nothing in use, or repacked).
    pub packs_retired: usize,
    /// Their bytes.
    pub bytes_retired: u64,
    /// Packs deleted from the store in this run: retired ones whose wait is
    /// over, and old unreferenced packs no index listed.
    pub packs_deleted: usize,
    /// Their bytes.
    pub bytes_deleted: u64,
    /// Retired packs still waiting for deletion after this run.
    pub packs_pending: usize,
    /// Their bytes.
    pub bytes_pending: u64,
    /// When the first waiting pack becomes due.
    pub next_deletion: Option<jiff::Timestamp>,
    /// Packs rewritten to drop unused blobs.
    pub packs_repacked: usize,
    /// Their bytes.
    pub bytes_repacked: u64,
    /// Bytes of used blobs copied into new packs.
    pub bytes_copied: u64,
    /// New packs written by repacking.
    pub packs_written: u64,
    /// Packs no index listed whose blobs a snapshot uses: indexed again
    /// (left by interrupted runs, retired earlier, or hidden by a listing).
    pub orphans_adopted: usize,
    /// Unreferenced packs no index lists, kept because they are younger
    /// than the minimum age (an interrupted or running backup's).
    pub orphans_young: usize,
    /// Packs no index lists whose header cannot be read: deleted once old
    /// enough.
    pub orphans_unreadable: usize,
    /// Index entries that a pack's own header contradicts: reported, never
    /// acted on.
    pub contradictions: Vec<String>,
    /// The second listing before deleting showed objects the first did not:
    /// nothing was deleted in this run.
    pub listing_changed: bool,
    /// Staging files of killed uploads removed (local repositories).
    pub staging_files_removed: usize,
    /// Unused bytes left in packs that stay.
    pub unused_bytes_after: u64,
    /// Bytes of packs after (waiting ones included).
    pub bytes_after: u64,
    /// Index objects written.
    pub index_objects_written: usize,
    /// Index objects removed.
    pub index_objects_removed: usize,
    /// Lock objects that bound nobody removed: stale ones, and those of
    /// shared locks released by hosts that may not delete.
    pub locks_removed: usize,
    /// Packs due for deletion that S3 object lock still retains: they
    /// wait (counted in `packs_pending`) until their retention passes.
    pub packs_retained: usize,
    /// Objects in use whose object-lock retention this run extended.
    pub retention_extended: usize,
}

impl PruneReport {
    /// Bytes freed in this run.
    pub fn bytes_reclaimed(&self) -> u64 {
        self.bytes_before.saturating_sub(self.bytes_after)
    }
}

/// Which manifests a prune extends the object-lock retention of (packs in
/// use, keys and the config are always extended).
#[derive(Debug, Clone, Copy)]
pub enum ExtendManifests<'a> {
    /// None: a prune alone does not know which snapshots a retention
    /// policy still keeps, and extending one a forget is waiting to remove
    /// would keep it for ever.
    None,
    /// Every snapshot, log segment, account event and verification record
    /// but these (`dir/name`, [`crate::pending::entry`]): what the forget
    /// before this prune wanted to remove and object lock kept.
    AllBut(&'a std::collections::HashSet<String>),
}

/// Prune under an exclusive lock the caller already holds (forget
/// `--prune` keeps one lock for both steps).
pub fn prune_locked(
    repo: &Repository,
    opts: &PruneOptions,
    _lock: &LockGuard,
    progress: &dyn Progress,
    manifests: ExtendManifests<'_>,
) -> Result<PruneReport> {
    let plan = plan::plan(repo, opts, progress)?;
    if opts.dry_run {
        progress.done();
        return Ok(plan.report);
    }
    let mut report = apply::apply(repo, plan, progress)?;
    // Backup hosts that may not delete leave their lock objects behind
    // (FORMAT.md "Hosts without delete rights"); prune holds the rights.
    match crate::lock::unlock(repo.store(), repo.keys(), false) {
        Ok(removed) => report.locks_removed = removed.len(),
        Err(e) => progress.warn(&format!("could not remove stale lock objects: {e}")),
    }
    report.retention_extended = extend::extend_retention(repo, manifests)?;
    Ok(report)
}

/// Take the exclusive lock and prune.
pub fn prune(
    repo: &Repository,
    opts: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    let lock = repo.lock(true, "prune")?;
    prune_locked(repo, opts, &lock, progress, ExtendManifests::None)
}

#[cfg(test)]
mod tests;
