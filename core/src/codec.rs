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
    if !worth_trying(bytes) {
        return None;
    }
    deflate_within(bytes, bytes.len().saturating_sub(2))
}

/// Whether `bytes` are short, or start with bytes that deflate well (see [`PROBE_ABOVE`]).
fn worth_trying(bytes: &[u8]) -> bool {
    if bytes.len() <= PROBE_ABOVE {
        return true;
    }
    let probe = &bytes[..PROBE_LEN];
    // Shorter than PROBE_KEEP_PERCENT of the probe, that is at most this long:
    deflate_within(probe, (probe.len() * PROBE_KEEP_PERCENT - 1) / 100).is_some()
}

/// `bytes` as a raw deflate stream, if that is at most `limit` bytes long (deflating stops as
/// soon as it is not).
fn deflate_within(bytes: &[u8], limit: usize) -> Option<Vec<u8>> {
    deflate_piece(bytes, limit, TDEFLFlush::Finish)
}

/// `bytes` deflated as blocks ending with `flush`: [`TDEFLFlush::Finish`] ends the stream,
/// [`TDEFLFlush::Sync`] ends its last block (not final) with an empty stored block, on a byte
/// boundary, so that another piece's blocks may follow. `None` past `limit` bytes.
fn deflate_piece(bytes: &[u8], limit: usize, flush: TDEFLFlush) -> Option<Vec<u8>> {
    let mut compressor = CompressorOxide::new(DEFLATE_FLAGS);
    let mut out = Vec::with_capacity(limit.min(bytes.len() / 2));
    let (status, taken) = compress_to_output(&mut compressor, bytes, flush, |block| {
        let fits = out.len() + block.len() <= limit;
        if fits {
            out.extend_from_slice(block);
        }
        fits
    });
    let done = match flush {
        TDEFLFlush::Finish => status == TDEFLStatus::Done,
        _ => status == TDEFLStatus::Okay && taken == bytes.len(),
    };
    // The guess above is half the input: a stream that came out shorter gives the rest back
    // (it may be held a while, beside the other pieces of a long input).
    out.shrink_to_fit();
    done.then_some(out)
}

/// Pieces of a long input deflated on threads of their own (see [`deflated_pieces`]).
const PIECE: usize = 1 << 20;

/// The stream of [`deflated_pieces`] in one buffer (the tests read it whole).
#[cfg(test)]
fn deflated_on(bytes: &[u8], threads: usize) -> Option<Vec<u8>> {
    let mut pieces = deflated_pieces(bytes, threads)?;
    if pieces.len() == 1 {
        return pieces.pop();
    }
    // Sized once, each piece freed as it is copied.
    let mut out = Vec::with_capacity(pieces.iter().map(Vec::len).sum());
    for piece in pieces {
        out.extend_from_slice(&piece);
    }
    Some(out)
}

/// `bytes` deflated as [`deflated`] does, as the pieces of one raw deflate stream in order: an
/// input of two pieces or more is cut in pieces of [`PIECE`] bytes, deflated on up to
/// `threads` threads, each but the last ending on a byte boundary with a sync flush, so the
/// pieces one after the other are one stream, as any inflater reads it (each piece starts with
/// no earlier bytes to match: a little longer than one stream). The same bytes whatever the
/// number of threads. A short input is one piece.
fn deflated_pieces(bytes: &[u8], threads: usize) -> Option<Vec<Vec<u8>>> {
    if bytes.len() < 2 * PIECE {
        return deflated(bytes).map(|stream| vec![stream]);
    }
    if !worth_trying(bytes) {
        return None;
    }
    let limit = bytes.len().saturating_sub(2);
    let pieces: Vec<(bool, &[u8])> = bytes
        .chunks(PIECE)
        .enumerate()
        .map(|(i, piece)| ((i + 1) * PIECE >= bytes.len(), piece))
        .collect();
    let streams = crate::parallel::map(&pieces, threads, |&(last, piece)| {
        let flush = match last {
            true => TDEFLFlush::Finish,
            false => TDEFLFlush::Sync,
        };
        deflate_piece(piece, limit, flush)
    });
    let streams: Vec<Vec<u8>> = streams.into_iter().collect::<Option<_>>()?;
    let len: usize = streams.iter().map(Vec::len).sum();
    (len <= limit).then_some(streams)
}

/// Deflates, in its place, the plaintext `buf[start + 1..]` that follows a codec byte
/// [`STORED`] at `buf[start]`, where that is worth storing ([`deflated_pieces`]): the deflated stream and
/// [`DEFLATE`] then take the place of the plaintext and its codec byte (shorter, so within the
/// buffer's capacity), each piece freed as it is copied. The plaintext and its deflated copy
/// are held together, no more.
pub(crate) fn deflate_in_place(buf: &mut Vec<u8>, start: usize) {
    debug_assert_eq!(buf[start], STORED);
    let Some(pieces) = deflated_pieces(&buf[start + 1..], crate::parallel::threads()) else {
        return;
    };
    buf.truncate(start);
    buf.push(DEFLATE);
    for piece in pieces {
        buf.extend_from_slice(&piece);
    }
}

/// The raw deflate stream `stream` inflated, if it inflates to at most `limit` bytes.
pub(crate) fn inflated(stream: &[u8], limit: usize) -> Option<Vec<u8>> {
    miniz_oxide::inflate::decompress_to_vec_with_limit(stream, limit).ok()
}

/// The raw deflate stream `stream` inflated, if it inflates to exactly `len` bytes: the bytes
/// are written into one buffer of that length, never grown (a chunk's length is known before
/// it is read, so an inflated chunk takes its length and no more while it waits to be written).
pub(crate) fn inflated_exactly(stream: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0; len];
    let written = miniz_oxide::inflate::decompress_slice_iter_to_slice(
        &mut out,
        std::iter::once(stream),
        false,
        true,
    );
    (written == Ok(len)).then_some(out)
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

    /// `bytes` after a codec byte, as a writer stores them (deflated in place where
    /// `compress` is set and that is shorter).
    fn encoded(bytes: &[u8], compress: bool) -> Vec<u8> {
        let mut buf = [&[STORED][..], bytes].concat();
        if compress {
            deflate_in_place(&mut buf, 0);
        }
        buf
    }

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
            let encoded = encoded(bytes, compress);
            assert!(encoded.len() <= bytes.len() + 1);
            let back = match decode(&encoded, bytes.len()).unwrap() {
                Decoded::Stored(at) => encoded[at..].to_vec(),
                Decoded::Inflated(inflated) => inflated,
            };
            assert_eq!(back, bytes);
        }
        assert_eq!(encoded(&text, false)[0], STORED);
        assert_eq!(encoded(&text, true)[0], DEFLATE);
        assert!(encoded(&text, true).len() < text.len() / 10);
    }

    #[test]
    fn a_chunk_inflates_only_to_exactly_its_length() {
        let text = b"the same words again and again, ".repeat(100);
        let stream = deflated(&text).unwrap();
        let back = inflated_exactly(&stream, text.len()).unwrap();
        assert_eq!(back, text);
        assert_eq!(back.capacity(), text.len());
        // A stream that gives more, or fewer, bytes than the length named is refused.
        assert_eq!(inflated_exactly(&stream, text.len() - 1), None);
        assert_eq!(inflated_exactly(&stream, text.len() + 1), None);
        // So is one cut short, or one that is not deflate at all.
        assert_eq!(
            inflated_exactly(&stream[..stream.len() - 1], text.len()),
            None
        );
        assert_eq!(inflated_exactly(&text, text.len()), None);
    }

    /// Lines of records, varied: bytes that deflate about as a segment's do.
    fn records(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 64);
        let mut n = 1u64;
        while out.len() < len {
            n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            out.extend_from_slice(
                format!("key/{:x} = value {} at {}\n", n >> 40, n % 977, n >> 50).as_bytes(),
            );
        }
        out.truncate(len);
        out
    }

    #[test]
    fn a_long_input_deflated_in_pieces_is_one_stream_about_as_short() {
        let text = records(3 * PIECE + 12_345);
        let whole = deflated(&text).unwrap();
        let pieces = deflated_on(&text, 1).unwrap();
        assert_eq!(inflated(&pieces, text.len()).unwrap(), text);
        assert!(
            pieces.len() <= whole.len() * 102 / 100,
            "{} bytes, one stream {}",
            pieces.len(),
            whole.len()
        );
        assert_ne!(pieces, whole, "four pieces, not one stream");
        for threads in [2, 3, 8] {
            let on = deflated_on(&text, threads);
            assert!(
                on.as_ref() == Some(&pieces),
                "{threads} threads wrote other bytes"
            );
        }
        // Bytes that do not deflate are left as they are, in pieces too; so is a short input.
        let mut noise = vec![0u8; 3 * PIECE];
        blake3::Hasher::new().finalize_xof().fill(&mut noise);
        assert_eq!(deflated_on(&noise, 4), None);
        assert_eq!(deflated_on(&text[..PIECE], 4), deflated(&text[..PIECE]));
        // Text, then noise: the probe passes, pieces of noise and text make one stream.
        let mixed = [&text[..2 * PIECE], &noise[..]].concat();
        let stream = deflated_on(&mixed, 2).unwrap();
        assert!(inflated(&stream, mixed.len()).unwrap() == mixed);
    }

    #[test]
    fn a_stream_longer_than_the_limit_an_unknown_codec_and_no_codec_are_errors() {
        let encoded = encoded(&[7; 10_000], true);
        assert_eq!(encoded[0], DEFLATE);
        assert!(decode(&encoded, 10_000).is_ok());
        assert!(decode(&encoded, 9_999).unwrap_err().contains("inflate"));
        assert!(decode(&[2, 1, 2], 10)
            .unwrap_err()
            .contains("unknown codec 2"));
        assert!(decode(&[], 10).unwrap_err().contains("no codec byte"));
        assert!(decode(&[DEFLATE, 0xff, 0xff], 10).is_err());
    }
}
