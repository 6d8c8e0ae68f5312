//! Segments: a device's immutable, encrypted batches of changes.
//!
//! The engine seals and opens segments itself; [`seal`] and [`open`] are public for tools that
//! read a bucket independently and for benchmarks.

use serde::{Deserialize, Serialize};

use crate::clock::{Hlc, Stamp};
use crate::codec::{self, Decoded};
use crate::crypto::{self, ObjectAd, ObjectKind, SecretKey, Unopened, LOG_CODEC_SINCE};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, VaultId};
use crate::key::{Purpose, VaultKey};
use crate::record::Record;

/// A segment's plaintext grows to about this size before a new segment is started.
pub const SEGMENT_TARGET_BYTES: usize = 32 << 20;
/// The most a segment's or checkpoint's compressed plaintext may inflate to (version 11): a
/// stream that would give more is refused as corrupt instead of filling the memory.
pub(crate) const MAX_INFLATED_LOG: usize = 1 << 30;

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

/// How many bytes [`put_varint`] writes for `value`: one per 7 significant bits, at least one.
pub(crate) fn varint_len(value: u64) -> usize {
    let bits = u64::BITS - (value | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

pub(crate) fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// Writes the start of a segment's plaintext: writer, number and how many changes follow, each
/// written by [`encode_change`].
///
/// The bytes are exactly postcard's encoding of [`Segment`] (pinned by a test), written by hand
/// because sealing is the hot path of a push: serde's per-field calls cost more than the copy.
fn encode_head(buf: &mut Vec<u8>, device: DeviceId, seq: u64, count: usize) {
    buf.extend_from_slice(&device.0);
    put_varint(buf, seq);
    put_varint(buf, count as u64);
}

/// How many bytes [`encode_head`] writes.
fn head_len(seq: u64, count: usize) -> usize {
    16 + varint_len(seq) + varint_len(count as u64)
}

fn encode_change(buf: &mut Vec<u8>, key: &[u8], record: &Record) {
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

/// How many bytes [`encode_change`] writes.
fn change_len(key: &[u8], record: &Record) -> usize {
    let value = record
        .value
        .as_ref()
        .map_or(0, |v| varint_len(v.len() as u64) + v.len());
    varint_len(key.len() as u64)
        + key.len()
        + varint_len(record.stamp.hlc.wall_ms)
        + varint_len(u64::from(record.stamp.hlc.counter))
        + 1
        + value
}

/// Rough plaintext size of one change, for splitting batches into segments.
pub(crate) fn encoded_size_hint(key: &[u8], record: &Record) -> usize {
    key.len() + record.value.as_ref().map_or(0, Vec::len) + 24
}

/// Serializes and encrypts segment `seq` of `device`, holding `changes` (all written by
/// `device`), with the vault key; with `compress`, deflated where that is shorter (as the
/// engine writes them unless compression is turned off). The engine does this for you; this
/// is for tools and benchmarks.
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
    compress: bool,
    entropy: &mut Entropy,
) -> Result<Vec<u8>> {
    seal_segment(
        &key.subkey(Purpose::Segment),
        key.vault_id(),
        device,
        seq,
        changes,
        compress,
        entropy,
    )
}

/// Opens segment `seq` of `device` with the vault key; see [`seal`].
///
/// # Errors
/// `Corrupt` when the object is damaged, truncated or misplaced; `WrongVault` when it belongs
/// to another vault.
pub fn open(key: &VaultKey, device: DeviceId, seq: u64, mut object: Vec<u8>) -> Result<Segment> {
    open_in_place(key, device, seq, &mut object).map(|view| view.to_segment())
}

/// Opens segment `seq` of `device` where it lies: decrypts it in place (and, if it was
/// deflated, inflates it into `object`'s place) and checks that it decodes, without copying a
/// change out of it. The engine reads segments this way.
///
/// # Errors
/// As [`open`].
pub fn open_in_place<'a>(
    key: &VaultKey,
    device: DeviceId,
    seq: u64,
    object: &'a mut Vec<u8>,
) -> Result<SegmentView<'a>> {
    Ok(open_segment(
        &key.subkey(Purpose::Segment),
        key.vault_id(),
        device,
        seq,
        object,
    )?)
}

/// The length of the plaintext of a segment of `changes`.
fn plaintext_len(seq: u64, changes: &[(&[u8], &Record)]) -> usize {
    head_len(seq, changes.len())
        + changes
            .iter()
            .map(|(key, record)| change_len(key, record))
            .sum::<usize>()
}

/// Appends the plaintext of a segment of `changes` to `out`: postcard's encoding of
/// [`Segment`] (pinned by a test), [`plaintext_len`] bytes.
fn encode_plaintext(out: &mut Vec<u8>, device: DeviceId, seq: u64, changes: &[(&[u8], &Record)]) {
    let start = out.len();
    encode_head(out, device, seq, changes.len());
    for (key, record) in changes {
        encode_change(out, key, record);
    }
    debug_assert_eq!(
        out.len() - start,
        plaintext_len(seq, changes),
        "the length counted ahead"
    );
}

/// Seals segment `seq` of `device` as this build writes it (envelope version
/// [`crate::LOG_FORMAT_VERSION`]): a codec byte, then the plaintext, deflated where
/// `compress` is set and that is shorter.
///
/// The plaintext is written straight into the envelope's buffer, sized for it once, and
/// encrypted there: a segment is held once while sealed, and with its deflated copy while
/// that is made (which then takes the plaintext's place in the buffer).
pub(crate) fn seal_segment(
    key: &SecretKey,
    vault: VaultId,
    device: DeviceId,
    seq: u64,
    changes: &[(&[u8], &Record)],
    compress: bool,
    entropy: &mut Entropy,
) -> Result<Vec<u8>> {
    let name = segment_name(device, seq);
    let ad = ObjectAd {
        vault,
        kind: ObjectKind::Segment,
        name: &name,
    };
    let len = plaintext_len(seq, changes);
    let mut sealing = crypto::begin_seal(key, &ad, 1 + len, entropy)?;
    let start = sealing.buf.len();
    sealing.buf.push(codec::STORED);
    encode_plaintext(&mut sealing.buf, device, seq, changes);
    // Never deflated past what a reader inflates: a record that large is stored as it is. The
    // pending segment keeps the buffer until it lands: what deflating freed is given back.
    let deflate = compress && len <= MAX_INFLATED_LOG;
    Ok(crypto::finish_seal_coded(sealing, start, deflate))
}

/// Opens segment `seq` of `device` in place, checking it is what its name says. A segment of
/// version 11 or later that was deflated is inflated into `object`'s place.
///
/// # Errors
/// `Corrupt` or `WrongVault` as described in [`crate::crypto`] (unauthentic), and `Corrupt`
/// when the plaintext does not inflate or decode or names another device or number (sealed
/// so).
pub(crate) fn open_segment<'a>(
    key: &SecretKey,
    vault: VaultId,
    device: DeviceId,
    seq: u64,
    object: &'a mut Vec<u8>,
) -> std::result::Result<SegmentView<'a>, Unopened> {
    let name = segment_name(device, seq);
    let ad = ObjectAd {
        vault,
        kind: ObjectKind::Segment,
        name: &name,
    };
    // Each change of a plaintext that is not deflated is checked as soon as the chunk holding
    // it is decrypted, while it is still in the cache; the check counts only once the whole
    // object authenticates. (The version byte is read here before it is authenticated: it only
    // decides where the changes start.)
    let coded = object.get(4).is_some_and(|&v| v >= LOG_CODEC_SINCE);
    let mut check = SegmentCheck::default();
    let (version, plain) = crypto::open_in_place_looking(key, &ad, object, |so_far| {
        match (coded, so_far.split_first()) {
            (false, _) => check.feed(so_far),
            (true, Some((&codec::STORED, changes))) => check.feed(changes),
            (true, _) => {}
        }
    })
    .map_err(Unopened::Unauthentic)?;
    let sealed = |reason: String| Unopened::Sealed(Error::corrupt(&name, reason));
    let (check, range) = if version < LOG_CODEC_SINCE {
        (check, plain)
    } else {
        let decoded = codec::decode(&object[plain.clone()], MAX_INFLATED_LOG).map_err(sealed)?;
        match decoded {
            Decoded::Stored(at) => (check, plain.start + at..plain.end),
            Decoded::Inflated(inflated) => {
                *object = inflated;
                (SegmentCheck::default(), 0..object.len())
            }
        }
    };
    let object: &'a Vec<u8> = object;
    let segment = check
        .finish(&object[range])
        .map_err(|e| sealed(format!("does not decode: {e}")))?;
    if segment.device != device || segment.seq != seq {
        return Err(sealed("names another device or number inside".into()));
    }
    Ok(segment)
}

/// One change of a [`SegmentView`], borrowed from the segment's plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeRef<'a> {
    /// The record's key.
    pub key: &'a [u8],
    /// The write's clock reading.
    pub hlc: Hlc,
    /// The value, or `None` for a deletion.
    pub value: Option<&'a [u8]>,
}

impl ChangeRef<'_> {
    /// The record this change produces, written by `device`, copied out of the segment.
    pub fn to_record(&self, device: DeviceId) -> (Vec<u8>, Record) {
        (
            self.key.to_vec(),
            Record {
                value: self.value.map(<[u8]>::to_vec),
                stamp: Stamp {
                    hlc: self.hlc,
                    device,
                },
            },
        )
    }
}

/// A decrypted segment whose every change has been checked to decode, read where it lies.
#[derive(Clone, Debug)]
pub struct SegmentView<'a> {
    /// The writer.
    pub device: DeviceId,
    /// The segment's number in the writer's sequence, from 1.
    pub seq: u64,
    count: usize,
    changes: &'a [u8],
}

impl<'a> SegmentView<'a> {
    /// Reads a segment's plaintext (postcard's encoding of [`Segment`], decoded by hand as it
    /// is encoded: a test pins the two decoders to each other), checking all of it.
    #[cfg(test)]
    fn parse(plain: &'a [u8]) -> core::result::Result<Self, &'static str> {
        SegmentCheck::default().finish(plain)
    }

    /// How many changes the segment holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the segment holds no change.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The changes, in the segment's order (sorted by key).
    pub fn changes(&self) -> impl Iterator<Item = ChangeRef<'a>> + 'a {
        let mut reader = Reader(self.changes);
        // Every change was read once in `parse`: reading them again cannot fail.
        (0..self.count).map_while(move |_| reader.change().ok())
    }

    /// The segment with its changes copied out.
    pub fn to_segment(&self) -> Segment {
        Segment {
            device: self.device,
            seq: self.seq,
            changes: self
                .changes()
                .map(|c| Change {
                    key: c.key.to_vec(),
                    hlc: c.hlc,
                    value: c.value.map(<[u8]>::to_vec),
                })
                .collect(),
        }
    }
}

/// Checks a segment's plaintext from its start while more of it becomes readable (as it is
/// decrypted), so that each change is read while it is still in the cache;
/// [`SegmentCheck::finish`] reads the rest once the whole plaintext is there. Fed any prefixes
/// in growing order, it finds exactly what one pass over the whole plaintext finds.
#[derive(Default)]
struct SegmentCheck {
    /// Writer, number, change count and where the changes start, once read.
    head: Option<(DeviceId, u64, usize, usize)>,
    /// Changes read so far.
    checked: usize,
    /// Where the next change starts.
    at: usize,
    /// The first error that more bytes cannot mend.
    failed: Option<&'static str>,
}

impl SegmentCheck {
    /// Reads the changes `so_far` (a prefix of the plaintext, longer than at the last call)
    /// holds whole; one cut off at its end is read at the next call.
    fn feed(&mut self, so_far: &[u8]) {
        if self.failed.is_none() {
            match self.advance(so_far) {
                Ok(()) | Err(TRUNCATED) => {}
                Err(e) => self.failed = Some(e),
            }
        }
    }

    fn advance(&mut self, plain: &[u8]) -> core::result::Result<(), &'static str> {
        let (_, _, count, _) = match self.head {
            Some(head) => head,
            None => {
                let mut reader = Reader(plain);
                let device = DeviceId(reader.take(16)?.try_into().expect("16 bytes taken"));
                let seq = reader.varint(u64::MAX)?;
                let count = reader.length()?;
                self.at = plain.len() - reader.0.len();
                *self.head.insert((device, seq, count, self.at))
            }
        };
        debug_assert!(plain.len() >= self.at, "each call sees a longer prefix");
        let mut reader = Reader(&plain[self.at..]);
        while self.checked < count {
            reader.change()?;
            self.checked += 1;
            self.at = plain.len() - reader.0.len();
        }
        Ok(())
    }

    /// The view of the whole plaintext `plain`, of which every earlier call saw a prefix.
    fn finish(mut self, plain: &[u8]) -> core::result::Result<SegmentView<'_>, &'static str> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        self.advance(plain)?;
        let (device, seq, count, start) = self.head.expect("advance read the head");
        if self.at != plain.len() {
            return Err("bytes left over");
        }
        Ok(SegmentView {
            device,
            seq,
            count,
            changes: &plain[start..],
        })
    }
}

/// What [`Reader`] says when the bytes end too soon: the one error more bytes can mend.
const TRUNCATED: &str = "truncated";

/// Reads postcard's encoding from the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> core::result::Result<&'a [u8], &'static str> {
        if n > self.0.len() {
            return Err(TRUNCATED);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// An unsigned LEB128 integer no greater than `max` (`u64::MAX` or `u32::MAX`), as postcard
    /// reads one: at most as many bytes as the type needs, the last holding no bits beyond it.
    fn varint(&mut self, max: u64) -> core::result::Result<u64, &'static str> {
        let bytes = self.0;
        // Most lengths and counters fit one byte.
        match bytes.first() {
            Some(&byte) if byte < 0x80 => {
                self.0 = &bytes[1..];
                return Ok(u64::from(byte));
            }
            None => return Err(TRUNCATED),
            Some(_) => {}
        }
        let bits = 64 - max.leading_zeros();
        let most = bits.div_ceil(7) as usize;
        let mut value = 0u64;
        for (i, &byte) in bytes.iter().take(most).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                if i == most - 1 && u32::from(byte) >> (bits - 7 * i as u32) != 0 {
                    return Err("integer out of range");
                }
                self.0 = &bytes[i + 1..];
                return Ok(value);
            }
        }
        Err(if bytes.len() < most {
            TRUNCATED
        } else {
            "integer out of range"
        })
    }

    /// A length or count: a `usize` varint, as postcard reads one on this target (at most 5
    /// bytes on 32-bit targets such as wasm32, 10 on 64-bit ones).
    fn length(&mut self) -> core::result::Result<usize, &'static str> {
        let value = self.varint(usize::MAX as u64)?;
        usize::try_from(value).map_err(|_| "integer out of range")
    }

    fn bytes(&mut self) -> core::result::Result<&'a [u8], &'static str> {
        let len = self.length()?;
        self.take(len)
    }

    fn change(&mut self) -> core::result::Result<ChangeRef<'a>, &'static str> {
        let key = self.bytes()?;
        let wall_ms = self.varint(u64::MAX)?;
        let counter = self.varint(u64::from(u32::MAX))? as u32;
        let value = match self.take(1)? {
            [0] => None,
            [1] => Some(self.bytes()?),
            _ => return Err("bad option tag"),
        };
        Ok(ChangeRef {
            key,
            hlc: Hlc { wall_ms, counter },
            value,
        })
    }
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
            encode_head(&mut ours, device, seq, pairs.len());
            for (key, record) in &pairs {
                encode_change(&mut ours, key, record);
            }
            let segment = Segment {
                device,
                seq,
                changes: changes.into_iter().map(|(key, wall_ms, counter, value)| Change { key, hlc: Hlc { wall_ms, counter }, value }).collect(),
            };
            let counted = head_len(seq, pairs.len()) + pairs.iter().map(|(k, r)| change_len(k, r)).sum::<usize>();
            prop_assert_eq!(ours.len(), counted);
            prop_assert_eq!(&ours, &postcard::to_allocvec(&segment).unwrap());
            prop_assert_eq!(postcard::from_bytes::<Segment>(&ours).unwrap(), segment);
        }
    }

    /// Our decoder accepts exactly what postcard accepts, and reads the same segment; so does
    /// it when shown the bytes a prefix at a time (as while they are decrypted), whatever the
    /// prefixes' lengths, and it fails with the same error.
    fn decoders_agree(bytes: &[u8]) -> core::result::Result<(), TestCaseError> {
        let ours = SegmentView::parse(bytes).map(|v| v.to_segment());
        let theirs = crate::crypto::decode_exact::<Segment>(bytes);
        for step in [1, 2, 3, 7, 16, 64] {
            let mut check = SegmentCheck::default();
            for end in (0..=bytes.len()).step_by(step) {
                check.feed(&bytes[..end]);
            }
            let fed = check.finish(bytes).map(|v| v.to_segment());
            prop_assert_eq!(&fed, &ours, "fed {} bytes at a time", step);
        }
        match (ours, theirs) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "ours {:?}, postcard {:?}", a, b),
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn hand_decoding_is_postcards_decoding(
            seq in any::<u64>(),
            changes in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..20), any::<u64>(), any::<u32>(),
                 proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30))),
                0..6),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            cut in any::<usize>(),
        ) {
            let segment = Segment {
                device: DeviceId([4; 16]),
                seq,
                changes: changes.into_iter().map(|(key, wall_ms, counter, value)| Change { key, hlc: Hlc { wall_ms, counter }, value }).collect(),
            };
            let mut bytes = postcard::to_allocvec(&segment).unwrap();
            decoders_agree(&bytes)?;
            for (at, byte) in edits {
                let at = at % bytes.len();
                bytes[at] = byte;
                decoders_agree(&bytes)?;
            }
            decoders_agree(&bytes[..cut % (bytes.len() + 1)])?;
        }

        #[test]
        fn decoders_agree_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            decoders_agree(&bytes)?;
        }
    }

    /// A segment is checked while it is decrypted, chunk by chunk, but what the check finds
    /// counts only once the object authenticates: a damaged object fails authentication
    /// whether or not its garbled plaintext decodes, and an authentic one that does not decode
    /// says where it fails. Changes straddle the 16 KiB chunks here.
    #[test]
    fn what_is_checked_before_authentication_never_decides_the_error() {
        let key = VaultKey::generate().unwrap();
        let device = DeviceId([5; 16]);
        let mut entropy = Entropy::from_seed([8; 32]);
        let records: Vec<(Vec<u8>, Record)> = (0..600u64)
            .map(|i| {
                let stamp = Stamp {
                    hlc: Hlc {
                        wall_ms: 1_790_000_000_000 + i,
                        counter: (i % 3) as u32,
                    },
                    device,
                };
                let value = (i % 7 != 0).then(|| vec![i as u8; 97 + (i as usize % 50)]);
                (format!("key/{i:05}").into_bytes(), Record { value, stamp })
            })
            .collect();
        let pairs: Vec<(&[u8], &Record)> = records.iter().map(|(k, r)| (k.as_slice(), r)).collect();
        // Not deflated (it would be), so that the changes are checked on the way.
        let subkey = key.subkey(Purpose::Segment);
        let sealed = seal_segment(
            &subkey,
            key.vault_id(),
            device,
            3,
            &pairs,
            false,
            &mut entropy,
        )
        .unwrap();
        assert!(sealed.len() > 4 * crypto::CHUNK);

        // Whole: every change reads back.
        let opened = open(&key, device, 3, sealed.clone()).unwrap();
        let back: Vec<(Vec<u8>, Record)> = opened
            .changes
            .into_iter()
            .map(|c| c.into_record(device))
            .collect();
        assert_eq!(back, records);

        // Damaged at the start (the check fails on the first chunk), in the middle, in the tag.
        for at in [200, sealed.len() / 2, sealed.len() - 1] {
            let mut damaged = sealed.clone();
            damaged[at] ^= 0x40;
            match open(&key, device, 3, damaged) {
                Err(Error::Corrupt { reason, .. }) => assert_eq!(reason, "failed authentication"),
                other => panic!("damage at {at}: {other:?}"),
            }
        }

        // Authentic, yet a bad option tag in change 300, past the third chunk.
        let mut plain = Vec::new();
        let mut tag_at = 0;
        encode_head(&mut plain, device, 3, pairs.len());
        for (i, (k, r)) in pairs.iter().enumerate() {
            let start = plain.len();
            encode_change(&mut plain, k, r);
            if i == 300 {
                let mut stamp = Vec::new();
                put_varint(&mut stamp, r.stamp.hlc.wall_ms);
                put_varint(&mut stamp, u64::from(r.stamp.hlc.counter));
                tag_at = start + 1 + k.len() + stamp.len();
            }
        }
        assert!(tag_at > 2 * crypto::CHUNK);
        assert_eq!(plain[tag_at], 1);
        plain[tag_at] = 2;
        let name = segment_name(device, 3);
        let ad = ObjectAd {
            vault: key.vault_id(),
            kind: ObjectKind::Segment,
            name: &name,
        };
        // As version 4 to 10 wrote it (no codec byte), and as version 11 stores it.
        for (version, plain) in [(4, plain.clone()), (11, [&[0][..], &plain].concat())] {
            let forged = crypto::seal_version(&subkey, &ad, version, &plain, &mut entropy).unwrap();
            match open(&key, device, 3, forged) {
                Err(Error::Corrupt { reason, .. }) => {
                    assert_eq!(reason, "does not decode: bad option tag")
                }
                other => panic!("{other:?}"),
            }
        }
        // Deflated, the same segment is far shorter and reads back the same.
        let deflated = seal(&key, device, 3, &pairs, true, &mut entropy).unwrap();
        assert!(deflated.len() * 4 < sealed.len());
        assert_eq!(
            open(&key, device, 3, deflated).unwrap(),
            open(&key, device, 3, sealed).unwrap()
        );
    }

    #[test]
    fn varint_edges_match_postcard() {
        // The largest u64 and u32, and one past them in the last byte.
        for bytes in [
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01][..],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02][..],
            &[0x80, 0x00][..],
        ] {
            assert_eq!(
                Reader(bytes).varint(u64::MAX).ok(),
                postcard::from_bytes::<u64>(bytes).ok()
            );
        }
        for bytes in [
            &[0xff, 0xff, 0xff, 0xff, 0x0f][..],
            &[0xff, 0xff, 0xff, 0xff, 0x1f][..],
        ] {
            assert_eq!(
                Reader(bytes).varint(u64::from(u32::MAX)).ok(),
                postcard::from_bytes::<u32>(bytes).ok().map(u64::from)
            );
        }
    }
}
