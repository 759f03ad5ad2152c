//! `check`: is the repository whole, and if not, what does the damage
//! affect?
//!
//! Structure (always): every index object decodes; every indexed pack
//! exists with the indexed size and a header that agrees with the index;
//! every snapshot decodes; every tree of every snapshot decodes; every blob a
//! snapshot references is indexed. With `read_data`, every pack (or a random
//! subset) is downloaded, its hash compared with its name, and every blob
//! decrypted, decompressed and hashed. Damage is reported per snapshot and
//! file, so an operator knows what a lost pack cost.
//!
//! Check reads the store directly (index objects, not the local cache) and
//! takes no lock: it never writes.

use crate::crypto;
use crate::error::Result;
use crate::id::{BlobKind, ID_LEN, PackId, SnapshotId, TreeId};
use crate::inventory::Inventory;
use crate::layout::ObjectKind;
use crate::pack::{self, PackEntry};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::RawPath;
use crate::tree::{NodeData, Tree, check_name};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What to check.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Download and verify pack contents.
    pub read_data: bool,
    /// Only some of the packs when reading data.
    pub subset: Option<Subset>,
}

/// Which packs a check that reads data reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Subset {
    /// This percentage of the packs, chosen at random (rounded up).
    Percent(f64),
    /// Group `n` of `of` (1-based): the packs whose id's first byte is
    /// `n - 1` modulo `of`. The same group every time, so that `1/5` to
    /// `5/5` on five nights read every pack once.
    Part {
        /// Which group, from 1.
        n: u32,
        /// How many groups.
        of: u32,
    },
    /// Random packs up to this many bytes in all (at least one pack).
    Bytes(u64),
}

/// A snapshot entry affected by damage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Damage {
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// The entry's path in it.
    pub path: RawPath,
    /// What is wrong.
    pub problem: String,
}

/// A log segment affected by damage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogDamage {
    /// Its account.
    pub account: String,
    /// Its stream.
    pub stream: String,
    /// The segment's name.
    pub segment: String,
    /// What is wrong.
    pub problem: String,
}

/// The outcome of a check.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckReport {
    /// Snapshots checked.
    pub snapshots: usize,
    /// Distinct trees checked.
    pub trees: usize,
    /// Packs in the index.
    pub packs: usize,
    /// Blobs in the index.
    pub blobs: usize,
    /// Packs whose contents were read.
    pub packs_read: usize,
    /// Problems with the repository itself.
    pub errors: Vec<String>,
    /// Things that are not damage (unreferenced packs, stray files).
    pub warnings: Vec<String>,
    /// What the damage affects.
    pub damaged: Vec<Damage>,
    /// Log segments checked.
    pub log_segments: usize,
    /// Damaged log segments and breaks in log chains.
    pub damaged_logs: Vec<LogDamage>,
}

impl CheckReport {
    /// No errors and no damage.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty() && self.damaged.is_empty() && self.damaged_logs.is_empty()
    }
}

/// How a file whose recorded size differs from its content is reported.
const SIZE_MISMATCH: &str = "its size contradicts its content";

/// Damage found under a tree: (path relative to the tree, problem).
type DamageList = Arc<Vec<(Vec<u8>, String)>>;
/// Hard links under a tree: (path relative to the tree, target path in the
/// snapshot).
type LinkList = Arc<Vec<(Vec<u8>, Vec<u8>)>>;

/// What is known of a tree: its damage and its hard links.
#[derive(Clone, Default)]
struct TreeFacts {
    damage: DamageList,
    links: LinkList,
}

/// The outcome of reading one pack: blob-level errors and a pack-level one.
struct PackRead {
    id: PackId,
    blob_errors: Vec<([u8; ID_LEN], String)>,
    pack_error: Option<String>,
}

/// What is wrong where: whole packs, and single blobs in a pack.
#[derive(Default)]
struct Bad {
    packs: HashMap<PackId, String>,
    blobs: HashMap<([u8; ID_LEN], PackId), String>,
}

impl Bad {
    /// Why the copy of `blob` in `pack` cannot be read, if it cannot.
    fn at(&self, blob: &[u8; ID_LEN], pack: &PackId) -> Option<&String> {
        self.packs
            .get(pack)
            .or_else(|| self.blobs.get(&(*blob, *pack)))
    }
}

/// Whether some good copy of `id` exists; otherwise why not.
fn blob_problem(
    inventory: &Inventory,
    bad: &Bad,
    kind: BlobKind,
    id: &[u8; ID_LEN],
) -> Option<String> {
    let places = inventory.locations(id);
    let Some(first) = places.first() else {
        return Some(format!("{kind} blob {} is missing", hex::encode(&id[..4])));
    };
    let mut first_problem = None;
    for loc in places.iter().filter(|l| l.kind == kind) {
        match bad.at(id, &loc.pack) {
            None => return None,
            Some(why) => {
                first_problem.get_or_insert_with(|| why.clone());
            }
        }
    }
    Some(first_problem.unwrap_or_else(|| {
        format!(
            "{kind} blob {} is indexed as {} blob",
            hex::encode(&id[..4]),
            first.kind
        )
    }))
}

struct Checker<'a> {
    repo: &'a Repository,
    inventory: &'a Inventory,
    bad: Bad,
}

impl Checker<'_> {
    fn blob_problem(&self, kind: BlobKind, id: &[u8; ID_LEN]) -> Option<String> {
        blob_problem(self.inventory, &self.bad, kind, id)
    }

    /// Damage and hard links under each tree, relative to the tree,
    /// memoized across snapshots; iterative so deep trees cannot exhaust
    /// the stack.
    fn tree_damage(
        &self,
        root: TreeId,
        memo: &mut HashMap<TreeId, TreeFacts>,
        warnings: &mut Vec<String>,
    ) -> TreeFacts {
        struct Frame {
            id: TreeId,
            tree: Tree,
            next: usize,
            acc: Vec<(Vec<u8>, String)>,
            links: Vec<(Vec<u8>, Vec<u8>)>,
        }
        if let Some(d) = memo.get(&root) {
            return d.clone();
        }
        let mut on_stack: HashSet<TreeId> = HashSet::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut pending = Some(root);
        loop {
            if let Some(id) = pending.take() {
                let loaded = match self.blob_problem(BlobKind::Tree, id.as_bytes()) {
                    Some(p) => Err(p),
                    None => self
                        .inventory
                        .read_tree(self.repo, &id)
                        .map_err(|e| e.to_string()),
                };
                match loaded {
                    Ok(tree) => {
                        if let Some(dup) = tree.duplicate_name() {
                            warnings.push(format!(
                                "tree {} lists {:?} twice; restore leaves out the entries of that name",
                                id.short(),
                                String::from_utf8_lossy(dup)
                            ));
                        }
                        on_stack.insert(id);
                        stack.push(Frame {
                            id,
                            tree,
                            next: 0,
                            acc: Vec::new(),
                            links: Vec::new(),
                        });
                    }
                    Err(p) => {
                        memo.insert(
                            id,
                            TreeFacts {
                                damage: Arc::new(vec![(
                                    Vec::new(),
                                    format!("directory unreadable: {p}"),
                                )]),
                                links: LinkList::default(),
                            },
                        );
                    }
                }
            }
            let Some(top) = stack.last_mut() else {
                break;
            };
            let Some(node) = top.tree.nodes.get(top.next) else {
                let done = stack.pop();
                if let Some(done) = done {
                    on_stack.remove(&done.id);
                    memo.insert(
                        done.id,
                        TreeFacts {
                            damage: Arc::new(done.acc),
                            links: Arc::new(done.links),
                        },
                    );
                }
                continue;
            };
            if let Err(why) = check_name(&node.name) {
                top.acc.push((
                    node.name.clone(),
                    format!("invalid name ({why}); restore skips it"),
                ));
            }
            match &node.data {
                NodeData::File { chunks } => {
                    let mut content = Some(0u64);
                    for c in chunks {
                        if let Some(p) = self.blob_problem(BlobKind::Data, c.as_bytes()) {
                            top.acc.push((node.name.clone(), p));
                            content = None;
                            break;
                        }
                        content = content.and_then(|n| {
                            self.inventory
                                .blob(c.as_bytes())
                                .map(|l| n + u64::from(l.entry.raw_length))
                        });
                    }
                    if let Some(n) = content
                        && n != node.meta.size
                    {
                        top.acc.push((
                            node.name.clone(),
                            format!(
                                "{SIZE_MISMATCH}: {} bytes recorded, its chunks hold {n}",
                                node.meta.size
                            ),
                        ));
                    }
                }
                NodeData::Hardlink { target } => {
                    top.links.push((node.name.clone(), target.clone()));
                }
                NodeData::Dir { subtree } => {
                    if let Some(d) = memo.get(subtree) {
                        let name = node.name.clone();
                        for (p, why) in d.damage.iter() {
                            top.acc.push((crate::browse::join(&name, p), why.clone()));
                        }
                        for (p, target) in d.links.iter() {
                            top.links
                                .push((crate::browse::join(&name, p), target.clone()));
                        }
                    } else if on_stack.contains(subtree) {
                        top.acc.push((node.name.clone(), "directory cycle".into()));
                    } else {
                        pending = Some(*subtree);
                        continue;
                    }
                }
                _ => {}
            }
            top.next += 1;
        }
        memo.get(&root).cloned().unwrap_or_default()
    }
}

/// Packs no index lists: retired by prune (waiting for deletion), left by
/// an interrupted backup (adopted by the next one), or damaged.
fn unindexed_packs(
    repo: &Repository,
    packs: &HashMap<PackId, (u64, &[PackEntry])>,
    present: &HashMap<PackId, u64>,
    report: &mut CheckReport,
) -> Result<()> {
    let unindexed: Vec<(PackId, u64)> = present
        .iter()
        .filter(|(p, _)| !packs.contains_key(p))
        .map(|(p, s)| (*p, *s))
        .collect();
    if unindexed.is_empty() {
        return Ok(());
    }
    let records = match crate::pending::read_records(repo.keys(), repo.store()) {
        Ok(r) => r,
        Err(e) => {
            report.errors.push(format!("pending deletion records: {e}"));
            Vec::new()
        }
    };
    let since = crate::pending::first_recorded(records.iter().map(|(_, r)| r));
    let retired: HashSet<PackId> = since
        .keys()
        .filter_map(|e| crate::pending::pack_of(e))
        .collect();
    let (waiting, others): (Vec<_>, Vec<_>) = unindexed
        .into_iter()
        .partition(|(p, _)| retired.contains(p));
    if !waiting.is_empty() {
        let first = since
            .iter()
            .filter(|(e, _)| crate::pending::pack_of(e).is_some_and(|p| present.contains_key(&p)))
            .map(|(_, t)| *t)
            .min();
        report.warnings.push(format!(
            "{} packs ({} bytes) were retired by prune and wait for a later prune to delete them{}",
            waiting.len(),
            waiting.iter().map(|(_, s)| s).sum::<u64>(),
            first
                .map(|t| format!(" (retired since {t})"))
                .unwrap_or_default()
        ));
    }
    let headers: Vec<(PackId, Result<Vec<PackEntry>>)> = others
        .par_iter()
        .map(|(p, s)| {
            (
                *p,
                crate::objects::read_pack_header(repo.store(), repo.keys(), p, *s),
            )
        })
        .collect();
    let mut leftovers = 0;
    for (p, header) in headers {
        match header {
            Ok(_) => leftovers += 1,
            Err(e) => report.errors.push(format!(
                "pack {} is in no index and damaged: {e} (prune deletes it once it is old enough)",
                p.short()
            )),
        }
    }
    if leftovers > 0 {
        report.warnings.push(format!(
            "{leftovers} packs are not in any index (left by an interrupted backup; the next backup adopts them, prune removes what stays unused)"
        ));
    }
    Ok(())
}

/// The packs in an order no one can predict (a keyed hash of each id
/// under a fresh random key).
fn shuffled(packs: Vec<PackId>) -> Result<Vec<PackId>> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    let mut keyed: Vec<([u8; 32], PackId)> = packs
        .into_iter()
        .map(|p| (*blake3::keyed_hash(&key, p.as_bytes()).as_bytes(), p))
        .collect();
    keyed.sort();
    Ok(keyed.into_iter().map(|(_, p)| p).collect())
}

fn pick_subset(
    packs: Vec<PackId>,
    subset: Subset,
    size_of: &dyn Fn(&PackId) -> u64,
) -> Result<Vec<PackId>> {
    Ok(match subset {
        Subset::Part { n, of } => {
            if of == 0 || n == 0 || n > of {
                return Err(crate::Error::invalid(
                    "subset",
                    format!("{n}/{of}: give n/t with 1 <= n <= t"),
                ));
            }
            packs
                .into_iter()
                .filter(|p| u32::from(p.as_bytes()[0]) % of == n - 1)
                .collect()
        }
        Subset::Percent(percent) => {
            let n = ((packs.len() as f64) * percent / 100.0).ceil() as usize;
            shuffled(packs)?.into_iter().take(n).collect()
        }
        Subset::Bytes(limit) => {
            let mut total = 0u64;
            let mut out = Vec::new();
            for p in shuffled(packs)? {
                let size = size_of(&p);
                if !out.is_empty() && total.saturating_add(size) > limit {
                    break;
                }
                total = total.saturating_add(size);
                out.push(p);
            }
            out
        }
    })
}

/// Check the repository.
pub fn check(
    repo: &Repository,
    opts: &CheckOptions,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    let store = repo.store();
    let keys = repo.keys();
    let mut report = CheckReport::default();

    // Index objects, straight from the store.
    progress.phase("index", None);
    let inventory = Inventory::load(repo)?;
    report.errors.extend(inventory.errors.iter().cloned());
    for stray in &inventory.strays {
        report.warnings.push(format!("unrecognised object {stray}"));
    }
    let packs: HashMap<PackId, (u64, &[PackEntry])> = inventory
        .packs
        .iter()
        .map(|(id, p)| (*id, (p.size, p.blobs.as_slice())))
        .collect();
    report.packs = packs.len();
    report.blobs = inventory.blob_count();

    // Packs: existence, size, header.
    progress.phase("packs", None);
    let pack_listing = store.list(ObjectKind::Pack)?;
    let present: HashMap<PackId, u64> = pack_listing
        .objects
        .iter()
        .filter_map(|o| PackId::from_hex(&o.name).ok().map(|id| (id, o.size)))
        .collect();
    for stray in pack_listing.unrecognised {
        report.warnings.push(format!(
            "unrecognised file {stray} (an interrupted upload?)"
        ));
    }
    let mut bad = Bad::default();
    let mut readable_packs = Vec::new();
    let mut missing = Vec::new();
    for (id, (size, _)) in &packs {
        match present.get(id) {
            None => {
                bad.packs
                    .insert(*id, format!("in missing pack {}", id.short()));
                missing.push(*id);
            }
            Some(actual) if actual != size => {
                report.errors.push(format!(
                    "pack {} is {actual} bytes, the index says {size}",
                    id.short()
                ));
                bad.packs
                    .insert(*id, format!("in damaged pack {}", id.short()));
            }
            Some(_) => readable_packs.push((*id, *size)),
        }
    }
    unindexed_packs(repo, &packs, &present, &mut report)?;
    let header_results: Vec<(PackId, std::result::Result<(), String>)> = readable_packs
        .par_iter()
        .map(|(id, size)| {
            let result = crate::objects::read_pack_header(store, keys, id, *size)
                .map_err(|e| e.to_string())
                .and_then(|header| {
                    let (_, indexed) = &packs[id];
                    let header: std::collections::HashSet<&PackEntry> = header.iter().collect();
                    for e in indexed.iter() {
                        if !header.contains(e) {
                            return Err(format!(
                                "blob {} is not where the index says",
                                hex::encode(&e.id[..4])
                            ));
                        }
                    }
                    Ok(())
                });
            (*id, result)
        })
        .collect();
    for (id, result) in header_results {
        if let Err(e) = result {
            report.errors.push(format!("pack {}: {e}", id.short()));
            bad.packs
                .insert(id, format!("in damaged pack {}", id.short()));
        }
    }

    // Pack contents.
    if opts.read_data {
        let mut ids: Vec<PackId> = readable_packs.iter().map(|(id, _)| *id).collect();
        ids.sort();
        if let Some(subset) = opts.subset {
            ids = pick_subset(ids, subset, &|id| packs.get(id).map_or(0, |p| p.0))?;
        }
        progress.phase("read data", Some(ids.iter().map(|id| packs[id].0).sum()));
        report.packs_read = ids.len();
        let results: Vec<PackRead> = ids
            .par_iter()
            .map(|id| {
                // A pack that fails its hash is read once more before it
                // is reported (one bad read is not damage).
                let bytes = match store.get_object_checked(&id, |b| {
                    pack::verify_pack(keys, id, &b)
                        .map(|_| b)
                        .map_err(crate::Error::from)
                }) {
                    Ok(b) => b,
                    Err(e) => {
                        return PackRead {
                            id: *id,
                            blob_errors: Vec::new(),
                            pack_error: Some(e.to_string()),
                        };
                    }
                };
                progress.bytes(bytes.len() as u64);
                let mut blob_errors = Vec::new();
                let keys = match repo.keys_for_pack(id) {
                    Ok(k) => k,
                    Err(e) => {
                        return PackRead {
                            id: *id,
                            blob_errors,
                            pack_error: Some(e.to_string()),
                        };
                    }
                };
                for e in packs[id].1 {
                    let start = e.offset as usize;
                    let end = start + e.length as usize;
                    let Some(stored) = bytes.get(start..end) else {
                        blob_errors.push((e.id, "outside the pack".into()));
                        continue;
                    };
                    if let Err(err) =
                        crypto::decode_blob(&keys, e.kind, &e.id, stored, e.raw_length)
                    {
                        blob_errors.push((e.id, err.to_string()));
                    }
                }
                PackRead {
                    id: *id,
                    blob_errors,
                    pack_error: None,
                }
            })
            .collect();
        for PackRead {
            id,
            blob_errors,
            pack_error,
        } in results
        {
            if let Some(e) = pack_error {
                report.errors.push(format!("pack {}: {e}", id.short()));
                bad.packs
                    .insert(id, format!("in corrupt pack {}", id.short()));
            }
            for (blob, e) in blob_errors {
                report.errors.push(format!(
                    "pack {}: blob {}: {e}",
                    id.short(),
                    hex::encode(&blob[..4])
                ));
                bad.blobs.insert((blob, id), format!("corrupt ({e})"));
            }
        }
    }

    // Missing packs: lost, or healed (everything in them is stored in
    // another pack too, by a later backup).
    missing.sort();
    for id in missing {
        let entries = &packs[&id].1;
        let elsewhere = entries
            .iter()
            .filter(|e| blob_problem(&inventory, &bad, e.kind, &e.id).is_none())
            .count();
        if elsewhere == entries.len() {
            report.warnings.push(format!(
                "pack {} is missing, but all {} blobs it held are stored in other packs (healed by a later backup); the next prune drops it from the index",
                id.short(),
                entries.len()
            ));
        } else {
            report.errors.push(format!(
                "pack {} is missing ({} of its {} blobs are lost{})",
                id.short(),
                entries.len() - elsewhere,
                entries.len(),
                if elsewhere > 0 {
                    format!("; {elsewhere} are stored elsewhere too")
                } else {
                    String::new()
                }
            ));
        }
    }

    // Snapshots and their trees.
    progress.phase("snapshots", None);
    let (snapshots, unreadable) = repo.snapshots()?;
    for (id, e) in unreadable {
        report.errors.push(format!("snapshot {}: {e}", id.short()));
    }
    report.snapshots = snapshots.len();
    if let Err(e) = crate::account::accounts(repo) {
        report.errors.push(format!("account events: {e}"));
    }
    if let Err(e) = crate::verification::verifications(repo) {
        report.errors.push(format!("verification records: {e}"));
    }
    let checker = Checker {
        repo,
        inventory: &inventory,
        bad,
    };
    let mut memo = HashMap::new();
    let mut warnings = Vec::new();
    for (id, snap) in &snapshots {
        let facts = checker.tree_damage(snap.tree, &mut memo, &mut warnings);
        // Files this snapshot's backup saw change while it read them were
        // recorded with their size from before the read (cairn before
        // 2026-12 did so): not damage.
        let changed: HashSet<&[u8]> = snap
            .summary
            .changed_during_read
            .iter()
            .map(|p| p.0.strip_prefix(b"/").unwrap_or(&p.0))
            .collect();
        for (path, problem) in facts.damage.iter() {
            if problem.starts_with(SIZE_MISMATCH) && changed.contains(path.as_slice()) {
                continue;
            }
            report.damaged.push(Damage {
                snapshot: *id,
                path: RawPath(path.clone()),
                problem: problem.clone(),
            });
        }
        // A hard link shares the content of its first name.
        let damaged: HashSet<&Vec<u8>> = facts.damage.iter().map(|(p, _)| p).collect();
        for (path, target) in facts.links.iter() {
            if damaged.contains(target) {
                report.damaged.push(Damage {
                    snapshot: *id,
                    path: RawPath(path.clone()),
                    problem: format!(
                        "hard link to {}, which is damaged",
                        String::from_utf8_lossy(target)
                    ),
                });
            }
        }
    }
    report.trees = memo.len();

    // Log streams: readable manifests, unbroken chains, every chunk there.
    match crate::logs::all_log_segments(repo) {
        Err(e) => report.errors.push(format!("log segments: {e}")),
        Ok(segments) => {
            report.log_segments = segments.len();
            let mut streams: std::collections::BTreeMap<
                (String, String),
                Vec<crate::logs::Segment>,
            > = std::collections::BTreeMap::new();
            for seg in segments {
                streams
                    .entry((seg.manifest.account.clone(), seg.manifest.stream.clone()))
                    .or_default()
                    .push(seg);
            }
            for ((account, stream), segs) in streams {
                for b in crate::logs::chain_breaks(&segs) {
                    report.damaged_logs.push(LogDamage {
                        account: account.clone(),
                        stream: stream.clone(),
                        segment: b.before.clone(),
                        problem: format!(
                            "chain break after {}: {}",
                            b.after.unwrap_or_else(|| "the start".into()),
                            b.problem
                        ),
                    });
                }
                for seg in &segs {
                    let problem = seg
                        .manifest
                        .chunks
                        .iter()
                        .find_map(|c| checker.blob_problem(BlobKind::Data, c.as_bytes()));
                    if let Some(problem) = problem {
                        report.damaged_logs.push(LogDamage {
                            account: account.clone(),
                            stream: stream.clone(),
                            segment: seg.manifest.name.clone(),
                            problem,
                        });
                    }
                }
            }
        }
    }
    warnings.sort();
    warnings.dedup();
    report.warnings.extend(warnings);
    progress.done();
    Ok(report)
}

#[cfg(test)]
mod subset_tests {
    use super::*;

    fn packs() -> Vec<PackId> {
        (0..=255u8).map(|b| PackId::of_bytes(&[b, 1])).collect()
    }

    #[test]
    fn parts_cover_every_pack_once_and_sizes_and_percentages_bound_the_pick() {
        let all = packs();
        let mut seen = HashSet::new();
        for n in 1..=5 {
            for p in pick_subset(all.clone(), Subset::Part { n, of: 5 }, &|_| 1).unwrap() {
                assert!(seen.insert(p), "{p:?} in two parts");
            }
        }
        assert_eq!(seen.len(), all.len());
        assert!(pick_subset(all.clone(), Subset::Part { n: 6, of: 5 }, &|_| 1).is_err());
        assert!(pick_subset(all.clone(), Subset::Part { n: 0, of: 5 }, &|_| 1).is_err());
        let tenth = pick_subset(all.clone(), Subset::Percent(10.0), &|_| 1).unwrap();
        assert_eq!(tenth.len(), 26);
        let sized = pick_subset(all.clone(), Subset::Bytes(1000), &|_| 100).unwrap();
        assert_eq!(sized.len(), 10);
        // Never nothing: one pack even when it alone is larger.
        let one = pick_subset(all, Subset::Bytes(10), &|_| 100).unwrap();
        assert_eq!(one.len(), 1);
    }
}
