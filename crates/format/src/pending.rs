//! Pending-deletion records (`deletions/<id>`, docs/FORMAT.md "Pending
//! deletions"): sealed lists of objects that will be deleted once they have
//! waited a grace period, with the time they started waiting. Prune writes
//! them for the packs it retires from the index; `cairn sync --delete
//! --delete-after` writes them on a replica for what the source no longer
//! has.
//!
//! Records are immutable: a run that still has objects waiting writes new
//! records (one per distinct start time, so no age is ever reset), then
//! deletes the records it read; an interruption leaves a superset.

use crate::crypto::Sealed;
use crate::id::{DeletionId, PackId};
use crate::layout::{ObjectKind, ObjectName};
use crate::manifest::Manifest;
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

impl Manifest for PendingRecord {
    const KIND: ObjectKind = ObjectKind::Deletion;
    const SEALED: Sealed = Sealed::PendingDeletion;
    const VERSION: u32 = RECORD_VERSION;
    const NOUN: &'static str = "pending deletion record";
    type Id = DeletionId;

    fn version(&self) -> u32 {
        self.version
    }

    fn order_time(&self) -> jiff::Timestamp {
        self.recorded
    }
}

/// How an object is named in a record: `<directory>/<name>` (packs as
/// `data/<id>`, without the fan-out directory).
pub fn entry(kind: ObjectKind, name: &str) -> String {
    format!("{}/{name}", kind.dir())
}

/// How the object `id` names is named in a record.
pub fn entry_of<N: ObjectName>(id: &N) -> String {
    entry(N::KIND, &id.object_name())
}

/// The pack a record entry names, if it names one.
pub fn pack_of(entry: &str) -> Option<PackId> {
    entry
        .strip_prefix("data/")
        .and_then(|hex| PackId::from_hex(hex).ok())
}

/// When each entry started waiting: the earliest record naming it.
pub fn first_recorded<'a>(
    records: impl IntoIterator<Item = &'a PendingRecord>,
) -> HashMap<String, jiff::Timestamp> {
    let mut first: HashMap<String, jiff::Timestamp> = HashMap::new();
    for r in records {
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
