//! Repositories on S3 and compatible servers (MinIO, Ceph RGW, Garage,
//! moto): `s3://bucket/prefix`.
//!
//! Credentials and settings come, in this order, from explicit options, the
//! standard environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`), and the shared
//! profile files (`~/.aws/credentials`, `~/.aws/config`, or the files named
//! by `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE`; profile
//! `AWS_PROFILE` or `default`); object_store falls back to instance
//! metadata. Requests are retried with exponential backoff on server errors,
//! throttling (503 SlowDown, 429) and timeouts.

use crate::Store;
use crate::error::{Error, Result};
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::client::{HttpClient, HttpConnector as _, ReqwestConnector};
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Settings for S3-compatible servers.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint URL (`http://127.0.0.1:9000` for a local MinIO).
    pub endpoint: Option<String>,
    /// Region (default `us-east-1`).
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), as most self-hosted
    /// servers need.
    pub path_style: bool,
    /// Allow plain HTTP (loopback test servers).
    pub allow_http: bool,
    /// Profile in the shared files (default `AWS_PROFILE` or `default`).
    pub profile: Option<String>,
    /// Explicit credentials (access key id, secret), before every other source.
    pub credentials: Option<(String, String)>,
    /// Retries of a failed request (default 10).
    pub max_retries: Option<usize>,
}

/// Split `s3://bucket/prefix` into bucket and prefix.
pub fn parse_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| Error::invalid("S3 URL", format!("{url:?} does not start with s3://")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_bucket = bucket.len() >= 3
        && bucket.len() <= 63
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !valid_bucket {
        return Err(Error::invalid(
            "S3 URL",
            format!("{bucket:?} is not a bucket name (3-63 characters of a-z 0-9 . -)"),
        ));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

/// The sections of an INI file; a missing or unreadable file has none.
fn read_ini(path: &std::path::Path) -> HashMap<String, HashMap<String, String>> {
    std::fs::read_to_string(path)
        .map(|text| parse_ini(&text))
        .unwrap_or_default()
}

/// The sections of the AWS profile files' INI dialect: `[name]` headers,
/// `key = value` lines (keys case-insensitive), `#` and `;` comments.
/// Lines that fit neither are ignored, as the AWS tools do.
pub fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_lowercase(), v.trim().to_string());
        }
    }
    out
}

/// Settings from the shared profile files.
fn profile_settings(profile: &str) -> HashMap<String, String> {
    let home = dirs::home_dir().unwrap_or_default();
    let creds = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map_or_else(|| home.join(".aws/credentials"), PathBuf::from);
    let config =
        std::env::var_os("AWS_CONFIG_FILE").map_or_else(|| home.join(".aws/config"), PathBuf::from);
    let mut out = HashMap::new();
    let config_section = if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    };
    if let Some(s) = read_ini(&config).remove(&config_section) {
        out.extend(s);
    }
    if let Some(s) = read_ini(&creds).remove(profile) {
        out.extend(s);
    }
    out
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Open an S3 repository location.
pub fn store(url: &str, opts: &S3Options) -> Result<Store> {
    let mut store = Store::remote(object_store(url, opts)?, url.to_string())?;
    store.s3 = Some(Arc::new(S3Link::new(url, opts)));
    Ok(store)
}

/// What the options, the environment and the profile files resolve to.
pub(crate) struct Settings {
    pub(crate) bucket: String,
    pub(crate) prefix: String,
    /// Access key id, secret and session token, when all are static.
    pub(crate) credentials: Option<(String, String, Option<String>)>,
    pub(crate) region: String,
    pub(crate) endpoint: Option<String>,
}

impl Settings {
    pub(crate) fn resolve(url: &str, opts: &S3Options) -> Result<Self> {
        let (bucket, prefix) = parse_url(url)?;
        let profile_name = opts
            .profile
            .clone()
            .or_else(|| env("AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_string());
        let profile = profile_settings(&profile_name);
        let from_profile = |k: &str| profile.get(k).cloned();
        let (explicit_access, explicit_secret) = opts.credentials.clone().unzip();
        let access = explicit_access
            .or_else(|| env("AWS_ACCESS_KEY_ID"))
            .or_else(|| from_profile("aws_access_key_id"));
        let secret = explicit_secret
            .or_else(|| env("AWS_SECRET_ACCESS_KEY"))
            .or_else(|| from_profile("aws_secret_access_key"));
        let credentials = access.zip(secret).map(|(a, s)| {
            let token = env("AWS_SESSION_TOKEN").or_else(|| from_profile("aws_session_token"));
            (a, s, token)
        });
        let region = opts
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| from_profile("region"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = opts
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| from_profile("endpoint_url"));
        if let Some(e) = &endpoint
            && e.starts_with("http://")
            && !opts.allow_http
        {
            return Err(Error::invalid(
                "S3 endpoint",
                format!(
                    "{e} is plain http://: allow it with --s3-allow-http (allow_http = true in a service config), or use https://"
                ),
            ));
        }
        if credentials.is_none() {
            // Left to object_store: the instance's credentials, which only
            // exist on AWS. Say so, or the first error is about
            // 169.254.169.254.
            let msg = format!(
                "no S3 credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or in profile {profile_name:?} of the AWS profile files"
            );
            if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                return Err(Error::invalid(
                    "S3 credentials",
                    format!(
                        "{msg}, and AWS_EC2_METADATA_DISABLED rules out the instance's credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile that has them with --s3-profile or AWS_PROFILE"
                    ),
                ));
            }
            let msg = format!("{msg}; trying the instance's credentials");
            if endpoint.is_some() {
                tracing::warn!("{msg}");
            } else {
                tracing::info!("{msg}");
            }
        }
        Ok(Settings {
            bucket,
            prefix,
            credentials,
            region,
            endpoint,
        })
    }
}

pub(crate) fn client_options(opts: &S3Options) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(opts.allow_http)
        .with_timeout(Duration::from_secs(120))
        .with_connect_timeout(Duration::from_secs(10))
}

/// The object store behind [`store`], for tests that must write what a
/// [`Store`] never writes (strangers in a listing).
pub fn object_store(url: &str, opts: &S3Options) -> Result<Arc<dyn object_store::ObjectStore>> {
    object_store_with_headers(url, opts, None)
}

/// [`object_store`], sending `headers` with every request, and a SHA-256
/// checksum with every upload when there are any (S3 wants an integrity
/// header on uploads that carry object-lock headers).
pub(crate) fn object_store_with_headers(
    url: &str,
    opts: &S3Options,
    headers: Option<http::HeaderMap>,
) -> Result<Arc<dyn object_store::ObjectStore>> {
    let settings = Settings::resolve(url, opts)?;
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(&settings.bucket)
        .with_region(&settings.region);
    if let Some((a, s, token)) = &settings.credentials {
        b = b.with_access_key_id(a).with_secret_access_key(s);
        if let Some(t) = token {
            b = b.with_token(t);
        }
    }
    // Over HTTPS the transport already guarantees the body's integrity,
    // so the payload is not hashed into the signature (as the AWS SDKs
    // do); over plain HTTP it is, and the server checks it.
    let https = settings
        .endpoint
        .as_deref()
        .is_none_or(|e| e.starts_with("https://"));
    if let Some(e) = &settings.endpoint {
        b = b.with_endpoint(e);
    }
    b = b
        .with_unsigned_payload(https)
        .with_virtual_hosted_style_request(!opts.path_style)
        .with_allow_http(opts.allow_http)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(15),
                base: 2.0,
            },
            max_retries: opts.max_retries.unwrap_or(10),
            retry_timeout: Duration::from_secs(180),
        })
        .with_client_options(match &headers {
            Some(h) => client_options(opts).with_default_headers(h.clone()),
            None => client_options(opts),
        });
    if headers.is_some() {
        b = b.with_checksum_algorithm(object_store::aws::Checksum::SHA256);
    }
    let s3 = b
        .build()
        .map_err(|e| Error::invalid("S3 repository", e.to_string()))?;
    Ok(if settings.prefix.is_empty() {
        Arc::new(s3)
    } else {
        Arc::new(PrefixStore::new(s3, settings.prefix.as_str()))
    })
}

/// What [`create_bucket`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketCreated {
    /// The bucket was made.
    Created,
    /// It existed already (S3 says "owned by you"; servers with one
    /// account say "already exists"). Were it someone else's, the
    /// repository's first write is refused.
    Existed,
}

/// Create the bucket of `url` (S3's CreateBucket, signed with the static
/// credentials; a region other than us-east-1 is sent as the location
/// constraint), with object lock enabled if asked. A bucket that exists
/// already is not an error.
pub fn create_bucket(url: &str, opts: &S3Options, object_lock: bool) -> Result<BucketCreated> {
    let api = S3Api::new(url, opts)?;
    let what = format!("creating bucket {}", api.bucket());
    let settings = &api.settings;
    let body = if settings.region == "us-east-1" {
        String::new()
    } else {
        format!(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
            settings.region
        )
    };
    let mut request = Request::new(http::Method::PUT, None, "").body(body);
    if object_lock {
        // Object lock can only be enabled when a bucket is created.
        request = request.header("x-amz-bucket-object-lock-enabled", "true".into());
    }
    let answer = api.send_blocking(&what, request)?;
    if answer.status.is_success() {
        return Ok(BucketCreated::Created);
    }
    if matches!(
        answer.code(),
        "BucketAlreadyOwnedByYou" | "BucketAlreadyExists"
    ) {
        return Ok(BucketCreated::Existed);
    }
    Err(Error::invalid(
        what,
        format!("the server answered {} {}", answer.status, answer.code()),
    ))
}

// The S3 requests object_store does not make, signed with the same
// credentials: object lock on buckets (`?object-lock`), the retention of
// one object version (a `HEAD` for its headers, `PUT ?retention`), and the
// deletion of one version (`DELETE ?versionId=`), for [`crate::object_lock`].

/// How an S3 store can be reached outside object_store, made on first use.
pub(crate) struct S3Link {
    pub(crate) url: String,
    pub(crate) opts: S3Options,
    api: Mutex<Option<Arc<S3Api>>>,
}

impl std::fmt::Debug for S3Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Link").field("url", &self.url).finish()
    }
}

impl S3Link {
    pub(crate) fn new(url: &str, opts: &S3Options) -> Self {
        Self {
            url: url.to_string(),
            opts: opts.clone(),
            api: Mutex::new(None),
        }
    }

    pub(crate) fn api(&self) -> Result<Arc<S3Api>> {
        let mut slot = self.api.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(api) = &*slot {
            return Ok(Arc::clone(api));
        }
        let api = Arc::new(S3Api::new(&self.url, &self.opts)?);
        *slot = Some(Arc::clone(&api));
        Ok(api)
    }
}

/// A server's answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: http::StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    /// The `<Code>` of an S3 error body, or "".
    pub(crate) fn code(&self) -> &str {
        self.body
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map_or("", |(code, _)| code)
    }

    /// A header's value as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request for [`S3Api::send`].
pub(crate) struct Request<'a> {
    method: http::Method,
    /// A full key ([`S3Api::key`]), or `None` for the bucket itself.
    key: Option<&'a str>,
    query: &'a str,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl<'a> Request<'a> {
    /// A request without headers or body.
    pub(crate) fn new(method: http::Method, key: Option<&'a str>, query: &'a str) -> Self {
        Self {
            method,
            key,
            query,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// With this header.
    pub(crate) fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// With this body.
    pub(crate) fn body(mut self, body: String) -> Self {
        self.body = body;
        self
    }
}

/// Signed requests to one repository's bucket.
pub(crate) struct S3Api {
    settings: Settings,
    path_style: bool,
    client: HttpClient,
}

impl std::fmt::Debug for S3Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Api")
            .field("bucket", &self.settings.bucket)
            .finish_non_exhaustive()
    }
}

/// Percent-encode a key for a URL path, keeping `/`.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl S3Api {
    pub(crate) fn new(url: &str, opts: &S3Options) -> Result<Self> {
        let settings = Settings::resolve(url, opts)?;
        let client = ReqwestConnector::default()
            .connect(&client_options(opts))
            .map_err(|e| Error::invalid("S3 client", e.to_string()))?;
        Ok(Self {
            settings,
            path_style: opts.path_style,
            client,
        })
    }

    /// The bucket's name.
    pub(crate) fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    /// The full key of a repository path (the prefix, then the path).
    pub(crate) fn key(&self, path: &str) -> String {
        if self.settings.prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.settings.prefix)
        }
    }

    fn url(&self, key: Option<&str>, query: &str) -> Result<String> {
        let endpoint = self
            .settings
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.settings.region));
        let endpoint = endpoint.trim_end_matches('/');
        let bucket = &self.settings.bucket;
        let base = if self.path_style {
            format!("{endpoint}/{bucket}")
        } else {
            match endpoint.split_once("://") {
                Some((scheme, host)) => format!("{scheme}://{bucket}.{host}"),
                None => {
                    return Err(Error::invalid(
                        "S3 endpoint",
                        format!("{endpoint} is not a URL"),
                    ));
                }
            }
        };
        let path = key.map_or_else(|| "/".to_string(), |k| format!("/{}", encode_key(k)));
        let path = if self.path_style && key.is_none() {
            String::new()
        } else {
            path
        };
        Ok(if query.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{query}")
        })
    }

    /// Send one signed request; errors say `what` was being done.
    pub(crate) async fn send(&self, what: &str, request: Request<'_>) -> Result<Answer> {
        let uri = self.url(request.key, request.query)?;
        let fail = |reason: String| Error::invalid(what, reason);
        let Some((key_id, secret_key, token)) = self.settings.credentials.clone() else {
            return Err(fail(
                "it needs static credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile)".into(),
            ));
        };
        let mut builder = http::Request::builder().method(request.method).uri(&uri);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let mut signed = builder
            .body(object_store::client::HttpRequestBody::from(request.body))
            .map_err(|e| fail(format!("{uri}: {e}")))?;
        let credential = object_store::aws::AwsCredential {
            key_id,
            secret_key,
            token,
        };
        object_store::aws::AwsAuthorizer::new(&credential, "s3", &self.settings.region)
            .try_authorize(&mut signed, None)
            .map_err(|e| fail(e.to_string()))?;
        let response = self
            .client
            .execute(signed)
            .await
            .map_err(|e| fail(format!("{uri}: {e}")))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().bytes().await.unwrap_or_default();
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// [`S3Api::send`] from synchronous code outside a [`Store`], on a
    /// runtime of its own.
    pub(crate) fn send_blocking(&self, what: &str, request: Request<'_>) -> Result<Answer> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?;
        rt.block_on(self.send(what, request))
    }
}

/// The `Content-MD5` header of a body.
pub(crate) fn content_md5(body: &str) -> String {
    use base64::Engine as _;
    use md5::{Digest, Md5};
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(body.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("s3://bucket").unwrap(),
            ("bucket".into(), "".into())
        );
        assert_eq!(
            parse_url("s3://my-bucket/a/b/").unwrap(),
            ("my-bucket".into(), "a/b".into())
        );
        assert!(parse_url("s3://ab/x").is_err());
        assert!(parse_url("s3://Upper/x").is_err());
        assert!(parse_url("http://bucket").is_err());
    }

    #[test]
    fn profile_files() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id = AKID\naws_secret_access_key = SECRET\n\n[other]\naws_access_key_id=O\n",
        )
        .unwrap();
        let ini = read_ini(&creds);
        assert_eq!(ini["default"]["aws_access_key_id"], "AKID");
        assert_eq!(ini["other"]["aws_access_key_id"], "O");
        assert!(read_ini(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn keys_are_encoded_but_slashes_kept() {
        assert_eq!(
            encode_key("logs/mail.example.org/wal/ab"),
            "logs/mail.example.org/wal/ab"
        );
        assert_eq!(encode_key("a b/c+d"), "a%20b/c%2Bd");
    }
}
