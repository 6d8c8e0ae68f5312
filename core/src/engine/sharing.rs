//! The engine's part in sharing: the identity this vault gives as a home, the requests that
//! write and read grants, and, in a shared vault, who its members are: the statements that
//! say so, the signatures on what each device writes, and which writes count.

use std::collections::BTreeSet;

use super::Engine;
use crate::crypto::{self, SecretKey};
use crate::error::{Error, Result};
use crate::grant::GenerationKey;
use crate::grant::{self, Grant, Invitation, Role};
use crate::http::{Method, Request, RequestKind};
use crate::identity::{Fingerprint, Identity, PublicIdentity};
use crate::ids::{DeviceId, RequestId, Timestamp};
use crate::key::{Purpose, VaultKey};
use crate::membership::{add_statements, Member, Members, Standing, Statement};
use crate::signed;

/// A shared vault's replica: whose device this is, whom trust starts from, and the members
/// its statements resolve to (kept resolved; resolved again when a statement arrives).
pub(crate) struct Sharing {
    identity: Identity,
    founder: Fingerprint,
    members: Members,
    /// The vault's own key (generation 0), which grants of later generations carry too.
    key: VaultKey,
    /// The statement that let this person in, from their grant (kept by their home, given
    /// at every start): resolved with the others, and so published, once the founder's
    /// statement has arrived.
    own_statement: Option<Statement>,
}

/// Whose writes an object holds, as its signature says.
pub(crate) enum Author {
    /// The vault is not shared: nobody signs, everything counts (sealed with generation 0).
    Unshared,
    /// Signed by the member with this Ed25519 key, sealed with this key generation.
    Signed([u8; 32], u32),
}

impl Author {
    /// The key generation that sealed the object.
    pub(crate) fn generation(&self) -> u32 {
        match self {
            Author::Unshared => 0,
            Author::Signed(_, generation) => *generation,
        }
    }
}

impl Engine {
    /// The identity of the person whose home this vault is (derived from its key: every
    /// device of the home has the same).
    pub fn identity(&self) -> Identity {
        Identity::from_seeds(&self.identity_seeds)
    }

    /// Makes this replica one of a shared vault's: from now on it signs everything it writes
    /// with `identity` (the person's, from their home), and accepts only what members may
    /// write, trust starting at `founder` (the person who made the vault). `keys` are the
    /// vault's key generations the person holds (generation 0 first). The founder's own device
    /// adds the founder's statement about themself when the vault has none yet.
    ///
    /// # Errors
    /// `Config` when `keys` does not start with this vault's own key, or when this replica's
    /// device signed the vault as another person.
    pub fn set_sharing(
        &mut self,
        identity: Identity,
        founder: Fingerprint,
        keys: &[GenerationKey],
        own_statement: Option<Statement>,
        now: Timestamp,
    ) -> Result<()> {
        let key = match keys.first() {
            Some(k) if k.generation == 0 && k.key.vault_id() == self.vault => k.key.clone(),
            _ => {
                return Err(Error::Config(
                    "a shared vault's keys start with its own key (generation 0)".into(),
                ))
            }
        };
        // A device's objects have one signer (see `note_signer`): a replica whose device
        // signed as another person would have everything it writes refused by the others.
        let me = self.state.device;
        let signing_key = identity.public().signing_key();
        match self.state.directory().sharing.signers.get(&me) {
            Some(signer) if *signer != signing_key => {
                return Err(Error::Config(format!(
                    "this replica's device {me} signed the vault as another person: a replica \
                     is one person's (open the vault with a state of its own)"
                )));
            }
            Some(_) => {}
            None => {
                self.state
                    .directory_mut()
                    .sharing
                    .signers
                    .insert(me, signing_key);
            }
        }
        self.add_keys(keys);
        let founding = identity.fingerprint() == founder;
        self.sharing = Some(Sharing {
            identity,
            founder,
            members: Members::default(),
            key,
            own_statement,
        });
        self.resolve_members();
        let sharing = self.sharing.as_ref().expect("just set");
        if founding && sharing.members.get(&founder).is_none() {
            let statement = Statement::sign(
                self.vault,
                sharing.identity.public(),
                &Standing::Member(Role::Owner),
                0,
                now,
                &sharing.identity,
            )
            .expect("a member statement pins nothing");
            self.take_statements(&[statement]);
        }
        Ok(())
    }

    /// Whether this replica is one of a shared vault's ([`Engine::set_sharing`]).
    pub fn is_shared(&self) -> bool {
        self.sharing.is_some()
    }

    /// The people of this shared vault, as the statements read so far say (empty when the
    /// vault is not shared).
    pub fn members(&self) -> Vec<Member> {
        self.sharing
            .as_ref()
            .map(|s| s.members.all().cloned().collect())
            .unwrap_or_default()
    }

    /// This person's fingerprint, in a shared vault.
    pub(crate) fn own_fingerprint(&self) -> Option<Fingerprint> {
        Some(self.sharing.as_ref()?.identity.fingerprint())
    }

    /// This person's own standing in the shared vault, if any statement counts for them.
    pub fn own_standing(&self) -> Option<Standing> {
        let sharing = self.sharing.as_ref()?;
        let member = sharing.members.get(&sharing.identity.fingerprint())?;
        Some(member.standing.clone())
    }

    /// `Access` when this person's access to the shared vault was revoked: a sync stops
    /// there (nothing it could push would count).
    pub(crate) fn revoked_error(&self) -> Option<Error> {
        let sharing = self.sharing.as_ref()?;
        let member = sharing.members.get(&sharing.identity.fingerprint())?;
        matches!(member.standing, Standing::Revoked(_)).then(|| {
            Error::Access(format!(
                "{} revoked your access to this vault: nothing you write here counts any more",
                member.by
            ))
        })
    }

    /// Signs that `member` has `role` from now on, and returns the statement (a grant carries
    /// it, so that the member's devices pass it on before ours publish it); the next sync
    /// publishes it. The founder stays an owner whatever is said: `None` for them.
    ///
    /// # Errors
    /// `Access` when this person is not an owner here (or the vault is not shared).
    pub fn admit(
        &mut self,
        member: &PublicIdentity,
        role: Role,
        now: Timestamp,
    ) -> Result<Option<Statement>> {
        let sharing = self.owner()?;
        if member.fingerprint() == sharing.founder {
            return Ok(None);
        }
        let statement = Statement::sign(
            self.vault,
            member,
            &Standing::Member(role),
            0,
            now,
            &sharing.identity,
        )?;
        self.take_statements(std::slice::from_ref(&statement));
        Ok(Some(statement))
    }

    /// Signs that the member whose fingerprint `who` reads as (see [`Fingerprint::matches`])
    /// is no longer one: what their devices wrote counts up to what this replica has merged of
    /// each, nothing after. The next sync publishes it. Returns the member as they were.
    ///
    /// # Errors
    /// `Access` when this person is not an owner here; `Config` when no member has that
    /// fingerprint, or it is the founder's or this person's own.
    pub fn revoke(&mut self, who: &str, now: Timestamp) -> Result<Member> {
        let sharing = self.owner()?;
        // Above every generation held and every one a counted revocation started.
        let generation = self
            .current_generation()
            .max(sharing.members.generation())
            .checked_add(1)
            .ok_or_else(|| Error::Config("no key generation is left".into()))?;
        let member = sharing
            .members
            .all()
            .find(|m| m.identity.fingerprint().matches(who))
            .cloned()
            .ok_or_else(|| {
                Error::Config(format!(
                    "no member of this vault has the fingerprint {who:?}"
                ))
            })?;
        let fingerprint = member.identity.fingerprint();
        if matches!(member.standing, Standing::Revoked(_)) {
            return Err(Error::Config(format!("{fingerprint} is revoked already")));
        }
        if fingerprint == sharing.founder || fingerprint == sharing.identity.fingerprint() {
            return Err(Error::Config(
                "the vault's founder cannot be revoked, and nobody revokes themself".into(),
            ));
        }
        let key = member.identity.signing_key();
        let pins: Vec<(DeviceId, u64)> = self
            .state
            .directory()
            .sharing
            .signers
            .iter()
            .filter(|(_, k)| **k == key)
            .map(|(device, _)| (*device, self.state.peer(device).map_or(0, |p| p.applied)))
            .collect();
        let statement = Statement::sign(
            self.vault,
            &member.identity,
            &Standing::Revoked(pins),
            generation,
            now,
            &sharing.identity,
        )?;
        // The new key, from our entropy: the next sync seals it to every member left (one
        // grant each) before it publishes the revocation, and writes under it from then on.
        let key: [u8; 32] = self.entropy.array();
        self.hold_generation(generation, key);
        self.take_statements(&[statement]);
        Ok(member)
    }

    /// The sharing state, when this person is an owner of the shared vault.
    fn owner(&self) -> Result<&Sharing> {
        let sharing = self
            .sharing
            .as_ref()
            .ok_or_else(|| Error::Access("this vault is not shared".into()))?;
        match sharing.members.get(&sharing.identity.fingerprint()) {
            Some(m) if m.standing == Standing::Member(Role::Owner) => Ok(sharing),
            Some(m) => Err(Error::Access(format!(
                "only an owner may change who belongs to this vault; you are {}",
                standing_text(&m.standing)
            ))),
            None => Err(Error::Access(
                "only an owner may change who belongs to this vault; no statement read yet makes you one (sync first)"
                    .into(),
            )),
        }
    }

    /// Keeps `statements` (read in a manifest, or made here); when any is new, resolves the
    /// members again and makes the next sync publish our manifest with them. Kept are only
    /// those that count (with this person's own, from their grant, they decide), so a
    /// manifest full of statements that count for nothing cannot crowd out the real ones.
    pub fn take_statements(&mut self, statements: &[Statement]) {
        if statements.is_empty() || self.sharing.is_none() {
            return;
        }
        let known = &self.state.directory().sharing.statements;
        if statements.iter().all(|s| known.contains(s)) {
            return;
        }
        let before = self.published_statements();
        let revoked_before = self.revocations();
        add_statements(
            &mut self.state.directory_mut().sharing.statements,
            statements,
        );
        self.resolve_members();
        let accepted = self.published_statements();
        if !self
            .state
            .directory()
            .sharing
            .statements
            .iter()
            .all(|s| accepted.contains(s))
        {
            self.state
                .directory_mut()
                .sharing
                .statements
                .retain(|s| accepted.contains(s));
        }
        if self.published_statements() != before {
            self.state.own_mut().republish = true;
        }
        // A revocation heard of now (or pinned lower than before) whose pins are below what
        // this replica merged of the revoked member's devices: their writes above the pins
        // are in its records, and nothing tells which they are. Forget everything merged and
        // read it again, as every other replica does: they never count.
        let heard = self
            .revocations()
            .into_iter()
            .filter(|r| !revoked_before.contains(r))
            .any(|(key, pins)| self.merged_above(&key, &pins));
        if heard {
            self.forget_merged();
        }
    }

    /// Forgets what was merged from other devices, to read it again
    /// (`LocalState::forget_merged`); the keys it changes are reported by the next sync
    /// that ends with a record other than the one forgotten.
    fn forget_merged(&mut self) {
        let forgotten = self.state.forget_merged();
        self.note_forgotten(forgotten);
    }

    /// Passes over the deleted segments of a revoked member's devices above their pins: they
    /// would not count, so no checkpoint needs to bring this replica past them (those still
    /// in the store are read once, and refused with the reason).
    pub(crate) fn pass_over_revoked(&mut self) {
        let me = self.state.device;
        for (key, pins) in self.revocations() {
            for device in self.devices_of(&key, &pins) {
                let pin = pin_of(&pins, &device);
                let pruned = self
                    .state
                    .directory()
                    .devices
                    .get(&device)
                    .map_or(0, |i| i.pruned);
                let applied = self.state.peer(&device).map_or(0, |p| p.applied);
                if device == me || applied < pin || pruned <= applied {
                    continue;
                }
                self.state.peer_mut(device).pass_to(pruned);
            }
        }
    }

    /// The devices whose manifest `key` signed, and those `pins` name.
    fn devices_of(&self, key: &[u8; 32], pins: &[(DeviceId, u64)]) -> BTreeSet<DeviceId> {
        let signers = &self.state.directory().sharing.signers;
        let mut devices = BTreeSet::new();
        devices.extend(signers.iter().filter(|(_, k)| *k == key).map(|(d, _)| *d));
        devices.extend(pins.iter().map(|(d, _)| *d));
        devices
    }

    /// Every revoked member's signing key, with the pins of their revocation.
    fn revocations(&self) -> Vec<([u8; 32], Pins)> {
        let Some(sharing) = &self.sharing else {
            return Vec::new();
        };
        sharing
            .members
            .all()
            .filter_map(|m| match &m.standing {
                Standing::Revoked(pins) => Some((m.identity.signing_key(), pins.clone())),
                Standing::Member(_) => None,
            })
            .collect()
    }

    /// Whether this replica merged segments above `pins` of a device whose manifest `key`
    /// signed, or of a pinned device (a device not pinned has a pin of 0).
    fn merged_above(&self, key: &[u8; 32], pins: &[(DeviceId, u64)]) -> bool {
        self.devices_of(key, pins)
            .into_iter()
            .any(|device| self.merged_past(device, pin_of(pins, &device)))
    }

    /// Whether this replica merged (or passed over) segments of another device above `pin`.
    fn merged_past(&self, device: DeviceId, pin: u64) -> bool {
        device != self.state.device
            && self
                .state
                .peer(&device)
                .is_some_and(|p| p.applied > pin || p.beyond.last().is_some_and(|s| *s > pin))
    }

    fn resolve_members(&mut self) {
        let stored = &self.state.directory().sharing.statements;
        if let Some(sharing) = self.sharing.as_mut() {
            let mut statements = stored.clone();
            if let Some(own) = &sharing.own_statement {
                add_statements(&mut statements, std::slice::from_ref(own));
            }
            sharing.members = Members::resolve(self.vault, sharing.founder, &statements);
        }
    }

    /// The statements our manifest carries: those that count.
    pub(crate) fn published_statements(&self) -> Vec<Statement> {
        self.sharing
            .as_ref()
            .map(|s| s.members.accepted().to_vec())
            .unwrap_or_default()
    }

    /// `envelope`, the object named `name` (relative to the vault folder), as this replica
    /// writes it: signed in a shared vault, as it is otherwise.
    pub(crate) fn sign_object(&self, name: &str, generation: u32, envelope: Vec<u8>) -> Vec<u8> {
        match &self.sharing {
            Some(sharing) => {
                signed::sign(self.vault, name, generation, &envelope, &sharing.identity)
            }
            None => envelope,
        }
    }

    // ---- key generations ----

    /// The newest key generation this replica holds: what it seals segments and checkpoints
    /// with (0: the vault's own key).
    pub(crate) fn current_generation(&self) -> u32 {
        self.state
            .directory()
            .sharing
            .keys
            .iter()
            .map(|(g, _)| *g)
            .max()
            .unwrap_or(0)
    }

    /// The segment and checkpoint keys of `generation`, when this replica holds it.
    pub(crate) fn log_keys(&self, generation: u32) -> Option<(SecretKey, SecretKey)> {
        if generation == 0 {
            return Some((self.segment_key.clone(), self.checkpoint_key.clone()));
        }
        let key = self.later_key(generation)?;
        Some((
            key.subkey(Purpose::Segment),
            key.subkey(Purpose::Checkpoint),
        ))
    }

    /// The key of generation `generation` above 0, when this replica holds it.
    pub(crate) fn later_key(&self, generation: u32) -> Option<VaultKey> {
        self.state
            .directory()
            .sharing
            .keys
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(_, key)| VaultKey::from_bytes(*key))
    }

    /// Holds key generation `generation` from now on. When it is newer than every one held,
    /// files are sealed under it from now on: the packs an interrupted upload left in parts
    /// (sealed under an older one) are no longer completed (the next listing aborts their
    /// uploads), and the chunks found in our packs are not referenced by a new file.
    fn hold_generation(&mut self, generation: u32, key: [u8; 32]) {
        if generation > self.current_generation() {
            self.state.directory_mut().resumable_packs.clear();
            if let Some(spare) = &mut self.spare_chunks {
                *spare = (generation, std::collections::HashMap::new());
            }
        }
        self.state
            .directory_mut()
            .sharing
            .keys
            .push((generation, key));
    }

    /// The segment and checkpoint keys that open an object `name` by `author`.
    ///
    /// # Errors
    /// `Access` when this replica does not hold the key generation it was sealed with.
    pub(crate) fn generation_keys(
        &self,
        author: &Author,
        name: &str,
    ) -> Result<(SecretKey, SecretKey)> {
        let generation = author.generation();
        self.log_keys(generation)
            .ok_or_else(|| not_given(name, generation))
    }

    /// Whether this replica holds key generation `generation` (it always holds 0).
    pub(crate) fn holds_generation(&self, generation: u32) -> bool {
        generation == 0 || self.later_key(generation).is_some()
    }

    /// The key generations above 0 this replica holds, oldest first.
    pub fn later_keys(&self) -> Vec<GenerationKey> {
        let mut keys: Vec<GenerationKey> = self
            .state
            .directory()
            .sharing
            .keys
            .iter()
            .map(|(generation, key)| GenerationKey {
                generation: *generation,
                key: VaultKey::from_bytes(*key),
            })
            .collect();
        keys.sort_unstable_by_key(|k| k.generation);
        keys
    }

    /// Keeps the key generations of `keys` above 0 that this replica does not hold yet.
    pub fn add_keys(&mut self, keys: &[GenerationKey]) {
        for key in keys.iter().filter(|k| k.generation > 0) {
            if self.later_key(key.generation).is_none() {
                self.hold_generation(key.generation, *key.key.secret_bytes());
            }
        }
    }

    /// The key generations a counted revocation started that this replica does not hold.
    pub(crate) fn missing_generations(&self) -> Vec<u32> {
        let Some(sharing) = &self.sharing else {
            return Vec::new();
        };
        sharing
            .members
            .generations()
            .filter(|g| !self.holds_generation(*g))
            .collect()
    }

    /// The grant of key generation `generation` to the person `fingerprint`: its name in the
    /// vault folder.
    pub(crate) fn rekey_name(&self, generation: u32, fingerprint: &Fingerprint) -> Option<String> {
        Some(grant::grant_name(&self.rekey_id(generation, fingerprint)?))
    }

    /// The id of that grant, once the revocation that started `generation` counts here.
    fn rekey_id(&self, generation: u32, fingerprint: &Fingerprint) -> Option<[u8; 16]> {
        let salt = self.sharing.as_ref()?.members.generation_salt(generation)?;
        Some(grant::rekey_id(self.vault, generation, fingerprint, salt))
    }

    /// The grants of the newest key generation still to write: one per member left (this
    /// person included, for their other devices), when this person is an owner holding it.
    pub(crate) fn rekeys_to_write(&self) -> Vec<(u32, PublicIdentity, Role)> {
        let generation = self.current_generation();
        let Some(sharing) = &self.sharing else {
            return Vec::new();
        };
        if generation == 0 || self.owner().is_err() {
            return Vec::new();
        }
        let written = &self.state.directory().sharing.rekeyed;
        sharing
            .members
            .all()
            .filter_map(|m| match m.standing {
                Standing::Member(role) => Some((m, role)),
                Standing::Revoked(_) => None,
            })
            .filter(|(m, _)| !written.contains(&(generation, m.identity.fingerprint().0)))
            .map(|(m, role)| (generation, m.identity.clone(), role))
            .collect()
    }

    /// The sealed grant of every key generation held to `member`, as the object that
    /// [`Engine::rekey_name`] names for `generation`.
    ///
    /// # Errors
    /// `Config` when sealing to the member fails.
    pub(crate) fn seal_rekey(
        &mut self,
        generation: u32,
        member: &PublicIdentity,
        role: Role,
        now: Timestamp,
    ) -> Result<Vec<u8>> {
        let sharing = self
            .sharing
            .as_ref()
            .ok_or_else(|| Error::Access("not shared".into()))?;
        let mut keys = vec![GenerationKey {
            generation: 0,
            key: sharing.key.clone(),
        }];
        keys.extend(self.later_keys());
        let grant = Grant {
            vault: self.vault,
            label: String::new(),
            store: self.store.url(),
            role,
            keys,
            granter: sharing.identity.public().clone(),
            granted: now,
            founder: sharing.founder,
            statement: None,
        };
        let id = self
            .rekey_id(generation, &member.fingerprint())
            .ok_or_else(|| {
                Error::Access(format!("no revocation started key generation {generation}"))
            })?;
        grant::seal(&grant, &id, &sharing.identity, member, &mut self.entropy)
    }

    /// Opens our grant of key generation `generation` and keeps the keys it holds, when an
    /// owner signed it.
    ///
    /// # Errors
    /// `Access` when it is not ours or no owner made it; `Corrupt` when it fails its checks.
    pub(crate) fn open_rekey(&mut self, generation: u32, object: &[u8]) -> Result<()> {
        let sharing = self
            .sharing
            .as_ref()
            .ok_or_else(|| Error::Access("not shared".into()))?;
        let id = self
            .rekey_id(generation, &sharing.identity.fingerprint())
            .ok_or_else(|| {
                Error::Access(format!("no revocation started key generation {generation}"))
            })?;
        let grant = grant::open_rekey(object, self.vault, &id, &sharing.identity)?;
        match sharing.members.get(&grant.granter.fingerprint()) {
            Some(m) if m.standing == Standing::Member(Role::Owner) => {}
            _ => {
                return Err(Error::Access(format!(
                    "the key grant {} was not made by an owner: ignored",
                    grant::grant_name(&id)
                )))
            }
        }
        self.add_keys(&grant.keys);
        Ok(())
    }

    /// Checks the signature of the object `name` fetched as `body` and strips it, leaving the
    /// envelope. A vault that is not shared reads signed objects too (without asking who
    /// signed them).
    ///
    /// # Errors
    /// `Corrupt` when the signature fails, or when the vault is shared and the object is
    /// neither signed nor an envelope (an answer cut short, down to nothing or into the
    /// signed prefix's magic, reads as no signed object: it must be fetched again, not
    /// refused for good); `Access` when the vault is shared and the object is an unsigned
    /// envelope.
    pub(crate) fn unsign(&self, name: &str, body: &mut Vec<u8>) -> Result<Author> {
        let key = signed::verify_and_strip(self.vault, name, body)?;
        match (key, &self.sharing) {
            (_, None) => Ok(Author::Unshared),
            (Some(s), Some(_)) => Ok(Author::Signed(s.key, s.generation)),
            (None, Some(_)) if !crypto::is_envelope(body) => Err(Error::corrupt(
                name,
                "neither a signed object nor an envelope (an answer cut short?)",
            )),
            (None, Some(_)) => Err(Error::Access(format!(
                "{name} is not signed: in a shared vault only what members sign counts"
            ))),
        }
    }

    /// [`Engine::unsign`] for an object of our own log: one written unsigned (before this
    /// replica was told the vault is shared) is ours all the same.
    ///
    /// # Errors
    /// `Corrupt` when a signature fails.
    pub(crate) fn unsign_own(&self, name: &str, body: &mut Vec<u8>) -> Result<Author> {
        match signed::verify_and_strip(self.vault, name, body)? {
            Some(s) if self.sharing.is_some() => Ok(Author::Signed(s.key, s.generation)),
            _ => Ok(Author::Unshared),
        }
    }

    /// [`Engine::unsign`], or [`Engine::unsign_own`] when `own`.
    pub(crate) fn unsign_from(&self, own: bool, name: &str, body: &mut Vec<u8>) -> Result<Author> {
        if own {
            self.unsign_own(name, body)
        } else {
            self.unsign(name, body)
        }
    }

    /// Whether the writes in segment `seq` of `device`, signed by `author`, count.
    ///
    /// # Errors
    /// `Access` saying why not: the signer is no member, may only read, or was revoked before.
    pub(crate) fn check_writer(
        &self,
        author: &Author,
        device: DeviceId,
        seq: u64,
        what: &str,
    ) -> Result<()> {
        let (Author::Signed(key, _), Some(sharing)) = (author, &self.sharing) else {
            return Ok(());
        };
        self.check_signer(device, key, what)?;
        let Some(member) = sharing.members.by_signing_key(key) else {
            return Err(Error::Access(format!(
                "{what} is signed by someone who is not a member of this vault: ignored"
            )));
        };
        match &member.standing {
            Standing::Member(Role::Write | Role::Owner) => Ok(()),
            Standing::Revoked(pins) if pins.iter().any(|(d, pin)| *d == device && seq <= *pin) => {
                Ok(())
            }
            standing => Err(Error::Access(format!(
                "{what} was written by {}, who {}: ignored",
                member.identity.fingerprint(),
                match standing {
                    Standing::Revoked(_) => "was revoked before writing it".to_owned(),
                    other => format!("is {}", standing_text(other)),
                }
            ))),
        }
    }

    /// Whether a checkpoint of `writer` by `author` covering `covers` may be adopted: its
    /// signer signs `writer`'s objects and may write, and it covers no device past a
    /// revocation's pin.
    ///
    /// # Errors
    /// `Access` saying why not.
    pub(crate) fn check_checkpoint(
        &self,
        author: &Author,
        writer: DeviceId,
        covers: &[(DeviceId, u64)],
        what: &str,
    ) -> Result<()> {
        let (Author::Signed(key, _), Some(sharing)) = (author, &self.sharing) else {
            return Ok(());
        };
        self.check_signer(writer, key, what)?;
        match sharing.members.by_signing_key(key) {
            Some(member) if member.may_write() => {}
            _ => {
                return Err(Error::Access(format!(
                    "{what} was not written by a member who may write: ignored"
                )))
            }
        }
        for member in sharing.members.all() {
            let Standing::Revoked(pins) = &member.standing else {
                continue;
            };
            // Sealed under the key their revocation started, or a later one: its writer knew
            // of the revocation, and a replica forgets their later writes when it hears of it
            // (see `take_statements`), so it left them out. (Its covers may still pass the
            // pins: their later segments are passed over, not merged.)
            if member.generation > 0 && author.generation() >= member.generation {
                continue;
            }
            let key = member.identity.signing_key();
            let signers = &self.state.directory().sharing.signers;
            for (device, n) in covers {
                let pin = pins.iter().find(|(d, _)| d == device).map(|(_, p)| *p);
                let theirs = signers.get(device) == Some(&key);
                if (theirs || pin.is_some()) && *n > pin.unwrap_or(0) {
                    return Err(Error::Access(format!(
                        "{what} holds writes of {}, revoked: ignored",
                        member.identity.fingerprint()
                    )));
                }
            }
        }
        Ok(())
    }

    /// What a manifest signed by `author` may say for its device: `None` when nothing (its
    /// signer is no member); `Some(true)` all of it; `Some(false)` only what it merged and
    /// which segments it has (its signer may not write: no checkpoint, no retirements, no
    /// deletions count).
    pub(crate) fn manifest_trust(&self, author: &Author) -> Option<bool> {
        let (Author::Signed(key, _), Some(sharing)) = (author, &self.sharing) else {
            return Some(true);
        };
        let member = sharing.members.by_signing_key(key)?;
        Some(member.may_write())
    }

    /// Whether `device` writes no more: it is retired, or its objects are signed by a member
    /// who was revoked since (an older manifest of it that lands late is a PUT from before,
    /// and nobody will write a newer one to fix it).
    pub(crate) fn writes_no_more(&self, device: DeviceId) -> bool {
        self.state.directory().retired.contains(&device) || self.of_revoked_member(device)
    }

    /// Whether `device`'s objects are signed by a member who was revoked since.
    fn of_revoked_member(&self, device: DeviceId) -> bool {
        let (Some(sharing), Some(key)) = (
            &self.sharing,
            self.state.directory().sharing.signers.get(&device),
        ) else {
            return false;
        };
        sharing
            .members
            .by_signing_key(key)
            .is_some_and(|m| matches!(m.standing, Standing::Revoked(_)))
    }

    /// Notes that `author` signed `device`'s latest manifest. Every object of another device
    /// is signed by one member: the first seen here to sign one of its manifests (a member
    /// with write access to the bucket cannot make a device of someone else's theirs, and so
    /// have its writes refused, or passed over, when they are revoked).
    ///
    /// # Errors
    /// `Access` when another member signed it.
    pub(crate) fn note_signer(
        &mut self,
        device: DeviceId,
        author: &Author,
        what: &str,
    ) -> Result<()> {
        // Our own device's signer is our person's, noted when the replica is entered.
        let Author::Signed(key, _) = author else {
            return Ok(());
        };
        if device == self.state.device {
            return Ok(());
        }
        self.check_signer(device, key, what)?;
        if self.state.directory().sharing.signers.get(&device) == Some(key) {
            return Ok(());
        }
        self.state
            .directory_mut()
            .sharing
            .signers
            .insert(device, *key);
        // A device of a revoked member met only now (its segments came in a checkpoint): what
        // was merged of it above the pin must go too.
        let above = self.revocations().into_iter().any(|(revoked, pins)| {
            revoked == *key && self.merged_past(device, pin_of(&pins, &device))
        });
        if above {
            self.forget_merged();
        }
        Ok(())
    }

    /// Refuses an object of `device` (not ours) signed with `key` when another member signed
    /// the device's manifests before.
    fn check_signer(&self, device: DeviceId, key: &[u8; 32], what: &str) -> Result<()> {
        match self.state.directory().sharing.signers.get(&device) {
            Some(first) if first != key && device != self.state.device => {
                Err(Error::Access(format!(
                    "{what} is signed by another member than the one who signed {device}'s \
                     manifests before: ignored"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Seals `grant` (of this vault) to `recipient`, signed by `granter`, and gives the signed
    /// `PUT` that creates its object (`If-None-Match: *`) with the grant's invitation, whose
    /// store is the grant's.
    ///
    /// # Errors
    /// `Config` when `grant` is not of this vault; whatever the signer fails with.
    pub fn grant_request(
        &mut self,
        grant: &Grant,
        granter: &Identity,
        recipient: &PublicIdentity,
        now: Timestamp,
    ) -> Result<(Request, Invitation)> {
        if grant.vault != self.vault {
            return Err(crate::Error::Config(
                "a grant of another vault than this one".into(),
            ));
        }
        let id: [u8; 16] = self.entropy.array();
        let object = grant::seal(grant, &id, granter, recipient, &mut self.entropy)?;
        let mut request = Request {
            id: RequestId(0),
            kind: RequestKind::PutGrant,
            method: Method::Put,
            url: self
                .store
                .object_url(&format!("{}{}", self.folder, grant::grant_name(&id))),
            headers: vec![("if-none-match".into(), "*".into())],
            body: object.into(),
        };
        self.sign(&mut request, now)?;
        let invitation = Invitation {
            store: grant.store.clone(),
            vault: self.vault,
            grant: id,
            from: granter.fingerprint(),
            signer: None,
        };
        Ok((request, invitation))
    }
}

/// `Access`: `what` is sealed with key generation `generation`, which this replica does not
/// hold.
pub(crate) fn not_given(what: &str, generation: u32) -> Error {
    Error::Access(format!(
        "{what} is sealed with key generation {generation}, which this device was not given"
    ))
}

/// How many segments of each of a revoked member's devices count.
type Pins = Vec<(DeviceId, u64)>;

/// A device's pin in `pins` (0 for a device not pinned: none of its segments count).
fn pin_of(pins: &[(DeviceId, u64)], device: &DeviceId) -> u64 {
    pins.iter()
        .find(|(d, _)| d == device)
        .map_or(0, |(_, p)| *p)
}

/// A standing in words: `read`-role, `write`, `owner`, `revoked`.
fn standing_text(standing: &Standing) -> String {
    match standing {
        Standing::Member(role) => format!("a member with the role {role}"),
        Standing::Revoked(_) => "revoked".into(),
    }
}
