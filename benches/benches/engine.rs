//! Engine benchmarks: load, full and filtered scans, and snapshot() at 1 / 100 / 1,000 partitions.
//!
//! `cargo bench -p shale-benches --bench engine` (rows: `SHALE_BENCH_ROWS`, default 2 Mi in a
//! release build and 20 Ki when built for tests, so `cargo test --benches` stays quick).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shale_benches::*;
use shale_engine::*;

fn default_rows() -> usize {
    rows_from_env(if cfg!(debug_assertions) {
        20_000
    } else {
        2_000_000
    })
}

fn count(engine: &Engine, snapshot: &Snapshot, options: ScanOptions) -> usize {
    let mut rows = 0;
    for batch in engine.scan(snapshot, "bench", "t", options).expect("scan") {
        rows += batch.expect("batch").num_rows();
    }
    rows
}

fn load(c: &mut Criterion) {
    let rows = default_rows();
    let batches: Vec<_> = anchor_batches(rows).collect();
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function(BenchmarkId::new("anchor_12x8", rows), |b| {
        b.iter_with_setup(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let engine = Engine::open(dir.path()).expect("open");
                engine.create_database("bench").expect("db");
                engine
                    .create_table("bench", anchor_definition("t"))
                    .expect("table");
                (dir, engine)
            },
            |(dir, engine)| {
                engine
                    .load("bench", "t", batches.iter().cloned())
                    .expect("load");
                (dir, engine)
            },
        )
    });
    group.finish();
}

fn scans(c: &mut Criterion) {
    let rows = default_rows();
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = loaded_engine(dir.path(), rows).expect("load");
    let snapshot = engine.snapshot();
    let table = snapshot.get_table("bench", "t").expect("table");
    let (segments, bytes) = table
        .partitions
        .iter()
        .flat_map(|p| p.segments())
        .fold((0, 0), |(n, b), s| (n + 1, b + s.meta.size));
    eprintln!(
        "{rows} rows on disk: {bytes} bytes in {segments} segments, {:.2} bytes/row",
        bytes as f64 / rows as f64
    );
    let mut group = c.benchmark_group("scan");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function("full", |b| {
        b.iter(|| count(&engine, &snapshot, ScanOptions::default()))
    });
    group.bench_function("region_amount", |b| {
        b.iter(|| {
            count(
                &engine,
                &snapshot,
                ScanOptions {
                    projection: Some(vec![2, 3]),
                    ..ScanOptions::default()
                },
            )
        })
    });
    let march = Value::parse("2025-03-01", &ColumnType::Datetime).expect("date");
    let april = Value::parse("2025-03-31 23:59:59", &ColumnType::Datetime).expect("date");
    group.bench_function("one_month_partition_pruned", |b| {
        b.iter(|| {
            count(
                &engine,
                &snapshot,
                ScanOptions {
                    predicates: vec![Predicate::Between(
                        "ts".into(),
                        march.clone(),
                        april.clone(),
                    )],
                    ..ScanOptions::default()
                },
            )
        })
    });
    group.bench_function("id_range_minmax_pruned", |b| {
        b.iter(|| {
            count(
                &engine,
                &snapshot,
                ScanOptions {
                    predicates: vec![Predicate::Between(
                        "id".into(),
                        Value::Int(1000),
                        Value::Int(2000),
                    )],
                    ..ScanOptions::default()
                },
            )
        })
    });
    group.finish();
}

fn snapshot(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot");
    for partitions in [1usize, 100, 1000] {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        engine.create_database("bench").expect("db");
        let mut def = anchor_definition("t");
        def.partitioning = Partitioning::Range {
            column: "id".into(),
        };
        def.partitions = (0..partitions)
            .map(|p| PartitionDefinition {
                name: format!("p{p}"),
                values: PartitionValues::LessThan(Some(((p + 1) * 10).to_string())),
            })
            .collect();
        engine.create_table("bench", def).expect("table");
        group.bench_with_input(
            BenchmarkId::from_parameter(partitions),
            &engine,
            |b, engine| b.iter(|| engine.snapshot()),
        );
    }
    group.finish();
}

criterion_group!(benches, load, scans, snapshot);
criterion_main!(benches);
