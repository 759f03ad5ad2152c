//! Keys, authenticated encryption, blob encoding and the sealed-object
//! envelope. The byte layouts are specified in `docs/FORMAT.md`
//! ("Encryption", "Blobs", "Sealed objects"); this module implements them.
//!
//! One random 32-byte master key per repository. Everything else is derived
//! from it with BLAKE3 `derive_key` and the fixed context strings below, so a
//! key file only has to protect those 32 bytes.

use crate::error::{Error, Result};
use crate::id::{BlobKind, ChunkId, ID_LEN, TreeId};
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use std::cell::RefCell;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Context strings for `blake3::derive_key`. Changing one makes every
/// existing repository unreadable: they are part of the format.
pub(crate) mod context {
    pub(crate) const DATA_ID: &str = "cairn 2026-11-22 data blob id v1";
    pub(crate) const TREE_ID: &str = "cairn 2026-11-22 tree blob id v1";
    pub(crate) const ENCRYPTION: &str = "cairn 2026-11-22 xchacha20poly1305 v1";
    pub(crate) const GEAR_SEED: &str = "cairn 2026-11-22 chunker gear seed v1";
    pub(crate) const STREAM_TAG: &str = "cairn 2026-11-22 log stream tag v1";
}

/// Bytes of nonce before every ciphertext.
pub const NONCE_LEN: usize = 24;
/// Bytes of Poly1305 tag after every ciphertext.
pub const TAG_LEN: usize = 16;
/// Overhead of one sealed message: nonce and tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Largest blob plaintext accepted on decode (512 MiB): a bound on what a
/// corrupt or hostile header can make a reader allocate.
pub const MAX_BLOB_LEN: u32 = 512 << 20;

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

/// The working keys derived from a [`MasterKey`].
#[derive(Clone)]
pub struct Keys {
    data_id: [u8; 32],
    tree_id: [u8; 32],
    gear_seed: [u8; 32],
    stream_tag: [u8; 32],
    aead: XChaCha20Poly1305,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.data_id.zeroize();
        self.tree_id.zeroize();
        self.gear_seed.zeroize();
        self.stream_tag.zeroize();
    }
}

impl Keys {
    /// Derive the working keys.
    pub fn derive(master: &MasterKey) -> Self {
        let mut enc = blake3::derive_key(context::ENCRYPTION, master.as_bytes());
        let aead = XChaCha20Poly1305::new(&Key::from(enc));
        enc.zeroize();
        Self {
            data_id: blake3::derive_key(context::DATA_ID, master.as_bytes()),
            tree_id: blake3::derive_key(context::TREE_ID, master.as_bytes()),
            gear_seed: blake3::derive_key(context::GEAR_SEED, master.as_bytes()),
            stream_tag: blake3::derive_key(context::STREAM_TAG, master.as_bytes()),
            aead,
        }
    }

    /// The id of a data blob with this plaintext.
    pub fn chunk_id(&self, plaintext: &[u8]) -> ChunkId {
        ChunkId::from_bytes(*blake3::keyed_hash(&self.data_id, plaintext).as_bytes())
    }

    /// The id of a tree blob with this plaintext.
    pub fn tree_id(&self, plaintext: &[u8]) -> TreeId {
        TreeId::from_bytes(*blake3::keyed_hash(&self.tree_id, plaintext).as_bytes())
    }

    /// The raw id of a blob of either kind.
    pub fn blob_id(&self, kind: BlobKind, plaintext: &[u8]) -> [u8; ID_LEN] {
        let key = match kind {
            BlobKind::Data => &self.data_id,
            BlobKind::Tree => &self.tree_id,
        };
        *blake3::keyed_hash(key, plaintext).as_bytes()
    }

    /// The seed of this repository's chunker gear table (secret, so chunk
    /// sizes do not reveal which known files the repository holds).
    pub fn gear_seed(&self) -> &[u8; 32] {
        &self.gear_seed
    }

    /// The directory name of a log stream: 32 hex digits of a keyed hash of
    /// account and stream, so object names reveal neither.
    pub fn stream_tag(&self, account: &str, stream: &str) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.stream_tag);
        h.update(account.as_bytes());
        h.update(&[0]);
        h.update(stream.as_bytes());
        hex::encode(&h.finalize().as_bytes()[..16])
    }

    /// Encrypt `buf[NONCE_LEN..]` in place and append the tag. The caller
    /// reserves the first `NONCE_LEN` bytes; a random nonce is written there.
    pub(crate) fn seal_in_place(&self, aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
        seal_in_place(&self.aead, aad, buf)
    }

    /// Decrypt and authenticate `nonce || ciphertext || tag` into `out`
    /// (cleared first; its capacity is reused).
    pub(crate) fn open_into(
        &self,
        aad: &[u8],
        sealed: &[u8],
        what: &str,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        open_into(&self.aead, aad, sealed, what, out)
    }

    /// Decrypt and authenticate `nonce || ciphertext || tag`.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8], what: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open_into(aad, sealed, what, &mut out)?;
        Ok(out)
    }
}

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

/// How blobs are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compression {
    /// zstd level; 0 stores everything uncompressed.
    pub level: i32,
    /// Skip compression of data that looks incompressible (byte entropy of a
    /// sample above 7.5 bits per byte).
    pub skip_incompressible: bool,
}

impl Default for Compression {
    fn default() -> Self {
        Self {
            level: 3,
            skip_incompressible: true,
        }
    }
}

impl Compression {
    /// Check the level is one zstd accepts.
    pub fn validate(&self) -> Result<()> {
        if !(0..=22).contains(&self.level) {
            return Err(Error::invalid(
                "compression level",
                format!("{} is not between 0 (off) and 22", self.level),
            ));
        }
        Ok(())
    }
}

const ENCODING_RAW: u8 = 0;
const ENCODING_ZSTD: u8 = 1;

/// Shannon entropy of a byte sample: up to 16 windows of 1 KiB spread over
/// the data. Compressed and encrypted data sit near 8 bits per byte, text
/// near 4.5, executables near 6.
fn sample_entropy(data: &[u8]) -> f64 {
    const WINDOW: usize = 1024;
    const WINDOWS: usize = 16;
    let mut counts = [0u32; 256];
    let mut total = 0u32;
    if data.len() <= WINDOW * WINDOWS {
        for &b in data {
            counts[usize::from(b)] += 1;
        }
        total = data.len() as u32;
    } else {
        let stride = data.len() / WINDOWS;
        for w in 0..WINDOWS {
            for &b in &data[w * stride..w * stride + WINDOW] {
                counts[usize::from(b)] += 1;
            }
            total += WINDOW as u32;
        }
    }
    let total = f64::from(total.max(1));
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / total;
            -p * p.log2()
        })
        .sum()
}

/// A thread's zstd context and its output buffer, both reused: a backup
/// compresses tens of thousands of chunks and must not allocate (and fault
/// in) a fresh output buffer for each.
struct Compressing {
    level: i32,
    zstd: zstd::bulk::Compressor<'static>,
    out: Vec<u8>,
}

thread_local! {
    static COMPRESSOR: RefCell<Option<Compressing>> = const { RefCell::new(None) };
    static DECODER: RefCell<Decoder> = RefCell::new(Decoder::default());
}

/// Compress with this thread's reusable zstd context and append the result
/// to `dest`; returns `false` (and appends nothing) when the result would
/// not save at least 1/64 of the input.
fn compress_into(level: i32, data: &[u8], dest: &mut Vec<u8>) -> Result<bool> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().map(|c| c.level) != Some(level) {
            let zstd = zstd::bulk::Compressor::new(level)
                .map_err(|e| Error::invalid("zstd compressor", e.to_string()))?;
            *slot = Some(Compressing {
                level,
                zstd,
                out: Vec::new(),
            });
        }
        let Some(c) = slot.as_mut() else {
            return Ok(false);
        };
        c.out.clear();
        c.out.reserve(zstd::zstd_safe::compress_bound(data.len()));
        c.zstd
            .compress_to_buffer(data, &mut c.out)
            .map_err(|e| Error::invalid("zstd compression", e.to_string()))?;
        let worth = c.out.len() + c.out.len() / 64 < data.len();
        if worth {
            dest.extend_from_slice(&c.out);
        }
        // A rare huge chunk does not pin its buffer for the thread's life.
        if c.out.capacity() > 16 << 20 {
            c.out = Vec::new();
        }
        Ok(worth)
    })
}

/// The prefix of every blob's associated data.
pub(crate) const BLOB_AAD: &[u8; 13] = b"cairn blob v1";

fn blob_aad(kind: BlobKind, id: &[u8; ID_LEN]) -> [u8; 46] {
    let mut aad = [0u8; 46];
    aad[..13].copy_from_slice(BLOB_AAD);
    aad[13] = kind.to_byte();
    aad[14..].copy_from_slice(id);
    aad
}

/// Compress (when worthwhile) and encrypt a blob whose id is already known.
/// Returns the stored bytes: `nonce || seal(encoding || payload) || tag`.
pub fn encode_blob(
    keys: &Keys,
    compression: &Compression,
    kind: BlobKind,
    id: &[u8; ID_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let try_compress = compression.level != 0
        && plaintext.len() >= 64
        && !(compression.skip_incompressible && sample_entropy(plaintext) > 7.5);
    // Compressed output is never kept unless smaller than the plaintext.
    let mut buf = Vec::with_capacity(plaintext.len() + 1 + SEAL_OVERHEAD);
    buf.extend_from_slice(&[0u8; NONCE_LEN]);
    buf.push(ENCODING_ZSTD);
    if !(try_compress && compress_into(compression.level, plaintext, &mut buf)?) {
        buf[NONCE_LEN] = ENCODING_RAW;
        buf.extend_from_slice(plaintext);
    }
    keys.seal_in_place(&blob_aad(kind, id), &mut buf)?;
    Ok(buf)
}

/// Per-thread buffers and zstd context for decoding blobs: restoring a
/// gigabyte allocates nothing per blob.
#[derive(Default)]
struct Decoder {
    zstd: Option<zstd::bulk::Decompressor<'static>>,
    sealed: Vec<u8>,
    out: Vec<u8>,
}

impl Decoder {
    fn decode(
        &mut self,
        keys: &Keys,
        kind: BlobKind,
        id: &[u8; ID_LEN],
        stored: &[u8],
        raw_len: u32,
    ) -> Result<&[u8]> {
        let what = || format!("{kind} blob {}", hex::encode(id));
        if raw_len > MAX_BLOB_LEN {
            return Err(Error::corrupt(
                what(),
                format!("recorded length {raw_len} exceeds the {MAX_BLOB_LEN}-byte limit"),
            ));
        }
        keys.open_into(&blob_aad(kind, id), stored, &what(), &mut self.sealed)?;
        let plaintext: &[u8] = match self.sealed.first() {
            Some(&ENCODING_RAW) => &self.sealed[1..],
            Some(&ENCODING_ZSTD) => {
                if self.zstd.is_none() {
                    self.zstd = Some(
                        zstd::bulk::Decompressor::new()
                            .map_err(|e| Error::invalid("zstd decompressor", e.to_string()))?,
                    );
                }
                let Some(d) = self.zstd.as_mut() else {
                    return Err(Error::invalid("zstd decompressor", "unavailable"));
                };
                // The output capacity bounds decompression: a frame that
                // claims or produces more than the authenticated raw length
                // fails instead of allocating (no zstd bombs).
                self.out.clear();
                if self.out.capacity() > 2 * raw_len as usize + (1 << 20) {
                    self.out = Vec::new();
                }
                self.out.reserve_exact(raw_len as usize);
                d.decompress_to_buffer(&self.sealed[1..], &mut self.out)
                    .map_err(|e| Error::corrupt(what(), format!("zstd: {e}")))?;
                &self.out
            }
            Some(other) => return Err(Error::corrupt(what(), format!("unknown encoding {other}"))),
            None => return Err(Error::corrupt(what(), "empty payload")),
        };
        if plaintext.len() != raw_len as usize {
            return Err(Error::corrupt(
                what(),
                format!(
                    "plaintext is {} bytes, index says {raw_len}",
                    plaintext.len()
                ),
            ));
        }
        if &keys.blob_id(kind, plaintext) != id {
            return Err(Error::corrupt(what(), "content does not match its id"));
        }
        Ok(plaintext)
    }
}

/// Decrypt, decompress and verify a stored blob (the plaintext must be
/// exactly `raw_len` bytes and hash to `id`), and hand it to `f` without
/// copying it.
pub fn with_blob<R>(
    keys: &Keys,
    kind: BlobKind,
    id: &[u8; ID_LEN],
    stored: &[u8],
    raw_len: u32,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R> {
    DECODER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut decoder) => decoder.decode(keys, kind, id, stored, raw_len).map(f),
        // Re-entered from `f`: use a fresh decoder.
        Err(_) => Decoder::default()
            .decode(keys, kind, id, stored, raw_len)
            .map(f),
    })
}

/// Decrypt, decompress and verify a stored blob into a new vector.
pub fn decode_blob(
    keys: &Keys,
    kind: BlobKind,
    id: &[u8; ID_LEN],
    stored: &[u8],
    raw_len: u32,
) -> Result<Vec<u8>> {
    with_blob(keys, kind, id, stored, raw_len, <[u8]>::to_vec)
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

/// Seal a plaintext as a `kind` object: `header || nonce || ct || tag`, the
/// header being the associated data.
pub fn seal_object(keys: &Keys, kind: Sealed, plaintext: &[u8]) -> Result<Vec<u8>> {
    let header = envelope_header(kind);
    let mut buf = Vec::with_capacity(ENVELOPE_HEADER_LEN + plaintext.len() + SEAL_OVERHEAD);
    buf.extend_from_slice(&header);
    buf.extend_from_slice(&[0u8; NONCE_LEN]);
    buf.extend_from_slice(plaintext);
    // seal_in_place works on a buffer whose first NONCE_LEN bytes are the
    // nonce; run it on the part after the header.
    let mut body = buf.split_off(ENVELOPE_HEADER_LEN);
    keys.seal_in_place(&header, &mut body)?;
    buf.extend_from_slice(&body);
    Ok(buf)
}

/// Open a sealed `kind` object.
pub fn open_object(keys: &Keys, kind: Sealed, bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    if bytes.len() < ENVELOPE_HEADER_LEN + SEAL_OVERHEAD {
        return Err(Error::corrupt(
            what,
            format!("{} bytes is too short for a sealed object", bytes.len()),
        ));
    }
    let (header, body) = bytes.split_at(ENVELOPE_HEADER_LEN);
    if &header[..5] != ENVELOPE_MAGIC {
        return Err(Error::corrupt(what, "not a cairn object (bad magic)"));
    }
    if header[5] != ENVELOPE_VERSION {
        return Err(Error::UnsupportedVersion {
            what: what.to_string(),
            found: u32::from(header[5]),
            supported: u32::from(ENVELOPE_VERSION),
        });
    }
    if header[6] != kind as u8 || header[7] != 0 {
        return Err(Error::corrupt(
            what,
            format!("envelope says kind {}, expected {}", header[6], kind as u8),
        ));
    }
    keys.open(header, body, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::derive(&MasterKey::from_bytes([3u8; 32]))
    }

    #[test]
    fn blob_round_trip_compressed_and_raw() {
        let keys = keys();
        let c = Compression::default();
        let text = b"the quick brown fox jumps over the lazy dog ".repeat(200);
        let id = keys.blob_id(BlobKind::Data, &text);
        let stored = encode_blob(&keys, &c, BlobKind::Data, &id, &text).unwrap();
        assert!(stored.len() < text.len() / 4, "text should compress");
        let back = decode_blob(&keys, BlobKind::Data, &id, &stored, text.len() as u32).unwrap();
        assert_eq!(back, text);

        let mut random = vec![0u8; 100_000];
        getrandom::fill(&mut random).unwrap();
        assert!(sample_entropy(&random) > 7.9);
        assert!(sample_entropy(&text) < 5.0);
        let id = keys.blob_id(BlobKind::Data, &random);
        let stored = encode_blob(&keys, &c, BlobKind::Data, &id, &random).unwrap();
        assert_eq!(stored.len(), random.len() + 1 + SEAL_OVERHEAD);
        let back = decode_blob(&keys, BlobKind::Data, &id, &stored, random.len() as u32).unwrap();
        assert_eq!(back, random);
    }

    #[test]
    fn blobs_cannot_be_relabelled_or_altered() {
        let keys = keys();
        let c = Compression::default();
        let data = b"some content".to_vec();
        let id = keys.blob_id(BlobKind::Data, &data);
        let stored = encode_blob(&keys, &c, BlobKind::Data, &id, &data).unwrap();
        // Same bytes presented as a tree blob: the AAD differs.
        assert!(decode_blob(&keys, BlobKind::Tree, &id, &stored, 12).is_err());
        // Presented under another id.
        let other = keys.blob_id(BlobKind::Data, b"other");
        assert!(decode_blob(&keys, BlobKind::Data, &other, &stored, 12).is_err());
        // One flipped bit.
        let mut bad = stored.clone();
        bad[30] ^= 1;
        assert!(decode_blob(&keys, BlobKind::Data, &id, &bad, 12).is_err());
        // Truncated.
        assert!(decode_blob(&keys, BlobKind::Data, &id, &stored[..10], 12).is_err());
        // Wrong key.
        let other_keys = Keys::derive(&MasterKey::from_bytes([4u8; 32]));
        assert!(decode_blob(&other_keys, BlobKind::Data, &id, &stored, 12).is_err());
        // Lying length.
        assert!(decode_blob(&keys, BlobKind::Data, &id, &stored, 11).is_err());
    }

    #[test]
    fn zstd_bombs_are_bounded_by_the_recorded_length() {
        let keys = keys();
        let c = Compression::default();
        let zeros = vec![0u8; 10 << 20];
        let id = keys.blob_id(BlobKind::Data, &zeros);
        let stored = encode_blob(&keys, &c, BlobKind::Data, &id, &zeros).unwrap();
        assert!(stored.len() < 10_000);
        // A reader told the blob is small must not inflate 10 MiB.
        let err = decode_blob(&keys, BlobKind::Data, &id, &stored, 1000).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(decode_blob(&keys, BlobKind::Data, &id, &stored, MAX_BLOB_LEN + 1).is_err());
    }

    #[test]
    fn bad_zstd_frames_inside_authentic_blobs_are_errors() {
        // Someone holding the key writes a blob whose payload claims to be
        // zstd but is garbage, or a valid frame of the wrong length.
        let keys = keys();
        let id = [5u8; 32];
        let seal = |payload: &[u8]| {
            let mut buf = vec![0u8; NONCE_LEN];
            buf.push(ENCODING_ZSTD);
            buf.extend_from_slice(payload);
            keys.seal_in_place(&blob_aad(BlobKind::Data, &id), &mut buf)
                .unwrap();
            buf
        };
        for payload in [
            &b""[..],
            b"not a zstd frame at all",
            &[0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff],
        ] {
            let err = decode_blob(&keys, BlobKind::Data, &id, &seal(payload), 100).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        }
        let frame = zstd::bulk::compress(&[7u8; 5000], 3).unwrap();
        let err = decode_blob(&keys, BlobKind::Data, &id, &seal(&frame), 4000).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        let err = decode_blob(&keys, BlobKind::Data, &id, &seal(&frame), 6000).unwrap_err();
        assert!(err.to_string().contains("5000 bytes"), "{err}");
    }

    #[test]
    fn sealed_objects_check_kind_and_integrity() {
        let keys = keys();
        let sealed = seal_object(&keys, Sealed::Snapshot, b"{}").unwrap();
        assert_eq!(
            open_object(&keys, Sealed::Snapshot, &sealed, "s").unwrap(),
            b"{}"
        );
        assert!(open_object(&keys, Sealed::Index, &sealed, "s").is_err());
        let mut relabelled = sealed.clone();
        relabelled[6] = Sealed::Index as u8;
        assert!(open_object(&keys, Sealed::Index, &relabelled, "s").is_err());
        assert!(open_object(&keys, Sealed::Snapshot, &sealed[..20], "s").is_err());
        assert!(open_object(&keys, Sealed::Snapshot, &[], "s").is_err());
        let mut newer = sealed.clone();
        newer[5] = 9;
        assert!(matches!(
            open_object(&keys, Sealed::Snapshot, &newer, "s"),
            Err(Error::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn derived_keys_differ_per_purpose() {
        let keys = keys();
        assert_ne!(
            keys.blob_id(BlobKind::Data, b"x"),
            keys.blob_id(BlobKind::Tree, b"x")
        );
        assert_eq!(
            *keys.chunk_id(b"x").as_bytes(),
            keys.blob_id(BlobKind::Data, b"x")
        );
        assert_ne!(keys.gear_seed(), &[0u8; 32]);
        assert_eq!(format!("{keys:?}"), "Keys(..)");
    }
}
