//! Cancel in every state, timeout, restart during and after a job, backup during loads: each on
//! a directory and on S3 (`<test>::fs`, `<test>::s3`).

mod common;

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use shale_backup::{Backups, BackupsOptions, JobState, TableRef};
use shale_engine::Engine;

/// A hook that stops the job in `state`: reports on the returned receiver, then waits for a
/// message on the returned sender.
fn stop_in(state: JobState) -> (BackupsOptions, Receiver<u64>, Sender<()>) {
    let (reached_tx, reached_rx) = channel::<u64>();
    let (go_tx, go_rx) = channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let reached_tx = Mutex::new(reached_tx);
    let options = BackupsOptions {
        state_hook: Some(Arc::new(move |id, s| {
            if s == state {
                let _ = reached_tx.lock().unwrap().send(id);
                let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(30));
            }
        })),
        chunk_bytes: 4096,
        ..BackupsOptions::default()
    };
    (options, reached_rx, go_tx)
}

const BACKUP_STATES: [JobState; 6] = [
    JobState::Pending,
    JobState::Snapshoting,
    JobState::UploadSnapshot,
    JobState::Uploading,
    JobState::SaveMeta,
    JobState::UploadInfo,
];

fn cancel_backup_in_every_state(kind: Kind) {
    for state in BACKUP_STATES {
        let data = tempfile::tempdir().unwrap();
        let repo = TestRepo::new(kind);
        let engine = engine_with_data(data.path());
        let (options, reached, go) = stop_in(state);
        let b = open_with(&engine, options);
        repo.create(&b, "repo");
        let id = b
            .backup("shop", "snap", "repo", vec![], BTreeMap::new())
            .unwrap();
        assert_eq!(reached.recv_timeout(WAIT).unwrap(), id);
        assert_eq!(b.show_backup(Some("shop"))[0].state, state);
        b.cancel_backup("shop").unwrap();
        go.send(()).unwrap();
        assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled), "state {state}");
        let shown = &b.show_backup(Some("shop"))[0];
        assert_eq!(shown.status, "[COMMON_ERROR, msg: user cancelled]");
        assert!(shown.finished_time.is_some());
        assert!(
            b.list_snapshots("repo")
                .unwrap()
                .iter()
                .all(|s| s.status != "OK"),
            "cancelled in {state} but a snapshot is OK"
        );
        let left: Vec<String> = repo_files(&b, "repo")
            .into_iter()
            .filter(|k| k.starts_with("snapshots/snap/"))
            .collect();
        assert!(left.is_empty(), "partial folder left in {state}: {left:?}");
        if let Some(dir) = repo.fs_path() {
            // Not even an empty directory.
            assert!(
                !dir.join("snapshots/snap").exists(),
                "partial folder left in {state}"
            );
        }
        // The name can be reused.
        drop(go);
        let id = b
            .backup("shop", "snap", "repo", vec![], BTreeMap::new())
            .unwrap();
        assert_eq!(
            b.wait(id, WAIT),
            Some(JobState::Finished),
            "reuse after {state}"
        );
        assert_eq!(b.list_snapshots("repo").unwrap()[0].status, "OK");
    }
}
both!(cancel_backup_in_every_state);

const RESTORE_STATES: [JobState; 6] = [
    JobState::Pending,
    JobState::Snapshoting,
    JobState::Download,
    JobState::Downloading,
    JobState::Commit,
    JobState::Committing,
];

fn cancel_restore_in_every_state_leaves_the_database_as_it_was(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    {
        let engine = engine_with_data(data.path());
        let b = open(&engine);
        repo.create(&b, "repo");
        backup_ok(&b, "shop", "snap", "repo", vec![]);
    }
    for state in RESTORE_STATES {
        let engine = Engine::open(data.path()).unwrap();
        load_sales(&engine, "shop", 500, 10);
        let before = engine.snapshot();
        let sales_before = rows(&engine, &before, "shop", "sales");
        let (options, reached, go) = stop_in(state);
        let b = open_with(&engine, options);
        let id = b
            .restore(
                "shop",
                "snap",
                "repo",
                vec![
                    TableRef::new("sales"),
                    TableRef::new("items").alias("items2"),
                ],
                BTreeMap::new(),
            )
            .unwrap();
        assert_eq!(reached.recv_timeout(WAIT).unwrap(), id);
        b.cancel_restore("shop").unwrap();
        go.send(()).unwrap();
        assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled), "state {state}");
        assert_eq!(
            b.show_restore(Some("shop"))[0].status,
            format!("[COMMON_ERROR, msg: user cancelled, current state: {state}]")
        );
        let after = engine.snapshot();
        assert_eq!(
            after.seq, before.seq,
            "cancel in {state} changed the catalog"
        );
        assert_eq!(rows(&engine, &after, "shop", "sales"), sales_before);
        assert!(after.table("shop", "items2").is_none());
        drop(b);
        drop(go);
        drop(engine);
    }
    // No files left behind by the cancelled imports: a fresh restore still works and reopen
    // finds nothing to clean.
    let engine = Engine::open(data.path()).unwrap();
    let b = open(&engine);
    restore_ok(&b, "fresh", "snap", "repo", vec![]);
}
both!(cancel_restore_in_every_state_leaves_the_database_as_it_was);

fn timeouts_cancel_backup_and_restore(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    {
        let b = open(&engine);
        repo.create(&b, "repo");
        backup_ok(&b, "shop", "snap", "repo", vec![]);
    }
    let (mut options, reached, go) = stop_in(JobState::Uploading);
    options.timeout_override = Some(Duration::from_millis(1500));
    let b = open_with(&engine, options);
    let id = b
        .backup("shop", "late", "repo", vec![], BTreeMap::new())
        .unwrap();
    reached.recv_timeout(WAIT).unwrap();
    std::thread::sleep(Duration::from_millis(1700));
    go.send(()).unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
    assert_eq!(b.show_backup(Some("shop"))[0].status, "[TIMEOUT, msg: ]");
    assert!(
        b.list_snapshots("repo")
            .unwrap()
            .iter()
            .all(|s| s.snapshot != "late")
    );
    drop(b);

    let (mut options, reached, go) = stop_in(JobState::Downloading);
    options.timeout_override = Some(Duration::from_millis(1500));
    let b = open_with(&engine, options);
    let before = engine.snapshot().seq;
    let id = b
        .restore("new", "snap", "repo", vec![], BTreeMap::new())
        .unwrap();
    reached.recv_timeout(WAIT).unwrap();
    std::thread::sleep(Duration::from_millis(1700));
    go.send(()).unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
    assert_eq!(
        b.show_restore(Some("new"))[0].status,
        "[TIMEOUT, msg: restore job with label: snap  timeout.]"
    );
    assert_eq!(engine.snapshot().seq, before);
    assert!(engine.snapshot().database("new").is_none());
}
both!(timeouts_cancel_backup_and_restore);

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn restart_during_and_after_a_job(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let (options, reached, go) = stop_in(JobState::Uploading);
    let b = open_with(&engine, options);
    repo.create(&b, "repo");
    let id = b
        .backup("shop", "snap", "repo", vec![], BTreeMap::new())
        .unwrap();
    reached.recv_timeout(WAIT).unwrap();
    // The image of the data directory while the job runs: what a crash leaves.
    copy_dir(data.path(), &crashed.path().join("d"));
    go.send(()).unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Finished));
    drop(b);
    drop(engine);

    // After the job: FINISHED survives.
    let engine = Engine::open(data.path()).unwrap();
    let b = Backups::open(engine.clone()).unwrap();
    let shown = b.show_backup(None);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].job_id, id);
    assert_eq!(shown[0].state, JobState::Finished);
    drop(b);
    drop(engine);

    // The image taken during the job, reopened after the job committed: what a power failure
    // that lost the end record leaves. On a directory the next open finds the snapshot's info
    // file and shows FINISHED; S3 is not asked at open, so CANCELLED, saying why.
    let engine = Engine::open(crashed.path().join("d")).unwrap();
    let b = Backups::open(engine.clone()).unwrap();
    let shown = b.show_backup(Some("shop"));
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].job_id, id);
    match kind {
        Kind::Fs => {
            assert_eq!(shown[0].state, JobState::Finished);
            assert_eq!(shown[0].status, "[OK]");
        }
        Kind::S3 => {
            assert_eq!(shown[0].state, JobState::Cancelled);
            assert_eq!(
                shown[0].status,
                "[COMMON_ERROR, msg: interrupted: the process stopped]"
            );
        }
    }
    drop(b);
    drop(engine);

    // An image taken during a job that never commits (cancelled after the image): CANCELLED,
    // saying why, on both.
    let crashed = tempfile::tempdir().unwrap();
    let engine = Engine::open(data.path()).unwrap();
    let (options, reached, go) = stop_in(JobState::Uploading);
    let b = open_with(&engine, options);
    let id = b
        .backup("shop", "snap2", "repo", vec![], BTreeMap::new())
        .unwrap();
    reached.recv_timeout(WAIT).unwrap();
    copy_dir(data.path(), &crashed.path().join("d"));
    b.cancel_backup("shop").unwrap();
    go.send(()).unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
    drop(b);
    drop(engine);
    let engine = Engine::open(crashed.path().join("d")).unwrap();
    let b = Backups::open(engine.clone()).unwrap();
    let shown = b.show_backup(Some("shop"));
    assert_eq!((shown[0].job_id, shown[0].state), (id, JobState::Cancelled));
    assert_eq!(
        shown[0].status,
        "[COMMON_ERROR, msg: interrupted: the process stopped]"
    );
    // The database is free for a new job, and the name too.
    let id = b
        .backup("shop", "snap2", "repo", vec![], BTreeMap::new())
        .unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Finished));
}
both!(restart_during_and_after_a_job);

fn dropping_the_service_interrupts_a_running_job(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let (options, reached, go) = stop_in(JobState::Uploading);
    let b = open_with(&engine, options);
    repo.create(&b, "repo");
    b.backup("shop", "snap", "repo", vec![], BTreeMap::new())
        .unwrap();
    reached.recv_timeout(WAIT).unwrap();
    // Released only after the drop below has flagged the job.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let _ = go.send(());
    });
    drop(b);
    release.join().unwrap();
    let b = open(&engine);
    let shown = &b.show_backup(Some("shop"))[0];
    assert_eq!(shown.state, JobState::Cancelled);
    assert!(
        b.list_snapshots("repo")
            .unwrap()
            .iter()
            .all(|s| s.status != "OK")
    );
}
both!(dropping_the_service_interrupts_a_running_job);

fn backup_during_loads_is_the_state_at_its_start(kind: Kind) {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(kind);
    let engine = engine_with_data(data.path());
    let (options, reached, go) = stop_in(JobState::UploadSnapshot);
    let b = open_with(&engine, options);
    repo.create(&b, "repo");
    let id = b
        .backup("shop", "snap", "repo", vec![], BTreeMap::new())
        .unwrap();
    // SNAPSHOTING is over: the job's snapshot is pinned. Take ours at the same point.
    reached.recv_timeout(WAIT).unwrap();
    let at_start = engine.snapshot();
    let loader = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            for i in 0..5 {
                load_sales(&engine, "shop", 1000 + i * 10, 10);
                engine.compact("shop", "sales").unwrap();
            }
            engine.drop_table("shop", "items").unwrap();
        })
    };
    loader.join().unwrap();
    go.send(()).unwrap();
    assert_eq!(
        b.wait(id, WAIT),
        Some(JobState::Finished),
        "{}",
        b.job(id).unwrap().status
    );
    restore_ok(&b, "copy", "snap", "repo", vec![]);
    let now = engine.snapshot();
    assert_ne!(
        rows(&engine, &now, "shop", "sales"),
        rows(&engine, &at_start, "shop", "sales")
    );
    for t in ["sales", "items"] {
        assert_eq!(
            rows(&engine, &now, "copy", t),
            rows(&engine, &at_start, "shop", t),
            "{t}"
        );
    }
}
both!(backup_during_loads_is_the_state_at_its_start);

/// Waits (at most `WAIT`) until job `id` is in `state`.
fn wait_for_state(b: &Backups, id: u64, state: JobState) {
    let start = std::time::Instant::now();
    while b.job(id).map(|j| j.state) != Some(state) {
        assert!(start.elapsed() < WAIT, "job {id} never reached {state}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// While a load or commit of the engine is making files durable, a backup into a directory and a
/// restore hold their chunks back (`BackupsOptions::yield_max`, here longer than the test), and
/// go on as soon as it ends. Without the yield both would be done within the pause.
#[test]
fn backup_and_restore_copies_wait_for_a_foreground_commit() {
    let data = tempfile::tempdir().unwrap();
    let repo = TestRepo::new(Kind::Fs);
    let engine = engine_with_data(data.path());
    let b = open_with(
        &engine,
        BackupsOptions {
            yield_max: Duration::from_secs(600),
            ..BackupsOptions::default()
        },
    );
    repo.create(&b, "repo");
    let foreground = engine.foreground();

    // Submits a job while a commit is in progress: no byte is copied until the commit ends.
    let held_back = |submit: &dyn Fn() -> u64, copying: JobState| {
        let commit = foreground.enter();
        let id = submit();
        wait_for_state(&b, id, copying);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(b.job(id).unwrap().state, copying);
        assert_eq!(b.job_progress(id).unwrap().bytes_done, 0, "{copying}");
        drop(commit);
        assert_eq!(b.wait(id, WAIT), Some(JobState::Finished), "{copying}");
    };
    held_back(
        &|| {
            b.backup("shop", "snap", "repo", vec![], BTreeMap::new())
                .unwrap()
        },
        JobState::Uploading,
    );
    held_back(
        &|| {
            b.restore("copy", "snap", "repo", vec![], BTreeMap::new())
                .unwrap()
        },
        JobState::Downloading,
    );
    let now = engine.snapshot();
    assert_eq!(
        rows(&engine, &now, "copy", "sales"),
        rows(&engine, &now, "shop", "sales")
    );
}
