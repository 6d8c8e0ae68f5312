//! The exported classes: thin wrappers that convert, lock, release the GIL and map errors.

use std::path::PathBuf;
use std::sync::Mutex;

use bucketsync::builtin_transport::BuiltinTransport;
use bucketsync::driver::{self, Progress as CoreProgress};
use bucketsync::vault::{self as core_vault, OpenOptions};
use bucketsync::{Engine, RequestKind};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::convert::{now, Bytes};
use crate::errors::{exception, to_py, to_py_with_cause};
use crate::transport::{AnyTransport, PyTransport};

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

/// How far a sync has come; passed to the `progress` callback of `Vault.sync`.
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct Progress {
    /// Requests answered so far.
    pub requests_done: u64,
    /// Requests handed out so far (grows as the sync learns what it needs).
    pub requests_total: u64,
    /// Body bytes sent so far.
    pub bytes_sent: u64,
    /// Body bytes received so far.
    pub bytes_received: u64,
}

#[pymethods]
impl Progress {
    fn __repr__(&self) -> String {
        format!(
            "Progress(requests_done={}, requests_total={}, bytes_sent={}, bytes_received={})",
            self.requests_done, self.requests_total, self.bytes_sent, self.bytes_received
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
    /// Requests by kind: list, get-manifest, get-segment, put-segment, put-manifest.
    pub requests_by_kind: Py<PyDict>,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Response body bytes received.
    pub bytes_received: u64,
    /// Requests sent again after a passing failure.
    pub retries: u64,
    /// Errors met (not raised): bucketsync.Error instances, each with its `.category`.
    pub errors: Vec<PyObject>,
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
            "SyncReport(pushed={}, pulled={}, requests={}, bytes_sent={}, bytes_received={}, retries={}, errors={errors:?})",
            self.pushed, self.pulled, self.requests, self.bytes_sent, self.bytes_received, self.retries
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
            errors: report
                .errors
                .iter()
                .map(|e| exception(py, e, None))
                .collect::<PyResult<_>>()?,
        })
    }
}

struct Open {
    engine: Engine,
    transport: AnyTransport,
    state: Option<PathBuf>,
    runtime: tokio::runtime::Runtime,
}

impl Open {
    fn save(&self) -> PyResult<()> {
        match &self.state {
            Some(path) => {
                core_vault::write_state_file(path, &self.engine.export_state()).map_err(to_py)
            }
            None => Ok(()),
        }
    }
}

/// Where a vault is. During a sync the replica is taken out of the lock, so the lock is only
/// ever held for a moment and never while Python code runs: a callback or another thread that
/// touches the vault mid-sync gets ConflictError, never a deadlock.
enum Slot {
    Idle(Box<Open>),
    Syncing,
    Closed,
}

/// One device's replica of a vault. Open it with `Vault.open(...)`, best as a context manager:
/// the state file is saved after every sync and when the vault is closed.
#[pyclass(module = "bucketsync")]
pub struct Vault {
    slot: Mutex<Slot>,
}

fn busy_or_closed(slot: &Slot) -> PyErr {
    match slot {
        Slot::Syncing => to_py(bucketsync::Error::SyncInProgress),
        _ => to_py(bucketsync::Error::Config("this vault is closed".into())),
    }
}

impl Vault {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Open) -> PyResult<T>) -> PyResult<T> {
        let mut slot = self.lock();
        match &mut *slot {
            Slot::Idle(open) => f(open),
            other => Err(busy_or_closed(other)),
        }
    }
}

#[pymethods]
impl Vault {
    /// Opens a vault.
    ///
    /// store: "s3://bucket/prefix?region=…&endpoint=…&path_style=true" or "file:///abs/dir".
    /// key: the VaultKey. device: a stable id (32 hex digits), kept in the state when omitted.
    /// state: path of the local state file (created when missing; without one the replica
    /// lives in memory only). credentials: for s3:// stores; the AWS_* environment otherwise.
    /// transport: a callable taking a bucketsync.Request and returning a bucketsync.Response,
    /// to execute requests with your own HTTP stack (requests go out signed when credentials
    /// are available, unsigned otherwise).
    #[staticmethod]
    #[pyo3(signature = (store, key, device = None, state = None, credentials = None, transport = None))]
    fn open(
        py: Python<'_>,
        store: &str,
        key: &VaultKey,
        device: Option<&str>,
        state: Option<PathBuf>,
        credentials: Option<&Credentials>,
        transport: Option<PyObject>,
    ) -> PyResult<Self> {
        let saved = match &state {
            Some(path) => core_vault::read_state_file(path).map_err(to_py)?,
            None => None,
        };
        let engine = core_vault::open(OpenOptions {
            store,
            key: &key.0,
            device,
            state: saved.as_deref(),
            credentials: credentials.map(|c| c.0.clone()),
            own_transport: transport.is_some(),
        })
        .map_err(to_py)?;
        let transport = match transport {
            Some(callable) => {
                if !callable.bind(py).is_callable() {
                    return Err(pyo3::exceptions::PyTypeError::new_err(
                        "transport must be callable",
                    ));
                }
                AnyTransport::Python(PyTransport {
                    callable,
                    raised: Mutex::new(None),
                })
            }
            None => {
                AnyTransport::Builtin(BuiltinTransport::for_store(engine.store()).map_err(to_py)?)
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                to_py(bucketsync::Error::Config(format!(
                    "cannot start the I/O runtime: {e}"
                )))
            })?;
        let open = Open {
            engine,
            transport,
            state,
            runtime,
        };
        open.save()?;
        Ok(Vault {
            slot: Mutex::new(Slot::Idle(Box::new(open))),
        })
    }

    /// Sets key to value (str or bytes).
    fn put(&self, key: Bytes, value: Bytes) -> PyResult<()> {
        self.with(|o| {
            o.engine.put(key.0, value.0, now());
            Ok(())
        })
    }

    /// The value of key as bytes, or None when absent or deleted.
    fn get(&self, py: Python<'_>, key: Bytes) -> PyResult<Option<Py<PyBytes>>> {
        self.with(|o| Ok(o.engine.get(&key.0).map(|v| PyBytes::new(py, v).unbind())))
    }

    /// Deletes key (a tombstone that reaches every device).
    fn delete(&self, key: Bytes) -> PyResult<()> {
        self.with(|o| {
            o.engine.delete(key.0, now());
            Ok(())
        })
    }

    /// Live keys starting with prefix, sorted, as bytes.
    #[pyo3(signature = (prefix = Bytes(Vec::new())))]
    fn keys(&self, py: Python<'_>, prefix: Bytes) -> PyResult<Vec<Py<PyBytes>>> {
        self.with(|o| {
            Ok(o.engine
                .keys(&prefix.0)
                .iter()
                .map(|k| PyBytes::new(py, k).unbind())
                .collect())
        })
    }

    /// Pulls what other devices wrote and pushes ours. Returns a SyncReport; raises the
    /// bucketsync.Error of the failure that stopped it (the state is saved either way).
    /// progress, if given, is called with a Progress as requests go out and come back.
    #[pyo3(signature = (progress = None))]
    fn sync(&self, py: Python<'_>, progress: Option<PyObject>) -> PyResult<SyncReport> {
        let mut open = {
            let mut slot = self.lock();
            match std::mem::replace(&mut *slot, Slot::Syncing) {
                Slot::Idle(open) => open,
                other => {
                    let error = busy_or_closed(&other);
                    *slot = other;
                    return Err(error);
                }
            }
        };
        // An exception a Python transport raised in an earlier sync is not this sync's cause.
        let _ = open.transport.take_raised();
        let mut callback_error: Option<PyErr> = None;
        let outcome = {
            let Open {
                engine,
                transport,
                runtime,
                ..
            } = &mut *open;
            py.allow_threads(|| {
                runtime.block_on(driver::sync_with_progress(
                    engine,
                    transport,
                    now,
                    driver::DEFAULT_CONCURRENCY,
                    |p: CoreProgress| {
                        // After the callback raised once, it is not called again.
                        if let (Some(callback), None) = (&progress, &callback_error) {
                            Python::with_gil(|py| {
                                let value = Progress {
                                    requests_done: p.requests_done,
                                    requests_total: p.requests_total,
                                    bytes_sent: p.bytes_sent,
                                    bytes_received: p.bytes_received,
                                };
                                if let Err(e) = callback.call1(py, (value,)) {
                                    callback_error = Some(e);
                                }
                            })
                        }
                    },
                ))
            })
        };
        let saved = open.save();
        let raised = open.transport.take_raised();
        *self.lock() = Slot::Idle(open);
        saved?;
        match (outcome, callback_error) {
            (Ok(report), None) => SyncReport::new(py, &report),
            (Ok(_), Some(callback_error)) => Err(callback_error),
            (Err(error), callback_error) => Err(to_py_with_cause(error, raised.or(callback_error))),
        }
    }

    /// Writes the state file now (it is also written after every sync and on close).
    fn save(&self) -> PyResult<()> {
        self.with(|o| o.save())
    }

    /// Saves the state and closes the vault; later calls raise ConfigError.
    fn close(&self) -> PyResult<()> {
        let mut slot = self.lock();
        match std::mem::replace(&mut *slot, Slot::Closed) {
            Slot::Idle(open) => open.save(),
            Slot::Closed => Ok(()),
            Slot::Syncing => {
                *slot = Slot::Syncing;
                Err(to_py(bucketsync::Error::SyncInProgress))
            }
        }
    }

    /// This replica's device id.
    #[getter]
    fn device(&self) -> PyResult<String> {
        self.with(|o| Ok(o.engine.device().to_string()))
    }

    /// The vault's public id.
    #[getter]
    fn vault_id(&self) -> PyResult<String> {
        self.with(|o| Ok(o.engine.vault_id().to_string()))
    }

    /// Local writes not yet in the store.
    #[getter]
    fn unpushed(&self) -> PyResult<usize> {
        self.with(|o| Ok(o.engine.unpushed()))
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
        match &*self.lock() {
            Slot::Idle(o) => format!(
                "Vault(store='{}', device='{}', records={}, unpushed={})",
                o.engine.store().display_name(),
                o.engine.device(),
                o.engine.keys(b"").len(),
                o.engine.unpushed()
            ),
            Slot::Syncing => "Vault(syncing)".into(),
            Slot::Closed => "Vault(closed)".into(),
        }
    }
}
