//! End-to-end: back up a generated tree, change it, back it up again, and
//! restore every snapshot, a folder, a single file and a filtered subset,
//! comparing bytes and metadata with the source as it was.

// Tests report failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::{Env, TreeSpec, assert_same_tree, copy_tree, describe, generate_tree, mutate_tree};
use serde_json::Value;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn summary(v: &Value) -> &Value {
    &v["summary"]
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn backup_change_backup_and_restore_every_snapshot() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::default());
    let before = env.path("before");
    copy_tree(&src, &before);

    let first = env.json(&["backup", s(&src), "--tag", "first"]);
    let s1 = summary(&first);
    assert!(num(s1, "files_new") > 300, "{s1}");
    assert_eq!(num(s1, "unreadable_count"), 0);
    assert!(
        num(s1, "bytes_added") < num(s1, "bytes_total"),
        "compression: {s1}"
    );

    mutate_tree(&src, 1);
    let second = env.json(&["backup", s(&src)]);
    let s2 = summary(&second);
    assert_eq!(second["parent"], first["id"]);
    assert!(num(s2, "files_changed") >= 2, "{s2}");
    assert!(num(s2, "files_unmodified") > 250, "{s2}");

    // Each snapshot restores to the tree as it was when it was taken.
    let id1 = first["id"].as_str().unwrap();
    let id2 = second["id"].as_str().unwrap();
    let r1 = env.path("r1");
    env.ok(&["restore", &format!("{id1}:{}", s(&src)), "--target", s(&r1)]);
    assert_same_tree(&before, &r1);
    let r2 = env.path("r2");
    let restored = env.json(&[
        "restore",
        &format!("{}:{}", &id2[..8], s(&src)),
        "--target",
        s(&r2),
        "--verify",
    ]);
    assert_same_tree(&src, &r2);
    assert_eq!(
        restored["summary"]["verified"],
        restored["summary"]["files"]
    );
    assert_eq!(restored["summary"]["errors"].as_array().unwrap().len(), 0);

    // A whole snapshot restores under its absolute path.
    let r_all = env.path("r-all");
    env.ok(&["restore", "latest", "--target", s(&r_all)]);
    assert_same_tree(&src, &r_all.join(src.strip_prefix("/").unwrap()));

    // Nothing changed: nothing read, nothing added.
    let third = env.json(&["backup", s(&src)]);
    let s3 = summary(&third);
    assert_eq!(num(s3, "bytes_read"), 0, "{s3}");
    assert_eq!(num(s3, "files_new") + num(s3, "files_changed"), 0, "{s3}");

    // The same data under another path adds almost nothing.
    let copy = env.path("copy");
    copy_tree(&src, &copy);
    let fourth = env.json(&["backup", s(&copy)]);
    let s4 = summary(&fourth);
    assert!(
        num(s4, "bytes_added") < num(s4, "bytes_total") / 100,
        "dedup across paths: {s4}"
    );

    let check = env.json(&["check", "--read-data"]);
    assert_eq!(check["errors"].as_array().unwrap().len(), 0, "{check}");
    assert_eq!(check["damaged"].as_array().unwrap().len(), 0, "{check}");
    assert_eq!(check["snapshots"], 4);
}

#[test]
fn restore_a_folder_a_single_file_and_an_include_filter() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 80,
            large_files: 3,
            large_size: 1 << 20,
            seed: 5,
        },
    );
    env.ok(&["backup", s(&src)]);

    let folder = env.path("folder");
    env.ok(&[
        "restore",
        &format!("latest:{}/mail", s(&src)),
        "--target",
        s(&folder),
    ]);
    assert_same_tree(&src.join("mail"), &folder);

    let one = env.path("one");
    env.ok(&[
        "restore",
        &format!("latest:{}/ldap/hardlinked", s(&src)),
        "--target",
        s(&one),
    ]);
    assert_eq!(
        std::fs::read(one.join("hardlinked")).unwrap(),
        std::fs::read(src.join("ldap/hardlinked")).unwrap()
    );
    assert_eq!(std::fs::read_dir(&one).unwrap().count(), 1);

    // The second name of a hard-linked file, restored alone, gets the content.
    let two = env.path("two");
    env.ok(&[
        "restore",
        &format!("latest:{}/mail/hardlink-2", s(&src)),
        "--target",
        s(&two),
    ]);
    assert_eq!(
        std::fs::read(two.join("hardlink-2")).unwrap(),
        b"shared inode content\n"
    );

    let filtered = env.path("filtered");
    env.ok(&[
        "restore",
        &format!("latest:{}", s(&src)),
        "--target",
        s(&filtered),
        "--include",
        "*.bin",
    ]);
    let got: Vec<String> = describe(&filtered)
        .into_iter()
        .filter(|(_, e)| e.kind == "file")
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert_eq!(
        got,
        vec!["db/large-0.bin", "db/large-1.bin", "db/large-2.bin"]
    );

    let missing = env.run(&[
        "restore",
        &format!("latest:{}/nope", s(&src)),
        "--target",
        s(&env.path("x")),
    ]);
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains(&format!("has no {}/nope", s(&src))), "{err}");
    // Nothing was created for a path that is not there.
    assert!(!env.path("x").exists());
    // A path given without its leading directories: the hint names the
    // absolute path that ends the same way.
    let rel = src.file_name().unwrap().to_str().unwrap();
    let out = env.run(&["ls", "latest", rel]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("snapshot paths are absolute: did you mean") && err.contains(s(&src)),
        "{err}"
    );
    let out = env.run(&[
        "restore",
        &format!("latest:{rel}"),
        "--target",
        s(&env.path("y")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(s(&src)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!env.path("y").exists());
}

#[test]
fn listing_commands_and_json() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(
        &src,
        TreeSpec {
            small_files: 30,
            large_files: 3,
            large_size: 300_000,
            seed: 9,
        },
    );
    let first = env.json(&[
        "backup",
        s(&src),
        "--account",
        "mail.example.org",
        "--tag",
        "daily",
    ]);
    mutate_tree(&src, 2);
    let second = env.json(&[
        "backup",
        s(&src),
        "--account",
        "mail.example.org",
        "--time",
        "2030-01-02T03:04:05Z",
        "--allow-future-time",
    ]);

    let snaps = env.json(&["snapshots", "--account", "mail.example.org"]);
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[1]["time"], "2030-01-02T03:04:05Z");
    assert_eq!(snaps[0]["tags"][0], "daily");
    assert_eq!(snaps[0]["paths"][0], s(&src));
    assert!(
        env.json(&["snapshots", "--account", "other"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(env.ok(&["snapshots"]).contains("mail.example.org"));

    let ls = env.json(&["ls", "latest", s(&src)]);
    let paths: Vec<&Value> = ls.as_array().unwrap().iter().map(|e| &e["path"]).collect();
    assert!(
        paths.iter().any(|p| p.get("hex").is_some()),
        "non-UTF-8 names survive: {paths:?}"
    );
    assert!(
        ls.as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "symlink" && e["target"] == "/etc/hostname")
    );
    let long = env.ok(&["ls", "-l", "latest", &format!("{}/script.sh", s(&src))]);
    assert!(long.starts_with("-rwxr-x--x"), "{long}");

    let found = env.json(&["find", "large-*.bin"]);
    assert_eq!(found.as_array().unwrap().len(), 6, "{found:#}");
    let found = env.json(&["find", &format!("{}/db/*.bin", s(&src))]);
    assert_eq!(found.as_array().unwrap().len(), 6);

    let diff = env.json(&[
        "diff",
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    ]);
    let changes = diff["changes"].as_array().unwrap();
    let has = |kind: &str, suffix: &str| {
        changes
            .iter()
            .any(|c| c["kind"] == kind && c["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
    };
    assert!(has("+", "new/added-0.txt"), "{diff}");
    assert!(has("M", "db/large-0.bin"), "{diff}");
    assert!(has("M", "link-relative"), "{diff}");

    let stats = env.json(&["stats"]);
    assert_eq!(stats["snapshots"], 2);
    assert!(stats["compression_ratio"].as_f64().unwrap() > 1.0);
    // Two snapshots sharing all but the edited files.
    assert!(stats["dedup_ratio"].as_f64().unwrap() > 1.0, "{stats}");

    let config = env.json(&["cat", "config"]);
    assert_eq!(config["version"], 1);
    let snap = env.json(&["cat", "snapshot", &first["id"].as_str().unwrap()[..10]]);
    assert_eq!(snap["snapshot"]["account"], "mail.example.org");
}

#[test]
fn excludes_follow_the_documented_rules() {
    let env = Env::with_repo();
    let src = env.path("src");
    for p in [
        "imap/user/cyrus.squat",
        "imap/user/1.",
        "imap/x.lock.3",
        "run/socket/s",
        "keep/socket",
        "cache/CACHEDIR.TAG",
        "cache/big",
    ] {
        let f = src.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(
            &f,
            if p.ends_with("TAG") {
                &b"Signature: 8a477f597d28d172789f06886806bc55\n"[..]
            } else {
                b"data"
            },
        )
        .unwrap();
    }
    let ex = env.path("excludes");
    std::fs::write(&ex, "# seed 003\ncyrus.squat\n*.lock*\n").unwrap();
    env.ok(&[
        "backup",
        s(&src),
        "--exclude-file",
        s(&ex),
        "--exclude",
        "socket/",
        "--exclude-caches",
    ]);
    let ls = env.ok(&["ls", "latest", s(&src)]);
    for gone in ["cyrus.squat", "x.lock.3", "run/socket", "cache/big"] {
        assert!(!ls.contains(gone), "{gone} should be excluded:\n{ls}");
    }
    for kept in ["imap/user/1.", "keep/socket", "cache/CACHEDIR.TAG", "run"] {
        assert!(ls.contains(kept), "{kept} should be kept:\n{ls}");
    }
    let bad = env.run(&["backup", s(&src), "--exclude", "a[b"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("exclude pattern"));
}

#[test]
fn fifos_are_recorded_and_recreated_only_as_root() {
    let env = Env::with_repo();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("file"), b"x").unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(src.join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    env.ok(&["backup", s(&src)]);
    let ls = env.json(&["ls", "latest", s(&src)]);
    assert!(
        ls.as_array().unwrap().iter().any(|e| e["type"] == "fifo"),
        "{ls}"
    );
    let r = env.path("r");
    let out = env.json(&["restore", &format!("latest:{}", s(&src)), "--target", s(&r)]);
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let md = std::fs::symlink_metadata(r.join("pipe"));
    if root {
        use std::os::unix::fs::FileTypeExt;
        assert!(md.unwrap().file_type().is_fifo());
    } else {
        assert!(md.is_err());
        assert_eq!(
            out["summary"]["skipped"][0]["path"]
                .as_str()
                .map(|p| p.ends_with("pipe")),
            Some(true)
        );
    }
    assert_eq!(std::fs::read(r.join("file")).unwrap(), b"x");
}
