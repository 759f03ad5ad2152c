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

/// What [`Flaky`] does wrong.
#[derive(Debug, Default)]
pub struct FlakyPlan {
    /// Flip a byte in the body of the Nth `GET` (counted from 1) of a path
    /// containing the string: a bad read, the stored object is fine.
    pub corrupt_get: Option<(String, u32)>,
    /// Store only the first half of the Nth `PUT` (from 1) of a path
    /// containing the string, and answer as if all of it arrived.
    pub truncate_put: Option<(String, u32)>,
    /// Leave these paths (`index/<id>`) out of listings, for the first
    /// `hide_lists` listings that could show them (`u32::MAX`: always).
    pub hide: Vec<String>,
    /// How many listings hide.
    pub hide_lists: u32,
}

/// An [`ObjectStore`] wrapper that reads wrongly, writes wrongly or lists
/// wrongly by a plan: a faulty network or server, for the tests.
#[derive(Debug)]
pub struct Flaky {
    inner: Arc<dyn ObjectStore>,
    plan: FlakyPlan,
    gets: AtomicI64,
    puts: AtomicI64,
    lists: AtomicI64,
    /// Faults injected so far.
    pub faults: AtomicI64,
}

impl Flaky {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>, plan: FlakyPlan) -> Self {
        Self {
            inner,
            plan,
            gets: AtomicI64::new(0),
            puts: AtomicI64::new(0),
            lists: AtomicI64::new(0),
            faults: AtomicI64::new(0),
        }
    }

    fn nth(counter: &AtomicI64, rule: &Option<(String, u32)>, location: &Path) -> bool {
        match rule {
            Some((part, n)) if location.as_ref().contains(part.as_str()) => {
                counter.fetch_add(1, Ordering::SeqCst) + 1 == i64::from(*n)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Flaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Flaky({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Flaky {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if Self::nth(&self.puts, &self.plan.truncate_put, location) {
            self.faults.fetch_add(1, Ordering::SeqCst);
            let whole: Vec<u8> = payload.iter().flat_map(|b| b.iter().copied()).collect();
            let half = PutPayload::from(whole[..whole.len() / 2].to_vec());
            let mut result = self.inner.put_opts(location, half, opts).await?;
            // The server's answer says nothing of what was lost.
            result.e_tag = None;
            return Ok(result);
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        if head || !Self::nth(&self.gets, &self.plan.corrupt_get, location) {
            return Ok(result);
        }
        self.faults.fetch_add(1, Ordering::SeqCst);
        let meta = result.meta.clone();
        let range = result.range.clone();
        let attributes = result.attributes.clone();
        let extensions = result.extensions.clone();
        let mut bytes = result.bytes().await?.to_vec();
        let middle = bytes.len() / 2;
        if let Some(b) = bytes.get_mut(middle) {
            *b ^= 0x40;
        }
        let bytes = bytes::Bytes::from(bytes);
        Ok(GetResult {
            payload: object_store::GetResultPayload::Stream(Box::pin(futures::stream::once(
                async move { Ok(bytes) },
            ))),
            meta,
            range,
            attributes,
            extensions,
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        use futures::StreamExt;
        let could_show = self
            .plan
            .hide
            .iter()
            .any(|h| prefix.is_none_or(|p| h.starts_with(&format!("{}/", p.as_ref()))));
        if !could_show
            || self.lists.fetch_add(1, Ordering::SeqCst) >= i64::from(self.plan.hide_lists)
        {
            return self.inner.list(prefix);
        }
        let hide = self.plan.hide.clone();
        Box::pin(self.inner.list(prefix).filter(move |m| {
            let keep = match m {
                Ok(meta) => !hide.iter().any(|h| meta.location.as_ref() == h.as_str()),
                Err(_) => true,
            };
            futures::future::ready(keep)
        }))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// An [`ObjectStore`] wrapper with a backup host's credentials
/// (docs/FORMAT.md, "Hosts without delete rights"): deletes and puts that
/// are not create-only are refused with "permission denied" (S3's 403), as
/// a bucket policy that denies `s3:DeleteObject` and requires
/// `If-None-Match: *` refuses them. Multipart uploads are refused too.
#[derive(Debug)]
pub struct NoDelete {
    inner: Arc<dyn ObjectStore>,
    /// Requests refused so far.
    pub refused: AtomicI64,
}

impl NoDelete {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            refused: AtomicI64::new(0),
        }
    }

    fn refuse(&self, location: &str) -> object_store::Error {
        self.refused.fetch_add(1, Ordering::SeqCst);
        object_store::Error::PermissionDenied {
            path: location.to_string(),
            source: "refused: these credentials may only create objects".into(),
        }
    }
}

impl std::fmt::Display for NoDelete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoDelete({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for NoDelete {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if opts.mode != object_store::PutMode::Create {
            return Err(self.refuse(location.as_ref()));
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(self.refuse(location.as_ref()))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        use futures::StreamExt;
        self.refused.fetch_add(1, Ordering::SeqCst);
        Box::pin(locations.map(|l| {
            let path = l?;
            Err(object_store::Error::PermissionDenied {
                path: path.to_string(),
                source: "refused: these credentials may not delete".into(),
            })
        }))
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        _to: &Path,
        _options: CopyOptions,
    ) -> object_store::Result<()> {
        Err(self.refuse(from.as_ref()))
    }
}
