//! Manifest plaintexts (the JSON inside a sealed manifest, which the
//! `objects` target never reaches past the AEAD): every kind decodes
//! arbitrary bytes to an error, never a panic, and what it accepts passes
//! its own checks again after a round trip through the encoder.
#![no_main]

use cairn_format::account::AccountEvent;
use cairn_format::log_segment::SegmentManifest;
use cairn_format::manifest::{Manifest, decode_plaintext};
use cairn_format::pending::PendingRecord;
use cairn_format::snapshot::Snapshot;
use cairn_format::verification::VerificationRecord;
use libfuzzer_sys::fuzz_target;

fn round_trip<M: Manifest>(json: &[u8]) {
    if let Ok(m) = decode_plaintext::<M>(json, "fuzz") {
        let again = serde_json::to_vec(&m).unwrap_or_else(|_| std::process::abort());
        if decode_plaintext::<M>(&again, "fuzz").is_err() {
            std::process::abort();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, json)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => round_trip::<Snapshot>(json),
        1 => round_trip::<AccountEvent>(json),
        2 => round_trip::<SegmentManifest>(json),
        3 => round_trip::<VerificationRecord>(json),
        _ => round_trip::<PendingRecord>(json),
    }
});
