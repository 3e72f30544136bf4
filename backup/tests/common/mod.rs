//! Shared fixtures: a small database, row collection, waiting for jobs, and repositories of
//! both kinds (a local directory, or a prefix on the loopback S3 server of [`s3`]).
#![allow(dead_code)]

pub mod imds;
pub mod s3;

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

/// Loads 1,100,000 rows into `items` (hex strings, which hardly compress): one segment larger
/// than an S3 part (5 MiB), uploaded as a multipart upload. Returns the largest segment's size.
pub fn load_large_items(engine: &Engine, db: &str) -> u64 {
    let schema = engine
        .snapshot()
        .get_table(db, "items")
        .unwrap()
        .schema
        .arrow_schema()
        .clone();
    let n = 1_100_000u64;
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values((0..n).map(|i| {
                format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            }))),
            Arc::new(Int32Array::from_iter_values(
                (0..n).map(|i| (i.wrapping_mul(2_654_435_761) % 1_000_003) as i32),
            )),
        ],
    )
    .unwrap();
    engine.load(db, "items", [batch]).unwrap();
    engine
        .snapshot()
        .get_table(db, "items")
        .unwrap()
        .partitions
        .iter()
        .flat_map(|p| p.segments())
        .map(|s| s.meta.size)
        .max()
        .unwrap()
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

/// Where a test repository lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A temporary directory.
    Fs,
    /// A fresh prefix in a bucket of the loopback moto server.
    S3,
}

/// A repository location for a test, of either kind; create it on a service with
/// [`TestRepo::create`].
pub struct TestRepo {
    pub kind: Kind,
    pub location: String,
    pub properties: BTreeMap<String, String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestRepo {
    pub fn new(kind: Kind) -> TestRepo {
        match kind {
            Kind::Fs => {
                let dir = tempfile::tempdir().unwrap();
                TestRepo {
                    kind,
                    location: format!("file://{}", dir.path().display()),
                    properties: BTreeMap::new(),
                    _dir: Some(dir),
                }
            }
            Kind::S3 => TestRepo::s3_via(&s3::moto().endpoint()),
        }
    }

    /// A filesystem repository at `dir` (created by CREATE REPOSITORY if missing).
    pub fn fs_at(dir: &Path) -> TestRepo {
        TestRepo {
            kind: Kind::Fs,
            location: format!("file://{}", dir.display()),
            properties: BTreeMap::new(),
            _dir: None,
        }
    }

    /// An S3 repository reached through `endpoint` (a proxy in front of moto).
    pub fn s3_via(endpoint: &str) -> TestRepo {
        TestRepo {
            kind: Kind::S3,
            location: s3::fresh_location(),
            properties: s3::s3_properties(endpoint),
            _dir: None,
        }
    }

    /// The directory of a filesystem repository; `None` on S3.
    pub fn fs_path(&self) -> Option<std::path::PathBuf> {
        self.location.strip_prefix("file://").map(Into::into)
    }

    /// CREATE REPOSITORY `name` on this location.
    pub fn create(&self, b: &Backups, name: &str) {
        b.create_repository(name, &self.location, false, self.properties.clone())
            .unwrap();
    }
}

/// Every object in a repository (keys relative to its root), sorted; works for both kinds.
pub fn repo_files(b: &Backups, name: &str) -> Vec<String> {
    let mut keys: Vec<String> = b
        .repository_store(name)
        .unwrap()
        .list("")
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    keys.sort();
    keys
}

/// The data objects of a repository (`data/...` keys), sorted.
pub fn data_objects(b: &Backups, name: &str) -> Vec<String> {
    repo_files(b, name)
        .into_iter()
        .filter(|k| k.starts_with("data/"))
        .collect()
}

/// Runs a test body on a filesystem and on an S3 repository: `both!(name)` after
/// `fn name(kind: Kind)` defines the tests `name::fs` and `name::s3`.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn fs() {
                super::$name(super::Kind::Fs)
            }
            #[test]
            fn s3() {
                super::$name(super::Kind::S3)
            }
        }
    };
}
