//! The readers and workers of a backup: files are read and chunked into
//! buffers handed to workers, which hash, deduplicate, compress and encrypt
//! them; the last chunk of a file to finish completes its tree entry.

use super::{ChunkJob, FileJob, FileState, Run, metadata_of};
use crate::error::{Error, Result};
use crate::fsat;
use crate::id::{BlobKind, ChunkId};
use crate::snapshot::{MAX_LISTED_PROBLEMS, RawPath};
use crate::tree::NodeData;
use cairn_chunker::ScanState;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

impl Run<'_> {
    // --------------------------------------------------------------- readers

    pub(super) fn reader(&self, files: Receiver<FileJob>, chunks: Sender<ChunkJob>) {
        for job in files {
            let state = Arc::new(FileState {
                job,
                chunks: Mutex::new(Vec::new()),
                remaining: AtomicUsize::new(1),
                failure: Mutex::new(None),
                read: AtomicU64::new(0),
            });
            if !self.is_aborted() {
                self.read_file(&state, &chunks);
            }
            self.read_done();
            self.release(&state);
        }
    }

    /// Read and chunk one file. Bytes are read straight into the buffer of
    /// the chunk they belong to (at most `max_size` plus one read block per
    /// reader), and a finished chunk's buffer goes to a worker as it is;
    /// only the few bytes read past a boundary are copied.
    fn read_file(&self, state: &Arc<FileState>, chunks: &Sender<ChunkJob>) {
        const BLOCK: usize = 1 << 20;
        let path = &state.job.path;
        let mut file = match fsat::open_file_at(&state.job.parent, &state.job.name) {
            Ok(f) => f,
            Err(e) => {
                *state.failure.lock() = Some(e.to_string());
                return;
            }
        };
        let chunker = self.repo.chunker();
        let max = chunker.params().max_size() as usize;
        let expected = state.job.node.meta.size;
        let capacity_for = |left: u64| (left.saturating_add(1)).min(max as u64) as usize;
        let mut cur: Vec<u8> = Vec::with_capacity(capacity_for(expected));
        let mut scan = ScanState::new();
        let mut total = 0u64;
        let mut eof = false;
        loop {
            if self.is_aborted() {
                return;
            }
            if !eof && cur.len() < max {
                let want = BLOCK.min(max - cur.len());
                match (&mut file).take(want as u64).read_to_end(&mut cur) {
                    Ok(n) => {
                        eof = n < want;
                        total += n as u64;
                        self.counters
                            .bytes_read
                            .fetch_add(n as u64, Ordering::Relaxed);
                        self.progress.bytes(n as u64);
                    }
                    Err(e) => {
                        *state.failure.lock() = Some(e.to_string());
                        return;
                    }
                }
            }
            if cur.is_empty() {
                break;
            }
            if let Some(len) = chunker.scan(&cur, &mut scan, eof) {
                let rest = &cur[len..];
                let mut next = Vec::with_capacity(if eof {
                    rest.len()
                } else {
                    capacity_for(expected.saturating_sub(total)).max(rest.len())
                });
                next.extend_from_slice(rest);
                cur.truncate(len);
                self.send_chunk(state, std::mem::replace(&mut cur, next), chunks);
                scan = ScanState::new();
                if eof && cur.is_empty() {
                    break;
                }
            }
        }
        // A file that changed while being read is kept (the data is what
        // was read, and its size is recorded) and reported; its times are
        // from before the read, so the next backup reads it again.
        state.read.store(total, Ordering::Relaxed);
        let changed = match file.metadata() {
            Ok(after) => {
                let after = metadata_of(&after);
                let before = &state.job.node.meta;
                after.size != before.size
                    || after.mtime != before.mtime
                    || after.ctime != before.ctime
                    || total != before.size
            }
            Err(_) => true,
        };
        if changed {
            self.progress.warn(&format!(
                "{} changed while it was being read",
                path.display()
            ));
            let mut p = self.problems.lock();
            p.changed_count += 1;
            if p.changed.len() < MAX_LISTED_PROBLEMS {
                p.changed
                    .push(RawPath(path.as_os_str().as_bytes().to_vec()));
            }
        }
    }

    fn send_chunk(&self, state: &Arc<FileState>, data: Vec<u8>, chunks: &Sender<ChunkJob>) {
        let seq = {
            let mut c = state.chunks.lock();
            c.push(None);
            c.len() - 1
        };
        state.remaining.fetch_add(1, Ordering::SeqCst);
        let job = ChunkJob {
            file: Arc::clone(state),
            seq,
            data,
        };
        if let Err(crossbeam_channel::SendError(job)) = chunks.send(job) {
            self.release(&job.file);
        }
    }

    // --------------------------------------------------------------- workers

    pub(super) fn worker(&self, chunks: Receiver<ChunkJob>) {
        let keys = self.repo.keys();
        for job in chunks {
            if !self.is_aborted() {
                let id = keys.chunk_id(&job.data);
                match self.writer.store(BlobKind::Data, *id.as_bytes(), &job.data) {
                    Ok(_) => {
                        if let Some(slot) = job.file.chunks.lock().get_mut(job.seq) {
                            *slot = Some(id);
                        }
                    }
                    Err(e) => self.abort(e),
                }
            }
            drop(job.data);
            self.release(&job.file);
        }
    }

    fn release(&self, state: &Arc<FileState>) {
        if state.remaining.fetch_sub(1, Ordering::SeqCst) != 1 || self.is_aborted() {
            return;
        }
        if let Err(e) = self.complete_file(state) {
            self.abort(e);
        }
    }

    fn complete_file(&self, state: &FileState) -> Result<()> {
        let job = &state.job;
        if let Some(err) = state.failure.lock().take() {
            self.unreadable(&job.path, err);
            return self.fill(job.dir, job.slot, None);
        }
        let chunks: Option<Vec<ChunkId>> = state.chunks.lock().iter().copied().collect();
        let chunks = chunks.ok_or_else(|| {
            Error::Aborted(format!("{}: a chunk was not stored", job.path.display()))
        })?;
        let counter = if job.is_new {
            &self.counters.files_new
        } else {
            &self.counters.files_changed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.progress.file_change(
            &job.path,
            if job.is_new {
                crate::progress::FileChange::New
            } else {
                crate::progress::FileChange::Modified
            },
        );
        self.progress.file_done(&job.path);
        let mut node = job.node.clone();
        node.meta.size = state.read.load(Ordering::Relaxed);
        node.data = NodeData::File { chunks };
        self.fill(job.dir, job.slot, Some(node))
    }
}
