//! Sharing through sessions: a person's home ([`Session::identity`], [`Session::create_shared`],
//! [`Session::shared`], [`Session::accept`]) and a shared vault granted to someone else
//! ([`Session::share`]).
//!
//! Identities, grants sealed to them, invitations, the home records that keep every shared
//! vault's keys for all of a person's devices, and the members of a shared vault
//! ([`Session::enter_shared`], [`Session::members`], [`Session::revoke`]; FORMAT §17).
//!
//! Making, opening and accepting a shared vault end to end, with what it takes from its home,
//! is [`crate::io::shared_vaults`]'s; the rule for its credentials is [`crate::io::reach`]'s.

use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::grant::{self, GenerationKey, Grant, Invitation, Role};
use crate::home::{check_label, SharedVault, SHARED_PREFIX};
use crate::http::{Method, Request, RequestKind};
use crate::identity::{Identity, PublicIdentity};
use crate::ids::RequestId;
use crate::io::driver::Transport;
use crate::io::session::Session;
use crate::key::VaultKey;
use crate::membership::Member;
use crate::s3;
use crate::sign::{SigV4, Signer};
use crate::store::Store;

/// `Access` when `opened_through` names a home: the vault asked to make, open or accept
/// shared vaults was itself opened through a home, and a shared vault is never a home (its
/// members would all hold the identity and the keys kept in it).
///
/// # Errors
/// As said.
pub fn as_home<H>(opened_through: Option<&H>) -> Result<()> {
    match opened_through {
        Some(_) => Err(Error::Access(
            "this is a shared vault, not a home: make, open and accept vaults in your own home"
                .into(),
        )),
        None => Ok(()),
    }
}

/// The home a shared vault was opened through, needed to share it.
///
/// # Errors
/// `Access` when it was not opened through its home.
pub fn home_of<H>(opened_through: Option<&H>) -> Result<&H> {
    opened_through.ok_or_else(|| {
        Error::Access(
            "this vault was not opened through its home: open it from the home (create, open \
             or accept the shared vault there) to share it"
                .into(),
        )
    })
}

impl Session {
    /// The identity of the person whose home this vault is: every device of the home has the
    /// same one, derived from the home's key.
    ///
    /// # Errors
    /// `Config` when the vault is closed.
    pub fn identity(&self) -> Result<Identity> {
        self.read(|e| e.identity())
    }

    /// The vaults this home made or accepted, by label. A record that does not decode (one
    /// written by a later release, a damaged one) is left out, so that the others stay usable;
    /// [`Session::shared_vault`] names its error.
    ///
    /// # Errors
    /// `Config` when the vault is closed.
    pub fn shared(&self) -> Result<Vec<SharedVault>> {
        let keys = self.keys(SHARED_PREFIX.as_bytes())?;
        let mut shared = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(value) = self.get(&key)? {
                if let Ok(vault) = SharedVault::decode(&key, &value) {
                    shared.push(vault);
                }
            }
        }
        Ok(shared)
    }

    /// The vault this home knows as `label`.
    ///
    /// # Errors
    /// `Config` when there is none; as [`Session::shared`].
    pub fn shared_vault(&self, label: &str) -> Result<SharedVault> {
        check_label(label)?;
        let key = SharedVault::record_key(label);
        match self.get(&key)? {
            Some(value) => SharedVault::decode(&key, &value),
            None => Err(Error::Config(format!(
                "this home has no shared vault labelled {label:?}"
            ))),
        }
    }

    /// Makes a new vault to share, with a fresh key, kept in this home as `label` with the
    /// role `owner`. Open it with the returned vault's store and key (create mode) to write
    /// into it, on this device or any other of the home's.
    ///
    /// # Errors
    /// `Config` for a bad label or store URL, or a label the home has already.
    pub fn create_shared(&self, store: &str, label: &str) -> Result<SharedVault> {
        check_label(label)?;
        let store = Store::parse(store)?;
        if self.get(&SharedVault::record_key(label))?.is_some() {
            return Err(Error::Config(format!(
                "this home has a shared vault labelled {label:?} already"
            )));
        }
        let shared = SharedVault {
            label: label.to_owned(),
            store: store.url(),
            role: Role::Owner,
            keys: vec![GenerationKey {
                generation: 0,
                key: VaultKey::generate()?,
            }],
            from: None,
            since: self.now(),
            founder: None,
            statement: None,
        };
        self.put(SharedVault::record_key(label), shared.encode())?;
        Ok(shared)
    }

    /// Grants this vault to the person whose public identity is `recipient`, with `role`:
    /// seals its keys to them in a grant object in the vault's folder (one PUT) and returns
    /// the invitation to send them. `home` is the granter's home, which must hold this vault
    /// with the role `owner`.
    ///
    /// # Errors
    /// `Access` when `home` does not own this vault; `Config` for a bad recipient; the PUT's
    /// error.
    pub async fn share<T: Transport + ?Sized>(
        &self,
        home: &Session,
        recipient: &str,
        role: Role,
        transport: &T,
    ) -> Result<Invitation> {
        self.share_through(home, recipient, role, None, transport)
            .await
    }

    /// [`Session::share`], the invitation naming `signer` (the `/sign` URL of a `bucketsync
    /// signer`) as the way the recipient reaches the store, with a token you give them.
    ///
    /// # Errors
    /// As [`Session::share`]; `Config` (before any request) for a signer URL that is not
    /// `http(s)://host…` or carries credentials.
    pub async fn share_through<T: Transport + ?Sized>(
        &self,
        home: &Session,
        recipient: &str,
        role: Role,
        signer: Option<&str>,
        transport: &T,
    ) -> Result<Invitation> {
        if let Some(url) = signer {
            crate::grant::check_signer_url(url)?;
        }
        let recipient = PublicIdentity::parse(recipient)?;
        let vault = self.read(|e| e.vault_id())?;
        let entry = home
            .shared()?
            .into_iter()
            .find(|s| s.key().vault_id() == vault)
            .ok_or_else(|| {
                Error::Access("this vault is not one of the home's shared vaults".into())
            })?;
        if entry.role != Role::Owner {
            return Err(Error::Access(format!(
                "only an owner may share {:?}; this home has the role {}",
                entry.label, entry.role
            )));
        }
        let granter = home.identity()?;
        if !self.read(|e| e.is_shared())? {
            return Err(Error::Access(
                "open this vault through its home to share it (its members are kept there)".into(),
            ));
        }
        let now = self.now();
        // The statement that lets the recipient in first: a grant whose statement is missing
        // gives a key whose writes count for nothing, never the other way round.
        let statement = self.change(|e| e.admit(&recipient, role, now))??;
        let grant = Grant {
            vault,
            label: entry.label.clone(),
            store: entry.store.clone(),
            role,
            keys: {
                // Every generation this device holds: a member let in after a revocation reads
                // what was written before it too.
                let mut keys = entry.keys.clone();
                for later in self.read(|e| e.later_keys())? {
                    if !keys.iter().any(|k| k.generation == later.generation) {
                        keys.push(later);
                    }
                }
                keys
            },
            granter: granter.public().clone(),
            granted: now,
            founder: entry.founder.unwrap_or_else(|| granter.fingerprint()),
            statement,
        };
        let (request, invitation) =
            self.configure(|e| e.grant_request(&grant, &granter, &recipient, now))??;
        let context = format!("PUT {}", invitation.grant_name());
        let response = transport.send(request).await?;
        if !response.is_success() {
            return Err(s3::error_from_response(&response, context));
        }
        match signer {
            Some(url) => invitation.with_signer(url),
            None => Ok(invitation),
        }
    }

    /// Makes this session the replica of `shared`, a vault of the home `home`: it writes with
    /// the role the home holds (a `read` member's device refuses writes), signs what it writes
    /// with the person's identity, and counts only what members may write, trust starting at
    /// the vault's founder.
    ///
    /// # Errors
    /// `Config` when either vault is closed, or `shared` is not this session's vault.
    pub fn enter_shared(&self, home: &Session, shared: &SharedVault) -> Result<()> {
        let identity = home.identity()?;
        if self.read(|e| e.vault_id())? != shared.key().vault_id() {
            return Err(Error::Config(format!(
                "this session is not the vault {:?}",
                shared.label
            )));
        }
        let founder = shared.founder.unwrap_or_else(|| identity.fingerprint());
        // The founder's statement about themself is dated when the vault was made, so that
        // every device of theirs signs the very same one.
        let founded = shared.since;
        self.change(|e| {
            e.set_sharing(
                identity,
                founder,
                &shared.keys,
                shared.statement.clone(),
                founded,
            )
        })??;
        self.set_role(shared.role);
        Ok(())
    }

    /// The people of this shared vault (empty when it is not one): each one's identity, role
    /// or revocation, since when and who said so.
    ///
    /// # Errors
    /// `Config` when the vault is closed.
    pub fn members(&self) -> Result<Vec<Member>> {
        self.read(|e| e.members())
    }

    /// Revokes the member whose fingerprint is `who` (as a person types it): the next sync
    /// publishes that their writes count up to what this device has merged of them, nothing
    /// after. It starts a new key generation: the next sync seals it to every member left
    /// (one grant each, before the revocation is published) and re-seals the live records
    /// under it (a checkpoint). Returns the member as they were.
    ///
    /// What the revoked person keeps: everything they could read until now and the older key
    /// generations (revoke their bucket credentials or signer token too). What they lose:
    /// every record written and every file stored after.
    ///
    /// # Errors
    /// `Access` when this person is not an owner; `Config` when no member has that fingerprint
    /// or it is the founder's or one's own.
    pub fn revoke(&self, who: &str) -> Result<Member> {
        let now = self.now();
        self.change(|e| e.revoke(who, now))?
    }

    /// Accepts an invitation with this home's identity: reads its grant (one GET, signed with
    /// `credentials` for the invitation's store; unsigned without, for a transport that signs
    /// itself: never with the home's or the environment's, see [`crate::io::reach`]), checks
    /// it, and keeps the vault in this home. Open it with the returned vault's store and key
    /// ([`SharedVault::open_mode`]). A label the home has for another vault gets a number
    /// (`emma (2)`); accepting a vault the home has already updates its record, unless that
    /// record is stronger (made here, or a higher role): it is then kept and returned as it
    /// is. Nothing says who sent the invitation but the invitation itself: pass the
    /// fingerprint the granter told you out of band to [`Session::accept_from`].
    ///
    /// # Errors
    /// `Config` for a text that is not an invitation; `Access` when the grant is sealed to
    /// another identity; `NotFound` when it is gone (withdrawn, or the wrong store); `Corrupt`
    /// when it fails its checks.
    pub async fn accept<T: Transport + ?Sized>(
        &self,
        invitation: &str,
        credentials: Option<Credentials>,
        transport: &T,
    ) -> Result<SharedVault> {
        self.accept_from(invitation, None, credentials, transport)
            .await
    }

    /// [`Session::accept`], refusing (before any request) an invitation that does not come
    /// from the person whose fingerprint is `expected_from` (as they told it, out of band).
    ///
    /// # Errors
    /// `Access` when the invitation names another granter; as [`Session::accept`].
    pub async fn accept_from<T: Transport + ?Sized>(
        &self,
        invitation: &str,
        expected_from: Option<&str>,
        credentials: Option<Credentials>,
        transport: &T,
    ) -> Result<SharedVault> {
        let invitation = Invitation::parse(invitation)?;
        if let Some(expected) = expected_from {
            if !invitation.from.matches(expected) {
                return Err(Error::Access(format!(
                    "the invitation comes from {}, not from {expected:?}",
                    invitation.from
                )));
            }
        }
        let store = Store::parse(&invitation.store)?;
        let name = invitation.grant_name();
        let mut request = Request {
            id: RequestId(0),
            kind: RequestKind::GetGrant,
            method: Method::Get,
            url: store.object_url(&format!("{}{}/{name}", store.prefix(), invitation.vault)),
            headers: Vec::new(),
            body: bytes::Bytes::new(),
        };
        if let Some(region) = store.region() {
            if let Some(credentials) = credentials {
                let offset = self.read(|e| e.clock_offset_ms())?;
                let signing_time = crate::Timestamp(self.now().0.saturating_add_signed(offset));
                SigV4::new(credentials, region.to_owned()).sign(&mut request, signing_time)?;
            }
        }
        let response = transport.send(request).await?;
        if !response.is_success() {
            return Err(s3::error_from_response(
                &response,
                format!(
                    "GET {name} (the invitation's grant) in {}",
                    store.display_name()
                ),
            ));
        }
        let identity = self.identity()?;
        let grant = grant::open(&response.body, &invitation, &identity)?;
        // A vault the home has already: its record is updated under its label, unless it is
        // stronger than the grant (made here, or a higher role).
        let known = self
            .shared()?
            .into_iter()
            .find(|s| s.key().vault_id() == grant.vault);
        let label = match known {
            Some(known) if known.from.is_none() || known.role > grant.role => return Ok(known),
            Some(known) => known.label,
            None => {
                let base = usable_label(&grant.label);
                let mut label = base.clone();
                let mut n = 2;
                while self.get(&SharedVault::record_key(&label))?.is_some() {
                    label = format!("{base} ({n})");
                    n += 1;
                }
                label
            }
        };
        let shared = SharedVault {
            label,
            store: invitation.store.clone(),
            role: grant.role,
            keys: grant.keys,
            from: Some(invitation.from),
            since: self.now(),
            founder: Some(grant.founder),
            statement: grant.statement.clone(),
        };
        self.put(SharedVault::record_key(&shared.label), shared.encode())?;
        Ok(shared)
    }
}

/// A label the home can keep for a granted vault whose granter chose `wanted`: `/` and
/// control characters become `_`, at most 180 bytes (room for a number), `shared` when empty.
fn usable_label(wanted: &str) -> String {
    let mut label = String::new();
    for c in wanted.trim().chars() {
        let c = if c == '/' || c.is_control() { '_' } else { c };
        if label.len() + c.len_utf8() > 180 {
            break;
        }
        label.push(c);
    }
    if label.is_empty() {
        label.push_str("shared");
    }
    label
}

#[cfg(test)]
mod tests {
    use super::usable_label;
    use crate::home::check_label;

    #[test]
    fn a_granters_label_becomes_one_the_home_can_keep() {
        for (wanted, kept) in [
            ("emma", "emma"),
            ("a/b", "a_b"),
            ("\u{1b}]0;x\u{7}", "_]0;x_"),
            ("", "shared"),
            ("  ", "shared"),
        ] {
            assert_eq!(usable_label(wanted), kept);
            check_label(&format!("{} (12)", usable_label(wanted))).unwrap();
        }
        let long = usable_label(&"é".repeat(150));
        assert!(long.len() <= 180 && long.chars().all(|c| c == 'é'));
        check_label(&format!("{long} (99)")).unwrap();
    }
}
