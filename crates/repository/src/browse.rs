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
