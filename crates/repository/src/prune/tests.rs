//! Prune: reclaims exactly what no snapshot uses, and a crash at any write
//! leaves a repository that checks clean and that the next prune finishes.

use super::*;
use crate::backup::{BackupOptions, backup};
use crate::check::{CheckOptions, check};
use crate::error::Error;
use crate::inventory::Inventory;
use crate::layout::ObjectKind;
use crate::progress::NoProgress;
use crate::repo::{CacheLocation, InitOptions};
use crate::restore::{RestoreOptions, restore};
use crate::store::Store;
use crate::test_repo::PASSWORD;
use crate::writer::BlobWriter;
use cairn_testkit::faults::CrashAfter;
use cairn_testkit::trees::{TreeSpec, assert_same_tree, copy_tree, generate_tree};
use std::path::Path;
use std::sync::Arc;

fn init_opts() -> InitOptions {
    crate::test_repo::small_opts(64 << 10, 128 << 10)
}

fn assert_clean(repo: &Repository, when: &str) {
    let opts = CheckOptions {
        read_data: true,
        subset: None,
    };
    let report = check(repo, &opts, &NoProgress).unwrap();
    assert!(report.is_ok(), "{when}: {report:?}");
}

fn restore_equals(
    repo: &Repository,
    id: &crate::SnapshotId,
    src: &Path,
    expected: &Path,
    scratch: &Path,
) {
    let snap = repo.load_snapshot(id).unwrap();
    let target = scratch.join(id.short());
    let s = restore(
        repo,
        &snap,
        Some(std::os::unix::ffi::OsStrExt::as_bytes(src.as_os_str())),
        &RestoreOptions::new(target.clone()),
        &NoProgress,
    )
    .unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_same_tree(expected, &target);
}

/// Three generations of a tree; returns the snapshot ids and copies of
/// each generation's source.
fn three_generations(
    repo: &Repository,
    work: &Path,
) -> (Vec<crate::SnapshotId>, Vec<std::path::PathBuf>) {
    let src = work.join("src");
    let mut ids = Vec::new();
    let mut copies = Vec::new();
    for generation in 0..3u64 {
        let _ = std::fs::remove_dir_all(&src);
        generate_tree(
            &src,
            TreeSpec {
                small_files: 30,
                large_files: 2,
                large_size: 400 << 10,
                seed: 100 + generation,
            },
        );
        let copy = work.join(format!("gen{generation}"));
        copy_tree(&src, &copy);
        let mut o = BackupOptions::new(vec![src.clone()]);
        o.host = "h".into();
        ids.push(backup(repo, &o, &NoProgress).unwrap().id);
        copies.push(copy);
    }
    (ids, copies)
}

fn dry() -> PruneOptions {
    PruneOptions {
        dry_run: true,
        ..Default::default()
    }
}

/// Repack everything unused and delete at once.
fn thorough() -> PruneOptions {
    PruneOptions {
        max_unused_percent: 0.0,
        delete_after: std::time::Duration::ZERO,
        ..Default::default()
    }
}

fn forget(repo: &Repository, id: &crate::SnapshotId) {
    let _lock = repo.lock(true, "forget").unwrap();
    repo.remove_snapshot(id).unwrap();
}

fn memory_repo() -> Repository {
    crate::test_repo::memory_repo(&init_opts())
}

#[test]
fn prune_reclaims_what_forgotten_snapshots_used_and_keeps_the_rest() {
    let work = tempfile::tempdir().unwrap();
    let repo = memory_repo();
    let (ids, copies) = three_generations(&repo, work.path());
    let src = work.path().join("src");

    // Nothing forgotten: nothing to delete.
    let plan = prune(&repo, &dry(), &NoProgress).unwrap();
    assert_eq!(plan.packs_deleted, 0, "{plan:?}");

    forget(&repo, &ids[0]);
    let plan = prune(&repo, &dry(), &NoProgress).unwrap();
    assert!(plan.packs_retired > 0, "{plan:?}");
    // By default nothing is deleted at once: retired packs wait.
    assert_eq!(plan.packs_deleted, 0, "{plan:?}");
    // A dry run changes nothing.
    let again = prune(&repo, &dry(), &NoProgress).unwrap();
    assert_eq!(again.bytes_before, plan.bytes_before);
    assert_eq!(again.packs_deleted, plan.packs_deleted);

    let done = prune(&repo, &thorough(), &NoProgress).unwrap();
    assert!(done.bytes_reclaimed() > 0, "{done:?}");
    assert_eq!(done.unused_bytes_after, 0, "{done:?}");
    assert_clean(&repo, "after prune");
    for (id, copy) in ids[1..].iter().zip(&copies[1..]) {
        restore_equals(&repo, id, &src, copy, work.path());
    }
    // Nothing left to do.
    let idle = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert_eq!(
        idle.packs_deleted + idle.packs_repacked + idle.packs_retired,
        0,
        "{idle:?}"
    );
    assert_eq!(idle.bytes_reclaimed(), 0);
}

#[test]
fn prune_refuses_while_a_backup_holds_its_lock() {
    let repo = memory_repo();
    let backup_lock = repo.lock(false, "backup").unwrap();
    let err = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap_err();
    assert!(matches!(err, Error::Locked(_)), "{err}");
    drop(backup_lock);
    prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
}

fn copy_store(from: &Arc<object_store::memory::InMemory>) -> Arc<object_store::memory::InMemory> {
    let to = Arc::new(object_store::memory::InMemory::new());
    let src = Store::from_object_store(from.clone(), "from".into()).unwrap();
    let dst = Store::from_object_store(to.clone(), "to".into()).unwrap();
    for kind in ObjectKind::ALL {
        if kind == ObjectKind::Config {
            dst.put(kind, "config", src.get(kind, "config").unwrap())
                .unwrap();
            continue;
        }
        for o in src.list(kind).unwrap().objects {
            dst.put(kind, &o.name, src.get(kind, &o.name).unwrap())
                .unwrap();
        }
    }
    to
}

#[test]
fn a_crash_at_any_write_of_prune_leaves_a_consistent_repository() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    // Build the starting repository once, then copy its objects for each
    // crash point.
    let base = Arc::new(object_store::memory::InMemory::new());
    let repo = Repository::init(
        Store::from_object_store(base.clone(), "base".into()).unwrap(),
        PASSWORD,
        &init_opts(),
        CacheLocation::InMemory,
    )
    .unwrap();
    let (ids, copies) = three_generations(&repo, work.path());
    forget(&repo, &ids[1]);
    drop(repo);

    let mut budget = 0;
    loop {
        let inner = copy_store(&base);
        let crashing = Store::from_object_store(
            Arc::new(CrashAfter::new(inner.clone(), budget)),
            "crash".into(),
        )
        .unwrap();
        let repo = Repository::open(crashing, PASSWORD, CacheLocation::InMemory).unwrap();
        let result = prune(&repo, &thorough(), &NoProgress);
        drop(repo);

        let store = Store::from_object_store(inner, "after".into()).unwrap();
        let repo = Repository::open(store, PASSWORD, CacheLocation::InMemory).unwrap();
        assert_clean(&repo, &format!("prune crashed after {budget} writes"));
        for i in [0, 2] {
            let scratch = work.path().join(format!("b{budget}"));
            restore_equals(&repo, &ids[i], &src, &copies[i], &scratch);
        }
        crate::lock::unlock(repo.store(), repo.keys(), true).unwrap();
        let finish = prune(&repo, &thorough(), &NoProgress).unwrap();
        assert_clean(&repo, &format!("second prune after a crash at {budget}"));
        assert_eq!(finish.unused_bytes_after, 0);
        if result.is_ok() {
            assert_eq!(
                finish.packs_deleted + finish.packs_repacked,
                0,
                "a whole prune leaves nothing to do"
            );
            break;
        }
        budget += 1;
        assert!(budget < 500, "prune never finished");
    }
    assert!(
        budget > 5,
        "the test should have crashed prune at several points ({budget})"
    );
}

fn later(hours: i64) -> Option<jiff::Timestamp> {
    Some(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(hours))
}

#[test]
fn retired_packs_wait_and_readers_that_started_before_still_find_them() {
    let work = tempfile::tempdir().unwrap();
    let inner = Arc::new(object_store::memory::InMemory::new());
    let store = Store::from_object_store(inner.clone(), "mem".into()).unwrap();
    let repo = crate::test_repo::repo_on(store.clone(), &init_opts());
    let (ids, copies) = three_generations(&repo, work.path());
    let src = work.path().join("src");
    // A reader opens the repository and loads its index before the prune.
    let reader = Repository::open(store.clone(), PASSWORD, CacheLocation::InMemory).unwrap();
    reader.index().unwrap();

    forget(&repo, &ids[0]);
    let opts = PruneOptions {
        max_unused_percent: 0.0,
        ..Default::default()
    };
    let first = prune(&repo, &opts, &NoProgress).unwrap();
    assert!(
        first.packs_retired > 0 && first.packs_repacked > 0,
        "{first:?}"
    );
    assert_eq!(first.packs_deleted, 0, "{first:?}");
    assert_eq!(first.packs_pending, first.packs_retired);
    assert_eq!(first.bytes_reclaimed(), 0);
    assert!(first.next_deletion.is_some());
    assert_clean(&repo, "with packs waiting");

    // The reader's index still points into the retired packs: they are there.
    for (id, copy) in ids[1..].iter().zip(&copies[1..]) {
        restore_equals(&reader, id, &src, copy, &work.path().join("reader"));
    }
    // A backup does not adopt them back (they are garbage, not orphans).
    let census = crate::writer::census_packs(&repo).unwrap();
    assert_eq!(census.adopted, 0);

    // Within the wait, a second prune keeps them and their age.
    let again = prune(&repo, &opts, &NoProgress).unwrap();
    assert_eq!(again.packs_deleted, 0);
    assert_eq!(again.packs_pending, first.packs_pending);
    assert_eq!(again.next_deletion, first.next_deletion);

    // A day later they go.
    let late = PruneOptions {
        now: later(25),
        ..opts
    };
    let done = prune(&repo, &late, &NoProgress).unwrap();
    assert_eq!(done.packs_deleted, first.packs_pending, "{done:?}");
    assert_eq!(done.packs_pending, 0);
    assert!(done.bytes_reclaimed() > 0);
    assert!(
        crate::pending::read_records(repo.keys(), repo.store())
            .unwrap()
            .is_empty()
    );
    assert_clean(&repo, "after the retired packs went");
    for (id, copy) in ids[1..].iter().zip(&copies[1..]) {
        restore_equals(&repo, id, &src, copy, &work.path().join("after"));
    }
}

#[test]
fn a_retired_pack_a_snapshot_needs_again_is_put_back() {
    let work = tempfile::tempdir().unwrap();
    let repo = memory_repo();
    let (ids, copies) = three_generations(&repo, work.path());
    let src = work.path().join("src");
    // Keep the manifest of the first snapshot, forget it, prune: its data
    // is retired. Then the manifest comes back (a listing that had hidden
    // it, an operator's copy): the next prune must not delete its data.
    let manifest = repo.store().get_object(&ids[0]).unwrap();
    forget(&repo, &ids[0]);
    let first = prune(&repo, &PruneOptions::default(), &NoProgress).unwrap();
    assert!(first.packs_pending > 0);
    repo.store().put_object(&ids[0], manifest).unwrap();
    let late = PruneOptions {
        now: later(25),
        ..PruneOptions::default()
    };
    let done = prune(&repo, &late, &NoProgress).unwrap();
    assert!(done.orphans_adopted > 0, "{done:?}");
    assert_clean(&repo, "after putting retired packs back");
    restore_equals(&repo, &ids[0], &src, &copies[0], work.path());
}

#[test]
fn orphans_are_kept_while_young_and_deleted_when_old() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    generate_tree(&src, TreeSpec::tiny(5));
    let repo = memory_repo();
    // An interrupted backup: packs uploaded, never indexed.
    {
        let _lock = repo.lock(false, "backup").unwrap();
        let writer = BlobWriter::new(&repo).unwrap();
        for i in 0..40u32 {
            let data: Vec<u8> = (0..20_000u32).map(|j| (i * 7 + j) as u8).collect();
            writer
                .store_plain(crate::id::BlobKind::Data, &data)
                .unwrap();
        }
        writer.abandon();
    }
    let orphans = repo.store().list(ObjectKind::Pack).unwrap().objects.len();
    assert!(orphans > 0);
    let now = PruneOptions {
        delete_after: std::time::Duration::ZERO,
        ..PruneOptions::default()
    };
    let r = prune(&repo, &now, &NoProgress).unwrap();
    assert_eq!(r.orphans_young, orphans, "{r:?}");
    assert_eq!(r.packs_deleted, 0);
    let r = prune(
        &repo,
        &PruneOptions {
            now: later(2),
            ..now
        },
        &NoProgress,
    )
    .unwrap();
    assert_eq!(r.packs_deleted, orphans, "{r:?}");
    assert!(
        repo.store()
            .list(ObjectKind::Pack)
            .unwrap()
            .objects
            .is_empty()
    );
}

#[test]
fn an_index_entry_that_a_header_contradicts_is_not_acted_on() {
    use crate::id::{BlobKind, TreeId};
    use crate::snapshot::{SNAPSHOT_VERSION, Snapshot, SnapshotStatus, Summary};
    use crate::tree::{Metadata, Node, NodeData, Tree};
    let work = tempfile::tempdir().unwrap();
    let repo = memory_repo();
    // Two data blobs in two packs of their own, both used by one snapshot.
    let mut chunks = Vec::new();
    let mut contents = Vec::new();
    for seed in [1u8, 2] {
        let _lock = repo.lock(false, "backup").unwrap();
        let w = BlobWriter::new(&repo).unwrap();
        let data: Vec<u8> = (0..30_000u32).map(|i| (i as u8) ^ seed).collect();
        let (id, _) = w.store_plain(BlobKind::Data, &data).unwrap();
        w.finish().unwrap();
        chunks.push(crate::id::ChunkId::from_bytes(id));
        contents.push(data);
    }
    let file = |name: &str, c: crate::id::ChunkId, size: usize| Node {
        name: name.as_bytes().to_vec(),
        meta: Metadata {
            mode: 0o644,
            size: size as u64,
            ..Metadata::default()
        },
        data: NodeData::File { chunks: vec![c] },
    };
    let tree = Tree {
        nodes: vec![
            file("a", chunks[0], contents[0].len()),
            file("b", chunks[1], contents[1].len()),
        ],
    };
    let snap_id = {
        let _lock = repo.lock(false, "backup").unwrap();
        let w = BlobWriter::new(&repo).unwrap();
        let (root, _) = w.store_plain(BlobKind::Tree, &tree.encode()).unwrap();
        w.finish().unwrap();
        repo.save_snapshot(&Snapshot {
            version: SNAPSHOT_VERSION,
            time: jiff::Timestamp::now(),
            host: "h".into(),
            username: "u".into(),
            account: "default".into(),
            paths: vec![],
            tags: vec![],
            parent: None,
            tree: TreeId::from_bytes(root),
            status: SnapshotStatus::Complete,
            summary: Summary::default(),
            program: "crafted".into(),
        })
        .unwrap()
    };
    // Where each chunk really is.
    let inv = Inventory::load(&repo).unwrap();
    let loc = |c: &crate::id::ChunkId| inv.blob(c.as_bytes()).unwrap();
    let (l0, l1) = (loc(&chunks[0]), loc(&chunks[1]));
    // Forge an index object that places the chunk of the later pack (by id)
    // into the earlier one, where prune would pick it as the kept copy and
    // let its only real pack go.
    let (wrong, victim) = if l0.pack < l1.pack {
        (l0, l1)
    } else {
        (l1, l0)
    };
    let forged = crate::index::IndexFile {
        packs: vec![crate::index::IndexedPack {
            id: wrong.pack,
            size: inv.packs[&wrong.pack].size,
            blobs: vec![crate::pack::PackEntry {
                id: victim.entry.id,
                ..wrong.entry
            }],
            sealing: None,
        }],
    };
    {
        let _lock = repo.lock(false, "forge").unwrap();
        repo.save_index(forged).unwrap();
    }
    let r = prune(&repo, &thorough(), &NoProgress).unwrap();
    assert_eq!(r.contradictions.len(), 1, "{r:?}");
    assert!(r.contradictions[0].contains(&wrong.pack.short()), "{r:?}");
    assert_eq!(r.packs_deleted, 0, "{r:?}");
    assert_clean(&repo, "after pruning past a forged index entry");
    let fresh = Repository::open(repo.store().clone(), PASSWORD, CacheLocation::InMemory).unwrap();
    let snap = fresh.load_snapshot(&snap_id).unwrap();
    let target = work.path().join("r");
    let s = restore(
        &fresh,
        &snap,
        None,
        &RestoreOptions::new(target.clone()),
        &NoProgress,
    )
    .unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(std::fs::read(target.join("a")).unwrap(), contents[0]);
    assert_eq!(std::fs::read(target.join("b")).unwrap(), contents[1]);
}

#[test]
fn a_listing_that_hid_an_index_object_deletes_nothing() {
    use cairn_testkit::faults::{Flaky, FlakyPlan};
    let work = tempfile::tempdir().unwrap();
    let inner = Arc::new(object_store::memory::InMemory::new());
    let base = Store::from_object_store(inner.clone(), "mem".into()).unwrap();
    let repo = crate::test_repo::repo_on(base.clone(), &init_opts());
    let (ids, copies) = three_generations(&repo, work.path());
    let src = work.path().join("src");
    forget(&repo, &ids[1]);
    drop(repo);
    // Every index object is hidden: every pack looks unindexed, and those
    // of the forgotten snapshot unused.
    let hidden: Vec<String> = base
        .list(ObjectKind::Index)
        .unwrap()
        .objects
        .iter()
        .map(|o| format!("index/{}", o.name))
        .collect();
    for (lists, now) in [(1, later(2)), (u32::MAX, None)] {
        // The first listing of the index hides them (an eventually
        // consistent or faulty server), two hours after the backups; or
        // every listing does, soon after them.
        let copy = copy_store(&inner);
        let flaky = Flaky::new(
            copy.clone(),
            FlakyPlan {
                hide: hidden.clone(),
                hide_lists: lists,
                ..FlakyPlan::default()
            },
        );
        let store = Store::from_object_store(Arc::new(flaky), "flaky".into()).unwrap();
        let repo = Repository::open(store, PASSWORD, CacheLocation::InMemory).unwrap();
        let r = prune(&repo, &PruneOptions { now, ..thorough() }, &NoProgress).unwrap();
        if lists == 1 {
            // The second listing before deleting saw more than the first.
            assert!(r.listing_changed, "{r:?}");
        } else {
            // Unindexed and young: left alone.
            assert!(r.orphans_young > 0, "{r:?}");
        }
        assert_eq!(r.packs_deleted, 0, "{r:?}");
        // Whatever the hidden index object lists stays.
        let plain = Repository::open(
            Store::from_object_store(copy, "plain".into()).unwrap(),
            PASSWORD,
            CacheLocation::InMemory,
        )
        .unwrap();
        assert_clean(
            &plain,
            &format!("after a prune whose listing hid an index ({lists})"),
        );
        for i in [0, 2] {
            let scratch = work.path().join(format!("h{lists}"));
            restore_equals(&plain, &ids[i], &src, &copies[i], &scratch);
        }
    }
}
