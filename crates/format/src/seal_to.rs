//! Sealing to a public key: the key agreement of put-only keys
//! (`docs/design/put-only-keys.md`, "Sealing to a public key").
//!
//! A writer that holds only a recipient's X25519 public key `R` starts a
//! [`Session`]: a fresh ephemeral pair `(e, E)`, a session key
//! `K = DK(SESSION, X25519(e, R) || R || E)`, and `e` dropped at once. What
//! the session seals under `K` can be opened by whoever holds `r`, the
//! recipient's secret, and no longer by the writer once the session ends.
//! Objects go in envelope version 2, which carries `R` and `E` in its
//! header and authenticates them as associated data.
//!
//! [`crate::keys::Keys`] of a put-only host seal with a session;
//! [`crate::crypto::seal_object`] and `open_object` read and write the
//! envelope.

use crate::cipher::{self, ENVELOPE_HEADER_LEN, ENVELOPE_MAGIC, NONCE_LEN, SEAL_OVERHEAD, Sealed};
use crate::error::{Error, Result};
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::{Key, XChaCha20Poly1305};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

/// Context string of the session key derivation; part of the format.
pub const SESSION_CONTEXT: &str = "cairn 2026-12-07 put-only session v1";
/// The envelope version of objects sealed to a public key.
pub const ENVELOPE_SEALED_TO: u8 = 2;
/// Header bytes of a version 2 envelope: the version 1 header, `R`, `E`.
pub const SEALED_TO_HEADER_LEN: usize = ENVELOPE_HEADER_LEN + 64;

/// Whom a session sealed to, and with which ephemeral key: the two public
/// values a reader needs to derive the session key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sealing {
    /// The recipient's public key `R`.
    pub recipient: [u8; 32],
    /// The session's ephemeral public key `E`.
    pub ephemeral: [u8; 32],
}

impl Sealing {
    /// The 64 bytes `R || E`, as envelopes and index records store them.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.recipient);
        out[32..].copy_from_slice(&self.ephemeral);
        out
    }

    /// Read `R || E`.
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        let mut recipient = [0u8; 32];
        let mut ephemeral = [0u8; 32];
        recipient.copy_from_slice(&bytes[..32]);
        ephemeral.copy_from_slice(&bytes[32..]);
        Self {
            recipient,
            ephemeral,
        }
    }
}

/// A recipient's key pair: the secret `r` stays with the full key.
pub struct Recipient {
    secret: StaticSecret,
    public: [u8; 32],
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recipient({}..)", hex::encode(&self.public[..4]))
    }
}

impl Recipient {
    /// A fresh random pair.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let r = Self::from_secret(bytes);
        bytes.zeroize();
        Ok(r)
    }

    /// The pair of a stored secret.
    pub fn from_secret(bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        let public = PublicKey::from(&secret).to_bytes();
        Self { secret, public }
    }

    /// The secret's bytes, for sealing into a key file.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// The public key `R`.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The session key of a session sealed to this recipient.
    pub fn session_key(&self, sealing: &Sealing, what: &str) -> Result<SessionKey> {
        if sealing.recipient != self.public {
            return Err(Error::corrupt(what, "sealed to another recipient"));
        }
        let shared = self
            .secret
            .diffie_hellman(&PublicKey::from(sealing.ephemeral));
        if !shared.was_contributory() {
            return Err(Error::corrupt(what, "ephemeral key of low order"));
        }
        Ok(SessionKey::derive(shared.as_bytes(), sealing))
    }
}

/// The symmetric key of one session.
#[derive(Clone)]
pub struct SessionKey(XChaCha20Poly1305);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    fn derive(shared: &[u8; 32], sealing: &Sealing) -> Self {
        let mut input = [0u8; 96];
        input[..32].copy_from_slice(shared);
        input[32..].copy_from_slice(&sealing.to_bytes());
        let mut k = blake3::derive_key(SESSION_CONTEXT, &input);
        input.zeroize();
        let aead = XChaCha20Poly1305::new(&Key::from(k));
        k.zeroize();
        Self(aead)
    }

    pub(crate) fn cipher(&self) -> &XChaCha20Poly1305 {
        &self.0
    }

    /// `nonce || ciphertext || tag` of `plaintext`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        out.extend_from_slice(&[0u8; NONCE_LEN]);
        out.extend_from_slice(plaintext);
        cipher::seal_in_place(&self.0, aad, &mut out)?;
        Ok(out)
    }

    /// Open `nonce || ciphertext || tag`.
    pub fn open(&self, aad: &[u8], sealed: &[u8], what: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        cipher::open_into(&self.0, aad, sealed, what, &mut out)?;
        Ok(out)
    }
}

/// A writer's session: what it seals, only the recipient can open.
#[derive(Debug, Clone)]
pub struct Session {
    sealing: Sealing,
    key: SessionKey,
}

impl Session {
    /// Start a session sealing to `recipient`; the ephemeral secret is
    /// dropped before this returns.
    pub fn start(recipient: &[u8; 32]) -> Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let ephemeral = StaticSecret::from(bytes);
        bytes.zeroize();
        let shared = ephemeral.diffie_hellman(&PublicKey::from(*recipient));
        if !shared.was_contributory() {
            return Err(Error::invalid("recipient key", "a point of low order"));
        }
        let sealing = Sealing {
            recipient: *recipient,
            ephemeral: PublicKey::from(&ephemeral).to_bytes(),
        };
        let key = SessionKey::derive(shared.as_bytes(), &sealing);
        Ok(Self { sealing, key })
    }

    /// Recipient and ephemeral key, for the index and the envelope.
    pub fn sealing(&self) -> &Sealing {
        &self.sealing
    }

    /// The session key.
    pub fn key(&self) -> &SessionKey {
        &self.key
    }

    /// Seal `plaintext` as a version 2 `kind` object.
    pub fn seal_object(&self, kind: Sealed, plaintext: &[u8]) -> Result<Vec<u8>> {
        let header = envelope(kind, &self.sealing);
        let mut out = Vec::with_capacity(SEALED_TO_HEADER_LEN + plaintext.len() + SEAL_OVERHEAD);
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.key.seal(&header, plaintext)?);
        Ok(out)
    }
}

pub(crate) fn envelope(kind: Sealed, sealing: &Sealing) -> [u8; SEALED_TO_HEADER_LEN] {
    let mut h = [0u8; SEALED_TO_HEADER_LEN];
    h[..ENVELOPE_HEADER_LEN].copy_from_slice(&cipher::envelope_header(kind));
    h[5] = ENVELOPE_SEALED_TO;
    h[ENVELOPE_HEADER_LEN..].copy_from_slice(&sealing.to_bytes());
    h
}

/// The recipient and ephemeral key a version 2 `kind` object names, after
/// checking its header. `Ok(None)` for an object of another envelope
/// version.
pub fn sealing_of(bytes: &[u8], kind: Sealed, what: &str) -> Result<Option<Sealing>> {
    if bytes.len() < ENVELOPE_HEADER_LEN || &bytes[..5] != ENVELOPE_MAGIC {
        return Err(Error::corrupt(what, "not a cairn object (bad magic)"));
    }
    if bytes[5] != ENVELOPE_SEALED_TO {
        return Ok(None);
    }
    if bytes.len() < SEALED_TO_HEADER_LEN + SEAL_OVERHEAD {
        return Err(Error::corrupt(
            what,
            format!("{} bytes is too short for a sealed object", bytes.len()),
        ));
    }
    if bytes[6] != kind as u8 || bytes[7] != 0 {
        return Err(Error::corrupt(
            what,
            format!("envelope says kind {}, expected {}", bytes[6], kind as u8),
        ));
    }
    let re: &[u8; 64] = bytes[ENVELOPE_HEADER_LEN..SEALED_TO_HEADER_LEN]
        .try_into()
        .map_err(|_| Error::corrupt(what, "envelope header cut short"))?;
    Ok(Some(Sealing::from_bytes(re)))
}

/// Open a version 2 `kind` object with the recipient's secret.
pub fn open_object(
    recipient: &Recipient,
    kind: Sealed,
    bytes: &[u8],
    what: &str,
) -> Result<Vec<u8>> {
    let Some(sealing) = sealing_of(bytes, kind, what)? else {
        return Err(Error::corrupt(what, "not sealed to a public key"));
    };
    let key = recipient.session_key(&sealing, what)?;
    let (header, body) = bytes.split_at(SEALED_TO_HEADER_LEN);
    key.open(header, body, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipient_opens_what_a_session_sealed() {
        let r = Recipient::generate().unwrap();
        let s = Session::start(&r.public()).unwrap();
        let obj = s.seal_object(Sealed::Snapshot, b"hello").unwrap();
        assert_eq!(obj.len(), SEALED_TO_HEADER_LEN + 5 + SEAL_OVERHEAD);
        assert_eq!(
            sealing_of(&obj, Sealed::Snapshot, "x").unwrap(),
            Some(*s.sealing())
        );
        assert_eq!(
            open_object(&r, Sealed::Snapshot, &obj, "x").unwrap(),
            b"hello"
        );
        // Blobs: sealed under the session key, opened by the recipient's
        // derivation of the same key.
        let blob = s.key().seal(b"aad", b"chunk").unwrap();
        let k = r.session_key(s.sealing(), "blob").unwrap();
        assert_eq!(k.open(b"aad", &blob, "blob").unwrap(), b"chunk");
    }

    #[test]
    fn nobody_else_opens_it_and_nothing_can_be_changed() {
        let r = Recipient::generate().unwrap();
        let other = Recipient::generate().unwrap();
        let s = Session::start(&r.public()).unwrap();
        let obj = s.seal_object(Sealed::Index, b"the index").unwrap();
        assert!(open_object(&other, Sealed::Index, &obj, "x").is_err());
        assert!(open_object(&r, Sealed::Snapshot, &obj, "x").is_err());
        // Another session to the same recipient has another key.
        let s2 = Session::start(&r.public()).unwrap();
        assert_ne!(s.sealing().ephemeral, s2.sealing().ephemeral);
        let blob = s.key().seal(b"a", b"chunk").unwrap();
        assert!(s2.key().open(b"a", &blob, "blob").is_err());
        // Every byte is authenticated, header included.
        for i in 0..obj.len() {
            let mut bad = obj.clone();
            bad[i] ^= 1;
            assert!(
                open_object(&r, Sealed::Index, &bad, "x").is_err(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn low_order_and_malformed_inputs_are_refused() {
        let r = Recipient::generate().unwrap();
        assert!(Session::start(&[0u8; 32]).is_err());
        let bad = Sealing {
            recipient: r.public(),
            ephemeral: [0u8; 32],
        };
        assert!(r.session_key(&bad, "x").is_err());
        let s = Session::start(&r.public()).unwrap();
        let obj = s.seal_object(Sealed::Lock, b"l").unwrap();
        for len in 0..obj.len() {
            assert!(open_object(&r, Sealed::Lock, &obj[..len], "x").is_err());
        }
        assert_eq!(
            sealing_of(b"CAIRN\x01\x03\x00", Sealed::Snapshot, "x").unwrap(),
            None
        );
    }

    #[test]
    fn a_stored_secret_gives_the_same_pair() {
        let r = Recipient::generate().unwrap();
        let again = Recipient::from_secret(r.secret_bytes());
        assert_eq!(again.public(), r.public());
        let s = Session::start(&r.public()).unwrap();
        let obj = s.seal_object(Sealed::PackHeader, b"h").unwrap();
        assert_eq!(
            open_object(&again, Sealed::PackHeader, &obj, "x").unwrap(),
            b"h"
        );
    }
}
