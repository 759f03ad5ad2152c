//! Metadata read-ahead for a backup: a few threads walk the sources ahead
//! of the walker, listing directories and `lstat`ing their entries, so the
//! walker (one thread, in name order, waiting on each cold inode) finds
//! them in the kernel's caches. A nightly backup meets its tree cold, and
//! on a disk that answers several requests at once the walk's latency is
//! the no-change backup's cost.
//!
//! It only reads metadata and keeps nothing: what the walker records is
//! what the walker itself reads. Errors are ignored (the walker meets and
//! reports them). It stops when dropped.

use crate::fsat;
use parking_lot::{Condvar, Mutex};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// Directories waiting to be read ahead, as open descriptors (no path is
/// resolved twice), and how many threads are busy with one.
#[derive(Default)]
struct Queue {
    dirs: Vec<OwnedFd>,
    busy: usize,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    stop: AtomicBool,
}

/// Read-ahead threads; stopped and joined on drop.
pub(super) struct Prefetch {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// At most this many directories are held open ahead of the walker.
const MAX_QUEUED: usize = 512;

impl Prefetch {
    /// Start `threads` threads over the directories among `paths`.
    pub(super) fn start(paths: &[PathBuf], threads: usize) -> Self {
        let shared = Arc::new(Shared::default());
        {
            let mut q = shared.queue.lock();
            // A stack: the first path is taken first.
            for p in paths.iter().rev() {
                if let Ok(fd) = fsat::open_dir(p) {
                    q.dirs.push(fd);
                }
            }
        }
        let threads = (0..threads)
            .filter_map(|_| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name("cairn-prefetch".into())
                    .spawn(move || run(&shared))
                    .ok()
            })
            .collect();
        Self { shared, threads }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.ready.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared) {
    loop {
        let dir = {
            let mut q = shared.queue.lock();
            loop {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(d) = q.dirs.pop() {
                    q.busy += 1;
                    break d;
                }
                if q.busy == 0 {
                    // Nothing queued and nobody can queue more: done.
                    shared.ready.notify_all();
                    return;
                }
                shared.ready.wait(&mut q);
            }
        };
        let subdirs = read_ahead(shared, &dir);
        let mut q = shared.queue.lock();
        q.busy -= 1;
        // Reversed, so the stack hands them out in name order, as the
        // walker meets them; beyond the bound the rest are left to it.
        let room = MAX_QUEUED.saturating_sub(q.dirs.len());
        q.dirs.extend(subdirs.into_iter().take(room).rev());
        shared.ready.notify_all();
    }
}

/// List one directory and stat its entries; its subdirectories, opened.
fn read_ahead(shared: &Shared, dir: &OwnedFd) -> Vec<OwnedFd> {
    let Ok(mut names) = fsat::names(dir) else {
        return Vec::new();
    };
    names.sort_unstable();
    let mut subdirs = Vec::new();
    for name in names {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(st) = fsat::stat_at(dir, &name) else {
            continue;
        };
        if fsat::is_dir(&st)
            && let Ok(fd) = fsat::open_dir_at(dir, &name)
        {
            subdirs.push(fd);
        }
    }
    subdirs
}
