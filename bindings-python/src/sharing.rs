//! What sharing with other people (the core's `bucketsync::io::sharing`) shows Python: a
//! home's identity, the vaults it made or accepted, and the members of a shared vault. The
//! `Vault` methods that make, open, grant, accept, list members and revoke are in vault.rs
//! (they open vaults).

use bucketsync::home::SharedVault as CoreSharedVault;
use bucketsync::membership::{Member as CoreMember, Standing};
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

/// What an invitation says (`bucketsync.invitation_info(text)`), read without any request.
/// None of it is verified yet: pass `accept` the granter's fingerprint as they told it to you
/// (`granted_by=`), not this one.
#[pyclass(module = "bucketsync", name = "InvitationInfo", frozen, get_all)]
pub struct InvitationInfo {
    /// The shared vault's store URL (checked against the grant's signature by `accept`).
    pub store: String,
    /// The shared vault's id (32 hex digits).
    pub vault_id: String,
    /// The fingerprint of who the invitation says granted it.
    pub granted_by: String,
    /// The /sign URL of the signer to reach the store through, if one is named. Not signed.
    pub signer: Option<String>,
}

#[pymethods]
impl InvitationInfo {
    fn __repr__(&self) -> String {
        format!(
            "InvitationInfo(store={:?}, vault_id='{}', granted_by='{}', signer={})",
            self.store,
            self.vault_id,
            self.granted_by,
            match &self.signer {
                Some(url) => format!("{url:?}"),
                None => "None".into(),
            }
        )
    }
}

/// Reads an invitation ("bsinv1…") without any request: where the vault is, who granted it,
/// and the signer it names. Raises ConfigError for text that is not an invitation.
#[pyfunction]
pub fn invitation_info(invitation: &str) -> PyResult<InvitationInfo> {
    let invitation =
        bucketsync::grant::Invitation::parse(invitation).map_err(crate::errors::to_py)?;
    Ok(InvitationInfo {
        store: invitation.store,
        vault_id: invitation.vault.to_string(),
        granted_by: invitation.from.to_string(),
        signer: invitation.signer,
    })
}

/// A person of a shared vault (`Vault.members()`), as the member statements this device has
/// read say: their role, or their revocation, since when and who said so. The repr shows the
/// fingerprint, role and signer only (nothing here is secret; the public text is long).
#[pyclass(module = "bucketsync", name = "Member", frozen, get_all)]
pub struct Member {
    /// Their fingerprint ("21ZV-CDAN-2NX4-6JE3"): what `Vault.revoke` takes.
    pub fingerprint: String,
    /// Their public identity as text ("bsid1…").
    pub public: String,
    /// "read", "write" or "owner"; "revoked" when they are no longer a member.
    pub role: String,
    /// Since when (the deciding statement's time, by its signer's clock), in seconds since
    /// the epoch.
    pub since: f64,
    /// The fingerprint of the person who signed the deciding statement (who granted the
    /// role, or who revoked them; the vault's founder for the founder).
    pub granted_by: String,
    /// Whether their writes count for the vault's readers (role "write" or "owner").
    pub may_write: bool,
    /// For a revoked member: (device id, segments) of each of their devices, whose writes
    /// count up to that many segments and no further; empty otherwise.
    pub pins: Vec<(String, u64)>,
}

#[pymethods]
impl Member {
    fn __repr__(&self) -> String {
        format!(
            "Member(fingerprint='{}', role='{}', granted_by='{}')",
            self.fingerprint, self.role, self.granted_by
        )
    }
}

impl From<&CoreMember> for Member {
    fn from(m: &CoreMember) -> Self {
        let (role, pins) = match &m.standing {
            Standing::Member(role) => (role.as_str().to_owned(), Vec::new()),
            Standing::Revoked(pins) => (
                "revoked".to_owned(),
                pins.iter()
                    .map(|(device, segments)| (device.to_string(), *segments))
                    .collect(),
            ),
        };
        Member {
            fingerprint: m.identity.fingerprint().to_string(),
            public: m.identity.to_string(),
            role,
            since: m.since.as_millis() as f64 / 1000.0,
            granted_by: m.by.to_string(),
            may_write: m.may_write(),
            pins,
        }
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
