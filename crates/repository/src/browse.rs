//! Reading snapshots as file trees: resolve a path, walk a tree, compare two
//! snapshots. Paths inside a snapshot are byte strings of components
//! separated by `/`, relative to the snapshot root (`home/u/mail`); a
//! leading `/` is accepted and ignored.

use crate::error::{Error, Result};
use crate::id::TreeId;
use crate::repo::Repository;
use crate::tree::{Node, NodeData, Tree};

/// Split a snapshot path into components (empty components and a leading
/// `/` are ignored; `.` and `..` are refused).
pub fn components(path: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    for c in path.split(|b| *b == b'/') {
        match c {
            b"" => {}
            b"." | b".." => {
                return Err(Error::invalid(
                    "snapshot path",
                    format!("{:?} contains . or ..", String::from_utf8_lossy(path)),
                ));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Join a parent path and a name.
pub fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(parent.len() + 1 + name.len());
    p.extend_from_slice(parent);
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// What a snapshot path names.
#[derive(Debug, Clone)]
pub enum Located {
    /// The snapshot root (or a directory): its tree.
    Dir {
        /// The directory's entry (`None` for the snapshot root).
        node: Option<Node>,
        /// Its tree.
        tree: TreeId,
    },
    /// Any other entry.
    Entry(Node),
}

/// Resolve a path inside the tree `root`.
pub fn locate(repo: &Repository, root: &TreeId, path: &[u8]) -> Result<Located> {
    let parts = components(path)?;
    let mut current = Located::Dir {
        node: None,
        tree: *root,
    };
    for (i, part) in parts.iter().enumerate() {
        let tree_id = match &current {
            Located::Dir { tree, .. } => *tree,
            Located::Entry(_) => {
                return Err(Error::NotFound {
                    what: format!(
                        "{} in the snapshot ({} is not a directory)",
                        String::from_utf8_lossy(path),
                        String::from_utf8_lossy(&parts[..i].join(&b'/'))
                    ),
                });
            }
        };
        let tree = repo.load_tree(&tree_id)?;
        let node = tree.get(part).cloned().ok_or_else(|| Error::NotFound {
            what: format!("{} in the snapshot", String::from_utf8_lossy(path)),
        })?;
        current = match node.data {
            NodeData::Dir { subtree } => Located::Dir {
                node: Some(node),
                tree: subtree,
            },
            _ => Located::Entry(node),
        };
    }
    Ok(current)
}

/// Find the entry at `path` (`None` when it does not exist).
pub fn find_node(repo: &Repository, root: &TreeId, path: &[u8]) -> Result<Option<Node>> {
    match locate(repo, root, path) {
        Ok(Located::Entry(n)) => Ok(Some(n)),
        Ok(Located::Dir { node, .. }) => Ok(node),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Visit every entry under `tree` depth-first, in name order; `visit` gets
/// the entry's path (joined onto `prefix`) and returns whether to descend
/// into it (directories only).
pub fn walk(
    repo: &Repository,
    tree: &TreeId,
    prefix: &[u8],
    visit: &mut dyn FnMut(&[u8], &Node) -> Result<bool>,
) -> Result<()> {
    let mut stack: Vec<(Vec<u8>, Tree, usize)> = vec![(prefix.to_vec(), repo.load_tree(tree)?, 0)];
    while let Some((dir_path, tree, next)) = stack.last_mut() {
        let Some(node) = tree.nodes.get(*next) else {
            stack.pop();
            continue;
        };
        *next += 1;
        let node = node.clone();
        let path = join(dir_path, &node.name);
        let descend = visit(&path, &node)?;
        if let (true, Some(sub)) = (descend, node.subtree()) {
            let subtree = repo.load_tree(&sub)?;
            stack.push((path, subtree, 0));
        }
    }
    Ok(())
}

/// Matching entries found under one tree: paths relative to it, and the
/// entries.
pub type Matches = std::sync::Arc<Vec<(Vec<u8>, Node)>>;

/// A search through many snapshots that reads and searches each distinct
/// tree once (`cairn find`): the matches under a tree are remembered by its
/// id, so a subtree that a thousand snapshots share costs one visit. When
/// the test looks at whole paths, a tree's matches depend on where it sits,
/// and they are remembered by tree id and path.
pub struct Finder<'a> {
    repo: &'a Repository,
    test: &'a dyn Fn(&[u8], &Node) -> bool,
    by_path: bool,
    memo: std::collections::HashMap<(TreeId, Vec<u8>), Matches>,
    trees_read: u64,
}

impl std::fmt::Debug for Finder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finder")
            .field("by_path", &self.by_path)
            .field("trees_read", &self.trees_read)
            .finish_non_exhaustive()
    }
}

impl<'a> Finder<'a> {
    /// A search with `test(path, entry)`; `by_path` says whether the test
    /// looks at more of the path than the entry's name.
    pub fn new(
        repo: &'a Repository,
        by_path: bool,
        test: &'a dyn Fn(&[u8], &Node) -> bool,
    ) -> Self {
        Self {
            repo,
            test,
            by_path,
            memo: std::collections::HashMap::new(),
            trees_read: 0,
        }
    }

    /// How many trees were read so far (each distinct one once).
    pub fn trees_read(&self) -> u64 {
        self.trees_read
    }

    /// Every entry under the snapshot root `root` that passes the test, in
    /// walk order (depth-first, names in order), paths from the root.
    pub fn search(&mut self, root: &TreeId) -> Result<Matches> {
        struct Frame {
            key: (TreeId, Vec<u8>),
            path: Vec<u8>,
            tree: Tree,
            next: usize,
            found: Vec<(Vec<u8>, Node)>,
        }
        let key_of = |by_path: bool, tree: TreeId, path: &[u8]| {
            (tree, if by_path { path.to_vec() } else { Vec::new() })
        };
        let root_key = key_of(self.by_path, *root, b"");
        if let Some(m) = self.memo.get(&root_key) {
            return Ok(m.clone());
        }
        self.trees_read += 1;
        let mut stack = vec![Frame {
            key: root_key,
            path: Vec::new(),
            tree: self.repo.load_tree(root)?,
            next: 0,
            found: Vec::new(),
        }];
        loop {
            let Some(frame) = stack.last_mut() else {
                return Err(Error::invalid("find", "internal error: empty search stack"));
            };
            let Some(node) = frame.tree.nodes.get(frame.next).cloned() else {
                // This tree is done: remember it and hand its matches up.
                let Some(done) = stack.pop() else { continue };
                let found: Matches = std::sync::Arc::new(done.found);
                self.memo.insert(done.key, found.clone());
                match stack.last_mut() {
                    Some(parent) => {
                        let name = last_component(&done.path);
                        add_under(&mut parent.found, name, &found);
                    }
                    None => return Ok(found),
                }
                continue;
            };
            frame.next += 1;
            let path = join(&frame.path, &node.name);
            if (self.test)(&path, &node) {
                frame.found.push((node.name.clone(), node.clone()));
            }
            let Some(sub) = node.subtree() else { continue };
            let key = key_of(self.by_path, sub, &path);
            if let Some(m) = self.memo.get(&key) {
                let m = m.clone();
                add_under(&mut frame.found, &node.name, &m);
                continue;
            }
            self.trees_read += 1;
            let tree = self.repo.load_tree(&sub)?;
            stack.push(Frame {
                key,
                path,
                tree,
                next: 0,
                found: Vec::new(),
            });
        }
    }
}

/// The last component of a path.
fn last_component(path: &[u8]) -> &[u8] {
    path.rsplit(|b| *b == b'/').next().unwrap_or(path)
}

/// Append matches found under the directory `name`, with `name/` before
/// their paths.
fn add_under(out: &mut Vec<(Vec<u8>, Node)>, name: &[u8], found: &[(Vec<u8>, Node)]) {
    out.extend(found.iter().map(|(p, n)| (join(name, p), n.clone())));
}

/// One difference between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// `+` added, `-` removed, `M` content changed, `U` metadata only, `T`
    /// type changed.
    pub kind: char,
    /// The path.
    pub path: crate::snapshot::RawPath,
}

/// Compare two trees; changes in path order.
pub fn diff(repo: &Repository, a: &TreeId, b: &TreeId) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    let mut stack = vec![(Vec::new(), Some(*a), Some(*b))];
    while let Some((path, ta, tb)) = stack.pop() {
        if ta == tb {
            continue;
        }
        let load = |t: Option<TreeId>| -> Result<Tree> {
            match t {
                Some(t) => repo.load_tree(&t),
                None => Ok(Tree::default()),
            }
        };
        let (ta, tb) = (load(ta)?, load(tb)?);
        let mut names: Vec<&[u8]> = ta
            .nodes
            .iter()
            .chain(tb.nodes.iter())
            .map(|n| n.name.as_slice())
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut subdirs = Vec::new();
        for name in names {
            let p = join(&path, name);
            let raw = crate::snapshot::RawPath(p.clone());
            match (ta.get(name), tb.get(name)) {
                (Some(x), None) => {
                    out.push(Change {
                        kind: '-',
                        path: raw,
                    });
                    if let Some(s) = x.subtree() {
                        subdirs.push((p, Some(s), None));
                    }
                }
                (None, Some(y)) => {
                    out.push(Change {
                        kind: '+',
                        path: raw,
                    });
                    if let Some(s) = y.subtree() {
                        subdirs.push((p, None, Some(s)));
                    }
                }
                (Some(x), Some(y)) => {
                    let same_kind =
                        std::mem::discriminant(&x.data) == std::mem::discriminant(&y.data);
                    if !same_kind {
                        out.push(Change {
                            kind: 'T',
                            path: raw,
                        });
                        subdirs.push((p, x.subtree(), y.subtree()));
                    } else if let (Some(sx), Some(sy)) = (x.subtree(), y.subtree()) {
                        if x.meta.mode != y.meta.mode || x.meta.mtime != y.meta.mtime {
                            out.push(Change {
                                kind: 'U',
                                path: raw,
                            });
                        }
                        subdirs.push((p, Some(sx), Some(sy)));
                    } else if x.data != y.data {
                        out.push(Change {
                            kind: 'M',
                            path: raw,
                        });
                    } else if x.meta.mode != y.meta.mode
                        || x.meta.mtime != y.meta.mtime
                        || x.meta.uid != y.meta.uid
                        || x.meta.gid != y.meta.gid
                    {
                        out.push(Change {
                            kind: 'U',
                            path: raw,
                        });
                    }
                }
                (None, None) => {}
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::id::{BlobKind, ChunkId};
    use crate::tree::Metadata;
    use crate::writer::BlobWriter;

    fn put(w: &BlobWriter<'_>, nodes: Vec<Node>) -> TreeId {
        let (id, _) = w
            .store_plain(BlobKind::Tree, &Tree::new(nodes).encode())
            .unwrap();
        TreeId::from_bytes(id)
    }

    fn file(w: &BlobWriter<'_>, name: &str) -> Node {
        let (id, _) = w.store_plain(BlobKind::Data, name.as_bytes()).unwrap();
        Node {
            name: name.as_bytes().to_vec(),
            meta: Metadata {
                size: name.len() as u64,
                ..Metadata::default()
            },
            data: NodeData::File {
                chunks: vec![ChunkId::from_bytes(id)],
            },
        }
    }

    fn dir(name: &str, subtree: TreeId) -> Node {
        Node {
            name: name.as_bytes().to_vec(),
            meta: Metadata {
                mode: 0o040755,
                ..Metadata::default()
            },
            data: NodeData::Dir { subtree },
        }
    }

    /// What a plain walk finds, for comparison.
    fn walked(
        repo: &Repository,
        root: &TreeId,
        test: &dyn Fn(&[u8], &Node) -> bool,
    ) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        walk(repo, root, b"", &mut |p, n| {
            if test(p, n) {
                out.push(p.to_vec());
            }
            Ok(true)
        })
        .unwrap();
        out
    }

    fn found_paths(finder: &mut Finder<'_>, root: &TreeId) -> Vec<Vec<u8>> {
        let found = finder.search(root).unwrap();
        found.iter().map(|(p, _)| p.clone()).collect()
    }

    #[test]
    fn a_search_reads_each_distinct_tree_once_and_finds_what_a_walk_finds() {
        let repo = crate::test_repo::memory_repo(&crate::test_repo::default_opts());
        let _lock = repo.lock(false, "test").unwrap();
        let w = BlobWriter::new(&repo).unwrap();
        let shared = put(&w, vec![file(&w, "a.eml"), file(&w, "b.txt")]);
        let inner = put(&w, vec![dir("cur", shared), file(&w, "a.eml")]);
        let roots: Vec<TreeId> = (0..5)
            .map(|i| {
                put(
                    &w,
                    vec![
                        dir("mail", inner),
                        dir("other", shared),
                        file(&w, &format!("day-{i}")),
                    ],
                )
            })
            .collect();
        w.finish().unwrap();

        let by_name = |_: &[u8], n: &Node| n.name.ends_with(b".eml");
        let mut finder = Finder::new(&repo, false, &by_name);
        for root in &roots {
            let found = found_paths(&mut finder, root);
            assert_eq!(found, walked(&repo, root, &by_name));
            assert_eq!(found.len(), 3);
        }
        // Five roots, `mail`'s tree and the shared one: seven reads, not
        // the walk's twenty.
        assert_eq!(finder.trees_read(), 7);

        // A test on whole paths tells the shared tree's two places apart.
        let by_path = |p: &[u8], _: &Node| p.starts_with(b"mail/") && p.ends_with(b".eml");
        let mut finder = Finder::new(&repo, true, &by_path);
        for root in &roots {
            let found = found_paths(&mut finder, root);
            assert_eq!(found, walked(&repo, root, &by_path));
            assert_eq!(
                found,
                vec![b"mail/a.eml".to_vec(), b"mail/cur/a.eml".to_vec()]
            );
        }
        assert_eq!(finder.trees_read(), 8);
    }
}
