//! Damaged repository files: a flipped byte and a truncation in a data file, `meta.json` and
//! the info file. Restore and verify fail naming the file; the database is unchanged. Every test
//! runs on a filesystem repository (`name::fs`) and on an S3 one on the loopback moto server
//! (`name::s3`); the damage is done through the repository's store.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use shale_backup::{BackupError, Backups, JobState, RepoStore};

#[derive(Clone, Copy, Debug)]
enum Damage {
    Flip,
    Truncate,
}

/// Damages object `key`; returns its original bytes.
fn damage(store: &dyn RepoStore, key: &str, how: Damage) -> Vec<u8> {
    let original = store.read(key).unwrap();
    let mut bytes = original.clone();
    match how {
        Damage::Flip => {
            let i = bytes.len() / 2;
            bytes[i] ^= 0x01;
        }
        Damage::Truncate => bytes.truncate(bytes.len() - 7),
    }
    store.put(key, &bytes).unwrap();
    original
}

/// Rewrites `meta.json` with `edit` and re-seals the info file over it (size and BLAKE3).
fn forge_meta(store: &dyn RepoStore, ts: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut meta: serde_json::Value =
        serde_json::from_slice(&store.read("snapshots/snap/meta.json").unwrap()).unwrap();
    edit(&mut meta);
    let bytes = serde_json::to_vec_pretty(&meta).unwrap();
    store.put("snapshots/snap/meta.json", &bytes).unwrap();
    let info_key = format!("snapshots/snap/__info_{ts}.json");
    let mut info: shale_backup::format::SnapshotInfo =
        serde_json::from_slice(&store.read(&info_key).unwrap()).unwrap();
    info.meta_size = bytes.len() as u64;
    info.meta_blake3 = blake3::hash(&bytes).to_hex().to_string();
    store.put(&info_key, &info.encode().unwrap()).unwrap();
}

/// An engine with data, a repository of `kind` with snapshot `snap`, and the repository's store.
fn setup(
    kind: Kind,
) -> (
    tempfile::TempDir,
    TestRepo,
    shale_engine::Engine,
    Backups,
    Arc<dyn RepoStore>,
) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo.create(&b, "repo");
    backup_ok(&b, "shop", "snap", "repo", vec![]);
    let store = b.repository_store("repo").unwrap();
    (data, repo, engine, b, store)
}

crate::both!(damaged_data_files_fail_restore_and_verify);
fn damaged_data_files_fail_restore_and_verify(kind: Kind) {
    let (_data, _repo, engine, b, store) = setup(kind);
    let meta = b.snapshot_meta("repo", "snap", None).unwrap();
    let file = meta.files().next().unwrap().clone();
    for how in [Damage::Flip, Damage::Truncate] {
        let original = damage(&*store, &file.path, how);
        for deep in [false, true] {
            let report = b.verify("repo", "snap", None, deep).unwrap();
            assert_eq!(report.problems.len(), 1, "{how:?}: {:?}", report.problems);
            assert_eq!(report.problems[0].path, file.path);
        }
        let before = engine.snapshot();
        let id = b
            .restore("target", "snap", "repo", vec![], BTreeMap::new())
            .unwrap();
        assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
        let status = b.show_restore(Some("target"))[0].status.clone();
        assert!(status.starts_with("[BAD_FILE, msg: "), "{status}");
        assert!(
            status.contains(&file.path),
            "{status} does not name {}",
            file.path
        );
        let after = engine.snapshot();
        assert_eq!(after.seq, before.seq);
        assert!(after.database("target").is_none());
        // Into an existing database too.
        let id = b
            .restore("shop", "snap", "repo", vec![], BTreeMap::new())
            .unwrap();
        assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
        assert_eq!(engine.snapshot().seq, before.seq);
        store.put(&file.path, &original).unwrap();
    }
    assert!(b.verify("repo", "snap", None, true).unwrap().is_ok());
    restore_ok(&b, "target", "snap", "repo", vec![]);
}

crate::both!(a_data_file_with_right_hash_but_wrong_rows_is_found_by_deep_verify_only);
fn a_data_file_with_right_hash_but_wrong_rows_is_found_by_deep_verify_only(kind: Kind) {
    let (_data, _repo, _engine, b, store) = setup(kind);
    // Rewrite meta.json (and the info that guards it) to claim one more row in one file.
    let ts = b.list_snapshots("repo").unwrap()[0].timestamps[0].clone();
    forge_meta(&*store, &ts, |meta| {
        let rows =
            &mut meta["tables"][0]["partitions"][0]["tablets"][0]["rowsets"][0]["files"][0]["rows"];
        *rows = serde_json::json!(rows.as_u64().unwrap() + 1);
    });
    assert!(b.verify("repo", "snap", None, false).unwrap().is_ok());
    let deep = b.verify("repo", "snap", None, true).unwrap();
    assert_eq!(deep.problems.len(), 1, "{:?}", deep.problems);
    assert!(
        deep.problems[0].problem.contains("rows"),
        "{:?}",
        deep.problems
    );
}

crate::both!(damaged_meta_and_info_files_fail_restore_verify_and_listing);
fn damaged_meta_and_info_files_fail_restore_verify_and_listing(kind: Kind) {
    let (_data, _repo, engine, b, store) = setup(kind);
    let ts = b.list_snapshots("repo").unwrap()[0].timestamps[0].clone();
    for name in ["meta.json".to_string(), format!("__info_{ts}.json")] {
        let key = format!("snapshots/snap/{name}");
        for how in [Damage::Flip, Damage::Truncate] {
            let original = damage(&*store, &key, how);
            let before = engine.snapshot().seq;
            let err = b
                .restore("target", "snap", "repo", vec![], BTreeMap::new())
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    BackupError::ChecksumMismatch { .. } | BackupError::Corrupt { .. }
                ),
                "{name} {how:?}: {err:?}"
            );
            assert!(
                err.to_string().contains(&name),
                "{err} does not name {name}"
            );
            let err = b.verify("repo", "snap", None, false).unwrap_err();
            assert!(err.to_string().contains(&name), "{err}");
            let listed = &b.list_snapshots("repo").unwrap()[0];
            assert!(
                listed.status.starts_with("ERROR: "),
                "{name} {how:?}: {}",
                listed.status
            );
            assert_eq!(engine.snapshot().seq, before);
            store.put(&key, &original).unwrap();
        }
    }
    assert_eq!(b.list_snapshots("repo").unwrap()[0].status, "OK");
}

crate::both!(paths_in_meta_json_cannot_leave_the_repository);
fn paths_in_meta_json_cannot_leave_the_repository(kind: Kind) {
    let (_data, _repo, _engine, b, store) = setup(kind);
    let ts = b.list_snapshots("repo").unwrap()[0].timestamps[0].clone();
    forge_meta(&*store, &ts, |meta| {
        meta["tables"][0]["partitions"][0]["tablets"][0]["rowsets"][0]["files"][0]["path"] =
            serde_json::json!("../../../etc/passwd");
    });
    let err = b
        .restore("target", "snap", "repo", vec![], BTreeMap::new())
        .unwrap_err();
    assert!(matches!(err, BackupError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("invalid file path"), "{err}");
}

crate::both!(a_corrupt_local_segment_is_caught_before_it_reaches_the_repository);
fn a_corrupt_local_segment_is_caught_before_it_reaches_the_repository(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo.create(&b, "repo");
    let snapshot = engine.snapshot();
    let seg = snapshot.get_table("shop", "items").unwrap().partitions[0]
        .segments()
        .next()
        .unwrap()
        .clone();
    let path = seg.full_path();
    let mut bytes = std::fs::read(&path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let id = b
        .backup("shop", "snap", "repo", vec![], BTreeMap::new())
        .unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
    let status = b.show_backup(Some("shop"))[0].status.clone();
    assert!(status.contains(&seg.meta.path), "{status}");
    assert!(
        b.list_snapshots("repo")
            .unwrap()
            .iter()
            .all(|s| s.status != "OK")
    );
    let data_files = data_objects(&b, "repo");
    assert!(
        data_files.iter().all(|f| !f.contains(&seg.meta.hash)),
        "the corrupt segment reached the repository"
    );
}
