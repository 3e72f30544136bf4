//! An injected failure at each file operation of a backup and of a restore: no snapshot is
//! listed OK unless the job finished, and the engine holds either the old or the new state.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use shale_backup::{Backups, JobState};
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
    let mut options = shale_backup::BackupsOptions::default();
    options.store.fs_files_in_flight = 1;
    Backups::open_with(engine.clone(), options).unwrap()
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
    let data = tempfile::tempdir().unwrap();
    let repos = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new();
    let engine = open_faulty(data.path(), &storage);
    create_tables(&engine, "shop");
    load_sales(&engine, "shop", 0, 40);
    load_items(&engine, "shop", 5);
    let source = engine.snapshot();
    let b = open_serial(&engine);

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

/// A CANCELLED job's status names the failed operation and its path.
fn assert_names_op_and_path(context: &str, status: &str, op: OpKind, path: &Path) {
    // A root joined with an empty remainder ends in `/`; the store names it without.
    let path: PathBuf = path.components().collect();
    // Temporary and info files carry a per-attempt suffix or timestamp (`<file>.tmp<pid>-<n>`,
    // `__info_<time>`): compare with every run of digits blurred.
    let blur = |s: &str| {
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
    };
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
    let data = tempfile::tempdir().unwrap();
    let repos = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new();
    let engine = open_faulty(data.path(), &storage);
    create_tables(&engine, "shop");
    load_sales(&engine, "shop", 0, 40);
    load_items(&engine, "shop", 5);
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
    let data = tempfile::tempdir().unwrap();
    let repos = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new();
    let engine = open_faulty(data.path(), &storage);
    create_tables(&engine, "shop");
    load_sales(&engine, "shop", 0, 40);
    load_items(&engine, "shop", 5);
    let b = open_serial(&engine);

    // The order in a clean run: every data file, meta.json and the info file written to
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

#[test]
fn a_restore_syncs_its_files_once_before_the_commit_and_a_failed_sync_commits_nothing() {
    let data = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let storage = FaultyStorage::new();
    let engine = open_faulty(data.path(), &storage);
    create_tables(&engine, "shop");
    load_sales(&engine, "shop", 0, 40);
    load_items(&engine, "shop", 5);
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
