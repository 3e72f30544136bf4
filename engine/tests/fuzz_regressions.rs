//! Inputs the fuzz targets (`fuzz/`) found crashing, kept as regression tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use shale_engine::*;

/// Commits `data` as the one segment of a fresh table and scans it, as `fuzz/fuzz_targets/
/// segment_reader.rs` does; returns how many threads panicked meanwhile.
fn scan_forged_segment(data: &[u8]) -> usize {
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
    if let Ok(scan) = engine.scan(&snapshot, "db", "t", ScanOptions::default()) {
        for batch in scan {
            let _ = batch;
        }
    }
    std::panic::set_hook(previous);
    panics.load(Ordering::SeqCst)
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
    assert_eq!(scan_forged_segment(data), 0, "a scan thread panicked");
}
