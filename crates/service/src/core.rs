//! The service's logic: a scheduler that queues due jobs and a runner that
//! works through the queue one item at a time.
//!
//! [`Core`] holds the logic and is driven by [`crate::daemon::run`] in
//! production and directly (with a fake clock and executor) in tests; the
//! control socket ([`crate::control`]) calls into it.
//!
//! How an item's end is recorded in the job's schedule state:
//!
//! | the run | item | `last_ok` | next due |
//! |---|---|---|---|
//! | succeeded (a backup: snapshot taken) | done | true | `interval` after it started |
//! | failed | failed | false | `retry` after it started |
//! | cancelled (`cairn queue cancel`/`clear`) | cancelled | false | `retry` after it started |
//! | stopped by the service's shutdown | interrupted | unset | at once, at the next start |
//!
//! A backup whose snapshot was taken counts as a success even if its
//! verification was stopped by a shutdown; the snapshot then stays
//! unverified until `cairn verify` is run on it.

use crate::config::{Config, JobRef, RETENTION};
use crate::notify::{Event, EventKind, Notifier};
use crate::process::ChildSlot;
use crate::queue::{ItemProgress, ItemState, QueueItem, Reason};
use crate::runner::{Executor, JobContext};
use crate::schedule::{self, Action};
use crate::state::{JobState, State, StateError};
use jiff::Timestamp;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Service errors.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// No job has this name.
    #[error("no job is named {0:?} in the config (jobs: {1})")]
    NoSuchJob(String, String),
    /// The job may not run.
    #[error("job {0:?} is disabled in the config")]
    Disabled(String),
    /// No queue item has this id.
    #[error("no queue item has id {0}")]
    NoSuchItem(u64),
    /// The item already ended.
    #[error("queue item {0} already ended ({1})")]
    Finished(u64, String),
    /// The control socket failed.
    #[error("control socket {path}: {message}")]
    Control {
        /// The socket.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The service's answer was an error.
    #[error("{0}")]
    Remote(String),
}

/// One job as `cairn service status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobStatus {
    /// The job.
    pub name: String,
    /// `backup`, `retention` or `sync`.
    pub kind: String,
    /// Whether it runs at all.
    pub enabled: bool,
    /// Its schedule state.
    pub state: JobState,
    /// When it is next due (now, if overdue); `None` when disabled.
    pub next_due: Option<Timestamp>,
}

/// Where the time comes from.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The item running now.
#[derive(Debug)]
struct Running {
    id: u64,
    progress: Mutex<Option<ItemProgress>>,
    cancel: AtomicBool,
    /// Why it is being stopped: cancelled, or interrupted by shutdown.
    stop_as: Mutex<Option<ItemState>>,
    slot: ChildSlot,
}

/// The service's logic, shared by the scheduler, the runner and the
/// control socket.
pub struct Core {
    config: Config,
    state: State,
    executor: Arc<dyn Executor>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    /// Serializes read-modify-write of queue items.
    queue_lock: Mutex<()>,
    running: Mutex<Option<Arc<Running>>>,
    stopping: AtomicBool,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("state", &self.state)
            .field("stopping", &self.stopping)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Core {
    /// Set up the service over its opened state. Items a previous run left
    /// `running` (it was killed) are marked interrupted.
    pub fn new(
        config: Config,
        state: State,
        executor: Arc<dyn Executor>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
    ) -> Result<Core, ServiceError> {
        let core = Core {
            config,
            state,
            executor,
            notifier,
            clock,
            queue_lock: Mutex::new(()),
            running: Mutex::new(None),
            stopping: AtomicBool::new(false),
        };
        let now = core.clock.now();
        for mut item in core.state.queue()? {
            if item.state == ItemState::Running {
                item.state = ItemState::Interrupted;
                item.finished = Some(now);
                item.message = Some("the service stopped while it ran".into());
                core.state.put_item(&item)?;
            }
        }
        Ok(core)
    }

    /// The config it runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The state it keeps.
    pub fn state(&self) -> &State {
        &self.state
    }

    fn job_state(&self, name: &str) -> JobState {
        self.state.job(name).unwrap_or_else(|e| {
            tracing::error!("reading the state of job {name}: {e}");
            JobState::default()
        })
    }

    /// Queue what is due and send the reminders that are due.
    pub fn tick(&self) -> Result<(), ServiceError> {
        let now = self.clock.now();
        let queue = self.state.queue()?;
        let actions = schedule::actions(
            &self.config,
            &|n| self.job_state(n),
            &|n| active(&queue, n).is_some(),
            now,
        );
        for action in actions {
            match action {
                Action::Enqueue(name) => {
                    self.enqueue(&name, Reason::Schedule)?;
                }
                Action::Remind(name) => {
                    let account = match self.config.job(&name) {
                        Some(JobRef::Backup(b)) => b.account.clone(),
                        _ => String::new(),
                    };
                    let mut ev = Event::new(
                        EventKind::BackupsDisabled,
                        &name,
                        format!(
                            "backups are not enabled for job {name:?} (account {account:?}): \
                             no snapshots are being taken; set `enabled = true` in the config to resume"
                        ),
                    )
                    .account(&account);
                    ev.time = now;
                    self.notifier.notify(&ev);
                    let mut st = self.state.job(&name)?;
                    st.last_reminder = Some(now);
                    self.state.set_job(&name, &st)?;
                }
            }
        }
        Ok(())
    }

    /// Queue a run of `job` (unless one is already queued or running:
    /// then that item is returned).
    pub fn enqueue(&self, job: &str, reason: Reason) -> Result<QueueItem, ServiceError> {
        let Some(j) = self.config.job(job) else {
            return Err(ServiceError::NoSuchJob(
                job.to_string(),
                self.config.job_names().join(", "),
            ));
        };
        if !j.enabled() {
            return Err(ServiceError::Disabled(job.to_string()));
        }
        let _g = lock(&self.queue_lock);
        if let Some(existing) = active(&self.state.queue()?, job) {
            return Ok(existing.clone());
        }
        let item = QueueItem {
            id: self.state.next_id()?,
            job: job.to_string(),
            kind: j.kind().to_string(),
            reason,
            state: ItemState::Pending,
            queued: self.clock.now(),
            started: None,
            finished: None,
            message: None,
            progress: None,
        };
        self.state.put_item(&item)?;
        tracing::info!(
            "queued {} job {job} ({reason}) as item {}",
            item.kind,
            item.id
        );
        Ok(item)
    }

    /// Every item: the running one (with its progress), the pending ones,
    /// and the recent history.
    pub fn list(&self) -> Result<Vec<QueueItem>, ServiceError> {
        let mut items = self.state.queue()?;
        if let Some(r) = lock(&self.running).as_ref()
            && let Some(item) = items.iter_mut().find(|i| i.id == r.id)
        {
            item.progress = lock(&r.progress).clone();
        }
        Ok(items)
    }

    /// Every job with its schedule state and when it is next due
    /// (`None`: never, it is disabled).
    pub fn status(&self) -> Result<Vec<JobStatus>, ServiceError> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for name in self.config.job_names() {
            let Some(job) = self.config.job(&name) else {
                continue;
            };
            let state = self.state.job(&name)?;
            let next_due = job
                .enabled()
                .then(|| schedule::job_due_at(job, &state, &self.config().time_zone()).max(now));
            out.push(JobStatus {
                kind: job.kind().to_string(),
                enabled: job.enabled(),
                name,
                state,
                next_due,
            });
        }
        Ok(out)
    }

    /// Cancel a pending item, or stop the running one at a safe point.
    pub fn cancel(&self, id: u64) -> Result<QueueItem, ServiceError> {
        let _g = lock(&self.queue_lock);
        let mut item = self
            .state
            .queue()?
            .into_iter()
            .find(|i| i.id == id)
            .ok_or(ServiceError::NoSuchItem(id))?;
        match item.state {
            ItemState::Pending => {
                let now = self.clock.now();
                item.state = ItemState::Cancelled;
                item.finished = Some(now);
                item.message = Some("cancelled before it started".into());
                self.state.put_item(&item)?;
                // A cancelled run that was due counts as a cancelled
                // attempt, tried again after the retry delay; otherwise the
                // scheduler would queue it again at once.
                let mut st = self.state.job(&item.job)?;
                if let Some(job) = self.config.job(&item.job)
                    && schedule::job_due_at(job, &st, &self.config().time_zone()) <= now
                {
                    st.last_start = Some(now);
                    st.last_ok = Some(false);
                    st.last_message = Some("cancelled".into());
                    st.next_due =
                        Some(schedule::job_due_at(job, &st, &self.config().time_zone()).max(now));
                    self.state.set_job(&item.job, &st)?;
                }
                Ok(item)
            }
            ItemState::Running => {
                if let Some(r) = lock(&self.running).as_ref()
                    && r.id == id
                {
                    stop_running(r, ItemState::Cancelled);
                    item.message = Some("stopping at the next safe point".into());
                }
                Ok(item)
            }
            s => Err(ServiceError::Finished(
                id,
                serde_json::to_string(&s).unwrap_or_default(),
            )),
        }
    }

    /// Cancel every pending item and stop the running one. Returns the
    /// items cancelled or being stopped.
    pub fn clear(&self) -> Result<Vec<QueueItem>, ServiceError> {
        let ids: Vec<u64> = self
            .state
            .queue()?
            .iter()
            .filter(|i| !i.state.finished())
            .map(|i| i.id)
            .collect();
        let mut out = Vec::new();
        for id in ids {
            match self.cancel(id) {
                Ok(item) => out.push(item),
                // It ended meanwhile.
                Err(ServiceError::Finished(..)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Stop: take no more items and stop the running one at a safe point.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(r) = lock(&self.running).as_ref() {
            stop_running(r, ItemState::Interrupted);
        }
    }

    /// Whether [`Core::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// When something next becomes due.
    pub fn next_wake(&self) -> Option<Timestamp> {
        schedule::next_wake(&self.config, &|n| self.job_state(n))
    }

    /// Take the oldest pending item and mark it running.
    fn take_next(&self) -> Result<Option<(QueueItem, Arc<Running>)>, ServiceError> {
        if self.stopping() {
            return Ok(None);
        }
        let _g = lock(&self.queue_lock);
        let Some(mut item) = self
            .state
            .queue()?
            .into_iter()
            .find(|i| i.state == ItemState::Pending)
        else {
            return Ok(None);
        };
        let now = self.clock.now();
        item.state = ItemState::Running;
        item.started = Some(now);
        self.state.put_item(&item)?;
        let running = Arc::new(Running {
            id: item.id,
            progress: Mutex::new(None),
            cancel: AtomicBool::new(false),
            stop_as: Mutex::new(None),
            slot: ChildSlot::default(),
        });
        *lock(&self.running) = Some(Arc::clone(&running));
        Ok(Some((item, running)))
    }

    /// Run the oldest pending item to its end; `None` when nothing is
    /// pending (or the service is stopping).
    pub fn run_next(&self) -> Result<Option<QueueItem>, ServiceError> {
        let Some((mut item, running)) = self.take_next()? else {
            return Ok(None);
        };
        let started = item.started.unwrap_or_else(|| self.clock.now());
        let finish = |item: &mut QueueItem, state: ItemState, message: String| {
            item.state = state;
            item.finished = Some(self.clock.now());
            item.message = Some(message);
            item.progress = None;
        };
        let job = match self.config.job(&item.job) {
            Some(j) if j.enabled() => j,
            Some(_) => {
                finish(
                    &mut item,
                    ItemState::Cancelled,
                    "the job is disabled in the config".into(),
                );
                return self.end(item, running).map(Some);
            }
            None => {
                finish(
                    &mut item,
                    ItemState::Failed,
                    "the job is no longer in the config".into(),
                );
                return self.end(item, running).map(Some);
            }
        };
        let mut st = self.state.job(&item.job)?;
        st.last_start = Some(started);
        st.last_ok = None;
        self.state.set_job(&item.job, &st)?;
        tracing::info!("started {} job {} (item {})", item.kind, item.job, item.id);

        let ctx = JobContext {
            progress: &running.progress,
            cancel: &running.cancel,
            slot: &running.slot,
        };
        let result = self.executor.run(&self.config, &item.job, job, &ctx);

        let stop_as = *lock(&running.stop_as);
        // A snapshot that failed its verification is no good backup: the
        // item failed. The schedule still moves on (the backup ran; taking
        // another at once would most likely fail the same check).
        let state = if result.interrupted {
            stop_as.unwrap_or(ItemState::Interrupted)
        } else if result.ok && result.verified != Some(false) {
            ItemState::Done
        } else {
            ItemState::Failed
        };
        finish(&mut item, state, result.message.clone());
        if result.ok {
            st.last_ok = Some(true);
            st.last_success = Some(started);
        } else if state == ItemState::Interrupted {
            // Due again at the next start.
            st.last_ok = None;
        } else {
            st.last_ok = Some(false);
        }
        st.last_message = Some(result.message.clone());
        st.next_due =
            Some(schedule::job_due_at(job, &st, &self.config().time_zone()).max(self.clock.now()));
        if let Some(s) = &result.snapshot {
            st.last_snapshot = Some(s.clone());
            if result.verified == Some(true) {
                st.last_verified = Some(s.clone());
            }
        }
        self.state.set_job(&item.job, &st)?;
        for ev in &result.events {
            self.notifier.notify(ev);
        }
        let item = self.end(item, running)?;
        tracing::info!(
            "{} job {} (item {}) ended {}: {}",
            item.kind,
            item.job,
            item.id,
            item.state,
            item.message.as_deref().unwrap_or_default()
        );
        // Offsite copies follow the purge: deletions reach the remote only
        // after retention removed them here.
        if item.job == RETENTION && result.ok && !self.stopping() {
            for s in &self.config.syncs {
                if s.enabled {
                    self.enqueue(s.name(), Reason::AfterRetention)?;
                }
            }
        }
        Ok(Some(item))
    }

    fn end(&self, item: QueueItem, running: Arc<Running>) -> Result<QueueItem, ServiceError> {
        let _g = lock(&self.queue_lock);
        self.state.put_item(&item)?;
        let mut r = lock(&self.running);
        if r.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, &running)) {
            *r = None;
        }
        Ok(item)
    }
}

/// The pending or running item of `job`, if any.
fn active<'q>(queue: &'q [QueueItem], job: &str) -> Option<&'q QueueItem> {
    queue.iter().find(|i| i.job == job && !i.state.finished())
}

fn stop_running(r: &Running, as_: ItemState) {
    {
        let mut s = lock(&r.stop_as);
        if s.is_none() {
            *s = Some(as_);
        }
    }
    if !r.cancel.swap(true, Ordering::SeqCst) {
        r.slot.terminate();
    }
}

#[cfg(test)]
mod tests;
