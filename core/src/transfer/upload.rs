//! Storing a file: chunk it, skip the chunks the vault already has, seal the others into packs,
//! PUT the packs, and end with the record value that points at every chunk.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::{FileKeys, Requests};
use crate::chunker::{Chunker, Gear, MAX_CHUNK};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::file::{Body, ChunkRef, FileValue, INLINE_MAX};
use crate::http::{Method, Request, RequestKind, Response};
use crate::ids::{DeviceId, RequestId, Timestamp};
use crate::pack::{packs_folder, ChunkId, IndexEntry, PackBuilder, PackName};
use crate::parallel;
use crate::retry::RetryPolicy;
use crate::s3;

/// Packs are closed once they hold this many bytes, unless told otherwise.
pub const DEFAULT_PACK_SIZE: usize = 16 << 20;
/// Packs at least this big (the pack size asked for) go up to an S3 store as multipart
/// uploads, in parts of [`PART_SIZE`] sent as the pack fills.
pub const MULTIPART_FROM: usize = 32 << 20;
/// The size of every part of a multipart pack but the last, which is no bigger (stores such as
/// R2 want the parts equal).
pub const PART_SIZE: usize = 8 << 20;
/// Bytes of packs or parts sealed and not yet stored: more input waits while there are this
/// many (one pack of the default size, two parts).
const MAX_WAITING_BYTES: usize = 16 << 20;
/// Chunks are placed into packs in batches of at least this many bytes (or at the end of the
/// input), so that deflating them spreads over the host's threads, while the next batch is
/// read and cut; with more than 2 threads, 1 MiB a thread. Two batches are held at most (the
/// one filling, and the one being deflated, its chunks' bytes twice): under 3 × (the batch
/// size + one chunk of [`MAX_CHUNK`]). (Batches of 4 MiB, placed as soon as full, held as
/// much; deflating one while the next fills, batches of 2 MiB are as fast as 4 on 2 cores,
/// and take 9 MiB off a first backup's peak RSS on the 15,644-file tree.)
const BATCH_BYTES: usize = 2 << 20;
/// A batch smaller than this is worked out on the caller's thread alone (starting threads
/// would cost more than they save).
const SPREAD_FROM: usize = 1 << 20;
/// How much of a pack's end is fetched to read its index (an index longer than this, of a
/// pack of thousands of chunks, is not read: its chunks are sent again).
const INDEX_TAIL: usize = 64 << 10;
/// A listing of our own packs longer than this many pages is not followed further.
const MAX_LIST_PAGES: usize = 1_000;

/// What a request of an upload is for.
enum Pending {
    /// Storing a pack.
    Pack(PackName),
    /// Starting the multipart upload of a pack.
    Create(PackName),
    /// A part of a pack (its number).
    Part(PackName, u32),
    /// Completing the multipart upload of a pack: it appears whole.
    Complete(PackName),
    /// A page of the listing of this device's packs.
    List,
    /// The end of a pack of ours that no file references, for its index.
    Tail(PackName),
    /// The multipart uploads of our packs in progress: a killed upload's, to abort.
    ListUploads,
    /// Aborting one of those.
    Abort,
    /// The last part of a pack an interrupted upload left in parts: its index.
    ResumeIndex(PackName),
    /// Completing such a pack.
    ResumeComplete(PackName),
}

/// What storing a file did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileReport {
    /// The file's length.
    pub size: u64,
    /// Its chunks (0 for a file small enough to live in its record).
    pub chunks: u64,
    /// Chunks sealed and sent.
    pub chunks_uploaded: u64,
    /// Chunks the vault (or this file) already held, sent no more.
    pub chunks_reused: u64,
    /// Packs written.
    pub packs: u64,
    /// Request body bytes sent (retries included).
    pub bytes_sent: u64,
    /// Requests made (retries included).
    pub requests: u64,
    /// Hex of the file's keyed content hash, as [`crate::file::FileInfo`] gives it (empty in
    /// the totals of a batch).
    pub content_hash: String,
}

/// A pack going up as a multipart upload.
struct Multipart {
    upload_id: Option<String>,
    /// Parts cut before the upload id was known: their numbers and bytes.
    waiting: Vec<(u32, Vec<u8>)>,
    /// The number the next part cut gets (parts count from 1).
    next_part: u32,
    /// The ETag of every part stored, by number.
    etags: BTreeMap<u32, String>,
    /// Every part is cut (the pack is closed).
    closed: bool,
    /// The index entries of the pack's chunks so far.
    entries: Vec<IndexEntry>,
    /// How many parts, from the first, the replica was last told are stored.
    noted: usize,
}

impl Multipart {
    fn new() -> Self {
        Multipart {
            upload_id: None,
            waiting: Vec::new(),
            next_part: 1,
            etags: BTreeMap::new(),
            closed: false,
            entries: Vec::new(),
            noted: 0,
        }
    }
}

/// The body of a CompleteMultipartUpload naming `parts` (number, ETag), in order.
fn complete_body<'a>(parts: impl Iterator<Item = (usize, &'a String)>) -> Vec<u8> {
    let mut body = String::from("<CompleteMultipartUpload>");
    for (number, etag) in parts {
        let etag = etag.replace('&', "&amp;").replace('<', "&lt;");
        body.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    body.into_bytes()
}

/// A pack of ours that went up in parts and was not completed: what the store holds of it, so
/// that a later upload (of a new process) completes it and references its chunks instead of
/// sending them again. Kept in the replica's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ResumablePack {
    /// The pack.
    pub name: PackName,
    /// Its multipart upload.
    pub upload_id: String,
    /// The ETags of its parts `1..=parts.len()`, all stored.
    pub parts: Vec<String>,
    /// The chunks that lie whole within those parts.
    pub entries: Vec<IndexEntry>,
    /// Those parts are all of the pack, its index included: only the completion is left.
    pub whole: bool,
}

/// What an upload tells the replica to keep, or forget, about its packs in parts.
#[derive(Debug)]
pub(crate) enum PackNote {
    /// More of this pack is stored.
    Stored(ResumablePack),
    /// The pack is whole in the store, or its upload is gone.
    Gone(PackName),
}

/// A chunk already stored somewhere in the vault.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stored {
    pub pack: PackName,
    pub offset: u64,
    pub sealed_len: u32,
    pub len: u32,
}

/// The file being fed: what is known of it until its input ends.
struct Feed {
    hasher: blake3::Hasher,
    size: u64,
    /// The packs its chunks lie in, in the order first met, and each one's place there.
    packs: Vec<PackName>,
    pack_numbers: HashMap<PackName, u32>,
    chunks: Vec<ChunkRef>,
    /// Its chunks cut and not placed yet (in the batch being deflated, then in the batch
    /// filling): they come after `chunks`.
    unplaced: usize,
    /// Those of them in the batch filling (the last ones).
    in_batch: usize,
    report: FileReport,
}

/// Chunks cut and not yet placed into packs, with the files they belong to. A batch is placed
/// whole: once full, the chunks the vault does not have are deflated on every thread lent
/// (`Upload::threads`) while the next batch is read and cut ([`Deflating`]); then they are
/// sealed into the packs one after the other in the order they were cut, so the packs come
/// out the same whatever the number of threads.
#[derive(Default)]
struct Batch {
    chunks: Vec<Vec<u8>>,
    /// Each chunk's id, worked out as it is cut.
    ids: Vec<ChunkId>,
    /// Whose each chunk is: the number of the file it was cut from.
    owners: Vec<u64>,
    bytes: usize,
    /// Files ended while chunks of theirs are in the batch (and none in a later one), with
    /// their numbers, in order: their values are made once the batch is placed.
    files: Vec<(u64, Feed)>,
}

/// What a deflating job works on: a chunk, and whether to deflate it (a chunk the vault has
/// is not deflated; one met twice in the batch may be).
type ToDeflate = (bool, Vec<u8>);

/// The work on one chunk: its deflated bytes, where that is shorter.
type DeflateWork = fn(&ToDeflate) -> Option<Vec<u8>>;

/// A full batch whose chunks are being deflated on other threads, its chunks held by the job.
struct Deflating {
    batch: Batch,
    job: parallel::Job<ToDeflate, Option<Vec<u8>>, DeflateWork>,
}

/// The deflating job's work on one chunk (see [`crate::pack::deflated`]).
fn deflate_chunk((wanted, chunk): &ToDeflate) -> Option<Vec<u8>> {
    wanted.then(|| crate::pack::deflated(chunk)).flatten()
}

/// A file whose input ended: its value waits until every pack holding its chunks is stored.
struct Ended {
    /// Its place among the files of the upload (counting from 0, abandoned ones included).
    number: u64,
    value: Vec<u8>,
    /// Packs of this upload its chunks lie in.
    packs: Vec<PackName>,
    report: FileReport,
}

/// Files being stored, into packs they share. Feed a file with [`Upload::write`] while
/// [`Upload::wants_input`], end it with [`Upload::end_file`] (or drop what it wrote with
/// [`Upload::abandon_file`]), go on with the next, and end the input with
/// [`Upload::end_input`]; run the requests like a sync's ([`Upload::poll_request`],
/// [`Upload::handle_response`], [`Upload::poll_timeout`]) and take each file's value, to
/// store under its key, from [`Upload::poll_file`] until [`Upload::poll_end`] says the upload
/// is over. A file's value is handed out only once every pack that holds any of its chunks
/// is in the store: nothing written from it names a chunk the bucket does not have.
///
/// One file alone: [`Upload::finish`] ends it and the input, and [`Upload::poll_outcome`]
/// gives its value once every request is answered.
pub struct Upload {
    keys: FileKeys,
    device: DeviceId,
    entropy: Entropy,
    chunker: Option<Chunker>,
    feed: Feed,
    batch: Batch,
    /// The batch before `batch`, being deflated.
    deflating: Option<Deflating>,
    /// How many threads a batch is worked out on.
    threads: usize,
    pack_size: usize,
    known: HashMap<ChunkId, Stored>,
    open: [Option<PackBuilder>; 2],
    /// Packs this upload opened that are not yet in the store: their chunks are no one
    /// else's to reference, and no file value naming them is handed out.
    unstored: HashSet<PackName>,
    /// Packs going up in parts, until completed.
    multipart: HashMap<PackName, Multipart>,
    /// What the replica is still to be told about packs in parts.
    notes: Vec<PackNote>,
    /// Packs an interrupted upload left in parts, being completed.
    resuming: HashMap<PackName, ResumablePack>,
    requests: Requests<Pending>,
    /// Looking for packs of ours that an interrupted upload left, before taking input.
    discovering: bool,
    list_pages: usize,
    /// Packs that live files reference (not fetched when found in the listing).
    referenced: HashSet<PackName>,
    /// Chunks of packs found in the listing.
    found: HashMap<ChunkId, Stored>,
    /// Files whose input ended (or were abandoned) so far.
    files: u64,
    /// Ended files waiting for packs of theirs to be stored.
    waiting: Vec<Ended>,
    /// Ended files whose packs are all stored, to hand out in this order.
    ready: VecDeque<Ended>,
    /// A pack was stored since `waiting` was last looked through.
    rescan: bool,
    input_done: bool,
    failure: Option<Error>,
    /// What the upload did, over all its files.
    report: FileReport,
    /// The outcome was handed out.
    ended: bool,
}

impl core::fmt::Debug for Upload {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Upload")
            .field("files", &self.files)
            .field("waiting", &(self.waiting.len() + self.ready.len()))
            .field("outstanding", &self.requests.outstanding())
            .finish_non_exhaustive()
    }
}

impl Upload {
    /// With `discover`, the upload first lists this device's packs and reads the index of each
    /// that no file in `referenced` points at, and completes the packs in parts that `resume`
    /// names, so that the chunks an interrupted upload stored are not sent again.
    #[allow(clippy::too_many_arguments)] // what the replica knows, and the settings
    pub(crate) fn new(
        keys: FileKeys,
        device: DeviceId,
        entropy: Entropy,
        known: HashMap<ChunkId, Stored>,
        discover: Option<HashSet<PackName>>,
        resume: Vec<ResumablePack>,
        pack_size: usize,
        retry: RetryPolicy,
    ) -> Upload {
        let gear = Gear::new(&keys.chunker);
        let feed = Feed::new(&keys);
        let discovering = discover.is_some();
        let mut upload = Upload {
            keys,
            device,
            entropy,
            chunker: Some(Chunker::new(gear)),
            feed,
            batch: Batch::default(),
            deflating: None,
            threads: parallel::threads(),
            pack_size: pack_size.clamp(1 << 20, 1 << 30),
            known,
            open: [None, None],
            unstored: HashSet::new(),
            multipart: HashMap::new(),
            notes: Vec::new(),
            resuming: HashMap::new(),
            requests: Requests::new(retry),
            discovering,
            list_pages: 0,
            referenced: discover.unwrap_or_default(),
            found: HashMap::new(),
            files: 0,
            waiting: Vec::new(),
            ready: VecDeque::new(),
            rescan: false,
            input_done: false,
            failure: None,
            report: FileReport::default(),
            ended: false,
        };
        if discovering {
            upload.queue_list(None);
            let s3 = matches!(upload.keys.store, crate::store::Store::S3(_));
            for pack in resume {
                match s3 && pack.name.device == device.0 {
                    true => upload.resume(pack),
                    false => upload.notes.push(PackNote::Gone(pack.name)),
                }
            }
            if s3 {
                // One writer per device (the state's lock): every upload of our packs in
                // progress now is one a killed process left. Only the first page is read.
                let url = upload.keys.store.uploads_url(&upload.own_packs_prefix());
                upload.requests.push(
                    RequestKind::PutPack,
                    Method::Get,
                    url,
                    Vec::new(),
                    Vec::new(),
                    Pending::ListUploads,
                );
            }
        }
        upload
    }

    fn own_packs_prefix(&self) -> String {
        format!("{}{}", self.keys.folder, packs_folder(self.device.0))
    }

    fn queue_list(&mut self, token: Option<&str>) {
        self.list_pages += 1;
        let url = self.keys.store.list_url(&self.own_packs_prefix(), token);
        self.requests.push(
            RequestKind::List,
            Method::Get,
            url,
            Vec::new(),
            Vec::new(),
            Pending::List,
        );
    }

    /// A listing page: fetch the end of every pack no file references; go on to the next page.
    fn on_list(&mut self, response: Result<Response>) -> Result<()> {
        let response = response?;
        if !response.is_success() {
            return Err(s3::error_from_response(&response, "LIST packs".into()));
        }
        let page = s3::parse_list(&response.body)?;
        let prefix = self.own_packs_prefix();
        for (key, _) in page.objects {
            let Some(hex) = key.strip_prefix(&prefix) else {
                continue;
            };
            let Some(name) = PackName::parse(self.device.0, hex) else {
                continue;
            };
            if !self.referenced.contains(&name) {
                let url = self.keys.url(&name.relative());
                let range = format!("bytes=-{INDEX_TAIL}");
                self.requests.push(
                    RequestKind::GetChunks,
                    Method::Get,
                    url,
                    vec![("range".into(), range)],
                    Vec::new(),
                    Pending::Tail(name),
                );
            }
        }
        if let Some(token) = page.next_token.filter(|_| self.list_pages < MAX_LIST_PAGES) {
            self.queue_list(Some(&token));
        }
        Ok(())
    }

    /// The multipart uploads of our packs in progress: each is aborted (its parts would
    /// otherwise be kept, and billed, by the store).
    fn on_uploads(&mut self, response: Result<Response>) {
        let Ok(response) = response else { return };
        if !response.is_success() {
            return;
        }
        let Ok(uploads) = s3::parse_uploads(&response.body) else {
            return;
        };
        let prefix = self.own_packs_prefix();
        for (key, id) in uploads {
            if !key.starts_with(&prefix) || self.resuming.values().any(|p| p.upload_id == id) {
                continue;
            }
            let url = format!(
                "{}?uploadId={}",
                self.keys.store.object_url(&key),
                crate::store::encode_query(&id)
            );
            self.requests.push(
                RequestKind::PutPack,
                Method::Delete,
                url,
                Vec::new(),
                Vec::new(),
                Pending::Abort,
            );
        }
    }

    /// Completes the pack in parts `pack` that an interrupted upload left: its last part is the
    /// index of the chunks that lie whole in the parts stored (the bytes of a chunk cut off by
    /// the last of them stay in the pack, named by no entry), unless every part is there.
    fn resume(&mut self, pack: ResumablePack) {
        let name = pack.name;
        if pack.entries.is_empty() || pack.parts.is_empty() {
            // Nothing worth keeping: the listing of uploads in progress aborts it.
            self.notes.push(PackNote::Gone(name));
            return;
        }
        let whole = pack.whole;
        let number = pack.parts.len() + 1;
        let upload_id = pack.upload_id.clone();
        let entries = pack.entries.clone();
        self.resuming.insert(name, pack);
        if whole {
            self.queue_resume_complete(name);
            return;
        }
        let Ok(end) = crate::pack::seal_index(
            &self.keys.chunk,
            self.keys.vault,
            &name,
            &entries,
            &mut self.entropy,
        ) else {
            self.resuming.remove(&name);
            self.notes.push(PackNote::Gone(name));
            return;
        };
        let url = self.keys.url(&name.relative());
        self.requests.push(
            RequestKind::PutPack,
            Method::Put,
            format!(
                "{url}?partNumber={number}&uploadId={}",
                crate::store::encode_query(&upload_id)
            ),
            Vec::new(),
            end,
            Pending::ResumeIndex(name),
        );
    }

    fn queue_resume_complete(&mut self, name: PackName) {
        let Some(pack) = self.resuming.get(&name) else {
            return;
        };
        let body = complete_body(pack.parts.iter().enumerate().map(|(i, e)| (i + 1, e)));
        let url = format!(
            "{}?uploadId={}",
            self.keys.url(&name.relative()),
            crate::store::encode_query(&pack.upload_id)
        );
        self.requests.push(
            RequestKind::PutPack,
            Method::Post,
            url,
            vec![("content-type".into(), "application/xml".into())],
            body,
            Pending::ResumeComplete(name),
        );
    }

    /// The answer to a request completing a pack an interrupted upload left in parts. Once it
    /// is whole, its chunks are found like those of the packs listed; if the store no longer
    /// has its upload (aborted, expired), they are sent again.
    fn on_resume(&mut self, pending: &Pending, attempt: u32, response: Result<Response>) {
        let (Pending::ResumeIndex(name) | Pending::ResumeComplete(name)) = *pending else {
            return;
        };
        let Ok(response) = response else {
            // The network: the replica keeps the pack's note for another try.
            self.resuming.remove(&name);
            return;
        };
        let complete = matches!(pending, Pending::ResumeComplete(_));
        let gone_already = complete
            && attempt > 1
            && response.status == 404
            && s3::error_code(&response.body).as_deref() == Some("NoSuchUpload");
        let failed =
            !response.is_success() || (complete && s3::error_code(&response.body).is_some());
        if failed && !gone_already {
            self.resuming.remove(&name);
            self.notes.push(PackNote::Gone(name));
            return;
        }
        if !complete {
            let etag = response.header("etag").unwrap_or_default().to_owned();
            if let Some(pack) = self.resuming.get_mut(&name) {
                pack.parts.push(etag);
            }
            self.queue_resume_complete(name);
            return;
        }
        if let Some(pack) = self.resuming.remove(&name) {
            for entry in pack.entries {
                self.found.entry(entry.id).or_insert(Stored {
                    pack: name,
                    offset: entry.offset,
                    sealed_len: entry.sealed_len,
                    len: entry.len,
                });
            }
        }
        self.notes.push(PackNote::Gone(name));
    }

    /// What the replica is to be told about packs in parts since the last call: keep each
    /// stored, forget each gone.
    pub(crate) fn take_notes(&mut self) -> Vec<PackNote> {
        std::mem::take(&mut self.notes)
    }

    /// Tells the replica (through [`Upload::take_notes`]) how much of the pack in parts `name`
    /// is stored, when more of it is: the parts stored from the first on without a gap, and
    /// the chunks that lie whole within them.
    fn note_parts(&mut self, name: PackName) {
        let Some(upload) = self.multipart.get_mut(&name) else {
            return;
        };
        let Some(upload_id) = upload.upload_id.clone() else {
            return;
        };
        let stored = (1..).take_while(|n| upload.etags.contains_key(n)).count();
        if stored <= upload.noted {
            return;
        }
        upload.noted = stored;
        let end = stored as u64 * PART_SIZE as u64;
        let whole = upload.closed && stored as u32 == upload.next_part - 1;
        let pack = ResumablePack {
            name,
            upload_id,
            parts: upload.etags.values().take(stored).cloned().collect(),
            entries: upload
                .entries
                .iter()
                .filter(|e| whole || e.offset + u64::from(e.sealed_len) <= end)
                .copied()
                .collect(),
            whole,
        };
        self.notes.push(PackNote::Stored(pack));
    }

    /// The end of a pack of ours: its index names chunks stored already.
    fn on_tail(&mut self, name: PackName, response: Result<Response>) -> Result<()> {
        let response = response?;
        if !response.is_success() {
            return Err(s3::error_from_response(&response, "GET pack index".into()));
        }
        let total = response
            .header("content-range")
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(response.body.len() as u64);
        // An index that does not open under our keys is of a pack sealed under another key
        // generation (or damaged): its chunks are sent again, the other packs still read.
        let Ok((version, entries)) = crate::pack::read_index(
            &self.keys.chunk,
            self.keys.vault,
            &name,
            total,
            &response.body,
        ) else {
            return Ok(());
        };
        // A file record of this build points only at chunks sealed as it seals them (one chunk
        // version a record): those of an older pack are sent again.
        if version != crate::crypto::PACK_VERSION {
            return Ok(());
        }
        for entry in entries {
            self.found.entry(entry.id).or_insert(Stored {
                pack: name,
                offset: entry.offset,
                sealed_len: entry.sealed_len,
                len: entry.len,
            });
        }
        Ok(())
    }

    /// The key generation this upload seals under.
    pub(crate) fn generation(&self) -> u32 {
        self.keys.generation
    }

    /// Chunks this upload found in packs no file referenced, and those it stored itself (in
    /// packs the store has whole): what the next upload of this process may reference without
    /// listing again.
    pub(crate) fn stored_chunks(&self) -> impl Iterator<Item = (&ChunkId, &Stored)> {
        self.known
            .iter()
            .filter(|(_, s)| !self.referenced.contains(&s.pack) && !self.unstored.contains(&s.pack))
    }

    /// Spreads the work on batches over `threads` threads (the host's cores by default).
    #[cfg(test)]
    pub(crate) fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// How many chunks of the file being fed are in the batch being deflated.
    #[cfg(test)]
    pub(crate) fn chunks_deflating(&self) -> usize {
        self.feed.unplaced - self.feed.in_batch
    }

    /// Whether to [`Upload::write`] more now: false while the listing of an interrupted
    /// upload's packs runs, while enough packs or parts (or chunks cut for them) wait to be
    /// stored (that bounds memory), or once the input is finished or the upload failed.
    pub fn wants_input(&self) -> bool {
        let waiting: usize = self.requests.body_bytes()
            + self
                .multipart
                .values()
                .flat_map(|m| &m.waiting)
                .map(|(_, part)| part.len())
                .sum::<usize>()
            + self.batch.bytes;
        // The batch being deflated counts while requests are outstanding (they end, and input
        // goes on); with none, it is made into packs only once the batch filling is full.
        let deflating = match self.requests.outstanding() {
            0 => 0,
            _ => self.deflating.as_ref().map_or(0, |d| d.batch.bytes),
        };
        !self.input_done
            && self.failure.is_none()
            && !self.discovering
            && waiting + deflating < MAX_WAITING_BYTES
    }

    /// The bytes of the file being fed so far, for progress.
    pub fn bytes_in(&self) -> u64 {
        self.feed.size
    }

    /// Takes the next bytes of the file being fed.
    ///
    /// # Errors
    /// `Config` after [`Upload::end_input`]; a sealing error (none expected).
    pub fn write(&mut self, mut data: &[u8]) -> Result<()> {
        if self.input_done {
            return Err(Error::Config(
                "the upload's input is already finished".into(),
            ));
        }
        self.feed.hasher.update(data);
        self.feed.size += data.len() as u64;
        while !data.is_empty() {
            let mut chunker = self.chunker.take().expect("the chunker is put back");
            let taken = chunker.feed(data);
            data = &data[taken..];
            let cut = self.cut(&mut chunker, false);
            self.chunker = Some(chunker);
            cut?;
        }
        Ok(())
    }

    /// Ends the file being fed: the rest of it is cut into chunks (which go into the open
    /// packs, shared with the files that follow), and its value waits for
    /// [`Upload::poll_file`]. The next [`Upload::write`] starts the next file. Returns the
    /// file's number (its place among the upload's files, from 0).
    ///
    /// # Errors
    /// `Config` after [`Upload::end_input`]; a sealing error (none expected).
    pub fn end_file(&mut self) -> Result<u64> {
        if self.input_done {
            return Err(Error::Config(
                "the upload's input is already finished".into(),
            ));
        }
        let mut chunker = self.chunker.take().expect("the chunker is put back");
        let inline = (self.feed.size <= INLINE_MAX).then(|| {
            // Nothing was cut yet (chunks are longer): the whole file is this one piece.
            chunker
                .next_chunk(true)
                .map(<[u8]>::to_vec)
                .unwrap_or_default()
        });
        let cut = match inline {
            Some(_) => Ok(()),
            None => self.cut(&mut chunker, true),
        };
        chunker.reset();
        self.chunker = Some(chunker);
        cut?;
        let feed = std::mem::replace(&mut self.feed, Feed::new(&self.keys));
        let number = self.files;
        self.files += 1;
        match (feed.in_batch, feed.unplaced, self.deflating.as_mut()) {
            (0, 0, _) => self.ended(number, feed, inline),
            (0, _, Some(deflating)) => deflating.batch.files.push((number, feed)),
            _ => self.batch.files.push((number, feed)),
        }
        Ok(number)
    }

    /// Makes the value of the file `number` whose chunks are all placed (or that is `inline`),
    /// to hand out once its packs are stored.
    fn ended(&mut self, number: u64, feed: Feed, inline: Option<Vec<u8>>) {
        let body = match inline {
            Some(bytes) => Body::Inline(bytes),
            None => Body::Chunks {
                packs: feed.packs.clone(),
                chunks: feed.chunks,
            },
        };
        let hash = *feed.hasher.finalize().as_bytes();
        let file = FileValue {
            size: feed.size,
            hash,
            body,
            chunk_version: crate::crypto::PACK_VERSION,
            generation: self.keys.generation,
        };
        let mut report = feed.report;
        report.size = feed.size;
        report.content_hash = hash.iter().map(|b| format!("{b:02x}")).collect();
        let ended = Ended {
            number,
            value: file.encode(),
            packs: feed.packs,
            report,
        };
        match ended.packs.iter().any(|p| self.unstored.contains(p)) {
            true => self.waiting.push(ended),
            false => self.ready.push_back(ended),
        }
    }

    /// Drops the file being fed (its source failed, say): no value is made of it. Chunks of it
    /// already sealed stay in their packs, which later files and uploads may reference. Returns
    /// the number it had.
    pub fn abandon_file(&mut self) -> u64 {
        if let Some(chunker) = self.chunker.as_mut() {
            chunker.reset();
        }
        // Its chunks in the batch filling are its last ones (those in the batch being deflated
        // are placed, and belong to no file).
        let keep = self.batch.chunks.len() - self.feed.in_batch;
        let dropped: usize = self.batch.chunks.drain(keep..).map(|c| c.len()).sum();
        self.batch.ids.truncate(keep);
        self.batch.owners.truncate(keep);
        self.batch.bytes -= dropped;
        self.feed = Feed::new(&self.keys);
        let number = self.files;
        self.files += 1;
        number
    }

    /// Ends the input: no file follows, and the open packs are sealed. A file being fed that
    /// was neither ended nor abandoned is dropped, as [`Upload::abandon_file`] does.
    ///
    /// # Errors
    /// A sealing error (none expected).
    pub fn end_input(&mut self) -> Result<()> {
        if self.input_done {
            return Ok(());
        }
        if self.feed.size > 0 {
            self.abandon_file();
        }
        self.input_done = true;
        self.deflate_batch()?;
        self.place_deflated()?;
        (0..2).try_for_each(|slot| self.close(slot))
    }

    /// Ends the input of an upload of one file: [`Upload::end_file`], then
    /// [`Upload::end_input`].
    ///
    /// # Errors
    /// As [`Upload::write`].
    pub fn finish(&mut self) -> Result<()> {
        if self.input_done {
            return Ok(());
        }
        self.end_file()?;
        self.end_input()
    }

    fn cut(&mut self, chunker: &mut Chunker, last: bool) -> Result<()> {
        while let Some(chunk) = chunker.next_chunk(last) {
            self.add_chunk(chunk)?;
        }
        Ok(())
    }

    /// Takes a chunk of the file being fed into the batch, which goes to be deflated once it
    /// is full.
    fn add_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        let batch = &mut self.batch;
        batch.ids.push(ChunkId::of(&self.keys.chunk_id, chunk));
        batch.chunks.push(chunk.to_vec());
        batch.owners.push(self.files);
        batch.bytes += chunk.len();
        self.feed.in_batch += 1;
        self.feed.unplaced += 1;
        let full = BATCH_BYTES.max(self.threads.saturating_mul(1 << 20));
        match self.batch.bytes >= full {
            true => self.deflate_batch(),
            false => Ok(()),
        }
    }

    /// Places the batch being deflated, if any (waiting for it), and starts deflating the
    /// batch filling on other threads: the next chunks are read and cut meanwhile.
    fn deflate_batch(&mut self) -> Result<()> {
        self.place_deflated()?;
        let mut batch = std::mem::take(&mut self.batch);
        self.feed.in_batch = 0;
        let compress = self.keys.compress;
        let chunks = std::mem::take(&mut batch.chunks);
        let work: Vec<ToDeflate> = chunks
            .into_iter()
            .zip(&batch.ids)
            .map(|(chunk, id)| (compress && !self.known.contains_key(id), chunk))
            .collect();
        // No thread is started for a small batch, or one with nothing to deflate.
        let threads = match batch.bytes >= SPREAD_FROM && work.iter().any(|(wanted, _)| *wanted) {
            true => self.threads,
            false => 1,
        };
        let job = parallel::Job::start(work, threads, deflate_chunk as DeflateWork);
        self.deflating = Some(Deflating { batch, job });
        Ok(())
    }

    /// Places the chunks of the batch being deflated into the packs, once deflated, and
    /// makes the values of the files whose chunks were all in it.
    fn place_deflated(&mut self) -> Result<()> {
        let Some(Deflating { batch, job }) = self.deflating.take() else {
            return Ok(());
        };
        let (chunks, deflated) = job.finish();
        let mut files = batch.files;
        let mut at = 0;
        let placed = chunks.iter().zip(batch.ids).zip(batch.owners).zip(deflated);
        for ((((_, chunk), id), owner), deflated) in placed {
            let (stored, reused) = self.place(id, chunk, deflated.as_deref())?;
            // Owners come in the order of `files`; a file not among them has chunks in the
            // batch filling too (then it ended first there, or is still being fed), or was
            // abandoned (its chunks stay in their packs, no one's).
            while files.get(at).is_some_and(|(number, _)| *number < owner) {
                at += 1;
            }
            let feed = match files.get_mut(at) {
                Some((number, feed)) if *number == owner => Some(feed),
                _ => match self.batch.files.first_mut() {
                    Some((number, feed)) if *number == owner => Some(feed),
                    _ => (owner == self.files).then_some(&mut self.feed),
                },
            };
            if let Some(feed) = feed {
                feed.add(id, stored, reused);
            }
        }
        for (number, feed) in files {
            self.ended(number, feed, None);
        }
        Ok(())
    }

    /// Where the chunk `id` is stored: where the vault has it already (then true), or sealed
    /// now at the end of one of the open packs (`deflated` as [`PackBuilder::push_deflated`]
    /// takes it).
    fn place(
        &mut self,
        id: ChunkId,
        chunk: &[u8],
        deflated: Option<&[u8]>,
    ) -> Result<(Stored, bool)> {
        self.report.chunks += 1;
        if let Some(stored) = self.known.get(&id) {
            self.report.chunks_reused += 1;
            return Ok((*stored, true));
        }
        let slot = usize::from(self.entropy.array::<1>()[0] & 1);
        let multipart = self.multipart();
        // Reserved as a mapping of its own (see crate::buffer): freed once the pack is stored.
        // Reusing the buffers of stored packs instead kept every open pack's buffer resident
        // whole, however little it held (a first backup of 15,644 files peaked 24 MiB higher).
        let capacity = self.pack_size + MAX_CHUNK + (64 << 10);
        let device = self.device;
        let entropy = &mut self.entropy;
        let unstored = &mut self.unstored;
        let builder = self.open[slot].get_or_insert_with(|| {
            let name = PackName::random(device, entropy);
            unstored.insert(name);
            PackBuilder::new(name, capacity)
        });
        let entry = builder.push_deflated(
            &self.keys.chunk,
            self.keys.vault,
            id,
            chunk,
            deflated,
            &mut self.entropy,
        )?;
        let stored = Stored {
            pack: builder.name,
            offset: entry.offset,
            sealed_len: entry.sealed_len,
            len: entry.len,
        };
        let full = builder.len() >= self.pack_size as u64;
        if multipart {
            // Kept apart from the builder: a replica told which parts are stored
            // learns which chunks they hold.
            self.multipart
                .entry(builder.name)
                .or_insert_with(Multipart::new)
                .entries
                .push(entry);
        }
        self.known.insert(id, stored);
        self.report.chunks_uploaded += 1;
        if full {
            self.close(slot)?;
        } else if multipart {
            // Parts go out as the pack fills: a big pack is never held whole.
            while let Some(part) = self.open[slot]
                .as_mut()
                .filter(|b| b.bytes.len() >= PART_SIZE)
                .map(|b| (b.name, b.take_front(PART_SIZE)))
            {
                self.send_part(part.0, part.1, false);
            }
        }
        Ok((stored, false))
    }

    /// Seals the pack in `slot`, if one is open, and queues its PUT.
    fn close(&mut self, slot: usize) -> Result<()> {
        let Some(builder) = self.open[slot].take() else {
            return Ok(());
        };
        let name = builder.name;
        // In parts if any went out already, or if more than one part is left.
        let multipart = self.multipart() && (builder.base > 0 || builder.bytes.len() > PART_SIZE);
        if !multipart {
            self.multipart.remove(&name);
        }
        let bytes = builder.finish(&self.keys.chunk, self.keys.vault, &mut self.entropy)?;
        self.report.packs += 1;
        if multipart {
            // What is left of the pack, its index included: every part but the last is
            // PART_SIZE, and the last no bigger.
            let mut rest = bytes;
            while rest.len() > PART_SIZE {
                let tail = rest.split_off(PART_SIZE);
                self.send_part(name, rest, false);
                rest = tail;
            }
            self.send_part(name, rest, true);
            return Ok(());
        }
        // A pack's name is new and random: create-only, so that nothing is ever overwritten.
        self.requests.push(
            RequestKind::PutPack,
            Method::Put,
            self.keys.url(&name.relative()),
            vec![("if-none-match".into(), "*".into())],
            bytes,
            Pending::Pack(name),
        );
        Ok(())
    }

    /// Whether this upload's packs go up in parts: big ones, to an S3 store (a folder takes
    /// whole objects).
    fn multipart(&self) -> bool {
        self.pack_size >= MULTIPART_FROM && matches!(self.keys.store, crate::store::Store::S3(_))
    }

    /// Queues the next part of the multipart pack `name` (starting its upload with the first
    /// part; holding parts until the upload id is known). `last`: the pack is closed.
    fn send_part(&mut self, name: PackName, part: Vec<u8>, last: bool) {
        let url = self.keys.url(&name.relative());
        let upload = self.multipart.entry(name).or_insert_with(Multipart::new);
        if upload.next_part == 1 && upload.upload_id.is_none() && upload.waiting.is_empty() {
            self.requests.push(
                RequestKind::PutPack,
                Method::Post,
                format!("{url}?uploads"),
                Vec::new(),
                Vec::new(),
                Pending::Create(name),
            );
        }
        let number = upload.next_part;
        upload.next_part += 1;
        upload.closed |= last;
        match upload.upload_id.clone() {
            Some(id) => self.push_part(name, &id, number, part),
            None => upload.waiting.push((number, part)),
        }
    }

    fn push_part(&mut self, name: PackName, upload_id: &str, number: u32, part: Vec<u8>) {
        let url = self.keys.url(&name.relative());
        self.requests.push(
            RequestKind::PutPack,
            Method::Put,
            format!(
                "{url}?partNumber={number}&uploadId={}",
                crate::store::encode_query(upload_id)
            ),
            Vec::new(),
            part,
            Pending::Part(name, number),
        );
    }

    /// Once every part of a closed multipart pack is stored: the request that makes the pack
    /// appear, whole.
    fn complete_if_done(&mut self, name: PackName) {
        let Some(upload) = self.multipart.get(&name) else {
            return;
        };
        let Some(id) = upload.upload_id.as_deref() else {
            return;
        };
        if !upload.closed || upload.etags.len() as u32 != upload.next_part - 1 {
            return;
        }
        let body = complete_body(upload.etags.iter().map(|(n, e)| (*n as usize, e)));
        let url = format!(
            "{}?uploadId={}",
            self.keys.url(&name.relative()),
            crate::store::encode_query(id)
        );
        self.requests.push(
            RequestKind::PutPack,
            Method::Post,
            url,
            vec![("content-type".into(), "application/xml".into())],
            body,
            Pending::Complete(name),
        );
    }

    /// The answer to a request of a multipart pack.
    fn on_multipart(
        &mut self,
        pending: Pending,
        attempt: u32,
        response: Result<Response>,
    ) -> Result<()> {
        let response = response?;
        // Completed again after an answer was lost: the first try completed it, and the
        // upload id is gone.
        if matches!(pending, Pending::Complete(_))
            && attempt > 1
            && response.status == 404
            && s3::error_code(&response.body).as_deref() == Some("NoSuchUpload")
        {
            if let Pending::Complete(name) = pending {
                self.multipart.remove(&name);
                self.unstored.remove(&name);
                self.rescan = true;
                self.notes.push(PackNote::Gone(name));
            }
            return Ok(());
        }
        let (name, what) = match &pending {
            Pending::Create(name) => (*name, "start"),
            Pending::Part(name, _) => (*name, "store a part of"),
            Pending::Complete(name) => (*name, "complete"),
            _ => unreachable!("only multipart requests come here"),
        };
        // CompleteMultipartUpload may answer 200 with an error document.
        let failed = !response.is_success()
            || (matches!(pending, Pending::Complete(_))
                && s3::error_code(&response.body).is_some());
        if failed {
            let mut response = response;
            if response.is_success() {
                response.status = 500;
            }
            return Err(s3::error_from_response(
                &response,
                format!(
                    "{what} the multipart upload of {} in {}",
                    name.relative(),
                    self.keys.store.display_name()
                ),
            ));
        }
        match pending {
            Pending::Create(name) => {
                let id = s3::parse_upload_id(&response.body)?;
                let upload = self.multipart.get_mut(&name).expect("created for a pack");
                upload.upload_id = Some(id.clone());
                for (number, part) in std::mem::take(&mut upload.waiting) {
                    self.push_part(name, &id, number, part);
                }
                self.complete_if_done(name);
            }
            Pending::Part(name, number) => {
                let etag = response.header("etag").unwrap_or_default().to_owned();
                if let Some(upload) = self.multipart.get_mut(&name) {
                    upload.etags.insert(number, etag);
                }
                self.note_parts(name);
                self.complete_if_done(name);
            }
            Pending::Complete(name) => {
                self.multipart.remove(&name);
                self.unstored.remove(&name);
                self.rescan = true;
                self.notes.push(PackNote::Gone(name));
            }
            _ => {}
        }
        Ok(())
    }

    /// The next request to send, if one is due.
    pub fn poll_request(&mut self, now: Timestamp) -> Option<Request> {
        if self.failure.is_some() {
            return None;
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
        let name = match op.pending {
            Pending::Pack(name) => name,
            pending @ (Pending::Create(_) | Pending::Part(..) | Pending::Complete(_)) => {
                if let Err(e) = self.on_multipart(pending, op.attempt, response) {
                    self.requests.clear();
                    self.failure.get_or_insert(e);
                }
                return;
            }
            Pending::List
            | Pending::Tail(_)
            | Pending::ListUploads
            | Pending::Abort
            | Pending::ResumeIndex(_)
            | Pending::ResumeComplete(_) => {
                let found = match op.pending {
                    Pending::ResumeIndex(_) | Pending::ResumeComplete(_) => {
                        self.on_resume(&op.pending, op.attempt, response);
                        Ok(())
                    }
                    Pending::Tail(name) => self.on_tail(name, response),
                    Pending::List => self.on_list(response),
                    Pending::ListUploads => {
                        // Best effort, apart from the rest (s3s-fs answers 501).
                        self.on_uploads(response);
                        Ok(())
                    }
                    _ => Ok(()),
                };
                if found.is_err() {
                    // Finding what an interrupted upload left only saves bytes: without it,
                    // those chunks are sent again.
                    let storing = |p: &Pending| !matches!(p, Pending::List | Pending::Tail(_));
                    self.requests.queue.retain(|op| storing(&op.pending));
                    self.requests.delayed.retain(|op| storing(&op.pending));
                }
                if self.requests.outstanding() == 0 {
                    self.discovering = false;
                    for (id, stored) in self.found.drain() {
                        self.known.entry(id).or_insert(stored);
                    }
                }
                return;
            }
        };
        let relative = name.relative();
        let _ = name;
        let outcome = match response {
            Ok(r) if r.is_success() || r.status == 412 => {
                // (A 412: an earlier try, or a copy of this one that the network delivered
                // twice, stored it; the name is random and only this upload writes it.)
                self.unstored.remove(&name);
                self.rescan = true;
                Ok(())
            }
            Ok(r) if r.status == 501 && op.headers.iter().any(|(n, _)| n == "if-none-match") => {
                // The store does not do conditional writes; the random name is enough.
                let mut op = op;
                op.headers.retain(|(n, _)| n != "if-none-match");
                self.requests.queue.push_back(op);
                return;
            }
            Ok(r) => Err(s3::error_from_response(
                &r,
                format!("PUT {relative} in {}", self.keys.store.display_name()),
            )),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            self.requests.clear();
            self.failure.get_or_insert(e);
        }
    }

    /// The next ended file whose packs are all in the store: its number (as
    /// [`Upload::end_file`] gave it), the record value to store under its key, and what storing
    /// it did (the counts of its own chunks; requests, bytes and packs are the upload's, in
    /// [`Upload::poll_end`]). Nothing once the upload failed.
    pub fn poll_file(&mut self) -> Option<(u64, Vec<u8>, FileReport)> {
        if self.failure.is_some() {
            return None;
        }
        if std::mem::take(&mut self.rescan) {
            let unstored = &self.unstored;
            let (ready, waiting): (Vec<Ended>, Vec<Ended>) = std::mem::take(&mut self.waiting)
                .into_iter()
                .partition(|f| f.packs.iter().all(|p| !unstored.contains(p)));
            self.waiting = waiting;
            self.ready.extend(ready);
        }
        let file = self.ready.pop_front()?;
        Some((file.number, file.value, file.report))
    }

    /// The end of the upload, once the input is ended, every request answered and every
    /// file's value handed out by [`Upload::poll_file`]: what the whole upload did. Or its
    /// failure, once nothing is in flight: the files not handed out by then are not stored.
    pub fn poll_end(&mut self) -> Option<Result<FileReport>> {
        if let Some(error) = &self.failure {
            return self
                .requests
                .inflight
                .is_empty()
                .then(|| Err(error.clone()));
        }
        if self.ended
            || !self.input_done
            || self.requests.outstanding() > 0
            || !self.waiting.is_empty()
            || !self.ready.is_empty()
        {
            return None;
        }
        self.ended = true;
        Some(Ok(self.totals()))
    }

    fn totals(&self) -> FileReport {
        let mut report = self.report.clone();
        report.requests = self.requests.sent;
        report.bytes_sent = self.requests.bytes_sent;
        report
    }

    /// The outcome of an upload of one file, once its input is finished and every request
    /// answered (or the upload failed and nothing is out): the record value to store under
    /// the file's key, and what was done.
    pub fn poll_outcome(&mut self) -> Option<Result<(Vec<u8>, FileReport)>> {
        if let Some(error) = &self.failure {
            return self
                .requests
                .inflight
                .is_empty()
                .then(|| Err(error.clone()));
        }
        if self.ended || !self.input_done || self.requests.outstanding() > 0 {
            return None;
        }
        self.ended = true;
        let first = match self.ready.pop_front() {
            Some(file) => Some(file),
            None => (!self.waiting.is_empty()).then(|| self.waiting.remove(0)),
        };
        let Some(file) = first else {
            return Some(Err(Error::Config("the upload holds no ended file".into())));
        };
        let mut report = self.totals();
        report.size = file.report.size;
        report.content_hash = file.report.content_hash;
        Some(Ok((file.value, report)))
    }
}

impl Feed {
    fn new(keys: &FileKeys) -> Feed {
        Feed {
            hasher: blake3::Hasher::new_keyed(&keys.file_hash.0),
            size: 0,
            packs: Vec::new(),
            pack_numbers: HashMap::new(),
            chunks: Vec::new(),
            unplaced: 0,
            in_batch: 0,
            report: FileReport::default(),
        }
    }

    /// Takes the next of its chunks placed: `id`, stored at `stored` (`reused` if the vault had
    /// it already).
    fn add(&mut self, id: ChunkId, stored: Stored, reused: bool) {
        self.unplaced -= 1;
        self.report.chunks += 1;
        match reused {
            true => self.report.chunks_reused += 1,
            false => self.report.chunks_uploaded += 1,
        }
        let pack = match self.pack_numbers.get(&stored.pack) {
            Some(n) => *n,
            None => {
                let n = u32::try_from(self.packs.len()).expect("fewer than 2^32 packs");
                self.packs.push(stored.pack);
                self.pack_numbers.insert(stored.pack, n);
                n
            }
        };
        self.chunks.push(ChunkRef {
            id,
            len: stored.len,
            pack,
            offset: stored.offset,
            sealed_len: stored.sealed_len,
        });
    }
}
