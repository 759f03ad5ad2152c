//! Backup of directory trees into a snapshot.
//!
//! The pipeline (see `docs/ARCHITECTURE.md`):
//!
//! ```text
//! walker ──FileJob──▶ readers (2) ──ChunkJob──▶ workers (1 per core) ──▶ BlobWriter ──▶ uploaders
//!   │ metadata-only entries, unchanged files                 │ file complete
//!   └──────────────────────────────▶ Assembler ◀────────────┘ (trees stored bottom-up)
//! ```
//!
//! - The walker lists directories in name order, compares each file with the
//!   parent snapshot (same size, mtime, ctime and inode, and every chunk
//!   still indexed: the file is not read again) and hands the rest to the
//!   readers. Paths given on the command line are read in the order given:
//!   every file of one path has been read before the next path starts
//!   (seed 001: a matched set of files, in the user's order).
//! - Readers chunk files, reading straight into each chunk's own buffer,
//!   and detect files that change while being read.
//! - Workers hash, deduplicate, compress and encrypt chunks.
//! - Channels are bounded, so memory does not grow with file sizes or file
//!   counts: at most a few chunks per worker and two packs per direction.

mod assemble;
mod prefetch;
mod read;

use crate::error::{Error, Result};
use crate::exclude::Excludes;
use crate::fsat::{self, EntryStat};
use crate::id::{BlobId, BlobKind, ChunkId, SnapshotId, TreeId};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::{
    self, MAX_LISTED_PROBLEMS, Problem, RawPath, SNAPSHOT_VERSION, Snapshot, SnapshotStatus,
    Summary,
};
use crate::tree::{Metadata, Node, NodeData, Time, Tree};
use crate::util::failpoint;
use crate::writer::{self, BlobWriter};
use assemble::{Assembler, DirRef};
use crossbeam_channel::{Sender, bounded};
use parking_lot::{Condvar, Mutex};
use rustix::fs::FileType;
use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Which snapshot to compare with to skip unchanged files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The newest snapshot of the same account and host with the same paths.
    #[default]
    Auto,
    /// None: read every file.
    None,
    /// This one.
    Snapshot(SnapshotId),
}

/// What to back up and how.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Paths, backed up in this order.
    pub paths: Vec<PathBuf>,
    /// Account the snapshot belongs to.
    pub account: String,
    /// Host name to record.
    pub host: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Record the snapshot under this time instead of now.
    pub time: Option<jiff::Timestamp>,
    /// Parent selection.
    pub parent: ParentChoice,
    /// Exclusion patterns.
    pub excludes: Vec<String>,
    /// Exclusion patterns matched without regard to case.
    pub iexcludes: Vec<String>,
    /// Skip the content of directories tagged with `CACHEDIR.TAG`.
    pub exclude_caches: bool,
    /// Threads reading files.
    pub read_threads: usize,
    /// Threads hashing, compressing and encrypting.
    pub cpu_threads: usize,
    /// Set (by a signal handler) to stop at a safe point: no snapshot is
    /// written, what was stored so far is indexed for the next run.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl BackupOptions {
    /// Defaults for `paths`: account `default`, this host, one reader per
    /// two cores (at least two), one worker per core.
    pub fn new(paths: Vec<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            paths,
            account: snapshot::DEFAULT_ACCOUNT.to_string(),
            host: crate::util::hostname(),
            tags: Vec::new(),
            time: None,
            parent: ParentChoice::Auto,
            excludes: Vec::new(),
            iexcludes: Vec::new(),
            exclude_caches: false,
            read_threads: (cores / 2).max(2),
            cpu_threads: cores.max(1),
            cancel: None,
        }
    }
}

/// The result of a backup.
#[derive(Debug, Clone)]
pub struct BackupOutcome {
    /// The new snapshot's id.
    pub id: SnapshotId,
    /// The manifest written.
    pub snapshot: Snapshot,
    /// Packs left by an interrupted earlier run that were adopted.
    pub adopted_packs: usize,
    /// Packs the index listed that were missing; what the snapshot needed
    /// from them was stored again.
    pub lost_packs: Vec<crate::id::PackId>,
}

/// Make a path absolute and remove `.` and `..` lexically (like restic:
/// the path is recorded as the user named it, symlinks are not resolved).
pub fn normalize_path(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

fn time_of(sec: i64, nsec: i64) -> Time {
    Time {
        sec,
        nsec: u32::try_from(nsec.clamp(0, 999_999_999)).unwrap_or(0),
    }
}

/// Recorded metadata from `lstat`.
pub(crate) fn metadata_of(md: &std::fs::Metadata) -> Metadata {
    Metadata {
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime: time_of(md.mtime(), md.mtime_nsec()),
        ctime: time_of(md.ctime(), md.ctime_nsec()),
        inode: md.ino(),
        device: md.dev(),
        size: md.size(),
        rdev: md.rdev(),
    }
}

/// The unchanged-file rule: same size, mtime, ctime and inode.
fn same_file(old: &Metadata, new: &Metadata) -> bool {
    old.size == new.size
        && old.mtime == new.mtime
        && old.ctime == new.ctime
        && old.inode == new.inode
}

/// The command-line paths as a tree of components.
#[derive(Default)]
struct Trie {
    children: BTreeMap<Vec<u8>, TrieChild>,
}

enum TrieChild {
    Dir(Trie),
    Leaf(usize),
}

impl Trie {
    fn build(paths: &[PathBuf]) -> Result<Self> {
        let mut root = Trie::default();
        for (i, path) in paths.iter().enumerate() {
            let parts: Vec<Vec<u8>> = path
                .components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n.as_bytes().to_vec()),
                    _ => None,
                })
                .collect();
            let overlap = || {
                Error::invalid(
                    "paths",
                    format!(
                        "{} overlaps another path given (each path may be given once, and not inside another)",
                        path.display()
                    ),
                )
            };
            let Some((last, dirs)) = parts.split_last() else {
                return Err(overlap());
            };
            let mut node = &mut root;
            for part in dirs {
                let child = node
                    .children
                    .entry(part.clone())
                    .or_insert_with(|| TrieChild::Dir(Trie::default()));
                node = match child {
                    TrieChild::Dir(d) => d,
                    TrieChild::Leaf(_) => return Err(overlap()),
                };
            }
            if node
                .children
                .insert(last.clone(), TrieChild::Leaf(i))
                .is_some()
            {
                return Err(overlap());
            }
        }
        Ok(root)
    }
}

struct FileJob {
    dir: DirRef,
    slot: usize,
    /// For messages; the file is opened as `name` in `parent`.
    path: PathBuf,
    parent: Arc<OwnedFd>,
    name: Vec<u8>,
    node: Node,
    is_new: bool,
}

struct FileState {
    job: FileJob,
    chunks: Mutex<Vec<Option<ChunkId>>>,
    /// One per chunk in flight plus one held by the reader until EOF; the
    /// thread that takes it to zero completes the file.
    remaining: AtomicUsize,
    failure: Mutex<Option<String>>,
    /// Bytes read: the size recorded, so that a file's size always equals
    /// the sum of its chunks' lengths (FORMAT.md, "Trees").
    read: AtomicU64,
}

struct ChunkJob {
    file: Arc<FileState>,
    seq: usize,
    data: Vec<u8>,
}

#[derive(Default)]
struct Counters {
    files_new: AtomicU64,
    files_changed: AtomicU64,
    files_unmodified: AtomicU64,
    dirs: AtomicU64,
    other: AtomicU64,
    bytes_total: AtomicU64,
    bytes_read: AtomicU64,
}

#[derive(Default)]
struct Problems {
    unreadable: Vec<Problem>,
    unreadable_count: u64,
    changed: Vec<RawPath>,
    changed_count: u64,
}

/// Where a non-directory entry is: its parent, open, and its name there;
/// its slot in the tree being assembled; its paths for messages.
struct Place {
    parent: Arc<OwnedFd>,
    dir: DirRef,
    slot: usize,
    path: PathBuf,
    snap_path: Vec<u8>,
    name: Vec<u8>,
}

/// A directory being listed by the walker, open: its entries are reached
/// relative to it, so the depth of a tree is never limited by `PATH_MAX`.
struct Frame {
    dir: DirRef,
    fd: Arc<OwnedFd>,
    path: PathBuf,
    snap_path: Vec<u8>,
    entries: Vec<(Vec<u8>, EntryStat)>,
    next: usize,
    parent_tree: Option<Tree>,
}

struct Run<'a> {
    repo: &'a Repository,
    writer: &'a BlobWriter<'a>,
    progress: &'a dyn Progress,
    excludes: Excludes,
    assembler: Assembler,
    counters: Counters,
    problems: Mutex<Problems>,
    hardlinks: Mutex<HashMap<(u64, u64), Vec<u8>>>,
    error: Mutex<Option<Error>>,
    aborted: AtomicBool,
    cancel: Option<Arc<AtomicBool>>,
    reads_in_flight: Mutex<usize>,
    reads_cv: Condvar,
}

impl Run<'_> {
    fn abort(&self, e: Error) {
        let mut slot = self.error.lock();
        if slot.is_none() {
            *slot = Some(e);
        }
        self.aborted.store(true, Ordering::SeqCst);
    }

    fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Relaxed) || self.cancelled() || self.writer.lock_lost()
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    fn unreadable(&self, path: &Path, error: impl std::fmt::Display) {
        let msg = error.to_string();
        self.progress
            .warn(&format!("cannot read {}: {msg}", path.display()));
        let mut p = self.problems.lock();
        p.unreadable_count += 1;
        if p.unreadable.len() < MAX_LISTED_PROBLEMS {
            p.unreadable.push(Problem {
                path: RawPath(path.as_os_str().as_bytes().to_vec()),
                error: msg,
            });
        }
    }

    fn fill(&self, dir: DirRef, slot: usize, node: Option<Node>) -> Result<()> {
        self.assembler.fill(dir, slot, node, self.writer)
    }

    fn load_parent_tree(&self, id: Option<TreeId>) -> Option<Tree> {
        let id = id?;
        match self.repo.load_tree(&id) {
            Ok(t) => Some(t),
            Err(e) => {
                // Without it the subtree is simply read again.
                self.progress.warn(&format!(
                    "parent tree {} unreadable, reading that directory in full: {e}",
                    id.short()
                ));
                None
            }
        }
    }

    // ---------------------------------------------------------------- walker

    /// List an open directory: names in byte order, lstat'ed, exclusions
    /// applied.
    fn list_dir(&self, path: &Path, fd: &OwnedFd) -> std::io::Result<Vec<(Vec<u8>, EntryStat)>> {
        let tagged = self.excludes.is_tagged_cache_at(fd);
        let mut entries = Vec::new();
        for name in fsat::names(fd)? {
            if tagged && name != b"CACHEDIR.TAG" {
                continue;
            }
            let full = path.join(std::ffi::OsStr::from_bytes(&name));
            let st = match fsat::stat_at(fd, &name) {
                Ok(st) => st,
                // Deleted between readdir and lstat: it is simply not there.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    self.unreadable(&full, e);
                    continue;
                }
            };
            if self.excludes.is_excluded(&full, &name, fsat::is_dir(&st)) {
                continue;
            }
            entries.push((name, st));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    /// Register a directory (opened by `open`) and list it; `None` if it
    /// cannot be opened or listed (it is then left out of the snapshot and
    /// reported).
    #[allow(clippy::too_many_arguments)]
    fn open_dir(
        &self,
        open: std::io::Result<OwnedFd>,
        path: PathBuf,
        snap_path: Vec<u8>,
        name: Vec<u8>,
        st: &EntryStat,
        parent: Option<(DirRef, usize)>,
        parent_tree: Option<Tree>,
    ) -> Result<Option<Frame>> {
        let listed = open.and_then(|fd| self.list_dir(&path, &fd).map(|e| (fd, e)));
        let (fd, entries) = match listed {
            Ok(l) => l,
            Err(e) => {
                self.unreadable(&path, e);
                if let Some((d, s)) = parent {
                    self.fill(d, s, None)?;
                }
                return Ok(None);
            }
        };
        self.counters.dirs.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .assembler
            .add_dir(parent, name, fsat::metadata_of(st), entries.len());
        Ok(Some(Frame {
            dir,
            fd: Arc::new(fd),
            path,
            snap_path,
            entries,
            next: 0,
            parent_tree,
        }))
    }

    /// Back up one directory tree, depth first, with an explicit stack (deep
    /// trees do not exhaust the thread's stack).
    fn walk_dir(&self, first: Frame, files: &Sender<FileJob>) -> Result<()> {
        let mut stack = vec![first];
        while let Some(frame) = stack.last_mut() {
            if self.is_aborted() {
                return Err(Error::Aborted("backup stopped".into()));
            }
            if frame.next == frame.entries.len() {
                self.assembler.seal(frame.dir, self.writer)?;
                stack.pop();
                continue;
            }
            let slot = frame.next;
            frame.next += 1;
            let (name, st) = &frame.entries[slot];
            let name = name.clone();
            let st = *st;
            let path = frame.path.join(std::ffi::OsStr::from_bytes(&name));
            let mut snap_path = frame.snap_path.clone();
            if !snap_path.is_empty() {
                snap_path.push(b'/');
            }
            snap_path.extend_from_slice(&name);
            let old = frame
                .parent_tree
                .as_ref()
                .and_then(|t| t.get(&name))
                .cloned();
            let dir = frame.dir;
            if fsat::is_dir(&st) {
                let old_tree = self.load_parent_tree(old.and_then(|n| n.subtree()));
                let open = fsat::open_dir_at(&frame.fd, &name);
                if let Some(child) = self.open_dir(
                    open,
                    path,
                    snap_path,
                    name,
                    &st,
                    Some((dir, slot)),
                    old_tree,
                )? {
                    stack.push(child);
                }
            } else {
                let parent = Arc::clone(&frame.fd);
                let at = Place {
                    parent,
                    dir,
                    slot,
                    path,
                    snap_path,
                    name,
                };
                self.entry(at, &st, old.as_ref(), files)?;
            }
        }
        Ok(())
    }

    /// Anything that is not a directory.
    fn entry(
        &self,
        at: Place,
        st: &EntryStat,
        old: Option<&Node>,
        files: &Sender<FileJob>,
    ) -> Result<()> {
        let Place {
            parent,
            dir,
            slot,
            path,
            snap_path,
            name,
        } = at;
        let meta = fsat::metadata_of(st);
        let ft = fsat::file_type(st);
        let node = |data| Node {
            name: name.clone(),
            meta,
            data,
        };
        if ft == FileType::RegularFile {
            if fsat::nlink(st) > 1 {
                let mut links = self.hardlinks.lock();
                match links.get(&(meta.device, meta.inode)) {
                    Some(first) => {
                        let target = first.clone();
                        drop(links);
                        self.counters.other.fetch_add(1, Ordering::Relaxed);
                        return self.fill(dir, slot, Some(node(NodeData::Hardlink { target })));
                    }
                    None => {
                        links.insert((meta.device, meta.inode), snap_path);
                    }
                }
            }
            self.counters
                .bytes_total
                .fetch_add(meta.size, Ordering::Relaxed);
            if let Some(old) = old.filter(|o| matches!(o.data, NodeData::File { .. }))
                && same_file(&old.meta, &meta)
                && self.all_chunks_present(old.chunks())?
            {
                self.counters
                    .files_unmodified
                    .fetch_add(1, Ordering::Relaxed);
                self.progress
                    .file_change(&path, crate::progress::FileChange::Unchanged);
                self.progress.bytes(meta.size);
                self.progress.file_done(&path);
                let chunks = old.chunks().to_vec();
                return self.fill(dir, slot, Some(node(NodeData::File { chunks })));
            }
            *self.reads_in_flight.lock() += 1;
            let job = FileJob {
                dir,
                slot,
                path,
                parent,
                name: name.clone(),
                node: node(NodeData::File { chunks: Vec::new() }),
                is_new: old.is_none(),
            };
            return files
                .send(job)
                .map_err(|_| Error::Aborted("the readers stopped".into()));
        }
        let data = match ft {
            FileType::Symlink => match fsat::read_link_at(&parent, &name) {
                Ok(target) => NodeData::Symlink { target },
                Err(e) => {
                    self.unreadable(&path, e);
                    return self.fill(dir, slot, None);
                }
            },
            FileType::Fifo => NodeData::Fifo,
            FileType::CharacterDevice => NodeData::CharDevice,
            FileType::BlockDevice => NodeData::BlockDevice,
            FileType::Socket => NodeData::Socket,
            _ => {
                self.unreadable(&path, "unknown file type");
                return self.fill(dir, slot, None);
            }
        };
        self.counters.other.fetch_add(1, Ordering::Relaxed);
        self.fill(dir, slot, Some(node(data)))
    }

    fn all_chunks_present(&self, chunks: &[ChunkId]) -> Result<bool> {
        for c in chunks {
            if !self.writer.has(BlobKind::Data, c.raw())? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Back up one command-line path into `slot` of `dir`.
    fn walk_leaf(
        &self,
        path: &Path,
        dir: DirRef,
        slot: usize,
        old: Option<&Node>,
        files: &Sender<FileJob>,
    ) -> Result<()> {
        let name = path
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        let snap_path = path.as_os_str().as_bytes()[1..].to_vec();
        let st = match fsat::lstat(path) {
            Ok(st) => st,
            Err(e) => {
                self.unreadable(path, e);
                return self.fill(dir, slot, None);
            }
        };
        if fsat::is_dir(&st) {
            let old_tree = self.load_parent_tree(old.and_then(Node::subtree));
            if let Some(frame) = self.open_dir(
                fsat::open_dir(path),
                path.to_path_buf(),
                snap_path,
                name,
                &st,
                Some((dir, slot)),
                old_tree,
            )? {
                self.walk_dir(frame, files)?;
            }
            Ok(())
        } else {
            let parent = match fsat::open_dir(path.parent().unwrap_or(Path::new("/"))) {
                Ok(fd) => Arc::new(fd),
                Err(e) => {
                    self.unreadable(path, e);
                    return self.fill(dir, slot, None);
                }
            };
            let at = Place {
                parent,
                dir,
                slot,
                path: path.to_path_buf(),
                snap_path,
                name,
            };
            self.entry(at, &st, old, files)
        }
    }

    /// Wait until every file handed to the readers has been read.
    fn wait_for_reads(&self) {
        let mut n = self.reads_in_flight.lock();
        while *n > 0 && !self.is_aborted() {
            self.reads_cv.wait(&mut n);
        }
    }

    fn read_done(&self) {
        let mut n = self.reads_in_flight.lock();
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.reads_cv.notify_all();
        }
    }

    /// Create the directories above the command-line paths, then back the
    /// paths up in the order given.
    fn walk_all(
        &self,
        paths: &[PathBuf],
        trie: Option<&Trie>,
        parent_root: Option<Tree>,
        files: &Sender<FileJob>,
    ) -> Result<()> {
        let Some(trie) = trie else {
            let st = fsat::lstat(Path::new("/")).map_err(|e| Error::io("/", e))?;
            return match self.open_dir(
                fsat::open_dir(Path::new("/")),
                PathBuf::from("/"),
                Vec::new(),
                Vec::new(),
                &st,
                None,
                parent_root,
            )? {
                Some(frame) => self.walk_dir(frame, files),
                None => Err(Error::invalid("path", "/ cannot be listed")),
            };
        };
        let root =
            self.assembler
                .add_dir(None, Vec::new(), Metadata::default(), trie.children.len());
        // Leaves: (dir, slot, parent node) by path index.
        let mut leaves: Vec<Option<(DirRef, usize, Option<Node>)>> = vec![None; paths.len()];
        let mut virtual_dirs = vec![root];
        let mut pending = vec![(trie, root, PathBuf::from("/"), parent_root)];
        while let Some((node, dir, real, parent_tree)) = pending.pop() {
            for (slot, (name, child)) in node.children.iter().enumerate() {
                let old = parent_tree.as_ref().and_then(|t| t.get(name)).cloned();
                let real_child = real.join(std::ffi::OsStr::from_bytes(name));
                match child {
                    TrieChild::Leaf(i) => leaves[*i] = Some((dir, slot, old)),
                    TrieChild::Dir(sub) => {
                        let st = fsat::lstat(&real_child).map_err(|e| Error::io(&real_child, e))?;
                        let d = self.assembler.add_dir(
                            Some((dir, slot)),
                            name.clone(),
                            fsat::metadata_of(&st),
                            sub.children.len(),
                        );
                        self.counters.dirs.fetch_add(1, Ordering::Relaxed);
                        virtual_dirs.push(d);
                        let sub_tree = self.load_parent_tree(old.and_then(|n| n.subtree()));
                        pending.push((sub, d, real_child, sub_tree));
                    }
                }
            }
        }
        for (path, leaf) in paths.iter().zip(leaves) {
            let Some((dir, slot, old)) = leaf else {
                return Err(Error::Aborted(format!("{} was not placed", path.display())));
            };
            self.walk_leaf(path, dir, slot, old.as_ref(), files)?;
            self.wait_for_reads();
        }
        for d in virtual_dirs.into_iter().rev() {
            self.assembler.seal(d, self.writer)?;
        }
        Ok(())
    }
}

fn choose_parent(
    repo: &Repository,
    opts: &BackupOptions,
    paths: &[PathBuf],
) -> Result<Option<(SnapshotId, Tree, u64)>> {
    if repo.put_only_accounts().is_some() {
        return Ok(None); // its trees cannot be read
    }
    let (id, snap) = match &opts.parent {
        ParentChoice::None => return Ok(None),
        ParentChoice::Snapshot(id) => (*id, repo.load_snapshot(id)?),
        ParentChoice::Auto => {
            let wanted: Vec<RawPath> = paths
                .iter()
                .map(|p| RawPath(p.as_os_str().as_bytes().to_vec()))
                .collect();
            let mut wanted_sorted = wanted.clone();
            wanted_sorted.sort();
            let found = repo.latest_cached(&opts.account, &|s| {
                let mut p = s.paths.clone();
                p.sort();
                s.account == opts.account && s.host == opts.host && p == wanted_sorted
            })?;
            match found {
                Some(found) => found,
                None => return Ok(None),
            }
        }
    };
    match repo.load_tree(&snap.tree) {
        Ok(tree) => Ok(Some((id, tree, snap.summary.bytes_total))),
        Err(e) => {
            tracing::warn!(
                "parent snapshot {} unreadable, reading everything: {e}",
                id.short()
            );
            Ok(None)
        }
    }
}

/// Back up `opts.paths` into a new snapshot.
pub fn backup(
    repo: &Repository,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupOutcome> {
    snapshot::validate_account(&opts.account)?;
    for t in &opts.tags {
        snapshot::validate_tag(t)?;
    }
    if opts.paths.is_empty() {
        return Err(Error::invalid("paths", "nothing to back up"));
    }
    // A path that cannot be looked at is reported as unreadable and the
    // others are backed up (the snapshot is then incomplete); when none
    // can be, there is nothing to back up.
    let mut paths = Vec::with_capacity(opts.paths.len());
    let mut missing = Vec::new();
    for p in &opts.paths {
        let abs = normalize_path(p)?;
        match std::fs::symlink_metadata(&abs) {
            Ok(_) => paths.push(abs),
            Err(e) => missing.push((abs, e)),
        }
    }
    if paths.is_empty() {
        let (path, e) = missing.swap_remove(0);
        return Err(Error::io(path, e));
    }
    // The directories above the paths (none when backing up `/` alone).
    let trie = if paths.len() == 1 && paths[0] == Path::new("/") {
        None
    } else {
        Some(Trie::build(&paths)?)
    };
    let excludes =
        Excludes::with_insensitive(&opts.excludes, &opts.iexcludes, opts.exclude_caches)?;
    fsat::allow_many_open_files();

    let _lock = repo.lock(false, "backup")?;
    // Warms the metadata while the index, packs and parent are looked at.
    let prefetch = prefetch::Prefetch::start(&paths, 4);
    crate::account::ensure_account_active(repo, &opts.account)?;
    repo.refresh_index()?;
    let census = writer::census_packs(repo)?;
    for (pack, why) in &census.unreadable {
        progress.warn(&format!(
            "pack {} is in no index and cannot be read ({why}); it is left alone (`cairn check` reports it)",
            pack.short()
        ));
    }
    if !census.lost.is_empty() {
        let named: Vec<String> = census.lost.iter().take(10).map(|p| p.short()).collect();
        progress.warn(&format!(
            "{} packs the index lists are missing from the repository ({}{}); what this backup needs from them is stored again",
            census.lost.len(),
            named.join(", "),
            if census.lost.len() > 10 { ", ..." } else { "" }
        ));
    }
    let parent = choose_parent(repo, opts, &paths)?;
    // The parent's size is the estimate of this backup's total: bytes
    // progress counts unchanged files too, so the share done and the
    // time left mean something from the start.
    let (parent_id, parent_root, estimate) = match parent {
        Some((id, tree, total)) => (Some(id), Some(tree), Some(total).filter(|t| *t > 0)),
        None => (None, None, None),
    };

    let started = jiff::Timestamp::now();
    let clock = std::time::Instant::now();
    progress.phase("backup", estimate);
    let mut writer = BlobWriter::new(repo)?;
    writer.set_lost_packs(&census.lost);
    let run = Run {
        repo,
        writer: &writer,
        progress,
        excludes,
        assembler: Assembler::default(),
        counters: Counters::default(),
        problems: Mutex::new(Problems::default()),
        hardlinks: Mutex::new(HashMap::new()),
        error: Mutex::new(None),
        aborted: AtomicBool::new(false),
        cancel: opts.cancel.clone(),
        reads_in_flight: Mutex::new(0),
        reads_cv: Condvar::new(),
    };
    for (path, e) in &missing {
        run.unreadable(path, e);
    }
    let workers = opts.cpu_threads.max(1);
    let readers = opts.read_threads.max(1);
    let walked = std::thread::scope(|s| {
        let (file_tx, file_rx) = bounded::<FileJob>(256);
        let (chunk_tx, chunk_rx) = bounded::<ChunkJob>(2 * workers);
        for _ in 0..readers {
            let (rx, tx, run) = (file_rx.clone(), chunk_tx.clone(), &run);
            s.spawn(move || run.reader(rx, tx));
        }
        for _ in 0..workers {
            let (rx, run) = (chunk_rx.clone(), &run);
            s.spawn(move || run.worker(rx));
        }
        drop((chunk_tx, chunk_rx, file_rx));
        let walked = run.walk_all(&paths, trie.as_ref(), parent_root, &file_tx);
        if walked.is_err() {
            run.aborted.store(true, Ordering::SeqCst);
        }
        drop(file_tx);
        walked
    });
    drop(prefetch);
    if writer.lock_lost() {
        // Nothing more is committed: no index object, no snapshot. What
        // was uploaded stays for the next run to adopt.
        writer.abandon();
        return Err(writer
            .check()
            .err()
            .unwrap_or_else(|| Error::Aborted("the lock was lost".into())));
    }
    if run.cancelled() {
        // A safe point: what was stored gets indexed (the next backup
        // reuses it), and no snapshot is written.
        let flushed = writer.finish();
        return Err(Error::Interrupted(format!(
            "backup stopped on request; no snapshot was written{}",
            match flushed {
                Ok(s) if s.blobs_added > 0 => format!(
                    "; {} new blobs were stored and the next backup reuses them",
                    s.blobs_added
                ),
                Ok(_) => String::new(),
                Err(e) => format!("; flushing what was read failed ({e})"),
            }
        )));
    }
    // The first real error wins over the "stopped" errors it caused.
    let first_error = run.error.lock().take();
    let error = match (walked, first_error) {
        (Err(e), _) if !matches!(e, Error::Aborted(_)) => Some(e),
        (_, Some(e)) => Some(e),
        (Err(e), None) => Some(e),
        (Ok(()), None) => None,
    };
    if let Some(e) = error {
        writer.abandon();
        return Err(e);
    }
    let root = match run.assembler.root() {
        Some(r) if run.assembler.incomplete() == 0 => r,
        _ => {
            writer.abandon();
            return Err(Error::Aborted("the snapshot's trees are incomplete".into()));
        }
    };
    let stats = writer.finish()?;
    failpoint("backup-before-snapshot");

    let c = &run.counters;
    let problems = std::mem::take(&mut *run.problems.lock());
    let summary = Summary {
        files_new: c.files_new.load(Ordering::Relaxed),
        files_changed: c.files_changed.load(Ordering::Relaxed),
        files_unmodified: c.files_unmodified.load(Ordering::Relaxed),
        dirs: c.dirs.load(Ordering::Relaxed),
        other_entries: c.other.load(Ordering::Relaxed),
        bytes_total: c.bytes_total.load(Ordering::Relaxed),
        bytes_read: c.bytes_read.load(Ordering::Relaxed),
        bytes_added: stats.bytes_added,
        raw_bytes_added: stats.raw_bytes_added,
        blobs_added: stats.blobs_added,
        started: Some(started),
        duration_secs: clock.elapsed().as_secs_f64(),
        changed_during_read_count: problems.changed_count,
        changed_during_read: problems.changed,
        unreadable_count: problems.unreadable_count,
        unreadable: problems.unreadable,
    };
    let snapshot = Snapshot {
        version: SNAPSHOT_VERSION,
        time: opts.time.unwrap_or(started),
        host: opts.host.clone(),
        username: crate::util::username(),
        account: opts.account.clone(),
        paths: paths
            .iter()
            .map(|p| RawPath(p.as_os_str().as_bytes().to_vec()))
            .collect(),
        tags: opts.tags.clone(),
        parent: parent_id,
        tree: root,
        status: SnapshotStatus::Complete,
        summary,
        program: format!("cairn {}", env!("CARGO_PKG_VERSION")),
    };
    let id = repo.save_snapshot(&snapshot)?;
    progress.done();
    Ok(BackupOutcome {
        id,
        snapshot,
        adopted_packs: census.adopted,
        lost_packs: census.lost,
    })
}

#[cfg(test)]
mod tests;
