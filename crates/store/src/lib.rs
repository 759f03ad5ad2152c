//! cairn's storage contract: where each kind of object lives on an
//! [`ObjectStore`] (the layout is [`cairn_format::layout`]'s), and a
//! blocking interface to it for the layers above.
//!
//! What this crate owns: constructing local, S3 ([`s3`]) and in-memory
//! stores; the contract below; confirmed uploads on stores reached over a
//! network; the key-file permission rule, applied on every write path; the
//! local store's staging files; verified transfers between stores for
//! replication ([`Store::read_async`], [`Store::put_confirmed_async`]);
//! S3 object lock ([`object_lock`]: retention dates on writes, retained
//! objects kept from deletes, extensions), with the few signed S3 requests
//! object_store does not make.
//!
//! What it must not know: keys, encryption, the index cache, locks. No
//! caller reaches the raw [`ObjectStore`] through a [`Store`].
//!
//! What the repository relies on from the store, and nothing more:
//! - `put` is atomic: an object is either absent or complete, never partly
//!   written (object_store guarantees this for every backend; the local one
//!   writes a staging file, fsyncs it and renames it).
//! - Objects are immutable once written. Content-addressed objects may be
//!   written twice with identical bytes; `config` is created with a
//!   create-if-absent put, so two `init`s cannot both succeed. On a store
//!   reached over a network every upload is create-only first, and an
//!   object already there is confirmed instead of overwritten, so
//!   credentials that may not overwrite or delete suffice for writers
//!   ([`Store::put`]; [`Store::check_delete_rights`] tells whether they may
//!   delete).
//! - `list` may be slow or paginated but returns every complete object;
//!   names that are not valid object names (staging files, strangers) are
//!   reported separately and never parsed as ids.
//! - `delete` of a missing object is not an error.
//!
//! Typed ids ([`ObjectName`]) know their kind: [`Store::get_object`] and
//! its siblings take them, so a pack id cannot be read as a snapshot.
//! Names that are not ids (log segments, `config`, names from a listing)
//! go through the `(kind, name)` methods.

#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod direct;
mod error;
mod local;
pub mod object_lock;
pub mod s3;
mod transfer;
mod upload;

pub use cairn_format::layout::{ObjectKind, ObjectName};
pub use error::{CheckError, Error, Result};
pub use local::Staging;
pub use object_lock::{Retention, protected};
pub use upload::ATTEMPTS;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The store path of object `name` of `kind`.
fn store_path(kind: ObjectKind, name: &str) -> StorePath {
    StorePath::from(kind.path(name))
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The object's name (64 hex digits).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// When the store says it was written (the server's clock on S3, the
    /// file's mtime on a local store); `None` where it is not known.
    pub modified: Option<jiff::Timestamp>,
}

/// The result of listing one kind.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Valid objects.
    pub objects: Vec<Listed>,
    /// Paths under the kind's directory that are not valid object names.
    pub unrecognised: Vec<String>,
}

/// Whether a create-if-absent put created the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object was written.
    Created,
    /// An object already existed under that name; nothing was written.
    AlreadyExisted,
}

/// A repository's object store, with a blocking interface.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    runtime: Arc<tokio::runtime::Runtime>,
    location: String,
    local_root: Option<PathBuf>,
    remote: bool,
    /// How to reach an S3 store outside object_store (object lock).
    s3: Option<Arc<s3::S3Link>>,
    /// Set when protected objects are written under object lock.
    locked: Option<object_lock::Locked>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

fn runtime() -> Result<Arc<tokio::runtime::Runtime>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cairn-io")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| Error::io("tokio runtime", e))
}

impl Store {
    /// A repository in a local directory. With `create`, the directory is
    /// made if missing.
    pub fn local(path: &Path, create: bool) -> Result<Self> {
        if create {
            std::fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        }
        let root = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
        if !root.is_dir() {
            return Err(Error::NotADirectory(root.display().to_string()));
        }
        let fs = object_store::local::LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| Error::storage(root.display().to_string(), e))?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        Ok(Self {
            inner: Arc::new(fs),
            runtime: runtime()?,
            location: root.display().to_string(),
            local_root: Some(root),
            remote: false,
            s3: None,
            locked: None,
        })
    }

    /// An in-memory store, for unit tests.
    pub fn memory() -> Result<Self> {
        Self::from_object_store(
            Arc::new(object_store::memory::InMemory::new()),
            "memory:".to_string(),
        )
    }

    /// Wrap any object store (a fault-injecting wrapper in tests).
    pub fn from_object_store(inner: Arc<dyn ObjectStore>, location: String) -> Result<Self> {
        Ok(Self {
            inner,
            runtime: runtime()?,
            location,
            local_root: None,
            remote: false,
            s3: None,
            locked: None,
        })
    }

    /// Wrap a store reached over the network (S3): more requests run at once.
    pub fn remote(inner: Arc<dyn ObjectStore>, location: String) -> Result<Self> {
        let mut s = Self::from_object_store(inner, location)?;
        s.remote = true;
        Ok(s)
    }

    /// How many large transfers to run at once: disks want few, object
    /// stores over a network want more to hide latency.
    pub fn parallelism(&self) -> usize {
        if self.remote { 6 } else { 2 }
    }

    /// Where the repository is, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Whether this is a store in a local directory.
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// The file behind object `name` of a local store, for reads that
    /// need not cross to the runtime's threads (a restore reads thousands
    /// of ranges, a backup loads a tree per directory). `None` for other
    /// stores and for names that are not one plain path component.
    fn local_file(&self, kind: ObjectKind, name: &str) -> Option<PathBuf> {
        let root = self.local_root.as_ref()?;
        let plain = !name.is_empty()
            && !name.contains('/')
            && !name.contains('\\')
            && name != "."
            && name != "..";
        plain.then(|| root.join(kind.path(name)))
    }

    /// Run a future on this store's runtime from a synchronous thread.
    pub fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        self.runtime.block_on(fut)
    }

    /// Write (or overwrite) an object. On a store reached over a network
    /// the upload is confirmed (size, and the ETag where it is an MD5) and
    /// sent again when the store holds something else ([`crate::upload`]);
    /// an error means nothing wrong stays under the name.
    pub fn put(&self, kind: ObjectKind, name: &str, bytes: Bytes) -> Result<()> {
        let path = store_path(kind, name);
        if self.remote {
            let expected = upload::single_etag(&bytes);
            match self.block_on(upload::put_confirmed(
                self.writer_for(kind),
                &path,
                bytes,
                None,
                &expected,
            )) {
                Ok(0) => {}
                Ok(resent) => tracing::info!("{path}: confirmed after {resent} re-sends"),
                Err(e) => return Err(self.put_error(&path, e)),
            }
        } else {
            self.block_on(self.inner.put(&path, PutPayload::from(bytes)))
                .map_err(|e| Error::storage(path.to_string(), e))?;
        }
        self.protect(kind, name)?;
        Ok(())
    }

    fn put_error(&self, path: &StorePath, e: upload::PutError) -> Error {
        match e {
            // S3 answers an upload with "not found" only when the bucket
            // itself is missing.
            upload::PutError::Store(object_store::Error::NotFound { .. }) => {
                let bucket = self.bucket_name();
                Error::invalid(
                    self.location.clone(),
                    format!(
                        "the bucket {bucket} does not exist (the server answered \"not found\" to an upload of {path}); create it first, or run `cairn init --create-bucket`"
                    ),
                )
            }
            upload::PutError::Store(e) => Error::storage(path.to_string(), e),
            upload::PutError::Unconfirmed(reason) => {
                Error::corrupt(format!("upload of {path}"), reason)
            }
            upload::PutError::OverwriteRefused(reason, source) => Error::Refused {
                location: format!(
                    "{path}, which holds other bytes than cairn sent ({reason}) and may not be overwritten with these credentials; run `cairn check --read-data` from a host with full rights"
                ),
                source,
            },
        }
    }

    /// Write an object only if nothing exists under its name.
    pub fn put_new(&self, kind: ObjectKind, name: &str, bytes: Bytes) -> Result<PutOutcome> {
        let path = store_path(kind, name);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self.block_on(
            self.writer_for(kind)
                .put_opts(&path, PutPayload::from(bytes), opts),
        ) {
            Ok(_) => {
                self.protect(kind, name)?;
                Ok(PutOutcome::Created)
            }
            Err(object_store::Error::AlreadyExists { .. }) => Ok(PutOutcome::AlreadyExisted),
            Err(e) => Err(Error::storage(path.to_string(), e)),
        }
    }

    /// Key files hold the wrapped master key: on a local store, readable
    /// by the owner only. Called by every write path of this crate.
    fn protect(&self, kind: ObjectKind, name: &str) -> Result<()> {
        #[cfg(unix)]
        if let (ObjectKind::Key, Some(root)) = (kind, &self.local_root) {
            use std::os::unix::fs::PermissionsExt;
            let file = root.join(store_path(kind, name).as_ref());
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io(&file, e))?;
        }
        Ok(())
    }

    /// Read a whole object.
    pub fn get(&self, kind: ObjectKind, name: &str) -> Result<Bytes> {
        let path = store_path(kind, name);
        if let Some(file) = self.local_file(kind, name) {
            return direct::read_whole(&file, &path);
        }
        self.block_on(async {
            let result = self.inner.get(&path).await?;
            result.bytes().await
        })
        .map_err(|e| Error::storage(path.to_string(), e))
    }

    /// Read a whole object and check it with `check` (its hash, its
    /// authentication tag). Bytes that fail as corrupt are fetched once
    /// more before the error stands: one bad read on a network must not
    /// fail a restore or stop a prune, while damage that is really stored
    /// is still reported, naming the object.
    pub fn get_checked<T, E: CheckError>(
        &self,
        kind: ObjectKind,
        name: &str,
        check: impl Fn(Bytes) -> Result<T, E>,
    ) -> Result<T, E> {
        retry_corrupt(&store_path(kind, name), || check(self.get(kind, name)?))
    }

    /// [`Store::get_checked`] for a byte range.
    pub fn get_range_checked<T, E: CheckError>(
        &self,
        kind: ObjectKind,
        name: &str,
        range: Range<u64>,
        check: impl Fn(Bytes) -> Result<T, E>,
    ) -> Result<T, E> {
        retry_corrupt(&store_path(kind, name), || {
            check(self.get_range(kind, name, range.clone())?)
        })
    }

    /// Read several whole objects concurrently and check each
    /// ([`Store::get_checked`]); results in input order.
    pub fn get_many_checked<T, E: CheckError>(
        &self,
        kind: ObjectKind,
        names: &[String],
        concurrency: usize,
        check: impl Fn(&str, Bytes) -> Result<T, E>,
    ) -> Vec<Result<T, E>> {
        let fetched = self.get_many(kind, names, concurrency);
        names
            .iter()
            .zip(fetched)
            .map(
                |(name, first)| match first.map_err(E::from).and_then(|b| check(name, b)) {
                    Err(e) if e.is_corrupt() => {
                        tracing::warn!("{}: {e}; reading it again", store_path(kind, name));
                        self.get(kind, name)
                            .map_err(E::from)
                            .and_then(|b| check(name, b))
                    }
                    other => other,
                },
            )
            .collect()
    }

    /// Read a byte range of an object.
    pub fn get_range(&self, kind: ObjectKind, name: &str, range: Range<u64>) -> Result<Bytes> {
        let path = store_path(kind, name);
        let want = range.end.saturating_sub(range.start);
        let bytes = match self.local_file(kind, name) {
            Some(file) => direct::read_range(&file, &path, range)?,
            None => self
                .block_on(self.inner.get_range(&path, range))
                .map_err(|e| Error::storage(path.to_string(), e))?,
        };
        if bytes.len() as u64 != want {
            return Err(Error::corrupt(
                path.to_string(),
                format!(
                    "range read returned {} bytes, asked for {want}",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    /// Read several whole objects concurrently; results in input order.
    pub fn get_many(
        &self,
        kind: ObjectKind,
        names: &[String],
        concurrency: usize,
    ) -> Vec<Result<Bytes>> {
        if self.local_root.is_some() {
            return direct::read_many(names, concurrency, |name| self.get(kind, name));
        }
        let inner = &self.inner;
        self.block_on(
            futures::stream::iter(names.iter().map(|name| async move {
                let path = store_path(kind, name);
                async {
                    let result = inner.get(&path).await?;
                    result.bytes().await
                }
                .await
                .map_err(|e| Error::storage(path.to_string(), e))
            }))
            .buffered(concurrency.max(1))
            .collect::<Vec<_>>(),
        )
    }

    /// The size of an object, or `None` if it does not exist.
    pub fn head(&self, kind: ObjectKind, name: &str) -> Result<Option<u64>> {
        let path = store_path(kind, name);
        match self.block_on(self.inner.head(&path)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(path.to_string(), e)),
        }
    }

    /// Whether the repository's `config` exists.
    pub fn has_config(&self) -> Result<bool> {
        Ok(self.head(ObjectKind::Config, "config")?.is_some())
    }

    /// For a store on S3 whose `config` is missing: the bucket's name when
    /// the bucket itself does not exist. A listing of a missing bucket
    /// answers "not found"; one of an empty prefix answers nothing.
    pub fn missing_bucket(&self) -> Option<String> {
        if !self.remote {
            return None;
        }
        match self.block_on(self.inner.list_with_delimiter(None)) {
            Err(object_store::Error::NotFound { .. }) => Some(self.bucket_name().to_string()),
            // object_store reports a failed listing as a generic error
            // that carries the server's answer.
            Err(e) if error_chain_mentions(&e, "NoSuchBucket") => {
                Some(self.bucket_name().to_string())
            }
            _ => None,
        }
    }

    fn bucket_name(&self) -> &str {
        self.location
            .strip_prefix("s3://")
            .and_then(|l| l.split('/').next())
            .unwrap_or(&self.location)
    }

    /// List every object of a kind.
    pub fn list(&self, kind: ObjectKind) -> Result<Listing> {
        self.list_under(kind, "")
    }

    /// The names of the objects of a kind, sorted (what [`Store::list`]
    /// gives, without sizes and times). A local store's flat directories
    /// are read in the calling thread without a `stat` per object: a
    /// hundred thousand snapshots are listed in milliseconds.
    pub fn list_names(&self, kind: ObjectKind) -> Result<Vec<String>> {
        let flat = !matches!(
            kind,
            ObjectKind::Pack | ObjectKind::Log | ObjectKind::Config
        );
        let Some(root) = self.local_root.as_ref().filter(|_| flat) else {
            return Ok(self
                .list(kind)?
                .objects
                .into_iter()
                .map(|o| o.name)
                .collect());
        };
        let dir = root.join(kind.dir());
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let Some(file) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if let Some(name) = kind.name_from_path(&format!("{}/{file}", kind.dir())) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// List the objects of a kind under a sub-directory (log streams).
    pub fn list_under(&self, kind: ObjectKind, sub: &str) -> Result<Listing> {
        let prefix = if sub.is_empty() {
            StorePath::from(kind.dir())
        } else {
            StorePath::from(format!("{}/{sub}", kind.dir()))
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .block_on(self.inner.list(Some(&prefix)).try_collect())
            .map_err(|e| Error::storage(prefix.to_string(), e))?;
        let mut listing = Listing::default();
        for meta in metas {
            match kind.name_from_path(meta.location.as_ref()) {
                Some(name) => listing.objects.push(Listed {
                    name,
                    size: meta.size,
                    modified: jiff::Timestamp::from_nanosecond(i128::from(
                        meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
                    ))
                    .ok()
                    .filter(|t| *t > jiff::Timestamp::UNIX_EPOCH),
                }),
                None => listing.unrecognised.push(meta.location.to_string()),
            }
        }
        listing.objects.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listing)
    }

    /// Whether these credentials may delete objects: a `DELETE` of a name
    /// that does not exist under each kind that deleting operations remove
    /// (packs, index objects, snapshots, locks). S3 checks the right before
    /// it looks for the object, so a refusal says the credentials lack it,
    /// and an allowed probe changes nothing. [`Error::Refused`] names the
    /// first path refused.
    pub fn check_delete_rights(&self) -> Result<()> {
        for kind in [
            ObjectKind::Pack,
            ObjectKind::Index,
            ObjectKind::Snapshot,
            ObjectKind::Lock,
        ] {
            let mut probe = [0u8; 32];
            getrandom::fill(&mut probe).map_err(|e| {
                Error::io("random probe name", std::io::Error::other(e.to_string()))
            })?;
            self.delete_unlocked(kind, &hex::encode(probe))?;
        }
        Ok(())
    }

    /// Delete an object; deleting a missing object succeeds. Under object
    /// lock, a protected object whose retention lasts is not deleted
    /// ([`Error::Retained`]), and one whose retention has passed is deleted
    /// with its version.
    pub fn delete(&self, kind: ObjectKind, name: &str) -> Result<()> {
        if self.locked.is_some() && protected(kind) {
            return self.delete_locked(kind, name);
        }
        self.delete_unlocked(kind, name)
    }

    /// A plain `DELETE`.
    fn delete_unlocked(&self, kind: ObjectKind, name: &str) -> Result<()> {
        let path = store_path(kind, name);
        match self.block_on(self.inner.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::storage(path.to_string(), e)),
        }
    }
}

/// The same operations for objects named by typed ids.
impl Store {
    /// [`Store::put`] of the object `id` names.
    pub fn put_object<N: ObjectName>(&self, id: &N, bytes: Bytes) -> Result<()> {
        self.put(N::KIND, &id.object_name(), bytes)
    }

    /// [`Store::get`] of the object `id` names.
    pub fn get_object<N: ObjectName>(&self, id: &N) -> Result<Bytes> {
        self.get(N::KIND, &id.object_name())
    }

    /// [`Store::get_checked`] of the object `id` names.
    pub fn get_object_checked<N: ObjectName, T, E: CheckError>(
        &self,
        id: &N,
        check: impl Fn(Bytes) -> Result<T, E>,
    ) -> Result<T, E> {
        self.get_checked(N::KIND, &id.object_name(), check)
    }

    /// [`Store::get_range`] of the object `id` names.
    pub fn get_object_range<N: ObjectName>(&self, id: &N, range: Range<u64>) -> Result<Bytes> {
        self.get_range(N::KIND, &id.object_name(), range)
    }

    /// [`Store::get_range_checked`] of the object `id` names.
    pub fn get_object_range_checked<N: ObjectName, T, E: CheckError>(
        &self,
        id: &N,
        range: Range<u64>,
        check: impl Fn(Bytes) -> Result<T, E>,
    ) -> Result<T, E> {
        self.get_range_checked(N::KIND, &id.object_name(), range, check)
    }

    /// [`Store::head`] of the object `id` names.
    pub fn head_object<N: ObjectName>(&self, id: &N) -> Result<Option<u64>> {
        self.head(N::KIND, &id.object_name())
    }

    /// [`Store::delete`] of the object `id` names.
    pub fn delete_object<N: ObjectName>(&self, id: &N) -> Result<()> {
        self.delete(N::KIND, &id.object_name())
    }
}

/// Run `read` again once when it fails because the bytes were corrupt.
fn retry_corrupt<T, E: CheckError>(
    path: &StorePath,
    read: impl Fn() -> Result<T, E>,
) -> Result<T, E> {
    match read() {
        Err(e) if e.is_corrupt() => {
            tracing::warn!("{path}: {e}; reading it again");
            read()
        }
        other => other,
    }
}

/// Whether an error or one of its sources says `needle`.
fn error_chain_mentions(err: &(dyn std::error::Error + 'static), needle: &str) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if e.to_string().contains(needle) {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_only_credentials_write_what_is_new_and_refuse_to_overwrite() {
        let inner: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let no_delete = Arc::new(cairn_testkit::faults::NoDelete::new(inner.clone()));
        let store = Store::remote(no_delete.clone(), "memory:restricted".into()).unwrap();
        let name = "ab".repeat(32);
        store
            .put(ObjectKind::Pack, &name, Bytes::from_static(b"pack"))
            .unwrap();
        // Written again with the same bytes (a retry, another host): the
        // object there is confirmed, nothing is overwritten.
        store
            .put(ObjectKind::Pack, &name, Bytes::from_static(b"pack"))
            .unwrap();
        assert_eq!(
            no_delete.refused.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        // Other bytes under the name: only an overwrite would mend it, and
        // the credentials refuse one; the error says what is wrong.
        let err = store
            .put(ObjectKind::Pack, &name, Bytes::from_static(b"other"))
            .unwrap_err();
        assert!(err.is_refused(), "{err}");
        assert!(
            err.to_string().contains("other bytes than cairn sent"),
            "{err}"
        );
        assert_eq!(&store.get(ObjectKind::Pack, &name).unwrap()[..], b"pack");
        // Deletes are refused, and the probe says so without a trace.
        assert!(
            store
                .delete(ObjectKind::Pack, &name)
                .unwrap_err()
                .is_refused()
        );
        assert!(store.check_delete_rights().unwrap_err().is_refused());
        let full = Store::remote(inner, "memory:".into()).unwrap();
        full.check_delete_rights().unwrap();
        assert_eq!(full.list(ObjectKind::Pack).unwrap().objects.len(), 1);
        // With full rights a damaged object is mended by an overwrite.
        full.put(ObjectKind::Pack, &name, Bytes::from_static(b"other"))
            .unwrap();
        assert_eq!(&full.get(ObjectKind::Pack, &name).unwrap()[..], b"other");
    }

    #[test]
    fn memory_store_round_trip() {
        let store = Store::memory().unwrap();
        let name = "cd".repeat(32);
        store
            .put(ObjectKind::Index, &name, Bytes::from_static(b"hello"))
            .unwrap();
        assert_eq!(&store.get(ObjectKind::Index, &name).unwrap()[..], b"hello");
        assert_eq!(
            &store.get_range(ObjectKind::Index, &name, 1..3).unwrap()[..],
            b"el"
        );
        assert!(store.get_range(ObjectKind::Index, &name, 1..30).is_err());
        let listing = store.list(ObjectKind::Index).unwrap();
        assert_eq!(listing.objects.len(), 1);
        assert_eq!(listing.objects[0].size, 5);
        store.delete(ObjectKind::Index, &name).unwrap();
        store.delete(ObjectKind::Index, &name).unwrap();
        assert!(
            store
                .get(ObjectKind::Index, &name)
                .unwrap_err()
                .is_not_found()
        );
        assert_eq!(
            store
                .put_new(ObjectKind::Config, "config", Bytes::from_static(b"a"))
                .unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            store
                .put_new(ObjectKind::Config, "config", Bytes::from_static(b"b"))
                .unwrap(),
            PutOutcome::AlreadyExisted
        );
    }
}
