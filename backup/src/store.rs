//! Where a repository's files live: the [`RepoStore`] trait, implemented for a local directory
//! ([`FsStore`], through the engine's [`Storage`] so fault injection reaches it) and for
//! S3-compatible object storage ([`S3Store`], `object_store`'s `AmazonS3` driven from the
//! synchronous job workers through a tokio runtime the service owns).
//!
//! Keys are relative, `/`-separated paths (`snapshots/s1/meta.json`), the same on both kinds of
//! store, so the repository format and its commit protocol do not depend on the store:
//! - data objects are written once under their content-addressed name and become visible only
//!   complete ([`ObjectWriter::finish`]: rename of a temporary file, or the single PUT / the
//!   multipart completion on S3);
//! - the info object is created with [`RepoStore::put_once`] (S3: `PutMode::Create`, i.e.
//!   `If-None-Match: *`), so two writers cannot both commit the same snapshot name.
//!
//! Invariants: no method panics on what a store returns; S3 error messages never contain the
//! access key or secret key; memory per upload is bounded by `part_size × (concurrency + 1)`.

use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, PutMode, PutOptions,
    PutPayload, RetryConfig, WriteMultipart,
};
use shale_engine::{Storage, WritableFile};

use crate::error::{BackupError, Result};

/// One object found by [`RepoStore::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEntry {
    /// Key relative to the repository root.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// A repository's files, by key relative to the repository root.
pub trait RepoStore: Send + Sync + fmt::Debug {
    /// The full location of `key` as users see it (a path, or `s3://bucket/prefix/key`), for
    /// messages.
    fn display(&self, key: &str) -> PathBuf;
    /// The size of `key`, `None` if absent.
    fn head(&self, key: &str) -> Result<Option<u64>>;
    /// The whole content of a small object.
    fn read(&self, key: &str) -> Result<Vec<u8>>;
    /// A streaming reader of `key` from byte `start` to the end.
    fn open_read(&self, key: &str, start: u64) -> Result<Box<dyn Read + Send>>;
    /// Bytes `range` of `key`.
    fn read_range(&self, key: &str, range: Range<u64>) -> Result<Bytes>;
    /// Writes a small object, replacing any previous one atomically.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<()>;
    /// Creates a small object only if absent: [`BackupError::ObjectExists`] otherwise.
    fn put_once(&self, key: &str, bytes: &[u8]) -> Result<()>;
    /// A streaming upload of `key`, visible (complete) only after [`ObjectWriter::finish`].
    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>>;
    /// Every object under `prefix` (a key prefix ending in `/`, or empty), recursively.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectEntry>>;
    /// The names of the "directories" directly under `prefix` (ending in `/`, or empty).
    fn list_dirs(&self, prefix: &str) -> Result<Vec<String>>;
    /// Removes `key`; absent is fine.
    fn delete(&self, key: &str) -> Result<()>;
    /// Removes everything under `prefix` (ending in `/`).
    fn delete_prefix(&self, prefix: &str) -> Result<()>;
    /// Files copied at a time by a backup or restore.
    fn parallelism(&self) -> usize;
    /// The last connectivity error (`"<time>: <error>"`) for SHOW REPOSITORIES' `ErrMsg`,
    /// `None` while the location is reachable.
    fn last_error(&self) -> Option<String>;
}

/// A streaming upload. Dropping it without [`ObjectWriter::finish`] aborts it.
pub trait ObjectWriter: Send {
    /// Appends bytes.
    /// Appends bytes; `check` (cancel, deadline) is called while waiting for parts in flight.
    fn write_all(&mut self, data: &[u8], check: &dyn Fn() -> Result<()>) -> Result<()>;
    /// Makes the object visible, complete; `check` is called while waiting for parts in
    /// flight, and an error from it aborts the upload.
    fn finish(self: Box<Self>, check: &dyn Fn() -> Result<()>) -> Result<()>;
    /// Abandons the upload: nothing becomes visible, partial parts are discarded.
    fn abort(self: Box<Self>);
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

// ---- Filesystem -------------------------------------------------------------------------------

/// A repository in a local directory, through the engine's [`Storage`].
#[derive(Debug, Clone)]
pub struct FsStore {
    storage: Arc<dyn Storage>,
    root: PathBuf,
    files_in_flight: usize,
}

impl FsStore {
    /// The directory `root` through `storage`, copying `files_in_flight` files at a time.
    pub fn new(storage: Arc<dyn Storage>, root: PathBuf, files_in_flight: usize) -> FsStore {
        FsStore {
            storage,
            root,
            files_in_flight,
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        let key = key.trim_end_matches('/');
        if key.is_empty() {
            self.root.clone()
        } else {
            self.root.join(key)
        }
    }

    fn walk(&self, dir: &Path, rel: &str, out: &mut Vec<ObjectEntry>) -> Result<()> {
        for e in self.storage.list_dir(dir)? {
            let key = format!("{rel}{}", e.name);
            if e.is_dir {
                self.walk(&dir.join(&e.name), &format!("{key}/"), out)?;
            } else {
                out.push(ObjectEntry { key, size: e.len });
            }
        }
        Ok(())
    }
}

fn parent_of(path: &Path) -> Result<&Path> {
    path.parent()
        .ok_or_else(|| BackupError::corrupt(path, "path has no parent directory"))
}

impl RepoStore for FsStore {
    fn display(&self, key: &str) -> PathBuf {
        self.path(key)
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        Ok(self.storage.file_len(&self.path(key))?)
    }

    fn read(&self, key: &str) -> Result<Vec<u8>> {
        Ok(self.storage.read(&self.path(key))?)
    }

    fn open_read(&self, key: &str, start: u64) -> Result<Box<dyn Read + Send>> {
        let path = self.path(key);
        let mut r = self.storage.open_read(&path)?;
        if start > 0 {
            let skipped = std::io::copy(&mut (&mut r).take(start), &mut std::io::sink())
                .map_err(|e| shale_engine::Error::io("read", &path, e))?;
            if skipped != start {
                return Err(BackupError::corrupt(
                    &path,
                    format!("file is shorter than {start} bytes"),
                ));
            }
        }
        Ok(r)
    }

    fn read_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(key);
        let bytes = self.storage.map(&path)?;
        if range.start > range.end || range.end > bytes.len() as u64 {
            return Err(BackupError::corrupt(
                &path,
                format!(
                    "range {range:?} is outside the file's {} bytes",
                    bytes.len()
                ),
            ));
        }
        Ok(bytes.slice(range.start as usize..range.end as usize))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(key);
        let parent = parent_of(&path)?;
        self.storage.create_dir_all(parent)?;
        shale_engine::storage::write_atomic(&*self.storage, &path, bytes)?;
        // A folder just created (snapshots/<name>/) must be durable in its parent too.
        if parent != self.root
            && let Some(grandparent) = parent.parent()
        {
            self.storage.sync_dir(grandparent)?;
        }
        Ok(())
    }

    fn put_once(&self, key: &str, bytes: &[u8]) -> Result<()> {
        // On a local directory the service's repository lock serialises writers of one
        // process; the existence check under it is the conditional create.
        let path = self.path(key);
        if self.storage.file_len(&path)?.is_some() {
            return Err(BackupError::ObjectExists {
                object: path.display().to_string(),
            });
        }
        self.put(key, bytes)
    }

    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        let target = self.path(key);
        let parent = parent_of(&target)?.to_path_buf();
        self.storage.create_dir_all(&parent)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(
            "{name}.tmp{}-{}",
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let file = self.storage.create(&tmp)?;
        Ok(Box::new(FsWriter {
            storage: self.storage.clone(),
            file: Some(file),
            tmp,
            target,
            parent,
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectEntry>> {
        let mut out = Vec::new();
        let rel = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        self.walk(&self.path(prefix), &rel, &mut out)?;
        Ok(out)
    }

    fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .storage
            .list_dir(&self.path(prefix))?
            .into_iter()
            .filter(|e| e.is_dir)
            .map(|e| e.name)
            .collect())
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key);
        self.storage.remove_file(&path)?;
        self.storage.sync_dir(parent_of(&path)?)?;
        Ok(())
    }

    fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let path = self.path(prefix);
        self.storage.remove_dir_all(&path)?;
        let parent = parent_of(&path)?;
        if self.storage.list_dir(parent).is_ok_and(|_| parent.is_dir()) {
            self.storage.sync_dir(parent)?;
        }
        Ok(())
    }

    fn parallelism(&self) -> usize {
        self.files_in_flight.max(1)
    }

    fn last_error(&self) -> Option<String> {
        let now = crate::format::format_show_time(crate::format::now_ms());
        match std::fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => None,
            Ok(_) => Some(format!("{now}: {} is not a directory", self.root.display())),
            Err(e) => Some(format!("{now}: {}: {e}", self.root.display())),
        }
    }
}

struct FsWriter {
    storage: Arc<dyn Storage>,
    file: Option<Box<dyn WritableFile>>,
    tmp: PathBuf,
    target: PathBuf,
    parent: PathBuf,
}

impl ObjectWriter for FsWriter {
    fn write_all(&mut self, data: &[u8], _check: &dyn Fn() -> Result<()>) -> Result<()> {
        match self.file.as_mut() {
            Some(f) => Ok(f.write_all(data)?),
            None => Err(BackupError::corrupt(&self.tmp, "write after finish")),
        }
    }

    fn finish(mut self: Box<Self>, _check: &dyn Fn() -> Result<()>) -> Result<()> {
        let result = (|| -> Result<()> {
            let mut file = self
                .file
                .take()
                .ok_or_else(|| BackupError::corrupt(&self.tmp, "finished twice"))?;
            file.sync()?;
            drop(file);
            self.storage.rename(&self.tmp, &self.target)?;
            self.storage.sync_dir(&self.parent)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = self.storage.remove_file(&self.tmp);
        }
        result
    }

    fn abort(mut self: Box<Self>) {
        self.file = None;
        let _ = self.storage.remove_file(&self.tmp);
    }
}

impl Drop for FsWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = self.storage.remove_file(&self.tmp);
        }
    }
}

// ---- S3 ---------------------------------------------------------------------------------------

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

/// How S3 requests are retried and uploads are cut; [`crate::BackupsOptions::store`].
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Retries of a request that timed out or got a 5xx / throttling answer.
    pub max_retries: usize,
    /// First backoff; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Largest backoff.
    pub max_backoff: Duration,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// Multipart part size (S3's minimum is 5 MiB); objects smaller go up in one PUT.
    pub part_size: usize,
    /// Parts of one object in flight at a time.
    pub part_concurrency: usize,
    /// Files transferred at a time to or from object storage.
    pub files_in_flight: usize,
    /// Files copied at a time to or from a local directory: several, so that copying overlaps
    /// reading, checksumming and waiting for the disk (1 copied at 37 MiB/s, 2 at 101 MiB/s in
    /// the backup_s3 bench). Fault-injection tests that fail "the n-th storage operation" set 1
    /// so the order is the same in every run.
    pub fs_files_in_flight: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            // 3 files × (2 parts in flight + 1 filling) × 5 MiB = 45 MiB of upload buffers,
            // plus 3 copy chunks: within issue 4's 64 MiB over baseline.
            part_size: 5 << 20,
            part_concurrency: 2,
            files_in_flight: 3,
            fs_files_in_flight: 4,
        }
    }
}

/// The property keys an S3 repository accepts (StarRocks' names).
pub const S3_PROPERTIES: [&str; 5] = [
    "aws.s3.access_key",
    "aws.s3.secret_key",
    "aws.s3.endpoint",
    "aws.s3.region",
    "aws.s3.enable_path_style_access",
];

/// Property keys whose values are secrets.
pub const SECRET_PROPERTIES: [&str; 1] = ["aws.s3.secret_key"];

/// `(bucket, prefix)` of an `s3://` or `s3a://` location; `None` for other schemes.
pub fn parse_s3_location(location: &str) -> Option<Result<(String, String)>> {
    let rest = location
        .strip_prefix("s3://")
        .or_else(|| location.strip_prefix("s3a://"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = prefix.trim_matches('/');
    let invalid = |reason: &str| BackupError::InvalidLocation {
        location: location.to_string(),
        reason: reason.to_string(),
    };
    if bucket.is_empty() {
        return Some(Err(invalid("the location has no bucket name")));
    }
    if prefix
        .split('/')
        .any(|s| s.is_empty() && !prefix.is_empty())
        || prefix.split('/').any(|s| s == "." || s == "..")
    {
        return Some(Err(invalid("the prefix has an empty, `.` or `..` segment")));
    }
    Some(Ok((bucket.to_string(), prefix.to_string())))
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

impl S3Store {
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
        let (Some(access), Some(secret)) = (get("aws.s3.access_key"), get("aws.s3.secret_key"))
        else {
            return Err(invalid(
                "aws.s3.access_key and aws.s3.secret_key are required".into(),
            ));
        };
        let path_style = match get("aws.s3.enable_path_style_access").as_deref() {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(invalid(format!(
                    "aws.s3.enable_path_style_access must be true or false, not {v:?}"
                )));
            }
        };
        let region = get("aws.s3.region").unwrap_or_else(|| "us-east-1".into());
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&bucket)
            .with_region(&region)
            .with_access_key_id(&access)
            .with_secret_access_key(&secret)
            .with_retry(RetryConfig {
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
            .map_err(|e| invalid(scrub(&e.to_string(), &[&access, &secret])))?;
        Ok(S3Store {
            store: Arc::new(store),
            bucket,
            prefix,
            runtime,
            secrets: vec![access, secret],
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

    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(S3Writer {
            store: self.store.clone(),
            runtime: self.runtime.clone(),
            path: self.path(key),
            key: key.to_string(),
            buf: Vec::new(),
            upload: None,
            part_size: self.options.part_size.max(5 << 20),
            part_concurrency: self.options.part_concurrency.max(1),
            owner: self.clone_for_errors(),
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectEntry>> {
        let path = self.path(prefix);
        let root = (!path.as_ref().is_empty()).then_some(&path);
        let mut stream = self.store.list(root);
        let entries = self.run(prefix, async move {
            let mut out = Vec::new();
            while let Some(meta) = stream.next().await {
                out.push(meta?);
            }
            Ok(out)
        })?;
        Ok(entries
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

    fn parallelism(&self) -> usize {
        self.options.files_in_flight.max(1)
    }

    fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl S3Store {
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
    /// Waits until fewer than `below` parts are in flight, calling `check` every 50 ms.
    fn wait_parts(&mut self, below: usize, check: &dyn Fn() -> Result<()>) -> Result<()> {
        let Some(w) = self.upload.as_mut() else {
            return Ok(());
        };
        loop {
            check()?;
            let waited = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_millis(50), w.wait_for_capacity(below)).await
            });
            match waited {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => return Err(self.owner.fail(&self.key, e)),
                Err(_elapsed) => continue,
            }
        }
    }
}

/// An S3 upload: one PUT if the object stays below a part, else a multipart upload with at
/// most `part_concurrency` parts in flight.
struct S3Writer {
    store: Arc<AmazonS3>,
    runtime: Arc<OwnedRuntime>,
    path: ObjectPath,
    key: String,
    buf: Vec<u8>,
    upload: Option<WriteMultipart>,
    part_size: usize,
    part_concurrency: usize,
    owner: Arc<S3Store>,
}

impl ObjectWriter for S3Writer {
    fn write_all(&mut self, mut data: &[u8], check: &dyn Fn() -> Result<()>) -> Result<()> {
        if self.upload.is_none() {
            let room = self.part_size - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() < self.part_size {
                return Ok(());
            }
            let upload = self
                .runtime
                .block_on(
                    self.store
                        .put_multipart_opts(&self.path, Default::default()),
                )
                .map_err(|e| self.owner.fail(&self.key, e))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, self.part_size);
            let _enter = self.runtime.rt().enter();
            w.write(&std::mem::take(&mut self.buf));
            self.upload = Some(w);
        }
        self.wait_parts(self.part_concurrency, check)?;
        if let Some(w) = self.upload.as_mut() {
            let _enter = self.runtime.rt().enter();
            w.write(data);
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, check: &dyn Fn() -> Result<()>) -> Result<()> {
        // Wait for every part in flight, checking cancel meanwhile; an error drops `self`,
        // which aborts the multipart upload.
        self.wait_parts(1, check)?;
        check()?;
        match self.upload.take() {
            Some(w) => self
                .runtime
                .block_on(w.finish())
                .map(|_| ())
                .map_err(|e| self.owner.fail(&self.key, e)),
            None => {
                let payload = PutPayload::from(std::mem::take(&mut self.buf));
                self.runtime
                    .block_on(
                        self.store
                            .put_opts(&self.path, payload, PutOptions::default()),
                    )
                    .map(|_| ())
                    .map_err(|e| self.owner.fail(&self.key, e))
            }
        }
    }

    fn abort(mut self: Box<Self>) {
        if let Some(w) = self.upload.take() {
            let _ = self.runtime.block_on(w.abort());
        }
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        if let Some(w) = self.upload.take() {
            let _ = self.runtime.block_on(w.abort());
        }
    }
}

/// A Parquet [`parquet::file::reader::ChunkReader`] over one object of a store: footer and
/// column chunks are fetched by range, so decoding never holds the whole file.
pub(crate) struct StoreChunks {
    pub store: Arc<dyn RepoStore>,
    pub key: String,
    pub len: u64,
}

impl parquet::file::reader::Length for StoreChunks {
    fn len(&self) -> u64 {
        self.len
    }
}

impl parquet::file::reader::ChunkReader for StoreChunks {
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        self.store
            .open_read(&self.key, start)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.store
            .read_range(&self.key, start..start + length as u64)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
    }
}
