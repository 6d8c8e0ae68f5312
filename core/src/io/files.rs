//! Storing and reading files through a [`Session`]: the upload and download state machines
//! ([`crate::transfer`]) run over a [`Transport`], fed from a [`Source`] and emptied into a
//! [`Sink`], with bounded memory whatever the file's size.
//!
//! A file is stored in packs first and its record is written last, so a file that fails or is
//! cancelled half-way is not in the vault at all (its packs stay behind, unreferenced). A
//! read hands out bytes only after they were checked against their chunk ids; the content
//! hash of the whole is checked at the end, and a mismatch fails the read.

use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::error::{Category, Error, Result};
use crate::http::{Request, Response};
use crate::ids::{RequestId, Timestamp};
use crate::io::driver::Transport;
use crate::io::session::Session;
use crate::transfer::FileReport;

#[cfg(all(feature = "backup", not(target_arch = "wasm32")))]
use super::file_writers::{Durability, FileWriters, Stamp};
#[cfg(not(target_arch = "wasm32"))]
pub use super::partial_file::PartialFile;
#[cfg(not(target_arch = "wasm32"))]
use super::partial_file::PathPartial;
pub use super::streams::{partial_name, PartialTarget, ReadSource, Sink, Source, WriteSink};

/// How many bytes a source is asked for at a time.
pub(crate) const READ_SIZE: usize = 1 << 20;

/// How far a file transfer has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileProgress {
    /// File bytes read from the source (storing) or handed to the sink (reading).
    pub bytes_done: u64,
    /// The file's length, when known.
    pub bytes_total: Option<u64>,
    /// Requests answered.
    pub requests_done: u64,
    /// Requests sent.
    pub requests_total: u64,
}

/// The two transfer machines, as the loop below drives them.
trait Machine {
    fn poll_request(&mut self, now: Timestamp) -> Option<Request>;
    fn handle_response(&mut self, id: RequestId, response: Result<Response>, now: Timestamp);
    fn poll_timeout(&self) -> Option<Timestamp>;
}

impl Machine for crate::transfer::Upload {
    fn poll_request(&mut self, now: Timestamp) -> Option<Request> {
        self.poll_request(now)
    }
    fn handle_response(&mut self, id: RequestId, response: Result<Response>, now: Timestamp) {
        self.handle_response(id, response, now);
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        self.poll_timeout()
    }
}

impl Machine for crate::transfer::Download {
    fn poll_request(&mut self, now: Timestamp) -> Option<Request> {
        self.poll_request(now)
    }
    fn handle_response(&mut self, id: RequestId, response: Result<Response>, now: Timestamp) {
        self.handle_response(id, response, now);
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        self.poll_timeout()
    }
}

/// Requests of one transfer in flight. The answers' future type is the transport's own (no
/// boxing), so a transfer's future is `Send` whenever the transport's are.
struct Flight<'t, T: ?Sized, F> {
    transport: &'t T,
    send: fn(&'t T, Request) -> F,
    in_flight: FuturesUnordered<F>,
    progress: FileProgress,
}

impl<'t, T: Transport + ?Sized> Flight<'t, T, ()> {
    fn new(
        transport: &'t T,
        progress: FileProgress,
    ) -> Flight<'t, T, impl Future<Output = (RequestId, Result<Response>)> + 't> {
        Flight {
            transport,
            send: answer::<T>,
            in_flight: FuturesUnordered::new(),
            progress,
        }
    }
}

/// An answer to a request, with the request's id.
type Answered = (RequestId, Result<Response>);

/// Sends `request`; its answer, with its id.
fn answer<T: Transport + ?Sized>(
    transport: &T,
    request: Request,
) -> impl Future<Output = (RequestId, Result<Response>)> + '_ {
    let id = request.id;
    async move { (id, transport.send(request).await) }
}

/// Files for [`Session::put_files`], asked for one at a time as the upload takes input.
pub trait FileBatch {
    /// Where a file's bytes come from.
    type Source: Source;

    /// The next file to store: its key and its source; `None` when no file is left. A file
    /// whose source cannot be had (it cannot be opened, say) is the batch's to report and skip.
    fn next_file(&mut self) -> Option<(Vec<u8>, Self::Source)>;

    /// File `key` is stored in packs, as `report` says (its size, chunks and content hash):
    /// the records to write together with its record, in one journal entry (`None` deletes the
    /// key). Nothing is written yet: [`FileBatch::stored`] or [`FileBatch::failed`] follows.
    fn records(&mut self, key: &[u8], report: &FileReport) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let _ = (key, report);
        Vec::new()
    }

    /// File `key`'s record, and the records [`FileBatch::records`] gave, are written.
    fn stored(&mut self, key: &[u8], report: &FileReport);

    /// File `key` is not stored, for `error`: its source failed or gave another length than
    /// it declared (the batch goes on; a source failing with `Cancelled` ends it), its records
    /// could not be written, or the upload failed (the batch ends). Whatever `key`
    /// held before stays.
    fn failed(&mut self, key: &[u8], error: &Error);

    /// The file being read, `key`, is this far.
    fn progress(&mut self, key: &[u8], progress: FileProgress) {
        let _ = (key, progress);
    }
}

/// What [`Session::put_files`] keeps between its steps.
struct BatchRun<S> {
    buf: Vec<u8>,
    /// The file being read: its key, source and declared length.
    reading: Option<(Vec<u8>, S, Option<u64>)>,
    /// Files ended and not stored yet, by number.
    ended: std::collections::HashMap<u64, Vec<u8>>,
    /// The number of the file ended last for each key among them.
    newest: std::collections::HashMap<Vec<u8>, u64>,
}

/// `n` bytes more read from a source that said it holds `declared` bytes, `so_far` of which
/// came before: `n`, or `Config` when the source gives more or ends early.
fn as_declared(declared: Option<u64>, so_far: u64, n: usize) -> Result<usize> {
    let Some(size) = declared else {
        return Ok(n);
    };
    let total = so_far + n as u64;
    if n == 0 && total != size {
        return Err(Error::Config(format!(
            "the file's source ended after {total} bytes, not the {size} it was said to hold"
        )));
    }
    if total > size {
        return Err(Error::Config(format!(
            "the file's source gave more than the {size} bytes it was said to hold"
        )));
    }
    Ok(n)
}

/// An upload that tells the replica what it found or stored however it ends: finished,
/// failed, or dropped half-way with the task that ran it. While it runs, journal compaction is
/// held off ([`Session::hold_compaction`]).
struct Ending<'s> {
    session: &'s Session,
    upload: crate::transfer::Upload,
    /// Dropped after [`Ending::drop`], even if telling the replica panics.
    _hold: CompactionHold<'s>,
}

impl<'s> Ending<'s> {
    fn new(session: &'s Session, upload: crate::transfer::Upload) -> Self {
        Ending {
            session,
            upload,
            _hold: CompactionHold::new(session),
        }
    }
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        // A closed vault has no replica to tell; a state that cannot be written is the next
        // save's to report.
        let _ = self.session.note_upload(&mut self.upload, true);
    }
}

/// One [`Session::hold_compaction`], ended when dropped.
struct CompactionHold<'s>(&'s Session);

impl<'s> CompactionHold<'s> {
    fn new(session: &'s Session) -> Self {
        session.hold_compaction();
        CompactionHold(session)
    }
}

impl Drop for CompactionHold<'_> {
    fn drop(&mut self) {
        self.0.release_compaction();
    }
}

/// Whether `value` (a record's value, as [`Session::get`] or a history entry gives it) is a
/// file's record rather than bytes the app stored: read such a key with [`Session::get_file`].
pub fn is_file_value(value: &[u8]) -> bool {
    crate::file::FileValue::is_file(value)
}

/// Checks, before anything of a batch is sent, that each of `paths` is a regular file (a
/// link to one counts): the pre-check every binding's `put_files` makes, one error category
/// everywhere.
///
/// # Errors
/// `Config` naming the first path that is missing, cannot be read, or is not a regular file
/// (a folder, a device, a socket).
#[cfg(not(target_arch = "wasm32"))]
pub fn check_paths<'a>(paths: impl IntoIterator<Item = &'a std::path::Path>) -> Result<()> {
    for path in paths {
        let metadata = std::fs::metadata(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        if metadata.is_dir() {
            return Err(Error::Config(format!(
                "{} is a folder, not a file",
                path.display()
            )));
        }
        if !metadata.is_file() {
            return Err(Error::Config(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
    }
    Ok(())
}

impl Session {
    /// Stores the bytes of `source` as the file `key`: chunks the vault already holds are
    /// not sent again, the rest go up in packs of about `pack_size` bytes (`None`: 16 MiB),
    /// at most `concurrency` requests at once; then the file's record is written (journaled,
    /// pushed by the next sync). `progress` is called as bytes are read and requests answered.
    ///
    /// # Errors
    /// The request error that stopped it; `Config` when the source fails or the vault is
    /// closed; `Cancelled` after [`Session::cancel_sync`]. The file is then not stored (and
    /// whatever it was before stays).
    pub async fn put_file<T: Transport + ?Sized, S: Source>(
        &self,
        key: impl Into<Vec<u8>>,
        source: &mut S,
        transport: &T,
        pack_size: Option<usize>,
        concurrency: usize,
        mut progress: impl FnMut(FileProgress),
    ) -> Result<FileReport> {
        // Refused before anything is uploaded.
        self.check_writable()?;
        self.clear_cancel();
        let key = key.into();
        let now = self.now();
        let upload = self.configure(|e| e.begin_upload(source.len_hint(), pack_size, now))?;
        let mut upload = Ending::new(self, upload);
        let mut flight = Flight::new(
            transport,
            FileProgress {
                bytes_total: source.len_hint(),
                ..FileProgress::default()
            },
        );
        let mut buf = vec![0u8; READ_SIZE];
        let outcome = self
            .run_upload(
                &mut upload.upload,
                source,
                &mut flight,
                &mut buf,
                concurrency,
                &mut progress,
            )
            .await;
        // What it found or stored is reusable, also when it failed (or is dropped).
        drop(upload);
        let (value, report) = outcome?;
        // Cancelled by the last progress call: too late to stop a request, in time to keep
        // the record from being written.
        if self.take_cancel() {
            return Err(Error::Cancelled);
        }
        self.put(key, value)?;
        Ok(report)
    }

    async fn run_upload<T: Transport + ?Sized, S: Source, F: Future<Output = Answered>>(
        &self,
        upload: &mut crate::transfer::Upload,
        source: &mut S,
        flight: &mut Flight<'_, T, F>,
        buf: &mut [u8],
        concurrency: usize,
        progress: &mut impl FnMut(FileProgress),
    ) -> Result<(Vec<u8>, FileReport)> {
        // A request refused as `auth` says why when the vault's requests go unsigned.
        let outcome = async {
            let declared = source.declared_len();
            loop {
                while upload.wants_input() {
                    let n = as_declared(declared, upload.bytes_in(), source.read(buf).await?)?;
                    if n == 0 {
                        upload.finish()?;
                    } else {
                        upload.write(&buf[..n])?;
                        flight.progress.bytes_done = upload.bytes_in();
                        progress(flight.progress);
                    }
                }
                if let Some(outcome) = upload.poll_outcome() {
                    return outcome;
                }
                self.step(upload, flight, concurrency, progress).await?;
                self.note_upload(upload, false)?;
            }
        }
        .await;
        outcome.map_err(|e| self.noted(e))
    }

    /// Stores the files `batch` hands over, one after the other, into packs they share: a
    /// folder of small files costs a few PUTs, not one per file. Each file's record is written
    /// (journaled, pushed by the next sync) once every pack holding its chunks is stored,
    /// together with the records [`FileBatch::stored`] adds for it, in one journal entry; so a
    /// run cut off half-way leaves records only for files whose packs are in the store (the
    /// next upload of this device finds the others' chunks in its packs and sends them no
    /// more). A file whose source fails is left out ([`FileBatch::failed`]) and the rest go
    /// on. When a key is handed over twice, the file handed over later is the one stored (if it
    /// fails, the earlier one may have been stored already, and stays).
    /// Returns what the whole batch did: chunks, packs, requests and bytes.
    ///
    /// # Errors
    /// The request error that stopped the upload, `Cancelled` after [`Session::cancel_sync`],
    /// `Config` when the vault is closed, `Access` with the role `read`: files stored before
    /// stay stored, those not stored yet are told to [`FileBatch::failed`] (the ones never
    /// asked for are not).
    pub async fn put_files<T: Transport + ?Sized, B: FileBatch>(
        &self,
        batch: &mut B,
        transport: &T,
        pack_size: Option<usize>,
        concurrency: usize,
    ) -> Result<FileReport> {
        self.check_writable()?;
        self.clear_cancel();
        let now = self.now();
        let upload = self.configure(|e| e.begin_upload(None, pack_size, now))?;
        let mut upload = Ending::new(self, upload);
        let mut flight = Flight::new(transport, FileProgress::default());
        let mut run = BatchRun {
            buf: vec![0u8; READ_SIZE],
            reading: None,
            ended: std::collections::HashMap::new(),
            newest: std::collections::HashMap::new(),
        };
        let outcome = self
            .run_batch(
                &mut upload.upload,
                batch,
                &mut run,
                &mut flight,
                concurrency,
            )
            .await;
        drop(upload);
        if let Err(e) = &outcome {
            if let Some((key, _, _)) = run.reading.take() {
                batch.failed(&key, e);
            }
            let mut left: Vec<(u64, Vec<u8>)> = run.ended.into_iter().collect();
            left.sort();
            for (_, key) in left {
                batch.failed(&key, e);
            }
        }
        outcome
    }

    /// Writes the record of every file of the batch whose packs are all stored.
    ///
    /// # Errors
    /// When records cannot be written (the file is told failed first).
    fn hand_out<B: FileBatch>(
        &self,
        upload: &mut crate::transfer::Upload,
        batch: &mut B,
        run: &mut BatchRun<B::Source>,
    ) -> Result<()> {
        while let Some((number, value, report)) = upload.poll_file() {
            let key = run.ended.remove(&number).expect("each ended file is named");
            if run.newest.get(&key) != Some(&number) {
                // Handed over again later: that later file is the one stored.
                continue;
            }
            run.newest.remove(&key);
            let mut records = vec![(key.clone(), Some(value))];
            records.extend(batch.records(&key, &report));
            if let Err(e) = self.write_records(records) {
                batch.failed(&key, &e);
                return Err(e);
            }
            batch.stored(&key, &report);
        }
        Ok(())
    }

    async fn run_batch<T: Transport + ?Sized, B: FileBatch, F: Future<Output = Answered>>(
        &self,
        upload: &mut crate::transfer::Upload,
        batch: &mut B,
        run: &mut BatchRun<B::Source>,
        flight: &mut Flight<'_, T, F>,
        concurrency: usize,
    ) -> Result<FileReport> {
        // A request refused as `auth` says why when the vault's requests go unsigned.
        let outcome = async {
            loop {
                while upload.wants_input() {
                    let Some((key, source, declared)) = run.reading.as_mut() else {
                        match batch.next_file() {
                            Some((key, source)) => {
                                flight.progress.bytes_done = 0;
                                flight.progress.bytes_total = source.len_hint();
                                let declared = source.declared_len();
                                run.reading = Some((key, source, declared));
                            }
                            None => upload.end_input()?,
                        }
                        continue;
                    };
                    let read = source.read(&mut run.buf).await;
                    let n = match read.and_then(|n| as_declared(*declared, upload.bytes_in(), n)) {
                        Ok(n) => n,
                        // A source that says the caller stops (Ctrl-C, say) stops the batch; the
                        // files whose packs are stored already are written.
                        Err(Error::Cancelled) => {
                            self.hand_out(upload, batch, run)?;
                            return Err(Error::Cancelled);
                        }
                        Err(e) => {
                            upload.abandon_file();
                            let (key, _, _) = run.reading.take().expect("a file is being read");
                            batch.failed(&key, &e);
                            continue;
                        }
                    };
                    if n == 0 {
                        let number = upload.end_file()?;
                        let (key, _, _) = run.reading.take().expect("a file is being read");
                        run.newest.insert(key.clone(), number);
                        run.ended.insert(number, key);
                    } else {
                        upload.write(&run.buf[..n])?;
                        flight.progress.bytes_done = upload.bytes_in();
                        batch.progress(key, flight.progress);
                    }
                }
                self.hand_out(upload, batch, run)?;
                if let Some(outcome) = upload.poll_end() {
                    return outcome;
                }
                let mut progress = |p: FileProgress| {
                    if let Some((key, _, _)) = &run.reading {
                        batch.progress(key, p);
                    }
                };
                self.step(upload, flight, concurrency, &mut progress)
                    .await?;
                self.note_upload(upload, false)?;
            }
        }
        .await;
        outcome.map_err(|e| self.noted(e))
    }

    /// Reads the file `key` into `sink`, at most `concurrency` requests at once; `false`
    /// when the key is absent or deleted. Bytes reach the sink only once checked; if the read
    /// fails, what the sink got is a prefix of the file. `progress` is called once before the
    /// first request (with the bytes a resumed read starts at), then as bytes are handed on
    /// and requests answered.
    ///
    /// # Errors
    /// `Config` when the key holds a record that is not a file, or the sink fails; `Corrupt`
    /// when a chunk or the whole fails its checks; `NotFound` when a pack is missing; the
    /// request error that stopped it; `Cancelled` after [`Session::cancel_sync`].
    pub async fn get_file<T: Transport + ?Sized, K: Sink>(
        &self,
        key: &[u8],
        sink: &mut K,
        transport: &T,
        concurrency: usize,
        mut progress: impl FnMut(FileProgress),
    ) -> Result<bool> {
        self.clear_cancel();
        let Some(mut download) = self.read(|e| e.begin_download(key))?? else {
            return Ok(false);
        };
        self.run_download(&mut download, sink, transport, concurrency, &mut progress)
            .await?;
        Ok(true)
    }

    /// Reads the file `key` to the file at `target`, as [`Session::get_file`] does, through a
    /// partial file beside it (see [`PartialFile::resumable`]) that is renamed into place once
    /// the whole was read and checked; nothing appears at `target` before. A read that was
    /// interrupted (cancelled, a network failure, the process killed) leaves its partial file,
    /// and the next read of the same file to the same path checks the chunks it holds against
    /// their ids and fetches only the rest: it resumes at a chunk boundary. A read that fails
    /// otherwise (corrupt, not found, the disk) removes it. `false` (and nothing written) when
    /// the key is absent or deleted.
    ///
    /// # Errors
    /// As [`Session::get_file`]; `Config` when the partial file cannot be written or renamed.
    #[cfg(not(target_arch = "wasm32"))]
    pub async fn get_file_to_path<T: Transport + ?Sized>(
        &self,
        key: &[u8],
        target: &std::path::Path,
        transport: &T,
        concurrency: usize,
        mut progress: impl FnMut(FileProgress),
    ) -> Result<bool> {
        self.clear_cancel();
        let Some(download) = self.read(|e| e.begin_download(key))?? else {
            return Ok(false);
        };
        self.download_to_path(
            download,
            target,
            None,
            transport,
            concurrency,
            &mut progress,
        )
        .await?;
        Ok(true)
    }

    /// Reads the file `key` to a path through the partial file `open` gives for the name
    /// [`partial_name`] makes of `name` (the target's file name), as
    /// [`Session::get_file_to_path`] does: what that partial file holds from an interrupted
    /// read is checked and resumed from, and it is put in place only once the whole was read
    /// and checked (see [`PartialTarget`]). For hosts whose files the core cannot reach (Node);
    /// `false` (and nothing opened) when the key is absent or deleted.
    ///
    /// # Errors
    /// As [`Session::get_file`]; what `open` or the partial file fails with.
    pub async fn get_file_through<T, P, F>(
        &self,
        key: &[u8],
        name: &str,
        open: impl FnOnce(String) -> F,
        transport: &T,
        concurrency: usize,
        mut progress: impl FnMut(FileProgress),
    ) -> Result<bool>
    where
        T: Transport + ?Sized,
        P: PartialTarget,
        F: Future<Output = Result<P>>,
    {
        self.clear_cancel();
        let Some(download) = self.read(|e| e.begin_download(key))?? else {
            return Ok(false);
        };
        let mut partial = open(partial_name(name, &download.resume_tag())).await?;
        self.download_through(
            download,
            &mut partial,
            transport,
            concurrency,
            &mut progress,
        )
        .await?;
        Ok(true)
    }

    /// Runs `download` into `partial` and puts it in place, as [`PartialTarget`] describes.
    async fn download_through<T: Transport + ?Sized, P: PartialTarget>(
        &self,
        mut download: crate::transfer::Download,
        partial: &mut P,
        transport: &T,
        concurrency: usize,
        progress: &mut impl FnMut(FileProgress),
    ) -> Result<()> {
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            let n = partial.read(&mut buf).await?;
            if n == 0 || download.verify_prefix(&buf[..n]) < n {
                break;
            }
        }
        drop(buf);
        partial.cut(download.resume_offset()).await?;
        let outcome = self
            .run_download(&mut download, partial, transport, concurrency, progress)
            .await;
        // Cancelled by the last progress call: the partial file is whole and stays, so the
        // next read fetches nothing.
        let outcome = outcome.and_then(|()| match self.take_cancel() {
            true => Err(Error::Cancelled),
            false => Ok(()),
        });
        match outcome {
            Ok(()) => partial.commit().await,
            Err(e) => {
                if !(e.is_retryable() || matches!(e, Error::Cancelled)) {
                    partial.discard().await;
                }
                Err(e)
            }
        }
    }

    /// Reads many files to paths: `files` are (key, record value, path, the time and
    /// permissions to give it if any). Files of chunks are read together
    /// ([`Engine::begin_download_many`](crate::Engine::begin_download_many)), so that files
    /// side by side in a pack come down in a few ranged GETs; each is written
    /// through a partial file beside its path and renamed into place once checked (and synced
    /// as `durability` says). Files that
    /// live in their record, and those left when a read of many fails (a missing pack, say),
    /// are read one by one, so each gets its own error. `progress` is called with a file's
    /// place among those given as its bytes arrive (a file read whole is handed to a writer,
    /// so its last progress comes before it is written: the outcome says whether it was).
    /// Returns each file's outcome, in the order given: whether it got its stamp (it may not
    /// have: a file read alone, or a file system that refused it), when it was written. The
    /// values of files read one by one
    /// are emptied once read (a file held in its record is let go of before the packs' ranges
    /// come in).
    ///
    /// # Errors
    /// `Cancelled` after [`Session::cancel_sync`] (the files written so far stay).
    #[cfg(all(feature = "backup", not(target_arch = "wasm32")))] // restore's
    pub(crate) async fn download_many_to_paths<T: Transport + ?Sized>(
        &self,
        files: &mut [ToPath],
        transport: &T,
        concurrency: usize,
        durability: Durability,
        progress: &mut impl FnMut(usize, FileProgress),
    ) -> Result<Vec<Result<bool>>> {
        let mut outcomes: Vec<Option<Result<bool>>> = files.iter().map(|_| None).collect();
        let pairs: Vec<(&[u8], &[u8])> = files
            .iter()
            .map(|(k, v, _, _, _)| (k.as_slice(), v.as_slice()))
            .collect();
        let (groups, alone) = self.read(|e| e.begin_download_many(&pairs))?;
        drop(pairs);
        // Files are written (and synced, as `durability` says) on threads of their own while
        // the reads go on; a `Cancelled` below still writes what was handed over, when
        // `writers` is dropped.
        let mut writers = FileWriters::start(files.len(), durability);
        // Those alone first: most are small files held in their records, and their values are
        // let go of before the packs' ranges are held.
        let mut each = ReadEach {
            files,
            outcomes: &mut outcomes,
            writers: &mut writers,
        };
        self.read_each(&mut each, alone, transport, concurrency, progress)
            .await?;
        let mut left = Vec::new();
        for (mut many, places) in groups {
            let mut flight = Flight::new(
                transport,
                FileProgress {
                    bytes_total: Some(many.size()),
                    ..FileProgress::default()
                },
            );
            let mut at = 0;
            let outcome = loop {
                while let Some((index, read)) = many.poll_file() {
                    let place = places[index];
                    let (_, _, path, stamp, expect) = &each.files[place];
                    match read {
                        Ok(bytes) => {
                            flight.progress.bytes_done += bytes.len() as u64;
                            each.writers
                                .write(place, path.clone(), bytes, *stamp, *expect);
                        }
                        Err(e) => each.outcomes[place] = Some(Err(e)),
                    }
                    at = place;
                    progress(place, flight.progress);
                }
                if let Some(outcome) = many.poll_outcome() {
                    break outcome;
                }
                let mut on_step = |p: FileProgress| progress(at, p);
                self.step(&mut many, &mut flight, concurrency, &mut on_step)
                    .await?;
            };
            if outcome.is_err() {
                // Each file left gets its own read, and its own error.
                left.extend(many.left().into_iter().map(|i| places[i]));
            }
        }
        self.read_each(&mut each, left, transport, concurrency, progress)
            .await?;
        for (place, written) in writers.finish() {
            outcomes[place] = Some(written);
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Error::Config("the file was not read".into()))))
            .collect())
    }

    /// Reads the files at `places` of `each` one by one (see
    /// [`Session::download_many_to_paths`]), emptying each one's value once read.
    #[cfg(all(feature = "backup", not(target_arch = "wasm32")))]
    async fn read_each<T: Transport + ?Sized>(
        &self,
        each: &mut ReadEach<'_>,
        mut places: Vec<usize>,
        transport: &T,
        concurrency: usize,
        progress: &mut impl FnMut(usize, FileProgress),
    ) -> Result<()> {
        places.sort_unstable();
        for place in places {
            let (key, value, path, stamp, expect) = &mut each.files[place];
            let value = std::mem::take(value);
            let download = match self.read(|e| e.begin_download_value(key, &value, None))? {
                Ok(download) => download,
                Err(e) => {
                    each.outcomes[place] = Some(Err(e));
                    continue;
                }
            };
            let inline = crate::file::FileValue::decode(key, &value)
                .is_ok_and(|f| matches!(f.body, crate::file::Body::Inline(_)));
            drop(value);
            let read = if inline {
                // No request, and no partial file to resume: written whole once checked.
                let mut bytes = Vec::new();
                let mut sink = WriteSink(&mut bytes);
                let mut download = download;
                let mut on = |p: FileProgress| progress(place, p);
                match self
                    .run_download(&mut download, &mut sink, transport, concurrency, &mut on)
                    .await
                {
                    Ok(()) => {
                        each.writers
                            .write(place, path.clone(), bytes, *stamp, *expect);
                        continue;
                    }
                    Err(e) => Err(e),
                }
            } else {
                self.download_to_path(download, path, *expect, transport, concurrency, &mut |p| {
                    progress(place, p)
                })
                .await
            };
            if matches!(read, Err(Error::Cancelled)) {
                return Err(Error::Cancelled);
            }
            // Renamed into place unstamped: the caller stamps it.
            each.outcomes[place] = Some(read.map(|()| false));
        }
        Ok(())
    }

    /// Runs `download` to the file at `target` through its resumable partial file, as
    /// [`Session::get_file_to_path`] describes.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) async fn download_to_path<T: Transport + ?Sized>(
        &self,
        download: crate::transfer::Download,
        target: &std::path::Path,
        expect: Option<crate::io::partial_file::Expect>,
        transport: &T,
        concurrency: usize,
        progress: &mut impl FnMut(FileProgress),
    ) -> Result<()> {
        let mut partial = PathPartial::resumable(target, &download.resume_tag(), expect)?;
        self.download_through(download, &mut partial, transport, concurrency, progress)
            .await
    }

    /// Opens the file `key` for reading at any offset (see [`FileReader`]): it keeps reading
    /// the version stored now. `None` when the key is absent or deleted.
    ///
    /// # Errors
    /// `Config` when the key holds a record that is not a file; `Corrupt` when its value is
    /// damaged.
    pub fn open_file(&self, key: &[u8]) -> Result<Option<FileReader>> {
        self.read(|e| {
            let Some(info) = e.file_info(key)? else {
                return Ok(None);
            };
            Ok(Some(FileReader {
                key: key.to_vec(),
                value: e.get(key).expect("file_info found it").to_vec(),
                size: info.size,
                cached: None,
            }))
        })?
    }

    /// Drives `download` to its end, handing its bytes to `sink`.
    async fn run_download<T: Transport + ?Sized, K: Sink>(
        &self,
        download: &mut crate::transfer::Download,
        sink: &mut K,
        transport: &T,
        concurrency: usize,
        progress: &mut impl FnMut(FileProgress),
    ) -> Result<()> {
        // A request refused as `auth` says why when the vault's requests go unsigned.
        let outcome = async {
            let mut flight = Flight::new(
                transport,
                FileProgress {
                    bytes_done: download.resume_offset(),
                    bytes_total: Some(download.size()),
                    ..FileProgress::default()
                },
            );
            // Where it starts (a resumed read: past what the partial file held).
            progress(flight.progress);
            loop {
                while let Some(bytes) = download.poll_output() {
                    sink.write(&bytes).await?;
                    flight.progress.bytes_done += bytes.len() as u64;
                    progress(flight.progress);
                }
                if let Some(outcome) = download.poll_outcome() {
                    return outcome;
                }
                self.step(download, &mut flight, concurrency, progress)
                    .await?;
            }
        }
        .await;
        outcome.map_err(|e| self.noted(e))
    }

    /// Sends what `machine` hands out (up to `concurrency` in flight), then waits for one
    /// answer (or a retry's backoff) and feeds it back.
    async fn step<'t, M: Machine, T: Transport + ?Sized, F: Future<Output = Answered>>(
        &self,
        machine: &mut M,
        flight: &mut Flight<'t, T, F>,
        concurrency: usize,
        progress: &mut impl FnMut(FileProgress),
    ) -> Result<()> {
        if self.take_cancel() {
            return Err(Error::Cancelled);
        }
        let now = self.now();
        while flight.in_flight.len() < concurrency.max(1) {
            let Some(mut request) = machine.poll_request(now) else {
                break;
            };
            self.read(|e| e.sign(&mut request, now))??;
            let answer = (flight.send)(flight.transport, request);
            flight.in_flight.push(answer);
            flight.progress.requests_total += 1;
        }
        match flight.in_flight.next().await {
            Some((id, response)) => {
                flight.progress.requests_done += 1;
                progress(flight.progress);
                machine.handle_response(id, response, self.now());
            }
            None => match machine.poll_timeout() {
                Some(due) => {
                    flight
                        .transport
                        .sleep(due.0.saturating_sub(self.now().0))
                        .await;
                }
                None => {
                    return Err(Error::Transport {
                        category: Category::Server,
                        message: "file transfer stalled with no request outstanding".into(),
                    })
                }
            },
        }
        Ok(())
    }
}

/// A file [`Session::download_many_to_paths`] reads: its key, its record value, its path and
/// the time and permissions to give it, if any.
#[cfg(all(feature = "backup", not(target_arch = "wasm32")))]
/// A file to read to a path: its key, its record value, the path, the stamp to give it, and
/// what the path must still hold when it is put in place (when given).
pub(crate) type ToPath = (
    Vec<u8>,
    Vec<u8>,
    std::path::PathBuf,
    Option<Stamp>,
    Option<crate::io::partial_file::Expect>,
);

/// What [`Session::read_each`] reads and where it puts what it read.
#[cfg(all(feature = "backup", not(target_arch = "wasm32")))]
struct ReadEach<'a> {
    files: &'a mut [ToPath],
    outcomes: &'a mut [Option<Result<bool>>],
    writers: &'a mut FileWriters,
}

impl Machine for crate::transfer::DownloadMany {
    fn poll_request(&mut self, now: Timestamp) -> Option<Request> {
        self.poll_request(now)
    }
    fn handle_response(&mut self, id: RequestId, response: Result<Response>, now: Timestamp) {
        self.handle_response(id, response, now);
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        self.poll_timeout()
    }
}

/// How much a [`FileReader`] fetches at least when what is asked is not at hand.
const READ_AHEAD: u64 = 4 << 20;

/// A file opened for reading at any offset ([`Session::open_file`]), for seekable readers:
/// a read fetches only the chunks it needs (and some read-ahead, kept for the next read), each
/// checked against its id. It reads the version that was stored when it was opened.
#[derive(Debug)]
pub struct FileReader {
    key: Vec<u8>,
    value: Vec<u8>,
    size: u64,
    /// The bytes fetched last: where they start in the file, and them.
    cached: Option<(u64, Vec<u8>)>,
}

impl FileReader {
    /// The file's length.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Up to `max` bytes of the file from `offset` (fewer only at its end; none past it),
    /// fetched through `transport` unless the last fetch holds them.
    ///
    /// # Errors
    /// As [`Session::get_file`]: `Corrupt` when a chunk fails its check or the fetch gives
    /// fewer bytes than the file holds there (never a short read before the file's end),
    /// `NotFound` when its pack is gone, the request error that stopped it; `Cancelled` after
    /// [`Session::cancel_sync`].
    pub async fn read_at<T: Transport + ?Sized>(
        &mut self,
        session: &Session,
        offset: u64,
        max: usize,
        transport: &T,
        concurrency: usize,
    ) -> Result<Vec<u8>> {
        let end = offset.saturating_add(max as u64).min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        // Only when the last fetch holds all of it (a read is short only at the file's end).
        let held = |cached: &Option<(u64, Vec<u8>)>| match cached {
            Some((start, bytes)) if *start <= offset && end <= start + bytes.len() as u64 => {
                Some(bytes[(offset - start) as usize..(end - start) as usize].to_vec())
            }
            _ => None,
        };
        if let Some(bytes) = held(&self.cached) {
            return Ok(bytes);
        }
        let fetch_end = end.max(offset.saturating_add(READ_AHEAD)).min(self.size);
        session.clear_cancel();
        let mut download = session
            .read(|e| e.begin_download_value(&self.key, &self.value, Some(offset..fetch_end)))??;
        let mut bytes = Vec::with_capacity((fetch_end - offset) as usize);
        session
            .run_download(
                &mut download,
                &mut WriteSink(&mut bytes),
                transport,
                concurrency,
                &mut |_| {},
            )
            .await?;
        let got = bytes.len() as u64;
        self.cached = Some((offset, bytes));
        // A read short of the file's end is never handed out as its end (a reader would take
        // the file for shorter than it is): every binding gets this error instead.
        held(&self.cached).ok_or_else(|| {
            Error::corrupt(
                "an opened file",
                format!(
                    "the read from byte {offset} gave {got} bytes, not the {} the file holds there",
                    fetch_end - offset
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::check_paths;
    use crate::error::Category;

    #[test]
    fn a_batch_of_paths_is_checked_before_anything_is_sent() {
        let dir = std::env::temp_dir().join(format!("bucketsync-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.txt");
        std::fs::write(&file, b"a").unwrap();
        check_paths([file.as_path()]).unwrap();
        let missing = dir.join("missing");
        for (paths, says) in [
            (vec![file.as_path(), missing.as_path()], "cannot read"),
            (vec![dir.as_path()], "is a folder, not a file"),
        ] {
            let err = check_paths(paths).unwrap_err();
            assert_eq!(err.category(), Category::Config, "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
        #[cfg(unix)]
        {
            let err = check_paths([std::path::Path::new("/dev/null")]).unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
