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
    let mut ctx = Context::new(cli.global)?;
    ctx.put_only_ok = matches!(
        cli.command,
        Command::Backup(_)
            | Command::Log(crate::cli::LogCommand::Push { .. })
            | Command::Key(crate::cli::KeyCommand::List)
    );
    match cli.command {
        Command::Init(args) => init::run(&ctx, &args),
        Command::Backup(args) => backup::run(&ctx, &args),
        Command::Snapshots(args) => snapshots::run(&ctx, &args),
        Command::Ls(args) => browse::ls(&ctx, &args),
        Command::Find(args) => browse::find(&ctx, &args),
        Command::Diff(args) => browse::diff(&ctx, &args),
        Command::Restore(args) => restore::run(&ctx, &args),
        Command::Check(args) => check::run(&ctx, &args),
        Command::Stats(args) => maintenance::stats(&ctx, &args),
        Command::Sync(args) => sync::run(&ctx, &args),
        Command::Log(cmd) => logs::run(&ctx, &cmd),
        Command::Export(cmd) => logs::export(&ctx, &cmd),
        Command::Forget(args) => forget::run(&ctx, &args),
        Command::Prune(args) => forget::prune(&ctx, &args),
        Command::Account(cmd) => account::run(&ctx, &cmd),
        Command::Key(cmd) => key::run(&ctx, &cmd),
        Command::Unlock(args) => maintenance::unlock(&ctx, &args),
        Command::Cache(cmd) => maintenance::cache(&ctx, &cmd),
        Command::Index(crate::cli::IndexCommand::Rebuild) => {
            ctx.note("cairn: `index rebuild` is now `cache rebuild`");
            maintenance::cache(&ctx, &crate::cli::CacheCommand::Rebuild)
        }
        Command::Version => maintenance::version(&ctx),
        Command::Repair(cmd) => maintenance::repair(&ctx, &cmd),
        Command::Cat(args) => cat::run(&ctx, &args),
        Command::Verify(args) => verify::run(&ctx, &args),
        Command::Service(cmd) => service::service(&ctx, &cmd),
        Command::Queue(cmd) => service::queue(&ctx, &cmd),
    }
}

impl SnapshotFilter {
    /// The snapshots that may pass the filter (only its account's when it
    /// names one), oldest first, and those that cannot be read.
    pub fn candidates(
        &self,
        repo: &Repository,
    ) -> Result<(
        Vec<cairn_repository::repo::SnapshotEntry>,
        Vec<cairn_repository::repo::UnreadableSnapshot>,
    )> {
        Ok(repo.snapshots_in(self.account.as_deref())?)
    }

    /// Whether a snapshot passes the filter.
    pub fn accepts(&self, s: &Snapshot) -> bool {
        self.account.as_ref().is_none_or(|a| &s.account == a)
            && self.host.as_ref().is_none_or(|h| &s.host == h)
            && self.tag.as_ref().is_none_or(|t| s.tags.contains(t))
            && self
                .paths
                .iter()
                .all(|p| s.paths.iter().any(|sp| sp.0 == p.as_bytes()))
    }
}

/// Resolve a snapshot argument (`latest`, id, prefix) under a filter.
pub fn find_snapshot(
    repo: &Repository,
    spec: &str,
    filter: &SnapshotFilter,
) -> Result<(SnapshotId, Snapshot)> {
    Ok(repo.find_snapshot(spec, filter.account.as_deref(), &|s| filter.accepts(s))?)
}

/// The error for a path a snapshot does not hold, with the absolute
/// paths it does hold that end the same way (snapshot paths are absolute:
/// `crates/cli` is `/crates/cli`, and the user likely meant
/// `/home/me/src/crates/cli`). The search visits at most 1,000,000 entries.
pub fn missing_path(
    repo: &Repository,
    id: &SnapshotId,
    snap: &Snapshot,
    path: &str,
) -> anyhow::Error {
    use cairn_repository::browse;
    let shown = format!("/{}", path.trim_start_matches('/'));
    let wanted = match browse::components(path.as_bytes()) {
        Ok(c) if !c.is_empty() => c.join(&b'/'),
        _ => return anyhow::anyhow!("snapshot {} has no {shown}", id.short()),
    };
    let mut matches: Vec<String> = Vec::new();
    let mut visited = 0usize;
    let _ = browse::walk(repo, &snap.tree, b"", &mut |p, _| {
        visited += 1;
        if p.len() > wanted.len()
            && p.ends_with(&wanted)
            && p[p.len() - wanted.len() - 1] == b'/'
            && matches.len() < 3
        {
            matches.push(format!("/{}", String::from_utf8_lossy(p)));
        }
        Ok(visited < 1_000_000 && matches.len() < 3)
    });
    match matches.as_slice() {
        [] => anyhow::anyhow!(
            "snapshot {} has no {shown} (snapshot paths are absolute; `cairn ls {}` lists them)",
            id.short(),
            id.short()
        ),
        found => anyhow::anyhow!(
            "snapshot {} has no {shown}; snapshot paths are absolute: did you mean {}?",
            id.short(),
            found.join(" or ")
        ),
    }
}
