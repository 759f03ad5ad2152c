//! `cairn ls`, `cairn find` and `cairn diff`.

use crate::cli::{DiffArgs, FindArgs, LsArgs};
use crate::context::Context;
use crate::output::{self, mode_string, size};
use anyhow::{Context as _, Result};
use cairn_repository::browse::{self, Located};
use cairn_repository::{Node, NodeData, RawPath, SnapshotId};
use globset::GlobBuilder;
use serde::Serialize;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An entry as printed by `ls --json` and `find --json`.
#[derive(Debug, Serialize)]
struct EntryRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<SnapshotId>,
    path: RawPath,
    #[serde(rename = "type")]
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: String,
    /// Null for what is not a link (one shape for every entry).
    target: Option<RawPath>,
}

fn kind_char(n: &Node) -> char {
    match n.data {
        NodeData::Dir { .. } => 'd',
        NodeData::Symlink { .. } => 'l',
        NodeData::Fifo => 'p',
        NodeData::CharDevice => 'c',
        NodeData::BlockDevice => 'b',
        NodeData::Socket => 's',
        NodeData::File { .. } | NodeData::Hardlink { .. } => '-',
    }
}

fn slash(path: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(path.len() + 1);
    p.push(b'/');
    p.extend_from_slice(path);
    p
}

fn row(snapshot: Option<SnapshotId>, path: &[u8], n: &Node) -> EntryRow {
    let target = match &n.data {
        NodeData::Symlink { target } => Some(RawPath(target.clone())),
        NodeData::Hardlink { target } => Some(RawPath(slash(target))),
        _ => None,
    };
    EntryRow {
        snapshot,
        path: RawPath(slash(path)),
        kind: n.data.kind_name(),
        mode: n.meta.mode,
        uid: n.meta.uid,
        gid: n.meta.gid,
        size: n.meta.size,
        mtime: output::unix_time_utc(n.meta.mtime.sec, n.meta.mtime.nsec),
        target,
    }
}

fn print_long(r: &EntryRow, n: &Node) {
    let target = match &r.target {
        Some(t) if matches!(n.data, NodeData::Symlink { .. }) => format!(" -> {}", t.display()),
        Some(t) => format!(" => {}", t.display()),
        None => String::new(),
    };
    outln!(
        "{} {:<8} {:<8} {:>10}  {}  {}{}",
        mode_string(kind_char(n), n.meta.mode),
        output::user_name(n.meta.uid),
        output::group_name(n.meta.gid),
        n.meta.size,
        output::unix_time(n.meta.mtime.sec, n.meta.mtime.nsec),
        r.path.display(),
        target
    );
}

/// List a snapshot's entries (recursively under PATH).
pub fn ls(ctx: &Context, args: &LsArgs) -> Result<u8> {
    let repo = ctx.open(false)?;
    let (id, snap) = super::find_snapshot(&repo, &args.snapshot, &args.filter)?;
    let base = args.path.as_deref().unwrap_or("");
    let mut rows = Vec::new();
    let mut emit = |path: &[u8], n: &Node| {
        let r = row(None, path, n);
        if ctx.global.json {
            rows.push(r);
        } else if args.long {
            print_long(&r, n);
        } else {
            outln!("{}", r.path.display());
        }
    };
    let located = match browse::locate(&repo, &snap.tree, base.as_bytes()) {
        Err(e) if e.is_not_found() => return Err(super::missing_path(&repo, &id, &snap, base)),
        other => other.with_context(|| format!("snapshot {}", id.short()))?,
    };
    match located {
        Located::Entry(n) => emit(base.trim_start_matches('/').as_bytes(), &n),
        Located::Dir { tree, .. } => {
            let prefix = browse::components(base.as_bytes())?.join(&b'/');
            browse::walk(&repo, &tree, &prefix, &mut |p, n| {
                emit(p, n);
                Ok(true)
            })?;
        }
    }
    if ctx.global.json {
        output::json(&rows)?;
    }
    Ok(crate::exit::OK)
}

/// Which snapshots hold matching paths.
pub fn find(ctx: &Context, args: &FindArgs) -> Result<u8> {
    let glob = GlobBuilder::new(&args.pattern)
        .literal_separator(true)
        .build()
        .with_context(|| format!("pattern {:?}", args.pattern))?
        .compile_matcher();
    let by_path = args.pattern.contains('/');
    let repo = ctx.open(false)?;
    let (snaps, _) = args.filter.candidates(&repo)?;
    let mut only: Vec<SnapshotId> = Vec::new();
    for spec in &args.snapshots {
        only.push(super::find_snapshot(&repo, spec, &args.filter)?.0);
    }
    let in_time = |n: &Node| {
        let Ok(t) = jiff::Timestamp::new(n.meta.mtime.sec, n.meta.mtime.nsec as i32) else {
            return args.newest.is_none() && args.oldest.is_none();
        };
        args.newest.is_none_or(|newest| t <= newest) && args.oldest.is_none_or(|oldest| t >= oldest)
    };
    let mut rows = Vec::new();
    let mut table = output::table(
        &["snapshot", "snapshot time", "size", "modified", "path"],
        &[2],
    );
    let mut found = 0usize;
    let chosen = snaps
        .iter()
        .filter(|(id, s)| args.filter.accepts(s) && (only.is_empty() || only.contains(id)));
    let test = |p: &[u8], n: &Node| {
        let subject = if by_path { slash(p) } else { n.name.clone() };
        glob.is_match(Path::new(OsStr::from_bytes(&subject))) && in_time(n)
    };
    // Identical subtrees, shared by many snapshots, are searched once.
    let mut finder = browse::Finder::new(&repo, by_path, &test);
    for (id, snap) in chosen {
        for (p, n) in finder.search(&snap.tree)?.iter() {
            found += 1;
            let r = row(Some(*id), p, n);
            if ctx.global.json {
                rows.push(r);
            } else {
                table.add_row(vec![
                    id.short(),
                    output::local_time(snap.time),
                    size(n.meta.size),
                    output::unix_time(n.meta.mtime.sec, n.meta.mtime.nsec),
                    r.path.display(),
                ]);
            }
        }
    }
    tracing::debug!("find read {} distinct trees", finder.trees_read());
    if ctx.global.json {
        output::json(&rows)?;
    } else if found == 0 {
        ctx.note("no matches");
    } else {
        output::print_table(&table);
    }
    Ok(crate::exit::OK)
}

/// What changed between two snapshots.
pub fn diff(ctx: &Context, args: &DiffArgs) -> Result<u8> {
    let repo = ctx.open(false)?;
    let (a_id, a) = super::find_snapshot(&repo, &args.first, &Default::default())?;
    let (b_id, b) = super::find_snapshot(&repo, &args.second, &Default::default())?;
    let changes = browse::diff(&repo, &a.tree, &b.tree)?;
    if ctx.global.json {
        let changes: Vec<_> = changes
            .iter()
            .map(|c| serde_json::json!({ "kind": c.kind, "path": RawPath(slash(&c.path.0)) }))
            .collect();
        output::json(&serde_json::json!({
            "from": a_id,
            "to": b_id,
            "changes": changes,
        }))?;
    } else {
        for c in &changes {
            outln!("{}  /{}", c.kind, c.path.display());
        }
        if !ctx.global.quiet {
            outln!(
                "{} from {} to {}",
                output::count(changes.len() as u64, "change", "changes"),
                a_id.short(),
                b_id.short()
            );
        }
    }
    Ok(crate::exit::OK)
}
