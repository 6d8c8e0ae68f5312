//! Content-defined chunking of files, keyed by the vault key.
//!
//! Cut points come from FastCDC 2020 (the `fastcdc` crate's [`fastcdc::v2020::cut_gear`]) with
//! a gear table derived from the vault key, so that where a file is cut depends on the key as
//! well as on the bytes: someone without the key cannot predict chunk boundaries (and so chunk
//! sizes) from a guess of the content. The crate's own seed only XORs one word into its fixed
//! table, which leaves the table's structure public. What keyed chunking still leaks is said in
//! `docs/FORMAT.md` (section "Files").
//!
//! The chunker is incremental and does no I/O: [`Chunker::feed`] takes bytes as they arrive,
//! [`Chunker::next_chunk`] hands out each chunk once its cut point is known. It holds at most
//! [`MAX_CHUNK`] bytes.

use fastcdc::v2020::{cut_gear, select_masks, Normalization};

use crate::crypto::SecretKey;

/// No chunk but a file's last is shorter (restic's bounds).
pub const MIN_CHUNK: usize = 512 << 10;
/// The size chunks average on random data.
pub const AVG_CHUNK: usize = 1 << 20;
/// No chunk is longer.
pub const MAX_CHUNK: usize = 8 << 20;

/// The gear tables of one vault: 256 keyed 64-bit words, and the same shifted left by one
/// (FastCDC 2020 rolls two bytes a step).
pub(crate) struct Gear {
    gear: Box<[u64; 256]>,
    shifted: Box<[u64; 256]>,
}

impl Gear {
    /// The table for the chunker key: the first 2048 bytes of BLAKE3's output keyed with it (of
    /// an empty input), read as 256 little-endian words.
    pub fn new(chunker_key: &SecretKey) -> Gear {
        let mut bytes = [0u8; 256 * 8];
        blake3::Hasher::new_keyed(&chunker_key.0)
            .finalize_xof()
            .fill(&mut bytes);
        let mut gear = Box::new([0u64; 256]);
        for (word, b) in gear.iter_mut().zip(bytes.chunks_exact(8)) {
            *word = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        }
        let mut shifted = Box::new([0u64; 256]);
        for (s, g) in shifted.iter_mut().zip(gear.iter()) {
            *s = g << 1;
        }
        Gear { gear, shifted }
    }

    /// Word `i` of the table (the format vectors pin some).
    #[cfg(test)]
    pub fn word(&self, i: usize) -> u64 {
        self.gear[i]
    }
}

/// Cuts a stream of bytes into chunks.
pub(crate) struct Chunker {
    gear: Gear,
    masks: (u64, u64),
    /// Bytes fed and not yet handed out are `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
}

impl Chunker {
    pub fn new(gear: Gear) -> Chunker {
        Chunker {
            gear,
            masks: select_masks(AVG_CHUNK, Normalization::Level1),
            buf: Vec::new(),
            start: 0,
        }
    }

    /// Drops whatever is held, for the next input (the buffer is kept).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.start = 0;
    }

    /// How many more bytes [`Chunker::feed`] takes now (it holds at most [`MAX_CHUNK`]).
    pub fn room(&self) -> usize {
        MAX_CHUNK - (self.buf.len() - self.start)
    }

    /// Takes as much of `data` as there is room for, and says how much that was. Call
    /// [`Chunker::next_chunk`] until it returns `None` to make room again.
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let take = data.len().min(self.room());
        if self.buf.len() + take > self.buf.capacity() && self.start > 0 {
            // Move what is left to the front once, rather than after every chunk.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(MAX_CHUNK);
        }
        self.buf.extend_from_slice(&data[..take]);
        take
    }

    /// The next chunk, once its end is known: when [`MAX_CHUNK`] bytes are held, or at the end
    /// of the input (`last`), when whatever is held is cut.
    pub fn next_chunk(&mut self, last: bool) -> Option<&[u8]> {
        if self.start == self.buf.len() {
            // Everything handed out: start the buffer over.
            self.buf.clear();
            self.start = 0;
        }
        let held = &self.buf[self.start..];
        if held.is_empty() || (!last && held.len() < MAX_CHUNK) {
            return None;
        }
        let (mask_s, mask_l) = self.masks;
        let (_, cut) = cut_gear(
            held,
            MIN_CHUNK,
            AVG_CHUNK,
            MAX_CHUNK,
            mask_s,
            mask_l,
            mask_s << 1,
            mask_l << 1,
            &self.gear.gear[..],
            &self.gear.shifted[..],
        );
        let chunk = self.start..self.start + cut.clamp(1, held.len());
        self.start = chunk.end;
        Some(&self.buf[chunk])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_gear_are_as_format_md_says() {
        let chunker = Chunker::new(Gear::new(&SecretKey([7; 32])));
        assert_eq!(
            chunker.masks,
            (0x0000_d917_6753_7000, 0x0000_d917_0753_7000)
        );
        let mut xof = [0u8; 2048];
        blake3::Hasher::new_keyed(&[7; 32])
            .finalize_xof()
            .fill(&mut xof);
        let word = |i: usize| u64::from_le_bytes(xof[8 * i..8 * i + 8].try_into().unwrap());
        for i in [0, 1, 128, 255] {
            assert_eq!(chunker.gear.gear[i], word(i));
            assert_eq!(chunker.gear.shifted[i], word(i) << 1);
        }
    }

    #[test]
    fn chunks_are_within_bounds_and_cover_the_input_whatever_the_feeding() {
        let mut data = vec![0u8; 20 << 20];
        blake3::Hasher::new().finalize_xof().fill(&mut data);
        let cut = |piece: usize| {
            let mut chunker = Chunker::new(Gear::new(&SecretKey([1; 32])));
            let mut lengths = Vec::new();
            for part in data.chunks(piece) {
                let mut rest = part;
                while !rest.is_empty() {
                    let n = chunker.feed(rest);
                    rest = &rest[n..];
                    while let Some(c) = chunker.next_chunk(false) {
                        lengths.push(c.len());
                    }
                }
            }
            while let Some(c) = chunker.next_chunk(true) {
                lengths.push(c.len());
            }
            lengths
        };
        let lengths = cut(1 << 20);
        assert_eq!(lengths.iter().sum::<usize>(), data.len());
        let (last, whole) = lengths.split_last().unwrap();
        assert!(
            whole.iter().all(|&l| (MIN_CHUNK..=MAX_CHUNK).contains(&l)),
            "{lengths:?}"
        );
        assert!(*last <= MAX_CHUNK);
        assert!(lengths.len() > 8, "about 1 MiB on average: {lengths:?}");
        // Where the input is split when fed does not move a cut.
        assert_eq!(cut(4097), lengths);
    }
}
