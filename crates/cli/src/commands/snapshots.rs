//! `cairn snapshots`.

use crate::cli::SnapshotsArgs;
use crate::context::Context;
use crate::output::{self, SnapshotRow, size};
use anyhow::Result;

/// List snapshots, oldest first.
pub fn run(ctx: &Context, args: &SnapshotsArgs) -> Result<u8> {
    let repo = ctx.open(false)?;
    let (snaps, unreadable) = repo.snapshots()?;
    for (id, e) in &unreadable {
        eprintln!("warning: snapshot {} cannot be read: {e}", id.short());
    }
    let snaps: Vec<_> = snaps
        .iter()
        .filter(|(_, s)| args.filter.accepts(s))
        .collect();
    if ctx.global.json {
        let rows: Vec<SnapshotRow<'_>> = snaps
            .iter()
            .map(|(id, s)| SnapshotRow::new(*id, s))
            .collect();
        output::json(&rows)?;
        return Ok(crate::exit::OK);
    }
    println!(
        "{:<8}  {:<19}  {:<12}  {:<12}  {:>10}  {:<10}  paths",
        "id", "time", "host", "account", "size", "tags"
    );
    for (id, s) in &snaps {
        let paths: Vec<String> = s.paths.iter().map(|p| p.display()).collect();
        println!(
            "{:<8}  {:<19}  {:<12}  {:<12}  {:>10}  {:<10}  {}",
            id.short(),
            output::local_time(s.time),
            s.host,
            s.account,
            size(s.summary.bytes_total),
            s.tags.join(","),
            paths.join(" ")
        );
    }
    println!("{} snapshots", snaps.len());
    Ok(crate::exit::OK)
}
