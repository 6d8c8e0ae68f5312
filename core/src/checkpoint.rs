//! Checkpoints: the whole vault as one device saw it, so a new device starts from one object
//! instead of every segment ever written.
//!
//! A checkpoint is immutable and named after its writer and its number (the manifest sequence
//! number it is published with, so a number is never reused). It holds the merged record of
//! every key (tombstones included) and, per device, how many of its segments that state covers.
//! A reader that adopts it merges the records (last-write-wins, like any segment) and goes on
//! from the covered segments; what a device wrote after them comes from its tail of segments.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::clock::Hlc;
use crate::codec::{self, Decoded};
use crate::crypto::{self, ObjectAd, ObjectKind, SecretKey, Unopened, LOG_CODEC_SINCE};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, VaultId};
use crate::record::{Record, Records};
use crate::segment::{put_bytes, put_varint, varint_len, MAX_INFLATED_LOG};

/// The folder of checkpoints inside the vault folder.
pub const CHECKPOINT_FOLDER: &str = "c/";

/// The name of `writer`'s checkpoint `number` inside the vault folder.
pub fn checkpoint_name(writer: DeviceId, number: u64) -> String {
    format!("{CHECKPOINT_FOLDER}{writer}/{number:016x}")
}

/// The writer and number a checkpoint's name (inside the checkpoint folder) says; `None` for
/// anything else. Only names as [`checkpoint_name`] writes them.
pub fn parse_checkpoint_name(name: &str) -> Option<(DeviceId, u64)> {
    let (writer, number) = name.split_once('/')?;
    let writer = DeviceId::parse(writer).ok()?;
    let number = u64::from_str_radix(number, 16).ok()?;
    (checkpoint_name(writer, number) == format!("{CHECKPOINT_FOLDER}{name}"))
        .then_some((writer, number))
}

/// A decoded checkpoint.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Who wrote it.
    pub writer: DeviceId,
    /// Its number: the sequence number of the writer's manifest that first names it.
    pub number: u64,
    /// For every device, the records hold its segments `1..=n` (sorted by device).
    pub covers: Vec<(DeviceId, u64)>,
    /// The writer's clock when it wrote the checkpoint.
    pub clock: Hlc,
    /// Tombstones stamped before this wall time (ms) may have been dropped (0: none were). A
    /// reader adopting the checkpoint drops what it holds from before the horizon that the
    /// checkpoint lacks: such a record was deleted, and its tombstone collected (version 3).
    pub horizon_ms: u64,
    /// Every key's current record, tombstones included, sorted by key.
    pub records: Vec<(ByteBuf, Record)>,
}

/// The version 2 layout: no horizon.
#[derive(Deserialize)]
struct CheckpointV2 {
    writer: DeviceId,
    number: u64,
    covers: Vec<(DeviceId, u64)>,
    clock: Hlc,
    records: Vec<(ByteBuf, Record)>,
}

/// Everything of a checkpoint but its records.
#[derive(Clone, Copy)]
pub(crate) struct Head<'a> {
    pub writer: DeviceId,
    pub number: u64,
    pub covers: &'a [(DeviceId, u64)],
    pub clock: Hlc,
    pub horizon_ms: u64,
}

/// Seals a checkpoint of `records` straight from the replica's map, without copying values,
/// as this build writes it (envelope version [`crate::LOG_FORMAT_VERSION`]): a codec byte, then
/// the plaintext, deflated where `compress` is set and that is shorter.
///
/// The plaintext is exactly postcard's encoding of [`Checkpoint`] (pinned by a test).
pub(crate) fn seal(
    key: &SecretKey,
    vault: VaultId,
    head: &Head<'_>,
    records: &Records,
    compress: bool,
    entropy: &mut Entropy,
) -> Vec<u8> {
    let Head {
        writer,
        number,
        covers,
        clock,
        horizon_ms,
    } = *head;
    let name = checkpoint_name(writer, number);
    let ad = ObjectAd {
        vault,
        kind: ObjectKind::Checkpoint,
        name: &name,
    };
    let mut sorted: Vec<(&Vec<u8>, &Record)> = records.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let len = varint_len(number)
        + 16
        + varint_len(covers.len() as u64)
        + covers
            .iter()
            .map(|(_, n)| 16 + varint_len(*n))
            .sum::<usize>()
        + varint_len(clock.wall_ms)
        + varint_len(u64::from(clock.counter))
        + varint_len(horizon_ms)
        + varint_len(sorted.len() as u64)
        + sorted.iter().map(|(k, r)| record_len(k, r)).sum::<usize>();
    // Written straight into the envelope's buffer, sized exactly once, and sealed there (a
    // buffer that grew would copy the vault): the vault is held once more while sealed, and
    // with its deflated copy while that is made.
    let mut sealing = crypto::begin_seal(key, &ad, 1 + len, entropy)
        .expect("a checkpoint name is far shorter than 64 KiB");
    let start = sealing.buf.len();
    let buf = &mut sealing.buf;
    buf.push(codec::STORED);
    buf.extend_from_slice(&writer.0);
    put_varint(buf, number);
    put_varint(buf, covers.len() as u64);
    for (device, n) in covers {
        buf.extend_from_slice(&device.0);
        put_varint(buf, *n);
    }
    put_varint(buf, clock.wall_ms);
    put_varint(buf, u64::from(clock.counter));
    put_varint(buf, horizon_ms);
    put_varint(buf, sorted.len() as u64);
    for (key, record) in sorted {
        put_bytes(buf, key);
        match &record.value {
            None => buf.push(0),
            Some(value) => {
                buf.push(1);
                put_bytes(buf, value);
            }
        }
        put_varint(buf, record.stamp.hlc.wall_ms);
        put_varint(buf, u64::from(record.stamp.hlc.counter));
        buf.extend_from_slice(&record.stamp.device.0);
    }
    debug_assert_eq!(buf.len() - start, 1 + len, "the length counted ahead");
    // Never deflated past what a reader inflates: a vault that large is stored as it is.
    crypto::finish_seal_coded(sealing, start, compress && len <= MAX_INFLATED_LOG)
}

/// How many bytes a record takes in a checkpoint's plaintext.
fn record_len(key: &[u8], record: &Record) -> usize {
    varint_len(key.len() as u64)
        + key.len()
        + 1
        + record
            .value
            .as_ref()
            .map_or(0, |v| varint_len(v.len() as u64) + v.len())
        + varint_len(record.stamp.hlc.wall_ms)
        + varint_len(u64::from(record.stamp.hlc.counter))
        + 16
}

/// Opens `writer`'s checkpoint `number`, checking it is what its name says.
///
/// # Errors
/// `Corrupt` or `WrongVault` as described in [`crate::crypto`] (unauthentic), and `Corrupt`
/// when the plaintext does not inflate or decode, names another writer or number, or lists a
/// key twice or out of order (sealed so).
pub(crate) fn open(
    key: &SecretKey,
    vault: VaultId,
    writer: DeviceId,
    number: u64,
    object: Vec<u8>,
) -> std::result::Result<Checkpoint, Unopened> {
    let name = checkpoint_name(writer, number);
    let ad = ObjectAd {
        vault,
        kind: ObjectKind::Checkpoint,
        name: &name,
    };
    let (version, plain) =
        crypto::open_versioned(key, &ad, object).map_err(Unopened::Unauthentic)?;
    decode(&name, writer, number, version, plain).map_err(Unopened::Sealed)
}

/// Decodes the authenticated plaintext of `writer`'s checkpoint `number` (named `name`), of
/// envelope `version`.
fn decode(
    name: &str,
    writer: DeviceId,
    number: u64,
    version: u8,
    mut plain: Vec<u8>,
) -> Result<Checkpoint> {
    if version >= LOG_CODEC_SINCE {
        match codec::decode(&plain, MAX_INFLATED_LOG).map_err(|e| Error::corrupt(name, e))? {
            Decoded::Stored(at) => {
                plain.drain(..at);
            }
            Decoded::Inflated(inflated) => plain = inflated,
        }
    }
    let undecodable = |e: String| Error::corrupt(name, format!("does not decode: {e}"));
    let checkpoint: Checkpoint = if version <= 2 {
        let v2: CheckpointV2 = crypto::decode_exact(&plain).map_err(undecodable)?;
        Checkpoint {
            writer: v2.writer,
            number: v2.number,
            covers: v2.covers,
            clock: v2.clock,
            horizon_ms: 0,
            records: v2.records,
        }
    } else {
        crypto::decode_exact(&plain).map_err(undecodable)?
    };
    if checkpoint.writer != writer || checkpoint.number != number {
        return Err(Error::corrupt(
            name,
            "names another writer or number inside",
        ));
    }
    if !checkpoint.records.windows(2).all(|w| w[0].0 < w[1].0) {
        return Err(Error::corrupt(name, "lists keys out of order or twice"));
    }
    if !checkpoint.covers.windows(2).all(|w| w[0].0 < w[1].0) {
        return Err(Error::corrupt(name, "lists devices out of order or twice"));
    }
    if checkpoint
        .covers
        .iter()
        .any(|(_, n)| *n > crate::manifest::MAX_COUNT)
    {
        return Err(Error::corrupt(name, "covers a count beyond 2^48"));
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Stamp;

    #[test]
    fn hand_encoding_is_postcards_encoding_and_round_trips() {
        let key = SecretKey([3; 32]);
        let vault = VaultId([4; 16]);
        let mut records = Records::default();
        for i in 0..50u32 {
            records.merge(
                format!("k{:03}", (i * 37) % 50).into_bytes(),
                Record {
                    value: (i % 7 != 0).then(|| vec![i as u8; i as usize]),
                    stamp: Stamp {
                        hlc: Hlc {
                            wall_ms: 1_767_225_600_000 + u64::from(i),
                            counter: i * 1000,
                        },
                        device: DeviceId([i as u8; 16]),
                    },
                },
            );
        }
        let covers = vec![(DeviceId([1; 16]), 7), (DeviceId([2; 16]), 300)];
        let clock = Hlc {
            wall_ms: 99,
            counter: 3,
        };
        let writer = DeviceId([1; 16]);
        let head = Head {
            writer,
            number: 5,
            covers: &covers,
            clock,
            horizon_ms: 12345,
        };
        let sealed = seal(
            &key,
            vault,
            &head,
            &records,
            false,
            &mut Entropy::from_seed([0; 32]),
        );
        let opened = open(&key, vault, writer, 5, sealed.clone()).unwrap();
        let mut expected: Vec<(ByteBuf, Record)> = records
            .iter()
            .map(|(k, r)| (ByteBuf::from(k.clone()), r.clone()))
            .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(opened.records, expected);
        assert_eq!(opened.covers, covers);
        assert_eq!(opened.clock, clock);
        assert_eq!(opened.horizon_ms, 12345);
        let plain = crypto::open(
            &key,
            &ObjectAd {
                vault,
                kind: ObjectKind::Checkpoint,
                name: &checkpoint_name(writer, 5),
            },
            sealed.clone(),
        )
        .unwrap();
        assert_eq!(plain[0], codec::STORED);
        assert_eq!(plain[1..], postcard::to_allocvec(&opened).unwrap());
        // Opened under another number, it is refused.
        assert!(open(&key, vault, writer, 6, sealed).is_err());
    }
}
