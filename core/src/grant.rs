//! Grants: a vault's key sealed to another person's [`PublicIdentity`], as one object in the
//! vault's folder (`g/<grant id>`), and the [`Invitation`] text that tells the recipient where
//! it is.
//!
//! A grant is sealed with HPKE (X-Wing, HKDF-SHA256, ChaCha20-Poly1305) to the recipient and
//! signed with Ed25519 by the person who grants it. Its associated data binds the vault and
//! the grant id, so a grant copied to another place fails to open. The invitation carries the
//! store, the vault id, the grant id and the granter's fingerprint, never a key: whoever reads
//! it in a chat learns where to look, and nothing they can open.

use core::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::identity::{
    Fingerprint, Identity, PublicIdentity, FINGERPRINT_LEN, KEM_ENC_LEN, SIGNATURE_LEN,
};
use crate::ids::{Timestamp, VaultId};
use crate::key::VaultKey;
pub use crate::membership::Role;
use crate::membership::Statement;
use crate::store::Store;

/// What a grant object starts with.
pub const GRANT_MAGIC: &[u8; 4] = b"BKSG";
/// The grant object's layout version: 2 adds the vault's founder to the sealed body; version
/// 1 grants are still read (their granter counts as the founder).
pub const GRANT_VERSION: u8 = 2;
/// The HPKE KEM id of X-Wing (draft-ietf-hpke-pq), written in the grant's header.
pub const XWING_KEM_ID: u16 = 0x647a;
/// What an invitation's text starts with.
pub const INVITATION_PREFIX: &str = "bsinv1";
/// HPKE `info` of every grant.
const GRANT_INFO: &[u8] = b"bucketsync 2026-11 grant v1";
/// What the granter signs before the object's bytes.
const SIGNATURE_CONTEXT: &[u8] = b"bucketsync 2026-11 grant signature v1";
/// Header bytes: magic, version, KEM id, vault id, grant id.
const HEADER_LEN: usize = 4 + 1 + 2 + 16 + 16;

/// The relative name of grant `id` in its vault's folder.
pub fn grant_name(id: &[u8; 16]) -> String {
    let mut name = String::with_capacity(2 + 32);
    name.push_str("g/");
    for b in id {
        name.push_str(&format!("{b:02x}"));
    }
    name
}

/// Where a grant waits for its recipient: the text sent to them (`bsinv1…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invitation {
    /// The store URL of the shared vault (without credentials).
    pub store: String,
    /// The shared vault's id (its folder in the store).
    pub vault: VaultId,
    /// The grant object's id.
    pub grant: [u8; 16],
    /// The fingerprint of the person who granted it: the grant must carry their signature.
    pub from: Fingerprint,
    /// The URL of a presigning service (`bucketsync signer`'s `/sign`) through which the
    /// recipient may reach the store, with a token the granter gives them. Not signed: the
    /// recipient sends its token there, so it should come over a channel they trust.
    pub signer: Option<String>,
}

/// The longest signer URL an invitation carries.
const MAX_SIGNER_URL: usize = 2048;

#[derive(Serialize, Deserialize)]
struct InvitationWire {
    store: String,
    vault: [u8; 16],
    grant: [u8; 16],
    from: [u8; FINGERPRINT_LEN],
    signer: Option<String>,
}

impl fmt::Display for Invitation {
    /// `bsinv1` and the postcard encoding in unpadded base64url.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wire = InvitationWire {
            store: self.store.clone(),
            vault: self.vault.0,
            grant: self.grant,
            from: self.from.0,
            signer: self.signer.clone(),
        };
        let bytes = postcard::to_allocvec(&wire).map_err(|_| fmt::Error)?;
        write!(f, "{INVITATION_PREFIX}{}", BASE64URL.encode(bytes))
    }
}

impl Invitation {
    /// Reads an invitation's text; spaces and line breaks are ignored.
    ///
    /// # Errors
    /// `Config` when the text is not an invitation.
    pub fn parse(text: &str) -> Result<Self> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let bad = || Error::Config("not a bucketsync invitation (it starts with bsinv1)".into());
        let body = compact.strip_prefix(INVITATION_PREFIX).ok_or_else(bad)?;
        let bytes = BASE64URL.decode(body).map_err(|_| bad())?;
        let wire: InvitationWire = match postcard::take_from_bytes(&bytes) {
            Ok((wire, [])) => wire,
            _ => return Err(bad()),
        };
        // A signer URL no writer could have written is not followed anywhere.
        if let Some(url) = &wire.signer {
            check_signer_url(url)
                .map_err(|e| Error::Config(format!("not a valid bucketsync invitation: {e}")))?;
        }
        Ok(Invitation {
            store: wire.store,
            vault: VaultId(wire.vault),
            grant: wire.grant,
            from: Fingerprint(wire.from),
            signer: wire.signer,
        })
    }

    /// The grant object's relative name.
    pub fn grant_name(&self) -> String {
        grant_name(&self.grant)
    }

    /// The same invitation, naming `url` as the signer the recipient reaches the store through
    /// (see [`Invitation::signer`]).
    ///
    /// # Errors
    /// `Config` when `url` is not an `https://` URL (`http://` only to this machine) with a
    /// host, or carries user info, a query, a fragment or spaces: the invitation is shared in
    /// clear, and a bearer token goes to that URL (see [`check_signer_url`]).
    pub fn with_signer(mut self, url: &str) -> Result<Self> {
        check_signer_url(url)?;
        self.signer = Some(url.to_owned());
        Ok(self)
    }
}

/// Whether `url` can be an invitation's signer URL (see [`Invitation::with_signer`]).
///
/// # Errors
/// `Config` saying why not.
pub fn check_signer_url(url: &str) -> Result<()> {
    // The URL itself is never repeated: a refused one may hold a secret.
    let bad = |why: &str| Error::Config(format!("a signer URL {why}"));
    if url.len() > MAX_SIGNER_URL || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("is at most 2,048 characters, with no spaces"));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("starts with https://"))?;
    let secure = scheme.eq_ignore_ascii_case("https");
    if !secure && !scheme.eq_ignore_ascii_case("http") {
        return Err(bad("starts with https://"));
    }
    if rest.contains(['?', '#']) {
        return Err(bad(
            "has no query or fragment: a token in it would travel in the invitation, in clear",
        ));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains(['@', '\\']) {
        return Err(bad(
            "carries no credentials: an invitation is shared in clear",
        ));
    }
    // The host, without the port (an IPv6 literal is bracketed).
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err(bad("names a host"));
    }
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host == "::1" || host.starts_with("127.");
    if !secure && !loopback {
        return Err(bad(
            "starts with https:// (http:// only on this machine: a bearer token goes there)",
        ));
    }
    Ok(())
}

/// One generation of a vault's key. Generation 0 is the key the vault was made with (its id
/// derives from it).
#[derive(Clone, Debug)]
pub struct GenerationKey {
    /// The generation, from 0.
    pub generation: u32,
    /// The key.
    pub key: VaultKey,
}

impl GenerationKey {
    /// Key generations as grants and home records carry them: `(generation, key bytes)`.
    pub(crate) fn to_wire(keys: &[GenerationKey]) -> Vec<(u32, [u8; 32])> {
        keys.iter()
            .map(|g| (g.generation, *g.key.secret_bytes()))
            .collect()
    }

    /// Wipes key generations in their wire form (the plaintexts that hold them, on drop).
    pub(crate) fn wipe_wire(keys: &mut [(u32, [u8; 32])]) {
        use zeroize::Zeroize;
        for (_, key) in keys {
            key.zeroize();
        }
    }

    /// The key generations of their wire form.
    pub(crate) fn from_wire(keys: &[(u32, [u8; 32])]) -> Vec<GenerationKey> {
        keys.iter()
            .map(|(generation, key)| GenerationKey {
                generation: *generation,
                key: VaultKey::from_bytes(*key),
            })
            .collect()
    }
}

/// What a grant gives, once opened.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The shared vault.
    pub vault: VaultId,
    /// The granter's name for the vault (`"emma"`).
    pub label: String,
    /// The vault's store URL, as [`Store::url`] writes it: signed, so that an invitation
    /// altered to point elsewhere is refused.
    pub store: String,
    /// What the recipient may do.
    pub role: Role,
    /// The key generations the recipient may read, oldest first; never empty.
    pub keys: Vec<GenerationKey>,
    /// Who granted it (their signature was checked).
    pub granter: PublicIdentity,
    /// Who made the vault: the person a shared vault's membership is traced back to (the
    /// granter's word, signed).
    pub founder: Fingerprint,
    /// The granter's member statement that lets the recipient in (version 2; `None` in
    /// version 1 grants and for the founder): the recipient's devices pass it on.
    pub statement: Option<Statement>,
    /// When, on the granter's clock.
    pub granted: Timestamp,
}

impl Grant {
    /// The key the vault was made with (generation 0).
    pub fn key(&self) -> &VaultKey {
        &self.keys[0].key
    }
}

/// The sealed plaintext of a grant (postcard).
#[derive(Serialize, Deserialize)]
struct GrantBody {
    #[serde(with = "serde_bytes")]
    granter: Vec<u8>,
    label: String,
    store: String,
    role: u8,
    keys: Vec<(u32, [u8; 32])>,
    granted_ms: u64,
    /// Version 2.
    founder: [u8; FINGERPRINT_LEN],
    /// Version 2.
    statement: Option<Statement>,
}

/// The sealed plaintext of a version 1 grant: no founder.
#[derive(Serialize, Deserialize)]
struct GrantBodyV1 {
    #[serde(with = "serde_bytes")]
    granter: Vec<u8>,
    label: String,
    store: String,
    role: u8,
    keys: Vec<(u32, [u8; 32])>,
    granted_ms: u64,
}

impl From<GrantBodyV1> for GrantBody {
    fn from(mut v1: GrantBodyV1) -> Self {
        let founder = PublicIdentity::from_bytes(&v1.granter)
            .map(|g| g.fingerprint().0)
            .unwrap_or_default();
        GrantBody {
            granter: std::mem::take(&mut v1.granter),
            label: std::mem::take(&mut v1.label),
            store: std::mem::take(&mut v1.store),
            role: v1.role,
            keys: v1.keys.clone(),
            granted_ms: v1.granted_ms,
            founder,
            statement: None,
        }
    }
}

impl Drop for GrantBodyV1 {
    fn drop(&mut self) {
        GenerationKey::wipe_wire(&mut self.keys);
    }
}

impl Drop for GrantBody {
    fn drop(&mut self) {
        GenerationKey::wipe_wire(&mut self.keys);
    }
}

/// Seals `grant` to `recipient` as the object `g/<id>` of its vault, signed by `granter`.
///
/// # Errors
/// `Config` when `grant.keys` is empty or its first key is not the vault's.
pub fn seal(
    grant: &Grant,
    id: &[u8; 16],
    granter: &Identity,
    recipient: &PublicIdentity,
    entropy: &mut Entropy,
) -> Result<Vec<u8>> {
    seal_as(GRANT_VERSION, grant, id, granter, recipient, entropy)
}

/// [`seal`] in grant layout `version` (1 or 2; the tests write version 1).
pub(crate) fn seal_as(
    version: u8,
    grant: &Grant,
    id: &[u8; 16],
    granter: &Identity,
    recipient: &PublicIdentity,
    entropy: &mut Entropy,
) -> Result<Vec<u8>> {
    match grant.keys.first() {
        Some(first) if first.generation == 0 && first.key.vault_id() == grant.vault => {}
        _ => {
            return Err(Error::Config(
                "a grant starts with the vault's own key (generation 0)".into(),
            ))
        }
    }
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(GRANT_MAGIC);
    header.push(version);
    header.extend_from_slice(&XWING_KEM_ID.to_be_bytes());
    header.extend_from_slice(&grant.vault.0);
    header.extend_from_slice(id);
    let body = GrantBody {
        granter: granter.public().as_bytes().to_vec(),
        label: grant.label.clone(),
        store: grant.store.clone(),
        role: grant.role.code(),
        keys: GenerationKey::to_wire(&grant.keys),
        granted_ms: grant.granted.0,
        founder: grant.founder.0,
        statement: grant.statement.clone(),
    };
    let plaintext = if version == 1 {
        let v1 = GrantBodyV1 {
            granter: body.granter.clone(),
            label: body.label.clone(),
            store: body.store.clone(),
            role: body.role,
            keys: body.keys.clone(),
            granted_ms: body.granted_ms,
        };
        postcard::to_allocvec(&v1)
    } else {
        postcard::to_allocvec(&body)
    };
    let plaintext =
        zeroize::Zeroizing::new(plaintext.map_err(|e| Error::Config(format!("grant: {e}")))?);
    let (enc, ciphertext) = recipient.seal(GRANT_INFO, &header, &plaintext, entropy)?;
    let mut object = header;
    object.extend_from_slice(&enc);
    object.extend_from_slice(&ciphertext);
    let signature = granter.sign(&signed_message(&object));
    object.extend_from_slice(&signature);
    Ok(object)
}

fn signed_message(unsigned: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_CONTEXT.len() + unsigned.len());
    message.extend_from_slice(SIGNATURE_CONTEXT);
    message.extend_from_slice(unsigned);
    message
}

/// Opens the grant object fetched at `invitation`'s place with the recipient's identity, and
/// checks it: its header names the invitation's vault and grant, it opens with `recipient`
/// (`access` when it is sealed to someone else), its granter has the invitation's fingerprint
/// and signed it, and its first key is the vault's.
///
/// # Errors
/// `Access` when it is not sealed to `recipient`; `Corrupt` for everything else that fails.
pub fn open(object: &[u8], invitation: &Invitation, recipient: &Identity) -> Result<Grant> {
    open_checked(
        object,
        invitation.vault,
        &invitation.grant,
        Some((invitation.from, &invitation.store)),
        recipient,
    )
}

/// The id of the grant of key generation `generation` to the person `member` in `vault`:
/// the first 16 bytes of `derive_key("bucketsync 2026-11 key grant id v2", vault id ‖
/// generation u32 BE ‖ fingerprint ‖ salt)`, the salt being the signature of the revocation
/// that started the generation. Nobody can make the name before that revocation is signed;
/// every member finds it once it is published; nobody but the member opens it.
pub fn rekey_id(vault: VaultId, generation: u32, member: &Fingerprint, salt: &[u8]) -> [u8; 16] {
    let mut input = Vec::with_capacity(16 + 4 + FINGERPRINT_LEN + salt.len());
    input.extend_from_slice(&vault.0);
    input.extend_from_slice(&generation.to_be_bytes());
    input.extend_from_slice(&member.0);
    input.extend_from_slice(salt);
    let hash = blake3::derive_key("bucketsync 2026-11 key grant id v2", &input);
    let mut id = [0u8; 16];
    id.copy_from_slice(&hash[..16]);
    id
}

/// Opens a grant of later key generations (`g/<rekey_id>`, made when a member was revoked):
/// as [`open`], without an invitation's granter and store to compare (the caller checks that
/// the granter is an owner).
///
/// # Errors
/// As [`open`].
pub fn open_rekey(
    object: &[u8],
    vault: VaultId,
    id: &[u8; 16],
    recipient: &Identity,
) -> Result<Grant> {
    open_checked(object, vault, id, None, recipient)
}

/// [`open`]; `invited` is the invitation's granter and store, when there is one.
fn open_checked(
    object: &[u8],
    vault: VaultId,
    id: &[u8; 16],
    invited: Option<(Fingerprint, &str)>,
    recipient: &Identity,
) -> Result<Grant> {
    let name = grant_name(id);
    let corrupt = |reason: &str| Error::corrupt(&name, reason);
    if object.len() < HEADER_LEN + KEM_ENC_LEN + 16 + SIGNATURE_LEN || &object[..4] != GRANT_MAGIC {
        return Err(corrupt("not a bucketsync grant"));
    }
    let version = object[4];
    if !(1..=GRANT_VERSION).contains(&version) {
        return Err(corrupt(&format!(
            "grant version {version} is not supported (this build reads 1 to {GRANT_VERSION})"
        )));
    }
    if object[5..7] != XWING_KEM_ID.to_be_bytes() {
        return Err(corrupt("a grant sealed with an unknown KEM"));
    }
    if object[7..23] != vault.0 {
        return Err(Error::WrongVault { object: name });
    }
    if object[23..39] != *id {
        return Err(corrupt("a grant moved here from another name"));
    }
    let (unsigned, signature) = object.split_at(object.len() - SIGNATURE_LEN);
    let (header, sealed) = unsigned.split_at(HEADER_LEN);
    let (enc, ciphertext) = sealed.split_at(KEM_ENC_LEN);
    let plaintext = recipient
        .open(enc, GRANT_INFO, header, ciphertext)
        .map(zeroize::Zeroizing::new)
        .ok_or_else(|| {
            Error::Access(format!(
                "the grant {name} is not for this identity ({}), or was altered",
                recipient.fingerprint()
            ))
        })?;
    let body: GrantBody = match version {
        1 => match postcard::take_from_bytes::<GrantBodyV1>(&plaintext) {
            Ok((body, [])) => body.into(),
            _ => return Err(corrupt("a grant whose content does not decode")),
        },
        _ => match postcard::take_from_bytes(&plaintext) {
            Ok((body, [])) => body,
            _ => return Err(corrupt("a grant whose content does not decode")),
        },
    };
    let granter = PublicIdentity::from_bytes(&body.granter)
        .map_err(|_| corrupt("a grant whose granter does not decode"))?;
    if let Some((from, _)) = invited {
        if granter.fingerprint() != from {
            return Err(corrupt(&format!(
                "a grant made by {}, not by the inviter {from}",
                granter.fingerprint(),
            )));
        }
    }
    if !granter.verifies(&signed_message(unsigned), signature) {
        return Err(corrupt("a grant whose signature does not verify"));
    }
    if let Some((_, store)) = invited {
        let signed_store = Store::parse(&body.store).map(|s| s.url());
        let invited_store = Store::parse(store).map(|s| s.url());
        if signed_store.is_err() || signed_store != invited_store {
            return Err(corrupt(
                "the invitation names another store than the grant its granter signed",
            ));
        }
    }
    let role = Role::from_code(body.role).ok_or_else(|| corrupt("a grant with an unknown role"))?;
    let keys = GenerationKey::from_wire(&body.keys);
    match keys.first() {
        Some(first) if first.generation == 0 && first.key.vault_id() == vault => {}
        _ => return Err(corrupt("a grant whose first key is not the vault's")),
    }
    Ok(Grant {
        vault,
        label: body.label.clone(),
        store: body.store.clone(),
        role,
        keys,
        granter,
        granted: Timestamp(body.granted_ms),
        founder: Fingerprint(body.founder),
        statement: body.statement.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(byte: u8) -> Identity {
        Identity::of_home(&VaultKey::from_bytes([byte; 32]))
    }

    fn emma() -> (VaultKey, Grant) {
        let key = VaultKey::from_bytes([42; 32]);
        let grant = Grant {
            vault: key.vault_id(),
            label: "emma".into(),
            store: "s3://family/records?region=eu-west-1&path_style=false".into(),
            role: Role::Write,
            keys: vec![GenerationKey {
                generation: 0,
                key: key.clone(),
            }],
            granter: person(1).public().clone(),
            granted: Timestamp(1_767_225_600_000),
            founder: person(1).fingerprint(),
            statement: None,
        };
        (key, grant)
    }

    fn invitation(grant: &Grant, id: [u8; 16], from: &Identity) -> Invitation {
        Invitation {
            store: "s3://family/records?region=eu-west-1".into(),
            vault: grant.vault,
            grant: id,
            from: from.fingerprint(),
            signer: None,
        }
    }

    #[test]
    fn the_recipient_opens_the_grant_and_gets_the_key_and_role() {
        let (alice, bob) = (person(1), person(2));
        let (key, mut grant) = emma();
        let founder = person(9).fingerprint();
        grant.founder = founder;
        grant.statement = Some(
            Statement::sign(
                grant.vault,
                bob.public(),
                &crate::membership::Standing::Member(Role::Write),
                0,
                grant.granted,
                &alice,
            )
            .unwrap(),
        );
        let id = [7; 16];
        let mut entropy = Entropy::from_seed([3; 32]);
        let object = seal(&grant, &id, &alice, bob.public(), &mut entropy).unwrap();
        assert_eq!(object[4], GRANT_VERSION);
        let invite = invitation(&grant, id, &alice);
        let opened = open(&object, &invite, &bob).unwrap();
        assert_eq!(opened.key().secret_bytes(), key.secret_bytes());
        assert_eq!(opened.role, Role::Write);
        assert_eq!(opened.label, "emma");
        assert_eq!(opened.granter, *alice.public());
        assert_eq!(opened.granted, grant.granted);
        assert_eq!(opened.founder, founder);
        assert_eq!(opened.statement, grant.statement);
        // Version 1 (no founder: the granter's fingerprint stands in; no statement).
        let old = seal_as(1, &grant, &id, &alice, bob.public(), &mut entropy).unwrap();
        let opened = open(&old, &invite, &bob).unwrap();
        assert_eq!(
            (opened.founder, &opened.statement),
            (alice.fingerprint(), &None)
        );
        assert_eq!(opened.key().secret_bytes(), key.secret_bytes());
        // The invitation travels as text and names no key.
        let text = invite.to_string();
        assert!(text.starts_with(INVITATION_PREFIX));
        assert_eq!(Invitation::parse(&text).unwrap(), invite);
        assert!(!text.contains(&BASE64URL.encode(key.secret_bytes())));
    }

    #[test]
    fn another_identity_gets_access_and_every_alteration_is_refused() {
        let (alice, bob, carol) = (person(1), person(2), person(3));
        let (_, grant) = emma();
        let id = [7; 16];
        let mut entropy = Entropy::from_seed([3; 32]);
        let object = seal(&grant, &id, &alice, bob.public(), &mut entropy).unwrap();
        let invite = invitation(&grant, id, &alice);
        let e = open(&object, &invite, &carol).unwrap_err();
        assert_eq!(e.category(), crate::Category::Access, "{e}");

        // A byte changed anywhere: in the header and the sealed part HPKE refuses (access, as
        // it cannot tell), in the signature the check does (corrupt).
        for at in [
            0,
            4,
            5,
            10,
            30,
            HEADER_LEN + 5,
            object.len() - 100,
            object.len() - 1,
        ] {
            let mut altered = object.clone();
            altered[at] ^= 1;
            assert!(open(&altered, &invite, &bob).is_err(), "byte {at}");
        }
        // The same grant under another name, or claimed by another inviter.
        let moved = Invitation {
            grant: [8; 16],
            ..invite.clone()
        };
        assert_eq!(
            open(&object, &moved, &bob).unwrap_err().category(),
            crate::Category::Corrupt
        );
        let claimed = Invitation {
            from: carol.fingerprint(),
            ..invite.clone()
        };
        assert!(open(&object, &claimed, &bob)
            .unwrap_err()
            .to_string()
            .contains("not by the inviter"));
        // Carol re-seals Alice's grant content to Bob under her own signature: the fingerprint
        // in the invitation is Alice's, so Bob refuses it.
        let forged = seal(&grant, &id, &carol, bob.public(), &mut entropy).unwrap();
        assert!(open(&forged, &invite, &bob).is_err());
        // The invitation altered to send Bob to another store (holding a copy of the grant):
        // the store is signed.
        let elsewhere_store = Invitation {
            store: "s3://family/records?region=eu-west-1&endpoint=https://evil.example".into(),
            ..invite.clone()
        };
        let e = open(&object, &elsewhere_store, &bob).unwrap_err();
        assert!(e.to_string().contains("another store"), "{e}");
        // The same store written another way is the same store.
        let respelled = Invitation {
            store: "s3://family/records/?region=eu-west-1&path_style=false".into(),
            ..invite.clone()
        };
        open(&object, &respelled, &bob).unwrap();
        // A grant for another vault's place.
        let elsewhere = Invitation {
            vault: VaultId([1; 16]),
            ..invite
        };
        assert_eq!(
            open(&object, &elsewhere, &bob).unwrap_err().category(),
            crate::Category::WrongVault
        );
    }

    #[test]
    fn a_grant_must_start_with_the_vaults_own_key() {
        let (alice, bob) = (person(1), person(2));
        let (_, mut grant) = emma();
        grant.keys[0].key = VaultKey::from_bytes([43; 32]);
        let mut entropy = Entropy::from_seed([3; 32]);
        assert!(seal(&grant, &[7; 16], &alice, bob.public(), &mut entropy).is_err());
    }

    #[test]
    fn roles_and_invitations_read_back_and_bad_text_is_a_config_error() {
        for role in [Role::Read, Role::Write, Role::Owner] {
            assert_eq!(Role::parse(role.as_str()).unwrap(), role);
        }
        assert_eq!(
            Role::parse("admin").unwrap_err().category(),
            crate::Category::Config
        );
        for bad in ["", "bsinv1", "bsinv1!!!", "hello", "bsinv1AAAA"] {
            assert_eq!(
                Invitation::parse(bad).unwrap_err().category(),
                crate::Category::Config,
                "{bad}"
            );
        }
        assert_eq!(grant_name(&[0xab; 16]), format!("g/{}", "ab".repeat(16)));
    }

    #[test]
    fn an_invitation_carries_a_signer_url_without_credentials() {
        let alice = person(1);
        let (_, grant) = emma();
        let plain = invitation(&grant, [7; 16], &alice);
        assert_eq!(plain.signer, None);
        let url = "https://signer.example.com:8787/sign";
        let through = plain.clone().with_signer(url).unwrap();
        let read = Invitation::parse(&through.to_string()).unwrap();
        assert_eq!(read.signer.as_deref(), Some(url));
        assert_eq!(
            Invitation {
                signer: None,
                ..read
            },
            plain
        );
        assert!(through.to_string().len() > plain.to_string().len());
        for good in [
            "HTTPS://signer.example.com/sign",
            "http://127.0.0.1:8787/sign",
            "http://localhost:8787/sign",
            "http://[::1]:8787/sign",
            "https://[2001:db8::1]/sign",
        ] {
            assert!(plain.clone().with_signer(good).is_ok(), "{good}");
        }
        for bad in [
            "signer.example.com/sign",
            "ftp://signer.example.com/sign",
            "https:///sign",
            "https://:443/sign",
            "https://token@signer.example.com/sign",
            "https://user:secret@signer.example.com/sign",
            "https://signer.example.com\\@evil.example/sign",
            "https://signer.example.com/sign?token=secret",
            "https://signer.example.com/sign#secret",
            "http://signer.example.com/sign",
            "https://signer.example.com/si gn",
        ] {
            let e = plain.clone().with_signer(bad).unwrap_err();
            assert_eq!(e.category(), crate::Category::Config, "{bad}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        let long = format!("https://s.example/{}", "a".repeat(MAX_SIGNER_URL));
        assert!(plain.clone().with_signer(&long).is_err());
        // Nor is one read from an invitation someone wrote by hand.
        let forged = Invitation {
            signer: Some("javascript:alert(1)".into()),
            ..plain
        };
        let e = Invitation::parse(&forged.to_string()).unwrap_err();
        assert_eq!(e.category(), crate::Category::Config, "{e}");
    }
}
