//! An injected failure at each file operation of a backup and of a restore: no snapshot is
//! listed OK unless the job finished, and the engine holds either the old or the new state.
//!
//! On S3 the unit that fails is a request, not a file operation: the `s3_*` tests put a proxy
//! between shale and moto that fails the n-th request of a backup or of a restore, for every n,
//! with object_store's retries off (the fault is what a request meets once its retries are
//! exhausted), in turn a 503, a 500, a connection dropped before moto sees the request, an
//! answer lost after moto did the work, and an answer cut off mid-body. The filesystem cases
//! without an S3 meaning stay filesystem-only: the order of fsync, rename and syncfs and a
//! failed sync (an S3 upload is durable and visible when its PUT or multipart completion
//! succeeds; nothing is renamed or synced), link(2) and short writes (a PUT stores the whole
//! object or nothing).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::s3::{self, Seen};
use common::*;
use shale_backup::{BackupError, Backups, BackupsOptions, JobRecord, JobState};
use shale_engine::{Engine, EngineOptions, FaultKind, FaultyStorage, OpKind};

const KINDS: [FaultKind; 5] = [
    FaultKind::Eio,
    FaultKind::NoSpace,
    FaultKind::ShortWrite,
    FaultKind::SyncFail,
    FaultKind::RenameFail,
];

/// The backup service copying one file at a time, so that "the n-th storage operation" is the
/// same operation in every run (several files in flight interleave their operations).
fn open_serial(engine: &Engine) -> Backups {
    open_serial_flushing(engine, Flushes::default())
}

/// How a directory repository makes finished uploads durable
/// (`StoreOptions::fs_own_flush_bytes`, `fs_shared_flush_bytes`).
#[derive(Clone, Copy, Debug)]
struct Flushes {
    own: u64,
    shared: u64,
}

impl Default for Flushes {
    fn default() -> Self {
        let options = shale_backup::StoreOptions::default();
        Flushes {
            own: options.fs_own_flush_bytes,
            shared: options.fs_shared_flush_bytes,
        }
    }
}

/// Every data file fdatasynced alone as it is finished (as a full backup's large files are).
const EACH_FILE_ALONE: Flushes = Flushes {
    own: 0,
    shared: u64::MAX,
};

/// A file-system sync after every finished data file (small files sharing flushes mid-copy).
const SHARED_EVERY_FILE: Flushes = Flushes {
    own: u64::MAX,
    shared: 1,
};

fn open_serial_flushing(engine: &Engine, flushes: Flushes) -> Backups {
    let mut options = shale_backup::BackupsOptions::default();
    options.store.fs_files_in_flight = 1;
    options.store.fs_own_flush_bytes = flushes.own;
    options.store.fs_shared_flush_bytes = flushes.shared;
    Backups::open_with(engine.clone(), options).unwrap()
}

/// An engine on faulty storage holding the `shop` tables (40 sales, 5 items): its data
/// directory, a directory for repositories, the storage and the engine.
fn faulty_shop() -> (tempfile::TempDir, tempfile::TempDir, FaultyStorage, Engine) {
    let data = tempfile::tempdir().unwrap();
    let repos = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new();
    let engine = open_faulty(data.path(), &storage);
    create_tables(&engine, "shop");
    load_sales(&engine, "shop", 0, 40);
    load_items(&engine, "shop", 5);
    (data, repos, storage, engine)
}

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
    backup_fault_sweep(Flushes::default());
}

#[test]
fn a_failure_at_each_backup_operation_leaves_no_good_snapshot_when_each_file_is_flushed_alone() {
    backup_fault_sweep(EACH_FILE_ALONE);
}

#[test]
fn a_failure_at_each_backup_operation_leaves_no_good_snapshot_when_files_share_flushes_mid_copy() {
    backup_fault_sweep(SHARED_EVERY_FILE);
}

/// Several files in flight, and `meta.json` and the info file staged alongside the copies: the
/// n-th operation differs from run to run, so this checks the outcome of each, not which fails.
#[test]
fn a_failure_at_each_operation_of_a_parallel_backup_leaves_no_good_snapshot_behind() {
    let (_data, repos, storage, engine) = faulty_shop();
    let b = open_with(&engine, BackupsOptions::default());
    repo_at(&b, "probe", &repos.path().join("probe"));
    storage.arm(None);
    backup_ok(&b, "shop", "snap", "probe", vec![]);
    let ops = storage.log().len() as u64;
    let failed = (0..ops)
        .filter(|&n| {
            let name = format!("p{n}");
            storage.arm(None);
            repo_at(&b, &name, &repos.path().join(&name));
            faulty_backup(&b, &storage, &name, n) == JobState::Cancelled
        })
        .count();
    assert!(failed > 10, "only {failed} of {ops} faults failed the job");
}

/// A backup of `shop` into the new repository `name` with the `n`-th storage operation failing:
/// it either finished with a snapshot listed OK that verifies, or was cancelled with none listed
/// OK and the name free again. Returns how it ended.
fn faulty_backup(b: &Backups, storage: &FaultyStorage, name: &str, n: u64) -> JobState {
    storage.arm(Some((n, KINDS[n as usize % KINDS.len()])));
    let id = b
        .backup("shop", "snap", name, vec![], BTreeMap::new())
        .unwrap();
    let state = b.wait(id, WAIT);
    storage.arm(None);
    let listed = b.list_snapshots(name).unwrap();
    match state {
        Some(JobState::Finished) => {
            assert_eq!(listed.len(), 1, "op {n}");
            assert_eq!(listed[0].status, "OK", "op {n}");
        }
        Some(JobState::Cancelled) => {
            assert!(
                listed.iter().all(|s| s.status != "OK"),
                "op {n}: {listed:?}"
            );
            // The name is free again.
            let id = b
                .backup("shop", "snap", name, vec![], BTreeMap::new())
                .unwrap();
            assert_eq!(b.wait(id, WAIT), Some(JobState::Finished), "op {n}");
        }
        other => panic!("op {n}: {other:?}"),
    }
    assert!(
        b.verify(name, "snap", None, true).unwrap().is_ok(),
        "op {n}"
    );
    state.unwrap()
}

fn backup_fault_sweep(flushes: Flushes) {
    let (_data, repos, storage, engine) = faulty_shop();
    let source = engine.snapshot();
    let b = open_serial_flushing(&engine, flushes);

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
        match faulty_backup(&b, &storage, &name, n) {
            JobState::Finished => assert!(
                !on_repository[n as usize],
                "op {n} {:?} failed but the job finished",
                log[n as usize]
            ),
            _ => failed += 1,
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
fn create_repository_makes_the_data_folders_and_a_repository_without_them_still_works() {
    let (_data, repos, _storage, engine) = faulty_shop();
    let b = open_serial(&engine);
    let root = repos.path().join("r");
    repo_at(&b, "r", &root);
    let folders: Vec<String> = std::fs::read_dir(root.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folders.len(), 256, "{folders:?}");
    assert!(
        folders
            .iter()
            .all(|f| f.len() == 2 && u8::from_str_radix(f, 16).is_ok())
    );

    // A backup's files go into them.
    backup_ok(&b, "shop", "full", "r", vec![]);
    let files = data_objects(&b, "r");
    assert!(!files.is_empty());
    assert_eq!(std::fs::read_dir(root.join("data")).unwrap().count(), 256);

    // A repository without them (removed, or made by another tool) still takes backups: a
    // backup makes the folders its files need, and the snapshot restores.
    let bare = repos.path().join("bare");
    repo_at(&b, "bare", &bare);
    std::fs::remove_dir_all(bare.join("data")).unwrap();
    backup_ok(&b, "shop", "again", "bare", vec![]);
    assert!(b.verify("bare", "again", None, true).unwrap().is_ok());
    restore_ok(&b, "copy", "again", "bare", vec![]);
    assert_eq!(
        rows(&engine, &engine.snapshot(), "copy", "sales"),
        rows(&engine, &engine.snapshot(), "shop", "sales")
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
        let b = open_serial(&engine);
        repo_at(&b, "repo", repo.path());
        backup_ok(&b, "shop", "snap", "repo", vec![]);
        rows(&engine, &engine.snapshot(), "shop", "sales")
    };
    // Count the operations of a clean restore.
    let ops = {
        let engine = open_faulty(data.path(), &storage);
        let b = open_serial(&engine);
        storage.arm(None);
        restore_ok(&b, "probe", "snap", "repo", vec![]);
        storage.log().len() as u64
    };
    for n in 0..ops {
        let target = format!("t{n}");
        let engine = open_faulty(data.path(), &storage);
        let b = open_serial(&engine);
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

/// The faults an operation of this kind can meet: every kind of fault at every operation, as
/// far as the kind can happen there (a rename cannot be a short write).
fn kinds_for(op: OpKind) -> &'static [FaultKind] {
    match op {
        OpKind::Write => &[FaultKind::NoSpace, FaultKind::Eio, FaultKind::ShortWrite],
        OpKind::Sync | OpKind::SyncDir | OpKind::SyncFs => &[FaultKind::SyncFail],
        OpKind::Rename => &[FaultKind::RenameFail],
        OpKind::Create | OpKind::CreateDir | OpKind::Link => &[FaultKind::NoSpace, FaultKind::Eio],
        OpKind::Remove | OpKind::Truncate => &[FaultKind::Eio],
    }
}

/// What `Storage` calls an operation of this kind in its errors (`<operation> <path>: ...`).
fn op_words(op: OpKind) -> &'static [&'static str] {
    match op {
        OpKind::CreateDir => &["create directory"],
        OpKind::Create => &["create", "open for append"],
        OpKind::Write => &["write"],
        OpKind::Sync => &["fsync"],
        OpKind::Rename => &["rename"],
        OpKind::Link => &["link"],
        OpKind::Remove => &["remove", "remove directory"],
        OpKind::SyncDir => &["fsync directory"],
        OpKind::SyncFs => &["sync file system"],
        OpKind::Truncate => &["truncate"],
    }
}

/// `s` with every run of digits replaced by `#`: temporary and info files carry a per-attempt
/// suffix or timestamp (`<file>.tmp<pid>-<n>`, `__info_<time>`).
fn blur(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A CANCELLED job's status names the failed operation and its path.
fn assert_names_op_and_path(context: &str, status: &str, op: OpKind, path: &Path) {
    // A root joined with an empty remainder ends in `/`; the store names it without.
    let path: PathBuf = path.components().collect();
    let status_blurred = blur(status);
    let named = op_words(op)
        .iter()
        .any(|w| status_blurred.contains(&blur(&format!("{w} {}", path.display()))));
    assert!(
        named,
        "{context}: the status does not name `{:?} {}`: {status}",
        op_words(op),
        path.display()
    );
}

/// Whether `path` is the job records' file or its temporary twin (their write failures are
/// logged, not fatal to the job).
fn is_jobs_file(path: &Path, jobs_file: &Path) -> bool {
    path == jobs_file || path == jobs_file.with_extension("tmp")
}

/// Whether operation `n` of `log` may fail without failing the job: writing the job records (the
/// file, its temporary twin, or the directory fsync that ends the atomic write; failures there
/// are logged) or deleting an obsolete segment after the commit.
fn part_of_jobs_write(log: &[(OpKind, PathBuf)], n: usize, jobs_file: &Path) -> bool {
    // Deleting a segment the commit made obsolete happens after the commit point; a failure
    // leaves a file the next open deletes.
    let obsolete_segment =
        log[n].0 == OpKind::Remove && log[n].1.components().any(|c| c.as_os_str() == "segments");
    obsolete_segment
        || is_jobs_file(&log[n].1, jobs_file)
        || (log[n].0 == OpKind::SyncDir && n > 0 && is_jobs_file(&log[n - 1].1, jobs_file))
}

/// Copies a directory tree (a prepared data directory, so each case starts from the same state).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Segment files on disk and those the catalog names, after a reopen: equal means no orphan.
fn assert_no_orphans(context: &str, engine: &Engine) {
    let mut named = Vec::new();
    let snapshot = engine.snapshot();
    for d in snapshot.databases.values() {
        for t in d.tables.values() {
            for p in &t.partitions {
                named.extend(p.segments().map(|s| s.meta.path.clone()));
            }
        }
    }
    named.sort();
    let on_disk: Vec<String> = files_under(&engine.data_dir().join("segments"))
        .into_iter()
        .map(|f| format!("segments/{f}"))
        .collect();
    assert_eq!(
        on_disk, named,
        "{context}: orphaned or missing segment files"
    );
}

#[test]
fn every_fault_kind_at_every_backup_operation_cancels_naming_operation_and_path() {
    let (data, repos, storage, engine) = faulty_shop();
    let source_sales = rows(&engine, &engine.snapshot(), "shop", "sales");
    let source_items = rows(&engine, &engine.snapshot(), "shop", "items");
    let b = open_serial(&engine);
    repo_at(&b, "probe", &repos.path().join("probe"));
    storage.arm(None);
    backup_ok(&b, "shop", "snap", "probe", vec![]);
    let log = storage.log();
    let probe_root = repos.path().join("probe");
    let jobs_file = data.path().join(shale_backup::JOBS_FILE);
    let mut cases = 0;
    for (n, (op, path)) in log.iter().enumerate() {
        let essential = !part_of_jobs_write(&log, n, &jobs_file);
        for &kind in kinds_for(*op) {
            let name = format!("r{n}{kind:?}");
            storage.arm(None);
            repo_at(&b, &name, &repos.path().join(&name));
            let seq = engine.snapshot().seq;
            storage.arm(Some((n as u64, kind)));
            let id = b
                .backup("shop", "snap", &name, vec![], BTreeMap::new())
                .unwrap();
            let state = b.wait(id, WAIT);
            let fired = storage.fired();
            storage.arm(None);
            let job = b.job(id).unwrap();
            // The clean run's paths are in repository `probe`; this case's are in `name`.
            let path = &match path.strip_prefix(&probe_root) {
                Ok(rest) => repos.path().join(&name).join(rest),
                Err(_) => path.clone(),
            };
            let context = format!("backup op {n} {op:?} {kind:?} on {}", path.display());
            match state {
                Some(JobState::Cancelled) => {
                    assert!(
                        fired,
                        "{context}: cancelled without a fault: {}",
                        job.status
                    );
                    assert_names_op_and_path(&context, &job.status, *op, path);
                    cases += 1;
                    let listed = b.list_snapshots(&name).unwrap();
                    assert!(
                        listed.iter().all(|s| s.status != "OK"),
                        "{context}: {listed:?}"
                    );
                }
                Some(JobState::Finished) => {
                    // Only the job record's own file may fail without failing the job.
                    assert!(
                        !(fired && essential),
                        "{context}: finished despite the fault"
                    );
                    assert!(
                        b.verify(&name, "snap", None, true).unwrap().is_ok(),
                        "{context}"
                    );
                }
                other => panic!("{context}: {other:?}"),
            }
            // A backup never changes the engine's data.
            assert_eq!(engine.snapshot().seq, seq, "{context}");
        }
    }
    assert!(cases > 30, "only {cases} cancelled cases");
    assert_eq!(
        rows(&engine, &engine.snapshot(), "shop", "sales"),
        source_sales
    );
    assert_eq!(
        rows(&engine, &engine.snapshot(), "shop", "items"),
        source_items
    );
}

#[test]
fn every_fault_kind_at_every_operation_of_a_replacing_restore_keeps_old_or_new_state() {
    // A template data directory: `shop` backed up as `snap`, then changed, so a restore of
    // `snap` into `shop` replaces existing partitions of both tables.
    let template = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let (old_sales, old_items, new_sales, new_items) = {
        let engine = Engine::open(template.path()).unwrap();
        create_tables(&engine, "shop");
        load_sales(&engine, "shop", 0, 40);
        load_items(&engine, "shop", 5);
        let b = open_serial(&engine);
        repo_at(&b, "repo", repo.path());
        backup_ok(&b, "shop", "snap", "repo", vec![]);
        let new_sales = rows(&engine, &engine.snapshot(), "shop", "sales");
        let new_items = rows(&engine, &engine.snapshot(), "shop", "items");
        load_sales(&engine, "shop", 200, 30);
        load_items(&engine, "shop", 3);
        let snapshot = engine.snapshot();
        (
            rows(&engine, &snapshot, "shop", "sales"),
            rows(&engine, &snapshot, "shop", "items"),
            new_sales,
            new_items,
        )
    };
    assert_ne!(old_sales, new_sales);
    let storage = FaultyStorage::new();
    let run = |dir: &Path, fault: Option<(u64, FaultKind)>| {
        copy_tree(template.path(), dir);
        let engine = open_faulty(dir, &storage);
        let b = open_serial(&engine);
        storage.arm(fault);
        let id = b
            .restore("shop", "snap", "repo", vec![], BTreeMap::new())
            .unwrap();
        let state = b.wait(id, WAIT);
        let fired = storage.fired();
        let log = storage.log();
        storage.arm(None);
        let job = b.job(id).unwrap();
        (engine, b, state, fired, log, job)
    };
    let probe = tempfile::tempdir().unwrap();
    let (engine, b, state, _, log, job) = run(&probe.path().join("d"), None);
    assert_eq!(state, Some(JobState::Finished), "{}", job.status);
    assert_eq!(
        rows(&engine, &engine.snapshot(), "shop", "sales"),
        new_sales
    );
    drop((b, engine));
    let jobs_file = probe.path().join("d").join(shale_backup::JOBS_FILE);
    assert!(log.len() > 10, "{log:?}");
    let mut cancelled = 0;
    for (n, (op, path)) in log.iter().enumerate() {
        let essential = !part_of_jobs_write(&log, n, &jobs_file);
        for &kind in kinds_for(*op) {
            let case = tempfile::tempdir().unwrap();
            let dir = case.path().join("d");
            let (engine, b, state, fired, _, job) = run(&dir, Some((n as u64, kind)));
            // Paths in the log are under the probe's directory; the case's are the same below it.
            let path = dir.join(path.strip_prefix(probe.path().join("d")).unwrap());
            let context = format!("restore op {n} {op:?} {kind:?} on {}", path.display());
            let state_now = |engine: &Engine| {
                let s = engine.snapshot();
                (
                    rows(engine, &s, "shop", "sales"),
                    rows(engine, &s, "shop", "items"),
                )
            };
            let old = (old_sales.clone(), old_items.clone());
            let new = (new_sales.clone(), new_items.clone());
            match state {
                Some(JobState::Cancelled) => {
                    assert!(
                        fired,
                        "{context}: cancelled without a fault: {}",
                        job.status
                    );
                    cancelled += 1;
                    let status = &job.status;
                    // A failed fsync poisons the engine; later steps then report that instead.
                    if !status.contains("reopen the engine") {
                        assert_names_op_and_path(&context, status, *op, &path);
                    }
                }
                Some(JobState::Finished) => {
                    assert!(
                        !(fired && essential),
                        "{context}: finished despite the fault"
                    );
                    assert_eq!(
                        state_now(&engine),
                        new,
                        "{context}: finished but not restored"
                    );
                }
                other => panic!("{context}: {other:?}"),
            }
            let live = state_now(&engine);
            assert!(
                live == old || live == new,
                "{context}: a mix of old and new is visible"
            );
            drop((b, engine));
            let engine = Engine::open(&dir).unwrap();
            let after = state_now(&engine);
            assert!(
                after == old || after == new,
                "{context}: reopened into a mix"
            );
            if state == Some(JobState::Finished) {
                assert_eq!(after, new, "{context}: acknowledged restore lost");
            }
            assert_no_orphans(&context, &engine);
        }
    }
    assert!(cancelled > 10, "only {cancelled} cancelled cases");
}

/// The position in `log` of the one file-system sync, which must be there exactly once.
fn only_sync_fs(context: &str, log: &[(OpKind, PathBuf)]) -> usize {
    let at: Vec<usize> = (0..log.len())
        .filter(|&n| log[n].0 == OpKind::SyncFs)
        .collect();
    assert_eq!(
        at.len(),
        1,
        "{context}: file-system syncs at {at:?}: {log:?}"
    );
    at[0]
}

#[test]
fn a_backup_syncs_data_bytes_then_names_before_meta_and_info_and_a_failed_sync_commits_nothing() {
    let (_data, repos, storage, engine) = faulty_shop();
    let b = open_serial(&engine);

    // The order in a clean run (the test's files are small, so they share the group's flush):
    // every data file, meta.json and the info file written to
    // temporary names, then a file-system sync (their bytes), then every data file renamed into
    // place and meta.json linked (the claim), then a second sync (the names and new
    // directories), then the info file linked (the commit) and its folder fsynced.
    let root = repos.path().join("probe");
    repo_at(&b, "probe", &root);
    storage.arm(None);
    backup_ok(&b, "shop", "snap", "probe", vec![]);
    let log = storage.log();
    let syncs: Vec<usize> = (0..log.len())
        .filter(|&n| log[n].0 == OpKind::SyncFs)
        .collect();
    assert_eq!(syncs.len(), 2, "{log:?}");
    for &n in &syncs {
        assert_eq!(log[n].1.components().collect::<PathBuf>(), root);
    }
    let under = |kind: OpKind, dir: &Path| -> Vec<usize> {
        (0..log.len())
            .filter(|&n| log[n].0 == kind && log[n].1.starts_with(dir))
            .collect()
    };
    let (data_dir, snapshot_dir) = (root.join("data"), root.join("snapshots/snap"));
    let (writes, renames) = (
        under(OpKind::Write, &data_dir),
        under(OpKind::Rename, &data_dir),
    );
    assert!(!writes.is_empty() && !renames.is_empty(), "{log:?}");
    assert!(writes.iter().all(|&n| n < syncs[0]), "{log:?}");
    assert!(
        renames.iter().all(|&n| syncs[0] < n && n < syncs[1]),
        "{log:?}"
    );
    let staged = under(OpKind::Write, &snapshot_dir);
    assert_eq!(staged.len(), 2, "meta.json and the info file: {log:?}");
    assert!(staged.iter().all(|&n| n < syncs[0]), "{log:?}");
    let links = under(OpKind::Link, &snapshot_dir);
    assert_eq!(links.len(), 2, "{log:?}");
    assert!(log[links[0]].1.ends_with("meta.json"), "{log:?}");
    assert!(
        renames.iter().all(|&n| n < links[0]) && links[0] < syncs[1],
        "the claim after the data files' names, before the second sync: {log:?}"
    );
    assert!(
        syncs[1] < links[1],
        "the commit after the second sync: {log:?}"
    );
    let last_dir_sync = under(OpKind::SyncDir, &snapshot_dir);
    assert!(
        last_dir_sync.iter().any(|&n| n > links[1]),
        "the commit's folder fsynced: {log:?}"
    );
    assert!(
        !(syncs[0]..log.len()).any(|n| log[n].0 == OpKind::Sync && log[n].1.starts_with(&root)),
        "no file fsync in the repository after the first sync: {log:?}"
    );

    // A failure of either sync (a write-back error syncfs reports) cancels the job naming the
    // operation, writes no meta.json and no info file, leaves no data file under its final name
    // that was not durable, and the name stays free.
    for (i, &sync_at) in syncs.iter().enumerate() {
        let name = format!("failing{i}");
        let failing_root = repos.path().join(&name);
        repo_at(&b, &name, &failing_root);
        storage.arm(Some((sync_at as u64, FaultKind::SyncFail)));
        let id = b
            .backup("shop", "snap", &name, vec![], BTreeMap::new())
            .unwrap();
        assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled), "sync {i}");
        assert!(storage.fired());
        storage.arm(None);
        let status = b.job(id).unwrap().status;
        assert!(
            status.contains(&format!("sync file system {}", failing_root.display())),
            "{status}"
        );
        assert!(b.list_snapshots(&name).unwrap().is_empty());
        let files = files_under(&failing_root);
        assert!(
            !files.iter().any(|f| f.starts_with("snapshots/")),
            "{files:?}"
        );
        if i == 0 {
            // Nothing was renamed into place, and the temporary files are gone.
            assert!(!files.iter().any(|f| f.starts_with("data/")), "{files:?}");
        }
        backup_ok(&b, "shop", "snap", &name, vec![]);
        assert!(b.verify(&name, "snap", None, true).unwrap().is_ok());
    }
}

/// With every data file flushed alone, each one's bytes are fdatasynced before its name is
/// given, and one file-system sync makes the names durable before the commit.
#[test]
fn a_backup_flushing_each_file_alone_syncs_its_bytes_before_its_name() {
    let (_data, repos, storage, engine) = faulty_shop();
    let b = open_serial_flushing(&engine, EACH_FILE_ALONE);
    let root = repos.path().join("probe");
    repo_at(&b, "probe", &root);
    storage.arm(None);
    backup_ok(&b, "shop", "snap", "probe", vec![]);
    let log = storage.log();
    let data_dir = root.join("data");
    let sync_fs = only_sync_fs("each file alone", &log);
    let renames: Vec<usize> = (0..log.len())
        .filter(|&n| log[n].0 == OpKind::Rename && log[n].1.starts_with(&data_dir))
        .collect();
    assert!(!renames.is_empty(), "{log:?}");
    for &r in &renames {
        // The rename's logged path is its source, the temporary file.
        let tmp = &log[r].1;
        let synced = (0..r).any(|n| log[n].0 == OpKind::Sync && &log[n].1 == tmp);
        assert!(synced, "{tmp:?} renamed before it was fdatasynced: {log:?}");
        assert!(r < sync_fs, "{log:?}");
    }
    let snapshot_dir = root.join("snapshots/snap");
    let links: Vec<usize> = (0..log.len())
        .filter(|&n| log[n].0 == OpKind::Link && log[n].1.starts_with(&snapshot_dir))
        .collect();
    assert_eq!(links.len(), 2, "{log:?}");
    assert!(links[0] < sync_fs && sync_fs < links[1], "{log:?}");
    assert!(b.verify("probe", "snap", None, true).unwrap().is_ok());
}

#[test]
fn a_restore_syncs_its_files_once_before_the_commit_and_a_failed_sync_commits_nothing() {
    let (data, repo, storage, engine) = faulty_shop();
    let want = rows(&engine, &engine.snapshot(), "shop", "sales");
    let b = open_serial(&engine);
    repo_at(&b, "repo", repo.path());
    backup_ok(&b, "shop", "snap", "repo", vec![]);

    // A clean run: every segment written, then the one sync, then the manifest record.
    storage.arm(None);
    restore_ok(&b, "probe", "snap", "repo", vec![]);
    let log = storage.log();
    let sync_at = only_sync_fs("restore", &log);
    let segments = data.path().join("segments");
    let last_segment_write = (0..log.len())
        .filter(|&n| log[n].0 == OpKind::Write && log[n].1.starts_with(&segments))
        .max()
        .expect("segments are written");
    assert!(last_segment_write < sync_at, "{log:?}");
    let first_manifest_write = (sync_at..log.len())
        .find(|&n| log[n].0 == OpKind::Write && !log[n].1.starts_with(&segments))
        .expect("the commit writes the manifest");
    assert!(
        !(0..sync_at).any(|n| log[n].0 == OpKind::Write
            && !log[n].1.starts_with(&segments)
            && !is_jobs_file(&log[n].1, &data.path().join(shale_backup::JOBS_FILE))),
        "a manifest write before the sync: {log:?}"
    );
    assert!(sync_at < first_manifest_write);

    // A failed sync: CANCELLED naming it, nothing visible now or after a reopen, no orphan.
    storage.arm(Some((sync_at as u64, FaultKind::SyncFail)));
    let id = b
        .restore("failing", "snap", "repo", vec![], BTreeMap::new())
        .unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
    assert!(storage.fired());
    storage.arm(None);
    let status = b.job(id).unwrap().status;
    assert!(status.contains("sync file system"), "{status}");
    assert!(engine.snapshot().database("failing").is_none());
    drop(b);
    drop(engine);
    let engine = open_faulty(data.path(), &storage);
    assert!(engine.snapshot().database("failing").is_none());
    assert_no_orphans("after a failed restore sync", &engine);
    assert_eq!(rows(&engine, &engine.snapshot(), "probe", "sales"), want);
}

// ---- S3: a fault at every request -------------------------------------------------------------

/// One request at a time (one file in flight), so that "the n-th request" is the same request
/// in every run, and no retries, so that one injected fault is one failed operation.
fn s3_serial_options() -> BackupsOptions {
    let mut options = BackupsOptions::default();
    options.store.max_retries = 0;
    options.store.files_in_flight = 1;
    options.store.request_timeout = Duration::from_secs(20);
    options
}

/// The key prefix of an S3 test repository (`t<pid>-<n>`).
fn prefix_of(repo: &TestRepo) -> &str {
    repo.location.trim_start_matches("s3://shale/")
}

/// A request's method and path with the repository's prefix and every number blurred, to match
/// requests of runs against different repositories (and info files of different times).
fn shape(r: &Seen, prefix: &str) -> String {
    // A multipart upload's id is the server's choice.
    let shape = r.shape(prefix);
    let shape = match shape.split_once("uploadId=") {
        Some((head, tail)) => {
            let rest = tail.find('&').map_or("", |i| &tail[i..]);
            format!("{head}uploadId=<id>{rest}")
        }
        None => shape,
    };
    blur(&shape)
}

/// What a job or its submission came to with a fault at request `n`.
struct S3Case {
    context: String,
    /// The job's final record, or the submission's error (a request made at submission failed).
    outcome: Result<JobRecord, BackupError>,
    /// The request that failed, and how.
    hit: Seen,
}

/// Arms a fault at request `n` (of `clean`, the requests of a clean run), runs `submit` and waits
/// for its job, and checks that exactly that request failed and that the job (or the submission)
/// failed naming its object.
fn s3_case(
    proxy: &s3::Proxy,
    b: &Backups,
    n: usize,
    clean: &[String],
    prefix: &str,
    submit: impl FnOnce() -> Result<u64, BackupError>,
) -> S3Case {
    let fault = s3::FAULTS[n % s3::FAULTS.len()].clone();
    let failed = Arc::new(Mutex::new(None));
    proxy.set_rule(s3::fail_nth(n, fault.clone(), failed.clone()));
    let outcome = submit().map(|id| {
        b.wait(id, WAIT);
        b.job(id).unwrap()
    });
    proxy.clear_rule();
    let context = format!("request {n} `{}` failing with {fault:?}", clean[n]);
    let hit = failed
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| panic!("{context}: never made"));
    assert_eq!(
        shape(&hit, prefix),
        clean[n],
        "{context}: not the clean run's request"
    );
    let object = hit.object();
    match &outcome {
        Ok(job) => {
            assert_eq!(job.state, JobState::Cancelled, "{context}: {}", job.status);
            assert!(
                job.status.contains(&object),
                "{context}: the status does not name {object}: {}",
                job.status
            );
        }
        Err(e) => assert!(
            e.to_string().contains(&object),
            "{context}: the refusal does not name {object}: {e}"
        ),
    }
    S3Case {
        context,
        outcome,
        hit,
    }
}

/// `(key, upload id)` of the multipart uploads open under `prefix` in moto's bucket `shale`.
fn open_uploads(prefix: &str) -> Vec<(String, String)> {
    let (status, listing) = s3::http(
        s3::moto().port,
        "GET",
        &format!("/shale?uploads&prefix={prefix}/"),
    )
    .unwrap();
    assert_eq!(status, 200, "{listing}");
    let field = |upload: &str, name: &str| {
        let open = format!("<{name}>");
        let start = upload.find(&open)? + open.len();
        let end = start + upload[start..].find(&format!("</{name}>"))?;
        Some(upload[start..end].to_string())
    };
    listing
        .split("<Upload>")
        .skip(1)
        .map(|u| (field(u, "Key").unwrap(), field(u, "UploadId").unwrap()))
        .collect()
}

/// Fails each request of a backup of `shop` that `chosen` picks (by its [`shape`]) once in turn
/// (see [`s3_case`]); after each: no snapshot listed OK, no multipart upload left open, the
/// engine unchanged, and the name free for a backup that verifies. Returns the requests of a
/// clean backup and how many cases ended as a CANCELLED job (not refused at submission).
fn each_backup_request_fails_once(
    engine: &Engine,
    chosen: impl Fn(&str) -> bool,
) -> (Vec<String>, usize) {
    let source = engine.snapshot();
    let proxy = s3::proxy();
    let b = Backups::open_with(engine.clone(), s3_serial_options()).unwrap();

    // The requests of a clean backup, from its submission on.
    let probe = TestRepo::s3_via(&proxy.endpoint());
    probe.create(&b, "probe");
    proxy.clear_log();
    backup_ok(&b, "shop", "snap", "probe", vec![]);
    let clean: Vec<String> = proxy
        .log()
        .iter()
        .map(|r| shape(r, prefix_of(&probe)))
        .collect();

    let mut cancelled = 0;
    for n in (0..clean.len()).filter(|&n| chosen(&clean[n])) {
        let name = format!("r{n}");
        let repo = TestRepo::s3_via(&proxy.endpoint());
        repo.create(&b, &name);
        let seq = engine.snapshot().seq;
        let case = s3_case(&proxy, &b, n, &clean, prefix_of(&repo), || {
            b.backup("shop", "snap", &name, vec![], BTreeMap::new())
        });
        let context = &case.context;
        cancelled += usize::from(case.outcome.is_ok());
        let listed = b.list_snapshots(&name).unwrap();
        assert!(
            listed.iter().all(|s| s.status != "OK"),
            "{context}: {listed:?}"
        );
        // Every multipart upload the job started was aborted, except one whose start was
        // answered after the answer was lost: its id never reached the job, and it holds no
        // part (a bucket lifecycle rule removes such uploads).
        let lost_start = case.hit.method == "POST"
            && case.hit.path.ends_with("?uploads=")
            && matches!(
                case.hit.action,
                s3::Action::LoseAnswer | s3::Action::Truncate
            );
        for (key, upload_id) in open_uploads(prefix_of(&repo)) {
            assert!(lost_start, "{context}: multipart upload of {key} left open");
            let (status, parts) = s3::http(
                s3::moto().port,
                "GET",
                &format!("/shale/{key}?uploadId={upload_id}"),
            )
            .unwrap();
            assert_eq!(status, 200, "{parts}");
            assert!(!parts.contains("<Part>"), "{context}: {parts}");
        }
        // A backup never changes the engine's data.
        assert_eq!(engine.snapshot().seq, seq, "{context}");
        // The name is free again and the repository takes a good backup.
        backup_ok(&b, "shop", "snap", &name, vec![]);
        let report = b.verify(&name, "snap", None, true).unwrap();
        assert!(report.is_ok(), "{context}: {:?}", report.problems);
    }
    for t in ["sales", "items"] {
        assert_eq!(
            rows(engine, &engine.snapshot(), "shop", t),
            rows(engine, &source, "shop", t)
        );
    }
    (clean, cancelled)
}

#[test]
fn s3_a_failure_at_each_request_of_a_backup_cancels_naming_the_object() {
    let data = tempfile::tempdir().unwrap();
    let engine = Engine::open(data.path()).unwrap();
    create_tables(&engine, "shop");
    load_sales(&engine, "shop", 0, 40);
    load_items(&engine, "shop", 5);
    let (clean, cancelled) = each_backup_request_fails_once(&engine, |_| true);
    assert!(clean.len() > 10, "only {} requests: {clean:?}", clean.len());
    // Only the submission's check that the name is free comes before the job.
    assert_eq!(cancelled, clean.len() - 1, "jobs cancelled of {clean:?}");
    for kind in ["HEAD ", "PUT "] {
        assert!(
            clean
                .iter()
                .any(|r| r.starts_with(kind) && r.contains("/data/")),
            "{clean:?}"
        );
    }
}

#[test]
fn s3_a_failure_at_each_request_of_a_multipart_backup_cancels_and_aborts_the_upload() {
    let data = tempfile::tempdir().unwrap();
    let engine = Engine::open(data.path()).unwrap();
    create_tables(&engine, "shop");
    // One segment of several parts: its upload's start, each part and its completion fail in
    // turn (the other requests are those of the test above).
    let size = load_large_items(&engine, "shop");
    assert!(size > 5 << 20, "segment of {size} bytes");
    let multipart = |r: &str| r.contains("?uploads") || r.contains("uploadId=");
    let (clean, cancelled) = each_backup_request_fails_once(&engine, multipart);
    assert!(
        clean
            .iter()
            .any(|r| r.starts_with("POST ") && r.contains("uploads")),
        "{clean:?}"
    );
    let parts = clean
        .iter()
        .filter(|r| r.starts_with("PUT ") && r.contains("partNumber="))
        .count();
    assert!(parts >= 2, "{clean:?}");
    // The start, every part and the completion each cancelled one job.
    assert_eq!(cancelled, parts + 2, "{clean:?}");
}

#[test]
fn s3_a_failure_at_each_request_of_a_replacing_restore_keeps_old_or_new_state() {
    // A template data directory: `shop` backed up as `snap` to S3 (through the proxy, whose
    // endpoint the repository's definition in the catalog keeps), then changed, so a restore of
    // `snap` into `shop` replaces existing partitions of both tables.
    let template = tempfile::tempdir().unwrap();
    let proxy = s3::proxy();
    let repo = TestRepo::s3_via(&proxy.endpoint());
    let state_now = |engine: &Engine| {
        let s = engine.snapshot();
        (
            rows(engine, &s, "shop", "sales"),
            rows(engine, &s, "shop", "items"),
        )
    };
    let (old, new) = {
        let engine = Engine::open(template.path()).unwrap();
        create_tables(&engine, "shop");
        load_sales(&engine, "shop", 0, 40);
        load_items(&engine, "shop", 5);
        let b = Backups::open_with(engine.clone(), s3_serial_options()).unwrap();
        repo.create(&b, "repo");
        backup_ok(&b, "shop", "snap", "repo", vec![]);
        let new = state_now(&engine);
        load_sales(&engine, "shop", 200, 30);
        load_items(&engine, "shop", 3);
        (state_now(&engine), new)
    };
    assert_ne!(old, new);
    let open_copy = |dir: &Path| {
        copy_tree(template.path(), dir);
        let engine = Engine::open(dir).unwrap();
        let b = Backups::open_with(engine.clone(), s3_serial_options()).unwrap();
        (engine, b)
    };
    let restore = |b: &Backups| b.restore("shop", "snap", "repo", vec![], BTreeMap::new());

    // The requests of a clean restore, from its submission on.
    let probe = tempfile::tempdir().unwrap();
    let (engine, b) = open_copy(&probe.path().join("d"));
    proxy.clear_log();
    let id = restore(&b).unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Finished));
    assert_eq!(state_now(&engine), new);
    drop((b, engine));
    let prefix = prefix_of(&repo);
    let clean: Vec<String> = proxy.log().iter().map(|r| shape(r, prefix)).collect();
    let data_gets = clean
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/data/"))
        .count();
    assert!(data_gets > 3, "{clean:?}");

    let mut cancelled = 0;
    for n in 0..clean.len() {
        let case_dir = tempfile::tempdir().unwrap();
        let dir = case_dir.path().join("d");
        let (engine, b) = open_copy(&dir);
        let case = s3_case(&proxy, &b, n, &clean, prefix, || restore(&b));
        let context = &case.context;
        cancelled += usize::from(case.outcome.is_ok());
        // Cancelled or refused: the target is exactly as it was, now and after a reopen, and
        // the files the import had written are gone.
        assert!(state_now(&engine) == old, "{context}: the target changed");
        drop((b, engine));
        let engine = Engine::open(&dir).unwrap();
        assert!(state_now(&engine) == old, "{context}: reopened changed");
        assert_no_orphans(context, &engine);
    }
    assert!(
        cancelled >= data_gets,
        "only {cancelled} of {} cases reached the job",
        clean.len()
    );
}
