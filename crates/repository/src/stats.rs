//! `stats`: how big the repository is, and what deduplication and
//! compression saved.

use crate::error::Result;
use crate::id::BlobKind;
use crate::repo::Repository;

/// Repository size figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepoStats {
    /// Snapshots.
    pub snapshots: usize,
    /// Packs.
    pub packs: usize,
    /// Bytes of all packs.
    pub pack_bytes: u64,
    /// Unique data blobs.
    pub data_blobs: u64,
    /// Unique tree blobs.
    pub tree_blobs: u64,
    /// Plaintext bytes of the unique blobs.
    pub raw_bytes: u64,
    /// Stored bytes of the unique blobs.
    pub stored_bytes: u64,
    /// Sum of the file sizes of every snapshot (what restoring them all
    /// would write).
    pub snapshot_bytes: u64,
    /// `snapshot_bytes / raw data bytes`: the deduplication factor.
    pub dedup_ratio: f64,
    /// `raw_bytes / stored_bytes`: the compression factor.
    pub compression_ratio: f64,
}

/// Compute the figures from the index cache and the snapshots.
pub fn stats(repo: &Repository) -> Result<RepoStats> {
    let index = repo.index()?;
    let mut s = RepoStats::default();
    let mut raw_data = 0u64;
    index.for_each_blob(|_, loc| {
        match loc.kind {
            BlobKind::Data => {
                s.data_blobs += 1;
                raw_data += u64::from(loc.raw_length);
            }
            BlobKind::Tree => s.tree_blobs += 1,
        }
        s.raw_bytes += u64::from(loc.raw_length);
        s.stored_bytes += u64::from(loc.length);
    })?;
    let packs = index.packs()?;
    s.packs = packs.len();
    s.pack_bytes = packs.iter().map(|(_, size)| size).sum();
    let (snaps, _) = repo.snapshots()?;
    s.snapshots = snaps.len();
    s.snapshot_bytes = snaps.iter().map(|(_, snap)| snap.summary.bytes_total).sum();
    if raw_data > 0 {
        s.dedup_ratio = s.snapshot_bytes as f64 / raw_data as f64;
    }
    if s.stored_bytes > 0 {
        s.compression_ratio = s.raw_bytes as f64 / s.stored_bytes as f64;
    }
    Ok(s)
}

/// What some snapshots hold (`cairn stats SNAPSHOT…`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SnapshotStats {
    /// Snapshots counted.
    pub snapshots: usize,
    /// Regular files (a hard link's further names are not counted).
    pub files: u64,
    /// `restore-size`: the bytes restoring them would write (file sizes).
    pub restore_size: u64,
    /// Distinct data blobs they reference.
    pub data_blobs: u64,
    /// Distinct tree blobs they reference.
    pub tree_blobs: u64,
    /// `raw-data`: plaintext bytes of those distinct blobs (data and trees).
    pub raw_bytes: u64,
    /// Bytes those blobs take in packs (compressed, encrypted).
    pub stored_bytes: u64,
    /// Referenced blobs the index does not list (damage; `cairn check`).
    pub missing_blobs: u64,
}

/// Walk the snapshots' trees: files and their sizes, and the distinct
/// blobs they need with what those take.
pub fn snapshot_stats(
    repo: &Repository,
    snapshots: &[crate::snapshot::Snapshot],
) -> Result<SnapshotStats> {
    use std::collections::HashSet;
    let index = repo.index()?;
    let mut s = SnapshotStats {
        snapshots: snapshots.len(),
        ..Default::default()
    };
    let mut blobs: HashSet<[u8; 32]> = HashSet::new();
    let mut add = |id: [u8; 32], s: &mut SnapshotStats, data: bool| -> Result<()> {
        if !blobs.insert(id) {
            return Ok(());
        }
        if data {
            s.data_blobs += 1;
        } else {
            s.tree_blobs += 1;
        }
        match index.lookup(&id)? {
            Some(loc) => {
                s.raw_bytes += u64::from(loc.raw_length);
                s.stored_bytes += u64::from(loc.length);
            }
            None => s.missing_blobs += 1,
        }
        Ok(())
    };
    for snap in snapshots {
        add(*snap.tree.as_bytes(), &mut s, false)?;
        let mut found: Vec<([u8; 32], bool)> = Vec::new();
        crate::browse::walk(repo, &snap.tree, b"", &mut |_, n| {
            if let crate::tree::NodeData::File { chunks } = &n.data {
                s.files += 1;
                s.restore_size += n.meta.size;
                found.extend(chunks.iter().map(|c| (*c.as_bytes(), true)));
            }
            if let Some(t) = n.subtree() {
                found.push((*t.as_bytes(), false));
            }
            Ok(true)
        })?;
        for (id, data) in found.drain(..) {
            add(id, &mut s, data)?;
        }
    }
    Ok(s)
}
