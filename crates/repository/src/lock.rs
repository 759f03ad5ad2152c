//! Repository locks, and the rule that binds their holders.
//!
//! Writers (backup, log push, verify records, account events, key changes,
//! `sync --delete`) take shared locks; operations that delete (forget,
//! prune, repair) take an exclusive one. A lock is a sealed JSON object
//! under `locks/` naming the host, process and time, and the **lease** its
//! holder promises to keep: a background thread refreshes the lock every
//! sixth of the lease (writes a new object, then deletes the old), and a
//! lock whose refresh is older than its lease, or whose process is gone
//! from this host, is stale: other processes ignore it and `cairn unlock`
//! removes it.
//!
//! Acquisition is write-then-check: write our lock, list the others, and
//! back off (release ours, fail) if any live lock conflicts. Two contenders
//! may both back off; they can never both proceed.
//!
//! Holders whose credentials may not delete (a backup host's, FORMAT.md
//! "Hosts without delete rights") never need to: a refresh leaves the old
//! object to go stale by its time, and a shared lock is released by
//! writing a **release marker** (an object of the same `session` with
//! `released`), after which every object of that session is stale. A host
//! with delete rights (`cairn unlock`, and every prune) removes such
//! objects. Exclusive locks are always deleted: taking one needs delete
//! rights ([`crate::Repository::require_delete_rights`]).
//!
//! The holder's side of the bargain ([`LockGuard::confirm`]): immediately
//! before each commit point (an index object, a snapshot or segment
//! manifest, any delete) a holder confirms that its last successful refresh
//! is younger than three quarters of the lease, measured on `CLOCK_BOOTTIME`
//! (which keeps running while the process is stopped or the machine
//! sleeps), and, with a `HEAD`, that its lock object still exists in the
//! store; after writing an index object or manifest it confirms again and
//! takes the object back if the lock was lost meanwhile. Otherwise
//! the lock may have been judged stale and another process may be deleting
//! data: the holder stops without committing ([`Error::LockLost`]). Once
//! lost, a lock is never refreshed again, so a stopped process that wakes
//! up cannot bring its lock back from the dead. `docs/FORMAT.md`
//! ("Concurrency and deletion") states the protocol and its assumptions.

use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::id::LockId;
use crate::layout::ObjectKind;
use crate::store::Store;
pub use cairn_format::lock::{DEFAULT_LEASE, LockInfo, MAX_LEASE, MIN_LEASE};
use crossbeam_channel::{Sender, bounded};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The environment variable that sets the lease of the locks this process
/// takes (`4s`, `10m`, `1h`; for tests and special set-ups).
pub const LEASE_VAR: &str = "CAIRN_LOCK_LEASE";

/// The time since boot, suspend included; the clock a holder judges its
/// own lease by (wall time can jump, `CLOCK_MONOTONIC` stops in suspend).
pub fn boottime() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Parse a lease: a number of seconds, or a number with `s`, `m` or `h`.
pub fn parse_lease(text: &str) -> Result<Duration> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let bad = || {
        Error::invalid(
            LEASE_VAR,
            format!(
                "{text:?} is not a lease (a number of seconds, or 30s, 10m, 1h; between {}s and {}h)",
                MIN_LEASE.as_secs(),
                MAX_LEASE.as_secs() / 3600
            ),
        )
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }
    .ok_or_else(bad)?;
    let lease = Duration::from_secs(secs);
    if !(MIN_LEASE..=MAX_LEASE).contains(&lease) {
        return Err(bad());
    }
    Ok(lease)
}

/// The lease of the locks this process takes.
pub fn configured_lease() -> Result<Duration> {
    match std::env::var(LEASE_VAR) {
        Ok(v) if !v.is_empty() => parse_lease(&v),
        _ => Ok(DEFAULT_LEASE),
    }
}

/// How often a lock with this lease is refreshed.
pub fn refresh_interval(lease: Duration) -> Duration {
    lease / 6
}

/// How old a holder's last refresh may be when it commits: three quarters
/// of the lease. The quarter left covers clock skew between hosts and the
/// time one commit step takes (FORMAT.md states the assumptions).
pub fn commit_window(lease: Duration) -> Duration {
    lease / 4 * 3
}

/// What this host can tell of a lock beyond its fields.
pub trait LockState {
    /// Whether the lock can be considered abandoned: not refreshed within
    /// its lease, or held by a process of this host that is gone.
    fn is_stale(&self, now: jiff::Timestamp) -> bool;
    /// A description for messages.
    fn describe(&self, id: &LockId) -> String;
}

impl LockState for LockInfo {
    fn is_stale(&self, now: jiff::Timestamp) -> bool {
        let age = now.duration_since(self.refreshed);
        if age > jiff::SignedDuration::try_from(self.lease()).unwrap_or(jiff::SignedDuration::MAX) {
            return true;
        }
        self.host == crate::util::hostname() && !process_alive(self.pid)
    }

    fn describe(&self, id: &LockId) -> String {
        if self.released {
            return format!(
                "the release marker {} of a shared lock of {} (pid {}) on {} for {}, released {}",
                id.short(),
                self.username,
                self.pid,
                self.host,
                self.operation,
                self.refreshed
            );
        }
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
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // Signal 0 only checks whether the process exists.
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

fn write_lock(store: &Store, keys: &Keys, info: &LockInfo) -> Result<LockId> {
    let id = LockId::random()?;
    let bytes = cairn_format::lock::seal(keys, info)?;
    store.put_object(&id, bytes.into())?;
    Ok(id)
}

/// Every lock object, decoded where possible.
pub fn list_locks(store: &Store, keys: &Keys) -> Result<Vec<(LockId, Result<LockInfo>)>> {
    read_locks(store, keys, None)
}

/// The lock objects, decoded where possible; with `newer_than`, only those
/// the store says were written after it (the rest are read as stale
/// without fetching them).
fn read_locks(
    store: &Store,
    keys: &Keys,
    newer_than: Option<jiff::Timestamp>,
) -> Result<Vec<(LockId, Result<LockInfo>)>> {
    let listing = store.list(ObjectKind::Lock)?;
    let (ids, names): (Vec<LockId>, Vec<String>) = listing
        .objects
        .into_iter()
        .filter(|o| match (newer_than, o.modified) {
            (Some(t), Some(m)) => m > t,
            _ => true,
        })
        .filter_map(|o| Some((LockId::from_hex(&o.name).ok()?, o.name)))
        .unzip();
    let infos = store.get_many_checked(ObjectKind::Lock, &names, 8, |name, bytes| -> Result<_> {
        let what = format!("lock {}", &name[..name.len().min(8)]);
        Ok(cairn_format::lock::open(keys, &bytes, &what)?)
    });
    let mut out = Vec::new();
    for (id, info) in ids.into_iter().zip(infos) {
        match info {
            // Released between list and get.
            Err(e) if e.is_not_found() => continue,
            info => out.push((id, info)),
        }
    }
    Ok(out)
}

/// The sessions whose shared lock a release marker ended.
fn released_sessions(locks: &[(LockId, Result<LockInfo>)]) -> std::collections::HashSet<String> {
    locks
        .iter()
        .filter_map(|(_, info)| info.as_ref().ok())
        .filter(|i| i.released && !i.exclusive)
        .filter_map(|i| i.session.clone())
        .collect()
}

/// Whether a lock object binds nobody: stale by its time or process, a
/// release marker, or an object of a shared lock its holder released.
fn is_dead(
    info: &LockInfo,
    released: &std::collections::HashSet<String>,
    now: jiff::Timestamp,
) -> bool {
    info.released
        || (!info.exclusive && info.session.as_ref().is_some_and(|s| released.contains(s)))
        || info.is_stale(now)
}

/// Remove stale locks, released ones and their markers (or, with `all`,
/// every lock). Returns what was removed. Needs delete rights.
pub fn unlock(store: &Store, keys: &Keys, all: bool) -> Result<Vec<(LockId, String)>> {
    let now = jiff::Timestamp::now();
    let locks = list_locks(store, keys)?;
    let released = released_sessions(&locks);
    let mut doomed = Vec::new();
    for (id, info) in locks {
        let (remove, marker, why) = match &info {
            Ok(i) if all => (true, i.released, i.describe(&id)),
            Ok(i) => (is_dead(i, &released, now), i.released, i.describe(&id)),
            Err(e) => (true, false, format!("unreadable lock {}: {e}", id.short())),
        };
        if remove {
            doomed.push((marker, id, why));
        }
    }
    // Markers last: a marker gone first would bring its session's other
    // objects back to life until their lease passes.
    doomed.sort_by_key(|(marker, _, _)| *marker);
    let mut removed = Vec::new();
    for (_, id, why) in doomed {
        store.delete_object(&id)?;
        removed.push((id, why));
    }
    Ok(removed)
}

/// How long before now a lock object must have been written to be stale
/// whatever it says: the longest lease and an hour for clock skew.
fn certainly_stale_before(now: jiff::Timestamp) -> Option<jiff::Timestamp> {
    let margin = jiff::SignedDuration::try_from(MAX_LEASE + Duration::from_secs(3600)).ok()?;
    now.checked_sub(margin).ok()
}

/// A fresh session id: 16 random bytes in hex.
fn new_session() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Live locks that conflict with taking one of the given kind.
fn conflicts(
    store: &Store,
    keys: &Keys,
    own: Option<LockId>,
    exclusive: bool,
) -> Result<Vec<String>> {
    let now = jiff::Timestamp::now();
    // Objects older than the longest lease are not even read: on a
    // repository whose backup hosts may not delete, they pile up until a
    // maintenance host removes them.
    let locks = read_locks(store, keys, certainly_stale_before(now))?;
    let released = released_sessions(&locks);
    let mut out = Vec::new();
    for (id, info) in locks {
        if Some(id) == own {
            continue;
        }
        match info {
            Ok(i) if is_dead(&i, &released, now) => {}
            Ok(i) if exclusive || i.exclusive => out.push(i.describe(&id)),
            Ok(_) => {}
            // A put-only host cannot tell a lock under the master key (an
            // older cairn's) from an exclusive one: it counts as one.
            Err(e) if exclusive || keys.is_put_only() => out.push(format!(
                "unreadable lock {} ({e}); remove it with `cairn unlock`",
                id.short()
            )),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Let a lock go: delete its object, or, where the store refuses deletes
/// (or refused one before), write a release marker for a shared lock.
fn release(store: &Store, keys: &Keys, info: &LockInfo, id: LockId, deletes_refused: bool) {
    if !deletes_refused {
        match store.delete_object(&id) {
            Ok(()) => return,
            Err(e) if e.is_refused() && !info.exclusive => {}
            Err(e) => {
                tracing::warn!("could not release lock {}: {e}", id.short());
                return;
            }
        }
    }
    let mut marker = info.clone();
    marker.released = true;
    marker.refreshed = jiff::Timestamp::now();
    if let Err(e) = write_lock(store, keys, &marker) {
        tracing::warn!(
            "could not release lock {} (no deletes allowed, and writing its release marker failed: {e}); it is stale once its lease has passed",
            id.short()
        );
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A held lock, shared by the guard, its refresher and the writers that
/// confirm it before committing.
#[derive(Debug)]
pub struct HeldLock {
    store: Store,
    keys: Keys,
    operation: String,
    exclusive: bool,
    lease: Duration,
    /// The current lock object; held while it is swapped or confirmed.
    current: Mutex<LockId>,
    /// Boot time just before the newest lock object was written.
    last_refresh: Mutex<Duration>,
    lost: AtomicBool,
    lost_why: Mutex<Option<String>>,
    /// Whether the store refused to delete our old lock object: from then
    /// on old objects are left to go stale, and release writes a marker.
    deletes_refused: AtomicBool,
}

impl HeldLock {
    /// The lock object currently standing for this lock.
    pub fn id(&self) -> LockId {
        *self.current.lock()
    }

    /// Whether the lock is known to be lost (a cheap check for loops).
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Whether this is an exclusive lock.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    fn lose(&self, why: String) {
        let mut slot = self.lost_why.lock();
        if slot.is_none() {
            tracing::warn!("lock for {} lost: {why}", self.operation);
            *slot = Some(why);
        }
        self.lost.store(true, Ordering::SeqCst);
    }

    fn lost_error(&self) -> Error {
        let why = self
            .lost_why
            .lock()
            .clone()
            .unwrap_or_else(|| "it was lost".into());
        Error::LockLost(format!(
            "the repository lock for {} is no longer safe to rely on: {why}. \
             Another process may have removed it as stale and pruned meanwhile, so nothing more is committed. \
             What was uploaded and not yet indexed is picked up by the next run",
            self.operation
        ))
    }

    /// Whether the last refresh is too old to commit on.
    fn check_age(&self) -> Result<()> {
        let age = boottime().saturating_sub(*self.last_refresh.lock());
        let window = commit_window(self.lease);
        if age >= window {
            self.lose(format!(
                "it was last refreshed {} ago, and a holder may go at most {} without a refresh \
                 (lease {}; was the process stopped or the machine asleep?)",
                human(age),
                human(window),
                human(self.lease)
            ));
            return Err(self.lost_error());
        }
        Ok(())
    }

    /// Confirm, immediately before a commit point, that the lock still
    /// binds: refreshed recently enough and its object still in the store.
    pub fn confirm(&self) -> Result<()> {
        if self.is_lost() {
            return Err(self.lost_error());
        }
        self.check_age()?;
        {
            let current = self.current.lock();
            match self.store.head_object(&*current) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    let short = current.short();
                    drop(current);
                    self.lose(format!(
                        "its lock object {short} was removed by another process (`cairn unlock`?)"
                    ));
                    return Err(self.lost_error());
                }
                Err(e) => return Err(e.into()),
            }
        }
        // The HEAD may have taken a while.
        self.check_age()
    }

    /// One refresh: a new object, then the old one checked and deleted.
    fn refresh(&self, info: &mut LockInfo) {
        if self.is_lost() || self.check_age().is_err() {
            return;
        }
        let started = boottime();
        info.refreshed = jiff::Timestamp::now();
        let new_id = match write_lock(&self.store, &self.keys, info) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!("could not refresh the lock: {e}");
                return;
            }
        };
        let mut current = self.current.lock();
        // Our old object gone means someone removed our lock: we do not
        // bring it back. (Removed after this check, it was removed while the
        // new object already existed, so whoever takes a lock next sees it.)
        match self.store.head_object(&*current) {
            Ok(Some(_)) => {}
            Ok(None) => {
                let _ = self.store.delete_object(&new_id);
                drop(current);
                self.lose(
                    "its lock object was removed by another process (`cairn unlock`?)".into(),
                );
                return;
            }
            Err(e) => {
                tracing::warn!("could not check the lock before refreshing it: {e}");
                let _ = self.store.delete_object(&new_id);
                return;
            }
        }
        let old = std::mem::replace(&mut *current, new_id);
        *self.last_refresh.lock() = started;
        drop(current);
        if self.deletes_refused.load(Ordering::SeqCst) {
            return;
        }
        match self.store.delete_object(&old) {
            Ok(()) => {}
            Err(e) if e.is_refused() => {
                tracing::info!(
                    "the store refuses deletes: old lock objects are left to go stale ({e})"
                );
                self.deletes_refused.store(true, Ordering::SeqCst);
            }
            Err(e) => tracing::warn!("could not remove old lock {}: {e}", old.short()),
        }
    }
}

/// A held lock; released (deleted) on drop.
pub struct LockGuard {
    held: Arc<HeldLock>,
    /// What our lock objects say (its session), for the release.
    info: LockInfo,
    stop: Option<Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("id", &self.held.id())
            .finish()
    }
}

impl LockGuard {
    /// Take a lock with the configured lease, or fail with
    /// [`Error::Locked`] naming the holders.
    pub fn acquire(store: &Store, keys: &Keys, exclusive: bool, operation: &str) -> Result<Self> {
        Self::acquire_with_lease(store, keys, exclusive, operation, configured_lease()?)
    }

    /// Take a lock with this lease.
    pub fn acquire_with_lease(
        store: &Store,
        keys: &Keys,
        exclusive: bool,
        operation: &str,
        lease: Duration,
    ) -> Result<Self> {
        let lease = lease.clamp(MIN_LEASE, MAX_LEASE);
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
            lease_secs: Some(lease.as_secs()),
            session: Some(new_session()?),
            released: false,
        };
        let started = boottime();
        let id = write_lock(store, keys, &info)?;
        let blocking = match conflicts(store, keys, Some(id), exclusive) {
            Ok(blocking) => blocking,
            Err(e) => {
                release(store, keys, &info, id, false);
                return Err(e);
            }
        };
        if !blocking.is_empty() {
            release(store, keys, &info, id, false);
            return Err(locked_error(exclusive, operation, &blocking));
        }
        let held = Arc::new(HeldLock {
            store: store.clone(),
            keys: keys.clone(),
            operation: operation.to_string(),
            exclusive,
            lease,
            current: Mutex::new(id),
            last_refresh: Mutex::new(started),
            lost: AtomicBool::new(false),
            lost_why: Mutex::new(None),
            deletes_refused: AtomicBool::new(false),
        });
        let released_info = info.clone();
        let (stop, stopped) = bounded::<()>(1);
        let refresher = {
            let held = Arc::clone(&held);
            std::thread::Builder::new()
                .name("cairn-lock".into())
                .spawn(move || {
                    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(refresh_interval(held.lease))
                    {
                        held.refresh(&mut info);
                        if held.is_lost() {
                            break;
                        }
                    }
                })
                .map_err(|e| Error::io("lock refresh thread", e))?
        };
        Ok(Self {
            held,
            info: released_info,
            stop: Some(stop),
            refresher: Some(refresher),
        })
    }

    /// The id of the current lock object.
    pub fn id(&self) -> LockId {
        self.held.id()
    }

    /// The shared state, for writers that confirm before committing.
    pub fn held(&self) -> &Arc<HeldLock> {
        &self.held
    }

    /// See [`HeldLock::confirm`].
    pub fn confirm(&self) -> Result<()> {
        self.held.confirm()
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
        let held = &self.held;
        release(
            &held.store,
            &held.keys,
            &self.info,
            held.id(),
            held.deletes_refused.load(Ordering::SeqCst),
        );
    }
}

#[cfg(test)]
mod tests;
