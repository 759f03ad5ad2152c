//! Exit codes (documented in `cairn --help` and the README).

use cairn_protocol::ExitCode;
use cairn_repository::ErrorClass;

/// Success.
pub const OK: u8 = ExitCode::Ok.code();
/// Fatal error.
pub const FATAL: u8 = ExitCode::Fatal.code();
/// Backup finished but some files could not be read.
pub const INCOMPLETE: u8 = ExitCode::Incomplete.code();

/// The exit code for an error that ended the program: by the class of the
/// first repository (or sync) error in its chain.
pub fn code_for(err: &anyhow::Error) -> u8 {
    let class = err.chain().find_map(|cause| {
        use cairn_remote_sync::SyncError;
        // A sync's repository errors are transparent: the chain skips them.
        match cause.downcast_ref::<SyncError>() {
            Some(SyncError::Repository(e)) => Some(e.class()),
            Some(SyncError::Interrupted) => Some(ErrorClass::Interrupted),
            Some(_) => None,
            // Store errors reach the CLI converted into repository errors
            // (context.rs), which is where "not a directory" becomes
            // NoRepository.
            None => cause
                .downcast_ref::<cairn_repository::Error>()
                .map(cairn_repository::Error::class),
        }
    });
    match class {
        Some(ErrorClass::NoRepository) => ExitCode::NoRepository,
        Some(ErrorClass::Credentials) => ExitCode::WrongPassword,
        Some(ErrorClass::Locked) => ExitCode::Locked,
        Some(ErrorClass::Interrupted) => ExitCode::Interrupted,
        _ => ExitCode::Fatal,
    }
    .code()
}

/// An error and its causes on one line, each said once: libraries'
/// messages often repeat their source's text ("storage error on config:
/// HTTP error: …" above "HTTP error: …"), so a cause whose text is
/// already printed is left out.
pub fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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

/// The reports the service reads are the ones the commands write: what the
/// libraries serialize decodes as [`cairn_protocol::report`]'s types.
#[cfg(test)]
mod render_tests {
    #[test]
    fn repeated_causes_are_said_once() {
        let inner = std::io::Error::other("URL scheme is not allowed");
        let err = anyhow::Error::new(inner)
            .context("HTTP error: URL scheme is not allowed")
            .context("storage error on config: HTTP error: URL scheme is not allowed")
            .context("opening s3://b/x");
        assert_eq!(
            super::render(&err),
            "opening s3://b/x: storage error on config: HTTP error: URL scheme is not allowed"
        );
        let plain = anyhow::anyhow!("disk full").context("writing pack");
        assert_eq!(super::render(&plain), "writing pack: disk full");
    }
}

#[cfg(test)]
mod report_contract {
    #![allow(clippy::unwrap_used)]
    use cairn_protocol::report::{BackupSummary, SyncCounts};

    #[test]
    fn a_sync_report_reads_as_sync_counts() {
        let mut report = cairn_remote_sync::SyncReport::default();
        report.copied.insert(
            "data".into(),
            cairn_remote_sync::Count {
                objects: 3,
                bytes: 300,
            },
        );
        report.deleted.insert(
            "snapshots".into(),
            cairn_remote_sync::Count {
                objects: 2,
                bytes: 20,
            },
        );
        let json = serde_json::to_string(&report).unwrap();
        let counts: SyncCounts = serde_json::from_str(&json).unwrap();
        assert_eq!(counts.objects_copied(), 3);
        assert_eq!(counts.objects_deleted(), 2);
    }

    #[test]
    fn a_snapshot_summary_reads_as_a_backup_summary_and_back() {
        let summary = cairn_repository::Summary {
            files_new: 4,
            files_changed: 5,
            bytes_added: 6,
            unreadable_count: 7,
            ..Default::default()
        };
        let value = serde_json::to_value(&summary).unwrap();
        let typed: BackupSummary = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(
            (
                typed.files_new,
                typed.files_changed,
                typed.bytes_added,
                typed.unreadable_count
            ),
            (4, 5, 6, 7)
        );
        assert_eq!(serde_json::to_value(&typed).unwrap(), value);
    }
}
