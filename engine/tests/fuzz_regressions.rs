//! Inputs the fuzz targets (`fuzz/`) found crashing, kept as regression tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use shale_engine::*;

/// Commits `data` as the one segment of a fresh table and scans it, as `fuzz/fuzz_targets/
/// segment_reader.rs` does; returns how many threads panicked meanwhile and the scan's first
/// error.
fn scan_forged_segment(data: &[u8]) -> (usize, Option<Error>) {
    // The panic hook is process-wide: one forged scan at a time, or tests count each other's.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        eprintln!("panic: {info}");
    }));
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let columns = vec![
        Column::new("id", ColumnType::BigInt),
        Column::new("name", ColumnType::String),
    ];
    engine.create_database("db").unwrap();
    engine
        .create_table("db", TableDefinition::new("t", columns))
        .unwrap();
    let snapshot = engine.snapshot();
    let table = snapshot.get_table("db", "t").unwrap();
    let partition = &table.partitions[0];
    let tablet = &partition.tablets[0];
    let mut import = engine.begin_import();
    let path = segment_path(table.id, partition.id, tablet.id, 999_999, 0);
    let mut file = import.create_file(&path).unwrap();
    file.write_all(data).unwrap();
    file.sync().unwrap();
    drop(file);
    let meta = SegmentMeta {
        path,
        row_count: 1,
        size: data.len() as u64,
        crc32c: crc32c::crc32c(data),
        hash: String::new(),
        stats: Vec::new(),
        parts: None,
    };
    let op = manifest::Op::AddRowsets {
        db: "db".into(),
        table: "t".into(),
        rowsets: vec![manifest::TabletRowset {
            partition_id: partition.id,
            tablet_id: tablet.id,
            rowset: manifest::RowsetDef {
                id: 999_999,
                segments: vec![meta],
            },
        }],
    };
    import.commit(vec![op]).unwrap();
    let snapshot = engine.snapshot();
    let error = match engine.scan(&snapshot, "db", "t", ScanOptions::default()) {
        Ok(scan) => scan.filter_map(|batch| batch.err()).next(),
        Err(e) => Some(e),
    };
    std::panic::set_hook(previous);
    (panics.load(Ordering::SeqCst), error)
}

/// Found by `segment_reader`: a segment whose embedded `ARROW:schema` metadata holds an
/// out-of-range flatbuffer integer made arrow-ipc's schema decoder unwrap a `TryFromIntError`
/// inside the scan thread. Root cause: the reader decoded the writer's Arrow schema from the
/// file although the catalog already has the table's schema; a segment restored from a hostile
/// repository (its checksums made to match) could crash scans. The reader now skips that
/// metadata and reads the Parquet schema only.
#[test]
fn a_segment_with_a_hostile_embedded_arrow_schema_does_not_panic_the_scan() {
    let data = include_bytes!("fuzz_cases/segment_arrow_schema_overflow.parquet");
    assert_eq!(scan_forged_segment(data).0, 0, "a scan thread panicked");
}

/// Found by `segment_reader` in CI: a BYTE_STREAM_SPLIT data page declaring more values than
/// it holds makes the parquet crate's decoder index past the page (apache/arrow-rs#11121, open
/// in parquet 59.3 and 60.0). The panic is upstream's; the scan catches it and must report the
/// file as corrupt rather than end with rows missing.
#[test]
fn a_decoder_panic_on_a_forged_page_is_a_corrupt_error_naming_the_segment() {
    let data = include_bytes!("fuzz_cases/segment_byte_stream_split_overrun.parquet");
    let (_, error) = scan_forged_segment(data);
    match error {
        Some(Error::Corrupt { path, .. }) => {
            assert!(path.to_string_lossy().ends_with(".parquet"), "{path:?}")
        }
        other => panic!("expected a Corrupt error naming the segment, got {other:?}"),
    }
}
