//! [`SqlError`]: everything a statement can fail with.

use crate::parser::ParseError;

/// Everything that can go wrong running SQL.
///
/// Messages follow StarRocks' wording where StarRocks has one (`Unknown database 'x'`,
/// `Access denied; ...`), so scripts and habits carry over.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The text is not a statement we understand; located at the offending token.
    #[error("syntax error at {0}")]
    Parse(#[from] ParseError),
    /// The storage engine refused or failed.
    #[error("{0}")]
    Engine(#[from] shale_engine::Error),
    /// A backup, restore or repository operation failed.
    #[error("{0}")]
    Backup(#[from] shale_backup::BackupError),
    /// DataFusion failed to plan or run a query.
    #[error("{0}")]
    DataFusion(Box<datafusion::error::DataFusionError>),
    /// An Arrow kernel failed (a value that does not convert to the column's type, ...).
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// The session's user lacks a privilege.
    #[error(
        "Access denied; you need (at least one of) the {privilege} privilege(s) for this operation"
    )]
    AccessDenied {
        /// The privilege that would allow it, e.g. `ADMIN`.
        privilege: String,
    },
    /// A session was opened for a user that does not exist.
    #[error("Unknown user '{name}'")]
    UnknownUser {
        /// The user name.
        name: String,
    },
    /// `CREATE USER` of a user that exists.
    #[error("Operation CREATE USER failed for '{name}': user already exists")]
    UserExists {
        /// The user name.
        name: String,
    },
    /// An unqualified table name with no current database.
    #[error("No database selected")]
    NoDatabaseSelected,
    /// A statement or clause shale does not implement.
    #[error("{0} is not supported")]
    NotSupported(String),
    /// A statement that is well-formed but wrong (arity, unknown column, ...).
    #[error("{0}")]
    Invalid(String),
    /// A statement family whose implementation is not available in this build.
    #[error("{statement} is not available yet: {reason}")]
    NotAvailable {
        /// The statement, e.g. `BACKUP`.
        statement: String,
        /// Why.
        reason: String,
    },
    /// Reading a script or writing output failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl From<datafusion::error::DataFusionError> for SqlError {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError;
        // Errors of ours that travelled through DataFusion come back as themselves.
        match error {
            DataFusionError::External(e) => match e.downcast::<shale_engine::Error>() {
                Ok(engine) => SqlError::Engine(*engine),
                Err(other) => SqlError::DataFusion(Box::new(DataFusionError::External(other))),
            },
            DataFusionError::ArrowError(e, _) => SqlError::Arrow(*e),
            other => SqlError::DataFusion(Box::new(other)),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;
