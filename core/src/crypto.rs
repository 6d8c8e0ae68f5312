//! The encrypted object envelope shared by every object in the bucket, and key derivation.
//!
//! Layout (all of it specified in `docs/FORMAT.md`):
//!
//! ```text
//! magic "BKSY" | version u8 | kind u8 | vault id [16] | name length u16 BE | name
//!   | nonce [24] | check [8] | ciphertext | tag [16]
//! ```
//!
//! The associated data is the header from the magic through the name ([`ObjectAd`]). The check
//! is an unkeyed BLAKE3 of the header before it; it only lets a reader tell a damaged header
//! (corrupt) apart from an intact header that names another vault or another object.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::ids::VaultId;

/// The bucket format version this build writes. It reads this one and every earlier one
/// ([`OLDEST_FORMAT_VERSION`]..=`FORMAT_VERSION`).
pub const FORMAT_VERSION: u8 = 3;
/// The oldest bucket format version this build still reads.
pub const OLDEST_FORMAT_VERSION: u8 = 1;
/// The envelope version of objects that never enter the bucket (local state, journal entries,
/// the inner envelope of a wrapped key): their layouts carry versions of their own.
const LOCAL_ENVELOPE_VERSION: u8 = 1;

const MAGIC: &[u8; 4] = b"BKSY";
const NONCE_LEN: usize = 24;
const CHECK_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// Bytes before the name: magic, version, kind, vault id, name length.
const FIXED_LEN: usize = 4 + 1 + 1 + 16 + 2;

/// What an object is. Part of the associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ObjectKind {
    Segment = 1,
    Manifest = 2,
    LocalState = 3,
    JournalEntry = 4,
    Checkpoint = 5,
}

impl ObjectKind {
    /// The envelope version this build writes for the kind.
    fn version(self) -> u8 {
        match self {
            ObjectKind::Segment | ObjectKind::Manifest | ObjectKind::Checkpoint => FORMAT_VERSION,
            ObjectKind::LocalState | ObjectKind::JournalEntry => LOCAL_ENVELOPE_VERSION,
        }
    }
}

/// The associated data of an object: everything that binds it to its place.
///
/// Changing these fields, their order or their encoding is a format change: bump
/// [`FORMAT_VERSION`] and update `docs/FORMAT.md`.
pub(crate) struct ObjectAd<'a> {
    pub vault: VaultId,
    pub kind: ObjectKind,
    /// The object's name relative to the vault folder, e.g. `m/<device>`.
    pub name: &'a str,
}

/// A 256-bit secret key, wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SecretKey(pub [u8; 32]);

impl core::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// A subkey for one purpose, by BLAKE3 `derive_key` with a context unique to that purpose.
    pub fn derive(&self, context: &str) -> SecretKey {
        SecretKey(blake3::derive_key(context, &self.0))
    }

    pub fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }
}

/// Starts a sealed object: writes the header for `ad` with a fresh nonce drawn from `entropy`.
/// Append the plaintext to the returned buffer, then call [`finish_seal`].
///
/// # Errors
/// `Config` when the name is longer than 65,535 bytes.
pub(crate) fn begin_seal(
    ad: &ObjectAd<'_>,
    capacity: usize,
    entropy: &mut Entropy,
) -> Result<SealBuffer> {
    let name = ad.name.as_bytes();
    let name_len = u16::try_from(name.len())
        .map_err(|_| Error::Config(format!("object name too long: {}", ad.name)))?;
    let mut buf =
        Vec::with_capacity(FIXED_LEN + name.len() + NONCE_LEN + CHECK_LEN + capacity + TAG_LEN);
    buf.extend_from_slice(MAGIC);
    buf.push(ad.kind.version());
    buf.push(ad.kind as u8);
    buf.extend_from_slice(&ad.vault.0);
    buf.extend_from_slice(&name_len.to_be_bytes());
    buf.extend_from_slice(name);
    let ad_len = buf.len();
    let nonce: [u8; NONCE_LEN] = entropy.array();
    buf.extend_from_slice(&nonce);
    let check = blake3::hash(&buf);
    buf.extend_from_slice(&check.as_bytes()[..CHECK_LEN]);
    let body_start = buf.len();
    Ok(SealBuffer {
        buf,
        ad_len,
        body_start,
    })
}

/// An object being sealed: the header, then the plaintext appended by the caller.
pub(crate) struct SealBuffer {
    pub buf: Vec<u8>,
    ad_len: usize,
    body_start: usize,
}

/// Encrypts the plaintext appended after the header in place and appends the tag.
pub(crate) fn finish_seal(key: &SecretKey, sealing: SealBuffer) -> Vec<u8> {
    let SealBuffer {
        mut buf,
        ad_len,
        body_start,
    } = sealing;
    let (header, body) = buf.split_at_mut(body_start);
    let nonce = XNonce::from_slice(&header[ad_len..ad_len + NONCE_LEN]);
    let tag = key
        .cipher()
        .encrypt_in_place_detached(nonce, &header[..ad_len], body)
        // XChaCha20-Poly1305 only refuses messages over 256 GiB, far beyond any object here.
        .expect("plaintext within XChaCha20-Poly1305 limits");
    buf.extend_from_slice(&tag);
    buf
}

/// Seals `plaintext` as one object.
pub(crate) fn seal(
    key: &SecretKey,
    ad: &ObjectAd<'_>,
    plaintext: &[u8],
    entropy: &mut Entropy,
) -> Result<Vec<u8>> {
    let mut sealing = begin_seal(ad, plaintext.len(), entropy)?;
    sealing.buf.extend_from_slice(plaintext);
    Ok(finish_seal(key, sealing))
}

/// Opens an object fetched as `expected`, returning its plaintext.
///
/// See [`open_versioned`] for the errors.
pub(crate) fn open(key: &SecretKey, expected: &ObjectAd<'_>, object: Vec<u8>) -> Result<Vec<u8>> {
    open_versioned(key, expected, object).map(|(_, plain)| plain)
}

/// Opens an object fetched as `expected`, returning its format version and its plaintext.
///
/// # Errors
/// - `Corrupt` when the object is truncated, its header is damaged, its format version is
///   unknown, it is another kind of object or another object's name (moved), or it fails
///   authentication;
/// - `WrongVault` when its intact header names another vault.
pub(crate) fn open_versioned(
    key: &SecretKey,
    expected: &ObjectAd<'_>,
    mut object: Vec<u8>,
) -> Result<(u8, Vec<u8>)> {
    let name = expected.name;
    let corrupt = |reason: &str| Error::corrupt(name, reason);
    if object.len() < FIXED_LEN || &object[..4] != MAGIC {
        return Err(corrupt("not a bucketsync object"));
    }
    // Before anything else: another version may frame its header differently.
    let version = object[4];
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(corrupt(&format!(
            "format version {version} is not supported (this build reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})"
        )));
    }
    let name_len = u16::from_be_bytes([object[FIXED_LEN - 2], object[FIXED_LEN - 1]]) as usize;
    let ad_len = FIXED_LEN + name_len;
    let body_start = ad_len + NONCE_LEN + CHECK_LEN;
    if object.len() < body_start + TAG_LEN {
        return Err(corrupt("truncated"));
    }
    let check = blake3::hash(&object[..ad_len + NONCE_LEN]);
    if check.as_bytes()[..CHECK_LEN] != object[ad_len + NONCE_LEN..body_start] {
        return Err(corrupt("damaged header"));
    }
    if object[5] != expected.kind as u8 {
        return Err(corrupt("holds another kind of object"));
    }
    if object[6..22] != expected.vault.0 {
        return Err(Error::WrongVault {
            object: name.to_owned(),
        });
    }
    if &object[FIXED_LEN..ad_len] != name.as_bytes() {
        let found = String::from_utf8_lossy(&object[FIXED_LEN..ad_len]).into_owned();
        return Err(corrupt(&format!("was moved here from {found}")));
    }
    let tag_start = object.len() - TAG_LEN;
    let tag = *Tag::from_slice(&object[tag_start..]);
    let (header, rest) = object.split_at_mut(body_start);
    let body = &mut rest[..tag_start - body_start];
    let nonce = XNonce::from_slice(&header[ad_len..ad_len + NONCE_LEN]);
    key.cipher()
        .decrypt_in_place_detached(nonce, &header[..ad_len], body, &tag)
        .map_err(|_| corrupt("failed authentication"))?;
    object.truncate(tag_start);
    object.drain(..body_start);
    Ok((version, object))
}

/// Decodes a postcard plaintext that must be exactly one value: leftover bytes are an error.
pub(crate) fn decode_exact<'a, T: serde::Deserialize<'a>>(
    plain: &'a [u8],
) -> core::result::Result<T, String> {
    match postcard::take_from_bytes(plain) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("{} bytes left over", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad(name: &str) -> ObjectAd<'_> {
        ObjectAd {
            vault: VaultId([7; 16]),
            kind: ObjectKind::Manifest,
            name,
        }
    }

    #[test]
    fn round_trip() {
        let key = SecretKey([1; 32]);
        let sealed = seal(&key, &ad("m/x"), b"hello", &mut Entropy::from_seed([0; 32])).unwrap();
        assert_eq!(open(&key, &ad("m/x"), sealed).unwrap(), b"hello");
    }

    #[test]
    fn every_flipped_byte_is_corrupt() {
        let key = SecretKey([1; 32]);
        let sealed = seal(
            &key,
            &ad("m/x"),
            b"some plaintext",
            &mut Entropy::from_seed([0; 32]),
        )
        .unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            let err = open(&key, &ad("m/x"), bad).unwrap_err();
            assert_eq!(err.category(), crate::Category::Corrupt, "byte {i}: {err}");
        }
    }

    #[test]
    fn misplaced_and_foreign_objects_are_told_apart() {
        let key = SecretKey([1; 32]);
        let sealed = seal(&key, &ad("m/x"), b"p", &mut Entropy::from_seed([0; 32])).unwrap();
        let moved = open(&key, &ad("m/y"), sealed.clone()).unwrap_err();
        assert!(moved.to_string().contains("moved here from m/x"), "{moved}");
        let other_vault = ObjectAd {
            vault: VaultId([8; 16]),
            ..ad("m/x")
        };
        assert_eq!(
            open(&key, &other_vault, sealed).unwrap_err().category(),
            crate::Category::WrongVault
        );
    }
}
