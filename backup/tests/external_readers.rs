//! A backed-up table is readable by pyarrow and DuckDB from `meta.json`'s file list alone.

mod common;

use std::process::Command;

use common::*;

fn python_with_pyarrow_and_duckdb() -> &'static str {
    let probe = Command::new("python3")
        .args(["-c", "import pyarrow, duckdb"])
        .output();
    match probe {
        Err(e) => panic!("python3 is needed for this test and could not be run: {e}"),
        Ok(o) if o.status.success() => {}
        Ok(_) => {
            let install = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "pyarrow", "duckdb"])
                .status()
                .expect("python3 -m pip could not be run");
            assert!(install.success(), "pip install pyarrow duckdb failed");
        }
    }
    "python3"
}

const SCRIPT: &str = r#"
import json, sys, os
import pyarrow.parquet as pq
import pyarrow as pa
import duckdb
root, table = sys.argv[1], sys.argv[2]
meta = json.load(open(os.path.join(root, "snapshots", "snap", "meta.json")))
t = [t for t in meta["tables"] if t["name"] == table][0]
paths = [os.path.join(root, f["path"])
         for p in t["partitions"] for tb in p["tablets"] for r in tb["rowsets"] for f in r["files"]]
arrow = pa.concat_tables([pq.read_table(p) for p in paths])
n = duckdb.connect().execute("select count(*), sum(qty) from read_parquet(" + repr(paths) + ")").fetchall()[0]
print(arrow.num_rows, sum(x for x in arrow.column("qty").to_pylist()), n[0], n[1])
"#;

#[test]
fn pyarrow_and_duckdb_read_a_backed_up_table() {
    let python = python_with_pyarrow_and_duckdb();
    let data = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    repo_at(&b, "repo", repo.path());
    backup_ok(&b, "shop", "snap", "repo", vec![]);
    let all = rows(&engine, &engine.snapshot(), "shop", "sales");
    let qty: i64 = all
        .iter()
        .map(|r| r.rsplit('|').next().unwrap().parse::<i64>().unwrap())
        .sum();
    let out = Command::new(python)
        .args(["-c", SCRIPT, repo.path().to_str().unwrap(), "sales"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let fields: Vec<&str> = text.split_whitespace().collect();
    let expected = [
        all.len().to_string(),
        qty.to_string(),
        all.len().to_string(),
        qty.to_string(),
    ];
    assert_eq!(fields, expected);
}
