//! StarRocks' `FILES(...)` table function inside query text.
//!
//! `INSERT INTO t SELECT * FROM FILES("path" = "...", "format" = "parquet")` reads files
//! directly. DataFusion has no such function, so the executor finds each call with
//! [`extract_files_table_function`], registers a table for it, and replaces the call's text
//! (its `byte_range`) with that table's name before handing the query to DataFusion.

use std::ops::Range;

use sqlparser::tokenizer::Token;

use super::{ParseError, Parser};
use crate::ast::Properties;

/// One `FILES(...)` call found in a query's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesTableFunction {
    /// The call's properties in the order written (`"path"`, `"format"`, ...).
    pub properties: Properties,
    /// Byte range of the call in the query text, from `FILES` to the closing `)`.
    pub byte_range: Range<usize>,
}

/// Finds every `FILES("k" = "v", ...)` call in `query_sql`, in order of appearance.
///
/// `FILES` matches case-insensitively when unquoted and directly followed by `(`; its
/// arguments must be a property list of string literals. Byte ranges are exact for ordinary
/// text (they may be approximate inside MySQL `/*! ... */` hint comments).
pub fn extract_files_table_function(
    query_sql: &str,
) -> Result<Vec<FilesTableFunction>, ParseError> {
    let mut parser = Parser::new(query_sql)?;
    let mut calls = Vec::new();
    while !parser.at_eof() {
        if parser.peek_keyword("FILES") && matches!(parser.peek_nth(1).token, Token::LParen) {
            let first = parser.next();
            let properties = parser.parse_property_list()?;
            let byte_range = parser.map.offset(first.start)..parser.map.offset(parser.previous_end);
            calls.push(FilesTableFunction {
                properties,
                byte_range,
            });
        } else {
            parser.next();
        }
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_calls_and_their_exact_text() {
        let sql =
            "SELECT * FROM files(\"path\" = 's3://b/ü.parquet',\n \"format\" = \"parquet\") f";
        let calls = extract_files_table_function(sql).unwrap_or_default();
        assert_eq!(calls.len(), 1);
        let call = &calls[0];
        assert_eq!(
            call.properties,
            vec![
                ("path".to_string(), "s3://b/ü.parquet".to_string()),
                ("format".to_string(), "parquet".to_string()),
            ]
        );
        assert_eq!(
            sql.get(call.byte_range.clone()),
            Some("files(\"path\" = 's3://b/ü.parquet',\n \"format\" = \"parquet\")")
        );
    }

    #[test]
    fn ignores_other_uses_of_the_word() {
        let sql = "SELECT files, `FILES`(1) FROM t";
        assert_eq!(extract_files_table_function(sql), Ok(Vec::new()));
    }

    #[test]
    fn bad_arguments_are_an_error() {
        let error = extract_files_table_function("SELECT * FROM FILES(path = 'x')").err();
        assert!(matches!(
            error,
            Some(ParseError {
                line: 1,
                column: 21,
                ..
            })
        ));
    }
}
