//! Reading the binary objects of [`cairn_format`] from a [`Store`]: pack
//! headers by range reads, index objects in parallel. The codecs are the
//! format crate's; this module adds only the I/O and the one re-read a
//! network's bad read deserves.

use crate::error::{Error, Result};
use crate::id::{IndexId, PackId};
use crate::layout::ObjectKind;
use crate::store::Store;
use cairn_format::crypto::{Keys, Sealed};
use cairn_format::index::IndexFile;
use cairn_format::pack::{PackEntry, TRAILER_LEN, decode_header, parse_trailer};
use cairn_format::seal_to::{Sealing, sealing_of};

/// Read and decode a stored pack's header with range reads (one read of the
/// tail, a second only when the header is larger than the first guess). A
/// header that reads back corrupt is read once more before the error
/// stands (one bad read on a network is not damage).
pub fn read_pack_header(
    store: &Store,
    keys: &Keys,
    id: &PackId,
    pack_len: u64,
) -> Result<Vec<PackEntry>> {
    Ok(read_pack_header_sealed(store, keys, id, pack_len)?.0)
}

/// [`read_pack_header`], and the put-only session the pack is sealed to
/// (`None`: the master key), from its header's envelope.
pub fn read_pack_header_sealed(
    store: &Store,
    keys: &Keys,
    id: &PackId,
    pack_len: u64,
) -> Result<(Vec<PackEntry>, Option<Sealing>)> {
    match read_pack_header_once(store, keys, id, pack_len) {
        Err(e) if e.is_corrupt() => {
            tracing::warn!("pack {}: {e}; reading its header again", id.short());
            read_pack_header_once(store, keys, id, pack_len)
        }
        other => other,
    }
}

fn read_pack_header_once(
    store: &Store,
    keys: &Keys,
    id: &PackId,
    pack_len: u64,
) -> Result<(Vec<PackEntry>, Option<Sealing>)> {
    let what = format!("pack {id}");
    if pack_len < TRAILER_LEN as u64 {
        return Err(Error::corrupt(
            &what,
            format!("{pack_len} bytes is too short"),
        ));
    }
    let guess = pack_len.min(64 << 10);
    let tail = store.get_object_range(id, pack_len - guess..pack_len)?;
    let header_len = parse_trailer(&tail[tail.len() - TRAILER_LEN..], pack_len, &what)?;
    let needed = u64::from(header_len) + TRAILER_LEN as u64;
    let tail = if needed <= guess {
        tail
    } else {
        store.get_object_range(id, pack_len - needed..pack_len)?
    };
    let start = tail.len() - needed as usize;
    let sealed = &tail[start..tail.len() - TRAILER_LEN];
    let entries = decode_header(keys, sealed, pack_len, &what)?;
    let sealing = sealing_of(sealed, Sealed::PackHeader, &what)?;
    Ok((entries, sealing))
}

/// Read and open several index objects (a bad read is read again, see
/// [`Store::get_many_checked`]); results in input order.
pub fn fetch_indexes(store: &Store, keys: &Keys, ids: &[IndexId]) -> Vec<Result<IndexFile>> {
    let names: Vec<String> = ids.iter().map(IndexId::to_hex).collect();
    store.get_many_checked(ObjectKind::Index, &names, 16, |name, bytes| {
        let id = IndexId::from_hex(name)
            .map_err(|e| Error::corrupt(format!("index {name}"), e.to_string()))?;
        Ok(IndexFile::open(keys, &id, &bytes)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_format::crypto::{Compression, MasterKey, encode_blob};
    use cairn_format::id::BlobKind;
    use cairn_format::pack::PackBuilder;

    #[test]
    fn pack_header_by_range_reads() {
        let keys = Keys::derive(&MasterKey::generate().unwrap());
        let mut b = PackBuilder::new(1024);
        for i in 0..20 {
            let plain = format!("blob number {i} ").repeat(i + 1).into_bytes();
            let id = keys.blob_id(BlobKind::Data, &plain);
            let stored =
                encode_blob(&keys, &Compression::default(), BlobKind::Data, &id, &plain).unwrap();
            b.add(BlobKind::Data, id, &stored, plain.len() as u32)
                .unwrap();
        }
        let pack = b.finish(&keys).unwrap();
        let store = Store::memory().unwrap();
        store.put_object(&pack.id, pack.bytes.clone()).unwrap();
        let via_store = read_pack_header(&store, &keys, &pack.id, pack.bytes.len() as u64).unwrap();
        assert_eq!(via_store, pack.entries);
    }
}
