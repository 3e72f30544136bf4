//! Runs every case of `tests/parser_corpus/*.txt`.
//!
//! A file holds cases separated by a line `----`. A case is SQL, a line `=>`, then either
//! - the expected canonical rendering: each parsed statement's `Display`, one per line; or
//! - `error: <substring of the message>`; or
//! - `error <line>:<column>: <substring of the message>` to check the position too
//!   (`error <line>: ...` checks the line only).
//!
//! Every successful case must also round-trip: parsing each statement's canonical rendering
//! gives back an equal statement.

use std::fmt::Write as _;
use std::path::Path;

use shale_sql::ast::Statement;
use shale_sql::parser::{parse, parse_one};

/// One case, with where it came from.
struct Case {
    origin: String,
    sql: String,
    expected: String,
}

fn load_cases(dir: &Path) -> Vec<Case> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus directory is readable")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    paths.sort();
    let mut cases = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("corpus file is UTF-8");
        let file = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        let file = file.unwrap_or_default();
        let mut line_number = 1;
        for block in text.split("\n----\n") {
            let block_lines = block.lines().count();
            if !block.trim().is_empty() {
                let (sql, expected) = block
                    .split_once("\n=>\n")
                    .unwrap_or_else(|| panic!("{file}:{line_number}: case without '=>' line"));
                cases.push(Case {
                    origin: format!("{file}:{line_number}"),
                    sql: sql.to_string(),
                    expected: expected.trim_end().to_string(),
                });
            }
            line_number += block_lines + 1;
        }
    }
    cases
}

fn render(statements: &[Statement]) -> String {
    statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks one case; returns a description of what went wrong.
fn check(case: &Case) -> Result<(), String> {
    let result = parse(&case.sql);
    if let Some(rest) = case.expected.strip_prefix("error") {
        let (position, message) = rest
            .split_once(": ")
            .ok_or_else(|| format!("malformed expectation {:?}", case.expected))?;
        let error = match result {
            Ok(statements) => {
                return Err(format!(
                    "expected an error, parsed:\n{}",
                    render(&statements)
                ));
            }
            Err(error) => error,
        };
        if !error.message.contains(message) {
            return Err(format!(
                "expected error containing {message:?}, got: {error}"
            ));
        }
        if error.line < 1 || error.column < 1 {
            return Err(format!("error position not 1-based: {error}"));
        }
        // `L:C` checks line and column, `L` the line only.
        let position = position.trim();
        if !position.is_empty() {
            let actual = if position.contains(':') {
                format!("{}:{}", error.line, error.column)
            } else {
                error.line.to_string()
            };
            if actual != position {
                return Err(format!("expected error at {position}, got: {error}"));
            }
        }
        let displayed = error.to_string();
        let prefix = format!("line {}, column {}: ", error.line, error.column);
        if !displayed.starts_with(&prefix) {
            return Err(format!("error display {displayed:?} lacks {prefix:?}"));
        }
        return Ok(());
    }
    let statements = result.map_err(|error| format!("unexpected error: {error}"))?;
    let rendered = render(&statements);
    if rendered != case.expected {
        return Err(format!(
            "rendering differs\n--- expected\n{}\n--- actual\n{rendered}",
            case.expected
        ));
    }
    for statement in &statements {
        let canonical = statement.to_string();
        match parse_one(&canonical) {
            Ok(reparsed) if reparsed == *statement => {}
            Ok(reparsed) => {
                return Err(format!(
                    "round trip differs:\n{statement:#?}\nvs\n{reparsed:#?}"
                ));
            }
            Err(error) => {
                return Err(format!(
                    "canonical text does not parse: {error}\n{canonical}"
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn parser_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parser_corpus");
    let cases = load_cases(&dir);
    let mut failures = String::new();
    for case in &cases {
        if let Err(problem) = check(case) {
            let _ = writeln!(failures, "{}:\n{}\n=> {problem}\n", case.origin, case.sql);
        }
    }
    assert!(failures.is_empty(), "corpus failures:\n\n{failures}");
    assert!(cases.len() >= 80, "corpus has only {} cases", cases.len());
}
