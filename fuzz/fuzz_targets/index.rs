//! Index plaintexts from arbitrary bytes: decode errors, never panics; what
//! decodes re-encodes to the same bytes and keeps blobs inside their packs.
#![no_main]

use cairn_format::index::IndexFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = IndexFile::decode(data, "fuzz") {
        assert_eq!(index.encode(), data);
        for p in &index.packs {
            for b in &p.blobs {
                assert!(u64::from(b.offset) + u64::from(b.length) <= p.size);
            }
        }
    }
});
