//! The in-memory test repository the unit tests of this crate share (the
//! machinery that does not need a `Repository` is in `cairn-testkit`).

use crate::config::{ChunkerConfig, GearSource};
use crate::keyfile::KdfCost;
use crate::repo::{CacheLocation, InitOptions, Repository};
use crate::store::Store;

/// The password of every test repository.
pub(crate) const PASSWORD: &[u8] = b"pw";

/// Options for a repository with small chunks (`avg` bytes on average,
/// a quarter to four times that) and small packs, so that a few hundred
/// KiB of data make many of each; the key costs almost nothing to derive.
pub(crate) fn small_opts(avg: u32, pack_size: u32) -> InitOptions {
    InitOptions {
        chunker: ChunkerConfig {
            min_size: avg / 4,
            avg_size: avg,
            max_size: avg * 4,
            normalization: 1,
            gear: GearSource::Keyed,
        },
        pack_size,
        kdf: KdfCost::MINIMAL,
        ..InitOptions::default()
    }
}

/// Options with the default chunker and pack size.
pub(crate) fn default_opts() -> InitOptions {
    InitOptions {
        kdf: KdfCost::MINIMAL,
        ..InitOptions::default()
    }
}

/// A new repository on `store`, its cache in memory.
pub(crate) fn repo_on(store: Store, opts: &InitOptions) -> Repository {
    Repository::init(store, PASSWORD, opts, CacheLocation::InMemory)
        .unwrap_or_else(|e| panic!("init of the test repository: {e}"))
}

/// A new repository in memory.
pub(crate) fn memory_repo(opts: &InitOptions) -> Repository {
    repo_on(
        Store::memory().unwrap_or_else(|e| panic!("memory store: {e}")),
        opts,
    )
}
