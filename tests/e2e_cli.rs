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
    // As the README has it: CAIRN_PASSWORD_FILE exported, naming the file
    // to generate.
    let third_pw = env.path("third.password");
    let out = env
        .cairn()
        .env("CAIRN_PASSWORD_FILE", &third_pw)
        .args([
            "--repo",
            s(&env.path("third-repo")),
            "init",
            "--kdf-memory-kib",
            "256",
        ])
        .arg("--generate-password-file")
        .arg(&third_pw)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(third_pw.exists());
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
    // A usage error does not list what the environment supplied
    // (CAIRN_REPOSITORY, CAIRN_PASSWORD_FILE) as if the command needed it.
    let out = env.run(&["forget", "--policy", "p.toml", "--keep-last", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("Usage: cairn forget [OPTIONS]"), "{err}");
    assert!(
        !err.contains("--repo") && !err.contains("--password-file"),
        "{err}"
    );
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

/// The fields docs/JSON.md lists for each command, by the command in the
/// section's heading (`cairn snapshots`, `cairn key add`, ...).
fn documented_fields() -> Vec<(String, Vec<String>)> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/JSON.md")).unwrap();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in doc.lines() {
        if let Some(rest) = line.strip_prefix("## `") {
            let name = rest.split('`').next().unwrap().to_string();
            out.push((name, Vec::new()));
        } else if let Some(rest) = line.strip_prefix("| `")
            && let Some((_, fields)) = out.last_mut()
        {
            fields.push(rest.split('`').next().unwrap().to_string());
        }
    }
    out
}

/// `value` at a dotted path; arrays are entered at their first element.
fn at<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut v = value;
    for part in path.split('.') {
        while let Some(first) = v.as_array() {
            v = first.first()?;
        }
        v = v.as_object()?.get(part)?;
    }
    Some(v)
}

#[test]
fn json_output_matches_docs_json() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(5));
    std::os::unix::fs::symlink("elsewhere", src.join("link")).unwrap();
    let seg = env.path("000000010000000000000001");
    std::fs::write(&seg, b"wal bytes").unwrap();
    let second = env.path("second-password");
    std::fs::write(&second, "another\n").unwrap();
    let config = env.path("service.toml");
    std::fs::write(
        &config,
        format!(
            "repository = \"{}\"\npassword-file = \"{}\"\nstate-dir = \"{}\"\n\n[[backup]]\nname = \"files\"\npaths = [\"{}\"]\ninterval = \"1h\"\n",
            env.repo().display(),
            env.path("password").display(),
            env.path("state").display(),
            s(&src)
        ),
    )
    .unwrap();
    let other_repo = env.path("other-repo");
    let copy = env.path("copy");
    let restored = env.path("restored");
    let archive = env.path("archive");
    let out_seg = env.path("seg.out");

    let mut outputs: Vec<(&str, serde_json::Value)> = Vec::new();
    let run = |args: Vec<&str>| env.json(&args);
    outputs.push((
        "cairn init",
        run(vec![
            "--repo",
            s(&other_repo),
            "init",
            "--kdf-memory-kib",
            "256",
        ]),
    ));
    outputs.push(("cairn backup", run(vec!["backup", s(&src)])));
    std::fs::write(src.join("new-file"), b"more").unwrap();
    env.ok(&["backup", s(&src)]);
    let first = env.json(&["snapshots"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(&["account", "disable", "gone"]);
    outputs.push(("cairn snapshots", run(vec!["snapshots"])));
    outputs.push(("cairn ls", run(vec!["ls", "latest"])));
    outputs.push(("cairn find", run(vec!["find", "*"])));
    outputs.push((
        "cairn restore",
        run(vec!["restore", "latest", "--target", s(&restored)]),
    ));
    outputs.push(("cairn verify", run(vec!["verify", "latest", "--no-record"])));
    outputs.push(("cairn diff", run(vec!["diff", &first, "latest"])));
    outputs.push(("cairn check", run(vec!["check"])));
    outputs.push(("cairn stats", run(vec!["stats"])));
    outputs.push((
        "cairn stats SNAPSHOT… --mode MODE",
        run(vec!["stats", "latest", "--mode", "raw-data"]),
    ));
    outputs.push((
        "cairn log push",
        run(vec![
            "log",
            "push",
            "--account",
            "default",
            "--stream",
            "main",
            s(&seg),
        ]),
    ));
    outputs.push(("cairn log list", run(vec!["log", "list"])));
    outputs.push((
        "cairn log get",
        run(vec![
            "log",
            "get",
            "--account",
            "default",
            "--stream",
            "main",
            "000000010000000000000001",
            s(&out_seg),
        ]),
    ));
    outputs.push(("cairn log verify", run(vec!["log", "verify"])));
    outputs.push((
        "cairn export archival",
        run(vec![
            "export",
            "archival",
            "latest",
            "--target",
            s(&archive),
        ]),
    ));
    outputs.push(("cairn sync", run(vec!["sync", "--to", s(&copy)])));
    outputs.push((
        "cairn sync --verify",
        run(vec!["sync", "--to", s(&copy), "--verify"]),
    ));
    outputs.push((
        "cairn forget",
        run(vec!["forget", "--keep-last", "1", "--dry-run"]),
    ));
    outputs.push((
        "cairn forget SNAPSHOT…",
        run(vec!["forget", &first, "--dry-run"]),
    ));
    outputs.push(("cairn prune", run(vec!["prune", "--dry-run"])));
    outputs.push(("cairn account list", run(vec!["account", "list"])));
    outputs.push(("cairn account show", run(vec!["account", "show", "gone"])));
    outputs.push((
        "cairn account disable",
        run(vec!["account", "enable", "gone"]),
    ));
    outputs.push((
        "cairn key add",
        run(vec!["key", "add", "--new-password-file", s(&second)]),
    ));
    outputs.push(("cairn key list", run(vec!["key", "list"])));
    // A lock to remove: a log push waiting for its segment on stdin.
    let mut holder = env
        .cairn()
        .args([
            "log",
            "push",
            "--account",
            "held",
            "--stream",
            "s",
            "--name",
            "n",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    env.wait_for_lock();
    outputs.push(("cairn unlock", run(vec!["unlock", "--remove-all"])));
    let _ = holder.kill();
    let _ = holder.wait();
    outputs.push(("cairn cache rebuild", run(vec!["cache", "rebuild"])));
    outputs.push(("cairn cache cleanup", run(vec!["cache", "cleanup"])));
    outputs.push(("cairn repair index", run(vec!["repair", "index"])));
    outputs.push(("cairn version", run(vec!["version"])));
    outputs.push((
        "cairn service status",
        run(vec!["service", "status", "--config", s(&config)]),
    ));
    outputs.push((
        "cairn queue list",
        run(vec!["queue", "list", "--all", "--config", s(&config)]),
    ));

    let docs = documented_fields();
    for (name, fields) in &docs {
        let Some((_, value)) = outputs.iter().find(|(n, _)| n == name) else {
            panic!("docs/JSON.md documents {name:?}, which this test does not run");
        };
        for f in fields {
            assert!(
                at(value, f).is_some(),
                "{name}: no field {f:?} in {value:#}"
            );
        }
        // Every top-level field printed is documented.
        let row = match value {
            serde_json::Value::Array(rows) => rows.first(),
            v => Some(v),
        };
        if let Some(obj) = row.and_then(|r| r.as_object()) {
            for key in obj.keys() {
                assert!(
                    fields
                        .iter()
                        .any(|f| f.split('.').next() == Some(key.as_str())),
                    "{name} prints {key:?}, which docs/JSON.md does not list"
                );
            }
        }
    }
    for (name, _) in &outputs {
        assert!(
            docs.iter().any(|(n, _)| n == name),
            "{name} has no section in docs/JSON.md"
        );
    }
    // The conventions: UTC times, paths with their leading slash.
    let ls = &outputs.iter().find(|(n, _)| *n == "cairn ls").unwrap().1;
    assert!(ls[0]["mtime"].as_str().unwrap().ends_with('Z'));
    assert!(ls[0]["path"].as_str().unwrap().starts_with('/'));
}
