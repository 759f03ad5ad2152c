//! Pending-deletion records on a store (`deletions/<id>`): the types and
//! grouping rules are [`cairn_format::pending`]'s; this module reads and
//! writes them through [`Manifests`].

use crate::error::Result;
use crate::manifests::Manifests;
use crate::store::Store;
use cairn_format::crypto::Keys;
pub use cairn_format::pending::*;

/// Read every record in `store`, opened with `keys`. A record that does not
/// hash to its name, does not open or has another version is an error:
/// never a licence to delete early.
pub fn read_records(keys: &Keys, store: &Store) -> Result<Vec<(String, PendingRecord)>> {
    Ok(Manifests::new(store, keys)
        .load_all_strict::<PendingRecord>()?
        .into_iter()
        .map(|(id, r)| (id.to_hex(), r))
        .collect())
}

/// Seal and store one record; returns its name. The caller confirms its
/// lock first.
pub fn write_record(keys: &Keys, store: &Store, record: &PendingRecord) -> Result<String> {
    Ok(Manifests::new(store, keys).save(record)?.1)
}
