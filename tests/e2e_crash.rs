//! End-to-end: a backup killed with SIGKILL at any point leaves a
//! repository that `check --read-data` passes, shows no snapshot from the
//! killed run, and the next backup succeeds reusing what was written. Two
//! backups at once both succeed. Locks: stale ones are detected and removed,
//! live ones exclude deleting operations.

// Tests report failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::{Env, TreeSpec, assert_same_tree, generate_tree};
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn check_clean(env: &Env) {
    let out = env.run(&["check", "--read-data", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        out.status.success(),
        "check failed: {report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spec() -> TreeSpec {
    TreeSpec {
        small_files: 150,
        large_files: 3,
        large_size: 2 << 20,
        seed: 21,
    }
}

#[test]
fn sigkill_at_each_point_of_the_write_protocol() {
    let src_env = Env::new();
    let src = src_env.path("src");
    generate_tree(&src, spec());
    for (point, packs_written) in [
        ("backup-before-pack-upload", false),
        ("backup-after-second-pack", true),
        ("backup-after-packs", true),
        ("backup-before-snapshot", true),
    ] {
        let env = Env::with_repo();
        let out = env
            .cairn()
            .env("CAIRN_FAILPOINT", point)
            .args(["backup", s(&src)])
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{point}: {:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        check_clean(&env);
        assert!(
            env.json(&["snapshots"]).as_array().unwrap().is_empty(),
            "{point}: no snapshot from the killed run"
        );

        let next = env.json(&["backup", s(&src)]);
        let summary = &next["summary"];
        if packs_written {
            // What the killed run uploaded is reused, not stored again.
            assert!(
                summary["bytes_added"].as_u64().unwrap()
                    < summary["bytes_total"].as_u64().unwrap() / 2,
                "{point}: {next}"
            );
        }
        let r = env.path("restored");
        env.ok(&["restore", &format!("latest:{}", s(&src)), "--target", s(&r)]);
        assert_same_tree(&src, &r);
        check_clean(&env);
        // The killed run's lock belonged to a dead process: it is stale.
        let removed = env.json(&["unlock"]);
        assert!(removed.as_array().unwrap().len() <= 1, "{point}: {removed}");
    }
}

#[test]
fn sigkill_at_random_moments() {
    let src_env = Env::new();
    let src = src_env.path("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 400,
            large_files: 6,
            large_size: 6 << 20,
            seed: 22,
        },
    );
    let env = Env::with_repo();
    for delay_ms in [20u64, 60, 120, 250, 400, 700] {
        let mut child = env
            .cairn()
            .args(["backup", "--force", s(&src)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().unwrap();
        check_clean(&env);
        // Whatever is listed restores completely.
        for snap in env.json(&["snapshots"]).as_array().unwrap() {
            let id = snap["id"].as_str().unwrap();
            let r = env.path(&format!("r-{delay_ms}-{}", &id[..8]));
            env.ok(&["restore", &format!("{id}:{}", s(&src)), "--target", s(&r)]);
            assert_same_tree(&src, &r);
        }
        let _ = status;
    }
    let last = env.json(&["backup", s(&src)]);
    assert!(last["id"].is_string());
    check_clean(&env);
}

#[test]
fn two_backups_at_the_same_time_both_succeed() {
    let env = Env::with_repo();
    let a = env.path("a");
    let b = env.path("b");
    generate_tree(&a, TreeSpec { seed: 31, ..spec() });
    generate_tree(&b, TreeSpec { seed: 32, ..spec() });
    let spawn = |src: &Path| {
        env.cairn()
            .args(["backup", s(src), "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(&a), spawn(&b));
    let (x, y) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    assert!(
        x.status.success(),
        "{:?} {}",
        x.status,
        String::from_utf8_lossy(&x.stderr)
    );
    assert!(
        y.status.success(),
        "{:?} {}",
        y.status,
        String::from_utf8_lossy(&y.stderr)
    );
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 2);
    for (src, out) in [(&a, &x), (&b, &y)] {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let r = env.path(&format!("r-{}", &v["id"].as_str().unwrap()[..8]));
        env.ok(&[
            "restore",
            &format!("{}:{}", v["id"].as_str().unwrap(), s(src)),
            "--target",
            s(&r),
        ]);
        assert_same_tree(src, &r);
    }
    check_clean(&env);
}

#[test]
fn a_running_backup_holds_a_lock_that_excludes_repair() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 20,
            large_files: 0,
            large_size: 0,
            seed: 41,
        },
    );
    let child = env
        .cairn()
        .env("CAIRN_FAILPOINT", "backup-before-snapshot")
        .env("CAIRN_FAILPOINT_PAUSE_MS", "3000")
        .args(["-q", "backup", s(&src)])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    env.wait_for_lock();
    let out = env.run(&["repair", "index"]);
    assert_eq!(
        out.status.code(),
        Some(11),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("shared lock"));
    // A live lock is not stale: unlock leaves it.
    assert!(env.json(&["unlock"]).as_array().unwrap().is_empty());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let held = std::fs::read_dir(env.repo().join("locks"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(held, 0, "the lock is released");
    env.ok(&["repair", "index"]);
}
