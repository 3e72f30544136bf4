//! Hostile input: names with `..`, `/`, `\`, NUL, control characters, 10,000 characters or
//! lookalike punctuation for every kind of name the backup statements take; repository metadata
//! that points outside the repository or at absolute paths; repository locations that are files
//! or cannot be read. Each is refused with a clear error, and nothing is written (or restored)
//! outside the data directory and the repository. The tests of names and of forged metadata run
//! on a filesystem repository (`name::fs`) and on an S3 one on the loopback moto server
//! (`name::s3`); those about local paths (a location that is a file) only on the filesystem.

mod common;

use std::collections::BTreeMap;

use common::*;
use shale_backup::{BackupError, Backups, RepoStore, TableRef};
use shale_engine::{
    Column, ColumnType, Engine, PartitionDefinition, PartitionValues, TableDefinition,
};

/// Names no statement may accept.
fn hostile_names() -> Vec<String> {
    vec![
        "..".into(),
        ".".into(),
        "a/b".into(),
        "/abs".into(),
        "a\\b".into(),
        "..\\x".into(),
        "a\0b".into(),
        "a\u{1}b".into(),
        "a\nb".into(),
        "a\u{7f}b".into(),
        "\u{1b}[31mred".into(),
        "a".repeat(10_000),
        "é".repeat(10_000),
        // DIVISION SLASH, FULLWIDTH SOLIDUS and FULLWIDTH FULL STOP look like `/` and `.`.
        "a\u{2215}b".into(),
        "a\u{ff0f}b".into(),
        "\u{ff0e}\u{ff0e}".into(),
        // ONE DOT LEADER, a right-to-left override and a zero-width space.
        "\u{2024}\u{2024}".into(),
        "x\u{202e}txt".into(),
        "a\u{200b}b".into(),
        "".into(),
        " ".into(),
        "-rf".into(),
    ]
}

/// The error refuses the name, saying so: `invalid name ...` where a name is taken, or a plain
/// not-found where an existing object is looked up by it (no file is touched for either).
fn assert_refused(what: &str, name: &str, result: Result<impl std::fmt::Debug, BackupError>) {
    let shown: String = name.chars().take(20).collect();
    let err = match result {
        Ok(v) => panic!("{what} {shown:?} was accepted: {v:?}"),
        Err(e) => e,
    };
    let text = err.to_string();
    let clear = match &err {
        BackupError::Engine(shale_engine::Error::InvalidName { .. }) => {
            // The refusal shows at most 64 characters of the name.
            assert!(text.len() < 400, "{what}: the message repeats a huge name");
            text.contains("invalid name")
        }
        // Lookups: the table, partition, repository or snapshot does not exist.
        _ => text.contains("does not exist") || text.contains("Unknown"),
    };
    assert!(clear, "{what} {shown:?}: unclear error {err:?}: {text}");
}

crate::both!(hostile_names_are_refused_everywhere_and_nothing_is_written);
fn hostile_names_are_refused_everywhere_and_nothing_is_written(kind: Kind) {
    let sandbox = tempfile::tempdir().unwrap();
    let data = sandbox.path().join("data");
    let engine = engine_with_data(&data);
    let b = open(&engine);
    let repo = TestRepo::new(kind);
    repo.create(&b, "repo");
    backup_ok(&b, "shop", "snap", "repo", vec![]);
    let objects = repo_files(&b, "repo");
    let seq = engine.snapshot().seq;
    let none = BTreeMap::new;
    // Where a repository with a hostile name would go.
    let other = match kind {
        Kind::Fs => TestRepo::fs_at(&sandbox.path().join("other")),
        Kind::S3 => TestRepo::new(Kind::S3),
    };
    let location = other.location.clone();
    for bad in hostile_names() {
        let bad = bad.as_str();
        // Engine DDL.
        let engine_refused = |what: &str, r: shale_engine::Result<()>| {
            assert_refused(what, bad, r.map_err(BackupError::from));
        };
        engine_refused("database", engine.create_database(bad));
        engine_refused(
            "table",
            engine.create_table(
                "shop",
                TableDefinition::new(bad, vec![Column::new("c", ColumnType::Int)]),
            ),
        );
        engine_refused(
            "column",
            engine.create_table(
                "shop",
                TableDefinition::new("t", vec![Column::new(bad, ColumnType::Int)]),
            ),
        );
        engine_refused(
            "partition",
            engine.add_partition(
                "shop",
                "sales",
                PartitionDefinition {
                    name: bad.into(),
                    values: PartitionValues::LessThan(Some("1000".into())),
                },
            ),
        );
        // Repositories.
        assert_refused(
            "repository",
            bad,
            b.create_repository(bad, &location, false, other.properties.clone()),
        );
        assert_refused("repository", bad, b.list_snapshots(bad).map_err(refusal));
        // BACKUP.
        assert_refused(
            "snapshot",
            bad,
            b.backup("shop", bad, "repo", vec![], none()),
        );
        assert_refused("database", bad, b.backup(bad, "s", "repo", vec![], none()));
        assert_refused(
            "table",
            bad,
            b.backup("shop", "s", "repo", vec![(bad.into(), None)], none()),
        );
        assert_refused(
            "partition",
            bad,
            b.backup(
                "shop",
                "s",
                "repo",
                vec![("sales".into(), Some(vec![bad.into()]))],
                none(),
            ),
        );
        // RESTORE.
        assert_refused(
            "target database",
            bad,
            b.restore(bad, "snap", "repo", vec![], none()),
        );
        assert_refused("snapshot", bad, b.restore("x", bad, "repo", vec![], none()));
        assert_refused(
            "table",
            bad,
            b.restore("x", "snap", "repo", vec![TableRef::new(bad)], none()),
        );
        assert_refused(
            "alias",
            bad,
            b.restore(
                "x",
                "snap",
                "repo",
                vec![TableRef::new("sales").alias(bad)],
                none(),
            ),
        );
        assert_refused(
            "partition",
            bad,
            b.restore(
                "x",
                "snap",
                "repo",
                vec![TableRef::new("sales").partitions([bad])],
                none(),
            ),
        );
        // VERIFY, SHOW SNAPSHOT, DROP SNAPSHOT.
        assert_refused(
            "snapshot",
            bad,
            b.verify("repo", bad, None, true).map_err(refusal),
        );
        assert_refused(
            "snapshot",
            bad,
            b.snapshot_details("repo", bad, None).map_err(refusal),
        );
        assert_refused(
            "snapshot",
            bad,
            b.drop_snapshot("repo", bad).map_err(refusal),
        );
    }
    // Nothing changed: not the catalog, not the repository, nothing new beside them.
    assert_eq!(engine.snapshot().seq, seq);
    assert_eq!(
        engine.snapshot().databases.keys().collect::<Vec<_>>(),
        vec!["shop"]
    );
    assert_eq!(repo_files(&b, "repo"), objects);
    let mut beside: Vec<String> = std::fs::read_dir(sandbox.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["data"]);
    // The S3 location the refused repositories named holds nothing (no marker).
    if kind == Kind::S3 {
        let err = b
            .create_repository("probe", &location, true, other.properties.clone())
            .unwrap_err();
        assert!(
            err.to_string().contains("is not a shale repository"),
            "{err}"
        );
    }
}

/// Passes errors through (for calls returning something not `Debug`-friendly to compare).
fn refusal(e: BackupError) -> BackupError {
    e
}

/// Rewrites `meta.json` with `edit` and re-seals the info file over it (size, BLAKE3, checksum),
/// as a hostile repository would: only the content is wrong, never the checksums.
fn forge_meta(store: &dyn RepoStore, snapshot: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let meta_key = format!("snapshots/{snapshot}/meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&store.read(&meta_key).unwrap()).unwrap();
    edit(&mut meta);
    let bytes = serde_json::to_vec_pretty(&meta).unwrap();
    store.put(&meta_key, &bytes).unwrap();
    forge_info(store, snapshot, |info| {
        info.meta_size = bytes.len() as u64;
        info.meta_blake3 = blake3::hash(&bytes).to_hex().to_string();
    });
}

fn forge_info(
    store: &dyn RepoStore,
    snapshot: &str,
    edit: impl FnOnce(&mut shale_backup::format::SnapshotInfo),
) {
    let prefix = format!("snapshots/{snapshot}/");
    let info_key = store
        .list(&prefix)
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .find(|k| k[prefix.len()..].starts_with("__info_"))
        .unwrap();
    let mut info: shale_backup::format::SnapshotInfo =
        serde_json::from_slice(&store.read(&info_key).unwrap()).unwrap();
    edit(&mut info);
    store.put(&info_key, &info.encode().unwrap()).unwrap();
}

/// A data file reference of the forged meta.
fn first_file(meta: &mut serde_json::Value) -> &mut serde_json::Value {
    &mut meta["tables"][0]["partitions"][0]["tablets"][0]["rowsets"][0]["files"][0]
}

crate::both!(repository_metadata_pointing_outside_is_refused_before_anything_is_read);
fn repository_metadata_pointing_outside_is_refused_before_anything_is_read(kind: Kind) {
    type Forgery = Box<dyn Fn(&mut serde_json::Value)>;
    let sandbox = tempfile::tempdir().unwrap();
    // Bait: a valid data file outside the repository, at the paths the forgeries point to.
    let outside = sandbox.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let forgeries: Vec<(&str, Forgery)> = vec![
        (
            "absolute path",
            Box::new(move |m| {
                let hash = first_file(m)["hash"].as_str().unwrap().to_string();
                first_file(m)["path"] = format!("/etc/{hash}.parquet").into();
            }),
        ),
        (
            "parent path",
            Box::new(|m| {
                let hash = first_file(m)["hash"].as_str().unwrap().to_string();
                first_file(m)["path"] = format!("data/../../outside/{hash}.parquet").into();
            }),
        ),
        (
            "backslash path",
            Box::new(|m| {
                let hash = first_file(m)["hash"].as_str().unwrap().to_string();
                first_file(m)["path"] = format!("data\\..\\..\\outside\\{hash}.parquet").into();
            }),
        ),
        (
            "hash with a path in it",
            Box::new(|m| {
                first_file(m)["hash"] = "../../../outside/x".into();
                first_file(m)["path"] = "data/../../../outside/x.parquet".into();
            }),
        ),
        (
            "escaping table name",
            Box::new(|m| m["tables"][0]["name"] = "../../outside".into()),
        ),
        (
            "escaping partition name",
            Box::new(|m| m["tables"][0]["partitions"][0]["name"] = "/abs".into()),
        ),
        (
            "escaping database name",
            Box::new(|m| m["database"] = "..".into()),
        ),
    ];
    for (what, forge) in forgeries {
        let data = tempfile::tempdir().unwrap();
        let repo = match kind {
            Kind::Fs => TestRepo::fs_at(
                &sandbox
                    .path()
                    .join(format!("repo-{}", what.replace(' ', "-"))),
            ),
            Kind::S3 => TestRepo::new(Kind::S3),
        };
        let engine = engine_with_data(data.path());
        let b = open(&engine);
        repo.create(&b, "repo");
        backup_ok(&b, "shop", "snap", "repo", vec![]);
        let store = b.repository_store("repo").unwrap();
        forge_meta(&*store, "snap", |m| {
            // The bait has the content of the real file the forgery redirects (on S3 no key
            // outside the prefix is reachable, so a wrong read would fail as not found).
            let path = first_file(m)["path"].as_str().unwrap().to_string();
            let hash = first_file(m)["hash"].as_str().unwrap().to_string();
            if kind == Kind::Fs {
                std::fs::write(
                    outside.join(format!("{hash}.parquet")),
                    store.read(&path).unwrap(),
                )
                .unwrap();
            }
            forge(m);
        });
        let seq = engine.snapshot().seq;
        let listed = b.list_snapshots("repo").unwrap();
        assert!(listed[0].status.starts_with("ERROR"), "{what}: {listed:?}");
        let err = b
            .restore("target", "snap", "repo", vec![], BTreeMap::new())
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("meta.json") || text.contains("invalid name"),
            "{what}: the error names neither the file nor the name: {text}"
        );
        assert!(b.verify("repo", "snap", None, true).is_err(), "{what}");
        assert_eq!(engine.snapshot().seq, seq, "{what}: the engine changed");
        assert!(engine.snapshot().database("target").is_none(), "{what}");
    }
}

crate::both!(an_info_file_naming_another_snapshot_or_an_escaping_one_is_refused);
fn an_info_file_naming_another_snapshot_or_an_escaping_one_is_refused(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo.create(&b, "repo");
    backup_ok(&b, "shop", "snap", "repo", vec![]);
    let store = b.repository_store("repo").unwrap();
    for forged in ["../snap", "/snap", "other"] {
        forge_info(&*store, "snap", |info| {
            info.snapshot = forged.into();
        });
        let listed = b.list_snapshots("repo").unwrap();
        assert!(
            listed[0].status.starts_with("ERROR"),
            "{forged}: {listed:?}"
        );
        assert!(
            b.restore("t", "snap", "repo", vec![], BTreeMap::new())
                .is_err(),
            "{forged}"
        );
    }
    assert!(engine.snapshot().database("t").is_none());
}

#[test]
fn a_repository_location_that_is_a_file_or_unreadable_is_refused_clearly() {
    let sandbox = tempfile::tempdir().unwrap();
    let engine = Engine::open(sandbox.path().join("data")).unwrap();
    let b = Backups::open(engine.clone()).unwrap();
    let none = BTreeMap::new;
    let file = sandbox.path().join("a-file");
    std::fs::write(&file, b"not a repository").unwrap();
    let looped = sandbox.path().join("loop");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let garbage = sandbox.path().join("garbage");
    std::fs::create_dir_all(&garbage).unwrap();
    std::fs::write(garbage.join("shale_repository.json"), b"\x00{{{").unwrap();
    let marker_dir = sandbox.path().join("marker-dir");
    std::fs::create_dir_all(marker_dir.join("shale_repository.json")).unwrap();
    let cases = [
        (file.clone(), "not a directory"),
        (file.join("below"), "a-file"),
        (looped.clone(), "loop"),
        (garbage.clone(), "shale_repository.json"),
        (marker_dir.clone(), "shale_repository.json"),
    ];
    for (i, (location, says)) in cases.iter().enumerate() {
        for read_only in [false, true] {
            let name = format!("r{i}{read_only}");
            let location = format!("file://{}", location.display());
            let err = b
                .create_repository(&name, &location, read_only, none())
                .unwrap_err();
            assert!(
                matches!(err, BackupError::InvalidLocation { .. }),
                "{location}: {err:?}"
            );
            let text = err.to_string();
            assert!(text.contains(says), "{location}: unclear error: {text}");
        }
    }
    // An unreadable directory (only meaningful when not running as root, who reads anyway).
    let locked = sandbox.path().join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read_dir(&locked).is_err() {
        let err = b
            .create_repository(
                "locked",
                &format!("file://{}", locked.display()),
                false,
                none(),
            )
            .unwrap_err();
        assert!(
            matches!(err, BackupError::InvalidLocation { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("locked"), "{err}");
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Nothing was created in or beside the refused locations.
    assert_eq!(std::fs::read(&file).unwrap(), b"not a repository");
    assert_eq!(files_under(&garbage), ["shale_repository.json"]);
    assert!(b.repositories().is_empty());
}

#[test]
fn a_repository_replaced_by_a_file_fails_jobs_with_a_clear_error() {
    let sandbox = tempfile::tempdir().unwrap();
    let engine = engine_with_data(&sandbox.path().join("data"));
    let b = open(&engine);
    let repo = sandbox.path().join("repo");
    repo_at(&b, "repo", &repo);
    backup_ok(&b, "shop", "snap", "repo", vec![]);
    std::fs::remove_dir_all(&repo).unwrap();
    std::fs::write(&repo, b"now a file").unwrap();
    let seq = engine.snapshot().seq;
    // Each job is refused when submitted or ends CANCELLED; either way the message names the
    // repository's path.
    let refused = |what: &str, submitted: shale_backup::Result<u64>| {
        let text = match submitted {
            Err(e) => e.to_string(),
            Ok(id) => {
                assert_eq!(
                    b.wait(id, WAIT),
                    Some(shale_backup::JobState::Cancelled),
                    "{what}"
                );
                b.job(id).unwrap().status
            }
        };
        assert!(text.contains(&repo.display().to_string()), "{what}: {text}");
    };
    refused(
        "backup",
        b.backup("shop", "s2", "repo", vec![], BTreeMap::new()),
    );
    refused(
        "restore",
        b.restore("t", "snap", "repo", vec![], BTreeMap::new()),
    );
    assert_eq!(std::fs::read(&repo).unwrap(), b"now a file");
    assert_eq!(engine.snapshot().seq, seq);
    assert!(engine.snapshot().database("t").is_none());
}
