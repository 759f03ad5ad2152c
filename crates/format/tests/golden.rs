//! Backward compatibility: `fixtures/repo-v1` is a repository written by
//! cairn on 2026-12-02 (`fixtures/generate.sh`): one snapshot of a small
//! tree, two log segments, a verification record and an account event.
//! This test reads it with nothing but this crate and the file system, as
//! an independent reader written from docs/FORMAT.md would, down to the
//! bytes of every file. A change that makes it fail changes the format:
//! that needs a new version and a new fixture, never an edited one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cairn_format::account::{AccountEvent, AccountState};
use cairn_format::config::{GearSource, RepoConfig};
use cairn_format::crypto::{self, Keys, Sealed};
use cairn_format::id::{BlobKind, ChunkId, IndexId, PackId, SnapshotId, TreeId, VerificationId};
use cairn_format::index::IndexFile;
use cairn_format::keyfile::KeyFile;
use cairn_format::log_segment::{self, SegmentManifest};
use cairn_format::manifest;
use cairn_format::pack::{self, PackEntry, TRAILER_LEN};
use cairn_format::snapshot::{Snapshot, SnapshotStatus};
use cairn_format::tree::{NodeData, Tree};
use cairn_format::verification::{Verdict, VerificationRecord};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const PASSWORD: &[u8] = b"fixture password";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repo-v1")
}

/// The files of one directory: (name, bytes), sorted by name.
fn files(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root().join(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let name = e
                    .path()
                    .strip_prefix(root().join(dir))
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((name, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

struct Repo {
    keys: Keys,
    /// Blob id -> (pack id, entry).
    blobs: HashMap<[u8; 32], (PackId, PackEntry)>,
}

impl Repo {
    fn open() -> (Self, RepoConfig) {
        let keyfiles = files("keys");
        assert_eq!(keyfiles.len(), 1);
        let (name, bytes) = &keyfiles[0];
        assert_eq!(
            blake3::hash(bytes).to_hex().as_str(),
            name,
            "a key file is named by its hash"
        );
        let kf = KeyFile::parse(bytes, name).unwrap();
        assert_eq!((kf.version, kf.kdf.as_str()), (1, "argon2id"));
        assert!(kf.unlock(b"wrong", name).unwrap().is_none());
        let master = kf.unlock(PASSWORD, name).unwrap().expect("the password");
        let keys = Keys::derive(&master);

        let sealed = std::fs::read(root().join("config")).unwrap();
        let json = crypto::open_object(&keys, Sealed::Config, &sealed, "config").unwrap();
        let config: RepoConfig = serde_json::from_slice(&json).unwrap();
        config.validate().unwrap();
        assert!(
            crypto::open_object(&keys, Sealed::Index, &sealed, "config").is_err(),
            "an object opens only under its own kind"
        );

        let mut blobs = HashMap::new();
        for (name, bytes) in files("index") {
            let id = IndexId::from_hex(&name).unwrap();
            for p in IndexFile::open(&keys, &id, &bytes).unwrap().packs {
                for b in p.blobs {
                    blobs.insert(b.id, (p.id, b));
                }
            }
        }
        (Repo { keys, blobs }, config)
    }

    fn blob(&self, kind: BlobKind, id: &[u8; 32]) -> Vec<u8> {
        let (pack, e) = self.blobs.get(id).expect("every blob is indexed");
        assert_eq!(e.kind, kind);
        let hex = pack.to_hex();
        let bytes = std::fs::read(root().join("data").join(&hex[..2]).join(&hex)).unwrap();
        let stored = &bytes[e.offset as usize..(e.offset + e.length) as usize];
        crypto::decode_blob(&self.keys, kind, id, stored, e.raw_length).unwrap()
    }

    fn tree(&self, id: &TreeId) -> Tree {
        Tree::decode(&self.blob(BlobKind::Tree, id.as_bytes()), "tree").unwrap()
    }

    fn file(&self, chunks: &[ChunkId]) -> Vec<u8> {
        chunks
            .iter()
            .flat_map(|c| self.blob(BlobKind::Data, c.as_bytes()))
            .collect()
    }
}

/// BLAKE3 of `big.bin`, the 80000 bytes `generate.sh` draws from Python's
/// `random.Random(7)` (checked against a fresh draw when the fixture was
/// made).
const BIG_BIN_BLAKE3: &str = "e07f61d23143436f3cad8fa352b4a5011d5820227744489174fe678baa3d0b54";

#[test]
fn the_v1_fixture_reads_with_the_format_crate_alone() {
    let (repo, config) = Repo::open();
    assert_eq!(config.version, 1);
    assert_eq!(
        (
            config.chunker.min_size,
            config.chunker.avg_size,
            config.chunker.max_size
        ),
        (16 << 10, 32 << 10, 128 << 10)
    );
    assert_eq!(config.chunker.gear, GearSource::Keyed);
    assert_eq!(config.pack_size, 64 << 10);

    // Packs: named by their hash; trailer, sealed header and the index agree.
    let packs = files("data");
    assert!(!packs.is_empty());
    for (name, bytes) in &packs {
        let id = PackId::of_bytes(bytes);
        assert_eq!(name, &format!("{}/{}", &id.to_hex()[..2], id.to_hex()));
        let len = bytes.len() as u64;
        let header_len =
            pack::parse_trailer(&bytes[bytes.len() - TRAILER_LEN..], len, name).unwrap();
        let header_start = bytes.len() - TRAILER_LEN - header_len as usize;
        let entries = pack::decode_header(
            &repo.keys,
            &bytes[header_start..bytes.len() - TRAILER_LEN],
            len,
            name,
        )
        .unwrap();
        for e in entries {
            assert_eq!(repo.blobs.get(&e.id), Some(&(id, e)), "{name}");
        }
    }

    // The snapshot.
    let snaps = files("snapshots");
    assert_eq!(snaps.len(), 1);
    let (name, bytes) = &snaps[0];
    let snap_id = SnapshotId::from_hex(name).unwrap();
    let snap: Snapshot = manifest::open(&repo.keys, &snap_id, bytes).unwrap();
    assert_eq!(
        (
            snap.account.as_str(),
            snap.host.as_str(),
            snap.tags.as_slice()
        ),
        ("mail", "fixture", &["golden".to_string()][..])
    );
    assert_eq!(snap.status, SnapshotStatus::Complete);
    assert_eq!(snap.paths.len(), 1);
    assert_eq!(snap.summary.files_new, 3);

    // Its tree, down to the bytes of every file.
    let top = repo.tree(&snap.tree);
    let mut dir = top;
    for component in snap.paths[0]
        .0
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
    {
        let node = dir
            .get(component)
            .expect("the snapshot path is in the tree");
        let NodeData::Dir { subtree } = &node.data else {
            panic!("a path component is a directory")
        };
        dir = repo.tree(subtree);
    }
    let src = dir;
    let names: Vec<&[u8]> = src.nodes.iter().map(|n| n.name.as_slice()).collect();
    assert_eq!(names, [&b"docs"[..], b"hello.txt", b"link"]);
    let hello = src.get(b"hello.txt").unwrap();
    assert_eq!(repo.file(hello.chunks()), b"hello, cairn\n");
    assert_eq!(hello.meta.size, 13);
    assert_eq!(hello.meta.mtime.sec, 1_796_040_000, "2026-11-30 12:00:00Z");
    let NodeData::Symlink { target } = &src.get(b"link").unwrap().data else {
        panic!("link is a symlink")
    };
    assert_eq!(target, b"hello.txt");
    let docs = repo.tree(&src.get(b"docs").unwrap().subtree().unwrap());
    let note = docs.get(b"note.md").unwrap();
    assert_eq!(repo.file(note.chunks()), b"a second file\n");
    assert_eq!(note.meta.mode & 0o7777, 0o640);
    let big = docs.get(b"big.bin").unwrap();
    let content = repo.file(big.chunks());
    assert_eq!(content.len(), 80_000);
    assert_eq!(blake3::hash(&content).to_hex().as_str(), BIG_BIN_BLAKE3);

    // Log segments: names, chain and content.
    let segs = files("logs");
    assert_eq!(segs.len(), 2);
    let tag = repo.keys.stream_tag("mail", "wal");
    let mut prev = None;
    for (i, (name, bytes)) in segs.iter().enumerate() {
        let (seq, id) = log_segment::parse_object(name).unwrap();
        assert_eq!(seq, i as u64);
        assert_eq!(name, &log_segment::object_name(&tag, seq, &id));
        let m: SegmentManifest = manifest::open(&repo.keys, &id, bytes).unwrap();
        assert_eq!((m.account.as_str(), m.stream.as_str()), ("mail", "wal"));
        assert_eq!(m.prev, prev);
        let expected: &[u8] = if i == 0 {
            b"segment one\n"
        } else {
            b"segment two\n"
        };
        assert_eq!(repo.file(&m.chunks), expected);
        assert_eq!(m.size, expected.len() as u64);
        prev = Some(id);
    }

    // The verification record and the account event.
    let recs = files("verifications");
    assert_eq!(recs.len(), 1);
    let id = VerificationId::from_hex(&recs[0].0).unwrap();
    let rec: VerificationRecord = manifest::open(&repo.keys, &id, &recs[0].1).unwrap();
    assert_eq!((rec.snapshot, rec.verdict), (snap_id, Verdict::Verified));
    let events = files("accounts");
    assert_eq!(events.len(), 1);
    let id = events[0].0.parse().unwrap();
    let ev: AccountEvent = manifest::open(&repo.keys, &id, &events[0].1).unwrap();
    assert_eq!(
        (ev.account.as_str(), ev.state),
        ("mail", AccountState::Disabled)
    );
}

/// Flipping one byte anywhere in a manifest is caught, never decoded.
#[test]
fn a_changed_byte_is_refused() {
    let (repo, _) = Repo::open();
    let (name, bytes) = &files("snapshots")[0];
    let id = SnapshotId::from_hex(name).unwrap();
    for i in [0, 6, 8, bytes.len() / 2, bytes.len() - 1] {
        let mut b = bytes.clone();
        b[i] ^= 1;
        assert!(
            manifest::open::<Snapshot>(&repo.keys, &id, &b).is_err(),
            "byte {i}"
        );
    }
}
