//! Packs: many encrypted blobs followed by an encrypted header and a
//! fixed-size trailer. A pack's name is the BLAKE3 hash of its bytes.
//! Layout in `docs/FORMAT.md` ("Packs").

use crate::crypto::{self, Keys, SEAL_OVERHEAD, Sealed};
use crate::error::{Error, Result};
use crate::id::{BlobKind, ID_LEN, PackId};
use crate::wire::{Put, Reader};
use bytes::Bytes;

/// Magic at the very end of every pack.
pub const PACK_MAGIC: &[u8; 8] = b"CAIRNPK1";
/// Trailer: header length (u32 LE) then the magic.
pub const TRAILER_LEN: usize = 12;
/// One header entry: kind (1), id (32), stored length (4), raw length (4).
pub const HEADER_ENTRY_LEN: usize = 41;
/// Smallest possible stored blob: nonce, encoding byte, tag.
pub const MIN_STORED_BLOB: u32 = SEAL_OVERHEAD as u32 + 1;
/// A header longer than this is rejected (about 1.6 million blobs).
pub const MAX_HEADER_LEN: u32 = 64 << 20;

/// Blobs of one pack closer than this are read with one range request.
pub const READ_GAP: u64 = 256 << 10;
/// One range request covers at most this much of a pack.
pub const MAX_READ: u64 = 8 << 20;

/// Group blobs of one pack, sorted by offset, into runs that are each read
/// with one range request: the run's index range in `sorted` and the pack
/// bytes it covers. `span` gives a blob's offset and stored length.
pub fn read_runs<T>(
    sorted: &[T],
    span: impl Fn(&T) -> (u32, u32),
) -> Vec<(std::ops::Range<usize>, std::ops::Range<u64>)> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < sorted.len() {
        let (offset, length) = span(&sorted[start]);
        let first = u64::from(offset);
        let mut last = first + u64::from(length);
        let mut end = start + 1;
        while let Some(next) = sorted.get(end) {
            let (offset, length) = span(next);
            let next_end = u64::from(offset) + u64::from(length);
            if u64::from(offset) > last + READ_GAP || next_end - first > MAX_READ {
                break;
            }
            last = last.max(next_end);
            end += 1;
        }
        runs.push((start..end, first..last));
        start = end;
    }
    runs
}

/// Where one blob sits in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PackEntry {
    /// Blob kind.
    pub kind: BlobKind,
    /// Blob id.
    pub id: [u8; ID_LEN],
    /// Byte offset of the stored blob in the pack.
    pub offset: u32,
    /// Stored (encrypted) length.
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
}

/// Accumulates stored blobs into a pack.
#[derive(Debug)]
pub struct PackBuilder {
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

/// A complete pack, ready to upload.
#[derive(Debug, Clone)]
pub struct FinishedPack {
    /// The pack's name.
    pub id: PackId,
    /// Its bytes.
    pub bytes: Bytes,
    /// Its blobs.
    pub entries: Vec<PackEntry>,
}

impl PackBuilder {
    /// An empty pack with room for `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
            entries: Vec::new(),
        }
    }

    /// Append a stored blob.
    pub fn add(
        &mut self,
        kind: BlobKind,
        id: [u8; ID_LEN],
        stored: &[u8],
        raw_length: u32,
    ) -> Result<()> {
        let offset = u32::try_from(self.buf.len())
            .map_err(|_| Error::invalid("pack", "larger than 4 GiB"))?;
        let length =
            u32::try_from(stored.len()).map_err(|_| Error::invalid("blob", "larger than 4 GiB"))?;
        self.buf.extend_from_slice(stored);
        self.entries.push(PackEntry {
            kind,
            id,
            offset,
            length,
            raw_length,
        });
        Ok(())
    }

    /// Bytes of blob data so far.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Whether no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of blobs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Append header and trailer and name the pack.
    pub fn finish(self, keys: &Keys) -> Result<FinishedPack> {
        let PackBuilder { mut buf, entries } = self;
        let mut plain = Vec::with_capacity(4 + entries.len() * HEADER_ENTRY_LEN);
        plain.put_u32(entries.len() as u32);
        for e in &entries {
            plain.put_u8(e.kind.to_byte());
            plain.extend_from_slice(&e.id);
            plain.put_u32(e.length);
            plain.put_u32(e.raw_length);
        }
        let header = crypto::seal_object(keys, Sealed::PackHeader, &plain)?;
        buf.extend_from_slice(&header);
        buf.put_u32(header.len() as u32);
        buf.extend_from_slice(PACK_MAGIC);
        let id = PackId::of_bytes(&buf);
        Ok(FinishedPack {
            id,
            bytes: Bytes::from(buf),
            entries,
        })
    }
}

/// Parse the 12-byte trailer of a pack of `pack_len` bytes; returns the
/// sealed header's length.
pub fn parse_trailer(trailer: &[u8], pack_len: u64, what: &str) -> Result<u32> {
    if trailer.len() != TRAILER_LEN || pack_len < TRAILER_LEN as u64 {
        return Err(Error::corrupt(what, "too short to be a pack"));
    }
    if &trailer[4..] != PACK_MAGIC {
        return Err(Error::corrupt(
            what,
            "no pack trailer (truncated or not a pack)",
        ));
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&trailer[..4]);
    let header_len = u32::from_le_bytes(len);
    if header_len > MAX_HEADER_LEN || u64::from(header_len) + TRAILER_LEN as u64 > pack_len {
        return Err(Error::corrupt(
            what,
            format!("header length {header_len} does not fit a {pack_len}-byte pack"),
        ));
    }
    Ok(header_len)
}

/// Decrypt and check a pack header. The entries must tile the data region
/// `0..pack_len - TRAILER_LEN - header_len` exactly.
pub fn decode_header(
    keys: &Keys,
    sealed: &[u8],
    pack_len: u64,
    what: &str,
) -> Result<Vec<PackEntry>> {
    let plain = crypto::open_object(keys, Sealed::PackHeader, sealed, what)?;
    decode_header_plaintext(
        &plain,
        pack_len - TRAILER_LEN as u64 - sealed.len() as u64,
        what,
    )
}

/// Decode a decrypted header whose blobs must fill exactly `data_len` bytes.
pub fn decode_header_plaintext(plain: &[u8], data_len: u64, what: &str) -> Result<Vec<PackEntry>> {
    let mut r = Reader::new(plain, what);
    let count = r.count(HEADER_ENTRY_LEN)?;
    let mut entries = Vec::with_capacity(count);
    let mut offset = 0u64;
    for _ in 0..count {
        let kind_byte = r.u8()?;
        let kind = BlobKind::from_byte(kind_byte)
            .ok_or_else(|| r.error(format!("unknown blob kind {kind_byte}")))?;
        let id = r.array::<ID_LEN>()?;
        let length = r.u32()?;
        let raw_length = r.u32()?;
        if length < MIN_STORED_BLOB {
            return Err(r.error(format!("blob length {length} is below the minimum")));
        }
        if raw_length > crypto::MAX_BLOB_LEN {
            return Err(r.error(format!("blob raw length {raw_length} exceeds the limit")));
        }
        let off32 = u32::try_from(offset).map_err(|_| r.error("blob offset beyond 4 GiB"))?;
        entries.push(PackEntry {
            kind,
            id,
            offset: off32,
            length,
            raw_length,
        });
        offset += u64::from(length);
    }
    r.finish()?;
    if offset != data_len {
        return Err(Error::corrupt(
            what,
            format!("header describes {offset} bytes of blobs, pack holds {data_len}"),
        ));
    }
    Ok(entries)
}

/// Check a whole pack held in memory: its hash must be its name, and its
/// header must decode. Returns the entries.
pub fn verify_pack(keys: &Keys, id: &PackId, bytes: &[u8]) -> Result<Vec<PackEntry>> {
    let what = format!("pack {}", id.to_hex());
    if &PackId::of_bytes(bytes) != id {
        return Err(Error::corrupt(
            &what,
            "contents do not hash to the pack's name",
        ));
    }
    let len = bytes.len() as u64;
    if bytes.len() < TRAILER_LEN {
        return Err(Error::corrupt(&what, "too short to be a pack"));
    }
    let header_len = parse_trailer(&bytes[bytes.len() - TRAILER_LEN..], len, &what)? as usize;
    let end = bytes.len() - TRAILER_LEN;
    decode_header(keys, &bytes[end - header_len..end], len, &what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Compression, MasterKey, encode_blob};

    fn keys() -> Keys {
        Keys::derive(&MasterKey::generate().unwrap())
    }

    fn build(keys: &Keys, n: usize) -> (FinishedPack, Vec<Vec<u8>>) {
        let mut b = PackBuilder::new(1024);
        let mut plains = Vec::new();
        for i in 0..n {
            let plain = format!("blob number {i} ").repeat(i + 1).into_bytes();
            let id = keys.blob_id(BlobKind::Data, &plain);
            let stored =
                encode_blob(keys, &Compression::default(), BlobKind::Data, &id, &plain).unwrap();
            b.add(BlobKind::Data, id, &stored, plain.len() as u32)
                .unwrap();
            plains.push(plain);
        }
        (b.finish(keys).unwrap(), plains)
    }

    #[test]
    fn build_and_read_back() {
        let keys = keys();
        let (pack, plains) = build(&keys, 20);
        let entries = verify_pack(&keys, &pack.id, &pack.bytes).unwrap();
        assert_eq!(entries, pack.entries);
        for (e, plain) in entries.iter().zip(&plains) {
            let stored = &pack.bytes[e.offset as usize..(e.offset + e.length) as usize];
            let back = crypto::decode_blob(&keys, e.kind, &e.id, stored, e.raw_length).unwrap();
            assert_eq!(&back, plain);
        }
    }

    #[test]
    fn damaged_packs_are_errors_not_panics() {
        let keys = keys();
        let (pack, _) = build(&keys, 5);
        let bytes = pack.bytes.to_vec();
        // Truncations at every length.
        for cut in 0..bytes.len() {
            assert!(verify_pack(&keys, &PackId::of_bytes(&bytes[..cut]), &bytes[..cut]).is_err());
        }
        // A lying trailer.
        let mut lying = bytes.clone();
        let n = lying.len();
        lying[n - 12..n - 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(verify_pack(&keys, &PackId::of_bytes(&lying), &lying).is_err());
        // Hash mismatch.
        assert!(verify_pack(&keys, &PackId::of_bytes(b"x"), &bytes).is_err());
        // Header plaintexts that do not tile the data region.
        let mut plain = Vec::new();
        plain.put_u32(1);
        plain.put_u8(0);
        plain.extend_from_slice(&[0u8; 32]);
        plain.put_u32(100);
        plain.put_u32(10);
        assert!(decode_header_plaintext(&plain, 99, "p").is_err());
        assert!(decode_header_plaintext(&plain, 100, "p").is_ok());
        let mut huge = Vec::new();
        huge.put_u32(u32::MAX);
        assert!(decode_header_plaintext(&huge, 0, "p").is_err());
    }
}
