//! Compares Parquet writer settings on the anchor rows cut into 96 tablet-sized pieces: CPU time to
//! encode and bytes per row, per column. Used to choose the segment writer's settings. Pages hold
//! at most 8 Ki rows, as in the engine's segments (ZSTD compresses each page on its own).
//!
//! At 2 M rows: BYTE_STREAM_SPLIT makes `amount` (cents as DOUBLE) 5.64 B/row where PLAIN+ZSTD
//! gives 3.30; ZSTD level 3 gives 3.36 and level 9 3.20, at 1.5x and 4x the encoding time.
//!
//! `SHALE_BENCH_ROWS=2000000 cargo run --release -p shale-benches --no-default-features --example writer_options`

use std::time::Instant;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;
use shale_benches::*;

const TABLETS: usize = 96;

fn col(name: &str) -> ColumnPath {
    ColumnPath::from(name)
}

fn base() -> WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(1 << 20))
        // As the engine's segments: small pages for page-index pruning.
        .set_data_page_row_count_limit(8192)
}

fn zstd_level(level: i32) -> Compression {
    Compression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default())
}

fn zstd() -> Compression {
    Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default())
}

fn configs() -> Vec<(&'static str, WriterProperties)> {
    let dict_low = |b: WriterPropertiesBuilder| {
        b.set_dictionary_enabled(false)
            .set_column_dictionary_enabled(col("region"), true)
            .set_column_dictionary_enabled(col("qty"), true)
    };
    let delta = |b: WriterPropertiesBuilder| {
        b.set_column_encoding(col("id"), Encoding::DELTA_BINARY_PACKED)
            .set_column_encoding(col("ts"), Encoding::DELTA_BINARY_PACKED)
    };
    vec![
        (
            "A dict all, zstd1",
            base()
                .set_compression(zstd())
                .set_dictionary_enabled(true)
                .build(),
        ),
        (
            "B dict low-card, zstd1",
            dict_low(base().set_compression(zstd())).build(),
        ),
        (
            "C B + delta id/ts",
            delta(dict_low(base().set_compression(zstd()))).build(),
        ),
        (
            "D C + bss amount",
            delta(dict_low(base().set_compression(zstd())))
                .set_column_encoding(col("amount"), Encoding::BYTE_STREAM_SPLIT)
                .build(),
        ),
        (
            "E C + dict amount",
            delta(dict_low(base().set_compression(zstd())))
                .set_column_dictionary_enabled(col("amount"), true)
                .build(),
        ),
        (
            "F C, id/ts uncompressed",
            delta(dict_low(base().set_compression(zstd())))
                .set_column_compression(col("id"), Compression::UNCOMPRESSED)
                .set_column_compression(col("ts"), Compression::UNCOMPRESSED)
                .build(),
        ),
        (
            "G C with lz4_raw",
            delta(dict_low(base().set_compression(Compression::LZ4_RAW))).build(),
        ),
        (
            "H D, id/ts uncompressed",
            delta(dict_low(base().set_compression(zstd())))
                .set_column_encoding(col("amount"), Encoding::BYTE_STREAM_SPLIT)
                .set_column_compression(col("id"), Compression::UNCOMPRESSED)
                .set_column_compression(col("ts"), Compression::UNCOMPRESSED)
                .build(),
        ),
        (
            "J C, only amount zstd",
            delta(dict_low(base().set_compression(Compression::UNCOMPRESSED)))
                .set_column_compression(col("amount"), zstd())
                .build(),
        ),
        (
            "K C, lz4_raw, amount zstd",
            delta(dict_low(base().set_compression(Compression::LZ4_RAW)))
                .set_column_compression(col("amount"), zstd())
                .build(),
        ),
        (
            "L C, uncompressed",
            delta(dict_low(base().set_compression(Compression::UNCOMPRESSED))).build(),
        ),
        (
            "M C, amount zstd3",
            delta(dict_low(base().set_compression(zstd())))
                .set_column_compression(col("amount"), zstd_level(3))
                .build(),
        ),
        (
            "N C, amount zstd9",
            delta(dict_low(base().set_compression(zstd())))
                .set_column_compression(col("amount"), zstd_level(9))
                .build(),
        ),
        (
            "O D, amount zstd3",
            delta(dict_low(base().set_compression(zstd())))
                .set_column_encoding(col("amount"), Encoding::BYTE_STREAM_SPLIT)
                .set_column_compression(col("amount"), zstd_level(3))
                .build(),
        ),
        (
            "P C, all zstd3",
            delta(dict_low(base().set_compression(zstd_level(3)))).build(),
        ),
        (
            "Q C, ts/amount plain zstd1",
            dict_low(base().set_compression(zstd()))
                .set_column_encoding(col("id"), Encoding::DELTA_BINARY_PACKED)
                .build(),
        ),
        (
            "I plain, uncompressed",
            dict_low(base().set_compression(Compression::UNCOMPRESSED)).build(),
        ),
    ]
}

fn main() {
    let rows = rows_from_env(2_000_000);
    let batches: Vec<RecordBatch> = anchor_batches(rows).collect();
    // Pieces as a load gives each tablet: rows with id % TABLETS == t, in id order.
    let mut pieces: Vec<Vec<RecordBatch>> = vec![Vec::new(); TABLETS];
    for b in &batches {
        let mut groups: Vec<Vec<u32>> = vec![Vec::new(); TABLETS];
        for row in 0..b.num_rows() {
            groups[row % TABLETS].push(row as u32);
        }
        for (t, g) in groups.into_iter().enumerate() {
            pieces[t].push(take_record_batch(b, &UInt32Array::from(g)).expect("take"));
        }
    }
    let names = ["id", "ts", "region", "amount", "qty"];
    let only = std::env::var("SHALE_WRITER_CONFIG").ok();
    for (name, props) in configs() {
        if only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        let mut best = f64::MAX;
        let mut per_column = [0i64; 5];
        let mut total = 0usize;
        for _ in 0..5 {
            per_column = [0; 5];
            total = 0;
            let start = Instant::now();
            for tablet in &pieces {
                let mut out = Vec::new();
                let mut w =
                    ArrowWriter::try_new(&mut out, batches[0].schema(), Some(props.clone()))
                        .expect("writer");
                for p in tablet {
                    w.write(p).expect("write");
                }
                let meta = w.close().expect("close");
                for rg in meta.row_groups() {
                    for (i, c) in rg.columns().iter().enumerate() {
                        per_column[i] += c.compressed_size();
                    }
                }
                total += out.len();
            }
            best = best.min(start.elapsed().as_secs_f64());
        }
        let cols: Vec<String> = names
            .iter()
            .zip(per_column)
            .map(|(n, b)| format!("{n} {:.2}", b as f64 / rows as f64))
            .collect();
        println!(
            "{name:26} {:7.1} ms  {:5.2} B/row  [{}]",
            best * 1e3,
            total as f64 / rows as f64,
            cols.join(", ")
        );
    }
}
