//! Hooks for the decoder property tests (`tests/decoders.rs`): not part of the API, no
//! stability promise.
//!
//! Random bytes never get past an object's authentication tag, so on their own they only test
//! the envelope. These hooks seal arbitrary plaintext under a vault key, so that the decoders
//! behind the tag (segment, manifest, checkpoint, local state, journal delta) see arbitrary
//! bytes too, and open the two kinds of bucket object that have no public opener.

use crate::crypto::{self, ObjectAd, ObjectKind};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::ids::DeviceId;
use crate::key::{Purpose, VaultKey};

/// A kind of sealed object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A segment (`s/<device>/<seq>`).
    Segment,
    /// A manifest (`m/<device>`).
    Manifest,
    /// The local state snapshot (`local-state`).
    LocalState,
    /// One journal entry (`journal/<snapshot hash>/<index>`).
    JournalEntry,
    /// A checkpoint (`c/<writer>/<number>`).
    Checkpoint,
}

impl Kind {
    fn object_kind(self) -> ObjectKind {
        match self {
            Kind::Segment => ObjectKind::Segment,
            Kind::Manifest => ObjectKind::Manifest,
            Kind::LocalState => ObjectKind::LocalState,
            Kind::JournalEntry => ObjectKind::JournalEntry,
            Kind::Checkpoint => ObjectKind::Checkpoint,
        }
    }

    fn purpose(self) -> Purpose {
        match self {
            Kind::Segment => Purpose::Segment,
            Kind::Manifest => Purpose::Manifest,
            Kind::LocalState | Kind::JournalEntry => Purpose::LocalState,
            Kind::Checkpoint => Purpose::Checkpoint,
        }
    }
}

/// Seals `plaintext` as the object `name` of `kind` in envelope `version`, with the subkey of
/// `key` that kind is sealed with, as the engine would (but with a fixed nonce).
///
/// # Panics
/// When `name` is longer than 65,535 bytes.
pub fn seal(key: &VaultKey, kind: Kind, version: u8, name: &str, plaintext: &[u8]) -> Vec<u8> {
    let ad = ObjectAd {
        vault: key.vault_id(),
        kind: kind.object_kind(),
        name,
    };
    let mut entropy = Entropy::from_seed([0; 32]);
    let mut sealing = crypto::begin_seal_version(
        &key.subkey(kind.purpose()),
        &ad,
        version,
        plaintext.len(),
        &mut entropy,
    )
    .expect("a name under 64 KiB");
    sealing.buf.extend_from_slice(plaintext);
    crypto::finish_seal(sealing)
}

/// Opens the object `name` of `kind` sealed with `key`, returning its envelope version and
/// plaintext, without decoding the plaintext.
///
/// # Errors
/// As the envelope's opener: `Corrupt` or `WrongVault`.
pub fn open(key: &VaultKey, kind: Kind, name: &str, object: Vec<u8>) -> Result<(u8, Vec<u8>)> {
    let ad = ObjectAd {
        vault: key.vault_id(),
        kind: kind.object_kind(),
        name,
    };
    crypto::open_versioned(&key.subkey(kind.purpose()), &ad, object)
}

/// The layout bytes of a segment's or checkpoint's plaintext of envelope `version`, as
/// [`open`] returned it: from version 11 its codec byte is read and the rest inflated where it
/// was deflated (`docs/FORMAT.md` §6.4); before, the plaintext is the layout bytes.
///
/// # Errors
/// The reason the plaintext is corrupt: no or an unknown codec byte, a stream that does not
/// inflate.
pub fn layout_bytes(version: u8, plaintext: Vec<u8>) -> core::result::Result<Vec<u8>, String> {
    if version < crypto::LOG_CODEC_SINCE {
        return Ok(plaintext);
    }
    Ok(
        match crate::codec::decode(&plaintext, crate::segment::MAX_INFLATED_LOG)? {
            crate::codec::Decoded::Stored(at) => plaintext[at..].to_vec(),
            crate::codec::Decoded::Inflated(inflated) => inflated,
        },
    )
}

/// Opens `device`'s manifest as a sync does, decoding and checking it.
///
/// # Errors
/// As a sync's manifest opener: `Corrupt` or `WrongVault`.
pub fn open_manifest(key: &VaultKey, device: DeviceId, object: Vec<u8>) -> Result<()> {
    crate::manifest::Manifest::open_versioned(
        &key.subkey(Purpose::Manifest),
        key.vault_id(),
        device,
        object,
    )
    .map(|_| ())
}

/// Opens `writer`'s checkpoint `number` as a sync does, decoding and checking it.
///
/// # Errors
/// As a sync's checkpoint opener: `Corrupt` or `WrongVault`.
pub fn open_checkpoint(
    key: &VaultKey,
    writer: DeviceId,
    number: u64,
    object: Vec<u8>,
) -> Result<()> {
    crate::checkpoint::open(
        &key.subkey(Purpose::Checkpoint),
        key.vault_id(),
        writer,
        number,
        object,
    )
    .map_err(Error::from)
    .map(|_| ())
}

/// The lengths of the chunks the vault `key`'s chunker cuts `data` into (for the benchmark).
pub fn chunk_lengths(key: &VaultKey, data: &[u8]) -> Vec<usize> {
    let mut chunker =
        crate::chunker::Chunker::new(crate::chunker::Gear::new(&key.subkey(Purpose::Chunker)));
    let mut lengths = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let taken = chunker.feed(rest);
        rest = &rest[taken..];
        while let Some(chunk) = chunker.next_chunk(false) {
            lengths.push(chunk.len());
        }
    }
    while let Some(chunk) = chunker.next_chunk(true) {
        lengths.push(chunk.len());
    }
    lengths
}

/// Decodes a file record's value as the engine does (for the decoder property tests).
///
/// # Errors
/// As the engine's file value decoder: `Config` when it is not a file, `Corrupt` when damaged.
pub fn decode_file_value(value: &[u8]) -> Result<u64> {
    crate::file::FileValue::decode(b"key", value).map(|f| f.size)
}

/// A file record's value with two chunks in two packs, to damage in the decoder tests.
pub fn sample_file_value() -> Vec<u8> {
    use crate::file::{Body, ChunkRef, FileValue};
    use crate::pack::{ChunkId, PackName};
    let packs = vec![
        PackName {
            device: [1; 16],
            pack: [2; 16],
        },
        PackName {
            device: [3; 16],
            pack: [4; 16],
        },
    ];
    let chunk = |n: u8, pack: u32, offset: u64| ChunkRef {
        id: ChunkId([n; 32]),
        len: 600_000,
        pack,
        offset,
        sealed_len: 600_040,
    };
    FileValue {
        size: 1_200_000,
        hash: [9; 32],
        body: Body::Chunks {
            packs,
            chunks: vec![chunk(5, 0, 0), chunk(6, 1, 600_040)],
        },
        chunk_version: crate::crypto::PACK_VERSION,
        generation: 0,
    }
    .encode()
}

/// Where the chunks of a file record's value lie, in file order: each chunk's pack (its name
/// inside the vault folder, `p/<device>/<pack>`), where its envelope starts there, and the
/// envelope's length. Empty
/// for a file stored inline (for the simulation's checks of pack collection).
///
/// # Errors
/// As [`decode_file_value`].
pub fn file_chunks(value: &[u8]) -> Result<Vec<(String, u64, u32)>> {
    use crate::file::{Body, FileValue};
    let file = FileValue::decode(b"key", value)?;
    Ok(match file.body {
        Body::Inline(_) => Vec::new(),
        Body::Chunks { packs, chunks } => chunks
            .iter()
            .map(|c| (packs[c.pack as usize].relative(), c.offset, c.sealed_len))
            .collect(),
    })
}

/// Opens the redirect object of the pack `pack` (named as [`file_chunks`] names it) in the
/// vault `key` (key generation 0): the pack its chunks went to, named the same way, and each
/// move (old offset, new offset).
///
/// # Errors
/// `Config` when `pack` is not a pack's name; as the engine's redirect reader otherwise.
pub fn open_redirect(
    key: &VaultKey,
    pack: &str,
    object: Vec<u8>,
) -> Result<(String, Vec<(u64, u64)>)> {
    use crate::pack::{PackName, Redirect};
    let bad = || crate::error::Error::Config(format!("not a pack's name: {pack}"));
    let (device, tail) = pack
        .strip_prefix(crate::pack::PACK_FOLDER)
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(bad)?;
    let device = crate::ids::parse_hex16(device).ok_or_else(bad)?;
    let from = PackName::parse(device, tail).ok_or_else(bad)?;
    let redirect = Redirect::open(&key.subkey(Purpose::Chunk), key.vault_id(), &from, object)?;
    let to = PackName {
        device,
        pack: redirect.to,
    };
    Ok((to.relative(), redirect.moves))
}
