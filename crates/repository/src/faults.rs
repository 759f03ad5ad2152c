//! Fault injection as an [`ObjectStore`] wrapper (for tests): the store
//! "crashes" after a given number of writes, so every later operation
//! fails, exactly as if the process had died at that point. What the inner
//! store holds afterwards is what a real crash would have left.

use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Passes operations through until `writes` writes (puts and deletes) have
/// been made; the next write and every operation after it fail.
#[derive(Debug)]
pub struct CrashAfter {
    inner: Arc<dyn ObjectStore>,
    budget: AtomicI64,
    crashed: AtomicBool,
}

impl CrashAfter {
    /// Wrap `inner`, allowing `writes` writes.
    pub fn new(inner: Arc<dyn ObjectStore>, writes: i64) -> Self {
        Self {
            inner,
            budget: AtomicI64::new(writes),
            crashed: AtomicBool::new(false),
        }
    }

    fn crashed(&self) -> object_store::Error {
        object_store::Error::Generic {
            store: "CrashAfter",
            source: "simulated crash".into(),
        }
    }

    fn spend(&self) -> object_store::Result<()> {
        if self.budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            self.crashed.store(true, Ordering::SeqCst);
            Err(self.crashed())
        } else {
            Ok(())
        }
    }

    /// Reads work until the first refused write: a dead process reads nothing.
    fn alive(&self) -> object_store::Result<()> {
        if self.crashed.load(Ordering::SeqCst) {
            Err(self.crashed())
        } else {
            Ok(())
        }
    }
}

impl std::fmt::Display for CrashAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CrashAfter({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for CrashAfter {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.spend()?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.spend()?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.alive()?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        if let Err(e) = self.spend() {
            return Box::pin(futures::stream::once(async move { Err(e) }));
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if let Err(e) = self.alive() {
            return Box::pin(futures::stream::once(async move { Err(e) }));
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.alive()?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.spend()?;
        self.inner.copy_opts(from, to, options).await
    }
}
