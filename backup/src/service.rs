//! [`Backups`]: the service that owns repositories and jobs for one engine.
//!
//! Invariants:
//! - At most one unfinished job per database; only the last job of each database is kept.
//! - A job's record is written to `<data dir>/jobs.json` (atomically) when it is submitted and
//!   when it ends. A job found unfinished when the service opens is FINISHED if its commit is
//!   there (a restore's commit key in the engine catalog; a backup's info file in a directory
//!   repository), else CANCELLED ("interrupted: the process stopped"). So the end record is
//!   fsynced only when that check could not recover it: a backup to S3, or a cancelled job.
//! - Jobs that touch a repository's files hold that repository's lock, so DROP SNAPSHOT's sweep
//!   never races a backup that is about to reference an existing data file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
#[cfg(feature = "s3")]
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use shale_engine::Engine;

use crate::error::{BackupError, Result};
use crate::format::{format_timestamp, now_ms};
use crate::job::{BackupJobInfo, Job, JobKind, JobProgress, JobRecord, JobState, RestoreJobInfo};
use crate::repository::{
    self, DropReport, RepositoryDef, RepositoryInfo, SnapshotDetails, SnapshotListing, VerifyReport,
};
#[cfg(feature = "s3")]
use crate::s3::{OwnedRuntime, S3Store};
use crate::store::{FsStore, LocationLock, RepoStore, StoreOptions};

/// The catalog key prefix of repository definitions.
pub const REPOSITORY_META_PREFIX: &str = "repository/";
/// The job records file in the engine's data directory.
pub const JOBS_FILE: &str = "jobs.json";
/// Default job timeout (StarRocks' `backup_job_default_timeout_ms`), seconds.
pub const TIMEOUT_DEFAULT_SECS: u64 = 86_400;
/// Smallest timeout a user may set, seconds.
pub const TIMEOUT_MIN_SECS: u64 = 600;

/// Called by a job's worker when the job enters a state (after the state is persisted); tests
/// use it to stop a job in a chosen state.
pub type StateHook = Arc<dyn Fn(u64, JobState) + Send + Sync>;

/// How a [`Backups`] service runs.
#[derive(Clone)]
pub struct BackupsOptions {
    /// Worker threads running jobs.
    pub workers: usize,
    /// Bytes copied between two checks of cancel and deadline; on a directory also the unit of
    /// write-back pacing (each file in flight keeps at most two chunks queued at the device).
    pub chunk_bytes: usize,
    /// Test hook: called on every state change.
    pub state_hook: Option<StateHook>,
    /// Test hook: every job's timeout, overriding the `timeout` property (which cannot go
    /// below 600 s).
    pub timeout_override: Option<Duration>,
    /// Object-storage retries, timeouts and transfer sizes.
    pub store: StoreOptions,
    /// Longest wait per chunk of a copy to a directory repository (BACKUP) or into the engine
    /// (RESTORE) while a load or commit of the engine is making its files durable
    /// ([`shale_engine::Foreground`]); zero: never wait.
    pub yield_max: Duration,
}

impl Default for BackupsOptions {
    fn default() -> Self {
        BackupsOptions {
            workers: 2,
            // 1 MiB × 2 files in flight (StoreOptions::fs_files_in_flight) keeps at most 4 MiB
            // of a backup's write-back queued in front of other writers' fsyncs. 20 M-row
            // compare, 2 runs each, load p99 during back-to-back backups / idle and full backup
            // / cp -r + sync: 4 MiB × 4 files 4.08 and 1.17; 2 MiB × 2 1.93 and 1.77;
            // 1 MiB × 2 1.28 and 0.70; 512 KiB × 2 1.24 and 0.94; 1 MiB × 1 0.98 and 1.59.
            chunk_bytes: 1 << 20,
            state_hook: None,
            timeout_override: None,
            store: StoreOptions::default(),
            yield_max: Duration::from_millis(50),
        }
    }
}

impl fmt::Debug for BackupsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupsOptions")
            .field("workers", &self.workers)
            .field("chunk_bytes", &self.chunk_bytes)
            .field("state_hook", &self.state_hook.is_some())
            .field("timeout_override", &self.timeout_override)
            .field("store", &self.store)
            .field("yield_max", &self.yield_max)
            .finish()
    }
}

/// A table named in BACKUP or RESTORE: optional partitions, optional alias (RESTORE only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRef {
    /// Table name (in the snapshot, for RESTORE).
    pub table: String,
    /// Partitions; `None` = all.
    pub partitions: Option<Vec<String>>,
    /// RESTORE `AS alias`.
    pub alias: Option<String>,
}

impl TableRef {
    /// All partitions of `table`, no alias.
    pub fn new(table: impl Into<String>) -> TableRef {
        TableRef {
            table: table.into(),
            partitions: None,
            alias: None,
        }
    }

    /// Only these partitions.
    pub fn partitions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, p: I) -> TableRef {
        self.partitions = Some(p.into_iter().map(Into::into).collect());
        self
    }

    /// Restore under another name.
    pub fn alias(mut self, alias: impl Into<String>) -> TableRef {
        self.alias = Some(alias.into());
        self
    }
}

type Task = Box<dyn FnOnce() + Send>;

#[derive(Debug)]
pub(crate) struct Inner {
    pub engine: Engine,
    pub options: BackupsOptions,
    repositories: Mutex<BTreeMap<String, RepositoryDef>>,
    repository_locks: Mutex<BTreeMap<String, Arc<Mutex<()>>>>,
    jobs: Mutex<BTreeMap<String, Arc<Job>>>,
    /// Object-storage clients by repository name (they keep the last connectivity error).
    object_stores: Mutex<BTreeMap<String, Arc<dyn RepoStore>>>,
    /// Started on first use of an object-storage repository.
    #[cfg(feature = "s3")]
    runtime: OnceLock<Arc<OwnedRuntime>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// BACKUP, RESTORE, repositories and snapshots for one engine.
///
/// ```no_run
/// # use shale_backup::*;
/// # fn main() -> Result<()> {
/// let engine = shale_engine::Engine::open("/tmp/data")?;
/// let backups = Backups::open(engine)?;
/// backups.create_repository("repo", "file:///tmp/repo", false, Default::default())?;
/// let job = backups.backup("shop", "snap1", "repo", vec![], Default::default())?;
/// backups.wait(job, std::time::Duration::from_secs(60));
/// # Ok(()) }
/// ```
pub struct Backups {
    inner: Arc<Inner>,
    sender: Option<Sender<Task>>,
    workers: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Backups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backups")
            .field("data_dir", &self.inner.engine.data_dir())
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl Backups {
    /// Opens the service with default options.
    pub fn open(engine: Engine) -> Result<Backups> {
        Backups::open_with(engine, BackupsOptions::default())
    }

    /// Opens the service: loads repositories from the engine catalog and job records from
    /// `jobs.json`, marking unfinished jobs CANCELLED.
    pub fn open_with(engine: Engine, options: BackupsOptions) -> Result<Backups> {
        let mut repositories = BTreeMap::new();
        for (key, value) in &engine.snapshot().meta {
            if let Some(name) = key.strip_prefix(REPOSITORY_META_PREFIX) {
                let def: RepositoryDef = serde_json::from_str(value).map_err(|e| {
                    BackupError::corrupt(
                        engine.data_dir(),
                        format!("repository record {name}: {e}"),
                    )
                })?;
                repositories.insert(name.to_string(), def);
            }
        }
        let jobs_path = engine.data_dir().join(JOBS_FILE);
        let mut jobs = BTreeMap::new();
        let mut changed = false;
        if engine.storage().file_len(&jobs_path)?.is_some() {
            let bytes = engine.storage().read(&jobs_path)?;
            let records: Vec<JobRecord> = crate::format::decode_json(&jobs_path, &bytes)?;
            for mut r in records {
                if !r.state.is_final()
                    && committed_before_stop(&engine, &repositories, &options, &r)
                {
                    // The process stopped after the job's commit and before its record said
                    // so: the data is there, the job finished.
                    r.state = JobState::Finished;
                    r.status = "[OK]".into();
                    r.finished_time_ms = Some(now_ms());
                    changed = true;
                } else if !r.state.is_final() {
                    r.state = JobState::Cancelled;
                    r.status = format!("[COMMON_ERROR, msg: {}]", BackupError::Interrupted);
                    r.finished_time_ms = Some(now_ms());
                    changed = true;
                }
                jobs.insert(r.db.clone(), Arc::new(Job::new(r, None)));
            }
        }
        let inner = Arc::new(Inner {
            engine,
            options: options.clone(),
            repositories: Mutex::new(repositories),
            repository_locks: Mutex::new(BTreeMap::new()),
            jobs: Mutex::new(jobs),
            object_stores: Mutex::new(BTreeMap::new()),
            #[cfg(feature = "s3")]
            runtime: OnceLock::new(),
        });
        if changed {
            inner.persist(true)?;
        }
        let (sender, receiver) = crossbeam_channel::unbounded::<Task>();
        let workers = (0..options.workers.max(1))
            .map(|_| {
                let receiver = receiver.clone();
                std::thread::spawn(move || {
                    for task in receiver {
                        task();
                    }
                })
            })
            .collect();
        Ok(Backups {
            inner,
            sender: Some(sender),
            workers,
        })
    }

    /// The engine served.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    // ---- Repositories ---------------------------------------------------------------------

    /// CREATE [READ ONLY] REPOSITORY `name` ON LOCATION `location` (a directory path, a
    /// `file://` URI, or `s3://bucket/prefix` / `s3a://...` with StarRocks' `aws.s3.*`
    /// properties). An existing shale repository at the location is adopted with its
    /// snapshots. The location is reached now: wrong credentials or a missing bucket fail here.
    pub fn create_repository(
        &self,
        name: &str,
        location: &str,
        read_only: bool,
        properties: BTreeMap<String, String>,
    ) -> Result<RepositoryInfo> {
        shale_engine::names::validate("repository", name)?;
        let mut repositories = lock(&self.inner.repositories);
        if repositories.contains_key(name) {
            return Err(BackupError::RepositoryExists { name: name.into() });
        }
        if crate::store::parse_s3_location(location).is_none() {
            repository::prepare_fs_location(&**self.inner.engine.storage(), location, read_only)?;
        }
        let store = self.inner.open_store(location, &properties)?;
        let create_time_ms = repository::init_location(&*store, name, location, read_only)?;
        if !read_only && crate::store::parse_s3_location(location).is_none() {
            repository::prepare_data_dirs(&**self.inner.engine.storage(), location)?;
        }
        let def = RepositoryDef {
            id: self.inner.engine.allocate_ids(1),
            name: name.to_string(),
            location: location.to_string(),
            read_only,
            properties,
            create_time_ms,
        };
        let value = serde_json::to_string(&def)
            .map_err(|e| BackupError::corrupt(location, e.to_string()))?;
        self.inner
            .engine
            .put_meta(&format!("{REPOSITORY_META_PREFIX}{name}"), Some(value))?;
        let info = repository_info(&def, &*store);
        if def.is_object_storage() {
            lock(&self.inner.object_stores).insert(name.to_string(), store);
        }
        repositories.insert(name.to_string(), def);
        Ok(info)
    }

    /// DROP REPOSITORY: forgets the definition; the files at the location stay.
    pub fn drop_repository(&self, name: &str) -> Result<()> {
        let mut repositories = lock(&self.inner.repositories);
        if !repositories.contains_key(name) {
            return Err(BackupError::RepositoryMissing);
        }
        let busy = lock(&self.inner.jobs).values().any(|j| {
            let r = j.lock();
            r.repository == name && !r.state.is_final()
        });
        if busy {
            return Err(BackupError::RepositoryInUse { name: name.into() });
        }
        self.inner
            .engine
            .put_meta(&format!("{REPOSITORY_META_PREFIX}{name}"), None)?;
        repositories.remove(name);
        lock(&self.inner.object_stores).remove(name);
        Ok(())
    }

    /// SHOW REPOSITORIES. `ErrMsg` is the last connectivity error (object storage) or why the
    /// directory is unusable (local).
    pub fn repositories(&self) -> Vec<RepositoryInfo> {
        let defs: Vec<RepositoryDef> = lock(&self.inner.repositories).values().cloned().collect();
        defs.iter()
            .map(|def| match self.inner.store(def) {
                Ok(store) => repository_info(def, &*store),
                Err(e) => {
                    let mut info = repository_info_with(def, None);
                    info.err_msg = Some(format!(
                        "{}: {e}",
                        crate::format::format_show_time(now_ms())
                    ));
                    info
                }
            })
            .collect()
    }

    /// The directory of a repository (for an object-storage one, its location as a path).
    pub fn repository_root(&self, name: &str) -> Result<PathBuf> {
        Ok(self.inner.repository(name)?.root())
    }

    /// The store holding a repository's files.
    pub fn repository_store(&self, name: &str) -> Result<Arc<dyn RepoStore>> {
        let def = self.inner.repository(name)?;
        self.inner.store(&def)
    }

    // ---- Snapshots ------------------------------------------------------------------------

    /// SHOW SNAPSHOT ON `repository`.
    pub fn list_snapshots(&self, repository: &str) -> Result<Vec<SnapshotListing>> {
        let store = self.repository_store(repository)?;
        repository::list_snapshots(&*store)
    }

    /// Details of one snapshot (`timestamp` may be omitted when there is one).
    pub fn snapshot_details(
        &self,
        repository: &str,
        snapshot: &str,
        timestamp: Option<&str>,
    ) -> Result<SnapshotDetails> {
        let store = self.repository_store(repository)?;
        let loaded = repository::load_snapshot(&*store, snapshot, timestamp)?;
        Ok(repository::details(&loaded))
    }

    /// The `meta.json` of a snapshot, checked against its info file.
    pub fn snapshot_meta(
        &self,
        repository: &str,
        snapshot: &str,
        timestamp: Option<&str>,
    ) -> Result<crate::format::SnapshotMeta> {
        let store = self.repository_store(repository)?;
        Ok(repository::load_snapshot(&*store, snapshot, timestamp)?.meta)
    }

    /// DROP SNAPSHOT: removes the snapshot and the data files no other snapshot uses.
    pub fn drop_snapshot(&self, repository: &str, snapshot: &str) -> Result<DropReport> {
        let def = self.inner.repository(repository)?;
        if def.read_only {
            return Err(BackupError::RepositoryReadOnly {
                name: repository.into(),
            });
        }
        let store = self.inner.store(&def)?;
        let repo_lock = self.inner.repository_lock(repository);
        let _guard = acquire(&repo_lock, &*store, true, || Ok(()))?;
        repository::drop_snapshot(&*store, snapshot)
    }

    /// VERIFY: checks every data file of a snapshot (size, BLAKE3, CRC-32C; `deep` also decodes
    /// the Parquet and counts rows). Damaged `meta.json` or info files are an `Err`; damaged
    /// data files are listed in the report.
    pub fn verify(
        &self,
        repository: &str,
        snapshot: &str,
        timestamp: Option<&str>,
        deep: bool,
    ) -> Result<VerifyReport> {
        let store = self.repository_store(repository)?;
        // A concurrent DROP SNAPSHOT must not make files vanish under the check.
        let repo_lock = self.inner.repository_lock(repository);
        let _guard = acquire(&repo_lock, &*store, false, || Ok(()))?;
        let loaded = repository::load_snapshot(&*store, snapshot, timestamp)?;
        Ok(repository::verify(&store, &loaded.meta, deep))
    }

    // ---- Jobs -----------------------------------------------------------------------------

    /// BACKUP SNAPSHOT `db`.`snapshot` TO `repository` [ON (tables)] [PROPERTIES]. Returns the
    /// job id at once; the job runs on the worker pool. An empty `tables` means the whole
    /// database.
    pub fn backup(
        &self,
        db: &str,
        snapshot: &str,
        repository: &str,
        tables: Vec<(String, Option<Vec<String>>)>,
        properties: BTreeMap<String, String>,
    ) -> Result<u64> {
        let plan =
            crate::backup::prepare(&self.inner, db, snapshot, repository, tables, properties)?;
        let job = self
            .inner
            .register(JobKind::Backup, db, |id| plan.record(id))?;
        self.spawn(job, move |ctx| crate::backup::run(ctx, plan))
    }

    /// RESTORE SNAPSHOT `db`.`snapshot` FROM `repository` [ON (tables)] [PROPERTIES], into
    /// database `db` (created if missing). Returns the job id at once.
    pub fn restore(
        &self,
        db: &str,
        snapshot: &str,
        repository: &str,
        tables: Vec<TableRef>,
        properties: BTreeMap<String, String>,
    ) -> Result<u64> {
        let plan =
            crate::restore::prepare(&self.inner, db, snapshot, repository, tables, properties)?;
        let job = self
            .inner
            .register(JobKind::Restore, db, |id| plan.record(id))?;
        self.spawn(job, move |ctx| crate::restore::run(ctx, plan))
    }

    fn spawn(
        &self,
        job: Arc<Job>,
        work: impl FnOnce(&JobCtx) -> Result<()> + Send + 'static,
    ) -> Result<u64> {
        let id = job.lock().id;
        let ctx = JobCtx {
            inner: self.inner.clone(),
            job,
        };
        let task: Task = Box::new(move || {
            let result = work(&ctx);
            ctx.finish(result);
        });
        match &self.sender {
            Some(s) => s.send(task).map_err(|_| BackupError::Shutdown)?,
            None => return Err(BackupError::Shutdown),
        }
        Ok(id)
    }

    /// CANCEL BACKUP FROM `db`. Takes effect within one chunk of copying.
    pub fn cancel_backup(&self, db: &str) -> Result<()> {
        self.cancel(db, JobKind::Backup)
    }

    /// CANCEL RESTORE FROM `db`. Takes effect within one chunk; nothing becomes visible.
    pub fn cancel_restore(&self, db: &str) -> Result<()> {
        self.cancel(db, JobKind::Restore)
    }

    fn cancel(&self, db: &str, kind: JobKind) -> Result<()> {
        let jobs = lock(&self.inner.jobs);
        let Some(job) = jobs.get(db).filter(|j| j.lock().kind == kind) else {
            return Err(match kind {
                JobKind::Backup => BackupError::NoBackupJob,
                JobKind::Restore => BackupError::NoRestoreJob,
            });
        };
        let record = job.lock();
        if record.state.is_final() {
            return Err(BackupError::CannotCancel {
                label: record.snapshot.clone(),
                state: record.state.to_string(),
            });
        }
        job.cancel.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// SHOW BACKUP [FROM db]: the last job of each database if it is a backup.
    pub fn show_backup(&self, db: Option<&str>) -> Vec<BackupJobInfo> {
        self.records(db, JobKind::Backup)
            .iter()
            .map(BackupJobInfo::from_record)
            .collect()
    }

    /// SHOW RESTORE [FROM db]: the last job of each database if it is a restore.
    pub fn show_restore(&self, db: Option<&str>) -> Vec<RestoreJobInfo> {
        self.records(db, JobKind::Restore)
            .iter()
            .map(RestoreJobInfo::from_record)
            .collect()
    }

    fn records(&self, db: Option<&str>, kind: JobKind) -> Vec<JobRecord> {
        lock(&self.inner.jobs)
            .iter()
            .filter(|(name, _)| db.is_none_or(|d| d == name.as_str()))
            .map(|(_, j)| j.snapshot())
            .filter(|r| r.kind == kind)
            .collect()
    }

    /// A job's record (with live progress), if it is still the last job of its database.
    pub fn job(&self, job_id: u64) -> Option<JobRecord> {
        self.inner.find(job_id).map(|j| j.snapshot())
    }

    /// A job's live progress.
    pub fn job_progress(&self, job_id: u64) -> Option<JobProgress> {
        self.inner.find(job_id).map(|j| j.progress())
    }

    /// Waits up to `timeout` for a job to finish; returns its last seen state.
    pub fn wait(&self, job_id: u64, timeout: Duration) -> Option<JobState> {
        let until = Instant::now() + timeout;
        let job = self.inner.find(job_id)?;
        let mut record = job.lock();
        loop {
            let now = Instant::now();
            let settled = record.state.is_final() && job.settled.load(Ordering::SeqCst);
            if settled || now >= until {
                return Some(record.state);
            }
            record = job
                .ended
                .wait_timeout(record, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

impl Drop for Backups {
    fn drop(&mut self) {
        for job in lock(&self.inner.jobs).values() {
            job.shutdown.store(true, Ordering::SeqCst);
        }
        self.sender = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn repository_info(def: &RepositoryDef, store: &dyn RepoStore) -> RepositoryInfo {
    repository_info_with(def, store.last_error())
}

fn repository_info_with(def: &RepositoryDef, err_msg: Option<String>) -> RepositoryInfo {
    RepositoryInfo {
        repo_id: def.id,
        repo_name: def.name.clone(),
        create_time: crate::format::format_show_time(def.create_time_ms),
        is_read_only: def.read_only,
        location: def.location.clone(),
        broker: String::new(),
        err_msg,
    }
}

impl Inner {
    /// A store for a location not yet registered (CREATE REPOSITORY).
    fn open_store(
        &self,
        location: &str,
        properties: &BTreeMap<String, String>,
    ) -> Result<Arc<dyn RepoStore>> {
        #[cfg(feature = "s3")]
        if crate::store::parse_s3_location(location).is_some() {
            let runtime = match self.runtime.get() {
                Some(rt) => rt.clone(),
                None => {
                    let rt = Arc::new(OwnedRuntime::new()?);
                    self.runtime.get_or_init(|| rt).clone()
                }
            };
            let store = S3Store::new(location, properties, runtime, self.options.store.clone())?;
            return Ok(Arc::new(store));
        }
        #[cfg(not(feature = "s3"))]
        if crate::store::parse_s3_location(location).is_some() {
            let _ = properties;
            return Err(BackupError::InvalidLocation {
                location: location.to_string(),
                reason: "this build of shale has no S3 support (shale-backup's `s3` feature)"
                    .to_string(),
            });
        }
        let storage = self.engine.storage().clone();
        // Properties are accepted and kept for local repositories, as before.
        Ok(Arc::new(
            self.fs_store(storage, repository::location_path(location)),
        ))
    }

    /// A directory repository whose uploads yield to the engine's foreground commits.
    fn fs_store(&self, storage: Arc<dyn shale_engine::Storage>, root: PathBuf) -> FsStore {
        let store = &self.options.store;
        FsStore::new(storage, root, store.fs_files_in_flight)
            .yielding_to(self.engine.foreground(), self.options.yield_max)
            .flushing(store.fs_own_flush_bytes, store.fs_shared_flush_bytes)
    }

    /// The store of a registered repository.
    pub(crate) fn store(&self, def: &RepositoryDef) -> Result<Arc<dyn RepoStore>> {
        if !def.is_object_storage() {
            return Ok(Arc::new(
                self.fs_store(self.engine.storage().clone(), def.root()),
            ));
        }
        if let Some(s) = lock(&self.object_stores).get(&def.name) {
            return Ok(s.clone());
        }
        let store = self.open_store(&def.location, &def.properties)?;
        Ok(lock(&self.object_stores)
            .entry(def.name.clone())
            .or_insert(store)
            .clone())
    }

    pub(crate) fn repository(&self, name: &str) -> Result<RepositoryDef> {
        lock(&self.repositories)
            .get(name)
            .cloned()
            .ok_or_else(|| BackupError::RepositoryNotFound { name: name.into() })
    }

    pub(crate) fn repository_lock(&self, name: &str) -> Arc<Mutex<()>> {
        lock(&self.repository_locks)
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Whether an unfinished backup writes `snapshot` into `repository`.
    pub(crate) fn backup_running(&self, repository: &str, snapshot: &str) -> bool {
        lock(&self.jobs).values().any(|j| {
            let r = j.lock();
            r.kind == JobKind::Backup
                && !r.state.is_final()
                && r.repository == repository
                && r.snapshot == snapshot
        })
    }

    pub(crate) fn timeout(&self, secs: u64) -> Duration {
        self.options
            .timeout_override
            .unwrap_or(Duration::from_secs(secs))
    }

    fn find(&self, job_id: u64) -> Option<Arc<Job>> {
        lock(&self.jobs)
            .values()
            .find(|j| j.lock().id == job_id)
            .cloned()
    }

    /// Registers a new job for `db` unless one is unfinished, and persists.
    fn register(
        &self,
        kind: JobKind,
        db: &str,
        record: impl FnOnce(u64) -> JobRecord,
    ) -> Result<Arc<Job>> {
        let job = {
            let mut jobs = lock(&self.jobs);
            if jobs.get(db).is_some_and(|j| !j.lock().state.is_final()) {
                return Err(BackupError::JobRunning { db: db.into() });
            }
            let mut r = record(self.engine.allocate_ids(1));
            r.kind = kind;
            let deadline = Instant::now() + self.timeout(r.timeout_secs);
            let job = Arc::new(Job::new(r, Some(deadline)));
            jobs.insert(db.to_string(), job.clone());
            job
        };
        // A record that cannot be written does not stop the job; the next change retries. Not
        // made durable: it survives the process being killed (the job then shows CANCELLED,
        // interrupted), and after a power loss the job is simply not listed, which is what the
        // two device flushes of a durable write would have bought, on every job.
        let _ = self.persist(false);
        Ok(job)
    }

    /// Whether the next open can tell from its commit that the job `r` finished (see
    /// [`committed_before_stop`]).
    fn commit_checkable(&self, r: &JobRecord) -> bool {
        match r.kind {
            JobKind::Restore => true,
            JobKind::Backup => lock(&self.repositories)
                .get(&r.repository)
                .is_some_and(|def| !def.is_object_storage()),
        }
    }

    /// Writes every job record to `jobs.json` atomically; `durable`: and fsynced (file and
    /// directory) before returning.
    pub(crate) fn persist(&self, durable: bool) -> Result<()> {
        let jobs = lock(&self.jobs);
        let records: Vec<JobRecord> = jobs.values().map(|j| j.snapshot()).collect();
        let path = self.engine.data_dir().join(JOBS_FILE);
        let bytes = crate::format::encode_json(&path, &records)?;
        let storage = &**self.engine.storage();
        if durable {
            shale_engine::storage::write_atomic(storage, &path, &bytes)?;
        } else {
            shale_engine::storage::replace_atomic(storage, &path, &bytes)?;
        }
        Ok(())
    }
}

/// What a running job's code sees: the service and its own job.
#[derive(Debug)]
pub(crate) struct JobCtx {
    pub inner: Arc<Inner>,
    pub job: Arc<Job>,
}

impl JobCtx {
    pub fn id(&self) -> u64 {
        self.job.lock().id
    }

    /// Fails if the job was cancelled, the service is stopping, or the deadline passed.
    pub fn check(&self) -> Result<()> {
        if self.job.shutdown.load(Ordering::Relaxed) {
            return Err(BackupError::Interrupted);
        }
        if self.job.cancel.load(Ordering::Relaxed) {
            return Err(BackupError::Cancelled);
        }
        if self.job.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(BackupError::Timeout);
        }
        Ok(())
    }

    /// Moves to `state`: calls the test hook, checks cancel and deadline.
    ///
    /// Not persisted: `jobs.json` is written at submission and at the end. A job found unfinished
    /// on reopen is CANCELLED whatever state it had reached, so writing (and fsyncing twice) the
    /// record at every step bought nothing, and cost an incremental backup most of its time.
    pub fn enter(&self, state: JobState) -> Result<()> {
        self.check()?;
        self.job.lock().state = state;
        if let Some(hook) = &self.inner.options.state_hook {
            hook(self.id(), state);
        }
        self.check()
    }

    /// Sets a time field of the record.
    pub fn stamp(&self, f: impl FnOnce(&mut JobRecord, i64)) {
        f(&mut self.job.lock(), now_ms());
    }

    /// Waits for the repository's locks (this process's and the location's), checking cancel
    /// and deadline meanwhile.
    pub fn lock_repository<'a>(
        &self,
        m: &'a Mutex<()>,
        store: &dyn RepoStore,
        exclusive: bool,
    ) -> Result<RepoGuard<'a>> {
        acquire(m, store, exclusive, || self.check())
    }

    /// Records the outcome: FINISHED, or CANCELLED with StarRocks' status text.
    fn finish(&self, result: Result<()>) {
        let durable = {
            let mut r = self.job.lock();
            let now = now_ms();
            r.finished_time_ms = Some(now);
            match result {
                Ok(()) => {
                    r.state = JobState::Finished;
                    r.status = "[OK]".into();
                }
                Err(e) => {
                    r.status = status_of(&r, &e);
                    r.state = JobState::Cancelled;
                }
            }
            // A FINISHED record lost to a power failure is found again at the next open from
            // the commit itself, when that commit can be checked without the network; two
            // device flushes are most of an incremental backup's time.
            !(r.state == JobState::Finished && self.inner.commit_checkable(&r))
        };
        let _ = self.inner.persist(durable);
        {
            let _record = self.job.lock();
            self.job.settled.store(true, Ordering::SeqCst);
            self.job.ended.notify_all();
        }
        if let Some(hook) = &self.inner.options.state_hook {
            let state = self.job.lock().state;
            hook(self.id(), state);
        }
    }
}

/// Both locks of a repository, held together: this process's mutex (jobs of one service) and
/// the location's lock (other processes and other services on the same location).
#[derive(Debug)]
pub(crate) struct RepoGuard<'a> {
    _location: LocationLock,
    _process: MutexGuard<'a, ()>,
}

/// Takes this process's repository mutex, then the location's lock, polling both every 2 ms
/// and calling `check` (cancel, deadline) between attempts.
pub(crate) fn acquire<'a>(
    m: &'a Mutex<()>,
    store: &dyn RepoStore,
    exclusive: bool,
    check: impl Fn() -> Result<()>,
) -> Result<RepoGuard<'a>> {
    let process = loop {
        match m.try_lock() {
            Ok(g) => break g,
            Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                check()?;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    };
    loop {
        if let Some(location) = store.try_lock(exclusive)? {
            return Ok(RepoGuard {
                _location: location,
                _process: process,
            });
        }
        check()?;
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn status_of(r: &JobRecord, e: &BackupError) -> String {
    match (e, r.kind) {
        (BackupError::Cancelled, JobKind::Backup) => "[COMMON_ERROR, msg: user cancelled]".into(),
        (BackupError::Cancelled, JobKind::Restore) => format!(
            "[COMMON_ERROR, msg: user cancelled, current state: {}]",
            r.state
        ),
        (BackupError::Timeout, JobKind::Backup) => "[TIMEOUT, msg: ]".into(),
        (BackupError::Timeout, JobKind::Restore) => format!(
            "[TIMEOUT, msg: restore job with label: {}  timeout.]",
            r.snapshot
        ),
        (BackupError::ChecksumMismatch { .. } | BackupError::Corrupt { .. }, _) => {
            format!("[BAD_FILE, msg: {e}]")
        }
        _ => format!("[COMMON_ERROR, msg: {e}]"),
    }
}

/// Whether the unfinished job `r` committed before the process stopped: a restore whose
/// commit key in the engine catalog names it, or a backup whose info file (named by its
/// timestamp) is in its directory repository. A backup to object storage is not checked (that
/// would reach the network while opening); its end record is durable instead.
fn committed_before_stop(
    engine: &Engine,
    repositories: &BTreeMap<String, RepositoryDef>,
    options: &BackupsOptions,
    r: &JobRecord,
) -> bool {
    match r.kind {
        JobKind::Restore => engine
            .snapshot()
            .meta
            .get(&crate::restore::restore_commit_key(&r.db))
            .is_some_and(|id| *id == r.id.to_string()),
        JobKind::Backup => {
            let Some(def) = repositories.get(&r.repository) else {
                return false;
            };
            let Some(timestamp) = &r.timestamp else {
                return false;
            };
            if def.is_object_storage() {
                return false;
            }
            let store = FsStore::new(
                engine.storage().clone(),
                def.root(),
                options.store.fs_files_in_flight,
            );
            // A listing that fails (the location is gone) proves nothing: CANCELLED.
            repository::timestamps(&store, &r.snapshot).is_ok_and(|t| t.contains(timestamp))
        }
    }
}

/// Parses the `timeout` property.
pub(crate) fn parse_timeout(value: Option<&String>) -> Result<u64> {
    match value {
        None => Ok(TIMEOUT_DEFAULT_SECS),
        Some(v) => {
            let secs: u64 = v
                .trim()
                .parse()
                .map_err(|_| BackupError::InvalidTimeout { value: v.clone() })?;
            if secs < TIMEOUT_MIN_SECS {
                return Err(BackupError::TimeoutTooSmall);
            }
            Ok(secs)
        }
    }
}

/// The backup timestamp of a job created at `ms`.
pub(crate) fn timestamp_of(ms: i64) -> String {
    format_timestamp(ms)
}
