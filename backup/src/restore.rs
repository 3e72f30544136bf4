//! The RESTORE job: checks at submission (info file, `meta.json` checksum, ON list), then
//! PENDING (conflict rules against the target) → SNAPSHOTING → DOWNLOAD (lock the repository,
//! allocate ids) → DOWNLOADING (stream every file into an engine import, verifying size, BLAKE3
//! and CRC-32C) → COMMIT (re-check the rules, build the catalog change) → COMMITTING (one
//! engine commit) → FINISHED.
//!
//! Invariant: nothing is visible before the one commit; a job that stops earlier drops its
//! import, which deletes every file it wrote (a crash leaves orphans the engine deletes on open).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use shale_engine::manifest::{Op, PartitionDef, RowsetDef, TableDef, TabletDef};
use shale_engine::{SegmentMeta, Snapshot, segment_path};

use crate::error::{BackupError, Result};
use crate::format::*;
use crate::job::{JobKind, JobRecord, JobState};
use crate::repository::{self, LoadedSnapshot, RepositoryDef};
use crate::service::{Inner, JobCtx, TableRef, parse_timeout};

/// A checked RESTORE request: the snapshot pruned to the chosen tables and partitions, with
/// tables already renamed to their aliases.
#[derive(Debug)]
pub(crate) struct RestorePlan {
    db: String,
    snapshot: String,
    repository: RepositoryDef,
    loaded: LoadedSnapshot,
    /// The pruned tables, named as they will be in the target.
    tables: Vec<TableMeta>,
    timeout_secs: u64,
    allow_load: bool,
    replication_num: u32,
    create_time_ms: i64,
    objects: String,
}

impl RestorePlan {
    pub(crate) fn record(&self, id: u64) -> JobRecord {
        let mut r = JobRecord::pending(
            id,
            JobKind::Restore,
            (&self.db, &self.snapshot, &self.repository.name),
            self.loaded.info.backup_timestamp.clone(),
            self.objects.clone(),
            self.create_time_ms,
            self.timeout_secs,
        );
        r.allow_load = self.allow_load;
        r.replication_num = self.replication_num;
        r
    }
}

/// Checks a RESTORE request and reads the snapshot it names.
pub(crate) fn prepare(
    inner: &Inner,
    db: &str,
    snapshot: &str,
    repository: &str,
    tables: Vec<TableRef>,
    properties: BTreeMap<String, String>,
) -> Result<RestorePlan> {
    shale_engine::names::validate("database", db)?;
    shale_engine::names::validate("snapshot", snapshot)?;
    shale_engine::names::validate("repository", repository)?;
    let unknown: Vec<String> = properties
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "backup_timestamp" | "timeout" | "replication_num" | "allow_load"
            )
        })
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(BackupError::UnknownRestoreProperties { keys: unknown });
    }
    let timeout_secs = parse_timeout(properties.get("timeout"))?;
    let allow_load = match properties.get("allow_load") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => return Err(BackupError::InvalidAllowLoad { value: v.clone() }),
    };
    let replication_num = match properties.get("replication_num") {
        None => 3,
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| BackupError::InvalidReplicationNum { value: v.clone() })?,
    };
    let repo = inner.repository(repository)?;
    let loaded = repository::load_snapshot(
        &*inner.store(&repo)?,
        snapshot,
        properties.get("backup_timestamp").map(String::as_str),
    )?;
    let mut chosen = Vec::new();
    if tables.is_empty() {
        chosen = loaded.meta.tables.clone();
    } else {
        let mut seen = BTreeSet::new();
        let mut targets = BTreeSet::new();
        for r in &tables {
            shale_engine::names::validate("table", &r.table)?;
            if !seen.insert(r.table.clone()) {
                return Err(BackupError::DuplicatedTable {
                    table: r.table.clone(),
                });
            }
            let target = r.alias.clone().unwrap_or_else(|| r.table.clone());
            shale_engine::names::validate("table", &target)?;
            if !targets.insert(target.clone()) {
                return Err(BackupError::DuplicatedAlias { alias: target });
            }
            let table = loaded
                .meta
                .tables
                .iter()
                .find(|t| t.name == r.table)
                .ok_or_else(|| BackupError::TableNotInSnapshot {
                    table: r.table.clone(),
                    snapshot: snapshot.into(),
                })?;
            let mut t = table.clone();
            if let Some(wanted) = &r.partitions {
                for p in wanted {
                    if !t.partitions.iter().any(|x| &x.name == p) {
                        return Err(BackupError::PartitionNotInSnapshot {
                            table: r.table.clone(),
                            partition: p.clone(),
                            snapshot: snapshot.into(),
                        });
                    }
                }
                t.partitions.retain(|p| wanted.contains(&p.name));
            }
            // An unpartitioned table's one partition is named like the table: it follows the
            // alias, so the restored table looks like one created under that name.
            if t.partitioning == shale_engine::Partitioning::Unpartitioned {
                for p in &mut t.partitions {
                    if p.name == t.name {
                        p.name = target.clone();
                    }
                }
            }
            t.name = target;
            chosen.push(t);
        }
    }
    let objects = chosen
        .iter()
        .map(|t| {
            let unpartitioned = t.partitions.len() == 1 && t.partitions[0].name == t.name;
            if unpartitioned {
                t.name.clone()
            } else {
                let names: Vec<&str> = t.partitions.iter().map(|p| p.name.as_str()).collect();
                format!("{} PARTITIONS [{}]", t.name, names.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    Ok(RestorePlan {
        db: db.into(),
        snapshot: snapshot.into(),
        repository: repo,
        loaded,
        tables: chosen,
        timeout_secs,
        allow_load,
        replication_num,
        create_time_ms: now_ms(),
        objects,
    })
}

/// StarRocks' conflict rules between the snapshot tables and the target database.
fn check_conflicts(target: &Snapshot, db: &str, tables: &[TableMeta]) -> Result<()> {
    let Some(database) = target.database(db) else {
        return Ok(());
    };
    for t in tables {
        let Some(local) = database.tables.get(&t.name) else {
            continue;
        };
        if let Some(detail) = schema_difference(local, t) {
            return Err(BackupError::SchemaDifferent {
                table: t.name.clone(),
                detail,
            });
        }
        let column = local.partition_column().cloned();
        for p in &t.partitions {
            match local.partition(&p.name) {
                Some(existing) => {
                    let values = existing
                        .bound
                        .to_values(column.as_ref().map(|c| &c.column_type));
                    if values != p.values {
                        return Err(BackupError::PartitionRangeDifferent {
                            table: t.name.clone(),
                            partition: p.name.clone(),
                        });
                    }
                }
                None => {
                    let bound = shale_engine::partition::resolve_bound(
                        &local.partitioning,
                        column.as_ref(),
                        &p.values,
                        std::iter::empty(),
                    )?;
                    if local.partitions.iter().any(|x| x.bound.overlaps(&bound)) {
                        return Err(BackupError::PartitionRangeConflict {
                            table: t.name.clone(),
                            partition: p.name.clone(),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// The first difference between an existing table and a snapshot table, if any.
fn schema_difference(local: &shale_engine::Table, t: &TableMeta) -> Option<String> {
    let columns = local.schema.columns();
    if columns.len() != t.columns.len() {
        return Some(format!(
            "column count is {} in existed table and {} in backup snapshot",
            columns.len(),
            t.columns.len()
        ));
    }
    for (a, b) in columns.iter().zip(&t.columns) {
        if a != b {
            return Some(format!(
                "column: {} in existed table is different from the column in backup snapshot, column: {}",
                describe(a),
                describe(b)
            ));
        }
    }
    if local.partitioning != t.partitioning {
        return Some(format!(
            "partitioning {:?} in existed table, {:?} in backup snapshot",
            local.partitioning, t.partitioning
        ));
    }
    if local.distribution != t.distribution {
        return Some(format!(
            "distribution {:?} in existed table, {:?} in backup snapshot",
            local.distribution, t.distribution
        ));
    }
    None
}

fn describe(c: &shale_engine::Column) -> String {
    format!(
        "{} {}{}{}",
        c.name,
        c.column_type,
        if c.nullable { " NULL" } else { " NOT NULL" },
        if c.is_key { " KEY" } else { "" }
    )
}

/// Runs the job on a worker.
pub(crate) fn run(ctx: &JobCtx, plan: RestorePlan) -> Result<()> {
    ctx.enter(JobState::Pending)?;
    check_conflicts(&ctx.inner.engine.snapshot(), &plan.db, &plan.tables)?;
    ctx.stamp(|r, now| r.meta_prepared_time_ms = Some(now));

    ctx.enter(JobState::Snapshoting)?;
    ctx.stamp(|r, now| r.snapshot_finished_time_ms = Some(now));

    ctx.enter(JobState::Download)?;
    let store = ctx.inner.store(&plan.repository)?;
    // Shared: a DROP SNAPSHOT elsewhere must not remove files under the download.
    let repo_lock = ctx.inner.repository_lock(&plan.repository.name);
    let _guard = ctx.lock_repository(&repo_lock, &*store, false)?;
    // The snapshot may have been dropped or replaced since submission.
    let again = repository::load_snapshot(
        &*store,
        &plan.snapshot,
        Some(&plan.loaded.info.backup_timestamp),
    )?;
    if again.meta != plan.loaded.meta {
        return Err(BackupError::corrupt(
            store.display(&format!(
                "{}{META_FILE}",
                repository::snapshot_prefix(&plan.snapshot)
            )),
            "the snapshot changed while the restore was starting",
        ));
    }
    let files: Vec<&FileMeta> = plan
        .tables
        .iter()
        .flat_map(|t| t.partitions.iter())
        .flat_map(|p| p.tablets.iter())
        .flat_map(|tb| tb.rowsets.iter())
        .flat_map(|r| r.files.iter())
        .collect();
    ctx.job
        .files_total
        .store(files.len() as u64, Ordering::Relaxed);
    ctx.job
        .bytes_total
        .store(files.iter().map(|f| f.size).sum(), Ordering::Relaxed);

    ctx.enter(JobState::Downloading)?;
    let engine = &ctx.inner.engine;
    let target = engine.snapshot();
    let import = engine.begin_import();
    let chunk = ctx.inner.options.chunk_bytes;
    let mut ops = Vec::new();
    // (engine-relative path, repository file): copied below, several at a time.
    let mut copies: Vec<(String, &FileMeta)> = Vec::new();
    let db_exists = target.database(&plan.db).is_some();
    if !db_exists {
        ops.push(Op::CreateDatabase {
            id: engine.allocate_ids(1),
            name: plan.db.clone(),
        });
    }
    for t in &plan.tables {
        let existing = target
            .database(&plan.db)
            .and_then(|d| d.tables.get(&t.name));
        let table_id = match existing {
            Some(local) => local.id,
            None => engine.allocate_ids(1),
        };
        let mut partitions = Vec::new();
        for p in &t.partitions {
            let partition_id = engine.allocate_ids(1);
            let mut tablets = Vec::new();
            for tablet in &p.tablets {
                let tablet_id = engine.allocate_ids(1);
                let mut rowsets = Vec::new();
                for rowset in &tablet.rowsets {
                    let rowset_id = engine.allocate_ids(1);
                    let mut segments = Vec::new();
                    for (n, f) in rowset.files.iter().enumerate() {
                        let relative =
                            segment_path(table_id, partition_id, tablet_id, rowset_id, n);
                        copies.push((relative.clone(), f));
                        segments.push(SegmentMeta {
                            path: relative,
                            row_count: f.rows,
                            size: f.size,
                            crc32c: f.crc32c,
                            hash: f.hash.clone(),
                            stats: f.stats.clone(),
                            parts: f.parts.clone(),
                        });
                    }
                    rowsets.push(RowsetDef {
                        id: rowset_id,
                        segments,
                    });
                }
                tablets.push(TabletDef {
                    id: tablet_id,
                    rowsets,
                });
            }
            partitions.push(PartitionDef {
                id: partition_id,
                name: p.name.clone(),
                values: p.values.clone(),
                version: p.version,
                tablets,
            });
        }
        match existing {
            Some(_) => ops.extend(partitions.into_iter().map(|partition| Op::PutPartition {
                db: plan.db.clone(),
                table: t.name.clone(),
                partition,
            })),
            None => ops.push(Op::CreateTable {
                db: plan.db.clone(),
                table: TableDef {
                    id: table_id,
                    name: t.name.clone(),
                    columns: t.columns.clone(),
                    partitioning: t.partitioning.clone(),
                    distribution: t.distribution.clone(),
                    properties: t.properties.clone(),
                    partitions,
                },
            }),
        }
    }
    let import = std::sync::Mutex::new(import);
    repository::parallel_each(store.parallelism(), &copies, |(relative, f), stopped| {
        let mut out = import
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .create_file(relative)?;
        let source = store.display(&f.path);
        let mut reader = store.open_read(&f.path, 0)?;
        // Paced as a backup's copies are: a few chunks per file in the device queue at a time.
        let mut sink = |d: &[u8]| {
            // Behind the engine's own loads and commits, as a backup's uploads are.
            if !ctx.inner.options.yield_max.is_zero() {
                ctx.inner
                    .engine
                    .foreground()
                    .yield_to(ctx.inner.options.yield_max);
            }
            out.write_all(d)?;
            Ok(out.pace_writeback()?)
        };
        let got = repository::copy_hashed(
            &mut *reader,
            Some(&mut sink),
            &source,
            chunk,
            repository::Hashing::Blake3AndCrc,
            &|| stopped().and_then(|()| ctx.check()),
            &ctx.job.bytes_done,
        )?;
        repository::check_copied(&source, &got, f)?;
        // Not fsynced here: `Import::commit` makes every file durable with one sync before the
        // commit record.
        ctx.job.bytes_written.fetch_add(f.size, Ordering::Relaxed);
        ctx.job.files_done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    })?;
    let import = import.into_inner().unwrap_or_else(|p| p.into_inner());
    ctx.stamp(|r, now| r.transfer_finished_time_ms = Some(now));

    ctx.enter(JobState::Commit)?;
    // DDL may have run since PENDING: the rules are checked again against the state we commit
    // on, and the target's shape must be what the ops were built for.
    let now = engine.snapshot();
    check_conflicts(&now, &plan.db, &plan.tables)?;
    for t in &plan.tables {
        let before = target
            .database(&plan.db)
            .and_then(|d| d.tables.get(&t.name))
            .map(|x| x.id);
        let after = now
            .database(&plan.db)
            .and_then(|d| d.tables.get(&t.name))
            .map(|x| x.id);
        if before != after {
            return Err(BackupError::SchemaDifferent {
                table: t.name.clone(),
                detail: "the table was created or dropped during the restore".into(),
            });
        }
    }
    if now.database(&plan.db).is_some() != db_exists {
        return Err(shale_engine::Error::DatabaseNotFound {
            name: plan.db.clone(),
        }
        .into());
    }

    ctx.enter(JobState::Committing)?;
    ctx.check()?;
    // The commit names the job: if the process stops before `jobs.json` says FINISHED, the next
    // open finds the restore committed and reports it so (not CANCELLED).
    ops.push(Op::PutMeta {
        key: restore_commit_key(&plan.db),
        value: Some(ctx.id().to_string()),
    });
    import.commit(ops)?;
    Ok(())
}

/// The engine catalog record naming the last restore committed into `db`.
pub(crate) fn restore_commit_key(db: &str) -> String {
    format!("restore_commit/{db}")
}
