//! End-to-end: nothing is lost under concurrency and damage
//! (docs/FORMAT.md, "Concurrency and deletion"). Each test drives the built
//! `cairn` through one interleaving: a backup stopped past its lock's lease
//! while another process unlocks and prunes; readers that planned before a
//! prune and read after it; backups after a pack was lost; a forged index
//! entry; two prunes at once.

// Tests report failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::{Env, Rng, TreeSpec, assert_same_tree, copy_tree, generate_tree};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn check_clean(env: &Env, when: &str) -> Value {
    let out = env.run(&["check", "--read-data", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{when}: check failed: {report}\n{}",
        stderr(&out)
    );
    report
}

fn snapshot_ids(env: &Env) -> Vec<String> {
    env.json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

fn restore_same(env: &Env, id: &str, src: &Path, expected: &Path, into: &str) {
    let target = env.path(into);
    env.ok(&[
        "restore",
        &format!("{id}:{}", s(src)),
        "--target",
        s(&target),
    ]);
    assert_same_tree(expected, &target);
}

/// Files of random (incompressible) bytes, `mib` MiB in all.
fn random_tree(root: &Path, mib: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    std::fs::create_dir_all(root).unwrap();
    for i in 0..4 {
        std::fs::write(
            root.join(format!("random-{i}.bin")),
            rng.bytes(mib * (1 << 20) / 4),
        )
        .unwrap();
    }
}

/// Complete objects under `dir` (not staging files of uploads in flight).
fn count(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name().len() == 64 {
                n += 1;
            }
        }
    }
    n
}

fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    #[allow(unsafe_code)]
    // SAFETY: kill(2) with a valid signal on our own child.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill {sig}");
}

/// A `cairn` process whose stderr is watched: `reached` gets a message when
/// it prints a line containing the marker.
struct Watched {
    child: Child,
    reached: mpsc::Receiver<()>,
    err: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Watched {
    fn start(mut cmd: std::process::Command, marker: &str) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, reached) = mpsc::channel();
        let err = Arc::new(Mutex::new(String::new()));
        let stream = child.stderr.take().unwrap();
        let (marker, sink) = (marker.to_string(), Arc::clone(&err));
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if line.contains(&marker) {
                    let _ = tx.send(());
                }
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Self {
            child,
            reached,
            err,
            reader: Some(reader),
        }
    }

    fn wait_reached(&self, what: &str) {
        self.reached
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{what} never got there: {}", self.err.lock().unwrap()));
    }

    fn finish(mut self) -> (std::process::ExitStatus, String, String) {
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            std::io::Read::read_to_string(&mut o, &mut out).unwrap();
        }
        let status = self.child.wait().unwrap();
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        let err = self.err.lock().unwrap().clone();
        (status, out, err)
    }
}

#[test]
fn a_backup_whose_lock_was_lost_commits_nothing_and_the_next_one_succeeds() {
    for how in ["stale", "removed"] {
        let env = Env::with_repo();
        let small = env.path("small");
        generate_tree(&small, TreeSpec::tiny(31));
        let first = env.json(&["backup", s(&small)])["id"]
            .as_str()
            .unwrap()
            .to_string();
        let big = env.path("big");
        random_tree(&big, 96, 32);

        // A backup with a short lease, stopped once it has indexed packs.
        let index_before = count(&env.repo().join("index"));
        let mut cmd = env.cairn();
        if how == "stale" {
            cmd.env("CAIRN_LOCK_LEASE", "3s");
        }
        cmd.args(["backup", s(&big)]);
        let backup = Watched::start(cmd, "never printed");
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(&env.repo().join("index")) <= index_before {
            assert!(Instant::now() < deadline, "the backup indexed nothing");
            std::thread::sleep(Duration::from_millis(5));
        }
        signal(&backup.child, libc::SIGSTOP);

        // Meanwhile: its lock goes stale (or is removed by hand), and a
        // prune that deletes at once runs.
        let removed = if how == "stale" {
            std::thread::sleep(Duration::from_millis(4500));
            env.json(&["unlock"])
        } else {
            env.json(&["unlock", "--remove-all"])
        };
        assert_eq!(removed.as_array().unwrap().len(), 1, "{how}: {removed}");
        let pruned = env.json(&["prune", "--delete-after", "0"]);
        assert!(
            pruned["packs_deleted"].as_u64().unwrap() > 0,
            "{how}: the prune deleted the stopped backup's indexed packs: {pruned}"
        );

        signal(&backup.child, libc::SIGCONT);
        let (status, _, err) = backup.finish();
        assert_eq!(status.code(), Some(11), "{how}: {err}");
        assert!(err.contains("lock"), "{how}: {err}");

        // No snapshot from it, nothing damaged, the old one restores.
        assert_eq!(snapshot_ids(&env), vec![first.clone()], "{how}");
        check_clean(&env, how);
        restore_same(&env, &first, &small, &small, &format!("r-{how}-first"));
        // The next backup succeeds and restores.
        let next = env.json(&["backup", s(&big)]);
        let id = next["id"].as_str().unwrap();
        restore_same(&env, id, &big, &big, &format!("r-{how}-next"));
        check_clean(&env, &format!("{how}, after the next backup"));
    }
}

#[test]
fn restore_verify_and_sync_finish_while_forget_and_prune_run() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 200,
            large_files: 3,
            large_size: 2 << 20,
            seed: 41,
        },
    );
    env.ok(&["backup", s(&src)]);
    let other = env.path("other");
    generate_tree(&other, TreeSpec::tiny(42));
    env.ok(&["backup", s(&other)]);
    // The kept snapshot shares packs with the forgotten ones: drop every
    // third small file, add large ones, so a thorough prune repacks.
    let mut n = 0;
    for entry in cairn_e2e::walk(&src) {
        let path = src.join(&entry);
        if path.is_file() && entry.to_string_lossy().contains("file-") {
            n += 1;
            if n % 3 == 0 {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    random_tree(&src.join("big"), 24, 43);
    let kept = env.json(&["backup", s(&src)])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let expected = env.path("expected");
    copy_tree(&src, &expected);

    // Three readers, each stopped after planning what to read.
    let paused = |point: &str, args: &[&str]| {
        let mut cmd = env.cairn();
        cmd.env("CAIRN_FAILPOINT", point)
            .env("CAIRN_FAILPOINT_PAUSE_MS", "4000")
            .args(args);
        Watched::start(cmd, &format!("failpoint {point}"))
    };
    let target = env.path("restored");
    let replica = env.path("replica");
    let restore = paused(
        "restore-after-plan",
        &[
            "restore",
            &format!("{kept}:{}", s(&src)),
            "--target",
            s(&target),
        ],
    );
    let verify = paused("verify-after-trees", &["verify", &kept, "--json"]);
    let sync = paused("sync-after-list", &["sync", "--to", s(&replica)]);
    restore.wait_reached("restore");
    verify.wait_reached("verify");
    sync.wait_reached("sync");

    // Forget the other snapshots and prune thoroughly meanwhile.
    let policy = env.path("p.toml");
    std::fs::write(&policy, "[default]\nkeep-last = 1\n").unwrap();
    let done = env.json(&[
        "forget",
        "--policy",
        s(&policy),
        "--prune",
        "--max-unused",
        "0%",
    ]);
    assert_eq!(done["removed"], 2, "{done}");
    let prune = &done["prune"];
    assert!(
        prune["packs_repacked"].as_u64().unwrap() > 0
            && prune["packs_retired"].as_u64().unwrap() > 0,
        "the prune moved the kept snapshot's data: {done}"
    );

    // Each reader finishes with what it planned, byte for byte.
    let (status, _, err) = restore.finish();
    assert!(status.success(), "restore: {err}");
    assert_same_tree(&expected, &target);
    let (status, out, err) = verify.finish();
    assert!(status.success(), "verify: {err}");
    let verdict: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verdict["verdict"], "verified", "{verdict}");
    let (status, _, err) = sync.finish();
    assert!(status.success(), "sync: {err}");
    let remote = Env::new();
    let remote_check = remote
        .cairn()
        .env("CAIRN_REPOSITORY", &replica)
        .env("CAIRN_PASSWORD_FILE", env.path("password"))
        .args(["check", "--read-data"])
        .output()
        .unwrap();
    assert!(remote_check.status.success(), "{}", stderr(&remote_check));
    let from_replica = env.path("from-replica");
    let out = remote
        .cairn()
        .env("CAIRN_REPOSITORY", &replica)
        .env("CAIRN_PASSWORD_FILE", env.path("password"))
        .args([
            "restore",
            &format!("{kept}:{}", s(&src)),
            "--target",
            s(&from_replica),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_tree(&expected, &from_replica);
    check_clean(&env, "after the readers");

    // Two prunes at once: the second is refused.
    let mut cmd = env.cairn();
    cmd.env("CAIRN_FAILPOINT", "prune-after-index-write")
        .env("CAIRN_FAILPOINT_PAUSE_MS", "3000")
        .args(["prune"]);
    let first = Watched::start(cmd, "failpoint prune-after-index-write");
    first.wait_reached("the first prune");
    let second = env.run(&["prune"]);
    assert_eq!(second.status.code(), Some(11), "{}", stderr(&second));
    let (status, _, err) = first.finish();
    assert!(status.success(), "{err}");
}

/// The pack files of a local repository, largest first, with the kind of
/// their first blob (from `cairn cat pack`).
fn packs(env: &Env) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![env.repo().join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::metadata(&p).unwrap().len()));
            }
        }
    }
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

fn pack_kind(env: &Env, pack: &Path) -> String {
    let id = pack.file_name().unwrap().to_str().unwrap();
    let v = env.json(&["cat", "pack", id]);
    v["blobs"][0]["type"].as_str().unwrap().to_string()
}

#[test]
fn backups_after_a_lost_pack_store_it_again_and_old_snapshots_heal() {
    for lose in ["data", "tree"] {
        let env = Env::with_repo();
        let src = env.path("src");
        generate_tree(
            &src,
            TreeSpec {
                small_files: 100,
                large_files: 3,
                large_size: 1 << 20,
                seed: 51,
            },
        );
        let first = env.json(&["backup", s(&src)])["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (lost, _) = packs(&env)
            .into_iter()
            .find(|(p, _)| pack_kind(&env, p) == lose)
            .unwrap();
        let lost_id = lost.file_name().unwrap().to_str().unwrap().to_string();
        std::fs::remove_file(&lost).unwrap();

        // No repair: the next backup sees the loss, says so, and stores
        // the data again.
        let out = env.run(&["backup", s(&src), "--json"]);
        assert_eq!(out.status.code(), Some(0), "{lose}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&lost_id[..8]),
            "{lose}: {}",
            stderr(&out)
        );
        let second: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(second["lost_packs"][0], lost_id.as_str(), "{lose}");
        let id = second["id"].as_str().unwrap();
        restore_same(&env, id, &src, &src, &format!("r-{lose}-second"));
        // The old snapshot is whole again, and check says what happened.
        restore_same(&env, &first, &src, &src, &format!("r-{lose}-first"));
        let report = check_clean(&env, lose);
        let warnings = report["warnings"].to_string();
        assert!(
            warnings.contains(&lost_id[..8]) && warnings.contains("healed"),
            "{lose}: {report}"
        );
    }

    // Content that changed before the next backup stays lost, and check
    // says which snapshot and files it costs.
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(52));
    let first = env.json(&["backup", s(&src)])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (lost, _) = packs(&env)
        .into_iter()
        .find(|(p, _)| pack_kind(&env, p) == "data")
        .unwrap();
    std::fs::remove_file(&lost).unwrap();
    let damaged = {
        let out = env.run(&["check", "--json"]);
        assert_eq!(out.status.code(), Some(1));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        report["damaged"].as_array().unwrap().clone()
    };
    assert!(!damaged.is_empty());
    for d in &damaged {
        let Some(path) = d["path"].as_str() else {
            continue;
        };
        let _ = std::fs::remove_file(Path::new("/").join(path));
    }
    let second = env.json(&["backup", s(&src)]);
    let id = second["id"].as_str().unwrap();
    restore_same(&env, id, &src, &src, "r-changed");
    let out = env.run(&["check", "--read-data", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["damaged"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["snapshot"] == first.as_str()),
        "only the old snapshot is damaged: {report}"
    );
    assert!(report["errors"].to_string().contains("lost"), "{report}");
}

#[test]
fn a_forged_index_entry_does_not_get_the_real_copy_pruned() {
    use cairn_repository::index::{IndexFile, IndexedPack};
    use cairn_repository::inventory::Inventory;
    use cairn_repository::{CacheLocation, Repository, Store};

    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 60,
            large_files: 2,
            large_size: 1 << 20,
            seed: 61,
        },
    );
    let id = env.json(&["backup", s(&src)])["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The test holds the key: it writes an index object that places a used
    // blob of a later pack (by id) in an earlier one, where prune would
    // take it for the copy to keep and let the real one go.
    let store = Store::local(&env.repo(), false).unwrap();
    let repo = Repository::open(
        store,
        b"correct horse battery staple",
        CacheLocation::InMemory,
    )
    .unwrap();
    let inv = Inventory::load(&repo).unwrap();
    let mut data_packs: Vec<_> = inv
        .packs
        .iter()
        .filter(|(_, p)| {
            p.blobs
                .iter()
                .all(|b| b.kind == cairn_repository::BlobKind::Data)
        })
        .map(|(id, p)| (*id, p.clone()))
        .collect();
    data_packs.sort_by_key(|(id, _)| *id);
    assert!(data_packs.len() >= 2, "the tree fills several data packs");
    let (wrong, wrong_info) = &data_packs[0];
    let (_, victim_info) = data_packs.last().unwrap();
    let forged = IndexFile {
        packs: vec![IndexedPack {
            id: *wrong,
            size: wrong_info.size,
            sealing: None,
            blobs: victim_info
                .blobs
                .iter()
                .map(|b| cairn_repository::pack::PackEntry {
                    id: b.id,
                    ..wrong_info.blobs[0]
                })
                .collect(),
        }],
    };
    {
        let _lock = repo.lock(false, "test: forge").unwrap();
        repo.save_index(forged).unwrap();
    }
    drop(repo);

    let pruned = env.json(&["prune", "--delete-after", "0", "--max-unused", "0%"]);
    let contradictions = pruned["contradictions"].as_array().unwrap();
    assert!(!contradictions.is_empty(), "{pruned}");
    assert!(
        contradictions[0]
            .as_str()
            .unwrap()
            .contains(&wrong.to_hex()[..8]),
        "{pruned}"
    );
    check_clean(&env, "after a prune past a forged index entry");
    restore_same(&env, &id, &src, &src, "r-forged");
}

// ------------------------------------------------------------- S3 faults

mod on_s3 {
    use super::*;
    use cairn_e2e::proxy::{FaultPlan, FaultProxy};
    use cairn_e2e::s3;
    use std::sync::atomic::Ordering;

    fn repo_on_s3(prefix: &str) -> (Env, String, String) {
        let bucket = s3::bucket();
        let url = format!("s3://{bucket}/{prefix}");
        let env = Env::new()
            .with_vars(s3::cairn_env(s3::endpoint()))
            .with_repo_url(url)
            .init();
        (env, bucket, prefix.to_string())
    }

    /// Run `cairn` through a proxy with this plan; returns the output and
    /// how many faults the proxy injected.
    fn through(env: &Env, plan: FaultPlan, args: &[&str]) -> (std::process::Output, u32) {
        let proxy = FaultProxy::start(s3::endpoint(), plan);
        let out = env
            .cairn()
            .env("CAIRN_S3_ENDPOINT", &proxy.endpoint)
            .args(args)
            .output()
            .unwrap();
        (out, proxy.faults.load(Ordering::SeqCst))
    }

    #[test]
    fn truncated_uploads_are_sent_again_and_bad_reads_read_again() {
        let (env, _, _) = repo_on_s3("faulty");
        let src = env.path("src");
        generate_tree(
            &src,
            TreeSpec {
                small_files: 80,
                large_files: 3,
                large_size: 1 << 20,
                seed: 71,
            },
        );
        // A pack stored truncated behind a "200 OK".
        let (out, faults) = through(
            &env,
            FaultPlan {
                truncate_put: Some(3),
                ..FaultPlan::default()
            },
            &["backup", s(&src)],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(faults, 1);
        check_clean(&env, "after a truncated upload");

        // One bad read of an index object (no local cache) and one of a
        // pack, during restores.
        for (part, args) in [
            // The only index object, then the second pack read.
            ("/index/", vec!["--no-cache"]),
            ("/data/", vec![]),
        ] {
            let target = env.path(&format!("r{}", part.replace('/', "")));
            let mut a = args.clone();
            a.extend(["restore", "latest", "--target", s(&target)]);
            let (out, faults) = through(
                &env,
                FaultPlan {
                    corrupt_get: Some((part.to_string(), if part == "/index/" { 1 } else { 2 })),
                    ..FaultPlan::default()
                },
                &a,
            );
            assert!(out.status.success(), "{part}: {}", stderr(&out));
            assert_eq!(faults, 1, "{part}");
            let root = target.join(src.strip_prefix("/").unwrap());
            assert_same_tree(&src, &root);
        }

        // One bad read of a pack while prune repacks.
        cairn_e2e::mutate_tree(&src, 7);
        env.ok(&["backup", s(&src)]);
        let policy = env.path("p.toml");
        std::fs::write(&policy, "[default]\nkeep-last = 1\n").unwrap();
        env.ok(&["forget", "--policy", s(&policy)]);
        let dry = env.json(&["prune", "--dry-run", "--max-unused", "0%"]);
        assert!(dry["packs_repacked"].as_u64().unwrap() > 0, "{dry}");
        let (out, faults) = through(
            &env,
            FaultPlan {
                corrupt_get: Some(("/data/".into(), 2)),
                ..FaultPlan::default()
            },
            &[
                "prune",
                "--max-unused",
                "0%",
                "--delete-after",
                "0",
                "--json",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(faults, 1);
        check_clean(&env, "after a prune with a bad read");
        let target = env.path("after-prune");
        env.ok(&["restore", "latest", "--target", s(&target)]);
        assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    }

    #[test]
    fn a_listing_that_hides_index_objects_deletes_nothing() {
        let (env, bucket, prefix) = repo_on_s3("hiding");
        // A backup to forget, whose index objects the listings will hide.
        let gone = env.path("gone");
        generate_tree(
            &gone,
            TreeSpec {
                small_files: 40,
                large_files: 2,
                large_size: 600_000,
                seed: 82,
            },
        );
        env.ok(&["backup", s(&gone)]);
        let hidden = s3::list_keys(s3::endpoint(), &bucket, &format!("{prefix}/index/"));
        assert!(!hidden.is_empty());
        let kept = env.path("kept");
        generate_tree(&kept, TreeSpec::tiny(81));
        env.ok(&["backup", s(&kept), "--tag", "keep"]);
        let policy = env.path("p.toml");
        std::fs::write(&policy, "[default]\nkeep-tag = [\"keep\"]\n").unwrap();
        env.ok(&["forget", "--policy", s(&policy)]);

        // The server's listings leave out the second backup's index
        // objects for the whole prune.
        let (out, faults) = through(
            &env,
            FaultPlan {
                hide_in_list: hidden.clone(),
                ..FaultPlan::default()
            },
            &["prune", "--delete-after", "0", "--json"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(faults > 0);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["packs_deleted"], 0, "{report}");
        // With the whole listing: every index object names packs that are
        // there, and what is kept restores.
        check_clean(&env, "after a prune whose listings hid index objects");
        let target = env.path("r");
        env.ok(&["restore", "latest", "--target", s(&target)]);
        assert_same_tree(&kept, &target.join(kept.strip_prefix("/").unwrap()));
    }
}
