//! Manifests: each device's one mutable object, saying how far its log goes.

use serde::{Deserialize, Serialize};

use crate::clock::Hlc;
use crate::crypto::{self, ObjectAd, ObjectKind, SecretKey};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, VaultId};
use crate::membership::{Statement, MAX_STATEMENTS};

/// The name of `device`'s manifest inside the vault folder.
pub fn manifest_name(device: DeviceId) -> String {
    format!("m/{device}")
}

/// The folder (inside the vault folder) that holds every manifest; the one thing a sync lists.
pub const MANIFEST_FOLDER: &str = "m/";

/// No count of segments (or manifest number) above this is believed: 2^48, far beyond what a
/// device writes, and far enough below `u64::MAX` that sums and `+ 1` cannot overflow.
pub(crate) const MAX_COUNT: u64 = 1 << 48;

/// The longest device label, in bytes of UTF-8.
pub const MAX_LABEL_BYTES: usize = 64;

/// A manifest listing more retired devices than this is not believed; writers keep to it.
pub const MAX_RETIRED: usize = 4096;

/// Where a device's latest checkpoint is and what it covers, as its manifest says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// The checkpoint's number (the manifest sequence number it was published with).
    pub number: u64,
    /// For every device, the checkpoint holds its segments `1..=n`.
    pub covers: Vec<(DeviceId, u64)>,
    /// The sealed object's size in bytes.
    pub bytes: u64,
}

impl CheckpointRef {
    /// How many segments it covers in all.
    pub fn total(&self) -> u64 {
        self.covers
            .iter()
            .fold(0u64, |sum, (_, n)| sum.saturating_add(*n))
    }

    /// How many segments of `device` it covers.
    pub fn covers(&self, device: DeviceId) -> u64 {
        self.covers
            .iter()
            .find(|(d, _)| *d == device)
            .map_or(0, |(_, n)| *n)
    }
}

/// A device's manifest (format version 8; version 1 to 7 manifests are read with the fields
/// they lack empty).
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
    /// The device's human name (at most [`MAX_LABEL_BYTES`]); may be empty.
    pub label: String,
    /// The writer's latest checkpoint of the whole vault, if it wrote one.
    pub checkpoint: Option<CheckpointRef>,
    /// Devices the writer knows to be retired (sorted, at most [`MAX_RETIRED`]): nobody waits
    /// for them any more, and a device that finds itself here starts over under a new id
    /// (version 3).
    pub retired: Vec<DeviceId>,
    /// The device's segments `1..=pruned` may have been deleted: a checkpoint named in a
    /// manifest of the vault covers them (version 4; never above `segments`).
    pub pruned: u64,
    /// A shared vault's member statements that count for the writer (version 8; at most
    /// [`MAX_STATEMENTS`]). A manifest with none is written in the version 4 layout.
    pub members: Vec<Statement>,
}

/// The version 4 layout (versions 4 to 7): no member statements.
#[derive(Serialize, Deserialize)]
struct ManifestV4 {
    device: DeviceId,
    seq: u64,
    segments: u64,
    clock: Hlc,
    merged: Vec<(DeviceId, u64)>,
    label: String,
    checkpoint: Option<CheckpointRef>,
    retired: Vec<DeviceId>,
    pruned: u64,
}

impl From<ManifestV4> for Manifest {
    fn from(v4: ManifestV4) -> Self {
        Manifest {
            device: v4.device,
            seq: v4.seq,
            segments: v4.segments,
            clock: v4.clock,
            merged: v4.merged,
            label: v4.label,
            checkpoint: v4.checkpoint,
            retired: v4.retired,
            pruned: v4.pruned,
            members: Vec::new(),
        }
    }
}

/// The version 3 layout: no segment deleted.
#[derive(Deserialize)]
struct ManifestV3 {
    device: DeviceId,
    seq: u64,
    segments: u64,
    clock: Hlc,
    merged: Vec<(DeviceId, u64)>,
    label: String,
    checkpoint: Option<CheckpointRef>,
    retired: Vec<DeviceId>,
}

impl From<ManifestV3> for ManifestV4 {
    fn from(v3: ManifestV3) -> Self {
        ManifestV4 {
            device: v3.device,
            seq: v3.seq,
            segments: v3.segments,
            clock: v3.clock,
            merged: v3.merged,
            label: v3.label,
            checkpoint: v3.checkpoint,
            retired: v3.retired,
            pruned: 0,
        }
    }
}

/// The version 2 layout: no retired devices.
#[derive(Deserialize)]
struct ManifestV2 {
    device: DeviceId,
    seq: u64,
    segments: u64,
    clock: Hlc,
    merged: Vec<(DeviceId, u64)>,
    label: String,
    checkpoint: Option<CheckpointRef>,
}

impl From<ManifestV2> for ManifestV3 {
    fn from(v2: ManifestV2) -> Self {
        ManifestV3 {
            device: v2.device,
            seq: v2.seq,
            segments: v2.segments,
            clock: v2.clock,
            merged: v2.merged,
            label: v2.label,
            checkpoint: v2.checkpoint,
            retired: Vec::new(),
        }
    }
}

/// The version 1 layout: no label, no checkpoint.
#[derive(Deserialize)]
struct ManifestV1 {
    device: DeviceId,
    seq: u64,
    segments: u64,
    clock: Hlc,
    merged: Vec<(DeviceId, u64)>,
}

impl From<ManifestV1> for ManifestV2 {
    fn from(v1: ManifestV1) -> Self {
        ManifestV2 {
            device: v1.device,
            seq: v1.seq,
            segments: v1.segments,
            clock: v1.clock,
            merged: v1.merged,
            label: String::new(),
            checkpoint: None,
        }
    }
}

impl Manifest {
    /// Serializes and encrypts the manifest, with a nonce drawn from `entropy`: in the
    /// version 4 layout under envelope version [`crypto::MANIFEST_VERSION`] when it holds no
    /// member statement (what every replica since version 5 reads), else in the version 8
    /// layout under envelope version 8.
    pub fn seal(&self, key: &SecretKey, vault: VaultId, entropy: &mut Entropy) -> Vec<u8> {
        let name = manifest_name(self.device);
        let (version, plain) = if self.members.is_empty() {
            let v4 = ManifestV4 {
                device: self.device,
                seq: self.seq,
                segments: self.segments,
                clock: self.clock,
                merged: self.merged.clone(),
                label: self.label.clone(),
                checkpoint: self.checkpoint.clone(),
                retired: self.retired.clone(),
                pruned: self.pruned,
            };
            (crypto::MANIFEST_VERSION, postcard::to_allocvec(&v4))
        } else {
            (
                crypto::MEMBERS_MANIFEST_VERSION,
                postcard::to_allocvec(self),
            )
        };
        let plain = plain.expect("postcard serializes into a Vec");
        crypto::seal_version(key, &ad(vault, &name), version, &plain, entropy)
            .expect("a manifest name is far shorter than 64 KiB")
    }

    /// Opens the manifest stored as `device`'s.
    ///
    /// # Errors
    /// `Corrupt` or `WrongVault` as described in [`crate::crypto`], and `Corrupt` when the
    /// plaintext does not decode or names another device.
    #[cfg(test)]
    pub fn open(
        key: &SecretKey,
        vault: VaultId,
        device: DeviceId,
        object: Vec<u8>,
    ) -> Result<Self> {
        Self::open_versioned(key, vault, device, object).map(|(_, m)| m)
    }

    /// As [`Manifest::open`], with the format version the manifest was written in.
    ///
    /// # Errors
    /// As [`Manifest::open`].
    pub fn open_versioned(
        key: &SecretKey,
        vault: VaultId,
        device: DeviceId,
        object: Vec<u8>,
    ) -> Result<(u8, Self)> {
        let name = manifest_name(device);
        let (version, plain) = crypto::open_versioned(key, &ad(vault, &name), object)?;
        let undecodable = |e: String| Error::corrupt(&name, format!("does not decode: {e}"));
        let manifest: Manifest = match version {
            1 => {
                let v1: ManifestV1 = crypto::decode_exact(&plain).map_err(undecodable)?;
                ManifestV4::from(ManifestV3::from(ManifestV2::from(v1))).into()
            }
            2 => {
                let v2: ManifestV2 = crypto::decode_exact(&plain).map_err(undecodable)?;
                ManifestV4::from(ManifestV3::from(v2)).into()
            }
            3 => ManifestV4::from(crypto::decode_exact::<ManifestV3>(&plain).map_err(undecodable)?)
                .into(),
            4..=7 => crypto::decode_exact::<ManifestV4>(&plain)
                .map_err(undecodable)?
                .into(),
            _ => crypto::decode_exact(&plain).map_err(undecodable)?,
        };
        if manifest.members.len() > MAX_STATEMENTS {
            return Err(Error::corrupt(
                &name,
                format!("holds more than {MAX_STATEMENTS} member statements"),
            ));
        }
        if manifest.pruned > manifest.segments {
            return Err(Error::corrupt(
                &name,
                "says more segments were deleted than were written",
            ));
        }
        if manifest.retired.len() > MAX_RETIRED {
            return Err(Error::corrupt(
                &name,
                "lists more than 4096 retired devices",
            ));
        }
        if manifest.label.len() > MAX_LABEL_BYTES {
            return Err(Error::corrupt(&name, "has a label longer than 64 bytes"));
        }
        let counts =
            [manifest.seq, manifest.segments]
                .into_iter()
                .chain(manifest.merged.iter().map(|(_, n)| *n))
                .chain(manifest.checkpoint.iter().flat_map(|c| {
                    std::iter::once(c.number).chain(c.covers.iter().map(|(_, n)| *n))
                }));
        if counts.into_iter().any(|n| n > MAX_COUNT) {
            return Err(Error::corrupt(&name, "holds a count beyond 2^48"));
        }
        if manifest.device != device {
            return Err(Error::corrupt(&name, "names another device inside"));
        }
        Ok((version, manifest))
    }
}

fn ad(vault: VaultId, name: &str) -> ObjectAd<'_> {
    ObjectAd {
        vault,
        kind: ObjectKind::Manifest,
        name,
    }
}
