//! Exit codes (documented in `cairn --help` and the README).

use cairn_repository::Error;

/// Success.
pub const OK: u8 = 0;
/// Fatal error.
pub const FATAL: u8 = 1;
/// Backup finished but some files could not be read.
pub const INCOMPLETE: u8 = 3;
/// No repository at the location.
pub const NO_REPOSITORY: u8 = 10;
/// Locked by another process, or our own lock was lost.
pub const LOCKED: u8 = 11;
/// Wrong password or no usable key.
pub const WRONG_PASSWORD: u8 = 12;
/// Stopped at a safe point by SIGTERM or SIGINT.
pub const INTERRUPTED: u8 = 130;

/// The exit code for an error that ended the program.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        // A sync's repository errors are transparent: the chain skips them.
        let repo_error = match cause.downcast_ref::<cairn_remote_sync::SyncError>() {
            Some(cairn_remote_sync::SyncError::Repository(e)) => Some(e),
            Some(cairn_remote_sync::SyncError::Interrupted) => return INTERRUPTED,
            _ => cause.downcast_ref::<Error>(),
        };
        if let Some(e) = repo_error {
            return match e {
                Error::NoRepository(_) => NO_REPOSITORY,
                Error::WrongPassword | Error::NoKeys | Error::NoUsableKey(_) => WRONG_PASSWORD,
                Error::Locked(_) | Error::LockLost(_) => LOCKED,
                Error::Interrupted(_) => INTERRUPTED,
                _ => FATAL,
            };
        }
    }
    FATAL
}

/// An error that carries its own exit code and has already been reported
/// (for example, a check that found damage).
#[derive(Debug)]
pub struct Reported(pub u8);

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Reported {}
