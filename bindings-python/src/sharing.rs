//! What sharing with other people (the core's `bucketsync::io::sharing`) shows Python: a
//! home's identity and the vaults it made or accepted. The `Vault` methods that make, open,
//! grant and accept them are in vault.rs (they open vaults).

use bucketsync::home::SharedVault as CoreSharedVault;
use pyo3::prelude::*;

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

impl From<&bucketsync::identity::Identity> for Identity {
    fn from(identity: &bucketsync::identity::Identity) -> Self {
        Identity {
            public: identity.public().to_string(),
            fingerprint: identity.fingerprint().to_string(),
        }
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
