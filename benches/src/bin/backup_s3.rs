//! Backup and restore throughput to a local S3 server (moto on loopback, started here) against a
//! filesystem repository (one and two files at a time) and `cp -r` + `sync` of the same segment
//! files, in the same run on the same data; then an incremental backup to S3 that must upload no
//! unchanged data object.
//!
//! `cargo run --release -p shale-benches --no-default-features --features backup --bin backup_s3
//! -- [rows] [runs]` (defaults 2000000, 3).
//! Needs python3; installs `moto[server]` with pip if it is missing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Int32Array, Int64Array, RecordBatch, StringArray};
use shale_backup::{Backups, BackupsOptions, JobState, StoreOptions};
use shale_engine::{
    Column, ColumnType, Distribution, Engine, PartitionDefinition, PartitionValues, Partitioning,
    TableDefinition,
};

type Fallible<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// moto on 127.0.0.1; killed on drop (and by its wrapper when this process's pipe closes).
struct Moto {
    port: u16,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

fn start_moto() -> Fallible<Moto> {
    let ok = Command::new("python3")
        .args(["-c", "import moto.server, flask, werkzeug"])
        .status()?
        .success();
    if !ok {
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--user", "moto[server]"])
            .status()?
            .success();
        if !installed {
            return Err("pip install 'moto[server]' failed".into());
        }
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let script = format!(
        "python3 -m moto.server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill $pid"
    );
    let child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()?;
    let moto = Moto { port, child };
    let until = Instant::now() + Duration::from_secs(60);
    while !matches!(http(port, "GET", "/"), Ok(200)) {
        if Instant::now() > until {
            return Err("moto did not start".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if http(port, "PUT", "/bench")? != 200 {
        return Err("cannot create the bucket".into());
    }
    Ok(moto)
}

fn load(engine: &Engine, rows: usize) -> Fallible<()> {
    engine.create_database("bench")?;
    let mut def = TableDefinition::new(
        "t",
        vec![
            Column::new("day", ColumnType::Int).key(),
            Column::new("name", ColumnType::Varchar(32)),
            Column::new("v", ColumnType::BigInt),
        ],
    );
    def.partitioning = Partitioning::Range {
        column: "day".into(),
    };
    def.partitions = (1..=10)
        .map(|i| PartitionDefinition {
            name: format!("p{i}"),
            values: PartitionValues::LessThan(Some((i * 10).to_string())),
        })
        .collect();
    def.distribution = Distribution::hash(vec!["name".into()], 2);
    engine.create_table("bench", def)?;
    let schema = engine
        .snapshot()
        .get_table("bench", "t")?
        .schema
        .arrow_schema()
        .clone();
    let batch_rows = 500_000;
    let mut done = 0;
    while done < rows {
        let n = batch_rows.min(rows - done);
        let base = done as i64;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from_iter_values(
                    (0..n).map(|i| ((base + i as i64) % 100) as i32),
                )),
                Arc::new(StringArray::from_iter_values((0..n).map(|i| {
                    format!("name-{:x}", (base + i as i64).wrapping_mul(2654435761))
                }))),
                Arc::new(Int64Array::from_iter_values(
                    (0..n).map(|i| (base + i as i64).wrapping_mul(7919)),
                )),
            ],
        )?;
        engine.load("bench", "t", [batch])?;
        done += n;
    }
    Ok(())
}

fn wait(b: &Backups, id: u64) -> Fallible<()> {
    match b.wait(id, Duration::from_secs(3600)) {
        Some(JobState::Finished) => Ok(()),
        other => Err(format!("job {id}: {other:?} {:?}", b.job(id).map(|j| j.status)).into()),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Fallible<()> {
    let mut args = std::env::args().skip(1);
    let rows: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(2_000_000);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let moto = start_moto()?;
    let data = tempfile::tempdir()?;
    let engine = Engine::open(data.path())?;
    load(&engine, rows)?;
    let sequential = Backups::open(engine.clone())?;
    let parallel = Backups::open_with(
        engine.clone(),
        BackupsOptions {
            store: StoreOptions {
                fs_files_in_flight: 2,
                ..StoreOptions::default()
            },
            ..BackupsOptions::default()
        },
    )?;
    let bytes: u64 = {
        let snap = engine.snapshot();
        let t = snap.get_table("bench", "t")?;
        shale_engine::manifest::table_to_def(t)
            .partitions
            .iter()
            .flat_map(|p| p.tablets.iter())
            .flat_map(|t| t.rowsets.iter())
            .flat_map(|r| r.segments.iter())
            .map(|s| s.size)
            .sum()
    };
    println!(
        "{rows} rows, {:.1} MiB of segments, median of {runs} runs",
        bytes as f64 / (1 << 20) as f64
    );
    let props: BTreeMap<String, String> = [
        ("aws.s3.access_key", "bench"),
        ("aws.s3.secret_key", "bench-secret"),
        (
            "aws.s3.endpoint",
            &format!("http://127.0.0.1:{}", moto.port),
        ),
        ("aws.s3.region", "us-east-1"),
        ("aws.s3.enable_path_style_access", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let repos = tempfile::tempdir()?;
    // The reference: cp -r of the same segment files, then sync (the backup fsyncs each file).
    let mut cp_s = Vec::new();
    for run in 0..runs {
        let target = repos.path().join(format!("cp{run}"));
        let t = Instant::now();
        let ok = Command::new("cp")
            .arg("-r")
            .arg(data.path().join("segments"))
            .arg(&target)
            .status()?
            .success()
            && Command::new("sync").status()?.success();
        if !ok {
            return Err("cp -r failed".into());
        }
        cp_s.push(t.elapsed().as_secs_f64());
    }
    let cp = median(cp_s);
    println!(
        "  cp -r + sync: {cp:.3} s ({:.1} MiB/s)",
        bytes as f64 / (1 << 20) as f64 / cp
    );
    // fs: a directory, one file at a time (the default); fs2: two at a time; s3: moto.
    for kind in ["fs", "fs2", "s3"] {
        let b = if kind == "fs2" {
            &parallel
        } else {
            &sequential
        };
        let (mut backup_s, mut restore_s) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let name = format!("{kind}{run}");
            let (location, properties) = match kind {
                "fs" | "fs2" => (
                    repos.path().join(&name).display().to_string(),
                    BTreeMap::new(),
                ),
                _ => (format!("s3://bench/{name}"), props.clone()),
            };
            b.create_repository(&name, &location, false, properties)?;
            let t = Instant::now();
            wait(
                b,
                b.backup("bench", "full", &name, vec![], BTreeMap::new())?,
            )?;
            backup_s.push(t.elapsed().as_secs_f64());
            let target = format!("restored_{name}");
            let t = Instant::now();
            wait(
                b,
                b.restore(&target, "full", &name, vec![], BTreeMap::new())?,
            )?;
            restore_s.push(t.elapsed().as_secs_f64());
            engine.drop_database(&target)?;
            if kind == "s3" && run == 0 {
                let id = b.backup("bench", "again", &name, vec![], BTreeMap::new())?;
                wait(b, id)?;
                let p = b.job_progress(id).ok_or("progress")?;
                println!(
                    "  s3 incremental backup of unchanged data: {} bytes uploaded of {}",
                    p.bytes_written, p.bytes_total
                );
                if p.bytes_written != 0 {
                    return Err("an unchanged data object was uploaded again".into());
                }
            }
        }
        let mib = bytes as f64 / (1 << 20) as f64;
        let (bk, rs) = (median(backup_s), median(restore_s));
        println!(
            "  {kind}: backup {bk:.3} s ({:.1} MiB/s), restore {rs:.3} s ({:.1} MiB/s)",
            mib / bk,
            mib / rs
        );
    }
    Ok(())
}
