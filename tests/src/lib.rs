//! cairn's end-to-end tests: helpers to run the built `cairn` binary in a
//! scratch environment. The tree generator, the fault proxy and the S3
//! servers are the test kit's ([`cairn_testkit`]), re-exported here.
//!
//! It knows nothing about cairn's internals: it only looks at file systems
//! and processes.

// A test kit reports failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

pub use cairn_testkit::trees::*;
pub use cairn_testkit::{free_port, proxy, s3};

/// The built `cairn` binary (next to the test executable's directory).
pub fn cairn_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CAIRN_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("cairn");
    assert!(
        bin.exists(),
        "the cairn binary is not built at {} (run `cargo build --workspace --bins` first, or set CAIRN_BIN)",
        bin.display()
    );
    bin
}

/// A scratch environment: a repository directory, a password file, a cache
/// directory and a fake home, so tests never touch the user's data.
#[derive(Debug)]
pub struct Env {
    /// Temporary directory holding everything.
    pub dir: tempfile::TempDir,
    /// Extra environment for every command (S3 settings).
    vars: Vec<(String, String)>,
    /// The repository, when not the local `repo` directory.
    repo_url: Option<String>,
}

impl Env {
    /// A fresh environment with a password file (no repository yet).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        fs::write(&password, "correct horse battery staple\n").unwrap();
        // As an operator keeps it: readable by the owner only.
        fs::set_permissions(&password, fs::Permissions::from_mode(0o600)).unwrap();
        Self {
            dir,
            vars: Vec::new(),
            repo_url: None,
        }
    }

    /// Add environment variables for every command.
    pub fn with_vars<K: Into<String>>(mut self, vars: Vec<(K, String)>) -> Self {
        self.vars
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v)));
        self
    }

    /// Use this repository location (an `s3://` URL) instead of `repo`.
    pub fn with_repo_url(mut self, url: String) -> Self {
        self.repo_url = Some(url);
        self
    }

    /// The repository location commands use.
    pub fn repo_location(&self) -> String {
        self.repo_url
            .clone()
            .unwrap_or_else(|| self.repo().display().to_string())
    }

    /// A fresh environment with an initialised repository (cheap key
    /// derivation, small packs so tests see many of them).
    pub fn with_repo() -> Self {
        Self::new().init()
    }

    /// Initialise the repository (cheap key derivation, small packs).
    pub fn init(self) -> Self {
        self.ok(&["init", "--kdf-memory-kib", "256", "--pack-size", "256KiB"]);
        self
    }

    /// Path inside the environment.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The repository path.
    pub fn repo(&self) -> PathBuf {
        self.path("repo")
    }

    /// A `cairn` command with the repository, password file, cache and
    /// home set.
    pub fn cairn(&self) -> Command {
        let mut cmd = Command::new(cairn_bin());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("CAIRN_REPOSITORY", self.repo_location())
            .env("CAIRN_PASSWORD_FILE", self.path("password"))
            .env("CAIRN_CACHE_DIR", self.path("cache"));
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    /// Wait (up to 5 s) until a lock appears in the local repository:
    /// another process started holding one.
    pub fn wait_for_lock(&self) {
        let locks = self.repo().join("locks");
        for _ in 0..250 {
            if fs::read_dir(&locks).map(|d| d.count()).unwrap_or(0) > 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("no lock appeared in {}", locks.display());
    }

    /// Run `cairn` with arguments; returns the output whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cairn().args(args).output().unwrap()
    }

    /// Run `cairn` and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "cairn {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run `cairn ... --json` and parse stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{out}"))
    }
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

/// An environment whose repository is `url` on the S3 test server
/// `server`, reached through `endpoint` (the server, or a proxy in front
/// of it).
pub fn s3_env(server: s3::Server, endpoint: &str, url: &str) -> Env {
    Env::new()
        .with_vars(server.cairn_env(endpoint))
        .with_repo_url(url.to_string())
}

/// Run a test body `fn name(server: Server)` against both S3 test
/// servers, moto and s3rver, as `name::moto` and `name::s3rver`.
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn moto() {
                super::$name($crate::s3::Server::Moto)
            }
            #[test]
            fn s3rver() {
                super::$name($crate::s3::Server::S3rver)
            }
        }
    };
}
