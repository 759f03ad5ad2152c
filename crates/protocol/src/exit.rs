//! Exit codes of `cairn` (README, "Exit status").

/// How a `cairn` command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// A fatal error.
    Fatal = 1,
    /// Usage error (bad arguments), as clap reports them.
    Usage = 2,
    /// Finished, but incomplete: a backup that could not read some files,
    /// a check that found damage, an export with archival gaps.
    Incomplete = 3,
    /// No repository at the location.
    NoRepository = 10,
    /// Locked by another process, or this process's lock was lost.
    Locked = 11,
    /// Wrong password, no usable key, or credentials that do not allow
    /// the operation (a command that deletes, on a host that may not).
    WrongPassword = 12,
    /// Stopped at a safe point by SIGTERM or SIGINT.
    Interrupted = 130,
    /// Standard output was closed by its reader (`| head`).
    ClosedStdout = 141,
}

impl ExitCode {
    /// The process exit status.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The exit code a status stands for, if it is one of cairn's.
    pub fn from_status(status: i32) -> Option<Self> {
        Some(match status {
            0 => ExitCode::Ok,
            1 => ExitCode::Fatal,
            2 => ExitCode::Usage,
            3 => ExitCode::Incomplete,
            10 => ExitCode::NoRepository,
            11 => ExitCode::Locked,
            12 => ExitCode::WrongPassword,
            130 => ExitCode::Interrupted,
            141 => ExitCode::ClosedStdout,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in [
            ExitCode::Ok,
            ExitCode::Fatal,
            ExitCode::Usage,
            ExitCode::Incomplete,
            ExitCode::NoRepository,
            ExitCode::Locked,
            ExitCode::WrongPassword,
            ExitCode::Interrupted,
            ExitCode::ClosedStdout,
        ] {
            assert_eq!(ExitCode::from_status(i32::from(c.code())), Some(c));
        }
        assert_eq!(ExitCode::from_status(4), None);
    }
}
