//! The storage contract ([`cairn_store`]) as an executable suite that every
//! backend runs: the in-memory and local stores in this crate's tests, S3
//! (against real S3-compatible servers) in the end-to-end tests.
//!
//! Each check panics with the backend's name and what failed; the suite is
//! for tests, and assertions are how tests report.

use bytes::Bytes;
use cairn_store::{ObjectKind, PutOutcome, Store};
use object_store::{ObjectStore, ObjectStoreExt};

/// What a backend supports beyond the contract's minimum.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    /// How many objects to list to exercise pagination (S3 pages at 1000).
    pub many_objects: usize,
    /// Whether a one-byte range at offset 0 (`Range: bytes=0-0`) comes
    /// back as one byte. s3rver 3.7 answers it with the whole object;
    /// cairn never asks for it (blobs are 41 bytes at least, headers are
    /// read from the end), so that server is still usable.
    pub one_byte_range_at_zero: bool,
    /// Whether a create-if-absent put (`If-None-Match: *`) refuses to
    /// overwrite. s3rver 3.7 ignores the header; on such a server two
    /// `init`s at once are not kept apart (README, "Repositories on S3").
    pub create_if_absent: bool,
}

fn name(i: usize) -> String {
    blake3::hash(&i.to_le_bytes()).to_hex().to_string()
}

/// Run the whole suite on `store`; `raw` is the object store it was built
/// over, through which the suite plants what a [`Store`] never writes
/// (strangers, many objects at once). `backend` names the store in
/// messages.
pub fn run(store: &Store, raw: &dyn ObjectStore, backend: &str, caps: Capabilities) {
    let fail = |what: &str| -> String { format!("{backend}: {what}") };

    // Whole-object writes and reads, overwrite of identical content.
    let n = name(1);
    let body = Bytes::from_static(b"hello, object store");
    store.put(ObjectKind::Index, &n, body.clone()).unwrap();
    assert_eq!(
        store.get(ObjectKind::Index, &n).unwrap(),
        body,
        "{}",
        fail("get")
    );
    store.put(ObjectKind::Index, &n, body.clone()).unwrap();
    assert_eq!(
        store.head(ObjectKind::Index, &n).unwrap(),
        Some(body.len() as u64),
        "{}",
        fail("head")
    );
    assert_eq!(
        store.head(ObjectKind::Index, &name(2)).unwrap(),
        None,
        "{}",
        fail("head of a missing object")
    );
    assert!(
        store
            .get(ObjectKind::Index, &name(2))
            .unwrap_err()
            .is_not_found(),
        "{}",
        fail("get of a missing object")
    );

    // Range reads, inside and past the end.
    assert_eq!(
        &store.get_range(ObjectKind::Index, &n, 7..13).unwrap()[..],
        b"object",
        "{}",
        fail("range")
    );
    assert_eq!(
        &store.get_range(ObjectKind::Index, &n, 0..5).unwrap()[..],
        b"hello",
        "{}",
        fail("first bytes")
    );
    if caps.one_byte_range_at_zero {
        assert_eq!(
            &store.get_range(ObjectKind::Index, &n, 0..1).unwrap()[..],
            b"h",
            "{}",
            fail("first byte")
        );
    }
    assert!(
        store.get_range(ObjectKind::Index, &n, 10..1000).is_err(),
        "{}",
        fail("range past the end")
    );

    // Create-if-absent, used for `config`.
    let cfg = store
        .put_new(ObjectKind::Config, "config", Bytes::from_static(b"first"))
        .unwrap();
    assert_eq!(
        cfg,
        PutOutcome::Created,
        "{}",
        fail("put_new on an empty name")
    );
    if caps.create_if_absent {
        let again = store
            .put_new(ObjectKind::Config, "config", Bytes::from_static(b"second"))
            .unwrap();
        assert_eq!(
            again,
            PutOutcome::AlreadyExisted,
            "{}",
            fail("put_new must not overwrite")
        );
        assert_eq!(
            &store.get(ObjectKind::Config, "config").unwrap()[..],
            b"first",
            "{}",
            fail("config kept")
        );
    }

    // Listing with more objects than one page holds; pack fan-out.
    let many = caps.many_objects;
    let names: Vec<String> = (100..100 + many).map(name).collect();
    store
        .block_on(async {
            use futures::StreamExt;
            futures::stream::iter(names.iter().map(|n| async move {
                raw.put(
                    &ObjectKind::Snapshot.path(n).into(),
                    Bytes::from(n.clone()).into(),
                )
                .await
            }))
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    let listed = store.list(ObjectKind::Snapshot).unwrap();
    assert_eq!(
        listed.objects.len(),
        many,
        "{}",
        fail("listing past a page")
    );
    let mut expected = names.clone();
    expected.sort();
    let got: Vec<String> = listed.objects.iter().map(|o| o.name.clone()).collect();
    assert_eq!(got, expected, "{}", fail("listing order and names"));
    assert!(
        listed.objects.iter().all(|o| o.size == 64),
        "{}",
        fail("listed sizes")
    );
    let pack = name(5);
    store
        .put(ObjectKind::Pack, &pack, Bytes::from_static(b"pack"))
        .unwrap();
    let packs = store.list(ObjectKind::Pack).unwrap();
    assert_eq!(packs.objects.len(), 1, "{}", fail("pack listing"));
    assert_eq!(packs.objects[0].name, pack, "{}", fail("pack fan-out"));

    // Log streams: listing one stream's directory.
    let tag_a = "a".repeat(32);
    let tag_b = "b".repeat(32);
    for (tag, seq) in [(&tag_a, 0u64), (&tag_a, 1), (&tag_b, 0)] {
        let obj = format!("{tag}/{seq:016x}-{}", name(seq as usize + 50));
        store
            .put(ObjectKind::Log, &obj, Bytes::from_static(b"m"))
            .unwrap();
    }
    assert_eq!(
        store
            .list_under(ObjectKind::Log, &tag_a)
            .unwrap()
            .objects
            .len(),
        2,
        "{}",
        fail("stream listing")
    );
    assert_eq!(
        store.list(ObjectKind::Log).unwrap().objects.len(),
        3,
        "{}",
        fail("all logs")
    );

    // Strangers are reported, never parsed as objects.
    store
        .block_on(raw.put(
            &object_store::path::Path::from("snapshots/not-an-id"),
            Bytes::from_static(b"junk").into(),
        ))
        .unwrap();
    let listed = store.list(ObjectKind::Snapshot).unwrap();
    assert_eq!(listed.objects.len(), many, "{}", fail("stranger ignored"));
    assert_eq!(
        listed.unrecognised,
        vec!["snapshots/not-an-id".to_string()],
        "{}",
        fail("stranger reported")
    );

    // Deletes, of present and missing objects.
    store.delete(ObjectKind::Index, &n).unwrap();
    store.delete(ObjectKind::Index, &n).unwrap();
    assert_eq!(
        store.head(ObjectKind::Index, &n).unwrap(),
        None,
        "{}",
        fail("deleted")
    );
    for n in &names {
        store.delete(ObjectKind::Snapshot, n).unwrap();
    }
    assert!(
        store.list(ObjectKind::Snapshot).unwrap().objects.is_empty(),
        "{}",
        fail("all deleted")
    );

    // Content addressing needs no key.
    let bytes = b"content";
    let id = blake3::hash(bytes).to_hex().to_string();
    assert_eq!(ObjectKind::Pack.content_matches(&id, bytes), Some(true));
    assert_eq!(ObjectKind::Pack.content_matches(&id, b"other"), Some(false));
    assert_eq!(ObjectKind::Config.content_matches("config", bytes), None);
}
