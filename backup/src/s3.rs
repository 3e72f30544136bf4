//! S3-compatible object storage: [`S3Store`], `object_store`'s `AmazonS3` driven from the
//! synchronous job workers through a tokio runtime the service owns. Behind the `s3` feature
//! (default), so that builds which never talk to S3 (the fuzz targets) skip the HTTP stack.

use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, MultipartUpload, ObjectStore, PutMode,
    PutOptions, PutPayload, RetryConfig,
};

use crate::error::{BackupError, Result};
use crate::store::*;

/// The tokio runtime the service owns for object-storage requests. Shut down in the background
/// on drop, so dropping it from inside another runtime does not panic.
pub(crate) struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl fmt::Debug for OwnedRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnedRuntime")
    }
}

impl OwnedRuntime {
    pub(crate) fn new() -> Result<OwnedRuntime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("shale-backup-io")
            .enable_all()
            .build()
            .map_err(|e| BackupError::Store {
                object: String::new(),
                reason: format!("cannot start the I/O runtime: {e}"),
            })?;
        Ok(OwnedRuntime(Some(rt)))
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        // Only `Drop` takes it.
        self.0.as_ref().expect("runtime present until drop")
    }

    /// Runs `fut` to completion from synchronous code, also when called on a thread that is
    /// itself inside a runtime (the SQL layer's), by blocking on a scoped thread.
    fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| match s.spawn(|| self.rt().block_on(fut)).join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            })
        } else {
            self.rt().block_on(fut)
        }
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A repository under `s3://bucket/prefix` on an S3-compatible store.
pub struct S3Store {
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
    runtime: Arc<OwnedRuntime>,
    secrets: Vec<String>,
    last_error: Arc<Mutex<Option<String>>>,
    options: StoreOptions,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// With `aws.s3.use_instance_profile = true`: the instance metadata service's endpoint, if not
/// `http://169.254.169.254` (the AWS SDKs' name for it).
pub const METADATA_ENDPOINT_ENV: &str = "AWS_EC2_METADATA_SERVICE_ENDPOINT";

/// Where an S3 repository's credentials come from.
enum Credentials {
    /// `aws.s3.access_key` and `aws.s3.secret_key`.
    Keys { access: String, secret: String },
    /// `aws.s3.use_instance_profile = true`.
    InstanceProfile,
    /// `aws.s3.use_aws_sdk_default_behavior = true`.
    SdkDefault,
}

impl S3Store {
    /// A streaming upload of `key`, visible and durable once finished.
    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(S3Writer {
            store: self.store.clone(),
            runtime: self.runtime.clone(),
            path: self.path(key),
            key: key.to_string(),
            buf: Vec::new(),
            upload: None,
            parts: tokio::task::JoinSet::new(),
            part_size: self.options.part_size.max(5 << 20),
            part_concurrency: self.options.part_concurrency.max(1),
            owner: self.clone_for_errors(),
        }))
    }

    /// A store for `location` with StarRocks' `aws.s3.*` properties. Builds the client only;
    /// no request is made.
    pub(crate) fn new(
        location: &str,
        properties: &std::collections::BTreeMap<String, String>,
        runtime: Arc<OwnedRuntime>,
        options: StoreOptions,
    ) -> Result<S3Store> {
        let invalid = |reason: String| BackupError::InvalidLocation {
            location: location.to_string(),
            reason,
        };
        let (bucket, prefix) = parse_s3_location(location)
            .ok_or_else(|| invalid("not an s3:// or s3a:// location".into()))??;
        let unknown: Vec<String> = properties
            .keys()
            .filter(|k| !S3_PROPERTIES.contains(&k.as_str()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(BackupError::UnknownRepositoryProperties { keys: unknown });
        }
        let get = |k: &str| properties.get(k).map(|v| v.trim().to_string());
        let flag = |k: &str| match get(k).as_deref() {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(invalid(format!("{k} must be true or false, not {v:?}"))),
        };
        let path_style = flag("aws.s3.enable_path_style_access")?;
        let credentials = match (
            flag("aws.s3.use_aws_sdk_default_behavior")?,
            flag("aws.s3.use_instance_profile")?,
            get("aws.s3.access_key"),
            get("aws.s3.secret_key"),
        ) {
            (false, false, Some(access), Some(secret)) => Credentials::Keys { access, secret },
            (false, false, _, _) => {
                return Err(invalid(
                    "aws.s3.access_key and aws.s3.secret_key are required (or \
                     aws.s3.use_instance_profile or aws.s3.use_aws_sdk_default_behavior = true)"
                        .into(),
                ));
            }
            (sdk, profile, None, None) if sdk != profile => {
                if sdk {
                    Credentials::SdkDefault
                } else {
                    Credentials::InstanceProfile
                }
            }
            (true, true, _, _) => {
                return Err(invalid(
                    "set only one of aws.s3.use_instance_profile and \
                     aws.s3.use_aws_sdk_default_behavior"
                        .into(),
                ));
            }
            (sdk, _, _, _) => {
                let which = if sdk {
                    "aws.s3.use_aws_sdk_default_behavior"
                } else {
                    "aws.s3.use_instance_profile"
                };
                return Err(invalid(format!(
                    "aws.s3.access_key and aws.s3.secret_key cannot be combined with {which} = true"
                )));
            }
        };
        // The SDK's default behaviour takes the region from AWS_REGION / AWS_DEFAULT_REGION too.
        let env_region = matches!(credentials, Credentials::SdkDefault)
            && ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .iter()
                .any(|k| std::env::var_os(k).is_some());
        let region = get("aws.s3.region");
        let (mut builder, secrets) = match credentials {
            Credentials::Keys { access, secret } => (
                AmazonS3Builder::new()
                    .with_access_key_id(&access)
                    .with_secret_access_key(&secret),
                vec![access, secret],
            ),
            // No key: object_store fetches (and refreshes) the instance profile's temporary
            // credentials from the EC2 instance metadata service: IMDSv2, and IMDSv1 where the
            // token request is refused with 403, as the AWS SDKs (and so StarRocks) do.
            Credentials::InstanceProfile => {
                let mut builder = AmazonS3Builder::new().with_imdsv1_fallback();
                // The AWS SDKs' variable for a metadata service elsewhere than 169.254.169.254,
                // read in this mode only.
                if let Some(endpoint) = std::env::var(METADATA_ENDPOINT_ENV)
                    .ok()
                    .filter(|e| !e.trim().is_empty())
                {
                    builder = builder.with_metadata_endpoint(endpoint.trim().trim_end_matches('/'));
                }
                (builder, Vec::new())
            }
            // The AWS_* environment: keys (and session token), else a web identity token
            // (EKS), else the ECS container credentials, else the instance metadata service.
            Credentials::SdkDefault => (
                AmazonS3Builder::from_env(),
                [
                    "AWS_ACCESS_KEY_ID",
                    "AWS_SECRET_ACCESS_KEY",
                    "AWS_SESSION_TOKEN",
                ]
                .iter()
                .filter_map(|k| std::env::var(k).ok())
                .collect(),
            ),
        };
        let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        builder = builder.with_bucket_name(&bucket);
        match region {
            Some(region) => builder = builder.with_region(region),
            None if !env_region => builder = builder.with_region("us-east-1"),
            None => {}
        }
        builder = builder.with_retry(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: options.initial_backoff,
                max_backoff: options.max_backoff,
                base: 2.0,
            },
            max_retries: options.max_retries,
            retry_timeout: Duration::from_secs(300),
        });
        let mut client = ClientOptions::new()
            .with_timeout(options.request_timeout)
            .with_connect_timeout(Duration::from_secs(10));
        if let Some(endpoint) = get("aws.s3.endpoint") {
            let endpoint = if endpoint.contains("://") {
                endpoint
            } else {
                format!("https://{endpoint}")
            };
            client = client.with_allow_http(endpoint.starts_with("http://"));
            let endpoint = endpoint.trim_end_matches('/').to_string();
            if path_style {
                builder = builder.with_endpoint(endpoint);
            } else {
                // Virtual-hosted style: the bucket is the first label of the host.
                let (scheme, host) = endpoint.split_once("://").unwrap_or(("https", &endpoint));
                builder = builder
                    .with_endpoint(format!("{scheme}://{bucket}.{host}"))
                    .with_virtual_hosted_style_request(true);
            }
        } else if !path_style {
            builder = builder.with_virtual_hosted_style_request(true);
        }
        let store = builder
            .with_client_options(client)
            .build()
            .map_err(|e| invalid(scrub(&e.to_string(), &secret_refs)))?;
        Ok(S3Store {
            store: Arc::new(store),
            bucket,
            prefix,
            runtime,
            secrets,
            last_error: Arc::new(Mutex::new(None)),
            options,
        })
    }

    fn path(&self, key: &str) -> ObjectPath {
        let key = key.trim_matches('/');
        match (self.prefix.is_empty(), key.is_empty()) {
            (true, _) => ObjectPath::from(key),
            (false, true) => ObjectPath::from(self.prefix.as_str()),
            (false, false) => ObjectPath::from(format!("{}/{key}", self.prefix)),
        }
    }

    /// The key of a full object path, relative to the prefix.
    fn relative(&self, path: &ObjectPath) -> String {
        let full = path.as_ref();
        if self.prefix.is_empty() {
            full.to_string()
        } else {
            full.strip_prefix(&self.prefix)
                .map(|r| r.trim_start_matches('/'))
                .unwrap_or(full)
                .to_string()
        }
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.path(key))
    }

    /// Maps a failed request to an error naming the object, scrubbed of secrets, and records it
    /// as the last connectivity error.
    fn fail(&self, key: &str, e: object_store::Error) -> BackupError {
        if let object_store::Error::AlreadyExists { .. }
        | object_store::Error::Precondition { .. } = e
        {
            return BackupError::ObjectExists {
                object: self.url(key),
            };
        }
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        let reason = scrub(&error_chain(&e), &secrets);
        if !matches!(e, object_store::Error::NotFound { .. }) {
            let now = crate::format::format_show_time(crate::format::now_ms());
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("{now}: {}: {reason}", self.url(key)));
        }
        BackupError::Store {
            object: self.url(key),
            reason,
        }
    }

    fn ok<T>(&self, v: T) -> T {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        v
    }

    fn run<T: Send>(
        &self,
        key: &str,
        fut: impl std::future::Future<Output = object_store::Result<T>> + Send,
    ) -> Result<T> {
        match self.runtime.block_on(fut) {
            Ok(v) => Ok(self.ok(v)),
            Err(e) => Err(self.fail(key, e)),
        }
    }
}

/// An error and its sources, one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// `text` with every secret replaced by `***`.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s, "***");
    }
    out
}

/// [`WriteGroup`] of S3: a completed PUT or multipart upload is visible and durable, so there
/// is nothing to wait for; the claims and the commit are conditional PUTs, sent in order.
#[derive(Debug)]
struct S3WriteGroup<'a> {
    store: &'a S3Store,
    claims: Mutex<Vec<(String, Vec<u8>)>>,
    commit: Mutex<Option<(String, Vec<u8>)>>,
}

impl WriteGroup for S3WriteGroup<'_> {
    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        self.store.create(key)
    }

    fn create_once(&self, key: &str, bytes: &[u8]) -> Result<()> {
        lock(&self.claims).push((key.to_string(), bytes.to_vec()));
        Ok(())
    }

    fn prepare_commit(&self, key: &str, bytes: &[u8]) -> Result<()> {
        *lock(&self.commit) = Some((key.to_string(), bytes.to_vec()));
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        let claims = std::mem::take(&mut *lock(&self.claims));
        let mut created = Vec::new();
        for (key, bytes) in &claims {
            if let Err(e) = self.store.put_once(key, bytes) {
                // Undo the claims made before: on `Err` the group holds none.
                for key in created {
                    let _ = self.store.delete(key);
                }
                return Err(e);
            }
            created.push(key);
        }
        Ok(())
    }

    fn commit(&self) -> Result<()> {
        let (key, bytes) = lock(&self.commit).take().ok_or_else(|| {
            BackupError::corrupt(self.store.display(""), "no commit object staged")
        })?;
        self.store.put_once(&key, &bytes)
    }
}

impl RepoStore for S3Store {
    fn display(&self, key: &str) -> PathBuf {
        PathBuf::from(self.url(key))
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        match self
            .runtime
            .block_on(self.store.get_opts(&self.path(key), options))
        {
            Ok(got) => Ok(self.ok(Some(got.meta.size))),
            Err(object_store::Error::NotFound { .. }) => Ok(self.ok(None)),
            Err(e) => Err(self.fail(key, e)),
        }
    }

    fn read(&self, key: &str) -> Result<Vec<u8>> {
        let path = self.path(key);
        let bytes = self.run(key, async {
            self.store
                .get_opts(&path, GetOptions::default())
                .await?
                .bytes()
                .await
        })?;
        Ok(bytes.to_vec())
    }

    fn open_read(&self, key: &str, start: u64) -> Result<Box<dyn Read + Send>> {
        let path = self.path(key);
        let options = GetOptions {
            range: (start > 0).then_some(GetRange::Offset(start)),
            ..GetOptions::default()
        };
        let result = self.run(key, self.store.get_opts(&path, options))?;
        Ok(Box::new(StreamReader {
            stream: result.into_stream(),
            buf: Bytes::new(),
            runtime: self.runtime.clone(),
            object: self.url(key),
            secrets: self.secrets.clone(),
        }))
    }

    fn read_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(key);
        let options = GetOptions {
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        self.run(key, async {
            self.store.get_opts(&path, options).await?.bytes().await
        })
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(key);
        let payload = PutPayload::from(bytes.to_vec());
        self.run(
            key,
            self.store.put_opts(&path, payload, PutOptions::default()),
        )
        .map(|_| ())
    }

    fn put_once(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(key);
        let payload = PutPayload::from(bytes.to_vec());
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.run(key, self.store.put_opts(&path, payload, options))
            .map(|_| ())
    }

    fn begin_writes(&self) -> Result<Box<dyn WriteGroup + '_>> {
        Ok(Box::new(S3WriteGroup {
            store: self,
            claims: Mutex::new(Vec::new()),
            commit: Mutex::new(None),
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectEntry>> {
        Ok(self
            .list_objects(prefix)?
            .into_iter()
            .map(|m| ObjectEntry {
                key: self.relative(&m.location),
                size: m.size,
            })
            .collect())
    }

    fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let path = self.path(prefix);
        let root = (!path.as_ref().is_empty()).then_some(&path);
        let listed = self.run(prefix, self.store.list_with_delimiter(root))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key);
        let mut deleted = self
            .store
            .delete_stream(futures::stream::iter([Ok(path)]).boxed());
        match self.runtime.block_on(async {
            match deleted.next().await {
                Some(r) => r.map(|_| ()),
                None => Ok(()),
            }
        }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                self.ok(());
                Ok(())
            }
            Err(e) => Err(self.fail(key, e)),
        }
    }

    fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let prefix = if prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        for entry in self.list(&prefix)? {
            self.delete(&entry.key)?;
        }
        Ok(())
    }

    fn remove_leftover(&self, prefix: &str) -> Result<()> {
        // The server's clock stamps Last-Modified; ours decides. The grace is minutes, clock
        // skew between hosts seconds.
        let grace =
            chrono::Duration::from_std(self.options.claim_grace).unwrap_or(chrono::Duration::MAX);
        let now = chrono::Utc::now();
        let objects = self.list_objects(prefix)?;
        if let Some(live) = objects.iter().find(|m| now - m.last_modified < grace) {
            return Err(BackupError::ObjectExists {
                object: self.url(&self.relative(&live.location)),
            });
        }
        for m in &objects {
            self.delete(&self.relative(&m.location))?;
        }
        Ok(())
    }

    fn parallelism(&self) -> usize {
        self.options.files_in_flight.max(1)
    }

    fn try_lock(&self, _exclusive: bool) -> Result<Option<LocationLock>> {
        // S3 has no lock: a snapshot name is still committed by one writer (conditional
        // creates), but one repository must have one writing cluster (design.md, "Stores").
        Ok(Some(LocationLock::none()))
    }

    fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl S3Store {
    /// Every object under `prefix` (relative, ending in `/`, or empty), with its metadata.
    fn list_objects(&self, prefix: &str) -> Result<Vec<object_store::ObjectMeta>> {
        let path = self.path(prefix);
        let root = (!path.as_ref().is_empty()).then_some(&path);
        let mut stream = self.store.list(root);
        self.run(prefix, async move {
            let mut out = Vec::new();
            while let Some(meta) = stream.next().await {
                out.push(meta?);
            }
            Ok(out)
        })
    }

    /// What a writer needs to name its object in errors and record them.
    fn clone_for_errors(&self) -> Arc<S3Store> {
        Arc::new(S3Store {
            store: self.store.clone(),
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            runtime: self.runtime.clone(),
            secrets: self.secrets.clone(),
            last_error: self.last_error.clone(),
            options: self.options.clone(),
        })
    }
}

/// A GET response body read synchronously, one network chunk at a time.
struct StreamReader {
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    buf: Bytes,
    runtime: Arc<OwnedRuntime>,
    object: String,
    secrets: Vec<String>,
}

impl Read for StreamReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => {
                    let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
                    return Err(std::io::Error::other(format!(
                        "{}: {}",
                        self.object,
                        scrub(&error_chain(&e), &secrets)
                    )));
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        Ok(n)
    }
}

impl S3Writer {
    /// Waits until fewer than `below` parts are in flight, calling `check` every 50 ms; the
    /// first failed part fails the upload (the caller drops it, which aborts it).
    fn wait_parts(&mut self, below: usize, check: &dyn Fn() -> Result<()>) -> Result<()> {
        while !self.parts.is_empty() && self.parts.len() >= below {
            check()?;
            let joined = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_millis(50), self.parts.join_next()).await
            });
            match joined {
                Ok(Some(Ok(Ok(())))) | Ok(None) | Err(_) => continue,
                Ok(Some(Ok(Err(e)))) => return Err(self.owner.fail(&self.key, e)),
                Ok(Some(Err(e))) => {
                    return Err(BackupError::Store {
                        object: self.owner.url(&self.key),
                        reason: format!("part upload task failed: {e}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Sends the buffered bytes as the next part, once fewer than `part_concurrency` parts
    /// are in flight; starts the multipart upload with the first part.
    fn send_part(&mut self, check: &dyn Fn() -> Result<()>) -> Result<()> {
        if self.upload.is_none() {
            let upload = self
                .runtime
                .block_on(
                    self.store
                        .put_multipart_opts(&self.path, Default::default()),
                )
                .map_err(|e| self.owner.fail(&self.key, e))?;
            self.upload = Some(upload);
        }
        self.wait_parts(self.part_concurrency, check)?;
        let part = PutPayload::from(std::mem::take(&mut self.buf));
        if let Some(upload) = self.upload.as_mut() {
            self.parts
                .spawn_on(upload.put_part(part), self.runtime.rt().handle());
        }
        Ok(())
    }

    /// Aborts the multipart upload, if one was started.
    fn abort_upload(&mut self) {
        self.parts.abort_all();
        if let Some(mut upload) = self.upload.take() {
            let _ = self.runtime.block_on(upload.abort());
        }
    }
}

/// An S3 upload: one PUT if the object stays below a part, else a multipart upload with at
/// most `part_concurrency` parts in flight. Until the upload completes it owns the multipart
/// upload, so that any failure (of a part, of the completion, or a cancel) drops it and aborts
/// it. (object_store's `WriteMultipart::finish` returns a failed last part's error without
/// aborting, and takes the upload with it.)
struct S3Writer {
    store: Arc<AmazonS3>,
    runtime: Arc<OwnedRuntime>,
    path: ObjectPath,
    key: String,
    /// Bytes not yet sent: at most one part.
    buf: Vec<u8>,
    upload: Option<Box<dyn MultipartUpload>>,
    parts: tokio::task::JoinSet<object_store::Result<()>>,
    part_size: usize,
    part_concurrency: usize,
    owner: Arc<S3Store>,
}

impl ObjectWriter for S3Writer {
    fn write_all(&mut self, mut data: &[u8], check: &dyn Fn() -> Result<()>) -> Result<()> {
        while !data.is_empty() {
            let take = (self.part_size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == self.part_size {
                self.send_part(check)?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, check: &dyn Fn() -> Result<()>) -> Result<()> {
        if self.upload.is_none() {
            check()?;
            let payload = PutPayload::from(std::mem::take(&mut self.buf));
            return self
                .runtime
                .block_on(
                    self.store
                        .put_opts(&self.path, payload, PutOptions::default()),
                )
                .map(|_| ())
                .map_err(|e| self.owner.fail(&self.key, e));
        }
        if !self.buf.is_empty() {
            self.send_part(check)?;
        }
        // Every part, checking cancel meanwhile; an error drops `self`, which aborts.
        self.wait_parts(1, check)?;
        check()?;
        let completed = match self.upload.as_mut() {
            Some(upload) => self.runtime.block_on(upload.complete()),
            None => return Ok(()),
        };
        match completed {
            Ok(_) => {
                self.upload = None;
                Ok(())
            }
            Err(e) => Err(self.owner.fail(&self.key, e)),
        }
    }

    fn abort(mut self: Box<Self>) {
        self.abort_upload();
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        self.abort_upload();
    }
}
