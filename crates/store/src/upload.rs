//! Confirmed uploads to object stores reached over a network: a `PUT`
//! answered "200 OK" is not trusted until a `HEAD` reports the exact size
//! and, where the ETag is an MD5 digest, the digest of the bytes sent; a
//! server whose ETags are something else gets the object read back. A bad
//! upload is sent again, and after [`ATTEMPTS`] removed and reported.
//!
//! Backups, log pushes and prune write through this (via
//! [`crate::Store::put`] on remote stores), and `cairn sync` through
//! [`crate::Store::put_confirmed_async`] for what it copies, so a truncated
//! upload is caught when it happens instead of by a later `check`.
//!
//! A whole-object upload is first sent **create-only** (`If-None-Match:
//! *`): every object cairn writes after `init` is named by its contents or
//! at random, so one that exists already holds what we would write, and it
//! is confirmed like a fresh upload instead of being overwritten. Only when
//! what is stored differs (damage, a truncated earlier upload) is it sent
//! again as an overwrite. So a host whose credentials may create objects
//! but not overwrite them (docs/FORMAT.md, "Hosts without delete rights")
//! writes everything a backup needs, and a failed overwrite is an error
//! that names the object.

use bytes::Bytes;
use md5::{Digest, Md5};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use std::sync::Arc;

/// Attempts per object before a failed confirmation is an error.
pub const ATTEMPTS: u32 = 3;

/// The ETag S3 gives a multipart upload: the MD5 of the parts' MD5s, a dash
/// and the number of parts.
pub(crate) fn multipart_etag(bytes: &[u8], part_size: usize) -> String {
    let mut all = Vec::new();
    let mut parts = 0;
    for part in bytes.chunks(part_size.max(1)) {
        all.extend_from_slice(&Md5::digest(part));
        parts += 1;
    }
    format!("{}-{parts}", hex::encode(Md5::digest(&all)))
}

/// The ETag of a single `PUT` of these bytes: their MD5.
pub(crate) fn single_etag(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Whether an ETag is an MD5 digest (single or multipart) we can compare.
#[cfg(test)]
pub(crate) fn is_md5_etag(etag: &str) -> bool {
    let digest = etag.split_once('-').map_or(etag, |(d, n)| {
        if n.bytes().all(|b| b.is_ascii_digit()) {
            d
        } else {
            ""
        }
    });
    digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Read back what the server says it stored: the size, then the ETag, which
/// must be `expected` (see [`single_etag`] and [`multipart_etag`]) or, for a
/// multipart upload, the plain MD5 some servers give; with any other ETag
/// the object itself is read back and compared.
pub(crate) async fn check_upload(
    store: &Arc<dyn ObjectStore>,
    path: &StorePath,
    bytes: &Bytes,
    put_etag: Option<String>,
    expected: &str,
) -> Result<(), String> {
    let meta = store
        .head(path)
        .await
        .map_err(|e| format!("reading back: {e}"))?;
    if meta.size != bytes.len() as u64 {
        return Err(format!(
            "the store holds {} bytes of the {} sent",
            meta.size,
            bytes.len()
        ));
    }
    let etag = meta
        .e_tag
        .or(put_etag)
        .map(|e| e.trim_matches('"').to_ascii_lowercase());
    match etag {
        Some(e) if e == expected => Ok(()),
        // Some servers (s3rver) give a multipart upload the plain MD5 of
        // the whole object.
        Some(e) if expected.contains('-') && !e.contains('-') && e == single_etag(bytes) => Ok(()),
        // Any other ETag proves nothing either way: read the object back.
        _ => {
            let back = store
                .get(path)
                .await
                .map_err(|e| format!("reading back: {e}"))?
                .bytes()
                .await
                .map_err(|e| format!("reading back: {e}"))?;
            if back == *bytes {
                Ok(())
            } else {
                Err("the bytes read back differ from those sent".to_string())
            }
        }
    }
}

/// What went wrong with a confirmed put.
#[derive(Debug)]
pub(crate) enum PutError {
    /// The store refused or failed the request.
    Store(object_store::Error),
    /// Every attempt was stored wrongly; the last reason.
    Unconfirmed(String),
    /// What is stored differs from what was sent (the reason), and the
    /// store refused to overwrite it (create-only credentials).
    OverwriteRefused(String, object_store::Error),
}

/// Upload whole or, with `part_size`, in parts; the ETag the server
/// answered with. With `create`, a whole upload is create-only.
async fn upload(
    store: &Arc<dyn ObjectStore>,
    path: &StorePath,
    bytes: &Bytes,
    part_size: Option<usize>,
    create: bool,
) -> Result<Option<String>, object_store::Error> {
    match part_size {
        Some(part_size) => {
            let upload = store.put_multipart(path).await?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
            writer.put(bytes.clone());
            Ok(writer.finish().await?.e_tag)
        }
        None => {
            let opts = PutOptions {
                mode: if create {
                    PutMode::Create
                } else {
                    PutMode::Overwrite
                },
                ..PutOptions::default()
            };
            Ok(store
                .put_opts(path, PutPayload::from(bytes.clone()), opts)
                .await?
                .e_tag)
        }
    }
}

/// Whether a failed create-only upload may simply be sent again: object_store
/// retries server errors itself, but not a timeout or a dropped connection of
/// a request it cannot know to be idempotent. Ours is (a create of a name
/// that stands for its contents), so those are sent again here.
fn retry_create(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::Generic { .. })
}

/// Upload the bytes (whole, or in parts of `part_size`) and confirm them
/// against `expected` ([`single_etag`] or [`multipart_etag`]), sending them
/// again (up to [`ATTEMPTS`] in all) when the store holds something else.
/// A whole upload is create-only first (see the module documentation): an
/// object already there is confirmed, and overwritten only when it differs.
/// A bad last attempt is deleted, so nothing wrong stays under the name.
/// Returns how many times the bytes were sent again.
pub(crate) async fn put_confirmed(
    store: &Arc<dyn ObjectStore>,
    path: &StorePath,
    bytes: Bytes,
    part_size: Option<usize>,
    expected: &str,
) -> Result<u32, PutError> {
    let mut attempt = 1;
    let mut create = part_size.is_none();
    let mut mismatch: Option<String> = None;
    loop {
        let etag = match upload(store, path, &bytes, part_size, create).await {
            Ok(etag) => etag,
            // Stored before (by us a moment ago, by another host, or by an
            // earlier run): confirm what is there.
            Err(object_store::Error::AlreadyExists { .. }) if create => None,
            Err(e) if create && attempt < ATTEMPTS && retry_create(&e) => {
                tracing::warn!("{path}: {e}; sending it again");
                attempt += 1;
                continue;
            }
            Err(e @ object_store::Error::PermissionDenied { .. }) if mismatch.is_some() => {
                return Err(PutError::OverwriteRefused(mismatch.unwrap_or_default(), e));
            }
            Err(e) => return Err(PutError::Store(e)),
        };
        match check_upload(store, path, &bytes, etag, expected).await {
            Ok(()) => return Ok(attempt - 1),
            Err(reason) if attempt < ATTEMPTS => {
                tracing::warn!("{path}: {reason}; sending it again");
                attempt += 1;
                // What is stored is wrong: only an overwrite mends it.
                create = false;
                mismatch = Some(reason);
            }
            Err(reason) => {
                let removed = match store.delete(path).await {
                    Ok(()) => "the object was removed again",
                    Err(_) => "the object could not be removed again",
                };
                return Err(PutError::Unconfirmed(format!(
                    "{reason} ({ATTEMPTS} attempts); {removed}"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        let data = vec![7u8; 20];
        assert_eq!(
            multipart_etag(&data, 8),
            format!(
                "{}-3",
                hex::encode(Md5::digest(
                    [
                        Md5::digest(&data[..8]),
                        Md5::digest(&data[8..16]),
                        Md5::digest(&data[16..])
                    ]
                    .concat()
                ))
            )
        );
        assert_eq!(single_etag(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(is_md5_etag("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(is_md5_etag("d41d8cd98f00b204e9800998ecf8427e-12"));
        assert!(!is_md5_etag("1a2b-3c4d-10"));
        assert!(!is_md5_etag("d41d8cd98f00b204e9800998ecf8427e-x"));
    }
}
