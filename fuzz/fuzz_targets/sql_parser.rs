//! Fuzzes the StarRocks-dialect parser with arbitrary UTF-8.
//!
//! Properties checked on every input (the same as `sql/tests/parser_never_panics.rs`):
//! - parsing never panics;
//! - errors are 1-based and located;
//! - every statement that parses prints back as canonical SQL that parses to an equal one.
//!
//! Run: `cargo +nightly fuzz run sql_parser -- -max_total_time=30` in `fuzz/`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shale_sql::parser::{extract_files_table_function, parse, parse_one};

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    match parse(sql) {
        Ok(statements) => {
            for statement in statements {
                let canonical = statement.to_string();
                match parse_one(&canonical) {
                    Ok(reparsed) => assert_eq!(reparsed, statement, "canonical: {canonical:?}"),
                    Err(error) => panic!("canonical text {canonical:?} fails to parse: {error}"),
                }
            }
        }
        Err(error) => assert!(error.line >= 1 && error.column >= 1, "{error}"),
    }
    if let Err(error) = parse_one(sql) {
        assert!(error.line >= 1 && error.column >= 1, "{error}");
    }
    let _ = extract_files_table_function(sql);
});
