//! Copying objects, each verified before and after the upload.

use crate::{Count, SyncError, SyncOptions};
use bytes::Bytes;
use cairn_repository::store::Listed;
use cairn_repository::upload::{ATTEMPTS, check_upload, multipart_etag, single_etag};
use cairn_repository::{ObjectKind, Progress, Store};
use futures::StreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::sync::Arc;

#[derive(Debug, Default)]
pub(crate) struct Copied {
    pub count: Count,
    pub resent: u64,
}

/// The name used for a kind in reports.
pub(crate) fn label(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Config => "config",
        other => other.dir(),
    }
}

fn storage(path: &StorePath, e: object_store::Error) -> SyncError {
    SyncError::Repository(cairn_repository::Error::storage(path.to_string(), e))
}

/// Run CPU work (hashing) on the blocking pool, so that the transfers
/// polled together by one task hash on every core instead of in turn.
pub(crate) async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SyncError::Internal(format!("a hashing task failed: {e}")))
}

/// Upload whole or in parts; the ETag the server answered with.
async fn upload(
    dst: &Arc<dyn ObjectStore>,
    path: &StorePath,
    bytes: &Bytes,
    part_size: Option<usize>,
) -> Result<Option<String>, object_store::Error> {
    match part_size {
        Some(part_size) => {
            let upload = dst.put_multipart(path).await?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
            writer.put(bytes.clone());
            Ok(writer.finish().await?.e_tag)
        }
        None => Ok(dst.put(path, PutPayload::from(bytes.clone())).await?.e_tag),
    }
}

/// Where objects are read from.
#[derive(Clone)]
enum Source {
    Local(Arc<std::path::Path>),
    Store(Arc<dyn ObjectStore>),
}

async fn copy_one(
    src: &Source,
    dst: &Arc<dyn ObjectStore>,
    kind: ObjectKind,
    obj: &Listed,
    opts: &SyncOptions,
) -> Result<(u64, u64), SyncError> {
    let path = object_store::path::Path::from(kind.path(&obj.name));
    let bytes = match src {
        // A local source is read straight into an exact-size buffer
        // (object_store zero-fills one first, a fifth of a sync's CPU).
        Source::Local(root) => {
            let file = root.join(path.as_ref());
            match off_thread(move || std::fs::read(file)).await? {
                Ok(v) => Bytes::from(v),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(SyncError::SourceChanged(path.to_string()));
                }
                Err(e) => {
                    return Err(cairn_repository::Error::io(path.to_string(), e).into());
                }
            }
        }
        Source::Store(src) => match src.get(&path).await {
            Ok(got) => got.bytes().await.map_err(|e| storage(&path, e))?,
            // Listed, then gone: a prune or forget ran on the source meanwhile.
            Err(object_store::Error::NotFound { .. }) => {
                return Err(SyncError::SourceChanged(path.to_string()));
            }
            Err(e) => return Err(storage(&path, e)),
        },
    };
    let part_size = (bytes.len() as u64 > opts.multipart_threshold).then_some(opts.part_size);
    let (name, b) = (obj.name.clone(), bytes.clone());
    let (matches, expected) = off_thread(move || {
        let expected = match part_size {
            Some(part_size) => multipart_etag(&b, part_size),
            None => single_etag(&b),
        };
        (kind.content_matches(&name, &b), expected)
    })
    .await?;
    if matches == Some(false) {
        return Err(SyncError::Verification {
            path: path.to_string(),
            reason: "the source object does not hash to its name (a damaged source: run `cairn check --read-data`); it was not copied".into(),
        });
    }
    let mut resent = 0;
    loop {
        let outcome = match upload(dst, &path, &bytes, part_size).await {
            Ok(etag) => check_upload(dst, &path, &bytes, etag, &expected).await,
            Err(e) => return Err(storage(&path, e)),
        };
        match outcome {
            Ok(()) => return Ok((bytes.len() as u64, resent)),
            Err(reason) if resent + 1 < u64::from(ATTEMPTS) => {
                tracing::warn!("{path}: {reason}; sending it again");
                resent += 1;
                let _ = dst.delete(&path).await;
            }
            Err(reason) => {
                let _ = dst.delete(&path).await;
                return Err(SyncError::Verification {
                    path: path.to_string(),
                    reason: format!("{reason} ({ATTEMPTS} attempts); the object was removed again"),
                });
            }
        }
    }
}

/// A spawned transfer that is cancelled when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<Result<T, SyncError>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, SyncError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|joined| {
            joined
                .map_err(|e| SyncError::Internal(format!("a transfer task failed: {e}")))
                .and_then(|r| r)
        })
    }
}

/// Copy objects of one kind, several at a time, counting into `copied`
/// (also what arrived before a failure).
pub(crate) fn copy_all(
    src: &Store,
    dest: &Store,
    kind: ObjectKind,
    objects: &[Listed],
    opts: &SyncOptions,
    progress: &dyn Progress,
    copied: &mut Copied,
) -> Result<(), SyncError> {
    if objects.is_empty() {
        return Ok(());
    }
    // Packs are large: fewer at once bounds memory; small objects go wider.
    let concurrency = if kind == ObjectKind::Pack {
        opts.concurrency.max(1)
    } else {
        (opts.concurrency * 4).max(1)
    };
    let src_os = match src.local_root() {
        Some(root) => Source::Local(Arc::from(root)),
        None => Source::Store(src.object_store().clone()),
    };
    let dst_os = dest.object_store().clone();
    dest.block_on(async {
        // Each transfer is a task of its own, so that request signing and
        // the client's work run on every worker thread.
        let mut transfers = futures::stream::iter(objects.iter())
            .take_while(|_| futures::future::ready(!opts.cancelled()))
            .map(|o| {
                let (src_os, dst_os, o, opts) =
                    (src_os.clone(), dst_os.clone(), o.clone(), opts.clone());
                let task =
                    tokio::spawn(async move { copy_one(&src_os, &dst_os, kind, &o, &opts).await });
                AbortOnDrop(task)
            })
            .buffer_unordered(concurrency);
        // The first failure drops (aborts) the transfers in flight: a
        // cancelled PUT stores nothing, a cancelled multipart upload is
        // never completed.
        while let Some(done) = transfers.next().await {
            let (bytes, resent) = done?;
            progress.bytes(bytes);
            copied.count.objects += 1;
            copied.count.bytes += bytes;
            copied.resent += resent;
        }
        if opts.cancelled() {
            return Err(SyncError::Interrupted);
        }
        Ok(())
    })
}
