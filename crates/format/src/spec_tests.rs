//! `docs/FORMAT.md` against the code: every context string, magic, kind
//! number, directory, version and size cap this crate uses is written
//! there, and every kind number and directory the document lists is one
//! this crate knows. A format change that forgets the specification (or
//! the reverse) fails here.

use crate::cipher::context;
use crate::crypto::{BLOB_AAD, ENVELOPE_MAGIC, ENVELOPE_VERSION, Sealed};
use crate::layout::ObjectKind;
use crate::manifest::{MAX_MANIFEST_LEN, Manifest};
use crate::{account, config, index, log_segment, pack, pending, snapshot, verification};

const SPEC: &str = include_str!("../../../docs/FORMAT.md");

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("a magic that is not text: {e}"))
}

fn assert_in_spec(what: &str, needle: &str) {
    assert!(
        SPEC.contains(needle),
        "docs/FORMAT.md does not mention the {what} {needle:?}"
    );
}

#[test]
fn every_context_string_and_magic_is_specified() {
    for (what, s) in [
        ("key derivation context", context::DATA_ID),
        ("key derivation context", context::TREE_ID),
        ("key derivation context", context::ENCRYPTION),
        ("key derivation context", context::GEAR_SEED),
        ("key derivation context", context::STREAM_TAG),
        ("key derivation context", cairn_chunker::GEAR_CONTEXT),
        ("blob associated data", text(BLOB_AAD)),
        ("key file associated data", text(crate::keyfile::WRAP_AAD)),
        ("key derivation context", context::LOCK),
        ("key derivation context", crate::seal_to::SESSION_CONTEXT),
        (
            "put-only key file associated data",
            text(crate::keyfile::WRAP_PUT_ONLY_AAD),
        ),
        (
            "put-only secret associated data",
            text(crate::keys::SECRET_AAD),
        ),
    ] {
        assert_in_spec(what, &format!("\"{s}\""));
    }
    assert_in_spec(
        "envelope magic",
        &format!("magic \"{}\"", text(ENVELOPE_MAGIC)),
    );
    assert_in_spec(
        "pack magic",
        &format!("magic \"{}\"", text(pack::PACK_MAGIC)),
    );
    assert_in_spec(
        "envelope version",
        &format!("envelope version = {ENVELOPE_VERSION}"),
    );
    assert_in_spec(
        "index version",
        &format!("u8  version = {}", index::INDEX_VERSION),
    );
    assert_in_spec(
        "index version",
        &format!("u8  version = {}", index::INDEX_VERSION_SEALED),
    );
    assert_in_spec(
        "envelope version",
        &format!("envelope version = {}", crate::seal_to::ENVELOPE_SEALED_TO),
    );
    assert_in_spec(
        "config version",
        &format!("\"version\": {}", config::FORMAT_VERSION),
    );
}

/// The envelope's kind list: `kind: 1 config, 2 index, ...` up to the
/// reserved byte.
fn spec_kinds() -> Vec<(u8, String)> {
    let start = SPEC
        .find("1     kind: ")
        .unwrap_or_else(|| panic!("FORMAT.md has no envelope kind list"));
    let rest = &SPEC[start + "1     kind: ".len()..];
    let end = rest
        .find("\n7 ")
        .unwrap_or_else(|| panic!("the kind list does not end at byte 7"));
    rest[..end]
        .split(',')
        .map(|item| {
            let item = item.split_whitespace().collect::<Vec<_>>().join(" ");
            let (n, name) = item
                .split_once(' ')
                .unwrap_or_else(|| panic!("kind list item {item:?}"));
            let n = n
                .parse()
                .unwrap_or_else(|e| panic!("kind number {n:?}: {e}"));
            (n, name.to_string())
        })
        .collect()
}

#[test]
fn envelope_kinds_match_both_ways() {
    let code: Vec<(u8, String)> = Sealed::ALL
        .iter()
        .map(|k| (*k as u8, k.noun().to_string()))
        .collect();
    assert_eq!(spec_kinds(), code, "FORMAT.md's envelope kinds");
    let mut seen = std::collections::HashSet::new();
    for k in Sealed::ALL {
        assert!(seen.insert(k as u8), "two kinds with tag {}", k as u8);
    }
}

/// The `## ` section whose heading starts with `heading`, up to the next
/// `## ` heading.
fn section(heading: &str) -> &'static str {
    let start = SPEC
        .find(&format!("## {heading}"))
        .unwrap_or_else(|| panic!("FORMAT.md has no section \"## {heading}\""));
    let rest = &SPEC[start..];
    &rest[..rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3)]
}

/// The directories of the object layout table (`| \`data/...\` | ...`).
fn spec_dirs() -> Vec<String> {
    section("Object layout")
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(path, _)| path))
        .map(|path| path.split('/').next().unwrap_or(path).to_string())
        .collect()
}

/// Every kind: a repository's, and the pending deletions of prune and of
/// sync destinations.
fn every_kind() -> impl Iterator<Item = ObjectKind> {
    ObjectKind::ALL
        .into_iter()
        .chain(std::iter::once(ObjectKind::Deletion))
}

#[test]
fn directories_match_both_ways() {
    let dirs = spec_dirs();
    for kind in every_kind() {
        let name = match kind.dir() {
            "" => "config",
            d => d,
        };
        assert!(
            dirs.iter().any(|d| d == name),
            "FORMAT.md's object layout has no `{name}` ({})",
            kind.noun()
        );
    }
    for d in &dirs {
        assert!(
            every_kind().any(|k| k.dir() == d || (k.dir().is_empty() && d == "config")),
            "FORMAT.md lists `{d}`, which no ObjectKind has"
        );
    }
}

fn check_manifest<M: Manifest>(heading: &str) {
    let dir = M::KIND.dir();
    let section = section(&format!("{heading} (`{dir}/"));
    assert!(
        section.contains(&format!("(kind {})", M::SEALED as u8)),
        "FORMAT.md's section on {} does not say it is sealed as kind {}",
        M::NOUN,
        M::SEALED as u8
    );
    // "Its `version` is the one the reader supports (1 for every kind today)".
    assert_eq!(
        M::VERSION,
        1,
        "{}: FORMAT.md says every manifest is at version 1",
        M::NOUN
    );
    let cap = if M::MAX_LEN == MAX_MANIFEST_LEN {
        format!("at most {} MiB", MAX_MANIFEST_LEN >> 20)
    } else {
        format!("{}: {} MiB", heading.to_lowercase(), M::MAX_LEN >> 20)
    };
    assert_in_spec(&format!("size cap of the {}", M::NOUN), &cap);
}

#[test]
fn every_manifest_kind_is_specified() {
    assert_in_spec("manifest rule", "(1 for every kind today)");
    check_manifest::<snapshot::Snapshot>("Snapshots");
    check_manifest::<log_segment::SegmentManifest>("Log segments");
    check_manifest::<account::AccountEvent>("Account events");
    check_manifest::<verification::VerificationRecord>("Verification records");
    check_manifest::<pending::PendingRecord>("Pending deletions");
}
