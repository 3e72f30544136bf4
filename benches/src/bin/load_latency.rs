//! Load latency while full backups run, with and without background copies yielding to the
//! engine's foreground commits (`BackupsOptions::yield_max`), measured side by side: the same
//! table, the same probe (10,000-row loads into another database), the two settings
//! alternating round by round so the disk's drift hits both.
//!
//! cargo run --release -p shale-benches --no-default-features --features backup --bin load_latency -- [--rows N] [--rounds R] [--secs S] [--yield-ms M]

use std::time::Duration;

use shale_backup::{Backups, BackupsOptions};
use shale_benches::latency::*;
use shale_benches::*;
use shale_engine::*;

struct Args {
    rows: usize,
    rounds: usize,
    window: Duration,
    yield_max: Duration,
}

fn parse_args() -> Fallible<Args> {
    let mut args = Args {
        rows: 20_000_000,
        rounds: 3,
        window: Duration::from_secs(6),
        yield_max: BackupsOptions::default().yield_max,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--rows" => args.rows = value()?.parse()?,
            "--rounds" => args.rounds = value()?.parse()?,
            "--secs" => args.window = Duration::from_secs_f64(value()?.parse()?),
            "--yield-ms" => args.yield_max = Duration::from_millis(value()?.parse()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(args)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// Probe loads idle and during back-to-back backups, in alternating slices
/// ([`probe_alternating`]): (p99 idle, p99 during, backups done, seconds per backup).
fn round(
    engine: &Engine,
    work: &std::path::Path,
    options: BackupsOptions,
    window: Duration,
) -> Fallible<(f64, f64, usize, f64)> {
    let backups = Backups::open_with(engine.clone(), options)?;
    let (idle, during, done, busy_secs) =
        probe_alternating(engine, &backups, work.to_path_buf(), window)?;
    Ok((p99(idle), p99(during), done, busy_secs / done.max(1) as f64))
}

fn main() -> Fallible<()> {
    let args = parse_args()?;
    let dir = tempfile::Builder::new()
        .prefix("shale-load-latency")
        .tempdir_in(".")?;
    let engine = Engine::open(dir.path().join("data"))?;
    engine.create_database("bench")?;
    engine.create_table("bench", anchor_definition("t"))?;
    engine.load("bench", "t", anchor_batches(args.rows))?;
    engine.create_database("probe")?;
    engine.create_table("probe", anchor_definition("t"))?;
    println!(
        "{} rows; probe: {PROBE_ROWS}-row loads, {:.0} s idle and {:.0} s during full backups in alternating slices; yield up to {} ms per 1 MiB chunk",
        args.rows,
        args.window.as_secs_f64(),
        args.window.as_secs_f64(),
        args.yield_max.as_millis()
    );
    let settings = [("no yield", Duration::ZERO), ("yield", args.yield_max)];
    let mut ratios: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut per_backup: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for r in 0..args.rounds {
        for k in 0..2 {
            // Alternate which setting goes first.
            let i = (k + r) % 2;
            let (name, yield_max) = settings[i];
            let options = BackupsOptions {
                yield_max,
                ..BackupsOptions::default()
            };
            let work = dir.path().join(format!("repos-{r}-{i}"));
            std::fs::create_dir_all(&work)?;
            let (idle, during, done, each) = round(&engine, &work, options, args.window)?;
            println!(
                "round {r} {name:8}: p99 idle {idle:.4} s, during {during:.4} s ({:.2}x), {done} backups, {each:.3} s per backup",
                during / idle
            );
            ratios[i].push(during / idle);
            per_backup[i].push(each);
            // The repositories stay until the end (the temporary directory's removal): a
            // deletion's discards would slow the next round's loads.
        }
    }
    for (i, (name, _)) in settings.iter().enumerate() {
        println!(
            "median {name:8}: load p99 during backups / idle {:.3}, {:.3} s per backup",
            median(ratios[i].clone()),
            median(per_backup[i].clone())
        );
    }
    Ok(())
}
