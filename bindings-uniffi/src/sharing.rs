//! Sharing with other people (the core's `bucketsync::io::sharing`): a person's vault is their
//! home, which holds their identity and the keys of the vaults they made or accepted; a
//! shared vault opened through the home can be shared further by an owner.

use std::sync::Arc;

use bucketsync::grant::Invitation;
use bucketsync::home::SharedVault;
use bucketsync::io::reach::{Given, Nothing};
use bucketsync::io::shared_vaults::{OpenedShared, SharedOptions};
use bucketsync::io::sharing;
use bucketsync::session::StateLocation;

use crate::{AnyTransport, BucketsyncError, Credentials, HostTransport, Vault};

/// A person's identity: the same on every device of their home, derived from its key.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Identity {
    /// The public identity as text (`bsid1…`): give it to whoever shares a vault with you.
    pub public: String,
    /// Its short fingerprint (`21ZV-CDAN-2NX4-6JE3`): compare it with the other person through
    /// another channel before sharing or accepting.
    pub fingerprint: String,
}

/// What a person may do in a shared vault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    /// Read the records (this device refuses its own writes with `Access`).
    Read,
    /// Read and write them.
    Write,
    /// Read, write, and share the vault with others.
    Owner,
}

impl From<bucketsync::grant::Role> for Role {
    fn from(role: bucketsync::grant::Role) -> Self {
        match role {
            bucketsync::grant::Role::Read => Role::Read,
            bucketsync::grant::Role::Write => Role::Write,
            bucketsync::grant::Role::Owner => Role::Owner,
        }
    }
}

impl From<Role> for bucketsync::grant::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Read => bucketsync::grant::Role::Read,
            Role::Write => bucketsync::grant::Role::Write,
            Role::Owner => bucketsync::grant::Role::Owner,
        }
    }
}

/// A vault this home made or accepted (its key stays inside the home).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SharedVaultInfo {
    /// The home's name for it, unique in the home (an accepted vault whose label the home had
    /// for another vault gets a number: `emma (2)`).
    pub label: String,
    /// Its store URL.
    pub store: String,
    /// What this person may do in it.
    pub role: Role,
    /// The fingerprint of the person who granted it; null for a vault made by this home.
    pub granted_by: Option<String>,
    /// When it was made or accepted, in milliseconds since the Unix epoch.
    pub since_ms: u64,
}

impl From<&SharedVault> for SharedVaultInfo {
    fn from(s: &SharedVault) -> Self {
        SharedVaultInfo {
            label: s.label.clone(),
            store: s.store.clone(),
            role: s.role.into(),
            granted_by: s.from.map(|f| f.to_string()),
            since_ms: s.since.as_millis(),
        }
    }
}

/// What an invitation says (`invitationInfo`), read without any request. None of it is
/// verified yet: pass `accept` the granter's fingerprint as they told it to you, not this one.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct InvitationInfo {
    /// The shared vault's store URL (checked against the grant's signature by `accept`).
    pub store: String,
    /// The shared vault's id (32 hex digits).
    pub vault_id: String,
    /// The fingerprint of who the invitation says granted it.
    pub granted_by: String,
    /// The `/sign` URL of the signer to reach the store through, if one is named. Not signed.
    pub signer: Option<String>,
}

/// Reads an invitation (`bsinv1…`) without any request. `Config` for other text.
#[uniffi::export]
pub fn invitation_info(invitation: String) -> Result<InvitationInfo, BucketsyncError> {
    let invitation = Invitation::parse(&invitation)?;
    Ok(InvitationInfo {
        store: invitation.store,
        vault_id: invitation.vault.to_string(),
        granted_by: invitation.from.to_string(),
        signer: invitation.signer,
    })
}

/// One device of a revoked member, and how much of what it wrote still counts.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RevocationPin {
    /// The device's id (32 hex digits).
    pub device: String,
    /// Its segments `1..=segments` count (what the revoking owner's device had merged of it);
    /// nothing it wrote after them does.
    pub segments: u64,
}

/// One person of a shared vault, as the member statements read so far say.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Member {
    /// Their fingerprint (`21ZV-CDAN-2NX4-6JE3`): what `revoke` takes.
    pub fingerprint: String,
    /// Their public identity (`bsid1…`).
    pub public_identity: String,
    /// Their role; null once they are revoked.
    pub role: Option<Role>,
    /// Whether an owner revoked them (their writes after `pins` do not count).
    pub revoked: bool,
    /// The fingerprint of the owner who signed their role or revocation (the founder's own
    /// for the founder).
    pub granted_by: String,
    /// Since when they have this role or were revoked, in milliseconds since the Unix epoch.
    pub since_ms: u64,
    /// Whether their writes count (role write or owner, not revoked).
    pub may_write: bool,
    /// For a revoked member, their devices and how much of each one's writes count; empty
    /// otherwise.
    pub pins: Vec<RevocationPin>,
}

impl From<bucketsync::membership::Member> for Member {
    fn from(m: bucketsync::membership::Member) -> Self {
        use bucketsync::membership::Standing;
        let may_write = m.may_write();
        let (role, pins) = match m.standing {
            Standing::Member(role) => (Some(role.into()), Vec::new()),
            Standing::Revoked(pins) => (
                None,
                pins.into_iter()
                    .map(|(device, segments)| RevocationPin {
                        device: device.to_string(),
                        segments,
                    })
                    .collect(),
            ),
        };
        Member {
            fingerprint: m.identity.fingerprint().to_string(),
            public_identity: m.identity.to_string(),
            revoked: role.is_none(),
            role,
            granted_by: m.by.to_string(),
            since_ms: m.since.as_millis(),
            may_write,
            pins,
        }
    }
}

/// What the app gives for a shared vault, as the methods take it.
struct SharedArgs {
    state_path: Option<std::path::PathBuf>,
    device: Option<String>,
    wait_for_lock: bool,
    credentials: Option<Arc<Credentials>>,
    transport: Option<Arc<dyn HostTransport>>,
}

impl SharedArgs {
    fn new(
        state_path: Option<String>,
        device: Option<String>,
        wait_for_lock: bool,
        credentials: Option<Arc<Credentials>>,
        transport: Option<Arc<dyn HostTransport>>,
    ) -> Self {
        SharedArgs {
            state_path: state_path.map(Into::into),
            device,
            wait_for_lock,
            credentials,
            transport,
        }
    }

    /// The vault's own options.
    fn options(&self) -> SharedOptions<'_> {
        SharedOptions {
            device: self.device.as_deref(),
            ..SharedOptions::new(StateLocation::file_or_memory(
                self.state_path.as_deref(),
                self.wait_for_lock,
            ))
        }
    }

    /// What it reaches its store with.
    fn given(&self) -> Given<Arc<dyn HostTransport>, Nothing> {
        Given {
            credentials: self.credentials.as_ref().map(|c| c.0.clone()),
            transport: self.transport.clone(),
            ..Given::default()
        }
    }
}

impl Vault {
    /// The object of a shared vault the core opened through this home.
    fn opened(
        &self,
        opened: OpenedShared<Arc<dyn HostTransport>, Nothing>,
    ) -> Result<Arc<Vault>, BucketsyncError> {
        Vault::wrap(opened.vault, opened.reach, Some(self.session.clone()))
    }
}

impl Vault {
    /// `Access` for a vault opened through a home: a shared vault is never a home (its
    /// members would all hold the identity, and the keys kept in it).
    fn as_home(&self) -> Result<(), BucketsyncError> {
        Ok(sharing::as_home(self.home.as_ref())?)
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Vault {
    /// The identity of the person whose home this vault is (any vault can be a home).
    pub fn identity(&self) -> Result<Identity, BucketsyncError> {
        self.as_home()?;
        let identity = self.session.identity()?;
        Ok(Identity {
            public: identity.public().to_string(),
            fingerprint: identity.fingerprint().to_string(),
        })
    }

    /// The vaults this home made or accepted, by label, as known here (sync the home to see
    /// those its other devices made or accepted).
    pub fn shared(&self) -> Result<Vec<SharedVaultInfo>, BucketsyncError> {
        self.as_home()?;
        Ok(self
            .session
            .shared()?
            .iter()
            .map(SharedVaultInfo::from)
            .collect())
    }

    /// Makes a new vault to share in `store`, with a fresh key, kept in this home as `label`
    /// with the role owner (a local write to the home: sync the home so its other devices
    /// see it), and opens it to create it (its first sync creates it in the store).
    /// `state_path`, `device` and `wait_for_lock` as for `open`; `transport`: the app's
    /// transport for the vault's store, else this home's when it has one, else the built-in
    /// one (with the home's deadlines). `credentials`: the home's (given, or from the AWS_*
    /// environment) serve only a store on the home's own service (the same endpoint and
    /// region); a store elsewhere gets only the credentials passed here, else its requests go
    /// unsigned and fail with `Auth` saying so. The vault keeps this home's state open (for
    /// `share`) while it lives.
    /// `Config` for a bad label or store URL, or a label the home has already.
    #[uniffi::method(default(state_path = None, device = None, credentials = None, transport = None, wait_for_lock = false))]
    #[allow(clippy::too_many_arguments)]
    pub fn create_shared(
        &self,
        store: String,
        label: String,
        state_path: Option<String>,
        device: Option<String>,
        credentials: Option<Arc<Credentials>>,
        transport: Option<Arc<dyn HostTransport>>,
        wait_for_lock: bool,
    ) -> Result<Arc<Vault>, BucketsyncError> {
        let args = SharedArgs::new(state_path, device, wait_for_lock, credentials, transport);
        let opened = self.session.create_shared_vault(
            &self.reach,
            &store,
            &label,
            args.options(),
            args.given(),
        )?;
        self.opened(opened)
    }

    /// Opens the vault this home knows as `label` (see `shared`), on this device or any other
    /// of the home's, with the home's role in it (read: this device refuses its own writes
    /// with `Access`). Arguments, and the home's state kept open, as for `create_shared`.
    /// `Config` when the home has no such label.
    #[uniffi::method(default(state_path = None, device = None, credentials = None, transport = None, wait_for_lock = false))]
    pub fn open_shared(
        &self,
        label: String,
        state_path: Option<String>,
        device: Option<String>,
        credentials: Option<Arc<Credentials>>,
        transport: Option<Arc<dyn HostTransport>>,
        wait_for_lock: bool,
    ) -> Result<Arc<Vault>, BucketsyncError> {
        let args = SharedArgs::new(state_path, device, wait_for_lock, credentials, transport);
        let opened =
            self.session
                .open_shared_vault(&self.reach, &label, args.options(), args.given())?;
        self.opened(opened)
    }

    /// Grants this vault to the person whose public identity (`bsid1…`) is `public`, with
    /// `role` (read when left out): one PUT into the vault's store. Returns the invitation
    /// (`bsinv1…`) to send them; only they can accept it. `signer_url`: the `/sign` URL of a
    /// `bucketsync signer` through which they reach the store (https, or http on this machine
    /// only; give them a member token too); the invitation names it, unsigned, so send it over
    /// a channel you trust. `Access` when
    /// this vault was not opened through its home (`create_shared`, `open_shared` or
    /// `accept`) or the home's role in it is not owner; `Config` for a bad public identity or
    /// signer URL (before any request).
    #[uniffi::method(default(role = None, signer_url = None))]
    pub async fn share(
        &self,
        public: String,
        role: Option<Role>,
        signer_url: Option<String>,
    ) -> Result<String, BucketsyncError> {
        let home = sharing::home_of(self.home.as_ref())?;
        let role = role.map_or_else(bucketsync::grant::Role::default, Into::into);
        let invitation = self
            .session
            .share_through(home, &public, role, signer_url.as_deref(), &*self.transport)
            .await?;
        Ok(invitation.to_string())
    }

    /// The people of this shared vault as the statements this device has read say (sync to
    /// see the latest): each one's fingerprint, role or revocation, since when and who said
    /// so. Empty for a vault that is not shared (not opened through its home). Local state
    /// only.
    pub fn members(&self) -> Result<Vec<Member>, BucketsyncError> {
        Ok(self
            .session
            .members()?
            .into_iter()
            .map(Member::from)
            .collect())
    }

    /// Revokes the member whose fingerprint is `fingerprint` (as a person types it: case and
    /// dashes do not matter): what their devices wrote counts up to what this device has
    /// merged of each, nothing after, for every reader; their own next sync fails with
    /// `Access`. No I/O: it signs a statement that the next sync publishes. Returns the member
    /// as they were. A new key generation starts: the next sync seals it to every member left
    /// and re-seals the records under it; files stored later are sealed under it too. They keep
    /// what they could read until now and the older keys (revoke their bucket credentials or
    /// signer token too).
    /// `Access` when this person is not an owner of the vault (or it is not shared);
    /// `Config` when no member has that fingerprint, or it is the founder's or one's own.
    pub fn revoke(&self, fingerprint: String) -> Result<Member, BucketsyncError> {
        Ok(self.session.revoke(&fingerprint)?.into())
    }

    /// Accepts an invitation with this home's identity: reads its grant (one GET in the
    /// invitation's store, signed as `create_shared` says: the home's credentials only on the
    /// home's own service, never on one an invitation names), keeps the vault in this home (a
    /// local write to the home: sync the home so its other devices see it; its label is in
    /// `shared`), and opens it (join mode). Other arguments, and the home's state kept open,
    /// as for `create_shared`.
    /// `granted_by`: the granter's fingerprint as they told it to you out of band (the
    /// invitation alone says who sent it): an invitation from anyone else fails with `Access`
    /// before anything is fetched.
    /// `Config` for a text that is not an invitation; `Access` when it was made for another
    /// identity or another granter, or on a shared vault (only a home accepts); `NotFound`
    /// when its grant is gone (withdrawn, or the wrong store).
    #[uniffi::method(default(state_path = None, device = None, credentials = None, transport = None, wait_for_lock = false, granted_by = None))]
    #[allow(clippy::too_many_arguments)]
    pub async fn accept(
        &self,
        invitation: String,
        state_path: Option<String>,
        device: Option<String>,
        credentials: Option<Arc<Credentials>>,
        transport: Option<Arc<dyn HostTransport>>,
        wait_for_lock: bool,
        granted_by: Option<String>,
    ) -> Result<Arc<Vault>, BucketsyncError> {
        let args = SharedArgs::new(state_path, device, wait_for_lock, credentials, transport);
        let opened = self
            .session
            .accept_shared_vault(
                &self.reach,
                &invitation,
                granted_by.as_deref(),
                args.options(),
                args.given(),
                AnyTransport::for_reach,
            )
            .await?;
        self.opened(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VaultKey;

    fn home(dir: &std::path::Path, name: &str) -> Arc<Vault> {
        let store = format!("file://{}/{name}", dir.display());
        let key = Arc::new(VaultKey(bucketsync::VaultKey::generate().unwrap()));
        Vault::open(store, key, None, None, None, None, false, true, None).unwrap()
    }

    /// A fresh folder for one test's stores.
    fn temp_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "bucketsync-uniffi-sharing-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn alice_shares_with_bob_carol_and_a_writer_cannot_use_or_reshare() {
        let dir = temp_dir();
        runtime().block_on(async {
            let (alice, bob, carol) = (home(&dir, "a"), home(&dir, "b"), home(&dir, "c"));
            let emma_store = format!("file://{}/emma", dir.display());
            let emma = alice
                .create_shared(
                    emma_store.clone(),
                    "emma".into(),
                    None,
                    None,
                    None,
                    None,
                    false,
                )
                .unwrap();
            emma.put_text("k".into(), "from alice".into()).unwrap();
            emma.sync().await.unwrap();
            let listed = alice.shared().unwrap();
            assert_eq!(listed.len(), 1);
            assert_eq!(
                (
                    listed[0].label.as_str(),
                    listed[0].store.as_str(),
                    listed[0].role
                ),
                ("emma", emma_store.as_str(), Role::Owner)
            );
            assert_eq!(listed[0].granted_by, None);
            // A vault opened any other way cannot share.
            let plain = home(&dir, "plain");
            let bob_id = bob.identity().unwrap();
            assert!(matches!(
                plain.share(bob_id.public.clone(), None, None).await,
                Err(BucketsyncError::Access(m)) if m.contains("not opened through its home")
            ));
            let invitation = emma
                .share(bob_id.public.clone(), Some(Role::Write), None)
                .await
                .unwrap();
            assert!(matches!(
                carol
                    .accept(invitation.clone(), None, None, None, None, false, None)
                    .await,
                Err(BucketsyncError::Access(_))
            ));
            // From another granter than the one Bob was told: refused.
            assert!(matches!(
                bob.accept(
                    invitation.clone(),
                    None,
                    None,
                    None,
                    None,
                    false,
                    Some("0000-0000-0000-0000".into())
                )
                .await,
                Err(BucketsyncError::Access(m)) if m.contains("comes from")
            ));
            let alice_fp = alice.identity().unwrap().fingerprint;
            let bobs = bob
                .accept(invitation, None, None, None, None, false, Some(alice_fp))
                .await
                .unwrap();
            // A shared vault is not a home.
            assert!(matches!(bobs.identity(), Err(BucketsyncError::Access(_))));
            assert!(matches!(bobs.shared(), Err(BucketsyncError::Access(_))));
            let info = &bob.shared().unwrap()[0];
            assert_eq!((info.label.as_str(), info.role), ("emma", Role::Write));
            assert_eq!(info.granted_by, Some(alice.identity().unwrap().fingerprint));
            bobs.sync().await.unwrap();
            assert_eq!(
                bobs.get_text("k".into()).unwrap().as_deref(),
                Some("from alice")
            );
            bobs.put_text("k".into(), "from bob".into()).unwrap();
            bobs.sync().await.unwrap();
            drop(emma);
            let again = alice
                .open_shared("emma".into(), None, None, None, None, false)
                .unwrap();
            again.sync().await.unwrap();
            assert_eq!(
                again.get_text("k".into()).unwrap().as_deref(),
                Some("from bob")
            );
            let carol_id = carol.identity().unwrap().public;
            assert!(matches!(
                bobs.share(carol_id.clone(), None, None).await,
                Err(BucketsyncError::Access(_))
            ));
            // A reader's device refuses its own writes.
            let to_carol = again.share(carol_id, None, None).await.unwrap();
            let carols = carol
                .accept(to_carol, None, None, None, None, false, None)
                .await
                .unwrap();
            assert_eq!(carol.shared().unwrap()[0].role, Role::Read);
            assert!(matches!(
                carols.put_text("k".into(), "from carol".into()),
                Err(BucketsyncError::Access(_))
            ));
            assert!(matches!(
                alice.open_shared("nobody".into(), None, None, None, None, false),
                Err(BucketsyncError::Config(_))
            ));
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `who`'s entry in `members`.
    fn member<'a>(members: &'a [Member], who: &str) -> &'a Member {
        members
            .iter()
            .find(|m| m.fingerprint == who)
            .unwrap_or_else(|| panic!("{who} is not in {members:?}"))
    }

    #[test]
    fn members_are_listed_and_an_owner_revokes_a_writer() {
        let dir = temp_dir();
        runtime().block_on(async {
            let (alice, bob, carol) = (home(&dir, "a"), home(&dir, "b"), home(&dir, "c"));
            let (alice_id, bob_id, carol_id) = (
                alice.identity().unwrap(),
                bob.identity().unwrap(),
                carol.identity().unwrap(),
            );
            let emma = alice
                .create_shared(
                    format!("file://{}/emma", dir.display()),
                    "emma".into(),
                    None,
                    None,
                    None,
                    None,
                    false,
                )
                .unwrap();
            emma.put_text("k".into(), "from alice".into()).unwrap();
            emma.sync().await.unwrap();
            let to_bob = emma
                .share(bob_id.public.clone(), Some(Role::Write), None)
                .await
                .unwrap();
            let to_carol = emma
                .share(carol_id.public.clone(), None, None)
                .await
                .unwrap();
            // What an invitation says, and one naming a signer (never one with credentials).
            let info = invitation_info(to_carol.clone()).unwrap();
            assert_eq!(info.granted_by, alice_id.fingerprint);
            assert_eq!(info.signer, None);
            let url = "https://signer.example/sign";
            let through = emma
                .share(carol_id.public.clone(), None, Some(url.into()))
                .await
                .unwrap();
            assert_eq!(
                invitation_info(through).unwrap().signer.as_deref(),
                Some(url)
            );
            let e = emma
                .share(
                    carol_id.public.clone(),
                    None,
                    Some("https://c:s@x.example".into()),
                )
                .await
                .unwrap_err();
            assert!(matches!(e, BucketsyncError::Config(_)), "{e:?}");
            assert!(matches!(
                invitation_info("bsinv1 nonsense".into()),
                Err(BucketsyncError::Config(_))
            ));
            emma.sync().await.unwrap();
            let bobs = bob
                .accept(to_bob, None, None, None, None, false, None)
                .await
                .unwrap();
            let carols = carol
                .accept(to_carol, None, None, None, None, false, None)
                .await
                .unwrap();
            bobs.sync().await.unwrap();
            carols.sync().await.unwrap();

            // Everyone sees the same three people.
            for vault in [&emma, &bobs, &carols] {
                let members = vault.members().unwrap();
                assert_eq!(members.len(), 3, "{members:?}");
                for (id, role) in [
                    (&alice_id, Role::Owner),
                    (&bob_id, Role::Write),
                    (&carol_id, Role::Read),
                ] {
                    let m = member(&members, &id.fingerprint);
                    assert_eq!(m.public_identity, id.public);
                    assert_eq!((m.role, m.revoked), (Some(role), false));
                    assert_eq!(m.may_write, role != Role::Read);
                    assert_eq!(m.granted_by, alice_id.fingerprint);
                    assert!(m.pins.is_empty());
                    assert!(m.since_ms > 0);
                }
            }
            // Only an owner revokes, and not the founder nor themself nor a stranger.
            assert!(matches!(
                bobs.revoke(carol_id.fingerprint.clone()),
                Err(BucketsyncError::Access(_))
            ));
            for who in [alice_id.fingerprint.clone(), "0000-0000-0000-0000".into()] {
                assert!(matches!(emma.revoke(who), Err(BucketsyncError::Config(_))));
            }
            // A vault not opened through its home is not shared: no members, nobody to revoke.
            let plain = home(&dir, "plain");
            assert!(plain.members().unwrap().is_empty());
            assert!(matches!(
                plain.revoke(bob_id.fingerprint.clone()),
                Err(BucketsyncError::Access(_))
            ));

            bobs.put_text("k".into(), "from bob".into()).unwrap();
            bobs.sync().await.unwrap();
            emma.sync().await.unwrap();
            assert_eq!(
                emma.get_text("k".into()).unwrap().as_deref(),
                Some("from bob")
            );
            // Typed as a person types it: lower case, no dashes.
            let typed = bob_id.fingerprint.replace('-', "").to_lowercase();
            let before = member(&emma.members().unwrap(), &bob_id.fingerprint).clone();
            assert_eq!(emma.revoke(typed).unwrap(), before);
            let bob_now = member(&emma.members().unwrap(), &bob_id.fingerprint).clone();
            assert_eq!(
                (bob_now.role, bob_now.revoked, bob_now.may_write),
                (None, true, false)
            );
            assert_eq!(bob_now.granted_by, alice_id.fingerprint);
            assert_eq!(bob_now.pins.len(), 1, "{bob_now:?}");
            assert_eq!(bob_now.pins[0].device, bobs.device().unwrap());
            assert!(bob_now.pins[0].segments >= 1, "{bob_now:?}");
            emma.sync().await.unwrap();

            // Bob's next sync stops; Carol sees him revoked and his write before it.
            assert!(matches!(
                bobs.sync().await,
                Err(BucketsyncError::Access(m)) if m.contains("revoked")
            ));
            carols.sync().await.unwrap();
            let seen = member(&carols.members().unwrap(), &bob_id.fingerprint).clone();
            assert_eq!(seen, bob_now);
            assert_eq!(
                carols.get_text("k".into()).unwrap().as_deref(),
                Some("from bob")
            );
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
