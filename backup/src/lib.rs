//! # shale-backup
//!
//! BACKUP and RESTORE of shale databases, with StarRocks' statements' behaviour (states, rules,
//! messages, SHOW columns) over an open, content-addressed repository format on a local file
//! system or S3-compatible object storage (`docs/design.md, section "Backup"`).
//!
//! Start with [`Backups`]: [`Backups::open`] it on an [`shale_engine::Engine`],
//! [`Backups::create_repository`], submit [`Backups::backup`] / [`Backups::restore`] jobs (they
//! run on a worker pool), watch them with [`Backups::show_backup`] / [`Backups::show_restore`],
//! and manage snapshots with [`Backups::list_snapshots`], [`Backups::verify`] and
//! [`Backups::drop_snapshot`].
//!
//! Module map: [`format`] (the repository's files), [`repository`] (operations on them),
//! [`store`] (where the files live: a directory or an S3 bucket), [`job`] (states, records,
//! SHOW rows), `service` (the [`Backups`] service), `backup` and
//! `restore` (the two job kinds).

mod backup;
pub mod error;
pub mod format;
pub mod job;
pub mod repository;
mod restore;
#[cfg(feature = "s3")]
pub mod s3;
mod service;
pub mod store;

pub use error::{BackupError, Result};
pub use job::{BackupJobInfo, JobKind, JobProgress, JobRecord, JobState, RestoreJobInfo};
pub use repository::{
    DropReport, PartitionDetails, RepositoryDef, RepositoryInfo, SnapshotDetails, SnapshotListing,
    TableDetails, VerifyProblem, VerifyReport,
};
pub use service::{
    Backups, BackupsOptions, JOBS_FILE, REPOSITORY_META_PREFIX, StateHook, TIMEOUT_DEFAULT_SECS,
    TIMEOUT_MIN_SECS, TableRef,
};
pub use store::{ObjectEntry, ObjectWriter, RepoStore, StoreOptions};
