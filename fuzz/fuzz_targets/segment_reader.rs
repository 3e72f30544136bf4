//! Arbitrary bytes in place of a segment file: a scan returns batches or a typed error, never
//! panics. The manifest's checksum is made to match, so the Parquet decoder itself is reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shale_engine::*;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok(engine) = Engine::open(dir.path()) else {
        return;
    };
    let columns = vec![
        Column::new("id", ColumnType::BigInt),
        Column::new("name", ColumnType::String),
    ];
    if engine.create_database("db").is_err()
        || engine
            .create_table("db", TableDefinition::new("t", columns))
            .is_err()
    {
        return;
    }
    let snapshot = engine.snapshot();
    let Ok(table) = snapshot.get_table("db", "t") else {
        return;
    };
    let partition = &table.partitions[0];
    let tablet = &partition.tablets[0];
    let mut import = engine.begin_import();
    let path = segment_path(table.id, partition.id, tablet.id, 999_999, 0);
    let Ok(mut file) = import.create_file(&path) else {
        return;
    };
    if file.write_all(data).and_then(|()| file.sync()).is_err() {
        return;
    }
    drop(file);
    let meta = SegmentMeta {
        path,
        row_count: 1,
        size: data.len() as u64,
        crc32c: crc32c_of(data),
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
    if import.commit(vec![op]).is_err() {
        return;
    }
    let snapshot = engine.snapshot();
    if let Ok(scan) = engine.scan(&snapshot, "db", "t", ScanOptions::default()) {
        for batch in scan {
            let _ = batch;
        }
    }
});

fn crc32c_of(data: &[u8]) -> u32 {
    // CRC-32C (Castagnoli), bitwise; small inputs only.
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
