//! The local store's own files: staging files that object_store writes
//! before renaming them into place (`<name>#<digits>`, object_store's
//! private naming, known only here). An upload killed before its rename
//! leaves one behind; object stores over a network never show partial
//! objects.

use crate::{ObjectKind, Store};
use std::path::PathBuf;
use std::time::Duration;

/// A staging file left by an interrupted upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staging {
    path: PathBuf,
}

impl std::fmt::Display for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())
    }
}

/// Whether a file name is object_store's staging name for an upload.
fn is_staging_name(name: &str) -> bool {
    name.split_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl Store {
    /// The staging files under every object directory that are at least
    /// `min_age` old (younger ones may belong to an upload in progress).
    /// Empty for stores that are not local.
    pub fn stale_staging(&self, min_age: Duration) -> Vec<Staging> {
        let Some(root) = &self.local_root else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for kind in ObjectKind::ALL
            .into_iter()
            .chain([ObjectKind::Deletion])
            .filter(|k| *k != ObjectKind::Config)
        {
            let mut dirs = vec![root.join(kind.dir())];
            while let Some(d) = dirs.pop() {
                let Ok(entries) = std::fs::read_dir(&d) else {
                    continue;
                };
                for e in entries.flatten() {
                    let path = e.path();
                    let Ok(md) = e.metadata() else { continue };
                    if md.is_dir() {
                        dirs.push(path);
                        continue;
                    }
                    let old = md
                        .modified()
                        .ok()
                        .and_then(|m| m.elapsed().ok())
                        .is_some_and(|age| age >= min_age);
                    if old && is_staging_name(&e.file_name().to_string_lossy()) {
                        out.push(Staging { path });
                    }
                }
            }
        }
        out
    }

    /// Remove a staging file found by [`Store::stale_staging`].
    pub fn remove_staging(&self, staging: &Staging) -> crate::Result<()> {
        match std::fs::remove_file(&staging.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(crate::Error::io(&staging.path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names() {
        assert!(is_staging_name("abcd#1"));
        assert!(is_staging_name("abcd#123456"));
        assert!(!is_staging_name("abcd#"));
        assert!(!is_staging_name("abcd#x1"));
        assert!(!is_staging_name("abcd"));
    }

    #[test]
    fn old_staging_files_are_found_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path(), true).unwrap();
        let name = "ab".repeat(32);
        store
            .put(ObjectKind::Pack, &name, bytes::Bytes::from_static(b"p"))
            .unwrap();
        let staged = dir.path().join(format!("data/ab/{name}#7"));
        std::fs::write(&staged, b"partial").unwrap();
        assert!(store.stale_staging(Duration::from_secs(3600)).is_empty());
        let found = store.stale_staging(Duration::ZERO);
        assert_eq!(found.len(), 1);
        store.remove_staging(&found[0]).unwrap();
        assert!(!staged.exists());
        assert_eq!(store.list(ObjectKind::Pack).unwrap().objects.len(), 1);
    }
}
