//! The file operations the state files need ([`crate::state_store::FileState`]), behind a
//! trait: the same code runs on the operating system's files ([`OsFs`]) and, in the host
//! simulation, on a simulated disk that models what a power loss keeps (bytes survive once
//! synced; a new name or a rename once its folder is synced) and a second process that must be
//! refused the lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

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

/// The lock file, locked.
#[derive(Debug)]
pub struct OsLock(File);

impl FsLock for OsLock {
    fn set_holder(&mut self, holder: &str) {
        let _ = self.0.set_len(0);
        let _ = self.0.seek(SeekFrom::Start(0));
        let _ = self.0.write_all(holder.as_bytes());
    }
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
        let mut file = self.open(path)?;
        if wait {
            file.lock()?;
            return Ok(Ok(OsLock(file)));
        }
        match file.try_lock() {
            Ok(()) => Ok(Ok(OsLock(file))),
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Ok(Err(holder.trim().to_owned()))
            }
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}
