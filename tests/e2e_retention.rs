//! End-to-end: policy files, forget, account lifecycle and prune through the
//! binary. Two years of backdated snapshots, a disabled account purged
//! without touching what it shares, bad policy files that delete nothing,
//! prune racing a backup, and prune killed at every step.

// Tests report failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::{Env, TreeSpec, assert_same_tree, copy_tree, generate_tree};
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn snapshot_ids(env: &Env) -> Vec<String> {
    env.json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn check_clean(env: &Env) {
    let out = env.run(&["check", "--read-data"]);
    assert!(out.status.success(), "check: {}", stderr(&out));
}

const POLICY: &str = r#"
# Two years of monthly full backups, dailies at the end.
timezone = "Europe/Berlin"

[default]
keep-daily = 5
keep-monthly = 3
keep-quarterly = 4
keep-yearly = 2
keep-tag = ["legal-hold"]
purge-after = "99d"
"#;

#[test]
fn two_years_of_snapshots_forget_prune_and_restore_what_is_kept() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(5));
    let versions = env.path("versions");
    std::fs::create_dir_all(&versions).unwrap();
    // Monthly on the 28th for two years, then daily for the last week.
    let mut times: Vec<String> = Vec::new();
    for year in [2024, 2025] {
        for month in 1..=12 {
            times.push(format!("{year}-{month:02}-28T02:00:00Z"));
        }
    }
    for day in 1..=7 {
        times.push(format!("2026-01-0{day}T02:00:00Z"));
    }
    let mut by_id = Vec::new();
    for (i, t) in times.iter().enumerate() {
        std::fs::write(src.join("version.txt"), format!("generation {i} at {t}\n")).unwrap();
        std::fs::write(
            src.join(format!("added-{i}.txt")),
            vec![b'a' + (i % 26) as u8; 3000 + i],
        )
        .unwrap();
        let mut args = vec!["backup", s(&src), "--time", t.as_str()];
        if i == 3 {
            args.extend(["--tag", "legal-hold"]);
        }
        let v = env.json(&args);
        let copy = versions.join(i.to_string());
        copy_tree(&src, &copy);
        by_id.push((v["id"].as_str().unwrap().to_string(), copy, t.clone()));
    }
    std::fs::write(env.path("policy.toml"), POLICY).unwrap();

    // Dry run: every snapshot listed with a decision; nothing removed.
    let plan = env.json(&[
        "forget",
        "--policy",
        s(&env.path("policy.toml")),
        "--dry-run",
    ]);
    let decisions = plan["accounts"][0]["snapshots"].as_array().unwrap();
    assert_eq!(decisions.len(), times.len());
    assert_eq!(snapshot_ids(&env).len(), times.len());
    let keep: Vec<&str> = decisions
        .iter()
        .filter(|d| d["keep"] == true)
        .map(|d| d["time"].as_str().unwrap())
        .collect();
    let reasons = |time: &str| -> Vec<String> {
        decisions
            .iter()
            .find(|d| d["time"].as_str().unwrap().starts_with(time))
            .unwrap()["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    };
    // The newest, five dailies, the last of the 3 newest months (Jan 2026,
    // Dec, Nov 2025), the last of the 4 newest quarters (2026-Q1, 2025-Q4,
    // Q3, Q2), the last of each year, and the tagged one.
    assert_eq!(
        reasons("2026-01-07"),
        vec![
            "newest",
            "daily 2026-01-07",
            "monthly 2026-01",
            "quarterly 2026-Q1",
            "yearly 2026"
        ]
    );
    assert_eq!(reasons("2026-01-03"), vec!["daily 2026-01-03"]);
    assert_eq!(
        reasons("2025-12-28"),
        vec!["monthly 2025-12", "quarterly 2025-Q4", "yearly 2025"]
    );
    assert_eq!(reasons("2025-09-28"), vec!["quarterly 2025-Q3"]);
    assert_eq!(reasons("2025-06-28"), vec!["quarterly 2025-Q2"]);
    assert_eq!(reasons("2024-04-28"), vec!["tag legal-hold"]);
    assert!(
        reasons("2025-03-28").is_empty(),
        "2025-Q1 is the 5th quarter back"
    );
    assert!(reasons("2025-07-28").is_empty(), "not the last of Q3");
    // 5 dailies (the newest among them), 2 more months, 2 more quarters,
    // the years coincide with those, and the tagged one.
    assert_eq!(keep.len(), 10, "{keep:?}");
    let text = env.ok(&[
        "forget",
        "--policy",
        s(&env.path("policy.toml")),
        "--dry-run",
    ]);
    assert!(
        text.contains("quarterly 2025-Q3") && text.contains("times in Europe/Berlin"),
        "{text}"
    );

    // Forget and prune for real. The packs that leave the index wait a
    // day by default (readers running now finish first); a prune told not
    // to wait deletes them.
    let done = env.json(&[
        "forget",
        "--policy",
        s(&env.path("policy.toml")),
        "--prune",
        "--max-unused",
        "0%",
    ]);
    assert_eq!(done["removed"], times.len() - 10);
    assert!(
        done["prune"]["packs_retired"].as_u64().unwrap() > 0
            && done["prune"]["bytes_pending"].as_u64().unwrap() > 0
            && done["prune"]["bytes_reclaimed"] == 0,
        "{done}"
    );
    check_clean(&env);
    let now = env.json(&["prune", "--delete-after", "0"]);
    assert_eq!(
        now["packs_deleted"], done["prune"]["packs_pending"],
        "{now}"
    );
    assert_eq!(now["packs_pending"], 0, "{now}");
    assert!(now["bytes_reclaimed"].as_u64().unwrap() > 0, "{now}");
    let left = snapshot_ids(&env);
    assert_eq!(left.len(), 10);
    check_clean(&env);
    for (id, copy, t) in &by_id {
        if left.contains(id) {
            let r = env.path(&format!("r-{}", &id[..8]));
            env.ok(&["restore", &format!("{id}:{}", s(&src)), "--target", s(&r)]);
            assert_same_tree(copy, &r);
        } else {
            assert!(!keep.iter().any(|k| k == t));
        }
    }
    // Applying the policy again removes nothing.
    let again = env.json(&["forget", "--policy", s(&env.path("policy.toml"))]);
    assert_eq!(again["removed"], 0);
}

#[test]
fn a_disabled_account_is_purged_after_purge_after_without_touching_shared_data() {
    let env = Env::with_repo();
    let shared = env.path("shared");
    generate_tree(
        &shared,
        TreeSpec {
            small_files: 20,
            large_files: 2,
            large_size: 1 << 20,
            seed: 8,
        },
    );
    let own = env.path("own");
    generate_tree(
        &own,
        TreeSpec {
            small_files: 20,
            large_files: 2,
            large_size: 1 << 20,
            seed: 9,
        },
    );
    env.ok(&[
        "backup",
        s(&shared),
        "--account",
        "alice",
        "--time",
        "2026-01-10T00:00:00Z",
    ]);
    env.ok(&[
        "backup",
        s(&shared),
        s(&own),
        "--account",
        "bob",
        "--time",
        "2026-01-10T00:00:00Z",
    ]);
    env.ok(&[
        "account",
        "disable",
        "bob",
        "--time",
        "2026-02-01T00:00:00Z",
    ]);
    let policy = env.path("policy.toml");
    std::fs::write(&policy, "[default]\nkeep-last = 3\npurge-after = \"99d\"\n").unwrap();

    // Disabled accounts take no new backups.
    let out = env.run(&["backup", s(&own), "--account", "bob"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("\"bob\" is disabled"),
        "{}",
        stderr(&out)
    );

    // Before the purge date: kept, and the date is shown.
    let before = env.json(&[
        "forget",
        "--policy",
        s(&policy),
        "--now",
        "2026-05-10T23:00:00Z",
    ]);
    let bob = before["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == "bob")
        .unwrap()
        .clone();
    assert_eq!(bob["purge_date"], "2026-05-11T00:00:00Z");
    assert_eq!(bob["purge_due"], false);
    assert_eq!(before["removed"], 0);
    let listed = env.json(&["account", "list", "--policy", s(&policy)]);
    assert!(
        listed.to_string().contains("2026-05-11T00:00:00Z"),
        "{listed}"
    );

    // After it: bob's snapshots go, the account is marked purged, prune
    // reclaims bob's own data and keeps what alice shares.
    let stats_before = env.json(&["stats"]);
    let after = env.json(&[
        "forget",
        "--policy",
        s(&policy),
        "--now",
        "2026-05-12T00:00:00Z",
        "--prune",
        "--max-unused",
        "0%",
        "--delete-after",
        "0",
    ]);
    assert_eq!(after["removed"], 1);
    assert_eq!(after["purged_accounts"][0], "bob");
    let reclaimed = after["prune"]["bytes_reclaimed"].as_u64().unwrap();
    let own_size = stats_before["stored_bytes"].as_u64().unwrap() / 2;
    assert!(
        reclaimed > own_size / 2,
        "bob's own data is reclaimed: {after}"
    );
    assert_eq!(env.json(&["account", "show", "bob"])["state"], "purged");
    check_clean(&env);
    let r = env.path("r-alice");
    env.ok(&[
        "restore",
        &format!("latest:{}", s(&shared)),
        "--target",
        s(&r),
        "--account",
        "alice",
    ]);
    assert_same_tree(&shared, &r);

    // Re-enabling restores normal behaviour.
    env.ok(&["account", "enable", "bob"]);
    env.ok(&["backup", s(&own), "--account", "bob"]);
    let later = env.json(&["forget", "--policy", s(&policy), "--dry-run"]);
    let bob = later["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == "bob")
        .unwrap()
        .clone();
    assert_eq!(bob["state"], "active");
    assert_eq!(bob["snapshots"][0]["keep"], true);
}

#[test]
fn bad_policy_files_are_clear_errors_and_delete_nothing() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(4));
    for t in [
        "2026-01-01T00:00:00Z",
        "2026-02-01T00:00:00Z",
        "2026-03-01T00:00:00Z",
    ] {
        env.ok(&["backup", s(&src), "--time", t]);
    }
    let cases = [
        (
            "unknown.toml",
            "[default]\nkeep-last = 1\nkeep-dayly = 3\n",
            "line 3",
        ),
        (
            "negative.toml",
            "[default]\nkeep-last = -1\n",
            "is not a count",
        ),
        (
            "duration.toml",
            "[default]\nkeep-within = \"a while\"\n",
            "not a duration",
        ),
        (
            "timezone.toml",
            "timezone = \"Nowhere/Special\"\n[default]\nkeep-last = 1\n",
            "IANA",
        ),
        ("empty.toml", "", "empty"),
        (
            "norule.toml",
            "[default]\npurge-after = \"10d\"\n",
            "no keep rule",
        ),
    ];
    for (name, text, expected) in cases {
        let path = env.path(name);
        std::fs::write(&path, text).unwrap();
        let out = env.run(&["forget", "--policy", s(&path), "--prune"]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(stderr(&out).contains(expected), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(name),
            "the error names the file: {}",
            stderr(&out)
        );
        assert_eq!(snapshot_ids(&env).len(), 3, "{name} deleted something");
    }
    let out = env.run(&["forget", "--policy", s(&env.path("missing.toml"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.toml"));
}

#[test]
fn prune_waits_for_a_running_backup_and_loses_nothing() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 40,
            large_files: 2,
            large_size: 500_000,
            seed: 12,
        },
    );
    env.ok(&["backup", s(&src), "--time", "2026-01-01T00:00:00Z"]);
    env.ok(&[
        "backup",
        s(&src),
        "--force",
        "--time",
        "2026-01-02T00:00:00Z",
    ]);
    let first = snapshot_ids(&env).remove(0);
    // A backup that pauses before writing its snapshot, holding its lock.
    std::fs::write(src.join("late.txt"), b"written by the concurrent backup").unwrap();
    let child = env
        .cairn()
        .env("CAIRN_FAILPOINT", "backup-before-snapshot")
        .env("CAIRN_FAILPOINT_PAUSE_MS", "2500")
        .args(["backup", s(&src), "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    env.wait_for_lock();
    // Without waiting, prune refuses.
    let out = env.run(&["prune"]);
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
    // Forget a snapshot whose data the running backup also uses, then prune,
    // waiting for the lock.
    let policy = env.path("p.toml");
    std::fs::write(&policy, "[default]\nkeep-last = 1\n").unwrap();
    let pruned = env.json(&[
        "forget",
        "--policy",
        s(&policy),
        "--prune",
        "--max-unused",
        "0%",
        "--retry-lock",
        "30s",
    ]);
    let backup = child.wait_with_output().unwrap();
    assert!(backup.status.success());
    let v: Value = serde_json::from_slice(&backup.stdout).unwrap();
    let id = v["id"].as_str().unwrap();
    assert!(pruned["removed"].as_u64().unwrap() >= 1);
    assert!(!snapshot_ids(&env).contains(&first));
    check_clean(&env);
    let r = env.path("r");
    env.ok(&["restore", &format!("{id}:{}", s(&src)), "--target", s(&r)]);
    assert_same_tree(&src, &r);
}

#[test]
fn prune_killed_at_every_step_leaves_a_whole_repository() {
    let src_env = Env::new();
    let gens: Vec<_> = (0..3)
        .map(|g| {
            let dir = src_env.path(&format!("gen{g}"));
            generate_tree(
                &dir,
                TreeSpec {
                    small_files: 60,
                    large_files: 2,
                    large_size: 600_000,
                    seed: 40 + g,
                },
            );
            dir
        })
        .collect();
    for point in [
        "prune-after-repack",
        "prune-after-index-write",
        "prune-after-index-delete",
        "prune-mid-pack-delete",
    ] {
        let env = Env::with_repo();
        let src = env.path("src");
        let mut ids = Vec::new();
        for g in &gens {
            let _ = std::fs::remove_dir_all(&src);
            copy_tree(g, &src);
            ids.push(
                env.json(&["backup", s(&src)])["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        let policy = env.path("p.toml");
        std::fs::write(&policy, "[default]\nkeep-last = 2\n").unwrap();
        env.ok(&["forget", "--policy", s(&policy)]);
        let out = env
            .cairn()
            .env("CAIRN_FAILPOINT", point)
            .args(["prune", "--max-unused", "0%", "--delete-after", "0"])
            .output()
            .unwrap();
        assert_eq!(out.status.signal(), Some(9), "{point}: {}", stderr(&out));
        check_clean(&env);
        for (id, g) in ids.iter().zip(&gens).skip(1) {
            let r = env.path(&format!("r-{point}-{}", &id[..8]));
            env.ok(&["restore", &format!("{id}:{}", s(&src)), "--target", s(&r)]);
            assert_same_tree(g, &r);
        }
        // The next prune finishes the job; the one after has nothing to do.
        env.ok(&["prune", "--max-unused", "0%", "--delete-after", "0"]);
        check_clean(&env);
        let idle = env.json(&[
            "prune",
            "--dry-run",
            "--max-unused",
            "0%",
            "--delete-after",
            "0",
        ]);
        assert_eq!(idle["packs_deleted"], 0, "{point}: {idle}");
        assert_eq!(idle["packs_repacked"], 0, "{point}: {idle}");
    }
}
