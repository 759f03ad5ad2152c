//! The error type of the repository crate.

use std::path::PathBuf;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in repository operations. Callers branch on
/// the variants (the CLI maps [`Error::WrongPassword`] and
/// [`Error::NoRepository`] to their own exit codes); the messages are meant
/// for an operator and never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No `config` object at the location.
    #[error("there is no cairn repository at {0} (create one with `cairn init`)")]
    NoRepository(String),
    /// The S3 bucket that should hold the repository does not exist.
    #[error(
        "there is no cairn repository at {location}: the bucket {bucket} does not exist (`cairn init --create-bucket` creates both)"
    )]
    NoBucket {
        /// The repository location.
        location: String,
        /// The bucket.
        bucket: String,
    },
    /// `init` on a location that already holds a repository.
    #[error("a repository already exists at {0}")]
    AlreadyInitialized(String),
    /// No key file could be opened with the password.
    #[error("the password does not open any key of this repository")]
    WrongPassword,
    /// The repository has no key files at all.
    #[error("the repository has no key files, so it cannot be opened")]
    NoKeys,
    /// Key files exist but none of them can be read (empty, truncated,
    /// not a key file).
    #[error("no key file of this repository can be read, so it cannot be opened: {0}")]
    NoUsableKey(String),
    /// What a put-only key may not do: read what the repository holds,
    /// manage keys, forget, prune, or write for another account.
    #[error("{what} needs the repository's full key; this is a put-only key")]
    PutOnly {
        /// What was asked for.
        what: String,
    },
    /// A named object or blob does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// An object exists but its bytes are wrong: truncated, altered, or not
    /// what its name or the index says.
    #[error("{what} is corrupt: {reason}")]
    Corrupt {
        /// The object or blob.
        what: String,
        /// What is wrong with it.
        reason: String,
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
    /// The store refused a request: the credentials in use do not allow it.
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
    /// An operation that deletes was started with credentials that may not
    /// delete (a backup host's, README "Protecting backups from the host
    /// they protect").
    #[error(
        "{operation} deletes objects, and the credentials in use may not delete from {location} (the store refused a test deletion: {detail}); run it from a host with full rights, such as the maintenance host"
    )]
    NoDeleteRights {
        /// What was asked for (`prune`, `forget`...).
        operation: String,
        /// The repository location.
        location: String,
        /// The store's answer to the probe.
        detail: String,
    },
    /// An object under S3 object lock whose retention has not passed: it
    /// stays.
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
    /// The repository is locked by another process in a conflicting way.
    #[error("{0}")]
    Locked(String),
    /// A lock this process held may no longer bind others (not refreshed in
    /// time, or removed): it stopped before committing.
    #[error("{0}")]
    LockLost(String),
    /// The repository (or one of its objects) uses a newer format.
    #[error("{what} has format version {found}; this cairn supports version {supported}")]
    UnsupportedVersion {
        /// The object.
        what: String,
        /// Version found.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// A parameter given by the caller is not acceptable.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The parameter.
        what: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The local index cache (redb) failed.
    #[error("local index cache {}: {reason}", path.display())]
    Cache {
        /// The database file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The operating system's random number generator failed.
    #[error("the random number generator failed: {0}")]
    Random(getrandom::Error),
    /// The account takes no new snapshots or log segments.
    #[error("account {account:?} is {} (since {since}); `cairn account enable {account}` allows backups again", match state { cairn_format::account::AccountState::Purged => "disabled and purged", _ => "disabled" })]
    AccountDisabled {
        /// The account.
        account: String,
        /// When it was disabled.
        since: jiff::Timestamp,
        /// Disabled or purged.
        state: cairn_format::account::AccountState,
    },
    /// The operation was stopped (by an earlier error in another thread, or on request).
    #[error("operation aborted: {0}")]
    Aborted(String),
    /// Stopped at a safe point because the caller asked (a signal).
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// Chunker parameters are not valid.
    #[error(transparent)]
    Chunker(#[from] cairn_chunker::ParamsError),
}

/// What kind of failure an error is, for callers that choose an exit
/// status or a retry by it rather than by variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// There is no repository at the location.
    NoRepository,
    /// The password or the keys do not open the repository, or the
    /// store's credentials do not allow the operation.
    Credentials,
    /// Another process holds the repository, or this process lost its lock.
    Locked,
    /// Stopped on request at a safe point.
    Interrupted,
    /// Anything else.
    Other,
}

impl Error {
    /// The class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::NoRepository(_) | Error::NoBucket { .. } => ErrorClass::NoRepository,
            Error::WrongPassword
            | Error::NoKeys
            | Error::NoUsableKey(_)
            | Error::Refused { .. }
            | Error::PutOnly { .. }
            | Error::NoDeleteRights { .. } => ErrorClass::Credentials,
            Error::Locked(_) | Error::LockLost(_) => ErrorClass::Locked,
            Error::Interrupted(_) => ErrorClass::Interrupted,
            _ => ErrorClass::Other,
        }
    }

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

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether retrying the same operation might succeed (transient storage
    /// trouble), as opposed to a permanent condition.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Storage { .. } | Error::Locked(_))
    }

    /// Whether bytes were read but are not what they should be.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }

    /// Whether this is a "not found" error.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// The retain-until date when object lock kept an object.
    pub fn retained_until(&self) -> Option<jiff::Timestamp> {
        match self {
            Error::Retained { until, .. } => Some(*until),
            _ => None,
        }
    }
}

impl From<cairn_format::Error> for Error {
    fn from(e: cairn_format::Error) -> Self {
        use cairn_format::Error as F;
        match e {
            F::Corrupt { what, reason } => Error::Corrupt { what, reason },
            F::UnsupportedVersion {
                what,
                found,
                supported,
            } => Error::UnsupportedVersion {
                what,
                found,
                supported,
            },
            F::Invalid { what, reason } => Error::Invalid { what, reason },
            F::Random(e) => Error::Random(e),
            F::Chunker(e) => Error::Chunker(e),
            F::PutOnly { what } => Error::PutOnly { what },
            // `cairn_format::Error` is non-exhaustive.
            other => Error::Invalid {
                what: "format".to_string(),
                reason: other.to_string(),
            },
        }
    }
}

impl From<cairn_store::Error> for Error {
    fn from(e: cairn_store::Error) -> Self {
        use cairn_store::Error as S;
        match e {
            S::NotFound { what } => Error::NotFound { what },
            S::Storage { location, source } => Error::Storage { location, source },
            S::Refused { location, source } => Error::Refused { location, source },
            S::Retained { location, until } => Error::Retained { location, until },
            S::Io { path, source } => Error::Io { path, source },
            S::Corrupt { what, reason } => Error::Corrupt { what, reason },
            S::Invalid { what, reason } => Error::Invalid { what, reason },
            S::NotADirectory(path) => Error::NoRepository(path),
            // `cairn_store::Error` is non-exhaustive.
            other => Error::Invalid {
                what: "storage".to_string(),
                reason: other.to_string(),
            },
        }
    }
}

impl cairn_store::CheckError for Error {
    fn is_corrupt(&self) -> bool {
        Error::is_corrupt(self)
    }
}

impl From<getrandom::Error> for Error {
    fn from(e: getrandom::Error) -> Self {
        Error::Random(e)
    }
}
