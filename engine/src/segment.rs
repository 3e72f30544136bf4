//! Segments: immutable Parquet files, the unit of storage.
//!
//! A segment is written once (temporary content is never visible: the file is fsynced before
//! the commit that names it), then only read, through a memory map. The manifest records per
//! segment its size, CRC-32C, BLAKE3 content hash (the backup repository's content address),
//! per-column min/max/null counts (for pruning) and the CRC-32C of its parts
//! ([`PartChecksums`]): the tail (page index and footer) and each column's chunks. Each part a
//! read needs is checked before its first read in a process, so a query reading 2 of 5 columns
//! checks (and faults into memory) about 2/5 of the file, not all of it. A segment recorded
//! without part checksums (by an older version) is checked whole before its first read.
//!
//! Parquet settings: the table's `compression` property ([`Codec`]; LZ4 by default, as in
//! StarRocks and ClickHouse: a scan decodes LZ4 about 3× faster than ZSTD), chunk statistics, row groups of up to [`ROW_GROUP_ROWS`] rows;
//! the Arrow schema is embedded so every reader gets the same types. The encoding of each column
//! is chosen from a sample of the segment's first rows ([`ColumnEncoding`]): dictionary encoding
//! only for columns with few distinct values (interning every value of a high-cardinality column
//! was most of a load's time, and its dictionary then overflowed and fell back anyway), otherwise
//! DELTA_BINARY_PACKED for integral and temporal columns and PLAIN for the rest.

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
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::page_index::offset_index::PageLocation;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scan::{Predicate, scan_layout};
use crate::storage::{Storage, WritableFile};
use crate::types::{ColumnType, TableSchema, Value};

/// Rows per Parquet row group (at most).
pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// Rows per data page (at most): the unit a scan skips by the page index's min/max.
pub const PAGE_ROWS_MAX: usize = 8192;

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
    /// CRC-32C of the file's parts; absent in manifests written before they were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<PartChecksums>,
}

/// Bytes per checksum block: part checksums cover their parts widened to multiples of it.
pub const CHECKSUM_BLOCK_BYTES: u64 = 4096;

/// CRC-32C of the parts of a segment file that a scan reads separately. Each part is widened
/// to whole blocks of `block_bytes` (the last block ends at the end of the file), so the writer
/// computes them from the CRC of the file's prefixes at block boundaries, without a second pass
/// over the bytes. Parts overlap where they share a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartChecksums {
    /// The block size the parts are widened to ([`CHECKSUM_BLOCK_BYTES`]).
    pub block_bytes: u64,
    /// Where the tail starts: the block holding the end of the last column chunk. The tail
    /// runs to the end of the file and holds the page index and the footer.
    pub tail_offset: u64,
    /// CRC-32C of the tail.
    pub tail_crc32c: u32,
    /// Per Parquet leaf column (schema order): CRC-32C of the concatenation, in row group order,
    /// of its column chunks, each widened to whole blocks.
    pub column_crc32c: Vec<u32>,
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
    /// The whole file (no part checksums) or its tail was checked in this process.
    verified: AtomicBool,
    /// Per leaf column, whether its chunks were checked in this process.
    verified_columns: Vec<AtomicBool>,
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
        let columns = meta.parts.as_ref().map_or(0, |p| p.column_crc32c.len());
        Segment {
            meta,
            bounds,
            verified: AtomicBool::new(false),
            verified_columns: (0..columns).map(|_| AtomicBool::new(false)).collect(),
            gc,
        }
    }

    /// The absolute path of the file.
    pub fn full_path(&self) -> PathBuf {
        self.gc.root.join(&self.meta.path)
    }

    /// Maps the file and checks its size and (once per process) its CRC-32C.
    pub fn map_verified(&self) -> Result<bytes::Bytes> {
        let bytes = self.map_sized()?;
        if !self.verified.load(Ordering::Relaxed) {
            check_crc(&self.full_path(), &bytes, self.meta.crc32c, "")?;
            self.verified.store(true, Ordering::Relaxed);
            // Every part lies in the file just checked.
            for column in &self.verified_columns {
                column.store(true, Ordering::Relaxed);
            }
        }
        Ok(bytes)
    }

    /// Maps the file and checks its size.
    fn map_sized(&self) -> Result<bytes::Bytes> {
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
        Ok(bytes)
    }

    /// Maps the file and checks (once per process) the tail, where the footer and page index
    /// are, if the segment has part checksums; otherwise the whole file.
    fn map_tail_verified(&self) -> Result<bytes::Bytes> {
        let Some(parts) = &self.meta.parts else {
            return self.map_verified();
        };
        let bytes = self.map_sized()?;
        if !self.verified.load(Ordering::Relaxed) {
            let path = self.full_path();
            // Recorded values are input: the block size and the tail must fit the file.
            let block_ok =
                parts.block_bytes.is_power_of_two() && (512..=1 << 30).contains(&parts.block_bytes);
            let tail = usize::try_from(parts.tail_offset)
                .ok()
                .filter(|t| {
                    block_ok && *t <= bytes.len() && (*t as u64).is_multiple_of(parts.block_bytes)
                })
                .ok_or_else(|| {
                    Error::corrupt(&path, "the manifest's part checksums do not fit the file")
                })?;
            check_crc(&path, &bytes[tail..], parts.tail_crc32c, " (tail)")?;
            self.verified.store(true, Ordering::Relaxed);
        }
        Ok(bytes)
    }

    /// Checks (once per process) the chunks of the leaf columns in `leaves` against the part
    /// checksums; the chunk ranges come from `metadata`, read from the checked tail.
    fn verify_columns(
        &self,
        bytes: &[u8],
        metadata: &ParquetMetaData,
        leaves: impl Iterator<Item = usize>,
    ) -> Result<()> {
        let Some(parts) = &self.meta.parts else {
            return Ok(());
        };
        let path = self.full_path();
        let columns = metadata.file_metadata().schema_descr().num_columns();
        if columns != parts.column_crc32c.len() {
            return Err(Error::corrupt(
                &path,
                format!(
                    "the file has {columns} columns, the manifest's part checksums {}",
                    parts.column_crc32c.len()
                ),
            ));
        }
        for leaf in leaves {
            let (Some(done), Some(expected)) = (
                self.verified_columns.get(leaf),
                parts.column_crc32c.get(leaf),
            ) else {
                continue;
            };
            if done.load(Ordering::Relaxed) {
                continue;
            }
            let mut crc = 0;
            for row_group in metadata.row_groups() {
                let (start, end) = column_span(row_group, leaf, parts.block_bytes, bytes.len())
                    .ok_or_else(|| Error::corrupt(&path, "a column chunk lies outside the file"))?;
                crc = crc32c::crc32c_append(crc, &bytes[start..end]);
            }
            if crc != *expected {
                return Err(Error::ChecksumMismatch {
                    path,
                    expected: format!("{expected:08x} (column {leaf})"),
                    actual: format!("{crc:08x}"),
                });
            }
            done.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// A reader of the segment's rows, with the columns in `projection` (schema indices).
    pub fn reader(&self, projection: Option<&[usize]>, batch_size: usize) -> Result<SegmentReader> {
        self.reader_pruned(projection, batch_size, &[], false, &[])
    }

    /// Like [`Segment::reader`], skipping the row groups and pages whose min/max show that no row
    /// satisfies one of `predicates` (schema index of its column, predicate). Rows of the pages
    /// read still need filtering. With `string_views`, string columns come as `Utf8View`; the
    /// string columns in `dictionaries` (schema indices) come as `Dictionary(Int32, Utf8)`.
    pub(crate) fn reader_pruned(
        &self,
        projection: Option<&[usize]>,
        batch_size: usize,
        predicates: &[(usize, &Predicate)],
        string_views: bool,
        dictionaries: &[usize],
    ) -> Result<SegmentReader> {
        let path = self.full_path();
        let bytes = self.map_tail_verified()?;
        let pq = |source| Error::Parquet {
            path: path.clone(),
            source,
        };
        // The catalog knows the table's schema: the writer's embedded `ARROW:schema` is not
        // read, so hostile bytes there cannot reach arrow-ipc's decoder, which panics on some
        // (see engine/tests/fuzz_regressions.rs).
        let options = ArrowReaderOptions::new()
            .with_skip_arrow_metadata(true)
            .with_page_index_policy(if predicates.is_empty() {
                PageIndexPolicy::Skip
            } else {
                PageIndexPolicy::Optional
            });
        let mut metadata = ArrowReaderMetadata::load(&bytes, options.clone()).map_err(pq)?;
        if string_views || !dictionaries.is_empty() {
            // The file's own schema (its nullability) with views or dictionaries for strings:
            // the reader accepts a supplied schema only if it differs from the file's in such
            // layouts.
            let schema = Arc::new(scan_layout(metadata.schema(), string_views, dictionaries));
            metadata = ArrowReaderMetadata::try_new(
                metadata.metadata().clone(),
                options.with_schema(schema),
            )
            .map_err(pq)?;
        }
        // Only the chunks of the columns read are checked (and faulted into memory).
        let schema_descr = metadata.metadata().file_metadata().schema_descr();
        let leaves = (0..schema_descr.num_columns()).filter(|leaf| {
            projection.is_none_or(|roots| roots.contains(&schema_descr.get_column_root_idx(*leaf)))
        });
        self.verify_columns(&bytes, metadata.metadata(), leaves)?;
        let selected: Vec<(usize, Option<Vec<RowSelector>>)> = if predicates.is_empty() {
            (0..metadata.metadata().num_row_groups())
                .map(|rg| (rg, None))
                .collect()
        } else {
            select_rows(metadata.metadata(), predicates)
                .into_iter()
                .map(|(rg, selectors)| (rg, Some(selectors)))
                .collect()
        };
        let mask = projection.map(|indices| {
            ProjectionMask::roots(
                metadata.metadata().file_metadata().schema_descr(),
                indices.iter().copied(),
            )
        });
        // One reader per row group, built as the previous one ends.
        let row_groups: Vec<ParquetRecordBatchReaderBuilder<bytes::Bytes>> = selected
            .into_iter()
            .map(|(rg, selectors)| {
                let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
                    bytes.clone(),
                    metadata.clone(),
                )
                .with_row_groups(vec![rg])
                .with_batch_size(batch_size);
                if let Some(selectors) = selectors {
                    builder = builder.with_row_selection(RowSelection::from(selectors));
                }
                if let Some(mask) = &mask {
                    builder = builder.with_projection(mask.clone());
                }
                builder
            })
            .collect();
        Ok(SegmentReader {
            path,
            current: None,
            row_groups: row_groups.into_iter(),
        })
    }
}

/// The batches of a segment, one row group after the other: a batch never spans two row groups.
/// Across row groups, a string column read as a dictionary changes dictionaries, and the
/// Parquet reader then decodes the batch's strings and builds a dictionary of them again (5% of
/// the benchmark's GROUP BY, whose tablets have 2 or 3 row groups).
pub struct SegmentReader {
    path: PathBuf,
    current: Option<ParquetRecordBatchReader>,
    row_groups: std::vec::IntoIter<ParquetRecordBatchReaderBuilder<bytes::Bytes>>,
}

impl std::fmt::Debug for SegmentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentReader")
            .field("path", &self.path)
            .field("row_groups_left", &self.row_groups.len())
            .finish()
    }
}

impl Iterator for SegmentReader {
    type Item = std::result::Result<RecordBatch, arrow::error::ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(batch) = self.current.as_mut().and_then(|r| r.next()) {
                return Some(batch);
            }
            match self.row_groups.next()?.build() {
                Ok(reader) => self.current = Some(reader),
                Err(e) => {
                    self.row_groups = Vec::new().into_iter();
                    return Some(Err(arrow::error::ArrowError::ParquetError(format!(
                        "{}: {e}",
                        self.path.display()
                    ))));
                }
            }
        }
    }
}

/// Checks that `bytes` have the CRC-32C `expected`; `what` names the part in the error.
fn check_crc(path: &Path, bytes: &[u8], expected: u32, what: &str) -> Result<()> {
    let actual = crc32c::crc32c(bytes);
    if actual != expected {
        return Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: format!("{expected:08x}{what}"),
            actual: format!("{actual:08x}"),
        });
    }
    Ok(())
}

/// The byte range of leaf column `leaf`'s chunk in `row_group`, widened to whole blocks of
/// `block_bytes` and cut at `file_len`; `None` if the chunk does not lie inside the file.
fn column_span(
    row_group: &parquet::file::metadata::RowGroupMetaData,
    leaf: usize,
    block_bytes: u64,
    file_len: usize,
) -> Option<(usize, usize)> {
    let chunk = row_group.columns().get(leaf)?;
    // As `ColumnChunkMetaData::byte_range`, which panics on negative values.
    let start = chunk
        .dictionary_page_offset()
        .unwrap_or_else(|| chunk.data_page_offset());
    let start = u64::try_from(start).ok()?;
    let end = start.checked_add(u64::try_from(chunk.compressed_size()).ok()?)?;
    if end > file_len as u64 {
        return None;
    }
    let start = start - start % block_bytes;
    let end = end
        .checked_next_multiple_of(block_bytes)?
        .min(file_len as u64);
    Some((usize::try_from(start).ok()?, usize::try_from(end).ok()?))
}

/// The row groups, and the rows within them, that may satisfy every predicate according to the
/// row groups' statistics and the page index. Statistics that are missing or out of range (a
/// damaged file) select everything they cover: pruning only ever skips provably unmatched rows.
fn select_rows(
    meta: &ParquetMetaData,
    predicates: &[(usize, &Predicate)],
) -> Vec<(usize, Vec<RowSelector>)> {
    let mut row_groups = Vec::new();
    for (rg, rg_meta) in meta.row_groups().iter().enumerate() {
        let rows = usize::try_from(rg_meta.num_rows()).unwrap_or(0);
        let mut keep = vec![(0, rows)];
        for (column, predicate) in predicates {
            let Some(chunk) = rg_meta.columns().get(*column) else {
                continue;
            };
            if let Some((min, max)) = chunk.statistics().and_then(statistics_bounds)
                && !predicate.may_match(&min, &max)
            {
                keep.clear();
                break;
            }
            let index = meta
                .column_index()
                .and_then(|i| i.get(rg))
                .and_then(|i| i.get(*column));
            let offsets = meta
                .offset_index()
                .and_then(|i| i.get(rg))
                .and_then(|i| i.get(*column));
            if let (Some(index), Some(offsets)) = (index, offsets) {
                let pages = page_ranges(index, offsets.page_locations(), rows, predicate);
                keep = intersect(&keep, &pages);
            }
        }
        if keep.is_empty() {
            continue;
        }
        let mut selectors = Vec::new();
        let mut at = 0;
        for (start, end) in keep {
            if start > at {
                selectors.push(RowSelector::skip(start - at));
            }
            selectors.push(RowSelector::select(end - start));
            at = end;
        }
        if rows > at {
            selectors.push(RowSelector::skip(rows - at));
        }
        row_groups.push((rg, selectors));
    }
    row_groups
}

/// The row ranges of one column chunk's pages that may satisfy `predicate`, in order.
fn page_ranges(
    index: &ColumnIndexMetaData,
    locations: &[PageLocation],
    rows: usize,
    predicate: &Predicate,
) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (page, location) in locations.iter().enumerate() {
        let start = usize::try_from(location.first_row_index).unwrap_or(usize::MAX);
        let end = locations
            .get(page + 1)
            .map_or(Some(rows), |next| {
                usize::try_from(next.first_row_index).ok()
            })
            .unwrap_or(usize::MAX);
        // Pages out of order or past the row group: the index is unusable, read everything.
        if start > end || end > rows || out.last().is_some_and(|(_, e)| *e > start) {
            return vec![(0, rows)];
        }
        let bounds = match index {
            ColumnIndexMetaData::INT32(i) => i
                .min_value(page)
                .zip(i.max_value(page))
                .map(|(a, b)| (Value::Int((*a).into()), Value::Int((*b).into()))),
            ColumnIndexMetaData::INT64(i) => i
                .min_value(page)
                .zip(i.max_value(page))
                .map(|(a, b)| (Value::Int((*a).into()), Value::Int((*b).into()))),
            ColumnIndexMetaData::BYTE_ARRAY(i) => {
                i.min_value(page).zip(i.max_value(page)).and_then(|(a, b)| {
                    Some((
                        Value::Str(std::str::from_utf8(a).ok()?.to_string()),
                        Value::Str(std::str::from_utf8(b).ok()?.to_string()),
                    ))
                })
            }
            _ => None,
        };
        // A page of only NULLs matches no predicate (NULL satisfies none).
        let all_null = page < index_pages(index) && index.is_null_page(page);
        let may_match = match bounds {
            Some((min, max)) => predicate.may_match(&min, &max),
            None => !all_null,
        };
        if may_match {
            match out.last_mut() {
                Some((_, e)) if *e == start => *e = end,
                _ => out.push((start, end)),
            }
        }
    }
    if locations.is_empty() {
        out.push((0, rows));
    }
    out
}

fn index_pages(index: &ColumnIndexMetaData) -> usize {
    match index {
        ColumnIndexMetaData::NONE => 0,
        _ => usize::try_from(index.num_pages()).unwrap_or(0),
    }
}

/// The intersection of two ordered lists of disjoint `[start, end)` ranges.
fn intersect(a: &[(usize, usize)], b: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let start = a[i].0.max(b[j].0);
        let end = a[i].1.min(b[j].1);
        if start < end {
            out.push((start, end));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// A column chunk's min and max as values (integral and string columns; others prune nothing).
fn statistics_bounds(stats: &Statistics) -> Option<(Value, Value)> {
    match stats {
        Statistics::Int32(s) => Some((
            Value::Int((*s.min_opt()?).into()),
            Value::Int((*s.max_opt()?).into()),
        )),
        Statistics::Int64(s) => Some((
            Value::Int((*s.min_opt()?).into()),
            Value::Int((*s.max_opt()?).into()),
        )),
        Statistics::ByteArray(s) => Some((
            Value::Str(s.min_opt()?.as_utf8().ok()?.to_string()),
            Value::Str(s.max_opt()?.as_utf8().ok()?.to_string()),
        )),
        _ => None,
    }
}

/// An `io::Write` over a storage file that counts bytes and computes both checksums.
struct ChecksumWriter {
    /// `None` once the finished file has been handed to the caller.
    file: Option<Box<dyn WritableFile>>,
    size: u64,
    crc: u32,
    /// CRC-32C of the file's first `(i + 1) * CHECKSUM_BLOCK_BYTES` bytes, for the part
    /// checksums.
    block_prefix_crcs: Vec<u32>,
    hasher: blake3::Hasher,
    /// The first error, kept with its path (io::Error loses it).
    error: Option<Error>,
}

/// The reflected CRC-32C polynomial.
const CRC32C_POLY: u32 = 0x82f6_3b78;

/// `a * b` modulo the CRC-32C polynomial, both in the reflected bit order of CRC values.
fn crc32c_mul(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    let mut bit = 1u32 << 31;
    while bit != 0 {
        if a & bit != 0 {
            product ^= b;
        }
        bit >>= 1;
        b = if b & 1 != 0 {
            (b >> 1) ^ CRC32C_POLY
        } else {
            b >> 1
        };
    }
    product
}

/// What `crc`, the CRC-32C of some bytes A, becomes when `len` zero bytes are appended to A,
/// minus the CRC of those zeros: with it, crc(A + B) = crc32c_shift(crc(A), |B|) ^ crc(B).
/// (`crc32c::crc32c_combine` computes the same with two 32x32 matrix squarings per bit of the
/// length where this needs two multiplications; a load does it a few dozen times per segment.)
fn crc32c_shift(crc: u32, len: u64) -> u32 {
    // x^(8 * 2^k) modulo the polynomial for each bit k of `len`, by repeated squaring.
    let mut power = 1u32 << 23; // x^8: one byte
    let mut shifted = crc;
    let mut len = len;
    while len != 0 {
        if len & 1 != 0 {
            shifted = crc32c_mul(power, shifted);
        }
        power = crc32c_mul(power, power);
        len >>= 1;
    }
    shifted
}

impl ChecksumWriter {
    /// CRC-32C of the file's first `offset` bytes, `offset` a block boundary or the file's end.
    fn prefix_crc(&self, offset: u64) -> Option<u32> {
        if offset == self.size {
            return Some(self.crc);
        }
        if offset == 0 {
            return Some(0);
        }
        if !offset.is_multiple_of(CHECKSUM_BLOCK_BYTES) {
            return None;
        }
        let block = usize::try_from(offset / CHECKSUM_BLOCK_BYTES).ok()?;
        self.block_prefix_crcs.get(block.checked_sub(1)?).copied()
    }

    /// CRC-32C of the bytes `[start, end)`, both block boundaries or the file's end, from the
    /// prefix CRCs: crc(prefix + part) = crc(prefix) shifted by the part's length, XOR crc(part).
    fn range_crc(&self, start: u64, end: u64) -> Option<u32> {
        Some(self.prefix_crc(end)? ^ crc32c_shift(self.prefix_crc(start)?, end - start))
    }

    /// The part checksums of the finished file described by `metadata`; `None` if its layout is
    /// not the one expected (the file is then checked whole).
    fn part_checksums(&self, metadata: &ParquetMetaData) -> Option<PartChecksums> {
        let file_len = usize::try_from(self.size).ok()?;
        let columns = metadata.file_metadata().schema_descr().num_columns();
        let mut column_crc32c = Vec::with_capacity(columns);
        let mut data_end = 0;
        for leaf in 0..columns {
            let mut crc = 0u32;
            for row_group in metadata.row_groups() {
                let (start, end) = column_span(row_group, leaf, CHECKSUM_BLOCK_BYTES, file_len)?;
                let (start, end) = (start as u64, end as u64);
                crc = crc32c_shift(crc, end - start) ^ self.range_crc(start, end)?;
                let chunk = row_group.columns().get(leaf)?;
                let chunk_end = chunk
                    .dictionary_page_offset()
                    .unwrap_or_else(|| chunk.data_page_offset())
                    .checked_add(chunk.compressed_size())?;
                data_end = data_end.max(u64::try_from(chunk_end).ok()?);
            }
            column_crc32c.push(crc);
        }
        let tail_offset = data_end - data_end % CHECKSUM_BLOCK_BYTES;
        Some(PartChecksums {
            block_bytes: CHECKSUM_BLOCK_BYTES,
            tail_offset,
            tail_crc32c: self.range_crc(tail_offset, self.size)?,
            column_crc32c,
        })
    }
}

impl Write for ChecksumWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("the segment file is closed"));
        };
        if let Err(e) = file.write_all(buf) {
            let message = e.to_string();
            self.error.get_or_insert(e);
            return Err(io::Error::other(message));
        }
        let mut rest = buf;
        while !rest.is_empty() {
            let to_boundary = CHECKSUM_BLOCK_BYTES - self.size % CHECKSUM_BLOCK_BYTES;
            let take = rest
                .len()
                .min(usize::try_from(to_boundary).unwrap_or(usize::MAX));
            let (piece, after) = rest.split_at(take);
            self.crc = crc32c::crc32c_append(self.crc, piece);
            self.size += take as u64;
            if self.size.is_multiple_of(CHECKSUM_BLOCK_BYTES) {
                self.block_prefix_crcs.push(self.crc);
            }
            rest = after;
        }
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
    /// Bytes of the file whose write-back [`SegmentWriter::pace_writeback`] has started.
    paced: u64,
}

impl std::fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("path", &self.path)
            .finish()
    }
}

/// Bytes a segment file gets before its write-back is started (see
/// `SegmentWriter::pace_writeback`).
const PACE_BYTES_MIN: u64 = 1 << 20;

/// Rows of a segment's first batch looked at to choose its column encodings.
const ENCODING_SAMPLE_ROWS: usize = 1024;

/// How a segment stores one column, chosen from a sample of its first rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColumnEncoding {
    /// At most half the sampled values are distinct: a dictionary and RLE indices.
    Dictionary,
    /// Mostly distinct integral or temporal values: DELTA_BINARY_PACKED (sorted keys and
    /// timestamps need a few bits per value, where PLAIN spends 4 or 8 bytes).
    Delta,
    /// Mostly distinct values of other types (floats, strings, decimals, booleans).
    Plain,
}

impl ColumnEncoding {
    /// The encoding for `array`, from its first [`ENCODING_SAMPLE_ROWS`] values.
    pub(crate) fn choose(array: &dyn Array) -> ColumnEncoding {
        let sample = array.slice(0, array.len().min(ENCODING_SAMPLE_ROWS));
        let rows = sample.len() - sample.null_count();
        if let Some(distinct) = distinct_count(sample.as_ref())
            && rows > 0
            && distinct * 2 <= rows
        {
            return ColumnEncoding::Dictionary;
        }
        match array.data_type() {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Date32
            | DataType::Timestamp(_, _) => ColumnEncoding::Delta,
            _ => ColumnEncoding::Plain,
        }
    }
}

/// Distinct non-null values of a (sample) array, for the types a dictionary may pay off for.
fn distinct_count(array: &dyn Array) -> Option<usize> {
    use std::collections::HashSet;
    macro_rules! prim {
        ($t:ty, $bits:expr) => {{
            let a = array.as_primitive::<$t>();
            let set: HashSet<_> = a.iter().flatten().map($bits).collect();
            set.len()
        }};
    }
    Some(match array.data_type() {
        DataType::Int8 => prim!(Int8Type, |v: i8| v),
        DataType::Int16 => prim!(Int16Type, |v: i16| v),
        DataType::Int32 => prim!(Int32Type, |v: i32| v),
        DataType::Int64 => prim!(Int64Type, |v: i64| v),
        DataType::Date32 => prim!(Date32Type, |v: i32| v),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            prim!(TimestampMicrosecondType, |v: i64| v)
        }
        DataType::Decimal128(_, _) => prim!(Decimal128Type, |v: i128| v),
        DataType::Float32 => prim!(Float32Type, |v: f32| v.to_bits()),
        DataType::Float64 => prim!(Float64Type, |v: f64| v.to_bits()),
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            let set: HashSet<&str> = a.iter().flatten().collect();
            set.len()
        }
        _ => return None,
    })
}

/// The table property naming the codec of its segments' pages (StarRocks' name).
pub const COMPRESSION_PROPERTY: &str = "compression";

/// How a table's segments compress their pages: the `compression` table property, as
/// StarRocks spells it (`LZ4`, the default, `LZ4_FRAME`, `ZSTD`, `ZSTD(level)`, `SNAPPY`,
/// `NONE`), case-insensitive. Stored in Parquet as LZ4_RAW, ZSTD, SNAPPY or UNCOMPRESSED, which
/// pyarrow, DuckDB and Spark read.
///
/// LZ4 is the default for scan speed: on the 20 M-row benchmark table (`cargo run --release -p
/// shale-benches --no-default-features --example decode_options`) the DOUBLE column takes
/// 4.73 bytes per row and 53 ms of CPU to decode with LZ4, 3.30 bytes and 174 ms with ZSTD
/// level 1; the whole table 12.0 against 10.6 bytes per row. `ZSTD` trades that for space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Codec {
    /// LZ4 (Parquet LZ4_RAW).
    #[default]
    Lz4,
    /// Zstandard at a level from 1 to 22 (`ZSTD` alone: 1).
    Zstd(i32),
    /// Snappy.
    Snappy,
    /// No compression.
    None,
}

impl Codec {
    /// The codec `properties` ask for; an unknown value is an [`Error::InvalidDefinition`].
    pub fn from_properties(
        properties: &std::collections::BTreeMap<String, String>,
    ) -> Result<Codec> {
        let Some(value) = properties.get(COMPRESSION_PROPERTY) else {
            return Ok(Codec::default());
        };
        let v = value.trim().to_ascii_uppercase();
        let refused = || {
            Error::InvalidDefinition(format!(
                "Unknown compression type: {value:?} (LZ4, LZ4_FRAME, ZSTD, ZSTD(1..22), SNAPPY \
                 or NONE)"
            ))
        };
        Ok(match v.as_str() {
            "LZ4" | "LZ4_FRAME" | "LZ4_RAW" => Codec::Lz4,
            "ZSTD" => Codec::Zstd(1),
            "SNAPPY" => Codec::Snappy,
            "NONE" | "NO_COMPRESSION" | "UNCOMPRESSED" => Codec::None,
            _ => {
                let level = v
                    .strip_prefix("ZSTD(")
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|l| l.trim().parse::<i32>().ok())
                    .filter(|l| (1..=22).contains(l))
                    .ok_or_else(refused)?;
                Codec::Zstd(level)
            }
        })
    }

    /// Whether the codec codes entropy (ZSTD), where LZ4 and Snappy only find repeats.
    fn entropy_coded(self) -> bool {
        matches!(self, Codec::Zstd(_))
    }

    fn parquet(self) -> Compression {
        match self {
            Codec::Lz4 => Compression::LZ4_RAW,
            Codec::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default()),
            Codec::Snappy => Compression::SNAPPY,
            Codec::None => Compression::UNCOMPRESSED,
        }
    }
}

/// The writer settings of a segment whose columns get `encodings` (schema order), its pages
/// compressed with `codec`.
pub(crate) fn writer_properties(
    schema: &TableSchema,
    encodings: &[ColumnEncoding],
    codec: Codec,
) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(codec.parquet())
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::Page)
        // Exact chunk min/max: the manifest's statistics of these columns are read from them.
        .set_statistics_truncate_length(None)
        .set_data_page_row_count_limit(PAGE_ROWS_MAX)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by("shale".to_string());
    for (column, encoding) in schema.columns().iter().zip(encodings) {
        let path = ColumnPath::from(column.name.as_str());
        builder = match encoding {
            ColumnEncoding::Dictionary => builder.set_column_dictionary_enabled(path, true),
            ColumnEncoding::Delta => {
                let builder =
                    builder.set_column_encoding(path.clone(), Encoding::DELTA_BINARY_PACKED);
                if codec.entropy_coded() {
                    builder
                } else {
                    // Bit-packed deltas leave LZ4 and Snappy nothing to find (the benchmark's
                    // DATETIME column: 5.84 bytes per row either way) and cost a load and
                    // every scan their time; ZSTD's entropy coder may still gain a little.
                    builder.set_column_compression(path, Compression::UNCOMPRESSED)
                }
            }
            ColumnEncoding::Plain => builder,
        };
    }
    builder.build()
}

impl SegmentWriter {
    /// Creates `root/relative` and prepares to write batches of `schema`, with column encodings
    /// chosen from `first`, the first batch the segment will hold.
    pub(crate) fn create(
        storage: &dyn Storage,
        root: &Path,
        relative: String,
        schema: &TableSchema,
        codec: Codec,
        first: &RecordBatch,
    ) -> Result<SegmentWriter> {
        let encodings: Vec<ColumnEncoding> = first
            .columns()
            .iter()
            .map(|c| ColumnEncoding::choose(c.as_ref()))
            .collect();
        let path = root.join(&relative);
        if let Some(dir) = path.parent() {
            storage.create_dir_all(dir)?;
        }
        let file = storage.create(&path)?;
        let sink = ChecksumWriter {
            file: Some(file),
            size: 0,
            crc: 0,
            block_prefix_crcs: Vec::new(),
            hasher: blake3::Hasher::new(),
            error: None,
        };
        let writer = ArrowWriter::try_new(
            sink,
            schema.arrow_schema().clone(),
            Some(writer_properties(schema, &encodings, codec)),
        )
        .map_err(|source| Error::Parquet {
            path: path.clone(),
            source,
        })?;
        Ok(SegmentWriter {
            writer,
            path,
            relative,
            stats: schema
                .columns()
                .iter()
                .map(|c| StatsAccumulator {
                    from_parquet: parquet_has_exact_stats(&c.column_type.arrow_type()),
                    ..StatsAccumulator::default()
                })
                .collect(),
            row_count: 0,
            paced: 0,
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
        let row_groups = self.writer.flushed_row_groups().len();
        if let Err(e) = self.writer.write(batch) {
            return Err(self.fail(e));
        }
        if self.writer.flushed_row_groups().len() > row_groups {
            // The writer ended a row group of ROW_GROUP_ROWS rows: as end_row_group does.
            self.pace_writeback()?;
        }
        Ok(())
    }

    /// The memory the row group in progress holds (encoded pages and buffered values).
    pub(crate) fn memory_size(&self) -> usize {
        self.writer.memory_size()
    }

    /// Ends the current row group, so the rows written next get their own statistics, and
    /// starts writing its bytes back: a load's fsync at the end then waits for the last row
    /// groups only, not for every byte it wrote (with 24 GiB of RAM the kernel starts
    /// background write-back only past gigabytes of dirty pages).
    pub(crate) fn end_row_group(&mut self) -> Result<()> {
        if let Err(e) = self.writer.flush() {
            return Err(self.fail(e));
        }
        self.pace_writeback()
    }

    /// Starts the write-back of what the file got since the last call, once that is at least
    /// [`PACE_BYTES_MIN`]: a small file's bytes wait for the load's parallel fsyncs, and a
    /// sync_file_range per small file (called in turn by a worker) waited behind a running
    /// backup's writes.
    fn pace_writeback(&mut self) -> Result<()> {
        let sink = self.writer.inner_mut();
        if sink.size - self.paced < PACE_BYTES_MIN {
            return Ok(());
        }
        self.paced = sink.size;
        match sink.file.as_mut() {
            Some(file) => file.pace_writeback(),
            None => Ok(()),
        }
    }

    /// Rows written so far.
    pub(crate) fn row_count(&self) -> u64 {
        self.row_count
    }

    /// Finishes the file, fsyncs it and returns its metadata.
    pub(crate) fn finish(self, schema: &TableSchema) -> Result<SegmentMeta> {
        let (meta, mut file) = self.finish_unsynced(schema)?;
        file.sync()?;
        Ok(meta)
    }

    /// Finishes the file and returns its metadata and the file, which the caller must fsync
    /// before a commit names it (a load fsyncs all its files at once, in parallel).
    pub(crate) fn finish_unsynced(
        mut self,
        schema: &TableSchema,
    ) -> Result<(SegmentMeta, Box<dyn WritableFile>)> {
        let metadata = match self.writer.finish() {
            Ok(m) => m,
            Err(e) => return Err(self.fail(e)),
        };
        for (i, acc) in self.stats.iter_mut().enumerate() {
            if acc.from_parquet {
                acc.fold_parquet(&metadata, i);
            }
        }
        let path = self.path.clone();
        let sink = self.writer.inner_mut();
        let file = sink.file.take().ok_or_else(|| {
            Error::io(
                "close",
                &path,
                io::Error::other("the segment file is closed"),
            )
        })?;
        let parts = sink.part_checksums(&metadata);
        let meta = SegmentMeta {
            path: self.relative.clone(),
            row_count: self.row_count,
            size: sink.size,
            crc32c: sink.crc,
            parts,
            hash: sink.hasher.finalize().to_hex().to_string(),
            stats: self
                .stats
                .iter()
                .zip(schema.columns())
                .map(|(acc, c)| acc.column_stats(&c.column_type))
                .collect(),
        };
        Ok((meta, file))
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
    /// Min and max are taken from the Parquet writer's chunk statistics when the segment is
    /// finished, not computed a second time from every batch.
    from_parquet: bool,
}

/// Whether Parquet's chunk statistics of a column of this type are its exact min and max in our
/// order: integers and dates stored as INT32/INT64 (signed order) and strings (byte order, the
/// order of Rust's `str`; the writer does not truncate them). Floats (NaN), decimals and
/// booleans keep their own accumulator.
fn parquet_has_exact_stats(arrow_type: &DataType) -> bool {
    matches!(
        arrow_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Date32
            | DataType::Timestamp(TimeUnit::Microsecond, _)
            | DataType::Utf8
    )
}

impl StatsAccumulator {
    /// Min and max of column `column` over every row group of a finished segment. A statistic
    /// that is missing or inexact leaves the bound unknown (`None`), which prunes nothing.
    fn fold_parquet(&mut self, metadata: &ParquetMetaData, column: usize) {
        let mut min: Option<Value> = None;
        let mut max: Option<Value> = None;
        for row_group in metadata.row_groups() {
            if row_group.num_rows() == 0 {
                continue;
            }
            let Some(chunk) = row_group.columns().get(column) else {
                return self.unknown();
            };
            let (lo, hi) = match chunk.statistics() {
                // A row group of NULLs only has no min/max and changes nothing.
                Some(s) if s.null_count_opt() == Some(row_group.num_rows() as u64) => continue,
                Some(Statistics::Int32(s)) if s.min_is_exact() && s.max_is_exact() => (
                    s.min_opt().map(|v| Value::Int((*v).into())),
                    s.max_opt().map(|v| Value::Int((*v).into())),
                ),
                Some(Statistics::Int64(s)) if s.min_is_exact() && s.max_is_exact() => (
                    s.min_opt().map(|v| Value::Int((*v).into())),
                    s.max_opt().map(|v| Value::Int((*v).into())),
                ),
                Some(Statistics::ByteArray(s)) if s.min_is_exact() && s.max_is_exact() => {
                    let text = |v: &parquet::data_type::ByteArray| {
                        std::str::from_utf8(v.data())
                            .ok()
                            .map(|t| Value::Str(t.to_string()))
                    };
                    (s.min_opt().and_then(text), s.max_opt().and_then(text))
                }
                _ => return self.unknown(),
            };
            let (Some(lo), Some(hi)) = (lo, hi) else {
                return self.unknown();
            };
            if min.as_ref().is_none_or(|m| lo < *m) {
                min = Some(lo);
            }
            if max.as_ref().is_none_or(|m| hi > *m) {
                max = Some(hi);
            }
        }
        self.min = min;
        self.max = max;
    }

    /// The manifest's statistics of a column of `column_type`.
    fn column_stats(&self, column_type: &ColumnType) -> ColumnStats {
        ColumnStats {
            min: self.min.as_ref().map(|v| v.to_literal(column_type)),
            max: self.max.as_ref().map(|v| v.to_literal(column_type)),
            null_count: self.null_count,
        }
    }

    /// No usable min/max.
    fn unknown(&mut self) {
        self.min = None;
        self.max = None;
    }

    fn update(&mut self, array: &dyn Array) {
        self.null_count += array.null_count() as u64;
        if self.from_parquet {
            return;
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use arrow::array::{Float64Array, Int32Array, Int64Array, StringArray};

    #[test]
    fn encodings_follow_the_sampled_cardinality() {
        let ids = Int64Array::from_iter_values(0..10_000);
        assert_eq!(ColumnEncoding::choose(&ids), ColumnEncoding::Delta);
        let few = Int32Array::from_iter_values((0..10_000).map(|i| i % 100));
        assert_eq!(ColumnEncoding::choose(&few), ColumnEncoding::Dictionary);
        let regions = StringArray::from_iter_values((0..1000).map(|i| format!("r{}", i % 16)));
        assert_eq!(ColumnEncoding::choose(&regions), ColumnEncoding::Dictionary);
        let names = StringArray::from_iter_values((0..1000).map(|i| format!("n{i}")));
        assert_eq!(ColumnEncoding::choose(&names), ColumnEncoding::Plain);
        let amounts = Float64Array::from_iter_values((0..1000).map(|i| i as f64 / 100.0));
        assert_eq!(ColumnEncoding::choose(&amounts), ColumnEncoding::Plain);
        // Nothing to sample: no dictionary.
        let empty = Int64Array::from(Vec::<i64>::new());
        assert_eq!(ColumnEncoding::choose(&empty), ColumnEncoding::Delta);
        let nulls = StringArray::from(vec![None::<&str>; 10]);
        assert_eq!(ColumnEncoding::choose(&nulls), ColumnEncoding::Plain);
    }

    #[test]
    fn statistics_taken_from_parquet_equal_the_ones_computed_from_the_rows() {
        use crate::storage::StdStorage;
        use crate::types::{Column, ColumnType};
        use arrow::array::{Date32Array, Int8Array, TimestampMicrosecondArray};
        let schema = TableSchema::new(vec![
            Column::new("i8", ColumnType::TinyInt),
            Column::new("i64", ColumnType::BigInt),
            Column::new("d", ColumnType::Date),
            Column::new("ts", ColumnType::Datetime),
            Column::new("s", ColumnType::String),
        ])
        .unwrap();
        let long = "é".repeat(100); // longer than Parquet's default 64-byte truncation
        let batch = |i8s: Vec<Option<i8>>, i64s: Vec<Option<i64>>, ss: Vec<Option<&str>>| {
            let days: Vec<Option<i32>> = i64s.iter().map(|v| v.map(|v| v as i32)).collect();
            RecordBatch::try_new(
                schema.arrow_schema().clone(),
                vec![
                    Arc::new(Int8Array::from(i8s)),
                    Arc::new(Int64Array::from(i64s.clone())),
                    Arc::new(Date32Array::from(days)),
                    Arc::new(TimestampMicrosecondArray::from(i64s)),
                    Arc::new(StringArray::from(ss)),
                ],
            )
            .unwrap()
        };
        let batches = [
            batch(
                vec![Some(-128), None, Some(5)],
                vec![Some(-7), Some(i64::MAX), None],
                vec![Some("b"), None, Some(&long)],
            ),
            // A row group of NULLs only.
            batch(vec![None; 2], vec![None; 2], vec![None; 2]),
            batch(
                vec![Some(127), Some(0)],
                vec![Some(i64::MIN), Some(3)],
                vec![Some(""), Some("zz")],
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut writer = SegmentWriter::create(
            &StdStorage,
            dir.path(),
            "s.parquet".into(),
            &schema,
            Codec::default(),
            &batches[0],
        )
        .unwrap();
        let mut reference: Vec<StatsAccumulator> =
            vec![StatsAccumulator::default(); schema.columns().len()];
        assert!(writer.stats.iter().all(|a| a.from_parquet));
        for b in &batches {
            writer.write(b).unwrap();
            writer.end_row_group().unwrap();
            for (acc, column) in reference.iter_mut().zip(b.columns()) {
                acc.update(column.as_ref());
            }
        }
        let (meta, _file) = writer.finish_unsynced(&schema).unwrap();
        let expected: Vec<ColumnStats> = reference
            .iter()
            .zip(schema.columns())
            .map(|(acc, c)| acc.column_stats(&c.column_type))
            .collect();
        assert_eq!(meta.stats, expected);
        // Byte order: "é" (0xC3..) sorts after "zz", in full (not truncated to 64 bytes).
        assert_eq!(meta.stats[4].max.as_deref(), Some(long.as_str()));
        assert_eq!(meta.stats[0].min.as_deref(), Some("-128"));
        assert_eq!(meta.stats[1].null_count, 3);
    }

    /// A segment of (id BIGINT, name STRING, amount DOUBLE) in three row groups of 6,000 rows,
    /// each column chunk several checksum blocks long (random doubles barely compress).
    fn three_column_segment(dir: &Path) -> (TableSchema, SegmentMeta) {
        use crate::storage::StdStorage;
        use crate::types::{Column, ColumnType};
        let schema = TableSchema::new(vec![
            Column::new("id", ColumnType::BigInt),
            Column::new("name", ColumnType::String),
            Column::new("amount", ColumnType::Double),
        ])
        .unwrap();
        let mut state = 0x2025_u64;
        let mut random = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            state >> 11
        };
        let batches: Vec<RecordBatch> = (0..3)
            .map(|g| {
                let ids: Vec<i64> = (g * 6000..(g + 1) * 6000).collect();
                RecordBatch::try_new(
                    schema.arrow_schema().clone(),
                    vec![
                        Arc::new(Int64Array::from(ids.clone())),
                        Arc::new(StringArray::from_iter_values(
                            ids.iter().map(|i| format!("name-{}", i * 7919 % 10007)),
                        )),
                        Arc::new(Float64Array::from_iter_values(
                            (0..6000).map(|_| random() as f64 / 3.0),
                        )),
                    ],
                )
                .unwrap()
            })
            .collect();
        let mut writer = SegmentWriter::create(
            &StdStorage,
            dir,
            "s.parquet".into(),
            &schema,
            Codec::default(),
            &batches[0],
        )
        .unwrap();
        for b in &batches {
            writer.write(b).unwrap();
            writer.end_row_group().unwrap();
        }
        let (meta, mut file) = writer.finish_unsynced(&schema).unwrap();
        file.sync().unwrap();
        (schema, meta)
    }

    fn segment(dir: &Path, schema: &TableSchema, meta: &SegmentMeta) -> Segment {
        use crate::storage::StdStorage;
        let gc = Arc::new(Gc::new(Arc::new(StdStorage), dir.to_path_buf()));
        Segment::new(meta.clone(), schema, gc)
    }

    fn rows_read(segment: &Segment, columns: &[usize]) -> Result<usize> {
        let mut rows = 0;
        for batch in segment.reader(Some(columns), 1024)? {
            rows += batch
                .map_err(|e| Error::corrupt(segment.full_path(), e.to_string()))?
                .num_rows();
        }
        Ok(rows)
    }

    /// Flips one byte of the file at `offset`.
    fn flip(path: &Path, offset: u64) {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[offset as usize] ^= 0x55;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn part_checksums_are_the_crcs_of_the_block_aligned_parts() {
        let dir = tempfile::tempdir().unwrap();
        let (_, meta) = three_column_segment(dir.path());
        let bytes = bytes::Bytes::from(std::fs::read(dir.path().join("s.parquet")).unwrap());
        assert_eq!(meta.crc32c, crc32c::crc32c(&bytes));
        let parts = meta
            .parts
            .expect("a written segment records part checksums");
        assert_eq!(parts.block_bytes, CHECKSUM_BLOCK_BYTES);
        let metadata = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).unwrap();
        let metadata = metadata.metadata();
        assert_eq!(metadata.num_row_groups(), 3);
        assert_eq!(parts.column_crc32c.len(), 3);
        for (leaf, expected) in parts.column_crc32c.iter().enumerate() {
            let mut crc = 0;
            for row_group in metadata.row_groups() {
                let (start, end) =
                    column_span(row_group, leaf, CHECKSUM_BLOCK_BYTES, bytes.len()).unwrap();
                assert_eq!(start as u64 % CHECKSUM_BLOCK_BYTES, 0);
                assert!((end as u64).is_multiple_of(CHECKSUM_BLOCK_BYTES) || end == bytes.len());
                crc = crc32c::crc32c_append(crc, &bytes[start..end]);
            }
            assert_eq!(crc, *expected, "column {leaf}");
        }
        // The tail starts in the last column chunk and holds the footer.
        let footer_len = u32::from_le_bytes(bytes[bytes.len() - 8..][..4].try_into().unwrap());
        assert!(parts.tail_offset + u64::from(footer_len) + 8 <= bytes.len() as u64);
        assert!(parts.tail_offset.is_multiple_of(CHECKSUM_BLOCK_BYTES));
        assert_eq!(
            parts.tail_crc32c,
            crc32c::crc32c(&bytes[parts.tail_offset as usize..])
        );
    }

    #[test]
    fn a_read_checks_the_parts_it_reads_and_only_those() {
        let dir = tempfile::tempdir().unwrap();
        let (schema, meta) = three_column_segment(dir.path());
        let path = dir.path().join("s.parquet");
        let parts = meta.parts.clone().unwrap();
        let bytes = bytes::Bytes::from(std::fs::read(&path).unwrap());
        let metadata = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).unwrap();
        // A byte in the middle of `amount`'s first chunk, in no other part's blocks.
        let chunk = metadata.metadata().row_group(0).column(2);
        let (start, len) = chunk.byte_range();
        assert!(
            len > 3 * CHECKSUM_BLOCK_BYTES,
            "the chunk spans several blocks"
        );
        flip(&path, start + len / 2);

        // Reading other columns never touches it.
        let damaged = segment(dir.path(), &schema, &meta);
        assert_eq!(rows_read(&damaged, &[0, 1]).unwrap(), 18_000);
        let err = rows_read(&damaged, &[2]).unwrap_err();
        assert!(
            matches!(&err, Error::ChecksumMismatch { path: p, expected, .. }
                if p == &path && expected.ends_with("(column 2)")),
            "{err}"
        );
        // Nor does a check pass once and then stop checking: the column still fails.
        assert!(matches!(
            rows_read(&damaged, &[0, 2]),
            Err(Error::ChecksumMismatch { .. })
        ));

        // A segment recorded without part checksums (an older manifest) is checked whole.
        let old = SegmentMeta {
            parts: None,
            ..meta.clone()
        };
        assert!(matches!(
            rows_read(&segment(dir.path(), &schema, &old), &[0]),
            Err(Error::ChecksumMismatch { .. })
        ));

        // Damage in the tail (the footer) fails every read, whichever columns.
        flip(&path, start + len / 2);
        assert_eq!(
            rows_read(&segment(dir.path(), &schema, &meta), &[2]).unwrap(),
            18_000
        );
        flip(&path, bytes.len() as u64 - 20);
        let err = rows_read(&segment(dir.path(), &schema, &meta), &[0]).unwrap_err();
        assert!(
            matches!(&err, Error::ChecksumMismatch { expected, .. } if expected.ends_with("(tail)")),
            "{err}"
        );

        // Recorded checksums that do not fit the file are a typed error, not a panic.
        flip(&path, bytes.len() as u64 - 20);
        for bad in [
            PartChecksums {
                block_bytes: 0,
                ..parts.clone()
            },
            PartChecksums {
                tail_offset: bytes.len() as u64 + CHECKSUM_BLOCK_BYTES,
                ..parts.clone()
            },
            PartChecksums {
                column_crc32c: vec![0; 2],
                ..parts.clone()
            },
        ] {
            let meta = SegmentMeta {
                parts: Some(bad),
                ..meta.clone()
            };
            let err = rows_read(&segment(dir.path(), &schema, &meta), &[0]).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        }
    }

    #[test]
    fn shifted_crcs_combine_as_the_crc_of_the_concatenation() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for (split, end) in [
            (0, 1),
            (1, 2),
            (3, 4096),
            (4096, 8192),
            (5000, 20_000),
            (0, 0),
        ] {
            let (a, b) = data[..end].split_at(split);
            let (ca, cb) = (crc32c::crc32c(a), crc32c::crc32c(b));
            let whole = crc32c::crc32c(&data[..end]);
            assert_eq!(
                crc32c_shift(ca, b.len() as u64) ^ cb,
                whole,
                "{split}..{end}"
            );
            assert_eq!(crc32c::crc32c_combine(ca, cb, b.len()), whole);
        }
    }

    #[test]
    fn manifests_without_part_checksums_still_decode() {
        let json =
            r#"{"path":"a.parquet","row_count":1,"size":10,"crc32c":7,"hash":"","stats":[]}"#;
        let meta: SegmentMeta = serde_json::from_str(json).unwrap();
        assert_eq!(meta.parts, None);
        assert!(!serde_json::to_string(&meta).unwrap().contains("parts"));
    }
}
