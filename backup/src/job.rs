//! Jobs: states, the persisted record, live progress, and the SHOW BACKUP / SHOW RESTORE rows.
//!
//! Invariants: a job's state only moves forward through its kind's states, or to CANCELLED; the
//! record is written to `jobs.json` at submission and at the end (durably); FINISHED and
//! CANCELLED are final.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::format::format_show_time;

/// Whether a job is a BACKUP or a RESTORE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobKind {
    /// BACKUP.
    Backup,
    /// RESTORE.
    Restore,
}

/// A job state, with StarRocks' names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Submitted, not started.
    Pending,
    /// Pinning the engine snapshot (backup) or checking the target (restore).
    Snapshoting,
    /// Backup: preparing the repository for the upload.
    UploadSnapshot,
    /// Backup: copying data files into the repository.
    Uploading,
    /// Backup: writing `meta.json`.
    SaveMeta,
    /// Backup: writing the info file that commits the snapshot.
    UploadInfo,
    /// Restore: planning the download.
    Download,
    /// Restore: copying and verifying data files into the engine.
    Downloading,
    /// Restore: building the catalog change.
    Commit,
    /// Restore: committing it.
    Committing,
    /// Done.
    Finished,
    /// Cancelled, failed, or timed out.
    Cancelled,
}

impl JobState {
    /// The name SHOW prints.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Snapshoting => "SNAPSHOTING",
            JobState::UploadSnapshot => "UPLOAD_SNAPSHOT",
            JobState::Uploading => "UPLOADING",
            JobState::SaveMeta => "SAVE_META",
            JobState::UploadInfo => "UPLOAD_INFO",
            JobState::Download => "DOWNLOAD",
            JobState::Downloading => "DOWNLOADING",
            JobState::Commit => "COMMIT",
            JobState::Committing => "COMMITTING",
            JobState::Finished => "FINISHED",
            JobState::Cancelled => "CANCELLED",
        }
    }

    /// Whether the job is over.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Finished | JobState::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The persisted part of a job (one element of `jobs.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job id.
    pub id: u64,
    /// Kind.
    pub kind: JobKind,
    /// Database (backup: source; restore: target).
    pub db: String,
    /// Snapshot name (label).
    pub snapshot: String,
    /// Repository name.
    pub repository: String,
    /// Backup timestamp (restore: the one restored; backup: the one written).
    pub timestamp: Option<String>,
    /// Objects, rendered as SHOW does.
    pub objects: String,
    /// State.
    pub state: JobState,
    /// Submission time, epoch ms.
    pub create_time_ms: i64,
    /// Restore: PENDING done.
    pub meta_prepared_time_ms: Option<i64>,
    /// SNAPSHOTING done.
    pub snapshot_finished_time_ms: Option<i64>,
    /// Backup: UPLOADING done; restore: DOWNLOADING done.
    pub transfer_finished_time_ms: Option<i64>,
    /// FINISHED or CANCELLED time.
    pub finished_time_ms: Option<i64>,
    /// Timeout, seconds.
    pub timeout_secs: u64,
    /// `[OK]` or `[CODE, msg: ...]`.
    pub status: String,
    /// Restore `allow_load`.
    pub allow_load: bool,
    /// Restore `replication_num`.
    pub replication_num: u32,
    /// Files done when last persisted.
    pub files_done: u64,
    /// Files in the job.
    pub files_total: u64,
    /// Bytes done when last persisted.
    pub bytes_done: u64,
    /// Bytes in the job.
    pub bytes_total: u64,
    /// Bytes actually written (backup: new data files; restore: engine files).
    pub bytes_written: u64,
}

impl JobRecord {
    /// A just-submitted job: PENDING, `[OK]`, no times but its creation, no progress yet.
    pub(crate) fn pending(
        id: u64,
        kind: JobKind,
        (db, snapshot, repository): (&str, &str, &str),
        timestamp: String,
        objects: String,
        create_time_ms: i64,
        timeout_secs: u64,
    ) -> JobRecord {
        JobRecord {
            id,
            kind,
            db: db.to_string(),
            snapshot: snapshot.to_string(),
            repository: repository.to_string(),
            timestamp: Some(timestamp),
            objects,
            state: JobState::Pending,
            create_time_ms,
            meta_prepared_time_ms: None,
            snapshot_finished_time_ms: None,
            transfer_finished_time_ms: None,
            finished_time_ms: None,
            timeout_secs,
            status: "[OK]".into(),
            allow_load: false,
            replication_num: 0,
            files_done: 0,
            files_total: 0,
            bytes_done: 0,
            bytes_total: 0,
            bytes_written: 0,
        }
    }
}

/// Live progress counters of a job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobProgress {
    /// Files done (copied, referenced, or downloaded).
    pub files_done: u64,
    /// Files in the job.
    pub files_total: u64,
    /// Bytes done.
    pub bytes_done: u64,
    /// Bytes in the job.
    pub bytes_total: u64,
    /// Bytes actually written; a backup of unchanged data writes none.
    pub bytes_written: u64,
}

/// A job in memory: the record plus atomics the worker updates and others read.
#[derive(Debug)]
pub(crate) struct Job {
    pub record: Mutex<JobRecord>,
    pub cancel: AtomicBool,
    pub shutdown: AtomicBool,
    pub deadline: Option<Instant>,
    pub files_done: AtomicU64,
    pub files_total: AtomicU64,
    pub bytes_done: AtomicU64,
    pub bytes_total: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Set (with `record` locked) once the job's final record has been persisted: a waiter
    /// returns only then, so nothing of the job is still writing when it does.
    pub settled: AtomicBool,
    /// Notified (with `record` locked) when `settled` is set, so a waiter wakes at once instead
    /// of at its next poll.
    pub ended: Condvar,
}

impl Job {
    pub fn new(record: JobRecord, deadline: Option<Instant>) -> Job {
        Job {
            files_done: AtomicU64::new(record.files_done),
            files_total: AtomicU64::new(record.files_total),
            bytes_done: AtomicU64::new(record.bytes_done),
            bytes_total: AtomicU64::new(record.bytes_total),
            bytes_written: AtomicU64::new(record.bytes_written),
            settled: AtomicBool::new(record.state.is_final()),
            record: Mutex::new(record),
            cancel: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            deadline,
            ended: Condvar::new(),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, JobRecord> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn progress(&self) -> JobProgress {
        JobProgress {
            files_done: self.files_done.load(Ordering::Relaxed),
            files_total: self.files_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
        }
    }

    /// The record with the live counters folded in.
    pub fn snapshot(&self) -> JobRecord {
        let p = self.progress();
        let mut r = self.lock().clone();
        r.files_done = p.files_done;
        r.files_total = p.files_total;
        r.bytes_done = p.bytes_done;
        r.bytes_total = p.bytes_total;
        r.bytes_written = p.bytes_written;
        r
    }
}

fn time(ms: Option<i64>) -> Option<String> {
    ms.map(format_show_time)
}

fn progress_text(r: &JobRecord) -> String {
    format!(
        "files: {}/{}, bytes: {}/{}",
        r.files_done, r.files_total, r.bytes_done, r.bytes_total
    )
}

fn unfinished_tasks(r: &JobRecord) -> String {
    if r.state.is_final() || r.files_total == 0 {
        String::new()
    } else {
        format!("files={}", r.files_total.saturating_sub(r.files_done))
    }
}

/// One row of SHOW BACKUP (14 columns, in StarRocks' order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupJobInfo {
    /// `JobId`.
    pub job_id: u64,
    /// `SnapshotName`.
    pub snapshot_name: String,
    /// `DbName`.
    pub db_name: String,
    /// `State`.
    pub state: JobState,
    /// `BackupObjs`.
    pub backup_objs: String,
    /// `CreateTime`.
    pub create_time: String,
    /// `SnapshotFinishedTime`.
    pub snapshot_finished_time: Option<String>,
    /// `UploadFinishedTime`.
    pub upload_finished_time: Option<String>,
    /// `FinishedTime`.
    pub finished_time: Option<String>,
    /// `UnfinishedTasks`.
    pub unfinished_tasks: String,
    /// `Progress`.
    pub progress: String,
    /// `TaskErrMsg`.
    pub task_err_msg: String,
    /// `Status`.
    pub status: String,
    /// `Timeout`, seconds.
    pub timeout: u64,
}

impl BackupJobInfo {
    pub(crate) fn from_record(r: &JobRecord) -> BackupJobInfo {
        BackupJobInfo {
            job_id: r.id,
            snapshot_name: r.snapshot.clone(),
            db_name: r.db.clone(),
            state: r.state,
            backup_objs: r.objects.clone(),
            create_time: format_show_time(r.create_time_ms),
            snapshot_finished_time: time(r.snapshot_finished_time_ms),
            upload_finished_time: time(r.transfer_finished_time_ms),
            finished_time: time(r.finished_time_ms),
            unfinished_tasks: unfinished_tasks(r),
            progress: progress_text(r),
            task_err_msg: String::new(),
            status: r.status.clone(),
            timeout: r.timeout_secs,
        }
    }
}

/// One row of SHOW RESTORE (18 columns, in StarRocks' order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreJobInfo {
    /// `JobId`.
    pub job_id: u64,
    /// `Label`.
    pub label: String,
    /// `Timestamp`.
    pub timestamp: String,
    /// `DbName`.
    pub db_name: String,
    /// `State`.
    pub state: JobState,
    /// `AllowLoad`.
    pub allow_load: bool,
    /// `ReplicationNum`.
    pub replication_num: u32,
    /// `RestoreObjs`.
    pub restore_objs: String,
    /// `CreateTime`.
    pub create_time: String,
    /// `MetaPreparedTime`.
    pub meta_prepared_time: Option<String>,
    /// `SnapshotFinishedTime`.
    pub snapshot_finished_time: Option<String>,
    /// `DownloadFinishedTime`.
    pub download_finished_time: Option<String>,
    /// `FinishedTime`.
    pub finished_time: Option<String>,
    /// `UnfinishedTasks`.
    pub unfinished_tasks: String,
    /// `Progress`.
    pub progress: String,
    /// `TaskErrMsg`.
    pub task_err_msg: String,
    /// `Status`.
    pub status: String,
    /// `Timeout`, seconds.
    pub timeout: u64,
}

impl RestoreJobInfo {
    pub(crate) fn from_record(r: &JobRecord) -> RestoreJobInfo {
        RestoreJobInfo {
            job_id: r.id,
            label: r.snapshot.clone(),
            timestamp: r.timestamp.clone().unwrap_or_default(),
            db_name: r.db.clone(),
            state: r.state,
            allow_load: r.allow_load,
            replication_num: r.replication_num,
            restore_objs: r.objects.clone(),
            create_time: format_show_time(r.create_time_ms),
            meta_prepared_time: time(r.meta_prepared_time_ms),
            snapshot_finished_time: time(r.snapshot_finished_time_ms),
            download_finished_time: time(r.transfer_finished_time_ms),
            finished_time: time(r.finished_time_ms),
            unfinished_tasks: unfinished_tasks(r),
            progress: progress_text(r),
            task_err_msg: String::new(),
            status: r.status.clone(),
            timeout: r.timeout_secs,
        }
    }
}
