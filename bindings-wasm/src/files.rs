//! Files: the core's `Source` over a JS stream reader, its `Sink` over a JS writer, and the
//! `putFile` / `getFile` / `fileInfo` / `openFile` exports. The JS layer (`js/index.js`) turns Blobs,
//! streams, bytes and Node paths into readers and writers, and an `AbortSignal` into a `Cancel`.

use std::cell::RefCell;
use std::rc::Rc;

use bucketsync::driver;
use bucketsync::files::{FileBatch, FileProgress, FileReader, PartialTarget, Sink, Source};
use bucketsync::session::Session;
use bucketsync::transfer::FileReport;
use js_sys::{Array, Function, Object, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::cancel::Cancel;
use crate::{js_error, js_message, set, JsTransport, Vault};

#[wasm_bindgen]
extern "C" {
    /// What a file is read from: a `ReadableStreamDefaultReader`, or any object whose `read()`
    /// resolves to `{ done, value }` (an async iterator's `next()` does too).
    pub type Reader;
    #[wasm_bindgen(method, catch)]
    fn read(this: &Reader) -> Result<Promise, JsValue>;

    /// What a file is written to: a `WritableStreamDefaultWriter`, or any object whose
    /// `write(chunk)` resolves once the chunk is taken.
    pub type Writer;
    #[wasm_bindgen(method, catch)]
    fn write(this: &Writer, chunk: Uint8Array) -> Result<JsValue, JsValue>;

    /// The partial file of a read to a Node path (the core's `PartialTarget`): a [`Writer`]
    /// whose `read(max)` resolves to the next bytes it holds (empty at its end), and whose
    /// `cut(len)`, `commit()` (made durable, then renamed into place) and `discard()` resolve
    /// to nothing.
    pub type Partial;
    #[wasm_bindgen(method, catch)]
    fn read(this: &Partial, max: u32) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn cut(this: &Partial, len: f64) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn commit(this: &Partial) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn discard(this: &Partial) -> Result<Promise, JsValue>;

    /// `(bytesDone, bytesTotal, requestsDone, requestsTotal) => void`; the JS layer's, which
    /// never throws (it turns what the app's callback throws into a stop).
    pub type Progress;
    #[wasm_bindgen(method, js_name = call)]
    fn report(this: &Progress, this_arg: &JsValue, done: f64, total: JsValue, rd: f64, rt: f64);

    /// A file of a `putFiles`: `{ key, reader, size, declared }`, as `putFile` takes them.
    pub type BatchFile;
    #[wasm_bindgen(method, getter)]
    fn key(this: &BatchFile) -> Vec<u8>;
    #[wasm_bindgen(method, getter)]
    fn reader(this: &BatchFile) -> Reader;
    #[wasm_bindgen(method, getter)]
    fn size(this: &BatchFile) -> Option<f64>;
    #[wasm_bindgen(method, getter)]
    fn declared(this: &BatchFile) -> bool;

    /// `(index, bytesDone, bytesTotal, requestsDone, requestsTotal) => void`: `Progress` with
    /// the place of the file being read among those given.
    pub type BatchProgress;
    #[wasm_bindgen(method, js_name = call)]
    fn report(
        this: &BatchProgress,
        this_arg: &JsValue,
        index: u32,
        done: f64,
        total: JsValue,
        rd: f64,
        rt: f64,
    );

    type ReadResult;
    #[wasm_bindgen(method, getter)]
    fn done(this: &ReadResult) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn value(this: &ReadResult) -> JsValue;
}

fn failed(what: &str, e: &JsValue) -> bucketsync::Error {
    bucketsync::Error::Config(format!("{what} failed: {}", js_message(e)))
}

/// A [`Source`] over a JS reader: the chunks it hands out, cut to the sizes the core asks for.
struct JsSource {
    reader: Reader,
    len: Option<u64>,
    /// `len` is a promise (a Blob's, bytes', or a size the app gave), not a hint (a path's).
    declared: bool,
    chunk: Option<Uint8Array>,
    at: u32,
}

impl JsSource {
    /// Reads from `reader`, which holds `len` bytes if known (`declared`: a promise, not a hint).
    fn new(reader: Reader, len: Option<f64>, declared: bool) -> Self {
        JsSource {
            reader,
            len: len.map(|l| l as u64),
            declared,
            chunk: None,
            at: 0,
        }
    }
}

impl Source for JsSource {
    async fn read(&mut self, buf: &mut [u8]) -> bucketsync::Result<usize> {
        loop {
            if let Some(chunk) = &self.chunk {
                let left = chunk.length() - self.at;
                if left > 0 {
                    let n = left.min(buf.len() as u32);
                    chunk
                        .subarray(self.at, self.at + n)
                        .copy_to(&mut buf[..n as usize]);
                    self.at += n;
                    return Ok(n as usize);
                }
                self.chunk = None;
            }
            let read = |e: JsValue| failed("reading the source", &e);
            let result = JsFuture::from(self.reader.read().map_err(read)?)
                .await
                .map_err(read)?
                .unchecked_into::<ReadResult>();
            if result.done().is_truthy() {
                return Ok(0);
            }
            let chunk = result.value().dyn_into::<Uint8Array>().map_err(|_| {
                bucketsync::Error::Config("the source gave a chunk that is not a Uint8Array".into())
            })?;
            self.chunk = Some(chunk);
            self.at = 0;
        }
    }

    fn len_hint(&self) -> Option<u64> {
        self.len
    }

    fn declared_len(&self) -> Option<u64> {
        self.len.filter(|_| self.declared)
    }
}

/// A [`Sink`] over a JS writer: each piece is copied out of wasm memory and awaited.
struct JsSink(Writer);

impl Sink for JsSink {
    async fn write(&mut self, data: &[u8]) -> bucketsync::Result<()> {
        let write = |e: JsValue| failed("writing the file", &e);
        let taken = self.0.write(Uint8Array::from(data)).map_err(write)?;
        JsFuture::from(Promise::resolve(&taken))
            .await
            .map_err(write)?;
        Ok(())
    }
}

/// Awaits what a [`Partial`] method returned; its failure as writing the file's.
async fn settled(called: Result<Promise, JsValue>) -> bucketsync::Result<JsValue> {
    let write = |e: JsValue| failed("writing the file", &e);
    JsFuture::from(called.map_err(write)?).await.map_err(write)
}

/// The partial file of a read to a Node path: a [`JsSink`] whose writer is a [`Partial`] (one
/// type for both, so the core's download loop is in the module once).
impl PartialTarget for JsSink {
    async fn read(&mut self, buf: &mut [u8]) -> bucketsync::Result<usize> {
        let got = settled(self.partial().read(buf.len() as u32)).await?;
        let bytes = got.dyn_into::<Uint8Array>().map_err(|_| {
            bucketsync::Error::Config(
                "the partial file gave bytes that are not a Uint8Array".into(),
            )
        })?;
        let n = (bytes.length() as usize).min(buf.len());
        bytes.subarray(0, n as u32).copy_to(&mut buf[..n]);
        Ok(n)
    }

    async fn cut(&mut self, len: u64) -> bucketsync::Result<()> {
        settled(self.partial().cut(len as f64)).await.map(drop)
    }

    async fn commit(&mut self) -> bucketsync::Result<()> {
        settled(self.partial().commit()).await.map(drop)
    }

    async fn discard(&mut self) {
        let _ = settled(self.partial().discard()).await;
    }
}

impl JsSink {
    fn partial(&self) -> &Partial {
        self.0.unchecked_ref()
    }
}

/// A progress's total bytes for JS: a number, or `null` while unknown.
fn js_total(p: &FileProgress) -> JsValue {
    p.bytes_total.map_or(JsValue::NULL, |t| (t as f64).into())
}

/// Hands `p` to the JS progress function.
fn progress(to: &Progress) -> impl FnMut(FileProgress) + '_ {
    move |p: FileProgress| {
        to.report(
            &JsValue::NULL,
            p.bytes_done as f64,
            js_total(&p),
            p.requests_done as f64,
            p.requests_total as f64,
        );
    }
}

/// A file report as the JS layer's `FileReport`.
fn report_object(r: &FileReport) -> Object {
    let js = Object::new();
    set(&js, "size", r.size as f64);
    set(&js, "chunks", r.chunks as f64);
    set(&js, "chunksUploaded", r.chunks_uploaded as f64);
    set(&js, "chunksReused", r.chunks_reused as f64);
    set(&js, "packs", r.packs as f64);
    set(&js, "bytesSent", r.bytes_sent as f64);
    set(&js, "requests", r.requests as f64);
    js
}

/// The files of a `putFiles`, handed to the core in the order given; what became of each is
/// kept as `[key, report]` and `[key, error]` pairs.
struct JsBatch {
    files: Array,
    /// How many were handed over: the one being read is the last of them.
    next: u32,
    to: BatchProgress,
    stored: Array,
    failed: Array,
}

impl FileBatch for JsBatch {
    type Source = JsSource;

    fn next_file(&mut self) -> Option<(Vec<u8>, JsSource)> {
        if self.next >= self.files.length() {
            return None;
        }
        let file: BatchFile = self.files.get(self.next).unchecked_into();
        self.next += 1;
        let source = JsSource::new(file.reader(), file.size(), file.declared());
        Some((file.key(), source))
    }

    fn stored(&mut self, key: &[u8], report: &FileReport) {
        let pair = Array::of2(&Uint8Array::from(key), &report_object(report));
        self.stored.push(&pair);
    }

    fn failed(&mut self, key: &[u8], error: &bucketsync::Error) {
        self.failed
            .push(&Array::of2(&Uint8Array::from(key), &js_error(error)));
    }

    fn progress(&mut self, _key: &[u8], p: FileProgress) {
        self.to.report(
            &JsValue::NULL,
            self.next.saturating_sub(1),
            p.bytes_done as f64,
            js_total(&p),
            p.requests_done as f64,
            p.requests_total as f64,
        );
    }
}

#[wasm_bindgen]
impl Vault {
    /// Stores what `reader` gives (`len` bytes, if known; `declared`: the app promised that
    /// many, and a put of fewer or more fails) as the file `key`, through `send`, in packs of
    /// about `packSize` bytes; resolves to a report object. See the JS layer's `putFile`.
    #[wasm_bindgen(js_name = putFile)]
    #[allow(clippy::too_many_arguments)]
    pub fn put_file(
        &self,
        key: Vec<u8>,
        reader: Reader,
        len: Option<f64>,
        declared: bool,
        pack_size: Option<u32>,
        send: Function,
        to: Progress,
        cancel: &Cancel,
    ) -> Promise {
        let session = self.session.clone();
        let cancel = cancel.clone();
        future_to_promise(async move {
            let transport = JsTransport { send };
            let mut source = JsSource::new(reader, len, declared);
            let transfer = session.put_file(
                key,
                &mut source,
                &transport,
                pack_size.map(|s| s as usize),
                driver::DEFAULT_CONCURRENCY,
                progress(&to),
            );
            let r = cancel.run(transfer).await?;
            Ok(report_object(&r).into())
        })
    }

    /// Stores `files` (`BatchFile`s) in one upload through `send`, in packs of about
    /// `packSize` bytes they share; resolves to the batch's totals as a report object with
    /// `stored` (`[key, report]` pairs) and `failed` (`[key, error]` pairs). See the JS
    /// layer's `putFiles`.
    #[wasm_bindgen(js_name = putFiles)]
    pub fn put_files(
        &self,
        files: Array,
        pack_size: Option<u32>,
        send: Function,
        to: BatchProgress,
        cancel: &Cancel,
    ) -> Promise {
        let session = self.session.clone();
        let cancel = cancel.clone();
        future_to_promise(async move {
            let transport = JsTransport { send };
            let mut batch = JsBatch {
                files,
                next: 0,
                to,
                stored: Array::new(),
                failed: Array::new(),
            };
            let transfer = session.put_files(
                &mut batch,
                &transport,
                pack_size.map(|s| s as usize),
                driver::DEFAULT_CONCURRENCY,
            );
            let totals = cancel.run(transfer).await?;
            let js = report_object(&totals);
            set(&js, "stored", batch.stored);
            set(&js, "failed", batch.failed);
            Ok(js.into())
        })
    }

    /// Reads the file `key` to a Node path named `name`, through the partial file
    /// `open(partialName)` resolves to (a `Partial` beside the path), which the core resumes
    /// from and puts in place as it does on every platform; resolves to `false` when the key
    /// holds nothing. A stream or a Blob is read through a `Partial` that holds nothing and
    /// whose `commit` leaves the rest to the JS layer. See the JS layer's `getFile`.
    #[wasm_bindgen(js_name = getFileThrough)]
    pub fn get_file_through(
        &self,
        key: Vec<u8>,
        name: String,
        open: Function,
        send: Function,
        to: Progress,
        cancel: &Cancel,
    ) -> Promise {
        let session = self.session.clone();
        let cancel = cancel.clone();
        future_to_promise(async move {
            let transport = JsTransport { send };
            let open = |partial_name: String| async move {
                let opened = open
                    .call1(&JsValue::NULL, &partial_name.into())
                    .map(|opened| Promise::resolve(&opened));
                Ok(JsSink(settled(opened).await?.unchecked_into()))
            };
            let transfer = session.get_file_through(
                &key,
                &name,
                open,
                &transport,
                driver::DEFAULT_CONCURRENCY,
                progress(&to),
            );
            Ok(cancel.run(transfer).await?.into())
        })
    }

    /// Opens the file `key` for reading at any offset: the version stored now, whatever a
    /// sync brings in later; `null` when the key holds nothing. See the JS layer's `openFile`.
    #[wasm_bindgen(js_name = openFile)]
    pub fn open_file(&self, key: &[u8]) -> Result<Option<OpenedFile>, JsValue> {
        let reader = self.session.open_file(key).map_err(|e| js_error(&e))?;
        Ok(reader.map(|reader| OpenedFile {
            size: reader.size(),
            session: self.session.clone(),
            reader: Rc::new(RefCell::new(Some(reader))),
        }))
    }

    /// What the file under `key` is, without fetching it: `{ size, chunks, packs,
    /// contentHash }`, or `null` when the key holds nothing.
    #[wasm_bindgen(js_name = fileInfo)]
    pub fn file_info(&self, key: &[u8]) -> Result<JsValue, JsValue> {
        let info = self
            .session
            .read(|e| e.file_info(key))
            .and_then(|found| found)
            .map_err(|e| js_error(&e))?;
        Ok(match info {
            Some(i) => {
                let js = Object::new();
                set(&js, "size", i.size as f64);
                set(&js, "chunks", i.chunks as f64);
                set(&js, "packs", i.packs as f64);
                set(&js, "contentHash", i.content_hash);
                js.into()
            }
            None => JsValue::NULL,
        })
    }
}

/// A file opened by [`Vault::open_file`]: reads at any offset fetch only the chunks they need
/// (and some read-ahead, kept for the next read), each checked against its id.
#[wasm_bindgen]
pub struct OpenedFile {
    size: u64,
    session: Rc<Session>,
    /// Out while a read runs: the JS layer runs one read at a time.
    reader: Rc<RefCell<Option<FileReader>>>,
}

#[wasm_bindgen]
impl OpenedFile {
    /// The file's length in bytes.
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> f64 {
        self.size as f64
    }

    /// Resolves to up to `max` bytes from `offset` (a whole number, which the JS layer checks;
    /// fewer only at the end; none past it), fetched through `send`; rejects with the core's error, or `undefined` once
    /// `cancel` is cancelled (for the JS layer to reject with its reason).
    #[wasm_bindgen(js_name = readAt)]
    pub fn read_at(&self, offset: f64, max: u32, send: Function, cancel: &Cancel) -> Promise {
        let session = self.session.clone();
        let cancel = cancel.clone();
        let slot = self.reader.clone();
        future_to_promise(async move {
            let Some(mut reader) = slot.borrow_mut().take() else {
                return Err(js_error(&bucketsync::Error::Config(
                    "another read of this opened file is running".into(),
                )));
            };
            let transport = JsTransport { send };
            let read = reader.read_at(
                &session,
                offset as u64,
                max as usize,
                &transport,
                driver::DEFAULT_CONCURRENCY,
            );
            let outcome = cancel.run(read).await;
            *slot.borrow_mut() = Some(reader);
            Ok(Uint8Array::from(&outcome?[..]).into())
        })
    }
}
