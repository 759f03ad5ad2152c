//! Lock objects (`locks/<id>`, docs/FORMAT.md "Locks"): who holds the
//! repository, how, and the lease the holder promises to keep. How locks
//! are taken, refreshed and confirmed is the repository's business.

use crate::crypto::{self, Keys, Sealed};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The lease a lock declares unless `CAIRN_LOCK_LEASE` says otherwise, and
/// the lease assumed for locks that declare none.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30 * 60);
/// The shortest lease a lock may declare (tests use a few seconds).
pub const MIN_LEASE: Duration = Duration::from_secs(2);
/// The longest lease honoured: a lock cannot keep others out for longer
/// than this without refreshing.
pub const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);
/// What a lock object records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Host holding it.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// User.
    pub username: String,
    /// Exclusive (deleting) or shared.
    pub exclusive: bool,
    /// What the holder is doing (`backup`, `prune`...).
    pub operation: String,
    /// When it was first taken.
    pub created: jiff::Timestamp,
    /// When this object was written.
    pub refreshed: jiff::Timestamp,
    /// The holder's lease in seconds: without a refresh for this long the
    /// lock is stale. Absent in locks written before leases were recorded
    /// ([`DEFAULT_LEASE`] then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_secs: Option<u64>,
    /// A random id (32 hex digits) the holder writes into every object of
    /// one lock: the first, each refresh, and its release marker. Absent in
    /// locks written before release markers existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// A release marker: the holder of this shared lock let it go but may
    /// not delete its objects (credentials without delete rights), so every
    /// object of the same `session` is stale from now on. Markers of
    /// exclusive locks are ignored: their holders may delete.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub released: bool,
}

impl LockInfo {
    /// The lease others judge this lock by (clamped to the allowed range).
    pub fn lease(&self) -> Duration {
        self.lease_secs
            .map_or(DEFAULT_LEASE, Duration::from_secs)
            .clamp(MIN_LEASE, MAX_LEASE)
    }
}

/// Seal a lock object.
pub fn seal(keys: &Keys, info: &LockInfo) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(info).map_err(|e| Error::invalid("lock", e.to_string()))?;
    crypto::seal_object(keys, Sealed::Lock, &json)
}

/// Open a lock object (named at random: no name to check).
pub fn open(keys: &Keys, bytes: &[u8], what: &str) -> Result<LockInfo> {
    let json = crypto::open_object(keys, Sealed::Lock, bytes, what)?;
    serde_json::from_slice::<LockInfo>(&json).map_err(|e| Error::corrupt(what, e.to_string()))
}
