//! The on-disk repository format (see `docs/design.md, section "Backup"`).
//!
//! ```text
//! <location>/
//!   shale_repository.json                       RepositoryFile
//!   data/<h0h1>/<blake3 hex>.parquet            segment files, content-addressed
//!   snapshots/<snapshot>/meta.json              SnapshotMeta
//!   snapshots/<snapshot>/__info_<ts>.json       SnapshotInfo, written last: commits the snapshot
//! ```
//!
//! Invariants: every path inside a repository is relative; every path read back from a file is
//! validated ([`validate_data_path`]) before it is joined to the location; every decode returns a
//! typed error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shale_engine::{
    Column, ColumnStats, Distribution, PartChecksums, PartitionValues, Partitioning,
};

use crate::error::{BackupError, Result};

/// The format version this crate writes and the highest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The repository marker file.
pub const REPOSITORY_FILE: &str = "shale_repository.json";
/// The folder of data files.
pub const DATA_DIR: &str = "data";
/// The folder of snapshots.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// A snapshot's metadata file.
pub const META_FILE: &str = "meta.json";
/// Prefix of a snapshot's info file.
pub const INFO_PREFIX: &str = "__info_";
/// Suffix of a snapshot's info file.
pub const INFO_SUFFIX: &str = ".json";
/// Format of the backup timestamp in info file names (`yyyy-MM-dd-HH-mm-ss-SSS`).
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%d-%H-%M-%S-%3f";
/// Format of times shown by SHOW statements (`yyyy-MM-dd HH:mm:ss`).
pub const SHOW_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// `shale_repository.json`: marks a directory as a shale repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepositoryFile {
    /// Format version.
    pub format_version: u32,
    /// Name of the repository that created it.
    pub name: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub create_time_ms: i64,
}

/// `meta.json`: everything needed to restore a snapshot, and to read it without shale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Format version.
    pub format_version: u32,
    /// Snapshot name.
    pub snapshot: String,
    /// Database the tables came from.
    pub database: String,
    /// Engine catalog sequence number of the pinned snapshot.
    pub engine_seq: u64,
    /// Tables.
    pub tables: Vec<TableMeta>,
}

/// One table of a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableMeta {
    /// Name.
    pub name: String,
    /// Columns (StarRocks types as SQL text).
    pub columns: Vec<Column>,
    /// Partitioning.
    pub partitioning: Partitioning,
    /// Bucketing.
    pub distribution: Distribution,
    /// Table properties.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// The backed-up partitions.
    pub partitions: Vec<PartitionMeta>,
}

/// One partition of a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Name.
    pub name: String,
    /// Bounds as literal values.
    pub values: PartitionValues,
    /// Visible version at backup time.
    pub version: u64,
    /// Tablets in bucket order (the length is the table's bucket count).
    pub tablets: Vec<TabletMeta>,
}

/// One tablet of a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TabletMeta {
    /// Rowsets in commit order.
    pub rowsets: Vec<RowsetMeta>,
}

/// One rowset of a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowsetMeta {
    /// Its segment files.
    pub files: Vec<FileMeta>,
}

/// One data file referenced by a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Path relative to the repository root, `data/<h0h1>/<hash>.parquet` (or, written before
    /// that layout, `data/<h0h1>/<h2h3>/<hash>.parquet`).
    pub path: String,
    /// BLAKE3 of the file, 64 lowercase hex digits.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
    /// CRC-32C of the file.
    pub crc32c: u32,
    /// Column statistics, in schema order.
    pub stats: Vec<ColumnStats>,
    /// CRC-32C of the file's parts, as the engine's manifest records them (absent when the
    /// engine recorded none); a restore gives them back to the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<PartChecksums>,
}

/// `__info_<timestamp>.json`: the commit marker of a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Format version.
    pub format_version: u32,
    /// Snapshot name.
    pub snapshot: String,
    /// Database.
    pub database: String,
    /// Backup time, milliseconds since the Unix epoch.
    pub backup_time_ms: i64,
    /// Backup timestamp as in the file name.
    pub backup_timestamp: String,
    /// Tables and their partitions.
    pub objects: BTreeMap<String, Vec<String>>,
    /// Data file references (with repeats).
    pub file_count: u64,
    /// Bytes of all referenced data files (with repeats).
    pub data_bytes: u64,
    /// Rows.
    pub row_count: u64,
    /// Size of `meta.json`.
    pub meta_size: u64,
    /// BLAKE3 of `meta.json`, hex.
    pub meta_blake3: String,
    /// BLAKE3 of this file's pretty JSON encoding with this field empty, hex: a flipped byte
    /// anywhere in the info file is caught even when the JSON stays valid.
    #[serde(default)]
    pub checksum: String,
}

impl SnapshotInfo {
    fn body_checksum(&self) -> Result<String> {
        let mut body = self.clone();
        body.checksum = String::new();
        let bytes = serde_json::to_vec_pretty(&body)
            .map_err(|e| BackupError::corrupt(INFO_PREFIX, format!("cannot encode JSON: {e}")))?;
        Ok(blake3::hash(&bytes).to_hex().to_string())
    }

    /// Encodes the info file, filling in `checksum`.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut info = self.clone();
        info.checksum = self.body_checksum()?;
        serde_json::to_vec_pretty(&info)
            .map_err(|e| BackupError::corrupt(INFO_PREFIX, format!("cannot encode JSON: {e}")))
    }

    /// Decodes an info file and checks its `checksum`.
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<SnapshotInfo> {
        let info: SnapshotInfo = decode_json(path, bytes)?;
        let actual = info.body_checksum()?;
        if actual != info.checksum {
            return Err(BackupError::ChecksumMismatch {
                path: path.to_path_buf(),
                expected: info.checksum.clone(),
                actual,
            });
        }
        Ok(info)
    }
}

impl SnapshotMeta {
    /// Every file reference, in table / partition / tablet / rowset order.
    pub fn files(&self) -> impl Iterator<Item = &FileMeta> {
        self.tables.iter().flat_map(|t| {
            t.partitions.iter().flat_map(|p| {
                p.tablets
                    .iter()
                    .flat_map(|tb| tb.rowsets.iter().flat_map(|r| r.files.iter()))
            })
        })
    }

    /// Checks what the engine and the file system rely on: names, hashes, paths, tablet counts.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |reason: String| BackupError::corrupt(path, reason);
        if self.format_version > FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} is newer than {FORMAT_VERSION}",
                self.format_version
            )));
        }
        shale_engine::names::validate("database", &self.database)?;
        for t in &self.tables {
            shale_engine::names::validate("table", &t.name)?;
            for p in &t.partitions {
                shale_engine::names::validate("partition", &p.name)?;
                // The engine requires one tablet per bucket; a mismatch would fail at commit.
                if p.tablets.len() != t.distribution.buckets as usize {
                    return Err(bad(format!(
                        "partition {} of table {} has {} tablets, the table has {} buckets",
                        p.name,
                        t.name,
                        p.tablets.len(),
                        t.distribution.buckets
                    )));
                }
            }
        }
        for f in self.files() {
            validate_data_path(&f.path, &f.hash).map_err(bad)?;
        }
        Ok(())
    }
}

/// Whether `hash` is 64 lowercase hex digits (a BLAKE3 digest).
pub fn is_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The relative path of a data file with content hash `hash`: one level of 256 folders. (A
/// second level, as the first repositories had, doubled the directories a backup creates, and
/// creating them was a third of a full backup's time on ext4.)
pub fn data_path(hash: &str) -> String {
    // Callers pass a checked hash; slicing by bytes is safe because it is ASCII hex.
    let a = hash.get(0..2).unwrap_or("00");
    format!("{DATA_DIR}/{a}/{hash}.parquet")
}

/// The two-level path repositories written before [`data_path`]'s layout use; their snapshots
/// stay restorable, verifiable and deletable.
pub fn legacy_data_path(hash: &str) -> String {
    let (a, b) = (
        hash.get(0..2).unwrap_or("00"),
        hash.get(2..4).unwrap_or("00"),
    );
    format!("{DATA_DIR}/{a}/{b}/{hash}.parquet")
}

/// Checks that a path read from `meta.json` is exactly the data path of its hash: relative, no
/// `..`, hex only. Anything else could make a restore read outside the repository.
pub fn validate_data_path(path: &str, hash: &str) -> std::result::Result<(), String> {
    if !is_hash(hash) {
        return Err(format!("invalid file hash {hash:?}"));
    }
    if path != data_path(hash) && path != legacy_data_path(hash) {
        return Err(format!("invalid file path {path:?} for hash {hash}"));
    }
    Ok(())
}

/// The info file name of a timestamp.
pub fn info_file_name(timestamp: &str) -> String {
    format!("{INFO_PREFIX}{timestamp}{INFO_SUFFIX}")
}

/// The timestamp of an info file name, if it is one.
pub fn info_timestamp(file_name: &str) -> Option<&str> {
    let ts = file_name
        .strip_prefix(INFO_PREFIX)?
        .strip_suffix(INFO_SUFFIX)?;
    // yyyy-MM-dd-HH-mm-ss-SSS: 23 characters of digits and dashes.
    (ts.len() == 23 && ts.bytes().all(|b| b.is_ascii_digit() || b == b'-')).then_some(ts)
}

/// Formats epoch milliseconds as a backup timestamp.
pub fn format_timestamp(ms: i64) -> String {
    local_time(ms)
        .map(|t| t.format(TIMESTAMP_FORMAT).to_string())
        .unwrap_or_else(|| "1970-01-01-00-00-00-000".into())
}

/// Formats epoch milliseconds as SHOW shows times.
pub fn format_show_time(ms: i64) -> String {
    local_time(ms)
        .map(|t| t.format(SHOW_TIME_FORMAT).to_string())
        .unwrap_or_default()
}

fn local_time(ms: i64) -> Option<chrono::DateTime<chrono::Local>> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(&chrono::Local))
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The directory of a snapshot.
pub fn snapshot_dir(root: &Path, snapshot: &str) -> PathBuf {
    root.join(SNAPSHOTS_DIR).join(snapshot)
}

/// Decodes JSON from repository bytes, with the file in the error.
pub fn decode_json<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| BackupError::corrupt(path, format!("invalid JSON: {e}")))
}

/// Encodes JSON for the repository.
pub fn encode_json<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value)
        .map_err(|e| BackupError::corrupt(path, format!("cannot encode JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_paths_are_checked() {
        let h = "ab".repeat(32);
        assert!(validate_data_path(&data_path(&h), &h).is_ok());
        assert!(validate_data_path(&legacy_data_path(&h), &h).is_ok());
        assert_eq!(data_path(&h), format!("data/{}/{h}.parquet", &h[..2]));
        assert!(validate_data_path(&format!("data/{h}.parquet"), &h).is_err());
        assert!(validate_data_path("../x", &h).is_err());
        assert!(validate_data_path(&data_path(&h), "../../etc").is_err());
        assert!(validate_data_path(&format!("/{}", data_path(&h)), &h).is_err());
    }

    #[test]
    fn info_names_round_trip() {
        let ts = format_timestamp(1_700_000_000_123);
        assert_eq!(info_timestamp(&info_file_name(&ts)), Some(ts.as_str()));
        assert_eq!(info_timestamp("__info_x.json"), None);
        assert_eq!(
            info_timestamp("__info_2024-01-01-00-00-00-000.json.tmp"),
            None
        );
    }

    #[test]
    fn decoding_garbage_is_an_error() {
        let r: Result<SnapshotMeta> = decode_json(Path::new("m"), b"\xff{not json");
        assert!(matches!(r, Err(BackupError::Corrupt { .. })));
    }
}
