//! The replica: its records, its local state, and the sync state machine (in [`sync`]).

mod files;
mod journal;
mod sharing;
mod state;
mod sync;

use crate::clock::{Hlc, Stamp};
use crate::credentials::Credentials;
use crate::crypto::SecretKey;
use crate::entropy::Entropy;
use crate::error::Result;
use crate::ids::{DeviceId, RequestId, Timestamp, VaultId};
use crate::key::{Purpose, VaultKey};
use crate::record::Record;
use crate::report::SyncReport;
use crate::retry::RetryPolicy;
use crate::sign::{SigV4, Signer};
use crate::store::Store;

pub use journal::HEADER_LEN as JOURNAL_HEADER_LEN;
pub use state::HistoryPolicy;
use state::LocalState;
pub use sync::compact::{
    CompactionPolicy, DEFAULT_GRACE_MS, DEFAULT_MAX_CLOCK_SKEW_MS, DEFAULT_MAX_FUTURE_MS,
};
use sync::SyncRun;
#[cfg(feature = "driver")]
pub(crate) use sync::HINT_NAME;
#[cfg(feature = "backup")]
pub(crate) use sync::MASS_DELETION_MIN_KEYS;

/// Where the engine is in its life: one state, never a combination.
enum Lifecycle {
    /// No sync running, no outcome waiting.
    Idle,
    /// A sync runs.
    Syncing(Box<SyncRun>),
    /// A sync ended; its outcome waits for [`Engine::poll_outcome`].
    Finished(Box<Result<SyncReport>>),
}

/// What a replica's first sync expects to find in the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OpenMode {
    /// Join an existing vault: the first sync fails with `NoVault` (category `not-found`) when
    /// the store holds no vault for this key, instead of starting an empty one.
    Join,
    /// Start a new vault: the first sync fails with `VaultExists` (category `conflict`) when
    /// the store holds one for this key already, and publishes this device's manifest.
    Create,
    /// Either (the behaviour before create and join existed).
    #[default]
    JoinOrCreate,
}

impl OpenMode {
    /// Reads `"join"`, `"create"` or `"join-or-create"` (the bindings' spelling).
    ///
    /// # Errors
    /// `Config` for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "join" => Ok(OpenMode::Join),
            "create" => Ok(OpenMode::Create),
            "join-or-create" => Ok(OpenMode::JoinOrCreate),
            other => Err(crate::error::Error::Config(format!(
                "mode must be \"join\", \"create\" or \"join-or-create\", not {other:?}"
            ))),
        }
    }

    /// The bindings' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OpenMode::Join => "join",
            OpenMode::Create => "create",
            OpenMode::JoinOrCreate => "join-or-create",
        }
    }
}

/// One device of the vault, as its latest manifest describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSummary {
    /// Its id.
    pub id: DeviceId,
    /// Its human name (empty when it has none).
    pub label: String,
    /// When it last published its manifest (milliseconds since the Unix epoch, by its clock),
    /// `None` when it never did.
    pub last_push_ms: Option<u64>,
    /// How many segments it has written.
    pub segments: u64,
    /// Whether this is the replica's own device.
    pub this_device: bool,
    /// Whether it has been silent longer than the stale period passed to
    /// [`Engine::devices`].
    pub stale: bool,
    /// Whether it is retired ([`Engine::retire`], or it started over under a new id): nobody
    /// waits for it, and if it comes back it starts over.
    pub retired: bool,
}

/// The longest device label, in bytes of UTF-8.
pub use crate::manifest::MAX_LABEL_BYTES;

/// The mass-deletion guard's default limit, in percent of the live keys.
pub const DEFAULT_MASS_DELETION_LIMIT: u8 = 50;

/// A replica restored by [`Engine::restore`], and what to do with its journal file.
#[derive(Debug)]
pub struct Restored {
    /// The replica.
    pub engine: Engine,
    /// How many bytes of the journal are whole entries: cut the file to this length, then
    /// append. `None`: the journal is absent, belongs to an older snapshot or has an older
    /// layout; write a new snapshot ([`Engine::export_state`]) and start a new journal with
    /// [`Engine::journal_header`].
    pub journal_keep: Option<usize>,
    /// How many journal entries were replayed.
    pub replayed: usize,
}

/// One device's replica of a vault.
///
/// # Contract
///
/// [`Engine`] never performs I/O, never reads a clock and never asks the operating system for
/// randomness: the time comes with every input and nonces come from the [`Entropy`] it was
/// made with. The caller:
///
/// - changes records with [`Engine::put`] and [`Engine::delete`], passing the wall time;
/// - reads them with [`Engine::get`] and [`Engine::keys`];
/// - starts a sync with [`Engine::start_sync`], then repeatedly drains
///   [`Engine::poll_request`] (several requests may be out at once: run them concurrently),
///   feeds every answer back with [`Engine::handle_response`] (by [`RequestId`], in any order),
///   and, when nothing is out and nothing is handed out, waits until [`Engine::poll_timeout`]
///   (a retry's backoff), until [`Engine::poll_outcome`] returns the [`SyncReport`] or the
///   error that stopped it;
/// - persists the local state: [`Engine::export_state`] gives a whole snapshot (rarely: at
///   open, and when the journal has grown), [`Engine::poll_journal`] the changes since, as an
///   entry to append to the journal that follows that snapshot. Drain `poll_journal` after every
///   input (a `put`, a `delete`, a `handle_response`) and **before sending a request handed out
///   after it**: then a crash between any two steps loses nothing, a restarted push re-sends the
///   very same segment bytes, and the next sync neither duplicates nor skips anything. Restore
///   with [`Engine::restore`].
///
/// Records may be changed while a sync runs; changes made after the push started go out with
/// the next sync.
pub struct Engine {
    vault: VaultId,
    segment_key: SecretKey,
    manifest_key: SecretKey,
    checkpoint_key: SecretKey,
    state_key: SecretKey,
    /// Files: the chunk, chunk-id, chunker and file-hash keys of the vault's own key
    /// (generation 0; see [`Engine::file_keys`] for later ones).
    file_keys: [SecretKey; 4],
    /// The seeds of the identity this vault gives as a home (sharing).
    identity_seeds: [SecretKey; 2],
    /// Files: chunks stored in packs that no live file references (left by an interrupted
    /// upload), as found by listing our packs, and the key generation they are sealed under;
    /// `None` until an upload listed them. In memory only: a new process lists again.
    spare_chunks: Option<(
        u32,
        std::collections::HashMap<crate::pack::ChunkId, crate::transfer::Stored>,
    )>,
    /// Cloned into every transfer and dropped with it: while a transfer lives, no pack is
    /// collected.
    transfers: std::sync::Arc<()>,
    /// Our packs this process deleted or is deleting (pack collection): no upload references
    /// their chunks again.
    collected_packs: std::collections::HashSet<crate::pack::PackName>,
    /// Checkpoints that authenticated but could not be read (sealed so by their writer): not
    /// asked for again by this process. (A list: there are none, or a handful.)
    refused_checkpoints: Vec<(DeviceId, u64)>,
    /// Checkpoints that failed to authenticate when this process fetched them: not fetched
    /// again for a damaged segment they cover (only for deleted segments nothing else
    /// covers). (A list: there are none, or a handful.)
    unreadable_checkpoints: Vec<(DeviceId, u64)>,
    /// Our checkpoint this process read back for a peer stranded below our deletion (and
    /// found sound, or replaced): not read back again.
    own_checkpoint_read_back: Option<u64>,
    /// Former ids of ours whose log this process listed and found gone: not listed again.
    former_logs_gone: std::collections::HashSet<DeviceId>,
    /// The redirects of our repacked packs read or written by this process, by the pack they
    /// lead away from (they never change).
    redirects:
        std::collections::HashMap<crate::pack::PackName, std::sync::Arc<crate::pack::Redirect>>,
    store: Store,
    /// The vault's folder in the bucket, `"<vault id>/"`.
    folder: String,
    state: LocalState,
    lifecycle: Lifecycle,
    last_report: Option<SyncReport>,
    next_request: u64,
    /// Signs requests; never persisted.
    signer: Option<Box<dyn Signer>>,
    /// Store time minus our time, learnt from a RequestTimeTooSkewed answer.
    clock_offset_ms: i64,
    retry: RetryPolicy,
    /// Whether new file chunks are deflated where that makes them shorter.
    compression: bool,
    /// Where nonces come from.
    entropy: Entropy,
    /// The journal following the last snapshot exported or restored; `None` before either.
    journal: Option<journal::Cursor>,
    /// What the first sync expects to find.
    open_mode: OpenMode,
    /// When to write checkpoints.
    compaction: CompactionPolicy,
    /// The mass-deletion guard's limit in percent of the live keys (`None`: off).
    mass_deletion_limit: Option<u8>,
    /// The app confirmed the deletions of the next push.
    deletions_confirmed: bool,
    /// The ETag of the vault's change hint when this process last read it (in memory only:
    /// a new process's first poll lists).
    hint_etag: Option<String>,
    /// A shared vault's identity, founder and members ([`Engine::set_sharing`]); `None` for
    /// a vault that is not shared.
    sharing: Option<sharing::Sharing>,
    /// Keys changed by syncs that failed or were cancelled: the next successful sync's report
    /// names them (in memory only: a new process shows its records afresh).
    unreported: Vec<Vec<u8>>,
    /// Keys whose record was dropped wholesale (the replica started over, or forgot what it
    /// merged), with the stamp they had then: reported changed by the next successful sync
    /// when what they hold after it differs (in memory only).
    forgotten: Vec<(Vec<u8>, Stamp)>,
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("vault", &self.vault)
            .field("device", &self.state.device)
            .field("store", &self.store.display_name())
            .field("records", &self.state.records().len())
            .field("unpushed", &self.state.dirty().len())
            .field("syncing", &self.is_syncing())
            .finish()
    }
}

impl Engine {
    /// A new, empty replica of the vault `key` opens, as device `device`, in `store`. Nonces
    /// come from `entropy` (seed it from the OS: [`Entropy::from_os`]).
    pub fn new(key: &VaultKey, store: Store, device: DeviceId, entropy: Entropy) -> Self {
        Self::with_state(key, store, LocalState::new(device), entropy)
    }

    /// A replica restored from a snapshot made by [`Engine::export_state`] alone (its journal,
    /// if it had one, ignored).
    ///
    /// # Errors
    /// `WrongVault` when the state was made with another key; `Corrupt` when it is damaged or
    /// of an unknown version.
    pub fn from_state(
        key: &VaultKey,
        store: Store,
        state: &[u8],
        entropy: Entropy,
    ) -> Result<Self> {
        Ok(Self::restore(key, store, state, &[], entropy)?.engine)
    }

    /// A replica restored from a snapshot and the journal that follows it (empty when there is
    /// none). Snapshots of state version 1 (no journal yet) are read too.
    ///
    /// # Errors
    /// `WrongVault` when the state or journal was made with another key; `Corrupt` when the
    /// snapshot is damaged or a journal entry before the last one is.
    pub fn restore(
        key: &VaultKey,
        store: Store,
        snapshot: &[u8],
        journal: &[u8],
        entropy: Entropy,
    ) -> Result<Restored> {
        Engine::restore_owned(key, store, snapshot.to_vec(), journal, entropy)
    }

    /// [`Engine::restore`] from a snapshot the caller lets go of: it is decrypted where it
    /// lies, and freed once decoded, before the journal is read.
    ///
    /// # Errors
    /// As [`Engine::restore`].
    pub fn restore_owned(
        key: &VaultKey,
        store: Store,
        snapshot: Vec<u8>,
        journal: &[u8],
        entropy: Entropy,
    ) -> Result<Restored> {
        let state_key = key.subkey(Purpose::LocalState);
        let vault = key.vault_id();
        let cursor = journal::Cursor::after(&snapshot);
        let mut state = LocalState::import_owned(&state_key, vault, snapshot)?;
        // Each decrypted delta is wiped once applied.
        let replay = journal::read_after(&state_key, vault, cursor, journal, |version, delta| {
            state.apply_delta(version, &zeroize::Zeroizing::new(delta))
        })?;
        let replayed = replay.replayed;
        let mut engine = Self::with_state(key, store, state, entropy);
        engine.journal = Some(replay.cursor);
        Ok(Restored {
            engine,
            journal_keep: replay.keep,
            replayed,
        })
    }

    fn with_state(key: &VaultKey, store: Store, state: LocalState, entropy: Entropy) -> Self {
        let vault = key.vault_id();
        Engine {
            vault,
            segment_key: key.subkey(Purpose::Segment),
            manifest_key: key.subkey(Purpose::Manifest),
            checkpoint_key: key.subkey(Purpose::Checkpoint),
            state_key: key.subkey(Purpose::LocalState),
            identity_seeds: crate::identity::identity_seeds(key),
            file_keys: [
                key.subkey(Purpose::Chunk),
                key.subkey(Purpose::ChunkId),
                key.subkey(Purpose::Chunker),
                key.subkey(Purpose::FileHash),
            ],
            spare_chunks: None,
            transfers: std::sync::Arc::new(()),
            collected_packs: std::collections::HashSet::new(),
            refused_checkpoints: Vec::new(),
            unreadable_checkpoints: Vec::new(),
            own_checkpoint_read_back: None,
            former_logs_gone: Default::default(),
            redirects: std::collections::HashMap::new(),
            folder: format!("{}{vault}/", store.prefix()),
            store,
            state,
            lifecycle: Lifecycle::Idle,
            last_report: None,
            next_request: 0,
            signer: None,
            clock_offset_ms: 0,
            retry: RetryPolicy::default(),
            compression: true,
            entropy,
            journal: None,
            open_mode: OpenMode::default(),
            compaction: CompactionPolicy::default(),
            mass_deletion_limit: Some(DEFAULT_MASS_DELETION_LIMIT),
            deletions_confirmed: false,
            hint_etag: None,
            sharing: None,
            unreported: Vec::new(),
            forgotten: Vec::new(),
        }
    }

    /// What the first sync expects to find (default [`OpenMode::JoinOrCreate`]). Once the
    /// replica has found or created its vault, this no longer matters.
    pub fn set_open_mode(&mut self, mode: OpenMode) {
        self.open_mode = mode;
    }

    /// When to write checkpoints (default [`CompactionPolicy::default`]).
    pub fn set_compaction(&mut self, policy: CompactionPolicy) {
        self.compaction = policy;
    }

    /// The mass-deletion guard: a push that would delete more than `percent` of the live keys
    /// (and at least 10 keys) pushes nothing and ends in `MassDeletion` until
    /// [`Engine::confirm_deletions`]. `None` turns it off. Default: 50. A deletion counts when
    /// the key's previous version (in its history) had a value, so a history policy that keeps
    /// no versions turns the guard off too.
    ///
    /// # Errors
    /// `Config` when `percent` is above 100.
    pub fn set_mass_deletion_limit(&mut self, percent: Option<u8>) -> Result<()> {
        if percent.is_some_and(|p| p > 100) {
            return Err(crate::error::Error::Config(
                "the mass-deletion limit is a percentage: 0 to 100".into(),
            ));
        }
        self.mass_deletion_limit = percent;
        Ok(())
    }

    /// Lets the next sync push its deletions past the mass-deletion guard.
    pub fn confirm_deletions(&mut self) {
        self.deletions_confirmed = true;
    }

    /// The mass-deletion guard's limit in percent (`None`: off).
    pub fn mass_deletion_limit(&self) -> Option<u8> {
        self.mass_deletion_limit
    }

    /// Whether deletions past the mass-deletion guard were confirmed for the next sync.
    pub fn deletions_confirmed(&self) -> bool {
        self.deletions_confirmed
    }

    /// This device's human name, written into its manifest.
    pub fn label(&self) -> &str {
        &self.state.directory().label
    }

    /// Names this device (at most [`MAX_LABEL_BYTES`] bytes, no control characters); the next
    /// sync publishes it.
    ///
    /// # Errors
    /// `Config` when the label is too long or holds control characters.
    pub fn set_label(&mut self, label: &str) -> Result<()> {
        if label.len() > MAX_LABEL_BYTES || label.chars().any(char::is_control) {
            return Err(crate::error::Error::Config(format!(
                "a device label is at most {MAX_LABEL_BYTES} bytes of text without control characters"
            )));
        }
        if self.state.directory().label != label {
            self.state.directory_mut().label = label.to_owned();
        }
        Ok(())
    }

    /// Every device of the vault this replica knows of (itself included), sorted by id. A
    /// device is stale when its last push is more than `stale_after_ms` before `now`.
    pub fn devices(&self, now: Timestamp, stale_after_ms: u64) -> Vec<DeviceSummary> {
        let me = self.state.device;
        let directory = self.state.directory();
        let mut ids = std::collections::BTreeSet::new();
        ids.extend(self.state.peers().keys().copied());
        ids.extend(directory.devices.keys().copied());
        ids.insert(me);
        ids.into_iter()
            .map(|id| {
                let info = directory.devices.get(&id);
                let last_push_ms = info.map(|i| i.clock.wall_ms).filter(|ms| *ms > 0);
                let segments = if id == me {
                    self.state.own().segments
                } else {
                    self.state.peer(&id).map_or(0, |p| p.segments)
                };
                DeviceSummary {
                    id,
                    label: if id == me {
                        directory.label.clone()
                    } else {
                        info.map(|i| i.label.clone()).unwrap_or_default()
                    },
                    last_push_ms,
                    segments,
                    this_device: id == me,
                    stale: id != me
                        && last_push_ms.is_none_or(|ms| ms.saturating_add(stale_after_ms) < now.0),
                    retired: directory.retired.contains(&id),
                }
            })
            .collect()
    }

    /// Signs every request with AWS Signature Version 4 and `credentials`, for the store's
    /// region. Credentials stay in memory: they are never part of the exported state. A
    /// `file://` store signs nothing and ignores them.
    pub fn set_credentials(&mut self, credentials: Credentials) {
        if let Some(region) = self.store.region() {
            self.signer = Some(Box::new(SigV4::new(credentials, region.to_owned())));
        }
    }

    /// Signs every request with `signer` (or sends them unsigned with `None`, for a transport
    /// that signs or presigns them itself).
    pub fn set_signer(&mut self, signer: Option<Box<dyn Signer>>) {
        self.signer = signer;
    }

    /// Whether what this replica writes from now on is deflated (raw deflate, before it is
    /// sealed) where that makes it shorter: the chunks of files it stores, and its segments
    /// and checkpoints; default `true`. With `false` every new chunk, segment and checkpoint
    /// is stored as it is (codec 0), so their sizes say nothing about how compressible the
    /// content is: turn it off for a vault that stores data an attacker can choose next to
    /// secrets (see `docs/FORMAT.md`, "What the bucket learns"). What is stored already is
    /// read either way. Only in the Rust API.
    pub fn set_compression(&mut self, on: bool) {
        self.compression = on;
    }

    /// Replaces the retry policy (default: [`RetryPolicy::default`]).
    pub fn set_retry_policy(&mut self, policy: RetryPolicy) {
        self.retry = policy;
    }

    /// How far the store's clock is ahead of ours, in milliseconds, as learnt from a
    /// RequestTimeTooSkewed answer (0 until then). Requests are signed with the corrected time.
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms
    }

    /// The replica's whole local state as a sealed snapshot, for [`Engine::restore`]. Its cost
    /// grows with the vault: write it rarely. A new, empty journal follows it: write
    /// [`Engine::journal_header`] to start the journal file, then append what
    /// [`Engine::poll_journal`] gives.
    pub fn export_state(&mut self) -> Vec<u8> {
        let snapshot = self
            .state
            .export(&self.state_key, self.vault, &mut self.entropy);
        self.journal = Some(journal::Cursor::after(&snapshot));
        snapshot
    }

    /// The header of the journal that follows the last snapshot exported or restored, to start
    /// a journal file with; `None` before either.
    pub fn journal_header(&self) -> Option<Vec<u8>> {
        self.journal.as_ref().map(journal::Cursor::header)
    }

    /// The changes since the last snapshot or journal entry, as a sealed entry to append to the
    /// journal; `None` when nothing changed, or before any snapshot was exported or restored
    /// (the changes then wait for the first snapshot, which holds them).
    pub fn poll_journal(&mut self) -> Option<Vec<u8>> {
        let cursor = self.journal.as_mut()?;
        let (key, vault, entropy) = (&self.state_key, self.vault, &mut self.entropy);
        // Written straight into the entry's buffer and sealed there: one copy of the changes.
        self.state.take_delta(|delta| {
            let mut sealing = cursor.begin(key, vault, delta.len(), entropy);
            sealing.buf = delta.write_to(sealing.buf);
            journal::Cursor::finish(sealing)
        })
    }

    /// This replica's device id.
    pub fn device(&self) -> DeviceId {
        self.state.device
    }

    /// The vault's public id (its folder name in the bucket).
    pub fn vault_id(&self) -> VaultId {
        self.vault
    }

    /// The store this replica syncs with.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Sets `key` to `value`; returns the write's stamp.
    pub fn put(
        &mut self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        now: Timestamp,
    ) -> Stamp {
        self.write(key.into(), Some(value.into()), now)
    }

    /// Deletes `key` by writing a tombstone (also when the key is unknown here: another device
    /// may have it). Returns the write's stamp.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>, now: Timestamp) -> Stamp {
        self.write(key.into(), None, now)
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>, now: Timestamp) -> Stamp {
        let stamp = Stamp {
            hlc: self.tick(now),
            device: self.state.device,
        };
        self.state.mark_dirty(key.clone());
        self.state.merge(key, Record { value, stamp });
        stamp
    }

    /// The keys whose latest write here has not reached the store yet, sorted.
    pub fn unpushed_keys(&self) -> Vec<Vec<u8>> {
        self.state.dirty().iter().cloned().collect()
    }

    /// The value of `key`, or `None` when it is absent or deleted.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.state.records().get(key)?.value.as_deref()
    }

    /// The versions of `key` known here, newest first: the current one, then the earlier ones
    /// kept by the history policy (overwritten here, or a concurrent write that lost, from any
    /// device). Empty when the key is unknown.
    pub fn history(&self, key: &[u8]) -> Vec<Record> {
        let mut versions: Vec<Record> =
            self.state.records().get(key).cloned().into_iter().collect();
        versions.extend(self.state.history(key).iter().cloned());
        versions
    }

    /// How many earlier versions of a key to keep, and for how long (default
    /// [`HistoryPolicy::default`]: 10 versions, 30 days).
    pub fn set_history_policy(&mut self, policy: HistoryPolicy) {
        self.state.set_history_policy(policy);
    }

    /// The current record of `key`, tombstones included.
    pub fn record(&self, key: &[u8]) -> Option<&Record> {
        self.state.records().get(key)
    }

    /// Live keys starting with `prefix`, sorted.
    pub fn keys(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        self.state.records().live_keys(prefix)
    }

    /// Every key starting with `prefix` that this replica holds a record of, deleted ones
    /// included, sorted (what an earlier time may have held).
    #[cfg(feature = "driver")]
    pub(crate) fn keys_ever(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self
            .state
            .records()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// How many local writes are not yet in the store.
    pub fn unpushed(&self) -> usize {
        self.state.dirty().len()
    }

    /// How many keys the replica holds, tombstones included.
    pub fn len(&self) -> usize {
        self.state.records().len()
    }

    /// Whether the replica holds no key at all.
    pub fn is_empty(&self) -> bool {
        self.state.records().is_empty()
    }

    /// The report of the last finished sync, also when it failed.
    pub fn last_report(&self) -> Option<&SyncReport> {
        self.last_report.as_ref()
    }

    /// The current hybrid logical clock reading.
    pub fn clock(&self) -> Hlc {
        self.state.clock
    }

    fn next_request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }
}
