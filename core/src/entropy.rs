//! Randomness, passed in: the engine draws nonces from an [`Entropy`] it was given, so it never
//! asks the operating system itself, and a simulation seeded the same way runs the same way.
//!
//! The operating system's randomness (`getrandom`; `crypto.getRandomValues` in browsers) is
//! read only by the functions here that say so, which hosts and key generation call.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;

use crate::error::{Error, Result};
use crate::ids::DeviceId;

/// A cryptographically secure stream of random bytes: the ChaCha20 keystream under a 32-byte
/// seed. Seed it from the operating system ([`Entropy::from_os`]) in real use, and from a
/// fixed seed only in tests and simulations.
pub struct Entropy {
    stream: ChaCha20,
    seed: [u8; 32],
}

impl core::fmt::Debug for Entropy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Entropy(<redacted>)")
    }
}

impl Entropy {
    /// The stream for `seed`. Two streams with the same seed give the same bytes: never reuse a
    /// seed outside tests.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Entropy {
            stream: ChaCha20::new(&seed.into(), &[0u8; 12].into()),
            seed,
        }
    }

    /// A stream seeded from the operating system's randomness.
    ///
    /// # Errors
    /// `Config` when the platform has no source of randomness.
    pub fn from_os() -> Result<Self> {
        let mut seed = [0u8; 32];
        fill_os(&mut seed)?;
        Ok(Self::from_seed(seed))
    }

    /// Fills `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        buf.fill(0);
        if self.stream.try_apply_keystream(buf).is_err() {
            // 256 GiB drawn from one key: move to a key derived from the old one.
            self.seed = blake3::derive_key("bucketsync 2026-11 entropy rekey v1", &self.seed);
            self.stream = ChaCha20::new(&self.seed.into(), &[0u8; 12].into());
            self.stream.apply_keystream(buf);
        }
    }

    /// The next `N` bytes of the stream.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }
}

/// Fills `buf` from the operating system's randomness.
///
/// # Errors
/// `Config` when the platform has no source of randomness.
pub fn fill_os(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Config(format!("no source of randomness: {e}")))
}

impl DeviceId {
    /// A fresh random device id, from the operating system's randomness.
    ///
    /// # Errors
    /// `Config` when the platform has no source of randomness.
    pub fn random() -> Result<Self> {
        let mut id = [0u8; 16];
        fill_os(&mut id)?;
        Ok(DeviceId(id))
    }

    /// A fresh random device id drawn from `entropy`.
    pub fn from_entropy(entropy: &mut Entropy) -> Self {
        DeviceId(entropy.array())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_stream_and_two_seeds_two() {
        let mut a = Entropy::from_seed([1; 32]);
        let mut b = Entropy::from_seed([1; 32]);
        let mut c = Entropy::from_seed([2; 32]);
        let (x, y, z): ([u8; 24], [u8; 24], [u8; 24]) = (a.array(), b.array(), c.array());
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert_ne!(x, a.array::<24>(), "the stream moves on");
        assert_eq!(format!("{a:?}"), "Entropy(<redacted>)");
    }
}
