//! Reading a file: ranged GETs of its chunks (neighbours in one pack together), each chunk
//! opened and checked against its id, the bytes handed out in order and the whole checked
//! against the file's content hash. A pack that is gone may have been repacked: its redirect
//! says where its chunks went, and the read goes on there.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;

use super::{FileKeys, Requests};
use crate::error::{Error, Result};
use crate::file::{Body, ChunkRef, FileValue};
use crate::http::{Method, Request, RequestKind, Response};
use crate::ids::{RequestId, Timestamp};
use crate::pack::{self, PackName, Redirect};
use crate::retry::RetryPolicy;
use crate::s3;

/// How long a download's ranged GETs are, and how many bytes of them it holds at most (that
/// bounds its memory), unless the next bytes to hand on are in the range after them. A range
/// is held whole until its last chunk is handed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ranges {
    /// One GET covers neighbouring chunks of a pack up to this many bytes.
    pub max_range: u64,
    /// Bytes of ranges out, or fetched and not yet handed on whole, at most.
    pub max_held: u64,
}

impl Ranges {
    /// One file: a range is a whole pack of the default size, so a file costs about one GET
    /// per pack, and there is room for two packs of the usual size (a pack closes past 16 MiB,
    /// about 16.5 MiB with its index; one closed by a big last chunk is longer): one coming down
    /// while the one before is handed on. (32 MiB held one such pack only, so packs were
    /// fetched one at a time.)
    pub(crate) const ONE_FILE: Ranges = Ranges {
        max_range: 64 << 20,
        max_held: 40 << 20,
    };
    /// Many files read as one (a restore, a folder sync), where the files read and waiting to
    /// be written and the state's records are held too: a pack of the default size comes down
    /// in two GETs of at most 9 MiB, two of them held (and a shorter one). With
    /// [`Ranges::ONE_FILE`] a restore of 15,644 files peaked 11 MiB higher.
    pub(crate) const MANY_FILES: Ranges = Ranges {
        max_range: 9 << 20,
        max_held: 24 << 20,
    };
}

// Two whole ranges are held at once: one comes down while the one before is handed on.
const _: () = assert!(2 * Ranges::MANY_FILES.max_range <= Ranges::MANY_FILES.max_held);

/// A gap of at most this many bytes between two chunks wanted from one pack is fetched with
/// them, and thrown away, rather than costing a GET of its own: a request costs about as much
/// time as a megabyte coming down, and a pack's chunks no longer named (a file edited or
/// deleted since) would otherwise split one GET into many.
const MAX_GAP: u64 = 1 << 20;

/// A fetched chunk waiting to be handed out: the body it came in and where it lies there,
/// with the pack and the chunk it is when still sealed (it is opened, and inflated, only when
/// handed out, so what waits takes no more memory than the ranges fetched); not sealed for an
/// inline file's bytes.
struct Piece {
    body: Arc<Vec<u8>>,
    range: Range<usize>,
    sealed: Option<(PackName, ChunkRef)>,
}

/// Neighbouring chunks of one pack, fetched together, with their places in the file.
struct Span {
    pack: PackName,
    start: u64,
    end: u64,
    chunks: Vec<(usize, ChunkRef)>,
    /// How many redirects were followed to find these chunks here.
    hops: usize,
}

/// What a request of a download is for.
enum Wanted {
    /// The bytes of a span.
    Chunks(Span),
    /// The redirect of a span's pack, which was not found.
    Redirect(Span),
}

/// Groups `chunks` (with their places in the file, in file order) into spans of neighbours in
/// `pack`: a chunk that follows the latest span it could join in that pack, at most
/// [`MAX_GAP`] bytes after its end, joins it (the gap is fetched too), even when chunks of
/// another pack came between them in the file (an upload spreads chunks over two packs).
fn spans_of(
    chunks: impl IntoIterator<Item = (usize, PackName, ChunkRef)>,
    hops: usize,
    max_range: u64,
) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let mut open: HashMap<PackName, usize> = HashMap::new();
    for (position, pack, chunk) in chunks {
        let end = chunk.offset + u64::from(chunk.sealed_len);
        match open.get(&pack).map(|&i| &mut spans[i]) {
            Some(span)
                if chunk.offset >= span.end
                    && chunk.offset - span.end <= MAX_GAP
                    && end - span.start <= max_range =>
            {
                span.end = end;
                span.chunks.push((position, chunk));
            }
            _ => {
                open.insert(pack, spans.len());
                spans.push(Span {
                    pack,
                    start: chunk.offset,
                    end,
                    chunks: vec![(position, chunk)],
                    hops,
                });
            }
        }
    }
    spans
}

/// The spans of a read not yet asked for, and the bytes of those asked for and not yet handed
/// on: what decides which range to ask for next.
struct Plan {
    /// Spans not yet asked for, in the order of their first chunk in the file. The front one
    /// then always holds the earliest chunk not yet asked for, so when the held bytes are at
    /// their bound and the read waits for a chunk no GET has asked for, that chunk's span is
    /// the front one, and it is asked for (see [`Plan::next`]).
    spans: VecDeque<Span>,
    /// The last chunk and the length of each span asked for: a span is held until that chunk
    /// is handed on.
    held: Vec<(usize, u64)>,
}

impl Plan {
    /// `spans` in the order of their first chunk (as [`spans_of`] gives them).
    fn new(spans: Vec<Span>) -> Plan {
        Plan {
            spans: spans.into(),
            held: Vec::new(),
        }
    }

    /// Plans `spans` (of chunks whose pack moved) again, among the others in the order of
    /// first chunks: moved chunks may lie anywhere in their new pack, so the spans of a
    /// redirect can fall between spans planned before it.
    fn replan(&mut self, spans: Vec<Span>) {
        for span in spans {
            let first = span.chunks[0].0;
            let at = self.spans.partition_point(|s| s.chunks[0].0 < first);
            self.spans.insert(at, span);
        }
    }

    /// The next span to ask for, now held, when `next_out` is the next chunk to hand on: the
    /// front one if it fits within `max_held` bytes held, or holds the chunk `next_out` (which
    /// waits for nothing else, so it always goes).
    fn next(&mut self, next_out: usize, max_held: u64) -> Option<Span> {
        self.held.retain(|&(last, _)| last >= next_out);
        let span = self.spans.front()?;
        let held: u64 = self.held.iter().map(|(_, len)| len).sum();
        let len = span.end - span.start;
        if held + len > max_held && span.chunks[0].0 > next_out {
            return None;
        }
        let span = self.spans.pop_front().expect("there is a front");
        self.held
            .push((span.chunks.last().expect("spans are not empty").0, len));
        Some(span)
    }

    /// `span`, asked for, will be asked for again elsewhere: it holds no bytes until then.
    fn release(&mut self, span: &Span) {
        let len = span.end - span.start;
        let last = span.chunks.last().expect("spans are not empty").0;
        if let Some(at) = self.held.iter().position(|&h| h == (last, len)) {
            self.held.swap_remove(at);
        }
    }

    /// Drops the chunks before `next_out` (a resumed read has them), keeping the spans in the
    /// order of their first chunk still to fetch.
    fn skip_before(&mut self, next_out: usize) {
        let mut spans: Vec<Span> = self.spans.drain(..).collect();
        for span in &mut spans {
            span.chunks.retain(|&(position, _)| position >= next_out);
            if let Some((_, first)) = span.chunks.first() {
                span.start = first.offset;
            }
        }
        spans.retain(|span| !span.chunks.is_empty());
        // No two spans start at the same position.
        spans.sort_unstable_by_key(|span| span.chunks[0].0);
        self.spans = spans.into();
    }

    /// Nothing more is asked for (the read failed).
    fn clear(&mut self) {
        self.spans.clear();
    }
}

/// One file being read. Run its requests like a sync's; take the bytes, in order, with
/// [`Download::poll_output`]; [`Download::poll_outcome`] says whether all of it arrived and
/// matched the file's content hash.
pub struct Download {
    keys: FileKeys,
    file: FileValue,
    object: String,
    /// Spans not yet asked for, and the bytes held.
    plan: Plan,
    requests: Requests<Wanted>,
    /// The redirects read so far, by the pack they lead away from.
    redirects: HashMap<PackName, Arc<Redirect>>,
    /// Fetched chunks, by place in the file, until handed out in order: the body of their GET
    /// and where each lies in it, still sealed (see [`Piece`]).
    fetched: BTreeMap<usize, Piece>,
    /// How long its ranges are and how many bytes of them it holds.
    ranges: Ranges,
    next_out: usize,
    pieces: usize,
    hasher: blake3::Hasher,
    emitted: u64,
    /// A resumed read's check of the bytes it already has (see [`Download::verify_prefix`]).
    prefix: Option<Prefix>,
    /// Requests were asked for: too late to take a prefix.
    polled: bool,
    /// A read of part of the file: the bytes wanted, and where each chunk starts in the file.
    /// Only the chunks that overlap it are fetched, and no whole-file hash is checked (each
    /// chunk still is, against its id).
    window: Option<(Range<u64>, Vec<u64>)>,
    failure: Option<Error>,
    ended: bool,
}

/// The chunk of a partial file being checked: its id hash and the whole-file hash so far, both
/// taken over only once the chunk is whole and matches.
struct Prefix {
    chunk: blake3::Hasher,
    whole: blake3::Hasher,
    filled: u32,
    /// A chunk did not match (or the file is inline): no more bytes are taken.
    stopped: bool,
}

impl core::fmt::Debug for Download {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Download")
            .field("size", &self.file.size)
            .field("emitted", &self.emitted)
            .finish_non_exhaustive()
    }
}

impl Download {
    /// `object` names the file in errors (`file "<key>"`). With `range`, only those bytes of
    /// the file are read (clamped to its size).
    pub(crate) fn new(
        keys: FileKeys,
        file: FileValue,
        object: String,
        retry: RetryPolicy,
        range: Option<Range<u64>>,
        ranges: Ranges,
    ) -> Download {
        let mut spans: Vec<Span> = Vec::new();
        let mut inline = None;
        let window = range.map(|r| {
            let end = r.end.min(file.size);
            let starts = match &file.body {
                Body::Inline(_) => vec![0],
                Body::Chunks { chunks, .. } => chunks
                    .iter()
                    .scan(0u64, |at, c| {
                        let start = *at;
                        *at += u64::from(c.len);
                        Some(start)
                    })
                    .collect(),
            };
            (r.start.min(end)..end, starts)
        });
        // The chunks to read: all, or those that overlap the window.
        let wanted = |position: usize, len: u64| match &window {
            None => true,
            Some((r, starts)) => {
                let start = starts[position];
                start < r.end && start + len > r.start
            }
        };
        match &file.body {
            Body::Inline(bytes) => inline = Some(bytes.clone()),
            Body::Chunks { packs, chunks } => {
                spans = spans_of(
                    chunks
                        .iter()
                        .enumerate()
                        .filter(|(position, chunk)| wanted(*position, u64::from(chunk.len)))
                        .map(|(position, chunk)| (position, packs[chunk.pack as usize], *chunk)),
                    0,
                    ranges.max_range,
                );
            }
        }
        let hasher = blake3::Hasher::new_keyed(&keys.file_hash.0);
        // In file order, the chunks to hand out are positions `next_out..pieces`.
        let first = spans.iter().map(|s| s.chunks[0].0).min().unwrap_or(0);
        let past = spans
            .iter()
            .map(|s| s.chunks.last().expect("spans are not empty").0 + 1)
            .max()
            .unwrap_or(0);
        let mut download = Download {
            keys,
            file,
            object,
            pieces: past,
            plan: Plan::new(spans),
            requests: Requests::new(retry),
            redirects: HashMap::new(),
            fetched: BTreeMap::new(),
            ranges,
            next_out: 0,
            hasher,
            emitted: 0,
            prefix: None,
            polled: false,
            window,
            failure: None,
            ended: false,
        };
        download.next_out = first;
        if let Some(bytes) = inline {
            download.next_out = 0;
            download.pieces = 1;
            let len = bytes.len();
            download.fetched.insert(
                0,
                Piece {
                    body: Arc::new(bytes),
                    range: 0..len,
                    sealed: None,
                },
            );
        }
        download
    }

    /// The bytes this download hands out: the file's length, or that of the range asked for.
    pub fn size(&self) -> u64 {
        match &self.window {
            Some((r, _)) => r.end - r.start,
            None => self.file.size,
        }
    }

    /// Resuming a read: takes back the first bytes of the file that an earlier, interrupted
    /// read already handed out (a partial file), in order from the start, over one or more
    /// calls, before the first [`Download::poll_request`]. Each whole chunk among them is
    /// checked against its id; a read then fetches only what follows the last one that
    /// matched, [`Download::resume_offset`] bytes in. Returns how many of `bytes` it took:
    /// fewer than given once a chunk does not match (the rest must be fetched again).
    /// An inline file takes none.
    pub fn verify_prefix(&mut self, bytes: &[u8]) -> usize {
        let chunks = match &self.file.body {
            Body::Chunks { chunks, .. } if !self.polled && self.window.is_none() => chunks,
            _ => return 0,
        };
        let prefix = self.prefix.get_or_insert_with(|| Prefix {
            chunk: blake3::Hasher::new_keyed(&self.keys.chunk_id.0),
            whole: self.hasher.clone(),
            filled: 0,
            stopped: false,
        });
        let mut taken = 0;
        while taken < bytes.len() && !prefix.stopped && self.next_out < chunks.len() {
            let chunk = &chunks[self.next_out];
            let n = (chunk.len - prefix.filled).min((bytes.len() - taken) as u32);
            let piece = &bytes[taken..taken + n as usize];
            prefix.chunk.update(piece);
            prefix.whole.update(piece);
            prefix.filled += n;
            taken += n as usize;
            if prefix.filled == chunk.len {
                if prefix.chunk.finalize().as_bytes() == &chunk.id.0 {
                    self.hasher = prefix.whole.clone();
                    self.emitted += u64::from(chunk.len);
                    self.next_out += 1;
                    prefix.chunk = blake3::Hasher::new_keyed(&self.keys.chunk_id.0);
                    prefix.filled = 0;
                } else {
                    prefix.stopped = true;
                }
            }
        }
        taken
    }

    /// Drops from the plan the chunks a resumed read already has, keeping the spans in the
    /// order of their first chunk still to fetch.
    fn skip_verified(&mut self) {
        self.plan.skip_before(self.next_out);
    }

    /// A short name for this version of the file's content (16 hex digits of its keyed
    /// hash), for a partial file's name: a resumed read must continue the same content.
    pub fn resume_tag(&self) -> String {
        self.file.hash[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Where a resumed read goes on from: the bytes [`Download::verify_prefix`] found whole
    /// and matching (0 for a fresh read). A partial file is cut back to this length.
    pub fn resume_offset(&self) -> u64 {
        self.emitted
    }

    /// The next request to send, if one is due.
    pub fn poll_request(&mut self, now: Timestamp) -> Option<Request> {
        if self.failure.is_some() {
            return None;
        }
        self.polled = true;
        if self.prefix.take().is_some() {
            self.skip_verified();
        }
        while let Some(span) = self.plan.next(self.next_out, self.ranges.max_held) {
            let url = self.keys.url(&span.pack.relative());
            let range = format!("bytes={}-{}", span.start, span.end - 1);
            self.requests.push(
                RequestKind::GetChunks,
                Method::Get,
                url,
                vec![("range".into(), range)],
                Vec::new(),
                Wanted::Chunks(span),
            );
        }
        self.requests.poll(now)
    }

    /// When a retry waiting out its backoff is due.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.requests.poll_timeout()
    }

    /// Feeds back the answer to request `id`.
    pub fn handle_response(&mut self, id: RequestId, response: Result<Response>, now: Timestamp) {
        let Some((op, response)) = self.requests.answer(id, response, now) else {
            return;
        };
        let result = match op.pending {
            Wanted::Chunks(span) => match response {
                Ok(r) if r.status == 404 && span.hops < pack::MAX_REDIRECTS => {
                    self.follow(span);
                    Ok(())
                }
                // After a failure nothing more is handed out: what comes in is dropped.
                response if self.failure.is_some() => response.map(drop),
                response => response
                    .and_then(|r| self.split_span(&span, r))
                    .map(|pieces| self.fetched.extend(pieces)),
            },
            Wanted::Redirect(span) => response
                .and_then(|r| self.open_redirect(&span, r))
                .and_then(|redirect| self.redirect(span, redirect)),
        };
        if let Err(e) = result {
            self.requests.clear();
            self.plan.clear();
            self.failure.get_or_insert(e);
        }
    }

    /// The pack of `span` is gone: reads its redirect (once per pack), then the chunks where
    /// it says they went.
    fn follow(&mut self, span: Span) {
        self.plan.release(&span);
        if let Some(redirect) = self.redirects.get(&span.pack).cloned() {
            if let Err(e) = self.redirect(span, redirect) {
                self.requests.clear();
                self.plan.clear();
                self.failure.get_or_insert(e);
            }
            return;
        }
        let url = self.keys.url(&span.pack.redirect());
        self.requests.push(
            RequestKind::GetRedirect,
            Method::Get,
            url,
            Vec::new(),
            Vec::new(),
            Wanted::Redirect(span),
        );
    }

    /// The redirect of `span`'s pack from its GET. A redirect that is not there means the
    /// pack is gone for good: the error is the pack's.
    fn open_redirect(&self, span: &Span, response: Response) -> Result<Arc<Redirect>> {
        if !response.is_success() {
            let name = if response.status == 404 {
                span.pack.relative()
            } else {
                span.pack.redirect()
            };
            return Err(s3::error_from_response(
                &response,
                format!(
                    "GET {name} for {} in {}",
                    self.object,
                    self.keys.store.display_name()
                ),
            ));
        }
        let redirect =
            Redirect::open(&self.keys.chunk, self.keys.vault, &span.pack, response.body)?;
        Ok(Arc::new(redirect))
    }

    /// Plans `span`'s chunks again, where `redirect` says they went, among the spans not yet
    /// asked for (see [`Plan::replan`]).
    fn redirect(&mut self, span: Span, redirect: Arc<Redirect>) -> Result<()> {
        self.redirects.insert(span.pack, Arc::clone(&redirect));
        let to = PackName {
            device: span.pack.device,
            pack: redirect.to,
        };
        let mut moved = Vec::with_capacity(span.chunks.len());
        for (position, chunk) in &span.chunks {
            let Some(offset) = redirect.moved(chunk.offset) else {
                // The pack's GET answered 404, and its chunk was not moved: it is gone.
                return Err(Error::Http {
                    category: crate::error::Category::NotFound,
                    status: 404,
                    code: Some("NoSuchKey".into()),
                    context: format!(
                        "GET {} for {} in {} (repacked, without the chunk at {})",
                        span.pack.relative(),
                        self.object,
                        self.keys.store.display_name(),
                        chunk.offset
                    ),
                });
            };
            moved.push((*position, to, ChunkRef { offset, ..*chunk }));
        }
        self.plan
            .replan(spans_of(moved, span.hops + 1, self.ranges.max_range));
        Ok(())
    }

    /// The chunks of `span` in the body of its GET, still sealed, by place in the file.
    fn split_span(&self, span: &Span, response: Response) -> Result<Vec<(usize, Piece)>> {
        let name = span.pack.relative();
        if response.status == 416 {
            return Err(Error::corrupt(&name, "shorter than the file says"));
        }
        if !response.is_success() {
            return Err(s3::error_from_response(
                &response,
                format!(
                    "GET {name} for {} in {}",
                    self.object,
                    self.keys.store.display_name()
                ),
            ));
        }
        let want = (span.end - span.start) as usize;
        let mut body = response.body;
        if response.status != 206 {
            // A store that ignores Range sends the whole pack.
            let start = span.start as usize;
            if body.len() < start + want {
                return Err(Error::corrupt(&name, "shorter than the file says"));
            }
            body.truncate(start + want);
            body.drain(..start);
        }
        if body.len() != want {
            return Err(Error::corrupt(
                &name,
                "a chunk range came back with another length",
            ));
        }
        let body = Arc::new(body);
        Ok(span
            .chunks
            .iter()
            .map(|(position, chunk)| {
                let at = (chunk.offset - span.start) as usize;
                let piece = Piece {
                    body: Arc::clone(&body),
                    range: at..at + chunk.sealed_len as usize,
                    sealed: Some((span.pack, *chunk)),
                };
                (*position, piece)
            })
            .collect())
    }

    /// The bytes of `piece`: opened and checked against its chunk's id when sealed (inflated
    /// where its pack stored it deflated).
    fn open_piece(&self, piece: Piece) -> Result<Vec<u8>> {
        let mut bytes = piece.body[piece.range].to_vec();
        drop(piece.body);
        let Some((pack, chunk)) = piece.sealed else {
            return Ok(bytes);
        };
        let opened = pack::open_chunk(
            &self.keys.chunk,
            &self.keys.chunk_id,
            self.keys.vault,
            self.file.chunk_version,
            chunk.id,
            chunk.len,
            &mut bytes,
            &pack.relative(),
        )?;
        Ok(match opened {
            pack::Opened::InPlace(range) => {
                bytes.truncate(range.end);
                bytes.drain(..range.start);
                bytes
            }
            pack::Opened::Inflated(inflated) => inflated,
        })
    }

    /// Why the download failed, once it did.
    pub(crate) fn failed(&self) -> Option<&Error> {
        self.failure.as_ref()
    }

    /// The next bytes of the file, in order, once they have arrived and been checked.
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        let piece = self.fetched.remove(&self.next_out)?;
        let mut bytes = match self.open_piece(piece) {
            Ok(bytes) => bytes,
            Err(e) => {
                // Nothing more is handed out: the outcome is the error.
                self.fetched.clear();
                self.requests.clear();
                self.plan.clear();
                self.failure.get_or_insert(e);
                return None;
            }
        };
        if let Some((window, starts)) = &self.window {
            // Only the part of the chunk inside the window.
            let start = starts[self.next_out];
            let len = bytes.len() as u64;
            let from = window.start.saturating_sub(start).min(len) as usize;
            let to = (window.end.saturating_sub(start)).min(len) as usize;
            bytes.truncate(to.max(from));
            bytes.drain(..from);
        }
        self.next_out += 1;
        self.hasher.update(&bytes);
        self.emitted += bytes.len() as u64;
        Some(bytes)
    }

    /// The outcome, once every byte was handed out (or the download failed and nothing is
    /// out).
    ///
    /// # Errors
    /// The request error that stopped it; `Corrupt` for a chunk that failed its checks, or
    /// content that does not match the file's hash.
    pub fn poll_outcome(&mut self) -> Option<Result<()>> {
        if self.ended {
            return None;
        }
        if let Some(error) = &self.failure {
            if !self.requests.inflight.is_empty() {
                return None;
            }
            self.ended = true;
            return Some(Err(error.clone()));
        }
        if self.next_out < self.pieces {
            return None;
        }
        self.ended = true;
        if self.window.is_some() {
            // Each chunk was checked against its id; the whole is not read.
            return Some(if self.emitted == self.size() {
                Ok(())
            } else {
                Err(Error::corrupt(
                    &self.object,
                    "the chunks do not cover the range",
                ))
            });
        }
        let hash = *self.hasher.finalize().as_bytes();
        Some(
            if hash == self.file.hash && self.emitted == self.file.size {
                Ok(())
            } else {
                Err(Error::corrupt(
                    &self.object,
                    "content does not match the file's hash",
                ))
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::ChunkId;

    fn chunk(offset: u64, sealed_len: u32) -> ChunkRef {
        ChunkRef {
            id: ChunkId([0; 32]),
            len: sealed_len,
            pack: 0,
            offset,
            sealed_len,
        }
    }

    #[test]
    fn chunks_of_a_pack_join_across_small_gaps_only() {
        let a = PackName {
            device: [1; 16],
            pack: [2; 16],
        };
        let b = PackName {
            device: [1; 16],
            pack: [3; 16],
        };
        let chunks = [
            (0, a, chunk(0, 100)),
            // Right after: joins.
            (1, a, chunk(100, 100)),
            // Another pack between them in the file.
            (2, b, chunk(0, 50)),
            // A gap of MAX_GAP: joins, the gap fetched too.
            (3, a, chunk(200 + MAX_GAP, 100)),
            // A gap of one byte more: a span of its own.
            (4, a, chunk(300 + 2 * MAX_GAP + 1, 100)),
            // Behind the span's end: a span of its own.
            (5, a, chunk(0, 100)),
        ];
        let spans = spans_of(chunks, 0, Ranges::ONE_FILE.max_range);
        let got: Vec<(PackName, u64, u64, Vec<usize>)> = spans
            .iter()
            .map(|s| {
                let places = s.chunks.iter().map(|(p, _)| *p).collect();
                (s.pack, s.start, s.end, places)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (a, 0, 300 + MAX_GAP, vec![0, 1, 3]),
                (b, 0, 50, vec![2]),
                (a, 300 + 2 * MAX_GAP + 1, 400 + 2 * MAX_GAP + 1, vec![4]),
                (a, 0, 100, vec![5]),
            ]
        );
    }

    /// The held bound must never keep the next chunk to hand on from being asked for. A pack
    /// that moved is read again through its redirect, and where its chunks now lie is up to
    /// the repack: the spans they make are planned among the others by their first chunk. Put
    /// in front instead, a span of chunks later in the file, too long to fit beside what is
    /// held, would keep the span of the next chunk behind it, while what is held waits for
    /// that chunk: the read would stall.
    #[test]
    fn spans_of_a_redirect_never_keep_the_next_chunk_waiting() {
        let pack = |n| PackName {
            device: [1; 16],
            pack: [n; 16],
        };
        let (a, b, moved) = (pack(2), pack(3), pack(4));
        // Chunks of 10 bytes: 0-3 in pack a, in two spans, and 4-8 in one span of pack b.
        let max_range = 50;
        let max_held = 70;
        let span_of = |pack, places: std::ops::Range<usize>| {
            let first = places.start;
            let chunks = places.map(|p| (p, pack, chunk(10 * (p - first) as u64, 10)));
            let mut spans = spans_of(chunks, 0, max_range);
            assert_eq!(spans.len(), 1);
            spans.pop().unwrap()
        };
        let mut plan = Plan::new(vec![span_of(a, 0..2), span_of(a, 2..4), span_of(b, 4..9)]);
        let places = |span: &Span| span.chunks.iter().map(|(p, _)| *p).collect::<Vec<_>>();
        let ask = |plan: &mut Plan, next_out| {
            std::iter::from_fn(|| plan.next(next_out, max_held)).collect::<Vec<Span>>()
        };
        // a's two spans go (40 bytes); b's (50) does not fit beside them.
        let asked = ask(&mut plan, 0);
        assert_eq!(
            asked.iter().map(places).collect::<Vec<_>>(),
            [vec![0, 1], vec![2, 3]]
        );
        let (a1, a2) = (&asked[0], &asked[1]);
        // a is gone: its first span's GET answers 404, and b's span goes in its room.
        plan.release(a1);
        let asked = ask(&mut plan, 0);
        assert_eq!(
            asked.iter().map(places).collect::<Vec<_>>(),
            [vec![4, 5, 6, 7, 8]]
        );
        // The redirect: chunk 0 moved to 100, chunk 1 to 0, chunks 2 and 3 to 200 and 230.
        let moves = |span: &Span| {
            span.chunks
                .iter()
                .map(|&(p, c)| {
                    let to = [100, 0, 200, 230][p];
                    (p, moved, ChunkRef { offset: to, ..c })
                })
                .collect::<Vec<_>>()
        };
        plan.replan(spans_of(moves(a1), 1, max_range));
        // Chunk 0's span goes (it holds the next chunk); chunk 1's does not fit.
        let asked = ask(&mut plan, 0);
        assert_eq!(asked.iter().map(places).collect::<Vec<_>>(), [vec![0]]);
        // a's second span answers 404 too: its chunks, moved, make one span of 40 bytes.
        plan.release(a2);
        plan.replan(spans_of(moves(a2), 1, max_range));
        let mut asked: Vec<usize> = ask(&mut plan, 0).iter().flat_map(places).collect();
        // Chunk 0 is handed on: what is held then (b's span) waits for chunk 1, so chunk 1
        // must be asked for, now or already.
        asked.extend(ask(&mut plan, 1).iter().flat_map(places));
        assert!(
            asked.contains(&1),
            "chunk 1 is never asked for (asked: {asked:?})"
        );
        // Once it is handed on, the rest goes.
        asked.extend(ask(&mut plan, 2).iter().flat_map(places));
        asked.sort_unstable();
        assert_eq!(asked, [1, 2, 3]);
        assert!(plan.spans.is_empty());
    }

    #[test]
    fn a_pack_of_the_default_size_comes_down_in_one_range_for_one_file_and_two_for_many() {
        let a = PackName {
            device: [1; 16],
            pack: [2; 16],
        };
        // A full pack: 1 MiB chunks back to back, past 16 MiB.
        let mib = 1u64 << 20;
        let chunks = || (0..17).map(|i| (i as usize, a, chunk(i * mib, mib as u32)));
        let ranges = |max_range| -> Vec<(u64, u64, usize)> {
            spans_of(chunks(), 0, max_range)
                .iter()
                .map(|s| (s.start, s.end, s.chunks.len()))
                .collect()
        };
        assert_eq!(ranges(Ranges::ONE_FILE.max_range), vec![(0, 17 * mib, 17)]);
        assert_eq!(
            ranges(Ranges::MANY_FILES.max_range),
            vec![(0, 9 * mib, 9), (9 * mib, 17 * mib, 8)]
        );
    }
}
