//! Telling the administrator: each event goes to every `notify` command
//! (JSON on standard input) and to the webhook (a JSON POST).
//! Notification failures are logged, never fatal.

use crate::config::NotifySettings;
use crate::process::{Finished, run_with_timeout};
use serde::Serialize;
use std::time::Duration;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A backup did not produce a snapshot.
    BackupFailed,
    /// A snapshot was taken, but some files could not be read.
    BackupIncomplete,
    /// A snapshot failed verification (missing or corrupt data, or the
    /// verify command failed).
    VerificationFailed,
    /// A `before` or `after` hook failed.
    HookFailed,
    /// A backup job is disabled (repeated every 24 h).
    BackupsDisabled,
    /// A job gave up waiting for the repository lock.
    LockHeld,
    /// The retention job failed.
    RetentionFailed,
    /// A sync job failed.
    SyncFailed,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The job.
    pub job: Option<String>,
    /// Its account (backup jobs).
    pub account: Option<String>,
    /// The snapshot concerned.
    pub snapshot: Option<String>,
    /// Details for a human.
    pub message: String,
    /// When.
    pub time: jiff::Timestamp,
    /// The host the service runs on.
    pub host: String,
}

impl Event {
    /// An event about `job`, now.
    pub fn new(kind: EventKind, job: &str, message: impl Into<String>) -> Event {
        Event {
            kind,
            job: Some(job.to_string()),
            account: None,
            snapshot: None,
            message: message.into(),
            time: jiff::Timestamp::now(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
        }
    }

    /// With its account.
    pub fn account(mut self, account: &str) -> Event {
        self.account = Some(account.to_string());
        self
    }

    /// With its snapshot.
    pub fn snapshot(mut self, snapshot: Option<&str>) -> Event {
        self.snapshot = snapshot.map(str::to_string);
        self
    }
}

/// Where events go.
pub trait Notifier: Send + Sync {
    /// Deliver one event (best effort).
    fn notify(&self, event: &Event);
}

/// The configured commands and webhook.
#[derive(Debug)]
pub struct Notifications {
    settings: NotifySettings,
    http: Option<reqwest::blocking::Client>,
}

impl Notifications {
    /// From the config.
    pub fn new(settings: NotifySettings) -> Notifications {
        let http = settings.webhook.as_ref().and_then(|_| {
            reqwest::blocking::Client::builder()
                .timeout(settings.timeout.0)
                .build()
                .map_err(|e| tracing::error!("webhook client: {e}"))
                .ok()
        });
        Notifications { settings, http }
    }

    fn post(&self, url: &str, body: &[u8]) -> Result<(), String> {
        let Some(client) = &self.http else {
            return Err("no HTTP client".into());
        };
        let mut last = String::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(u64::from(attempt)));
            }
            match client
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_vec())
                .send()
            {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

impl Notifier for Notifications {
    fn notify(&self, event: &Event) {
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("encoding a notification: {e}");
                return;
            }
        };
        tracing::warn!(
            "notification {:?} for {}: {}",
            event.kind,
            event.job.as_deref().unwrap_or("the service"),
            event.message
        );
        for cmd in &self.settings.commands {
            let mut c = std::process::Command::new("sh");
            c.arg("-c")
                .arg(cmd)
                .env(
                    "CAIRN_EVENT",
                    serde_json::to_string(&event.kind)
                        .unwrap_or_default()
                        .trim_matches('"'),
                )
                .env("CAIRN_JOB", event.job.as_deref().unwrap_or_default());
            match run_with_timeout(c, Some(&body), self.settings.timeout.0, None) {
                Ok(Finished { status, output }) if !status.success() => tracing::error!(
                    "notify command {cmd:?} failed ({status}): {}",
                    output.trim()
                ),
                Ok(_) => {}
                Err(e) => tracing::error!("notify command {cmd:?}: {e}"),
            }
        }
        if let Some(url) = &self.settings.webhook
            && let Err(e) = self.post(url, &body)
        {
            tracing::error!("webhook {url}: {e}");
        }
    }
}
