//! Queries and `INSERT`.
//!
//! Queries are not parsed: the statement's exact source text is kept for DataFusion. The
//! only structure read here is where the query starts and that it ends at `;` or the end of
//! input.

use sqlparser::tokenizer::Token;

use super::{ParseError, Parser};
use crate::ast::{Insert, InsertSource, Statement};

impl Parser<'_> {
    /// True when the current token starts a query: `SELECT`, `WITH`, `EXPLAIN`, `VALUES` or
    /// `(`.
    pub(super) fn peek_is_query_start(&self) -> bool {
        matches!(self.peek().token, Token::LParen)
            || ["SELECT", "WITH", "EXPLAIN", "VALUES"]
                .iter()
                .any(|keyword| self.peek_keyword(keyword))
    }

    /// Consumes the rest of the statement and returns its source text.
    pub(super) fn parse_query_text(&mut self) -> Result<String, ParseError> {
        if self.at_end_of_statement() {
            return self.expected("a query");
        }
        let first = self.peek().clone();
        while !self.at_end_of_statement() {
            self.next();
        }
        Ok(self.source_since(&first))
    }

    /// `INSERT INTO [db.]t [(cols)] VALUES (...), ... | <query>`, after `INSERT`.
    pub(super) fn parse_insert(&mut self) -> Result<Statement, ParseError> {
        self.expect_keyword("INTO")?;
        let table = self.parse_object_name()?;
        // `(` starts a column list unless it opens a parenthesized query.
        let columns_follow = matches!(self.peek().token, Token::LParen)
            && !self.peek_nth_keyword(1, "SELECT")
            && !self.peek_nth_keyword(1, "WITH")
            && !matches!(self.peek_nth(1).token, Token::LParen);
        let columns = if columns_follow {
            self.parse_ident_list()?
        } else {
            Vec::new()
        };
        let source = if self.parse_keyword("VALUES") {
            let rows = self
                .parse_comma_separated(|parser| parser.parse_parenthesized(Self::parse_literal))?;
            InsertSource::Values(rows)
        } else if matches!(self.peek().token, Token::LParen)
            || self.peek_keyword("SELECT")
            || self.peek_keyword("WITH")
        {
            InsertSource::Query {
                sql: self.parse_query_text()?,
            }
        } else {
            return self.expected("VALUES or a query (SELECT or WITH)");
        };
        Ok(Statement::Insert(Insert {
            table,
            columns,
            source,
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::ast::{InsertSource, Statement};
    use crate::parser::parse;

    /// The query texts of a script, or the error text.
    fn query_texts(sql: &str) -> Vec<String> {
        match parse(sql) {
            Ok(statements) => statements
                .into_iter()
                .map(|statement| match statement {
                    Statement::Query { sql } => sql,
                    Statement::Insert(insert) => match insert.source {
                        InsertSource::Query { sql } => sql,
                        InsertSource::Values(_) => "<values>".to_string(),
                    },
                    other => format!("<{other}>"),
                })
                .collect(),
            Err(error) => vec![format!("error: {error}")],
        }
    }

    #[test]
    fn multi_line_query_keeps_inner_layout_and_drops_outer_whitespace() {
        let sql = "\n\n   SELECT a,\n\t b\n  FROM t\n  WHERE c = 1   \n;\n";
        assert_eq!(
            query_texts(sql),
            vec!["SELECT a,\n\t b\n  FROM t\n  WHERE c = 1"]
        );
    }

    #[test]
    fn multi_byte_characters_before_and_inside_the_query() {
        // Two-, three- and four-byte characters shift byte offsets away from columns.
        let sql = "USE `数据库`; SELECT 'é', '🦀🦀' AS `列`, 'ü'\nFROM `表`; SELECT 'z'";
        assert_eq!(
            query_texts(sql),
            vec![
                "<USE `数据库`>",
                "SELECT 'é', '🦀🦀' AS `列`, 'ü'\nFROM `表`",
                "SELECT 'z'",
            ]
        );
    }

    #[test]
    fn combining_characters_count_as_separate_columns() {
        // "e" + U+0301 is one glyph but two chars; the tokenizer counts chars.
        let sql = "SELECT 'e\u{301}e\u{301}' ; SELECT 1";
        assert_eq!(
            query_texts(sql),
            vec!["SELECT 'e\u{301}e\u{301}'", "SELECT 1"]
        );
    }

    #[test]
    fn crlf_line_endings() {
        let sql = "SELECT 1,\r\n  2\r\n;\r\nSELECT 3\r\n";
        assert_eq!(query_texts(sql), vec!["SELECT 1,\r\n  2", "SELECT 3"]);
    }

    #[test]
    fn comments_inside_are_kept_and_comments_around_are_not() {
        let sql = "/* lead */ SELECT /* ; */ 1 -- tail\n# more\n; -- after";
        assert_eq!(query_texts(sql), vec!["SELECT /* ; */ 1"]);
    }

    #[test]
    fn semicolons_inside_strings_and_identifiers_do_not_split() {
        let sql = "SELECT ';', \";\", `;` FROM t;SELECT 2";
        assert_eq!(
            query_texts(sql),
            vec!["SELECT ';', \";\", `;` FROM t", "SELECT 2"]
        );
    }

    #[test]
    fn insert_query_starts_at_the_query() {
        let sql = "INSERT INTO `表` (a)\n  SELECT 'ü'\n  FROM s ; ";
        assert_eq!(query_texts(sql), vec!["SELECT 'ü'\n  FROM s"]);
    }

    #[test]
    fn query_at_end_of_input_without_newline() {
        assert_eq!(query_texts("SELECT 'ü'"), vec!["SELECT 'ü'"]);
    }
}
