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
//! deleted comes back, nothing is left unpushed, and a sync with nothing new is one LIST; each
//! replica's history of a key holds only versions that were written, in order, within the
//! history policy.
//! Checkpoints are written under a compaction policy drawn per seed (often every few segments),
//! so compaction runs under every fault too, and at the end a new device joins and must see
//! exactly the model (through a checkpoint when one exists).
//!
//! **Runaway clocks** (unless `BUCKETSYNC_SIM_RUNAWAY=0`; see [`runaways_enabled`]). In about
//! one seed in ten, one replica's wall clock jumps far beyond the bound on stamps from the
//! future (`max_future_ms`, [`MAX_FUTURE_MS`] here): weeks, years, or to the end of time (near
//! `u64::MAX` ms). It writes and syncs (under every fault) while ahead and, in most of those seeds, its clock comes back to the present before the faults stop. Checked
//! all along: no other replica's clock (or record) ever gets beyond its own now plus the bound
//! (nobody merges a stamp from the runaway clock, so it beats no later write); every fault-free
//! sync of another replica reports `ClockAhead` (category `Clock`) naming the writer of each
//! manifest stamped beyond the bound (unless that id is retired), and every `ClockAhead` reported
//! names such a writer; when the replica that ran ahead starts over after coming back, every key
//! whose current version it had stamped beyond the bound is written again under its new id,
//! stamped by the present but above every version of the key it wrote before within the bound.
//! At the end, see [`Fate`]: the held writes are out of the model, their restamped copies in
//! it, and a replica still ahead at the end keeps its own held writes while the others end
//! without them (held, not lost), and may lack what its held manifests name.
//!
//! **Bit rot.** In about one seed in four (none with a runaway clock), the store damages a
//! segment, checkpoint or manifest at rest now and then (one byte; the simulated ETag, which
//! hashes only an object's length and ends, mostly changes with it, where a real store's
//! stays), from a stream of draws of its own. Readers must neither merge what does not
//! authenticate nor pass over what it holds for good (a damaged segment may be replaced by a
//! checkpoint that covers it), and a device whose own manifest rotted must write on. The store
//! repairs what is still damaged before the quiet end (as from its own replica), so the end
//! checks hold as in every seed. Breaking "a damaged segment is fetched again" fails seeds
//! that only rot reaches.
//!
//! **The change hint.** Half the syncs of the random phase are polls (`Engine::start_poll`):
//! they read the vault's change hint first and stop at a `304`. The hint is deleted now and
//! then, and now and then put back to a value it had before (frozen): a poll may then miss a
//! publish, which only delays it. Checked: a poll that stopped at the hint did nothing else
//! (one request, nothing pulled, pushed or changed), and the end checks (full syncs, as the
//! schedule's periodic one) find nothing lost.
//!
//! `BUCKETSYNC_SIM_SEEDS=N` runs N seeds (default 1,000); `BUCKETSYNC_SIM_SEED=S` runs seed S
//! alone and prints its schedule; `BUCKETSYNC_SIM_KEEP_GOING=1` runs every seed and lists those
//! that fail (with the first line of each failure) instead of stopping at the first.

mod sim;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use bucketsync::grant::{self, GenerationKey, Role};
use bucketsync::identity::{Fingerprint, Identity, PublicIdentity};
use bucketsync::membership::{Standing, Statement};
use bucketsync::{segment, signed, testing, Hlc};
use bucketsync::{
    Category, CompactionPolicy, DeviceId, Engine, Entropy, Error, HistoryPolicy, Method, OpenMode,
    Record, Request, RequestKind, Response, RetryPolicy, Stamp, Store, Timestamp, VaultKey,
};
use sim::{answer, hash_of, percent_decode, Bucket, Faults, Rng, ORIGIN, STORE};

/// Checkpoints written, and adopted by the joining device, over all seeds run in this process.
static CHECKPOINTS_WRITTEN: AtomicU64 = AtomicU64::new(0);
static CHECKPOINTS_ADOPTED: AtomicU64 = AtomicU64::new(0);
static TOMBSTONES_COLLECTED: AtomicU64 = AtomicU64::new(0);
static STARTED_OVER: AtomicU64 = AtomicU64::new(0);
/// Segments deleted because checkpoints cover them.
static SEGMENTS_DELETED: AtomicU64 = AtomicU64::new(0);
/// Listings of a former id's log (each made once the log was closed, to delete it).
static FORMER_LOGS_LISTED: AtomicU64 = AtomicU64::new(0);
/// Seeds with a runaway clock, and those where it came back.
static RUNAWAYS: AtomicU64 = AtomicU64::new(0);
static RUNAWAYS_BACK: AtomicU64 = AtomicU64::new(0);
/// Acknowledged writes stamped beyond the bound, and those written again after the clock came
/// back.
static HELD_WRITES: AtomicU64 = AtomicU64::new(0);
static REWRITTEN: AtomicU64 = AtomicU64::new(0);
/// `ClockAhead` errors that a sync was required to report, and did.
static CLOCK_AHEAD_REPORTED: AtomicU64 = AtomicU64::new(0);
/// `ClockApart` errors that a sync was required to report, and did; and all those reported
/// (each checked against the clocks).
static CLOCK_APART_REPORTED: AtomicU64 = AtomicU64::new(0);
static CLOCK_APART_CHECKED: AtomicU64 = AtomicU64::new(0);
/// Objects the store damaged at rest, by kind (segments, checkpoints, manifests), and how many
/// were still damaged when repaired before the quiet end.
static ROTTED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
static ROT_REPAIRED: AtomicU64 = AtomicU64::new(0);
/// Syncs cancelled because a retry was due at a time only the runaway clock had reached.
static STUCK_RETRIES: AtomicU64 = AtomicU64::new(0);
/// Polls, those that stopped at an unmoved hint, and hints deleted or put back to an older
/// value.
static POLLS: AtomicU64 = AtomicU64::new(0);
static QUIET_POLLS: AtomicU64 = AtomicU64::new(0);
static HINTS_DELETED: AtomicU64 = AtomicU64::new(0);
static HINTS_FROZEN: AtomicU64 = AtomicU64::new(0);
/// Conflicts reported (each checked against what the replica had unpushed), and reports of a
/// start-over whose restamped keys were checked.
static CONFLICTS_REPORTED: AtomicU64 = AtomicU64::new(0);
static RESTAMPS_CHECKED: AtomicU64 = AtomicU64::new(0);
/// Earlier versions in the replicas' histories checked against the writes.
static HISTORY_VERSIONS_CHECKED: AtomicU64 = AtomicU64::new(0);

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
    // Runaway clocks. The replica started over while ahead, and its clock came back before the
    // new id had merged again what the old id wrote: those writes, held now by everyone, itself
    // included, were never written again.
    590, // The same, starting over while ahead before it knew any active peer.
    8016,
    // A replica whose clock was ahead from its first reading recorded no leap, so it took its
    // peers for silent and collected its own deletion, which everyone else held.
    1323,
    // The same clock (ten years ahead from its first reading), but the peers' manifests were
    // new to it: only a manifest read before could raise the suspicion, so it collected another
    // device's deletion and then merged an older deletion of the key from a segment it read
    // after. A manifest read for the first time after a caught-up sync now counts too.
    18604,
    // A clock at the end of time from its first reading started over twice while ahead; the
    // listing lagged, so the second id had not read the first id's manifest again when the
    // clock came back: a write of the first id, held by everyone by then, was never written
    // again. With no leap recorded, a start-over now keeps what its ids stamped beyond the
    // bound of every other device's latest manifest, as it keeps what lies beyond a leap.
    4833,
    // Found by 100,000 seeds. A replica pushed a segment and crashed; two of its manifest PUTs
    // landed late, the newer one first: a peer merged the segment the newer one named, then
    // the older one overwrote it. The replica's own state did not know the segment either, so
    // every sync after failed as a broken log of its own, for good. It now fetches back its
    // segments up to what the peer merged and publishes above them.
    42994, 65606,
    // Found by 100,000 seeds: a runaway replica that knew no other device started over while
    // ahead and dropped what its old id had pushed beyond the bound. Knowing no other device,
    // a start-over now keeps what is younger than the grace period by its own clock.
    99767,
    // Found by 100,000 seeds, and listed as failing until seen passing on 2026-11-28 (99767's
    // fix covers it): a replica whose clock ran 43 years ahead from its first reading, knowing
    // no other device, wrote a key, pushed it, and started over while ahead; its new id had not
    // read the old id's segment back when the clock came back.
    28695,
    // Found by 100,000 seeds: a replica wrote within the bound, and its clock ran ahead before
    // the manifest naming that segment was written (or the replica started over in the present
    // and its new id's first manifest was stamped after the jump). Everyone held the whole
    // manifest, so nobody read the segment: the write was lost from every replica (16822: it
    // also let a tombstone be collected under it), or its old log was read after its
    // tombstone was collected (73986, 82311). A manifest held for its clock now has its
    // segments read, each merged unless it holds a stamp beyond the bound.
    16822, 22882, 27997, 50037, 58118, 67898, 73986, 82311,
    // Found by 100,000 seeds: the same writes, but in a segment that also held a write made
    // after the jump: the whole segment was held, and the replica started over while ahead
    // and dropped its copy. A held segment now has what it holds within the bound merged.
    26953, 42530, 78116, 31137,
    // Found by 100,000 seeds: a manifest held for its clock retired a device whose late,
    // older manifest PUT then landed: every peer reported a rollback at every sync. The
    // devices a held manifest retires are now retired.
    43557,
    // Found by 100,000 seeds: a clock ahead since before its first write, knowing no other
    // device, started over (silent by its own clock) and kept only what was younger than the
    // grace period: a write it had pushed before, held by everyone, was gone once its clock
    // came back. Knowing no other device, a start-over now keeps all it holds.
    94072,
    // Found by 200,000 seeds: a clock ahead from its first reading (no leap), never caught
    // up, collected tombstones: by its clock every peer looked silent and every tombstone old.
    // Nothing is collected now while no peer's latest manifest is within the bound of our
    // clock, as while a leap is unconfirmed.
    109925, 137267, 153934,
    // Found by 200,000 seeds: a write in a segment no manifest named (a crash between the two
    // PUTs) of a replica never caught up did not count as unpushed, so it did not start over
    // when silent too long; a checkpoint it adopted dropped the write as collected.
    117190,
    // Found by 200,000 seeds, the model's: a runaway's write beaten by its own later write
    // under a held id before any push (159006); a quiet round of the final syncs that wrote a
    // checkpoint (31870, 117477); a poll stopped at the hint reporting what a failed sync
    // before it changed (137033).
    159006, 31870, 117477, 137033,
    // Found by 100,000 seeds, the model's: a runaway clock jumped during a sync it started
    // bound, so the required clocks-apart check added its margin to a reading near u64::MAX
    // and wrapped, requiring a report the engine rightly did not make.
    5916, 8176, 16517, 17399, 17814,
    // Found by 200,000 seeds, the model's: a clock jumped back after the sync's manifests
    // were answered; the required clocks-apart check measured from the reading at the sync's
    // end, below the answer the engine measures from, and required a report the engine
    // rightly did not make. The check now measures from the highest reading of the sync.
    182797,
    // Found by 20,000 seeds while a former id's log was first collected: a former id whose
    // own manifest already said all its segments were deleted, naming the checkpoint that
    // covered them, counted as closed, and that checkpoint was deleted while still the only
    // one covering them. Closed now means naming no checkpoint too, and nothing is deleted
    // unless our own checkpoint covers the former log.
    1143,
];

/// Seeds that fail today, passed over by seed-count runs: none. The fourteen found by two runs
/// of 100,000 seeds (all with a runaway clock) pass since 2026-11-28 and are in
/// [`REGRESSIONS`] with their causes. A seed found failing goes here, with an ignored test that
/// runs it (`cargo test --release -p bucketsync --test simulation -- --ignored`), until fixed.
const STILL_FAILING: &[u64] = &[];

const DAY_MS: u64 = 86_400_000;
/// The clock skew of garbage-collection seeds: the policy's `max_clock_skew_ms`, and the bound
/// on every replica's skew and backward jump. Half the seeds keep the first (the schedules the
/// regression seeds were found with); the others draw one of the rest, up to a quarter of the
/// shortest grace period.
const GC_SKEWS_MS: [u64; 4] = [1_000, 2_000, 4_000, 2_500];
/// Salts the draws of time jumps near the silence boundary.
const JUMP_SALT: u64 = 0x5117_0000_0000_0008;
/// Salts the draw of the skew of garbage-collection seeds.
const SKEW_SALT: u64 = 0x5ce7_0000_0000_0007;
const START_MS: u64 = 1_800_000_000_000;
/// The bound on stamps from the future every replica is configured with (the policy's default),
/// and that the checks hold the replicas to.
const MAX_FUTURE_MS: u64 = 7 * DAY_MS;
/// A runaway clock runs at least this far beyond the bound: with skews of a day and backward
/// jumps, its stamps stay clearly beyond the bound for everyone, and everyone else's clearly
/// within it.
const RUNAWAY_MARGIN_MS: u64 = 5 * DAY_MS;
/// Runaway clocks are drawn from a stream of their own, so that every other seed runs exactly
/// the schedule it ran before they existed (of `REGRESSIONS`, only the runaway ones draw one).
const RUNAWAY_SALT: u64 = 0x0c10_c4ea_d000_0002;
/// Salts the draws of polls and hint faults, so that they leave the main stream's draws as
/// they were.
const HINT_SALT: u64 = 0x4e17_0000_0000_0003;
/// Salts the draws of the harsher store (listings that lag, writes applied and answered with
/// an error), for the same reason.
const HARSH_SALT: u64 = 0x4a75_4000_0000_0005;
/// Salts the draws of objects damaged at rest (bit rot), for the same reason.
const ROT_SALT: u64 = 0x0b17_7000_0000_0009;

/// Whether seeds may draw a runaway clock: yes, unless `BUCKETSYNC_SIM_RUNAWAY=0` (then every
/// seed runs exactly the schedule it ran before runaways existed). The seeds runaways made
/// fail are in [`REGRESSIONS`] with their causes (the fourteen last ones found by runs of
/// 100,000 seeds). Fixed before them, and not kept as seeds:
/// a replica that started over while ahead losing what its former id wrote once its clock came
/// back (590, 2557, 4508, 8016), and a replica ahead from its first reading (so no leap
/// recorded) collecting its own held deletions (1323, 1895, 2079, 3449, 4265, 4447).
fn runaways_enabled() -> bool {
    std::env::var("BUCKETSYNC_SIM_RUNAWAY").map_or(true, |v| v != "0")
}

/// What survives a crash: the snapshot and the journal after it.
struct Disk {
    snapshot: Vec<u8>,
    journal: Vec<u8>,
}

/// What an app shows of a replica: read whole when it starts, then changed by its own writes
/// and by the keys each finished sync's report names (`SyncReport::changed`). At the end it
/// must equal the replica's records: an app that refreshes only those keys misses nothing,
/// including what syncs that failed, or were cancelled, changed.
#[derive(Default)]
struct AppView(BTreeMap<Vec<u8>, Vec<u8>>);

impl AppView {
    fn of(engine: &Engine) -> AppView {
        let mut view = AppView::default();
        view.refresh(engine, &engine.keys(b""));
        view
    }

    fn refresh(&mut self, engine: &Engine, keys: &[Vec<u8>]) {
        for key in keys {
            match engine.get(key) {
                Some(value) => self.0.insert(key.clone(), value.to_vec()),
                None => self.0.remove(key),
            };
        }
    }

    fn check(&self, engine: &Engine, name: &str) {
        let truth = AppView::of(engine);
        assert!(
            self.0 == truth.0,
            "{name}'s app, told only of the keys its syncs reported changed, shows {:?}; the replica holds {:?}",
            self.0,
            truth.0
        );
    }
}

struct Replica {
    engine: Engine,
    disk: Disk,
    /// Milliseconds this replica's wall clock is off (±1 day, jumps back now and then).
    skew: i64,
    /// Milliseconds its wall clock runs ahead on top of that: 0 unless it is the runaway and
    /// has jumped (saturating at `u64::MAX`).
    ahead_ms: u64,
    /// Handed out, not yet delivered.
    inflight: Vec<Request>,
    /// The sync in progress, as the checks see it.
    watch: Option<Watch>,
    /// A sync of this replica failed (or was cancelled) since its last one that succeeded: the
    /// keys it changed are reported by the next one that succeeds, a poll stopped at the hint
    /// included (`Engine::cancel_sync`).
    carried: bool,
    view: AppView,
}

/// A sync in progress: what its report is checked against.
struct Watch {
    /// Its start, by the replica's clock (the engine's `now` for the whole sync).
    now: u64,
    /// The store's write count when it started.
    serial: u64,
    /// A fault was injected into one of its requests (or answers).
    faulted: bool,
    /// The replica's clock was bound when it started (it is not the runaway, or the runaway
    /// after it came back and synced).
    bound: bool,
    /// Keys unpushed when it started or written while it ran: the only ones it may report as
    /// conflicts (a write concurrent with an unpushed one of this replica).
    may_conflict: BTreeSet<Vec<u8>>,
    /// The keys written again when the replica started over during it.
    restamped: Option<BTreeSet<Vec<u8>>>,
    /// The highest reading of the replica's clock while it ran (before a jump back): the
    /// engine measures what is ahead from its latest answer, which may come before a jump.
    highest: u64,
}

/// What the checks at the end expect of an acknowledged write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Every replica ends with it, or with a write that beats it.
    Certain,
    /// Its writer started over and wrote it again with a fresh stamp (a restamped copy, itself
    /// in the model). Whether this version reached the store under the old id too (a push whose
    /// answer was lost, a manifest that landed late) the model cannot tell: replicas may end
    /// with it when it beats everything certain, or without it.
    Maybe,
    /// Stamped beyond the bound by the runaway clock: every other replica holds it back (it
    /// beats nothing); only the runaway replica has it, while it is still ahead.
    Held,
    /// Held, then written again when the runaway clock came back and its replica started
    /// over: that copy is in the model; this one nobody will merge (its old id is retired).
    Dead,
}

/// One acknowledged write (or restamped copy).
#[derive(Clone, Debug)]
struct Write {
    stamp: Stamp,
    value: Option<Vec<u8>>,
    fate: Fate,
    /// The replica that wrote it.
    writer: usize,
}

/// The replica whose wall clock runs away, in the seeds that have one.
struct Runaway {
    replica: usize,
    /// How far beyond the present its wall clock jumps.
    ahead_ms: u64,
    /// The step of the random phase at which it jumps, and the one at which it comes back
    /// (`None`: it stays ahead to the end).
    from: usize,
    until: Option<usize>,
    /// Every device id it had since it jumped (it starts over under new ones).
    ids: BTreeSet<DeviceId>,
    /// And every id it ever had.
    all_ids: BTreeSet<DeviceId>,
    /// Its clock came back.
    back: bool,
    /// It came back and started a sync since: from then on its clock is bound like anyone's.
    settled: bool,
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
    /// Every acknowledged write (and restamped copy), by key.
    model: BTreeMap<Vec<u8>, Vec<Write>>,
    /// The runaway clock of this seed, if any (drawn from `side`).
    runaway: Option<Runaway>,
    side: Rng,
    /// Draws polls and hint faults.
    hints: Rng,
    /// Draws the harsher store's faults.
    harsh: Rng,
    /// Draws time jumps that land near the point where a device counts as silent.
    jumps: Rng,
    /// Draws bit rot: whether this seed has any, and which objects it damages.
    rot: Rng,
    /// In how many of a thousand steps an object rots (0 in most seeds).
    rot_per_mille: u64,
    /// Objects damaged at rest: their bytes before and after.
    rotted: BTreeMap<String, (Vec<u8>, Vec<u8>)>,
    /// A value the change hint had, to put back (a frozen hint).
    old_hint: Option<Vec<u8>>,
    /// Every manifest body handed out, by its hash: its writer and its clock (the writer's
    /// clock when it was first handed out, sealed with the clock ticked just before; only the
    /// wall time is kept).
    manifest_clocks: std::collections::HashMap<u64, (DeviceId, u64)>,
    /// Whether any of them is stamped beyond the bound (by the runaway clock): every other
    /// manifest is within the bound of every replica's clock.
    manifests_ahead: bool,
    /// The furthest any replica's clock has read ahead of the true time (ms, signed), but for
    /// the runaway's readings while it is ahead (held by everyone): no stamp merged is further
    /// ahead of the true time of its reading, so no manifest merged is further ahead of a
    /// replica's clock than this less that replica's own offset.
    fastest_reading: std::cell::Cell<i128>,
    trace: DefaultHasher,
    verbose: bool,
    compaction: CompactionPolicy,
    /// Garbage-collection seeds: a grace period of seconds, clocks within a second, and time
    /// that sometimes jumps ahead by a good part of the grace period (so tombstones are
    /// collected and replicas fall silent and start over).
    gc: bool,
}

/// SipHash of `bytes`: which devices keep no earlier versions is drawn with it, as it was when
/// the regression seeds were found, so that each seed still runs the world it failed in.
fn sip_hash_of(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
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
        let gc_skew_ms = {
            let mut draw = Rng(seed ^ SKEW_SALT);
            if draw.chance(500) {
                GC_SKEWS_MS[0]
            } else {
                GC_SKEWS_MS[1 + draw.below(3) as usize]
            }
        };
        let compaction = CompactionPolicy {
            min_tail_segments,
            max_tail_segments: min_tail_segments + rng.below(10),
            bytes_ratio: 1 + rng.below(8),
            segment_overhead_bytes: rng.below(4096),
            max_future_ms: MAX_FUTURE_MS,
            ..if gc {
                CompactionPolicy {
                    grace_ms: 10_000 + rng.below(30_000),
                    max_clock_skew_ms: gc_skew_ms,
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
                let max_skew = if gc { gc_skew_ms } else { DAY_MS };
                let skew = rng.below(2 * max_skew) as i64 - max_skew as i64;
                Replica {
                    view: AppView::of(&engine),
                    engine,
                    disk: Disk { snapshot, journal },
                    skew,
                    ahead_ms: 0,
                    inflight: Vec::new(),
                    watch: None,
                    carried: false,
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
            runaway: None,
            fastest_reading: std::cell::Cell::new(i128::MIN),
            side: Rng(seed ^ RUNAWAY_SALT),
            hints: Rng(seed ^ HINT_SALT),
            harsh: Rng(seed ^ HARSH_SALT),
            jumps: Rng(seed ^ JUMP_SALT),
            rot: Rng(seed ^ ROT_SALT),
            rot_per_mille: 0,
            rotted: BTreeMap::new(),
            old_hint: None,
            manifest_clocks: Default::default(),
            manifests_ahead: false,
            trace: DefaultHasher::new(),
            verbose,
            compaction,
            gc,
        }
    }

    /// The clock skew the policy allows (garbage-collection seeds).
    fn gc_skew_ms(&self) -> u64 {
        self.compaction.max_clock_skew_ms
    }

    /// One seed in ten: one replica's clock runs away during the random phase of `steps` steps
    /// (weeks, years, or to the end of time beyond the bound), and comes back in most of them.
    fn plan_runaway(&mut self, steps: usize) {
        let side = &mut self.side;
        if !side.chance(100) || !runaways_enabled() {
            return;
        }
        let replica = side.below(self.replicas.len() as u64) as usize;
        let ahead_ms = match side.below(3) {
            0 => MAX_FUTURE_MS + RUNAWAY_MARGIN_MS + side.below(60 * DAY_MS),
            1 => (1 + side.below(100)) * 365 * DAY_MS,
            // To the end of time: the replica's clock reads u64::MAX ms, or nearly.
            _ => u64::MAX - START_MS - side.below(2 * DAY_MS),
        };
        let from = side.below(steps as u64 / 2) as usize;
        let until = side
            .chance(650)
            .then(|| from + 1 + side.below((steps - from - 1) as u64) as usize);
        RUNAWAYS.fetch_add(1, Ordering::Relaxed);
        if until.is_some() {
            RUNAWAYS_BACK.fetch_add(1, Ordering::Relaxed);
        }
        let all_ids = BTreeSet::from([self.replicas[replica].engine.device()]);
        self.runaway = Some(Runaway {
            replica,
            ahead_ms,
            from,
            until,
            ids: BTreeSet::new(),
            all_ids,
            back: false,
            settled: false,
        });
    }

    /// At step `step` of the random phase: the runaway clock jumps, or comes back.
    fn runaway_step(&mut self, step: usize) {
        let Some(w) = &mut self.runaway else {
            return;
        };
        let r = w.replica;
        let line = if step == w.from {
            w.ids.insert(self.replicas[r].engine.device());
            self.replicas[r].ahead_ms = w.ahead_ms;
            format!("r{r} clock runs {} days ahead", w.ahead_ms / DAY_MS)
        } else if Some(step) == w.until {
            w.back = true;
            self.replicas[r].ahead_ms = 0;
            format!("r{r} clock comes back")
        } else {
            return;
        };
        self.log(line);
    }

    /// Whether replica `r`'s clock may be beyond the bound: the runaway, from its jump until it
    /// came back and started a sync.
    fn tainted(&self, r: usize) -> bool {
        self.runaway
            .as_ref()
            .is_some_and(|w| w.replica == r && !w.ids.is_empty() && !w.settled)
    }

    /// The runaway replica, when its clock is still ahead (it never came back).
    fn still_ahead(&self) -> Option<usize> {
        self.runaway
            .as_ref()
            .filter(|w| !w.ids.is_empty() && !w.back)
            .map(|w| w.replica)
    }

    /// Whether a stamp is beyond the bound for every replica but the runaway (which alone makes
    /// such stamps). The runaway's offsets keep every stamp well on one side or the other.
    fn beyond_bound(&self, stamp: Stamp) -> bool {
        let wall = stamp.hlc.wall_ms;
        let near = self.now.saturating_add(2 * DAY_MS);
        let far = self.now.saturating_add(MAX_FUTURE_MS + 2 * DAY_MS);
        assert!(
            wall <= near || wall > far,
            "a stamp {} ms ahead of the present is neither near it nor clearly beyond the bound",
            wall - self.now
        );
        wall > self.now.saturating_add(MAX_FUTURE_MS)
    }

    /// Adds an acknowledged write (or a restamped copy) of replica `r` to the model.
    fn record_write(&mut self, r: usize, key: Vec<u8>, stamp: Stamp, value: Option<Vec<u8>>) {
        let fate = if self.beyond_bound(stamp) {
            assert!(
                self.tainted(r),
                "r{r} wrote {key:?} stamped beyond the bound ({stamp:?}): its clock was dragged ahead"
            );
            Fate::Held
        } else {
            Fate::Certain
        };
        self.model.entry(key).or_default().push(Write {
            stamp,
            value,
            fate,
            writer: r,
        });
    }

    /// Starts a sync on replica `r`.
    fn start_sync(&mut self, r: usize) -> Result<(), Error> {
        self.start(r, None)
    }

    /// Starts a poll on replica `r` (see [`Engine::start_poll`]).
    fn start_poll(&mut self, r: usize, list_anyway: bool) -> Result<(), Error> {
        self.start(r, Some(list_anyway))
    }

    /// Starts a sync, or with `poll` a poll, on replica `r`.
    fn start(&mut self, r: usize, poll: Option<bool>) -> Result<(), Error> {
        let now = self.time(r);
        let before = self.replicas[r].engine.device();
        let may_conflict = self.replicas[r]
            .engine
            .unpushed_keys()
            .into_iter()
            .collect();
        match poll {
            None => self.replicas[r].engine.start_sync(now)?,
            Some(list_anyway) => {
                self.replicas[r].engine.start_poll(now, list_anyway)?;
                POLLS.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(w) = self.runaway.as_mut().filter(|w| w.replica == r && w.back) {
            w.settled = true;
        }
        self.replicas[r].watch = Some(Watch {
            now: now.0,
            serial: self.bucket.serial,
            // A listing that lags may hide a manifest the checks expect to be reported.
            faulted: self.bucket.list_lag_ms > 0,
            bound: !self.tainted(r),
            may_conflict,
            restamped: None,
            highest: now.0,
        });
        if self.replicas[r].engine.device() != before {
            self.started_over(r, before);
        }
        Ok(())
    }

    /// Replica `r` started over, leaving device id `old` (when a sync started, or in the
    /// middle of one). It re-applied some of its writes with fresh stamps (every key unpushed
    /// now): new acknowledged writes, as far as the model goes, and the versions they replace
    /// become uncertain (see [`Fate::Maybe`]). When its clock ran away and came back, it must
    /// have written again every key whose current version its runaway clock stamped: those
    /// held versions are dead, the copies are what the others will see.
    fn started_over(&mut self, r: usize, old: DeviceId) {
        STARTED_OVER.fetch_add(1, Ordering::Relaxed);
        let engine = &self.replicas[r].engine;
        let new = engine.device();
        let restamped: Vec<(Vec<u8>, Record)> = engine
            .unpushed_keys()
            .into_iter()
            .map(|k| {
                let record = engine.record(&k).cloned();
                (k, record.expect("an unpushed key has a record"))
            })
            .collect();
        let limit = self.time(r).0.saturating_add(MAX_FUTURE_MS);
        let returning = self
            .runaway
            .as_ref()
            .is_some_and(|w| w.replica == r && w.back)
            && engine.clock().wall_ms <= limit;
        if let Some(w) = self.runaway.as_mut().filter(|w| w.replica == r) {
            w.all_ids.insert(new);
            if !w.ids.is_empty() {
                w.ids.insert(new);
            }
        }
        if returning {
            // Written again now, each one after every version of the key this replica wrote
            // before within the bound (its clock never goes back on its own writes).
            let ids = &self.runaway.as_ref().expect("returning").all_ids;
            for (key, record) in &restamped {
                let earlier = self.model.get(key).into_iter().flatten().filter(|w| {
                    ids.contains(&w.stamp.device) && matches!(w.fate, Fate::Certain | Fate::Maybe)
                });
                if let Some(earlier) = earlier.max_by_key(|w| w.stamp) {
                    assert!(
                        record.stamp > earlier.stamp,
                        "r{r} came back and started over as {new}: {key:?} is written again \
                         ({record:?}) below its own earlier write {earlier:?}"
                    );
                }
            }
            for (key, writes) in &mut self.model {
                let Some(held) = writes
                    .iter()
                    .filter(|w| w.fate == Fate::Held)
                    .max_by_key(|w| w.stamp)
                    .cloned()
                else {
                    continue;
                };
                let record = engine.record(key);
                assert!(
                    record.is_some_and(|now| now.stamp.device == new
                        && now.value == held.value
                        && now.stamp.hlc.wall_ms <= limit),
                    "r{r} came back and started over as {new}: {key:?}, last written {held:?} \
                     beyond the bound, was not written again (the replica has {record:?})"
                );
                for w in writes.iter_mut().filter(|w| w.fate == Fate::Held) {
                    w.fate = Fate::Dead;
                }
                REWRITTEN.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(watch) = &mut self.replicas[r].watch {
            let keys: BTreeSet<Vec<u8>> = restamped.iter().map(|(k, _)| k.clone()).collect();
            watch.may_conflict.extend(keys.iter().cloned());
            watch.restamped = Some(keys);
        }
        self.log(format!(
            "r{r} starts over, {} writes restamped",
            restamped.len()
        ));
        for (key, record) in restamped {
            if let Some(replaced) = self
                .model
                .get_mut(&key)
                .and_then(|writes| {
                    writes
                        .iter_mut()
                        .filter(|w| w.stamp.device == old)
                        .max_by_key(|w| w.stamp)
                })
                .filter(|w| w.fate == Fate::Certain)
            {
                replaced.fate = Fate::Maybe;
            }
            self.record_write(r, key, record.stamp, record.value);
        }
    }

    fn log(&mut self, line: String) {
        line.hash(&mut self.trace);
        if self.verbose {
            eprintln!("{line}");
        }
    }

    fn time(&self, r: usize) -> Timestamp {
        let replica = &self.replicas[r];
        let reading = Timestamp(
            self.now
                .saturating_add_signed(replica.skew)
                .saturating_add(replica.ahead_ms),
        );
        // A runaway's readings are beyond the bound: held, never observed, so no stamp of a
        // manifest that is merged comes from them.
        if replica.ahead_ms == 0 {
            let offset = reading.0 as i128 - self.now as i128;
            self.fastest_reading
                .set(self.fastest_reading.get().max(offset));
        }
        reading
    }

    /// Drains the replica's outputs the way a host does: journal first, then requests.
    fn drain(&mut self, r: usize) {
        let now = self.time(r);
        let replica = &mut self.replicas[r];
        while let Some(request) = replica.engine.poll_request(now) {
            if request.kind == RequestKind::PutManifest {
                // Handed out first right after it was sealed, with the clock ticked just
                // before: its clock is the replica's (a retry sends the same body, later).
                let writer = (replica.engine.device(), replica.engine.clock().wall_ms);
                let (_, clock) = *self
                    .manifest_clocks
                    .entry(hash_of(&request.body))
                    .or_insert(writer);
                if clock > self.now + 2 * DAY_MS {
                    assert!(clock > self.now + MAX_FUTURE_MS + 2 * DAY_MS, "{clock}");
                    self.manifests_ahead = true;
                }
            }
            replica.inflight.push(request);
        }
        if let Some(outcome) = replica.engine.poll_outcome() {
            let watch = replica.watch.take();
            let carried = std::mem::replace(&mut replica.carried, outcome.is_err());
            if let Ok(report) = &outcome {
                replica.view.refresh(&replica.engine, &report.changed);
            }
            let line = match &outcome {
                Ok(report) => {
                    TOMBSTONES_COLLECTED.fetch_add(report.collected, Ordering::Relaxed);
                    SEGMENTS_DELETED.fetch_add(report.segments_deleted, Ordering::Relaxed);
                    FORMER_LOGS_LISTED.fetch_add(
                        report.requests_of(RequestKind::ListSegments),
                        Ordering::Relaxed,
                    );
                    match report.collected {
                        0 => format!("  r{r} sync ok: {report}"),
                        n => format!("  r{r} sync ok: {report} ({n} tombstones collected)"),
                    }
                }
                Err(e) => format!("  r{r} sync failed: {e}"),
            };
            self.persist(r);
            self.log(line);
            match (&outcome, watch) {
                (Ok(report), _) if report.hint_unchanged => {
                    // A poll that found the hint unmoved did nothing else.
                    QUIET_POLLS.fetch_add(1, Ordering::Relaxed);
                    assert_eq!(
                        report.requests(),
                        report.requests_of(RequestKind::GetHint),
                        "r{r}: {report}"
                    );
                    assert!(
                        report.pulled == 0
                            && report.pushed == 0
                            && (report.changed.is_empty() || carried)
                            && report.started_over.is_none(),
                        "r{r}: {report}"
                    );
                }
                (Ok(report), Some(watch)) => {
                    self.check_reported_keys(r, report, &watch);
                    self.check_clock_errors(r, report, &watch)
                }
                _ => {}
            }
        }
        self.persist(r);
    }

    /// A finished sync names as conflicts only keys this replica had unpushed (when it started,
    /// or written since), and, when the replica started over, as restamped exactly the keys it
    /// wrote again.
    fn check_reported_keys(&self, r: usize, report: &bucketsync::SyncReport, watch: &Watch) {
        CONFLICTS_REPORTED.fetch_add(report.conflicts.len() as u64, Ordering::Relaxed);
        for key in &report.conflicts {
            assert!(
                watch.may_conflict.contains(key),
                "r{r}'s sync reports a conflict on {key:?}, which it had not written unpushed: {report}"
            );
        }
        if let (Some(_), Some(restamped)) = (report.started_over, &watch.restamped) {
            RESTAMPS_CHECKED.fetch_add(1, Ordering::Relaxed);
            let reported: BTreeSet<Vec<u8>> = report.restamped.iter().cloned().collect();
            assert_eq!(
                &reported, restamped,
                "r{r} started over: the keys its report says it wrote again"
            );
        }
    }

    /// The manifests in the store now stamped beyond the bound, with their writer and (wall)
    /// clock.
    fn manifests_ahead(&self) -> impl Iterator<Item = (&String, DeviceId, u64)> + '_ {
        let limit = self.now + 2 * DAY_MS;
        self.bucket
            .objects
            .iter()
            .filter(|(k, _)| self.manifests_ahead && k.contains("/m/"))
            .map(|(k, body)| {
                let (writer, clock) = self
                    .manifest_clocks
                    .get(&hash_of(body))
                    .expect("every manifest in the store was handed out by a replica");
                (k, *writer, *clock)
            })
            .filter(move |(_, _, clock)| *clock > limit)
    }

    /// The `ClockAhead` errors of a finished sync of replica `r`. Each one names a device whose
    /// manifest is stamped beyond the bound of that sync's clock (for a manifest: by exactly the
    /// milliseconds it says), or this replica's own old id when it started over because its
    /// clock had run ahead. And a fault-free sync of a replica whose clock is bound reports
    /// every manifest in the store stamped beyond its bound (unchanged during the sync) whose
    /// writer it does not know to be retired.
    fn check_clock_errors(&self, r: usize, report: &bucketsync::SyncReport, watch: &Watch) {
        let limit = watch.now.saturating_add(MAX_FUTURE_MS);
        let mut reported = BTreeSet::new();
        let mut apart = BTreeSet::new();
        for error in report
            .errors
            .iter()
            .filter(|e| e.category() == Category::Clock)
        {
            if let Error::ClockApart {
                device,
                ahead_ms,
                margin_ms,
            } = error
            {
                // True: some clock read further ahead of the true time than this replica's
                // clock now is, by more than the margin.
                assert_eq!(*margin_ms, 2 * self.compaction.max_clock_skew_ms, "r{r}");
                assert!(
                    *ahead_ms > *margin_ms && *ahead_ms <= MAX_FUTURE_MS,
                    "r{r}: {error}"
                );
                let own_offset = self.time(r).0 as i128 - self.now as i128;
                assert!(
                    *ahead_ms as i128 <= self.fastest_reading.get() - own_offset,
                    "r{r} (clock {own_offset} ms off, the fastest {} ms): a false report: {error}",
                    self.fastest_reading.get()
                );
                apart.insert(DeviceId::parse(device).expect("ClockApart names a device id"));
                CLOCK_APART_CHECKED.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Error::ClockAhead {
                object,
                device,
                ahead_ms,
            } = error
            else {
                panic!("r{r}: a clock error that is neither ClockAhead nor ClockApart: {error:?}");
            };
            let device = DeviceId::parse(device).expect("ClockAhead names a device id");
            assert!(*ahead_ms > MAX_FUTURE_MS, "r{r}: {error}");
            if object == "local clock" {
                assert!(
                    self.runaway.as_ref().is_some_and(|w| w.replica == r
                        && w.ids.contains(&device)
                        && report.started_over == Some(device)),
                    "r{r}: {error:?}, started over: {:?}",
                    report.started_over
                );
            } else if object.starts_with("m/") {
                assert_eq!(*object, format!("m/{device}"), "r{r}");
                let clock = watch.now.saturating_add(*ahead_ms);
                assert!(
                    self.manifest_clocks.values().any(|m| *m == (device, clock)),
                    "r{r}: no manifest of {device} was stamped at {clock}: {error}"
                );
                reported.insert(device);
            } else {
                assert!(
                    object.contains(&device.to_string())
                        && self
                            .manifest_clocks
                            .values()
                            .any(|(d, clock)| *d == device && *clock > limit),
                    "r{r}: {error}"
                );
            }
        }
        if watch.faulted || !watch.bound {
            return;
        }
        let engine = &self.replicas[r].engine;
        let mut required = 0;
        for (key, writer, clock) in self.manifests_ahead() {
            let unchanged = self.bucket.written[key] <= watch.serial;
            if clock > limit && unchanged && !engine.is_retired(writer) {
                assert!(
                    reported.contains(&writer),
                    "r{r}'s sync did not report the manifest of {writer}, {} ms beyond its clock: {report}",
                    clock - watch.now
                );
                required += 1;
            }
        }
        CLOCK_AHEAD_REPORTED.fetch_add(required, Ordering::Relaxed);
        // And every other replica whose manifest in the store is stamped further ahead than
        // two clocks may be apart (by the replica's clock at the sync's end, after every
        // answer), and within the bound.
        let margin = 2 * self.compaction.max_clock_skew_ms;
        let end = self.time(r).0.max(watch.highest);
        let mut required = 0;
        let others: Vec<DeviceId> = (self.replicas.iter().enumerate())
            .filter(|(i, _)| *i != r)
            .map(|(_, other)| other.engine.device())
            .collect();
        for (key, body) in self
            .bucket
            .objects
            .iter()
            .filter(|(k, _)| k.contains("/m/"))
        {
            let (writer, clock) = self.manifest_clocks[&hash_of(body)];
            let unchanged = self.bucket.written[key] <= watch.serial;
            if others.contains(&writer)
                && unchanged
                && !self.rotted.contains_key(key)
                && clock > end.saturating_add(margin)
                && clock <= limit
                && !engine.is_retired(writer)
            {
                assert!(
                    apart.contains(&writer),
                    "r{r}'s sync did not report the manifest of {writer}, {} ms ahead of its clock: {report}",
                    clock.saturating_sub(end)
                );
                required += 1;
            }
        }
        CLOCK_APART_REPORTED.fetch_add(required, Ordering::Relaxed);
    }

    /// No replica whose clock is bound ever gets beyond its own now plus the bound, nor holds a
    /// record stamped beyond it: nobody merges what the runaway clock stamped (so that beats no
    /// write made later), nor is dragged along to stamp its own writes there.
    fn check_bound(&self) {
        for r in 0..self.replicas.len() {
            if self.tainted(r) {
                continue;
            }
            let limit = self.time(r).0.saturating_add(MAX_FUTURE_MS);
            let engine = &self.replicas[r].engine;
            let clock = engine.clock();
            assert!(
                clock.wall_ms <= limit,
                "r{r}'s clock got {} ms beyond its now plus the bound",
                clock.wall_ms - limit
            );
            if self.runaway.is_some() {
                for key in self.model.keys() {
                    if let Some(record) = engine.record(key) {
                        assert!(
                            record.stamp.hlc.wall_ms <= limit,
                            "r{r} holds {key:?} stamped beyond its now plus the bound: {record:?}"
                        );
                    }
                }
            }
        }
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
        let replica = &mut self.replicas[r];
        replica
            .view
            .refresh(&replica.engine, std::slice::from_ref(&key));
        if let Some(watch) = &mut replica.watch {
            watch.may_conflict.insert(key.clone());
        }
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
        if self.beyond_bound(stamp) {
            HELD_WRITES.fetch_add(1, Ordering::Relaxed);
        }
        self.record_write(r, key, stamp, value);
    }

    /// Drops the engine and restores it from the disk, the way a host restarts.
    fn restart(&mut self, r: usize) {
        let store = Store::parse(STORE).unwrap();
        let entropy = Entropy::from_seed(self.rng.seed());
        let replica = &mut self.replicas[r];
        let crashed_at = self.now;
        replica.watch = None;
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
        replica.view = AppView::of(&replica.engine);
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
        self.bucket.now = self.now;
        let (response, what) = answer(&mut self.rng, faults, &request, |r| self.bucket.apply(r));
        let status = response.as_ref().map_or(0, |r| r.status);
        self.log(format!(
            "r{r} {what} {:?} {} -> {status}",
            request.kind, request.url
        ));
        if what != "delivered" {
            if let Some(watch) = &mut self.replicas[r].watch {
                watch.faulted = true;
            }
        }
        let now = self.time(r);
        let before = self.replicas[r].engine.device();
        self.replicas[r]
            .engine
            .handle_response(request.id, response, now);
        if self.replicas[r].engine.device() != before {
            // In the middle of a sync: its own manifest was stamped beyond the bound.
            self.started_over(r, before);
        }
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
            applied_error: match self.harsh.chance(500) {
                true => self.harsh.below(40),
                false => 0,
            },
        };
        if self.harsh.chance(300) {
            self.bucket.list_lag_ms = 100 + self.harsh.below(2_000);
        }
        if self.rot.chance(250) {
            self.rot_per_mille = 5 + self.rot.below(20);
        }
        self.log(format!(
            "store: listings lag {} ms, {}‰ of writes applied and answered with an error",
            self.bucket.list_lag_ms, faults.applied_error
        ));
        for step in 0..steps {
            // (What the previous step left.)
            self.check_bound();
            self.hint_fault();
            self.rot_fault();
            self.runaway_step(step);
            self.now += self.rng.below(400);
            let r = self.rng.below(self.replicas.len() as u64) as usize;
            match self.rng.below(100) {
                0..=29 => self.write(r, &faults),
                30..=39 => {
                    let started = match self.hints.chance(500) {
                        true => {
                            let list_anyway = self.hints.chance(100);
                            self.start_poll(r, list_anyway).map(|()| "poll")
                        }
                        false => self.start_sync(r).map(|()| "sync"),
                    };
                    if let Ok(what) = started {
                        self.log(format!("r{r} start {what}"));
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
                    if self.gc && self.now - crashed_at > 2 * self.gc_skew_ms() {
                        self.log(format!("orphan {:?} lost", orphan.kind));
                        continue;
                    }
                    self.bucket.now = self.now;
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
                        let before = self.time(r).0;
                        if let Some(watch) = self.replicas[r].watch.as_mut() {
                            watch.highest = watch.highest.max(before);
                        }
                        if self.gc {
                            // Within the skew the policy allows.
                            let bound = self.gc_skew_ms();
                            let back = self.rng.below(bound) as i64;
                            let skew = &mut self.replicas[r].skew;
                            *skew = (*skew - back).max(-(bound as i64));
                            self.log(format!("r{r} clock jumps back {back} ms"));
                        } else {
                            let back = self.rng.below(3_600_000) as i64;
                            self.replicas[r].skew -= back;
                            self.log(format!("r{r} clock jumps back {back} ms"));
                        }
                    } else if self.gc && self.rng.chance(100) {
                        let ahead = self.rng.below(self.compaction.grace_ms / 2);
                        // A third of them land within two skews of the point where a device
                        // silent since the jump counts as gone (grace, margin and heartbeat).
                        let ahead = if self.jumps.chance(333) {
                            let policy = &self.compaction;
                            let skew = policy.max_clock_skew_ms;
                            let boundary = policy.grace_ms + 2 * skew + policy.grace_ms / 8;
                            (boundary + self.jumps.below(4 * skew + 1)).saturating_sub(2 * skew)
                        } else {
                            ahead
                        };
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
        self.repair_rot();
        for r in 0..self.replicas.len() {
            self.run_out(r);
        }
        let mut quiet_rounds = 0;
        for round in 0..12 {
            // Once listings show every key created so far.
            self.now = self.now.max(self.bucket.all_listed_at());
            let mut moved = false;
            for r in 0..self.replicas.len() {
                let report = self.full_sync(r).unwrap_or_else(|e| {
                    panic!("round {round}: r{r}'s sync failed without faults: {e}")
                });
                // A checkpoint (or a delete) is a new object too: later listings show it, and
                // the time the next round waits for may set off heartbeats.
                let wrote: u64 = [
                    RequestKind::PutSegment,
                    RequestKind::PutManifest,
                    RequestKind::PutCheckpoint,
                    RequestKind::DeleteSegment,
                    RequestKind::DeleteCheckpoint,
                ]
                .iter()
                .map(|k| report.requests_of(*k))
                .sum();
                moved |= report.pushed > 0 || report.pulled > 0 || wrote > 0;
            }
            self.check_bound();
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
            applied_error: 0,
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
                // Objects from a runaway clock are held (its errors are checked as they come).
                assert!(
                    report
                        .errors
                        .iter()
                        .all(|e| e.category() == Category::Clock),
                    "r{r}: {report}: {:?}",
                    report.errors
                );
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
                let wait = due.0.saturating_sub(now.0);
                if wait > MAX_FUTURE_MS {
                    // A backoff that the runaway clock scheduled, before it came back: a host
                    // would wait for its clock to get there (weeks, years). This one gives up
                    // the sync, the way a host cancels one; nothing is lost.
                    assert!(
                        self.runaway
                            .as_ref()
                            .is_some_and(|w| w.replica == r && w.back),
                        "r{r} has a retry due in {wait} ms"
                    );
                    STUCK_RETRIES.fetch_add(1, Ordering::Relaxed);
                    self.log(format!("r{r} cancels a sync with a retry due in {wait} ms"));
                    self.replicas[r].engine.cancel_sync();
                    self.replicas[r].watch = None;
                    continue;
                }
                self.now += wait + 1;
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
        let checkpoints: Vec<&String> = self
            .bucket
            .objects
            .keys()
            .filter(|k| k.contains("/c/"))
            .collect();
        CHECKPOINTS_WRITTEN.fetch_add(checkpoints.len() as u64, Ordering::Relaxed);
        // Those of a writer whose manifest is stamped beyond the bound are out of sight.
        let limit = self.now.saturating_add(MAX_FUTURE_MS);
        let held: BTreeSet<String> = self
            .manifests_ahead()
            .filter(|(_, _, clock)| *clock > limit)
            .map(|(_, writer, _)| writer.to_string())
            .collect();
        let written = checkpoints
            .iter()
            .filter(|k| {
                let writer = k.split("/c/").nth(1).and_then(|w| w.split('/').next());
                !held.contains(writer.expect("c/<writer>/<number>"))
            })
            .count() as u64;
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
            view: AppView::of(&engine),
            engine,
            disk: Disk { snapshot, journal },
            skew: 0,
            ahead_ms: 0,
            inflight: Vec::new(),
            watch: None,
            carried: false,
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
            report
                .errors
                .iter()
                .all(|e| e.category() == Category::Clock),
            "the new device met errors: {report}"
        );
        if written > 0 {
            // One, or one more per device whose segments the best one covers less than others
            // did when that device deleted them (two devices that compacted at about the same
            // time; FORMAT 8.9).
            let fetched = report.requests_of(RequestKind::GetCheckpoint);
            assert!(
                (1..=r as u64).contains(&fetched),
                "a new device starts from a checkpoint when there is one: {report}: {:?}",
                report.errors
            );
        }
    }

    /// Bit rot: now and then the store damages a segment, checkpoint or manifest at rest (one
    /// byte). Readers must neither merge it nor
    /// pass over what it holds for good, and a device whose own manifest rotted must write on.
    /// Repaired before the quiet end (as from the store's own replica or backup), so that
    /// everything must converge then. Not in seeds with a runaway clock (their checks read
    /// every manifest in the store).
    fn rot_fault(&mut self) {
        if self.rot_per_mille == 0 || self.runaway.is_some() || !self.rot.chance(self.rot_per_mille)
        {
            return;
        }
        let kinds = ["/s/", "/c/", "/m/"];
        let kind = self.rot.below(3) as usize;
        let candidates: Vec<&String> = self
            .bucket
            .objects
            .keys()
            .filter(|k| k.contains(kinds[kind]) && !self.rotted.contains_key(*k))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let name = candidates[self.rot.below(candidates.len() as u64) as usize].clone();
        let original = self.bucket.objects[&name].clone();
        if original.len() < 3 {
            return;
        }
        let mut damaged = original.clone();
        let at = 1 + self.rot.below(original.len() as u64 - 2) as usize;
        damaged[at] ^= 1 << self.rot.below(8);
        if let Some(writer) = self.manifest_clocks.get(&hash_of(&original)).copied() {
            self.manifest_clocks.insert(hash_of(&damaged), writer);
        }
        self.log(format!("{name} rots (byte {at})"));
        ROTTED[kind].fetch_add(1, Ordering::Relaxed);
        self.bucket.objects.insert(name.clone(), damaged.clone());
        self.rotted.insert(name, (original, damaged));
    }

    /// Puts back every damaged object nobody wrote or deleted since.
    fn repair_rot(&mut self) {
        for (name, (original, damaged)) in std::mem::take(&mut self.rotted) {
            if self.bucket.objects.get(&name) == Some(&damaged) {
                self.log(format!("{name} repaired"));
                ROT_REPAIRED.fetch_add(1, Ordering::Relaxed);
                self.bucket.objects.insert(name, original);
            }
        }
    }

    /// Now and then, deletes the change hint, or puts back a value it had before.
    fn hint_fault(&mut self) {
        let Some(hint) = self
            .bucket
            .objects
            .keys()
            .find(|k| k.ends_with("/h"))
            .cloned()
        else {
            return;
        };
        match self.hints.below(1000) {
            0..=9 => {
                self.log("hint deleted".into());
                HINTS_DELETED.fetch_add(1, Ordering::Relaxed);
                self.bucket.objects.remove(&hint);
            }
            10..=29 => match self.old_hint.take() {
                Some(old) => {
                    self.log("hint put back to an older value".into());
                    HINTS_FROZEN.fetch_add(1, Ordering::Relaxed);
                    self.bucket.objects.insert(hint, old);
                }
                None => self.old_hint = self.bucket.objects.get(&hint).cloned(),
            },
            _ => {}
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

    /// The versions of `key` a replica may end with (`None`: no record at all), from the fates
    /// of its writes (see [`Fate`]): the greatest write it must have, or a greater one that
    /// may or may not have reached the store.
    ///
    /// While the runaway replica is still ahead (it never came back), it has its held writes
    /// (they beat everything). The others hold back its manifests, and so everything those
    /// name: its writes within the bound too, those made before its clock ran ahead included,
    /// unless they merged them before (or a checkpoint brought them); so for them its writes
    /// are the ones that may or may not be there. Held, not lost: it writes them all again
    /// when it comes back.
    fn acceptable(&self, key: &[u8], ahead_view: bool) -> Vec<Option<Record>> {
        let empty = BTreeSet::new();
        let held_ids = match (&self.runaway, self.still_ahead()) {
            (Some(w), Some(_)) if !ahead_view => &w.ids,
            _ => &empty,
        };
        let writes = &self.model[key];
        let record = |w: &Write| Record {
            value: w.value.clone(),
            stamp: w.stamp,
        };
        // A write of the runaway replica that a later write of its own under a held id beats:
        // it may never have been pushed (the later one took its place before a push), and the
        // one that beat it is held.
        let runaway = self.runaway.as_ref().map(|w| w.replica);
        let shadowed = |w: &Write| {
            Some(w.writer) == runaway
                && writes.iter().any(|x| {
                    x.writer == w.writer && held_ids.contains(&x.stamp.device) && x.stamp > w.stamp
                })
        };
        let base = writes
            .iter()
            .filter(|w| match w.fate {
                Fate::Certain => !held_ids.contains(&w.stamp.device) && !shadowed(w),
                Fate::Held => ahead_view,
                Fate::Maybe | Fate::Dead => false,
            })
            .max_by_key(|w| w.stamp);
        let mut accepted = vec![base.map(record)];
        accepted.extend(
            writes
                .iter()
                .filter(|w| {
                    w.fate == Fate::Maybe
                        || (w.fate == Fate::Certain
                            && (held_ids.contains(&w.stamp.device) || shadowed(w)))
                })
                .filter(|w| base.is_none_or(|b| w.stamp > b.stamp))
                .map(|w| Some(record(w))),
        );
        accepted
    }

    /// Replica `r`'s history of each key (its current version, then the earlier ones it kept)
    /// holds only versions that were written, each exactly as written, newest first with no
    /// version twice (of those within the bound on stamps), and no more than the policy keeps (10 earlier versions, and the
    /// replica's own latest write while another device's is current).
    fn check_history(&self, r: usize) {
        let engine = &self.replicas[r].engine;
        for (key, writes) in &self.model {
            let versions = engine.history(key);
            if versions.is_empty() {
                continue;
            }
            HISTORY_VERSIONS_CHECKED.fetch_add(versions.len() as u64 - 1, Ordering::Relaxed);
            assert!(
                versions.len() <= 1 + HistoryPolicy::default().versions + 1,
                "r{r} keeps {} versions of {key:?}",
                versions.len()
            );
            // A runaway clock's versions stay behind a restamped copy: ordered are those within
            // the bound.
            let within: Vec<&Record> = versions
                .iter()
                .filter(|v| v.stamp.hlc.wall_ms <= self.now.saturating_add(MAX_FUTURE_MS))
                .collect();
            for pair in within.windows(2) {
                assert!(
                    pair[0].stamp > pair[1].stamp,
                    "r{r}'s history of {key:?} is out of order: {versions:?}"
                );
            }
            for version in &versions[1..] {
                assert!(
                    writes
                        .iter()
                        .any(|w| w.stamp == version.stamp && w.value == version.value),
                    "r{r}'s history of {key:?} holds {version:?}, which nobody wrote; the \
                     writes:\n{}",
                    self.describe(key)
                );
            }
        }
    }

    fn describe(&self, key: &[u8]) -> String {
        self.model[key]
            .iter()
            .map(|w| {
                let runaway = self.runaway.as_ref().is_some_and(|x| x.replica == w.writer);
                let who = if runaway { " (the runaway)" } else { "" };
                format!(
                    "  {:?} by r{}{who}: {} {} {} {:?}",
                    w.fate,
                    w.writer,
                    w.stamp.hlc.wall_ms,
                    w.stamp.hlc.counter,
                    w.stamp.device,
                    w.value
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every replica ends with what the model accepts for each key, all of them the same (but
    /// for what a runaway replica still ahead at the end holds: its own view, and the keys it
    /// wrote for the others), nothing left unpushed; a sync with nothing new is one listing,
    /// plus a GET of each manifest held back (read again at every sync); a restart from disk
    /// gives the same replica.
    fn check(&mut self) {
        for (r, replica) in self.replicas.iter().enumerate() {
            replica.view.check(&replica.engine, &format!("r{r}"));
        }
        let ahead = self.still_ahead();
        if let Some(w) = self.runaway.as_ref().filter(|w| w.back) {
            assert!(
                w.settled,
                "the runaway replica never synced after coming back"
            );
            assert!(
                self.model.values().flatten().all(|w| w.fate != Fate::Held),
                "writes stamped beyond the bound are left after the clock came back"
            );
        }
        let keys: Vec<Vec<u8>> = self.model.keys().cloned().collect();
        // Keys the runaway replica still ahead wrote within the bound: the others may differ.
        let unsettled: BTreeSet<&Vec<u8>> = match (&self.runaway, ahead) {
            (Some(w), Some(_)) => keys
                .iter()
                .filter(|k| {
                    self.model[*k].iter().any(|x| {
                        w.ids.contains(&x.stamp.device)
                            && matches!(x.fate, Fate::Certain | Fate::Maybe)
                    })
                })
                .collect(),
            _ => BTreeSet::new(),
        };
        let mut reference: Option<(usize, Vec<Option<Record>>)> = None;
        for r in 0..self.replicas.len() {
            let engine = &self.replicas[r].engine;
            let ahead_view = Some(r) == ahead;
            for key in &keys {
                let accepted = self.acceptable(key, ahead_view);
                let record = engine.record(key);
                let fits = |expected: &Option<Record>| match (record, expected) {
                    (None, None) => true,
                    // A tombstone may have been collected: then the key is gone altogether.
                    (None, Some(e)) => e.value.is_none(),
                    (Some(have), Some(e)) => have == e,
                    (Some(_), None) => false,
                };
                assert!(
                    accepted.iter().any(fits),
                    "r{r}: record {key:?} is {record:?}; the model accepts {accepted:?}; the writes:\n{}",
                    self.describe(key)
                );
            }
            for key in engine.keys(b"") {
                assert!(self.model.contains_key(&key), "r{r} has {key:?}");
            }
            self.check_history(r);
            if !ahead_view {
                let view: Vec<Option<Record>> = keys
                    .iter()
                    .map(|k| {
                        let record = engine.record(k).filter(|r| r.value.is_some());
                        record.filter(|_| !unsettled.contains(k)).cloned()
                    })
                    .collect();
                match &reference {
                    None => reference = Some((r, view)),
                    Some((first, expected)) => {
                        for (i, key) in keys.iter().enumerate() {
                            assert_eq!(
                                view[i],
                                expected[i],
                                "r{r} and r{first} differ on {key:?}; the writes:\n{}",
                                self.describe(key)
                            );
                        }
                    }
                }
            }
            assert_eq!(engine.unpushed(), 0, "r{r}: nothing left unpushed");
            let live = engine.keys(b"");
            let limit = self.time(r).0.saturating_add(MAX_FUTURE_MS);
            let held = self
                .manifests_ahead()
                .filter(|(_, _, c)| *c > limit)
                .count() as u64;
            let report = self.full_sync(r).unwrap();
            // One listing (in pages of two manifests), and the held manifests again.
            let manifests = self
                .bucket
                .objects
                .keys()
                .filter(|k| k.contains("/m/"))
                .count();
            let pages = manifests.div_ceil(2).max(1) as u64;
            // And those of their segments that are held too (what they wrote before their
            // clock ran ahead was merged the first time): segments of those writers only.
            let held_writers: BTreeSet<String> = self
                .manifests_ahead()
                .filter(|(_, _, c)| *c > limit)
                .map(|(_, writer, _)| format!("/s/{writer}/"))
                .collect();
            let their_segments = self
                .bucket
                .objects
                .keys()
                .filter(|k| held_writers.iter().any(|w| k.contains(w.as_str())))
                .count() as u64;
            let segments = report.requests_of(RequestKind::GetSegment);
            assert!(
                segments <= their_segments,
                "r{r}: a sync with nothing new fetched {segments} segments; the writers held \
                 have {their_segments}: {report}"
            );
            assert_eq!(
                (
                    report.requests(),
                    report.requests_of(RequestKind::List),
                    report.requests_of(RequestKind::GetManifest),
                ),
                (pages + held + segments, pages, held),
                "r{r}: a sync with nothing new: {report}"
            );
            // And a restart from disk gives the same replica.
            self.restart(r);
            let engine = &self.replicas[r].engine;
            assert_eq!(engine.keys(b""), live, "r{r}: after a restart");
            assert_eq!(engine.unpushed(), 0, "r{r}: after a restart");
            // Polls: the first of the new process lists (no ETag yet; it writes the hint if it
            // was deleted, which makes its next poll list once more); then they stop at the
            // hint, and the drain checks that such a poll did nothing else.
            let quiet = (0..4).any(|_| {
                self.start_poll(r, false).unwrap();
                self.run_out(r);
                let report = self.replicas[r].engine.last_report().unwrap();
                report.hint_unchanged
            });
            assert!(quiet, "r{r}: polls of a quiet vault stop at the hint");
        }
        self.check_bound();
    }
}

/// Runs one seed; returns its trace hash.
fn run(seed: u64, verbose: bool) -> u64 {
    let mut sim = Sim::new(seed, verbose);
    let steps = 150 + sim.rng.below(200) as usize;
    sim.plan_runaway(steps);
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

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn run_reporting(seed: u64) {
    let outcome = std::panic::catch_unwind(|| run(seed, false));
    if let Err(panic) = outcome {
        let message = panic_message(panic.as_ref());
        panic!(
            "seed {seed} failed: {message}\nreplay it with: BUCKETSYNC_SIM_SEED={seed} cargo test -p bucketsync --test simulation -- --nocapture"
        );
    }
}

#[test]
fn replicas_under_random_faults_converge_and_lose_nothing() {
    let Some(seeds) = sim::run_seeds(
        &["BUCKETSYNC_SIM_SEED"],
        &["BUCKETSYNC_SIM_SEEDS"],
        1_000,
        STILL_FAILING,
        "simulation",
        run,
    ) else {
        return;
    };
    // The compaction paths really ran: checkpoints were written and new devices started
    // from them.
    if seeds >= 100 {
        for (kind, rotted) in ["segments", "checkpoints", "manifests"].iter().zip(&ROTTED) {
            let rotted = rotted.load(Ordering::Relaxed);
            assert!(
                rotted > seeds / 50,
                "{rotted} {kind} rotted in {seeds} seeds"
            );
        }
        assert!(ROT_REPAIRED.load(Ordering::Relaxed) > seeds / 50);
        assert!(CHECKPOINTS_WRITTEN.load(Ordering::Relaxed) > seeds);
        assert!(CHECKPOINTS_ADOPTED.load(Ordering::Relaxed) > seeds / 2);
        // And so did garbage collection and starting over.
        eprintln!(
            "collected {} started over {} segments deleted {} (former ids' logs listed {})",
            TOMBSTONES_COLLECTED.load(Ordering::Relaxed),
            STARTED_OVER.load(Ordering::Relaxed),
            SEGMENTS_DELETED.load(Ordering::Relaxed),
            FORMER_LOGS_LISTED.load(Ordering::Relaxed)
        );
        assert!(FORMER_LOGS_LISTED.load(Ordering::Relaxed) > seeds / 100);
        assert!(TOMBSTONES_COLLECTED.load(Ordering::Relaxed) > seeds / 20);
        assert!(STARTED_OVER.load(Ordering::Relaxed) > seeds / 20);
        assert!(SEGMENTS_DELETED.load(Ordering::Relaxed) > seeds / 20);
        // And polls ran, many stopped at the hint, and the hint was deleted and frozen.
        eprintln!(
            "polls {} (stopped at the hint {}), hints deleted {}, put back {}",
            POLLS.load(Ordering::Relaxed),
            QUIET_POLLS.load(Ordering::Relaxed),
            HINTS_DELETED.load(Ordering::Relaxed),
            HINTS_FROZEN.load(Ordering::Relaxed),
        );
        assert!(QUIET_POLLS.load(Ordering::Relaxed) > seeds * 2);
        assert!(HINTS_DELETED.load(Ordering::Relaxed) > seeds / 2);
        assert!(HINTS_FROZEN.load(Ordering::Relaxed) > seeds / 2);
        eprintln!(
            "conflicts reported {}, start-overs whose restamped keys were checked {}, earlier \
             versions checked {}",
            CONFLICTS_REPORTED.load(Ordering::Relaxed),
            RESTAMPS_CHECKED.load(Ordering::Relaxed),
            HISTORY_VERSIONS_CHECKED.load(Ordering::Relaxed)
        );
        assert!(HISTORY_VERSIONS_CHECKED.load(Ordering::Relaxed) > seeds * 10);
        assert!(CONFLICTS_REPORTED.load(Ordering::Relaxed) > seeds);
        assert!(RESTAMPS_CHECKED.load(Ordering::Relaxed) > seeds / 50);
        // And runaway clocks ran: writes were held, reported, and written again.
        let runaways = RUNAWAYS.load(Ordering::Relaxed);
        eprintln!(
            "runaway clocks {runaways} (came back {}), held writes {}, written again {}, \
             ClockAhead reports required {}, ClockApart reports checked {} (required {}), \
             syncs cancelled on a runaway retry {}",
            RUNAWAYS_BACK.load(Ordering::Relaxed),
            HELD_WRITES.load(Ordering::Relaxed),
            REWRITTEN.load(Ordering::Relaxed),
            CLOCK_AHEAD_REPORTED.load(Ordering::Relaxed),
            CLOCK_APART_CHECKED.load(Ordering::Relaxed),
            CLOCK_APART_REPORTED.load(Ordering::Relaxed),
            STUCK_RETRIES.load(Ordering::Relaxed),
        );
        if !runaways_enabled() {
            assert_eq!(runaways, 0);
            return;
        }
        assert!(runaways > seeds / 20);
        assert!(RUNAWAYS_BACK.load(Ordering::Relaxed) > runaways / 3);
        assert!(HELD_WRITES.load(Ordering::Relaxed) > runaways);
        assert!(REWRITTEN.load(Ordering::Relaxed) > runaways / 3);
        assert!(CLOCK_AHEAD_REPORTED.load(Ordering::Relaxed) > runaways);
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

// ---- People sharing a vault: shares and revocations under syncs, crashes and faults ----
//
// The same in-memory S3 and fault model, with a shared vault's replicas (`Engine::set_sharing`,
// as `Session::enter_shared` makes them): Alice founds the vault (two devices, owner), admits
// Bob (one or two devices, role write) and Carol (one device, role read) at random steps, the
// statement reaching their devices at once as their grant would bring it, and in most seeds
// revokes Bob at a random step (often in the middle of a sync of the revoking device), while
// Alice's and Bob's devices write, everyone syncs (or polls), crashes and restarts from its
// disk (entering the vault again, as a host does), and requests fail, lose their answers, come
// back truncated or twice, or land late after a crash; in half the seeds four days pass at once
// (segments covered by checkpoints are deleted). Carol may be admitted after the revocation. In
// three seeds in four Dave, a fourth person nobody admitted, has a device with the vault's key
// (obtained "illegally"): entered as himself (he signs) or bare (unsigned objects). Then the
// faults stop, everyone syncs until nothing moves, a new device of Alice's, a new device of
// Carol's and a bare replica of the vault's first key (what Bob, or anyone holding that key,
// can run) join, and the checks run:
//
// - **Members converge** on the model: Alice's writes, Bob's writes in segments up to the
//   revocation's pins (what Alice's revoking device had merged of each of his devices), nothing
//   of Dave's (not even in a key's history) and nothing Bob never pushed; a write Bob made on a
//   device that had heard of his revocation is in no segment. Every member ends exactly there,
//   those that merged Bob's writes above the pins before the revocation reached them too (they
//   forget what they merged and read the vault again, FORMAT 17.9; [`People::note_heard`]
//   counts how often one held such a write). Every member resolves the same members, Bob
//   revoked with the revoking device's pins; nothing is left unpushed.
// - **Nothing written under the new key is readable with the first one**: a write made by a
//   device that held a key generation above 0 (`Engine::later_keys`) is in no object that ever
//   landed in the store and opens with the vault's first key (every segment and checkpoint is
//   tried; those sealed with a later generation must not open), and in no version that Bob's
//   devices, Dave's or the bare replica hold.
// - **No non-member gets a key**: no key grant in the store opens for Bob or Dave, and none is
//   named for them; Alice's and Carol's are there, and every member's device holds the new key.
//
// `BUCKETSYNC_SIM_PEOPLE_SEEDS=N` (else `BUCKETSYNC_SIM_SEEDS`, else [`PEOPLE_DEFAULT_SEEDS`])
// seeds; `BUCKETSYNC_SIM_PEOPLE_SEED=S` (else `BUCKETSYNC_SIM_SEED`) runs seed S alone and
// prints its schedule; `BUCKETSYNC_SIM_KEEP_GOING=1` lists every failing seed.

/// Salts the draws of a sharing seed (a stream of its own).
const PEOPLE_SALT: u64 = 0x5ea4_ed00_0000_0004;

static PEOPLE_REVOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Revocations made while the revoking device was in the middle of a sync.
static PEOPLE_REVOKED_MID_SYNC: AtomicU64 = AtomicU64::new(0);
/// Carol admitted after Bob's revocation (she needs the new key from a grant all the same).
static PEOPLE_ADMITTED_AFTER: AtomicU64 = AtomicU64::new(0);
/// Writes made by a device holding a later key generation.
static PEOPLE_SEALED_LATER: AtomicU64 = AtomicU64::new(0);
/// Writes of Alice's devices made after the revocation, before the device held the new key
/// (a device that had not heard of it yet): sealed with the first key, readable by Bob.
static PEOPLE_BEFORE_NEW_KEY: AtomicU64 = AtomicU64::new(0);
/// Segments and checkpoints that landed sealed with a later generation.
static PEOPLE_LATER_SEGMENTS: AtomicU64 = AtomicU64::new(0);
static PEOPLE_LATER_CHECKPOINTS: AtomicU64 = AtomicU64::new(0);
/// Bob's writes pushed in segments above the pins (or of a device not pinned).
static PEOPLE_BOB_ABOVE_PINS: AtomicU64 = AtomicU64::new(0);
/// Alice's other devices that heard of the revocation while holding one of Bob's writes above
/// the pins as a key's current version (they must forget it; see `People::note_heard`).
static PEOPLE_HEARD_HOLDING: AtomicU64 = AtomicU64::new(0);
/// Bob's writes counted (segments up to the pins), and those he never pushed.
static PEOPLE_BOB_COUNTED: AtomicU64 = AtomicU64::new(0);
static PEOPLE_BOB_UNPUSHED: AtomicU64 = AtomicU64::new(0);
/// Bob's writes made on a device that had heard of his revocation (checked: never pushed).
static PEOPLE_BOB_AFTER_HEARD: AtomicU64 = AtomicU64::new(0);
static PEOPLE_DAVE_WRITES: AtomicU64 = AtomicU64::new(0);
static PEOPLE_RESTARTS: AtomicU64 = AtomicU64::new(0);
/// Checkpoints adopted by the devices that joined at the end.
static PEOPLE_JOIN_CHECKPOINTS: AtomicU64 = AtomicU64::new(0);
static PEOPLE_SEGMENTS_DELETED: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Person {
    Alice,
    Bob,
    Carol,
    Dave,
}

impl Person {
    fn index(self) -> usize {
        self as usize
    }
}

/// One device of one person.
struct Device {
    name: &'static str,
    person: Person,
    /// Entered through the person's home (signs what it writes, counts only members' writes):
    /// everyone's but a bare replica's.
    shared: bool,
    mode: OpenMode,
    engine: Engine,
    disk: Disk,
    /// Milliseconds its wall clock is off (±1 hour, jumps back now and then).
    skew: i64,
    inflight: Vec<Request>,
    /// How its last sync ended.
    outcome: Option<Result<bucketsync::SyncReport, String>>,
    /// It held one of Bob's writes as a key's current version after its last answer.
    held_bobs: bool,
    view: AppView,
    history: HistoryPolicy,
}

/// One acknowledged write.
#[derive(Clone, Debug)]
struct SharedWrite {
    device: usize,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    stamp: Stamp,
    /// Its device held a key generation above 0 when it wrote it.
    sealed_later: bool,
    /// Made after Alice revoked Bob.
    after_revocation: bool,
    /// Made by a device of Bob's that had heard of his revocation.
    writer_revoked: bool,
}

/// Alice's revocation of Bob.
struct Revocation {
    step: usize,
    pins: Vec<(DeviceId, u64)>,
}

/// What the model expects of a write, for a member's replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counted {
    /// Every member ends with it, or a write that beats it.
    Yes,
    /// Bob's, in a segment above the pins: a member that merged it before the revocation
    /// reached it may keep it; the revoking device and later devices never have it.
    Maybe,
    /// Never in a member's replica: Dave's, or Bob's never pushed.
    No,
}

/// `bucket` applies `request`; every segment and checkpoint of `key`'s vault that lands is
/// kept in `landed`, by name.
fn apply_keeping(
    bucket: &mut Bucket,
    landed: &mut Vec<(String, Vec<u8>)>,
    key: &VaultKey,
    request: &Request,
) -> Response {
    let response = bucket.apply(request);
    if matches!(request.method, Method::Put) && response.status == 200 {
        if let Some(name) = vault_name(key, &request.url) {
            if name.starts_with("s/") || name.starts_with("c/") {
                landed.push((name, request.body.to_vec()));
            }
        }
    }
    response
}

/// The name of an object inside `key`'s vault folder, from its URL.
fn vault_name(key: &VaultKey, url: &str) -> Option<String> {
    let path = url.strip_prefix(ORIGIN)?.split('?').next()?;
    let path = percent_decode(path);
    let folder = format!("/{}/", key.vault_id());
    let at = path.find(&folder)?;
    Some(path[at + folder.len()..].to_owned())
}

struct People {
    rng: Rng,
    key: VaultKey,
    /// Each person's home key (their identity derives from it).
    homes: Vec<VaultKey>,
    publics: Vec<PublicIdentity>,
    alice: Fingerprint,
    /// When Alice founded the vault (her devices sign the same founding statement).
    founded: Timestamp,
    bucket: Bucket,
    devices: Vec<Device>,
    orphans: Vec<Request>,
    now: u64,
    writes: Vec<SharedWrite>,
    /// Every segment and checkpoint that landed in the store (name in the vault folder, body).
    landed: Vec<(String, Vec<u8>)>,
    compaction: CompactionPolicy,
    admitted: [bool; 4],
    /// The statement that admitted each person: their grant carries it, and their devices
    /// take it each time they enter the vault (as `Session::enter_shared` does).
    statements: Vec<Option<Statement>>,
    revocation: Option<Revocation>,
    /// Devices that joined at the end: members' (checked exactly) and the bare replica.
    joined: Vec<usize>,
    /// Alice's devices other than the revoking one that have heard of the revocation, and
    /// Bob's writes that one of them held as a key's current version before it heard (see
    /// [`People::note_heard`]).
    heard: BTreeSet<usize>,
    passed_on: BTreeSet<Stamp>,
    trace: DefaultHasher,
    verbose: bool,
}

/// Makes `engine` a replica of the shared vault `key` for the person whose home is `home`, as
/// a host does each time it opens the vault through the home.
fn enter(
    engine: &mut Engine,
    home: &VaultKey,
    key: &VaultKey,
    alice: Fingerprint,
    founded: Timestamp,
    statement: Option<&Statement>,
) {
    let keys = [GenerationKey {
        generation: 0,
        key: key.clone(),
    }];
    let identity = Identity::of_home(home);
    engine
        .set_sharing(identity, alice, &keys, statement.cloned(), founded)
        .expect("the vault's own key comes first");
}

impl People {
    fn new(seed: u64, verbose: bool) -> People {
        let mut rng = Rng(seed ^ PEOPLE_SALT);
        let key = VaultKey::from_bytes(rng.seed());
        let homes: Vec<VaultKey> = (0..4).map(|_| VaultKey::from_bytes(rng.seed())).collect();
        let publics: Vec<PublicIdentity> = homes
            .iter()
            .map(|h| Identity::of_home(h).public().clone())
            .collect();
        let alice = publics[0].fingerprint();
        let min_tail_segments = 1 + rng.below(6);
        let compaction = CompactionPolicy {
            min_tail_segments,
            max_tail_segments: min_tail_segments + rng.below(10),
            bytes_ratio: 1 + rng.below(8),
            segment_overhead_bytes: rng.below(4096),
            max_future_ms: MAX_FUTURE_MS,
            ..CompactionPolicy::default()
        };
        let mut people = People {
            rng,
            key,
            homes,
            publics,
            alice,
            founded: Timestamp(START_MS - DAY_MS),
            bucket: Bucket::default(),
            devices: Vec::new(),
            orphans: Vec::new(),
            now: START_MS,
            writes: Vec::new(),
            landed: Vec::new(),
            compaction,
            admitted: [true, false, false, false],
            statements: vec![None; 4],
            revocation: None,
            joined: Vec::new(),
            heard: BTreeSet::new(),
            passed_on: BTreeSet::new(),
            trace: DefaultHasher::new(),
            verbose,
        };
        people.add("a1", Person::Alice, true, 0xa1, OpenMode::Create);
        people.add("a2", Person::Alice, true, 0xa2, OpenMode::Join);
        people.add("b1", Person::Bob, true, 0xb1, OpenMode::Join);
        if people.rng.chance(500) {
            people.add("b2", Person::Bob, true, 0xb2, OpenMode::Join);
        }
        people.add("c1", Person::Carol, true, 0xc1, OpenMode::Join);
        if people.rng.chance(750) {
            let signs = people.rng.chance(500);
            people.add("d1", Person::Dave, signs, 0xd1, OpenMode::Join);
        }
        people
    }

    /// Adds a device (`shared`: entered through its person's home) whose id starts with `tag`.
    fn add(&mut self, name: &'static str, person: Person, shared: bool, tag: u8, mode: OpenMode) {
        let mut id = [0u8; 16];
        id[0] = tag;
        let store = Store::parse(STORE).unwrap();
        let entropy = Entropy::from_seed(self.rng.seed());
        let mut engine = Engine::new(&self.key, store, DeviceId(id), entropy);
        configure(&mut engine, self.compaction);
        engine.set_open_mode(mode);
        // A third of the devices keep no earlier versions (drawn without the schedule's
        // generator, so that every seed's schedule stays what it was).
        let history =
            if sip_hash_of(&[&self.key.vault_id().0[..], &[tag]].concat()).is_multiple_of(3) {
                HistoryPolicy {
                    versions: 0,
                    ..HistoryPolicy::default()
                }
            } else {
                HistoryPolicy::default()
            };
        engine.set_history_policy(history);
        if shared {
            let home = &self.homes[person.index()];
            let statement = self.statements[person.index()].as_ref();
            enter(
                &mut engine,
                home,
                &self.key,
                self.alice,
                self.founded,
                statement,
            );
        }
        let snapshot = engine.export_state();
        let journal = engine.journal_header().unwrap();
        let skew = self.rng.below(2 * 3_600_000) as i64 - 3_600_000;
        self.devices.push(Device {
            name,
            person,
            shared,
            mode,
            engine,
            disk: Disk { snapshot, journal },
            skew,
            inflight: Vec::new(),
            outcome: None,
            held_bobs: false,
            view: AppView::default(),
            history,
        });
        let device = self.devices.last_mut().expect("just added");
        device.view = AppView::of(&device.engine);
    }

    fn of(&self, person: Person) -> Vec<usize> {
        (0..self.devices.len())
            .filter(|d| self.devices[*d].person == person && !self.joined.contains(d))
            .collect()
    }

    /// Whether device `d`'s person is a member now (admitted, not revoked), and it is one of
    /// theirs entered through their home.
    fn member(&self, d: usize) -> bool {
        let device = &self.devices[d];
        device.shared
            && self.admitted[device.person.index()]
            && !(device.person == Person::Bob && self.revocation.is_some())
    }

    fn log(&mut self, line: String) {
        line.hash(&mut self.trace);
        if self.verbose {
            eprintln!("{line}");
        }
    }

    fn time(&self, d: usize) -> Timestamp {
        Timestamp(self.now.saturating_add_signed(self.devices[d].skew))
    }

    fn persist(&mut self, d: usize) {
        let device = &mut self.devices[d];
        if let Some(entry) = device.engine.poll_journal() {
            device.disk.journal.extend_from_slice(&entry);
        }
    }

    /// The store applies `request`; every segment and checkpoint that lands is kept.
    fn apply(&mut self, request: &Request) -> Response {
        apply_keeping(&mut self.bucket, &mut self.landed, &self.key, request)
    }

    fn drain(&mut self, d: usize) {
        let now = self.time(d);
        let device = &mut self.devices[d];
        while let Some(request) = device.engine.poll_request(now) {
            device.inflight.push(request);
        }
        if let Some(outcome) = device.engine.poll_outcome() {
            let name = device.name;
            let line = match &outcome {
                Ok(report) => {
                    PEOPLE_SEGMENTS_DELETED.fetch_add(report.segments_deleted, Ordering::Relaxed);
                    assert!(
                        report.started_over.is_none(),
                        "{name} started over: nothing here makes a device start over"
                    );
                    let errors: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
                    format!("  {name} sync ok: {report} {errors:?}")
                }
                Err(e) => format!("  {name} sync failed: {e}"),
            };
            if let Ok(report) = &outcome {
                device.view.refresh(&device.engine, &report.changed);
            }
            device.outcome = Some(outcome.map_err(|e| e.to_string()));
            self.persist(d);
            self.log(line);
        }
        self.persist(d);
        self.note_heard(d);
    }

    /// Until one of Alice's devices other than the revoking one hears of the revocation, keeps
    /// Bob's writes it holds as a key's current version (after every answer it handles): it
    /// merged them before it heard, possibly from segments above the pins, and may have put
    /// them in a checkpoint. When it hears, it must forget them (and readers must refuse such
    /// a checkpoint, sealed under the first key): counted in `PEOPLE_HEARD_HOLDING`.
    fn note_heard(&mut self, d: usize) {
        if d == 0
            || self.devices[d].person != Person::Alice
            || self.heard.contains(&d)
            || self.joined.contains(&d)
        {
            return;
        }
        let engine = &self.devices[d].engine;
        let bobs: BTreeSet<DeviceId> = self
            .of(Person::Bob)
            .iter()
            .map(|b| self.devices[*b].engine.device())
            .collect();
        let keys: BTreeSet<&Vec<u8>> = self.writes.iter().map(|w| &w.key).collect();
        let mut holds = false;
        for key in keys {
            if let Some(record) = engine
                .record(key)
                .filter(|r| bobs.contains(&r.stamp.device))
            {
                self.passed_on.insert(record.stamp);
                holds = true;
            }
        }
        let bob = self.publics[Person::Bob.index()].fingerprint();
        let heard = self.revocation.is_some()
            && engine.members().iter().any(|m| {
                m.identity.fingerprint() == bob && matches!(m.standing, Standing::Revoked(_))
            });
        // As of the answer before: the one that brings the revocation forgets them at once.
        let held_before = std::mem::replace(&mut self.devices[d].held_bobs, holds);
        if heard {
            if held_before {
                PEOPLE_HEARD_HOLDING.fetch_add(1, Ordering::Relaxed);
            }
            self.heard.insert(d);
            let name = self.devices[d].name;
            self.log(format!("{name} hears of the revocation"));
        }
    }

    fn restart(&mut self, d: usize) {
        PEOPLE_RESTARTS.fetch_add(1, Ordering::Relaxed);
        let store = Store::parse(STORE).unwrap();
        let entropy = Entropy::from_seed(self.rng.seed());
        let device = &mut self.devices[d];
        self.orphans.append(&mut device.inflight);
        let restored = Engine::restore(
            &self.key,
            store,
            &device.disk.snapshot,
            &device.disk.journal,
            entropy,
        )
        .unwrap_or_else(|e| panic!("{} cannot restart from its disk: {e}", device.name));
        device.engine = restored.engine;
        configure(&mut device.engine, self.compaction);
        device.engine.set_history_policy(device.history);
        device.engine.set_open_mode(device.mode);
        match restored.journal_keep {
            Some(keep) => device.disk.journal.truncate(keep),
            None => {
                device.disk.snapshot = device.engine.export_state();
                device.disk.journal = device.engine.journal_header().unwrap();
            }
        }
        if device.shared {
            let home = &self.homes[device.person.index()];
            let statement = self.statements[device.person.index()].as_ref();
            enter(
                &mut device.engine,
                home,
                &self.key,
                self.alice,
                self.founded,
                statement,
            );
        }
        device.view = AppView::of(&device.engine);
        let line = format!(
            "{} restarted ({} entries replayed)",
            device.name, restored.replayed
        );
        self.persist(d);
        self.log(line);
    }

    fn compact(&mut self, d: usize, crash_between: bool) {
        let device = &mut self.devices[d];
        device.disk.snapshot = device.engine.export_state();
        let name = device.name;
        if crash_between {
            self.log(format!(
                "{name} snapshot written, crash before the journal reset"
            ));
            return self.restart(d);
        }
        device.disk.journal = device.engine.journal_header().unwrap();
        self.log(format!("{name} snapshot"));
    }

    fn write(&mut self, d: usize, faults: &Faults) {
        let key = format!("k{}", self.rng.below(12)).into_bytes();
        let value = (!self.rng.chance(200)).then(|| self.rng.next().to_le_bytes().to_vec());
        let now = self.time(d);
        let engine = &mut self.devices[d].engine;
        let stamp = match &value {
            Some(v) => engine.put(key.clone(), v.clone(), now),
            None => engine.delete(key.clone(), now),
        };
        let name = self.devices[d].name;
        let device = &mut self.devices[d];
        device
            .view
            .refresh(&device.engine, std::slice::from_ref(&key));
        if self.rng.chance(faults.crash) {
            let entry = self.devices[d].engine.poll_journal().unwrap_or_default();
            let cut = self.rng.below(entry.len() as u64) as usize;
            self.devices[d]
                .disk
                .journal
                .extend_from_slice(&entry[..cut]);
            self.log(format!("{name} write {key:?} torn at {cut} bytes, crash"));
            return self.restart(d);
        }
        self.persist(d);
        let sealed_later = !self.devices[d].engine.later_keys().is_empty();
        let after_revocation = self.revocation.is_some();
        let writer_revoked = matches!(
            self.devices[d].engine.own_standing(),
            Some(Standing::Revoked(_))
        );
        if sealed_later {
            PEOPLE_SEALED_LATER.fetch_add(1, Ordering::Relaxed);
        } else if after_revocation && self.devices[d].person == Person::Alice {
            PEOPLE_BEFORE_NEW_KEY.fetch_add(1, Ordering::Relaxed);
        }
        if self.devices[d].person == Person::Dave {
            PEOPLE_DAVE_WRITES.fetch_add(1, Ordering::Relaxed);
        }
        if writer_revoked {
            PEOPLE_BOB_AFTER_HEARD.fetch_add(1, Ordering::Relaxed);
        }
        self.log(format!(
            "{name} write {key:?} {}{}",
            value.is_some(),
            if sealed_later {
                " (holds a later key)"
            } else {
                ""
            }
        ));
        self.writes.push(SharedWrite {
            device: d,
            key,
            value,
            stamp,
            sealed_later,
            after_revocation,
            writer_revoked,
        });
    }

    /// Alice's first device admits `person` with `role` (the next sync publishes it).
    fn admit(&mut self, person: Person, role: Role) {
        let now = self.time(0);
        let public = self.publics[person.index()].clone();
        let statement = self.devices[0]
            .engine
            .admit(&public, role, now)
            .unwrap_or_else(|e| panic!("a1 admits {person:?}: {e}"));
        let statement = statement.unwrap_or_else(|| panic!("a statement about {person:?}"));
        // The grant carries it: the person's devices enter the vault again with it at once
        // (those entered through their home), before Alice's next sync publishes it.
        for d in self.of(person) {
            if self.devices[d].shared {
                let home = &self.homes[person.index()];
                let engine = &mut self.devices[d].engine;
                enter(
                    engine,
                    home,
                    &self.key,
                    self.alice,
                    self.founded,
                    Some(&statement),
                );
                self.persist(d);
            }
        }
        self.statements[person.index()] = Some(statement);
        self.admitted[person.index()] = true;
        if person == Person::Carol && self.revocation.is_some() {
            PEOPLE_ADMITTED_AFTER.fetch_add(1, Ordering::Relaxed);
        }
        self.persist(0);
        self.log(format!("a1 admits {person:?} ({role})"));
    }

    /// Alice's first device revokes Bob (also in the middle of a sync).
    fn revoke(&mut self, step: usize) {
        let now = self.time(0);
        let bob = self.publics[Person::Bob.index()].fingerprint();
        let engine = &mut self.devices[0].engine;
        let syncing = engine.is_syncing();
        let before = engine
            .revoke(&bob.to_string(), now)
            .unwrap_or_else(|e| panic!("a1 revokes Bob: {e}"));
        assert_eq!(before.standing, Standing::Member(Role::Write));
        let pins = match engine
            .members()
            .into_iter()
            .find(|m| m.identity.fingerprint() == bob)
        {
            Some(m) => match m.standing {
                Standing::Revoked(pins) => pins,
                other => panic!("Bob is {other:?} right after his revocation"),
            },
            None => panic!("Bob is gone from the members"),
        };
        assert!(
            !engine.later_keys().is_empty(),
            "the revoking device holds the new key"
        );
        PEOPLE_REVOCATIONS.fetch_add(1, Ordering::Relaxed);
        if syncing {
            PEOPLE_REVOKED_MID_SYNC.fetch_add(1, Ordering::Relaxed);
        }
        self.persist(0);
        self.log(format!(
            "a1 revokes Bob{}, pins {pins:?}",
            if syncing {
                " in the middle of a sync"
            } else {
                ""
            }
        ));
        self.revocation = Some(Revocation { step, pins });
    }

    fn start(&mut self, d: usize, poll: bool) {
        let now = self.time(d);
        let name = self.devices[d].name;
        let engine = &mut self.devices[d].engine;
        let started = if poll {
            engine.start_poll(now, false).map(|()| "poll")
        } else {
            engine.start_sync(now).map(|()| "sync")
        };
        if let Ok(what) = started {
            self.log(format!("{name} start {what}"));
        }
        self.drain(d);
    }

    fn deliver(&mut self, d: usize, faults: Option<&Faults>) {
        let pick = self.rng.below(self.devices[d].inflight.len() as u64) as usize;
        let request = self.devices[d].inflight.swap_remove(pick);
        let (bucket, landed, key) = (&mut self.bucket, &mut self.landed, &self.key);
        let (response, what) = answer(&mut self.rng, faults, &request, |r| {
            apply_keeping(bucket, landed, key, r)
        });
        let status = response.as_ref().map_or(0, |r| r.status);
        let name = self.devices[d].name;
        self.log(format!(
            "{name} {what} {:?} {} -> {status}",
            request.kind, request.url
        ));
        let now = self.time(d);
        self.devices[d]
            .engine
            .handle_response(request.id, response, now);
        self.drain(d);
    }

    /// `age_at`: the step at which four days or so pass at once (more than a heartbeat
    /// period: segments that checkpoints cover get deleted), if any.
    fn random_phase(&mut self, steps: usize, age_at: Option<usize>) {
        let faults = Faults {
            fail: self.rng.below(150),
            lose_answer: self.rng.below(80),
            truncate: self.rng.below(60),
            duplicate: self.rng.below(60),
            crash: self.rng.below(40),
            compact: self.rng.below(80),
            clock_jump: self.rng.below(30),
            applied_error: 0,
        };
        let bob_at = self.rng.below(steps as u64 / 4) as usize;
        let carol_at = self.rng.below(steps as u64) as usize;
        let last = steps * 9 / 10;
        let revoke_at = self
            .rng
            .chance(850)
            .then(|| bob_at + 1 + self.rng.below((last - bob_at - 1) as u64) as usize);
        for step in 0..steps {
            if step == bob_at {
                self.admit(Person::Bob, Role::Write);
            }
            if step == carol_at {
                self.admit(Person::Carol, Role::Read);
            }
            if Some(step) == revoke_at {
                self.revoke(step);
            }
            if Some(step) == age_at {
                self.age();
            }
            self.now += self.rng.below(400);
            let d = self.rng.below(self.devices.len() as u64) as usize;
            match self.rng.below(100) {
                0..=29 if self.devices[d].person != Person::Carol => self.write(d, &faults),
                0..=39 => {
                    let poll = self.rng.chance(300);
                    self.start(d, poll);
                }
                40..=89 => {
                    if self.devices[d].inflight.is_empty() {
                        self.drain(d);
                    } else {
                        self.deliver(d, Some(&faults));
                    }
                }
                90..=93 if !self.orphans.is_empty() => {
                    let i = self.rng.below(self.orphans.len() as u64) as usize;
                    let orphan = self.orphans.swap_remove(i);
                    let status = self.apply(&orphan).status;
                    self.log(format!("orphan {:?} lands -> {status}", orphan.kind));
                }
                _ => {
                    let name = self.devices[d].name;
                    if self.rng.chance(faults.crash * 5) {
                        self.log(format!("{name} crash"));
                        self.restart(d);
                    } else if self.rng.chance(faults.compact * 3) {
                        let between = self.rng.chance(200);
                        self.compact(d, between);
                    } else if self.rng.chance(faults.clock_jump * 10) {
                        let back = self.rng.below(600_000) as i64;
                        self.devices[d].skew -= back;
                        self.log(format!("{name} clock jumps back {back} ms"));
                    }
                }
            }
        }
    }

    /// Four days or so pass: more than a heartbeat period (an eighth of the default grace
    /// period), so that segments a manifest said may be deleted are deleted at the next sync,
    /// and less than the grace period over the whole run (nobody starts over).
    fn age(&mut self) {
        let days = 4 * DAY_MS + self.rng.below(DAY_MS);
        self.now += days;
        self.log(format!("{days} ms pass"));
    }

    fn run_out(&mut self, d: usize) {
        loop {
            self.drain(d);
            if !self.devices[d].inflight.is_empty() {
                self.deliver(d, None);
            } else if let Some(due) = self.devices[d].engine.poll_timeout() {
                let wait = due.0.saturating_sub(self.time(d).0);
                assert!(
                    wait <= DAY_MS,
                    "{} has a retry due in {wait} ms",
                    self.devices[d].name
                );
                self.now += wait + 1;
            } else if !self.devices[d].engine.is_syncing() {
                return;
            } else {
                panic!(
                    "{} is syncing with nothing out and nothing due",
                    self.devices[d].name
                );
            }
        }
    }

    fn full_sync(&mut self, d: usize) -> Result<bucketsync::SyncReport, String> {
        self.run_out(d);
        let now = self.time(d);
        self.devices[d]
            .engine
            .start_sync(now)
            .map_err(|e| e.to_string())?;
        self.run_out(d);
        self.devices[d]
            .outcome
            .clone()
            .expect("a finished sync has an outcome")
    }

    /// Errors a member's quiet sync may report: Dave's log, refused (not a member, or not
    /// signed).
    fn expected_error(&self, error: &Error) -> bool {
        let dave = self.of(Person::Dave);
        error.category() == Category::Access
            && dave.iter().any(|d| {
                error
                    .to_string()
                    .contains(&self.devices[*d].engine.device().to_string())
            })
    }

    /// Faults off: every device finishes what it has out, then all sync, round after round,
    /// until a round moves nothing for any member. Bob's devices stop once they see the
    /// revocation (`access`); Dave's may fail as they like.
    fn quiesce(&mut self) {
        self.orphans.clear();
        for d in 0..self.devices.len() {
            self.run_out(d);
        }
        let mut quiet_rounds = 0;
        for round in 0..12 {
            let mut moved = false;
            for d in 0..self.devices.len() {
                let outcome = self.full_sync(d);
                if !self.member(d) {
                    continue;
                }
                let name = self.devices[d].name;
                let report = outcome.unwrap_or_else(|e| {
                    panic!("round {round}: {name}'s sync failed without faults: {e}")
                });
                moved |= report.pushed > 0 || report.pulled > 0;
                if quiet_rounds > 0 {
                    let unexpected: Vec<String> = report
                        .errors
                        .iter()
                        .filter(|e| !self.expected_error(e))
                        .map(|e| e.to_string())
                        .collect();
                    assert!(
                        unexpected.is_empty(),
                        "round {round}: {name}'s quiet sync reports {unexpected:?}"
                    );
                }
            }
            quiet_rounds = if moved { 0 } else { quiet_rounds + 1 };
            if quiet_rounds == 2 {
                return;
            }
        }
        panic!("the members did not settle in 12 rounds");
    }

    /// New devices join once everything settled: Alice's, Carol's, and a bare replica of the
    /// vault's first key (not entered through any home: what Bob can run).
    fn join(&mut self) {
        let before = self.devices.len();
        self.add("a3", Person::Alice, true, 0xa3, OpenMode::Join);
        self.add("c2", Person::Carol, true, 0xc2, OpenMode::Join);
        self.add("bare", Person::Bob, false, 0xee, OpenMode::Join);
        for d in before..self.devices.len() {
            self.joined.push(d);
            let name = self.devices[d].name;
            let report = self
                .full_sync(d)
                .unwrap_or_else(|e| panic!("{name} could not join: {e}"));
            PEOPLE_JOIN_CHECKPOINTS.fetch_add(
                report.requests_of(RequestKind::GetCheckpoint),
                Ordering::Relaxed,
            );
            self.log(format!("{name} joined: {report}"));
        }
    }

    /// Every segment and checkpoint that ever landed: those sealed with the first key open
    /// with it and hold no write made by a device that held a later key; the others do not
    /// open with it. Returns, for every change in a segment of Bob's devices, the lowest
    /// segment number it is in.
    fn check_landed(&self) -> std::collections::HashMap<(Vec<u8>, Stamp), u64> {
        let later: BTreeSet<Stamp> = self
            .writes
            .iter()
            .filter(|w| w.sealed_later)
            .map(|w| w.stamp)
            .collect();
        let bobs: BTreeSet<DeviceId> = self
            .of(Person::Bob)
            .iter()
            .map(|d| self.devices[*d].engine.device())
            .collect();
        let mut in_segment = std::collections::HashMap::new();
        for (name, body) in &self.landed {
            // The signed-object prefix (FORMAT 17.7), read without checking its signature (the
            // readers do; this only needs the generation and the envelope).
            let (generation, body) = if signed::is_signed(body) {
                let generation = u32::from_be_bytes(body[5..9].try_into().unwrap());
                (generation, body[signed::SIGNED_PREFIX_LEN..].to_vec())
            } else {
                (0, body.clone())
            };
            let mut parts = name.split('/');
            let (kind, device, number) = (parts.next(), parts.next(), parts.next());
            let device = DeviceId::parse(device.expect("<kind>/<device>/<number>")).unwrap();
            let number = u64::from_str_radix(number.expect("a number"), 16).unwrap();
            match kind {
                Some("s") => {
                    let opened = segment::open(&self.key, device, number, body);
                    if generation > 0 {
                        PEOPLE_LATER_SEGMENTS.fetch_add(1, Ordering::Relaxed);
                        assert!(
                            opened.is_err(),
                            "{name}, sealed with generation {generation}, opens with the first key"
                        );
                        assert!(
                            !bobs.contains(&device),
                            "Bob's {name} is sealed with a later key"
                        );
                        continue;
                    }
                    let opened = opened.unwrap_or_else(|e| panic!("{name} does not open: {e}"));
                    for change in opened.changes {
                        let stamp = Stamp {
                            hlc: change.hlc,
                            device,
                        };
                        assert!(
                            !later.contains(&stamp),
                            "{name}, sealed with the first key, holds {:?} written by a device holding a later key",
                            change.key
                        );
                        if bobs.contains(&device) {
                            let seq = in_segment.entry((change.key, stamp)).or_insert(number);
                            *seq = (*seq).min(number);
                        }
                    }
                }
                Some("c") => {
                    let opened = testing::open(&self.key, testing::Kind::Checkpoint, name, body);
                    if generation > 0 {
                        PEOPLE_LATER_CHECKPOINTS.fetch_add(1, Ordering::Relaxed);
                        assert!(
                            opened.is_err(),
                            "{name}, sealed with generation {generation}, opens with the first key"
                        );
                        continue;
                    }
                    let (version, plaintext) =
                        opened.unwrap_or_else(|e| panic!("{name} does not open: {e}"));
                    let plaintext = testing::layout_bytes(version, plaintext)
                        .unwrap_or_else(|e| panic!("{name} does not inflate: {e}"));
                    let checkpoint: CheckpointPlain = postcard::from_bytes(&plaintext)
                        .unwrap_or_else(|e| panic!("{name} does not decode as a checkpoint: {e}"));
                    for (key, record) in checkpoint.records {
                        assert!(
                            !later.contains(&record.stamp),
                            "{name}, sealed with the first key, holds {key:?} {record:?} written by a device holding a later key"
                        );
                    }
                }
                _ => unreachable!("only segments and checkpoints are kept"),
            }
        }
        in_segment
    }

    /// What the model expects of each write in a member's replica.
    fn counted(
        &self,
        in_segment: &std::collections::HashMap<(Vec<u8>, Stamp), u64>,
    ) -> Vec<Counted> {
        self.writes
            .iter()
            .map(|w| match self.devices[w.device].person {
                Person::Alice => Counted::Yes,
                Person::Carol => unreachable!("Carol writes nothing"),
                Person::Dave => Counted::No,
                Person::Bob => {
                    let pushed = in_segment.get(&(w.key.clone(), w.stamp));
                    assert!(
                        !(w.writer_revoked && pushed.is_some()),
                        "{} pushed {:?}, written after it heard of Bob's revocation",
                        self.devices[w.device].name,
                        w.key
                    );
                    let Some(seq) = pushed else {
                        // Never pushed (still unpushed, or overwritten on his device first).
                        PEOPLE_BOB_UNPUSHED.fetch_add(1, Ordering::Relaxed);
                        return match self.revocation {
                            None => Counted::Yes,
                            Some(_) => Counted::No,
                        };
                    };
                    let Some(revocation) = &self.revocation else {
                        PEOPLE_BOB_COUNTED.fetch_add(1, Ordering::Relaxed);
                        return Counted::Yes;
                    };
                    let pin = revocation
                        .pins
                        .iter()
                        .find(|(d, _)| *d == w.stamp.device)
                        .map_or(0, |(_, p)| *p);
                    if *seq <= pin {
                        PEOPLE_BOB_COUNTED.fetch_add(1, Ordering::Relaxed);
                        Counted::Yes
                    } else {
                        PEOPLE_BOB_ABOVE_PINS.fetch_add(1, Ordering::Relaxed);
                        Counted::Maybe
                    }
                }
            })
            .collect()
    }

    fn describe(&self, key: &[u8], counted: &[Counted]) -> String {
        let revocation = match &self.revocation {
            Some(r) => format!("  (Bob revoked at step {}, pins {:?})\n", r.step, r.pins),
            None => "  (no revocation)\n".into(),
        };
        revocation
            + &self
                .writes
                .iter()
                .zip(counted)
                .filter(|(w, _)| w.key == key)
                .map(|(w, c)| {
                    format!(
                        "  {c:?} by {}: {} {} {} {:?}{}{}{}",
                        self.devices[w.device].name,
                        w.stamp.hlc.wall_ms,
                        w.stamp.hlc.counter,
                        w.stamp.device,
                        w.value,
                        if w.after_revocation {
                            " after the revocation"
                        } else {
                            ""
                        },
                        if w.sealed_later {
                            " (a later key held)"
                        } else {
                            ""
                        },
                        if self.passed_on.contains(&w.stamp) {
                            " (held by another device of Alice's before it heard of the revocation)"
                        } else {
                            ""
                        },
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
    }

    fn check(&mut self) {
        let in_segment = self.check_landed();
        let counted = self.counted(&in_segment);
        let keys: BTreeSet<Vec<u8>> = self.writes.iter().map(|w| w.key.clone()).collect();
        let record = |w: &SharedWrite| Record {
            value: w.value.clone(),
            stamp: w.stamp,
        };
        let members: Vec<usize> = (0..self.devices.len())
            .filter(|d| self.member(*d))
            .collect();
        // Members converge on the model (up to Bob's writes above the pins, for those that
        // may have merged them before the revocation reached them).
        for &d in &members {
            let engine = &self.devices[d].engine;
            let name = self.devices[d].name;
            for key in &keys {
                let writes = || {
                    self.writes
                        .iter()
                        .zip(&counted)
                        .filter(|(w, _)| &w.key == key)
                };
                let base = writes()
                    .filter(|(_, c)| **c == Counted::Yes)
                    .map(|(w, _)| w)
                    .max_by_key(|w| w.stamp);
                let expected = base.map(record);
                let have = engine.record(key);
                assert!(
                    have == expected.as_ref(),
                    "{name}: record {key:?} is {have:?}; the model says {expected:?}; the writes:\n{}",
                    self.describe(key, &counted)
                );
            }
            for key in engine.keys(b"") {
                assert!(
                    keys.contains(&key),
                    "{name} has {key:?}, which nobody wrote"
                );
            }
            // Dave's writes are nowhere, not even in a key's history.
            for key in &keys {
                for version in engine.history(key) {
                    let writer = self
                        .writes
                        .iter()
                        .find(|w| w.stamp == version.stamp)
                        .map(|w| self.devices[w.device].person);
                    assert_ne!(
                        writer,
                        Some(Person::Dave),
                        "{name} holds Dave's write of {key:?} in its history: {version:?}"
                    );
                }
            }
        }
        // (A device whose syncs fail, Bob's once revoked, is told of nothing more.)
        for device in self
            .devices
            .iter()
            .filter(|d| matches!(d.outcome, Some(Ok(_))))
        {
            device.view.check(&device.engine, device.name);
        }
        // (So members converge: where the model accepts one record, all of them hold it.)
        // Everyone resolves the same members; Bob revoked with the revoking device's pins.
        let bob = self.publics[Person::Bob.index()].fingerprint();
        let standings = |d: usize| {
            let mut people: Vec<(Fingerprint, Standing)> = self.devices[d]
                .engine
                .members()
                .into_iter()
                .map(|m| (m.identity.fingerprint(), m.standing))
                .collect();
            people.sort_by_key(|(f, _)| *f);
            people
        };
        let expected = standings(0);
        let bob_standing = expected
            .iter()
            .find(|(f, _)| *f == bob)
            .map(|(_, s)| s.clone());
        match &self.revocation {
            Some(r) => assert_eq!(bob_standing, Some(Standing::Revoked(r.pins.clone()))),
            None => assert_eq!(bob_standing, Some(Standing::Member(Role::Write))),
        }
        assert_eq!(expected.len(), 3, "Alice, Bob and Carol: {expected:?}");
        for &d in &members {
            assert_eq!(standings(d), expected, "{}'s members", self.devices[d].name);
        }
        // Nothing left unpushed by a member.
        for &d in &members {
            let engine = &self.devices[d].engine;
            assert_eq!(
                engine.unpushed(),
                0,
                "{}: nothing left unpushed",
                self.devices[d].name
            );
        }
        // Nothing a device holding a later key wrote is held by Bob's devices, Dave's or the
        // bare replica, in any version.
        let later: BTreeSet<Stamp> = self
            .writes
            .iter()
            .filter(|w| w.sealed_later)
            .map(|w| w.stamp)
            .collect();
        for d in (0..self.devices.len()).filter(|d| !self.member(*d)) {
            let engine = &self.devices[d].engine;
            let name = self.devices[d].name;
            assert!(
                engine.later_keys().is_empty(),
                "{name}, no member, holds a later key generation"
            );
            for key in &keys {
                for version in engine.history(key) {
                    assert!(
                        !later.contains(&version.stamp),
                        "{name}, no member, holds {key:?} {version:?}, written under a later key"
                    );
                }
            }
        }
        // Key grants: every member left holds the new key, and has a grant; no grant opens for
        // Bob or Dave, and none is named for them.
        let vault = self.key.vault_id();
        if self.revocation.is_some() {
            for &d in &members {
                assert!(
                    !self.devices[d].engine.later_keys().is_empty(),
                    "{} holds no later key",
                    self.devices[d].name
                );
            }
        }
        let grants: Vec<(&String, &Vec<u8>)> = self
            .bucket
            .objects
            .iter()
            .filter(|(name, _)| name.contains("/g/"))
            .collect();
        for person in [Person::Alice, Person::Bob, Person::Carol, Person::Dave] {
            let identity = Identity::of_home(&self.homes[person.index()]);
            let opened: Vec<&String> = grants
                .iter()
                .filter(|(name, body)| {
                    let hex = name.split("/g/").nth(1).expect("g/<id>");
                    let mut id = [0u8; 16];
                    for (i, b) in id.iter_mut().enumerate() {
                        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
                    }
                    grant::open_rekey(body, vault, &id, &identity).is_ok()
                })
                .map(|(name, _)| *name)
                .collect();
            let member_left = matches!(person, Person::Alice | Person::Carol);
            assert_eq!(
                !opened.is_empty(),
                member_left && self.revocation.is_some(),
                "key grants that open for {person:?}: {opened:?}"
            );
        }
    }
}

/// A checkpoint's plaintext (postcard; `checkpoint::Checkpoint` in the core, not public).
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct CheckpointPlain {
    writer: DeviceId,
    number: u64,
    covers: Vec<(DeviceId, u64)>,
    clock: Hlc,
    horizon_ms: u64,
    records: Vec<(serde_bytes::ByteBuf, Record)>,
}

/// Runs one seed of people sharing a vault; returns its trace hash.
fn run_people(seed: u64, verbose: bool) -> u64 {
    let mut people = People::new(seed, verbose);
    // Alice's first device makes the vault and publishes her founding statement.
    people
        .full_sync(0)
        .unwrap_or_else(|e| panic!("a1 could not create the vault: {e}"));
    let steps = 150 + people.rng.below(200) as usize;
    let age_at = people
        .rng
        .chance(500)
        .then(|| people.rng.below(steps as u64) as usize);
    people.random_phase(steps, age_at);
    people.log(format!("quiesce ({} writes)", people.writes.len()));
    people.quiesce();
    if age_at.is_some() {
        people.age();
        people.quiesce();
    }
    people.join();
    people.check();
    people.trace.finish()
}

fn run_people_reporting(seed: u64) {
    let outcome = std::panic::catch_unwind(|| run_people(seed, false));
    if let Err(panic) = outcome {
        let message = panic_message(panic.as_ref());
        panic!(
            "seed {seed} failed: {message}\nreplay it with: BUCKETSYNC_SIM_PEOPLE_SEED={seed} cargo test -p bucketsync --test simulation two_persons -- --nocapture"
        );
    }
}

/// Seeds of the people simulation that fail today, passed over by seed-count runs (none now:
/// 10445 and 13142 were segments answered with an empty body, see
/// [`PEOPLE_TRUNCATED_SEGMENT_SEEDS`]). A seed found failing goes here with an ignored test
/// that runs it, as [`STILL_FAILING`] has.
const PEOPLE_STILL_FAILING: &[u64] = &[];

/// Seeds run by default: few in debug builds, where the unoptimised Ed25519 of every signed
/// object costs about 2.4 s a seed (0.16 s with `curve25519-dalek`, `ed25519-dalek` and `sha2`
/// optimised in the dev profile, as the other crypto crates are); 0.025 s a seed in release.
const PEOPLE_DEFAULT_SEEDS: u64 = if cfg!(debug_assertions) { 20 } else { 500 };

#[test]
fn two_persons_share_and_revoke_across_seeds() {
    let Some(seeds) = sim::run_seeds(
        &["BUCKETSYNC_SIM_PEOPLE_SEED", "BUCKETSYNC_SIM_SEED"],
        &["BUCKETSYNC_SIM_PEOPLE_SEEDS", "BUCKETSYNC_SIM_SEEDS"],
        PEOPLE_DEFAULT_SEEDS,
        PEOPLE_STILL_FAILING,
        "simulation",
        run_people,
    ) else {
        return;
    };
    let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
    eprintln!(
        "revocations {} (in the middle of a sync {}), Carol admitted after it {}; writes under a \
         later key {}, Alice's writes after the revocation on a device without the new key yet \
         {}; segments under a later key {}, checkpoints {}; Bob's writes counted {}, above the \
         pins {} (held by another device of Alice's when it heard of the revocation {}), never pushed {} (made after his device heard of the revocation {}); Dave's \
         writes {}; restarts {}; checkpoints adopted by joiners {}; segments deleted {}",
        count(&PEOPLE_REVOCATIONS),
        count(&PEOPLE_REVOKED_MID_SYNC),
        count(&PEOPLE_ADMITTED_AFTER),
        count(&PEOPLE_SEALED_LATER),
        count(&PEOPLE_BEFORE_NEW_KEY),
        count(&PEOPLE_LATER_SEGMENTS),
        count(&PEOPLE_LATER_CHECKPOINTS),
        count(&PEOPLE_BOB_COUNTED),
        count(&PEOPLE_BOB_ABOVE_PINS),
        count(&PEOPLE_HEARD_HOLDING),
        count(&PEOPLE_BOB_UNPUSHED),
        count(&PEOPLE_BOB_AFTER_HEARD),
        count(&PEOPLE_DAVE_WRITES),
        count(&PEOPLE_RESTARTS),
        count(&PEOPLE_JOIN_CHECKPOINTS),
        count(&PEOPLE_SEGMENTS_DELETED),
    );
    if seeds >= 20 {
        // The paths under test really ran.
        assert!(count(&PEOPLE_REVOCATIONS) > seeds / 2);
        assert!(count(&PEOPLE_REVOKED_MID_SYNC) > 0);
        assert!(count(&PEOPLE_ADMITTED_AFTER) > 0);
        assert!(count(&PEOPLE_SEALED_LATER) > seeds);
        assert!(count(&PEOPLE_LATER_SEGMENTS) > seeds / 2);
        assert!(count(&PEOPLE_LATER_CHECKPOINTS) > seeds / 2);
        assert!(count(&PEOPLE_BOB_COUNTED) > seeds);
        assert!(count(&PEOPLE_BOB_ABOVE_PINS) > seeds);
        assert!(count(&PEOPLE_BOB_AFTER_HEARD) > seeds / 4);
        assert!(count(&PEOPLE_DAVE_WRITES) > seeds);
        assert!(count(&PEOPLE_RESTARTS) > seeds);
        assert!(count(&PEOPLE_JOIN_CHECKPOINTS) > seeds);
    }
    if seeds >= 200 {
        assert!(count(&PEOPLE_SEGMENTS_DELETED) > 0);
        assert!(count(&PEOPLE_HEARD_HOLDING) > 0);
    }
}

/// Seeds that failed before replicas forgot what they merged above a revocation's pins.
/// 4, 15, 30, 31, 36, 40 (of one seed in five of 0..2000): a checkpoint of the revoking owner's
/// other device, written before it heard of the revocation, passed Bob's later writes on to
/// the revoking device and to devices that joined later (readers trusted any checkpoint signed
/// by the revoking person). 9697, 15406: the same with a pin of 0. 27, 99, 2472 (found once
/// every member was held to the model): Carol, or Alice's other device, kept Bob's later
/// writes it merged before it heard, or met his device only in a checkpoint. 1497: segments
/// of Bob's above the pins, deleted, stranded a replica that refused the only checkpoint
/// covering them. 3587, 12192, 14731: a revoked device's older manifest (or one naming fewer
/// segments than Carol merged) reported as a rollback on every sync.
const PEOPLE_REVOCATION_SEEDS: &[u64] = &[
    4, 15, 27, 30, 31, 36, 40, 99, 1497, 2472, 3587, 9697, 12192, 14731, 15406,
];

#[test]
fn people_seeds_of_revocations_below_what_was_merged() {
    for &seed in PEOPLE_REVOCATION_SEEDS {
        run_people_reporting(seed);
    }
}

/// Seeds where a device keeping no earlier versions (history policy `versions = 0`) lost its
/// own write: it lost to one of Bob's above the pins, fell out of the history, and was neither
/// pushed (when it was not yet) nor taken back when the replica forgot Bob's write on hearing
/// of the revocation, though it counts once Bob's does not. Found by this simulation once a
/// third of its devices kept no history (68 of seeds 0..3000); fixed by keeping a device's own
/// latest write of a key while another device's write is current, whatever the policy.
const PEOPLE_OWN_WRITE_SEEDS: &[u64] = &[36, 41, 65, 86, 99, 187, 210, 211, 229, 313, 1000, 2085];

#[test]
fn people_seeds_of_own_writes_beyond_the_history_policy() {
    for &seed in PEOPLE_OWN_WRITE_SEEDS {
        run_people_reporting(seed);
    }
}

/// Seeds that lost a member's writes when a replica of a shared vault passed over for good a
/// segment whose signature failed: a GET answered `200` with a truncated body fails its
/// signature (or is "a signed object cut short"), so an honest member's writes in it never
/// reached that replica. Found by this simulation (all the failures of seeds 0..2000); fixed by
/// passing over for good only an unsigned segment (a failed signature is fetched again).
/// 10445 and 13142 (found by a 20,000-seed release run) are a segment answered `200` with an
/// empty body: no signed prefix, so it read as unsigned and was passed over for good (c1 never
/// had a1's write of `k10`; a1 kept its own older `k0` over a2's newer one, and put that in
/// its checkpoint); fixed by taking as unsigned only an envelope (`BKSY`), anything else
/// being `corrupt` and fetched again.
const PEOPLE_TRUNCATED_SEGMENT_SEEDS: &[u64] = &[
    276, 480, 984, 1043, 1095, 1270, 1336, 1447, 1603, 1661, 1797, 10445, 13142,
];

#[test]
fn people_truncated_segment_answers_are_fetched_again() {
    for &seed in PEOPLE_TRUNCATED_SEGMENT_SEEDS {
        run_people_reporting(seed);
    }
}
