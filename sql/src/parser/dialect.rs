//! The lexical dialect: MySQL's, except that `/*! ... */` is an ordinary comment.
//!
//! StarRocks reads `/*! ... */` as a comment. sqlparser's MySQL dialect re-tokenizes its
//! content as SQL instead, and gives those tokens positions that point inside the comment
//! (they all start at the comment's `/`), which would make sliced query text wrong: the cargo
//! fuzz target found `(/*!!++*/` slicing to `(/*!!++`. [`StarRocksDialect`] delegates every
//! lexical decision to [`MySqlDialect`] and reports MySQL's type id, so the tokenizer's
//! `dialect_of!(MySqlDialect)` checks (`#` comments, `b'...'` strings) still apply, and only
//! turns comment hints off.

use std::any::TypeId;

use sqlparser::dialect::{Dialect, MySqlDialect};

/// MySQL lexing without comment hints. Only the methods the tokenizer calls are delegated:
/// the statements parsed here never reach sqlparser's parser.
#[derive(Debug, Default)]
pub(crate) struct StarRocksDialect {
    mysql: MySqlDialect,
}

impl Dialect for StarRocksDialect {
    fn dialect(&self) -> TypeId {
        self.mysql.dialect()
    }

    fn supports_multiline_comment_hints(&self) -> bool {
        false
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        self.mysql.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.mysql.is_identifier_part(ch)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.mysql.is_delimited_identifier_start(ch)
    }

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        self.mysql.identifier_quote_style(identifier)
    }

    fn is_custom_operator_part(&self, ch: char) -> bool {
        self.mysql.is_custom_operator_part(ch)
    }

    fn requires_single_line_comment_whitespace(&self) -> bool {
        self.mysql.requires_single_line_comment_whitespace()
    }

    fn supports_nested_comments(&self) -> bool {
        self.mysql.supports_nested_comments()
    }

    fn supports_string_literal_backslash_escape(&self) -> bool {
        self.mysql.supports_string_literal_backslash_escape()
    }

    fn ignores_wildcard_escapes(&self) -> bool {
        self.mysql.ignores_wildcard_escapes()
    }

    fn supports_triple_quoted_string(&self) -> bool {
        self.mysql.supports_triple_quoted_string()
    }

    fn supports_string_escape_constant(&self) -> bool {
        self.mysql.supports_string_escape_constant()
    }

    fn supports_unicode_string_literal(&self) -> bool {
        self.mysql.supports_unicode_string_literal()
    }

    fn supports_quote_delimited_string(&self) -> bool {
        self.mysql.supports_quote_delimited_string()
    }

    fn supports_numeric_prefix(&self) -> bool {
        self.mysql.supports_numeric_prefix()
    }

    fn supports_numeric_literal_underscores(&self) -> bool {
        self.mysql.supports_numeric_literal_underscores()
    }

    fn supports_dollar_placeholder(&self) -> bool {
        self.mysql.supports_dollar_placeholder()
    }

    fn supports_dollar_as_money_prefix(&self) -> bool {
        self.mysql.supports_dollar_as_money_prefix()
    }

    fn supports_pipe_operator(&self) -> bool {
        self.mysql.supports_pipe_operator()
    }

    fn supports_geometric_types(&self) -> bool {
        self.mysql.supports_geometric_types()
    }
}

#[cfg(test)]
mod tests {
    use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

    use super::*;

    fn tokens(dialect: &dyn Dialect, sql: &str) -> Vec<Token> {
        Tokenizer::new(dialect, sql).tokenize().unwrap_or_default()
    }

    #[test]
    fn lexes_like_mysql_without_hints() {
        let sql = "SELECT `a``b`, 'x\\'y', \"z\", b'01', x'ff', 1e3, 1a, $d, @v # c\n -- d\n /* e */ <=> << >> ?";
        let ours = tokens(&StarRocksDialect::default(), sql);
        assert!(ours.len() > 20);
        assert_eq!(ours, tokens(&MySqlDialect {}, sql));
    }

    #[test]
    fn comment_hints_are_plain_comments() {
        let ours = tokens(&StarRocksDialect::default(), "/*!50110 SELECT */");
        assert_eq!(
            ours,
            vec![Token::Whitespace(Whitespace::MultiLineComment(
                "!50110 SELECT ".to_string()
            ))]
        );
    }
}
