//! Key files: the master key wrapped by a password-derived key (argon2id).
//! Several key files may wrap the same master key; each has its own salt and
//! parameters. Format in `docs/FORMAT.md` ("Key files").

use crate::crypto::{MasterKey, NONCE_LEN, TAG_LEN};
use crate::error::{Error, Result};
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// Current key file version.
pub const KEY_FILE_VERSION: u32 = 1;
/// Key files larger than this are rejected before parsing.
pub const MAX_KEY_FILE_LEN: usize = 64 << 10;
pub(crate) const WRAP_AAD: &[u8] = b"cairn key file v1";

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
    /// `nonce || XChaCha20-Poly1305(master key) || tag`, hex.
    pub wrapped_key: String,
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
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt)?;
        let kek = derive_kek(password, &salt, &cost)?;
        let aead = XChaCha20Poly1305::new(&Key::from(*kek));
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)?;
        let mut body = Zeroizing::new(*master.as_bytes());
        let tag = aead
            .encrypt_inout_detached(&XNonce::from(nonce), WRAP_AAD, body.as_mut_slice().into())
            .map_err(|_| Error::invalid("key", "wrapping failed"))?;
        let mut wrapped = Vec::with_capacity(NONCE_LEN + 32 + TAG_LEN);
        wrapped.extend_from_slice(&nonce);
        wrapped.extend_from_slice(body.as_slice());
        wrapped.extend_from_slice(tag.as_slice());
        Ok(Self {
            version: KEY_FILE_VERSION,
            created: jiff::Timestamp::now(),
            host,
            username,
            kdf: "argon2id".to_string(),
            cost,
            salt: hex::encode(salt),
            wrapped_key: hex::encode(wrapped),
        })
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
    /// this key file; `Err` means the file itself is malformed.
    pub fn unlock(&self, password: &[u8], what: &str) -> Result<Option<MasterKey>> {
        let salt = hex::decode(&self.salt).map_err(|_| Error::corrupt(what, "salt is not hex"))?;
        if !(16..=64).contains(&salt.len()) {
            return Err(Error::corrupt(what, "salt length outside 16..64 bytes"));
        }
        let wrapped = hex::decode(&self.wrapped_key)
            .map_err(|_| Error::corrupt(what, "wrapped key is not hex"))?;
        if wrapped.len() != NONCE_LEN + 32 + TAG_LEN {
            return Err(Error::corrupt(what, "wrapped key has the wrong length"));
        }
        self.cost
            .validate()
            .map_err(|e| Error::corrupt(what, e.to_string()))?;
        let kek = derive_kek(password, &salt, &self.cost)?;
        let aead = XChaCha20Poly1305::new(&Key::from(*kek));
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&wrapped[..NONCE_LEN]);
        let mut body = Zeroizing::new([0u8; 32]);
        body.copy_from_slice(&wrapped[NONCE_LEN..NONCE_LEN + 32]);
        let tag = Tag::try_from(&wrapped[NONCE_LEN + 32..])
            .map_err(|_| Error::corrupt(what, "bad tag"))?;
        match aead.decrypt_inout_detached(
            &XNonce::from(nonce),
            WRAP_AAD,
            body.as_mut_slice().into(),
            &tag,
        ) {
            Ok(()) => {
                let key = MasterKey::from_bytes(*body);
                body.zeroize();
                Ok(Some(key))
            }
            Err(_) => Ok(None),
        }
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
}
