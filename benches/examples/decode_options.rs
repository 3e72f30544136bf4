//! Compares Parquet writer settings by what a scan pays to read them back: bytes per row, the
//! CPU time to encode the segments, and the median-of-5 CPU time to decode the `amount` (DOUBLE)
//! and `region` (VARCHAR) columns of the anchor rows cut into 96 tablet-sized segments, in 8 Ki-row
//! batches as DataFusion reads them. Times are the thread's CPU time, so other processes on the
//! machine do not count (they still share its caches).
//!
//! `SHALE_BENCH_ROWS=20000000 cargo run --release -p shale-benches --no-default-features --example decode_options`

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;
use shale_benches::*;

const TABLETS: usize = 96;

fn col(name: &str) -> ColumnPath {
    ColumnPath::from(name)
}

fn zstd(level: i32) -> Compression {
    Compression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default())
}

/// The engine's settings (segment.rs) with `page_rows` rows per page.
fn engine_like(page_rows: usize) -> WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(zstd(1))
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_statistics_truncate_length(None)
        .set_data_page_row_count_limit(page_rows)
        .set_max_row_group_row_count(Some(1 << 20))
        .set_column_dictionary_enabled(col("region"), true)
        .set_column_dictionary_enabled(col("qty"), true)
        .set_column_encoding(col("id"), Encoding::DELTA_BINARY_PACKED)
        .set_column_encoding(col("ts"), Encoding::DELTA_BINARY_PACKED)
}

fn configs() -> Vec<(String, WriterProperties)> {
    let mut out = Vec::new();
    for page_rows in [8192, 16384, 32768, 65536, 131072] {
        out.push((
            format!("zstd1 page {page_rows}"),
            engine_like(page_rows).build(),
        ));
    }
    for level in [2, 3, 5, 9, 12, 15, 19] {
        out.push((
            format!("amount zstd{level} page 8192"),
            engine_like(8192)
                .set_column_compression(col("amount"), zstd(level))
                .build(),
        ));
    }
    for level in [3, 9, 19] {
        out.push((
            format!("amount zstd{level} page 65536"),
            engine_like(65536)
                .set_column_compression(col("amount"), zstd(level))
                .build(),
        ));
    }
    out.push((
        "amount lz4_raw page 8192".into(),
        engine_like(8192)
            .set_column_compression(col("amount"), Compression::LZ4_RAW)
            .build(),
    ));
    out.push((
        "amount uncompressed page 8192".into(),
        engine_like(8192)
            .set_column_compression(col("amount"), Compression::UNCOMPRESSED)
            .build(),
    ));
    out.push((
        "amount byte_stream_split zstd1 page 8192".into(),
        engine_like(8192)
            .set_column_encoding(col("amount"), Encoding::BYTE_STREAM_SPLIT)
            .build(),
    ));
    out.push((
        "amount byte_stream_split lz4_raw page 8192".into(),
        engine_like(8192)
            .set_column_encoding(col("amount"), Encoding::BYTE_STREAM_SPLIT)
            .set_column_compression(col("amount"), Compression::LZ4_RAW)
            .build(),
    ));
    out.push((
        "all lz4_raw page 8192".into(),
        engine_like(8192)
            .set_compression(Compression::LZ4_RAW)
            .build(),
    ));
    out.push((
        "all lz4_raw, amount plain uncompressed page 8192".into(),
        engine_like(8192)
            .set_compression(Compression::LZ4_RAW)
            .set_column_compression(col("amount"), Compression::UNCOMPRESSED)
            .build(),
    ));
    out.push((
        "amount dict uncompressed page 8192".into(),
        engine_like(8192)
            .set_column_dictionary_enabled(col("amount"), true)
            .set_column_dictionary_page_size_limit(col("amount"), 8 << 20)
            .set_column_compression(col("amount"), Compression::UNCOMPRESSED)
            .build(),
    ));
    out.push((
        "amount dict lz4_raw page 8192".into(),
        engine_like(8192)
            .set_column_dictionary_enabled(col("amount"), true)
            .set_column_dictionary_page_size_limit(col("amount"), 8 << 20)
            .set_column_compression(col("amount"), Compression::LZ4_RAW)
            .build(),
    ));
    out.push((
        "amount dict page 8192".into(),
        engine_like(8192)
            .set_column_dictionary_enabled(col("amount"), true)
            .set_column_dictionary_page_size_limit(col("amount"), 8 << 20)
            .build(),
    ));
    out
}

/// CPU seconds this thread has run.
fn thread_cpu_secs() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to write.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime");
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rows = rows_from_env(20_000_000);
    // Pieces as a load gives each tablet: rows with id % TABLETS == t, in id order.
    let mut pieces: Vec<Vec<RecordBatch>> = vec![Vec::new(); TABLETS];
    for b in anchor_batches(rows) {
        let mut groups: Vec<Vec<u32>> = vec![Vec::new(); TABLETS];
        for row in 0..b.num_rows() {
            groups[row % TABLETS].push(row as u32);
        }
        for (t, g) in groups.into_iter().enumerate() {
            pieces[t].push(take_record_batch(&b, &UInt32Array::from(g)).expect("take"));
        }
    }
    let only = std::env::var("SHALE_DECODE_CONFIG").ok();
    for (name, props) in configs() {
        if only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        let mut files = Vec::new();
        let mut amount_bytes = 0i64;
        let mut total = 0usize;
        let encode_start = thread_cpu_secs();
        for tablet in &pieces {
            let mut out = Vec::new();
            let mut w = ArrowWriter::try_new(&mut out, tablet[0].schema(), Some(props.clone()))
                .expect("writer");
            for p in tablet {
                w.write(p).expect("write");
            }
            let meta = w.close().expect("close");
            for rg in meta.row_groups() {
                amount_bytes += rg.column(3).compressed_size();
            }
            total += out.len();
            files.push(Bytes::from(out));
        }
        let encode_s = thread_cpu_secs() - encode_start;
        let decode = |columns: &[usize]| {
            let mut times = Vec::new();
            for _ in 0..5 {
                let start = thread_cpu_secs();
                let mut n = 0;
                for f in &files {
                    let builder = ParquetRecordBatchReaderBuilder::try_new(f.clone()).expect("b");
                    let mask = ProjectionMask::roots(builder.parquet_schema(), columns.to_vec());
                    let reader = builder
                        .with_projection(mask)
                        .with_batch_size(8192)
                        .build()
                        .expect("reader");
                    for batch in reader {
                        n += batch.expect("batch").num_rows();
                    }
                }
                assert_eq!(n, rows);
                times.push(thread_cpu_secs() - start);
            }
            median(times)
        };
        let amount_s = decode(&[3]);
        let region_s = decode(&[2]);
        println!(
            "{name:28} {:5.2} B/row (amount {:4.2})  encode {:6.0} ms  decode amount {:6.1} ms, region {:5.1} ms",
            total as f64 / rows as f64,
            amount_bytes as f64 / rows as f64,
            encode_s * 1e3,
            amount_s * 1e3,
            region_s * 1e3,
        );
    }
}
