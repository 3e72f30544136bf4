//! Repository definitions and the operations on a repository's files: listing, reading and
//! checking snapshots, copying data files in and out, dropping snapshots, verifying.
//!
//! Invariants:
//! - A snapshot is OK only if its info file exists, decodes, and `meta.json` has the size and
//!   BLAKE3 the info file records.
//! - A data file is only ever created under a temporary name and renamed into place after its
//!   content hash was checked, so `data/.../<hash>.parquet` always holds bytes hashing to `<hash>`
//!   unless damaged afterwards (which VERIFY reports).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use shale_engine::{Storage, WritableFile};

use crate::error::{BackupError, Result};
use crate::format::*;

/// A repository as the engine's catalog stores it (under `repository/<name>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositoryDef {
    /// Catalog id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Location as given (a path or a `file://` URI).
    pub location: String,
    /// Whether BACKUP into it is refused.
    pub read_only: bool,
    /// Properties as given.
    pub properties: BTreeMap<String, String>,
    /// Creation time (or the time read from an adopted repository), epoch milliseconds.
    pub create_time_ms: i64,
}

impl RepositoryDef {
    /// The directory of the repository.
    pub fn root(&self) -> PathBuf {
        location_path(&self.location)
    }
}

/// The directory a location names: a plain path or a `file://` URI.
pub fn location_path(location: &str) -> PathBuf {
    PathBuf::from(location.strip_prefix("file://").unwrap_or(location))
}

/// One row of SHOW REPOSITORIES.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryInfo {
    /// `RepoId`.
    pub repo_id: u64,
    /// `RepoName`.
    pub repo_name: String,
    /// `CreateTime`, `yyyy-MM-dd HH:mm:ss`.
    pub create_time: String,
    /// `IsReadOnly`.
    pub is_read_only: bool,
    /// `Location`.
    pub location: String,
    /// `Broker` (always empty: brokerless).
    pub broker: String,
    /// `ErrMsg`: `None` when the location is reachable.
    pub err_msg: Option<String>,
}

/// One row of SHOW SNAPSHOT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotListing {
    /// `Snapshot`.
    pub snapshot: String,
    /// `Timestamp`: the backup timestamps found (normally one).
    pub timestamps: Vec<String>,
    /// `Status`: `OK`, or `ERROR: ...`.
    pub status: String,
}

/// What one snapshot holds.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotDetails {
    /// Snapshot name.
    pub snapshot: String,
    /// Backup timestamp.
    pub timestamp: String,
    /// Database.
    pub database: String,
    /// Tables.
    pub tables: Vec<TableDetails>,
    /// Data file references.
    pub file_count: u64,
    /// Bytes of data referenced.
    pub data_bytes: u64,
    /// Rows.
    pub row_count: u64,
}

/// One table of a snapshot's details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDetails {
    /// Table name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<PartitionDetails>,
}

/// One partition of a snapshot's details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionDetails {
    /// Partition name.
    pub name: String,
    /// Rows.
    pub rows: u64,
    /// Bytes of its data files.
    pub bytes: u64,
}

/// What DROP SNAPSHOT removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropReport {
    /// Data files removed (no other snapshot used them).
    pub files_removed: u64,
    /// Bytes freed, data files plus the snapshot's own files.
    pub bytes_freed: u64,
}

/// One problem VERIFY found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyProblem {
    /// The file concerned, relative to the repository root.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// What VERIFY found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Distinct data files checked.
    pub files_checked: u64,
    /// Bytes read.
    pub bytes_checked: u64,
    /// Problems, each naming its file; empty means the snapshot is good.
    pub problems: Vec<VerifyProblem>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A snapshot read and checked: its info and its meta.
#[derive(Clone, Debug)]
pub(crate) struct LoadedSnapshot {
    pub info: SnapshotInfo,
    pub meta: SnapshotMeta,
}

/// Prepares `root` as a repository: creates it (unless read-only), adopts an existing marker or
/// writes a new one. Returns the creation time to show.
pub(crate) fn init_location(
    storage: &dyn Storage,
    name: &str,
    location: &str,
    read_only: bool,
) -> Result<i64> {
    let invalid = |reason: String| BackupError::InvalidLocation {
        location: location.to_string(),
        reason,
    };
    if location.is_empty() {
        return Err(invalid("location is empty".into()));
    }
    if location.contains("://") && !location.starts_with("file://") {
        return Err(invalid(format!(
            "unsupported location {location}: only local paths and file:// URIs"
        )));
    }
    let root = location_path(location);
    match std::fs::metadata(&root) {
        Ok(m) if !m.is_dir() => {
            return Err(invalid(format!("{} is not a directory", root.display())));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !read_only => {
            storage
                .create_dir_all(&root)
                .map_err(|e| invalid(e.to_string()))?;
        }
        Err(e) => return Err(invalid(format!("{}: {e}", root.display()))),
    }
    let marker = root.join(REPOSITORY_FILE);
    if std::fs::read_dir(&root).is_err() {
        return Err(invalid(format!("cannot read directory {}", root.display())));
    }
    if storage
        .file_len(&marker)
        .map_err(|e| invalid(e.to_string()))?
        .is_some()
    {
        let bytes = storage.read(&marker).map_err(|e| invalid(e.to_string()))?;
        let file: RepositoryFile =
            decode_json(&marker, &bytes).map_err(|e| invalid(e.to_string()))?;
        if file.format_version > FORMAT_VERSION {
            return Err(invalid(format!(
                "{} has format version {}, this build reads up to {FORMAT_VERSION}",
                marker.display(),
                file.format_version
            )));
        }
        if !read_only {
            // Prove we can write here before accepting BACKUP jobs.
            let probe = root.join(".shale_probe");
            storage::probe(storage, &probe).map_err(|e| invalid(e.to_string()))?;
        }
        return Ok(file.create_time_ms);
    }
    if read_only {
        return Err(invalid(format!(
            "{} is not a shale repository (no {REPOSITORY_FILE})",
            root.display()
        )));
    }
    let file = RepositoryFile {
        format_version: FORMAT_VERSION,
        name: name.to_string(),
        create_time_ms: now_ms(),
    };
    let bytes = encode_json(&marker, &file)?;
    shale_engine::storage::write_atomic(storage, &marker, &bytes)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(file.create_time_ms)
}

mod storage {
    use super::*;

    /// Creates and removes a small file.
    pub(super) fn probe(storage: &dyn Storage, path: &Path) -> Result<()> {
        let mut f = storage.create(path)?;
        f.write_all(b"probe")?;
        drop(f);
        storage.remove_file(path)?;
        Ok(())
    }
}

/// The info timestamps present in a snapshot directory.
pub(crate) fn timestamps(
    storage: &dyn Storage,
    root: &Path,
    snapshot: &str,
) -> Result<Vec<String>> {
    let mut out: Vec<String> = storage
        .list_dir(&snapshot_dir(root, snapshot))?
        .into_iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| info_timestamp(&e.name).map(str::to_string))
        .collect();
    out.sort();
    Ok(out)
}

/// Whether a snapshot with an info file exists (committed, or at least claimed).
pub(crate) fn snapshot_committed(
    storage: &dyn Storage,
    root: &Path,
    snapshot: &str,
) -> Result<bool> {
    Ok(!timestamps(storage, root, snapshot)?.is_empty())
}

/// Reads and checks one snapshot: info file `timestamp` (or the only one), then `meta.json`
/// against the size and BLAKE3 the info records.
pub(crate) fn load_snapshot(
    storage: &dyn Storage,
    root: &Path,
    snapshot: &str,
    timestamp: Option<&str>,
) -> Result<LoadedSnapshot> {
    shale_engine::names::validate("snapshot", snapshot)?;
    let info_err = |reason: String| BackupError::SnapshotInfo {
        snapshot: snapshot.to_string(),
        reason,
    };
    let dir = snapshot_dir(root, snapshot);
    let found = timestamps(storage, root, snapshot)?;
    let timestamp = match timestamp {
        Some(ts) => {
            if !found.iter().any(|f| f == ts) {
                return Err(info_err(format!(
                    "Expected one file with path: {}. get: 0",
                    dir.join(info_file_name(ts)).display()
                )));
            }
            ts.to_string()
        }
        None => match found.as_slice() {
            [one] => one.clone(),
            [] => return Err(info_err(format!("no info file in {}", dir.display()))),
            many => {
                return Err(info_err(format!(
                    "the snapshot has {} backup timestamps ({}); specify backup_timestamp",
                    many.len(),
                    many.join(", ")
                )));
            }
        },
    };
    let info_path = dir.join(info_file_name(&timestamp));
    let info = SnapshotInfo::decode(&info_path, &storage.read(&info_path)?)?;
    if info.format_version > FORMAT_VERSION || info.snapshot != snapshot {
        return Err(BackupError::corrupt(
            &info_path,
            format!(
                "info file is for snapshot {:?}, format {}",
                info.snapshot, info.format_version
            ),
        ));
    }
    let meta_path = dir.join(META_FILE);
    let bytes = storage.read(&meta_path)?;
    if bytes.len() as u64 != info.meta_size {
        return Err(BackupError::corrupt(
            &meta_path,
            format!(
                "size is {} bytes, the info file records {}",
                bytes.len(),
                info.meta_size
            ),
        ));
    }
    let actual = blake3::hash(&bytes).to_hex().to_string();
    if actual != info.meta_blake3 {
        return Err(BackupError::ChecksumMismatch {
            path: meta_path,
            expected: info.meta_blake3.clone(),
            actual,
        });
    }
    let meta: SnapshotMeta = decode_json(&meta_path, &bytes)?;
    meta.validate(&meta_path)?;
    if meta.snapshot != snapshot || meta.database != info.database {
        return Err(BackupError::corrupt(
            &meta_path,
            "meta.json does not belong to this info file",
        ));
    }
    Ok(LoadedSnapshot { info, meta })
}

/// SHOW SNAPSHOT: every snapshot directory with its timestamps and status.
pub(crate) fn list_snapshots(storage: &dyn Storage, root: &Path) -> Result<Vec<SnapshotListing>> {
    let mut out = Vec::new();
    for entry in storage.list_dir(&root.join(SNAPSHOTS_DIR))? {
        if !entry.is_dir || shale_engine::names::validate("snapshot", &entry.name).is_err() {
            continue;
        }
        let timestamps = timestamps(storage, root, &entry.name)?;
        let status = if timestamps.is_empty() {
            "ERROR: no snapshot".to_string()
        } else {
            let mut status = "OK".to_string();
            for ts in &timestamps {
                if let Err(e) = load_snapshot(storage, root, &entry.name, Some(ts)) {
                    status = format!("ERROR: Failed to get info: {e}");
                    break;
                }
            }
            status
        };
        out.push(SnapshotListing {
            snapshot: entry.name,
            timestamps,
            status,
        });
    }
    Ok(out)
}

/// Details of one snapshot.
pub(crate) fn details(loaded: &LoadedSnapshot) -> SnapshotDetails {
    SnapshotDetails {
        snapshot: loaded.meta.snapshot.clone(),
        timestamp: loaded.info.backup_timestamp.clone(),
        database: loaded.meta.database.clone(),
        tables: loaded
            .meta
            .tables
            .iter()
            .map(|t| {
                let parts = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let files = p
                            .tablets
                            .iter()
                            .flat_map(|tb| tb.rowsets.iter().flat_map(|r| r.files.iter()));
                        let (rows, bytes) =
                            files.fold((0u64, 0u64), |(r, b), f| (r + f.rows, b + f.size));
                        PartitionDetails {
                            name: p.name.clone(),
                            rows,
                            bytes,
                        }
                    })
                    .collect();
                TableDetails {
                    name: t.name.clone(),
                    partitions: parts,
                }
            })
            .collect(),
        file_count: loaded.info.file_count,
        data_bytes: loaded.info.data_bytes,
        row_count: loaded.info.row_count,
    }
}

/// Streams `reader` into `writer` in chunks of `chunk` bytes, hashing as it goes; calls `check`
/// before every chunk (cancel, deadline) and adds to `progress` after it. Returns the BLAKE3
/// hex, CRC-32C and length of what was copied.
pub(crate) fn copy_hashed(
    reader: &mut dyn Read,
    mut writer: Option<&mut dyn WritableFile>,
    source: &Path,
    chunk: usize,
    check: &dyn Fn() -> Result<()>,
    progress: &AtomicU64,
) -> Result<(String, u32, u64)> {
    let mut buf = vec![0u8; chunk.max(4096)];
    let mut hasher = blake3::Hasher::new();
    let mut crc = 0u32;
    let mut len = 0u64;
    loop {
        check()?;
        let mut filled = 0;
        while filled < buf.len() {
            let n = reader
                .read(&mut buf[filled..])
                .map_err(|e| shale_engine::Error::io("read", source, e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        let data = &buf[..filled];
        hasher.update(data);
        crc = crc32c::crc32c_append(crc, data);
        len += filled as u64;
        if let Some(w) = writer.as_deref_mut() {
            w.write_all(data)?;
        }
        progress.fetch_add(filled as u64, Ordering::Relaxed);
        if filled < buf.len() {
            break;
        }
    }
    Ok((hasher.finalize().to_hex().to_string(), crc, len))
}

/// Checks a copied file's hash, CRC-32C and size against what was recorded.
pub(crate) fn check_copied(
    path: &Path,
    (hash, crc, len): &(String, u32, u64),
    file: &FileMeta,
) -> Result<()> {
    if *len != file.size {
        return Err(BackupError::corrupt(
            path,
            format!("size is {len} bytes, {} recorded", file.size),
        ));
    }
    if *hash != file.hash {
        return Err(BackupError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: file.hash.clone(),
            actual: hash.clone(),
        });
    }
    if *crc != file.crc32c {
        return Err(BackupError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: format!("{:08x}", file.crc32c),
            actual: format!("{crc:08x}"),
        });
    }
    Ok(())
}

/// DROP SNAPSHOT: info files first (the snapshot stops existing), then the folder, then every
/// data file no remaining `meta.json` references. The caller holds the repository lock.
pub(crate) fn drop_snapshot(
    storage: &dyn Storage,
    root: &Path,
    snapshot: &str,
) -> Result<DropReport> {
    shale_engine::names::validate("snapshot", snapshot)?;
    let dir = snapshot_dir(root, snapshot);
    let entries = storage.list_dir(&dir)?;
    if entries.is_empty() {
        return Err(BackupError::SnapshotInfo {
            snapshot: snapshot.to_string(),
            reason: format!("{} does not exist", dir.display()),
        });
    }
    let mut report = DropReport::default();
    for e in entries.iter().filter(|e| e.name.starts_with(INFO_PREFIX)) {
        storage.remove_file(&dir.join(&e.name))?;
        report.bytes_freed += e.len;
    }
    storage.sync_dir(&dir)?;
    report.bytes_freed += entries
        .iter()
        .filter(|e| !e.name.starts_with(INFO_PREFIX) && !e.is_dir)
        .map(|e| e.len)
        .sum::<u64>();
    storage.remove_dir_all(&dir)?;
    storage.sync_dir(&root.join(SNAPSHOTS_DIR))?;
    let (files, bytes) = sweep(storage, root)?;
    report.files_removed = files;
    report.bytes_freed += bytes;
    Ok(report)
}

/// Removes data files no snapshot's `meta.json` references, and leftover temporary files.
/// If some `meta.json` cannot be read, nothing is removed (its files might still be needed).
pub(crate) fn sweep(storage: &dyn Storage, root: &Path) -> Result<(u64, u64)> {
    let mut referenced = BTreeSet::new();
    for snap in storage.list_dir(&root.join(SNAPSHOTS_DIR))? {
        if !snap.is_dir {
            continue;
        }
        let meta_path = root.join(SNAPSHOTS_DIR).join(&snap.name).join(META_FILE);
        if storage.file_len(&meta_path)?.is_none() {
            continue;
        }
        let Ok(meta) = decode_json::<SnapshotMeta>(&meta_path, &storage.read(&meta_path)?) else {
            return Ok((0, 0));
        };
        referenced.extend(meta.files().map(|f| f.hash.clone()));
    }
    let (mut files, mut bytes) = (0, 0);
    let data = root.join(DATA_DIR);
    for a in storage.list_dir(&data)?.into_iter().filter(|e| e.is_dir) {
        for b in storage
            .list_dir(&data.join(&a.name))?
            .into_iter()
            .filter(|e| e.is_dir)
        {
            let dir = data.join(&a.name).join(&b.name);
            let mut removed = false;
            for f in storage.list_dir(&dir)?.into_iter().filter(|e| !e.is_dir) {
                let keep = f
                    .name
                    .strip_suffix(".parquet")
                    .is_some_and(|h| is_hash(h) && referenced.contains(h));
                if !keep {
                    storage.remove_file(&dir.join(&f.name))?;
                    files += 1;
                    bytes += f.len;
                    removed = true;
                }
            }
            if removed {
                storage.sync_dir(&dir)?;
            }
        }
    }
    Ok((files, bytes))
}

/// VERIFY: every distinct data file present with the recorded size, BLAKE3 and CRC-32C; `deep`
/// also decodes it as Parquet and counts its rows.
pub(crate) fn verify(
    storage: &dyn Storage,
    root: &Path,
    meta: &SnapshotMeta,
    deep: bool,
) -> VerifyReport {
    let mut report = VerifyReport::default();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let never = AtomicU64::new(0);
    for f in meta.files() {
        if !seen.insert(f.hash.clone()) {
            continue;
        }
        report.files_checked += 1;
        let path = root.join(&f.path);
        let mut problem = |p: String| {
            problems.push(VerifyProblem {
                path: f.path.clone(),
                problem: p,
            })
        };
        match storage.file_len(&path) {
            Ok(None) => {
                problem("missing".into());
                continue;
            }
            Ok(Some(len)) if len != f.size => {
                problem(format!("size is {len} bytes, {} recorded", f.size));
                continue;
            }
            Err(e) => {
                problem(e.to_string());
                continue;
            }
            Ok(Some(_)) => {}
        }
        let copied = storage
            .open_read(&path)
            .map_err(BackupError::from)
            .and_then(|mut r| copy_hashed(&mut *r, None, &path, 1 << 20, &|| Ok(()), &never));
        match copied.and_then(|c| check_copied(&path, &c, f)) {
            Ok(()) => {}
            Err(e) => {
                problem(e.to_string());
                continue;
            }
        }
        report.bytes_checked += f.size;
        if deep {
            match count_rows(storage, &path) {
                Ok(rows) if rows == f.rows => {}
                Ok(rows) => problem(format!("has {rows} rows, {} recorded", f.rows)),
                Err(e) => problem(e.to_string()),
            }
        }
    }
    report.problems = problems;
    report
}

/// Decodes a Parquet file and counts its rows.
pub(crate) fn count_rows(storage: &dyn Storage, path: &Path) -> Result<u64> {
    let bytes = storage.map(path)?;
    let bad = |e: &dyn std::fmt::Display| BackupError::corrupt(path, format!("Parquet: {e}"));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| bad(&e))?
        .build()
        .map_err(|e| bad(&e))?;
    let mut rows = 0u64;
    for batch in reader {
        rows += batch.map_err(|e| bad(&e))?.num_rows() as u64;
    }
    Ok(rows)
}
