//! Progress for a supervising process: with `CAIRN_PROGRESS=json` in its
//! environment, `cairn` writes lines like
//! `{"progress":{"phase":"backup","bytes":1024,"total":4096}}` on stderr,
//! at most twice a second and at every phase change.

use serde::{Deserialize, Serialize};

/// The environment variable that asks for progress lines.
pub const PROGRESS_ENV: &str = "CAIRN_PROGRESS";
/// Its value.
pub const PROGRESS_JSON: &str = "json";

/// One progress report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressLine {
    /// What the command is doing (`backup`, `prune: repack`...).
    pub phase: String,
    /// Bytes done in this phase.
    pub bytes: u64,
    /// Bytes the phase will take, when known.
    pub total: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct Wrapped<T> {
    progress: T,
}

impl ProgressLine {
    /// The line to write (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(&Wrapped { progress: self }).unwrap_or_default()
    }

    /// Whether a stderr line is a progress line (so that it is left out of
    /// error messages).
    pub fn is_progress(line: &str) -> bool {
        line.starts_with("{\"progress\"")
    }

    /// Decode a progress line; `None` for any other line.
    pub fn parse(line: &str) -> Option<Self> {
        if !Self::is_progress(line) {
            return None;
        }
        serde_json::from_str::<Wrapped<ProgressLine>>(line)
            .ok()
            .map(|w| w.progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let p = ProgressLine {
            phase: "backup".into(),
            bytes: 10,
            total: Some(20),
        };
        let line = p.to_line();
        assert_eq!(
            line,
            r#"{"progress":{"phase":"backup","bytes":10,"total":20}}"#
        );
        assert_eq!(ProgressLine::parse(&line), Some(p));
        assert_eq!(ProgressLine::parse("error: no"), None);
        assert_eq!(ProgressLine::parse("{\"progress\":1}"), None);
    }
}
