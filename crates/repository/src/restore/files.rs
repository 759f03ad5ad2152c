//! File contents, restored pack by pack.
//!
//! The plan lists, for every pack, the blobs that restored files need and
//! where each goes (file, offset). Workers take one pack at a time, read the
//! needed byte ranges (neighbouring blobs coalesced into one read, so a pack
//! of small files costs a few reads instead of one per file; the same plan
//! serves an S3 repository), decrypt each blob once and write it with
//! `pwrite` into every file that needs it. Files are created on first write,
//! pre-sized, so chunks that are all zeros are left as holes. The last write
//! into a file finishes it: verification (if asked), then metadata.

use super::Restorer;
use crate::cache::IndexView;
use crate::crypto;
use crate::error::Result;
use crate::id::{BlobId, ChunkId, PackId};
use crate::pack;
use crate::tree::Node;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One file to write.
pub(super) struct PlannedFile {
    pub snap_path: Vec<u8>,
    pub dest: PathBuf,
    pub node: Node,
    /// Sum of the chunks' lengths (may differ from the recorded size when
    /// the file changed while it was backed up: the content wins).
    size: u64,
    remaining: AtomicUsize,
    created: OnceLock<std::result::Result<(), String>>,
    failure: Mutex<Option<String>>,
}

/// Where one blob's plaintext goes.
#[derive(Clone)]
struct BlobUse {
    offset: u32,
    length: u32,
    raw_length: u32,
    id: ChunkId,
    targets: Vec<(usize, u64)>,
}

/// Every file to restore and, per pack, what to read from it.
#[derive(Default)]
pub(super) struct Plan {
    files: Vec<PlannedFile>,
    packs: HashMap<PackId, Vec<BlobUse>>,
    /// (pack, offset) -> index into that pack's uses: each blob is decoded
    /// once however many files (or places in a file) hold it.
    seen: HashMap<(PackId, u32), usize>,
}

impl Plan {
    /// Add a file; chunks not in the index fail the file right away.
    pub(super) fn add(
        &mut self,
        r: &Restorer<'_>,
        index: &IndexView<'_>,
        snap_path: Vec<u8>,
        dest: PathBuf,
        node: Node,
    ) -> Result<()> {
        let file_idx = self.files.len();
        let mut offset = 0u64;
        let mut uses = Vec::with_capacity(node.chunks().len());
        for chunk in node.chunks() {
            match index.find(chunk)? {
                Some(loc) => {
                    uses.push((loc, *chunk, offset));
                    offset += u64::from(loc.raw_length);
                }
                None => {
                    r.error(
                        &snap_path,
                        format!("chunk {} is missing from the repository", chunk.short()),
                    );
                    return Ok(());
                }
            }
        }
        if offset != node.meta.size && !r.changed_during_backup.contains(&snap_path) {
            // Restored as stored (the content is what the chunks hold), but
            // the snapshot contradicts itself: say so and fail the restore.
            r.error(
                &snap_path,
                format!(
                    "its recorded size is {} bytes but its content is {offset}; restored with the content as stored",
                    node.meta.size
                ),
            );
        }
        self.files.push(PlannedFile {
            snap_path,
            dest,
            size: offset,
            remaining: AtomicUsize::new(uses.len()),
            created: OnceLock::new(),
            failure: Mutex::new(None),
            node,
        });
        for (loc, id, at) in uses {
            let slot = *self.seen.entry((loc.pack, loc.offset)).or_insert_with(|| {
                let list = self.packs.entry(loc.pack).or_default();
                list.push(BlobUse {
                    offset: loc.offset,
                    length: loc.length,
                    raw_length: loc.raw_length,
                    id,
                    targets: Vec::new(),
                });
                list.len() - 1
            });
            if let Some(u) = self.packs.get_mut(&loc.pack).and_then(|l| l.get_mut(slot)) {
                u.targets.push((file_idx, at));
            }
        }
        Ok(())
    }

    /// Write everything with `threads` workers. Blobs that fail to read
    /// are tried again afterwards, one by one: once more where a read came
    /// back corrupt, then at every other place the index lists them.
    pub(super) fn execute(self, r: &Restorer<'_>, index: &IndexView<'_>, threads: usize) {
        let Plan { files, packs, .. } = self;
        // Empty files have nothing to wait for.
        for f in files.iter().filter(|f| f.node.chunks().is_empty()) {
            finish(r, f);
        }
        let queue = Mutex::new(packs.into_iter().collect::<Vec<_>>());
        let failed = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..threads.max(1) {
                s.spawn(|| {
                    loop {
                        // Bind first: a guard in the `while let` scrutinee
                        // would stay locked for the whole loop body.
                        let next = queue.lock().pop();
                        let Some((pack, uses)) = next else { break };
                        restore_pack(r, &files, &pack, uses, &failed);
                    }
                });
            }
        });
        for miss in failed.into_inner() {
            retry_blob(r, &files, index, miss);
        }
    }
}

/// Create the file (once, whichever worker gets there first), pre-sized.
fn create(r: &Restorer<'_>, f: &PlannedFile) -> std::result::Result<(), String> {
    f.created
        .get_or_init(|| {
            r.dirs.clear_spot(&f.dest)?;
            let file = r.dirs.create_file(&f.dest)?;
            file.set_len(f.size)
                .map_err(|e| format!("{}: {e}", f.dest.display()))
        })
        .clone()
}

fn write_blob(
    r: &Restorer<'_>,
    f: &PlannedFile,
    at: u64,
    data: &[u8],
) -> std::result::Result<(), String> {
    create(r, f)?;
    // Zero runs stay holes in the pre-sized file.
    if data.len() >= 4096 && data.iter().all(|b| *b == 0) {
        return Ok(());
    }
    let file = r.dirs.open_file(&f.dest, true)?;
    file.write_all_at(data, at)
        .map_err(|e| format!("{}: {e}", f.dest.display()))
}

/// One part of a file is done (or failed); the last part finishes it.
fn part_done(r: &Restorer<'_>, f: &PlannedFile, result: std::result::Result<(), String>) {
    if let Err(e) = result {
        f.failure.lock().get_or_insert(e);
    }
    if f.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
        finish(r, f);
    }
}

fn finish(r: &Restorer<'_>, f: &PlannedFile) {
    let result = f.failure.lock().take().map_or_else(
        || {
            create(r, f)?;
            if r.verify {
                r.verify_file(&f.dest, f.node.chunks())?;
                r.verified.fetch_add(1, Ordering::Relaxed);
            }
            r.apply_metadata(&f.dest, &f.node.meta, false)
        },
        Err,
    );
    match result {
        Ok(()) => {
            r.written.lock().insert(f.snap_path.clone(), f.dest.clone());
            r.files.fetch_add(1, Ordering::Relaxed);
            r.progress.file_done(&f.dest);
        }
        Err(e) => {
            // No partial files: what is there is whole or absent.
            if f.created.get().is_some_and(|c| c.is_ok()) {
                r.dirs.remove_file(&f.dest);
            }
            r.error(&f.snap_path, e);
        }
    }
}

/// A blob whose first read failed: where, what, and how.
struct Miss {
    pack: PackId,
    blob: BlobUse,
    error: String,
    /// The pack itself was not found (no point reading it again).
    gone: bool,
}

/// Write one decoded blob into every place that needs it.
fn deliver(r: &Restorer<'_>, files: &[PlannedFile], u: &BlobUse, data: &[u8]) {
    for (f, at) in targets(files, u) {
        let result = write_blob(r, f, at, data);
        r.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        r.progress.bytes(data.len() as u64);
        part_done(r, f, result);
    }
}

fn targets<'f>(
    files: &'f [PlannedFile],
    u: &'f BlobUse,
) -> impl Iterator<Item = (&'f PlannedFile, u64)> + 'f {
    u.targets
        .iter()
        .filter_map(|&(i, at)| files.get(i).map(|f| (f, at)))
}

fn restore_pack(
    r: &Restorer<'_>,
    files: &[PlannedFile],
    pack: &PackId,
    mut uses: Vec<BlobUse>,
    failed: &Mutex<Vec<Miss>>,
) {
    uses.sort_by_key(|u| u.offset);
    // Neighbours coalesced into one read.
    for (run, bytes) in pack::read_runs(&uses, |u| (u.offset, u.length)) {
        let first = bytes.start;
        let range = r
            .repo
            .keys_for_pack(pack)
            .and_then(|keys| Ok((r.repo.store().get_object_range(pack, bytes)?, keys)));
        for u in &uses[run] {
            let decoded = match &range {
                Err(e) => Err((e.to_string(), e.is_not_found())),
                Ok((bytes, keys)) => {
                    let from = (u64::from(u.offset) - first) as usize;
                    match bytes.get(from..from + u.length as usize) {
                        None => Err(("short read".to_string(), false)),
                        Some(stored) => crypto::with_blob(
                            keys,
                            ChunkId::KIND,
                            u.id.raw(),
                            stored,
                            u.raw_length,
                            |data| deliver(r, files, u, data),
                        )
                        .map_err(|e| (e.to_string(), false)),
                    }
                }
            };
            if let Err((error, gone)) = decoded {
                failed.lock().push(Miss {
                    pack: *pack,
                    blob: u.clone(),
                    error,
                    gone,
                });
            }
        }
    }
}

/// The second chance for a blob that failed: the same place once more when
/// the bytes were corrupt (a bad read), then every other place the index
/// lists it (a copy a later backup stored after a pack was lost).
fn retry_blob(r: &Restorer<'_>, files: &[PlannedFile], index: &IndexView<'_>, miss: Miss) {
    let Miss {
        pack,
        blob,
        error,
        gone,
    } = miss;
    let mut places = Vec::new();
    if !gone {
        places.push((pack, blob.offset, blob.length, blob.raw_length));
    }
    for loc in index.find_all(&blob.id).unwrap_or_default() {
        if loc.pack != pack {
            places.push((loc.pack, loc.offset, loc.length, loc.raw_length));
        }
    }
    match crate::repo::read_first_good(r.repo, ChunkId::KIND, blob.id.raw(), places.into_iter()) {
        Ok(data) => deliver(r, files, &blob, &data),
        Err(again) => {
            let again = again.to_string();
            let why = if again == error {
                format!("chunk {}: {error}", blob.id.short())
            } else {
                format!("chunk {}: {error}; {again}", blob.id.short())
            };
            for (f, _) in targets(files, &blob) {
                part_done(r, f, Err(why.clone()));
            }
        }
    }
}
