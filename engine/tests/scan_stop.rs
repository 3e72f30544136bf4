//! A scan dropped before its end (what a SQL `LIMIT` does) stops reading: its workers open no
//! further segment, and the drop waits for them.

mod common;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::*;
use shale_engine::*;

/// The real file system, counting the segment files mapped for reading.
#[derive(Debug, Default)]
struct CountingStorage {
    inner: StdStorage,
    segment_maps: AtomicUsize,
}

impl Storage for CountingStorage {
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        self.inner.create_dir_all(path)
    }
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        self.inner.create(path)
    }
    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        self.inner.open_append(path)
    }
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn map(&self, path: &Path) -> Result<Bytes> {
        if path.extension().is_some_and(|e| e == "parquet") {
            self.segment_maps.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.map(path)
    }
    fn open_read(&self, path: &Path) -> Result<Box<dyn Read + Send>> {
        self.inner.open_read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }
    fn link_if_absent(&self, from: &Path, to: &Path) -> Result<bool> {
        self.inner.link_if_absent(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> Result<()> {
        self.inner.remove_dir_all(path)
    }
    fn sync_dir(&self, path: &Path) -> Result<()> {
        self.inner.sync_dir(path)
    }
    fn open_sync_fs(&self, path: &Path) -> Result<Box<dyn shale_engine::FileSystemSync>> {
        self.inner.open_sync_fs(path)
    }
    fn list_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        self.inner.list_dir(path)
    }
    fn file_len(&self, path: &Path) -> Result<Option<u64>> {
        self.inner.file_len(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> Result<()> {
        self.inner.truncate(path, len)
    }
}

#[test]
fn dropping_a_scan_stops_its_workers() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(CountingStorage::default());
    let engine = Engine::open_with(
        dir.path(),
        EngineOptions {
            storage: storage.clone(),
            threads: 1,
            ..EngineOptions::default()
        },
    )
    .unwrap();
    engine.create_database("d").unwrap();
    engine.create_table("d", sales_definition("t")).unwrap();
    // 30 loads of 12 rows: one segment per load in most of the 12 tablets, hundreds in all.
    for i in 0..30 {
        let batch = sales_batch(&engine, "d", "t", i * 12..(i + 1) * 12);
        engine.load("d", "t", [batch]).unwrap();
    }
    let snapshot = engine.snapshot();
    let table = snapshot.get_table("d", "t").unwrap();
    let segments: usize = table.partitions.iter().map(|p| p.segments().count()).sum();
    assert!(segments >= 100, "{segments} segments");

    let before = storage.segment_maps.load(Ordering::SeqCst);
    let mut scan = engine
        .scan(&snapshot, "d", "t", ScanOptions::default())
        .unwrap();
    let first = scan.next().expect("a batch").unwrap();
    assert!(first.num_rows() > 0);
    drop(scan);
    let opened = storage.segment_maps.load(Ordering::SeqCst) - before;
    // One worker, a channel of two batches: a handful of segments at most, not all of them.
    assert!(
        opened <= 8,
        "{opened} of {segments} segments opened after the scan was dropped"
    );

    // A scan read to its end still opens every segment.
    let before = storage.segment_maps.load(Ordering::SeqCst);
    let rows: usize = engine
        .scan(&snapshot, "d", "t", ScanOptions::default())
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(rows, 360);
    assert!(storage.segment_maps.load(Ordering::SeqCst) - before >= segments);
}
