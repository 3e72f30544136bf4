//! The backup crate's one error type.
//!
//! Where StarRocks has a message for the same situation, `Display` is StarRocks' text verbatim,
//! because users' scripts grep for it. Variants are structured so callers can act on them.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = BackupError> = std::result::Result<T, E>;

/// Everything that can go wrong in a backup, restore, or repository operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// An object-storage request failed (after its retries); names the object, never a secret.
    #[error("object storage request failed for {object}: {reason}")]
    Store {
        /// The object (`s3://bucket/key`).
        object: String,
        /// What the store answered.
        reason: String,
    },
    /// A conditional create found the object already there.
    #[error("{object} already exists")]
    ObjectExists {
        /// The object or file.
        object: String,
    },
    /// Repository properties that do not apply to the location.
    #[error("Unknown repository properties: [{}]", keys.join(", "))]
    UnknownRepositoryProperties {
        /// The unknown keys.
        keys: Vec<String>,
    },
    /// An engine call (storage, catalog, names) failed.
    #[error("{0}")]
    Engine(#[from] shale_engine::Error),
    /// A repository with this name is already defined.
    #[error("repository with same name already exist: {name}")]
    RepositoryExists {
        /// Repository name.
        name: String,
    },
    /// No repository with this name.
    #[error("Repository [{name}] does not exist")]
    RepositoryNotFound {
        /// Repository name.
        name: String,
    },
    /// DROP REPOSITORY with no such repository.
    #[error("Repository does not exist")]
    RepositoryMissing,
    /// BACKUP into a read-only repository.
    #[error("Repository {name} is read only")]
    RepositoryReadOnly {
        /// Repository name.
        name: String,
    },
    /// DROP REPOSITORY while a job uses it.
    #[error("Backup or restore job is running on this repository. Can not drop it")]
    RepositoryInUse {
        /// Repository name.
        name: String,
    },
    /// The location cannot hold a repository.
    #[error("Failed to create repository: {reason}")]
    InvalidLocation {
        /// The location as given.
        location: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// An unfinished backup or restore job exists for the database.
    #[error("Can only run one backup or restore job of a database at same time")]
    JobRunning {
        /// Database name.
        db: String,
    },
    /// The snapshot name is taken in the repository.
    #[error("Snapshot with name '{name}' already exist in repository")]
    SnapshotExists {
        /// Snapshot name.
        name: String,
    },
    /// The snapshot does not exist (or is not committed) in the repository.
    #[error(
        "Failed to get info of snapshot '{snapshot}' because: {reason}. Maybe specified wrong backup timestamp"
    )]
    SnapshotInfo {
        /// Snapshot name.
        snapshot: String,
        /// What was not found.
        reason: String,
    },
    /// `type` property with a value other than FULL / INCREMENTAL.
    #[error("Invalid backup job type: {value}")]
    InvalidBackupType {
        /// The value given.
        value: String,
    },
    /// `type` = INCREMENTAL on an existing snapshot name.
    #[error("Currently does not support incremental backup")]
    IncrementalUnsupported,
    /// `timeout` that is not an integer.
    #[error("Invalid timeout format: {value}")]
    InvalidTimeout {
        /// The value given.
        value: String,
    },
    /// `timeout` below 600 seconds.
    #[error("timeout must be at least 10 min")]
    TimeoutTooSmall,
    /// `allow_load` that is not a boolean.
    #[error("Invalid allow load value: {value}")]
    InvalidAllowLoad {
        /// The value given.
        value: String,
    },
    /// `replication_num` that is not an integer (StarRocks reuses this message).
    #[error("Invalid meta version format: {value}")]
    InvalidReplicationNum {
        /// The value given.
        value: String,
    },
    /// Unknown BACKUP properties.
    #[error("Unknown backup job properties: [{}]", keys.join(", "))]
    UnknownBackupProperties {
        /// The keys.
        keys: Vec<String>,
    },
    /// Unknown RESTORE properties.
    #[error("Unknown restore job properties: [{}]", keys.join(", "))]
    UnknownRestoreProperties {
        /// The keys.
        keys: Vec<String>,
    },
    /// A table named twice in one statement.
    #[error("Duplicated table: {table}")]
    DuplicatedTable {
        /// Table name.
        table: String,
    },
    /// An alias named twice in one RESTORE.
    #[error("Duplicated alias name: {alias}")]
    DuplicatedAlias {
        /// Alias.
        alias: String,
    },
    /// A partition named in BACKUP does not exist.
    #[error("partition[{partition}] does not exist  in table{table}")]
    PartitionNotFound {
        /// Table name.
        table: String,
        /// Partition name.
        partition: String,
    },
    /// A table named in RESTORE is not in the snapshot.
    #[error("Table {table} does not exist in snapshot {snapshot}")]
    TableNotInSnapshot {
        /// Table name.
        table: String,
        /// Snapshot name.
        snapshot: String,
    },
    /// A partition named in RESTORE is not in the snapshot.
    #[error("Partition {partition} of table {table} does not exist in snapshot {snapshot}")]
    PartitionNotInSnapshot {
        /// Table name.
        table: String,
        /// Partition name.
        partition: String,
        /// Snapshot name.
        snapshot: String,
    },
    /// RESTORE into an existing table whose schema differs.
    #[error("Table {table} already exist but with different schema, errMsg: {detail}")]
    SchemaDifferent {
        /// Table name (after alias).
        table: String,
        /// The first difference.
        detail: String,
    },
    /// RESTORE of a partition whose name exists with another range.
    #[error(
        "Partition {partition} in table {table} has different range with partition in repository"
    )]
    PartitionRangeDifferent {
        /// Table name.
        table: String,
        /// Partition name.
        partition: String,
    },
    /// RESTORE of a new partition that overlaps an existing one.
    #[error("Partition {partition} in table {table} has conflict range with existing ranges")]
    PartitionRangeConflict {
        /// Table name.
        table: String,
        /// Partition name.
        partition: String,
    },
    /// A repository file's bytes do not match the recorded checksum.
    #[error("checksum mismatch in {path}: expected {expected}, found {actual}")]
    ChecksumMismatch {
        /// The damaged file.
        path: PathBuf,
        /// Recorded checksum.
        expected: String,
        /// Checksum of the bytes found.
        actual: String,
    },
    /// A repository file is missing, has the wrong size, or cannot be decoded.
    #[error("corrupt file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The job was cancelled by the user.
    #[error("user cancelled")]
    Cancelled,
    /// The process is stopping (the service was dropped).
    #[error("interrupted: the process stopped")]
    Interrupted,
    /// The job ran past its timeout.
    #[error("job timed out")]
    Timeout,
    /// CANCEL BACKUP with no backup job for the database.
    #[error("No backup job is currently running")]
    NoBackupJob,
    /// CANCEL RESTORE with no restore job for the database.
    #[error("No restore is currently running")]
    NoRestoreJob,
    /// CANCEL of a finished job.
    #[error("Failed to cancel job: Job with label {label} can not be cancelled. state: {state}")]
    CannotCancel {
        /// Snapshot name.
        label: String,
        /// Current state.
        state: String,
    },
    /// The service is shutting down.
    #[error("the backup service is shut down")]
    Shutdown,
}

impl BackupError {
    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> BackupError {
        BackupError::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
