//! The SQL corpus: every `tests/cases/*.sql` file runs in a fresh data directory, as one
//! session (state carries from case to case).
//!
//! A file is a list of cases separated by blank lines. A case is SQL (one or more statements),
//! a `----` line, then the expected output of its last statement:
//! - `ok` for a statement without rows, `affected N` for an INSERT of N rows;
//! - rows as comma-separated lines, header first, NULL written `NULL`;
//! - `error: <text>`: the script fails with an error whose message contains `<text>`.
//!
//! Lines starting with `#` before a case are comments; a `-- columns: A,B` line in a case's SQL
//! renders only those columns. The SQL `wait` waits for the session's backup and restore jobs
//! and prints their final states. The SQL `connect <user>` switches the
//! session to that user (on the same engine). `$DIR` in SQL is the data directory's parent,
//! where the harness has written `people.parquet` and `people.csv` (with a header row):
//! `id,name,score` = `1,ann,9.5`, `2,bob,7.25`, `3,cy,NULL/empty`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use shale_engine::Engine;
use shale_sql::{QueryResult, Session, SqlError, format};

/// Renders only `columns` (all when empty), so cases can leave out times and ids.
fn render(result: &QueryResult, columns: &[String]) -> String {
    if !result.has_result_set() {
        return match result.affected_rows {
            Some(n) => format!("affected {n}"),
            None => "ok".into(),
        };
    }
    let keep: Vec<usize> = result
        .schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| columns.is_empty() || columns.contains(f.name()))
        .map(|(i, _)| i)
        .collect();
    let fields = result.schema.fields();
    let mut lines = vec![
        keep.iter()
            .map(|i| fields[*i].name().clone())
            .collect::<Vec<_>>()
            .join(","),
    ];
    let rows = format::cells(result).unwrap_or_else(|e| panic!("formatting failed: {e}"));
    for row in rows {
        lines.push(
            keep.iter()
                .map(|i| row[*i].clone().unwrap_or_else(|| "NULL".into()))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    lines.join("\n")
}

fn write_inputs(dir: &Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("score", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec!["ann", "bob", "cy"])),
            Arc::new(Float64Array::from(vec![Some(9.5), Some(7.25), None])),
        ],
    )
    .expect("batch");
    let file = std::fs::File::create(dir.join("people.parquet")).expect("create parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("write parquet");
    writer.close().expect("close parquet");
    std::fs::write(
        dir.join("people.csv"),
        "id,name,score\n1,ann,9.5\n2,bob,7.25\n3,cy,\n",
    )
    .expect("write csv");
}

struct Case {
    line: usize,
    /// Index of the first expected line, and how many there are.
    expected_lines: (usize, usize),
    sql: String,
    expected: String,
}

fn parse_cases(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    loop {
        // Skip blank lines and comments between cases.
        while let Some((_, l)) = lines.peek() {
            if l.trim().is_empty() || l.starts_with('#') {
                lines.next();
            } else {
                break;
            }
        }
        let Some(&(start, _)) = lines.peek() else {
            return cases;
        };
        let mut sql = Vec::new();
        for (_, l) in lines.by_ref() {
            if l.trim() == "----" {
                break;
            }
            sql.push(l);
        }
        let mut expected = Vec::new();
        let expected_start = lines.peek().map_or(usize::MAX, |(i, _)| *i);
        while let Some((_, l)) = lines.peek() {
            if l.trim().is_empty() {
                break;
            }
            expected.push(*l);
            lines.next();
        }
        cases.push(Case {
            line: start + 1,
            expected_lines: (expected_start, expected.len()),
            sql: sql.join("\n"),
            expected: expected.join("\n"),
        });
    }
}

fn run_file(path: &Path) -> Vec<String> {
    let root = tempfile::tempdir().expect("tempdir");
    write_inputs(root.path());
    let engine = Engine::open(root.path().join("data")).expect("open engine");
    let mut session = Session::new(engine.clone(), "root").expect("root session");
    let text = std::fs::read_to_string(path).expect("read case file");
    let dir = root.path().to_string_lossy().to_string();
    let mut failures = Vec::new();
    // Cases written with `?` as their expected output get the actual output filled in (to
    // be reviewed by hand before committing).
    let mut blessed: Vec<((usize, usize), String)> = Vec::new();
    for case in parse_cases(&text) {
        let sql = case.sql.replace("$DIR", &dir);
        let columns: Vec<String> = sql
            .lines()
            .find_map(|l| l.strip_prefix("-- columns: "))
            .map(|c| c.split(',').map(|c| c.trim().to_string()).collect())
            .unwrap_or_default();
        let outcome: Result<String, SqlError> = if sql.trim() == "wait" {
            let states = session.wait_for_jobs(std::time::Duration::from_secs(60));
            Ok(states
                .iter()
                .map(|(id, state)| format!("job {id}: {state:?}"))
                .collect::<Vec<_>>()
                .join("\n"))
        } else if let Some(user) = sql.trim().strip_prefix("connect ") {
            Session::new(engine.clone(), user.trim()).map(|s| {
                session = s;
                "ok".to_string()
            })
        } else {
            session.execute(&sql).map(|results| {
                results
                    .last()
                    .map(|r| render(r, &columns))
                    .unwrap_or_else(|| "ok".into())
            })
        };
        let matched = match (case.expected.strip_prefix("error: "), &outcome) {
            (Some(want), Err(e)) => e.to_string().contains(want),
            (None, Ok(got)) => *got == case.expected,
            _ => false,
        };
        if !matched {
            let got = match outcome {
                Ok(s) => s,
                Err(e) => format!("error: {e}"),
            };
            if case.expected == "?" {
                blessed.push((case.expected_lines, got.clone()));
            }
            failures.push(format!(
                "{}:{}\n{}\n---- expected\n{}\n---- got\n{}\n",
                path.display(),
                case.line,
                case.sql,
                case.expected,
                got
            ));
        }
    }
    if !blessed.is_empty() {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        for ((start, count), got) in blessed.into_iter().rev() {
            lines.splice(start..start + count, got.lines().map(String::from));
        }
        std::fs::write(path, lines.join("\n") + "\n").expect("bless");
    }
    failures
}

#[test]
fn sql_cases() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("cases dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    let failures: Vec<String> = files.iter().flat_map(|f| run_file(f)).collect();
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Tables show DataFusion their strings as `Utf8View`; results give users `Utf8`, the type a
/// VARCHAR column has everywhere else (loads, FILES, the engine's own scans).
#[test]
fn string_columns_reach_users_as_utf8() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path()).expect("engine");
    let mut session = Session::new(engine, "root").expect("session");
    let setup = "CREATE DATABASE d; USE d; \
        CREATE TABLE t (id INT, name VARCHAR(20)) DUPLICATE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1; \
        INSERT INTO t VALUES (1, 'a'), (2, NULL), (3, 'over twelve bytes!')";
    session.execute(setup).expect("setup");
    for sql in [
        "SELECT name FROM t ORDER BY id",
        "SELECT name, count(*) FROM t GROUP BY name ORDER BY name",
        "SELECT upper(name) AS u FROM t ORDER BY id",
    ] {
        let results = session.execute(sql).expect("query");
        let result = results.last().expect("a result");
        assert_eq!(result.schema.field(0).data_type(), &DataType::Utf8, "{sql}");
        for batch in &result.batches {
            assert_eq!(batch.column(0).data_type(), &DataType::Utf8, "{sql}");
        }
    }
}
