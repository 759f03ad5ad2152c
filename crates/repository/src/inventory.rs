//! What the repository holds according to its index objects, read straight
//! from the store (not the local cache, which may be stale): used by
//! `check` and `prune`, which must not trust derived data.

use crate::crypto;
use crate::error::{Error, Result};
use crate::id::{BlobKind, ID_LEN, IndexId, PackId, SnapshotId, TreeId};
use crate::index::IndexFile;
use crate::pack::PackEntry;
use crate::repo::Repository;
use crate::store::{Listing, ObjectKind};
use crate::tree::{NodeData, Tree};
use std::collections::{HashMap, HashSet};

/// Where a blob is.
#[derive(Debug, Clone, Copy)]
pub struct Location {
    /// Its kind.
    pub kind: BlobKind,
    /// The pack holding it.
    pub pack: PackId,
    /// Its entry in the pack.
    pub entry: PackEntry,
}

/// A pack as the index describes it.
#[derive(Debug, Clone, Default)]
pub struct PackInfo {
    /// Size in bytes.
    pub size: u64,
    /// Its blobs (union over every index object listing it).
    pub blobs: Vec<PackEntry>,
}

/// The repository according to its index objects.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Index objects read.
    pub index_ids: Vec<IndexId>,
    /// Packs they list.
    pub packs: HashMap<PackId, PackInfo>,
    /// Every blob, at the first place an index lists it.
    pub blobs: HashMap<[u8; ID_LEN], Location>,
    /// Index objects that could not be read, and disagreements.
    pub errors: Vec<String>,
    /// Unrecognised names under `index/`.
    pub strays: Vec<String>,
}

impl Inventory {
    /// Read every index object.
    pub fn load(repo: &Repository) -> Result<Self> {
        let store = repo.store();
        let Listing {
            objects,
            unrecognised,
        } = store.list(ObjectKind::Index)?;
        let names: Vec<String> = objects.iter().map(|o| o.name.clone()).collect();
        let fetched = store.get_many(ObjectKind::Index, &names, 16);
        let mut inv = Inventory {
            strays: unrecognised,
            ..Inventory::default()
        };
        for (name, bytes) in names.iter().zip(fetched) {
            let Ok(id) = IndexId::from_hex(name) else {
                continue;
            };
            let index = match bytes.and_then(|b| IndexFile::open(repo.keys(), &id, &b)) {
                Ok(i) => i,
                Err(e) if e.is_not_found() => continue,
                Err(e) => {
                    inv.errors.push(format!("index object {}: {e}", id.short()));
                    continue;
                }
            };
            inv.index_ids.push(id);
            for p in index.packs {
                inv.add_pack(p.id, p.size, p.blobs);
            }
        }
        Ok(inv)
    }

    /// Merge a pack's blobs (from an index object or a pack header).
    pub fn add_pack(&mut self, id: PackId, size: u64, blobs: Vec<PackEntry>) {
        let info = self.packs.entry(id).or_insert_with(|| PackInfo {
            size,
            blobs: Vec::new(),
        });
        if info.size != size {
            self.errors.push(format!(
                "pack {} is listed with sizes {} and {size}",
                id.short(),
                info.size
            ));
        }
        for b in blobs {
            self.blobs.entry(b.id).or_insert(Location {
                kind: b.kind,
                pack: id,
                entry: b,
            });
            if !info.blobs.iter().any(|e| e.id == b.id) {
                info.blobs.push(b);
            }
        }
    }

    /// Read a tree through the inventory.
    pub fn read_tree(&self, repo: &Repository, id: &TreeId) -> Result<Tree> {
        let Some(loc) = self
            .blobs
            .get(id.as_bytes())
            .filter(|l| l.kind == BlobKind::Tree)
        else {
            return Err(Error::NotFound {
                what: format!("tree {} (not in any index object)", id.short()),
            });
        };
        let e = loc.entry;
        let stored = repo.store().get_range(
            ObjectKind::Pack,
            &loc.pack.to_hex(),
            u64::from(e.offset)..u64::from(e.offset) + u64::from(e.length),
        )?;
        let plain = crypto::decode_blob(
            repo.keys(),
            BlobKind::Tree,
            id.as_bytes(),
            &stored,
            e.raw_length,
        )?;
        Tree::decode(&plain, &format!("tree {}", id.to_hex()))
    }

    /// Every blob the given snapshots reference (trees and data), walking
    /// each tree once. Fails on a tree it cannot read: then nobody can say
    /// what is in use.
    pub fn used_blobs(
        &self,
        repo: &Repository,
        roots: &[(SnapshotId, TreeId)],
    ) -> Result<HashSet<[u8; ID_LEN]>> {
        let mut used: HashSet<[u8; ID_LEN]> = HashSet::new();
        let mut stack: Vec<(SnapshotId, TreeId)> = roots.to_vec();
        while let Some((snap, tree_id)) = stack.pop() {
            if !used.insert(*tree_id.as_bytes()) {
                continue;
            }
            let tree = self.read_tree(repo, &tree_id).map_err(|e| {
                Error::corrupt(
                    format!("snapshot {}", snap.short()),
                    format!("{e}; run `cairn check` (and `cairn repair index`) before pruning"),
                )
            })?;
            for node in tree.nodes {
                match node.data {
                    NodeData::File { chunks } => {
                        used.extend(chunks.iter().map(|c| *c.as_bytes()));
                    }
                    NodeData::Dir { subtree } => stack.push((snap, subtree)),
                    _ => {}
                }
            }
        }
        Ok(used)
    }
}
