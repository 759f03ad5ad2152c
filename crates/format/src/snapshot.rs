//! Snapshot manifests: which tree a backup produced, and about what. A
//! manifest is a sealed JSON object named by the hash of its bytes; it is
//! written last, after every pack and index object it depends on, so a
//! snapshot that is listed is complete. Layout in `docs/FORMAT.md`
//! ("Snapshots").

use crate::crypto::{Keys, Sealed};
use crate::error::Result;
use crate::id::{SnapshotId, TreeId};
use crate::layout::ObjectKind;
use crate::manifest::{self, Manifest};
use serde::{Deserialize, Serialize};

/// Current manifest version.
pub const SNAPSHOT_VERSION: u32 = 1;
/// The account of snapshots taken without `--account`.
pub const DEFAULT_ACCOUNT: &str = "default";
/// Manifests larger than this are rejected before decryption.
pub const MAX_SNAPSHOT_LEN: usize = 64 << 20;
/// At most this many paths are listed per problem kind in a summary (the
/// count is always exact).
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// A path as recorded: UTF-8 paths as JSON strings, anything else as
/// `{"hex": "..."}` so non-UTF-8 names survive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RawPath(pub Vec<u8>);

impl RawPath {
    /// Lossy text for display.
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl Serialize for RawPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("hex", &hex::encode(&self.0))?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for RawPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Hex { hex: String },
        }
        match Repr::deserialize(d)? {
            Repr::Text(t) => Ok(RawPath(t.into_bytes())),
            Repr::Hex { hex } => hex::decode(hex)
                .map(RawPath)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// The state of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotStatus {
    /// Written completely.
    Complete,
}

/// A file that could not be backed up, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The file.
    pub path: RawPath,
    /// What went wrong.
    pub error: String,
}

/// Counters of one backup run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    /// Files stored for the first time (no parent entry).
    pub files_new: u64,
    /// Files whose metadata differed from the parent and were read.
    pub files_changed: u64,
    /// Files taken from the parent snapshot without reading.
    pub files_unmodified: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks, hard links, devices, fifos and sockets.
    pub other_entries: u64,
    /// Sum of the sizes of all files in the snapshot.
    pub bytes_total: u64,
    /// Bytes actually read from files.
    pub bytes_read: u64,
    /// Stored bytes of new blobs (after compression and encryption).
    pub bytes_added: u64,
    /// Plaintext bytes of new blobs.
    pub raw_bytes_added: u64,
    /// New blobs.
    pub blobs_added: u64,
    /// When the backup started.
    pub started: Option<jiff::Timestamp>,
    /// Wall time in seconds.
    pub duration_secs: f64,
    /// How many files changed while they were being read.
    pub changed_during_read_count: u64,
    /// Which (at most [`MAX_LISTED_PROBLEMS`]).
    pub changed_during_read: Vec<RawPath>,
    /// How many entries could not be read (and are not in the snapshot).
    pub unreadable_count: u64,
    /// Which, with the error (at most [`MAX_LISTED_PROBLEMS`]).
    pub unreadable: Vec<Problem>,
}

/// A snapshot manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Manifest version.
    pub version: u32,
    /// The snapshot's time (the backup's start, or `--time`).
    pub time: jiff::Timestamp,
    /// Host it was taken on.
    pub host: String,
    /// User who took it.
    pub username: String,
    /// Account (tenant) it belongs to.
    pub account: String,
    /// The backed-up paths, absolute, in the order given.
    pub paths: Vec<RawPath>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The snapshot used to skip unchanged files, if any.
    pub parent: Option<SnapshotId>,
    /// The root tree.
    pub tree: TreeId,
    /// State.
    pub status: SnapshotStatus,
    /// What the run did.
    pub summary: Summary,
    /// The program that wrote it.
    pub program: String,
}

impl Manifest for Snapshot {
    const KIND: ObjectKind = ObjectKind::Snapshot;
    const SEALED: Sealed = Sealed::Snapshot;
    const VERSION: u32 = SNAPSHOT_VERSION;
    const NOUN: &'static str = "snapshot";
    const MAX_LEN: usize = MAX_SNAPSHOT_LEN;
    type Id = SnapshotId;

    fn version(&self) -> u32 {
        self.version
    }

    fn order_time(&self) -> jiff::Timestamp {
        self.time
    }
}

impl Snapshot {
    /// Seal for storage; returns the id and bytes.
    pub fn seal(&self, keys: &Keys) -> Result<(SnapshotId, Vec<u8>)> {
        manifest::seal(keys, self)
    }

    /// Open a stored manifest, checking its name and content.
    pub fn open(keys: &Keys, id: &SnapshotId, bytes: &[u8]) -> Result<Self> {
        manifest::open(keys, id, bytes)
    }
}

pub use crate::names::{validate_account, validate_tag};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn raw_paths_survive_json() {
        for p in [b"/plain/path".to_vec(), b"/bad/\xff\xfe".to_vec()] {
            let raw = RawPath(p.clone());
            let json = serde_json::to_string(&raw).unwrap();
            let back: RawPath = serde_json::from_str(&json).unwrap();
            assert_eq!(back.0, p);
        }
        assert_eq!(
            serde_json::to_string(&RawPath(b"/x".to_vec())).unwrap(),
            "\"/x\""
        );
    }

    #[test]
    fn seal_and_open() {
        let keys = Keys::derive(&MasterKey::generate().unwrap());
        let snap = Snapshot {
            version: SNAPSHOT_VERSION,
            time: jiff::Timestamp::now(),
            host: "h".into(),
            username: "u".into(),
            account: DEFAULT_ACCOUNT.into(),
            paths: vec![RawPath(b"/a".to_vec())],
            tags: vec!["t".into()],
            parent: None,
            tree: TreeId::from_bytes([9; 32]),
            status: SnapshotStatus::Complete,
            summary: Summary::default(),
            program: "cairn test".into(),
        };
        let (id, bytes) = snap.seal(&keys).unwrap();
        assert_eq!(Snapshot::open(&keys, &id, &bytes).unwrap(), snap);
        let mut bad = bytes.clone();
        bad[50] ^= 1;
        assert!(Snapshot::open(&keys, &SnapshotId::of_bytes(&bad), &bad).is_err());
    }
}
