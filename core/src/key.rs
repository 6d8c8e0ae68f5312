//! The vault key: generation, the recovery code, passphrase wrapping, and derived subkeys.

use core::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::crypto::{self, ObjectAd, ObjectKind, SecretKey};
use crate::error::{Error, Result};
use crate::ids::VaultId;

/// Crockford's base32 alphabet (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 32 key bytes + 3 checksum bytes = 280 bits = 56 base32 digits.
const CODE_DIGITS: usize = 56;
const CHECKSUM_LEN: usize = 3;
const WRAP_MAGIC: &[u8; 4] = b"BKSW";
const WRAP_VERSION: u8 = 1;

/// The secret every device of a vault shares. Everything else is derived from it.
///
/// Wiped from memory on drop; its `Debug` shows only the public vault id.
#[derive(Clone)]
pub struct VaultKey {
    secret: SecretKey,
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultKey(vault {})", self.vault_id())
    }
}

impl VaultKey {
    /// A new random key.
    ///
    /// # Errors
    /// `Config` when the platform has no source of randomness.
    pub fn generate() -> Result<Self> {
        // Filled where it lives: no copy of the key is left behind on the stack.
        let mut secret = SecretKey([0u8; 32]);
        crate::entropy::fill_os(&mut secret.0)?;
        Ok(VaultKey { secret })
    }

    /// A key from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        VaultKey {
            secret: SecretKey(bytes),
        }
    }

    /// The vault's public id, derived from the key with BLAKE3; it names the vault's folder.
    pub fn vault_id(&self) -> VaultId {
        let derived = self.secret.derive("bucketsync 2026-11 vault id v1");
        let mut id = [0u8; 16];
        id.copy_from_slice(&derived.0[..16]);
        VaultId(id)
    }

    /// The 32 raw bytes, for sealing the key to someone (a grant) or into a home's record.
    pub(crate) fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret.0
    }

    pub(crate) fn subkey(&self, purpose: Purpose) -> SecretKey {
        self.secret.derive(purpose.context())
    }

    /// The key as a human-typable recovery code: 56 Crockford base32 digits in groups of four,
    /// the last few of which are a checksum.
    pub fn recovery_code(&self) -> String {
        let mut raw = Zeroizing::new(Vec::with_capacity(32 + CHECKSUM_LEN));
        raw.extend_from_slice(&self.secret.0);
        raw.extend_from_slice(&checksum(&self.secret.0));
        base32_groups(&raw, CODE_DIGITS)
    }

    /// Reads a recovery code back. Case, spaces and dashes do not matter; `I`/`L` read as `1`
    /// and `O` as `0`.
    ///
    /// # Errors
    /// `Config` when the code has the wrong length, a character outside the alphabet, or a
    /// checksum that does not match (a mistyped character).
    pub fn from_recovery_code(code: &str) -> Result<Self> {
        let mut digits = Zeroizing::new(Vec::with_capacity(CODE_DIGITS));
        for c in typed_base32(code) {
            let value = ALPHABET
                .iter()
                .position(|&a| a as char == c)
                .ok_or_else(|| {
                    Error::Config(format!("recovery code has an invalid character {c:?}"))
                })?;
            digits.push(value as u8);
        }
        if digits.len() != CODE_DIGITS {
            return Err(Error::Config(format!(
                "recovery code has {} characters, expected {CODE_DIGITS}",
                digits.len()
            )));
        }
        let mut raw = Zeroizing::new(vec![0u8; 32 + CHECKSUM_LEN]);
        for (i, d) in digits.iter().enumerate() {
            write_5_bits(&mut raw, i * 5, *d);
        }
        let mut secret = SecretKey([0u8; 32]);
        secret.0.copy_from_slice(&raw[..32]);
        if checksum(&secret.0) != raw[32..] {
            return Err(Error::Config(
                "recovery code checksum does not match: a character is mistyped".into(),
            ));
        }
        Ok(VaultKey { secret })
    }

    /// Wraps the key with a passphrase (or a recovery code used as one) using Argon2id with
    /// RFC 9106's second recommended parameters (64 MiB, 3 passes, 4 lanes). Store the result
    /// anywhere: without the passphrase it reveals nothing.
    ///
    /// # Errors
    /// `Config` when the platform has no randomness.
    pub fn wrap_with_passphrase(&self, passphrase: &str) -> Result<Vec<u8>> {
        self.wrap_with_params(passphrase, 64 * 1024, 3, 4)
    }

    /// [`VaultKey::wrap_with_passphrase`] with explicit Argon2id parameters
    /// (memory in KiB, passes, lanes).
    ///
    /// # Errors
    /// `Config` for parameters Argon2id refuses or beyond what readers accept (see
    /// `docs/FORMAT.md` §10), or no randomness.
    pub fn wrap_with_params(
        &self,
        passphrase: &str,
        m_kib: u32,
        t: u32,
        p: u32,
    ) -> Result<Vec<u8>> {
        check_params(m_kib, t, p)?;
        let mut entropy = crate::entropy::Entropy::from_os()?;
        let salt: [u8; 16] = entropy.array();
        let kek = stretch(passphrase, &salt, m_kib, t, p)?;
        let mut header = Vec::with_capacity(4 + 1 + 12 + 16);
        header.extend_from_slice(WRAP_MAGIC);
        header.push(WRAP_VERSION);
        for v in [m_kib, t, p] {
            header.extend_from_slice(&v.to_be_bytes());
        }
        header.extend_from_slice(&salt);
        let sealed = crypto::seal(&kek, &wrap_ad(), &self.secret.0, &mut entropy)?;
        header.extend_from_slice(&sealed);
        Ok(header)
    }

    /// Unwraps a key wrapped by [`VaultKey::wrap_with_passphrase`].
    ///
    /// # Errors
    /// `Config` when the passphrase is wrong or the bytes are not a wrapped key.
    pub fn unwrap_with_passphrase(wrapped: &[u8], passphrase: &str) -> Result<Self> {
        let bad = || Error::Config("not a wrapped bucketsync key".into());
        if wrapped.len() < 33 || &wrapped[..4] != WRAP_MAGIC || wrapped[4] != WRAP_VERSION {
            return Err(bad());
        }
        let word = |at: usize| {
            u32::from_be_bytes([
                wrapped[at],
                wrapped[at + 1],
                wrapped[at + 2],
                wrapped[at + 3],
            ])
        };
        let (m_kib, t, p) = (word(5), word(9), word(13));
        // Before any work: a wrapped key from someone else must not make us spend gigabytes
        // and minutes.
        check_params(m_kib, t, p)?;
        let kek = stretch(passphrase, &wrapped[17..33], m_kib, t, p)?;
        let plain =
            crypto::open(&kek, &wrap_ad(), wrapped[33..].to_vec()).map_err(|e| match e {
                Error::Corrupt { reason, .. } if reason == "failed authentication" => {
                    Error::Config("wrong passphrase for this wrapped key".into())
                }
                _ => bad(),
            })?;
        let plain = Zeroizing::new(plain);
        if plain.len() != 32 {
            return Err(bad());
        }
        let mut secret = SecretKey([0u8; 32]);
        secret.0.copy_from_slice(&plain);
        Ok(VaultKey { secret })
    }
}

/// The purposes subkeys are derived for; each has its own BLAKE3 context.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Purpose {
    Segment,
    Manifest,
    LocalState,
    Checkpoint,
    /// Seals file chunks and pack indexes (format version 5).
    Chunk,
    /// Keys the BLAKE3 hash that names a chunk by its plaintext.
    ChunkId,
    /// Keys the chunker's gear table, so that cut points depend on the vault key.
    Chunker,
    /// Keys the BLAKE3 hash of a whole file's content.
    FileHash,
    /// The seed of a home's X-Wing key pair, which grants are sealed to (sharing).
    IdentityKem,
    /// The seed of a home's Ed25519 key pair, which signs grants (sharing).
    IdentitySigning,
}

impl Purpose {
    fn context(self) -> &'static str {
        match self {
            Purpose::Segment => "bucketsync 2026-11 segment key v1",
            Purpose::Manifest => "bucketsync 2026-11 manifest key v1",
            Purpose::LocalState => "bucketsync 2026-11 local state key v1",
            Purpose::Checkpoint => "bucketsync 2026-11 checkpoint key v1",
            Purpose::Chunk => "bucketsync 2026-11 chunk key v1",
            Purpose::ChunkId => "bucketsync 2026-11 chunk id v1",
            Purpose::Chunker => "bucketsync 2026-11 chunker gear v1",
            Purpose::FileHash => "bucketsync 2026-11 file hash v1",
            Purpose::IdentityKem => "bucketsync 2026-11 identity kem v1",
            Purpose::IdentitySigning => "bucketsync 2026-11 identity signing v1",
        }
    }
}

fn wrap_ad() -> ObjectAd<'static> {
    ObjectAd {
        vault: VaultId([0; 16]),
        kind: ObjectKind::LocalState,
        name: "wrapped-key",
    }
}

/// The most memory (KiB), passes, lanes and memory × passes a wrapped key may ask for: RFC
/// 9106's first recommended option (2 GiB, 1 pass) and its second (64 MiB, 3 passes) fit, with
/// room; 4 GiB × 64 passes does not.
const MAX_M_KIB: u32 = 2 * 1024 * 1024;
const MAX_PASSES: u32 = 16;
const MAX_LANES: u32 = 16;
const MAX_WORK_KIB: u64 = 6 * 1024 * 1024;

fn check_params(m_kib: u32, t: u32, p: u32) -> Result<()> {
    if m_kib > MAX_M_KIB
        || t > MAX_PASSES
        || p > MAX_LANES
        || u64::from(m_kib) * u64::from(t) > MAX_WORK_KIB
    {
        return Err(Error::Config(format!(
            "Argon2 parameters of {m_kib} KiB, {t} passes, {p} lanes are beyond the limits (2 GiB, 16 passes, 16 lanes, 6 GiB in all)"
        )));
    }
    Ok(())
}

fn stretch(passphrase: &str, salt: &[u8], m_kib: u32, t: u32, p: u32) -> Result<SecretKey> {
    let params = Params::new(m_kib, t, p, Some(32))
        .map_err(|e| Error::Config(format!("Argon2id parameters refused: {e}")))?;
    // Written straight into the key that wipes itself, never through a stack copy.
    let mut kek = SecretKey([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut kek.0)
        .map_err(|e| Error::Config(format!("Argon2id failed: {e}")))?;
    Ok(kek)
}

fn checksum(key: &[u8; 32]) -> [u8; CHECKSUM_LEN] {
    let sum = blake3::derive_key("bucketsync 2026-11 recovery code checksum v1", key);
    [sum[0], sum[1], sum[2]]
}

/// The characters of a Crockford base32 text as a person typed it (a recovery code, a
/// fingerprint): dashes and white space dropped, upper case, `I`/`L` read as `1` and `O` as
/// `0`.
pub(crate) fn typed_base32(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| match c.to_ascii_uppercase() {
            'I' | 'L' => '1',
            'O' => '0',
            other => other,
        })
}

/// The first `digits` Crockford base32 digits of `bytes`, in groups of four joined by `-`
/// (recovery codes, identity fingerprints).
pub(crate) fn base32_groups(bytes: &[u8], digits: usize) -> String {
    let mut text = String::with_capacity(digits + digits / 4);
    for i in 0..digits {
        if i > 0 && i % 4 == 0 {
            text.push('-');
        }
        text.push(ALPHABET[read_5_bits(bytes, i * 5) as usize] as char);
    }
    text
}

fn read_5_bits(bytes: &[u8], bit: usize) -> u8 {
    (0..5).fold(0u8, |acc, i| {
        let b = bit + i;
        (acc << 1) | ((bytes[b / 8] >> (7 - b % 8)) & 1)
    })
}

fn write_5_bits(bytes: &mut [u8], bit: usize, value: u8) {
    for i in 0..5 {
        let b = bit + i;
        if (value >> (4 - i)) & 1 == 1 {
            bytes[b / 8] |= 1 << (7 - b % 8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_code_round_trips_and_tolerates_formatting() {
        let key = VaultKey::from_bytes([0xA5; 32]);
        let code = key.recovery_code();
        assert_eq!(code.len(), 56 + 13);
        let back = VaultKey::from_recovery_code(&code.to_lowercase().replace('-', " ")).unwrap();
        assert_eq!(back.secret.0, key.secret.0);
    }

    #[test]
    fn every_single_typo_is_caught() {
        // A fixed key keeps this deterministic: a 24-bit checksum could miss a typo by chance.
        let key = VaultKey::from_bytes(*b"fixed key for the typo test 0123");
        let code: Vec<char> = key.recovery_code().chars().collect();
        for i in (0..code.len()).filter(|&i| code[i] != '-') {
            let mut typo = code.clone();
            typo[i] = if code[i] == 'Z' { 'Y' } else { 'Z' };
            let typo: String = typo.into_iter().collect();
            let err = VaultKey::from_recovery_code(&typo).unwrap_err();
            assert_eq!(err.category(), crate::Category::Config, "{err}");
        }
    }

    #[test]
    fn wrong_length_says_so() {
        let err = VaultKey::from_recovery_code("ABCD-EFGH").unwrap_err();
        assert!(
            err.to_string().contains("8 characters, expected 56"),
            "{err}"
        );
    }

    #[test]
    fn passphrase_wrap_round_trips_and_refuses_wrong_passphrase() {
        let key = VaultKey::generate().unwrap();
        let wrapped = key.wrap_with_params("correct horse", 64, 1, 1).unwrap();
        let back = VaultKey::unwrap_with_passphrase(&wrapped, "correct horse").unwrap();
        assert_eq!(back.secret.0, key.secret.0);
        let err = VaultKey::unwrap_with_passphrase(&wrapped, "wrong").unwrap_err();
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
    }

    /// Issue 14: new wraps use RFC 9106's second recommended option; a wrapped key asking for
    /// 4 GiB × 64 passes (someone else's blob) is refused before any work.
    #[test]
    fn wraps_use_rfc_9106_parameters_and_refuse_hostile_ones() {
        let key = VaultKey::generate().unwrap();
        let wrapped = key.wrap_with_passphrase("correct horse").unwrap();
        assert_eq!(&wrapped[5..17], &[0, 1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 4]);
        let mut hostile = wrapped.clone();
        hostile[5..9].copy_from_slice(&(4u32 * 1024 * 1024).to_be_bytes());
        hostile[9..13].copy_from_slice(&64u32.to_be_bytes());
        let started = std::time::Instant::now();
        let err = VaultKey::unwrap_with_passphrase(&hostile, "correct horse").unwrap_err();
        assert!(err.to_string().contains("beyond the limits"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(key.wrap_with_params("p", 4 * 1024 * 1024, 1, 1).is_err());
        assert_eq!(
            VaultKey::unwrap_with_passphrase(&wrapped, "correct horse")
                .unwrap()
                .secret
                .0,
            key.secret.0
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let key = VaultKey::from_bytes([0x11; 32]);
        let shown = format!("{key:?}");
        assert!(
            !shown.contains("1111") && !shown.contains("17, 17"),
            "{shown}"
        );
        assert!(shown.contains(&key.vault_id().to_string()));
    }
}
