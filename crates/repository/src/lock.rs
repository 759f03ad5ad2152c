//! Repository locks. Backups take a shared lock; operations that delete take
//! an exclusive one. A lock is a sealed JSON object under `locks/` naming the
//! host, process and time; a background thread refreshes it (writes a new
//! object, then deletes the old) so that a lock whose refresh is older than
//! [`STALE_AFTER`], or whose process is gone from this host, can be detected
//! and removed with `cairn unlock`.
//!
//! Acquisition is write-then-check: write our lock, list the others, and
//! back off (delete ours, fail) if any live lock conflicts. Two contenders
//! may both back off; they can never both proceed.

use crate::crypto::{self, Keys, Sealed};
use crate::error::{Error, Result};
use crate::id::LockId;
use crate::store::{ObjectKind, Store};
use crossbeam_channel::{Sender, bounded};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A lock not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// How often a held lock is refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

/// What a lock object records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Host holding it.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// User.
    pub username: String,
    /// Exclusive (deleting) or shared.
    pub exclusive: bool,
    /// What the holder is doing (`backup`, `prune`...).
    pub operation: String,
    /// When it was first taken.
    pub created: jiff::Timestamp,
    /// When this object was written.
    pub refreshed: jiff::Timestamp,
}

impl LockInfo {
    /// Whether the lock can be considered abandoned.
    pub fn is_stale(&self, now: jiff::Timestamp) -> bool {
        let age = now.duration_since(self.refreshed);
        if age > jiff::SignedDuration::try_from(STALE_AFTER).unwrap_or(jiff::SignedDuration::MAX) {
            return true;
        }
        self.host == crate::util::hostname() && !process_alive(self.pid)
    }

    fn describe(&self, id: &LockId) -> String {
        format!(
            "{} lock {} held by {} (pid {}, user {}) on {} for {}, since {}, refreshed {}",
            if self.exclusive {
                "an exclusive"
            } else {
                "a shared"
            },
            id.short(),
            self.host,
            self.pid,
            self.username,
            self.host,
            self.operation,
            self.created,
            self.refreshed
        )
    }
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    #[allow(unsafe_code)]
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn write_lock(store: &Store, keys: &Keys, info: &LockInfo) -> Result<LockId> {
    let id = LockId::random()?;
    let json = serde_json::to_vec(info).map_err(|e| Error::invalid("lock", e.to_string()))?;
    let bytes = crypto::seal_object(keys, Sealed::Lock, &json)?;
    store.put(ObjectKind::Lock, &id.to_hex(), bytes.into())?;
    Ok(id)
}

/// Every lock object, decoded where possible.
pub fn list_locks(store: &Store, keys: &Keys) -> Result<Vec<(LockId, Result<LockInfo>)>> {
    let listing = store.list(ObjectKind::Lock)?;
    let mut out = Vec::new();
    for obj in listing.objects {
        let Ok(id) = LockId::from_hex(&obj.name) else {
            continue;
        };
        let info = match store.get(ObjectKind::Lock, &obj.name) {
            Ok(bytes) => {
                let what = format!("lock {}", id.short());
                crypto::open_object(keys, Sealed::Lock, &bytes, &what).and_then(|json| {
                    serde_json::from_slice::<LockInfo>(&json)
                        .map_err(|e| Error::corrupt(&what, e.to_string()))
                })
            }
            // Released between list and get.
            Err(e) if e.is_not_found() => continue,
            Err(e) => Err(e),
        };
        out.push((id, info));
    }
    Ok(out)
}

/// Remove stale locks (or, with `all`, every lock). Returns what was removed.
pub fn unlock(store: &Store, keys: &Keys, all: bool) -> Result<Vec<(LockId, String)>> {
    let now = jiff::Timestamp::now();
    let mut removed = Vec::new();
    for (id, info) in list_locks(store, keys)? {
        let (remove, why) = match &info {
            Ok(i) if all => (true, i.describe(&id)),
            Ok(i) => (i.is_stale(now), i.describe(&id)),
            Err(e) => (true, format!("unreadable lock {}: {e}", id.short())),
        };
        if remove {
            store.delete(ObjectKind::Lock, &id.to_hex())?;
            removed.push((id, why));
        }
    }
    Ok(removed)
}

/// Live locks that conflict with taking one of the given kind.
fn conflicts(
    store: &Store,
    keys: &Keys,
    own: Option<LockId>,
    exclusive: bool,
) -> Result<Vec<String>> {
    let now = jiff::Timestamp::now();
    let mut out = Vec::new();
    for (id, info) in list_locks(store, keys)? {
        if Some(id) == own {
            continue;
        }
        match info {
            Ok(i) if i.is_stale(now) => {}
            Ok(i) if exclusive || i.exclusive => out.push(i.describe(&id)),
            Ok(_) => {}
            Err(e) if exclusive => out.push(format!(
                "unreadable lock {} ({e}); remove it with `cairn unlock`",
                id.short()
            )),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// A held lock; released (deleted) on drop.
pub struct LockGuard {
    store: Store,
    current: Arc<Mutex<LockId>>,
    stop: Option<Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("id", &*self.current.lock())
            .finish()
    }
}

impl LockGuard {
    /// Take a lock, or fail with [`Error::Locked`] naming the holders.
    pub fn acquire(store: &Store, keys: &Keys, exclusive: bool, operation: &str) -> Result<Self> {
        let blocking = conflicts(store, keys, None, exclusive)?;
        if !blocking.is_empty() {
            return Err(locked_error(exclusive, operation, &blocking));
        }
        let now = jiff::Timestamp::now();
        let mut info = LockInfo {
            host: crate::util::hostname(),
            pid: std::process::id(),
            username: crate::util::username(),
            exclusive,
            operation: operation.to_string(),
            created: now,
            refreshed: now,
        };
        let id = write_lock(store, keys, &info)?;
        let blocking = conflicts(store, keys, Some(id), exclusive)?;
        if !blocking.is_empty() {
            store.delete(ObjectKind::Lock, &id.to_hex())?;
            return Err(locked_error(exclusive, operation, &blocking));
        }
        let current = Arc::new(Mutex::new(id));
        let (stop, stopped) = bounded::<()>(1);
        let refresher = {
            let store = store.clone();
            let keys = keys.clone();
            let current = Arc::clone(&current);
            std::thread::Builder::new()
                .name("cairn-lock".into())
                .spawn(move || {
                    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(REFRESH_EVERY)
                    {
                        info.refreshed = jiff::Timestamp::now();
                        match write_lock(&store, &keys, &info) {
                            Ok(new_id) => {
                                let old = std::mem::replace(&mut *current.lock(), new_id);
                                if let Err(e) = store.delete(ObjectKind::Lock, &old.to_hex()) {
                                    tracing::warn!(
                                        "could not remove old lock {}: {e}",
                                        old.short()
                                    );
                                }
                            }
                            Err(e) => tracing::warn!("could not refresh lock: {e}"),
                        }
                    }
                })
                .map_err(|e| Error::io("lock refresh thread", e))?
        };
        Ok(Self {
            store: store.clone(),
            current,
            stop: Some(stop),
            refresher: Some(refresher),
        })
    }

    /// The id of the current lock object.
    pub fn id(&self) -> LockId {
        *self.current.lock()
    }
}

fn locked_error(exclusive: bool, operation: &str, blocking: &[String]) -> Error {
    Error::Locked(format!(
        "cannot take {} lock for {operation}: the repository is locked by {}.\n\
         If that process is gone, `cairn unlock` removes stale locks.",
        if exclusive {
            "an exclusive"
        } else {
            "a shared"
        },
        blocking.join("; ")
    ))
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let id = *self.current.lock();
        if let Err(e) = self.store.delete(ObjectKind::Lock, &id.to_hex()) {
            tracing::warn!("could not release lock {}: {e}", id.short());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn shared_locks_coexist_and_exclusive_excludes() {
        let store = Store::memory().unwrap();
        let keys = Keys::derive(&MasterKey::generate().unwrap());
        let a = LockGuard::acquire(&store, &keys, false, "backup").unwrap();
        let b = LockGuard::acquire(&store, &keys, false, "backup").unwrap();
        let err = LockGuard::acquire(&store, &keys, true, "prune").unwrap_err();
        assert!(matches!(err, Error::Locked(_)), "{err}");
        assert!(err.to_string().contains("backup"));
        drop(a);
        drop(b);
        assert!(list_locks(&store, &keys).unwrap().is_empty());
        let x = LockGuard::acquire(&store, &keys, true, "prune").unwrap();
        assert!(LockGuard::acquire(&store, &keys, false, "backup").is_err());
        drop(x);
        LockGuard::acquire(&store, &keys, false, "backup").unwrap();
    }

    #[test]
    fn stale_locks_are_detected_and_removed() {
        let store = Store::memory().unwrap();
        let keys = Keys::derive(&MasterKey::generate().unwrap());
        let old = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2);
        let info = LockInfo {
            host: "elsewhere".into(),
            pid: 1,
            username: "u".into(),
            exclusive: true,
            operation: "prune".into(),
            created: old,
            refreshed: old,
        };
        write_lock(&store, &keys, &info).unwrap();
        // Stale: does not block.
        let g = LockGuard::acquire(&store, &keys, false, "backup").unwrap();
        drop(g);
        let removed = unlock(&store, &keys, false).unwrap();
        assert_eq!(removed.len(), 1);
        assert!(list_locks(&store, &keys).unwrap().is_empty());

        // A dead pid on this host is stale too.
        let mut dead = info.clone();
        dead.host = crate::util::hostname();
        dead.pid = u32::MAX - 1;
        dead.refreshed = jiff::Timestamp::now();
        assert!(dead.is_stale(jiff::Timestamp::now()));
        let mut live = dead.clone();
        live.pid = std::process::id();
        assert!(!live.is_stale(jiff::Timestamp::now()));
    }
}
