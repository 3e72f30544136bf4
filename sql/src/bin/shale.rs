//! `shale`: the shell. Runs StarRocks-dialect SQL against a data directory.
//!
//! `shale [--data DIR] [--user NAME] [--format table|csv|json] [--no-wait] [-e "SQL; ..." | -f FILE]`.
//! With neither `-e` nor `-f` it reads statements interactively (line editing, history) when
//! stdin is a terminal, and from stdin otherwise. Non-interactive runs stop at the first
//! failing statement, print the error on stderr and exit with status 1.
//!
//! BACKUP and RESTORE submit a job and return at once, as in StarRocks. A script, though, has
//! nobody to poll SHOW BACKUP for it, and its next statement usually needs the snapshot (SHOW
//! SNAPSHOT, RESTORE) or the restored table: so a non-interactive run waits for each job it
//! submits to end before the next statement, and a job that ends CANCELLED fails the script
//! like an error. `--no-wait` keeps StarRocks' behaviour in scripts too; the interactive shell
//! always has it. Either way the process waits for its jobs before exiting, since they run in it.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use shale_engine::Engine;
use shale_sql::format::{self, Format};
use shale_sql::{Session, SqlError};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    Table,
    Csv,
    Json,
}

impl From<OutputFormat> for Format {
    fn from(f: OutputFormat) -> Format {
        match f {
            OutputFormat::Table => Format::Table,
            OutputFormat::Csv => Format::Csv,
            OutputFormat::Json => Format::Json,
        }
    }
}

/// shale: an embedded analytical store that speaks StarRocks SQL.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "BACKUP and RESTORE run as background jobs. Scripts (-e, -f, stdin) wait for \
                  each job to end before the next statement and exit 1 if it ended CANCELLED; \
                  with --no-wait, and in the interactive shell, they return at once (watch the \
                  job with SHOW BACKUP / SHOW RESTORE). The process always waits for its jobs \
                  before exiting, with a progress bar on stderr when it is a terminal."
)]
struct Args {
    /// Data directory (created if missing).
    #[arg(long, default_value = "./shale-data")]
    data: PathBuf,
    /// User to run as.
    #[arg(long, default_value = "root")]
    user: String,
    /// How results are printed.
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    /// Statements to run.
    #[arg(short = 'e', long = "execute", conflicts_with = "file")]
    execute: Option<String>,
    /// A file of statements to run.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// In scripts (-e, -f, stdin), go on after BACKUP or RESTORE without waiting for the job
    /// to end (as the interactive shell and StarRocks do). By default a script waits for each
    /// job before its next statement, and a job that ends CANCELLED fails the script.
    /// Jobs still run to their end before the process exits.
    #[arg(long)]
    no_wait: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ERROR: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), SqlError> {
    let engine = Engine::open(&args.data)?;
    let mut session = Session::new(engine, &args.user)?;
    let format = Format::from(args.format);
    let mut jobs = Jobs::default();
    let script = if let Some(sql) = &args.execute {
        sql.clone()
    } else if let Some(path) = &args.file {
        std::fs::read_to_string(path).map_err(|source| SqlError::Io {
            context: format!("reading {}", path.display()),
            source,
        })?
    } else if std::io::stdin().is_terminal() {
        return interactive(&mut session, format, &args.data, &mut jobs);
    } else {
        let mut sql = String::new();
        std::io::stdin()
            .read_to_string(&mut sql)
            .map_err(|source| SqlError::Io {
                context: "reading stdin".into(),
                source,
            })?;
        sql
    };
    let wait = if args.no_wait { None } else { Some(&mut jobs) };
    let result = run_script(&mut session, &script, format, wait);
    // Jobs submitted with --no-wait, or before a failing statement, still run in this
    // process: let them end.
    let ended = jobs.wait(&session);
    result.and(ended)
}

/// Waits for the BACKUP and RESTORE jobs a session submitted, each once.
#[derive(Debug, Default)]
struct Jobs {
    /// How many of the session's jobs were already waited for.
    waited_count: usize,
}

impl Jobs {
    /// Waits for every job submitted since the last call to end, with a progress bar on
    /// stderr when stderr is a terminal. Fails naming the first job that ended CANCELLED.
    fn wait(&mut self, session: &Session) -> Result<(), SqlError> {
        let started = session.jobs_started();
        let new = started.get(self.waited_count..).unwrap_or_default();
        self.waited_count = started.len();
        let mut failure = None;
        for &job in new {
            let state = wait_for_job(session, job);
            if state == Some(shale_backup::JobState::Cancelled) && failure.is_none() {
                failure = Some(cancelled_error(session, job));
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// Waits for one job to end; returns its final state, or `None` if the session no longer
/// knows it (a later job of the same database superseded it, so it ended).
fn wait_for_job(session: &Session, job: u64) -> Option<shale_backup::JobState> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} job {prefix}: {msg} {bar:30} {bytes}/{total_bytes}",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix(job.to_string());
        bar
    });
    // Each job has its own timeout (the "timeout" property, 86400 s by default) after which
    // it ends CANCELLED, so this loop ends.
    let state = loop {
        let Some((state, progress)) =
            session.wait_for_job(job, std::time::Duration::from_millis(200))
        else {
            break None;
        };
        if let Some(bar) = &bar {
            bar.set_length(progress.bytes_total);
            bar.set_position(progress.bytes_done);
            bar.set_message(state.as_str());
        }
        if state.is_final() {
            break Some(state);
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    state
}

/// The error of a job that ended CANCELLED, with the reason SHOW BACKUP / SHOW RESTORE give.
fn cancelled_error(session: &Session, job: u64) -> SqlError {
    let Some(record) = session.job(job) else {
        return SqlError::Invalid(format!("job {job} ended CANCELLED"));
    };
    let kind = match record.kind {
        shale_backup::JobKind::Backup => "BACKUP",
        shale_backup::JobKind::Restore => "RESTORE",
    };
    SqlError::Invalid(format!(
        "{kind} job {job} of snapshot {}.{} ended CANCELLED: {}",
        record.db, record.snapshot, record.status
    ))
}

/// Runs each statement of the script in turn, printing its result before the next runs; with
/// `wait`, a statement that submitted a job is done when the job is.
fn run_script(
    session: &mut Session,
    script: &str,
    format: Format,
    mut wait: Option<&mut Jobs>,
) -> Result<(), SqlError> {
    let statements = shale_sql::parse(script)?;
    let stdout = std::io::stdout();
    for statement in &statements {
        let result = session.execute_statement(statement)?;
        {
            let mut out = stdout.lock();
            format::write(&mut out, &result, format)?;
            let _ = out.flush();
        }
        if let Some(jobs) = wait.as_deref_mut() {
            jobs.wait(session)?;
        }
    }
    Ok(())
}

/// The REPL: statements end with `;`, errors are printed and the session goes on.
fn interactive(
    session: &mut Session,
    format: Format,
    data: &std::path::Path,
    jobs: &mut Jobs,
) -> Result<(), SqlError> {
    let readline_error = |e: rustyline::error::ReadlineError| SqlError::Io {
        context: "reading a line".into(),
        source: std::io::Error::other(e.to_string()),
    };
    let mut editor = rustyline::DefaultEditor::new().map_err(readline_error)?;
    let history = data.join(".shale_history");
    let _ = editor.load_history(&history);
    println!(
        "shale: StarRocks SQL on {}. End statements with ';', quit with Ctrl-D.",
        data.display()
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "shale> "
        } else {
            "    -> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                buffer.push_str(&line);
                buffer.push('\n');
                let trimmed = buffer.trim();
                if trimmed.eq_ignore_ascii_case("quit") || trimmed.eq_ignore_ascii_case("exit") {
                    break;
                }
                if !trimmed.ends_with(';') {
                    continue;
                }
                let _ = editor.add_history_entry(trimmed);
                if let Err(e) = run_script(session, trimmed, format, None) {
                    eprintln!("ERROR: {e}");
                }

                buffer.clear();
            }
            Err(rustyline::error::ReadlineError::Interrupted) => buffer.clear(),
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(readline_error(e)),
        }
    }
    let _ = editor.save_history(&history);
    jobs.wait(session)
}
