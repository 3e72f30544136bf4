//! Runs the comparison's GROUP BY on the anchor table and prints, per query, wall and CPU time:
//! the first query of a fresh session on a freshly opened engine (segments not yet verified), then
//! repeats on the same engine. A driver for `perf record` without the rest of `compare`.
//!
//! The table is loaded once into `$TMPDIR/shale-query-profile-<rows>` and reused.
//!
//! `SHALE_BENCH_ROWS=20000000 cargo run --release -p shale-benches --bin query_profile [runs]`

use std::time::Instant;

use shale_benches::*;
use shale_engine::*;

const QUERY: &str =
    "SELECT region, sum(amount) AS s, count(*) AS n FROM bench.t GROUP BY region ORDER BY region";

/// CPU seconds (user + system) this process has used, from `/proc/self/stat` (Linux; 0 elsewhere).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on every Linux we run on.
    ticks as f64 / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows = rows_from_env(20_000_000);
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let dir = std::env::temp_dir().join(format!("shale-query-profile-{rows}"));
    if !dir.join("CURRENT").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        loaded_engine(&dir, rows)?;
    }
    let engine = Engine::open(&dir)?;
    for run in 0..runs {
        let mut session = shale_sql::Session::new(engine.clone(), "root")?;
        let (t0, c0) = (Instant::now(), cpu_secs());
        let result = session.execute(QUERY)?;
        let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - c0);
        println!("run {run}: {wall:.4} s wall, {cpu:.4} s CPU");
        if run == 0 {
            println!("{result:?}");
        }
    }
    Ok(())
}
