//! `log verify`: every stream's chain unbroken, every chunk of every
//! segment in the index, and with `read_data` every segment readable and
//! matching its recorded size and hashes.

use super::{Segment, chain_breaks};
use crate::error::Result;
use crate::repo::Repository;
use std::collections::BTreeMap;

/// What to verify.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogVerifyOptions<'a> {
    /// Only this account's streams.
    pub account: Option<&'a str>,
    /// Only streams of this name.
    pub stream: Option<&'a str>,
    /// Read and check every segment's content too.
    pub read_data: bool,
}

/// What verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogVerifyReport {
    /// Streams verified.
    pub streams: usize,
    /// Segments verified.
    pub segments: usize,
    /// One line per problem, naming account, stream and segment; empty when
    /// every chain is unbroken and every chunk is present.
    pub problems: Vec<String>,
}

/// The segments of every stream the options select, ordered by account,
/// stream and sequence.
pub fn select_segments(
    repo: &Repository,
    account: Option<&str>,
    stream: Option<&str>,
) -> Result<Vec<Segment>> {
    Ok(crate::logs::all_log_segments(repo)?
        .into_iter()
        .filter(|s| account.is_none_or(|a| s.manifest.account == a))
        .filter(|s| stream.is_none_or(|st| s.manifest.stream == st))
        .collect())
}

/// Verify the selected streams.
pub fn verify_logs(repo: &Repository, opts: &LogVerifyOptions<'_>) -> Result<LogVerifyReport> {
    let segs = select_segments(repo, opts.account, opts.stream)?;
    let view = repo.index()?.view()?;
    let mut streams: BTreeMap<(String, String), Vec<Segment>> = BTreeMap::new();
    for s in segs {
        streams
            .entry((s.manifest.account.clone(), s.manifest.stream.clone()))
            .or_default()
            .push(s);
    }
    let mut report = LogVerifyReport {
        streams: streams.len(),
        ..LogVerifyReport::default()
    };
    for ((acc, st), segs) in &streams {
        report.segments += segs.len();
        for b in chain_breaks(segs) {
            report.problems.push(format!(
                "{acc}/{st}: break between {} and {}: {}",
                b.after.unwrap_or_default(),
                b.before,
                b.problem
            ));
        }
        for s in segs {
            for c in &s.manifest.chunks {
                if view.find(c)?.is_none() {
                    report.problems.push(format!(
                        "{acc}/{st}: segment {} misses chunk {}",
                        s.manifest.name,
                        c.short()
                    ));
                    break;
                }
            }
            if opts.read_data
                && let Err(e) = crate::logs::read_segment(repo, s, &mut std::io::sink())
            {
                report
                    .problems
                    .push(format!("{acc}/{st}: segment {}: {e}", s.manifest.name));
            }
        }
    }
    Ok(report)
}
