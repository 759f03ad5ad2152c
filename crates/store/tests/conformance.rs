//! The storage conformance suite on the in-memory and local stores (S3
//! runs it in the end-to-end tests, against real servers).

#![allow(clippy::unwrap_used)]

use cairn_store::Store;
use cairn_testkit::conformance::{Capabilities, run};
use std::sync::Arc;

const FULL: Capabilities = Capabilities {
    many_objects: 1100,
    one_byte_range_at_zero: true,
    create_if_absent: true,
};

#[test]
fn memory_store_conforms() {
    let raw = Arc::new(object_store::memory::InMemory::new());
    let store = Store::from_object_store(raw.clone(), "memory:".into()).unwrap();
    run(&store, raw.as_ref(), "memory", FULL);
}

#[test]
fn local_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(dir.path(), true).unwrap();
    let raw = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    run(&store, &raw, "local", FULL);
}
