//! A person's identity, for sharing vaults with other people: an X-Wing key pair (ML-KEM-768 +
//! X25519, a post-quantum hybrid KEM) that grants are sealed to with HPKE (RFC 9180), and an
//! Ed25519 key pair that signs what the person grants.
//!
//! Both derive from the key of the person's **home** vault (BLAKE3 `derive_key`, then the KEM's
//! own `DeriveKeyPair`), so every device of the person has the identity as soon as it holds the
//! home key, and no two devices can ever make two different identities. The public half
//! ([`PublicIdentity`]) travels as text (`bsid1…`); its [`fingerprint`](PublicIdentity::fingerprint)
//! is what two people compare out of band.

use core::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::XWing;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};

use crate::crypto::SecretKey;
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::key::{base32_groups, typed_base32, Purpose, VaultKey};

/// Bytes of an X-Wing public (encapsulation) key.
pub const KEM_PUBLIC_LEN: usize = 1216;
/// Bytes of an X-Wing encapsulated key (the `enc` of HPKE).
pub const KEM_ENC_LEN: usize = 1120;
/// Bytes of an Ed25519 public key.
pub const SIGN_PUBLIC_LEN: usize = 32;
/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes of a public identity: the X-Wing public key, then the Ed25519 public key.
pub const PUBLIC_LEN: usize = KEM_PUBLIC_LEN + SIGN_PUBLIC_LEN;
/// What a public identity's text starts with.
pub const PUBLIC_PREFIX: &str = "bsid1";
/// Bytes of a fingerprint (80 bits), shown as 16 base32 digits.
pub const FINGERPRINT_LEN: usize = 10;

/// A fingerprint: the first 10 bytes of `derive_key("bucketsync 2026-11 identity fingerprint
/// v1", public identity bytes)`, shown as `7K3M-Q9XD-2RTA-P4WB`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub [u8; FINGERPRINT_LEN]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32_groups(&self.0, FINGERPRINT_LEN * 8 / 5))
    }
}

impl Fingerprint {
    /// Whether `text` is this fingerprint as a person typed it: case, spaces and dashes do not
    /// matter, `I`/`L` read as `1` and `O` as `0` (as in recovery codes).
    pub fn matches(&self, text: &str) -> bool {
        typed_base32(text).eq(typed_base32(&self.to_string()))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The half of an identity that others may know: where grants are sealed to, and the key that
/// checks the person's signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicIdentity {
    bytes: Box<[u8; PUBLIC_LEN]>,
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicIdentity({})", self.fingerprint())
    }
}

impl fmt::Display for PublicIdentity {
    /// `bsid1` followed by the 1,248 bytes in unpadded base64url (1,669 characters in all).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", BASE64URL.encode(&self.bytes[..]))
    }
}

impl PublicIdentity {
    /// Reads the text form back; spaces and line breaks (a pasted, wrapped copy) are ignored.
    ///
    /// # Errors
    /// `Config` when it is not a public identity or its keys do not decode.
    pub fn parse(text: &str) -> Result<Self> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let body = compact.strip_prefix(PUBLIC_PREFIX).ok_or_else(|| {
            Error::Config(format!(
                "not a public identity: it should start with {PUBLIC_PREFIX}"
            ))
        })?;
        let bytes = BASE64URL
            .decode(body)
            .map_err(|_| Error::Config("a public identity that is not base64url".into()))?;
        Self::from_bytes(&bytes)
    }

    /// The identity from its 1,248 bytes (X-Wing public key, then Ed25519 public key).
    ///
    /// # Errors
    /// `Config` when the length is wrong or a key does not decode.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes: [u8; PUBLIC_LEN] = bytes.try_into().map_err(|_| {
            Error::Config(format!(
                "a public identity has {PUBLIC_LEN} bytes, not {}",
                bytes.len()
            ))
        })?;
        let identity = PublicIdentity {
            bytes: Box::new(bytes),
        };
        identity.kem_key()?;
        identity.verifying_key()?;
        Ok(identity)
    }

    /// The 1,248 bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_LEN] {
        &self.bytes
    }

    /// The short form to compare out of band.
    pub fn fingerprint(&self) -> Fingerprint {
        let hash = blake3::derive_key(
            "bucketsync 2026-11 identity fingerprint v1",
            &self.bytes[..],
        );
        let mut fingerprint = [0u8; FINGERPRINT_LEN];
        fingerprint.copy_from_slice(&hash[..FINGERPRINT_LEN]);
        Fingerprint(fingerprint)
    }

    fn kem_key(&self) -> Result<<XWing as hpke::Kem>::PublicKey> {
        <XWing as hpke::Kem>::PublicKey::from_bytes(&self.bytes[..KEM_PUBLIC_LEN])
            .map_err(|_| Error::Config("a public identity whose X-Wing key does not decode".into()))
    }

    fn verifying_key(&self) -> Result<VerifyingKey> {
        let mut key = [0u8; SIGN_PUBLIC_LEN];
        key.copy_from_slice(&self.bytes[KEM_PUBLIC_LEN..]);
        VerifyingKey::from_bytes(&key).map_err(|_| {
            Error::Config("a public identity whose Ed25519 key does not decode".into())
        })
    }

    /// The Ed25519 public key that checks this person's signatures (the last 32 bytes).
    pub fn signing_key(&self) -> [u8; SIGN_PUBLIC_LEN] {
        let mut key = [0u8; SIGN_PUBLIC_LEN];
        key.copy_from_slice(&self.bytes[KEM_PUBLIC_LEN..]);
        key
    }

    /// HPKE base-mode seal to this identity (X-Wing, HKDF-SHA256, ChaCha20-Poly1305):
    /// `(enc, ciphertext)`, the ciphertext 16 bytes longer than `plaintext`.
    pub(crate) fn seal(
        &self,
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        entropy: &mut Entropy,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let key = self.kem_key()?;
        let mut rng = EntropyRng(entropy);
        let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<
            ChaCha20Poly1305,
            HkdfSha256,
            XWing,
        >(&OpModeS::Base, &key, info, plaintext, aad, &mut rng)
        .map_err(|e| Error::Config(format!("cannot seal to a public identity: {e}")))?;
        Ok((enc.to_bytes().to_vec(), ciphertext))
    }

    /// Whether `signature` is this identity's Ed25519 signature of `message` (strict
    /// verification: no malleable or small-order encodings).
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        verifies_with(&self.signing_key(), message, signature)
    }
}

/// A person's whole identity, secret half included. Never printed (its `Debug` shows the
/// fingerprint); wiped from memory on drop (the KEM and signing keys wipe themselves).
pub struct Identity {
    kem: <XWing as hpke::Kem>::PrivateKey,
    signing: SigningKey,
    public: PublicIdentity,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.public.fingerprint())
    }
}

impl Identity {
    /// The identity of the person whose home vault has `home` as its key.
    pub fn of_home(home: &VaultKey) -> Self {
        Self::from_seeds(&identity_seeds(home))
    }

    /// The identity from the two seeds [`identity_seeds`] derives from a home key.
    pub(crate) fn from_seeds(seeds: &[SecretKey; 2]) -> Self {
        let (kem, kem_public) = XWing::derive_keypair(&seeds[0].0);
        let signing = SigningKey::from_bytes(&seeds[1].0);
        let mut bytes = Box::new([0u8; PUBLIC_LEN]);
        bytes[..KEM_PUBLIC_LEN].copy_from_slice(&kem_public.to_bytes());
        bytes[KEM_PUBLIC_LEN..].copy_from_slice(signing.verifying_key().as_bytes());
        Identity {
            kem,
            signing,
            public: PublicIdentity { bytes },
        }
    }

    /// The public half.
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// The public half's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.public.fingerprint()
    }

    /// Opens what [`PublicIdentity::seal`] sealed to this identity.
    ///
    /// # Errors
    /// `None` when `enc` or the ciphertext fails (sealed to someone else, or altered).
    pub(crate) fn open(
        &self,
        enc: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Option<Vec<u8>> {
        let enc = <XWing as hpke::Kem>::EncappedKey::from_bytes(enc).ok()?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, XWing>(
            &OpModeR::Base,
            &self.kem,
            &enc,
            info,
            ciphertext,
            aad,
        )
        .ok()
    }

    /// The Ed25519 signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }
}

/// Whether `signature` is the Ed25519 signature of `message` by `key` (strict verification).
pub(crate) fn verifies_with(key: &[u8; SIGN_PUBLIC_LEN], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(signature)) = (
        VerifyingKey::from_bytes(key),
        Signature::from_slice(signature),
    ) else {
        return false;
    };
    key.verify_strict(message, &signature).is_ok()
}

/// The seeds of a home's identity: its X-Wing key pair's and its Ed25519 key's.
pub(crate) fn identity_seeds(home: &VaultKey) -> [SecretKey; 2] {
    [
        home.subkey(Purpose::IdentityKem),
        home.subkey(Purpose::IdentitySigning),
    ]
}

/// The engine's [`Entropy`] as the random source HPKE asks for, so that sealing draws from the
/// same passed-in stream as every nonce (and a seeded test seals the same bytes each run).
struct EntropyRng<'a>(&'a mut Entropy);

impl hpke::rand_core::TryRng for EntropyRng<'_> {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> core::result::Result<u32, Self::Error> {
        Ok(u32::from_le_bytes(self.0.array()))
    }

    fn try_next_u64(&mut self) -> core::result::Result<u64, Self::Error> {
        Ok(u64::from_le_bytes(self.0.array()))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> core::result::Result<(), Self::Error> {
        self.0.fill(dst);
        Ok(())
    }
}

impl hpke::rand_core::TryCryptoRng for EntropyRng<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(byte: u8) -> VaultKey {
        VaultKey::from_bytes([byte; 32])
    }

    #[test]
    fn the_same_home_key_gives_the_same_identity_and_another_key_another() {
        let a = Identity::of_home(&home(1));
        let again = Identity::of_home(&home(1));
        let b = Identity::of_home(&home(2));
        assert_eq!(a.public(), again.public());
        assert_ne!(a.public(), b.public());
        assert_ne!(a.fingerprint(), b.fingerprint());
        let shown = a.fingerprint().to_string();
        assert_eq!(shown.len(), 19, "{shown}");
        // As a person types it back.
        let typed = shown
            .to_lowercase()
            .replace('-', " ")
            .replace('0', "o")
            .replace('1', "l");
        assert!(a.fingerprint().matches(&typed), "{typed}");
        assert!(!b.fingerprint().matches(&shown));
        assert!(!a.fingerprint().matches(&shown[..18]));
        assert_eq!(shown.matches('-').count(), 3, "{shown}");
    }

    #[test]
    fn the_public_text_reads_back_and_bad_text_is_a_config_error() {
        let a = Identity::of_home(&home(3));
        let text = a.public().to_string();
        assert!(text.starts_with(PUBLIC_PREFIX));
        assert_eq!(PublicIdentity::parse(&text).unwrap(), *a.public());
        // Wrapped over lines by a mail client.
        let wrapped: String = text
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert_eq!(PublicIdentity::parse(&wrapped).unwrap(), *a.public());
        for bad in [
            "",
            "bsid1",
            "hello",
            &text[..text.len() - 4],
            &format!("{text}AAAA"),
        ] {
            let e = PublicIdentity::parse(bad).unwrap_err();
            assert_eq!(e.category(), crate::Category::Config, "{bad:.20}: {e}");
        }
    }

    #[test]
    fn sealed_to_one_identity_opens_only_with_it_and_only_unaltered() {
        let bob = Identity::of_home(&home(4));
        let carol = Identity::of_home(&home(5));
        let mut entropy = Entropy::from_seed([9; 32]);
        let (enc, ct) = bob
            .public()
            .seal(b"info", b"aad", b"the key", &mut entropy)
            .unwrap();
        assert_eq!(enc.len(), KEM_ENC_LEN);
        assert_eq!(ct.len(), b"the key".len() + 16);
        assert_eq!(
            bob.open(&enc, b"info", b"aad", &ct).as_deref(),
            Some(&b"the key"[..])
        );
        assert_eq!(carol.open(&enc, b"info", b"aad", &ct), None);
        assert_eq!(bob.open(&enc, b"other", b"aad", &ct), None);
        assert_eq!(bob.open(&enc, b"info", b"other", &ct), None);
        let mut flipped = ct.clone();
        flipped[0] ^= 1;
        assert_eq!(bob.open(&enc, b"info", b"aad", &flipped), None);
        let mut enc_flipped = enc.clone();
        enc_flipped[100] ^= 1;
        assert_eq!(bob.open(&enc_flipped, b"info", b"aad", &ct), None);
    }

    #[test]
    fn a_signature_verifies_only_for_its_signer_and_message() {
        let alice = Identity::of_home(&home(6));
        let mallory = Identity::of_home(&home(7));
        let signature = alice.sign(b"grant");
        assert!(alice.public().verifies(b"grant", &signature));
        assert!(!alice.public().verifies(b"grant!", &signature));
        assert!(!mallory.public().verifies(b"grant", &signature));
        assert!(!alice.public().verifies(b"grant", &signature[..63]));
        assert_eq!(
            format!("{alice:?}"),
            format!("Identity({})", alice.fingerprint())
        );
    }
}
