//! Tree plaintexts from arbitrary bytes: decode errors, never panics; what
//! decodes re-encodes to the same bytes.
#![no_main]

use cairn_format::tree::Tree;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = Tree::decode(data, "fuzz") {
        assert_eq!(tree.encode(), data);
        let _ = tree.duplicate_name();
        for node in &tree.nodes {
            let _ = cairn_format::tree::check_name(&node.name);
        }
    }
});
