//! What `Vault.backup` and `Vault.restore` did, as Python objects.

use pyo3::prelude::*;

use crate::errors::exception;

/// What one `Vault.backup` did (or, with dry_run, would do).
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct BackupReport {
    /// The backup's name (its records are under "backup/<name>/").
    pub name: String,
    /// Files stored (new or changed).
    pub files_stored: u64,
    /// Of those, files new to the backup.
    pub files_new: u64,
    /// Of those, files changed since the backup last saw them.
    pub files_changed: u64,
    /// Files whose size, time and permissions matched their entry: no request.
    pub files_unchanged: u64,
    /// Paths gone from the folder whose entries were deleted (delete=True).
    pub deleted: u64,
    /// Folders in the tree.
    pub dirs: u64,
    /// Links in the tree (stored as links, never followed).
    pub symlinks: u64,
    /// Bytes of the files stored.
    pub bytes_read: u64,
    /// Chunks sent.
    pub chunks_uploaded: u64,
    /// Chunks the vault held already: not sent again.
    pub chunks_reused: u64,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Packs the new chunks went into.
    pub packs: u64,
    /// Requests made to store the files.
    pub requests: u64,
    /// (path, bucketsync.Error) for each path that could not be backed up.
    pub errors: Vec<(String, PyObject)>,
    /// Seconds it took.
    pub seconds: f64,
    /// True when nothing was stored: the counts say what a backup would do.
    pub dry_run: bool,
}

#[pymethods]
impl BackupReport {
    fn __repr__(&self) -> String {
        format!(
            "BackupReport(name={:?}, files_stored={}, files_new={}, files_changed={}, files_unchanged={}, deleted={}, dirs={}, symlinks={}, bytes_read={}, chunks_uploaded={}, chunks_reused={}, bytes_sent={}, packs={}, requests={}, errors={}, dry_run={})",
            self.name, self.files_stored, self.files_new, self.files_changed,
            self.files_unchanged, self.deleted, self.dirs, self.symlinks, self.bytes_read,
            self.chunks_uploaded, self.chunks_reused, self.bytes_sent, self.packs,
            self.requests, self.errors.len(), if self.dry_run { "True" } else { "False" }
        )
    }
}

fn errors(
    py: Python<'_>,
    errors: &[(String, bucketsync::Error)],
) -> PyResult<Vec<(String, PyObject)>> {
    errors
        .iter()
        .map(|(path, e)| Ok((path.clone(), exception(py, e, None)?)))
        .collect()
}

impl BackupReport {
    pub fn new(
        py: Python<'_>,
        name: String,
        r: &bucketsync::backup::BackupReport,
    ) -> PyResult<Self> {
        Ok(BackupReport {
            name,
            files_stored: r.files_stored,
            files_new: r.files_new,
            files_changed: r.files_changed,
            files_unchanged: r.files_unchanged,
            deleted: r.deleted,
            dirs: r.dirs,
            symlinks: r.symlinks,
            bytes_read: r.bytes_read,
            chunks_uploaded: r.chunks_uploaded,
            chunks_reused: r.chunks_reused,
            bytes_sent: r.bytes_sent,
            packs: r.packs,
            requests: r.requests,
            errors: errors(py, &r.errors)?,
            seconds: r.duration.as_secs_f64(),
            dry_run: r.dry_run,
        })
    }
}

/// What one `Vault.restore` did (or, with dry_run, would do).
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct RestoreReport {
    /// The backup restored.
    pub name: String,
    /// Files written.
    pub files_written: u64,
    /// Files already there with the entry's size and time: not fetched.
    pub files_unchanged: u64,
    /// Paths of local files newer than the backup, kept (force=True overwrites them).
    pub kept_newer: Vec<String>,
    /// Folders made or found.
    pub dirs: u64,
    /// Links made as the backup holds them.
    pub symlinks: u64,
    /// Bytes of the files written.
    pub bytes_written: u64,
    /// (path, bucketsync.Error) for each entry refused or failed.
    pub errors: Vec<(String, PyObject)>,
    /// Seconds it took.
    pub seconds: f64,
    /// True when nothing was written: the counts say what a restore would do.
    pub dry_run: bool,
}

#[pymethods]
impl RestoreReport {
    fn __repr__(&self) -> String {
        format!(
            "RestoreReport(name={:?}, files_written={}, files_unchanged={}, kept_newer={}, dirs={}, symlinks={}, bytes_written={}, errors={}, dry_run={})",
            self.name, self.files_written, self.files_unchanged, self.kept_newer.len(),
            self.dirs, self.symlinks, self.bytes_written, self.errors.len(),
            if self.dry_run { "True" } else { "False" }
        )
    }
}

impl RestoreReport {
    pub fn new(
        py: Python<'_>,
        name: String,
        r: &bucketsync::backup::RestoreReport,
    ) -> PyResult<Self> {
        Ok(RestoreReport {
            name,
            files_written: r.files_written,
            files_unchanged: r.files_unchanged,
            kept_newer: r.kept_newer.clone(),
            dirs: r.dirs,
            symlinks: r.symlinks,
            bytes_written: r.bytes_written,
            errors: errors(py, &r.errors)?,
            seconds: r.duration.as_secs_f64(),
            dry_run: r.dry_run,
        })
    }
}

/// What one `Vault.sync_folder` did.
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct FolderReport {
    /// The folder's name in the vault (its records are under "folder/<name>/").
    pub name: String,
    /// Paths sent to the vault (new or changed here).
    pub uploaded: u64,
    /// Paths written here from the vault.
    pub downloaded: u64,
    /// Paths deleted here because they were deleted elsewhere.
    pub deleted_here: u64,
    /// Paths deleted in the vault because they were deleted here.
    pub deleted_there: u64,
    /// The conflict copies made (paths in the folder).
    pub conflicts: Vec<String>,
    /// (path, change) for each path the sync changed (or, dry, would change), in path order:
    /// "upload", "download", "delete-here", "delete-there" or "conflict".
    pub changes: Vec<(String, &'static str)>,
    /// Request body bytes sent by file transfers.
    pub bytes_sent: u64,
    /// (path, bucketsync.Error) for each path that could not be synced.
    pub errors: Vec<(String, PyObject)>,
    /// Seconds it took.
    pub seconds: f64,
    /// Nothing was changed: the counts, changes and conflicts are what would have been.
    pub dry_run: bool,
}

#[pymethods]
impl FolderReport {
    fn __repr__(&self) -> String {
        format!(
            "FolderReport(name={:?}, uploaded={}, downloaded={}, deleted_here={}, deleted_there={}, conflicts={}, errors={}, dry_run={})",
            self.name, self.uploaded, self.downloaded, self.deleted_here, self.deleted_there,
            self.conflicts.len(), self.errors.len(), if self.dry_run { "True" } else { "False" }
        )
    }
}

impl FolderReport {
    pub fn new(
        py: Python<'_>,
        name: String,
        r: &bucketsync::folder_sync::FolderReport,
    ) -> PyResult<Self> {
        Ok(FolderReport {
            name,
            uploaded: r.uploaded,
            downloaded: r.downloaded,
            deleted_here: r.deleted_here,
            deleted_there: r.deleted_there,
            conflicts: r.conflicts.clone(),
            changes: r
                .changes
                .iter()
                .map(|(path, change)| (path.clone(), change.as_str()))
                .collect(),
            bytes_sent: r.bytes_sent,
            errors: errors(py, &r.errors)?,
            seconds: r.duration.as_secs_f64(),
            dry_run: r.dry_run,
        })
    }
}

/// What one `Vault.verify` found.
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct VerifyReport {
    /// The backup's (or synced folder's) name.
    pub name: String,
    /// Files read back whole and found as stored.
    pub files_ok: u64,
    /// Files not drawn for this run's sample.
    pub files_skipped: u64,
    /// Bytes of the files read back.
    pub bytes_checked: u64,
    /// (path, bucketsync.Error) for each file that could not be read back as stored
    /// (CorruptError: a chunk or the whole file failed its check; NotFoundError: a pack is gone).
    pub damaged: Vec<(String, PyObject)>,
    /// Seconds it took.
    pub seconds: f64,
}

#[pymethods]
impl VerifyReport {
    fn __repr__(&self) -> String {
        format!(
            "VerifyReport(name={:?}, files_ok={}, files_skipped={}, damaged={})",
            self.name,
            self.files_ok,
            self.files_skipped,
            self.damaged.len()
        )
    }
}

impl VerifyReport {
    pub fn new(
        py: Python<'_>,
        name: String,
        r: &bucketsync::verify::VerifyReport,
    ) -> PyResult<Self> {
        Ok(VerifyReport {
            name,
            files_ok: r.files_ok,
            files_skipped: r.files_skipped,
            bytes_checked: r.bytes_checked,
            damaged: errors(py, &r.damaged)?,
            seconds: r.duration.as_secs_f64(),
        })
    }
}
