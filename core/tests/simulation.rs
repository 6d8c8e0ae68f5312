//! The deterministic simulation test (anchors: FoundationDB's simulator, TigerBeetle's VOPR).
//!
//! In one thread, 2–5 replicas share an in-memory S3 (strongly consistent, honours
//! `If-None-Match: *`, paginates listings two keys a page). A seeded scheduler interleaves, step
//! by step, app puts and deletes, syncs, each request delivered, failed (5xx, timeout, reset),
//! applied by the store but its answer lost, reordered, truncated or duplicated, requests of a
//! crashed replica landing late, crash-and-restart of a replica from what is on its disk (also in
//! the middle of a journal append, and between a new snapshot and the journal's reset), clock
//! skew up to ±1 day and backward jumps. Fault rates are drawn per seed. Then the faults stop,
//! every replica syncs until nothing moves, and the checks run: every replica equals the
//! last-write-wins model of every acknowledged write, nothing acknowledged is lost, nothing
//! deleted comes back, nothing is left unpushed, and a sync with nothing new is one LIST.
//! Checkpoints are written under a compaction policy drawn per seed (often every few segments),
//! so compaction runs under every fault too, and at the end a new device joins and must see
//! exactly the model (through a checkpoint when one exists).
//!
//! `BUCKETSYNC_SIM_SEEDS=N` runs N seeds (default 1,000); `BUCKETSYNC_SIM_SEED=S` runs seed S
//! alone and prints its schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use bucketsync::{
    Category, CompactionPolicy, DeviceId, Engine, Entropy, Error, Method, OpenMode, Record,
    Request, RequestKind, Response, RetryPolicy, Stamp, Store, Timestamp, VaultKey,
};

/// Checkpoints written, and adopted by the joining device, over all seeds run in this process.
static CHECKPOINTS_WRITTEN: AtomicU64 = AtomicU64::new(0);
static CHECKPOINTS_ADOPTED: AtomicU64 = AtomicU64::new(0);
static TOMBSTONES_COLLECTED: AtomicU64 = AtomicU64::new(0);
static STARTED_OVER: AtomicU64 = AtomicU64::new(0);
/// Segments deleted because checkpoints cover them.
static SEGMENTS_DELETED: AtomicU64 = AtomicU64::new(0);

/// Every seed that ever failed, replayed on every run.
const REGRESSIONS: &[u64] = &[
    // An orphaned manifest PUT (seq N, one segment) of a crashed replica landed after the
    // replica published seq N again with two segments: peers never fetched the second one.
    1625,
    // A checkpoint held a write made during the sync, after the push: another device passed it
    // on in its own checkpoint, the writer took it as pushed and never sent it in a segment.
    1252,
    // A replica that started over re-applied only its unpushed writes: a write already in a
    // segment that its old id's manifest never named was lost.
    176,
    // A manifest PUT of a replica's old id landed late, after the replica started over: a
    // rollback nobody would ever repair, reported on every sync.
    1457,
    // A crashed replica's manifest PUT landed long after it started over and tombstones were
    // collected, naming a segment of old writes: outside what the format assumes (a request
    // lands within the clock margin), so such orphans are now lost in garbage-collection seeds.
    3033,
    // A replica crashed after a segment landed and before the manifest naming it; it started
    // over and did not re-apply a deletion in that segment: the deletion was older than its
    // last manifest's clock (which ticks when the manifest is written), so it counted as
    // published.
    10912,
];

const ORIGIN: &str = "http://sim.invalid/simbucket";
const STORE: &str = "s3://simbucket/p?endpoint=http://sim.invalid&path_style=true";
const DAY_MS: u64 = 86_400_000;
/// The clock skew of garbage-collection seeds.
const GC_SKEW_MS: u64 = 1_000;
const START_MS: u64 = 1_800_000_000_000;

/// splitmix64: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    fn seed(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        out
    }
}

fn hash_of(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("the engine's URLs decode to UTF-8")
}

/// The in-memory S3: strongly consistent, `If-None-Match: *` honoured, listings paginated.
#[derive(Default)]
struct Bucket {
    objects: BTreeMap<String, Vec<u8>>,
}

fn s3_error(status: u16, code: &str) -> Response {
    Response {
        status,
        headers: Vec::new(),
        body: format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code></Error>").into_bytes(),
    }
}

impl Bucket {
    fn etag(body: &[u8]) -> String {
        format!("\"{:016x}\"", hash_of(body))
    }

    fn apply(&mut self, request: &Request) -> Response {
        let rest = request
            .url
            .strip_prefix(ORIGIN)
            .expect("every request goes to the simulated bucket");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let params: BTreeMap<String, String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), percent_decode(v))
            })
            .collect();
        if params.get("list-type").map(String::as_str) == Some("2") {
            return self.list(&params);
        }
        let key = percent_decode(path.trim_start_matches('/'));
        match request.method {
            Method::Get => match self.objects.get(&key) {
                Some(body) => Response {
                    status: 200,
                    headers: vec![("etag".into(), Self::etag(body))],
                    body: body.clone(),
                },
                None => s3_error(404, "NoSuchKey"),
            },
            Method::Put => {
                if request.header("if-none-match") == Some("*") && self.objects.contains_key(&key) {
                    return s3_error(412, "PreconditionFailed");
                }
                let etag = Self::etag(&request.body);
                self.objects.insert(key, request.body.clone());
                Response {
                    status: 200,
                    headers: vec![("etag".into(), etag)],
                    body: Vec::new(),
                }
            }
            Method::Delete => {
                self.objects.remove(&key);
                Response {
                    status: 204,
                    headers: Vec::new(),
                    body: Vec::new(),
                }
            }
            Method::Head => s3_error(501, "NotImplemented"),
        }
    }

    /// ListObjectsV2, two keys a page; the continuation token is the last key listed.
    fn list(&self, params: &BTreeMap<String, String>) -> Response {
        let prefix = params.get("prefix").cloned().unwrap_or_default();
        let after = params
            .get("continuation-token")
            .cloned()
            .unwrap_or_default();
        let keys: Vec<(&String, &Vec<u8>)> = self
            .objects
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| k.as_str() > after.as_str())
            .take(3)
            .collect();
        let truncated = keys.len() > 2;
        let mut xml = String::from("<?xml version=\"1.0\"?><ListBucketResult>");
        for (key, body) in keys.iter().take(2) {
            xml.push_str(&format!(
                "<Contents><Key>{key}</Key><ETag>{}</ETag><Size>{}</Size></Contents>",
                Self::etag(body),
                body.len()
            ));
        }
        xml.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
        if truncated {
            xml.push_str(&format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                keys[1].0
            ));
        }
        xml.push_str("</ListBucketResult>");
        Response {
            status: 200,
            headers: Vec::new(),
            body: xml.into_bytes(),
        }
    }
}

/// What survives a crash: the snapshot and the journal after it.
struct Disk {
    snapshot: Vec<u8>,
    journal: Vec<u8>,
}

/// Fault rates of one seed, per mille.
struct Faults {
    fail: u64,
    lose_answer: u64,
    truncate: u64,
    duplicate: u64,
    crash: u64,
    compact: u64,
    clock_jump: u64,
}

struct Replica {
    engine: Engine,
    disk: Disk,
    /// Milliseconds this replica's wall clock is off (±1 day, jumps back now and then).
    skew: i64,
    /// Handed out, not yet delivered.
    inflight: Vec<Request>,
}

struct Sim {
    rng: Rng,
    key: VaultKey,
    bucket: Bucket,
    replicas: Vec<Replica>,
    /// Requests of crashed replicas that the store may still apply.
    /// (when the replica crashed, the request).
    orphans: Vec<(u64, Request)>,
    now: u64,
    /// Every acknowledged write: key → (stamp, value) of the greatest stamp.
    model: BTreeMap<Vec<u8>, (Stamp, Option<Vec<u8>>)>,
    trace: DefaultHasher,
    verbose: bool,
    compaction: CompactionPolicy,
    /// Garbage-collection seeds: a grace period of seconds, clocks within a second, and time
    /// that sometimes jumps ahead by a good part of the grace period (so tombstones are
    /// collected and replicas fall silent and start over).
    gc: bool,
}

/// How every replica of a simulation is configured (also after a restart).
fn configure(engine: &mut Engine, compaction: CompactionPolicy) {
    engine.set_retry_policy(retry_policy());
    engine.set_compaction(compaction);
    // Random deletions may pass the guard's share; the guard has tests of its own.
    engine.set_mass_deletion_limit(None).unwrap();
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay_ms: 50,
        max_delay_ms: 400,
    }
}

impl Sim {
    fn new(seed: u64, verbose: bool) -> Sim {
        let mut rng = Rng(seed);
        let key = VaultKey::from_bytes(rng.seed());
        let count = 2 + rng.below(4) as usize;
        let min_tail_segments = 1 + rng.below(6);
        let gc = rng.chance(500);
        let compaction = CompactionPolicy {
            min_tail_segments,
            max_tail_segments: min_tail_segments + rng.below(10),
            bytes_ratio: 1 + rng.below(8),
            segment_overhead_bytes: rng.below(4096),
            ..if gc {
                CompactionPolicy {
                    grace_ms: 10_000 + rng.below(30_000),
                    max_clock_skew_ms: GC_SKEW_MS,
                    ..CompactionPolicy::default()
                }
            } else {
                CompactionPolicy::default()
            }
        };
        let store = Store::parse(STORE).unwrap();
        let replicas = (0..count)
            .map(|i| {
                let mut id = [0u8; 16];
                id[0] = i as u8 + 1;
                let entropy = Entropy::from_seed(rng.seed());
                let mut engine = Engine::new(&key, store.clone(), DeviceId(id), entropy);
                configure(&mut engine, compaction);
                let snapshot = engine.export_state();
                let journal = engine.journal_header().unwrap();
                let max_skew = if gc { GC_SKEW_MS } else { DAY_MS };
                let skew = rng.below(2 * max_skew) as i64 - max_skew as i64;
                Replica {
                    engine,
                    disk: Disk { snapshot, journal },
                    skew,
                    inflight: Vec::new(),
                }
            })
            .collect();
        Sim {
            rng,
            key,
            bucket: Bucket::default(),
            replicas,
            orphans: Vec::new(),
            now: START_MS,
            model: BTreeMap::new(),
            trace: DefaultHasher::new(),
            verbose,
            compaction,
            gc,
        }
    }

    /// Starts a sync on replica `r`. A replica that starts over re-applies its unpushed writes
    /// with fresh stamps: new acknowledged writes, as far as the model goes.
    fn start_sync(&mut self, r: usize) -> Result<(), Error> {
        let now = self.time(r);
        let before = self.replicas[r].engine.device();
        self.replicas[r].engine.start_sync(now)?;
        let engine = &self.replicas[r].engine;
        if engine.device() != before {
            STARTED_OVER.fetch_add(1, Ordering::Relaxed);
            let restamped: Vec<(Vec<u8>, Record)> = engine
                .unpushed_keys()
                .into_iter()
                .map(|k| {
                    let record = engine.record(&k).cloned();
                    (k, record.expect("an unpushed key has a record"))
                })
                .collect();
            self.log(format!(
                "r{r} starts over, {} writes restamped",
                restamped.len()
            ));
            for (key, record) in restamped {
                let entry = self
                    .model
                    .entry(key)
                    .or_insert((record.stamp, record.value.clone()));
                if record.stamp > entry.0 {
                    *entry = (record.stamp, record.value);
                }
            }
        }
        Ok(())
    }

    fn log(&mut self, line: String) {
        line.hash(&mut self.trace);
        if self.verbose {
            eprintln!("{line}");
        }
    }

    fn time(&self, r: usize) -> Timestamp {
        Timestamp(self.now.saturating_add_signed(self.replicas[r].skew))
    }

    /// Drains the replica's outputs the way a host does: journal first, then requests.
    fn drain(&mut self, r: usize) {
        let now = self.time(r);
        let replica = &mut self.replicas[r];
        while let Some(request) = replica.engine.poll_request(now) {
            replica.inflight.push(request);
        }
        if let Some(outcome) = replica.engine.poll_outcome() {
            let line = match outcome {
                Ok(report) => {
                    TOMBSTONES_COLLECTED.fetch_add(report.collected, Ordering::Relaxed);
                    SEGMENTS_DELETED.fetch_add(report.segments_deleted, Ordering::Relaxed);
                    format!("  r{r} sync ok: {report}")
                }
                Err(e) => format!("  r{r} sync failed: {e}"),
            };
            self.persist(r);
            self.log(line);
        }
        self.persist(r);
    }

    fn persist(&mut self, r: usize) {
        let replica = &mut self.replicas[r];
        if let Some(entry) = replica.engine.poll_journal() {
            replica.disk.journal.extend_from_slice(&entry);
        }
    }

    fn write(&mut self, r: usize, faults: &Faults) {
        let key = format!("k{}", self.rng.below(12)).into_bytes();
        let value = (!self.rng.chance(250)).then(|| self.rng.next().to_le_bytes().to_vec());
        let now = self.time(r);
        let engine = &mut self.replicas[r].engine;
        let stamp = match &value {
            Some(v) => engine.put(key.clone(), v.clone(), now),
            None => engine.delete(key.clone(), now),
        };
        if self.rng.chance(faults.crash) {
            // Killed in the middle of the append: the write was never acknowledged.
            let entry = self.replicas[r].engine.poll_journal().unwrap_or_default();
            let cut = self.rng.below(entry.len() as u64) as usize;
            self.replicas[r]
                .disk
                .journal
                .extend_from_slice(&entry[..cut]);
            self.log(format!("r{r} write {key:?} torn at {cut} bytes, crash"));
            return self.restart(r);
        }
        self.persist(r);
        self.log(format!("r{r} write {key:?} {}", value.is_some()));
        let entry = self.model.entry(key).or_insert((stamp, value.clone()));
        if stamp > entry.0 {
            *entry = (stamp, value);
        }
    }

    /// Drops the engine and restores it from the disk, the way a host restarts.
    fn restart(&mut self, r: usize) {
        let store = Store::parse(STORE).unwrap();
        let entropy = Entropy::from_seed(self.rng.seed());
        let replica = &mut self.replicas[r];
        let crashed_at = self.now;
        self.orphans
            .extend(replica.inflight.drain(..).map(|r| (crashed_at, r)));
        let restored = Engine::restore(
            &self.key,
            store,
            &replica.disk.snapshot,
            &replica.disk.journal,
            entropy,
        )
        .unwrap_or_else(|e| panic!("r{r} cannot restart from its disk: {e}"));
        replica.engine = restored.engine;
        configure(&mut replica.engine, self.compaction);
        match restored.journal_keep {
            Some(keep) => replica.disk.journal.truncate(keep),
            None => {
                replica.disk.snapshot = replica.engine.export_state();
                replica.disk.journal = replica.engine.journal_header().unwrap();
            }
        }
        self.log(format!(
            "r{r} restarted ({} entries replayed)",
            restored.replayed
        ));
    }

    fn compact(&mut self, r: usize, crash_between: bool) {
        let replica = &mut self.replicas[r];
        replica.disk.snapshot = replica.engine.export_state();
        if crash_between {
            // The new snapshot is on disk, the old journal not yet reset.
            self.log(format!(
                "r{r} snapshot written, crash before the journal reset"
            ));
            return self.restart(r);
        }
        replica.disk.journal = replica.engine.journal_header().unwrap();
        self.log(format!("r{r} snapshot"));
    }

    /// Delivers one of the replica's requests (chosen at random: reordering), with a fault or
    /// not.
    fn deliver(&mut self, r: usize, faults: Option<&Faults>) {
        let pick = self.rng.below(self.replicas[r].inflight.len() as u64) as usize;
        let request = self.replicas[r].inflight.swap_remove(pick);
        let roll = self.rng.below(1000);
        let (response, what) = match faults {
            Some(f) if roll < f.fail => {
                let r = match self.rng.below(4) {
                    0 => Ok(s3_error(500, "InternalError")),
                    1 => Ok(s3_error(503, "SlowDown")),
                    2 => Err(Error::Transport {
                        category: Category::Timeout,
                        message: "simulated timeout".into(),
                    }),
                    _ => Err(Error::Transport {
                        category: Category::Network,
                        message: "simulated connection reset".into(),
                    }),
                };
                (r, "failed")
            }
            Some(f) if roll < f.fail + f.lose_answer => {
                self.bucket.apply(&request);
                let lost = Err(Error::Transport {
                    category: Category::Timeout,
                    message: "applied, answer lost".into(),
                });
                (lost, "applied, answer lost")
            }
            Some(f) if roll < f.fail + f.lose_answer + f.truncate => {
                let mut response = self.bucket.apply(&request);
                let cut = self.rng.below(response.body.len() as u64 + 1) as usize;
                response.body.truncate(cut);
                (Ok(response), "truncated")
            }
            Some(f) if roll < f.fail + f.lose_answer + f.truncate + f.duplicate => {
                self.bucket.apply(&request);
                (Ok(self.bucket.apply(&request)), "duplicated")
            }
            _ => (Ok(self.bucket.apply(&request)), "delivered"),
        };
        let status = response.as_ref().map_or(0, |r| r.status);
        self.log(format!(
            "r{r} {what} {:?} {} -> {status}",
            request.kind, request.url
        ));
        let now = self.time(r);
        self.replicas[r]
            .engine
            .handle_response(request.id, response, now);
        self.drain(r);
    }

    fn random_phase(&mut self, steps: usize) {
        let faults = Faults {
            fail: self.rng.below(150),
            lose_answer: self.rng.below(80),
            truncate: self.rng.below(60),
            duplicate: self.rng.below(60),
            crash: self.rng.below(40),
            compact: self.rng.below(80),
            clock_jump: self.rng.below(30),
        };
        for _ in 0..steps {
            self.now += self.rng.below(400);
            let r = self.rng.below(self.replicas.len() as u64) as usize;
            match self.rng.below(100) {
                0..=29 => self.write(r, &faults),
                30..=39 => {
                    if self.start_sync(r).is_ok() {
                        self.log(format!("r{r} start sync"));
                    }
                    self.drain(r);
                }
                40..=89 => {
                    if self.replicas[r].inflight.is_empty() {
                        self.drain(r);
                    } else {
                        self.deliver(r, Some(&faults));
                    }
                }
                90..=93 if !self.orphans.is_empty() => {
                    let i = self.rng.below(self.orphans.len() as u64) as usize;
                    let (crashed_at, orphan) = self.orphans.swap_remove(i);
                    // Garbage collection assumes a request lands within the clock margin of
                    // being sent (FORMAT 8.8); later, it is lost.
                    if self.gc && self.now - crashed_at > 2 * GC_SKEW_MS {
                        self.log(format!("orphan {:?} lost", orphan.kind));
                        continue;
                    }
                    let status = self.bucket.apply(&orphan).status;
                    self.log(format!("orphan {:?} lands -> {status}", orphan.kind));
                }
                _ => {
                    if self.rng.chance(faults.crash * 5) {
                        self.log(format!("r{r} crash"));
                        self.restart(r);
                    } else if self.rng.chance(faults.compact * 3) {
                        let between = self.rng.chance(200);
                        self.compact(r, between);
                    } else if self.rng.chance(faults.clock_jump * 10) {
                        if self.gc {
                            // Within the skew the policy allows.
                            let back = self.rng.below(GC_SKEW_MS) as i64;
                            let skew = &mut self.replicas[r].skew;
                            *skew = (*skew - back).max(-(GC_SKEW_MS as i64));
                            self.log(format!("r{r} clock jumps back {back} ms"));
                        } else {
                            let back = self.rng.below(3_600_000) as i64;
                            self.replicas[r].skew -= back;
                            self.log(format!("r{r} clock jumps back {back} ms"));
                        }
                    } else if self.gc && self.rng.chance(100) {
                        let ahead = self.rng.below(self.compaction.grace_ms / 2);
                        self.now += ahead;
                        self.log(format!("{ahead} ms pass"));
                    }
                }
            }
        }
    }

    /// Faults off: each replica finishes what it has in flight, then syncs to completion,
    /// round after round, until a round moves nothing.
    fn quiesce(&mut self) {
        self.orphans.clear();
        for r in 0..self.replicas.len() {
            self.run_out(r);
        }
        let mut quiet_rounds = 0;
        for round in 0..12 {
            let mut moved = false;
            for r in 0..self.replicas.len() {
                let report = self.full_sync(r).unwrap_or_else(|e| {
                    panic!("round {round}: r{r}'s sync failed without faults: {e}")
                });
                moved |= report.pushed > 0 || report.pulled > 0;
            }
            quiet_rounds = if moved { 0 } else { quiet_rounds + 1 };
            if quiet_rounds == 2 {
                return;
            }
        }
        panic!("the replicas did not settle in 12 rounds");
    }

    /// Garbage-collection seeds, once settled: time passes a quarter of the grace period at a
    /// time while the replicas sync and one of them writes (or deletes), so tombstones age past
    /// the grace period and checkpoints collect them. One replica is away meanwhile, with a
    /// write of its own made before it left: when it comes back, nothing collected may come
    /// back with it.
    fn age(&mut self) {
        let calm = Faults {
            fail: 0,
            lose_answer: 0,
            truncate: 0,
            duplicate: 0,
            crash: 0,
            compact: 0,
            clock_jump: 0,
        };
        let count = self.replicas.len();
        let away = (count >= 3).then(|| self.rng.below(count as u64) as usize);
        if let Some(a) = away {
            self.write(a, &calm);
            self.log(format!("r{a} goes away"));
        }
        for _ in 0..16 {
            self.now += self.compaction.grace_ms / 4;
            let w = self.rng.below(count as u64) as usize;
            if Some(w) != away {
                self.write(w, &calm);
            }
            for r in (0..count).filter(|r| Some(*r) != away) {
                let report = self
                    .full_sync(r)
                    .unwrap_or_else(|e| panic!("r{r}'s sync failed without faults: {e}"));
                assert!(report.errors.is_empty(), "r{r}: {report}");
            }
        }
        self.quiesce();
    }

    /// Delivers everything the replica has out, without faults, until its sync ends.
    fn run_out(&mut self, r: usize) {
        loop {
            self.drain(r);
            if !self.replicas[r].inflight.is_empty() {
                self.deliver(r, None);
            } else if let Some(due) = self.replicas[r].engine.poll_timeout() {
                let now = self.time(r);
                self.now += due.0.saturating_sub(now.0) + 1;
            } else if !self.replicas[r].engine.is_syncing() {
                return;
            } else {
                panic!("r{r} is syncing with nothing out and nothing due");
            }
        }
    }

    /// A new device joins once everything has settled: it must see exactly the model, having
    /// fetched the best checkpoint (if any) and the tails after it.
    fn join_new_device(&mut self) {
        let written = self
            .bucket
            .objects
            .keys()
            .filter(|k| k.contains("/c/"))
            .count() as u64;
        CHECKPOINTS_WRITTEN.fetch_add(written, Ordering::Relaxed);
        let mut id = [0u8; 16];
        id[0] = 0xee;
        let store = Store::parse(STORE).unwrap();
        let mut engine = Engine::new(
            &self.key,
            store,
            DeviceId(id),
            Entropy::from_seed(self.rng.seed()),
        );
        configure(&mut engine, self.compaction);
        engine.set_open_mode(OpenMode::Join);
        let snapshot = engine.export_state();
        let journal = engine.journal_header().unwrap();
        self.replicas.push(Replica {
            engine,
            disk: Disk { snapshot, journal },
            skew: 0,
            inflight: Vec::new(),
        });
        let r = self.replicas.len() - 1;
        let report = self
            .full_sync(r)
            .unwrap_or_else(|e| panic!("the new device could not join: {e}"));
        CHECKPOINTS_ADOPTED.fetch_add(
            report.requests_of(RequestKind::GetCheckpoint),
            Ordering::Relaxed,
        );
        self.log(format!("new device joined: {report}"));
        assert!(
            report.errors.is_empty(),
            "the new device met errors: {report}"
        );
        if written > 0 {
            // One, or one more per device whose segments the best one covers less than others
            // did when that device deleted them (two devices that compacted at about the same
            // time; FORMAT 8.9).
            let fetched = report.requests_of(RequestKind::GetCheckpoint);
            assert!(
                (1..=r as u64).contains(&fetched),
                "a new device starts from a checkpoint when there is one: {report}"
            );
        }
    }

    fn full_sync(&mut self, r: usize) -> Result<bucketsync::SyncReport, Error> {
        self.start_sync(r)?;
        self.run_out(r);
        Ok(self.replicas[r]
            .engine
            .last_report()
            .cloned()
            .expect("a finished sync has a report"))
    }

    fn check(&mut self) {
        let live: Vec<Vec<u8>> = self
            .model
            .iter()
            .filter(|(_, (_, v))| v.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for r in 0..self.replicas.len() {
            let engine = &self.replicas[r].engine;
            if engine.keys(b"") != live {
                let differing: Vec<String> = engine
                    .keys(b"")
                    .iter()
                    .chain(&live)
                    .map(|k| {
                        format!(
                            "{:?}: here {:?}, model {:?}",
                            String::from_utf8_lossy(k),
                            engine.record(k),
                            self.model.get(k)
                        )
                    })
                    .collect();
                panic!("r{r}: live keys differ:\n{}", differing.join("\n"));
            }
            for (key, (stamp, value)) in &self.model {
                let expected = Record {
                    value: value.clone(),
                    stamp: *stamp,
                };
                let record = engine.record(key);
                // A tombstone may have been collected: then the key is gone altogether.
                if !(value.is_none() && record.is_none()) {
                    assert_eq!(record, Some(&expected), "r{r}: record {key:?}");
                }
            }
            assert_eq!(engine.unpushed(), 0, "r{r}: nothing left unpushed");
            let report = self.full_sync(r).unwrap();
            // One listing (in pages of two manifests), nothing else.
            let manifests = self
                .bucket
                .objects
                .keys()
                .filter(|k| k.contains("/m/"))
                .count();
            let pages = manifests.div_ceil(2).max(1) as u64;
            assert_eq!(
                (report.requests(), report.requests_of(RequestKind::List)),
                (pages, pages),
                "r{r}: a sync with nothing new: {report}"
            );
            // And a restart from disk gives the same replica.
            self.restart(r);
            let engine = &self.replicas[r].engine;
            assert_eq!(engine.keys(b""), live, "r{r}: after a restart");
            assert_eq!(engine.unpushed(), 0, "r{r}: after a restart");
        }
    }
}

/// Runs one seed; returns its trace hash.
fn run(seed: u64, verbose: bool) -> u64 {
    let mut sim = Sim::new(seed, verbose);
    let steps = 150 + sim.rng.below(200) as usize;
    sim.random_phase(steps);
    let distinct: BTreeSet<&Vec<u8>> = sim.model.keys().collect();
    sim.log(format!("quiesce ({} keys written)", distinct.len()));
    sim.quiesce();
    if sim.gc {
        sim.age();
    }
    sim.check();
    sim.join_new_device();
    sim.check();
    sim.trace.finish()
}

fn run_reporting(seed: u64) {
    let outcome = std::panic::catch_unwind(|| run(seed, false));
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!(
            "seed {seed} failed: {message}\nreplay it with: BUCKETSYNC_SIM_SEED={seed} cargo test -p bucketsync --test simulation -- --nocapture"
        );
    }
}

#[test]
fn replicas_under_random_faults_converge_and_lose_nothing() {
    if let Ok(seed) = std::env::var("BUCKETSYNC_SIM_SEED") {
        let seed: u64 = seed.parse().expect("BUCKETSYNC_SIM_SEED is a number");
        let hash = run(seed, true);
        eprintln!("seed {seed}: trace {hash:016x}");
        return;
    }
    let seeds: u64 = std::env::var("BUCKETSYNC_SIM_SEEDS")
        .ok()
        .map(|n| n.parse().expect("BUCKETSYNC_SIM_SEEDS is a number"))
        .unwrap_or(1_000);
    for seed in 0..seeds {
        run_reporting(seed);
    }
    // The compaction paths really ran: checkpoints were written and new devices started
    // from them.
    if seeds >= 100 {
        assert!(CHECKPOINTS_WRITTEN.load(Ordering::Relaxed) > seeds);
        assert!(CHECKPOINTS_ADOPTED.load(Ordering::Relaxed) > seeds / 2);
        // And so did garbage collection and starting over.
        eprintln!(
            "collected {} started over {} segments deleted {}",
            TOMBSTONES_COLLECTED.load(Ordering::Relaxed),
            STARTED_OVER.load(Ordering::Relaxed),
            SEGMENTS_DELETED.load(Ordering::Relaxed)
        );
        assert!(TOMBSTONES_COLLECTED.load(Ordering::Relaxed) > seeds / 20);
        assert!(STARTED_OVER.load(Ordering::Relaxed) > seeds / 20);
        assert!(SEGMENTS_DELETED.load(Ordering::Relaxed) > seeds / 20);
    }
}

#[test]
fn every_seed_that_ever_failed_passes() {
    for &seed in REGRESSIONS {
        run_reporting(seed);
    }
}

#[test]
fn a_seed_replays_to_the_same_trace() {
    assert_eq!(run(4242, false), run(4242, false));
    assert_ne!(run(4242, false), run(4243, false));
}
