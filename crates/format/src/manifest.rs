//! Manifests: the sealed JSON objects that describe what the repository
//! holds (snapshots, account events, log segments, verification records,
//! pending deletions). One rule for all of them (docs/FORMAT.md, "Sealed
//! objects"): a manifest is named by the BLAKE3 hash of its bytes, is no
//! larger than its kind's cap, opens with the repository's keys under its
//! own envelope kind, and holds JSON whose `version` must be the one this
//! build reads; unknown fields are ignored (additive changes need no new
//! version).

use crate::crypto::{self, Keys, Sealed};
use crate::error::{Error, Result};
use crate::id::ContentId;
use crate::layout::ObjectKind;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The size cap of a manifest unless its kind says otherwise.
pub const MAX_MANIFEST_LEN: usize = 16 << 20;

/// A kind of manifest.
pub trait Manifest: Serialize + DeserializeOwned {
    /// Where such objects live.
    const KIND: ObjectKind;
    /// The envelope kind they are sealed under.
    const SEALED: Sealed;
    /// The JSON `version` this build writes and reads.
    const VERSION: u32;
    /// What one is called in messages (`snapshot`, `account event`).
    const NOUN: &'static str;
    /// Objects larger than this are refused before decryption.
    const MAX_LEN: usize = MAX_MANIFEST_LEN;
    /// The id naming one.
    type Id: ContentId;

    /// The `version` field.
    fn version(&self) -> u32;

    /// The time manifests of this kind are ordered by (then by id): when
    /// it was taken, written or recorded.
    fn order_time(&self) -> jiff::Timestamp;

    /// The object name this manifest is stored under, given its id (the
    /// id's hex unless the kind says otherwise).
    fn object_name(&self, id: &Self::Id, _keys: &Keys) -> String {
        id.to_hex()
    }

    /// The id in a listed object name, if it is a valid name of this kind.
    fn id_from_name(name: &str) -> Option<Self::Id> {
        Self::Id::from_hex(name).ok()
    }

    /// Checks beyond the JSON shape (names, lengths).
    fn validate(&self, _what: &str) -> Result<()> {
        Ok(())
    }
}

/// Seal a manifest: its id and the bytes to store.
pub fn seal<M: Manifest>(keys: &Keys, manifest: &M) -> Result<(M::Id, Vec<u8>)> {
    let json = serde_json::to_vec(manifest).map_err(|e| Error::invalid(M::NOUN, e.to_string()))?;
    let bytes = crypto::seal_object(keys, M::SEALED, &json)?;
    Ok((M::Id::of_bytes(&bytes), bytes))
}

/// The name a manifest is given in messages.
pub fn describe<M: Manifest>(id: &M::Id) -> String {
    format!("{} {}", M::NOUN, id.short())
}

/// Open stored bytes: the cap, the name, the envelope, then
/// [`decode_plaintext`].
pub fn open<M: Manifest>(keys: &Keys, id: &M::Id, bytes: &[u8]) -> Result<M> {
    let json = open_sealed::<M>(keys, id, bytes)?;
    decode_plaintext::<M>(&json, &describe::<M>(id))
}

/// The checks of [`open`] up to the decrypted JSON (for callers that cache
/// the plaintext, as log segments do).
pub fn open_sealed<M: Manifest>(keys: &Keys, id: &M::Id, bytes: &[u8]) -> Result<Vec<u8>> {
    let what = describe::<M>(id);
    if bytes.len() > M::MAX_LEN {
        return Err(Error::corrupt(
            &what,
            format!("{} bytes, larger than any {}", bytes.len(), M::NOUN),
        ));
    }
    if M::Id::of_bytes(bytes) != *id {
        return Err(Error::corrupt(&what, "contents do not hash to its name"));
    }
    let json = crypto::open_object(keys, M::SEALED, bytes, &what)?;
    if let Some(sealing) = crate::seal_to::sealing_of(bytes, M::SEALED, &what)? {
        check_put_only_writer(keys, &sealing.recipient, M::SEALED, &json, &what)?;
    }
    Ok(json)
}

/// A manifest a put-only key wrote is trusted only for what that key may
/// write: a snapshot or a log segment of one of the accounts its key file
/// names (the list is authenticated by the master key).
fn check_put_only_writer(
    keys: &Keys,
    recipient: &[u8; 32],
    kind: Sealed,
    json: &[u8],
    what: &str,
) -> Result<()> {
    if !matches!(kind, Sealed::Snapshot | Sealed::LogSegment) {
        return Err(Error::corrupt(
            what,
            format!(
                "written by a put-only key, which may not write a {}",
                kind.noun()
            ),
        ));
    }
    #[derive(serde::Deserialize)]
    struct Account {
        account: String,
    }
    let claimed: Account = serde_json::from_slice(json)
        .map_err(|e| Error::corrupt(what, format!("no account: {e}")))?;
    // A put-only host opening its own session's manifest has no list to
    // check against, and needs none: its key file named the accounts.
    let Some(allowed) = keys.recipient_accounts(recipient) else {
        return Ok(());
    };
    if !allowed.contains(&claimed.account) {
        return Err(Error::corrupt(
            what,
            format!(
                "not trusted: written by a put-only key for account {:?}, which that key may not write",
                claimed.account
            ),
        ));
    }
    Ok(())
}

/// Decode a manifest's JSON: shape, version, then the kind's own checks.
pub fn decode_plaintext<M: Manifest>(json: &[u8], what: &str) -> Result<M> {
    let m: M = serde_json::from_slice(json)
        .map_err(|e| Error::corrupt(what, format!("bad {}: {e}", M::NOUN)))?;
    if m.version() != M::VERSION {
        return Err(Error::UnsupportedVersion {
            what: what.to_string(),
            found: m.version(),
            supported: M::VERSION,
        });
    }
    m.validate(what)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use crate::id::{DeletionId, VerificationId};
    use crate::pending::PendingRecord;
    use crate::verification::VerificationRecord;

    fn keys() -> Keys {
        Keys::derive(&MasterKey::generate().unwrap())
    }

    fn sealed<M: Manifest>(keys: &Keys, json: &str) -> (M::Id, Vec<u8>) {
        let bytes = crypto::seal_object(keys, M::SEALED, json.as_bytes()).unwrap();
        (M::Id::of_bytes(&bytes), bytes)
    }

    const RECORD: &str = r#"{"version":1,"snapshot":"0000000000000000000000000000000000000000000000000000000000000000","verdict":"verified","time":"2026-12-01T00:00:00Z","command":null,"detail":"","host":"h""#;

    #[test]
    fn unknown_fields_are_ignored_by_every_kind() {
        let keys = keys();
        let (id, bytes) =
            sealed::<VerificationRecord>(&keys, &format!("{RECORD},\"added_later\":[1,2]}}"));
        let record = open::<VerificationRecord>(&keys, &id, &bytes).unwrap();
        assert_eq!(record.host, "h");
        let (id, bytes) = sealed::<PendingRecord>(
            &keys,
            r#"{"version":1,"recorded":"2026-12-01T00:00:00Z","objects":[],"why":"x"}"#,
        );
        assert!(open::<PendingRecord>(&keys, &id, &bytes).is_ok());
    }

    #[test]
    fn other_versions_are_refused_not_corrupt() {
        let keys = keys();
        let (id, bytes) = sealed::<PendingRecord>(
            &keys,
            r#"{"version":2,"recorded":"2026-12-01T00:00:00Z","objects":["data/x"]}"#,
        );
        let err = open::<PendingRecord>(&keys, &id, &bytes).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedVersion { found: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn names_caps_and_envelope_kinds_are_checked() {
        let keys = keys();
        let (id, bytes) = sealed::<VerificationRecord>(&keys, &format!("{RECORD}}}"));
        // Another name.
        let other = VerificationId::of_bytes(b"other");
        assert!(
            open::<VerificationRecord>(&keys, &other, &bytes)
                .unwrap_err()
                .is_corrupt()
        );
        // Another kind's envelope, under a name that matches.
        let as_pending = DeletionId::of_bytes(&bytes);
        assert!(
            open::<PendingRecord>(&keys, &as_pending, &bytes)
                .unwrap_err()
                .is_corrupt()
        );
        // Larger than the cap: refused before decryption.
        let big = vec![0u8; MAX_MANIFEST_LEN + 1];
        let err = open::<VerificationRecord>(&keys, &VerificationId::of_bytes(&big), &big);
        assert!(err.unwrap_err().to_string().contains("larger than any"));
        assert!(open::<VerificationRecord>(&keys, &id, &bytes).is_ok());
    }
}
