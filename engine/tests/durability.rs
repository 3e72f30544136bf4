//! Faults injected at every file operation, and corrupt bytes in every kind of engine file.

mod common;

use std::sync::Arc;

use common::*;
use shale_engine::*;

fn open_faulty(dir: &std::path::Path, storage: &FaultyStorage) -> Engine {
    Engine::open_with(
        dir,
        EngineOptions {
            storage: Arc::new(storage.clone()),
            ..EngineOptions::default()
        },
    )
    .unwrap()
}

/// Runs `step` once to count its file operations, then for every operation and every fault kind
/// replays it on a fresh directory with that operation failing, and checks that the step reports
/// an error (or succeeds if the fault hit a non-essential operation), and that after reopening the
/// table holds either all or none of the step's rows and no unreferenced file.
fn fault_every_operation(name: &str, step: impl Fn(&Engine) -> Result<()>) {
    let prepare = |dir: &std::path::Path, storage: &FaultyStorage| {
        let engine = open_faulty(dir, storage);
        engine.create_database("db").unwrap();
        engine
            .create_table("db", sales_definition("sales"))
            .unwrap();
        engine
            .load("db", "sales", [sales_batch(&engine, "db", "sales", 0..40)])
            .unwrap();
        engine
    };
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new();
    let engine = prepare(dir.path(), &storage);
    storage.arm(None);
    step(&engine).unwrap();
    let ops = storage.log();
    let expected_after = scan_all(&engine, &engine.snapshot(), "db", "sales");
    assert!(ops.len() > 5, "{name}: {ops:?}");
    drop(engine);
    for (n, (op, _)) in ops.iter().enumerate() {
        let n = n as u64;
        // The faults each kind of operation can meet.
        let kinds: &[FaultKind] = match op {
            OpKind::Write => &[FaultKind::NoSpace, FaultKind::ShortWrite],
            OpKind::Sync | OpKind::SyncDir | OpKind::SyncFs => &[FaultKind::SyncFail],
            OpKind::Rename => &[FaultKind::RenameFail],
            _ => &[FaultKind::Eio],
        };
        for &kind in kinds {
            let dir = tempfile::tempdir().unwrap();
            let storage = FaultyStorage::new();
            let engine = prepare(dir.path(), &storage);
            let before = scan_all(&engine, &engine.snapshot(), "db", "sales");
            storage.arm(Some((n, kind)));
            let result = step(&engine);
            let fired = storage.fired();
            storage.arm(None);
            if fired && let Err(e) = &result {
                let text = e.to_string();
                assert!(
                    text.contains(dir.path().to_str().unwrap())
                        || matches!(e, Error::Poisoned { .. }),
                    "{name}: op {n} {kind:?}: error names no path: {text}"
                );
            }
            // Whatever happened, the committed state is intact and visible.
            let now = scan_all(&engine, &engine.snapshot(), "db", "sales");
            assert!(
                now == before || now == expected_after,
                "{name}: op {n} {kind:?}: mixed state"
            );
            if result.is_ok() {
                assert_eq!(
                    now, expected_after,
                    "{name}: op {n} {kind:?}: Ok but rows missing"
                );
            }
            drop(engine);
            let engine = Engine::open(dir.path()).unwrap();
            let snap = engine.snapshot();
            let reopened = scan_all(&engine, &snap, "db", "sales");
            assert!(
                reopened == before || reopened == expected_after,
                "{name}: op {n} {kind:?}: reopened into a mixed state"
            );
            if result.is_ok() {
                assert_eq!(
                    reopened, expected_after,
                    "{name}: op {n} {kind:?}: acknowledged change lost"
                );
            }
            assert_eq!(
                segment_files(dir.path()),
                referenced_files(&snap),
                "{name}: op {n} {kind:?}: orphans"
            );
        }
    }
}

#[test]
fn a_fault_at_any_operation_of_a_load_loses_nothing() {
    fault_every_operation("load", |engine| {
        engine
            .load("db", "sales", [sales_batch(engine, "db", "sales", 40..100)])
            .map(|_| ())
    });
}

#[test]
fn a_fault_at_any_operation_of_a_compaction_loses_nothing() {
    fault_every_operation("compaction", |engine| {
        engine.load("db", "sales", [sales_batch(engine, "db", "sales", 40..60)])?;
        engine.compact_with("db", "sales", 2).map(|_| ())
    });
}

#[test]
fn a_failed_manifest_fsync_poisons_the_engine_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new();
    let engine = open_faulty(dir.path(), &storage);
    engine.create_database("db").unwrap();
    engine
        .create_table("db", sales_definition("sales"))
        .unwrap();
    storage.arm(None);
    engine.create_database("probe").unwrap();
    let ops = storage.log();
    let sync_at = ops.iter().position(|(k, _)| *k == OpKind::Sync).unwrap() as u64;
    storage.arm(Some((sync_at, FaultKind::SyncFail)));
    let err = engine.create_database("x").unwrap_err();
    assert!(matches!(err, Error::Io { op: "fsync", .. }), "{err}");
    storage.arm(None);
    let err = engine
        .load("db", "sales", [sales_batch(&engine, "db", "sales", 0..5)])
        .unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    drop(engine);
    let engine = Engine::open(dir.path()).unwrap();
    engine
        .load("db", "sales", [sales_batch(&engine, "db", "sales", 0..5)])
        .unwrap();
}

fn flip(path: &std::path::Path, offset_from_end: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let len = bytes.len();
    let at = len.saturating_sub(offset_from_end + 1).min(len - 1);
    bytes[at] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn truncate(path: &std::path::Path, keep: usize) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..keep.min(bytes.len())]).unwrap();
}

fn populated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    engine.create_database("db").unwrap();
    engine
        .create_table("db", sales_definition("sales"))
        .unwrap();
    for i in 0..3 {
        engine
            .load(
                "db",
                "sales",
                [sales_batch(&engine, "db", "sales", i * 50..i * 50 + 50)],
            )
            .unwrap();
    }
    dir
}

fn live_log(dir: &std::path::Path) -> std::path::PathBuf {
    let current = std::fs::read_to_string(dir.join("CURRENT")).unwrap();
    dir.join("manifest").join(current.lines().next().unwrap())
}

#[test]
fn a_corrupt_current_pointer_is_a_typed_error() {
    for damage in 0..3 {
        let dir = populated();
        let path = dir.path().join("CURRENT");
        match damage {
            0 => flip(&path, 2),
            1 => flip(&path, 15),
            _ => truncate(&path, 5),
        }
        let err = Engine::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, Error::ChecksumMismatch { .. } | Error::Corrupt { .. }),
            "damage {damage}: {err}"
        );
    }
}

#[test]
fn a_corrupt_manifest_record_is_a_typed_error_never_a_silent_loss() {
    let dir = populated();
    let log = live_log(dir.path());
    let len = std::fs::metadata(&log).unwrap().len() as usize;
    for offset in [5usize, 40, len / 2, len - 20, 13] {
        let dir = populated();
        let log = live_log(dir.path());
        let mut bytes = std::fs::read(&log).unwrap();
        let at = offset.min(bytes.len() - 1);
        bytes[at] ^= 0x01;
        std::fs::write(&log, &bytes).unwrap();
        let err = Engine::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, Error::ChecksumMismatch { .. } | Error::Corrupt { .. }),
            "flip at {at}: {err}"
        );
    }
    // A bad magic.
    let dir = populated();
    let log = live_log(dir.path());
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[0] = b'X';
    std::fs::write(&log, &bytes).unwrap();
    assert!(matches!(
        Engine::open(dir.path()),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn a_torn_manifest_tail_is_an_unfinished_commit_and_is_cut() {
    let dir = populated();
    let log = live_log(dir.path());
    let full = std::fs::read(&log).unwrap();
    // Append half a record, as a crash in the middle of an append leaves it.
    let engine = Engine::open(dir.path()).unwrap();
    let rows = scan_all(&engine, &engine.snapshot(), "db", "sales");
    drop(engine);
    let mut torn = full.clone();
    torn.extend_from_slice(&[7, 0, 0, 0, 1, 2]);
    std::fs::write(&log, &torn).unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    assert_eq!(scan_all(&engine, &engine.snapshot(), "db", "sales"), rows);
    engine
        .load(
            "db",
            "sales",
            [sales_batch(&engine, "db", "sales", 500..510)],
        )
        .unwrap();
    drop(engine);
    let engine = Engine::open(dir.path()).unwrap();
    assert_eq!(
        scan_all(&engine, &engine.snapshot(), "db", "sales").len(),
        rows.len() + 10
    );
}

#[test]
fn a_corrupt_or_truncated_segment_is_reported_never_read() {
    for damage in 0..4 {
        let dir = populated();
        let engine = Engine::open(dir.path()).unwrap();
        let snap = engine.snapshot();
        let files = referenced_files(&snap);
        let victim = dir.path().join(&files[files.len() / 2]);
        match damage {
            0 => flip(&victim, 100),
            1 => flip(&victim, 3),
            2 => truncate(&victim, 100),
            _ => truncate(&victim, 0),
        }
        let mut saw_error = None;
        for batch in engine
            .scan(&snap, "db", "sales", ScanOptions::default())
            .unwrap()
        {
            if let Err(e) = batch {
                saw_error = Some(e);
            }
        }
        let err = saw_error.unwrap_or_else(|| panic!("damage {damage}: scan returned no error"));
        assert!(
            matches!(&err, Error::ChecksumMismatch { path, .. } | Error::Corrupt { path, .. } if path == &victim),
            "damage {damage}: {err}"
        );
    }
}

/// Bytes whose checksum matches (so only the Parquet decoder can notice) but are not a valid
/// segment: the scan reports the file, never panics and never returns rows silently.
#[test]
fn garbage_with_a_matching_checksum_is_a_decode_error() {
    let inputs: Vec<Vec<u8>> = vec![
        b"PAR1PAR1".to_vec(),
        b"PAR1\x00\x00\x00\x00PAR1".to_vec(),
        (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        {
            let mut v = vec![0u8; 64];
            v.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
            v.extend_from_slice(b"PAR1");
            v
        },
    ];
    for data in inputs {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        engine.create_database("db").unwrap();
        engine
            .create_table(
                "db",
                TableDefinition::new("t", vec![Column::new("id", ColumnType::BigInt)]),
            )
            .unwrap();
        let snap = engine.snapshot();
        let table = snap.get_table("db", "t").unwrap();
        let (p, tb) = (&table.partitions[0], &table.partitions[0].tablets[0]);
        let mut import = engine.begin_import();
        let path = segment_path(table.id, p.id, tb.id, 424242, 0);
        let mut f = import.create_file(&path).unwrap();
        f.write_all(&data).unwrap();
        f.sync().unwrap();
        drop(f);
        let meta = SegmentMeta {
            path: path.clone(),
            row_count: 1,
            size: data.len() as u64,
            crc32c: crc32c::crc32c(&data),
            hash: String::new(),
            stats: Vec::new(),
            parts: None,
        };
        import
            .commit(vec![manifest::Op::AddRowsets {
                db: "db".into(),
                table: "t".into(),
                rowsets: vec![manifest::TabletRowset {
                    partition_id: p.id,
                    tablet_id: tb.id,
                    rowset: manifest::RowsetDef {
                        id: 424242,
                        segments: vec![meta],
                    },
                }],
            }])
            .unwrap();
        let results: Vec<_> = engine
            .scan(&engine.snapshot(), "db", "t", ScanOptions::default())
            .unwrap()
            .collect();
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(Error::Parquet { .. } | Error::Corrupt { .. }))),
            "{} garbage bytes scanned without an error",
            data.len()
        );
    }
}
