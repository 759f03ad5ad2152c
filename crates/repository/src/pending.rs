//! Pending-deletion records (`deletions/<id>`, envelope kind 8): sealed
//! lists of objects that will be deleted once they have waited a grace
//! period, with the time they started waiting. Prune writes them for the
//! packs it retires from the index (so that readers still using those packs
//! finish first); `cairn sync --delete --delete-after` writes them on a
//! replica for what the source no longer has. Format in `docs/FORMAT.md`
//! ("Pending deletions").
//!
//! Records are immutable: a run that still has objects waiting writes new
//! records (one per distinct start time, so no age is ever reset), then
//! deletes the records it read; an interruption leaves a superset.

use crate::crypto::{self, Keys, Sealed};
use crate::error::{Error, Result};
use crate::store::{ObjectKind, Store};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The record version this build writes and reads.
pub const RECORD_VERSION: u32 = 1;

/// One pending-deletion record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRecord {
    /// Format version.
    pub version: u32,
    /// When the objects started waiting.
    pub recorded: jiff::Timestamp,
    /// `<directory>/<name>` of each object ([`entry`]).
    pub objects: Vec<String>,
}

/// How an object is named in a record: `<directory>/<name>` (packs as
/// `data/<id>`, without the fan-out directory).
pub fn entry(kind: ObjectKind, name: &str) -> String {
    format!("{}/{name}", kind.dir())
}

/// The pack a record entry names, if it names one.
pub fn pack_of(entry: &str) -> Option<crate::id::PackId> {
    entry
        .strip_prefix("data/")
        .and_then(|hex| crate::id::PackId::from_hex(hex).ok())
}

/// Read every record in `store`, opened with `keys`. A record that does not
/// hash to its name, does not open or has another version is an error:
/// never a licence to delete early.
pub fn read_records(keys: &Keys, store: &Store) -> Result<Vec<(String, PendingRecord)>> {
    let mut out = Vec::new();
    for obj in store.list(ObjectKind::Deletion)?.objects {
        let what = format!(
            "pending deletion record {}",
            obj.name.get(..8).unwrap_or(&obj.name)
        );
        let record = store.get_checked(ObjectKind::Deletion, &obj.name, |bytes| {
            if ObjectKind::Deletion.content_matches(&obj.name, &bytes) == Some(false) {
                return Err(Error::corrupt(&what, "contents do not hash to its name"));
            }
            let json = crypto::open_object(keys, Sealed::PendingDeletion, &bytes, &what)?;
            let record: PendingRecord =
                serde_json::from_slice(&json).map_err(|e| Error::corrupt(&what, e.to_string()))?;
            if record.version != RECORD_VERSION {
                return Err(Error::UnsupportedVersion {
                    what: what.clone(),
                    found: record.version,
                    supported: RECORD_VERSION,
                });
            }
            Ok(record)
        });
        match record {
            // Retired by a concurrent run between list and get.
            Err(e) if e.is_not_found() => {}
            record => out.push((obj.name, record?)),
        }
    }
    Ok(out)
}

/// Seal and store one record; returns its name. The caller confirms its
/// lock first.
pub fn write_record(keys: &Keys, store: &Store, record: &PendingRecord) -> Result<String> {
    let json = serde_json::to_vec(record)
        .map_err(|e| Error::invalid("pending deletion record", e.to_string()))?;
    let bytes = crypto::seal_object(keys, Sealed::PendingDeletion, &json)?;
    let name = blake3::hash(&bytes).to_hex().to_string();
    store.put(ObjectKind::Deletion, &name, bytes.into())?;
    Ok(name)
}

/// When each entry started waiting: the earliest record naming it.
pub fn first_recorded(records: &[(String, PendingRecord)]) -> HashMap<String, jiff::Timestamp> {
    let mut first: HashMap<String, jiff::Timestamp> = HashMap::new();
    for (_, r) in records {
        for o in &r.objects {
            let t = first.entry(o.clone()).or_insert(r.recorded);
            *t = (*t).min(r.recorded);
        }
    }
    first
}

/// Group entries still waiting by their start time, one record each.
pub fn group(waiting: impl IntoIterator<Item = (String, jiff::Timestamp)>) -> Vec<PendingRecord> {
    let mut by_time: BTreeMap<jiff::Timestamp, Vec<String>> = BTreeMap::new();
    for (entry, t) in waiting {
        by_time.entry(t).or_default().push(entry);
    }
    by_time
        .into_iter()
        .map(|(recorded, mut objects)| {
            objects.sort();
            objects.dedup();
            PendingRecord {
                version: RECORD_VERSION,
                recorded,
                objects,
            }
        })
        .collect()
}
