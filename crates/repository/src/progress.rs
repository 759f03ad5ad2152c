//! How long operations report progress and warnings without knowing about
//! terminals: the CLI implements [`Progress`] with a progress bar, tests and
//! scripts pass [`NoProgress`]. Implementations must be cheap and
//! thread-safe: backup calls them from every worker thread.

use std::path::Path;

/// Receives progress events.
pub trait Progress: Send + Sync {
    /// A phase begins (`"backup"`, `"restore"`, `"check"`), with the total
    /// amount of work in bytes when known (for a backup, an estimate: the
    /// parent snapshot's size).
    fn phase(&self, _name: &str, _total_bytes: Option<u64>) {}
    /// Bytes processed (a backup counts the files it reads and those it
    /// takes unchanged from the parent).
    fn bytes(&self, _n: u64) {}
    /// One file finished.
    fn file_done(&self, _path: &Path) {}
    /// A backup classified a file: new, modified since the parent, or
    /// unchanged (called before [`Progress::file_done`]).
    fn file_change(&self, _path: &Path, _change: FileChange) {}
    /// Something worth telling the operator that does not stop the work.
    fn warn(&self, _message: &str) {}
    /// The phase ended.
    fn done(&self) {}
}

/// How a backed-up file compares with the parent snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    /// Not in the parent.
    New,
    /// In the parent, with other content or metadata.
    Modified,
    /// As in the parent (not read again).
    Unchanged,
}

/// Ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
