//! Exclusion patterns for backup (`--exclude`, `--exclude-file`,
//! `--exclude-caches`).
//!
//! Semantics (also in the README):
//! - a pattern without `/` matches an entry's name at any depth
//!   (`*.lock*`, `cyrus.squat`);
//! - a pattern containing `/` matches the entry's full absolute path
//!   (`/var/spool/imap/**/tmp`); `*` stops at `/`, `**` crosses it;
//! - a trailing `/` restricts the pattern to directories (`socket/`);
//! - with `exclude_caches`, a directory holding a `CACHEDIR.TAG` file with
//!   the standard signature keeps only that file.
//!
//! Paths given on the command line are never excluded.

use crate::error::{Error, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The signature that marks a cache directory (bford.info/cachedir).
pub const CACHEDIR_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

/// Compiled exclusion rules.
#[derive(Debug, Clone)]
pub struct Excludes {
    names: GlobSet,
    paths: GlobSet,
    dir_names: GlobSet,
    dir_paths: GlobSet,
    exclude_caches: bool,
}

impl Default for Excludes {
    fn default() -> Self {
        Self {
            names: GlobSet::empty(),
            paths: GlobSet::empty(),
            dir_names: GlobSet::empty(),
            dir_paths: GlobSet::empty(),
            exclude_caches: false,
        }
    }
}

impl Excludes {
    /// Compile patterns; an invalid pattern is an error naming it.
    pub fn new(patterns: &[String], exclude_caches: bool) -> Result<Self> {
        Self::with_insensitive(patterns, &[], exclude_caches)
    }

    /// Compile patterns and case-insensitive ones (`--iexclude`).
    pub fn with_insensitive(
        patterns: &[String],
        insensitive: &[String],
        exclude_caches: bool,
    ) -> Result<Self> {
        let mut sets: [GlobSetBuilder; 4] = std::array::from_fn(|_| GlobSetBuilder::new());
        let all = patterns
            .iter()
            .map(|p| (p, false))
            .chain(insensitive.iter().map(|p| (p, true)));
        for (raw, case_insensitive) in all {
            let pattern = raw.trim_end_matches('\n');
            if pattern.is_empty() {
                continue;
            }
            let (body, dir_only) = match pattern.strip_suffix('/') {
                Some(b) if !b.is_empty() => (b, true),
                _ => (pattern, false),
            };
            let glob = GlobBuilder::new(body)
                .literal_separator(true)
                .backslash_escape(true)
                .case_insensitive(case_insensitive)
                .build()
                .map_err(|e| Error::invalid("exclude pattern", format!("{raw:?}: {e}")))?;
            let set = usize::from(body.contains('/')) + 2 * usize::from(dir_only);
            sets[set].add(glob);
        }
        let build = |b: &GlobSetBuilder| {
            b.build()
                .map_err(|e| Error::invalid("exclude patterns", e.to_string()))
        };
        Ok(Self {
            names: build(&sets[0])?,
            paths: build(&sets[1])?,
            dir_names: build(&sets[2])?,
            dir_paths: build(&sets[3])?,
            exclude_caches,
        })
    }

    /// Read patterns from a file: one per line, `#` starts a comment line,
    /// blank lines are ignored.
    pub fn read_pattern_file(path: &Path) -> Result<Vec<String>> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect())
    }

    /// Whether an entry is excluded.
    pub fn is_excluded(&self, full_path: &Path, name: &[u8], is_dir: bool) -> bool {
        let name = Path::new(OsStr::from_bytes(name));
        if self.names.is_match(name) || self.paths.is_match(full_path) {
            return true;
        }
        is_dir && (self.dir_names.is_match(name) || self.dir_paths.is_match(full_path))
    }

    /// Whether `dir` is a tagged cache directory whose content (all but the
    /// tag) is to be skipped.
    pub fn is_tagged_cache(&self, dir: &Path) -> bool {
        self.exclude_caches
            && crate::fsat::open_dir(dir).is_ok_and(|fd| self.is_tagged_cache_at(&fd))
    }

    /// [`Excludes::is_tagged_cache`] of an open directory.
    pub fn is_tagged_cache_at(&self, dir: &std::os::fd::OwnedFd) -> bool {
        if !self.exclude_caches {
            return false;
        }
        let mut head = [0u8; CACHEDIR_SIGNATURE.len()];
        match crate::fsat::open_file_at(dir, b"CACHEDIR.TAG") {
            Ok(mut f) => {
                use std::io::Read;
                f.read_exact(&mut head).is_ok() && head == CACHEDIR_SIGNATURE
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_003_patterns() {
        let ex = Excludes::new(
            &[
                "cyrus.squat".into(),
                "*.lock*".into(),
                "socket/".into(),
                "/var/spool/**/tmp".into(),
            ],
            false,
        )
        .unwrap();
        let p = |s: &str| Path::new(s).to_path_buf();
        assert!(ex.is_excluded(&p("/imap/user/cyrus.squat"), b"cyrus.squat", false));
        assert!(ex.is_excluded(&p("/a/b/x.lock.1"), b"x.lock.1", false));
        assert!(ex.is_excluded(&p("/run/socket"), b"socket", true));
        assert!(!ex.is_excluded(&p("/run/socket"), b"socket", false));
        assert!(ex.is_excluded(&p("/var/spool/imap/u/tmp"), b"tmp", true));
        assert!(!ex.is_excluded(&p("/var/other/tmp"), b"tmp", true));
        assert!(!ex.is_excluded(&p("/a/cyrus.index"), b"cyrus.index", false));
        assert!(Excludes::new(&["a[".into()], false).is_err());
    }

    #[test]
    fn pattern_files_and_cache_tags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ex");
        std::fs::write(&file, "# comment\n\n*.tmp\n  cache/  \n").unwrap();
        let pats = Excludes::read_pattern_file(&file).unwrap();
        assert_eq!(pats, vec!["*.tmp".to_string(), "cache/".to_string()]);
        let tagged = dir.path().join("c");
        std::fs::create_dir(&tagged).unwrap();
        std::fs::write(tagged.join("CACHEDIR.TAG"), CACHEDIR_SIGNATURE).unwrap();
        assert!(Excludes::new(&[], true).unwrap().is_tagged_cache(&tagged));
        assert!(!Excludes::new(&[], false).unwrap().is_tagged_cache(&tagged));
        assert!(
            !Excludes::new(&[], true)
                .unwrap()
                .is_tagged_cache(dir.path())
        );
    }
}
