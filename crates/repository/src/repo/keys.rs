//! Key files: which one a password opens, what a full key learns from
//! the put-only ones, and key management (`cairn key ...`).

use super::Repository;
use crate::crypto::{Keys, MasterKey};
use crate::error::{Error, Result};
use crate::id::KeyId;
use crate::keyfile::{KdfCost, KeyFile, Unlocked};
use crate::layout::ObjectKind;
use crate::store::Store;
use cairn_format::layout::ObjectName;

/// What a password opened, and every key file of the repository.
pub(super) struct Opened {
    pub(super) key_id: KeyId,
    pub(super) unlocked: Unlocked,
    pub(super) files: Vec<(KeyId, KeyFile)>,
}

/// Write a key file wrapping `master`; returns its id.
pub(super) fn write_key_file(
    store: &Store,
    master: &MasterKey,
    password: &[u8],
    cost: KdfCost,
    host: String,
    username: String,
) -> Result<KeyId> {
    let kf = KeyFile::create(master, password, cost, host, username)?;
    let bytes = kf.to_bytes()?;
    let id = KeyId::of_bytes(&bytes);
    store.put_object(&id, bytes.into())?;
    Ok(id)
}

/// Try every key file with the password.
pub(super) fn unlock_any(store: &Store, password: &[u8]) -> Result<Opened> {
    let listing = store.list(ObjectKind::Key)?;
    if listing.objects.is_empty() {
        return Err(Error::NoKeys);
    }
    let ids: Vec<KeyId> = listing
        .objects
        .iter()
        .filter_map(|o| KeyId::from_hex(&o.name).ok())
        .collect();
    let names: Vec<String> = ids.iter().map(|id| id.object_name()).collect();
    let parsed = store.get_many_checked(ObjectKind::Key, &names, 8, |name, bytes| -> Result<_> {
        let what = format!("key file {}", name.get(..8).unwrap_or(name));
        Ok(KeyFile::parse(&bytes, &what)?)
    });
    let mut malformed = Vec::new();
    let mut files = Vec::new();
    for (id, parsed) in ids.iter().zip(parsed) {
        match parsed {
            Ok(kf) => files.push((*id, kf)),
            Err(e) => malformed.push(e.to_string()),
        }
    }
    let mut opened = None;
    for (id, kf) in &files {
        let what = format!("key file {}", id.short());
        match kf.unlock_any(password, &what) {
            Ok(Some(unlocked)) => {
                opened = Some((*id, unlocked));
                break;
            }
            Ok(None) => {}
            Err(e) => malformed.push(e.to_string()),
        }
    }
    if let Some((key_id, unlocked)) = opened {
        for m in malformed {
            tracing::warn!("skipped {m}");
        }
        return Ok(Opened {
            key_id,
            unlocked,
            files,
        });
    }
    if malformed.len() == listing.objects.len() {
        // Not one usable key file: say why rather than "wrong password".
        return Err(Error::NoUsableKey(malformed.join("; ")));
    }
    for m in malformed {
        tracing::warn!("skipped {m}");
    }
    Err(Error::WrongPassword)
}

/// Teach a full key the recipients of the put-only key files, so it opens
/// what their sessions wrote. A key file whose secret does not open under
/// the master key was not made with it (a forgery, or damage): its
/// recipient stays unknown, and what is sealed to it stays unreadable.
pub(super) fn learn_recipients(keys: &Keys, files: &[(KeyId, KeyFile)]) {
    for (id, kf) in files {
        let Some(entry) = &kf.put_only else {
            continue;
        };
        let what = format!("put-only key file {}", id.short());
        match entry.open(keys, &what) {
            Ok(r) => keys.add_recipient(r, entry.accounts.clone()),
            Err(e) => tracing::warn!("{what}: {e}; what it wrote cannot be read"),
        }
    }
}

/// Key management (`cairn key ...`).
impl Repository {
    /// Add a key file for another password.
    pub fn add_key(&self, password: &[u8], cost: KdfCost) -> Result<KeyId> {
        self.add_key_as(
            password,
            cost,
            crate::util::hostname(),
            crate::util::username(),
        )
    }

    /// Add a key file recorded as belonging to `username` on `host` (the
    /// names are labels for `key list`; they grant nothing).
    pub fn add_key_as(
        &self,
        password: &[u8],
        cost: KdfCost,
        host: String,
        username: String,
    ) -> Result<KeyId> {
        let master = self.master.as_ref().ok_or_else(|| Error::PutOnly {
            what: "adding a key".into(),
        })?;
        self.confirm_lock()?;
        write_key_file(&self.store, master, password, cost, host, username)
    }

    /// Add a put-only key for `accounts`: it can back up and push logs
    /// for them, and read nothing (`docs/FORMAT.md`, "Put-only keys").
    pub fn add_put_only_key(
        &self,
        password: &[u8],
        cost: KdfCost,
        accounts: &[String],
    ) -> Result<KeyId> {
        for a in accounts {
            crate::snapshot::validate_account(a)?;
        }
        let mut accounts = accounts.to_vec();
        accounts.sort();
        accounts.dedup();
        let config = serde_json::to_value(&self.config)
            .map_err(|e| Error::invalid("config", e.to_string()))?;
        let kf = KeyFile::create_put_only(
            &self.keys,
            &accounts,
            self.config.id.to_hex(),
            config,
            password,
            cost,
            crate::util::hostname(),
            crate::util::username(),
        )?;
        let bytes = kf.to_bytes()?;
        let id = KeyId::of_bytes(&bytes);
        self.confirm_lock()?;
        self.store.put_object(&id, bytes.into())?;
        Ok(id)
    }

    /// List key files with their metadata.
    pub fn list_keys(&self) -> Result<Vec<(KeyId, std::result::Result<KeyFile, String>)>> {
        let listing = self.store.list(ObjectKind::Key)?;
        let mut out = Vec::new();
        for obj in listing.objects {
            let Ok(id) = KeyId::from_hex(&obj.name) else {
                continue;
            };
            let what = format!("key file {}", id.short());
            let kf = self
                .store
                .get(ObjectKind::Key, &obj.name)
                .map_err(Error::from)
                .and_then(|b| Ok(KeyFile::parse(&b, &what)?))
                .map_err(|e| e.to_string());
            out.push((id, kf));
        }
        Ok(out)
    }

    /// Remove a key file. Refuses the key this session was opened with and
    /// the last key.
    pub fn remove_key(&self, id: &KeyId) -> Result<()> {
        self.require_full_key("removing a key")?;
        if id == &self.key_id {
            return Err(Error::invalid(
                "key",
                "refusing to remove the key in use; open the repository with another key first",
            ));
        }
        let keys = self.list_keys()?;
        if !keys.iter().any(|(k, _)| k == id) {
            return Err(Error::NotFound {
                what: format!("key {}", id.short()),
            });
        }
        if keys.len() <= 1 {
            return Err(Error::invalid("key", "refusing to remove the last key"));
        }
        let full = |kf: &std::result::Result<KeyFile, String>| {
            kf.as_ref().is_ok_and(|kf| kf.put_only.is_none())
        };
        if keys.iter().all(|(k, kf)| k == id || !full(kf)) {
            return Err(Error::invalid(
                "key",
                "refusing to remove the last full key: put-only keys cannot read the repository",
            ));
        }
        self.require_delete_rights("key remove")?;
        self.confirm_lock()?;
        Ok(self.store.delete_object(id)?)
    }

    /// Replace the key in use with one for a new password.
    pub fn change_password(&mut self, new_password: &[u8], cost: KdfCost) -> Result<KeyId> {
        self.require_delete_rights("key passwd")?;
        // Under object lock the old key file may not go yet: say so before
        // a new one is added.
        if self.store.object_lock().is_some()
            && let Some(until) = self
                .store
                .retention(ObjectKind::Key, &self.key_id.object_name())?
                .and_then(|r| r.until)
                .filter(|u| *u > jiff::Timestamp::now())
        {
            return Err(Error::Retained {
                location: ObjectKind::Key.path(&self.key_id.object_name()),
                until,
            });
        }
        let new_id = self.add_key(new_password, cost)?;
        let old = self.key_id;
        self.key_id = new_id;
        self.confirm_lock()?;
        self.store.delete_object(&old)?;
        Ok(new_id)
    }
}
