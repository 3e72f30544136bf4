//! The manifest: an append-only log of commits, and the `CURRENT` pointer to it.
//!
//! See `docs/design.md` for the byte layout. In short:
//!
//! ```text
//! CURRENT                       "<log name>\n<crc32c of the name, 8 hex digits>\n"
//! manifest/<20-digit n>.log     "SHALELOG" u32le(format) then records:
//!     u32le len | u32le crc32c(len bytes) | u32le crc32c(payload) | payload (JSON Record)
//! ```
//!
//! The first record of every log is a checkpoint (the whole catalog); later records are commits
//! whose ops are applied in order. A record is committed once its bytes are fsynced. On open, a
//! tail that is incomplete (shorter than its header says, or zero-filled) is a commit that never
//! finished and is cut off; any other damage is reported as [`Error::Corrupt`] rather than
//! silently dropping an acknowledged commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::catalog::{Database, Partition, Rowset, Table, Tablet, Version};
use crate::distribution::Distribution;
use crate::error::{Error, Result};
use crate::partition::{PartitionValues, Partitioning, resolve_bound};
use crate::segment::{Gc, Segment, SegmentMeta};
use crate::storage::{Storage, WritableFile};
use crate::types::{Column, TableSchema};

/// Magic bytes at the start of every manifest log.
pub const LOG_MAGIC: &[u8; 8] = b"SHALELOG";
/// Manifest format version written after the magic.
pub const LOG_FORMAT: u32 = 1;
const LOG_HEADER_LEN: usize = 12;
const RECORD_HEADER_LEN: usize = 12;
/// The largest record accepted when reading (a checkpoint of a very large catalog).
pub const RECORD_LEN_MAX: usize = 1 << 30;

/// A table as the manifest stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Columns.
    pub columns: Vec<Column>,
    /// Partitioning.
    pub partitioning: Partitioning,
    /// Bucketing.
    pub distribution: Distribution,
    /// User properties.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Partitions.
    pub partitions: Vec<PartitionDef>,
}

/// A partition as the manifest stores it (bounds as literal text in `[lower, upper)` or list form).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionDef {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Bounds.
    pub values: PartitionValues,
    /// Visible version.
    pub version: u64,
    /// Tablets in bucket order.
    pub tablets: Vec<TabletDef>,
}

/// A tablet as the manifest stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TabletDef {
    /// Id.
    pub id: u64,
    /// Rowsets in commit order.
    pub rowsets: Vec<RowsetDef>,
}

/// A rowset as the manifest stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowsetDef {
    /// Id.
    pub id: u64,
    /// Segment files.
    pub segments: Vec<SegmentMeta>,
}

/// A database as a checkpoint stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatabaseDef {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Tables.
    pub tables: Vec<TableDef>,
}

/// A rowset added to one tablet by a load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TabletRowset {
    /// Partition id.
    pub partition_id: u64,
    /// Tablet id.
    pub tablet_id: u64,
    /// The new rowset.
    pub rowset: RowsetDef,
}

/// One change to the catalog. A commit is a list of ops applied together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Op {
    /// The whole catalog (first record of every log).
    Checkpoint {
        /// Databases.
        databases: Vec<DatabaseDef>,
        /// System records.
        meta: BTreeMap<String, String>,
    },
    /// CREATE DATABASE.
    CreateDatabase {
        /// Id.
        id: u64,
        /// Name.
        name: String,
    },
    /// DROP DATABASE (and its tables).
    DropDatabase {
        /// Name.
        name: String,
    },
    /// CREATE TABLE (possibly with data, for restores).
    CreateTable {
        /// Database.
        db: String,
        /// The table.
        table: TableDef,
    },
    /// DROP TABLE.
    DropTable {
        /// Database.
        db: String,
        /// Table.
        table: String,
    },
    /// ADD PARTITION, or replace the partition with the same name (restores, truncates).
    PutPartition {
        /// Database.
        db: String,
        /// Table.
        table: String,
        /// The partition.
        partition: PartitionDef,
    },
    /// DROP PARTITION.
    DropPartition {
        /// Database.
        db: String,
        /// Table.
        table: String,
        /// Partition name.
        partition: String,
    },
    /// A load: new rowsets in tablets of one table; each touched partition's version + 1.
    AddRowsets {
        /// Database.
        db: String,
        /// Table.
        table: String,
        /// The rowsets.
        rowsets: Vec<TabletRowset>,
    },
    /// A compaction: rowsets of one tablet replaced by one.
    ReplaceRowsets {
        /// Database.
        db: String,
        /// Table.
        table: String,
        /// Partition id.
        partition_id: u64,
        /// Tablet id.
        tablet_id: u64,
        /// Rowset ids removed.
        removed: Vec<u64>,
        /// The merged rowset.
        added: RowsetDef,
    },
    /// Sets (or with `None` removes) a system record.
    PutMeta {
        /// Key.
        key: String,
        /// Value.
        value: Option<String>,
    },
}

/// One commit as stored in the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The version this commit produces.
    pub seq: u64,
    /// The id counter after this commit.
    pub next_id: u64,
    /// Changes, applied in order.
    pub ops: Vec<Op>,
}

// ---- Converting between the stored and the in-memory forms --------------------------------

pub(crate) fn table_from_def(def: TableDef, gc: &Arc<Gc>) -> Result<Table> {
    let schema = Arc::new(TableSchema::new(def.columns)?);
    let column = crate::partition::partition_column(&def.partitioning, &schema)?.cloned();
    def.distribution.validate(&schema)?;
    let mut table = Table {
        id: def.id,
        name: def.name,
        schema,
        partitioning: def.partitioning,
        distribution: def.distribution,
        partitions: Vec::new(),
        properties: def.properties,
    };
    for p in def.partitions {
        let partition = partition_from_def(&table, column.as_ref(), p, gc)?;
        table.partitions.push(Arc::new(partition));
    }
    Ok(table)
}

fn partition_from_def(
    table: &Table,
    column: Option<&Column>,
    def: PartitionDef,
    gc: &Arc<Gc>,
) -> Result<Partition> {
    let bound = resolve_bound(&table.partitioning, column, &def.values, std::iter::empty())?;
    if def.tablets.len() != table.distribution.buckets as usize {
        return Err(Error::InvalidDefinition(format!(
            "partition {} has {} tablets, the table has {} buckets",
            def.name,
            def.tablets.len(),
            table.distribution.buckets
        )));
    }
    let tablets = def
        .tablets
        .into_iter()
        .map(|t| {
            Arc::new(Tablet {
                id: t.id,
                rowsets: t
                    .rowsets
                    .into_iter()
                    .map(|r| Arc::new(rowset_from_def(r, &table.schema, gc)))
                    .collect(),
            })
        })
        .collect();
    Ok(Partition {
        id: def.id,
        name: def.name,
        bound,
        version: def.version,
        tablets,
    })
}

pub(crate) fn rowset_from_def(def: RowsetDef, schema: &TableSchema, gc: &Arc<Gc>) -> Rowset {
    Rowset {
        id: def.id,
        segments: def
            .segments
            .into_iter()
            .map(|m| Arc::new(Segment::new(m, schema, gc.clone())))
            .collect(),
    }
}

/// The stored form of a table.
pub fn table_to_def(table: &Table) -> TableDef {
    let column_type = table.partition_column().map(|c| c.column_type);
    TableDef {
        id: table.id,
        name: table.name.clone(),
        columns: table.schema.columns().to_vec(),
        partitioning: table.partitioning.clone(),
        distribution: table.distribution.clone(),
        properties: table.properties.clone(),
        partitions: table
            .partitions
            .iter()
            .map(|p| partition_to_def(p, column_type.as_ref()))
            .collect(),
    }
}

/// The stored form of a partition.
pub fn partition_to_def(
    p: &Partition,
    column_type: Option<&crate::types::ColumnType>,
) -> PartitionDef {
    PartitionDef {
        id: p.id,
        name: p.name.clone(),
        values: p.bound.to_values(column_type),
        version: p.version,
        tablets: p
            .tablets
            .iter()
            .map(|t| TabletDef {
                id: t.id,
                rowsets: t.rowsets.iter().map(|r| rowset_to_def(r)).collect(),
            })
            .collect(),
    }
}

/// The stored form of a rowset.
pub fn rowset_to_def(r: &Rowset) -> RowsetDef {
    RowsetDef {
        id: r.id,
        segments: r.segments.iter().map(|s| s.meta.clone()).collect(),
    }
}

pub(crate) fn checkpoint_of(version: &Version) -> Record {
    Record {
        seq: version.seq,
        next_id: version.next_id,
        ops: vec![Op::Checkpoint {
            databases: version
                .databases
                .values()
                .map(|d| DatabaseDef {
                    id: d.id,
                    name: d.name.clone(),
                    tables: d.tables.values().map(|t| table_to_def(t)).collect(),
                })
                .collect(),
            meta: version.meta.clone(),
        }],
    }
}

// ---- Applying ops ---------------------------------------------------------------------------

fn db_mut<'a>(v: &'a mut Version, db: &str) -> Result<&'a mut Database> {
    v.databases
        .get_mut(db)
        .map(Arc::make_mut)
        .ok_or_else(|| Error::DatabaseNotFound { name: db.into() })
}

fn table_mut<'a>(v: &'a mut Version, db: &str, table: &str) -> Result<&'a mut Table> {
    db_mut(v, db)?
        .tables
        .get_mut(table)
        .map(Arc::make_mut)
        .ok_or_else(|| Error::TableNotFound {
            db: db.into(),
            table: table.into(),
        })
}

fn collect_segments<'a>(
    partitions: impl Iterator<Item = &'a Arc<Partition>>,
    out: &mut Vec<String>,
) {
    for p in partitions {
        out.extend(p.segments().map(|s| s.meta.path.clone()));
    }
}

/// Applies one op to `v`, returning the paths of segments it removed.
pub(crate) fn apply(v: &mut Version, op: Op, gc: &Arc<Gc>) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    match op {
        Op::Checkpoint { databases, meta } => {
            for d in v.databases.values() {
                for t in d.tables.values() {
                    collect_segments(t.partitions.iter(), &mut removed);
                }
            }
            v.databases.clear();
            for d in databases {
                let mut tables = BTreeMap::new();
                for t in d.tables {
                    let table = table_from_def(t, gc)?;
                    tables.insert(table.name.clone(), Arc::new(table));
                }
                v.databases.insert(
                    d.name.clone(),
                    Arc::new(Database {
                        id: d.id,
                        name: d.name,
                        tables,
                    }),
                );
            }
            v.meta = meta;
        }
        Op::CreateDatabase { id, name } => {
            if v.databases.contains_key(&name) {
                return Err(Error::DatabaseExists { name });
            }
            v.databases.insert(
                name.clone(),
                Arc::new(Database {
                    id,
                    name,
                    tables: BTreeMap::new(),
                }),
            );
        }
        Op::DropDatabase { name } => {
            let d = v
                .databases
                .remove(&name)
                .ok_or(Error::DatabaseNotFound { name })?;
            for t in d.tables.values() {
                collect_segments(t.partitions.iter(), &mut removed);
            }
        }
        Op::CreateTable { db, table } => {
            let table = table_from_def(table, gc)?;
            let d = db_mut(v, &db)?;
            if d.tables.contains_key(&table.name) {
                return Err(Error::TableExists { table: table.name });
            }
            d.tables.insert(table.name.clone(), Arc::new(table));
        }
        Op::DropTable { db, table } => {
            let d = db_mut(v, &db)?;
            let t = d
                .tables
                .remove(&table)
                .ok_or(Error::TableNotFound { db, table })?;
            collect_segments(t.partitions.iter(), &mut removed);
        }
        Op::PutPartition {
            db,
            table,
            partition,
        } => {
            let t = table_mut(v, &db, &table)?;
            let column = t.partition_column().cloned();
            let new = Arc::new(partition_from_def(t, column.as_ref(), partition, gc)?);
            match t.partitions.iter().position(|p| p.name == new.name) {
                Some(i) => {
                    let old = std::mem::replace(&mut t.partitions[i], new);
                    collect_segments(std::iter::once(&old), &mut removed);
                }
                None => {
                    if let Some(other) = t.partitions.iter().find(|p| p.bound.overlaps(&new.bound))
                    {
                        return Err(Error::PartitionOverlap {
                            partition: new.name.clone(),
                            existing: other.name.clone(),
                            detail: new.bound.to_string(),
                        });
                    }
                    t.partitions.push(new);
                }
            }
            sort_partitions(t);
        }
        Op::DropPartition {
            db,
            table,
            partition,
        } => {
            let t = table_mut(v, &db, &table)?;
            let i = t
                .partitions
                .iter()
                .position(|p| p.name == partition)
                .ok_or_else(|| Error::PartitionNotFound {
                    table: table.clone(),
                    partition,
                })?;
            let old = t.partitions.remove(i);
            collect_segments(std::iter::once(&old), &mut removed);
        }
        Op::AddRowsets { db, table, rowsets } => {
            let t = table_mut(v, &db, &table)?;
            let schema = t.schema.clone();
            let mut touched = Vec::new();
            for add in rowsets {
                let p = t
                    .partitions
                    .iter_mut()
                    .find(|p| p.id == add.partition_id)
                    .map(Arc::make_mut)
                    .ok_or_else(|| Error::PartitionNotFound {
                        table: table.clone(),
                        partition: format!("id {}", add.partition_id),
                    })?;
                let tablet = p
                    .tablets
                    .iter_mut()
                    .find(|x| x.id == add.tablet_id)
                    .map(Arc::make_mut)
                    .ok_or_else(|| {
                        Error::InvalidDefinition(format!("unknown tablet {}", add.tablet_id))
                    })?;
                tablet
                    .rowsets
                    .push(Arc::new(rowset_from_def(add.rowset, &schema, gc)));
                if !touched.contains(&add.partition_id) {
                    touched.push(add.partition_id);
                }
            }
            for p in t.partitions.iter_mut() {
                if touched.contains(&p.id) {
                    Arc::make_mut(p).version += 1;
                }
            }
        }
        Op::ReplaceRowsets {
            db,
            table,
            partition_id,
            tablet_id,
            removed: removed_ids,
            added,
        } => {
            let t = table_mut(v, &db, &table)?;
            let schema = t.schema.clone();
            let p = t
                .partitions
                .iter_mut()
                .find(|p| p.id == partition_id)
                .map(Arc::make_mut)
                .ok_or_else(|| Error::PartitionNotFound {
                    table: table.clone(),
                    partition: format!("id {partition_id}"),
                })?;
            let tablet = p
                .tablets
                .iter_mut()
                .find(|x| x.id == tablet_id)
                .map(Arc::make_mut)
                .ok_or_else(|| Error::InvalidDefinition(format!("unknown tablet {tablet_id}")))?;
            let first = tablet
                .rowsets
                .iter()
                .position(|r| removed_ids.contains(&r.id))
                .ok_or_else(|| {
                    Error::InvalidDefinition(format!("rowsets {removed_ids:?} are gone"))
                })?;
            if removed_ids
                .iter()
                .any(|id| !tablet.rowsets.iter().any(|r| r.id == *id))
            {
                return Err(Error::InvalidDefinition(format!(
                    "rowsets {removed_ids:?} are gone"
                )));
            }
            for r in tablet
                .rowsets
                .iter()
                .filter(|r| removed_ids.contains(&r.id))
            {
                removed.extend(r.segments.iter().map(|s| s.meta.path.clone()));
            }
            tablet.rowsets.retain(|r| !removed_ids.contains(&r.id));
            tablet
                .rowsets
                .insert(first, Arc::new(rowset_from_def(added, &schema, gc)));
            p.version += 1;
        }
        Op::PutMeta { key, value } => match value {
            Some(value) => {
                v.meta.insert(key, value);
            }
            None => {
                v.meta.remove(&key);
            }
        },
    }
    Ok(removed)
}

/// RANGE partitions are kept in key order; others in creation order.
fn sort_partitions(t: &mut Table) {
    if let Partitioning::Range { .. } = t.partitioning {
        t.partitions.sort_by_key(|p| match p.bound {
            crate::partition::PartitionBound::Range { lower, .. } => lower.unwrap_or(i128::MIN),
            _ => i128::MIN,
        });
    }
}

// ---- The log on disk --------------------------------------------------------------------------

/// Encodes a record with its header.
pub fn encode_record(record: &Record) -> Result<Vec<u8>> {
    let payload = serde_json::to_vec(record)
        .map_err(|e| Error::InvalidDefinition(format!("cannot encode manifest record: {e}")))?;
    let len = u32::try_from(payload.len())
        .map_err(|_| Error::InvalidDefinition("manifest record over 4 GiB".into()))?;
    let len_bytes = len.to_le_bytes();
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc32c::crc32c(&len_bytes).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The result of decoding a log.
#[derive(Debug)]
pub struct DecodedLog {
    /// Records in order.
    pub records: Vec<Record>,
    /// Length of the valid prefix; bytes after it are an unfinished commit.
    pub valid_len: usize,
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decodes a whole log file. Never panics, whatever the bytes.
pub fn decode_log(path: &Path, bytes: &[u8]) -> Result<DecodedLog> {
    if bytes.len() < LOG_HEADER_LEN || &bytes[..8] != LOG_MAGIC {
        return Err(Error::corrupt(path, "not a shale manifest log (bad magic)"));
    }
    let format = read_u32(bytes, 8).unwrap_or(0);
    if format != LOG_FORMAT {
        return Err(Error::corrupt(
            path,
            format!("manifest format {format} is not supported (expected {LOG_FORMAT})"),
        ));
    }
    let mut at = LOG_HEADER_LEN;
    let mut records = Vec::new();
    let zero_tail = |from: usize| bytes[from..].iter().all(|b| *b == 0);
    while at < bytes.len() {
        let remaining = bytes.len() - at;
        // A header cut short is an append that never finished.
        if remaining < RECORD_HEADER_LEN {
            break;
        }
        let (Some(len), Some(len_crc), Some(payload_crc)) = (
            read_u32(bytes, at),
            read_u32(bytes, at + 4),
            read_u32(bytes, at + 8),
        ) else {
            break;
        };
        if crc32c::crc32c(&len.to_le_bytes()) != len_crc {
            // Zeros past the last record are a file extended by an append that never finished.
            if zero_tail(at) {
                break;
            }
            return Err(Error::corrupt(
                path,
                format!("record header at offset {at} fails its checksum"),
            ));
        }
        let len = len as usize;
        if len > RECORD_LEN_MAX {
            return Err(Error::corrupt(
                path,
                format!("record at offset {at} claims {len} bytes"),
            ));
        }
        // The header is intact but the payload is cut short: an unfinished append.
        if remaining - RECORD_HEADER_LEN < len {
            break;
        }
        let start = at + RECORD_HEADER_LEN;
        let payload = &bytes[start..start + len];
        if crc32c::crc32c(payload) != payload_crc {
            if zero_tail(start) {
                break;
            }
            return Err(Error::ChecksumMismatch {
                path: path.to_path_buf(),
                expected: format!("{payload_crc:08x}"),
                actual: format!("{:08x} (record at offset {at})", crc32c::crc32c(payload)),
            });
        }
        let record: Record = serde_json::from_slice(payload).map_err(|e| {
            Error::corrupt(path, format!("record at offset {at} does not decode: {e}"))
        })?;
        records.push(record);
        at = start + len;
    }
    // `at` stops at the first unfinished record; everything before it is valid.
    Ok(DecodedLog {
        records,
        valid_len: at,
    })
}

/// The name of log number `n`.
pub fn log_name(n: u64) -> String {
    format!("{n:020}.log")
}

/// Encodes the `CURRENT` pointer.
pub fn encode_current(log: &str) -> Vec<u8> {
    format!("{log}\n{:08x}\n", crc32c::crc32c(log.as_bytes())).into_bytes()
}

/// Decodes the `CURRENT` pointer into the log's name and number.
pub fn decode_current(path: &Path, bytes: &[u8]) -> Result<(String, u64)> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::corrupt(path, "not UTF-8"))?;
    let mut lines = text.split('\n');
    let (Some(name), Some(crc)) = (lines.next(), lines.next()) else {
        return Err(Error::corrupt(path, "expected two lines"));
    };
    let expected = format!("{:08x}", crc32c::crc32c(name.as_bytes()));
    if crc != expected {
        return Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: crc.chars().take(16).collect(),
            actual: expected,
        });
    }
    let n = name
        .strip_suffix(".log")
        .filter(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u64>().ok())
        .ok_or_else(|| Error::corrupt(path, format!("bad log name {name:?}")))?;
    Ok((name.to_string(), n))
}

/// The open log commits are appended to.
#[derive(Debug)]
pub(crate) struct LogWriter {
    pub(crate) file: Box<dyn WritableFile>,
    pub(crate) path: PathBuf,
    pub(crate) number: u64,
    pub(crate) len: u64,
}

impl LogWriter {
    /// Creates log number `n` in `dir` holding `first` (a checkpoint), fsynced with its directory.
    pub(crate) fn create(
        storage: &dyn Storage,
        dir: &Path,
        n: u64,
        first: &Record,
    ) -> Result<LogWriter> {
        let path = dir.join(log_name(n));
        let mut bytes = Vec::new();
        bytes.extend_from_slice(LOG_MAGIC);
        bytes.extend_from_slice(&LOG_FORMAT.to_le_bytes());
        bytes.extend_from_slice(&encode_record(first)?);
        let mut file = storage.create(&path)?;
        file.write_all(&bytes)?;
        file.sync()?;
        storage.sync_dir(dir)?;
        Ok(LogWriter {
            file,
            path,
            number: n,
            len: bytes.len() as u64,
        })
    }
}
