//! End-to-end: the backup service as a real process. It takes scheduled
//! snapshots with hooks around them, verifies each one, notifies through a
//! command and a webhook on loopback, stops cleanly on SIGTERM (also in the
//! middle of a backup) and keeps its schedule across a restart.

// Tests report failures by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_e2e::{Env, TreeSpec, generate_tree};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A webhook receiver on loopback: every POST body it got.
struct Webhook {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let b = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let mut reader = BufReader::new(&stream);
                let mut length = 0usize;
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                assert!(request_line.starts_with("POST /hook "), "{request_line}");
                b.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                (&stream)
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .unwrap();
            }
        });
        Webhook { url, bodies }
    }

    fn kinds(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|v| v["kind"].as_str().unwrap().to_string())
            .collect()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Events the notify command appended (one JSON document per line).
fn events(path: &Path) -> Vec<Value> {
    lines(path)
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `cairn queue list --all --json`, or null while it cannot answer (the
/// service is starting and holds the state, but is not listening yet).
fn queue(env: &Env, config: &Path) -> Value {
    let out = env.run(&["queue", "list", "--all", "--json", "--config", s(config)]);
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn snapshots(env: &Env) -> Vec<Value> {
    env.json(&["snapshots"]).as_array().unwrap().clone()
}

struct Service {
    child: Child,
    log: PathBuf,
}

impl Service {
    fn start(env: &Env, config: &Path, n: u32) -> Service {
        let log = env.path(&format!("service-{n}.log"));
        let child = env
            .cairn()
            .args(["service", "run", "--config", s(config)])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Service { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the service must exit 0 within a minute.
    fn stop(mut self) -> String {
        let pid = i32::try_from(self.child.id()).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.log();
                assert!(status.success(), "service exited with {status}:\n{log}");
                return log;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the service did not stop within a minute:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A service config for `env`, notifying the events file and `hook`;
/// `top` holds more top-level keys, `jobs` the job tables.
fn write_config(env: &Env, hook: &Webhook, top: &str, jobs: &str) -> PathBuf {
    let config = env.path("service.toml");
    let text = format!(
        r#"{top}
repository = "{repo}"
password-file = "{password}"
cache-dir = "{cache}"
state-dir = "{state}"

[notify]
commands = ["cat >> {events}; echo >> {events}"]
webhook = "{url}"
timeout = "20s"

{jobs}
"#,
        repo = env.repo_location(),
        password = s(&env.path("password")),
        cache = s(&env.path("cache")),
        state = s(&env.path("state")),
        events = s(&env.path("events.jsonl")),
        url = hook.url,
    );
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn scheduled_snapshots_hooks_verification_notifications_and_restart() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(11));
    std::fs::write(src.join("db.sqlite"), b"pretend database").unwrap();
    let hooks = env.path("hooks.log");
    let hook = Webhook::start();
    let interval = 8;
    let config = write_config(
        &env,
        &hook,
        "",
        &format!(
            r#"
[[backup]]
name = "files"
account = "files"
paths = ["{src}"]
interval = "{interval}s"
before = "echo before $CAIRN_JOB >> {hooks}"
after = "echo after $CAIRN_BACKUP_STATUS $CAIRN_SNAPSHOT >> {hooks}"
verify = "test -s db.sqlite && echo checked >> {hooks}"

[[backup]]
name = "mail"
account = "mail"
paths = ["/var/spool/nothing-here"]
enabled = false
"#,
            src = s(&src),
            hooks = s(&hooks),
        ),
    );

    let service = Service::start(&env, &config, 1);
    // Two runs done, seen through the control socket while the service runs.
    wait_until("two snapshots", Duration::from_secs(90), || {
        let out = queue(&env, &config);
        out["via"] == "service"
            && out["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["job"] == "files" && i["state"] == "done")
                .count()
                >= 2
    });
    let log = service.stop();
    assert!(log.contains("service stopped"), "{log}");

    let snaps = snapshots(&env);
    assert_eq!(snaps.len(), 2, "{snaps:#?}");
    for snap in &snaps {
        assert_eq!(snap["status"], "verified", "{snap:#}");
        assert_eq!(snap["account"], "files");
    }
    // Hooks in order around each backup, the verify command after it.
    let ids: Vec<&str> = snaps.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(
        lines(&hooks),
        [
            "before files".to_string(),
            format!("after ok {}", ids[0]),
            "checked".into(),
            "before files".into(),
            format!("after ok {}", ids[1]),
            "checked".into(),
        ]
    );
    let t0: jiff::Timestamp = snaps[0]["time"].as_str().unwrap().parse().unwrap();
    let t1: jiff::Timestamp = snaps[1]["time"].as_str().unwrap().parse().unwrap();
    // The schedule spaces the runs' starts; a snapshot's time is taken
    // once its run has opened the repository and taken its lock, which
    // varies by a fraction of a second from run to run.
    assert!(
        t1.duration_since(t0).as_secs_f64() >= interval as f64 - 1.0,
        "the second snapshot came {}s after the first",
        t1.duration_since(t0).as_secs_f64()
    );

    // Restarted: no snapshot before the interval has elapsed since the
    // last one, then exactly one.
    let service = Service::start(&env, &config, 2);
    let due = t1 + jiff::SignedDuration::from_secs(interval);
    let quiet_until = due - jiff::SignedDuration::from_secs(2);
    while jiff::Timestamp::now() < quiet_until {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        lines(&hooks).len(),
        6,
        "a backup ran before its interval elapsed:\n{}",
        service.log()
    );
    wait_until("the third snapshot", Duration::from_secs(60), || {
        lines(&hooks).len() >= 9
    });
    service.stop();
    let snaps = snapshots(&env);
    assert_eq!(snaps.len(), 3);
    let t2: jiff::Timestamp = snaps[2]["time"].as_str().unwrap().parse().unwrap();
    assert!(t2 >= due, "third snapshot at {t2}, due at {due}");

    // The disabled job: never run, reminded (once per 24 h, so once per
    // run here: the reminder time is kept across the restart).
    let ev = events(&env.path("events.jsonl"));
    let reminders: Vec<&Value> = ev
        .iter()
        .filter(|e| e["kind"] == "backups_disabled")
        .collect();
    assert_eq!(reminders.len(), 1, "{ev:#?}");
    assert_eq!(reminders[0]["job"], "mail");
    assert_eq!(reminders[0]["account"], "mail");
    assert!(reminders[0]["time"].is_string() && reminders[0]["message"].is_string());
    assert_eq!(ev.len(), 1, "nothing else went wrong: {ev:#?}");
    wait_until("the webhook", Duration::from_secs(10), || {
        !hook.kinds().is_empty()
    });
    assert_eq!(hook.kinds(), ["backups_disabled"]);

    // With no service running, the queue is read from the state file.
    let out = env.json(&["queue", "list", "--all", "--config", s(&config)]);
    assert_eq!(out["via"], "state");
    assert_eq!(out["items"].as_array().unwrap().len(), 3);
    // Each job's schedule state, as persisted.
    let status = env.json(&["service", "status", "--config", s(&config)]);
    let jobs = status["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    let files = &jobs[0];
    assert_eq!(files["name"], "files");
    assert_eq!(files["state"]["last_ok"], true);
    assert_eq!(files["state"]["last_snapshot"], snaps[2]["id"]);
    assert_eq!(files["state"]["last_verified"], snaps[2]["id"]);
    let next: jiff::Timestamp = files["next_due"].as_str().unwrap().parse().unwrap();
    assert!(next > t2, "next due {next}, last snapshot {t2}");
    assert_eq!(jobs[1]["name"], "mail");
    assert_eq!(jobs[1]["enabled"], false);
    assert!(jobs[1]["next_due"].is_null());
    assert!(jobs[1]["state"]["last_reminder"].is_string());
}

#[test]
fn failed_verification_and_failed_hooks_notify_and_mark_the_snapshot() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(12));
    let hooks = env.path("hooks.log");
    let hook = Webhook::start();
    let config = write_config(
        &env,
        &hook,
        "",
        &format!(
            r#"
[[backup]]
name = "calendar"
account = "calendar"
paths = ["{src}"]
verify = "echo 'integrity check: page 7 is corrupt' >&2; exit 1"

[[backup]]
name = "directory"
account = "directory"
paths = ["{src}"]
before = "echo 'export failed: disk full' >&2; exit 7"
after = "echo after $CAIRN_BACKUP_STATUS >> {hooks}"
"#,
            src = s(&src),
            hooks = s(&hooks),
        ),
    );
    let service = Service::start(&env, &config, 1);
    let events_file = env.path("events.jsonl");
    wait_until("both jobs' notifications", Duration::from_secs(90), || {
        let kinds: Vec<Value> = events(&events_file)
            .iter()
            .map(|e| e["kind"].clone())
            .collect();
        kinds.contains(&"verification_failed".into()) && kinds.contains(&"hook_failed".into())
    });
    service.stop();

    // The calendar snapshot exists but is marked failed.
    let snaps = snapshots(&env);
    assert_eq!(snaps.len(), 1, "only the calendar job took a snapshot");
    assert_eq!(snaps[0]["account"], "calendar");
    assert_eq!(snaps[0]["status"], "failed");
    let id = snaps[0]["id"].as_str().unwrap();

    let ev = events(&events_file);
    let vf = ev
        .iter()
        .find(|e| e["kind"] == "verification_failed")
        .unwrap();
    assert_eq!(vf["job"], "calendar");
    assert_eq!(vf["account"], "calendar");
    assert_eq!(vf["snapshot"], id);
    assert!(
        vf["message"]
            .as_str()
            .unwrap()
            .contains("page 7 is corrupt"),
        "{vf:#}"
    );
    // The failed export aborted its backup and said why; `after` still ran.
    let hf = ev.iter().find(|e| e["kind"] == "hook_failed").unwrap();
    assert_eq!(hf["job"], "directory");
    assert!(
        hf["message"].as_str().unwrap().contains("disk full"),
        "{hf:#}"
    );
    assert_eq!(lines(&hooks), ["after skipped"]);
    wait_until("the webhook", Duration::from_secs(10), || {
        hook.kinds().contains(&"verification_failed".to_string())
    });

    // The verdict is in the repository: `cairn verify` by hand agrees, and
    // a passing command marks the snapshot verified again.
    let out = env.run(&["verify", id, "--command", "exit 1"]);
    assert_eq!(out.status.code(), Some(1));
    env.ok(&["verify", id, "--command", "true"]);
    assert_eq!(snapshots(&env)[0]["status"], "verified");
}

#[test]
fn sigterm_in_the_middle_of_a_backup_stops_at_a_safe_point() {
    let env = Env::with_repo();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    // Large enough that the backup is still reading when the signal comes.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for i in 1 2 3 4; do head -c 160M /dev/urandom > {}/big$i; done",
            s(&src)
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let hooks = env.path("hooks.log");
    let hook = Webhook::start();
    let config = write_config(
        &env,
        &hook,
        "",
        &format!(
            r#"
[[backup]]
name = "bulk"
paths = ["{src}"]
after = "echo after $CAIRN_BACKUP_STATUS >> {hooks}"
"#,
            src = s(&src),
            hooks = s(&hooks),
        ),
    );
    let service = Service::start(&env, &config, 1);
    wait_until("the backup to be reading", Duration::from_secs(60), || {
        queue(&env, &config)["items"][0]["progress"]["bytes"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });
    let log = service.stop();
    assert!(log.contains("safe point"), "{log}");
    assert_eq!(lines(&hooks), ["after interrupted"], "{log}");
    assert!(
        snapshots(&env).is_empty(),
        "no snapshot from a stopped backup"
    );
    env.ok(&["check", "--read-data"]);
    let out = env.json(&["queue", "list", "--all", "--config", s(&config)]);
    assert_eq!(out["items"][0]["state"], "interrupted", "{out:#}");
    assert!(events(&env.path("events.jsonl")).is_empty());

    // At the next start the interrupted run is due at once, and reuses
    // what the stopped one stored.
    let service = Service::start(&env, &config, 2);
    wait_until(
        "the backup and its verification",
        Duration::from_secs(120),
        || queue(&env, &config)["items"][1]["state"] == "done",
    );
    service.stop();
    assert!(lines(&hooks)[1].starts_with("after ok"));
    let snaps = snapshots(&env);
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["status"], "verified");
}

#[test]
fn bad_configs_are_clear_errors() {
    let env = Env::new();
    let config = env.path("service.toml");
    std::fs::write(
        &config,
        "repository = \"/r\"\npassword-file = \"/p\"\nstate-dir = \"/s\"\n\n[[backup]]\nname = \"x\"\npaths = [\"/a\"]\nintervall = \"1h\"\n",
    )
    .unwrap();
    let out = env.run(&["service", "run", "--config", s(&config)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 8") && err.contains("intervall"), "{err}");

    std::fs::write(
        &config,
        format!(
            "repository = \"/r\"\npassword-file = \"{}\"\nstate-dir = \"{}\"\n",
            s(&env.path("no-such-password")),
            s(&env.path("state"))
        ),
    )
    .unwrap();
    let out = env.run(&["service", "run", "--config", s(&config)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("password file"), "{err}");
    let out = env.run(&["service", "run-now", "nope", "--config", s(&config)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no job"));
}

#[test]
fn verify_finds_corrupt_data_and_retention_skips_failed_snapshots() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(13));
    let packs = env.repo().join("data");
    let pack_files = || -> std::collections::BTreeSet<PathBuf> {
        cairn_e2e::walk(&packs)
            .into_iter()
            .map(|p| packs.join(p))
            .filter(|p| p.is_file())
            .collect()
    };
    env.ok(&["backup", s(&src)]);
    let before = pack_files();
    std::fs::write(src.join("new-data"), vec![7u8; 300_000]).unwrap();
    env.ok(&["backup", s(&src)]);
    let snaps = snapshots(&env);
    let (old, new) = (
        snaps[0]["id"].as_str().unwrap().to_string(),
        snaps[1]["id"].as_str().unwrap().to_string(),
    );
    // Damage the first blob of every pack the second backup wrote: they
    // hold only its data.
    let added: Vec<PathBuf> = pack_files().difference(&before).cloned().collect();
    assert!(!added.is_empty());
    for pack in added {
        let mut bytes = std::fs::read(&pack).unwrap();
        bytes[0] ^= 0x55;
        std::fs::write(&pack, bytes).unwrap();
    }

    let v = env.json(&["verify", &old]);
    assert_eq!(v["verdict"], "verified");
    let out = env.run(&["verify", &new, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "failed");
    assert!(
        v["problems"][0].as_str().unwrap().contains("corrupt"),
        "{v:#}"
    );
    let statuses: Vec<Value> = snapshots(&env)
        .iter()
        .map(|s| s["status"].clone())
        .collect();
    assert_eq!(statuses, ["verified", "failed"]);

    // Retention: the failed snapshot does not count as the newest good one
    // and is removed; the verified one is kept.
    let policy = env.path("policy.toml");
    std::fs::write(&policy, "[default]\nkeep-last = 1\n").unwrap();
    let plan = env.json(&["forget", "--policy", s(&policy)]);
    assert_eq!(plan["removed"], 1, "{plan:#}");
    let left: Vec<Value> = snapshots(&env).iter().map(|s| s["id"].clone()).collect();
    assert_eq!(left, [Value::from(old.as_str())]);
    // The removed snapshot's verification records went with it.
    let records = std::fs::read_dir(env.repo().join("verifications"))
        .unwrap()
        .count();
    assert_eq!(records, 1);
}

#[test]
fn a_lock_held_too_long_notifies() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(14));
    env.ok(&["backup", s(&src)]);
    std::fs::write(src.join("more"), b"more data").unwrap();
    env.ok(&["backup", s(&src)]);
    let policy = env.path("policy.toml");
    std::fs::write(&policy, "[default]\nkeep-last = 1\n").unwrap();
    env.ok(&["forget", "--policy", s(&policy)]);
    // A prune that pauses while it holds the exclusive lock.
    let mut prune = env
        .cairn()
        .env("CAIRN_FAILPOINT", "prune-after-index-write")
        .env("CAIRN_FAILPOINT_PAUSE_MS", "10000")
        .args(["prune", "--max-unused", "0%"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.wait_for_lock();
    let hook = Webhook::start();
    let config = write_config(
        &env,
        &hook,
        "lock-wait = \"2s\"",
        &format!("[[backup]]\nname = \"files\"\npaths = [\"{}\"]\n", s(&src)),
    );
    let service = Service::start(&env, &config, 1);
    let events_file = env.path("events.jsonl");
    wait_until(
        "the lock_held notification",
        Duration::from_secs(60),
        || {
            events(&events_file)
                .iter()
                .any(|e| e["kind"] == "lock_held")
        },
    );
    service.stop();
    let ev = events(&events_file);
    let held = ev.iter().find(|e| e["kind"] == "lock_held").unwrap();
    assert_eq!(held["job"], "files");
    assert!(
        held["message"].as_str().unwrap().contains("locked"),
        "{held:#}"
    );
    assert!(prune.wait().unwrap().success());
    let out = env.json(&["queue", "list", "--all", "--config", s(&config)]);
    assert_eq!(out["items"][0]["state"], "failed", "{out:#}");
}

#[test]
fn retention_then_offsite_sync_through_the_service() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(15));
    // Two older snapshots that the policy will forget.
    env.ok(&["backup", s(&src), "--time", "2026-01-01T00:00:00Z"]);
    env.ok(&["backup", s(&src), "--time", "2026-02-01T00:00:00Z"]);
    let policy = env.path("policy.toml");
    std::fs::write(&policy, "[default]\nkeep-last = 1\n").unwrap();
    let offsite = env.path("offsite");
    let not_a_dir = env.path("not-a-dir");
    std::fs::write(&not_a_dir, b"a file").unwrap();
    let hook = Webhook::start();
    let config = write_config(
        &env,
        &hook,
        &format!("policy = \"{}\"", s(&policy)),
        &format!(
            r#"
[[backup]]
name = "files"
paths = ["{src}"]

[retention]
interval = "1d"

[[sync]]
name = "offsite"
to = "{offsite}"
delete = true

[[sync]]
name = "broken"
to = "{broken}"
"#,
            src = s(&src),
            offsite = s(&offsite),
            broken = s(&not_a_dir.join("repo")),
        ),
    );

    let service = Service::start(&env, &config, 1);
    let events_file = env.path("events.jsonl");
    wait_until("every job to run", Duration::from_secs(120), || {
        let out = queue(&env, &config);
        out["items"].as_array().is_some_and(|a| {
            a.len() == 4
                && a.iter()
                    .all(|i| i["state"] != "pending" && i["state"] != "running")
        })
    });
    let out = env.json(&["queue", "list", "--all", "--config", s(&config)]);
    service.stop();
    let items = out["items"].as_array().unwrap();
    let jobs: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i["job"].as_str().unwrap(), i["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        jobs,
        [
            ("files", "done"),
            ("retention", "done"),
            ("offsite", "done"),
            ("broken", "failed")
        ],
        "{out:#}"
    );
    assert!(
        items[1]["message"].as_str().unwrap().contains("2 removed"),
        "{out:#}"
    );

    // Retention kept the new, verified snapshot; the offsite copy, pushed
    // after it, holds exactly that one and checks clean.
    let local = snapshots(&env);
    assert_eq!(local.len(), 1);
    assert_eq!(local[0]["status"], "verified");
    let remote = env
        .cairn()
        .env("CAIRN_REPOSITORY", &offsite)
        .args(["snapshots", "--json"])
        .output()
        .unwrap();
    assert!(remote.status.success());
    let remote: Value = serde_json::from_slice(&remote.stdout).unwrap();
    assert_eq!(remote.as_array().unwrap().len(), 1);
    assert_eq!(remote[0]["id"], local[0]["id"]);
    assert_eq!(
        remote[0]["status"], "verified",
        "verification records are replicated"
    );
    let check = env
        .cairn()
        .env("CAIRN_REPOSITORY", &offsite)
        .args(["check", "--read-data"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The broken destination was reported.
    let ev = events(&events_file);
    let failed: Vec<&Value> = ev.iter().filter(|e| e["kind"] == "sync_failed").collect();
    assert_eq!(failed.len(), 1, "{ev:#?}");
    assert_eq!(failed[0]["job"], "broken");
    assert_eq!(ev.len(), 1, "{ev:#?}");
}

/// An HTTP server on loopback that counts `GET /ping` requests (a dead
/// man's switch monitor), and one that accepts connections and never
/// answers (a dead webhook).
fn ping_counter() -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ping", listener.local_addr().unwrap());
    let count = Arc::new(Mutex::new(0usize));
    let c = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(&stream);
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            if request_line.starts_with("GET /ping ") {
                *c.lock().unwrap() += 1;
            }
            let _ = (&stream)
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, count)
}

#[test]
fn a_dead_webhook_stalls_nothing_heartbeats_ping_and_status_only_reads() {
    let env = Env::with_repo();
    let src = env.path("src");
    generate_tree(&src, TreeSpec::tiny(3));
    let (heartbeat, pings) = ping_counter();
    // Accepts, never answers: every delivery waits out its timeout.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/hook", dead.local_addr().unwrap());
    let config = env.path("service.toml");
    std::fs::write(
        &config,
        format!(
            r#"
repository = "{repo}"
password-file = "{password}"
cache-dir = "{cache}"
state-dir = "{state}"

[notify]
webhook = "{dead_url}"
timeout = "60s"
on-success = true
heartbeat = "{heartbeat}"

[[backup]]
name = "files"
account = "files"
paths = ["{src}"]
interval = "1s"
"#,
            repo = env.repo_location(),
            password = s(&env.path("password")),
            cache = s(&env.path("cache")),
            state = s(&env.path("state")),
            src = s(&src),
        ),
    )
    .unwrap();
    // Status before any service ran: it reads, and creates nothing.
    let status = env.json(&["service", "status", "--config", s(&config)]);
    assert_eq!(status["via"], "state");
    assert_eq!(status["jobs"][0]["name"], "files", "{status}");
    assert!(
        !env.path("state").exists(),
        "status created the state directory"
    );

    let service = Service::start(&env, &config, 1);
    // Were delivery part of the job, each success would wait out three
    // 60 s attempts on the dead webhook before the next backup.
    wait_until("three snapshots", Duration::from_secs(45), || {
        snapshots(&env).len() >= 3
    });
    wait_until("heartbeat pings", Duration::from_secs(20), || {
        *pings.lock().unwrap() >= 2
    });
    let log = service.stop();
    assert!(
        log.contains("notification backup_succeeded for files"),
        "{log}"
    );
    drop(dead);
}
