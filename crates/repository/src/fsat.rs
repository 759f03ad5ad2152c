//! File system access relative to open directories (`openat`, `fstatat`,
//! `mkdirat`...), so that backup and restore work at any depth: a path
//! longer than `PATH_MAX` (4096 bytes) cannot be given to the kernel whole,
//! but every name in it is short. Directories are opened with
//! `O_NOFOLLOW`, so nothing is ever reached through a symlink.

use crate::tree::{Metadata, Time};
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Stat};
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What `lstat` tells about an entry.
pub type EntryStat = Stat;

fn err(e: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// The entry's type.
pub fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Whether the entry is a directory.
pub fn is_dir(st: &Stat) -> bool {
    file_type(st) == FileType::Directory
}

/// How many names the entry has.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
pub fn nlink(st: &Stat) -> u64 {
    st.st_nlink as u64
}

/// The metadata cairn records, from an `lstat`.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
pub fn metadata_of(st: &Stat) -> Metadata {
    let time = |sec: i64, nsec: u64| Time {
        sec,
        nsec: u32::try_from(nsec.min(999_999_999)).unwrap_or(0),
    };
    Metadata {
        mode: (st.st_mode as u32) & 0o7777,
        uid: st.st_uid as u32,
        gid: st.st_gid as u32,
        mtime: time(st.st_mtime as i64, st.st_mtime_nsec as u64),
        ctime: time(st.st_ctime as i64, st.st_ctime_nsec as u64),
        inode: st.st_ino as u64,
        device: st.st_dev as u64,
        size: u64::try_from(st.st_size as i64).unwrap_or(0),
        rdev: st.st_rdev as u64,
    }
}

/// `lstat` of a path (command-line paths, the directories above them).
pub fn lstat(path: &Path) -> io::Result<Stat> {
    rustix::fs::lstat(path).map_err(err)
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub fn stat_at(dir: &OwnedFd, name: &[u8]) -> io::Result<Stat> {
    rustix::fs::statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW).map_err(err)
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Open a directory by path (not through a symlink at its last name).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    rustix::fs::openat(CWD, path, dir_flags(), Mode::empty()).map_err(err)
}

/// Open the directory `name` inside `dir`, never through a symlink.
pub fn open_dir_at(dir: &OwnedFd, name: &[u8]) -> io::Result<OwnedFd> {
    rustix::fs::openat(dir, OsStr::from_bytes(name), dir_flags(), Mode::empty()).map_err(err)
}

/// The names in `dir` (without `.` and `..`), in no particular order.
pub fn names(dir: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(name.to_vec());
        }
    }
    Ok(out)
}

/// Open the file `name` inside `dir` for reading, not following a symlink,
/// without touching its access time where the kernel allows it (only the
/// owner, or root, may ask for that).
pub fn open_file_at(dir: &OwnedFd, name: &[u8]) -> io::Result<std::fs::File> {
    let base = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let name = OsStr::from_bytes(name);
    let fd = match rustix::fs::openat(dir, name, base | OFlags::NOATIME, Mode::empty()) {
        Err(rustix::io::Errno::PERM) => rustix::fs::openat(dir, name, base, Mode::empty()),
        other => other,
    }
    .map_err(err)?;
    Ok(std::fs::File::from(fd))
}

/// The target of the symlink `name` inside `dir`, as stored.
pub fn read_link_at(dir: &OwnedFd, name: &[u8]) -> io::Result<Vec<u8>> {
    rustix::fs::readlinkat(dir, OsStr::from_bytes(name), Vec::new())
        .map(|c| c.into_bytes())
        .map_err(err)
}

/// Raise the limit of open files to what the system allows: walking a
/// deep tree holds one open directory per level.
pub fn allow_many_open_files() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!("could not raise the open file limit: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_listed_and_symlinked_directories_not_entered() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/f"), b"hello").unwrap();
        std::os::unix::fs::symlink("sub", dir.path().join("link")).unwrap();
        let fd = open_dir(dir.path()).unwrap();
        let mut names = names(&fd).unwrap();
        names.sort();
        assert_eq!(names, vec![b"link".to_vec(), b"sub".to_vec()]);
        assert!(is_dir(&stat_at(&fd, b"sub").unwrap()));
        assert_eq!(
            file_type(&stat_at(&fd, b"link").unwrap()),
            FileType::Symlink
        );
        assert_eq!(read_link_at(&fd, b"link").unwrap(), b"sub");
        assert!(
            open_dir_at(&fd, b"link").is_err(),
            "never through a symlink"
        );
        let sub = open_dir_at(&fd, b"sub").unwrap();
        let mut f = open_file_at(&sub, b"f").unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        assert_eq!(s, "hello");
        assert_eq!(metadata_of(&stat_at(&sub, b"f").unwrap()).size, 5);
    }
}
