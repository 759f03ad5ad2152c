//! End-to-end: the command line's contract as an operator meets it. Where
//! results go (stdout) and diagnostics (stderr), what errors say to do, the
//! options restic and borg users type, and `--help`'s layout.

// Tests report failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::{Env, TreeSpec, generate_tree};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn password_sources_repository_files_and_generated_passwords() {
    let env = Env::with_repo();
    // Both password sources: refused, whichever way they are given.
    let out = env.run(&["--password-command", "echo x", "snapshots"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
    let out = env
        .cairn()
        .env("CAIRN_PASSWORD_COMMAND", "echo x")
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // The location from a file.
    let loc = env.path("where");
    std::fs::write(&loc, format!("{}\n", env.repo().display())).unwrap();
    let out = env
        .cairn()
        .env_remove("CAIRN_REPOSITORY")
        .args(["--repository-file", s(&loc), "snapshots", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "[]");

    // `init --generate-password-file`: a new 0600 file that opens the new
    // repository; an existing file is never overwritten.
    let fresh = env.path("fresh-repo");
    let pw = env.path("fresh.password");
    let init = |pw: &Path| {
        env.cairn()
            .env_remove("CAIRN_PASSWORD_FILE")
            .args([
                "--repo",
                s(&fresh),
                "init",
                "--kdf-memory-kib",
                "256",
                "--generate-password-file",
                s(pw),
            ])
            .output()
            .unwrap()
    };
    let out = init(&pw);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::metadata(&pw).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        stdout(&out).contains("created cairn repository"),
        "{}",
        stdout(&out)
    );
    let out = env
        .cairn()
        .args(["--repo", s(&fresh), "--password-file", s(&pw), "snapshots"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let before = std::fs::read(&pw).unwrap();
    let other = env.path("other-repo");
    let out = env
        .cairn()
        .env_remove("CAIRN_PASSWORD_FILE")
        .args([
            "--repo",
            s(&other),
            "init",
            "--kdf-memory-kib",
            "256",
            "--generate-password-file",
            s(&pw),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read(&pw).unwrap(), before);
}

#[test]
fn key_commands_without_a_terminal_and_with_json() {
    let env = Env::with_repo();
    // No terminal and no file: the error names the option to use.
    let out = env
        .cairn()
        .args(["key", "add"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--new-password-file"),
        "{}",
        stderr(&out)
    );

    let second = env.path("second");
    std::fs::write(&second, "another password\n").unwrap();
    let added = env.json(&[
        "key",
        "add",
        "--new-password-file",
        s(&second),
        "--user",
        "backup-operator",
        "--host",
        "vault.example",
    ]);
    assert_eq!(added["action"], "added");
    let id = added["id"].as_str().unwrap().to_string();
    let keys = env.json(&["key", "list"]);
    let row = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap();
    assert_eq!(row["username"], "backup-operator");
    assert_eq!(row["host"], "vault.example");
    let removed = env.json(&["key", "remove", &id[..8]]);
    assert_eq!(removed["action"], "removed");
    assert_eq!(removed["id"], id.as_str());
}

#[test]
fn results_on_stdout_and_a_missing_path_among_others() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(4));

    // One missing path: the rest is backed up, the error said once, exit 3.
    let gone = env.path("gone");
    let out = env.run(&["backup", s(&src), s(&gone)]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches(s(&gone)).count(), 1, "{err}");
    assert!(stdout(&out).contains("snapshot "), "{}", stdout(&out));
    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps[0]["paths"], serde_json::json!([s(&src)]));
    // -q keeps the warning: the snapshot lacks something.
    let out = env.run(&["-q", "backup", s(&src), s(&gone)]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains(s(&gone)), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    // -v lists new and modified files; -vv unchanged ones as well.
    std::fs::write(src.join("added-later"), b"new content").unwrap();
    let out = env.run(&["-v", "backup", s(&src)]);
    let listed = stdout(&out);
    assert!(
        listed.contains(&format!("new       {}/added-later", s(&src))),
        "{listed}"
    );
    assert!(!listed.contains("unchanged "), "{listed}");
    let out = env.run(&["-vv", "backup", s(&src)]);
    assert!(
        stdout(&out).contains(&format!("unchanged {}/added-later", s(&src))),
        "{}",
        stdout(&out)
    );

    // check, unlock and diff say their result on stdout.
    let out = env.run(&["check"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("no errors"), "{}", stdout(&out));
    let out = env.run(&["unlock"]);
    assert!(stdout(&out).contains("0 locks removed"), "{}", stdout(&out));
    let snaps = env.json(&["snapshots"]);
    let first = snaps[0]["id"].as_str().unwrap();
    let out = env.run(&["diff", first, "latest"]);
    assert!(stdout(&out).contains(" changes from "), "{}", stdout(&out));
    let diff = env.json(&["diff", first, "latest"]);
    let added = format!("{}/added-later", s(&src));
    assert!(
        diff["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "+" && c["path"] == added.as_str()),
        "{diff}"
    );
    let out = env.run(&["log", "verify"]);
    assert!(stdout(&out).contains("chains unbroken"), "{}", stdout(&out));
}

#[test]
fn help_lists_own_options_first_and_every_exit_status() {
    let env = Env::new();
    let top = env.ok(&["--help"]);
    assert!(top.contains("130 interrupted"), "{top}");
    let help = env.ok(&["backup", "--help"]);
    let own = help.find("--account").unwrap();
    let global = help.find("Global options:").unwrap();
    assert!(own < global, "{help}");
    assert!(help[global..].contains("--password-file <FILE>"), "{help}");
}

#[test]
fn the_options_restic_users_type() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(6));
    std::fs::write(src.join("README.TXT"), b"upper").unwrap();
    std::fs::write(src.join("notes.txt"), b"lower").unwrap();
    env.ok(&[
        "backup",
        s(&src),
        "--account",
        "a",
        "--iexclude",
        "readme.txt",
    ]);
    env.ok(&["backup", s(&src), "--account", "a", "--tag", "t"]);
    env.ok(&["backup", s(&src), "--account", "b", "--host", "other-host"]);
    let ids: Vec<String> = env
        .json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    // backup --iexclude matched without regard to case.
    let first = env.json(&["ls", &ids[0], s(&src)]);
    let names: Vec<&str> = first
        .as_array()
        .unwrap()
        .iter()
        // Non-UTF-8 names are {"hex": …} objects.
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with("README.TXT")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with("notes.txt")), "{names:?}");
    // ls --json times are RFC 3339 in UTC.
    let mtime = first[0]["mtime"].as_str().unwrap();
    assert!(mtime.ends_with('Z') && mtime.contains('T'), "{mtime}");

    // snapshots --latest, --group-by, --path.
    let latest = env.json(&["snapshots", "--latest", "1"]);
    assert_eq!(latest.as_array().unwrap().len(), 1);
    assert_eq!(latest[0]["id"], ids[2].as_str());
    let grouped = env.json(&["snapshots", "--group-by", "account", "--latest", "1"]);
    assert_eq!(grouped.as_array().unwrap().len(), 2, "{grouped}");
    assert_eq!(grouped[0]["group"]["account"], "a");
    assert_eq!(grouped[0]["snapshots"][0]["id"], ids[1].as_str());
    assert_eq!(
        env.json(&["snapshots", "--path", s(&src)])
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(
        env.json(&["snapshots", "--path", "/nowhere"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let text = env.ok(&["snapshots", "--group-by", "host"]);
    assert!(text.contains("group: host other-host"), "{text}");
    assert!(text.contains("3 snapshots"), "{text}");

    // find --snapshot and --newest.
    let found = env.json(&["find", "README.TXT", "--snapshot", &ids[1]]);
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    let none = env.json(&["find", "README.TXT", "--newest", "2000-01-01"]);
    assert!(none.as_array().unwrap().is_empty(), "{none}");
    let text = env.ok(&["find", "notes.txt"]);
    assert!(text.starts_with("snapshot"), "{text}");

    // restore --iinclude and --exclude.
    let t1 = env.path("t1");
    env.ok(&[
        "restore",
        &ids[1],
        "--target",
        s(&t1),
        "--iinclude",
        "readme.*",
    ]);
    let rel = |t: &Path, name: &str| t.join(src.strip_prefix("/").unwrap()).join(name);
    assert!(rel(&t1, "README.TXT").exists());
    assert!(!rel(&t1, "notes.txt").exists());
    let t2 = env.path("t2");
    env.ok(&[
        "restore",
        &ids[1],
        "--target",
        s(&t2),
        "--exclude",
        "*.txt",
        "--iexclude",
        "*.TXT",
    ]);
    assert!(!rel(&t2, "README.TXT").exists() && !rel(&t2, "notes.txt").exists());
    assert!(rel(&t2, "").is_dir());

    // stats of one snapshot.
    let st = env.json(&["stats", &ids[1], "--mode", "restore-size"]);
    assert_eq!(st["snapshots"], 1);
    assert!(st["restore_size"].as_u64().unwrap() > 0 && st["files"].as_u64().unwrap() >= 2);
    let raw = env.json(&["stats", "--mode", "raw-data"]);
    assert!(raw["raw_bytes"].as_u64().unwrap() > 0);

    // check --read-data-subset n/t and SIZE.
    for subset in ["1/2", "2/2", "1MiB", "50%"] {
        let out = env.run(&["check", "--read-data-subset", subset]);
        assert!(out.status.success(), "{subset}: {}", stderr(&out));
    }
    let out = env.run(&["check", "--read-data-subset", "3/2"]);
    assert_eq!(out.status.code(), Some(2));

    // forget with --keep flags: the policy planner's reasons.
    let out = env.ok(&["forget", "--keep-last", "1", "--dry-run"]);
    assert!(
        out.contains("last 1") && out.contains("would be removed"),
        "{out}"
    );
    // forget SNAPSHOT: the newest good one of its account needs --force.
    let out = env.run(&["forget", &ids[2]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    let out = env.ok(&["forget", &ids[0], "--dry-run"]);
    assert!(out.contains("would remove"), "{out}");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 3);
    env.ok(&["forget", &ids[0]]);
    env.ok(&["forget", &ids[2], "--force"]);
    let left = env.json(&["snapshots"]);
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["id"], ids[1].as_str());
    let out = env.run(&["forget"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--keep-"), "{}", stderr(&out));
}

#[test]
fn caches_are_tagged_and_cleaned_and_version_says_what_it_reads() {
    let env = Env::with_repo();
    env.ok(&["check"]);
    let tag = std::fs::read(env.path("cache").join("CACHEDIR.TAG")).unwrap();
    assert!(tag.starts_with(b"Signature: 8a477f597d28d172789f06886806bc55"));
    // --exclude-caches skips cairn's own cache.
    let src = env.path("tree");
    std::fs::create_dir_all(src.join("data")).unwrap();
    std::fs::write(src.join("data/f"), b"x").unwrap();
    let cache = src.join("cache");
    let out = env
        .cairn()
        .env("CAIRN_CACHE_DIR", &cache)
        .args(["check"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    env.ok(&["backup", s(&src), "--exclude-caches"]);
    let listed = env.json(&["ls", "latest", s(&cache)]);
    let paths: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    // Only the tag is kept of a tagged cache.
    assert_eq!(
        paths,
        vec![format!("{}/CACHEDIR.TAG", s(&cache))],
        "{paths:?}"
    );
    // cache cleanup removes nothing recent; with a zero age, everything.
    let kept = env.json(&["cache", "cleanup"]);
    assert!(kept["removed"].as_array().unwrap().is_empty(), "{kept}");
    let gone = env.json(&["cache", "cleanup", "--max-age", "0s"]);
    assert_eq!(gone["removed"].as_array().unwrap().len(), 1, "{gone}");
    // The old name still works, and says the new one.
    let out = env.run(&["index", "rebuild"]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("cache rebuild"), "{}", stderr(&out));

    let v = env.json(&["version"]);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(!v["commit"].as_str().unwrap().is_empty());
    assert_eq!(v["formats"]["repository"], 1);
}
