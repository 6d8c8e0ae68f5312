//! Who belongs to a shared vault: statements signed by its owners ("this person has this role
//! since then", "this person's access is revoked"), and the [`Members`] they resolve to.
//!
//! Trust starts at the vault's **founder**, the person who made it, known to every member by
//! fingerprint (from the grant that let them in, or because they made it). The founder's own
//! statement about themself (role owner, signed by themself) opens the chain; a statement
//! counts when an owner whose own standing counts signed it. Statements travel inside the
//! manifests of the vault (each device repeats every statement it accepted), so one listing
//! brings them, and each is checked on its own: whoever copies them cannot change them.
//!
//! Resolution, deterministic whatever order the statements arrive in:
//! 1. owners: the founder, then (to a fixed point) everyone an owner's accepted statement made
//!    owner; revocations are left aside in this step;
//! 2. revoked: everyone (but the founder) an accepted revocation names;
//! 3. step 1 again with revoked people neither signing nor becoming owners;
//! 4. a person's standing: revoked if step 2 says so (with the lowest pin per device); else
//!    the role of their accepted statement with the latest `since` (then the higher role).

use core::fmt;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::identity::{
    Fingerprint, Identity, PublicIdentity, FINGERPRINT_LEN, SIGNATURE_LEN, SIGN_PUBLIC_LEN,
};
use crate::ids::{DeviceId, Timestamp, VaultId};

/// What a member may do in a shared vault. The default, wherever a role is granted without
/// one being named, is [`Role::Read`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read the records.
    #[default]
    Read,
    /// Read and write them.
    Write,
    /// Read, write, and grant or revoke access.
    Owner,
}

impl Role {
    /// `"read"`, `"write"` or `"owner"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Owner => "owner",
        }
    }

    /// The role named `text` (as [`Role::as_str`] writes it), or the default when none is.
    ///
    /// # Errors
    /// `Config` for any other text.
    pub fn parse_or_default(text: Option<&str>) -> Result<Self> {
        text.map_or(Ok(Role::default()), Role::parse)
    }

    /// The role named `text` (as [`Role::as_str`] writes it).
    ///
    /// # Errors
    /// `Config` for any other text.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "owner" => Ok(Role::Owner),
            other => Err(Error::Config(format!(
                "a role is \"read\", \"write\" or \"owner\", not {other:?}"
            ))),
        }
    }

    /// The role as one byte in grants and home records: 0 read, 1 write, 2 owner.
    pub(crate) fn code(self) -> u8 {
        match self {
            Role::Read => 0,
            Role::Write => 1,
            Role::Owner => 2,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Role::Read),
            1 => Some(Role::Write),
            2 => Some(Role::Owner),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a statement's signer signs before the statement's bytes.
const STATEMENT_CONTEXT: &[u8] = b"bucketsync 2026-11 member statement v1";
/// A vault holding more statements than this is not believed (a manifest listing more is
/// refused); writers keep to it.
pub const MAX_STATEMENTS: usize = 1024;
/// A revocation pins at most this many devices of the revoked person.
pub const MAX_PINS: usize = 256;
/// The role code of a revocation.
const REVOKED: u8 = 3;

/// One signed statement about one person's standing in one vault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Whom it is about: their public identity (1,248 bytes).
    #[serde(with = "serde_bytes")]
    member: Vec<u8>,
    /// 0 read, 1 write, 2 owner, 3 revoked.
    role: u8,
    /// For a revocation: each device of the revoked person, with the number of its last
    /// segment whose writes still count (what the revoking owner had merged). Empty otherwise.
    pins: Vec<(DeviceId, u64)>,
    /// For a revocation: the vault key generation that starts with it (sealed to every member
    /// left). 0 otherwise.
    generation: u32,
    /// When, on the signer's clock (ms since the epoch).
    since_ms: u64,
    /// The signer's fingerprint.
    by: [u8; FINGERPRINT_LEN],
    /// The signer's Ed25519 signature of the context, the vault id and the fields above.
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

/// The signed fields of a [`Statement`], in order.
#[derive(Serialize)]
struct Signed<'a> {
    #[serde(with = "serde_bytes")]
    member: &'a [u8],
    role: u8,
    pins: &'a [(DeviceId, u64)],
    generation: u32,
    since_ms: u64,
    by: [u8; FINGERPRINT_LEN],
}

/// What a statement says of its person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// A member with this role.
    Member(Role),
    /// No longer a member: writes in their devices' segments above each pin do not count.
    Revoked(Vec<(DeviceId, u64)>),
}

impl Statement {
    /// `signer`'s statement, in `vault`, that `member` has `standing` since `since`; a
    /// revocation names the key `generation` that starts with it (0 for anything else).
    ///
    /// # Errors
    /// `Config` when a revocation pins more than [`MAX_PINS`] devices.
    pub fn sign(
        vault: VaultId,
        member: &PublicIdentity,
        standing: &Standing,
        generation: u32,
        since: Timestamp,
        signer: &Identity,
    ) -> Result<Self> {
        let (role, pins) = match standing {
            Standing::Member(role) => (role.code(), Vec::new()),
            Standing::Revoked(pins) => {
                if pins.len() > MAX_PINS {
                    return Err(Error::Config(format!(
                        "a revocation pins at most {MAX_PINS} devices"
                    )));
                }
                (REVOKED, pins.clone())
            }
        };
        let generation = if role == REVOKED { generation } else { 0 };
        let mut statement = Statement {
            member: member.as_bytes().to_vec(),
            role,
            pins,
            generation,
            since_ms: since.0,
            by: signer.fingerprint().0,
            signature: Vec::new(),
        };
        statement.signature = signer.sign(&statement.message(vault)).to_vec();
        Ok(statement)
    }

    /// The bytes its signer signs.
    fn message(&self, vault: VaultId) -> Vec<u8> {
        let signed = Signed {
            member: &self.member,
            role: self.role,
            pins: &self.pins,
            generation: self.generation,
            since_ms: self.since_ms,
            by: self.by,
        };
        let mut message = STATEMENT_CONTEXT.to_vec();
        message.extend_from_slice(&vault.0);
        postcard::to_extend(&signed, message).expect("postcard serializes into a Vec")
    }

    /// Its signature (a revocation's salts the names of its key grants).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The person it is about, when their identity decodes.
    fn member(&self) -> Option<PublicIdentity> {
        PublicIdentity::from_bytes(&self.member).ok()
    }

    fn standing(&self) -> Option<Standing> {
        match self.role {
            REVOKED => Some(Standing::Revoked(self.pins.clone())),
            code => Role::from_code(code)
                .filter(|_| self.pins.is_empty() && self.generation == 0)
                .map(Standing::Member),
        }
    }

    /// Whether `signer` (whose fingerprint the statement names) signed it for `vault`.
    fn signed_by(&self, vault: VaultId, signer: &PublicIdentity) -> bool {
        self.signature.len() == SIGNATURE_LEN
            && signer.fingerprint().0 == self.by
            && signer.verifies(&self.message(vault), &self.signature)
    }
}

/// One person's resolved standing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Who.
    pub identity: PublicIdentity,
    /// Their role, or their revocation.
    pub standing: Standing,
    /// Since when (the deciding statement's time).
    pub since: Timestamp,
    /// Who signed the deciding statement.
    pub by: Fingerprint,
    /// The key generation their revocation started (the greatest, when several owners revoked
    /// them); 0 for a member. A checkpoint sealed under it or a later one was written by a
    /// replica that knew of the revocation.
    pub generation: u32,
}

impl Member {
    /// Whether their writes count (role write or owner, not revoked).
    pub fn may_write(&self) -> bool {
        matches!(self.standing, Standing::Member(Role::Write | Role::Owner))
    }
}

/// The people of a shared vault, as its statements resolve.
#[derive(Clone, Debug, Default)]
pub struct Members {
    people: BTreeMap<Fingerprint, Member>,
    by_key: HashMap<[u8; SIGN_PUBLIC_LEN], Fingerprint>,
    /// The statements that counted, to pass on in our manifest.
    accepted: Vec<Statement>,
    /// The key generations counted revocations started.
    generations: BTreeSet<u32>,
    /// Each generation's salt ([`Members::generation_salt`]).
    salts: BTreeMap<u32, Vec<u8>>,
}

impl Members {
    /// Resolves `statements` of `vault`, whose founder is `founder` (see the module's steps).
    pub fn resolve(vault: VaultId, founder: Fingerprint, statements: &[Statement]) -> Self {
        // Each statement's person, decoded once; undecodable ones never count.
        let decoded: Vec<(&Statement, PublicIdentity, Standing)> = statements
            .iter()
            .filter_map(|s| Some((s, s.member()?, s.standing()?)))
            .collect();
        // Owners are found in rounds from the founder (round 0): a statement counts in a round
        // when its signer was an owner before that round, so the outcome and every owner's
        // round (their distance from the founder) do not depend on the statements' order.
        let owners_ignoring = |revoked: &BTreeSet<Fingerprint>| {
            let mut owners: HashMap<Fingerprint, (PublicIdentity, u32)> = HashMap::new();
            let mut accepted = vec![false; decoded.len()];
            // The founder's own statement opens the chain.
            for (i, (s, member, standing)) in decoded.iter().enumerate() {
                if member.fingerprint() == founder
                    && s.by == founder.0
                    && *standing == Standing::Member(Role::Owner)
                    && s.signed_by(vault, member)
                {
                    owners.insert(founder, (member.clone(), 0));
                    accepted[i] = true;
                }
            }
            for round in 1.. {
                let before = owners.clone();
                for (i, (s, member, standing)) in decoded.iter().enumerate() {
                    if accepted[i] || revoked.contains(&Fingerprint(s.by)) {
                        continue;
                    }
                    let Some((signer, _)) = before.get(&Fingerprint(s.by)) else {
                        continue;
                    };
                    if !s.signed_by(vault, signer) {
                        continue;
                    }
                    accepted[i] = true;
                    let fingerprint = member.fingerprint();
                    if *standing == Standing::Member(Role::Owner)
                        && !revoked.contains(&fingerprint)
                        && !owners.contains_key(&fingerprint)
                    {
                        owners.insert(fingerprint, (member.clone(), round));
                    }
                }
                if owners.len() == before.len() {
                    break;
                }
            }
            (accepted, owners)
        };
        let (first, first_owners) = owners_ignoring(&BTreeSet::new());
        // Revocations in order of their signer's distance from the founder, then time, then
        // signature: one counts unless its signer was revoked by one before it. So the
        // founder's revocations always count, and a revoked owner's never undo them.
        let mut revocations: Vec<usize> = (0..decoded.len())
            .filter(|i| first[*i] && matches!(decoded[*i].2, Standing::Revoked(_)))
            .collect();
        let round_of = |i: usize| {
            first_owners
                .get(&Fingerprint(decoded[i].0.by))
                .map_or(u32::MAX, |(_, round)| *round)
        };
        // Ties (the same statement twice) keep the statements' order, as a stable sort would.
        revocations.sort_unstable_by(|a, b| {
            let (sa, sb) = (decoded[*a].0, decoded[*b].0);
            (round_of(*a), sa.since_ms, &sa.signature, *a).cmp(&(
                round_of(*b),
                sb.since_ms,
                &sb.signature,
                *b,
            ))
        });
        let mut revoked: BTreeSet<Fingerprint> = BTreeSet::new();
        let mut counted_revocations = vec![false; decoded.len()];
        for i in revocations {
            let target = decoded[i].1.fingerprint();
            if revoked.contains(&Fingerprint(decoded[i].0.by)) || target == founder {
                continue;
            }
            revoked.insert(target);
            counted_revocations[i] = true;
        }
        let (accepted, _) = owners_ignoring(&revoked);
        let mut members = Members::default();
        for (((statement, member, standing), ok), counted_revocation) in
            decoded.iter().zip(&accepted).zip(&counted_revocations)
        {
            let fingerprint = member.fingerprint();
            let is_revocation = matches!(standing, Standing::Revoked(_));
            // The founder is an owner whatever else is said of them.
            if fingerprint == founder && *standing != Standing::Member(Role::Owner) {
                continue;
            }
            // A revocation counts from step 2, everything else from step 3.
            let counts = if is_revocation {
                *counted_revocation
            } else {
                *ok
            };
            if !counts {
                continue;
            }
            members.accepted.push((*statement).clone());
            if is_revocation && statement.generation > 0 {
                members.generations.insert(statement.generation);
                // The least signature among those naming it: the same for every replica.
                let salt = members
                    .salts
                    .entry(statement.generation)
                    .or_insert_with(|| statement.signature.clone());
                if statement.signature < *salt {
                    *salt = statement.signature.clone();
                }
            }
            let candidate = Member {
                identity: member.clone(),
                standing: standing.clone(),
                since: Timestamp(statement.since_ms),
                by: Fingerprint(statement.by),
                generation: if is_revocation {
                    statement.generation
                } else {
                    0
                },
            };
            match members.people.get_mut(&fingerprint) {
                None => {
                    members.people.insert(fingerprint, candidate);
                }
                Some(known) => *known = decide(known, candidate),
            }
        }
        // One signing key, one person: someone whose Ed25519 key an earlier member has (a
        // public identity made of another person's signing key and one's own KEM key) does
        // not count, so nobody takes over what another signs.
        let mut order: Vec<(bool, Timestamp, Fingerprint)> = members
            .people
            .iter()
            .map(|(f, m)| (*f != founder, m.since, *f))
            .collect();
        // Fingerprints differ, so no two are equal.
        order.sort_unstable();
        for (_, _, fingerprint) in order {
            let key = members.people[&fingerprint].identity.signing_key();
            match members.by_key.entry(key) {
                std::collections::hash_map::Entry::Occupied(_) => {
                    members.people.remove(&fingerprint);
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(fingerprint);
                }
            }
        }
        members.accepted.sort_by(|a, b| {
            (a.since_ms, &a.member, a.role, &a.by).cmp(&(b.since_ms, &b.member, b.role, &b.by))
        });
        members.accepted.dedup();
        members.accepted.truncate(MAX_STATEMENTS);
        members
    }

    /// Everyone, by fingerprint.
    pub fn all(&self) -> impl Iterator<Item = &Member> {
        self.people.values()
    }

    /// The person `fingerprint`, if any statement counts for them.
    pub fn get(&self, fingerprint: &Fingerprint) -> Option<&Member> {
        self.people.get(fingerprint)
    }

    /// The person whose Ed25519 key is `key`.
    pub fn by_signing_key(&self, key: &[u8; SIGN_PUBLIC_LEN]) -> Option<&Member> {
        self.people.get(self.by_key.get(key)?)
    }

    /// The statements that counted, sorted, at most [`MAX_STATEMENTS`].
    pub fn accepted(&self) -> &[Statement] {
        &self.accepted
    }

    /// The newest key generation: the greatest one a counted revocation started (0: none).
    pub fn generation(&self) -> u32 {
        self.generations.last().copied().unwrap_or(0)
    }

    /// What makes the names of generation `generation`'s key grants unpredictable until its
    /// revocation is published: the signature of the revocation that started it (the least,
    /// bytewise, when several counted revocations name it).
    pub fn generation_salt(&self, generation: u32) -> Option<&[u8]> {
        self.salts.get(&generation).map(Vec::as_slice)
    }

    /// Every key generation a counted revocation started, ascending.
    pub fn generations(&self) -> impl Iterator<Item = u32> + '_ {
        self.generations.iter().copied()
    }
}

/// Of two counted statements about one person: a revocation over anything; else the later,
/// then the higher role.
fn decide(known: &Member, candidate: Member) -> Member {
    match (&known.standing, &candidate.standing) {
        (Standing::Revoked(a), Standing::Revoked(b)) => {
            // The lowest pin per device: what every revoking owner agrees counted.
            let mut pins: BTreeMap<DeviceId, u64> = BTreeMap::new();
            pins.extend(a.iter().copied());
            for (device, n) in b {
                pins.entry(*device)
                    .and_modify(|p| *p = (*p).min(*n))
                    .or_insert(*n);
            }
            Member {
                standing: Standing::Revoked(pins.into_iter().collect()),
                generation: known.generation.max(candidate.generation),
                ..known.clone()
            }
        }
        (Standing::Revoked(_), _) => known.clone(),
        (_, Standing::Revoked(_)) => candidate,
        (Standing::Member(a), Standing::Member(b)) => {
            if (candidate.since, *b) > (known.since, *a) {
                candidate
            } else {
                known.clone()
            }
        }
    }
}

/// Adds `new` to `statements` (once each); returns whether anything was added. Keeps at most
/// [`MAX_STATEMENTS`]; when full, refuses more.
pub fn add_statements(statements: &mut Vec<Statement>, new: &[Statement]) -> bool {
    let mut added = false;
    for statement in new {
        if statements.len() >= MAX_STATEMENTS {
            break;
        }
        if !statements.contains(statement) {
            statements.push(statement.clone());
            added = true;
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::VaultKey;

    fn person(byte: u8) -> Identity {
        Identity::of_home(&VaultKey::from_bytes([byte; 32]))
    }

    const VAULT: VaultId = VaultId([7; 16]);

    fn say(who: &Identity, of: &Identity, standing: Standing, at: u64) -> Statement {
        Statement::sign(VAULT, of.public(), &standing, 1, Timestamp(at), who).unwrap()
    }

    fn role_of(members: &Members, who: &Identity) -> Option<Standing> {
        members.get(&who.fingerprint()).map(|m| m.standing.clone())
    }

    #[test]
    fn trust_flows_from_the_founder_through_owners_only() {
        let (alice, bob, carol, dave, mallory) =
            (person(1), person(2), person(3), person(4), person(5));
        let statements = vec![
            // Out of order on purpose.
            say(&bob, &dave, Standing::Member(Role::Write), 30),
            say(&alice, &bob, Standing::Member(Role::Owner), 20),
            say(&alice, &carol, Standing::Member(Role::Read), 21),
            say(&alice, &alice, Standing::Member(Role::Owner), 10),
            // Carol may only read: what she signs counts for nothing.
            say(&carol, &mallory, Standing::Member(Role::Owner), 40),
            // Mallory founds nothing: only the founder's own statement opens the chain.
            say(&mallory, &mallory, Standing::Member(Role::Owner), 5),
        ];
        let members = Members::resolve(VAULT, alice.fingerprint(), &statements);
        assert_eq!(
            role_of(&members, &alice),
            Some(Standing::Member(Role::Owner))
        );
        assert_eq!(role_of(&members, &bob), Some(Standing::Member(Role::Owner)));
        assert_eq!(
            role_of(&members, &carol),
            Some(Standing::Member(Role::Read))
        );
        assert_eq!(
            role_of(&members, &dave),
            Some(Standing::Member(Role::Write))
        );
        assert_eq!(role_of(&members, &mallory), None);
        assert_eq!(members.accepted().len(), 4);
        let key = dave.public().signing_key();
        assert!(members.by_signing_key(&key).unwrap().may_write());
        assert!(!members
            .by_signing_key(&carol.public().signing_key())
            .unwrap()
            .may_write());
        // Another founder, the same statements: nobody but what that founder signed.
        let other = Members::resolve(VAULT, bob.fingerprint(), &statements);
        assert_eq!(other.all().count(), 0);
        // Another vault: no signature holds.
        let elsewhere = Members::resolve(VaultId([8; 16]), alice.fingerprint(), &statements);
        assert_eq!(elsewhere.all().count(), 0);
    }

    #[test]
    fn a_revocation_wins_and_takes_what_the_revoked_owner_signed_with_it() {
        let (alice, bob, carol, dave) = (person(1), person(2), person(3), person(4));
        let pins = vec![(DeviceId([9; 16]), 4)];
        let statements = vec![
            say(&alice, &alice, Standing::Member(Role::Owner), 10),
            say(&alice, &bob, Standing::Member(Role::Owner), 20),
            say(&alice, &carol, Standing::Member(Role::Write), 21),
            say(&bob, &dave, Standing::Member(Role::Write), 30),
            say(&alice, &bob, Standing::Revoked(pins.clone()), 40),
            // Bob, revoked, re-adds himself later and revokes Alice: neither counts.
            say(&bob, &bob, Standing::Member(Role::Owner), 50),
            say(&bob, &alice, Standing::Revoked(Vec::new()), 50),
            // A later role does not undo a revocation.
            say(&alice, &bob, Standing::Member(Role::Write), 60),
        ];
        let members = Members::resolve(VAULT, alice.fingerprint(), &statements);
        assert_eq!(
            role_of(&members, &alice),
            Some(Standing::Member(Role::Owner))
        );
        assert_eq!(role_of(&members, &bob), Some(Standing::Revoked(pins)));
        assert_eq!(
            role_of(&members, &carol),
            Some(Standing::Member(Role::Write))
        );
        // Whom Bob let in goes with him.
        assert_eq!(role_of(&members, &dave), None);
        // The same in any order.
        let mut reversed = statements.clone();
        reversed.reverse();
        let again = Members::resolve(VAULT, alice.fingerprint(), &reversed);
        assert_eq!(again.accepted(), members.accepted());
    }

    #[test]
    fn a_revoked_owner_revokes_nobody_and_nobody_borrows_another_signing_key() {
        let (alice, bob, carol) = (person(1), person(2), person(3));
        let statements = vec![
            say(&alice, &alice, Standing::Member(Role::Owner), 10),
            say(&alice, &bob, Standing::Member(Role::Owner), 20),
            say(&alice, &carol, Standing::Member(Role::Write), 21),
            say(&alice, &bob, Standing::Revoked(Vec::new()), 40),
            // Bob, revoked, revokes Carol, even dated before his own revocation.
            say(&bob, &carol, Standing::Revoked(Vec::new()), 30),
        ];
        let members = Members::resolve(VAULT, alice.fingerprint(), &statements);
        assert_eq!(
            role_of(&members, &carol),
            Some(Standing::Member(Role::Write))
        );
        assert!(matches!(
            role_of(&members, &bob),
            Some(Standing::Revoked(_))
        ));

        // Mallory's public identity: her own KEM key with Alice's signing key.
        let mallory = person(4);
        let mut forged = mallory.public().as_bytes().to_vec();
        forged[crate::identity::KEM_PUBLIC_LEN..].copy_from_slice(&alice.public().signing_key());
        let forged = PublicIdentity::from_bytes(&forged).unwrap();
        let mut with_mallory = statements.clone();
        with_mallory.push(
            Statement::sign(
                VAULT,
                &forged,
                &Standing::Member(Role::Read),
                0,
                Timestamp(50),
                &alice,
            )
            .unwrap(),
        );
        let members = Members::resolve(VAULT, alice.fingerprint(), &with_mallory);
        assert_eq!(members.get(&forged.fingerprint()), None);
        let signer = members
            .by_signing_key(&alice.public().signing_key())
            .unwrap();
        assert_eq!(signer.identity.fingerprint(), alice.fingerprint());
    }

    #[test]
    fn a_later_statement_changes_a_role_and_an_altered_one_counts_for_nothing() {
        let (alice, bob) = (person(1), person(2));
        let mut altered = say(&alice, &bob, Standing::Member(Role::Read), 20);
        altered.role = Role::Owner.code();
        let statements = vec![
            say(&alice, &alice, Standing::Member(Role::Owner), 10),
            say(&alice, &bob, Standing::Member(Role::Write), 20),
            say(&alice, &bob, Standing::Member(Role::Read), 30),
            altered,
        ];
        let members = Members::resolve(VAULT, alice.fingerprint(), &statements);
        assert_eq!(role_of(&members, &bob), Some(Standing::Member(Role::Read)));
        assert_eq!(members.accepted().len(), 3);
        let mut all = Vec::new();
        assert!(add_statements(&mut all, &statements));
        assert!(!add_statements(&mut all, &statements));
        assert_eq!(all.len(), 4);
    }
}
