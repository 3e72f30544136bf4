//! Segments: immutable Parquet files, the unit of storage.
//!
//! A segment is written once (temporary content is never visible: the file is fsynced before
//! the commit that names it), then only read, through a memory map. The manifest records per
//! segment its size, CRC-32C (checked before the first read of the file in a process), BLAKE3
//! content hash (the backup repository's content address) and per-column min/max/null counts
//! (for pruning).
//!
//! Parquet settings: ZSTD level 1, dictionary encoding, chunk statistics, row groups of up to
//! [`ROW_GROUP_ROWS`] rows; the Arrow schema is embedded so every reader gets the same types.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::kernels::aggregate;
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, TimestampMicrosecondType,
};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::{Storage, WritableFile};
use crate::types::{TableSchema, Value};

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// Min, max and null count of one column of a segment (min/max as SQL literal text).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct ColumnStats {
    /// Smallest non-null value, `None` if all NULL (or the type keeps no statistics).
    pub min: Option<String>,
    /// Largest non-null value.
    pub max: Option<String>,
    /// NULLs in the column.
    pub null_count: u64,
}

/// What the manifest records of a segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// Path relative to the data directory, `/`-separated.
    pub path: String,
    /// Rows.
    pub row_count: u64,
    /// File size in bytes.
    pub size: u64,
    /// CRC-32C of the whole file.
    pub crc32c: u32,
    /// BLAKE3 of the whole file, lowercase hex.
    pub hash: String,
    /// Per column, in schema order.
    pub stats: Vec<ColumnStats>,
}

/// Deletes segment files once they are both unreferenced in memory and removed by a durable
/// commit.
#[derive(Debug)]
pub(crate) struct Gc {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) root: PathBuf,
    /// Relative paths removed by a durable commit whose `Segment` may still be alive.
    obsolete: Mutex<HashSet<String>>,
}

impl Gc {
    pub(crate) fn new(storage: Arc<dyn Storage>, root: PathBuf) -> Gc {
        Gc {
            storage,
            root,
            obsolete: Mutex::new(HashSet::new()),
        }
    }

    /// Marks segments removed by a commit that is now durable.
    pub(crate) fn mark_obsolete(&self, paths: impl IntoIterator<Item = String>) {
        let mut set = self.obsolete.lock().unwrap_or_else(|p| p.into_inner());
        set.extend(paths);
    }

    fn release(&self, path: &str) {
        let was_obsolete = self
            .obsolete
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path);
        if was_obsolete {
            // A failure leaves an orphan that the next open removes.
            let _ = self.storage.remove_file(&self.root.join(path));
        }
    }
}

/// A segment of a committed version: its metadata, parsed statistics and file.
#[derive(Debug)]
pub struct Segment {
    /// What the manifest records.
    pub meta: SegmentMeta,
    /// Parsed min/max per column (`None` where unknown).
    pub(crate) bounds: Vec<Option<(Value, Value)>>,
    verified: AtomicBool,
    gc: Arc<Gc>,
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.gc.release(&self.meta.path);
    }
}

impl Segment {
    pub(crate) fn new(meta: SegmentMeta, schema: &TableSchema, gc: Arc<Gc>) -> Segment {
        let bounds = schema
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let stats = meta.stats.get(i)?;
                let min = Value::parse(stats.min.as_deref()?, &c.column_type).ok()?;
                let max = Value::parse(stats.max.as_deref()?, &c.column_type).ok()?;
                Some((min, max))
            })
            .collect();
        Segment {
            meta,
            bounds,
            verified: AtomicBool::new(false),
            gc,
        }
    }

    /// The absolute path of the file.
    pub fn full_path(&self) -> PathBuf {
        self.gc.root.join(&self.meta.path)
    }

    /// Maps the file and checks its size and (once per process) its CRC-32C.
    pub fn map_verified(&self) -> Result<bytes::Bytes> {
        let path = self.full_path();
        let bytes = self.gc.storage.map(&path)?;
        if bytes.len() as u64 != self.meta.size {
            return Err(Error::corrupt(
                &path,
                format!(
                    "size is {} bytes, the manifest records {}",
                    bytes.len(),
                    self.meta.size
                ),
            ));
        }
        if !self.verified.load(Ordering::Relaxed) {
            let actual = crc32c::crc32c(&bytes);
            if actual != self.meta.crc32c {
                return Err(Error::ChecksumMismatch {
                    path,
                    expected: format!("{:08x}", self.meta.crc32c),
                    actual: format!("{actual:08x}"),
                });
            }
            self.verified.store(true, Ordering::Relaxed);
        }
        Ok(bytes)
    }

    /// A reader of the segment's rows, with the columns in `projection` (schema indices).
    pub fn reader(
        &self,
        projection: Option<&[usize]>,
        batch_size: usize,
    ) -> Result<ParquetRecordBatchReader> {
        let path = self.full_path();
        let bytes = self.map_verified()?;
        let pq = |source| Error::Parquet {
            path: path.clone(),
            source,
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(pq)?;
        let builder = match projection {
            Some(indices) => {
                let mask = ProjectionMask::roots(builder.parquet_schema(), indices.iter().copied());
                builder.with_projection(mask)
            }
            None => builder,
        };
        builder.with_batch_size(batch_size).build().map_err(pq)
    }
}

/// An `io::Write` over a storage file that counts bytes and computes both checksums.
struct ChecksumWriter {
    file: Box<dyn WritableFile>,
    size: u64,
    crc: u32,
    hasher: blake3::Hasher,
    /// The first error, kept with its path (io::Error loses it).
    error: Option<Error>,
}

impl Write for ChecksumWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Err(e) = self.file.write_all(buf) {
            let message = e.to_string();
            self.error.get_or_insert(e);
            return Err(io::Error::other(message));
        }
        self.size += buf.len() as u64;
        self.crc = crc32c::crc32c_append(self.crc, buf);
        self.hasher.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes one segment file from batches, computing its statistics on the way.
pub(crate) struct SegmentWriter {
    writer: ArrowWriter<ChecksumWriter>,
    path: PathBuf,
    relative: String,
    stats: Vec<StatsAccumulator>,
    row_count: u64,
}

impl std::fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("path", &self.path)
            .finish()
    }
}

pub(crate) fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by("shale".to_string())
        .build()
}

impl SegmentWriter {
    /// Creates `root/relative` and prepares to write batches of `schema`.
    pub(crate) fn create(
        storage: &dyn Storage,
        root: &Path,
        relative: String,
        schema: &TableSchema,
    ) -> Result<SegmentWriter> {
        let path = root.join(&relative);
        if let Some(dir) = path.parent() {
            storage.create_dir_all(dir)?;
        }
        let file = storage.create(&path)?;
        let sink = ChecksumWriter {
            file,
            size: 0,
            crc: 0,
            hasher: blake3::Hasher::new(),
            error: None,
        };
        let writer = ArrowWriter::try_new(
            sink,
            schema.arrow_schema().clone(),
            Some(writer_properties()),
        )
        .map_err(|source| Error::Parquet {
            path: path.clone(),
            source,
        })?;
        Ok(SegmentWriter {
            writer,
            path,
            relative,
            stats: vec![StatsAccumulator::default(); schema.columns().len()],
            row_count: 0,
        })
    }

    fn fail(&mut self, source: parquet::errors::ParquetError) -> Error {
        self.writer
            .inner_mut()
            .error
            .take()
            .unwrap_or_else(|| Error::Parquet {
                path: self.path.clone(),
                source,
            })
    }

    /// Appends a batch (already in the table's schema).
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        for (acc, column) in self.stats.iter_mut().zip(batch.columns()) {
            acc.update(column.as_ref());
        }
        self.row_count += batch.num_rows() as u64;
        if let Err(e) = self.writer.write(batch) {
            return Err(self.fail(e));
        }
        Ok(())
    }

    /// Rows written so far.
    pub(crate) fn row_count(&self) -> u64 {
        self.row_count
    }

    /// Finishes the file, fsyncs it and returns its metadata.
    pub(crate) fn finish(mut self, schema: &TableSchema) -> Result<SegmentMeta> {
        if let Err(e) = self.writer.finish() {
            return Err(self.fail(e));
        }
        let sink = self.writer.inner_mut();
        sink.file.sync()?;
        let meta = SegmentMeta {
            path: self.relative.clone(),
            row_count: self.row_count,
            size: sink.size,
            crc32c: sink.crc,
            hash: sink.hasher.finalize().to_hex().to_string(),
            stats: self
                .stats
                .iter()
                .zip(schema.columns())
                .map(|(acc, c)| ColumnStats {
                    min: acc.min.as_ref().map(|v| v.to_literal(&c.column_type)),
                    max: acc.max.as_ref().map(|v| v.to_literal(&c.column_type)),
                    null_count: acc.null_count,
                })
                .collect(),
        };
        Ok(meta)
    }

    /// The file's absolute path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Clone, Debug, Default)]
struct StatsAccumulator {
    min: Option<Value>,
    max: Option<Value>,
    null_count: u64,
    /// Set once a batch had values without a usable order (NaN): no min/max is kept then.
    unordered: bool,
}

impl StatsAccumulator {
    fn update(&mut self, array: &dyn Array) {
        self.null_count += array.null_count() as u64;
        let Some((min, max)) = min_max(array) else {
            self.unordered = true;
            self.min = None;
            self.max = None;
            return;
        };
        if self.unordered {
            return;
        }
        if let Some(min) = min
            && self.min.as_ref().is_none_or(|m| min < *m)
        {
            self.min = Some(min);
        }
        if let Some(max) = max
            && self.max.as_ref().is_none_or(|m| max > *m)
        {
            self.max = Some(max);
        }
    }
}

/// Min and max of an array; `None` when its values have no usable order (NaN).
fn min_max(array: &dyn Array) -> Option<(Option<Value>, Option<Value>)> {
    macro_rules! prim {
        ($t:ty, $wrap:expr) => {{
            let a = array.as_primitive::<$t>();
            (aggregate::min(a).map($wrap), aggregate::max(a).map($wrap))
        }};
    }
    Some(match array.data_type() {
        DataType::Boolean => {
            let a = array.as_boolean();
            (
                aggregate::min_boolean(a).map(Value::Bool),
                aggregate::max_boolean(a).map(Value::Bool),
            )
        }
        DataType::Int8 => prim!(Int8Type, |v| Value::Int(v.into())),
        DataType::Int16 => prim!(Int16Type, |v| Value::Int(v.into())),
        DataType::Int32 => prim!(Int32Type, |v| Value::Int(v.into())),
        DataType::Int64 => prim!(Int64Type, |v| Value::Int(v.into())),
        DataType::Date32 => prim!(Date32Type, |v| Value::Int(v.into())),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            prim!(TimestampMicrosecondType, |v| Value::Int(v.into()))
        }
        DataType::Decimal128(_, _) => prim!(Decimal128Type, Value::Int),
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            if a.values().iter().any(|v| v.is_nan()) {
                return None;
            }
            prim!(Float32Type, |v| Value::Float(v.into()))
        }
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            if a.values().iter().any(|v| v.is_nan()) {
                return None;
            }
            prim!(Float64Type, Value::Float)
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            (
                aggregate::min_string(a).map(|s| Value::Str(s.to_string())),
                aggregate::max_string(a).map(|s| Value::Str(s.to_string())),
            )
        }
        _ => (None, None),
    })
}
