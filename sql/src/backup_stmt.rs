//! The backup family: repositories, BACKUP, RESTORE, their SHOW and CANCEL forms, SHOW/DROP
//! SNAPSHOT and VERIFY SNAPSHOT.
//!
//! Every such statement enters here. Privileges are checked first (all but SHOW BACKUP and
//! SHOW RESTORE need ADMIN); the jobs themselves belong to the `shale-backup` crate, which this
//! build does not link yet, so they end in [`SqlError::NotAvailable`].

use crate::ast::Statement;
use crate::error::{Result, SqlError};
use crate::result::QueryResult;
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

/// The statement's keyword, for messages.
fn statement_name(statement: &Statement) -> &'static str {
    match statement {
        Statement::CreateRepository(_) => "CREATE REPOSITORY",
        Statement::DropRepository { .. } => "DROP REPOSITORY",
        Statement::ShowRepositories => "SHOW REPOSITORIES",
        Statement::Backup(_) => "BACKUP",
        Statement::Restore(_) => "RESTORE",
        Statement::ShowBackup { .. } => "SHOW BACKUP",
        Statement::ShowRestore { .. } => "SHOW RESTORE",
        Statement::CancelBackup { .. } => "CANCEL BACKUP",
        Statement::CancelRestore { .. } => "CANCEL RESTORE",
        Statement::ShowSnapshot { .. } => "SHOW SNAPSHOT",
        Statement::DropSnapshot { .. } => "DROP SNAPSHOT",
        Statement::VerifySnapshot { .. } => "VERIFY SNAPSHOT",
        _ => "statement",
    }
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
    Err(SqlError::NotAvailable {
        statement: statement_name(statement).into(),
        reason: "backup and restore are not linked into this build of shale".into(),
    })
}
