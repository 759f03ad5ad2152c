//! Prune: reclaims exactly what no snapshot uses, and a crash at any write
//! leaves a repository that checks clean and that the next prune finishes.

use super::*;
use crate::backup::{BackupOptions, backup};
use crate::check::{CheckOptions, check};
use crate::config::{ChunkerConfig, GearSource};
use crate::faults::CrashAfter;
use crate::keyfile::KdfCost;
use crate::progress::NoProgress;
use crate::repo::{CacheLocation, InitOptions};
use crate::restore::{RestoreOptions, restore};
use crate::store::Store;
use cairn_e2e::{TreeSpec, assert_same_tree, copy_tree, generate_tree};
use std::path::Path;
use std::sync::Arc;

fn init_opts() -> InitOptions {
    InitOptions {
        chunker: ChunkerConfig {
            min_size: 16 << 10,
            avg_size: 64 << 10,
            max_size: 256 << 10,
            normalization: 1,
            gear: GearSource::Keyed,
        },
        pack_size: 128 << 10,
        kdf: KdfCost::MINIMAL,
        ..InitOptions::default()
    }
}

fn assert_clean(repo: &Repository, when: &str) {
    let opts = CheckOptions {
        read_data: true,
        subset_percent: None,
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

fn thorough() -> PruneOptions {
    PruneOptions {
        max_unused_percent: 0.0,
        ..Default::default()
    }
}

fn memory_repo() -> Repository {
    Repository::init(
        Store::memory().unwrap(),
        b"pw",
        &init_opts(),
        CacheLocation::InMemory,
    )
    .unwrap()
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

    repo.remove_snapshot(&ids[0]).unwrap();
    let plan = prune(&repo, &dry(), &NoProgress).unwrap();
    assert!(plan.packs_deleted + plan.packs_repacked > 0, "{plan:?}");
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
    assert_eq!(idle.packs_deleted + idle.packs_repacked, 0, "{idle:?}");
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
        b"pw",
        &init_opts(),
        CacheLocation::InMemory,
    )
    .unwrap();
    let (ids, copies) = three_generations(&repo, work.path());
    repo.remove_snapshot(&ids[1]).unwrap();
    drop(repo);

    let mut budget = 0;
    loop {
        let inner = copy_store(&base);
        let crashing = Store::from_object_store(
            Arc::new(CrashAfter::new(inner.clone(), budget)),
            "crash".into(),
        )
        .unwrap();
        let repo = Repository::open(crashing, b"pw", CacheLocation::InMemory).unwrap();
        let result = prune(&repo, &thorough(), &NoProgress);
        drop(repo);

        let store = Store::from_object_store(inner, "after".into()).unwrap();
        let repo = Repository::open(store, b"pw", CacheLocation::InMemory).unwrap();
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
