//! Shared fixtures: a small database, row collection, waiting for jobs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::util::display::array_value_to_string;
use shale_backup::{Backups, BackupsOptions, JobState};
use shale_engine::{
    Column, ColumnType, Distribution, Engine, PartitionDefinition, PartitionValues, Partitioning,
    ScanOptions, Snapshot, TableDefinition,
};

pub const WAIT: Duration = Duration::from_secs(60);

/// `sales(day INT key, item VARCHAR, qty BIGINT)` RANGE(day) p1 < 10 <= p2 < 20 <= p3, 2 buckets;
/// `items(item VARCHAR key, price INT)` unpartitioned, 1 bucket.
pub fn create_tables(engine: &Engine, db: &str) {
    engine.create_database(db).unwrap();
    let mut def = TableDefinition::new(
        "sales",
        vec![
            Column::new("day", ColumnType::Int).key(),
            Column::new("item", ColumnType::Varchar(20)),
            Column::new("qty", ColumnType::BigInt),
        ],
    );
    def.partitioning = Partitioning::Range {
        column: "day".into(),
    };
    def.partitions = vec![
        PartitionDefinition {
            name: "p1".into(),
            values: PartitionValues::LessThan(Some("10".into())),
        },
        PartitionDefinition {
            name: "p2".into(),
            values: PartitionValues::LessThan(Some("20".into())),
        },
        PartitionDefinition {
            name: "p3".into(),
            values: PartitionValues::LessThan(None),
        },
    ];
    def.distribution = Distribution::hash(vec!["item".into()], 2);
    engine.create_table(db, def).unwrap();
    let items = TableDefinition::new(
        "items",
        vec![
            Column::new("item", ColumnType::Varchar(20)).key(),
            Column::new("price", ColumnType::Int),
        ],
    );
    engine.create_table(db, items).unwrap();
}

/// Loads `n` sales rows with days `start..start+n` (mod 30) and a few items.
pub fn load_sales(engine: &Engine, db: &str, start: i32, n: i32) {
    let schema = engine
        .snapshot()
        .get_table(db, "sales")
        .unwrap()
        .schema
        .arrow_schema()
        .clone();
    let days: Vec<i32> = (start..start + n).map(|d| d.rem_euclid(30)).collect();
    let items: Vec<String> = (start..start + n)
        .map(|i| format!("item{}", i % 7))
        .collect();
    let qty: Vec<i64> = (start..start + n).map(|i| i as i64 * 3).collect();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int32Array::from(days)),
            Arc::new(StringArray::from(items)),
            Arc::new(Int64Array::from(qty)),
        ],
    )
    .unwrap();
    engine.load(db, "sales", [batch]).unwrap();
}

pub fn load_items(engine: &Engine, db: &str, n: i32) {
    let schema = engine
        .snapshot()
        .get_table(db, "items")
        .unwrap()
        .schema
        .arrow_schema()
        .clone();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(
                (0..n).map(|i| format!("item{i}")).collect::<Vec<_>>(),
            )),
            Arc::new(Int32Array::from((0..n).map(|i| i * 10).collect::<Vec<_>>())),
        ],
    )
    .unwrap();
    engine.load(db, "items", [batch]).unwrap();
}

/// An engine at `dir` with database `shop` holding data in both tables.
pub fn engine_with_data(dir: &Path) -> Engine {
    let engine = Engine::open(dir).unwrap();
    create_tables(&engine, "shop");
    load_sales(&engine, "shop", 0, 60);
    load_sales(&engine, "shop", 100, 25);
    load_items(&engine, "shop", 7);
    engine
}

/// Every row of a table as text, sorted.
pub fn rows(engine: &Engine, snapshot: &Snapshot, db: &str, table: &str) -> Vec<String> {
    let mut out = Vec::new();
    for batch in engine
        .scan(snapshot, db, table, ScanOptions::default())
        .unwrap()
    {
        let batch = batch.unwrap();
        for r in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| array_value_to_string(c, r).unwrap())
                .collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    out
}

/// Rows of the given partitions of `sales` (by day range), sorted.
pub fn sales_rows_in(all: &[String], ranges: &[(i32, i32)]) -> Vec<String> {
    all.iter()
        .filter(|r| {
            let day: i32 = r.split('|').next().unwrap().parse().unwrap();
            ranges.iter().any(|(lo, hi)| day >= *lo && day < *hi)
        })
        .cloned()
        .collect()
}

pub fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn open(engine: &Engine) -> Backups {
    Backups::open(engine.clone()).unwrap()
}

pub fn open_with(engine: &Engine, options: BackupsOptions) -> Backups {
    Backups::open_with(engine.clone(), options).unwrap()
}

/// Runs a backup to completion and asserts it finished.
pub fn backup_ok(
    b: &Backups,
    db: &str,
    snapshot: &str,
    repo: &str,
    tables: Vec<(String, Option<Vec<String>>)>,
) -> u64 {
    let id = b
        .backup(db, snapshot, repo, tables, BTreeMap::new())
        .unwrap();
    let state = b.wait(id, WAIT);
    let job = b.job(id).unwrap();
    assert_eq!(
        state,
        Some(JobState::Finished),
        "backup failed: {}",
        job.status
    );
    id
}

pub fn restore_ok(
    b: &Backups,
    db: &str,
    snapshot: &str,
    repo: &str,
    tables: Vec<shale_backup::TableRef>,
) -> u64 {
    let id = b
        .restore(db, snapshot, repo, tables, BTreeMap::new())
        .unwrap();
    let state = b.wait(id, WAIT);
    let job = b.job(id).unwrap();
    assert_eq!(
        state,
        Some(JobState::Finished),
        "restore failed: {}",
        job.status
    );
    id
}

/// A repository location inside `dir`.
pub fn repo_at(b: &Backups, name: &str, dir: &Path) {
    b.create_repository(
        name,
        &format!("file://{}", dir.display()),
        false,
        BTreeMap::new(),
    )
    .unwrap();
}

/// All files under `dir` (relative paths), sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        if let Ok(entries) = std::fs::read_dir(d) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
