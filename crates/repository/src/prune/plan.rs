//! Prune's plan: what is used, where each used blob is kept (confirmed from
//! pack headers where copies compete), and what happens to every pack.

use super::{ORPHAN_MIN_AGE, PruneOptions, PruneReport, STAGING_MIN_AGE};
use crate::error::{Error, Result};
use crate::id::{ID_LEN, PackId};
use crate::inventory::Inventory;
use crate::layout::ObjectKind;
use crate::pack::PackEntry;
use crate::pending;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::store::Listed;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

/// The names of what the first listing showed, to compare with a second
/// listing before anything is deleted.
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub index: HashSet<String>,
    pub snapshots: HashSet<String>,
    pub logs: HashSet<String>,
}

/// The packs and decisions behind a report.
pub(super) struct Plan {
    pub report: PruneReport,
    pub inventory: Inventory,
    /// Used blob -> the one present pack it is kept in.
    pub home: HashMap<[u8; ID_LEN], PackId>,
    /// Packs the new index lists as they are.
    pub keep: Vec<PackId>,
    /// Packs whose used blobs are copied out, then retired.
    pub repack: Vec<PackId>,
    /// Packs deleted in this run (after the second listing agrees).
    pub delete_now: Vec<(PackId, u64)>,
    /// Retired packs still waiting after this run, since when.
    pub waiting: Vec<(PackId, u64, jiff::Timestamp)>,
    /// Entries of the records that are not packs (a replica's), carried on.
    pub foreign: Vec<(String, jiff::Timestamp)>,
    /// The records read, retired once the new ones are written.
    pub old_records: Vec<String>,
    pub seen: Seen,
    pub staging: Vec<cairn_store::Staging>,
    pub now: jiff::Timestamp,
}

fn signed(d: std::time::Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX)
}

/// Give each used blob one home: the first pack holding it in `order`.
/// Returns the homes and the packs that hold a used blob also held
/// elsewhere (whose copies must be confirmed from headers).
fn assign_homes(
    inventory: &Inventory,
    order: &[PackId],
    used: &HashSet<[u8; ID_LEN]>,
) -> (HashMap<[u8; ID_LEN], PackId>, HashSet<PackId>) {
    let mut home: HashMap<[u8; ID_LEN], PackId> = HashMap::with_capacity(used.len());
    let mut shared = HashSet::new();
    for p in order {
        for b in &inventory.packs[p].blobs {
            if !used.contains(&b.id) {
                continue;
            }
            match home.get(&b.id) {
                None => {
                    home.insert(b.id, *p);
                }
                Some(h) if h != p => {
                    shared.insert(*h);
                    shared.insert(*p);
                }
                Some(_) => {}
            }
        }
    }
    (home, shared)
}

pub(super) fn plan(
    repo: &Repository,
    opts: &PruneOptions,
    progress: &dyn Progress,
) -> Result<Plan> {
    let now = opts.now.unwrap_or_else(jiff::Timestamp::now);
    let delete_after = signed(opts.delete_after);
    let orphan_age = signed(opts.delete_after.max(ORPHAN_MIN_AGE));
    let store = repo.store();
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
    let mut seen = Seen {
        index: inventory.index_ids.iter().map(|i| i.to_hex()).collect(),
        ..Seen::default()
    };
    let indexed: HashSet<PackId> = inventory.packs.keys().copied().collect();
    let listing = store.list(ObjectKind::Pack)?;
    let present: HashMap<PackId, Listed> = listing
        .objects
        .into_iter()
        .filter_map(|o| PackId::from_hex(&o.name).ok().map(|id| (id, o)))
        .collect();
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        delete_after_secs: opts.delete_after.as_secs(),
        ..PruneReport::default()
    };

    // Which unindexed packs were retired, and since when. Records naming a
    // pack an index lists again (adopted, repaired) no longer count.
    let records = pending::read_records(repo.keys(), store).map_err(|e| {
        Error::corrupt(
            "the pending deletion records",
            format!("{e}; prune cannot tell how long retired packs have waited"),
        )
    })?;
    let mut retired_since: HashMap<PackId, jiff::Timestamp> = HashMap::new();
    let mut foreign = Vec::new();
    for (entry, t) in pending::first_recorded(records.iter().map(|(_, r)| r)) {
        match pending::pack_of(&entry) {
            Some(p) if present.contains_key(&p) && !indexed.contains(&p) => {
                retired_since.insert(p, t);
            }
            Some(_) => {}
            None => foreign.push((entry, t)),
        }
    }
    let old_records = records.into_iter().map(|(name, _)| name).collect();

    // Packs no index lists: their headers say what they hold.
    let unindexed: Vec<(PackId, u64)> = present
        .iter()
        .filter(|(id, _)| !indexed.contains(id))
        .map(|(id, o)| (*id, o.size))
        .collect();
    type Header = (Vec<PackEntry>, Option<cairn_format::seal_to::Sealing>);
    let headers: Vec<(PackId, u64, Result<Header>)> = unindexed
        .par_iter()
        .map(|(id, size)| {
            (
                *id,
                *size,
                crate::objects::read_pack_header_sealed(store, repo.keys(), id, *size),
            )
        })
        .collect();
    let old_enough = |id: &PackId, age: jiff::SignedDuration| {
        present
            .get(id)
            .and_then(|o| o.modified)
            .is_some_and(|m| now.duration_since(m) >= age)
    };
    let mut delete_now: Vec<(PackId, u64)> = Vec::new();
    let mut waiting: Vec<(PackId, u64, jiff::Timestamp)> = Vec::new();
    let mut header_read: HashSet<PackId> = HashSet::new();
    for (id, size, header) in headers {
        match header {
            Ok((blobs, sealing)) => {
                inventory.add_pack(id, size, blobs, sealing);
                header_read.insert(id);
            }
            Err(e) => {
                report.orphans_unreadable += 1;
                let due = match retired_since.get(&id) {
                    Some(t) => now.duration_since(*t) >= delete_after,
                    None => old_enough(&id, orphan_age),
                };
                if due {
                    tracing::warn!(
                        "pack {} no index lists is unreadable ({e}); deleting it",
                        id.short()
                    );
                    delete_now.push((id, size));
                } else {
                    tracing::warn!(
                        "pack {} no index lists is unreadable ({e}); left alone until it is older",
                        id.short()
                    );
                    if let Some(t) = retired_since.get(&id) {
                        waiting.push((id, size, *t));
                    }
                }
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
    seen.snapshots = snapshots.iter().map(|(id, _)| id.to_hex()).collect();
    let roots: Vec<_> = snapshots.iter().map(|(id, s)| (*id, s.tree)).collect();
    let mut used = inventory.used_blobs(repo, &roots)?;
    // Log segments hold data no snapshot references.
    let segments = crate::logs::all_log_segments(repo).map_err(|e| {
        Error::corrupt(
            "the log segments",
            format!("{e}; prune cannot tell what they use"),
        )
    })?;
    report.log_segments = segments.len();
    seen.logs = segments.iter().map(|s| s.object.clone()).collect();
    for seg in &segments {
        used.extend(seg.manifest.chunks.iter().map(|c| *c.as_bytes()));
    }
    report.blobs_used = used.len();
    report.blobs_before = inventory.blob_count();

    // Homes: indexed packs first, then the others; of each, packs sealed
    // under the master key before those a put-only session sealed (a copy
    // the full key wrote is the one to keep); each in id order.
    let mut order: Vec<PackId> = inventory
        .packs
        .keys()
        .filter(|p| present.contains_key(p))
        .copied()
        .collect();
    order.sort_by_key(|p| {
        let sealed = inventory.packs.get(p).is_some_and(|i| i.sealing.is_some());
        (!indexed.contains(p), sealed, *p)
    });
    let (_, shared) = assign_homes(&inventory, &order, &used);
    // A used blob listed in several packs: before one copy is dropped, read
    // the headers of all of them. What a header contradicts is not acted on.
    let to_read: Vec<PackId> = shared
        .iter()
        .filter(|p| !header_read.contains(*p))
        .copied()
        .collect();
    let confirmed: Vec<(PackId, Result<Vec<PackEntry>>)> = to_read
        .par_iter()
        .map(|p| {
            let size = inventory.packs[p].size;
            (
                *p,
                crate::objects::read_pack_header(store, repo.keys(), p, size),
            )
        })
        .collect();
    for (p, header) in confirmed {
        let others = match &header {
            Ok(_) => HashSet::new(),
            Err(_) => shared_blobs(&inventory, &order, &used, p),
        };
        let info = inventory.packs.get_mut(&p).ok_or_else(|| {
            Error::invalid("prune", "internal error: a pack vanished from the plan")
        })?;
        match header {
            Ok(entries) => {
                for e in &info.blobs {
                    if !entries.contains(e) {
                        report.contradictions.push(format!(
                            "an index object places {} blob {} at {}+{} in pack {}, but the pack's header does not; that entry is not used",
                            e.kind,
                            hex::encode(&e.id[..4]),
                            e.offset,
                            e.length,
                            p.short()
                        ));
                    }
                }
                info.blobs = entries;
            }
            Err(e) => {
                report.contradictions.push(format!(
                    "pack {}'s header cannot be read ({e}); its copies of blobs stored elsewhere too are not relied on",
                    p.short()
                ));
                info.blobs.retain(|b| !others.contains(&b.id));
            }
        }
    }
    for c in &report.contradictions {
        tracing::warn!("{c}");
    }
    let (home, _) = assign_homes(&inventory, &order, &used);
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
    report.bytes_before = present.values().map(|o| o.size).sum();
    let mut partial: Vec<(PackId, u64, u64)> = Vec::new(); // id, used, unused
    let mut keep = Vec::new();
    let mut unused_total = 0u64;
    let mut used_total = 0u64;
    // A retired pack goes now if it has waited long enough, else it waits.
    let retire = |p: PackId,
                  size: u64,
                  since: jiff::Timestamp,
                  delete_now: &mut Vec<(PackId, u64)>,
                  waiting: &mut Vec<(PackId, u64, jiff::Timestamp)>| {
        if now.duration_since(since) >= delete_after {
            delete_now.push((p, size));
        } else {
            waiting.push((p, size, since));
        }
    };
    for p in &order {
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
        let is_indexed = indexed.contains(p);
        if !is_indexed {
            if used_bytes > 0 {
                // A snapshot needs it: back into the index.
                report.orphans_adopted += 1;
                keep.push(*p);
                used_total += used_bytes;
                unused_total += unused_bytes;
            } else if let Some(since) = retired_since.get(p) {
                retire(*p, info.size, *since, &mut delete_now, &mut waiting);
            } else if old_enough(p, orphan_age) {
                delete_now.push((*p, info.size));
            } else {
                report.orphans_young += 1;
            }
            continue;
        }
        if used_bytes == 0 {
            report.packs_retired += 1;
            report.bytes_retired += info.size;
            retire(*p, info.size, now, &mut delete_now, &mut waiting);
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
            report.packs_retired += 1;
            report.bytes_retired += size;
            retire(p, size, now, &mut delete_now, &mut waiting);
        } else {
            keep.push(p);
        }
    }
    report.unused_bytes_after = unused_total;
    // Under object lock a due pack whose retention lasts waits, recorded
    // as due when its retention passes.
    let retained = super::extend::retained_packs(repo, &delete_now)?;
    if !retained.is_empty() {
        report.packs_retained = retained.len();
        let held: std::collections::HashMap<PackId, jiff::Timestamp> =
            retained.into_iter().collect();
        delete_now.retain(|(p, size)| match held.get(p) {
            Some(until) => {
                let since = until.checked_sub(delete_after).unwrap_or(*until);
                waiting.push((*p, *size, since));
                false
            }
            None => true,
        });
    }
    report.packs_deleted = delete_now.len();
    report.bytes_deleted = delete_now.iter().map(|(_, s)| s).sum();
    report.packs_pending = waiting.len();
    report.bytes_pending = waiting.iter().map(|(_, s, _)| s).sum();
    report.next_deletion = waiting
        .iter()
        .map(|(_, _, t)| *t)
        .min()
        .and_then(|t| t.checked_add(delete_after).ok());
    let gone: HashSet<PackId> = delete_now.iter().map(|(p, _)| *p).collect();
    report.bytes_after = present
        .iter()
        .filter(|(p, _)| !gone.contains(*p))
        .map(|(_, o)| o.size)
        .sum::<u64>()
        + report.bytes_copied;

    let staging = repo.store().stale_staging(STAGING_MIN_AGE);
    report.staging_files_removed = staging.len();
    Ok(Plan {
        report,
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
    })
}

/// The used blobs of pack `p` that other packs in `order` also hold.
fn shared_blobs(
    inventory: &Inventory,
    order: &[PackId],
    used: &HashSet<[u8; ID_LEN]>,
    p: PackId,
) -> HashSet<[u8; ID_LEN]> {
    let mine: HashSet<[u8; ID_LEN]> = inventory.packs[&p]
        .blobs
        .iter()
        .filter(|b| used.contains(&b.id))
        .map(|b| b.id)
        .collect();
    let mut out = HashSet::new();
    for q in order.iter().filter(|q| **q != p) {
        for b in &inventory.packs[q].blobs {
            if mine.contains(&b.id) {
                out.insert(b.id);
            }
        }
    }
    out
}
