//! Files made up as they are read, for tests and benchmarks of file storage: any length, no
//! copy held in memory, the same bytes for the same seed, and a sink that checks a read-back
//! against them.

use bucketsync::files::{Sink, Source};
use bucketsync::Result;

/// `len` pseudo-random bytes for `seed` (SplitMix64 words, fast enough not to weigh on what is
/// measured), with an optional one-byte edit.
#[derive(Clone, Debug)]
pub struct Generated {
    state: u64,
    /// Bytes of the current word not yet handed out.
    word: [u8; 8],
    word_left: usize,
    left: u64,
    at: u64,
    edit: Option<(u64, u8)>,
}

impl Generated {
    /// The file for `seed`, `len` bytes long.
    pub fn new(seed: u64, len: u64) -> Self {
        Generated {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x1234_5678,
            word: [0; 8],
            word_left: 0,
            left: len,
            at: 0,
            edit: None,
        }
    }

    /// All its bytes, held in memory (for a test that writes them to a file).
    pub fn to_vec(mut self) -> Vec<u8> {
        let mut bytes = vec![0; usize::try_from(self.left).expect("fits in memory")];
        let mut at = 0;
        while at < bytes.len() {
            at += self.fill(&mut bytes[at..]);
        }
        bytes
    }

    /// The same file with the byte at `offset` replaced by `byte`.
    pub fn edited(mut self, offset: u64, byte: u8) -> Self {
        self.edit = Some((offset, byte));
        self
    }

    fn next_word(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fills the start of `buf` with the next bytes; returns how many (0 at the end).
    pub fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let out = &mut buf[..n];
        let mut i = 0;
        while i < n && self.word_left > 0 {
            out[i] = self.word[8 - self.word_left];
            self.word_left -= 1;
            i += 1;
        }
        let mut words = out[i..].chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.next_word().to_le_bytes());
        }
        let rest = words.into_remainder();
        if !rest.is_empty() {
            self.word = self.next_word().to_le_bytes();
            let k = rest.len();
            rest.copy_from_slice(&self.word[..k]);
            self.word_left = 8 - k;
        }
        if let Some((offset, byte)) = self.edit {
            if (self.at..self.at + n as u64).contains(&offset) {
                out[(offset - self.at) as usize] = byte;
            }
        }
        self.left -= n as u64;
        self.at += n as u64;
        n
    }

    /// Bytes not yet handed out.
    pub fn left(&self) -> u64 {
        self.left
    }
}

impl Source for Generated {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        Ok(self.fill(buf))
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.left)
    }
}

/// A sink that compares what it gets with a [`Generated`] file.
#[derive(Debug)]
pub struct Compare {
    expected: Generated,
    got: u64,
    mismatch: Option<u64>,
}

impl Compare {
    /// Expects the bytes of `expected`.
    pub fn new(expected: Generated) -> Self {
        Compare {
            expected,
            got: 0,
            mismatch: None,
        }
    }

    /// Panics unless exactly the expected `len` bytes arrived.
    pub fn assert_whole(&self, len: u64) {
        assert_eq!(
            self.mismatch, None,
            "the bytes read differ from those stored"
        );
        assert_eq!(self.got, len);
        assert_eq!(self.expected.left(), 0);
    }
}

impl Sink for Compare {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        let mut want = vec![0u8; data.len()];
        assert_eq!(
            self.expected.fill(&mut want),
            data.len(),
            "more bytes than stored"
        );
        if want != data && self.mismatch.is_none() {
            let first = want.iter().zip(data).position(|(a, b)| a != b).unwrap_or(0);
            self.mismatch = Some(self.got + first as u64);
        }
        self.got += data.len() as u64;
        Ok(())
    }
}
