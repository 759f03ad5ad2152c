//! Index objects: for a set of packs, where each blob is. They are the
//! source of truth for "which blobs does the repository hold"; the
//! repository's local cache is derived from them. Layout in
//! `docs/FORMAT.md` ("Index objects").

use crate::crypto::{self, Keys, Sealed};
use crate::error::{Error, Result};
use crate::id::{BlobKind, ID_LEN, IndexId, PackId};
use crate::pack::PackEntry;
use crate::seal_to::Sealing;
use crate::wire::{Put, Reader};

/// Version byte at the start of the plaintext, when no pack is sealed to
/// a put-only recipient.
pub const INDEX_VERSION: u8 = 1;
/// The version whose pack records say how each pack's blobs are sealed.
pub const INDEX_VERSION_SEALED: u8 = 2;
/// Bytes per blob entry: kind, id, offset, length, raw length.
pub const INDEX_ENTRY_LEN: usize = 1 + ID_LEN + 12;
const PACK_RECORD_MIN: usize = ID_LEN + 8 + 4;

/// One pack's blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPack {
    /// The pack.
    pub id: PackId,
    /// Its size in bytes.
    pub size: u64,
    /// Its blobs.
    pub blobs: Vec<PackEntry>,
    /// The put-only session its blobs are sealed to (`None`: the master
    /// key).
    pub sealing: Option<Sealing>,
}

/// The decrypted content of an index object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexFile {
    /// Packs covered.
    pub packs: Vec<IndexedPack>,
}

impl IndexFile {
    /// Number of blobs listed.
    pub fn blob_count(&self) -> usize {
        self.packs.iter().map(|p| p.blobs.len()).sum()
    }

    /// Encode the plaintext.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            5 + self.packs.len() * PACK_RECORD_MIN + self.blob_count() * INDEX_ENTRY_LEN,
        );
        let sealed = self.packs.iter().any(|p| p.sealing.is_some());
        out.put_u8(if sealed {
            INDEX_VERSION_SEALED
        } else {
            INDEX_VERSION
        });
        out.put_u32(self.packs.len() as u32);
        for p in &self.packs {
            out.extend_from_slice(p.id.as_bytes());
            out.put_u64(p.size);
            if sealed {
                match &p.sealing {
                    Some(s) => {
                        out.put_u8(1);
                        out.extend_from_slice(&s.to_bytes());
                    }
                    None => out.put_u8(0),
                }
            }
            out.put_u32(p.blobs.len() as u32);
            for b in &p.blobs {
                out.put_u8(b.kind.to_byte());
                out.extend_from_slice(&b.id);
                out.put_u32(b.offset);
                out.put_u32(b.length);
                out.put_u32(b.raw_length);
            }
        }
        out
    }

    /// Decode (and bounds-check) a plaintext.
    pub fn decode(plain: &[u8], what: &str) -> Result<Self> {
        let mut r = Reader::new(plain, what);
        let version = r.u8()?;
        if version != INDEX_VERSION && version != INDEX_VERSION_SEALED {
            return Err(Error::UnsupportedVersion {
                what: what.to_string(),
                found: u32::from(version),
                supported: u32::from(INDEX_VERSION_SEALED),
            });
        }
        let pack_count = r.count(PACK_RECORD_MIN)?;
        let mut packs = Vec::with_capacity(pack_count);
        for _ in 0..pack_count {
            let id = PackId::from_bytes(r.array()?);
            let size = r.u64()?;
            let sealing = match version {
                INDEX_VERSION_SEALED => match r.u8()? {
                    0 => None,
                    1 => Some(Sealing::from_bytes(&r.array()?)),
                    other => return Err(r.error(format!("sealed flag {other}"))),
                },
                _ => None,
            };
            let blob_count = r.count(INDEX_ENTRY_LEN)?;
            let mut blobs = Vec::with_capacity(blob_count);
            for _ in 0..blob_count {
                let kind_byte = r.u8()?;
                let kind = BlobKind::from_byte(kind_byte)
                    .ok_or_else(|| r.error(format!("unknown blob kind {kind_byte}")))?;
                let id = r.array()?;
                let offset = r.u32()?;
                let length = r.u32()?;
                let raw_length = r.u32()?;
                if u64::from(offset) + u64::from(length) > size {
                    return Err(r.error(format!(
                        "blob at {offset}+{length} lies outside its {size}-byte pack"
                    )));
                }
                if raw_length > crypto::MAX_BLOB_LEN {
                    return Err(r.error(format!("raw length {raw_length} exceeds the limit")));
                }
                blobs.push(PackEntry {
                    kind,
                    id,
                    offset,
                    length,
                    raw_length,
                });
            }
            packs.push(IndexedPack {
                id,
                size,
                blobs,
                sealing,
            });
        }
        r.finish()?;
        if version == INDEX_VERSION_SEALED && packs.iter().all(|p| p.sealing.is_none()) {
            // One encoding per index: version 1 when nothing is sealed.
            return Err(Error::corrupt(what, "version 2 with no sealed pack"));
        }
        Ok(Self { packs })
    }

    /// Seal as an index object; returns its name and bytes.
    pub fn seal(&self, keys: &Keys) -> Result<(IndexId, Vec<u8>)> {
        let bytes = crypto::seal_object(keys, Sealed::Index, &self.encode())?;
        Ok((IndexId::of_bytes(&bytes), bytes))
    }

    /// Open a stored index object.
    pub fn open(keys: &Keys, id: &IndexId, bytes: &[u8]) -> Result<Self> {
        let what = format!("index {}", id.to_hex());
        if &IndexId::of_bytes(bytes) != id {
            return Err(Error::corrupt(&what, "contents do not hash to its name"));
        }
        let plain = crypto::open_object(keys, Sealed::Index, bytes, &what)?;
        Self::decode(&plain, &what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    fn sample() -> IndexFile {
        IndexFile {
            packs: vec![IndexedPack {
                id: PackId::of_bytes(b"p"),
                size: 1000,
                blobs: vec![
                    PackEntry {
                        kind: BlobKind::Data,
                        id: [1; 32],
                        offset: 0,
                        length: 100,
                        raw_length: 200,
                    },
                    PackEntry {
                        kind: BlobKind::Tree,
                        id: [2; 32],
                        offset: 100,
                        length: 50,
                        raw_length: 60,
                    },
                ],
                sealing: None,
            }],
        }
    }

    #[test]
    fn sealed_packs_need_version_2_and_round_trip() {
        let mut idx = sample();
        assert_eq!(idx.encode()[0], INDEX_VERSION);
        let mut second = idx.packs[0].clone();
        second.id = PackId::of_bytes(b"q");
        second.sealing = Some(Sealing {
            recipient: [7; 32],
            ephemeral: [8; 32],
        });
        idx.packs.push(second);
        let plain = idx.encode();
        assert_eq!(plain[0], INDEX_VERSION_SEALED);
        assert_eq!(IndexFile::decode(&plain, "i").unwrap(), idx);
        for len in 0..plain.len() {
            assert!(IndexFile::decode(&plain[..len], "i").is_err());
        }
        // Version 2 with nothing sealed is not the encoding of anything.
        let mut unsealed = sample().encode();
        unsealed[0] = INDEX_VERSION_SEALED;
        unsealed.splice(5 + 32 + 8..5 + 32 + 8, [0u8]);
        assert!(IndexFile::decode(&unsealed, "i").is_err());
    }

    #[test]
    fn round_trip() {
        let keys = Keys::derive(&MasterKey::generate().unwrap());
        let idx = sample();
        let (id, bytes) = idx.seal(&keys).unwrap();
        assert_eq!(IndexFile::open(&keys, &id, &bytes).unwrap(), idx);
        let mut bad = bytes.clone();
        bad[40] ^= 1;
        assert!(IndexFile::open(&keys, &id, &bad).is_err());
        assert!(IndexFile::open(&keys, &IndexId::of_bytes(&bad), &bad).is_err());
    }

    #[test]
    fn malformed_plaintexts() {
        let good = sample().encode();
        for cut in 0..good.len() {
            assert!(IndexFile::decode(&good[..cut], "i").is_err());
        }
        let mut outside = sample();
        outside.packs[0].blobs[1].offset = 990;
        assert!(IndexFile::decode(&outside.encode(), "i").is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(IndexFile::decode(&trailing, "i").is_err());
        let mut huge = vec![INDEX_VERSION];
        huge.put_u32(u32::MAX);
        assert!(IndexFile::decode(&huge, "i").is_err());
    }
}
