//! Compression before sealing: the codec byte that starts a compressed plaintext, and deflate.
//!
//! Chunks carry a codec byte from format version 10 ([`crate::pack`]), segments and
//! checkpoints from version 11 ([`crate::segment`], [`crate::checkpoint`]): `0`, the bytes as
//! they are, or `1`, raw deflate (RFC 1951, no zlib header). A writer deflates only where that
//! is shorter, so a compressed plaintext is never longer than the bytes and their codec byte.

use miniz_oxide::deflate::core::deflate_flags::TDEFL_GREEDY_PARSING_FLAG;
use miniz_oxide::deflate::core::{compress_to_output, CompressorOxide, TDEFLFlush, TDEFLStatus};

/// Codec byte: the bytes follow as they are.
pub(crate) const STORED: u8 = 0;
/// Codec byte: the bytes follow as a raw deflate stream (RFC 1951, no zlib header).
pub(crate) const DEFLATE: u8 = 1;
/// How hard deflate looks for matches: greedy parsing, 16 probes a position (miniz's level 3
/// is greedy with 32). Measured on the 11,503 distinct files (280 MB) of a real tree, one
/// core: 84.1 MB in 3.6 s, where level 3 took 83.4 MB in 4.4 s and level 2 (6 probes) 87.5 MB
/// in 3.4 s.
const DEFLATE_FLAGS: u32 = 16 | TDEFL_GREEDY_PARSING_FLAG;
/// Inputs longer than this are deflated only if their first [`PROBE_LEN`] bytes deflate to
/// less than [`PROBE_KEEP_PERCENT`] of their length: random data and media (compressed
/// already) then cost one short trial, not a whole deflate.
pub(crate) const PROBE_ABOVE: usize = 256 << 10;
pub(crate) const PROBE_LEN: usize = 64 << 10;
const PROBE_KEEP_PERCENT: usize = 97;

/// `bytes` deflated, when that is worth storing: only where the deflated bytes and their codec
/// byte are shorter than `bytes` themselves, and for a long input only when its start deflates
/// well (see [`PROBE_ABOVE`]).
pub(crate) fn deflated(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() > PROBE_ABOVE {
        let probe = &bytes[..PROBE_LEN];
        // Shorter than PROBE_KEEP_PERCENT of the probe, that is at most this long:
        deflate_within(probe, (probe.len() * PROBE_KEEP_PERCENT - 1) / 100)?;
    }
    deflate_within(bytes, bytes.len().saturating_sub(2))
}

/// `bytes` as a raw deflate stream, if that is at most `limit` bytes long (deflating stops as
/// soon as it is not).
fn deflate_within(bytes: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut compressor = CompressorOxide::new(DEFLATE_FLAGS);
    let mut out = Vec::with_capacity(limit.min(bytes.len() / 2));
    let (status, _) = compress_to_output(&mut compressor, bytes, TDEFLFlush::Finish, |block| {
        let fits = out.len() + block.len() <= limit;
        if fits {
            out.extend_from_slice(block);
        }
        fits
    });
    (status == TDEFLStatus::Done).then_some(out)
}

/// The raw deflate stream `stream` inflated, if it inflates to at most `limit` bytes.
pub(crate) fn inflated(stream: &[u8], limit: usize) -> Option<Vec<u8>> {
    miniz_oxide::inflate::decompress_to_vec_with_limit(stream, limit).ok()
}

/// The codec and bytes to store `bytes` with: deflated (codec [`DEFLATE`]) where `compress`
/// is set and that is shorter, else as they are (codec [`STORED`]).
pub(crate) fn choose(bytes: &[u8], compress: bool) -> (u8, std::borrow::Cow<'_, [u8]>) {
    match compress.then(|| deflated(bytes)).flatten() {
        Some(stream) => (DEFLATE, stream.into()),
        None => (STORED, bytes.into()),
    }
}

/// What [`decode`] found in a plaintext that starts with a codec byte.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// The bytes are stored as they are, from this offset of the plaintext on.
    Stored(usize),
    /// The bytes, inflated.
    Inflated(Vec<u8>),
}

/// Reads a plaintext that starts with a codec byte; a deflate stream that would inflate to
/// more than `limit` bytes is refused.
///
/// # Errors
/// A reason to report the object as corrupt: no codec byte, an unknown one, or a stream that
/// does not inflate within `limit`.
pub(crate) fn decode(plain: &[u8], limit: usize) -> Result<Decoded, String> {
    match plain.split_first() {
        Some((&STORED, _)) => Ok(Decoded::Stored(1)),
        Some((&DEFLATE, stream)) => inflated(stream, limit)
            .map(Decoded::Inflated)
            .ok_or_else(|| format!("does not inflate to at most {limit} bytes")),
        Some((codec, _)) => Err(format!("unknown codec {codec}")),
        None => Err("has no codec byte".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_encoded_decodes_to_the_same_bytes_and_is_never_longer_than_stored() {
        let text = b"the same words again and again, ".repeat(100);
        let random: Vec<u8> = (0..4000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for (bytes, compress) in [
            (&text[..], true),
            (&text[..], false),
            (&random[..], true),
            (&b""[..], true),
            (&b"x"[..], true),
        ] {
            let (codec, body) = choose(bytes, compress);
            let encoded = [&[codec][..], &body].concat();
            assert!(encoded.len() <= bytes.len() + 1);
            let back = match decode(&encoded, bytes.len()).unwrap() {
                Decoded::Stored(at) => encoded[at..].to_vec(),
                Decoded::Inflated(inflated) => inflated,
            };
            assert_eq!(back, bytes);
        }
        assert_eq!(choose(&text, false).0, STORED);
        assert_eq!(choose(&text, true).0, DEFLATE);
        assert!(choose(&text, true).1.len() < text.len() / 10);
    }

    #[test]
    fn a_stream_longer_than_the_limit_an_unknown_codec_and_no_codec_are_errors() {
        let (codec, stream) = choose(&[7; 10_000], true);
        assert_eq!(codec, DEFLATE);
        let encoded = [&[codec][..], &stream].concat();
        assert!(decode(&encoded, 10_000).is_ok());
        assert!(decode(&encoded, 9_999).unwrap_err().contains("inflate"));
        assert!(decode(&[2, 1, 2], 10)
            .unwrap_err()
            .contains("unknown codec 2"));
        assert!(decode(&[], 10).unwrap_err().contains("no codec byte"));
        assert!(decode(&[DEFLATE, 0xff, 0xff], 10).is_err());
    }
}
