//! Arbitrary bytes in place of a segment file: a scan returns batches or a typed error, never
//! panics. The manifest's checksum is made to match, so the Parquet decoder itself is reached.
//!
//! The parquet crate still panics on some malformed pages (apache/arrow-rs#11121: a
//! BYTE_STREAM_SPLIT page declaring more values than it holds indexes past its buffer, in 59.3
//! and 60.0). The scan catches a decoder's panic and turns it into `Error::Corrupt` naming the
//! file, so such a panic is allowed here only when it comes from the parquet crate's own source
//! and the scan then reports an error; any other panic, and a caught one the scan swallowed,
//! still fails the target.
#![no_main]

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use shale_engine::*;

/// Panics raised inside the parquet crate since the process started.
static DECODER_PANICS: AtomicUsize = AtomicUsize::new(0);

/// Wraps libfuzzer's panic hook (which aborts on every panic, caught or not): a panic located in
/// the parquet crate's source is counted and left to unwind into the scan's `catch_unwind`.
fn tolerate_decoder_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_parquet = info.location().is_some_and(|l| is_parquet_source(l.file()));
            if in_parquet {
                DECODER_PANICS.fetch_add(1, Ordering::SeqCst);
            } else {
                abort(info);
            }
        }));
    });
}

/// `.../parquet-59.3.2/src/...`: the registry's copy of the parquet crate, not our code.
fn is_parquet_source(file: &str) -> bool {
    file.split(['/', '\\']).any(|part| {
        part.strip_prefix("parquet-")
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
    })
}

fuzz_target!(|data: &[u8]| {
    tolerate_decoder_panics();
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
    let panics_before = DECODER_PANICS.load(Ordering::SeqCst);
    let mut failed = false;
    match engine.scan(&snapshot, "db", "t", ScanOptions::default()) {
        Ok(scan) => {
            for batch in scan {
                failed |= batch.is_err();
            }
        }
        Err(_) => failed = true,
    }
    // A decoder that panicked must surface as an error, never as a scan missing rows.
    if DECODER_PANICS.load(Ordering::SeqCst) != panics_before {
        assert!(
            failed,
            "the parquet decoder panicked and the scan reported no error"
        );
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
