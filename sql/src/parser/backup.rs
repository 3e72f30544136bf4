//! Repositories, snapshots, BACKUP and RESTORE (StarRocks syntax, v3.x to v4.2 forms).

use sqlparser::tokenizer::Token;

use super::{ParseError, Parser};
use crate::ast::{Backup, CreateRepository, Restore, SnapshotFilter, Statement, TableRef};

/// StarRocks' message for any `WHERE` of `SHOW SNAPSHOT` it does not accept.
const SNAPSHOT_WHERE_SHAPE: &str = "Where clause should looks like: SNAPSHOT = 'your_snapshot_name' [AND TIMESTAMP = '2018-04-18-19-19-10']";

/// One predicate of a snapshot `WHERE` clause.
enum SnapshotPredicate {
    /// `key = 'value'`, key lowercased.
    Equals { key: String, value: String },
    /// `SNAPSHOT IN ('a', ...)`.
    In(Vec<String>),
}

impl Parser<'_> {
    /// `REPOSITORY r WITH BROKER [b] ON LOCATION "..." [PROPERTIES (...)]`, after
    /// `CREATE [READ ONLY] REPOSITORY`.
    pub(super) fn parse_create_repository(
        &mut self,
        read_only: bool,
    ) -> Result<Statement, ParseError> {
        let name = self.parse_ident()?;
        self.expect_keywords(&["WITH", "BROKER"])?;
        let broker = if self.peek_keyword("ON") {
            None
        } else {
            Some(self.parse_ident()?)
        };
        self.expect_keywords(&["ON", "LOCATION"])?;
        let location = self.parse_string()?;
        let properties = self.parse_optional_properties()?;
        Ok(Statement::CreateRepository(CreateRepository {
            name,
            read_only,
            broker,
            location,
            properties,
        }))
    }

    /// `[DATABASE db] SNAPSHOT [db.]snap TO r [ON (...)] [PROPERTIES (...)]`, after `BACKUP`.
    pub(super) fn parse_backup(&mut self) -> Result<Statement, ParseError> {
        let database_clause = if self.parse_keyword("DATABASE") {
            Some(self.parse_ident()?)
        } else {
            None
        };
        self.expect_keyword("SNAPSHOT")?;
        let name_token = self.peek().clone();
        let name = self.parse_object_name()?;
        let database = match (database_clause, name.db) {
            (Some(_), Some(_)) => {
                return Err(self.error_at(
                    &name_token,
                    "the database is given twice: write either DATABASE db SNAPSHOT snap or SNAPSHOT db.snap",
                ));
            }
            (clause, prefix) => clause.or(prefix),
        };
        self.expect_keyword("TO")?;
        let repository = self.parse_ident()?;
        let tables = self.parse_optional_on_tables()?;
        let properties = self.parse_optional_properties()?;
        Ok(Statement::Backup(Backup {
            database,
            snapshot: name.name,
            repository,
            tables,
            properties,
        }))
    }

    /// `SNAPSHOT [db.]snap FROM r [DATABASE src [AS db]] [ON (...)] [PROPERTIES (...)]`, after
    /// `RESTORE`.
    pub(super) fn parse_restore(&mut self) -> Result<Statement, ParseError> {
        self.expect_keyword("SNAPSHOT")?;
        let name = self.parse_object_name()?;
        self.expect_keyword("FROM")?;
        let repository = self.parse_ident()?;
        let mut database = name.db;
        let mut source_database = None;
        if self.parse_keyword("DATABASE") {
            source_database = Some(self.parse_ident()?);
            if self.parse_keyword("AS") {
                let target_token = self.peek().clone();
                let target = self.parse_ident()?;
                if database.is_some() {
                    return Err(self.error_at(
                        &target_token,
                        "the target database is given twice: write either SNAPSHOT db.snap or DATABASE src AS db",
                    ));
                }
                database = Some(target);
            }
        }
        let tables = self.parse_optional_on_tables()?;
        let properties = self.parse_optional_properties()?;
        Ok(Statement::Restore(Restore {
            database,
            snapshot: name.name,
            repository,
            source_database,
            tables,
            properties,
        }))
    }

    /// `ON (item, ...)` of BACKUP / RESTORE, if present; empty otherwise.
    fn parse_optional_on_tables(&mut self) -> Result<Vec<TableRef>, ParseError> {
        if self.parse_keyword("ON") {
            self.parse_parenthesized(Self::parse_table_ref)
        } else {
            Ok(Vec::new())
        }
    }

    /// `[TABLE | TABLES] t [PARTITION (p, ...)] [AS alias]`.
    fn parse_table_ref(&mut self) -> Result<TableRef, ParseError> {
        // v3.4 object kinds other than tables are not supported; say so rather than
        // "reserved keyword" or "expected end of statement".
        const OTHER_OBJECTS: &[&str] = &[
            "ALL",
            "VIEW",
            "VIEWS",
            "MATERIALIZED",
            "FUNCTION",
            "FUNCTIONS",
        ];
        if let Some(kind) = OTHER_OBJECTS
            .iter()
            .find(|keyword| self.peek_keyword(keyword))
            && (*kind == "ALL" || matches!(self.peek_nth(1).token, Token::Word(_)))
        {
            return Err(self.error_at(
                self.peek(),
                format!("only tables can be listed in ON: {kind} objects are not supported"),
            ));
        }
        // `TABLE t` / `TABLES t` (v3.4); a table named `tables` is `ON (tables)`.
        if (self.peek_keyword("TABLE") || self.peek_keyword("TABLES")) && self.peek_nth_is_ident(1)
        {
            self.next();
        }
        let name = self.parse_object_name()?;
        let partitions = if self.parse_keyword("PARTITION") {
            self.parse_ident_list()?
        } else {
            Vec::new()
        };
        let alias = if self.parse_keyword("AS") {
            Some(self.parse_ident()?)
        } else {
            None
        };
        Ok(TableRef {
            name,
            partitions,
            alias,
        })
    }

    /// `BACKUP | RESTORE [FROM | IN db]`, after `CANCEL`.
    pub(super) fn parse_cancel(&mut self) -> Result<Statement, ParseError> {
        let backup = self.expect_one_of_keywords(&["BACKUP", "RESTORE"])? == "BACKUP";
        let database = self.parse_optional_from_database()?;
        Ok(if backup {
            Statement::CancelBackup { database }
        } else {
            Statement::CancelRestore { database }
        })
    }

    /// `ON r [WHERE ...]`, after `SHOW SNAPSHOT`.
    pub(super) fn parse_show_snapshot(&mut self) -> Result<Statement, ParseError> {
        self.expect_keyword("ON")?;
        let repository = self.parse_ident()?;
        let filter = if self.parse_keyword("WHERE") {
            self.parse_snapshot_where()?
        } else {
            SnapshotFilter::All
        };
        Ok(Statement::ShowSnapshot { repository, filter })
    }

    /// `snap ON r [FORCE]` or `ON r WHERE ... [FORCE]`, after `DROP SNAPSHOT`.
    pub(super) fn parse_drop_snapshot(&mut self) -> Result<Statement, ParseError> {
        let (repository, filter) = if self.parse_keyword("ON") {
            let repository = self.parse_ident()?;
            self.expect_keyword("WHERE")?;
            (repository, self.parse_snapshot_where()?)
        } else {
            let snapshot = self.parse_ident()?;
            self.expect_keyword("ON")?;
            (self.parse_ident()?, SnapshotFilter::Named(snapshot))
        };
        let force = self.parse_keyword("FORCE");
        Ok(Statement::DropSnapshot {
            repository,
            filter,
            force,
        })
    }

    /// `SNAPSHOT snap ON r [DEEP]`, after `VERIFY`.
    pub(super) fn parse_verify_snapshot(&mut self) -> Result<Statement, ParseError> {
        self.expect_keyword("SNAPSHOT")?;
        let snapshot = self.parse_ident()?;
        self.expect_keyword("ON")?;
        let repository = self.parse_ident()?;
        let deep = self.parse_keyword("DEEP");
        Ok(Statement::VerifySnapshot {
            snapshot,
            repository,
            deep,
        })
    }

    /// The expression after `WHERE` in SHOW / DROP SNAPSHOT. Only StarRocks' shapes are
    /// accepted: `SNAPSHOT = 'x'`, `SNAPSHOT = 'x' AND TIMESTAMP = 'y'` (either order) and
    /// `SNAPSHOT IN ('a', ...)`; anything else fails with StarRocks' message.
    fn parse_snapshot_where(&mut self) -> Result<SnapshotFilter, ParseError> {
        let start = self.peek().clone();
        let mut predicates = vec![self.parse_snapshot_predicate()?];
        while self.parse_keyword("AND") {
            predicates.push(self.parse_snapshot_predicate()?);
        }
        if !self.at_end_of_statement() && !self.peek_keyword("FORCE") {
            return Err(self.error_at(self.peek(), SNAPSHOT_WHERE_SHAPE));
        }
        let filter = match predicates.as_mut_slice() {
            [SnapshotPredicate::Equals { key, value }] if key == "snapshot" => {
                SnapshotFilter::Named(std::mem::take(value))
            }
            [SnapshotPredicate::In(names)] => SnapshotFilter::AnyOf(std::mem::take(names)),
            [
                SnapshotPredicate::Equals {
                    key: first_key,
                    value: first,
                },
                SnapshotPredicate::Equals {
                    key: second_key,
                    value: second,
                },
            ] => match (first_key.as_str(), second_key.as_str()) {
                ("snapshot", "timestamp") => SnapshotFilter::NamedAt {
                    name: std::mem::take(first),
                    timestamp: std::mem::take(second),
                },
                ("timestamp", "snapshot") => SnapshotFilter::NamedAt {
                    name: std::mem::take(second),
                    timestamp: std::mem::take(first),
                },
                _ => return Err(self.error_at(&start, SNAPSHOT_WHERE_SHAPE)),
            },
            _ => return Err(self.error_at(&start, SNAPSHOT_WHERE_SHAPE)),
        };
        Ok(filter)
    }

    /// `key = 'value'` or `SNAPSHOT IN ('a', ...)`.
    fn parse_snapshot_predicate(&mut self) -> Result<SnapshotPredicate, ParseError> {
        let key_token = self.peek().clone();
        let Token::Word(word) = &key_token.token else {
            return Err(self.error_at(&key_token, SNAPSHOT_WHERE_SHAPE));
        };
        let key = word.value.to_ascii_lowercase();
        self.next();
        if self.consume_token(&Token::Eq) {
            return match self.parse_optional_string() {
                Some(value) => Ok(SnapshotPredicate::Equals { key, value }),
                None => Err(self.error_at(self.peek(), SNAPSHOT_WHERE_SHAPE)),
            };
        }
        if !self.parse_keyword("IN") {
            return Err(self.error_at(self.peek(), SNAPSHOT_WHERE_SHAPE));
        }
        if key != "snapshot" {
            // StarRocks' wording, kept as is.
            return Err(self.error_at(&key_token, "Left expr of should be snapshot"));
        }
        if !self.consume_token(&Token::LParen) {
            return Err(self.error_at(self.peek(), SNAPSHOT_WHERE_SHAPE));
        }
        let mut names = Vec::new();
        loop {
            match self.parse_optional_string() {
                Some(name) => names.push(name),
                None if self.at_end_of_statement()
                    || matches!(self.peek().token, Token::RParen) =>
                {
                    return Err(self.error_at(self.peek(), SNAPSHOT_WHERE_SHAPE));
                }
                None => {
                    return Err(
                        self.error_at(self.peek(), "Child of in predicate should be string value")
                    );
                }
            }
            if self.consume_token(&Token::RParen) {
                return Ok(SnapshotPredicate::In(names));
            }
            if !self.consume_token(&Token::Comma) {
                return Err(self.error_at(self.peek(), SNAPSHOT_WHERE_SHAPE));
            }
        }
    }
}
