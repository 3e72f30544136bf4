//! Loads the anchor rows into a fresh data directory a few times and prints, per run, the wall
//! time, rows/s, Arrow MB/s and the bytes on disk; then the on-disk bytes per column. A driver for
//! `perf record` and for comparing writer settings without criterion's overhead.
//!
//! `SHALE_BENCH_ROWS=2000000 [SHALE_BENCH_BATCH_ROWS=65536] cargo run --release -p shale-benches --no-default-features --example load_profile [runs]`

use std::time::Instant;

use shale_benches::*;
use shale_engine::*;

/// CPU seconds (user + system) this process has used: under a shared machine's load, wall time
/// varies with the neighbours and CPU time shows what a change costs.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage writes only into the struct we pass.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn main() {
    let rows = rows_from_env(2_000_000);
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    // `SHALE_BENCH_BATCH_ROWS`: the rows per input batch (default [`BATCH_ROWS`]), to see what
    // small batches cost a load.
    let batch_rows = std::env::var("SHALE_BENCH_BATCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BATCH_ROWS);
    let batches: Vec<_> = (0..rows)
        .step_by(batch_rows)
        .map(|start| anchor_batch(start, batch_rows.min(rows - start)))
        .collect();
    let arrow_bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let mut times = Vec::new();
    let mut cpu_times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        engine.create_database("bench").expect("db");
        engine
            .create_table("bench", anchor_definition("t"))
            .expect("table");
        let start = Instant::now();
        let cpu_start = cpu_secs();
        let report = engine
            .load("bench", "t", batches.iter().cloned())
            .expect("load");
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_secs() - cpu_start;
        println!(
            "load {rows} rows: {:.1} ms (CPU {:.1} ms), {:.2} M rows/s, {:.0} MB/s (Arrow), {} segments, {} bytes ({:.2} B/row)",
            secs * 1e3,
            cpu * 1e3,
            rows as f64 / secs / 1e6,
            arrow_bytes as f64 / secs / 1e6,
            report.segment_count,
            report.bytes,
            report.bytes as f64 / rows as f64
        );
        times.push(secs);
        cpu_times.push(cpu);
        last = Some((dir, engine));
    }
    times.sort_by(f64::total_cmp);
    cpu_times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "median {:.1} ms (CPU {:.1} ms) = {:.2} M rows/s = {:.3} of 9.8 M rows/s",
        median * 1e3,
        cpu_times[cpu_times.len() / 2] * 1e3,
        rows as f64 / median / 1e6,
        rows as f64 / median / 9.8e6
    );
    if let Some((_dir, engine)) = last {
        let snapshot = engine.snapshot();
        let table = snapshot.get_table("bench", "t").expect("table");
        let mut per_column = vec![0i64; table.schema.columns().len()];
        for p in &table.partitions {
            for s in p.segments() {
                let bytes = std::fs::read(s.full_path()).expect("read segment");
                let reader = parquet::file::serialized_reader::SerializedFileReader::new(
                    bytes::Bytes::from(bytes),
                )
                .expect("parquet");
                use parquet::file::reader::FileReader;
                for rg in reader.metadata().row_groups() {
                    for (i, c) in rg.columns().iter().enumerate() {
                        per_column[i] += c.compressed_size();
                    }
                }
            }
        }
        for (c, bytes) in table.schema.columns().iter().zip(per_column) {
            println!(
                "  column {:8} {:>12} bytes  {:.2} B/row",
                c.name,
                bytes,
                bytes as f64 / rows as f64
            );
        }
    }
}
