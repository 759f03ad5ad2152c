//! Every manifest kind stored and read the same way: the one place that
//! lists a kind, reads many at once, skips names that vanished under a
//! concurrent delete, opens them under [`cairn_format::manifest`]'s rule
//! and orders them by (time, id).
//!
//! A [`Manifests`] works on any store with any keys: the repository builds
//! one over its own store ([`crate::Repository::manifests`]), a sync over a
//! destination with the source's keys. Writers confirm their lock before
//! [`Manifests::save`] and [`Manifests::delete`]; this module knows no locks.

use crate::cache::IndexCache;
use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::snapshot::Snapshot;
use crate::store::Store;
use cairn_format::crypto::Keys;
use cairn_format::layout::ObjectName;
use cairn_format::manifest::{self, Manifest};

/// How many manifests are read at once.
const READ_CONCURRENCY: usize = 16;

/// Manifests of one store, opened with one set of keys.
#[derive(Debug, Clone, Copy)]
pub struct Manifests<'a> {
    store: &'a Store,
    keys: &'a Keys,
}

/// The manifests of a kind that opened, in (time, id) order, and the ones
/// that did not, by name.
#[derive(Debug)]
pub struct Loaded<M: Manifest> {
    /// Opened manifests, oldest first.
    pub good: Vec<(M::Id, M)>,
    /// Manifests that are stored but could not be read.
    pub bad: Vec<(M::Id, Error)>,
}

impl<M: Manifest> Loaded<M> {
    /// The manifests, or the first error if any could not be read.
    pub fn strict(self) -> Result<Vec<(M::Id, M)>> {
        match self.bad.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(self.good),
        }
    }
}

impl<'a> Manifests<'a> {
    /// Manifests of `store`, opened with `keys`.
    pub fn new(store: &'a Store, keys: &'a Keys) -> Self {
        Self { store, keys }
    }

    /// The names of every stored manifest of kind `M`, sorted (names that
    /// are not valid for the kind are not listed; see [`Store::list_names`]).
    pub fn names<M: Manifest>(&self) -> Result<Vec<String>> {
        Ok(self.store.list_names(M::KIND)?)
    }

    /// Read and open (up to the JSON) the manifests stored as `names`, many
    /// at once; a bad read is read again. Names that vanished between the
    /// listing and the read (a concurrent delete) are left out; names that
    /// hold no id of the kind are skipped.
    pub fn fetch<M: Manifest>(&self, names: &[String]) -> Vec<(String, M::Id, Result<Vec<u8>>)> {
        let ids: Vec<(String, M::Id)> = names
            .iter()
            .filter_map(|n| M::id_from_name(n).map(|id| (n.clone(), id)))
            .collect();
        let wanted: Vec<String> = ids.iter().map(|(n, _)| n.clone()).collect();
        let fetched = self.store.get_many_checked(
            M::KIND,
            &wanted,
            READ_CONCURRENCY,
            |name, bytes| -> Result<_> {
                let id = M::id_from_name(name).ok_or_else(|| {
                    Error::corrupt(format!("{} {name}", M::NOUN), "not a valid name")
                })?;
                Ok(manifest::open_sealed::<M>(self.keys, &id, &bytes)?)
            },
        );
        ids.into_iter()
            .zip(fetched)
            .filter(|(_, r)| !matches!(r, Err(e) if e.is_not_found()))
            .map(|((name, id), r)| (name, id, r))
            .collect()
    }

    /// Every manifest of kind `M`, oldest first, and those that could not
    /// be read. Whether an unreadable one is tolerable is the caller's
    /// decision.
    pub fn load_all<M: Manifest>(&self) -> Result<Loaded<M>> {
        let names = self.names::<M>()?;
        let (opened, bad) = self.fetch_decoded::<M>(&names);
        let mut good: Vec<(M::Id, M)> = opened.into_iter().map(|(_, id, m, _)| (id, m)).collect();
        sort_by_time(&mut good);
        Ok(Loaded { good, bad })
    }

    /// Every snapshot, oldest first (only `account`'s when given), through
    /// the local snapshot cache: the store is listed once, manifests not
    /// cached yet are read and remembered, cached ones no longer listed
    /// (a forget elsewhere) are dropped. Unreadable manifests are never
    /// cached; all of them are returned, whatever the account.
    pub fn snapshots_cached(
        &self,
        cache: &IndexCache,
        account: Option<&str>,
    ) -> Result<Loaded<Snapshot>> {
        // Both sorted: one merge finds what is new and what is gone.
        let names = self.names::<Snapshot>()?;
        let cached = cache.cached_snapshot_names()?;
        let (mut new, mut gone) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        while i < names.len() || j < cached.len() {
            match (names.get(i), cached.get(j)) {
                (Some(n), Some(c)) if n == c => (i, j) = (i + 1, j + 1),
                (Some(n), Some(c)) if n < c => {
                    new.push(n.clone());
                    i += 1;
                }
                (Some(n), None) => {
                    new.push(n.clone());
                    i += 1;
                }
                (_, Some(c)) => {
                    gone.push(c.clone());
                    j += 1;
                }
                (None, None) => break,
            }
        }
        let (opened, mut bad) = self.fetch_decoded::<Snapshot>(&new);
        let added: Vec<(String, String, Vec<u8>)> = opened
            .into_iter()
            .map(|(name, _, s, json)| (name, s.account, json))
            .collect();
        cache.update_snapshots(&added, &gone, true)?;
        let (mut good, stale) = decode_cached(cache, account)?;
        if !stale.is_empty() {
            // A cached row that no longer decodes is read again: the
            // store decides, as it does for manifests not cached.
            let (opened, unreadable) = self.fetch_decoded::<Snapshot>(&stale);
            bad.extend(unreadable);
            let mut again = Vec::with_capacity(opened.len());
            for (name, id, s, json) in opened {
                again.push((name, s.account.clone(), json));
                if account.is_none_or(|a| s.account == a) {
                    good.push((id, s));
                }
            }
            cache.update_snapshots(&again, &stale, false)?;
        }
        sort_by_time(&mut good);
        Ok(Loaded { good, bad })
    }

    /// The newest snapshot of `account` that `wanted` accepts, from the
    /// local snapshot cache without listing the store: each candidate is
    /// confirmed to still exist (one HEAD), and one that is gone is
    /// dropped from the cache. A cache never filled from a listing is
    /// filled first. Snapshots that other processes wrote through another
    /// cache are not seen until the next listing; that is harmless where
    /// this serves (choosing a backup's parent, which any snapshot of the
    /// same source does correctly).
    pub fn latest_cached(
        &self,
        cache: &IndexCache,
        account: &str,
        wanted: &dyn Fn(&Snapshot) -> bool,
    ) -> Result<Option<(SnapshotId, Snapshot)>> {
        let mut candidates = if cache.snapshots_listed()? {
            let (mut c, stale) = decode_cached(cache, Some(account))?;
            // Rows that no longer decode are read again at the next listing.
            cache.update_snapshots(&[], &stale, false)?;
            sort_by_time(&mut c);
            c
        } else {
            self.snapshots_cached(cache, Some(account))?.good
        };
        candidates.retain(|(_, s)| wanted(s));
        while let Some((id, snap)) = candidates.pop() {
            let name = id.object_name();
            if self.store.head(Snapshot::KIND, &name)?.is_some() {
                return Ok(Some((id, snap)));
            }
            cache.update_snapshots(&[], &[name], false)?;
        }
        Ok(None)
    }

    /// Read and decode the manifests stored as `names`: (name, id,
    /// manifest, its JSON) for each that opened, and the ones that did not.
    #[allow(clippy::type_complexity)]
    fn fetch_decoded<M: Manifest>(
        &self,
        names: &[String],
    ) -> (Vec<(String, M::Id, M, Vec<u8>)>, Vec<(M::Id, Error)>) {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (name, id, json) in self.fetch::<M>(names) {
            match json.and_then(|json| {
                let m = manifest::decode_plaintext::<M>(&json, &manifest::describe::<M>(&id))?;
                Ok((m, json))
            }) {
                Ok((m, json)) => good.push((name, id, m, json)),
                Err(e) => bad.push((id, e)),
            }
        }
        (good, bad)
    }

    /// [`Manifests::load_all`] through the local cache: one listing, and
    /// only manifests not cached yet are read (and then remembered);
    /// cached ones no longer listed are dropped. Unreadable ones are never
    /// cached. For immutable, hash-named kinds only.
    pub fn load_all_cached<M: Manifest>(&self, cache: &IndexCache) -> Result<Loaded<M>> {
        let dir = M::KIND.dir();
        let names = self.names::<M>()?;
        let listed: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut good = Vec::new();
        let mut bad = Vec::new();
        let mut gone = Vec::new();
        let mut cached_names = std::collections::HashSet::new();
        for (name, json) in cache.cached_manifests(dir)? {
            if !listed.contains(name.as_str()) {
                gone.push(name);
                continue;
            }
            let Some(id) = M::id_from_name(&name) else {
                gone.push(name);
                continue;
            };
            match manifest::decode_plaintext::<M>(&json, &manifest::describe::<M>(&id)) {
                Ok(m) => {
                    good.push((id, m));
                    cached_names.insert(name);
                }
                // Another build's entry: read it again from the store.
                Err(_) => gone.push(name),
            }
        }
        let new: Vec<String> = names
            .iter()
            .filter(|n| !cached_names.contains(*n))
            .cloned()
            .collect();
        let (opened, unreadable) = self.fetch_decoded::<M>(&new);
        bad.extend(unreadable);
        let mut added = Vec::with_capacity(opened.len());
        for (name, id, m, json) in opened {
            good.push((id, m));
            added.push((name, json));
        }
        cache.update_manifests(dir, &added, &gone)?;
        sort_by_time(&mut good);
        Ok(Loaded { good, bad })
    }

    /// [`Manifests::load_all_cached`]; any that cannot be read is an error.
    pub fn load_all_cached_strict<M: Manifest>(
        &self,
        cache: &IndexCache,
    ) -> Result<Vec<(M::Id, M)>> {
        self.load_all_cached::<M>(cache)?.strict()
    }

    /// Every manifest of kind `M`, oldest first; any that cannot be read is
    /// an error.
    pub fn load_all_strict<M: Manifest>(&self) -> Result<Vec<(M::Id, M)>> {
        self.load_all::<M>()?.strict()
    }

    /// Read and open one manifest.
    pub fn load<M: Manifest>(&self, id: &M::Id) -> Result<M>
    where
        M::Id: ObjectName,
    {
        self.store.get_checked(M::KIND, &id.object_name(), |bytes| {
            Ok(manifest::open::<M>(self.keys, id, &bytes)?)
        })
    }

    /// Seal and store a manifest; returns its id and object name. The
    /// caller has confirmed its lock.
    pub fn save<M: Manifest>(&self, m: &M) -> Result<(M::Id, String)> {
        let (id, bytes) = manifest::seal(self.keys, m)?;
        let name = m.object_name(&id, self.keys);
        self.store.put(M::KIND, &name, bytes.into())?;
        Ok((id, name))
    }

    /// Delete the manifest stored as `name` (absent is not an error). The
    /// caller has confirmed its lock.
    pub fn delete_named<M: Manifest>(&self, name: &str) -> Result<()> {
        Ok(self.store.delete(M::KIND, name)?)
    }

    /// Delete one manifest by id. The caller has confirmed its lock.
    pub fn delete<M: Manifest>(&self, id: &M::Id) -> Result<()>
    where
        M::Id: ObjectName,
    {
        self.delete_named::<M>(&id.object_name())
    }
}

/// Oldest first, ties by id.
fn sort_by_time<M: Manifest>(v: &mut [(M::Id, M)]) {
    v.sort_by(|a, b| a.1.order_time().cmp(&b.1.order_time()).then(a.0.cmp(&b.0)));
}

/// The cached snapshots (only `account`'s when given), and the names of
/// cached rows that no longer decode (a cache written by another build).
#[allow(clippy::type_complexity)]
fn decode_cached(
    cache: &IndexCache,
    account: Option<&str>,
) -> Result<(Vec<(SnapshotId, Snapshot)>, Vec<String>)> {
    let mut good = Vec::new();
    let mut stale = Vec::new();
    cache.for_each_cached_snapshot(account, &mut |name, json| {
        let decoded = Snapshot::id_from_name(name).and_then(|id| {
            manifest::decode_plaintext::<Snapshot>(json, &manifest::describe::<Snapshot>(&id))
                .ok()
                .map(|s| (id, s))
        });
        match decoded {
            Some(entry) => good.push(entry),
            None => stale.push(name.to_string()),
        }
    })?;
    Ok((good, stale))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use crate::repo::{CacheLocation, Repository};
    use crate::snapshot::{SNAPSHOT_VERSION, Snapshot, SnapshotStatus, Summary};
    use crate::test_repo::{PASSWORD, default_opts, repo_on};
    use crate::{SnapshotId, Store, TreeId};
    use cairn_format::manifest::Manifest;

    fn snap(account: &str, host: &str, secs: i64) -> Snapshot {
        Snapshot {
            version: SNAPSHOT_VERSION,
            time: jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap(),
            host: host.into(),
            username: "u".into(),
            account: account.into(),
            paths: vec![],
            tags: vec![],
            parent: None,
            tree: TreeId::from_bytes([7; 32]),
            status: SnapshotStatus::Complete,
            summary: Summary::default(),
            program: "test".into(),
        }
    }

    fn ids(v: &[(SnapshotId, Snapshot)]) -> Vec<SnapshotId> {
        v.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn cached_listings_follow_another_cache_adding_and_forgetting() {
        let store = Store::memory().unwrap();
        let a = repo_on(store.clone(), &default_opts());
        let b = Repository::open(store, PASSWORD, CacheLocation::InMemory).unwrap();
        let (s1, s2) = {
            let _lock = a.lock(false, "backup").unwrap();
            (
                a.save_snapshot(&snap("x", "h", 1)).unwrap(),
                a.save_snapshot(&snap("y", "h", 2)).unwrap(),
            )
        };
        assert_eq!(ids(&a.snapshots().unwrap().0), vec![s1, s2]);

        // Another host adds one and forgets one.
        let s3 = {
            let _lock = b.lock(false, "backup").unwrap();
            b.save_snapshot(&snap("x", "h", 3)).unwrap()
        };
        {
            let _lock = b.lock(true, "forget").unwrap();
            b.remove_snapshot(&s1).unwrap();
        }
        assert_eq!(ids(&a.snapshots().unwrap().0), vec![s2, s3]);
        assert_eq!(ids(&a.snapshots_in(Some("x")).unwrap().0), vec![s3]);
        assert_eq!(ids(&a.snapshots_in(Some("y")).unwrap().0), vec![s2]);
        assert!(a.snapshots_in(Some("z")).unwrap().0.is_empty());

        // A parent named only by the cache but forgotten elsewhere is
        // passed over, and the cache forgets it.
        let s4 = {
            let _lock = a.lock(false, "backup").unwrap();
            a.save_snapshot(&snap("x", "h", 4)).unwrap()
        };
        {
            let _lock = b.lock(true, "forget").unwrap();
            b.remove_snapshot(&s4).unwrap();
        }
        let on_h = |s: &Snapshot| s.host == "h";
        let (parent, _) = a.latest_cached("x", &on_h).unwrap().unwrap();
        assert_eq!(parent, s3);
        assert!(
            a.latest_cached("x", &|s| s.host == "other")
                .unwrap()
                .is_none()
        );
        // The listing agrees.
        assert_eq!(ids(&a.snapshots().unwrap().0), vec![s2, s3]);

        // A cache never filled from a listing lists before it answers.
        let c = Repository::open(a.store().clone(), PASSWORD, CacheLocation::InMemory).unwrap();
        assert_eq!(c.latest_cached("x", &on_h).unwrap().unwrap().0, s3);
    }

    #[test]
    fn a_cached_row_that_no_longer_decodes_is_read_again() {
        let repo = crate::test_repo::memory_repo(&default_opts());
        let id = {
            let _lock = repo.lock(false, "backup").unwrap();
            repo.save_snapshot(&snap("x", "h", 1)).unwrap()
        };
        assert_eq!(ids(&repo.snapshots().unwrap().0), vec![id]);
        let cache = repo.index().unwrap();
        let spoil = || {
            let row = (id.to_hex(), "x".to_string(), b"{not json".to_vec());
            cache.update_snapshots(&[row], &[], false).unwrap();
        };
        spoil();
        for account in [Some("x"), None, Some("x")] {
            let (ok, bad) = repo.snapshots_in(account).unwrap();
            assert_eq!(ids(&ok), vec![id], "{account:?}");
            assert!(bad.is_empty());
        }
        // The parent choice drops such a row and finds it again next time.
        spoil();
        assert!(repo.latest_cached("x", &|_| true).unwrap().is_none());
        assert_eq!(ids(&repo.snapshots_in(Some("x")).unwrap().0), vec![id]);
        assert_eq!(repo.latest_cached("x", &|_| true).unwrap().unwrap().0, id);
    }

    #[test]
    fn unreadable_manifests_are_reported_and_never_cached() {
        let repo = crate::test_repo::memory_repo(&default_opts());
        let good = {
            let _lock = repo.lock(false, "backup").unwrap();
            repo.save_snapshot(&snap("x", "h", 1)).unwrap()
        };
        let junk = SnapshotId::from_bytes([9; 32]);
        repo.store()
            .put(
                Snapshot::KIND,
                &junk.to_hex(),
                bytes::Bytes::from_static(b"junk"),
            )
            .unwrap();
        for _ in 0..2 {
            let (ok, bad) = repo.snapshots_in(Some("x")).unwrap();
            assert_eq!(ids(&ok), vec![good]);
            assert_eq!(bad.len(), 1);
            assert_eq!(bad[0].0, junk);
        }
    }
}
