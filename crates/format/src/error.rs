//! The error type of the format crate: what bytes can be wrong with, and
//! what a caller can ask for that the format does not allow.

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What decoding or encoding found wrong. Messages are meant for an
/// operator and never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that are not what their name, their envelope or their
    /// context says: truncated, altered, or another object.
    #[error("{what} is corrupt: {reason}")]
    Corrupt {
        /// The object or blob.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An object of a newer (or unknown) format version.
    #[error("{what} has format version {found}; this cairn supports version {supported}")]
    UnsupportedVersion {
        /// The object.
        what: String,
        /// Version found.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// A value the format does not allow.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The parameter.
        what: String,
        /// Why it is rejected.
        reason: String,
    },
    /// An operation a put-only key cannot do: it opens nothing the master
    /// key sealed, nor what its earlier sessions wrote.
    #[error("{what} needs the repository's full key; this is a put-only key")]
    PutOnly {
        /// What was asked for.
        what: String,
    },
    /// The operating system's random number generator failed.
    #[error("the random number generator failed: {0}")]
    Random(getrandom::Error),
    /// Chunker parameters are not valid.
    #[error(transparent)]
    Chunker(#[from] cairn_chunker::ParamsError),
}

impl Error {
    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Whether bytes were read but are not what they should be.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }
}

impl From<getrandom::Error> for Error {
    fn from(e: getrandom::Error) -> Self {
        Error::Random(e)
    }
}
