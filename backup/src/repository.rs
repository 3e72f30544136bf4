//! Repository definitions and the operations on a repository's files: listing, reading and
//! checking snapshots, copying data files in and out, dropping snapshots, verifying.
//!
//! Invariants:
//! - A snapshot is OK only if its info file exists, decodes, and `meta.json` has the size and
//!   BLAKE3 the info file records.
//! - A data file only becomes visible (FS: fdatasynced, then renamed from a temporary name; S3:
//!   PUT or multipart completion) after its bytes were checked: against the engine's recorded
//!   size and CRC-32C by BACKUP (the name is the BLAKE3 the engine recorded for those bytes), so
//!   `data/.../<hash>.parquet` always holds bytes hashing to `<hash>` unless damaged afterwards
//!   (which VERIFY and RESTORE, recomputing BLAKE3, report).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use shale_engine::Storage;

use crate::error::{BackupError, Result};
use crate::format::*;
use crate::store::RepoStore;

/// A repository as the engine's catalog stores it (under `repository/<name>`). `Debug` masks
/// secret properties.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct RepositoryDef {
    /// Catalog id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Location as given (a path, a `file://` URI, or `s3://bucket/prefix` / `s3a://...`).
    pub location: String,
    /// Whether BACKUP into it is refused.
    pub read_only: bool,
    /// Properties as given.
    pub properties: BTreeMap<String, String>,
    /// Creation time (or the time read from an adopted repository), epoch milliseconds.
    pub create_time_ms: i64,
}

impl RepositoryDef {
    /// The directory of a local repository (for an object-storage one, the location as a path).
    pub fn root(&self) -> PathBuf {
        location_path(&self.location)
    }

    /// Whether the location is on S3-compatible object storage (`s3://` or `s3a://`).
    pub fn is_object_storage(&self) -> bool {
        crate::store::parse_s3_location(&self.location).is_some()
    }

    /// The properties with secret values replaced by `***`.
    pub fn masked_properties(&self) -> BTreeMap<String, String> {
        self.properties
            .iter()
            .map(|(k, v)| {
                let secret = crate::store::SECRET_PROPERTIES.contains(&k.as_str());
                (k.clone(), if secret { "***".into() } else { v.clone() })
            })
            .collect()
    }
}

impl std::fmt::Debug for RepositoryDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepositoryDef")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("location", &self.location)
            .field("read_only", &self.read_only)
            .field("properties", &self.masked_properties())
            .field("create_time_ms", &self.create_time_ms)
            .finish()
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

/// The key prefix of a snapshot's folder, `snapshots/<name>/`.
pub(crate) fn snapshot_prefix(snapshot: &str) -> String {
    format!("{SNAPSHOTS_DIR}/{snapshot}/")
}

/// Checks a local directory location before a store is opened on it: creates it (unless
/// read-only) and refuses a path that is not a readable directory.
pub(crate) fn prepare_fs_location(
    storage: &dyn Storage,
    location: &str,
    read_only: bool,
) -> Result<()> {
    let invalid = |reason: String| BackupError::InvalidLocation {
        location: location.to_string(),
        reason,
    };
    if location.is_empty() {
        return Err(invalid("location is empty".into()));
    }
    if location.contains("://") && !location.starts_with("file://") {
        return Err(invalid(format!(
            "unsupported location {location}: only local paths, file://, s3:// and s3a:// URIs"
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
    if std::fs::read_dir(&root).is_err() {
        return Err(invalid(format!("cannot read directory {}", root.display())));
    }
    Ok(())
}

/// Creates a directory repository's 256 data folders (`data/00` to `data/ff`, see
/// [`data_path`]) and makes their names durable, so that a backup creates only its files.
/// Creating a directory cost 0.2 to 1.4 ms on this machine's ext4, several times a file's
/// creation, and an incremental backup's few new files each landed in a folder not yet there.
/// Folders already present are kept; a repository without them still works, as a backup
/// creates a missing folder itself.
pub(crate) fn prepare_data_dirs(storage: &dyn Storage, location: &str) -> Result<()> {
    let data = location_path(location).join(DATA_DIR);
    for prefix in 0..=255u8 {
        storage.create_dir_all(&data.join(format!("{prefix:02x}")))?;
    }
    storage.sync_dir(&data)?;
    Ok(storage.sync_dir(&location_path(location))?)
}

/// Prepares a store as a repository: proves it is reachable, adopts an existing marker or
/// writes a new one, and (unless read-only) proves it is writable. Returns the creation time
/// to show. Wrong credentials or a missing bucket fail here, not at the first backup.
pub(crate) fn init_location(
    store: &dyn RepoStore,
    name: &str,
    location: &str,
    read_only: bool,
) -> Result<i64> {
    let invalid = |reason: String| BackupError::InvalidLocation {
        location: location.to_string(),
        reason,
    };
    let marker = store.display(REPOSITORY_FILE);
    // A listing is the cheapest request that fails on a missing bucket or bad credentials.
    store.list_dirs("").map_err(|e| invalid(e.to_string()))?;
    if store
        .head(REPOSITORY_FILE)
        .map_err(|e| invalid(e.to_string()))?
        .is_some()
    {
        let bytes = store
            .read(REPOSITORY_FILE)
            .map_err(|e| invalid(e.to_string()))?;
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
            store
                .put(PROBE_FILE, b"probe")
                .and_then(|()| store.delete(PROBE_FILE))
                .map_err(|e| invalid(e.to_string()))?;
        }
        return Ok(file.create_time_ms);
    }
    if read_only {
        return Err(invalid(format!(
            "{} is not a shale repository (no {REPOSITORY_FILE})",
            store.display("").display()
        )));
    }
    let file = RepositoryFile {
        format_version: FORMAT_VERSION,
        name: name.to_string(),
        create_time_ms: now_ms(),
    };
    let bytes = encode_json(&marker, &file)?;
    store
        .put_once(REPOSITORY_FILE, &bytes)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(file.create_time_ms)
}

/// The object a writability probe creates and removes.
const PROBE_FILE: &str = ".shale_probe";

/// The info timestamps present in a snapshot folder.
pub(crate) fn timestamps(store: &dyn RepoStore, snapshot: &str) -> Result<Vec<String>> {
    let prefix = snapshot_prefix(snapshot);
    let mut out: Vec<String> = store
        .list(&prefix)?
        .into_iter()
        .filter_map(|e| {
            let name = e.key.strip_prefix(&prefix)?;
            (!name.contains('/'))
                .then(|| info_timestamp(name).map(str::to_string))
                .flatten()
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Whether a snapshot with an info file exists (committed, or at least claimed).
pub(crate) fn snapshot_committed(store: &dyn RepoStore, snapshot: &str) -> Result<bool> {
    Ok(!timestamps(store, snapshot)?.is_empty())
}

/// Reads and checks one snapshot: info file `timestamp` (or the only one), then `meta.json`
/// against the size and BLAKE3 the info records.
pub(crate) fn load_snapshot(
    store: &dyn RepoStore,
    snapshot: &str,
    timestamp: Option<&str>,
) -> Result<LoadedSnapshot> {
    shale_engine::names::validate("snapshot", snapshot)?;
    let info_err = |reason: String| BackupError::SnapshotInfo {
        snapshot: snapshot.to_string(),
        reason,
    };
    let prefix = snapshot_prefix(snapshot);
    let found = timestamps(store, snapshot)?;
    let timestamp = match timestamp {
        Some(ts) => {
            if !found.iter().any(|f| f == ts) {
                return Err(info_err(format!(
                    "Expected one file with path: {}. get: 0",
                    store
                        .display(&format!("{prefix}{}", info_file_name(ts)))
                        .display()
                )));
            }
            ts.to_string()
        }
        None => match found.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(info_err(format!(
                    "no info file in {}",
                    store.display(&prefix).display()
                )));
            }
            many => {
                return Err(info_err(format!(
                    "the snapshot has {} backup timestamps ({}); specify backup_timestamp",
                    many.len(),
                    many.join(", ")
                )));
            }
        },
    };
    let info_key = format!("{prefix}{}", info_file_name(&timestamp));
    let info_path = store.display(&info_key);
    let info = SnapshotInfo::decode(&info_path, &store.read(&info_key)?)?;
    if info.format_version > FORMAT_VERSION || info.snapshot != snapshot {
        return Err(BackupError::corrupt(
            &info_path,
            format!(
                "info file is for snapshot {:?}, format {}",
                info.snapshot, info.format_version
            ),
        ));
    }
    let meta_key = format!("{prefix}{META_FILE}");
    let meta_path = store.display(&meta_key);
    let bytes = store.read(&meta_key)?;
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

/// SHOW SNAPSHOT: every snapshot folder with its timestamps and status.
pub(crate) fn list_snapshots(store: &dyn RepoStore) -> Result<Vec<SnapshotListing>> {
    let mut out = Vec::new();
    let mut names = store.list_dirs(&format!("{SNAPSHOTS_DIR}/"))?;
    names.sort();
    for name in names {
        if shale_engine::names::validate("snapshot", &name).is_err() {
            continue;
        }
        let timestamps = timestamps(store, &name)?;
        let status = if timestamps.is_empty() {
            "ERROR: no snapshot".to_string()
        } else {
            let mut status = "OK".to_string();
            for ts in &timestamps {
                if let Err(e) = load_snapshot(store, &name, Some(ts)) {
                    status = format!("ERROR: Failed to get info: {e}");
                    break;
                }
            }
            status
        };
        out.push(SnapshotListing {
            snapshot: name,
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

/// Where [`copy_hashed`] writes each chunk.
pub(crate) type Sink<'a> = &'a mut dyn FnMut(&[u8]) -> Result<()>;

/// What [`copy_hashed`] saw: length, CRC-32C and, if asked for, BLAKE3.
#[derive(Debug)]
pub(crate) struct Copied {
    pub len: u64,
    pub crc32c: u32,
    /// Hex; `None` when the copy did not hash (see [`Hashing`]).
    pub blake3: Option<String>,
}

/// Which checksums [`copy_hashed`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hashing {
    /// CRC-32C and BLAKE3: for bytes read from a repository, which may be hostile (RESTORE,
    /// VERIFY): BLAKE3 is what proves a file is the content its name and `meta.json` claim.
    Blake3AndCrc,
    /// CRC-32C only: for the engine's own segments (BACKUP), whose BLAKE3 the engine computed
    /// when it wrote them. Damage at rest (the fault model for the data directory) changes the
    /// CRC-32C with probability 1 - 2^-32 (and always for bursts up to 32 bits), so matching
    /// bytes are the ones the recorded BLAKE3 was computed over; BLAKE3 would cost about ten
    /// times the CPU of the hardware CRC.
    CrcOnly,
}

/// Streams `reader` into `writer` in chunks of `chunk` bytes, checksumming as it goes; calls
/// `check` before every chunk (cancel, deadline) and adds to `progress` after it.
pub(crate) fn copy_hashed(
    reader: &mut dyn Read,
    mut writer: Option<Sink<'_>>,
    source: &Path,
    chunk: usize,
    hashing: Hashing,
    check: &dyn Fn() -> Result<()>,
    progress: &AtomicU64,
) -> Result<Copied> {
    let mut buf = vec![0u8; chunk.max(4096)];
    let mut hasher = (hashing == Hashing::Blake3AndCrc).then(blake3::Hasher::new);
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
        if let Some(h) = hasher.as_mut() {
            h.update(data);
        }
        crc = crc32c::crc32c_append(crc, data);
        len += filled as u64;
        if let Some(w) = writer.as_mut() {
            w(data)?;
        }
        progress.fetch_add(filled as u64, Ordering::Relaxed);
        if filled < buf.len() {
            break;
        }
    }
    Ok(Copied {
        len,
        crc32c: crc,
        blake3: hasher.map(|h| h.finalize().to_hex().to_string()),
    })
}

/// Checks a copied file's size, BLAKE3 (if computed) and CRC-32C against what was recorded.
pub(crate) fn check_copied(path: &Path, copied: &Copied, file: &FileMeta) -> Result<()> {
    if copied.len != file.size {
        return Err(BackupError::corrupt(
            path,
            format!("size is {} bytes, {} recorded", copied.len, file.size),
        ));
    }
    if let Some(hash) = &copied.blake3
        && *hash != file.hash
    {
        return Err(BackupError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: file.hash.clone(),
            actual: hash.clone(),
        });
    }
    if copied.crc32c != file.crc32c {
        return Err(BackupError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: format!("{:08x}", file.crc32c),
            actual: format!("{:08x}", copied.crc32c),
        });
    }
    Ok(())
}

/// DROP SNAPSHOT: info files first (the snapshot stops existing), then the folder, then every
/// data file no remaining `meta.json` references. The caller holds the repository lock.
pub(crate) fn drop_snapshot(store: &dyn RepoStore, snapshot: &str) -> Result<DropReport> {
    shale_engine::names::validate("snapshot", snapshot)?;
    let prefix = snapshot_prefix(snapshot);
    let entries = store.list(&prefix)?;
    if entries.is_empty() {
        return Err(BackupError::SnapshotInfo {
            snapshot: snapshot.to_string(),
            reason: format!("{} does not exist", store.display(&prefix).display()),
        });
    }
    let mut report = DropReport::default();
    let is_info = |key: &str| {
        key.strip_prefix(&prefix)
            .is_some_and(|n| n.starts_with(INFO_PREFIX))
    };
    for e in entries.iter().filter(|e| is_info(&e.key)) {
        store.delete(&e.key)?;
        report.bytes_freed += e.size;
    }
    report.bytes_freed += entries
        .iter()
        .filter(|e| !is_info(&e.key))
        .map(|e| e.size)
        .sum::<u64>();
    store.delete_prefix(&prefix)?;
    let (files, bytes) = sweep(store)?;
    report.files_removed = files;
    report.bytes_freed += bytes;
    Ok(report)
}

/// Removes data files no snapshot's `meta.json` references, and leftover temporary files.
/// If some `meta.json` cannot be read, nothing is removed (its files might still be needed).
pub(crate) fn sweep(store: &dyn RepoStore) -> Result<(u64, u64)> {
    let mut referenced = BTreeSet::new();
    for name in store.list_dirs(&format!("{SNAPSHOTS_DIR}/"))? {
        let meta_key = format!("{}{META_FILE}", snapshot_prefix(&name));
        if store.head(&meta_key)?.is_none() {
            continue;
        }
        let meta_path = store.display(&meta_key);
        let Ok(meta) = decode_json::<SnapshotMeta>(&meta_path, &store.read(&meta_key)?) else {
            return Ok((0, 0));
        };
        referenced.extend(meta.files().map(|f| f.hash.clone()));
    }
    let (mut files, mut bytes) = (0, 0);
    for e in store.list(&format!("{DATA_DIR}/"))? {
        let keep = e
            .key
            .rsplit('/')
            .next()
            .and_then(|n| n.strip_suffix(".parquet"))
            .is_some_and(|h| is_hash(h) && referenced.contains(h) && e.key == data_path(h));
        if !keep {
            store.delete(&e.key)?;
            files += 1;
            bytes += e.size;
        }
    }
    Ok((files, bytes))
}

/// VERIFY: every distinct data file present with the recorded size, BLAKE3 and CRC-32C; `deep`
/// also decodes it as Parquet and counts its rows.
pub(crate) fn verify(store: &Arc<dyn RepoStore>, meta: &SnapshotMeta, deep: bool) -> VerifyReport {
    let mut report = VerifyReport::default();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let never = AtomicU64::new(0);
    for f in meta.files() {
        if !seen.insert(f.hash.clone()) {
            continue;
        }
        report.files_checked += 1;
        let path = store.display(&f.path);
        let mut problem = |p: String| {
            problems.push(VerifyProblem {
                path: f.path.clone(),
                problem: p,
            })
        };
        match store.head(&f.path) {
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
        let copied = store.open_read(&f.path, 0).and_then(|mut r| {
            copy_hashed(
                &mut *r,
                None,
                &path,
                1 << 20,
                Hashing::Blake3AndCrc,
                &|| Ok(()),
                &never,
            )
        });
        match copied.and_then(|c| check_copied(&path, &c, f)) {
            Ok(()) => {}
            Err(e) => {
                problem(e.to_string());
                continue;
            }
        }
        report.bytes_checked += f.size;
        if deep {
            match count_rows(store, &f.path, f.size) {
                Ok(rows) if rows == f.rows => {}
                Ok(rows) => problem(format!("has {rows} rows, {} recorded", f.rows)),
                Err(e) => problem(e.to_string()),
            }
        }
    }
    report.problems = problems;
    report
}

/// Decodes a Parquet object of `len` bytes and counts its rows, reading it by ranges.
pub(crate) fn count_rows(store: &Arc<dyn RepoStore>, key: &str, len: u64) -> Result<u64> {
    let path = store.display(key);
    let bad = |e: &dyn std::fmt::Display| BackupError::corrupt(&path, format!("Parquet: {e}"));
    let chunks = crate::store::StoreChunks {
        store: store.clone(),
        key: key.to_string(),
        len,
    };
    // The embedded Arrow schema is not needed to count rows, and hostile bytes there make
    // arrow-ipc panic (engine/tests/fuzz_regressions.rs): skip it, as the engine's reader does.
    // Any other decoder panic on damaged bytes is a corrupt file, not a crashed job.
    let options =
        parquet::arrow::arrow_reader::ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new_with_options(
                chunks, options,
            )
            .map_err(|e| bad(&e))?
            .build()
            .map_err(|e| bad(&e))?;
        let mut rows = 0u64;
        for batch in reader {
            rows += batch.map_err(|e| bad(&e))?.num_rows() as u64;
        }
        Ok(rows)
    }))
    .unwrap_or_else(|_| Err(bad(&"the Parquet decoder failed")))
}

/// Runs `work` on every item with up to `threads` threads; stops handing out items at the first
/// error and returns it. `work` gets a check that fails once another item failed, to call
/// between chunks.
pub(crate) fn parallel_each<T: Sync>(
    threads: usize,
    items: &[T],
    work: impl Fn(&T, &dyn Fn() -> Result<()>) -> Result<()> + Sync,
) -> Result<()> {
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failed: std::sync::Mutex<Option<BackupError>> = std::sync::Mutex::new(None);
    let stopped = || {
        if stop.load(Ordering::SeqCst) {
            Err(BackupError::Cancelled)
        } else {
            Ok(())
        }
    };
    let run = || {
        while !stop.load(Ordering::Relaxed) {
            let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            if let Err(e) = work(item, &stopped) {
                // The error is recorded before `stop` is raised, so a sibling's "stopped"
                // error never takes its place.
                let mut f = failed.lock().unwrap_or_else(|p| p.into_inner());
                if f.is_none() {
                    *f = Some(e);
                }
                drop(f);
                stop.store(true, Ordering::SeqCst);
                break;
            }
        }
    };
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        run();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(run);
            }
        });
    }
    match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
