//! Whole repository objects from arbitrary bytes (a store someone else
//! controls): snapshot manifests, index objects, packs, verification
//! records, account events, pending deletions, key files and objects
//! sealed to a public key are rejected with errors, never panics, by a
//! full key that knows a put-only recipient and by a put-only session.
#![no_main]

use cairn_format::account::AccountEvent;
use cairn_format::crypto::{Keys, MasterKey};
use cairn_format::id::{AccountEventId, DeletionId, IndexId, PackId, SnapshotId, VerificationId};
use cairn_format::index::IndexFile;
use cairn_format::keyfile::KeyFile;
use cairn_format::manifest;
use cairn_format::pack;
use cairn_format::pending::PendingRecord;
use cairn_format::seal_to::{self, Recipient};
use cairn_format::snapshot::Snapshot;
use cairn_format::verification::VerificationRecord;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A full key that knows one put-only recipient (account "a"), so version
/// 2 objects reach the recipient lookup and the account check.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let keys = Keys::derive(&MasterKey::generate().unwrap_or_else(|_| std::process::abort()));
        keys.add_recipient(
            Recipient::from_secret(recipient().secret_bytes()),
            vec!["a".to_string()],
        );
        keys
    })
}

/// A put-only session's keys for that recipient.
fn put_only() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let material = keys()
            .put_only_material(&recipient().public(), &["a".to_string()], String::new(), serde_json::Value::Null)
            .unwrap_or_else(|_| std::process::abort());
        Keys::put_only(&material).unwrap_or_else(|_| std::process::abort())
    })
}

fn recipient() -> &'static Recipient {
    static R: OnceLock<Recipient> = OnceLock::new();
    R.get_or_init(|| Recipient::generate().unwrap_or_else(|_| std::process::abort()))
}

fuzz_target!(|data: &[u8]| {
    let keys = keys();
    // Envelope version 2 (sealed to a public key), with any R and E.
    let _ = seal_to::open_object(recipient(), cairn_format::crypto::Sealed::Index, data, "fuzz");
    // Named by their hash, so the name check passes and parsing is reached.
    let _ = manifest::open::<Snapshot>(keys, &SnapshotId::of_bytes(data), data);
    let _ = manifest::open::<AccountEvent>(keys, &AccountEventId::of_bytes(data), data);
    let _ = manifest::open::<PendingRecord>(keys, &DeletionId::of_bytes(data), data);
    let _ = IndexFile::open(keys, &IndexId::of_bytes(data), data);
    let _ = pack::verify_pack(keys, &PackId::of_bytes(data), data);
    let _ = manifest::open::<VerificationRecord>(keys, &VerificationId::of_bytes(data), data);
    // A put-only host reads only locks and its own session's objects.
    let put = put_only();
    let _ = manifest::open::<Snapshot>(put, &SnapshotId::of_bytes(data), data);
    let _ = IndexFile::open(put, &IndexId::of_bytes(data), data);
    let _ = cairn_format::crypto::open_object(put, cairn_format::crypto::Sealed::Lock, data, "fuzz");
    if let Ok(kf) = KeyFile::parse(data, "fuzz") {
        if let Some(entry) = &kf.put_only {
            let _ = entry.open(keys, "fuzz");
        }
        // Bounded costs only: a hostile key file cannot demand gigabytes.
        if kf.cost.validate().is_ok() && kf.cost.memory_kib <= 1024 && kf.cost.iterations <= 2 {
            let _ = kf.unlock(b"password", "fuzz");
        }
    }
});
