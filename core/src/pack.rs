//! Chunks and packs: how a file's bytes are stored (format version 5).
//!
//! A chunk is sealed on its own, as an envelope of kind 6 named `k/<chunk id>`, so a reader
//! can fetch and check one chunk with one ranged GET. Chunks are written back to back into a
//! pack, named `p/<device>/<pack id>`, which ends with its index (an envelope of kind 7 named
//! like the pack, listing every chunk's id, place and length) and the index envelope's length
//! as a 4-byte big-endian number. Layouts in `docs/FORMAT.md`, section "Files".

use serde::{Deserialize, Serialize};

use crate::crypto::{self, ObjectAd, ObjectKind, SecretKey};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, VaultId};

/// The folder of packs inside the vault folder.
pub const PACK_FOLDER: &str = "p/";
/// The envelope version from which chunks are sealed bare (no header in clear).
pub(crate) const BARE_SINCE: u8 = 6;

/// A chunk's id: the keyed BLAKE3 hash of its plaintext under the chunk-id key. Two devices
/// storing the same bytes get the same id; the bucket learns nothing from it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    pub(crate) fn of(id_key: &SecretKey, plaintext: &[u8]) -> ChunkId {
        ChunkId(*blake3::keyed_hash(&id_key.0, plaintext).as_bytes())
    }

    /// The chunk envelope's name, `k/<64 hex digits>`.
    pub(crate) fn envelope_name(&self) -> String {
        let mut name = String::with_capacity(66);
        name.push_str("k/");
        for b in self.0 {
            name.push_str(&format!("{b:02x}"));
        }
        name
    }
}

impl core::fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ChunkId({})", &self.envelope_name()[2..18])
    }
}

/// A pack's name: the device that wrote it and 16 random bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct PackName {
    /// The writer.
    pub device: [u8; 16],
    /// Random.
    pub pack: [u8; 16],
}

impl PackName {
    /// The pack's name inside the vault folder, `p/<device hex>/<pack hex>`.
    pub fn relative(&self) -> String {
        let hex: String = self.pack.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}{hex}", packs_folder(self.device))
    }

    /// The pack of `device` whose name inside the vault folder ends in `tail` (32 hex digits
    /// after [`packs_folder`]).
    pub(crate) fn parse(device: [u8; 16], tail: &str) -> Option<PackName> {
        let pack = crate::ids::parse_hex16(tail).filter(|_| tail.len() == 32)?;
        Some(PackName { device, pack })
    }

    pub(crate) fn random(device: DeviceId, entropy: &mut Entropy) -> PackName {
        PackName {
            device: device.0,
            pack: entropy.array(),
        }
    }
}

/// The folder of `device`'s packs inside the vault folder, `p/<device hex>/`.
pub(crate) fn packs_folder(device: [u8; 16]) -> String {
    let hex: String = device.iter().map(|b| format!("{b:02x}")).collect();
    format!("{PACK_FOLDER}{hex}/")
}

/// One chunk's entry in a pack's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The chunk.
    pub id: ChunkId,
    /// Where its envelope starts in the pack.
    pub offset: u64,
    /// The envelope's length.
    pub sealed_len: u32,
    /// The plaintext's length.
    pub len: u32,
}

/// Opens a chunk where it lies in a pack of envelope `version` (5: a whole envelope with its
/// header; 6 and later: sealed bare) and checks that its plaintext is the chunk `id` of `len`
/// bytes; returns where the plaintext is. `object` names the pack in errors.
///
/// # Errors
/// `Corrupt` when the chunk fails to open as `k/<id>`, or its plaintext does not hash to `id`
/// or has another length; `WrongVault` when a version 5 envelope belongs to another vault.
#[allow(clippy::too_many_arguments)] // the keys, the chunk's place, and where it lies
pub(crate) fn open_chunk(
    key: &SecretKey,
    id_key: &SecretKey,
    vault: VaultId,
    version: u8,
    id: ChunkId,
    len: u32,
    envelope: &mut [u8],
    object: &str,
) -> Result<core::ops::Range<usize>> {
    let name = id.envelope_name();
    let ad = ObjectAd {
        vault,
        kind: ObjectKind::Chunk,
        name: &name,
    };
    let place = |e: Error| match e {
        Error::Corrupt { reason, .. } => {
            Error::corrupt(object, format!("chunk {}: {reason}", &name[2..18]))
        }
        other => other,
    };
    let plain = if version < BARE_SINCE {
        crypto::open_in_place(key, &ad, envelope).map_err(place)?.1
    } else {
        crypto::open_bare_in_place(key, &ad, version, envelope).map_err(place)?
    };
    let bytes = &envelope[plain.clone()];
    if bytes.len() != len as usize || ChunkId::of(id_key, bytes) != id {
        return Err(Error::corrupt(
            object,
            format!(
                "chunk {} does not hold the bytes it is named for",
                &name[2..18]
            ),
        ));
    }
    Ok(plain)
}

/// A pack being filled.
pub(crate) struct PackBuilder {
    pub name: PackName,
    /// The pack's bytes from `base` on (those before went out as parts already).
    pub bytes: Vec<u8>,
    pub base: u64,
    pub entries: Vec<IndexEntry>,
}

impl PackBuilder {
    pub fn new(name: PackName, capacity: usize) -> PackBuilder {
        PackBuilder {
            name,
            bytes: Vec::with_capacity(capacity),
            base: 0,
            entries: Vec::new(),
        }
    }

    /// A pack filled into `buffer` (emptied first), grown to `capacity`.
    pub fn reusing(name: PackName, mut buffer: Vec<u8>, capacity: usize) -> PackBuilder {
        buffer.clear();
        buffer.reserve(capacity);
        PackBuilder {
            name,
            bytes: buffer,
            base: 0,
            entries: Vec::new(),
        }
    }

    /// The pack's length so far (parts taken out included).
    pub fn len(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }

    /// Takes out the first `n` bytes held (a part of a multipart upload).
    pub fn take_front(&mut self, n: usize) -> Vec<u8> {
        let rest = self.bytes.split_off(n.min(self.bytes.len()));
        let front = std::mem::replace(&mut self.bytes, rest);
        self.base += front.len() as u64;
        front
    }

    /// Seals the chunk `id` (an envelope of kind 6) at the end of the pack and returns its
    /// index entry.
    pub fn push(
        &mut self,
        key: &SecretKey,
        vault: VaultId,
        id: ChunkId,
        plaintext: &[u8],
        entropy: &mut Entropy,
    ) -> Result<IndexEntry> {
        let start = self.bytes.len();
        let name = id.envelope_name();
        let ad = ObjectAd {
            vault,
            kind: ObjectKind::Chunk,
            name: &name,
        };
        let mut sealing =
            crypto::begin_seal_bare_after(key, &ad, std::mem::take(&mut self.bytes), entropy)?;
        for piece in plaintext.chunks(64 << 10) {
            sealing.buf.extend_from_slice(piece);
            sealing.encrypt_ready();
        }
        self.bytes = crypto::finish_seal(sealing);
        let entry = IndexEntry {
            id,
            offset: self.base + start as u64,
            sealed_len: u32::try_from(self.bytes.len() - start).expect("a chunk is at most 8 MiB"),
            len: u32::try_from(plaintext.len()).expect("a chunk is at most 8 MiB"),
        };
        self.entries.push(entry);
        Ok(entry)
    }

    /// The finished pack (what is held of it): the chunks, the sealed index, and the index's
    /// length.
    pub fn finish(
        mut self,
        key: &SecretKey,
        vault: VaultId,
        entropy: &mut Entropy,
    ) -> Result<Vec<u8>> {
        let end = seal_index(key, vault, &self.name, &self.entries, entropy)?;
        self.bytes.extend_from_slice(&end);
        Ok(self.bytes)
    }
}

/// The end of the pack `name` whose chunks are `entries`: the sealed index and its length.
/// What lies before it need not be only those chunks: bytes that no entry names (a chunk cut
/// off where an interrupted multipart upload stopped) are allowed and never read.
///
/// # Errors
/// When the index cannot be encoded or sealed (none expected).
pub(crate) fn seal_index(
    key: &SecretKey,
    vault: VaultId,
    name: &PackName,
    entries: &[IndexEntry],
    entropy: &mut Entropy,
) -> Result<Vec<u8>> {
    let name = name.relative();
    let plain =
        postcard::to_allocvec(entries).map_err(|e| Error::Config(format!("pack index: {e}")))?;
    let ad = ObjectAd {
        vault,
        kind: ObjectKind::PackIndex,
        name: &name,
    };
    let mut end = crypto::seal(key, &ad, &plain, entropy)?;
    let index_len =
        u32::try_from(end.len()).map_err(|_| Error::Config("pack index too long".into()))?;
    end.extend_from_slice(&index_len.to_be_bytes());
    Ok(end)
}

/// Reads a pack's index from the pack's tail (at least the index envelope and its 4-byte
/// length; the whole pack will do): the index's envelope version (that of the pack's chunks,
/// see [`open_chunk`]) and its entries.
///
/// # Errors
/// `Corrupt` when the tail is too short, the envelope does not open as the index of `name`, or
/// its entries do not decode or do not lie before the index.
pub(crate) fn read_index(
    key: &SecretKey,
    vault: VaultId,
    name: &PackName,
    pack_len: u64,
    tail: &[u8],
) -> Result<(u8, Vec<IndexEntry>)> {
    let object = name.relative();
    let corrupt = |reason: &str| Error::corrupt(&object, reason);
    let Some(len_at) = tail.len().checked_sub(4) else {
        return Err(corrupt("truncated"));
    };
    let index_len = u32::from_be_bytes(tail[len_at..].try_into().expect("4 bytes")) as usize;
    let Some(start) = len_at.checked_sub(index_len) else {
        return Err(corrupt("index length beyond the pack"));
    };
    let ad = ObjectAd {
        vault,
        kind: ObjectKind::PackIndex,
        name: &object,
    };
    let (version, plain) = crypto::open_versioned(key, &ad, tail[start..len_at].to_vec())?;
    let entries: Vec<IndexEntry> =
        crypto::decode_exact(&plain).map_err(|e| corrupt(&format!("index: {e}")))?;
    let index_at = pack_len.saturating_sub(4 + index_len as u64);
    if entries
        .iter()
        .any(|e| e.offset.saturating_add(u64::from(e.sealed_len)) > index_at)
    {
        return Err(corrupt("index names bytes beyond the chunks"));
    }
    Ok((version, entries))
}

/// The folder of pack redirects inside the vault folder.
pub const REDIRECT_FOLDER: &str = "r/";
/// How many redirects a reader follows from one pack before it gives up (a chain grows by one
/// each time chunks already moved are moved again).
pub(crate) const MAX_REDIRECTS: usize = 32;

/// The folder of `device`'s pack redirects inside the vault folder, `r/<device hex>/`.
pub(crate) fn redirects_folder(device: [u8; 16]) -> String {
    let hex: String = device.iter().map(|b| format!("{b:02x}")).collect();
    format!("{REDIRECT_FOLDER}{hex}/")
}

impl PackName {
    /// The name of this pack's redirect inside the vault folder, `r/<device hex>/<pack hex>`.
    pub(crate) fn redirect(&self) -> String {
        let hex: String = self.pack.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}{hex}", redirects_folder(self.device))
    }
}

/// Where the chunks of a repacked pack went: all into one pack of the same writer, each
/// sealed chunk copied byte for byte (format version 7). Chunks of the old pack that no file
/// needed when it was repacked are not listed, and not moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// The pack the chunks went to (its writer is the old pack's).
    pub to: [u8; 16],
    /// For each chunk moved: where its sealed bytes started in the old pack, and where they
    /// start in the new one. Sorted by the old offset, no offset twice.
    pub moves: Vec<(u64, u64)>,
}

impl Redirect {
    /// Where the chunk that started at `offset` in the old pack starts in [`Redirect::to`].
    pub fn moved(&self, offset: u64) -> Option<u64> {
        let at = self.moves.binary_search_by_key(&offset, |m| m.0).ok()?;
        Some(self.moves[at].1)
    }

    /// Seals the redirect of the pack `from` (an envelope of kind 8 named `r/<D>/<P>`).
    ///
    /// # Errors
    /// None expected (the name is short).
    pub(crate) fn seal(
        &self,
        key: &SecretKey,
        vault: VaultId,
        from: &PackName,
        entropy: &mut Entropy,
    ) -> Result<Vec<u8>> {
        let name = from.redirect();
        let plain =
            postcard::to_allocvec(self).map_err(|e| Error::Config(format!("redirect: {e}")))?;
        let ad = ObjectAd {
            vault,
            kind: ObjectKind::PackRedirect,
            name: &name,
        };
        crypto::seal(key, &ad, &plain, entropy)
    }

    /// Opens the redirect of the pack `from`.
    ///
    /// # Errors
    /// `Corrupt` when it does not open as that redirect, does not decode, lists an old offset
    /// twice or out of order, or sends the pack to itself; `WrongVault` as any envelope.
    pub(crate) fn open(
        key: &SecretKey,
        vault: VaultId,
        from: &PackName,
        object: Vec<u8>,
    ) -> Result<Redirect> {
        let name = from.redirect();
        let ad = ObjectAd {
            vault,
            kind: ObjectKind::PackRedirect,
            name: &name,
        };
        let (_, plain) = crypto::open_versioned(key, &ad, object)?;
        let redirect: Redirect = crypto::decode_exact(&plain)
            .map_err(|e| Error::corrupt(&name, format!("does not decode: {e}")))?;
        if redirect.to == from.pack {
            return Err(Error::corrupt(&name, "sends the pack to itself"));
        }
        if redirect.moves.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(Error::corrupt(&name, "lists its chunks out of order"));
        }
        Ok(redirect)
    }
}

impl PackBuilder {
    /// Appends a chunk sealed already (copied from another pack, byte for byte) and returns
    /// its index entry in this pack.
    pub fn push_sealed(&mut self, entry: &IndexEntry, sealed: &[u8]) -> IndexEntry {
        let moved = IndexEntry {
            offset: self.len(),
            ..*entry
        };
        self.bytes.extend_from_slice(sealed);
        self.entries.push(moved);
        moved
    }
}
