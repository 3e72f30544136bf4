//! An injected failure at each file operation of a backup and of a restore: no snapshot is
//! listed OK unless the job finished, and the engine holds either the old or the new state.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use shale_backup::{Backups, JobState};
use shale_engine::{Engine, EngineOptions, FaultKind, FaultyStorage};

const KINDS: [FaultKind; 5] = [
    FaultKind::Eio,
    FaultKind::NoSpace,
    FaultKind::ShortWrite,
    FaultKind::SyncFail,
    FaultKind::RenameFail,
];

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

#[test]
fn a_failure_at_each_backup_operation_leaves_no_good_snapshot_behind() {
    let data = tempfile::tempdir().unwrap();
    let repos = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new();
    let engine = open_faulty(data.path(), &storage);
    create_tables(&engine, "shop");
    load_sales(&engine, "shop", 0, 40);
    load_items(&engine, "shop", 5);
    let source = engine.snapshot();
    let b = Backups::open(engine.clone()).unwrap();

    // Count the operations of a clean backup.
    repo_at(&b, "probe", &repos.path().join("probe"));
    storage.arm(None);
    backup_ok(&b, "shop", "snap", "probe", vec![]);
    let log = storage.log();
    let ops = log.len() as u64;
    assert!(ops > 20, "only {ops} operations");
    // Operations on the repository (not on jobs.json, whose write failures do not stop a job).
    let probe_root = repos.path().join("probe");
    let on_repository: Vec<bool> = log
        .iter()
        .map(|(_, p)| p.starts_with(&probe_root))
        .collect();
    assert!(on_repository.iter().filter(|x| **x).count() > 20);

    let mut failed = 0;
    for n in 0..ops {
        let name = format!("r{n}");
        storage.arm(None);
        repo_at(&b, &name, &repos.path().join(&name));
        let seq = engine.snapshot().seq;
        storage.arm(Some((n, KINDS[n as usize % KINDS.len()])));
        let id = b
            .backup("shop", "snap", &name, vec![], BTreeMap::new())
            .unwrap();
        let state = b.wait(id, WAIT);
        storage.arm(None);
        let listed = b.list_snapshots(&name).unwrap();
        match state {
            Some(JobState::Finished) => {
                assert!(
                    !on_repository[n as usize],
                    "op {n} {:?} failed but the job finished",
                    log[n as usize]
                );
                assert_eq!(listed.len(), 1);
                assert_eq!(listed[0].status, "OK", "op {n}");
                assert!(
                    b.verify(&name, "snap", None, true).unwrap().is_ok(),
                    "op {n}"
                );
            }
            Some(JobState::Cancelled) => {
                failed += 1;
                assert!(
                    listed.iter().all(|s| s.status != "OK"),
                    "op {n}: {listed:?}"
                );
                // The name is free again.
                let id = b
                    .backup("shop", "snap", &name, vec![], BTreeMap::new())
                    .unwrap();
                assert_eq!(b.wait(id, WAIT), Some(JobState::Finished), "op {n}");
            }
            other => panic!("op {n}: {other:?}"),
        }
        // The engine is untouched.
        assert_eq!(engine.snapshot().seq, seq, "op {n}");
    }
    assert_eq!(
        failed,
        on_repository.iter().filter(|x| **x).count(),
        "every repository fault fails the job"
    );
    assert_eq!(
        rows(&engine, &engine.snapshot(), "shop", "sales"),
        rows(&engine, &source, "shop", "sales")
    );
}

#[test]
fn a_failure_at_each_restore_operation_leaves_old_or_new_state() {
    let data = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new();
    let want = {
        let engine = open_faulty(data.path(), &storage);
        create_tables(&engine, "shop");
        load_sales(&engine, "shop", 0, 40);
        load_items(&engine, "shop", 5);
        let b = Backups::open(engine.clone()).unwrap();
        repo_at(&b, "repo", repo.path());
        backup_ok(&b, "shop", "snap", "repo", vec![]);
        rows(&engine, &engine.snapshot(), "shop", "sales")
    };
    // Count the operations of a clean restore.
    let ops = {
        let engine = open_faulty(data.path(), &storage);
        let b = Backups::open(engine.clone()).unwrap();
        storage.arm(None);
        restore_ok(&b, "probe", "snap", "repo", vec![]);
        storage.log().len() as u64
    };
    for n in 0..ops {
        let target = format!("t{n}");
        let engine = open_faulty(data.path(), &storage);
        let b = Backups::open(engine.clone()).unwrap();
        storage.arm(Some((n, KINDS[n as usize % KINDS.len()])));
        let id = b
            .restore(&target, "snap", "repo", vec![], BTreeMap::new())
            .unwrap();
        let state = b.wait(id, WAIT);
        storage.arm(None);
        assert!(
            matches!(state, Some(JobState::Finished | JobState::Cancelled)),
            "op {n}"
        );
        drop(b);
        drop(engine);
        // After a reopen (recovery), the target is either absent or complete.
        let engine = open_faulty(data.path(), &storage);
        let snapshot = engine.snapshot();
        match snapshot.database(&target) {
            None => assert_ne!(
                state,
                Some(JobState::Finished),
                "op {n}: finished but absent"
            ),
            Some(_) => assert_eq!(rows(&engine, &snapshot, &target, "sales"), want, "op {n}"),
        }
    }
}
