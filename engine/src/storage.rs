//! The one small trait all engine file I/O goes through, so tests can inject faults.
//!
//! # Fault model
//! [`FaultyStorage`] wraps the real file system and fails one chosen operation (counted across
//! every mutating call: create, write, sync, rename, link, remove, directory sync, file-system
//! sync, truncate) with ENOSPC, EIO, a short write, an fsync failure or a rename failure. It does
//! not model lost
//! writes of un-fsynced data at a power cut; crash tests kill a child process instead, which
//! leaves exactly what the kernel had accepted.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::error::{Error, Result};

/// A file being written.
pub trait WritableFile: Send + fmt::Debug {
    /// Appends all of `buf`.
    fn write_all(&mut self, buf: &[u8]) -> Result<()>;
    /// Makes everything written durable (fdatasync).
    fn sync(&mut self) -> Result<()>;
    /// The path, for messages.
    fn path(&self) -> &Path;
    /// Starts writing back what was appended since the last call, and waits for the write-back
    /// the previous call started: a long copy then holds at most two calls' worth of dirty
    /// data, instead of queueing all of it at once in front of the device, where every other
    /// writer's fsync waits behind it. A pacing hint, not durability (that is [`Self::sync`] or a
    /// [`FileSystemSync`]); the default does nothing.
    fn pace_writeback(&mut self) -> Result<()> {
        Ok(())
    }
}

/// One barrier for many files: [`FileSystemSync::sync`] makes everything written to one file
/// system durable (file contents, new names, new directories) with one write-back and one device
/// flush, where an fsync per file and per directory pays a flush each. It reports every
/// write-back error on that file system since the handle was opened (Linux 5.8+), so open it
/// before the writes it covers: an error of an early background write-back is not lost.
pub trait FileSystemSync: Send + Sync + fmt::Debug {
    /// Makes everything written to the file system durable.
    fn sync(&self) -> Result<()>;
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// File name (not the full path).
    pub name: String,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Size in bytes (files).
    pub len: u64,
}

/// File-system operations used by the engine and the backup repository.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> Result<()>;
    /// Creates (or truncates) a file for writing.
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>>;
    /// Opens a file for appending, creating it if missing.
    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>>;
    /// Reads a whole (small) file.
    fn read(&self, path: &Path) -> Result<Vec<u8>>;
    /// Maps a file into memory read-only.
    fn map(&self, path: &Path) -> Result<Bytes>;
    /// Opens a file for streaming reads.
    fn open_read(&self, path: &Path) -> Result<Box<dyn Read + Send>>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;
    /// Gives the file `from` the second name `to` only if nothing is named `to` (`link(2)`,
    /// atomic across processes): `Ok(false)` if `to` exists, and nothing changed. `from` keeps
    /// its name. Fails on a file system without hard links.
    fn link_if_absent(&self, from: &Path, to: &Path) -> Result<bool>;
    /// Removes a file; a missing file is not an error.
    fn remove_file(&self, path: &Path) -> Result<()>;
    /// Removes a directory tree; a missing directory is not an error.
    fn remove_dir_all(&self, path: &Path) -> Result<()>;
    /// Makes a directory's entries durable.
    fn sync_dir(&self, path: &Path) -> Result<()>;
    /// Starts a file-system sync on the file system holding the directory `path`: call it
    /// before writing the files it must cover, then [`FileSystemSync::sync`] once after.
    fn open_sync_fs(&self, path: &Path) -> Result<Box<dyn FileSystemSync>>;
    /// Lists a directory; a missing directory lists as empty.
    fn list_dir(&self, path: &Path) -> Result<Vec<DirEntry>>;
    /// The size of a file, or `None` if it does not exist.
    fn file_len(&self, path: &Path) -> Result<Option<u64>>;
    /// Cuts a file to `len` bytes.
    fn truncate(&self, path: &Path, len: u64) -> Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdStorage;

#[derive(Debug)]
struct StdFile {
    file: File,
    path: PathBuf,
    /// Bytes appended through this handle.
    written: u64,
    /// Write-back started for `[0, paced)` by [`WritableFile::pace_writeback`].
    paced: u64,
    /// The range whose write-back the last pacing call started.
    pacing: Option<(u64, u64)>,
}

impl WritableFile for StdFile {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.file
            .write_all(buf)
            .map_err(|e| Error::io("write", &self.path, e))?;
        self.written += buf.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io("fsync", &self.path, e))
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn pace_writeback(&mut self) -> Result<()> {
        let (start, end) = (self.paced, self.written);
        if end == start {
            return Ok(());
        }
        start_writeback(&self.file, start, end - start, false)
            .map_err(|e| Error::io("start write-back", &self.path, e))?;
        if let Some((offset, len)) = self.pacing.replace((start, end - start)) {
            start_writeback(&self.file, offset, len, true)
                .map_err(|e| Error::io("wait for write-back", &self.path, e))?;
        }
        self.paced = end;
        Ok(())
    }
}

/// sync_file_range(2) on `[offset, offset + len)`: start write-back of its dirty pages, and with
/// `wait`, also wait for write-back already under way there. No metadata, no device flush.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64, wait: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = if wait {
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER
    } else {
        libc::SYNC_FILE_RANGE_WRITE
    };
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Ok(());
    };
    // SAFETY: sync_file_range only reads its integer arguments and the descriptor number, which
    // `file` keeps open for the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Pacing is a hint: without sync_file_range(2) a copy just is not paced.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64, _wait: bool) -> io::Result<()> {
    Ok(())
}

impl Storage for StdStorage {
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        fs::create_dir_all(path).map_err(|e| Error::io("create directory", path, e))
    }

    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let file = File::create(path).map_err(|e| Error::io("create", path, e))?;
        Ok(Box::new(StdFile {
            file,
            path: path.to_path_buf(),
            written: 0,
            paced: 0,
            pacing: None,
        }))
    }

    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io("open for append", path, e))?;
        Ok(Box::new(StdFile {
            file,
            path: path.to_path_buf(),
            written: 0,
            paced: 0,
            pacing: None,
        }))
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        fs::read(path).map_err(|e| Error::io("read", path, e))
    }

    fn map(&self, path: &Path) -> Result<Bytes> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        if len == 0 {
            return Ok(Bytes::new());
        }
        // SAFETY: segment files are immutable once written (the engine never writes to a file
        // after its commit and deletes only unreferenced ones), so the mapping is not modified
        // underneath the reader by this process; another process writing into our data
        // directory is outside the fault model.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io("mmap", path, e))?;
        Ok(Bytes::from_owner(map))
    }

    fn open_read(&self, path: &Path) -> Result<Box<dyn Read + Send>> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        Ok(Box::new(file))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        fs::rename(from, to).map_err(|e| Error::io("rename", from, e))
    }

    fn link_if_absent(&self, from: &Path, to: &Path) -> Result<bool> {
        match fs::hard_link(from, to) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::io("link", to, e)),
        }
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
            _ => Ok(()),
        }
    }

    fn remove_dir_all(&self, path: &Path) -> Result<()> {
        match fs::remove_dir_all(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(Error::io("remove directory", path, e))
            }
            _ => Ok(()),
        }
    }

    fn sync_dir(&self, path: &Path) -> Result<()> {
        let dir = File::open(path).map_err(|e| Error::io("open directory", path, e))?;
        dir.sync_all()
            .map_err(|e| Error::io("fsync directory", path, e))
    }

    fn open_sync_fs(&self, path: &Path) -> Result<Box<dyn FileSystemSync>> {
        let dir = File::open(path).map_err(|e| Error::io("open directory", path, e))?;
        Ok(Box::new(StdFileSystemSync {
            dir,
            path: path.to_path_buf(),
        }))
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let entries = match fs::read_dir(path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list directory", path, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list directory", path, e))?;
            let meta = entry
                .metadata()
                .map_err(|e| Error::io("stat", entry.path(), e))?;
            out.push(DirEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                is_dir: meta.is_dir(),
                len: meta.len(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn file_len(&self, path: &Path) -> Result<Option<u64>> {
        match fs::metadata(path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("stat", path, e)),
        }
    }

    fn truncate(&self, path: &Path, len: u64) -> Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        file.set_len(len)
            .map_err(|e| Error::io("truncate", path, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", path, e))
    }
}

/// A [`FileSystemSync`] holding a directory open since the writes began.
#[derive(Debug)]
struct StdFileSystemSync {
    dir: File,
    path: PathBuf,
}

impl FileSystemSync for StdFileSystemSync {
    fn sync(&self) -> Result<()> {
        sync_file_system(&self.dir).map_err(|e| Error::io("sync file system", &self.path, e))
    }
}

/// syncfs(2): writes back every dirty page and inode of `file`'s file system and flushes the
/// device; since Linux 5.8 it returns write-back errors (EIO, ENOSPC) seen on that file system
/// since `file` was opened, so an error lost by an earlier asynchronous write-back is reported.
#[cfg(target_os = "linux")]
fn sync_file_system(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor number, which `file` keeps open for the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// syncfs(2) is Linux's: elsewhere there is no call that makes a file system's writes durable
/// and reports their errors, so BACKUP and RESTORE to a directory fail with this error rather than
/// claim a durability they cannot check.
#[cfg(not(target_os = "linux"))]
fn sync_file_system(_file: &File) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "syncfs(2) is only available on Linux",
    ))
}

/// The kind of fault [`FaultyStorage`] injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// No space left on device.
    NoSpace,
    /// A generic I/O error.
    Eio,
    /// A write stores only half its bytes, then fails.
    ShortWrite,
    /// fsync reports failure.
    SyncFail,
    /// rename fails.
    RenameFail,
}

impl FaultKind {
    fn error(self) -> io::Error {
        match self {
            FaultKind::NoSpace => io::Error::from_raw_os_error(28),
            _ => io::Error::from_raw_os_error(5),
        }
    }
}

/// The file-system operations [`FaultyStorage`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// create_dir_all.
    CreateDir,
    /// create / open_append.
    Create,
    /// One write call.
    Write,
    /// fsync of a file.
    Sync,
    /// rename.
    Rename,
    /// link_if_absent.
    Link,
    /// remove_file / remove_dir_all.
    Remove,
    /// fsync of a directory.
    SyncDir,
    /// sync of a whole file system (syncfs).
    SyncFs,
    /// truncate.
    Truncate,
}

#[derive(Debug, Default)]
struct FaultState {
    /// Fail the operation with this number (0-based), counted from the last `arm`.
    fail_at: Option<(u64, FaultKind)>,
    /// Every operation seen since the last `arm`: kind and path.
    log: Vec<(OpKind, PathBuf)>,
    /// Whether the fault has fired.
    fired: bool,
}

/// A [`Storage`] that fails one chosen operation; see the module docs for the fault model.
#[derive(Debug, Clone, Default)]
pub struct FaultyStorage {
    inner: StdStorage,
    state: Arc<Mutex<FaultState>>,
    count: Arc<AtomicU64>,
}

impl FaultyStorage {
    /// A storage that injects nothing until [`FaultyStorage::arm`].
    pub fn new() -> FaultyStorage {
        FaultyStorage::default()
    }

    /// Fails operation number `n` (0-based, counted from now) with `kind`, and clears the log.
    /// `None` disarms.
    pub fn arm(&self, fail_at: Option<(u64, FaultKind)>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.fail_at = fail_at;
        state.log.clear();
        state.fired = false;
        self.count.store(0, Ordering::SeqCst);
    }

    /// The operations since the last `arm`.
    pub fn log(&self) -> Vec<(OpKind, PathBuf)> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .log
            .clone()
    }

    /// Whether the armed fault fired.
    pub fn fired(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).fired
    }

    /// Counts an operation and says which fault, if any, to inject into it.
    fn step(&self, op: OpKind, path: &Path) -> Option<FaultKind> {
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.log.push((op, path.to_path_buf()));
        match state.fail_at {
            Some((at, kind)) if at == n => {
                state.fired = true;
                Some(kind)
            }
            _ => None,
        }
    }

    fn check(&self, op: OpKind, what: &'static str, path: &Path) -> Result<()> {
        match self.step(op, path) {
            Some(kind) => Err(Error::io(what, path, kind.error())),
            None => Ok(()),
        }
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Box<dyn WritableFile>,
    storage: FaultyStorage,
}

impl WritableFile for FaultyFile {
    fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        match self.storage.step(OpKind::Write, self.inner.path()) {
            Some(FaultKind::ShortWrite) => {
                self.inner.write_all(&buf[..buf.len() / 2])?;
                Err(Error::io(
                    "write",
                    self.inner.path(),
                    io::Error::new(io::ErrorKind::WriteZero, "short write"),
                ))
            }
            Some(kind) => Err(Error::io("write", self.inner.path(), kind.error())),
            None => self.inner.write_all(buf),
        }
    }

    fn sync(&mut self) -> Result<()> {
        self.storage
            .check(OpKind::Sync, "fsync", self.inner.path())?;
        self.inner.sync()
    }

    fn path(&self) -> &Path {
        self.inner.path()
    }

    fn pace_writeback(&mut self) -> Result<()> {
        self.inner.pace_writeback()
    }
}

#[derive(Debug)]
struct FaultyFileSystemSync {
    inner: Box<dyn FileSystemSync>,
    path: PathBuf,
    storage: FaultyStorage,
}

impl FileSystemSync for FaultyFileSystemSync {
    fn sync(&self) -> Result<()> {
        self.storage
            .check(OpKind::SyncFs, "sync file system", &self.path)?;
        self.inner.sync()
    }
}

impl Storage for FaultyStorage {
    fn create_dir_all(&self, path: &Path) -> Result<()> {
        self.check(OpKind::CreateDir, "create directory", path)?;
        self.inner.create_dir_all(path)
    }

    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        self.check(OpKind::Create, "create", path)?;
        Ok(Box::new(FaultyFile {
            inner: self.inner.create(path)?,
            storage: self.clone(),
        }))
    }

    fn open_append(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        self.check(OpKind::Create, "open for append", path)?;
        Ok(Box::new(FaultyFile {
            inner: self.inner.open_append(path)?,
            storage: self.clone(),
        }))
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn map(&self, path: &Path) -> Result<Bytes> {
        self.inner.map(path)
    }

    fn open_read(&self, path: &Path) -> Result<Box<dyn Read + Send>> {
        self.inner.open_read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.check(OpKind::Rename, "rename", from)?;
        self.inner.rename(from, to)
    }

    fn link_if_absent(&self, from: &Path, to: &Path) -> Result<bool> {
        self.check(OpKind::Link, "link", to)?;
        self.inner.link_if_absent(from, to)
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        self.check(OpKind::Remove, "remove", path)?;
        self.inner.remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> Result<()> {
        self.check(OpKind::Remove, "remove directory", path)?;
        self.inner.remove_dir_all(path)
    }

    fn sync_dir(&self, path: &Path) -> Result<()> {
        self.check(OpKind::SyncDir, "fsync directory", path)?;
        self.inner.sync_dir(path)
    }

    fn open_sync_fs(&self, path: &Path) -> Result<Box<dyn FileSystemSync>> {
        Ok(Box::new(FaultyFileSystemSync {
            inner: self.inner.open_sync_fs(path)?,
            path: path.to_path_buf(),
            storage: self.clone(),
        }))
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        self.inner.list_dir(path)
    }

    fn file_len(&self, path: &Path) -> Result<Option<u64>> {
        self.inner.file_len(path)
    }

    fn truncate(&self, path: &Path, len: u64) -> Result<()> {
        self.check(OpKind::Truncate, "truncate", path)?;
        self.inner.truncate(path, len)
    }
}

/// Replaces a small file atomically but not durably: temporary name, rename over `path`, no
/// fsync. Readers and a reopen after the process is killed see the old bytes or the new ones;
/// after a power loss the old ones may come back.
pub fn replace_atomic(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = storage.create(&tmp)?;
    file.write_all(bytes)?;
    drop(file);
    storage.rename(&tmp, path)
}

/// Writes a small file atomically: temporary name, fsync, rename over `path`, fsync the directory.
pub fn write_atomic(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = storage.create(&tmp)?;
    file.write_all(bytes)?;
    file.sync()?;
    drop(file);
    storage.rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        storage.sync_dir(dir)?;
    }
    Ok(())
}
