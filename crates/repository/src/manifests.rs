//! Every manifest kind stored and read the same way: the one place that
//! lists a kind, reads many at once, skips names that vanished under a
//! concurrent delete, opens them under [`cairn_format::manifest`]'s rule
//! and orders them by (time, id).
//!
//! A [`Manifests`] works on any store with any keys: the repository builds
//! one over its own store ([`crate::Repository::manifests`]), a sync over a
//! destination with the source's keys. Writers confirm their lock before
//! [`Manifests::save`] and [`Manifests::delete`]; this module knows no locks.

use crate::error::{Error, Result};
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

impl<'a> Manifests<'a> {
    /// Manifests of `store`, opened with `keys`.
    pub fn new(store: &'a Store, keys: &'a Keys) -> Self {
        Self { store, keys }
    }

    /// The names of every stored manifest of kind `M` (names that are not
    /// valid for the kind are not listed; see [`Store::list`]).
    pub fn names<M: Manifest>(&self) -> Result<Vec<String>> {
        Ok(self
            .store
            .list(M::KIND)?
            .objects
            .into_iter()
            .map(|o| o.name)
            .collect())
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
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (_, id, json) in self.fetch::<M>(&names) {
            let opened = json.and_then(|json| {
                Ok(manifest::decode_plaintext::<M>(
                    &json,
                    &manifest::describe::<M>(&id),
                )?)
            });
            match opened {
                Ok(m) => good.push((id, m)),
                Err(e) => bad.push((id, e)),
            }
        }
        good.sort_by(|a: &(M::Id, M), b: &(M::Id, M)| {
            a.1.order_time().cmp(&b.1.order_time()).then(a.0.cmp(&b.0))
        });
        Ok(Loaded { good, bad })
    }

    /// Every manifest of kind `M`, oldest first; any that cannot be read is
    /// an error.
    pub fn load_all_strict<M: Manifest>(&self) -> Result<Vec<(M::Id, M)>> {
        let loaded = self.load_all::<M>()?;
        match loaded.bad.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(loaded.good),
        }
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
