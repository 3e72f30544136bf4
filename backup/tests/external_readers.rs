//! A backed-up table is readable by pyarrow and DuckDB from `meta.json`'s file list alone; on
//! S3 by pyarrow's S3 file system (DuckDB reads S3 only through its httpfs extension, which it
//! downloads at run time, so it is not tested there).

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

const S3_SCRIPT: &str = r#"
import json, sys
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
endpoint, root, table, key, secret = sys.argv[1:6]
fs = pafs.S3FileSystem(access_key=key, secret_key=secret, region="us-east-1",
                       endpoint_override=endpoint, scheme="http")
with fs.open_input_stream(root + "/snapshots/snap/meta.json") as f:
    meta = json.loads(f.read())
t = [t for t in meta["tables"] if t["name"] == table][0]
paths = [root + "/" + f["path"]
         for p in t["partitions"] for tb in p["tablets"] for r in tb["rowsets"] for f in r["files"]]
arrow = pa.concat_tables([pq.read_table(p, filesystem=fs) for p in paths])
print(arrow.num_rows, sum(x for x in arrow.column("qty").to_pylist()))
"#;

#[test]
fn pyarrow_reads_a_table_backed_up_to_s3() {
    let python = python_with_pyarrow_and_duckdb();
    let data = tempfile::tempdir().unwrap();
    let engine = engine_with_data(data.path());
    let b = open(&engine);
    let repo = TestRepo::new(Kind::S3);
    repo.create(&b, "repo");
    backup_ok(&b, "shop", "snap", "repo", vec![]);
    let all = rows(&engine, &engine.snapshot(), "shop", "sales");
    let qty: i64 = all
        .iter()
        .map(|r| r.rsplit('|').next().unwrap().parse::<i64>().unwrap())
        .sum();
    let endpoint = common::s3::moto().endpoint();
    let out = Command::new(python)
        .args([
            "-c",
            S3_SCRIPT,
            endpoint.trim_start_matches("http://"),
            repo.location.trim_start_matches("s3://"),
            "sales",
            common::s3::ACCESS_KEY,
            common::s3::SECRET_KEY,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields, [all.len().to_string(), qty.to_string()]);
}

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
