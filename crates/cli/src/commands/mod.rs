//! One module per subcommand. Each `run` returns the exit code.

mod account;
mod backup;
mod browse;
mod cat;
mod check;
mod forget;
mod init;
mod key;
mod logs;
mod maintenance;
mod restore;
mod service;
mod snapshots;
mod sync;
mod verify;

use crate::cli::{Cli, Command, SnapshotFilter};
use crate::context::Context;
use anyhow::Result;
use cairn_repository::{Repository, Snapshot, SnapshotId};

/// Dispatch a parsed command line.
pub fn run(cli: Cli) -> Result<u8> {
    let ctx = Context::new(cli.global)?;
    match cli.command {
        Command::Init(args) => init::run(&ctx, &args),
        Command::Backup(args) => backup::run(&ctx, &args),
        Command::Snapshots(args) => snapshots::run(&ctx, &args),
        Command::Ls(args) => browse::ls(&ctx, &args),
        Command::Find(args) => browse::find(&ctx, &args),
        Command::Diff(args) => browse::diff(&ctx, &args),
        Command::Restore(args) => restore::run(&ctx, &args),
        Command::Check(args) => check::run(&ctx, &args),
        Command::Stats => maintenance::stats(&ctx),
        Command::Sync(args) => sync::run(&ctx, &args),
        Command::Log(cmd) => logs::run(&ctx, &cmd),
        Command::Export(cmd) => logs::export(&ctx, &cmd),
        Command::Forget(args) => forget::run(&ctx, &args),
        Command::Prune(args) => forget::prune(&ctx, &args),
        Command::Account(cmd) => account::run(&ctx, &cmd),
        Command::Key(cmd) => key::run(&ctx, &cmd),
        Command::Unlock(args) => maintenance::unlock(&ctx, &args),
        Command::Index(cmd) => maintenance::index(&ctx, &cmd),
        Command::Repair(cmd) => maintenance::repair(&ctx, &cmd),
        Command::Cat(args) => cat::run(&ctx, &args),
        Command::Verify(args) => verify::run(&ctx, &args),
        Command::Service(cmd) => service::service(&ctx, &cmd),
        Command::Queue(cmd) => service::queue(&ctx, &cmd),
    }
}

impl SnapshotFilter {
    /// Whether a snapshot passes the filter.
    pub fn accepts(&self, s: &Snapshot) -> bool {
        self.account.as_ref().is_none_or(|a| &s.account == a)
            && self.host.as_ref().is_none_or(|h| &s.host == h)
            && self.tag.as_ref().is_none_or(|t| s.tags.contains(t))
    }
}

/// Resolve a snapshot argument (`latest`, id, prefix) under a filter.
pub fn find_snapshot(
    repo: &Repository,
    spec: &str,
    filter: &SnapshotFilter,
) -> Result<(SnapshotId, Snapshot)> {
    Ok(repo.find_snapshot(spec, &|s| filter.accepts(s))?)
}
