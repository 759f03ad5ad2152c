//! The local store's own files: staging files that object_store writes
//! before renaming them into place (`<name>#<digits>`, object_store's
//! private naming, known only here). An upload killed before its rename
//! leaves one behind; object stores over a network never show partial
//! objects.

use crate::{Error, ObjectKind, Result, Store};
use bytes::Bytes;
use object_store::path::Path as StorePath;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
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

// ------------------------------------------------------- direct reads

/// A read of a local object's file, as the store's error: a missing file
/// is [`Error::NotFound`] under the object's path.
fn read_error(file: &Path, object: &StorePath, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::NotFound {
            what: object.to_string(),
        }
    } else {
        Error::io(file, e)
    }
}

/// Read a whole local object in the calling thread.
pub(crate) fn read_whole(file: &Path, object: &StorePath) -> Result<Bytes> {
    std::fs::read(file)
        .map(Bytes::from)
        .map_err(|e| read_error(file, object, e))
}

/// Read a byte range of a local object in the calling thread. A range past
/// the end yields fewer bytes, which the caller reports as corrupt.
pub(crate) fn read_range(file: &Path, object: &StorePath, range: Range<u64>) -> Result<Bytes> {
    let f = std::fs::File::open(file).map_err(|e| read_error(file, object, e))?;
    let want = usize::try_from(range.end.saturating_sub(range.start))
        .map_err(|_| Error::invalid("range", "larger than memory"))?;
    let mut buf = vec![0u8; want];
    let mut done = 0;
    while done < want {
        match f.read_at(&mut buf[done..], range.start + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(file, object, e)),
        }
    }
    buf.truncate(done);
    Ok(Bytes::from(buf))
}

/// Read several local objects with up to `concurrency` threads (a cold
/// disk answers several requests at once); results in input order.
pub(crate) fn read_many(
    names: &[String],
    concurrency: usize,
    read: impl Fn(&str) -> Result<Bytes> + Sync,
) -> Vec<Result<Bytes>> {
    let threads = concurrency.clamp(1, 8).min(names.len());
    if threads <= 1 {
        return names.iter().map(|n| read(n)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut out: Vec<(usize, Result<Bytes>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut got = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(name) = names.get(i) else { break };
                        got.push((i, read(name)));
                    }
                    got
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}
