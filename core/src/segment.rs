//! Segments: a device's immutable, encrypted batches of changes.
//!
//! The engine seals and opens segments itself; [`seal`] and [`open`] are public for tools that
//! read a bucket independently and for benchmarks.

use serde::{Deserialize, Serialize};

use crate::clock::{Hlc, Stamp};
use crate::crypto::{self, ObjectAd, ObjectKind, SecretKey};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, VaultId};
use crate::key::{Purpose, VaultKey};
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
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// The writer.
    pub device: DeviceId,
    /// The segment's number in the writer's sequence, from 1.
    pub seq: u64,
    /// The changes, sorted by key.
    pub changes: Vec<Change>,
}

/// Appends `value` as postcard writes an unsigned integer: LEB128, 7 bits a byte, low first.
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push(value as u8 | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

pub(crate) fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// Writes a segment's plaintext straight from borrowed records.
///
/// The bytes are exactly postcard's encoding of [`Segment`] (pinned by a test), written by hand
/// because sealing is the hot path of a push: serde's per-field calls cost more than the copy.
fn encode(buf: &mut Vec<u8>, device: DeviceId, seq: u64, changes: &[(&[u8], &Record)]) {
    buf.extend_from_slice(&device.0);
    put_varint(buf, seq);
    put_varint(buf, changes.len() as u64);
    for (key, record) in changes {
        put_bytes(buf, key);
        put_varint(buf, record.stamp.hlc.wall_ms);
        put_varint(buf, u64::from(record.stamp.hlc.counter));
        match &record.value {
            None => buf.push(0),
            Some(value) => {
                buf.push(1);
                put_bytes(buf, value);
            }
        }
    }
}

/// Rough plaintext size of one change, for splitting batches into segments.
pub(crate) fn encoded_size_hint(key: &[u8], record: &Record) -> usize {
    key.len() + record.value.as_ref().map_or(0, Vec::len) + 24
}

/// Serializes and encrypts segment `seq` of `device`, holding `changes` (all written by
/// `device`), with the vault key. The engine does this for you; this is for tools and benchmarks.
///
/// The nonce is drawn from `entropy`.
///
/// # Errors
/// None today; the `Result` leaves room for limits on what a segment may hold.
pub fn seal(
    key: &VaultKey,
    device: DeviceId,
    seq: u64,
    changes: &[(&[u8], &Record)],
    entropy: &mut Entropy,
) -> Result<Vec<u8>> {
    seal_segment(
        &key.subkey(Purpose::Segment),
        key.vault_id(),
        device,
        seq,
        changes,
        entropy,
    )
}

/// Opens segment `seq` of `device` with the vault key; see [`seal`].
///
/// # Errors
/// `Corrupt` when the object is damaged, truncated or misplaced; `WrongVault` when it belongs
/// to another vault.
pub fn open(key: &VaultKey, device: DeviceId, seq: u64, object: Vec<u8>) -> Result<Segment> {
    open_segment(
        &key.subkey(Purpose::Segment),
        key.vault_id(),
        device,
        seq,
        object,
    )
}

pub(crate) fn seal_segment(
    key: &SecretKey,
    vault: VaultId,
    device: DeviceId,
    seq: u64,
    changes: &[(&[u8], &Record)],
    entropy: &mut Entropy,
) -> Result<Vec<u8>> {
    let name = segment_name(device, seq);
    let ad = ObjectAd {
        vault,
        kind: ObjectKind::Segment,
        name: &name,
    };
    let hint: usize = changes.iter().map(|(k, r)| encoded_size_hint(k, r)).sum();
    let mut sealing = crypto::begin_seal(&ad, hint + 32, entropy)?;
    encode(&mut sealing.buf, device, seq, changes);
    Ok(crypto::finish_seal(key, sealing))
}

/// Opens segment `seq` of `device`, checking it is what its name says.
///
/// # Errors
/// `Corrupt` or `WrongVault` as described in [`crate::crypto`], and `Corrupt` when the
/// plaintext does not decode or names another device or number.
pub(crate) fn open_segment(
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
    let segment: Segment = crate::crypto::decode_exact(&plain)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn hand_encoding_is_postcards_encoding(
            seq in any::<u64>(),
            changes in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..200), any::<u64>(), any::<u32>(),
                 proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300))),
                0..20),
        ) {
            let device = DeviceId([9; 16]);
            let records: Vec<(Vec<u8>, Record)> = changes.iter().map(|(k, wall_ms, counter, v)| {
                (k.clone(), Record { value: v.clone(), stamp: Stamp { hlc: Hlc { wall_ms: *wall_ms, counter: *counter }, device } })
            }).collect();
            let pairs: Vec<(&[u8], &Record)> = records.iter().map(|(k, r)| (k.as_slice(), r)).collect();
            let mut ours = Vec::new();
            encode(&mut ours, device, seq, &pairs);
            let segment = Segment {
                device,
                seq,
                changes: changes.into_iter().map(|(key, wall_ms, counter, value)| Change { key, hlc: Hlc { wall_ms, counter }, value }).collect(),
            };
            prop_assert_eq!(&ours, &postcard::to_allocvec(&segment).unwrap());
            prop_assert_eq!(postcard::from_bytes::<Segment>(&ours).unwrap(), segment);
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics() {
        let mut state = 0x2545F4914F6CDD1Du64;
        for len in 0..2000usize {
            let bytes: Vec<u8> = (0..len % 97)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = postcard::from_bytes::<Segment>(&bytes);
        }
    }
}
