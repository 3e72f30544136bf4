//! Model test: random loads, compactions, backups and snapshot drops against a model that
//! records each snapshot's rows; every snapshot still listed must verify and restore to exactly
//! its recorded rows, and dropped ones must be gone. On a directory and on S3.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[derive(Clone, Debug)]
enum Step {
    Load(i32, i32),
    Compact,
    Backup,
    Drop(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..100i32, 1..20i32).prop_map(|(s, n)| Step::Load(s, n)),
        Just(Step::Compact),
        Just(Step::Backup),
        Just(Step::Backup),
        (0..4usize).prop_map(Step::Drop),
    ]
}

/// Runs `steps` against a repository of `kind` and checks the model.
fn check(kind: Kind, steps: &[Step]) -> Result<(), TestCaseError> {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = shale_engine::Engine::open(data.path()).unwrap();
    create_tables(&engine, "shop");
    let b = open(&engine);
    repo.create(&b, "repo");
    let mut model: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut next = 0;
    for s in steps {
        match s {
            Step::Load(start, n) => load_sales(&engine, "shop", *start, *n),
            Step::Compact => {
                engine.compact("shop", "sales").unwrap();
            }
            Step::Backup => {
                let name = format!("s{next}");
                next += 1;
                let want = rows(&engine, &engine.snapshot(), "shop", "sales");
                backup_ok(&b, "shop", &name, "repo", vec![("sales".into(), None)]);
                model.insert(name, want);
            }
            Step::Drop(i) => {
                if let Some(name) = model.keys().nth(*i).cloned() {
                    b.drop_snapshot("repo", &name).unwrap();
                    model.remove(&name);
                }
            }
        }
    }
    let listed: Vec<String> = b
        .list_snapshots("repo")
        .unwrap()
        .into_iter()
        .map(|l| {
            assert_eq!(l.status, "OK");
            l.snapshot
        })
        .collect();
    prop_assert_eq!(listed, model.keys().cloned().collect::<Vec<_>>());
    for (i, (name, want)) in model.iter().enumerate() {
        prop_assert!(b.verify("repo", name, None, true).unwrap().is_ok());
        let db = format!("r{i}");
        restore_ok(&b, &db, name, "repo", vec![]);
        prop_assert_eq!(&rows(&engine, &engine.snapshot(), &db, "sales"), want);
    }
    if model.is_empty() && next > 0 {
        // Every snapshot was dropped: no data file is referenced any more.
        let left = data_objects(&b, "repo");
        prop_assert!(left.is_empty(), "{:?}", left);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn snapshots_restore_to_their_recorded_state(steps in proptest::collection::vec(step(), 1..8)) {
        check(Kind::Fs, &steps)?;
    }
}

proptest! {
    // Fewer cases on S3: each request is a round trip to moto.
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]
    #[test]
    fn snapshots_on_s3_restore_to_their_recorded_state(steps in proptest::collection::vec(step(), 1..8)) {
        check(Kind::S3, &steps)?;
    }
}
