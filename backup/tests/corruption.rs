//! Damaged repository files: a flipped byte and a truncation in a data file, `meta.json` and
//! the info file. Restore and verify fail naming the file; the database is unchanged.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use shale_backup::{BackupError, Backups, JobState};

#[derive(Clone, Copy, Debug)]
enum Damage {
    Flip,
    Truncate,
}

fn damage(path: &Path, how: Damage) -> Vec<u8> {
    let original = std::fs::read(path).unwrap();
    let mut bytes = original.clone();
    match how {
        Damage::Flip => {
            let i = bytes.len() / 2;
            bytes[i] ^= 0x01;
        }
        Damage::Truncate => bytes.truncate(bytes.len() - 7),
    }
    std::fs::write(path, &bytes).unwrap();
    original
}

fn setup() -> (
    tempfile::TempDir,
    tempfile::TempDir,
    shale_engine::Engine,
    Backups,
    PathBuf,
) {
    let data = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo_at(&b, "repo", repo.path());
    backup_ok(&b, "shop", "snap", "repo", vec![]);
    let dir = repo.path().join("snapshots/snap");
    (data, repo, engine, b, dir)
}

#[test]
fn damaged_data_files_fail_restore_and_verify() {
    let (_data, repo, engine, b, _) = setup();
    let meta = b.snapshot_meta("repo", "snap", None).unwrap();
    let file = meta.files().next().unwrap().clone();
    let path = repo.path().join(&file.path);
    for how in [Damage::Flip, Damage::Truncate] {
        let original = damage(&path, how);
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
        std::fs::write(&path, original).unwrap();
    }
    assert!(b.verify("repo", "snap", None, true).unwrap().is_ok());
    restore_ok(&b, "target", "snap", "repo", vec![]);
}

#[test]
fn a_data_file_with_right_hash_but_wrong_rows_is_found_by_deep_verify_only() {
    let (_data, repo, _engine, b, dir) = setup();
    // Rewrite meta.json (and the info that guards it) to claim one more row in one file.
    let ts = b.list_snapshots("repo").unwrap()[0].timestamps[0].clone();
    let meta_path = dir.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let rows =
        &mut meta["tables"][0]["partitions"][0]["tablets"][0]["rowsets"][0]["files"][0]["rows"];
    *rows = serde_json::json!(rows.as_u64().unwrap() + 1);
    let bytes = serde_json::to_vec_pretty(&meta).unwrap();
    std::fs::write(&meta_path, &bytes).unwrap();
    let info_path = dir.join(format!("__info_{ts}.json"));
    let mut info: shale_backup::format::SnapshotInfo =
        serde_json::from_slice(&std::fs::read(&info_path).unwrap()).unwrap();
    info.meta_size = bytes.len() as u64;
    info.meta_blake3 = blake3::hash(&bytes).to_hex().to_string();
    std::fs::write(&info_path, info.encode().unwrap()).unwrap();
    assert!(b.verify("repo", "snap", None, false).unwrap().is_ok());
    let deep = b.verify("repo", "snap", None, true).unwrap();
    assert_eq!(deep.problems.len(), 1, "{:?}", deep.problems);
    assert!(
        deep.problems[0].problem.contains("rows"),
        "{:?}",
        deep.problems
    );
    let _ = repo;
}

#[test]
fn damaged_meta_and_info_files_fail_restore_verify_and_listing() {
    let (_data, _repo, engine, b, dir) = setup();
    let ts = b.list_snapshots("repo").unwrap()[0].timestamps[0].clone();
    for name in ["meta.json".to_string(), format!("__info_{ts}.json")] {
        let path = dir.join(&name);
        for how in [Damage::Flip, Damage::Truncate] {
            let original = damage(&path, how);
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
            std::fs::write(&path, original).unwrap();
        }
    }
    assert_eq!(b.list_snapshots("repo").unwrap()[0].status, "OK");
}

#[test]
fn paths_in_meta_json_cannot_leave_the_repository() {
    let (_data, _repo, _engine, b, dir) = setup();
    let ts = b.list_snapshots("repo").unwrap()[0].timestamps[0].clone();
    let meta_path = dir.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["tables"][0]["partitions"][0]["tablets"][0]["rowsets"][0]["files"][0]["path"] =
        serde_json::json!("../../../etc/passwd");
    let bytes = serde_json::to_vec_pretty(&meta).unwrap();
    std::fs::write(&meta_path, &bytes).unwrap();
    let info_path = dir.join(format!("__info_{ts}.json"));
    let mut info: shale_backup::format::SnapshotInfo =
        serde_json::from_slice(&std::fs::read(&info_path).unwrap()).unwrap();
    info.meta_size = bytes.len() as u64;
    info.meta_blake3 = blake3::hash(&bytes).to_hex().to_string();
    std::fs::write(&info_path, info.encode().unwrap()).unwrap();
    let err = b
        .restore("target", "snap", "repo", vec![], BTreeMap::new())
        .unwrap_err();
    assert!(matches!(err, BackupError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("invalid file path"), "{err}");
}

#[test]
fn a_corrupt_local_segment_is_caught_before_it_reaches_the_repository() {
    let data = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo_at(&b, "repo", repo.path());
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
    let data_files = files_under(&repo.path().join("data"));
    assert!(
        data_files.iter().all(|f| !f.contains(&seg.meta.hash)),
        "the corrupt segment reached the repository"
    );
}
