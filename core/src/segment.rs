//! Segments: a device's immutable, encrypted batches of changes.

use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use crate::clock::{Hlc, Stamp};
use crate::crypto::{self, ObjectAd, ObjectKind, SecretKey};
use crate::error::{Error, Result};
use crate::ids::{DeviceId, VaultId};
use crate::record::Record;

/// A segment's plaintext grows to about this size before a new segment is started.
pub const SEGMENT_TARGET_BYTES: usize = 32 << 20;

/// The name of a device's segment `seq` inside the vault folder.
pub fn segment_name(device: DeviceId, seq: u64) -> String {
    format!("s/{device}/{seq:016x}")
}

/// One change as stored in a segment; the writer is the segment's device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The record's key.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The write's clock reading.
    pub hlc: Hlc,
    /// The value, or `None` for a deletion.
    #[serde(with = "serde_bytes")]
    pub value: Option<Vec<u8>>,
}

/// A decoded segment.
#[derive(Debug, Deserialize)]
pub struct Segment {
    /// The writer.
    pub device: DeviceId,
    /// The segment's number in the writer's sequence, from 1.
    pub seq: u64,
    /// The changes, sorted by key.
    pub changes: Vec<Change>,
}

/// A borrowed change for sealing without copying records.
#[derive(Serialize)]
struct ChangeRef<'a> {
    #[serde(with = "serde_bytes")]
    key: &'a [u8],
    hlc: Hlc,
    #[serde(with = "serde_bytes")]
    value: Option<&'a [u8]>,
}

struct Changes<'a, 'b>(&'b [(&'a [u8], &'a Record)]);

impl Serialize for Changes<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (key, record) in self.0 {
            seq.serialize_element(&ChangeRef {
                key,
                hlc: record.stamp.hlc,
                value: record.value.as_deref(),
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct SegmentOut<'a, 'b> {
    device: DeviceId,
    seq: u64,
    changes: Changes<'a, 'b>,
}

/// Rough plaintext size of one change, for splitting batches into segments.
pub fn encoded_size_hint(key: &[u8], record: &Record) -> usize {
    key.len() + record.value.as_ref().map_or(0, Vec::len) + 24
}

/// Serializes and encrypts one segment of `device`'s own writes.
///
/// # Errors
/// Only when the platform has no randomness for the nonce.
pub fn seal_segment(
    key: &SecretKey,
    vault: VaultId,
    device: DeviceId,
    seq: u64,
    changes: &[(&[u8], &Record)],
) -> Result<Vec<u8>> {
    let name = segment_name(device, seq);
    let ad = ObjectAd {
        vault,
        kind: ObjectKind::Segment,
        name: &name,
    };
    let hint: usize = changes.iter().map(|(k, r)| encoded_size_hint(k, r)).sum();
    let mut sealing = crypto::begin_seal(&ad, hint + 32)?;
    let body = SegmentOut {
        device,
        seq,
        changes: Changes(changes),
    };
    sealing.buf = postcard::to_extend(&body, sealing.buf)
        // Writing into a Vec cannot fail: postcard only errors on a full fixed-size buffer.
        .expect("postcard serializes into a Vec");
    Ok(crypto::finish_seal(key, sealing))
}

/// Opens segment `seq` of `device`, checking it is what its name says.
///
/// # Errors
/// `Corrupt` or `WrongVault` as described in [`crate::crypto`], and `Corrupt` when the
/// plaintext does not decode or names another device or number.
pub fn open_segment(
    key: &SecretKey,
    vault: VaultId,
    device: DeviceId,
    seq: u64,
    object: Vec<u8>,
) -> Result<Segment> {
    let name = segment_name(device, seq);
    let ad = ObjectAd {
        vault,
        kind: ObjectKind::Segment,
        name: &name,
    };
    let plain = crypto::open(key, &ad, object)?;
    let segment: Segment = postcard::from_bytes(&plain)
        .map_err(|e| Error::corrupt(&name, format!("does not decode: {e}")))?;
    if segment.device != device || segment.seq != seq {
        return Err(Error::corrupt(
            &name,
            "names another device or number inside",
        ));
    }
    Ok(segment)
}

impl Change {
    /// The record this change produces, written by `device`.
    pub fn into_record(self, device: DeviceId) -> (Vec<u8>, Record) {
        (
            self.key,
            Record {
                value: self.value,
                stamp: Stamp {
                    hlc: self.hlc,
                    device,
                },
            },
        )
    }
}
