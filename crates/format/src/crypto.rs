//! Blob encoding and sealed objects: what is sealed under which key, in
//! which envelope version. The byte layouts are specified in
//! `docs/FORMAT.md` ("Blobs", "Sealed objects"); this module implements
//! them on [`crate::cipher`] and [`crate::keys`], and re-exports the names
//! callers have always used from here.

use crate::error::{Error, Result};
use crate::id::{BlobKind, ID_LEN};
use std::cell::RefCell;

/// Largest blob plaintext accepted on decode (512 MiB): a bound on what a
/// corrupt or hostile header can make a reader allocate.
pub const MAX_BLOB_LEN: u32 = 512 << 20;

pub(crate) use crate::cipher::{
    ENVELOPE_HEADER_LEN, ENVELOPE_MAGIC, ENVELOPE_VERSION, envelope_header, open_into,
    seal_in_place,
};
pub use crate::cipher::{NONCE_LEN, SEAL_OVERHEAD, Sealed, TAG_LEN};
pub use crate::keys::{Keys, MasterKey};

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
    seal_in_place(keys.blob_cipher(), &blob_aad(kind, id), &mut buf)?;
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
        open_into(
            keys.blob_cipher(),
            &blob_aad(kind, id),
            stored,
            &what(),
            &mut self.sealed,
        )?;
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

/// Byte 7 of a version 1 envelope: which key sealed it.
pub(crate) const SEALED_BY_MASTER: u8 = 0;
/// Byte 7 of a version 1 lock: sealed under the lock key, which every key
/// file holds (put-only ones included).
pub(crate) const SEALED_BY_LOCK_KEY: u8 = 1;

/// Seal a plaintext as a `kind` object: `header || nonce || ct || tag`, the
/// header being the associated data. Locks are sealed under the lock key
/// where put-only keys exist (so that they read them), else under the
/// master key as before; a put-only session seals everything else to its
/// recipient (envelope version 2); a full key under the master key.
pub fn seal_object(keys: &Keys, kind: Sealed, plaintext: &[u8]) -> Result<Vec<u8>> {
    let (mut header, aead) = match (kind, keys.session()) {
        (Sealed::Lock, _) if keys.is_put_only() || keys.knows_recipients() => {
            let mut h = envelope_header(kind).to_vec();
            h[7] = SEALED_BY_LOCK_KEY;
            (h, keys.lock_cipher())
        }
        (_, Some(sealing)) => (
            crate::seal_to::envelope(kind, sealing).to_vec(),
            keys.blob_cipher(),
        ),
        (_, None) => (
            envelope_header(kind).to_vec(),
            keys.master_cipher(kind.noun())?,
        ),
    };
    let mut body = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
    body.extend_from_slice(&[0u8; NONCE_LEN]);
    body.extend_from_slice(plaintext);
    seal_in_place(aead, &header, &mut body)?;
    header.reserve_exact(body.len());
    header.extend_from_slice(&body);
    Ok(header)
}

/// Open a sealed `kind` object: under the master key, the lock key (locks
/// only) or the session key its version 2 envelope names.
pub fn open_object(keys: &Keys, kind: Sealed, bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    if bytes.len() < ENVELOPE_HEADER_LEN + SEAL_OVERHEAD {
        return Err(Error::corrupt(
            what,
            format!("{} bytes is too short for a sealed object", bytes.len()),
        ));
    }
    if &bytes[..5] != ENVELOPE_MAGIC {
        return Err(Error::corrupt(what, "not a cairn object (bad magic)"));
    }
    if bytes[5] == crate::seal_to::ENVELOPE_SEALED_TO {
        let Some(sealing) = crate::seal_to::sealing_of(bytes, kind, what)? else {
            return Err(Error::corrupt(what, "not sealed to a public key"));
        };
        let opener = keys.for_sealing(Some(&sealing), what)?;
        let (header, body) = bytes.split_at(crate::seal_to::SEALED_TO_HEADER_LEN);
        let mut out = Vec::new();
        open_into(opener.blob_cipher(), header, body, what, &mut out)?;
        return Ok(out);
    }
    let (header, body) = bytes.split_at(ENVELOPE_HEADER_LEN);
    if header[5] != ENVELOPE_VERSION {
        return Err(Error::UnsupportedVersion {
            what: what.to_string(),
            found: u32::from(header[5]),
            supported: u32::from(crate::seal_to::ENVELOPE_SEALED_TO),
        });
    }
    let aead = match header[7] {
        _ if header[6] != kind as u8 => None,
        SEALED_BY_MASTER => Some(keys.master_cipher(what)?),
        SEALED_BY_LOCK_KEY if kind == Sealed::Lock => Some(keys.lock_cipher()),
        _ => None,
    };
    let Some(aead) = aead else {
        return Err(Error::corrupt(
            what,
            format!(
                "envelope says kind {} (key {}), expected {}",
                header[6], header[7], kind as u8
            ),
        ));
    };
    let mut out = Vec::new();
    open_into(aead, header, body, what, &mut out)?;
    Ok(out)
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
            seal_in_place(keys.blob_cipher(), &blob_aad(BlobKind::Data, &id), &mut buf).unwrap();
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
