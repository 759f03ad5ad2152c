use super::*;
use crate::check::{CheckOptions, check};
use crate::config::{ChunkerConfig, GearSource};
use crate::faults::CrashAfter;
use crate::keyfile::KdfCost;
use crate::progress::NoProgress;
use crate::repo::{CacheLocation, InitOptions};
use crate::restore::{RestoreOptions, restore};
use crate::store::{ObjectKind, Store};
use cairn_e2e::{TreeSpec, assert_same_tree, copy_tree, generate_tree, mutate_tree};
use std::sync::Arc;

const PASSWORD: &[u8] = b"secret";

fn small_init() -> InitOptions {
    InitOptions {
        chunker: ChunkerConfig {
            min_size: 16 << 10,
            avg_size: 64 << 10,
            max_size: 256 << 10,
            normalization: 1,
            gear: GearSource::Keyed,
        },
        pack_size: 256 << 10,
        kdf: KdfCost::MINIMAL,
        ..InitOptions::default()
    }
}

fn memory_repo() -> Repository {
    Repository::init(
        Store::memory().unwrap(),
        PASSWORD,
        &small_init(),
        CacheLocation::InMemory,
    )
    .unwrap()
}

fn assert_checks_clean(repo: &Repository, when: &str) {
    let opts = CheckOptions {
        read_data: true,
        subset_percent: None,
    };
    let report = check(repo, &opts, &NoProgress).unwrap();
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
    // 3 KB files.
    assert!(s3.bytes_read < s.bytes_read, "{s3:?}");
    assert!(s3.raw_bytes_added < 600 << 10, "{s3:?}");
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
}

#[test]
fn unreadable_files_are_reported_and_left_out() {
    if unsafe_is_root() {
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

fn unsafe_is_root() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions.
    unsafe {
        libc::geteuid() == 0
    }
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
