//! Databases, tables and partitions: `CREATE`/`DROP DATABASE`, `CREATE`/`ALTER`/`TRUNCATE`/
//! `DROP TABLE`.

use sqlparser::tokenizer::Token;

use super::{ParseError, Parser};
use crate::ast::{
    AlterTableAction, ColumnDef, CreateTable, Distribution, KeysKind, PartitionBound, PartitionDef,
    PartitionKind, Partitioning, Statement, TableKeys, TypeName,
};

impl Parser<'_> {
    /// `CREATE DATABASE [IF NOT EXISTS] db`, after `CREATE DATABASE`.
    pub(super) fn parse_create_database(&mut self) -> Result<Statement, ParseError> {
        let if_not_exists = self.parse_if_not_exists();
        let name = self.parse_ident()?;
        Ok(Statement::CreateDatabase {
            name,
            if_not_exists,
        })
    }

    /// `DROP DATABASE [IF EXISTS] db [FORCE]`, after `DROP DATABASE`.
    pub(super) fn parse_drop_database(&mut self) -> Result<Statement, ParseError> {
        let if_exists = self.parse_if_exists();
        let name = self.parse_ident()?;
        let force = self.parse_keyword("FORCE");
        Ok(Statement::DropDatabase {
            name,
            if_exists,
            force,
        })
    }

    /// `DROP TABLE [IF EXISTS] [db.]t [FORCE]`, after `DROP TABLE`.
    pub(super) fn parse_drop_table(&mut self) -> Result<Statement, ParseError> {
        let if_exists = self.parse_if_exists();
        let table = self.parse_object_name()?;
        let force = self.parse_keyword("FORCE");
        Ok(Statement::DropTable {
            table,
            if_exists,
            force,
        })
    }

    /// `TRUNCATE TABLE [db.]t [PARTITION (p, ...)]`, after `TRUNCATE`.
    pub(super) fn parse_truncate_table(&mut self) -> Result<Statement, ParseError> {
        self.expect_keyword("TABLE")?;
        let table = self.parse_object_name()?;
        let partitions = if self.parse_keyword("PARTITION") {
            self.parse_ident_list()?
        } else {
            Vec::new()
        };
        Ok(Statement::TruncateTable { table, partitions })
    }

    /// `ALTER TABLE [db.]t ADD PARTITION ... | DROP PARTITION ...`, after `ALTER`.
    pub(super) fn parse_alter_table(&mut self) -> Result<Statement, ParseError> {
        self.expect_keyword("TABLE")?;
        let table = self.parse_object_name()?;
        let action = match self.expect_one_of_keywords(&["ADD", "DROP"])? {
            "ADD" => {
                self.expect_keyword("PARTITION")?;
                let if_not_exists = self.parse_if_not_exists();
                let partition = self.parse_partition_def()?;
                AlterTableAction::AddPartition {
                    partition,
                    if_not_exists,
                }
            }
            _ => {
                self.expect_keyword("PARTITION")?;
                let if_exists = self.parse_if_exists();
                let name = self.parse_ident()?;
                let force = self.parse_keyword("FORCE");
                AlterTableAction::DropPartition {
                    name,
                    if_exists,
                    force,
                }
            }
        };
        Ok(Statement::AlterTable { table, action })
    }

    /// `CREATE TABLE ...`, after `CREATE TABLE`. Clauses must come in StarRocks' order.
    pub(super) fn parse_create_table(&mut self) -> Result<Statement, ParseError> {
        let if_not_exists = self.parse_if_not_exists();
        let name = self.parse_object_name()?;
        let columns = self.parse_parenthesized(Self::parse_column_def)?;
        let engine = if self.parse_keyword("ENGINE") {
            self.expect_token(&Token::Eq)?;
            Some(self.parse_ident()?)
        } else {
            None
        };
        let keys = self.parse_optional_table_keys()?;
        let comment = if self.parse_keyword("COMMENT") {
            Some(self.parse_string()?)
        } else {
            None
        };
        let partitioning = if self.parse_keywords(&["PARTITION", "BY"]) {
            Some(self.parse_partitioning()?)
        } else {
            None
        };
        let distribution = if self.parse_keywords(&["DISTRIBUTED", "BY"]) {
            Some(self.parse_distribution()?)
        } else {
            None
        };
        let properties = self.parse_optional_properties()?;
        Ok(Statement::CreateTable(Box::new(CreateTable {
            name,
            if_not_exists,
            columns,
            engine,
            keys,
            comment,
            partitioning,
            distribution,
            properties,
        })))
    }

    /// `col TYPE [NOT NULL | NULL] [DEFAULT literal] [COMMENT 'x']`.
    fn parse_column_def(&mut self) -> Result<ColumnDef, ParseError> {
        let name = self.parse_ident()?;
        let data_type = self.parse_type_name()?;
        let nullable = if self.parse_keywords(&["NOT", "NULL"]) {
            false
        } else {
            self.parse_keyword("NULL");
            true
        };
        let default = if self.parse_keyword("DEFAULT") {
            Some(self.parse_literal()?)
        } else {
            None
        };
        let comment = if self.parse_keyword("COMMENT") {
            Some(self.parse_string()?)
        } else {
            None
        };
        Ok(ColumnDef {
            name,
            data_type,
            nullable,
            default,
            comment,
        })
    }

    /// A type name (any unquoted word, reserved or not) with optional `(n)` or `(n, m)`.
    fn parse_type_name(&mut self) -> Result<TypeName, ParseError> {
        let name = match &self.peek().token {
            Token::Word(word) if word.quote_style.is_none() => word.value.to_ascii_uppercase(),
            _ => return self.expected("column type"),
        };
        self.next();
        if matches!(self.peek().token, Token::Lt) {
            return Err(self.error_at(
                self.peek(),
                format!("nested type {name}<...> is not supported"),
            ));
        }
        let params = if matches!(self.peek().token, Token::LParen) {
            let open = self.peek().clone();
            let params = self.parse_parenthesized(Self::parse_u32)?;
            if params.len() > 2 {
                return Err(self.error_at(
                    &open,
                    format!(
                        "type {name} takes at most 2 parameters, found {}",
                        params.len()
                    ),
                ));
            }
            params
        } else {
            Vec::new()
        };
        Ok(TypeName { name, params })
    }

    /// `DUPLICATE | AGGREGATE | UNIQUE | PRIMARY KEY (c, ...)`, if present.
    fn parse_optional_table_keys(&mut self) -> Result<Option<TableKeys>, ParseError> {
        const KINDS: &[(&str, KeysKind)] = &[
            ("DUPLICATE", KeysKind::Duplicate),
            ("AGGREGATE", KeysKind::Aggregate),
            ("UNIQUE", KeysKind::Unique),
            ("PRIMARY", KeysKind::Primary),
        ];
        for &(keyword, kind) in KINDS {
            if self.parse_keywords(&[keyword, "KEY"]) {
                let columns = self.parse_ident_list()?;
                return Ok(Some(TableKeys { kind, columns }));
            }
        }
        Ok(None)
    }

    /// `RANGE (c, ...) (PARTITION ..., ...)` or `LIST (c, ...) (PARTITION ..., ...)`, after
    /// `PARTITION BY`.
    fn parse_partitioning(&mut self) -> Result<Partitioning, ParseError> {
        let kind = match self.expect_one_of_keywords(&["RANGE", "LIST"])? {
            "RANGE" => PartitionKind::Range,
            _ => PartitionKind::List,
        };
        let columns = self.parse_ident_list()?;
        self.expect_token(&Token::LParen)?;
        let mut partitions = Vec::new();
        if !self.consume_token(&Token::RParen) {
            partitions = self.parse_comma_separated(|parser| {
                parser.expect_keyword("PARTITION")?;
                let name = parser.parse_ident()?;
                let values = parser.peek().clone();
                let bound = parser.parse_partition_bound()?;
                let fits = match bound {
                    PartitionBound::LessThan(_) | PartitionBound::Fixed { .. } => {
                        kind == PartitionKind::Range
                    }
                    PartitionBound::In(_) => kind == PartitionKind::List,
                };
                if !fits {
                    let (kind_name, needed) = match kind {
                        PartitionKind::Range => ("RANGE", "VALUES LESS THAN or VALUES [...)"),
                        PartitionKind::List => ("LIST", "VALUES IN"),
                    };
                    return Err(parser.error_at(
                        &values,
                        format!(
                            "partition {name} of a {kind_name} partitioned table needs {needed}"
                        ),
                    ));
                }
                Ok(PartitionDef { name, bound })
            })?;
            self.expect_token(&Token::RParen)?;
        }
        Ok(Partitioning {
            kind,
            columns,
            partitions,
        })
    }

    /// `HASH (c, ...) [BUCKETS n]` or `RANDOM [BUCKETS n]`, after `DISTRIBUTED BY`.
    fn parse_distribution(&mut self) -> Result<Distribution, ParseError> {
        let hash = self.expect_one_of_keywords(&["HASH", "RANDOM"])? == "HASH";
        let columns = if hash {
            self.parse_ident_list()?
        } else {
            Vec::new()
        };
        let buckets = if self.parse_keyword("BUCKETS") {
            let token = self.peek().clone();
            let count = self.parse_u32()?;
            if count == 0 {
                return Err(self.error_at(&token, "BUCKETS must be at least 1"));
            }
            Some(count)
        } else {
            None
        };
        Ok(if hash {
            Distribution::Hash { columns, buckets }
        } else {
            Distribution::Random { buckets }
        })
    }
}
