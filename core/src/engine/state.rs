//! The replica's local state: what survives a restart.
//!
//! It is kept as a sealed **snapshot** (the whole state, rewritten rarely) plus a **journal** of
//! sealed deltas appended after every change (see [`super::journal`]). Every mutation goes
//! through a method here that notes what it touched, so the next delta holds exactly the
//! changes since the last one, however the engine got there.
//!
//! Snapshots are sealed with the vault's local-state subkey: a state file reveals nothing
//! without the key, and a state made with another key is refused as `wrong-vault`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_bytes::{ByteBuf, Bytes};

use crate::clock::{Hlc, Stamp};
use crate::crypto::{self, ObjectAd, ObjectKind, SecretKey};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, VaultId};
use crate::manifest::CheckpointRef;
use crate::record::{Record, Records};
use crate::transfer::ResumablePack;

const STATE_NAME: &str = "local-state";
/// The snapshot layout this build writes. Versions 1 (no pending segment), 2 (no directory),
/// 3 (no retired devices, merged vectors or sync times), 4 (no deleted segments) and 5 and 6
/// (no clock leap), 7 (no pack collection), 8 (no packs in parts) and 9 (no sharing state)
/// are still read.
pub(crate) const STATE_VERSION: u32 = 10;

/// How far our own log has gone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OwnLog {
    /// The sequence number of our last manifest written (or adopted from the store).
    pub manifest_seq: u64,
    /// The ETag the store gave that manifest, to skip fetching it back.
    pub manifest_etag: Option<String>,
    /// Our segments `1..=segments` exist in the store.
    pub segments: u64,
    /// How many of them our last manifest names.
    pub published_segments: u64,
    /// Our manifest must be written again (it was found rolled back).
    pub republish: bool,
    /// Our segments above `segments` found again after a crash (see [`PeerLog::beyond`]).
    pub beyond: BTreeSet<u64>,
}

/// A segment sealed for the push but not yet known to be in the store. It is made durable
/// before its PUT goes out, so a restarted replica sends the very same bytes under the same
/// number (an idempotent PUT) instead of sealing different ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingSegment {
    /// Its number: always our `segments + 1` when it was sealed.
    pub seq: u64,
    /// The sealed object, byte for byte: shared with the PUTs that send it (a segment is not
    /// copied to be sent). Stored as a byte string, as a `ByteBuf` is.
    #[serde(with = "shared_bytes")]
    pub body: bytes::Bytes,
    /// The writes it carries, to mark them pushed once it lands.
    pub written: Vec<(ByteBuf, Stamp)>,
}

/// (De)serializes [`bytes::Bytes`] as a byte string, the encoding of a [`ByteBuf`].
mod shared_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_bytes::ByteBuf;

    pub fn serialize<S: Serializer>(bytes: &bytes::Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bytes::Bytes, D::Error> {
        ByteBuf::deserialize(d).map(|b| b.into_vec().into())
    }
}

/// What we know of another device's log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PeerLog {
    /// The highest manifest sequence number trusted; anything lower is a rollback.
    pub manifest_seq: u64,
    /// The ETag of that manifest, to skip fetching it again.
    pub manifest_etag: Option<String>,
    /// Its segments `1..=segments` exist, per its manifest.
    pub segments: u64,
    /// Segments `1..=applied` are merged here.
    pub applied: u64,
    /// Segments above `applied` merged already (a gap below them is still missing), so a
    /// segment that cannot be read does not make every later one be fetched again.
    pub beyond: BTreeSet<u64>,
}

impl PeerLog {
    /// Segments `1..=n` are merged or passed over (a checkpoint covers them, or they would not
    /// count): `applied` moves up to `n` and on over the segments merged beyond it.
    pub fn pass_to(&mut self, n: u64) {
        self.applied = self.applied.max(n);
        let applied = self.applied;
        self.beyond.retain(|s| *s > applied);
        while self.beyond.remove(&(self.applied + 1)) {
            self.applied += 1;
        }
    }
}

/// What we learned about the store's behaviour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Quirks {
    /// Whether the store refuses a second create with `If-None-Match: *`, and when we asked.
    pub exclusive_create: CreateCheck,
}

/// What the store answered when one of our segments was created a second time with
/// `If-None-Match: *`. Laid out so that the flag state version 5 and older kept in its place
/// (`00` / `01`) reads as the first two variants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CreateCheck {
    /// Never asked.
    #[default]
    Unchecked,
    /// Never asked; an older release met one 501 to `If-None-Match` (its NotImplemented flag).
    RefusedOnce,
    /// Asked at this wall time (ms): 412, the store refuses to create an object twice.
    Refused(u64),
    /// Asked at this wall time (ms): 2xx, the store ignores `If-None-Match`.
    Ignored(u64),
}

impl CreateCheck {
    /// When the store was last asked, if ever.
    pub fn asked_at(self) -> Option<u64> {
        match self {
            CreateCheck::Unchecked | CreateCheck::RefusedOnce => None,
            CreateCheck::Refused(at) | CreateCheck::Ignored(at) => Some(at),
        }
    }
}

/// What a device said about itself in its latest manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeviceInfo {
    /// Its human name.
    pub label: String,
    /// Its clock when it wrote that manifest: when it last pushed.
    pub clock: Hlc,
    /// Its latest checkpoint.
    pub checkpoint: Option<CheckpointRef>,
    /// How many segments of each other device it had merged.
    pub merged: Vec<(DeviceId, u64)>,
    /// The format version its latest manifest was written in (0: not read since an upgrade).
    pub format: u8,
    /// Its segments `1..=pruned` may have been deleted (a checkpoint covers them). Ours: what
    /// our last manifest that reached the store said.
    pub pruned: u64,
}

/// The state version 4 layout of [`DeviceInfo`].
#[derive(Deserialize)]
struct DeviceInfoV4 {
    label: String,
    clock: Hlc,
    checkpoint: Option<CheckpointRef>,
    merged: Vec<(DeviceId, u64)>,
    format: u8,
}

/// The state version 4 layout of [`Directory`].
#[derive(Deserialize)]
struct DirectoryV4 {
    label: String,
    devices: BTreeMap<DeviceId, DeviceInfoV4>,
    tail_bytes: u64,
    joined: bool,
    own_checkpoints: Vec<u64>,
    previous_checkpoint: Option<u64>,
    retired: BTreeSet<DeviceId>,
    caught_up_ms: u64,
    checkpoint_ms: u64,
    horizon_ms: u64,
    former_ids: BTreeSet<DeviceId>,
}

impl From<DirectoryV4> for Directory {
    fn from(v4: DirectoryV4) -> Self {
        Directory {
            label: v4.label,
            devices: map_of(v4.devices.into_iter().map(|(d, i)| {
                let info = DeviceInfo {
                    label: i.label,
                    clock: i.clock,
                    checkpoint: i.checkpoint,
                    merged: i.merged,
                    format: i.format,
                    pruned: 0,
                };
                (d, info)
            })),
            tail_bytes: v4.tail_bytes,
            joined: v4.joined,
            own_checkpoints: v4.own_checkpoints,
            previous_checkpoint: v4.previous_checkpoint,
            retired: v4.retired,
            caught_up_ms: v4.caught_up_ms,
            checkpoint_ms: v4.checkpoint_ms,
            horizon_ms: v4.horizon_ms,
            former_ids: v4.former_ids,
            ..Directory::default()
        }
    }
}

/// The state version 3 layout of [`DeviceInfo`].
#[derive(Deserialize)]
struct DeviceInfoV3 {
    label: String,
    clock: Hlc,
    checkpoint: Option<CheckpointRef>,
}

/// The state version 3 layout of [`Directory`].
#[derive(Deserialize)]
struct DirectoryV3 {
    label: String,
    devices: BTreeMap<DeviceId, DeviceInfoV3>,
    tail_bytes: u64,
    joined: bool,
    own_checkpoints: Vec<u64>,
    previous_checkpoint: Option<u64>,
}

impl From<DirectoryV3> for Directory {
    fn from(v3: DirectoryV3) -> Self {
        Directory {
            label: v3.label,
            devices: map_of(v3.devices.into_iter().map(|(d, i)| {
                let info = DeviceInfo {
                    label: i.label,
                    clock: i.clock,
                    checkpoint: i.checkpoint,
                    merged: Vec::new(),
                    format: 0,
                    pruned: 0,
                };
                (d, info)
            })),
            tail_bytes: v3.tail_bytes,
            joined: v3.joined,
            own_checkpoints: v3.own_checkpoints,
            previous_checkpoint: v3.previous_checkpoint,
            ..Directory::default()
        }
    }
}

/// The vault's devices as their manifests describe them, and what this replica needs to know
/// about checkpoints, joining and garbage collection (state versions 5 and 6).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Directory {
    /// Our own label, written into our manifest.
    pub label: String,
    /// Every device whose manifest we read, ourselves included.
    pub devices: BTreeMap<DeviceId, DeviceInfo>,
    /// Bytes of the segments merged or written since the last checkpoint written or adopted.
    pub tail_bytes: u64,
    /// The vault was found in the store (or created by us): no join check any more.
    pub joined: bool,
    /// The numbers of our own checkpoints still in the store (or whose PUT went out), ascending.
    pub own_checkpoints: Vec<u64>,
    /// The checkpoint our manifest named before the current one (kept by the sweep).
    pub previous_checkpoint: Option<u64>,
    /// Devices known to be retired (by `retire`, or by starting over under a new id): no
    /// tombstone waits for them. Our manifest lists them all.
    pub retired: BTreeSet<DeviceId>,
    /// When (wall ms) the last sync started that ended with everything pulled and pushed; 0:
    /// never. A replica silent longer than the grace period starts over.
    pub caught_up_ms: u64,
    /// When (wall ms) the checkpoint our manifest names was written; 0: none.
    pub checkpoint_ms: u64,
    /// Tombstones stamped before this (wall ms) may be missing here: collected by a checkpoint
    /// we wrote or adopted. Our checkpoints carry it.
    pub horizon_ms: u64,
    /// The ids this replica had before it started over.
    pub former_ids: BTreeSet<DeviceId>,
    /// Each `pruned` our manifest said, with when (wall ms) it reached the store: segments are
    /// deleted a while later. Forgotten once acted on.
    pub pruned_at: Vec<(u64, u64)>,
    /// Our segments `1..=deleted` are deleted from the store.
    pub deleted: u64,
    /// How many of our segments a checkpoint covers that this replica wrote or opened itself:
    /// segments are deleted only up to there, never on the word of a reference alone.
    pub verified_covers: u64,
    /// The oldest stamp of a write of ours in a segment that is in the store but that no
    /// manifest of ours names yet (a crash between the two): starting over applies it again.
    pub unnamed_from: Option<Hlc>,
    /// Our clock just before it leapt, in one step, further ahead than the bound on stamps
    /// from the future (a wrong date, or a long absence), until a peer's manifest showed that
    /// its present agrees with ours. Meanwhile no tombstone is collected (peers may look silent
    /// only because our clock ran ahead), and starting over because our clock ran ahead
    /// restarts it above this reading.
    pub leap: Option<Hlc>,
    /// Our packs that no file referenced when this replica last looked, waiting for the grace
    /// period to pass before they are deleted (see `sync/packs.rs`); `None` before the first
    /// look. Stored after the rest of the state (state version 8, journal version 7), so that
    /// the directory reads as in version 7.
    #[serde(skip)]
    pub pack_collection: Option<PackCollection>,
    /// Our packs that went up in parts and were not completed (an upload interrupted): the
    /// next process's first upload completes them and reuses their chunks. Stored after the
    /// pack collection (state version 9, journal version 8).
    #[serde(skip)]
    pub resumable_packs: Vec<ResumablePack>,
    /// A shared vault's member statements and who signed each device's manifest. Stored after
    /// the packs in parts (state version 10, journal version 9).
    #[serde(skip)]
    pub sharing: SharingState,
}

/// What a replica of a shared vault knows of its people.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SharingState {
    /// Every member statement read in a manifest or made here (at most
    /// [`crate::membership::MAX_STATEMENTS`]), whether it counts or not: it may count once
    /// the statement that makes its signer an owner arrives.
    pub statements: Vec<crate::membership::Statement>,
    /// The Ed25519 key that signs each device's objects: for another device, the first one
    /// seen signing one of its manifests; for ours (and our former ids), our person's, noted
    /// when the replica is entered.
    pub signers: BTreeMap<DeviceId, [u8; 32]>,
    /// The vault's key generations above 0 this replica holds (from a revocation it made, a
    /// grant, or its home).
    pub keys: Vec<(u32, [u8; 32])>,
    /// The grants of key generations written, as (generation, member's fingerprint).
    pub rekeyed: BTreeSet<(u32, [u8; 10])>,
    /// The key generation of the latest checkpoint this replica wrote.
    pub resealed: u32,
}

/// Our packs found unreferenced at one time, and what this replica had merged then. They are
/// deleted once the grace period has passed since, every active device has merged as much, and
/// still nothing references them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PackCollection {
    /// The device id the packs were written under (a replica that starts over drops this).
    pub device: DeviceId,
    /// When (wall ms) they were found unreferenced.
    pub since_ms: u64,
    /// How many segments of each device this replica had merged then (its own: written).
    pub merged: Vec<(DeviceId, u64)>,
    /// The packs' random names (the writer is `device`), sorted.
    pub packs: Vec<[u8; 16]>,
    /// When (wall ms) every active device was first seen to have merged `merged`.
    pub confirmed_ms: Option<u64>,
}

/// The state version 5 and 6 layout of [`Directory`]: no leap.
#[derive(Deserialize)]
struct DirectoryV6 {
    label: String,
    devices: BTreeMap<DeviceId, DeviceInfo>,
    tail_bytes: u64,
    joined: bool,
    own_checkpoints: Vec<u64>,
    previous_checkpoint: Option<u64>,
    retired: BTreeSet<DeviceId>,
    caught_up_ms: u64,
    checkpoint_ms: u64,
    horizon_ms: u64,
    former_ids: BTreeSet<DeviceId>,
    pruned_at: Vec<(u64, u64)>,
    deleted: u64,
    verified_covers: u64,
    unnamed_from: Option<Hlc>,
}

impl From<DirectoryV6> for Directory {
    fn from(v6: DirectoryV6) -> Self {
        Directory {
            label: v6.label,
            devices: v6.devices,
            tail_bytes: v6.tail_bytes,
            joined: v6.joined,
            own_checkpoints: v6.own_checkpoints,
            previous_checkpoint: v6.previous_checkpoint,
            retired: v6.retired,
            caught_up_ms: v6.caught_up_ms,
            checkpoint_ms: v6.checkpoint_ms,
            horizon_ms: v6.horizon_ms,
            former_ids: v6.former_ids,
            pruned_at: v6.pruned_at,
            deleted: v6.deleted,
            verified_covers: v6.verified_covers,
            unnamed_from: v6.unnamed_from,
            leap: None,
            pack_collection: None,
            resumable_packs: Vec::new(),
            sharing: SharingState::default(),
        }
    }
}

/// How many earlier versions of a key a replica keeps, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Versions kept per key besides the current one (0 keeps none). Besides them, while
    /// another device's write is a key's current version, this device keeps its own latest
    /// write of the key (it is pushed if it was not yet, and counts again if the other write
    /// is found not to, as a revoked member's may be).
    pub versions: usize,
    /// Versions older than this (by their stamp, measured from the newest version of the key)
    /// are dropped.
    pub max_age_ms: u64,
}

impl Default for HistoryPolicy {
    /// 10 versions, 30 days.
    fn default() -> Self {
        HistoryPolicy {
            versions: 10,
            max_age_ms: 30 * 86_400_000,
        }
    }
}

/// What changed since the last snapshot or journal entry.
#[derive(Default)]
struct Changes {
    /// The state was started over (a new device id): a delta then holds the whole state.
    reset: bool,
    keys: HashSet<Vec<u8>>,
    /// Keys whose record is unchanged but no longer unpushed (a push reached the store): a
    /// delta lists them instead of writing their records again.
    cleaned: HashSet<Vec<u8>>,
    /// Keys forgotten (collected tombstones).
    removed: HashSet<Vec<u8>>,
    history: HashSet<Vec<u8>>,
    own: bool,
    pending: bool,
    peers: BTreeSet<DeviceId>,
    quirks: bool,
    directory: bool,
    /// The clock as last written out.
    clock: Hlc,
}

/// Everything a replica keeps between runs.
pub(crate) struct LocalState {
    pub device: DeviceId,
    pub clock: Hlc,
    records: Records,
    dirty: BTreeSet<Vec<u8>>,
    own: OwnLog,
    /// The highest manifest sequence number ever handed out for a PUT (durable before the PUT
    /// goes out), so a manifest PUT lost in a crash and landing late is never confused with a
    /// newer one of the same number.
    issued: u64,
    pending: Option<PendingSegment>,
    peers: BTreeMap<DeviceId, PeerLog>,
    quirks: Quirks,
    directory: Directory,
    /// Earlier versions per key (overwritten here, or losers of a concurrent write), newest
    /// first.
    history: HashMap<Vec<u8>, Vec<Record>>,
    history_policy: HistoryPolicy,
    changes: Changes,
}

impl LocalState {
    pub fn new(device: DeviceId) -> Self {
        LocalState {
            device,
            clock: Hlc::default(),
            records: Records::default(),
            dirty: BTreeSet::new(),
            own: OwnLog::default(),
            issued: 0,
            pending: None,
            peers: BTreeMap::new(),
            quirks: Quirks::default(),
            directory: Directory::default(),
            history: HashMap::new(),
            history_policy: HistoryPolicy::default(),
            changes: Changes::default(),
        }
    }

    pub fn set_history_policy(&mut self, policy: HistoryPolicy) {
        self.history_policy = policy;
    }

    /// This device's latest write of `key`: the current record when it is ours, else the newest
    /// of ours in the history (a write that lost to a concurrent one).
    pub fn latest_own(&self, key: &[u8]) -> Option<&Record> {
        let me = self.device;
        match self.records.get(key) {
            Some(current) if current.stamp.device == me => Some(current),
            _ => self.history(key).iter().find(|v| v.stamp.device == me),
        }
    }

    /// The earlier versions of `key` kept here, newest first.
    pub fn history(&self, key: &[u8]) -> &[Record] {
        self.history.get(key).map_or(&[], Vec::as_slice)
    }

    /// Every key's earlier versions, newest first, keys in no particular order.
    pub fn histories(&self) -> impl Iterator<Item = (&[u8], &[Record])> {
        self.history
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    // ---- reading ----

    pub fn records(&self) -> &Records {
        &self.records
    }

    pub fn dirty(&self) -> &BTreeSet<Vec<u8>> {
        &self.dirty
    }

    pub fn own(&self) -> &OwnLog {
        &self.own
    }

    pub fn issued(&self) -> u64 {
        self.issued
    }

    pub fn set_issued(&mut self, seq: u64) {
        self.changes.own = true;
        self.issued = seq;
    }

    pub fn pending(&self) -> Option<&PendingSegment> {
        self.pending.as_ref()
    }

    pub fn peers(&self) -> &BTreeMap<DeviceId, PeerLog> {
        &self.peers
    }

    pub fn peer(&self, device: &DeviceId) -> Option<&PeerLog> {
        self.peers.get(device)
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    pub fn quirks(&self) -> &Quirks {
        &self.quirks
    }

    // ---- changing (every change is noted for the journal) ----

    /// Merges one write; returns whether it became the key's current version. The version
    /// that is not current afterwards (the one displaced, or the incoming one that lost) goes
    /// into the key's history.
    pub fn merge(&mut self, key: Vec<u8>, record: Record) -> bool {
        match self.records.get(&key) {
            Some(current) if *current == record => false,
            Some(current) if !record.wins_over(current) => {
                self.remember(&key, record);
                false
            }
            current => {
                let displaced = current.cloned();
                self.changes.keys.insert(key.clone());
                self.records.merge(key.clone(), record);
                if let Some(displaced) = displaced {
                    self.remember(&key, displaced);
                }
                true
            }
        }
    }

    /// Adds an earlier version of `key` to its history (once), within the policy's bounds.
    /// Beyond them, while another device's write is the key's current version, our own latest
    /// write of the key is kept: it is what this device pushes if it is not pushed yet, and
    /// what counts again if the other write is found not to (a revoked member's, read again).
    fn remember(&mut self, key: &[u8], version: Record) {
        let policy = self.history_policy;
        let me = self.device;
        let current = self.records.get(key);
        let keep_own = current.is_some_and(|c| c.stamp.device != me);
        if policy.versions == 0 && !(keep_own && version.stamp.device == me) {
            // Nothing to keep; an own write kept while another device's was current has no
            // reason to stay once that is no longer so.
            if !keep_own && self.history.remove(key).is_some() {
                self.changes.history.insert(key.to_vec());
            }
            return;
        }
        let newest = current
            .map_or(version.stamp.hlc.wall_ms, |r| r.stamp.hlc.wall_ms)
            .max(version.stamp.hlc.wall_ms);
        let versions = self.history.entry(key.to_vec()).or_default();
        if versions.iter().any(|v| v.stamp == version.stamp) {
            return;
        }
        let at = versions
            .iter()
            .position(|v| v.stamp < version.stamp)
            .unwrap_or(versions.len());
        versions.insert(at, version);
        let own = versions
            .iter()
            .find(|v| keep_own && v.stamp.device == me)
            .cloned();
        versions.truncate(policy.versions);
        versions.retain(|v| v.stamp.hlc.wall_ms.saturating_add(policy.max_age_ms) >= newest);
        // Older than every version left: it goes last.
        if let Some(own) = own.filter(|o| !versions.iter().any(|v| v.stamp == o.stamp)) {
            versions.push(own);
        }
        if versions.is_empty() {
            self.history.remove(key);
        }
        self.changes.history.insert(key.to_vec());
    }

    /// The greatest stamp this replica holds (in a record, an earlier version, or a device's
    /// latest manifest) whose wall time is at most `limit_ms`.
    pub fn greatest_stamp_within(&self, limit_ms: u64) -> Hlc {
        let records = self.records.iter().map(|(_, r)| r.stamp.hlc);
        let history = self.history.values().flatten().map(|r| r.stamp.hlc);
        let manifests = self.directory.devices.values().map(|i| i.clock);
        records
            .chain(history)
            .chain(manifests)
            .filter(|hlc| hlc.wall_ms <= limit_ms)
            .max()
            .unwrap_or_default()
    }

    pub fn reserve(&mut self, additional: usize) {
        self.records.reserve(additional);
    }

    /// Forgets `key` (a collected tombstone, or a record deleted by one); its history stays.
    pub fn remove(&mut self, key: &[u8]) {
        if self.records.remove(key).is_some() {
            self.dirty.remove(key);
            self.changes.keys.remove(key);
            self.changes.removed.insert(key.to_vec());
        }
    }

    /// Starts over as a new device `device`: no records, no logs, nothing pending. What is
    /// kept: the clock, the label, the devices known, the retired list, the quirks, the
    /// history. The next delta holds the whole new state.
    pub fn start_over(&mut self, device: DeviceId) {
        let mut fresh = LocalState::new(device);
        fresh.clock = self.clock;
        fresh.quirks = std::mem::take(&mut self.quirks);
        fresh.history = std::mem::take(&mut self.history);
        fresh.history_policy = self.history_policy;
        let old = std::mem::take(&mut self.directory);
        fresh.directory = Directory {
            label: old.label,
            devices: old.devices,
            retired: old.retired,
            former_ids: old.former_ids,
            leap: old.leap,
            joined: true,
            // Who the members are and the key generations held are the person's, not the
            // device id's: a replica that starts over keeps them (an unpublished revocation
            // and its key included). Its new id has written no checkpoint yet.
            sharing: SharingState {
                resealed: 0,
                ..old.sharing
            },
            ..Directory::default()
        };
        fresh.changes = Changes {
            reset: true,
            own: true,
            pending: true,
            quirks: true,
            directory: true,
            history: fresh.history.keys().cloned().collect(),
            ..Changes::default()
        };
        *self = fresh;
    }

    /// Forgets what was merged from other devices, to read it all again: every record but our
    /// own latest writes (one that lost here to another device's write is taken back from the
    /// history), and how far each other device's log is merged. Our log, what we know of the
    /// devices and their manifests, and the history stay. Returns the keys whose record was
    /// replaced or removed, with the stamp they had.
    pub fn forget_merged(&mut self) -> Vec<(Vec<u8>, Stamp)> {
        let me = self.device;
        let theirs: Vec<(Vec<u8>, Stamp)> = self
            .records
            .iter()
            .filter(|(_, r)| r.stamp.device != me)
            .map(|(k, r)| (k.clone(), r.stamp))
            .collect();
        for (key, _) in &theirs {
            let key = key.clone();
            // Our own segments are not read again: a write of ours that lost to another device's
            // comes back from the history (the other device's write, if it counts, wins again).
            match self.latest_own(&key).cloned() {
                Some(own) => {
                    // Current again: no longer one of its earlier versions.
                    if let Some(versions) = self.history.get_mut(&key) {
                        versions.retain(|v| v.stamp != own.stamp);
                        if versions.is_empty() {
                            self.history.remove(&key);
                        }
                        self.changes.history.insert(key.clone());
                    }
                    self.records.replace(key.clone(), own);
                    self.changes.keys.insert(key);
                }
                None => self.remove(&key),
            }
        }
        let devices: Vec<DeviceId> = self.peers.keys().copied().collect();
        for device in devices {
            let peer = self.peer_mut(device);
            peer.applied = 0;
            peer.beyond.clear();
        }
        theirs
    }

    pub fn mark_dirty(&mut self, key: Vec<u8>) {
        self.changes.keys.insert(key.clone());
        self.dirty.insert(key);
    }

    pub fn mark_clean(&mut self, key: &[u8]) {
        if self.dirty.remove(key) {
            self.changes.cleaned.insert(key.to_vec());
        }
    }

    pub fn own_mut(&mut self) -> &mut OwnLog {
        self.changes.own = true;
        &mut self.own
    }

    /// Replaces the pending segment; returns the one it replaced.
    pub fn set_pending(&mut self, pending: Option<PendingSegment>) -> Option<PendingSegment> {
        self.changes.pending = true;
        std::mem::replace(&mut self.pending, pending)
    }

    pub fn peer_mut(&mut self, device: DeviceId) -> &mut PeerLog {
        self.changes.peers.insert(device);
        self.peers.entry(device).or_default()
    }

    pub fn quirks_mut(&mut self) -> &mut Quirks {
        self.changes.quirks = true;
        &mut self.quirks
    }

    pub fn directory_mut(&mut self) -> &mut Directory {
        self.changes.directory = true;
        &mut self.directory
    }

    // ---- snapshot ----

    /// The whole state, sealed. What it holds is no longer a change for the journal.
    pub fn export(&mut self, key: &SecretKey, vault: VaultId, entropy: &mut Entropy) -> Vec<u8> {
        let out = SnapshotOut {
            version: STATE_VERSION,
            device: self.device,
            clock: self.clock,
            records: RecordsOut(&self.records),
            dirty: self.dirty.iter().map(|k| Bytes::new(k)).collect(),
            own: &self.own,
            issued: self.issued,
            pending: self.pending.as_ref(),
            peers: &self.peers,
            quirks: &self.quirks,
            directory: &self.directory,
            history: HistoryOut(&self.history),
        };
        // Sized exactly first: a buffer that grew would leave copies of the plaintext behind
        // in the memory it gave back.
        // The pack collection follows the rest (state version 8), then the packs in parts
        // (version 9), then the sharing state (version 10).
        let out = (
            out,
            self.directory.pack_collection.as_ref(),
            &self.directory.resumable_packs,
            &self.directory.sharing,
        );
        let size = postcard::experimental::serialized_size(&out).expect("postcard sizes any value");
        let mut sealing = crypto::begin_seal(key, &state_ad(vault), size, entropy)
            .expect("the state's name is short");
        sealing.buf =
            postcard::to_extend(&out, sealing.buf).expect("postcard serializes into a Vec");
        self.changes = Changes {
            clock: self.clock,
            ..Changes::default()
        };
        crypto::finish_seal(sealing)
    }

    /// Opens a snapshot made by [`LocalState::export`] (this version, version 2 or version 1).
    #[cfg(test)]
    pub fn import(key: &SecretKey, vault: VaultId, bytes: &[u8]) -> Result<Self> {
        LocalState::import_owned(key, vault, bytes.to_vec())
    }

    /// [`LocalState::import`] of a snapshot the caller lets go of: it is decrypted where it
    /// lies, with no copy (a state of many files is tens of megabytes).
    pub fn import_owned(key: &SecretKey, vault: VaultId, bytes: Vec<u8>) -> Result<Self> {
        let plain = crypto::open(key, &state_ad(vault), bytes).map_err(|e| match e {
            Error::WrongVault { .. } => Error::WrongVault {
                object: "local state".into(),
            },
            Error::Corrupt { reason, .. } => Error::corrupt("local state", reason),
            other => other,
        })?;
        // The decrypted state is wiped once decoded.
        let plain = zeroize::Zeroizing::new(plain);
        let undecodable =
            |e: String| Error::corrupt("local state", format!("does not decode: {e}"));
        let (version, _): (u32, _) =
            postcard::take_from_bytes(&plain).map_err(|e| undecodable(e.to_string()))?;
        let state: SnapshotIn = match version {
            1 => crypto::decode_exact::<SnapshotV1>(&plain)
                .map_err(undecodable)?
                .into(),
            2 => crypto::decode_exact::<SnapshotV2>(&plain)
                .map_err(undecodable)?
                .into(),
            3 => crypto::decode_exact::<SnapshotIn<DirectoryV3>>(&plain)
                .map_err(undecodable)?
                .upgrade(),
            4 => crypto::decode_exact::<SnapshotIn<DirectoryV4>>(&plain)
                .map_err(undecodable)?
                .upgrade(),
            // Version 5 is laid out as 6: its quirks flag reads as the first two variants of
            // `CreateCheck`. Both lack the leap.
            5 | 6 => crypto::decode_exact::<SnapshotIn<DirectoryV6>>(&plain)
                .map_err(undecodable)?
                .widen(),
            // Version 8 is version 7 followed by the pack collection, and version 9 version 8
            // followed by the packs in parts.
            7..=STATE_VERSION => {
                let (mut state, rest) = take::<SnapshotIn>(&plain).map_err(undecodable)?;
                let rest =
                    read_trailer(&mut state.directory, version - 7, rest).map_err(undecodable)?;
                crypto::decode_exact::<()>(rest).map_err(undecodable)?;
                state
            }
            other => {
                return Err(Error::corrupt(
                    "local state",
                    format!("state version {other} is not supported (this build reads 1 to {STATE_VERSION})"),
                ))
            }
        };
        let mut records = Records::default();
        records.reserve(state.records.len());
        for (key, record) in state.records {
            records.merge(key.into_vec(), record);
        }
        Ok(LocalState {
            device: state.device,
            clock: state.clock,
            records,
            dirty: set_of(state.dirty.into_iter().map(ByteBuf::into_vec)),
            own: state.own,
            issued: state.issued,
            pending: state.pending,
            peers: state.peers,
            quirks: state.quirks,
            directory: state.directory,
            history: state
                .history
                .into_iter()
                .map(|(k, v)| (k.into_vec(), v))
                .collect(),
            history_policy: HistoryPolicy::default(),
            changes: Changes {
                clock: state.clock,
                ..Changes::default()
            },
        })
    }

    // ---- journal deltas ----

    /// Takes the changes since the last snapshot or delta, and hands them to `write` (which
    /// serializes them: [`Delta`]); `None` when nothing changed.
    pub fn take_delta<R>(&mut self, write: impl FnOnce(&Delta<'_>) -> R) -> Option<R> {
        let changes = std::mem::take(&mut self.changes);
        let nothing = !changes.reset
            && changes.keys.is_empty()
            && changes.cleaned.is_empty()
            && changes.removed.is_empty()
            && !changes.own
            && !changes.pending
            && changes.peers.is_empty()
            && !changes.quirks
            && !changes.directory
            && changes.history.is_empty()
            && changes.clock == self.clock;
        self.changes.clock = self.clock;
        if nothing {
            return None;
        }
        let mut keys: Vec<&Vec<u8>> = changes.keys.iter().collect();
        keys.sort_unstable();
        let records = keys
            .into_iter()
            .filter_map(|k| {
                let record = self.records.get(k)?;
                Some((Bytes::new(k), record, self.dirty.contains(k)))
            })
            .collect();
        let mut removed: Vec<&Bytes> = changes
            .removed
            .iter()
            .filter(|k| self.records.get(k.as_slice()).is_none())
            .map(|k| Bytes::new(k))
            .collect();
        removed.sort_unstable();
        // A key written in this delta carries its flag with its record.
        let mut cleaned: Vec<&Bytes> = changes
            .cleaned
            .iter()
            .filter(|k| {
                !changes.keys.contains(*k)
                    && !self.dirty.contains(*k)
                    && self.records.get(k.as_slice()).is_some()
            })
            .map(|k| Bytes::new(k))
            .collect();
        cleaned.sort_unstable();
        let out = DeltaOut {
            reset: changes.reset,
            device: self.device,
            removed,
            clock: self.clock,
            records,
            own: changes.own.then_some((&self.own, self.issued)),
            pending: changes.pending.then_some(self.pending.as_ref()),
            peers: changes
                .peers
                .iter()
                .filter_map(|d| Some((*d, self.peers.get(d)?)))
                .collect(),
            quirks: changes.quirks.then_some(&self.quirks),
            directory: changes.directory.then_some(&self.directory),
            history: {
                let mut keys: Vec<&Vec<u8>> = changes.history.iter().collect();
                keys.sort_unstable();
                keys.into_iter()
                    .map(|k| {
                        let versions = self.history.get(k).map_or(&[][..], Vec::as_slice);
                        (Bytes::new(k), versions)
                    })
                    .collect()
            },
        };
        // The pack collection follows the delta (journal version 7), then the packs in parts
        // (version 8), then the sharing state (version 9), with the directory (none and empty
        // without it), then the keys cleaned (version 10).
        let packs = out.directory.and_then(|d| d.pack_collection.as_ref());
        let parts = out.directory.map_or(&[][..], |d| &d.resumable_packs[..]);
        let sharing = out.directory.map_or_else(
            || Cow::Owned(SharingState::default()),
            |d| Cow::Borrowed(&d.sharing),
        );
        Some(write(&Delta((out, packs, parts, sharing, cleaned))))
    }

    /// Applies a delta made by [`LocalState::take_delta`] (of journal `version`: 1 has no
    /// directory, 2 the directory of state version 3). Deltas hold final values, so applying them in the order they were made gives
    /// back the state that made them.
    pub fn apply_delta(&mut self, version: u8, delta: &[u8]) -> Result<()> {
        let undecodable =
            |e: String| Error::corrupt("local journal", format!("does not decode: {e}"));
        let mut cleaned = Vec::new();
        let delta: DeltaIn = match version {
            1 => DeltaV2::from(crypto::decode_exact::<DeltaV1>(delta).map_err(undecodable)?).into(),
            2 => crypto::decode_exact::<DeltaV2>(delta)
                .map_err(undecodable)?
                .into(),
            3 => crypto::decode_exact::<DeltaIn<DirectoryV4>>(delta)
                .map_err(undecodable)?
                .upgrade(),
            4 | 5 => crypto::decode_exact::<DeltaIn<DirectoryV6>>(delta)
                .map_err(undecodable)?
                .widen(),
            // Version 7 is version 6 followed by the pack collection, version 8 version 7
            // followed by the packs in parts (none and empty when the delta has no directory),
            // version 9 followed by the sharing state, version 10 by the keys cleaned.
            _ => {
                let (mut delta, rest) = take::<DeltaIn>(delta).map_err(undecodable)?;
                let mut trailer = Directory::default();
                let fields = u32::from(version).saturating_sub(6).min(3);
                let mut rest = read_trailer(&mut trailer, fields, rest).map_err(undecodable)?;
                if version >= 10 {
                    (cleaned, rest) = take::<Vec<ByteBuf>>(rest).map_err(undecodable)?;
                }
                crypto::decode_exact::<()>(rest).map_err(undecodable)?;
                if let Some(directory) = delta.directory.as_mut() {
                    directory.pack_collection = trailer.pack_collection;
                    directory.resumable_packs = trailer.resumable_packs;
                    directory.sharing = trailer.sharing;
                }
                delta
            }
        };
        if delta.reset {
            let policy = self.history_policy;
            *self = LocalState::new(delta.device);
            self.history_policy = policy;
        }
        for key in delta.removed {
            self.records.remove(key.as_slice());
            self.dirty.remove(key.as_slice());
        }
        self.clock.observe(delta.clock);
        for (key, record, dirty) in delta.records {
            let key = key.into_vec();
            if dirty {
                self.dirty.insert(key.clone());
            } else {
                self.dirty.remove(&key);
            }
            self.records.replace(key, record);
        }
        for key in cleaned {
            self.dirty.remove(key.as_slice());
        }
        if let Some((own, issued)) = delta.own {
            self.own = own;
            self.issued = issued;
        }
        if let Some(pending) = delta.pending {
            self.pending = pending;
        }
        for (device, peer) in delta.peers {
            self.peers.insert(device, peer);
        }
        if let Some(quirks) = delta.quirks {
            self.quirks = quirks;
        }
        if let Some(directory) = delta.directory {
            self.directory = directory;
        }
        for (key, versions) in delta.history {
            if versions.is_empty() {
                self.history.remove(key.as_slice());
            } else {
                self.history.insert(key.into_vec(), versions);
            }
        }
        self.changes.clock = self.clock;
        Ok(())
    }
}

/// Decodes a `T` from the start of `bytes`; the rest.
fn take<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> core::result::Result<(T, &'a [u8]), String> {
    postcard::take_from_bytes(bytes).map_err(|e| e.to_string())
}

/// Reads what follows the rest of a state or delta, into `directory`: nothing (`fields` 0),
/// the pack collection (1: state version 8, journal version 7), then the packs in parts (2:
/// state version 9, journal version 8), then the sharing state (3: state version 10, journal
/// version 9). Returns what is left.
fn read_trailer<'a>(
    directory: &mut Directory,
    fields: u32,
    bytes: &'a [u8],
) -> core::result::Result<&'a [u8], String> {
    let mut rest = bytes;
    if fields >= 1 {
        (directory.pack_collection, rest) = take(rest)?;
    }
    if fields >= 2 {
        (directory.resumable_packs, rest) = take(rest)?;
    }
    if fields >= 3 {
        (directory.sharing, rest) = take(rest)?;
    }
    Ok(rest)
}

struct RecordsOut<'a>(&'a Records);

impl Serialize for RecordsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (key, record) in self.0.iter() {
            seq.serialize_element(&(Bytes::new(key), record))?;
        }
        seq.end()
    }
}

/// The snapshot layout, version 7; version 8 follows it with the directory's pack collection
/// (an `Option`), and version 9 with that and the directory's packs in parts (a list). Changing it is a state format change: bump
/// [`STATE_VERSION`], keep reading the old one, and update `docs/FORMAT.md`.
#[derive(Serialize)]
struct SnapshotOut<'a> {
    version: u32,
    device: DeviceId,
    clock: Hlc,
    records: RecordsOut<'a>,
    dirty: Vec<&'a Bytes>,
    own: &'a OwnLog,
    issued: u64,
    pending: Option<&'a PendingSegment>,
    peers: &'a BTreeMap<DeviceId, PeerLog>,
    quirks: &'a Quirks,
    directory: &'a Directory,
    history: HistoryOut<'a>,
}

struct HistoryOut<'a>(&'a HashMap<Vec<u8>, Vec<Record>>);

impl Serialize for HistoryOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut keys: Vec<&Vec<u8>> = self.0.keys().collect();
        keys.sort_unstable();
        let mut seq = serializer.serialize_seq(Some(keys.len()))?;
        for key in keys {
            seq.serialize_element(&(Bytes::new(key), &self.0[key]))?;
        }
        seq.end()
    }
}

/// The snapshot as read: version 7 (and 8, followed by the pack collection), or (with `D` =
/// [`DirectoryV6`], [`DirectoryV4`] or [`DirectoryV3`]) version 6 or 5, 4, or 3, whose layouts
/// differ only in the directory.
#[derive(Deserialize)]
struct SnapshotIn<D = Directory> {
    #[allow(dead_code)]
    version: u32,
    device: DeviceId,
    clock: Hlc,
    records: Vec<(ByteBuf, Record)>,
    dirty: Vec<ByteBuf>,
    own: OwnLog,
    issued: u64,
    pending: Option<PendingSegment>,
    peers: BTreeMap<DeviceId, PeerLog>,
    quirks: Quirks,
    directory: D,
    history: Vec<(ByteBuf, Vec<Record>)>,
}

impl<D: Into<Directory>> SnapshotIn<D> {
    /// A snapshot of an older version whose layout differs only in the directory, in the
    /// current layout.
    fn widen(self) -> SnapshotIn {
        SnapshotIn {
            version: self.version,
            device: self.device,
            clock: self.clock,
            records: self.records,
            dirty: self.dirty,
            own: self.own,
            issued: self.issued,
            pending: self.pending,
            peers: self.peers,
            quirks: self.quirks,
            directory: self.directory.into(),
            history: self.history,
        }
    }

    /// A snapshot of version 3 or 4 in the current layout. Peers' manifest ETags are
    /// forgotten, so that the next sync reads what those versions did not keep (merged vectors
    /// and retired lists; deleted segments).
    fn upgrade(self) -> SnapshotIn {
        let mut state = self.widen();
        forget_etags(state.peers.values_mut());
        state
    }
}

/// Version 2: no directory, no history.
#[derive(Deserialize)]
struct SnapshotV2 {
    version: u32,
    device: DeviceId,
    clock: Hlc,
    records: Vec<(ByteBuf, Record)>,
    dirty: Vec<ByteBuf>,
    own: OwnLog,
    issued: u64,
    pending: Option<PendingSegment>,
    peers: BTreeMap<DeviceId, PeerLog>,
    quirks: Quirks,
}

/// A replica that synced before version 3 had found its vault. Its peers' manifest ETags are
/// forgotten (see the callers) so that the next sync reads their labels and checkpoints.
fn directory_before_v3(own: &OwnLog, peers: &BTreeMap<DeviceId, PeerLog>) -> Directory {
    Directory {
        joined: own.manifest_seq > 0 || !peers.is_empty(),
        ..Directory::default()
    }
}

/// A map of `pairs` inserted one by one, for maps that are small or built once: `collect` sorts
/// them first, and each type sorted adds its own copy of the sort to the wasm (about 2 KB
/// gzipped).
fn map_of<K: Ord, V>(pairs: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut map = BTreeMap::new();
    map.extend(pairs);
    map
}

/// A set of `items` inserted one by one (see [`map_of`]).
fn set_of<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeSet<T> {
    let mut set = BTreeSet::new();
    set.extend(items);
    set
}

/// Forgets the manifest ETags of `peers`, where they lie (not collected again: see [`map_of`]).
fn forget_etags<'a>(peers: impl IntoIterator<Item = &'a mut PeerLog>) {
    for peer in peers {
        peer.manifest_etag = None;
    }
}

impl From<SnapshotV2> for SnapshotIn {
    fn from(mut v2: SnapshotV2) -> Self {
        forget_etags(v2.peers.values_mut());
        SnapshotIn {
            directory: directory_before_v3(&v2.own, &v2.peers),
            history: Vec::new(),
            version: v2.version,
            device: v2.device,
            clock: v2.clock,
            records: v2.records,
            dirty: v2.dirty,
            own: v2.own,
            issued: v2.issued,
            pending: v2.pending,
            peers: v2.peers,
            quirks: v2.quirks,
        }
    }
}

/// Version 1: no pending segment, no issued manifest number.
#[derive(Deserialize)]
struct SnapshotV1 {
    version: u32,
    device: DeviceId,
    clock: Hlc,
    records: Vec<(ByteBuf, Record)>,
    dirty: Vec<ByteBuf>,
    own: OwnLog,
    peers: BTreeMap<DeviceId, PeerLog>,
    quirks: Quirks,
}

impl From<SnapshotV1> for SnapshotIn {
    fn from(mut v1: SnapshotV1) -> Self {
        forget_etags(v1.peers.values_mut());
        SnapshotIn {
            directory: directory_before_v3(&v1.own, &v1.peers),
            history: Vec::new(),
            version: v1.version,
            device: v1.device,
            clock: v1.clock,
            records: v1.records,
            dirty: v1.dirty,
            issued: v1.own.manifest_seq,
            own: v1.own,
            pending: None,
            peers: v1.peers,
            quirks: v1.quirks,
        }
    }
}

/// The changes since the last delta, as [`LocalState::take_delta`] hands them to be written:
/// into a buffer sized for them once, so that a large one (a pending segment, a big value) is not
/// copied on its way into the journal.
pub(crate) struct Delta<'a>(
    (
        DeltaOut<'a>,
        Option<&'a PackCollection>,
        &'a [ResumablePack],
        Cow<'a, SharingState>,
        Vec<&'a Bytes>,
    ),
);

impl Delta<'_> {
    /// How many bytes [`Delta::write_to`] appends.
    pub fn len(&self) -> usize {
        postcard::experimental::serialized_size(&self.0).expect("postcard sizes any value")
    }

    /// Appends the delta to `buf`.
    pub fn write_to(&self, buf: Vec<u8>) -> Vec<u8> {
        postcard::to_extend(&self.0, buf).expect("postcard serializes into a Vec")
    }

    /// The delta on its own.
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        self.write_to(Vec::with_capacity(self.len()))
    }
}

/// The first part of one journal delta: final values of what changed. Since journal version 7
/// the directory's later parts and (version 10) the keys cleaned follow it in the entry
/// (FORMAT.md section 11 lists every field in order).
#[derive(Serialize)]
struct DeltaOut<'a> {
    /// Start from a new, empty state of `device` (the replica started over).
    reset: bool,
    device: DeviceId,
    /// Keys forgotten.
    removed: Vec<&'a Bytes>,
    clock: Hlc,
    /// Key, its current record, whether it is unpushed.
    records: Vec<(&'a Bytes, &'a Record, bool)>,
    /// The own log and the issued manifest number.
    own: Option<(&'a OwnLog, u64)>,
    pending: Option<Option<&'a PendingSegment>>,
    peers: Vec<(DeviceId, &'a PeerLog)>,
    quirks: Option<&'a Quirks>,
    directory: Option<&'a Directory>,
    /// Key and its whole history, for every key whose history changed (empty: none left).
    history: Vec<(&'a Bytes, &'a [Record])>,
}

/// A delta as read: journal version 6 (and 7, followed by the pack collection), or (with `D` =
/// [`DirectoryV6`]) version 5 or 4 (the same
/// layout; 4's quirks flag reads as the first two variants of `CreateCheck`), or (with `D` =
/// [`DirectoryV4`]) version 3, whose layouts differ only in the directory.
#[derive(Deserialize)]
struct DeltaIn<D = Directory> {
    reset: bool,
    device: DeviceId,
    removed: Vec<ByteBuf>,
    clock: Hlc,
    records: Vec<(ByteBuf, Record, bool)>,
    own: Option<(OwnLog, u64)>,
    pending: Option<Option<PendingSegment>>,
    peers: Vec<(DeviceId, PeerLog)>,
    quirks: Option<Quirks>,
    directory: Option<D>,
    history: Vec<(ByteBuf, Vec<Record>)>,
}

impl<D: Into<Directory>> DeltaIn<D> {
    /// A delta of an older journal version whose layout differs only in the directory, in the
    /// current layout.
    fn widen(self) -> DeltaIn {
        DeltaIn {
            reset: self.reset,
            device: self.device,
            removed: self.removed,
            clock: self.clock,
            records: self.records,
            own: self.own,
            pending: self.pending,
            peers: self.peers,
            quirks: self.quirks,
            directory: self.directory.map(Into::into),
            history: self.history,
        }
    }
}

impl DeltaIn<DirectoryV4> {
    /// A journal version 3 delta in the current layout; peers' ETags forgotten as in
    /// [`SnapshotIn::upgrade`].
    fn upgrade(self) -> DeltaIn {
        let mut delta = self.widen();
        forget_etags(delta.peers.iter_mut().map(|(_, peer)| peer));
        delta
    }
}

/// A delta of journal version 2: the directory of state version 3.
#[derive(Deserialize)]
struct DeltaV2 {
    clock: Hlc,
    records: Vec<(ByteBuf, Record, bool)>,
    own: Option<(OwnLog, u64)>,
    pending: Option<Option<PendingSegment>>,
    peers: Vec<(DeviceId, PeerLog)>,
    quirks: Option<Quirks>,
    directory: Option<DirectoryV3>,
    history: Vec<(ByteBuf, Vec<Record>)>,
}

impl From<DeltaV2> for DeltaIn {
    fn from(mut v2: DeltaV2) -> Self {
        forget_etags(v2.peers.iter_mut().map(|(_, peer)| peer));
        DeltaIn {
            reset: false,
            // Read only when `reset` is set.
            device: DeviceId([0; 16]),
            removed: Vec::new(),
            clock: v2.clock,
            records: v2.records,
            own: v2.own,
            pending: v2.pending,
            peers: v2.peers,
            quirks: v2.quirks,
            directory: v2.directory.map(Directory::from),
            history: v2.history,
        }
    }
}

/// A delta of journal version 1: no directory, no history.
#[derive(Deserialize)]
struct DeltaV1 {
    clock: Hlc,
    records: Vec<(ByteBuf, Record, bool)>,
    own: Option<(OwnLog, u64)>,
    pending: Option<Option<PendingSegment>>,
    peers: Vec<(DeviceId, PeerLog)>,
    quirks: Option<Quirks>,
}

impl From<DeltaV1> for DeltaV2 {
    fn from(v1: DeltaV1) -> Self {
        DeltaV2 {
            clock: v1.clock,
            records: v1.records,
            own: v1.own,
            pending: v1.pending,
            peers: v1.peers,
            quirks: v1.quirks,
            directory: None,
            history: Vec::new(),
        }
    }
}

fn state_ad(vault: VaultId) -> ObjectAd<'static> {
    ObjectAd {
        vault,
        kind: ObjectKind::LocalState,
        name: STATE_NAME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Stamp;
    use crate::engine::journal::VERSION as JOURNAL;

    fn record(value: &[u8], wall_ms: u64) -> Record {
        Record {
            value: Some(value.to_vec()),
            stamp: Stamp {
                hlc: Hlc {
                    wall_ms,
                    counter: 0,
                },
                device: DeviceId([1; 16]),
            },
        }
    }

    /// A push that reaches the store clears the unpushed flag of every key it carried: the
    /// journal lists those keys (journal version 10) instead of writing each record again,
    /// and replaying it gives back the same state. A key written again after it was cleaned
    /// keeps its new record and flag.
    #[test]
    fn a_push_journals_the_keys_it_cleaned_not_their_records() {
        let key = SecretKey([7; 32]);
        let vault = VaultId([9; 16]);
        let mut state = LocalState::new(DeviceId([1; 16]));
        let big = vec![b'x'; 1000];
        for i in 0..100u64 {
            let k = format!("k{i:03}").into_bytes();
            state.merge(k.clone(), record(&big, 1_000 + i));
            state.mark_dirty(k);
        }
        let snapshot = state.export(&key, vault, &mut Entropy::from_seed([4; 32]));
        let mut read = LocalState::import(&key, vault, &snapshot).unwrap();
        assert_eq!(read.dirty().len(), 100);

        for i in 0..100u64 {
            state.mark_clean(format!("k{i:03}").as_bytes());
        }
        // Cleaned, then written again before the delta: the record goes with its flag.
        state.merge(b"k007".to_vec(), record(b"again", 5_000));
        state.mark_dirty(b"k007".to_vec());
        // Written, then cleaned in the same delta: the record goes, flag clear.
        state.merge(b"new".to_vec(), record(b"new", 5_001));
        state.mark_dirty(b"new".to_vec());
        state.mark_clean(b"new");
        let delta = state.take_delta(|d| d.to_vec()).unwrap();
        assert!(
            delta.len() < 2_000,
            "99 cleaned keys and two records, not 100 KB of records: {} bytes",
            delta.len()
        );
        read.apply_delta(JOURNAL, &delta).unwrap();
        assert_eq!(read.dirty(), state.dirty());
        assert_eq!(read.dirty().iter().collect::<Vec<_>>(), [&b"k007".to_vec()]);
        assert_eq!(read.records.get(b"k007"), Some(&record(b"again", 5_000)));
        assert_eq!(read.records.get(b"new"), Some(&record(b"new", 5_001)));
        assert_eq!(read.records.len(), 101);

        // A version 9 reader's layout has no such list: the same bytes do not decode as 9.
        assert!(LocalState::new(DeviceId([1; 16]))
            .apply_delta(9, &delta)
            .is_err());
    }

    /// A state of version 5 (the previous release) kept a NotImplemented flag where version 6
    /// keeps what the store said about a second create: `00` and `01` read as never asked.
    #[test]
    fn the_quirks_flag_of_state_version_5_reads_as_never_asked() {
        let key = SecretKey([7; 32]);
        let vault = VaultId([9; 16]);
        let mut state = LocalState::new(DeviceId([1; 16]));
        for (flag, expected) in [(0u8, CreateCheck::Unchecked), (1, CreateCheck::RefusedOnce)] {
            // The snapshot of a new replica: version, device, clock, no records, no unpushed
            // keys, own log, issued, no pending, no peers, the quirks flag, an empty
            // directory (state 5), no history.
            let mut plain = vec![5];
            plain.extend_from_slice(&[1; 16]);
            plain.extend_from_slice(&[0, 0, 0, 0]);
            plain.extend_from_slice(&[0; 6]);
            plain.extend_from_slice(&[0, 0, 0, flag]);
            plain.extend_from_slice(&[0; 15]);
            plain.push(0);
            let sealed = crypto::seal(
                &key,
                &state_ad(vault),
                &plain,
                &mut Entropy::from_seed([3; 32]),
            )
            .unwrap();
            let read = LocalState::import(&key, vault, &sealed).unwrap();
            assert_eq!(read.quirks().exclusive_create, expected, "flag {flag}");
            // Written again, it is version 6 and reads back the same.
            state.quirks = read.quirks.clone();
            let again = state.export(&key, vault, &mut Entropy::from_seed([4; 32]));
            let read = LocalState::import(&key, vault, &again).unwrap();
            assert_eq!(read.quirks().exclusive_create, expected);
        }
        state.quirks_mut().exclusive_create = CreateCheck::Ignored(1_700_000_000_000);
        let again = state.export(&key, vault, &mut Entropy::from_seed([4; 32]));
        let read = LocalState::import(&key, vault, &again).unwrap();
        assert_eq!(
            read.quirks().exclusive_create.asked_at(),
            Some(1_700_000_000_000)
        );
    }

    /// The packs in parts are kept by a snapshot and by a delta (state version 9, journal
    /// version 8), and a delta that does not carry the directory leaves them as they were.
    #[test]
    fn packs_in_parts_survive_a_snapshot_and_a_delta() {
        use crate::pack::{ChunkId, IndexEntry, PackName};
        let key = SecretKey([7; 32]);
        let vault = VaultId([9; 16]);
        let pack = ResumablePack {
            name: PackName {
                device: [1; 16],
                pack: [2; 16],
            },
            upload_id: "upload 1".into(),
            parts: vec!["\"etag-1\"".into(), "\"etag-2\"".into()],
            entries: vec![IndexEntry {
                id: ChunkId([3; 32]),
                offset: 0,
                sealed_len: 1040,
                len: 1000,
            }],
            whole: false,
        };
        let mut state = LocalState::new(DeviceId([1; 16]));
        state.directory_mut().resumable_packs.push(pack.clone());
        let snapshot = state.export(&key, vault, &mut Entropy::from_seed([4; 32]));
        let mut read = LocalState::import(&key, vault, &snapshot).unwrap();
        assert_eq!(
            read.directory().resumable_packs,
            std::slice::from_ref(&pack)
        );

        // A delta with the directory replaces them; one without leaves them be.
        state.directory_mut().resumable_packs.clear();
        let emptied = state.take_delta(|d| d.to_vec()).unwrap();
        state.own_mut().manifest_seq = 1;
        let unrelated = state.take_delta(|d| d.to_vec()).unwrap();
        read.apply_delta(JOURNAL, &unrelated).unwrap();
        assert_eq!(read.directory().resumable_packs, [pack]);
        read.apply_delta(JOURNAL, &emptied).unwrap();
        assert!(read.directory().resumable_packs.is_empty());
    }
}
