//! Completes directory trees bottom-up while files are still being read.
//!
//! The walker registers a directory with one slot per entry; entries are
//! filled in any order, by any thread (the walker for metadata-only entries,
//! workers when a file's last chunk is stored). When a directory's listing is
//! done and its last slot is filled, its tree blob is encoded and stored and
//! the directory fills its own slot in its parent. The root's tree id is the
//! snapshot's tree.

use crate::error::{Error, Result};
use crate::id::{BlobKind, TreeId};
use crate::tree::{Metadata, Node, NodeData, Tree};
use crate::writer::BlobWriter;
use parking_lot::Mutex;

/// A directory's handle.
pub(crate) type DirRef = usize;

enum Slot {
    Pending,
    Done(Node),
    Omitted,
}

struct DirState {
    parent: Option<(DirRef, usize)>,
    name: Vec<u8>,
    meta: Metadata,
    slots: Vec<Slot>,
    pending: usize,
    sealed: bool,
}

#[derive(Default)]
struct Inner {
    dirs: Vec<Option<DirState>>,
    free: Vec<DirRef>,
    root: Option<TreeId>,
    trees_stored: u64,
}

/// Thread-safe tree assembler.
#[derive(Default)]
pub(crate) struct Assembler {
    inner: Mutex<Inner>,
}

impl Assembler {
    /// Register a directory with `slots` entries. `parent` is the slot this
    /// directory fills when complete; `None` for the snapshot root.
    pub(crate) fn add_dir(
        &self,
        parent: Option<(DirRef, usize)>,
        name: Vec<u8>,
        meta: Metadata,
        slots: usize,
    ) -> DirRef {
        let state = DirState {
            parent,
            name,
            meta,
            slots: (0..slots).map(|_| Slot::Pending).collect(),
            pending: slots,
            sealed: false,
        };
        let mut inner = self.inner.lock();
        match inner.free.pop() {
            Some(d) => {
                inner.dirs[d] = Some(state);
                d
            }
            None => {
                inner.dirs.push(Some(state));
                inner.dirs.len() - 1
            }
        }
    }

    /// Fill a slot with an entry (`None`: the entry is left out, for example
    /// because it could not be read).
    pub(crate) fn fill(
        &self,
        dir: DirRef,
        slot: usize,
        node: Option<Node>,
        writer: &BlobWriter<'_>,
    ) -> Result<()> {
        let mut inner = self.inner.lock();
        let state = inner
            .dirs
            .get_mut(dir)
            .and_then(Option::as_mut)
            .ok_or_else(|| Error::Aborted(format!("directory {dir} is not pending")))?;
        match state.slots.get_mut(slot) {
            Some(s @ Slot::Pending) => {
                *s = match node {
                    Some(n) => Slot::Done(n),
                    None => Slot::Omitted,
                };
                state.pending -= 1;
            }
            _ => return Err(Error::Aborted(format!("slot {slot} of {dir} filled twice"))),
        }
        Self::complete(&mut inner, dir, writer)
    }

    /// Every entry of the directory has been registered (filled or handed
    /// to a reader).
    pub(crate) fn seal(&self, dir: DirRef, writer: &BlobWriter<'_>) -> Result<()> {
        let mut inner = self.inner.lock();
        if let Some(Some(state)) = inner.dirs.get_mut(dir) {
            state.sealed = true;
        }
        Self::complete(&mut inner, dir, writer)
    }

    /// Complete `dir` and, transitively, every ancestor it was the last
    /// pending entry of.
    fn complete(inner: &mut Inner, mut dir: DirRef, writer: &BlobWriter<'_>) -> Result<()> {
        loop {
            let ready = matches!(
                inner.dirs.get(dir),
                Some(Some(s)) if s.sealed && s.pending == 0
            );
            if !ready {
                return Ok(());
            }
            let Some(state) = inner.dirs.get_mut(dir).and_then(Option::take) else {
                return Ok(());
            };
            inner.free.push(dir);
            let nodes: Vec<Node> = state
                .slots
                .into_iter()
                .filter_map(|s| match s {
                    Slot::Done(n) => Some(n),
                    _ => None,
                })
                .collect();
            let tree = Tree::new(nodes);
            let (raw, _) = writer.store_plain(BlobKind::Tree, &tree.encode())?;
            inner.trees_stored += 1;
            let id = TreeId::from_bytes(raw);
            match state.parent {
                None => {
                    inner.root = Some(id);
                    return Ok(());
                }
                Some((parent, slot)) => {
                    let node = Node {
                        name: state.name,
                        meta: state.meta,
                        data: NodeData::Dir { subtree: id },
                    };
                    let p = inner
                        .dirs
                        .get_mut(parent)
                        .and_then(Option::as_mut)
                        .ok_or_else(|| Error::Aborted("parent directory vanished".into()))?;
                    match p.slots.get_mut(slot) {
                        Some(s @ Slot::Pending) => {
                            *s = Slot::Done(node);
                            p.pending -= 1;
                        }
                        _ => return Err(Error::Aborted("directory slot filled twice".into())),
                    }
                    dir = parent;
                }
            }
        }
    }

    /// The root tree, once everything is complete.
    pub(crate) fn root(&self) -> Option<TreeId> {
        self.inner.lock().root
    }

    /// Directories still incomplete (0 after a successful run).
    pub(crate) fn incomplete(&self) -> usize {
        self.inner
            .lock()
            .dirs
            .iter()
            .filter(|d| d.is_some())
            .count()
    }
}
