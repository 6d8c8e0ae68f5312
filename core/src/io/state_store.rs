//! Where a replica's local state lives: a snapshot, rewritten rarely, and the journal that
//! follows it, appended to after every change (see [`crate::Engine::poll_journal`]).
//!
//! - [`FileState`]: native. The snapshot in the state file itself, the journal beside it in
//!   `<state>.journal`, and an advisory lock on `<state>.lock` so one device has one writer.
//! - [`MemoryState`]: in memory; what it would write is queued for a host that persists it
//!   elsewhere (the browser's IndexedDB), or dropped (a vault opened without state).

use crate::error::Result;

/// The bytes a replica restores from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    /// The last snapshot.
    pub snapshot: Vec<u8>,
    /// The journal that follows it (possibly empty, stale or torn at its end: the engine
    /// sorts that out).
    pub journal: Vec<u8>,
}

/// One write to the persisted state, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateWrite {
    /// Append these bytes to the journal.
    Append(Vec<u8>),
    /// Cut the journal to this many bytes (dropping a torn last entry).
    Truncate(u64),
    /// Replace the snapshot, then start the journal anew with `journal` (its header).
    Replace {
        /// The new snapshot.
        snapshot: Vec<u8>,
        /// The new journal's first bytes.
        journal: Vec<u8>,
    },
}

/// A place for a replica's state. Writes must be applied in order; `flush` makes everything
/// written so far survive a power loss (a process kill loses nothing written before it).
pub trait StateStore: Send {
    /// Applies one write.
    ///
    /// # Errors
    /// `Config` when the storage refuses it (disk full, permissions).
    fn write(&mut self, write: StateWrite) -> Result<()>;

    /// Makes every write so far durable.
    ///
    /// # Errors
    /// `Config` when the storage refuses it.
    fn flush(&mut self) -> Result<()>;

    /// Bytes in the journal now.
    fn journal_len(&self) -> u64;

    /// Bytes in the snapshot now.
    fn snapshot_len(&self) -> u64;

    /// A name for messages (a path, "memory").
    fn describe(&self) -> String;
}

/// State held in memory. With `queue`, every write is also kept for the host to take with
/// [`MemoryState::take_writes`] and persist (the npm package writes them to IndexedDB).
#[derive(Debug, Default)]
pub struct MemoryState {
    saved: Saved,
    queue: Option<Vec<StateWrite>>,
}

impl MemoryState {
    /// State that lives and dies with the process.
    pub fn ephemeral() -> Self {
        MemoryState::default()
    }

    /// State whose writes the host takes and persists, starting from `saved`.
    pub fn queued(saved: Saved) -> Self {
        MemoryState {
            saved,
            queue: Some(Vec::new()),
        }
    }

    /// The writes since the last call, in order.
    pub fn take_writes(&mut self) -> Vec<StateWrite> {
        self.queue.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The state as it stands.
    pub fn saved(&self) -> &Saved {
        &self.saved
    }
}

impl StateStore for MemoryState {
    fn write(&mut self, write: StateWrite) -> Result<()> {
        match &write {
            StateWrite::Append(bytes) => self.saved.journal.extend_from_slice(bytes),
            StateWrite::Truncate(len) => self.saved.journal.truncate(*len as usize),
            StateWrite::Replace { snapshot, journal } => {
                self.saved = Saved {
                    snapshot: snapshot.clone(),
                    journal: journal.clone(),
                }
            }
        }
        if let Some(queue) = &mut self.queue {
            // A host that persists the writes needs only the latest snapshot.
            if matches!(write, StateWrite::Replace { .. }) {
                queue.clear();
            }
            queue.push(write);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn journal_len(&self) -> u64 {
        self.saved.journal.len() as u64
    }

    fn snapshot_len(&self) -> u64 {
        self.saved.snapshot.len() as u64
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use file::FileState;

#[cfg(not(target_arch = "wasm32"))]
mod file {
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::{Saved, StateStore, StateWrite};
    use crate::error::{Error, Result};
    use crate::io::file_system::{FileSystem, FsFile, FsLock, OsFs};

    /// The state in files: the snapshot at `path`, the journal at `<path>.journal`, the lock
    /// on `<path>.lock` (held while this value lives). On the operating system's files unless
    /// opened with [`FileState::open_on`].
    pub struct FileState<F: FileSystem = OsFs> {
        fs: F,
        path: PathBuf,
        journal_path: PathBuf,
        journal: F::File,
        journal_len: u64,
        snapshot_len: u64,
        /// Holds the advisory lock; released when dropped.
        lock: F::Lock,
    }

    impl<F: FileSystem> std::fmt::Debug for FileState<F> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("FileState")
                .field("path", &self.path)
                .field("journal_len", &self.journal_len)
                .field("snapshot_len", &self.snapshot_len)
                .finish_non_exhaustive()
        }
    }

    fn sibling(path: &Path, suffix: &str) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        path.with_file_name(name)
    }

    fn fail<'a>(path: &'a Path, doing: &str) -> impl Fn(io::Error) -> Error + 'a {
        let doing = doing.to_owned();
        move |e| {
            Error::Config(format!(
                "cannot {doing} the state file {}: {e}",
                path.display()
            ))
        }
    }

    /// `path`'s content, `None` when there is no such file.
    fn read_if_any<F: FileSystem>(fs: &F, path: &Path) -> Result<Option<Vec<u8>>> {
        match fs.read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fail(path, "read")(e)),
        }
    }

    impl FileState {
        /// Locks the state at `path` for this process and reads what it holds (`None` when it
        /// does not exist yet). With `wait`, waits for another holder to let go instead of
        /// failing.
        ///
        /// # Errors
        /// `Locked` when another process or vault object holds the state (the message names
        /// its device and process as it wrote them); `Config` when the files cannot be read.
        pub fn open(path: &Path, wait: bool) -> Result<(FileState, Option<Saved>)> {
            FileState::open_on(OsFs, path, wait)
        }
    }

    impl<F: FileSystem> FileState<F> {
        /// [`FileState::open`] on the file system `fs`.
        ///
        /// # Errors
        /// As [`FileState::open`].
        pub fn open_on(fs: F, path: &Path, wait: bool) -> Result<(Self, Option<Saved>)> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs.create_dir_all(dir)
                    .map_err(fail(path, "create the folder of"))?;
            }
            let lock_path = sibling(path, ".lock");
            let lock = match fs
                .lock(&lock_path, wait)
                .map_err(fail(&lock_path, "lock"))?
            {
                Ok(lock) => lock,
                Err(holder) => {
                    return Err(Error::Locked {
                        state: path.display().to_string(),
                        holder: if holder.is_empty() {
                            "another vault object or process".into()
                        } else {
                            holder
                        },
                    })
                }
            };
            let journal_path = sibling(path, ".journal");
            let snapshot = read_if_any(&fs, path)?;
            let journal_bytes = read_if_any(&fs, &journal_path)?.unwrap_or_default();
            let journal = fs
                .open(&journal_path)
                .map_err(fail(&journal_path, "open"))?;
            let state = FileState {
                path: path.to_owned(),
                journal_len: journal_bytes.len() as u64,
                snapshot_len: snapshot.as_ref().map_or(0, |s| s.len() as u64),
                journal_path,
                journal,
                lock,
                fs,
            };
            let saved = snapshot.map(|snapshot| Saved {
                snapshot,
                journal: journal_bytes,
            });
            Ok((state, saved))
        }

        /// Notes who holds the lock, for the message another opener gets.
        pub fn set_holder(&mut self, holder: &str) {
            self.lock.set_holder(holder);
        }

        /// Writes `bytes` to `path` atomically: a reader or a crash sees the old file or the
        /// new one, never a mix. The temporary name is unique per process and call.
        fn replace_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let tmp = sibling(
                &path.with_file_name(format!(
                    ".{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                )),
                &format!(
                    ".tmp-{}-{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed)
                ),
            );
            let written = (|| {
                let mut file = self.fs.create(&tmp)?;
                file.write_at(0, bytes)?;
                // The content first: a rename that survives a power loss must name it whole.
                file.sync()?;
                self.fs.rename(&tmp, path)
            })();
            if written.is_err() {
                let _ = self.fs.remove_file(&tmp);
            }
            written?;
            // Then the rename itself.
            self.fs.sync_dir(path.parent().unwrap_or(Path::new("")));
            Ok(())
        }
    }

    impl<F: FileSystem> StateStore for FileState<F> {
        fn write(&mut self, write: StateWrite) -> Result<()> {
            match write {
                StateWrite::Append(bytes) => {
                    self.journal
                        .write_at(self.journal_len, &bytes)
                        .map_err(fail(&self.journal_path, "append to"))?;
                    self.journal_len += bytes.len() as u64;
                }
                StateWrite::Truncate(len) => {
                    self.journal
                        .set_len(len)
                        .map_err(fail(&self.journal_path, "cut"))?;
                    self.journal_len = len;
                }
                StateWrite::Replace { snapshot, journal } => {
                    // Snapshot first: a crash before the journal is replaced leaves a journal
                    // that names the old snapshot, which the engine then ignores.
                    self.replace_file(&self.path, &snapshot)
                        .map_err(fail(&self.path, "write"))?;
                    self.replace_file(&self.journal_path, &journal)
                        .map_err(fail(&self.journal_path, "write"))?;
                    self.journal = self
                        .fs
                        .open(&self.journal_path)
                        .map_err(fail(&self.journal_path, "open"))?;
                    self.snapshot_len = snapshot.len() as u64;
                    self.journal_len = journal.len() as u64;
                }
            }
            Ok(())
        }

        fn flush(&mut self) -> Result<()> {
            self.journal
                .sync()
                .map_err(fail(&self.journal_path, "sync"))
        }

        fn journal_len(&self) -> u64 {
            self.journal_len
        }

        fn snapshot_len(&self) -> u64 {
            self.snapshot_len
        }

        fn describe(&self) -> String {
            self.path.display().to_string()
        }
    }
}
