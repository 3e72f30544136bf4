//! Crash harness for backups and restores: a child process loads, backs up, restores (whole
//! tables and chosen partitions, replacing the ones already there), compacts, drops scratch
//! tables and partitions and drops old snapshots, while the parent kills it with SIGKILL at
//! random points; every third kill is aimed at a restore's COMMITTING window. After each kill
//! the parent reopens the data directory and checks what is promised:
//! - every acknowledged load is present, and no load is partial;
//! - the restored table is, partition by partition, exactly the state before the restore in
//!   flight or exactly the state after it, never a mix, never a partial partition;
//! - no segment file is left that the catalog does not reference;
//! - every snapshot the repository lists OK passes a deep VERIFY.
//!
//! At the end a new backup and a restore of it must work and give back the live rows.
//!
//! Two runs at the same time, one with the repository in a directory (up to 120 kills within
//! 80 s) and one with it on the loopback moto server (up to 30 within 60 s: each S3 request is a
//! round trip to moto), which keeps running across the kills, as a real object store would.
//!
//! Runs as its own test binary (harness = false); `SHALE_BACKUP_CRASH_CHILD=<dir>` selects the
//! child, which keeps its data in `<dir>/data` and its repository in `<dir>/repo`, or, with
//! `SHALE_BACKUP_CRASH_S3=<endpoint> <location>`, on S3.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use arrow::array::{Int32Array, Int64Array, RecordBatch};
use shale_backup::{Backups, BackupsOptions, JobState, TableRef};
use shale_engine::{
    Column, ColumnType, Distribution, Engine, PartitionDefinition, PartitionValues, Partitioning,
    ScanOptions, Snapshot, TableDefinition,
};

/// Rows per load: days 0..30, so 10 rows in each partition.
const ROWS_PER_LOAD: i64 = 30;
const ROWS_PER_PARTITION: i64 = 10;
const PARTITIONS: [&str; 3] = ["p1", "p2", "p3"];
const LIVE: &str = "live";
const RESTORED: &str = "restored";
const TABLE: &str = "loads";
const REPO: &str = "repo";
const WAIT: Duration = Duration::from_secs(60);
/// Names the child's S3 repository: `<endpoint> <location>`.
const S3_CHILD_ENV: &str = "SHALE_BACKUP_CRASH_S3";

/// `loads(id BIGINT key, day INT)` RANGE(day): p1 < 10 <= p2 < 20 <= p3, 2 buckets.
fn definition(name: &str) -> TableDefinition {
    let mut def = TableDefinition::new(
        name,
        vec![
            Column::new("id", ColumnType::BigInt).key().not_null(),
            Column::new("day", ColumnType::Int).not_null(),
        ],
    );
    def.partitioning = Partitioning::Range {
        column: "day".into(),
    };
    def.partitions = vec![
        PartitionDefinition {
            name: "p1".into(),
            values: PartitionValues::LessThan(Some("10".into())),
        },
        PartitionDefinition {
            name: "p2".into(),
            values: PartitionValues::LessThan(Some("20".into())),
        },
        PartitionDefinition {
            name: "p3".into(),
            values: PartitionValues::LessThan(None),
        },
    ];
    def.distribution = Distribution::hash(vec!["id".into()], 2);
    def
}

fn batch(engine: &Engine, db: &str, table: &str, load: i64) -> RecordBatch {
    let schema = engine
        .snapshot()
        .get_table(db, table)
        .unwrap()
        .schema
        .arrow_schema()
        .clone();
    let ids: Vec<i64> = (0..ROWS_PER_LOAD)
        .map(|k| load * ROWS_PER_LOAD + k)
        .collect();
    let days: Vec<i32> = (0..ROWS_PER_LOAD as i32).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(Int32Array::from(days)),
        ],
    )
    .unwrap()
}

fn partition_of(day: i32) -> &'static str {
    match day {
        ..10 => "p1",
        10..20 => "p2",
        _ => "p3",
    }
}

/// A table's state: per partition it holds, the number of loads it holds (a prefix `0..m`), or
/// an error if a partition holds a partial load, a duplicate or a gap. `None`: no table.
fn table_state(
    engine: &Engine,
    snapshot: &Snapshot,
    db: &str,
) -> Result<Option<BTreeMap<String, i64>>, String> {
    let Ok(table) = snapshot.get_table(db, TABLE) else {
        return Ok(None);
    };
    let mut counts: BTreeMap<String, BTreeMap<i64, i64>> = table
        .partitions
        .iter()
        .map(|p| (p.name.clone(), BTreeMap::new()))
        .collect();
    let scan = engine
        .scan(snapshot, db, TABLE, ScanOptions::default())
        .map_err(|e| format!("scan {db}: {e}"))?;
    for b in scan {
        let b = b.map_err(|e| format!("scan {db}: {e}"))?;
        let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let days = b.column(1).as_any().downcast_ref::<Int32Array>().unwrap();
        for (id, day) in ids.values().iter().zip(days.values()) {
            let part = partition_of(*day);
            let loads = counts
                .get_mut(part)
                .ok_or_else(|| format!("{db}: row {id} in missing partition {part}"))?;
            *loads.entry(id / ROWS_PER_LOAD).or_default() += 1;
        }
    }
    let mut state = BTreeMap::new();
    for (part, loads) in counts {
        for (i, (load, count)) in loads.iter().enumerate() {
            if *load != i as i64 {
                return Err(format!(
                    "{db}.{part}: load {load} present, load {i} missing"
                ));
            }
            if *count != ROWS_PER_PARTITION {
                return Err(format!("{db}.{part}: load {load} is partial: {count} rows"));
            }
        }
        state.insert(part, loads.len() as i64);
    }
    Ok(Some(state))
}

/// A tiny xorshift, seeded per process.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn child(dir: &Path) {
    let engine = Engine::open(dir.join("data")).expect("child open");
    let options = BackupsOptions {
        state_hook: Some(Arc::new(|id, state| println!("state {id} {state:?}"))),
        ..BackupsOptions::default()
    };
    let b = Backups::open_with(engine.clone(), options).expect("child backups");
    if !b.repositories().iter().any(|r| r.repo_name == REPO) {
        let (location, properties) = match std::env::var(S3_CHILD_ENV) {
            Ok(s3) => {
                let (endpoint, location) = s3.split_once(' ').expect("endpoint and location");
                (location.to_string(), common::s3::s3_properties(endpoint))
            }
            Err(_) => (
                format!("file://{}", dir.join("repo").display()),
                BTreeMap::new(),
            ),
        };
        b.create_repository(REPO, &location, false, properties)
            .expect("create repository");
    }
    if engine.snapshot().database(LIVE).is_none() {
        engine.create_database(LIVE).expect("create db");
    }
    if engine.snapshot().get_table(LIVE, TABLE).is_err() {
        engine
            .create_table(LIVE, definition(TABLE))
            .expect("create table");
    }
    // A kill between creating and dropping a scratch table leaves it behind: drop it now.
    let leftovers: Vec<String> = engine
        .snapshot()
        .database(LIVE)
        .unwrap()
        .tables
        .keys()
        .cloned()
        .collect();
    for name in leftovers.iter().filter(|n| n.as_str() != TABLE) {
        engine
            .drop_table(LIVE, name)
            .expect("drop leftover scratch table");
    }
    let live = table_state(&engine, &engine.snapshot(), LIVE)
        .expect("live table")
        .expect("live table exists");
    let mut next = live.values().copied().max().unwrap_or(0);
    let mut rng = Rng(u64::from(std::process::id()) * 0x9e37_79b9 + next as u64 + 1);
    let nonce = rng.next() % 1_000_000;
    let mut step = 0u64;
    loop {
        step += 1;
        engine
            .load(LIVE, TABLE, [batch(&engine, LIVE, TABLE, next)])
            .expect("load");
        println!("ack {next}");
        next += 1;
        if step % 3 == 1 {
            // The snapshot name records how many loads it holds.
            let name = format!("s{next}_{nonce}_{step}");
            let id = b
                .backup(
                    LIVE,
                    &name,
                    REPO,
                    vec![(TABLE.into(), None)],
                    BTreeMap::new(),
                )
                .expect("submit backup");
            let state = b.wait(id, WAIT);
            assert_eq!(state, Some(JobState::Finished), "{:?}", b.job(id));
            println!("backup-done {name}");
        }
        if step.is_multiple_of(2) {
            let ok: Vec<String> = b
                .list_snapshots(REPO)
                .expect("list")
                .into_iter()
                .filter(|s| s.status == "OK")
                .map(|s| s.snapshot)
                .collect();
            if !ok.is_empty() {
                let name = &ok[(rng.next() % ok.len() as u64) as usize];
                let loads: i64 = name[1..name.find('_').unwrap()].parse().unwrap();
                let mut table = TableRef::new(TABLE);
                // The first restore creates the table whole; later ones replace all or some
                // of its partitions.
                let exists = engine.snapshot().get_table(RESTORED, TABLE).is_ok();
                let parts: Vec<&str> = match rng.next() % 3 {
                    _ if !exists => PARTITIONS.to_vec(),
                    0 => PARTITIONS.to_vec(),
                    _ => PARTITIONS
                        .iter()
                        .copied()
                        .filter(|_| rng.next().is_multiple_of(2))
                        .collect(),
                };
                let parts = if parts.is_empty() { vec!["p2"] } else { parts };
                if parts.len() < PARTITIONS.len() {
                    table = table.partitions(parts.iter().copied());
                }
                println!("restore-begin {loads} {}", parts.join(","));
                let id = b
                    .restore(RESTORED, name, REPO, vec![table], BTreeMap::new())
                    .expect("submit restore");
                match b.wait(id, WAIT) {
                    Some(JobState::Finished) => println!("restore-done"),
                    other => panic!("restore {other:?}: {:?}", b.job(id)),
                }
            }
            if ok.len() > 5 {
                // Said first: a kill during the drop leaves the snapshot not listed OK.
                println!("dropping {}", ok[0]);
                b.drop_snapshot(REPO, &ok[0]).expect("drop snapshot");
                println!("dropped {}", ok[0]);
            }
        }
        if step.is_multiple_of(4) {
            engine.compact_with(LIVE, TABLE, 2).expect("compact");
        }
        if step.is_multiple_of(5) {
            let name = format!("scratch{step}");
            engine
                .create_table(LIVE, definition(&name))
                .expect("scratch");
            engine
                .load(LIVE, &name, [batch(&engine, LIVE, &name, 0)])
                .expect("scratch load");
            engine
                .drop_partition(LIVE, &name, "p2")
                .expect("drop partition");
            engine.drop_table(LIVE, &name).expect("drop scratch");
        }
    }
}

/// What the parent knows from the child's output.
#[derive(Debug, Default)]
struct Model {
    acked: BTreeSet<i64>,
    /// The restored table: loads per partition, or `None` before the first restore.
    restored: Option<BTreeMap<String, i64>>,
    /// The state the restore in flight (begun, not acknowledged) would give.
    pending: Option<BTreeMap<String, i64>>,
    /// Snapshots the child began to drop (listing order is by name, so the last backup's
    /// snapshot may be among them).
    dropped: BTreeSet<String>,
}

impl Model {
    fn read(&mut self, line: &str) {
        if let Some(n) = line.strip_prefix("ack ") {
            self.acked.insert(n.parse().unwrap());
        } else if let Some(rest) = line.strip_prefix("restore-begin ") {
            let (loads, parts) = rest.split_once(' ').unwrap();
            let loads: i64 = loads.parse().unwrap();
            let mut after = self.restored.clone().unwrap_or_default();
            for p in parts.split(',') {
                after.insert(p.to_string(), loads);
            }
            self.pending = Some(after);
        } else if let Some(name) = line.strip_prefix("dropping ") {
            self.dropped.insert(name.to_string());
        } else if line == "restore-done" {
            self.restored = self.pending.take();
        }
    }
}

/// Relative paths of every file under `dir/segments`, sorted.
fn segment_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("segments")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

fn referenced_files(snapshot: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for d in snapshot.databases.values() {
        for t in d.tables.values() {
            for p in &t.partitions {
                out.extend(p.segments().map(|s| s.meta.path.clone()));
            }
        }
    }
    out.sort();
    out
}

#[derive(Debug, Default)]
struct Stats {
    old_after_aimed: usize,
    new_after_aimed: usize,
    /// Restores in flight found committed, whose job then showed FINISHED.
    finished_after_commit: usize,
    /// Reopens whose last backup showed FINISHED with its snapshot listed (directory runs).
    backups_finished_after_reopen: usize,
    verified: usize,
}

fn check(
    dir: &Path,
    on_s3: bool,
    model: &mut Model,
    aimed: bool,
    verified: &mut BTreeSet<(String, Vec<String>)>,
    stats: &mut Stats,
) -> Result<(), String> {
    let data = dir.join("data");
    let engine = Engine::open(&data).map_err(|e| format!("reopen: {e}"))?;
    let snapshot = engine.snapshot();
    if let Some(live) = table_state(&engine, &snapshot, LIVE)? {
        let loads: BTreeSet<i64> = live.values().copied().collect();
        if loads.len() > 1 {
            return Err(format!("live partitions hold different loads: {live:?}"));
        }
        let m = loads.first().copied().unwrap_or(0);
        if let Some(missing) = model.acked.iter().find(|a| **a >= m) {
            return Err(format!(
                "acknowledged load {missing} is missing ({m} present)"
            ));
        }
    } else if !model.acked.is_empty() {
        return Err("live table lost".into());
    }
    let restored = table_state(&engine, &snapshot, RESTORED)?;
    let before = model.restored.clone();
    // A restore in flight whose commit landed (and changed something): its job must show
    // FINISHED after reopen, whether or not its final record was written before the kill.
    let mut committed_in_flight = false;
    match model.pending.take() {
        Some(after) if restored.as_ref() == Some(&after) => {
            if aimed {
                stats.new_after_aimed += 1;
            }
            committed_in_flight = before.as_ref() != Some(&after);
            model.restored = Some(after);
        }
        Some(after) if restored == before => {
            if aimed {
                stats.old_after_aimed += 1;
            }
            let _ = after;
        }
        Some(after) => {
            return Err(format!(
                "half-restored table: {restored:?}, neither {before:?} nor {after:?}"
            ));
        }
        None if restored != before => {
            return Err(format!(
                "restored table is {restored:?}, expected {before:?}"
            ));
        }
        None => {}
    }
    let on_disk = segment_files(&data);
    let named = referenced_files(&snapshot);
    if on_disk != named {
        let orphans: Vec<_> = on_disk.iter().filter(|f| !named.contains(f)).collect();
        let missing: Vec<_> = named.iter().filter(|f| !on_disk.contains(f)).collect();
        return Err(format!(
            "after reopen: orphaned files {orphans:?}, missing files {missing:?}"
        ));
    }
    drop(snapshot);
    let b = Backups::open(engine.clone()).map_err(|e| format!("backups open: {e}"))?;
    if committed_in_flight {
        let last = b
            .show_restore(Some(RESTORED))
            .into_iter()
            .max_by_key(|j| j.job_id);
        if last.as_ref().map(|j| j.state) != Some(JobState::Finished) {
            return Err(format!(
                "the restore in flight committed, but its job shows {:?} after reopen",
                last.map(|j| (j.job_id, j.state, j.status))
            ));
        }
        stats.finished_after_commit += 1;
    }
    if b.repositories().iter().any(|r| r.repo_name == REPO) {
        let listed = b.list_snapshots(REPO).map_err(|e| format!("list: {e}"))?;
        // The last backup's record agrees with the repository: its snapshot is listed OK
        // exactly when its job shows FINISHED, whether or not the end record was written
        // before the kill (unless the child dropped that snapshot since). On S3 the next open
        // does not look: a backup killed after its commit shows CANCELLED there.
        if !on_s3
            && let Some(job) = b.show_backup(Some(LIVE)).into_iter().next()
            && !model.dropped.contains(&job.snapshot_name)
        {
            let ok = listed
                .iter()
                .any(|s| s.snapshot == job.snapshot_name && s.status == "OK");
            if ok != (job.state == JobState::Finished) {
                return Err(format!(
                    "backup {} shows {:?} ({}) after reopen, its snapshot listed OK: {ok}",
                    job.snapshot_name, job.state, job.status
                ));
            }
            if ok {
                stats.backups_finished_after_reopen += 1;
            }
        }
        for s in listed.iter().filter(|s| s.status == "OK") {
            // A listed snapshot never changes; verify each once.
            if !verified.insert((s.snapshot.clone(), s.timestamps.clone())) {
                continue;
            }
            let report = b
                .verify(REPO, &s.snapshot, None, true)
                .map_err(|e| format!("verify {}: {e}", s.snapshot))?;
            if !report.is_ok() {
                return Err(format!(
                    "snapshot {} is listed OK but fails VERIFY: {:?}",
                    s.snapshot, report.problems
                ));
            }
            stats.verified += 1;
        }
    }
    Ok(())
}

/// After all kills: a new backup and a restore of it work and give back the live rows.
fn final_round_trip(dir: &Path) -> Result<(), String> {
    let engine = Engine::open(dir.join("data")).map_err(|e| format!("reopen: {e}"))?;
    let b = Backups::open(engine.clone()).map_err(|e| e.to_string())?;
    let id = b
        .backup(LIVE, "final", REPO, vec![], BTreeMap::new())
        .map_err(|e| e.to_string())?;
    if b.wait(id, WAIT) != Some(JobState::Finished) {
        return Err(format!("final backup: {:?}", b.job(id)));
    }
    if !b
        .verify(REPO, "final", None, true)
        .map_err(|e| e.to_string())?
        .is_ok()
    {
        return Err("final snapshot fails VERIFY".into());
    }
    for target in [RESTORED, "fresh"] {
        let id = b
            .restore(target, "final", REPO, vec![], BTreeMap::new())
            .map_err(|e| e.to_string())?;
        if b.wait(id, WAIT) != Some(JobState::Finished) {
            return Err(format!("final restore into {target}: {:?}", b.job(id)));
        }
        let snapshot = engine.snapshot();
        let live = table_state(&engine, &snapshot, LIVE)?;
        let got = table_state(&engine, &snapshot, target)?;
        if got != live {
            return Err(format!("restore into {target}: {got:?}, live {live:?}"));
        }
    }
    Ok(())
}

/// One run of the harness: where its repository lives and how much it must do.
struct Run {
    name: &'static str,
    /// `<endpoint> <location>` of an S3 repository; `None`: a directory.
    s3: Option<String>,
    kills: usize,
    time_limit: Duration,
    /// At least this many kills, acknowledged loads, deep-verified snapshots, and kills while a
    /// backup or a restore was transferring files; and one restore finished.
    enough: (usize, usize, usize, usize),
    /// Delay before an unaimed kill: `min + rand % spread` microseconds.
    delay_us: (u64, u64),
}

/// Runs the kills of `run`; returns its summary line, or what went wrong.
fn harness(exe: &Path, run: &Run) -> Result<String, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut rng = Rng(0x5eed_b4c0_0001);
    let mut model = Model::default();
    let mut verified = BTreeSet::new();
    let mut stats = Stats::default();
    let mut kills = 0;
    let mut aimed_kills = 0;
    // Kills that struck while a backup was uploading or a restore downloading.
    let (mut in_upload, mut in_download) = (0, 0);
    let mut failure = None;
    while kills < run.kills && started.elapsed() < run.time_limit {
        // Every third kill waits for a restore to reach COMMITTING, then strikes within 2 ms:
        // before, during or just after the engine commit.
        let aimed = kills % 3 == 2;
        let delay = Duration::from_micros(run.delay_us.0 + rng.next() % run.delay_us.1);
        let strike = Duration::from_micros(rng.next() % 2_000);
        let mut command = Command::new(exe);
        command
            .env("SHALE_BACKUP_CRASH_CHILD", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(s3) = &run.s3 {
            command.env(S3_CHILD_ENV, s3);
        }
        let mut proc = command.spawn().expect("spawn child");
        let stdout = proc.stdout.take().expect("child stdout");
        let (commit_tx, commit_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut restoring = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("restore-begin") {
                    restoring = true;
                } else if restoring && line.ends_with(" Committing") {
                    let _ = commit_tx.send(());
                } else if line == "restore-done" {
                    restoring = false;
                }
                lines.push(line);
            }
            lines
        });
        if aimed {
            if commit_rx.recv_timeout(Duration::from_secs(5)).is_ok() {
                std::thread::sleep(strike);
            }
        } else {
            std::thread::sleep(delay);
        }
        let _ = proc.kill();
        let status = proc.wait().expect("wait child");
        kills += 1;
        aimed_kills += usize::from(aimed);
        let lines = reader.join().unwrap_or_default();
        // The last state a job reached before the kill, if it was still running.
        match lines
            .iter()
            .rev()
            .find(|l| l.starts_with("state ") || l.ends_with("-done"))
        {
            Some(l) if l.ends_with(" Uploading") => in_upload += 1,
            Some(l) if l.ends_with(" Downloading") => in_download += 1,
            _ => {}
        }
        for line in &lines {
            model.read(line);
        }
        if status.success() || status.code().is_some() {
            // The child never exits on its own: it panicked (an acknowledged step failed).
            failure = Some(format!(
                "kill {kills}: the child exited by itself: {status}"
            ));
            break;
        }
        if let Err(e) = check(
            dir.path(),
            run.s3.is_some(),
            &mut model,
            aimed,
            &mut verified,
            &mut stats,
        ) {
            failure = Some(format!(
                "kill {kills} (aimed {aimed}, delay {delay:?}): {e}"
            ));
            break;
        }
    }
    if failure.is_none()
        && let Err(e) = final_round_trip(dir.path())
    {
        failure = Some(format!("after {kills} kills: {e}"));
    }
    let summary = format!(
        "backup crash harness ({}): {kills} kill points ({aimed_kills} aimed at restore \
         COMMITTING: {} left the old state, {} the new; {} restores in flight found committed, \
         all FINISHED; {} reopens whose last backup was FINISHED and listed OK; {in_upload} during a backup's upload, {in_download} during a restore's \
         download) in {:.1} s, {} acknowledged loads, {} snapshots deep-verified, restored table \
         {:?}",
        run.name,
        stats.old_after_aimed,
        stats.new_after_aimed,
        stats.finished_after_commit,
        stats.backups_finished_after_reopen,
        started.elapsed().as_secs_f64(),
        model.acked.len(),
        stats.verified,
        model.restored,
    );
    println!("{summary}");
    if let Some(f) = failure {
        return Err(format!("{}: {f}", run.name));
    }
    let (min_kills, min_acked, min_verified, min_transfers) = run.enough;
    if kills < min_kills
        || model.acked.len() < min_acked
        || stats.verified < min_verified
        || in_upload + in_download < min_transfers
        || model.restored.is_none()
    {
        return Err(format!("{}: too little progress", run.name));
    }
    Ok(summary)
}

fn main() {
    if let Ok(dir) = std::env::var("SHALE_BACKUP_CRASH_CHILD") {
        child(Path::new(&dir));
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let runs = [
        Run {
            name: "directory",
            s3: None,
            kills: 120,
            time_limit: Duration::from_secs(80),
            enough: (50, 20, 5, 1),
            delay_us: (2_000, 200_000),
        },
        Run {
            name: "S3",
            s3: Some(format!(
                "{} {}",
                common::s3::moto().endpoint(),
                common::s3::fresh_location()
            )),
            kills: 30,
            time_limit: Duration::from_secs(60),
            enough: (10, 10, 3, 1),
            // Each child backs up first and restores second; on S3 both take longer, so that
            // some children live to finish a restore, strike up to 1.5 s after the start.
            delay_us: (20_000, 1_500_000),
        },
    ];
    let results: Vec<Result<String, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|run| {
                let exe = &exe;
                s.spawn(move || harness(exe, run))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("harness panicked".into())))
            .collect()
    });
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    println!(
        "test result: {}. {} runs",
        if failures.is_empty() { "ok" } else { "FAILED" },
        runs.len()
    );
    if !failures.is_empty() {
        for f in failures {
            eprintln!("backup crash harness failed: {f}");
        }
        std::process::exit(1);
    }
}
