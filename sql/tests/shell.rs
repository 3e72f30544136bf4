//! The `shale` binary end to end: -e scripts, -f files, stdin, output formats, exit codes,
//! state across processes, and examples/quickstart.sql.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn shale(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shale"));
    command.arg("--data").arg(data).args(args);
    run(command, stdin)
}

fn run(mut command: Command, stdin: Option<&str>) -> Output {
    let mut child = command
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

    // JSON members come in column order.
    let second = shale(
        &data,
        &["--format", "json", "-e", "SELECT s, k FROM d.t ORDER BY k"],
        None,
    );
    assert!(second.status.success(), "stderr: {}", text(&second.stderr));
    assert_eq!(
        text(&second.stdout),
        "{\"s\":\"a,b\",\"k\":1}\n{\"s\":null,\"k\":2}\n"
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
fn quickstart_example_runs_as_the_readme_says() {
    // README: `rm -rf ./shale-data && shale --data ./shale-data -f examples/quickstart.sql`,
    // from the repository root; the script's repository is "./shale-data/repo".
    let dir = tempfile::tempdir().expect("tempdir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.sql");
    let mut command = Command::new(env!("CARGO_BIN_EXE_shale"));
    command
        .current_dir(dir.path())
        .args(["--data", "./shale-data", "--format", "csv", "-f"])
        .arg(&example);
    let out = run(command, None);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("total_rows\n200000\n"), "{stdout}");
    assert!(
        stdout.contains("Snapshot,Timestamp,Status\nevents_2025,"),
        "{stdout}"
    );
    // The restored partition holds what the source partition holds.
    let counts = stdout
        .lines()
        .skip_while(|l| *l != "q2_in_events,q2_restored")
        .nth(1)
        .unwrap_or_else(|| panic!("no count comparison in {stdout}"));
    let (source, restored) = counts.split_once(',').expect("two counts");
    assert_eq!(source, restored, "{stdout}");
    assert_ne!(source, "0", "{stdout}");
    assert!(dir.path().join("shale-data/repo").is_dir());
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

/// A table of two partitions, rows 1 and 2 in `p1`, 150 in `p2`, and a repository `r` in `dir`.
fn backup_setup(dir: &Path) -> String {
    format!(
        "CREATE DATABASE d; USE d;\n\
         CREATE TABLE t (k INT) DUPLICATE KEY(k) PARTITION BY RANGE(k) (\n\
           PARTITION p1 VALUES LESS THAN (\"100\"), PARTITION p2 VALUES LESS THAN (MAXVALUE));\n\
         INSERT INTO t VALUES (1), (2), (150);\n\
         CREATE REPOSITORY r WITH BROKER ON LOCATION \"{}\";\n",
        dir.join("repo").display()
    )
}

#[test]
fn a_script_waits_for_each_job_before_its_next_statement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let script = dir.path().join("backup.sql");
    // Each statement after BACKUP needs the finished snapshot, and SELECT the restored table.
    std::fs::write(
        &script,
        backup_setup(dir.path())
            + "BACKUP SNAPSHOT d.s1 TO r ON (t);\n\
               SHOW SNAPSHOT ON r;\n\
               RESTORE SNAPSHOT d.s1 FROM r ON (t PARTITION (p1) AS t_p1);\n\
               SELECT count(*) AS n FROM t_p1;\n",
    )
    .expect("write script");
    let out = shale(
        &data,
        &[
            "--format",
            "csv",
            "-f",
            script.to_str().expect("utf-8 path"),
        ],
        None,
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Snapshot,Timestamp,Status\ns1,"),
        "{stdout}"
    );
    assert!(stdout.ends_with("n\n2\n"), "{stdout}");
    // No terminal, no progress bar.
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn a_cancelled_job_stops_the_script_with_exit_code_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // The restore passes the checks at submission but its job finds `t` with another schema.
    let script = backup_setup(dir.path())
        + "BACKUP SNAPSHOT d.s1 TO r ON (t);\n\
           DROP TABLE t; CREATE TABLE t (k BIGINT, v INT) DUPLICATE KEY(k);\n\
           RESTORE SNAPSHOT d.s1 FROM r ON (t);\n\
           SELECT 'after' AS never;\n";
    let out = shale(&data, &["--format", "csv", "-e", &script], None);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("RESTORE job") && stderr.contains("ended CANCELLED"),
        "{stderr}"
    );
    assert!(
        stderr.contains("already exist but with different schema"),
        "{stderr}"
    );
    assert!(
        !text(&out.stdout).contains("never"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn no_wait_submits_and_goes_on_but_the_process_still_waits_for_its_jobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // The same script as above: with --no-wait the failing job no longer stops the script at
    // its statement, yet the process waits for it before exiting and reports it.
    let script = backup_setup(dir.path()) + "BACKUP SNAPSHOT d.s1 TO r ON (t);\n";
    let setup = shale(&data, &["-e", &script], None);
    assert!(setup.status.success(), "stderr: {}", text(&setup.stderr));
    let out = shale(
        &data,
        &[
            "--no-wait",
            "--format",
            "csv",
            "-e",
            "USE d; DROP TABLE t; CREATE TABLE t (k BIGINT, v INT) DUPLICATE KEY(k);\n\
             RESTORE SNAPSHOT d.s1 FROM r ON (t); SELECT 'after' AS went_on",
        ],
        None,
    );
    assert!(
        text(&out.stdout).contains("went_on\nafter\n"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("ended CANCELLED"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn help_describes_waiting_for_jobs() {
    let out = run(
        {
            let mut c = Command::new(env!("CARGO_BIN_EXE_shale"));
            c.arg("--help");
            c
        },
        None,
    );
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("--no-wait"), "{help}");
    assert!(help.contains("CANCELLED"), "{help}");
}

#[test]
fn show_snapshot_with_a_timestamp_and_restore_by_backup_timestamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let setup = shale(
        &data,
        &[
            "--format",
            "csv",
            "-e",
            &(backup_setup(dir.path()) + "BACKUP SNAPSHOT d.s1 TO r; SHOW SNAPSHOT ON r"),
        ],
        None,
    );
    assert!(setup.status.success(), "stderr: {}", text(&setup.stderr));
    let listing = text(&setup.stdout);
    let timestamp = listing
        .lines()
        .find_map(|l| l.strip_prefix("s1,"))
        .and_then(|rest| rest.strip_suffix(",OK"))
        .unwrap_or_else(|| panic!("no snapshot s1 in {listing}"))
        .to_string();

    // The 5-column form, and RESTORE naming the timestamp as StarRocks requires it.
    let script = format!(
        "SHOW SNAPSHOT ON r WHERE SNAPSHOT = 's1' AND TIMESTAMP = '{timestamp}';\n\
         RESTORE SNAPSHOT d.s1 FROM r ON (t AS t2) PROPERTIES (\"backup_timestamp\" = \"{timestamp}\");\n\
         SELECT count(*) AS n FROM d.t2;"
    );
    let out = shale(&data, &["--format", "csv", "-e", &script], None);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "Snapshot,Timestamp,Database,Details,Status\ns1,{timestamp},d,"
        )),
        "{stdout}"
    );
    assert!(stdout.contains(",OK\n"), "{stdout}");
    assert!(stdout.ends_with("n\n3\n"), "{stdout}");

    let wrong = shale(
        &data,
        &[
            "-e",
            "SHOW SNAPSHOT ON r WHERE SNAPSHOT = 's1' AND TIMESTAMP = '2000-01-01-00-00-00-000'",
        ],
        None,
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong.stderr).contains("Failed to get info of snapshot 's1'"),
        "{}",
        text(&wrong.stderr)
    );
}
