//! Scans: a table as of a snapshot, as a stream of Arrow record batches.
//!
//! Partitions are pruned by their bounds and segments by their min/max statistics; the rows of
//! the remaining segments are filtered exactly (unless [`ScanOptions::exact`] is off, for callers
//! such as DataFusion that filter again). Segments are decoded by worker threads into a bounded
//! channel, so a scan holds at most a few batches per thread in memory, whatever the table size.

use std::sync::Arc;
use std::thread::JoinHandle;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, Scalar};
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::{boolean, cmp};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use crossbeam_channel::{Receiver, bounded, unbounded};

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
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
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

impl Engine {
    /// Scans `db.table` as of `snapshot`.
    pub fn scan(
        &self,
        snapshot: &Snapshot,
        db: &str,
        table: &str,
        options: ScanOptions,
    ) -> Result<ScanStream> {
        let table = snapshot.get_table(db, table)?.clone();
        let (segments, pruned) = plan(&table, &options)?;
        let arrow_schema = match options.string_views {
            true => Arc::new(with_string_views(table.schema.arrow_schema())),
            false => table.schema.arrow_schema().clone(),
        };
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
        let threads = match options.threads {
            0 => self.options().threads,
            n => n,
        }
        .clamp(1, segments.len().max(1));
        let segments_scanned = segments.len();
        let (task_tx, task_rx) = unbounded();
        for s in segments {
            let _ = task_tx.send(s);
        }
        drop(task_tx);
        let (tx, rx) = bounded(threads * 2);
        let options = Arc::new(options);
        let mut workers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let task_rx = task_rx.clone();
            let tx = tx.clone();
            let table = table.clone();
            let options = options.clone();
            let out_schema = schema.clone();
            let spawned = std::thread::Builder::new()
                .name("shale-scan".into())
                .spawn(move || {
                    while let Ok(segment) = task_rx.recv() {
                        // A decoder that panics on damaged bytes must not end the scan silently
                        // with rows missing: it becomes an error naming the file.
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            scan_segment(&table, &segment, &options, &out_schema, &tx)
                        }))
                        .map(|r| r.map(|listening| listening.then_some(())))
                        .unwrap_or_else(|_| {
                            Err(Error::corrupt(
                                segment.full_path(),
                                "the Parquet decoder failed",
                            ))
                        });
                        match result {
                            Ok(Some(())) => {}
                            // The consumer dropped the scan: open no further segment.
                            Ok(None) => return,
                            Err(e) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                        }
                    }
                })
                .map_err(|e| Error::io("spawn scan thread", "", e))?;
            workers.push(spawned);
        }
        Ok(ScanStream {
            schema,
            receiver: rx,
            workers,
            segments_scanned,
            segments_pruned: pruned,
        })
    }
}

/// Reads one segment into `tx`; returns `Ok(false)` as soon as the consumer went away.
fn scan_segment(
    table: &Table,
    segment: &Segment,
    options: &ScanOptions,
    out_schema: &SchemaRef,
    tx: &crossbeam_channel::Sender<Result<RecordBatch>>,
) -> Result<bool> {
    let filters: Vec<(usize, &Predicate)> = if options.exact {
        options
            .predicates
            .iter()
            .filter_map(|p| table.schema.index_of(p.column()).map(|i| (i, p)))
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
        .chain(filters.iter().map(|(i, _)| *i))
        .collect();
    read.sort_unstable();
    read.dedup();
    // Row groups and pages are skipped by their min/max whether or not rows are filtered here.
    let prune: Vec<(usize, &Predicate)> = options
        .predicates
        .iter()
        .filter_map(|p| table.schema.index_of(p.column()).map(|i| (i, p)))
        .collect();
    let reader = segment.reader_pruned(
        Some(&read),
        options.batch_size,
        &prune,
        options.string_views,
    )?;
    let path = segment.full_path();
    for batch in reader {
        let batch = batch.map_err(|e| Error::corrupt(&path, format!("decoding failed: {e}")))?;
        if batch.num_columns() != read.len() {
            return Err(Error::corrupt(
                &path,
                "column count differs from the table schema",
            ));
        }
        let batch = if filters.is_empty() {
            batch
        } else {
            let mut mask: Option<BooleanArray> = None;
            for (i, pred) in &filters {
                let pos = read
                    .binary_search(i)
                    .map_err(|_| Error::corrupt(&path, "projection"))?;
                let m = pred.evaluate(
                    batch.column(pos).as_ref(),
                    &table.schema.columns()[*i].column_type,
                )?;
                mask = Some(match mask {
                    Some(prev) => boolean::and(&prev, &m)?,
                    None => m,
                });
            }
            match mask {
                Some(m) => filter_record_batch(&batch, &m)?,
                None => batch,
            }
        };
        if batch.num_rows() == 0 {
            continue;
        }
        let columns: Vec<ArrayRef> = wanted
            .iter()
            .map(|i| read.binary_search(i).map(|pos| batch.column(pos).clone()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::corrupt(&path, "projection"))?;
        let out = RecordBatch::try_new_with_options(
            out_schema.clone(),
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )
        .map_err(|e| {
            Error::corrupt(
                &path,
                format!("segment does not match the table schema: {e}"),
            )
        })?;
        if tx.send(Ok(out)).is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}
