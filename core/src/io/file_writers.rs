//! Whole files written on threads of their own while a read of many files goes on.
//!
//! A restore or a folder sync writes thousands of small files, each through a partial file
//! renamed into place once whole (see [`PartialFile`]), so a file never shows under its name
//! cut short. How long its bytes may stay in the system's cache is the caller's
//! [`Durability`]:
//! - [`Durability::OnDisk`] (folder sync, whose state then trusts the file's size and time): a
//!   file's bytes are on the disk before its name is. A sync of each file waits on the disk
//!   once per file; where the file system allows it (see [`synced_whole_type`]) a writer
//!   instead writes up to [`SYNCED_TOGETHER`] files, syncs their file system once (`syncfs`)
//!   and only then renames them, and the reads from the store go on meanwhile.
//! - [`Durability::WriteBack`] (restore): renamed as soon as written, the write-back left to
//!   the system, as `tar`, `cp` and restic leave it. A sync waits for all the file system's
//!   unwritten data, other programs' too: on this project's machines it was half a restore's
//!   time.
//!
//! The bytes handed over and not yet written are bounded ([`QUEUED_BYTES`], or one file
//! bigger than that), so memory stays bounded when the disk is slower than the network: a
//! caller handing over more waits, blocking its thread (an async caller's too: the writers
//! need nothing from its executor, and the synchronous write this replaces blocked it longer).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::partial_file::{Expect, PartialFile};
use crate::error::{Error, Result};

/// Files written at once (in different folders, see [`FileWriters::write`]). Syncs wait on
/// the disk, not the cores, so this is more than the cores: on this project's 2-core test
/// machine 8 writers wrote 3,000 small files synced one by one in 0.47 s where one took
/// 1.18 s, and 16 did no better than 8.
const WRITERS: usize = 8;

/// The most bytes handed over and not yet written. A file larger than this is handed over once
/// everything before it is written.
const QUEUED_BYTES: usize = 8 << 20;

/// The most files a writer holds written and not yet renamed into place, to sync their file
/// system once for all of them (see [`synced_whole`]: elsewhere each file is synced alone as it
/// is written, and renamed with the batch).
const SYNCED_TOGETHER: usize = 64;

/// How long a writer holding written files waits for another before it syncs and renames
/// them: files show in place soon when the reads are slower than the disk.
const SYNC_WHEN_IDLE: Duration = Duration::from_millis(50);

/// When the bytes of a file handed over are on the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Before the file shows under its name: whatever trusts a file's size and time after a
    /// power loss or a system crash finds its bytes.
    OnDisk,
    /// When the system writes them back (by default within about 30 s on Linux): after a
    /// power loss or a system crash, a file written shortly before may not hold the bytes its
    /// size and time say (nothing, or zeros). A killed process leaves no file cut short under
    /// its name, and what it renamed into place the system still writes back.
    WriteBack,
}

/// A file to write: its place among the caller's, where, its bytes and its stamp.
struct Job {
    place: usize,
    path: PathBuf,
    bytes: Vec<u8>,
    stamp: Option<Stamp>,
    expect: Option<Expect>,
}

/// The modification time and permissions a file gets before it is renamed into place: set
/// through the open file, they cost no lookup of its path, and the file never shows under its
/// name with the time of the write (which a rerun would take for a newer local copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Milliseconds since the Unix epoch.
    pub mtime_ms: u64,
    /// Unix permission bits; 0 leaves the file's as created (and Windows ignores them).
    pub mode: u32,
}

impl Stamp {
    /// Sets the time and permissions of `file`.
    fn apply(self, file: &std::fs::File) -> std::io::Result<()> {
        #[cfg(unix)]
        if self.mode != 0 {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(self.mode))?;
        }
        let time = std::time::UNIX_EPOCH
            .checked_add(std::time::Duration::from_millis(self.mtime_ms))
            .ok_or_else(|| std::io::Error::other("a time out of this system's range"))?;
        file.set_modified(time)
    }
}

/// The bytes handed over and not yet written, and a signal when that goes down.
#[derive(Default)]
struct Queued {
    bytes: Mutex<usize>,
    freed: Condvar,
}

impl Queued {
    fn add(&self, n: usize) {
        let mut bytes = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        while !fits(*bytes, n) {
            bytes = self.freed.wait(bytes).unwrap_or_else(|e| e.into_inner());
        }
        *bytes += n;
    }

    fn remove(&self, n: usize) {
        let mut bytes = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        *bytes = bytes.saturating_sub(n);
        self.freed.notify_all();
    }
}

/// Whether `n` more bytes may be handed over while `queued` wait: within the bound, or
/// nothing waits (a file larger than the bound goes alone).
fn fits(queued: usize, n: usize) -> bool {
    queued == 0 || queued + n <= QUEUED_BYTES
}

/// Writers of whole files ([`FileWriters::write`]), each file through a partial file beside
/// its path, stamped, synced as the [`Durability`] says and renamed into place. Their
/// outcomes come back from [`FileWriters::finish`]: whether each file was written, and
/// whether it got its stamp (a file system that refuses the time or the permissions still
/// gets the file; the caller then sets them, or says why not, as for a file written
/// elsewhere). Dropped unfinished (a cancelled read), it still writes what was handed over
/// (each of those files was read whole and checked) before it returns, but for the files of a
/// writer that panicked (failed).
pub(crate) struct FileWriters {
    /// Each writer's queue (see [`FileWriters::write`] for which one a file goes to). Empty
    /// when no writer runs.
    jobs: Vec<mpsc::Sender<Job>>,
    durability: Durability,
    /// Whether a folder's files all go to one writer: decided at the first file, by its file
    /// system (see [`writer_of`]).
    by_folder: Option<bool>,
    done: mpsc::Receiver<(usize, Result<bool>)>,
    /// Outcomes of files written on the caller's thread (no writer thread could start).
    done_here: Vec<(usize, Result<bool>)>,
    threads: Vec<std::thread::JoinHandle<()>>,
    queued: Arc<Queued>,
}

impl FileWriters {
    /// Starts up to [`WRITERS`] writer threads, no more than `files` (how many files are to
    /// come), writing with `durability`. Where none can start, files are written on the
    /// caller's thread as they are handed over.
    pub(crate) fn start(files: usize, durability: Durability) -> FileWriters {
        let (outcomes, done) = mpsc::channel();
        let queued = Arc::new(Queued::default());
        let mut jobs = Vec::new();
        let threads: Vec<_> = (0..WRITERS.min(files))
            .filter_map(|n| {
                let (queue, inbox) = mpsc::channel::<Job>();
                let outcomes = outcomes.clone();
                let queued = Arc::clone(&queued);
                std::thread::Builder::new()
                    .name(format!("bucketsync-write-{n}"))
                    .spawn(move || {
                        let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            match durability {
                                Durability::OnDisk => serve(&inbox, &outcomes, &queued),
                                Durability::WriteBack => serve_each(&inbox, &outcomes, &queued),
                            }
                        }));
                        if served.is_err() {
                            // A panic outside a file's write (its batch's outcomes may be lost:
                            // the caller counts those files as not read). What still comes is
                            // told as failed and leaves the count, or a caller waiting for
                            // room would wait for ever.
                            for job in inbox {
                                queued.remove(job.bytes.len());
                                if outcomes
                                    .send((job.place, Err(panicked(&job.path))))
                                    .is_err()
                                {
                                    return;
                                }
                            }
                        }
                    })
                    .ok()
                    .inspect(|_| jobs.push(queue))
            })
            .collect();
        FileWriters {
            jobs,
            durability,
            by_folder: None,
            done,
            done_here: Vec::new(),
            threads,
            queued,
        }
    }

    /// Hands over `bytes` to be written as the file at `path`, with `stamp` if given, the
    /// caller's file number `place`; renamed into place only while `path` holds `expect`
    /// (when given). Waits until they fit within [`QUEUED_BYTES`] with those
    /// waiting to be written, or until nothing waits.
    ///
    /// On a local file system synced whole (see [`synced_whole_type`]), the writer is chosen by
    /// the file's folder, whatever the durability: files made in one folder at once wait on
    /// each other (the folder is locked while an entry is made or renamed in it), and the
    /// waiting spins on a core. Elsewhere (network and FUSE file systems, other systems) the
    /// writers take turns, so that what each waits on (a sync of each file, a server's answer
    /// to each create and rename) overlaps.
    pub(crate) fn write(
        &mut self,
        place: usize,
        path: PathBuf,
        bytes: Vec<u8>,
        stamp: Option<Stamp>,
        expect: Option<Expect>,
    ) {
        if self.jobs.is_empty() {
            self.done_here.push((
                place,
                write_whole(&path, &bytes, stamp, expect, self.durability),
            ));
            return;
        }
        let by_folder = *self
            .by_folder
            .get_or_insert_with(|| folder_synced_whole(&path));
        let writer = writer_of(&path, place, self.jobs.len(), by_folder);
        self.queued.add(bytes.len());
        let len = bytes.len();
        let job = Job {
            place,
            path,
            bytes,
            stamp,
            expect,
        };
        if let Err(mpsc::SendError(job)) = self.jobs[writer].send(job) {
            // The writer is gone (it panicked in a way its own catch did not cover, which
            // leaves its queue open and fails what comes): written here.
            self.queued.remove(len);
            let written = write_whole(
                &job.path,
                &job.bytes,
                job.stamp,
                job.expect,
                self.durability,
            );
            self.done_here.push((job.place, written));
        }
    }

    /// Waits until every file handed over is written, and returns each one's outcome (by its
    /// place, in no particular order): whether it got its stamp, when it was written.
    pub(crate) fn finish(mut self) -> Vec<(usize, Result<bool>)> {
        self.jobs.clear();
        let mut outcomes = std::mem::take(&mut self.done_here);
        outcomes.extend(self.done.iter());
        outcomes
    }
}

impl Drop for FileWriters {
    fn drop(&mut self) {
        // The writers end once their queues are empty and closed.
        self.jobs.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One writer thread of [`Durability::OnDisk`]: writes the files that come until its queue
/// closes, syncing and renaming them in batches (see [`Batch`]).
fn serve(
    inbox: &mpsc::Receiver<Job>,
    outcomes: &mpsc::Sender<(usize, Result<bool>)>,
    queued: &Queued,
) {
    let mut batch = Batch::default();
    loop {
        let next = if batch.written.is_empty() {
            inbox.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            inbox.recv_timeout(SYNC_WHEN_IDLE)
        };
        let job = match next {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                if !batch.commit(outcomes) {
                    return;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                batch.commit(outcomes);
                return;
            }
        };
        // A panic is the file's error: its bytes must leave the count, or a caller waiting
        // for room would wait for ever.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            write_partial(
                &job.path,
                &job.bytes,
                job.stamp,
                job.expect,
                SyncWhen::WithBatch(&mut batch.devices),
            )
        }))
        .unwrap_or_else(|_| Err(panicked(&job.path)));
        queued.remove(job.bytes.len());
        drop(job.bytes);
        match outcome {
            Ok((partial, stamped, device)) => batch.written.push(Written {
                place: job.place,
                path: job.path,
                partial,
                stamped,
                device,
            }),
            Err(e) => {
                if outcomes.send((job.place, Err(e))).is_err() {
                    return;
                }
            }
        }
        if batch.written.len() >= SYNCED_TOGETHER && !batch.commit(outcomes) {
            return;
        }
    }
}

/// One writer thread of [`Durability::WriteBack`]: writes and renames each file that comes
/// until its queue closes.
fn serve_each(
    inbox: &mpsc::Receiver<Job>,
    outcomes: &mpsc::Sender<(usize, Result<bool>)>,
    queued: &Queued,
) {
    for job in inbox {
        // A panic is the file's error, as in `serve`.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            write_whole(
                &job.path,
                &job.bytes,
                job.stamp,
                job.expect,
                Durability::WriteBack,
            )
        }))
        .unwrap_or_else(|_| Err(panicked(&job.path)));
        queued.remove(job.bytes.len());
        if outcomes.send((job.place, outcome)).is_err() {
            return;
        }
    }
}

/// Which of `writers` writes the file at `path`, the caller's file `place`: the same for every
/// file of a folder (`by_folder`), or each in turn.
fn writer_of(path: &Path, place: usize, writers: usize, by_folder: bool) -> usize {
    if !by_folder {
        return place % writers;
    }
    use std::hash::{Hash, Hasher};
    let mut folder = std::collections::hash_map::DefaultHasher::new();
    path.parent().hash(&mut folder);
    (folder.finish() % writers as u64) as usize
}

/// Writes `bytes` as the file at `path`: through a partial file beside it, stamped (when
/// given, and when the file system lets it: says whether it did), synced (for
/// [`Durability::OnDisk`]) and renamed into place.
fn write_whole(
    path: &Path,
    bytes: &[u8],
    stamp: Option<Stamp>,
    expect: Option<Expect>,
    durability: Durability,
) -> Result<bool> {
    let sync = match durability {
        Durability::OnDisk => SyncWhen::Alone,
        Durability::WriteBack => SyncWhen::Never,
    };
    let (partial, stamped, _) = write_partial(path, bytes, stamp, expect, sync)?;
    partial
        .commit_without_sync(path)
        .map_err(|e| write_failed(path, e))?;
    Ok(stamped)
}

/// The file systems (devices) of a writer's batch, each with its sync handle: an open file
/// there, opened before any of the batch's bytes were written to it. Linux tells each open
/// file of a write error on its file system once: a handle opened after an error that another
/// sync already saw would not be told, one opened before is. None where files are synced one
/// by one.
type Devices = Vec<(u64, Option<std::fs::File>)>;

/// A writer's files written and stamped but not yet renamed into place, and the file systems
/// they are on.
#[derive(Default)]
struct Batch {
    written: Vec<Written>,
    devices: Devices,
}

/// A file written whole and stamped, closed, waiting for the sync after which it is renamed
/// into place.
struct Written {
    place: usize,
    path: PathBuf,
    partial: PartialFile,
    stamped: bool,
    /// The file system it is on, synced once for all its files; none when it was synced
    /// alone.
    device: Option<u64>,
}

/// When [`write_partial`] syncs a file.
enum SyncWhen<'a> {
    /// Now, alone.
    Alone,
    /// Later, with the other files of a batch on its file system, whose sync handles are
    /// these; now and alone where the file system is not synced whole.
    WithBatch(&'a mut Devices),
    /// Never: the system writes it back.
    Never,
}

/// The first half of [`write_whole`]: `bytes` written to a partial file beside `path` and
/// stamped (when given: says whether it was). Returns it closed and synced as `sync` says,
/// with the file system it is on when that is synced later for the batch's files.
fn write_partial(
    path: &Path,
    bytes: &[u8],
    stamp: Option<Stamp>,
    expect: Option<Expect>,
    mut sync: SyncWhen<'_>,
) -> Result<(PartialFile, bool, Option<u64>)> {
    use std::io::Write;
    let local = |e| write_failed(path, e);
    let mut partial = PartialFile::create(path).map_err(local)?;
    partial.expecting(expect);
    let mut file = partial.file();
    // The sync handle of a file system new to the batch is this file, opened before its write.
    let device = match sync {
        SyncWhen::WithBatch(ref mut devices) => {
            let device = device_of(file).map_err(local)?;
            match devices.iter().find(|(d, _)| *d == device) {
                Some((_, handle)) => handle.is_some().then_some(device),
                None => {
                    let handle = synced_whole(file)
                        .then(|| file.try_clone())
                        .transpose()
                        .map_err(local)?;
                    let batched = handle.is_some().then_some(device);
                    devices.push((device, handle));
                    batched
                }
            }
        }
        SyncWhen::Alone | SyncWhen::Never => None,
    };
    file.write_all(bytes).map_err(local)?;
    let stamped = stamp.is_some_and(|stamp| stamp.apply(file).is_ok());
    if device.is_none() && !matches!(sync, SyncWhen::Never) {
        file.sync_all().map_err(local)?;
        #[cfg(test)]
        tests::synced(path);
    }
    partial.close();
    Ok((partial, stamped, device))
}

impl Batch {
    /// Syncs each file system of the batch once, renames its files into place (or, where the
    /// sync failed, removes them: their bytes may not be on the disk), and sends their
    /// outcomes. Returns false when nobody takes outcomes any more.
    fn commit(&mut self, outcomes: &mpsc::Sender<(usize, Result<bool>)>) -> bool {
        let synced: Vec<(u64, Option<std::io::Error>)> = self
            .devices
            .drain(..)
            .filter_map(|(device, handle)| {
                handle.map(|handle| (device, sync_file_system(&handle).err()))
            })
            .collect();
        for file in self.written.drain(..) {
            let Written {
                place,
                path,
                partial,
                stamped,
                device,
            } = file;
            let failed = device.and_then(|device| {
                synced
                    .iter()
                    .find(|(d, _)| *d == device)
                    .and_then(|(_, e)| e.as_ref())
            });
            let outcome = match failed {
                Some(e) => Err(write_failed(
                    &path,
                    std::io::Error::new(
                        e.kind(),
                        format!("the sync of its file system failed: {e}"),
                    ),
                )),
                None => {
                    #[cfg(test)]
                    if device.is_some() {
                        tests::synced(&path);
                    }
                    partial
                        .commit_without_sync(&path)
                        .map(|()| stamped)
                        .map_err(|e| write_failed(&path, e))
                }
            };
            if outcomes.send((place, outcome)).is_err() {
                return false;
            }
        }
        true
    }
}

fn write_failed(path: &Path, e: std::io::Error) -> Error {
    Error::Config(format!("writing {} failed: {e}", path.display()))
}

fn panicked(path: &Path) -> Error {
    write_failed(path, std::io::Error::other("the writer panicked"))
}

/// The file system `file` is on.
#[cfg(unix)]
fn device_of(file: &std::fs::File) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(file.metadata()?.dev())
}

#[cfg(not(unix))]
fn device_of(_: &std::fs::File) -> std::io::Result<u64> {
    Ok(0)
}

/// Whether the file system `file` is on is synced whole for many files: see
/// [`synced_whole_type`].
#[cfg(target_os = "linux")]
fn synced_whole(file: &std::fs::File) -> bool {
    rustix::fs::fstatfs(file).is_ok_and(|fs| synced_whole_type(fs.f_type as u32))
}

/// Whether the folder the file `path` would be written in is on a file system synced whole.
#[cfg(target_os = "linux")]
fn folder_synced_whole(path: &Path) -> bool {
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    rustix::fs::statfs(folder).is_ok_and(|fs| synced_whole_type(fs.f_type as u32))
}

/// Whether a file system of type `f_type` is synced whole for many files. Only local file
/// systems whose `syncfs` writes back every file and flushes the disk's cache (ext3/4, XFS,
/// Btrfs, F2FS; tmpfs holds nothing to write; ext2 shares ext4's number, and the ext4 driver
/// mounts it on most systems), and only on Linux 5.8 and later, where `syncfs` reports
/// failures to write files back (before, it did not; until 5.17 a failure of the file
/// system's own commit is not reported either, but such a file system stops taking writes,
/// so the renames that follow fail). Not FUSE file systems, whose `syncfs` writes nothing back
/// unless the file system asks for it, nor network ones: there each file is synced alone.
#[cfg(target_os = "linux")]
fn synced_whole_type(f_type: u32) -> bool {
    const SYNCED_WHOLE: [u32; 5] = [
        0xEF53,      // ext2, ext3, ext4
        0x5846_5342, // XFS
        0x9123_683E, // Btrfs
        0xF2F5_2010, // F2FS
        0x0102_1994, // tmpfs
    ];
    static REPORTS_ERRORS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let reports_errors = *REPORTS_ERRORS.get_or_init(|| {
        let release = rustix::system::uname()
            .release()
            .to_string_lossy()
            .into_owned();
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        (major, minor) >= (5, 8)
    });
    reports_errors && SYNCED_WHOLE.contains(&f_type)
}

#[cfg(not(target_os = "linux"))]
fn synced_whole(_: &std::fs::File) -> bool {
    false
}

#[cfg(not(target_os = "linux"))]
fn folder_synced_whole(_: &Path) -> bool {
    false
}

/// Syncs the whole file system `handle` is on (`syncfs(2)`): every file written there is on
/// the disk when it returns, and a failure to write any of them back that `handle` was not
/// told of yet is its error (see [`Devices`]).
#[cfg(target_os = "linux")]
fn sync_file_system(handle: &std::fs::File) -> std::io::Result<()> {
    rustix::fs::syncfs(handle).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn sync_file_system(_: &std::fs::File) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths of the files synced (alone, or with their batch's file system) by this
    /// process's tests, which run side by side: each test looks for its own.
    static SYNCED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    pub(super) fn synced(path: &Path) {
        SYNCED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.to_owned());
    }

    /// How many of the files synced so far are in `dir`.
    fn synced_in(dir: &Path) -> usize {
        let synced = SYNCED.lock().unwrap_or_else(|e| e.into_inner());
        synced.iter().filter(|p| p.starts_with(dir)).count()
    }

    /// An empty folder `<name>-<pid>` in the system's temporary folder.
    fn empty_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn every_file_handed_over_is_written_and_told() {
        let dir = empty_dir("bucketsync-writers");
        let mut writers = FileWriters::start(WRITERS, Durability::OnDisk);
        for i in 0..50 {
            writers.write(
                i,
                dir.join(format!("f{i}")),
                vec![i as u8; i * 1000],
                None,
                None,
            );
        }
        // A folder that does not exist: its own error, the others unharmed.
        writers.write(50, dir.join("missing/f"), b"x".to_vec(), None, None);
        let mut outcomes = writers.finish();
        outcomes.sort_by_key(|(place, _)| *place);
        assert_eq!(outcomes.len(), 51);
        for (i, outcome) in outcomes.iter().take(50) {
            assert!(matches!(outcome, Ok(false)), "file {i}: {outcome:?}");
            let bytes = std::fs::read(dir.join(format!("f{i}"))).unwrap();
            assert_eq!(bytes, vec![*i as u8; i * 1000]);
        }
        let (place, outcome) = &outcomes[50];
        assert_eq!(*place, 50);
        assert!(
            matches!(outcome, Err(Error::Config(m)) if m.contains("missing")),
            "{outcome:?}"
        );
        // No partial file is left beside them.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".part"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // On the disk, each of them, before it was renamed.
        assert_eq!(synced_in(&dir), 50);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_shows_under_its_name_only_once_synced_with_the_others() {
        let dir = empty_dir("bucketsync-writers-sync");
        let mut batch = Batch::default();
        for i in 0..3 {
            let path = dir.join(format!("f{i}"));
            let (partial, stamped, device) = write_partial(
                &path,
                &[i as u8; 100],
                None,
                None,
                SyncWhen::WithBatch(&mut batch.devices),
            )
            .unwrap();
            assert!(!stamped);
            assert!(!path.exists(), "f{i} shows before the sync");
            batch.written.push(Written {
                place: i,
                path,
                partial,
                stamped,
                device,
            });
        }
        // Where the test's file system is synced whole (ext4 on this project's machines), its
        // handle is the first file, opened before anything was written, and the files wait
        // for its sync; elsewhere each was synced alone.
        let whole = folder_synced_whole(&dir.join("f0"));
        assert_eq!(batch.devices.len(), 1);
        assert_eq!(batch.devices[0].1.is_some(), whole);
        assert!(batch.written.iter().all(|w| w.device.is_some() == whole));
        let (outcomes, told) = mpsc::channel();
        assert!(batch.commit(&outcomes));
        assert!(batch.written.is_empty() && batch.devices.is_empty());
        drop(outcomes);
        let told: Vec<_> = told.iter().collect();
        assert_eq!(told.len(), 3);
        for (i, outcome) in told {
            assert!(matches!(outcome, Ok(false)), "f{i}: {outcome:?}");
            assert_eq!(
                std::fs::read(dir.join(format!("f{i}"))).unwrap(),
                [i as u8; 100]
            );
        }
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            3,
            "a partial file is left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_folder_has_one_writer_and_many_files_pass_in_several_syncs() {
        let dir = empty_dir("bucketsync-writers-folders");
        let folders: Vec<PathBuf> = (0..40).map(|i| dir.join(format!("d{i}"))).collect();
        let mut used = std::collections::BTreeSet::new();
        for (place, folder) in folders.iter().enumerate() {
            let writer = writer_of(&folder.join("a"), place, WRITERS, true);
            for (n, name) in ["b", "c", "long name.txt"].into_iter().enumerate() {
                assert_eq!(
                    writer_of(&folder.join(name), place + n + 1, WRITERS, true),
                    writer
                );
            }
            used.insert(writer);
        }
        assert!(
            used.len() > WRITERS / 2,
            "40 folders went to writers {used:?}"
        );
        // More files of one folder than a writer holds before a sync.
        let mut writers = FileWriters::start(WRITERS, Durability::OnDisk);
        let mut place = 0;
        for folder in &folders[..3] {
            std::fs::create_dir(folder).unwrap();
            for i in 0..SYNCED_TOGETHER * 2 + 1 {
                writers.write(
                    place,
                    folder.join(format!("f{i}")),
                    vec![i as u8; i],
                    None,
                    None,
                );
                place += 1;
            }
        }
        let outcomes = writers.finish();
        assert_eq!(outcomes.len(), place);
        assert!(outcomes.iter().all(|(_, o)| matches!(o, Ok(false))));
        for folder in &folders[..3] {
            for i in 0..SYNCED_TOGETHER * 2 + 1 {
                let bytes = std::fs::read(folder.join(format!("f{i}"))).unwrap();
                assert_eq!(bytes, vec![i as u8; i]);
            }
            let count = std::fs::read_dir(folder).unwrap().count();
            assert_eq!(count, SYNCED_TOGETHER * 2 + 1, "a partial file is left");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Left to the system's write-back: no file is synced, each shows only once written whole,
    /// with its stamp, and nothing partial is left.
    #[test]
    fn written_back_files_show_whole_with_their_stamps_and_are_not_synced() {
        let dir = empty_dir("bucketsync-writers-write-back");
        let stamp = |i: usize| Stamp {
            mtime_ms: 1_600_000_000_000 + i as u64 * 1000,
            mode: 0o600,
        };
        let mut writers = FileWriters::start(WRITERS, Durability::WriteBack);
        let mut files = Vec::new();
        for d in 0..4 {
            let folder = dir.join(format!("d{d}"));
            std::fs::create_dir(&folder).unwrap();
            for i in 0..SYNCED_TOGETHER + 1 {
                let path = folder.join(format!("f{i}"));
                let place = files.len();
                writers.write(
                    place,
                    path.clone(),
                    vec![d as u8; i * 10],
                    Some(stamp(place)),
                    None,
                );
                files.push((path, vec![d as u8; i * 10]));
            }
        }
        let outcomes = writers.finish();
        assert_eq!(outcomes.len(), files.len());
        assert!(
            outcomes.iter().all(|(_, o)| matches!(o, Ok(true))),
            "{outcomes:?}"
        );
        // With no writer thread, on the caller's, in its two halves: nothing under the name
        // until the whole file is written and stamped.
        let alone = dir.join("d0/alone");
        let (partial, stamped, device) =
            write_partial(&alone, b"x", Some(stamp(999)), None, SyncWhen::Never).unwrap();
        assert!(stamped && device.is_none());
        assert!(!alone.exists(), "the file shows before it is renamed");
        partial.commit_without_sync(&alone).unwrap();
        let again = dir.join("d1/again");
        let written = write_whole(&again, b"y", Some(stamp(999)), None, Durability::WriteBack);
        assert!(matches!(written, Ok(true)), "{written:?}");
        files.push((alone, b"x".to_vec()));
        files.push((again, b"y".to_vec()));
        for (place, (path, bytes)) in files.iter().enumerate() {
            assert_eq!(&std::fs::read(path).unwrap(), bytes, "{}", path.display());
            let meta = std::fs::metadata(path).unwrap();
            let place = if place >= files.len() - 2 { 999 } else { place };
            assert_eq!(
                meta.modified()
                    .unwrap()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as u64,
                stamp(place).mtime_ms
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(meta.permissions().mode() & 0o777, 0o600);
            }
        }
        // Only the files, nothing partial beside them.
        for d in 0..4 {
            let count = std::fs::read_dir(dir.join(format!("d{d}")))
                .unwrap()
                .count();
            let extra = usize::from(d < 2);
            assert_eq!(count, SYNCED_TOGETHER + 1 + extra, "d{d} holds other files");
        }
        assert_eq!(synced_in(&dir), 0, "a file written back was synced");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_handed_over_are_written_when_dropped_unfinished() {
        let dir = empty_dir("bucketsync-writers-drop");
        let mut writers = FileWriters::start(WRITERS, Durability::OnDisk);
        for i in 0..20 {
            writers.write(i, dir.join(format!("f{i}")), vec![7; 4096], None, None);
        }
        drop(writers);
        for i in 0..20 {
            assert_eq!(
                std::fs::read(dir.join(format!("f{i}"))).unwrap(),
                vec![7; 4096]
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_waits_to_be_written_is_bounded() {
        assert!(fits(0, QUEUED_BYTES * 4), "a big file goes alone");
        assert!(fits(QUEUED_BYTES - 10, 10));
        assert!(!fits(QUEUED_BYTES - 10, 11));
        assert!(!fits(1, QUEUED_BYTES));
        // A caller that waits goes on once the bytes before it are written.
        let queued = Arc::new(Queued::default());
        queued.add(QUEUED_BYTES - 10);
        let other = Arc::clone(&queued);
        let waiter = std::thread::spawn(move || other.add(QUEUED_BYTES + 1));
        queued.remove(QUEUED_BYTES - 10);
        waiter.join().unwrap();
        assert_eq!(*queued.bytes.lock().unwrap(), QUEUED_BYTES + 1);
    }

    /// A stamped file is written with its time and permissions, from a writer thread or the
    /// caller's.
    #[test]
    fn a_stamped_file_shows_with_its_time_and_permissions() {
        let dir = empty_dir("bucketsync-writers-stamp");
        let stamp = |i: u64| Stamp {
            mtime_ms: 1_500_000_000_123 + i * 1000,
            mode: if i.is_multiple_of(2) { 0o640 } else { 0o444 },
        };
        let mut writers = FileWriters::start(WRITERS, Durability::OnDisk);
        for i in 0..10 {
            writers.write(
                i,
                dir.join(format!("f{i}")),
                vec![1; 100],
                Some(stamp(i as u64)),
                None,
            );
        }
        let outcomes = writers.finish();
        assert_eq!(outcomes.len(), 10);
        assert!(
            outcomes.iter().all(|(_, o)| matches!(o, Ok(true))),
            "{outcomes:?}"
        );
        // With no writer thread, on the caller's.
        assert!(matches!(
            write_whole(
                &dir.join("f10"),
                &[2; 100],
                Some(stamp(10)),
                None,
                Durability::OnDisk
            ),
            Ok(true)
        ));
        for i in 0..=10u64 {
            let meta = std::fs::metadata(dir.join(format!("f{i}"))).unwrap();
            let mtime = meta
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            assert_eq!(mtime.as_millis() as u64, stamp(i).mtime_ms, "file {i}");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(meta.permissions().mode() & 0o777, stamp(i).mode, "file {i}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A file saved at the path after the caller looked (here: made where nothing was) is
    /// not replaced: the write fails, the saved file stays, and no partial file is left.
    #[test]
    fn a_path_changed_since_the_caller_looked_is_not_replaced() {
        let dir = empty_dir("bucketsync-writers-expect");
        let path = dir.join("saved");
        let expect = Expect::of(&path);
        assert_eq!(expect, Some(Expect::Absent));
        std::fs::write(&path, b"the user's save").unwrap();
        let written = write_whole(&path, b"fetched", None, expect, Durability::OnDisk);
        let err = written.unwrap_err().to_string();
        assert!(err.contains("changed during the sync"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"the user's save");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no partial file left"
        );
        // Still as looked at: replaced.
        let expect = Expect::of(&path);
        assert!(write_whole(&path, b"fetched", None, expect, Durability::OnDisk).is_ok());
        assert_eq!(std::fs::read(&path).unwrap(), b"fetched");
    }
}
