//! Backup-side benchmarks: full backup, incremental backup (1% of the rows into one partition),
//! restore, VERIFY quick and deep, and parsing StarRocks statements.
//!
//! `cargo bench -p shale-benches --bench backup` (rows: `SHALE_BENCH_ROWS`, default 2 Mi in a
//! release build and 20 Ki when built for tests, so `cargo test --benches` stays quick). The
//! side-by-side comparison with `cp -r` and DuckDB is the `compare` binary.

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shale_backup::{Backups, JobState};
use shale_benches::*;

fn default_rows() -> usize {
    rows_from_env(if cfg!(debug_assertions) {
        20_000
    } else {
        2_000_000
    })
}

fn finished(backups: &Backups, id: u64) {
    let state = backups.wait(id, Duration::from_secs(3600));
    assert_eq!(
        state,
        Some(JobState::Finished),
        "job {id}: {:?}",
        backups.job(id).map(|j| j.status)
    );
}

fn backup_restore_verify(c: &mut Criterion) {
    let rows = default_rows();
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = loaded_engine(&dir.path().join("data"), rows).expect("load");
    let bytes = engine
        .snapshot()
        .get_table("bench", "t")
        .expect("table")
        .data_size();
    let backups = Backups::open(engine.clone()).expect("backups");
    let mut group = c.benchmark_group("backup");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));

    // Full: a fresh repository each time, so every file is copied.
    let mut n = 0u32;
    group.bench_function(BenchmarkId::new("full", rows), |b| {
        b.iter(|| {
            n += 1;
            let name = format!("full{n}");
            let location = dir.path().join(&name);
            backups
                .create_repository(
                    &name,
                    location.to_str().expect("utf-8"),
                    false,
                    BTreeMap::new(),
                )
                .expect("repository");
            let id = backups
                .backup("bench", "s", &name, Vec::new(), BTreeMap::new())
                .expect("backup");
            finished(&backups, id);
            backups.drop_repository(&name).expect("drop repository");
            std::fs::remove_dir_all(&location).expect("remove repository");
        })
    });

    // Incremental: one repository holding the full backup; each iteration adds 1% of the rows
    // to one partition and backs up again, copying only the new files.
    let location = dir.path().join("incr");
    backups
        .create_repository(
            "incr",
            location.to_str().expect("utf-8"),
            false,
            BTreeMap::new(),
        )
        .expect("repository");
    let id = backups
        .backup("bench", "base", "incr", Vec::new(), BTreeMap::new())
        .expect("backup");
    finished(&backups, id);
    let extra = (rows / 100).max(1);
    let mut next = 0usize;
    group.bench_function(BenchmarkId::new("incremental_1pct", rows), |b| {
        b.iter_with_setup(
            || {
                next += 1;
                let batch = anchor_batch(rows + next * extra, extra);
                // Keep only the rows of the first month: one partition changes.
                let ts = batch
                    .column(1)
                    .as_any()
                    .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
                    .expect("ts")
                    .clone();
                let first = ts.values().iter().copied().min().unwrap_or_default();
                let mask = arrow::array::BooleanArray::from_iter(
                    ts.values()
                        .iter()
                        .map(|v| Some(*v < first + 86_400_000_000 * 28)),
                );
                let batch = arrow::compute::filter_record_batch(&batch, &mask).expect("filter");
                engine.load("bench", "t", [batch]).expect("load");
                format!("i{next}")
            },
            |snapshot| {
                let id = backups
                    .backup("bench", &snapshot, "incr", Vec::new(), BTreeMap::new())
                    .expect("backup");
                finished(&backups, id);
            },
        )
    });

    // VERIFY of the base snapshot: sizes and checksums, then also decoding every file.
    group.bench_function(BenchmarkId::new("verify_quick", rows), |b| {
        b.iter(|| {
            let report = backups.verify("incr", "base", None, false).expect("verify");
            assert!(report.is_ok(), "{report:?}");
        })
    });
    group.bench_function(BenchmarkId::new("verify_deep", rows), |b| {
        b.iter(|| {
            let report = backups.verify("incr", "base", None, true).expect("verify");
            assert!(report.is_ok(), "{report:?}");
        })
    });

    // Restore of the base snapshot into a new database, dropped after each iteration.
    let mut r = 0u32;
    group.bench_function(BenchmarkId::new("restore", rows), |b| {
        b.iter(|| {
            r += 1;
            let db = format!("restored{r}");
            let id = backups
                .restore(&db, "base", "incr", Vec::new(), BTreeMap::new())
                .expect("restore");
            finished(&backups, id);
            engine.drop_database(&db).expect("drop database");
        })
    });
    group.finish();
}

fn parse(c: &mut Criterion) {
    let script = "CREATE TABLE IF NOT EXISTS events (id BIGINT NOT NULL, ts DATETIME, region \
        VARCHAR(16), amount DECIMAL(10, 2)) DUPLICATE KEY(id) PARTITION BY RANGE(ts) \
        (PARTITION p1 VALUES LESS THAN ('2025-02-01'), PARTITION p2 VALUES [('2025-02-01'), \
        ('2025-03-01'))) DISTRIBUTED BY HASH(id) BUCKETS 8 PROPERTIES ('replication_num' = '1');\n\
        BACKUP SNAPSHOT shop.snap1 TO repo ON (events PARTITION (p1, p2), users) \
        PROPERTIES ('type' = 'full', 'timeout' = '3600');\n\
        RESTORE SNAPSHOT shop.snap1 FROM repo ON (events PARTITION (p1) AS events_p1) \
        PROPERTIES ('backup_timestamp' = '2025-01-01-00-00-00-000');\n\
        SHOW SNAPSHOT ON repo WHERE SNAPSHOT = 'snap1' AND TIMESTAMP = '2025-01-01-00-00-00-000';\n";
    let mut group = c.benchmark_group("sql");
    group.throughput(Throughput::Bytes(script.len() as u64));
    group.bench_function("parse_statements", |b| {
        b.iter(|| {
            let statements = shale_sql::parser::parse(std::hint::black_box(script)).expect("parse");
            assert_eq!(statements.len(), 4);
        })
    });
    group.finish();
}

criterion_group!(benches, backup_restore_verify, parse);
criterion_main!(benches);
