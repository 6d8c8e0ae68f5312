//! A local folder backed up into the vault, and restored from it (one way: the folder is the
//! source of truth for a backup, the vault for a restore).
//!
//! Under a root prefix `R` of keys (say `backup/photos/`), each file, folder and symbolic link
//! of the tree has an **entry** record `R m/<path>` (what it is, its size, modification time and
//! permissions, a link's target; see [`Entry`]), and each regular file's bytes are a file
//! record `R f/<path>`, stored like any file (chunked, deduplicated, in packs). `<path>` is the
//! path below the folder, its components joined with `/`. Records sync, keep history and are
//! collected like any others; this module only decides which to write and reads them back.
//! The layout is specified in `docs/FORMAT.md` ("Folder backups").
//!
//! A backup is incremental: a file whose size, modification time and permissions match its
//! entry costs no request; a changed one is stored again, which sends only the chunks the
//! vault does not hold yet. A folder that cannot be read never turns into deletions: entries
//! are deleted (with `delete`) only below folders that were read whole.
//!
//! A restore never writes outside its target: entries whose path climbs out (`..`), is
//! absolute, holds a NUL, passes through a link on the disk, or lies below a link of the backup
//! are refused with an error naming the entry. Links come back as they were, whatever their
//! target (absolute, relative, dangling, outside the tree), as tar and restic restore them:
//! they are made last, and nothing is ever written through one. A local file newer than its
//! entry is kept unless `force`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::driver::Transport;
use crate::io::file_writers::{Durability, Stamp};
use crate::io::files::{FileBatch, FileProgress, ReadSource, Source};
use crate::io::partial_file::mtime_ms;
use crate::io::session::Session;
use crate::transfer::FileReport;

const ENTRY_MAGIC: &[u8; 4] = b"BKSM";
const ENTRY_VERSION: u8 = 1;
/// A deletion note's version byte: entries are still written as version 1, so that older
/// readers read every path that is there.
const DELETION_VERSION: u8 = 2;

/// What a path of a backed-up tree is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A regular file; its bytes are the file record `R f/<path>`.
    File,
    /// A folder (kept even when empty).
    Dir,
    /// A symbolic link, kept as a link.
    Symlink,
}

/// The entry record of one path: `"BKSM" ‖ 01 ‖ postcard(Entry)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// File, folder or link.
    pub kind: EntryKind,
    /// A file's length in bytes (0 for the others).
    pub size: u64,
    /// Last modification, in milliseconds since the Unix epoch (0 when unknown).
    pub mtime_ms: u64,
    /// Permission bits (`0o7777` at most; 0 when the platform has none).
    pub mode: u32,
    /// A link's target, as the link holds it (empty for the others).
    #[serde(with = "serde_bytes")]
    pub target: Vec<u8>,
    /// A file's content hash, as [`crate::FileInfo::content_hash`] gives it (empty for the
    /// others).
    pub hash: String,
    /// The content hash of the version this file replaced, as its writer knew it (empty for a
    /// new file and for the others): a two-way sync that finds a change not made from its own
    /// version knows the two were concurrent.
    pub parent: String,
}

impl Entry {
    /// The record value.
    pub fn encode(&self) -> Vec<u8> {
        encoded(ENTRY_VERSION, self)
    }
}

/// The note two-way folders leave at a path's entry record when they delete it, in place of
/// the entry: the version deleted, so that a device holding an edit that version did not
/// start from knows its edit was never seen by the deleting device.
/// `"BKSM" ‖ 02 ‖ postcard(Deletion)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    /// The content hash of the file deleted (empty for a folder or link).
    pub hash: String,
    /// The content hash of the version that file replaced, as its entry named it.
    pub parent: String,
    /// The versions before `parent` as the deleting device knew them, newest first, each the
    /// one the version before it in the list replaced (at most [`Deletion::MAX_EARLIER`]): a
    /// reader that never saw them still follows the deleted version's line.
    pub earlier: Vec<String>,
    /// Versions that earlier deletions of the path deleted, as the deleting device knew them
    /// (at most [`Deletion::MAX_EARLIER`]): the path was made again since, from another line,
    /// and a reader still holding one of them knows it was deleted knowingly.
    pub deleted_before: Vec<String>,
}

impl Deletion {
    /// The most versions a note lists in `earlier`, and in `deleted_before`.
    pub const MAX_EARLIER: usize = 8;

    /// The note for deleting `entry`, whose line goes on (before its parent) with `earlier`,
    /// at a path where `deleted_before` were deleted before.
    pub fn of(
        entry: &Entry,
        mut earlier: Vec<String>,
        mut deleted_before: Vec<String>,
    ) -> Deletion {
        earlier.truncate(Self::MAX_EARLIER);
        deleted_before.truncate(Self::MAX_EARLIER);
        Deletion {
            hash: entry.hash.clone(),
            parent: entry.parent.clone(),
            earlier,
            deleted_before,
        }
    }

    /// Each version the note names, with the one it replaced: `hash` replaced `parent`,
    /// `parent` the first of `earlier`, and so on.
    pub fn replaced(&self) -> impl Iterator<Item = (&str, &str)> {
        let line: Vec<&str> = [self.hash.as_str(), self.parent.as_str()]
            .into_iter()
            .chain(self.earlier.iter().map(String::as_str))
            .collect();
        (0..line.len() - 1).map(move |i| (line[i], line[i + 1]))
    }

    /// The record value.
    pub fn encode(&self) -> Vec<u8> {
        encoded(DELETION_VERSION, self)
    }
}

/// What an entry record holds: the path's entry, or the note that it was deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// The path is there.
    Entry(Entry),
    /// The path was deleted (by a two-way folder sync).
    Deleted(Deletion),
}

impl Stored {
    /// An entry record from its value.
    ///
    /// # Errors
    /// `Corrupt` when the value is not an entry or deletion of a version this build reads.
    pub fn decode(key: &str, value: &[u8]) -> Result<Stored> {
        let corrupt = |reason: &str| Error::corrupt(&format!("backup entry {key:?}"), reason);
        let rest = value
            .strip_prefix(ENTRY_MAGIC)
            .ok_or_else(|| corrupt("is not a backup entry"))?;
        match rest.split_first() {
            Some((&ENTRY_VERSION, body)) => crate::crypto::decode_exact(body)
                .map(Stored::Entry)
                .map_err(|e| corrupt(&e)),
            Some((&DELETION_VERSION, body)) => crate::crypto::decode_exact(body)
                .map(Stored::Deleted)
                .map_err(|e| corrupt(&e)),
            Some((version, _)) => Err(corrupt(&format!(
                "entry version {version} is not supported (this build reads 1 and 2)"
            ))),
            None => Err(corrupt("is empty")),
        }
    }

    /// The entry, when the path is there.
    pub fn entry(self) -> Option<Entry> {
        match self {
            Stored::Entry(entry) => Some(entry),
            Stored::Deleted(_) => None,
        }
    }
}

/// `"BKSM" ‖ version ‖ postcard(body)`.
fn encoded(version: u8, body: &impl Serialize) -> Vec<u8> {
    let mut out = ENTRY_MAGIC.to_vec();
    out.push(version);
    out.extend(postcard::to_allocvec(body).expect("postcard serializes into a Vec"));
    out
}

/// How to back a folder up.
#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    /// Glob patterns (`*.tmp`, `build/**`, `node_modules`) of paths to leave out, matched
    /// against the path below the folder and against the file name.
    pub exclude: Vec<String>,
    /// Back up names that start with `.` too.
    pub include_hidden: bool,
    /// Say what would be done, and do nothing.
    pub dry_run: bool,
    /// Delete the entries of paths that are gone from the folder.
    pub delete: bool,
}

/// What a backup did (or, dry, would do).
#[derive(Clone, Debug, Default)]
pub struct BackupReport {
    /// Files stored (new or changed).
    pub files_stored: u64,
    /// Of those, files the backup had no entry of.
    pub files_new: u64,
    /// Of those, files whose entry differed (size, time or permissions) or had no content.
    pub files_changed: u64,
    /// Files whose size, time and permissions matched their entry: no request.
    pub files_unchanged: u64,
    /// Paths gone from the folder whose entries were deleted.
    pub deleted: u64,
    /// Folders in the tree.
    pub dirs: u64,
    /// Links in the tree.
    pub symlinks: u64,
    /// Bytes of the files stored (read from disk).
    pub bytes_read: u64,
    /// Chunks sent.
    pub chunks_uploaded: u64,
    /// Chunks the vault held already, not sent again.
    pub chunks_reused: u64,
    /// Request body bytes sent.
    pub bytes_sent: u64,
    /// Packs the files' new chunks went into.
    pub packs: u64,
    /// Requests made to store the files (the sync that publishes them comes on top).
    pub requests: u64,
    /// Paths that could not be backed up, with why (the rest went on).
    pub errors: Vec<(String, Error)>,
    /// How long it took.
    pub duration: Duration,
    /// Nothing was done: the counts are what would have been.
    pub dry_run: bool,
}

impl BackupReport {
    /// Takes back the counts of a file that was not stored after all.
    fn uncount(&mut self, new: bool, size: u64) {
        self.files_stored -= 1;
        self.bytes_read -= size;
        if new {
            self.files_new -= 1;
        } else {
            self.files_changed -= 1;
        }
    }
}

/// How to restore.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Restore only the entries these glob patterns match (against the path below the root
    /// and against the file name; a folder matched brings everything below it). Empty: all.
    pub only: Vec<String>,
    /// The name is a two-way synced folder's (`folder/<name>/`, [`crate::folder_sync`]), not
    /// a backup's: with `at_ms`, a file deleted or overwritten there comes back as it was.
    pub synced_folder: bool,
    /// Restore the tree as it was at this time (milliseconds since the Unix epoch), as far as
    /// the history the replica keeps reaches; `None`: as it is.
    pub at_ms: Option<u64>,
    /// Say what would be done, and do nothing.
    pub dry_run: bool,
    /// Overwrite local files that are newer than their entry.
    pub force: bool,
}

/// What a restore did (or, dry, would do).
#[derive(Clone, Debug, Default)]
pub struct RestoreReport {
    /// Files written.
    pub files_written: u64,
    /// Files already there with the entry's size and time: not fetched.
    pub files_unchanged: u64,
    /// Local files newer than their entry, kept (see [`RestoreOptions::force`]).
    pub kept_newer: Vec<String>,
    /// Folders made (or there already).
    pub dirs: u64,
    /// Links made (or there already).
    pub symlinks: u64,
    /// Bytes of the files written.
    pub bytes_written: u64,
    /// Entries refused or failed, with why (the rest went on).
    pub errors: Vec<(String, Error)>,
    /// How long it took.
    pub duration: Duration,
    /// Nothing was done: the counts are what would have been.
    pub dry_run: bool,
}

/// Where backups live: the backup named `<name>` has the root `backup/<name>/`.
pub const BACKUPS: &str = "backup/";
/// Where synced folders live: the folder named `<name>` has the root `folder/<name>/` (the
/// same layout as a backup's).
pub const FOLDERS: &str = "folder/";

/// The entries a restore is limited to.
struct Selection(Option<globset::GlobSet>);

impl Selection {
    fn new(only: &[String]) -> Result<Selection> {
        if only.is_empty() {
            return Ok(Selection(None));
        }
        let mut builder = globset::GlobSetBuilder::new();
        for pattern in only {
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(false)
                .build()
                .map_err(|e| Error::Config(format!("pattern {pattern:?}: {e}")))?;
            builder.add(glob);
        }
        let set = builder
            .build()
            .map_err(|e| Error::Config(format!("patterns: {e}")))?;
        Ok(Selection(Some(set)))
    }

    /// Whether `rel`, or a folder it lies in, is matched (by its path or its name).
    fn selects(&self, rel: &str) -> bool {
        let Some(set) = &self.0 else { return true };
        let mut end = 0;
        for name in rel.split('/') {
            end += name.len();
            if set.is_match(&rel[..end]) || set.is_match(name) {
                return true;
            }
            end += 1;
        }
        false
    }
}

/// The root of the backup named `name`.
///
/// # Errors
/// `Config` when `name` is empty, `.`, `..` or holds a `/`.
pub fn root_of(name: &str) -> Result<String> {
    root_for(name, false)
}

/// The root of what `name` names: the backup of that name, or with `synced_folder` the folder
/// synced both ways under it (`folder/<name>/`).
///
/// # Errors
/// `Config` when `name` is empty, `.`, `..` or holds a `/`.
pub fn root_for(name: &str, synced_folder: bool) -> Result<String> {
    let (place, what) = match synced_folder {
        true => (FOLDERS, "folder"),
        false => (BACKUPS, "backup"),
    };
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::Config(format!(
            "{what} name {name:?}: give a name that is not empty and has no '/'"
        )));
    }
    Ok(format!("{place}{name}/"))
}

/// The name a backup of `dir` gets by default: the folder's own name.
///
/// # Errors
/// `Config` when the folder has no usable name (`/`, or not UTF-8).
pub fn default_name(dir: &Path) -> Result<String> {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let name = absolute
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    root_of(name).map(|_| name.to_owned())
}

/// One path found in the local folder.
pub(super) struct Local {
    pub rel: String,
    pub path: PathBuf,
    pub entry: Entry,
    /// Which file of the file system this is ([`file_id`]), where the platform says.
    pub id: Option<u64>,
}

/// The number the file system knows a file by (its inode on Unix): the same while the file is
/// written in place or renamed, another for another file moved or copied to its path. `None`
/// where the platform gives none.
#[cfg(unix)]
pub(super) fn file_id(metadata: &std::fs::Metadata) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    Some(metadata.ino())
}

#[cfg(not(unix))]
pub(super) fn file_id(_: &std::fs::Metadata) -> Option<u64> {
    None
}

/// What a walk of the folder found.
#[derive(Default)]
pub(super) struct Walk {
    pub found: Vec<Local>,
    /// Folders (relative, `""` for the root) whose listing was read whole: entries below
    /// others are never deleted.
    pub read_whole: BTreeSet<String>,
    /// Paths left out by the exclusion patterns or as hidden, or that could not be read: never
    /// deleted either.
    pub left_out: Vec<String>,
    pub errors: Vec<(String, Error)>,
}

pub(super) fn local_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Config(format!("{what} {}: {e}", path.display()))
}

#[cfg(unix)]
fn mode_of(metadata: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(_: &std::fs::Metadata) -> u32 {
    0
}

fn link_target_bytes(target: &Path) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        target.as_os_str().as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        target.to_string_lossy().as_bytes().to_vec()
    }
}

/// Matches the exclusion patterns.
pub(super) struct Filter {
    exclude: globset::GlobSet,
    include_hidden: bool,
}

impl Filter {
    fn new(options: &BackupOptions) -> Result<Filter> {
        Filter::with(&options.exclude, options.include_hidden)
    }

    /// Leaves out what `exclude` matches, and names starting with `.` unless `include_hidden`.
    pub(super) fn with(exclude: &[String], include_hidden: bool) -> Result<Filter> {
        let mut builder = globset::GlobSetBuilder::new();
        for pattern in exclude {
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(false)
                .build()
                .map_err(|e| Error::Config(format!("exclude pattern {pattern:?}: {e}")))?;
            builder.add(glob);
        }
        let exclude = builder
            .build()
            .map_err(|e| Error::Config(format!("exclude patterns: {e}")))?;
        Ok(Filter {
            exclude,
            include_hidden,
        })
    }

    pub(super) fn leaves_out(&self, rel: &str, name: &str) -> bool {
        (!self.include_hidden && name.starts_with('.'))
            || self.exclude.is_match(rel)
            || self.exclude.is_match(name)
    }
}

pub(super) fn walk(dir: &Path, rel: &str, filter: &Filter, walk_out: &mut Walk) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            let shown = if rel.is_empty() { "." } else { rel };
            walk_out
                .errors
                .push((shown.into(), local_error(dir, "cannot list", e)));
            return;
        }
    };
    let mut children = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => children.push(entry),
            Err(e) => {
                // A listing cut short: nothing below this folder is deleted.
                let shown = if rel.is_empty() { "." } else { rel };
                walk_out
                    .errors
                    .push((shown.into(), local_error(dir, "cannot list", e)));
                return;
            }
        }
    }
    walk_out.read_whole.insert(rel.to_owned());
    children.sort_by_key(|e| e.file_name());
    for child in children {
        let path = child.path();
        let Some(name) = child.file_name().to_str().map(str::to_owned) else {
            walk_out.errors.push((
                format!("{rel}/{}", child.file_name().to_string_lossy()),
                Error::Config(format!(
                    "{}: the name is not UTF-8, which keys must be",
                    path.display()
                )),
            ));
            continue;
        };
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if filter.leaves_out(&child_rel, &name) {
            walk_out.left_out.push(child_rel);
            continue;
        }
        let metadata = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                // Unknown, not gone: never deleted for it.
                walk_out.left_out.push(child_rel.clone());
                walk_out
                    .errors
                    .push((child_rel, local_error(&path, "cannot read", e)));
                continue;
            }
        };
        let mut entry = Entry {
            kind: EntryKind::File,
            size: 0,
            mtime_ms: mtime_ms(&metadata),
            mode: mode_of(&metadata),
            target: Vec::new(),
            hash: String::new(),
            parent: String::new(),
        };
        let kind = metadata.file_type();
        if kind.is_symlink() {
            match std::fs::read_link(&path) {
                Ok(target) => {
                    entry.kind = EntryKind::Symlink;
                    entry.mode = 0;
                    entry.target = link_target_bytes(&target);
                }
                Err(e) => {
                    walk_out.left_out.push(child_rel.clone());
                    walk_out
                        .errors
                        .push((child_rel, local_error(&path, "cannot read the link", e)));
                    continue;
                }
            }
        } else if kind.is_dir() {
            entry.kind = EntryKind::Dir;
            walk_out.found.push(Local {
                rel: child_rel.clone(),
                path: path.clone(),
                entry,
                id: None,
            });
            walk(&path, &child_rel, filter, walk_out);
            continue;
        } else if kind.is_file() {
            entry.size = metadata.len();
        } else {
            // Sockets, pipes, devices: not data to back up.
            continue;
        }
        walk_out.found.push(Local {
            rel: child_rel,
            path,
            entry,
            id: file_id(&metadata),
        });
    }
}

/// Whether `rel` lies below (or is) one of `folders`.
pub(super) fn below_any(
    rel: &str,
    folders: &BTreeSet<String>,
    excluded: &[String],
) -> (bool, bool) {
    let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
    let read = folders.contains(parent);
    let left_out = excluded
        .iter()
        .any(|x| rel == x || rel.starts_with(&format!("{x}/")));
    (read, left_out)
}

/// The keys of a backup root: entries and contents.
pub(super) fn entry_key(root: &str, rel: &str) -> String {
    format!("{root}m/{rel}")
}

pub(super) fn content_key(root: &str, rel: &str) -> String {
    format!("{root}f/{rel}")
}

/// The relative path of an entry key, checked to stay inside any target: components that
/// are not empty, `.` or `..`, no NUL (and, on Windows, no `\`, `:` or drive letters).
pub(super) fn checked_path(rel: &str) -> std::result::Result<PathBuf, String> {
    if rel.is_empty() {
        return Err("an empty path".into());
    }
    let mut path = PathBuf::new();
    for part in rel.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(format!("the path {rel:?} is absolute or climbs out"));
        }
        if part.contains('\0') {
            return Err(format!("the path {rel:?} holds a NUL"));
        }
        if cfg!(windows) && (part.contains('\\') || part.contains(':')) {
            return Err(format!(
                "the path {rel:?} holds a separator or a drive letter"
            ));
        }
        path.push(part);
    }
    // Whatever the platform makes of it, it must be plain names.
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(format!("the path {rel:?} is not made of plain names"));
    }
    Ok(path)
}

/// A link's target as the path the link is made with (its bytes as they were on Unix).
pub(super) fn link_target_path(target: &[u8]) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(target))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(target).as_ref())
    }
}

/// The link among `links` (paths below the restored root) that `path` lies below, if any.
pub(super) fn below_a_link<'a>(links: &'a BTreeSet<PathBuf>, path: &Path) -> Option<&'a Path> {
    path.ancestors()
        .skip(1)
        .find_map(|a| links.get(a).map(PathBuf::as_path))
}

/// Whether any folder between `root` and `path` (exclusive) is a link: writing there would
/// write elsewhere.
pub(super) fn passes_through_a_link(root: &Path, rel: &Path) -> bool {
    let mut at = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return true;
        }
    }
    false
}

/// The time and permissions of `entry`, for a file written whole (see [`Stamp`]).
pub(super) fn stamp_of(entry: &Entry) -> Stamp {
    Stamp {
        mtime_ms: entry.mtime_ms,
        mode: entry.mode,
    }
}

pub(super) fn set_times_and_mode(path: &Path, entry: &Entry) -> std::io::Result<()> {
    #[cfg(unix)]
    if entry.mode != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(entry.mode))?;
    }
    let time = filetime::FileTime::from_unix_time(
        (entry.mtime_ms / 1000) as i64,
        ((entry.mtime_ms % 1000) * 1_000_000) as u32,
    );
    filetime::set_file_mtime(path, time)
}

/// A file stored as it was when walked or opened. Saved again in place while it is read (a
/// database, a disk image, a log appended to), its length or modification time at the end of
/// the read are no longer those: the read fails with `changed(rel)`, so that the first part of
/// one version and the rest of another are never stored as one file. (A save that keeps both
/// the length and the time, to the file system's resolution, is not seen.)
pub(super) struct AsWalked {
    source: ReadSource<std::fs::File>,
    /// The same open file, for its length and time at the end.
    file: std::fs::File,
    size: u64,
    mtime_ms: u64,
    rel: String,
    changed: fn(&str) -> Error,
}

impl AsWalked {
    /// Opens `path` to store it as it is now.
    pub(super) fn open(path: &Path, rel: &str, changed: fn(&str) -> Error) -> Result<AsWalked> {
        let cannot = |e| local_error(path, "cannot read", e);
        let file = std::fs::File::open(path).map_err(cannot)?;
        let now = file.metadata().map_err(cannot)?;
        let (size, mtime_ms) = (now.len(), mtime_ms(&now));
        AsWalked::of(file, rel, (size, mtime_ms), changed).map_err(cannot)
    }

    /// Reads the open `file` as its size and time `(size, mtime_ms)` (the walk's) say it is.
    pub(super) fn of(
        file: std::fs::File,
        rel: &str,
        (size, mtime_ms): (u64, u64),
        changed: fn(&str) -> Error,
    ) -> std::io::Result<AsWalked> {
        Ok(AsWalked {
            file: file.try_clone()?,
            source: ReadSource::new(file, Some(size)),
            size,
            mtime_ms,
            rel: rel.to_owned(),
            changed,
        })
    }
}

impl Source for AsWalked {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = self.source.read(buf).await?;
        let unchanged =
            |m: &std::fs::Metadata| m.len() == self.size && mtime_ms(m) == self.mtime_ms;
        if n == 0 && !self.file.metadata().is_ok_and(|m| unchanged(&m)) {
            return Err((self.changed)(&self.rel));
        }
        Ok(n)
    }

    fn len_hint(&self) -> Option<u64> {
        self.source.len_hint()
    }
}

/// A file a backup stores: its entry is written with its record.
struct Pending {
    rel: String,
    path: PathBuf,
    entry: Entry,
    /// The backup had no entry of it.
    new: bool,
    /// How many times a read of it found it changed before the end.
    changed: u32,
}

/// A file found changed while it was read is read again, up to this many reads in all; then it
/// is reported, and the backup keeps what it had of it.
const MAX_READS: u32 = 3;

/// A file saved again while a backup read it.
fn changed_while_read(rel: &str) -> Error {
    Error::Config(format!(
        "{rel:?} changed while it was read, {MAX_READS} times: not stored (the backup keeps \
         what it had of it)"
    ))
}

/// The files of a backup, handed to [`Session::put_files`] as it asks: each opened only then.
struct BackupFiles<'a, P> {
    root: &'a str,
    /// Files to read, those to read again last.
    pending: std::collections::VecDeque<Pending>,
    /// Files handed over and not stored yet, by content key.
    stored: BTreeMap<Vec<u8>, Pending>,
    /// The path of the file being read, for progress.
    reading: String,
    report: &'a mut BackupReport,
    progress: &'a mut P,
}

impl<P: FnMut(&str, FileProgress)> FileBatch for BackupFiles<'_, P> {
    type Source = AsWalked;

    fn next_file(&mut self) -> Option<(Vec<u8>, Self::Source)> {
        while let Some(mut file) = self.pending.pop_front() {
            // Read as it is when opened: its entry keeps that time (the size is the size read).
            let opened = std::fs::File::open(&file.path).and_then(|opened| {
                let now = opened.metadata()?;
                file.entry.mtime_ms = mtime_ms(&now);
                AsWalked::of(
                    opened,
                    &file.rel,
                    (now.len(), mtime_ms(&now)),
                    changed_while_read,
                )
            });
            match opened {
                Ok(source) => {
                    let key = content_key(self.root, &file.rel).into_bytes();
                    self.reading.clone_from(&file.rel);
                    self.stored.insert(key.clone(), file);
                    return Some((key, source));
                }
                Err(e) => {
                    self.report.uncount(file.new, file.entry.size);
                    let error = local_error(&file.path, "cannot read", e);
                    self.report.errors.push((file.rel, error));
                }
            }
        }
        None
    }

    fn records(&mut self, key: &[u8], report: &FileReport) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let Some(file) = self.stored.get(key) else {
            return Vec::new();
        };
        let mut entry = file.entry.clone();
        // The size read, which the file may have changed to meanwhile.
        entry.size = report.size;
        entry.hash.clone_from(&report.content_hash);
        vec![(
            entry_key(self.root, &file.rel).into_bytes(),
            Some(entry.encode()),
        )]
    }

    fn stored(&mut self, key: &[u8], report: &FileReport) {
        let Some(file) = self.stored.remove(key) else {
            return;
        };
        self.report.chunks_uploaded += report.chunks_uploaded;
        self.report.chunks_reused += report.chunks_reused;
        self.report.bytes_read = self.report.bytes_read - file.entry.size + report.size;
    }

    fn failed(&mut self, key: &[u8], error: &Error) {
        if let Some(mut file) = self.stored.remove(key) {
            // Saved again while it was read: read again, after the others.
            if *error == changed_while_read(&file.rel) && file.changed + 1 < MAX_READS {
                file.changed += 1;
                return self.pending.push_back(file);
            }
            self.report.uncount(file.new, file.entry.size);
            self.report.errors.push((file.rel, error.clone()));
        }
    }

    fn progress(&mut self, _key: &[u8], progress: FileProgress) {
        (self.progress)(&self.reading, progress);
    }
}

/// Files up to this size are read together with the others of a restore, each whole in memory
/// until written (see `FileWriters`: 8 MiB of them wait at most, or one this big); bigger ones
/// alone, through a partial file a later restore resumes.
const READ_ALONE_ABOVE: u64 = 32 << 20;

/// A file a restore writes, waiting to be read with the others.
struct Restoring {
    rel: String,
    entry: Entry,
    /// Its content key and the record value it had at the time restored.
    key: Vec<u8>,
    value: Vec<u8>,
    dest: PathBuf,
}

impl Session {
    /// Backs the folder `dir` up as the backup `name` (under the keys `backup/<name>/`):
    /// stores new and changed files, writes an entry for every path, and (with
    /// `options.delete`) deletes the entries of paths that are gone. Unchanged files cost no
    /// request. The records are journaled; the next sync pushes them. `progress` is called
    /// with each file's path and progress as it is stored.
    ///
    /// # Errors
    /// `Config` when `dir` is not a readable folder or a pattern is bad; `Cancelled` after
    /// [`Session::cancel_sync`] (what was stored so far stays, and the next backup skips it).
    /// A path that cannot be read or stored is in the report's errors, not an error.
    pub async fn backup<T: Transport + ?Sized>(
        &self,
        dir: &Path,
        name: &str,
        options: &BackupOptions,
        transport: &T,
        concurrency: usize,
        mut progress: impl FnMut(&str, FileProgress),
    ) -> Result<BackupReport> {
        let started = Instant::now();
        let root = root_of(name)?;
        let root = root.as_str();
        let filter = Filter::new(options)?;
        let metadata = std::fs::metadata(dir).map_err(|e| local_error(dir, "cannot back up", e))?;
        if !metadata.is_dir() {
            return Err(Error::Config(format!(
                "cannot back up {}: not a folder",
                dir.display()
            )));
        }
        let mut walked = Walk::default();
        walk(dir, "", &filter, &mut walked);
        if !walked.read_whole.contains("") {
            // Not even the top could be listed: nothing is written, nothing deleted.
            let (_, e) = walked.errors.remove(0);
            return Err(e);
        }
        let mut report = BackupReport {
            dry_run: options.dry_run,
            errors: std::mem::take(&mut walked.errors),
            ..BackupReport::default()
        };
        let entry_prefix = entry_key(root, "");
        let existing: BTreeMap<String, Option<Entry>> = self
            .keys(entry_prefix.as_bytes())?
            .into_iter()
            .filter_map(|key| {
                let rel = String::from_utf8(key[entry_prefix.len()..].to_vec()).ok()?;
                let entry = self
                    .get(&key)
                    .ok()
                    .flatten()
                    .and_then(|v| Stored::decode(&rel, &v).ok())
                    .and_then(Stored::entry);
                Some((rel, entry))
            })
            .collect();
        // Files to store, in one batch once the walk's entries are written.
        let mut pending = Vec::new();
        for local in &walked.found {
            let old = existing.get(&local.rel).cloned().flatten();
            let key = entry_key(root, &local.rel);
            let mut entry = local.entry.clone();
            match entry.kind {
                EntryKind::Dir | EntryKind::Symlink => {
                    if entry.kind == EntryKind::Dir {
                        report.dirs += 1;
                    } else {
                        report.symlinks += 1;
                    }
                    if old.as_ref() != Some(&entry) && !options.dry_run {
                        self.put(key, entry.encode())?;
                        let content = content_key(root, &local.rel);
                        if self.get(content.as_bytes())?.is_some() {
                            // Was a file: its bytes go.
                            self.delete(content)?;
                        }
                    }
                }
                EntryKind::File => {
                    let content = content_key(root, &local.rel);
                    let unchanged = old.as_ref().is_some_and(|o| {
                        o.kind == EntryKind::File
                            && o.size == entry.size
                            && o.mtime_ms == entry.mtime_ms
                            && o.mode == entry.mode
                    }) && self
                        .read(|e| e.file_info(content.as_bytes()))?
                        .is_ok_and(|info| info.is_some());
                    if unchanged {
                        report.files_unchanged += 1;
                        continue;
                    }
                    report.files_stored += 1;
                    report.bytes_read += entry.size;
                    let new = old.as_ref().is_none_or(|o| o.kind != EntryKind::File);
                    let counted = if new {
                        &mut report.files_new
                    } else {
                        &mut report.files_changed
                    };
                    *counted += 1;
                    if options.dry_run {
                        continue;
                    }
                    // The entry's hash and parent are filled in once the file is stored.
                    entry.parent = old
                        .filter(|o| o.kind == EntryKind::File)
                        .map(|o| o.hash)
                        .unwrap_or_default();
                    pending.push(Pending {
                        rel: local.rel.clone(),
                        path: local.path.clone(),
                        entry,
                        new,
                        changed: 0,
                    });
                }
            }
        }
        if !pending.is_empty() {
            let mut files = BackupFiles {
                root,
                pending: pending.into(),
                stored: BTreeMap::new(),
                reading: String::new(),
                report: &mut report,
                progress: &mut progress,
            };
            let outcome = self
                .put_files(&mut files, transport, None, concurrency)
                .await;
            // Files never asked for, after the upload failed, are not stored either.
            let left: Vec<Pending> = files.pending.into();
            match outcome {
                Ok(totals) => {
                    report.bytes_sent += totals.bytes_sent;
                    report.packs += totals.packs;
                    report.requests += totals.requests;
                }
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                Err(e) => {
                    for file in left {
                        report.uncount(file.new, file.entry.size);
                        report.errors.push((file.rel, e.clone()));
                    }
                }
            }
        }
        if options.delete {
            let present: BTreeSet<&str> = walked.found.iter().map(|l| l.rel.as_str()).collect();
            for rel in existing.keys() {
                if present.contains(rel.as_str()) {
                    continue;
                }
                let (read, left_out) = below_any(rel, &walked.read_whole, &walked.left_out);
                if !read || left_out {
                    continue;
                }
                report.deleted += 1;
                if options.dry_run {
                    continue;
                }
                self.delete(entry_key(root, rel))?;
                let content = content_key(root, rel);
                if self.get(content.as_bytes())?.is_some() {
                    self.delete(content)?;
                }
            }
        }
        report.duration = started.elapsed();
        Ok(report)
    }

    /// Reads the files `pending` holds, together (see
    /// [`Session::download_many_to_paths`]), each with its time and permissions.
    ///
    /// # Errors
    /// `Cancelled` after [`Session::cancel_sync`].
    async fn restore_pending<T: Transport + ?Sized>(
        &self,
        pending: &mut Vec<Restoring>,
        transport: &T,
        concurrency: usize,
        progress: &mut impl FnMut(&str, FileProgress),
        report: &mut RestoreReport,
    ) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut files: Vec<crate::io::files::ToPath> = pending
            .iter_mut()
            .map(|f| {
                (
                    std::mem::take(&mut f.key),
                    std::mem::take(&mut f.value),
                    f.dest.clone(),
                    Some(stamp_of(&f.entry)),
                    None,
                )
            })
            .collect();
        let outcomes = self
            .download_many_to_paths(
                &mut files,
                transport,
                concurrency,
                Durability::WriteBack,
                &mut |place, p| progress(&pending[place].rel, p),
            )
            .await?;
        for (file, outcome) in pending.drain(..).zip(outcomes) {
            match outcome {
                Ok(true) => {}
                Ok(false) => {
                    if let Err(e) = set_times_and_mode(&file.dest, &file.entry) {
                        report.errors.push((
                            file.rel,
                            local_error(&file.dest, "cannot set the time of", e),
                        ));
                    }
                }
                Err(e) => {
                    report.files_written -= 1;
                    report.bytes_written -= file.entry.size;
                    report.errors.push((file.rel, e));
                }
            }
        }
        Ok(())
    }

    /// The value `key` had at `at_ms` (the newest version stamped no later), or now.
    fn value_at(&self, key: &[u8], at_ms: Option<u64>) -> Result<Option<Vec<u8>>> {
        let Some(at) = at_ms else {
            return self.get(key);
        };
        let versions = self.read(|e| e.history(key))?;
        Ok(versions
            .into_iter()
            .find(|r| r.stamp.hlc.wall_ms <= at)
            .and_then(|r| r.value))
    }

    /// The names of the backups in the vault, sorted.
    ///
    /// # Errors
    /// `Config` when the vault is closed.
    pub fn backups(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .keys(BACKUPS.as_bytes())?
            .iter()
            .filter_map(|k| {
                let rest = std::str::from_utf8(&k[BACKUPS.len()..]).ok()?;
                let (name, path) = rest.split_once('/')?;
                path.starts_with("m/").then(|| name.to_owned())
            })
            .collect();
        names.dedup();
        Ok(names)
    }

    /// The backup a restore means: `name`, or the vault's only one.
    ///
    /// # Errors
    /// `Config` when no name is given and the vault holds none or several.
    pub fn backup_named(&self, name: Option<&str>) -> Result<String> {
        if let Some(name) = name {
            root_of(name)?;
            return Ok(name.to_owned());
        }
        match self.backups()?.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::Config("the vault holds no backup".into())),
            many => Err(Error::Config(format!(
                "the vault holds {} backups ({}): name one",
                many.len(),
                many.join(", ")
            ))),
        }
    }

    /// What a restore or a check of `name` reads: the backup `name` (or the vault's only one,
    /// see [`Session::backup_named`]), or with `synced_folder` the folder synced both ways
    /// under `name`, which must then be given.
    ///
    /// # Errors
    /// `Config` for a synced folder without a name, and as [`Session::backup_named`].
    pub fn source_named(&self, name: Option<&str>, synced_folder: bool) -> Result<String> {
        match (name, synced_folder) {
            (Some(name), true) => root_for(name, true).map(|_| name.to_owned()),
            (None, true) => Err(Error::Config(
                "a synced folder is read by its name: give the name it syncs under".into(),
            )),
            (name, false) => self.backup_named(name),
        }
    }

    /// Restores the backup `name` into the folder `target` (made if missing):
    /// folders, then files (fetched only when the local one differs in size or time), then
    /// links; times and permissions as backed up. `progress` is called with each file's path
    /// and progress as it is read.
    ///
    /// Each file is written beside its path and renamed into place once whole, so none shows
    /// cut short under its name. Files read together by pack (up to 32 MiB) are not synced:
    /// as with `tar` or restic, the system writes them to the disk. After a killed restore a
    /// rerun finishes it; after a power loss or a system crash during or right after one, a
    /// file may not hold the bytes its size and time say, and a rerun trusts files of the
    /// right size and time: restore into an empty folder then. Larger files, and files read
    /// again one by one after a pack could not be read, are synced before their rename.
    ///
    /// # Errors
    /// `Config` when `target` cannot be made; `Cancelled` after [`Session::cancel_sync`]
    /// (files written so far stay; a file cut off resumes on the next restore). An entry
    /// refused or failed is in the report's errors, not an error.
    pub async fn restore<T: Transport + ?Sized>(
        &self,
        name: &str,
        target: &Path,
        options: &RestoreOptions,
        transport: &T,
        concurrency: usize,
        mut progress: impl FnMut(&str, FileProgress),
    ) -> Result<RestoreReport> {
        let started = Instant::now();
        let root = root_for(name, options.synced_folder)?;
        let root = root.as_str();
        let only = Selection::new(&options.only)?;
        let mut report = RestoreReport {
            dry_run: options.dry_run,
            ..RestoreReport::default()
        };
        let prefix = entry_key(root, "");
        let keys = match options.at_ms {
            Some(_) => self.read(|e| e.keys_ever(prefix.as_bytes()))?,
            None => self.keys(prefix.as_bytes())?,
        };
        let mut entries: Vec<(String, PathBuf, Entry)> = Vec::new();
        for key in keys {
            let rel = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            let Some(value) = self.value_at(&key, options.at_ms)? else {
                continue;
            };
            let entry = match Stored::decode(&rel, &value) {
                Ok(Stored::Entry(entry)) => entry,
                // Deleted by a two-way folder sync.
                Ok(Stored::Deleted(_)) => continue,
                Err(e) => {
                    report.errors.push((rel, e));
                    continue;
                }
            };
            match checked_path(&rel) {
                Ok(path) => entries.push((rel, path, entry)),
                Err(why) => report.errors.push((
                    rel.clone(),
                    Error::Config(format!("refused entry {:?}: {why}", entry_key(root, &rel))),
                )),
            }
        }
        // Folders first (shallow before deep), then files, then links.
        let rank = |e: &Entry| match e.kind {
            EntryKind::Dir => 0,
            EntryKind::File => 1,
            EntryKind::Symlink => 2,
        };
        entries.sort_by(|a, b| {
            (rank(&a.2), a.1.components().count(), &a.0).cmp(&(
                rank(&b.2),
                b.1.components().count(),
                &b.0,
            ))
        });
        if !options.dry_run {
            std::fs::create_dir_all(target).map_err(|e| local_error(target, "cannot make", e))?;
        }
        // Nothing below a link of the backup is written: a backup holding `a -> /elsewhere`
        // and `a/f` would write `f` through the link.
        let links: BTreeSet<PathBuf> = entries
            .iter()
            .filter(|(_, _, e)| e.kind == EntryKind::Symlink)
            .map(|(_, path, _)| path.clone())
            .collect();
        // Only then what was asked for: a link left out still guards what lies below it.
        entries.retain(|(rel, _, _)| only.selects(rel));
        let mut dirs_done: Vec<(PathBuf, Entry)> = Vec::new();
        let mut pending: Vec<Restoring> = Vec::new();
        for (rel, path, entry) in entries {
            let dest = target.join(&path);
            if let Some(link) = below_a_link(&links, &path) {
                report.errors.push((
                    rel.clone(),
                    Error::Config(format!(
                        "refused entry {:?}: it lies below {:?}, a link in the backup (writing \
                         there would write through the link)",
                        entry_key(root, &rel),
                        link.display().to_string()
                    )),
                ));
                continue;
            }
            if passes_through_a_link(target, &path) {
                report.errors.push((
                    rel.clone(),
                    Error::Config(format!(
                        "refused entry {:?}: its folder is a link (writing there would write \
                         outside {})",
                        entry_key(root, &rel),
                        target.display()
                    )),
                ));
                continue;
            }
            let local = std::fs::symlink_metadata(&dest).ok();
            match entry.kind {
                EntryKind::Dir => {
                    report.dirs += 1;
                    if options.dry_run {
                        continue;
                    }
                    if local.as_ref().is_some_and(|m| !m.is_dir()) {
                        report.errors.push((
                            rel,
                            Error::Config(format!("{} exists and is not a folder", dest.display())),
                        ));
                        continue;
                    }
                    if let Err(e) = std::fs::create_dir_all(&dest) {
                        report
                            .errors
                            .push((rel, local_error(&dest, "cannot make", e)));
                        continue;
                    }
                    dirs_done.push((dest, entry));
                }
                EntryKind::File => {
                    if let Some(m) = &local {
                        if m.is_file() && m.len() == entry.size && mtime_ms(m) == entry.mtime_ms {
                            report.files_unchanged += 1;
                            continue;
                        }
                        if !options.force && mtime_ms(m) > entry.mtime_ms {
                            report.kept_newer.push(rel);
                            continue;
                        }
                    }
                    report.files_written += 1;
                    report.bytes_written += entry.size;
                    if options.dry_run {
                        continue;
                    }
                    let content = content_key(root, &rel);
                    let value = match self.value_at(content.as_bytes(), options.at_ms)? {
                        Some(value) => value,
                        None => {
                            report.files_written -= 1;
                            report.bytes_written -= entry.size;
                            report.errors.push((
                                rel,
                                Error::Config(format!(
                                    "the vault holds no content for {content:?}"
                                )),
                            ));
                            continue;
                        }
                    };
                    if let Some(parent) = dest.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    if entry.size <= READ_ALONE_ABOVE {
                        // Read with its neighbours in the packs, before the next link is made;
                        // written beside and renamed into place, which replaces a link there
                        // rather than writing through it.
                        pending.push(Restoring {
                            rel,
                            entry,
                            key: content.into_bytes(),
                            value,
                            dest,
                        });
                        continue;
                    }
                    let download = match self
                        .read(|e| e.begin_download_value(content.as_bytes(), &value, None))?
                    {
                        Ok(download) => download,
                        Err(e) => {
                            report.files_written -= 1;
                            report.bytes_written -= entry.size;
                            report.errors.push((rel, e));
                            continue;
                        }
                    };
                    if local.as_ref().is_some_and(|m| m.is_symlink()) {
                        // Never write through a link: replace it.
                        let _ = std::fs::remove_file(&dest);
                    }
                    let shown = rel.clone();
                    let outcome = self
                        .download_to_path(download, &dest, None, transport, concurrency, &mut |p| {
                            progress(&shown, p)
                        })
                        .await;
                    match outcome {
                        Ok(()) => {
                            if let Err(e) = set_times_and_mode(&dest, &entry) {
                                report
                                    .errors
                                    .push((rel, local_error(&dest, "cannot set the time of", e)));
                            }
                        }
                        Err(Error::Cancelled) => return Err(Error::Cancelled),
                        Err(e) => {
                            report.files_written -= 1;
                            report.bytes_written -= entry.size;
                            report.errors.push((rel, e));
                        }
                    }
                }
                EntryKind::Symlink => {
                    report.symlinks += 1;
                    if options.dry_run {
                        continue;
                    }
                    // Every file waiting is written before a link exists that a path could
                    // pass through.
                    self.restore_pending(
                        &mut pending,
                        transport,
                        concurrency,
                        &mut progress,
                        &mut report,
                    )
                    .await?;
                    let target_path = link_target_path(&entry.target);
                    if let Some(m) = &local {
                        let same = m.is_symlink()
                            && std::fs::read_link(&dest).is_ok_and(|t| t == target_path);
                        if same {
                            continue;
                        }
                        if !options.force {
                            report.symlinks -= 1;
                            report.kept_newer.push(rel);
                            continue;
                        }
                        let _ = std::fs::remove_file(&dest);
                    }
                    #[cfg(unix)]
                    let made = std::os::unix::fs::symlink(&target_path, &dest);
                    #[cfg(not(unix))]
                    let made: std::io::Result<()> =
                        Err(std::io::Error::other("links are restored on Unix only"));
                    if let Err(e) = made {
                        report.symlinks -= 1;
                        report
                            .errors
                            .push((rel, local_error(&dest, "cannot make the link", e)));
                    }
                }
            }
        }
        self.restore_pending(
            &mut pending,
            transport,
            concurrency,
            &mut progress,
            &mut report,
        )
        .await?;
        // Folders' times and permissions last (writing into them changed their times),
        // deepest first.
        for (dest, entry) in dirs_done.iter().rev() {
            if let Err(e) = set_times_and_mode(dest, entry) {
                report.errors.push((
                    dest.display().to_string(),
                    local_error(dest, "cannot set the time of", e),
                ));
            }
        }
        report.duration = started.elapsed();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_other_values_are_corrupt() {
        let entry = Entry {
            kind: EntryKind::Symlink,
            size: 0,
            mtime_ms: 1_767_225_600_123,
            mode: 0,
            target: b"../b".to_vec(),
            hash: String::new(),
            parent: String::new(),
        };
        let value = entry.encode();
        assert_eq!(&value[..5], b"BKSM\x01");
        assert_eq!(Stored::decode("a/l", &value).unwrap(), Stored::Entry(entry));
        for bad in [
            &b"BKSF\x02"[..],
            b"BKSM",
            b"BKSM\x03\x00\x00",
            b"BKSM\x02\x00",
            b"BKSM\x01\x09",
        ] {
            let err = Stored::decode("x", bad).unwrap_err();
            assert_eq!(err.category(), crate::Category::Corrupt, "{bad:?}");
        }
    }

    /// The vector of FORMAT §15: a deletion note, byte for byte.
    #[test]
    fn a_deletion_note_is_version_2_and_names_the_version_deleted() {
        let note = Deletion {
            hash: "ab12".into(),
            parent: "cd".into(),
            earlier: vec!["ef".into()],
            deleted_before: vec!["01".into()],
        };
        let value = note.encode();
        assert_eq!(
            value,
            [
                0x42, 0x4b, 0x53, 0x4d, 0x02, 0x04, b'a', b'b', b'1', b'2', 0x02, b'c', b'd', 0x01,
                0x02, b'e', b'f', 0x01, 0x02, b'0', b'1'
            ]
        );
        assert_eq!(
            note.replaced().collect::<Vec<_>>(),
            [("ab12", "cd"), ("cd", "ef")]
        );
        assert_eq!(
            Stored::decode("a/f", &value).unwrap(),
            Stored::Deleted(note)
        );
        assert_eq!(Stored::decode("a/f", &value).unwrap().entry(), None);
    }

    #[test]
    fn a_selection_matches_a_path_its_name_or_a_folder_it_lies_in() {
        let only = Selection::new(&["notes".into(), "*.jpg".into(), "a/b/c.txt".into()]).unwrap();
        for rel in [
            "notes",
            "notes/x.txt",
            "notes/deep/y.md",
            "photos/f.jpg",
            "a/b/c.txt",
        ] {
            assert!(only.selects(rel), "{rel}");
        }
        for rel in ["notes.txt", "other/notes2/x", "a/b/d.txt", "a/b", "jpg"] {
            assert!(!only.selects(rel), "{rel}");
        }
        assert!(Selection::new(&[]).unwrap().selects("anything/at/all"));
        assert!(Selection::new(&["[".into()]).is_err());
    }

    #[test]
    fn only_plain_relative_paths_are_restored() {
        assert!(checked_path("a/b c/é.txt").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "a/../../x",
            "..",
            "a//b",
            "./a",
            "a/\0b",
            "a/",
        ] {
            assert!(checked_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn what_lies_below_a_link_of_the_backup_is_found() {
        let links: BTreeSet<PathBuf> = ["a", "b/c"].into_iter().map(PathBuf::from).collect();
        let below = |p: &str| below_a_link(&links, Path::new(p)).map(Path::to_path_buf);
        assert_eq!(below("a/x"), Some(PathBuf::from("a")));
        assert_eq!(below("b/c/d/e"), Some(PathBuf::from("b/c")));
        assert_eq!(below("a"), None);
        assert_eq!(below("b/x"), None);
        assert_eq!(below("ab/x"), None);
    }

    #[cfg(unix)]
    #[test]
    fn link_targets_keep_their_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let raw = b"/etc/\xff\xfe odd";
        assert_eq!(link_target_path(raw).as_os_str().as_bytes(), raw);
        assert_eq!(link_target_bytes(&link_target_path(raw)), raw.to_vec());
    }
}
