//! Snapshot verification records (`verifications/<id>`, docs/FORMAT.md
//! "Verification records"): snapshots are immutable, so their verification
//! status is a series of records; the newest decides.

use crate::crypto::Sealed;
use crate::id::{SnapshotId, VerificationId};
use crate::layout::ObjectKind;
use crate::manifest::Manifest;
use serde::{Deserialize, Serialize};

/// Current record version.
pub const VERIFICATION_VERSION: u32 = 1;

/// What a verification concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every blob authenticated and the command (if any) succeeded.
    Verified,
    /// Something was missing, corrupt, or the command failed.
    Failed,
}

/// One verification of one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRecord {
    /// Record version.
    pub version: u32,
    /// The snapshot verified.
    pub snapshot: SnapshotId,
    /// The outcome.
    pub verdict: Verdict,
    /// When.
    pub time: jiff::Timestamp,
    /// The command run against a restored copy, if any.
    pub command: Option<String>,
    /// What failed (empty when verified).
    pub detail: String,
    /// Who recorded it.
    pub host: String,
}

impl Manifest for VerificationRecord {
    const KIND: ObjectKind = ObjectKind::Verification;
    const SEALED: Sealed = Sealed::Verification;
    const VERSION: u32 = VERIFICATION_VERSION;
    const NOUN: &'static str = "verification record";
    type Id = VerificationId;

    fn version(&self) -> u32 {
        self.version
    }

    fn order_time(&self) -> jiff::Timestamp {
        self.time
    }
}
