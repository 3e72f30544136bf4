//! The load-latency probe: small loads, timed, while full backups run back to back (issue 8's
//! "load p99 during a backup"), shared by `compare` and `load_latency`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use shale_backup::Backups;
use shale_engine::Engine;

use crate::anchor_batch;

/// Errors of the bench binaries.
pub type Fallible<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Waits for job `id`; an error unless it FINISHED.
pub fn wait_job(backups: &Backups, id: u64) -> Fallible<()> {
    let state = backups.wait(id, Duration::from_secs(3600));
    match state {
        Some(s) if s.as_str() == "FINISHED" => Ok(()),
        other => Err(format!(
            "job {id} ended {other:?}: {:?}",
            backups.job(id).map(|r| format!("{r:?}"))
        )
        .into()),
    }
}

/// Rows per probe load in the latency measurement: a small, frequent load as an application
/// trickling data in would make.
pub const PROBE_ROWS: usize = 10_000;

/// The 99th percentile (nearest rank) of `v`.
pub fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((v.len() as f64) * 0.99).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The latency of one probe load into `probe.t`, the `i`-th of its window.
fn probe_load(engine: &Engine, i: usize) -> Fallible<f64> {
    let batch = anchor_batch(1_000_000_000 + i * PROBE_ROWS, PROBE_ROWS);
    let t0 = Instant::now();
    engine.load("probe", "t", [batch])?;
    Ok(t0.elapsed().as_secs_f64())
}

/// Latencies of the probe loads into `probe.t` made during `window`, calling `between` before
/// each one (to keep a background job going).
pub fn probe_loads(
    engine: &Engine,
    window: Duration,
    mut between: impl FnMut() -> Fallible<()>,
) -> Fallible<Vec<f64>> {
    let mut lat = Vec::new();
    let start = Instant::now();
    while start.elapsed() < window {
        between()?;
        lat.push(probe_load(engine, lat.len())?);
    }
    Ok(lat)
}

/// Probe loads for `window` idle and for about `window` while full backups of `bench` run back
/// to back, in eight alternating slices of `window / 4` (idle, busy, busy, idle, idle, busy,
/// busy, idle): a drift over the measurement (the probe table growing by a few hundred
/// segments, the disk's own write-back and discards) falls on both sides alike, where one
/// window after the other put all of it on the second. A busy slice starts backups until its
/// time is up and goes on probing until the last one has ended, so every phase of every backup
/// (its final flushes too) is probed, and the idle slices are idle. The repositories are dropped
/// at the end but their directories stay under `work` for the caller to remove when nothing
/// is being measured (see [`BackgroundBackups`] on deletions). Returns the idle and busy
/// latencies, the backups run, and the seconds the busy slices took.
pub fn probe_alternating(
    engine: &Engine,
    backups: &Backups,
    work: PathBuf,
    window: Duration,
) -> Fallible<(Vec<f64>, Vec<f64>, usize, f64)> {
    let slice = window / 4;
    let mut background = BackgroundBackups::new(backups, work);
    let (mut idle, mut busy) = (Vec::new(), Vec::new());
    let mut busy_secs = 0.0;
    for k in 0..8 {
        if !matches!(k % 4, 1 | 2) {
            idle.extend(probe_loads(engine, slice, || Ok(()))?);
            continue;
        }
        let start = Instant::now();
        loop {
            if start.elapsed() < slice {
                background.keep_going()?;
            } else if !background.running() {
                break;
            }
            busy.push(probe_load(engine, busy.len())?);
        }
        background.finish()?;
        busy_secs += start.elapsed().as_secs_f64();
    }
    let started = background.started;
    background.drop_repositories()?;
    Ok((idle, busy, started, busy_secs))
}

/// Full backups of `bench` run back to back, each into a fresh repository (a content-addressed
/// repository that already holds the files would copy nothing and measure nothing). The
/// repositories' files are not removed between backups, nor by this type: this machine's root
/// file system is mounted with `discard`, so deleting a 225 MB repository makes the next journal
/// commit (the next load's fsync, the next backup's flush) issue its discards inline, a cost
/// of the harness's cleanup, not of what is measured.
#[derive(Debug)]
pub struct BackgroundBackups<'a> {
    backups: &'a Backups,
    work: PathBuf,
    running: Option<(u64, String, PathBuf)>,
    done: Vec<(String, PathBuf)>,
    /// Backups started.
    pub started: usize,
}

impl BackgroundBackups<'_> {
    /// Starts the next backup once the previous one has ended.
    pub fn keep_going(&mut self) -> Fallible<()> {
        if let Some((id, _, _)) = &self.running
            && self.backups.job(*id).is_some_and(|j| !j.state.is_final())
        {
            return Ok(());
        }
        self.finish()?;
        let name = format!("p99_{}", self.started);
        let location = self.work.join(&name);
        self.backups.create_repository(
            &name,
            location.to_str().ok_or("path")?,
            false,
            BTreeMap::new(),
        )?;
        let id = self
            .backups
            .backup("bench", &name, &name, Vec::new(), BTreeMap::new())?;
        self.running = Some((id, name, location));
        self.started += 1;
        Ok(())
    }

    /// Whether a backup started by [`Self::keep_going`] has not ended yet.
    pub fn running(&self) -> bool {
        self.running
            .as_ref()
            .is_some_and(|(id, _, _)| self.backups.job(*id).is_some_and(|j| !j.state.is_final()))
    }

    /// Waits for the running backup.
    pub fn finish(&mut self) -> Fallible<()> {
        if let Some((id, name, location)) = self.running.take() {
            wait_job(self.backups, id)?;
            self.done.push((name, location));
        }
        Ok(())
    }

    /// After the window: waits for the running backup and drops every repository (DROP
    /// REPOSITORY leaves the files, under `work`).
    pub fn drop_repositories(&mut self) -> Fallible<()> {
        self.finish()?;
        for (name, _) in self.done.drain(..) {
            self.backups.drop_repository(&name)?;
        }
        Ok(())
    }
}

impl<'a> BackgroundBackups<'a> {
    /// Backups of database `bench` through `backups`, each into a new repository under `work`.
    pub fn new(backups: &'a Backups, work: PathBuf) -> BackgroundBackups<'a> {
        BackgroundBackups {
            backups,
            work,
            running: None,
            done: Vec::new(),
            started: 0,
        }
    }
}
