//! Model-based test: random sequences of DDL, loads (some refused), snapshots held and released,
//! compaction and reopen, compared after every step with a trivially correct in-memory model.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use common::*;
use proptest::prelude::*;
use shale_engine::*;

#[derive(Clone, Debug)]
enum Step {
    CreateTable(u8),
    DropTable(u8),
    AddPartition(u8, u8),
    DropPartition(u8, u8),
    Load { table: u8, rows: u8, spread: u8 },
    Truncate(u8),
    TakeSnapshot,
    ReleaseSnapshot(u8),
    Compact(u8),
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0..3u8).prop_map(Step::CreateTable),
        1 => (0..3u8).prop_map(Step::DropTable),
        1 => (0..3u8, 0..6u8).prop_map(|(t, k)| Step::AddPartition(t, k)),
        1 => (0..3u8, 0..6u8).prop_map(|(t, k)| Step::DropPartition(t, k)),
        4 => (0..3u8, 1..60u8, 0..60u8).prop_map(|(table, rows, spread)| Step::Load { table, rows, spread }),
        1 => (0..3u8).prop_map(Step::Truncate),
        2 => Just(Step::TakeSnapshot),
        1 => (0..4u8).prop_map(Step::ReleaseSnapshot),
        1 => (0..3u8).prop_map(Step::Compact),
        1 => Just(Step::Reopen),
    ]
}

/// Per table: partition k holds days [10k, 10k+10); rows are (id, day).
type Model = BTreeMap<String, (Vec<u8>, Vec<(i64, i32)>)>;

fn definition(name: &str, parts: &[u8]) -> TableDefinition {
    let mut def = sales_definition(name);
    def.partitions = parts
        .iter()
        .map(|k| PartitionDefinition {
            name: format!("p{k}"),
            values: PartitionValues::Range {
                lower: Some((*k as i32 * 10).to_string()),
                upper: Some((*k as i32 * 10 + 10).to_string()),
            },
        })
        .collect();
    def.distribution = Distribution::hash(vec!["id".into()], 2);
    def
}

fn rows_of(engine: &Engine, snap: &Snapshot, table: &str) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    for batch in engine
        .scan(snap, "db", table, ScanOptions::default())
        .unwrap()
    {
        let batch = batch.unwrap();
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
        out.extend(
            ids.values()
                .iter()
                .copied()
                .zip(days.values().iter().copied()),
        );
    }
    out.sort_unstable();
    out
}

fn check(engine: &Engine, snap: &Snapshot, model: &Model) {
    let names: Vec<&String> = snap.database("db").unwrap().tables.keys().collect();
    assert_eq!(names, model.keys().collect::<Vec<_>>());
    for (name, (parts, rows)) in model {
        let t = snap.get_table("db", name).unwrap();
        let got: Vec<String> = t.partitions.iter().map(|p| p.name.clone()).collect();
        let mut want: Vec<u8> = parts.clone();
        want.sort_unstable();
        assert_eq!(
            got,
            want.iter().map(|k| format!("p{k}")).collect::<Vec<_>>()
        );
        let mut rows = rows.clone();
        rows.sort_unstable();
        assert_eq!(rows_of(engine, snap, name), rows, "table {name}");
    }
}

fn run(steps: Vec<Step>) {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Some(Engine::open(dir.path()).unwrap());
    let e = |engine: &Option<Engine>| engine.clone().unwrap();
    e(&engine).create_database("db").unwrap();
    let mut model: Model = BTreeMap::new();
    for t in 0..3 {
        let name = format!("t{t}");
        e(&engine)
            .create_table("db", definition(&name, &[0, 1, 2]))
            .unwrap();
        model.insert(name, (vec![0, 1, 2], Vec::new()));
    }
    let mut held: Vec<(Snapshot, Model)> = Vec::new();
    let mut next_id: i64 = 0;
    for step in steps {
        let eng = e(&engine);
        match step {
            Step::CreateTable(t) => {
                let name = format!("t{t}");
                let r = eng.create_table("db", definition(&name, &[0, 1, 2]));
                assert_eq!(r.is_ok(), !model.contains_key(&name), "{r:?}");
                model.entry(name).or_insert((vec![0, 1, 2], Vec::new()));
            }
            Step::DropTable(t) => {
                let name = format!("t{t}");
                let r = eng.drop_table("db", &name);
                assert_eq!(r.is_ok(), model.remove(&name).is_some());
            }
            Step::AddPartition(t, k) => {
                let name = format!("t{t}");
                let r =
                    eng.add_partition("db", &name, definition(&name, &[k]).partitions[0].clone());
                match model.get_mut(&name) {
                    Some((parts, _)) if !parts.contains(&k) => {
                        r.unwrap();
                        parts.push(k);
                    }
                    _ => assert!(r.is_err()),
                }
            }
            Step::DropPartition(t, k) => {
                let name = format!("t{t}");
                let r = eng.drop_partition("db", &name, &format!("p{k}"));
                match model.get_mut(&name) {
                    Some((parts, rows)) if parts.contains(&k) => {
                        r.unwrap();
                        parts.retain(|p| *p != k);
                        rows.retain(|(_, day)| *day / 10 != k as i32);
                    }
                    _ => assert!(r.is_err()),
                }
            }
            Step::Load {
                table,
                rows,
                spread,
            } => {
                let name = format!("t{table}");
                let ids: Vec<i64> = (next_id..next_id + rows as i64).collect();
                next_id += rows as i64;
                let days: Vec<i32> = ids
                    .iter()
                    .map(|i| ((spread as i64 % 40 + i % 8) % 60) as i32)
                    .collect();
                let Ok(t) = eng.snapshot().get_table("db", &name).cloned() else {
                    assert!(!model.contains_key(&name));
                    continue;
                };
                let batch = RecordBatch::try_new(
                    t.schema.arrow_schema().clone(),
                    vec![
                        Arc::new(Int64Array::from(ids.clone())),
                        Arc::new(Int32Array::from(days.clone())),
                        Arc::new(StringArray::from_iter_values(
                            ids.iter().map(|i| format!("r{i}")),
                        )),
                        Arc::new(Float64Array::from_iter_values(
                            ids.iter().map(|i| *i as f64),
                        )),
                    ],
                )
                .unwrap();
                let r = eng.load("db", &name, [batch]);
                let (parts, model_rows) = model.get_mut(&name).unwrap();
                let fits = days.iter().all(|d| parts.contains(&((d / 10) as u8)));
                if fits {
                    r.unwrap();
                    model_rows.extend(ids.into_iter().zip(days));
                } else {
                    assert!(matches!(r, Err(Error::NoPartitionForValue { .. })), "{r:?}");
                }
            }
            Step::Truncate(t) => {
                let name = format!("t{t}");
                let r = eng.truncate_table("db", &name, None);
                match model.get_mut(&name) {
                    Some((_, rows)) => {
                        r.unwrap();
                        rows.clear();
                    }
                    None => assert!(r.is_err()),
                }
            }
            Step::TakeSnapshot => held.push((eng.snapshot(), model.clone())),
            Step::ReleaseSnapshot(i) => {
                if !held.is_empty() {
                    held.remove(i as usize % held.len());
                }
            }
            Step::Compact(t) => {
                let name = format!("t{t}");
                let r = eng.compact_with("db", &name, 2);
                assert_eq!(r.is_ok(), model.contains_key(&name));
            }
            Step::Reopen => {
                // Snapshots do not outlive the process that took them.
                held.clear();
                drop(eng);
                drop(engine.take());
                engine = Some(Engine::open(dir.path()).unwrap());
                let snap = e(&engine).snapshot();
                assert_eq!(
                    segment_files(dir.path()),
                    referenced_files(&snap),
                    "orphans after reopen"
                );
            }
        }
        let eng = e(&engine);
        check(&eng, &eng.snapshot(), &model);
        for (snap, m) in &held {
            check(&eng, snap, m);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_the_model(steps in proptest::collection::vec(step(), 1..40)) {
        run(steps);
    }
}
