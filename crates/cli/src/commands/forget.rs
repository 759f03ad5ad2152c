//! `cairn forget` (decide with the retention crate, explain, remove
//! snapshot manifests, record purges) and `cairn prune`.

use crate::cli::{ForgetArgs, PruneArgs, PruneSettings};
use crate::context::Context;
use crate::exit;
use crate::output::{self, size};
use crate::progress::CliProgress;
use anyhow::{Context as _, Result};
use cairn_repository::{
    AccountRecord, AccountState, ForgetPlan, PruneOptions, PruneReport, Repository, SnapshotId,
    Verdict, apply_forget,
};
use cairn_retention::{self as retention, AccountPlan, Policy};
use globset::Glob;
use jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Read and validate a policy file.
pub fn load_policy(path: &Path) -> Result<Policy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading policy file {}", path.display()))?;
    Policy::parse(&text).with_context(|| format!("policy file {}", path.display()))
}

/// Account states as retention sees them.
pub fn retention_states(
    accounts: &BTreeMap<String, AccountRecord>,
) -> HashMap<String, retention::AccountState> {
    accounts
        .values()
        .map(|r| {
            let state = match r.state {
                AccountState::Active => retention::AccountState::Active,
                AccountState::Disabled => retention::AccountState::Disabled {
                    since: r.disabled_since.unwrap_or(r.since),
                },
                AccountState::Purged => retention::AccountState::Purged { at: r.since },
            };
            (r.account.clone(), state)
        })
        .collect()
}

fn state_text(plan: &AccountPlan<SnapshotId>, tz: &jiff::tz::TimeZone) -> String {
    let t = |ts| output::time_in(ts, tz);
    let purge = |p: Option<retention::Purge>| match p {
        Some(p) if p.due => format!("; purge date {} (due: everything goes)", t(p.date)),
        Some(p) => format!("; purge date {}", t(p.date)),
        None => "; no purge-after in its policy: kept until enabled or purged by hand".into(),
    };
    match plan.state {
        retention::AccountState::Active => "active".into(),
        retention::AccountState::Disabled { since } => {
            format!("disabled since {}{}", t(since), purge(plan.purge))
        }
        retention::AccountState::Purged { at } => format!("purged at {}", t(at)),
    }
}

fn plan_json(plan: &AccountPlan<SnapshotId>) -> Value {
    json!({
        "account": plan.account,
        "policy": plan.section,
        "state": match plan.state {
            retention::AccountState::Active => "active",
            retention::AccountState::Disabled { .. } => "disabled",
            retention::AccountState::Purged { .. } => "purged",
        },
        "disabled_since": match plan.state {
            retention::AccountState::Disabled { since } => Some(since),
            _ => None,
        },
        "purge_date": plan.purge.map(|p| p.date),
        "purge_due": plan.purge.is_some_and(|p| p.due),
        "snapshots": plan.snapshots.iter().map(|d| json!({
            "id": d.id,
            "short_id": d.id.short(),
            "time": d.time,
            "keep": d.keep(),
            "reasons": d.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "removal": d.removal.as_ref().map(ToString::to_string),
        })).collect::<Vec<_>>(),
    })
}

fn print_plan(plan: &AccountPlan<SnapshotId>, policy: &Policy) {
    let tz = policy.timezone();
    outln!(
        "account {} ({} policy, times in {}): {}",
        plan.account,
        plan.section,
        policy.timezone_name(),
        state_text(plan, tz)
    );
    for d in &plan.snapshots {
        let why = if d.keep() {
            d.reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            d.removal
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        outln!(
            "  {:<6}  {}  {}  {}",
            if d.keep() { "keep" } else { "remove" },
            d.id.short(),
            output::time_in(d.time, tz),
            why
        );
    }
}

fn prune_options(s: &PruneSettings, dry_run: bool) -> PruneOptions {
    PruneOptions {
        max_unused_percent: s.max_unused,
        max_repack_bytes: s.max_repack_size,
        dry_run,
        delete_after: s.delete_after,
        now: None,
    }
}

fn print_prune(r: &PruneReport) {
    let verb = |done: &str, planned: &str| {
        if r.dry_run {
            planned.to_string()
        } else {
            done.to_string()
        }
    };
    outln!(
        "prune{}: {} snapshots use {} of {} blobs",
        if r.dry_run { " (dry run)" } else { "" },
        r.snapshots,
        r.blobs_used,
        r.blobs_before
    );
    outln!(
        "  {} {} packs ({}) from the index: nothing in them is used, or they are repacked",
        verb("retired", "would retire"),
        r.packs_retired,
        size(r.bytes_retired)
    );
    outln!(
        "  {} {} packs ({}), copying {} still in use",
        verb("repacked", "would repack"),
        r.packs_repacked,
        size(r.bytes_repacked),
        size(r.bytes_copied)
    );
    outln!(
        "  {} {} packs ({}) that have waited {} since they were retired, or that no index lists and are that old",
        verb("deleted", "would delete"),
        r.packs_deleted,
        size(r.bytes_deleted),
        crate::output::duration(std::time::Duration::from_secs(r.delete_after_secs))
    );
    if r.packs_pending > 0 {
        outln!(
            "  {} packs ({}) wait for deletion by a later prune{}",
            r.packs_pending,
            size(r.bytes_pending),
            r.next_deletion
                .map(|t| format!(", the first after {}", crate::output::local_time(t)))
                .unwrap_or_default()
        );
    }
    if r.orphans_adopted + r.orphans_young + r.orphans_unreadable + r.staging_files_removed > 0 {
        outln!(
            "  {} packs no index listed were indexed again (a snapshot uses them), {} are left until older, {} are unreadable; {} staging files removed",
            r.orphans_adopted,
            r.orphans_young,
            r.orphans_unreadable,
            r.staging_files_removed
        );
    }
    if r.packs_retained > 0 {
        outln!(
            "  {} packs due for deletion are retained by object lock and wait until it passes",
            r.packs_retained
        );
    }
    if r.retention_extended > 0 {
        outln!(
            "  object lock: the retention of {} objects in use extended",
            r.retention_extended
        );
    }
    if r.locks_removed > 0 {
        outln!(
            "  {} lock objects that bound nobody removed (stale, or released by hosts that may not delete)",
            r.locks_removed
        );
    }
    for c in &r.contradictions {
        outln!("  warning: {c}");
    }
    if r.listing_changed {
        outln!(
            "  warning: objects appeared in the repository while prune ran (a faulty listing, or a lock that was not respected): nothing was deleted; run prune again"
        );
    }
    outln!(
        "  {} {}: {} before, {} after ({} unused left)",
        verb("reclaimed", "would reclaim"),
        size(r.bytes_reclaimed()),
        size(r.bytes_before),
        size(r.bytes_after),
        size(r.unused_bytes_after)
    );
}

fn prune_json(r: &PruneReport) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    v["bytes_reclaimed"] = json!(r.bytes_reclaimed());
    v
}

/// Apply a retention policy.
pub fn run(ctx: &Context, args: &ForgetArgs) -> Result<u8> {
    // Deleting half a plan is worse than finishing it: the first SIGTERM
    // or Ctrl-C waits for the end, a second one ends the process (which
    // the deletion order also survives).
    let _finish_first = crate::signals::stop_requested()?;
    if !args.snapshots.is_empty() {
        if args.keep.policy_text().is_some() || args.account.is_some() || args.now.is_some() {
            anyhow::bail!("give snapshots to remove, or a policy (--policy or --keep-*), not both");
        }
        return forget_named(ctx, args);
    }
    // Everything that can be wrong with the input is found before the
    // repository is touched: a bad policy file deletes nothing.
    let policy = match (&args.policy, args.keep.policy_text()) {
        (Some(path), _) => load_policy(path)?,
        (None, Some(text)) => Policy::parse(&text).context("the --keep-* flags")?,
        (None, None) => anyhow::bail!(
            "say what to remove: a policy file (--policy FILE, docs/RETENTION.md), --keep-* flags (--keep-daily 7 …), or snapshot ids"
        ),
    };
    let filter = match &args.account {
        Some(g) => Some(
            Glob::new(g)
                .with_context(|| format!("--account {g:?}"))?
                .compile_matcher(),
        ),
        None => None,
    };
    let wanted = |account: &str| filter.as_ref().is_none_or(|f| f.is_match(account));
    let repo = ctx.open(false)?;
    let lock = if args.dry_run {
        None
    } else {
        Some(repo.lock(true, "forget")?)
    };
    let (snaps, unreadable) = repo.snapshots()?;
    for (id, e) in &unreadable {
        eprintln!(
            "cairn: warning: snapshot {} cannot be read and is left alone: {e}",
            id.short()
        );
    }
    let accounts = cairn_repository::account::accounts(&repo)?;
    // Failed verifications make a snapshot not count; an unreadable record
    // stops forget rather than let a bad snapshot pass for a good one.
    let mut verifications = cairn_repository::verification::verifications(&repo)
        .context("reading the snapshots' verification records")?;
    let verdict = |id: &SnapshotId| match verifications.get(id).and_then(|r| r.last()) {
        Some((_, r)) if r.verdict == Verdict::Failed => retention::Status::Failed,
        Some(_) => retention::Status::Verified,
        None => retention::Status::Complete,
    };
    let now = args.now.unwrap_or_else(Timestamp::now);
    // What forget does is recorded under `now` (a purge event): a time
    // ahead of the clock may only be tried out.
    if args.now.is_some_and(|t| t > Timestamp::now()) && !args.dry_run {
        anyhow::bail!(
            "--now {} is ahead of this machine's clock; a forget that deletes runs at the real time (add --dry-run to see what would happen then)",
            args.now.map(|t| t.to_string()).unwrap_or_default()
        );
    }
    let infos: Vec<retention::SnapshotInfo<SnapshotId>> = snaps
        .iter()
        .filter(|(_, s)| wanted(&s.account))
        .map(|(id, s)| retention::SnapshotInfo {
            id: *id,
            time: s.time,
            account: s.account.clone(),
            tags: s.tags.clone(),
            status: verdict(id),
        })
        .collect();
    let mut states = retention_states(&accounts);
    states.retain(|name, _| wanted(name));
    let plans = retention::plan(&infos, &states, &policy, now);
    for p in &plans {
        for d in p
            .snapshots
            .iter()
            .filter(|d| d.reasons.contains(&retention::Reason::Future))
        {
            eprintln!(
                "cairn: warning: snapshot {} of account {} is dated {}, ahead of the clock ({now}); it is kept and left out of the rules (check the clock of the host that took it)",
                d.id.short(),
                p.account,
                d.time
            );
        }
    }
    let segments: Vec<cairn_repository::logs::Segment> =
        cairn_repository::logs::all_log_segments(&repo)?
            .into_iter()
            .filter(|s| wanted(&s.manifest.account))
            .collect();
    let log_infos: Vec<retention::LogInfo<usize>> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| retention::LogInfo {
            id: i,
            account: s.manifest.account.clone(),
            stream: s.manifest.stream.clone(),
            time: s.manifest.pushed,
        })
        .collect();
    let log_plan = retention::plan_logs(&log_infos, &plans, &policy);
    // Per account and stream: (kept, removed) sequence ranges.
    let mut log_summary: BTreeMap<(String, String), (Vec<u64>, Vec<u64>)> = BTreeMap::new();
    for d in &log_plan {
        let seg = &segments[d.id];
        let entry = log_summary
            .entry((seg.manifest.account.clone(), seg.manifest.stream.clone()))
            .or_default();
        if d.keep() {
            entry.0.push(seg.manifest.seq);
        } else {
            entry.1.push(seg.manifest.seq);
        }
    }
    let seq_range = |v: &[u64]| match (v.iter().min(), v.iter().max()) {
        (Some(a), Some(b)) => format!("{} (sequence {a}..{b})", v.len()),
        _ => "0".to_string(),
    };

    let kept: usize = plans
        .iter()
        .map(|p| p.snapshots.iter().filter(|d| d.keep()).count())
        .sum();
    let removed: usize = plans.iter().map(|p| p.snapshots.len()).sum::<usize>() - kept;
    if !ctx.global.json {
        for p in &plans {
            print_plan(p, &policy);
            for ((account, stream), (kept, removed)) in &log_summary {
                if account == &p.account {
                    outln!(
                        "  logs {stream}: keep {}, remove {}",
                        seq_range(kept),
                        seq_range(removed)
                    );
                }
            }
        }
        outln!(
            "{kept} snapshots kept, {removed} {}",
            if args.dry_run {
                "would be removed (dry run)"
            } else {
                "removed"
            }
        );
    }
    let mut purged = Vec::new();
    let mut retained: (usize, Option<Timestamp>) = (0, None);
    let mut doomed = std::collections::HashSet::new();
    if let Some(lock) = &lock {
        let plan = ForgetPlan {
            now,
            snapshots: plans
                .iter()
                .flat_map(|p| p.snapshots.iter().filter(|d| !d.keep()))
                .map(|d| (d.id, verifications.remove(&d.id).unwrap_or_default()))
                .collect(),
            segments: log_plan
                .iter()
                .filter(|d| !d.keep())
                .map(|d| segments[d.id].clone())
                .collect(),
            purge: plans
                .iter()
                .filter(|p| {
                    p.purge.is_some_and(|pg| pg.due)
                        && matches!(p.state, retention::AccountState::Disabled { .. })
                })
                .map(|p| p.account.clone())
                .collect(),
        };
        let outcome = apply_forget(&repo, &plan, lock)?;
        purged = outcome.purged;
        for a in &purged {
            ctx.note(&format!("account {a} purged"));
        }
        if let Some(until) = outcome.retained_until {
            ctx.note(&format!(
                "{} of the snapshots and log segments to remove are retained by object lock until {} at the earliest; a forget after that removes them",
                outcome.retained,
                crate::output::local_time(until)
            ));
        }
        retained = (outcome.retained, outcome.retained_until);
        doomed = outcome.doomed;
    }
    let mut prune_report = None;
    if args.prune {
        match &lock {
            Some(lock) => {
                prune_report = Some(prune_under(ctx, &repo, &args.prune_opts, lock, &doomed)?);
            }
            None => ctx.note("prune skipped: this is a dry run, the snapshots are still there"),
        }
    }
    if ctx.global.json {
        output::json(&cairn_protocol::report::ForgetReport {
            dry_run: args.dry_run,
            now,
            timezone: policy.timezone_name().to_string(),
            accounts: plans.iter().map(plan_json).collect(),
            kept: kept as u64,
            removed: removed as u64,
            logs: log_summary
                .iter()
                .map(
                    |((account, stream), (k, r))| cairn_protocol::report::LogRetention {
                        account: account.clone(),
                        stream: stream.clone(),
                        kept: k.len() as u64,
                        removed: r.len() as u64,
                    },
                )
                .collect(),
            purged_accounts: purged.clone(),
            retained: retained.0 as u64,
            retained_until: retained.1,
            prune: prune_report.as_ref().map(prune_json),
        })?;
    }
    drop(lock);
    Ok(exit::OK)
}

/// `forget SNAPSHOT…`: remove named snapshots. As with a policy, the
/// newest good (not failed) snapshot of an account stays unless
/// `--force`, a dry run only says what would go, and the verification
/// records go with their snapshots.
fn forget_named(ctx: &Context, args: &ForgetArgs) -> Result<u8> {
    let repo = ctx.open(false)?;
    let lock = if args.dry_run {
        None
    } else {
        Some(repo.lock(true, "forget")?)
    };
    let mut chosen: Vec<(SnapshotId, cairn_repository::Snapshot)> = Vec::new();
    for spec in &args.snapshots {
        let (id, snap) = super::find_snapshot(&repo, spec, &Default::default())?;
        if !chosen.iter().any(|(c, _)| *c == id) {
            chosen.push((id, snap));
        }
    }
    let (snaps, _) = repo.snapshots()?;
    let mut verifications = cairn_repository::verification::verifications(&repo)
        .context("reading the snapshots' verification records")?;
    let failed = |id: &SnapshotId| {
        verifications
            .get(id)
            .and_then(|r| r.last())
            .is_some_and(|(_, r)| r.verdict == Verdict::Failed)
    };
    // The newest good snapshot of each account the removal touches.
    if !args.force {
        for (id, snap) in &chosen {
            let newest_good = snaps
                .iter()
                .filter(|(i, s)| s.account == snap.account && !failed(i))
                .max_by_key(|(i, s)| (s.time, *i))
                .map(|(i, _)| *i);
            if newest_good == Some(*id) {
                anyhow::bail!(
                    "snapshot {} is the newest good snapshot of account {}; removing it needs --force",
                    id.short(),
                    snap.account
                );
            }
        }
    }
    if ctx.global.json {
        output::json(&json!({
            "dry_run": args.dry_run,
            "removed": chosen.iter().map(|(id, s)| json!({
                "id": id,
                "short_id": id.short(),
                "time": s.time,
                "account": s.account,
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        for (id, s) in &chosen {
            outln!(
                "{} {} ({} account, {})",
                if args.dry_run {
                    "would remove"
                } else {
                    "remove"
                },
                id.short(),
                s.account,
                output::local_time(s.time)
            );
        }
        outln!(
            "{} {}",
            output::count(chosen.len() as u64, "snapshot", "snapshots"),
            if args.dry_run {
                "would be removed (dry run)"
            } else {
                "removed"
            }
        );
    }
    if let Some(lock) = &lock {
        let plan = ForgetPlan {
            now: Timestamp::now(),
            snapshots: chosen
                .iter()
                .map(|(id, _)| (*id, verifications.remove(id).unwrap_or_default()))
                .collect(),
            segments: Vec::new(),
            purge: Vec::new(),
        };
        let outcome = apply_forget(&repo, &plan, lock)?;
        if let Some(until) = outcome.retained_until {
            ctx.note(&format!(
                "{} of them are retained by object lock until {} at the earliest and stay; a forget after that removes them",
                outcome.retained,
                crate::output::local_time(until)
            ));
        }
        if args.prune {
            prune_under(ctx, &repo, &args.prune_opts, lock, &outcome.doomed)?;
        }
    }
    Ok(exit::OK)
}

/// `forget --prune`: prune under forget's exclusive lock, printing the
/// report unless `--json`.
fn prune_under(
    ctx: &Context,
    repo: &Repository,
    settings: &PruneSettings,
    lock: &cairn_repository::lock::LockGuard,
    doomed: &std::collections::HashSet<String>,
) -> Result<PruneReport> {
    let progress = CliProgress::new(ctx.global.quiet, ctx.global.json);
    let r = cairn_repository::prune_locked(
        repo,
        &prune_options(settings, false),
        lock,
        &progress,
        cairn_repository::ExtendManifests::AllBut(doomed),
    )?;
    if !ctx.global.json {
        print_prune(&r);
    }
    Ok(r)
}

/// Delete unused data.
pub fn prune(ctx: &Context, args: &PruneArgs) -> Result<u8> {
    // As for forget: the first signal lets prune finish.
    let _finish_first = crate::signals::stop_requested()?;
    let repo: Repository = ctx.open(false)?;
    let progress = CliProgress::new(ctx.global.quiet, ctx.global.json);
    let report = cairn_repository::prune(
        &repo,
        &prune_options(&args.settings, args.dry_run),
        &progress,
    )?;
    if ctx.global.json {
        output::json(&prune_json(&report))?;
    } else {
        print_prune(&report);
    }
    Ok(exit::OK)
}
