//! Reading many files as one: their chunks planned together, so that files stored side by side
//! in a shared pack come down in a few ranged GETs rather than one (or more) each. Each file's
//! bytes are handed out whole, once checked against its content hash.

use super::{Download, FileKeys};
use crate::error::{Error, Result};
use crate::file::{Body, ChunkRef, FileValue};
use crate::http::{Request, Response};
use crate::ids::{RequestId, Timestamp};
use crate::pack::PackName;
use crate::retry::RetryPolicy;

/// One file of a [`DownloadMany`].
struct Part {
    size: u64,
    hash: [u8; 32],
    object: String,
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
            for chunk in file_chunks {
                let pack = file_packs[chunk.pack as usize];
                let number = match packs.iter().position(|p| *p == pack) {
                    Some(n) => n,
                    None => {
                        packs.push(pack);
                        packs.len() - 1
                    }
                };
                chunks.push(ChunkRef {
                    pack: u32::try_from(number).expect("fewer than 2^32 packs"),
                    ..*chunk
                });
            }
            size += file.size;
            parts.push(Part {
                size: file.size,
                hash: file.hash,
                object: object.clone(),
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
        let download = Download::new(keys, whole, "files".into(), retry, Some(0..size));
        Ok(DownloadMany {
            download,
            parts,
            order,
            hash_key,
            current: 0,
            gathered: Vec::new(),
        })
    }

    /// How many bytes all the files hold.
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
            if self.gathered.len() as u64 >= part.size {
                let bytes = std::mem::take(&mut self.gathered);
                let index = self.order[self.current];
                self.current += 1;
                let hash = blake3::keyed_hash(&self.hash_key, &bytes);
                let outcome = match *hash.as_bytes() == part.hash && bytes.len() as u64 == part.size
                {
                    true => Ok(bytes),
                    false => Err(Error::corrupt(
                        &part.object,
                        "its content does not match its hash",
                    )),
                };
                return Some((index, outcome));
            }
            let piece = self.download.poll_output()?;
            self.gathered.extend_from_slice(&piece);
        }
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
