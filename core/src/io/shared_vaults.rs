//! A home's shared vaults, made, opened and accepted end to end: every binding and the command
//! line call these and only convert what goes in and comes out, so that what a shared vault
//! takes from its home (its credentials, signer, transport, deadlines and clock) is decided
//! once, here, by [`crate::io::reach`]'s rule.
//!
//! Each call checks that it is made on a home (a shared vault is never one: its members would
//! all hold the identity and the keys kept in it), opens the shared vault's replica with what
//! the app gives for it and what the rule lets it inherit, and enters it through the home
//! ([`Session::enter_shared`]). Its state, device, mode and day bounds are its own.

use crate::engine::{CompactionPolicy, OpenMode};
use crate::error::Result;
use crate::grant::Invitation;
use crate::home::SharedVault;
use crate::io::driver::Transport;
use crate::io::reach::{self, Given, Reach};
use crate::io::session::{Durability, Session, SessionOptions, StateLocation};
use crate::io::sharing;
use crate::store::Store;

/// What a shared vault keeps of its own on this device, as the app gives it.
#[derive(Debug)]
pub struct SharedOptions<'a> {
    /// The device, as [`SessionOptions::device`] takes it.
    pub device: Option<&'a str>,
    /// Where its local state lives (never the home's).
    pub state: StateLocation<'a>,
    /// Its time bounds.
    pub compaction: CompactionPolicy,
    /// When its state is synced to disk.
    pub durability: Durability,
}

impl<'a> SharedOptions<'a> {
    /// The defaults, with the state at `state`.
    pub fn new(state: StateLocation<'a>) -> Self {
        SharedOptions {
            device: None,
            state,
            compaction: CompactionPolicy::default(),
            durability: Durability::default(),
        }
    }
}

/// A shared vault opened through its home: its replica, the way it reaches its store (keep it
/// with the vault: the app's transport and signer are in it) and the home's record of it.
pub struct OpenedShared<T, S> {
    /// The vault's replica, entered through the home.
    pub vault: Session,
    /// How it reaches its store.
    pub reach: Reach<T, S>,
    /// What the home keeps of it (label, store, role, keys).
    pub shared: SharedVault,
}

impl<T, S> core::fmt::Debug for OpenedShared<T, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpenedShared")
            .field("vault", &self.vault)
            .field("reach", &self.reach)
            .field("label", &self.shared.label)
            .finish_non_exhaustive()
    }
}

/// What the rule decides for a vault in `store` of the home `session`: how it reaches the
/// store, and the note its `auth` failures carry when the home's authority was withheld.
fn decide<T: Clone, S: Clone>(
    session: &Session,
    home: &Reach<T, S>,
    store: &Store,
    given: Given<T, S>,
) -> Result<(Reach<T, S>, Option<String>)> {
    let home_store = session.read(|e| e.store().clone())?;
    let own_authority = given.credentials.is_some() || given.signer.is_some();
    let note = (!own_authority && reach::withheld(&home_store, store))
        .then(|| reach::withheld_note(store));
    Ok((reach::inherit(home, &home_store, store, given), note))
}

impl Session {
    /// `Access` when this vault is a shared one (opened through a home): only a home makes,
    /// opens and accepts shared vaults.
    fn check_home(&self) -> Result<()> {
        sharing::as_home(self.read(|e| e.is_shared())?.then_some(()).as_ref())
    }

    /// Makes a new vault to share in `store`, kept in this home as `label` with the role
    /// owner (a local write: sync the home so that its other devices know it), and opens it
    /// to create it (its first sync publishes it). `home` is how this home reaches its store;
    /// `given`, what the app gives for the new vault's.
    ///
    /// # Errors
    /// `Access` on a shared vault; `Config` for a bad label or store URL, a label the home has
    /// already, or an `s3://` store on the home's service that nothing signs for; as
    /// [`Session::open`] (the label is free again after a failed open).
    pub fn create_shared_vault<T: Clone, S: Clone>(
        &self,
        home: &Reach<T, S>,
        store: &str,
        label: &str,
        options: SharedOptions<'_>,
        given: Given<T, S>,
    ) -> Result<OpenedShared<T, S>> {
        self.check_home()?;
        let shared = self.create_shared(store, label)?;
        let (reach, note) = decide(self, home, &Store::parse(&shared.store)?, given)?;
        let key = SharedVault::record_key(label);
        self.open_entry(shared, OpenMode::Create, reach, note, options)
            .inspect_err(|_| {
                // Nothing was made in the store yet: the label is free again for the retry.
                let _ = self.delete(key);
            })
    }

    /// Opens the vault this home keeps as `label`, on this device or any other of the home's,
    /// with the home's role in it (a vault the person made is created when the device that
    /// made it never published it; one granted by someone else is joined).
    ///
    /// # Errors
    /// As [`Session::create_shared_vault`]; `Config` when the home has no such label.
    pub fn open_shared_vault<T: Clone, S: Clone>(
        &self,
        home: &Reach<T, S>,
        label: &str,
        options: SharedOptions<'_>,
        given: Given<T, S>,
    ) -> Result<OpenedShared<T, S>> {
        self.check_home()?;
        let shared = self.shared_vault(label)?;
        let (reach, note) = decide(self, home, &Store::parse(&shared.store)?, given)?;
        let mode = shared.open_mode();
        self.open_entry(shared, mode, reach, note, options)
    }

    /// Accepts `invitation` with this home's identity ([`Session::accept_from`]: one GET in
    /// the invitation's store, signed as [`crate::io::reach`]'s rule says, through the
    /// transport `transport` makes of the vault's reach and store), keeps the vault in this
    /// home, and opens it.
    ///
    /// # Errors
    /// As [`Session::accept_shared`] and [`Session::open_shared_vault`].
    pub async fn accept_shared_vault<T, S, X, F>(
        &self,
        home: &Reach<T, S>,
        invitation: &str,
        expected_from: Option<&str>,
        options: SharedOptions<'_>,
        given: Given<T, S>,
        transport: F,
    ) -> Result<OpenedShared<T, S>>
    where
        T: Clone,
        S: Clone,
        X: Transport,
        F: FnOnce(&Reach<T, S>, &Store) -> Result<X>,
    {
        let (shared, reach, note) = self
            .accept_with(home, invitation, expected_from, given, transport)
            .await?;
        let mode = shared.open_mode();
        self.open_entry(shared, mode, reach, note, options)
    }

    /// [`Session::accept_shared_vault`] without opening the vault: for an app that decides
    /// where its state lives once it knows which vault it is (then
    /// [`Session::open_shared_vault`] with the label returned, and the same `given`).
    ///
    /// # Errors
    /// `Access` on a shared vault; as [`Session::accept_from`] (an `auth` failure says which
    /// credentials to pass when the home's were withheld); what `transport` fails with.
    pub async fn accept_shared<T, S, X, F>(
        &self,
        home: &Reach<T, S>,
        invitation: &str,
        expected_from: Option<&str>,
        given: Given<T, S>,
        transport: F,
    ) -> Result<SharedVault>
    where
        T: Clone,
        S: Clone,
        X: Transport,
        F: FnOnce(&Reach<T, S>, &Store) -> Result<X>,
    {
        let (shared, ..) = self
            .accept_with(home, invitation, expected_from, given, transport)
            .await?;
        Ok(shared)
    }

    async fn accept_with<T, S, X, F>(
        &self,
        home: &Reach<T, S>,
        invitation: &str,
        expected_from: Option<&str>,
        given: Given<T, S>,
        transport: F,
    ) -> Result<(SharedVault, Reach<T, S>, Option<String>)>
    where
        T: Clone,
        S: Clone,
        X: Transport,
        F: FnOnce(&Reach<T, S>, &Store) -> Result<X>,
    {
        self.check_home()?;
        let store = Store::parse(&Invitation::parse(invitation)?.store)?;
        let (reach, note) = decide(self, home, &store, given)?;
        let grant_transport = transport(&reach, &store)?;
        let shared = self
            .accept_from(
                invitation,
                expected_from,
                reach.credentials.clone(),
                &grant_transport,
            )
            .await
            .map_err(|e| match &note {
                Some(note) => e.with_auth_note(note),
                None => e,
            })?;
        Ok((shared, reach, note))
    }

    /// Opens `shared`, a vault of this home, reaching it with `reach`, and enters it.
    fn open_entry<T, S>(
        &self,
        shared: SharedVault,
        mode: OpenMode,
        reach: Reach<T, S>,
        note: Option<String>,
        options: SharedOptions<'_>,
    ) -> Result<OpenedShared<T, S>> {
        // Missing credentials are an error only where nothing else can sign: a withheld home's
        // vault goes unsigned (and its failures say why), one the app signs or sends itself too.
        let signs_elsewhere = note.is_some() || reach.signer.is_some() || reach.transport.is_some();
        let vault = Session::open(SessionOptions {
            store: &shared.store,
            key: shared.key(),
            device: options.device,
            mode,
            compaction: options.compaction,
            state: options.state,
            credentials: reach.credentials.clone(),
            environment: false,
            own_transport: signs_elsewhere,
            durability: options.durability,
            clock: self.clock(),
            entropy_seed: None,
        })?;
        if let Some(note) = note {
            vault.set_auth_note(note);
        }
        vault.enter_shared(self, &shared)?;
        Ok(OpenedShared {
            vault,
            reach,
            shared,
        })
    }
}
