//! The engine's part in sharing: the identity this vault gives as a home, the requests that
//! write and read grants, and, in a shared vault, who its members are: the statements that
//! say so, the signatures on what each device writes, and which writes count.

use super::Engine;
use crate::error::{Error, Result};
use crate::grant::{self, Grant, Invitation, Role};
use crate::http::{Method, Request, RequestKind};
use crate::identity::{Fingerprint, Identity, PublicIdentity};
use crate::ids::{DeviceId, RequestId, Timestamp};
use crate::membership::{add_statements, Member, Members, Standing, Statement};
use crate::signed;

/// A shared vault's replica: whose device this is, whom trust starts from, and the members
/// its statements resolve to (kept resolved; resolved again when a statement arrives).
pub(crate) struct Sharing {
    identity: Identity,
    founder: Fingerprint,
    members: Members,
}

/// Whose writes an object holds, as its signature says.
pub(crate) enum Author {
    /// The vault is not shared: nobody signs, everything counts.
    Unshared,
    /// Signed by the member with this Ed25519 key.
    Signed([u8; 32]),
}

impl Engine {
    /// The identity of the person whose home this vault is (derived from its key: every
    /// device of the home has the same).
    pub fn identity(&self) -> Identity {
        Identity::from_seeds(&self.identity_seeds)
    }

    /// Makes this replica one of a shared vault's: from now on it signs everything it writes
    /// with `identity` (the person's, from their home), and accepts only what members may
    /// write, trust starting at `founder` (the person who made the vault). The founder's own
    /// device adds the founder's statement about themself when the vault has none yet.
    ///
    /// # Errors
    /// `Config` when the state's statements cannot take one more.
    pub fn set_sharing(&mut self, identity: Identity, founder: Fingerprint, now: Timestamp) {
        let founding = identity.fingerprint() == founder;
        self.sharing = Some(Sharing {
            identity,
            founder,
            members: Members::default(),
        });
        self.resolve_members();
        let sharing = self.sharing.as_ref().expect("just set");
        if founding && sharing.members.get(&founder).is_none() {
            let statement = Statement::sign(
                self.vault,
                sharing.identity.public(),
                &Standing::Member(Role::Owner),
                now,
                &sharing.identity,
            )
            .expect("a member statement pins nothing");
            self.take_statements(&[statement]);
        }
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
            now,
            &sharing.identity,
        )?;
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
    /// members again and makes the next sync publish our manifest with them.
    pub(crate) fn take_statements(&mut self, statements: &[Statement]) {
        if statements.is_empty() || self.sharing.is_none() {
            return;
        }
        let known = &self.state.directory().sharing.statements;
        if statements.iter().all(|s| known.contains(s)) {
            return;
        }
        let before = self.published_statements();
        add_statements(
            &mut self.state.directory_mut().sharing.statements,
            statements,
        );
        self.resolve_members();
        if self.published_statements() != before {
            self.state.own_mut().republish = true;
        }
    }

    fn resolve_members(&mut self) {
        let statements = &self.state.directory().sharing.statements;
        if let Some(sharing) = self.sharing.as_mut() {
            sharing.members = Members::resolve(self.vault, sharing.founder, statements);
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
    pub(crate) fn sign_object(&self, name: &str, envelope: Vec<u8>) -> Vec<u8> {
        match &self.sharing {
            Some(sharing) => signed::sign(self.vault, name, &envelope, &sharing.identity),
            None => envelope,
        }
    }

    /// Checks the signature of the object `name` fetched as `body` and strips it, leaving the
    /// envelope. A vault that is not shared reads signed objects too (without asking who
    /// signed them).
    ///
    /// # Errors
    /// `Corrupt` when the signature fails; `Access` when the vault is shared and the object
    /// is not signed.
    pub(crate) fn unsign(&self, name: &str, body: &mut Vec<u8>) -> Result<Author> {
        let key = signed::verify_and_strip(self.vault, name, body)?;
        match (key, &self.sharing) {
            (_, None) => Ok(Author::Unshared),
            (Some(key), Some(_)) => Ok(Author::Signed(key)),
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
            Some(key) if self.sharing.is_some() => Ok(Author::Signed(key)),
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
        let (Author::Signed(key), Some(sharing)) = (author, &self.sharing) else {
            return Ok(());
        };
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

    /// Whether a checkpoint by `author` covering `covers` may be adopted: its writer may write,
    /// and it covers no device past a revocation's pin.
    ///
    /// # Errors
    /// `Access` saying why not.
    pub(crate) fn check_checkpoint(
        &self,
        author: &Author,
        covers: &[(DeviceId, u64)],
        what: &str,
    ) -> Result<()> {
        let (Author::Signed(key), Some(sharing)) = (author, &self.sharing) else {
            return Ok(());
        };
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
        let (Author::Signed(key), Some(sharing)) = (author, &self.sharing) else {
            return Some(true);
        };
        let member = sharing.members.by_signing_key(key)?;
        Some(member.may_write())
    }

    /// Notes that `author` signed `device`'s latest manifest.
    pub(crate) fn note_signer(&mut self, device: DeviceId, author: &Author) {
        if let Author::Signed(key) = author {
            if self.state.directory().sharing.signers.get(&device) != Some(key) {
                self.state
                    .directory_mut()
                    .sharing
                    .signers
                    .insert(device, *key);
            }
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

/// A standing in words: `read`-role, `write`, `owner`, `revoked`.
fn standing_text(standing: &Standing) -> String {
    match standing {
        Standing::Member(role) => format!("a member with the role {role}"),
        Standing::Revoked(_) => "revoked".into(),
    }
}
