//! A file written beside its path and renamed into place once whole (and, but for the files a
//! restore reads together, synced), so that a read that fails leaves nothing at the path, and
//! one that is interrupted can resume.

use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::streams::{partial_name, PartialTarget, Sink};

/// Where [`Session::get_file_to_path`](crate::session::Session::get_file_to_path) writes: a
/// file beside the path, renamed into place by [`PartialFile::commit`] once the whole file was
/// read and checked, and removed when dropped uncommitted, so a failed read leaves nothing at
/// the path. Every binding that reads files to paths uses it.
#[derive(Debug)]
pub struct PartialFile {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    /// Left in place when dropped uncommitted (a resumable one), unless discarded.
    keep: bool,
    committed: bool,
    /// The version tag of a resumable one.
    tag: Option<String>,
    /// What the path must still hold when this file is renamed over it.
    expect: Option<Expect>,
}

/// What a path held when a caller decided to write a file there: checked again just before
/// the written file is renamed over it, so that a file a user saved there meanwhile (during
/// a download, which may take long) is not replaced unseen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Nothing.
    Absent,
    /// A file of this length and modification time (milliseconds since the Unix epoch).
    File { size: u64, mtime_ms: u64 },
}

impl Expect {
    /// What `path` holds now: nothing, or a file (`None` for anything else: not checked).
    pub(crate) fn of(path: &Path) -> Option<Expect> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Expect::Absent),
            Ok(m) if m.is_file() => Some(Expect::File {
                size: m.len(),
                mtime_ms: mtime_ms(&m),
            }),
            _ => None,
        }
    }

    /// Whether `path` still holds what was expected.
    fn holds(self, path: &Path) -> bool {
        Expect::of(path) == Some(self)
    }
}

/// A file's modification time in milliseconds since the Unix epoch (0 when unknown).
pub(crate) fn mtime_ms(metadata: &std::fs::Metadata) -> u64 {
    metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

impl PartialFile {
    /// Creates `.<name>.<pid>-<n>.part` in `target`'s folder.
    ///
    /// # Errors
    /// When `target` names no file or the folder cannot be written.
    pub fn create(target: &std::path::Path) -> std::io::Result<PartialFile> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = PartialFile::beside(target, &format!("{}-{n}", std::process::id()))?;
            match std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(PartialFile {
                        path,
                        file: Some(file),
                        keep: false,
                        committed: false,
                        tag: None,
                        expect: None,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The partial file of a resumable read of one version of a file (`tag`, see
    /// [`crate::transfer::Download::resume_tag`]) to `target`: `.<name>.<tag>.part` beside
    /// it, opened as a previous read left it (or created), and locked while this value lives.
    /// It stays when dropped uncommitted, for the next read to resume from, unless
    /// [`PartialFile::discard`]ed. When another read of the same file to the same path holds
    /// it, this one gets a fresh file of its own (as [`PartialFile::create`]).
    ///
    /// # Errors
    /// When `target` names no file or the folder cannot be written.
    pub fn resumable(target: &std::path::Path, tag: &str) -> std::io::Result<PartialFile> {
        let path = PartialFile::beside(target, tag)?;
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(PartialFile {
                path,
                file: Some(file),
                keep: true,
                committed: false,
                tag: Some(tag.to_owned()),
                expect: None,
            }),
            Err(std::fs::TryLockError::WouldBlock) => PartialFile::create(target),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// `.<name>.<tag>.part` in `target`'s folder.
    fn beside(target: &std::path::Path, tag: &str) -> std::io::Result<std::path::PathBuf> {
        let Some(name) = target.file_name() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} does not name a file", target.display()),
            ));
        };
        let temp = match name.to_str() {
            Some(name) => std::ffi::OsString::from(partial_name(name, tag)),
            None => {
                let mut temp = std::ffi::OsString::from(".");
                temp.push(name);
                temp.push(format!(".{tag}.part"));
                temp
            }
        };
        Ok(target
            .parent()
            .unwrap_or(std::path::Path::new(""))
            .join(temp))
    }

    /// Removes the file now (a resumable one too).
    pub fn discard(mut self) {
        self.keep = false;
    }

    /// The file to write to.
    pub fn file(&self) -> &std::fs::File {
        self.file.as_ref().expect("open until committed or dropped")
    }

    /// Syncs the file to disk, closes it and renames it to `target`. A resumable one then
    /// removes the partial files that interrupted reads of other versions of the file left
    /// beside `target` (`.<name>.<16 hex digits>.part`), unless a read holds them.
    ///
    /// # Errors
    /// When the sync or the rename fails (the partial file is then removed).
    pub fn commit(mut self, target: &std::path::Path) -> std::io::Result<()> {
        if let Some(file) = self.file.take() {
            file.sync_all()?;
        }
        self.commit_without_sync(target)
    }

    /// Renames it into place only if the path still holds `expect` then (else the commit
    /// fails, and the path is left as it is).
    #[cfg(all(feature = "backup", not(target_arch = "wasm32")))]
    pub(crate) fn expecting(&mut self, expect: Option<Expect>) {
        self.expect = expect;
    }

    /// Closes the file, written whole, before [`PartialFile::commit_without_sync`].
    #[cfg(all(feature = "backup", not(target_arch = "wasm32")))]
    pub(crate) fn close(&mut self) {
        drop(self.file.take());
    }

    /// [`PartialFile::commit`] without its sync: the file's bytes were made durable already,
    /// or are left to the system's write-back.
    ///
    /// # Errors
    /// When the rename fails (the partial file is then removed).
    pub(crate) fn commit_without_sync(mut self, target: &std::path::Path) -> std::io::Result<()> {
        drop(self.file.take());
        if self.expect.is_some_and(|expect| !expect.holds(target)) {
            // Not kept for a resume either: what the path should hold is decided again.
            self.keep = false;
            return Err(std::io::Error::other(
                "it changed during the sync: kept, the next run decides",
            ));
        }
        std::fs::rename(&self.path, target)?;
        self.committed = true;
        if let Some(tag) = &self.tag {
            PartialFile::remove_stale(target, tag);
        }
        Ok(())
    }

    /// Removes the resumable partial files of `target` but the one of version `keep`, and
    /// those a read holds locked. Best effort: what cannot be listed or removed stays.
    fn remove_stale(target: &std::path::Path, keep: &str) {
        let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let folder = target.parent().unwrap_or(std::path::Path::new(""));
        let folder = if folder.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            folder
        };
        let Ok(entries) = std::fs::read_dir(folder) else {
            return;
        };
        let prefix = format!(".{name}.");
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(tag) = file_name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|n| n.strip_suffix(".part"))
            else {
                continue;
            };
            let is_tag =
                tag.len() == 16 && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !is_tag || tag == keep {
                continue;
            }
            let path = entry.path();
            // A read of that version holds its lock while it runs.
            let Ok(file) = std::fs::File::options().read(true).write(true).open(&path) else {
                continue;
            };
            if file.try_lock().is_ok() {
                drop(file);
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// The [`PartialTarget`] of a read to a path on this machine: a resumable [`PartialFile`].
pub(crate) struct PathPartial<'a> {
    partial: Option<PartialFile>,
    target: &'a Path,
}

impl<'a> PathPartial<'a> {
    /// The resumable partial file of version `tag` of the file at `target`, put in place only
    /// while `target` holds `expect` (when given).
    pub(crate) fn resumable(
        target: &'a Path,
        tag: &str,
        expect: Option<Expect>,
    ) -> Result<PathPartial<'a>> {
        let mut partial = PartialFile::resumable(target, tag).map_err(|e| failed(target, e))?;
        partial.expect = expect;
        Ok(PathPartial {
            partial: Some(partial),
            target,
        })
    }

    fn file(&self) -> &std::fs::File {
        self.partial
            .as_ref()
            .expect("open until put in place")
            .file()
    }
}

/// A failure of the file system while a file is read to `target`.
fn failed(target: &Path, e: std::io::Error) -> Error {
    Error::Config(format!("writing {} failed: {e}", target.display()))
}

impl Sink for PathPartial<'_> {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.file()
            .write_all(data)
            .map_err(|e| failed(self.target, e))
    }
}

impl PartialTarget for PathPartial<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match self.file().read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                read => return read.map_err(|e| failed(self.target, e)),
            }
        }
    }

    async fn cut(&mut self, len: u64) -> Result<()> {
        let mut file = self.file();
        file.set_len(len)
            .and_then(|()| file.seek(std::io::SeekFrom::Start(len)))
            .map(drop)
            .map_err(|e| failed(self.target, e))
    }

    async fn commit(&mut self) -> Result<()> {
        let partial = self.partial.take().expect("put in place once");
        partial
            .commit(self.target)
            .map_err(|e| failed(self.target, e))
    }

    async fn discard(&mut self) {
        if let Some(partial) = self.partial.take() {
            partial.discard();
        }
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        // Closed first: an open file cannot be removed everywhere.
        drop(self.file.take());
        if !self.committed && !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
