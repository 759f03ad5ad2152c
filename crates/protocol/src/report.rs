//! The `--json` reports the service reads from its `cairn` children. The
//! command serializes these types and the service deserializes them, so
//! the fields the service relies on cannot drift apart. Parts only people
//! read (per-account plans, prune details) stay free-form JSON values.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What `cairn backup --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupReport {
    /// The new snapshot's id.
    pub id: String,
    /// Its first 8 hex digits.
    pub short_id: String,
    /// The snapshot it was compared with.
    pub parent: Option<String>,
    /// Packs left by an interrupted backup that were reused.
    pub adopted_packs: u64,
    /// Packs the index lists that are missing (their blobs were stored again).
    pub lost_packs: Vec<String>,
    /// The snapshot's summary.
    pub summary: BackupSummary,
}

/// A backup's summary: the counts the service reports, and the rest of
/// the snapshot's summary as it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupSummary {
    /// Files not in the parent.
    pub files_new: u64,
    /// Files changed since the parent.
    pub files_changed: u64,
    /// Bytes of new packs.
    pub bytes_added: u64,
    /// Entries that could not be read.
    pub unreadable_count: u64,
    /// Everything else the summary holds.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// What `cairn verify --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// The snapshot verified.
    pub snapshot: String,
    /// `verified` or `failed`.
    pub verdict: String,
    /// Blobs read.
    pub blobs: u64,
    /// Packs read.
    pub packs: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// The command run against a restored copy.
    pub command: Option<String>,
    /// Whether it ran.
    pub command_ran: bool,
    /// What failed.
    pub problems: Vec<String>,
    /// The verification record written, unless `--no-record`.
    pub record: Option<String>,
}

/// What `cairn forget --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForgetReport {
    /// Nothing was deleted.
    pub dry_run: bool,
    /// The time the policy was applied at.
    pub now: jiff::Timestamp,
    /// The policy's time zone.
    pub timezone: String,
    /// Each account's plan.
    pub accounts: Vec<serde_json::Value>,
    /// Snapshots kept.
    pub kept: u64,
    /// Snapshots removed (or that would be, in a dry run).
    pub removed: u64,
    /// Log segments kept and removed, per stream.
    pub logs: Vec<LogRetention>,
    /// Accounts purged.
    pub purged_accounts: Vec<String>,
    /// Of those removed, snapshots and log segments that S3 object lock
    /// still retains: they stay until a forget after `retained_until`.
    #[serde(default)]
    pub retained: u64,
    /// The earliest retain-until date among them.
    #[serde(default)]
    pub retained_until: Option<jiff::Timestamp>,
    /// The prune that followed, if any.
    pub prune: Option<serde_json::Value>,
}

/// Retention of one log stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRetention {
    /// The account.
    pub account: String,
    /// The stream.
    pub stream: String,
    /// Segments kept.
    pub kept: u64,
    /// Segments removed.
    pub removed: u64,
}

/// Objects and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// How many objects.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The counts of `cairn sync --json` the service reports (the sync's
/// report holds more).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCounts {
    /// Copied, by kind of object.
    pub copied: BTreeMap<String, Count>,
    /// Deleted, by kind of object.
    pub deleted: BTreeMap<String, Count>,
}

impl SyncCounts {
    /// Objects copied, all kinds.
    pub fn objects_copied(&self) -> u64 {
        self.copied.values().map(|c| c.objects).sum()
    }

    /// Objects deleted, all kinds.
    pub fn objects_deleted(&self) -> u64 {
        self.deleted.values().map(|c| c.objects).sum()
    }
}
