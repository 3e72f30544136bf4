//! Shared data for shale's benchmarks: the anchor table of `../shared/anchors/duckdb_anchor.py`
//! (id BIGINT, ts DATETIME over 2025, region VARCHAR from 16 values, amount DOUBLE, qty INT),
//! generated deterministically, in a table with 12 monthly RANGE partitions × 8 buckets.

use std::sync::Arc;

use arrow::array::{
    Float64Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use shale_engine::*;

#[cfg(any(feature = "compare", feature = "backup"))]
pub mod latency;

/// Rows per generated batch.
pub const BATCH_ROWS: usize = 64 * 1024;

/// Microseconds from 1970 to 2025-01-01.
pub const START_2025_MICROS: i64 = 1_735_689_600_000_000;
/// Microseconds in 365 days.
pub const YEAR_MICROS: i64 = 365 * 86_400 * 1_000_000;

/// Rows for a benchmark: `SHALE_BENCH_ROWS`, else `default`.
pub fn rows_from_env(default: usize) -> usize {
    std::env::var("SHALE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The benchmark table's definition: 12 monthly partitions on `ts`, 8 buckets on `id`.
pub fn anchor_definition(name: &str) -> TableDefinition {
    let mut def = TableDefinition::new(
        name,
        vec![
            Column::new("id", ColumnType::BigInt).key().not_null(),
            Column::new("ts", ColumnType::Datetime).not_null(),
            Column::new("region", ColumnType::Varchar(16)).not_null(),
            Column::new("amount", ColumnType::Double).not_null(),
            Column::new("qty", ColumnType::Int).not_null(),
        ],
    );
    def.partitioning = Partitioning::Range {
        column: "ts".into(),
    };
    def.partitions = (1..=12)
        .map(|m| PartitionDefinition {
            name: format!("p2025{m:02}"),
            values: PartitionValues::LessThan(Some(if m == 12 {
                "2026-01-01".to_string()
            } else {
                format!("2025-{:02}-01", m + 1)
            })),
        })
        .collect();
    def.distribution = Distribution::hash(vec!["id".into()], 8);
    def
}

/// A small, fast, deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The anchor rows `[start, start + len)` as one batch; the same ids give the same rows.
pub fn anchor_batch(start: usize, len: usize) -> RecordBatch {
    let mut rng = Rng::new(0x2025_0101 ^ start as u64);
    let regions: Vec<String> = (0..16).map(|i| format!("region_{i:02}")).collect();
    let mut ts = Vec::with_capacity(len);
    let mut region = Vec::with_capacity(len);
    let mut amount = Vec::with_capacity(len);
    let mut qty = Vec::with_capacity(len);
    for _ in 0..len {
        let r = rng.next_u64();
        ts.push(START_2025_MICROS + (r % YEAR_MICROS as u64) as i64);
        region.push(regions[(r >> 59) as usize % 16].as_str());
        let r2 = rng.next_u64();
        amount.push(((r2 % 100_000) as f64) / 100.0);
        qty.push(1 + (r2 >> 40) as i32 % 100);
    }
    let def = anchor_definition("x");
    let schema = TableSchema::new(def.columns).map(|s| s.arrow_schema().clone());
    let schema = match schema {
        Ok(s) => s,
        Err(e) => panic!("the anchor schema is valid: {e}"),
    };
    let columns: Vec<arrow::array::ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            start as i64..(start + len) as i64,
        )),
        Arc::new(TimestampMicrosecondArray::from(ts)),
        Arc::new(StringArray::from(region)),
        Arc::new(Float64Array::from(amount)),
        Arc::new(Int32Array::from(qty)),
    ];
    match RecordBatch::try_new(schema, columns) {
        Ok(b) => b,
        Err(e) => panic!("anchor batch: {e}"),
    }
}

/// The anchor rows `0..rows` as batches.
pub fn anchor_batches(rows: usize) -> impl Iterator<Item = RecordBatch> {
    (0..rows)
        .step_by(BATCH_ROWS)
        .map(move |start| anchor_batch(start, BATCH_ROWS.min(rows - start)))
}

/// Opens an engine in `dir` with database `bench` and the anchor table `t` loaded with `rows`.
pub fn loaded_engine(dir: &std::path::Path, rows: usize) -> Result<Engine> {
    let engine = Engine::open(dir)?;
    engine.create_database("bench")?;
    engine.create_table("bench", anchor_definition("t"))?;
    engine.load("bench", "t", anchor_batches(rows))?;
    Ok(engine)
}

/// A field of `/proc/self/status` (`VmRSS:`, `VmHWM:`) in bytes; 0 where there is none.
pub fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Resets the peak RSS (VmHWM) to the current RSS (Linux: 5 written to `clear_refs`).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
