//! The statements shale understands, as parsed from StarRocks-dialect SQL.
//!
//! The parser ([`crate::parser`]) checks syntax only: names are not resolved, property keys
//! and type names are not validated, and combinations StarRocks rejects at analysis time
//! (an alias in a BACKUP `ON` list, a partition value count that does not match the partition
//! columns, ...) are recorded faithfully so the executor can reject them with StarRocks'
//! messages.
//!
//! Every type prints back as canonical SQL through `Display`: keywords in uppercase, string
//! literals in single quotes, identifiers backquoted only when they must be. Parsing that text
//! gives back an equal value, which the tests check for every corpus case.
//!
//! Invariants of values produced by the parser:
//! - identifiers are never empty and keep the case they were written in;
//! - lists documented as non-empty (columns of a table, rows of `VALUES`, ...) are non-empty;
//! - [`Statement::Query`] and [`InsertSource::Query`] hold the exact source text of the query,
//!   from its first token to its last, comments inside included.

use std::fmt;

use crate::parser::keywords::is_plain_identifier;

/// Properties in the order written: `PROPERTIES ("k" = "v", ...)`. Keys are not deduplicated.
pub type Properties = Vec<(String, String)>;

/// One parsed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// `SELECT`, `WITH`, `EXPLAIN` or `VALUES` query, kept as source text for DataFusion.
    Query {
        /// Exact source text of the statement, without the trailing `;`.
        sql: String,
    },
    /// `CREATE DATABASE [IF NOT EXISTS] db`.
    CreateDatabase {
        /// Database name.
        name: String,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
    },
    /// `DROP DATABASE [IF EXISTS] db [FORCE]`.
    DropDatabase {
        /// Database name.
        name: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
        /// `FORCE` was given.
        force: bool,
    },
    /// `USE db`.
    Use {
        /// Database to make current.
        database: String,
    },
    /// `SHOW DATABASES`.
    ShowDatabases,
    /// `SHOW TABLES [FROM | IN db]`.
    ShowTables {
        /// Database; the session's current one when `None`.
        database: Option<String>,
    },
    /// `SHOW PARTITIONS FROM [db.]t`.
    ShowPartitions {
        /// Table whose partitions are listed.
        table: ObjectName,
    },
    /// `DESC | DESCRIBE [db.]t`.
    Describe {
        /// Table to describe.
        table: ObjectName,
    },
    /// `SHOW CREATE TABLE [db.]t`.
    ShowCreateTable {
        /// Table whose definition is shown.
        table: ObjectName,
    },
    /// `CREATE TABLE ...`.
    CreateTable(Box<CreateTable>),
    /// `ALTER TABLE [db.]t ADD PARTITION ... | DROP PARTITION ...`.
    AlterTable {
        /// Table to alter.
        table: ObjectName,
        /// What to change.
        action: AlterTableAction,
    },
    /// `TRUNCATE TABLE [db.]t [PARTITION (p, ...)]`.
    TruncateTable {
        /// Table to truncate.
        table: ObjectName,
        /// Partitions to truncate; empty means the whole table.
        partitions: Vec<String>,
    },
    /// `DROP TABLE [IF EXISTS] [db.]t [FORCE]`.
    DropTable {
        /// Table to drop.
        table: ObjectName,
        /// `IF EXISTS` was given.
        if_exists: bool,
        /// `FORCE` was given.
        force: bool,
    },
    /// `INSERT INTO [db.]t [(cols)] VALUES ... | <query>`.
    Insert(Insert),
    /// `CREATE [READ ONLY] REPOSITORY r WITH BROKER [b] ON LOCATION "..." [PROPERTIES (...)]`.
    CreateRepository(CreateRepository),
    /// `DROP REPOSITORY r`.
    DropRepository {
        /// Repository name.
        name: String,
    },
    /// `SHOW REPOSITORIES`.
    ShowRepositories,
    /// `BACKUP [DATABASE db] SNAPSHOT [db.]snap TO r [ON (...)] [PROPERTIES (...)]`.
    Backup(Backup),
    /// `RESTORE SNAPSHOT [db.]snap FROM r [DATABASE src [AS dst]] [ON (...)] [PROPERTIES (...)]`.
    Restore(Restore),
    /// `SHOW BACKUP [FROM | IN db]`.
    ShowBackup {
        /// Database; every database when `None` (StarRocks semantics).
        database: Option<String>,
    },
    /// `SHOW RESTORE [FROM | IN db]`.
    ShowRestore {
        /// Database; every database when `None` (StarRocks semantics).
        database: Option<String>,
    },
    /// `CANCEL BACKUP [FROM | IN db]`.
    CancelBackup {
        /// Database; the session's current one when `None`.
        database: Option<String>,
    },
    /// `CANCEL RESTORE [FROM | IN db]`.
    CancelRestore {
        /// Database; the session's current one when `None`.
        database: Option<String>,
    },
    /// `SHOW SNAPSHOT ON r [WHERE ...]`.
    ShowSnapshot {
        /// Repository to list.
        repository: String,
        /// Which snapshots to show.
        filter: SnapshotFilter,
    },
    /// `DROP SNAPSHOT snap ON r [FORCE]` or `DROP SNAPSHOT ON r WHERE ... [FORCE]`.
    DropSnapshot {
        /// Repository holding the snapshots.
        repository: String,
        /// Which snapshots to drop; never [`SnapshotFilter::All`].
        filter: SnapshotFilter,
        /// `FORCE` was given.
        force: bool,
    },
    /// `VERIFY SNAPSHOT snap ON r [DEEP]` (shale's own statement).
    VerifySnapshot {
        /// Snapshot name.
        snapshot: String,
        /// Repository holding the snapshot.
        repository: String,
        /// `DEEP` was given: read and checksum every data file, not only the metadata.
        deep: bool,
    },
    /// `CREATE USER [IF NOT EXISTS] user [IDENTIFIED BY 'pw']`.
    CreateUser {
        /// The user.
        user: UserIdentity,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
        /// Clear-text password, if any.
        password: Option<String>,
    },
    /// `DROP USER [IF EXISTS] user`.
    DropUser {
        /// The user.
        user: UserIdentity,
        /// `IF EXISTS` was given.
        if_exists: bool,
    },
    /// `GRANT role [, ...] TO [USER] user`, e.g. `GRANT ADMIN TO u`.
    GrantRole {
        /// Role names as written (non-empty).
        roles: Vec<String>,
        /// The grantee.
        user: UserIdentity,
    },
    /// `REVOKE role [, ...] FROM [USER] user`.
    RevokeRole {
        /// Role names as written (non-empty).
        roles: Vec<String>,
        /// The user losing the roles.
        user: UserIdentity,
    },
    /// `SHOW GRANTS [FOR user]`.
    ShowGrants {
        /// User; the session's user when `None`.
        user: Option<UserIdentity>,
    },
}

/// A possibly database-qualified name: `[db.]name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectName {
    /// Database, when written.
    pub db: Option<String>,
    /// Object name.
    pub name: String,
}

/// A user as in `'name'@'host'`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserIdentity {
    /// User name, case kept.
    pub name: String,
    /// Host pattern, when written (accepted for compatibility; shale does not use it).
    pub host: Option<String>,
}

/// A literal value, as in `INSERT ... VALUES` rows and `DEFAULT` clauses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// `NULL`.
    Null,
    /// `TRUE` or `FALSE`.
    Bool(bool),
    /// A number as written, with a leading `-` when negative (`42`, `-1.5`, `1e3`).
    Number(String),
    /// A string, escapes resolved.
    String(String),
}

/// `CREATE TABLE` in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTable {
    /// Table name.
    pub name: ObjectName,
    /// `IF NOT EXISTS` was given.
    pub if_not_exists: bool,
    /// Columns in order (non-empty).
    pub columns: Vec<ColumnDef>,
    /// `ENGINE = x`, as written.
    pub engine: Option<String>,
    /// `DUPLICATE KEY (...)` and friends.
    pub keys: Option<TableKeys>,
    /// Table comment.
    pub comment: Option<String>,
    /// `PARTITION BY ...`.
    pub partitioning: Option<Partitioning>,
    /// `DISTRIBUTED BY ...`.
    pub distribution: Option<Distribution>,
    /// `PROPERTIES (...)`.
    pub properties: Properties,
}

/// One column of `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// Column name.
    pub name: String,
    /// Declared type.
    pub data_type: TypeName,
    /// False when `NOT NULL` was given; `NULL` or nothing means nullable.
    pub nullable: bool,
    /// `DEFAULT literal`.
    pub default: Option<Literal>,
    /// `COMMENT 'x'`.
    pub comment: Option<String>,
}

/// A column type: a name with optional numeric parameters, e.g. `DECIMAL(10, 2)`.
///
/// The parser does not check the name; the executor maps it to an Arrow type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeName {
    /// Type name, uppercased (`INT`, `VARCHAR`, `DECIMAL64`, ...).
    pub name: String,
    /// Parameters in parentheses (none, one or two).
    pub params: Vec<u32>,
}

/// The key clause of `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableKeys {
    /// Which key model.
    pub kind: KeysKind,
    /// Key columns (non-empty).
    pub columns: Vec<String>,
}

/// StarRocks' table key models. Only [`KeysKind::Duplicate`] is supported by shale; the others
/// are parsed so the executor can say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysKind {
    /// `DUPLICATE KEY`.
    Duplicate,
    /// `AGGREGATE KEY`.
    Aggregate,
    /// `UNIQUE KEY`.
    Unique,
    /// `PRIMARY KEY`.
    Primary,
}

/// `PARTITION BY RANGE (...) (...)` or `PARTITION BY LIST (...) (...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partitioning {
    /// Range or list.
    pub kind: PartitionKind,
    /// Partition columns (non-empty).
    pub columns: Vec<String>,
    /// Partitions in order (may be empty).
    pub partitions: Vec<PartitionDef>,
}

/// How a table is partitioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKind {
    /// `RANGE`: bounds are [`PartitionBound::LessThan`] or [`PartitionBound::Fixed`].
    Range,
    /// `LIST`: bounds are [`PartitionBound::In`].
    List,
}

/// One partition: `PARTITION p VALUES ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDef {
    /// Partition name.
    pub name: String,
    /// Its bound.
    pub bound: PartitionBound,
}

/// A partition's `VALUES` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionBound {
    /// `VALUES LESS THAN (v, ...)` or `VALUES LESS THAN MAXVALUE`: upper bound, exclusive.
    LessThan(Vec<PartitionValue>),
    /// `VALUES [(lo, ...), (hi, ...))`: lower bound inclusive, upper bound exclusive.
    Fixed {
        /// Inclusive lower bound.
        lower: Vec<PartitionValue>,
        /// Exclusive upper bound.
        upper: Vec<PartitionValue>,
    },
    /// `VALUES IN ("a", "b")` or, for several columns, `VALUES IN (("a", 1), ("b", 2))`:
    /// one tuple per listed value (a single column gives one-element tuples).
    In(Vec<Vec<String>>),
}

/// One value of a range partition bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionValue {
    /// A string or number, as text (`"2024-01-01"`, `100`, `-5`).
    Literal(String),
    /// `MAXVALUE`.
    MaxValue,
}

/// `DISTRIBUTED BY ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Distribution {
    /// `DISTRIBUTED BY HASH (c, ...) [BUCKETS n]`.
    Hash {
        /// Hash columns (non-empty).
        columns: Vec<String>,
        /// Bucket count; chosen by the engine when `None`.
        buckets: Option<u32>,
    },
    /// `DISTRIBUTED BY RANDOM [BUCKETS n]`.
    Random {
        /// Bucket count; chosen by the engine when `None`.
        buckets: Option<u32>,
    },
}

/// What `ALTER TABLE` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterTableAction {
    /// `ADD PARTITION [IF NOT EXISTS] p VALUES ...`.
    AddPartition {
        /// The new partition.
        partition: PartitionDef,
        /// `IF NOT EXISTS` was given.
        if_not_exists: bool,
    },
    /// `DROP PARTITION [IF EXISTS] p [FORCE]`.
    DropPartition {
        /// Partition name.
        name: String,
        /// `IF EXISTS` was given.
        if_exists: bool,
        /// `FORCE` was given.
        force: bool,
    },
}

/// `INSERT INTO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    /// Target table.
    pub table: ObjectName,
    /// Target columns; empty means all columns in table order.
    pub columns: Vec<String>,
    /// The rows.
    pub source: InsertSource,
}

/// Where the rows of an `INSERT` come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertSource {
    /// `VALUES (...), (...)`: literal rows (non-empty, each row non-empty).
    Values(Vec<Vec<Literal>>),
    /// A query, kept as source text for DataFusion (may use StarRocks' `FILES(...)`; see
    /// [`crate::parser::extract_files_table_function`]).
    Query {
        /// Exact source text of the query.
        sql: String,
    },
}

/// `CREATE REPOSITORY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRepository {
    /// Repository name.
    pub name: String,
    /// `READ ONLY` was given.
    pub read_only: bool,
    /// Broker name after `WITH BROKER`; `None` for brokerless.
    pub broker: Option<String>,
    /// `ON LOCATION "..."`.
    pub location: String,
    /// `PROPERTIES (...)`.
    pub properties: Properties,
}

/// `BACKUP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// Database from `DATABASE db` or `db.snap`; the session's current one when `None`.
    pub database: Option<String>,
    /// Snapshot name (label).
    pub snapshot: String,
    /// Repository to write to.
    pub repository: String,
    /// `ON (...)`: tables to back up; empty means the whole database.
    pub tables: Vec<TableRef>,
    /// `PROPERTIES (...)`.
    pub properties: Properties,
}

/// `RESTORE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    /// Target database, from `db.snap` or `DATABASE src AS db`; the session's current one
    /// when `None`.
    pub database: Option<String>,
    /// Snapshot name (label).
    pub snapshot: String,
    /// Repository to read from.
    pub repository: String,
    /// `DATABASE src`: the database name inside the snapshot.
    pub source_database: Option<String>,
    /// `ON (...)`: tables to restore; empty means everything in the snapshot.
    pub tables: Vec<TableRef>,
    /// `PROPERTIES (...)`.
    pub properties: Properties,
}

/// One item of a BACKUP or RESTORE `ON (...)` list: `t [PARTITION (p, ...)] [AS alias]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// Table name.
    pub name: ObjectName,
    /// Partitions; empty means all.
    pub partitions: Vec<String>,
    /// `AS alias`: valid for RESTORE only. BACKUP records it so the executor can answer
    /// `Can not set alias for table in Backup Stmt: <ref>` like StarRocks.
    pub alias: Option<String>,
}

/// The `WHERE` clause of `SHOW SNAPSHOT` / `DROP SNAPSHOT`. StarRocks accepts these shapes
/// only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotFilter {
    /// No `WHERE`: every snapshot.
    All,
    /// `SNAPSHOT = 'x'`.
    Named(String),
    /// `SNAPSHOT = 'x' AND TIMESTAMP = 'y'` (either order).
    NamedAt {
        /// Snapshot name.
        name: String,
        /// Backup timestamp, e.g. `2024-12-09-10-25-58-842`.
        timestamp: String,
    },
    /// `SNAPSHOT IN ('a', 'b', ...)` (non-empty).
    AnyOf(Vec<String>),
}

// ------------------------------------------------------------------------------------------
// Canonical SQL rendering.

/// Renders an identifier, backquoted when it is not plain ASCII or is a reserved keyword.
#[derive(Debug, Clone, Copy)]
pub struct Ident<'a>(pub &'a str);

impl fmt::Display for Ident<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_plain_identifier(self.0) {
            f.write_str(self.0)
        } else {
            // Inside backquotes a backquote is written twice.
            write!(f, "`{}`", self.0.replace('`', "``"))
        }
    }
}

/// Renders a string literal in single quotes, escaping `\` and `'` with a backslash.
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("'")?;
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\'' => f.write_str("\\'")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("'")
    }
}

/// Writes `items` separated by `, `.
fn comma_separated<T>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    mut write_item: impl FnMut(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write_item(f, item)?;
    }
    Ok(())
}

/// Writes `(a, b, c)` with identifiers.
fn ident_list(f: &mut fmt::Formatter<'_>, idents: &[String]) -> fmt::Result {
    f.write_str("(")?;
    comma_separated(f, idents, |f, ident| write!(f, "{}", Ident(ident)))?;
    f.write_str(")")
}

/// Writes ` PROPERTIES (...)` when there are properties.
fn properties_clause(f: &mut fmt::Formatter<'_>, properties: &Properties) -> fmt::Result {
    if properties.is_empty() {
        return Ok(());
    }
    f.write_str(" PROPERTIES (")?;
    comma_separated(f, properties, |f, (key, value)| {
        write!(f, "{} = {}", Quoted(key), Quoted(value))
    })?;
    f.write_str(")")
}

/// Writes ` FROM db` when a database is given.
fn from_database(f: &mut fmt::Formatter<'_>, database: &Option<String>) -> fmt::Result {
    match database {
        Some(db) => write!(f, " FROM {}", Ident(db)),
        None => Ok(()),
    }
}

/// Writes ` ON (...)` when there are table refs.
fn on_tables(f: &mut fmt::Formatter<'_>, tables: &[TableRef]) -> fmt::Result {
    if tables.is_empty() {
        return Ok(());
    }
    f.write_str(" ON (")?;
    comma_separated(f, tables, |f, table| write!(f, "{table}"))?;
    f.write_str(")")
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db) = &self.db {
            write!(f, "{}.", Ident(db))?;
        }
        write!(f, "{}", Ident(&self.name))
    }
}

impl fmt::Display for UserIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Quoted(&self.name))?;
        if let Some(host) = &self.host {
            write!(f, "@{}", Quoted(host))?;
        }
        Ok(())
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("NULL"),
            Literal::Bool(true) => f.write_str("TRUE"),
            Literal::Bool(false) => f.write_str("FALSE"),
            Literal::Number(number) => f.write_str(number),
            Literal::String(string) => write!(f, "{}", Quoted(string)),
        }
    }
}

impl fmt::Display for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.params.is_empty() {
            f.write_str("(")?;
            comma_separated(f, &self.params, |f, param| write!(f, "{param}"))?;
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Display for ColumnDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", Ident(&self.name), self.data_type)?;
        if !self.nullable {
            f.write_str(" NOT NULL")?;
        }
        if let Some(default) = &self.default {
            write!(f, " DEFAULT {default}")?;
        }
        if let Some(comment) = &self.comment {
            write!(f, " COMMENT {}", Quoted(comment))?;
        }
        Ok(())
    }
}

impl fmt::Display for KeysKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeysKind::Duplicate => "DUPLICATE",
            KeysKind::Aggregate => "AGGREGATE",
            KeysKind::Unique => "UNIQUE",
            KeysKind::Primary => "PRIMARY",
        })
    }
}

impl fmt::Display for TableKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} KEY", self.kind)?;
        ident_list(f, &self.columns)
    }
}

impl fmt::Display for PartitionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionValue::Literal(value) => write!(f, "{}", Quoted(value)),
            PartitionValue::MaxValue => f.write_str("MAXVALUE"),
        }
    }
}

/// Writes `(v, ...)` for a range bound.
fn value_tuple(f: &mut fmt::Formatter<'_>, values: &[PartitionValue]) -> fmt::Result {
    f.write_str("(")?;
    comma_separated(f, values, |f, value| write!(f, "{value}"))?;
    f.write_str(")")
}

impl fmt::Display for PartitionBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionBound::LessThan(values) => {
                f.write_str("VALUES LESS THAN ")?;
                value_tuple(f, values)
            }
            PartitionBound::Fixed { lower, upper } => {
                f.write_str("VALUES [")?;
                value_tuple(f, lower)?;
                f.write_str(", ")?;
                value_tuple(f, upper)?;
                f.write_str(")")
            }
            PartitionBound::In(tuples) => {
                f.write_str("VALUES IN (")?;
                comma_separated(f, tuples, |f, tuple| match tuple.as_slice() {
                    [single] => write!(f, "{}", Quoted(single)),
                    values => {
                        f.write_str("(")?;
                        comma_separated(f, values, |f, value| write!(f, "{}", Quoted(value)))?;
                        f.write_str(")")
                    }
                })?;
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for PartitionDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PARTITION {} {}", Ident(&self.name), self.bound)
    }
}

impl fmt::Display for Partitioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            PartitionKind::Range => "RANGE",
            PartitionKind::List => "LIST",
        };
        write!(f, "PARTITION BY {kind}")?;
        ident_list(f, &self.columns)?;
        f.write_str(" (")?;
        comma_separated(f, &self.partitions, |f, partition| write!(f, "{partition}"))?;
        f.write_str(")")
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buckets = match self {
            Distribution::Hash { columns, buckets } => {
                f.write_str("DISTRIBUTED BY HASH")?;
                ident_list(f, columns)?;
                buckets
            }
            Distribution::Random { buckets } => {
                f.write_str("DISTRIBUTED BY RANDOM")?;
                buckets
            }
        };
        match buckets {
            Some(count) => write!(f, " BUCKETS {count}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for CreateTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CREATE TABLE ")?;
        if self.if_not_exists {
            f.write_str("IF NOT EXISTS ")?;
        }
        write!(f, "{} (", self.name)?;
        comma_separated(f, &self.columns, |f, column| write!(f, "{column}"))?;
        f.write_str(")")?;
        if let Some(engine) = &self.engine {
            write!(f, " ENGINE = {}", Ident(engine))?;
        }
        if let Some(keys) = &self.keys {
            write!(f, " {keys}")?;
        }
        if let Some(comment) = &self.comment {
            write!(f, " COMMENT {}", Quoted(comment))?;
        }
        if let Some(partitioning) = &self.partitioning {
            write!(f, " {partitioning}")?;
        }
        if let Some(distribution) = &self.distribution {
            write!(f, " {distribution}")?;
        }
        properties_clause(f, &self.properties)
    }
}

impl fmt::Display for AlterTableAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlterTableAction::AddPartition {
                partition,
                if_not_exists,
            } => {
                f.write_str("ADD PARTITION ")?;
                if *if_not_exists {
                    f.write_str("IF NOT EXISTS ")?;
                }
                write!(f, "{} {}", Ident(&partition.name), partition.bound)
            }
            AlterTableAction::DropPartition {
                name,
                if_exists,
                force,
            } => {
                f.write_str("DROP PARTITION ")?;
                if *if_exists {
                    f.write_str("IF EXISTS ")?;
                }
                write!(f, "{}", Ident(name))?;
                if *force {
                    f.write_str(" FORCE")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Insert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INSERT INTO {}", self.table)?;
        if !self.columns.is_empty() {
            f.write_str(" ")?;
            ident_list(f, &self.columns)?;
        }
        match &self.source {
            InsertSource::Values(rows) => {
                f.write_str(" VALUES ")?;
                comma_separated(f, rows, |f, row| {
                    f.write_str("(")?;
                    comma_separated(f, row, |f, literal| write!(f, "{literal}"))?;
                    f.write_str(")")
                })
            }
            InsertSource::Query { sql } => write!(f, " {sql}"),
        }
    }
}

impl fmt::Display for CreateRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CREATE ")?;
        if self.read_only {
            f.write_str("READ ONLY ")?;
        }
        write!(f, "REPOSITORY {} WITH BROKER", Ident(&self.name))?;
        if let Some(broker) = &self.broker {
            write!(f, " {}", Ident(broker))?;
        }
        write!(f, " ON LOCATION {}", Quoted(&self.location))?;
        properties_clause(f, &self.properties)
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.partitions.is_empty() {
            f.write_str(" PARTITION ")?;
            ident_list(f, &self.partitions)?;
        }
        if let Some(alias) = &self.alias {
            write!(f, " AS {}", Ident(alias))?;
        }
        Ok(())
    }
}

impl fmt::Display for Backup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BACKUP SNAPSHOT ")?;
        if let Some(db) = &self.database {
            write!(f, "{}.", Ident(db))?;
        }
        write!(
            f,
            "{} TO {}",
            Ident(&self.snapshot),
            Ident(&self.repository)
        )?;
        on_tables(f, &self.tables)?;
        properties_clause(f, &self.properties)
    }
}

impl fmt::Display for Restore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RESTORE SNAPSHOT ")?;
        // The target database goes in `DATABASE src AS db` when there is a source database,
        // and as the `db.` prefix otherwise; both parse back to the same value.
        if let (None, Some(db)) = (&self.source_database, &self.database) {
            write!(f, "{}.", Ident(db))?;
        }
        write!(
            f,
            "{} FROM {}",
            Ident(&self.snapshot),
            Ident(&self.repository)
        )?;
        if let Some(source) = &self.source_database {
            write!(f, " DATABASE {}", Ident(source))?;
            if let Some(db) = &self.database {
                write!(f, " AS {}", Ident(db))?;
            }
        }
        on_tables(f, &self.tables)?;
        properties_clause(f, &self.properties)
    }
}

impl fmt::Display for SnapshotFilter {
    /// Writes ` WHERE ...`, or nothing for [`SnapshotFilter::All`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotFilter::All => Ok(()),
            SnapshotFilter::Named(name) => write!(f, " WHERE SNAPSHOT = {}", Quoted(name)),
            SnapshotFilter::NamedAt { name, timestamp } => write!(
                f,
                " WHERE SNAPSHOT = {} AND TIMESTAMP = {}",
                Quoted(name),
                Quoted(timestamp)
            ),
            SnapshotFilter::AnyOf(names) => {
                f.write_str(" WHERE SNAPSHOT IN (")?;
                comma_separated(f, names, |f, name| write!(f, "{}", Quoted(name)))?;
                f.write_str(")")
            }
        }
    }
}

/// Writes `role, role`.
fn role_list(f: &mut fmt::Formatter<'_>, roles: &[String]) -> fmt::Result {
    comma_separated(f, roles, |f, role| write!(f, "{}", Ident(role)))
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statement::Query { sql } => f.write_str(sql),
            Statement::CreateDatabase {
                name,
                if_not_exists,
            } => {
                f.write_str("CREATE DATABASE ")?;
                if *if_not_exists {
                    f.write_str("IF NOT EXISTS ")?;
                }
                write!(f, "{}", Ident(name))
            }
            Statement::DropDatabase {
                name,
                if_exists,
                force,
            } => {
                f.write_str("DROP DATABASE ")?;
                if *if_exists {
                    f.write_str("IF EXISTS ")?;
                }
                write!(f, "{}", Ident(name))?;
                if *force {
                    f.write_str(" FORCE")?;
                }
                Ok(())
            }
            Statement::Use { database } => write!(f, "USE {}", Ident(database)),
            Statement::ShowDatabases => f.write_str("SHOW DATABASES"),
            Statement::ShowTables { database } => {
                f.write_str("SHOW TABLES")?;
                from_database(f, database)
            }
            Statement::ShowPartitions { table } => write!(f, "SHOW PARTITIONS FROM {table}"),
            Statement::Describe { table } => write!(f, "DESC {table}"),
            Statement::ShowCreateTable { table } => write!(f, "SHOW CREATE TABLE {table}"),
            Statement::CreateTable(create) => write!(f, "{create}"),
            Statement::AlterTable { table, action } => write!(f, "ALTER TABLE {table} {action}"),
            Statement::TruncateTable { table, partitions } => {
                write!(f, "TRUNCATE TABLE {table}")?;
                if !partitions.is_empty() {
                    f.write_str(" PARTITION ")?;
                    ident_list(f, partitions)?;
                }
                Ok(())
            }
            Statement::DropTable {
                table,
                if_exists,
                force,
            } => {
                f.write_str("DROP TABLE ")?;
                if *if_exists {
                    f.write_str("IF EXISTS ")?;
                }
                write!(f, "{table}")?;
                if *force {
                    f.write_str(" FORCE")?;
                }
                Ok(())
            }
            Statement::Insert(insert) => write!(f, "{insert}"),
            Statement::CreateRepository(create) => write!(f, "{create}"),
            Statement::DropRepository { name } => write!(f, "DROP REPOSITORY {}", Ident(name)),
            Statement::ShowRepositories => f.write_str("SHOW REPOSITORIES"),
            Statement::Backup(backup) => write!(f, "{backup}"),
            Statement::Restore(restore) => write!(f, "{restore}"),
            Statement::ShowBackup { database } => {
                f.write_str("SHOW BACKUP")?;
                from_database(f, database)
            }
            Statement::ShowRestore { database } => {
                f.write_str("SHOW RESTORE")?;
                from_database(f, database)
            }
            Statement::CancelBackup { database } => {
                f.write_str("CANCEL BACKUP")?;
                from_database(f, database)
            }
            Statement::CancelRestore { database } => {
                f.write_str("CANCEL RESTORE")?;
                from_database(f, database)
            }
            Statement::ShowSnapshot { repository, filter } => {
                write!(f, "SHOW SNAPSHOT ON {}{filter}", Ident(repository))
            }
            Statement::DropSnapshot {
                repository,
                filter,
                force,
            } => {
                // The WHERE form expresses every filter, so it is the canonical one.
                write!(f, "DROP SNAPSHOT ON {}{filter}", Ident(repository))?;
                if *force {
                    f.write_str(" FORCE")?;
                }
                Ok(())
            }
            Statement::VerifySnapshot {
                snapshot,
                repository,
                deep,
            } => {
                write!(
                    f,
                    "VERIFY SNAPSHOT {} ON {}",
                    Ident(snapshot),
                    Ident(repository)
                )?;
                if *deep {
                    f.write_str(" DEEP")?;
                }
                Ok(())
            }
            Statement::CreateUser {
                user,
                if_not_exists,
                password,
            } => {
                f.write_str("CREATE USER ")?;
                if *if_not_exists {
                    f.write_str("IF NOT EXISTS ")?;
                }
                write!(f, "{user}")?;
                if let Some(password) = password {
                    write!(f, " IDENTIFIED BY {}", Quoted(password))?;
                }
                Ok(())
            }
            Statement::DropUser { user, if_exists } => {
                f.write_str("DROP USER ")?;
                if *if_exists {
                    f.write_str("IF EXISTS ")?;
                }
                write!(f, "{user}")
            }
            Statement::GrantRole { roles, user } => {
                f.write_str("GRANT ")?;
                role_list(f, roles)?;
                write!(f, " TO USER {user}")
            }
            Statement::RevokeRole { roles, user } => {
                f.write_str("REVOKE ")?;
                role_list(f, roles)?;
                write!(f, " FROM USER {user}")
            }
            Statement::ShowGrants { user } => {
                f.write_str("SHOW GRANTS")?;
                match user {
                    Some(user) => write!(f, " FOR {user}"),
                    None => Ok(()),
                }
            }
        }
    }
}
