//! The operation queue: every job run goes through it, one at a time, in
//! order. Items are persisted in the state (so manual runs survive a
//! restart); the progress of the running item lives in memory.

use serde::{Deserialize, Serialize};

/// A unit enum's name as its serde form writes it (`done`,
/// `after-retention`, `backups_disabled`): log lines use the documented
/// names, not Rust's.
pub fn token<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

macro_rules! display_as_token {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&token(self))
            }
        }
    )*};
}
display_as_token!(ItemState, Reason);

/// Where an item is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemState {
    /// Waiting its turn.
    Pending,
    /// Running now.
    Running,
    /// Finished and succeeded.
    Done,
    /// Finished and failed.
    Failed,
    /// Cancelled before or while it ran.
    Cancelled,
    /// Stopped because the service stopped (or died) while it ran.
    Interrupted,
}

impl ItemState {
    /// No longer pending or running.
    pub fn finished(self) -> bool {
        !matches!(self, ItemState::Pending | ItemState::Running)
    }
}

/// Why an item was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Its interval elapsed (or it never ran).
    Schedule,
    /// `cairn service run-now`.
    Manual,
    /// A sync after the retention job's purge.
    AfterRetention,
}

/// Progress of the running item, as its cairn command reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemProgress {
    /// The step (`before hook`, `backup`, `verify`, ...).
    pub step: String,
    /// The command's phase (`backup`, `read data`, `sync`).
    pub phase: String,
    /// Bytes done in the phase.
    pub bytes: u64,
    /// Bytes in the phase, when known.
    pub total: Option<u64>,
}

/// One queued operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueItem {
    /// Its id (`cairn queue cancel ID`).
    pub id: u64,
    /// The job.
    pub job: String,
    /// `backup`, `retention` or `sync`.
    pub kind: String,
    /// Why it was queued.
    pub reason: Reason,
    /// Its state.
    pub state: ItemState,
    /// When it was queued.
    pub queued: jiff::Timestamp,
    /// When it started.
    pub started: Option<jiff::Timestamp>,
    /// When it finished.
    pub finished: Option<jiff::Timestamp>,
    /// What it did or why it failed.
    pub message: Option<String>,
    /// Progress (the running item only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<ItemProgress>,
}
