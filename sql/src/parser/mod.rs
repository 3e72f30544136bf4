//! A recursive-descent parser for the StarRocks-dialect statements shale executes itself.
//!
//! Text is split into tokens by sqlparser's tokenizer in MySQL mode, which gives StarRocks'
//! lexical rules: backquoted identifiers, `'...'` and `"..."` both string literals with
//! backslash escapes, and `--`, `#` and `/* */` comments (`/*! */` included, see
//! [`dialect`]). The parser walks those tokens.
//! Queries (`SELECT`, `WITH`, `EXPLAIN`, `VALUES`, and the query of `INSERT ... SELECT`) are
//! not parsed here: their exact source text is kept for DataFusion.
//!
//! Invariants:
//! - the parser never panics, whatever the input: every token access is bounds-checked and
//!   every failure is a [`ParseError`];
//! - every [`ParseError`] has `line >= 1` and `column >= 1` and points at the offending token
//!   (or at the end of input);
//! - keywords match case-insensitively; identifiers keep their case; a StarRocks reserved
//!   keyword is an identifier only when backquoted.
//!
//! ```
//! use shale_sql::ast::Statement;
//! use shale_sql::parser::parse;
//!
//! let statements = parse("USE sales; SELECT count(*) FROM orders;").unwrap();
//! assert_eq!(statements.len(), 2);
//! assert_eq!(
//!     statements[1],
//!     Statement::Query { sql: "SELECT count(*) FROM orders".to_string() }
//! );
//! ```

mod backup;
mod ddl;
mod dialect;
mod dml;
pub(crate) mod keywords;
mod source;
mod table_function;
mod user;

use sqlparser::tokenizer::{Token, Tokenizer};

use crate::ast::{
    Literal, ObjectName, PartitionBound, PartitionDef, PartitionValue, Properties, Statement,
};
use dialect::StarRocksDialect;
use keywords::is_reserved;
use source::{Pos, SourceMap};

pub use table_function::{FilesTableFunction, extract_files_table_function};

/// A syntax error, located at the offending token.
///
/// Displays as `line 1, column 8: expected TO, found 'FROM'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// What was wrong, e.g. `expected TO, found 'FROM'`.
    pub message: String,
    /// 1-based line of the offending token.
    pub line: u64,
    /// 1-based column (in characters) of the offending token.
    pub column: u64,
}

/// Parses a script of `;`-separated statements. Empty statements are skipped.
pub fn parse(sql: &str) -> Result<Vec<Statement>, ParseError> {
    let mut parser = Parser::new(sql)?;
    let mut statements = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.at_eof() {
            return Ok(statements);
        }
        statements.push(parser.parse_statement()?);
    }
}

/// Parses exactly one statement (a trailing `;` is allowed).
pub fn parse_one(sql: &str) -> Result<Statement, ParseError> {
    let mut parser = Parser::new(sql)?;
    while parser.consume_token(&Token::SemiColon) {}
    if parser.at_eof() {
        return parser.expected("a statement");
    }
    let statement = parser.parse_statement()?;
    while parser.consume_token(&Token::SemiColon) {}
    if !parser.at_eof() {
        return parser.expected("end of input after a single statement");
    }
    Ok(statement)
}

/// A token with its place in the source.
#[derive(Debug, Clone)]
pub(crate) struct Spanned {
    pub token: Token,
    /// Position of the first character.
    pub start: Pos,
    /// Position just after the last character.
    pub end: Pos,
}

/// The parser state: the non-whitespace tokens of one source text and a cursor.
#[derive(Debug)]
pub(crate) struct Parser<'a> {
    map: SourceMap<'a>,
    tokens: Vec<Spanned>,
    /// Returned when reading past the last token.
    eof: Spanned,
    /// Index of the current token in `tokens`.
    index: usize,
    /// End of the last token consumed (start of input before any).
    previous_end: Pos,
}

/// Unescaped text of a string literal token (either quote style).
fn string_value(token: &Token) -> Option<&str> {
    match token {
        Token::SingleQuotedString(value) | Token::DoubleQuotedString(value) => Some(value),
        _ => None,
    }
}

/// Keeps error messages short when they quote user input.
fn truncated(text: &str) -> String {
    const CHARS_MAX: usize = 40;
    match text.char_indices().nth(CHARS_MAX) {
        Some((offset, _)) => format!("{}...", text.get(..offset).unwrap_or("")),
        None => text.to_string(),
    }
}

/// How a token is named in "found ..." messages.
fn describe(token: &Token) -> String {
    match token {
        Token::EOF => "end of input".to_string(),
        // Rendered by hand: sqlparser's `Word` display panics on quote styles it does not know.
        Token::Word(word) => match word.quote_style {
            Some(quote) => format!("'{quote}{}{quote}'", truncated(&word.value)),
            None => format!("'{}'", truncated(&word.value)),
        },
        Token::SingleQuotedString(value) | Token::DoubleQuotedString(value) => {
            format!("string '{}'", truncated(value))
        }
        other => format!("'{}'", truncated(&other.to_string())),
    }
}

impl<'a> Parser<'a> {
    /// Tokenizes `source`, dropping whitespace and comments.
    pub(crate) fn new(source: &'a str) -> Result<Self, ParseError> {
        let dialect = StarRocksDialect::default();
        let map = SourceMap::new(source);
        let tokens = Tokenizer::new(&dialect, source)
            .tokenize_with_location()
            .map_err(|error| ParseError {
                message: error.message,
                line: error.location.line.max(1),
                column: error.location.column.max(1),
            })?;
        let tokens = tokens
            .into_iter()
            .filter(|token| !matches!(token.token, Token::Whitespace(_)))
            .map(|token| Spanned {
                token: token.token,
                start: Pos {
                    line: token.span.start.line,
                    column: token.span.start.column,
                },
                end: Pos {
                    line: token.span.end.line,
                    column: token.span.end.column,
                },
            })
            .collect();
        let end = map.end();
        Ok(Parser {
            map,
            tokens,
            eof: Spanned {
                token: Token::EOF,
                start: end,
                end,
            },
            index: 0,
            previous_end: Pos { line: 1, column: 1 },
        })
    }

    // ---------------------------------------------------------------------------------------
    // Cursor.

    /// The token `n` places ahead of the cursor (0 = current), or end of input.
    fn peek_nth(&self, n: usize) -> &Spanned {
        self.index
            .checked_add(n)
            .and_then(|index| self.tokens.get(index))
            .unwrap_or(&self.eof)
    }

    /// The current token, or end of input.
    fn peek(&self) -> &Spanned {
        self.peek_nth(0)
    }

    /// Moves past the current token and returns it.
    fn next(&mut self) -> Spanned {
        let token = self.peek().clone();
        if self.index < self.tokens.len() {
            self.index += 1;
        }
        self.previous_end = token.end;
        token
    }

    /// True at the end of the input.
    fn at_eof(&self) -> bool {
        matches!(self.peek().token, Token::EOF)
    }

    /// True at `;` or the end of the input.
    fn at_end_of_statement(&self) -> bool {
        matches!(self.peek().token, Token::EOF | Token::SemiColon)
    }

    /// The source text from the start of `first` to the end of the last token consumed.
    fn source_since(&self, first: &Spanned) -> String {
        self.map.slice(first.start, self.previous_end).to_string()
    }

    // ---------------------------------------------------------------------------------------
    // Errors.

    /// An error located at `token`.
    fn error_at(&self, token: &Spanned, message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            line: token.start.line.max(1),
            column: token.start.column.max(1),
        }
    }

    /// `expected <what>, found <current token>`, located at the current token.
    fn expected<T>(&self, what: &str) -> Result<T, ParseError> {
        let found = self.peek();
        Err(self.error_at(
            found,
            format!("expected {what}, found {}", describe(&found.token)),
        ))
    }

    // ---------------------------------------------------------------------------------------
    // Keywords and punctuation.

    /// True when the token `n` ahead is the unquoted word `keyword` (any case).
    fn peek_nth_keyword(&self, n: usize, keyword: &str) -> bool {
        match &self.peek_nth(n).token {
            Token::Word(word) => {
                word.quote_style.is_none() && word.value.eq_ignore_ascii_case(keyword)
            }
            _ => false,
        }
    }

    /// True when the current token is the keyword.
    fn peek_keyword(&self, keyword: &str) -> bool {
        self.peek_nth_keyword(0, keyword)
    }

    /// Consumes the keyword if it is next.
    fn parse_keyword(&mut self, keyword: &str) -> bool {
        let found = self.peek_keyword(keyword);
        if found {
            self.next();
        }
        found
    }

    /// Consumes the keyword sequence if all of it is next; otherwise consumes nothing.
    fn parse_keywords(&mut self, keywords: &[&str]) -> bool {
        let found = keywords
            .iter()
            .enumerate()
            .all(|(n, keyword)| self.peek_nth_keyword(n, keyword));
        if found {
            for _ in keywords {
                self.next();
            }
        }
        found
    }

    /// Consumes the first of `keywords` that is next, returning it.
    fn parse_one_of_keywords(&mut self, keywords: &[&'static str]) -> Option<&'static str> {
        let found = keywords
            .iter()
            .copied()
            .find(|keyword| self.peek_keyword(keyword));
        if found.is_some() {
            self.next();
        }
        found
    }

    /// Consumes the keyword or fails with `expected KEYWORD, found ...`.
    fn expect_keyword(&mut self, keyword: &str) -> Result<(), ParseError> {
        if self.parse_keyword(keyword) {
            Ok(())
        } else {
            self.expected(keyword)
        }
    }

    /// Consumes each keyword in turn.
    fn expect_keywords(&mut self, keywords: &[&str]) -> Result<(), ParseError> {
        keywords
            .iter()
            .try_for_each(|keyword| self.expect_keyword(keyword))
    }

    /// Consumes one of `keywords` or fails with `expected one of A, B, found ...`.
    fn expect_one_of_keywords(
        &mut self,
        keywords: &[&'static str],
    ) -> Result<&'static str, ParseError> {
        match self.parse_one_of_keywords(keywords) {
            Some(keyword) => Ok(keyword),
            None => self.expected(&format!("one of {}", keywords.join(", "))),
        }
    }

    /// Consumes `token` if it is next.
    fn consume_token(&mut self, token: &Token) -> bool {
        let found = self.peek().token == *token;
        if found {
            self.next();
        }
        found
    }

    /// Consumes `token` or fails with `expected '<token>', found ...`.
    fn expect_token(&mut self, token: &Token) -> Result<(), ParseError> {
        if self.consume_token(token) {
            Ok(())
        } else {
            self.expected(&format!("'{token}'"))
        }
    }

    /// Fails unless the statement ends here.
    fn expect_end_of_statement(&self) -> Result<(), ParseError> {
        if self.at_end_of_statement() {
            Ok(())
        } else {
            self.expected("end of statement")
        }
    }

    /// `IF EXISTS`, if present.
    fn parse_if_exists(&mut self) -> bool {
        self.parse_keywords(&["IF", "EXISTS"])
    }

    /// `IF NOT EXISTS`, if present.
    fn parse_if_not_exists(&mut self) -> bool {
        self.parse_keywords(&["IF", "NOT", "EXISTS"])
    }

    // ---------------------------------------------------------------------------------------
    // Names, literals and lists.

    /// True when the token `n` ahead can be an identifier.
    fn peek_nth_is_ident(&self, n: usize) -> bool {
        match &self.peek_nth(n).token {
            Token::Word(word) => word.quote_style.is_some() || !is_reserved(&word.value),
            _ => false,
        }
    }

    /// An identifier: an unreserved word, or any non-empty backquoted name.
    fn parse_ident(&mut self) -> Result<String, ParseError> {
        let token = self.peek();
        let Token::Word(word) = &token.token else {
            return self.expected("identifier");
        };
        if word.quote_style.is_none() && is_reserved(&word.value) {
            return Err(self.error_at(
                token,
                format!(
                    "expected identifier, found reserved keyword '{}' (write `{}` to use it as a name)",
                    word.value, word.value
                ),
            ));
        }
        if word.value.is_empty() {
            return Err(self.error_at(token, "expected identifier, found empty name ``"));
        }
        let value = word.value.clone();
        self.next();
        Ok(value)
    }

    /// `name` or `db.name`.
    fn parse_object_name(&mut self) -> Result<ObjectName, ParseError> {
        let first = self.parse_ident()?;
        if self.consume_token(&Token::Period) {
            let name = self.parse_ident()?;
            Ok(ObjectName {
                db: Some(first),
                name,
            })
        } else {
            Ok(ObjectName {
                db: None,
                name: first,
            })
        }
    }

    /// `item, item, ...` (at least one item).
    fn parse_comma_separated<T>(
        &mut self,
        mut parse_item: impl FnMut(&mut Self) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        let mut items = vec![parse_item(self)?];
        while self.consume_token(&Token::Comma) {
            items.push(parse_item(self)?);
        }
        Ok(items)
    }

    /// `(item, item, ...)` (at least one item).
    fn parse_parenthesized<T>(
        &mut self,
        parse_item: impl FnMut(&mut Self) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        self.expect_token(&Token::LParen)?;
        let items = self.parse_comma_separated(parse_item)?;
        self.expect_token(&Token::RParen)?;
        Ok(items)
    }

    /// `(a, b, ...)` of identifiers.
    fn parse_ident_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.parse_parenthesized(Self::parse_ident)
    }

    /// A string literal in either quote style.
    fn parse_string(&mut self) -> Result<String, ParseError> {
        match self.parse_optional_string() {
            Some(value) => Ok(value),
            None => self.expected("string literal"),
        }
    }

    /// An unsigned integer that fits `u32` (bucket counts, type parameters).
    fn parse_u32(&mut self) -> Result<u32, ParseError> {
        let token = self.peek();
        let Token::Number(text, _) = &token.token else {
            return self.expected("integer");
        };
        match text.parse::<u32>() {
            Ok(value) => {
                self.next();
                Ok(value)
            }
            Err(_) => Err(self.error_at(
                token,
                format!(
                    "expected integer between 0 and {}, found '{}'",
                    u32::MAX,
                    truncated(text)
                ),
            )),
        }
    }

    /// A string literal (either quote style), if next.
    fn parse_optional_string(&mut self) -> Option<String> {
        let value = string_value(&self.peek().token)?.to_string();
        self.next();
        Some(value)
    }

    /// A number with an optional leading `-`, as written, if next.
    fn parse_optional_number(&mut self) -> Option<String> {
        let negative = matches!(self.peek().token, Token::Minus);
        let Token::Number(text, _) = &self.peek_nth(usize::from(negative)).token else {
            return None;
        };
        let number = if negative {
            format!("-{text}")
        } else {
            text.clone()
        };
        if negative {
            self.next();
        }
        self.next();
        Some(number)
    }

    /// A literal: `NULL`, `TRUE`, `FALSE`, a number (optionally negative) or a string.
    fn parse_literal(&mut self) -> Result<Literal, ParseError> {
        if self.parse_keyword("NULL") {
            Ok(Literal::Null)
        } else if self.parse_keyword("TRUE") {
            Ok(Literal::Bool(true))
        } else if self.parse_keyword("FALSE") {
            Ok(Literal::Bool(false))
        } else if let Some(value) = self.parse_optional_string() {
            Ok(Literal::String(value))
        } else if let Some(number) = self.parse_optional_number() {
            Ok(Literal::Number(number))
        } else {
            self.expected("literal (NULL, TRUE, FALSE, a number or a string)")
        }
    }

    /// `PROPERTIES ("k" = "v", ...)` if present; empty otherwise.
    fn parse_optional_properties(&mut self) -> Result<Properties, ParseError> {
        if self.parse_keyword("PROPERTIES") {
            self.parse_property_list()
        } else {
            Ok(Vec::new())
        }
    }

    /// `("k" = "v", ...)`: at least one pair, both sides string literals.
    fn parse_property_list(&mut self) -> Result<Properties, ParseError> {
        self.parse_parenthesized(|parser| {
            let key = parser.parse_string()?;
            parser.expect_token(&Token::Eq)?;
            let value = parser.parse_string()?;
            Ok((key, value))
        })
    }

    /// `FROM db` or `IN db`, if present.
    fn parse_optional_from_database(&mut self) -> Result<Option<String>, ParseError> {
        if self.parse_one_of_keywords(&["FROM", "IN"]).is_some() {
            Ok(Some(self.parse_ident()?))
        } else {
            Ok(None)
        }
    }

    /// `PARTITION p VALUES ...` after the `PARTITION` keyword.
    fn parse_partition_def(&mut self) -> Result<PartitionDef, ParseError> {
        let name = self.parse_ident()?;
        let bound = self.parse_partition_bound()?;
        Ok(PartitionDef { name, bound })
    }

    /// `VALUES LESS THAN (...)`, `VALUES LESS THAN MAXVALUE`, `VALUES [(...), (...))` or
    /// `VALUES IN (...)`.
    fn parse_partition_bound(&mut self) -> Result<PartitionBound, ParseError> {
        self.expect_keyword("VALUES")?;
        if self.parse_keywords(&["LESS", "THAN"]) {
            if self.parse_keyword("MAXVALUE") {
                return Ok(PartitionBound::LessThan(vec![PartitionValue::MaxValue]));
            }
            return Ok(PartitionBound::LessThan(self.parse_partition_values()?));
        }
        if self.consume_token(&Token::LBracket) {
            let lower = self.parse_partition_values()?;
            self.expect_token(&Token::Comma)?;
            let upper = self.parse_partition_values()?;
            self.expect_token(&Token::RParen)?;
            return Ok(PartitionBound::Fixed { lower, upper });
        }
        if self.parse_keyword("IN") {
            let tuples = self.parse_parenthesized(|parser| {
                if matches!(parser.peek().token, Token::LParen) {
                    parser.parse_parenthesized(Self::parse_bound_value)
                } else {
                    Ok(vec![parser.parse_bound_value()?])
                }
            })?;
            return Ok(PartitionBound::In(tuples));
        }
        self.expected("LESS THAN, '[' or IN")
    }

    /// `(v, ...)` of a range bound: strings, numbers or `MAXVALUE`.
    fn parse_partition_values(&mut self) -> Result<Vec<PartitionValue>, ParseError> {
        self.parse_parenthesized(|parser| {
            if parser.parse_keyword("MAXVALUE") {
                Ok(PartitionValue::MaxValue)
            } else {
                Ok(PartitionValue::Literal(parser.parse_bound_value()?))
            }
        })
    }

    /// A partition bound value: a string or a (possibly negative) number, as text.
    fn parse_bound_value(&mut self) -> Result<String, ParseError> {
        if let Some(value) = self.parse_optional_string() {
            Ok(value)
        } else if let Some(number) = self.parse_optional_number() {
            Ok(number)
        } else {
            self.expected("partition value (a string or a number)")
        }
    }

    // ---------------------------------------------------------------------------------------
    // Statements.

    /// One statement, up to (not including) its `;` or the end of input.
    fn parse_statement(&mut self) -> Result<Statement, ParseError> {
        let statement = self.parse_statement_body()?;
        self.expect_end_of_statement()?;
        Ok(statement)
    }

    /// Dispatches on the leading keyword.
    fn parse_statement_body(&mut self) -> Result<Statement, ParseError> {
        if self.peek_is_query_start() {
            let sql = self.parse_query_text()?;
            return Ok(Statement::Query { sql });
        }
        const STATEMENTS: &[&str] = &[
            "CREATE", "DROP", "ALTER", "TRUNCATE", "INSERT", "USE", "SHOW", "DESC", "DESCRIBE",
            "BACKUP", "RESTORE", "CANCEL", "VERIFY", "GRANT", "REVOKE",
        ];
        let first = self.peek().clone();
        match self.parse_one_of_keywords(STATEMENTS) {
            Some("CREATE") => self.parse_create(),
            Some("DROP") => self.parse_drop(),
            Some("ALTER") => self.parse_alter_table(),
            Some("TRUNCATE") => self.parse_truncate_table(),
            Some("INSERT") => self.parse_insert(),
            Some("USE") => Ok(Statement::Use {
                database: self.parse_ident()?,
            }),
            Some("SHOW") => self.parse_show(),
            Some("DESC" | "DESCRIBE") => Ok(Statement::Describe {
                table: self.parse_object_name()?,
            }),
            Some("BACKUP") => self.parse_backup(),
            Some("RESTORE") => self.parse_restore(),
            Some("CANCEL") => self.parse_cancel(),
            Some("VERIFY") => self.parse_verify_snapshot(),
            Some("GRANT") => self.parse_grant(),
            Some("REVOKE") => self.parse_revoke(),
            _ => match &first.token {
                Token::Word(word) if word.quote_style.is_none() => Err(self.error_at(
                    &first,
                    format!("unsupported statement '{}'", truncated(&word.value)),
                )),
                _ => self.expected("a statement"),
            },
        }
    }

    /// `CREATE ...`: database, table, repository or user.
    fn parse_create(&mut self) -> Result<Statement, ParseError> {
        match self.expect_one_of_keywords(&["DATABASE", "TABLE", "REPOSITORY", "READ", "USER"])? {
            "DATABASE" => self.parse_create_database(),
            "TABLE" => self.parse_create_table(),
            "READ" => {
                self.expect_keywords(&["ONLY", "REPOSITORY"])?;
                self.parse_create_repository(true)
            }
            "REPOSITORY" => self.parse_create_repository(false),
            _ => self.parse_create_user(),
        }
    }

    /// `DROP ...`: database, table, repository, snapshot or user.
    fn parse_drop(&mut self) -> Result<Statement, ParseError> {
        match self.expect_one_of_keywords(&[
            "DATABASE",
            "TABLE",
            "REPOSITORY",
            "SNAPSHOT",
            "USER",
        ])? {
            "DATABASE" => self.parse_drop_database(),
            "TABLE" => self.parse_drop_table(),
            "REPOSITORY" => Ok(Statement::DropRepository {
                name: self.parse_ident()?,
            }),
            "SNAPSHOT" => self.parse_drop_snapshot(),
            _ => self.parse_drop_user(),
        }
    }

    /// `SHOW ...`.
    fn parse_show(&mut self) -> Result<Statement, ParseError> {
        const SHOWABLE: &[&str] = &[
            "DATABASES",
            "TABLES",
            "PARTITIONS",
            "CREATE",
            "REPOSITORIES",
            "BACKUP",
            "RESTORE",
            "SNAPSHOT",
            "GRANTS",
        ];
        match self.expect_one_of_keywords(SHOWABLE)? {
            "DATABASES" => Ok(Statement::ShowDatabases),
            "TABLES" => Ok(Statement::ShowTables {
                database: self.parse_optional_from_database()?,
            }),
            "PARTITIONS" => {
                self.expect_keyword("FROM")?;
                Ok(Statement::ShowPartitions {
                    table: self.parse_object_name()?,
                })
            }
            "CREATE" => {
                self.expect_keyword("TABLE")?;
                Ok(Statement::ShowCreateTable {
                    table: self.parse_object_name()?,
                })
            }
            "REPOSITORIES" => Ok(Statement::ShowRepositories),
            "BACKUP" => Ok(Statement::ShowBackup {
                database: self.parse_optional_from_database()?,
            }),
            "RESTORE" => Ok(Statement::ShowRestore {
                database: self.parse_optional_from_database()?,
            }),
            "SNAPSHOT" => self.parse_show_snapshot(),
            _ => self.parse_show_grants(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display_names_position_then_problem() {
        let error = parse("RESTORE SNAPSHOT s TO r")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("line 1, column 20: expected FROM, found 'TO'")
        );
    }

    #[test]
    fn parse_one_wants_exactly_one_statement() {
        assert_eq!(
            parse_one(" USE a ;; "),
            Ok(Statement::Use {
                database: "a".to_string()
            })
        );
        let empty = parse_one(" ; -- nothing\n").err().map(|e| e.to_string());
        assert_eq!(
            empty.as_deref(),
            Some("line 2, column 1: expected a statement, found end of input")
        );
        let two = parse_one("USE a; USE b").err().map(|e| e.to_string());
        assert_eq!(
            two.as_deref(),
            Some("line 1, column 8: expected end of input after a single statement, found 'USE'")
        );
    }

    #[test]
    fn long_input_is_truncated_in_messages() {
        let name = "x".repeat(100);
        let error = parse(&format!("USE a {name}")).err().map(|e| e.message);
        assert_eq!(
            error,
            Some(format!(
                "expected end of statement, found '{}...'",
                "x".repeat(40)
            ))
        );
    }
}
