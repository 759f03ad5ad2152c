//! The local index cache: a redb database mapping blob id to its place in a
//! pack. It is derived from the index objects in the store and can always be
//! thrown away and rebuilt ([`IndexCache::rebuild`]); every command first
//! brings it up to date ([`IndexCache::sync`]): index objects it has not seen
//! are loaded, and if any index object it loaded has disappeared from the
//! store (a prune or `repair index` elsewhere), it is rebuilt from scratch.
//!
//! Several cairn processes may use one cache file at the same time (two
//! backups into one repository): the database is opened in redb's
//! multi-writer mode, and every write is an idempotent merge.

use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::id::{BlobId, BlobKind, ID_LEN, IndexId, PackId};
use crate::index::IndexFile;
use crate::layout::ObjectKind;
use crate::store::Store;
use cairn_format::seal_to::Sealing;
use parking_lot::RwLock;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Blob id -> pack number (4), offset (4), length (4), raw length (4), kind (1).
const BLOBS: TableDefinition<'_, &[u8; ID_LEN], &[u8; 17]> = TableDefinition::new("blobs");
/// Blob id -> further locations (17 bytes each, as in `BLOBS`) of a blob
/// that index objects place in more than one pack: readers fall back to
/// them when the first copy cannot be read (a lost pack that a backup
/// healed by storing the data again).
const ALTERNATES: TableDefinition<'_, &[u8; ID_LEN], &[u8]> = TableDefinition::new("alternates");
/// Pack number -> pack id (32), size (8).
const PACKS: TableDefinition<'_, u32, &[u8; 40]> = TableDefinition::new("packs");
/// Pack id -> pack number.
const PACK_NUMBERS: TableDefinition<'_, &[u8; ID_LEN], u32> = TableDefinition::new("pack_numbers");
/// Pack number -> `R || E` of the put-only session its blobs are sealed to
/// (packs sealed under the master key have no row).
const PACK_SEALINGS: TableDefinition<'_, u32, &[u8; 64]> = TableDefinition::new("pack_sealings");
/// Index objects merged into this cache -> number of blobs they list.
const INDEXES: TableDefinition<'_, &[u8; ID_LEN], u64> = TableDefinition::new("indexes");
/// Log segment object name -> decrypted manifest JSON. Manifests are
/// immutable and named by their hash, so entries never go stale; the
/// listing decides which segments exist.
const LOG_MANIFESTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("log_manifests");
/// Snapshot object name -> account length (1), account, decrypted manifest
/// JSON. Manifests are immutable and named by their hash; the listing
/// decides which snapshots exist.
const SNAPSHOTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("snapshots");
/// (account, snapshot object name): the cached snapshots of one account.
const ACCOUNT_SNAPSHOTS: TableDefinition<'_, (&str, &str), ()> =
    TableDefinition::new("account_snapshots");
/// Snapshot object names alone, so the listing is compared with the cache
/// without reading the manifests.
const SNAPSHOT_NAMES: TableDefinition<'_, &str, ()> = TableDefinition::new("snapshot_names");
/// (object directory, object name) -> decrypted JSON of the other immutable,
/// hash-named manifests read in full by everyday commands (verification
/// records, account events).
const MANIFESTS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("manifests");
/// Set in `META` once the snapshot tables have been filled from a full
/// listing of `snapshots/`.
const SNAPSHOTS_LISTED: &str = "snapshots_listed";
/// Schema version and counters.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

const SCHEMA_VERSION: u64 = 2;

/// Where a blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack holding it.
    pub pack: PackId,
    /// Blob kind.
    pub kind: BlobKind,
    /// Offset in the pack.
    pub offset: u32,
    /// Stored length.
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
}

/// What a sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// Index objects newly merged.
    pub loaded: usize,
    /// Whether the cache was rebuilt from scratch.
    pub rebuilt: bool,
    /// Index objects that could not be read or decoded (they stay out of the
    /// cache; `check` reports them and `repair index` replaces them).
    pub unreadable: Vec<(IndexId, String)>,
}

/// A read view of the cache; see [`IndexCache::view`]. Shareable between
/// threads.
pub struct IndexView<'a> {
    cache: &'a IndexCache,
    blobs: redb::ReadOnlyTable<&'static [u8; ID_LEN], &'static [u8; 17]>,
    alternates: redb::ReadOnlyTable<&'static [u8; ID_LEN], &'static [u8]>,
}

impl std::fmt::Debug for IndexView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexView").finish_non_exhaustive()
    }
}

impl IndexView<'_> {
    /// Where a blob is, if the repository has it.
    pub fn lookup(&self, id: &[u8; ID_LEN]) -> Result<Option<BlobLocation>> {
        let Some(guard) = self.blobs.get(id).map_err(|e| self.cache.cache_err(e))? else {
            return Ok(None);
        };
        self.cache.decode_loc(guard.value()).map(Some)
    }

    /// Every location of a blob: the first one, then any others index
    /// objects list (empty if the repository does not have it).
    pub fn lookup_all(&self, id: &[u8; ID_LEN]) -> Result<Vec<BlobLocation>> {
        let Some(first) = self.lookup(id)? else {
            return Ok(Vec::new());
        };
        let mut all = vec![first];
        if let Some(more) = self
            .alternates
            .get(id)
            .map_err(|e| self.cache.cache_err(e))?
        {
            for chunk in more.value().chunks_exact(17) {
                all.push(self.cache.decode_loc(chunk)?);
            }
        }
        Ok(all)
    }

    /// [`IndexView::lookup_all`] by typed id, keeping locations of its kind.
    pub fn find_all<B: BlobId>(&self, id: &B) -> Result<Vec<BlobLocation>> {
        let mut all = self.lookup_all(id.raw())?;
        all.retain(|l| l.kind == B::KIND);
        Ok(all)
    }

    /// Lookup by typed id, checking the kind.
    pub fn find<B: BlobId>(&self, id: &B) -> Result<Option<BlobLocation>> {
        Ok(self.lookup(id.raw())?.filter(|loc| loc.kind == B::KIND))
    }
}

/// The redb-backed blob index.
pub struct IndexCache {
    db: redb::Database,
    path: PathBuf,
    /// Pack number -> (id, size), mirrored in memory: packs are few.
    packs: RwLock<HashMap<u32, (PackId, u64)>>,
    /// The packs sealed to put-only sessions, mirrored likewise.
    sealings: RwLock<HashMap<PackId, Sealing>>,
}

impl std::fmt::Debug for IndexCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexCache")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn encode_loc(pack_no: u32, e: &crate::pack::PackEntry) -> [u8; 17] {
    let mut v = [0u8; 17];
    v[..4].copy_from_slice(&pack_no.to_le_bytes());
    v[4..8].copy_from_slice(&e.offset.to_le_bytes());
    v[8..12].copy_from_slice(&e.length.to_le_bytes());
    v[12..16].copy_from_slice(&e.raw_length.to_le_bytes());
    v[16] = e.kind.to_byte();
    v
}

/// The account and the JSON of a `SNAPSHOTS` value.
fn split_snapshot_value(v: &[u8]) -> Option<(&str, &[u8])> {
    let (&len, rest) = v.split_first()?;
    let (account, json) = rest.split_at_checked(usize::from(len))?;
    Some((std::str::from_utf8(account).ok()?, json))
}

fn u32_at(v: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&v[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Mark `dir` as a cache (<https://bford.info/cachedir/>), so that
/// `--exclude-caches` here and in other tools skips it. Best effort: a
/// cache that cannot be tagged still works.
pub fn tag_cache_dir(dir: &Path) {
    let tag = dir.join("CACHEDIR.TAG");
    if tag.exists() {
        return;
    }
    let mut text = crate::exclude::CACHEDIR_SIGNATURE.to_vec();
    text.extend_from_slice(
        b"\n# This file is a cache directory tag created by cairn.\n# For information about cache directory tags see https://bford.info/cachedir/\n",
    );
    if let Err(e) = std::fs::write(&tag, text) {
        tracing::debug!("cannot tag the cache directory {}: {e}", dir.display());
    }
}

impl IndexCache {
    /// Open (or create) the cache file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let err = |e: redb::DatabaseError| Error::Cache {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let db = match redb::Builder::new()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(path)
        {
            Ok(db) => db,
            // A cache file from an incompatible redb (or a damaged one) is
            // not worth keeping: it is derived data.
            Err(redb::DatabaseError::Storage(_)) | Err(redb::DatabaseError::UpgradeRequired(_)) => {
                tracing::warn!("discarding unreadable index cache {}", path.display());
                std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
                redb::Builder::new()
                    .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
                    .create(path)
                    .map_err(err)?
            }
            Err(e) => return Err(err(e)),
        };
        Self::init(db, path.to_path_buf())
    }

    /// A cache that lives in memory only (`--no-cache`, unit tests).
    pub fn in_memory() -> Result<Self> {
        let path = PathBuf::from("(memory)");
        let db = redb::Builder::new()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| Error::Cache {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Self::init(db, path)
    }

    fn init(db: redb::Database, path: PathBuf) -> Result<Self> {
        let cache = Self {
            db,
            path,
            packs: RwLock::new(HashMap::new()),
            sealings: RwLock::new(HashMap::new()),
        };
        let schema = cache.write(|txn| {
            let mut meta = txn.open_table(META)?;
            let schema = meta.get("schema")?.map(|g| g.value());
            if schema.is_none() {
                meta.insert("schema", SCHEMA_VERSION)?;
            }
            drop(meta);
            txn.open_table(BLOBS)?;
            txn.open_table(PACKS)?;
            txn.open_table(PACK_NUMBERS)?;
            txn.open_table(PACK_SEALINGS)?;
            txn.open_table(INDEXES)?;
            txn.open_table(ALTERNATES)?;
            txn.open_table(LOG_MANIFESTS)?;
            txn.open_table(SNAPSHOTS)?;
            txn.open_table(ACCOUNT_SNAPSHOTS)?;
            txn.open_table(SNAPSHOT_NAMES)?;
            txn.open_table(MANIFESTS)?;
            Ok(schema.unwrap_or(SCHEMA_VERSION))
        })?;
        if schema != SCHEMA_VERSION {
            cache.clear()?;
        }
        cache.reload_packs()?;
        Ok(cache)
    }

    fn decode_loc(&self, v: &[u8]) -> Result<BlobLocation> {
        let kind = BlobKind::from_byte(v[16])
            .ok_or_else(|| self.cache_err("unknown blob kind in cache"))?;
        let pack = self.pack_by_number(u32_at(v, 0))?;
        Ok(BlobLocation {
            pack,
            kind,
            offset: u32_at(v, 4),
            length: u32_at(v, 8),
            raw_length: u32_at(v, 12),
        })
    }

    fn cache_err(&self, e: impl std::fmt::Display) -> Error {
        Error::Cache {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> std::result::Result<T, redb::Error>,
    ) -> Result<T> {
        let txn = self.db.begin_write().map_err(|e| self.cache_err(e))?;
        let out = f(&txn).map_err(|e| self.cache_err(e))?;
        txn.commit().map_err(|e| self.cache_err(e))?;
        Ok(out)
    }

    fn reload_packs(&self) -> Result<()> {
        let txn = self.db.begin_read().map_err(|e| self.cache_err(e))?;
        let table = txn.open_table(PACKS).map_err(|e| self.cache_err(e))?;
        let mut packs = HashMap::new();
        for row in table.iter().map_err(|e| self.cache_err(e))? {
            let (k, v) = row.map_err(|e| self.cache_err(e))?;
            let v = v.value();
            let mut id = [0u8; ID_LEN];
            id.copy_from_slice(&v[..32]);
            let mut size = [0u8; 8];
            size.copy_from_slice(&v[32..]);
            packs.insert(
                k.value(),
                (PackId::from_bytes(id), u64::from_le_bytes(size)),
            );
        }
        let table = txn
            .open_table(PACK_SEALINGS)
            .map_err(|e| self.cache_err(e))?;
        let mut sealings = HashMap::new();
        for row in table.iter().map_err(|e| self.cache_err(e))? {
            let (k, v) = row.map_err(|e| self.cache_err(e))?;
            if let Some((id, _)) = packs.get(&k.value()) {
                sealings.insert(*id, Sealing::from_bytes(v.value()));
            }
        }
        *self.packs.write() = packs;
        *self.sealings.write() = sealings;
        Ok(())
    }

    /// Forget everything.
    pub fn clear(&self) -> Result<()> {
        self.write(|txn| {
            txn.delete_table(BLOBS)?;
            txn.delete_table(PACKS)?;
            txn.delete_table(PACK_NUMBERS)?;
            txn.delete_table(PACK_SEALINGS)?;
            txn.delete_table(INDEXES)?;
            txn.delete_table(ALTERNATES)?;
            txn.open_table(BLOBS)?;
            txn.open_table(PACKS)?;
            txn.open_table(PACK_NUMBERS)?;
            txn.open_table(PACK_SEALINGS)?;
            txn.open_table(INDEXES)?;
            txn.open_table(ALTERNATES)?;
            let mut meta = txn.open_table(META)?;
            meta.insert("schema", SCHEMA_VERSION)?;
            Ok(())
        })?;
        self.packs.write().clear();
        self.sealings.write().clear();
        Ok(())
    }

    /// Cached manifests for these log object names (missing ones are
    /// absent from the result).
    pub fn log_manifests(&self, names: &[String]) -> Result<HashMap<String, Vec<u8>>> {
        let txn = self.db.begin_read().map_err(|e| self.cache_err(e))?;
        let table = txn
            .open_table(LOG_MANIFESTS)
            .map_err(|e| self.cache_err(e))?;
        let mut out = HashMap::new();
        for n in names {
            if let Some(v) = table.get(n.as_str()).map_err(|e| self.cache_err(e))? {
                out.insert(n.clone(), v.value().to_vec());
            }
        }
        Ok(out)
    }

    /// Remember decrypted manifests.
    pub fn put_log_manifests(&self, entries: &[(String, Vec<u8>)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.write(|txn| {
            let mut table = txn.open_table(LOG_MANIFESTS)?;
            for (name, json) in entries {
                table.insert(name.as_str(), json.as_slice())?;
            }
            Ok(())
        })
    }

    /// Whether the snapshot tables were ever filled from a full listing
    /// (until then, a cached account holds no information).
    pub fn snapshots_listed(&self) -> Result<bool> {
        let txn = self.db.begin_read().map_err(|e| self.cache_err(e))?;
        let meta = txn.open_table(META).map_err(|e| self.cache_err(e))?;
        let listed = meta
            .get(SNAPSHOTS_LISTED)
            .map_err(|e| self.cache_err(e))?
            .is_some_and(|v| v.value() == 1);
        Ok(listed)
    }

    /// The object names of every cached snapshot manifest, sorted.
    pub fn cached_snapshot_names(&self) -> Result<Vec<String>> {
        let txn = self.db.begin_read().map_err(|e| self.cache_err(e))?;
        let table = txn
            .open_table(SNAPSHOT_NAMES)
            .map_err(|e| self.cache_err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.cache_err(e))? {
            let (k, _) = row.map_err(|e| self.cache_err(e))?;
            out.push(k.value().to_string());
        }
        Ok(out)
    }

    /// Hand every cached snapshot manifest (object name, decrypted JSON)
    /// to `f`, or only `account`'s, without copying them out.
    pub fn for_each_cached_snapshot(
        &self,
        account: Option<&str>,
        f: &mut dyn FnMut(&str, &[u8]),
    ) -> Result<()> {
        let txn = self.db.begin_read().map_err(|e| self.cache_err(e))?;
        let table = txn.open_table(SNAPSHOTS).map_err(|e| self.cache_err(e))?;
        let malformed = || self.cache_err("malformed snapshot entry");
        let Some(account) = account else {
            for row in table.iter().map_err(|e| self.cache_err(e))? {
                let (k, v) = row.map_err(|e| self.cache_err(e))?;
                let (_, json) = split_snapshot_value(v.value()).ok_or_else(malformed)?;
                f(k.value(), json);
            }
            return Ok(());
        };
        let by_account = txn
            .open_table(ACCOUNT_SNAPSHOTS)
            .map_err(|e| self.cache_err(e))?;
        let rows = by_account
            .range((account, "")..)
            .map_err(|e| self.cache_err(e))?;
        for row in rows {
            let (k, _) = row.map_err(|e| self.cache_err(e))?;
            let (acc, name) = k.value();
            if acc != account {
                break;
            }
            if let Some(v) = table.get(name).map_err(|e| self.cache_err(e))? {
                let (_, json) = split_snapshot_value(v.value()).ok_or_else(malformed)?;
                f(name, json);
            }
        }
        Ok(())
    }

    /// Record snapshot manifests (object name, account, decrypted JSON)
    /// and forget the ones named in `gone`; `listed` marks the tables as
    /// filled from a full listing.
    pub fn update_snapshots(
        &self,
        added: &[(String, String, Vec<u8>)],
        gone: &[String],
        listed: bool,
    ) -> Result<()> {
        if added.is_empty() && gone.is_empty() && (!listed || self.snapshots_listed()?) {
            return Ok(());
        }
        self.write(|txn| {
            let mut table = txn.open_table(SNAPSHOTS)?;
            let mut by_account = txn.open_table(ACCOUNT_SNAPSHOTS)?;
            let mut names = txn.open_table(SNAPSHOT_NAMES)?;
            for name in gone {
                names.remove(name.as_str())?;
                let account = table
                    .remove(name.as_str())?
                    .and_then(|v| split_snapshot_value(v.value()).map(|(a, _)| a.to_string()));
                if let Some(account) = account {
                    by_account.remove((account.as_str(), name.as_str()))?;
                }
            }
            for (name, account, json) in added {
                let Ok(len) = u8::try_from(account.len()) else {
                    continue;
                };
                let mut value = Vec::with_capacity(1 + account.len() + json.len());
                value.push(len);
                value.extend_from_slice(account.as_bytes());
                value.extend_from_slice(json);
                table.insert(name.as_str(), value.as_slice())?;
                by_account.insert((account.as_str(), name.as_str()), ())?;
                names.insert(name.as_str(), ())?;
            }
            if listed {
                txn.open_table(META)?.insert(SNAPSHOTS_LISTED, 1)?;
            }
            Ok(())
        })
    }

    /// The cached manifests stored under the directory `dir`: object name
    /// -> decrypted JSON, in name order.
    pub fn cached_manifests(&self, dir: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let txn = self.db.begin_read().map_err(|e| self.cache_err(e))?;
        let table = txn.open_table(MANIFESTS).map_err(|e| self.cache_err(e))?;
        let mut out = Vec::new();
        for row in table.range((dir, "")..).map_err(|e| self.cache_err(e))? {
            let (k, v) = row.map_err(|e| self.cache_err(e))?;
            let (d, name) = k.value();
            if d != dir {
                break;
            }
            out.push((name.to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Remember manifests under `dir` and forget the ones named in `gone`.
    pub fn update_manifests(
        &self,
        dir: &str,
        added: &[(String, Vec<u8>)],
        gone: &[String],
    ) -> Result<()> {
        if added.is_empty() && gone.is_empty() {
            return Ok(());
        }
        self.write(|txn| {
            let mut table = txn.open_table(MANIFESTS)?;
            for name in gone {
                table.remove((dir, name.as_str()))?;
            }
            for (name, json) in added {
                table.insert((dir, name.as_str()), json.as_slice())?;
            }
            Ok(())
        })
    }

    /// Forget every cached manifest (`cache rebuild`).
    pub fn clear_manifests(&self) -> Result<()> {
        self.write(|txn| {
            txn.delete_table(SNAPSHOTS)?;
            txn.delete_table(ACCOUNT_SNAPSHOTS)?;
            txn.delete_table(SNAPSHOT_NAMES)?;
            txn.open_table(SNAPSHOTS)?;
            txn.open_table(ACCOUNT_SNAPSHOTS)?;
            txn.open_table(SNAPSHOT_NAMES)?;
            txn.delete_table(MANIFESTS)?;
            txn.open_table(MANIFESTS)?;
            txn.open_table(META)?.remove(SNAPSHOTS_LISTED)?;
            Ok(())
        })
    }

    /// Index objects already merged.
    pub fn loaded_indexes(&self) -> Result<HashSet<IndexId>> {
        let txn = self.db.begin_read().map_err(|e| self.cache_err(e))?;
        let table = txn.open_table(INDEXES).map_err(|e| self.cache_err(e))?;
        let mut out = HashSet::new();
        for row in table.iter().map_err(|e| self.cache_err(e))? {
            let (k, _) = row.map_err(|e| self.cache_err(e))?;
            out.insert(IndexId::from_bytes(*k.value()));
        }
        Ok(out)
    }

    /// Bring the cache up to date with the index objects in the store.
    ///
    /// An index object listed but gone when read was replaced by a prune
    /// (which writes the new index objects before deleting the old): the
    /// index is listed again to find the replacements, up to three times.
    pub fn sync(&self, store: &Store, keys: &Keys) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let mut vanished: HashSet<IndexId> = HashSet::new();
        for round in 0..3 {
            let listing = store.list(ObjectKind::Index)?;
            let mut stored = HashSet::new();
            for obj in &listing.objects {
                if let Ok(id) = IndexId::from_hex(&obj.name) {
                    stored.insert(id);
                }
            }
            let mut loaded = self.loaded_indexes()?;
            if round == 0 && loaded.iter().any(|id| !stored.contains(id)) {
                self.clear()?;
                loaded.clear();
                report.rebuilt = true;
            }
            let mut missing: Vec<IndexId> = stored
                .difference(&loaded)
                .filter(|id| !vanished.contains(id))
                .copied()
                .collect();
            missing.sort();
            let mut gone = 0;
            for batch in missing.chunks(64) {
                let fetched = crate::objects::fetch_indexes(store, keys, batch);
                let mut decoded = Vec::with_capacity(batch.len());
                for (id, opened) in batch.iter().zip(fetched) {
                    match opened {
                        Ok(index) => decoded.push((*id, index)),
                        Err(e) if e.is_not_found() => {
                            vanished.insert(*id);
                            gone += 1;
                        }
                        Err(e) => {
                            tracing::warn!("index {}: {e}", id.short());
                            report.unreadable.push((*id, e.to_string()));
                        }
                    }
                }
                report.loaded += decoded.len();
                self.merge(&decoded)?;
            }
            if gone == 0 {
                break;
            }
        }
        Ok(report)
    }

    /// Drop everything and reload from the store.
    pub fn rebuild(&self, store: &Store, keys: &Keys) -> Result<SyncReport> {
        self.clear()?;
        let mut report = self.sync(store, keys)?;
        report.rebuilt = true;
        Ok(report)
    }

    /// Merge decoded index objects (already stored) into the cache.
    pub fn merge(&self, indexes: &[(IndexId, IndexFile)]) -> Result<()> {
        if indexes.is_empty() {
            return Ok(());
        }
        let mut new_packs = Vec::new();
        let mut new_sealings = Vec::new();
        self.write(|txn| {
            let mut blobs = txn.open_table(BLOBS)?;
            let mut packs = txn.open_table(PACKS)?;
            let mut numbers = txn.open_table(PACK_NUMBERS)?;
            let mut sealed = txn.open_table(PACK_SEALINGS)?;
            let mut loaded = txn.open_table(INDEXES)?;
            let mut alternates = txn.open_table(ALTERNATES)?;
            let mut meta = txn.open_table(META)?;
            let mut next = meta.get("next_pack")?.map(|g| g.value()).unwrap_or(0);
            for (index_id, index) in indexes {
                for pack in &index.packs {
                    let existing = numbers.get(pack.id.as_bytes())?.map(|g| g.value());
                    let pack_no = match existing {
                        Some(n) => n,
                        None => {
                            let n = u32::try_from(next).map_err(|_| {
                                redb::Error::Corrupted("more than 2^32 packs".into())
                            })?;
                            next += 1;
                            numbers.insert(pack.id.as_bytes(), n)?;
                            let mut v = [0u8; 40];
                            v[..32].copy_from_slice(pack.id.as_bytes());
                            v[32..].copy_from_slice(&pack.size.to_le_bytes());
                            packs.insert(n, &v)?;
                            if let Some(s) = &pack.sealing {
                                sealed.insert(n, &s.to_bytes())?;
                                new_sealings.push((pack.id, *s));
                            }
                            new_packs.push((n, (pack.id, pack.size)));
                            n
                        }
                    };
                    for blob in &pack.blobs {
                        let loc = encode_loc(pack_no, blob);
                        let first = blobs.get(&blob.id)?.map(|g| *g.value());
                        match first {
                            None => {
                                blobs.insert(&blob.id, &loc)?;
                            }
                            // The same pack again (the same index object,
                            // or the pack listed twice): nothing new.
                            Some(f) if f[..4] == loc[..4] => {}
                            Some(_) => {
                                let mut more = alternates
                                    .get(&blob.id)?
                                    .map(|g| g.value().to_vec())
                                    .unwrap_or_default();
                                if !more.chunks_exact(17).any(|c| c[..4] == loc[..4]) {
                                    more.extend_from_slice(&loc);
                                    alternates.insert(&blob.id, more.as_slice())?;
                                }
                            }
                        }
                    }
                }
                loaded.insert(index_id.as_bytes(), index.blob_count() as u64)?;
            }
            meta.insert("next_pack", next)?;
            Ok(())
        })?;
        let mut mirror = self.packs.write();
        for (n, p) in new_packs {
            mirror.insert(n, p);
        }
        drop(mirror);
        self.sealings.write().extend(new_sealings);
        Ok(())
    }

    /// A consistent view for many lookups: one read transaction instead of
    /// one per lookup (with several processes sharing the file, each
    /// transaction costs file-lock system calls). The view does not see
    /// index objects merged after it was taken.
    pub fn view(&self) -> Result<IndexView<'_>> {
        let txn = self.db.begin_read().map_err(|e| self.cache_err(e))?;
        let blobs = txn.open_table(BLOBS).map_err(|e| self.cache_err(e))?;
        let alternates = txn.open_table(ALTERNATES).map_err(|e| self.cache_err(e))?;
        Ok(IndexView {
            cache: self,
            blobs,
            alternates,
        })
    }

    /// Where a blob is, if the repository has it.
    pub fn lookup(&self, id: &[u8; ID_LEN]) -> Result<Option<BlobLocation>> {
        self.view()?.lookup(id)
    }

    /// The pack with this number. Another process sharing the cache file
    /// may have added packs since our mirror was loaded: reload on a miss.
    fn pack_by_number(&self, n: u32) -> Result<PackId> {
        if let Some((id, _)) = self.packs.read().get(&n) {
            return Ok(*id);
        }
        self.reload_packs()?;
        match self.packs.read().get(&n) {
            Some((id, _)) => Ok(*id),
            None => Err(self.cache_err(format!("pack number {n} unknown"))),
        }
    }

    /// Lookup by typed id, checking the kind.
    pub fn find<B: BlobId>(&self, id: &B) -> Result<Option<BlobLocation>> {
        Ok(self.lookup(id.raw())?.filter(|loc| loc.kind == B::KIND))
    }

    /// The put-only session a pack's blobs are sealed to (`None`: the
    /// master key, or a pack the cache does not know).
    pub fn sealing(&self, pack: &PackId) -> Option<Sealing> {
        self.sealings.read().get(pack).copied()
    }

    /// Whether any indexed pack is sealed to a put-only session.
    pub fn has_sealed_packs(&self) -> bool {
        !self.sealings.read().is_empty()
    }

    /// Whether the repository holds this blob.
    pub fn contains<B: BlobId>(&self, id: &B) -> Result<bool> {
        Ok(self.find(id)?.is_some())
    }

    /// Number of blobs indexed.
    pub fn blob_count(&self) -> Result<u64> {
        let txn = self.db.begin_read().map_err(|e| self.cache_err(e))?;
        let table = txn.open_table(BLOBS).map_err(|e| self.cache_err(e))?;
        table.len().map_err(|e| self.cache_err(e))
    }

    /// Every indexed pack with its size.
    pub fn packs(&self) -> Result<Vec<(PackId, u64)>> {
        self.reload_packs()?;
        let mut v: Vec<_> = self.packs.read().values().copied().collect();
        v.sort();
        Ok(v)
    }

    /// Visit every blob: (id, location).
    pub fn for_each_blob(&self, mut f: impl FnMut(&[u8; ID_LEN], BlobLocation)) -> Result<()> {
        self.reload_packs()?;
        let packs = self.packs.read().clone();
        let txn = self.db.begin_read().map_err(|e| self.cache_err(e))?;
        let table = txn.open_table(BLOBS).map_err(|e| self.cache_err(e))?;
        for row in table.iter().map_err(|e| self.cache_err(e))? {
            let (k, v) = row.map_err(|e| self.cache_err(e))?;
            let v = v.value();
            let Some(kind) = BlobKind::from_byte(v[16]) else {
                continue;
            };
            let Some((pack, _)) = packs.get(&u32_at(v, 0)) else {
                continue;
            };
            f(
                k.value(),
                BlobLocation {
                    pack: *pack,
                    kind,
                    offset: u32_at(v, 4),
                    length: u32_at(v, 8),
                    raw_length: u32_at(v, 12),
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use crate::index::IndexedPack;
    use crate::pack::PackEntry;

    fn index_with(pack: u8, blobs: &[u8]) -> IndexFile {
        IndexFile {
            packs: vec![IndexedPack {
                sealing: None,
                id: PackId::of_bytes(&[pack]),
                size: 10_000,
                blobs: blobs
                    .iter()
                    .enumerate()
                    .map(|(i, b)| PackEntry {
                        kind: BlobKind::Data,
                        id: [*b; 32],
                        offset: i as u32 * 100,
                        length: 100,
                        raw_length: 150,
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn sync_loads_new_indexes_and_rebuilds_when_one_vanishes() {
        let keys = Keys::derive(&MasterKey::generate().unwrap());
        let store = Store::memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = IndexCache::open(&dir.path().join("index.redb")).unwrap();

        let (a_id, a) = index_with(1, &[1, 2]).seal(&keys).unwrap();
        store.put_object(&a_id, a.into()).unwrap();
        let r = cache.sync(&store, &keys).unwrap();
        assert_eq!(r.loaded, 1);
        assert!(cache.lookup(&[1; 32]).unwrap().is_some());
        assert!(cache.lookup(&[3; 32]).unwrap().is_none());

        let (b_id, b) = index_with(2, &[3]).seal(&keys).unwrap();
        store.put_object(&b_id, b.into()).unwrap();
        assert_eq!(cache.sync(&store, &keys).unwrap().loaded, 1);
        let loc = cache.lookup(&[3; 32]).unwrap().unwrap();
        assert_eq!(loc.pack, PackId::of_bytes(&[2]));
        assert_eq!(cache.sync(&store, &keys).unwrap().loaded, 0);

        store.delete_object(&a_id).unwrap();
        let r = cache.sync(&store, &keys).unwrap();
        assert!(r.rebuilt);
        assert!(cache.lookup(&[1; 32]).unwrap().is_none());
        assert!(cache.lookup(&[3; 32]).unwrap().is_some());
        assert_eq!(cache.blob_count().unwrap(), 1);

        // A corrupt index object is reported, not fatal.
        let junk_id = IndexId::of_bytes(b"junk");
        store
            .put_object(&junk_id, bytes::Bytes::from_static(b"junk"))
            .unwrap();
        let r = cache.sync(&store, &keys).unwrap();
        assert_eq!(r.unreadable.len(), 1);

        // Reopening the file keeps what was loaded.
        drop(cache);
        let cache = IndexCache::open(&dir.path().join("index.redb")).unwrap();
        assert!(cache.lookup(&[3; 32]).unwrap().is_some());
        assert_eq!(cache.packs().unwrap().len(), 1);
    }

    #[test]
    fn two_handles_on_one_file_see_each_others_packs() {
        let keys = Keys::derive(&MasterKey::generate().unwrap());
        let store = Store::memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        let a = IndexCache::open(&path).unwrap();
        let b = IndexCache::open(&path).unwrap();
        a.sync(&store, &keys).unwrap();
        let (id, bytes) = index_with(5, &[9]).seal(&keys).unwrap();
        store.put_object(&id, bytes.into()).unwrap();
        let idx = IndexFile::open(&keys, &id, &store.get_object(&id).unwrap()).unwrap();
        b.merge(&[(id, idx)]).unwrap();
        // `a` never loaded pack 5's number, but finds it.
        assert_eq!(
            a.lookup(&[9; 32]).unwrap().unwrap().pack,
            PackId::of_bytes(&[5])
        );
        assert_eq!(a.packs().unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_cache_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.redb");
        std::fs::write(
            &path,
            b"this is not a redb database at all, just junk bytes",
        )
        .unwrap();
        let cache = IndexCache::open(&path).unwrap();
        assert_eq!(cache.blob_count().unwrap(), 0);
    }
}
