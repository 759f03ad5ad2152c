//! Restore a snapshot (or one path of it) into a target directory.
//!
//! Safety rules, because a snapshot is untrusted input:
//! - every name is checked before use ([`crate::tree::check_name`]: one
//!   path component, not `.` or `..`, no `/`, no NUL), and the entries of
//!   a name a tree lists twice are refused (the others are restored);
//! - directories are created and opened one component at a time with
//!   `O_NOFOLLOW`, and every entry is made relative to its open parent
//!   ([`dirs`]), so nothing is written through a symlink, whether it came
//!   from the snapshot or was already in the target, and any depth works;
//! - files are created with `O_NOFOLLOW | O_EXCL` after removing whatever
//!   non-directory stood there;
//! - symlinks are created last, after every file and directory, and hard
//!   links only ever point at files this restore wrote;
//! - an entry that breaks a rule is skipped with an error naming it and the
//!   reason; the rest is restored and the run ends with an error status.
//!
//! File contents are written pack by pack by several threads ([`files`]);
//! chunks that are all zeros become holes (sparse files).

mod dirs;
mod files;

use dirs::Dirs;
use files::Plan;

use crate::browse::{self, Located};
use crate::error::{Error, Result};
use crate::id::ChunkId;
use crate::progress::Progress;
use crate::repo::Repository;
use crate::snapshot::{RawPath, Snapshot};
use crate::tree::{Metadata, Node, NodeData, check_name};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Directory to restore into (created if missing).
    pub target: PathBuf,
    /// Restore only entries whose snapshot path (with a leading `/`) or name
    /// matches one of these globs, and everything under them.
    pub include: Vec<String>,
    /// As `include`, without regard to case.
    pub iinclude: Vec<String>,
    /// Leave out entries whose snapshot path or name matches (the syntax of
    /// backup's exclusions; a directory takes everything under it along).
    pub exclude: Vec<String>,
    /// As `exclude`, without regard to case.
    pub iexclude: Vec<String>,
    /// Read every restored file back and compare it with the snapshot.
    pub verify: bool,
    /// Threads writing files.
    pub threads: usize,
}

impl RestoreOptions {
    /// Defaults for a target.
    pub fn new(target: PathBuf) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            target,
            include: Vec::new(),
            iinclude: Vec::new(),
            exclude: Vec::new(),
            iexclude: Vec::new(),
            verify: false,
            threads: (2 * cores).max(2),
        }
    }
}

/// One entry that was not restored, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RestoreError {
    /// The entry's path in the snapshot.
    pub path: RawPath,
    /// Why.
    pub reason: String,
}

/// What a restore did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreSummary {
    /// Regular files written.
    pub files: u64,
    /// Directories created or reused.
    pub dirs: u64,
    /// Symlinks, hard links, fifos and devices created.
    pub other: u64,
    /// Content bytes restored (holes included).
    pub bytes: u64,
    /// Files read back and found identical (with `verify`).
    pub verified: u64,
    /// Entries recorded but deliberately not recreated (sockets; fifos and
    /// devices when not running as root).
    pub skipped: Vec<RestoreError>,
    /// Entries that could not be restored.
    pub errors: Vec<RestoreError>,
}

struct Restorer<'a> {
    repo: &'a Repository,
    progress: &'a dyn Progress,
    include: Option<GlobSet>,
    include_names: Option<GlobSet>,
    exclude: Option<crate::exclude::Excludes>,
    verify: bool,
    as_root: bool,
    errors: Mutex<Vec<RestoreError>>,
    skipped: Mutex<Vec<RestoreError>>,
    dirs: Dirs,
    written: Mutex<HashMap<Vec<u8>, PathBuf>>,
    /// Snapshot paths of files the backup saw change while reading them
    /// (their recorded size may differ from their content).
    changed_during_backup: HashSet<Vec<u8>>,
    files: AtomicU64,
    bytes: AtomicU64,
    verified: AtomicU64,
}

/// A snapshot path (stored without it) with its leading `/`, as patterns
/// with a `/` match it.
fn absolute(snap_path: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(snap_path.len() + 1);
    full.push(b'/');
    full.extend_from_slice(snap_path);
    full
}

fn build_globs(
    patterns: &[String],
    insensitive: &[String],
) -> Result<(Option<GlobSet>, Option<GlobSet>)> {
    if patterns.is_empty() && insensitive.is_empty() {
        return Ok((None, None));
    }
    let mut paths = GlobSetBuilder::new();
    let mut names = GlobSetBuilder::new();
    let all = patterns
        .iter()
        .map(|p| (p, false))
        .chain(insensitive.iter().map(|p| (p, true)));
    for (p, case_insensitive) in all {
        let glob = GlobBuilder::new(p)
            .literal_separator(true)
            .case_insensitive(case_insensitive)
            .build()
            .map_err(|e| Error::invalid("include pattern", format!("{p:?}: {e}")))?;
        if p.contains('/') {
            paths.add(glob);
        } else {
            names.add(glob);
        }
    }
    let build = |b: GlobSetBuilder| {
        b.build()
            .map_err(|e| Error::invalid("include patterns", e.to_string()))
    };
    Ok((Some(build(paths)?), Some(build(names)?)))
}

impl<'a> Restorer<'a> {
    /// A restorer into `target` (absolute, existing), restoring everything.
    fn new(
        repo: &'a Repository,
        progress: &'a dyn Progress,
        target: PathBuf,
        verify: bool,
        as_root: bool,
    ) -> Result<Restorer<'a>> {
        let dirs = Dirs::open(&target).map_err(|e| Error::invalid("restore target", e))?;
        Ok(Restorer {
            repo,
            progress,
            include: None,
            include_names: None,
            exclude: None,
            verify,
            as_root,
            errors: Mutex::new(Vec::new()),
            skipped: Mutex::new(Vec::new()),
            dirs,
            written: Mutex::new(HashMap::new()),
            changed_during_backup: HashSet::new(),
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            verified: AtomicU64::new(0),
        })
    }

    fn error(&self, path: &[u8], reason: impl Into<String>) {
        let reason = reason.into();
        self.progress.warn(&format!(
            "not restoring /{}: {reason}",
            String::from_utf8_lossy(path)
        ));
        self.errors.lock().push(RestoreError {
            path: RawPath(path.to_vec()),
            reason,
        });
    }

    fn skip(&self, path: &[u8], reason: &str) {
        self.skipped.lock().push(RestoreError {
            path: RawPath(path.to_vec()),
            reason: reason.to_string(),
        });
    }

    fn excluded(&self, snap_path: &[u8], name: &[u8], is_dir: bool) -> bool {
        let Some(ex) = &self.exclude else {
            return false;
        };
        ex.is_excluded(
            Path::new(OsStr::from_bytes(&absolute(snap_path))),
            name,
            is_dir,
        )
    }

    fn included(&self, snap_path: &[u8], name: &[u8]) -> bool {
        let (Some(paths), Some(names)) = (&self.include, &self.include_names) else {
            return true;
        };
        paths.is_match(Path::new(OsStr::from_bytes(&absolute(snap_path))))
            || names.is_match(Path::new(OsStr::from_bytes(name)))
    }

    /// Make sure `dest` (under the target) exists as a real directory,
    /// creating missing components one at a time, never through a symlink.
    fn ensure_dir(&self, dest: &Path) -> std::result::Result<(), String> {
        self.dirs.ensure(dest).map(|_| ())
    }

    fn verify_file(&self, dest: &Path, chunks: &[ChunkId]) -> std::result::Result<(), String> {
        let file = self
            .dirs
            .open_file(dest, false)
            .map_err(|e| format!("verify: {e}"))?;
        let mut stream = self.repo.chunker().stream(file);
        let keys = self.repo.keys();
        let mut i = 0;
        while let Some(piece) = stream
            .next_chunk()
            .map_err(|e| format!("verify {}: {e}", dest.display()))?
        {
            if chunks.get(i) != Some(&keys.chunk_id(piece)) {
                return Err(format!(
                    "verify {}: content differs from the snapshot at chunk {i}",
                    dest.display()
                ));
            }
            i += 1;
        }
        if i != chunks.len() {
            return Err(format!(
                "verify {}: file is shorter than the snapshot",
                dest.display()
            ));
        }
        Ok(())
    }

    fn apply_metadata(
        &self,
        dest: &Path,
        meta: &Metadata,
        is_symlink: bool,
    ) -> std::result::Result<(), String> {
        self.dirs
            .apply_metadata(dest, meta, is_symlink, self.as_root)
    }
}

/// Restore `snapshot` (or the entry at `subpath` in it) into `opts.target`.
pub fn restore(
    repo: &Repository,
    snapshot: &Snapshot,
    subpath: Option<&[u8]>,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreSummary> {
    let (include, include_names) = build_globs(&opts.include, &opts.iinclude)?;
    let exclude = if opts.exclude.is_empty() && opts.iexclude.is_empty() {
        None
    } else {
        Some(crate::exclude::Excludes::with_insensitive(
            &opts.exclude,
            &opts.iexclude,
            false,
        )?)
    };
    // A new or empty target takes the restored directory's own metadata
    // (a PostgreSQL data directory must be mode 0700).
    let target_fresh = match std::fs::read_dir(&opts.target) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    };
    std::fs::create_dir_all(&opts.target).map_err(|e| Error::io(&opts.target, e))?;
    let target = std::path::absolute(&opts.target).map_err(|e| Error::io(&opts.target, e))?;
    let as_root = rustix::process::geteuid().is_root();
    crate::fsat::allow_many_open_files();
    let mut r = Restorer::new(repo, progress, target.clone(), opts.verify, as_root)?;
    r.include = include;
    r.include_names = include_names;
    r.exclude = exclude;
    r.changed_during_backup = snapshot
        .summary
        .changed_during_read
        .iter()
        .map(|p| p.0.strip_prefix(b"/").unwrap_or(&p.0).to_vec())
        .collect();
    progress.phase("restore", Some(snapshot.summary.bytes_total));

    // What to restore: the children of a directory, or one entry.
    let subpath = subpath.unwrap_or(b"");
    let base: Vec<u8> = browse::components(subpath)?.join(&b'/');
    let (start_tree, single) = match browse::locate(repo, &snapshot.tree, &base)? {
        Located::Dir { tree, node } => (Some((tree, node)), None),
        Located::Entry(node) => (None, Some(node)),
    };
    let base_meta = match &start_tree {
        Some((_, Some(node))) => Some(node.meta),
        _ => None,
    };

    let mut dirs_meta: Vec<(PathBuf, Metadata)> = Vec::new();
    let mut links: Vec<(Vec<u8>, PathBuf, Node)> = Vec::new();
    let mut specials: Vec<(Vec<u8>, PathBuf, Node)> = Vec::new();
    let mut dir_count = 0u64;

    let clock = std::time::Instant::now();
    let mut plan = Plan::default();
    let view = repo.index()?.view()?;
    {
        let mut dispatch = |snap_path: Vec<u8>, dest: PathBuf, node: Node| -> Result<()> {
            match &node.data {
                NodeData::File { .. } => plan.add(&r, &view, snap_path, dest, node)?,
                NodeData::Symlink { .. } | NodeData::Hardlink { .. } => {
                    links.push((snap_path, dest, node))
                }
                _ => specials.push((snap_path, dest, node)),
            }
            Ok(())
        };
        if let Some(node) = single {
            match check_name(&node.name) {
                Ok(()) => {
                    let dest = target.join(OsStr::from_bytes(&node.name));
                    dispatch(base.clone(), dest, node)?;
                }
                Err(why) => r.error(&base, why),
            }
        }
        if let Some((tree, _)) = start_tree {
            // Depth-first over trees; a directory's own entry is restored
            // when any entry under it is.
            let mut stack = vec![(tree, base.clone(), target.clone(), false)];
            while let Some((tree_id, snap_dir, dest_dir, parent_included)) = stack.pop() {
                let tree = match repo.load_tree(&tree_id) {
                    Ok(t) => t,
                    Err(e) => {
                        r.error(&snap_dir, format!("directory unreadable: {e}"));
                        continue;
                    }
                };
                // A name listed twice: which entry is meant cannot be
                // told, so neither is restored; the others are.
                let dups: HashSet<Vec<u8>> = tree
                    .duplicate_names()
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect();
                for dup in &dups {
                    r.error(
                        &browse::join(&snap_dir, dup),
                        "the directory lists this name more than once; none of those entries is restored",
                    );
                }
                for node in tree.nodes {
                    if dups.contains(&node.name) {
                        continue;
                    }
                    let snap_path = browse::join(&snap_dir, &node.name);
                    if let Err(why) = check_name(&node.name) {
                        r.error(
                            &snap_path,
                            format!("refusing to write outside the target: {why}"),
                        );
                        continue;
                    }
                    let is_dir = matches!(node.data, NodeData::Dir { .. });
                    if r.excluded(&snap_path, &node.name, is_dir) {
                        continue;
                    }
                    let dest = dest_dir.join(OsStr::from_bytes(&node.name));
                    let included = parent_included || r.included(&snap_path, &node.name);
                    if let NodeData::Dir { subtree } = node.data {
                        if included {
                            match r.ensure_dir(&dest) {
                                Ok(()) => {
                                    dir_count += 1;
                                    dirs_meta.push((dest.clone(), node.meta));
                                }
                                Err(e) => {
                                    r.error(&snap_path, e);
                                    continue;
                                }
                            }
                        }
                        stack.push((subtree, snap_path, dest, included));
                    } else if included {
                        dispatch(snap_path, dest, node)?;
                    }
                }
            }
        }
    }
    tracing::info!("restore: planned in {:?}", clock.elapsed());
    crate::util::failpoint("restore-after-plan");
    let threads = opts.threads.max(1);
    plan.execute(&r, &view, threads);
    tracing::info!("restore: contents written after {:?}", clock.elapsed());

    // Hard links: to a file this restore wrote, else a copy of the target's
    // content; symlinks after that, so nothing above was written through one.
    links.sort_by_key(|(_, _, n)| matches!(n.data, NodeData::Symlink { .. }));
    let mut other = 0u64;
    for (snap_path, dest, node) in links {
        // Ok(false): the entry failed and the plan already reported why.
        let result = (|| -> std::result::Result<bool, String> {
            if let Some(parent) = dest.parent() {
                r.ensure_dir(parent)?;
            }
            r.dirs.clear_spot(&dest)?;
            match &node.data {
                NodeData::Hardlink {
                    target: link_target,
                } => {
                    let existing = r.written.lock().get(link_target).cloned();
                    match existing {
                        Some(first) => r.dirs.hard_link(&first, &dest).map(|()| true),
                        None => {
                            // The first name is not part of this restore:
                            // restore the content under this name.
                            let first = browse::find_node(repo, &snapshot.tree, link_target)
                                .map_err(|e| e.to_string())?
                                .filter(|n| matches!(n.data, NodeData::File { .. }))
                                .ok_or_else(|| {
                                    format!(
                                        "hard link target {} is not a file in the snapshot",
                                        String::from_utf8_lossy(link_target)
                                    )
                                })?;
                            let mut one = Plan::default();
                            one.add(
                                &r,
                                &view,
                                snap_path.clone(),
                                dest.clone(),
                                Node {
                                    name: node.name.clone(),
                                    meta: first.meta,
                                    data: first.data,
                                },
                            )
                            .map_err(|e| e.to_string())?;
                            one.execute(&r, &view, 1);
                            Ok(r.written.lock().contains_key(&snap_path))
                        }
                    }
                }
                NodeData::Symlink {
                    target: link_target,
                } => {
                    r.dirs.symlink(link_target, &dest)?;
                    r.apply_metadata(&dest, &node.meta, true).map(|()| true)
                }
                _ => Ok(false),
            }
        })();
        match result {
            Ok(true) => other += 1,
            Ok(false) => {}
            Err(e) => r.error(&snap_path, e),
        }
    }
    for (snap_path, dest, node) in specials {
        let kind = match node.data {
            NodeData::Fifo => rustix::fs::FileType::Fifo,
            NodeData::CharDevice => rustix::fs::FileType::CharacterDevice,
            NodeData::BlockDevice => rustix::fs::FileType::BlockDevice,
            _ => {
                r.skip(&snap_path, "sockets are recorded but never recreated");
                continue;
            }
        };
        if !as_root {
            r.skip(
                &snap_path,
                "fifos and devices are recreated only when restoring as root",
            );
            continue;
        }
        let result = (|| -> std::result::Result<(), String> {
            if let Some(parent) = dest.parent() {
                r.ensure_dir(parent)?;
            }
            r.dirs.clear_spot(&dest)?;
            r.dirs.mknod(&dest, kind, node.meta.mode, node.meta.rdev)?;
            r.apply_metadata(&dest, &node.meta, false)
        })();
        match result {
            Ok(()) => other += 1,
            Err(e) => r.error(&snap_path, e),
        }
    }
    // Directory metadata last, deepest first (writing into a directory
    // changes its mtime, and a read-only mode would stop the writes).
    dirs_meta.sort_by(|a, b| b.0.cmp(&a.0));
    for (dest, meta) in &dirs_meta {
        if let Err(e) = r.apply_metadata(dest, meta, false) {
            r.error(dest.as_os_str().as_bytes(), e);
        }
    }
    // The target itself, when this restore made it (or found it empty):
    // the restored directory's mode, times and (as root) owner.
    if let (true, Some(meta)) = (target_fresh, base_meta)
        && let Err(e) = r.apply_metadata(&target, &meta, false)
    {
        r.error(&base, e);
    }
    tracing::info!("restore: finished after {:?}", clock.elapsed());
    progress.done();
    Ok(RestoreSummary {
        files: r.files.load(Ordering::Relaxed),
        dirs: dir_count,
        other,
        bytes: r.bytes.load(Ordering::Relaxed),
        verified: r.verified.load(Ordering::Relaxed),
        skipped: r.skipped.into_inner(),
        errors: r.errors.into_inner(),
    })
}

#[cfg(test)]
mod tests;
