//! A file is a record: its value says how big the file is, a keyed hash of its content, and
//! either the content itself (small files) or where each of its chunks lies. The value travels
//! in segments like any other, so files sync, conflict, keep history and are deleted exactly
//! like records; the chunks move only when a file is written or read.
//!
//! ```text
//! magic "BKSF" | layout u8 | postcard FileValue
//! ```
//!
//! Layout 1 (format version 5) points at chunks sealed as whole envelopes; layout 2 (format
//! version 6) at chunks sealed bare with the vault's own keys; layout 3 (format version 9) at
//! chunks sealed bare with the file keys of a later key generation of a shared vault, whose
//! number follows the layout byte (u32 big-endian). Layout 4 (format version 10) always has
//! the generation field (0 included) and points at chunks of version 10, whose plaintext starts
//! with a codec byte (they may be deflated). The postcard part is the same in all four.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pack::{ChunkId, PackName};

const MAGIC: &[u8; 4] = b"BKSF";
/// The layout this build writes under the vault's own keys: its chunks are sealed bare.
const LAYOUT: u8 = 2;
/// The layout this build writes under a later key generation: as [`LAYOUT`], the generation
/// after the layout byte.
const LAYOUT_GENERATION: u8 = 3;
/// The layout of format version 5, still read: its chunks are whole envelopes.
const LAYOUT_ENVELOPED: u8 = 1;
/// The layout this build writes (format version 10): the key generation (0 included) after
/// the layout byte, and chunks of version 10 (a codec byte before their bytes).
const LAYOUT_CODEC: u8 = 4;

/// Files up to this size live in their record's value, with no chunk and no pack.
pub const INLINE_MAX: u64 = 4 << 10;

/// Where a file's bytes are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Body {
    /// The bytes themselves.
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The chunks, in file order, and the packs they lie in.
    Chunks {
        packs: Vec<PackName>,
        chunks: Vec<ChunkRef>,
    },
}

/// One chunk of a file: which, how long, and where its envelope lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChunkRef {
    pub id: ChunkId,
    /// Plaintext bytes.
    pub len: u32,
    /// Index into the value's pack list.
    pub pack: u32,
    /// Where the chunk's envelope starts in the pack.
    pub offset: u64,
    /// The envelope's length.
    pub sealed_len: u32,
}

/// The value of a file record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileValue {
    /// The file's length in bytes.
    pub size: u64,
    /// Keyed BLAKE3 of the whole content under the file-hash key.
    pub hash: [u8; 32],
    pub body: Body,
    /// The envelope version of the chunks (5 for layout 1, 6 for layouts 2 and 3, 10 for
    /// layout 4): not in the postcard part, the layout byte says it.
    #[serde(skip)]
    pub chunk_version: u8,
    /// The key generation whose file keys cut, named, sealed and hashed the file (0 for
    /// layouts 1 and 2): not in the postcard part.
    #[serde(skip)]
    pub generation: u32,
}

impl FileValue {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(MAGIC);
        if self.chunk_version >= crate::pack::CODEC_SINCE {
            out.push(LAYOUT_CODEC);
            out.extend_from_slice(&self.generation.to_be_bytes());
        } else if self.generation > 0 {
            out.push(LAYOUT_GENERATION);
            out.extend_from_slice(&self.generation.to_be_bytes());
        } else if self.chunk_version >= crate::pack::BARE_SINCE {
            out.push(LAYOUT);
        } else {
            out.push(LAYOUT_ENVELOPED);
        }
        postcard::to_extend(self, out).expect("encoding to a Vec cannot fail")
    }

    /// Reads a record's value as a file. `key` names the record in errors.
    ///
    /// # Errors
    /// `Config` when the value is not a file; `Corrupt` when it says it is one and does not
    /// decode, or its chunks do not add up to its size or point at packs it does not list.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<FileValue> {
        let shown = String::from_utf8_lossy(key);
        let Some(rest) = value.strip_prefix(MAGIC) else {
            return Err(Error::Config(format!("{shown:?} is a record, not a file")));
        };
        let corrupt = |reason: String| Error::corrupt(&format!("file {shown:?}"), reason);
        let (chunk_version, generation, body) = match rest.split_first() {
            Some((&LAYOUT_ENVELOPED, body)) => (crate::pack::BARE_SINCE - 1, 0, body),
            Some((&LAYOUT, body)) => (crate::pack::BARE_SINCE, 0, body),
            Some((&LAYOUT_GENERATION, rest)) => {
                let Some((generation, body)) = rest.split_first_chunk::<4>() else {
                    return Err(corrupt("truncated".into()));
                };
                match u32::from_be_bytes(*generation) {
                    0 => return Err(corrupt("file layout 3 names key generation 0".into())),
                    g => (crate::pack::BARE_SINCE, g, body),
                }
            }
            Some((&LAYOUT_CODEC, rest)) => {
                let Some((generation, body)) = rest.split_first_chunk::<4>() else {
                    return Err(corrupt("truncated".into()));
                };
                (
                    crate::pack::CODEC_SINCE,
                    u32::from_be_bytes(*generation),
                    body,
                )
            }
            Some((v, _)) => {
                return Err(corrupt(format!(
                    "file layout {v} is not supported (this build reads {LAYOUT_ENVELOPED} to {LAYOUT_CODEC})"
                )))
            }
            None => return Err(corrupt("truncated".into())),
        };
        let mut file: FileValue = crate::crypto::decode_exact(body).map_err(corrupt)?;
        file.chunk_version = chunk_version;
        file.generation = generation;
        file.check().map_err(|r| corrupt(r.into()))?;
        Ok(file)
    }

    fn check(&self) -> core::result::Result<(), &'static str> {
        match &self.body {
            Body::Inline(bytes) if bytes.len() as u64 != self.size => {
                Err("inline content is not as long as the file")
            }
            Body::Inline(_) => Ok(()),
            Body::Chunks { packs, chunks } => {
                let total = chunks.iter().map(|c| u64::from(c.len)).sum::<u64>();
                if total != self.size {
                    Err("chunks do not add up to the file's size")
                } else if chunks.iter().any(|c| c.pack as usize >= packs.len()) {
                    Err("a chunk lies in a pack the file does not list")
                } else if chunks.iter().any(|c| !self.lengths_possible(c)) {
                    Err("a chunk's lengths are impossible")
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Whether a chunk of this file's chunk version can have the lengths `chunk` names.
    fn lengths_possible(&self, chunk: &ChunkRef) -> bool {
        let overhead = crate::crypto::BARE_OVERHEAD as u64;
        let (len, sealed_len) = (u64::from(chunk.len), u64::from(chunk.sealed_len));
        if chunk.len == 0 {
            false
        } else if self.chunk_version >= crate::pack::CODEC_SINCE {
            // A codec byte and at least one byte of body, and never longer than stored as it
            // is; deflated, it may be far shorter than `len`, which is capped.
            chunk.len <= crate::pack::MAX_CHUNK_LEN
                && sealed_len > overhead + 1
                && sealed_len <= len + overhead + 1
        } else if self.chunk_version >= crate::pack::BARE_SINCE {
            sealed_len == len + overhead
        } else {
            sealed_len > len
        }
    }

    /// The number of chunks (0 for an inline file).
    pub fn chunk_count(&self) -> usize {
        match &self.body {
            Body::Inline(_) => 0,
            Body::Chunks { chunks, .. } => chunks.len(),
        }
    }

    /// Whether `value` is a file record's value (by its first bytes).
    pub fn is_file(value: &[u8]) -> bool {
        value.starts_with(MAGIC)
    }
}

/// What [`crate::Engine`] tells about a file without fetching it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Its length in bytes.
    pub size: u64,
    /// How many chunks it is stored in (0: it lives inside its record).
    pub chunks: u64,
    /// How many packs hold them.
    pub packs: u64,
    /// Hex of the keyed content hash: equal for equal content within a vault and
    /// key generation (a revocation starts a new one).
    pub content_hash: String,
}

impl From<&FileValue> for FileInfo {
    fn from(file: &FileValue) -> Self {
        let packs = match &file.body {
            Body::Inline(_) => 0,
            Body::Chunks { packs, .. } => packs.len() as u64,
        };
        FileInfo {
            size: file.size,
            chunks: file.chunk_count() as u64,
            packs,
            content_hash: file.hash.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(chunk_version: u8, generation: u32, sealed_len: u32) -> FileValue {
        FileValue {
            size: 5000,
            hash: [7; 32],
            body: Body::Chunks {
                packs: vec![PackName {
                    device: [1; 16],
                    pack: [2; 16],
                }],
                chunks: vec![ChunkRef {
                    id: ChunkId([3; 32]),
                    len: 5000,
                    pack: 0,
                    offset: 0,
                    sealed_len,
                }],
            },
            chunk_version,
            generation,
        }
    }

    #[test]
    fn layout_4_round_trips_with_any_generation() {
        for generation in [0, 1, 0x0102_0304] {
            for sealed_len in [42, 300, 5041] {
                let file = chunked(crate::pack::CODEC_SINCE, generation, sealed_len);
                let value = file.encode();
                assert_eq!(&value[..5], b"BKSF\x04");
                assert_eq!(value[5..9], generation.to_be_bytes());
                assert_eq!(FileValue::decode(b"f", &value).unwrap(), file);
            }
        }
    }

    #[test]
    fn layout_4_lengths_that_no_writer_makes_are_corrupt() {
        for sealed_len in [0, 41, 5042, u32::MAX] {
            let value = chunked(crate::pack::CODEC_SINCE, 0, sealed_len).encode();
            let e = FileValue::decode(b"f", &value).unwrap_err();
            assert!(matches!(e, Error::Corrupt { .. }), "{sealed_len}: {e:?}");
        }
        // A chunk longer than any chunk (a reader would inflate that much).
        let mut file = chunked(crate::pack::CODEC_SINCE, 0, 100);
        file.size = u64::from(crate::pack::MAX_CHUNK_LEN) + 1;
        if let Body::Chunks { chunks, .. } = &mut file.body {
            chunks[0].len = crate::pack::MAX_CHUNK_LEN + 1;
        }
        let e = FileValue::decode(b"f", &file.encode()).unwrap_err();
        assert!(e.to_string().contains("impossible"), "{e}");
        // Truncated in the generation field.
        let e = FileValue::decode(b"f", b"BKSF\x04\0\0").unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = FileValue::decode(b"f", b"BKSF\x05").unwrap_err();
        assert!(e.to_string().contains("reads 1 to 4"), "{e}");
    }

    #[test]
    fn the_older_layouts_still_decode() {
        for (file, layout) in [
            (chunked(5, 0, 5100), 1),
            (chunked(6, 0, 5040), 2),
            (chunked(6, 2, 5040), 3),
        ] {
            let value = file.encode();
            assert_eq!(value[4], layout);
            assert_eq!(FileValue::decode(b"f", &value).unwrap(), file);
        }
        // A bare chunk of layout 2 is still exactly 40 bytes longer than its bytes.
        let e = FileValue::decode(b"f", &chunked(6, 0, 5041).encode()).unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    }
}
