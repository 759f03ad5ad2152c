//! Where each kind of object lives in a repository and how it is named
//! (docs/FORMAT.md, "Object layout"). Ids are 64 lower-case hex digits.

/// The kinds of object a repository stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// The single `config` object.
    Config,
    /// Key files.
    Key,
    /// Packs of blobs.
    Pack,
    /// Index objects.
    Index,
    /// Snapshot manifests.
    Snapshot,
    /// Account lifecycle events.
    Account,
    /// Log segment manifests.
    Log,
    /// Snapshot verification records.
    Verification,
    /// Lock objects.
    Lock,
    /// Deletions a sync will carry out on this (destination) store once
    /// their grace period has passed.
    Deletion,
}

impl ObjectKind {
    /// Every kind of a repository, in the order a consistent copy writes
    /// them (data first, manifests last). Pending deletion records belong to
    /// sync destinations, not repositories, and are not listed here.
    pub const ALL: [ObjectKind; 9] = [
        ObjectKind::Config,
        ObjectKind::Key,
        ObjectKind::Pack,
        ObjectKind::Index,
        ObjectKind::Snapshot,
        ObjectKind::Log,
        ObjectKind::Account,
        ObjectKind::Verification,
        ObjectKind::Lock,
    ];

    /// The kinds of a repository that are manifests (everything they name
    /// is stored before them), in the order a sync lists them first and
    /// copies them last. Pending deletions are manifests too, but belong
    /// to no copy.
    pub const MANIFESTS: [ObjectKind; 4] = [
        ObjectKind::Snapshot,
        ObjectKind::Log,
        ObjectKind::Account,
        ObjectKind::Verification,
    ];

    /// The directory of this kind (`""` for config).
    pub const fn dir(self) -> &'static str {
        match self {
            ObjectKind::Config => "",
            ObjectKind::Key => "keys",
            ObjectKind::Pack => "data",
            ObjectKind::Index => "index",
            ObjectKind::Snapshot => "snapshots",
            ObjectKind::Account => "accounts",
            ObjectKind::Log => "logs",
            ObjectKind::Verification => "verifications",
            ObjectKind::Lock => "locks",
            ObjectKind::Deletion => "deletions",
        }
    }

    /// A human name for messages.
    pub const fn noun(self) -> &'static str {
        match self {
            ObjectKind::Config => "config",
            ObjectKind::Key => "key file",
            ObjectKind::Pack => "pack",
            ObjectKind::Index => "index object",
            ObjectKind::Snapshot => "snapshot",
            ObjectKind::Account => "account event",
            ObjectKind::Log => "log segment",
            ObjectKind::Verification => "verification record",
            ObjectKind::Lock => "lock",
            ObjectKind::Deletion => "pending deletion record",
        }
    }

    /// Whether these bytes are what the object's name says, for kinds named
    /// by the hash of their bytes; `None` for `config` and locks, whose
    /// names say nothing about their content. Needs no key.
    pub fn content_matches(self, name: &str, bytes: &[u8]) -> Option<bool> {
        let expected = match self {
            ObjectKind::Config | ObjectKind::Lock => return None,
            ObjectKind::Log => name.rsplit_once('-').map_or(name, |(_, id)| id),
            _ => name,
        };
        Some(blake3::hash(bytes).to_hex().as_str() == expected)
    }

    /// The path of object `name` of this kind, relative to the repository.
    pub fn path(self, name: &str) -> String {
        match self {
            ObjectKind::Config => "config".to_string(),
            ObjectKind::Pack => {
                let fan = name.get(..2).unwrap_or("00");
                format!("data/{fan}/{name}")
            }
            other => format!("{}/{name}", other.dir()),
        }
    }

    /// Whether objects of this kind are manifests: listed first and copied
    /// last by a sync (everything they name is stored before them).
    pub const fn is_manifest(self) -> bool {
        matches!(
            self,
            ObjectKind::Snapshot | ObjectKind::Log | ObjectKind::Account | ObjectKind::Verification
        )
    }

    /// Parse a listed path (relative to the repository) back into an object
    /// name of this kind; `None` for anything that is not exactly a valid
    /// name (staging files, strangers).
    pub fn name_from_path(self, s: &str) -> Option<String> {
        let rest = s.strip_prefix(self.dir())?.strip_prefix('/')?;
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let name = match self {
            ObjectKind::Config => return None,
            ObjectKind::Pack => {
                let (fan, name) = rest.split_once('/')?;
                if name.get(..2) != Some(fan) {
                    return None;
                }
                name
            }
            // `<stream tag>/<sequence>-<id>`: 32, 16 and 64 hex digits.
            ObjectKind::Log => {
                let (tag, file) = rest.split_once('/')?;
                let (seq, id) = file.split_once('-')?;
                return (hex(tag, 32) && hex(seq, 16) && hex(id, 64)).then(|| rest.to_string());
            }
            _ => rest,
        };
        hex(name, 64).then(|| name.to_string())
    }
}

/// An object name that says what kind it is: typed ids know their kind, so
/// that a pack id cannot be passed as a snapshot name.
pub trait ObjectName {
    /// The kind of object this names.
    const KIND: ObjectKind;
    /// The object's name.
    fn object_name(&self) -> String;
}

impl<T: ObjectName> ObjectName for &T {
    const KIND: ObjectKind = T::KIND;
    fn object_name(&self) -> String {
        (*self).object_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_names() {
        let name = "ab".repeat(32);
        assert_eq!(ObjectKind::Pack.path(&name), format!("data/ab/{name}"));
        assert_eq!(
            ObjectKind::Snapshot.path(&name),
            format!("snapshots/{name}")
        );
        assert_eq!(ObjectKind::Config.path("config"), "config");
        for kind in ObjectKind::ALL {
            if kind != ObjectKind::Config && kind != ObjectKind::Log {
                assert_eq!(kind.name_from_path(&kind.path(&name)), Some(name.clone()));
            }
        }
        let log = format!("{}/{}-{name}", "a".repeat(32), "0".repeat(16));
        assert_eq!(ObjectKind::Log.path(&log), format!("logs/{log}"));
        assert_eq!(
            ObjectKind::Log.name_from_path(&ObjectKind::Log.path(&log)),
            Some(log)
        );
        assert_eq!(
            ObjectKind::Log.name_from_path(&format!("logs/x/{name}")),
            None
        );
        assert_eq!(
            ObjectKind::Pack.name_from_path(&format!("data/cd/{name}")),
            None
        );
        assert_eq!(ObjectKind::Index.name_from_path("index/short"), None);
        assert_eq!(
            ObjectKind::Index.name_from_path(&format!("index/{}", "AB".repeat(32))),
            None
        );
    }
}
