//! Generated directory trees for tests: a reproducible generator of awkward
//! trees (odd names, hard links, sparse and empty files, deep nesting), a
//! mutation step, and an exact comparison of two trees (bytes and
//! metadata).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// SplitMix64, so generated trees are identical on every run and platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
    /// Compressible, text-like bytes.
    pub fn text(&mut self, len: usize) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "mailbox",
            "calendar",
            "directory",
            "transaction",
            "log",
            "segment",
            "backup",
            "restore",
            "account",
            "the",
            "of",
            "and",
            "quarter",
            "retention",
            "message",
            "Subject:",
            "From:",
            "Date:",
            "\n",
            "\n\n",
            "ldap",
            "cn=admin",
            "dc=example",
        ];
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            let w = WORDS[self.below(WORDS.len() as u64) as usize];
            out.extend_from_slice(w.as_bytes());
            out.push(b' ');
            if self.below(50) == 0 {
                out.extend_from_slice(format!("{}", self.next_u64()).as_bytes());
            }
        }
        out.truncate(len);
        out
    }
}

/// How big a generated tree is.
#[derive(Debug, Clone, Copy)]
pub struct TreeSpec {
    /// Small files (0 to 16 KiB).
    pub small_files: usize,
    /// Large files and their size.
    pub large_files: usize,
    /// Size of each large file.
    pub large_size: usize,
    /// Seed.
    pub seed: u64,
}

impl TreeSpec {
    /// A tree of a few dozen entries, for tests about something else.
    pub fn tiny(seed: u64) -> Self {
        Self {
            small_files: 10,
            large_files: 1,
            large_size: 100_000,
            seed,
        }
    }
}

impl Default for TreeSpec {
    fn default() -> Self {
        Self {
            small_files: 300,
            large_files: 3,
            large_size: 3 << 20,
            seed: 1,
        }
    }
}

fn write_file(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, data).unwrap();
}

/// Generate a tree with many small files, a few large ones (compressible and
/// random, one with long zero runs), empty files and directories, nested
/// directories, relative, absolute and dangling symlinks, hard links,
/// non-UTF-8 names, odd permissions and old mtimes.
pub fn generate_tree(root: &Path, spec: TreeSpec) {
    let mut rng = Rng::new(spec.seed);
    fs::create_dir_all(root).unwrap();
    let dirs = [
        "",
        "mail",
        "mail/inbox",
        "mail/inbox/cur",
        "ldap",
        "db/pg/base",
        "deep/a/b/c/d/e/f",
    ];
    for i in 0..spec.small_files {
        let dir = dirs[rng.below(dirs.len() as u64) as usize];
        let len = match rng.below(10) {
            0 => 0,
            1..=6 => rng.below(4096) as usize,
            _ => rng.below(16 << 10) as usize,
        };
        let data = if rng.below(3) == 0 {
            rng.bytes(len)
        } else {
            rng.text(len)
        };
        write_file(&root.join(dir).join(format!("file-{i:04}.txt")), &data);
    }
    for i in 0..spec.large_files {
        let data = match i % 3 {
            0 => rng.text(spec.large_size),
            1 => rng.bytes(spec.large_size),
            _ => {
                // Sparse-looking: data, a long zero run, data.
                let mut d = rng.bytes(spec.large_size / 4);
                d.extend(std::iter::repeat_n(0u8, spec.large_size / 2));
                d.extend(rng.text(spec.large_size / 4));
                d
            }
        };
        write_file(&root.join(format!("db/large-{i}.bin")), &data);
    }
    write_file(&root.join("empty-file"), b"");
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::create_dir_all(root.join("mail/empty-folder")).unwrap();
    // Non-UTF-8 names, a file and a directory.
    write_file(
        &root.join(OsStr::from_bytes(b"latin1-\xe9t\xe9.txt")),
        b"caf\xe9",
    );
    fs::create_dir_all(root.join(OsStr::from_bytes(b"dir-\xff\xfe"))).unwrap();
    write_file(
        &root.join(OsStr::from_bytes(b"dir-\xff\xfe")).join("inside"),
        b"inside a non-utf8 dir",
    );
    write_file(&root.join("name with spaces & symbols!"), b"x");
    // Symlinks.
    symlink("mail/inbox", root.join("link-relative")).unwrap();
    symlink("/etc/hostname", root.join("link-absolute")).unwrap();
    symlink("does/not/exist", root.join("link-dangling")).unwrap();
    // Hard links: two names for one file, in different directories.
    write_file(&root.join("ldap/hardlinked"), b"shared inode content\n");
    fs::hard_link(root.join("ldap/hardlinked"), root.join("mail/hardlink-2")).unwrap();
    // Permissions and times.
    let ro = root.join("readonly.txt");
    write_file(&ro, b"read only");
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o444)).unwrap();
    let exe = root.join("script.sh");
    write_file(&exe, b"#!/bin/sh\necho hi\n");
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o751)).unwrap();
    let old = filetime::FileTime::from_unix_time(946_684_800, 123_456_789);
    filetime::set_file_mtime(root.join("empty-file"), old).unwrap();
    filetime::set_file_mtime(root.join("ldap"), old).unwrap();
}

/// Change a generated tree: edit the middle of a large file, append to
/// another, delete and add small files, rename a directory, retarget a
/// symlink.
pub fn mutate_tree(root: &Path, seed: u64) {
    let mut rng = Rng::new(seed ^ 0xdead_beef);
    let large = root.join("db/large-0.bin");
    if let Ok(mut data) = fs::read(&large) {
        let mid = data.len() / 2;
        let patch = rng.text(5000);
        data.splice(mid..mid, patch);
        fs::write(&large, data).unwrap();
    }
    if let Ok(mut f) = fs::OpenOptions::new()
        .append(true)
        .open(root.join("db/large-1.bin"))
    {
        f.write_all(&rng.bytes(100_000)).unwrap();
    }
    let mut removed = 0;
    for entry in walk(root) {
        if entry.ends_with("7.txt") && removed < 10 {
            let _ = fs::remove_file(root.join(&entry));
            removed += 1;
        }
    }
    for i in 0..20 {
        write_file(&root.join(format!("new/added-{i}.txt")), &rng.text(3000));
    }
    if root.join("mail/empty-folder").exists() {
        fs::rename(
            root.join("mail/empty-folder"),
            root.join("mail/renamed-folder"),
        )
        .unwrap();
    }
    let _ = fs::remove_file(root.join("link-relative"));
    symlink("ldap", root.join("link-relative")).unwrap();
}

/// Every path under `root`, relative, sorted (not following symlinks).
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            let child = rel.join(e.file_name());
            let md = fs::symlink_metadata(root.join(&child)).unwrap();
            if md.is_dir() {
                stack.push(child.clone());
            }
            out.push(child);
        }
    }
    out.sort();
    out
}

/// What is compared for each entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: &'static str,
    /// Permission bits.
    pub mode: u32,
    /// Modification time (seconds, nanoseconds); not compared for symlinks
    /// whose times some file systems cannot set.
    pub mtime: (i64, i64),
    /// Content hash for files, target for symlinks.
    pub content: Vec<u8>,
    /// For files with several names: the lowest relative path sharing the
    /// inode (so hard-link groups compare equal across trees).
    pub link_group: Option<PathBuf>,
}

/// Describe every entry under `root`. Hard-link groups count only names
/// inside `root` (a folder restored on its own cannot share an inode with
/// a file outside it).
pub fn describe(root: &Path) -> BTreeMap<PathBuf, EntryInfo> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
    for rel in walk(root) {
        let full = root.join(&rel);
        let md = fs::symlink_metadata(&full).unwrap();
        let ft = md.file_type();
        let (kind, content) = if ft.is_symlink() {
            (
                "symlink",
                fs::read_link(&full)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            )
        } else if ft.is_dir() {
            ("dir", Vec::new())
        } else if ft.is_file() {
            let data = fs::read(&full).unwrap();
            ("file", blake3::hash(&data).as_bytes().to_vec())
        } else {
            ("other", Vec::new())
        };
        if ft.is_file() && md.nlink() > 1 {
            inodes
                .entry((md.dev(), md.ino()))
                .or_default()
                .push(rel.clone());
        }
        out.insert(
            rel,
            EntryInfo {
                kind,
                mode: md.mode() & 0o7777,
                mtime: if ft.is_symlink() {
                    (0, 0)
                } else {
                    (md.mtime(), md.mtime_nsec())
                },
                content,
                link_group: None,
            },
        );
    }
    for group in inodes.into_values().filter(|g| g.len() > 1) {
        let first = group.iter().min().cloned();
        for p in &group {
            if let Some(e) = out.get_mut(p) {
                e.link_group = first.clone();
            }
        }
    }
    out
}

/// Assert two trees hold the same entries with the same bytes, modes,
/// mtimes, symlink targets and hard-link groups.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let a = describe(expected);
    let b = describe(actual);
    let missing: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let extra: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "trees differ: missing {missing:?}, extra {extra:?}"
    );
    for (path, ea) in &a {
        let eb = &b[path];
        assert_eq!(ea, eb, "entry {} differs", path.display());
    }
}

/// Copy a tree (files, dirs, symlinks, modes, mtimes; hard links become
/// copies), to keep "the source as it was" before a mutation.
pub fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success(), "cp -a failed");
}
