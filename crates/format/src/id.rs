//! Identifiers: one type per kind of thing named, so a pack id cannot be
//! passed where a snapshot id belongs.
//!
//! Every id is 32 bytes. Blob ids ([`ChunkId`], [`TreeId`]) are keyed BLAKE3
//! hashes of the blob's plaintext (keys in [`crate::crypto`]); the names of
//! stored objects ([`PackId`], [`IndexId`], [`SnapshotId`], [`KeyId`],
//! [`AccountEventId`], [`LogId`], [`VerificationId`], [`DeletionId`]) are the
//! plain BLAKE3 hash of the object's bytes ([`ContentId`]), so anyone can
//! verify an object against its name without the key. [`LockId`]s and
//! [`RepoId`]s are random. Ids of stored objects know their directory
//! ([`crate::layout::ObjectName`]).

use std::fmt;
use std::str::FromStr;

/// Length of every id in bytes.
pub const ID_LEN: usize = 32;

/// A string that is not a valid id (or id prefix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {input:?}: {reason}")]
pub struct IdParseError {
    input: String,
    reason: &'static str,
}

fn parse_hex(s: &str) -> Result<[u8; ID_LEN], IdParseError> {
    let mut out = [0u8; ID_LEN];
    if s.len() != 2 * ID_LEN {
        return Err(IdParseError {
            input: s.chars().take(80).collect(),
            reason: "expected 64 hexadecimal digits",
        });
    }
    hex::decode_to_slice(s, &mut out).map_err(|_| IdParseError {
        input: s.chars().take(80).collect(),
        reason: "not hexadecimal",
    })?;
    Ok(out)
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; ID_LEN]);

        impl $name {
            /// Wrap raw bytes.
            pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
                Self(bytes)
            }
            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
                &self.0
            }
            /// Lower-case hexadecimal, 64 characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// The first 8 hexadecimal characters, for display.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
            /// Parse 64 hexadecimal characters.
            pub fn from_hex(s: &str) -> Result<Self, IdParseError> {
                parse_hex(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.short())
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, IdParseError> {
                Self::from_hex(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(
    /// A data blob: one chunk of file (or log segment) content.
    ChunkId
);
define_id!(
    /// A tree blob: the encoded metadata of one directory.
    TreeId
);
define_id!(
    /// A pack object: BLAKE3 of its bytes.
    PackId
);
define_id!(
    /// An index object: BLAKE3 of its bytes.
    IndexId
);
define_id!(
    /// A snapshot manifest: BLAKE3 of its bytes.
    SnapshotId
);
define_id!(
    /// A key file: BLAKE3 of its bytes.
    KeyId
);
define_id!(
    /// An account lifecycle event: BLAKE3 of its bytes.
    AccountEventId
);
define_id!(
    /// A log segment manifest: BLAKE3 of its bytes.
    LogId
);
define_id!(
    /// A snapshot verification record: BLAKE3 of its bytes.
    VerificationId
);
define_id!(
    /// A pending-deletion record: BLAKE3 of its bytes.
    DeletionId
);
define_id!(
    /// A lock object: random.
    LockId
);
define_id!(
    /// A repository: random, chosen at `init`.
    RepoId
);

/// The id of an object named by the plain BLAKE3 hash of its bytes.
pub trait ContentId:
    Copy + Eq + std::hash::Hash + Ord + fmt::Debug + fmt::Display + Send + Sync + 'static
{
    /// The id of an object with these bytes.
    fn of_bytes(bytes: &[u8]) -> Self;
    /// Parse 64 hexadecimal characters.
    fn from_hex(s: &str) -> Result<Self, IdParseError>;
    /// Lower-case hexadecimal, 64 characters.
    fn to_hex(&self) -> String;
    /// The first 8 hexadecimal characters, for display.
    fn short(&self) -> String;
}

macro_rules! content_addressed {
    ($($name:ident => $kind:ident),*) => {$(
        impl $name {
            /// The id of an object with these bytes (plain BLAKE3).
            pub fn of_bytes(bytes: &[u8]) -> Self {
                Self(*blake3::hash(bytes).as_bytes())
            }
        }
        impl ContentId for $name {
            fn of_bytes(bytes: &[u8]) -> Self {
                $name::of_bytes(bytes)
            }
            fn from_hex(s: &str) -> Result<Self, IdParseError> {
                $name::from_hex(s)
            }
            fn to_hex(&self) -> String {
                $name::to_hex(self)
            }
            fn short(&self) -> String {
                $name::short(self)
            }
        }
        impl crate::layout::ObjectName for $name {
            const KIND: crate::layout::ObjectKind = crate::layout::ObjectKind::$kind;
            fn object_name(&self) -> String {
                self.to_hex()
            }
        }
    )*};
}
content_addressed!(
    PackId => Pack,
    IndexId => Index,
    SnapshotId => Snapshot,
    KeyId => Key,
    AccountEventId => Account,
    VerificationId => Verification,
    DeletionId => Deletion
);
// Log segments are named `<tag>/<seq>-<id>`: their id alone is no name.
impl LogId {
    /// The id of an object with these bytes (plain BLAKE3).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}
impl ContentId for LogId {
    fn of_bytes(bytes: &[u8]) -> Self {
        LogId::of_bytes(bytes)
    }
    fn from_hex(s: &str) -> Result<Self, IdParseError> {
        LogId::from_hex(s)
    }
    fn to_hex(&self) -> String {
        LogId::to_hex(self)
    }
    fn short(&self) -> String {
        LogId::short(self)
    }
}
impl crate::layout::ObjectName for LockId {
    const KIND: crate::layout::ObjectKind = crate::layout::ObjectKind::Lock;
    fn object_name(&self) -> String {
        self.to_hex()
    }
}

macro_rules! random_id {
    ($($name:ident),*) => {$(
        impl $name {
            /// A fresh random id.
            pub fn random() -> Result<Self, getrandom::Error> {
                let mut bytes = [0u8; ID_LEN];
                getrandom::fill(&mut bytes)?;
                Ok(Self(bytes))
            }
        }
    )*};
}
random_id!(LockId, RepoId);

/// The two kinds of blob stored in packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobKind {
    /// File or log content.
    Data,
    /// Directory metadata.
    Tree,
}

impl BlobKind {
    /// The byte that stands for this kind on disk.
    pub const fn to_byte(self) -> u8 {
        match self {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        }
    }

    /// The kind a byte stands for, if any.
    pub const fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }
}

impl fmt::Display for BlobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlobKind::Data => "data",
            BlobKind::Tree => "tree",
        })
    }
}

/// A blob id of either kind, as the index and pack headers store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobRef {
    /// Which kind of blob.
    pub kind: BlobKind,
    /// Its 32-byte id.
    pub id: [u8; ID_LEN],
}

impl fmt::Display for BlobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} blob {}", self.kind, hex::encode(self.id))
    }
}

/// Implemented by the two blob id types.
pub trait BlobId: Copy + fmt::Debug {
    /// The kind of blob this id names.
    const KIND: BlobKind;
    /// The raw bytes.
    fn raw(&self) -> &[u8; ID_LEN];
    /// As a kind-tagged reference.
    fn blob_ref(&self) -> BlobRef {
        BlobRef {
            kind: Self::KIND,
            id: *self.raw(),
        }
    }
}

impl BlobId for ChunkId {
    const KIND: BlobKind = BlobKind::Data;
    fn raw(&self) -> &[u8; ID_LEN] {
        &self.0
    }
}

impl BlobId for TreeId {
    const KIND: BlobKind = BlobKind::Tree;
    fn raw(&self) -> &[u8; ID_LEN] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let id = PackId::of_bytes(b"hello");
        assert_eq!(PackId::from_hex(&id.to_hex()).unwrap(), id);
        assert_eq!(id.short().len(), 8);
        assert!(PackId::from_hex("abc").is_err());
        assert!(PackId::from_hex(&"zz".repeat(32)).is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<PackId>(&json).unwrap(), id);
        assert!(format!("{id:?}").starts_with("PackId("));
    }

    #[test]
    fn blob_kinds_round_trip() {
        for kind in [BlobKind::Data, BlobKind::Tree] {
            assert_eq!(BlobKind::from_byte(kind.to_byte()), Some(kind));
        }
        assert_eq!(BlobKind::from_byte(7), None);
    }
}
