//! Files: the classes `Vault.put_file`, `get_file` and `file_info` return or report with, and
//! the core's `Source` and `Sink` over a path or a Python file object.

use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

use bucketsync::cancel::Cancel;
use bucketsync::files::{ReadSource, Sink, Source};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};

/// How far a file transfer has come; passed to the `progress` callback of `Vault.put_file`
/// and `Vault.get_file`.
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct FileProgress {
    /// File bytes read from the source (put_file) or written out (get_file) so far.
    pub bytes_done: u64,
    /// The file's length, None when not known (a file object that cannot seek).
    pub bytes_total: Option<u64>,
    /// Requests answered so far.
    pub requests_done: u64,
    /// Requests sent so far.
    pub requests_total: u64,
}

#[pymethods]
impl FileProgress {
    fn __repr__(&self) -> String {
        let total = self
            .bytes_total
            .map_or_else(|| "None".to_owned(), |t| t.to_string());
        format!(
            "FileProgress(bytes_done={}, bytes_total={total}, requests_done={}, requests_total={})",
            self.bytes_done, self.requests_done, self.requests_total
        )
    }
}

impl From<bucketsync::files::FileProgress> for FileProgress {
    fn from(p: bucketsync::files::FileProgress) -> Self {
        FileProgress {
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
            requests_done: p.requests_done,
            requests_total: p.requests_total,
        }
    }
}

/// What one `Vault.put_file` did.
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct FileReport {
    /// The file's length in bytes.
    pub size: u64,
    /// Its chunks (0 for a file small enough to live in its record).
    pub chunks: u64,
    /// Chunks sealed and sent.
    pub chunks_uploaded: u64,
    /// Chunks the vault (or this file) already held, not sent again.
    pub chunks_reused: u64,
    /// Packs written.
    pub packs: u64,
    /// Request body bytes sent (retries included).
    pub bytes_sent: u64,
    /// Requests made (retries included).
    pub requests: u64,
}

#[pymethods]
impl FileReport {
    fn __repr__(&self) -> String {
        format!(
            "FileReport(size={}, chunks={}, chunks_uploaded={}, chunks_reused={}, packs={}, bytes_sent={}, requests={})",
            self.size, self.chunks, self.chunks_uploaded, self.chunks_reused, self.packs,
            self.bytes_sent, self.requests
        )
    }
}

impl From<bucketsync::transfer::FileReport> for FileReport {
    fn from(r: bucketsync::transfer::FileReport) -> Self {
        FileReport {
            size: r.size,
            chunks: r.chunks,
            chunks_uploaded: r.chunks_uploaded,
            chunks_reused: r.chunks_reused,
            packs: r.packs,
            bytes_sent: r.bytes_sent,
            requests: r.requests,
        }
    }
}

/// What one `Vault.put_files` did: each file stored or not, and what the whole batch cost.
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct PutFilesReport {
    /// The files stored: key (bytes) -> FileReport (its size and chunks; packs, requests and
    /// bytes are the batch's, below).
    pub stored: PyObject,
    /// The files not stored: key (bytes) -> the exception that kept it out (a file that
    /// cannot be read or changed length while read is a ConfigError). Their keys hold what they
    /// held before.
    pub failed: PyObject,
    /// Chunks sealed and sent.
    pub chunks_uploaded: u64,
    /// Chunks the vault (or the batch) already held, not sent again.
    pub chunks_reused: u64,
    /// Packs written: the batch's files share them.
    pub packs: u64,
    /// Request body bytes sent (retries included).
    pub bytes_sent: u64,
    /// Requests made (retries included).
    pub requests: u64,
}

#[pymethods]
impl PutFilesReport {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "PutFilesReport(stored={}, failed={}, chunks_uploaded={}, chunks_reused={}, packs={}, bytes_sent={}, requests={})",
            self.stored.bind(py).len()?,
            self.failed.bind(py).len()?,
            self.chunks_uploaded,
            self.chunks_reused,
            self.packs,
            self.bytes_sent,
            self.requests
        ))
    }
}

/// The files of a `Vault.put_files`, as the core's batch asks for them: each opened only then.
pub struct PathBatch<'a> {
    pub files: std::vec::IntoIter<(Vec<u8>, std::path::PathBuf)>,
    pub stop: &'a Stop,
    pub progress: Option<&'a PyObject>,
    pub session: &'a bucketsync::session::Session,
    pub stored: Vec<(Vec<u8>, bucketsync::transfer::FileReport)>,
    pub failed: Vec<(Vec<u8>, bucketsync::Error)>,
}

impl<'a> bucketsync::files::FileBatch for PathBatch<'a> {
    type Source = Checked<'a, ReadSource<std::fs::File>>;

    fn next_file(&mut self) -> Option<(Vec<u8>, Self::Source)> {
        for (key, path) in self.files.by_ref() {
            match ReadSource::open(&path) {
                Ok(source) => return Some((key, Checked::new(source, self.stop))),
                Err(error) => self.failed.push((key, error)),
            }
        }
        None
    }

    fn stored(&mut self, key: &[u8], report: &bucketsync::transfer::FileReport) {
        self.stored.push((key.to_vec(), report.clone()));
    }

    fn failed(&mut self, key: &[u8], error: &bucketsync::Error) {
        self.failed.push((key.to_vec(), error.clone()));
    }

    fn progress(&mut self, key: &[u8], progress: bucketsync::files::FileProgress) {
        let Some(callback) = self.progress else {
            return;
        };
        Python::with_gil(|py| {
            let key = PyBytes::new(py, key);
            if let Err(e) = callback.call1(py, (key, FileProgress::from(progress))) {
                self.stop.note(e);
                self.session.cancel_sync();
            }
        });
    }
}

/// What `Vault.file_info` tells about a file without fetching it.
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct FileInfo {
    /// Its length in bytes.
    pub size: u64,
    /// How many chunks it is stored in (0: it lives inside its record).
    pub chunks: u64,
    /// How many packs hold them.
    pub packs: u64,
    /// Hex of the keyed content hash: equal for equal content within a vault and
    /// key generation (a revocation starts a new one).
    pub content_hash: String,
}

#[pymethods]
impl FileInfo {
    fn __repr__(&self) -> String {
        format!(
            "FileInfo(size={}, chunks={}, packs={}, content_hash='{}')",
            self.size, self.chunks, self.packs, self.content_hash
        )
    }
}

impl From<bucketsync::FileInfo> for FileInfo {
    fn from(i: bucketsync::FileInfo) -> Self {
        FileInfo {
            size: i.size,
            chunks: i.chunks,
            packs: i.packs,
            content_hash: i.content_hash,
        }
    }
}

/// What stops an operation: the first exception that stopped it (a callback's, a file
/// object's, Ctrl-C), which is what it raises whatever the core made of it, or its cancel (the
/// core's, which the asyncio side sets). Noting an exception cancels it too.
#[derive(Default)]
pub struct Stop {
    raised: Mutex<Option<PyErr>>,
    cancel: Cancel,
}

impl Stop {
    /// A stop cancelled through `cancel` as well, when given.
    pub fn new(cancel: Option<Cancel>) -> Stop {
        Stop {
            raised: Mutex::default(),
            cancel: cancel.unwrap_or_default(),
        }
    }

    /// Keeps `e` unless an earlier exception is kept already, and cancels the operation.
    pub fn note(&self, e: PyErr) {
        self.raised
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(e);
        self.cancel.cancel();
    }

    pub fn is_set(&self) -> bool {
        self.cancel.is_cancelled()
    }

    pub fn take(&self) -> Option<PyErr> {
        self.raised.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// What the operation runs through (`Vault::run`).
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }
}

/// The cancel of one operation run on a worker thread for asyncio (`bucketsync._aio`):
/// `set()` stops it at once, from any thread. It reads as the `threading.Event` it replaces.
#[pyclass(module = "bucketsync", name = "_Cancel", frozen)]
#[derive(Default)]
pub struct PyCancel(pub Cancel);

#[pymethods]
impl PyCancel {
    #[new]
    fn new() -> Self {
        PyCancel::default()
    }

    fn set(&self) {
        self.0.cancel();
    }

    fn is_set(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// A source or sink that stops once an exception is noted, and lets the runtime check for
/// Ctrl-C and cancels after each piece (a folder store answers at once and never yields).
pub struct Checked<'a, T> {
    pub inner: T,
    stop: &'a Stop,
}

impl<'a, T> Checked<'a, T> {
    pub fn new(inner: T, stop: &'a Stop) -> Self {
        Checked { inner, stop }
    }
}

impl<S: Source> Source for Checked<'_, S> {
    async fn read(&mut self, buf: &mut [u8]) -> bucketsync::Result<usize> {
        if self.stop.is_set() {
            return Err(bucketsync::Error::Cancelled);
        }
        let n = self.inner.read(buf).await?;
        tokio::task::yield_now().await;
        Ok(n)
    }

    fn len_hint(&self) -> Option<u64> {
        self.inner.len_hint()
    }

    fn declared_len(&self) -> Option<u64> {
        self.inner.declared_len()
    }
}

impl<K: Sink> Sink for Checked<'_, K> {
    async fn write(&mut self, data: &[u8]) -> bucketsync::Result<()> {
        if self.stop.is_set() {
            return Err(bucketsync::Error::Cancelled);
        }
        self.inner.write(data).await?;
        tokio::task::yield_now().await;
        Ok(())
    }
}

/// What `path_or_file` is.
pub enum Target<'py> {
    Path(PathBuf),
    Object(Bound<'py, PyAny>),
}

impl<'py> Target<'py> {
    /// A str or os.PathLike is a path; anything with `method` (read or write) a file object.
    pub fn of(obj: &Bound<'py, PyAny>, method: &str) -> PyResult<Self> {
        if obj.is_instance_of::<PyString>() || obj.hasattr("__fspath__")? {
            return Ok(Target::Path(obj.extract()?));
        }
        if obj.hasattr(method)? {
            return Ok(Target::Object(obj.clone()));
        }
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "path_or_file must be a path (str or os.PathLike) or a binary file object with {method}(), not {}",
            obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        )))
    }
}

/// What is left to read of a seekable file object (its position is kept), else None.
///
/// # Errors
/// When the object cannot seek back to where it was.
pub fn remaining_len(file: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    let here = file
        .call_method0("seekable")
        .and_then(|s| s.is_truthy())
        .and_then(|seekable| {
            seekable
                .then(|| file.call_method0("tell")?.extract::<u64>())
                .transpose()
        });
    let Ok(Some(here)) = here else {
        return Ok(None);
    };
    let end = file
        .call_method1("seek", (0, 2))
        .and_then(|_| file.call_method0("tell")?.extract::<u64>());
    file.call_method1("seek", (here, 0))?;
    Ok(end.ok().and_then(|end| end.checked_sub(here)))
}

/// `std::io::Read` over a Python binary file object: `read(n)` with the GIL held, one call at
/// a time. What it raises is noted in `stop` (and raised by the operation).
pub struct PyReader<'a> {
    pub file: PyObject,
    pub stop: &'a Stop,
}

impl io::Read for PyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Python::with_gil(|py| {
            let data = self.file.call_method1(py, "read", (buf.len(),));
            match data.and_then(|d| copy_read(d.bind(py), buf)) {
                Ok(n) => Ok(n),
                Err(e) => {
                    self.stop.note(e);
                    Err(io::Error::other("the file object raised"))
                }
            }
        })
    }
}

/// Copies what `read(len(buf))` returned into `buf`.
fn copy_read(data: &Bound<'_, PyAny>, buf: &mut [u8]) -> PyResult<usize> {
    let owned;
    let bytes: &[u8] = if let Ok(b) = data.downcast::<PyBytes>() {
        b.as_bytes()
    } else if let Ok(b) = data.downcast::<PyByteArray>() {
        owned = b.to_vec();
        &owned
    } else if data.is_instance_of::<PyMemoryView>() {
        owned = data.call_method0("tobytes")?.extract()?;
        &owned
    } else {
        let what = if data.is_instance_of::<PyString>() {
            "str: open the file in binary mode ('rb')".to_owned()
        } else {
            data.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        };
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "the file object's read() returned {what}, not bytes"
        )));
    };
    let Some(target) = buf.get_mut(..bytes.len()) else {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "the file object's read({}) returned {} bytes",
            buf.len(),
            bytes.len()
        )));
    };
    target.copy_from_slice(bytes);
    Ok(bytes.len())
}

/// `std::io::Write` over a Python binary file object: `write(bytes)` with the GIL held. What
/// it raises is noted in `stop` (and raised by the operation).
pub struct PyWriter<'a> {
    pub file: PyObject,
    pub stop: &'a Stop,
}

impl io::Write for PyWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Python::with_gil(|py| {
            let written = self
                .file
                .call_method1(py, "write", (PyBytes::new(py, data),))
                .and_then(|n| n.extract::<Option<usize>>(py));
            match written {
                // None: an object that does not count (raw streams return None only when
                // non-blocking and full, which write_all then reports).
                Ok(n) => Ok(n.unwrap_or(data.len()).min(data.len())),
                Err(e) => {
                    self.stop.note(e);
                    Err(io::Error::other("the file object raised"))
                }
            }
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
