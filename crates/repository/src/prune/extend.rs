//! S3 object lock: prune extends the retention of what is still in use
//! (docs/FORMAT.md "Object lock"), so data a live snapshot needs never
//! loses its protection, and holds back the deletion of packs whose
//! retention lasts.

use super::ExtendManifests;
use crate::error::Result;
use crate::id::PackId;
use crate::layout::ObjectKind;
use crate::repo::Repository;
use std::collections::HashSet;

/// The manifest kinds a forget decides about.
const MANIFEST_KINDS: [ObjectKind; 4] = [
    ObjectKind::Snapshot,
    ObjectKind::Log,
    ObjectKind::Account,
    ObjectKind::Verification,
];

/// Extend the retention of every object in use whose retain-until date
/// is less than half the period away, to the period from now. In use: the
/// config, the keys and the packs the index lists, and the manifests
/// `manifests` names ([`ExtendManifests`]). Objects written less than half
/// a period ago are not even asked (their date, set when they were
/// written, is far enough). Returns how many were extended.
pub(super) fn extend_retention(repo: &Repository, manifests: ExtendManifests<'_>) -> Result<usize> {
    let store = repo.store();
    if store.object_lock().is_none() {
        return Ok(0);
    }
    let indexed: HashSet<PackId> = repo.index()?.packs()?.into_iter().map(|(p, _)| p).collect();
    let mut extended = 0;
    let kinds: Vec<ObjectKind> = match manifests {
        ExtendManifests::None => Vec::new(),
        ExtendManifests::AllBut(_) => MANIFEST_KINDS.to_vec(),
    };
    let kinds = [ObjectKind::Config, ObjectKind::Key, ObjectKind::Pack]
        .into_iter()
        .chain(kinds);
    for kind in kinds {
        for obj in store.list(kind)?.objects {
            if kind == ObjectKind::Pack
                && !PackId::from_hex(&obj.name).is_ok_and(|p| indexed.contains(&p))
            {
                continue;
            }
            if let ExtendManifests::AllBut(doomed) = manifests
                && doomed.contains(&crate::pending::entry(kind, &obj.name))
            {
                continue;
            }
            if let Some(due) = store.renewal_due(kind, &obj.name, obj.modified)? {
                repo.confirm_lock()?;
                store.renew_retention(kind, &obj.name, &due)?;
                extended += 1;
            }
        }
    }
    Ok(extended)
}

/// Of the packs due for deletion, those object lock still retains: each
/// with its retain-until date.
pub(super) fn retained_packs(
    repo: &Repository,
    due: &[(PackId, u64)],
) -> Result<Vec<(PackId, jiff::Timestamp)>> {
    let store = repo.store();
    if store.object_lock().is_none() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (p, _) in due {
        if let Some(until) = store.retained_until(ObjectKind::Pack, &p.to_hex())? {
            out.push((*p, until));
        }
    }
    Ok(out)
}
