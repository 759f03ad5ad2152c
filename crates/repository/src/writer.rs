//! The blob writer: deduplicates blobs, packs them, uploads packs in the
//! background and writes index objects for what was uploaded.
//!
//! The write protocol (principle 2 of the brief; `docs/FORMAT.md`,
//! "Write protocol"):
//! 1. a blob goes into an in-memory pack; a full pack is uploaded by an
//!    uploader thread;
//! 2. only after a pack is stored does its content enter an index object,
//!    so "an index object lists it" always implies "the pack exists";
//! 3. callers write the snapshot (or other manifest) only after
//!    [`BlobWriter::finish`] returned, i.e. after every pack and index
//!    object it depends on is stored.
//!
//! A crash between 1 and 2 leaves packs no index lists. The next backup
//! adopts them ([`adopt_orphan_packs`]) so their blobs are reused; prune
//! collects what stays unreferenced.

use crate::cache::IndexView;
use crate::crypto::{self, Compression, Keys};
use crate::error::{Error, Result};
use crate::id::{BlobKind, ID_LEN, IndexId, PackId};
use crate::index::{IndexFile, IndexedPack};
use crate::layout::ObjectKind;
use crate::lock::HeldLock;
use crate::pack::{FinishedPack, PackBuilder};
use crate::pending;
use crate::repo::Repository;
use crate::store::Store;
use crate::util::failpoint;
use crossbeam_channel::{Receiver, Sender, bounded};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

/// An index object is written after this many packs have been uploaded
/// (and once more at the end).
pub const INDEX_FLUSH_PACKS: usize = 32;

/// What a writer stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// New blobs stored.
    pub blobs_added: u64,
    /// Their plaintext bytes.
    pub raw_bytes_added: u64,
    /// Their stored (compressed, encrypted) bytes.
    pub bytes_added: u64,
    /// Packs uploaded.
    pub packs_written: u64,
    /// Index objects written.
    pub indexes_written: u64,
}

struct Shared {
    store: Store,
    keys: Keys,
    /// The lock the session writes under: confirmed before every index
    /// object, and its loss stops the session.
    lock: Arc<HeldLock>,
    pending: Mutex<IndexFile>,
    written: Mutex<Vec<(IndexId, IndexFile)>>,
    error: Mutex<Option<Error>>,
    failed: AtomicBool,
    packs_written: AtomicU64,
}

impl Shared {
    fn fail(&self, e: Error) {
        let mut slot = self.error.lock();
        if slot.is_none() {
            *slot = Some(e);
        }
        self.failed.store(true, Ordering::SeqCst);
    }

    /// Seal and store the pending index, if any packs are waiting.
    fn flush_index(&self) -> Result<()> {
        let index = std::mem::take(&mut *self.pending.lock());
        if index.packs.is_empty() {
            return Ok(());
        }
        let (id, bytes) = index.seal(&self.keys)?;
        self.lock.confirm()?;
        self.store.put_object(&id, bytes.into())?;
        // Stopped during the upload past the lease? Then a prune may have
        // run meanwhile: take the index object back.
        if let Err(e) = self.lock.confirm() {
            let _ = self.store.delete_object(&id);
            return Err(e);
        }
        self.written.lock().push((id, index));
        Ok(())
    }

    fn upload(&self, pack: FinishedPack) -> Result<()> {
        let size = pack.bytes.len() as u64;
        failpoint("backup-before-pack-upload");
        self.store.put_object(&pack.id, pack.bytes)?;
        let n = self.packs_written.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 2 {
            failpoint("backup-after-second-pack");
        }
        let flush = {
            let mut pending = self.pending.lock();
            pending.packs.push(IndexedPack {
                id: pack.id,
                size,
                blobs: pack.entries,
                sealing: self.keys.session().copied(),
            });
            pending.packs.len() >= INDEX_FLUSH_PACKS
        };
        if flush {
            self.flush_index()?;
        }
        Ok(())
    }
}

fn uploader(shared: Arc<Shared>, packs: Receiver<FinishedPack>) {
    for pack in packs {
        // After a failure, keep draining so senders never block forever.
        if shared.failed.load(Ordering::SeqCst) {
            continue;
        }
        if let Err(e) = shared.upload(pack) {
            shared.fail(e);
        }
    }
}

/// Whether the packs the index names can be trusted to exist.
enum Presence {
    /// Yes (a fresh census found none missing, or nobody asked).
    Trusted,
    /// These are known to be gone.
    Lost(HashSet<PackId>),
    /// Ask the store (one `HEAD` per pack, remembered).
    Probe(Mutex<HashMap<PackId, bool>>),
}

/// Deduplicating, packing, uploading blob writer. Shared by reference
/// between threads.
pub struct BlobWriter<'a> {
    index: IndexView<'a>,
    presence: Presence,
    /// Skip blobs the index already has (off when repacking: the blobs
    /// being copied are in the index, in the packs about to go).
    dedupe_against_index: bool,
    repo_index: &'a crate::cache::IndexCache,
    keys: &'a Keys,
    compression: Compression,
    pack_size: usize,
    seen: Mutex<HashSet<[u8; ID_LEN]>>,
    packers: [Mutex<PackBuilder>; 2],
    upload_tx: Mutex<Option<Sender<FinishedPack>>>,
    uploaders: Mutex<Vec<JoinHandle<()>>>,
    shared: Arc<Shared>,
    blobs_added: AtomicU64,
    raw_bytes_added: AtomicU64,
    bytes_added: AtomicU64,
}

impl std::fmt::Debug for BlobWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter").finish_non_exhaustive()
    }
}

impl<'a> BlobWriter<'a> {
    /// A writer for `repo`. Blobs the repository already holds are not
    /// stored again.
    pub fn new(repo: &'a Repository) -> Result<Self> {
        let index = repo.index()?.view()?;
        let pack_size = repo.config().pack_size as usize;
        let shared = Arc::new(Shared {
            store: repo.store().clone(),
            keys: repo.keys().clone(),
            lock: repo.held_lock()?,
            pending: Mutex::new(IndexFile::default()),
            written: Mutex::new(Vec::new()),
            error: Mutex::new(None),
            failed: AtomicBool::new(false),
            packs_written: AtomicU64::new(0),
        });
        // A rendezvous channel: a finished pack waits in the hands of the
        // thread that filled it until an uploader is free, so at most one
        // pack per uploader is in flight besides the two being filled.
        let (tx, rx) = bounded::<FinishedPack>(0);
        let mut uploaders = Vec::new();
        for i in 0..repo.store().parallelism() {
            let shared = Arc::clone(&shared);
            let rx = rx.clone();
            uploaders.push(
                std::thread::Builder::new()
                    .name(format!("cairn-upload-{i}"))
                    .spawn(move || uploader(shared, rx))
                    .map_err(|e| Error::io("uploader thread", e))?,
            );
        }
        Ok(Self {
            index,
            presence: Presence::Trusted,
            dedupe_against_index: true,
            repo_index: repo.index()?,
            keys: repo.keys(),
            compression: repo.config().compression,
            pack_size,
            seen: Mutex::new(HashSet::new()),
            packers: [
                Mutex::new(PackBuilder::new(0)),
                Mutex::new(PackBuilder::new(0)),
            ],
            upload_tx: Mutex::new(Some(tx)),
            uploaders: Mutex::new(uploaders),
            shared,
            blobs_added: AtomicU64::new(0),
            raw_bytes_added: AtomicU64::new(0),
            bytes_added: AtomicU64::new(0),
        })
    }

    /// A writer for prune's repacking: stores already encoded blobs
    /// ([`BlobWriter::store_encoded`]) without consulting the index.
    pub fn for_repack(repo: &'a Repository) -> Result<Self> {
        let mut w = Self::new(repo)?;
        w.dedupe_against_index = false;
        Ok(w)
    }

    /// The repository's keys.
    pub fn keys(&self) -> &Keys {
        self.keys
    }

    /// Count blobs in these (lost) packs as absent, so they are stored
    /// again: a backup heals what a lost pack took.
    pub fn set_lost_packs(&mut self, lost: &[PackId]) {
        if !lost.is_empty() {
            self.presence = Presence::Lost(lost.iter().copied().collect());
        }
    }

    /// Before counting a blob as stored, check (once per pack) that its
    /// pack exists: for writers that list no packs (log push).
    pub fn probe_packs(&mut self) {
        self.presence = Presence::Probe(Mutex::new(HashMap::new()));
    }

    fn pack_exists(&self, pack: &PackId) -> Result<bool> {
        match &self.presence {
            Presence::Trusted => Ok(true),
            Presence::Lost(lost) => Ok(!lost.contains(pack)),
            Presence::Probe(known) => {
                if let Some(there) = known.lock().get(pack) {
                    return Ok(*there);
                }
                let there = self.shared.store.head_object(&pack)?.is_some();
                if !there {
                    tracing::warn!(
                        "pack {} is missing from the repository; storing its data again",
                        pack.short()
                    );
                }
                known.lock().insert(*pack, there);
                Ok(there)
            }
        }
    }

    /// Whether a blob indexed in `pack` counts as stored: the pack exists,
    /// and a full key does not rely on what a put-only host sealed (it
    /// could have stored anything under any id; a prune re-seals what it
    /// keeps of it).
    fn usable(&self, pack: &PackId) -> Result<bool> {
        if !self.keys.is_put_only() && self.repo_index.sealing(pack).is_some() {
            return Ok(false);
        }
        self.pack_exists(pack)
    }

    /// Whether the index holds the blob in a pack that exists.
    fn indexed(&self, kind: BlobKind, id: &[u8; ID_LEN]) -> Result<bool> {
        let Some(first) = self.index.lookup(id)? else {
            return Ok(false);
        };
        if first.kind == kind && self.usable(&first.pack)? {
            return Ok(true);
        }
        if matches!(self.presence, Presence::Trusted) {
            return Ok(false);
        }
        for other in self.index.lookup_all(id)?.into_iter().skip(1) {
            if other.kind == kind && self.usable(&other.pack)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Fail fast if an upload already failed or the lock was lost.
    pub fn check(&self) -> Result<()> {
        if self.shared.lock.is_lost() {
            return self.shared.lock.confirm();
        }
        if self.shared.failed.load(Ordering::SeqCst) {
            return Err(Error::Aborted("an upload failed".into()));
        }
        Ok(())
    }

    /// Whether the lock this session writes under is known to be lost.
    pub fn lock_lost(&self) -> bool {
        self.shared.lock.is_lost()
    }

    /// Whether the repository (or this session) already holds the blob.
    pub fn has(&self, kind: BlobKind, id: &[u8; ID_LEN]) -> Result<bool> {
        if self.seen.lock().contains(id) {
            return Ok(true);
        }
        self.indexed(kind, id)
    }

    /// The index objects written so far (prune must not delete them).
    pub fn written_indexes(&self) -> Vec<IndexId> {
        self.shared
            .written
            .lock()
            .iter()
            .map(|(id, _)| *id)
            .collect()
    }

    /// Store a blob whose id the caller computed. Returns whether it was new.
    pub fn store(&self, kind: BlobKind, id: [u8; ID_LEN], plaintext: &[u8]) -> Result<bool> {
        if !self.claim(kind, &id)? {
            return Ok(false);
        }
        let stored = crypto::encode_blob(self.keys, &self.compression, kind, &id, plaintext)?;
        let raw_len = u32::try_from(plaintext.len())
            .map_err(|_| Error::invalid("blob", "larger than 4 GiB"))?;
        self.push(kind, id, &stored, raw_len)?;
        Ok(true)
    }

    /// Store a blob that is already compressed and encrypted (prune copies
    /// blobs between packs without decrypting them again). The caller has
    /// verified it. Returns whether it was new.
    pub fn store_encoded(
        &self,
        kind: BlobKind,
        id: [u8; ID_LEN],
        stored: &[u8],
        raw_len: u32,
    ) -> Result<bool> {
        if !self.claim(kind, &id)? {
            return Ok(false);
        }
        self.push(kind, id, stored, raw_len)?;
        Ok(true)
    }

    /// Whether this session should store the blob; claims it if so, before
    /// the (slow) encoding, so a second worker with the same chunk does not
    /// encode it again.
    fn claim(&self, kind: BlobKind, id: &[u8; ID_LEN]) -> Result<bool> {
        self.check()?;
        if self.dedupe_against_index && self.indexed(kind, id)? {
            return Ok(false);
        }
        Ok(self.seen.lock().insert(*id))
    }

    /// Append an encoded blob to the open pack of its kind; hand the pack
    /// to an uploader when it is full.
    fn push(&self, kind: BlobKind, id: [u8; ID_LEN], stored: &[u8], raw_len: u32) -> Result<()> {
        self.blobs_added.fetch_add(1, Ordering::Relaxed);
        self.raw_bytes_added
            .fetch_add(u64::from(raw_len), Ordering::Relaxed);
        self.bytes_added
            .fetch_add(stored.len() as u64, Ordering::Relaxed);
        let full = {
            let mut packer = self.packers[usize::from(kind.to_byte())].lock();
            if packer.is_empty() && packer.size() == 0 {
                *packer = PackBuilder::new(self.pack_size + self.pack_size / 8);
            }
            packer.add(kind, id, stored, raw_len)?;
            if packer.size() >= self.pack_size {
                Some(std::mem::replace(&mut *packer, PackBuilder::new(0)))
            } else {
                None
            }
        };
        if let Some(full) = full {
            self.send(full)?;
        }
        Ok(())
    }

    /// Store a blob, computing its id. Returns the id and whether it was new.
    pub fn store_plain(&self, kind: BlobKind, plaintext: &[u8]) -> Result<([u8; ID_LEN], bool)> {
        let id = self.keys.blob_id(kind, plaintext);
        let added = self.store(kind, id, plaintext)?;
        Ok((id, added))
    }

    fn send(&self, builder: PackBuilder) -> Result<()> {
        if builder.is_empty() {
            return Ok(());
        }
        let pack = builder.finish(self.keys)?;
        let tx = self.upload_tx.lock().clone();
        match tx {
            Some(tx) => tx
                .send(pack)
                .map_err(|_| Error::Aborted("the uploaders stopped".into())),
            None => Err(Error::Aborted("the writer is finished".into())),
        }
    }

    /// Blobs stored so far.
    pub fn stats(&self) -> WriteStats {
        WriteStats {
            blobs_added: self.blobs_added.load(Ordering::Relaxed),
            raw_bytes_added: self.raw_bytes_added.load(Ordering::Relaxed),
            bytes_added: self.bytes_added.load(Ordering::Relaxed),
            packs_written: self.shared.packs_written.load(Ordering::Relaxed),
            indexes_written: self.shared.written.lock().len() as u64,
        }
    }

    /// Upload the partly filled packs, wait for every upload, write the last
    /// index object and merge the new index objects into the cache. After
    /// this returns `Ok`, every blob stored is durable and indexed.
    pub fn finish(&self) -> Result<WriteStats> {
        let mut first_error = None;
        for kind in [BlobKind::Data, BlobKind::Tree] {
            let builder = std::mem::replace(
                &mut *self.packers[usize::from(kind.to_byte())].lock(),
                PackBuilder::new(0),
            );
            if let Err(e) = self.send(builder) {
                first_error.get_or_insert(e);
            }
        }
        drop(self.upload_tx.lock().take());
        for handle in self.uploaders.lock().drain(..) {
            if handle.join().is_err() {
                first_error.get_or_insert(Error::Aborted("an uploader panicked".into()));
            }
        }
        if let Some(e) = self.shared.error.lock().take() {
            return Err(e);
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        failpoint("backup-after-packs");
        self.shared.flush_index()?;
        let written = self.shared.written.lock().clone();
        self.repo_index.merge(&written)?;
        Ok(self.stats())
    }

    /// Abandon the session: stop the uploaders without writing an index for
    /// what is still pending (those packs become orphans, adopted later).
    pub fn abandon(&self) {
        for packer in &self.packers {
            *packer.lock() = PackBuilder::new(0);
        }
        self.shared.failed.store(true, Ordering::SeqCst);
        drop(self.upload_tx.lock().take());
        for handle in self.uploaders.lock().drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if !self.uploaders.lock().is_empty() {
            self.abandon();
        }
    }
}

/// What a backup found when it compared the index with the packs stored.
#[derive(Debug, Clone, Default)]
pub struct PackCensus {
    /// Packs no index listed, left by an interrupted run: now indexed.
    pub adopted: usize,
    /// Packs no index lists whose header cannot be read (left alone).
    pub unreadable: Vec<(PackId, String)>,
    /// Packs the index lists that the store does not have: lost. Their
    /// blobs count as absent, so this backup stores again what it needs.
    pub lost: Vec<PackId>,
}

/// Compare the index with the store's listing of packs: adopt packs that
/// no index object lists and no prune retired (left by an interrupted
/// backup: their headers are read and an index object written, so their
/// blobs count as stored), and find indexed packs that are gone.
pub fn census_packs(repo: &Repository) -> Result<PackCensus> {
    let index = repo.index()?;
    let known: HashSet<PackId> = index.packs()?.into_iter().map(|(id, _)| id).collect();
    let listing = repo.store().list(ObjectKind::Pack)?;
    let present: HashMap<PackId, u64> = listing
        .objects
        .iter()
        .filter_map(|o| PackId::from_hex(&o.name).ok().map(|id| (id, o.size)))
        .collect();
    let mut census = PackCensus {
        lost: known
            .iter()
            .filter(|p| !present.contains_key(p))
            .copied()
            .collect(),
        ..PackCensus::default()
    };
    census.lost.sort();
    let orphans: Vec<(PackId, u64)> = present
        .iter()
        .filter(|(p, _)| !known.contains(p))
        .map(|(p, s)| (*p, *s))
        .collect();
    // A put-only key reads no pack header: the next prune adopts orphans.
    if orphans.is_empty() || repo.put_only_accounts().is_some() {
        return Ok(census);
    }
    // Retired by prune, waiting for deletion: garbage, not to be revived.
    let retired: HashSet<PackId> = pending::read_records(repo.keys(), repo.store())?
        .iter()
        .flat_map(|(_, r)| r.objects.iter().filter_map(|o| pending::pack_of(o)))
        .collect();
    let mut adopted = IndexFile::default();
    for (id, size) in orphans {
        if retired.contains(&id) {
            continue;
        }
        match crate::objects::read_pack_header_sealed(repo.store(), repo.keys(), &id, size) {
            Ok((blobs, sealing)) => adopted.packs.push(IndexedPack {
                id,
                size,
                blobs,
                sealing,
            }),
            Err(e) => census.unreadable.push((id, e.to_string())),
        }
    }
    census.adopted = adopted.packs.len();
    if census.adopted > 0 {
        tracing::info!(
            "adopting {} packs left by an interrupted run",
            census.adopted
        );
        repo.save_index(adopted)?;
    }
    Ok(census)
}
