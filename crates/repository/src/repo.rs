//! An open repository: the store, the keys, the configuration and the
//! index cache, with typed access to the objects.

use crate::cache::{IndexCache, SyncReport};
use crate::config::{ChunkerConfig, DEFAULT_PACK_SIZE, GearSource, RepoConfig};
use crate::crypto::{self, Compression, Keys, MasterKey, Sealed};
use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind, ID_LEN, IndexId, KeyId, SnapshotId, TreeId};
use crate::index::IndexFile;
use crate::keyfile::{KdfCost, KeyFile};
use crate::layout::ObjectKind;
use crate::lock::{HeldLock, LockGuard};
use crate::manifests::Manifests;
use crate::snapshot::Snapshot;
use crate::store::{PutOutcome, Store};
use crate::tree::Tree;
use cairn_chunker::{Chunker, Gear};
use cairn_format::layout::ObjectName;
use cairn_format::manifest::Manifest;
use parking_lot::Mutex;
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, Weak};

mod keys;
use keys::write_key_file;

/// Settings chosen at `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Chunker parameters.
    pub chunker: ChunkerConfig,
    /// Compression.
    pub compression: Compression,
    /// Target pack size in bytes.
    pub pack_size: u32,
    /// Cost of the password derivation in the first key file.
    pub kdf: KdfCost,
    /// S3 object lock for the objects that hold backups (the bucket must
    /// have it enabled).
    pub object_lock: Option<crate::config::ObjectLock>,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            chunker: ChunkerConfig::default(),
            compression: Compression::default(),
            pack_size: DEFAULT_PACK_SIZE,
            kdf: KdfCost::default(),
            object_lock: None,
        }
    }
}

/// Where the redb index cache lives.
#[derive(Debug, Clone)]
pub enum CacheLocation {
    /// `<dir>/<repository id>/index.redb`.
    Directory(PathBuf),
    /// In memory, rebuilt by every process (`--no-cache`).
    InMemory,
}

/// An open repository.
pub struct Repository {
    store: Store,
    /// Kept (zeroed on drop) to wrap new key files; `None` when opened
    /// with a put-only key.
    master: Option<MasterKey>,
    keys: Keys,
    /// The accounts a put-only key may write; `None` for a full key.
    put_only: Option<Vec<String>>,
    config: RepoConfig,
    chunker: Chunker,
    key_id: KeyId,
    cache_location: CacheLocation,
    cache: OnceLock<IndexCache>,
    /// Whether the index cache was brought up to date with the store by
    /// this process ([`Repository::index`]); the snapshot tables of the
    /// same file need no index sync.
    index_synced: std::sync::atomic::AtomicBool,
    index_sync: Mutex<()>,
    lock_wait: std::time::Duration,
    /// The lock this process holds on the repository, if any: every commit
    /// point confirms it first ([`Repository::confirm_lock`]).
    held: Mutex<Vec<Weak<HeldLock>>>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("location", &self.store.location())
            .field("id", &self.config.id)
            .finish_non_exhaustive()
    }
}

const CONFIG_NAME: &str = "config";

/// A snapshot and its id.
pub type SnapshotEntry = (SnapshotId, Snapshot);
/// A snapshot that could not be read, and why.
pub type UnreadableSnapshot = (SnapshotId, Error);

impl Repository {
    /// Create a repository in an empty store.
    pub fn init(
        store: Store,
        password: &[u8],
        opts: &InitOptions,
        cache: CacheLocation,
    ) -> Result<Self> {
        if store.has_config()? {
            return Err(Error::AlreadyInitialized(store.location().to_string()));
        }
        opts.kdf.validate()?;
        let mut config = RepoConfig::new(opts.chunker, opts.compression, opts.pack_size)?;
        let store = match opts.object_lock {
            Some(lock) => {
                lock.validate()?;
                if !store.bucket_has_object_lock()? {
                    return Err(Error::invalid(
                        "object lock",
                        format!(
                            "the bucket of {} does not have object lock enabled; S3 enables it only when a bucket is created (`cairn init --create-bucket --object-lock ...` does)",
                            store.location()
                        ),
                    ));
                }
                config.object_lock = Some(lock);
                store.with_object_lock(lock)?
            }
            None => store,
        };
        let master = MasterKey::generate()?;
        let keys = Keys::derive(&master);
        // The key file first: a config without a key would be a repository
        // nobody can open. The config is written last and only if absent,
        // so of two concurrent inits exactly one wins.
        let key_id = write_key_file(
            &store,
            &master,
            password,
            opts.kdf,
            crate::util::hostname(),
            crate::util::username(),
        )?;
        let json =
            serde_json::to_vec(&config).map_err(|e| Error::invalid("config", e.to_string()))?;
        let sealed = crypto::seal_object(&keys, Sealed::Config, &json)?;
        if store.put_new(ObjectKind::Config, CONFIG_NAME, sealed.into())?
            == PutOutcome::AlreadyExisted
        {
            store.delete_object(&key_id)?;
            return Err(Error::AlreadyInitialized(store.location().to_string()));
        }
        Self::assemble(store, Some(master), keys, config, key_id, cache)
    }

    /// Open a repository with a password.
    pub fn open(store: Store, password: &[u8], cache: CacheLocation) -> Result<Self> {
        if !store.has_config()? {
            return Err(Error::NoRepository(store.location().to_string()));
        }
        let opened = keys::unlock_any(&store, password)?;
        let key_id = opened.key_id;
        match opened.unlocked {
            crate::keyfile::Unlocked::Master(master) => {
                let keys = Keys::derive(&master);
                let config: RepoConfig =
                    store.get_checked(ObjectKind::Config, CONFIG_NAME, |sealed| {
                        let json = crypto::open_object(
                            &keys,
                            Sealed::Config,
                            &sealed,
                            "repository config",
                        )?;
                        serde_json::from_slice(&json)
                            .map_err(|e| Error::corrupt("repository config", e.to_string()))
                    })?;
                config.validate()?;
                keys::learn_recipients(&keys, &opened.files);
                Self::assemble(store, Some(master), keys, config, key_id, cache)
            }
            crate::keyfile::Unlocked::PutOnly(material) => {
                let what = format!("put-only key file {}", key_id.short());
                let config: RepoConfig = serde_json::from_value(material.config.clone())
                    .map_err(|e| Error::corrupt(&what, format!("its config copy: {e}")))?;
                config.validate()?;
                if config.id.to_hex() != material.repository {
                    return Err(Error::corrupt(&what, "made for another repository"));
                }
                let keys = Keys::put_only(&material)?;
                let accounts = material.accounts.clone();
                let mut repo = Self::assemble(store, None, keys, config, key_id, cache)?;
                repo.put_only = Some(accounts);
                Ok(repo)
            }
        }
    }

    fn assemble(
        store: Store,
        master: Option<MasterKey>,
        keys: Keys,
        config: RepoConfig,
        key_id: KeyId,
        cache_location: CacheLocation,
    ) -> Result<Self> {
        let store = match config.object_lock {
            Some(lock) if store.is_s3() => store.with_object_lock(lock)?,
            Some(_) => {
                // A copy made by `sync --from`: readable as any other.
                tracing::warn!(
                    "the repository's config asks for S3 object lock, and {} is not on S3: nothing written here is retained",
                    store.location()
                );
                store
            }
            None => store,
        };
        let gear = match config.chunker.gear {
            GearSource::Keyed => Gear::from_seed(keys.gear_seed()),
            GearSource::Public => Gear::public(),
        };
        let chunker = Chunker::new(config.chunker.params()?, gear);
        Ok(Self {
            store,
            master,
            keys,
            put_only: None,
            config,
            chunker,
            key_id,
            cache_location,
            cache: OnceLock::new(),
            index_synced: std::sync::atomic::AtomicBool::new(false),
            index_sync: Mutex::new(()),
            lock_wait: std::time::Duration::ZERO,
            held: Mutex::new(Vec::new()),
        })
    }

    /// The object store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The working keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The accounts, when opened with a put-only key.
    pub fn put_only_accounts(&self) -> Option<&[String]> {
        self.put_only.as_deref()
    }

    /// Refuse `what` unless opened with the full key.
    pub fn require_full_key(&self, what: &str) -> Result<()> {
        match self.put_only {
            None => Ok(()),
            Some(_) => Err(Error::PutOnly {
                what: what.to_string(),
            }),
        }
    }

    /// Refuse to write for `account` with a put-only key that does not
    /// name it.
    pub fn require_account(&self, account: &str) -> Result<()> {
        match &self.put_only {
            Some(accounts) if !accounts.iter().any(|a| a == account) => Err(Error::PutOnly {
                what: format!(
                    "writing for account {account:?} (this key may write for {})",
                    accounts.join(", ")
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The keys that open the blobs of `pack`: the working keys, or those
    /// of the put-only session it is sealed to (from the index cache).
    pub fn keys_for_pack(&self, pack: &crate::id::PackId) -> Result<Cow<'_, Keys>> {
        let sealing = self.index()?.sealing(pack);
        match sealing {
            None if !self.keys.is_put_only() => Ok(Cow::Borrowed(&self.keys)),
            sealing => Ok(self
                .keys
                .for_sealing(sealing.as_ref(), &format!("pack {}", pack.short()))?),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The chunker configured for this repository.
    pub fn chunker(&self) -> &Chunker {
        &self.chunker
    }

    /// The key file this session was opened with.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The index cache, opened and brought up to date on first use. A
    /// put-only host cannot read index objects: its cache lists only what
    /// it uploaded itself, and is never synced.
    pub fn index(&self) -> Result<&IndexCache> {
        use std::sync::atomic::Ordering;
        let cache = self.cache_file()?;
        if self.put_only.is_none() && !self.index_synced.load(Ordering::Acquire) {
            let _one = self.index_sync.lock();
            if !self.index_synced.load(Ordering::Acquire) {
                cache.sync(&self.store, &self.keys)?;
                self.index_synced.store(true, Ordering::Release);
            }
        }
        Ok(cache)
    }

    /// The local cache file, opened on first use but not synced with the
    /// index objects (the snapshot tables keep themselves current).
    fn cache_file(&self) -> Result<&IndexCache> {
        if let Some(cache) = self.cache.get() {
            return Ok(cache);
        }
        let cache = match &self.cache_location {
            CacheLocation::Directory(dir) => {
                // A put-only key keeps its own: it must never dedupe
                // against, nor reveal, what it did not upload itself.
                let file = match self.put_only {
                    None => "index.redb".to_string(),
                    Some(_) => format!("put-only-{}.redb", self.key_id.to_hex()),
                };
                let path = dir.join(self.config.id.to_hex()).join(file);
                let cache = IndexCache::open(&path)?;
                crate::cache::tag_cache_dir(dir);
                // Its modification time says when it was last used
                // (`cairn cache cleanup`); best effort.
                let _ = std::fs::File::options()
                    .append(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                cache
            }
            CacheLocation::InMemory => IndexCache::in_memory()?,
        };
        Ok(self.cache.get_or_init(|| cache))
    }

    /// Bring the index cache up to date with the store now.
    pub fn refresh_index(&self) -> Result<SyncReport> {
        let cache = self.index()?;
        if self.put_only.is_some() {
            return Ok(SyncReport::default());
        }
        cache.sync(&self.store, &self.keys)
    }

    /// Throw the index cache away and rebuild it from the index objects.
    pub fn rebuild_index_cache(&self) -> Result<SyncReport> {
        self.require_full_key("rebuilding the index cache")?;
        let cache = self.cache_file()?;
        cache.clear_manifests()?;
        let report = cache.rebuild(&self.store, &self.keys)?;
        self.index_synced
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(report)
    }

    /// Read, decrypt and verify one blob, from the first of its places
    /// that reads back whole (a bad read is read again; a lost or damaged
    /// pack falls back to another copy).
    pub fn read_blob_raw(&self, kind: BlobKind, id: &[u8; ID_LEN]) -> Result<Vec<u8>> {
        let mut places = self.index()?.view()?.lookup_all(id)?;
        places.retain(|l| l.kind == kind);
        if places.is_empty() {
            return Err(Error::NotFound {
                what: format!("{kind} blob {} (not in the index)", hex::encode(id)),
            });
        }
        read_first_good(
            self,
            kind,
            id,
            places
                .iter()
                .map(|l| (l.pack, l.offset, l.length, l.raw_length)),
        )
    }

    /// Read a blob by typed id.
    pub fn read_blob<B: BlobId>(&self, id: &B) -> Result<Vec<u8>> {
        self.read_blob_raw(B::KIND, id.raw())
    }

    /// Load and decode a tree.
    pub fn load_tree(&self, id: &TreeId) -> Result<Tree> {
        let plain = self.read_blob(id)?;
        Ok(Tree::decode(&plain, &format!("tree {}", id.to_hex()))?)
    }

    /// Store an index object and merge it into the cache.
    pub fn save_index(&self, index: IndexFile) -> Result<IndexId> {
        let (id, bytes) = index.seal(&self.keys)?;
        self.confirm_lock()?;
        self.store.put_object(&id, bytes.into())?;
        self.confirm_or_undo_object(&id)?;
        self.index()?.merge(&[(id, index)])?;
        Ok(id)
    }

    /// The manifests of this repository, opened with its keys.
    pub fn manifests(&self) -> Manifests<'_> {
        Manifests::new(&self.store, &self.keys)
    }

    /// Store a manifest under this process's lock: confirmed before the
    /// write, and again after it (a manifest written by a holder that lost
    /// its lock meanwhile is withdrawn). Returns its id and object name.
    pub fn save_manifest<M: Manifest>(&self, m: &M) -> Result<(M::Id, String)> {
        self.confirm_lock()?;
        let (id, name) = self.manifests().save(m)?;
        self.confirm_or_undo(M::KIND, &name)?;
        Ok((id, name))
    }

    /// Delete the manifest stored as `name`, under this process's lock.
    pub fn delete_manifest<M: Manifest>(&self, name: &str) -> Result<()> {
        self.confirm_lock()?;
        self.manifests().delete_named::<M>(name)
    }

    /// Store a snapshot manifest.
    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotId> {
        let (id, name) = self.save_manifest(snapshot)?;
        // The next backup's parent comes from the cache without a listing.
        let remembered = serde_json::to_vec(snapshot)
            .map_err(|e| Error::invalid("snapshot", e.to_string()))
            .and_then(|json| {
                self.cache_file()?.update_snapshots(
                    &[(name, snapshot.account.clone(), json)],
                    &[],
                    false,
                )
            });
        if let Err(e) = remembered {
            tracing::warn!("cannot remember snapshot {} in the cache: {e}", id.short());
        }
        Ok(id)
    }

    /// Delete a snapshot manifest (forget). Its data stays until prune.
    pub fn remove_snapshot(&self, id: &SnapshotId) -> Result<()> {
        let name = id.to_hex();
        self.delete_manifest::<Snapshot>(&name)?;
        self.cache_file()?.update_snapshots(&[], &[name], false)
    }

    /// Load one snapshot manifest.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        self.manifests().load(id)
    }

    /// Every snapshot, oldest first, and the ones that could not be read.
    pub fn snapshots(&self) -> Result<(Vec<SnapshotEntry>, Vec<UnreadableSnapshot>)> {
        self.snapshots_in(None)
    }

    /// The snapshots of `account` (every one without), oldest first, and
    /// every snapshot that could not be read (their account is unknown).
    /// One listing; only that account's manifests are decoded.
    pub fn snapshots_in(
        &self,
        account: Option<&str>,
    ) -> Result<(Vec<SnapshotEntry>, Vec<UnreadableSnapshot>)> {
        let loaded = self
            .manifests()
            .snapshots_cached(self.cache_file()?, account)?;
        Ok((loaded.good, loaded.bad))
    }

    /// Every manifest of an immutable kind (verification records, account
    /// events), oldest first, through the local cache
    /// ([`Manifests::load_all_cached`]); any that cannot be read is an
    /// error.
    pub fn load_manifests_cached<M: Manifest>(&self) -> Result<Vec<(M::Id, M)>> {
        self.manifests()
            .load_all_cached_strict::<M>(self.cache_file()?)
    }

    /// The newest snapshot of `account` that `wanted` accepts, chosen from
    /// the local cache without listing the store (see
    /// [`Manifests::latest_cached`]): for a backup's parent.
    pub fn latest_cached(
        &self,
        account: &str,
        wanted: &dyn Fn(&Snapshot) -> bool,
    ) -> Result<Option<SnapshotEntry>> {
        self.manifests()
            .latest_cached(self.cache_file()?, account, wanted)
    }

    /// Resolve `latest`, a full id or a unique prefix (4+ hex digits) among
    /// the snapshots (of `account`, when given) accepted by `filter`.
    pub fn find_snapshot(
        &self,
        spec: &str,
        account: Option<&str>,
        filter: &dyn Fn(&Snapshot) -> bool,
    ) -> Result<(SnapshotId, Snapshot)> {
        let (all, _) = self.snapshots_in(account)?;
        let mut candidates: Vec<(SnapshotId, Snapshot)> =
            all.into_iter().filter(|(_, s)| filter(s)).collect();
        if spec == "latest" {
            return candidates.pop().ok_or_else(|| Error::NotFound {
                what: "a snapshot (the repository has none that match)".into(),
            });
        }
        let spec_lower = spec.to_ascii_lowercase();
        if spec_lower.len() < 4 || !spec_lower.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                "snapshot",
                format!("{spec:?} is neither `latest` nor an id or id prefix of 4+ hex digits"),
            ));
        }
        candidates.retain(|(id, _)| id.to_hex().starts_with(&spec_lower));
        match candidates.len() {
            0 => Err(Error::NotFound {
                what: format!("snapshot {spec}"),
            }),
            1 => candidates.pop().ok_or_else(|| Error::NotFound {
                what: format!("snapshot {spec}"),
            }),
            n => Err(Error::invalid(
                "snapshot",
                format!("prefix {spec} matches {n} snapshots; give more digits"),
            )),
        }
    }

    /// How long lock acquisition keeps retrying while another process
    /// holds a conflicting lock (default: fail at once).
    pub fn set_lock_wait(&mut self, wait: std::time::Duration) {
        self.lock_wait = wait;
    }

    /// Take a lock on the repository, retrying for the configured wait.
    /// While the guard lives, this repository's commit points confirm it.
    pub fn lock(&self, exclusive: bool, operation: &str) -> Result<LockGuard> {
        self.lock_waiting(exclusive, operation, self.lock_wait)
    }

    /// [`Repository::lock`], retrying for `wait`.
    pub fn lock_waiting(
        &self,
        exclusive: bool,
        operation: &str,
        wait: std::time::Duration,
    ) -> Result<LockGuard> {
        if exclusive {
            // Exclusive holders delete: find out now, not midway, when the
            // credentials may not.
            self.require_delete_rights(operation)?;
        }
        let deadline = std::time::Instant::now() + wait;
        loop {
            match LockGuard::acquire(&self.store, &self.keys, exclusive, operation) {
                Err(Error::Locked(why)) if std::time::Instant::now() < deadline => {
                    tracing::info!("waiting for the lock: {why}");
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                Ok(guard) => {
                    let mut held = self.held.lock();
                    held.retain(|w| w.strong_count() > 0);
                    held.push(Arc::downgrade(guard.held()));
                    return Ok(guard);
                }
                other => return other,
            }
        }
    }

    /// Fail with [`Error::NoDeleteRights`] unless the store's credentials
    /// may delete objects ([`Store::check_delete_rights`]); `operation`
    /// names what needs them. Called before anything is written.
    pub fn require_delete_rights(&self, operation: &str) -> Result<()> {
        require_delete_rights(&self.store, operation)
    }

    /// The lock this process holds, for writers that confirm it from other
    /// threads. An error when none is held: committing without a lock is a
    /// bug, never something to do quietly.
    pub fn held_lock(&self) -> Result<Arc<HeldLock>> {
        // The newest lock still alive: an operation may take its own lock
        // inside another one and release it again.
        self.held
            .lock()
            .iter()
            .rev()
            .find_map(Weak::upgrade)
            .ok_or_else(|| {
                Error::invalid(
                    "commit",
                    "internal error: writing to the repository without holding its lock",
                )
            })
    }

    /// Confirm, immediately before a commit point, that our lock still
    /// binds ([`HeldLock::confirm`]); [`Error::LockLost`] otherwise.
    pub fn confirm_lock(&self) -> Result<()> {
        self.held_lock()?.confirm()
    }

    /// Confirm the lock again right after writing an index object or a
    /// manifest: if it was lost while the upload ran (the process stopped
    /// in the middle of it), a prune may have deleted what the object
    /// names, so the object is deleted again and the lock loss reported.
    pub fn confirm_or_undo(&self, kind: ObjectKind, name: &str) -> Result<()> {
        match self.confirm_lock() {
            Ok(()) => Ok(()),
            Err(e) => {
                if let Err(undo) = self.store.delete(kind, name) {
                    tracing::warn!("could not take back {}: {undo}", kind.path(name));
                }
                Err(e)
            }
        }
    }

    /// [`Repository::confirm_or_undo`] for an object named by a typed id.
    pub fn confirm_or_undo_object<N: ObjectName>(&self, id: &N) -> Result<()> {
        self.confirm_or_undo(N::KIND, &id.object_name())
    }
}

/// Read a blob from the first of `places` (pack, offset, stored length, raw
/// length) where it reads back whole; the first error when none does.
pub(crate) fn read_first_good(
    repo: &Repository,
    kind: BlobKind,
    id: &[u8; ID_LEN],
    places: impl Iterator<Item = (crate::id::PackId, u32, u32, u32)>,
) -> Result<Vec<u8>> {
    let mut first_error = None;
    for (pack, offset, length, raw_length) in places {
        let range = u64::from(offset)..u64::from(offset) + u64::from(length);
        match repo.keys_for_pack(&pack).and_then(|keys| {
            repo.store.get_object_range_checked(&pack, range, |stored| {
                crypto::decode_blob(&keys, kind, id, &stored, raw_length).map_err(Error::from)
            })
        }) {
            Ok(plain) => return Ok(plain),
            Err(e) => {
                tracing::info!(
                    "{kind} blob {} in pack {}: {e}",
                    hex::encode(&id[..4]),
                    pack.short()
                );
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| Error::NotFound {
        what: format!("{kind} blob {}", hex::encode(id)),
    }))
}

/// Key management (`cairn key ...`).
impl Repository {
    /// Add a key file for another password.
    pub fn add_key(&self, password: &[u8], cost: KdfCost) -> Result<KeyId> {
        self.add_key_as(
            password,
            cost,
            crate::util::hostname(),
            crate::util::username(),
        )
    }

    /// Add a key file recorded as belonging to `username` on `host` (the
    /// names are labels for `key list`; they grant nothing).
    pub fn add_key_as(
        &self,
        password: &[u8],
        cost: KdfCost,
        host: String,
        username: String,
    ) -> Result<KeyId> {
        let master = self.master.as_ref().ok_or_else(|| Error::PutOnly {
            what: "adding a key".into(),
        })?;
        self.confirm_lock()?;
        write_key_file(&self.store, master, password, cost, host, username)
    }

    /// Add a put-only key for `accounts`: it can back up and push logs
    /// for them, and read nothing (`docs/FORMAT.md`, "Put-only keys").
    pub fn add_put_only_key(
        &self,
        password: &[u8],
        cost: KdfCost,
        accounts: &[String],
    ) -> Result<KeyId> {
        for a in accounts {
            crate::snapshot::validate_account(a)?;
        }
        let mut accounts = accounts.to_vec();
        accounts.sort();
        accounts.dedup();
        let config = serde_json::to_value(&self.config)
            .map_err(|e| Error::invalid("config", e.to_string()))?;
        let kf = KeyFile::create_put_only(
            &self.keys,
            &accounts,
            self.config.id.to_hex(),
            config,
            password,
            cost,
            crate::util::hostname(),
            crate::util::username(),
        )?;
        let bytes = kf.to_bytes()?;
        let id = KeyId::of_bytes(&bytes);
        self.confirm_lock()?;
        self.store.put_object(&id, bytes.into())?;
        Ok(id)
    }

    /// List key files with their metadata.
    pub fn list_keys(&self) -> Result<Vec<(KeyId, std::result::Result<KeyFile, String>)>> {
        let listing = self.store.list(ObjectKind::Key)?;
        let mut out = Vec::new();
        for obj in listing.objects {
            let Ok(id) = KeyId::from_hex(&obj.name) else {
                continue;
            };
            let what = format!("key file {}", id.short());
            let kf = self
                .store
                .get(ObjectKind::Key, &obj.name)
                .map_err(Error::from)
                .and_then(|b| Ok(KeyFile::parse(&b, &what)?))
                .map_err(|e| e.to_string());
            out.push((id, kf));
        }
        Ok(out)
    }

    /// Remove a key file. Refuses the key this session was opened with and
    /// the last key.
    pub fn remove_key(&self, id: &KeyId) -> Result<()> {
        self.require_full_key("removing a key")?;
        if id == &self.key_id {
            return Err(Error::invalid(
                "key",
                "refusing to remove the key in use; open the repository with another key first",
            ));
        }
        let keys = self.list_keys()?;
        if !keys.iter().any(|(k, _)| k == id) {
            return Err(Error::NotFound {
                what: format!("key {}", id.short()),
            });
        }
        if keys.len() <= 1 {
            return Err(Error::invalid("key", "refusing to remove the last key"));
        }
        let full = |kf: &std::result::Result<KeyFile, String>| {
            kf.as_ref().is_ok_and(|kf| kf.put_only.is_none())
        };
        if keys.iter().all(|(k, kf)| k == id || !full(kf)) {
            return Err(Error::invalid(
                "key",
                "refusing to remove the last full key: put-only keys cannot read the repository",
            ));
        }
        self.require_delete_rights("key remove")?;
        self.confirm_lock()?;
        Ok(self.store.delete_object(id)?)
    }

    /// Replace the key in use with one for a new password.
    pub fn change_password(&mut self, new_password: &[u8], cost: KdfCost) -> Result<KeyId> {
        self.require_delete_rights("key passwd")?;
        // Under object lock the old key file may not go yet: say so before
        // a new one is added.
        if self.store.object_lock().is_some()
            && let Some(until) = self
                .store
                .retention(ObjectKind::Key, &self.key_id.object_name())?
                .and_then(|r| r.until)
                .filter(|u| *u > jiff::Timestamp::now())
        {
            return Err(Error::Retained {
                location: ObjectKind::Key.path(&self.key_id.object_name()),
                until,
            });
        }
        let new_id = self.add_key(new_password, cost)?;
        let old = self.key_id;
        self.key_id = new_id;
        self.confirm_lock()?;
        self.store.delete_object(&old)?;
        Ok(new_id)
    }
}

/// [`Repository::require_delete_rights`] for any store (a sync's
/// destination).
pub fn require_delete_rights(store: &Store, operation: &str) -> Result<()> {
    match store.check_delete_rights() {
        Ok(()) => Ok(()),
        Err(e) if e.is_refused() => Err(Error::NoDeleteRights {
            operation: operation.to_string(),
            location: store.location().to_string(),
            detail: e.to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}
