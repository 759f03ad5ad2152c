//! The directories of a restore, open: every entry is created, written and
//! given its metadata relative to its open parent (`openat`, `mkdirat`,
//! `linkat`...), so a tree of any depth restores (its paths may be longer
//! than `PATH_MAX`), and no directory is ever entered through a symlink,
//! whether it came from the snapshot or was already in the target.

use crate::tree::Metadata;
use parking_lot::Mutex;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Open directories kept at most (a cache: evicted ones are opened again).
const KEEP_OPEN: usize = 512;

type Outcome<T> = std::result::Result<T, String>;

fn errno(path: &Path, e: rustix::io::Errno) -> String {
    format!("{}: {}", path.display(), std::io::Error::from(e))
}

/// The target and the directories under it, open.
pub(super) struct Dirs {
    target: PathBuf,
    root: Arc<OwnedFd>,
    open: Mutex<HashMap<PathBuf, Arc<OwnedFd>>>,
}

impl std::fmt::Debug for Dirs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dirs")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Dirs {
    /// Open the (existing, absolute) target. The target itself may be a
    /// symlink the operator chose; nothing under it may.
    pub(super) fn open(target: &Path) -> Outcome<Self> {
        let root = rustix::fs::open(
            target,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno(target, e))?;
        Ok(Self {
            target: target.to_path_buf(),
            root: Arc::new(root),
            open: Mutex::new(HashMap::new()),
        })
    }

    fn relative<'p>(&self, dest: &'p Path) -> Outcome<&'p Path> {
        dest.strip_prefix(&self.target)
            .map_err(|_| format!("{} is outside the target", dest.display()))
    }

    /// The directory `dest` (under the target), open; missing components
    /// are created one at a time, and each is opened with `O_NOFOLLOW`, so
    /// a symlink on the way is refused, never followed.
    pub(super) fn ensure(&self, dest: &Path) -> Outcome<Arc<OwnedFd>> {
        let rel = self.relative(dest)?;
        if rel.as_os_str().is_empty() {
            return Ok(Arc::clone(&self.root));
        }
        if let Some(fd) = self.open.lock().get(rel) {
            return Ok(Arc::clone(fd));
        }
        // From the nearest ancestor already open.
        let comps: Vec<&OsStr> = rel.iter().collect();
        let mut start = 0;
        let mut fd = Arc::clone(&self.root);
        {
            let open = self.open.lock();
            for i in (1..comps.len()).rev() {
                let prefix: PathBuf = comps[..i].iter().collect();
                if let Some(f) = open.get(&prefix) {
                    fd = Arc::clone(f);
                    start = i;
                    break;
                }
            }
        }
        let mut cur: PathBuf = comps[..start].iter().collect();
        for comp in &comps[start..] {
            cur.push(comp);
            let shown = self.target.join(&cur);
            match rustix::fs::mkdirat(&*fd, *comp, Mode::from_raw_mode(0o777)) {
                // Made now, or there already (perhaps by another worker).
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(errno(&shown, e)),
            }
            let next = match rustix::fs::openat(&*fd, *comp, dir_flags(), Mode::empty()) {
                Ok(next) => next,
                Err(e @ (rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR)) => {
                    let st = rustix::fs::statat(&*fd, *comp, AtFlags::SYMLINK_NOFOLLOW);
                    return Err(match st.map(|s| FileType::from_raw_mode(s.st_mode)) {
                        Ok(FileType::Symlink) => format!(
                            "{} is a symlink; refusing to write through it",
                            shown.display()
                        ),
                        Ok(_) => format!("{} exists and is not a directory", shown.display()),
                        Err(_) => errno(&shown, e),
                    });
                }
                Err(e) => return Err(errno(&shown, e)),
            };
            fd = Arc::new(next);
            let mut open = self.open.lock();
            if open.len() >= KEEP_OPEN {
                open.clear();
            }
            open.insert(cur.clone(), Arc::clone(&fd));
        }
        Ok(fd)
    }

    /// The parent directory of `dest`, open (created as needed), and the
    /// last name of `dest`.
    pub(super) fn parent_of(&self, dest: &Path) -> Outcome<(Arc<OwnedFd>, Vec<u8>)> {
        let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
            return Err(format!("{} has no parent in the target", dest.display()));
        };
        Ok((self.ensure(parent)?, name.as_bytes().to_vec()))
    }

    /// Remove a non-directory at `dest` so that a new entry can be made.
    pub(super) fn clear_spot(&self, dest: &Path) -> Outcome<()> {
        let (dir, name) = self.parent_of(dest)?;
        let name = OsStr::from_bytes(&name);
        match rustix::fs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                Err(format!("{} exists and is a directory", dest.display()))
            }
            Ok(_) => {
                rustix::fs::unlinkat(&*dir, name, AtFlags::empty()).map_err(|e| errno(dest, e))
            }
            Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(errno(dest, e)),
        }
    }

    /// Create the regular file `dest`; fails if anything is there.
    pub(super) fn create_file(&self, dest: &Path) -> Outcome<std::fs::File> {
        let (dir, name) = self.parent_of(dest)?;
        rustix::fs::openat(
            &*dir,
            OsStr::from_bytes(&name),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map(std::fs::File::from)
        .map_err(|e| errno(dest, e))
    }

    /// Open the regular file `dest` (never through a symlink).
    pub(super) fn open_file(&self, dest: &Path, write: bool) -> Outcome<std::fs::File> {
        let (dir, name) = self.parent_of(dest)?;
        let access = if write {
            OFlags::WRONLY
        } else {
            OFlags::RDONLY
        };
        rustix::fs::openat(
            &*dir,
            OsStr::from_bytes(&name),
            access | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map(std::fs::File::from)
        .map_err(|e| errno(dest, e))
    }

    /// Remove the file `dest` (a partial file that failed).
    pub(super) fn remove_file(&self, dest: &Path) {
        if let Ok((dir, name)) = self.parent_of(dest) {
            let _ = rustix::fs::unlinkat(&*dir, OsStr::from_bytes(&name), AtFlags::empty());
        }
    }

    /// A second name `dest` for the file `first`.
    pub(super) fn hard_link(&self, first: &Path, dest: &Path) -> Outcome<()> {
        let (from_dir, from) = self.parent_of(first)?;
        let (to_dir, to) = self.parent_of(dest)?;
        rustix::fs::linkat(
            &*from_dir,
            OsStr::from_bytes(&from),
            &*to_dir,
            OsStr::from_bytes(&to),
            AtFlags::empty(),
        )
        .map_err(|e| format!("link {}", errno(dest, e)))
    }

    /// A symlink `dest` holding `target` as stored.
    pub(super) fn symlink(&self, target: &[u8], dest: &Path) -> Outcome<()> {
        let (dir, name) = self.parent_of(dest)?;
        rustix::fs::symlinkat(OsStr::from_bytes(target), &*dir, OsStr::from_bytes(&name))
            .map_err(|e| format!("symlink {}", errno(dest, e)))
    }

    /// A fifo or device node.
    pub(super) fn mknod(&self, dest: &Path, kind: FileType, mode: u32, rdev: u64) -> Outcome<()> {
        let (dir, name) = self.parent_of(dest)?;
        rustix::fs::mknodat(
            &*dir,
            OsStr::from_bytes(&name),
            kind,
            Mode::from_raw_mode(mode & 0o7777),
            rdev,
        )
        .map_err(|e| format!("mknod {}", errno(dest, e)))
    }

    /// Owner (as root), mode (not for symlinks) and times of `dest`.
    pub(super) fn apply_metadata(
        &self,
        dest: &Path,
        meta: &Metadata,
        is_symlink: bool,
        as_root: bool,
    ) -> Outcome<()> {
        let mtime = Timespec {
            tv_sec: meta.mtime.sec,
            tv_nsec: meta.mtime.nsec.into(),
        };
        let times = Timestamps {
            last_access: mtime,
            last_modification: mtime,
        };
        let mode = Mode::from_raw_mode(meta.mode & 0o7777);
        let owner = || {
            (
                Some(rustix::fs::Uid::from_raw(meta.uid)),
                Some(rustix::fs::Gid::from_raw(meta.gid)),
            )
        };
        if self.relative(dest)?.as_os_str().is_empty() {
            // The target itself.
            let fd = &*self.root;
            if as_root {
                let (u, g) = owner();
                rustix::fs::fchown(fd, u, g).map_err(|e| format!("chown {}", errno(dest, e)))?;
            }
            rustix::fs::fchmod(fd, mode).map_err(|e| format!("chmod {}", errno(dest, e)))?;
            return rustix::fs::futimens(fd, &times)
                .map_err(|e| format!("set times of {}", errno(dest, e)));
        }
        let (dir, name) = self.parent_of(dest)?;
        let name = OsStr::from_bytes(&name);
        if as_root {
            let (u, g) = owner();
            rustix::fs::chownat(&*dir, name, u, g, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| format!("chown {}", errno(dest, e)))?;
        }
        if !is_symlink {
            rustix::fs::chmodat(&*dir, name, mode, AtFlags::empty())
                .map_err(|e| format!("chmod {}", errno(dest, e)))?;
        }
        rustix::fs::utimensat(&*dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| format!("set times of {}", errno(dest, e)))
    }
}
