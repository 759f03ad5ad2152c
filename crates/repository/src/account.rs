//! Accounts: the tenants snapshots and log segments belong to, and their
//! lifecycle (active, disabled, purged).
//!
//! An account's state is a series of immutable event objects under
//! `accounts/` (so they replicate with everything else); the newest event
//! decides. An account without events is active. Format in
//! `docs/FORMAT.md` ("Account events"); what the states mean for retention
//! in `docs/RETENTION.md`.

use crate::error::{Error, Result};
use crate::id::AccountEventId;
use crate::repo::Repository;
use crate::snapshot::validate_account;
pub use cairn_format::account::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// An account's current state and history.
#[derive(Debug, Clone, Serialize)]
pub struct AccountRecord {
    /// The account.
    pub account: String,
    /// Current state.
    pub state: AccountState,
    /// Since when.
    pub since: jiff::Timestamp,
    /// When it was disabled, if it is disabled or purged.
    pub disabled_since: Option<jiff::Timestamp>,
    /// Every event, oldest first.
    pub history: Vec<AccountEvent>,
}

/// Every account that has events, by name.
pub fn accounts(repo: &Repository) -> Result<BTreeMap<String, AccountRecord>> {
    let events = repo.load_manifests_cached::<AccountEvent>()?;
    let mut out: BTreeMap<String, AccountRecord> = BTreeMap::new();
    for (_, event) in events {
        let record = out
            .entry(event.account.clone())
            .or_insert_with(|| AccountRecord {
                account: event.account.clone(),
                state: AccountState::Active,
                since: event.time,
                disabled_since: None,
                history: Vec::new(),
            });
        match event.state {
            AccountState::Active => record.disabled_since = None,
            AccountState::Disabled => record.disabled_since = Some(event.time),
            AccountState::Purged => {
                record.disabled_since.get_or_insert(event.time);
            }
        }
        record.state = event.state;
        record.since = event.time;
        record.history.push(event);
    }
    Ok(out)
}

/// The state of one account (active when it has no events).
pub fn account(repo: &Repository, name: &str) -> Result<Option<AccountRecord>> {
    Ok(crate::account::accounts(repo)?.remove(name))
}

/// Record a lifecycle event.
pub fn record_account_event(
    repo: &Repository,
    account: &str,
    state: AccountState,
    time: jiff::Timestamp,
) -> Result<AccountEventId> {
    validate_account(account)?;
    let event = AccountEvent {
        version: ACCOUNT_EVENT_VERSION,
        account: account.to_string(),
        state,
        time,
        host: crate::util::hostname(),
        username: crate::util::username(),
        written: Some(jiff::Timestamp::now()),
    };
    let (id, _) = repo.save_manifest(&event)?;
    Ok(id)
}

/// Refuse new data for a disabled (or purged) account. A put-only key
/// cannot read account events: it checks only that its key file names the
/// account (the full key's retention still purges a disabled one).
pub fn ensure_account_active(repo: &Repository, account: &str) -> Result<()> {
    if repo.put_only_accounts().is_some() {
        return repo.require_account(account);
    }
    match crate::account::account(repo, account)? {
        Some(r) if r.state != AccountState::Active => Err(Error::AccountDisabled {
            account: account.to_string(),
            since: r.disabled_since.unwrap_or(r.since),
            state: r.state,
        }),
        _ => Ok(()),
    }
}
