//! The comparison harness in its quick mode, once per CI run, so that it keeps working.
//!
//! No speed is asserted (the machine is shared and noisy): the test checks that the harness runs
//! end to end — load, GROUP BY, cp, backups, restore with its row-count check, the load-latency
//! probe, DuckDB's anchor script — and reports every metric and ratio it promises.

use std::process::Command;

#[test]
fn quick_mode_measures_every_metric() {
    let work = tempfile::tempdir().expect("temp dir");
    let out = work.path().join("BENCHMARKS.md");
    let output = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(["--quick", "--runs", "1", "--work"])
        .arg(work.path().join("work"))
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run the compare binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "compare --quick failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("shale compare: 1000000 rows"),
        "quick mode is 1 M rows:\n{stdout}"
    );
    let md = std::fs::read_to_string(&out).expect("BENCHMARKS.md written");
    for metric in [
        "shale_load_rows_per_s",
        "shale_bytes_on_disk",
        "shale_groupby_first_s",
        "shale_full_backup_s",
        "shale_incremental_backup_bytes",
        "shale_restore_s",
        "shale_backup_peak_rss_over_base",
        "shale_restore_peak_rss_over_base",
        "shale_load_p99_idle_s",
        "shale_load_p99_during_backup_s",
        "cp_r_segments_sync_s",
        "seq_write_fdatasync_s",
        "duckdb_load_s",
        "duckdb_export_s",
        "duckdb_import_s",
        "duckdb_groupby_first_s",
        "duckdb_file_bytes",
    ] {
        let line = md
            .lines()
            .find(|l| l.starts_with(&format!("| {metric} |")))
            .unwrap_or_else(|| panic!("{metric} missing from BENCHMARKS.md:\n{md}"));
        let value: f64 = line
            .split('|')
            .nth(2)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{metric} has no number: {line}"));
        assert!(
            value.is_finite() && value >= 0.0,
            "{metric} = {value}: {line}"
        );
    }
    // Every ratio against an anchor was computed (none "n/a": both sides measured).
    let ratios: Vec<&str> = md.lines().filter(|l| l.contains("(goal")).collect();
    assert!(ratios.len() >= 10, "ratios missing:\n{md}");
    for line in ratios {
        assert!(!line.contains("n/a"), "ratio not computed: {line}");
    }
}
