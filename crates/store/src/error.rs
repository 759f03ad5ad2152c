//! The error type of the store: what storage can answer, in terms the
//! layers above map to their own (the repository names objects; this
//! crate names paths).

use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a storage operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object does not exist.
    #[error("{what} not found")]
    NotFound {
        /// The object path.
        what: String,
    },
    /// The object store failed (network, permissions, disk).
    #[error("storage error on {location}: {source}")]
    Storage {
        /// The object path involved.
        location: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// The store refused the request (HTTP 403): the credentials in use
    /// do not allow it.
    #[error(
        "the store refused access to {location}: the credentials in use do not allow this request ({source})"
    )]
    Refused {
        /// The object path involved.
        location: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// An object under S3 object lock whose retention has not passed.
    #[error("{location} is retained by object lock until {until}")]
    Retained {
        /// The object path.
        location: String,
        /// Its retain-until date.
        until: jiff::Timestamp,
    },
    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The local path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The store returned or kept other bytes than asked for (a short
    /// range read, an upload that could not be confirmed).
    #[error("{what} is corrupt: {reason}")]
    Corrupt {
        /// The object path or upload.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A location or setting that cannot be used.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The parameter.
        what: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A local store's directory does not exist.
    #[error("{0} is not a directory")]
    NotADirectory(String),
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Map an object store error, turning "not found" into [`Error::NotFound`].
    pub fn storage(location: impl Into<String>, source: object_store::Error) -> Self {
        let location = location.into();
        match source {
            object_store::Error::NotFound { .. } => Error::NotFound { what: location },
            source @ object_store::Error::PermissionDenied { .. } => {
                Error::Refused { location, source }
            }
            source => Error::Storage { location, source },
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Whether this is a "not found" error.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Whether bytes were read but are not what they should be.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }

    /// Whether object lock kept the object.
    pub fn is_retained(&self) -> bool {
        matches!(self, Error::Retained { .. })
    }

    /// Whether the store refused the request (the credentials do not
    /// allow it).
    pub fn is_refused(&self) -> bool {
        matches!(self, Error::Refused { .. })
    }
}

/// The errors of checked reads ([`crate::Store::get_checked`]): a caller's
/// own error type, which says when bytes were corrupt (and are worth one
/// more read) and takes the store's errors.
pub trait CheckError: From<Error> + std::fmt::Display {
    /// Whether the check found the bytes corrupt.
    fn is_corrupt(&self) -> bool;
}

impl CheckError for Error {
    fn is_corrupt(&self) -> bool {
        Error::is_corrupt(self)
    }
}
