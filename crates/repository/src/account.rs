//! Accounts: the tenants snapshots and log segments belong to, and their
//! lifecycle (active, disabled, purged).
//!
//! An account's state is a series of immutable event objects under
//! `accounts/` (so they replicate with everything else); the newest event
//! decides. An account without events is active. Format in
//! `docs/FORMAT.md` ("Account events"); what the states mean for retention
//! in `docs/RETENTION.md`.

use crate::crypto::{self, Sealed};
use crate::error::{Error, Result};
use crate::id::AccountEventId;
use crate::repo::Repository;
use crate::snapshot::validate_account;
use crate::store::ObjectKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Current event version.
pub const ACCOUNT_EVENT_VERSION: u32 = 1;

/// Lifecycle states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountState {
    /// Backed up normally.
    Active,
    /// Takes no new snapshots or log segments; purged after `purge-after`.
    Disabled,
    /// Its snapshots and logs were removed by forget.
    Purged,
}

/// One lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEvent {
    /// Event version.
    pub version: u32,
    /// The account.
    pub account: String,
    /// The state it entered.
    pub state: AccountState,
    /// When (`account disable --time` may backdate it).
    pub time: jiff::Timestamp,
    /// Who recorded it.
    pub host: String,
    /// Who recorded it.
    pub username: String,
    /// When it was recorded, by the recorder's clock. The latest event
    /// written decides the state, whatever its `time` says (a purge dated
    /// in the future by `forget --now` must not outlive a later `enable`).
    /// Absent in events written before this field: `time` stands in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<jiff::Timestamp>,
}

impl AccountEvent {
    /// The order of events: by when they were written.
    fn order(&self) -> jiff::Timestamp {
        self.written.unwrap_or(self.time)
    }
}

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

impl Repository {
    /// Every account that has events, by name.
    pub fn accounts(&self) -> Result<BTreeMap<String, AccountRecord>> {
        let listing = self.store().list(ObjectKind::Account)?;
        let names: Vec<String> = listing.objects.iter().map(|o| o.name.clone()).collect();
        let fetched =
            self.store()
                .get_many_checked(ObjectKind::Account, &names, 16, |name, bytes| {
                    let id = AccountEventId::from_hex(name).map_err(|e| {
                        Error::corrupt(format!("account event {name}"), e.to_string())
                    })?;
                    Ok((id, open_event(self, &id, &bytes)?))
                });
        let mut events: Vec<(AccountEventId, AccountEvent)> = Vec::new();
        for event in fetched {
            match event {
                Ok(e) => events.push(e),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            }
        }
        events.sort_by(|a, b| a.1.order().cmp(&b.1.order()).then(a.0.cmp(&b.0)));
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
    pub fn account(&self, name: &str) -> Result<Option<AccountRecord>> {
        Ok(self.accounts()?.remove(name))
    }

    /// Record a lifecycle event.
    pub fn record_account_event(
        &self,
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
        let json = serde_json::to_vec(&event)
            .map_err(|e| Error::invalid("account event", e.to_string()))?;
        let bytes = crypto::seal_object(self.keys(), Sealed::AccountEvent, &json)?;
        let id = AccountEventId::of_bytes(&bytes);
        self.confirm_lock()?;
        self.store()
            .put(ObjectKind::Account, &id.to_hex(), bytes.into())?;
        Ok(id)
    }

    /// Refuse new data for a disabled (or purged) account.
    pub fn ensure_account_active(&self, account: &str) -> Result<()> {
        match self.account(account)? {
            Some(r) if r.state != AccountState::Active => Err(Error::AccountDisabled {
                account: account.to_string(),
                since: r.disabled_since.unwrap_or(r.since),
                state: r.state,
            }),
            _ => Ok(()),
        }
    }
}

fn open_event(repo: &Repository, id: &AccountEventId, bytes: &[u8]) -> Result<AccountEvent> {
    let what = format!("account event {}", id.short());
    if &AccountEventId::of_bytes(bytes) != id {
        return Err(Error::corrupt(&what, "contents do not hash to its name"));
    }
    let json = crypto::open_object(repo.keys(), Sealed::AccountEvent, bytes, &what)?;
    let event: AccountEvent =
        serde_json::from_slice(&json).map_err(|e| Error::corrupt(&what, e.to_string()))?;
    if event.version != ACCOUNT_EVENT_VERSION {
        return Err(Error::UnsupportedVersion {
            what,
            found: event.version,
            supported: ACCOUNT_EVENT_VERSION,
        });
    }
    validate_account(&event.account).map_err(|e| Error::corrupt(&what, e.to_string()))?;
    Ok(event)
}
