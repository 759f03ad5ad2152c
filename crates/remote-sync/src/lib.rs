//! Replication of a cairn repository to another object store (S3 and
//! compatible servers, or a local directory) and back.
//!
//! This crate owns the copy plan and its safety rules. It builds on
//! `cairn-repository` for object kinds, names and locks, and must not know
//! about the command line or about how backups are made.
//!
//! A sync copies the objects the destination lacks:
//! - **consistent at every instant**: the source's manifests (snapshots, log
//!   segments, account events) are listed first, then its index objects,
//!   then its packs; they are copied in the opposite order. Whatever a
//!   listed manifest needs was written before it, so it is in the later
//!   listings and arrives first: someone restoring from the destination
//!   during a sync, or after an interrupted one, sees only complete
//!   snapshots.
//! - **verified**: each object is hashed against its name before it is
//!   sent (a corrupt source object is not spread), and each upload is
//!   checked afterwards: size by a `HEAD`, content by the ETag when it is an
//!   MD5 digest (single or multipart), otherwise by reading it back.
//! - **incremental and resumable**: objects already there (same name and
//!   size) are skipped, so a rerun transfers nothing but listings and an
//!   interrupted sync resumes where it stopped.
//! - **deletion is the dangerous part**: with `delete`, what the source no
//!   longer has goes, manifests first and packs last, and only after
//!   checking that the source listing holds everything its live snapshots
//!   and log segments need (a doubtful listing deletes nothing). A grace
//!   period (`delete_after`) records pending deletions as objects on the
//!   destination so later runs know their age. A deleting sync needs the
//!   opened repository ([`Source::Repository`]): it holds a shared lock on
//!   the source, so no prune runs there meanwhile, and reads its index.
//! - **no password to copy**: a sync without deletion needs only the
//!   source's objects ([`Source::Store`]), so an offsite replicator need
//!   not hold the key. It takes no lock; a prune or forget that removes a
//!   listed object while it runs makes it list again and copy what is
//!   missing (the listing order keeps every round consistent).

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod copy;
mod deletions;
mod verify;

pub use verify::{VerifyReport, repair, verify};

use cairn_repository::inventory::Inventory;
use cairn_repository::store::Listed;
use cairn_repository::{ObjectKind, Progress, Repository, Store};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Errors of a sync.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The repository layer failed (storage, locks, decryption).
    #[error(transparent)]
    Repository(#[from] cairn_repository::Error),
    /// The destination holds another repository.
    #[error("{0} holds another repository (its config differs); refusing to mix them")]
    DifferentRepository(String),
    /// An object failed verification and retries did not help.
    #[error("{path}: {reason}")]
    Verification {
        /// The object.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// Deletion refused: the source listing does not account for what its
    /// snapshots need.
    #[error("refusing to delete anything on the destination: {0}")]
    DoubtfulListing(String),
    /// A listed source object disappeared before it was copied, in every
    /// round.
    #[error(
        "{0} disappeared from the source during the sync (a prune or forget is running there?); run the sync again when it is done"
    )]
    SourceChanged(String),
    /// Stopped on request, after the transfers in flight.
    #[error(
        "sync stopped on request; the destination is consistent, run the sync again to complete it"
    )]
    Interrupted,
    /// Deleting needs the opened repository, not only its objects.
    #[error("deleting needs the source repository's password (to lock it and read its index)")]
    NeedsRepository,
    /// A bug or a failed runtime task.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<cairn_repository::store::Error> for SyncError {
    fn from(e: cairn_repository::store::Error) -> Self {
        SyncError::Repository(e.into())
    }
}

/// What a sync copies from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// The source's objects: enough to copy, with no password. No lock is
    /// taken.
    Store(&'a Store),
    /// The opened repository: a shared lock is held for the whole sync,
    /// and deletion is possible.
    Repository(&'a Repository),
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Source::Store(_) => "Store",
            Source::Repository(_) => "Repository",
        };
        f.debug_tuple(kind).field(&self.store().location()).finish()
    }
}

impl Source<'_> {
    fn store(&self) -> &Store {
        match self {
            Source::Store(s) => s,
            Source::Repository(r) => r.store(),
        }
    }
}

/// Listing rounds before a source that keeps changing is an error.
const ROUNDS: usize = 3;

/// How to sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Delete from the destination what the source no longer has.
    pub delete: bool,
    /// Keep such objects this long before deleting them.
    pub delete_after: Option<std::time::Duration>,
    /// Packs in flight at once (small objects: four times as many).
    pub concurrency: usize,
    /// Objects larger than this use a multipart upload.
    pub multipart_threshold: u64,
    /// Part size of multipart uploads.
    pub part_size: usize,
    /// Report what would be done; change nothing.
    pub dry_run: bool,
    /// Set (by a signal handler) to stop after the transfers in flight;
    /// the destination stays consistent and nothing is deleted.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl SyncOptions {
    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            delete: false,
            delete_after: None,
            concurrency: 4,
            multipart_threshold: 32 << 20,
            part_size: 8 << 20,
            dry_run: false,
            cancel: None,
        }
    }
}

/// Objects and bytes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Count {
    /// Objects.
    pub objects: u64,
    /// Bytes.
    pub bytes: u64,
}

/// What a sync did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Copied, by object kind.
    pub copied: BTreeMap<String, Count>,
    /// Already on the destination.
    pub present: Count,
    /// Uploads that failed verification and were sent again.
    pub resent: u64,
    /// Deleted from the destination.
    pub deleted: BTreeMap<String, Count>,
    /// Left on the destination until their grace period ends.
    pub pending_deletions: u64,
    /// Wall time in seconds.
    pub duration_secs: f64,
}

impl SyncReport {
    /// Everything copied.
    pub fn copied_total(&self) -> Count {
        self.copied.values().fold(Count::default(), |a, c| Count {
            objects: a.objects + c.objects,
            bytes: a.bytes + c.bytes,
        })
    }

    /// Everything deleted.
    pub fn deleted_total(&self) -> Count {
        self.deleted.values().fold(Count::default(), |a, c| Count {
            objects: a.objects + c.objects,
            bytes: a.bytes + c.bytes,
        })
    }
}

const MANIFESTS: [ObjectKind; 4] = ObjectKind::MANIFESTS;

fn list(store: &Store, kind: ObjectKind) -> Result<Vec<Listed>, SyncError> {
    if kind == ObjectKind::Config {
        return Ok(store
            .head(kind, "config")?
            .map(|size| Listed {
                name: "config".into(),
                size,
                modified: None,
            })
            .into_iter()
            .collect());
    }
    Ok(store.list(kind)?.objects)
}

/// Copy `source` to `dest`.
pub fn sync(
    source: Source<'_>,
    dest: &Store,
    opts: &SyncOptions,
    progress: &dyn Progress,
) -> Result<SyncReport, SyncError> {
    let clock = std::time::Instant::now();
    let repo = match source {
        Source::Repository(r) => Some(r),
        Source::Store(_) if opts.delete => return Err(SyncError::NeedsRepository),
        Source::Store(_) => None,
    };
    if opts.delete && !opts.dry_run {
        // Find out before copying, not when the first deletion is refused.
        cairn_repository::repo::require_delete_rights(dest, "sync --delete")?;
    }
    // No prune on the source while we copy and decide what to delete.
    let _lock = repo.map(|r| r.lock(false, "sync")).transpose()?;
    let src = source.store();
    let mut earlier = SyncReport::default();
    for round in 1..=ROUNDS {
        let mut report = SyncReport {
            dry_run: opts.dry_run,
            ..SyncReport::default()
        };
        match copy_round(src, dest, opts, progress, &mut report) {
            Ok((listed, dest_listed)) => {
                // Objects copied by earlier rounds were found present by
                // this one.
                for (kind, c) in earlier.copied {
                    let entry = report.copied.entry(kind).or_default();
                    entry.objects += c.objects;
                    entry.bytes += c.bytes;
                    report.present.objects = report.present.objects.saturating_sub(c.objects);
                    report.present.bytes = report.present.bytes.saturating_sub(c.bytes);
                }
                report.resent += earlier.resent;
                if opts.cancelled() {
                    return Err(SyncError::Interrupted);
                }
                if let (true, Some(repo)) = (opts.delete, repo) {
                    check_source_complete(repo, &listed)?;
                    let extra = extra_objects(&listed, &dest_listed, dest)?;
                    deletions::apply(repo, dest, extra, opts, &mut report)?;
                }
                progress.done();
                report.duration_secs = clock.elapsed().as_secs_f64();
                return Ok(report);
            }
            Err(SyncError::SourceChanged(path)) if round < ROUNDS => {
                progress.warn(&format!(
                    "{path} disappeared from the source during the sync; listing again"
                ));
                // What this round copied before it stopped.
                for (kind, c) in report.copied {
                    let entry = earlier.copied.entry(kind).or_default();
                    entry.objects += c.objects;
                    entry.bytes += c.bytes;
                }
                earlier.resent += report.resent;
            }
            Err(e) => return Err(e),
        }
    }
    Err(SyncError::Internal("no sync round ran".into()))
}

/// List both sides and copy what the destination lacks, counting into
/// `report` (also what arrived before a failure). Returns the listings.
#[allow(clippy::type_complexity)]
fn copy_round(
    src: &Store,
    dest: &Store,
    opts: &SyncOptions,
    progress: &dyn Progress,
    report: &mut SyncReport,
) -> Result<
    (
        HashMap<ObjectKind, Vec<Listed>>,
        HashMap<ObjectKind, HashMap<String, u64>>,
    ),
    SyncError,
> {
    // The destination must be empty or the same repository.
    let src_config = src.get(ObjectKind::Config, "config")?;
    match dest.get(ObjectKind::Config, "config") {
        Ok(existing) if existing != src_config => {
            return Err(SyncError::DifferentRepository(dest.location().to_string()));
        }
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }

    // List the source: manifests first, then index objects, then packs.
    let mut listed: HashMap<ObjectKind, Vec<Listed>> = HashMap::new();
    for kind in MANIFESTS.into_iter().chain([
        ObjectKind::Index,
        ObjectKind::Pack,
        ObjectKind::Key,
        ObjectKind::Config,
    ]) {
        listed.insert(kind, list(src, kind)?);
    }
    cairn_repository::util::failpoint("sync-after-list");

    // Copy in the opposite order: keys and config (an empty repository is
    // a valid one), packs, index objects, manifests.
    let order = [
        ObjectKind::Key,
        ObjectKind::Config,
        ObjectKind::Pack,
        ObjectKind::Index,
    ]
    .into_iter()
    .chain(MANIFESTS);
    let mut dest_listed: HashMap<ObjectKind, HashMap<String, u64>> = HashMap::new();
    for kind in order.clone() {
        let there: HashMap<String, u64> = list(dest, kind)?
            .into_iter()
            .map(|l| (l.name, l.size))
            .collect();
        dest_listed.insert(kind, there);
    }
    let mut plan: Vec<(ObjectKind, Vec<Listed>)> = Vec::new();
    let mut total = 0u64;
    for kind in order {
        let there = &dest_listed[&kind];
        let mut missing = Vec::new();
        for obj in &listed[&kind] {
            if there.get(&obj.name) == Some(&obj.size) {
                report.present.objects += 1;
                report.present.bytes += obj.size;
            } else {
                total += obj.size;
                missing.push(obj.clone());
            }
        }
        plan.push((kind, missing));
    }
    progress.phase("sync", Some(total));
    for (kind, objects) in &plan {
        if objects.is_empty() {
            continue;
        }
        let count = if opts.dry_run {
            Count {
                objects: objects.len() as u64,
                bytes: objects.iter().map(|o| o.size).sum(),
            }
        } else {
            let mut copied = copy::Copied::default();
            let outcome = copy::copy_all(src, dest, *kind, objects, opts, progress, &mut copied);
            report.resent += copied.resent;
            if copied.count.objects > 0 {
                report
                    .copied
                    .insert(copy::label(*kind).to_string(), copied.count);
            }
            outcome?;
            continue;
        };
        report.copied.insert(copy::label(*kind).to_string(), count);
    }
    Ok((listed, dest_listed))
}

/// What the destination holds that the source does not, by kind, in
/// deletion order (manifests first, packs last).
fn extra_objects(
    listed: &HashMap<ObjectKind, Vec<Listed>>,
    dest_listed: &HashMap<ObjectKind, HashMap<String, u64>>,
    dest: &Store,
) -> Result<Vec<(ObjectKind, String, u64)>, SyncError> {
    let mut out = Vec::new();
    for kind in MANIFESTS
        .into_iter()
        .chain([ObjectKind::Index, ObjectKind::Pack, ObjectKind::Key])
    {
        let src: HashSet<&str> = listed[&kind].iter().map(|l| l.name.as_str()).collect();
        // Objects copied during this run are in the source listing; the
        // destination listing predates them.
        let there: Vec<(String, u64)> = match dest_listed.get(&kind) {
            Some(m) => m.iter().map(|(n, s)| (n.clone(), *s)).collect(),
            None => list(dest, kind)?
                .into_iter()
                .map(|l| (l.name, l.size))
                .collect(),
        };
        let mut extra: Vec<(ObjectKind, String, u64)> = there
            .into_iter()
            .filter(|(n, _)| !src.contains(n.as_str()))
            .map(|(n, s)| (kind, n, s))
            .collect();
        extra.sort();
        out.extend(extra);
    }
    Ok(out)
}

/// A listing is trusted for deletion only if it holds every pack the
/// source's live snapshots and log segments need.
fn check_source_complete(
    source: &Repository,
    listed: &HashMap<ObjectKind, Vec<Listed>>,
) -> Result<(), SyncError> {
    let inventory = Inventory::load(source)?;
    if let Some(e) = inventory.errors.first() {
        return Err(SyncError::DoubtfulListing(format!(
            "the source index cannot be read ({e})"
        )));
    }
    let (snapshots, unreadable) = source.snapshots()?;
    if let Some((id, e)) = unreadable.first() {
        return Err(SyncError::DoubtfulListing(format!(
            "source snapshot {} cannot be read ({e})",
            id.short()
        )));
    }
    let listed_snapshots: HashSet<&str> = listed[&ObjectKind::Snapshot]
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    let roots: Vec<_> = snapshots
        .iter()
        .filter(|(id, _)| listed_snapshots.contains(id.to_hex().as_str()))
        .map(|(id, s)| (*id, s.tree))
        .collect();
    let mut used = inventory
        .used_blobs(source, &roots)
        .map_err(|e| SyncError::DoubtfulListing(e.to_string()))?;
    for seg in cairn_repository::logs::all_log_segments(source)? {
        used.extend(seg.manifest.chunks.iter().map(|c| *c.as_bytes()));
    }
    let packs: HashSet<&str> = listed[&ObjectKind::Pack]
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    let mut missing_packs: HashSet<String> = HashSet::new();
    let mut missing_blobs = 0usize;
    for blob in &used {
        match inventory.blob(blob) {
            Some(loc) if packs.contains(loc.pack.to_hex().as_str()) => {}
            Some(loc) => {
                missing_packs.insert(loc.pack.to_hex());
            }
            None => missing_blobs += 1,
        }
    }
    if !missing_packs.is_empty() || missing_blobs > 0 {
        return Err(SyncError::DoubtfulListing(format!(
            "the source listing lacks {} packs and {} blobs that its live snapshots and log segments reference (an incomplete listing, or a damaged source: run `cairn check`)",
            missing_packs.len(),
            missing_blobs
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::Mutex;

    /// A source store holding a config and `packs` content-addressed packs.
    fn source(packs: u8) -> (Store, Vec<String>) {
        let store = Store::memory().unwrap();
        store
            .put(
                ObjectKind::Config,
                "config",
                b"sealed config".to_vec().into(),
            )
            .unwrap();
        let mut names = Vec::new();
        for i in 0..packs {
            let bytes = vec![i; 1000 + usize::from(i)];
            let name = blake3::hash(&bytes).to_hex().to_string();
            store.put(ObjectKind::Pack, &name, bytes.into()).unwrap();
            names.push(name);
        }
        (store, names)
    }

    /// Deletes one source pack whenever the copy phase starts: a prune
    /// running between the listing and the copy.
    struct Pruner<'a> {
        store: &'a Store,
        victims: Mutex<Vec<String>>,
        warnings: Mutex<Vec<String>>,
    }

    impl Progress for Pruner<'_> {
        fn phase(&self, _name: &str, _total: Option<u64>) {
            if let Some(v) = self.victims.lock().unwrap().pop() {
                self.store.delete(ObjectKind::Pack, &v).unwrap();
            }
        }
        fn warn(&self, message: &str) {
            self.warnings.lock().unwrap().push(message.to_string());
        }
    }

    #[test]
    fn copying_needs_no_repository_but_deleting_does() {
        let (src, packs) = source(5);
        let dest = Store::memory().unwrap();
        let report = sync(
            Source::Store(&src),
            &dest,
            &SyncOptions::default(),
            &cairn_repository::NoProgress,
        )
        .unwrap();
        assert_eq!(report.copied_total().objects, 6);
        assert_eq!(
            dest.list(ObjectKind::Pack).unwrap().objects.len(),
            packs.len()
        );
        // A rerun copies nothing.
        let again = sync(
            Source::Store(&src),
            &dest,
            &SyncOptions::default(),
            &cairn_repository::NoProgress,
        )
        .unwrap();
        assert_eq!(again.copied_total().objects, 0);
        assert_eq!(again.present.objects, 6);

        let deleting = SyncOptions {
            delete: true,
            ..SyncOptions::default()
        };
        let err = sync(
            Source::Store(&src),
            &dest,
            &deleting,
            &cairn_repository::NoProgress,
        )
        .unwrap_err();
        assert!(matches!(err, SyncError::NeedsRepository), "{err}");
    }

    #[test]
    fn a_source_that_changes_mid_sync_is_listed_again() {
        let (src, packs) = source(6);
        let dest = Store::memory().unwrap();
        let progress = Pruner {
            store: &src,
            victims: Mutex::new(vec![packs[2].clone()]),
            warnings: Mutex::new(Vec::new()),
        };
        let opts = SyncOptions {
            concurrency: 1,
            ..SyncOptions::default()
        };
        let report = sync(Source::Store(&src), &dest, &opts, &progress).unwrap();
        let on_dest: Vec<String> = dest
            .list(ObjectKind::Pack)
            .unwrap()
            .objects
            .into_iter()
            .map(|l| l.name)
            .collect();
        let mut expected: Vec<String> = packs.iter().filter(|p| **p != packs[2]).cloned().collect();
        expected.sort();
        assert_eq!(on_dest, expected);
        // Every object copied is counted once, across both rounds.
        assert_eq!(report.copied_total().objects, 6);
        assert_eq!(report.present.objects, 0);
        let warnings = progress.warnings.lock().unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains(&packs[2]), "{warnings:?}");
    }

    #[test]
    fn a_source_that_keeps_changing_is_a_clear_error() {
        let (src, mut packs) = source(6);
        let dest = Store::memory().unwrap();
        // One transfer at a time, in name order: each round loses the
        // first pack it would copy.
        packs.sort();
        let mut victims = packs[..ROUNDS].to_vec();
        victims.reverse();
        let progress = Pruner {
            store: &src,
            victims: Mutex::new(victims),
            warnings: Mutex::new(Vec::new()),
        };
        let opts = SyncOptions {
            concurrency: 1,
            ..SyncOptions::default()
        };
        let err = sync(Source::Store(&src), &dest, &opts, &progress).unwrap_err();
        assert!(matches!(err, SyncError::SourceChanged(_)), "{err}");
        assert!(err.to_string().contains("run the sync again"), "{err}");
    }
}
