use super::*;
use crate::crypto::MasterKey;

fn setup() -> (Store, Keys) {
    (
        Store::memory().unwrap(),
        Keys::derive(&MasterKey::generate().unwrap()),
    )
}

#[test]
fn shared_locks_coexist_and_exclusive_excludes() {
    let (store, keys) = setup();
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

fn foreign(refreshed: jiff::Timestamp, lease_secs: Option<u64>) -> LockInfo {
    LockInfo {
        host: "elsewhere".into(),
        pid: 1,
        username: "u".into(),
        exclusive: true,
        operation: "prune".into(),
        created: refreshed,
        refreshed,
        lease_secs,
        session: None,
        released: false,
    }
}

#[test]
fn stale_locks_are_detected_and_removed() {
    let (store, keys) = setup();
    let old = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2);
    let info = foreign(old, None);
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

#[test]
fn a_lock_is_judged_by_the_lease_it_declares() {
    let now = jiff::Timestamp::now();
    let ten_s_ago = now - jiff::SignedDuration::from_secs(10);
    // Old locks without a lease: the default half hour.
    assert!(!foreign(ten_s_ago, None).is_stale(now));
    assert!(foreign(ten_s_ago, Some(5)).is_stale(now));
    assert!(!foreign(ten_s_ago, Some(60)).is_stale(now));
    // A forged lease cannot keep everyone out for ever, nor be zero.
    let year_ago = now - jiff::SignedDuration::from_hours(24 * 365);
    assert!(foreign(year_ago, Some(u64::MAX)).is_stale(now));
    assert_eq!(foreign(now, Some(0)).lease(), MIN_LEASE);
}

#[test]
fn leases_parse_with_units_and_bounds() {
    assert_eq!(parse_lease("4s").unwrap(), Duration::from_secs(4));
    assert_eq!(parse_lease("90").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_lease("10m").unwrap(), Duration::from_secs(600));
    assert_eq!(parse_lease("2h").unwrap(), Duration::from_secs(7200));
    for bad in ["", "1s", "25h", "x", "5d", "-3s", "99999999999999999999h"] {
        let e = parse_lease(bad).unwrap_err();
        assert!(e.to_string().contains(LEASE_VAR), "{bad:?}: {e}");
    }
    assert_eq!(refresh_interval(DEFAULT_LEASE), Duration::from_secs(300));
    assert_eq!(commit_window(DEFAULT_LEASE), Duration::from_secs(1350));
}

#[test]
fn a_holder_whose_refresh_is_too_old_stops_and_never_refreshes_again() {
    let (store, keys) = setup();
    let lock = LockGuard::acquire_with_lease(&store, &keys, false, "backup", MIN_LEASE).unwrap();
    lock.confirm().unwrap();
    // As if the process had been stopped for ten seconds.
    *lock.held.last_refresh.lock() = boottime().saturating_sub(Duration::from_secs(10));
    let err = lock.confirm().unwrap_err();
    assert!(matches!(err, Error::LockLost(_)), "{err}");
    assert!(err.to_string().contains("last refreshed"), "{err}");
    assert!(lock.held().is_lost());
    // The refresher (every third of a second) leaves the lost lock alone.
    let id = lock.id();
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(lock.id(), id);
    assert!(lock.confirm().is_err());
}

#[test]
fn a_removed_lock_is_noticed_and_not_brought_back() {
    let (store, keys) = setup();
    let lock = LockGuard::acquire_with_lease(&store, &keys, true, "prune", MIN_LEASE).unwrap();
    assert_eq!(unlock(&store, &keys, true).unwrap().len(), 1);
    let err = lock.confirm().unwrap_err();
    assert!(err.to_string().contains("removed"), "{err}");
    // The refresher does not write a new object for it.
    std::thread::sleep(Duration::from_millis(900));
    assert!(list_locks(&store, &keys).unwrap().is_empty());
}

#[test]
fn a_running_holder_keeps_its_lock_fresh() {
    let (store, keys) = setup();
    let lock = LockGuard::acquire_with_lease(&store, &keys, false, "backup", MIN_LEASE).unwrap();
    let first = lock.id();
    // Three leases long: refreshed all along, never stale, always confirmed.
    for _ in 0..12 {
        std::thread::sleep(Duration::from_millis(500));
        lock.confirm().unwrap();
        let locks = list_locks(&store, &keys).unwrap();
        assert_eq!(locks.len(), 1);
        let info = locks[0].1.as_ref().unwrap();
        assert!(!info.is_stale(jiff::Timestamp::now()));
        assert_eq!(info.lease_secs, Some(2));
    }
    assert_ne!(lock.id(), first);
    drop(lock);
    assert!(list_locks(&store, &keys).unwrap().is_empty());
}

/// A store with a backup host's rights (no deletes, create-only puts) and
/// one with full rights on the same objects.
fn restricted_and_full() -> (Store, Store, Arc<cairn_testkit::faults::NoDelete>) {
    let inner: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let no_delete = Arc::new(cairn_testkit::faults::NoDelete::new(inner.clone()));
    let restricted = Store::remote(no_delete.clone(), "memory:restricted".into()).unwrap();
    let full = Store::from_object_store(inner, "memory:".into()).unwrap();
    (restricted, full, no_delete)
}

#[test]
fn a_host_that_may_not_delete_releases_its_lock_with_a_marker() {
    let (restricted, full, no_delete) = restricted_and_full();
    let keys = Keys::derive(&MasterKey::generate().unwrap());
    let lock =
        LockGuard::acquire_with_lease(&restricted, &keys, false, "backup", MIN_LEASE).unwrap();
    // Refreshed every third of a second; the old objects stay.
    std::thread::sleep(Duration::from_millis(1200));
    lock.confirm().unwrap();
    let objects = list_locks(&full, &keys).unwrap();
    assert!(objects.len() > 2, "{}", objects.len());
    assert!(no_delete.refused.load(Ordering::SeqCst) >= 1);
    // Held: a prune is kept out.
    let err = LockGuard::acquire(&full, &keys, true, "prune").unwrap_err();
    assert!(matches!(err, Error::Locked(_)), "{err}");
    drop(lock);
    // Released by a marker: a prune may start at once, though the objects
    // are all still there and the newest is within its lease.
    let locks = list_locks(&full, &keys).unwrap();
    let markers: Vec<_> = locks
        .iter()
        .filter(|(_, i)| i.as_ref().unwrap().released)
        .collect();
    assert_eq!(markers.len(), 1);
    let session = markers[0].1.as_ref().unwrap().session.clone().unwrap();
    assert!(
        locks
            .iter()
            .all(|(_, i)| i.as_ref().unwrap().session.as_deref() == Some(session.as_str()))
    );
    let prune = LockGuard::acquire(&full, &keys, true, "prune").unwrap();
    drop(prune);
    // The host with full rights cleans up, leaving nothing.
    let removed = unlock(&full, &keys, false).unwrap();
    assert_eq!(removed.len(), locks.len());
    assert!(
        removed.last().unwrap().1.contains("release marker"),
        "{removed:?}"
    );
    assert!(list_locks(&full, &keys).unwrap().is_empty());
    // And the restricted host can tell it may not.
    assert!(restricted.check_delete_rights().unwrap_err().is_refused());
    full.check_delete_rights().unwrap();
}

#[test]
fn a_release_marker_ends_only_a_shared_lock() {
    let (store, keys) = setup();
    let now = jiff::Timestamp::now();
    let mut exclusive = foreign(now, Some(600));
    exclusive.session = Some("ab".repeat(16));
    write_lock(&store, &keys, &exclusive).unwrap();
    let mut marker = exclusive.clone();
    marker.released = true;
    write_lock(&store, &keys, &marker).unwrap();
    // A forged marker for an exclusive lock changes nothing.
    let err = LockGuard::acquire(&store, &keys, false, "backup").unwrap_err();
    assert!(matches!(err, Error::Locked(_)), "{err}");
    // The same for a shared lock releases it.
    let (store, keys) = setup();
    let mut shared = exclusive.clone();
    shared.exclusive = false;
    write_lock(&store, &keys, &shared).unwrap();
    assert!(LockGuard::acquire(&store, &keys, true, "prune").is_err());
    let mut marker = shared.clone();
    marker.released = true;
    write_lock(&store, &keys, &marker).unwrap();
    drop(LockGuard::acquire(&store, &keys, true, "prune").unwrap());
}
