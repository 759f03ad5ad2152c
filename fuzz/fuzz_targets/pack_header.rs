//! Pack trailers and header plaintexts from arbitrary bytes: errors, never
//! panics, never allocations beyond the input's size.
#![no_main]

use cairn_format::pack;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() >= 8 {
        let (len_bytes, rest) = data.split_at(8);
        let data_len = u64::from_le_bytes(len_bytes.try_into().unwrap_or([0; 8])) % (1 << 32);
        if let Ok(entries) = pack::decode_header_plaintext(rest, data_len, "fuzz") {
            // Accepted headers tile the data region exactly.
            let total: u64 = entries.iter().map(|e| u64::from(e.length)).sum();
            assert_eq!(total, data_len);
        }
    }
    if data.len() >= pack::TRAILER_LEN {
        let trailer = &data[data.len() - pack::TRAILER_LEN..];
        if let Ok(header_len) = pack::parse_trailer(trailer, data.len() as u64, "fuzz") {
            assert!(u64::from(header_len) + pack::TRAILER_LEN as u64 <= data.len() as u64);
        }
    }
});
