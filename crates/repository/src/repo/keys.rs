//! Key files: which one a password opens, what a full key learns from
//! the put-only ones, and writing a key file (key management itself is
//! `impl Repository` in `repo.rs`).

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
