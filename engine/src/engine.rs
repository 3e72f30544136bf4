//! The engine: opening a data directory, committing changes, loads, snapshots and compaction.
//!
//! # Commit protocol
//! 1. Data first: segment files are written and fsynced (with their directories).
//! 2. One manifest record holding all of a commit's ops is appended to the live log and fsynced.
//!    That fsync is the commit point.
//! 3. The new in-memory [`Version`] is published (one pointer swap); segments the commit removed
//!    are marked obsolete and their files deleted when the last snapshot using them is dropped.
//!
//! When the log passes [`EngineOptions::log_rotate_bytes`], a new log starting with a checkpoint
//! is written and fsynced, then `CURRENT` is replaced atomically (write, fsync, rename, fsync
//! directory), then the old log is deleted.
//!
//! Recovery on open: read `CURRENT`, replay its log (cutting an unfinished tail), then delete
//! every file under `segments/` that the recovered version does not name (uncommitted loads,
//! imports, compactions, and deletions a crash interrupted) and logs other than the live one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::{
    CastOptions, SortColumn, cast_with_options, concat_batches, lexsort_to_indices,
    take_record_batch,
};
use arrow::util::display::FormatOptions;

use crate::catalog::{Table, Version};
use crate::distribution::buckets_of;
use crate::error::{Error, Result};
use crate::foreground::Foreground;
use crate::manifest::{
    self, LogWriter, Op, PartitionDef, RowsetDef, TableDef, TabletDef, TabletRowset,
};
use crate::partition::{PartitionDefinition, PartitionValues, Partitioning, Router};
use crate::segment::{Codec, Gc, SegmentMeta, SegmentWriter};
use crate::storage::{FileSystemSync, StdStorage, Storage, WritableFile};
use crate::types::{Column, TableSchema};
use crate::{Distribution, names};

/// Rows after which a load or compaction starts a new segment file in a tablet.
pub const SEGMENT_ROWS_MAX: u64 = 4 << 20;

/// Rows a load gathers for one tablet whose rows came out of key order before sorting them by
/// the key columns and writing them as one row group (rows in key order stream into row groups
/// of as many rows).
pub const RUN_ROWS_MAX: usize = crate::segment::ROW_GROUP_ROWS;

/// Bytes a load holds unwritten (gathered Arrow rows and encoded row groups in progress), shared
/// by its workers; past it a worker writes out the tablet holding the most early, so a load's
/// memory stays bounded whatever its size.
pub const LOAD_BUFFER_BYTES_MAX: usize = 256 << 20;

/// Settings for [`Engine::open_with`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The file system; tests pass a [`crate::FaultyStorage`].
    pub storage: Arc<dyn Storage>,
    /// Threads that decode segments in a scan and encode them in a load.
    pub threads: usize,
    /// Start a new manifest log (with a checkpoint) after this many bytes.
    pub log_rotate_bytes: u64,
    /// A tablet with at least this many rowsets is compacted by [`Engine::compact`].
    pub compaction_min_rowsets: usize,
    /// Run compaction in a background thread at this interval; `None` runs it only on request.
    pub compaction_interval: Option<Duration>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            storage: Arc::new(StdStorage),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            log_rotate_bytes: 8 << 20,
            compaction_min_rowsets: 8,
            compaction_interval: None,
        }
    }
}

/// A table as a user defines it (`CREATE TABLE`).
#[derive(Clone, Debug, PartialEq)]
pub struct TableDefinition {
    /// Table name.
    pub name: String,
    /// Columns; key columns first.
    pub columns: Vec<Column>,
    /// Partitioning.
    pub partitioning: Partitioning,
    /// Initial partitions (ignored for unpartitioned tables, which get one named like the table).
    pub partitions: Vec<PartitionDefinition>,
    /// Bucketing.
    pub distribution: Distribution,
    /// `PROPERTIES (...)`, kept as given.
    pub properties: BTreeMap<String, String>,
}

impl TableDefinition {
    /// An unpartitioned table with one bucket.
    pub fn new(name: impl Into<String>, columns: Vec<Column>) -> TableDefinition {
        TableDefinition {
            name: name.into(),
            columns,
            partitioning: Partitioning::Unpartitioned,
            partitions: Vec::new(),
            distribution: Distribution::hash(Vec::new(), 1),
            properties: BTreeMap::new(),
        }
    }
}

/// A pinned, immutable state of the whole catalog. Cheap to clone; keeps its files alive.
#[derive(Debug, Clone)]
pub struct Snapshot {
    version: Arc<Version>,
}

impl std::ops::Deref for Snapshot {
    type Target = Version;
    fn deref(&self) -> &Version {
        &self.version
    }
}

impl Snapshot {
    /// The table, or a typed error naming what is missing.
    pub fn get_table(&self, db: &str, table: &str) -> Result<&Arc<Table>> {
        let d = self
            .database(db)
            .ok_or_else(|| Error::DatabaseNotFound { name: db.into() })?;
        d.tables.get(table).ok_or_else(|| Error::TableNotFound {
            db: db.into(),
            table: table.into(),
        })
    }
}

/// What a load wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Rows loaded.
    pub row_count: u64,
    /// Segment files written.
    pub segment_count: usize,
    /// Bytes of those files.
    pub bytes: u64,
    /// The version the load became visible in.
    pub seq: u64,
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Tablets compacted.
    pub tablets: usize,
    /// Rowsets merged away.
    pub rowsets_merged: usize,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    storage: Arc<dyn Storage>,
    options: EngineOptions,
    current: Mutex<Arc<Version>>,
    log: Mutex<Option<LogWriter>>,
    ids: AtomicU64,
    gc: Arc<Gc>,
    poisoned: Mutex<Option<String>>,
    table_locks: Mutex<HashMap<u64, Arc<Mutex<()>>>>,
    shutdown: Arc<AtomicBool>,
    /// Loads and commits making files durable; background copies yield to them.
    foreground: Arc<Foreground>,
    _lock: File,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }
}

/// The storage engine of one data directory. Cheap to clone; all clones share one state.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

const CURRENT: &str = "CURRENT";
const MANIFEST_DIR: &str = "manifest";
/// Folder of segment files, relative to the data directory.
pub const SEGMENTS_DIR: &str = "segments";

impl Engine {
    /// Opens (creating if needed) the data directory with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<Engine> {
        Engine::open_with(dir, EngineOptions::default())
    }

    /// Opens (creating if needed) the data directory, recovering from any crash.
    pub fn open_with(dir: impl AsRef<Path>, options: EngineOptions) -> Result<Engine> {
        let root = dir.as_ref().to_path_buf();
        let storage = options.storage.clone();
        storage.create_dir_all(&root)?;
        let lock_path = root.join("LOCK");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io("open", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked { path: lock_path });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", &lock_path, e)),
        }
        let gc = Arc::new(Gc::new(storage.clone(), root.clone()));
        let manifest_dir = root.join(MANIFEST_DIR);
        storage.create_dir_all(&manifest_dir)?;
        let current_path = root.join(CURRENT);
        let (version, log) = match storage.file_len(&current_path)? {
            None => {
                // A new directory (or one whose first open crashed before CURRENT existed,
                // so nothing was ever committed).
                let version = Version {
                    seq: 0,
                    next_id: 1,
                    ..Version::default()
                };
                let log = LogWriter::create(
                    &*storage,
                    &manifest_dir,
                    1,
                    &manifest::checkpoint_of(&version),
                )?;
                crate::storage::write_atomic(
                    &*storage,
                    &current_path,
                    &manifest::encode_current(&manifest::log_name(1)),
                )?;
                (version, log)
            }
            Some(_) => {
                let bytes = storage.read(&current_path)?;
                let (name, number) = manifest::decode_current(&current_path, &bytes)?;
                let log_path = manifest_dir.join(&name);
                let bytes = storage.read(&log_path)?;
                let decoded = manifest::decode_log(&log_path, &bytes)?;
                let mut version = Version::default();
                let mut first = true;
                for record in decoded.records {
                    if first && !matches!(record.ops.first(), Some(Op::Checkpoint { .. })) {
                        return Err(Error::corrupt(
                            &log_path,
                            "log does not start with a checkpoint",
                        ));
                    }
                    first = false;
                    for op in record.ops {
                        manifest::apply(&mut version, op, &gc).map_err(|e| {
                            Error::corrupt(
                                &log_path,
                                format!("record {} does not apply: {e}", record.seq),
                            )
                        })?;
                    }
                    version.seq = record.seq;
                    version.next_id = version.next_id.max(record.next_id);
                }
                if first {
                    return Err(Error::corrupt(&log_path, "log holds no checkpoint"));
                }
                if decoded.valid_len < bytes.len() {
                    storage.truncate(&log_path, decoded.valid_len as u64)?;
                }
                let file = storage.open_append(&log_path)?;
                let log = LogWriter {
                    file,
                    path: log_path,
                    number,
                    len: decoded.valid_len as u64,
                };
                (version, log)
            }
        };
        remove_orphans(&*storage, &root, &version, &log)?;
        let ids = AtomicU64::new(version.next_id);
        let shutdown = Arc::new(AtomicBool::new(false));
        let engine = Engine {
            inner: Arc::new(Inner {
                root,
                storage,
                current: Mutex::new(Arc::new(version)),
                log: Mutex::new(Some(log)),
                ids,
                gc,
                poisoned: Mutex::new(None),
                table_locks: Mutex::new(HashMap::new()),
                foreground: Arc::new(Foreground::default()),
                shutdown,
                options,
                _lock: lock,
            }),
        };
        if let Some(interval) = engine.inner.options.compaction_interval {
            spawn_compactor(Arc::downgrade(&engine.inner), interval);
        }
        Ok(engine)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.root
    }

    /// The storage all files go through.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.inner.storage
    }

    /// The options the engine was opened with.
    pub fn options(&self) -> &EngineOptions {
        &self.inner.options
    }

    /// Pins the current version: O(1), whatever the data size.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: self.current(),
        }
    }

    fn current(&self) -> Arc<Version> {
        self.inner
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Hands out `n` fresh ids; returns the first.
    pub fn allocate_ids(&self, n: u64) -> u64 {
        self.inner.ids.fetch_add(n, Ordering::SeqCst)
    }

    fn check_poisoned(&self) -> Result<()> {
        match &*self
            .inner
            .poisoned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
        {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison(&self, cause: &Error) {
        let mut p = self
            .inner
            .poisoned
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if p.is_none() {
            *p = Some(cause.to_string());
        }
    }

    /// Commits `ops` as one atomic change and publishes the new version.
    ///
    /// The ops are applied to a copy of the current version first, so an op that does not fit
    /// (unknown table, overlapping partition) fails before anything is written.
    pub fn commit(&self, ops: Vec<Op>) -> Result<Snapshot> {
        self.check_poisoned()?;
        let _foreground = self.inner.foreground.enter();
        let mut log_guard = self.inner.log.lock().unwrap_or_else(|p| p.into_inner());
        self.check_poisoned()?;
        let Some(log) = log_guard.as_mut() else {
            return Err(Error::Poisoned {
                cause: "the manifest log is closed".into(),
            });
        };
        let current = self.current();
        let mut next = (*current).clone();
        next.seq += 1;
        next.next_id = self.inner.ids.load(Ordering::SeqCst);
        let mut removed = Vec::new();
        for op in &ops {
            removed.extend(manifest::apply(&mut next, op.clone(), &self.inner.gc)?);
        }
        let record = manifest::Record {
            seq: next.seq,
            next_id: next.next_id,
            ops,
        };
        let bytes = manifest::encode_record(&record)?;
        // The commit point: after a failure here the log's tail is unknown, so the engine
        // refuses further commits until reopened (recovery then decides what was committed).
        if let Err(e) = log.file.write_all(&bytes).and_then(|()| log.file.sync()) {
            self.poison(&e);
            *log_guard = None;
            return Err(e);
        }
        log.len += bytes.len() as u64;
        self.inner.gc.mark_obsolete(removed);
        let next = Arc::new(next);
        *self.inner.current.lock().unwrap_or_else(|p| p.into_inner()) = next.clone();
        if log.len > self.inner.options.log_rotate_bytes
            && let Err(e) = self.rotate_log(&mut log_guard, &next)
        {
            // The commit is durable in the old log; only the rotation failed.
            self.poison(&e);
        }
        Ok(Snapshot { version: next })
    }

    fn rotate_log(&self, guard: &mut Option<LogWriter>, version: &Version) -> Result<()> {
        let storage = &*self.inner.storage;
        let Some(old) = guard.as_ref() else {
            return Ok(());
        };
        let dir = self.inner.root.join(MANIFEST_DIR);
        let new = LogWriter::create(
            storage,
            &dir,
            old.number + 1,
            &manifest::checkpoint_of(version),
        )?;
        crate::storage::write_atomic(
            storage,
            &self.inner.root.join(CURRENT),
            &manifest::encode_current(&manifest::log_name(new.number)),
        )?;
        let old_path = old.path.clone();
        *guard = Some(new);
        storage.remove_file(&old_path)
    }

    // ---- DDL --------------------------------------------------------------------------------

    /// CREATE DATABASE.
    pub fn create_database(&self, name: &str) -> Result<()> {
        names::validate("database", name)?;
        if self.current().databases.contains_key(name) {
            return Err(Error::DatabaseExists { name: name.into() });
        }
        let id = self.allocate_ids(1);
        self.commit(vec![Op::CreateDatabase {
            id,
            name: name.into(),
        }])?;
        Ok(())
    }

    /// DROP DATABASE, with all its tables.
    pub fn drop_database(&self, name: &str) -> Result<()> {
        self.commit(vec![Op::DropDatabase { name: name.into() }])?;
        Ok(())
    }

    /// CREATE TABLE.
    pub fn create_table(&self, db: &str, def: TableDefinition) -> Result<()> {
        let op = self.create_table_op(db, def)?;
        self.commit(vec![op])?;
        Ok(())
    }

    /// Checks a definition and builds the op that creates the (empty) table.
    pub fn create_table_op(&self, db: &str, def: TableDefinition) -> Result<Op> {
        names::validate("table", &def.name)?;
        let snapshot = self.snapshot();
        let database = snapshot
            .database(db)
            .ok_or_else(|| Error::DatabaseNotFound { name: db.into() })?;
        if database.tables.contains_key(&def.name) {
            return Err(Error::TableExists { table: def.name });
        }
        let schema = TableSchema::new(def.columns.clone())?;
        Codec::from_properties(&def.properties)?;
        let column = crate::partition::partition_column(&def.partitioning, &schema)?;
        def.distribution.validate(&schema)?;
        let mut partition_defs = if let Partitioning::Unpartitioned = def.partitioning {
            vec![PartitionDefinition {
                name: def.name.clone(),
                values: PartitionValues::All,
            }]
        } else {
            def.partitions.clone()
        };
        let mut bounds: Vec<(String, crate::partition::PartitionBound)> = Vec::new();
        let mut partitions = Vec::new();
        for p in partition_defs.drain(..) {
            names::validate("partition", &p.name)?;
            if bounds.iter().any(|(n, _)| *n == p.name) {
                return Err(Error::PartitionExists { partition: p.name });
            }
            let bound = crate::partition::resolve_bound(
                &def.partitioning,
                column,
                &p.values,
                bounds.iter().map(|(_, b)| b),
            )?;
            if let Some((other, _)) = bounds.iter().find(|(_, b)| b.overlaps(&bound)) {
                return Err(Error::PartitionOverlap {
                    partition: p.name,
                    existing: other.clone(),
                    detail: bound.describe(column.map(|c| &c.column_type)),
                });
            }
            partitions.push(self.empty_partition_def(
                p.name.clone(),
                bound.to_values(column.map(|c| &c.column_type)),
                1,
                def.distribution.buckets,
            ));
            bounds.push((p.name, bound));
        }
        Ok(Op::CreateTable {
            db: db.into(),
            table: TableDef {
                id: self.allocate_ids(1),
                name: def.name,
                columns: def.columns,
                partitioning: def.partitioning,
                distribution: def.distribution,
                properties: def.properties,
                partitions,
            },
        })
    }

    fn empty_partition_def(
        &self,
        name: String,
        values: PartitionValues,
        version: u64,
        buckets: u32,
    ) -> PartitionDef {
        PartitionDef {
            id: self.allocate_ids(1),
            name,
            values,
            version,
            tablets: (0..buckets)
                .map(|_| TabletDef {
                    id: self.allocate_ids(1),
                    rowsets: Vec::new(),
                })
                .collect(),
        }
    }

    /// DROP TABLE.
    pub fn drop_table(&self, db: &str, table: &str) -> Result<()> {
        self.commit(vec![Op::DropTable {
            db: db.into(),
            table: table.into(),
        }])?;
        Ok(())
    }

    /// ALTER TABLE ... ADD PARTITION.
    pub fn add_partition(&self, db: &str, table: &str, def: PartitionDefinition) -> Result<()> {
        names::validate("partition", &def.name)?;
        let snapshot = self.snapshot();
        let t = snapshot.get_table(db, table)?;
        if t.partition(&def.name).is_some() {
            return Err(Error::PartitionExists {
                partition: def.name,
            });
        }
        if let Partitioning::Unpartitioned = t.partitioning {
            return Err(Error::InvalidDefinition(format!(
                "table {table} is not partitioned"
            )));
        }
        let column = t.partition_column();
        let bound = crate::partition::resolve_bound(
            &t.partitioning,
            column,
            &def.values,
            t.partitions.iter().map(|p| &p.bound),
        )?;
        let column_type = column.map(|c| &c.column_type);
        if let Some(other) = t.partitions.iter().find(|p| p.bound.overlaps(&bound)) {
            return Err(Error::PartitionOverlap {
                partition: def.name,
                existing: other.name.clone(),
                detail: bound.describe(column_type),
            });
        }
        let partition = self.empty_partition_def(
            def.name,
            bound.to_values(column_type),
            1,
            t.distribution.buckets,
        );
        self.commit(vec![Op::PutPartition {
            db: db.into(),
            table: table.into(),
            partition,
        }])?;
        Ok(())
    }

    /// ALTER TABLE ... DROP PARTITION.
    pub fn drop_partition(&self, db: &str, table: &str, partition: &str) -> Result<()> {
        self.commit(vec![Op::DropPartition {
            db: db.into(),
            table: table.into(),
            partition: partition.into(),
        }])?;
        Ok(())
    }

    /// TRUNCATE TABLE, of the named partitions or (with `None`) all of them.
    pub fn truncate_table(
        &self,
        db: &str,
        table: &str,
        partitions: Option<&[String]>,
    ) -> Result<()> {
        let snapshot = self.snapshot();
        let t = snapshot.get_table(db, table)?;
        if let Some(names) = partitions {
            for name in names {
                if t.partition(name).is_none() {
                    return Err(Error::PartitionNotFound {
                        table: table.into(),
                        partition: name.clone(),
                    });
                }
            }
        }
        let column_type = t.partition_column().map(|c| c.column_type);
        let ops = t
            .partitions
            .iter()
            .filter(|p| partitions.is_none_or(|names| names.contains(&p.name)))
            .map(|p| {
                let mut def = self.empty_partition_def(
                    p.name.clone(),
                    p.bound.to_values(column_type.as_ref()),
                    p.version + 1,
                    t.distribution.buckets,
                );
                def.id = p.id;
                Op::PutPartition {
                    db: db.into(),
                    table: table.into(),
                    partition: def,
                }
            })
            .collect();
        self.commit(ops)?;
        Ok(())
    }

    /// Sets (or with `None` removes) a small system record kept in the manifest.
    pub fn put_meta(&self, key: &str, value: Option<String>) -> Result<()> {
        self.commit(vec![Op::PutMeta {
            key: key.into(),
            value,
        }])?;
        Ok(())
    }

    /// Serialises loads and compactions of one table.
    fn table_lock(&self, table_id: u64) -> Arc<Mutex<()>> {
        self.inner
            .table_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(table_id)
            .or_default()
            .clone()
    }

    // ---- Loads ------------------------------------------------------------------------------

    /// Appends batches to a table, atomically: every row becomes visible in one new version, or
    /// (on any error, including a row that fits no partition) none does and no file remains.
    pub fn load<I>(&self, db: &str, table: &str, batches: I) -> Result<LoadReport>
    where
        I: IntoIterator<Item = RecordBatch>,
    {
        self.load_results(db, table, batches.into_iter().map(Ok))
    }

    /// Like [`Engine::load`], for a stream of batches that may fail (a file being read).
    pub fn load_results<I>(&self, db: &str, table: &str, batches: I) -> Result<LoadReport>
    where
        I: IntoIterator<Item = Result<RecordBatch>>,
    {
        self.check_poisoned()?;
        let snapshot = self.snapshot();
        let t = snapshot.get_table(db, table)?.clone();
        let lock = self.table_lock(t.id);
        let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let rowsets = write_load(self, &t, batches)?;
        let row_count = rowsets
            .iter()
            .map(|r| r.rowset.segments.iter().map(|s| s.row_count).sum::<u64>())
            .sum();
        let segment_count = rowsets.iter().map(|r| r.rowset.segments.len()).sum();
        let bytes = rowsets
            .iter()
            .map(|r| r.rowset.segments.iter().map(|s| s.size).sum::<u64>())
            .sum();
        let paths: Vec<PathBuf> = rowsets
            .iter()
            .flat_map(|r| {
                r.rowset
                    .segments
                    .iter()
                    .map(|s| self.inner.root.join(&s.path))
            })
            .collect();
        if rowsets.is_empty() {
            return Ok(LoadReport {
                row_count: 0,
                segment_count: 0,
                bytes: 0,
                seq: snapshot.seq,
            });
        }
        let committed = self.commit(vec![Op::AddRowsets {
            db: db.into(),
            table: table.into(),
            rowsets,
        }]);
        match committed {
            Ok(s) => Ok(LoadReport {
                row_count,
                segment_count,
                bytes,
                seq: s.seq,
            }),
            Err(e) => {
                if !matches!(e, Error::Poisoned { .. }) && !self.is_poisoned() {
                    for p in paths {
                        let _ = self.inner.storage.remove_file(&p);
                    }
                }
                Err(e)
            }
        }
    }

    fn is_poisoned(&self) -> bool {
        self.check_poisoned().is_err()
    }

    // ---- Compaction ---------------------------------------------------------------------------

    /// Merges the rowsets of every tablet of the table that has at least
    /// [`EngineOptions::compaction_min_rowsets`] of them into one rowset.
    pub fn compact(&self, db: &str, table: &str) -> Result<CompactionReport> {
        self.compact_with(db, table, self.inner.options.compaction_min_rowsets)
    }

    /// [`Engine::compact`] with an explicit threshold (2 compacts every tablet with 2+ rowsets).
    pub fn compact_with(
        &self,
        db: &str,
        table: &str,
        min_rowsets: usize,
    ) -> Result<CompactionReport> {
        self.check_poisoned()?;
        let snapshot = self.snapshot();
        let t = snapshot.get_table(db, table)?.clone();
        let mut report = CompactionReport::default();
        for p in &t.partitions {
            for tablet in &p.tablets {
                if tablet.rowsets.len() < min_rowsets.max(2) {
                    continue;
                }
                let lock = self.table_lock(t.id);
                let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                let rowset_id = self.allocate_ids(1);
                let mut segments = Vec::new();
                let mut writer: Option<SegmentWriter> = None;
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<()> {
                        for rowset in &tablet.rowsets {
                            for segment in &rowset.segments {
                                for batch in segment.reader(None, 64 * 1024)? {
                                    let batch = batch?;
                                    if writer.is_none() {
                                        let rel = segment_path(
                                            t.id,
                                            p.id,
                                            tablet.id,
                                            rowset_id,
                                            segments.len(),
                                        );
                                        writer = Some(SegmentWriter::create(
                                            &*self.inner.storage,
                                            &self.inner.root,
                                            rel,
                                            &t.schema,
                                            Codec::from_properties(&t.properties)?,
                                            &batch,
                                        )?);
                                    }
                                    if let Some(w) = writer.as_mut() {
                                        w.write(&batch)?;
                                        if w.row_count() >= SEGMENT_ROWS_MAX
                                            && let Some(w) = writer.take()
                                        {
                                            segments.push(w.finish(&t.schema)?);
                                        }
                                    }
                                }
                            }
                        }
                        if let Some(w) = writer.take() {
                            segments.push(w.finish(&t.schema)?);
                        }
                        sync_parent_dirs(&*self.inner.storage, &self.inner.root, &segments)
                    }))
                    // A decoder panic on damaged bytes becomes an error, not a crashed caller.
                    .unwrap_or_else(|_| {
                        Err(Error::Corrupt {
                            path: self.inner.root.join(SEGMENTS_DIR),
                            reason: format!(
                                "the Parquet decoder failed while compacting tablet {}",
                                tablet.id
                            ),
                        })
                    });
                let cleanup = |segments: &[SegmentMeta], writer: Option<SegmentWriter>| {
                    for s in segments {
                        let _ = self
                            .inner
                            .storage
                            .remove_file(&self.inner.root.join(&s.path));
                    }
                    if let Some(w) = writer {
                        let _ = self.inner.storage.remove_file(w.path());
                    }
                };
                if let Err(e) = result {
                    cleanup(&segments, writer.take());
                    return Err(e);
                }
                let op = Op::ReplaceRowsets {
                    db: db.into(),
                    table: table.into(),
                    partition_id: p.id,
                    tablet_id: tablet.id,
                    removed: tablet.rowsets.iter().map(|r| r.id).collect(),
                    added: RowsetDef {
                        id: rowset_id,
                        segments: segments.clone(),
                    },
                };
                match self.commit(vec![op]) {
                    Ok(_) => {
                        report.tablets += 1;
                        report.rowsets_merged += tablet.rowsets.len();
                    }
                    // The table changed underneath (dropped, truncated): nothing to do here.
                    Err(Error::TableNotFound { .. })
                    | Err(Error::PartitionNotFound { .. })
                    | Err(Error::InvalidDefinition(_)) => cleanup(&segments, None),
                    Err(e) => {
                        if !self.is_poisoned() {
                            cleanup(&segments, None);
                        }
                        return Err(e);
                    }
                }
            }
        }
        Ok(report)
    }

    /// Compacts every table of every database.
    pub fn compact_all(&self) -> Result<CompactionReport> {
        let snapshot = self.snapshot();
        let mut total = CompactionReport::default();
        for d in snapshot.databases.values() {
            for t in d.tables.values() {
                match self.compact(&d.name, &t.name) {
                    Ok(r) => {
                        total.tablets += r.tablets;
                        total.rowsets_merged += r.rowsets_merged;
                    }
                    Err(Error::TableNotFound { .. } | Error::DatabaseNotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(total)
    }

    // ---- Imports (restores) -------------------------------------------------------------------

    /// The count of foreground commits (loads making their files durable, manifest commits),
    /// which background copies (BACKUP, RESTORE) yield to before each chunk.
    pub fn foreground(&self) -> Arc<Foreground> {
        self.inner.foreground.clone()
    }

    /// Starts an import: files written through it are deleted unless [`Import::commit`] names
    /// them in a successful commit.
    pub fn begin_import(&self) -> Import {
        Import {
            engine: self.clone(),
            files: Vec::new(),
            sync: None,
            committed: false,
        }
    }
}

/// The relative path of a segment file. A partition's tablets share its directory: a first load
/// into a table with 8 buckets per partition creates 8 times fewer directories to allocate and
/// fsync.
pub fn segment_path(
    table_id: u64,
    partition_id: u64,
    tablet_id: u64,
    rowset_id: u64,
    index: usize,
) -> String {
    format!("{SEGMENTS_DIR}/{table_id}/{partition_id}/{tablet_id}_{rowset_id}_{index}.parquet")
}

/// Fsyncs files from several threads at once: the device and the file system's journal then
/// serve them together, where one after the other each waits for its own flush.
fn sync_files(files: Vec<Box<dyn WritableFile>>) -> Result<()> {
    sync_together(files, |mut file| file.sync())
}

/// Runs `sync` on every item from up to 16 threads at once (one by one for a single item); the
/// first error wins.
fn sync_together<T: Send>(items: Vec<T>, sync: impl Fn(T) -> Result<()> + Sync) -> Result<()> {
    const SYNC_THREADS_MAX: usize = 16;
    if items.len() < 2 {
        return items.into_iter().try_for_each(sync);
    }
    let threads = items.len().min(SYNC_THREADS_MAX);
    let queue = Mutex::new(items);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                        match next {
                            Some(item) => sync(item)?,
                            None => return Ok(()),
                        }
                    }
                })
            })
            .collect();
        let mut result = Ok(());
        for handle in handles {
            let outcome = handle
                .join()
                .unwrap_or_else(|_| Err(Error::Cancelled("an fsync thread panicked".into())));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    })
}

/// Fsyncs the directories of `segments` and their parents below `root` (new directories must be
/// durable in their parents too), each directory once.
fn sync_parent_dirs(storage: &dyn Storage, root: &Path, segments: &[SegmentMeta]) -> Result<()> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for s in segments {
        let path = root.join(&s.path);
        let mut d = path.as_path();
        while let Some(parent) = d.parent() {
            if !parent.starts_with(root) || parent == root {
                break;
            }
            dirs.push(parent.to_path_buf());
            d = parent;
        }
    }
    dirs.sort();
    dirs.dedup();
    // Deepest first, so a directory is synced after the entries inside it. Directories of one
    // depth (a load's partition directories) do not contain each other: they are synced
    // together, as files are in `sync_files`.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    let mut rest = dirs.as_slice();
    while let Some(first) = rest.first() {
        let depth = first.components().count();
        let level = rest.partition_point(|d| d.components().count() == depth);
        sync_dirs_together(storage, &rest[..level])?;
        rest = &rest[level..];
    }
    Ok(())
}

/// Fsyncs `dirs` from several threads at once.
fn sync_dirs_together(storage: &dyn Storage, dirs: &[PathBuf]) -> Result<()> {
    sync_together(dirs.iter().collect(), |dir| storage.sync_dir(dir))
}

/// Files being imported into the engine (by a restore); removed on drop unless committed.
#[derive(Debug)]
pub struct Import {
    engine: Engine,
    files: Vec<PathBuf>,
    /// Opened before the first file is created, so its sync reports every write-back error of
    /// the import's files.
    sync: Option<Box<dyn FileSystemSync>>,
    committed: bool,
}

impl Import {
    /// Creates a segment file at `relative` (from [`segment_path`]) for the caller to fill.
    /// It need not be fsynced: [`Import::commit`] makes every imported file durable at once.
    pub fn create_file(&mut self, relative: &str) -> Result<Box<dyn WritableFile>> {
        let path = self.engine.inner.root.join(relative);
        if self.sync.is_none() {
            self.sync = Some(
                self.engine
                    .inner
                    .storage
                    .open_sync_fs(&self.engine.inner.root)?,
            );
        }
        if let Some(dir) = path.parent() {
            self.engine.inner.storage.create_dir_all(dir)?;
        }
        self.files.push(path.clone());
        self.engine.inner.storage.create(&path)
    }

    /// Makes the imported files and their directories durable with one file-system sync (one
    /// write-back and device flush for all of them, where an fsync per file and per directory
    /// pays one each), then commits `ops` atomically: the commit record can never name a file
    /// that a crash could lose.
    pub fn commit(mut self, ops: Vec<Op>) -> Result<Snapshot> {
        if let Some(sync) = &self.sync {
            sync.sync()?;
        }
        let result = self.engine.commit(ops);
        if result.is_ok() || self.engine.is_poisoned() {
            // Committed, or unknown: recovery on reopen decides and removes orphans.
            self.committed = true;
        }
        result
    }

    /// The engine imported into.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for Import {
    fn drop(&mut self) {
        if !self.committed {
            for f in &self.files {
                let _ = self.engine.inner.storage.remove_file(f);
            }
        }
    }
}

/// Deletes files no committed state names: segment files, logs other than the live one, and
/// temporary files of interrupted writes.
fn remove_orphans(
    storage: &dyn Storage,
    root: &Path,
    version: &Version,
    log: &LogWriter,
) -> Result<()> {
    let mut live: HashSet<String> = HashSet::new();
    for d in version.databases.values() {
        for t in d.tables.values() {
            for p in &t.partitions {
                live.extend(p.segments().map(|s| s.meta.path.clone()));
            }
        }
    }
    remove_unlisted(storage, root, SEGMENTS_DIR, &live)?;
    let manifest_dir = root.join(MANIFEST_DIR);
    for entry in storage.list_dir(&manifest_dir)? {
        if manifest_dir.join(&entry.name) != log.path {
            storage.remove_file(&manifest_dir.join(&entry.name))?;
        }
    }
    storage.remove_file(&root.join("CURRENT.tmp"))?;
    Ok(())
}

/// Removes files under `root/relative` not in `live`, and directories left empty. Returns
/// whether the directory is now empty.
fn remove_unlisted(
    storage: &dyn Storage,
    root: &Path,
    relative: &str,
    live: &HashSet<String>,
) -> Result<bool> {
    let dir = root.join(relative);
    let mut empty = true;
    for entry in storage.list_dir(&dir)? {
        let rel = format!("{relative}/{}", entry.name);
        if entry.is_dir {
            if remove_unlisted(storage, root, &rel, live)? {
                storage.remove_dir_all(&root.join(&rel))?;
            } else {
                empty = false;
            }
        } else if live.contains(&rel) {
            empty = false;
        } else {
            storage.remove_file(&root.join(&rel))?;
        }
    }
    Ok(empty)
}

fn spawn_compactor(inner: Weak<Inner>, interval: Duration) {
    let shutdown = match inner.upgrade() {
        Some(i) => i.shutdown.clone(),
        None => return,
    };
    let spawned = std::thread::Builder::new()
        .name("shale-compaction".into())
        .spawn(move || {
            while !shutdown.load(Ordering::SeqCst) {
                std::thread::sleep(interval.min(Duration::from_millis(200)));
                let Some(inner) = inner.upgrade() else { return };
                let engine = Engine { inner };
                // Errors are retried at the next interval; a poisoned engine stops compacting.
                if engine.compact_all().is_err() && engine.is_poisoned() {
                    return;
                }
            }
        });
    // Without a thread, compaction still runs on request.
    drop(spawned);
}

/// Runs a load: the calling thread checks and splits batches by partition and bucket; worker
/// threads (each owning a share of the tablets) encode the pieces into segment files. Returns the
/// rowsets to commit; on any error every file the load wrote is removed.
fn write_load<I>(engine: &Engine, table: &Arc<Table>, batches: I) -> Result<Vec<TabletRowset>>
where
    I: IntoIterator<Item = Result<RecordBatch>>,
{
    let workers = engine.inner.options.threads.max(1);
    let mut splitter = Splitter::new(table);
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            // One message per input batch: a few batches in flight per worker keep memory
            // bounded, and let a worker go on while the splitting thread waits for a core.
            let (tx, rx) = crossbeam_channel::bounded::<Vec<((usize, u32), RecordBatch)>>(4);
            senders.push(tx);
            handles.push(scope.spawn(move || {
                let mut writers = TabletWriters::new(engine, table, workers);
                let mut error = None;
                'input: for share in rx {
                    for (key, piece) in share {
                        if let Err(e) = writers.write(key, piece) {
                            error = Some(e);
                            break 'input;
                        }
                    }
                }
                if error.is_none()
                    && let Err(e) = writers.finish()
                {
                    error = Some(e);
                }
                (writers, error)
            }));
        }
        let mut error: Option<Error> = None;
        // Splits a batch and sends each worker the pieces of its tablets, one message per
        // worker; `false` when a worker has stopped (its error is collected below).
        let dispatch = |batch: RecordBatch, splitter: &mut Splitter| -> Result<bool> {
            let Some(split) = splitter.split(batch)? else {
                return Ok(true);
            };
            let mut shares: Vec<Vec<((usize, u32), RecordBatch)>> = vec![Vec::new(); workers];
            for group in &split.groups {
                shares[worker_of(group.0, workers)].push((group.0, split.piece(group)?));
            }
            for (sender, share) in senders.iter().zip(shares) {
                if !share.is_empty() && sender.send(share).is_err() {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        // Small batches are gathered until SPLIT_ROWS_MIN rows, in arrival order, then sent as
        // one.
        let mut small: Vec<RecordBatch> = Vec::new();
        let mut small_rows = 0;
        let send_small = |small: &mut Vec<RecordBatch>, splitter: &mut Splitter| -> Result<bool> {
            let batch = match small.len() {
                0 => return Ok(true),
                1 => small.remove(0),
                _ => concat_batches(table.schema.arrow_schema(), small.drain(..).as_slice())?,
            };
            dispatch(batch, splitter)
        };
        let mut stopped = false;
        for batch in batches {
            let step = batch.and_then(|b| conform(table, b)).and_then(|b| {
                if b.num_rows() >= SPLIT_ROWS_MIN {
                    // A big batch goes as it is, after the small ones before it.
                    small_rows = 0;
                    return Ok(
                        send_small(&mut small, &mut splitter)? && dispatch(b, &mut splitter)?
                    );
                }
                small_rows += b.num_rows();
                small.push(b);
                if small_rows < SPLIT_ROWS_MIN {
                    return Ok(true);
                }
                small_rows = 0;
                send_small(&mut small, &mut splitter)
            });
            match step {
                Ok(true) => {}
                Ok(false) => {
                    stopped = true;
                    break;
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if error.is_none()
            && !stopped
            && let Err(e) = send_small(&mut small, &mut splitter)
        {
            error = Some(e);
        }
        drop(senders);
        let mut all = Vec::with_capacity(workers);
        for handle in handles {
            match handle.join() {
                Ok((writers, worker_error)) => {
                    if let Some(e) = worker_error {
                        error.get_or_insert(e);
                    }
                    all.push(writers);
                }
                Err(_) => {
                    error.get_or_insert(Error::Cancelled("a load worker panicked".into()));
                }
            }
        }
        let result = match error {
            Some(e) => Err(e),
            None => {
                let files: Vec<Box<dyn WritableFile>> =
                    all.iter_mut().flat_map(|w| w.unsynced.drain(..)).collect();
                let _foreground = engine.inner.foreground.enter();
                sync_files(files).and_then(|()| {
                    let mut rowsets: Vec<TabletRowset> =
                        all.iter().flat_map(|w| w.rowsets()).collect();
                    rowsets.sort_by_key(|r| (r.partition_id, r.tablet_id));
                    let segments: Vec<SegmentMeta> = rowsets
                        .iter()
                        .flat_map(|r| r.rowset.segments.clone())
                        .collect();
                    sync_parent_dirs(&*engine.inner.storage, &engine.inner.root, &segments)
                        .map(|()| rowsets)
                })
            }
        };
        if result.is_err() {
            for mut w in all {
                w.discard();
            }
        }
        result
    })
}

/// Input batches of fewer rows are concatenated (in arrival order) up to this many before they
/// are split: split into a table's tablets, a small batch makes pieces of a few rows each, and
/// each piece costs the Parquet writer as much as hundreds of rows (8 Ki-row batches into 96
/// tablets loaded at half the speed of 64 Ki-row ones, `benches/examples/load_profile.rs`).
const SPLIT_ROWS_MIN: usize = 64 * 1024;

/// Maps each row of a batch to its (partition index, bucket) and cuts the batch into pieces.
struct Splitter<'a> {
    table: &'a Table,
    router: Router,
    partition_column: Option<usize>,
    distribution_columns: Vec<usize>,
    rows_seen: u64,
}

impl<'a> Splitter<'a> {
    fn new(table: &'a Table) -> Splitter<'a> {
        let schema = &table.schema;
        Splitter {
            table,
            router: Router::new(table.partitions.iter().map(|p| &p.bound)),
            partition_column: table.partitioning.column().and_then(|c| schema.index_of(c)),
            distribution_columns: table
                .distribution
                .columns
                .iter()
                .filter_map(|c| schema.index_of(c))
                .collect(),
            rows_seen: 0,
        }
    }

    fn split(&mut self, batch: RecordBatch) -> Result<Option<Split>> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(None);
        }
        if self.table.partitions.is_empty() {
            return Err(Error::NoPartitionForValue {
                table: self.table.name.clone(),
                column: self.table.partitioning.column().unwrap_or("").into(),
                value: "any value (the table has no partitions)".into(),
            });
        }
        let partition_of = match self.partition_column {
            None => vec![0u32; rows],
            Some(i) => {
                let keys = batch.column(i);
                self.router.route(keys.as_ref()).map_err(|value| {
                    let column = &self.table.schema.columns()[i];
                    Error::NoPartitionForValue {
                        table: self.table.name.clone(),
                        column: column.name.clone(),
                        value: value
                            .map(|v| v.to_literal(&column.column_type))
                            .unwrap_or_else(|| "NULL".into()),
                    }
                })?
            }
        };
        let dist: Vec<&dyn Array> = self
            .distribution_columns
            .iter()
            .map(|i| batch.column(*i).as_ref())
            .collect();
        let buckets = self.table.distribution.buckets;
        let bucket_of = buckets_of(&dist, rows, buckets, self.rows_seen);
        self.rows_seen += rows as u64;
        let (order, groups) = group_rows(&partition_of, &bucket_of, buckets);
        // One group keeps the batch as it is; otherwise one index array serves every gather.
        let order = (groups.len() > 1).then(|| UInt32Array::from(order));
        Ok(Some(Split {
            batch,
            order,
            groups,
        }))
    }
}

/// A batch's rows grouped by (partition index, bucket), for the workers to gather.
struct Split {
    batch: RecordBatch,
    /// Row indices ordered by group; `None` when the whole batch is one group.
    order: Option<UInt32Array>,
    groups: Vec<Piece>,
}

impl Split {
    /// The rows of one group, as a batch of their own.
    fn piece(&self, (_, start, len): &Piece) -> Result<RecordBatch> {
        match &self.order {
            None => Ok(self.batch.clone()),
            Some(order) => Ok(take_record_batch(&self.batch, &order.slice(*start, *len))?),
        }
    }
}

/// The load worker that owns a tablet (every piece of a tablet goes to the same writer).
fn worker_of((partition, bucket): (usize, u32), workers: usize) -> usize {
    (partition * 31 + bucket as usize) % workers
}

/// The rows of a batch for one (partition index, bucket): the key, and where their indices start
/// in the grouped order and how many there are.
type Piece = ((usize, u32), usize, usize);

/// Groups rows by (partition index, bucket), keeping their order within a group: the row indices
/// ordered by group, and each non-empty group in that order.
fn group_rows(partition_of: &[u32], bucket_of: &[u32], buckets: u32) -> (Vec<u32>, Vec<Piece>) {
    let rows = partition_of.len();
    let keys: Vec<u64> = partition_of
        .iter()
        .zip(bucket_of)
        .map(|(p, b)| u64::from(*p) * u64::from(buckets) + u64::from(*b))
        .collect();
    let key_of = |k: u64| {
        (
            (k / u64::from(buckets)) as usize,
            (k % u64::from(buckets)) as u32,
        )
    };
    let group_count = keys.iter().max().map_or(0, |m| *m as usize + 1);
    let mut groups = Vec::new();
    if group_count <= rows.max(1 << 16) {
        // Counting sort: two passes over the rows, one over the groups.
        let mut starts = vec![0usize; group_count + 1];
        for k in &keys {
            starts[*k as usize + 1] += 1;
        }
        for g in 0..group_count {
            starts[g + 1] += starts[g];
        }
        let mut next = starts.clone();
        let mut order = vec![0u32; rows];
        for (row, k) in keys.iter().enumerate() {
            let slot = &mut next[*k as usize];
            order[*slot] = row as u32;
            *slot += 1;
        }
        for g in 0..group_count {
            if starts[g + 1] > starts[g] {
                groups.push((key_of(g as u64), starts[g], starts[g + 1] - starts[g]));
            }
        }
        (order, groups)
    } else {
        // Many more groups than rows: sort (group, row) pairs instead.
        let mut pairs: Vec<(u64, u32)> = keys
            .iter()
            .enumerate()
            .map(|(row, k)| (*k, row as u32))
            .collect();
        pairs.sort_unstable();
        let mut start = 0;
        while start < pairs.len() {
            let k = pairs[start].0;
            let end = start + pairs[start..].partition_point(|(key, _)| *key == k);
            groups.push((key_of(k), start, end - start));
            start = end;
        }
        (pairs.into_iter().map(|(_, row)| row).collect(), groups)
    }
}

/// Rows a streaming tablet gathers before it encodes them (once its file is open): encoding a
/// tablet's rows 16 Ki at a time keeps its Parquet writer's state in cache, where a piece at a
/// time (a few hundred rows, with a worker's 48 tablets taking turns) cost the benchmark's load
/// 8% more CPU.
const STREAM_ROWS: usize = 16 * 1024;

/// Rows a streaming tablet gathers before its segment file is created: enough for
/// `ColumnEncoding::choose`'s 1 Ki-row sample, few enough that a load's workers start encoding
/// once its first 400 Ki rows (over 96 tablets) are split, not its first 1.5 Mi.
const STREAM_START_ROWS: usize = 4 * 1024;

/// The open segment writers of the tablets one load worker owns, and the rows it holds for them
/// unwritten.
///
/// A tablet's rows *stream* while they arrive in key order (ascending ids, times, or a table
/// without key columns): each piece is encoded into the segment's row group in progress as it
/// comes, and the Parquet writer ends a row group at [`RUN_ROWS_MAX`] rows, so the workers
/// encode from the first batch on instead of gathering runs first. The first piece out of order
/// ends the row group in progress and turns the tablet to *sorting* for the rest of the load:
/// its pieces are gathered into runs of up to [`RUN_ROWS_MAX`] rows, each sorted by the key and
/// written as one row group. Either way every row group is in key order. What a worker holds
/// (the Arrow pieces it gathered and the encoded row groups in progress) stays within its share
/// of [`LOAD_BUFFER_BYTES_MAX`]: past it, the tablet holding the most is written out early.
struct TabletWriters<'a> {
    engine: &'a Engine,
    table: &'a Table,
    /// Per (partition index, bucket): the tablet's rowset id, its open writer and finished files.
    tablets: HashMap<(usize, u32), TabletState>,
    /// Schema indices of the key columns, which each row group is in the order of.
    key_columns: Vec<usize>,
    /// Bytes held over all tablets: gathered pieces and row groups in progress.
    held_bytes: usize,
    /// This worker's share of [`LOAD_BUFFER_BYTES_MAX`].
    held_bytes_max: usize,
    /// Finished segment files not fsynced yet.
    unsynced: Vec<Box<dyn WritableFile>>,
}

struct TabletState {
    rowset_id: u64,
    writer: Option<SegmentWriter>,
    finished: Vec<SegmentMeta>,
    /// Pieces gathered and not written: when sorting, the next run; when streaming, the first
    /// rows, until there are enough to choose the encodings from.
    run: Vec<RecordBatch>,
    run_rows: usize,
    run_bytes: usize,
    /// The memory of the writer's row group in progress, as last measured.
    writer_bytes: usize,
    /// Whether every piece so far came in key order (see [`TabletWriters`]).
    streaming: bool,
    /// While streaming, the first key column's value in the last row received.
    last_key: Option<i128>,
}

impl TabletState {
    fn held(&self) -> usize {
        self.run_bytes + self.writer_bytes
    }

    /// The gathered pieces, taken out of `held_bytes` too.
    fn take_run(&mut self, held_bytes: &mut usize) -> Vec<RecordBatch> {
        *held_bytes -= self.run_bytes;
        self.run_bytes = 0;
        self.run_rows = 0;
        std::mem::take(&mut self.run)
    }
}

impl<'a> TabletWriters<'a> {
    fn new(engine: &'a Engine, table: &'a Table, workers: usize) -> TabletWriters<'a> {
        TabletWriters {
            engine,
            table,
            tablets: HashMap::new(),
            key_columns: table
                .schema
                .columns()
                .iter()
                .take_while(|c| c.is_key)
                .enumerate()
                .map(|(i, _)| i)
                .collect(),
            held_bytes: 0,
            held_bytes_max: LOAD_BUFFER_BYTES_MAX / workers.max(1),
            unsynced: Vec::new(),
        }
    }

    /// Takes a piece for its tablet: encodes it at once while the tablet streams, gathers it
    /// (and writes the run once full) when it sorts; then writes out the tablets holding the
    /// most while this worker holds more than its share.
    fn write(&mut self, key: (usize, u32), piece: RecordBatch) -> Result<()> {
        let engine = self.engine;
        let state = self.tablets.entry(key).or_insert_with(|| TabletState {
            rowset_id: engine.allocate_ids(1),
            writer: None,
            finished: Vec::new(),
            run: Vec::new(),
            run_rows: 0,
            run_bytes: 0,
            writer_bytes: 0,
            streaming: true,
            last_key: None,
        });
        if state.streaming && !follows_in_key_order(&piece, &self.key_columns, &mut state.last_key)
        {
            // What streamed ends its row group, in order; the rows gathered and not written yet
            // start the first run.
            state.streaming = false;
            if let Some(w) = state.writer.as_mut() {
                w.end_row_group()?;
            }
            self.held_bytes -= state.writer_bytes;
            state.writer_bytes = 0;
        }
        let bytes = piece.get_array_memory_size();
        state.run_rows += piece.num_rows();
        state.run_bytes += bytes;
        state.run.push(piece);
        self.held_bytes += bytes;
        if state.streaming {
            // The first rows go out sooner, so the workers start encoding early in a load.
            let due = if state.writer.is_none() {
                STREAM_START_ROWS
            } else {
                STREAM_ROWS
            };
            if state.run_rows >= due {
                self.write_stream(key)?;
            }
        } else if state.run_rows >= RUN_ROWS_MAX {
            self.write_run(key)?;
        }
        while self.held_bytes > self.held_bytes_max {
            let Some(largest) = self
                .tablets
                .iter()
                .filter(|(_, s)| s.held() > 0)
                .max_by_key(|(_, s)| s.held())
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.write_out(largest)?;
        }
        Ok(())
    }

    /// Writes what a tablet holds and ends its row group in progress.
    fn write_out(&mut self, key: (usize, u32)) -> Result<()> {
        let Some(streaming) = self.tablets.get(&key).map(|s| s.streaming) else {
            return Ok(());
        };
        if !streaming {
            return self.write_run(key);
        }
        self.write_stream(key)?;
        if let Some(state) = self.tablets.get_mut(&key) {
            if let Some(w) = state.writer.as_mut() {
                w.end_row_group()?;
            }
            self.held_bytes -= state.writer_bytes;
            state.writer_bytes = 0;
        }
        Ok(())
    }

    /// Takes a tablet's gathered pieces, puts them in writing order with `arrange` (told whether
    /// the tablet's file is open yet) and encodes them into its writer, which the first rows
    /// open. `false` if nothing was gathered.
    fn encode_gathered(
        &mut self,
        key: (usize, u32),
        arrange: impl FnOnce(Vec<RecordBatch>, bool) -> Result<Vec<RecordBatch>>,
    ) -> Result<bool> {
        let Some(state) = self.tablets.get_mut(&key) else {
            return Ok(false);
        };
        let run = state.take_run(&mut self.held_bytes);
        if run.is_empty() {
            return Ok(false);
        }
        let run = arrange(run, state.writer.is_some())?;
        let w = open_writer(self.engine, self.table, key, state, &run[0])?;
        for piece in &run {
            w.write(piece)?;
        }
        Ok(true)
    }

    /// Finishes a tablet's segment (and its row group in progress) once it has
    /// [`SEGMENT_ROWS_MAX`] rows.
    fn finish_if_full(&mut self, key: (usize, u32)) -> Result<()> {
        let Some(state) = self.tablets.get_mut(&key) else {
            return Ok(());
        };
        if state
            .writer
            .as_ref()
            .is_some_and(|w| w.row_count() >= SEGMENT_ROWS_MAX)
            && let Some(w) = state.writer.take()
        {
            let (meta, file) = w.finish_unsynced(&self.table.schema)?;
            state.finished.push(meta);
            self.unsynced.push(file);
            self.held_bytes -= state.writer_bytes;
            state.writer_bytes = 0;
        }
        Ok(())
    }

    /// Encodes a streaming tablet's gathered pieces into its row group in progress.
    fn write_stream(&mut self, key: (usize, u32)) -> Result<()> {
        let table = self.table;
        let written = self.encode_gathered(key, |run, open| {
            if !open && run.len() > 1 {
                // The file's encodings are chosen from its first batch: all the rows gathered.
                return Ok(vec![concat_batches(table.schema.arrow_schema(), &run)?]);
            }
            Ok(run)
        })?;
        if !written {
            return Ok(());
        }
        if let Some(state) = self.tablets.get_mut(&key)
            && let Some(w) = &state.writer
        {
            let in_progress = w.memory_size();
            self.held_bytes = self.held_bytes - state.writer_bytes + in_progress;
            state.writer_bytes = in_progress;
        }
        self.finish_if_full(key)
    }

    /// Sorts a sorting tablet's gathered rows by the key columns and writes them as one row
    /// group.
    fn write_run(&mut self, key: (usize, u32)) -> Result<()> {
        let table = self.table;
        let key_columns = self.key_columns.clone();
        let written = self.encode_gathered(key, |mut run, _| {
            // Pieces already in key order are written as they are; otherwise the run is
            // gathered into one batch and sorted.
            if !run_in_order(&run, &key_columns) {
                let batch = match run.len() {
                    1 => run.remove(0),
                    _ => concat_batches(table.schema.arrow_schema(), &run)?,
                };
                run = vec![sort_by_key(batch, &key_columns)?];
            }
            Ok(run)
        })?;
        if !written {
            return Ok(());
        }
        if let Some(w) = self.tablets.get_mut(&key).and_then(|s| s.writer.as_mut()) {
            w.end_row_group()?;
        }
        self.finish_if_full(key)
    }

    /// Writes everything held and finishes every open segment (fsyncs are left to the caller,
    /// in [`TabletWriters::unsynced`]).
    fn finish(&mut self) -> Result<()> {
        let keys: Vec<(usize, u32)> = self.tablets.keys().copied().collect();
        for key in keys {
            self.write_out(key)?;
        }
        for state in self.tablets.values_mut() {
            if let Some(w) = state.writer.take() {
                let (meta, file) = w.finish_unsynced(&self.table.schema)?;
                state.finished.push(meta);
                self.unsynced.push(file);
            }
        }
        Ok(())
    }

    fn rowsets(&self) -> Vec<TabletRowset> {
        self.tablets
            .iter()
            .filter(|(_, state)| !state.finished.is_empty())
            .map(|(key, state)| {
                let partition = &self.table.partitions[key.0];
                TabletRowset {
                    partition_id: partition.id,
                    tablet_id: partition.tablets[key.1 as usize].id,
                    rowset: RowsetDef {
                        id: state.rowset_id,
                        segments: state.finished.clone(),
                    },
                }
            })
            .collect()
    }

    /// Removes every file these writers wrote.
    fn discard(&mut self) {
        self.unsynced.clear();
        let storage = &self.engine.inner.storage;
        for state in self.tablets.values_mut() {
            state.run.clear();
            if let Some(w) = state.writer.take() {
                let path = w.path().to_path_buf();
                drop(w);
                let _ = storage.remove_file(&path);
            }
            for s in state.finished.drain(..) {
                let _ = storage.remove_file(&self.engine.inner.root.join(&s.path));
            }
        }
    }
}

/// The tablet's open segment writer, created for `first` (its encodings are chosen from it)
/// as the rowset's next file if there is none.
fn open_writer<'s>(
    engine: &Engine,
    table: &Table,
    (partition_index, bucket): (usize, u32),
    state: &'s mut TabletState,
    first: &RecordBatch,
) -> Result<&'s mut SegmentWriter> {
    let writer = match state.writer.take() {
        Some(w) => w,
        None => {
            let partition = &table.partitions[partition_index];
            let tablet = &partition.tablets[bucket as usize];
            let rel = segment_path(
                table.id,
                partition.id,
                tablet.id,
                state.rowset_id,
                state.finished.len(),
            );
            SegmentWriter::create(
                &*engine.inner.storage,
                &engine.inner.root,
                rel,
                &table.schema,
                Codec::from_properties(&table.properties)?,
                first,
            )?
        }
    };
    Ok(state.writer.insert(writer))
}

/// Whether the pieces of a run, one after the other, are in key order: each ascending in its
/// first key column (strictly, when later key columns exist) and each starting at or after
/// (strictly after) where the previous one ended. `false` when unknown.
fn run_in_order(run: &[RecordBatch], key_columns: &[usize]) -> bool {
    let mut last = None;
    run.iter()
        .all(|piece| follows_in_key_order(piece, key_columns, &mut last))
}

/// Whether `piece` is in key order and starts at or after (strictly after, when later key
/// columns exist) `last`, the first key column's value in the row before it; then `last`
/// becomes the piece's last value. `false` when unknown; `true` without key columns.
fn follows_in_key_order(
    piece: &RecordBatch,
    key_columns: &[usize],
    last: &mut Option<i128>,
) -> bool {
    let Some(first) = key_columns.first() else {
        return true;
    };
    let strict = key_columns.len() > 1;
    let column = piece.column(*first);
    if column.is_empty() {
        return true;
    }
    // `ascending` is false for NULLs and types it does not know, so both ends are integers.
    if !ascending(column.as_ref(), strict) {
        return false;
    }
    let value = |row| crate::types::Value::from_array(column.as_ref(), row);
    let (Some(crate::types::Value::Int(head)), Some(crate::types::Value::Int(tail))) =
        (value(0), value(column.len() - 1))
    else {
        return false;
    };
    if let Some(previous) = *last
        && (head < previous || (strict && head == previous))
    {
        return false;
    }
    *last = Some(tail);
    true
}

/// The rows of `batch` ordered by `key_columns` (a prefix of the schema); the batch itself when
/// it is already in order, as rows often arrive (ascending ids, times).
fn sort_by_key(batch: RecordBatch, key_columns: &[usize]) -> Result<RecordBatch> {
    let Some(first) = key_columns.first() else {
        return Ok(batch);
    };
    if batch.num_rows() < 2 || ascending(batch.column(*first).as_ref(), key_columns.len() > 1) {
        return Ok(batch);
    }
    let columns: Vec<SortColumn> = key_columns
        .iter()
        .map(|i| SortColumn {
            values: batch.column(*i).clone(),
            options: None,
        })
        .collect();
    let indices = lexsort_to_indices(&columns, None)?;
    Ok(take_record_batch(&batch, &indices)?)
}

/// Whether an integral or temporal column without NULLs is in ascending order (`strict`: no two
/// equal values, so the later key columns cannot reorder rows). `false` when unknown.
fn ascending(array: &dyn Array, strict: bool) -> bool {
    use arrow::array::AsArray;
    use arrow::datatypes::{
        DataType, Date32Type, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit,
        TimestampMicrosecondType,
    };
    if array.null_count() > 0 {
        return false;
    }
    macro_rules! check {
        ($t:ty) => {{
            let v = array.as_primitive::<$t>().values();
            if strict {
                v.windows(2).all(|w| w[0] < w[1])
            } else {
                v.windows(2).all(|w| w[0] <= w[1])
            }
        }};
    }
    match array.data_type() {
        DataType::Int8 => check!(Int8Type),
        DataType::Int16 => check!(Int16Type),
        DataType::Int32 => check!(Int32Type),
        DataType::Int64 => check!(Int64Type),
        DataType::Date32 => check!(Date32Type),
        DataType::Timestamp(TimeUnit::Microsecond, _) => check!(TimestampMicrosecondType),
        _ => false,
    }
}

/// Checks a batch against the table schema (same column names in order, NOT NULL respected)
/// and casts columns whose Arrow type differs but converts without loss.
fn conform(table: &Table, batch: RecordBatch) -> Result<RecordBatch> {
    let schema = &table.schema;
    let mismatch = |detail: String| Error::SchemaMismatch {
        table: table.name.clone(),
        detail,
    };
    if batch.num_columns() != schema.columns().len() {
        return Err(mismatch(format!(
            "the batch has {} columns, the table {}",
            batch.num_columns(),
            schema.columns().len()
        )));
    }
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for ((field, array), column) in batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .zip(schema.columns())
    {
        if !field.name().eq_ignore_ascii_case(&column.name) {
            return Err(mismatch(format!(
                "column {} is named {}, expected {}",
                columns.len() + 1,
                field.name(),
                column.name
            )));
        }
        let target = column.column_type.arrow_type();
        let array = if array.data_type() == &target {
            array.clone()
        } else {
            cast_with_options(array, &target, &options).map_err(|e| {
                mismatch(format!(
                    "column {} has type {}, which does not convert to {}: {e}",
                    column.name,
                    array.data_type(),
                    column.column_type
                ))
            })?
        };
        if !column.nullable && array.null_count() > 0 {
            return Err(mismatch(format!(
                "column {} is NOT NULL but got NULL",
                column.name
            )));
        }
        if let crate::types::ColumnType::Char(n) | crate::types::ColumnType::Varchar(n) =
            column.column_type
            && let Some(strings) = arrow::array::AsArray::as_string_opt::<i32>(array.as_ref())
            // The offsets tell whether any value is too long without visiting the strings.
            && strings
                .offsets()
                .windows(2)
                .any(|w| w[1].saturating_sub(w[0]) as u32 > n)
            && let Some(long) = strings.iter().flatten().find(|s| s.len() > n as usize)
        {
            return Err(Error::InvalidValue {
                value: long.chars().take(64).collect(),
                column_type: column.column_type.to_string(),
                reason: format!("longer than {n} bytes (column {})", column.name),
            });
        }
        columns.push(array);
    }
    Ok(RecordBatch::try_new(
        schema.arrow_schema().clone(),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn rows_are_grouped_by_partition_and_bucket_in_their_order() {
        let partition_of = [1, 0, 1, 0, 2];
        let bucket_of = [0, 1, 0, 1, 0];
        let expected_order = vec![1, 3, 0, 2, 4];
        let expected_groups = vec![((0, 1), 0, 2), ((1, 0), 2, 2), ((2, 0), 4, 1)];
        assert_eq!(
            group_rows(&partition_of, &bucket_of, 2),
            (expected_order.clone(), expected_groups)
        );
        // Far more groups than rows takes the sorting path, with the same result.
        let (order, groups) = group_rows(&partition_of, &bucket_of, 1_000_000);
        assert_eq!(order, expected_order);
        assert_eq!(groups, vec![((0, 1), 0, 2), ((1, 0), 2, 2), ((2, 0), 4, 1)]);
    }

    fn keyed(ids: Vec<i64>, seconds: Vec<i32>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("n", DataType::Int32, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(Int32Array::from(seconds)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn runs_in_key_order_are_recognised_and_others_sorted() {
        let a = keyed(vec![1, 2, 3], vec![0, 0, 0]);
        let b = keyed(vec![3, 5], vec![0, 0]);
        assert!(run_in_order(&[a.clone(), b.clone()], &[0]));
        // With a second key column, equal first keys across pieces may be out of order.
        assert!(!run_in_order(&[a.clone(), b.clone()], &[0, 1]));
        assert!(!run_in_order(&[b.clone(), a.clone()], &[0]));
        assert!(run_in_order(&[b.clone(), a.clone()], &[]));
        let nulls = RecordBatch::try_new(
            a.schema(),
            vec![
                Arc::new(Int64Array::from(vec![None, Some(1)])),
                Arc::new(Int32Array::from(vec![0, 0])),
            ],
        )
        .unwrap();
        assert!(!run_in_order(&[nulls], &[0]));

        let sorted = sort_by_key(keyed(vec![3, 1, 3, 2], vec![2, 9, 1, 5]), &[0, 1]).unwrap();
        assert_eq!(sorted, keyed(vec![1, 2, 3, 3], vec![9, 5, 1, 2]));
        let untouched = sort_by_key(keyed(vec![3, 1], vec![0, 0]), &[]).unwrap();
        assert_eq!(untouched, keyed(vec![3, 1], vec![0, 0]));
    }
}
