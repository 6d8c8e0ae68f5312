//! Newtypes for every id and time the core handles, so they cannot be mixed up.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Milliseconds since the Unix epoch, as read by the caller's wall clock.
///
/// The core never reads a clock: every operation that needs the time takes one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the Unix epoch.
    pub fn as_millis(self) -> u64 {
        self.0
    }
}

/// A device (replica) id: 16 random bytes, shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct DeviceId(pub [u8; 16]);

/// `DeviceId::random` and `DeviceId::from_entropy` are in `entropy`, which makes them.
impl DeviceId {
    /// Parses 32 hex digits.
    ///
    /// # Errors
    /// `Config` when `text` is not 32 hex digits.
    pub fn parse(text: &str) -> Result<Self> {
        parse_hex16(text)
            .map(DeviceId)
            .ok_or_else(|| Error::Config(format!("device id {text:?} is not 32 hex digits")))
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

/// The vault's public id, derived from the vault key; it names the vault's folder.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VaultId(pub [u8; 16]);

impl fmt::Display for VaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for VaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultId({self})")
    }
}

/// Identifies one request handed out by the engine; responses are matched by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

pub(crate) fn parse_hex16(text: &str) -> Option<[u8; 16]> {
    let bytes = text.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}
