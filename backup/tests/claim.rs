//! Writers of one filesystem repository in different processes: `put_once` links a complete
//! temp file to its final name, which fails if the name exists (child processes racing for the
//! same keys); and the location lock (`flock(2)` on `.shale_lock`) keeps a backup's leftover
//! removal and DROP SNAPSHOT's sweep from destroying another writer's work (two engines, two
//! services, each with its own in-process repository lock, as two processes would have, one
//! held inside its critical section by a state hook).
//!
//! The process race and the sweep are filesystem only: the claim here is `link(2)` of a temp
//! file and the lock is `flock(2)`, which S3 does not have. On S3 put-once is one conditional
//! PUT (`If-None-Match: *`) whose atomicity is the server's, the same across processes as
//! across engines; `s3.rs` (`the_info_object_is_created_only_once`) races two engines for one
//! snapshot name there. The leftover race runs on both: on S3 a folder younger than
//! `StoreOptions::claim_grace` is another writer's claim, not a leftover.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::*;
use shale_backup::store::FsStore;
use shale_backup::{BackupError, Backups, BackupsOptions, JobState, RepoStore, StateHook};
use shale_engine::{Engine, StdStorage};

/// Keys each child process tries to create.
const KEYS: usize = 200;
const CHILDREN: usize = 4;

/// Child mode: `put_once` on every key with this child's id as content; writes the keys it won.
fn child(root: &Path, id: &str) {
    let store = FsStore::new(Arc::new(StdStorage), root.to_path_buf(), 1);
    let mut won = Vec::new();
    for k in 0..KEYS {
        match store.put_once(&format!("snapshots/k{k}/meta.json"), id.as_bytes()) {
            Ok(()) => won.push(k.to_string()),
            Err(BackupError::ObjectExists { .. }) => {}
            Err(e) => panic!("child {id}, key {k}: {e}"),
        }
    }
    std::fs::write(root.join(format!("won-{id}")), won.join("\n")).unwrap();
}

#[test]
fn put_once_creates_each_object_exactly_once_across_processes() {
    if let (Ok(root), Ok(id)) = (
        std::env::var("SHALE_CLAIM_CHILD_ROOT"),
        std::env::var("SHALE_CLAIM_CHILD_ID"),
    ) {
        child(Path::new(&root), &id);
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..CHILDREN)
        .map(|id| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "put_once_creates_each_object_exactly_once_across_processes",
                    "--test-threads=1",
                ])
                .env("SHALE_CLAIM_CHILD_ROOT", root.path())
                .env("SHALE_CLAIM_CHILD_ID", id.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        let mut err = String::new();
        c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(c.wait().unwrap().success(), "a child failed: {err}");
    }
    let mut winners: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for id in 0..CHILDREN {
        let won = std::fs::read_to_string(root.path().join(format!("won-{id}"))).unwrap();
        for k in won.lines().filter(|l| !l.is_empty()) {
            winners.entry(k.parse().unwrap()).or_default().push(id);
        }
    }
    for k in 0..KEYS {
        let w = winners.get(&k).cloned().unwrap_or_default();
        assert_eq!(w.len(), 1, "key {k} created by {w:?}");
        let content =
            std::fs::read_to_string(root.path().join(format!("snapshots/k{k}/meta.json"))).unwrap();
        assert_eq!(
            content,
            w[0].to_string(),
            "key {k} holds the winner's bytes"
        );
    }
    let left: Vec<String> = files_under(root.path())
        .into_iter()
        .filter(|f| f.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
}

/// A one-shot signal with a time limit, so that a failing job cannot hang the test.
#[derive(Debug, Default)]
struct Signal {
    set: Mutex<bool>,
    changed: Condvar,
}

impl Signal {
    fn set(&self) {
        *self.set.lock().unwrap() = true;
        self.changed.notify_all();
    }

    fn wait(&self) {
        let set = self.set.lock().unwrap();
        let (set, _) = self
            .changed
            .wait_timeout_while(set, Duration::from_secs(30), |s| !*s)
            .unwrap();
        assert!(*set, "timed out waiting for a job");
    }
}

/// A service whose jobs, on entering `state`, say so on `reached` and then wait for `go`.
fn paused_at(engine: &Engine, state: JobState, reached: &Arc<Signal>, go: &Arc<Signal>) -> Backups {
    let (reached, go) = (reached.clone(), go.clone());
    let hook: StateHook = Arc::new(move |_, s| {
        if s == state {
            reached.set();
            go.wait();
        }
    });
    open_with(
        engine,
        BackupsOptions {
            state_hook: Some(hook),
            ..BackupsOptions::default()
        },
    )
}

/// A service whose jobs say so on `reached` when they enter `state`.
fn signalling_at(engine: &Engine, state: JobState, reached: &Arc<Signal>) -> Backups {
    let reached = reached.clone();
    let hook: StateHook = Arc::new(move |_, s| {
        if s == state {
            reached.set();
        }
    });
    open_with(
        engine,
        BackupsOptions {
            state_hook: Some(hook),
            ..BackupsOptions::default()
        },
    )
}

/// Lets a job that has just signalled reach the lock it waits for (if the pause is too short
/// the test only gets weaker: the second job then starts after the first has finished).
fn let_it_reach_the_lock() {
    std::thread::sleep(Duration::from_millis(200));
}

/// Two engines (two services, each with its own in-process repository lock, as two processes
/// would have) back up the same snapshot name into one repository. The first is held after
/// its claim (`meta.json` created) and before its commit while the second starts: the second
/// must neither remove the first's claim as a leftover nor commit, and exactly one snapshot,
/// the first's, is listed OK. Before the location lock (a directory) and the claim grace (S3,
/// which has no lock) the second removed the first's folder and both committed an info file.
fn a_backup_never_removes_another_writers_claim_as_a_leftover(kind: Kind) {
    let repo = TestRepo::new(kind);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let engines: Vec<Engine> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let engine = Engine::open(d.path()).unwrap();
            create_tables(&engine, "shop");
            // Different rows, so the snapshot shows whose backup it is.
            load_sales(&engine, "shop", i as i32 * 1000, 40);
            load_items(&engine, "shop", 5);
            engine
        })
        .collect();
    let (claimed, go, waiting) = (
        Arc::new(Signal::default()),
        Arc::new(Signal::default()),
        Arc::new(Signal::default()),
    );
    let first = paused_at(&engines[0], JobState::UploadInfo, &claimed, &go);
    let second = signalling_at(&engines[1], JobState::UploadSnapshot, &waiting);
    repo.create(&first, "repo");
    repo.create(&second, "repo");

    let id1 = first
        .backup("shop", "snap", "repo", vec![], BTreeMap::new())
        .unwrap();
    claimed.wait();
    assert!(
        repo_files(&first, "repo").contains(&"snapshots/snap/meta.json".to_string()),
        "the first job holds the claim"
    );
    let id2 = second
        .backup("shop", "snap", "repo", vec![], BTreeMap::new())
        .unwrap();
    waiting.wait();
    let_it_reach_the_lock();
    go.set();

    assert_eq!(first.wait(id1, WAIT), Some(JobState::Finished));
    assert_eq!(second.wait(id2, WAIT), Some(JobState::Cancelled));
    let status = second.job(id2).unwrap().status;
    assert!(
        status.contains("Snapshot with name 'snap' already exist"),
        "{status}"
    );
    let listed = first.list_snapshots("repo").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "OK");
    assert_eq!(listed[0].timestamps.len(), 1, "{:?}", listed[0].timestamps);
    let report = first.verify("repo", "snap", None, true).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    restore_ok(&first, "copy", "snap", "repo", vec![]);
    let engine = &engines[0];
    let now = engine.snapshot();
    assert_eq!(
        rows(engine, &now, "copy", "sales"),
        rows(engine, &now, "shop", "sales")
    );
    let left: Vec<String> = repo_files(&first, "repo")
        .into_iter()
        .filter(|f| f.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
}
both!(a_backup_never_removes_another_writers_claim_as_a_leftover);

/// On S3 a snapshot folder without an info file (what a writer killed between its claim and
/// its commit leaves, or another writer about to commit) keeps the name taken for
/// `claim_grace`; after it, the next backup of that name removes the folder and commits.
#[test]
fn an_s3_leftover_is_a_claim_until_its_grace_has_passed() {
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let repo = TestRepo::new(Kind::S3);
    let key = format!(
        "/{}/snapshots/snap/meta.json",
        repo.location.trim_start_matches("s3://")
    );
    let (status, body) = s3::http(s3::moto().port, "PUT", &key).unwrap();
    assert_eq!(status, 200, "{body}");

    let b = open(&engine);
    repo.create(&b, "repo");
    let id = b
        .backup("shop", "snap", "repo", vec![], BTreeMap::new())
        .unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Cancelled));
    let status = b.job(id).unwrap().status;
    assert!(
        status.contains("Snapshot with name 'snap' already exist"),
        "{status}"
    );
    assert!(repo_files(&b, "repo").contains(&"snapshots/snap/meta.json".to_string()));
    drop(b);

    let mut options = BackupsOptions::default();
    options.store.claim_grace = Duration::ZERO;
    let b = open_with(&engine, options);
    let id = b
        .backup("shop", "snap", "repo", vec![], BTreeMap::new())
        .unwrap();
    assert_eq!(b.wait(id, WAIT), Some(JobState::Finished));
    let listed = b.list_snapshots("repo").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "OK");
    let report = b.verify("repo", "snap", None, true).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

/// A backup finds every data file already in the repository (an earlier snapshot has them) and
/// is held before it names them in its `meta.json`; meanwhile another service (another
/// process) drops that earlier snapshot. The drop must wait: before the location lock its
/// sweep deleted the files no `meta.json` named yet, and the backup then committed a snapshot
/// listed OK whose files were gone.
#[test]
fn drop_snapshot_elsewhere_never_sweeps_files_a_running_backup_has_found() {
    let repo_dir = tempfile::tempdir().unwrap();
    let repo: PathBuf = repo_dir.path().to_path_buf();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let engine = engine_with_data(d1.path());
    let other = Engine::open(d2.path()).unwrap();
    let (found, go) = (Arc::new(Signal::default()), Arc::new(Signal::default()));
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hook: StateHook = {
        let (found, go, armed) = (found.clone(), go.clone(), armed.clone());
        Arc::new(move |_, s| {
            if s == JobState::SaveMeta && armed.load(std::sync::atomic::Ordering::SeqCst) {
                found.set();
                go.wait();
            }
        })
    };
    let writer = open_with(
        &engine,
        BackupsOptions {
            state_hook: Some(hook),
            ..BackupsOptions::default()
        },
    );
    let dropper = open(&other);
    repo_at(&writer, "repo", &repo);
    backup_ok(&writer, "shop", "snap1", "repo", vec![]);
    repo_at(&dropper, "repo", &repo);

    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let id = writer
        .backup("shop", "snap2", "repo", vec![], BTreeMap::new())
        .unwrap();
    found.wait();
    let dropping = Arc::new(Signal::default());
    let dropped = std::thread::spawn({
        let dropping = dropping.clone();
        move || {
            dropping.set();
            dropper
                .drop_snapshot("repo", "snap1")
                .map(|r| r.files_removed)
        }
    });
    dropping.wait();
    let_it_reach_the_lock();
    go.set();
    assert_eq!(writer.wait(id, WAIT), Some(JobState::Finished));
    let removed = dropped.join().unwrap().unwrap();
    assert_eq!(removed, 0, "snap2 shares every data file of snap1");

    let listed = writer.list_snapshots("repo").unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (listed[0].snapshot.as_str(), listed[0].status.as_str()),
        ("snap2", "OK")
    );
    let report = writer.verify("repo", "snap2", None, true).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    restore_ok(&writer, "copy", "snap2", "repo", vec![]);
    let now = engine.snapshot();
    assert_eq!(
        rows(&engine, &now, "copy", "sales"),
        rows(&engine, &now, "shop", "sales")
    );
}
