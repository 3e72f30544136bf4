//! The in-memory catalog: an immutable tree of `Arc`s, one per committed [`Version`].
//!
//! A commit builds a new `Version` that shares every unchanged subtree with the previous one and
//! publishes it with one pointer swap, so [`crate::Engine::snapshot`] is a reference-count
//! increment whatever the data size.
//!
//! # Invariants
//! - A `Version` never changes after it is published.
//! - Each segment file has exactly one `Arc<Segment>`; versions share it. When the last
//!   reference goes away and a durable commit has removed the segment, its file is deleted
//!   (see [`crate::segment::SegmentFile`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::distribution::Distribution;
use crate::partition::{PartitionBound, Partitioning};
use crate::segment::Segment;
use crate::types::{Column, TableSchema};

/// One committed state of the whole catalog.
#[derive(Debug, Clone, Default)]
pub struct Version {
    /// Commit sequence number; increases by one per commit.
    pub seq: u64,
    /// Next id to hand out for databases, tables, partitions, tablets and rowsets.
    pub(crate) next_id: u64,
    /// Databases by name.
    pub databases: BTreeMap<String, Arc<Database>>,
    /// Small system records (repositories, users) kept by upper layers, by key.
    pub meta: BTreeMap<String, String>,
}

impl Version {
    /// The database with that name.
    pub fn database(&self, name: &str) -> Option<&Arc<Database>> {
        self.databases.get(name)
    }

    /// The table `db.table`.
    pub fn table(&self, db: &str, table: &str) -> Option<&Arc<Table>> {
        self.databases.get(db)?.tables.get(table)
    }
}

/// A database: a namespace of tables.
#[derive(Debug, Clone)]
pub struct Database {
    /// Id, unique for the life of the data directory.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Tables by name.
    pub tables: BTreeMap<String, Arc<Table>>,
}

/// A table: schema, partitioning, bucketing and partitions.
#[derive(Debug, Clone)]
pub struct Table {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Columns.
    pub schema: Arc<TableSchema>,
    /// How rows map to partitions.
    pub partitioning: Partitioning,
    /// How rows of a partition map to tablets.
    pub distribution: Distribution,
    /// Partitions, ordered by bound for RANGE tables and by creation otherwise.
    pub partitions: Vec<Arc<Partition>>,
    /// User properties (`PROPERTIES (...)`), kept as given.
    pub properties: BTreeMap<String, String>,
}

impl Table {
    /// The partition with that name.
    pub fn partition(&self, name: &str) -> Option<&Arc<Partition>> {
        self.partitions.iter().find(|p| p.name == name)
    }

    /// The partition column, if partitioned.
    pub fn partition_column(&self) -> Option<&Column> {
        self.schema.column(self.partitioning.column()?)
    }

    /// Rows in all partitions.
    pub fn row_count(&self) -> u64 {
        self.partitions.iter().map(|p| p.row_count()).sum()
    }

    /// Bytes of all segment files.
    pub fn data_size(&self) -> u64 {
        self.partitions.iter().map(|p| p.data_size()).sum()
    }
}

/// A partition: a key range or value list, split into tablets.
#[derive(Debug, Clone)]
pub struct Partition {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Its keys.
    pub bound: PartitionBound,
    /// Visible version: 1 when created, +1 per load or compaction that touched it.
    pub version: u64,
    /// One tablet per bucket, in bucket order.
    pub tablets: Vec<Arc<Tablet>>,
}

impl Partition {
    /// Rows in all tablets.
    pub fn row_count(&self) -> u64 {
        self.segments().map(|s| s.meta.row_count).sum()
    }

    /// Bytes of all segment files.
    pub fn data_size(&self) -> u64 {
        self.segments().map(|s| s.meta.size).sum()
    }

    /// Every segment of the partition.
    pub fn segments(&self) -> impl Iterator<Item = &Arc<Segment>> {
        self.tablets
            .iter()
            .flat_map(|t| t.rowsets.iter().flat_map(|r| r.segments.iter()))
    }
}

/// A tablet: the rows of one bucket of one partition, as rowsets.
#[derive(Debug, Clone)]
pub struct Tablet {
    /// Id.
    pub id: u64,
    /// Rowsets in commit order.
    pub rowsets: Vec<Arc<Rowset>>,
}

/// A rowset: the segments one load (or one compaction) wrote into a tablet.
#[derive(Debug, Clone)]
pub struct Rowset {
    /// Id.
    pub id: u64,
    /// Its segment files.
    pub segments: Vec<Arc<Segment>>,
}

impl Rowset {
    /// Rows in the rowset.
    pub fn row_count(&self) -> u64 {
        self.segments.iter().map(|s| s.meta.row_count).sum()
    }
}
