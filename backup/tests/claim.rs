//! Claiming a snapshot name on a filesystem repository is atomic across processes: `put_once`
//! (meta.json, the info file) links a complete temp file to its final name, which fails if the
//! name exists. Tested with child processes racing for the same keys, and with two engines
//! (two services, each with its own repository lock, as two processes would have) held at the
//! claim until both have uploaded, so both really race for one snapshot name.
//!
//! Filesystem only: the claim here is `link(2)` of a temp file, which S3 does not have. On S3
//! put-once is one conditional PUT (`If-None-Match: *`) whose atomicity is the server's, the
//! same across processes as across engines; `s3.rs` (`the_info_object_is_created_only_once`)
//! races two engines for one snapshot name there.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use shale_backup::store::FsStore;
use shale_backup::{BackupError, Backups, JobState, RepoStore};
use shale_engine::{DirEntry, Engine, EngineOptions, Result, StdStorage, Storage, WritableFile};

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

/// Two arrivals at the claim, or a time limit so that a job that fails earlier cannot hang the
/// other (the assertions then still hold: exactly one job commits).
#[derive(Debug, Default)]
struct Gate {
    arrived: Mutex<usize>,
    all: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut n = self.arrived.lock().unwrap();
        *n += 1;
        self.all.notify_all();
        let _ = self
            .all
            .wait_timeout_while(n, Duration::from_secs(30), |n| *n < 2)
            .unwrap();
    }
}

/// The real file system, except that creating `meta.json`'s temp file (the start of the claim)
/// waits at the gate.
#[derive(Debug)]
struct GatedStorage {
    gate: Arc<Gate>,
}

impl Storage for GatedStorage {
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        StdStorage.create_dir_all(path)
    }
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("meta.json.tmp"))
        {
            self.gate.wait();
        }
        StdStorage.create(path)
    }
    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        StdStorage.open_append(path)
    }
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        StdStorage.read(path)
    }
    fn map(&self, path: &Path) -> Result<Bytes> {
        StdStorage.map(path)
    }
    fn open_read(&self, path: &Path) -> Result<Box<dyn Read + Send>> {
        StdStorage.open_read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        StdStorage.rename(from, to)
    }
    fn link_if_absent(&self, from: &Path, to: &Path) -> Result<bool> {
        StdStorage.link_if_absent(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        StdStorage.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> Result<()> {
        StdStorage.remove_dir_all(path)
    }
    fn sync_dir(&self, path: &Path) -> Result<()> {
        StdStorage.sync_dir(path)
    }
    fn open_sync_fs(&self, path: &Path) -> Result<Box<dyn shale_engine::FileSystemSync>> {
        StdStorage.open_sync_fs(path)
    }
    fn list_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        StdStorage.list_dir(path)
    }
    fn file_len(&self, path: &Path) -> Result<Option<u64>> {
        StdStorage.file_len(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> Result<()> {
        StdStorage.truncate(path, len)
    }
}

fn gated_engine(dir: &Path, gate: &Arc<Gate>, first_day: i32) -> Engine {
    let engine = Engine::open_with(
        dir,
        EngineOptions {
            storage: Arc::new(GatedStorage { gate: gate.clone() }),
            ..EngineOptions::default()
        },
    )
    .unwrap();
    create_tables(&engine, "shop");
    load_sales(&engine, "shop", first_day, 40);
    load_items(&engine, "shop", 5);
    engine
}

#[test]
fn two_engines_racing_for_one_snapshot_name_commit_exactly_one() {
    let repo_dir = tempfile::tempdir().unwrap();
    let repo: PathBuf = repo_dir.path().to_path_buf();
    let gate = Arc::new(Gate::default());
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    // Different rows, so the snapshot shows whose backup won.
    let engines: Vec<Engine> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| gated_engine(d.path(), &gate, i as i32 * 1000))
        .collect();
    let services: Vec<Backups> = engines.iter().map(open).collect();
    for b in &services {
        repo_at(b, "repo", &repo);
    }
    let ids: Vec<u64> = services
        .iter()
        .map(|b| {
            b.backup("shop", "snap", "repo", vec![], BTreeMap::new())
                .unwrap()
        })
        .collect();
    let states: Vec<Option<JobState>> = services
        .iter()
        .zip(&ids)
        .map(|(b, &id)| b.wait(id, WAIT))
        .collect();
    let winner = states
        .iter()
        .position(|s| *s == Some(JobState::Finished))
        .expect("one backup finished");
    let loser = 1 - winner;
    assert_eq!(states[loser], Some(JobState::Cancelled), "{states:?}");
    let status = services[loser].job(ids[loser]).unwrap().status;
    assert!(
        status.contains("Snapshot with name 'snap' already exist"),
        "{status}"
    );
    assert_eq!(
        *gate.arrived.lock().unwrap(),
        2,
        "both jobs reached the claim"
    );

    // One snapshot, one info file, the winner's content: it restores the winner's rows.
    let b = &services[winner];
    let listed = b.list_snapshots("repo").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "OK");
    assert_eq!(listed[0].timestamps.len(), 1);
    let report = b.verify("repo", "snap", None, true).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    restore_ok(b, "copy", "snap", "repo", vec![]);
    let engine = &engines[winner];
    let now = engine.snapshot();
    assert_eq!(
        rows(engine, &now, "copy", "sales"),
        rows(engine, &now, "shop", "sales")
    );
    let left: Vec<String> = files_under(&repo)
        .into_iter()
        .filter(|f| f.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
}
