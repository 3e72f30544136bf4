//! The BACKUP job: checks at submission, then PENDING → SNAPSHOTING (pin one engine snapshot)
//! → UPLOAD_SNAPSHOT (lock the repository, clear a partial folder) → UPLOADING (copy data files
//! not yet in the repository, several at a time, checking size and CRC-32C; `meta.json` and the
//! info file are staged alongside, invisible) → SAVE_META (one sync makes the copies durable,
//! then `meta.json` is created only if absent: claims the name) → UPLOAD_INFO (the info file,
//! created only if absent, which commits the snapshot) → FINISHED. The same on a directory and
//! on S3.
//!
//! Invariant: if the job does not finish, the folder it claimed is removed (info file first), so
//! nothing is listed OK and the name can be reused. Data files it added stay until a sweep;
//! they are complete, hash-checked files, harmless to later backups.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use shale_engine::Table;

use crate::error::{BackupError, Result};
use crate::format::*;
use crate::job::{JobKind, JobRecord, JobState};
use crate::repository::{self, RepositoryDef};
use crate::service::{Inner, JobCtx, parse_timeout, timestamp_of};
use crate::store::RepoStore;

/// A checked BACKUP request.
#[derive(Debug)]
pub(crate) struct BackupPlan {
    db: String,
    snapshot: String,
    repository: RepositoryDef,
    /// Empty = the whole database.
    tables: Vec<(String, Option<Vec<String>>)>,
    timeout_secs: u64,
    create_time_ms: i64,
    objects: String,
}

impl BackupPlan {
    pub(crate) fn record(&self, id: u64) -> JobRecord {
        JobRecord::pending(
            id,
            JobKind::Backup,
            (&self.db, &self.snapshot, &self.repository.name),
            timestamp_of(self.create_time_ms),
            self.objects.clone(),
            self.create_time_ms,
            self.timeout_secs,
        )
    }
}

/// Checks a BACKUP request against StarRocks' rules.
pub(crate) fn prepare(
    inner: &Inner,
    db: &str,
    snapshot: &str,
    repository: &str,
    tables: Vec<(String, Option<Vec<String>>)>,
    properties: BTreeMap<String, String>,
) -> Result<BackupPlan> {
    shale_engine::names::validate("snapshot", snapshot)?;
    shale_engine::names::validate("repository", repository)?;
    shale_engine::names::validate("database", db)?;
    let unknown: Vec<String> = properties
        .keys()
        .filter(|k| !matches!(k.as_str(), "type" | "timeout"))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(BackupError::UnknownBackupProperties { keys: unknown });
    }
    let incremental = match properties.get("type") {
        None => false,
        Some(t) if t.eq_ignore_ascii_case("FULL") => false,
        Some(t) if t.eq_ignore_ascii_case("INCREMENTAL") => true,
        Some(t) => return Err(BackupError::InvalidBackupType { value: t.clone() }),
    };
    let timeout_secs = parse_timeout(properties.get("timeout"))?;
    let repo = inner.repository(repository)?;
    if repo.read_only {
        return Err(BackupError::RepositoryReadOnly {
            name: repository.into(),
        });
    }
    let engine_snapshot = inner.engine.snapshot();
    let database = engine_snapshot
        .database(db)
        .ok_or_else(|| shale_engine::Error::DatabaseNotFound { name: db.into() })?;
    let mut seen = BTreeSet::new();
    for (t, partitions) in &tables {
        let table = database
            .tables
            .get(t)
            .ok_or_else(|| shale_engine::Error::TableNotFound {
                db: db.into(),
                table: t.clone(),
            })?;
        if !seen.insert(t.clone()) {
            return Err(BackupError::DuplicatedTable { table: t.clone() });
        }
        for p in partitions.iter().flatten() {
            if table.partition(p).is_none() {
                return Err(BackupError::PartitionNotFound {
                    table: t.clone(),
                    partition: p.clone(),
                });
            }
        }
    }
    let store = inner.store(&repo)?;
    if repository::snapshot_committed(&*store, snapshot)?
        || inner.backup_running(repository, snapshot)
    {
        if incremental {
            return Err(BackupError::IncrementalUnsupported);
        }
        return Err(BackupError::SnapshotExists {
            name: snapshot.into(),
        });
    }
    let names: Vec<(String, Option<Vec<String>>)> = if tables.is_empty() {
        database.tables.keys().map(|t| (t.clone(), None)).collect()
    } else {
        tables.clone()
    };
    let objects = names
        .iter()
        .map(|(t, p)| match p {
            Some(p) => format!("[{db}.{t} PARTITION ({})]", p.join(", ")),
            None => format!("[{db}.{t}]"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    Ok(BackupPlan {
        db: db.into(),
        snapshot: snapshot.into(),
        repository: repo,
        tables,
        timeout_secs,
        create_time_ms: now_ms(),
        objects,
    })
}

/// A data file to put into the repository.
struct Upload {
    source: PathBuf,
    file: FileMeta,
}

/// Runs the job on a worker.
pub(crate) fn run(ctx: &JobCtx, plan: BackupPlan) -> Result<()> {
    ctx.enter(JobState::Pending)?;
    ctx.enter(JobState::Snapshoting)?;
    // One engine snapshot for every table: one point in time. Holding it keeps its files alive.
    let pinned = ctx.inner.engine.snapshot();
    let database =
        pinned
            .database(&plan.db)
            .ok_or_else(|| shale_engine::Error::DatabaseNotFound {
                name: plan.db.clone(),
            })?;
    let selected: Vec<(&Table, Option<&Vec<String>>)> =
        if plan.tables.is_empty() {
            database.tables.values().map(|t| (&**t, None)).collect()
        } else {
            let mut out = Vec::new();
            for (name, partitions) in &plan.tables {
                let t = database.tables.get(name).ok_or_else(|| {
                    shale_engine::Error::TableNotFound {
                        db: plan.db.clone(),
                        table: name.clone(),
                    }
                })?;
                out.push((&**t, partitions.as_ref()));
            }
            out
        };
    let mut uploads: BTreeMap<String, Upload> = BTreeMap::new();
    let mut tables = Vec::new();
    let mut objects = BTreeMap::new();
    let (mut file_count, mut data_bytes, mut row_count) = (0u64, 0u64, 0u64);
    for (table, partitions) in selected {
        let def = shale_engine::manifest::table_to_def(table);
        let mut parts = Vec::new();
        for p in &def.partitions {
            if let Some(wanted) = partitions
                && !wanted.contains(&p.name)
            {
                continue;
            }
            parts.push(p);
        }
        if let Some(wanted) = partitions
            && let Some(missing) = wanted.iter().find(|w| !parts.iter().any(|p| &p.name == *w))
        {
            return Err(BackupError::PartitionNotFound {
                table: table.name.clone(),
                partition: missing.clone(),
            });
        }
        let mut partition_metas = Vec::new();
        for p in parts {
            let mut tablets = Vec::new();
            for tablet in &p.tablets {
                let mut rowsets = Vec::new();
                for rowset in &tablet.rowsets {
                    let mut files = Vec::new();
                    for s in &rowset.segments {
                        if !is_hash(&s.hash) {
                            return Err(BackupError::corrupt(
                                ctx.inner.engine.data_dir().join(&s.path),
                                format!("invalid content hash {:?} in the manifest", s.hash),
                            ));
                        }
                        let file = FileMeta {
                            path: data_path(&s.hash),
                            hash: s.hash.clone(),
                            size: s.size,
                            rows: s.row_count,
                            crc32c: s.crc32c,
                            stats: s.stats.clone(),
                            parts: s.parts.clone(),
                        };
                        file_count += 1;
                        data_bytes += s.size;
                        row_count += s.row_count;
                        uploads.entry(s.hash.clone()).or_insert_with(|| Upload {
                            source: ctx.inner.engine.data_dir().join(&s.path),
                            file: file.clone(),
                        });
                        files.push(file);
                    }
                    rowsets.push(RowsetMeta { files });
                }
                tablets.push(TabletMeta { rowsets });
            }
            partition_metas.push(PartitionMeta {
                name: p.name.clone(),
                values: p.values.clone(),
                version: p.version,
                tablets,
            });
        }
        objects.insert(
            table.name.clone(),
            partition_metas.iter().map(|p| p.name.clone()).collect(),
        );
        tables.push(TableMeta {
            name: def.name,
            columns: def.columns,
            partitioning: def.partitioning,
            distribution: def.distribution,
            properties: def.properties,
            partitions: partition_metas,
        });
    }
    let meta = SnapshotMeta {
        format_version: FORMAT_VERSION,
        snapshot: plan.snapshot.clone(),
        database: plan.db.clone(),
        engine_seq: pinned.seq,
        tables,
    };
    ctx.job
        .files_total
        .store(uploads.len() as u64, Ordering::Relaxed);
    ctx.job.bytes_total.store(
        uploads.values().map(|u| u.file.size).sum(),
        Ordering::Relaxed,
    );
    ctx.stamp(|r, now| r.snapshot_finished_time_ms = Some(now));

    ctx.enter(JobState::UploadSnapshot)?;
    let store = ctx.inner.store(&plan.repository)?;
    // Held from the leftover check to the commit: no other writer, in this process or another,
    // can remove this job's claim as a leftover, nor sweep a data file it found present.
    let repo_lock = ctx.inner.repository_lock(&plan.repository.name);
    let _guard = ctx.lock_repository(&repo_lock, &*store, true)?;
    if repository::snapshot_committed(&*store, &plan.snapshot)? {
        return Err(BackupError::SnapshotExists {
            name: plan.snapshot.clone(),
        });
    }
    let timestamp = timestamp_of(plan.create_time_ms);
    let prefix = repository::snapshot_prefix(&plan.snapshot);
    let mut claimed = false;
    let result = upload(
        ctx,
        &plan,
        &store,
        &uploads,
        &meta,
        objects,
        &timestamp,
        (file_count, data_bytes, row_count),
        &mut claimed,
    );
    if result.is_err() && claimed {
        // Info object first: from here on the snapshot cannot be listed OK. Only a job that
        // claimed the name (created meta.json) removes the folder: another writer's is not ours.
        let _ = store.delete(&format!("{prefix}{}", info_file_name(&timestamp)));
        let _ = store.delete_prefix(&prefix);
    }
    result
}

/// Copies one data file into the repository unless an object of its content is there already.
fn upload_one(
    ctx: &JobCtx,
    store: &dyn RepoStore,
    writes: &dyn crate::store::WriteGroup,
    u: &Upload,
    stopped: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let key = &u.file.path;
    if store.head(key)? == Some(u.file.size) {
        // Already in the repository (an earlier snapshot has it): reference only.
        ctx.job.bytes_done.fetch_add(u.file.size, Ordering::Relaxed);
        ctx.job.files_done.fetch_add(1, Ordering::Relaxed);
        return ctx.check();
    }
    let check = || stopped().and_then(|()| ctx.check());
    let mut out = writes.create(key)?;
    let copied = (|| -> Result<()> {
        let mut reader = ctx.inner.engine.storage().open_read(&u.source)?;
        let mut sink = |d: &[u8]| out.write_all(d, &check);
        let got = repository::copy_hashed(
            &mut *reader,
            Some(&mut sink),
            &u.source,
            ctx.inner.options.chunk_bytes,
            repository::Hashing::CrcOnly,
            &check,
            &ctx.job.bytes_done,
        )?;
        // The local file must be what the manifest says (size, CRC-32C): a corrupt segment
        // stops here, and the BLAKE3 the engine recorded is the content address.
        repository::check_copied(&u.source, &got, &u.file)
    })();
    match copied {
        Ok(()) => out.finish(&check)?,
        Err(e) => {
            // Nothing becomes visible; a multipart upload is aborted.
            out.abort();
            return Err(e);
        }
    }
    ctx.job
        .bytes_written
        .fetch_add(u.file.size, Ordering::Relaxed);
    ctx.job.files_done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn upload(
    ctx: &JobCtx,
    plan: &BackupPlan,
    store: &Arc<dyn RepoStore>,
    uploads: &BTreeMap<String, Upload>,
    meta: &SnapshotMeta,
    objects: BTreeMap<String, Vec<String>>,
    timestamp: &str,
    (file_count, data_bytes, row_count): (u64, u64, u64),
    claimed: &mut bool,
) -> Result<()> {
    let prefix = repository::snapshot_prefix(&plan.snapshot);
    let exists = |e: BackupError| match e {
        BackupError::ObjectExists { .. } => BackupError::SnapshotExists {
            name: plan.snapshot.clone(),
        },
        e => e,
    };
    // A folder without an info file is a failed or interrupted backup's leftover, unless (on
    // S3, which has no lock) another writer has just claimed the name and is committing.
    store.remove_leftover(&prefix).map_err(exists)?;

    ctx.enter(JobState::Uploading)?;
    // Opened before the first upload, so its sync reports every write-back error since.
    let writes = store.begin_writes()?;
    // The two small objects are known before any data file is copied: they are encoded and
    // staged (written to temporary names, invisible) by one more thread alongside the copies.
    // Staging is a folder's and two files' creation, latency more than work, and with the
    // encoding it was most of SAVE_META. meta.json claims the snapshot name: created only if
    // absent, against another writer (at the sync below); the info file commits.
    let stage_objects = || -> Result<()> {
        let meta_key = format!("{prefix}{META_FILE}");
        let meta_bytes = encode_json(&store.display(&meta_key), meta)?;
        let info = SnapshotInfo {
            format_version: FORMAT_VERSION,
            snapshot: plan.snapshot.clone(),
            database: plan.db.clone(),
            backup_time_ms: plan.create_time_ms,
            backup_timestamp: timestamp.to_string(),
            objects,
            file_count,
            data_bytes,
            row_count,
            meta_size: meta_bytes.len() as u64,
            meta_blake3: blake3::hash(&meta_bytes).to_hex().to_string(),
            checksum: String::new(),
        };
        writes.create_once(&meta_key, &meta_bytes)?;
        writes.prepare_commit(
            &format!("{prefix}{}", info_file_name(timestamp)),
            &info.encode()?,
        )
    };
    let stage_failed = std::sync::atomic::AtomicBool::new(false);
    let stage = || -> Result<()> {
        let staged = stage_objects();
        if staged.is_err() {
            stage_failed.store(true, Ordering::Relaxed);
        }
        staged
    };
    let list: Vec<&Upload> = uploads.values().collect();
    let copy = || {
        repository::parallel_each(store.parallelism(), &list, |u, stopped| {
            // A failed staging stops the copy: the backup cannot commit.
            let stopped = || {
                if stage_failed.load(Ordering::Relaxed) {
                    return Err(BackupError::Cancelled);
                }
                stopped()
            };
            stopped()?;
            upload_one(ctx, &**store, &*writes, u, &stopped)
        })
    };
    if store.parallelism() > 1 {
        let (staged, copied) = std::thread::scope(|s| {
            let staging = s.spawn(stage);
            let copied = copy();
            (staging.join(), copied)
        });
        // The staging's error first: the copy may have stopped because of it.
        staged.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        copied?;
    } else {
        // With one file in flight the steps keep one order: the same storage operations, in
        // the same sequence, from run to run.
        stage()?;
        copy()?;
    }
    ctx.stamp(|r, now| r.transfer_finished_time_ms = Some(now));

    ctx.enter(JobState::SaveMeta)?;
    // Every file meta.json names is durable before meta.json is: those copied now, and those
    // found present, which an earlier job may have renamed into place without reaching its
    // own sync. Then the claim.
    writes.sync().map_err(exists)?;
    *claimed = true;

    ctx.enter(JobState::UploadInfo)?;
    // The commit: created last, and only if absent.
    writes.commit().map_err(exists)
}
