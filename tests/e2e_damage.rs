//! End-to-end: bad input gets a clear error and loses nothing. Wrong
//! passwords, broken config and key files, lost, truncated and corrupted
//! packs, unreadable and changing source files, missing paths.

// Tests report failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::{Env, TreeSpec, assert_same_tree, describe, generate_tree};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn packs(env: &Env) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for fan in std::fs::read_dir(env.repo().join("data")).unwrap() {
        for p in std::fs::read_dir(fan.unwrap().path()).unwrap() {
            let p = p.unwrap().path();
            let len = std::fs::metadata(&p).unwrap().len();
            out.push((p, len));
        }
    }
    out.sort_by_key(|(_, len)| std::cmp::Reverse(*len));
    out
}

fn is_root() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions.
    unsafe {
        libc::geteuid() == 0
    }
}

#[test]
fn wrong_password_missing_repository_and_broken_config() {
    let env = Env::with_repo();
    std::fs::write(env.path("wrong"), "not the password\n").unwrap();
    let out = env
        .cairn()
        .env("CAIRN_PASSWORD_FILE", env.path("wrong"))
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    assert!(stderr(&out).contains("password does not open"));
    assert!(!stderr(&out).contains("not the password"));

    let out = env
        .cairn()
        .env("CAIRN_REPOSITORY", env.path("elsewhere"))
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10));
    assert!(stderr(&out).contains("no cairn repository"));

    let empty = env.path("empty-pw");
    std::fs::write(&empty, "").unwrap();
    let out = env
        .cairn()
        .env("CAIRN_PASSWORD_FILE", &empty)
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("empty"));

    // Truncated, then zero-length config.
    let config = env.repo().join("config");
    let bytes = std::fs::read(&config).unwrap();
    std::fs::write(&config, &bytes[..bytes.len() / 2]).unwrap();
    let out = env.run(&["snapshots"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("repository config is corrupt"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&config, b"").unwrap();
    let out = env.run(&["snapshots"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("config is corrupt"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&config, &bytes).unwrap();
    env.ok(&["snapshots"]);

    // Zero-length and garbage key files.
    let keys: Vec<PathBuf> = std::fs::read_dir(env.repo().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 1);
    let key = std::fs::read(&keys[0]).unwrap();
    std::fs::write(&keys[0], b"").unwrap();
    let out = env.run(&["snapshots"]);
    // No usable key file: the status the README gives it.
    assert_eq!(out.status.code(), Some(12));
    assert!(stderr(&out).contains("empty key file"), "{}", stderr(&out));
    std::fs::write(&keys[0], b"{\"version\": 1, \"garbage\": true}").unwrap();
    let out = env.run(&["snapshots"]);
    assert_eq!(out.status.code(), Some(12));
    assert!(stderr(&out).contains("not a key file"), "{}", stderr(&out));
    std::fs::write(&keys[0], &key).unwrap();
    env.ok(&["snapshots"]);

    // init on an existing repository.
    let out = env.run(&["init", "--kdf-memory-kib", "256"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"));
}

/// A path from `--json` output: a string, or `{"hex": ...}` when it is not
/// UTF-8 (the generated trees have such names). Lossy, as `Path::display`.
fn json_path(v: &Value) -> String {
    if let Some(text) = v.as_str() {
        return text.to_string();
    }
    let hex = v["hex"].as_str().unwrap();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn a_lost_pack_is_reported_and_repaired() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 100,
            large_files: 3,
            large_size: 2 << 20,
            seed: 11,
        },
    );
    let first = env.json(&["backup", s(&src)]);
    let id1 = first["id"].as_str().unwrap().to_string();

    // The largest pack holds file content.
    let (lost, _) = packs(&env).remove(0);
    std::fs::remove_file(&lost).unwrap();

    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stdout(&out);
    assert!(err.contains("is missing"), "{err}");
    assert!(
        err.contains(&format!("damaged: snapshot {}", &id1[..8])),
        "{err}"
    );
    let report = {
        let out = env.run(&["check", "--json"]);
        assert_eq!(out.status.code(), Some(1));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let damaged: Vec<String> = report["damaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| json_path(&d["path"]))
        .collect();
    assert!(!damaged.is_empty());

    // Everything else restores.
    let r = env.path("r");
    let out = env.run(&["restore", &format!("latest:{}", s(&src)), "--target", s(&r)]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "damaged files make restore fail"
    );
    let restored = describe(&r);
    let source = describe(&src);
    let mut intact = 0;
    for (path, entry) in &source {
        let snap_path = format!("{}/{}", s(&src).trim_start_matches('/'), path.display());
        if damaged.contains(&snap_path) {
            assert!(
                !restored.contains_key(path) || entry.kind != "file",
                "{} should be missing",
                path.display()
            );
        } else if entry.kind == "file" {
            assert_eq!(
                restored.get(path).map(|e| &e.content),
                Some(&entry.content),
                "{}",
                path.display()
            );
            intact += 1;
        }
    }
    assert!(intact > 50);

    // repair index forgets the lost blobs; the next backup stores them again.
    let repaired = env.json(&["repair", "index"]);
    assert!(
        repaired["blobs_forgotten"].as_u64().unwrap() > 0,
        "{repaired}"
    );
    let second = env.json(&["backup", s(&src)]);
    assert!(
        second["summary"]["bytes_added"].as_u64().unwrap() > 0,
        "{second}"
    );
    assert!(
        second["summary"]["files_changed"].as_u64().unwrap() > 0,
        "re-read files whose chunks were lost: {second}"
    );
    let r2 = env.path("r2");
    env.ok(&[
        "restore",
        &format!("latest:{}", s(&src)),
        "--target",
        s(&r2),
    ]);
    assert_same_tree(&src, &r2);
    // The old snapshot stays damaged, the new one is whole.
    let out = env.run(&["check", "--read-data", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["damaged"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["snapshot"] == id1.as_str()),
        "{report}"
    );
}

#[test]
fn corrupted_and_truncated_packs_are_caught() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 40,
            large_files: 3,
            large_size: 1 << 20,
            seed: 12,
        },
    );
    env.ok(&["backup", s(&src)]);
    let all = packs(&env);

    // One flipped byte in the middle of a data pack: only reading the data finds it.
    let (victim, len) = &all[0];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[(*len / 3) as usize] ^= 0x40;
    std::fs::write(victim, &bytes).unwrap();
    env.ok(&["check"]);
    let out = env.run(&["check", "--read-data"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stdout(&out);
    assert!(err.contains("do not hash to the pack's name"), "{err}");
    assert!(err.contains("damaged: snapshot"), "{err}");
    let out = env.run(&["check", "--read-data-subset", "100%"]);
    assert_eq!(out.status.code(), Some(1));

    // Truncation is caught without reading data.
    let (victim2, len2) = &all[1];
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(victim2)
        .unwrap();
    f.set_len(len2 / 2).unwrap();
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("the index says"), "{}", stdout(&out));

    // Garbage that is not even a pack is reported as a stranger, not parsed.
    std::fs::write(env.repo().join("data/00/junk"), b"junk").ok();
}

#[test]
fn unreadable_source_files_give_exit_3_and_a_snapshot() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("ok.txt"), b"fine").unwrap();
    std::fs::write(src.join("secret.txt"), b"hidden").unwrap();
    std::fs::set_permissions(
        src.join("secret.txt"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    std::fs::write(src.join("sub/inside"), b"x").unwrap();
    std::fs::set_permissions(src.join("sub"), std::fs::Permissions::from_mode(0o000)).unwrap();
    // Run cairn as an unprivileged user (root reads everything).
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(env.path("password"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_user = |args: &[&str]| {
        let mut cmd = if is_root() {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
            c.arg(cairn_e2e::cairn_bin());
            c
        } else {
            std::process::Command::new(cairn_e2e::cairn_bin())
        };
        let base = env.cairn();
        for (k, v) in base.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        cmd.args(args).output().unwrap()
    };
    let out = as_user(&["init", "--kdf-memory-kib", "256"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = as_user(&["backup", s(&src), "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["unreadable_count"], 2, "{v}");
    let problems = v["summary"]["unreadable"].to_string();
    assert!(
        problems.contains("secret.txt") && problems.contains("Permission denied"),
        "{problems}"
    );
    assert!(stderr(&out).contains("could not be read"));
    let out = as_user(&["ls", "latest", s(&src)]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("ok.txt") && !listing.contains("secret.txt"),
        "{listing}"
    );
}

#[test]
fn a_file_changing_while_read_is_reported() {
    let env = Env::with_repo();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let growing = src.join("growing.log");
    std::fs::write(&growing, vec![b'x'; 64 << 20]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, growing) = (stop.clone(), growing.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&growing)
                .unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(b"more log\n").unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let out = env.run(&["backup", s(&src), "--json"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["changed_during_read_count"], 1, "{v}");
    assert!(stderr(&out).contains("changed while it was being read"));
    // The next backup reads it again instead of trusting the changed metadata.
    let again = env.json(&["backup", s(&src)]);
    assert_eq!(again["summary"]["files_unmodified"], 0, "{again}");
}

#[test]
fn a_missing_path_is_a_clear_error() {
    let env = Env::with_repo();
    let out = env.run(&["backup", s(&env.path("no/such/dir"))]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no/such/dir") && err.contains("No such file"),
        "{err}"
    );
    assert!(env.json(&["snapshots"]).as_array().unwrap().is_empty());
}
