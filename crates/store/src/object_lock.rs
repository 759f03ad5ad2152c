//! S3 object lock for a repository (docs/FORMAT.md "Object lock"): the
//! objects that hold backups are written with a retention date, a delete
//! of one whose date has not passed is refused here (before S3 would
//! quietly hide it behind a delete marker), a delete of one whose date
//! has passed removes its version for good, and maintenance extends the
//! retention of what is still in use.
//!
//! Which objects are protected is [`protected`]'s rule: what holds data or
//! says what exists (config, keys, packs, snapshots, log segments, account
//! events, verification records). Index objects, locks and pending-deletion
//! records are not: an index is rebuilt from the packs, and the others must
//! be removable by the maintenance host at any time.

use crate::error::{Error, Result};
use crate::s3::{Request, S3Api, S3Link, content_md5};
use crate::{ObjectKind, Store, store_path};
use cairn_format::config::ObjectLock;
use std::sync::Arc;

/// Whether objects of this kind are written under object lock.
pub fn protected(kind: ObjectKind) -> bool {
    !matches!(
        kind,
        ObjectKind::Index | ObjectKind::Lock | ObjectKind::Deletion
    )
}

/// What a store writing under object lock adds to a [`Store`].
#[derive(Clone)]
pub(crate) struct Locked {
    /// The same bucket, with the object-lock headers on every request.
    pub(crate) writer: Arc<dyn object_store::ObjectStore>,
    pub(crate) lock: ObjectLock,
}

/// The retention of one object, as a `HEAD` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Its retain-until date, if it has one.
    pub until: Option<jiff::Timestamp>,
    /// Its version (object lock needs a versioned bucket).
    pub version: Option<String>,
}

/// A timestamp as S3 wants it: whole seconds, UTC.
fn s3_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The margin a write's retention date gets beyond the period: a tenth of
/// it, at most a day (a process writes for hours after it opened the
/// repository, and the date is fixed when it opens it).
fn margin(lock: &ObjectLock) -> std::time::Duration {
    (lock.period() / 10).min(std::time::Duration::from_secs(86_400))
}

/// `now` plus a duration, saturating.
fn after(now: jiff::Timestamp, d: std::time::Duration) -> jiff::Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(jiff::Timestamp::MAX)
}

impl Store {
    fn s3_link(&self) -> Result<&S3Link> {
        self.s3.as_deref().ok_or_else(|| {
            Error::invalid(
                "object lock",
                format!(
                    "object lock is an S3 feature, and {} is not on S3",
                    self.location
                ),
            )
        })
    }

    fn s3_api(&self) -> Result<Arc<S3Api>> {
        self.s3_link()?.api()
    }

    /// This store, writing its protected objects under `lock`: each upload
    /// carries the mode and a retain-until date of now plus the period and
    /// a margin (a tenth of the period, at most a day). Only S3 stores can.
    pub fn with_object_lock(&self, lock: ObjectLock) -> Result<Store> {
        let link = self.s3_link()?;
        let until = after(jiff::Timestamp::now(), lock.period() + margin(&lock));
        let mut headers = http::HeaderMap::new();
        let value = |v: &str| {
            http::HeaderValue::from_str(v)
                .map_err(|e| Error::invalid("object lock header", e.to_string()))
        };
        headers.insert("x-amz-object-lock-mode", value(lock.mode.s3_name())?);
        headers.insert(
            "x-amz-object-lock-retain-until-date",
            value(&s3_time(until))?,
        );
        // S3 wants an integrity header on such uploads: object_store sends
        // the SHA-256 (x-amz-checksum-sha256), and this names it.
        headers.insert("x-amz-sdk-checksum-algorithm", value("SHA256")?);
        let writer = crate::s3::object_store_with_headers(&link.url, &link.opts, Some(headers))?;
        let mut store = self.clone();
        store.locked = Some(Locked { writer, lock });
        Ok(store)
    }

    /// Whether this store is on S3 (and so can write under object lock).
    pub fn is_s3(&self) -> bool {
        self.s3.is_some()
    }

    /// The object lock this store writes under, if any.
    pub fn object_lock(&self) -> Option<ObjectLock> {
        self.locked.as_ref().map(|l| l.lock)
    }

    /// The object store a put of `kind` goes to.
    pub(crate) fn writer_for(&self, kind: ObjectKind) -> &Arc<dyn object_store::ObjectStore> {
        match &self.locked {
            Some(l) if protected(kind) => &l.writer,
            _ => &self.inner,
        }
    }

    /// Whether the bucket has object lock enabled (S3's
    /// GetObjectLockConfiguration).
    pub fn bucket_has_object_lock(&self) -> Result<bool> {
        let api = self.s3_api()?;
        let what = format!("reading the object lock of bucket {}", api.bucket());
        let answer =
            self.block_on(api.send(&what, Request::new(http::Method::GET, None, "object-lock=")))?;
        if answer.status.is_success() {
            return Ok(answer
                .body
                .contains("<ObjectLockEnabled>Enabled</ObjectLockEnabled>"));
        }
        if answer.status == http::StatusCode::NOT_FOUND
            || answer.code() == "ObjectLockConfigurationNotFoundError"
        {
            return Ok(false);
        }
        Err(Error::invalid(
            what,
            format!("the server answered {} {}", answer.status, answer.code()),
        ))
    }

    /// The retention of an object (`None`: it does not exist).
    pub fn retention(&self, kind: ObjectKind, name: &str) -> Result<Option<Retention>> {
        let path = store_path(kind, name);
        let api = self.s3_api()?;
        let key = api.key(path.as_ref());
        let what = format!("reading the retention of {path}");
        let answer =
            self.block_on(api.send(&what, Request::new(http::Method::HEAD, Some(&key), "")))?;
        if answer.status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(Error::invalid(
                what,
                format!("the server answered {}", answer.status),
            ));
        }
        let until = answer
            .header("x-amz-object-lock-retain-until-date")
            .and_then(|t| t.parse::<jiff::Timestamp>().ok());
        Ok(Some(Retention {
            until,
            version: answer.header("x-amz-version-id").map(str::to_string),
        }))
    }

    /// The retain-until date of an object whose retention has not passed
    /// (`None`: passed, none, or no such object).
    pub fn retained_until(&self, kind: ObjectKind, name: &str) -> Result<Option<jiff::Timestamp>> {
        let now = jiff::Timestamp::now();
        Ok(self
            .retention(kind, name)?
            .and_then(|r| r.until)
            .filter(|u| *u > now))
    }

    /// Whether an object's retention is due for renewal: written
    /// (`modified`, from a listing) at least half a period ago, and less
    /// than half a period from its date (or without one). Objects written
    /// more recently are not asked. Returns what to renew.
    pub fn renewal_due(
        &self,
        kind: ObjectKind,
        name: &str,
        modified: Option<jiff::Timestamp>,
    ) -> Result<Option<Retention>> {
        let Some(lock) = self.object_lock() else {
            return Ok(None);
        };
        let now = jiff::Timestamp::now();
        let half = lock.period() / 2;
        if modified.is_some_and(|m| after(m, half) > now) {
            return Ok(None);
        }
        Ok(self
            .retention(kind, name)?
            .filter(|r| r.until.is_none_or(|u| u < after(now, half))))
    }

    /// Renew an object's retention ([`Store::renewal_due`]): its version
    /// is retained until the period from now (S3's PutObjectRetention, in
    /// this store's mode). Extending is always allowed; shortening is
    /// refused by S3 (compliance mode, or governance mode without the
    /// bypass right).
    pub fn renew_retention(
        &self,
        kind: ObjectKind,
        name: &str,
        retention: &Retention,
    ) -> Result<()> {
        let path = store_path(kind, name);
        let lock = self.object_lock().ok_or_else(|| {
            Error::invalid(path.to_string(), "the store writes without object lock")
        })?;
        let until = after(jiff::Timestamp::now(), lock.period());
        let version = retention.version.as_deref();
        let api = self.s3_api()?;
        let key = api.key(path.as_ref());
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>",
            lock.mode.s3_name(),
            s3_time(until)
        );
        let query = match version {
            Some(v) => format!("retention=&versionId={v}"),
            None => "retention=".to_string(),
        };
        let what = format!("extending the retention of {path}");
        let request = Request::new(http::Method::PUT, Some(&key), &query)
            .header("content-md5", content_md5(&body))
            .body(body);
        let answer = self.block_on(api.send(&what, request))?;
        if answer.status.is_success() {
            return Ok(());
        }
        Err(Error::invalid(
            what,
            format!("the server answered {} {}", answer.status, answer.code()),
        ))
    }

    /// Delete a protected object of a store under object lock: refused
    /// with [`Error::Retained`] while its retention lasts; afterwards its
    /// version is deleted for good, leaving no delete marker.
    pub(crate) fn delete_locked(&self, kind: ObjectKind, name: &str) -> Result<()> {
        let path = store_path(kind, name);
        let Some(retention) = self.retention(kind, name)? else {
            return Ok(());
        };
        if let Some(until) = retention.until
            && until > jiff::Timestamp::now()
        {
            return Err(Error::Retained {
                location: path.to_string(),
                until,
            });
        }
        match retention.version {
            Some(version) => self.delete_version(kind, name, &version),
            None => self.delete_unlocked(kind, name),
        }
    }

    /// Delete one version of an object for good (S3 refuses while its
    /// retention lasts, with 403). Deleting a missing version succeeds.
    pub fn delete_version(&self, kind: ObjectKind, name: &str, version: &str) -> Result<()> {
        let path = store_path(kind, name);
        let api = self.s3_api()?;
        let key = api.key(path.as_ref());
        let what = format!("deleting {path}");
        let query = format!("versionId={version}");
        let answer = self.block_on(api.send(
            &what,
            Request::new(http::Method::DELETE, Some(&key), &query),
        ))?;
        match answer.status {
            s if s.is_success() || s == http::StatusCode::NOT_FOUND => Ok(()),
            http::StatusCode::FORBIDDEN => Err(Error::invalid(
                what,
                format!(
                    "the server refused ({} {}): its retention lasts, or these credentials may not delete",
                    answer.status,
                    answer.code()
                ),
            )),
            s => Err(Error::invalid(
                what,
                format!("the server answered {s} {}", answer.code()),
            )),
        }
    }
}
