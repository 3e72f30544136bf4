//! Round trips: whole database, chosen tables, chosen partitions, aliases, new database;
//! incremental backups; drop snapshot; verify; listing; adoption. Every test runs on a
//! filesystem repository (`name::fs`) and on an S3 one on the loopback moto server
//! (`name::s3`).

mod common;

use common::*;
use shale_backup::{JobState, TableRef};

crate::both!(whole_database_round_trip_into_a_new_database);
fn whole_database_round_trip_into_a_new_database(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo.create(&b, "repo");
    let source = engine.snapshot();
    let id = backup_ok(&b, "shop", "snap1", "repo", vec![]);
    let shown = b.show_backup(Some("shop"));
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].job_id, id);
    assert_eq!(shown[0].state, JobState::Finished);
    assert_eq!(shown[0].status, "[OK]");
    assert!(shown[0].finished_time.is_some());
    assert!(
        shown[0].backup_objs.contains("[shop.sales]"),
        "{}",
        shown[0].backup_objs
    );

    let listed = b.list_snapshots("repo").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].snapshot, "snap1");
    assert_eq!(listed[0].status, "OK");
    assert_eq!(listed[0].timestamps.len(), 1);

    restore_ok(&b, "copy", "snap1", "repo", vec![]);
    let now = engine.snapshot();
    for t in ["sales", "items"] {
        let want = rows(&engine, &source, "shop", t);
        assert!(!want.is_empty());
        assert_eq!(rows(&engine, &now, "copy", t), want, "table {t}");
    }
    let restored = b.show_restore(Some("copy"));
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0].state, JobState::Finished);
    assert_eq!(restored[0].timestamp, listed[0].timestamps[0]);

    let report = b.verify("repo", "snap1", None, true).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(report.files_checked > 0);
}

crate::both!(chosen_tables_partitions_and_alias);
fn chosen_tables_partitions_and_alias(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo.create(&b, "repo");
    let source = engine.snapshot();
    let all_sales = rows(&engine, &source, "shop", "sales");
    backup_ok(
        &b,
        "shop",
        "part",
        "repo",
        vec![("sales".into(), Some(vec!["p1".into(), "p3".into()]))],
    );
    let details = b.snapshot_details("repo", "part", None).unwrap();
    assert_eq!(details.database, "shop");
    assert_eq!(details.tables.len(), 1);
    let parts: Vec<&str> = details.tables[0]
        .partitions
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(parts, ["p1", "p3"]);
    let detail_rows: u64 = details.tables[0].partitions.iter().map(|p| p.rows).sum();
    assert_eq!(
        detail_rows as usize,
        sales_rows_in(&all_sales, &[(0, 10), (20, i32::MAX)]).len()
    );

    // Only p3, under an alias, into a new database.
    restore_ok(
        &b,
        "other",
        "part",
        "repo",
        vec![TableRef::new("sales").partitions(["p3"]).alias("s3")],
    );
    let now = engine.snapshot();
    assert_eq!(
        rows(&engine, &now, "other", "s3"),
        sales_rows_in(&all_sales, &[(20, i32::MAX)])
    );
    assert!(now.table("other", "sales").is_none());
    let t = now.table("other", "s3").unwrap();
    assert_eq!(t.partitions.len(), 1);

    // Whole snapshot under an alias: p1 and p3 only.
    restore_ok(
        &b,
        "other",
        "part",
        "repo",
        vec![TableRef::new("sales").alias("s13")],
    );
    let now = engine.snapshot();
    assert_eq!(
        rows(&engine, &now, "other", "s13"),
        sales_rows_in(&all_sales, &[(0, 10), (20, i32::MAX)])
    );
    let shown = b.show_restore(Some("other"));
    assert_eq!(shown[0].restore_objs, "s13 PARTITIONS [p1, p3]");
}

crate::both!(restore_into_existing_table_replaces_partitions_and_keeps_others);
fn restore_into_existing_table_replaces_partitions_and_keeps_others(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo.create(&b, "repo");
    let source = engine.snapshot();
    let before = rows(&engine, &source, "shop", "sales");
    backup_ok(
        &b,
        "shop",
        "s",
        "repo",
        vec![("sales".into(), Some(vec!["p1".into()]))],
    );
    // Change p1 and p2 after the backup.
    load_sales(&engine, "shop", 1000, 30);
    let changed = rows(&engine, &engine.snapshot(), "shop", "sales");
    restore_ok(&b, "shop", "s", "repo", vec![]);
    let after = rows(&engine, &engine.snapshot(), "shop", "sales");
    // p1 is back to the backup; p2 and p3 keep the new rows.
    let mut want = sales_rows_in(&before, &[(0, 10)]);
    want.extend(sales_rows_in(&changed, &[(10, i32::MAX)]));
    want.sort();
    assert_eq!(after, want);
    assert_ne!(after, changed);
}

crate::both!(second_backup_of_unchanged_data_copies_nothing_and_drop_frees_only_unshared_files);
fn second_backup_of_unchanged_data_copies_nothing_and_drop_frees_only_unshared_files(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo.create(&b, "repo");
    let first = backup_ok(&b, "shop", "a", "repo", vec![]);
    let p1 = b.job_progress(first).unwrap();
    assert!(p1.bytes_written > 0);
    assert_eq!(p1.bytes_written, p1.bytes_total);
    assert_eq!(p1.files_done, p1.files_total);
    let second = backup_ok(&b, "shop", "b", "repo", vec![]);
    let p2 = b.job_progress(second).unwrap();
    assert_eq!(
        p2.bytes_written, 0,
        "unchanged data must not be copied again"
    );
    assert_eq!(p2.bytes_done, p2.bytes_total);
    let data_files = data_objects(&b, "repo");

    // New data, third snapshot: only the new segment is copied.
    load_sales(&engine, "shop", 200, 1);
    let third = backup_ok(&b, "shop", "c", "repo", vec![]);
    let p3 = b.job_progress(third).unwrap();
    assert!(p3.bytes_written > 0 && p3.bytes_written < p1.bytes_written);
    assert_eq!(data_objects(&b, "repo").len(), data_files.len() + 1);

    // Dropping "a" frees nothing shared with b and c.
    let report = b.drop_snapshot("repo", "a").unwrap();
    assert_eq!(report.files_removed, 0);
    assert!(report.bytes_freed > 0, "meta and info files are freed");
    // Dropping "c" frees only its new segment.
    let report = b.drop_snapshot("repo", "c").unwrap();
    assert_eq!(report.files_removed, 1);
    assert_eq!(data_objects(&b, "repo"), data_files);
    let listed: Vec<String> = b
        .list_snapshots("repo")
        .unwrap()
        .into_iter()
        .map(|s| s.snapshot)
        .collect();
    assert_eq!(listed, ["b"]);
    assert!(b.verify("repo", "b", None, true).unwrap().is_ok());
    // The last one frees everything.
    let report = b.drop_snapshot("repo", "b").unwrap();
    assert_eq!(report.files_removed as usize, data_files.len());
    assert!(data_objects(&b, "repo").is_empty());
}

crate::both!(a_new_repository_on_the_same_location_adopts_snapshots);
fn a_new_repository_on_the_same_location_adopts_snapshots(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let data2 = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let source = engine.snapshot();
    {
        let b = open(&engine);
        repo.create(&b, "repo");
        backup_ok(&b, "shop", "snap", "repo", vec![]);
        b.drop_repository("repo").unwrap();
        assert!(b.repositories().is_empty());
    }
    // Another engine, read-only repository on the same place.
    let engine2 = shale_engine::Engine::open(data2.path()).unwrap();
    let b2 = open(&engine2);
    let info = b2
        .create_repository("mirror", &repo.location, true, repo.properties.clone())
        .unwrap();
    assert!(info.is_read_only);
    assert_eq!(info.err_msg, None);
    assert_eq!(b2.list_snapshots("mirror").unwrap()[0].status, "OK");
    restore_ok(&b2, "shop", "snap", "mirror", vec![]);
    assert_eq!(
        rows(&engine2, &engine2.snapshot(), "shop", "sales"),
        rows(&engine, &source, "shop", "sales")
    );
    let err = b2
        .backup("shop", "x", "mirror", vec![], Default::default())
        .unwrap_err();
    assert_eq!(err.to_string(), "Repository mirror is read only");
}

crate::both!(repositories_survive_reopen);
fn repositories_survive_reopen(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    {
        let engine = engine_with_data(data.path());
        let b = open(&engine);
        repo.create(&b, "repo");
        backup_ok(&b, "shop", "snap", "repo", vec![]);
    }
    let engine = shale_engine::Engine::open(data.path()).unwrap();
    let b = open(&engine);
    let repos = b.repositories();
    assert_eq!(repos.len(), 1);
    assert_eq!(repos[0].repo_name, "repo");
    assert!(!repos[0].is_read_only);
    assert_eq!(repos[0].broker, "");
    let jobs = b.show_backup(None);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, JobState::Finished);
    assert_eq!(jobs[0].snapshot_name, "snap");
}

crate::both!(an_unpartitioned_table_restored_under_an_alias_is_named_and_loadable);
fn an_unpartitioned_table_restored_under_an_alias_is_named_and_loadable(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo.create(&b, "repo");
    let source = engine.snapshot();
    backup_ok(&b, "shop", "s", "repo", vec![("items".into(), None)]);
    restore_ok(
        &b,
        "shop",
        "s",
        "repo",
        vec![TableRef::new("items").alias("items2")],
    );
    let now = engine.snapshot();
    let t = now.table("shop", "items2").unwrap();
    assert_eq!(t.partitions.len(), 1);
    assert_eq!(t.partitions[0].name, "items2");
    assert_eq!(
        rows(&engine, &now, "shop", "items2"),
        rows(&engine, &source, "shop", "items")
    );
    // Restoring the same snapshot again replaces the partition of the existing alias table.
    let schema = now
        .get_table("shop", "items2")
        .unwrap()
        .schema
        .arrow_schema()
        .clone();
    let batch = arrow::array::RecordBatch::try_new(
        schema,
        vec![
            std::sync::Arc::new(arrow::array::StringArray::from(vec!["new"])),
            std::sync::Arc::new(arrow::array::Int32Array::from(vec![1])),
        ],
    )
    .unwrap();
    engine.load("shop", "items2", [batch]).unwrap();
    let loaded = rows(&engine, &engine.snapshot(), "shop", "items2");
    assert_eq!(
        loaded.len(),
        rows(&engine, &source, "shop", "items").len() + 1
    );
    restore_ok(
        &b,
        "shop",
        "s",
        "repo",
        vec![TableRef::new("items").alias("items2")],
    );
    let now = engine.snapshot();
    assert_eq!(
        rows(&engine, &now, "shop", "items2"),
        rows(&engine, &source, "shop", "items")
    );
}

/// Repositories written before data files moved to one folder level (`data/<h0h1>/<hash>`) keep
/// `data/<h0h1>/<h2h3>/<hash>` paths in their meta.json: they still list OK, verify, restore and
/// drop, and a new backup into them writes the new layout.
#[test]
fn a_repository_in_the_older_two_level_layout_still_restores_verifies_and_drops() {
    use shale_backup::format::{
        SnapshotInfo, SnapshotMeta, data_path, decode_json, encode_json, legacy_data_path,
    };
    let data = tempfile::tempdir().unwrap();
    let location = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo_at(&b, "repo", location.path());
    let source = engine.snapshot();
    backup_ok(&b, "shop", "old", "repo", vec![]);

    // Rewrite the snapshot as the older layout wrote it.
    let root = location.path();
    let folder = root.join("snapshots/old");
    let meta_path = folder.join("meta.json");
    let mut meta: SnapshotMeta =
        decode_json(&meta_path, &std::fs::read(&meta_path).unwrap()).unwrap();
    let mut moved = 0;
    for t in &mut meta.tables {
        for p in &mut t.partitions {
            for tablet in &mut p.tablets {
                for rowset in &mut tablet.rowsets {
                    for f in &mut rowset.files {
                        assert_eq!(f.path, data_path(&f.hash));
                        let legacy = legacy_data_path(&f.hash);
                        if root.join(&f.path).exists() {
                            std::fs::create_dir_all(root.join(&legacy).parent().unwrap()).unwrap();
                            std::fs::rename(root.join(&f.path), root.join(&legacy)).unwrap();
                            moved += 1;
                        }
                        f.path = legacy;
                    }
                }
            }
        }
    }
    assert!(moved > 0);
    let meta_bytes = encode_json(&meta_path, &meta).unwrap();
    std::fs::write(&meta_path, &meta_bytes).unwrap();
    let info_path = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("__info_")
        })
        .unwrap();
    let mut info = SnapshotInfo::decode(&info_path, &std::fs::read(&info_path).unwrap()).unwrap();
    info.meta_size = meta_bytes.len() as u64;
    info.meta_blake3 = blake3::hash(&meta_bytes).to_hex().to_string();
    std::fs::write(&info_path, info.encode().unwrap()).unwrap();

    let listed = b.list_snapshots("repo").unwrap();
    assert_eq!(listed[0].status, "OK", "{listed:?}");
    let report = b.verify("repo", "old", None, true).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    restore_ok(&b, "copy", "old", "repo", vec![]);
    let now = engine.snapshot();
    for t in ["sales", "items"] {
        assert_eq!(
            rows(&engine, &now, "copy", t),
            rows(&engine, &source, "shop", t)
        );
    }

    // A new backup writes the new layout; dropping the old snapshot frees the old paths only.
    backup_ok(&b, "shop", "new", "repo", vec![]);
    let report = b.drop_snapshot("repo", "old").unwrap();
    assert!(report.files_removed as usize >= moved, "{report:?}");
    let left = files_under(&root.join("data"));
    assert!(!left.is_empty());
    assert!(
        left.iter().all(|f| f.matches('/').count() == 1),
        "only one folder level is left: {left:?}"
    );
    let report = b.verify("repo", "new", None, true).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}
