//! Several threads load and scan while compaction and partition changes run: no lost or
//! duplicated rows, no deadlock, and every snapshot stays consistent.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use shale_engine::*;

#[test]
fn loads_scans_compaction_and_ddl_run_together() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    engine.create_database("db").unwrap();
    // Loaders write days 0..20 (partitions p0, p1); the DDL thread churns p2 only.
    engine
        .create_table("db", sales_definition("sales"))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let loaders: Vec<_> = (0..3i64)
        .map(|w| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..15i64 {
                    let start = (w * 1000 + i) * 30;
                    // Ids with id % 30 < 20 only, so rows land in p0/p1.
                    let ids: Vec<i64> = (start..start + 30).filter(|x| x % 30 < 20).collect();
                    let mut b = sales_batch(&engine, "db", "sales", ids[0]..ids[0] + 1);
                    for id in &ids[1..] {
                        let one = sales_batch(&engine, "db", "sales", *id..*id + 1);
                        b = arrow::compute::concat_batches(&b.schema(), [&b, &one]).unwrap();
                    }
                    engine.load("db", "sales", [b]).unwrap();
                    acked.extend(ids);
                }
                acked
            })
        })
        .collect();
    let scanner = {
        let engine = engine.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut scans = 0;
            while !stop.load(Ordering::SeqCst) {
                let snap = engine.snapshot();
                let a = scan_all(&engine, &snap, "db", "sales");
                let b = scan_all(&engine, &snap, "db", "sales");
                assert_eq!(a, b, "a snapshot changed under a reader");
                let mut dedup = a.clone();
                dedup.dedup();
                assert_eq!(dedup.len(), a.len(), "duplicated rows");
                scans += 1;
            }
            scans
        })
    };
    let maintenance = {
        let engine = engine.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut rounds = 0;
            while !stop.load(Ordering::SeqCst) {
                engine.compact_with("db", "sales", 2).unwrap();
                engine.drop_partition("db", "sales", "p2").unwrap();
                engine
                    .add_partition(
                        "db",
                        "sales",
                        PartitionDefinition {
                            name: "p2".into(),
                            values: PartitionValues::LessThan(Some("30".into())),
                        },
                    )
                    .unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    let mut acked: Vec<i64> = loaders
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    stop.store(true, Ordering::SeqCst);
    assert!(scanner.join().unwrap() > 0);
    assert!(maintenance.join().unwrap() > 0);
    acked.sort_unstable();
    assert_eq!(scan_all(&engine, &engine.snapshot(), "db", "sales"), acked);
    drop(engine);
    let engine = Engine::open(dir.path()).unwrap();
    assert_eq!(scan_all(&engine, &engine.snapshot(), "db", "sales"), acked);
}
