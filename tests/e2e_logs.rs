//! End-to-end: transaction-log streams. A stream of plain files restored to
//! three points in time, gaps and corrupt segments that stop a restore at
//! the last reachable point, archival exports, retention of segments, and a
//! real PostgreSQL archiving its WAL into cairn and recovering to a time.

// Tests report failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::Env;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn now() -> String {
    std::thread::sleep(Duration::from_millis(30));
    let t = jiff::Timestamp::now().to_string();
    std::thread::sleep(Duration::from_millis(30));
    t
}

fn pseudo(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = cairn_e2e::Rng::new(seed);
    rng.bytes(len)
}

/// Push `content` as segment `name` of files/journal.
fn push(env: &Env, dir: &Path, name: &str, content: &[u8]) -> Value {
    let f = dir.join(name);
    std::fs::write(&f, content).unwrap();
    let v = env.json(&[
        "log",
        "push",
        "--account",
        "files",
        "--stream",
        "journal",
        s(&f),
    ]);
    v[0].clone()
}

const APPLY: &str = r#"cat "$CAIRN_SEGMENT" >> state.txt && echo "$CAIRN_SEGMENT_SEQ $CAIRN_SEGMENT_NAME" >> applied.txt"#;

fn restore_until(env: &Env, until: &str, target: &Path) -> std::process::Output {
    env.run(&[
        "restore",
        "--account",
        "files",
        "--until",
        until,
        "--target",
        s(target),
        "--apply-command",
        APPLY,
    ])
}

#[test]
fn a_plain_file_stream_restored_to_three_points_in_time() {
    let env = Env::with_repo();
    let db = env.path("db");
    let segs = env.path("segs");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::create_dir_all(&segs).unwrap();
    std::fs::write(db.join("state.txt"), b"base\n").unwrap();

    env.ok(&["backup", s(&db), "--account", "files"]);
    let seg = |i: u64| format!("segment {i}: {}\n", "x".repeat(i as usize));
    push(&env, &segs, "s1", seg(1).as_bytes());
    let t1 = now();
    push(&env, &segs, "s2", seg(2).as_bytes());
    push(&env, &segs, "s3", seg(3).as_bytes());
    let t2 = now();
    // The database now holds what the three segments did; a new snapshot.
    std::fs::write(
        db.join("state.txt"),
        format!("base\n{}{}{}", seg(1), seg(2), seg(3)),
    )
    .unwrap();
    let s1 = env.json(&["backup", s(&db), "--account", "files"]);
    push(&env, &segs, "s4", seg(4).as_bytes());
    let t3 = now();
    push(&env, &segs, "s5", seg(5).as_bytes());

    for (until, expected, applied) in [
        (&t1, format!("base\n{}", seg(1)), "0 s1\n"),
        (
            &t2,
            format!("base\n{}{}{}", seg(1), seg(2), seg(3)),
            "0 s1\n1 s2\n2 s3\n",
        ),
        (
            &t3,
            format!("base\n{}{}{}{}", seg(1), seg(2), seg(3), seg(4)),
            "3 s4\n",
        ),
    ] {
        let target = env.path(&format!("r-{}", until.replace(':', "")));
        let out = restore_until(&env, until, &target);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            std::fs::read_to_string(target.join("state.txt")).unwrap(),
            expected,
            "state at {until}"
        );
        assert_eq!(
            std::fs::read_to_string(target.join("applied.txt")).unwrap(),
            applied
        );
        assert!(target.join("cairn-logs/journal").is_dir());
    }

    // --latest: the newest snapshot and everything after it.
    let latest = env.path("r-latest");
    env.ok(&[
        "restore",
        "--account",
        "files",
        "--latest",
        "--target",
        s(&latest),
        "--apply-command",
        APPLY,
    ]);
    assert_eq!(
        std::fs::read_to_string(latest.join("state.txt")).unwrap(),
        format!("base\n{}{}{}{}{}", seg(1), seg(2), seg(3), seg(4), seg(5))
    );

    // The snapshot's log range, and the archival export.
    let snaps = env.json(&["snapshots", "--logs", "--account", "files"]);
    let logs = &snaps[1]["logs"][0];
    assert_eq!(
        (
            logs["first"].as_str(),
            logs["last"].as_str(),
            logs["segments"].as_u64()
        ),
        (Some("s1"), Some("s3"), Some(3))
    );
    assert!(snaps[0]["logs"].as_array().unwrap().is_empty());
    let archival = env.path("archival");
    env.ok(&[
        "export",
        "archival",
        s1["id"].as_str().unwrap(),
        "--target",
        s(&archival),
    ]);
    assert_eq!(
        std::fs::read_to_string(archival.join("state.txt")).unwrap(),
        format!("base\n{}{}{}", seg(1), seg(2), seg(3))
    );
    let mut exported: Vec<String> = std::fs::read_dir(archival.join("cairn-logs/journal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    exported.sort();
    assert_eq!(exported, vec!["s1", "s2", "s3"]);

    // get, list, verify; repeated and conflicting pushes.
    let got = env.path("got-s2");
    env.ok(&[
        "log",
        "get",
        "--account",
        "files",
        "--stream",
        "journal",
        "s2",
        s(&got),
    ]);
    assert_eq!(std::fs::read_to_string(&got).unwrap(), seg(2));
    let missing = env.run(&[
        "log",
        "get",
        "--account",
        "files",
        "--stream",
        "journal",
        "s9",
        s(&env.path("nope")),
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(!env.path("nope").exists());
    assert_eq!(
        env.json(&["log", "list", "--account", "files"])
            .as_array()
            .unwrap()
            .len(),
        5
    );
    env.ok(&["log", "verify", "--read-data"]);
    let again = push(&env, &segs, "s2", seg(2).as_bytes());
    assert_eq!(again["stored"], false);
    let f = segs.join("s2");
    std::fs::write(&f, b"other content").unwrap();
    let conflict = env.run(&[
        "log",
        "push",
        "--account",
        "files",
        "--stream",
        "journal",
        s(&f),
    ]);
    assert_eq!(conflict.status.code(), Some(1));
    assert!(
        stderr(&conflict).contains("different content"),
        "{}",
        stderr(&conflict)
    );
    // Standard input needs a name.
    let mut child = env
        .cairn()
        .args([
            "log",
            "push",
            "--account",
            "files",
            "--stream",
            "journal",
            "--name",
            "s6",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), seg(6).as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());

    // Retention: keep the newest snapshot; segments before it go, except
    // the chain's start; prune keeps the data the rest need.
    let policy = env.path("policy.toml");
    std::fs::write(&policy, "[default]\nkeep-last = 1\n").unwrap();
    let forget = env.json(&[
        "forget",
        "--policy",
        s(&policy),
        "--prune",
        "--max-unused",
        "0%",
    ]);
    assert_eq!(forget["logs"][0]["kept"], 4, "{forget}"); // s3 (chain start), s4, s5, s6
    assert_eq!(forget["logs"][0]["removed"], 2);
    env.ok(&["check", "--read-data"]);
    env.ok(&["log", "verify", "--read-data"]);
    let after = env.path("r-after-prune");
    env.ok(&[
        "restore",
        "--account",
        "files",
        "--latest",
        "--target",
        s(&after),
        "--apply-command",
        APPLY,
    ]);
    assert!(
        std::fs::read_to_string(after.join("state.txt"))
            .unwrap()
            .ends_with(&seg(6))
    );
}

#[test]
fn gaps_and_corrupt_segments_stop_at_the_last_reachable_point() {
    let env = Env::with_repo();
    let db = env.path("db");
    let segs = env.path("segs");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::create_dir_all(&segs).unwrap();
    std::fs::write(db.join("state.txt"), b"base\n").unwrap();
    env.ok(&["backup", s(&db), "--account", "files"]);
    push(&env, &segs, "s1", &pseudo(1, 10_000));
    push(&env, &segs, "s2", &pseudo(2, 2_000_000));
    push(&env, &segs, "s3", &pseudo(3, 10_000));
    let t = now();

    // Corrupt the pack holding s2 (the largest): restore stops after s1.
    let mut packs: Vec<(PathBuf, u64)> = Vec::new();
    for fan in std::fs::read_dir(env.repo().join("data")).unwrap() {
        for p in std::fs::read_dir(fan.unwrap().path()).unwrap() {
            let p = p.unwrap().path();
            let len = std::fs::metadata(&p).unwrap().len();
            packs.push((p, len));
        }
    }
    packs.sort_by_key(|(_, l)| std::cmp::Reverse(*l));
    let (victim, len) = packs[0].clone();
    let original = std::fs::read(&victim).unwrap();
    let mut bad = original.clone();
    bad[(len / 2) as usize] ^= 0xff;
    std::fs::write(&victim, &bad).unwrap();
    let out = restore_until(&env, &t, &env.path("r1"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("segment s2") && err.contains("last point that can be reached is segment s1"),
        "{err}"
    );
    let verify = env.run(&["log", "verify", "--read-data"]);
    assert_eq!(verify.status.code(), Some(1));
    std::fs::write(&victim, &original).unwrap();

    // Remove s2's manifest: a gap.
    let stream_dir = std::fs::read_dir(env.repo().join("logs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let s2 = std::fs::read_dir(&stream_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("0000000000000001-")
        })
        .unwrap();
    std::fs::remove_file(&s2).unwrap();
    let out = restore_until(&env, &t, &env.path("r2"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("breaks before segment s3") && err.contains("segment s1 of stream journal"),
        "{err}"
    );
    let check = env.run(&["check", "--json"]);
    assert_eq!(check.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(report["damaged_logs"][0]["segment"], "s3", "{report}");
    // Before the gap still works.
    let early = env.path("r3");
    let out = env.run(&[
        "restore",
        "--account",
        "files",
        "--until",
        &t,
        "--target",
        s(&early),
        "--stream",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("log stream nope"));
}

#[test]
fn a_disabled_account_takes_no_log_segments() {
    let env = Env::with_repo();
    env.ok(&["account", "disable", "files"]);
    let segs = env.path("segs");
    std::fs::create_dir_all(&segs).unwrap();
    std::fs::write(segs.join("s1"), b"x").unwrap();
    let out = env.run(&[
        "log",
        "push",
        "--account",
        "files",
        "--stream",
        "journal",
        s(&segs.join("s1")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("\"files\" is disabled"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------------------
// PostgreSQL

fn pg_bin() -> PathBuf {
    for dir in [
        "/usr/lib/postgresql/15/bin",
        "/usr/lib/postgresql/16/bin",
        "/usr/lib/postgresql/17/bin",
    ] {
        if Path::new(dir).join("postgres").exists() {
            return PathBuf::from(dir);
        }
    }
    panic!(
        "PostgreSQL server binaries are missing (looked in /usr/lib/postgresql/*/bin); \
         scripts/test.sh installs the postgresql-15 package"
    );
}

fn is_root() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions.
    unsafe {
        libc::geteuid() == 0
    }
}

struct Pg {
    work: PathBuf,
    port: u16,
    bin: PathBuf,
    env_prefix: String,
    cairn: PathBuf,
}

impl Pg {
    /// A command run as the database's unprivileged user.
    fn cmd(&self, program: &Path) -> std::process::Command {
        let mut c = if is_root() {
            let mut c = std::process::Command::new("setpriv");
            c.args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ]);
            c.arg(program);
            c
        } else {
            std::process::Command::new(program)
        };
        c.env("HOME", self.work.join("home"))
            .env("PGHOST", &self.work)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres")
            .env("LC_ALL", "C");
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .cmd(&self.bin.join(program))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}",
            stderr(&out),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn sql(&self, query: &str) -> String {
        self.run(
            "psql",
            &[
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                "postgres",
                "-c",
                query,
            ],
        )
        .trim()
        .to_string()
    }

    fn cairn(&self, args: &[&str]) -> String {
        let mut c = self.cmd(&self.cairn);
        c.env("CAIRN_REPOSITORY", self.work.join("repo"))
            .env("CAIRN_PASSWORD_FILE", self.work.join("password"))
            .env("CAIRN_CACHE_DIR", self.work.join("cache"));
        let out = c.args(args).output().unwrap();
        assert!(out.status.success(), "cairn {args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn start(&self, data: &Path) {
        let out = self
            .cmd(&self.bin.join("pg_ctl"))
            .args([
                "-D",
                s(data),
                "-l",
                s(&self.work.join("pg.log")),
                "-w",
                "-t",
                "60",
                "start",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}\nserver log:\n{}",
            stderr(&out),
            self.log()
        );
    }

    fn stop(&self, data: &Path) {
        self.run("pg_ctl", &["-D", s(data), "-m", "fast", "-w", "stop"]);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.work.join("pg.log")).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn postgresql_archives_into_cairn_and_recovers_to_a_point_in_time() {
    let bin = pg_bin();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().to_path_buf();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The database user must be able to run cairn and reach the repository.
    let cairn = work.join("cairn");
    std::fs::copy(cairn_e2e::cairn_bin(), &cairn).unwrap();
    std::fs::write(work.join("password"), "pg archive password\n").unwrap();
    std::fs::create_dir_all(work.join("home")).unwrap();
    if is_root() {
        let status = std::process::Command::new("chown")
            .args(["-R", "postgres:postgres", s(&work)])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let env_prefix = format!(
        "CAIRN_REPOSITORY={} CAIRN_PASSWORD_FILE={} CAIRN_CACHE_DIR={}",
        work.join("repo").display(),
        work.join("password").display(),
        work.join("cache").display()
    );
    let pg = Pg {
        work: work.clone(),
        port: free_port(),
        bin,
        env_prefix,
        cairn: cairn.clone(),
    };
    pg.cairn(&["init", "--kdf-memory-kib", "256", "--pack-size", "1MiB"]);

    // 1. A cluster archiving its WAL with `cairn log push`.
    let data = work.join("data");
    pg.run(
        "initdb",
        &[
            "-D",
            s(&data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ],
    );
    let archive = format!(
        "{} {} log push --account pg --stream main %p",
        pg.env_prefix,
        cairn.display()
    );
    std::fs::write(
        data.join("postgresql.auto.conf"),
        format!(
            "port = {}\nlisten_addresses = ''\nunix_socket_directories = '{}'\narchive_mode = on\narchive_command = '{archive}'\nfsync = off\n",
            pg.port,
            work.display()
        ),
    )
    .unwrap();
    pg.start(&data);
    pg.sql("CREATE TABLE t (id int PRIMARY KEY, note text, at timestamptz DEFAULT now())");

    // 2. A base backup, backed up into the account.
    let base = work.join("base");
    pg.run(
        "pg_basebackup",
        &["-D", s(&base), "-X", "stream", "-c", "fast", "--no-sync"],
    );
    pg.cairn(&["backup", s(&base), "--account", "pg"]);

    // 3. Rows in separate transactions around a recorded time; WAL switches
    //    so every segment is archived.
    pg.sql("INSERT INTO t (id, note) VALUES (1, 'before')");
    pg.sql("INSERT INTO t (id, note) VALUES (2, 'before')");
    pg.sql("SELECT pg_switch_wal()");
    std::thread::sleep(Duration::from_millis(1100));
    let target = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_millis(1100));
    pg.sql("INSERT INTO t (id, note) VALUES (3, 'after')");
    pg.sql("INSERT INTO t (id, note) VALUES (4, 'after')");
    let last = pg.sql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    pg.sql("SELECT pg_switch_wal()");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let archived = pg.sql(
            "SELECT coalesce(last_archived_wal, '') || ' ' || failed_count FROM pg_stat_archiver",
        );
        if archived
            .split(' ')
            .next()
            .is_some_and(|w| !w.is_empty() && w >= last.as_str())
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "WAL not archived: {archived}\n{}",
            pg.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let listed = pg.cairn(&["log", "list", "--account", "pg"]);
    assert!(listed.contains(&last), "{listed}");
    pg.cairn(&["log", "verify", "--read-data"]);

    // 4. The data directory is lost; restore to the recorded time.
    pg.stop(&data);
    std::fs::remove_dir_all(&data).unwrap();
    pg.cairn(&[
        "restore",
        "--account",
        "pg",
        "--until",
        &target.to_string(),
        "--target",
        s(&data),
    ]);
    // The restored data directory has the mode (and, as root, the owner)
    // PostgreSQL demands, as it was backed up: nothing to fix by hand.
    let md = std::fs::metadata(&data).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o700);
    assert_eq!(
        md.uid(),
        std::fs::metadata(&base).unwrap().uid(),
        "the owner of the backed-up directory"
    );
    let restore_command = format!(
        "{} {} log get --account pg --stream main %f %p",
        pg.env_prefix,
        cairn.display()
    );
    let pg_time = target
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m-%d %H:%M:%S%.6f+00:00")
        .to_string();
    let mut conf = std::fs::read_to_string(data.join("postgresql.auto.conf")).unwrap();
    conf.push_str(&format!(
        "archive_mode = off\nrestore_command = '{restore_command}'\nrecovery_target_time = '{pg_time}'\nrecovery_target_action = 'promote'\n"
    ));
    std::fs::write(data.join("postgresql.auto.conf"), conf).unwrap();
    std::fs::write(data.join("recovery.signal"), b"").unwrap();
    if is_root() {
        // The two files written above, as root.
        let status = std::process::Command::new("chown")
            .args([
                "postgres:postgres",
                s(&data.join("postgresql.auto.conf")),
                s(&data.join("recovery.signal")),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }

    // 5. Exactly the rows committed before the time are there.
    pg.start(&data);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while pg.sql("SELECT pg_is_in_recovery()") != "f" {
        assert!(
            std::time::Instant::now() < deadline,
            "recovery did not finish:\n{}",
            pg.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let rows = pg.sql("SELECT string_agg(id::text || ':' || note, ',' ORDER BY id) FROM t");
    pg.stop(&data);
    assert_eq!(rows, "1:before,2:before", "recovered rows\n{}", pg.log());
    assert!(
        pg.log().contains("recovery stopping before commit"),
        "{}",
        pg.log()
    );
}

#[test]
fn a_push_killed_before_its_manifest_leaves_no_segment_and_the_retry_succeeds() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::with_repo();
    let segs = env.path("segs");
    std::fs::create_dir_all(&segs).unwrap();
    let f = segs.join("000000010000000000000001");
    std::fs::write(&f, pseudo(9, 3_000_000)).unwrap();
    let args = [
        "log",
        "push",
        "--account",
        "files",
        "--stream",
        "journal",
        s(&f),
    ];
    let out = env
        .cairn()
        .env("CAIRN_FAILPOINT", "backup-after-packs")
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9));
    assert!(env.json(&["log", "list"]).as_array().unwrap().is_empty());
    env.ok(&["check", "--read-data"]);
    // The database retries its archive command.
    let retried = env.json(&args);
    assert_eq!(retried[0]["stored"], true);
    assert_eq!(retried[0]["seq"], 0);
    let got = env.path("got");
    env.ok(&[
        "log",
        "get",
        "--account",
        "files",
        "--stream",
        "journal",
        "000000010000000000000001",
        s(&got),
    ]);
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&f).unwrap());
    env.ok(&["check", "--read-data"]);
}
