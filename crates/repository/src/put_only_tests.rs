//! Put-only keys end to end on one store: what such a key writes, the
//! full key reads; what is in the repository, such a key cannot read.

use crate::backup::{BackupOptions, backup};
use crate::check::{CheckOptions, check};
use crate::crypto::{self, Sealed};
use crate::error::Error;
use crate::keyfile::KdfCost;
use crate::layout::ObjectKind;
use crate::progress::NoProgress;
use crate::prune::{PruneOptions, prune};
use crate::repo::{CacheLocation, Repository};
use crate::restore::{RestoreOptions, restore};
use crate::store::Store;
use crate::test_repo::PASSWORD;
use cairn_testkit::trees::{TreeSpec, assert_same_tree, generate_tree, mutate_tree};
use std::path::Path;

const PUT_PASSWORD: &[u8] = b"put only";

fn spec(seed: u64) -> TreeSpec {
    TreeSpec {
        small_files: 60,
        large_files: 2,
        large_size: 600 << 10,
        seed,
    }
}

fn opts(path: &Path, account: &str) -> BackupOptions {
    let mut o = BackupOptions::new(vec![path.to_path_buf()]);
    o.host = "backup-host".into();
    o.account = account.into();
    o
}

/// A repository with one snapshot of `src` by the full key, and a put-only
/// key for `alice`.
fn setup(src: &Path) -> (Store, Repository) {
    let store = Store::memory().unwrap();
    let full = crate::test_repo::repo_on(
        store.clone(),
        &crate::test_repo::small_opts(16 << 10, 128 << 10),
    );
    backup(&full, &opts(src, "alice"), &NoProgress).unwrap();
    let lock = full.lock(false, "key add").unwrap();
    full.add_put_only_key(PUT_PASSWORD, KdfCost::MINIMAL, &["alice".to_string()])
        .unwrap();
    drop(lock);
    (store, full)
}

fn open(store: &Store, password: &[u8]) -> Repository {
    Repository::open(store.clone(), password, CacheLocation::InMemory).unwrap()
}

fn check_clean(repo: &Repository) {
    let report = check(
        repo,
        &CheckOptions {
            read_data: true,
            subset: None,
        },
        &NoProgress,
    )
    .unwrap();
    assert!(report.is_ok(), "{report:?}");
}

fn restore_same(repo: &Repository, snap: &crate::snapshot::Snapshot, src: &Path) {
    let into = tempfile::tempdir().unwrap();
    let summary = restore(
        repo,
        snap,
        Some(src.as_os_str().as_encoded_bytes()),
        &RestoreOptions::new(into.path().to_path_buf()),
        &NoProgress,
    )
    .unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_same_tree(src, into.path());
}

/// Every object the store holds, as (kind, name, bytes).
fn every_object(store: &Store) -> Vec<(ObjectKind, String, bytes::Bytes)> {
    let mut out = Vec::new();
    for kind in ObjectKind::ALL {
        if kind == ObjectKind::Config {
            out.push((kind, "config".into(), store.get(kind, "config").unwrap()));
            continue;
        }
        for o in store.list(kind).unwrap().objects {
            let bytes = store.get(kind, &o.name).unwrap();
            out.push((kind, o.name, bytes));
        }
    }
    out
}

#[test]
fn a_put_only_key_writes_what_it_then_cannot_read_and_the_full_key_restores() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    generate_tree(&src, spec(3));
    let (store, full) = setup(&src);

    // Backups and log pushes with the put-only key.
    mutate_tree(&src, 1);
    let put = open(&store, PUT_PASSWORD);
    assert!(put.keys().is_put_only());
    let first = backup(&put, &opts(&src, "alice"), &NoProgress).unwrap();
    assert!(first.snapshot.parent.is_none());
    let again = backup(&put, &opts(&src, "alice"), &NoProgress).unwrap();
    // At most a directory's tree differs (times of the tree just
    // mutated); no file content is stored again.
    assert!(
        again.snapshot.summary.raw_bytes_added < 16 << 10,
        "a put-only host dedupes against its own uploads: {:?}",
        again.snapshot.summary
    );
    let segment = b"a WAL segment's bytes ".repeat(3000);
    crate::logs::push_segment(
        &put,
        "alice",
        "pg",
        "000000010000000000000001",
        None,
        &mut &segment[..],
    )
    .unwrap();
    // A retry of the same segment is recognised, without reading.
    let retried = crate::logs::push_segment(
        &put,
        "alice",
        "pg",
        "000000010000000000000001",
        None,
        &mut &segment[..],
    )
    .unwrap();
    assert!(matches!(
        retried,
        crate::logs::PushOutcome::AlreadyStored(_)
    ));
    // Other accounts are refused.
    let bob = backup(&put, &opts(&src, "bob"), &NoProgress).unwrap_err();
    assert!(matches!(bob, Error::PutOnly { .. }), "{bob}");
    drop(put);

    // A later session of the put-only key reads nothing in the
    // repository: no object in any envelope, no blob in any pack.
    let thief = open(&store, PUT_PASSWORD);
    let keys = thief.keys();
    let objects = every_object(&store);
    let mut sealed_objects = 0;
    for (kind, name, bytes) in &objects {
        if *kind == ObjectKind::Key {
            continue; // key files are JSON, public by design
        }
        sealed_objects += 1;
        for sealed in Sealed::ALL {
            if sealed == Sealed::Lock {
                continue;
            }
            assert!(
                crypto::open_object(keys, sealed, bytes, name).is_err(),
                "{kind:?} {name} opened as {sealed:?} with the put-only key"
            );
        }
    }
    assert!(sealed_objects > 10, "{sealed_objects}");
    let mut blobs = 0;
    full.refresh_index().unwrap();
    full.index()
        .unwrap()
        .for_each_blob(|id, loc| {
            let stored = store
                .get_object_range(
                    &loc.pack,
                    u64::from(loc.offset)..u64::from(loc.offset + loc.length),
                )
                .unwrap();
            assert!(crypto::decode_blob(keys, loc.kind, id, &stored, loc.raw_length).is_err());
            let sealing = full.index().unwrap().sealing(&loc.pack);
            assert!(keys.for_sealing(sealing.as_ref(), "pack").is_err());
            blobs += 1;
        })
        .unwrap();
    assert!(blobs > 20, "{blobs}");
    // And the operations refuse.
    assert!(matches!(
        thief.load_snapshot(&first.id),
        Err(Error::PutOnly { .. })
    ));
    assert!(crate::logs::log_segments(&thief, "alice", "pg").is_err());
    assert!(matches!(
        thief.add_key(b"new", KdfCost::MINIMAL),
        Err(Error::PutOnly { .. })
    ));
    // Nor does any plaintext sit in the store.
    let needle = std::fs::read(src.join("db/large-0.bin")).unwrap();
    for (_, name, bytes) in &objects {
        assert!(
            !bytes.windows(64).any(|w| w == &needle[..64]),
            "{name} holds plaintext"
        );
    }

    // The full key reads all of it: restore byte for byte, the log
    // segment, a clean check reading all data.
    let full = open(&store, PASSWORD);
    let snap = full.load_snapshot(&again.id).unwrap();
    assert_eq!(snap.account, "alice");
    restore_same(&full, &snap, &src);
    let segs = crate::logs::log_segments(&full, "alice", "pg").unwrap();
    assert_eq!(segs.len(), 1);
    let mut back = Vec::new();
    crate::logs::read_segment(&full, &segs[0], &mut back).unwrap();
    assert_eq!(back, segment);
    check_clean(&full);

    // Prune keeps what the put-only key stored, re-sealing what it
    // repacks under the master key; everything still restores.
    let (snaps, _) = full.snapshots().unwrap();
    let lock = full.lock(false, "forget").unwrap();
    for (id, _) in &snaps {
        if *id != again.id {
            full.remove_snapshot(id).unwrap();
        }
    }
    drop(lock);
    let report = prune(
        &full,
        &PruneOptions {
            max_unused_percent: 0.0,
            delete_after: std::time::Duration::ZERO,
            ..PruneOptions::default()
        },
        &NoProgress,
    )
    .unwrap();
    assert!(report.packs_written > 0, "{report:?}");
    let full = open(&store, PASSWORD);
    check_clean(&full);
    restore_same(&full, &full.load_snapshot(&again.id).unwrap(), &src);
}

#[test]
fn a_snapshot_a_put_only_key_wrote_for_another_account_is_not_trusted() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    generate_tree(&src, spec(5));
    let (store, _full) = setup(&src);
    let put = open(&store, PUT_PASSWORD);
    let mut snap = backup(&put, &opts(&src, "alice"), &NoProgress)
        .unwrap()
        .snapshot;
    // A thief with the key edits what it writes: past the account check.
    snap.account = "bob".into();
    let forged = {
        let _lock = put.lock(false, "forge").unwrap();
        put.save_snapshot(&snap).unwrap()
    };
    let full = open(&store, PASSWORD);
    let err = full.load_snapshot(&forged).unwrap_err();
    assert!(err.to_string().contains("not trusted"), "{err}");
}

#[test]
fn a_put_only_backup_waits_for_an_exclusive_lock_and_keys_stay_with_the_full_key() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    generate_tree(&src, spec(9));
    let (store, full) = setup(&src);
    let put = open(&store, PUT_PASSWORD);
    {
        let _exclusive = full.lock(true, "prune").unwrap();
        let err = backup(&put, &opts(&src, "alice"), &NoProgress).unwrap_err();
        assert!(matches!(err, Error::Locked(_)), "{err}");
    }
    backup(&put, &opts(&src, "alice"), &NoProgress).unwrap();
    // The last full key cannot go while only put-only keys would remain.
    let keys = full.list_keys().unwrap();
    let put_id = put.key_id();
    let lock = full.lock(false, "key").unwrap();
    let err = full.remove_key(&put_id);
    assert!(err.is_ok(), "{err:?}");
    let other = keys.iter().find(|(id, _)| *id != put_id).unwrap().0;
    assert_eq!(other, full.key_id());
    full.add_put_only_key(b"second", KdfCost::MINIMAL, &["alice".to_string()])
        .unwrap();
    drop(lock);
    let second = open(&store, b"second");
    let err = second.remove_key(&full.key_id()).unwrap_err();
    assert!(matches!(err, Error::PutOnly { .. }), "{err}");
}
