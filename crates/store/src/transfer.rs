//! Transfers between stores, for replication: whole-object reads and
//! confirmed uploads that run as tasks on the destination's runtime, many
//! at once. A sync reads through [`Store::read_async`] and writes through
//! [`Store::put_confirmed_async`], so it never touches files or raw object
//! stores, and the key-file permission rule holds for what it writes.

use crate::upload::{self, multipart_etag, single_etag};
use crate::{Error, ObjectKind, Result, Store, store_path};
use bytes::Bytes;
use object_store::ObjectStoreExt;

async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Error::io(
            "a blocking task",
            std::io::Error::other(format!("it failed: {e}")),
        )
    })
}

impl Store {
    /// Read a whole object from an async context. A local store reads the
    /// file straight into an exact-size buffer on the blocking pool
    /// (object_store zero-fills one first, a fifth of a sync's CPU).
    pub async fn read_async(&self, kind: ObjectKind, name: &str) -> Result<Bytes> {
        let path = store_path(kind, name);
        match &self.local_root {
            Some(root) => {
                let file = root.join(path.as_ref());
                match off_thread(move || std::fs::read(file)).await? {
                    Ok(v) => Ok(Bytes::from(v)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
                        what: path.to_string(),
                    }),
                    Err(e) => Err(Error::io(path.to_string(), e)),
                }
            }
            None => async { self.inner.get(&path).await?.bytes().await }
                .await
                .map_err(|e| Error::storage(path.to_string(), e)),
        }
    }

    /// Write an object from an async context, whole or (with `part_size`)
    /// as a multipart upload, and confirm it as [`Store::put`] does on a
    /// network: the size, then the ETag where it is an MD5, else the bytes
    /// read back; sent again up to [`crate::ATTEMPTS`] times, and removed
    /// when the last attempt is still wrong ([`Error::Corrupt`]). Returns
    /// how many times it was sent again.
    pub async fn put_confirmed_async(
        &self,
        kind: ObjectKind,
        name: &str,
        bytes: Bytes,
        part_size: Option<usize>,
    ) -> Result<u32> {
        let path = store_path(kind, name);
        let b = bytes.clone();
        let expected = off_thread(move || match part_size {
            Some(part_size) => multipart_etag(&b, part_size),
            None => single_etag(&b),
        })
        .await?;
        let resent =
            upload::put_confirmed(self.writer_for(kind), &path, bytes, part_size, &expected)
                .await
                .map_err(|e| self.put_error(&path, e))?;
        self.protect(kind, name)?;
        Ok(resent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_between_stores() {
        let dir = tempfile::tempdir().unwrap();
        let local = Store::local(dir.path(), true).unwrap();
        let memory = Store::memory().unwrap();
        let name = "ef".repeat(32);
        let body = Bytes::from(vec![9u8; 100_000]);
        local.put(ObjectKind::Pack, &name, body.clone()).unwrap();
        memory.block_on(async {
            let read = local.read_async(ObjectKind::Pack, &name).await.unwrap();
            assert_eq!(read, body);
            assert_eq!(
                memory
                    .put_confirmed_async(ObjectKind::Pack, &name, read.clone(), Some(30_000))
                    .await
                    .unwrap(),
                0
            );
            let missing = local.read_async(ObjectKind::Pack, &"00".repeat(32)).await;
            assert!(missing.unwrap_err().is_not_found());
        });
        assert_eq!(memory.get(ObjectKind::Pack, &name).unwrap(), body);
        // Key files written by a transfer are the owner's alone.
        let key = "12".repeat(32);
        local.block_on(async {
            local
                .put_confirmed_async(ObjectKind::Key, &key, Bytes::from_static(b"k"), None)
                .await
                .unwrap()
        });
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(format!("keys/{key}")))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
