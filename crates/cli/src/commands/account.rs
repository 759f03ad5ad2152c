//! `cairn account list|show|disable|enable`.

use super::forget::{load_policy, retention_states};
use crate::cli::AccountCommand;
use crate::context::Context;
use crate::exit;
use crate::output;
use anyhow::{Result, bail};
use cairn_repository::{AccountState, Repository, Snapshot, SnapshotId, snapshot};
use cairn_retention::{self as retention, Policy};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One account's summary.
struct Row {
    name: String,
    state: AccountState,
    since: Option<jiff::Timestamp>,
    snapshots: Vec<(SnapshotId, Snapshot)>,
    purge: Option<retention::Purge>,
    history: Vec<cairn_repository::AccountEvent>,
}

fn rows(repo: &Repository, policy: Option<&Policy>) -> Result<Vec<Row>> {
    let (snaps, _) = repo.snapshots()?;
    let accounts = cairn_repository::account::accounts(repo)?;
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for (name, rec) in &accounts {
        rows.insert(
            name.clone(),
            Row {
                name: name.clone(),
                state: rec.state,
                since: Some(rec.since),
                snapshots: Vec::new(),
                purge: None,
                history: rec.history.clone(),
            },
        );
    }
    for (id, s) in snaps {
        rows.entry(s.account.clone())
            .or_insert_with(|| Row {
                name: s.account.clone(),
                state: AccountState::Active,
                since: None,
                snapshots: Vec::new(),
                purge: None,
                history: Vec::new(),
            })
            .snapshots
            .push((id, s));
    }
    if let Some(policy) = policy {
        let states = retention_states(&accounts);
        let plans = retention::plan::<()>(&[], &states, policy, jiff::Timestamp::now());
        for p in plans {
            if let Some(row) = rows.get_mut(&p.account) {
                row.purge = p.purge;
            }
        }
    }
    Ok(rows.into_values().collect())
}

fn state_name(s: AccountState) -> &'static str {
    match s {
        AccountState::Active => "active",
        AccountState::Disabled => "disabled",
        AccountState::Purged => "purged",
    }
}

fn row_json(r: &Row, detail: bool) -> Value {
    let mut v = json!({
        "account": r.name,
        "state": state_name(r.state),
        "since": r.since,
        "snapshots": r.snapshots.len(),
        "newest_snapshot": r.snapshots.last().map(|(_, s)| s.time),
        "purge_date": r.purge.map(|p| p.date),
        "purge_due": r.purge.map(|p| p.due),
    });
    if detail {
        v["history"] = json!(r.history);
        v["snapshot_ids"] = json!(r.snapshots.iter().map(|(id, _)| id).collect::<Vec<_>>());
    }
    v
}

fn describe(r: &Row) -> String {
    let since = r
        .since
        .map(|t| format!(" since {}", output::local_time(t)))
        .unwrap_or_default();
    let purge = match r.purge {
        Some(p) if p.due => format!(", purge due since {}", output::local_time(p.date)),
        Some(p) => format!(", purged on {}", output::local_time(p.date)),
        None => String::new(),
    };
    format!("{}{since}{purge}", state_name(r.state))
}

fn load(policy: &Option<PathBuf>) -> Result<Option<Policy>> {
    policy.as_deref().map(load_policy).transpose()
}

/// Run an account subcommand.
pub fn run(ctx: &Context, cmd: &AccountCommand) -> Result<u8> {
    match cmd {
        AccountCommand::List { policy } => {
            let policy = load(policy)?;
            let repo = ctx.open(false)?;
            let rows = rows(&repo, policy.as_ref())?;
            if ctx.global.json {
                output::json(&rows.iter().map(|r| row_json(r, false)).collect::<Vec<_>>())?;
            } else {
                let mut table = output::table(&["account", "snapshots", "newest", "state"], &[1]);
                for r in &rows {
                    let newest = r
                        .snapshots
                        .last()
                        .map(|(_, s)| output::local_time(s.time))
                        .unwrap_or_else(|| "-".into());
                    table.add_row(vec![
                        r.name.clone(),
                        r.snapshots.len().to_string(),
                        newest,
                        describe(r),
                    ]);
                }
                if rows.is_empty() {
                    outln!("no accounts");
                } else {
                    output::print_table(&table);
                }
            }
        }
        AccountCommand::Show { name, policy } => {
            let policy = load(policy)?;
            let repo = ctx.open(false)?;
            let rows = rows(&repo, policy.as_ref())?;
            let Some(r) = rows.iter().find(|r| &r.name == name) else {
                bail!("no account {name:?} (no snapshots and no lifecycle events)");
            };
            if ctx.global.json {
                output::json(&row_json(r, true))?;
            } else {
                outln!("account {}: {}", r.name, describe(r));
                for e in &r.history {
                    outln!(
                        "  {}  {} by {}@{}",
                        output::local_time(e.time),
                        state_name(e.state),
                        e.username,
                        e.host
                    );
                }
                for (id, s) in &r.snapshots {
                    outln!("  snapshot {}  {}", id.short(), output::local_time(s.time));
                }
            }
        }
        AccountCommand::Disable { name, time } | AccountCommand::Enable { name, time } => {
            snapshot::validate_account(name)?;
            let target = if matches!(cmd, AccountCommand::Disable { .. }) {
                AccountState::Disabled
            } else {
                AccountState::Active
            };
            let repo = ctx.open(false)?;
            let current = cairn_repository::account::account(&repo, name)?;
            let now = current.as_ref().map_or(AccountState::Active, |r| r.state);
            let already =
                now == target || (target == AccountState::Disabled && now == AccountState::Purged);
            if already {
                ctx.say(&format!("account {name} is already {}", state_name(now)));
            } else {
                let when = time.unwrap_or_else(jiff::Timestamp::now);
                let _lock = repo.lock(false, "account")?;
                cairn_repository::account::record_account_event(&repo, name, target, when)?;
                ctx.say(&format!(
                    "account {name} {} at {}",
                    if target == AccountState::Active {
                        "enabled"
                    } else {
                        "disabled"
                    },
                    output::local_time(when)
                ));
                if now == AccountState::Purged {
                    let purged = current
                        .as_ref()
                        .map(|r| output::local_time(r.since))
                        .unwrap_or_default();
                    ctx.note(&format!(
                        "account {name} was purged on {purged}: the snapshots and logs it had then are gone for good; new backups of it are taken again from now on"
                    ));
                }
            }
            if ctx.global.json {
                let r = cairn_repository::account::account(&repo, name)?;
                output::json(&json!({
                    "account": name,
                    "state": state_name(r.as_ref().map_or(AccountState::Active, |r| r.state)),
                    "since": r.map(|r| r.since),
                }))?;
            }
        }
    }
    Ok(exit::OK)
}
