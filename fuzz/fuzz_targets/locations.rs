//! Repository locations and the AWS profile files they read credentials
//! from (files someone else may have written): errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok((bucket, prefix)) = cairn_store::s3::parse_url(&text) {
        assert!(bucket.len() >= 3 && !prefix.starts_with('/'));
    }
    let sections = cairn_store::s3::parse_ini(&text);
    for keys in sections.values() {
        for key in keys.keys() {
            assert_eq!(key, &key.to_lowercase());
        }
    }
});
