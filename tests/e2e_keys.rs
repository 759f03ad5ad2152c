//! End-to-end: key management, key file permissions, the embedded default
//! repository, and that the password never appears in any output.

// Tests report failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::{Env, TreeSpec, generate_tree};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn key_modes(repo: &Path) -> Vec<u32> {
    std::fs::read_dir(repo.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().permissions().mode() & 0o777)
        .collect()
}

#[test]
fn add_list_remove_and_change_keys() {
    let env = Env::with_repo();
    assert_eq!(key_modes(&env.repo()), vec![0o600]);
    std::fs::write(env.path("pw2"), "second password\n").unwrap();
    env.ok(&["key", "add", "--new-password-file", s(&env.path("pw2"))]);
    let keys = env.json(&["key", "list"]);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k["current"] == true).count(), 1);
    assert_eq!(key_modes(&env.repo()), vec![0o600, 0o600]);

    // Both passwords open the repository.
    env.cairn()
        .env("CAIRN_PASSWORD_FILE", env.path("pw2"))
        .arg("snapshots")
        .output()
        .unwrap()
        .status
        .success()
        .then_some(())
        .unwrap();
    let current = keys.iter().find(|k| k["current"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = keys.iter().find(|k| k["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env.run(&["key", "remove", &current[..8]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("key in use"));
    env.ok(&["key", "remove", &other[..8]]);
    let out = env
        .cairn()
        .env("CAIRN_PASSWORD_FILE", env.path("pw2"))
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12));

    // passwd: the old password stops working, the new one works.
    std::fs::write(env.path("pw3"), "third password\n").unwrap();
    env.ok(&["key", "passwd", "--new-password-file", s(&env.path("pw3"))]);
    assert_eq!(env.run(&["snapshots"]).status.code(), Some(12));
    let out = env
        .cairn()
        .env("CAIRN_PASSWORD_FILE", env.path("pw3"))
        .arg("snapshots")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(key_modes(&env.repo()), vec![0o600]);
}

#[test]
fn the_password_never_appears_in_output() {
    let env = Env::new();
    let password = "Tr0ub4dor&3-unique-marker";
    std::fs::write(env.path("password"), format!("{password}\n")).unwrap();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(2));
    let mut outputs = Vec::new();
    for args in [
        vec!["-vv", "init", "--kdf-memory-kib", "256"],
        vec!["-vv", "backup", s(&src)],
        vec!["-vv", "snapshots"],
        vec!["-vv", "check", "--read-data"],
        vec!["-vv", "key", "list", "--json"],
        vec!["-vv", "cat", "config"],
        vec!["-vv", "stats", "--json"],
    ] {
        let out = env.run(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(out);
    }
    let key = std::fs::read_dir(env.repo().join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let out = env.run(&["-vv", "cat", "key", key.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !text.contains("wrapped_key") && !text.contains("salt"),
        "{text}"
    );
    outputs.push(out);
    std::fs::write(env.path("wrong"), "wrong-password-marker\n").unwrap();
    outputs.push(
        env.cairn()
            .env("CAIRN_PASSWORD_FILE", env.path("wrong"))
            .args(["-vv", "snapshots"])
            .output()
            .unwrap(),
    );
    for out in outputs {
        for stream in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert!(!text.contains(password), "password leaked: {text}");
            assert!(
                !text.contains("wrong-password-marker"),
                "password leaked: {text}"
            );
        }
    }
}

#[test]
fn the_default_repository_needs_no_setup() {
    let env = Env::new();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(3));
    let bare = || {
        let mut cmd = std::process::Command::new(cairn_e2e::cairn_bin());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", env.path("home"));
        cmd
    };
    let out = bare().args(["backup", s(&src)]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("default repository") && err.contains("default-repo.password"),
        "{err}"
    );
    let data = env.path("home/.local/share/cairn");
    assert!(data.join("default-repo/config").exists());
    let mode = std::fs::metadata(data.join("default-repo.password"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(key_modes(&data.join("default-repo")), vec![0o600]);

    let out = bare().args(["snapshots", "--json"]).output().unwrap();
    assert!(out.status.success());
    let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    let out = bare().args(["-q", "backup", s(&src)]).output().unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "quiet: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without a default repository, other commands say there is none.
    let out = std::process::Command::new(cairn_e2e::cairn_bin())
        .env_clear()
        .env("HOME", env.path("other-home"))
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(10),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
