//! `cairn key list|add|remove|passwd`.

use crate::cli::{KeyCommand, NewPassword};
use crate::context::{Context, Password, prompt_password};
use crate::output;
use anyhow::{Result, bail};
use cairn_repository::{KdfCost, KeyId, Repository};
use zeroize::Zeroizing;

fn new_password(args: &NewPassword) -> Result<Password> {
    match &args.new_password_file {
        Some(f) => {
            let text = Zeroizing::new(std::fs::read(f)?);
            let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
            if line.is_empty() {
                bail!("new password file {} is empty", f.display());
            }
            Ok(Zeroizing::new(line.to_vec()))
        }
        None if !std::io::IsTerminal::is_terminal(&std::io::stdin()) => bail!(
            "no new password given: use --new-password-file FILE (there is no terminal to ask on)"
        ),
        None => prompt_password("new password: ", true),
    }
}

/// The cost of the key in use, so new keys are as strong (and as quick).
fn current_cost(repo: &Repository) -> Result<KdfCost> {
    let current = repo.key_id();
    for (id, kf) in repo.list_keys()? {
        if id == current
            && let Ok(kf) = kf
        {
            return Ok(kf.cost);
        }
    }
    Ok(KdfCost::default())
}

fn resolve(repo: &Repository, prefix: &str) -> Result<KeyId> {
    let p = prefix.to_ascii_lowercase();
    let matches: Vec<KeyId> = repo
        .list_keys()?
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| id.to_hex().starts_with(&p))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => bail!("no key {prefix}"),
        _ => bail!("key prefix {prefix} is ambiguous"),
    }
}

/// A key command's result: `{"action": …, "id": …}` with --json, the
/// sentence on stdout otherwise.
fn report(ctx: &Context, action: &str, id: &KeyId, text: &str) -> Result<()> {
    if ctx.global.json {
        output::json(&serde_json::json!({ "action": action, "id": id }))
    } else {
        if !ctx.global.quiet {
            outln!("{text}");
        }
        Ok(())
    }
}

/// Run a key subcommand.
pub fn run(ctx: &Context, cmd: &KeyCommand) -> Result<u8> {
    let mut repo = ctx.open(false)?;
    match cmd {
        KeyCommand::List => {
            let current = repo.key_id();
            let keys = repo.list_keys()?;
            if ctx.global.json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|(id, kf)| match kf {
                        Ok(kf) => serde_json::json!({
                            "id": id, "current": *id == current, "username": kf.username,
                            "host": kf.host, "created": kf.created, "kdf": kf.kdf, "cost": kf.cost,
                            "put_only": kf.put_only.as_ref().map(|p| &p.accounts),
                            "error": null,
                        }),
                        Err(e) => {
                            serde_json::json!({ "id": id, "current": *id == current, "error": e })
                        }
                    })
                    .collect();
                output::json(&rows)?;
            } else {
                let mut table =
                    output::table(&["", "id", "user", "host", "created", "kdf", "may"], &[]);
                for (id, kf) in &keys {
                    let mark = if *id == current { "*" } else { "" };
                    match kf {
                        Ok(kf) => table.add_row(vec![
                            mark.to_string(),
                            id.short(),
                            kf.username.clone(),
                            kf.host.clone(),
                            output::local_time(kf.created),
                            format!(
                                "argon2id {} MiB x{}",
                                kf.cost.memory_kib / 1024,
                                kf.cost.iterations
                            ),
                            match &kf.put_only {
                                None => "everything".to_string(),
                                Some(p) => format!("put-only: {}", p.accounts.join(", ")),
                            },
                        ]),
                        Err(e) => table.add_row(vec![
                            mark.to_string(),
                            id.short(),
                            format!("unreadable: {e}"),
                        ]),
                    };
                }
                output::print_table(&table);
                outln!("* the key this password opened");
            }
        }
        KeyCommand::Add(args) => {
            let pw = new_password(&args.password)?;
            let _lock = repo.lock(false, "key add")?;
            let cost = current_cost(&repo)?;
            if args.put_only {
                let id = repo.add_put_only_key(&pw, cost, &args.account)?;
                report(
                    ctx,
                    "added",
                    &id,
                    &format!(
                        "added put-only key {} for {}",
                        id.short(),
                        args.account.join(", ")
                    ),
                )?;
                return Ok(crate::exit::OK);
            }
            let id = repo.add_key_as(
                &pw,
                cost,
                args.host
                    .clone()
                    .unwrap_or_else(cairn_repository::util::hostname),
                args.user
                    .clone()
                    .unwrap_or_else(cairn_repository::util::username),
            )?;
            report(ctx, "added", &id, &format!("added key {}", id.short()))?;
        }
        KeyCommand::Remove { id } => {
            let id = resolve(&repo, id)?;
            let _lock = repo.lock(false, "key remove")?;
            repo.remove_key(&id)?;
            report(ctx, "removed", &id, &format!("removed key {}", id.short()))?;
        }
        KeyCommand::Passwd(args) => {
            let pw = new_password(args)?;
            let cost = current_cost(&repo)?;
            let _lock = repo.lock(false, "key passwd")?;
            let id = repo.change_password(&pw, cost)?;
            report(
                ctx,
                "replaced",
                &id,
                &format!("password changed; the key is now {}", id.short()),
            )?;
        }
    }
    Ok(crate::exit::OK)
}
