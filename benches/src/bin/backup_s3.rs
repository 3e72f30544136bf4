//! Backup and restore throughput to a local S3 server (moto on loopback, started here) against a
//! filesystem repository and `cp -r` + `sync` of the same segment files, in the same run on the
//! same data, with the peak RSS of each backup and restore over the process's RSS before it;
//! then an incremental backup to S3 that must upload no unchanged data object.
//!
//! The table has 3 partitions and 1 bucket, loaded at once, so each segment file holds a third
//! of the rows (about 11 bytes a row): 7 MiB at 2,000,000 rows, so every upload to S3 is
//! multipart (5 MiB parts) with three files in flight, as in a backup of large tablets; at
//! 6,000,000 rows each file has 5 parts and the upload buffers reach their bound. The full
//! backup and the incremental one after it are also run untimed through a proxy that counts
//! their requests (multipart uploads; data PUTs, which must be none for unchanged data).
//!
//! `cargo run --release -p shale-benches --no-default-features --features backup --bin backup_s3
//! -- [rows] [runs]` (defaults 2000000, 3).
//! Peak RSS is measured over the RSS just before each job; a restore runs after a backup in the
//! same process and mostly reuses the memory the allocator kept from it, so its figure says that
//! it needs no more than that, not what it would need alone.
//! Needs python3; installs `moto[server]` with pip if it is missing. Linux (reads
//! `/proc/self/status`; writing 5 to `/proc/self/clear_refs` resets the peak RSS).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Int32Array, Int64Array, RecordBatch, StringArray};
use shale_backup::{Backups, JobState, StoreOptions};
use shale_benches::{proc_status_bytes, reset_peak_rss};
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
        // Closing the wrapper's stdin makes it kill moto; killing the wrapper instead would
        // leave moto running, orphaned.
        drop(self.child.stdin.take());
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

/// A TCP proxy in front of moto that records the request line (`PUT /bench/key?.. HTTP/1.1`)
/// of every request passing through, without parsing bodies: it looks for a method at the start
/// of the client's stream and after each blank line, which is enough for the small objects of
/// an incremental backup and for counting multipart uploads (part bodies may contain the bytes
/// of a request line only by an improbable accident, which would add a line, never hide one).
struct RequestLines {
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl RequestLines {
    fn start(upstream: u16) -> Fallible<RequestLines> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                let (mut server_r, mut client_w) = (server, client);
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut window: Vec<u8> = Vec::new();
                    let mut buf = vec![0u8; 64 << 10];
                    while let Ok(n) = client_r.read(&mut buf) {
                        if n == 0 || server_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        window.extend_from_slice(&buf[..n]);
                        record_lines(&mut window, &seen);
                    }
                    let _ = server_w.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_r, &mut client_w);
                    let _ = client_w.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Ok(RequestLines { port, lines })
    }

    fn clear(&self) {
        self.take();
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Moves the complete request lines found in `window` into `seen`, keeping only a short tail.
fn record_lines(window: &mut Vec<u8>, seen: &Mutex<Vec<String>>) {
    const METHODS: [&[u8]; 5] = [b"GET /", b"PUT /", b"POST /", b"HEAD /", b"DELETE /"];
    let mut consumed = 0;
    let mut i = 0;
    while i < window.len() {
        let at_start = i == 0 || window[..i].ends_with(b"\r\n\r\n");
        if at_start && METHODS.iter().any(|m| window[i..].starts_with(m)) {
            match window[i..].windows(2).position(|w| w == b"\r\n") {
                Some(end) => {
                    let line = String::from_utf8_lossy(&window[i..i + end]).into_owned();
                    seen.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                    consumed = i + end;
                    i += end;
                }
                None => break,
            }
        }
        i += 1;
    }
    // Keep enough to see a blank line that ends in the next read, and an unfinished line.
    let keep_from = consumed.max(window.len().saturating_sub(4096));
    window.drain(..keep_from);
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
    // Few, large segment files: one per partition (one bucket, one load).
    def.partitions = [Some("34"), Some("67"), None]
        .into_iter()
        .enumerate()
        .map(|(i, upper)| PartitionDefinition {
            name: format!("p{i}"),
            values: PartitionValues::LessThan(upper.map(str::to_string)),
        })
        .collect();
    def.distribution = Distribution::hash(vec!["name".into()], 1);
    engine.create_table("bench", def)?;
    let schema = engine
        .snapshot()
        .get_table("bench", "t")?
        .schema
        .arrow_schema()
        .clone();
    let batch_rows = 500_000;
    let batches = (0..rows).step_by(batch_rows).map(|done| {
        let n = batch_rows.min(rows - done);
        let base = done as i64;
        RecordBatch::try_new(
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
        )
        .map_err(shale_engine::Error::from)
    });
    engine.load_results("bench", "t", batches)?;
    Ok(())
}

/// Runs `f` and returns its seconds and the peak RSS it added over the RSS before it.
fn measured(f: impl FnOnce() -> Fallible<()>) -> Fallible<(f64, u64)> {
    let base = proc_status_bytes("VmRSS:");
    reset_peak_rss();
    let t = Instant::now();
    f()?;
    let secs = t.elapsed().as_secs_f64();
    Ok((secs, proc_status_bytes("VmHWM:").saturating_sub(base)))
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
    let b = Backups::open(engine.clone())?;
    let sizes: Vec<u64> = {
        let snap = engine.snapshot();
        let t = snap.get_table("bench", "t")?;
        shale_engine::manifest::table_to_def(t)
            .partitions
            .iter()
            .flat_map(|p| p.tablets.iter())
            .flat_map(|t| t.rowsets.iter())
            .flat_map(|r| r.segments.iter())
            .map(|s| s.size)
            .collect()
    };
    let bytes: u64 = sizes.iter().sum();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let part_size = StoreOptions::default().part_size as u64;
    println!(
        "{rows} rows, {} segment files, {:.1} MiB ({:.1} to {:.1} MiB each, {} of them over one \
         {:.0} MiB part), median of {runs} runs",
        sizes.len(),
        mib(bytes),
        mib(sizes.iter().copied().min().unwrap_or(0)),
        mib(sizes.iter().copied().max().unwrap_or(0)),
        sizes.iter().filter(|&&s| s > part_size).count(),
        mib(part_size),
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
    println!("  cp -r + sync: {cp:.3} s ({:.1} MiB/s)", mib(bytes) / cp);
    // fs: a directory (StoreOptions::fs_files_in_flight at a time); s3: moto
    // (StoreOptions::files_in_flight at a time).
    let mut medians = BTreeMap::new();
    for kind in ["fs", "s3"] {
        let (mut backup_s, mut restore_s) = (Vec::new(), Vec::new());
        let (mut backup_rss, mut restore_rss) = (0, 0);
        for run in 0..runs {
            let name = format!("{kind}{run}");
            let (location, properties) = match kind {
                "fs" => (
                    repos.path().join(&name).display().to_string(),
                    BTreeMap::new(),
                ),
                _ => (format!("s3://bench/{name}"), props.clone()),
            };
            b.create_repository(&name, &location, false, properties)?;
            let (secs, rss) = measured(|| {
                wait(
                    &b,
                    b.backup("bench", "full", &name, vec![], BTreeMap::new())?,
                )
            })?;
            backup_s.push(secs);
            backup_rss = backup_rss.max(rss);
            let target = format!("restored_{name}");
            let (secs, rss) = measured(|| {
                wait(
                    &b,
                    b.restore(&target, "full", &name, vec![], BTreeMap::new())?,
                )
            })?;
            restore_s.push(secs);
            restore_rss = restore_rss.max(rss);
            engine.drop_database(&target)?;
        }
        let (bk, rs) = (median(backup_s), median(restore_s));
        println!(
            "  {kind}: backup {bk:.3} s ({:.1} MiB/s), restore {rs:.3} s ({:.1} MiB/s); \
             peak RSS over baseline: backup {:.1} MiB, restore {:.1} MiB (largest of {runs})",
            mib(bytes) / bk,
            mib(bytes) / rs,
            mib(backup_rss),
            mib(restore_rss),
        );
        medians.insert(kind, (bk, rs));
    }
    // Untimed: the request lines of a full and an incremental backup to S3, through a proxy.
    let counter = RequestLines::start(moto.port)?;
    let mut counted = props.clone();
    counted.insert(
        "aws.s3.endpoint".into(),
        format!("http://127.0.0.1:{}", counter.port),
    );
    b.create_repository("counted", "s3://bench/counted", false, counted)?;
    let data_requests = |lines: &[String], method: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with(method) && l.contains("/bench/counted/data/"))
            .count()
    };
    counter.clear();
    wait(
        &b,
        b.backup("bench", "full", "counted", vec![], BTreeMap::new())?,
    )?;
    let lines = counter.take();
    let multipart = lines
        .iter()
        .filter(|l| l.starts_with("POST ") && l.contains("/data/") && l.contains("?uploads"))
        .count();
    println!(
        "  s3 full backup: {} data PUTs (parts and single PUTs), {multipart} multipart uploads \
         for {} files",
        data_requests(&lines, "PUT "),
        sizes.len()
    );
    let id = b.backup("bench", "again", "counted", vec![], BTreeMap::new())?;
    wait(&b, id)?;
    let lines = counter.take();
    let p = b.job_progress(id).ok_or("progress")?;
    println!(
        "  s3 incremental backup of unchanged data: {} data PUTs, {} bytes uploaded of {}, \
         {} requests in all",
        data_requests(&lines, "PUT "),
        p.bytes_written,
        p.bytes_total,
        lines.len()
    );
    if data_requests(&lines, "PUT ") + data_requests(&lines, "POST ") != 0 || p.bytes_written != 0 {
        return Err("an unchanged data object was uploaded again".into());
    }
    let (fs, s3) = (medians["fs"], medians["s3"]);
    println!(
        "  time ratios: backup s3/fs {:.2}, s3/cp {:.2}, fs/cp {:.2}; restore s3/fs {:.2}, \
         s3/cp {:.2}, fs/cp {:.2}",
        s3.0 / fs.0,
        s3.0 / cp,
        fs.0 / cp,
        s3.1 / fs.1,
        s3.1 / cp,
        fs.1 / cp,
    );
    Ok(())
}
