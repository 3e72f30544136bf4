//! # shale-engine
//!
//! The storage engine of shale: databases and tables with StarRocks column types, RANGE/LIST
//! partitions split into hash-bucketed tablets, immutable Parquet segment files, a crash-safe
//! manifest of versions, O(1) copy-on-write snapshots, and streaming scans as Arrow batches.
//!
//! Start with [`Engine`]: [`Engine::open`] a data directory, [`Engine::create_database`],
//! [`Engine::create_table`], [`Engine::load`] batches, pin a [`Snapshot`] with
//! [`Engine::snapshot`], and [`Engine::scan`] it.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Int32Array, RecordBatch, StringArray};
//! use shale_engine::*;
//!
//! # fn main() -> Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let engine = Engine::open(dir.path())?;
//! engine.create_database("shop")?;
//! let mut def = TableDefinition::new("sales", vec![
//!     Column::new("day", ColumnType::Int).key(),
//!     Column::new("item", ColumnType::Varchar(20)),
//! ]);
//! def.partitioning = Partitioning::Range { column: "day".into() };
//! def.partitions = vec![
//!     PartitionDefinition { name: "p1".into(), values: PartitionValues::LessThan(Some("10".into())) },
//!     PartitionDefinition { name: "p2".into(), values: PartitionValues::LessThan(None) },
//! ];
//! def.distribution = Distribution::hash(vec!["item".into()], 4);
//! engine.create_table("shop", def)?;
//! let schema = engine.snapshot().get_table("shop", "sales")?.schema.arrow_schema().clone();
//! let batch = RecordBatch::try_new(schema, vec![
//!     Arc::new(Int32Array::from(vec![1, 15])),
//!     Arc::new(StringArray::from(vec!["tea", "cake"])),
//! ]).unwrap();
//! engine.load("shop", "sales", [batch])?;
//! let snapshot = engine.snapshot();                       // O(1), pins this state
//! let rows: usize = engine.scan(&snapshot, "shop", "sales", ScanOptions::default())?
//!     .map(|b| b.map(|b| b.num_rows()))
//!     .sum::<Result<usize>>()?;
//! assert_eq!(rows, 2);
//! # Ok(())
//! # }
//! ```

pub mod catalog;
pub mod distribution;
pub mod engine;
pub mod error;
pub mod foreground;
pub mod manifest;
pub mod names;
pub mod partition;
pub mod scan;
pub mod segment;
pub mod storage;
pub mod types;

pub use catalog::{Database, Partition, Rowset, Table, Tablet, Version};
pub use distribution::Distribution;
pub use engine::{
    CompactionReport, Engine, EngineOptions, Import, LoadReport, Snapshot, TableDefinition,
    segment_path,
};
pub use error::{Error, Result};
pub use foreground::{Foreground, ForegroundGuard};
pub use partition::{PartitionBound, PartitionDefinition, PartitionValues, Partitioning};
pub use scan::{Predicate, ScanOptions, ScanStream, ScanTasks, SegmentScan, with_string_views};
pub use segment::{
    CHECKSUM_BLOCK_BYTES, COMPRESSION_PROPERTY, Codec, ColumnStats, PartChecksums, Segment,
    SegmentMeta,
};
pub use storage::{
    DirEntry, FaultKind, FaultyStorage, FileSystemSync, OpKind, StdStorage, Storage, WritableFile,
};
pub use types::{Column, ColumnType, TableSchema, Value};
