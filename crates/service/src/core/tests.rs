#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::control::Control;
use crate::runner::JobResult;
use jiff::SignedDuration;
use std::path::Path;
use std::time::Duration;

/// A clock the test moves.
#[derive(Debug)]
struct FakeClock(Mutex<Timestamp>);

impl FakeClock {
    fn at(t: &str) -> Arc<FakeClock> {
        Arc::new(FakeClock(Mutex::new(t.parse().unwrap())))
    }
    fn advance(&self, secs: i64) {
        let mut t = lock(&self.0);
        *t = t.checked_add(SignedDuration::from_secs(secs)).unwrap();
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        *lock(&self.0)
    }
}

type Behaviour = Box<dyn Fn(&str, &JobContext<'_>) -> JobResult + Send + Sync>;

/// Records which jobs ran; answers as `behaviour` says.
struct FakeExecutor {
    ran: Mutex<Vec<String>>,
    behaviour: Behaviour,
}

impl FakeExecutor {
    fn new(
        behaviour: impl Fn(&str, &JobContext<'_>) -> JobResult + Send + Sync + 'static,
    ) -> Arc<FakeExecutor> {
        Arc::new(FakeExecutor {
            ran: Mutex::new(Vec::new()),
            behaviour: Box::new(behaviour),
        })
    }
    /// Every job succeeds; backups take a verified snapshot.
    fn ok() -> Arc<FakeExecutor> {
        FakeExecutor::new(|job, _| ok_result(job, Some(true)))
    }
    fn ran(&self) -> Vec<String> {
        lock(&self.ran).clone()
    }
}

fn ok_result(job: &str, verified: Option<bool>) -> JobResult {
    let snapshot = (job != RETENTION && job != "offsite").then(|| format!("snap-of-{job}"));
    JobResult {
        ok: true,
        message: "fine".into(),
        verified: snapshot.as_ref().and(verified),
        snapshot,
        ..JobResult::default()
    }
}

impl Executor for FakeExecutor {
    fn run(&self, _: &Config, name: &str, _: JobRef<'_>, ctx: &JobContext<'_>) -> JobResult {
        lock(&self.ran).push(name.to_string());
        (self.behaviour)(name, ctx)
    }
}

#[derive(Debug, Default)]
struct Inbox(Mutex<Vec<Event>>);

impl Notifier for Inbox {
    fn notify(&self, event: &Event) {
        lock(&self.0).push(event.clone());
    }
}

impl Inbox {
    fn kinds(&self) -> Vec<EventKind> {
        lock(&self.0).iter().map(|e| e.kind).collect()
    }
}

fn config(dir: &Path, extra: &str) -> Config {
    Config::parse(&format!(
        r#"
repository = "/srv/repo"
password-file = "/etc/cairn/password"
state-dir = "{}"
policy = "/etc/cairn/retention.toml"

[[backup]]
name = "db"
paths = ["/var/lib/db"]
interval = "6h"
{extra}
"#,
        dir.display()
    ))
    .unwrap()
}

struct World {
    dir: tempfile::TempDir,
    clock: Arc<FakeClock>,
    exec: Arc<FakeExecutor>,
    inbox: Arc<Inbox>,
    extra: String,
}

impl World {
    fn new(extra: &str, exec: Arc<FakeExecutor>) -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
            clock: FakeClock::at("2026-03-01T00:00:00Z"),
            exec,
            inbox: Arc::new(Inbox::default()),
            extra: extra.to_string(),
        }
    }

    /// Start the service's core (again) on the same state.
    fn start(&self) -> Core {
        let config = config(self.dir.path(), &self.extra);
        let state = State::open(&config.state_dir).unwrap();
        Core::new(
            config,
            state,
            self.exec.clone(),
            self.inbox.clone(),
            self.clock.clone(),
        )
        .unwrap()
    }
}

/// Tick, then run everything queued; the jobs that ran.
fn cycle(core: &Core) -> Vec<String> {
    core.tick().unwrap();
    let mut out = Vec::new();
    while let Some(item) = core.run_next().unwrap() {
        out.push(item.job);
    }
    out
}

const HOUR: i64 = 3600;

#[test]
fn the_interval_holds_across_restarts() {
    let w = World::new("", FakeExecutor::ok());
    let core = w.start();
    // Never ran: due at once.
    let t0 = w.clock.now();
    assert_eq!(core.status().unwrap()[0].next_due, Some(t0));
    assert_eq!(cycle(&core), ["db"]);
    let due = t0.checked_add(SignedDuration::from_secs(6 * HOUR)).unwrap();
    let status = core.status().unwrap();
    assert_eq!(status[0].next_due, Some(due));
    assert_eq!(status[0].state.next_due, Some(due), "persisted");
    w.clock.advance(HOUR);
    assert!(cycle(&core).is_empty());
    drop(core);

    // Restarted two hours after the snapshot: not due yet.
    w.clock.advance(HOUR);
    let core = w.start();
    assert!(cycle(&core).is_empty());
    w.clock.advance(4 * HOUR - 1);
    assert!(cycle(&core).is_empty());
    w.clock.advance(1);
    assert_eq!(cycle(&core), ["db"]);
    let st = core.state().job("db").unwrap();
    assert_eq!(st.last_snapshot.as_deref(), Some("snap-of-db"));
    assert_eq!(st.last_verified.as_deref(), Some("snap-of-db"));
    assert_eq!(w.exec.ran().len(), 2);
}

#[test]
fn runs_missed_while_down_make_one_run_at_start() {
    let w = World::new("", FakeExecutor::ok());
    assert_eq!(cycle(&w.start()), ["db"]);
    // Down for three days: twelve intervals missed.
    w.clock.advance(72 * HOUR);
    let core = w.start();
    assert_eq!(cycle(&core), ["db"]);
    assert!(cycle(&core).is_empty());
    w.clock.advance(6 * HOUR - 1);
    assert!(cycle(&core).is_empty());
    w.clock.advance(1);
    assert_eq!(cycle(&core), ["db"]);
}

#[test]
fn a_run_the_service_died_in_is_interrupted_and_runs_again_at_start() {
    let w = World::new("", FakeExecutor::ok());
    let core = w.start();
    assert_eq!(cycle(&core), ["db"]);
    // The next run starts; the service dies with it marked running.
    w.clock.advance(6 * HOUR);
    core.tick().unwrap();
    let (item, _running) = core.take_next().unwrap().unwrap();
    let mut st = core.state().job("db").unwrap();
    st.last_start = Some(w.clock.now());
    st.last_ok = None;
    core.state().set_job("db", &st).unwrap();
    drop(core);

    w.clock.advance(60);
    let core = w.start();
    let items = core.list().unwrap();
    let it = items.iter().find(|i| i.id == item.id).unwrap();
    assert_eq!(it.state, ItemState::Interrupted);
    assert_eq!(cycle(&core), ["db"]);
}

#[test]
fn a_failed_run_is_retried_after_the_retry_delay_not_the_interval() {
    let w = World::new(
        "",
        FakeExecutor::new(|_, _| JobResult {
            message: "disk on fire".into(),
            events: vec![Event::new(EventKind::BackupFailed, "db", "disk on fire")],
            ..JobResult::default()
        }),
    );
    let core = w.start();
    assert_eq!(cycle(&core), ["db"]);
    assert_eq!(w.inbox.kinds(), [EventKind::BackupFailed]);
    let item = core.list().unwrap().pop().unwrap();
    assert_eq!(item.state, ItemState::Failed);
    assert_eq!(item.message.as_deref(), Some("disk on fire"));
    w.clock.advance(HOUR - 1);
    assert!(cycle(&core).is_empty());
    w.clock.advance(1);
    assert_eq!(cycle(&core), ["db"]);
}

#[test]
fn a_disabled_job_never_runs_and_is_reminded_every_24_hours() {
    let extra = r#"
[[backup]]
name = "mail"
account = "mail"
paths = ["/var/spool/imap"]
enabled = false
"#;
    let w = World::new(extra, FakeExecutor::ok());
    let core = w.start();
    assert_eq!(cycle(&core), ["db"]);
    assert_eq!(w.inbox.kinds(), [EventKind::BackupsDisabled]);
    let ev = lock(&w.inbox.0)[0].clone();
    assert_eq!(ev.job.as_deref(), Some("mail"));
    assert_eq!(ev.account.as_deref(), Some("mail"));
    assert!(ev.message.contains("not enabled"), "{}", ev.message);

    w.clock.advance(23 * HOUR);
    cycle(&core);
    assert_eq!(w.inbox.kinds().len(), 1);
    w.clock.advance(HOUR);
    cycle(&core);
    assert_eq!(w.inbox.kinds().len(), 2);
    // A restart does not reset the reminder.
    drop(core);
    w.clock.advance(6 * HOUR);
    let core = w.start();
    cycle(&core);
    assert_eq!(w.inbox.kinds().len(), 2);
    w.clock.advance(18 * HOUR);
    cycle(&core);
    assert_eq!(
        w.inbox.kinds(),
        [EventKind::BackupsDisabled; 3],
        "one reminder per 24 h"
    );
    assert!(!w.exec.ran().contains(&"mail".to_string()));
    assert!(matches!(
        core.enqueue("mail", Reason::Manual),
        Err(ServiceError::Disabled(_))
    ));
    assert!(matches!(
        core.enqueue("nope", Reason::Manual),
        Err(ServiceError::NoSuchJob(..))
    ));
}

#[test]
fn verification_marks_the_snapshot_and_a_failure_notifies() {
    let fail = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&fail);
    let w = World::new(
        "",
        FakeExecutor::new(move |job, _| {
            let n = if f.load(Ordering::SeqCst) { 2 } else { 1 };
            let mut r = ok_result(job, Some(n == 1));
            r.snapshot = Some(format!("snap-{n}"));
            if n == 2 {
                r.events.push(
                    Event::new(EventKind::VerificationFailed, job, "csdb verify: exit 1")
                        .snapshot(Some("snap-2")),
                );
            }
            r
        }),
    );
    let core = w.start();
    assert_eq!(cycle(&core), ["db"]);
    let st = core.state().job("db").unwrap();
    assert_eq!(st.last_verified.as_deref(), Some("snap-1"));

    fail.store(true, Ordering::SeqCst);
    w.clock.advance(6 * HOUR);
    assert_eq!(cycle(&core), ["db"]);
    let st = core.state().job("db").unwrap();
    assert_eq!(st.last_snapshot.as_deref(), Some("snap-2"));
    assert_eq!(
        st.last_verified.as_deref(),
        Some("snap-1"),
        "a failed verification does not move the last verified snapshot"
    );
    let events = lock(&w.inbox.0).clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::VerificationFailed);
    assert_eq!(events[0].snapshot.as_deref(), Some("snap-2"));
    // The queue item failed; the backup itself ran, so the schedule moves on.
    let items = core.list().unwrap();
    let last = items.iter().rev().find(|i| i.job == "db").unwrap();
    assert_eq!(last.state, ItemState::Failed, "{last:?}");
    w.clock.advance(HOUR);
    assert!(cycle(&core).is_empty());
}

const RETENTION_AND_SYNC: &str = r#"
[retention]
interval = "1d"

[[sync]]
name = "offsite"
to = "s3://offsite/repo"
delete = true
interval = "7d"
"#;

#[test]
fn retention_runs_after_the_verified_backups_and_sync_after_retention() {
    let w = World::new(RETENTION_AND_SYNC, FakeExecutor::ok());
    let core = w.start();
    // All due at the first start: backups (with their verification), then
    // retention, then the offsite sync; the sync is queued once.
    assert_eq!(cycle(&core), ["db", RETENTION, "offsite"]);

    // A day later: the backups due, then retention, whose success queues
    // the sync (long before its own 7-day interval).
    w.clock.advance(24 * HOUR);
    assert_eq!(cycle(&core), ["db", RETENTION, "offsite"]);
    let items = core.list().unwrap();
    let sync = items.iter().rev().find(|i| i.job == "offsite").unwrap();
    assert_eq!(sync.reason, Reason::AfterRetention);
    assert_eq!(sync.state, ItemState::Done);
    assert_eq!(w.exec.ran().len(), 6);
}

#[test]
fn a_failed_retention_does_not_push_deletions() {
    let w = World::new(
        RETENTION_AND_SYNC,
        FakeExecutor::new(|job, _| {
            if job == RETENTION {
                JobResult {
                    message: "policy file unreadable".into(),
                    ..JobResult::default()
                }
            } else {
                ok_result(job, Some(true))
            }
        }),
    );
    let core = w.start();
    assert_eq!(cycle(&core), ["db", RETENTION, "offsite"]);
    w.clock.advance(24 * HOUR);
    assert_eq!(cycle(&core), ["db", RETENTION]);
}

#[test]
fn cancelling_pending_and_running_items() {
    // The first backup runs until it is cancelled.
    let blocked = AtomicBool::new(false);
    let w = World::new(
        RETENTION_AND_SYNC,
        FakeExecutor::new(move |job, ctx| {
            if job == "db" && !blocked.swap(true, Ordering::SeqCst) {
                // A long backup that stops at a safe point when cancelled.
                while !ctx.cancel.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return JobResult {
                    interrupted: true,
                    message: "backup stopped".into(),
                    ..JobResult::default()
                };
            }
            ok_result(job, None)
        }),
    );
    let core = Arc::new(w.start());
    core.tick().unwrap();
    let ids: Vec<u64> = core.list().unwrap().iter().map(|i| i.id).collect();
    assert_eq!(ids.len(), 3);
    // Cancel the pending sync.
    let sync = core.cancel(ids[2]).unwrap();
    assert_eq!(sync.state, ItemState::Cancelled);
    let runner = {
        let core = Arc::clone(&core);
        std::thread::spawn(move || core.run_next().unwrap().unwrap())
    };
    while core.list().unwrap()[0].state != ItemState::Running {
        std::thread::sleep(Duration::from_millis(5));
    }
    // `queue clear`: the running backup stops, retention is cancelled.
    let cleared = core.clear().unwrap();
    assert_eq!(cleared.len(), 2);
    let done = runner.join().unwrap();
    assert_eq!(done.state, ItemState::Cancelled);
    assert!(core.run_next().unwrap().is_none());
    assert_eq!(w.exec.ran(), ["db"]);
    let states: Vec<ItemState> = core.list().unwrap().iter().map(|i| i.state).collect();
    assert_eq!(states, [ItemState::Cancelled; 3]);
    assert!(matches!(
        core.cancel(ids[0]),
        Err(ServiceError::Finished(..))
    ));
    // A cancelled scheduled run is retried after the retry delay, not at once.
    core.tick().unwrap();
    assert!(core.list().unwrap().iter().all(|i| i.state.finished()));
    w.clock.advance(HOUR);
    assert_eq!(cycle(&core), ["db", RETENTION, "offsite"]);
}

#[test]
fn a_stopping_service_interrupts_the_job_and_takes_no_more() {
    let w = World::new(
        RETENTION_AND_SYNC,
        FakeExecutor::new(|job, ctx| {
            while !ctx.cancel.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            JobResult {
                interrupted: true,
                message: format!("{job} stopped"),
                ..JobResult::default()
            }
        }),
    );
    let core = Arc::new(w.start());
    core.tick().unwrap();
    let runner = {
        let core = Arc::clone(&core);
        std::thread::spawn(move || core.run_next().unwrap())
    };
    while core.list().unwrap()[0].state != ItemState::Running {
        std::thread::sleep(Duration::from_millis(5));
    }
    core.stop();
    let item = runner.join().unwrap().unwrap();
    assert_eq!(item.state, ItemState::Interrupted);
    assert!(core.run_next().unwrap().is_none());
    drop(core);
    // At the next start the interrupted backup is due at once, and the
    // pending items are still queued.
    let core = w.start();
    let pending: Vec<String> = core
        .list()
        .unwrap()
        .into_iter()
        .filter(|i| i.state == ItemState::Pending)
        .map(|i| i.job)
        .collect();
    assert_eq!(pending, [RETENTION, "offsite"]);
    core.tick().unwrap();
    let pending = core
        .list()
        .unwrap()
        .into_iter()
        .filter(|i| i.state == ItemState::Pending)
        .count();
    assert_eq!(pending, 3);
}

#[test]
fn the_control_socket_and_the_offline_path() {
    let w = World::new(RETENTION_AND_SYNC, FakeExecutor::ok());
    let config = config(w.dir.path(), &w.extra);
    // No service: the CLI works on the state file.
    {
        let c = Control::open(&config).unwrap();
        assert!(matches!(c, Control::State(_)));
        let item = c.run_now("offsite").unwrap();
        assert_eq!(item.reason, Reason::Manual);
        assert!(
            c.run_now("nope")
                .unwrap_err()
                .to_string()
                .contains("no job")
        );
    }
    // A service: the CLI talks to its socket, which only its owner may use.
    let core = Arc::new(w.start());
    let path = crate::control::serve(Arc::clone(&core), w.dir.path()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let c = Control::open(&config).unwrap();
    assert!(matches!(c, Control::Socket(_)));
    let items = c.list().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].job, "offsite");
    let db = c.run_now("db").unwrap();
    assert_eq!(c.run_now("db").unwrap().id, db.id, "queued once");
    assert!(
        c.run_now("nope")
            .unwrap_err()
            .to_string()
            .contains("no job")
    );
    let cancelled = c.cancel(db.id).unwrap();
    assert_eq!(cancelled.state, ItemState::Cancelled);
    assert!(c.cancel(999).unwrap_err().to_string().contains("999"));
    assert_eq!(c.clear().unwrap().len(), 1);
    // Garbage on the socket gets an error, not a crash.
    {
        use std::io::{BufRead, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        s.write_all(b"{\"op\":\"rm -rf\"}\n").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(&s).read_line(&mut line).unwrap();
        assert!(line.contains("\"ok\":false"), "{line}");
    }
    assert_eq!(c.list().unwrap().len(), 2);
}
