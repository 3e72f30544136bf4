//! Where a repository's files live: the [`RepoStore`] trait, implemented for a local directory
//! ([`FsStore`], through the engine's [`Storage`] so fault injection reaches it) and for
//! S3-compatible object storage (`S3Store` in the `s3` module, feature `s3`: `object_store`'s `AmazonS3` driven from the
//! synchronous job workers through a tokio runtime the service owns).
//!
//! Keys are relative, `/`-separated paths (`snapshots/s1/meta.json`), the same on both kinds of
//! store, so the repository format and its commit protocol do not depend on the store:
//! - data objects are written once under their content-addressed name and become visible only
//!   complete ([`ObjectWriter::finish`]: rename of a temporary file, or the single PUT / the
//!   multipart completion on S3);
//! - `meta.json` claims a snapshot name and the info object, written last, commits it; both are
//!   created only if absent ([`WriteGroup::create_once`], [`WriteGroup::commit`]; S3:
//!   `PutMode::Create`, i.e. `If-None-Match: *`), so two writers cannot both commit the same
//!   snapshot name;
//! - [`RepoStore::lock`] serialises the writers of one location across processes (a directory:
//!   `flock(2)` on `.shale_lock`; S3 has no lock, see its docs).
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
use shale_engine::{FileSystemSync, Foreground, Storage, WritableFile};

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
    /// Starts a group of uploads ([`WriteGroup::create`]), made visible and durable by
    /// [`WriteGroup::sync`].
    fn begin_writes(&self) -> Result<Box<dyn WriteGroup + '_>>;
    /// Every object under `prefix` (a key prefix ending in `/`, or empty), recursively.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectEntry>>;
    /// The names of the "directories" directly under `prefix` (ending in `/`, or empty).
    fn list_dirs(&self, prefix: &str) -> Result<Vec<String>>;
    /// Removes `key`; absent is fine.
    fn delete(&self, key: &str) -> Result<()>;
    /// Removes everything under `prefix` (ending in `/`).
    fn delete_prefix(&self, prefix: &str) -> Result<()>;
    /// Removes a snapshot folder (`prefix`) that has no info file: a failed or interrupted
    /// backup's leftover. The caller holds the location lock. Where the store has no lock (S3),
    /// another writer may be between its claim (`meta.json`) and its commit: a folder with an
    /// object younger than [`StoreOptions::claim_grace`] is left alone and
    /// [`BackupError::ObjectExists`] names that object.
    fn remove_leftover(&self, prefix: &str) -> Result<()>;
    /// Files copied at a time by a backup or restore.
    fn parallelism(&self) -> usize;
    /// The last connectivity error (`"<time>: <error>"`) for SHOW REPOSITORIES' `ErrMsg`,
    /// `None` while the location is reachable.
    fn last_error(&self) -> Option<String>;
    /// Takes the location's lock without waiting, across processes: `exclusive` for a writer
    /// (a backup from its leftover check to its commit, DROP SNAPSHOT), shared for a reader
    /// (RESTORE's download, VERIFY). `Ok(None)` while another holder's lock conflicts. Held
    /// until the returned guard is dropped.
    fn try_lock(&self, exclusive: bool) -> Result<Option<LocationLock>>;
}

/// The location lock of [`RepoStore::try_lock`]; released when dropped.
#[derive(Debug)]
pub struct LocationLock {
    /// The locked file (a directory's `.shale_lock`); `None` where the store has no lock.
    _file: Option<std::fs::File>,
}

impl LocationLock {
    /// A lock that holds nothing: for stores without a lock, and readers of a location that
    /// no writer has ever locked.
    pub fn none() -> LocationLock {
        LocationLock { _file: None }
    }
}

/// The lock file at a directory repository's root.
pub const LOCK_FILE: &str = ".shale_lock";

/// Uploads made visible and durable together, then claimed and committed: the whole of a
/// backup's write protocol, so that each kind of store pays as few device flushes as its
/// guarantees allow.
///
/// 1. [`WriteGroup::create`] for each data object; [`WriteGroup::create_once`] stages the
///    objects that claim a name (`meta.json`) and [`WriteGroup::prepare_commit`] the one whose
///    appearance commits (the info file).
/// 2. [`WriteGroup::sync`]: every finished upload becomes durable and visible, then the claims
///    are created, each only if absent.
/// 3. [`WriteGroup::commit`]: the commit object is created, only if absent, and is durable when
///    it returns.
///
/// On a directory an upload and a staged object are temporary files written without fsync;
/// `sync` runs one file-system sync (every byte, the staged objects' too), renames the uploads
/// into place, links the claims (`link(2)`: fails if the name exists), and runs a second
/// file-system sync (the names and new directories); `commit` links the commit object and
/// fsyncs its folder. Three device flushes for the whole backup, where an fsync per file and
/// per directory paid two per file and `meta.json` and the info file three each. On S3 an
/// upload is visible and durable when its PUT or multipart upload completes
/// ([`ObjectWriter::finish`]), a claim and the commit are PUTs with `If-None-Match: *`.
///
/// Whatever the group has not made visible when it is dropped (temporary files, staged
/// objects) is removed; what it made visible stays (the caller removes a failed snapshot).
pub trait WriteGroup: Send + Sync + fmt::Debug {
    /// A streaming upload of `key`; complete after [`ObjectWriter::finish`], visible and durable
    /// (on a directory) only after [`WriteGroup::sync`].
    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>>;
    /// Stages a small object that [`WriteGroup::sync`] creates after every upload, only if
    /// absent.
    fn create_once(&self, key: &str, bytes: &[u8]) -> Result<()>;
    /// Stages the commit object, created by [`WriteGroup::commit`].
    fn prepare_commit(&self, key: &str, bytes: &[u8]) -> Result<()>;
    /// Makes every upload finished in this group visible (complete) and durable, then creates
    /// the staged claims. [`BackupError::ObjectExists`] if a claim's key exists. `Ok` means the
    /// claims are this group's; on `Err` the group has created none of them (it removes a claim
    /// it linked if the sync after the link fails).
    fn sync(&self) -> Result<()>;
    /// After [`WriteGroup::sync`]: creates the commit object, only if absent
    /// ([`BackupError::ObjectExists`]); durable when this returns `Ok`.
    fn commit(&self) -> Result<()>;
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
    /// Foreground commits the uploads yield to before each chunk, for at most the duration.
    yield_to: Option<(Arc<Foreground>, Duration)>,
    /// Files at least this large are flushed alone when finished ([`OWN_FLUSH_BYTES`]).
    own_flush_bytes: u64,
    /// Smaller files share a flush once this many of their bytes wait ([`SHARED_FLUSH_BYTES`]).
    shared_flush_bytes: u64,
}

impl FsStore {
    /// The directory `root` through `storage`, copying `files_in_flight` files at a time.
    pub fn new(storage: Arc<dyn Storage>, root: PathBuf, files_in_flight: usize) -> FsStore {
        FsStore {
            storage,
            root,
            files_in_flight,
            yield_to: None,
            own_flush_bytes: OWN_FLUSH_BYTES,
            shared_flush_bytes: SHARED_FLUSH_BYTES,
        }
    }

    /// Uploads of `own` bytes or more are flushed (fdatasync) alone when finished; smaller ones
    /// share a flush of the file system once `shared` of their bytes wait, or at the group's
    /// sync. The defaults are [`OWN_FLUSH_BYTES`] and [`SHARED_FLUSH_BYTES`].
    pub fn flushing(mut self, own: u64, shared: u64) -> FsStore {
        self.own_flush_bytes = own;
        self.shared_flush_bytes = shared;
        self
    }

    /// Uploads hold each chunk back while one of `foreground`'s commits is in progress, for at
    /// most `max` per chunk (the repository usually shares a disk with the engine).
    pub fn yielding_to(mut self, foreground: Arc<Foreground>, max: Duration) -> FsStore {
        self.yield_to = (!max.is_zero()).then_some((foreground, max));
        self
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

/// `<path>.tmp<pid>-<n>`: unique among this process's writers and every other process's.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| BackupError::corrupt(path, "path has no file name"))?
        .to_string_lossy();
    Ok(path.with_file_name(format!(
        "{name}.tmp{}-{}",
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    )))
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
        // A complete, durable temp file gets the final name by link(2), which fails if the name
        // exists: atomic against every writer, in this process or another.
        let path = self.path(key);
        let parent = parent_of(&path)?;
        self.storage.create_dir_all(parent)?;
        let tmp = temp_path(&path)?;
        let linked = (|| -> Result<bool> {
            let mut file = self.storage.create(&tmp)?;
            file.write_all(bytes)?;
            file.sync()?;
            drop(file);
            Ok(self.storage.link_if_absent(&tmp, &path)?)
        })();
        let removed = self.storage.remove_file(&tmp);
        if !linked? {
            return Err(BackupError::ObjectExists {
                object: path.display().to_string(),
            });
        }
        removed?;
        self.storage.sync_dir(parent)?;
        // A folder just created (snapshots/<name>/) must be durable in its parent too.
        if parent != self.root
            && let Some(grandparent) = parent.parent()
        {
            self.storage.sync_dir(grandparent)?;
        }
        Ok(())
    }

    fn begin_writes(&self) -> Result<Box<dyn WriteGroup + '_>> {
        Ok(Box::new(FsWriteGroup {
            store: self,
            finished: Arc::new(Finished {
                sync: self.storage.open_sync_fs(&self.root)?,
                own_flush_bytes: self.own_flush_bytes,
                shared_flush_bytes: self.shared_flush_bytes,
                state: Mutex::new(FinishedState::default()),
            }),
            claims: Mutex::new(Vec::new()),
            commit: Mutex::new(None),
            staged_dirs: Mutex::new(Vec::new()),
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
        if self.storage.file_len(&path)?.is_none() {
            // Nothing to remove, nothing to make durable (a new snapshot's folder, every backup).
            return Ok(());
        }
        self.storage.remove_dir_all(&path)?;
        let parent = parent_of(&path)?;
        if self.storage.list_dir(parent).is_ok_and(|_| parent.is_dir()) {
            self.storage.sync_dir(parent)?;
        }
        Ok(())
    }

    fn remove_leftover(&self, prefix: &str) -> Result<()> {
        // The location lock, held, keeps every other writer out.
        self.delete_prefix(prefix)
    }

    fn parallelism(&self) -> usize {
        self.files_in_flight.max(1)
    }

    fn try_lock(&self, exclusive: bool) -> Result<Option<LocationLock>> {
        // flock(2), not through `Storage`: a lock changes no file content, and it is released
        // by the kernel when its holder dies, so a crashed process never leaves it held.
        let path = self.root.join(LOCK_FILE);
        let io = |op, e| BackupError::from(shale_engine::Error::io(op, &path, e));
        let file = if exclusive {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        } else {
            // A reader never creates it (a read-only repository may be on read-only media);
            // without one no writer has locked this location yet.
            match std::fs::File::open(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(Some(LocationLock::none()));
                }
                other => other,
            }
        }
        .map_err(|e| io("open", e))?;
        let taken = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match taken {
            Ok(()) => Ok(Some(LocationLock { _file: Some(file) })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io("flock", e)),
        }
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

/// [`WriteGroup`] of a directory: temporary files made durable as they are finished (see
/// [`Finished`]), renamed (uploads) or linked (claims) into place, then one syncfs of the
/// repository's file system for the names, the new folders and the claim's and commit's bytes,
/// then the commit linked and its folder fsynced.
#[derive(Debug)]
struct FsWriteGroup<'a> {
    store: &'a FsStore,
    /// Finished uploads not yet renamed, and the group's file-system sync.
    finished: Arc<Finished>,
    /// (temporary, final) paths of staged claims not yet linked.
    claims: Mutex<Vec<(PathBuf, PathBuf)>>,
    /// (temporary, final) path of the staged commit object.
    commit: Mutex<Option<(PathBuf, PathBuf)>>,
    /// Folders the staged objects went into (`snapshots/<name>/`): removed on drop if the
    /// group leaves them empty, so a failed sync leaves no folder to list.
    staged_dirs: Mutex<Vec<PathBuf>>,
}

impl FsWriteGroup<'_> {
    /// Writes `bytes` to a new temporary file beside `key`'s path (creating its folder), without
    /// fsync: the group's sync makes its bytes durable together with its name, which is safe for
    /// the two staged objects. A claim (`meta.json`) whose bytes were lost in a crash names a
    /// snapshot without an info file, a leftover; the commit (the info file) is linked only
    /// after that sync.
    fn stage(&self, key: &str, bytes: &[u8]) -> Result<(PathBuf, PathBuf)> {
        let target = self.store.path(key);
        let parent = parent_of(&target)?;
        self.store.storage.create_dir_all(parent)?;
        let mut dirs = lock(&self.staged_dirs);
        if !dirs.iter().any(|d| d == parent) {
            dirs.push(parent.to_path_buf());
        }
        drop(dirs);
        let tmp = temp_path(&target)?;
        let written = (|| -> Result<()> {
            let mut file = self.store.storage.create(&tmp)?;
            file.write_all(bytes)?;
            Ok(())
        })();
        if let Err(e) = written {
            let _ = self.store.storage.remove_file(&tmp);
            return Err(e);
        }
        Ok((tmp, target))
    }

    /// Links a staged temporary file to its final name, only if absent; removes the temp.
    fn link(&self, tmp: &Path, target: &Path) -> Result<()> {
        let linked = self.store.storage.link_if_absent(tmp, target);
        let removed = self.store.storage.remove_file(tmp);
        if !linked? {
            return Err(BackupError::ObjectExists {
                object: target.display().to_string(),
            });
        }
        Ok(removed?)
    }
}

impl WriteGroup for FsWriteGroup<'_> {
    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        let target = self.store.path(key);
        let parent = parent_of(&target)?.to_path_buf();
        self.store.storage.create_dir_all(&parent)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(
            "{name}.tmp{}-{}",
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let file = self.store.storage.create(&tmp)?;
        Ok(Box::new(FsWriter {
            storage: self.store.storage.clone(),
            yield_to: self.store.yield_to.clone(),
            file: Some(file),
            tmp,
            target,
            finished: self.finished.clone(),
            written: 0,
        }))
    }

    fn create_once(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let staged = self.stage(key, bytes)?;
        lock(&self.claims).push(staged);
        Ok(())
    }

    fn prepare_commit(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let staged = self.stage(key, bytes)?;
        if let Some((old, _)) = lock(&self.commit).replace(staged) {
            let _ = self.store.storage.remove_file(&old);
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        // Bytes first: a name must never become durable before the bytes it names. The uploads
        // not flushed as they finished are flushed now.
        let (flushed, pending) = {
            let mut state = lock(&self.finished.state);
            state.pending_bytes = 0;
            (
                std::mem::take(&mut state.flushed),
                std::mem::take(&mut state.pending),
            )
        };
        if !pending.is_empty()
            && let Err(e) = self.finished.sync.sync()
        {
            for (tmp, _) in flushed.iter().chain(&pending) {
                let _ = self.store.storage.remove_file(tmp);
            }
            return Err(e.into());
        }
        let finished: Vec<_> = flushed.into_iter().chain(pending).collect();
        let mut renamed = 0;
        let result = (|| -> Result<()> {
            for (tmp, target) in &finished {
                self.store.storage.rename(tmp, target)?;
                renamed += 1;
            }
            Ok(())
        })();
        for (tmp, _) in &finished[renamed..] {
            let _ = self.store.storage.remove_file(tmp);
        }
        result?;
        // The claims come after the uploads they describe; a claim that exists is another
        // writer's, and the claims linked before it are undone.
        let claims = std::mem::take(&mut *lock(&self.claims));
        let mut linked: Vec<&Path> = Vec::new();
        let mut result = Ok(());
        for (tmp, target) in &claims {
            if result.is_ok() {
                result = self.link(tmp, target);
                if result.is_ok() {
                    linked.push(target);
                }
            } else {
                let _ = self.store.storage.remove_file(tmp);
            }
        }
        // Then the names and new directories, the claims' among them, and the staged objects'
        // bytes.
        let result = result.and_then(|()| Ok(self.finished.sync.sync()?));
        if result.is_err() {
            for target in linked {
                let _ = self.store.storage.remove_file(target);
            }
        }
        result
    }

    fn commit(&self) -> Result<()> {
        let (tmp, target) = lock(&self.commit)
            .take()
            .ok_or_else(|| BackupError::corrupt(&self.store.root, "no commit object staged"))?;
        // Its bytes were made durable by the group's sync; its folder entry once linked.
        self.link(&tmp, &target)?;
        self.store.storage.sync_dir(parent_of(&target)?)?;
        Ok(())
    }
}

impl Drop for FsWriteGroup<'_> {
    fn drop(&mut self) {
        let mut finished = lock(&self.finished.state);
        let uploads = std::mem::take(&mut finished.flushed)
            .into_iter()
            .chain(std::mem::take(&mut finished.pending));
        drop(finished);
        let staged = uploads
            .chain(lock(&self.claims).drain(..))
            .chain(lock(&self.commit).take())
            .collect::<Vec<_>>();
        for (tmp, _) in staged {
            let _ = self.store.storage.remove_file(&tmp);
        }
        for dir in lock(&self.staged_dirs).drain(..) {
            if self
                .store
                .storage
                .list_dir(&dir)
                .is_ok_and(|e| e.is_empty())
            {
                let _ = self.store.storage.remove_dir_all(&dir);
            }
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A file this large is flushed on its own when it is finished (fdatasync); smaller ones share
/// a syncfs once [`SHARED_FLUSH_BYTES`] of them are waiting, or at the group's sync. One flush
/// costs about as much as another on a small file (a journal commit and a device flush), so an
/// incremental backup's few small files share one, while a full backup's flushes are spread
/// over its copy, a file's worth each: one flush of everything at the end held every load's
/// fsync behind all of a backup's bytes at once (load p99 during backups 2.1× idle, 1.47× with
/// the spread flushes, in the same compare harness).
pub const OWN_FLUSH_BYTES: u64 = 1 << 20;
/// Bytes of small finished files that wait for one shared flush.
pub const SHARED_FLUSH_BYTES: u64 = 4 << 20;

/// The finished uploads of a [`FsWriteGroup`], not yet renamed into place.
#[derive(Debug)]
struct Finished {
    /// The repository's file system, opened before the first upload so that a sync reports
    /// every write-back error of the group's files.
    sync: Box<dyn FileSystemSync>,
    own_flush_bytes: u64,
    shared_flush_bytes: u64,
    state: Mutex<FinishedState>,
}

#[derive(Debug, Default)]
struct FinishedState {
    /// (temporary, final) paths of uploads whose bytes are durable.
    flushed: Vec<(PathBuf, PathBuf)>,
    /// Small uploads waiting for a shared flush, and their bytes.
    pending: Vec<(PathBuf, PathBuf)>,
    pending_bytes: u64,
}

/// Writes a temporary file; `finish` makes its bytes durable (or queues it for a shared flush)
/// and hands it to its group, which renames it into place on `sync`: until then it is
/// invisible, and a crash leaves a temporary file (swept by DROP SNAPSHOT), never incomplete
/// bytes under a data file's name.
struct FsWriter {
    storage: Arc<dyn Storage>,
    yield_to: Option<(Arc<Foreground>, Duration)>,
    file: Option<Box<dyn WritableFile>>,
    tmp: PathBuf,
    target: PathBuf,
    finished: Arc<Finished>,
    written: u64,
}

impl FsWriter {
    fn wait_for_foreground(&self) {
        if let Some((foreground, max)) = &self.yield_to {
            foreground.yield_to(*max);
        }
    }
}

impl ObjectWriter for FsWriter {
    fn write_all(&mut self, data: &[u8], _check: &dyn Fn() -> Result<()>) -> Result<()> {
        if self.file.is_some() {
            self.wait_for_foreground();
        }
        match self.file.as_mut() {
            Some(f) => {
                f.write_all(data)?;
                self.written += data.len() as u64;
                // Each chunk's write-back starts now and the previous one's is waited for: a
                // backup keeps a few chunks per file in the device queue, not the whole file,
                // so other writers' fsyncs are not stuck behind it.
                Ok(f.pace_writeback()?)
            }
            None => Err(BackupError::corrupt(&self.tmp, "write after finish")),
        }
    }

    fn finish(mut self: Box<Self>, _check: &dyn Fn() -> Result<()>) -> Result<()> {
        let Some(mut file) = self.file.take() else {
            return Err(BackupError::corrupt(&self.tmp, "finished twice"));
        };
        let upload = (self.tmp.clone(), self.target.clone());
        if self.written >= self.finished.own_flush_bytes {
            // A flush waits out a foreground commit first, as each chunk's write does.
            self.wait_for_foreground();
            if let Err(e) = file.sync() {
                drop(file);
                let _ = self.storage.remove_file(&self.tmp);
                return Err(e.into());
            }
            lock(&self.finished.state).flushed.push(upload);
            return Ok(());
        }
        drop(file);
        let mut state = lock(&self.finished.state);
        state.pending.push(upload);
        state.pending_bytes += self.written;
        if state.pending_bytes < self.finished.shared_flush_bytes {
            return Ok(());
        }
        let batch = std::mem::take(&mut state.pending);
        state.pending_bytes = 0;
        drop(state);
        self.wait_for_foreground();
        let synced = self.finished.sync.sync();
        let mut state = lock(&self.finished.state);
        match synced {
            Ok(()) => {
                state.flushed.extend(batch);
                Ok(())
            }
            // Back in the queue, so the group removes them when it is dropped.
            Err(e) => {
                state.pending.extend(batch);
                Err(e.into())
            }
        }
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
    /// On S3 (no location lock), how long a snapshot folder without an info file counts as
    /// another writer's claim on the name rather than a leftover. A writer's claim and commit
    /// are two PUTs, seconds apart even with every retry; a crash between them blocks the name
    /// this long.
    pub claim_grace: Duration,
    /// Files copied at a time to or from a local directory: two, so that copying overlaps
    /// reading, checksumming and waiting for the disk (1 copied at 37 MiB/s, 2 at 101 MiB/s in
    /// the backup_s3 bench), and no more, since each keeps its write-back queued in front of
    /// the engine's fsyncs (see `BackupsOptions::chunk_bytes` for the figures: 4 files made a
    /// small load 4× slower during a backup). Fault-injection tests that fail "the n-th
    /// storage operation" set 1 so the order is the same in every run.
    pub fs_files_in_flight: usize,
    /// On a directory, an upload at least this large is flushed (fdatasync) alone when it is
    /// finished; see [`OWN_FLUSH_BYTES`].
    pub fs_own_flush_bytes: u64,
    /// On a directory, smaller uploads share one flush of the file system once this many of
    /// their bytes wait (and at the end of the copy); see [`SHARED_FLUSH_BYTES`].
    pub fs_shared_flush_bytes: u64,
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
            fs_files_in_flight: 2,
            fs_own_flush_bytes: OWN_FLUSH_BYTES,
            fs_shared_flush_bytes: SHARED_FLUSH_BYTES,
            claim_grace: Duration::from_secs(600),
        }
    }
}

/// The property keys an S3 repository accepts (StarRocks' names).
pub const S3_PROPERTIES: [&str; 7] = [
    "aws.s3.access_key",
    "aws.s3.secret_key",
    "aws.s3.endpoint",
    "aws.s3.region",
    "aws.s3.enable_path_style_access",
    "aws.s3.use_instance_profile",
    "aws.s3.use_aws_sdk_default_behavior",
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
