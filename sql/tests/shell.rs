//! The `shale` binary end to end: -e scripts, -f files, stdin, output formats, exit codes,
//! state across processes, and examples/quickstart.sql.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn shale(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shale"))
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shale");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
    }
    child.wait_with_output().expect("wait for shale")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn execute_flag_prints_csv_and_state_persists_across_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let first = shale(
        &data,
        &[
            "--format",
            "csv",
            "-e",
            "CREATE DATABASE d; USE d; CREATE TABLE t (k INT, s VARCHAR(10)) DUPLICATE KEY(k); \
             INSERT INTO t VALUES (1, 'a,b'), (2, NULL); SELECT * FROM t ORDER BY k",
        ],
        None,
    );
    assert!(first.status.success(), "stderr: {}", text(&first.stderr));
    assert_eq!(text(&first.stdout), "k,s\n1,\"a,b\"\n2,\n");

    let second = shale(
        &data,
        &["--format", "json", "-e", "SELECT k, s FROM d.t ORDER BY k"],
        None,
    );
    assert!(second.status.success(), "stderr: {}", text(&second.stderr));
    assert_eq!(
        text(&second.stdout),
        "{\"k\":1,\"s\":\"a,b\"}\n{\"k\":2,\"s\":null}\n"
    );
}

#[test]
fn file_and_stdin_scripts_run_in_table_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let script = dir.path().join("setup.sql");
    std::fs::write(
        &script,
        "-- a comment\nCREATE DATABASE d;\nCREATE TABLE d.t (k INT);\nINSERT INTO d.t VALUES (7);\n",
    )
    .expect("write script");
    let file_run = shale(&data, &["-f", script.to_str().expect("utf-8 path")], None);
    assert!(
        file_run.status.success(),
        "stderr: {}",
        text(&file_run.stderr)
    );
    assert!(text(&file_run.stdout).contains("Query OK, 1 rows affected"));

    let stdin_run = shale(&data, &[], Some("SELECT k FROM d.t;\n"));
    assert!(
        stdin_run.status.success(),
        "stderr: {}",
        text(&stdin_run.stderr)
    );
    let out = text(&stdin_run.stdout);
    assert!(out.contains("| k |"), "{out}");
    assert!(out.contains("| 7 |"), "{out}");
    assert!(out.contains("1 row in set"), "{out}");
}

#[test]
fn first_failing_statement_stops_the_script_with_exit_code_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let run = shale(
        &data,
        &[
            "--format",
            "csv",
            "-e",
            "SELECT 1 AS one; USE nowhere; SELECT 2 AS two",
        ],
        None,
    );
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(text(&run.stdout), "one\n1\n");
    assert!(text(&run.stderr).contains("Unknown database 'nowhere'"));

    let parse = shale(&data, &[], Some("SELECT 1;\nDROP TABLE;\n"));
    assert_eq!(parse.status.code(), Some(1));
    assert!(
        text(&parse.stderr).contains("line 2, column 11"),
        "{}",
        text(&parse.stderr)
    );
}

#[test]
fn unknown_user_cannot_open_a_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let run = shale(&data, &["--user", "mallory", "-e", "SELECT 1"], None);
    assert_eq!(run.status.code(), Some(1));
    assert!(text(&run.stderr).contains("Unknown user 'mallory'"));

    let setup = shale(&data, &["-e", "CREATE USER mallory"], None);
    assert!(setup.status.success(), "stderr: {}", text(&setup.stderr));
    let denied = shale(
        &data,
        &["--user", "mallory", "-e", "SHOW REPOSITORIES"],
        None,
    );
    assert_eq!(denied.status.code(), Some(1));
    assert!(text(&denied.stderr).contains("ADMIN privilege"));
}

#[test]
fn quickstart_example_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.sql");
    let run = shale(
        &data,
        &[
            "--format",
            "csv",
            "-f",
            example.to_str().expect("utf-8 path"),
        ],
        None,
    );
    assert!(run.status.success(), "stderr: {}", text(&run.stderr));
    let out = text(&run.stdout);
    assert!(out.contains("total_rows\n10000\n"), "{out}");
}

#[test]
fn shell_waits_for_its_backup_and_a_later_process_shows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let repo = dir.path().join("repo");
    let script = format!(
        "CREATE DATABASE d; CREATE TABLE d.t (k INT); INSERT INTO d.t VALUES (1), (2);\n\
         CREATE REPOSITORY r WITH BROKER ON LOCATION \"{}\";\n\
         BACKUP SNAPSHOT d.s1 TO r;",
        repo.display()
    );
    let first = shale(&data, &["-e", &script], None);
    assert!(first.status.success(), "stderr: {}", text(&first.stderr));

    let second = shale(
        &data,
        &[
            "--format",
            "csv",
            "-e",
            "SHOW BACKUP FROM d; SHOW SNAPSHOT ON r",
        ],
        None,
    );
    assert!(second.status.success(), "stderr: {}", text(&second.stderr));
    let out = text(&second.stdout);
    assert!(out.contains(",s1,d,FINISHED,"), "{out}");
    assert!(
        out.starts_with("JobId,SnapshotName,DbName,State,BackupObjs,"),
        "{out}"
    );
    assert!(out.contains("Snapshot,Timestamp,Status\ns1,"), "{out}");
}
