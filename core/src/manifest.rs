//! Manifests: each device's one mutable object, saying how far its log goes.

use serde::{Deserialize, Serialize};

use crate::clock::Hlc;
use crate::crypto::{self, ObjectAd, ObjectKind, SecretKey};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, VaultId};

/// The name of `device`'s manifest inside the vault folder.
pub fn manifest_name(device: DeviceId) -> String {
    format!("m/{device}")
}

/// The folder (inside the vault folder) that holds every manifest; the one thing a sync lists.
pub const MANIFEST_FOLDER: &str = "m/";

/// A device's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The writer.
    pub device: DeviceId,
    /// Grows by one with every manifest the device writes; never goes back.
    pub seq: u64,
    /// The device's segments are numbered `1..=segments`, all written before this manifest.
    pub segments: u64,
    /// The writer's clock when it wrote this manifest.
    pub clock: Hlc,
    /// For each other device, how many of its segments the writer had merged.
    pub merged: Vec<(DeviceId, u64)>,
}

impl Manifest {
    /// Serializes and encrypts the manifest, with a nonce drawn from `entropy`.
    pub fn seal(&self, key: &SecretKey, vault: VaultId, entropy: &mut Entropy) -> Vec<u8> {
        let name = manifest_name(self.device);
        let plain = postcard::to_allocvec(self).expect("postcard serializes into a Vec");
        crypto::seal(key, &ad(vault, &name), &plain, entropy)
            .expect("a manifest name is far shorter than 64 KiB")
    }

    /// Opens the manifest stored as `device`'s.
    ///
    /// # Errors
    /// `Corrupt` or `WrongVault` as described in [`crate::crypto`], and `Corrupt` when the
    /// plaintext does not decode or names another device.
    pub fn open(
        key: &SecretKey,
        vault: VaultId,
        device: DeviceId,
        object: Vec<u8>,
    ) -> Result<Self> {
        let name = manifest_name(device);
        let plain = crypto::open(key, &ad(vault, &name), object)?;
        let manifest: Manifest = crate::crypto::decode_exact(&plain)
            .map_err(|e| Error::corrupt(&name, format!("does not decode: {e}")))?;
        if manifest.device != device {
            return Err(Error::corrupt(&name, "names another device inside"));
        }
        Ok(manifest)
    }
}

fn ad(vault: VaultId, name: &str) -> ObjectAd<'_> {
    ObjectAd {
        vault,
        kind: ObjectKind::Manifest,
        name,
    }
}
