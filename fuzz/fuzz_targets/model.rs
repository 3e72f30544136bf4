//! Model-based fuzzing of the engine: the input drives a short sequence of operations (load a
//! small batch, drop or re-add a partition, pin / release a snapshot, compact, reopen) over a
//! [`FaultyStorage`] with a fault armed at fuzzer-chosen operation indexes, and every observable
//! state is checked against a trivially correct in-memory model:
//! - an acknowledged operation is visible, now and after reopening;
//! - a failed one is all or nothing: after reopening the table equals the model before it or the
//!   model after it, never a mix;
//! - a pinned snapshot keeps showing the rows it pinned;
//! - after reopening, no segment file is left that the catalog does not reference.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Int32Array, Int64Array, RecordBatch};
use libfuzzer_sys::fuzz_target;
use shale_engine::*;

const PARTITIONS: [(&str, i32); 3] = [("p0", 10), ("p1", 20), ("p2", 30)];

/// Rows per partition name: the model.
type Model = BTreeMap<String, Vec<(i64, i32)>>;

fn definition() -> TableDefinition {
    let mut def = TableDefinition::new(
        "t",
        vec![
            Column::new("id", ColumnType::BigInt).key().not_null(),
            Column::new("day", ColumnType::Int).not_null(),
        ],
    );
    def.partitioning = Partitioning::Range {
        column: "day".into(),
    };
    def.partitions = PARTITIONS
        .iter()
        .map(|(name, upper)| partition(name, *upper))
        .collect();
    def.distribution = Distribution::hash(vec!["id".into()], 2);
    def
}

fn partition(name: &str, upper: i32) -> PartitionDefinition {
    PartitionDefinition {
        name: name.into(),
        values: PartitionValues::LessThan(Some(upper.to_string())),
    }
}

fn open(dir: &Path, storage: &FaultyStorage) -> Engine {
    Engine::open_with(
        dir,
        EngineOptions {
            storage: Arc::new(storage.clone()),
            ..EngineOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("reopen failed: {e}"))
}

/// The table's rows, sorted.
fn scan(engine: &Engine, snapshot: &Snapshot) -> Vec<(i64, i32)> {
    let mut rows = Vec::new();
    for batch in engine
        .scan(snapshot, "db", "t", ScanOptions::default())
        .unwrap_or_else(|e| panic!("scan failed: {e}"))
    {
        let batch = batch.unwrap_or_else(|e| panic!("scan batch failed: {e}"));
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let days = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        rows.extend(
            ids.values()
                .iter()
                .copied()
                .zip(days.values().iter().copied()),
        );
    }
    rows.sort_unstable();
    rows
}

fn flat(model: &Model) -> Vec<(i64, i32)> {
    let mut rows: Vec<_> = model.values().flatten().copied().collect();
    rows.sort_unstable();
    rows
}

fn partitions_of(snapshot: &Snapshot) -> Vec<String> {
    let mut names: Vec<String> = snapshot
        .get_table("db", "t")
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.name.clone())
        .collect();
    names.sort();
    names
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("segments")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

fn referenced_files(snapshot: &Snapshot) -> Vec<String> {
    let mut out: Vec<String> = snapshot
        .get_table("db", "t")
        .unwrap()
        .partitions
        .iter()
        .flat_map(|p| {
            p.segments()
                .map(|s| s.meta.path.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
}

/// Reopens with faults off and checks the durable state is `model` or `alternative` (if any);
/// returns which one it was.
fn reopen_and_check(
    dir: &Path,
    storage: &FaultyStorage,
    engine: &mut Option<Engine>,
    pins: &mut Vec<(Snapshot, Vec<(i64, i32)>)>,
    model: &Model,
    alternative: Option<&Model>,
) -> Model {
    pins.clear();
    *engine = None;
    storage.arm(None);
    let reopened = open(dir, storage);
    let snapshot = reopened.snapshot();
    let rows = scan(&reopened, &snapshot);
    let parts = partitions_of(&snapshot);
    let matches = |m: &Model| rows == flat(m) && parts == m.keys().cloned().collect::<Vec<_>>();
    let now = if matches(model) {
        model.clone()
    } else if let Some(alt) = alternative.filter(|alt| matches(alt)) {
        alt.clone()
    } else {
        panic!("reopened state {parts:?} {rows:?} is neither {model:?} nor {alternative:?}");
    };
    assert_eq!(
        segment_files(dir),
        referenced_files(&snapshot),
        "orphaned segment files"
    );
    drop(snapshot);
    *engine = Some(reopened);
    now
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let Ok(tmp) = tempfile::tempdir() else { return };
    let dir = tmp.path().to_path_buf();
    let storage = FaultyStorage::new();
    let mut engine = Some(open(&dir, &storage));
    {
        let e = engine.as_ref().unwrap();
        e.create_database("db").unwrap();
        e.create_table("db", definition()).unwrap();
    }
    let mut model: Model = PARTITIONS
        .iter()
        .map(|(n, _)| (n.to_string(), Vec::new()))
        .collect();
    let mut pins: Vec<(Snapshot, Vec<(i64, i32)>)> = Vec::new();
    let mut next_id = 0i64;
    let mut steps = 0;
    while let Some(op) = input.next() {
        steps += 1;
        if steps > 12 {
            break;
        }
        // The fault for this operation: the high bit of the op byte arms one.
        let fault = if op & 0x80 != 0 {
            let at = u64::from(input.next().unwrap_or(0) % 48);
            let kind = match input.next().unwrap_or(0) % 5 {
                0 => FaultKind::NoSpace,
                1 => FaultKind::Eio,
                2 => FaultKind::ShortWrite,
                3 => FaultKind::SyncFail,
                _ => FaultKind::RenameFail,
            };
            Some((at, kind))
        } else {
            None
        };
        if op & 0x7f >= 105 {
            model = reopen_and_check(&dir, &storage, &mut engine, &mut pins, &model, None);
            continue;
        }
        let e = engine.as_ref().unwrap().clone();
        let mut after = model.clone();
        storage.arm(fault);
        let result: Result<()> = match op & 0x7f {
            0..=39 => {
                // Load 1..=8 rows with fuzzer-chosen days into partitions that exist.
                let n = 1 + usize::from(input.next().unwrap_or(0) % 8);
                let mut ids = Vec::new();
                let mut days = Vec::new();
                for _ in 0..n {
                    let day = i32::from(input.next().unwrap_or(0) % 30);
                    let part = PARTITIONS.iter().find(|(_, upper)| day < *upper).unwrap().0;
                    if !after.contains_key(part) {
                        continue;
                    }
                    ids.push(next_id);
                    days.push(day);
                    after.get_mut(part).unwrap().push((next_id, day));
                    next_id += 1;
                }
                if ids.is_empty() {
                    storage.arm(None);
                    continue;
                }
                let schema = e
                    .snapshot()
                    .get_table("db", "t")
                    .unwrap()
                    .schema
                    .arrow_schema()
                    .clone();
                let batch = RecordBatch::try_new(
                    schema,
                    vec![
                        Arc::new(Int64Array::from(ids)),
                        Arc::new(Int32Array::from(days)),
                    ],
                )
                .unwrap();
                e.load("db", "t", [batch]).map(|_| ())
            }
            40..=54 => {
                let (name, upper) = PARTITIONS[usize::from(input.next().unwrap_or(0)) % 3];
                if after.remove(name).is_some() {
                    e.drop_partition("db", "t", name)
                } else if name != "p2" {
                    // Only the last RANGE partition comes back: re-adding a middle one after a
                    // later one widened over its gap overlaps, which the engine rightly refuses
                    // (the first crash this target found was this model's mistake).
                    storage.arm(None);
                    continue;
                } else {
                    after.insert(name.to_string(), Vec::new());
                    e.add_partition("db", "t", partition(name, upper))
                }
            }
            55..=74 => {
                storage.arm(None);
                if input.next().unwrap_or(0) % 2 == 0 || pins.is_empty() {
                    let snapshot = e.snapshot();
                    pins.push((snapshot, flat(&model)));
                } else {
                    pins.remove(0);
                }
                Ok(())
            }
            _ => e.compact_with("db", "t", 2).map(|_| ()),
        };
        let fired = storage.fired();
        storage.arm(None);
        match result {
            Ok(()) => {
                model = after;
                assert_eq!(
                    scan(&e, &e.snapshot()),
                    flat(&model),
                    "acknowledged state differs"
                );
            }
            Err(error) => {
                assert!(fired, "operation failed without a fault: {error}");
                drop(e);
                // All or nothing, once reopened.
                model =
                    reopen_and_check(&dir, &storage, &mut engine, &mut pins, &model, Some(&after));
            }
        }
        for (snapshot, rows) in &pins {
            let e = engine.as_ref().unwrap();
            assert_eq!(&scan(e, snapshot), rows, "a pinned snapshot changed");
        }
    }
    reopen_and_check(&dir, &storage, &mut engine, &mut pins, &model, None);
});
