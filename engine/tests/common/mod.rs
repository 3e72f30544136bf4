//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use arrow::array::{Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::concat_batches;
use shale_engine::*;

/// A table of (id BIGINT key, day INT, region VARCHAR(16), amount DOUBLE) partitioned by RANGE
/// on `day` into `[0,10) [10,20) [20,30)` with 4 buckets on id.
pub fn sales_definition(name: &str) -> TableDefinition {
    let mut def = TableDefinition::new(
        name,
        vec![
            Column::new("id", ColumnType::BigInt).key().not_null(),
            Column::new("day", ColumnType::Int).not_null(),
            Column::new("region", ColumnType::Varchar(16)),
            Column::new("amount", ColumnType::Double),
        ],
    );
    def.partitioning = Partitioning::Range {
        column: "day".into(),
    };
    def.partitions = ["p0", "p1", "p2"]
        .iter()
        .enumerate()
        .map(|(i, n)| PartitionDefinition {
            name: n.to_string(),
            values: PartitionValues::LessThan(Some(((i + 1) * 10).to_string())),
        })
        .collect();
    def.distribution = Distribution::hash(vec!["id".into()], 4);
    def
}

/// Rows `ids` with day = id % 30, region r{id%5}, amount id/2.
pub fn sales_batch(
    engine: &Engine,
    db: &str,
    table: &str,
    ids: std::ops::Range<i64>,
) -> RecordBatch {
    let schema = engine
        .snapshot()
        .get_table(db, table)
        .unwrap()
        .schema
        .arrow_schema()
        .clone();
    let ids: Vec<i64> = ids.collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(Int32Array::from_iter_values(
                ids.iter().map(|i| (i % 30) as i32),
            )),
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|i| format!("r{}", i % 5)),
            )),
            Arc::new(Float64Array::from_iter_values(
                ids.iter().map(|i| *i as f64 / 2.0),
            )),
        ],
    )
    .unwrap()
}

/// All rows of a table as of a snapshot, sorted by the first column.
pub fn scan_all(engine: &Engine, snapshot: &Snapshot, db: &str, table: &str) -> Vec<i64> {
    scan_ids(engine, snapshot, db, table, ScanOptions::default())
}

/// The first (BIGINT) column of a scan, sorted.
pub fn scan_ids(
    engine: &Engine,
    snapshot: &Snapshot,
    db: &str,
    table: &str,
    options: ScanOptions,
) -> Vec<i64> {
    let mut ids = Vec::new();
    for batch in engine.scan(snapshot, db, table, options).unwrap() {
        let batch = batch.unwrap();
        let col = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("first column is BIGINT");
        ids.extend(col.values().iter().copied());
    }
    ids.sort_unstable();
    ids
}

/// Every row of a scan, concatenated.
pub fn scan_batch(engine: &Engine, snapshot: &Snapshot, db: &str, table: &str) -> RecordBatch {
    let stream = engine
        .scan(snapshot, db, table, ScanOptions::default())
        .unwrap();
    let schema = stream.schema().clone();
    let batches: Vec<RecordBatch> = stream.map(|b| b.unwrap()).collect();
    concat_batches(&schema, &batches).unwrap()
}

/// Relative paths of every file under the data directory's `segments/`.
pub fn segment_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let root = dir.join("segments");
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// Relative paths of every segment a snapshot names.
pub fn referenced_files(snapshot: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for d in snapshot.databases.values() {
        for t in d.tables.values() {
            for p in &t.partitions {
                out.extend(p.segments().map(|s| s.meta.path.clone()));
            }
        }
    }
    out.sort();
    out
}
