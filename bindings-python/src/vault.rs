//! The exported classes: thin wrappers that convert, lock, release the GIL and map errors.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bucketsync::driver::{self, Progress as CoreProgress};
use bucketsync::files::{ReadSource, Sink, Source, WriteSink};
use bucketsync::grant::Role;
use bucketsync::http_options::HttpOptions;
use bucketsync::io::reach::{Given, Nothing, Reach};
use bucketsync::io::shared_vaults::{OpenedShared, SharedOptions};
use bucketsync::io::sharing;
use bucketsync::session::{self, Durability, Session, SessionOptions, StateLocation};
use bucketsync::settings::{stale_after_ms, VaultDays};
use bucketsync::{CompactionPolicy, OpenMode, RequestKind};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::auto_sync::AutoSync;
use crate::backup::{BackupReport, FolderReport, RestoreReport, VerifyReport};
use crate::convert::{Bytes, Progress};
use crate::errors::{conflict, exception, to_py, to_py_with_cause};
use crate::files::{
    remaining_len, Checked, FileInfo, FileProgress, FileReport, PathBatch, PutFilesReport,
    PyCancel, PyReader, PyWriter, Stop, Target,
};
use crate::records::{self, ExportReport, ImportReport};
use crate::sharing::{Identity, Member, SharedVault};
use crate::transport::{AnyTransport, VaultReach};
use bucketsync::auto_sync::AutoSyncSeconds;
use bucketsync::cancel::Cancel;

/// The secret every device of a vault shares.
#[pyclass(module = "bucketsync", frozen)]
pub struct VaultKey(pub bucketsync::VaultKey);

#[pymethods]
impl VaultKey {
    /// A new random key.
    #[staticmethod]
    fn generate() -> PyResult<Self> {
        bucketsync::VaultKey::generate()
            .map(VaultKey)
            .map_err(to_py)
    }

    /// Reads a recovery code (case, spaces and dashes do not matter). A mistyped code raises
    /// ConfigError instead of giving a wrong key.
    #[staticmethod]
    fn from_recovery_code(code: &str) -> PyResult<Self> {
        bucketsync::VaultKey::from_recovery_code(code)
            .map(VaultKey)
            .map_err(to_py)
    }

    /// The key as a human-typable code with a checksum.
    fn recovery_code(&self) -> String {
        self.0.recovery_code()
    }

    /// Wraps the key with a passphrase (Argon2id); store the bytes anywhere.
    fn wrap_with_passphrase(&self, py: Python<'_>, passphrase: &str) -> PyResult<Py<PyBytes>> {
        let wrapped = py
            .allow_threads(|| self.0.wrap_with_passphrase(passphrase))
            .map_err(to_py)?;
        Ok(PyBytes::new(py, &wrapped).unbind())
    }

    /// Unwraps bytes made by `wrap_with_passphrase`.
    #[staticmethod]
    fn unwrap_with_passphrase(
        py: Python<'_>,
        wrapped: Vec<u8>,
        passphrase: &str,
    ) -> PyResult<Self> {
        py.allow_threads(|| bucketsync::VaultKey::unwrap_with_passphrase(&wrapped, passphrase))
            .map(VaultKey)
            .map_err(to_py)
    }

    /// The vault's public id (its folder name in the bucket).
    #[getter]
    fn vault_id(&self) -> String {
        self.0.vault_id().to_string()
    }

    fn __repr__(&self) -> String {
        format!("VaultKey(vault_id='{}')", self.0.vault_id())
    }
}

/// S3 credentials. Held in memory only; never written anywhere, never shown.
#[pyclass(module = "bucketsync", frozen)]
pub struct Credentials(pub bucketsync::Credentials);

#[pymethods]
impl Credentials {
    #[new]
    #[pyo3(signature = (access_key_id, secret_access_key, session_token = None))]
    fn py_new(
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    ) -> PyResult<Self> {
        bucketsync::Credentials::new(access_key_id, secret_access_key, session_token)
            .map(Credentials)
            .map_err(to_py)
    }

    /// From AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
    #[staticmethod]
    fn from_env() -> PyResult<Self> {
        bucketsync::Credentials::from_env()
            .map(Credentials)
            .map_err(to_py)
    }

    #[getter]
    fn access_key_id(&self) -> String {
        self.0.access_key_id().to_owned()
    }

    fn __repr__(&self) -> String {
        format!(
            "Credentials(access_key_id='{}', secret_access_key=<redacted>)",
            self.0.access_key_id()
        )
    }
}

/// What one sync did.
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct SyncReport {
    /// Our records written to the store.
    pub pushed: u64,
    /// Records received from other devices.
    pub pulled: u64,
    /// Requests sent.
    pub requests: u64,
    /// Requests by kind: list, get-manifest, get-segment, put-segment, put-manifest,
    /// get-checkpoint, put-checkpoint, list-vaults, delete-checkpoint, delete-segment,
    /// check-create (a segment created a second time: whether the store refuses it),
    /// list-packs, delete-pack (pack collection).
    pub requests_by_kind: Py<PyDict>,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Requests sent again after a passing failure.
    pub retries: u64,
    /// Errors met (not raised): bucketsync.Error instances, each with its `.category`.
    pub errors: Vec<PyObject>,
    /// Keys (bytes) whose value or deletion changed here because of this sync, sorted.
    pub changed: Vec<Py<PyBytes>>,
    /// Keys (bytes) where a write made concurrently with an unpushed write of this device
    /// arrived: one of them lost; vault.history(key) has both.
    pub conflicts: Vec<Py<PyBytes>>,
    /// Whether this sync wrote a checkpoint of the vault (compaction).
    pub compacted: bool,
    /// Tombstones that checkpoint left out (older than the grace period, merged everywhere).
    pub collected: u64,
    /// This device's segments deleted because a checkpoint covers them.
    pub segments_deleted: u64,
    /// This device's packs deleted because no file references them any more.
    pub packs_deleted: u64,
    /// This device's mostly-garbage packs whose live chunks were moved into a new pack.
    pub packs_repacked: u64,
    /// A poll (the background sync's) found the vault's change hint unmoved: nothing was
    /// listed or fetched.
    pub hint_unchanged: bool,
    /// The old device id (str) when this device started over under a new id (it was out of
    /// touch longer than the grace period, or another device retired it), else None.
    pub started_over: Option<String>,
    /// Keys (bytes) whose unpushed writes were applied again with fresh stamps when the
    /// device started over.
    pub restamped: Vec<Py<PyBytes>>,
}

#[pymethods]
impl SyncReport {
    fn __repr__(&self, py: Python<'_>) -> String {
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|e| {
                let e = e.bind(py);
                let category = e
                    .getattr("category")
                    .map(|c| c.to_string())
                    .unwrap_or_default();
                format!("{category}: {e}")
            })
            .collect();
        format!(
            "SyncReport(pushed={}, pulled={}, changed={}, requests={}, bytes_sent={}, bytes_received={}, retries={}, compacted={}, started_over={:?}, errors={errors:?})",
            self.pushed, self.pulled, self.changed.len(), self.requests, self.bytes_sent, self.bytes_received, self.retries,
            if self.compacted { "True" } else { "False" }, self.started_over
        )
    }
}

impl SyncReport {
    fn new(py: Python<'_>, report: &bucketsync::SyncReport) -> PyResult<Self> {
        let by_kind = PyDict::new(py);
        for kind in RequestKind::ALL {
            by_kind.set_item(kind.as_str(), report.requests_of(kind))?;
        }
        Ok(SyncReport {
            pushed: report.pushed,
            pulled: report.pulled,
            requests: report.requests(),
            requests_by_kind: by_kind.unbind(),
            bytes_sent: report.bytes_sent,
            bytes_received: report.bytes_received,
            retries: report.retries,
            changed: report
                .changed
                .iter()
                .map(|k| PyBytes::new(py, k).unbind())
                .collect(),
            conflicts: report
                .conflicts
                .iter()
                .map(|k| PyBytes::new(py, k).unbind())
                .collect(),
            compacted: report.compacted,
            collected: report.collected,
            segments_deleted: report.segments_deleted,
            packs_deleted: report.packs_deleted,
            packs_repacked: report.packs_repacked,
            hint_unchanged: report.hint_unchanged,
            started_over: report.started_over.map(|d| d.to_string()),
            restamped: report
                .restamped
                .iter()
                .map(|k| PyBytes::new(py, k).unbind())
                .collect(),
            errors: report
                .errors
                .iter()
                .map(|e| exception(py, e, None))
                .collect::<PyResult<_>>()?,
        })
    }
}

/// One device's replica of a vault. Open it with `Vault.open(...)`, best as a context manager.
///
/// Every `put` and `delete` is in the state's journal when it returns (a killed process loses
/// nothing); `sync()`, `save()` and `close()` also sync it to disk. The state file is locked
/// while the vault is open: a second opener gets LockedError. A sync interrupted by Ctrl-C
/// (KeyboardInterrupt) or an exception in a callback leaves the vault usable, and the next
/// sync resumes it.
#[pyclass(module = "bucketsync", frozen)]
pub struct Vault {
    pub(crate) session: Arc<Session>,
    pub(crate) transport: Arc<AnyTransport>,
    /// The background sync's thread, while one runs.
    auto_sync: AutoSync,
    /// Always `Some` until the vault is dropped (see its `Drop`).
    runtime: Option<tokio::runtime::Runtime>,
    /// A sync runs on this vault's runtime (a callback calling `sync` again must get
    /// ConflictError, not a nested runtime).
    syncing: AtomicBool,
    /// The home this vault was opened through (create_shared, open_shared or accept), kept
    /// open for `share`; None for a vault opened with Vault.open or Vault.create.
    pub(crate) home: Option<Arc<Session>>,
    /// How it reaches its store, for the vaults opened through it as a home (the core's rule
    /// decides what they take of it).
    reach: VaultReach,
}

/// What opening a vault takes: `Vault.open`'s arguments, converted, and the home a shared
/// vault is opened through (sharing.rs).
pub(crate) struct Opening<'a> {
    pub store: &'a str,
    pub key: &'a bucketsync::VaultKey,
    pub device: Option<&'a str>,
    pub state: Option<PathBuf>,
    pub credentials: Option<bucketsync::Credentials>,
    /// The transport; None: the built-in one for the store.
    pub transport: Option<AnyTransport>,
    pub wait: bool,
    pub flush_interval: Option<f64>,
    pub mode: OpenMode,
    pub grace_days: Option<f64>,
    pub max_clock_skew_days: Option<f64>,
    pub max_future_days: Option<f64>,
    /// The built-in HTTP transport's deadlines.
    pub http: HttpOptions,
}

/// Clears the syncing flag when the sync ends, however it ends.
struct Syncing<'a>(&'a AtomicBool);

impl Drop for Vault {
    fn drop(&mut self) {
        // Let go inside another runtime (a callback during another vault's sync), a runtime
        // cannot wait for its tasks: tokio panics. It is shut down without waiting then.
        if tokio::runtime::Handle::try_current().is_ok() {
            if let Some(runtime) = self.runtime.take() {
                runtime.shutdown_background();
            }
        }
    }
}

impl Drop for Syncing<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

#[pymethods]
impl Vault {
    /// Opens (joins) an existing vault.
    ///
    /// store: "s3://bucket/prefix?region=…&endpoint=…&path_style=true" or "file:///abs/dir".
    /// key: the VaultKey. device: a name for this device ("Anna's laptop", kept as its label;
    /// its id is random and kept in the state) or a stable id (32 hex digits); omitted, the
    /// state's device.
    /// state: path of the local state file (created when missing, with `<state>.journal` and
    /// `<state>.lock` beside it; without one the replica lives in memory only). credentials:
    /// for s3:// stores; the AWS_* environment otherwise. transport: a callable taking a
    /// bucketsync.Request and returning a bucketsync.Response, to execute requests with your
    /// own HTTP stack (requests go out signed when credentials are available, unsigned
    /// otherwise). wait: when another process holds the state, wait for it instead of raising
    /// LockedError. flush_interval: seconds between syncs of the journal to disk while writing
    /// (a power loss costs at most this much; a killed process loses nothing). mode: "join"
    /// (the default: a new device's first sync raises NotFoundError when the store holds no
    /// vault for this key, so a wrong key or prefix never starts an empty vault), "create"
    /// (see Vault.create) or "join-or-create". grace_days: tombstones older than this (plus
    /// twice max_clock_skew_days) that every active device has merged are dropped from
    /// checkpoints, and a device out of touch longer than this starts over when it returns;
    /// use the same value on every device of a vault. max_clock_skew_days: how far a
    /// device's clock may be off the true time (two clocks up to twice this apart; further is
    /// reported as ClockError). max_future_days: what another device stamped further ahead of
    /// this clock is held (reported as ClockError in SyncReport.errors) until the clocks agree.
    /// stall_timeout: seconds a request of the built-in HTTP transport may go with no byte
    /// moving (default 30); request_timeout: seconds one request may take in all (default
    /// 900). Either raises TimeoutError, and the next sync or attempt goes on.
    #[staticmethod]
    #[pyo3(signature = (store, key, device = None, state = None, credentials = None, transport = None, wait = false, flush_interval = None, mode = "join", grace_days = None, max_clock_skew_days = None, max_future_days = None, stall_timeout = None, request_timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        store: &str,
        key: &VaultKey,
        device: Option<&str>,
        state: Option<PathBuf>,
        credentials: Option<&Credentials>,
        transport: Option<PyObject>,
        wait: bool,
        flush_interval: Option<f64>,
        mode: &str,
        grace_days: Option<f64>,
        max_clock_skew_days: Option<f64>,
        max_future_days: Option<f64>,
        stall_timeout: Option<f64>,
        request_timeout: Option<f64>,
    ) -> PyResult<Self> {
        let mode = OpenMode::parse(mode).map_err(to_py)?;
        let http = HttpOptions::from_seconds(
            stall_timeout,
            request_timeout,
            ["stall_timeout", "request_timeout"],
        )
        .map_err(to_py)?;
        let transport = transport.map(|t| AnyTransport::python(py, t)).transpose()?;
        Self::open_as(
            py,
            Opening {
                store,
                key: &key.0,
                device,
                state,
                credentials: credentials.map(|c| c.0.clone()),
                transport,
                wait,
                flush_interval,
                mode,
                grace_days,
                max_clock_skew_days,
                max_future_days,
                http,
            },
        )
    }

    /// Starts a new vault: like open, but its first sync raises ConflictError when the store
    /// holds a vault for this key already, and publishes this device even with no records.
    #[staticmethod]
    #[pyo3(signature = (store, key, device = None, state = None, credentials = None, transport = None, wait = false, flush_interval = None, grace_days = None, max_clock_skew_days = None, max_future_days = None, stall_timeout = None, request_timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        store: &str,
        key: &VaultKey,
        device: Option<&str>,
        state: Option<PathBuf>,
        credentials: Option<&Credentials>,
        transport: Option<PyObject>,
        wait: bool,
        flush_interval: Option<f64>,
        grace_days: Option<f64>,
        max_clock_skew_days: Option<f64>,
        max_future_days: Option<f64>,
        stall_timeout: Option<f64>,
        request_timeout: Option<f64>,
    ) -> PyResult<Self> {
        Self::open(
            py,
            store,
            key,
            device,
            state,
            credentials,
            transport,
            wait,
            flush_interval,
            "create",
            grace_days,
            max_clock_skew_days,
            max_future_days,
            stall_timeout,
            request_timeout,
        )
    }

    /// The vault's devices known here (this one included), as a list of dicts: id, label,
    /// last_push (seconds since the epoch, or None), segments, this_device, stale (silent
    /// longer than stale_after_days), retired (see retire).
    #[pyo3(signature = (stale_after_days = None))]
    fn devices(&self, py: Python<'_>, stale_after_days: Option<f64>) -> PyResult<Vec<Py<PyDict>>> {
        let stale_after_ms = stale_after_ms(stale_after_days, "stale_after_days").map_err(to_py)?;
        let devices = self.session.devices(stale_after_ms).map_err(to_py)?;
        devices
            .into_iter()
            .map(|d| {
                let dict = PyDict::new(py);
                dict.set_item("id", d.id.to_string())?;
                dict.set_item("label", d.label)?;
                dict.set_item("last_push", d.last_push_ms.map(|ms| ms as f64 / 1000.0))?;
                dict.set_item("segments", d.segments)?;
                dict.set_item("this_device", d.this_device)?;
                dict.set_item("stale", d.stale)?;
                dict.set_item("retired", d.retired)?;
                Ok(dict.unbind())
            })
            .collect()
    }

    /// Marks the device `device_id` (a str from devices()) retired, from any other device:
    /// tombstones stop waiting for it, and if it ever syncs again it starts over under a new id
    /// (its unpushed writes re-applied). Said in this device's manifest at the next sync.
    /// Raises ConfigError for this device's own id or an id not known here.
    fn retire(&self, device_id: &str) -> PyResult<()> {
        let id = bucketsync::DeviceId::parse(device_id).map_err(to_py)?;
        self.session.retire(id).map_err(to_py)
    }

    /// Lets the next sync push deletions past the mass-deletion guard (a push deleting more
    /// than half of the live keys, and at least 10, otherwise raises ConflictError and pushes
    /// nothing).
    fn confirm_deletions(&self) -> PyResult<()> {
        self.session.confirm_deletions().map_err(to_py)
    }

    /// Sets the mass-deletion guard's limit in percent of the live keys (None turns it off).
    fn set_mass_deletion_limit(&self, percent: Option<u8>) -> PyResult<()> {
        self.session.set_mass_deletion_limit(percent).map_err(to_py)
    }

    /// The versions of key known here, newest first: the current one, then earlier ones
    /// (overwritten, or concurrent writes that lost), as dicts: value (bytes, None for a
    /// deletion), device (id), time (seconds since the epoch, by the writer's clock).
    fn history(&self, py: Python<'_>, key: Bytes) -> PyResult<Vec<Py<PyDict>>> {
        let versions = self.session.read(|e| e.history(&key.0)).map_err(to_py)?;
        versions
            .into_iter()
            .map(|v| {
                let dict = PyDict::new(py);
                dict.set_item("value", v.value.map(|b| PyBytes::new(py, &b).unbind()))?;
                dict.set_item("device", v.stamp.device.to_string())?;
                dict.set_item("time", v.stamp.hlc.wall_ms as f64 / 1000.0)?;
                Ok(dict.unbind())
            })
            .collect()
    }

    /// This device's label ("" when it has none).
    #[getter]
    fn label(&self) -> PyResult<String> {
        self.session.read(|e| e.label().to_owned()).map_err(to_py)
    }

    /// Sets key to value (str or bytes). In the journal when it returns.
    fn put(&self, key: Bytes, value: Bytes) -> PyResult<()> {
        self.session.put(key.0, value.0).map_err(to_py)
    }

    /// The value of key as bytes, or None when absent or deleted.
    fn get(&self, py: Python<'_>, key: Bytes) -> PyResult<Option<Py<PyBytes>>> {
        self.session
            .read(|e| e.get(&key.0).map(|v| PyBytes::new(py, v).unbind()))
            .map_err(to_py)
    }

    /// Deletes key (a tombstone that reaches every device).
    fn delete(&self, key: Bytes) -> PyResult<()> {
        self.session.delete(key.0).map_err(to_py)
    }

    /// Live keys starting with prefix, sorted, as bytes.
    #[pyo3(signature = (prefix = Bytes(Vec::new())))]
    fn keys(&self, py: Python<'_>, prefix: Bytes) -> PyResult<Vec<Py<PyBytes>>> {
        self.session
            .read(|e| {
                e.keys(&prefix.0)
                    .iter()
                    .map(|k| PyBytes::new(py, k).unbind())
                    .collect()
            })
            .map_err(to_py)
    }

    /// Pulls what other devices wrote and pushes ours. Returns a SyncReport; raises the
    /// bucketsync.Error of the failure that stopped it (the state is saved either way).
    /// progress, if given, is called with a Progress as requests go out and come back; if it
    /// raises, the sync stops and the exception propagates. Ctrl-C stops a sync the same way.
    #[pyo3(signature = (progress = None))]
    fn sync(&self, py: Python<'_>, progress: Option<PyObject>) -> PyResult<SyncReport> {
        self.sync_until(py, progress, None)
    }

    /// `await vault.sync_async(progress=None)`: sync() for asyncio apps. The sync runs on a
    /// worker thread (it releases the GIL), so the event loop goes on. Cancelling the task
    /// that awaits it stops the sync safely (as Ctrl-C does): the awaiting task is cancelled
    /// once the sync has stopped, and the next sync resumes where this one stopped.
    #[pyo3(signature = (progress = None))]
    fn sync_async<'py>(
        slf: &Bound<'py, Self>,
        progress: Option<PyObject>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        py.import("bucketsync._aio")?
            .getattr("sync_async")?
            .call1((slf, progress))
    }

    /// sync() that also stops when `cancel` (a `_Cancel`) is set: the
    /// worker side of sync_async.
    fn _sync_until(
        &self,
        py: Python<'_>,
        progress: Option<PyObject>,
        cancel: PyRef<'_, PyCancel>,
    ) -> PyResult<SyncReport> {
        self.sync_until(py, progress, Some(cancel.0.clone()))
    }

    /// Starts syncing in the background, on a thread of its own, until stop_auto_sync() or
    /// close(): every `interval` seconds (a poll that costs one conditional GET while nothing
    /// changed; a full sync at least every `full_sync_interval`), soon after local writes
    /// (`debounce` seconds after the last of a burst), again after a backoff on errors that
    /// may pass (network, timeout, throttling), and not again after auth or config errors
    /// until `notify("changed")`; `background_interval` while `notify("background")` holds.
    /// Omitted timings take the core's defaults: 30, 1, 600 and 300 seconds. on_event, if given, is called with each Event on the background thread; what it raises
    /// is reported as unraisable and breaks nothing. Raises ConflictError when a background
    /// sync already runs, ConfigError for a closed vault or a bad interval.
    #[pyo3(signature = (interval = None, on_event = None, debounce = None, full_sync_interval = None, background_interval = None))]
    fn start_auto_sync(
        &self,
        py: Python<'_>,
        interval: Option<f64>,
        on_event: Option<PyObject>,
        debounce: Option<f64>,
        full_sync_interval: Option<f64>,
        background_interval: Option<f64>,
    ) -> PyResult<()> {
        let seconds =
            AutoSyncSeconds::given(interval, debounce, full_sync_interval, background_interval);
        self.auto_sync
            .start(py, &self.session, &self.transport, seconds, on_event)
    }

    /// Stops the background sync: a sync it was running is abandoned at once (safely: the
    /// next sync resumes it), and no request goes out after this returns. Does nothing when
    /// none runs.
    fn stop_auto_sync(&self, py: Python<'_>) {
        self.auto_sync.stop(py, &self.session)
    }

    /// Whether a background sync runs.
    #[getter]
    fn auto_syncing(&self) -> bool {
        self.auto_sync.running()
    }

    /// Tells the background sync what the app knows and it cannot see: "network-lost",
    /// "network-back", "background", "foreground", or "changed" (new credentials or store:
    /// try again at once, even after an auth error). Ignored when none runs.
    fn notify(&self, what: &str) -> PyResult<()> {
        self.session
            .notify(bucketsync::Happening::parse(what).map_err(to_py)?);
        Ok(())
    }

    /// `async for event in vault.events():` the background sync's events as an async
    /// iterator, for asyncio apps (start_auto_sync starts the sync itself). Each iterator
    /// hears every event from when it starts; leaving the loop stops it listening.
    fn events<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py()
            .import("bucketsync._aio")?
            .getattr("events")?
            .call1((slf,))
    }

    /// Adds a listener of the background sync's events (for events()); returns its id.
    fn _add_listener(&self, callable: PyObject) -> u64 {
        self.auto_sync.add_listener(callable)
    }

    /// Removes a listener added by _add_listener.
    fn _remove_listener(&self, id: u64) {
        self.auto_sync.remove_listener(id)
    }

    /// Stores the bytes of path_or_file under key as a file and returns a FileReport.
    ///
    /// path_or_file: a path (str or os.PathLike) or a binary file object with read() (read
    /// from its current position to its end). The file is cut into chunks by content; chunks
    /// the vault already holds are not sent again, the rest go up in packs of about
    /// pack_size bytes (None: 16 MiB). Then key's record is written (in the journal, pushed
    /// by the next sync); a transfer that fails or is stopped leaves the key as it was.
    /// progress, if given, is called with a FileProgress as bytes are read and requests
    /// answered. An exception from progress or from the file object, or Ctrl-C, stops the
    /// transfer and propagates (the key stays as it was unless the transfer had finished).
    /// The GIL is released while the transfer runs; it may run while another thread syncs,
    /// but not be started from a progress callback (ConflictError).
    #[pyo3(signature = (key, path_or_file, progress = None, pack_size = None))]
    fn put_file(
        &self,
        py: Python<'_>,
        key: Bytes,
        path_or_file: &Bound<'_, PyAny>,
        progress: Option<PyObject>,
        pack_size: Option<usize>,
    ) -> PyResult<FileReport> {
        self.put_file_until(py, key, path_or_file, progress, pack_size, None)
    }

    /// Stores many files in one go and returns a PutFilesReport. files: an iterable of
    /// (key, path) pairs (path a str or os.PathLike). Small files share packs, so a folder
    /// of them costs a few requests rather than one or more per file; each file's record is
    /// written (in the journal, pushed by the next sync) once every pack holding its bytes is
    /// stored. Every path is checked before anything is sent: one that is missing or not a
    /// regular file raises ConfigError (as on every platform) and nothing is stored.
    /// A file that cannot be read later, or changes length while read, is left out (in the
    /// report's failed, its key as it was) and the rest go on. A key given twice stores the
    /// file given later (if that one fails, the earlier may be stored already and stays: the
    /// key can then be in both stored and failed). progress, if given, is called with the key (bytes) and a
    /// FileProgress of the file being read. An exception from progress, or Ctrl-C, stops the
    /// batch and propagates (files stored before stay stored), as does a request error that
    /// stops the upload. The GIL is released while it runs.
    #[pyo3(signature = (files, progress = None, pack_size = None))]
    fn put_files(
        &self,
        py: Python<'_>,
        files: &Bound<'_, PyAny>,
        progress: Option<PyObject>,
        pack_size: Option<usize>,
    ) -> PyResult<PutFilesReport> {
        let mut list = Vec::new();
        for item in files.try_iter()? {
            let (key, path): (Bytes, PathBuf) = item?.extract().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(
                    "put_files takes an iterable of (key, path) pairs",
                )
            })?;
            list.push((key.0, path));
        }
        bucketsync::files::check_paths(list.iter().map(|(_, path)| path.as_path()))
            .map_err(to_py)?;
        let stop = Stop::default();
        let mut batch = PathBatch {
            files: list.into_iter(),
            stop: &stop,
            progress: progress.as_ref(),
            session: &self.session,
            stored: Vec::new(),
            failed: Vec::new(),
        };
        let totals = self.run(py, &stop, || {
            self.session.put_files(
                &mut batch,
                &*self.transport,
                pack_size,
                driver::DEFAULT_CONCURRENCY,
            )
        })?;
        let stored = PyDict::new(py);
        for (key, report) in batch.stored {
            stored.set_item(PyBytes::new(py, &key), FileReport::from(report))?;
        }
        let failed = PyDict::new(py);
        for (key, error) in batch.failed {
            failed.set_item(PyBytes::new(py, &key), exception(py, &error, None)?)?;
        }
        Ok(PutFilesReport {
            stored: stored.into_any().unbind(),
            failed: failed.into_any().unbind(),
            chunks_uploaded: totals.chunks_uploaded,
            chunks_reused: totals.chunks_reused,
            packs: totals.packs,
            bytes_sent: totals.bytes_sent,
            requests: totals.requests,
        })
    }

    /// Reads the file stored under key into path_or_file: a path (written to a partial file
    /// beside it and renamed into place once the whole file is read and checked, so a failed
    /// read leaves nothing at the path; a read interrupted by a network failure, a cancel,
    /// Ctrl-C or a crash leaves the partial file, and the next get_file of the same file to
    /// the same path resumes from its last whole chunk) or a writable binary file object
    /// (which, after a failed read, holds a prefix of the file). Raises KeyError when key is absent or
    /// deleted, ConfigError when it holds a record that is not a file, CorruptError when the
    /// file's bytes fail their checks. progress, Ctrl-C and exceptions as in put_file.
    #[pyo3(signature = (key, path_or_file, progress = None))]
    fn get_file(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        path_or_file: &Bound<'_, PyAny>,
        progress: Option<PyObject>,
    ) -> PyResult<()> {
        self.get_file_until(py, key, path_or_file, progress, None)
    }

    /// What the file under key is (a FileInfo: size, chunks, packs, content_hash), without
    /// fetching it; None when key is absent or deleted. ConfigError when it holds a record
    /// that is not a file.
    fn file_info(&self, key: Bytes) -> PyResult<Option<FileInfo>> {
        let info = self
            .session
            .read(|e| e.file_info(&key.0))
            .and_then(|info| info)
            .map_err(to_py)?;
        Ok(info.map(FileInfo::from))
    }

    /// Backs the folder up into the vault as the backup `name` (default: the folder's name;
    /// its records are under "backup/<name>/") and returns a BackupReport. One way: the
    /// folder is the source. New and changed files are stored (only chunks the vault lacks are
    /// sent); a file whose size, modification time and permissions match the backup costs no
    /// request. Modification times, permissions, symbolic links (as links) and empty folders
    /// are kept. exclude: glob patterns of paths to leave out ("*.tmp", "build/**");
    /// include_hidden: back up names starting with "." too; dry_run: change nothing, report
    /// what would be done; delete: delete from the backup what is gone from the folder (never
    /// below a folder that could not be read). A path that cannot be read is in the report's
    /// errors. The records are journaled: sync() pushes them. progress(path, FileProgress), if
    /// given, is called as each file is stored; Ctrl-C or an exception from it stops the
    /// backup (what was stored stays, and the next backup skips it).
    #[pyo3(signature = (folder, name = None, exclude = Vec::new(), include_hidden = false, dry_run = false, delete = false, progress = None))]
    #[allow(clippy::too_many_arguments)]
    fn backup(
        &self,
        py: Python<'_>,
        folder: PathBuf,
        name: Option<String>,
        exclude: Vec<String>,
        include_hidden: bool,
        dry_run: bool,
        delete: bool,
        progress: Option<PyObject>,
    ) -> PyResult<BackupReport> {
        let name = match name {
            Some(name) => name,
            None => bucketsync::backup::default_name(&folder).map_err(to_py)?,
        };
        let options = bucketsync::backup::BackupOptions {
            exclude,
            include_hidden,
            dry_run,
            delete,
        };
        let stop = Stop::default();
        let report = self.run(py, &stop, || {
            self.session.backup(
                &folder,
                &name,
                &options,
                &*self.transport,
                driver::DEFAULT_CONCURRENCY,
                path_progress(&self.session, progress.as_ref(), &stop),
            )
        })?;
        BackupReport::new(py, name, &report)
    }

    /// Restores the backup `name` (default: the vault's only backup) into the folder `to`
    /// (made if missing) and returns a RestoreReport. Nothing is written outside `to`: an
    /// entry whose path climbs out, is absolute, holds a NUL, passes through a link on disk or
    /// lies below a link of the backup is refused (in the report's errors, naming it); links
    /// come back as they were, wherever they point, and nothing is written through one. A local
    /// file newer than the backup is kept (in kept_newer) unless force. Each file is renamed
    /// into place once whole; files up to 32 MiB are left to the system to write to the disk,
    /// as tar and restic do (after a power loss right after a restore, restore again into an
    /// empty folder: a rerun keeps files of the right size and time). at: restore the tree as
    /// it was at that time (a datetime, or seconds since the epoch), as far as the history
    /// kept reaches. dry_run: change nothing. progress(path, FileProgress) as in backup.
    /// only: glob patterns; restore only what they match (a path, a name, "*.jpg"; a folder
    /// brings what lies below it). synced_folder: name is a folder synced both ways
    /// (sync_folder), not a backup: with at, a file deleted or overwritten there comes back.
    #[pyo3(signature = (to, name = None, at = None, dry_run = false, force = false, progress = None, only = Vec::new(), synced_folder = false))]
    #[allow(clippy::too_many_arguments)]
    fn restore(
        &self,
        py: Python<'_>,
        to: PathBuf,
        name: Option<String>,
        at: Option<&Bound<'_, PyAny>>,
        dry_run: bool,
        force: bool,
        progress: Option<PyObject>,
        only: Vec<String>,
        synced_folder: bool,
    ) -> PyResult<RestoreReport> {
        let at_ms = match at {
            None => None,
            Some(at) => {
                let seconds: f64 = if at.hasattr("timestamp")? {
                    at.call_method0("timestamp")?.extract()?
                } else {
                    at.extract()?
                };
                if !(seconds.is_finite() && seconds >= 0.0) {
                    return Err(to_py(bucketsync::Error::Config(format!(
                        "at must be a time after 1970, not {seconds}"
                    ))));
                }
                Some((seconds * 1000.0) as u64)
            }
        };
        let name = self
            .session
            .source_named(name.as_deref(), synced_folder)
            .map_err(to_py)?;
        let options = bucketsync::backup::RestoreOptions {
            at_ms,
            dry_run,
            force,
            only,
            synced_folder,
        };
        let stop = Stop::default();
        let report = self.run(py, &stop, || {
            self.session.restore(
                &name,
                &to,
                &options,
                &*self.transport,
                driver::DEFAULT_CONCURRENCY,
                path_progress(&self.session, progress.as_ref(), &stop),
            )
        })?;
        RestoreReport::new(py, name, &report)
    }

    /// Syncs the folder both ways with the devices that sync it under the same `name`
    /// (default: the folder's name; records under "folder/<name>/") and returns a
    /// FolderReport. Edits, new files and deletions go both ways; a file edited on two devices
    /// keeps both (the later edit keeps the name, the other becomes
    /// "name (conflict DEVICE DATE).ext" everywhere); renames send no content. A missing
    /// folder raises ConfigError and deletes nothing; a folder never synced here (no
    /// .bucketsync-folder in it) only receives. exclude: glob patterns left out on both
    /// sides. It pulls before and pushes after. progress(path, FileProgress) as in backup.
    /// A sync that would delete more than the mass-deletion limit of the folder's files raises
    /// ConflictError and changes nothing until confirm_deletions(). dry_run: decide every
    /// path and change nothing; the report's changes list what would be done (the records
    /// are still pulled first).
    #[pyo3(signature = (folder, name = None, exclude = Vec::new(), progress = None, dry_run = false))]
    fn sync_folder(
        &self,
        py: Python<'_>,
        folder: PathBuf,
        name: Option<String>,
        exclude: Vec<String>,
        progress: Option<PyObject>,
        dry_run: bool,
    ) -> PyResult<FolderReport> {
        let name = match name {
            Some(name) => name,
            None => bucketsync::backup::default_name(&folder).map_err(to_py)?,
        };
        let options = bucketsync::folder_sync::FolderOptions { exclude, dry_run };
        let stop = Stop::default();
        let report = self.run(py, &stop, || {
            self.session.sync_folder(
                &folder,
                &name,
                &options,
                &*self.transport,
                driver::DEFAULT_CONCURRENCY,
                path_progress(&self.session, progress.as_ref(), &stop),
            )
        })?;
        FolderReport::new(py, name, &report)
    }

    /// Writes every record to path_or_file as JSON Lines, one a line, in key order: a path
    /// (created, or replaced) or a file object with write() (an io.TextIOBase gets str, any
    /// other bytes). Each line is {"key", "value", "deleted", "time", "counter", "device"},
    /// with key_base64 and value_base64 instead for bytes that are not UTF-8 text; a deleted
    /// key has "deleted": true and no value; time is in milliseconds since 1970. history:
    /// also write each key's earlier versions kept here (overwritten, or concurrent writes
    /// that lost), marked "history": true. Files (put_file) are left out and counted.
    /// Returns an ExportReport.
    #[pyo3(signature = (path_or_file, history = false))]
    fn export_records(
        &self,
        py: Python<'_>,
        path_or_file: &Bound<'_, PyAny>,
        history: bool,
    ) -> PyResult<ExportReport> {
        records::export_to(py, &self.session, path_or_file, history)
    }

    /// Reads JSON Lines (as export_records writes them; another tool's lines need only key
    /// and value) from a path or a file object with read() (text or binary) and merges them
    /// in: per key, the newest line is written as a local put or delete unless the vault
    /// holds a version at least as new, or that value already, so importing twice changes
    /// nothing. A line without time is a write made now; earlier versions ("history": true)
    /// are skipped. The whole input is read first: a malformed line raises ConfigError naming
    /// the line (counted from 1) and what is wrong, and nothing is imported. Returns an
    /// ImportReport; sync() pushes what changed.
    fn import_records(
        &self,
        py: Python<'_>,
        path_or_file: &Bound<'_, PyAny>,
    ) -> PyResult<ImportReport> {
        records::import_from(py, &self.session, path_or_file)
    }

    /// Reads the files of the backup name (default: the vault's only backup) back from the
    /// bucket and checks every chunk and each whole file, writing nothing; returns a
    /// VerifyReport whose damaged lists the files that could not be read back as stored.
    /// synced_folder: name is a folder synced both ways (sync_folder). sample_percent: read
    /// this share of the files (1 to 100), drawn at random each run. progress(path,
    /// FileProgress) as in backup.
    #[pyo3(signature = (name = None, synced_folder = false, sample_percent = 100, progress = None))]
    fn verify(
        &self,
        py: Python<'_>,
        name: Option<String>,
        synced_folder: bool,
        sample_percent: u32,
        progress: Option<PyObject>,
    ) -> PyResult<VerifyReport> {
        let name = self
            .session
            .source_named(name.as_deref(), synced_folder)
            .map_err(to_py)?;
        let options = bucketsync::verify::VerifyOptions {
            synced_folder,
            sample_percent,
        };
        let stop = Stop::default();
        let report = self.run(py, &stop, || {
            self.session.verify(
                &name,
                &options,
                &*self.transport,
                driver::DEFAULT_CONCURRENCY,
                path_progress(&self.session, progress.as_ref(), &stop),
            )
        })?;
        VerifyReport::new(py, name, &report)
    }

    /// The names of the backups in the vault, sorted.
    fn backups(&self) -> PyResult<Vec<String>> {
        self.session.backups().map_err(to_py)
    }

    /// Opens the file stored under key for reading at any offset: a FileReader, a read-only,
    /// seekable binary file object (read, readinto, seek, tell; a context manager) that fetches
    /// only the chunks each read needs, with some read-ahead, each checked against its id. It
    /// keeps reading the version stored now, whatever a sync brings in. Raises KeyError when
    /// key is absent or deleted, ConfigError when it holds a record that is not a file.
    fn open_file(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>) -> PyResult<FileReader> {
        let bytes: Bytes = key.extract()?;
        let vault = slf.get();
        match vault.session.open_file(&bytes.0).map_err(to_py)? {
            Some(inner) => Ok(FileReader {
                vault: slf.clone().unbind(),
                state: Mutex::new(ReaderState {
                    inner,
                    position: 0,
                    closed: false,
                }),
            }),
            None => Err(pyo3::exceptions::PyKeyError::new_err(key.clone().unbind())),
        }
    }

    /// `await vault.put_file_async(key, path_or_file, progress=None, pack_size=None)`:
    /// put_file() on a worker thread, for asyncio apps. Cancelling the awaiting task stops
    /// the transfer (the file is then not stored); the task ends cancelled once it stopped.
    #[pyo3(signature = (key, path_or_file, progress = None, pack_size = None))]
    fn put_file_async<'py>(
        slf: &Bound<'py, Self>,
        key: Bound<'py, PyAny>,
        path_or_file: Bound<'py, PyAny>,
        progress: Option<PyObject>,
        pack_size: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        py.import("bucketsync._aio")?
            .getattr("put_file_async")?
            .call1((slf, key, path_or_file, progress, pack_size))
    }

    /// `await vault.get_file_async(key, path_or_file, progress=None)`: get_file() on a worker
    /// thread, for asyncio apps. Cancelling the awaiting task stops the transfer.
    #[pyo3(signature = (key, path_or_file, progress = None))]
    fn get_file_async<'py>(
        slf: &Bound<'py, Self>,
        key: Bound<'py, PyAny>,
        path_or_file: Bound<'py, PyAny>,
        progress: Option<PyObject>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        py.import("bucketsync._aio")?
            .getattr("get_file_async")?
            .call1((slf, key, path_or_file, progress))
    }

    /// put_file() that also stops when `cancel` (a `_Cancel`) is set: the worker side of
    /// put_file_async.
    fn _put_file_until(
        &self,
        py: Python<'_>,
        key: Bytes,
        path_or_file: &Bound<'_, PyAny>,
        progress: Option<PyObject>,
        pack_size: Option<usize>,
        cancel: PyRef<'_, PyCancel>,
    ) -> PyResult<FileReport> {
        self.put_file_until(
            py,
            key,
            path_or_file,
            progress,
            pack_size,
            Some(cancel.0.clone()),
        )
    }

    /// get_file() that also stops when `cancel` (a `_Cancel`) is set: the worker side of
    /// get_file_async.
    fn _get_file_until(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        path_or_file: &Bound<'_, PyAny>,
        progress: Option<PyObject>,
        cancel: PyRef<'_, PyCancel>,
    ) -> PyResult<()> {
        self.get_file_until(py, key, path_or_file, progress, Some(cancel.0.clone()))
    }

    /// The identity of the person whose home this vault is (any vault can be a home): an
    /// Identity with `public` (give it to whoever shares a vault with you) and `fingerprint`
    /// (compare it with them through another channel). The same on every device of the home:
    /// it derives from the home's key.
    fn identity(&self, py: Python<'_>) -> PyResult<Identity> {
        as_home(self)?;
        let identity = py
            .allow_threads(|| self.session.identity())
            .map_err(to_py)?;
        Ok(Identity::from(&identity))
    }

    /// The vaults this home made or accepted, as a list of SharedVault (label, store, role,
    /// granted_by, since), sorted by label, as known here: sync the home to see those its
    /// other devices made or accepted.
    fn shared(&self) -> PyResult<Vec<SharedVault>> {
        as_home(self)?;
        let shared = self.session.shared().map_err(to_py)?;
        Ok(shared.iter().map(SharedVault::from).collect())
    }

    /// Makes a new vault to share in `store`, with a fresh key, kept in this home as `label`
    /// with the role "owner" (a local write to the home: sync the home so that its other
    /// devices see it), and returns it opened in create mode (its first sync creates it in the
    /// store). The other arguments are Vault.open's, for the shared vault: `state` is its own
    /// state file (not the home's); `transport` and the deadlines, when left out, are the
    /// home's. Credentials: the home's (given, or from the AWS_* environment) serve only a
    /// store on the home's own service (the same endpoint and region); a store elsewhere gets
    /// only the `credentials` passed here, else its requests go unsigned and raise AuthError
    /// saying so.
    /// The returned vault keeps the home open (for `share`) while it lives. Raises ConfigError
    /// for a bad label or store URL, or a label the home has already.
    #[pyo3(signature = (store, label, *, device = None, state = None, credentials = None, transport = None, wait = false, flush_interval = None, grace_days = None, max_clock_skew_days = None, max_future_days = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_shared(
        &self,
        py: Python<'_>,
        store: &str,
        label: &str,
        device: Option<String>,
        state: Option<PathBuf>,
        credentials: Option<Py<Credentials>>,
        transport: Option<PyObject>,
        wait: bool,
        flush_interval: Option<f64>,
        grace_days: Option<f64>,
        max_clock_skew_days: Option<f64>,
        max_future_days: Option<f64>,
    ) -> PyResult<Vault> {
        let args = OpenArgs {
            expected_from: None,
            device,
            state,
            credentials,
            transport,
            wait,
            flush_interval,
            grace_days,
            max_clock_skew_days,
            max_future_days,
        };
        create_shared_vault(py, self, store, label, args)
    }

    /// Opens the vault this home knows as `label` (see shared()), on this device or any other
    /// of the home's, in join mode, with the home's role in it: with "read", this device
    /// refuses its own writes (put, delete, files, imports) with AccessError. Arguments as for
    /// create_shared. Raises ConfigError when the home has no such label.
    #[pyo3(signature = (label, *, device = None, state = None, credentials = None, transport = None, wait = false, flush_interval = None, grace_days = None, max_clock_skew_days = None, max_future_days = None))]
    #[allow(clippy::too_many_arguments)]
    fn open_shared(
        &self,
        py: Python<'_>,
        label: &str,
        device: Option<String>,
        state: Option<PathBuf>,
        credentials: Option<Py<Credentials>>,
        transport: Option<PyObject>,
        wait: bool,
        flush_interval: Option<f64>,
        grace_days: Option<f64>,
        max_clock_skew_days: Option<f64>,
        max_future_days: Option<f64>,
    ) -> PyResult<Vault> {
        let args = OpenArgs {
            expected_from: None,
            device,
            state,
            credentials,
            transport,
            wait,
            flush_interval,
            grace_days,
            max_clock_skew_days,
            max_future_days,
        };
        open_shared_label(py, self, label, args)
    }

    /// Grants this vault to the person whose public identity ("bsid1…", their
    /// identity().public) is `public`, with `role` ("read", "write" or "owner"; by default
    /// "read"): one PUT into the vault's store. Returns the invitation ("bsinv1…") to send them; only they can
    /// accept it. Raises AccessError when this vault was not opened through its home
    /// (create_shared, open_shared or accept) or the home's role in it is not "owner";
    /// ConfigError for a bad role, public identity or signer URL (before any request); the
    /// PUT's error otherwise. `signer_url`: the /sign URL of a `bucketsync signer` through
    /// which they reach the store (https, or http on this machine only; give them a member
    /// token for it too); the invitation names it (see `bucketsync.invitation_info`). It is
    /// not signed: their token goes there, so send the invitation over a channel you trust.
    #[pyo3(signature = (public, role = None, signer_url = None))]
    fn share(
        &self,
        py: Python<'_>,
        public: &str,
        role: Option<&str>,
        signer_url: Option<&str>,
    ) -> PyResult<String> {
        share_vault(py, self, public, role, signer_url, None)
    }

    /// `await vault.share_async(public, role=None, signer_url=None)`: share() on a worker
    /// thread, for asyncio apps. Cancelling the awaiting task stops it.
    #[pyo3(signature = (public, role = None, signer_url = None))]
    fn share_async<'py>(
        slf: &Bound<'py, Self>,
        public: &str,
        role: Option<&str>,
        signer_url: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        slf.py()
            .import("bucketsync._aio")?
            .getattr("share_async")?
            .call1((slf, public, role, signer_url))
    }

    /// share() that also stops when `cancel` (a `_Cancel`) is set: the worker side of
    /// share_async.
    #[pyo3(signature = (public, role, signer, cancel))]
    fn _share_until(
        &self,
        py: Python<'_>,
        public: &str,
        role: Option<&str>,
        signer: Option<&str>,
        cancel: PyRef<'_, PyCancel>,
    ) -> PyResult<String> {
        share_vault(py, self, public, role, signer, Some(cancel.0.clone()))
    }

    /// Accepts an invitation (the text share() returned to the granter) with this home's
    /// identity: reads its grant (one GET in the invitation's store, signed as create_shared
    /// says: the home's credentials only on the home's own service, never on one an
    /// invitation names), keeps the vault in this home (a local write to the home: sync the
    /// home so that its other devices see it; its label is in shared()), and returns it opened in
    /// join mode with the role granted. `granted_by`: the granter's fingerprint as they told
    /// it to you out of band (the invitation alone says who sent it): an invitation from
    /// anyone else raises AccessError before anything is fetched. Other arguments as for
    /// create_shared (`credentials` also open the vault). Raises ConfigError for a text that
    /// is not an invitation, AccessError when it was made for another identity or another
    /// granter, NotFoundError when its grant is gone (withdrawn, or the wrong store).
    #[pyo3(signature = (invitation, *, granted_by = None, device = None, state = None, credentials = None, transport = None, wait = false, flush_interval = None, grace_days = None, max_clock_skew_days = None, max_future_days = None))]
    #[allow(clippy::too_many_arguments)]
    fn accept(
        &self,
        py: Python<'_>,
        invitation: &str,
        granted_by: Option<String>,
        device: Option<String>,
        state: Option<PathBuf>,
        credentials: Option<Py<Credentials>>,
        transport: Option<PyObject>,
        wait: bool,
        flush_interval: Option<f64>,
        grace_days: Option<f64>,
        max_clock_skew_days: Option<f64>,
        max_future_days: Option<f64>,
    ) -> PyResult<Vault> {
        let args = OpenArgs {
            expected_from: granted_by,
            device,
            state,
            credentials,
            transport,
            wait,
            flush_interval,
            grace_days,
            max_clock_skew_days,
            max_future_days,
        };
        accept_invitation(py, self, invitation, args, None)
    }

    /// `await home.accept_async(invitation, ...)`: accept() on a worker thread, for asyncio
    /// apps, with the same arguments. Cancelling the awaiting task stops it (the vault is then
    /// neither kept in the home nor opened, unless its grant had been read).
    #[pyo3(signature = (invitation, *, granted_by = None, device = None, state = None, credentials = None, transport = None, wait = false, flush_interval = None, grace_days = None, max_clock_skew_days = None, max_future_days = None))]
    #[allow(clippy::too_many_arguments)]
    fn accept_async<'py>(
        slf: &Bound<'py, Self>,
        invitation: &str,
        granted_by: Option<String>,
        device: Option<String>,
        state: Option<PathBuf>,
        credentials: Option<Py<Credentials>>,
        transport: Option<PyObject>,
        wait: bool,
        flush_interval: Option<f64>,
        grace_days: Option<f64>,
        max_clock_skew_days: Option<f64>,
        max_future_days: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let args = OpenArgs {
            expected_from: granted_by,
            device,
            state,
            credentials,
            transport,
            wait,
            flush_interval,
            grace_days,
            max_clock_skew_days,
            max_future_days,
        };
        py.import("bucketsync._aio")?
            .getattr("accept_async")?
            .call1((slf, invitation, args.into_kwargs(py)?))
    }

    /// accept() that also stops when `cancel` (a `_Cancel`) is set: the worker side of
    /// accept_async.
    #[pyo3(signature = (invitation, cancel, *, granted_by = None, device = None, state = None, credentials = None, transport = None, wait = false, flush_interval = None, grace_days = None, max_clock_skew_days = None, max_future_days = None))]
    #[allow(clippy::too_many_arguments)]
    fn _accept_until(
        &self,
        py: Python<'_>,
        invitation: &str,
        cancel: PyRef<'_, PyCancel>,
        granted_by: Option<String>,
        device: Option<String>,
        state: Option<PathBuf>,
        credentials: Option<Py<Credentials>>,
        transport: Option<PyObject>,
        wait: bool,
        flush_interval: Option<f64>,
        grace_days: Option<f64>,
        max_clock_skew_days: Option<f64>,
        max_future_days: Option<f64>,
    ) -> PyResult<Vault> {
        let args = OpenArgs {
            expected_from: granted_by,
            device,
            state,
            credentials,
            transport,
            wait,
            flush_interval,
            grace_days,
            max_clock_skew_days,
            max_future_days,
        };
        accept_invitation(py, self, invitation, args, Some(cancel.0.clone()))
    }

    /// The people of this shared vault, as a list of Member (fingerprint, public, role,
    /// since, granted_by, may_write, pins), sorted by fingerprint, as the member statements
    /// this device has read say: sync to see what other owners decided. Revoked people stay
    /// listed, with the role "revoked". Empty for a vault that is not shared (one opened with
    /// Vault.open or Vault.create rather than through its home).
    fn members(&self) -> PyResult<Vec<Member>> {
        let members = self.session.members().map_err(to_py)?;
        Ok(members.iter().map(Member::from).collect())
    }

    /// Revokes the member whose fingerprint is `fingerprint` (as a person types it: case,
    /// dashes and spaces do not matter) and returns the Member as they were before. Nothing
    /// is sent: this signs a revocation that the next sync publishes. From then on, every
    /// reader counts their writes only up to what this device had merged of each of their
    /// devices (sync before revoking to keep what they wrote until now), and their own syncs
    /// raise AccessError. It starts a new key generation: the next sync seals it to every
    /// member left and re-seals the records under it, so they cannot read what is written
    /// later, files stored later included; they keep what they could read and the older keys
    /// (revoke their bucket credentials or signer token too). Raises AccessError
    /// when this person is not an owner of the vault (or it is not shared); ConfigError when
    /// no member has that fingerprint, or it is the founder's or one's own.
    fn revoke(&self, fingerprint: &str) -> PyResult<Member> {
        let member = self.session.revoke(fingerprint).map_err(to_py)?;
        Ok(Member::from(&member))
    }

    /// Syncs the journal to disk now (it also is after every sync, on close, and while
    /// writing every `flush_interval` seconds).
    fn save(&self) -> PyResult<()> {
        self.session.save().map_err(to_py)
    }

    /// Saves the state, releases its lock and closes the vault; later calls raise ConfigError.
    fn close(&self) -> PyResult<()> {
        self.session.close().map_err(to_py)
    }

    /// This replica's device id.
    #[getter]
    fn device(&self) -> PyResult<String> {
        self.session.read(|e| e.device().to_string()).map_err(to_py)
    }

    /// The vault's public id.
    #[getter]
    fn vault_id(&self) -> PyResult<String> {
        self.session
            .read(|e| e.vault_id().to_string())
            .map_err(to_py)
    }

    /// Local writes not yet in the store.
    #[getter]
    fn unpushed(&self) -> PyResult<usize> {
        self.session.read(|e| e.unpushed()).map_err(to_py)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close()?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        self.session
            .read(|e| {
                format!(
                    "Vault(store='{}', device='{}', records={}, unpushed={})",
                    e.store().display_name(),
                    e.device(),
                    e.keys(b"").len(),
                    e.unpushed()
                )
            })
            .unwrap_or_else(|_| "Vault(closed)".into())
    }
}

/// A vault's time bounds, from the days Python gives (`None`: the core's defaults).
fn compaction(
    grace: Option<f64>,
    max_clock_skew: Option<f64>,
    max_future: Option<f64>,
) -> PyResult<CompactionPolicy> {
    VaultDays::given(grace, max_clock_skew, max_future)
        .policy(["grace_days", "max_clock_skew_days", "max_future_days"])
        .map_err(to_py)
}

/// The durability of `flush_interval` seconds (`None`: the core's default).
fn durability(flush_interval: Option<f64>) -> PyResult<Durability> {
    Durability::with_flush_seconds(flush_interval, "flush_interval").map_err(to_py)
}

impl Vault {
    /// Opens the vault `opening` describes (the work of `Vault.open`).
    pub(crate) fn open_as(py: Python<'_>, opening: Opening<'_>) -> PyResult<Self> {
        let compaction = compaction(
            opening.grace_days,
            opening.max_clock_skew_days,
            opening.max_future_days,
        )?;
        let durability = durability(opening.flush_interval)?;
        let location = StateLocation::file_or_memory(opening.state.as_deref(), opening.wait);
        let options = SessionOptions {
            store: opening.store,
            key: opening.key,
            device: opening.device,
            mode: opening.mode,
            compaction,
            state: location,
            credentials: opening.credentials,
            environment: true,
            own_transport: matches!(opening.transport, Some(AnyTransport::Python(_))),
            durability,
            clock: session::system_clock(),
            entropy_seed: None,
        };
        // Waiting for a lock must not hold the GIL.
        let session = py.allow_threads(|| Session::open(options)).map_err(to_py)?;
        let callable = opening.transport.as_ref().and_then(AnyTransport::callable);
        let reach = Reach::of(&session, callable, None, opening.http);
        let transport = match opening.transport {
            Some(transport) => transport,
            None => session
                .read(|e| AnyTransport::for_reach(&reach, e.store()))
                .and_then(|t| t)
                .map_err(to_py)?,
        };
        Self::wrap(session, Arc::new(transport), reach, None)
    }

    /// The Python object of an open session: its transport, its runtime, the home it was
    /// opened through.
    fn wrap(
        session: Session,
        transport: Arc<AnyTransport>,
        reach: VaultReach,
        home: Option<Arc<Session>>,
    ) -> PyResult<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                to_py(bucketsync::Error::Config(format!(
                    "cannot start the I/O runtime: {e}"
                )))
            })?;
        Ok(Vault {
            session: Arc::new(session),
            transport,
            auto_sync: AutoSync::default(),
            runtime: Some(runtime),
            syncing: AtomicBool::new(false),
            home,
            reach,
        })
    }

    /// One sync, stopped early by an exception from `progress`, a signal, or `cancel`.
    fn sync_until(
        &self,
        py: Python<'_>,
        progress: Option<PyObject>,
        cancel: Option<Cancel>,
    ) -> PyResult<SyncReport> {
        if self
            .syncing
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(to_py(bucketsync::Error::SyncInProgress));
        }
        let _syncing = Syncing(&self.syncing);
        let stop = Stop::new(cancel);
        let report = self.run(py, &stop, || {
            self.session.sync(
                &*self.transport,
                driver::DEFAULT_CONCURRENCY,
                |p: CoreProgress| {
                    let Some(callback) = &progress else { return };
                    Python::with_gil(|py| {
                        if let Err(e) = callback.call1(py, (Progress::from(p),)) {
                            stop.note(e);
                        }
                    })
                },
            )
        })?;
        SyncReport::new(py, &report)
    }

    /// put_file, stopped early as a sync is (see `run`).
    fn put_file_until(
        &self,
        py: Python<'_>,
        key: Bytes,
        path_or_file: &Bound<'_, PyAny>,
        progress: Option<PyObject>,
        pack_size: Option<usize>,
        cancel: Option<Cancel>,
    ) -> PyResult<FileReport> {
        let stop = Stop::new(cancel);
        let report = match Target::of(path_or_file, "read")? {
            Target::Path(path) => {
                let file = std::fs::File::open(&path)?;
                let len = file.metadata()?.len();
                let mut source = Checked::new(ReadSource::new(file, Some(len)), &stop);
                self.put_from(py, key, &mut source, progress, pack_size, &stop)?
            }
            Target::Object(object) => {
                let len = remaining_len(&object)?;
                let reader = PyReader {
                    file: object.unbind(),
                    stop: &stop,
                };
                let mut source = Checked::new(ReadSource::new(reader, len), &stop);
                self.put_from(py, key, &mut source, progress, pack_size, &stop)?
            }
        };
        Ok(report.into())
    }

    #[allow(clippy::too_many_arguments)]
    fn put_from<S: Source + Send>(
        &self,
        py: Python<'_>,
        key: Bytes,
        source: &mut S,
        progress: Option<PyObject>,
        pack_size: Option<usize>,
        stop: &Stop,
    ) -> PyResult<bucketsync::transfer::FileReport> {
        self.run(py, stop, || {
            self.session.put_file(
                key.0,
                source,
                &*self.transport,
                pack_size,
                driver::DEFAULT_CONCURRENCY,
                file_progress(&self.session, progress.as_ref(), stop),
            )
        })
    }

    /// get_file, stopped early as a sync is (see `run`).
    fn get_file_until(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        path_or_file: &Bound<'_, PyAny>,
        progress: Option<PyObject>,
        cancel: Option<Cancel>,
    ) -> PyResult<()> {
        let bytes: Bytes = key.extract()?;
        let stop = Stop::new(cancel);
        let found = match Target::of(path_or_file, "write")? {
            // Through a partial file beside the path, which a later call resumes from if this
            // one is interrupted (the core's get_file_to_path).
            Target::Path(path) => {
                // A missing folder is FileNotFoundError, as open() would say.
                match path.parent() {
                    Some(folder) if !folder.as_os_str().is_empty() => {
                        std::fs::metadata(folder)?;
                    }
                    _ => {}
                }
                self.run(py, &stop, || {
                    self.session.get_file_to_path(
                        &bytes.0,
                        &path,
                        &*self.transport,
                        driver::DEFAULT_CONCURRENCY,
                        file_progress(&self.session, progress.as_ref(), &stop),
                    )
                })?
            }
            Target::Object(object) => {
                let writer = PyWriter {
                    file: object.unbind(),
                    stop: &stop,
                };
                let mut sink = Checked::new(WriteSink(writer), &stop);
                self.get_into(py, &bytes, &mut sink, progress, &stop)?
            }
        };
        if found {
            Ok(())
        } else {
            Err(pyo3::exceptions::PyKeyError::new_err(key.clone().unbind()))
        }
    }

    fn get_into<K: Sink + Send>(
        &self,
        py: Python<'_>,
        key: &Bytes,
        sink: &mut K,
        progress: Option<PyObject>,
        stop: &Stop,
    ) -> PyResult<bool> {
        self.run(py, stop, || {
            self.session.get_file(
                &key.0,
                sink,
                &*self.transport,
                driver::DEFAULT_CONCURRENCY,
                file_progress(&self.session, progress.as_ref(), stop),
            )
        })
    }

    /// Runs what `work` starts on the vault's runtime with the GIL released. It is stopped
    /// (its future dropped, which the core makes safe) once `stop` is cancelled: an exception
    /// noted by a callback or a file object, a signal such as Ctrl-C, or the cancel the
    /// asyncio side set; that exception (or `asyncio.CancelledError`) is then raised.
    /// Otherwise the core's error is raised as its class, with the exception a Python
    /// transport raised as `__cause__`.
    pub(crate) fn run<T: Send, F: Future<Output = bucketsync::Result<T>>>(
        &self,
        py: Python<'_>,
        stop: &Stop,
        work: impl FnOnce() -> F + Send,
    ) -> PyResult<T> {
        self.run_with(py, || self.transport.take_raised(), stop, work)
    }

    /// As `run`, for work that sends its requests through a transport that may not be this
    /// vault's (accept reads the invitation's store): `raised` takes the exception it raised,
    /// which becomes the error's `__cause__`.
    pub(crate) fn run_with<T: Send, F: Future<Output = bucketsync::Result<T>>>(
        &self,
        py: Python<'_>,
        raised: impl Fn() -> Option<PyErr>,
        stop: &Stop,
        work: impl FnOnce() -> F + Send,
    ) -> PyResult<T> {
        // Called from a progress callback (or a transport) of a running operation: the
        // thread is inside a runtime already, and tokio refuses to nest one.
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(conflict(
                py,
                "a sync or file transfer is running on this thread (this is one of its \
                 callbacks): call this after it returns, or from another thread",
            ));
        }
        // An exception a Python transport raised earlier is not this operation's cause.
        let _ = raised();
        let on_main_thread = is_main_thread(py)?;
        let outcome = py.allow_threads(|| {
            let runtime = self
                .runtime
                .as_ref()
                .expect("the runtime lives as long as the vault");
            runtime.block_on(async {
                let work = stop.cancel().run(work());
                // CPython runs a signal's handler only on the main thread, and only when that
                // thread asks: while it waits here, it asks every 50 ms. Any other thread
                // waits for the work alone (a cancel wakes it).
                let signals = async {
                    if on_main_thread {
                        loop {
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            if let Err(e) = Python::with_gil(|py| py.check_signals()) {
                                stop.note(e);
                                break;
                            }
                        }
                    }
                    std::future::pending::<()>().await;
                };
                tokio::select! {
                    outcome = work => outcome,
                    () = signals => unreachable!("the signals' watch never ends"),
                }
            })
        });
        let raised = raised();
        // Ctrl-C (or SystemExit) while a Python transport ran: it stops the operation as it is.
        let raised = match raised {
            Some(e) if !e.is_instance_of::<pyo3::exceptions::PyException>(py) => {
                return Err(e);
            }
            other => other,
        };
        match (outcome, stop.take()) {
            (_, Some(stopped)) => Err(stopped),
            (Ok(value), None) => Ok(value),
            (Err(bucketsync::Error::Cancelled), None) if stop.cancel().is_cancelled() => Err(
                pyo3::exceptions::asyncio::CancelledError::new_err("the operation was cancelled"),
            ),
            (Err(error), None) => Err(to_py_with_cause(error, raised)),
        }
    }
}

/// Whether this is the interpreter's main thread, the only one signal handlers run on.
fn is_main_thread(py: Python<'_>) -> PyResult<bool> {
    let threading = py.import("threading")?;
    let main = threading.call_method0("main_thread")?;
    Ok(main.is(&threading.call_method0("current_thread")?))
}

/// The progress callback of a file transfer: what the Python callback raises is noted in
/// `stop`, and the transfer is cancelled, so that one raising at the very end still keeps the
/// record from being written (or the file from being put at its path).
/// As [`file_progress`], for backups and restores: the callback gets the path too.
fn path_progress<'a>(
    session: &'a Session,
    callback: Option<&'a PyObject>,
    stop: &'a Stop,
) -> impl FnMut(&str, bucketsync::files::FileProgress) + 'a {
    move |path, p| {
        let Some(callback) = callback else { return };
        Python::with_gil(|py| {
            if let Err(e) = callback.call1(py, (path, FileProgress::from(p))) {
                stop.note(e);
                session.cancel_sync();
            }
        });
    }
}

fn file_progress<'a>(
    session: &'a Session,
    callback: Option<&'a PyObject>,
    stop: &'a Stop,
) -> impl FnMut(bucketsync::files::FileProgress) + 'a {
    move |p| {
        let Some(callback) = callback else { return };
        Python::with_gil(|py| {
            if let Err(e) = callback.call1(py, (FileProgress::from(p),)) {
                stop.note(e);
                session.cancel_sync();
            }
        });
    }
}

/// A file of the vault opened for reading (`Vault.open_file`): a read-only, seekable binary
/// file object. Each read fetches only the chunks it needs (with some read-ahead, kept for the
/// next read), checked against their ids; Ctrl-C stops a read. It reads the version that was
/// stored when it was opened.
#[pyclass(module = "bucketsync", frozen)]
pub struct FileReader {
    vault: Py<Vault>,
    state: Mutex<ReaderState>,
}

struct ReaderState {
    inner: bucketsync::files::FileReader,
    position: u64,
    closed: bool,
}

impl FileReader {
    fn open_state(&self) -> PyResult<std::sync::MutexGuard<'_, ReaderState>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "I/O operation on closed file",
            ));
        }
        Ok(state)
    }

    /// Up to `n` bytes from the current position, which moves past them.
    fn read_bytes(&self, py: Python<'_>, n: u64) -> PyResult<Vec<u8>> {
        let mut state = self.open_state()?;
        let vault = self.vault.get();
        let position = state.position;
        let n = usize::try_from(n.min(state.inner.size().saturating_sub(position)))
            .map_err(|_| pyo3::exceptions::PyMemoryError::new_err("read too large"))?;
        let inner = &mut state.inner;
        let stop = Stop::default();
        let bytes = vault.run(py, &stop, || {
            inner.read_at(
                &vault.session,
                position,
                n,
                &*vault.transport,
                driver::DEFAULT_CONCURRENCY,
            )
        })?;
        state.position += bytes.len() as u64;
        Ok(bytes)
    }
}

#[pymethods]
impl FileReader {
    /// The file's length in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .inner
            .size()
    }

    /// Reads up to size bytes (all the rest when size is None or negative) from the current
    /// position; b"" at the end.
    #[pyo3(signature = (size = None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let n = match size {
            Some(n) if n >= 0 => n as u64,
            _ => u64::MAX,
        };
        let bytes = self.read_bytes(py, n)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Reads into a writable buffer (bytearray, memoryview); returns the bytes read.
    fn readinto(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>) -> PyResult<usize> {
        // Byte-wise, whatever the buffer's item format (abi3 has no buffer protocol API).
        let view = pyo3::types::PyMemoryView::from(buffer)?.call_method1("cast", ("B",))?;
        if view.getattr("readonly")?.is_truthy()? {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "readinto() needs a writable buffer",
            ));
        }
        let bytes = self.read_bytes(py, view.len()? as u64)?;
        let n = bytes.len();
        view.set_item(
            pyo3::types::PySlice::new(py, 0, n as isize, 1),
            PyBytes::new(py, &bytes),
        )?;
        Ok(n)
    }

    /// Moves the position: whence 0 from the start, 1 from the current position, 2 from the
    /// end. Returns the new position. Past the end is allowed (reads there return b"").
    #[pyo3(signature = (offset, whence = 0))]
    fn seek(&self, offset: i64, whence: i32) -> PyResult<u64> {
        let mut state = self.open_state()?;
        let base = match whence {
            0 => 0,
            1 => state.position as i128,
            2 => state.inner.size() as i128,
            _ => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "invalid whence ({whence}, should be 0, 1 or 2)"
                )))
            }
        };
        let target = base + i128::from(offset);
        if target < 0 {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "negative seek position {target}"
            )));
        }
        state.position = u64::try_from(target).unwrap_or(u64::MAX);
        Ok(state.position)
    }

    /// The current position.
    fn tell(&self) -> PyResult<u64> {
        Ok(self.open_state()?.position)
    }

    /// True: the file can be read (ValueError once closed).
    fn readable(&self) -> PyResult<bool> {
        self.open_state().map(|_| true)
    }

    /// True: seek() moves anywhere in the file (ValueError once closed).
    fn seekable(&self) -> PyResult<bool> {
        self.open_state().map(|_| true)
    }

    /// False: the reader only reads (ValueError once closed).
    fn writable(&self) -> PyResult<bool> {
        self.open_state().map(|_| false)
    }

    /// Closes the reader; later reads raise ValueError.
    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
    }

    #[getter]
    fn closed(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&self, _kind: PyObject, _value: PyObject, _traceback: PyObject) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        format!(
            "<bucketsync.FileReader size={} position={}{}>",
            state.inner.size(),
            state.position,
            if state.closed { " closed" } else { "" }
        )
    }
}

// Sharing: vaults of a home made, opened, granted and accepted (the values Python sees are in
// sharing.rs).

/// How this device opens a shared vault: the arguments of `Vault.open` that apply to one.
pub struct OpenArgs {
    /// For accept: the granter's fingerprint as told out of band (`granted_by`).
    pub expected_from: Option<String>,
    pub device: Option<String>,
    pub state: Option<PathBuf>,
    pub credentials: Option<Py<Credentials>>,
    pub transport: Option<PyObject>,
    pub wait: bool,
    pub flush_interval: Option<f64>,
    pub grace_days: Option<f64>,
    pub max_clock_skew_days: Option<f64>,
    pub max_future_days: Option<f64>,
}

impl OpenArgs {
    /// The arguments as keywords (for `accept_async`, which calls `_accept_until` with them).
    pub fn into_kwargs(self, py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("granted_by", self.expected_from)?;
        kwargs.set_item("device", self.device)?;
        kwargs.set_item("state", self.state)?;
        kwargs.set_item("credentials", self.credentials)?;
        kwargs.set_item("transport", self.transport)?;
        kwargs.set_item("wait", self.wait)?;
        kwargs.set_item("flush_interval", self.flush_interval)?;
        kwargs.set_item("grace_days", self.grace_days)?;
        kwargs.set_item("max_clock_skew_days", self.max_clock_skew_days)?;
        kwargs.set_item("max_future_days", self.max_future_days)?;
        Ok(kwargs)
    }

    /// The shared vault's own options, converted.
    fn options(&self) -> PyResult<SharedOptions<'_>> {
        Ok(SharedOptions {
            device: self.device.as_deref(),
            state: StateLocation::file_or_memory(self.state.as_deref(), self.wait),
            compaction: compaction(
                self.grace_days,
                self.max_clock_skew_days,
                self.max_future_days,
            )?,
            durability: durability(self.flush_interval)?,
        })
    }

    /// What the app gives for reaching the shared vault's store, converted.
    fn given(&self, py: Python<'_>) -> PyResult<Given<Arc<PyObject>, Nothing>> {
        let transport = match &self.transport {
            Some(callable) => AnyTransport::python(py, callable.clone_ref(py))?.callable(),
            None => None,
        };
        Ok(Given {
            credentials: self.credentials.as_ref().map(|c| c.get().0.clone()),
            transport,
            ..Given::default()
        })
    }
}

/// AccessError for a vault opened through a home (the core's rule).
fn as_home(vault: &Vault) -> PyResult<()> {
    sharing::as_home(vault.home.as_ref()).map_err(to_py)
}

/// The Python vault of a shared vault the core opened through `home`, with the transport its
/// reach says.
fn shared_vault(home: &Vault, opened: OpenedShared<Arc<PyObject>, Nothing>) -> PyResult<Vault> {
    let OpenedShared { vault, reach, .. } = opened;
    let transport = vault
        .read(|e| AnyTransport::for_reach(&reach, e.store()))
        .and_then(|t| t)
        .map_err(to_py)?;
    Vault::wrap(
        vault,
        Arc::new(transport),
        reach,
        Some(Arc::clone(&home.session)),
    )
}

/// Makes a new shared vault in `store`, kept in `home` as `label`, and opens it (create mode).
fn create_shared_vault(
    py: Python<'_>,
    home: &Vault,
    store: &str,
    label: &str,
    args: OpenArgs,
) -> PyResult<Vault> {
    let (options, given) = (args.options()?, args.given(py)?);
    let opened = py
        .allow_threads(|| {
            home.session
                .create_shared_vault(&home.reach, store, label, options, given)
        })
        .map_err(to_py)?;
    shared_vault(home, opened)
}

/// Opens the vault `home` knows as `label`.
fn open_shared_label(py: Python<'_>, home: &Vault, label: &str, args: OpenArgs) -> PyResult<Vault> {
    let (options, given) = (args.options()?, args.given(py)?);
    let opened = py
        .allow_threads(|| {
            home.session
                .open_shared_vault(&home.reach, label, options, given)
        })
        .map_err(to_py)?;
    shared_vault(home, opened)
}

/// Grants `vault` (opened through its home) to `public` with `role`, naming `signer`; the
/// invitation's text.
fn share_vault(
    py: Python<'_>,
    vault: &Vault,
    public: &str,
    role: Option<&str>,
    signer: Option<&str>,
    cancel: Option<Cancel>,
) -> PyResult<String> {
    let role = Role::parse_or_default(role).map_err(to_py)?;
    let home = sharing::home_of(vault.home.as_ref()).map_err(to_py)?;
    let stop = Stop::new(cancel);
    let invitation = vault.run(py, &stop, || {
        vault
            .session
            .share_through(home, public, role, signer, &*vault.transport)
    })?;
    Ok(invitation.to_string())
}

/// Accepts `invitation` into `home` and opens the vault it grants (join mode).
fn accept_invitation(
    py: Python<'_>,
    home: &Vault,
    invitation: &str,
    args: OpenArgs,
    cancel: Option<Cancel>,
) -> PyResult<Vault> {
    let (options, given) = (args.options()?, args.given(py)?);
    // The transport the core makes for the grant's GET, kept to find what a Python transport
    // raised.
    let made: Mutex<Option<Arc<AnyTransport>>> = Mutex::new(None);
    let raised = || {
        let made = made.lock().unwrap_or_else(|p| p.into_inner());
        made.as_ref().and_then(|t| t.take_raised())
    };
    let stop = Stop::new(cancel);
    let opened = home.run_with(py, raised, &stop, || {
        home.session.accept_shared_vault(
            &home.reach,
            invitation,
            args.expected_from.as_deref(),
            options,
            given,
            |reach, store| {
                let transport = Arc::new(AnyTransport::for_reach(reach, store)?);
                *made.lock().unwrap_or_else(|p| p.into_inner()) = Some(transport.clone());
                Ok(transport)
            },
        )
    })?;
    shared_vault(home, opened)
}
