//! Signed objects: how a shared vault's devices sign what they write (segments, checkpoints,
//! manifests), so that readers can tell who wrote it and keep only what members with the
//! right role wrote (format version 8).
//!
//! A signed object is the ordinary envelope behind a clear prefix:
//!
//! ```text
//! "BKSS" | version u8 (1) | key generation u32 BE | signer's Ed25519 key [32] | signature [64]
//!        | envelope
//! ```
//!
//! The key generation says which of the vault's keys sealed the envelope (0: the vault's own).
//! The signature is Ed25519 over `"bucketsync 2026-11 signed object v1"`, the vault id, the
//! object's name (u16 big-endian length, then its bytes), the generation and the whole
//! envelope. The envelope starts with `BKSY`, so a reader tells the two apart by the first four
//! bytes.

use crate::error::{Error, Result};
use crate::identity::{verifies_with, Identity, SIGNATURE_LEN, SIGN_PUBLIC_LEN};
use crate::ids::VaultId;

/// What a signed object starts with.
pub const SIGNED_MAGIC: &[u8; 4] = b"BKSS";
/// The prefix's layout version.
pub const SIGNED_VERSION: u8 = 1;
/// Bytes before the envelope.
pub const SIGNED_PREFIX_LEN: usize = 4 + 1 + 4 + SIGN_PUBLIC_LEN + SIGNATURE_LEN;
/// Where the signer's key starts.
const KEY_AT: usize = 4 + 1 + 4;
const CONTEXT: &[u8] = b"bucketsync 2026-11 signed object v1";

/// What a signed object's prefix says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The signer's Ed25519 key.
    pub key: [u8; SIGN_PUBLIC_LEN],
    /// The key generation that sealed the envelope.
    pub generation: u32,
}

/// `envelope` (the object named `name` in `vault`, sealed with key generation `generation`),
/// signed by `signer`.
pub fn sign(
    vault: VaultId,
    name: &str,
    generation: u32,
    envelope: &[u8],
    signer: &Identity,
) -> Vec<u8> {
    let signature = signer.sign(&message(vault, name, generation, envelope));
    let mut object = Vec::with_capacity(SIGNED_PREFIX_LEN + envelope.len());
    object.extend_from_slice(SIGNED_MAGIC);
    object.push(SIGNED_VERSION);
    object.extend_from_slice(&generation.to_be_bytes());
    object.extend_from_slice(&signer.public().signing_key());
    object.extend_from_slice(&signature);
    object.extend_from_slice(envelope);
    object
}

fn message(vault: VaultId, name: &str, generation: u32, envelope: &[u8]) -> Vec<u8> {
    let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    let mut message = Vec::with_capacity(CONTEXT.len() + 16 + 2 + name.len() + 4 + envelope.len());
    message.extend_from_slice(CONTEXT);
    message.extend_from_slice(&vault.0);
    message.extend_from_slice(&name_len.to_be_bytes());
    message.extend_from_slice(name.as_bytes());
    message.extend_from_slice(&generation.to_be_bytes());
    message.extend_from_slice(envelope);
    message
}

/// Whether `object` is signed (starts with [`SIGNED_MAGIC`]).
pub fn is_signed(object: &[u8]) -> bool {
    object.starts_with(SIGNED_MAGIC)
}

/// Checks the signature of the signed object `object` named `name`, and strips the prefix,
/// leaving the envelope in `object`; returns the signer's key and the key generation. An
/// unsigned object is left as it is: `None`.
///
/// # Errors
/// `Corrupt` when the prefix is truncated, of an unknown version, or its signature does not
/// verify (nothing is stripped then).
pub fn verify_and_strip(
    vault: VaultId,
    name: &str,
    object: &mut Vec<u8>,
) -> Result<Option<Signature>> {
    if !is_signed(object) {
        return Ok(None);
    }
    if object.len() < SIGNED_PREFIX_LEN {
        return Err(Error::corrupt(name, "a signed object cut short"));
    }
    if object[4] != SIGNED_VERSION {
        return Err(Error::corrupt(
            name,
            format!(
                "signed-object version {} is not supported (this build reads {SIGNED_VERSION})",
                object[4]
            ),
        ));
    }
    let generation = u32::from_be_bytes(object[5..KEY_AT].try_into().expect("4 bytes"));
    let mut key = [0u8; SIGN_PUBLIC_LEN];
    key.copy_from_slice(&object[KEY_AT..KEY_AT + SIGN_PUBLIC_LEN]);
    let signature = &object[KEY_AT + SIGN_PUBLIC_LEN..SIGNED_PREFIX_LEN];
    let envelope = &object[SIGNED_PREFIX_LEN..];
    if !verifies_with(&key, &message(vault, name, generation, envelope), signature) {
        return Err(Error::corrupt(name, "its signature does not verify"));
    }
    object.drain(..SIGNED_PREFIX_LEN);
    Ok(Some(Signature { key, generation }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::VaultKey;

    #[test]
    fn a_signed_object_verifies_only_unaltered_under_its_name_and_vault() {
        let alice = Identity::of_home(&VaultKey::from_bytes([1; 32]));
        let vault = VaultId([3; 16]);
        let envelope = b"BKSY pretend envelope".to_vec();
        let signed = sign(vault, "s/x/1", 3, &envelope, &alice);
        assert!(is_signed(&signed));
        let mut object = signed.clone();
        let signature = verify_and_strip(vault, "s/x/1", &mut object).unwrap();
        assert_eq!(
            signature,
            Some(Signature {
                key: alice.public().signing_key(),
                generation: 3
            })
        );
        assert_eq!(object, envelope);
        for (vault, name) in [(VaultId([4; 16]), "s/x/1"), (vault, "s/x/2")] {
            let mut moved = signed.clone();
            let e = verify_and_strip(vault, name, &mut moved).unwrap_err();
            assert_eq!(e.category(), crate::Category::Corrupt);
            assert_eq!(moved, signed, "nothing stripped");
        }
        let mut flipped = signed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(verify_and_strip(vault, "s/x/1", &mut flipped).is_err());
        let mut other_generation = signed.clone();
        other_generation[8] ^= 1;
        assert!(verify_and_strip(vault, "s/x/1", &mut other_generation).is_err());
        let mut short = signed[..SIGNED_PREFIX_LEN - 1].to_vec();
        assert!(verify_and_strip(vault, "s/x/1", &mut short).is_err());
        let mut plain = envelope.clone();
        assert_eq!(verify_and_strip(vault, "s/x/1", &mut plain).unwrap(), None);
        assert_eq!(plain, envelope);
    }
}
