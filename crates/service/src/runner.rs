//! Running a job: its hooks and the cairn commands it consists of, each a
//! child process of the `cairn` binary, with the repository, password and
//! S3 settings of the config in its environment.
//!
//! A backup job is `before` hook, `cairn backup`, `after` hook (always,
//! once `before` was tried), then `cairn verify` of the new snapshot (with
//! the job's `verify` command run against a restored copy). The retention
//! job is `cairn forget --prune`; a sync job is `cairn sync --to`.

use crate::config::{BackupJob, Config, JobRef, RetentionJob, SyncJob};
use crate::notify::{Event, EventKind};
use crate::process::{ChildSlot, capture, run_with_timeout};
use crate::queue::ItemProgress;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use cairn_protocol::ExitCode;
use cairn_protocol::report::{BackupReport, ForgetReport, SyncCounts, VerifyReport};

/// What a running job can see and be stopped by.
#[derive(Debug)]
pub struct JobContext<'a> {
    /// Progress, for `queue list`.
    pub progress: &'a Mutex<Option<ItemProgress>>,
    /// Set to stop the job at its next safe point.
    pub cancel: &'a AtomicBool,
    /// The child running now, to signal on cancel.
    pub slot: &'a ChildSlot,
}

impl JobContext<'_> {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    fn step(&self, step: &str) {
        if let Ok(mut p) = self.progress.lock() {
            *p = Some(ItemProgress {
                step: step.to_string(),
                ..ItemProgress::default()
            });
        }
    }

    /// Apply a `{"progress":{...}}` line from a cairn child.
    fn progress_line(&self, line: &str) {
        let Some(p) = cairn_protocol::ProgressLine::parse(line) else {
            return;
        };
        if let Ok(mut g) = self.progress.lock()
            && let Some(cur) = g.as_mut()
        {
            cur.phase = p.phase;
            cur.bytes = p.bytes;
            cur.total = p.total;
        }
    }
}

/// How a job ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobResult {
    /// It did its work (for a backup job: a snapshot was taken).
    pub ok: bool,
    /// It was stopped on request before it finished.
    pub interrupted: bool,
    /// A summary for the queue and the logs.
    pub message: String,
    /// The snapshot a backup job took.
    pub snapshot: Option<String>,
    /// Whether that snapshot passed verification (`None`: not verified).
    pub verified: Option<bool>,
    /// What the administrator must hear about.
    pub events: Vec<Event>,
}

/// Runs jobs. The service uses [`ProcessExecutor`]; tests use fakes.
pub trait Executor: Send + Sync {
    /// Run `job` to its end (or to a safe point once cancelled).
    fn run(&self, config: &Config, name: &str, job: JobRef<'_>, ctx: &JobContext<'_>) -> JobResult;
}

/// Runs jobs as child processes of the cairn binary.
#[derive(Debug, Clone)]
pub struct ProcessExecutor {
    /// The `cairn` executable.
    pub cairn: PathBuf,
}

/// How a cairn command ended, decoded.
struct CairnRun {
    /// The exit status, when the child exited.
    status: Option<i32>,
    /// The status as one of cairn's exit codes.
    code: Option<ExitCode>,
    /// Standard output: the `--json` report.
    stdout: String,
    error: String,
}

impl CairnRun {
    /// The report, when the command printed one of type `R`.
    fn report<R: serde::de::DeserializeOwned>(&self) -> Option<R> {
        serde_json::from_str(self.stdout.trim()).ok()
    }
}

/// A snapshot id's first 8 characters, as cairn prints them.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
}

impl ProcessExecutor {
    fn cairn_command(&self, config: &Config, args: &[String]) -> Command {
        let mut c = Command::new(&self.cairn);
        c.env("CAIRN_REPOSITORY", &config.repository)
            .env("CAIRN_PROGRESS", "json")
            .env_remove("CAIRN_REPOSITORY_FILE")
            .env_remove("CAIRN_PASSWORD_FILE")
            .env_remove("CAIRN_PASSWORD_COMMAND");
        if let Some(f) = &config.password_file {
            c.env("CAIRN_PASSWORD_FILE", f);
        }
        if let Some(p) = &config.password_command {
            c.env("CAIRN_PASSWORD_COMMAND", p);
        }
        if let Some(d) = &config.cache_dir {
            c.env("CAIRN_CACHE_DIR", d);
        }
        let s3 = &config.s3;
        if let Some(e) = &s3.endpoint {
            c.env("CAIRN_S3_ENDPOINT", e);
        }
        if let Some(r) = &s3.region {
            c.env("CAIRN_S3_REGION", r);
        }
        if s3.path_style {
            c.env("CAIRN_S3_PATH_STYLE", "true");
        }
        if s3.allow_http {
            c.env("CAIRN_S3_ALLOW_HTTP", "true");
        }
        if let Some(p) = &s3.profile {
            c.env("CAIRN_S3_PROFILE", p);
        }
        c.arg("--retry-lock")
            .arg(format!("{}s", config.lock_wait.0.as_secs()))
            .args(args);
        c
    }

    /// Run a cairn command with `--json`.
    fn cairn(&self, config: &Config, args: &[String], ctx: &JobContext<'_>) -> CairnRun {
        // A global option, before the subcommand's `--`.
        let mut full = vec!["--json".to_string()];
        full.extend_from_slice(args);
        let cmd = self.cairn_command(config, &full);
        match capture(cmd, None, None, Some(ctx.slot), &mut |l| {
            ctx.progress_line(l)
        }) {
            Ok(c) => CairnRun {
                status: c.status.code(),
                code: c.status.code().and_then(ExitCode::from_status),
                stdout: c.stdout,
                error: c
                    .stderr_tail
                    .lines()
                    .filter(|l| !l.contains(" WARN ") && !l.contains(" INFO "))
                    .collect::<Vec<_>>()
                    .join("\n"),
            },
            Err(e) => CairnRun {
                status: None,
                code: None,
                stdout: String::new(),
                error: format!("cannot run {}: {e}", self.cairn.display()),
            },
        }
    }

    /// Run a hook; `Err` says how it failed.
    fn hook(
        &self,
        config: &Config,
        which: &str,
        command: &str,
        env: &[(&str, String)],
        ctx: &JobContext<'_>,
    ) -> Result<(), String> {
        ctx.step(&format!("{which} hook"));
        let mut c = Command::new("sh");
        c.arg("-c").arg(command).current_dir("/");
        for (k, v) in env {
            c.env(k, v);
        }
        match run_with_timeout(c, None, config.hook_timeout.0, Some(ctx.slot)) {
            Ok(f) if f.status.success() => Ok(()),
            Ok(f) => Err(if f.output.is_empty() {
                format!("the {which} hook {command:?} failed ({})", f.status)
            } else {
                format!(
                    "the {which} hook {command:?} failed ({}): {}",
                    f.status, f.output
                )
            }),
            Err(e) => Err(format!("the {which} hook {command:?} could not run: {e}")),
        }
    }

    fn backup(&self, config: &Config, job: &BackupJob, ctx: &JobContext<'_>) -> JobResult {
        let name = job.name();
        let event = |kind, msg: String| Event::new(kind, name, msg).account(&job.account);
        let mut r = JobResult::default();
        let env = |status: &str, snapshot: Option<&str>| {
            vec![
                ("CAIRN_JOB", name.to_string()),
                ("CAIRN_ACCOUNT", job.account.clone()),
                ("CAIRN_BACKUP_STATUS", status.to_string()),
                ("CAIRN_SNAPSHOT", snapshot.unwrap_or_default().to_string()),
            ]
        };
        let before_ok = match &job.before {
            Some(cmd) => match self.hook(config, "before", cmd, &env("pending", None), ctx) {
                Ok(()) => true,
                // Stopped by a cancel or the service's shutdown: not a
                // failure to report.
                Err(_) if ctx.cancelled() => {
                    r.interrupted = true;
                    r.message = "stopped during the before hook; the backup was not taken".into();
                    false
                }
                Err(why) => {
                    r.message = format!("{why}; the backup was not taken");
                    r.events
                        .push(event(EventKind::HookFailed, r.message.clone()));
                    false
                }
            },
            None => true,
        };
        let mut status = "skipped";
        if before_ok && ctx.cancelled() {
            r.interrupted = true;
            r.message = "cancelled before the backup started".into();
        } else if before_ok {
            ctx.step("backup");
            let mut args = vec![
                "backup".to_string(),
                "--account".into(),
                job.account.clone(),
            ];
            for t in &job.tags {
                args.extend(["--tag".into(), t.clone()]);
            }
            for e in &job.exclude {
                args.extend(["--exclude".into(), e.clone()]);
            }
            if job.exclude_caches {
                args.push("--exclude-caches".into());
            }
            args.push("--".into());
            args.extend(
                job.paths
                    .iter()
                    .map(|p| p.get_ref().to_string_lossy().into_owned()),
            );
            let run = self.cairn(config, &args, ctx);
            let report: Option<BackupReport> = run.report();
            match (run.code, &report) {
                (Some(ExitCode::Ok | ExitCode::Incomplete), Some(rep)) => {
                    status = "ok";
                    r.ok = true;
                    r.snapshot = Some(rep.id.clone());
                    let s = &rep.summary;
                    r.message = format!(
                        "snapshot {}: {} new and {} changed files, {} bytes added",
                        short(&rep.id),
                        s.files_new,
                        s.files_changed,
                        s.bytes_added
                    );
                    if run.code == Some(ExitCode::Ok)
                        && (config.notify.on_success || config.notify.heartbeat.is_some())
                    {
                        r.events.push(
                            event(EventKind::BackupSucceeded, r.message.clone())
                                .snapshot(Some(&rep.id)),
                        );
                    }
                    if run.code == Some(ExitCode::Incomplete) {
                        r.events.push(
                            event(
                                EventKind::BackupIncomplete,
                                format!(
                                    "{} files could not be read and are missing from the snapshot",
                                    s.unreadable_count
                                ),
                            )
                            .snapshot(Some(&rep.id)),
                        );
                    }
                }
                (Some(ExitCode::Interrupted), _) => {
                    status = "interrupted";
                    r.interrupted = true;
                    r.message = format!("backup stopped: {}", first_line(&run.error));
                }
                (Some(ExitCode::Locked), _) => {
                    status = "failed";
                    r.message = format!(
                        "the repository stayed locked for {}: {}",
                        config.lock_wait,
                        run.error.trim()
                    );
                    r.events.push(event(EventKind::LockHeld, r.message.clone()));
                }
                _ => {
                    status = "failed";
                    r.message = format!("backup failed: {}", run.error.trim());
                    r.events
                        .push(event(EventKind::BackupFailed, r.message.clone()));
                }
            }
        }
        // The after hook runs whatever happened, once before was tried.
        if let Some(cmd) = &job.after
            && let Err(why) = self.hook(
                config,
                "after",
                cmd,
                &env(status, r.snapshot.as_deref()),
                ctx,
            )
        {
            r.events
                .push(event(EventKind::HookFailed, why.clone()).snapshot(r.snapshot.as_deref()));
            r.message = format!("{}; {why}", r.message);
        }
        if !before_ok && !r.interrupted {
            r.events
                .insert(0, event(EventKind::BackupFailed, r.message.clone()));
        }
        // Verify the new snapshot.
        if let (Some(id), false) = (r.snapshot.clone(), ctx.cancelled()) {
            ctx.step("verify");
            let mut args = vec!["verify".to_string(), id.clone()];
            if let Some(cmd) = &job.verify {
                args.extend(["--command".into(), cmd.clone()]);
            }
            let run = self.cairn(config, &args, ctx);
            match run.code {
                Some(ExitCode::Ok) => {
                    r.verified = Some(true);
                    r.message.push_str(", verified");
                }
                Some(ExitCode::Interrupted) => {
                    r.interrupted = true;
                    r.message.push_str(", verification stopped");
                }
                _ => {
                    r.verified = Some(false);
                    let problems = run
                        .report::<VerifyReport>()
                        .map(|v| v.problems)
                        .unwrap_or_default();
                    let why = if problems.is_empty() {
                        run.error.trim().to_string()
                    } else {
                        problems.join("; ")
                    };
                    r.message.push_str(&format!(", verification FAILED: {why}"));
                    r.events.push(
                        event(
                            EventKind::VerificationFailed,
                            format!("snapshot {} failed verification: {why}", short(&id)),
                        )
                        .snapshot(Some(&id)),
                    );
                }
            }
        }
        r
    }

    fn retention(&self, config: &Config, job: &RetentionJob, ctx: &JobContext<'_>) -> JobResult {
        ctx.step("forget");
        let Some(policy) = &config.policy else {
            return JobResult {
                message: "no policy file is configured".into(),
                ..JobResult::default()
            };
        };
        let mut args = vec![
            "forget".to_string(),
            "--policy".into(),
            policy.to_string_lossy().into_owned(),
        ];
        if job.prune {
            args.push("--prune".into());
        }
        let run = self.cairn(config, &args, ctx);
        self.finish(
            config,
            crate::config::RETENTION,
            run,
            EventKind::RetentionFailed,
            |run| {
                let (kept, removed) = run
                    .report::<ForgetReport>()
                    .map_or((0, 0), |f| (f.kept, f.removed));
                format!("retention applied: {kept} snapshots kept, {removed} removed")
            },
        )
    }

    fn sync(&self, config: &Config, job: &SyncJob, ctx: &JobContext<'_>) -> JobResult {
        ctx.step("sync");
        let mut args = vec!["sync".to_string(), "--to".into(), job.to.clone()];
        if job.delete {
            args.push("--delete".into());
        }
        if let Some(d) = job.delete_after {
            args.extend(["--delete-after".into(), format!("{}s", d.0.as_secs())]);
        }
        let run = self.cairn(config, &args, ctx);
        self.finish(config, job.name(), run, EventKind::SyncFailed, |run| {
            let counts = run.report::<SyncCounts>().unwrap_or_default();
            format!(
                "synced to {}: {} objects copied, {} deleted",
                job.to,
                counts.objects_copied(),
                counts.objects_deleted()
            )
        })
    }

    /// Decode a retention or sync run.
    fn finish(
        &self,
        config: &Config,
        name: &str,
        run: CairnRun,
        failure: EventKind,
        summary: impl Fn(&CairnRun) -> String,
    ) -> JobResult {
        let mut r = JobResult::default();
        match run.code {
            Some(ExitCode::Ok) => {
                r.ok = true;
                r.message = summary(&run);
            }
            Some(ExitCode::Interrupted) => {
                r.interrupted = true;
                r.message = format!("stopped: {}", first_line(&run.error));
            }
            Some(ExitCode::Locked) => {
                r.message = format!(
                    "the repository stayed locked for {}: {}",
                    config.lock_wait,
                    run.error.trim()
                );
                r.events
                    .push(Event::new(EventKind::LockHeld, name, r.message.clone()));
            }
            _ => {
                r.message = run.error.trim().to_string();
                if r.message.is_empty() {
                    r.message = format!("exit status {:?}", run.status);
                }
                r.events.push(Event::new(failure, name, r.message.clone()));
            }
        }
        r
    }
}

impl Executor for ProcessExecutor {
    fn run(
        &self,
        config: &Config,
        _name: &str,
        job: JobRef<'_>,
        ctx: &JobContext<'_>,
    ) -> JobResult {
        match job {
            JobRef::Backup(b) => self.backup(config, b, ctx),
            JobRef::Retention(r) => self.retention(config, r, ctx),
            JobRef::Sync(s) => self.sync(config, s, ctx),
        }
    }
}
