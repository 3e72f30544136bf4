//! `shale`: the shell. Runs StarRocks-dialect SQL against a data directory.
//!
//! `shale [--data DIR] [--user NAME] [--format table|csv|json] [-e "SQL; ..." | -f FILE]`.
//! With neither `-e` nor `-f` it reads statements interactively (line editing, history) when
//! stdin is a terminal, and from stdin otherwise. Non-interactive runs stop at the first
//! failing statement, print the error on stderr and exit with status 1.

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
#[command(version, about)]
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
    let script = if let Some(sql) = &args.execute {
        sql.clone()
    } else if let Some(path) = &args.file {
        std::fs::read_to_string(path).map_err(|source| SqlError::Io {
            context: format!("reading {}", path.display()),
            source,
        })?
    } else if std::io::stdin().is_terminal() {
        return interactive(&mut session, format, &args.data);
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
    let result = run_script(&mut session, &script, format);
    let cancelled = wait_for_jobs(&session);
    result?;
    match cancelled {
        Some(id) => Err(SqlError::Invalid(format!("job {id} ended CANCELLED"))),
        None => Ok(()),
    }
}

/// How long the shell waits for each BACKUP or RESTORE job it started before exiting.
const JOB_WAIT_SECS: u64 = 24 * 3600;

/// Waits for the jobs the script started, with a progress bar on stderr when stderr is a
/// terminal; returns one that ended CANCELLED, if any.
fn wait_for_jobs(session: &Session) -> Option<u64> {
    let show = std::io::stderr().is_terminal();
    let mut cancelled = None;
    for &job in session.jobs_started() {
        let bar = if show {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} job {prefix}: {msg} {bar:30} {bytes}/{total_bytes}",
            ) {
                bar.set_style(style);
            }
            bar.set_prefix(job.to_string());
            Some(bar)
        } else {
            None
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(JOB_WAIT_SECS);
        let state = loop {
            let seen = session.wait_for_job(job, std::time::Duration::from_millis(200));
            let Some((state, progress)) = seen else {
                break None;
            };
            if let Some(bar) = &bar {
                bar.set_length(progress.bytes_total);
                bar.set_position(progress.bytes_done);
                bar.set_message(state.as_str());
            }
            if state.is_final() || std::time::Instant::now() >= deadline {
                break Some(state);
            }
        };
        if let Some(bar) = bar {
            bar.finish();
        }
        if state == Some(shale_backup::JobState::Cancelled) && cancelled.is_none() {
            cancelled = Some(job);
        }
    }
    cancelled
}

/// Runs each statement of the script in turn, printing its result before the next runs.
fn run_script(session: &mut Session, script: &str, format: Format) -> Result<(), SqlError> {
    let statements = shale_sql::parse(script)?;
    let stdout = std::io::stdout();
    for statement in &statements {
        let result = session.execute_statement(statement)?;
        let mut out = stdout.lock();
        format::write(&mut out, &result, format)?;
        let _ = out.flush();
    }
    Ok(())
}

/// The REPL: statements end with `;`, errors are printed and the session goes on.
fn interactive(
    session: &mut Session,
    format: Format,
    data: &std::path::Path,
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
                if let Err(e) = run_script(session, trimmed, format) {
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
    match wait_for_jobs(session) {
        Some(id) => Err(SqlError::Invalid(format!("job {id} ended CANCELLED"))),
        None => Ok(()),
    }
}
