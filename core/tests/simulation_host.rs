//! The deterministic simulation of the host layers: replicas are [`Session`]s, as an app opens
//! them, whose state is the real file store ([`FileState`]) on a simulated disk, and whose syncs
//! go through a transport that answers from the records simulation's in-memory S3
//! (`tests/sim`) under its fault model.
//!
//! The disk ([`Disk`]) has a real one's semantics: a file's bytes survive a power loss once the
//! file is synced (of bytes appended since, a prefix torn at any byte survives; a cut not
//! synced may come undone), and a name (a file created, renamed, removed) once its folder is
//! synced; a power loss either undoes the names not synced or, as a file system that wrote its
//! folder back on its own, keeps them. Advisory locks belong to a process and die with it.
//! Per seed: 2–4 replicas and a flush interval (0, 200 ms or 5 s: a power loss may drop the
//! writes of the last interval, which the design accepts). At random steps the app puts and
//! deletes, a replica syncs (requests fail, lose their answers, come back twice or are applied
//! and answered with an error; the process may be killed in the middle of a sync, its requests
//! landing later), the process is killed (nothing written is lost), the power fails (what was
//! not synced may be lost), the state is restored from a backup copy taken earlier (a restored
//! phone, a VM snapshot), or a second process of the app opens the same state (the lock must
//! refuse it).
//!
//! Checked: a write the app was told of survives unless it was neither flushed nor pushed
//! when its replica lost power or went back to a backup; after the faults stop and everyone
//! has synced until nothing moves, every replica holds, for each key, the newest write that
//! must survive, or a newer one that may have; and a replica reopened from its disk holds the
//! same. A second process is refused with `Locked`.
//!
//! `BUCKETSYNC_SIM_HOST_SEEDS=N` runs N seeds (default 1,000); `BUCKETSYNC_SIM_HOST_SEED=S` runs
//! seed S alone and prints its schedule; `BUCKETSYNC_SIM_KEEP_GOING=1` lists every failing seed.
//! `BUCKETSYNC_SIM_HOST_BREAK=lock` grants the lock to a second process, to show that the checks
//! notice (about 2% of seeds then fail).

#![cfg(feature = "driver")]

mod sim;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bucketsync::driver::Transport;
use bucketsync::file_system::{FileSystem, FsFile, FsLock};
use bucketsync::session::{Durability, Session, SessionOptions, StateLocation};
use bucketsync::state_store::FileState;
use bucketsync::{Category, Error, Request, Response, Stamp, Timestamp, VaultKey};
use sim::{answer, Bucket, Faults, Rng, STORE};

const START_MS: u64 = 1_800_000_000_000;
const DEFAULT_SEEDS: u64 = 1_000;

static POWER_LOSSES: AtomicU64 = AtomicU64::new(0);
static WRITES_LOST_TO_POWER: AtomicU64 = AtomicU64::new(0);
static RESTORES: AtomicU64 = AtomicU64::new(0);
static KILLS_MID_SYNC: AtomicU64 = AtomicU64::new(0);
static TORN_JOURNALS: AtomicU64 = AtomicU64::new(0);
static SECOND_PROCESSES_REFUSED: AtomicU64 = AtomicU64::new(0);

/// Every seed that ever failed, replayed on every run.
const REGRESSIONS: &[u64] = &[
    656,
    // Two faults the format handled one at a time but not together: an orphaned manifest PUT
    // of a killed process landed after later processes of the same replica had published
    // newer manifests (seq 3 over seq 11 in 6094), and the replica's state went back to a
    // backup before it published again (in 12210 the restore came first). The restored state
    // no longer knew the numbers it had issued, so it republished just above the old copy it
    // found: every peer that trusted the lost manifest reported a rollback and imported
    // nothing from it until its numbers climbed past the lost one (6094: r0 kept device 02's
    // older `k1`). A peer now takes a lower number written after what it trusted (a later
    // clock, no fewer segments). The lost manifest also named the replica's checkpoint, on
    // which segments had been deleted; no manifest named one covering them any more, and
    // whoever had to read them again reported them not found at every sync (12210: its sync
    // failed on its own log). A reader so stranded now lists the checkpoints and adopts one
    // no manifest names that covers them.
    6094, 12210,
];

/// Seeds that fail today, passed over by seed-count runs: none (the last two, 6094 and 12210,
/// are in [`REGRESSIONS`]). A seed found failing goes here, with an ignored test that runs it
/// (`cargo test --release -p bucketsync --features driver --test simulation_host -- --ignored`),
/// until fixed.
const STILL_FAILING: &[u64] = &[];

/// Where each replica's state lives on its disk.
const STATE_PATH: &str = "/data/vault.state";
const JOURNAL_PATH: &str = "/data/vault.state.journal";

/// A device's disk: files (by inode) and their names, each as the processes see it and as a
/// power loss leaves it. File content survives once the file is synced; a name (a file
/// created, renamed, removed) once its folder is synced. Advisory locks belong to a process.
#[derive(Clone, Debug, Default)]
struct Disk {
    inodes: Vec<Inode>,
    names: BTreeMap<PathBuf, usize>,
    durable_names: BTreeMap<PathBuf, usize>,
    /// Lock file → the process holding it and what it wrote there.
    locks: BTreeMap<PathBuf, (u64, String)>,
    /// Snapshots renamed into place so far.
    epoch: u64,
}

#[derive(Clone, Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

impl Disk {
    fn file(&self, path: &str) -> Option<&Inode> {
        self.names.get(Path::new(path)).map(|&i| &self.inodes[i])
    }

    fn journal_len(&self) -> usize {
        self.file(JOURNAL_PATH).map_or(0, |f| f.data.len())
    }

    /// How much of the journal as it is now a power loss would leave at least: the bytes it
    /// shares with what was synced. (Not the synced length: bytes rewritten since, over a torn
    /// tail cut on opening, say, come undone as the old ones.)
    fn durable_journal_len(&self) -> usize {
        let Some(now) = self.file(JOURNAL_PATH) else {
            return 0;
        };
        self.durable_names
            .get(Path::new(JOURNAL_PATH))
            .map_or(0, |&i| {
                let durable = &self.inodes[i].durable;
                now.data
                    .iter()
                    .zip(durable)
                    .take_while(|(a, b)| a == b)
                    .count()
            })
    }

    /// The power fails: names go back to what was synced (or, as a file system that wrote its
    /// folder back by itself, stay); each file keeps what was synced, and of bytes appended
    /// since, a prefix torn at any byte. Returns the appended bytes kept and their total.
    fn lose_power(&mut self, rng: &mut Rng) -> (usize, usize) {
        if rng.chance(500) {
            self.names = self.durable_names.clone();
        }
        let (mut kept, mut extra) = (0, 0);
        for inode in &mut self.inodes {
            if inode.data.starts_with(&inode.durable) {
                let more = inode.data.len() - inode.durable.len();
                let keep = rng.below(more as u64 + 1) as usize;
                inode.data.truncate(inode.durable.len() + keep);
                (kept, extra) = (kept + keep, extra + more);
            } else if !(inode.durable.starts_with(&inode.data) && rng.chance(500)) {
                // Rewritten, or cut and the old length comes back.
                inode.data = inode.durable.clone();
            }
        }
        self.settle();
        (kept, extra)
    }

    /// As the disk is after a restart: what is there is durable, and nobody holds a lock.
    fn settle(&mut self) {
        for inode in &mut self.inodes {
            inode.durable = inode.data.clone();
        }
        self.durable_names = self.names.clone();
        self.locks.clear();
    }

    /// A copy as a power loss that keeps nothing unsynced would leave it.
    fn durable_copy(&self) -> Disk {
        let mut copy = self.clone();
        copy.names = copy.durable_names.clone();
        for inode in &mut copy.inodes {
            inode.data = inode.durable.clone();
        }
        copy.locks.clear();
        copy
    }
}

/// A process's view of a disk.
#[derive(Clone)]
struct SimFs {
    disk: Arc<Mutex<Disk>>,
    process: u64,
    /// Grant every lock, held or not (a broken lock, to show the simulation notices).
    broken_lock: bool,
}

struct SimFile {
    disk: Arc<Mutex<Disk>>,
    inode: usize,
}

struct SimLock {
    disk: Arc<Mutex<Disk>>,
    path: PathBuf,
    process: u64,
}

fn not_found(path: &Path) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string())
}

impl FileSystem for SimFs {
    type File = SimFile;
    type Lock = SimLock;

    fn create_dir_all(&self, _dir: &Path) -> std::io::Result<()> {
        Ok(())
    }

    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let disk = self.disk.lock().unwrap();
        let &inode = disk.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(disk.inodes[inode].data.clone())
    }

    fn open(&self, path: &Path) -> std::io::Result<SimFile> {
        let existing = self.disk.lock().unwrap().names.get(path).copied();
        match existing {
            Some(inode) => Ok(SimFile {
                disk: self.disk.clone(),
                inode,
            }),
            None => self.create(path),
        }
    }

    fn create(&self, path: &Path) -> std::io::Result<SimFile> {
        let mut disk = self.disk.lock().unwrap();
        let inode = disk.inodes.len();
        disk.inodes.push(Inode::default());
        disk.names.insert(path.to_owned(), inode);
        Ok(SimFile {
            disk: self.disk.clone(),
            inode,
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        let inode = disk.names.remove(from).ok_or_else(|| not_found(from))?;
        disk.names.insert(to.to_owned(), inode);
        if to == Path::new(STATE_PATH) {
            disk.epoch += 1;
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        disk.names
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn sync_dir(&self, dir: &Path) {
        let mut disk = self.disk.lock().unwrap();
        let Disk {
            names,
            durable_names,
            ..
        } = &mut *disk;
        durable_names.retain(|p, _| p.parent() != Some(dir));
        for (p, i) in names.iter().filter(|(p, _)| p.parent() == Some(dir)) {
            durable_names.insert(p.clone(), *i);
        }
    }

    fn lock(&self, path: &Path, _wait: bool) -> std::io::Result<Result<SimLock, String>> {
        let mut disk = self.disk.lock().unwrap();
        if let Some((holder, text)) = disk.locks.get(path) {
            if *holder != self.process && !self.broken_lock {
                return Ok(Err(text.clone()));
            }
        }
        disk.locks.insert(
            path.to_owned(),
            (self.process, format!("process {}", self.process)),
        );
        Ok(Ok(SimLock {
            disk: self.disk.clone(),
            path: path.to_owned(),
            process: self.process,
        }))
    }
}

impl FsFile for SimFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        let data = &mut disk.inodes[self.inode].data;
        let end = offset as usize + bytes.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        self.disk.lock().unwrap().inodes[self.inode]
            .data
            .resize(len as usize, 0);
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        let inode = &mut disk.inodes[self.inode];
        inode.durable = inode.data.clone();
        Ok(())
    }
}

impl FsLock for SimLock {
    fn set_holder(&mut self, holder: &str) {
        if let Some(entry) = self.disk.lock().unwrap().locks.get_mut(&self.path) {
            entry.1 = holder.to_owned();
        }
    }
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut disk = self.disk.lock().unwrap();
        if disk
            .locks
            .get(&self.path)
            .is_some_and(|(p, _)| *p == self.process)
        {
            disk.locks.remove(&self.path);
        }
    }
}

/// What the transports of every replica share: the store, the fault model, the time.
struct Net {
    bucket: Bucket,
    rng: Rng,
    faults: Option<Faults>,
    now: Arc<AtomicU64>,
    /// Requests of killed processes that the store may still apply.
    orphans: Vec<Request>,
    /// The process of this replica is killed after this many more requests (the sync in
    /// progress ends with nothing more sent).
    kill: Option<(usize, u64)>,
    killed: bool,
    /// The disk as it stood when the process was killed: what it writes after is not written.
    frozen: Option<Disk>,
    log: Vec<String>,
}

struct SimTransport {
    net: Rc<RefCell<Net>>,
    replica: usize,
    disk: Arc<Mutex<Disk>>,
}

impl Transport for SimTransport {
    async fn send(&self, request: Request) -> bucketsync::Result<Response> {
        let mut net = self.net.borrow_mut();
        let net = &mut *net;
        match net.kill {
            Some((r, 0)) if r == self.replica => {
                net.killed = true;
                net.frozen = Some(self.disk.lock().unwrap().clone());
            }
            Some((r, n)) if r == self.replica => net.kill = Some((r, n - 1)),
            _ => {}
        }
        if net.killed {
            // Killed: this request (and any the sync had out) may still land.
            net.killed = true;
            net.log.push(format!(
                "r{} killed, {:?} left out",
                self.replica, request.kind
            ));
            net.orphans.push(request);
            return Err(Error::Transport {
                category: Category::Network,
                message: "the process was killed".into(),
            });
        }
        let Net {
            bucket,
            rng,
            faults,
            now,
            ..
        } = net;
        bucket.now = now.load(Ordering::Relaxed);
        let (response, what) = answer(rng, faults.as_ref(), &request, |q| bucket.apply(q));
        let status = response.as_ref().map_or(0, |r| r.status);
        net.log.push(format!(
            "r{} {what} {:?} {} -> {status}",
            self.replica, request.kind, request.url
        ));
        response
    }

    async fn sleep(&self, ms: u64) {
        self.net.borrow().now.fetch_add(ms, Ordering::Relaxed);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Every replica ends with it, or with a write that beats it.
    Certain,
    /// Its replica lost power (or went back to a backup) before it was flushed or pushed: it
    /// may be gone.
    Maybe,
}

#[derive(Clone, Debug)]
struct Write {
    stamp: Stamp,
    value: Option<Vec<u8>>,
    fate: Fate,
    writer: usize,
    /// Where the disk stood when the app was told of it: the snapshot count and the journal's
    /// length (it is durable once a later snapshot is, or the journal is flushed that far).
    epoch: u64,
    end: usize,
}

struct Replica {
    session: Option<Session>,
    disk: Arc<Mutex<Disk>>,
    /// A copy of the disk as a power loss would have left it, taken at some earlier step.
    backup: Option<Disk>,
    device: String,
    skew: i64,
    opens: u64,
}

struct Host {
    rng: Rng,
    key: VaultKey,
    net: Rc<RefCell<Net>>,
    now: Arc<AtomicU64>,
    replicas: Vec<Replica>,
    durability: Durability,
    model: BTreeMap<Vec<u8>, Vec<Write>>,
    trace: DefaultHasher,
    verbose: bool,
    /// Processes started so far (each one's id on the disks).
    processes: u64,
    /// `BUCKETSYNC_SIM_HOST_BREAK=lock`: the disks grant a lock that another process holds.
    broken_lock: bool,
}

impl Host {
    fn new(seed: u64, verbose: bool) -> Host {
        let mut rng = Rng(seed);
        let key = VaultKey::from_bytes(rng.seed());
        let count = 2 + rng.below(3) as usize;
        let flush_interval_ms = [0, 200, 5_000][rng.below(3) as usize];
        let now = Arc::new(AtomicU64::new(START_MS));
        let net = Rc::new(RefCell::new(Net {
            bucket: Bucket::default(),
            rng: Rng(seed ^ 0x4057_0000_0000_0006),
            faults: None,
            now: now.clone(),
            orphans: Vec::new(),
            kill: None,
            killed: false,
            frozen: None,
            log: Vec::new(),
        }));
        let replicas = (0..count)
            .map(|i| Replica {
                session: None,
                disk: Arc::default(),
                backup: None,
                device: format!("{:02x}{}", i + 1, "0".repeat(30)),
                skew: rng.below(2_000) as i64 - 1_000,
                opens: 0,
            })
            .collect();
        let mut host = Host {
            rng,
            key,
            net,
            now,
            replicas,
            durability: Durability {
                flush_interval_ms,
                compact_min_bytes: 4 << 10,
            },
            model: BTreeMap::new(),
            trace: DefaultHasher::new(),
            verbose,
            processes: 0,
            broken_lock: std::env::var("BUCKETSYNC_SIM_HOST_BREAK").is_ok_and(|b| b == "lock"),
        };
        host.log(format!(
            "{count} replicas, journal flushed every {flush_interval_ms} ms"
        ));
        for r in 0..count {
            host.open(r);
        }
        host
    }

    fn log(&mut self, line: String) {
        let net_lines: Vec<String> = std::mem::take(&mut self.net.borrow_mut().log);
        for l in net_lines.into_iter().chain([line]) {
            l.hash(&mut self.trace);
            if self.verbose {
                eprintln!("{l}");
            }
        }
    }

    /// Opens replica `r` from its disk, as a process starting does.
    fn open(&mut self, r: usize) {
        let replica = &mut self.replicas[r];
        replica.opens += 1;
        self.processes += 1;
        let fs = SimFs {
            disk: replica.disk.clone(),
            process: self.processes,
            broken_lock: self.broken_lock,
        };
        let (state, saved) = FileState::open_on(fs, Path::new(STATE_PATH), false)
            .unwrap_or_else(|e| panic!("r{r} cannot open its state: {e}"));
        let now = self.now.clone();
        let skew = replica.skew;
        let mut seed = self.rng.seed();
        seed[0] ^= replica.opens as u8;
        let options = SessionOptions {
            device: Some(&replica.device),
            durability: self.durability,
            clock: Arc::new(move || {
                Timestamp(now.load(Ordering::Relaxed).saturating_add_signed(skew))
            }),
            environment: false,
            own_transport: true,
            entropy_seed: Some(seed),
            ..SessionOptions::new(
                STORE,
                &self.key,
                StateLocation::Custom(Box::new(state), saved),
            )
        };
        let session = Session::open(options).unwrap_or_else(|e| panic!("r{r} cannot open: {e}"));
        session.set_mass_deletion_limit(None).unwrap();
        replica.session = Some(session);
    }

    fn session(&self, r: usize) -> &Session {
        self.replicas[r].session.as_ref().expect("open")
    }

    fn write(&mut self, r: usize) {
        let key = format!("k{}", self.rng.below(10)).into_bytes();
        let value = (!self.rng.chance(250)).then(|| self.rng.next().to_le_bytes().to_vec());
        let session = self.session(r);
        match &value {
            Some(v) => session.put(key.clone(), v.clone()),
            None => session.delete(key.clone()),
        }
        .unwrap_or_else(|e| panic!("r{r}'s write failed: {e}"));
        let stamp = session
            .read(|e| e.record(&key).map(|rec| rec.stamp))
            .unwrap()
            .expect("written");
        let (epoch, end, durable_len) = {
            let disk = self.replicas[r].disk.lock().unwrap();
            (disk.epoch, disk.journal_len(), disk.durable_journal_len())
        };
        self.log(format!(
            "r{r} write {key:?} {} (journal {end}, durable {durable_len})",
            value.is_some()
        ));
        self.model.entry(key).or_default().push(Write {
            stamp,
            value,
            fate: Fate::Certain,
            writer: r,
            epoch,
            end,
        });
    }

    fn sync(&mut self, r: usize, kill: bool) {
        let after = self.rng.below(8);
        {
            let mut net = self.net.borrow_mut();
            net.kill = kill.then_some((r, after));
            net.killed = false;
        }
        let transport = SimTransport {
            net: self.net.clone(),
            replica: r,
            disk: self.replicas[r].disk.clone(),
        };
        // Every answer is at hand, so the sync runs to its end in one go.
        let outcome = block_on(self.session(r).sync(&transport, 4, |_| {}));
        let (killed, frozen) = {
            let mut net = self.net.borrow_mut();
            net.kill = None;
            (std::mem::take(&mut net.killed), net.frozen.take())
        };
        let line = match &outcome {
            Ok(report) => format!("  r{r} sync ok: {report}"),
            Err(e) => format!("  r{r} sync failed: {e}"),
        };
        self.log(line);
        if killed {
            KILLS_MID_SYNC.fetch_add(1, Ordering::Relaxed);
            // What the session wrote after the kill never happened.
            if let Some(mut disk) = frozen {
                disk.locks = self.replicas[r].disk.lock().unwrap().locks.clone();
                *self.replicas[r].disk.lock().unwrap() = disk;
            }
            self.kill(r);
        } else if self.net.borrow().faults.is_none() {
            if let Err(e) = outcome {
                panic!("r{r}'s sync failed without faults: {e}");
            }
        }
    }

    /// Ends the process abruptly: what the session would write or flush as it closes never
    /// happens (the disk is put back as it was).
    fn die(&mut self, r: usize) {
        let disk = self.replicas[r].disk.lock().unwrap().clone();
        self.replicas[r].session = None;
        let mut disk_now = self.replicas[r].disk.lock().unwrap();
        *disk_now = disk;
        // The system lets go of a dead process's locks.
        disk_now.locks.clear();
    }

    /// The process dies; what it wrote stays on disk. It starts again.
    fn kill(&mut self, r: usize) {
        self.die(r);
        self.log(format!("r{r} killed, restarts"));
        self.open(r);
    }

    /// The writes of `r` that the app was told of, not pushed now and not durable on its
    /// disk, may be lost.
    fn mark_at_risk(&mut self, r: usize, durable: impl Fn(&Write) -> bool) -> u64 {
        let unpushed = self
            .session(r)
            .read(|e| e.unpushed_keys())
            .unwrap_or_default();
        let mut n = 0;
        for (key, writes) in &mut self.model {
            if !unpushed.contains(key) {
                continue;
            }
            for w in writes
                .iter_mut()
                .filter(|w| w.writer == r && w.fate == Fate::Certain && !durable(w))
            {
                w.fate = Fate::Maybe;
                n += 1;
            }
        }
        n
    }

    /// The power fails: what was not flushed may be lost, the journal torn at any byte.
    fn power_loss(&mut self, r: usize) {
        POWER_LOSSES.fetch_add(1, Ordering::Relaxed);
        let (epoch, durable_end) = {
            let disk = self.replicas[r].disk.lock().unwrap();
            (disk.epoch, disk.durable_journal_len())
        };
        // With a flush interval of 0 every write is flushed before the app is told of it: the
        // session's promise, whatever the disk says.
        let promised = self.durability.flush_interval_ms == 0;
        let at_risk = self.mark_at_risk(r, |w| promised || w.epoch < epoch || w.end <= durable_end);
        WRITES_LOST_TO_POWER.fetch_add(at_risk, Ordering::Relaxed);
        self.die(r);
        let cut = self.replicas[r]
            .disk
            .lock()
            .unwrap()
            .lose_power(&mut self.rng);
        if cut.0 < cut.1 && cut.0 > 0 {
            TORN_JOURNALS.fetch_add(1, Ordering::Relaxed);
        }
        self.log(format!(
            "r{r} power fails: {} of {} unsynced bytes kept, {at_risk} writes at risk",
            cut.0, cut.1
        ));
        self.open(r);
    }

    /// The state goes back to the backup copy (a restored phone, a VM snapshot).
    fn restore_backup(&mut self, r: usize) {
        let Some(backup) = self.replicas[r].backup.clone() else {
            return;
        };
        RESTORES.fetch_add(1, Ordering::Relaxed);
        let at_risk = self.mark_at_risk(r, |_| false);
        self.die(r);
        *self.replicas[r].disk.lock().unwrap() = backup;
        self.log(format!(
            "r{r} restored from its backup, {at_risk} writes at risk"
        ));
        self.open(r);
    }

    /// A second process of the app opens the same state while the first one has it open: the
    /// lock must refuse it. (Granted, it goes on as an app would: it writes, syncs and closes,
    /// and the first process goes on too.)
    fn second_process(&mut self, r: usize) {
        self.processes += 1;
        let fs = SimFs {
            disk: self.replicas[r].disk.clone(),
            process: self.processes,
            broken_lock: self.broken_lock,
        };
        let (state, saved) = match FileState::open_on(fs, Path::new(STATE_PATH), false) {
            Err(Error::Locked { holder, .. }) => {
                SECOND_PROCESSES_REFUSED.fetch_add(1, Ordering::Relaxed);
                return self.log(format!(
                    "r{r} a second process is refused: held by {holder}"
                ));
            }
            Err(e) => panic!("r{r}: a second process failed otherwise than locked out: {e}"),
            Ok(opened) => opened,
        };
        self.log(format!("r{r} a second process opens the state too"));
        let now = self.now.clone();
        let skew = self.replicas[r].skew;
        let options = SessionOptions {
            device: Some(&self.replicas[r].device),
            durability: self.durability,
            clock: Arc::new(move || {
                Timestamp(now.load(Ordering::Relaxed).saturating_add_signed(skew))
            }),
            environment: false,
            own_transport: true,
            entropy_seed: Some(self.rng.seed()),
            ..SessionOptions::new(
                STORE,
                &self.key,
                StateLocation::Custom(Box::new(state), saved),
            )
        };
        let second = Session::open(options).unwrap_or_else(|e| panic!("r{r}'s second: {e}"));
        let key = format!("k{}", self.rng.below(10)).into_bytes();
        let value = self.rng.next().to_le_bytes().to_vec();
        second.put(key.clone(), value.clone()).unwrap();
        let stamp = second
            .read(|e| e.record(&key).map(|rec| rec.stamp))
            .unwrap()
            .expect("written");
        let transport = SimTransport {
            net: self.net.clone(),
            replica: r,
            disk: self.replicas[r].disk.clone(),
        };
        let outcome = block_on(second.sync(&transport, 4, |_| {}));
        drop(second);
        self.log(format!(
            "r{r} the second process wrote {key:?}, synced: {}",
            outcome.is_ok()
        ));
        let (epoch, end) = {
            let disk = self.replicas[r].disk.lock().unwrap();
            (disk.epoch, disk.journal_len())
        };
        self.model.entry(key).or_default().push(Write {
            stamp,
            value: Some(value),
            fate: Fate::Certain,
            writer: r,
            epoch,
            end,
        });
    }

    fn take_backup(&mut self, r: usize) {
        let copy = self.replicas[r].disk.lock().unwrap().durable_copy();
        self.replicas[r].backup = Some(copy);
        self.log(format!("r{r} backup taken"));
    }

    fn random_phase(&mut self, steps: usize) {
        let faults = Faults {
            fail: self.rng.below(150),
            lose_answer: self.rng.below(80),
            truncate: 0,
            duplicate: self.rng.below(60),
            crash: self.rng.below(40),
            compact: 0,
            clock_jump: 0,
            applied_error: self.rng.below(40),
        };
        let crash = faults.crash;
        self.net.borrow_mut().faults = Some(faults);
        for _ in 0..steps {
            self.now.fetch_add(self.rng.below(400), Ordering::Relaxed);
            let r = self.rng.below(self.replicas.len() as u64) as usize;
            match self.rng.below(100) {
                0..=44 => self.write(r),
                45..=79 => {
                    let kill = self.rng.chance(crash * 3);
                    self.sync(r, kill);
                }
                80..=84 => {
                    let orphans = std::mem::take(&mut self.net.borrow_mut().orphans);
                    for orphan in orphans {
                        if self.rng.chance(500) {
                            let mut net = self.net.borrow_mut();
                            net.bucket.now = self.now.load(Ordering::Relaxed);
                            let status = net.bucket.apply(&orphan).status;
                            drop(net);
                            self.log(format!("orphan {:?} lands -> {status}", orphan.kind));
                        }
                    }
                }
                85..=87 => self.take_backup(r),
                88..=89 => self.second_process(r),
                _ => {
                    if self.rng.chance(crash * 5) {
                        self.kill(r);
                    } else if self.rng.chance(crash * 5) {
                        self.power_loss(r);
                    } else if self.rng.chance(crash * 2) {
                        self.restore_backup(r);
                    }
                }
            }
        }
    }

    fn quiesce(&mut self) {
        {
            let mut net = self.net.borrow_mut();
            net.faults = None;
            net.orphans.clear();
        }
        let mut quiet = 0;
        for _ in 0..12 {
            let mut moved = false;
            for r in 0..self.replicas.len() {
                self.sync(r, false);
                let report = self.session(r).last_report().expect("a sync ran");
                moved |= report.pushed > 0 || report.pulled > 0;
            }
            quiet = if moved { 0 } else { quiet + 1 };
            if quiet == 2 {
                return;
            }
        }
        panic!("the replicas did not settle in 12 rounds");
    }

    /// Every replica holds, for each key, the newest certain write or a newer maybe one; and
    /// reopened from its disk, the same.
    fn check(&mut self) {
        for r in 0..self.replicas.len() {
            for reopen in [false, true] {
                if reopen {
                    self.kill(r);
                }
                for (key, writes) in &self.model {
                    let record = self.session(r).read(|e| e.record(key).cloned()).unwrap();
                    let certain = writes
                        .iter()
                        .filter(|w| w.fate == Fate::Certain)
                        .max_by_key(|w| w.stamp);
                    let ok = match (&record, certain) {
                        (None, None) => true,
                        (None, Some(_)) => false,
                        (Some(rec), c) => {
                            c.is_none_or(|c| rec.stamp >= c.stamp)
                                && writes
                                    .iter()
                                    .any(|w| w.stamp == rec.stamp && w.value == rec.value)
                        }
                    };
                    assert!(
                        ok,
                        "r{r} (reopened: {reopen}) holds {key:?} as {record:?}; the newest certain \
                         write is {certain:?}"
                    );
                }
            }
        }
    }
}

/// Runs a future whose every step is ready (the transport answers at once, its sleeps only
/// move the simulated clock).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..1_000_000 {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("a sync waited on something the simulation never gives");
}

fn run(seed: u64, verbose: bool) -> u64 {
    let mut host = Host::new(seed, verbose);
    let steps = 100 + host.rng.below(200) as usize;
    host.random_phase(steps);
    host.log("quiesce".into());
    host.quiesce();
    host.check();
    host.trace.finish()
}

#[test]
fn sessions_on_a_disk_that_loses_power_lose_only_what_was_neither_flushed_nor_pushed() {
    let Some(seeds) = sim::run_seeds(
        &["BUCKETSYNC_SIM_HOST_SEED"],
        &["BUCKETSYNC_SIM_HOST_SEEDS"],
        DEFAULT_SEEDS,
        STILL_FAILING,
        "simulation_host",
        run,
    ) else {
        return;
    };
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    eprintln!(
        "host: {} power losses ({} torn journals, {} writes at risk), {} restores from a \
         backup, {} processes killed mid-sync, {} second processes refused",
        count(&POWER_LOSSES),
        count(&TORN_JOURNALS),
        count(&WRITES_LOST_TO_POWER),
        count(&RESTORES),
        count(&KILLS_MID_SYNC),
        count(&SECOND_PROCESSES_REFUSED),
    );
    if seeds >= 500 {
        assert!(count(&POWER_LOSSES) > seeds);
        assert!(count(&TORN_JOURNALS) > seeds / 10);
        assert!(count(&RESTORES) > seeds / 5);
        assert!(count(&KILLS_MID_SYNC) > seeds / 2);
        assert!(count(&SECOND_PROCESSES_REFUSED) > seeds);
    }
}

#[test]
fn every_host_seed_that_ever_failed_passes() {
    for &seed in REGRESSIONS {
        sim::run_reporting(seed, "BUCKETSYNC_SIM_HOST_SEED", "simulation_host", run);
    }
}

#[test]
fn a_host_seed_replays_to_the_same_trace() {
    assert_eq!(run(11, false), run(11, false));
    assert_ne!(run(11, false), run(12, false));
}
