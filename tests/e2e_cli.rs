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
