//! Telling the administrator: each event goes to every `notify` command
//! (JSON on standard input) and to the webhook (a JSON POST); a successful
//! backup pings the heartbeat URL. Delivery runs on a thread of its own
//! from a bounded queue, each attempt under the timeout, so a slow or dead
//! endpoint never holds up the scheduler. Notification failures are
//! logged, never fatal.

use crate::config::NotifySettings;
use crate::process::{Finished, run_with_timeout};
use serde::Serialize;
use std::sync::Arc;
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
    /// A backup succeeded (sent only with `on-success = true`; pings the
    /// heartbeat URL when one is set).
    BackupSucceeded,
}

impl std::fmt::Display for EventKind {
    /// The serde name (`backups_disabled`), as documented.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::queue::token(self))
    }
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

/// The configured commands, webhook and heartbeat, each delivered by a
/// thread of its own (a dead webhook neither delays the commands nor
/// silences the heartbeat).
#[derive(Debug)]
pub struct Notifications {
    commands: Option<Lane>,
    webhook: Option<Lane>,
    heartbeat: Option<Lane>,
    timeout: Duration,
    on_success: bool,
}

/// One event as the delivery threads get it, shared by every lane.
#[derive(Debug)]
struct Delivery {
    /// Its kind's token (`CAIRN_EVENT`).
    kind: String,
    /// Its job (`CAIRN_JOB`).
    job: Option<String>,
    /// The event as JSON (empty for a heartbeat).
    body: Vec<u8>,
}

/// One delivery thread and its bounded queue.
#[derive(Debug)]
struct Lane {
    name: &'static str,
    queue: Option<std::sync::mpsc::SyncSender<Arc<Delivery>>>,
    /// Signalled when the thread has delivered what was queued.
    finished: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

/// Queued deliveries per lane beyond which new ones are dropped (and
/// logged).
const QUEUE_LEN: usize = 256;

impl Lane {
    /// Start a thread that hands each queued event to `deliver`.
    fn start(name: &'static str, deliver: impl Fn(&Delivery) + Send + 'static) -> Option<Lane> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Delivery>>(QUEUE_LEN);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("notify {name}"))
            .spawn(move || {
                for d in rx {
                    deliver(&d);
                }
                let _ = done_tx.send(());
            });
        match spawned {
            Ok(_) => Some(Lane {
                name,
                queue: Some(tx),
                finished: std::sync::Mutex::new(done_rx),
            }),
            Err(e) => {
                tracing::error!("starting the {name} notification thread: {e}; it is off");
                None
            }
        }
    }

    fn push(&self, d: &Arc<Delivery>) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send(Arc::clone(d)) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(_)) => tracing::error!(
                "{} notification queue full ({QUEUE_LEN}); dropped a {} notification",
                self.name,
                d.kind
            ),
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => tracing::error!(
                "the {} notification thread is gone; dropped a {} notification",
                self.name,
                d.kind
            ),
        }
    }

    /// Close the queue and wait until `deadline` for what is in it.
    fn finish(&mut self, deadline: std::time::Instant) {
        if self.queue.take().is_some()
            && let Ok(done) = self.finished.lock()
        {
            let wait = deadline.saturating_duration_since(std::time::Instant::now());
            if done.recv_timeout(wait).is_err() {
                tracing::error!(
                    "stopping with {} notifications still undelivered",
                    self.name
                );
            }
        }
    }
}

/// POST `body` (or GET without one), three attempts 1 s and 2 s apart,
/// each under the client's timeout.
fn send(client: &reqwest::blocking::Client, url: &str, body: Option<&[u8]>) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(u64::from(attempt)));
        }
        let request = match body {
            Some(b) => client
                .post(url)
                .header("content-type", "application/json")
                .body(b.to_vec()),
            None => client.get(url),
        };
        match request.send() {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

impl Notifications {
    /// From the config: starts a delivery thread per target.
    pub fn new(settings: NotifySettings) -> Notifications {
        let timeout = settings.timeout.0;
        let client = || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .build()
                .map_err(|e| tracing::error!("notification HTTP client: {e}"))
                .ok()
        };
        let commands = (!settings.commands.is_empty())
            .then(|| {
                let commands = settings.commands.clone();
                Lane::start("command", move |d| {
                    for cmd in &commands {
                        let mut c = std::process::Command::new("sh");
                        c.arg("-c")
                            .arg(cmd)
                            .env("CAIRN_EVENT", &d.kind)
                            .env("CAIRN_JOB", d.job.as_deref().unwrap_or_default());
                        match run_with_timeout(c, Some(&d.body), timeout, None) {
                            Ok(Finished { status, output }) if !status.success() => {
                                tracing::error!(
                                    "notify command {cmd:?} failed ({status}): {}",
                                    output.trim()
                                )
                            }
                            Ok(_) => {}
                            Err(e) => tracing::error!("notify command {cmd:?}: {e}"),
                        }
                    }
                })
            })
            .flatten();
        let webhook = settings.webhook.clone().and_then(|url| {
            let http = client()?;
            Lane::start("webhook", move |d| {
                if let Err(e) = send(&http, &url, Some(&d.body)) {
                    tracing::error!("webhook {url}: {e}");
                }
            })
        });
        let heartbeat = settings.heartbeat.clone().and_then(|url| {
            let http = client()?;
            Lane::start("heartbeat", move |_| {
                if let Err(e) = send(&http, &url, None) {
                    tracing::error!("heartbeat {url}: {e}");
                }
            })
        });
        Notifications {
            commands,
            webhook,
            heartbeat,
            timeout,
            on_success: settings.on_success,
        }
    }
}

/// What is queued at shutdown is still delivered, for up to the timeout
/// (at most 10 s in all, so that a dead endpoint does not hold up a
/// stop).
impl Drop for Notifications {
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + self.timeout.min(Duration::from_secs(10));
        for lane in [&mut self.commands, &mut self.webhook, &mut self.heartbeat]
            .into_iter()
            .flatten()
        {
            lane.finish(deadline);
        }
    }
}

impl Notifier for Notifications {
    fn notify(&self, event: &Event) {
        let kind = event.kind.to_string();
        if event.kind == EventKind::BackupSucceeded {
            if let Some(h) = &self.heartbeat {
                h.push(&Arc::new(Delivery {
                    kind: kind.clone(),
                    job: event.job.clone(),
                    body: Vec::new(),
                }));
            }
            if !self.on_success {
                return;
            }
        }
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("encoding a notification: {e}");
                return;
            }
        };
        let job = event.job.as_deref().unwrap_or("the service");
        if event.kind == EventKind::BackupSucceeded {
            tracing::info!("notification {kind} for {job}: {}", event.message);
        } else {
            tracing::warn!("notification {kind} for {job}: {}", event.message);
        }
        let d = Arc::new(Delivery {
            kind,
            job: event.job.clone(),
            body,
        });
        for lane in [&self.commands, &self.webhook].into_iter().flatten() {
            lane.push(&d);
        }
    }
}
