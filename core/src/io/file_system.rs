//! The file operations the state files need ([`crate::state_store::FileState`]), behind a
//! trait: the same code runs on the operating system's files ([`OsFs`]) and, in the host
//! simulation, on a simulated disk that models what a power loss keeps (bytes survive once
//! synced; a new name or a rename once its folder is synced) and a second process that must be
//! refused the lock.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::io::state_lock;

/// A file system as the state files use it.
pub trait FileSystem: Send + 'static {
    /// A file open for writing.
    type File: FsFile;
    /// A held advisory lock, released when dropped.
    type Lock: FsLock;

    /// Creates `dir` and its missing parents.
    ///
    /// # Errors
    /// As the file system reports them.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// The whole content of `path` (`ErrorKind::NotFound` when there is none).
    ///
    /// # Errors
    /// As the file system reports them.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Opens `path` for writing, creating it when missing and keeping what it holds.
    ///
    /// # Errors
    /// As the file system reports them.
    fn open(&self, path: &Path) -> io::Result<Self::File>;

    /// Creates `path` empty (emptying it when it exists) and opens it for writing.
    ///
    /// # Errors
    /// As the file system reports them.
    fn create(&self, path: &Path) -> io::Result<Self::File>;

    /// Renames `from` to `to`, replacing `to`.
    ///
    /// # Errors
    /// As the file system reports them.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes `path`.
    ///
    /// # Errors
    /// As the file system reports them.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Makes the names in `dir` (files created, renamed, removed) survive a power loss, as far
    /// as the platform can: best effort.
    fn sync_dir(&self, dir: &Path);

    /// Takes the advisory lock on `path` (created when missing). When another holder has it:
    /// waits with `wait`, else returns `Ok(Err(holder))`, what the holder wrote into it.
    ///
    /// # Errors
    /// As the file system reports them.
    fn lock(&self, path: &Path, wait: bool) -> io::Result<Result<Self::Lock, String>>;
}

/// A file open for writing.
pub trait FsFile: Send {
    /// Writes `bytes` at `offset`.
    ///
    /// # Errors
    /// As the file system reports them.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;

    /// Cuts or extends the file to `len` bytes.
    ///
    /// # Errors
    /// As the file system reports them.
    fn set_len(&mut self, len: u64) -> io::Result<()>;

    /// Makes the content (and length) survive a power loss.
    ///
    /// # Errors
    /// As the file system reports them.
    fn sync(&mut self) -> io::Result<()>;
}

/// A held lock.
pub trait FsLock: Send {
    /// Notes who holds it, for the message another opener gets.
    fn set_holder(&mut self, holder: &str);
}

/// The operating system's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsFs;

impl FsFile for File {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.seek(SeekFrom::Start(offset))?;
        self.write_all(bytes)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }
}

/// The state's lock held ([`crate::io::state_lock`]'s protocol): the lock file this process
/// created, with the OS's advisory lock on it too; removed (if it still names this holder) when
/// dropped.
#[derive(Debug)]
pub struct OsLock {
    /// `None` only while it is dropped.
    file: Option<File>,
    path: PathBuf,
    /// What the file says now.
    text: String,
}

impl OsLock {
    fn write(&mut self, text: String) {
        if let Some(file) = &mut self.file {
            let _ = file.set_len(0);
            let _ = file.seek(SeekFrom::Start(0));
            let _ = file.write_all(text.as_bytes());
            let _ = file.sync_all();
        }
        self.text = text;
    }
}

impl FsLock for OsLock {
    fn set_holder(&mut self, holder: &str) {
        self.write(native_holder(Some(holder)));
    }
}

impl Drop for OsLock {
    fn drop(&mut self) {
        held().remove(&self.path);
        let Some(mut file) = self.file.take() else {
            return;
        };
        // Read through the held handle (on Windows the OS lock keeps other handles out).
        let mut now = String::new();
        let read = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| io::Read::read_to_string(&mut file, &mut now));
        if read.is_err() || now.trim() != self.text.trim() {
            return;
        }
        // On Unix the name goes while the OS lock is held, so that no taker sees it free first;
        // Windows cannot remove a file while a handle holds it locked.
        #[cfg(unix)]
        let _ = fs::remove_file(&self.path);
        drop(file);
        #[cfg(not(unix))]
        let _ = fs::remove_file(&self.path);
    }
}

/// The lock files this process holds: another vault of the process is refused as any holder.
fn held() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    static HELD: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

/// This host's name, as the npm package's lock files name it (Node's `os.hostname()`).
fn host_name() -> String {
    #[cfg(target_os = "linux")]
    if let Ok(name) = fs::read_to_string("/proc/sys/kernel/hostname") {
        return name.trim().to_owned();
    }
    "unknown".into()
}

/// Whether process `pid` of this host runs; `true` where that cannot be told (then a lock it
/// left is never taken for stale by its process id).
fn process_runs(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    return Path::new("/proc").join(pid.to_string()).exists();
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        true
    }
}

/// The marker of a holder that takes the OS's lock too: once that lock can be taken, it is gone.
const OS_LOCK: &str = "os lock";

fn native_holder(what: Option<&str>) -> String {
    // With the nanoseconds: two holders of one process are never named alike, so a taker that
    // found the first one stale never removes the second.
    let now = std::time::SystemTime::now();
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let since = format!("{} (+{nanos} ns)", httpdate::fmt_http_date(now));
    let what = match what {
        Some(what) => format!("{OS_LOCK}, {what}"),
        None => OS_LOCK.to_owned(),
    };
    state_lock::holder_text(std::process::id(), &host_name(), &since, Some(&what))
}

/// Whether the lock file at `path`, whose text is `text` and age `age_ms`, is stale.
fn lock_is_stale(path: &Path, text: &str, age_ms: u64) -> io::Result<bool> {
    // A native holder (or one of a release before the protocol, which named no host) holds the
    // OS's lock while it lives: when that lock can be taken, it is gone.
    let native =
        text.contains(OS_LOCK) || state_lock::holder(text).is_some_and(|h| h.host.is_none());
    if native {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
        };
        return match file.try_lock() {
            Ok(()) => Ok(true),
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(e),
        };
    }
    let own_is_gone = !held().contains(path);
    Ok(state_lock::is_stale(
        text,
        age_ms,
        &host_name(),
        std::process::id(),
        own_is_gone,
        process_runs,
    ))
}

/// The text and age of the file at `path`; `None` when there is none.
fn read_lock(path: &Path) -> io::Result<Option<(String, u64)>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // Locked against reading (Windows' OS locks are mandatory): a holder that lives.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(33) => {
            return Ok(Some(("a process that holds the OS lock on it".into(), 0)))
        }
        Err(e) => return Err(e),
    };
    let age = fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map_or(0, |d| d.as_millis() as u64);
    Ok(Some((text.trim().to_owned(), age)))
}

/// Removes the stale lock file `path`, whose text was `stale`, one taker at a time (the guard
/// file; see [`state_lock`]). Whether the lock file is gone now (removed here, or by another
/// taker); `false` when another taker's guard stands (it is then tried again later).
fn take_over(path: &Path, stale: &str) -> io::Result<bool> {
    let mut guard_path = path.as_os_str().to_owned();
    guard_path.push(".takeover");
    let guard_path = PathBuf::from(guard_path);
    let mut guard = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&guard_path)
    {
        Ok(guard) => guard,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if let Some((text, age)) = read_lock(&guard_path)? {
                if state_lock::is_stale(
                    &text,
                    age,
                    &host_name(),
                    std::process::id(),
                    false,
                    process_runs,
                ) {
                    let _ = fs::remove_file(&guard_path);
                }
            }
            return Ok(!path.exists());
        }
        Err(e) => return Err(e),
    };
    let _ = guard
        .write_all(state_lock::holder_text(std::process::id(), &host_name(), "", None).as_bytes());
    let now = read_lock(path);
    if matches!(&now, Ok(Some((text, _))) if text == stale) {
        let _ = fs::remove_file(path);
    }
    drop(guard);
    let _ = fs::remove_file(&guard_path);
    now.map(|_| !path.exists())
}

impl FileSystem for OsFs {
    type File = File;
    type Lock = OsLock;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn open(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    }

    fn create(&self, path: &Path) -> io::Result<File> {
        File::create(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        // Not every platform can open a folder for this (Windows cannot).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }

    fn lock(&self, path: &Path, wait: bool) -> io::Result<Result<OsLock, String>> {
        let path = std::path::absolute(path)?;
        loop {
            let mine = !held().contains(&path);
            if mine {
                match OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
                {
                    Ok(file) => {
                        held().insert(path.clone());
                        // Releases before the protocol took only this one.
                        let taken = file.try_lock();
                        let mut lock = OsLock {
                            file: Some(file),
                            path,
                            text: String::new(),
                        };
                        match taken {
                            Ok(()) => {}
                            Err(fs::TryLockError::WouldBlock) => {
                                return Ok(Err("a process of an earlier release".into()))
                            }
                            Err(fs::TryLockError::Error(e)) => return Err(e),
                        }
                        lock.write(native_holder(None));
                        return Ok(Ok(lock));
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
            }
            let holder = match read_lock(&path)? {
                // Let go of just now: try again.
                None if mine => continue,
                None => format!("another vault of this process ({})", std::process::id()),
                // Taken over: try again at once. A takeover that could not remove it (another
                // taker's guard stands, or the file cannot be removed) is waited for like a
                // holder, so that this never spins.
                Some((text, age))
                    if mine && lock_is_stale(&path, &text, age)? && take_over(&path, &text)? =>
                {
                    continue
                }
                Some((text, _)) if text.is_empty() => {
                    "a process that has not named itself yet".into()
                }
                Some((text, _)) => text,
            };
            if !wait {
                return Ok(Err(holder));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
