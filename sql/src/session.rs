//! [`Session`]: runs statements as one user against one engine.

use std::sync::Arc;

use futures::StreamExt;
use shale_engine::{Engine, Snapshot, Table};

use crate::ast::{AlterTableAction, InsertSource, ObjectName, Statement};
use crate::error::{Result, SqlError};
use crate::insert::{Target, insert_values};
use crate::result::{Cell, QueryResult, build};
use crate::{backup_stmt, ddl, parser, query, users};

/// A connection-like state: the user, the current database, and a runtime for DataFusion.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let engine = shale_engine::Engine::open(dir.path())?;
/// let mut session = shale_sql::Session::new(engine, "root")?;
/// session.execute("CREATE DATABASE shop; USE shop; CREATE TABLE t (k INT) DUPLICATE KEY(k)")?;
/// session.execute("INSERT INTO t VALUES (1), (2), (3)")?;
/// let results = session.execute("SELECT sum(k) AS total FROM t")?;
/// assert_eq!(results[0].row_count(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Session {
    engine: Engine,
    user: String,
    database: Option<String>,
    runtime: tokio::runtime::Runtime,
    /// Opened by the first backup-family statement.
    backups: Option<shale_backup::Backups>,
    /// BACKUP and RESTORE jobs this session submitted.
    jobs_started: Vec<u64>,
}

impl Session {
    /// Opens a session as `user`, who must exist (`root` always does).
    pub fn new(engine: Engine, user: &str) -> Result<Session> {
        if users::lookup(&engine.snapshot(), user)?.is_none() {
            return Err(SqlError::UnknownUser { name: user.into() });
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(query::TARGET_PARTITIONS)
            .thread_name("shale-query")
            .enable_all()
            .build()
            .map_err(|source| SqlError::Io {
                context: "starting the query runtime".into(),
                source,
            })?;
        Ok(Session {
            engine,
            user: user.into(),
            database: None,
            runtime,
            backups: None,
            jobs_started: Vec::new(),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The session's user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The current database (`USE`).
    pub fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    /// Runs a script of `;`-separated statements, stopping at the first error; returns one
    /// result per statement. Nothing runs if the script does not parse.
    pub fn execute(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        let statements = parser::parse(sql)?;
        statements
            .iter()
            .map(|s| self.execute_statement(s))
            .collect()
    }

    /// Runs one parsed statement.
    pub fn execute_statement(&mut self, statement: &Statement) -> Result<QueryResult> {
        if backup_stmt::is_backup_statement(statement) {
            return backup_stmt::execute(self, statement);
        }
        match statement {
            Statement::Query { sql } => {
                let ctx = query::context(&self.engine, self.database());
                let (schema, batches) = self
                    .runtime
                    .block_on(query::collect(&ctx, sql))
                    .map_err(|e| self.no_database_error(e))?;
                Ok(QueryResult::rows(schema, batches))
            }
            Statement::CreateDatabase {
                name,
                if_not_exists,
            } => {
                if *if_not_exists && self.engine.snapshot().database(name).is_some() {
                    return Ok(QueryResult::ok());
                }
                self.engine.create_database(name)?;
                Ok(QueryResult::ok())
            }
            Statement::DropDatabase {
                name, if_exists, ..
            } => {
                if self.engine.snapshot().database(name).is_none() {
                    if *if_exists {
                        return Ok(QueryResult::ok());
                    }
                    return Err(shale_engine::Error::DatabaseNotFound { name: name.clone() }.into());
                }
                self.engine.drop_database(name)?;
                Ok(QueryResult::ok())
            }
            Statement::Use { database } => {
                if self.engine.snapshot().database(database).is_none() {
                    return Err(shale_engine::Error::DatabaseNotFound {
                        name: database.clone(),
                    }
                    .into());
                }
                self.database = Some(database.clone());
                Ok(QueryResult::ok())
            }
            Statement::ShowDatabases => {
                let rows = self
                    .engine
                    .snapshot()
                    .databases
                    .keys()
                    .map(|d| vec![Cell::from(d.as_str())])
                    .collect();
                build(&[("Database", false)], rows)
            }
            Statement::ShowTables { database } => {
                let db = match database {
                    Some(db) => db.clone(),
                    None => self.current_database()?,
                };
                let snapshot = self.engine.snapshot();
                let d = snapshot
                    .database(&db)
                    .ok_or_else(|| shale_engine::Error::DatabaseNotFound { name: db.clone() })?;
                let rows = d
                    .tables
                    .keys()
                    .map(|t| vec![Cell::from(t.as_str())])
                    .collect();
                build(&[(&format!("Tables_in_{db}"), false)], rows)
            }
            Statement::ShowPartitions { table } => {
                let (_, _, t) = self.table(table)?;
                ddl::show_partitions(&t)
            }
            Statement::Describe { table } => {
                let (_, _, t) = self.table(table)?;
                ddl::describe(&t)
            }
            Statement::ShowCreateTable { table } => {
                let (_, db, t) = self.table(table)?;
                ddl::show_create_table(&db, &t)
            }
            Statement::CreateTable(create) => {
                let db = self.database_of(&create.name)?;
                let snapshot = self.engine.snapshot();
                if snapshot.database(&db).is_none() {
                    return Err(shale_engine::Error::DatabaseNotFound { name: db }.into());
                }
                if create.if_not_exists && snapshot.table(&db, &create.name.name).is_some() {
                    return Ok(QueryResult::ok());
                }
                let definition = ddl::table_definition(create)?;
                self.engine.create_table(&db, definition)?;
                Ok(QueryResult::ok())
            }
            Statement::AlterTable { table, action } => {
                let (_, db, t) = self.table(table)?;
                match action {
                    AlterTableAction::AddPartition {
                        partition,
                        if_not_exists,
                    } => {
                        if *if_not_exists && t.partition(&partition.name).is_some() {
                            return Ok(QueryResult::ok());
                        }
                        let def = ddl::partition_definition(partition)?;
                        self.engine.add_partition(&db, &t.name, def)?;
                    }
                    AlterTableAction::DropPartition {
                        name, if_exists, ..
                    } => {
                        if t.partition(name).is_none() {
                            if *if_exists {
                                return Ok(QueryResult::ok());
                            }
                            return Err(shale_engine::Error::PartitionNotFound {
                                table: t.name.clone(),
                                partition: name.clone(),
                            }
                            .into());
                        }
                        self.engine.drop_partition(&db, &t.name, name)?;
                    }
                }
                Ok(QueryResult::ok())
            }
            Statement::TruncateTable { table, partitions } => {
                let (_, db, t) = self.table(table)?;
                let only = (!partitions.is_empty()).then_some(partitions.as_slice());
                self.engine.truncate_table(&db, &t.name, only)?;
                Ok(QueryResult::ok())
            }
            Statement::DropTable {
                table, if_exists, ..
            } => {
                let db = self.database_of(table)?;
                if self.engine.snapshot().table(&db, &table.name).is_none() {
                    if *if_exists {
                        return Ok(QueryResult::ok());
                    }
                    return Err(shale_engine::Error::TableNotFound {
                        db,
                        table: table.name.clone(),
                    }
                    .into());
                }
                self.engine.drop_table(&db, &table.name)?;
                Ok(QueryResult::ok())
            }
            Statement::Insert(insert) => {
                let (_, db, t) = self.table(&insert.table)?;
                let target = Target::new(t, &insert.columns)?;
                let rows = match &insert.source {
                    InsertSource::Values(rows) => insert_values(&self.engine, &db, &target, rows)?,
                    InsertSource::Query { sql } => self.insert_query(&db, &target, sql)?,
                };
                Ok(QueryResult::affected(rows))
            }
            Statement::CreateUser {
                user,
                if_not_exists,
                password,
            } => {
                self.require_admin()?;
                if users::lookup(&self.engine.snapshot(), &user.name)?.is_some() {
                    if *if_not_exists {
                        return Ok(QueryResult::ok());
                    }
                    return Err(SqlError::UserExists {
                        name: user.name.clone(),
                    });
                }
                let record = users::UserRecord {
                    admin: false,
                    password_set: password.is_some(),
                };
                users::store(&self.engine, &user.name, &record)?;
                Ok(QueryResult::ok())
            }
            Statement::DropUser { user, if_exists } => {
                self.require_admin()?;
                if user.name == users::ROOT {
                    return Err(SqlError::Invalid(
                        "Operation DROP USER failed for 'root': the root user cannot be dropped"
                            .into(),
                    ));
                }
                if users::lookup(&self.engine.snapshot(), &user.name)?.is_none() {
                    if *if_exists {
                        return Ok(QueryResult::ok());
                    }
                    return Err(SqlError::UnknownUser {
                        name: user.name.clone(),
                    });
                }
                users::remove(&self.engine, &user.name)?;
                Ok(QueryResult::ok())
            }
            Statement::GrantRole { roles, user } => self.set_admin(roles, &user.name, true),
            Statement::RevokeRole { roles, user } => self.set_admin(roles, &user.name, false),
            Statement::ShowGrants { user } => {
                let snapshot = self.engine.snapshot();
                let listed: Vec<(String, users::UserRecord)> = match user {
                    Some(u) => {
                        if u.name != self.user {
                            self.require_admin()?;
                        }
                        let record = users::lookup(&snapshot, &u.name)?.ok_or_else(|| {
                            SqlError::UnknownUser {
                                name: u.name.clone(),
                            }
                        })?;
                        vec![(u.name.clone(), record)]
                    }
                    None => {
                        let record = users::lookup(&snapshot, &self.user)?.unwrap_or_default();
                        vec![(self.user.clone(), record)]
                    }
                };
                let rows = listed
                    .into_iter()
                    .map(|(name, record)| {
                        let identity = format!("'{name}'@'%'");
                        let grants = if record.admin {
                            format!("GRANT ADMIN TO {identity}")
                        } else {
                            String::new()
                        };
                        vec![
                            Cell::from(identity),
                            Cell::from("default_catalog"),
                            Cell::from(grants),
                        ]
                    })
                    .collect();
                build(
                    &[
                        ("UserIdentity", false),
                        ("Catalog", false),
                        ("Grants", false),
                    ],
                    rows,
                )
            }
            other => Err(SqlError::NotSupported(format!("statement {other}"))),
        }
    }

    /// The backup service of the engine, opened on first use.
    pub fn backups(&mut self) -> Result<&shale_backup::Backups> {
        if self.backups.is_none() {
            self.backups = Some(shale_backup::Backups::open(self.engine.clone())?);
        }
        self.backups
            .as_ref()
            .ok_or_else(|| SqlError::Invalid("backup service unavailable".into()))
    }

    pub(crate) fn started_job(&mut self, job_id: u64) {
        self.jobs_started.push(job_id);
    }

    /// BACKUP and RESTORE jobs this session submitted, in order.
    pub fn jobs_started(&self) -> &[u64] {
        &self.jobs_started
    }

    /// Waits for every job this session submitted to finish (or `timeout` to pass, per job);
    /// returns each job's last seen state.
    pub fn wait_for_jobs(
        &self,
        timeout: std::time::Duration,
    ) -> Vec<(u64, Option<shale_backup::JobState>)> {
        let Some(backups) = &self.backups else {
            return Vec::new();
        };
        self.jobs_started
            .iter()
            .map(|id| (*id, backups.wait(*id, timeout)))
            .collect()
    }

    /// Waits up to `timeout` for one job; returns its last seen state and progress (`None`
    /// when the job is unknown).
    pub fn wait_for_job(
        &self,
        job_id: u64,
        timeout: std::time::Duration,
    ) -> Option<(shale_backup::JobState, shale_backup::JobProgress)> {
        let backups = self.backups.as_ref()?;
        let state = backups.wait(job_id, timeout)?;
        Some((state, backups.job_progress(job_id).unwrap_or_default()))
    }

    /// A job's record (state, status message, objects), while it is still the last job of its
    /// database; `None` before the first backup-family statement or once superseded.
    pub fn job(&self, job_id: u64) -> Option<shale_backup::JobRecord> {
        self.backups.as_ref()?.job(job_id)
    }

    /// Fails with StarRocks' access-denied message unless the user holds ADMIN.
    pub fn require_admin(&self) -> Result<()> {
        if users::is_admin(&self.engine, &self.user)? {
            Ok(())
        } else {
            Err(SqlError::AccessDenied {
                privilege: users::ADMIN.into(),
            })
        }
    }

    fn set_admin(&mut self, roles: &[String], name: &str, admin: bool) -> Result<QueryResult> {
        self.require_admin()?;
        if let Some(role) = roles.iter().find(|r| !users::is_admin_role(r)) {
            return Err(SqlError::Invalid(format!("Role '{role}' does not exist")));
        }
        if name == users::ROOT && !admin {
            return Err(SqlError::Invalid("root always holds ADMIN".into()));
        }
        let mut record = users::lookup(&self.engine.snapshot(), name)?
            .ok_or_else(|| SqlError::UnknownUser { name: name.into() })?;
        record.admin = admin;
        users::store(&self.engine, name, &record)?;
        Ok(QueryResult::ok())
    }

    /// An unqualified table name with no current database fails in DataFusion as a missing
    /// table of a placeholder schema; say what is really wrong.
    fn no_database_error(&self, error: SqlError) -> SqlError {
        if self.database.is_none() && error.to_string().contains(query::NO_DATABASE) {
            SqlError::NoDatabaseSelected
        } else {
            error
        }
    }

    fn current_database(&self) -> Result<String> {
        self.database.clone().ok_or(SqlError::NoDatabaseSelected)
    }

    fn database_of(&self, name: &ObjectName) -> Result<String> {
        match &name.db {
            Some(db) => Ok(db.clone()),
            None => self.current_database(),
        }
    }

    /// A table as of now: the snapshot, its database and the table.
    fn table(&self, name: &ObjectName) -> Result<(Snapshot, String, Arc<Table>)> {
        let db = self.database_of(name)?;
        let snapshot = self.engine.snapshot();
        let table = snapshot.get_table(&db, &name.name)?.clone();
        Ok((snapshot, db, table))
    }

    /// `INSERT ... SELECT`: streams the query's batches into one atomic load.
    fn insert_query(&mut self, db: &str, target: &Target, sql: &str) -> Result<u64> {
        let ctx = query::context(&self.engine, self.database());
        let mut stream = self
            .runtime
            .block_on(query::stream(&ctx, sql))
            .map_err(|e| self.no_database_error(e))?;
        // The load takes engine results; the first error of ours is kept here and reported
        // in place of the placeholder the engine sees.
        let mut failure: Option<SqlError> = None;
        let runtime = &self.runtime;
        let batches = std::iter::from_fn(|| {
            if failure.is_some() {
                return None;
            }
            let next = runtime.block_on(stream.next())?;
            let conformed = next
                .map_err(SqlError::from)
                .and_then(|b| target.conform(b.columns(), b.num_rows()));
            match conformed {
                Ok(batch) => Some(Ok(batch)),
                Err(e) => {
                    failure = Some(e);
                    Some(Err(shale_engine::Error::Cancelled(
                        "the INSERT's query failed".into(),
                    )))
                }
            }
        });
        let loaded = self.engine.load_results(db, &target.table().name, batches);
        match (loaded, failure) {
            (_, Some(e)) => Err(e),
            (Ok(report), None) => Ok(report.row_count),
            (Err(e), None) => Err(e.into()),
        }
    }
}
