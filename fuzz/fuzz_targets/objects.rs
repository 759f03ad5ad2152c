//! Whole repository objects from arbitrary bytes (a store someone else
//! controls): snapshot manifests, index objects, packs, verification
//! records and key files are rejected with errors, never panics.
#![no_main]

use cairn_repository::crypto::{Keys, MasterKey};
use cairn_repository::index::IndexFile;
use cairn_repository::keyfile::KeyFile;
use cairn_repository::{IndexId, PackId, Snapshot, SnapshotId, VerificationId, pack, verification};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        Keys::derive(&MasterKey::generate().unwrap_or_else(|_| std::process::abort()))
    })
}

fuzz_target!(|data: &[u8]| {
    let keys = keys();
    // Named by their hash, so the name check passes and parsing is reached.
    let _ = Snapshot::open(keys, &SnapshotId::of_bytes(data), data);
    let _ = IndexFile::open(keys, &IndexId::of_bytes(data), data);
    let _ = pack::verify_pack(keys, &PackId::of_bytes(data), data);
    let _ = verification::open_record_with(keys, &VerificationId::of_bytes(data), data);
    if let Ok(kf) = KeyFile::parse(data, "fuzz") {
        // Bounded costs only: a hostile key file cannot demand gigabytes.
        if kf.cost.validate().is_ok() && kf.cost.memory_kib <= 1024 && kf.cost.iterations <= 2 {
            let _ = kf.unlock(b"password", "fuzz");
        }
    }
});
