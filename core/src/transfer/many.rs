//! Reading many files as one: their chunks planned together, so that files stored side by side
//! in a shared pack come down in a few ranged GETs rather than one (or more) each. Each file's
//! bytes are handed out whole, once checked against its content hash.

use super::{Download, FileKeys, Ranges};
use crate::error::{Error, Result};
use crate::file::{Body, ChunkRef, FileValue};
use crate::http::{Request, Response};
use crate::ids::{RequestId, Timestamp};
use crate::pack::PackName;
use crate::retry::RetryPolicy;

/// A file of several chunks up to this size has room reserved for all of its bytes when its
/// first chunk comes; a bigger one grows as its chunks come. (A restore and a folder sync read
/// files of up to 32 MiB together, bigger ones alone.)
const MAX_RESERVED: u64 = 64 << 20;

/// One file of a [`DownloadMany`].
struct Part {
    size: u64,
    hash: [u8; 32],
    object: String,
    /// Its chunks, in order: their places in the read of all the files' chunks.
    pieces: Vec<usize>,
}

/// Files of one key generation and chunk version, read through one [`Download`] of all their
/// chunks (files in the order their first chunks lie in the packs, so neighbours in a pack are
/// fetched together). Run its requests like a download's, and take each file from
/// [`DownloadMany::poll_file`] until [`DownloadMany::poll_outcome`] ends it.
pub struct DownloadMany {
    download: Download,
    parts: Vec<Part>,
    /// Where each part came from among the files given.
    order: Vec<usize>,
    hash_key: [u8; 32],
    /// The part being gathered, and its bytes so far.
    current: usize,
    gathered: Vec<u8>,
    /// How many of the current part's pieces are in `gathered`.
    gathered_pieces: usize,
    /// The next place the read hands out.
    next_piece: usize,
    /// Chunks named by more than one file (or twice by one): kept from when the read hands
    /// them out until their last file takes them, with how many takes are left.
    kept: std::collections::HashMap<usize, (Vec<u8>, usize)>,
    /// How often each place is named, for chunks named more than once.
    named: std::collections::HashMap<usize, usize>,
}

impl core::fmt::Debug for DownloadMany {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DownloadMany")
            .field("files", &self.parts.len())
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl DownloadMany {
    /// The files `files` (their values and the names they go by in errors, each a file of
    /// chunks, all of `keys`' generation and of one chunk version), read as one.
    pub(crate) fn new(
        keys: FileKeys,
        files: Vec<(FileValue, String)>,
        retry: RetryPolicy,
    ) -> Result<DownloadMany> {
        let first_place = |file: &FileValue| match &file.body {
            Body::Chunks { packs, chunks } => chunks.first().map(|c| {
                (
                    packs[c.pack as usize].pack,
                    packs[c.pack as usize].device,
                    c.offset,
                )
            }),
            Body::Inline(_) => None,
        };
        let mut order: Vec<usize> = (0..files.len()).collect();
        order.sort_by_key(|&i| first_place(&files[i].0));
        let chunk_version = files
            .first()
            .map_or(crate::crypto::PACK_VERSION, |f| f.0.chunk_version);
        let mut packs: Vec<PackName> = Vec::new();
        let mut chunks: Vec<ChunkRef> = Vec::new();
        // A chunk is read once, however many files name it: by pack and place.
        let mut places: std::collections::HashMap<(PackName, u64), usize> =
            std::collections::HashMap::new();
        let mut named: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
        let mut parts = Vec::with_capacity(files.len());
        let mut size = 0u64;
        for &i in &order {
            let (file, object) = &files[i];
            let Body::Chunks {
                packs: file_packs,
                chunks: file_chunks,
            } = &file.body
            else {
                return Err(Error::Config(format!("{object} lives in its record")));
            };
            if file.generation != keys.generation || file.chunk_version != chunk_version {
                return Err(Error::Config(format!(
                    "{object} is of another key generation or chunk version than the others"
                )));
            }
            let mut pieces = Vec::with_capacity(file_chunks.len());
            for chunk in file_chunks {
                let pack = file_packs[chunk.pack as usize];
                if let Some(&place) = places.get(&(pack, chunk.offset)) {
                    if chunks[place].len == chunk.len && chunks[place].id == chunk.id {
                        *named.entry(place).or_insert(1) += 1;
                        pieces.push(place);
                        continue;
                    }
                }
                let number = match packs.iter().position(|p| *p == pack) {
                    Some(n) => n,
                    None => {
                        packs.push(pack);
                        packs.len() - 1
                    }
                };
                places.insert((pack, chunk.offset), chunks.len());
                pieces.push(chunks.len());
                size += u64::from(chunk.len);
                chunks.push(ChunkRef {
                    pack: u32::try_from(number).expect("fewer than 2^32 packs"),
                    ..*chunk
                });
            }
            parts.push(Part {
                size: file.size,
                hash: file.hash,
                object: object.clone(),
                pieces,
            });
        }
        let hash_key = keys.file_hash.0;
        let generation = keys.generation;
        let whole = FileValue {
            size,
            hash: [0; 32],
            body: Body::Chunks { packs, chunks },
            chunk_version,
            generation,
        };
        // A range read checks every chunk against its id and not the whole (which is no
        // file's): each part is checked against its own hash here.
        let download = Download::new(
            keys,
            whole,
            "files".into(),
            retry,
            Some(0..size),
            Ranges::MANY_FILES,
        );
        Ok(DownloadMany {
            download,
            parts,
            order,
            hash_key,
            current: 0,
            gathered: Vec::new(),
            gathered_pieces: 0,
            next_piece: 0,
            kept: std::collections::HashMap::new(),
            named,
        })
    }

    /// How many bytes are read for all the files (a chunk several of them name counts once).
    pub fn size(&self) -> u64 {
        self.download.size()
    }

    /// The next request to send, if one is due.
    pub fn poll_request(&mut self, now: Timestamp) -> Option<Request> {
        self.download.poll_request(now)
    }

    /// When a retry waiting out its backoff is due.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.download.poll_timeout()
    }

    /// Feeds back the answer to request `id`.
    pub fn handle_response(&mut self, id: RequestId, response: Result<Response>, now: Timestamp) {
        self.download.handle_response(id, response, now);
    }

    /// The next file read whole: its place among the files given, and its bytes, or `Corrupt`
    /// when they do not match its content hash. Files come in the order their chunks lie in
    /// the packs, not the order given.
    pub fn poll_file(&mut self) -> Option<(usize, Result<Vec<u8>>)> {
        loop {
            let part = self.parts.get(self.current)?;
            let Some(&want) = part.pieces.get(self.gathered_pieces) else {
                let bytes = std::mem::take(&mut self.gathered);
                self.gathered_pieces = 0;
                let index = self.order[self.current];
                self.current += 1;
                let hash = blake3::keyed_hash(&self.hash_key, &bytes);
                let whole = *hash.as_bytes() == part.hash && bytes.len() as u64 == part.size;
                let outcome = match whole {
                    true => Ok(bytes),
                    false => Err(Error::corrupt(
                        &part.object,
                        "its content does not match its hash",
                    )),
                };
                return Some((index, outcome));
            };
            if want < self.next_piece {
                // Named before: kept from then.
                let Some((bytes, left)) = self.kept.get_mut(&want) else {
                    self.fail_kept(want);
                    continue;
                };
                self.gathered.extend_from_slice(bytes);
                *left -= 1;
                if *left == 0 {
                    self.kept.remove(&want);
                }
                self.gathered_pieces += 1;
                continue;
            }
            let piece = self.download.poll_output()?;
            let place = self.next_piece;
            self.next_piece += 1;
            if let Some(&times) = self.named.get(&place) {
                // This take is the first of `times`.
                self.kept.insert(place, (piece.clone(), times - 1));
            }
            if self.gathered.is_empty() {
                // A file's first chunk (a small file's only one) is its bytes so far, as it is;
                // a file of more chunks gets room for all of them at once (grown by doubling,
                // a file read whole could hold up to twice its size). Its record's chunk
                // lengths add up to its size (`FileValue::check`), so the room is exact.
                self.gathered = piece;
                if part.pieces.len() > 1 && part.size <= MAX_RESERVED {
                    let rest = (part.size as usize).saturating_sub(self.gathered.len());
                    self.gathered.reserve_exact(rest);
                }
            } else {
                self.gathered.extend_from_slice(&piece);
            }
            self.gathered_pieces += 1;
        }
    }

    /// A chunk named again was not kept (which the plan rules out): the file fails its hash.
    fn fail_kept(&mut self, _place: usize) {
        self.gathered.clear();
        self.gathered_pieces = usize::MAX;
    }

    /// The places (among the files given) of the files not handed out yet.
    pub fn left(&self) -> Vec<usize> {
        self.order[self.current.min(self.order.len())..].to_vec()
    }

    /// The outcome, once every file was handed out (or the read failed and nothing is out).
    ///
    /// # Errors
    /// As [`Download::poll_outcome`]: then the files not handed out were not read.
    pub fn poll_outcome(&mut self) -> Option<Result<()>> {
        if self.current < self.parts.len() && self.download.failed().is_none() {
            return None;
        }
        self.download.poll_outcome()
    }
}
