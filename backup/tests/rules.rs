//! Every rule, with StarRocks' message, on a directory and on S3 (`<test>::fs`, `<test>::s3`);
//! the checks of a location itself are per kind: directories here, S3 properties in `s3.rs`.

mod common;

use std::collections::BTreeMap;

use common::*;
use shale_backup::{BackupError, BackupsOptions, JobState, TableRef};

fn msg<T: std::fmt::Debug>(r: Result<T, BackupError>) -> String {
    r.unwrap_err().to_string()
}

fn backup_rules_and_messages(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo.create(&b, "repo");
    let none = BTreeMap::new;
    assert_eq!(
        msg(b.backup("shop", "s", "nope", vec![], none())),
        "Repository [nope] does not exist"
    );
    assert_eq!(
        msg(b.backup("shop", "s", "repo", vec![], props(&[("type", "DIFF")]))),
        "Invalid backup job type: DIFF"
    );
    assert_eq!(
        msg(b.backup("shop", "s", "repo", vec![], props(&[("timeout", "abc")]))),
        "Invalid timeout format: abc"
    );
    assert_eq!(
        msg(b.backup("shop", "s", "repo", vec![], props(&[("timeout", "599")]))),
        "timeout must be at least 10 min"
    );
    assert_eq!(
        msg(b.backup(
            "shop",
            "s",
            "repo",
            vec![],
            props(&[("color", "red"), ("a", "b")])
        )),
        "Unknown backup job properties: [a, color]"
    );
    assert_eq!(
        msg(b.backup(
            "shop",
            "s",
            "repo",
            vec![("sales".into(), None), ("sales".into(), None)],
            none()
        )),
        "Duplicated table: sales"
    );
    assert_eq!(
        msg(b.backup("shop", "s", "repo", vec![("nope".into(), None)], none())),
        "Unknown table 'shop.nope'"
    );
    assert_eq!(
        msg(b.backup(
            "shop",
            "s",
            "repo",
            vec![("sales".into(), Some(vec!["p9".into()]))],
            none()
        )),
        "partition[p9] does not exist  in tablesales"
    );
    assert!(matches!(
        b.backup("nodb", "s", "repo", vec![], none()),
        Err(BackupError::Engine(_))
    ));
    // Names cannot escape the repository.
    for bad in ["..", "a/b", "x\0", "-x", ""] {
        assert!(
            b.backup("shop", bad, "repo", vec![], none()).is_err(),
            "{bad:?} accepted"
        );
    }
    assert!(
        b.create_repository("../r", &repo.location, false, repo.properties.clone())
            .is_err()
    );

    // Accepted forms.
    let id = b
        .backup(
            "shop",
            "s",
            "repo",
            vec![],
            props(&[("type", "full"), ("timeout", "600")]),
        )
        .unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Finished));
    assert_eq!(b.show_backup(Some("shop"))[0].timeout, 600);
    assert_eq!(
        msg(b.backup("shop", "s", "repo", vec![], none())),
        "Snapshot with name 's' already exist in repository"
    );
    assert_eq!(
        msg(b.backup(
            "shop",
            "s",
            "repo",
            vec![],
            props(&[("type", "INCREMENTAL")])
        )),
        "Currently does not support incremental backup"
    );
    assert_eq!(
        msg(b.cancel_backup("shop")),
        "Failed to cancel job: Job with label s can not be cancelled. state: FINISHED"
    );
    assert_eq!(
        msg(b.cancel_restore("shop")),
        "No restore is currently running"
    );
    assert_eq!(
        msg(b.cancel_backup("other")),
        "No backup job is currently running"
    );
    assert_eq!(msg(b.drop_repository("nope")), "Repository does not exist");
    assert_eq!(
        msg(b.create_repository("repo", &repo.location, false, repo.properties.clone())),
        "repository with same name already exist: repo"
    );
}
both!(backup_rules_and_messages);

fn one_job_per_database_and_busy_repository(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(go_rx);
    let options = BackupsOptions {
        state_hook: Some(std::sync::Arc::new(move |_, s| {
            if s == JobState::Uploading {
                let _ = tx.send(());
                let _ = go_rx.lock().unwrap().recv();
            }
        })),
        ..BackupsOptions::default()
    };
    let b = open_with(&engine, options);
    repo.create(&b, "repo");
    let folder = b.repository_store("repo").unwrap().display("snapshots/s1");
    let id = b
        .backup("shop", "s1", "repo", vec![], BTreeMap::new())
        .unwrap();
    rx.recv().unwrap();
    assert_eq!(
        msg(b.backup("shop", "s2", "repo", vec![], BTreeMap::new())),
        "Can only run one backup or restore job of a database at same time"
    );
    assert_eq!(
        msg(b.restore("shop", "s1", "repo", vec![], BTreeMap::new())),
        "Failed to get info of snapshot 's1' because: no info file in ".to_string()
            + folder.to_str().unwrap()
            + ". Maybe specified wrong backup timestamp"
    );
    assert_eq!(
        msg(b.drop_repository("repo")),
        "Backup or restore job is running on this repository. Can not drop it"
    );
    go_tx.send(()).unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Finished));
}
both!(one_job_per_database_and_busy_repository);

fn restore_rules_and_messages(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo.create(&b, "repo");
    backup_ok(&b, "shop", "s", "repo", vec![]);
    let ts = b.list_snapshots("repo").unwrap()[0].timestamps[0].clone();
    let none = BTreeMap::new;
    assert_eq!(
        msg(b.restore(
            "x",
            "s",
            "repo",
            vec![],
            props(&[("backup_timestamp", "2000-01-01-00-00-00-000")])
        )),
        format!(
            "Failed to get info of snapshot 's' because: Expected one file with path: {}. get: 0. Maybe specified wrong backup timestamp",
            b.repository_store("repo")
                .unwrap()
                .display("snapshots/s/__info_2000-01-01-00-00-00-000.json")
                .display()
        )
    );
    assert_eq!(
        msg(b.restore("x", "s", "repo", vec![], props(&[("foo", "1")]))),
        "Unknown restore job properties: [foo]"
    );
    assert_eq!(
        msg(b.restore("x", "s", "repo", vec![], props(&[("allow_load", "maybe")]))),
        "Invalid allow load value: maybe"
    );
    assert_eq!(
        msg(b.restore("x", "s", "repo", vec![], props(&[("replication_num", "x")]))),
        "Invalid meta version format: x"
    );
    assert_eq!(
        msg(b.restore("x", "s", "repo", vec![], props(&[("timeout", "10")]))),
        "timeout must be at least 10 min"
    );
    assert_eq!(
        msg(b.restore("x", "s", "repo", vec![TableRef::new("nope")], none())),
        "Table nope does not exist in snapshot s"
    );
    assert_eq!(
        msg(b.restore(
            "x",
            "s",
            "repo",
            vec![TableRef::new("sales").partitions(["p7"])],
            none()
        )),
        "Partition p7 of table sales does not exist in snapshot s"
    );
    assert_eq!(
        msg(b.restore(
            "x",
            "s",
            "repo",
            vec![TableRef::new("sales"), TableRef::new("sales")],
            none()
        )),
        "Duplicated table: sales"
    );
    assert_eq!(
        msg(b.restore(
            "x",
            "s",
            "repo",
            vec![
                TableRef::new("sales").alias("t"),
                TableRef::new("items").alias("t")
            ],
            none()
        )),
        "Duplicated alias name: t"
    );
    // Accepted properties.
    let id = b
        .restore(
            "x",
            "s",
            "repo",
            vec![],
            props(&[
                ("backup_timestamp", &ts),
                ("replication_num", "1"),
                ("allow_load", "true"),
                ("timeout", "700"),
            ]),
        )
        .unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Finished));
    let shown = &b.show_restore(Some("x"))[0];
    assert_eq!(shown.replication_num, 1);
    assert!(shown.allow_load);
    assert_eq!(shown.timeout, 700);
    assert_eq!(shown.timestamp, ts);
    assert!(shown.meta_prepared_time.is_some() && shown.download_finished_time.is_some());
}
both!(restore_rules_and_messages);

fn restore_conflicts_leave_the_database_unchanged(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo.create(&b, "repo");
    backup_ok(&b, "shop", "s", "repo", vec![]);

    // A table with the same name but another schema.
    engine.create_database("d").unwrap();
    engine
        .create_table(
            "d",
            shale_engine::TableDefinition::new(
                "items",
                vec![
                    shale_engine::Column::new("item", shale_engine::ColumnType::Varchar(20)).key(),
                ],
            ),
        )
        .unwrap();
    let before = engine.snapshot();
    let id = b
        .restore(
            "d",
            "s",
            "repo",
            vec![TableRef::new("items")],
            BTreeMap::new(),
        )
        .unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
    let status = b.show_restore(Some("d"))[0].status.clone();
    assert!(
        status.starts_with("[COMMON_ERROR, msg: Table items already exist but with different schema, errMsg: column count"),
        "{status}"
    );
    assert_eq!(engine.snapshot().seq, before.seq);

    // Same partition name with a different range.
    engine.drop_partition("shop", "sales", "p2").unwrap();
    engine
        .add_partition(
            "shop",
            "sales",
            shale_engine::PartitionDefinition {
                name: "p2".into(),
                values: shale_engine::PartitionValues::Range {
                    lower: Some("10".into()),
                    upper: Some("15".into()),
                },
            },
        )
        .unwrap();
    let before = engine.snapshot();
    let id = b
        .restore(
            "shop",
            "s",
            "repo",
            vec![TableRef::new("sales")],
            BTreeMap::new(),
        )
        .unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
    assert_eq!(
        b.show_restore(Some("shop"))[0].status,
        "[COMMON_ERROR, msg: Partition p2 in table sales has different range with partition in repository]"
    );
    assert_eq!(engine.snapshot().seq, before.seq);

    // A new partition that overlaps an existing one.
    engine.drop_partition("shop", "sales", "p2").unwrap();
    engine.drop_partition("shop", "sales", "p1").unwrap();
    engine
        .add_partition(
            "shop",
            "sales",
            shale_engine::PartitionDefinition {
                name: "q".into(),
                values: shale_engine::PartitionValues::Range {
                    lower: Some("5".into()),
                    upper: Some("12".into()),
                },
            },
        )
        .unwrap();
    let before = engine.snapshot();
    let id = b
        .restore(
            "shop",
            "s",
            "repo",
            vec![TableRef::new("sales").partitions(["p1"])],
            BTreeMap::new(),
        )
        .unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
    assert_eq!(
        b.show_restore(Some("shop"))[0].status,
        "[COMMON_ERROR, msg: Partition p1 in table sales has conflict range with existing ranges]"
    );
    assert_eq!(engine.snapshot().seq, before.seq);
}
both!(restore_conflicts_leave_the_database_unchanged);

/// Directory locations only: an S3 location's checks (properties, credentials, a missing
/// bucket) are in `s3.rs`.
#[test]
fn repository_locations_are_checked() {
    let data = tempfile::tempdir().unwrap();
    let engine = shale_engine::Engine::open(data.path()).unwrap();
    let b = open(&engine);
    let file = data.path().join("a_file");
    std::fs::write(&file, b"x").unwrap();
    let err = msg(b.create_repository("r", file.to_str().unwrap(), false, BTreeMap::new()));
    assert!(
        err.starts_with("Failed to create repository: ") && err.contains("not a directory"),
        "{err}"
    );
    let err = msg(b.create_repository("r", "hdfs://nn/x", false, BTreeMap::new()));
    assert!(err.contains("unsupported location"), "{err}");
    let err = msg(b.create_repository("r", "s3://bucket/x", false, BTreeMap::new()));
    assert!(
        err.starts_with("Failed to create repository: ")
            && err.contains("aws.s3.access_key and aws.s3.secret_key are required"),
        "{err}"
    );
    let err = msg(b.create_repository(
        "r",
        "/proc/shale_cannot_create_here",
        false,
        BTreeMap::new(),
    ));
    assert!(err.starts_with("Failed to create repository: "), "{err}");
    let missing = data.path().join("missing");
    let err = msg(b.create_repository("r", missing.to_str().unwrap(), true, BTreeMap::new()));
    assert!(err.starts_with("Failed to create repository: "), "{err}");
    assert!(b.repositories().is_empty());
}
