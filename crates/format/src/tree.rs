//! Trees: the metadata of one directory, stored as a tree blob. Names are
//! arbitrary bytes (non-UTF-8 names survive). Layout in `docs/FORMAT.md`
//! ("Trees").
//!
//! Decoding is permissive about names (a crafted tree still decodes, so `ls`
//! and `check` can show it) but strict about structure; whoever writes to the
//! file system ([`crate::restore`]) validates names with [`check_name`].

use crate::error::{Error, Result};
use crate::id::{ChunkId, ID_LEN, TreeId};
use crate::wire::{Put, Reader};

/// Version byte at the start of a tree plaintext.
pub const TREE_VERSION: u8 = 1;
/// Fixed bytes of a node before its kind-specific part (name length
/// prefix, kind, metadata).
const NODE_MIN_LEN: usize = 4 + 1 + 12 + 12 + 12 + 32;

/// Seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    /// Seconds (may be negative).
    pub sec: i64,
    /// Nanoseconds, 0..1e9.
    pub nsec: u32,
}

/// Metadata recorded for every entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time.
    pub mtime: Time,
    /// Status change time (change detection only; not restored).
    pub ctime: Time,
    /// Inode number (change detection only).
    pub inode: u64,
    /// Device of the file system holding it (change detection only).
    pub device: u64,
    /// Size in bytes (files: content length).
    pub size: u64,
    /// Device number for character and block devices.
    pub rdev: u64,
}

/// What an entry is, with its kind-specific data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeData {
    /// A regular file and its content chunks in order.
    File {
        /// Content.
        chunks: Vec<ChunkId>,
    },
    /// A directory and its tree.
    Dir {
        /// The subtree.
        subtree: TreeId,
    },
    /// A symbolic link.
    Symlink {
        /// Link target, as stored by the file system.
        target: Vec<u8>,
    },
    /// A further name of a file stored earlier in the same snapshot.
    Hardlink {
        /// Path of the first name, relative to the snapshot root,
        /// components separated by `/`.
        target: Vec<u8>,
    },
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A Unix socket (recorded, never recreated).
    Socket,
}

impl NodeData {
    fn kind_byte(&self) -> u8 {
        match self {
            NodeData::File { .. } => 1,
            NodeData::Dir { .. } => 2,
            NodeData::Symlink { .. } => 3,
            NodeData::Hardlink { .. } => 4,
            NodeData::Fifo => 5,
            NodeData::CharDevice => 6,
            NodeData::BlockDevice => 7,
            NodeData::Socket => 8,
        }
    }

    /// A short name of the kind.
    pub fn kind_name(&self) -> &'static str {
        match self {
            NodeData::File { .. } => "file",
            NodeData::Dir { .. } => "dir",
            NodeData::Symlink { .. } => "symlink",
            NodeData::Hardlink { .. } => "hardlink",
            NodeData::Fifo => "fifo",
            NodeData::CharDevice => "chardev",
            NodeData::BlockDevice => "blockdev",
            NodeData::Socket => "socket",
        }
    }
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The name: one path component, arbitrary bytes.
    pub name: Vec<u8>,
    /// Metadata.
    pub meta: Metadata,
    /// Kind and content.
    pub data: NodeData,
}

impl Node {
    /// The file's chunks, empty for anything else.
    pub fn chunks(&self) -> &[ChunkId] {
        match &self.data {
            NodeData::File { chunks } => chunks,
            _ => &[],
        }
    }

    /// The subtree of a directory.
    pub fn subtree(&self) -> Option<TreeId> {
        match &self.data {
            NodeData::Dir { subtree } => Some(*subtree),
            _ => None,
        }
    }
}

/// A directory's entries, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// Entries in byte order of their names.
    pub nodes: Vec<Node>,
}

/// Why a name cannot be written as one path component, if it cannot.
pub fn check_name(name: &[u8]) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name == b"." || name == b".." {
        return Err("the name is a relative directory reference");
    }
    if name.contains(&b'/') {
        return Err("the name contains '/' (it is not a single path component)");
    }
    if name.contains(&0) {
        return Err("the name contains a NUL byte");
    }
    Ok(())
}

impl Tree {
    /// Build a tree, sorting the entries by name.
    pub fn new(mut nodes: Vec<Node>) -> Self {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Self { nodes }
    }

    /// The entry with this name.
    pub fn get(&self, name: &[u8]) -> Option<&Node> {
        match self.nodes.binary_search_by(|n| n.name.as_slice().cmp(name)) {
            Ok(i) => self.nodes.get(i),
            // A crafted tree may be unsorted; fall back to a scan.
            Err(_) => self.nodes.iter().find(|n| n.name == name),
        }
    }

    /// The first name that appears twice, if any.
    pub fn duplicate_name(&self) -> Option<&[u8]> {
        self.duplicate_names().into_iter().next()
    }

    /// Every name that appears more than once, each once, in order.
    pub fn duplicate_names(&self) -> Vec<&[u8]> {
        let mut names: Vec<&[u8]> = self.nodes.iter().map(|n| n.name.as_slice()).collect();
        names.sort_unstable();
        let mut dups: Vec<&[u8]> = names
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        dups.dedup();
        dups
    }

    /// Encode the plaintext.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + self.nodes.len() * (NODE_MIN_LEN + 32));
        out.put_u8(TREE_VERSION);
        out.put_u32(self.nodes.len() as u32);
        for n in &self.nodes {
            out.put_blob(&n.name);
            out.put_u8(n.data.kind_byte());
            let m = &n.meta;
            out.put_u32(m.mode);
            out.put_u32(m.uid);
            out.put_u32(m.gid);
            out.put_i64(m.mtime.sec);
            out.put_u32(m.mtime.nsec);
            out.put_i64(m.ctime.sec);
            out.put_u32(m.ctime.nsec);
            out.put_u64(m.inode);
            out.put_u64(m.device);
            out.put_u64(m.size);
            out.put_u64(m.rdev);
            match &n.data {
                NodeData::File { chunks } => {
                    out.put_u32(chunks.len() as u32);
                    for c in chunks {
                        out.extend_from_slice(c.as_bytes());
                    }
                }
                NodeData::Dir { subtree } => out.extend_from_slice(subtree.as_bytes()),
                NodeData::Symlink { target } | NodeData::Hardlink { target } => {
                    out.put_blob(target)
                }
                NodeData::Fifo
                | NodeData::CharDevice
                | NodeData::BlockDevice
                | NodeData::Socket => {}
            }
        }
        out
    }

    /// Decode a plaintext, bounds-checked.
    pub fn decode(plain: &[u8], what: &str) -> Result<Self> {
        let mut r = Reader::new(plain, what);
        let version = r.u8()?;
        if version != TREE_VERSION {
            return Err(Error::UnsupportedVersion {
                what: what.to_string(),
                found: u32::from(version),
                supported: u32::from(TREE_VERSION),
            });
        }
        let count = r.count(NODE_MIN_LEN)?;
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            let name = r.blob()?.to_vec();
            let kind = r.u8()?;
            let mut meta = Metadata {
                mode: r.u32()?,
                uid: r.u32()?,
                gid: r.u32()?,
                ..Metadata::default()
            };
            meta.mtime = Time {
                sec: r.i64()?,
                nsec: r.u32()?,
            };
            meta.ctime = Time {
                sec: r.i64()?,
                nsec: r.u32()?,
            };
            meta.inode = r.u64()?;
            meta.device = r.u64()?;
            meta.size = r.u64()?;
            meta.rdev = r.u64()?;
            if meta.mtime.nsec >= 1_000_000_000 || meta.ctime.nsec >= 1_000_000_000 {
                return Err(r.error("nanoseconds out of range"));
            }
            let data = match kind {
                1 => {
                    let n = r.count(ID_LEN)?;
                    let mut chunks = Vec::with_capacity(n);
                    for _ in 0..n {
                        chunks.push(ChunkId::from_bytes(r.array()?));
                    }
                    NodeData::File { chunks }
                }
                2 => NodeData::Dir {
                    subtree: TreeId::from_bytes(r.array()?),
                },
                3 => NodeData::Symlink {
                    target: r.blob()?.to_vec(),
                },
                4 => NodeData::Hardlink {
                    target: r.blob()?.to_vec(),
                },
                5 => NodeData::Fifo,
                6 => NodeData::CharDevice,
                7 => NodeData::BlockDevice,
                8 => NodeData::Socket,
                other => return Err(r.error(format!("unknown entry kind {other}"))),
            };
            nodes.push(Node { name, meta, data });
        }
        r.finish()?;
        Ok(Self { nodes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(name: &[u8], data: NodeData) -> Node {
        Node {
            name: name.to_vec(),
            meta: Metadata {
                mode: 0o644,
                uid: 1000,
                gid: 1000,
                mtime: Time {
                    sec: 1_700_000_000,
                    nsec: 5,
                },
                ctime: Time { sec: -3, nsec: 0 },
                inode: 42,
                device: 7,
                size: 3,
                rdev: 0,
            },
            data,
        }
    }

    fn sample() -> Tree {
        Tree::new(vec![
            node(
                b"z-file",
                NodeData::File {
                    chunks: vec![ChunkId::from_bytes([1; 32]), ChunkId::from_bytes([2; 32])],
                },
            ),
            node(
                b"dir",
                NodeData::Dir {
                    subtree: TreeId::from_bytes([3; 32]),
                },
            ),
            node(
                b"\xff\xfe non-utf8",
                NodeData::Symlink {
                    target: b"../elsewhere".to_vec(),
                },
            ),
            node(
                b"link",
                NodeData::Hardlink {
                    target: b"a/b".to_vec(),
                },
            ),
            node(b"pipe", NodeData::Fifo),
            node(b"empty", NodeData::File { chunks: vec![] }),
        ])
    }

    #[test]
    fn round_trip_and_lookup() {
        let t = sample();
        let back = Tree::decode(&t.encode(), "t").unwrap();
        assert_eq!(back, t);
        assert_eq!(t.nodes[0].name, b"dir");
        assert!(t.get(b"pipe").is_some());
        assert!(t.get(b"nope").is_none());
        assert_eq!(t.duplicate_name(), None);
    }

    #[test]
    fn truncations_and_garbage_are_errors() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(Tree::decode(&bytes[..cut], "t").is_err());
        }
        let mut bad_kind = sample();
        bad_kind.nodes.truncate(1);
        let mut enc = bad_kind.encode();
        let kind_at = 1 + 4 + 4 + bad_kind.nodes[0].name.len();
        enc[kind_at] = 99;
        assert!(Tree::decode(&enc, "t").is_err());
    }

    #[test]
    fn names() {
        assert!(check_name(b"ok").is_ok());
        assert!(check_name(b"\xff").is_ok());
        for bad in [&b""[..], b".", b"..", b"a/b", b"/abs", b"nul\0"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let t = Tree {
            nodes: vec![
                node(b"a", NodeData::Fifo),
                node(
                    b"a",
                    NodeData::Symlink {
                        target: b"/".to_vec(),
                    },
                ),
            ],
        };
        assert_eq!(t.duplicate_name(), Some(&b"a"[..]));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Tree::decode(&bytes, "t");
        }
    }
}
