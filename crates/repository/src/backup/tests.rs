use super::*;
use crate::check::{CheckOptions, check};
use crate::layout::ObjectKind;
use crate::progress::NoProgress;
use crate::repo::{CacheLocation, InitOptions};
use crate::restore::{RestoreOptions, restore};
use crate::store::Store;
use cairn_testkit::faults::CrashAfter;
use cairn_testkit::trees::{TreeSpec, assert_same_tree, copy_tree, generate_tree, mutate_tree};
use std::sync::Arc;

use crate::test_repo::PASSWORD;

fn small_init() -> InitOptions {
    crate::test_repo::small_opts(64 << 10, 256 << 10)
}

fn memory_repo() -> Repository {
    crate::test_repo::memory_repo(&small_init())
}

/// `check --read-data`.
fn check_all(repo: &Repository) -> crate::check::CheckReport {
    let opts = CheckOptions {
        read_data: true,
        subset: None,
    };
    check(repo, &opts, &NoProgress).unwrap()
}

fn assert_checks_clean(repo: &Repository, when: &str) {
    let report = check_all(repo);
    assert!(report.is_ok(), "{when}: {report:?}");
}

fn small_spec() -> TreeSpec {
    TreeSpec {
        small_files: 120,
        large_files: 3,
        large_size: 1 << 20,
        seed: 7,
    }
}

fn opts(path: &Path) -> BackupOptions {
    let mut o = BackupOptions::new(vec![path.to_path_buf()]);
    o.host = "test-host".into();
    o
}

fn restore_all(
    repo: &Repository,
    snap: &Snapshot,
    subpath: &Path,
    into: &Path,
) -> crate::restore::RestoreSummary {
    let sub = subpath.as_os_str().as_bytes();
    let summary = restore(
        repo,
        snap,
        Some(sub),
        &RestoreOptions::new(into.to_path_buf()),
        &NoProgress,
    )
    .unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    summary
}

#[test]
fn round_trip_change_detection_and_dedup() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    generate_tree(&src, small_spec());
    let repo = memory_repo();

    let first = backup(&repo, &opts(&src), &NoProgress).unwrap();
    let s = &first.snapshot.summary;
    assert!(s.files_new > 120, "{s:?}");
    assert_eq!(s.files_unmodified, 0);
    assert_eq!(s.unreadable_count, 0);
    assert!(
        s.bytes_added > 0 && s.bytes_added < s.bytes_total,
        "compression should save space: {s:?}"
    );

    let out = work.path().join("out1");
    restore_all(&repo, &first.snapshot, &src, &out);
    assert_same_tree(&src, &out);

    // Nothing changed: nothing is read, almost nothing is added.
    let second = backup(&repo, &opts(&src), &NoProgress).unwrap();
    let s2 = &second.snapshot.summary;
    assert_eq!(second.snapshot.parent, Some(first.id));
    assert_eq!(s2.files_new + s2.files_changed, 0, "{s2:?}");
    assert_eq!(s2.bytes_read, 0);
    // Only the trees of the directories above `src` may differ (their
    // mtimes moved when the test created its restore directories).
    assert!(s2.bytes_added < 4096, "{s2:?}");
    let src_tree = |snap: &Snapshot| match crate::browse::locate(
        &repo,
        &snap.tree,
        src.as_os_str().as_bytes(),
    )
    .unwrap()
    {
        crate::browse::Located::Dir { tree, .. } => tree,
        other => panic!("{other:?}"),
    };
    assert_eq!(src_tree(&second.snapshot), src_tree(&first.snapshot));

    // Change it: only the changes are read.
    let before = work.path().join("before");
    copy_tree(&src, &before);
    mutate_tree(&src, 1);
    let third = backup(&repo, &opts(&src), &NoProgress).unwrap();
    let s3 = &third.snapshot.summary;
    assert!(s3.files_changed >= 2 && s3.files_new >= 20, "{s3:?}");
    assert!(s3.files_unmodified > 100, "{s3:?}");
    // Changed files are read whole, but only chunks around the edits are new:
    // 5 KB inserted in one 1 MiB file, 100 KB appended to another, 20 new
    // 3 KB files. The chunk boundaries depend on the repository's random
    // key, so the bound is the worst case: two chunks of at most 256 KiB
    // around the insertion, the last chunk before the append and the
    // appended bytes, and the new files (about 930 KiB, of 3.6 MiB).
    assert!(s3.bytes_read < s.bytes_read, "{s3:?}");
    assert!(s3.raw_bytes_added < 960 << 10, "{s3:?}");
    let out3 = work.path().join("out3");
    restore_all(&repo, &third.snapshot, &src, &out3);
    assert_same_tree(&src, &out3);
    // The first snapshot still restores the old state.
    let out1b = work.path().join("out1b");
    restore_all(&repo, &first.snapshot, &src, &out1b);
    assert_same_tree(&before, &out1b);

    // The same data under another path adds almost nothing.
    let copy = work.path().join("copy");
    copy_tree(&src, &copy);
    let fourth = backup(&repo, &opts(&copy), &NoProgress).unwrap();
    let s4 = &fourth.snapshot.summary;
    assert!(
        s4.bytes_added < s4.bytes_total / 50,
        "dedup across paths: {s4:?}"
    );

    assert_checks_clean(&repo, "after four backups");
    assert_eq!(repo.snapshots().unwrap().0.len(), 4);
}

#[test]
fn several_paths_are_recorded_in_order_and_overlaps_refused() {
    let work = tempfile::tempdir().unwrap();
    let a = work.path().join("usr-files");
    let b = work.path().join("clandata");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("u"), b"u").unwrap();
    std::fs::write(b.join("c"), b"c").unwrap();
    let repo = memory_repo();
    let mut o = opts(&b);
    o.paths = vec![b.clone(), a.clone()];
    let out = backup(&repo, &o, &NoProgress).unwrap();
    let paths: Vec<String> = out.snapshot.paths.iter().map(RawPath::display).collect();
    assert_eq!(
        paths,
        vec![b.display().to_string(), a.display().to_string()]
    );
    let dest = work.path().join("r");
    restore_all(&repo, &out.snapshot, Path::new(""), &dest);
    let rel = |p: &Path| dest.join(p.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(rel(&a).join("u")).unwrap(), b"u");
    assert_eq!(std::fs::read(rel(&b).join("c")).unwrap(), b"c");

    o.paths = vec![a.clone(), a.join("u")];
    assert!(matches!(
        backup(&repo, &o, &NoProgress),
        Err(Error::Invalid { .. })
    ));
    o.paths = vec![work.path().join("does-not-exist")];
    assert!(matches!(
        backup(&repo, &o, &NoProgress),
        Err(Error::Io { .. })
    ));
    // One missing path among others: the rest is backed up, the missing
    // one is reported as unreadable and left out of the snapshot's paths.
    let gone = work.path().join("gone");
    o.paths = vec![a.clone(), gone.clone()];
    let out = backup(&repo, &o, &NoProgress).unwrap();
    assert_eq!(out.snapshot.summary.unreadable_count, 1);
    assert_eq!(
        out.snapshot.summary.unreadable[0].path.0,
        gone.as_os_str().as_encoded_bytes()
    );
    assert_eq!(
        out.snapshot.paths,
        vec![RawPath(a.as_os_str().as_encoded_bytes().to_vec())]
    );
}

#[test]
fn unreadable_files_are_reported_and_left_out() {
    if is_root() {
        return; // root reads everything; the CLI test covers this as non-root
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("ok"), b"fine").unwrap();
    std::fs::write(src.join("secret"), b"no").unwrap();
    std::fs::set_permissions(
        src.join("secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    let repo = memory_repo();
    let out = backup(&repo, &opts(&src), &NoProgress).unwrap();
    assert_eq!(out.snapshot.summary.unreadable_count, 1);
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Crash the store after every possible number of writes during a backup:
/// the repository must check clean with no new snapshot, and the next
/// backup must succeed and restore.
#[test]
fn a_crash_at_any_write_leaves_a_consistent_repository() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 40,
            large_files: 2,
            large_size: 600 << 10,
            seed: 3,
        },
    );

    // How many writes does a full backup make?
    let probe = Arc::new(object_store::memory::InMemory::new());
    let repo = Repository::init(
        Store::from_object_store(probe.clone(), "probe".into()).unwrap(),
        PASSWORD,
        &small_init(),
        CacheLocation::InMemory,
    )
    .unwrap();
    let mut o = opts(&src);
    o.cpu_threads = 1;
    o.read_threads = 1;
    backup(&repo, &o, &NoProgress).unwrap();
    let store = Store::from_object_store(probe, "probe".into()).unwrap();
    let total: usize = ObjectKind::ALL
        .iter()
        .filter(|k| **k != ObjectKind::Lock && **k != ObjectKind::Config && **k != ObjectKind::Key)
        .map(|k| store.list(*k).unwrap().objects.len())
        .sum();
    assert!(total > 5, "expected several objects, got {total}");

    // Lock write + packs + indexes + snapshot + lock delete.
    for budget in 0..(total as i64 + 2) {
        let inner = Arc::new(object_store::memory::InMemory::new());
        let base = Store::from_object_store(inner.clone(), "mem".into()).unwrap();
        Repository::init(
            base.clone(),
            PASSWORD,
            &small_init(),
            CacheLocation::InMemory,
        )
        .unwrap();
        let crashing = Store::from_object_store(
            Arc::new(CrashAfter::new(inner.clone(), budget)),
            "crash".into(),
        )
        .unwrap();
        let repo = Repository::open(crashing, PASSWORD, CacheLocation::InMemory).unwrap();
        let result = backup(&repo, &o, &NoProgress);
        drop(repo);

        let repo = Repository::open(base, PASSWORD, CacheLocation::InMemory).unwrap();
        let (snaps, bad) = repo.snapshots().unwrap();
        assert!(bad.is_empty());
        assert_eq!(snaps.len(), usize::from(result.is_ok()), "budget {budget}");
        assert_checks_clean(&repo, &format!("budget {budget}"));
        // Remove a lock the "crashed" run left behind, then back up again.
        crate::lock::unlock(repo.store(), repo.keys(), true).unwrap();
        let again = backup(&repo, &o, &NoProgress).unwrap();
        if result.is_err() {
            assert!(again.snapshot.summary.files_new > 0);
        }
        let dest = work.path().join(format!("r{budget}"));
        restore_all(&repo, &again.snapshot, &src, &dest);
        assert_same_tree(&src, &dest);
        assert_checks_clean(&repo, &format!("budget {budget} after retry"));
    }
}

/// Sets the cancel flag once some bytes were read, as a signal handler
/// would in the middle of a backup.
struct CancelAfter {
    flag: Arc<AtomicBool>,
    after: u64,
    seen: std::sync::atomic::AtomicU64,
}

impl Progress for CancelAfter {
    fn bytes(&self, n: u64) {
        if self.seen.fetch_add(n, Ordering::Relaxed) + n >= self.after {
            self.flag.store(true, Ordering::Relaxed);
        }
    }
}

#[test]
fn a_cancelled_backup_writes_no_snapshot_and_the_next_reuses_its_data() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 20,
            large_files: 6,
            large_size: 2 << 20,
            seed: 9,
        },
    );
    let repo = memory_repo();
    let flag = Arc::new(AtomicBool::new(false));
    let mut o = opts(&src);
    o.cancel = Some(Arc::clone(&flag));
    let progress = CancelAfter {
        flag: Arc::clone(&flag),
        after: 4 << 20,
        seen: 0.into(),
    };
    let err = backup(&repo, &o, &progress).unwrap_err();
    assert!(matches!(err, Error::Interrupted(_)), "{err}");
    assert!(repo.snapshots().unwrap().0.is_empty(), "no snapshot");
    assert_checks_clean(&repo, "after a cancelled backup");

    let full = backup(&repo, &opts(&src), &NoProgress).unwrap();
    let total = full.snapshot.summary.raw_bytes_added;
    let fresh = backup(&memory_repo(), &opts(&src), &NoProgress).unwrap();
    assert!(
        total < fresh.snapshot.summary.raw_bytes_added,
        "the next backup reused what the cancelled one stored ({total} bytes added)"
    );
    let into = work.path().join("restored");
    restore_all(&repo, &full.snapshot, Path::new(""), &into);
}

/// Packs holding data blobs and packs holding tree blobs.
fn packs_by_kind(repo: &Repository) -> (Vec<crate::id::PackId>, Vec<crate::id::PackId>) {
    let (mut data, mut trees) = (Vec::new(), Vec::new());
    for o in repo.store().list(ObjectKind::Pack).unwrap().objects {
        let id = crate::id::PackId::from_hex(&o.name).unwrap();
        let header =
            crate::objects::read_pack_header(repo.store(), repo.keys(), &id, o.size).unwrap();
        if header[0].kind == crate::id::BlobKind::Tree {
            trees.push(id);
        } else {
            data.push(id);
        }
    }
    (data, trees)
}

#[test]
fn a_backup_after_a_lost_pack_stores_the_data_again_and_heals_older_snapshots() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    generate_tree(&src, small_spec());
    let repo = memory_repo();
    let first = backup(&repo, &opts(&src), &NoProgress).unwrap();
    let (data, trees) = packs_by_kind(&repo);
    let lost = [data[data.len() / 2], trees[0]];
    for p in &lost {
        repo.store().delete_object(&p).unwrap();
    }
    let report = check(&repo, &CheckOptions::default(), &NoProgress).unwrap();
    assert!(!report.is_ok(), "the loss is damage before the next backup");

    // The unchanged-file shortcut and deduplication would reuse what is
    // gone; the backup sees the pack is missing and stores it again.
    let second = backup(&repo, &opts(&src), &NoProgress).unwrap();
    let mut named = second.lost_packs.clone();
    named.sort();
    let mut expected = lost.to_vec();
    expected.sort();
    assert_eq!(named, expected);
    assert!(second.snapshot.summary.blobs_added > 0);
    for (snap, dir) in [(&second.snapshot, "second"), (&first.snapshot, "first")] {
        let dest = work.path().join(dir);
        restore_all(&repo, snap, &src, &dest);
        assert_same_tree(&src, &dest);
    }
    // Nothing is lost any more; check says the missing packs healed.
    let report = check_all(&repo);
    assert!(report.is_ok(), "{report:?}");
    let healed = report
        .warnings
        .iter()
        .filter(|w| w.contains("healed"))
        .count();
    assert_eq!(healed, 2, "{:?}", report.warnings);

    // A fresh cache (another machine) reads the healed copies too.
    let fresh = Repository::open(repo.store().clone(), PASSWORD, CacheLocation::InMemory).unwrap();
    let dest = work.path().join("fresh");
    restore_all(&fresh, &first.snapshot, &src, &dest);
    assert_same_tree(&src, &dest);
}

#[test]
fn what_changed_since_a_lost_pack_stays_lost_and_check_says_so() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    generate_tree(&src, small_spec());
    let repo = memory_repo();
    backup(&repo, &opts(&src), &NoProgress).unwrap();
    let (data, _) = packs_by_kind(&repo);
    for p in &data {
        repo.store().delete_object(&p).unwrap();
    }
    // The files are different now: the old content is gone for good.
    std::fs::remove_dir_all(&src).unwrap();
    generate_tree(
        &src,
        TreeSpec {
            seed: 99,
            ..small_spec()
        },
    );
    let second = backup(&repo, &opts(&src), &NoProgress).unwrap();
    assert_eq!(second.lost_packs.len(), data.len());
    let dest = work.path().join("second");
    restore_all(&repo, &second.snapshot, &src, &dest);
    assert_same_tree(&src, &dest);
    let report = check(&repo, &CheckOptions::default(), &NoProgress).unwrap();
    assert!(!report.is_ok());
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains("missing") && e.contains("lost")),
        "{:?}",
        report.errors
    );
    assert!(report.damaged.iter().all(|d| d.snapshot != second.id));
}

#[test]
fn a_truncated_upload_is_sent_again_and_a_bad_read_read_again() {
    use cairn_testkit::faults::{Flaky, FlakyPlan};
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    generate_tree(&src, small_spec());
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let flaky = Arc::new(Flaky::new(
        inner.clone(),
        FlakyPlan {
            truncate_put: Some(("data/".into(), 3)),
            corrupt_get: Some(("data/".into(), 5)),
            ..FlakyPlan::default()
        },
    ));
    // As on S3: uploads are confirmed.
    let store = Store::remote(flaky.clone(), "flaky".into()).unwrap();
    let repo = Repository::init(store, PASSWORD, &small_init(), CacheLocation::InMemory).unwrap();
    let first = backup(&repo, &opts(&src), &NoProgress).unwrap();
    let dest = work.path().join("r");
    restore_all(&repo, &first.snapshot, &src, &dest);
    assert_same_tree(&src, &dest);
    assert_eq!(flaky.faults.load(std::sync::atomic::Ordering::SeqCst), 2);
    // What is stored is whole.
    let plain = Repository::open(
        Store::from_object_store(inner, "plain".into()).unwrap(),
        PASSWORD,
        CacheLocation::InMemory,
    )
    .unwrap();
    assert_checks_clean(&plain, "after a truncated upload");
}

#[test]
fn damage_that_is_really_stored_is_still_reported() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    generate_tree(&src, small_spec());
    let repo = memory_repo();
    let first = backup(&repo, &opts(&src), &NoProgress).unwrap();
    let (data, _) = packs_by_kind(&repo);
    let mut bytes = repo.store().get_object(&data[0]).unwrap().to_vec();
    bytes[100] ^= 1;
    repo.store().put_object(&data[0], bytes.into()).unwrap();
    let summary = restore(
        &repo,
        &first.snapshot,
        Some(src.as_os_str().as_bytes()),
        &RestoreOptions::new(work.path().join("r")),
        &NoProgress,
    )
    .unwrap();
    assert!(!summary.errors.is_empty());
    let report = check_all(&repo);
    assert!(
        report.errors.iter().any(|e| e.contains(&data[0].short())),
        "{:?}",
        report.errors
    );
}
