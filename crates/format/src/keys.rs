//! The master key and the working keys derived from it, for a full key and
//! for a put-only key (`docs/FORMAT.md`, "Encryption" and "Put-only
//! keys").
//!
//! One random 32-byte master key per repository. Everything else is derived
//! from it with BLAKE3 `derive_key` and the context strings of
//! [`crate::crypto`], so a key file only has to protect those 32 bytes.
//!
//! A put-only host holds no master key. It gets the id keys, the gear seed,
//! the stream tag key and the lock key, and one recipient public key `R`:
//! each process is a session sealing to `R` under a fresh ephemeral key
//! ([`crate::seal_to`]). Its [`Keys`] seal blobs under the session key and
//! objects in envelope version 2, and refuse to open anything else. A full
//! key opens what put-only sessions wrote once it knows their recipients
//! ([`Keys::add_recipient`]).

use crate::cipher::{self, context};
use crate::error::{Error, Result};
use crate::id::{BlobKind, ChunkId, ID_LEN, TreeId};
use crate::seal_to::{Recipient, Sealing, Session, SessionKey};
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::{Key, XChaCha20Poly1305};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Associated data prefix of a recipient's secret sealed in its key file.
pub(crate) const SECRET_AAD: &[u8] = b"cairn put-only secret v1";

/// The repository's master key. Never printed, zeroed on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The derived keys every host holds: they compute ids, chunk boundaries,
/// stream tags and open locks, and decrypt nothing else.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Secrets {
    data_id: [u8; 32],
    tree_id: [u8; 32],
    gear_seed: [u8; 32],
    stream_tag: [u8; 32],
    lock: [u8; 32],
}

/// A put-only recipient a full key knows, with the accounts its key file
/// authorises.
type KnownRecipient = (Arc<Recipient>, Vec<String>);

/// What a full key knows about put-only recipients, and the session keys
/// it derived for them (one X25519 per session, not per blob).
#[derive(Default)]
struct Recipients {
    known: RwLock<HashMap<[u8; 32], KnownRecipient>>,
    sessions: Mutex<HashMap<Sealing, SessionKey>>,
}

/// The working keys.
#[derive(Clone)]
pub struct Keys {
    secrets: Arc<Secrets>,
    lock: XChaCha20Poly1305,
    /// The master encryption key; `None` on a put-only host.
    master: Option<XChaCha20Poly1305>,
    /// What blobs are sealed and opened with: the master cipher, or a
    /// session's.
    blob: XChaCha20Poly1305,
    /// A put-only session: what these keys seal goes to this recipient.
    session: Option<Sealing>,
    recipients: Arc<Recipients>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

fn cipher(mut key: [u8; 32]) -> XChaCha20Poly1305 {
    let aead = XChaCha20Poly1305::new(&Key::from(key));
    key.zeroize();
    aead
}

/// What the password of a put-only key file wraps: every key a put-only
/// host needs, and the copy of the config it cannot open itself. Hex for
/// the keys.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutOnlyMaterial {
    /// Data blob id key.
    pub data_id: String,
    /// Tree blob id key.
    pub tree_id: String,
    /// Chunker gear seed.
    pub gear_seed: String,
    /// Log stream tag key.
    pub stream_tag: String,
    /// Lock key.
    pub lock: String,
    /// The recipient's public key `R`.
    pub recipient: String,
    /// The accounts this key may back up.
    pub accounts: Vec<String>,
    /// The repository id.
    pub repository: String,
    /// The repository's config, as JSON.
    pub config: serde_json::Value,
}

impl std::fmt::Debug for PutOnlyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutOnlyMaterial")
            .field("accounts", &self.accounts)
            .finish_non_exhaustive()
    }
}

impl Drop for PutOnlyMaterial {
    fn drop(&mut self) {
        for s in [
            &mut self.data_id,
            &mut self.tree_id,
            &mut self.gear_seed,
            &mut self.stream_tag,
            &mut self.lock,
        ] {
            s.zeroize();
        }
    }
}

fn key_from_hex(hex_key: &str, what: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut out)
        .map_err(|_| Error::corrupt("put-only key", format!("{what} is not 32 bytes of hex")))?;
    Ok(out)
}

/// The associated data of a recipient's sealed secret: the prefix, `R`,
/// and each account followed by a zero byte.
fn secret_aad(recipient: &[u8; 32], accounts: &[String]) -> Vec<u8> {
    let mut aad = SECRET_AAD.to_vec();
    aad.extend_from_slice(recipient);
    for a in accounts {
        aad.extend_from_slice(a.as_bytes());
        aad.push(0);
    }
    aad
}

impl Keys {
    /// Derive the working keys of a full key.
    pub fn derive(master: &MasterKey) -> Self {
        let m = master.as_bytes();
        let secrets = Secrets {
            data_id: blake3::derive_key(context::DATA_ID, m),
            tree_id: blake3::derive_key(context::TREE_ID, m),
            gear_seed: blake3::derive_key(context::GEAR_SEED, m),
            stream_tag: blake3::derive_key(context::STREAM_TAG, m),
            lock: blake3::derive_key(context::LOCK, m),
        };
        let master = cipher(blake3::derive_key(context::ENCRYPTION, m));
        Self {
            lock: cipher(secrets.lock),
            secrets: Arc::new(secrets),
            blob: master.clone(),
            master: Some(master),
            session: None,
            recipients: Arc::default(),
        }
    }

    /// The keys of a put-only host, from its key file's material; a new
    /// session sealing to its recipient starts now.
    pub fn put_only(material: &PutOnlyMaterial) -> Result<Self> {
        let secrets = Secrets {
            data_id: key_from_hex(&material.data_id, "data id key")?,
            tree_id: key_from_hex(&material.tree_id, "tree id key")?,
            gear_seed: key_from_hex(&material.gear_seed, "gear seed")?,
            stream_tag: key_from_hex(&material.stream_tag, "stream tag key")?,
            lock: key_from_hex(&material.lock, "lock key")?,
        };
        let recipient = key_from_hex(&material.recipient, "recipient")?;
        let session = Session::start(&recipient)?;
        Ok(Self {
            lock: cipher(secrets.lock),
            secrets: Arc::new(secrets),
            master: None,
            blob: session.key().cipher().clone(),
            session: Some(*session.sealing()),
            recipients: Arc::default(),
        })
    }

    /// Whether these are a put-only host's keys.
    pub fn is_put_only(&self) -> bool {
        self.master.is_none()
    }

    /// The put-only session these keys seal to, if any.
    pub fn session(&self) -> Option<&Sealing> {
        self.session.as_ref()
    }

    /// The material a put-only key file wraps (full key only).
    pub fn put_only_material(
        &self,
        recipient: &[u8; 32],
        accounts: &[String],
        repository: String,
        config: serde_json::Value,
    ) -> Result<PutOnlyMaterial> {
        self.require_master("a put-only key")?;
        let s = &self.secrets;
        Ok(PutOnlyMaterial {
            data_id: hex::encode(s.data_id),
            tree_id: hex::encode(s.tree_id),
            gear_seed: hex::encode(s.gear_seed),
            stream_tag: hex::encode(s.stream_tag),
            lock: hex::encode(s.lock),
            recipient: hex::encode(recipient),
            accounts: accounts.to_vec(),
            repository,
            config,
        })
    }

    /// Seal a recipient's secret under the master key, binding its public
    /// key and accounts: `nonce || ciphertext || tag`.
    pub fn seal_recipient_secret(&self, r: &Recipient, accounts: &[String]) -> Result<Vec<u8>> {
        let master = self.require_master("a put-only key")?;
        let mut buf = Zeroizing::new(vec![0u8; cipher::NONCE_LEN]);
        buf.extend_from_slice(&r.secret_bytes());
        cipher::seal_in_place(master, &secret_aad(&r.public(), accounts), &mut buf)?;
        Ok(buf.to_vec())
    }

    /// Open a recipient's sealed secret and check it is the secret of
    /// `recipient`.
    pub fn open_recipient_secret(
        &self,
        recipient: &[u8; 32],
        accounts: &[String],
        sealed: &[u8],
        what: &str,
    ) -> Result<Recipient> {
        let master = self.require_master(what)?;
        let mut out = Zeroizing::new(Vec::new());
        cipher::open_into(
            master,
            &secret_aad(recipient, accounts),
            sealed,
            what,
            &mut out,
        )?;
        let mut bytes: [u8; 32] = out
            .as_slice()
            .try_into()
            .map_err(|_| Error::corrupt(what, "the recipient secret is not 32 bytes"))?;
        let r = Recipient::from_secret(bytes);
        bytes.zeroize();
        if &r.public() != recipient {
            return Err(Error::corrupt(what, "the secret is not the recipient's"));
        }
        Ok(r)
    }

    /// Let these keys open what sessions sealed to `r` wrote; `accounts`
    /// are the accounts its key file authorises.
    pub fn add_recipient(&self, r: Recipient, accounts: Vec<String>) {
        if let Ok(mut known) = self.recipients.known.write() {
            known.insert(r.public(), (Arc::new(r), accounts));
        }
    }

    /// Whether these keys know any put-only recipient.
    pub fn knows_recipients(&self) -> bool {
        self.recipients
            .known
            .read()
            .map(|k| !k.is_empty())
            .unwrap_or(true)
    }

    /// The accounts a known recipient may write, if it is known.
    pub fn recipient_accounts(&self, recipient: &[u8; 32]) -> Option<Vec<String>> {
        let known = self.recipients.known.read().ok()?;
        known.get(recipient).map(|(_, a)| a.clone())
    }

    /// The keys that open what was sealed with `sealing` (`None`: under the
    /// master key). A put-only host opens only its own session's.
    pub fn for_sealing(&self, sealing: Option<&Sealing>, what: &str) -> Result<Cow<'_, Keys>> {
        match sealing {
            // Only a put-only session has one, and it holds no master key.
            None if self.session.is_some() => Err(Error::PutOnly {
                what: what.to_string(),
            }),
            None => Ok(Cow::Borrowed(self)),
            Some(s) if self.session.as_ref() == Some(s) => Ok(Cow::Borrowed(self)),
            Some(s) => {
                self.require_master(what)?;
                let key = self.session_key(s, what)?;
                Ok(Cow::Owned(Keys {
                    blob: key.cipher().clone(),
                    session: None,
                    ..self.clone()
                }))
            }
        }
    }

    fn session_key(&self, s: &Sealing, what: &str) -> Result<SessionKey> {
        let poisoned = || Error::invalid("recipient keys", "a thread panicked holding them");
        if let Some(k) = self
            .recipients
            .sessions
            .lock()
            .map_err(|_| poisoned())?
            .get(s)
        {
            return Ok(k.clone());
        }
        let recipient = {
            let known = self.recipients.known.read().map_err(|_| poisoned())?;
            match known.get(&s.recipient) {
                Some((r, _)) => Arc::clone(r),
                None => {
                    return Err(Error::corrupt(
                        what,
                        format!(
                            "sealed to put-only recipient {}, which no key file names",
                            hex::encode(&s.recipient[..8])
                        ),
                    ));
                }
            }
        };
        let key = recipient.session_key(s, what)?;
        let mut sessions = self.recipients.sessions.lock().map_err(|_| poisoned())?;
        if sessions.len() > 4096 {
            sessions.clear();
        }
        sessions.insert(*s, key.clone());
        Ok(key)
    }

    fn require_master(&self, what: &str) -> Result<&XChaCha20Poly1305> {
        self.master.as_ref().ok_or_else(|| Error::PutOnly {
            what: what.to_string(),
        })
    }

    /// The cipher of objects sealed under the master key.
    pub(crate) fn master_cipher(&self, what: &str) -> Result<&XChaCha20Poly1305> {
        self.require_master(what)
    }

    /// The cipher of locks.
    pub(crate) fn lock_cipher(&self) -> &XChaCha20Poly1305 {
        &self.lock
    }

    /// The cipher of blobs.
    pub(crate) fn blob_cipher(&self) -> &XChaCha20Poly1305 {
        &self.blob
    }

    /// The id of a data blob with this plaintext.
    pub fn chunk_id(&self, plaintext: &[u8]) -> ChunkId {
        ChunkId::from_bytes(*blake3::keyed_hash(&self.secrets.data_id, plaintext).as_bytes())
    }

    /// The id of a tree blob with this plaintext.
    pub fn tree_id(&self, plaintext: &[u8]) -> TreeId {
        TreeId::from_bytes(*blake3::keyed_hash(&self.secrets.tree_id, plaintext).as_bytes())
    }

    /// The raw id of a blob of either kind.
    pub fn blob_id(&self, kind: BlobKind, plaintext: &[u8]) -> [u8; ID_LEN] {
        let key = match kind {
            BlobKind::Data => &self.secrets.data_id,
            BlobKind::Tree => &self.secrets.tree_id,
        };
        *blake3::keyed_hash(key, plaintext).as_bytes()
    }

    /// The seed of this repository's chunker gear table (secret, so chunk
    /// sizes do not reveal which known files the repository holds).
    pub fn gear_seed(&self) -> &[u8; 32] {
        &self.secrets.gear_seed
    }

    /// The directory name of a log stream: 32 hex digits of a keyed hash of
    /// account and stream, so object names reveal neither.
    pub fn stream_tag(&self, account: &str, stream: &str) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.secrets.stream_tag);
        h.update(account.as_bytes());
        h.update(&[0]);
        h.update(stream.as_bytes());
        hex::encode(&h.finalize().as_bytes()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{self, Sealed, open_object, seal_object};

    fn put_only_pair() -> (Keys, Keys) {
        let full = Keys::derive(&MasterKey::from_bytes([5u8; 32]));
        let r = Recipient::generate().unwrap();
        let accounts = vec!["alice".to_string()];
        let material = full
            .put_only_material(&r.public(), &accounts, "id".into(), serde_json::json!({}))
            .unwrap();
        let sealed = full.seal_recipient_secret(&r, &accounts).unwrap();
        let back = full
            .open_recipient_secret(&r.public(), &accounts, &sealed, "k")
            .unwrap();
        assert_eq!(back.public(), r.public());
        // The account list is bound to the secret.
        assert!(
            full.open_recipient_secret(&r.public(), &["bob".to_string()], &sealed, "k")
                .is_err()
        );
        full.add_recipient(back, accounts);
        (full, Keys::put_only(&material).unwrap())
    }

    #[test]
    fn a_put_only_session_writes_what_only_the_full_key_reads() {
        let (full, put) = put_only_pair();
        assert!(put.is_put_only() && !full.is_put_only());
        assert_eq!(full.chunk_id(b"x"), put.chunk_id(b"x"));
        assert_eq!(full.gear_seed(), put.gear_seed());
        assert_eq!(full.stream_tag("a", "b"), put.stream_tag("a", "b"));
        let obj = seal_object(&put, Sealed::Snapshot, b"snap").unwrap();
        assert_eq!(obj[5], 2);
        assert_eq!(
            open_object(&full, Sealed::Snapshot, &obj, "s").unwrap(),
            b"snap"
        );
        // What the full key wrote, a put-only host cannot open.
        let master_obj = seal_object(&full, Sealed::Snapshot, b"old").unwrap();
        assert!(matches!(
            open_object(&put, Sealed::Snapshot, &master_obj, "s"),
            Err(Error::PutOnly { .. })
        ));
        // Nor what another session of the same key wrote.
        let other_session = Keys::put_only(&put_material(&full)).unwrap();
        let earlier = seal_object(&other_session, Sealed::Index, b"i").unwrap();
        assert!(open_object(&put, Sealed::Index, &earlier, "i").is_err());
        assert_eq!(
            open_object(&full, Sealed::Index, &earlier, "i").unwrap(),
            b"i"
        );
        // Locks: every host reads them.
        let lock = seal_object(&put, Sealed::Lock, b"lock").unwrap();
        assert_eq!(
            open_object(&full, Sealed::Lock, &lock, "l").unwrap(),
            b"lock"
        );
        let lock = seal_object(&full, Sealed::Lock, b"lock").unwrap();
        assert_eq!(
            open_object(&put, Sealed::Lock, &lock, "l").unwrap(),
            b"lock"
        );
        // Blobs: the full key reads them with the session's keys.
        let c = crypto::Compression::default();
        let id = put.blob_id(BlobKind::Data, b"chunk");
        let stored = crypto::encode_blob(&put, &c, BlobKind::Data, &id, b"chunk").unwrap();
        assert!(crypto::decode_blob(&full, BlobKind::Data, &id, &stored, 5).is_err());
        let reader = full.for_sealing(put.session(), "pack").unwrap();
        assert_eq!(
            crypto::decode_blob(&reader, BlobKind::Data, &id, &stored, 5).unwrap(),
            b"chunk"
        );
        assert!(put.for_sealing(None, "pack").is_err());
        assert!(other_session.for_sealing(put.session(), "pack").is_err());
    }

    fn put_material(full: &Keys) -> PutOnlyMaterial {
        let known = full.recipients.known.read().unwrap();
        let r = known.keys().next().unwrap();
        full.put_only_material(
            r,
            &["alice".to_string()],
            "id".into(),
            serde_json::json!({}),
        )
        .unwrap()
    }

    #[test]
    fn an_unknown_recipient_is_reported() {
        let (full, put) = put_only_pair();
        let stranger = Keys::derive(&MasterKey::from_bytes([5u8; 32]));
        let obj = seal_object(&put, Sealed::Snapshot, b"snap").unwrap();
        let err = open_object(&stranger, Sealed::Snapshot, &obj, "s").unwrap_err();
        assert!(err.to_string().contains("no key file names"), "{err}");
        drop(full);
    }
}
