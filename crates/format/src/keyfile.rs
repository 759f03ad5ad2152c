//! Key files: the master key wrapped by a password-derived key (argon2id).
//! Several key files may wrap the same master key; each has its own salt and
//! parameters. Format in `docs/FORMAT.md` ("Key files").

use crate::crypto::{MasterKey, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::keys::{Keys, PutOnlyMaterial};
use crate::seal_to::Recipient;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// Current key file version.
pub const KEY_FILE_VERSION: u32 = 1;
/// Key files larger than this are rejected before parsing.
pub const MAX_KEY_FILE_LEN: usize = 64 << 10;
pub(crate) const WRAP_AAD: &[u8] = b"cairn key file v1";
/// Associated data of a put-only key file's wrapped material.
pub(crate) const WRAP_PUT_ONLY_AAD: &[u8] = b"cairn put-only key v1";
/// Largest wrapped material accepted.
const MAX_MATERIAL_LEN: usize = 32 << 10;

/// Argon2id cost parameters, stored in each key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfCost {
    /// 64 MiB, 3 passes, 1 lane: about a quarter of a second here.
    fn default() -> Self {
        Self {
            memory_kib: 64 << 10,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl KdfCost {
    /// The cheapest cost accepted: for tests and benchmarks only, it offers
    /// no protection against guessing the password.
    pub const MINIMAL: KdfCost = KdfCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    /// Reject costs argon2 cannot run, or that a tampered key file could use
    /// to make every open allocate gigabytes.
    pub fn validate(&self) -> Result<()> {
        let ok = (1..=16).contains(&self.parallelism)
            && (1..=64).contains(&self.iterations)
            && self.memory_kib >= 8 * self.parallelism
            && self.memory_kib <= 2 << 20;
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "key derivation cost",
                format!(
                    "memory {} KiB, {} iterations, {} lanes is outside 8 KiB..2 GiB, 1..64, 1..16",
                    self.memory_kib, self.iterations, self.parallelism
                ),
            ))
        }
    }
}

/// The JSON key file stored under `keys/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Format version.
    pub version: u32,
    /// When the key file was made.
    pub created: jiff::Timestamp,
    /// Host that made it.
    pub host: String,
    /// User that made it.
    pub username: String,
    /// Always `argon2id`.
    pub kdf: String,
    /// Argon2id costs.
    pub cost: KdfCost,
    /// Salt, hex.
    pub salt: String,
    /// `nonce || XChaCha20-Poly1305(master key) || tag`, hex; for a
    /// put-only key, of the [`PutOnlyMaterial`] JSON instead.
    pub wrapped_key: String,
    /// Present on a put-only key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub put_only: Option<PutOnlyEntry>,
}

/// The part of a put-only key file anyone can read: whom its sessions seal
/// to, which accounts it may write, and its recipient secret sealed under
/// the repository's master encryption key (for the full key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutOnlyEntry {
    /// The recipient's X25519 public key `R`, hex.
    pub recipient: String,
    /// Accounts this key may back up.
    pub accounts: Vec<String>,
    /// `nonce || seal(r) || tag` under the master encryption key, hex.
    pub secret: String,
}

impl PutOnlyEntry {
    /// The recipient public key.
    pub fn recipient_key(&self, what: &str) -> Result<[u8; 32]> {
        let mut r = [0u8; 32];
        hex::decode_to_slice(&self.recipient, &mut r)
            .map_err(|_| Error::corrupt(what, "the recipient is not 32 bytes of hex"))?;
        Ok(r)
    }

    /// Open the recipient secret with the full key.
    pub fn open(&self, keys: &Keys, what: &str) -> Result<Recipient> {
        let sealed =
            hex::decode(&self.secret).map_err(|_| Error::corrupt(what, "secret is not hex"))?;
        keys.open_recipient_secret(&self.recipient_key(what)?, &self.accounts, &sealed, what)
    }
}

/// What a password opens.
#[derive(Debug)]
pub enum Unlocked {
    /// A full key file: the master key.
    Master(MasterKey),
    /// A put-only key file: its material.
    PutOnly(Box<PutOnlyMaterial>),
}

/// `nonce || seal(body) || tag` under the password-derived key.
fn wrap(kek: &[u8; 32], aad: &[u8], body: &[u8]) -> Result<Vec<u8>> {
    let aead = XChaCha20Poly1305::new(&Key::from(*kek));
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)?;
    let mut buf = Zeroizing::new(body.to_vec());
    let tag = aead
        .encrypt_inout_detached(&XNonce::from(nonce), aad, buf.as_mut_slice().into())
        .map_err(|_| Error::invalid("key", "wrapping failed"))?;
    let mut wrapped = Vec::with_capacity(NONCE_LEN + body.len() + TAG_LEN);
    wrapped.extend_from_slice(&nonce);
    wrapped.extend_from_slice(buf.as_slice());
    wrapped.extend_from_slice(tag.as_slice());
    Ok(wrapped)
}

fn derive_kek(password: &[u8], salt: &[u8], cost: &KdfCost) -> Result<Zeroizing<[u8; 32]>> {
    cost.validate()?;
    let params = argon2::Params::new(cost.memory_kib, cost.iterations, cost.parallelism, Some(32))
        .map_err(|e| Error::invalid("argon2 parameters", e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password, salt, out.as_mut())
        .map_err(|e| Error::invalid("argon2", e.to_string()))?;
    Ok(out)
}

impl KeyFile {
    /// Wrap `master` under `password`, recording who created it.
    pub fn create(
        master: &MasterKey,
        password: &[u8],
        cost: KdfCost,
        host: String,
        username: String,
    ) -> Result<Self> {
        Self::wrapping(
            WRAP_AAD,
            master.as_bytes(),
            password,
            cost,
            host,
            username,
            None,
        )
    }

    /// A key file whose `wrapped_key` is `body` sealed under the key
    /// derived from `password`, with `aad`.
    fn wrapping(
        aad: &[u8],
        body: &[u8],
        password: &[u8],
        cost: KdfCost,
        host: String,
        username: String,
        put_only: Option<PutOnlyEntry>,
    ) -> Result<Self> {
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt)?;
        let kek = derive_kek(password, &salt, &cost)?;
        let wrapped = wrap(&kek, aad, body)?;
        Ok(Self {
            version: KEY_FILE_VERSION,
            created: jiff::Timestamp::now(),
            host,
            username,
            kdf: "argon2id".to_string(),
            cost,
            salt: hex::encode(salt),
            wrapped_key: hex::encode(wrapped),
            put_only,
        })
    }

    /// A put-only key file for `accounts`, made with the full key: a fresh
    /// recipient pair, its secret sealed under the master key, and the
    /// material wrapped under `password`.
    #[allow(clippy::too_many_arguments)]
    pub fn create_put_only(
        keys: &Keys,
        accounts: &[String],
        repository: String,
        config: serde_json::Value,
        password: &[u8],
        cost: KdfCost,
        host: String,
        username: String,
    ) -> Result<Self> {
        if accounts.is_empty() {
            return Err(Error::invalid(
                "put-only key",
                "it must name at least one account",
            ));
        }
        let recipient = Recipient::generate()?;
        let material = keys.put_only_material(&recipient.public(), accounts, repository, config)?;
        let secret = keys.seal_recipient_secret(&recipient, accounts)?;
        let json = Zeroizing::new(
            serde_json::to_vec(&material).map_err(|e| Error::invalid("key", e.to_string()))?,
        );
        let entry = PutOnlyEntry {
            recipient: hex::encode(recipient.public()),
            accounts: accounts.to_vec(),
            secret: hex::encode(secret),
        };
        Self::wrapping(
            WRAP_PUT_ONLY_AAD,
            &json,
            password,
            cost,
            host,
            username,
            Some(entry),
        )
    }

    /// Parse a key file's bytes (bounded size, strict fields).
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self> {
        if bytes.is_empty() {
            return Err(Error::corrupt(what, "empty key file"));
        }
        if bytes.len() > MAX_KEY_FILE_LEN {
            return Err(Error::corrupt(
                what,
                format!("{} bytes is larger than any key file", bytes.len()),
            ));
        }
        let kf: KeyFile = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt(what, format!("not a key file: {e}")))?;
        if kf.version != KEY_FILE_VERSION {
            return Err(Error::UnsupportedVersion {
                what: what.to_string(),
                found: kf.version,
                supported: KEY_FILE_VERSION,
            });
        }
        if kf.kdf != "argon2id" {
            return Err(Error::corrupt(
                what,
                format!("unknown key derivation {:?}", kf.kdf),
            ));
        }
        Ok(kf)
    }

    /// Serialize for storage.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| Error::invalid("key file", e.to_string()))
    }

    /// Unwrap the master key. `Ok(None)` means the password is wrong for
    /// this key file (or it is a put-only key file); `Err` means the file
    /// itself is malformed.
    pub fn unlock(&self, password: &[u8], what: &str) -> Result<Option<MasterKey>> {
        match self.unlock_any(password, what)? {
            Some(Unlocked::Master(m)) => Ok(Some(m)),
            _ => Ok(None),
        }
    }

    /// Unwrap whatever the key file holds: the master key, or a put-only
    /// key's material. `Ok(None)` means the password is wrong.
    pub fn unlock_any(&self, password: &[u8], what: &str) -> Result<Option<Unlocked>> {
        let salt = hex::decode(&self.salt).map_err(|_| Error::corrupt(what, "salt is not hex"))?;
        if !(16..=64).contains(&salt.len()) {
            return Err(Error::corrupt(what, "salt length outside 16..64 bytes"));
        }
        let wrapped = hex::decode(&self.wrapped_key)
            .map_err(|_| Error::corrupt(what, "wrapped key is not hex"))?;
        let (aad, fits) = match self.put_only {
            None => (WRAP_AAD, wrapped.len() == NONCE_LEN + 32 + TAG_LEN),
            Some(_) => (
                WRAP_PUT_ONLY_AAD,
                (NONCE_LEN + TAG_LEN..=MAX_MATERIAL_LEN).contains(&wrapped.len()),
            ),
        };
        if !fits {
            return Err(Error::corrupt(what, "wrapped key has the wrong length"));
        }
        self.cost
            .validate()
            .map_err(|e| Error::corrupt(what, e.to_string()))?;
        let kek = derive_kek(password, &salt, &self.cost)?;
        let aead = XChaCha20Poly1305::new(&Key::from(*kek));
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&wrapped[..NONCE_LEN]);
        let body_end = wrapped.len() - TAG_LEN;
        let mut body = Zeroizing::new(wrapped[NONCE_LEN..body_end].to_vec());
        let tag =
            Tag::try_from(&wrapped[body_end..]).map_err(|_| Error::corrupt(what, "bad tag"))?;
        if aead
            .decrypt_inout_detached(&XNonce::from(nonce), aad, body.as_mut_slice().into(), &tag)
            .is_err()
        {
            return Ok(None);
        }
        let Some(entry) = &self.put_only else {
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(&body);
            let key = MasterKey::from_bytes(bytes);
            bytes.zeroize();
            return Ok(Some(Unlocked::Master(key)));
        };
        let material: PutOnlyMaterial = serde_json::from_slice(&body)
            .map_err(|e| Error::corrupt(what, format!("put-only material: {e}")))?;
        if material.recipient != entry.recipient || material.accounts != entry.accounts {
            return Err(Error::corrupt(
                what,
                "the wrapped material names another recipient or other accounts",
            ));
        }
        Ok(Some(Unlocked::PutOnly(Box::new(material))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfCost = KdfCost::MINIMAL;

    #[test]
    fn wrap_and_unwrap() {
        let master = MasterKey::generate().unwrap();
        let kf = KeyFile::create(&master, b"correct horse", CHEAP, "h".into(), "u".into()).unwrap();
        let bytes = kf.to_bytes().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains(&hex::encode(master.as_bytes())));
        let parsed = KeyFile::parse(&bytes, "k").unwrap();
        let back = parsed.unlock(b"correct horse", "k").unwrap().unwrap();
        assert_eq!(back.as_bytes(), master.as_bytes());
        assert!(parsed.unlock(b"wrong", "k").unwrap().is_none());
    }

    #[test]
    fn malformed_key_files_are_errors() {
        assert!(KeyFile::parse(b"", "k").is_err());
        assert!(KeyFile::parse(b"{", "k").is_err());
        assert!(KeyFile::parse(&vec![b' '; MAX_KEY_FILE_LEN + 1], "k").is_err());
        let master = MasterKey::generate().unwrap();
        let mut kf = KeyFile::create(&master, b"pw", CHEAP, "h".into(), "u".into()).unwrap();
        kf.cost.memory_kib = u32::MAX;
        assert!(kf.unlock(b"pw", "k").is_err());
        let mut kf = KeyFile::create(&master, b"pw", CHEAP, "h".into(), "u".into()).unwrap();
        kf.wrapped_key.truncate(10);
        assert!(kf.unlock(b"pw", "k").is_err());
        let mut kf = KeyFile::create(&master, b"pw", CHEAP, "h".into(), "u".into()).unwrap();
        kf.version = 2;
        let bytes = kf.to_bytes().unwrap();
        assert!(matches!(
            KeyFile::parse(&bytes, "k"),
            Err(Error::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn a_put_only_key_file_wraps_material_and_no_master_key() {
        let master = MasterKey::generate().unwrap();
        let keys = Keys::derive(&master);
        let accounts = vec!["alice".to_string(), "bob".to_string()];
        let kf = KeyFile::create_put_only(
            &keys,
            &accounts,
            "repo".into(),
            serde_json::json!({"x": 1}),
            b"pw",
            CHEAP,
            "h".into(),
            "u".into(),
        )
        .unwrap();
        let bytes = kf.to_bytes().unwrap();
        let parsed = KeyFile::parse(&bytes, "k").unwrap();
        assert!(parsed.unlock(b"pw", "k").unwrap().is_none());
        assert!(parsed.unlock_any(b"wrong", "k").unwrap().is_none());
        let Some(Unlocked::PutOnly(material)) = parsed.unlock_any(b"pw", "k").unwrap() else {
            panic!("not put-only material");
        };
        assert_eq!(material.accounts, accounts);
        assert_eq!(material.config, serde_json::json!({"x": 1}));
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains(&hex::encode(master.as_bytes())));
        // The full key opens the recipient secret; a changed account list
        // does not open.
        let entry = parsed.put_only.clone().unwrap();
        let r = entry.open(&keys, "k").unwrap();
        assert_eq!(hex::encode(r.public()), entry.recipient);
        let mut edited = entry.clone();
        edited.accounts.push("mallory".into());
        assert!(edited.open(&keys, "k").is_err());
        let mut forged = parsed.clone();
        forged.put_only = Some(edited);
        assert!(forged.unlock_any(b"pw", "k").is_err());
        // Made only with the full key, and never for no account.
        let put = Keys::put_only(&material).unwrap();
        let again = KeyFile::create_put_only(
            &put,
            &accounts,
            "repo".into(),
            serde_json::json!({}),
            b"pw",
            CHEAP,
            "h".into(),
            "u".into(),
        );
        assert!(matches!(again, Err(Error::PutOnly { .. })));
        let none = KeyFile::create_put_only(
            &keys,
            &[],
            "repo".into(),
            serde_json::json!({}),
            b"pw",
            CHEAP,
            "h".into(),
            "u".into(),
        );
        assert!(none.is_err());
    }
}
