//! The engine's one error type.
//!
//! Variants are structured so callers can act on them (`TableNotFound`, `ChecksumMismatch`, ...);
//! every I/O error carries the path and the operation that failed.

use std::path::PathBuf;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation, e.g. `write`, `fsync`, `rename`.
        op: &'static str,
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A previous fsync failed; the handle refuses writes until the engine is reopened.
    #[error("the data directory is read-only after a failed fsync ({cause}); reopen the engine")]
    Poisoned {
        /// What failed first.
        cause: String,
    },
    /// Another process (or another `Engine` in this process) holds the data directory.
    #[error("data directory {path} is locked by another process")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A file's bytes do not match the checksum recorded for it.
    #[error("checksum mismatch in {path}: expected {expected}, found {actual}")]
    ChecksumMismatch {
        /// The damaged file.
        path: PathBuf,
        /// Recorded checksum.
        expected: String,
        /// Checksum of the bytes found.
        actual: String,
    },
    /// A file is shorter or longer than recorded, or its structure cannot be decoded.
    #[error("corrupt file {path}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The named database does not exist.
    #[error("Unknown database '{name}'")]
    DatabaseNotFound {
        /// Database name.
        name: String,
    },
    /// The database exists already.
    #[error("Can't create database '{name}'; database exists")]
    DatabaseExists {
        /// Database name.
        name: String,
    },
    /// The named table does not exist.
    #[error("Unknown table '{db}.{table}'")]
    TableNotFound {
        /// Database name.
        db: String,
        /// Table name.
        table: String,
    },
    /// The table exists already.
    #[error("Table '{table}' already exists")]
    TableExists {
        /// Table name.
        table: String,
    },
    /// The named partition does not exist.
    #[error("partition[{partition}] does not exist in table {table}")]
    PartitionNotFound {
        /// Table name.
        table: String,
        /// Partition name.
        partition: String,
    },
    /// A partition with that name exists already.
    #[error("Duplicate partition name {partition}")]
    PartitionExists {
        /// Partition name.
        partition: String,
    },
    /// A new range partition overlaps an existing one, or a list value appears twice.
    #[error("partition {partition} overlaps partition {existing}: {detail}")]
    PartitionOverlap {
        /// New partition.
        partition: String,
        /// Existing partition it collides with.
        existing: String,
        /// The overlapping range or value.
        detail: String,
    },
    /// A loaded row's partition key fits no partition; nothing of the load was written.
    #[error("no partition of table {table} accepts {column} = {value}; the load wrote nothing")]
    NoPartitionForValue {
        /// Table name.
        table: String,
        /// Partition column.
        column: String,
        /// The value, as a SQL literal.
        value: String,
    },
    /// A loaded batch does not fit the table's schema.
    #[error("schema mismatch for table {table}: {detail}")]
    SchemaMismatch {
        /// Table name.
        table: String,
        /// The first difference found.
        detail: String,
    },
    /// A value could not be parsed or does not fit a column type.
    #[error("invalid value {value:?} for {column_type}: {reason}")]
    InvalidValue {
        /// The text given.
        value: String,
        /// The column type it was meant for.
        column_type: String,
        /// Why it was refused.
        reason: String,
    },
    /// A definition (table, partition, type, name) is not acceptable.
    #[error("{0}")]
    InvalidDefinition(String),
    /// A name is not acceptable (empty, too long, or with characters that could escape a path).
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name as given (truncated to 64 characters).
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Arrow failed while computing over data.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Parquet failed while encoding or decoding a segment.
    #[error("parquet {path}: {source}")]
    Parquet {
        /// The segment file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// An operation was stopped by its caller.
    #[error("cancelled: {0}")]
    Cancelled(String),
}

impl Error {
    /// Wraps an I/O error with the operation and path it came from.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// A corrupt-file error.
    pub fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
