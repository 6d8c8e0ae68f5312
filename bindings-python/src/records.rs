//! `Vault.export_records` and `Vault.import_records`: what they report, and the JSON Lines
//! moved to and from a path or a Python file object (text or binary).

use std::io::{BufReader, BufWriter};

use bucketsync::session::Session;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};

use crate::errors::to_py;
use crate::files::Target;

/// What one `Vault.export_records` wrote.
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct ExportReport {
    /// Lines written: one per key (deleted ones included) and, with history=True, one per
    /// earlier version.
    pub lines: u64,
    /// Of them, keys whose current version is a deletion.
    pub deleted: u64,
    /// Of them, earlier versions ("history": true).
    pub history: u64,
    /// Files (put_file) left out: their records point at chunks only this vault can read.
    pub files: u64,
}

#[pymethods]
impl ExportReport {
    fn __repr__(&self) -> String {
        format!(
            "ExportReport(lines={}, deleted={}, history={}, files={})",
            self.lines, self.deleted, self.history, self.files
        )
    }
}

impl From<bucketsync::export::ExportReport> for ExportReport {
    fn from(r: bucketsync::export::ExportReport) -> Self {
        ExportReport {
            lines: r.lines,
            deleted: r.deleted,
            history: r.history,
            files: r.files,
        }
    }
}

/// What one `Vault.import_records` did, line by line (blank lines not counted).
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct ImportReport {
    /// Lines read.
    pub lines: u64,
    /// Keys set to the line's value.
    pub imported: u64,
    /// Keys deleted by a line that is a deletion.
    pub deleted: u64,
    /// Lines that needed no change (the key holds that value, or is absent for a deletion).
    pub unchanged: u64,
    /// Lines left out because the vault, or a later line, holds a version at least as new.
    pub older: u64,
    /// Earlier versions ("history": true), never written.
    pub history: u64,
}

#[pymethods]
impl ImportReport {
    fn __repr__(&self) -> String {
        format!(
            "ImportReport(lines={}, imported={}, deleted={}, unchanged={}, older={}, history={})",
            self.lines, self.imported, self.deleted, self.unchanged, self.older, self.history
        )
    }
}

impl From<bucketsync::export::ImportReport> for ImportReport {
    fn from(r: bucketsync::export::ImportReport) -> Self {
        ImportReport {
            lines: r.lines,
            imported: r.imported,
            deleted: r.deleted,
            unchanged: r.unchanged,
            older: r.older,
            history: r.history,
        }
    }
}

/// Exports `session`'s records to a path (created or replaced) or a file object: a text one
/// (an `io.TextIOBase`) gets str, any other bytes.
pub fn export_to(
    py: Python<'_>,
    session: &Session,
    path_or_file: &Bound<'_, PyAny>,
    history: bool,
) -> PyResult<ExportReport> {
    let report = match Target::of(path_or_file, "write")? {
        Target::Path(path) => {
            let file = std::fs::File::create(&path)?;
            py.allow_threads(|| {
                let mut out = BufWriter::new(file);
                let report = session.export_records(&mut out, history)?;
                out.into_inner()
                    .map_err(|e| e.into_error())
                    .and_then(|f| f.sync_all())
                    .map_err(|e| {
                        bucketsync::Error::Config(format!("writing {} failed: {e}", path.display()))
                    })?;
                Ok(report)
            })
            .map_err(to_py)?
        }
        Target::Object(file) => {
            // The lines are made with the GIL released, then handed to the object at once.
            let mut lines = Vec::new();
            let report = py
                .allow_threads(|| session.export_records(&mut lines, history))
                .map_err(to_py)?;
            let text_io = py.import("io")?.getattr("TextIOBase")?;
            if file.is_instance(&text_io)? {
                let text = String::from_utf8_lossy(&lines);
                file.call_method1("write", (PyString::new(py, &text),))?;
            } else {
                file.call_method1("write", (PyBytes::new(py, &lines),))?;
            }
            report
        }
    };
    Ok(report.into())
}

/// Imports JSON Lines from a path or a file object whose `read()` returns str or bytes.
pub fn import_from(
    py: Python<'_>,
    session: &Session,
    path_or_file: &Bound<'_, PyAny>,
) -> PyResult<ImportReport> {
    let report = match Target::of(path_or_file, "read")? {
        Target::Path(path) => {
            let file = std::fs::File::open(&path)?;
            py.allow_threads(|| session.import_records(BufReader::new(file)))
        }
        Target::Object(file) => {
            let data = file.call_method0("read")?;
            let bytes: Vec<u8> = if let Ok(text) = data.downcast::<PyString>() {
                text.to_cow()?.as_bytes().to_vec()
            } else if let Ok(b) = data.downcast::<PyBytes>() {
                b.as_bytes().to_vec()
            } else if let Ok(b) = data.downcast::<PyByteArray>() {
                b.to_vec()
            } else if data.is_instance_of::<PyMemoryView>() {
                data.call_method0("tobytes")?.extract()?
            } else {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "the file object's read() returned {}, not str or bytes",
                    data.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                )));
            };
            py.allow_threads(|| session.import_records(bytes.as_slice()))
        }
    };
    report.map(ImportReport::from).map_err(to_py)
}
