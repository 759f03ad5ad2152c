//! cairn's repository: a content-addressed, deduplicating, compressed and
//! encrypted store of backups on an [`object_store::ObjectStore`].
//!
//! What this crate owns:
//! - the open repository and its keys ([`repo`]); the format itself (ids,
//!   keys, blobs, packs, index objects, trees, manifests) is
//!   [`cairn_format`]'s, re-exported here under its module names;
//! - reading and writing manifests of every kind ([`manifests`]) and the
//!   binary objects ([`objects`]);
//! - the storage contract it expects from the object store ([`store`]);
//! - the redb index cache derived from the index objects ([`cache`]);
//! - the operations on a repository: backup of a directory tree, restore,
//!   check, repair, prune, browsing, transaction-log streams and their
//!   verification ([`logs`]), and the deletion order that applies a
//!   retention decision ([`forget`]).
//!
//! What it must not know about: command-line parsing, terminals and progress
//! bars (operations report through the [`progress::Progress`] trait),
//! retention policy (the retention crate decides, this crate deletes), and
//! which remote a repository is replicated to.
//!
//! Principles: the store is the truth and the cache is derived; nothing is
//! visible before it is complete (packs, then index objects, then the
//! snapshot manifest); untrusted bytes become errors, never panics.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

// The format, re-exported under the paths this crate has always used.
pub use cairn_format::{
    config, crypto, id, index, keyfile, layout, manifest, names, pack, snapshot, tree,
};
pub use cairn_store::{self as store, s3};

pub mod account;
pub mod backup;
pub mod browse;
pub mod cache;
pub mod check;
pub mod error;
pub mod exclude;
pub mod forget;
pub mod fsat;
pub mod inventory;
pub mod lock;
pub mod logs;
pub mod manifests;
pub mod objects;
pub mod pending;
pub mod progress;
#[cfg(test)]
mod protocol_tests;
pub mod prune;
#[cfg(test)]
mod put_only_tests;
pub mod repair;
pub mod repo;
pub mod restore;
pub mod stats;
#[cfg(test)]
mod test_repo;
pub mod util;
pub mod verification;
pub mod writer;

pub use account::{AccountEvent, AccountRecord, AccountState};
pub use backup::{BackupOptions, BackupOutcome, ParentChoice, backup};
pub use cache::{BlobLocation, IndexCache, IndexView, SyncReport};
pub use check::{CheckOptions, CheckReport, Damage, Subset, check};
pub use config::{ChunkerConfig, GearSource, RepoConfig};
pub use crypto::{Compression, Keys};
pub use error::{Error, ErrorClass, Result};
pub use forget::{ForgetOutcome, ForgetPlan, apply_forget};
pub use id::{
    BlobId, BlobKind, ChunkId, IndexId, KeyId, LockId, PackId, RepoId, SnapshotId, TreeId,
    VerificationId,
};
pub use keyfile::KdfCost;
pub use layout::ObjectKind;
pub use lock::LockGuard;
pub use progress::{FileChange, NoProgress, Progress};
pub use prune::{ExtendManifests, PruneOptions, PruneReport, prune, prune_locked};
pub use repair::{RepairReport, repair_index};
pub use repo::{CacheLocation, InitOptions, Repository};
pub use restore::{RestoreOptions, RestoreSummary, restore};
pub use snapshot::{DEFAULT_ACCOUNT, RawPath, Snapshot, SnapshotStatus, Summary};
pub use stats::{RepoStats, SnapshotStats, snapshot_stats, stats};
pub use store::Store;
pub use tree::{Metadata, Node, NodeData, Time, Tree};
pub use verification::{BlobVerification, Verdict, VerificationRecord, verify_snapshot};
