//! `repair index`: rebuild the index objects from the packs that exist.
//!
//! Every pack's header is read; a new set of index objects is written for
//! the packs whose header decodes, then the old index objects are deleted
//! and the local cache rebuilt. Blobs of lost or unreadable packs drop out of
//! the index, so the next backup stores that data again instead of
//! deduplicating against blobs that no longer exist. Snapshots that referred
//! to them stay damaged (`check` names them).
//!
//! Crash safety: new index objects are written before old ones are deleted,
//! so an interruption leaves both (a superset), never neither.

use crate::error::Result;
use crate::id::{IndexId, PackId};
use crate::index::{IndexFile, IndexedPack};
use crate::layout::ObjectKind;
use crate::pack;
use crate::repo::Repository;
use rayon::prelude::*;
use std::collections::HashSet;

/// Blobs per index object written by repair.
const BLOBS_PER_INDEX: usize = 100_000;

/// What repair did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepairReport {
    /// Packs indexed.
    pub packs: usize,
    /// Blobs indexed.
    pub blobs: usize,
    /// Packs whose header could not be read (left in place, not indexed).
    pub unreadable_packs: Vec<(String, String)>,
    /// Blobs that were indexed before and are not now.
    pub blobs_forgotten: u64,
    /// Index objects written.
    pub indexes_written: usize,
    /// Index objects removed.
    pub indexes_removed: usize,
}

/// Rebuild the index from the packs. Takes the exclusive lock.
pub fn repair_index(repo: &Repository) -> Result<RepairReport> {
    let _lock = repo.lock(true, "repair index")?;
    let store = repo.store();
    let before = repo.index()?.blob_count()?;
    let listing = store.list(ObjectKind::Pack)?;
    type Header = (Vec<pack::PackEntry>, Option<cairn_format::seal_to::Sealing>);
    let headers: Vec<(PackId, u64, Result<Header>)> = listing
        .objects
        .par_iter()
        .filter_map(|o| PackId::from_hex(&o.name).ok().map(|id| (id, o.size)))
        .map(|(id, size)| {
            (
                id,
                size,
                crate::objects::read_pack_header_sealed(store, repo.keys(), &id, size),
            )
        })
        .collect();
    let mut report = RepairReport::default();
    let mut current = IndexFile::default();
    let mut written = HashSet::new();
    let mut seen_blobs = HashSet::new();
    for (id, size, header) in headers {
        match header {
            Ok((blobs, sealing)) => {
                report.packs += 1;
                report.blobs += blobs.len();
                for b in &blobs {
                    seen_blobs.insert(b.id);
                }
                current.packs.push(IndexedPack {
                    id,
                    size,
                    blobs,
                    sealing,
                });
                if current.blob_count() >= BLOBS_PER_INDEX {
                    written.insert(repo.save_index(std::mem::take(&mut current))?);
                }
            }
            Err(e) => report.unreadable_packs.push((id.to_hex(), e.to_string())),
        }
    }
    if !current.packs.is_empty() {
        written.insert(repo.save_index(current)?);
    }
    report.indexes_written = written.len();
    for obj in store.list(ObjectKind::Index)?.objects {
        if let Ok(id) = IndexId::from_hex(&obj.name)
            && !written.contains(&id)
        {
            repo.confirm_lock()?;
            store.delete(ObjectKind::Index, &obj.name)?;
            report.indexes_removed += 1;
        }
    }
    repo.rebuild_index_cache()?;
    report.blobs_forgotten = before.saturating_sub(seen_blobs.len() as u64);
    Ok(report)
}
