//! A model test of the concurrency and deletion protocol (docs/FORMAT.md,
//! "Concurrency and deletion"): random sequences of backups, interrupted
//! backups, forgets, prunes (with and without the deletion delay, with a
//! clock the test moves) and restores by readers that loaded the index
//! earlier, over an in-memory store. After every step: every snapshot that
//! was reported saved and not forgotten restores from a fresh handle, and
//! `check --read-data` passes; a reader whose index is older than the last
//! prune restores whatever it planned, as long as it is younger than the
//! deletion delay and no prune deleted at once since.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::backup::{BackupOptions, backup};
use crate::check::{CheckOptions, check};
use crate::id::{BlobKind, SnapshotId};
use crate::progress::NoProgress;
use crate::prune::{PruneOptions, prune};
use crate::repo::{CacheLocation, InitOptions, Repository};
use crate::restore::{RestoreOptions, restore};
use crate::store::Store;
use crate::writer::BlobWriter;
use cairn_testkit::trees::{TreeSpec, assert_same_tree, generate_tree};
use proptest::prelude::*;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
enum Op {
    /// Back up a tree whose content depends on the seed (seeds collide on
    /// purpose, so snapshots share data).
    Backup(u8),
    /// A backup that uploads packs and dies before indexing them.
    Interrupted(u8),
    /// Forget the n-th snapshot still there.
    Forget(usize),
    /// Move the clock by hours, then prune.
    Prune {
        thorough: bool,
        at_once: bool,
        hours: u8,
    },
    /// A reader loads the index now.
    OpenReader,
    /// The n-th reader restores the m-th snapshot it knew about.
    ReaderRestore(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..6).prop_map(Op::Backup),
        1 => (0u8..6).prop_map(Op::Interrupted),
        2 => (0usize..8).prop_map(Op::Forget),
        2 => (any::<bool>(), prop::bool::weighted(0.25), prop_oneof![Just(0u8), Just(12), Just(25)])
            .prop_map(|(thorough, at_once, hours)| Op::Prune { thorough, at_once, hours }),
        1 => Just(Op::OpenReader),
        2 => (0usize..4, 0usize..8).prop_map(|(r, s)| Op::ReaderRestore(r, s)),
    ]
}

fn init_opts() -> InitOptions {
    crate::test_repo::small_opts(16 << 10, 64 << 10)
}

struct Reader {
    repo: Repository,
    /// Clock hours when it loaded the index.
    opened: i64,
    /// Snapshots there at that time.
    knew: Vec<(SnapshotId, PathBuf)>,
    /// A prune that deleted at once ran since it loaded the index.
    spoiled: bool,
}

fn restores(repo: &Repository, id: &SnapshotId, src: &Path, scratch: &Path) -> Result<(), String> {
    let snap = repo.load_snapshot(id).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(scratch);
    let summary = restore(
        repo,
        &snap,
        Some(src.as_os_str().as_bytes()),
        &RestoreOptions::new(scratch.to_path_buf()),
        &NoProgress,
    )
    .map_err(|e| e.to_string())?;
    if !summary.errors.is_empty() {
        return Err(format!("{:?}", summary.errors));
    }
    assert_same_tree(src, scratch);
    Ok(())
}

fn run(ops: &[Op]) {
    let work = tempfile::tempdir().unwrap();
    let store = Store::memory().unwrap();
    let repo = crate::test_repo::repo_on(store.clone(), &init_opts());
    let base = jiff::Timestamp::now();
    let mut hours = 0i64;
    let mut alive: Vec<(SnapshotId, PathBuf)> = Vec::new();
    let mut readers: Vec<Reader> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Backup(seed) => {
                let src = work.path().join(format!("src{step}"));
                generate_tree(&src, TreeSpec::tiny(u64::from(*seed % 3)));
                let mut o = BackupOptions::new(vec![src.clone()]);
                o.host = "h".into();
                let out = backup(&repo, &o, &NoProgress).unwrap();
                alive.push((out.id, src));
            }
            Op::Interrupted(seed) => {
                let _lock = repo.lock(false, "backup").unwrap();
                let w = BlobWriter::new(&repo).unwrap();
                for i in 0..8u32 {
                    let data: Vec<u8> = (0..9000u32)
                        .map(|j| (j.wrapping_mul(31) ^ i ^ u32::from(*seed)) as u8)
                        .collect();
                    w.store_plain(BlobKind::Data, &data).unwrap();
                }
                w.abandon();
            }
            Op::Forget(n) => {
                if !alive.is_empty() {
                    let (id, _) = alive.remove(n % alive.len());
                    let _lock = repo.lock(true, "forget").unwrap();
                    repo.remove_snapshot(&id).unwrap();
                }
            }
            Op::Prune {
                thorough,
                at_once,
                hours: h,
            } => {
                hours += i64::from(*h);
                let opts = PruneOptions {
                    max_unused_percent: if *thorough { 0.0 } else { 5.0 },
                    delete_after: if *at_once {
                        std::time::Duration::ZERO
                    } else {
                        crate::prune::DEFAULT_DELETE_AFTER
                    },
                    now: Some(base + jiff::SignedDuration::from_hours(hours)),
                    ..PruneOptions::default()
                };
                prune(&repo, &opts, &NoProgress).unwrap();
                if *at_once {
                    for r in &mut readers {
                        r.spoiled = true;
                    }
                }
            }
            Op::OpenReader => {
                let reader = Repository::open(
                    store.clone(),
                    crate::test_repo::PASSWORD,
                    CacheLocation::InMemory,
                )
                .unwrap();
                reader.index().unwrap();
                readers.push(Reader {
                    repo: reader,
                    opened: hours,
                    knew: alive.clone(),
                    spoiled: false,
                });
            }
            Op::ReaderRestore(r, s) => {
                if readers.is_empty() {
                    continue;
                }
                let reader = &readers[r % readers.len()];
                if reader.knew.is_empty() {
                    continue;
                }
                let (id, src) = &reader.knew[s % reader.knew.len()];
                let still_there = alive.iter().any(|(a, _)| a == id);
                let fresh = hours - reader.opened < 24;
                let scratch = work.path().join(format!("reader{step}"));
                let result = restores(&reader.repo, id, src, &scratch);
                if still_there && fresh && !reader.spoiled {
                    assert!(
                        result.is_ok(),
                        "step {step} {op:?}: a reader {}h old failed: {result:?}",
                        hours - reader.opened
                    );
                }
            }
        }
        // The invariants, from a fresh handle.
        let fresh = Repository::open(
            store.clone(),
            crate::test_repo::PASSWORD,
            CacheLocation::InMemory,
        )
        .unwrap();
        let report = check(
            &fresh,
            &CheckOptions {
                read_data: true,
                subset: None,
            },
            &NoProgress,
        )
        .unwrap();
        assert!(report.is_ok(), "step {step} {op:?}: {report:?}");
        for (i, (id, src)) in alive.iter().enumerate() {
            let scratch = work.path().join(format!("check{step}-{i}"));
            restores(&fresh, id, src, &scratch)
                .unwrap_or_else(|e| panic!("step {step} {op:?}: snapshot {id} lost: {e}"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_snapshot_reported_saved_restores_whatever_the_interleaving(
        ops in prop::collection::vec(op(), 1..12)
    ) {
        run(&ops);
    }
}

#[test]
fn a_reader_survives_a_thorough_prune_between_planning_and_reading() {
    run(&[
        Op::Backup(0),
        Op::Backup(1),
        Op::OpenReader,
        Op::Forget(0),
        Op::Prune {
            thorough: true,
            at_once: false,
            hours: 12,
        },
        Op::ReaderRestore(0, 1),
        Op::Interrupted(3),
        Op::Prune {
            thorough: true,
            at_once: false,
            hours: 25,
        },
        Op::Backup(0),
        Op::ReaderRestore(0, 1),
    ]);
}
