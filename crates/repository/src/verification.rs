//! Verifying one snapshot, and recording the outcome.
//!
//! Snapshots are immutable, so their verification status is a series of
//! immutable record objects under `verifications/` (like account events):
//! the newest record of a snapshot decides whether it is `verified` or
//! `failed`; a snapshot without records is `complete`. Format in
//! `docs/FORMAT.md` ("Verification records").
//!
//! [`verify_snapshot`] reads and authenticates every blob a snapshot
//! references: its trees and the chunks of its files. Running an
//! application's own check against a restored copy (`csdb verify`,
//! `PRAGMA integrity_check`) is the caller's business.

use crate::crypto::{self};
use crate::error::Result;
use crate::id::{ID_LEN, SnapshotId, VerificationId};
use crate::inventory::Inventory;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::tree::NodeData;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

pub use cairn_format::verification::*;

/// What reading a snapshot's blobs found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BlobVerification {
    /// Blobs (trees and chunks) the snapshot references.
    pub blobs: usize,
    /// Packs read.
    pub packs: usize,
    /// Bytes read from the store.
    pub bytes_read: u64,
    /// What is missing or corrupt.
    pub problems: Vec<String>,
}

impl BlobVerification {
    /// Nothing missing or corrupt.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Read and authenticate every blob `id` references.
pub fn verify_snapshot(
    repo: &Repository,
    id: &SnapshotId,
    progress: &dyn Progress,
) -> Result<BlobVerification> {
    let snapshot = repo.load_snapshot(id)?;
    progress.phase("index", None);
    let inventory = Inventory::load(repo)?;
    let mut report = BlobVerification {
        problems: inventory.errors.clone(),
        ..BlobVerification::default()
    };

    // Trees are read (and so authenticated) while walking; a tree that
    // cannot be read is a problem, and what is under it is not reached.
    progress.phase("trees", None);
    let mut used: HashSet<[u8; ID_LEN]> = HashSet::new();
    let mut stack = vec![snapshot.tree];
    while let Some(tree_id) = stack.pop() {
        if !used.insert(*tree_id.as_bytes()) {
            continue;
        }
        match inventory.read_tree(repo, &tree_id) {
            Ok(tree) => {
                for node in tree.nodes {
                    match node.data {
                        NodeData::File { chunks } => {
                            used.extend(chunks.iter().map(|c| *c.as_bytes()));
                        }
                        NodeData::Dir { subtree } => stack.push(subtree),
                        _ => {}
                    }
                }
            }
            Err(e) => report
                .problems
                .push(format!("tree {}: {e}", tree_id.short())),
        }
    }
    report.blobs = used.len();
    crate::util::failpoint("verify-after-trees");

    // Chunks, grouped by pack so that each pack is read once.
    let mut by_pack: HashMap<crate::id::PackId, Vec<crate::pack::PackEntry>> = HashMap::new();
    for blob in &used {
        match inventory.blob(blob) {
            Some(loc) => by_pack.entry(loc.pack).or_default().push(loc.entry),
            None => report
                .problems
                .push(format!("blob {} is in no index", hex::encode(&blob[..4]))),
        }
    }
    let total: u64 = by_pack
        .values()
        .flat_map(|v| v.iter().map(|e| u64::from(e.length)))
        .sum();
    progress.phase("read data", Some(total));
    let mut packs: Vec<_> = by_pack.into_iter().collect();
    packs.sort_by_key(|(p, _)| *p);
    for (_, entries) in &mut packs {
        entries.sort_by_key(|e| e.offset);
    }
    report.packs = packs.len();
    let store = repo.store();
    // Blobs that fail their first read: (pack, entry, error).
    type Misses = Vec<(crate::id::PackId, crate::pack::PackEntry, String)>;
    let results: Vec<(u64, Misses)> = packs
        .par_iter()
        .map(|(pack, entries)| {
            let mut misses = Vec::new();
            let mut read = 0u64;
            let keys = match repo.keys_for_pack(pack) {
                Ok(k) => k,
                Err(err) => {
                    let err = format!("pack {}: {err}", pack.short());
                    misses.extend(entries.iter().map(|e| (*pack, *e, err.clone())));
                    return (read, misses);
                }
            };
            for (run, range) in crate::pack::read_runs(entries, |e| (e.offset, e.length)) {
                let start = range.start;
                let bytes = match store.get_object_range(&pack, range) {
                    Ok(b) => b,
                    Err(err) => {
                        let err = format!("pack {}: {err}", pack.short());
                        misses.extend(entries[run].iter().map(|e| (*pack, *e, err.clone())));
                        continue;
                    }
                };
                read += bytes.len() as u64;
                progress.bytes(bytes.len() as u64);
                for e in &entries[run] {
                    let at = (u64::from(e.offset) - start) as usize;
                    let stored = bytes.get(at..at + e.length as usize).unwrap_or_default();
                    if let Err(err) =
                        crypto::decode_blob(&keys, e.kind, &e.id, stored, e.raw_length)
                    {
                        misses.push((*pack, *e, format!("pack {}: {err}", pack.short())));
                    }
                }
            }
            (read, misses)
        })
        .collect();
    for (read, misses) in results {
        report.bytes_read += read;
        // A second chance: the same place again (one bad read is not
        // damage), then every other copy the index lists.
        for (pack, e, err) in misses {
            let places = std::iter::once((pack, e.offset, e.length, e.raw_length)).chain(
                inventory
                    .locations(&e.id)
                    .into_iter()
                    .filter(|l| l.pack != pack && l.kind == e.kind)
                    .map(|l| (l.pack, l.entry.offset, l.entry.length, l.entry.raw_length)),
            );
            if crate::repo::read_first_good(repo, e.kind, &e.id, places).is_err() {
                report
                    .problems
                    .push(format!("{err}: blob {}", hex::encode(&e.id[..4])));
            }
        }
    }
    progress.done();
    Ok(report)
}

/// Record the outcome of a verification.
pub fn record_verification(
    repo: &Repository,
    snapshot: &SnapshotId,
    verdict: Verdict,
    command: Option<&str>,
    detail: &str,
) -> Result<VerificationId> {
    let record = VerificationRecord {
        version: VERIFICATION_VERSION,
        snapshot: *snapshot,
        verdict,
        time: jiff::Timestamp::now(),
        command: command.map(str::to_string),
        detail: detail.to_string(),
        host: crate::util::hostname(),
    };
    let (id, _) = repo.save_manifest(&record)?;
    Ok(id)
}

/// Every verification record, by snapshot, oldest first. A record that
/// cannot be read is an error, not skipped: a lost `failed` record could
/// otherwise make a bad snapshot count as good.
pub fn verifications(
    repo: &Repository,
) -> Result<HashMap<SnapshotId, Vec<(VerificationId, VerificationRecord)>>> {
    let mut out: HashMap<SnapshotId, Vec<(VerificationId, VerificationRecord)>> = HashMap::new();
    for (id, record) in repo.load_manifests_cached::<VerificationRecord>()? {
        out.entry(record.snapshot).or_default().push((id, record));
    }
    Ok(out)
}

/// The newest verdict of each snapshot that has one.
pub fn verdicts(repo: &Repository) -> Result<HashMap<SnapshotId, Verdict>> {
    Ok(crate::verification::verifications(repo)?
        .into_iter()
        .filter_map(|(s, records)| records.last().map(|(_, r)| (s, r.verdict)))
        .collect())
}
