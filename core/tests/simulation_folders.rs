//! The folder world of the simulation: two-way folder sync (`Session::sync_folder`) between
//! two to four devices, each with a folder of its own on disk, under a seeded schedule.
//!
//! The devices' users create, edit, rename and delete files, delete whole folders, turn a
//! folder into a file and a file into a folder (a file written at a folder's name, or a
//! folder made where a file is), the same paths on several devices at once, and save files
//! while a sync runs (just before one of its requests); now and then two devices
//! edit one file to contents of the same size with the same modification time. Syncs are cut
//! off after a drawn number of requests (the connection drops: the sync fails part way, its
//! downloads made and its base not written), and devices restart from their state files.
//! Every write is a unique token, so that where a version went can be told.
//!
//! Then the faults stop and every device syncs, round after round, until a whole round moves
//! nothing. What must hold:
//! - every device ends with the same tree;
//! - every file holds exactly one written version (none half written);
//! - **no edit is lost**: every version no user replaced or deleted on a disk that showed it
//!   is in the tree (under its name, or as a conflict copy);
//! - **nothing deleted comes back**: a version a user replaced or deleted is not in the tree
//!   (unless a user had moved it elsewhere, where it lives on).
//!
//! `BUCKETSYNC_SIM_FOLDER_SEEDS=N` runs N seeds (default 100; each syncs real folders, so a
//! seed costs about a tenth of a second); `BUCKETSYNC_SIM_FOLDER_SEED=S` runs seed S alone and
//! prints its schedule; `BUCKETSYNC_SIM_KEEP_GOING=1` lists every failing seed;
//! `BUCKETSYNC_SIM_FOLDER_FLIPS=0` draws seeds without folders turned into files and back, as
//! the seeds in [`REGRESSIONS`] were found; `BUCKETSYNC_SIM_FROM=K` starts the seeds at K.

#![cfg(feature = "backup")]

mod sim;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bucketsync::driver::Transport;
use bucketsync::folder::FolderBucket;
use bucketsync::folder_sync::{FolderOptions, FolderReport, BASE_FILE};
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::{Category, Error, Method, OpenMode, Request, Response, Timestamp, VaultKey};
use futures::executor::block_on;
use sim::Rng;

/// The paths users write. Folders among them are made as needed.
const PATHS: [&str; 7] = [
    "a.txt",
    "b.txt",
    "notes/c.md",
    "notes/d.md",
    "notes/deep/e.txt",
    "photos/f.jpg",
    "photos/g.jpg",
];
/// The folders a user may delete whole.
const FOLDERS: [&str; 3] = ["notes", "notes/deep", "photos"];
const START_MS: u64 = 1_800_000_000_000;
const STEPS: usize = 70;
const FOLDER: &str = "shared";

/// Seeds that fail today, passed over by seed-count runs and run by the ignored test below
/// (in the world that found them, with flips): none.
const STILL_FAILING: &[u64] = &[];
/// Seeds that failed once, run by every test run:
/// - 193, 282, 395 (and 142): the model's fault. Two users moved one file to two paths at once,
///   and it rightly lived on at both; the model allowed one path only.
/// - 233, 478: a conflict copy a user deleted came back. A device unchanged since it synced a
///   file took the vault's later version for one made without seeing its own (and kept its own
///   as a copy, of the same name as the one deleted), because a version between the two had
///   been merged away before it synced: the line of `parent`s was cut, not forked.
/// - 1119, 1248, 1546, 1716: an edit lost, or two devices apart for good. After a conflict of
///   two edits of the same size and time, the copy had the size and time of the name's
///   version; a user who moved it over the name made no change that size and time could see.
/// - 2068, 4753: a conflict copy a user deleted came back. A deletion whose push the guard
///   stopped was agreed by the next run without noting the version it deleted, so a file
///   made there again named no parent, and an untouched device took it for an overlap.
/// - 2258, 3775, 4971: the model's fault. A sync the guard stopped had acted; its rerun
///   reported nothing, and the round counted as quiet one round early.
///
/// All found before users turned folders into files and back, and run as drawn then.
const REGRESSIONS: &[u64] = &[
    142, 193, 233, 282, 395, 478, 1119, 1248, 1546, 1716, 2068, 2258, 3775, 4753, 4971,
];
/// Seeds that failed once with folders turned into files and back:
/// - 97: a file made where the vault had deleted a folder, while files below it were made
///   again: the file stayed in the way of the folder ("File exists" at every sync).
/// - 170: a device's file, already kept as a conflict copy by another device (whose folder
///   kept the name), met a third device's file at that name made without seeing it, and was
///   kept as a second copy of the same name (changed during the sync, at every sync).
/// - 1316: a conflict copy a user deleted came back: the device whose version it was met the
///   overlap later and made the copy again (an overlap now takes a copy another device made of
///   the same version, live or deleted, as ours kept).
/// - 2308: as 170, with both sides changed: a file sent by a sync cut off, kept as a copy by
///   the device whose folder won the name, was copied again by its own device (a copy another
///   device made with our bytes is now taken as ours kept, there as in an overlap).
/// - 2874: a file moved by its user to a name another device had just given a new file was
///   replaced by it, unseen: the new file named the moved one's bytes as the version it
///   replaced (deleted there before), which read as "made from our unsent file".
/// - 1273: an edit lost. It lost in the vault to a concurrent version, whose device then
///   deleted the path (a folder turned into a file) before the edit's device saw that version:
///   a deletion named nothing, and read as made knowing the edit. Deletions now leave a note
///   naming the version deleted and its line (FORMAT §15).
/// - 130, 209, 777, 1719, 1915: deleted files that came back under a first version of that
///   fix, which kept an edit wherever a deletion's line did not reach it: cut lines (the
///   deleting device's own short-lived versions), an edit kept already as a copy of another
///   name and deleted there, an edit deleted once knowingly and the path made again since
///   from an older version.
/// - 3345, 7412, 7659: deleted files that came back under that fix, found by a 5,000-seed
///   run: a deletion whose line passed over an earlier deletion of the version a device
///   held (the path made again since from an older version; a note now lists the versions
///   deleted before it), and a line on which the same bytes came back (a copy moved over the
///   name: ours anywhere on the line now means made from ours).
/// - 1732: the model's fault. A sync after a restart pushed what the sync cut off before it
///   had left pending, with nothing to report at the folder level, and the round counted as
///   quiet one round early.
/// - 6357: two devices apart for good. After a conflict of two edits of the same size and
///   time, each device moved a different one of the two conflict copies (of one size and
///   time) onto a third name; the second move left that name with the size and time its base
///   held, so it was not seen as a change. The base now keeps each file's inode: another file
///   at the name, holding other bytes than agreed, is a change.
const FLIP_REGRESSIONS: &[u64] = &[
    97, 130, 170, 209, 777, 1273, 1316, 1719, 1732, 1915, 2308, 2874, 3345, 6357, 7412, 7659,
];
/// Seeds that failed once in the world that aims saves during syncs at what the sync
/// changes:
/// - 219: a deleted file came back. A device made a new file at a path whose file another
///   device had deleted (the vault's note naming it), with no parent; deleted again, its note
///   read, to a device still holding the first file, as a deletion made without it. A file
///   made where the vault holds a note now names the note's version as its parent.
/// - 7 (and 22% of the first 100 seeds once saves were made at a sync's first read of a
///   pack): **a user's save lost**. A sync checked a path was as its walk saw it before it
///   read the packs, then renamed the file it fetched over the path: a file saved there while
///   the packs came in was replaced. The check now happens again at the rename (a partial
///   file is put in place only while the path holds what was there when the sync decided).
/// - 82: a deleted file came back. A file saved between the walk and the read of its upload
///   was sent with the walk's time, so the next run saw it changed again and sent it once
///   more over a deletion made meanwhile. A file whose size or time differ from the walk's
///   when opened for sending is now left for the next run.
/// - 5, 187: the model's fault. A cut-off download leaves its partial file (`.name.tag.part`)
///   for a resume; the model counted it in the tree, and let a user move it.
const TARGETED_REGRESSIONS: &[u64] = &[5, 7, 82, 187, 219];

static SYNCS: AtomicU64 = AtomicU64::new(0);
static SYNCS_CUT: AtomicU64 = AtomicU64::new(0);
static CONFLICT_COPIES: AtomicU64 = AtomicU64::new(0);
static SAME_SIZE_AND_TIME: AtomicU64 = AtomicU64::new(0);
static RESTARTS: AtomicU64 = AtomicU64::new(0);
static MASS_DELETIONS: AtomicU64 = AtomicU64::new(0);
static FLIPS: AtomicU64 = AtomicU64::new(0);
static MID_SYNC_EDITS: AtomicU64 = AtomicU64::new(0);
static TARGETED_EDITS: AtomicU64 = AtomicU64::new(0);
/// Partial files of cut-off downloads met in the trees checked (left for a resume).
static PARTIAL_FILES_LEFT: AtomicU64 = AtomicU64::new(0);
/// Paths a sync found changed after its walk, and left for the next run.
static CHANGED_MEANWHILE: AtomicU64 = AtomicU64::new(0);

/// A user's write made while a sync runs, just before one of its requests.
struct MidSync {
    /// How many requests go first (`u64::MAX`: made at the sync's first read of a pack, once
    /// it decided, before it writes what it fetches).
    after: u64,
    path: PathBuf,
    content: String,
    /// What the path held before, once written (`None` until then; the write does not happen
    /// where a folder is in the way).
    replaced: Option<Option<Vec<u8>>>,
}

/// The local-folder bucket, dropping the connection after `budget` requests (none: never),
/// and making a user's write (`edit`) while the sync runs. Its waits (retry backoff) move the
/// world's clock instead of taking time.
struct Cut {
    budget: Mutex<Option<u64>>,
    clock: Arc<AtomicU64>,
    edit: Mutex<Option<MidSync>>,
    sent: AtomicU64,
}

impl Cut {
    /// Makes the user's write when its turn has come.
    fn edit_now(&self, request: &Request) {
        let sent = self.sent.fetch_add(1, Ordering::SeqCst);
        let pack_read = request.method == Method::Get && request.url.contains("/p/");
        let mut edit = self.edit.lock().unwrap();
        let Some(e) = edit.as_mut().filter(|e| {
            (e.after == sent || (e.after == u64::MAX && pack_read)) && e.replaced.is_none()
        }) else {
            return;
        };
        if e.path.is_dir() || !e.path.parent().is_some_and(make_folders) {
            return;
        }
        let before = std::fs::read(&e.path).ok();
        std::fs::write(&e.path, &e.content).unwrap();
        let mtime = self.clock.load(Ordering::SeqCst);
        let file = std::fs::File::options().write(true).open(&e.path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_millis(mtime))
            .unwrap();
        e.replaced = Some(before);
    }
}

impl Transport for Cut {
    async fn send(&self, request: Request) -> bucketsync::Result<Response> {
        self.edit_now(&request);
        {
            let mut budget = self.budget.lock().unwrap();
            if let Some(left) = budget.as_mut() {
                if *left == 0 {
                    return Err(Error::Transport {
                        category: Category::Network,
                        message: "the connection dropped".into(),
                    });
                }
                *left -= 1;
            }
        }
        FolderBucket.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }
}

/// What became of one written version.
#[derive(Default)]
struct Version {
    /// The paths where a user replaced or deleted it, on a disk that showed it there.
    killed_at: BTreeSet<String>,
    /// Where it was written.
    written_at: String,
    /// The paths users moved it to (two users may move it to two places at once, and then it
    /// lives on at both).
    moved_to: BTreeSet<String>,
}

/// Whether `path` is a partial file a download left (`.<name>.<tag>.part`): the sync's own,
/// never synced, and no user's to move.
fn is_partial(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.starts_with('.') && name.ends_with(".part")
}

/// Whether `rel` is a conflict copy's name.
fn is_copy(rel: &str) -> bool {
    rel.contains(" (conflict ")
}

struct Device {
    session: Option<Session>,
    dir: PathBuf,
    state: PathBuf,
}

struct World {
    rng: Rng,
    /// Kept alive for the seed: the bucket, the folders, the state files.
    _root: tempfile::TempDir,
    store: String,
    key: VaultKey,
    clock: Arc<AtomicU64>,
    devices: Vec<Device>,
    versions: BTreeMap<String, Version>,
    written: u64,
    verbose: bool,
    trace: DefaultHasher,
    /// A sync the guard stopped ran again once confirmed: the stopped run may have acted,
    /// and its report is lost with its error, so a quiet round does not count it as quiet.
    guarded: bool,
    /// Whether users turn folders into files and back (a stream of its own, so that the
    /// seeds that failed before flips were drawn replay as they were found).
    flips: Option<Rng>,
    /// Whether users save, while a sync runs, files the sync is likely to change (a stream
    /// of its own again, for the seeds found before).
    targeted: Option<Rng>,
}

/// The worlds the folder simulation has drawn, oldest first: each later one draws all the
/// earlier one does, and more from a stream of its own, so that a seed found in an earlier
/// world replays there as it was found.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Era {
    /// Before users turned folders into files and back.
    Plain,
    /// With flips, and saves during syncs at random paths.
    Flips,
    /// With saves during syncs at paths the sync is likely to change.
    Targeted,
}

impl World {
    fn new(seed: u64, verbose: bool, era: Era) -> World {
        let mut rng = Rng(seed);
        let root = tempfile::tempdir().unwrap();
        let store = format!("file://{}", root.path().join("bucket").display());
        let key = VaultKey::from_bytes(rng.seed());
        let count = 2 + rng.below(3) as usize;
        let devices = (0..count)
            .map(|d| {
                let dir = root.path().join(format!("device{d}"));
                std::fs::create_dir_all(&dir).unwrap();
                Device {
                    session: None,
                    dir,
                    state: root.path().join(format!("state{d}")),
                }
            })
            .collect();
        let mut world = World {
            rng,
            _root: root,
            store,
            key,
            clock: Arc::new(AtomicU64::new(START_MS)),
            devices,
            versions: BTreeMap::new(),
            written: 0,
            verbose,
            trace: DefaultHasher::new(),
            guarded: false,
            flips: (era >= Era::Flips).then_some(Rng(seed ^ 0x5eed_f11b)),
            targeted: (era >= Era::Targeted).then_some(Rng(seed ^ 0x7a49_e7ed)),
        };
        for d in 0..count {
            world.open(d);
        }
        world
    }

    fn log(&mut self, line: String) {
        line.hash(&mut self.trace);
        if self.verbose {
            eprintln!("{line}");
        }
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Opens device `d`'s session from its state file (the first creates the vault).
    fn open(&mut self, d: usize) {
        let clock = Arc::clone(&self.clock);
        let seed = self.rng.seed();
        let mode = if d == 0 && !self.devices[0].state.exists() {
            OpenMode::Create
        } else {
            OpenMode::JoinOrCreate
        };
        let device = &mut self.devices[d];
        device.session = None;
        let name = format!("device{d}");
        let session = Session::open(SessionOptions {
            device: Some(&name),
            mode,
            clock: Arc::new(move || Timestamp(clock.load(Ordering::SeqCst))),
            entropy_seed: Some(seed),
            environment: false,
            ..SessionOptions::new(
                &self.store,
                &self.key,
                StateLocation::File {
                    path: &device.state,
                    wait: false,
                },
            )
        })
        .unwrap_or_else(|e| panic!("device{d} could not open its state: {e}"));
        device.session = Some(session);
    }

    /// A fresh version: a unique token, padded to `len` bytes when given.
    fn version(&mut self, len: Option<usize>) -> String {
        self.written += 1;
        let token = format!("v{}:", self.written);
        // Now and then (the targeted world's stream) a file too big to live in its record,
        // whose bytes go into packs: a sync reads packs after its walk.
        let big = len.is_none() && self.targeted.as_mut().is_some_and(|t| t.chance(250));
        let len = len.unwrap_or(token.len() + self.rng.below(40) as usize);
        let len = if big { len + 5_000 } else { len };
        format!("{token}{}", "x".repeat(len.saturating_sub(token.len())))
    }

    /// The version a file holds (its token), if it holds one.
    fn token_of(bytes: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (token, _) = text.split_once(':')?;
        Some(format!("{token}:"))
    }

    /// Marks what `path` holds on device `d` (a file, or every file below a folder) as replaced
    /// or deleted by its user.
    fn kill(&mut self, d: usize, path: &Path) {
        for file in files_below(path) {
            let rel = relative(&self.devices[d].dir, &file);
            if let Some(token) = std::fs::read(&file).ok().and_then(|b| Self::token_of(&b)) {
                self.versions
                    .entry(token)
                    .or_default()
                    .killed_at
                    .insert(rel);
            }
        }
    }

    /// Writes `content` at `rel` on device `d` with modification time `mtime`, replacing what
    /// was there (a folder in the way is deleted whole).
    fn write(&mut self, d: usize, rel: &str, content: &str, mtime: u64) {
        let path = self.devices[d].dir.join(rel);
        if path.exists() {
            self.kill(d, &path);
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            }
        }
        let Some(parent) = path.parent() else { return };
        // A file in the way of the folders: the write cannot happen, or, where users turn
        // files into folders, the file goes and a folder takes its name.
        if !make_folders(parent) {
            let dir = self.devices[d].dir.clone();
            let in_way = parent
                .ancestors()
                .find(|a| a.starts_with(&dir) && a.is_file());
            let (Some(_), Some(file)) = (&self.flips, in_way) else {
                return;
            };
            let file = file.to_path_buf();
            self.kill(d, &file);
            std::fs::remove_file(&file).unwrap();
            FLIPS.fetch_add(1, Ordering::Relaxed);
            self.log(format!(
                "d{d} turns the file {} into a folder",
                relative(&dir, &file)
            ));
            if !make_folders(parent) {
                return;
            }
        }
        std::fs::write(&path, content).unwrap();
        let token = Self::token_of(content.as_bytes()).expect("a version");
        self.versions.insert(
            token,
            Version {
                written_at: rel.to_owned(),
                ..Version::default()
            },
        );
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_millis(mtime))
            .unwrap();
        self.log(format!(
            "d{d} writes {rel}: {}",
            &content[..content.find(':').unwrap() + 1]
        ));
    }

    fn step(&mut self) {
        let tick = 1 + self.rng.below(5_000);
        self.clock.fetch_add(tick, Ordering::SeqCst);
        let d = self.rng.below(self.devices.len() as u64) as usize;
        match self.rng.below(100) {
            0..=29 => {
                let mut rel = PATHS[self.rng.below(PATHS.len() as u64) as usize];
                // Now and then, a file where a folder is (or was).
                let flip = self.flips.as_mut().and_then(|f| {
                    f.chance(120)
                        .then(|| FOLDERS[f.below(FOLDERS.len() as u64) as usize])
                });
                if let Some(folder) = flip {
                    rel = folder;
                    if self.devices[d].dir.join(rel).is_dir() {
                        FLIPS.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let content = self.version(None);
                let now = self.now();
                self.write(d, rel, &content, now);
            }
            30..=37 => self.delete_file(d),
            38..=41 => {
                let rel = FOLDERS[self.rng.below(FOLDERS.len() as u64) as usize];
                let path = self.devices[d].dir.join(rel);
                if path.is_dir() {
                    self.kill(d, &path);
                    std::fs::remove_dir_all(&path).unwrap();
                    self.log(format!("d{d} deletes the folder {rel}"));
                }
            }
            42..=47 => self.rename(d),
            48..=51 => self.same_size_and_time(),
            52..=55 => {
                RESTARTS.fetch_add(1, Ordering::Relaxed);
                self.log(format!("d{d} restarts"));
                self.open(d);
            }
            _ => {
                let cut = self.rng.chance(200).then(|| self.rng.below(30));
                // Now and then a user saves a file while the sync runs.
                let edit = self.flips.as_mut().and_then(|f| {
                    f.chance(150).then(|| {
                        let rel = PATHS[f.below(PATHS.len() as u64) as usize];
                        (rel, f.below(12))
                    })
                });
                let edit = edit.or_else(|| self.targeted_edit(d));
                self.sync_editing(d, cut, edit);
            }
        }
    }

    /// Now and then, a path for a user to save while device `d`'s sync runs, at its first
    /// read of a pack (after its walk, before it writes what it fetched): one whose file
    /// differs from another device's, which the sync is likely to download.
    fn targeted_edit(&mut self, d: usize) -> Option<(&'static str, u64)> {
        let count = self.devices.len() as u64;
        let t = self.targeted.as_mut()?;
        if !t.chance(150) {
            return None;
        }
        let other = t.below(count) as usize;
        let (here, there) = (&self.devices[d].dir, &self.devices[other].dir);
        let differing: Vec<&'static str> = PATHS
            .iter()
            .copied()
            .filter(|rel| std::fs::read(here.join(rel)).ok() != std::fs::read(there.join(rel)).ok())
            .collect();
        if differing.is_empty() {
            return None;
        }
        let rel = differing[t.below(differing.len() as u64) as usize];
        TARGETED_EDITS.fetch_add(1, Ordering::Relaxed);
        Some((rel, u64::MAX))
    }

    /// Deletes one of the files on device `d` (conflict copies included).
    fn delete_file(&mut self, d: usize) {
        let files = self.files(d);
        if files.is_empty() {
            return;
        }
        let rel = files[self.rng.below(files.len() as u64) as usize].clone();
        let path = self.devices[d].dir.join(&rel);
        self.kill(d, &path);
        std::fs::remove_file(&path).unwrap();
        self.log(format!("d{d} deletes {rel}"));
    }

    /// Moves one of the files on device `d` to one of the paths (replacing a file there).
    fn rename(&mut self, d: usize) {
        let files = self.files(d);
        if files.is_empty() {
            return;
        }
        let from = files[self.rng.below(files.len() as u64) as usize].clone();
        let to = PATHS[self.rng.below(PATHS.len() as u64) as usize];
        let dir = self.devices[d].dir.clone();
        let (source, target) = (dir.join(&from), dir.join(to));
        if from == to || target.is_dir() || !target.parent().is_some_and(make_folders) {
            return;
        }
        if target.exists() {
            self.kill(d, &target);
        }
        if let Some(token) = std::fs::read(&source).ok().and_then(|b| Self::token_of(&b)) {
            self.versions
                .entry(token)
                .or_default()
                .moved_to
                .insert(to.to_owned());
        }
        std::fs::rename(&source, &target).unwrap();
        self.log(format!("d{d} moves {from} to {to}"));
    }

    /// Two devices whose folders hold the same file edit it to contents of the same size,
    /// with the same modification time.
    fn same_size_and_time(&mut self) {
        let count = self.devices.len() as u64;
        let (a, b) = (
            self.rng.below(count) as usize,
            self.rng.below(count) as usize,
        );
        if a == b {
            return;
        }
        let rel = PATHS[self.rng.below(PATHS.len() as u64) as usize];
        let (on_a, on_b) = (self.devices[a].dir.join(rel), self.devices[b].dir.join(rel));
        let same = match (std::fs::read(&on_a), std::fs::read(&on_b)) {
            (Ok(x), Ok(y)) => x == y && on_a.is_file(),
            _ => false,
        };
        if !same {
            return;
        }
        SAME_SIZE_AND_TIME.fetch_add(1, Ordering::Relaxed);
        let len = 40 + self.rng.below(20) as usize;
        let mtime = self.now();
        let first = self.version(Some(len));
        let second = self.version(Some(len));
        self.write(a, rel, &first, mtime);
        self.write(b, rel, &second, mtime);
    }

    /// The files in device `d`'s folder (relative paths), the base file aside.
    fn files(&self, d: usize) -> Vec<String> {
        let dir = &self.devices[d].dir;
        files_below(dir)
            .into_iter()
            .filter(|p| !is_partial(p))
            .map(|p| relative(dir, &p))
            .filter(|rel| !rel.starts_with(BASE_FILE))
            .collect()
    }

    /// Syncs device `d`'s folder, the connection dropping after `cut` requests when given.
    fn sync(&mut self, d: usize, cut: Option<u64>) -> Option<FolderReport> {
        self.sync_editing(d, cut, None)
    }

    /// Syncs device `d`'s folder as [`World::sync`] does, a user writing `edit` (a path and
    /// after how many requests) while it runs.
    fn sync_editing(
        &mut self,
        d: usize,
        cut: Option<u64>,
        edit: Option<(&str, u64)>,
    ) -> Option<FolderReport> {
        SYNCS.fetch_add(1, Ordering::Relaxed);
        if cut.is_some() {
            SYNCS_CUT.fetch_add(1, Ordering::Relaxed);
        }
        let edit = edit.map(|(rel, after)| {
            let content = self.version(None);
            (
                rel.to_owned(),
                MidSync {
                    after,
                    path: self.devices[d].dir.join(rel),
                    content,
                    replaced: None,
                },
            )
        });
        let edited = edit.as_ref().map(|(rel, _)| rel.clone());
        let transport = Cut {
            budget: Mutex::new(cut),
            clock: Arc::clone(&self.clock),
            edit: Mutex::new(edit.map(|(_, e)| e)),
            sent: AtomicU64::new(0),
        };
        let device = &self.devices[d];
        let session = device.session.as_ref().expect("open");
        let run = || {
            block_on(session.sync_folder(
                &device.dir,
                FOLDER,
                &FolderOptions::default(),
                &transport,
                4,
                |_, _| {},
            ))
        };
        let mut outcome = run();
        if let Err(Error::MassDeletion { .. } | Error::FolderMassDeletion { .. }) = outcome {
            // The guard stops a sync that deletes most of the folder, and a push that deletes
            // most of the vault (a folder of a few files deleted whole does): the user reads
            // why and tells it to go on.
            MASS_DELETIONS.fetch_add(1, Ordering::Relaxed);
            self.guarded = true;
            session.confirm_deletions().unwrap();
            *transport.budget.lock().unwrap() = None;
            outcome = run();
        }
        // The user's write, if it happened: a version written, what it replaced killed.
        let made = transport.edit.lock().unwrap().take();
        if let (
            Some(rel),
            Some(MidSync {
                content,
                replaced: Some(before),
                ..
            }),
        ) = (edited, made)
        {
            MID_SYNC_EDITS.fetch_add(1, Ordering::Relaxed);
            if let Some(old) = before.as_deref().and_then(Self::token_of) {
                self.versions
                    .entry(old)
                    .or_default()
                    .killed_at
                    .insert(rel.clone());
            }
            let token = Self::token_of(content.as_bytes()).expect("a version");
            self.versions.insert(
                token,
                Version {
                    written_at: rel.clone(),
                    ..Version::default()
                },
            );
            self.log(format!(
                "d{d} writes {rel} during its sync: {}",
                &content[..content.find(':').unwrap() + 1]
            ));
        }
        match outcome {
            Ok(report) => {
                CONFLICT_COPIES.fetch_add(report.conflicts.len() as u64, Ordering::Relaxed);
                let meanwhile = report
                    .errors
                    .iter()
                    .filter(|(_, e)| e.to_string().contains("changed during the sync"))
                    .count();
                CHANGED_MEANWHILE.fetch_add(meanwhile as u64, Ordering::Relaxed);
                self.log(format!(
                    "d{d} syncs: up {} down {} deleted here {} there {} conflicts {:?} errors {:?}",
                    report.uploaded,
                    report.downloaded,
                    report.deleted_here,
                    report.deleted_there,
                    report.conflicts,
                    report.errors
                ));
                Some(report)
            }
            Err(e) => {
                assert!(
                    cut.is_some(),
                    "d{d}'s sync failed with nothing cut off: {e}"
                );
                self.log(format!("d{d} sync cut off after {cut:?} requests: {e}"));
                None
            }
        }
    }

    /// Every device syncs, round after round, until two whole rounds in a row move nothing:
    /// a round's syncs may push what an earlier sync, cut off, left pending (seed 1732: the
    /// folder reports count none of it), which only the next round brings to the others.
    fn quiesce(&mut self) {
        self.log("quiesce".into());
        let mut quiet = 0;
        for _ in 0..13 {
            let mut moved = std::mem::take(&mut self.guarded);
            for d in 0..self.devices.len() {
                let report = self.sync(d, None).expect("no cut");
                assert!(
                    report.errors.is_empty(),
                    "d{d}'s sync without faults met errors: {:?}",
                    report.errors
                );
                moved |= report.uploaded
                    + report.downloaded
                    + report.deleted_here
                    + report.deleted_there
                    > 0
                    || !report.conflicts.is_empty()
                    || std::mem::take(&mut self.guarded);
            }
            quiet = if moved { 0 } else { quiet + 1 };
            if quiet == 2 {
                return;
            }
        }
        panic!("the folders did not settle in 13 rounds");
    }

    /// Each device's tree: relative path to content (files) or `None` (folders).
    fn tree(&self, d: usize) -> BTreeMap<String, Option<Vec<u8>>> {
        let dir = &self.devices[d].dir;
        let mut tree = BTreeMap::new();
        let mut stack = vec![dir.clone()];
        while let Some(folder) = stack.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                let rel = relative(dir, &path);
                if rel.starts_with(BASE_FILE) {
                    continue;
                }
                // A download cut off leaves its partial file for the next read to resume
                // (`.<name>.<tag>.part`, never synced); one whose path went since stays.
                if is_partial(&path) {
                    PARTIAL_FILES_LEFT.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if path.is_dir() {
                    tree.insert(rel, None);
                    stack.push(path);
                } else {
                    tree.insert(rel, Some(std::fs::read(&path).unwrap()));
                }
            }
        }
        tree
    }

    fn check(&self) {
        let first = self.tree(0);
        for d in 1..self.devices.len() {
            let tree = self.tree(d);
            assert!(
                tree == first,
                "device{d}'s folder differs from device0's:\n{:?}\n{:?}",
                names(&tree),
                names(&first)
            );
        }
        // Where each version is.
        let mut present: BTreeMap<String, Vec<&String>> = BTreeMap::new();
        for (rel, content) in &first {
            let Some(bytes) = content else { continue };
            let token = Self::token_of(bytes)
                .unwrap_or_else(|| panic!("{rel} holds what nobody wrote: {bytes:?}"));
            assert!(
                self.versions.contains_key(&token),
                "{rel} holds {token}, never written"
            );
            present.entry(token).or_default().push(rel);
        }
        for (token, paths) in &present {
            // Under a name only where it was written or a user moved it: a conflict copy is a
            // copy.
            let version = &self.versions[token];
            for rel in paths.iter().filter(|p| !is_copy(p)) {
                assert!(
                    **rel == version.written_at || version.moved_to.contains(*rel),
                    "{token} is in the folder at {paths:?}; written at {}, moved to {:?}",
                    version.written_at,
                    version.moved_to
                );
            }
        }
        for (token, version) in &self.versions {
            let paths = present.get(token);
            if version.killed_at.is_empty() {
                assert!(
                    paths.is_some(),
                    "{token} was lost: no user replaced or deleted it; the folder holds {:?}",
                    names(&first)
                );
                continue;
            }
            if !version.moved_to.is_empty() {
                continue;
            }
            // Replaced or deleted: gone, but for a conflict copy made of it before (a copy the
            // user did not delete).
            for rel in paths.into_iter().flatten() {
                assert!(
                    is_copy(rel) && !version.killed_at.contains(*rel),
                    "{token} came back at {rel} after a user replaced or deleted it at {:?}: {:?}",
                    version.killed_at,
                    names(&first)
                );
            }
        }
    }
}

/// A tree's paths, each with the token of what it holds.
fn names(tree: &BTreeMap<String, Option<Vec<u8>>>) -> Vec<String> {
    tree.iter()
        .map(|(rel, content)| match content {
            Some(bytes) => format!("{rel}={}", World::token_of(bytes).unwrap_or_default()),
            None => format!("{rel}/"),
        })
        .collect()
}

fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

/// The files at or below `path`.
fn files_below(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(path) else {
        return found;
    };
    let mut entries: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for entry in entries {
        found.extend(files_below(&entry));
    }
    found
}

/// Makes `folder` and its parents; false when a file is in the way.
fn make_folders(folder: &Path) -> bool {
    std::fs::create_dir_all(folder).is_ok() && folder.is_dir()
}

/// Runs a seed; `BUCKETSYNC_SIM_FOLDER_FLIPS=0` draws it as worlds did before users turned
/// folders into files and back (how [`REGRESSIONS`] were found).
fn run(seed: u64, verbose: bool) -> u64 {
    run_world(seed, verbose, era_asked())
}

/// The era `BUCKETSYNC_SIM_FOLDER_ERA` (`plain`, `flips`) or `BUCKETSYNC_SIM_FOLDER_FLIPS=0`
/// asks for; the newest by default.
fn era_asked() -> Era {
    match std::env::var("BUCKETSYNC_SIM_FOLDER_ERA").as_deref() {
        Ok("plain") => Era::Plain,
        Ok("flips") => Era::Flips,
        _ if std::env::var("BUCKETSYNC_SIM_FOLDER_FLIPS").is_ok_and(|v| v == "0") => Era::Plain,
        _ => Era::Targeted,
    }
}

/// A seed as worlds drew it before users turned folders into files and back.
fn run_without_flips(seed: u64, verbose: bool) -> u64 {
    run_world(seed, verbose, Era::Plain)
}

/// A seed as worlds drew it before saves during syncs were aimed at what the sync changes.
fn run_with_flips(seed: u64, verbose: bool) -> u64 {
    run_world(seed, verbose, Era::Flips)
}

fn run_world(seed: u64, verbose: bool, era: Era) -> u64 {
    let mut world = World::new(seed, verbose, era);
    // The vault exists before the others join.
    world.sync(0, None);
    for _ in 0..STEPS {
        world.step();
    }
    world.quiesce();
    world.check();
    world.trace.finish()
}

/// Defects this world found in folder sync (2026-11-28), fixed with it:
/// - a device that left a file alone kept it as a conflict copy when another device had
///   edited it twice, or deleted and made it again, between its syncs;
/// - **an edit lost**: a sync that sent an edit and then failed to push (a dropped
///   connection, the mass-deletion guard) had already noted the edit as agreed; a deletion
///   made elsewhere meanwhile then deleted it here;
/// - "changed during the sync" without any change: below a folder deleted here, and for a
///   conflict copy another device made under the same name;
/// - a conflict copy two devices sent came back after a deletion (taken for an edit).
///
/// Weaker than it should be: a version a user replaced is allowed on as a conflict copy (one
/// made of it before, on a device that had not seen the replacement, is right; one made after
/// cannot be told from it without causality the model does not keep). Files saved during a
/// sync land before one of its first requests, mostly during its pull: the world's files are
/// small enough to live in their records, so a download makes no request, and no save lands
/// between a sync's look at a file and its write (breaking the "changed meanwhile" check, or
/// writing files in place rather than renaming them, fails no seed: found 2026-11-28).
#[test]
fn folders_synced_two_ways_converge_and_lose_no_edit() {
    let Some(seeds) = sim::run_seeds(
        &["BUCKETSYNC_SIM_FOLDER_SEED"],
        &["BUCKETSYNC_SIM_FOLDER_SEEDS"],
        100,
        STILL_FAILING,
        "simulation_folders",
        run,
    ) else {
        return;
    };
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    eprintln!(
        "folders: {seeds} seeds, {} syncs ({} cut off), {} restarts, {} conflict copies, {} \
         edits of the same size and time, {} mass deletions confirmed, {} folders turned into \
         files or back, {} files saved during a sync ({} aimed at what the sync changes, {} \
         found changed meanwhile), {} partial files of cut-off downloads met in checked trees",
        count(&SYNCS),
        count(&SYNCS_CUT),
        count(&RESTARTS),
        count(&CONFLICT_COPIES),
        count(&SAME_SIZE_AND_TIME),
        count(&MASS_DELETIONS),
        count(&FLIPS),
        count(&MID_SYNC_EDITS),
        count(&TARGETED_EDITS),
        count(&CHANGED_MEANWHILE),
        count(&PARTIAL_FILES_LEFT)
    );
    if seeds >= 100 {
        // The paths the world is for really ran.
        assert!(count(&CONFLICT_COPIES) > 0);
        assert!(count(&SYNCS_CUT) > 0);
        assert!(count(&SAME_SIZE_AND_TIME) > 0);
    }
    if seeds >= 100 && era_asked() >= Era::Flips {
        assert!(count(&FLIPS) > 0);
        assert!(count(&MID_SYNC_EDITS) > 0);
    }
    if seeds >= 100 && era_asked() == Era::Targeted {
        assert!(count(&TARGETED_EDITS) > 0);
        assert!(count(&CHANGED_MEANWHILE) > 0);
    }
}

#[test]
fn every_folder_seed_that_ever_failed_passes() {
    for &seed in REGRESSIONS {
        sim::run_reporting(
            seed,
            "BUCKETSYNC_SIM_FOLDER_FLIPS=0 BUCKETSYNC_SIM_FOLDER_SEED",
            "simulation_folders",
            run_without_flips,
        );
    }
    for &seed in FLIP_REGRESSIONS {
        sim::run_reporting(
            seed,
            "BUCKETSYNC_SIM_FOLDER_ERA=flips BUCKETSYNC_SIM_FOLDER_SEED",
            "simulation_folders",
            run_with_flips,
        );
    }
    for &seed in TARGETED_REGRESSIONS {
        sim::run_reporting(
            seed,
            "BUCKETSYNC_SIM_FOLDER_SEED",
            "simulation_folders",
            run,
        );
    }
}

#[test]
#[ignore = "fails today (see STILL_FAILING): kept to be fixed, not to gate CI"]
fn folder_seeds_that_still_fail() {
    for &seed in STILL_FAILING {
        sim::run_reporting(
            seed,
            "BUCKETSYNC_SIM_FOLDER_ERA=flips BUCKETSYNC_SIM_FOLDER_SEED",
            "simulation_folders",
            run_with_flips,
        );
    }
}
