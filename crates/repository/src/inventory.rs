//! What the repository holds according to its index objects, read straight
//! from the store (not the local cache, which may be stale): used by
//! `check` and `prune`, which must not trust derived data.

use crate::error::{Error, Result};
use crate::id::{BlobKind, ID_LEN, IndexId, PackId, SnapshotId, TreeId};
use crate::layout::ObjectKind;
use crate::pack::PackEntry;
use crate::repo::Repository;
use crate::store::Listing;
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

/// Where a blob is, as the inventory keeps it: the pack by its number in
/// [`Inventory`]'s list of packs and the rest of its entry (the id is the
/// key), 20 bytes instead of a [`Location`]'s 84.
#[derive(Debug, Clone, Copy)]
struct Slot {
    pack: u32,
    offset: u32,
    length: u32,
    raw_length: u32,
    kind: BlobKind,
}

/// A pack as the index describes it.
#[derive(Debug, Clone, Default)]
pub struct PackInfo {
    /// Size in bytes.
    pub size: u64,
    /// Its blobs (union over every index object listing it).
    pub blobs: Vec<PackEntry>,
    /// The put-only session its blobs are sealed to (`None`: the master
    /// key).
    pub sealing: Option<cairn_format::seal_to::Sealing>,
}

/// The repository according to its index objects.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Index objects read.
    pub index_ids: Vec<IndexId>,
    /// Packs they list.
    pub packs: HashMap<PackId, PackInfo>,
    /// Every blob, at the first place an index lists it
    /// ([`Inventory::blob`]).
    blobs: HashMap<[u8; ID_LEN], Slot>,
    /// Packs by number, for `blobs`.
    pack_ids: Vec<PackId>,
    pack_numbers: HashMap<PackId, u32>,
    /// Further places of blobs listed in more than one pack.
    pub alternates: HashMap<[u8; ID_LEN], Vec<Location>>,
    /// Index objects that could not be read, and disagreements.
    pub errors: Vec<String>,
    /// Unrecognised names under `index/`.
    pub strays: Vec<String>,
}

impl Inventory {
    /// Read every index object. One that is listed but gone when read was
    /// replaced by a prune (which writes the new index objects before it
    /// deletes the old): the index is listed again, up to three times.
    pub fn load(repo: &Repository) -> Result<Self> {
        let store = repo.store();
        let mut inv = Inventory::default();
        let mut done: HashSet<IndexId> = HashSet::new();
        for _round in 0..3 {
            let Listing {
                objects,
                unrecognised,
            } = store.list(ObjectKind::Index)?;
            inv.strays = unrecognised;
            let ids: Vec<IndexId> = objects
                .iter()
                .filter_map(|o| IndexId::from_hex(&o.name).ok())
                .filter(|id| !done.contains(id))
                .collect();
            let mut vanished = false;
            // A few at a time: each is merged and dropped before the next
            // are read, so their decoded entries never all sit in memory
            // beside the inventory.
            let fetched = ids.chunks(16).flat_map(|batch| {
                batch
                    .iter()
                    .zip(crate::objects::fetch_indexes(store, repo.keys(), batch))
            });
            for (id, opened) in fetched {
                done.insert(*id);
                match opened {
                    Ok(index) => {
                        inv.index_ids.push(*id);
                        for p in index.packs {
                            inv.add_pack(p.id, p.size, p.blobs, p.sealing);
                        }
                    }
                    Err(e) if e.is_not_found() => vanished = true,
                    Err(e) => inv.errors.push(format!("index object {}: {e}", id.short())),
                }
            }
            if !vanished {
                break;
            }
        }
        Ok(inv)
    }

    /// Merge a pack's blobs (from an index object or a pack header).
    pub fn add_pack(
        &mut self,
        id: PackId,
        size: u64,
        blobs: Vec<PackEntry>,
        sealing: Option<cairn_format::seal_to::Sealing>,
    ) {
        let info = self.packs.entry(id).or_insert_with(|| PackInfo {
            size,
            blobs: Vec::new(),
            sealing,
        });
        // Each blob once per pack, also when a second index object lists
        // the pack (a set of what is there, not a search per blob).
        let mut known: HashSet<[u8; ID_LEN]> = info.blobs.iter().map(|e| e.id).collect();
        if info.size != size {
            self.errors.push(format!(
                "pack {} is listed with sizes {} and {size}",
                id.short(),
                info.size
            ));
        }
        let number = match self.pack_numbers.get(&id) {
            Some(n) => *n,
            None => {
                let n = u32::try_from(self.pack_ids.len()).unwrap_or(u32::MAX);
                self.pack_ids.push(id);
                self.pack_numbers.insert(id, n);
                n
            }
        };
        // A pack seen for the first time keeps the list it came with (each
        // blob once), instead of a copy of it.
        let fresh = info.blobs.is_empty();
        let mut blobs = blobs;
        if fresh {
            blobs.retain(|b| known.insert(b.id));
        }
        for &b in &blobs {
            match self.blobs.get(&b.id) {
                None => {
                    self.blobs.insert(
                        b.id,
                        Slot {
                            pack: number,
                            offset: b.offset,
                            length: b.length,
                            raw_length: b.raw_length,
                            kind: b.kind,
                        },
                    );
                }
                Some(first) if first.pack == number => {}
                Some(_) => {
                    let more = self.alternates.entry(b.id).or_default();
                    if !more.iter().any(|l| l.pack == id) {
                        more.push(Location {
                            kind: b.kind,
                            pack: id,
                            entry: b,
                        });
                    }
                }
            }
            if !fresh && known.insert(b.id) {
                info.blobs.push(b);
            }
        }
        if fresh {
            info.blobs = blobs;
        }
    }

    /// Where a blob is: the first place an index lists it.
    pub fn blob(&self, id: &[u8; ID_LEN]) -> Option<Location> {
        let slot = self.blobs.get(id)?;
        Some(Location {
            kind: slot.kind,
            pack: *self.pack_ids.get(slot.pack as usize)?,
            entry: PackEntry {
                kind: slot.kind,
                id: *id,
                offset: slot.offset,
                length: slot.length,
                raw_length: slot.raw_length,
            },
        })
    }

    /// How many distinct blobs the index objects list.
    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// Every place a blob is listed: the first, then the others.
    pub fn locations(&self, id: &[u8; ID_LEN]) -> Vec<Location> {
        let mut all: Vec<Location> = self.blob(id).into_iter().collect();
        if let Some(more) = self.alternates.get(id) {
            all.extend(more.iter().copied());
        }
        all
    }

    /// Read a tree through the inventory, from the first of its places
    /// that reads back whole.
    pub fn read_tree(&self, repo: &Repository, id: &TreeId) -> Result<Tree> {
        let places: Vec<Location> = self
            .locations(id.as_bytes())
            .into_iter()
            .filter(|l| l.kind == BlobKind::Tree)
            .collect();
        let plain = crate::repo::read_first_good(
            repo,
            BlobKind::Tree,
            id.as_bytes(),
            places
                .iter()
                .map(|l| (l.pack, l.entry.offset, l.entry.length, l.entry.raw_length)),
        )
        .map_err(|e| match e {
            Error::NotFound { .. } if places.is_empty() => Error::NotFound {
                what: format!("tree {} (not in any index object)", id.short()),
            },
            e => e,
        })?;
        Ok(Tree::decode(&plain, &format!("tree {}", id.to_hex()))?)
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
