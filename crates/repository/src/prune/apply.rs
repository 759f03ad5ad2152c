//! Carrying out prune's plan, in the order that keeps every used blob in
//! an existing, indexed pack at every instant.

use super::plan::{Plan, Seen};
use super::{BLOBS_PER_INDEX, PruneReport};
use crate::crypto;
use crate::error::{Error, Result};
use crate::id::{IndexId, PackId};
use crate::index::{IndexFile, IndexedPack};
use crate::layout::ObjectKind;
use crate::pack;
use crate::pending;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::util::failpoint;
use crate::writer::BlobWriter;
use rayon::prelude::*;
use std::collections::HashSet;

pub(super) fn apply(repo: &Repository, plan: Plan, progress: &dyn Progress) -> Result<PruneReport> {
    let Plan {
        mut report,
        inventory,
        home,
        keep,
        repack,
        delete_now,
        waiting,
        foreign,
        old_records,
        seen,
        staging,
        now,
    } = plan;
    let store = repo.store();

    // 1. Copy the used blobs of the packs to repack into new packs.
    let mut new_indexes: HashSet<IndexId> = HashSet::new();
    if !repack.is_empty() {
        progress.phase("prune: repack", Some(report.bytes_repacked));
        let writer = BlobWriter::for_repack(repo)?;
        repack.par_iter().try_for_each(|p| -> Result<()> {
            // A pack that fails its hash is read once more before prune
            // gives up on it (one bad read is not damage).
            let bytes = store.get_object_checked(&p, |b| {
                pack::verify_pack(repo.keys(), p, &b)
                    .map(|_| b)
                    .map_err(Error::from)
            })?;
            progress.bytes(bytes.len() as u64);
            let info = &inventory.packs[p];
            let sealing = match &info.sealing {
                None => None,
                Some(s) => Some(
                    repo.keys()
                        .for_sealing(Some(s), &format!("pack {}", p.short()))?,
                ),
            };
            for b in &info.blobs {
                if home.get(&b.id) != Some(p) {
                    continue;
                }
                let stored = bytes
                    .get(b.offset as usize..(b.offset + b.length) as usize)
                    .ok_or_else(|| {
                        Error::corrupt(format!("pack {}", p.short()), "blob outside the pack")
                    })?;
                // Never copy damage forward: decrypt and check first. A
                // blob a put-only session sealed is sealed again under the
                // master key: a new pack never mixes keys.
                match &sealing {
                    None => {
                        crypto::with_blob(
                            repo.keys(),
                            b.kind,
                            &b.id,
                            stored,
                            b.raw_length,
                            |_| (),
                        )?;
                        writer.store_encoded(b.kind, b.id, stored, b.raw_length)?;
                    }
                    Some(keys) => {
                        crypto::with_blob(keys, b.kind, &b.id, stored, b.raw_length, |plain| {
                            writer.store(b.kind, b.id, plain)
                        })??;
                    }
                }
            }
            Ok(())
        })?;
        let stats = writer.finish()?;
        report.packs_written = stats.packs_written;
        new_indexes.extend(writer.written_indexes());
        failpoint("prune-after-repack");
    }

    // 2. Record what waits, before any of it leaves the index: a pack that
    //    no index lists and no record names counts as an orphan, whose age
    //    is its own.
    let mut records_written = HashSet::new();
    let pending_entries = waiting
        .iter()
        .map(|(p, _, t)| (pending::entry_of(&p), *t))
        .chain(foreign.iter().cloned());
    for record in pending::group(pending_entries) {
        repo.confirm_lock()?;
        records_written.insert(pending::write_record(repo.keys(), store, &record)?);
    }

    // 3. Index objects for the packs that stay.
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
            sealing: info.sealing,
        });
        if current.blob_count() >= BLOBS_PER_INDEX {
            new_indexes.insert(write_index(repo, std::mem::take(&mut current))?);
        }
    }
    if !current.packs.is_empty() {
        new_indexes.insert(write_index(repo, current)?);
    }
    failpoint("prune-after-index-write");

    // 4. Retire the old index objects.
    for id in &inventory.index_ids {
        if !new_indexes.contains(id) {
            repo.confirm_lock()?;
            store.delete_object(&id)?;
            report.index_objects_removed += 1;
        }
    }
    report.index_objects_written = new_indexes.len();
    failpoint("prune-after-index-delete");

    // 5. Delete what is due, if a second listing agrees with the first.
    progress.phase("prune: delete", None);
    let mut keep_old_records = false;
    if !delete_now.is_empty() {
        if let Some(what) = listing_changed(repo, &seen, &new_indexes)? {
            tracing::warn!(
                "{what} since prune listed the repository: deleting nothing in this run"
            );
            report.listing_changed = true;
            // They wait instead; the old records stay too, so no age is lost.
            keep_old_records = true;
            let entries = delete_now.iter().map(|(p, _)| (pending::entry_of(&p), now));
            for record in pending::group(entries) {
                repo.confirm_lock()?;
                pending::write_record(repo.keys(), store, &record)?;
            }
            report.packs_pending += delete_now.len();
            report.bytes_pending += report.bytes_deleted;
            report.bytes_after += report.bytes_deleted;
            report.packs_deleted = 0;
            report.bytes_deleted = 0;
        } else {
            let doomed: Vec<PackId> = delete_now.iter().map(|(p, _)| *p).collect();
            for (i, p) in doomed.iter().enumerate() {
                repo.confirm_lock()?;
                store.delete_object(&p)?;
                if i + 1 == doomed.len() / 2 {
                    failpoint("prune-mid-pack-delete");
                }
            }
        }
    }
    for file in &staging {
        if let Err(e) = store.remove_staging(file) {
            tracing::warn!("could not remove {file}: {e}");
        }
    }

    // 6. The records this run replaced.
    if !keep_old_records {
        for name in old_records {
            if !records_written.contains(&name) {
                repo.confirm_lock()?;
                store.delete(ObjectKind::Deletion, &name)?;
            }
        }
    }
    repo.rebuild_index_cache()?;
    progress.done();
    Ok(report)
}

/// List index objects, snapshots and log segments again: what appeared
/// that the plan did not see (other than prune's own index objects)?
fn listing_changed(
    repo: &Repository,
    seen: &Seen,
    own: &HashSet<IndexId>,
) -> Result<Option<String>> {
    let store = repo.store();
    let own: HashSet<String> = own.iter().map(IndexId::to_hex).collect();
    let count =
        |kind: ObjectKind, known: &HashSet<String>, own: &HashSet<String>| -> Result<usize> {
            Ok(store
                .list(kind)?
                .objects
                .iter()
                .filter(|o| !known.contains(&o.name) && !own.contains(&o.name))
                .count())
        };
    let none = HashSet::new();
    let index = count(ObjectKind::Index, &seen.index, &own)?;
    let snapshots = count(ObjectKind::Snapshot, &seen.snapshots, &none)?;
    let logs = count(ObjectKind::Log, &seen.logs, &none)?;
    if index + snapshots + logs == 0 {
        return Ok(None);
    }
    Ok(Some(format!(
        "{index} index objects, {snapshots} snapshots and {logs} log segments appeared"
    )))
}

fn write_index(repo: &Repository, index: IndexFile) -> Result<IndexId> {
    let (id, bytes) = index.seal(repo.keys())?;
    repo.confirm_lock()?;
    repo.store().put_object(&id, bytes.into())?;
    Ok(id)
}
