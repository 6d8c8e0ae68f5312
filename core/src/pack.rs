//! Chunks and packs: how a file's bytes are stored (format version 5).
//!
//! A chunk is sealed on its own, as an envelope of kind 6 named `k/<chunk id>`, so a reader
//! can fetch and check one chunk with one ranged GET. Chunks are written back to back into a
//! pack, named `p/<device>/<pack id>`, which ends with its index (an envelope of kind 7 named
//! like the pack, listing every chunk's id, place and length) and the index envelope's length
//! as a 4-byte big-endian number. Layouts in `docs/FORMAT.md`, section "Files".
//!
//! From format version 10 a chunk's plaintext is a codec byte and the chunk's bytes in that
//! codec: 0 (the bytes as they are) or 1 (raw deflate, RFC 1951), deflated only where that is
//! shorter. The chunk's id, and every length a record or an index gives (`len`), are still
//! those of the uncompressed bytes; only `sealed_len` shrinks.

use serde::{Deserialize, Serialize};

use crate::crypto::{self, ObjectAd, ObjectKind, SecretKey};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, VaultId};

/// The folder of packs inside the vault folder.
pub const PACK_FOLDER: &str = "p/";
/// The envelope version from which chunks are sealed bare (no header in clear).
pub(crate) const BARE_SINCE: u8 = 6;
/// The envelope version from which a chunk's plaintext starts with a codec byte.
pub(crate) const CODEC_SINCE: u8 = 10;
pub(crate) use crate::codec::{deflated, DEFLATE as CODEC_DEFLATE, STORED as CODEC_STORED};
/// The longest chunk a reader of a version 10 chunk accepts (the chunker's largest): a
/// record or index naming a longer one is damaged or hostile, and never makes a reader
/// allocate more to inflate it.
pub(crate) const MAX_CHUNK_LEN: u32 = crate::chunker::MAX_CHUNK as u32;

/// What a chunk opened to: its plaintext where it lies in the sealed bytes (stored chunks, and
/// every chunk of a pack before version 10), or inflated into a buffer of its own.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// Where the chunk's bytes are in the sealed bytes handed to [`open_chunk`].
    InPlace(core::ops::Range<usize>),
    /// The chunk's bytes, inflated.
    Inflated(Vec<u8>),
}

impl Opened {
    /// The chunk's bytes, given the sealed bytes it was opened in.
    pub(crate) fn bytes<'a>(&'a self, opened_in: &'a [u8]) -> &'a [u8] {
        match self {
            Opened::InPlace(range) => &opened_in[range.clone()],
            Opened::Inflated(bytes) => bytes,
        }
    }
}

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
/// header; 6 and later: sealed bare; 10 and later: its plaintext a codec byte and the bytes in
/// that codec, inflated here) and checks that its bytes are the chunk `id` of `len` bytes;
/// returns where they are. Inflating allocates exactly `len` bytes, up front. `object` names
/// the pack in errors.
///
/// # Errors
/// `Corrupt` when the chunk fails to open as `k/<id>`, names an unknown codec, does not inflate
/// to exactly `len` bytes (or `len` is above [`MAX_CHUNK_LEN`]), or its bytes do not hash to
/// `id` or have another length; `WrongVault` when a version 5 envelope belongs to another
/// vault.
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
) -> Result<Opened> {
    let name = id.envelope_name();
    let ad = ObjectAd {
        vault,
        kind: ObjectKind::Chunk,
        name: &name,
    };
    let chunk_corrupt =
        |reason: &str| Error::corrupt(object, format!("chunk {}: {reason}", &name[2..18]));
    let place = |e: Error| match e {
        Error::Corrupt { reason, .. } => chunk_corrupt(&reason),
        other => other,
    };
    let plain = if version < BARE_SINCE {
        crypto::open_in_place(key, &ad, envelope).map_err(place)?.1
    } else {
        crypto::open_bare_in_place(key, &ad, version, envelope).map_err(place)?
    };
    let opened = if version < CODEC_SINCE {
        Opened::InPlace(plain)
    } else {
        match envelope[plain.clone()].split_first() {
            Some((&CODEC_STORED, _)) => Opened::InPlace(plain.start + 1..plain.end),
            Some((&CODEC_DEFLATE, body)) => {
                if len > MAX_CHUNK_LEN {
                    return Err(chunk_corrupt("longer than any chunk"));
                }
                // Exactly `len` bytes come out: a stream that would give more stops there.
                let inflated = crate::codec::inflated_exactly(body, len as usize)
                    .ok_or_else(|| chunk_corrupt("does not inflate to its length"))?;
                Opened::Inflated(inflated)
            }
            Some((codec, _)) => {
                return Err(chunk_corrupt(&format!("unknown codec {codec}")));
            }
            None => return Err(chunk_corrupt("has no codec byte")),
        }
    };
    let bytes = opened.bytes(envelope);
    if bytes.len() != len as usize || ChunkId::of(id_key, bytes) != id {
        return Err(Error::corrupt(
            object,
            format!(
                "chunk {} does not hold the bytes it is named for",
                &name[2..18]
            ),
        ));
    }
    Ok(opened)
}

/// A pack being filled.
pub(crate) struct PackBuilder {
    pub name: PackName,
    /// The pack's bytes from `base` on (those before went out as parts already).
    pub bytes: Vec<u8>,
    pub base: u64,
    pub entries: Vec<IndexEntry>,
    /// The envelope version of the pack's chunks, which its index is sealed with: this
    /// build's ([`crypto::PACK_VERSION`]) for new chunks, or that of the chunks a repack
    /// moves (they keep the version their associated data was sealed with). A pack holds
    /// chunks of one version only.
    pub version: u8,
}

impl PackBuilder {
    /// An empty pack with room for `capacity` bytes (on 64-bit Linux a big buffer is reserved
    /// as a mapping of its own, given back once the last of the pack's bytes, the PUT's body
    /// included, is dropped; see `crate::buffer`).
    pub fn new(name: PackName, capacity: usize) -> PackBuilder {
        PackBuilder {
            name,
            bytes: crate::buffer::reserve(capacity),
            base: 0,
            entries: Vec::new(),
            version: crypto::PACK_VERSION,
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

    /// Seals the chunk `id` (bare, kind 6, of the pack's version) at the end of the pack and
    /// returns its index entry: from version 10 deflated where that is shorter if `compress`,
    /// else as it is (with codec byte 0); before version 10 as it is, with no codec byte.
    #[cfg(test)] // the upload deflates on its own threads: `push_deflated`
    pub fn push(
        &mut self,
        key: &SecretKey,
        vault: VaultId,
        id: ChunkId,
        plaintext: &[u8],
        compress: bool,
        entropy: &mut Entropy,
    ) -> Result<IndexEntry> {
        let deflated = (compress && self.version >= CODEC_SINCE)
            .then(|| deflated(plaintext))
            .flatten();
        self.push_deflated(key, vault, id, plaintext, deflated.as_deref(), entropy)
    }

    /// [`PackBuilder::push`] of a chunk whose deflating was worked out already (elsewhere,
    /// maybe on another thread): `deflated` is what [`deflated`] gave for it, or `None` to
    /// store it as it is. A pack before version 10 stores it as it is either way.
    pub fn push_deflated(
        &mut self,
        key: &SecretKey,
        vault: VaultId,
        id: ChunkId,
        plaintext: &[u8],
        deflated: Option<&[u8]>,
        entropy: &mut Entropy,
    ) -> Result<IndexEntry> {
        let codecs = self.version >= CODEC_SINCE;
        let (codec, body) = match deflated.filter(|_| codecs) {
            Some(body) => (CODEC_DEFLATE, body),
            None => (CODEC_STORED, plaintext),
        };
        let start = self.bytes.len();
        let name = id.envelope_name();
        let ad = ObjectAd {
            vault,
            kind: ObjectKind::Chunk,
            name: &name,
        };
        let bytes = std::mem::take(&mut self.bytes);
        let mut sealing = crypto::begin_seal_bare_after(key, &ad, self.version, bytes, entropy)?;
        if codecs {
            sealing.buf.push(codec);
        }
        for piece in body.chunks(64 << 10) {
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
        let end = seal_index_version(key, vault, &self.name, &self.entries, self.version, entropy)?;
        self.bytes.extend_from_slice(&end);
        Ok(self.bytes)
    }
}

/// The end of the pack `name` whose chunks are `entries`, sealed by this build: the sealed
/// index and its length. What lies before it need not be only those chunks: bytes that no
/// entry names (a chunk cut off where an interrupted multipart upload stopped) are allowed
/// and never read.
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
    seal_index_version(key, vault, name, entries, crypto::PACK_VERSION, entropy)
}

/// Whether `entries` are, by their lengths, chunks that an earlier build sealed before
/// version 10 (a bare chunk is then exactly 40 bytes longer than its bytes, which this build
/// never writes: see [`deflated`]). For notes of a pack in parts that an earlier release left.
pub(crate) fn sealed_before_codecs(entries: &[IndexEntry]) -> bool {
    entries
        .iter()
        .any(|e| u64::from(e.sealed_len) == u64::from(e.len) + crypto::BARE_OVERHEAD as u64)
}

/// [`seal_index`] for chunks of envelope `version`.
fn seal_index_version(
    key: &SecretKey,
    vault: VaultId,
    name: &PackName,
    entries: &[IndexEntry],
    version: u8,
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
    let mut end = crypto::seal_version(key, &ad, version, &plain, entropy)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{PROBE_ABOVE, PROBE_LEN};

    const VAULT: VaultId = VaultId([9; 16]);

    fn keys() -> (SecretKey, SecretKey) {
        (SecretKey([1; 32]), SecretKey([2; 32]))
    }

    fn random(len: usize, seed: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; len];
        blake3::Hasher::new()
            .update(seed)
            .finalize_xof()
            .fill(&mut out);
        out
    }

    fn text(len: usize) -> Vec<u8> {
        let line = b"key=value; the same few words again and again, with a number ";
        (0..)
            .flat_map(|i: u32| line.iter().copied().chain(i.to_string().into_bytes()))
            .take(len)
            .collect()
    }

    /// Pushes `chunk` into a new pack and opens it again: its index entry, the codec byte it
    /// was sealed with, and what it opened to.
    fn round_trip(chunk: &[u8], compress: bool) -> (IndexEntry, u8, Opened, Vec<u8>) {
        let (key, id_key) = keys();
        let mut entropy = Entropy::from_seed([3; 32]);
        let name = PackName::random(DeviceId([4; 16]), &mut entropy);
        let mut builder = PackBuilder::new(name, 1024);
        let id = ChunkId::of(&id_key, chunk);
        let entry = builder
            .push(&key, VAULT, id, chunk, compress, &mut entropy)
            .unwrap();
        let pack = builder.finish(&key, VAULT, &mut entropy).unwrap();
        let (version, entries) = read_index(&key, VAULT, &name, pack.len() as u64, &pack).unwrap();
        assert_eq!(
            (version, &entries[..]),
            (crypto::PACK_VERSION, &[entry][..])
        );
        let sealed = &pack[entry.offset as usize..][..entry.sealed_len as usize];
        let mut plain = sealed.to_vec();
        let ad = ObjectAd {
            vault: VAULT,
            kind: ObjectKind::Chunk,
            name: &id.envelope_name(),
        };
        let range = crypto::open_bare_in_place(&key, &ad, version, &mut plain).unwrap();
        let codec = plain[range.start];
        let mut envelope = sealed.to_vec();
        let opened = open_chunk(
            &key,
            &id_key,
            VAULT,
            version,
            id,
            entry.len,
            &mut envelope,
            "p",
        )
        .unwrap();
        assert_eq!(opened.bytes(&envelope), chunk);
        (entry, codec, opened, envelope)
    }

    #[test]
    fn a_compressible_chunk_is_deflated_and_inflates_to_its_bytes() {
        let chunk = text(100_000);
        let (entry, codec, opened, _) = round_trip(&chunk, true);
        assert_eq!(codec, CODEC_DEFLATE);
        assert!(matches!(opened, Opened::Inflated(_)));
        // The index keeps the chunk's own length; only the sealed length shrinks.
        assert_eq!(entry.len, 100_000);
        assert!(entry.sealed_len < 20_000, "{}", entry.sealed_len);
    }

    #[test]
    fn with_compression_off_a_chunk_is_stored_behind_codec_byte_0() {
        let chunk = text(100_000);
        let (entry, codec, opened, _) = round_trip(&chunk, false);
        assert_eq!(codec, CODEC_STORED);
        assert!(matches!(opened, Opened::InPlace(_)));
        assert_eq!(entry.sealed_len, 100_000 + 41);
    }

    #[test]
    fn an_incompressible_chunk_stays_stored() {
        for len in [1, 2, 7, 1000, 100_000] {
            let chunk = random(len, b"small");
            let (entry, codec, opened, _) = round_trip(&chunk, true);
            assert_eq!(codec, CODEC_STORED, "{len}");
            assert!(matches!(opened, Opened::InPlace(_)));
            assert_eq!(entry.sealed_len as usize, len + 41);
        }
        // Never sealed to the length a version 6 chunk of the same bytes would have.
        for len in 1..200 {
            let chunk = text(len);
            if let Some(body) = deflated(&chunk) {
                assert!(body.len() + 1 < len, "{len}");
            }
        }
    }

    #[test]
    fn a_long_chunk_that_starts_incompressible_is_not_deflated() {
        // Random bytes, then text: the probe of the first 64 KiB decides.
        let mut chunk = random(PROBE_LEN, b"media");
        chunk.extend_from_slice(&text(400 << 10));
        assert!(deflated(&chunk).is_none());
        assert!(deflated(&random(1 << 20, b"big")).is_none());
        // The same text alone, as long, is deflated; and a short chunk is not probed.
        assert!(deflated(&text(chunk.len())).is_some());
        let mut short = random(1000, b"head");
        short.extend_from_slice(&text(PROBE_ABOVE - 1000));
        assert!(deflated(&short).is_some());
    }

    /// Seals `plain` bare as the version 10 chunk `id` (any codec byte and body).
    fn seal_chunk(id: ChunkId, plain: &[u8]) -> Vec<u8> {
        let (key, _) = keys();
        let name = id.envelope_name();
        let ad = ObjectAd {
            vault: VAULT,
            kind: ObjectKind::Chunk,
            name: &name,
        };
        let mut entropy = Entropy::from_seed([5; 32]);
        let mut sealing =
            crypto::begin_seal_bare_after(&key, &ad, CODEC_SINCE, Vec::new(), &mut entropy)
                .unwrap();
        sealing.buf.extend_from_slice(plain);
        crypto::finish_seal(sealing)
    }

    fn open_as(sealed: &[u8], id: ChunkId, len: u32) -> Result<Opened> {
        let (key, id_key) = keys();
        open_chunk(
            &key,
            &id_key,
            VAULT,
            CODEC_SINCE,
            id,
            len,
            &mut sealed.to_vec(),
            "p",
        )
    }

    #[test]
    fn a_chunk_that_does_not_inflate_to_its_length_is_corrupt() {
        let (_, id_key) = keys();
        let bytes = text(50_000);
        let id = ChunkId::of(&id_key, &bytes);
        let mut plain = vec![CODEC_DEFLATE];
        plain.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(&bytes, 3));
        let sealed = seal_chunk(id, &plain);
        assert!(open_as(&sealed, id, 50_000).is_ok());
        for len in [
            1,
            49_999,
            50_001,
            MAX_CHUNK_LEN,
            MAX_CHUNK_LEN + 1,
            u32::MAX,
        ] {
            let e = open_as(&sealed, id, len).unwrap_err();
            assert!(matches!(e, Error::Corrupt { .. }), "{len}: {e:?}");
        }
        // A bomb: 64 MiB of zeros in a few KiB, named as a chunk of the largest length.
        let zeros = miniz_oxide::deflate::compress_to_vec(&vec![0; 64 << 20], 3);
        let mut plain = vec![CODEC_DEFLATE];
        plain.extend_from_slice(&zeros);
        let e = open_as(&seal_chunk(id, &plain), id, MAX_CHUNK_LEN).unwrap_err();
        assert!(e.to_string().contains("does not inflate"), "{e}");
        // Not a deflate stream; an unknown codec; no codec byte at all.
        for (plain, reason) in [
            (&[CODEC_DEFLATE, 0xff, 0xff][..], "does not inflate"),
            (&[2, 1, 2, 3][..], "unknown codec 2"),
            (&[][..], "no codec byte"),
        ] {
            let e = open_as(&seal_chunk(id, plain), id, 3).unwrap_err();
            assert!(e.to_string().contains(reason), "{e}");
        }
    }

    #[test]
    fn a_version_6_pack_is_still_written_and_read_without_codec_bytes() {
        let (key, id_key) = keys();
        let mut entropy = Entropy::from_seed([6; 32]);
        let name = PackName::random(DeviceId([4; 16]), &mut entropy);
        let mut builder = PackBuilder::new(name, 1024);
        builder.version = BARE_SINCE;
        let chunk = text(10_000);
        let id = ChunkId::of(&id_key, &chunk);
        let entry = builder
            .push(&key, VAULT, id, &chunk, true, &mut entropy)
            .unwrap();
        assert_eq!(entry.sealed_len, 10_040);
        let pack = builder.finish(&key, VAULT, &mut entropy).unwrap();
        let (version, _) = read_index(&key, VAULT, &name, pack.len() as u64, &pack).unwrap();
        assert_eq!(version, BARE_SINCE);
        let mut envelope = pack[..10_040].to_vec();
        let opened = open_chunk(
            &key,
            &id_key,
            VAULT,
            version,
            id,
            10_000,
            &mut envelope,
            "p",
        )
        .unwrap();
        assert_eq!(opened, Opened::InPlace(24..10_024));
        assert!(sealed_before_codecs(&[entry]));
        let (entry, ..) = round_trip(&chunk, false);
        assert!(!sealed_before_codecs(&[entry]));
    }
}
