//! One open vault, as every binding and example uses it: the store URL turned into a store
//! and credentials, the replica restored from its snapshot and journal, the lock that keeps one
//! writer per device, the save policy, progress, and syncs that are safe to cancel.
//!
//! # Durability
//! Every `put` and `delete` is appended to the journal before it returns, and every answer a
//! sync handles is journaled before the next request goes out. A process that is killed at any
//! moment therefore loses nothing it acknowledged. The journal is synced to the disk (`fsync`)
//! at the end of every sync, by [`Session::save`] and [`Session::close`], before a segment's PUT
//! is sent, and when a write comes more than [`Durability::flush_interval_ms`] after the last
//! sync to disk; a power loss costs at most the writes since that last point. The snapshot is
//! rewritten only when the journal outgrows it (and [`Durability::compact_min_bytes`]), so a
//! save costs what changed, not what the vault holds; while a file upload runs, not at all
//! (it is rewritten at the first save after the upload).
//!
//! # Cancellation
//! The engine stays inside the session: a sync only borrows it, one step at a time, under a
//! lock held for microseconds and never across an `.await`. Dropping a sync's future (a
//! cancelled coroutine or task, an aborted promise) or a panic in a callback abandons that
//! sync; the vault stays usable, its state consistent and saved, and the next sync resumes the
//! push with the same bytes. A host that cannot drop the future itself runs the call through a
//! [`Cancel`](crate::cancel::Cancel), which does so the moment it is cancelled.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::channel::mpsc;

use crate::credentials::Credentials;
use crate::engine::{CompactionPolicy, DeviceSummary, Engine, OpenMode};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::grant::Role;
use crate::ids::{DeviceId, Timestamp};
use crate::io::driver::{self, Progress, Steps, SyncKind, Transport};
use crate::io::state_store::{MemoryState, Saved, StateStore, StateWrite};
use crate::key::VaultKey;
use crate::report::SyncReport;
use crate::schedule::Happening;
use crate::store::Store;

#[cfg(not(target_arch = "wasm32"))]
use crate::io::state_store::FileState;

/// When the local state is written and synced to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durability {
    /// A write more than this long after the last sync to disk syncs the journal again
    /// (milliseconds; 0 syncs after every write).
    pub flush_interval_ms: u64,
    /// The snapshot is rewritten when the journal is longer than both the snapshot and this
    /// many bytes (while a file upload runs, at the first save after it).
    pub compact_min_bytes: u64,
}

impl Default for Durability {
    fn default() -> Self {
        Durability {
            flush_interval_ms: 1_000,
            compact_min_bytes: 4 << 20,
        }
    }
}

impl Durability {
    /// The defaults, with the flush interval an app gave in seconds (`None`: the default).
    ///
    /// # Errors
    /// `Config` naming `name` when `seconds` is not a finite number >= 0.
    pub fn with_flush_seconds(seconds: Option<f64>, name: &str) -> Result<Self> {
        let defaults = Durability::default();
        let flush_interval_ms = match seconds {
            None => defaults.flush_interval_ms,
            Some(s) if s.is_finite() && s >= 0.0 => (s * 1000.0).min(u64::MAX as f64) as u64,
            Some(s) => {
                return Err(Error::Config(format!(
                    "{name} must be a number of seconds >= 0, not {}",
                    crate::settings::not_a_count(s)
                )))
            }
        };
        Ok(Durability {
            flush_interval_ms,
            ..defaults
        })
    }
}

/// Where the replica's local state lives.
pub enum StateLocation<'a> {
    /// Nowhere: the replica lives as long as the session.
    Memory,
    /// Files at this path (the snapshot; the journal and lock beside it). With `wait`, opening
    /// waits for another holder of the lock instead of failing with `Locked`.
    #[cfg(not(target_arch = "wasm32"))]
    File {
        /// The state file.
        path: &'a std::path::Path,
        /// Wait for the lock.
        wait: bool,
    },
    /// Bytes the host keeps itself (say, in IndexedDB): the session starts from them and
    /// queues its writes for [`Session::take_state_writes`].
    Host(Saved),
    /// A store the app brings (a platform's own storage, or a simulated disk), with what it
    /// holds now (`None`: nothing yet; given while the store holds a state, a new replica is
    /// made and its snapshot replaces that state). It must apply writes in order and make
    /// them survive a power loss when flushed, as [`StateStore`] says; the session flushes
    /// under its [`Durability`]. One session at a time may write to it: keeping a second
    /// process out is the app's part (the file store's lock does it for [`StateLocation::File`]). (Not in the wasm build: the browser's storage is [`StateLocation::Host`].)
    #[cfg(not(target_arch = "wasm32"))]
    Custom(Box<dyn StateStore>, Option<Saved>),
    #[doc(hidden)]
    _Lifetime(std::marker::PhantomData<&'a ()>),
}

#[cfg(not(target_arch = "wasm32"))]
impl<'a> StateLocation<'a> {
    /// The state file at `path` (waiting for its lock with `wait`), or memory without one: what
    /// a binding's optional state path means.
    pub fn file_or_memory(path: Option<&'a std::path::Path>, wait: bool) -> Self {
        match path {
            Some(path) => StateLocation::File { path, wait },
            None => StateLocation::Memory,
        }
    }
}

impl core::fmt::Debug for StateLocation<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StateLocation::Memory | StateLocation::_Lifetime(_) => f.write_str("Memory"),
            #[cfg(not(target_arch = "wasm32"))]
            StateLocation::File { path, wait } => f
                .debug_struct("File")
                .field("path", path)
                .field("wait", wait)
                .finish(),
            StateLocation::Host(_) => f.write_str("Host"),
            #[cfg(not(target_arch = "wasm32"))]
            StateLocation::Custom(store, _) => write!(f, "Custom({})", store.describe()),
        }
    }
}

/// What [`Session::open`] needs.
pub struct SessionOptions<'a> {
    /// `s3://…` or `file:///…`.
    pub store: &'a str,
    /// The vault key.
    pub key: &'a VaultKey,
    /// The device: a stable id (32 hex digits), or a human name (any other text, at most
    /// 64 bytes), kept as the device's label while its id is random and kept in the state.
    /// `None`: the id in the state, or a new random one.
    pub device: Option<&'a str>,
    /// What the first sync expects to find in the store (default: join or create).
    pub mode: OpenMode,
    /// When to write checkpoints.
    pub compaction: CompactionPolicy,
    /// Where the local state lives.
    pub state: StateLocation<'a>,
    /// Explicit S3 credentials; otherwise they come from the `AWS_*` environment when
    /// `environment` says so.
    pub credentials: Option<Credentials>,
    /// Whether credentials not given are read from the `AWS_*` environment (the default). A
    /// vault opened through a home never reads them: it takes the home's only as
    /// [`crate::io::reach`] says.
    pub environment: bool,
    /// The app executes (and may sign) requests itself: missing credentials are then not an
    /// error, and requests go out unsigned.
    pub own_transport: bool,
    /// When state is written and synced to disk.
    pub durability: Durability,
    /// The wall clock, in milliseconds since the Unix epoch.
    pub clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// A fixed seed for the replica's randomness (nonces, new device ids), so that a
    /// simulation replays exactly. Never outside tests: two sessions with one seed reuse
    /// nonces. `None` (the default): the operating system's randomness.
    #[doc(hidden)]
    pub entropy_seed: Option<[u8; 32]>,
}

#[cfg(not(target_arch = "wasm32"))]
impl<'a> SessionOptions<'a> {
    /// Options with the defaults: a device id from the state (or a new one), credentials from
    /// the `AWS_*` environment, the built-in transport, [`Durability::default`] and the
    /// system clock. Change the fields you need.
    pub fn new(store: &'a str, key: &'a VaultKey, state: StateLocation<'a>) -> Self {
        SessionOptions {
            store,
            key,
            device: None,
            mode: OpenMode::default(),
            compaction: CompactionPolicy::default(),
            state,
            credentials: None,
            environment: true,
            own_transport: false,
            durability: Durability::default(),
            clock: system_clock(),
            entropy_seed: None,
        }
    }
}

impl core::fmt::Debug for SessionOptions<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionOptions")
            .field("store", &self.store)
            .field("device", &self.device)
            .field("state", &self.state)
            .field("own_transport", &self.own_transport)
            .finish_non_exhaustive()
    }
}

enum Backend {
    Memory(MemoryState),
    #[cfg(not(target_arch = "wasm32"))]
    File(FileState),
    #[cfg(not(target_arch = "wasm32"))]
    Custom(Box<dyn StateStore>),
}

impl Backend {
    fn store(&mut self) -> &mut dyn StateStore {
        match self {
            Backend::Memory(m) => m,
            #[cfg(not(target_arch = "wasm32"))]
            Backend::File(f) => f,
            #[cfg(not(target_arch = "wasm32"))]
            Backend::Custom(c) => c.as_mut(),
        }
    }
}

struct Inner {
    engine: Engine,
    /// `None` once closed (the lock is released with it).
    backend: Option<Backend>,
    durability: Durability,
    last_flush: Timestamp,
    /// Journal bytes written since the last sync to disk.
    unflushed: bool,
    /// A journal write failed: the next persist writes a whole snapshot instead.
    needs_snapshot: bool,
    /// Uploads running that hold compaction off ([`Session::hold_compaction`]).
    compaction_holds: usize,
}

/// One open vault. `Send + Sync`: share it between threads; every method takes `&self`.
pub struct Session {
    inner: Mutex<Inner>,
    clock: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// Set by [`Session::cancel_sync`]; the running sync stops at its next step.
    cancel: AtomicBool,
    /// The background sync's signals, while one runs ([`Session::auto_sync`]).
    auto_sync: Mutex<AutoSyncSlot>,
    /// A shared vault opened with the role `read` ([`Session::set_role`]): writes are refused.
    read_only: AtomicBool,
    /// The credentials it signs with (given, or from the environment), for the vaults opened
    /// through it as a home ([`Session::credentials`]).
    credentials: Option<Credentials>,
    /// What its requests' `auth` failures add: why they went unsigned
    /// ([`crate::io::reach::withheld_note`]).
    auth_note: std::sync::OnceLock<String>,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.inner.try_lock() {
            Ok(inner) => f.debug_tuple("Session").field(&inner.engine).finish(),
            Err(_) => f.write_str("Session(<busy>)"),
        }
    }
}

fn closed() -> Error {
    Error::Config("this vault is closed".into())
}

impl Session {
    /// Opens a vault: parses the store URL, takes the lock on the state, restores the replica
    /// (or starts a new one and saves it at once), and finds credentials.
    ///
    /// # Errors
    /// `Config` for a bad store URL or device id, a state that belongs to another device, an
    /// `s3://` store without credentials, or state files that cannot be used; `Locked` when
    /// another writer holds the state; `WrongVault` or `Corrupt` for a state made with another
    /// key or damaged.
    pub fn open(options: SessionOptions<'_>) -> Result<Session> {
        let store = Store::parse(options.store)?;
        if options.compaction.grace_ms == 0 {
            // Every sync would find the replica out of touch and start it over.
            return Err(Error::Config(
                "the grace period must be longer than 0".into(),
            ));
        }
        // A device argument is an id when it reads as one, else the device's human name.
        let (device, label) = match options.device {
            Some(text) if text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) => {
                (Some(DeviceId::parse(text)?), None)
            }
            Some(text) if text.trim().is_empty() => {
                return Err(Error::Config("a device name must not be empty".into()))
            }
            Some(text) => (None, Some(text)),
            None => (None, None),
        };
        let (mut backend, saved) = match options.state {
            StateLocation::Memory | StateLocation::_Lifetime(_) => {
                (Backend::Memory(MemoryState::ephemeral()), None)
            }
            #[cfg(not(target_arch = "wasm32"))]
            StateLocation::File { path, wait } => {
                let (file, saved) = FileState::open(path, wait)?;
                (Backend::File(file), saved)
            }
            StateLocation::Host(saved) => {
                let restore = (!saved.snapshot.is_empty()).then(|| saved.clone());
                (Backend::Memory(MemoryState::queued(saved)), restore)
            }
            #[cfg(not(target_arch = "wasm32"))]
            StateLocation::Custom(store, saved) => {
                let restore = saved.filter(|s| !s.snapshot.is_empty());
                (Backend::Custom(store), restore)
            }
        };
        let entropy = match options.entropy_seed {
            Some(seed) => Entropy::from_seed(seed),
            None => Entropy::from_os()?,
        };
        let mut engine = match saved {
            Some(Saved { snapshot, journal }) => {
                let restored =
                    Engine::restore_owned(options.key, store.clone(), snapshot, &journal, entropy)?;
                drop(journal);
                let mut engine = restored.engine;
                // A device that started over is still the same device under its old id.
                if let Some(device) =
                    device.filter(|d| *d != engine.device() && !engine.was_device(*d))
                {
                    return Err(Error::Config(format!(
                        "the saved state belongs to device {}, not {device}",
                        engine.device()
                    )));
                }
                match restored.journal_keep {
                    Some(keep) if keep as u64 == backend.store().journal_len() => {}
                    Some(keep) => {
                        // The torn tail is cut for good before anything is appended over it:
                        // new entries written there and not yet synced could otherwise come
                        // back after a power loss as the torn bytes, or half of each.
                        let store = backend.store();
                        store.write(StateWrite::Truncate(keep as u64))?;
                        store.flush()?;
                    }
                    None => write_snapshot(&mut engine, backend.store())?,
                }
                engine
            }
            None => {
                let mut entropy = entropy;
                let device = device.unwrap_or_else(|| DeviceId::from_entropy(&mut entropy));
                let mut engine = Engine::new(options.key, store.clone(), device, entropy);
                if let Some(label) = label {
                    engine.set_label(label)?;
                }
                write_snapshot(&mut engine, backend.store())?;
                engine
            }
        };
        engine.set_open_mode(options.mode);
        engine.set_compaction(options.compaction);
        if let Some(label) = label.filter(|l| *l != engine.label()) {
            // A renamed device: the rename is journaled like any change.
            engine.set_label(label)?;
            if let Some(entry) = engine.poll_journal() {
                backend.store().write(StateWrite::Append(entry))?;
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        if let Backend::File(file) = &mut backend {
            file.set_holder(&format!(
                "device {} (process {})",
                engine.device(),
                std::process::id()
            ));
        }
        let credentials = if let Store::S3(_) = store {
            let credentials = match options.credentials {
                Some(credentials) => Some(credentials),
                None if !options.environment && options.own_transport => None,
                None if !options.environment => {
                    return Err(Error::Config(format!(
                        "no S3 credentials for {}: pass credentials",
                        store.display_name()
                    )))
                }
                None if options.own_transport => Credentials::from_env().ok(),
                None => Some(Credentials::from_env().map_err(|e| {
                    Error::Config(format!(
                        "{}: pass credentials, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                        e.to_string().trim_start_matches("configuration error: ")
                    ))
                })?),
            };
            if let Some(credentials) = &credentials {
                engine.set_credentials(credentials.clone());
            }
            credentials
        } else {
            None
        };
        let now = (options.clock)();
        Ok(Session {
            inner: Mutex::new(Inner {
                engine,
                backend: Some(backend),
                durability: options.durability,
                last_flush: now,
                unflushed: false,
                needs_snapshot: false,
                compaction_holds: 0,
            }),
            clock: options.clock,
            cancel: AtomicBool::new(false),
            auto_sync: Mutex::default(),
            read_only: AtomicBool::new(false),
            credentials,
            auth_note: std::sync::OnceLock::new(),
        })
    }

    /// Says why this vault's requests may go unsigned: its `auth` failures carry `note`.
    pub(crate) fn set_auth_note(&self, note: String) {
        let _ = self.auth_note.set(note);
    }

    /// `error`, with this vault's auth note when it is an `auth` failure of a request.
    pub(crate) fn noted(&self, error: Error) -> Error {
        match self.auth_note.get() {
            Some(note) => error.with_auth_note(note),
            None => error,
        }
    }

    /// The clock this session reads, for the vaults opened through it as a home.
    pub(crate) fn clock(&self) -> Arc<dyn Fn() -> Timestamp + Send + Sync> {
        self.clock.clone()
    }

    /// The S3 credentials this session signs with (given when it was opened, or found in the
    /// environment); `None` for a folder store or one whose app signs itself. A vault opened
    /// through this session as its home takes them when the app gives none of its own
    /// ([`crate::io::sharing`]).
    pub fn credentials(&self) -> Option<Credentials> {
        self.credentials.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the lock was held leaves the engine as consistent as between any two
        // steps: its state is persisted step by step, so go on with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Whether [`Session::cancel_sync`] was called since the last check (which clears it).
    pub(crate) fn take_cancel(&self) -> bool {
        self.cancel.swap(false, Ordering::SeqCst)
    }

    /// Clears a cancellation asked for before the operation that starts now.
    pub(crate) fn clear_cancel(&self) {
        self.cancel.store(false, Ordering::SeqCst);
    }

    /// Runs `f` on the replica, read-only (get, keys, device, unpushed, ...).
    ///
    /// # Errors
    /// `Config` when the vault is closed.
    pub fn read<T>(&self, f: impl FnOnce(&Engine) -> T) -> Result<T> {
        let inner = self.lock();
        inner.backend.as_ref().ok_or_else(closed)?;
        Ok(f(&inner.engine))
    }

    /// The value of `key`, or `None` when it is absent or deleted.
    ///
    /// # Errors
    /// `Config` when the vault is closed.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.read(|e| e.get(key).map(<[u8]>::to_vec))
    }

    /// Live keys starting with `prefix`, sorted.
    ///
    /// # Errors
    /// `Config` when the vault is closed.
    pub fn keys(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.read(|e| e.keys(prefix))
    }

    /// This replica's device id.
    ///
    /// # Errors
    /// `Config` when the vault is closed.
    pub fn device(&self) -> Result<DeviceId> {
        self.read(Engine::device)
    }

    /// Runs `f` on the replica to configure it (signer, retry policy). Record changes must go
    /// through [`Session::put`] and [`Session::delete`], which journal them.
    ///
    /// # Errors
    /// `Config` when the vault is closed.
    pub fn configure<T>(&self, f: impl FnOnce(&mut Engine) -> T) -> Result<T> {
        let mut inner = self.lock();
        inner.backend.as_ref().ok_or_else(closed)?;
        Ok(f(&mut inner.engine))
    }

    /// Runs `f` on the engine and saves the state it leaves (a change of the replica's own,
    /// such as a member statement, durable when this returns).
    ///
    /// # Errors
    /// `Config` when the vault is closed or the state cannot be written (the change is then
    /// kept in memory and saved by the next successful save).
    pub(crate) fn change<T>(&self, f: impl FnOnce(&mut Engine) -> T) -> Result<T> {
        let now = self.now();
        let mut inner = self.lock();
        inner.backend.as_ref().ok_or_else(closed)?;
        let out = f(&mut inner.engine);
        inner.persist(now, true)?;
        Ok(out)
    }

    /// Takes note of what `upload` stored of its packs in parts, and saves the state when that
    /// changed it: a process killed later leaves those parts to the next one's first upload.
    /// With `ended`, also of the chunks it stored, for the next upload of this process.
    ///
    /// # Errors
    /// `Config` when the vault is closed or the state cannot be written.
    pub(crate) fn note_upload(
        &self,
        upload: &mut crate::transfer::Upload,
        ended: bool,
    ) -> Result<()> {
        let now = self.now();
        let mut inner = self.lock();
        inner.backend.as_ref().ok_or_else(closed)?;
        let changed = match ended {
            true => inner.engine.end_upload(upload),
            false => inner.engine.note_upload(upload),
        };
        match changed {
            true => inner.persist(now, false),
            false => Ok(()),
        }
    }

    /// Every device of the vault known here (this one included), as their manifests describe
    /// them; a device is stale when it has not pushed for `stale_after_ms`.
    ///
    /// # Errors
    /// `Config` when the vault is closed.
    pub fn devices(&self, stale_after_ms: u64) -> Result<Vec<DeviceSummary>> {
        let now = self.now();
        self.read(|e| e.devices(now, stale_after_ms))
    }

    /// Lets the next sync push deletions past the mass-deletion guard.
    ///
    /// # Errors
    /// `Config` when the vault is closed.
    pub fn confirm_deletions(&self) -> Result<()> {
        let mut inner = self.lock();
        inner.backend.as_ref().ok_or_else(closed)?;
        inner.engine.confirm_deletions();
        Ok(())
    }

    /// Sets the mass-deletion guard's limit, in percent of the live keys (`None`: off).
    ///
    /// # Errors
    /// `Config` when the vault is closed or `percent` is above 100.
    pub fn set_mass_deletion_limit(&self, percent: Option<u8>) -> Result<()> {
        let mut inner = self.lock();
        inner.backend.as_ref().ok_or_else(closed)?;
        inner.engine.set_mass_deletion_limit(percent)
    }

    /// Says what this person may do in the vault (a shared vault, [`crate::home::SharedVault`]'s
    /// role): with [`Role::Read`], [`Session::put`], [`Session::delete`] and everything that
    /// writes records (files, imports, backups) fail with `Access`. This device's own check
    /// only: until manifests are signed, nothing in the bucket stops a member who holds the
    /// key from writing.
    pub fn set_role(&self, role: Role) {
        self.read_only.store(role == Role::Read, Ordering::SeqCst);
    }

    /// `Access` when this device may only read ([`Session::set_role`]).
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.read_only.load(Ordering::SeqCst) {
            return Err(Error::Access(
                "your role in this shared vault is read: you may not write".into(),
            ));
        }
        Ok(())
    }

    /// Sets `key` to `value`; durable against a process kill when it returns.
    ///
    /// # Errors
    /// `Config` when the vault is closed or the journal cannot be written (the write is then
    /// kept in memory and saved by the next successful save); `Access` with the role `read`.
    pub fn put(&self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Result<()> {
        self.check_writable()?;
        let now = self.now();
        let mut inner = self.lock();
        inner.backend.as_ref().ok_or_else(closed)?;
        inner.engine.put(key, value, now);
        let persisted = inner.persist(now, false);
        drop(inner);
        self.notify(Happening::LocalWrite);
        persisted
    }

    /// Writes several records at once (`None` deletes the key), in one journal entry: after a
    /// process kill, all of them are there or none.
    ///
    /// # Errors
    /// As [`Session::put`].
    pub(crate) fn write_records(&self, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        self.check_writable()?;
        let now = self.now();
        let mut inner = self.lock();
        inner.backend.as_ref().ok_or_else(closed)?;
        for (key, value) in records {
            match value {
                Some(value) => {
                    inner.engine.put(key, value, now);
                }
                None => {
                    inner.engine.delete(key, now);
                }
            }
        }
        let persisted = inner.persist(now, false);
        drop(inner);
        self.notify(Happening::LocalWrite);
        persisted
    }

    /// Holds journal compaction off until [`Session::release_compaction`]: records written
    /// meanwhile are appended to the journal, however long it grows (by about what the records
    /// written take), and the snapshot is rewritten at the first save after the last release.
    /// An upload of many files writes a record for each: compacting as the journal outgrew the
    /// snapshot rewrote the whole state several times during a first backup, the last time
    /// (16 MB on a tree of 15,644 files) while the packs' buffers were held too.
    pub(crate) fn hold_compaction(&self) {
        self.lock().compaction_holds += 1;
    }

    /// Ends one [`Session::hold_compaction`].
    pub(crate) fn release_compaction(&self) {
        let mut inner = self.lock();
        debug_assert!(inner.compaction_holds > 0, "a release without a hold");
        inner.compaction_holds = inner.compaction_holds.saturating_sub(1);
    }

    /// Marks `device` retired (see [`Engine::retire`]); said in this device's manifest at the
    /// next sync.
    ///
    /// # Errors
    /// `Config` for this device's own id or an unknown one; `Closed` after close.
    pub fn retire(&self, device: DeviceId) -> Result<()> {
        self.check_writable()?;
        let now = self.now();
        let mut inner = self.lock();
        inner.backend.as_ref().ok_or_else(closed)?;
        inner.engine.retire(device)?;
        inner.persist(now, false)
    }

    /// Deletes `key` (a tombstone that reaches every device); durable like [`Session::put`].
    ///
    /// # Errors
    /// As [`Session::put`].
    pub fn delete(&self, key: impl Into<Vec<u8>>) -> Result<()> {
        self.check_writable()?;
        let now = self.now();
        let mut inner = self.lock();
        inner.backend.as_ref().ok_or_else(closed)?;
        inner.engine.delete(key, now);
        let persisted = inner.persist(now, false);
        drop(inner);
        self.notify(Happening::LocalWrite);
        persisted
    }

    /// Makes everything durable now (journal synced to disk; snapshot rewritten if due).
    ///
    /// # Errors
    /// `Config` when closed or when the state cannot be written.
    pub fn save(&self) -> Result<()> {
        let now = self.now();
        self.lock().persist(now, true)
    }

    /// Saves, releases the lock and closes; later calls fail with `Config`. Closing twice is
    /// fine. A sync still running is abandoned (the next open resumes it).
    ///
    /// # Errors
    /// `Config` when the state cannot be written (the vault is closed all the same).
    pub fn close(&self) -> Result<()> {
        let now = self.now();
        let mut inner = self.lock();
        if inner.backend.is_none() {
            return Ok(());
        }
        inner.engine.cancel_sync();
        let saved = inner.persist(now, true);
        inner.backend = None;
        drop(inner);
        self.stop_auto_sync();
        saved
    }

    /// Writes a whole new snapshot now (starting a new journal) and returns its bytes: a
    /// complete copy of the state, for [`StateLocation::Host`] or a backup.
    ///
    /// # Errors
    /// `Config` when closed or when the state cannot be written.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let mut inner = self.lock();
        let Inner {
            engine, backend, ..
        } = &mut *inner;
        let store = backend.as_mut().ok_or_else(closed)?.store();
        let snapshot = engine.export_state();
        let journal = engine
            .journal_header()
            .expect("a snapshot was just exported");
        store.write(StateWrite::Replace {
            snapshot: snapshot.clone(),
            journal,
        })?;
        inner.unflushed = false;
        Ok(snapshot)
    }

    /// Whether [`Session::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().backend.is_none()
    }

    /// For state kept by the host ([`StateLocation::Host`]): the writes to apply, in order,
    /// since the last call. Empty for file and memory state.
    pub fn take_state_writes(&self) -> Vec<StateWrite> {
        match &mut self.lock().backend {
            Some(Backend::Memory(m)) => m.take_writes(),
            _ => Vec::new(),
        }
    }

    /// Pulls and pushes over `transport`, at most `concurrency` requests at once, calling
    /// `progress` as requests go out and come back. Safe to cancel: see the module docs.
    ///
    /// # Errors
    /// The error that stopped the sync (the partial report is in the engine's
    /// `last_report`); `Conflict` when a sync already runs; `Config` when closed or when the
    /// state cannot be written.
    pub async fn sync<T: Transport + ?Sized>(
        &self,
        transport: &T,
        concurrency: usize,
        progress: impl FnMut(Progress),
    ) -> Result<SyncReport> {
        self.sync_of(transport, SyncKind::Full, concurrency, progress)
            .await
    }

    /// [`Session::sync`] of the given kind: [`SyncKind::Poll`] first reads the vault's change
    /// hint, and stops there (one conditional GET) when no device published since this
    /// session's last poll.
    ///
    /// # Errors
    /// As [`Session::sync`].
    pub async fn sync_of<T: Transport + ?Sized>(
        &self,
        transport: &T,
        kind: SyncKind,
        concurrency: usize,
        progress: impl FnMut(Progress),
    ) -> Result<SyncReport> {
        self.cancel.store(false, Ordering::SeqCst);
        let mut steps = SessionSteps { session: self };
        match driver::run(&mut steps, transport, kind, concurrency, progress).await {
            Ok(mut report) => {
                report.errors = report.errors.into_iter().map(|e| self.noted(e)).collect();
                Ok(report)
            }
            Err(e) => Err(self.noted(e)),
        }
    }

    /// Stops the running sync or file transfer at its next step (when a request is answered
    /// or a backoff ends); it then fails with [`Error::Cancelled`]. Nothing is lost; the next
    /// sync resumes. A host that wants a call stopped at once runs it through a
    /// [`Cancel`](crate::cancel::Cancel) instead (Python's asyncio tasks and JS's
    /// `AbortSignal` do); this is for one that holds only the vault (Swift's and Kotlin's
    /// `cancelTransfer`) and for a callback that stops the call it is called from.
    pub fn cancel_sync(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Tells the background sync ([`Session::auto_sync`]) what happened: the network lost or
    /// back, the app in the background or the foreground, new credentials
    /// ([`Happening::Changed`]). Ignored when none runs. The session's own writes tell it
    /// themselves.
    pub fn notify(&self, happening: Happening) {
        self.auto_sync_slot().send(Signal::Happened(happening));
    }

    /// Stops the background sync, if one runs: its loop ends, a sync it was running is
    /// abandoned at once (safely: the next sync resumes it), and it sends no more requests.
    pub fn stop_auto_sync(&self) {
        self.auto_sync_slot().send(Signal::Stop);
    }

    fn auto_sync_slot(&self) -> MutexGuard<'_, AutoSyncSlot> {
        self.auto_sync.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a background sync: its signals, and the flag a stop raises.
    pub(crate) fn begin_auto_sync(&self) -> Result<(Signals, Arc<AtomicBool>)> {
        if self.is_closed() {
            return Err(closed());
        }
        self.auto_sync_slot().begin().ok_or(Error::AutoSyncRunning)
    }

    /// The report of the last finished sync.
    pub fn last_report(&self) -> Option<SyncReport> {
        self.lock().engine.last_report().cloned()
    }
}

impl Drop for Session {
    /// Closing on drop: the state is saved and its lock released (a kill skips this, and loses
    /// nothing either: every change is in the journal already).
    fn drop(&mut self) {
        let _ = self.close();
    }
}

struct SessionSteps<'a> {
    session: &'a Session,
}

impl Steps for SessionSteps<'_> {
    fn step<R>(&mut self, step: impl FnOnce(&mut Engine) -> R) -> Result<R> {
        if self.session.cancel.swap(false, Ordering::SeqCst) {
            return Err(Error::Cancelled);
        }
        let now = self.session.now();
        let mut inner = self.session.lock();
        inner.backend.as_ref().ok_or_else(closed)?;
        let out = step(&mut inner.engine);
        let durable = !inner.engine.is_syncing();
        inner.persist(now, durable)?;
        Ok(out)
    }

    fn make_durable(&mut self) -> Result<()> {
        let now = self.session.now();
        self.session.lock().persist(now, true)
    }

    fn now(&self) -> Timestamp {
        self.session.now()
    }

    fn abandon(&mut self) {
        let now = self.session.now();
        let mut inner = self.session.lock();
        if inner.engine.is_syncing() {
            inner.engine.cancel_sync();
        }
        if inner.backend.is_some() {
            // Best effort: a failure here is reported by the next save.
            let _ = inner.persist(now, true);
        }
    }
}

/// The machine's wall clock, for [`SessionOptions::clock`] (not on wasm32, where the host
/// passes `Date.now()`).
#[cfg(not(target_arch = "wasm32"))]
pub fn system_clock() -> Arc<dyn Fn() -> Timestamp + Send + Sync> {
    Arc::new(|| {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_millis() as u64)
    })
}

fn write_snapshot(engine: &mut Engine, store: &mut dyn StateStore) -> Result<()> {
    let snapshot = engine.export_state();
    let journal = engine
        .journal_header()
        .expect("a snapshot was just exported");
    store.write(StateWrite::Replace { snapshot, journal })
}

impl Inner {
    /// Writes what changed; compacts when due; syncs to disk when `durable` or when the flush
    /// interval has passed.
    fn persist(&mut self, now: Timestamp, durable: bool) -> Result<()> {
        let backend = self.backend.as_mut().ok_or_else(closed)?;
        let store = backend.store();
        let compact_at = store.snapshot_len().max(self.durability.compact_min_bytes);
        let compact = self.compaction_holds == 0 && store.journal_len() > compact_at;
        if self.needs_snapshot || compact {
            write_snapshot(&mut self.engine, store)?;
            self.needs_snapshot = false;
            self.unflushed = false;
            self.last_flush = now;
        } else if let Some(entry) = self.engine.poll_journal() {
            if let Err(e) = store.write(StateWrite::Append(entry)) {
                // The delta left the engine: only a whole snapshot can hold it now.
                self.needs_snapshot = true;
                return Err(e);
            }
            self.unflushed = true;
        }
        let interval_passed =
            now.0.saturating_sub(self.last_flush.0) >= self.durability.flush_interval_ms;
        if self.unflushed && (durable || interval_passed) {
            store.flush()?;
            self.unflushed = false;
            self.last_flush = now;
        }
        Ok(())
    }
}

/// What reaches a running loop from the rest of the session.
pub(crate) enum Signal {
    Happened(Happening),
    Stop,
}

/// The loop's end of the signal channel, registered in the session while it runs.
pub(crate) type Signals = mpsc::UnboundedReceiver<Signal>;

/// The sending end kept by the session: signals for a running loop, and the flag its stop
/// raises at once (the loop then tells its listener nothing more, whatever it was doing).
#[derive(Default)]
struct AutoSyncSlot(Option<(mpsc::UnboundedSender<Signal>, Arc<AtomicBool>)>);

impl AutoSyncSlot {
    /// Registers a new loop; `None` when one runs already.
    fn begin(&mut self) -> Option<(Signals, Arc<AtomicBool>)> {
        if self.0.as_ref().is_some_and(|(tx, _)| !tx.is_closed()) {
            return None;
        }
        let (tx, rx) = mpsc::unbounded();
        let stopped = Arc::new(AtomicBool::new(false));
        self.0 = Some((tx, stopped.clone()));
        Some((rx, stopped))
    }

    /// Passes `signal` to the running loop, if any.
    fn send(&self, signal: Signal) {
        if let Some((tx, stopped)) = &self.0 {
            if matches!(signal, Signal::Stop) {
                stopped.store(true, Ordering::SeqCst);
            }
            let _ = tx.unbounded_send(signal);
        }
    }
}
