//! Copying objects, each verified before and after the upload.

use crate::{Count, SyncError, SyncOptions};
use cairn_repository::store::{Listed, Store};
use cairn_repository::{ObjectKind, Progress};
use futures::StreamExt;

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

/// Run CPU work (hashing) on the blocking pool, so that the transfers
/// polled together by one task hash on every core instead of in turn.
pub(crate) async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SyncError::Internal(format!("a hashing task failed: {e}")))
}

async fn copy_one(
    src: &Store,
    dst: &Store,
    kind: ObjectKind,
    obj: &Listed,
    opts: &SyncOptions,
) -> Result<(u64, u64), SyncError> {
    let path = kind.path(&obj.name);
    let bytes = match src.read_async(kind, &obj.name).await {
        Ok(bytes) => bytes,
        // Listed, then gone: a prune or forget ran on the source meanwhile.
        Err(e) if e.is_not_found() => return Err(SyncError::SourceChanged(path)),
        Err(e) => return Err(e.into()),
    };
    let (name, b) = (obj.name.clone(), bytes.clone());
    if off_thread(move || kind.content_matches(&name, &b)).await? == Some(false) {
        return Err(SyncError::Verification {
            path,
            reason: "the source object does not hash to its name (a damaged source: run `cairn check --read-data`); it was not copied".into(),
        });
    }
    let part_size = (bytes.len() as u64 > opts.multipart_threshold).then_some(opts.part_size);
    let len = bytes.len() as u64;
    match dst
        .put_confirmed_async(kind, &obj.name, bytes, part_size)
        .await
    {
        Ok(resent) => Ok((len, u64::from(resent))),
        Err(cairn_repository::store::Error::Corrupt { reason, .. }) => {
            Err(SyncError::Verification { path, reason })
        }
        Err(e) => Err(e.into()),
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
    dest.block_on(async {
        // Each transfer is a task of its own, so that request signing and
        // the client's work run on every worker thread.
        let mut transfers = futures::stream::iter(objects.iter())
            .take_while(|_| futures::future::ready(!opts.cancelled()))
            .map(|o| {
                let (src, dest, o, opts) = (src.clone(), dest.clone(), o.clone(), opts.clone());
                let task =
                    tokio::spawn(async move { copy_one(&src, &dest, kind, &o, &opts).await });
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
