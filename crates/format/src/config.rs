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

/// S3 object lock retention mode (S3's own terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectLockMode {
    /// Users with `s3:BypassGovernanceRetention` may still delete or
    /// shorten the retention.
    Governance,
    /// Nobody, the account's root user included, may delete an object
    /// version or shorten its retention before the date.
    Compliance,
}

impl ObjectLockMode {
    /// The name S3 uses in headers and XML (`GOVERNANCE`, `COMPLIANCE`).
    pub fn s3_name(self) -> &'static str {
        match self {
            ObjectLockMode::Governance => "GOVERNANCE",
            ObjectLockMode::Compliance => "COMPLIANCE",
        }
    }
}

/// The shortest object-lock period accepted (tests use seconds).
pub const MIN_OBJECT_LOCK_SECS: u64 = 1;
/// The longest: 100 years, as S3 allows.
pub const MAX_OBJECT_LOCK_SECS: u64 = 100 * 366 * 86_400;

/// S3 object lock (`init --object-lock`, docs/FORMAT.md "Object lock").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectLock {
    /// The retention mode every protected object is written with.
    pub mode: ObjectLockMode,
    /// How long a protected object is retained after it is written, and
    /// after each extension by prune, in seconds.
    pub period_secs: u64,
}

impl ObjectLock {
    /// The period.
    pub fn period(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.period_secs)
    }

    /// Check the period's bounds.
    pub fn validate(&self) -> Result<()> {
        if !(MIN_OBJECT_LOCK_SECS..=MAX_OBJECT_LOCK_SECS).contains(&self.period_secs) {
            return Err(Error::invalid(
                "object lock",
                format!(
                    "a period of {} s is outside 1 s .. 100 years",
                    self.period_secs
                ),
            ));
        }
        Ok(())
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
    /// S3 object lock, when `init --object-lock` asked for it. Readers
    /// that do not know the field refuse the config (it is
    /// `deny_unknown_fields`): they would delete what must be kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLock>,
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
            object_lock: None,
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
        if let Some(lock) = &self.object_lock {
            lock.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_lock_round_trips_and_is_bounded() {
        let mut config = RepoConfig::new(
            ChunkerConfig::default(),
            Compression::default(),
            DEFAULT_PACK_SIZE,
        )
        .unwrap();
        let plain = serde_json::to_string(&config).unwrap();
        assert!(!plain.contains("object_lock"), "{plain}");
        config.object_lock = Some(ObjectLock {
            mode: ObjectLockMode::Compliance,
            period_secs: 86_400,
        });
        let json = serde_json::to_string(&config).unwrap();
        assert!(
            json.contains(r#""object_lock":{"mode":"compliance","period_secs":86400}"#),
            "{json}"
        );
        let back: RepoConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
        back.validate().unwrap();
        config.object_lock = Some(ObjectLock {
            mode: ObjectLockMode::Governance,
            period_secs: 0,
        });
        assert!(config.validate().is_err());
        assert!(
            serde_json::from_str::<RepoConfig>(&json.replace("compliance", "forever")).is_err()
        );
    }
}
