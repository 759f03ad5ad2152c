//! The repository configuration object (`config`): format version,
//! repository id, chunker parameters, compression and pack size. Written
//! once by `init`, sealed with the master key, never modified.

use crate::crypto::Compression;
use crate::error::{Error, Result};
use crate::id::RepoId;
use cairn_chunker::ChunkerParams;
use serde::{Deserialize, Serialize};

/// The repository format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Default target pack size (16 MiB).
pub const DEFAULT_PACK_SIZE: u32 = 16 << 20;
/// Smallest accepted target pack size (64 KiB; small packs are for tests).
pub const MIN_PACK_SIZE: u32 = 64 << 10;
/// Largest accepted target pack size (1 GiB; offsets inside a pack are 32-bit).
pub const MAX_PACK_SIZE: u32 = 1 << 30;

/// Where the chunker's gear table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GearSource {
    /// Derived from the master key (the default): chunk boundaries are
    /// secret.
    Keyed,
    /// The public all-zero seed, for tests that compare chunkings.
    Public,
}

/// Chunker settings as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkerConfig {
    /// Minimum chunk size.
    pub min_size: u32,
    /// Average chunk size (power of two).
    pub avg_size: u32,
    /// Maximum chunk size.
    pub max_size: u32,
    /// Normalization level 0 to 3.
    pub normalization: u8,
    /// Gear table source.
    pub gear: GearSource,
}

impl ChunkerConfig {
    /// Validated chunker parameters.
    pub fn params(&self) -> Result<ChunkerParams> {
        Ok(ChunkerParams::new(
            self.min_size,
            self.avg_size,
            self.max_size,
            self.normalization,
        )?)
    }
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        let p = ChunkerParams::DEFAULT;
        Self {
            min_size: p.min_size(),
            avg_size: p.avg_size(),
            max_size: p.max_size(),
            normalization: p.normalization(),
            gear: GearSource::Keyed,
        }
    }
}

/// The decrypted `config` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// Repository format version.
    pub version: u32,
    /// Random repository id (names the local cache directory).
    pub id: RepoId,
    /// When `init` ran.
    pub created: jiff::Timestamp,
    /// Chunker parameters.
    pub chunker: ChunkerConfig,
    /// Blob compression.
    pub compression: Compression,
    /// Target pack size in bytes.
    pub pack_size: u32,
}

impl RepoConfig {
    /// A fresh configuration with a random id.
    pub fn new(chunker: ChunkerConfig, compression: Compression, pack_size: u32) -> Result<Self> {
        let config = Self {
            version: FORMAT_VERSION,
            id: RepoId::random()?,
            created: jiff::Timestamp::now(),
            chunker,
            compression,
            pack_size,
        };
        config.validate()?;
        Ok(config)
    }

    /// Check every setting (used on init and on every open: a config from
    /// disk is untrusted input).
    pub fn validate(&self) -> Result<()> {
        if self.version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                what: "repository config".into(),
                found: self.version,
                supported: FORMAT_VERSION,
            });
        }
        self.chunker.params()?;
        self.compression.validate()?;
        if !(MIN_PACK_SIZE..=MAX_PACK_SIZE).contains(&self.pack_size) {
            return Err(Error::invalid(
                "pack size",
                format!(
                    "{} bytes is outside {MIN_PACK_SIZE}..={MAX_PACK_SIZE}",
                    self.pack_size
                ),
            ));
        }
        Ok(())
    }
}
