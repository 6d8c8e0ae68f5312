//! Folders: backup (one way, the folder is the source), restore, and two-way folder sync.
//! The rules are the core's (`bucketsync::backup`, `bucketsync::folder_sync`); this module
//! only translates options, progress and reports.

use std::path::Path;
use std::sync::Arc;

use bucketsync::driver;

use crate::{BucketsyncError, FileProgress, Vault};

/// Told how a backup, restore or folder sync goes: the file `path` (relative to the folder)
/// is this far (Kotlin: implement the interface; Swift: the protocol). Called on the
/// transfer's thread: keep it short.
#[uniffi::export(with_foreign)]
pub trait FolderListener: Send + Sync {
    fn on_progress(&self, path: String, progress: FileProgress);
}

/// A path that could not be backed up, restored or synced, and why (the rest went on).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PathError {
    /// Relative to the folder.
    pub path: String,
    /// The error's category (`config`, `not-found`, `corrupt`, ...).
    pub category: String,
    pub message: String,
}

fn path_errors(errors: &[(String, bucketsync::Error)]) -> Vec<PathError> {
    errors
        .iter()
        .map(|(path, e)| PathError {
            path: path.clone(),
            category: e.category().as_str().to_owned(),
            message: e.to_string(),
        })
        .collect()
}

/// How to back a folder up.
#[derive(Clone, Debug, Default, uniffi::Record)]
pub struct BackupOptions {
    /// Glob patterns of paths to leave out (`*.tmp`, `node_modules`: a folder leaves out all below it), matched
    /// against the path below the folder and against the file name.
    #[uniffi(default = [])]
    pub exclude: Vec<String>,
    /// Back up names starting with `.` too.
    #[uniffi(default = false)]
    pub include_hidden: bool,
    /// Change nothing: the report says what would be done.
    #[uniffi(default = false)]
    pub dry_run: bool,
    /// Delete from the backup what is gone from the folder (never below a folder that could
    /// not be read).
    #[uniffi(default = false)]
    pub delete: bool,
}

/// What a backup did (or, dry, would do).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct BackupReport {
    /// The backup's name in the vault.
    pub name: String,
    /// Files stored (new or changed).
    pub files_stored: u64,
    pub files_new: u64,
    pub files_changed: u64,
    /// Files whose size, time and permissions matched the backup: no request.
    pub files_unchanged: u64,
    /// Paths gone from the folder whose entries were deleted.
    pub deleted: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes_read: u64,
    pub chunks_uploaded: u64,
    /// Chunks the vault held already, not sent again.
    pub chunks_reused: u64,
    pub bytes_sent: u64,
    pub packs: u64,
    pub requests: u64,
    pub errors: Vec<PathError>,
    pub seconds: f64,
    pub dry_run: bool,
}

/// How to restore a backup.
#[derive(Clone, Debug, Default, uniffi::Record)]
pub struct RestoreOptions {
    /// Restore the tree as it was at this time (milliseconds since 1970), as far as the history
    /// kept reaches; null: as it is.
    #[uniffi(default = None)]
    pub at_ms: Option<u64>,
    /// Change nothing: the report says what would be done.
    #[uniffi(default = false)]
    pub dry_run: bool,
    /// Overwrite local files newer than the backup's.
    #[uniffi(default = false)]
    pub force: bool,
    /// Restore only what these glob patterns match (a path, a name, `*.jpg`; a folder brings
    /// what lies below it). Empty: everything.
    #[uniffi(default = [])]
    pub only: Vec<String>,
    /// The name is a folder synced both ways (`syncFolder`), not a backup: with `at_ms`, a
    /// file deleted or overwritten there comes back as it was. The name must be given.
    #[uniffi(default = false)]
    pub synced_folder: bool,
}

/// What a restore did (or, dry, would do).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RestoreReport {
    /// The backup's name in the vault.
    pub name: String,
    pub files_written: u64,
    /// Files already there with the backup's size and time: not fetched.
    pub files_unchanged: u64,
    /// Local files newer than the backup's, kept (see `force`).
    pub kept_newer: Vec<String>,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes_written: u64,
    pub errors: Vec<PathError>,
    pub seconds: f64,
    pub dry_run: bool,
}

/// What one two-way folder sync did.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FolderReport {
    /// The folder's name in the vault.
    pub name: String,
    /// Paths sent to the vault (new or changed here).
    pub uploaded: u64,
    /// Paths written here from the vault.
    pub downloaded: u64,
    /// Paths deleted here because they were deleted elsewhere.
    pub deleted_here: u64,
    /// Paths deleted in the vault because they were deleted here.
    pub deleted_there: u64,
    /// The conflict copies made (`name (conflict DEVICE DATE).ext`, paths in the folder).
    pub conflicts: Vec<String>,
    /// Each path the sync changed (or, dry, would change), in path order.
    pub changes: Vec<PathChange>,
    pub bytes_sent: u64,
    pub chunks_uploaded: u64,
    pub chunks_reused: u64,
    pub errors: Vec<PathError>,
    pub seconds: f64,
    /// Nothing was changed: the counts, changes and conflicts are what would have been.
    pub dry_run: bool,
}

/// A path a folder sync changes, and how: `upload`, `download`, `delete-here`,
/// `delete-there` or `conflict`.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PathChange {
    pub path: String,
    pub change: String,
}

/// What a `verify` found.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct VerifyReport {
    pub name: String,
    /// Files read back whole and found as stored.
    pub files_ok: u64,
    /// Files not drawn for this run's sample.
    pub files_skipped: u64,
    pub bytes_checked: u64,
    /// The files that could not be read back as stored (`corrupt`: a chunk or the whole file
    /// failed its check; `not-found`: a pack is gone).
    pub damaged: Vec<PathError>,
    pub seconds: f64,
}

/// The folder's name as the core gives it when none is given (its last component).
fn name_or_default(name: Option<String>, dir: &Path) -> Result<String, BucketsyncError> {
    match name {
        Some(name) => Ok(name),
        None => Ok(bucketsync::backup::default_name(dir)?),
    }
}

fn progress_to(
    listener: Option<Arc<dyn FolderListener>>,
) -> impl FnMut(&str, bucketsync::files::FileProgress) {
    move |path, p| {
        if let Some(listener) = &listener {
            listener.on_progress(path.to_owned(), p.into());
        }
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Vault {
    /// Backs the folder at `folder` up as the backup `name` (default: the folder's name; its
    /// records are under `backup/<name>/`). One way: the folder is the source. New and
    /// changed files are stored (only chunks the vault lacks are sent); a file whose size,
    /// time and permissions match the backup costs no request. Times, permissions, links (as
    /// links) and empty folders are kept. A path that cannot be read is in the report's
    /// errors, and the rest goes on. The records are journaled: `sync` publishes them.
    /// `cancel_transfer` (or cancelling the coroutine or task) stops it with `Conflict`; what
    /// was stored stays, and the next backup skips it. `Config` when the folder is missing or
    /// not a folder, or a pattern is bad.
    #[uniffi::method(default(name = None, options = None, listener = None))]
    pub async fn backup_folder(
        &self,
        folder: String,
        name: Option<String>,
        options: Option<BackupOptions>,
        listener: Option<Arc<dyn FolderListener>>,
    ) -> Result<BackupReport, BucketsyncError> {
        let dir = Path::new(&folder);
        let name = name_or_default(name, dir)?;
        let o = options.unwrap_or_default();
        let options = bucketsync::backup::BackupOptions {
            exclude: o.exclude,
            include_hidden: o.include_hidden,
            dry_run: o.dry_run,
            delete: o.delete,
        };
        let r = self
            .session
            .backup(
                dir,
                &name,
                &options,
                &*self.transport,
                driver::DEFAULT_CONCURRENCY,
                progress_to(listener),
            )
            .await?;
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
            errors: path_errors(&r.errors),
            seconds: r.duration.as_secs_f64(),
            dry_run: r.dry_run,
        })
    }

    /// Restores the backup `name` (default: the vault's only backup) into the folder `to`
    /// (made if missing). Nothing is written outside `to`: an entry whose path climbs out, is
    /// absolute, passes through a link on disk or lies below a link of the backup is refused
    /// (in the report's errors). Each file is renamed into place once whole; a local file newer
    /// than the backup's is kept (in `kept_newer`) unless `force`. `Config` when the vault
    /// holds no backup of that name (or several and none is named).
    #[uniffi::method(default(name = None, options = None, listener = None))]
    pub async fn restore_folder(
        &self,
        to: String,
        name: Option<String>,
        options: Option<RestoreOptions>,
        listener: Option<Arc<dyn FolderListener>>,
    ) -> Result<RestoreReport, BucketsyncError> {
        let o = options.unwrap_or_default();
        let name = self
            .session
            .source_named(name.as_deref(), o.synced_folder)?;
        let options = bucketsync::backup::RestoreOptions {
            at_ms: o.at_ms,
            dry_run: o.dry_run,
            force: o.force,
            only: o.only,
            synced_folder: o.synced_folder,
        };
        let r = self
            .session
            .restore(
                &name,
                Path::new(&to),
                &options,
                &*self.transport,
                driver::DEFAULT_CONCURRENCY,
                progress_to(listener),
            )
            .await?;
        Ok(RestoreReport {
            name,
            files_written: r.files_written,
            files_unchanged: r.files_unchanged,
            kept_newer: r.kept_newer,
            dirs: r.dirs,
            symlinks: r.symlinks,
            bytes_written: r.bytes_written,
            errors: path_errors(&r.errors),
            seconds: r.duration.as_secs_f64(),
            dry_run: r.dry_run,
        })
    }

    /// Syncs the folder at `folder` both ways with the devices that sync it under the same
    /// `name` (default: the folder's name; records under `folder/<name>/`). Edits, new files
    /// and deletions go both ways; a file edited on two devices keeps both (the later edit
    /// keeps the name, the other becomes `name (conflict DEVICE DATE).ext` everywhere);
    /// renames send no content. It pulls before and pushes after. A missing folder is a
    /// `Config` error and deletes nothing; a folder never synced here only receives. A sync
    /// that would delete more than the vault's mass-deletion limit of the folder's files
    /// changes nothing and throws `Conflict` until `confirm_deletions`. `exclude`: glob
    /// patterns left out on both sides. `dry_run`: decide every path and change nothing; the
    /// report's `changes` list what would be done (the records are still pulled first).
    #[uniffi::method(default(name = None, exclude = [], listener = None, dry_run = false))]
    pub async fn sync_folder(
        &self,
        folder: String,
        name: Option<String>,
        exclude: Vec<String>,
        listener: Option<Arc<dyn FolderListener>>,
        dry_run: bool,
    ) -> Result<FolderReport, BucketsyncError> {
        let dir = Path::new(&folder);
        let name = name_or_default(name, dir)?;
        let r = self
            .session
            .sync_folder(
                dir,
                &name,
                &bucketsync::folder_sync::FolderOptions { exclude, dry_run },
                &*self.transport,
                driver::DEFAULT_CONCURRENCY,
                progress_to(listener),
            )
            .await?;
        Ok(FolderReport {
            name,
            uploaded: r.uploaded,
            downloaded: r.downloaded,
            deleted_here: r.deleted_here,
            deleted_there: r.deleted_there,
            conflicts: r.conflicts,
            changes: r
                .changes
                .iter()
                .map(|(path, change)| PathChange {
                    path: path.clone(),
                    change: change.as_str().to_owned(),
                })
                .collect(),
            bytes_sent: r.bytes_sent,
            chunks_uploaded: r.chunks_uploaded,
            chunks_reused: r.chunks_reused,
            errors: path_errors(&r.errors),
            seconds: r.duration.as_secs_f64(),
            dry_run: r.dry_run,
        })
    }

    /// Reads the files of the backup `name` (default: the vault's only backup; with
    /// `synced_folder`, a folder synced both ways, whose name must be given) back from the
    /// bucket and checks every chunk and each whole file, writing nothing. `sample_percent`
    /// (1 to 100) reads that share of the files, drawn at random each run. The report's
    /// `damaged` names each file that could not be read back as stored.
    #[uniffi::method(default(name = None, synced_folder = false, sample_percent = 100, listener = None))]
    pub async fn verify(
        &self,
        name: Option<String>,
        synced_folder: bool,
        sample_percent: u8,
        listener: Option<Arc<dyn FolderListener>>,
    ) -> Result<VerifyReport, BucketsyncError> {
        let name = self.session.source_named(name.as_deref(), synced_folder)?;
        let options = bucketsync::verify::VerifyOptions {
            synced_folder,
            sample_percent: sample_percent.into(),
        };
        let r = self
            .session
            .verify(
                &name,
                &options,
                &*self.transport,
                driver::DEFAULT_CONCURRENCY,
                progress_to(listener),
            )
            .await?;
        Ok(VerifyReport {
            name,
            files_ok: r.files_ok,
            files_skipped: r.files_skipped,
            bytes_checked: r.bytes_checked,
            damaged: path_errors(&r.damaged),
            seconds: r.duration.as_secs_f64(),
        })
    }

    /// The names of the backups in the vault, sorted.
    pub fn backups(&self) -> Result<Vec<String>, BucketsyncError> {
        Ok(self.session.backups()?)
    }
}
