//! End-to-end: what an operator meets. Restored directories keep their mode,
//! apply commands get absolute paths, archival exports refuse gaps, point-in-
//! time restores pass over snapshots whose verification failed and honour
//! --host and --tag, check prints every kind of damage, accounts and times
//! cannot be sent into the future, duplicate names and contradictory sizes
//! are reported, key and password files are judged, and a closed stdout
//! ends a command quietly.

// Tests report failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::{Env, TreeSpec, assert_same_tree, generate_tree};
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// Push `content` as segment `name` of stream `journal` of `account`.
fn push(env: &Env, account: &str, name: &str, content: &[u8]) {
    let dir = env.path("segs");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(name);
    std::fs::write(&f, content).unwrap();
    env.ok(&[
        "log",
        "push",
        "--account",
        account,
        "--stream",
        "journal",
        s(&f),
    ]);
}

fn pause() {
    std::thread::sleep(Duration::from_millis(40));
}

#[test]
fn a_restored_directory_keeps_its_mode_in_a_new_or_empty_target() {
    let env = Env::with_repo();
    let pgdata = env.path("pgdata");
    std::fs::create_dir_all(pgdata.join("base")).unwrap();
    std::fs::write(pgdata.join("PG_VERSION"), b"15\n").unwrap();
    std::fs::set_permissions(&pgdata, std::fs::Permissions::from_mode(0o700)).unwrap();
    let id = id_of(&env.json(&["backup", s(&pgdata), "--account", "P"]));

    // The recipe in the README, word for word.
    let t1 = env.path("t1");
    env.ok(&["restore", "--account", "P", "--latest", "--target", s(&t1)]);
    assert_eq!(mode(&t1), 0o700);
    assert_eq!(
        std::fs::metadata(&t1).unwrap().uid(),
        std::fs::metadata(&pgdata).unwrap().uid()
    );

    // An empty existing target takes it too; a non-empty one is left alone.
    let t2 = env.path("t2");
    std::fs::create_dir_all(&t2).unwrap();
    std::fs::set_permissions(&t2, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.ok(&[
        "restore",
        &format!("{id}:{}", s(&pgdata)),
        "--target",
        s(&t2),
    ]);
    assert_eq!(mode(&t2), 0o700);
    let t3 = env.path("t3");
    std::fs::create_dir_all(&t3).unwrap();
    std::fs::write(t3.join("keep-me"), b"x").unwrap();
    std::fs::set_permissions(&t3, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.ok(&[
        "restore",
        &format!("{id}:{}", s(&pgdata)),
        "--target",
        s(&t3),
    ]);
    assert_eq!(mode(&t3), 0o755);
    assert!(t3.join("PG_VERSION").exists() && t3.join("keep-me").exists());
}

#[test]
fn the_apply_command_gets_absolute_paths_with_a_relative_target() {
    let env = Env::with_repo();
    let db = env.path("db");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("state"), b"base\n").unwrap();
    env.ok(&["backup", s(&db), "--account", "A"]);
    pause();
    push(&env, "A", "s1", b"one\n");
    push(&env, "A", "s2", b"two\n");
    let out = env
        .cairn()
        .current_dir(env.path(""))
        .args([
            "restore",
            "--account",
            "A",
            "--latest",
            "--target",
            "rel1",
            "--apply-command",
            r#"cd / && cat "$CAIRN_SEGMENT" >> "$CAIRN_TARGET/state""#,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(env.path("rel1/state")).unwrap(),
        "base\none\ntwo\n"
    );
}

#[test]
fn an_archival_export_with_a_gap_fails_unless_gaps_are_allowed() {
    let env = Env::with_repo();
    let db = env.path("db");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("state"), b"base\n").unwrap();
    env.ok(&["backup", s(&db), "--account", "A"]);
    pause();
    for i in 1..=4 {
        push(
            &env,
            "A",
            &format!("s{i}"),
            format!("segment {i}\n").as_bytes(),
        );
    }
    pause();
    let s2 = id_of(&env.json(&["backup", s(&db), "--account", "A", "--force"]));
    // Lose the segment in the middle of the range.
    let lost = std::fs::read_dir(env.repo().join("logs"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("0000000000000002-")
        })
        .unwrap();
    std::fs::remove_file(&lost).unwrap();

    let target = env.path("archive");
    let out = env.run(&["export", "archival", &s2, "--target", s(&target)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("missing") && err.contains("last point that can be reached is segment s2"),
        "{err}"
    );
    let out = env.run(&[
        "export",
        "archival",
        &s2,
        "--target",
        s(&env.path("archive2")),
        "--allow-gaps",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["delivered"], 3, "{report}");
    assert_eq!(report["missing"].as_array().unwrap().len(), 1, "{report}");
    for kept in ["s1", "s2", "s4"] {
        assert!(
            env.path(&format!("archive2/cairn-logs/journal/{kept}"))
                .exists()
        );
    }

    // check says so in text, not only in --json; snapshots --logs too.
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains("damaged: log A/journal") && err.contains("chain break"),
        "{err}"
    );
    assert!(err.contains("damaged: 0 entries, 1 log segment"), "{err}");
    let text = env.ok(&["snapshots", "--logs"]);
    assert!(text.contains("GAP"), "{text}");
}

#[test]
fn a_point_in_time_restore_passes_over_failed_snapshots_and_honours_filters() {
    let env = Env::with_repo();
    let db = env.path("db");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("state"), b"good\n").unwrap();
    let good = id_of(&env.json(&["backup", s(&db), "--account", "A", "--tag", "nightly"]));
    pause();
    push(&env, "A", "s1", b"one\n");
    std::fs::write(db.join("state"), b"bad\n").unwrap();
    let bad = id_of(&env.json(&["backup", s(&db), "--account", "A", "--tag", "nightly"]));
    let out = env.run(&["verify", &bad, "--command", "false"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    pause();
    push(&env, "A", "s2", b"two\n");

    // The newest good snapshot, and every segment after it.
    let t = env.path("t");
    let out = env.run(&["restore", "--account", "A", "--latest", "--target", s(&t)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("passed over snapshot {}", &bad[..8])),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(t.join("state")).unwrap(), b"good\n");
    for seg in ["s1", "s2"] {
        assert!(t.join("cairn-logs/journal").join(seg).exists(), "{seg}");
    }
    // Asked for by name, the failed one is used, with a warning.
    let t = env.path("t-forced");
    let out = env.run(&[
        "restore",
        "--account",
        "A",
        "--latest",
        "--snapshot",
        &bad,
        "--target",
        s(&t),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("failed its verification"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(t.join("state")).unwrap(), b"bad\n");

    // --host and --tag pick among the snapshots.
    std::fs::write(db.join("state"), b"other host\n").unwrap();
    env.ok(&["backup", s(&db), "--account", "A", "--host", "elsewhere"]);
    let t = env.path("t-host");
    env.ok(&[
        "restore",
        "--account",
        "A",
        "--latest",
        "--host",
        "elsewhere",
        "--target",
        s(&t),
    ]);
    assert_eq!(std::fs::read(t.join("state")).unwrap(), b"other host\n");
    let t = env.path("t-tag");
    env.ok(&[
        "restore",
        "--account",
        "A",
        "--latest",
        "--tag",
        "nightly",
        "--target",
        s(&t),
    ]);
    assert_eq!(std::fs::read(t.join("state")).unwrap(), b"good\n");
    assert_ne!(good, bad);
}

#[test]
fn times_ahead_of_the_clock_are_refused_or_kept_out_of_the_rules() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(3));
    let out = env.run(&["backup", s(&src), "--time", "2999-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ahead of this machine's clock"),
        "{}",
        stderr(&out)
    );
    env.ok(&["backup", s(&src)]);
    env.ok(&["backup", s(&src), "--force"]);
    let future = id_of(&env.json(&[
        "backup",
        s(&src),
        "--force",
        "--time",
        "2999-01-01T00:00:00Z",
        "--allow-future-time",
    ]));
    let policy = env.path("p.toml");
    std::fs::write(&policy, "[default]\nkeep-within = \"30d\"\n").unwrap();
    let out = env.run(&["forget", "--policy", s(&policy), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ahead of the clock"),
        "{}",
        stderr(&out)
    );
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["removed"], 0, "today's snapshots stay: {done}");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 3);
    assert!(!future.is_empty());

    // forget --now in the future only as a dry run.
    let out = env.run(&[
        "forget",
        "--policy",
        s(&policy),
        "--now",
        "2999-02-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ahead of this machine's clock"),
        "{}",
        stderr(&out)
    );
    env.ok(&[
        "forget",
        "--policy",
        s(&policy),
        "--now",
        "2999-02-01T00:00:00Z",
        "--dry-run",
    ]);
}

#[test]
fn the_latest_account_event_written_wins_and_enabling_a_purged_account_works() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(4));
    env.ok(&["backup", s(&src), "--account", "A"]);
    env.ok(&["account", "disable", "A", "--time", "2026-01-01T00:00:00Z"]);
    let policy = env.path("p.toml");
    std::fs::write(&policy, "[default]\nkeep-last = 3\npurge-after = \"1d\"\n").unwrap();
    let done = env.json(&["forget", "--policy", s(&policy)]);
    assert_eq!(done["purged_accounts"][0], "A", "{done}");
    let out = env.run(&["account", "enable", "A"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("gone"), "{}", stderr(&out));
    assert_eq!(env.json(&["account", "show", "A"])["state"], "active");
    env.ok(&["backup", s(&src), "--account", "A"]);
    // A backdated event written later still decides.
    env.ok(&["account", "disable", "A", "--time", "2025-01-01T00:00:00Z"]);
    assert_eq!(env.json(&["account", "show", "A"])["state"], "disabled");
}

#[test]
fn zero_counts_and_policy_errors_are_refused_with_their_line() {
    let env = Env::with_repo();
    let cases = [
        ("[default]\nkeep-last = 0\n", "line 1"),
        (
            "[default]\nkeep-daily = 7\n\n[[account]]\npattern = \"x*\"\nkeep-daily = 0\n",
            "line 4",
        ),
        (
            "timezone = \"Europe/Berln\"\n[default]\nkeep-last = 1\n",
            "line 1, column 12",
        ),
        (
            "[default]\nkeep-last = 1\n[[account]]\nkeep-last = 2\n",
            "line 3",
        ),
        (
            "[default]\nkeep-last = 1\n[[account]]\npattern = \"a[\"\n",
            "line 4, column 11",
        ),
        ("[default]\nkeep-last = 99999999999\n", "too large a count"),
        ("[default]\nkeep-within = \"0d\"\n", "line 2"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let policy = env.path(&format!("p{i}.toml"));
        std::fs::write(&policy, text).unwrap();
        let out = env.run(&["forget", "--policy", s(&policy), "--dry-run"]);
        assert_eq!(out.status.code(), Some(1), "{text}");
        let err = stderr(&out);
        assert!(
            err.contains(expected) && err.contains(&format!("p{i}.toml")),
            "{text:?}: {err}"
        );
    }
}

#[test]
fn keys_passwords_and_a_closed_stdout() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(5));
    env.ok(&["backup", s(&src)]);

    // A password file others can read: used, with a warning.
    std::fs::set_permissions(env.path("password"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["snapshots"]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("can be read by other users"),
        "{}",
        stderr(&out)
    );
    std::fs::set_permissions(env.path("password"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = env.run(&["snapshots"]);
    assert!(!stderr(&out).contains("other users"), "{}", stderr(&out));

    // The snapshot's user has a name even without USER and LOGNAME.
    let user = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let user = String::from_utf8_lossy(&user.stdout).trim().to_string();
    assert_eq!(env.json(&["snapshots"])[0]["username"], user.as_str());

    // A reader that goes away: no panic, quietly.
    for args in [vec!["snapshots", "--json"], vec!["ls", "latest", "-l"]] {
        let mut child = env
            .cairn()
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            matches!(out.status.code(), Some(0) | Some(141)),
            "{args:?}: {:?} {err}",
            out.status
        );
    }

    // Every key file empty or not a key file: exit 12, "no usable key".
    for entry in std::fs::read_dir(env.repo().join("keys")).unwrap() {
        std::fs::write(entry.unwrap().path(), b"").unwrap();
    }
    let out = env.run(&["snapshots"]);
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    assert!(stderr(&out).contains("no key file"), "{}", stderr(&out));
}

#[test]
fn an_unreadable_pack_no_index_lists_is_named_as_damage() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(6));
    env.ok(&["backup", s(&src)]);
    let name = "ab".repeat(32);
    std::fs::create_dir_all(env.repo().join("data/ab")).unwrap();
    std::fs::write(env.repo().join("data/ab").join(&name), b"not a pack at all").unwrap();
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // The report is the result: on stdout.
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&format!("pack {} is in no index and damaged", &name[..8])),
        "{report}"
    );
    let out = env.run(&["backup", s(&src)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&name[..8]) && stderr(&out).contains("cannot be read"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sync_repair_sends_again_what_verify_finds_corrupt() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(7));
    env.ok(&["backup", s(&src)]);
    let replica = env.path("replica");
    env.ok(&["sync", "--to", s(&replica)]);
    // Damage one pack and remove one index object on the replica.
    let pack = walk_files(&replica.join("data"))[0].clone();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&pack, &bytes).unwrap();
    let index = walk_files(&replica.join("index"))[0].clone();
    std::fs::remove_file(&index).unwrap();
    let out = env.run(&["sync", "--to", s(&replica), "--verify"]);
    assert_eq!(out.status.code(), Some(1));
    // A plain sync does not see a same-size corrupt object; --repair does.
    let report = env.json(&["sync", "--to", s(&replica), "--repair"]);
    assert_eq!(report["repaired"], 2, "{report}");
    env.ok(&["sync", "--to", s(&replica), "--verify"]);
    let r = env.path("r");
    let out = env
        .cairn()
        .env("CAIRN_REPOSITORY", &replica)
        .args(["restore", &format!("latest:{}", s(&src)), "--target", s(&r)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_same_tree(&src, &r);
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Write a crafted snapshot into the local repository of `env`, through the
/// library (the test holds the key): one directory with the given entries.
fn crafted_snapshot(env: &Env, entries: &[(&[u8], &[u8], Option<u64>)]) -> String {
    use cairn_repository::snapshot::{SNAPSHOT_VERSION, SnapshotStatus, Summary};
    use cairn_repository::tree::{Metadata, Node, NodeData, Tree};
    use cairn_repository::writer::BlobWriter;
    use cairn_repository::{BlobKind, CacheLocation, ChunkId, Repository, Snapshot, Store, TreeId};
    let repo = Repository::open(
        Store::local(&env.repo(), false).unwrap(),
        b"correct horse battery staple",
        CacheLocation::InMemory,
    )
    .unwrap();
    let _lock = repo.lock(false, "test: craft").unwrap();
    let w = BlobWriter::new(&repo).unwrap();
    // Names in order, duplicates kept: not Tree::new.
    let nodes = entries
        .iter()
        .map(|(name, content, size)| {
            let (id, _) = w.store_plain(BlobKind::Data, content).unwrap();
            Node {
                name: name.to_vec(),
                meta: Metadata {
                    mode: 0o644,
                    size: size.unwrap_or(content.len() as u64),
                    ..Metadata::default()
                },
                data: NodeData::File {
                    chunks: vec![ChunkId::from_bytes(id)],
                },
            }
        })
        .collect();
    let (root, _) = w
        .store_plain(BlobKind::Tree, &Tree { nodes }.encode())
        .unwrap();
    w.finish().unwrap();
    let id = repo
        .save_snapshot(&Snapshot {
            version: SNAPSHOT_VERSION,
            time: jiff::Timestamp::now(),
            host: "crafted".into(),
            username: "test".into(),
            account: "default".into(),
            paths: vec![],
            tags: vec![],
            parent: None,
            tree: TreeId::from_bytes(root),
            status: SnapshotStatus::Complete,
            summary: Summary::default(),
            program: "crafted".into(),
        })
        .unwrap();
    id.to_hex()
}

#[test]
fn a_name_listed_twice_loses_only_its_entries() {
    let env = Env::with_repo();
    let id = crafted_snapshot(
        &env,
        &[
            (b"a", b"first a", None),
            (b"a", b"second a", None),
            (b"b", b"plain b", None),
        ],
    );
    let t = env.path("t");
    let out = env.run(&["restore", &id, "--target", s(&t)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/a: the directory lists this name more than once"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(t.join("b")).unwrap(), b"plain b");
    assert!(!t.join("a").exists());
}

#[test]
fn a_size_that_contradicts_the_content_is_reported() {
    let env = Env::with_repo();
    let id = crafted_snapshot(
        &env,
        &[(b"f", b"ten bytes!", Some(999)), (b"g", b"fine", None)],
    );
    let out = env.run(&["check", "--read-data"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "damaged: snapshot {} /f: its size contradicts its content",
            &id[..8]
        )),
        "{}",
        stderr(&out)
    );
    let t = env.path("t");
    let out = env.run(&["restore", &id, "--target", s(&t)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("recorded size is 999 bytes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(t.join("f")).unwrap(), b"ten bytes!");
    assert_eq!(std::fs::read(t.join("g")).unwrap(), b"fine");
}

/// A Python script (with `os` imported) run in `dir`; its stdout.
fn py(dir: &Path, script: &str) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!("import os\n{script}"))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// `sh -c script` in `dir`; its stdout.
fn sh(dir: &Path, script: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn paths_longer_than_path_max_back_up_and_restore() {
    let env = Env::with_repo();
    let src = env.path("deep");
    std::fs::create_dir_all(&src).unwrap();
    // 200 levels of 28-byte names: about 5,800 bytes, past PATH_MAX. Made
    // (and read back) one level at a time, relative to open directories.
    let name = "d".repeat(27) + "x";
    py(
        &src,
        &format!(
            "fd = os.open('.', os.O_RDONLY)\n\
             for _ in range(200):\n\
             \x20   os.mkdir('{name}', dir_fd=fd)\n\
             \x20   fd = os.open('{name}', os.O_RDONLY, dir_fd=fd)\n\
             f = os.open('file.txt', os.O_WRONLY | os.O_CREAT, 0o640, dir_fd=fd)\n\
             os.write(f, b'at the bottom')\n\
             os.symlink('file.txt', 'link', dir_fd=fd)\n\
             os.mkdir('empty', dir_fd=fd)\n"
        ),
    );
    let id = id_of(&env.json(&["backup", s(&src)]));
    let target = env.path("t");
    env.ok(&[
        "restore",
        &format!("{id}:{}", s(&src)),
        "--target",
        s(&target),
    ]);
    // Same names, types, sizes and modes at every depth; the deepest
    // file's content.
    let listing = "find . -printf '%p %y %s %m\\n' | sort";
    assert_eq!(sh(&src, listing), sh(&target, listing));
    let bottom = format!(
        "fd = os.open('.', os.O_RDONLY)\n\
         for _ in range(200):\n\
         \x20   fd = os.open('{name}', os.O_RDONLY, dir_fd=fd)\n\
         print(os.read(os.open('file.txt', os.O_RDONLY, dir_fd=fd), 100).decode(), end='')\n"
    );
    assert_eq!(py(&target, &bottom), "at the bottom");
    let report = env.json(&["check", "--read-data"]);
    assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report}");
}
