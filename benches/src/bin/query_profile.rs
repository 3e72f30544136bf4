//! Runs the comparison's GROUP BY on the anchor table and prints, per query, wall and CPU time:
//! the first query of a fresh session on a freshly opened engine (segments not yet verified), then
//! repeats on the same engine. A driver for `perf record` without the rest of `compare`.
//!
//! Each run is a shale session (with its GROUP BY on dictionary codes, `shale_sql::group_by`)
//! and, right after, the same query in a DataFusion context over the same tables without that
//! rule, so the two are measured side by side; the medians and their ratio close the output.
//!
//! The table is loaded once into `$TMPDIR/shale-query-profile-<rows>` and reused.
//!
//! `SHALE_BENCH_ROWS=20000000 cargo run --release -p shale-benches --bin query_profile [runs]`

use std::sync::Arc;
use std::time::Instant;

use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(shale_sql::query::TARGET_PARTITIONS)
        .build()?;
    let (mut with_rule, mut without) = (Vec::new(), Vec::new());
    for run in 0..runs {
        // Which goes first alternates, so the first query of the engine (its segments verified
        // as they are first read) falls on each side in turn.
        for side in [run % 2, 1 - run % 2] {
            if side == 0 {
                let mut session = shale_sql::Session::new(engine.clone(), "root")?;
                let (t0, c0) = (Instant::now(), cpu_secs());
                let result = session.execute(QUERY)?;
                let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - c0);
                println!("run {run}: {wall:.4} s wall, {cpu:.4} s CPU (dictionary GROUP BY)");
                if run == 0 {
                    println!("{result:?}");
                }
                with_rule.push(wall);
                continue;
            }
            // DataFusion's own aggregate over the same scan.
            let config =
                SessionConfig::new().with_target_partitions(shale_sql::query::TARGET_PARTITIONS);
            let state = SessionStateBuilder::new()
                .with_config(config)
                .with_default_features()
                .build();
            let ctx = SessionContext::new_with_state(state);
            ctx.register_catalog(
                shale_sql::provider::CATALOG_NAME,
                Arc::new(shale_sql::provider::ShaleCatalog::new(
                    engine.clone(),
                    engine.snapshot(),
                )),
            );
            let sql = QUERY.replace("bench.t", "shale.bench.t");
            let (t0, c0) = (Instant::now(), cpu_secs());
            let groups: usize = runtime.block_on(async {
                let batches = ctx.sql(&sql).await?.collect().await?;
                Ok::<_, datafusion::error::DataFusionError>(
                    batches.iter().map(|b| b.num_rows()).sum(),
                )
            })?;
            let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - c0);
            println!(
                "run {run}: {wall:.4} s wall, {cpu:.4} s CPU (DataFusion's aggregate, {groups} groups)"
            );
            without.push(wall);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(with_rule), median(without));
    println!(
        "median: dictionary GROUP BY {a:.4} s, DataFusion's aggregate {b:.4} s, ratio {:.3}",
        a / b
    );
    Ok(())
}
