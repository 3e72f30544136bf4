//! Crash harness: a child process loads, compacts and drops while the parent kills it with
//! SIGKILL at random points, then reopens the data directory and checks what was promised:
//! every acknowledged load is present, none partially, no unreferenced file remains, and the
//! engine keeps working.
//!
//! Runs as its own test binary (harness = false); `SHALE_CRASH_CHILD=<dir>` selects the child.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use shale_engine::*;

const ROWS_PER_LOAD: i64 = 40;
const KILLS: usize = 200;
const TIME_LIMIT: Duration = Duration::from_secs(240);

fn child(dir: &str) {
    let engine = Engine::open(dir).expect("child open");
    if engine.snapshot().database("db").is_none() {
        engine.create_database("db").expect("create db");
        engine
            .create_table("db", sales_definition("sales"))
            .expect("create table");
        println!("ready");
    }
    let ids = scan_all(&engine, &engine.snapshot(), "db", "sales");
    let mut next = ids.last().map_or(0, |m| m / ROWS_PER_LOAD + 1);
    loop {
        let start = next * ROWS_PER_LOAD;
        engine
            .load(
                "db",
                "sales",
                [sales_batch(
                    &engine,
                    "db",
                    "sales",
                    start..start + ROWS_PER_LOAD,
                )],
            )
            .expect("load");
        println!("ack {next}");
        next += 1;
        if next % 4 == 0 {
            engine.compact_with("db", "sales", 2).expect("compact");
        }
        if next % 7 == 0 {
            let name = format!("scratch{next}");
            engine
                .create_table("db", sales_definition(&name))
                .expect("scratch");
            engine
                .load("db", &name, [sales_batch(&engine, "db", &name, 0..10)])
                .expect("scratch load");
            engine.drop_table("db", &name).expect("drop scratch");
        }
    }
}

fn check(dir: &std::path::Path, acked: &[i64]) -> Result<(), String> {
    let engine = Engine::open(dir).map_err(|e| format!("reopen: {e}"))?;
    let snap = engine.snapshot();
    if snap.database("db").is_none() {
        return if acked.is_empty() {
            Ok(())
        } else {
            Err("database lost".into())
        };
    }
    let ids = scan_all(&engine, &snap, "db", "sales");
    let mut per_load = std::collections::BTreeMap::<i64, i64>::new();
    for id in &ids {
        *per_load.entry(id / ROWS_PER_LOAD).or_default() += 1;
    }
    for (load, count) in &per_load {
        if *count != ROWS_PER_LOAD {
            return Err(format!("load {load} is partial: {count} rows"));
        }
    }
    for a in acked {
        if !per_load.contains_key(a) {
            return Err(format!("acknowledged load {a} is missing"));
        }
    }
    let on_disk = segment_files(dir);
    let named = referenced_files(&snap);
    if on_disk != named {
        return Err(format!(
            "orphans after reopen: {} files on disk, {} named",
            on_disk.len(),
            named.len()
        ));
    }
    Ok(())
}

fn main() {
    if let Ok(dir) = std::env::var("SHALE_CRASH_CHILD") {
        child(&dir);
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut seed: u64 = 0x5eed_1234_abcd;
    let mut acked: Vec<i64> = Vec::new();
    let mut kills = 0;
    let mut failures = 0;
    while kills < KILLS && started.elapsed() < TIME_LIMIT {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(5_000 + seed % 300_000);
        let mut proc = Command::new(&exe)
            .env("SHALE_CRASH_CHILD", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = proc.stdout.take().expect("child stdout");
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("ack ") {
                    acks.extend(n.parse::<i64>().ok());
                }
            }
            acks
        });
        std::thread::sleep(delay);
        let _ = proc.kill();
        let _ = proc.wait();
        acked.extend(reader.join().unwrap_or_default());
        kills += 1;
        if let Err(e) = check(dir.path(), &acked) {
            eprintln!("kill {kills} after {delay:?}: {e}");
            failures += 1;
            break;
        }
    }
    let loads = acked.len();
    println!("crash harness: {kills} kill points, {loads} acknowledged loads checked");
    println!(
        "test result: {}. {} passed; {} failed",
        if failures == 0 { "ok" } else { "FAILED" },
        kills - failures,
        failures
    );
    if failures > 0 || kills < 50 || loads < 20 {
        eprintln!("crash harness failed ({failures} failures, {kills} kill points)");
        std::process::exit(1);
    }
}
