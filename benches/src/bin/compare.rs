//! The comparison harness: shale beside DuckDB and the machine's limits, on the same generated
//! rows, in one run.
//!
//! ```sh
//! cargo run --release -p shale-benches --bin compare -- [--rows N] [--runs R] [--quick] [--probe-secs S] [--no-duckdb] [--out BENCHMARKS.md]
//! ```
//!
//! Measures (median of `--runs`): shale load, bytes on disk, GROUP BY through SQL, full backup,
//! incremental backup after a 1% change to one partition, restore, peak RSS of backup and
//! restore; `cp -r` of the same engine files with `sync`, and a sequential write of as many bytes
//! with fdatasync; and DuckDB by running `benches/anchors/duckdb_anchor.py` (installing duckdb,
//! pyarrow and numpy with pip if they are missing). Prints medians and ratios and writes them to
//! `--out`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shale_backup::{Backups, BackupsOptions, JobState};
use shale_benches::latency::*;
use shale_benches::*;
use shale_engine::*;

struct Args {
    rows: usize,
    runs: usize,
    duckdb: bool,
    out: Option<PathBuf>,
    work: PathBuf,
    /// How long the load-latency probe runs, idle and then during backups.
    probe_window: Duration,
    /// The backup service's options (defaults unless `--chunk-kib` / `--files-in-flight`).
    backup: BackupsOptions,
}

fn parse_args() -> Fallible<Args> {
    let mut args = Args {
        rows: 20_000_000,
        runs: 3,
        duckdb: true,
        out: Some(PathBuf::from("BENCHMARKS.md")),
        work: std::env::temp_dir().join("shale-compare"),
        probe_window: Duration::from_secs(6),
        backup: BackupsOptions::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rows" => args.rows = it.next().ok_or("--rows N")?.parse()?,
            "--runs" => args.runs = it.next().ok_or("--runs R")?.parse()?,
            "--quick" => {
                args.rows = 1_000_000;
                args.probe_window = Duration::from_secs(1);
            }
            "--probe-secs" => {
                args.probe_window =
                    Duration::from_secs_f64(it.next().ok_or("--probe-secs S")?.parse()?)
            }
            "--no-duckdb" => args.duckdb = false,
            "--chunk-kib" => {
                args.backup.chunk_bytes = it.next().ok_or("--chunk-kib K")?.parse::<usize>()? << 10
            }
            "--files-in-flight" => {
                args.backup.store.fs_files_in_flight =
                    it.next().ok_or("--files-in-flight N")?.parse()?
            }
            "--out" => args.out = Some(PathBuf::from(it.next().ok_or("--out FILE")?)),
            "--no-out" => args.out = None,
            "--work" => args.work = PathBuf::from(it.next().ok_or("--work DIR")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    args.runs = args.runs.max(1);
    Ok(args)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn dir_bytes(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn sync() {
    let _ = Command::new("sync").status();
}

fn time<T>(f: impl FnOnce() -> Fallible<T>) -> Fallible<(f64, T)> {
    let t0 = Instant::now();
    let v = f()?;
    Ok((t0.elapsed().as_secs_f64(), v))
}

#[derive(Default)]
struct Results {
    rows: BTreeMap<&'static str, (f64, String)>,
}

impl Results {
    fn add(&mut self, name: &'static str, value: f64, unit: &str) {
        println!("{name:44} {value:>16.4} {unit}");
        self.rows.insert(name, (value, unit.to_string()));
    }

    fn get(&self, name: &str) -> Option<f64> {
        self.rows.get(name).map(|(v, _)| *v)
    }
}

#[derive(Default)]
struct Samples {
    load: Vec<f64>,
    query: Vec<f64>,
    full: Vec<f64>,
    incr: Vec<f64>,
    restore: Vec<f64>,
    cp: Vec<f64>,
    cp_sync: Vec<f64>,
    cp_repo_sync: Vec<f64>,
    verify_quick: Vec<f64>,
    verify_deep: Vec<f64>,
    cat_repo: Vec<f64>,
    load_p99_idle: Vec<f64>,
    load_p99_backup: Vec<f64>,
}

fn shale_runs(args: &Args, r: &mut Results) -> Fallible<()> {
    let batches: Vec<_> = anchor_batches(args.rows).collect();
    let mut s = Samples::default();
    let (mut bytes, mut incr_bytes, mut full_bytes, mut rss_backup, mut rss_restore) =
        (0, 0, 0, 0, 0);
    let mut done = Vec::new();
    for run in 0..args.runs {
        let work = args.work.join(format!("shale-{run}"));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        let data = work.join("data");
        sync();
        // Load (includes the fsync of every segment and of the manifest).
        let (t, engine) = time(|| {
            let engine = Engine::open(&data)?;
            engine.create_database("bench")?;
            engine.create_table("bench", anchor_definition("t"))?;
            engine.load("bench", "t", batches.iter().cloned())?;
            Ok(engine)
        })?;
        s.load.push(t);
        println!("  load {t:.4} s");
        bytes = dir_bytes(&data.join("segments"));
        // GROUP BY through SQL (DataFusion over engine scans), first query of a fresh session.
        // Every job's state changes, timed, to print where a backup or a restore spends its time.
        let states: Arc<Mutex<Vec<(u64, JobState, Instant)>>> = Arc::default();
        let seen = states.clone();
        let backups = Backups::open_with(
            engine.clone(),
            BackupsOptions {
                state_hook: Some(Arc::new(move |id, state| {
                    seen.lock().unwrap().push((id, state, Instant::now()))
                })),
                ..args.backup.clone()
            },
        )?;
        let phases = |id: u64, end: Instant| {
            let states = states.lock().unwrap();
            let mine: Vec<_> = states.iter().filter(|(j, _, _)| *j == id).collect();
            let text: Vec<String> = mine
                .iter()
                .enumerate()
                .map(|(i, (_, state, at))| {
                    let next = mine.get(i + 1).map_or(end, |(_, _, t)| *t);
                    format!("{state} {:.4}", (next - *at).as_secs_f64())
                })
                .collect();
            text.join(", ")
        };
        let mut session = shale_sql::Session::new(engine.clone(), "root")?;
        let (t, _) = time(|| {
            Ok(session.execute(
                "SELECT region, sum(amount) AS s, count(*) AS n FROM bench.t GROUP BY region ORDER BY region",
            )?)
        })?;
        s.query.push(t);
        drop(session);
        // cp -r of the same engine files, with and without sync.
        let (t, t_sync) = cp_r_then_sync(&data.join("segments"), &work.join("cp"))?;
        s.cp.push(t);
        s.cp_sync.push(t_sync);
        // Full backup.
        let repo = work.join("repo");
        backups.create_repository("r", repo.to_str().ok_or("path")?, false, BTreeMap::new())?;
        let base = proc_status_bytes("VmRSS:");
        reset_peak_rss();
        let (t, id) = time(|| {
            let id = backups.backup("bench", "full", "r", Vec::new(), BTreeMap::new())?;
            wait_job(&backups, id)?;
            Ok(id)
        })?;
        println!("  full backup {t:.4} s: {}", phases(id, Instant::now()));
        s.full.push(t);
        rss_backup = proc_status_bytes("VmHWM:").saturating_sub(base);
        full_bytes = dir_bytes(&repo);
        // Incremental: 1% more rows, all into one partition (March), then a second snapshot.
        let extra = anchor_batch(args.rows, (args.rows / 100).max(1));
        let Value::Int(march) = Value::parse("2025-03-15", &ColumnType::Datetime)? else {
            return Err("datetime".into());
        };
        let mut columns = extra.columns().to_vec();
        columns[1] = std::sync::Arc::new(arrow::array::TimestampMicrosecondArray::from(vec![
            march as i64;
            extra.num_rows()
        ]));
        let extra = arrow::array::RecordBatch::try_new(extra.schema(), columns)?;
        engine.load("bench", "t", [extra])?;
        let before = dir_bytes(&repo);
        let (t, id) = time(|| {
            let id = backups.backup("bench", "incr", "r", Vec::new(), BTreeMap::new())?;
            wait_job(&backups, id)?;
            Ok(id)
        })?;
        println!(
            "  incremental backup {t:.4} s: {}",
            phases(id, Instant::now())
        );
        s.incr.push(t);
        incr_bytes = dir_bytes(&repo).saturating_sub(before);
        // cp -r + sync of the bytes the restore reads (the repository's data files), just
        // before it: the disk's speed drifts within a run, so the restore is compared with a
        // copy measured next to it.
        let (_, t_sync) = cp_r_then_sync(&repo.join("data"), &work.join("cp-repo"))?;
        s.cp_repo_sync.push(t_sync);
        // Restore the full snapshot into a new database.
        let base = proc_status_bytes("VmRSS:");
        reset_peak_rss();
        let (t, id) = time(|| {
            let id = backups.restore("restored", "full", "r", Vec::new(), BTreeMap::new())?;
            wait_job(&backups, id)?;
            Ok(id)
        })?;
        println!("  restore {t:.4} s: {}", phases(id, Instant::now()));
        s.restore.push(t);
        rss_restore = proc_status_bytes("VmHWM:").saturating_sub(base);
        let restored = engine.snapshot().get_table("restored", "t")?.row_count();
        if restored != args.rows as u64 {
            return Err(format!("restore has {restored} rows, expected {}", args.rows).into());
        }
        // VERIFY of the full snapshot (its files are in the page cache, as they are for the
        // read they are compared with: `cat` of the same files, the cost of reading alone).
        let (t, report) = time(|| Ok(backups.verify("r", "full", None, false)?))?;
        if !report.is_ok() {
            return Err(format!("verify: {:?}", report.problems).into());
        }
        s.verify_quick.push(t);
        let (t, report) = time(|| Ok(backups.verify("r", "full", None, true)?))?;
        if !report.is_ok() {
            return Err(format!("verify deep: {:?}", report.problems).into());
        }
        s.verify_deep.push(t);
        let t0 = Instant::now();
        let status = Command::new("sh")
            .arg("-c")
            .arg("find \"$0\" -type f -name '*.parquet' -exec cat {} + > /dev/null")
            .arg(repo.join("data"))
            .status()?;
        s.cat_repo.push(t0.elapsed().as_secs_f64());
        if !status.success() {
            return Err("cat failed".into());
        }
        // Load latency, last: its back-to-back backups write (and delete) gigabytes, whose
        // write-back and discards would slow whatever is measured after them. Small loads into
        // another database for a while idle, then for as long with full backups of `bench`
        // running back to back.
        engine.create_database("probe")?;
        engine.create_table("probe", anchor_definition("t"))?;
        let (idle, during, started, _) =
            probe_alternating(&engine, &backups, work.clone(), args.probe_window)?;
        println!(
            "  probe loads: {} idle (median {:.4} s), {} during {} backups (median {:.4} s)",
            idle.len(),
            median(idle.clone()),
            during.len(),
            started,
            median(during.clone()),
        );
        s.load_p99_idle.push(p99(idle));
        s.load_p99_backup.push(p99(during));
        sync();
        drop(backups);
        drop(engine);
        // The run's files stay until the last run has ended: deleting gigabytes here would
        // make the next run's fsyncs issue this one's discards (the root file system is
        // mounted with `discard`), which showed as incremental backups of 2 ms in a first run
        // and 8 ms in the next ones.
        done.push(work);
    }
    for work in done {
        let _ = std::fs::remove_dir_all(&work);
    }
    sync();
    let rows = args.rows as f64;
    r.add("shale_load_s", median(s.load.clone()), "s");
    r.add("shale_load_rows_per_s", rows / median(s.load), "rows/s");
    r.add("shale_bytes_on_disk", bytes as f64, "bytes");
    r.add("shale_groupby_first_s", median(s.query), "s");
    r.add("shale_full_backup_s", median(s.full), "s");
    r.add("shale_full_backup_repo_bytes", full_bytes as f64, "bytes");
    r.add("shale_incremental_backup_s", median(s.incr), "s");
    r.add("shale_incremental_backup_bytes", incr_bytes as f64, "bytes");
    r.add("shale_restore_s", median(s.restore), "s");
    r.add(
        "shale_backup_peak_rss_over_base",
        rss_backup as f64,
        "bytes",
    );
    r.add(
        "shale_restore_peak_rss_over_base",
        rss_restore as f64,
        "bytes",
    );
    r.add("shale_load_p99_idle_s", median(s.load_p99_idle), "s");
    r.add(
        "shale_load_p99_during_backup_s",
        median(s.load_p99_backup),
        "s",
    );
    let mb = full_bytes as f64 / 1e6;
    let full_rows = rows;
    r.add("shale_verify_quick_s", median(s.verify_quick.clone()), "s");
    r.add(
        "shale_verify_quick_mb_per_s",
        mb / median(s.verify_quick.clone()),
        "MB/s",
    );
    r.add(
        "shale_verify_quick_rows_per_s",
        full_rows / median(s.verify_quick),
        "rows/s",
    );
    r.add("shale_verify_deep_s", median(s.verify_deep.clone()), "s");
    r.add(
        "shale_verify_deep_mb_per_s",
        mb / median(s.verify_deep.clone()),
        "MB/s",
    );
    r.add(
        "shale_verify_deep_rows_per_s",
        full_rows / median(s.verify_deep),
        "rows/s",
    );
    r.add("cat_repo_data_s", median(s.cat_repo.clone()), "s");
    r.add("cat_repo_data_mb_per_s", mb / median(s.cat_repo), "MB/s");
    r.add("cp_r_segments_s", median(s.cp), "s");
    r.add("cp_r_segments_sync_s", median(s.cp_sync), "s");
    r.add("cp_r_repo_data_sync_s", median(s.cp_repo_sync), "s");
    Ok(())
}

/// `cp -r from to` then `sync`: seconds to the end of the copy and to the end of the sync. The
/// copy is removed (and that synced) before returning.
fn cp_r_then_sync(from: &Path, to: &Path) -> Fallible<(f64, f64)> {
    sync();
    let t0 = Instant::now();
    let status = Command::new("cp").arg("-r").arg(from).arg(to).status()?;
    let copied = t0.elapsed().as_secs_f64();
    sync();
    let synced = t0.elapsed().as_secs_f64();
    if !status.success() {
        return Err("cp failed".into());
    }
    std::fs::remove_dir_all(to)?;
    sync();
    Ok((copied, synced))
}

fn fdatasync_write(args: &Args, bytes: u64, r: &mut Results) -> Fallible<()> {
    let mut vals = vec![];
    let buf = vec![0x5au8; 4 << 20];
    for run in 0..args.runs {
        let path = args.work.join(format!("seqwrite-{run}"));
        let t0 = Instant::now();
        let mut f = std::fs::File::create(&path)?;
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
        f.sync_data()?;
        vals.push(t0.elapsed().as_secs_f64());
        std::fs::remove_file(&path)?;
    }
    r.add("seq_write_fdatasync_s", median(vals), "s");
    Ok(())
}

fn duckdb(args: &Args, r: &mut Results) -> Fallible<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("anchors/duckdb_anchor.py");
    if !script.exists() {
        return Err(format!("{} not found", script.display()).into());
    }
    let have = Command::new("python3")
        .args(["-c", "import duckdb, pyarrow, numpy"])
        .status()?;
    if !have.success() {
        let ok = Command::new("python3")
            .args([
                "-m", "pip", "install", "--quiet", "duckdb", "pyarrow", "numpy",
            ])
            .status()?;
        if !ok.success() {
            return Err("pip install duckdb pyarrow numpy failed".into());
        }
    }
    let work = args.work.join("duckdb");
    let status = Command::new("python3")
        .arg(&script)
        .args(["--rows", &args.rows.to_string()])
        .args(["--runs", &args.runs.to_string(), "--threads", "2"])
        .arg("--work")
        .arg(&work)
        .status()?;
    if !status.success() {
        return Err("the DuckDB anchor script failed".into());
    }
    let text = std::fs::read_to_string(work.join("results.json"))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let field = |k: &str, f: &str| v.get(k).and_then(|x| x.get(f)).and_then(|x| x.as_f64());
    for (name, key) in [
        ("duckdb_load_s", "a_load_arrow_to_duckdb_file"),
        ("duckdb_export_s", "b_export_database_parquet"),
        ("duckdb_import_s", "d_import_database"),
        ("duckdb_groupby_first_s", "e_groupby_duckdb_table_first"),
    ] {
        if let Some(x) = field(key, "median") {
            r.add(name, x, "s");
        }
    }
    if let Some(b) = field("a_load_arrow_to_duckdb_file", "db_bytes") {
        r.add("duckdb_file_bytes", b, "bytes");
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn main() -> Fallible<()> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.work)?;
    let mut r = Results::default();
    println!(
        "shale compare: {} rows, {} runs (medians)",
        args.rows, args.runs
    );
    shale_runs(&args, &mut r)?;
    let bytes = r.get("shale_bytes_on_disk").unwrap_or(0.0) as u64;
    fdatasync_write(&args, bytes.max(1 << 20), &mut r)?;
    if args.duckdb
        && let Err(e) = duckdb(&args, &mut r)
    {
        eprintln!("DuckDB anchor not measured: {e}");
    }
    let ratio = |a: &str, b: &str| match (r.get(a), r.get(b)) {
        (Some(x), Some(y)) if y > 0.0 => format!("{:.3}", x / y),
        _ => "n/a".to_string(),
    };
    let ratios = [
        (
            "full backup time / cp -r + sync time (goal <= 1.11, i.e. >= 0.9x cp's speed)",
            ratio("shale_full_backup_s", "cp_r_segments_sync_s"),
        ),
        (
            "full backup time / DuckDB EXPORT DATABASE time (goal <= 0.25)",
            ratio("shale_full_backup_s", "duckdb_export_s"),
        ),
        (
            "incremental / full backup time (goal <= 0.02)",
            ratio("shale_incremental_backup_s", "shale_full_backup_s"),
        ),
        (
            "incremental / full backup bytes written (goal <= 0.02)",
            ratio(
                "shale_incremental_backup_bytes",
                "shale_full_backup_repo_bytes",
            ),
        ),
        (
            "restore time / cp -r + sync time of the engine's segments (goal <= 1.11)",
            ratio("shale_restore_s", "cp_r_segments_sync_s"),
        ),
        (
            "restore time / cp -r + sync of the repository files it reads, measured just before (goal <= 1.11)",
            ratio("shale_restore_s", "cp_r_repo_data_sync_s"),
        ),
        (
            "VERIFY quick time / cat of the same files (page cache)",
            ratio("shale_verify_quick_s", "cat_repo_data_s"),
        ),
        (
            "VERIFY deep time / cat of the same files (page cache)",
            ratio("shale_verify_deep_s", "cat_repo_data_s"),
        ),
        (
            "restore time / DuckDB IMPORT DATABASE time (goal <= 0.25)",
            ratio("shale_restore_s", "duckdb_import_s"),
        ),
        (
            "load time / DuckDB load time (goal <= 1.0)",
            ratio("shale_load_s", "duckdb_load_s"),
        ),
        (
            "GROUP BY time / DuckDB GROUP BY time (goal <= 1.5, then 1.0)",
            ratio("shale_groupby_first_s", "duckdb_groupby_first_s"),
        ),
        (
            "load p99 during a backup / idle load p99 (goal <= 1.2)",
            ratio("shale_load_p99_during_backup_s", "shale_load_p99_idle_s"),
        ),
        (
            "bytes on disk / DuckDB file bytes (goal <= 1.0)",
            ratio("shale_bytes_on_disk", "duckdb_file_bytes"),
        ),
    ];
    println!();
    for (k, v) in &ratios {
        println!("{k:84} {v}");
    }
    if let Some(out) = &args.out {
        let mut md = String::from("# shale benchmarks\n\n");
        md.push_str(&format!(
            "Written by `cargo run --release -p shale-benches --bin compare -- --rows {} --runs {}` \
             on {} ({} cores). Medians of {} runs, shale and the anchors measured side by side in \
             one run.\n\n",
            args.rows,
            args.runs,
            today(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            args.runs
        ));
        md.push_str(&format!(
            "Machine: the 2-core VM described in `.library/env` (shared: read the ratios, measured \
             side by side). DuckDB via `benches/anchors/duckdb_anchor.py` with 2 threads. The \
             incremental backup adds 1% of the rows to one of the 12 partitions. The load-latency \
             probe loads {PROBE_ROWS}-row batches into another database for {:.0} s idle and \
             for {:.0} s while full backups of the table run back to back, each into a new \
             repository (removed after the window), in alternating slices (idle, busy, busy, \
             idle, ...) so that a drift falls on both sides. Peak RSS is VmHWM over \
             the RSS before the job (the generated rows are already resident).\n\n",
            args.probe_window.as_secs_f64(),
            args.probe_window.as_secs_f64(),
        ));
        md.push_str("| metric | value | unit |\n|---|---:|---|\n");
        for (k, (v, u)) in &r.rows {
            md.push_str(&format!("| {k} | {v:.4} | {u} |\n"));
        }
        md.push_str("\n| ratio | value |\n|---|---:|\n");
        for (k, v) in &ratios {
            md.push_str(&format!("| {k} | {v} |\n"));
        }
        // Sections written by other benchmarks (`## ...`) are kept.
        if let Ok(previous) = std::fs::read_to_string(out)
            && let Some(at) = previous.find("\n## ")
        {
            md.push_str(&previous[at..]);
        }
        std::fs::write(out, md)?;
        println!("wrote {}", out.display());
    }
    let _ = std::fs::remove_dir_all(&args.work);
    Ok(())
}

fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
