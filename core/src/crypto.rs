//! The encrypted object envelope shared by every object in the bucket, and key derivation.
//!
//! Layout (all of it specified in `docs/FORMAT.md`):
//!
//! ```text
//! magic "BKSY" | version u8 | kind u8 | vault id [16] | name length u16 BE | name
//!   | nonce [24] | check [8] | ciphertext | tag [16]
//! ```
//!
//! The associated data is the header from the magic through the name ([`ObjectAd`]). The check
//! is an unkeyed BLAKE3 of the header before it; it only lets a reader tell a damaged header
//! (corrupt) apart from an intact header that names another vault or another object.
//!
//! The AEAD is XChaCha20-Poly1305 exactly as RFC 8439 and the `chacha20poly1305` crate define it
//! (a test pins the two together byte for byte), composed here from RustCrypto's `chacha20`
//! and `poly1305` so that each chunk of a message is encrypted and authenticated while it is
//! still in the CPU cache. The crate makes two passes over the whole message (its own TODO,
//! RustCrypto/AEADs#74), which for a segment of megabytes reads it from memory twice; and a
//! segment's plaintext is encrypted as it is written, a few hundred bytes behind the writer
//! ([`SealBuffer::encrypt_ready`]).
//! Poly1305 is fed four blocks at a time ([`AlignedMac`]), which the crate does not do when the
//! associated data leaves a partial group of blocks (ours always does for some names).

use std::ops::Range;

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::XChaCha20;
use poly1305::universal_hash::{KeyInit, UniversalHash};
use poly1305::Poly1305;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::ids::VaultId;

/// The bucket format version of this build. It reads this one and every earlier one, down to
/// version 1. Version 5 added files (chunks and packs); version 6 seals the chunks inside a
/// pack bare (nonce, ciphertext, tag: no header in clear); version 7 adds pack redirects (a
/// repacked pack's chunks moved into another pack). Segments and checkpoints were unchanged
/// through version 10 and written as version 4, so version 4 replicas kept reading them;
/// manifests keep version 4's layout but are written as [`MANIFEST_VERSION`] (5), which
/// replicas of versions 5 and 6 read and version 4 replicas do not; packs and their chunks
/// are still written as version 6 ([`PACK_VERSION`]).
///
/// Version 8 adds sharing: manifests with member statements (written in envelope version 8)
/// and signed objects (the `BKSS` prefix of [`crate::signed`]) in shared vaults. A vault that
/// is not shared writes nothing new.
///
/// Version 9 seals the files of a shared vault under its newest key generation, as its
/// segments are: a file record's value of layout 3 names the generation whose keys cut, named,
/// sealed and hashed its chunks, and those chunks' packs (index and redirects) are sealed under
/// it. No envelope is written with version byte 9; a vault that is not shared, or has no key
/// generation above 0, writes nothing new.
///
/// Version 10 compresses chunks: a chunk's plaintext starts with a codec byte (0: the bytes as
/// they are, 1: raw deflate), and packs, their chunks and their indexes are written as version
/// 10 ([`PACK_VERSION`]); a file record's value of layout 4 points at such chunks. Versions 5
/// and 6 packs are still read.
///
/// Version 11 compresses segments and checkpoints the same way: their plaintext starts with a
/// codec byte, and they are written with envelope version 11 ([`LOG_FORMAT_VERSION`]).
/// Segments and checkpoints of versions 1 to 10 (whose plaintext has no codec byte) are still
/// read; a replica of version 10 or older reads none of version 11.
pub const FORMAT_VERSION: u8 = 11;
/// The envelope version this build writes for pack redirects (they came with version 7).
pub const REDIRECT_VERSION: u8 = 7;
/// The envelope version of a manifest holding member statements (a shared vault's).
pub const MEMBERS_MANIFEST_VERSION: u8 = 8;
/// The envelope version this build writes for pack indexes, and so for the chunks of its
/// packs (10: each chunk's plaintext starts with a codec byte).
pub const PACK_VERSION: u8 = 10;
/// The envelope version this build writes for manifests: 5 says the writer follows pack
/// redirects (the layout is version 4's), so a device repacks only once every active device
/// writes at least this.
pub const MANIFEST_VERSION: u8 = 5;
/// The envelope version this build writes for segments and checkpoints (11: the plaintext
/// starts with a codec byte; versions 4 to 10 wrote them as version 4).
pub const LOG_FORMAT_VERSION: u8 = 11;
/// The envelope version from which a segment's or checkpoint's plaintext starts with a codec
/// byte ([`crate::codec`]).
pub(crate) const LOG_CODEC_SINCE: u8 = 11;
/// The oldest bucket format version this build still reads.
pub const OLDEST_FORMAT_VERSION: u8 = 1;
/// The envelope version of objects that never enter the bucket (local state, journal entries,
/// the inner envelope of a wrapped key): their layouts carry versions of their own.
const LOCAL_ENVELOPE_VERSION: u8 = 1;

const MAGIC: &[u8; 4] = b"BKSY";
const NONCE_LEN: usize = 24;
const CHECK_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// What sealing bare adds to a plaintext: the nonce and the tag.
pub(crate) const BARE_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Bytes before the name: magic, version, kind, vault id, name length.
const FIXED_LEN: usize = 4 + 1 + 1 + 16 + 2;

/// What an object is. Part of the associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ObjectKind {
    Segment = 1,
    Manifest = 2,
    LocalState = 3,
    JournalEntry = 4,
    Checkpoint = 5,
    /// One chunk of a file, inside a pack (version 5; sealed bare from version 6).
    Chunk = 6,
    /// A pack's index of its chunks, at the pack's end (version 5).
    PackIndex = 7,
    /// Where the chunks of a repacked pack went (version 7).
    PackRedirect = 8,
}

impl ObjectKind {
    /// The envelope version this build writes for the kind.
    fn version(self) -> u8 {
        match self {
            ObjectKind::Segment | ObjectKind::Checkpoint => LOG_FORMAT_VERSION,
            ObjectKind::Manifest => MANIFEST_VERSION,
            ObjectKind::Chunk | ObjectKind::PackIndex => PACK_VERSION,
            ObjectKind::PackRedirect => REDIRECT_VERSION,
            ObjectKind::LocalState | ObjectKind::JournalEntry => LOCAL_ENVELOPE_VERSION,
        }
    }
}

/// The associated data of an object: everything that binds it to its place.
///
/// Changing these fields, their order or their encoding is a format change: bump
/// [`FORMAT_VERSION`] and update `docs/FORMAT.md`.
pub(crate) struct ObjectAd<'a> {
    pub vault: VaultId,
    pub kind: ObjectKind,
    /// The object's name relative to the vault folder, e.g. `m/<device>`.
    pub name: &'a str,
}

/// A 256-bit secret key, wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SecretKey(pub [u8; 32]);

impl core::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// A subkey for one purpose, by BLAKE3 `derive_key` with a context unique to that purpose.
    pub fn derive(&self, context: &str) -> SecretKey {
        SecretKey(blake3::derive_key(context, &self.0))
    }
}

/// Bytes encrypted and authenticated in one step: a multiple of the ChaCha20 block (64) and
/// of the Poly1305 block (16), small enough to stay in the first-level cache.
pub(crate) const CHUNK: usize = 16 << 10;

/// While a plaintext is appended piece by piece, it is encrypted in multiples of this many
/// bytes as soon as they are there (a multiple of the 256 bytes the vectorised ChaCha20 takes
/// at once, and of Poly1305's 64). Serializing many small records is mostly waiting for memory
/// (the records lie elsewhere, the object's buffer is new), encrypting is all arithmetic: in
/// small steps the two interleave closely enough for the processor to overlap them. In 16 KiB
/// steps a segment of 100,000 small records sealed about 12% slower (`examples/bench.rs`); in
/// steps of 256 bytes the calls cost more than the overlap gains.
const SEAL_STEP: usize = 512;

/// One XChaCha20-Poly1305 message in progress. Every piece given to [`Aead::encrypt`] or
/// [`Aead::decrypt`] but the last must be a multiple of 16 bytes long.
struct Aead {
    cipher: XChaCha20,
    mac: AlignedMac,
}

impl Aead {
    fn new(key: &SecretKey, nonce: &[u8; NONCE_LEN], ad: &[u8]) -> Aead {
        let mut cipher = XChaCha20::new((&key.0).into(), nonce.into());
        // The Poly1305 key is the first 32 bytes of keystream block 0; the message starts at
        // block 1.
        let mut mac_key = [0u8; 32];
        cipher.apply_keystream(&mut mac_key);
        let mut mac = AlignedMac::new(Poly1305::new((&mac_key).into()));
        mac_key.zeroize();
        cipher.seek(64u64);
        // The associated data, zero-padded to a whole number of 16-byte blocks.
        let whole = ad.len() / 16 * 16;
        mac.update(&ad[..whole]);
        if whole < ad.len() {
            let mut last = [0u8; 16];
            last[..ad.len() - whole].copy_from_slice(&ad[whole..]);
            mac.update(&last);
        }
        Aead { cipher, mac }
    }

    fn encrypt(&mut self, piece: &mut [u8]) {
        self.cipher.apply_keystream(piece);
        self.mac.update(piece);
    }

    fn decrypt(&mut self, piece: &mut [u8]) {
        self.mac.update(piece);
        self.cipher.apply_keystream(piece);
    }

    /// The tag over a message of `ad_len` bytes of associated data and `len` bytes of text.
    fn finish(self, ad_len: usize, len: usize) -> Poly1305 {
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&(ad_len as u64).to_le_bytes());
        lengths[8..].copy_from_slice(&(len as u64).to_le_bytes());
        let mut mac = self.mac;
        // The text's last partial block is zero-padded, as RFC 8439 pads it.
        mac.pad();
        mac.update(&lengths);
        mac.flush()
    }
}

/// Poly1305 fed so that its vectorised backend stays on its fast path. That backend hashes four
/// blocks at once only while it holds no block of an earlier call; a call that leaves one to
/// three blocks over (an associated data of 5 blocks, say) sends every later block through a
/// copy into its buffer. Here every call to Poly1305 but the last passes a multiple of four
/// blocks, the bytes over waiting in `held`. The blocks and their order are unchanged, so the tag
/// is the same.
struct AlignedMac {
    mac: Poly1305,
    held: [u8; 64],
    held_len: usize,
}

impl AlignedMac {
    fn new(mac: Poly1305) -> AlignedMac {
        AlignedMac {
            mac,
            held: [0; 64],
            held_len: 0,
        }
    }

    /// Hashes `data` after what came before. Only the last call before [`AlignedMac::pad`] may
    /// pass a length that is not a multiple of 16.
    fn update(&mut self, mut data: &[u8]) {
        if self.held_len > 0 {
            let take = (64 - self.held_len).min(data.len());
            self.held[self.held_len..self.held_len + take].copy_from_slice(&data[..take]);
            self.held_len += take;
            data = &data[take..];
            if self.held_len < 64 {
                return;
            }
            // Four whole blocks: `update_padded` pads nothing.
            self.mac.update_padded(&self.held);
            self.held_len = 0;
        }
        let whole = data.len() / 64 * 64;
        self.mac.update_padded(&data[..whole]);
        let rest = &data[whole..];
        self.held[..rest.len()].copy_from_slice(rest);
        self.held_len = rest.len();
    }

    /// Zero-pads the bytes so far to a whole number of 16-byte blocks.
    fn pad(&mut self) {
        let padded = self.held_len.div_ceil(16) * 16;
        self.held[self.held_len..padded].fill(0);
        self.held_len = padded;
        if self.held_len == 64 {
            self.mac.update_padded(&self.held);
            self.held_len = 0;
        }
    }

    /// Hashes what is held (whole blocks) and hands the MAC back to be finalized.
    fn flush(mut self) -> Poly1305 {
        self.mac.update_padded(&self.held[..self.held_len]);
        self.held.zeroize();
        self.mac
    }
}

/// Starts a sealed object: writes the header for `ad` with a fresh nonce drawn from `entropy`,
/// in a buffer with room for `capacity` bytes of plaintext and the tag. Append the plaintext to
/// the returned buffer (calling [`SealBuffer::encrypt_ready`] after each piece while it grows),
/// then call [`finish_seal`].
///
/// # Errors
/// `Config` when the name is longer than 65,535 bytes.
pub(crate) fn begin_seal(
    key: &SecretKey,
    ad: &ObjectAd<'_>,
    capacity: usize,
    entropy: &mut Entropy,
) -> Result<SealBuffer> {
    begin_seal_version(key, ad, ad.kind.version(), capacity, entropy)
}

/// [`begin_seal`] writing envelope `version` instead of the one this build writes for the
/// kind (the decoder tests seal earlier versions through [`crate::testing`]).
pub(crate) fn begin_seal_version(
    key: &SecretKey,
    ad: &ObjectAd<'_>,
    version: u8,
    capacity: usize,
    entropy: &mut Entropy,
) -> Result<SealBuffer> {
    let capacity = FIXED_LEN + ad.name.len() + NONCE_LEN + CHECK_LEN + capacity + TAG_LEN;
    begin_seal_at(key, ad, version, Vec::with_capacity(capacity), entropy)
}

/// [`begin_seal`] after `prefix` (bytes of the caller's framing, not part of the object),
/// in a buffer sized for a plaintext of `len` bytes.
pub(crate) fn begin_seal_after(
    key: &SecretKey,
    ad: &ObjectAd<'_>,
    prefix: &[u8],
    len: usize,
    entropy: &mut Entropy,
) -> Result<SealBuffer> {
    let capacity = prefix.len() + FIXED_LEN + ad.name.len() + NONCE_LEN + CHECK_LEN + len + TAG_LEN;
    let mut buf = Vec::with_capacity(capacity);
    buf.extend_from_slice(prefix);
    begin_seal_at(key, ad, ad.kind.version(), buf, entropy)
}

/// Starts sealing an object **bare** after the bytes already in `out`: only the nonce is
/// written before the plaintext, and the tag after it. The associated data is what the header
/// of [`begin_seal`] would hold (with envelope `version`), bound in but not written: the
/// reader must know the object's kind, version, vault and name to open it (a chunk's come
/// from the pack index or the file record). Nothing in clear tells where a bare object starts
/// or what it is. Go on as after [`begin_seal`].
///
/// # Errors
/// `Config` when the name is longer than 65,535 bytes.
pub(crate) fn begin_seal_bare_after(
    key: &SecretKey,
    ad: &ObjectAd<'_>,
    version: u8,
    mut buf: Vec<u8>,
    entropy: &mut Entropy,
) -> Result<SealBuffer> {
    let header = ad_bytes(ad, version)?;
    let nonce: [u8; NONCE_LEN] = entropy.array();
    buf.extend_from_slice(&nonce);
    let body_start = buf.len();
    let aead = Aead::new(key, &nonce, &header);
    Ok(SealBuffer {
        buf,
        ad_len: header.len(),
        body_start,
        sealed: body_start,
        aead,
    })
}

/// Opens a bare object (see [`begin_seal_bare_after`]) sealed as `expected` with envelope
/// `version`, where it lies; returns where its plaintext now is. On an error no
/// unauthenticated plaintext is left.
///
/// # Errors
/// `Corrupt` when it is too short or fails authentication (damaged, or another object).
pub(crate) fn open_bare_in_place(
    key: &SecretKey,
    expected: &ObjectAd<'_>,
    version: u8,
    object: &mut [u8],
) -> Result<Range<usize>> {
    let corrupt = |reason: &str| Error::corrupt(expected.name, reason);
    if object.len() < BARE_OVERHEAD {
        return Err(corrupt("truncated"));
    }
    let header = ad_bytes(expected, version)?;
    let tag_start = object.len() - TAG_LEN;
    let (nonce, rest) = object.split_at_mut(NONCE_LEN);
    let (body, tag) = rest.split_at_mut(tag_start - NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = (&*nonce).try_into().expect("the nonce is 24 bytes");
    let mut aead = Aead::new(key, nonce, &header);
    for piece in body.chunks_mut(CHUNK) {
        aead.decrypt(piece);
    }
    if aead
        .finish(header.len(), body.len())
        .verify(
            <&[u8; TAG_LEN]>::try_from(&*tag)
                .expect("the tag is 16 bytes")
                .into(),
        )
        .is_err()
    {
        body.zeroize();
        return Err(corrupt("failed authentication"));
    }
    Ok(NONCE_LEN..tag_start)
}

/// Whether `object` starts as an envelope does (its magic): what an object written unsigned
/// starts with, and what no answer cut short of a signed object (`BKSS`...) does.
pub(crate) fn is_envelope(object: &[u8]) -> bool {
    object.starts_with(MAGIC)
}

/// The associated data of `ad` as the header of an envelope of `version` lays it out.
fn ad_bytes(ad: &ObjectAd<'_>, version: u8) -> Result<Vec<u8>> {
    let name = ad.name.as_bytes();
    let name_len = u16::try_from(name.len())
        .map_err(|_| Error::Config(format!("object name too long: {}", ad.name)))?;
    let mut out = Vec::with_capacity(FIXED_LEN + name.len());
    out.extend_from_slice(MAGIC);
    out.push(version);
    out.push(ad.kind as u8);
    out.extend_from_slice(&ad.vault.0);
    out.extend_from_slice(&name_len.to_be_bytes());
    out.extend_from_slice(name);
    Ok(out)
}

fn begin_seal_at(
    key: &SecretKey,
    ad: &ObjectAd<'_>,
    version: u8,
    mut buf: Vec<u8>,
    entropy: &mut Entropy,
) -> Result<SealBuffer> {
    let base = buf.len();
    buf.extend_from_slice(&ad_bytes(ad, version)?);
    let ad_len = buf.len() - base;
    let nonce: [u8; NONCE_LEN] = entropy.array();
    buf.extend_from_slice(&nonce);
    let check = blake3::hash(&buf[base..]);
    buf.extend_from_slice(&check.as_bytes()[..CHECK_LEN]);
    let body_start = buf.len();
    let aead = Aead::new(key, &nonce, &buf[base..base + ad_len]);
    Ok(SealBuffer {
        buf,
        ad_len,
        body_start,
        sealed: body_start,
        aead,
    })
}

/// An object being sealed: the header, then the plaintext appended by the caller, encrypted in
/// place up to `sealed` (positions in `buf`, which may hold other bytes before the object).
pub(crate) struct SealBuffer {
    pub buf: Vec<u8>,
    /// The associated data's length.
    ad_len: usize,
    body_start: usize,
    sealed: usize,
    aead: Aead,
}

impl SealBuffer {
    /// Encrypts the plaintext appended since the last call, in whole [`SEAL_STEP`]s (the rest
    /// waits for the next call, or [`finish_seal`]), while it is still in the cache. Cheap to
    /// call after every small append.
    pub fn encrypt_ready(&mut self) {
        let ready = (self.buf.len() - self.sealed) / SEAL_STEP * SEAL_STEP;
        if ready == 0 {
            return;
        }
        // A large append (a big value) is encrypted a first-level cache's worth at a time.
        for piece in self.buf[self.sealed..self.sealed + ready].chunks_mut(CHUNK) {
            self.aead.encrypt(piece);
        }
        self.sealed += ready;
    }
}

/// Encrypts the rest of the plaintext appended after the header in place and appends the tag.
pub(crate) fn finish_seal(sealing: SealBuffer) -> Vec<u8> {
    let SealBuffer {
        mut buf,
        ad_len,
        body_start,
        sealed,
        mut aead,
    } = sealing;
    aead.encrypt(&mut buf[sealed..]);
    let tag = aead.finish(ad_len, buf.len() - body_start).finalize();
    buf.extend_from_slice(&tag);
    buf
}

/// Finishes sealing a plaintext written after a codec byte [`codec::STORED`] at `start`
/// (segments and checkpoints): deflated in its place first where `deflate` is set and that is
/// shorter ([`codec::deflate_in_place`]); the buffer then gives back what it did not use.
pub(crate) fn finish_seal_coded(mut sealing: SealBuffer, start: usize, deflate: bool) -> Vec<u8> {
    if deflate {
        debug_assert!(
            sealing.sealed <= start,
            "deflated before any of it is encrypted"
        );
        crate::codec::deflate_in_place(&mut sealing.buf, start);
    }
    let mut sealed = finish_seal(sealing);
    sealed.shrink_to_fit();
    sealed
}

/// Seals `plaintext` as one object.
pub(crate) fn seal(
    key: &SecretKey,
    ad: &ObjectAd<'_>,
    plaintext: &[u8],
    entropy: &mut Entropy,
) -> Result<Vec<u8>> {
    let mut sealing = begin_seal(key, ad, plaintext.len(), entropy)?;
    sealing.buf.extend_from_slice(plaintext);
    Ok(finish_seal(sealing))
}

/// [`seal`] writing envelope `version` instead of the one this build writes for the kind.
pub(crate) fn seal_version(
    key: &SecretKey,
    ad: &ObjectAd<'_>,
    version: u8,
    plaintext: &[u8],
    entropy: &mut Entropy,
) -> Result<Vec<u8>> {
    let mut sealing = begin_seal_version(key, ad, version, plaintext.len(), entropy)?;
    sealing.buf.extend_from_slice(plaintext);
    Ok(finish_seal(sealing))
}

/// Opens an object fetched as `expected`, returning its plaintext.
///
/// See [`open_versioned`] for the errors.
pub(crate) fn open(key: &SecretKey, expected: &ObjectAd<'_>, object: Vec<u8>) -> Result<Vec<u8>> {
    open_versioned(key, expected, object).map(|(_, plain)| plain)
}

/// Opens an object fetched as `expected`, returning its format version and its plaintext.
///
/// See [`open_in_place`] for the errors.
pub(crate) fn open_versioned(
    key: &SecretKey,
    expected: &ObjectAd<'_>,
    mut object: Vec<u8>,
) -> Result<(u8, Vec<u8>)> {
    let (version, plain) = open_in_place(key, expected, &mut object)?;
    object.truncate(plain.end);
    object.drain(..plain.start);
    Ok((version, object))
}

/// Opens an object fetched as `expected` where it lies, returning its format version and where
/// its plaintext now is. On an error no unauthenticated plaintext is left in `object`.
///
/// # Errors
/// - `Corrupt` when the object is truncated, its header is damaged, its format version is
///   unknown, it is another kind of object or another object's name (moved), or it fails
///   authentication;
/// - `WrongVault` when its intact header names another vault.
pub(crate) fn open_in_place(
    key: &SecretKey,
    expected: &ObjectAd<'_>,
    object: &mut [u8],
) -> Result<(u8, Range<usize>)> {
    open_in_place_looking(key, expected, object, |_| {})
}

/// Why a segment or checkpoint was not opened.
#[derive(Debug)]
pub(crate) enum Unopened {
    /// Its bytes are not what its writer sealed (damaged, cut short on the way, moved from
    /// another name or vault, or of a version this build does not read): fetched again, it
    /// may read.
    Unauthentic(Error),
    /// Its writer sealed it so: it authenticates, but does not inflate within the bound, does
    /// not decode, or names another object inside. The same at every fetch.
    Sealed(Error),
}

impl From<Unopened> for Error {
    fn from(unopened: Unopened) -> Error {
        match unopened {
            Unopened::Unauthentic(e) | Unopened::Sealed(e) => e,
        }
    }
}

/// [`open_in_place`], showing `look` the plaintext decrypted so far (a growing prefix of it)
/// after each chunk, while that chunk is still in the CPU cache, so a decoder can check it on
/// the way instead of reading the whole plaintext from memory once more afterwards. What `look`
/// sees is **not yet authenticated**: it may only check it (in bounded time and memory, as a
/// hostile plaintext demands anyway), and whatever it concludes counts only when this returns
/// `Ok`; on a failed authentication the error is the same whatever `look` found.
///
/// # Errors
/// As [`open_in_place`].
pub(crate) fn open_in_place_looking(
    key: &SecretKey,
    expected: &ObjectAd<'_>,
    object: &mut [u8],
    mut look: impl FnMut(&[u8]),
) -> Result<(u8, Range<usize>)> {
    let name = expected.name;
    let corrupt = |reason: &str| Error::corrupt(name, reason);
    if object.len() < FIXED_LEN || &object[..4] != MAGIC {
        return Err(corrupt("not a bucketsync object"));
    }
    // Before anything else: another version may frame its header differently.
    let version = object[4];
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(corrupt(&format!(
            "format version {version} is not supported (this build reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})"
        )));
    }
    let name_len = u16::from_be_bytes([object[FIXED_LEN - 2], object[FIXED_LEN - 1]]) as usize;
    let ad_len = FIXED_LEN + name_len;
    let body_start = ad_len + NONCE_LEN + CHECK_LEN;
    if object.len() < body_start + TAG_LEN {
        return Err(corrupt("truncated"));
    }
    let check = blake3::hash(&object[..ad_len + NONCE_LEN]);
    if check.as_bytes()[..CHECK_LEN] != object[ad_len + NONCE_LEN..body_start] {
        return Err(corrupt("damaged header"));
    }
    if object[5] != expected.kind as u8 {
        return Err(corrupt("holds another kind of object"));
    }
    if object[6..22] != expected.vault.0 {
        return Err(Error::WrongVault {
            object: name.to_owned(),
        });
    }
    if &object[FIXED_LEN..ad_len] != name.as_bytes() {
        let found = crate::error::quote(&String::from_utf8_lossy(&object[FIXED_LEN..ad_len]));
        return Err(corrupt(&format!("was moved here from {found}")));
    }
    let tag_start = object.len() - TAG_LEN;
    let (header, rest) = object.split_at_mut(body_start);
    let (body, tag) = rest.split_at_mut(tag_start - body_start);
    let nonce: &[u8; NONCE_LEN] = header[ad_len..ad_len + NONCE_LEN]
        .try_into()
        .expect("the nonce is 24 bytes");
    let mut aead = Aead::new(key, nonce, &header[..ad_len]);
    let mut done = 0;
    while done < body.len() {
        let end = (done + CHUNK).min(body.len());
        aead.decrypt(&mut body[done..end]);
        done = end;
        look(&body[..done]);
    }
    // Poly1305's verify compares in constant time.
    if aead
        .finish(ad_len, body.len())
        .verify(
            <&[u8; TAG_LEN]>::try_from(&*tag)
                .expect("the tag is 16 bytes")
                .into(),
        )
        .is_err()
    {
        body.zeroize();
        return Err(corrupt("failed authentication"));
    }
    Ok((version, body_start..tag_start))
}

/// Decodes a postcard plaintext that must be exactly one value: leftover bytes are an error.
pub(crate) fn decode_exact<'a, T: serde::Deserialize<'a>>(
    plain: &'a [u8],
) -> core::result::Result<T, String> {
    match postcard::take_from_bytes(plain) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(format!("{} bytes left over", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad(name: &str) -> ObjectAd<'_> {
        ObjectAd {
            vault: VaultId([7; 16]),
            kind: ObjectKind::Manifest,
            name,
        }
    }

    /// Our chunked XChaCha20-Poly1305 is the `chacha20poly1305` crate's, byte for byte, for
    /// messages around every chunk boundary, both ways.
    #[test]
    fn the_chunked_aead_is_xchacha20poly1305() {
        use chacha20poly1305::aead::{AeadInOut, KeyInit};
        let key = SecretKey([0x42; 32]);
        let reference = chacha20poly1305::XChaCha20Poly1305::new((&key.0).into());
        let mut entropy = Entropy::from_seed([5; 32]);
        let lengths = [
            0,
            1,
            15,
            16,
            17,
            63,
            64,
            65,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK + 17,
        ];
        // Names of every length modulo 64 bytes, so the associated data leaves Poly1305 each
        // alignment.
        for (len, name_len) in lengths.iter().flat_map(|&l| (1..=64).map(move |n| (l, n))) {
            let name = "n".repeat(name_len);
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            // Appended in uneven pieces of many sizes, encrypting as it goes, as a segment is.
            let mut sealing = begin_seal(&key, &ad(&name), len, &mut entropy).unwrap();
            for piece in plain.chunks(1 + name_len * 37 % 1000) {
                sealing.buf.extend_from_slice(piece);
                sealing.encrypt_ready();
            }
            let (ad_len, body_start) = (sealing.ad_len, sealing.body_start);
            let sealed = finish_seal(sealing);
            let header = &sealed[..body_start];
            let nonce: &[u8; NONCE_LEN] = header[ad_len..ad_len + NONCE_LEN].try_into().unwrap();
            let mut expected = plain.clone();
            let tag = reference
                .encrypt_inout_detached(
                    nonce.into(),
                    &header[..ad_len],
                    expected.as_mut_slice().into(),
                )
                .unwrap();
            expected.extend_from_slice(&tag);
            assert_eq!(
                &sealed[body_start..],
                &expected[..],
                "length {len}, name {name_len}"
            );
            assert_eq!(
                open(&key, &ad(&name), sealed).unwrap(),
                plain,
                "length {len}, name {name_len}"
            );
        }
    }

    /// Key material is wiped when dropped: a key type that loses its wipe stops compiling here,
    /// and wiping clears every byte.
    #[test]
    fn secret_keys_are_wiped_on_drop() {
        fn wiped_on_drop<T: ZeroizeOnDrop>() {}
        wiped_on_drop::<SecretKey>();
        wiped_on_drop::<zeroize::Zeroizing<String>>();
        // The AEAD's parts: the cipher with its leftover keystream (`cipher`'s `zeroize`).
        wiped_on_drop::<XChaCha20>();
        let mut key = SecretKey([7; 32]);
        let subkey = key.derive("bucketsync test");
        assert_ne!(subkey.0, [0; 32]);
        key.zeroize();
        assert_eq!(key.0, [0; 32]);
    }

    #[test]
    fn a_failed_open_leaves_no_plaintext() {
        let key = SecretKey([1; 32]);
        let plain = [0x61u8; 100];
        let mut sealed = seal(&key, &ad("m/x"), &plain, &mut Entropy::from_seed([0; 32])).unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(open_in_place(&key, &ad("m/x"), &mut sealed).is_err());
        assert!(!sealed.windows(4).any(|w| w == [0x61; 4]));
    }

    #[test]
    fn round_trip() {
        let key = SecretKey([1; 32]);
        let sealed = seal(&key, &ad("m/x"), b"hello", &mut Entropy::from_seed([0; 32])).unwrap();
        assert_eq!(open(&key, &ad("m/x"), sealed).unwrap(), b"hello");
    }

    #[test]
    fn every_flipped_byte_is_corrupt() {
        let key = SecretKey([1; 32]);
        let sealed = seal(
            &key,
            &ad("m/x"),
            b"some plaintext",
            &mut Entropy::from_seed([0; 32]),
        )
        .unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            let err = open(&key, &ad("m/x"), bad).unwrap_err();
            assert_eq!(err.category(), crate::Category::Corrupt, "byte {i}: {err}");
        }
    }

    /// Issue 14: the name inside a misplaced object is attacker-chosen (up to 64 KiB): the
    /// error quotes it short and escaped.
    #[test]
    fn a_hostile_name_inside_an_object_is_quoted_short() {
        let key = SecretKey([1; 32]);
        let name = format!("m/\u{7}{}", "y".repeat(60_000));
        let sealed = seal(&key, &ad(&name), b"p", &mut Entropy::from_seed([0; 32])).unwrap();
        let err = open(&key, &ad("m/x"), sealed).unwrap_err().to_string();
        assert!(err.len() < 300, "{} bytes", err.len());
        assert!(!err.contains('\u{7}'), "{err}");
    }

    #[test]
    fn misplaced_and_foreign_objects_are_told_apart() {
        let key = SecretKey([1; 32]);
        let sealed = seal(&key, &ad("m/x"), b"p", &mut Entropy::from_seed([0; 32])).unwrap();
        let moved = open(&key, &ad("m/y"), sealed.clone()).unwrap_err();
        assert!(moved.to_string().contains("moved here from m/x"), "{moved}");
        let other_vault = ObjectAd {
            vault: VaultId([8; 16]),
            ..ad("m/x")
        };
        assert_eq!(
            open(&key, &other_vault, sealed).unwrap_err().category(),
            crate::Category::WrongVault
        );
    }
}
