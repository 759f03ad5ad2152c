//! Deleting from the destination what the source no longer has: at once,
//! or after a grace period recorded in pending-deletion objects on the
//! destination (`deletions/<id>`, FORMAT.md "Pending deletions").

use crate::copy::label;
use crate::{SyncError, SyncOptions, SyncReport};
use cairn_repository::pending::{self, PendingRecord};
use cairn_repository::{ObjectKind, Repository, Store};

fn key(kind: ObjectKind, name: &str) -> String {
    pending::entry(kind, name)
}

fn write_record(
    source: &Repository,
    dest: &Store,
    record: &PendingRecord,
) -> Result<String, SyncError> {
    source.confirm_lock()?;
    Ok(pending::write_record(source.keys(), dest, record)?)
}

fn read_records(
    source: &Repository,
    dest: &Store,
) -> Result<Vec<(String, PendingRecord)>, SyncError> {
    Ok(pending::read_records(source.keys(), dest)?)
}

/// Delete (or schedule) `extra`, given in deletion order.
pub(crate) fn apply(
    source: &Repository,
    dest: &Store,
    extra: Vec<(ObjectKind, String, u64)>,
    opts: &SyncOptions,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let now = jiff::Timestamp::now();
    let due: Vec<(ObjectKind, String, u64)>;
    let mut keep_pending: Vec<(String, jiff::Timestamp)> = Vec::new();
    let mut old_records = Vec::new();
    match opts.delete_after {
        None => due = extra,
        Some(grace) => {
            let records = read_records(source, dest)?;
            let first_seen = pending::first_recorded(records.iter().map(|(_, r)| r));
            old_records = records.into_iter().map(|(n, _)| n).collect();
            let grace = jiff::SignedDuration::try_from(grace).unwrap_or(jiff::SignedDuration::MAX);
            let mut ready = Vec::new();
            for (kind, name, size) in extra {
                let k = key(kind, &name);
                match first_seen.get(&k) {
                    Some(seen) if now.duration_since(*seen) >= grace => {
                        ready.push((kind, name, size))
                    }
                    Some(seen) => keep_pending.push((k, *seen)),
                    None => keep_pending.push((k, now)),
                }
            }
            due = ready;
            report.pending_deletions = keep_pending.len() as u64;
        }
    }
    for (kind, _, size) in &due {
        let entry = report.deleted.entry(label(*kind).to_string()).or_default();
        entry.objects += 1;
        entry.bytes += size;
    }
    if opts.dry_run {
        return Ok(());
    }
    // Record what waits before deleting anything, then delete (manifests
    // first, packs last), then retire the old records: an interruption
    // leaves records that are a superset, never lost ages.
    let mut written = Vec::new();
    for record in pending::group(keep_pending) {
        written.push(write_record(source, dest, &record)?);
    }
    for (kind, name, _) in &due {
        source.confirm_lock()?;
        dest.delete(*kind, name)?;
    }
    for name in old_records {
        if !written.contains(&name) {
            source.confirm_lock()?;
            dest.delete(ObjectKind::Deletion, &name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use cairn_repository::{CacheLocation, InitOptions, KdfCost};
    use std::time::Duration;

    fn repo() -> Repository {
        let opts = InitOptions {
            kdf: KdfCost::MINIMAL,
            ..InitOptions::default()
        };
        Repository::init(
            Store::memory().unwrap(),
            b"pw",
            &opts,
            CacheLocation::InMemory,
        )
        .unwrap()
    }

    fn name(i: u8) -> String {
        blake3::hash(&[i]).to_hex().to_string()
    }

    fn grace(hours: u64) -> SyncOptions {
        SyncOptions {
            delete: true,
            delete_after: Some(Duration::from_secs(hours * 3600)),
            ..SyncOptions::default()
        }
    }

    fn extra(dest: &Store) -> Vec<(ObjectKind, String, u64)> {
        let mut out = Vec::new();
        for kind in [ObjectKind::Snapshot, ObjectKind::Pack] {
            for l in dest.list(kind).unwrap().objects {
                out.push((kind, l.name, l.size));
            }
        }
        out
    }

    #[test]
    fn objects_wait_for_the_grace_period_counted_from_first_sighting() {
        let source = repo();
        let _lock = source.lock(false, "sync").unwrap();
        let dest = Store::memory().unwrap();
        dest.put(ObjectKind::Snapshot, &name(1), vec![1u8; 10].into())
            .unwrap();
        dest.put(ObjectKind::Pack, &name(2), vec![2u8; 20].into())
            .unwrap();

        // First sighting: recorded, nothing deleted.
        let mut report = SyncReport::default();
        apply(&source, &dest, extra(&dest), &grace(1), &mut report).unwrap();
        assert_eq!(report.pending_deletions, 2);
        assert!(report.deleted.is_empty());
        assert_eq!(extra(&dest).len(), 2);
        let records = read_records(&source, &dest).unwrap();
        assert_eq!(records.len(), 1);

        // A later run within the grace period keeps them and their age.
        let mut report = SyncReport::default();
        apply(&source, &dest, extra(&dest), &grace(1), &mut report).unwrap();
        assert_eq!(report.pending_deletions, 2);
        let again = read_records(&source, &dest).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].1.recorded, records[0].1.recorded);

        // Backdate the record past the grace period: now they go, and so
        // does the record.
        let (old, mut record) = again.into_iter().next().unwrap();
        record.recorded -= jiff::SignedDuration::from_hours(2);
        write_record(&source, &dest, &record).unwrap();
        dest.delete(ObjectKind::Deletion, &old).unwrap();
        let mut report = SyncReport::default();
        apply(&source, &dest, extra(&dest), &grace(1), &mut report).unwrap();
        assert_eq!(report.pending_deletions, 0);
        assert_eq!(report.deleted[label(ObjectKind::Pack)].objects, 1);
        assert_eq!(report.deleted[label(ObjectKind::Pack)].bytes, 20);
        assert!(extra(&dest).is_empty());
        assert!(read_records(&source, &dest).unwrap().is_empty());
    }

    #[test]
    fn an_object_back_in_the_source_leaves_the_pending_records() {
        let source = repo();
        let _lock = source.lock(false, "sync").unwrap();
        let dest = Store::memory().unwrap();
        dest.put(ObjectKind::Pack, &name(3), vec![3u8; 5].into())
            .unwrap();
        let mut report = SyncReport::default();
        apply(&source, &dest, extra(&dest), &grace(1), &mut report).unwrap();
        assert_eq!(read_records(&source, &dest).unwrap().len(), 1);
        // Nothing extra any more (the source has it again): the old record
        // is retired, the object stays.
        let mut report = SyncReport::default();
        apply(&source, &dest, Vec::new(), &grace(1), &mut report).unwrap();
        assert!(read_records(&source, &dest).unwrap().is_empty());
        assert_eq!(dest.list(ObjectKind::Pack).unwrap().objects.len(), 1);
    }

    #[test]
    fn a_dry_run_writes_and_deletes_nothing() {
        let source = repo();
        let _lock = source.lock(false, "sync").unwrap();
        let dest = Store::memory().unwrap();
        dest.put(ObjectKind::Pack, &name(4), vec![4u8; 5].into())
            .unwrap();
        let opts = SyncOptions {
            delete: true,
            dry_run: true,
            ..SyncOptions::default()
        };
        let mut report = SyncReport::default();
        apply(&source, &dest, extra(&dest), &opts, &mut report).unwrap();
        assert_eq!(report.deleted[label(ObjectKind::Pack)].objects, 1);
        assert_eq!(dest.list(ObjectKind::Pack).unwrap().objects.len(), 1);
        assert!(dest.list(ObjectKind::Deletion).unwrap().objects.is_empty());
    }

    #[test]
    fn a_record_that_is_not_ours_stops_the_deletion() {
        let source = repo();
        let _lock = source.lock(false, "sync").unwrap();
        let stranger = repo();
        let _stranger_lock = stranger.lock(false, "sync").unwrap();
        let dest = Store::memory().unwrap();
        dest.put(ObjectKind::Pack, &name(5), vec![5u8; 5].into())
            .unwrap();
        // A record sealed with other keys (or forged) is an error, never a
        // licence to delete early or a reason to panic.
        let record = PendingRecord {
            version: pending::RECORD_VERSION,
            recorded: jiff::Timestamp::UNIX_EPOCH,
            objects: vec![key(ObjectKind::Pack, &name(5))],
        };
        write_record(&stranger, &dest, &record).unwrap();
        let mut report = SyncReport::default();
        assert!(apply(&source, &dest, extra(&dest), &grace(1), &mut report).is_err());
        assert_eq!(dest.list(ObjectKind::Pack).unwrap().objects.len(), 1);

        // Garbage under a name that does not match its contents, too.
        let dest = Store::memory().unwrap();
        dest.put(ObjectKind::Deletion, &name(6), vec![0u8; 64].into())
            .unwrap();
        assert!(read_records(&source, &dest).is_err());
    }
}
