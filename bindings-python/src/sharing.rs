//! Sharing with other people (the core's `bucketsync::io::sharing`): any vault can be a
//! person's home, which holds their identity and the keys of the vaults they made or accepted.
//! A shared vault opened through its home (`create_shared`, `open_shared`, `accept`) keeps the
//! home, so that an owner can `share` it. The `Vault` methods in vault.rs call these.

use std::path::PathBuf;
use std::sync::Arc;

use bucketsync::builtin_transport::BuiltinTransport;
use bucketsync::grant::{Invitation, Role};
use bucketsync::home::SharedVault as CoreSharedVault;
use bucketsync::{Error, OpenMode, Store};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;
use crate::files::Stop;
use crate::transport::AnyTransport;
use crate::vault::{Credentials, Opening, Vault};

/// A person's identity: the same on every device of their home, derived from its key.
/// Equal identities compare equal and hash alike.
#[pyclass(module = "bucketsync", name = "Identity", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
pub struct Identity {
    public: String,
    fingerprint: String,
}

#[pymethods]
impl Identity {
    /// The public identity as text ("bsid1…", about 1,700 characters): give it to whoever
    /// shares a vault with you.
    #[getter]
    fn public(&self) -> &str {
        &self.public
    }

    /// Its short fingerprint ("21ZV-CDAN-2NX4-6JE3"): compare it with the other person through
    /// another channel before sharing or accepting.
    #[getter]
    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn __repr__(&self) -> String {
        format!("Identity(fingerprint='{}')", self.fingerprint)
    }
}

/// A vault this home made or accepted (`Vault.shared()`). Its key stays inside the home:
/// open it with `home.open_shared(label)`.
#[pyclass(module = "bucketsync", name = "SharedVault", frozen, get_all)]
pub struct SharedVault {
    /// The home's name for it, unique in the home (an accepted vault whose label the home had
    /// for another vault gets a number: "emma (2)").
    pub label: String,
    /// Its store URL.
    pub store: String,
    /// What this person may do in it: "read", "write" or "owner".
    pub role: String,
    /// The fingerprint of the person who granted it; None for a vault this home made.
    pub granted_by: Option<String>,
    /// When it was made or accepted, in seconds since the epoch.
    pub since: f64,
}

#[pymethods]
impl SharedVault {
    fn __repr__(&self) -> String {
        format!(
            "SharedVault(label={:?}, role='{}', store={:?}, granted_by={})",
            self.label,
            self.role,
            self.store,
            match &self.granted_by {
                Some(f) => format!("'{f}'"),
                None => "None".into(),
            }
        )
    }
}

impl From<&CoreSharedVault> for SharedVault {
    fn from(s: &CoreSharedVault) -> Self {
        SharedVault {
            label: s.label.clone(),
            store: s.store.clone(),
            role: s.role.as_str().to_owned(),
            granted_by: s.from.map(|f| f.to_string()),
            since: s.since.as_millis() as f64 / 1000.0,
        }
    }
}

/// How this device opens a shared vault: the arguments of `Vault.open` that apply to one.
pub struct OpenArgs {
    pub device: Option<String>,
    pub state: Option<PathBuf>,
    pub credentials: Option<Py<Credentials>>,
    pub transport: Option<PyObject>,
    pub wait: bool,
    pub flush_interval: f64,
    pub grace_days: f64,
    pub max_clock_skew_days: f64,
    pub max_future_days: f64,
}

impl OpenArgs {
    /// The arguments as keywords (for `accept_async`, which calls `_accept_until` with them).
    pub fn into_kwargs(self, py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let kwargs = PyDict::new(py);
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

    fn credentials(&self) -> Option<bucketsync::Credentials> {
        self.credentials.as_ref().map(|c| c.get().0.clone())
    }

    /// The app's transport given here, else the home's when the app gave it one; None for
    /// the built-in one of the shared vault's store.
    fn transport(&self, py: Python<'_>, home: &Vault) -> PyResult<Option<AnyTransport>> {
        match &self.transport {
            Some(callable) => AnyTransport::python(py, callable.clone_ref(py)).map(Some),
            None => Ok(home.transport.same_callable(py)),
        }
    }
}

/// The identity of the person whose home `home` is.
pub fn identity(py: Python<'_>, home: &Vault) -> PyResult<Identity> {
    let identity = py
        .allow_threads(|| home.session.identity())
        .map_err(to_py)?;
    Ok(Identity {
        public: identity.public().to_string(),
        fingerprint: identity.fingerprint().to_string(),
    })
}

/// The vaults `home` made or accepted, as known here.
pub fn shared(home: &Vault) -> PyResult<Vec<SharedVault>> {
    let shared = home.session.shared().map_err(to_py)?;
    Ok(shared.iter().map(SharedVault::from).collect())
}

/// Opens `shared`, a vault of `home`, remembering the home (for `share`) and the role.
fn open(
    py: Python<'_>,
    home: &Vault,
    shared: &CoreSharedVault,
    mode: OpenMode,
    args: &OpenArgs,
    transport: Option<AnyTransport>,
) -> PyResult<Vault> {
    let vault = Vault::open_as(
        py,
        Opening {
            store: &shared.store,
            key: shared.key(),
            device: args.device.as_deref(),
            state: args.state.clone(),
            credentials: args.credentials(),
            transport,
            wait: args.wait,
            flush_interval: args.flush_interval,
            mode,
            grace_days: args.grace_days,
            max_clock_skew_days: args.max_clock_skew_days,
            max_future_days: args.max_future_days,
            home: Some(Arc::clone(&home.session)),
        },
    )?;
    vault.session.set_role(shared.role);
    Ok(vault)
}

/// Makes a new shared vault in `store`, kept in `home` as `label`, and opens it (create mode).
pub fn create_shared(
    py: Python<'_>,
    home: &Vault,
    store: &str,
    label: &str,
    args: OpenArgs,
) -> PyResult<Vault> {
    let transport = args.transport(py, home)?;
    let shared = home.session.create_shared(store, label).map_err(to_py)?;
    open(py, home, &shared, OpenMode::Create, &args, transport)
}

/// Opens the vault `home` knows as `label` (join mode; a vault the person made is created
/// when it never was: `SharedVault::open_mode`).
pub fn open_shared(py: Python<'_>, home: &Vault, label: &str, args: OpenArgs) -> PyResult<Vault> {
    let transport = args.transport(py, home)?;
    let shared = home.session.shared_vault(label).map_err(to_py)?;
    open(py, home, &shared, shared.open_mode(), &args, transport)
}

/// Grants `vault` (opened through its home) to `public` with `role`; the invitation's text.
pub fn share(
    py: Python<'_>,
    vault: &Vault,
    public: &str,
    role: &str,
    cancel: Option<PyObject>,
) -> PyResult<String> {
    let role = Role::parse(role).map_err(to_py)?;
    let home = vault.home.as_ref().ok_or_else(|| {
        to_py(Error::Access(
            "this vault was not opened through its home: open it with create_shared, \
             open_shared or accept on the home to share it"
                .into(),
        ))
    })?;
    let stop = Stop::default();
    let invitation = vault.run(py, &stop, cancel.as_ref(), || {
        vault.session.share(home, public, role, &*vault.transport)
    })?;
    Ok(invitation.to_string())
}

/// Accepts `invitation` into `home` and opens the vault it grants (join mode).
pub fn accept(
    py: Python<'_>,
    home: &Vault,
    invitation: &str,
    args: OpenArgs,
    cancel: Option<PyObject>,
) -> PyResult<Vault> {
    // The invitation's store may be another than the home's: the app's transport, else the
    // built-in one for that store.
    let transport = match args.transport(py, home)? {
        Some(transport) => transport,
        None => {
            let store = Invitation::parse(invitation)
                .and_then(|i| Store::parse(&i.store))
                .map_err(to_py)?;
            AnyTransport::Builtin(BuiltinTransport::for_store(&store).map_err(to_py)?)
        }
    };
    let stop = Stop::default();
    let shared = home.run_with(py, &transport, &stop, cancel.as_ref(), || {
        home.session
            .accept(invitation, args.credentials(), &transport)
    })?;
    // A transport of its own: a built-in one keeps connections bound to the runtime that
    // made them (the home's), and the vault runs on another.
    let transport = args.transport(py, home)?;
    open(py, home, &shared, OpenMode::Join, &args, transport)
}
