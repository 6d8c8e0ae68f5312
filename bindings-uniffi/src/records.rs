//! Export and import of a vault's records as JSON Lines (the line format is in the core's
//! `bucketsync::export`), to and from a path or a string.

use std::io::{BufReader, BufWriter};

use bucketsync::Error;

use crate::{BucketsyncError, Vault};

/// What one export wrote.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ExportReport {
    /// Lines written: one per key (deleted ones included) and, with `history`, one per
    /// earlier version.
    pub lines: u64,
    /// Of them, keys whose current version is a deletion.
    pub deleted: u64,
    /// Of them, earlier versions (`"history": true`).
    pub history: u64,
    /// Files (`put_file`) left out: their records point at chunks only this vault can read.
    pub files: u64,
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

/// What one import did, line by line (blank lines not counted).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
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
    /// Earlier versions (`"history": true`), never written.
    pub history: u64,
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

#[uniffi::export]
impl Vault {
    /// Writes every record of this replica to the file at `path` (created or replaced) as JSON
    /// Lines: one key a line in key order, deleted keys as deletions, each line with `key` (or
    /// `key_base64`), `value` (or `value_base64`), `deleted`, `time`, `counter` and `device`.
    /// With `history`, each key's earlier versions kept here follow it, newest first, marked
    /// `"history": true`. Files are left out (counted in the report). Reads local state only;
    /// it blocks, so call it off the main thread for a large vault.
    #[uniffi::method(default(history = false))]
    pub fn export_records(
        &self,
        path: String,
        history: bool,
    ) -> Result<ExportReport, BucketsyncError> {
        let file = std::fs::File::create(&path)
            .map_err(|e| Error::Config(format!("cannot write {path}: {e}")))?;
        let mut out = BufWriter::new(file);
        let report = self.session.export_records(&mut out, history)?;
        out.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::Config(format!("writing {path} failed: {e}")))?;
        Ok(report.into())
    }

    /// The export of `export_records` as a string.
    #[uniffi::method(default(history = false))]
    pub fn export_records_text(&self, history: bool) -> Result<String, BucketsyncError> {
        let mut out = Vec::new();
        self.session.export_records(&mut out, history)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Reads JSON Lines (an export, or lines made by another tool) from the file at `path` and
    /// merges them in: per key, the newest line is written as a local put or delete (pushed by
    /// the next sync) unless the vault holds a version at least as new, or that value already;
    /// earlier versions are never written, and importing the same lines twice changes nothing.
    /// A line without `time` counts as written now. The whole input is read first: a
    /// malformed line is a `Config` error naming it ("line 3 of the import …"), and nothing
    /// is imported. Blocks; durable when it returns.
    pub fn import_records(&self, path: String) -> Result<ImportReport, BucketsyncError> {
        let file = std::fs::File::open(&path)
            .map_err(|e| Error::Config(format!("cannot read {path}: {e}")))?;
        Ok(self.session.import_records(BufReader::new(file))?.into())
    }

    /// `import_records` from a string holding the lines.
    pub fn import_records_text(&self, text: String) -> Result<ImportReport, BucketsyncError> {
        Ok(self.session.import_records(text.as_bytes())?.into())
    }
}
