//! Account lifecycle events (`accounts/<id>`, docs/FORMAT.md "Account
//! events"): an account's state is a series of immutable events, and the
//! one written last decides.

use crate::crypto::Sealed;
use crate::error::{Error, Result};
use crate::id::AccountEventId;
use crate::layout::ObjectKind;
use crate::manifest::Manifest;
use crate::names::validate_account;
use serde::{Deserialize, Serialize};

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
    pub fn order(&self) -> jiff::Timestamp {
        self.written.unwrap_or(self.time)
    }
}

impl Manifest for AccountEvent {
    const KIND: ObjectKind = ObjectKind::Account;
    const SEALED: Sealed = Sealed::AccountEvent;
    const VERSION: u32 = ACCOUNT_EVENT_VERSION;
    const NOUN: &'static str = "account event";
    type Id = AccountEventId;

    fn version(&self) -> u32 {
        self.version
    }

    fn order_time(&self) -> jiff::Timestamp {
        self.order()
    }

    fn validate(&self, what: &str) -> Result<()> {
        validate_account(&self.account).map_err(|e| Error::corrupt(what, e.to_string()))
    }
}
