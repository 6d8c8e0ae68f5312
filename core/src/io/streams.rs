//! The ends of a file transfer: a [`Source`] a stored file's bytes come from, a [`Sink`] a
//! read file's bytes go to, and the [`PartialTarget`] a file read to a path is written to
//! until it is whole, on any host (the one on this machine is `partial_file`'s; Node's comes
//! through the npm package).

use std::future::Future;

use crate::error::{Error, Result};

/// Where a stored file's bytes come from.
pub trait Source {
    /// Reads up to `buf.len()` bytes into `buf`; 0 at the end.
    fn read(&mut self, buf: &mut [u8]) -> impl Future<Output = Result<usize>>;

    /// The total length, when known (for progress).
    fn len_hint(&self) -> Option<u64> {
        None
    }

    /// The length the source promises, when it makes a promise (an app's stream given with
    /// its size): a put whose source ends before it or gives more fails, storing nothing, so
    /// a stream cut short is never stored as the whole file. `None` (the default): whatever
    /// the source gives is the file.
    fn declared_len(&self) -> Option<u64> {
        None
    }
}

/// Where a read file's bytes go.
pub trait Sink {
    /// Takes the next bytes.
    fn write(&mut self, data: &[u8]) -> impl Future<Output = Result<()>>;
}

/// A [`Source`] over anything [`std::io::Read`] (a file, a cursor).
#[derive(Debug)]
pub struct ReadSource<R> {
    reader: R,
    len: Option<u64>,
}

impl<R: std::io::Read> ReadSource<R> {
    /// Reads from `reader`, which holds `len` bytes if known.
    pub fn new(reader: R, len: Option<u64>) -> Self {
        ReadSource { reader, len }
    }
}

impl ReadSource<std::fs::File> {
    /// Opens the file at `path`, its length taken as it is now.
    ///
    /// # Errors
    /// `Config` ("cannot read PATH: why") when it cannot be opened or its length read.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Self> {
        let opened = std::fs::File::open(path).and_then(|f| Ok((f.metadata()?.len(), f)));
        match opened {
            Ok((len, file)) => Ok(ReadSource::new(file, Some(len))),
            Err(e) => Err(Error::Config(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }
}

impl<R: std::io::Read> Source for ReadSource<R> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match self.reader.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Config(format!("reading the file failed: {e}"))),
            }
        }
    }

    fn len_hint(&self) -> Option<u64> {
        self.len
    }
}

/// A [`Sink`] over anything [`std::io::Write`].
#[derive(Debug)]
pub struct WriteSink<W>(pub W);

impl<W: std::io::Write> Sink for WriteSink<W> {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.0
            .write_all(data)
            .map_err(|e| Error::Config(format!("writing the file failed: {e}")))
    }
}

/// Where a file read to a path goes until it is whole: a partial file beside the path,
/// named by [`partial_name`], as the host keeps it. [`Session::get_file_through`](crate::session::Session::get_file_through) decides what
/// happens to it (the same on every platform): what it holds is checked and kept up to the
/// first chunk that fails, the rest is fetched and written after it, and once the whole was
/// read and checked it is put in place; a failure that a later read cannot resume from (not a
/// network failure, a timeout or a cancel) discards it.
///
/// The file's bytes go to it as to any [`Sink`], after [`PartialTarget::cut`].
pub trait PartialTarget: Sink {
    /// Reads what the partial file holds, on from where the last call stopped (its start at
    /// first): 0 at its end.
    fn read(&mut self, buf: &mut [u8]) -> impl Future<Output = Result<usize>>;
    /// Cuts it to `len` bytes: the writes go on from there.
    fn cut(&mut self, len: u64) -> impl Future<Output = Result<()>>;
    /// The whole file was written and checked: put it in place (made durable first).
    fn commit(&mut self) -> impl Future<Output = Result<()>>;
    /// Removes it: no later read can resume from it.
    fn discard(&mut self) -> impl Future<Output = ()>;
}

/// The name of the partial file of a read of one version of a file (`tag`:
/// [`Download::resume_tag`](crate::transfer::Download::resume_tag)) to a file named `name`:
/// `.<name>.<tag>.part`, beside it.
pub fn partial_name(name: &str, tag: &str) -> String {
    format!(".{name}.{tag}.part")
}
