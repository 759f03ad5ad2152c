//! The service's persistent state, in redb at `<state-dir>/state.redb`:
//! each job's schedule state and the operation queue. One process holds
//! it at a time (the running service, or the CLI when no service runs).
//!
//! This is the service's own bookkeeping, not repository data: losing it
//! makes every job due at the next start, nothing more.

use crate::queue::QueueItem;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const JOBS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("jobs");
const QUEUE: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("queue");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

/// Finished queue items kept for `queue list`.
const HISTORY: usize = 50;

/// State errors.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another process has the state open.
    #[error(
        "{0} is in use by another process (a running service? `cairn queue` talks to it through its control socket)"
    )]
    InUse(PathBuf),
    /// redb or the file system failed.
    #[error("service state {path}: {message}")]
    Storage {
        /// The state file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// One job's schedule state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    /// When its last run started.
    pub last_start: Option<jiff::Timestamp>,
    /// When its last successful run started (for a backup job: the time of
    /// its newest snapshot).
    pub last_success: Option<jiff::Timestamp>,
    /// Whether the last run succeeded.
    pub last_ok: Option<bool>,
    /// What the last run said.
    pub last_message: Option<String>,
    /// The newest snapshot it took.
    pub last_snapshot: Option<String>,
    /// The newest snapshot that passed verification.
    pub last_verified: Option<String>,
    /// When the administrator was last reminded that the job is disabled.
    pub last_reminder: Option<jiff::Timestamp>,
    /// When it is next due, as of its last run (the scheduler recomputes
    /// it from the fields above; this copy is for `cairn service status`
    /// and for people reading the state).
    #[serde(default)]
    pub next_due: Option<jiff::Timestamp>,
}

/// The state database.
#[derive(Debug)]
pub struct State {
    db: redb::Database,
    path: PathBuf,
}

impl State {
    /// Open (or create) the state in `dir` (created with mode 0700).
    pub fn open(dir: &Path) -> Result<State, StateError> {
        let path = dir.join("state.redb");
        let storage = |message: String| StateError::Storage {
            path: path.clone(),
            message,
        };
        create_private_dir(dir).map_err(|e| storage(format!("creating {}: {e}", dir.display())))?;
        let db = match redb::Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StateError::InUse(path));
            }
            Err(e) => return Err(storage(e.to_string())),
        };
        State::with_tables(db, path)
    }

    /// For a reader (`cairn service status`): the state in `dir` if there
    /// is one, else an empty one in memory; nothing is created on disk.
    pub fn open_for_reading(dir: &Path) -> Result<State, StateError> {
        let path = dir.join("state.redb");
        if path.exists() {
            return State::open(dir);
        }
        let db = redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| StateError::Storage {
                path: path.clone(),
                message: e.to_string(),
            })?;
        State::with_tables(db, path)
    }

    fn with_tables(db: redb::Database, path: PathBuf) -> Result<State, StateError> {
        let state = State { db, path };
        state.write(|txn| {
            txn.open_table(JOBS)?;
            txn.open_table(QUEUE)?;
            txn.open_table(META)?;
            Ok(())
        })?;
        Ok(state)
    }

    fn err(&self, e: impl std::fmt::Display) -> StateError {
        StateError::Storage {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>,
    ) -> Result<T, StateError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let out = f(&txn).map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// A job's state (default when it never ran).
    pub fn job(&self, name: &str) -> Result<JobState, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(JOBS).map_err(|e| self.err(e))?;
        match table.get(name).map_err(|e| self.err(e))? {
            Some(v) => serde_json::from_slice(v.value())
                .map_err(|e| self.err(format!("job {name:?}: {e}"))),
            None => Ok(JobState::default()),
        }
    }

    /// Store a job's state.
    pub fn set_job(&self, name: &str, state: &JobState) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(state).map_err(|e| self.err(e))?;
        self.write(|txn| {
            txn.open_table(JOBS)?.insert(name, bytes.as_slice())?;
            Ok(())
        })
    }

    /// Every queue item, oldest first.
    pub fn queue(&self) -> Result<Vec<QueueItem>, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(QUEUE).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            let item: QueueItem = serde_json::from_slice(v.value())
                .map_err(|e| self.err(format!("queue item {}: {e}", k.value())))?;
            out.push(item);
        }
        Ok(out)
    }

    /// Store (insert or update) a queue item, and forget the oldest
    /// finished ones beyond the history.
    pub fn put_item(&self, item: &QueueItem) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(item).map_err(|e| self.err(e))?;
        let finished: Vec<u64> = self
            .queue()?
            .iter()
            .filter(|i| i.state.finished() && i.id != item.id)
            .map(|i| i.id)
            .collect();
        let excess = (finished.len() + usize::from(item.state.finished())).saturating_sub(HISTORY);
        self.write(|txn| {
            let mut table = txn.open_table(QUEUE)?;
            table.insert(item.id, bytes.as_slice())?;
            for id in finished.iter().take(excess) {
                table.remove(*id)?;
            }
            Ok(())
        })
    }

    /// A new queue item id.
    pub fn next_id(&self) -> Result<u64, StateError> {
        self.write(|txn| {
            let mut meta = txn.open_table(META)?;
            let next = meta.get("next_id")?.map_or(1, |v| v.value());
            meta.insert("next_id", next + 1)?;
            Ok(next)
        })
    }
}

/// Create a directory only its owner can enter.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
