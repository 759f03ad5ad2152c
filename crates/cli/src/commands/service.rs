//! `cairn service run|run-now` and `cairn queue list|cancel|clear`: the
//! command-line face of the `cairn-service` crate.

use crate::cli::{QueueCommand, ServiceCommand, ServiceConfigArg};
use crate::context::Context;
use crate::exit;
use crate::output::{self, size};
use anyhow::{Context as _, Result};
use cairn_service::control::Control;
use cairn_service::{Config, ItemState, Notifications, ProcessExecutor, QueueItem};
use std::sync::Arc;

fn load(arg: &ServiceConfigArg) -> Result<Config> {
    Ok(Config::load(&arg.config)?)
}

/// Refuse to start on what would make every job fail.
fn preflight(config: &Config) -> Result<()> {
    if let Some(f) = &config.password_file {
        std::fs::File::open(f)
            .with_context(|| format!("the password file {} is not readable", f.display()))?;
    }
    if let (Some(p), Some(r)) = (&config.policy, &config.retention)
        && r.enabled
    {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("the policy file {} is not readable", p.display()))?;
        cairn_retention::Policy::parse(&text)
            .map_err(|e| anyhow::anyhow!("the policy file {}: {e}", p.display()))?;
    }
    Ok(())
}

/// `cairn service ...`.
pub fn service(ctx: &Context, cmd: &ServiceCommand) -> Result<u8> {
    match cmd {
        ServiceCommand::Run(arg) => {
            let config = load(arg)?;
            preflight(&config)?;
            let stop = crate::signals::stop_requested()?;
            let cairn = std::env::current_exe().context("finding the cairn executable")?;
            let notifier = Notifications::new(config.notify.clone());
            cairn_service::run(
                config,
                Arc::new(ProcessExecutor { cairn }),
                Arc::new(notifier),
                stop,
            )?;
            Ok(exit::OK)
        }
        ServiceCommand::Status(arg) => {
            let control = Control::open_for_reading(&load(arg)?)?;
            let jobs = control.status()?;
            if ctx.global.json {
                output::json(&serde_json::json!({ "via": control.via_token(), "jobs": jobs }))?;
                return Ok(exit::OK);
            }
            let time = |t: Option<jiff::Timestamp>| t.map_or("-".to_string(), output::local_time);
            let short = |s: &Option<String>| {
                s.as_deref()
                    .map_or("-".to_string(), |s| s.chars().take(8).collect())
            };
            let mut table = output::table(
                &[
                    "job",
                    "kind",
                    "last start",
                    "result",
                    "snapshot",
                    "verified",
                    "next due",
                ],
                &[],
            );
            let mut failures = Vec::new();
            for j in &jobs {
                let result = match (j.state.last_start, j.state.last_ok) {
                    (None, _) => "-",
                    (Some(_), None) => "unfinished",
                    (Some(_), Some(true)) => "ok",
                    (Some(_), Some(false)) => "failed",
                };
                let next = if j.enabled {
                    time(j.next_due)
                } else {
                    "disabled".to_string()
                };
                table.add_row(vec![
                    j.name.clone(),
                    j.kind.clone(),
                    time(j.state.last_start),
                    result.to_string(),
                    short(&j.state.last_snapshot),
                    short(&j.state.last_verified),
                    next,
                ]);
                if let (Some(false), Some(m)) = (j.state.last_ok, &j.state.last_message) {
                    failures.push(format!("{}: {m}", j.name));
                }
            }
            output::print_table(&table);
            for f in &failures {
                outln!("last failure of {f}");
            }
            if !ctx.global.quiet {
                eprintln!("(read through {})", control.via());
            }
            Ok(exit::OK)
        }
        ServiceCommand::RunNow { job, config } => {
            let config = load(config)?;
            let control = Control::open(&config)?;
            let item = control.run_now(job)?;
            if ctx.global.json {
                output::json(&serde_json::json!({ "via": control.via_token(), "item": item }))?;
            } else if item.state == ItemState::Running {
                outln!("job {job} is already running as item {}", item.id);
            } else {
                outln!(
                    "job {job} queued as item {} (through {})",
                    item.id,
                    control.via()
                );
            }
            Ok(exit::OK)
        }
    }
}

fn progress_text(item: &QueueItem) -> String {
    if let Some(p) = &item.progress {
        let mut s = p.step.clone();
        if !p.phase.is_empty() && p.phase != p.step {
            s.push_str(&format!(" / {}", p.phase));
        }
        if p.bytes > 0 || p.total.is_some() {
            s.push_str(&format!(": {}", size(p.bytes)));
            if let Some(t) = p.total.filter(|t| *t > 0) {
                s.push_str(&format!(
                    " of {} ({:.0}%)",
                    size(t),
                    100.0 * p.bytes as f64 / t as f64
                ));
            }
        }
        return s;
    }
    item.message.clone().unwrap_or_default()
}

fn print_items(items: &[QueueItem]) {
    if items.is_empty() {
        outln!("the queue is empty");
        return;
    }
    let mut table = output::table(
        &[
            "id",
            "state",
            "job",
            "kind",
            "reason",
            "queued",
            "progress / message",
        ],
        &[0],
    );
    for i in items {
        table.add_row(vec![
            i.id.to_string(),
            i.state.to_string(),
            i.job.clone(),
            i.kind.clone(),
            i.reason.to_string(),
            output::local_time(i.queued),
            progress_text(i),
        ]);
    }
    output::print_table(&table);
}

/// `cairn queue ...`.
pub fn queue(ctx: &Context, cmd: &QueueCommand) -> Result<u8> {
    match cmd {
        QueueCommand::List { config, all } => {
            let control = Control::open(&load(config)?)?;
            let items: Vec<QueueItem> = control
                .list()?
                .into_iter()
                .filter(|i| *all || !i.state.finished())
                .collect();
            if ctx.global.json {
                output::json(&serde_json::json!({ "via": control.via_token(), "items": items }))?;
            } else {
                print_items(&items);
                if !ctx.global.quiet {
                    eprintln!("(read through {})", control.via());
                }
            }
            Ok(exit::OK)
        }
        QueueCommand::Cancel { id, config } => {
            let control = Control::open(&load(config)?)?;
            let item = control.cancel(*id)?;
            if ctx.global.json {
                output::json(&serde_json::json!({ "via": control.via_token(), "item": item }))?;
            } else if item.state == ItemState::Running {
                outln!(
                    "item {id} ({}) is stopping at its next safe point",
                    item.job
                );
            } else {
                outln!("item {id} ({}) cancelled", item.job);
            }
            Ok(exit::OK)
        }
        QueueCommand::Clear(config) => {
            let control = Control::open(&load(config)?)?;
            let items = control.clear()?;
            if ctx.global.json {
                output::json(&serde_json::json!({ "via": control.via_token(), "items": items }))?;
            } else if items.is_empty() {
                outln!("nothing was queued or running");
            } else {
                for i in &items {
                    if i.state == ItemState::Running {
                        outln!(
                            "item {} ({}) is stopping at its next safe point",
                            i.id,
                            i.job
                        );
                    } else {
                        outln!("item {} ({}) cancelled", i.id, i.job);
                    }
                }
            }
            Ok(exit::OK)
        }
    }
}
