//! The backup family: repositories, BACKUP, RESTORE, their SHOW and CANCEL forms, SHOW/DROP
//! SNAPSHOT and VERIFY SNAPSHOT, on [`shale_backup::Backups`].
//!
//! Every such statement enters here. Privileges are checked first (all but SHOW BACKUP and
//! SHOW RESTORE need ADMIN). SHOW outputs have StarRocks' columns in StarRocks' order; BACKUP
//! and RESTORE submit a job and return at once, as in StarRocks (watch it with SHOW BACKUP /
//! SHOW RESTORE).

use std::collections::BTreeMap;

use crate::ast::{SnapshotFilter, Statement, TableRef};
use crate::error::{Result, SqlError};
use crate::result::{Cell, QueryResult, build};
use crate::session::Session;

/// Whether a statement belongs to the backup family.
pub fn is_backup_statement(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::CreateRepository(_)
            | Statement::DropRepository { .. }
            | Statement::ShowRepositories
            | Statement::Backup(_)
            | Statement::Restore(_)
            | Statement::ShowBackup { .. }
            | Statement::ShowRestore { .. }
            | Statement::CancelBackup { .. }
            | Statement::CancelRestore { .. }
            | Statement::ShowSnapshot { .. }
            | Statement::DropSnapshot { .. }
            | Statement::VerifySnapshot { .. }
    )
}

fn properties(list: &[(String, String)]) -> BTreeMap<String, String> {
    list.iter().cloned().collect()
}

fn opt(value: Option<String>) -> Cell {
    Cell::Str(value)
}

/// Runs a backup-family statement.
pub fn execute(session: &mut Session, statement: &Statement) -> Result<QueryResult> {
    let needs_admin = !matches!(
        statement,
        Statement::ShowBackup { .. } | Statement::ShowRestore { .. }
    );
    if needs_admin {
        session.require_admin()?;
    }
    let current = session.database().map(String::from);
    let db_or_current = |db: &Option<String>| -> Result<String> {
        db.clone()
            .or_else(|| current.clone())
            .ok_or(SqlError::NoDatabaseSelected)
    };
    let backups = session.backups()?;
    match statement {
        Statement::CreateRepository(create) => {
            backups.create_repository(
                &create.name,
                &create.location,
                create.read_only,
                properties(&create.properties),
            )?;
            Ok(QueryResult::ok())
        }
        Statement::DropRepository { name } => {
            backups.drop_repository(name)?;
            Ok(QueryResult::ok())
        }
        Statement::ShowRepositories => {
            let rows = backups
                .repositories()
                .into_iter()
                .map(|r| {
                    vec![
                        Cell::from(r.repo_id),
                        Cell::from(r.repo_name),
                        Cell::from(r.create_time),
                        Cell::from(r.is_read_only.to_string()),
                        Cell::from(r.location),
                        Cell::from(r.broker),
                        opt(r.err_msg),
                    ]
                })
                .collect();
            build(
                &[
                    ("RepoId", true),
                    ("RepoName", false),
                    ("CreateTime", false),
                    ("IsReadOnly", false),
                    ("Location", false),
                    ("Broker", false),
                    ("ErrMsg", false),
                ],
                rows,
            )
        }
        Statement::Backup(backup) => {
            let db = db_or_current(&backup.database)?;
            let tables = backup
                .tables
                .iter()
                .map(|t: &TableRef| {
                    if t.alias.is_some() {
                        return Err(SqlError::Invalid(
                            "BACKUP does not support an alias (AS) on a table".into(),
                        ));
                    }
                    let partitions = (!t.partitions.is_empty()).then(|| t.partitions.clone());
                    Ok((t.name.name.clone(), partitions))
                })
                .collect::<Result<Vec<_>>>()?;
            let job = backups.backup(
                &db,
                &backup.snapshot,
                &backup.repository,
                tables,
                properties(&backup.properties),
            )?;
            session.started_job(job);
            Ok(QueryResult::ok())
        }
        Statement::Restore(restore) => {
            let db = db_or_current(&restore.database)?;
            let tables = restore
                .tables
                .iter()
                .map(|t| shale_backup::TableRef {
                    table: t.name.name.clone(),
                    partitions: (!t.partitions.is_empty()).then(|| t.partitions.clone()),
                    alias: t.alias.clone(),
                })
                .collect();
            let job = backups.restore(
                &db,
                &restore.snapshot,
                &restore.repository,
                tables,
                properties(&restore.properties),
            )?;
            session.started_job(job);
            Ok(QueryResult::ok())
        }
        Statement::ShowBackup { database } => {
            let db = db_or_current(database)?;
            let rows = backups
                .show_backup(Some(&db))
                .into_iter()
                .map(|j| {
                    vec![
                        Cell::from(j.job_id),
                        Cell::from(j.snapshot_name),
                        Cell::from(j.db_name),
                        Cell::from(j.state.as_str()),
                        Cell::from(j.backup_objs),
                        Cell::from(j.create_time),
                        opt(j.snapshot_finished_time),
                        opt(j.upload_finished_time),
                        opt(j.finished_time),
                        Cell::from(j.unfinished_tasks),
                        Cell::from(j.progress),
                        Cell::from(j.task_err_msg),
                        Cell::from(j.status),
                        Cell::from(j.timeout),
                    ]
                })
                .collect();
            build(
                &[
                    ("JobId", true),
                    ("SnapshotName", false),
                    ("DbName", false),
                    ("State", false),
                    ("BackupObjs", false),
                    ("CreateTime", false),
                    ("SnapshotFinishedTime", false),
                    ("UploadFinishedTime", false),
                    ("FinishedTime", false),
                    ("UnfinishedTasks", false),
                    ("Progress", false),
                    ("TaskErrMsg", false),
                    ("Status", false),
                    ("Timeout", true),
                ],
                rows,
            )
        }
        Statement::ShowRestore { database } => {
            let db = db_or_current(database)?;
            let rows = backups
                .show_restore(Some(&db))
                .into_iter()
                .map(|j| {
                    vec![
                        Cell::from(j.job_id),
                        Cell::from(j.label),
                        Cell::from(j.timestamp),
                        Cell::from(j.db_name),
                        Cell::from(j.state.as_str()),
                        Cell::from(j.allow_load.to_string()),
                        Cell::from(u64::from(j.replication_num)),
                        Cell::from(j.restore_objs),
                        Cell::from(j.create_time),
                        opt(j.meta_prepared_time),
                        opt(j.snapshot_finished_time),
                        opt(j.download_finished_time),
                        opt(j.finished_time),
                        Cell::from(j.unfinished_tasks),
                        Cell::from(j.progress),
                        Cell::from(j.task_err_msg),
                        Cell::from(j.status),
                        Cell::from(j.timeout),
                    ]
                })
                .collect();
            build(
                &[
                    ("JobId", true),
                    ("Label", false),
                    ("Timestamp", false),
                    ("DbName", false),
                    ("State", false),
                    ("AllowLoad", false),
                    ("ReplicationNum", true),
                    ("RestoreObjs", false),
                    ("CreateTime", false),
                    ("MetaPreparedTime", false),
                    ("SnapshotFinishedTime", false),
                    ("DownloadFinishedTime", false),
                    ("FinishedTime", false),
                    ("UnfinishedTasks", false),
                    ("Progress", false),
                    ("TaskErrMsg", false),
                    ("Status", false),
                    ("Timeout", true),
                ],
                rows,
            )
        }
        Statement::CancelBackup { database } => {
            backups.cancel_backup(&db_or_current(database)?)?;
            Ok(QueryResult::ok())
        }
        Statement::CancelRestore { database } => {
            backups.cancel_restore(&db_or_current(database)?)?;
            Ok(QueryResult::ok())
        }
        Statement::ShowSnapshot { repository, filter } => {
            if let SnapshotFilter::NamedAt { name, timestamp } = filter {
                let d = backups.snapshot_details(repository, name, Some(timestamp))?;
                let details = serde_json::json!({
                    "name": d.snapshot,
                    "database": d.database,
                    "backup_objects": d.tables.iter().map(|t| {
                        (t.name.clone(), t.partitions.iter().map(|p| p.name.clone()).collect::<Vec<_>>())
                    }).collect::<BTreeMap<_, _>>(),
                    "file_count": d.file_count,
                    "data_bytes": d.data_bytes,
                    "row_count": d.row_count,
                });
                let details = serde_json::to_string_pretty(&details)
                    .map_err(|e| SqlError::Invalid(e.to_string()))?;
                return build(
                    &[
                        ("Snapshot", false),
                        ("Timestamp", false),
                        ("Database", false),
                        ("Details", false),
                        ("Status", false),
                    ],
                    vec![vec![
                        Cell::from(d.snapshot),
                        Cell::from(d.timestamp),
                        Cell::from(d.database),
                        Cell::from(details),
                        Cell::from("OK"),
                    ]],
                );
            }
            let rows = backups
                .list_snapshots(repository)?
                .into_iter()
                .filter(|s| match filter {
                    SnapshotFilter::All => true,
                    SnapshotFilter::Named(name) => s.snapshot == *name,
                    SnapshotFilter::AnyOf(names) => names.contains(&s.snapshot),
                    SnapshotFilter::NamedAt { .. } => false,
                })
                .map(|s| {
                    vec![
                        Cell::from(s.snapshot),
                        Cell::from(s.timestamps.join("\n")),
                        Cell::from(s.status),
                    ]
                })
                .collect();
            build(
                &[("Snapshot", false), ("Timestamp", false), ("Status", false)],
                rows,
            )
        }
        Statement::DropSnapshot {
            repository, filter, ..
        } => {
            let names: Vec<String> = match filter {
                SnapshotFilter::Named(name) | SnapshotFilter::NamedAt { name, .. } => {
                    vec![name.clone()]
                }
                SnapshotFilter::AnyOf(names) => names.clone(),
                SnapshotFilter::All => {
                    return Err(SqlError::Invalid(
                        "DROP SNAPSHOT needs the snapshot's name".into(),
                    ));
                }
            };
            for name in &names {
                backups.drop_snapshot(repository, name)?;
            }
            Ok(QueryResult::ok())
        }
        Statement::VerifySnapshot {
            snapshot,
            repository,
            deep,
        } => {
            let report = backups.verify(repository, snapshot, None, *deep)?;
            let rows = if report.problems.is_empty() {
                vec![vec![
                    Cell::from(snapshot.as_str()),
                    Cell::from("OK"),
                    Cell::from(report.files_checked),
                    Cell::from(report.bytes_checked),
                    Cell::Str(None),
                    Cell::Str(None),
                ]]
            } else {
                report
                    .problems
                    .iter()
                    .map(|p| {
                        vec![
                            Cell::from(snapshot.as_str()),
                            Cell::from("DAMAGED"),
                            Cell::from(report.files_checked),
                            Cell::from(report.bytes_checked),
                            Cell::from(p.path.as_str()),
                            Cell::from(p.problem.as_str()),
                        ]
                    })
                    .collect()
            };
            build(
                &[
                    ("Snapshot", false),
                    ("Status", false),
                    ("FilesChecked", true),
                    ("BytesChecked", true),
                    ("Path", false),
                    ("Problem", false),
                ],
                rows,
            )
        }
        other => Err(SqlError::NotSupported(format!("statement {other}"))),
    }
}
