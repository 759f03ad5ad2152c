//! Restores of crafted (hostile) snapshots: nothing may be written outside
//! the target, and every refusal names the entry and the reason.

use super::*;
use crate::id::{BlobKind, TreeId};
use crate::progress::NoProgress;
use crate::snapshot::{SNAPSHOT_VERSION, SnapshotStatus, Summary};
use crate::tree::{Time, Tree};
use crate::writer::BlobWriter;

fn repo() -> Repository {
    crate::test_repo::memory_repo(&crate::test_repo::default_opts())
}

fn meta(mode: u32) -> Metadata {
    Metadata {
        mode,
        mtime: Time {
            sec: 1_700_000_000,
            nsec: 0,
        },
        ..Metadata::default()
    }
}

fn file(w: &BlobWriter<'_>, name: &[u8], content: &[u8]) -> Node {
    let (id, _) = w.store_plain(BlobKind::Data, content).unwrap();
    let mut m = meta(0o644);
    m.size = content.len() as u64;
    Node {
        name: name.to_vec(),
        meta: m,
        data: NodeData::File {
            chunks: vec![ChunkId::from_bytes(id)],
        },
    }
}

fn dir(w: &BlobWriter<'_>, name: &[u8], nodes: Vec<Node>) -> Node {
    // Deliberately not Tree::new: keep crafted order and duplicates.
    let tree = Tree { nodes };
    let (id, _) = w.store_plain(BlobKind::Tree, &tree.encode()).unwrap();
    Node {
        name: name.to_vec(),
        meta: meta(0o755),
        data: NodeData::Dir {
            subtree: TreeId::from_bytes(id),
        },
    }
}

fn link(name: &[u8], target: &[u8], hard: bool) -> Node {
    Node {
        name: name.to_vec(),
        meta: meta(0o777),
        data: if hard {
            NodeData::Hardlink {
                target: target.to_vec(),
            }
        } else {
            NodeData::Symlink {
                target: target.to_vec(),
            }
        },
    }
}

fn snapshot_of(repo: &Repository, build: impl FnOnce(&BlobWriter<'_>) -> Vec<Node>) -> Snapshot {
    let _lock = repo.lock(false, "test").unwrap();
    let w = BlobWriter::new(repo).unwrap();
    let nodes = build(&w);
    let root = Tree { nodes };
    let (root_id, _) = w.store_plain(BlobKind::Tree, &root.encode()).unwrap();
    w.finish().unwrap();
    Snapshot {
        version: SNAPSHOT_VERSION,
        time: jiff::Timestamp::now(),
        host: "h".into(),
        username: "u".into(),
        account: "default".into(),
        paths: vec![],
        tags: vec![],
        parent: None,
        tree: TreeId::from_bytes(root_id),
        status: SnapshotStatus::Complete,
        summary: Summary::default(),
        program: "crafted".into(),
    }
}

/// Everything under `sandbox` except the target directory itself.
fn outside_target(sandbox: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(sandbox).unwrap() {
        let p = e.unwrap().path();
        if p.file_name() != Some(OsStr::new("target"))
            && p.file_name() != Some(OsStr::new("outside"))
        {
            out.push(p);
        }
    }
    let outside = sandbox.join("outside");
    if outside.exists() {
        for e in std::fs::read_dir(&outside).unwrap() {
            out.push(e.unwrap().path());
        }
    }
    out
}

fn run(repo: &Repository, snap: &Snapshot, sandbox: &Path) -> RestoreSummary {
    std::fs::create_dir_all(sandbox.join("outside")).unwrap();
    restore(
        repo,
        snap,
        None,
        &RestoreOptions::new(sandbox.join("target")),
        &NoProgress,
    )
    .unwrap()
}

fn reasons(s: &RestoreSummary) -> String {
    s.errors
        .iter()
        .map(|e| format!("{}: {}", e.path.display(), e.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn names_that_escape_are_refused_and_the_rest_restored() {
    let repo = repo();
    let sandbox = tempfile::tempdir().unwrap();
    let abs_name = format!("{}/outside/abs", sandbox.path().display());
    let snap = snapshot_of(&repo, |w| {
        vec![
            file(w, b"..", b"dotdot"),
            file(w, b".", b"dot"),
            file(w, b"../outside/escaped", b"escaped"),
            file(w, abs_name.as_bytes(), b"absolute"),
            file(w, b"", b"empty name"),
            file(w, b"nul\0byte", b"nul"),
            dir(
                w,
                b"sub",
                vec![
                    file(w, b"../../outside/deep", b"deep"),
                    file(w, b"fine", b"fine"),
                ],
            ),
            file(w, b"ok", b"restored"),
        ]
    });
    let s = run(&repo, &snap, sandbox.path());
    assert_eq!(
        std::fs::read(sandbox.path().join("target/ok")).unwrap(),
        b"restored"
    );
    assert_eq!(
        std::fs::read(sandbox.path().join("target/sub/fine")).unwrap(),
        b"fine"
    );
    assert!(
        outside_target(sandbox.path()).is_empty(),
        "{:?}",
        outside_target(sandbox.path())
    );
    assert_eq!(s.errors.len(), 7, "{}", reasons(&s));
    let text = reasons(&s);
    assert!(
        text.contains("refusing to write outside the target"),
        "{text}"
    );
    assert!(text.contains("single path component"), "{text}");
    assert_eq!(s.files, 2);
}

#[test]
fn a_symlink_cannot_redirect_later_writes() {
    let repo = repo();
    let sandbox = tempfile::tempdir().unwrap();
    let outside = sandbox.path().join("outside");
    let snap = snapshot_of(&repo, |w| {
        vec![
            // A symlink and a directory of the same name: neither is
            // restored; the rest of the directory is.
            link(b"evil", outside.as_os_str().as_bytes(), false),
            dir(w, b"evil", vec![file(w, b"x", b"through the link")]),
            file(w, b"fine", b"an entry beside them"),
        ]
    });
    let s = run(&repo, &snap, sandbox.path());
    assert!(outside_target(sandbox.path()).is_empty());
    assert!(reasons(&s).contains("more than once"), "{}", reasons(&s));
    assert_eq!(s.errors.len(), 1, "{}", reasons(&s));
    assert_eq!(
        std::fs::read(sandbox.path().join("target/fine")).unwrap(),
        b"an entry beside them"
    );
    assert!(!sandbox.path().join("target/evil").exists());

    // A symlink pointing outside is restored as a symlink (it is data), and
    // a hard link through it is refused.
    let snap = snapshot_of(&repo, |w| {
        vec![
            link(b"escape", outside.as_os_str().as_bytes(), false),
            link(b"hl", b"escape/passwd", true),
            link(b"hl2", b"../../etc/passwd", true),
            file(w, b"plain", b"p"),
        ]
    });
    let s = run(&repo, &snap, sandbox.path());
    let target = sandbox.path().join("target");
    assert_eq!(std::fs::read_link(target.join("escape")).unwrap(), outside);
    assert!(!target.join("hl").exists() && !target.join("hl2").exists());
    assert_eq!(s.errors.len(), 2, "{}", reasons(&s));
    assert!(outside_target(sandbox.path()).is_empty());
}

#[test]
fn a_symlink_already_in_the_target_is_not_followed() {
    let repo = repo();
    let sandbox = tempfile::tempdir().unwrap();
    let target = sandbox.path().join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::create_dir_all(sandbox.path().join("outside")).unwrap();
    std::os::unix::fs::symlink(sandbox.path().join("outside"), target.join("sub")).unwrap();
    std::os::unix::fs::symlink(sandbox.path().join("outside/victim"), target.join("file")).unwrap();
    let snap = snapshot_of(&repo, |w| {
        vec![
            dir(w, b"sub", vec![file(w, b"f", b"through a planted link")]),
            file(w, b"file", b"replaces the planted link"),
        ]
    });
    let s = run(&repo, &snap, sandbox.path());
    assert!(outside_target(sandbox.path()).is_empty());
    assert!(reasons(&s).contains("symlink"), "{}", reasons(&s));
    // The planted file symlink was replaced by a real file, not followed.
    let md = std::fs::symlink_metadata(target.join("file")).unwrap();
    assert!(md.is_file());
    assert_eq!(
        std::fs::read(target.join("file")).unwrap(),
        b"replaces the planted link"
    );
}

#[test]
fn missing_chunks_fail_one_file_only() {
    let repo = repo();
    let sandbox = tempfile::tempdir().unwrap();
    let snap = snapshot_of(&repo, |w| {
        let mut broken = file(w, b"broken", b"x");
        broken.data = NodeData::File {
            chunks: vec![ChunkId::from_bytes([7; 32])],
        };
        vec![broken, file(w, b"good", b"good")]
    });
    let s = run(&repo, &snap, sandbox.path());
    assert_eq!(s.errors.len(), 1);
    assert!(reasons(&s).contains("missing"), "{}", reasons(&s));
    assert!(
        !sandbox.path().join("target/broken").exists(),
        "partial files are removed"
    );
    assert_eq!(
        std::fs::read(sandbox.path().join("target/good")).unwrap(),
        b"good"
    );
}

/// Restore workers create parent directories concurrently (an include
/// filter restores files whose directories were not restored first): the
/// one that loses the race to create a directory must not fail.
#[test]
fn concurrent_workers_create_the_same_directories() {
    let repo = repo();
    let sandbox = tempfile::tempdir().unwrap();
    for round in 0..40 {
        let target = sandbox.path().join(format!("t{round}"));
        std::fs::create_dir_all(&target).unwrap();
        let r = Restorer::new(&repo, &NoProgress, target.clone(), false, false).unwrap();
        let deep = target.join("db/a/b/c");
        let barrier = std::sync::Barrier::new(8);
        let results: Vec<std::result::Result<(), String>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        r.ensure_dir(&deep)
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        for res in results {
            res.unwrap();
        }
        assert!(deep.is_dir());
    }
}
