//! The service's config file (TOML, specified in `docs/SERVICE.md`).
//! Unknown keys are rejected; every error names the line and the key.

use crate::duration::Interval;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A config error, with its line when known.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The config file.
    pub file: String,
    /// What is wrong and where.
    pub message: String,
}

/// The whole config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The repository (a directory or `s3://bucket/prefix`).
    pub repository: String,
    /// The repository password, from a file...
    pub password_file: Option<PathBuf>,
    /// ...or from a command's output.
    pub password_command: Option<String>,
    /// The local index cache (default: the user's cache directory).
    pub cache_dir: Option<PathBuf>,
    /// Where the schedule state, the queue and the control socket live.
    pub state_dir: PathBuf,
    /// The time zone of `at` schedules (IANA name; default this machine's).
    pub timezone: Option<String>,
    /// The retention policy file (docs/RETENTION.md), for the retention job.
    pub policy: Option<PathBuf>,
    /// How long a job waits for the repository lock before it fails and
    /// the administrator is told that the lock is held too long.
    #[serde(default = "default_lock_wait")]
    pub lock_wait: Interval,
    /// How long a `before`/`after` hook may run.
    #[serde(default = "default_hook_timeout")]
    pub hook_timeout: Interval,
    /// S3 settings for the repository and sync destinations.
    #[serde(default)]
    pub s3: S3Settings,
    /// Where notifications go.
    #[serde(default)]
    pub notify: NotifySettings,
    /// Backup jobs.
    #[serde(default, rename = "backup")]
    pub backups: Vec<BackupJob>,
    /// The retention job.
    pub retention: Option<RetentionJob>,
    /// Sync jobs.
    #[serde(default, rename = "sync")]
    pub syncs: Vec<SyncJob>,
}

/// S3 settings passed to every cairn command.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct S3Settings {
    /// Endpoint URL of a compatible server.
    pub endpoint: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Path-style requests.
    #[serde(default)]
    pub path_style: bool,
    /// Plain HTTP.
    #[serde(default)]
    pub allow_http: bool,
    /// Profile in the AWS profile files.
    pub profile: Option<String>,
}

/// Notification targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NotifySettings {
    /// Shell commands; each gets the event as JSON on standard input.
    #[serde(default)]
    pub commands: Vec<String>,
    /// An HTTP(S) URL that receives the event as a JSON POST.
    pub webhook: Option<String>,
    /// How long one notification may take.
    #[serde(default = "default_notify_timeout")]
    pub timeout: Interval,
    /// Also notify `backup_succeeded` after every successful backup.
    #[serde(default)]
    pub on_success: bool,
    /// A URL to GET after every successful backup, for a dead man's
    /// switch monitor (healthchecks.io and the like), which raises the
    /// alarm when the pings stop.
    pub heartbeat: Option<String>,
}

/// A backup job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BackupJob {
    /// Unique job name.
    pub name: Spanned<String>,
    /// The account its snapshots belong to.
    #[serde(default = "default_account")]
    pub account: String,
    /// Absolute paths, backed up in this order.
    pub paths: Vec<Spanned<PathBuf>>,
    /// Exclude patterns (as `cairn backup --exclude`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Skip directories tagged with CACHEDIR.TAG.
    #[serde(default)]
    pub exclude_caches: bool,
    /// Tags for its snapshots.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Time between snapshots (default 1d; not with `at`).
    interval: Option<Interval>,
    /// Times of day instead of an interval: `"02:00"` or
    /// `["02:00", "14:30"]`, in `timezone`.
    #[serde(default, deserialize_with = "times_of_day")]
    pub at: Vec<jiff::civil::Time>,
    /// Time before a failed run is tried again (default: the interval, at
    /// most an hour).
    pub retry: Option<Interval>,
    /// A disabled job is not run; the administrator is reminded every 24 h.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Run before the backup (an export, a write freeze); failing aborts
    /// the job.
    pub before: Option<String>,
    /// Run after the backup whatever happened (clean-up, thaw).
    pub after: Option<String>,
    /// Run against a restored copy of each new snapshot
    /// (`cairn verify --command`).
    pub verify: Option<String>,
}

/// The retention job: forget + prune with the policy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RetentionJob {
    /// Time between runs (default 1d; not with `at`).
    interval: Option<Interval>,
    /// Times of day instead of an interval (as for backup jobs).
    #[serde(default, deserialize_with = "times_of_day")]
    pub at: Vec<jiff::civil::Time>,
    /// Run it at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Prune after forgetting.
    #[serde(default = "yes")]
    pub prune: bool,
}

/// A sync job: push the repository to a remote.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SyncJob {
    /// Unique job name.
    pub name: Spanned<String>,
    /// Destination (`s3://bucket/prefix` or a directory).
    pub to: String,
    /// Propagate deletions (after the retention job's purge).
    #[serde(default)]
    pub delete: bool,
    /// Keep deleted objects this long on the destination.
    pub delete_after: Option<Interval>,
    /// Time between runs (default 1d; not with `at`); it also runs after
    /// each retention run.
    interval: Option<Interval>,
    /// Times of day instead of an interval (as for backup jobs).
    #[serde(default, deserialize_with = "times_of_day")]
    pub at: Vec<jiff::civil::Time>,
    /// Run it at all.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            commands: Vec::new(),
            webhook: None,
            timeout: default_notify_timeout(),
            on_success: false,
            heartbeat: None,
        }
    }
}

/// Read `at = "02:00"` or `at = ["02:00", "14:30"]`.
fn times_of_day<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<jiff::civil::Time>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let texts = match <OneOrMany as serde::Deserialize>::deserialize(d)? {
        OneOrMany::One(t) => vec![t],
        OneOrMany::Many(v) => v,
    };
    if texts.is_empty() {
        return Err(serde::de::Error::custom(
            "`at` needs at least one time of day",
        ));
    }
    texts
        .iter()
        .map(|t| {
            t.trim().parse::<jiff::civil::Time>().map_err(|_| {
                serde::de::Error::custom(format!(
                    "{t:?} is not a time of day (examples: \"02:00\", \"14:30\", \"23:59:30\")"
                ))
            })
        })
        .collect()
}

fn default_lock_wait() -> Interval {
    Interval::secs(3600)
}
fn default_hook_timeout() -> Interval {
    Interval::secs(3600)
}
fn default_notify_timeout() -> Interval {
    Interval::secs(30)
}
fn default_interval() -> Interval {
    Interval::secs(86_400)
}
fn default_account() -> String {
    "default".into()
}
fn yes() -> bool {
    true
}

/// The line (1-based) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl BackupJob {
    /// Its name.
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    /// Time between snapshots (for `at` schedules, a day).
    pub fn interval(&self) -> Interval {
        self.interval.unwrap_or_else(default_interval)
    }

    /// Time before a failed run is retried.
    pub fn retry(&self) -> Interval {
        self.retry
            .unwrap_or(self.interval().min(Interval::secs(3600)))
    }
}

impl SyncJob {
    /// Its name.
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    /// Time between runs (for `at` schedules, a day).
    pub fn interval(&self) -> Interval {
        self.interval.unwrap_or_else(default_interval)
    }
}

impl RetentionJob {
    /// Time between runs (for `at` schedules, a day).
    pub fn interval(&self) -> Interval {
        self.interval.unwrap_or_else(default_interval)
    }
}

impl Config {
    /// Read and check a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            message: format!("cannot read it: {e}"),
        })?;
        Config::parse(&text).map_err(|message| ConfigError { file, message })
    }

    /// Parse and check config text.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate(text)?;
        Ok(config)
    }

    fn validate(&self, text: &str) -> Result<(), String> {
        let at = |span: std::ops::Range<usize>| format!("line {}", line_of(text, span.start));
        if self.repository.trim().is_empty() {
            return Err("`repository` is empty".into());
        }
        if self.password_file.is_some() && self.password_command.is_some() {
            return Err("give `password-file` or `password-command`, not both".into());
        }
        if self.password_file.is_none() && self.password_command.is_none() {
            return Err(
                "the service needs the repository password: set `password-file` or `password-command`"
                    .into(),
            );
        }
        if !self.state_dir.is_absolute() {
            return Err(format!(
                "`state-dir` must be an absolute path, not {:?}",
                self.state_dir
            ));
        }
        let mut names = HashSet::new();
        // Job names are unique across kinds and `retention` is taken.
        let mut check_job = |kind: &str,
                             name: &Spanned<String>,
                             interval: Option<Interval>,
                             times: &[jiff::civil::Time]| {
            let where_ = at(name.span());
            let name = name.get_ref();
            if !valid_name(name) {
                return Err(format!(
                    "{where_}: {kind} job name {name:?} must be 1-64 characters of A-Z a-z 0-9 . _ -"
                ));
            }
            if name == RETENTION || !names.insert(name.clone()) {
                return Err(format!("{where_}: a second job is named {name:?}"));
            }
            if interval.unwrap_or_else(default_interval) < Interval::secs(1) {
                return Err(format!(
                    "{where_}: {kind} job {name:?}: `interval` must be at least 1s"
                ));
            }
            if !times.is_empty() && interval.is_some() {
                return Err(format!(
                    "{where_}: {kind} job {name:?}: give `interval` or `at`, not both"
                ));
            }
            Ok(where_)
        };
        for job in &self.backups {
            let where_ = check_job("backup", &job.name, job.interval, &job.at)?;
            if job.paths.is_empty() {
                return Err(format!(
                    "{where_}: backup job {:?} has no `paths`",
                    job.name()
                ));
            }
            for p in &job.paths {
                if !p.get_ref().is_absolute() {
                    return Err(format!(
                        "{}: backup job {:?}: path {:?} must be absolute",
                        at(p.span()),
                        job.name(),
                        p.get_ref()
                    ));
                }
            }
        }
        if let Some(r) = &self.retention {
            if self.policy.is_none() && r.enabled {
                return Err("the [retention] job needs `policy`, the retention policy file".into());
            }
            if r.interval() < Interval::secs(1) {
                return Err("[retention]: `interval` must be at least 1s".into());
            }
            if !r.at.is_empty() && r.interval.is_some() {
                return Err("[retention]: give `interval` or `at`, not both".into());
            }
        }
        for job in &self.syncs {
            let where_ = check_job("sync", &job.name, job.interval, &job.at)?;
            if job.delete_after.is_some() && !job.delete {
                return Err(format!(
                    "{where_}: sync job {:?}: `delete-after` needs `delete = true`",
                    job.name()
                ));
            }
        }
        if let Some(url) = &self.notify.webhook
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "[notify]: `webhook` must be an http:// or https:// URL, not {url:?}"
            ));
        }
        if let Some(tz) = &self.timezone
            && jiff::tz::TimeZone::get(tz).is_err()
        {
            return Err(format!(
                "`timezone` {tz:?} is not a time zone (an IANA name such as \"Europe/Berlin\")"
            ));
        }
        if let Some(url) = &self.notify.heartbeat
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "[notify]: `heartbeat` must be an http:// or https:// URL, not {url:?}"
            ));
        }
        Ok(())
    }

    /// The time zone of `at` schedules.
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        self.timezone
            .as_deref()
            .and_then(|tz| jiff::tz::TimeZone::get(tz).ok())
            .unwrap_or_else(jiff::tz::TimeZone::system)
    }

    /// Every job name, in config order (backups, retention, syncs).
    pub fn job_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.backups.iter().map(|b| b.name().to_string()).collect();
        if self.retention.is_some() {
            v.push(RETENTION.to_string());
        }
        v.extend(self.syncs.iter().map(|s| s.name().to_string()));
        v
    }

    /// The job called `name`.
    pub fn job(&self, name: &str) -> Option<JobRef<'_>> {
        if name == RETENTION {
            return self.retention.as_ref().map(JobRef::Retention);
        }
        self.backups
            .iter()
            .find(|b| b.name() == name)
            .map(JobRef::Backup)
            .or_else(|| {
                self.syncs
                    .iter()
                    .find(|s| s.name() == name)
                    .map(JobRef::Sync)
            })
    }
}

/// The retention job's name in the queue and the state.
pub const RETENTION: &str = "retention";

/// A job of any kind.
#[derive(Debug, Clone, Copy)]
pub enum JobRef<'a> {
    /// A backup job.
    Backup(&'a BackupJob),
    /// The retention job.
    Retention(&'a RetentionJob),
    /// A sync job.
    Sync(&'a SyncJob),
}

impl JobRef<'_> {
    /// `backup`, `retention` or `sync`.
    pub fn kind(&self) -> &'static str {
        match self {
            JobRef::Backup(_) => "backup",
            JobRef::Retention(_) => "retention",
            JobRef::Sync(_) => "sync",
        }
    }

    /// Whether it may run.
    pub fn enabled(&self) -> bool {
        match self {
            JobRef::Backup(b) => b.enabled,
            JobRef::Retention(r) => r.enabled,
            JobRef::Sync(s) => s.enabled,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = r#"
repository = "/srv/backup/repo"
password-file = "/etc/cairn/password"
state-dir = "/var/lib/cairn/service"
policy = "/etc/cairn/retention.toml"

[notify]
commands = ["mail -s cairn root"]
webhook = "http://127.0.0.1:9000/hook"

[[backup]]
name = "calendar"
account = "calendar"
paths = ["/var/opt/calendar/db"]
interval = "6h"
before = "csdb export"
after = "rm -rf /var/opt/calendar/export"
verify = "csdb verify ."

[[backup]]
name = "mail"
paths = ["/var/spool/imap"]
enabled = false

[retention]
interval = "1d"

[[sync]]
name = "offsite"
to = "s3://offsite/cal"
delete = true
delete-after = "7d"
"#;

    #[test]
    fn a_complete_config() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.backups.len(), 2);
        assert_eq!(c.backups[0].interval(), Interval::secs(6 * 3600));
        assert_eq!(c.backups[0].retry(), Interval::secs(3600));
        assert!(!c.backups[1].enabled);
        assert_eq!(c.backups[1].interval(), Interval::secs(86_400));
        assert_eq!(c.backups[1].account, "default");
        assert_eq!(c.job_names(), ["calendar", "mail", "retention", "offsite"]);
        assert_eq!(c.job("offsite").unwrap().kind(), "sync");
        assert_eq!(c.lock_wait, Interval::secs(3600));
    }

    fn error_of(text: &str) -> String {
        Config::parse(text).unwrap_err()
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let typo = GOOD.replace("interval = \"6h\"", "intervall = \"6h\"");
        let e = error_of(&typo);
        assert!(e.contains("line 15") && e.contains("intervall"), "{e}");

        let bad_duration = GOOD.replace("\"6h\"", "\"6 hourz\"");
        let e = error_of(&bad_duration);
        assert!(e.contains("line 15") && e.contains("6 hourz"), "{e}");
        let months = GOOD.replace("\"6h\"", "\"1mo\"");
        let e = error_of(&months);
        assert!(
            e.contains("line 15") && e.contains("no fixed length"),
            "{e}"
        );

        let dup = GOOD.replace("name = \"mail\"", "name = \"calendar\"");
        let e = error_of(&dup);
        assert!(e.contains("line 21") && e.contains("second job"), "{e}");

        let relative = GOOD.replace("/var/spool/imap", "spool/imap");
        let e = error_of(&relative);
        assert!(e.contains("line 22") && e.contains("absolute"), "{e}");

        let no_policy = GOOD.replace("policy = \"/etc/cairn/retention.toml\"\n", "");
        assert!(error_of(&no_policy).contains("needs `policy`"));

        let no_password = GOOD.replace("password-file = \"/etc/cairn/password\"\n", "");
        assert!(error_of(&no_password).contains("password"));

        let taken = GOOD.replace("name = \"offsite\"", "name = \"retention\"");
        assert!(error_of(&taken).contains("second job"));

        let grace = GOOD.replace("delete = true\n", "");
        assert!(error_of(&grace).contains("needs `delete = true`"));

        let webhook = GOOD.replace("http://127.0.0.1:9000/hook", "ftp://x");
        assert!(error_of(&webhook).contains("webhook"));

        let e = error_of("repository = 3");
        assert!(e.contains("line 1"), "{e}");
    }
}
