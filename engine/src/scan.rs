//! Scans: a table as of a snapshot, as a stream of Arrow record batches.
//!
//! Partitions are pruned by their bounds and segments by their min/max statistics; the rows of
//! the remaining segments are filtered exactly (unless [`ScanOptions::exact`] is off, for callers
//! such as DataFusion that filter again).
//!
//! Two ways to run a scan, both over the same [`ScanTasks`] (the segments left after pruning,
//! handed out one at a time to whichever thread asks next):
//! - [`Engine::scan`]: worker threads decode into a bounded channel, so a scan holds at most a
//!   few batches per thread in memory, whatever the table size.
//! - [`Engine::scan_tasks`]: the caller's own threads decode, each claiming segments with
//!   [`ScanTasks::next_segment`] and reading them in place ([`SegmentScan`]). A query engine
//!   that aggregates each batch on the thread that decoded it (DataFusion's partitions) then
//!   finds the batch still in that core's cache, and no thread waits on a channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, Scalar};
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::{boolean, cmp};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use crossbeam_channel::{Receiver, bounded};

use crate::catalog::Table;
use crate::engine::{Engine, Snapshot};
use crate::error::{Error, Result};
use crate::partition::PartitionBound;
use crate::segment::Segment;
use crate::types::{ColumnType, Value};

/// A simple predicate on one column, used to prune and filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Predicate {
    /// `column = value`.
    Eq(String, Value),
    /// `column < value`.
    Lt(String, Value),
    /// `column <= value`.
    Le(String, Value),
    /// `column > value`.
    Gt(String, Value),
    /// `column >= value`.
    Ge(String, Value),
    /// `column BETWEEN low AND high` (inclusive).
    Between(String, Value, Value),
    /// `column IN (values)`.
    In(String, Vec<Value>),
}

impl Predicate {
    /// The column the predicate is on.
    pub fn column(&self) -> &str {
        match self {
            Predicate::Eq(c, _)
            | Predicate::Lt(c, _)
            | Predicate::Le(c, _)
            | Predicate::Gt(c, _)
            | Predicate::Ge(c, _)
            | Predicate::Between(c, _, _)
            | Predicate::In(c, _) => c,
        }
    }

    /// Whether some value in `[min, max]` may satisfy the predicate.
    pub fn may_match(&self, min: &Value, max: &Value) -> bool {
        match self {
            Predicate::Eq(_, v) => v >= min && v <= max,
            Predicate::Lt(_, v) => min < v,
            Predicate::Le(_, v) => min <= v,
            Predicate::Gt(_, v) => max > v,
            Predicate::Ge(_, v) => max >= v,
            Predicate::Between(_, lo, hi) => lo <= max && hi >= min && lo <= hi,
            Predicate::In(_, vs) => vs.iter().any(|v| v >= min && v <= max),
        }
    }

    fn may_match_bound(&self, bound: &PartitionBound) -> bool {
        match bound {
            PartitionBound::All => true,
            PartitionBound::Range { lower, upper } => {
                let min = Value::Int(lower.unwrap_or(i128::MIN));
                // `upper` is exclusive; a partition [l, u) holds keys up to u - 1.
                let max = match upper {
                    Some(u) => match u.checked_sub(1) {
                        Some(m) => Value::Int(m),
                        None => return false,
                    },
                    None => Value::Int(i128::MAX),
                };
                min <= max && self.may_match(&min, &max)
            }
            PartitionBound::List(values) => values.iter().any(|v| self.may_match(v, v)),
        }
    }

    /// The rows of `array` (the predicate's column) that satisfy it; NULL never does.
    fn evaluate(&self, array: &dyn Array, column_type: &ColumnType) -> Result<BooleanArray> {
        // The column may be read in another layout of its type (`Utf8View` for `Utf8`).
        let scalar = |v: &Value| -> Result<Scalar<ArrayRef>> {
            let value = v.to_array(column_type)?;
            Ok(Scalar::new(if value.data_type() == array.data_type() {
                value
            } else {
                arrow::compute::cast(&value, array.data_type())?
            }))
        };
        Ok(match self {
            Predicate::Eq(_, v) => cmp::eq(&array, &scalar(v)?)?,
            Predicate::Lt(_, v) => cmp::lt(&array, &scalar(v)?)?,
            Predicate::Le(_, v) => cmp::lt_eq(&array, &scalar(v)?)?,
            Predicate::Gt(_, v) => cmp::gt(&array, &scalar(v)?)?,
            Predicate::Ge(_, v) => cmp::gt_eq(&array, &scalar(v)?)?,
            Predicate::Between(_, lo, hi) => boolean::and(
                &cmp::gt_eq(&array, &scalar(lo)?)?,
                &cmp::lt_eq(&array, &scalar(hi)?)?,
            )?,
            Predicate::In(_, vs) => {
                let mut acc = BooleanArray::from(vec![false; array.len()]);
                for v in vs {
                    acc = boolean::or(&acc, &cmp::eq(&array, &scalar(v)?)?)?;
                }
                acc
            }
        })
    }
}

/// What to read.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Column indices to return, in that order; `None` for all.
    pub projection: Option<Vec<usize>>,
    /// Predicates, all of which must hold (AND).
    pub predicates: Vec<Predicate>,
    /// Only these partitions (by name); `None` for all.
    pub partitions: Option<Vec<String>>,
    /// Rows per batch (at most).
    pub batch_size: usize,
    /// Filter rows by the predicates exactly (otherwise only prune).
    pub exact: bool,
    /// Decoding threads; `0` uses the engine's setting.
    pub threads: usize,
    /// Return CHAR/VARCHAR/STRING columns as Arrow `Utf8View` rather than `Utf8`. Decoding a
    /// dictionary-encoded column then copies one 16-byte view per row instead of the string's
    /// bytes, and strings of up to 12 bytes hash and compare as one integer (DataFusion's
    /// GROUP BY and joins). The values are the same; only their Arrow layout differs.
    pub string_views: bool,
    /// Schema indices of CHAR/VARCHAR/STRING columns to return as Arrow
    /// `Dictionary(Int32, Utf8)`: the keys index the segment's own Parquet dictionary, whose
    /// values array every batch of a row group shares, so a consumer (SQL's low-cardinality
    /// GROUP BY) can work on the few distinct values instead of every row's string. A column
    /// Parquet stored without a dictionary is converted. Takes precedence over `string_views`.
    pub dictionary_columns: Vec<usize>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            projection: None,
            predicates: Vec::new(),
            partitions: None,
            batch_size: 64 * 1024,
            exact: true,
            threads: 0,
            string_views: false,
            dictionary_columns: Vec::new(),
        }
    }
}

/// A running scan; yields batches until the table (as of the snapshot) is read.
#[derive(Debug)]
pub struct ScanStream {
    schema: SchemaRef,
    receiver: Receiver<Result<RecordBatch>>,
    workers: Vec<JoinHandle<()>>,
    /// What pruning left to read.
    pub segments_scanned: usize,
    /// What pruning skipped.
    pub segments_pruned: usize,
}

impl ScanStream {
    /// The schema of the batches (after projection).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

impl Iterator for ScanStream {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.receiver.recv() {
            Ok(item) => Some(item),
            Err(_) => {
                for w in self.workers.drain(..) {
                    let _ = w.join();
                }
                None
            }
        }
    }
}

/// Dropping a scan before its end (a `LIMIT`, an early error upstream) stops its workers: each
/// ends at its next send, so no segment is opened or decoded for nobody. The drop waits for them,
/// so a dropped scan holds no file open and uses no CPU afterwards.
impl Drop for ScanStream {
    fn drop(&mut self) {
        self.receiver = crossbeam_channel::never();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// `schema` with every `Utf8` field (CHAR/VARCHAR/STRING) as `Utf8View`.
pub fn with_string_views(schema: &Schema) -> Schema {
    scan_layout(schema, true, &[])
}

/// `schema` in the layout a scan returns: the `Utf8` fields listed in `dictionaries` (schema
/// indices) as `Dictionary(Int32, Utf8)`, and with `string_views` the other `Utf8` fields as
/// `Utf8View`.
pub(crate) fn scan_layout(schema: &Schema, string_views: bool, dictionaries: &[usize]) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| match f.data_type() {
            DataType::Utf8 if dictionaries.contains(&i) => f.as_ref().clone().with_data_type(
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            ),
            DataType::Utf8 if string_views => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// The segments of a table that may hold rows matching the options.
pub fn plan(table: &Table, options: &ScanOptions) -> Result<(Vec<Arc<Segment>>, usize)> {
    for p in &options.predicates {
        if table.schema.index_of(p.column()).is_none() {
            return Err(Error::SchemaMismatch {
                table: table.name.clone(),
                detail: format!("unknown column {} in predicate", p.column()),
            });
        }
    }
    if let Some(names) = &options.partitions {
        for n in names {
            if table.partition(n).is_none() {
                return Err(Error::PartitionNotFound {
                    table: table.name.clone(),
                    partition: n.clone(),
                });
            }
        }
    }
    let partition_column = table.partitioning.column();
    let mut chosen = Vec::new();
    let mut pruned = 0;
    for p in &table.partitions {
        let selected = options
            .partitions
            .as_ref()
            .is_none_or(|n| n.contains(&p.name));
        let bound_ok = options.predicates.iter().all(|pred| {
            partition_column.is_none_or(|c| !pred.column().eq_ignore_ascii_case(c))
                || pred.may_match_bound(&p.bound)
        });
        for s in p.segments() {
            let stats_ok = options.predicates.iter().all(|pred| {
                let Some(i) = table.schema.index_of(pred.column()) else {
                    return true;
                };
                match s.bounds.get(i) {
                    Some(Some((min, max))) => pred.may_match(min, max),
                    // No statistics: only an all-NULL column is known to match nothing.
                    _ => s
                        .meta
                        .stats
                        .get(i)
                        .is_none_or(|st| st.null_count < s.meta.row_count),
                }
            });
            if selected && bound_ok && stats_ok {
                chosen.push(s.clone());
            } else {
                pruned += 1;
            }
        }
    }
    Ok((chosen, pruned))
}

/// The segments of one scan, claimed one at a time by the threads that decode them.
///
/// Every segment is handed out exactly once, whichever threads ask and in whatever order they
/// do; the first claims get the segments in partition order. Rows are the same as
/// [`Engine::scan`]'s with the same options.
#[derive(Debug)]
pub struct ScanTasks {
    table: Arc<Table>,
    options: ScanOptions,
    schema: SchemaRef,
    segments: Vec<Arc<Segment>>,
    next: AtomicUsize,
    segments_pruned: usize,
}

impl ScanTasks {
    /// The schema of the batches (after projection).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// What pruning left to read.
    pub fn segments_scanned(&self) -> usize {
        self.segments.len()
    }

    /// What pruning skipped.
    pub fn segments_pruned(&self) -> usize {
        self.segments_pruned
    }

    /// Claims the next unread segment, to be decoded by the caller; `None` once every segment
    /// was claimed. An error (the file does not match its checksum, is not Parquet) names the
    /// file; the other segments can still be claimed.
    pub fn next_segment(&self) -> Option<Result<SegmentScan>> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let segment = self.segments.get(index)?;
        Some(SegmentScan::open(self, segment))
    }
}

/// One claimed segment, decoded in the caller's thread: an iterator of its batches (filtered
/// and projected as the scan's options say).
pub struct SegmentScan {
    /// The batches' schema.
    schema: SchemaRef,
    path: std::path::PathBuf,
    reader: Option<crate::segment::SegmentReader>,
    /// Schema indices of the columns read: the projection plus the filtered columns, in order.
    read: Vec<usize>,
    /// Schema indices of the columns returned, in the projection's order.
    wanted: Vec<usize>,
    /// Predicates applied to the rows here (`exact`), with the schema index and type of their
    /// column.
    filters: Vec<(usize, Predicate, ColumnType)>,
}

impl std::fmt::Debug for SegmentScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentScan")
            .field("path", &self.path)
            .finish()
    }
}

/// A decoder that panics on damaged bytes must not end the scan silently with rows missing: the
/// panic becomes an error naming the file.
fn catch_decoder_panic<T>(path: &std::path::Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(Error::corrupt(path, "the Parquet decoder failed")))
}

impl SegmentScan {
    fn open(tasks: &ScanTasks, segment: &Segment) -> Result<SegmentScan> {
        let table = &tasks.table;
        let options = &tasks.options;
        let path = segment.full_path();
        let filters: Vec<(usize, Predicate, ColumnType)> = if options.exact {
            options
                .predicates
                .iter()
                .filter_map(|p| {
                    let i = table.schema.index_of(p.column())?;
                    Some((i, p.clone(), table.schema.columns()[i].column_type))
                })
                .collect()
        } else {
            Vec::new()
        };
        let wanted: Vec<usize> = match &options.projection {
            Some(p) => p.clone(),
            None => (0..table.schema.columns().len()).collect(),
        };
        // Read the projected columns plus the filtered ones, in schema order.
        let mut read: Vec<usize> = wanted
            .iter()
            .copied()
            .chain(filters.iter().map(|(i, _, _)| *i))
            .collect();
        read.sort_unstable();
        read.dedup();
        // Row groups and pages are skipped by their min/max whether or not rows are filtered
        // here.
        let prune: Vec<(usize, &Predicate)> = options
            .predicates
            .iter()
            .filter_map(|p| table.schema.index_of(p.column()).map(|i| (i, p)))
            .collect();
        let reader = catch_decoder_panic(&path, || {
            segment.reader_pruned(
                Some(&read),
                options.batch_size,
                &prune,
                options.string_views,
                &options.dictionary_columns,
            )
        })?;
        Ok(SegmentScan {
            schema: tasks.schema.clone(),
            path,
            reader: Some(reader),
            read,
            wanted,
            filters,
        })
    }

    /// The next decoded batch, `Ok(None)` at the end of the segment (or after an error).
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            let Some(batch) = self.reader.as_mut().and_then(|r| r.next()) else {
                return Ok(None);
            };
            let path = &self.path;
            let batch = batch.map_err(|e| Error::corrupt(path, format!("decoding failed: {e}")))?;
            if batch.num_columns() != self.read.len() {
                return Err(Error::corrupt(
                    path,
                    "column count differs from the table schema",
                ));
            }
            let batch = self.filter_rows(batch)?;
            if batch.num_rows() == 0 {
                continue;
            }
            let columns: Vec<ArrayRef> = self
                .wanted
                .iter()
                .map(|i| {
                    self.read
                        .binary_search(i)
                        .map(|pos| batch.column(pos).clone())
                })
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| Error::corrupt(path, "projection"))?;
            let out = RecordBatch::try_new_with_options(
                self.schema.clone(),
                columns,
                &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
            )
            .map_err(|e| {
                Error::corrupt(
                    path,
                    format!("segment does not match the table schema: {e}"),
                )
            })?;
            return Ok(Some(out));
        }
    }

    /// The rows of `batch` that satisfy every exact filter.
    fn filter_rows(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let mut mask: Option<BooleanArray> = None;
        for (i, pred, column_type) in &self.filters {
            let pos = self
                .read
                .binary_search(i)
                .map_err(|_| Error::corrupt(&self.path, "projection"))?;
            let m = pred.evaluate(batch.column(pos).as_ref(), column_type)?;
            mask = Some(match mask {
                Some(prev) => boolean::and(&prev, &m)?,
                None => m,
            });
        }
        Ok(match mask {
            Some(m) => filter_record_batch(&batch, &m)?,
            None => batch,
        })
    }
}

impl Iterator for SegmentScan {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.next_batch()))
            .unwrap_or_else(|_| Err(Error::corrupt(&self.path, "the Parquet decoder failed")));
        match result {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => {
                self.reader = None;
                None
            }
            Err(e) => {
                // Nothing more is read from a segment that failed once.
                self.reader = None;
                Some(Err(e))
            }
        }
    }
}

impl Engine {
    /// The segments a scan of `db.table` as of `snapshot` reads, for the caller's threads to
    /// decode ([`ScanTasks::next_segment`]). `options.threads` is not used: the callers are
    /// the threads.
    pub fn scan_tasks(
        &self,
        snapshot: &Snapshot,
        db: &str,
        table: &str,
        options: ScanOptions,
    ) -> Result<ScanTasks> {
        let table = snapshot.get_table(db, table)?.clone();
        let (segments, pruned) = plan(&table, &options)?;
        let arrow_schema = Arc::new(scan_layout(
            table.schema.arrow_schema(),
            options.string_views,
            &options.dictionary_columns,
        ));
        let schema = match &options.projection {
            Some(p) => {
                if let Some(bad) = p.iter().find(|i| **i >= arrow_schema.fields().len()) {
                    return Err(Error::SchemaMismatch {
                        table: table.name.clone(),
                        detail: format!("projection index {bad} out of range"),
                    });
                }
                Arc::new(arrow_schema.project(p)?)
            }
            None => arrow_schema.clone(),
        };
        Ok(ScanTasks {
            table,
            options,
            schema,
            segments,
            next: AtomicUsize::new(0),
            segments_pruned: pruned,
        })
    }

    /// Scans `db.table` as of `snapshot`, decoding on `options.threads` worker threads.
    pub fn scan(
        &self,
        snapshot: &Snapshot,
        db: &str,
        table: &str,
        options: ScanOptions,
    ) -> Result<ScanStream> {
        let threads = match options.threads {
            0 => self.options().threads,
            n => n,
        };
        let tasks = Arc::new(self.scan_tasks(snapshot, db, table, options)?);
        let threads = threads.clamp(1, tasks.segments_scanned().max(1));
        let (tx, rx) = bounded(threads * 2);
        let mut workers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let tasks = tasks.clone();
            let tx = tx.clone();
            let spawned = std::thread::Builder::new()
                .name("shale-scan".into())
                .spawn(move || {
                    while let Some(segment) = tasks.next_segment() {
                        let batches = match segment {
                            Ok(batches) => batches,
                            Err(e) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                        };
                        for batch in batches {
                            let failed = batch.is_err();
                            // The consumer dropped the scan: open no further segment.
                            if tx.send(batch).is_err() || failed {
                                return;
                            }
                        }
                    }
                })
                .map_err(|e| Error::io("spawn scan thread", "", e))?;
            workers.push(spawned);
        }
        Ok(ScanStream {
            schema: tasks.schema().clone(),
            receiver: rx,
            workers,
            segments_scanned: tasks.segments_scanned(),
            segments_pruned: tasks.segments_pruned(),
        })
    }
}
