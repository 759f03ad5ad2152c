//! Comparing a destination with its source without the password: listings
//! for missing and extra objects, and every destination object hashed
//! against its name (or, for `config`, compared with the source's).

use crate::SyncError;
use crate::copy::label;
use cairn_repository::store::Listed;
use cairn_repository::{ObjectKind, Progress, Store};
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashMap;

/// What a verification found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Objects present on both sides and read on the destination.
    pub checked: u64,
    /// Bytes read from the destination.
    pub bytes_read: u64,
    /// On the source, not on the destination.
    pub missing: Vec<String>,
    /// On the destination, not on the source.
    pub extra: Vec<String>,
    /// On both, but the destination's bytes are wrong.
    pub corrupt: Vec<(String, String)>,
    /// Objects copied again by `--repair`.
    pub repaired: u64,
    /// What `--repair` sends again: the missing and corrupt objects, as the
    /// source lists them.
    #[serde(skip)]
    pub to_repair: Vec<(ObjectKind, Listed)>,
}

impl VerifyReport {
    /// Nothing missing or corrupt (extra objects are reported, not errors:
    /// they are what `--delete` or a grace period leaves).
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty()
    }
}

/// Compare `dest` with `source`.
pub fn verify(
    source: &Store,
    dest: &Store,
    concurrency: usize,
    progress: &dyn Progress,
) -> Result<VerifyReport, SyncError> {
    let mut report = VerifyReport::default();
    let mut both = Vec::new();
    // Every kind a repository has; locks are transient.
    for kind in ObjectKind::ALL
        .into_iter()
        .filter(|k| *k != ObjectKind::Lock)
    {
        let src: HashMap<String, u64> = crate::list(source, kind)?
            .into_iter()
            .map(|l| (l.name, l.size))
            .collect();
        let dst: HashMap<String, u64> = crate::list(dest, kind)?
            .into_iter()
            .map(|l| (l.name, l.size))
            .collect();
        for (name, size) in &src {
            let listed = || Listed {
                name: name.clone(),
                size: *size,
                modified: None,
            };
            match dst.get(name) {
                None => {
                    report.missing.push(format!("{}/{name}", label(kind)));
                    report.to_repair.push((kind, listed()));
                }
                Some(s) if s != size => {
                    report.corrupt.push((
                        kind.path(name).to_string(),
                        format!("{s} bytes, the source has {size}"),
                    ));
                    report.to_repair.push((kind, listed()));
                }
                Some(_) => both.push((kind, name.clone(), *size)),
            }
        }
        for name in dst.keys() {
            if !src.contains_key(name) {
                report.extra.push(format!("{}/{name}", label(kind)));
            }
        }
    }
    report.missing.sort();
    report.extra.sort();
    progress.phase("verify", None);
    let results: Vec<(String, u64, Option<String>)> = dest.block_on(
        futures::stream::iter(both.iter().map(|(kind, name, _)| async move {
            let path = kind.path(name);
            let bytes = match dest.read_async(*kind, name).await {
                Ok(b) => b,
                Err(e) => return (path, 0, Some(format!("cannot be read: {e}"))),
            };
            progress.bytes(bytes.len() as u64);
            let len = bytes.len() as u64;
            let (k, n, b) = (*kind, name.clone(), bytes.clone());
            let matches = match crate::copy::off_thread(move || k.content_matches(&n, &b)).await {
                Ok(m) => m,
                Err(e) => return (path, len, Some(e.to_string())),
            };
            let problem = match matches {
                Some(true) => None,
                Some(false) => Some("does not hash to its name".to_string()),
                None => match source.read_async(*kind, name).await {
                    Ok(s) if s == bytes => None,
                    Ok(_) => Some("differs from the source".to_string()),
                    Err(e) => Some(format!("the source copy cannot be read: {e}")),
                },
            };
            (path, len, problem)
        }))
        .buffer_unordered(concurrency.max(1))
        .collect(),
    );
    let by_path: HashMap<String, (ObjectKind, &String, u64)> = both
        .iter()
        .map(|(k, n, s)| (k.path(n).to_string(), (*k, n, *s)))
        .collect();
    for (path, bytes, problem) in results {
        report.checked += 1;
        report.bytes_read += bytes;
        if let Some(p) = problem {
            if let Some((kind, name, size)) = by_path.get(&path) {
                report.to_repair.push((
                    *kind,
                    Listed {
                        name: (*name).clone(),
                        size: *size,
                        modified: None,
                    },
                ));
            }
            report.corrupt.push((path, p));
        }
    }
    report.corrupt.sort();
    progress.done();
    Ok(report)
}

/// Send again what [`verify`] found missing or corrupt on `dest`, each
/// upload checked as a sync's are (the source object against its name
/// first), in the order a sync copies: keys and config, packs, index
/// objects, manifests. Returns how many objects were sent.
pub fn repair(
    source: &Store,
    dest: &Store,
    report: &VerifyReport,
    opts: &crate::SyncOptions,
    progress: &dyn Progress,
) -> Result<u64, SyncError> {
    let order = [
        ObjectKind::Key,
        ObjectKind::Config,
        ObjectKind::Pack,
        ObjectKind::Index,
    ]
    .into_iter()
    .chain(crate::MANIFESTS);
    let mut copied = crate::copy::Copied::default();
    progress.phase("repair", None);
    for kind in order {
        let objects: Vec<Listed> = report
            .to_repair
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, l)| l.clone())
            .collect();
        crate::copy::copy_all(source, dest, kind, &objects, opts, progress, &mut copied)?;
    }
    progress.done();
    Ok(copied.count.objects)
}
