//! Two-way sync of a local folder between devices: edits and deletions go both ways, and a
//! path edited on two devices keeps both versions (the loser as a conflict copy).
//!
//! The folder's tree lives in the vault as a backup does (`backup.rs`), under
//! `folder/<name>/`: an entry record per path (`m/`) and a file record per regular file
//! (`f/`). Each device keeps, in a file inside the folder (`.bucketsync-folder`), the tree as
//! it was when this device last synced it: the **base**. A path whose local state differs from
//! the base was changed here; one whose entry in the vault differs from the base was changed
//! elsewhere. Changed on one side only, the change goes to the other; changed on both, the
//! versions are compared: equal, nothing to do; different, the later modification (then the
//! greater device id) keeps the name and the other becomes `name (conflict DEVICE DATE).ext`,
//! on every device. Each file's entry names the version it replaced (`parent`): when two
//! devices' syncs overlapped and both pushed, the one whose version lost in the vault finds a
//! change that was not made from its version, and keeps its own as the conflict copy. Where
//! it cannot tell (versions between were merged away before it saw them), it keeps its own as
//! a copy too, unless another device already made that copy: a copy too many, never an edit
//! lost.
//!
//! Safety: a folder that is missing, or is not a folder, is an error and changes nothing; a
//! folder without the base file (new, or an empty mount point) only receives; paths below a
//! subfolder that could not be read, paths that could not be read, paths the patterns leave
//! out (on either side) and entries this build cannot read are left alone; a pull that met
//! errors deletes nothing here; a local file changed after the walk is neither replaced nor
//! deleted (the next run decides); nothing is written outside the folder (the paths a restore
//! refuses are refused here too, and nothing is written through a link; links themselves are
//! made as they were, wherever they point). A renamed file is a deleted
//! path and a new one: its chunks are in the vault already, so no content is sent again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::backup::{
    checked_path, content_key, entry_key, file_id, link_target_path, local_error,
    passes_through_a_link, root_for, set_times_and_mode, stamp_of, walk, AsWalked, Deletion, Entry,
    EntryKind, Filter, Local, Stored, Walk,
};
use super::folder_decision::{decide, folder_kept, outcome, same_local, Action, Questions, Views};
use super::partial_file::{mtime_ms, Expect};
use crate::engine::MASS_DELETION_MIN_KEYS;
use crate::error::{Error, Result};
use crate::ids::DeviceId;
use crate::io::driver::Transport;
use crate::io::file_writers::Durability;
use crate::io::files::{FileBatch, FileProgress};
use crate::io::session::Session;
use crate::transfer::FileReport;

/// The base file, inside the synced folder.
pub const BASE_FILE: &str = ".bucketsync-folder";
const BASE_MAGIC: &[u8; 4] = b"BKSB";
/// Version 3 keeps which file of the file system each file was (`ids`); version 2 (files
/// deleted since, `gone`, and what was sent, `sent`) and version 1 are read.
const BASE_VERSION: u8 = 3;
pub use super::backup::FOLDERS;

/// How to sync a folder.
#[derive(Clone, Debug, Default)]
pub struct FolderOptions {
    /// Glob patterns (`*.tmp`, `node_modules`) of paths left out on both sides, matched
    /// against the path below the folder and against the file name.
    pub exclude: Vec<String>,
    /// Decide every path, report what would be done (`changes`, and the counts), and change
    /// nothing in the folder or its records (the mass-deletion guard does not stop it: the
    /// deletions are in the report). The pull before deciding still runs (it brings in what
    /// other devices did, and sends this replica's unpushed records).
    pub dry_run: bool,
}

/// A change a folder sync makes to one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FolderChange {
    /// Sent to the vault (new or changed here).
    Upload,
    /// Written here from the vault.
    Download,
    /// Deleted here (deleted elsewhere).
    DeleteHere,
    /// Deleted in the vault (deleted here).
    DeleteThere,
    /// Changed on both sides: one version keeps the name, the other becomes a conflict copy.
    Conflict,
}

impl FolderChange {
    /// `upload`, `download`, `delete-here`, `delete-there` or `conflict`.
    pub fn as_str(self) -> &'static str {
        match self {
            FolderChange::Upload => "upload",
            FolderChange::Download => "download",
            FolderChange::DeleteHere => "delete-here",
            FolderChange::DeleteThere => "delete-there",
            FolderChange::Conflict => "conflict",
        }
    }

    fn of(action: Action) -> Option<FolderChange> {
        match action {
            Action::Upload => Some(FolderChange::Upload),
            Action::Download => Some(FolderChange::Download),
            Action::DeleteHere => Some(FolderChange::DeleteHere),
            Action::DeleteThere => Some(FolderChange::DeleteThere),
            Action::Conflict { .. } | Action::SetApart => Some(FolderChange::Conflict),
            Action::Keep | Action::Forget | Action::TakeVault => None,
        }
    }
}

/// What one folder sync did.
#[derive(Clone, Debug, Default)]
pub struct FolderReport {
    /// The paths it decided to change, in path order, with the change (made or, dry, to be
    /// made; a path that then failed is in `errors` too).
    pub changes: Vec<(String, FolderChange)>,
    /// Nothing was changed: the counts, changes and conflict copies are what would have been.
    pub dry_run: bool,
    /// Paths sent to the vault (new or changed here; folders and links included).
    pub uploaded: u64,
    /// Paths written here from the vault.
    pub downloaded: u64,
    /// Paths deleted here because they were deleted elsewhere.
    pub deleted_here: u64,
    /// Paths deleted in the vault because they were deleted here.
    pub deleted_there: u64,
    /// The conflict copies made (paths in the folder).
    pub conflicts: Vec<String>,
    /// Request body bytes sent by file transfers.
    pub bytes_sent: u64,
    /// Chunks sent.
    pub chunks_uploaded: u64,
    /// Chunks the vault held already, not sent again (a renamed file's are).
    pub chunks_reused: u64,
    /// Paths that could not be synced, with why (the rest went on).
    pub errors: Vec<(String, Error)>,
    /// How long it took.
    pub duration: Duration,
}

/// The tree as this device last synced it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Base {
    vault: [u8; 16],
    name: String,
    entries: BTreeMap<String, Entry>,
    /// Files deleted since (here or elsewhere), with the content hash of the last version
    /// this device had agreed on: a file made at that path again names it as the version it
    /// replaced, so that a device which held that version unchanged takes the new one instead
    /// of keeping its own as a conflict copy (it was deleted knowingly). From version 2.
    gone: BTreeMap<String, String>,
    /// What the last run sent (an entry, or `None`: a deletion) and did not see pushed (the
    /// push failed, or did not happen): agreed on once the vault holds it, by the next run.
    /// From version 2.
    sent: BTreeMap<String, Option<Entry>>,
    /// Which file of the file system each file of `entries` was when agreed on ([`file_id`]),
    /// where the platform says: another file of the same size and time moved or copied over
    /// the name is then seen. From version 3.
    ids: BTreeMap<String, u64>,
}

/// The version 2 layout of [`Base`]: no file ids.
#[derive(Deserialize)]
struct BaseV2 {
    vault: [u8; 16],
    name: String,
    entries: BTreeMap<String, Entry>,
    gone: BTreeMap<String, String>,
    sent: BTreeMap<String, Option<Entry>>,
}

/// The version 1 layout of [`Base`]: no deletions kept.
#[derive(Deserialize)]
struct BaseV1 {
    vault: [u8; 16],
    name: String,
    entries: BTreeMap<String, Entry>,
}

impl Base {
    fn read(dir: &Path) -> Result<Option<Base>> {
        let path = dir.join(BASE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(local_error(&path, "cannot read", e)),
        };
        let corrupt = |reason: &str| Error::corrupt(&path.display().to_string(), reason);
        match bytes.strip_prefix(BASE_MAGIC).and_then(|r| r.split_first()) {
            Some((&BASE_VERSION, body)) => crate::crypto::decode_exact(body)
                .map(Some)
                .map_err(|e| corrupt(&e)),
            Some((2, body)) => crate::crypto::decode_exact(body)
                .map(|old: BaseV2| {
                    Some(Base {
                        vault: old.vault,
                        name: old.name,
                        entries: old.entries,
                        gone: old.gone,
                        sent: old.sent,
                        ids: BTreeMap::new(),
                    })
                })
                .map_err(|e| corrupt(&e)),
            Some((1, body)) => crate::crypto::decode_exact(body)
                .map(|old: BaseV1| {
                    Some(Base {
                        vault: old.vault,
                        name: old.name,
                        entries: old.entries,
                        gone: BTreeMap::new(),
                        sent: BTreeMap::new(),
                        ids: BTreeMap::new(),
                    })
                })
                .map_err(|e| corrupt(&e)),
            _ => Err(corrupt(
                "is not a folder sync base of a version this build reads",
            )),
        }
    }

    /// Written beside, then renamed over the old one.
    fn write(&self, dir: &Path) -> Result<()> {
        let mut bytes = BASE_MAGIC.to_vec();
        bytes.push(BASE_VERSION);
        bytes.extend(postcard::to_allocvec(self).expect("postcard serializes into a Vec"));
        let path = dir.join(BASE_FILE);
        let temporary = dir.join(format!("{BASE_FILE}.new"));
        std::fs::write(&temporary, &bytes)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|e| local_error(&path, "cannot write", e))
    }

    /// The deletions to keep beside the tree `next` that follows this one: files this base
    /// had that `next` has not, and those kept before whose path is still empty.
    fn gone_after(&self, next: &BTreeMap<String, Entry>) -> BTreeMap<String, String> {
        let deleted = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.kind == EntryKind::File && !entry.hash.is_empty())
            .map(|(rel, entry)| (rel.clone(), entry.hash.clone()));
        self.gone
            .iter()
            .map(|(rel, hash)| (rel.clone(), hash.clone()))
            .chain(deleted)
            .filter(|(rel, _)| !next.contains_key(rel))
            .collect()
    }
}

/// Which file of the file system each file of `entries` is. One agreed on before and kept as
/// it was keeps the id it had: also where this run kept it only because it could not sync the
/// path (an upload failed, the push did not happen, the file changed meanwhile), so that a file
/// moved over it is still seen by the next run. (A base of an older version knew no ids: then
/// the walk's.) One written by this run: the file's now, where it has the entry's size and time.
fn ids_of(
    dir: &Path,
    entries: &BTreeMap<String, Entry>,
    walked: &BTreeMap<String, &Local>,
    before: &Base,
) -> BTreeMap<String, u64> {
    entries
        .iter()
        .filter(|(_, entry)| entry.kind == EntryKind::File)
        .filter_map(|(rel, entry)| {
            let id = if before.entries.get(rel) == Some(entry) {
                match before.ids.get(rel) {
                    Some(id) => Some(*id),
                    None => walked
                        .get(rel)
                        .filter(|l| same_local(&l.entry, entry))
                        .and_then(|l| l.id),
                }
            } else {
                let metadata = std::fs::symlink_metadata(dir.join(rel)).ok()?;
                let now = Entry {
                    size: metadata.len(),
                    mtime_ms: mtime_ms(&metadata),
                    ..entry.clone()
                };
                (metadata.is_file() && same_local(&now, entry))
                    .then(|| file_id(&metadata))
                    .flatten()
            };
            Some((rel.clone(), id?))
        })
        .collect()
}

/// A conflict copy with the size and time of the version that keeps the name would, moved
/// over it by a user (the usual way to settle a conflict), look like that version unchanged:
/// its time is set 1 ms later, on every device alike (the copy's entry carries it).
fn apart_in_time(copy_path: &Path, copy: &mut Entry, name: &Entry) -> Result<()> {
    if copy.kind == EntryKind::File
        && name.kind == EntryKind::File
        && copy.size == name.size
        && copy.mtime_ms == name.mtime_ms
    {
        copy.mtime_ms += 1;
        set_times_and_mode(copy_path, copy)
            .map_err(|e| local_error(copy_path, "cannot set the time of", e))?;
    }
    Ok(())
}

/// Lowercase hex, as content hashes are written in entries.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYY-MM-DD HH.MM.SS` (UTC) of a time in milliseconds since the Unix epoch.
fn date_of(ms: u64) -> String {
    let seconds = ms / 1000;
    let (days, rest) = ((seconds / 86_400) as i64, seconds % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian, eras of 400 years).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}.{:02}.{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The name of the conflict copy of `rel` written by `device` at `mtime_ms`:
/// `name (conflict DEVICE DATE).ext`.
fn conflict_name(rel: &str, device: &str, mtime_ms: u64) -> String {
    let (folder, file) = match rel.rsplit_once('/') {
        Some((folder, file)) => (format!("{folder}/"), file),
        None => (String::new(), rel),
    };
    let (stem, ext) = match file.rfind('.') {
        Some(at) if at > 0 => (&file[..at], &file[at..]),
        _ => (file, ""),
    };
    let device: String = device
        .chars()
        .map(|c| {
            if c == '/' || c == '(' || c == ')' {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!(
        "{folder}{stem} (conflict {device} {}){ext}",
        date_of(mtime_ms)
    )
}

impl Session {
    /// Syncs the folder `dir` both ways with the folder `name` in the vault (under
    /// `folder/<name>/`): pulls, decides every path, applies changes made elsewhere here and
    /// changes made here to the vault (conflicts as conflict copies), then pushes. See the
    /// module docs for the rules, and [`FolderOptions`] for a dry run. `progress` is called
    /// with each file's path and progress as it moves.
    ///
    /// # Errors
    /// `Config` when `dir` is missing or not a folder (nothing changes), or its base belongs
    /// to another vault or folder; the sync's error when a pull or push fails. A path that
    /// cannot be synced is in the report's errors.
    pub async fn sync_folder<T: Transport + ?Sized>(
        &self,
        dir: &Path,
        name: &str,
        options: &FolderOptions,
        transport: &T,
        concurrency: usize,
        mut progress: impl FnMut(&str, FileProgress),
    ) -> Result<FolderReport> {
        let started = Instant::now();
        let exclude = &options.exclude;
        let root = root_for(name, true)?;
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Config(format!(
                    "{} is not a folder: nothing was synced",
                    dir.display()
                )))
            }
            Err(e) => {
                return Err(Error::Config(format!(
                    "{} cannot be read ({e}): nothing was synced, and nothing is deleted \
                     anywhere for it",
                    dir.display()
                )))
            }
        }
        let vault = self.read(|e| e.vault_id())?.0;
        let stored = Base::read(dir)?;
        // This device's first sync of the folder: nothing agreed on anywhere in it yet.
        let first_sync = stored.is_none();
        let mut base = stored.unwrap_or(Base {
            vault,
            name: name.to_owned(),
            ..Base::default()
        });
        if base.vault != vault || base.name != name {
            return Err(Error::Config(format!(
                "{} is synced as the folder {:?} of another vault or name: sync it under that \
                 one, or remove its {BASE_FILE}",
                dir.display(),
                base.name
            )));
        }
        // Read before the pull, which ends what a confirmation allowed.
        let (limit, confirmed) =
            self.read(|e| (e.mass_deletion_limit(), e.deletions_confirmed()))?;
        // A pull that met errors may not have brought in everything: no deletion here follows
        // from it.
        let pulled_whole = self
            .sync(transport, concurrency, |_| {})
            .await?
            .errors
            .is_empty();
        if confirmed {
            // The pull ended the confirmation; it holds until a push of this folder's
            // deletions (a dry run, or a run that stops early, leaves it for the next).
            self.confirm_deletions()?;
        }

        let mut patterns = vec![
            BASE_FILE.to_owned(),
            format!("{BASE_FILE}.new"),
            ".*.part".into(),
        ];
        patterns.extend(exclude.iter().cloned());
        let filter = Filter::with(&patterns, true)?;
        let mut walked = Walk::default();
        walk(dir, "", &filter, &mut walked);
        if !walked.read_whole.contains("") {
            let (_, e) = walked.errors.remove(0);
            return Err(e);
        }
        let mut report = FolderReport {
            errors: std::mem::take(&mut walked.errors),
            ..FolderReport::default()
        };
        let local: BTreeMap<String, &Local> =
            walked.found.iter().map(|l| (l.rel.clone(), l)).collect();
        let me = self.device()?;
        let labels: BTreeMap<DeviceId, String> = self
            .devices(u64::MAX)?
            .into_iter()
            .map(|d| (d.id, d.label))
            .collect();
        let label = |device: DeviceId| match labels.get(&device) {
            Some(label) if !label.is_empty() => label.clone(),
            _ => device.to_string()[..8].to_owned(),
        };
        let prefix = entry_key(&root, "");
        let mut remote: BTreeMap<String, (Entry, DeviceId)> = BTreeMap::new();
        // Paths the vault holds a deletion note for: the version deleted.
        let mut deleted: BTreeMap<String, Deletion> = BTreeMap::new();
        // Entries this build cannot read: what they say is unknown, so nothing is done there.
        let mut unreadable: BTreeSet<String> = BTreeSet::new();
        for key in self.keys(prefix.as_bytes())? {
            let rel = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            let Some((value, writer)) = self.read(|e| {
                e.record(&key)
                    .and_then(|r| r.value.clone().map(|v| (v, r.stamp.device)))
            })?
            else {
                continue;
            };
            match Stored::decode(&rel, &value) {
                Ok(Stored::Entry(entry)) => {
                    remote.insert(rel, (entry, writer));
                }
                Ok(Stored::Deleted(note)) => {
                    deleted.insert(rel, note);
                }
                Err(e) => {
                    unreadable.insert(rel.clone());
                    report.errors.push((rel, e));
                }
            }
        }
        // Every file content the vault holds or deleted at some path, by hash.
        let hashes: BTreeSet<&str> = remote
            .values()
            .map(|(entry, _)| entry.hash.as_str())
            .chain(deleted.values().map(|note| note.hash.as_str()))
            .filter(|hash| !hash.is_empty())
            .collect();
        // Left out here (a pattern, unreadable), excluded by name wherever it comes from, or
        // written by a newer release: left as it was.
        // What the last run sent and did not see pushed: agreed on where the vault holds it
        // now (its push went out with a later sync), else the base stays as it was.
        // Sent by a run that did not see its push through: a version of ours another device
        // may have replaced knowingly since.
        let sent_before: BTreeSet<String> = base.sent.keys().cloned().collect();
        for (rel, sent) in std::mem::take(&mut base.sent) {
            if remote.get(&rel).map(|(entry, _)| entry) == sent.as_ref() {
                match sent {
                    Some(entry) => {
                        base.entries.insert(rel, entry);
                    }
                    // A deletion agreed on now keeps the version it deleted, as one agreed
                    // in its own run does: a file made there again names it as its parent.
                    None => {
                        if let Some(old) = base.entries.remove(&rel) {
                            if old.kind == EntryKind::File && !old.hash.is_empty() {
                                base.gone.insert(rel, old.hash);
                            }
                        }
                    }
                }
            }
        }
        let excluded = |rel: &str| {
            let name = rel.rsplit_once('/').map_or(rel, |(_, n)| n);
            filter.leaves_out(rel, name)
                || unreadable.contains(rel)
                || walked
                    .left_out
                    .iter()
                    .any(|x| rel == x || rel.starts_with(&format!("{x}/")))
        };
        let paths: BTreeSet<String> = local
            .keys()
            .chain(base.entries.keys())
            .chain(remote.keys())
            .cloned()
            .collect();
        let mut next: BTreeMap<String, Entry> = BTreeMap::new();
        let mut doomed_folders: Vec<PathBuf> = Vec::new();
        let mut sync = Sync {
            session: self,
            dir,
            root: &root,
            transport,
            concurrency,
            progress: &mut progress,
            report: &mut report,
            deferred: Vec::new(),
            fetching: Vec::new(),
            just_deferred: false,
            sent: BTreeSet::new(),
        };
        // What to do with each path, decided before anything is done.
        let our_label = label(me);
        // Synced before and gone from the disk now: deleted (or moved away) here.
        let deleted_here = |rel: &str| base.entries.contains_key(rel) && !local.contains_key(rel);
        let mut plan: Vec<(String, Action)> = Vec::new();
        for rel in paths {
            if excluded(&rel) {
                if let Some(b) = base.entries.get(&rel) {
                    next.insert(rel, b.clone());
                }
                continue;
            }
            let l = local.get(&rel).map(|l| &l.entry);
            let b = base.entries.get(&rel);
            let r = remote.get(&rel);
            let views = Views {
                local: l,
                seen: l.is_some() || known_absent(&rel, &local, &walked),
                base: b,
                vault: r.map(|(entry, writer)| (entry, *writer)),
                deleted: deleted.get(&rel),
                first_sync,
                pulled_whole,
                me,
            };
            let mut questions = Asked {
                sync: &sync,
                rel: &rel,
                our_label: &our_label,
                local: local.get(&rel).copied(),
                base: b,
                vault: r.map(|(entry, _)| entry),
                deleted: deleted.get(&rel),
                hashes: &hashes,
                deleted_here: &deleted_here,
                sent_before: sent_before.contains(&rel),
                base_id: base.ids.get(&rel).copied(),
            };
            let action = decide(&views, &mut questions);
            plan.push((rel, action));
        }
        keep_folders(&mut plan, &local, &base.entries, &remote);
        // A dry run shows the deletions instead.
        if !confirmed && !options.dry_run {
            if let Some(limit) = limit {
                guard_deletions(name, &base, &plan, limit)?;
            }
        }
        sync.report.changes = plan
            .iter()
            .filter_map(|(rel, action)| Some((rel.clone(), FolderChange::of(*action)?)))
            .collect();
        if options.dry_run {
            let report = sync.report;
            report.dry_run = true;
            for (rel, action) in &plan {
                match action {
                    Action::Upload => report.uploaded += 1,
                    Action::Download => report.downloaded += 1,
                    Action::DeleteHere => report.deleted_here += 1,
                    Action::DeleteThere => report.deleted_there += 1,
                    Action::Conflict { ours_win } => {
                        let (Some(l), Some((theirs, writer))) = (local.get(rel), remote.get(rel))
                        else {
                            continue;
                        };
                        report.conflicts.push(if *ours_win {
                            conflict_name(rel, &label(*writer), theirs.mtime_ms)
                        } else {
                            conflict_name(rel, &label(me), l.entry.mtime_ms)
                        });
                    }
                    Action::SetApart => {
                        if let Some(l) = local.get(rel) {
                            report
                                .conflicts
                                .push(conflict_name(rel, &label(me), l.entry.mtime_ms));
                        }
                    }
                    Action::Keep | Action::Forget | Action::TakeVault => {}
                }
            }
            report.duration = started.elapsed();
            return Ok(std::mem::take(report));
        }
        // Deletions here first, deepest first, and the folders they empty: a file or link
        // that replaces a folder (or a folder that replaces a file) finds its place free.
        plan.sort_by_key(|(rel, action)| match action {
            Action::DeleteHere => (0, std::cmp::Reverse(rel.clone()), String::new()),
            _ => (1, std::cmp::Reverse(String::new()), rel.clone()),
        });
        let first_kept = plan
            .iter()
            .position(|(_, action)| *action != Action::DeleteHere)
            .unwrap_or(plan.len());
        let mut return_base = false;
        for (at, (rel, action)) in plan.into_iter().enumerate() {
            if at == first_kept {
                remove_emptied(&mut doomed_folders, sync.report);
            }
            let b = base.entries.get(&rel);
            let r = remote.get(&rel);
            // The hash our version replaces (or the last one deleted there: as the vault's
            // deletion note names it, else as this device deleted it), for whoever reads our
            // change. Ours unchanged, written again (a deletion made without it is undone),
            // names the version that deletion deleted: a device that still holds that one
            // sees it replaced knowingly, not an overlap to keep a copy of.
            let noted = deleted
                .get(&rel)
                .map(|note| note.hash.as_str())
                .filter(|hash| !hash.is_empty());
            let parent = match (b, local.get(&rel)) {
                (Some(b), Some(l)) if same_local(&l.entry, b) => noted.unwrap_or(&b.parent),
                _ => b
                    .map(|b| b.hash.as_str())
                    .or(noted)
                    .or_else(|| base.gone.get(&rel).map(String::as_str))
                    .unwrap_or(""),
            };
            let outcome = match (action, local.get(&rel), r) {
                (Action::Keep, _, _) => Ok(b.cloned()),
                (Action::Forget, _, _) => Ok(None),
                (Action::TakeVault, _, Some((entry, _))) => Ok(Some(entry.clone())),
                (Action::Upload, Some(l), _) => sync.upload(l, parent).await,
                // Written by this run already (a conflict copy made again under the name of
                // one moved away here): it stays.
                (Action::DeleteThere, _, _) if sync.sent.contains(&rel) => {
                    Ok(next.get(&rel).cloned())
                }
                (Action::DeleteThere, _, Some((entry, _))) => {
                    sync.delete_there(&rel, entry).map(|()| None)
                }
                // A folder here that the vault turned into a file or link, and that still holds
                // what this device does not sync (left out by a pattern, unreadable, made since
                // the walk): it cannot make way, so it keeps the name, as in a conflict, and the
                // vault's version becomes the copy (before, every sync failed here).
                (Action::Download, Some(l), Some((entry, writer)))
                    if l.entry.kind == EntryKind::Dir
                        && entry.kind != EntryKind::Dir
                        && sync.still_as_walked(&rel, Some(&l.entry))
                        && holds_unsynced(&l.path) =>
                {
                    sync.conflict(l, entry, true, &label(me), &label(*writer), &mut next)
                        .await
                        .map(Some)
                }
                (Action::Download, l, Some((entry, _))) => {
                    sync.download(&rel, entry, l.map(|l| &l.entry)).await
                }
                (Action::DeleteHere, _, _) => {
                    if let Some(b) = b {
                        if b.kind == EntryKind::Dir {
                            doomed_folders.push(dir.join(&rel));
                        } else if !sync.delete_here(&rel, b) {
                            return_base = true;
                        }
                    }
                    Ok(None)
                }
                (Action::SetApart, Some(l), r) => {
                    // The vault's own version there, when another than the one agreed on, is
                    // kept as a copy too.
                    let theirs = r
                        .filter(|(entry, _)| Some(entry) != b)
                        .map(|(entry, writer)| (entry, label(*writer)));
                    sync.move_to_copy(
                        l,
                        r.map(|(entry, _)| entry),
                        theirs
                            .as_ref()
                            .map(|(entry, label)| (*entry, label.as_str())),
                        &label(me),
                        &deleted_here,
                        &mut next,
                    )
                    .await
                    .map(|()| None)
                }
                (Action::Conflict { ours_win }, Some(l), Some((entry, writer))) => sync
                    .conflict(l, entry, ours_win, &label(me), &label(*writer), &mut next)
                    .await
                    .map(Some),
                // `decide` names a side only when it holds the path: never met.
                (action, _, _) => Err(Error::Config(format!(
                    "{action:?} decided for {rel:?} without the entry it acts on"
                ))),
            };
            match outcome {
                // Sent or read with the batches below, which settle its place in the base.
                Ok(None) if std::mem::take(&mut sync.just_deferred) => {}
                Ok(Some(entry)) => {
                    next.insert(rel, entry);
                }
                // Kept here (changed during the sync): as it was, for the next run to decide.
                Ok(None) if std::mem::take(&mut return_base) => {
                    if let Some(b) = b {
                        next.insert(rel, b.clone());
                    }
                }
                Ok(None) => {}
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                Err(e) => {
                    // Unsynced: as it was, so that the next sync sees the same change again.
                    if let Some(b) = b {
                        next.insert(rel.clone(), b.clone());
                    }
                    sync.report.errors.push((rel, e));
                }
            }
        }
        // The files changed elsewhere, read by pack; then those changed here, in packs they
        // share.
        let mut settled = sync.fetch_deferred().await?;
        settled.extend(sync.send_deferred().await?);
        let sent = std::mem::take(&mut sync.sent);
        for (rel, outcome) in settled {
            match outcome {
                Ok(entry) => {
                    next.insert(rel, entry);
                }
                Err(e) => {
                    // Unsynced: as it was, so that the next sync sees the same change again.
                    if let Some(b) = base.entries.get(&rel) {
                        next.insert(rel.clone(), b.clone());
                    }
                    report.errors.push((rel, e));
                }
            }
        }
        remove_emptied(&mut doomed_folders, &mut report);
        // Until the push below succeeds, what this run sent is not agreed on: after a push
        // that failed or did not happen (a dropped connection, the mass-deletion guard, a key
        // generation not here yet) or a crash during it, the next run takes it as agreed only
        // where the vault holds it by then; else it sees those changes again, and an edit that
        // a deletion elsewhere beat in the vault meanwhile stays an edit instead of being
        // deleted here as agreed.
        let mut unsent = next.clone();
        let mut pending = BTreeMap::new();
        for rel in &sent {
            pending.insert(rel.clone(), next.get(rel).cloned());
            match base.entries.get(rel) {
                Some(b) => unsent.insert(rel.clone(), b.clone()),
                None => unsent.remove(rel),
            };
        }
        let written = |entries: BTreeMap<String, Entry>, sent| Base {
            vault,
            name: name.to_owned(),
            gone: base.gone_after(&entries),
            ids: ids_of(dir, &entries, &local, &base),
            entries,
            sent,
        };
        written(unsent, pending).write(dir)?;
        self.sync(transport, concurrency, |_| {}).await?;
        if self.read(|e| e.unpushed())? == 0 {
            written(next, BTreeMap::new()).write(dir)?;
        }
        report.duration = started.elapsed();
        Ok(report)
    }
}

/// The files a folder sync sends, handed to [`Session::put_files`] as it asks.
struct FolderFiles<'a, P> {
    root: &'a str,
    pending: std::vec::IntoIter<(String, PathBuf, Entry)>,
    /// Files handed over and not stored yet, by content key: path and entry.
    sending: BTreeMap<Vec<u8>, (String, Entry)>,
    /// The path of the file being read, for progress.
    reading: String,
    /// Each path's entry as written, or why not.
    done: Vec<(String, Result<Entry>)>,
    report: &'a mut FolderReport,
    progress: &'a mut P,
}

impl<P: FnMut(&str, FileProgress)> FileBatch for FolderFiles<'_, P> {
    type Source = AsWalked;

    fn next_file(&mut self) -> Option<(Vec<u8>, Self::Source)> {
        for (rel, path, entry) in self.pending.by_ref() {
            match std::fs::File::open(&path) {
                // Saved again since the walk (the entry's size and time are the walk's): not
                // sent with the walk's times, the next run sends it.
                Ok(file)
                    if !file.metadata().is_ok_and(|m| {
                        m.len() == entry.size && super::partial_file::mtime_ms(&m) == entry.mtime_ms
                    }) =>
                {
                    self.done.push((rel.clone(), Err(changed_meanwhile(&rel))));
                }
                Ok(file) => {
                    let key = content_key(self.root, &rel).into_bytes();
                    let source = match AsWalked::of(
                        file,
                        &rel,
                        (entry.size, entry.mtime_ms),
                        changed_meanwhile,
                    ) {
                        Ok(source) => source,
                        Err(e) => {
                            let error = local_error(&path, "cannot read", e);
                            self.done.push((rel, Err(error)));
                            continue;
                        }
                    };
                    self.reading.clone_from(&rel);
                    self.sending.insert(key.clone(), (rel, entry));
                    return Some((key, source));
                }
                Err(e) => self
                    .done
                    .push((rel, Err(local_error(&path, "cannot read", e)))),
            }
        }
        None
    }

    fn records(&mut self, key: &[u8], report: &FileReport) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let Some((rel, entry)) = self.sending.get_mut(key) else {
            return Vec::new();
        };
        entry.size = report.size;
        entry.hash.clone_from(&report.content_hash);
        vec![(entry_key(self.root, rel).into_bytes(), Some(entry.encode()))]
    }

    fn stored(&mut self, key: &[u8], report: &FileReport) {
        let Some((rel, entry)) = self.sending.remove(key) else {
            return;
        };
        self.report.chunks_uploaded += report.chunks_uploaded;
        self.report.chunks_reused += report.chunks_reused;
        self.report.uploaded += 1;
        self.done.push((rel, Ok(entry)));
    }

    fn failed(&mut self, key: &[u8], error: &Error) {
        if let Some((rel, _)) = self.sending.remove(key) {
            self.done.push((rel, Err(error.clone())));
        }
    }

    fn progress(&mut self, _key: &[u8], progress: FileProgress) {
        (self.progress)(&self.reading, progress);
    }
}

/// Removes the folders deleted elsewhere once emptied, deepest first; a folder still holding
/// something (a file made here meanwhile) stays.
fn remove_emptied(folders: &mut Vec<PathBuf>, report: &mut FolderReport) {
    folders.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for folder in folders.drain(..) {
        if std::fs::remove_dir(&folder).is_ok() {
            report.deleted_here += 1;
        }
    }
}

/// A path that would end a file or link while something below it stays (made in it here
/// while another device turned it into a file, or the reverse) ends a folder instead: the side
/// that is one keeps the name, the other becomes the copy (`folder_kept`).
fn keep_folders(
    plan: &mut [(String, Action)],
    local: &BTreeMap<String, &Local>,
    base: &BTreeMap<String, Entry>,
    remote: &BTreeMap<String, (Entry, DeviceId)>,
) {
    let sides = |rel: &str| {
        (
            local.get(rel).map(|l| &l.entry),
            base.get(rel),
            remote.get(rel).map(|(entry, _)| entry),
        )
    };
    let stays: BTreeSet<&str> = plan
        .iter()
        .filter(|(rel, action)| {
            let (l, b, r) = sides(rel);
            outcome(*action, l, b, r).is_some()
        })
        .map(|(rel, _)| rel.as_str())
        .collect();
    let mut changes = Vec::new();
    for (at, (rel, action)) in plan.iter().enumerate() {
        let (l, b, r) = sides(rel);
        if matches!(outcome(*action, l, b, r), None | Some(EntryKind::Dir)) {
            continue;
        }
        // Paths below `rel` sort from `rel/` up to `rel0` ('0' follows '/').
        let below = stays
            .range(format!("{rel}/").as_str()..format!("{rel}0").as_str())
            .next()
            .is_some();
        if let Some(kept) = below.then(|| folder_kept(l, r)).flatten() {
            changes.push((at, kept));
        }
    }
    for (at, kept) in changes {
        plan[at].1 = kept;
    }
}

/// Whether the walk tells that `rel`, which it did not find, is not there: the nearest of its
/// folders that is there (the root at least) was read whole. Below a folder that could not be
/// read, what is missing is unknown; below one that is gone (deleted here), it is gone.
fn known_absent(rel: &str, local: &BTreeMap<String, &Local>, walked: &Walk) -> bool {
    let mut folder = rel;
    loop {
        folder = folder.rsplit_once('/').map_or("", |(p, _)| p);
        if folder.is_empty() {
            return walked.read_whole.contains(folder);
        }
        if let Some(there) = local.get(folder) {
            // Below a file or link nothing can be.
            return there.entry.kind != EntryKind::Dir || walked.read_whole.contains(folder);
        }
    }
}

/// The mass-deletion guard for a folder: a plan that deletes more than `limit` percent of what
/// was last synced, on this device or in the vault, is not carried out. Counted in records (a
/// file is its entry and its content, a folder or a link its entry; at least
/// [`MASS_DELETION_MIN_KEYS`]). The vault-wide guard counts only the deleted records: since
/// entries are deleted by a note (a write), that is a file's content alone, so this guard,
/// which stops before anything is done, stops first.
fn guard_deletions(name: &str, base: &Base, plan: &[(String, Action)], limit: u8) -> Result<()> {
    let records = |e: &Entry| if e.kind == EntryKind::File { 2 } else { 1 };
    let all: u64 = base.entries.values().map(records).sum();
    for (here, deleting) in [(true, Action::DeleteHere), (false, Action::DeleteThere)] {
        let doomed: Vec<&Entry> = plan
            .iter()
            .filter(|(_, action)| *action == deleting)
            .filter_map(|(rel, _)| base.entries.get(rel))
            .collect();
        let count: u64 = doomed.iter().map(|e| records(e)).sum();
        if count >= MASS_DELETION_MIN_KEYS && count * 100 > u64::from(limit) * all {
            return Err(Error::FolderMassDeletion {
                folder: name.to_owned(),
                deleting: doomed.len() as u64,
                paths: base.entries.len() as u64,
                here,
                limit_percent: limit,
            });
        }
    }
    Ok(())
}

/// What the decision asks of one path, answered from the disk and the vault's history.
struct Asked<'s, 'a, T: ?Sized, P> {
    sync: &'s Sync<'a, T, P>,
    rel: &'s str,
    /// This device's name in conflict copies.
    our_label: &'s str,
    local: Option<&'s Local>,
    base: Option<&'s Entry>,
    vault: Option<&'s Entry>,
    /// The vault's deletion note, where it holds one in place of an entry.
    deleted: Option<&'s Deletion>,
    /// The content hashes of every file the vault holds, or deleted, at any path.
    hashes: &'s BTreeSet<&'s str>,
    /// Whether a path was synced before and is gone from the disk now.
    deleted_here: &'s (dyn Fn(&str) -> bool + std::marker::Sync),
    /// Whether an earlier run sent the path and did not see its push through.
    sent_before: bool,
    /// Which file of the file system the base's version was, where known.
    base_id: Option<u64>,
}

impl<T: Transport + ?Sized, P: FnMut(&str, FileProgress)> Questions for Asked<'_, '_, T, P> {
    /// Only where the file system names the file, and another than the base's: its bytes are
    /// then hashed. Where they cannot be (the vault holds no content there), size and time
    /// decide, as they do everywhere else.
    fn replaced_by_other_bytes(&mut self) -> bool {
        let (Some(local), Some(base), Some(agreed)) = (self.local, self.base, self.base_id) else {
            return false;
        };
        if local.id.is_none_or(|id| id == agreed) || base.hash.is_empty() {
            return false;
        }
        self.sync
            .local_hash(self.rel, &local.path)
            .is_some_and(|(ours, _)| hex(&ours) != base.hash)
    }

    fn holds_vaults_bytes(&mut self) -> bool {
        self.local.is_some_and(|l| self.sync.holds_vaults_bytes(l))
    }

    /// Only where an earlier run sent the path: the same bytes moved there by a user since
    /// (a file moved back to a name another device gave to a new file) are a new version of
    /// the path, not the one the vault's replaced (folder seed 2874: that move was lost).
    fn vault_made_from_local(&mut self) -> bool {
        let (Some(local), Some(vault), true) = (self.local, self.vault, self.sent_before) else {
            return false;
        };
        let ours = self.sync.local_hash(self.rel, &local.path);
        ours.is_some_and(|(ours, _)| hex(&ours) == vault.parent)
    }

    fn ours_kept_as_copy(&mut self) -> bool {
        self.local.is_some_and(|local| {
            self.sync
                .holds_copy_of(local, self.our_label, self.deleted_here)
        })
    }

    /// Follows the versions each one replaced (`parent`) through the vault's earlier versions
    /// of the path that this replica holds: forked when the vault's line meets what the base's
    /// version replaced (or the empty start of a new file) before it meets the base's, unless
    /// another device already kept ours as the copy it would become (`copy_of_ours_kept`). A
    /// line cut by a version this replica never saw (merged away by a checkpoint, or dropped by
    /// the history policy) cannot tell: it counts as forked, so that an edit that lost in the
    /// vault is kept as a copy, unless another device kept ours as that copy already (there,
    /// or deleted by a user), as in an overlap: what became of that copy stands.
    fn vault_forked_before_base(&mut self) -> bool {
        let (Some(base), Some(vault)) = (self.base, self.vault) else {
            return true;
        };
        match self.follow(&vault.hash, &vault.parent, None) {
            Some(Meets::Ours) => false,
            // Overlapped, and ours already kept as the copy it would become (another device
            // met the same overlap): ours lives on there, or a user deleted it there.
            Some(Meets::BeforeOurs) => !self.copy_of_ours_kept(&base.hash),
            // Cut (or looping): kept as a copy unless another device kept ours already.
            Some(Meets::Cut) | None => !self.copy_of_ours_kept(&base.hash),
        }
    }

    /// The deletion note's line (the versions it lists, then those this replica holds) meets
    /// what ours replaced before it meets ours, our bytes are at no other path of the vault
    /// (live, or named by a note: another device kept them, as a copy of any name, or a user
    /// moved them), and no earlier deletion here deleted them (as the note lists them, or as
    /// the notes this replica holds say). A cut line is no sign of a
    /// deletion made without ours: its writer gave the line as far as it knew it.
    fn deletion_missed_ours(&mut self) -> bool {
        let (Some(base), Some(note)) = (self.base, self.deleted) else {
            return false;
        };
        self.follow(&note.hash, &note.parent, Some(note)) == Some(Meets::BeforeOurs)
            && !self.hashes.contains(base.hash.as_str())
            && !note.deleted_before.contains(&base.hash)
            && self
                .sync
                .replaced_versions(self.rel)
                .is_ok_and(|(_, deleted)| !deleted.contains(&base.hash))
    }
}

/// Where the vault's line, followed back, first meets what this device knows of its own
/// version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Meets {
    /// Ours: the vault's version was made from ours (or is ours).
    Ours,
    /// What ours replaced (or a new file's empty start): made without ours.
    BeforeOurs,
    /// Neither, as far as the versions known here go.
    Cut,
}

impl<T: Transport + ?Sized, P: FnMut(&str, FileProgress)> Asked<'_, '_, T, P> {
    /// Follows the line of the vault's version `hash` (which replaced `parent`) back: through
    /// the versions `note` lists first, as its writer gave them, then through those of the
    /// path this replica holds. Ours anywhere on it: made from ours (equal bytes may come back
    /// on a line, a copy moved over the name, so what ours replaced is looked for only once
    /// ours is not there). `None` when the history cannot be read.
    fn follow(&self, hash: &str, parent: &str, note: Option<&Deletion>) -> Option<Meets> {
        let base = self.base?;
        let (replaced, _) = self.sync.replaced_versions(self.rel).ok()?;
        let mut theirs: Vec<String> = vec![hash.to_owned()];
        match note {
            Some(note) => {
                theirs.push(note.parent.clone());
                theirs.extend(note.earlier.iter().cloned());
                let last = theirs.pop().unwrap_or_default();
                theirs.extend(line(&last, &replaced));
            }
            None => theirs.extend(line(parent, &replaced)),
        }
        if theirs.contains(&base.hash) {
            return Some(Meets::Ours);
        }
        // What ours replaced, one after the other, back to a new file's empty start.
        let mut before_ours: BTreeSet<String> = line(&base.parent, &replaced).into_iter().collect();
        before_ours.insert(String::new());
        match theirs.iter().any(|version| before_ours.contains(version)) {
            true => Some(Meets::BeforeOurs),
            false => Some(Meets::Cut),
        }
    }

    /// The entry key of the conflict copy the local file would become.
    fn copy_key(&self) -> Option<String> {
        let local = self.local?;
        let copy = conflict_name(self.rel, self.our_label, local.entry.mtime_ms);
        Some(entry_key(self.sync.root, &copy))
    }

    /// Whether another device kept the local file (of content `hash`) as the conflict copy it
    /// would become: the vault holds that copy with that content, or held it and a user
    /// deleted it (what became of the copy stands): its deletion note names that content, or
    /// it was deleted by a build that left no note.
    fn copy_of_ours_kept(&self, hash: &str) -> bool {
        let Some(copy_key) = self.copy_key() else {
            return false;
        };
        let copy = self
            .sync
            .session
            .read(|e| e.record(copy_key.as_bytes()).map(|r| r.value.clone()));
        match copy {
            Ok(Some(Some(value))) => match Stored::decode("", &value) {
                Ok(Stored::Entry(copy)) => copy.hash == hash,
                Ok(Stored::Deleted(note)) => note.hash == hash,
                Err(_) => false,
            },
            Ok(Some(None)) => true,
            _ => false,
        }
    }
}

/// `start` and the versions before it, each the one the last replaced, as far as `replaced`
/// tells (a loop ends it); a line that reaches a new file's empty start ends with `""`.
fn line(start: &str, replaced: &BTreeMap<String, String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut at = start;
    while !out.iter().any(|v| v == at) {
        out.push(at.to_owned());
        match replaced.get(at) {
            Some(before) if !at.is_empty() => at = before,
            _ => break,
        }
    }
    out
}

/// Whether the folder at `path` holds anything but the partial files of this sync's own
/// downloads (`.<name>.<tag>.part`), which are removed (one that cannot be read counts as
/// holding; one gone, as empty).
fn holds_unsynced(path: &Path) -> bool {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => return e.kind() != std::io::ErrorKind::NotFound,
    };
    let mut holds = false;
    for entry in entries {
        let Ok(entry) = entry else {
            return true;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let partial = name.starts_with('.') && name.ends_with(".part");
        if !(partial && entry.file_type().is_ok_and(|t| t.is_file()))
            || std::fs::remove_file(entry.path()).is_err()
        {
            holds = true;
        }
    }
    holds
}

/// A path found changed after the walk: left as it is.
fn changed_meanwhile(rel: &str) -> Error {
    Error::Config(format!(
        "{rel:?} changed during the sync: kept, the next run decides"
    ))
}

/// An entry of the vault not written here, and why.
fn refused_entry(rel: &str, why: &str) -> Error {
    Error::Config(format!("refused entry {rel:?}: {why}"))
}

/// One folder sync's moves between the folder and the vault.
struct Sync<'a, T: ?Sized, P> {
    session: &'a Session,
    dir: &'a Path,
    root: &'a str,
    transport: &'a T,
    concurrency: usize,
    progress: &'a mut P,
    report: &'a mut FolderReport,
    /// Files to send, in one batch after the walk's other moves: their paths, as walked, and
    /// their entries as they will be written.
    deferred: Vec<(String, PathBuf, Entry)>,
    /// Files to read, in one batch after the walk's other moves (see [`Sync::fetch_deferred`]).
    fetching: Vec<Fetch>,
    /// The last upload or download was deferred to its batch.
    just_deferred: bool,
    /// Paths whose change this run sends to the vault (uploads, deletions there, conflict
    /// copies): agreed on only once the push that ends the run succeeded.
    sent: BTreeSet<String>,
}

/// Files up to this size are read with the others of a folder sync, by pack, whole in memory
/// one at a time; bigger ones alone, through a partial file a later sync resumes.
const READ_TOGETHER_UP_TO: u64 = 32 << 20;

/// A file of the vault waiting to be read into the folder with the others.
struct Fetch {
    rel: String,
    /// The local path as the walk saw it (checked again just before the batch).
    walked: Option<Entry>,
    entry: Entry,
    /// The path in the folder, relative.
    path: PathBuf,
    content: Vec<u8>,
    value: Vec<u8>,
}

impl<T: Transport + ?Sized, P: FnMut(&str, FileProgress)> Sync<'_, T, P> {
    /// Sends a local path to the vault as the version after `parent` (a content hash): its
    /// entry as written, or, for a regular file, `None` and the file is deferred to
    /// [`Sync::send_deferred`] (`just_deferred` says so).
    async fn upload(&mut self, local: &Local, parent: &str) -> Result<Option<Entry>> {
        if local.entry.kind == EntryKind::File {
            let mut entry = local.entry.clone();
            entry.parent = parent.to_owned();
            self.sent.insert(local.rel.clone());
            self.deferred
                .push((local.rel.clone(), local.path.clone(), entry));
            self.just_deferred = true;
            return Ok(None);
        }
        self.upload_as(&local.rel, &local.path, &local.entry, parent)
            .await
            .map(Some)
    }

    /// Sends the deferred files in one batch: each path's entry as written, or why not.
    ///
    /// # Errors
    /// `Cancelled` after [`Session::cancel_sync`]; any other failure is the paths'.
    async fn send_deferred(&mut self) -> Result<Vec<(String, Result<Entry>)>> {
        let deferred = std::mem::take(&mut self.deferred);
        if deferred.is_empty() {
            return Ok(Vec::new());
        }
        let mut files = FolderFiles {
            root: self.root,
            pending: deferred.into_iter(),
            sending: BTreeMap::new(),
            reading: String::new(),
            done: Vec::new(),
            report: &mut *self.report,
            progress: &mut *self.progress,
        };
        let outcome = self
            .session
            .put_files(&mut files, self.transport, None, self.concurrency)
            .await;
        let mut done = std::mem::take(&mut files.done);
        let left: Vec<_> = files.pending.collect();
        match outcome {
            Ok(totals) => self.report.bytes_sent += totals.bytes_sent,
            Err(Error::Cancelled) => return Err(Error::Cancelled),
            Err(e) => done.extend(left.into_iter().map(|(rel, _, _)| (rel, Err(e.clone())))),
        }
        Ok(done)
    }

    async fn upload_as(
        &mut self,
        rel: &str,
        path: &Path,
        entry: &Entry,
        parent: &str,
    ) -> Result<Entry> {
        let mut entry = entry.clone();
        entry.parent = parent.to_owned();
        self.sent.insert(rel.to_owned());
        if entry.kind == EntryKind::File {
            // Sent as it is now (a conflict's side, a copy this sync made): a change before
            // the end of the read fails it.
            let mut source = AsWalked::open(path, rel, changed_meanwhile)?;
            let content = content_key(self.root, rel);
            let progress = &mut *self.progress;
            let stored = self
                .session
                .put_file(
                    content.clone(),
                    &mut source,
                    self.transport,
                    None,
                    self.concurrency,
                    |p| progress(rel, p),
                )
                .await?;
            self.report.bytes_sent += stored.bytes_sent;
            self.report.chunks_uploaded += stored.chunks_uploaded;
            self.report.chunks_reused += stored.chunks_reused;
            entry.size = stored.size;
            entry.hash = self
                .session
                .read(|e| e.file_info(content.as_bytes()))??
                .map(|info| info.content_hash)
                .unwrap_or_default();
        }
        self.session
            .put(entry_key(self.root, rel), entry.encode())?;
        // A folder or link where a file was: the file's content goes with it.
        let content = content_key(self.root, rel);
        if entry.kind != EntryKind::File && self.session.get(content.as_bytes())?.is_some() {
            self.session.delete(content)?;
        }
        self.report.uploaded += 1;
        Ok(entry)
    }

    /// Deletes `rel` in the vault, whose version there is `entry`: a deletion note naming
    /// that version, and the line of versions before it as this replica holds it, takes the
    /// entry's place.
    fn delete_there(&mut self, rel: &str, entry: &Entry) -> Result<()> {
        self.sent.insert(rel.to_owned());
        let (replaced, deleted_before) = self.replaced_versions(rel)?;
        let earlier = match entry.parent.is_empty() {
            true => Vec::new(),
            false => line(&entry.parent, &replaced)
                .into_iter()
                .skip(1)
                .filter(|version| !version.is_empty())
                .collect(),
        };
        let deleted_before = deleted_before
            .into_iter()
            .filter(|version| !version.is_empty() && *version != entry.hash)
            .collect();
        self.session.put(
            entry_key(self.root, rel),
            Deletion::of(entry, earlier, deleted_before).encode(),
        )?;
        let content = content_key(self.root, rel);
        if self.session.get(content.as_bytes())?.is_some() {
            self.session.delete(content)?;
        }
        self.report.deleted_there += 1;
        Ok(())
    }

    /// Whether the path is as the walk at the start saw it (`expected`: absent, or this
    /// entry's kind, size and time): a file saved meanwhile is not replaced or deleted.
    fn still_as_walked(&self, rel: &str, expected: Option<&Entry>) -> bool {
        let Ok(path) = checked_path(rel) else {
            return false;
        };
        let now = std::fs::symlink_metadata(self.dir.join(path)).ok();
        match (now, expected) {
            (None, None) => true,
            (Some(m), Some(e)) => {
                let kind_matches = match e.kind {
                    EntryKind::File => m.is_file(),
                    EntryKind::Dir => m.is_dir(),
                    EntryKind::Symlink => m.is_symlink(),
                };
                kind_matches
                    && (e.kind != EntryKind::File
                        || (m.len() == e.size && super::partial_file::mtime_ms(&m) == e.mtime_ms))
            }
            _ => false,
        }
    }

    /// Deletes the local file `rel` (deleted elsewhere) if it is still as `base` says; `false`
    /// when it was changed meanwhile (kept, for the next run).
    fn delete_here(&mut self, rel: &str, base: &Entry) -> bool {
        if !self.still_as_walked(rel, Some(base)) {
            self.report
                .errors
                .push((rel.to_owned(), changed_meanwhile(rel)));
            return false;
        }
        let Ok(path) = checked_path(rel) else {
            return true;
        };
        if passes_through_a_link(self.dir, &path) {
            return true;
        }
        let dest = self.dir.join(path);
        match std::fs::remove_file(&dest) {
            Ok(()) => self.report.deleted_here += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => self
                .report
                .errors
                .push((rel.to_owned(), local_error(&dest, "cannot delete", e))),
        }
        true
    }

    /// Writes the vault's `entry` of `rel` into the folder, if the local path is still as
    /// the walk saw it (`walked`): its entry as written, or, for a file of up to
    /// [`READ_TOGETHER_UP_TO`], `None` and the file is deferred to [`Sync::fetch_deferred`]
    /// (`just_deferred` says so).
    async fn download(
        &mut self,
        rel: &str,
        entry: &Entry,
        walked: Option<&Entry>,
    ) -> Result<Option<Entry>> {
        if !self.still_as_walked(rel, walked) {
            return Err(changed_meanwhile(rel));
        }
        // Turned into the other elsewhere: what is here makes way (a file as agreed, or whose
        // bytes a copy in the vault holds; a folder emptied of what was below it, deletions
        // coming first; one that still holds something stays, and the path waits).
        let walked = match walked {
            Some(here)
                if here.kind != entry.kind
                    && (here.kind == EntryKind::Dir) != (entry.kind == EntryKind::Dir) =>
            {
                let dest = self.dir.join(self.checked_destination(rel, rel)?);
                let removed = match here.kind {
                    EntryKind::Dir => std::fs::remove_dir(&dest),
                    _ => std::fs::remove_file(&dest),
                };
                removed.map_err(|e| local_error(&dest, "cannot make way at", e))?;
                None
            }
            walked => walked,
        };
        if entry.kind == EntryKind::File && entry.size <= READ_TOGETHER_UP_TO {
            let path = self.checked_destination(rel, rel)?;
            let (content, value) = self.content_of(rel)?;
            self.fetching.push(Fetch {
                rel: rel.to_owned(),
                walked: walked.cloned(),
                entry: entry.clone(),
                path,
                content,
                value,
            });
            self.just_deferred = true;
            return Ok(None);
        }
        self.download_as(rel, rel, entry).await.map(Some)
    }

    /// Reads the deferred files together, by pack ([`Session::download_many_to_paths`]):
    /// each path's entry as written, or why not. Each is written beside its path and renamed
    /// into place, which replaces a link there rather than writing through it; a path changed
    /// since the walk, or whose folder became a link, is left alone.
    ///
    /// # Errors
    /// `Cancelled` after [`Session::cancel_sync`]; any other failure is the paths'.
    async fn fetch_deferred(&mut self) -> Result<Vec<(String, Result<Entry>)>> {
        let fetching = std::mem::take(&mut self.fetching);
        let mut done = Vec::new();
        let mut files = Vec::new();
        let mut entries = Vec::new();
        for fetch in fetching {
            if !self.still_as_walked(&fetch.rel, fetch.walked.as_ref()) {
                // This sync put the same version there meanwhile (a conflict copy the other
                // device made too, under the same name): in place already.
                let in_place = self.still_as_walked(&fetch.rel, Some(&fetch.entry))
                    && self.file_holds_vaults_bytes(&fetch.rel, &self.dir.join(&fetch.path));
                let outcome = if in_place {
                    Ok(fetch.entry)
                } else {
                    Err(changed_meanwhile(&fetch.rel))
                };
                done.push((fetch.rel, outcome));
                continue;
            }
            if passes_through_a_link(self.dir, &fetch.path) {
                let refused = refused_entry(&fetch.rel, "its folder is a link");
                done.push((fetch.rel, Err(refused)));
                continue;
            }
            let dest = self.dir.join(&fetch.path);
            if let Some(parent) = dest.parent() {
                if let Err(e) = std::fs::create_dir_all(parent) {
                    done.push((fetch.rel, Err(local_error(parent, "cannot make", e))));
                    continue;
                }
            }
            // What is there now (as the walk saw it): a file saved there while the packs are
            // read is not replaced.
            let expect = Expect::of(&dest);
            files.push((
                fetch.content,
                fetch.value,
                dest,
                Some(stamp_of(&fetch.entry)),
                expect,
            ));
            entries.push((fetch.rel, fetch.entry));
        }
        if files.is_empty() {
            return Ok(done);
        }
        let progress = &mut *self.progress;
        let outcomes = self
            .session
            .download_many_to_paths(
                &mut files,
                self.transport,
                self.concurrency,
                // The folder's state trusts a file's size and time from now on.
                Durability::OnDisk,
                &mut |at, p| progress(&entries[at].0, p),
            )
            .await?;
        for (((rel, entry), outcome), (_, _, dest, _, _)) in
            entries.into_iter().zip(outcomes).zip(&files)
        {
            let written = outcome.and_then(|stamped| {
                if stamped {
                    return Ok(());
                }
                set_times_and_mode(dest, &entry)
                    .map_err(|e| local_error(dest, "cannot set the time of", e))
            });
            if written.is_ok() {
                self.report.downloaded += 1;
            }
            done.push((rel, written.map(|()| entry)));
        }
        Ok(done)
    }

    /// The path `as_rel` (the place of `rel`'s entry) in the folder, relative, unless it is
    /// not a path to write or passes through a link.
    fn checked_destination(&self, rel: &str, as_rel: &str) -> Result<PathBuf> {
        let path = checked_path(as_rel).map_err(|why| refused_entry(rel, &why))?;
        if passes_through_a_link(self.dir, &path) {
            return Err(refused_entry(rel, "its folder is a link"));
        }
        Ok(path)
    }

    /// Each version of `rel`'s entry this replica holds (and each one a deletion note among
    /// them lists), by content hash: the hash of the version it replaced. And the versions
    /// the notes among them deleted, the latest deletions first.
    fn replaced_versions(&self, rel: &str) -> Result<(BTreeMap<String, String>, Vec<String>)> {
        let key = entry_key(self.root, rel);
        // The newest first.
        let history = self.session.read(|e| e.history(key.as_bytes()))?;
        let mut replaced = BTreeMap::new();
        let mut deleted: Vec<String> = Vec::new();
        for stored in history
            .iter()
            .filter_map(|r| Stored::decode(rel, r.value.as_deref()?).ok())
        {
            let pairs: Vec<(&str, &str)> = match &stored {
                Stored::Entry(e) => vec![(e.hash.as_str(), e.parent.as_str())],
                Stored::Deleted(note) => {
                    for version in std::iter::once(&note.hash).chain(&note.deleted_before) {
                        if !deleted.contains(version) {
                            deleted.push(version.clone());
                        }
                    }
                    note.replaced().collect()
                }
            };
            for (version, before) in pairs.into_iter().filter(|(v, _)| !v.is_empty()) {
                replaced
                    .entry(version.to_owned())
                    .or_insert_with(|| before.to_owned());
            }
        }
        Ok((replaced, deleted))
    }

    /// Whether the vault holds, live, the conflict copy `local` would become (named after
    /// `our_label`) with its bytes (a link: its target), and keeps it: another device kept it
    /// so already, and it was not deleted or moved away here (a user who moves a copy over
    /// the name keeps it there).
    fn holds_copy_of(
        &self,
        local: &Local,
        our_label: &str,
        deleted_here: &(dyn Fn(&str) -> bool + std::marker::Sync),
    ) -> bool {
        let copy = conflict_name(&local.rel, our_label, local.entry.mtime_ms);
        if deleted_here(&copy) {
            return false;
        }
        let key = entry_key(self.root, &copy);
        let value = self
            .session
            .read(|e| e.record(key.as_bytes()).and_then(|r| r.value.clone()));
        let Ok(Some(value)) = value else {
            return false;
        };
        let Ok(Stored::Entry(kept)) = Stored::decode(&copy, &value) else {
            return false;
        };
        match (local.entry.kind, kept.kind) {
            (EntryKind::File, EntryKind::File) => self.file_holds_vaults_bytes(&copy, &local.path),
            (EntryKind::Symlink, EntryKind::Symlink) => kept.target == local.entry.target,
            _ => false,
        }
    }

    /// Whether the local file holds the bytes of the vault's version of its path (not a file,
    /// or anything that cannot be read or compared: no).
    fn holds_vaults_bytes(&self, local: &Local) -> bool {
        if local.entry.kind != EntryKind::File {
            return local.entry.kind == EntryKind::Symlink;
        }
        self.file_holds_vaults_bytes(&local.rel, &local.path)
    }

    /// Whether the file at `path` holds the bytes of the vault's version of `rel`.
    fn file_holds_vaults_bytes(&self, rel: &str, path: &Path) -> bool {
        self.local_hash(rel, path)
            .is_some_and(|(ours, vaults)| ours == vaults)
    }

    /// The content hash of the file at `path`, keyed as the vault's version of `rel` is, with
    /// that version's: `None` when there is none, or anything cannot be read.
    fn local_hash(&self, rel: &str, path: &Path) -> Option<([u8; 32], [u8; 32])> {
        use std::io::Read;
        let Ok((content, value)) = self.content_of(rel) else {
            return None;
        };
        let Ok(Ok((mut hasher, hash))) = self.session.read(|e| e.content_hasher(&content, &value))
        else {
            return None;
        };
        let Ok(mut file) = std::fs::File::open(path) else {
            return None;
        };
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        Some((*hasher.finalize().as_bytes(), hash))
    }

    /// The content key of the file `rel` and its record value.
    fn content_of(&self, rel: &str) -> Result<(Vec<u8>, Vec<u8>)> {
        let content = content_key(self.root, rel);
        match self.session.get(content.as_bytes())? {
            Some(value) => Ok((content.into_bytes(), value)),
            None => Err(Error::Config(format!(
                "the vault holds no content for {content:?}"
            ))),
        }
    }

    async fn download_as(&mut self, rel: &str, as_rel: &str, entry: &Entry) -> Result<Entry> {
        let path = self.checked_destination(rel, as_rel)?;
        let dest = self.dir.join(&path);
        match entry.kind {
            EntryKind::Dir => {
                std::fs::create_dir_all(&dest).map_err(|e| local_error(&dest, "cannot make", e))?;
            }
            EntryKind::Symlink => {
                // Made as it was, wherever it points: nothing is written through it (every
                // write here checks its folders first).
                let _ = std::fs::remove_file(&dest);
                if let Some(parent) = dest.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                #[cfg(unix)]
                std::os::unix::fs::symlink(link_target_path(&entry.target), &dest)
                    .map_err(|e| local_error(&dest, "cannot make the link", e))?;
            }
            EntryKind::File => {
                let (content, value) = self.content_of(rel)?;
                let download = self
                    .session
                    .read(|e| e.begin_download_value(&content, &value, None))??;
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| local_error(parent, "cannot make", e))?;
                }
                if std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_symlink()) {
                    let _ = std::fs::remove_file(&dest);
                }
                // A file saved there while it downloads is not replaced.
                let expect = Expect::of(&dest);
                let progress = &mut *self.progress;
                self.session
                    .download_to_path(
                        download,
                        &dest,
                        expect,
                        self.transport,
                        self.concurrency,
                        &mut |p| progress(as_rel, p),
                    )
                    .await?;
                set_times_and_mode(&dest, entry)
                    .map_err(|e| local_error(&dest, "cannot set the time of", e))?;
            }
        }
        self.report.downloaded += 1;
        Ok(entry.clone())
    }

    /// `local`, a file or link, becomes a conflict copy (renamed here, sent as a new path), and
    /// leaves its name to the folder that the paths below it make. What the vault holds there
    /// goes; `theirs` (the vault's version when another than the one agreed on, with its
    /// writer's label) is kept as a conflict copy first.
    async fn move_to_copy(
        &mut self,
        local: &Local,
        vault: Option<&Entry>,
        theirs: Option<(&Entry, &str)>,
        our_label: &str,
        deleted_here: &(dyn Fn(&str) -> bool + std::marker::Sync),
        next: &mut BTreeMap<String, Entry>,
    ) -> Result<()> {
        let rel = local.rel.as_str();
        if !self.still_as_walked(rel, Some(&local.entry)) {
            return Err(changed_meanwhile(rel));
        }
        if let Some((theirs, their_label)) = theirs.filter(|(e, _)| e.kind != EntryKind::Dir) {
            let copy = conflict_name(rel, their_label, theirs.mtime_ms);
            if copy != conflict_name(rel, our_label, local.entry.mtime_ms) {
                let fetched = self.download_as(rel, &copy, theirs).await?;
                let copy_path = self.dir.join(checked_path(&copy).map_err(Error::Config)?);
                let sent = self.upload_as(&copy, &copy_path, &fetched, "").await?;
                next.insert(copy.clone(), sent);
                self.report.conflicts.push(copy);
            }
        }
        if self.holds_copy_of(local, our_label, deleted_here) {
            // Kept so by another device: it comes here as that copy, like any new path.
            std::fs::remove_file(&local.path)
                .map_err(|e| local_error(&local.path, "cannot make way at", e))?;
            if let Some(vault) = vault {
                self.delete_there(rel, vault)?;
            }
            return Ok(());
        }
        let copy = conflict_name(rel, our_label, local.entry.mtime_ms);
        let copy_path = self.dir.join(checked_path(&copy).map_err(Error::Config)?);
        std::fs::rename(&local.path, &copy_path)
            .map_err(|e| local_error(&local.path, "cannot rename", e))?;
        let sent = self.upload_as(&copy, &copy_path, &local.entry, "").await?;
        next.insert(copy.clone(), sent);
        self.report.conflicts.push(copy);
        if let Some(vault) = vault {
            self.delete_there(rel, vault)?;
        }
        Ok(())
    }

    /// `local` and the vault's `theirs` both changed: the winner keeps the name, the loser
    /// becomes a conflict copy, here and (by its upload) everywhere. The copy's entry goes
    /// into `next`; the name's entry is returned.
    async fn conflict(
        &mut self,
        local: &Local,
        theirs: &Entry,
        ours_win: bool,
        our_label: &str,
        their_label: &str,
        next: &mut BTreeMap<String, Entry>,
    ) -> Result<Entry> {
        let rel = local.rel.as_str();
        if ours_win {
            // Theirs is kept as the copy: fetched under the copy's name, then sent as a new path.
            let copy = conflict_name(rel, their_label, theirs.mtime_ms);
            let mut fetched = self.download_as(rel, &copy, theirs).await?;
            let copy_path = self.dir.join(checked_path(&copy).map_err(Error::Config)?);
            apart_in_time(&copy_path, &mut fetched, &local.entry)?;
            let sent = self.upload_as(&copy, &copy_path, &fetched, "").await?;
            next.insert(copy.clone(), sent);
            self.report.conflicts.push(copy);
            // Ours replaces theirs, which it has seen.
            self.upload_as(&local.rel, &local.path, &local.entry, &theirs.hash)
                .await
        } else {
            // Ours is kept as the copy: renamed here, sent as a new path; theirs takes the name.
            let copy = conflict_name(rel, our_label, local.entry.mtime_ms);
            let copy_path = self.dir.join(checked_path(&copy).map_err(Error::Config)?);
            std::fs::rename(&local.path, &copy_path)
                .map_err(|e| local_error(&local.path, "cannot rename", e))?;
            let mut ours = local.entry.clone();
            apart_in_time(&copy_path, &mut ours, theirs)?;
            let sent = self.upload_as(&copy, &copy_path, &ours, "").await?;
            next.insert(copy.clone(), sent);
            self.report.conflicts.push(copy);
            // Read now, not with the batch: the name is empty until theirs is in place.
            if !self.still_as_walked(rel, None) {
                return Err(changed_meanwhile(rel));
            }
            self.download_as(rel, rel, theirs).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_copies_are_named_after_the_loser_and_its_time() {
        // 2026-11-25 03:12:07 UTC.
        let ms = 1_795_576_327_000;
        assert_eq!(date_of(ms), "2026-11-25 03.12.07");
        assert_eq!(date_of(0), "1970-01-01 00.00.00");
        assert_eq!(date_of(951_782_400_000), "2000-02-29 00.00.00");
        assert_eq!(
            conflict_name("notes/todo.md", "phone", ms),
            "notes/todo (conflict phone 2026-11-25 03.12.07).md"
        );
        assert_eq!(
            conflict_name(".profile", "a/b", ms),
            ".profile (conflict a_b 2026-11-25 03.12.07)"
        );
        assert_eq!(
            conflict_name("archive.tar.gz", "laptop", ms),
            "archive.tar (conflict laptop 2026-11-25 03.12.07).gz"
        );
    }

    /// The entry of a small file, as a base holds it.
    fn a_file_entry() -> Entry {
        Entry {
            kind: EntryKind::File,
            size: 2,
            mtime_ms: 1_800_000_000_000,
            mode: 0o644,
            target: Vec::new(),
            hash: "ab".repeat(32),
            parent: String::new(),
        }
    }

    #[test]
    fn a_base_of_version_1_is_read_with_no_deletions_kept() {
        let dir = std::env::temp_dir().join(format!("bucketsync-base-v1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let entry = a_file_entry();
        let entries = BTreeMap::from([("todo.txt".to_owned(), entry.clone())]);
        // What the previous release wrote: the magic, 1, then vault, name and entries.
        let mut bytes = BASE_MAGIC.to_vec();
        bytes.push(1);
        bytes.extend(postcard::to_allocvec(&([7u8; 16], "docs", &entries)).unwrap());
        std::fs::write(dir.join(BASE_FILE), bytes).unwrap();

        let base = Base::read(&dir).unwrap().expect("a base");
        assert_eq!((base.vault, base.name.as_str()), ([7u8; 16], "docs"));
        assert_eq!(base.entries, entries);
        assert!(base.gone.is_empty());
        // Written again, it is the current version, and keeps a deletion once the file is gone.
        let gone = base.gone_after(&BTreeMap::new());
        assert_eq!(gone, BTreeMap::from([("todo.txt".to_owned(), entry.hash)]));
        Base { gone, ..base }.write(&dir).unwrap();
        let again = std::fs::read(dir.join(BASE_FILE)).unwrap();
        assert_eq!(again[4], BASE_VERSION);
        assert_eq!(Base::read(&dir).unwrap().unwrap().gone.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_base_of_version_2_is_read_with_no_file_ids() {
        let dir = std::env::temp_dir().join(format!("bucketsync-base-v2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let entry = a_file_entry();
        let entries = BTreeMap::from([("todo.txt".to_owned(), entry.clone())]);
        let gone = BTreeMap::from([("old.txt".to_owned(), "cd".repeat(32))]);
        let sent = BTreeMap::from([("new.txt".to_owned(), Some(entry))]);
        // What the previous release wrote: the magic, 2, then vault, name, entries, the
        // deletions kept and what was sent.
        let mut bytes = BASE_MAGIC.to_vec();
        bytes.push(2);
        let fields = ([7u8; 16], "docs", &entries, &gone, &sent);
        bytes.extend(postcard::to_allocvec(&fields).unwrap());
        std::fs::write(dir.join(BASE_FILE), bytes).unwrap();

        let base = Base::read(&dir).unwrap().expect("a base");
        assert_eq!((base.vault, base.name.as_str()), ([7u8; 16], "docs"));
        assert_eq!(
            (&base.entries, &base.gone, &base.sent),
            (&entries, &gone, &sent)
        );
        assert!(base.ids.is_empty());
        // Written again, it is version 3, with its file ids.
        let ids = BTreeMap::from([("todo.txt".to_owned(), 42)]);
        Base {
            ids: ids.clone(),
            ..base
        }
        .write(&dir)
        .unwrap();
        assert_eq!(std::fs::read(dir.join(BASE_FILE)).unwrap()[4], 3);
        assert_eq!(Base::read(&dir).unwrap().unwrap().ids, ids);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
