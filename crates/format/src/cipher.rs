//! The cipher layer under everything sealed: XChaCha20-Poly1305 with a
//! random nonce, the key derivation contexts, and the envelope header of
//! sealed objects (`docs/FORMAT.md`, "Keys", "Encryption", "Sealed
//! objects"). [`crate::seal_to`], [`crate::keys`] and [`crate::crypto`]
//! build on it; it knows none of them.

use crate::error::{Error, Result};
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

/// Context strings for `blake3::derive_key`. Changing one makes every
/// existing repository unreadable: they are part of the format.
pub(crate) mod context {
    pub(crate) const DATA_ID: &str = "cairn 2026-11-22 data blob id v1";
    pub(crate) const TREE_ID: &str = "cairn 2026-11-22 tree blob id v1";
    pub(crate) const ENCRYPTION: &str = "cairn 2026-11-22 xchacha20poly1305 v1";
    pub(crate) const GEAR_SEED: &str = "cairn 2026-11-22 chunker gear seed v1";
    pub(crate) const STREAM_TAG: &str = "cairn 2026-11-22 log stream tag v1";
    pub(crate) const LOCK: &str = "cairn 2026-12-07 lock v1";
}

/// Bytes of nonce before every ciphertext.
pub const NONCE_LEN: usize = 24;
/// Bytes of Poly1305 tag after every ciphertext.
pub const TAG_LEN: usize = 16;
/// Overhead of one sealed message: nonce and tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Encrypt `buf[NONCE_LEN..]` in place under `aead` and append the tag;
/// a random nonce is written into the first `NONCE_LEN` bytes.
pub(crate) fn seal_in_place(aead: &XChaCha20Poly1305, aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)?;
    buf[..NONCE_LEN].copy_from_slice(&nonce);
    let tag = aead
        .encrypt_inout_detached(&XNonce::from(nonce), aad, (&mut buf[NONCE_LEN..]).into())
        .map_err(|_| Error::invalid("message", "too long to encrypt"))?;
    buf.extend_from_slice(tag.as_slice());
    Ok(())
}

/// Decrypt and authenticate `nonce || ciphertext || tag` under `aead` into
/// `out` (cleared first; its capacity is reused).
pub(crate) fn open_into(
    aead: &XChaCha20Poly1305,
    aad: &[u8],
    sealed: &[u8],
    what: &str,
    out: &mut Vec<u8>,
) -> Result<()> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(Error::corrupt(
            what,
            format!("{} bytes is shorter than nonce and tag", sealed.len()),
        ));
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    out.clear();
    out.extend_from_slice(ciphertext);
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| Error::corrupt(what, "bad nonce"))?;
    let tag = Tag::try_from(tag).map_err(|_| Error::corrupt(what, "bad tag"))?;
    aead.decrypt_inout_detached(&XNonce::from(nonce), aad, out.as_mut_slice().into(), &tag)
        .map_err(|_| {
            Error::corrupt(
                what,
                "authentication failed (altered, truncated or written with another key)",
            )
        })
}

/// Kinds of sealed objects; the tag byte is part of the envelope header and
/// of the associated data, so an object cannot be passed off as another kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    Config = 1,
    Index = 2,
    Snapshot = 3,
    Lock = 4,
    PackHeader = 5,
    AccountEvent = 6,
    LogSegment = 7,
    PendingDeletion = 8,
    Verification = 9,
}

impl Sealed {
    /// Every kind, in tag order.
    pub const ALL: [Sealed; 9] = [
        Sealed::Config,
        Sealed::Index,
        Sealed::Snapshot,
        Sealed::Lock,
        Sealed::PackHeader,
        Sealed::AccountEvent,
        Sealed::LogSegment,
        Sealed::PendingDeletion,
        Sealed::Verification,
    ];

    /// The name FORMAT.md gives the kind.
    pub const fn noun(self) -> &'static str {
        match self {
            Sealed::Config => "config",
            Sealed::Index => "index",
            Sealed::Snapshot => "snapshot",
            Sealed::Lock => "lock",
            Sealed::PackHeader => "pack header",
            Sealed::AccountEvent => "account event",
            Sealed::LogSegment => "log segment",
            Sealed::PendingDeletion => "pending deletion",
            Sealed::Verification => "verification record",
        }
    }
}

/// Envelope header: magic, envelope version, kind tag, reserved zero.
pub(crate) const ENVELOPE_MAGIC: &[u8; 5] = b"CAIRN";
pub(crate) const ENVELOPE_VERSION: u8 = 1;
pub(crate) const ENVELOPE_HEADER_LEN: usize = 8;

pub(crate) fn envelope_header(kind: Sealed) -> [u8; ENVELOPE_HEADER_LEN] {
    let mut h = [0u8; ENVELOPE_HEADER_LEN];
    h[..5].copy_from_slice(ENVELOPE_MAGIC);
    h[5] = ENVELOPE_VERSION;
    h[6] = kind as u8;
    h
}
