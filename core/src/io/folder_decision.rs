//! What two-way folder sync does with one path, decided from three views of it and nothing
//! else: the disk, the base (the tree as this device last synced it) and the vault. Pure: no
//! file is read here, and the one question that needs the disk (whether a file holds the
//! vault's bytes) is asked through a closure, only when size and time cannot tell.
//!
//! The rules (see `folder_sync` for how each action is carried out):
//!
//! | disk vs base | vault vs base | action |
//! |---|---|---|
//! | same | same | keep the base |
//! | changed | same | upload (or delete in the vault, when gone here) |
//! | same | changed | download (or delete here, when gone there; kept when the pull met errors); a file changed there from a version before ours is a conflict, ours the copy; a file deleted there whose deletion names a version not made from ours: upload (ours stays) |
//! | changed | changed | a folder on one side, a file or link on the other: a conflict the folder wins; ours the copy, and that copy is in the vault already with our bytes: download; both gone: forget; edited here, deleted there: upload; deleted here, edited there: download (deleted here, the same content sent again there: delete there); the same state (folders; files of the same size, time and, after the device's first sync of the folder, bytes): take the vault's; a version made from our local file: download; else a conflict, the later modification (then the greater device id) keeping the name |

use super::backup::{Deletion, Entry, EntryKind};
use crate::ids::DeviceId;

/// The action for one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing changed: the base entry stays as it is (none when there is none).
    Keep,
    /// Changed here: send the local file, folder or link.
    Upload,
    /// Deleted here: delete the vault's entry.
    DeleteThere,
    /// Changed there: write the vault's version here.
    Download,
    /// Deleted there: delete it here.
    DeleteHere,
    /// Deleted on both sides: it leaves the base.
    Forget,
    /// Both sides hold the same state: the vault's entry becomes the base.
    TakeVault,
    /// Both sides changed it differently: the winner keeps the name, the other becomes the
    /// conflict copy (on every device).
    Conflict {
        /// Whether the local version keeps the name.
        ours_win: bool,
    },
    /// The local file or link becomes a conflict copy (on every device), and the name is left
    /// to the folder that what lies below it makes (the vault holds no folder entry there).
    SetApart,
}

/// One path as the three views show it.
pub(crate) struct Views<'a> {
    /// On the disk, when there.
    pub local: Option<&'a Entry>,
    /// Whether the disk's view can be trusted: the path is there, or its folder was read
    /// whole (below a folder that could not be read, what is missing is unknown).
    pub seen: bool,
    /// In the base, when there.
    pub base: Option<&'a Entry>,
    /// In the vault, with its writer, when there.
    pub vault: Option<(&'a Entry, DeviceId)>,
    /// When the vault holds no entry: the deletion note in its place, if any (a deletion by
    /// an older release, or by a backup, leaves none).
    pub deleted: Option<&'a Deletion>,
    /// Whether this is the device's first sync of the folder (nothing agreed on in it yet).
    pub first_sync: bool,
    /// Whether the pull before met no error (else nothing missing there counts as deleted).
    pub pulled_whole: bool,
    /// This device.
    pub me: DeviceId,
}

/// Whether two entries describe the same local state (the content hash aside: the local side
/// is never hashed). A folder is a folder: its time changes with what it holds, and it is not
/// synced.
pub(crate) fn same_local(a: &Entry, b: &Entry) -> bool {
    if a.kind == EntryKind::Dir && b.kind == EntryKind::Dir {
        return true;
    }
    a.kind == b.kind
        && a.size == b.size
        && a.mtime_ms == b.mtime_ms
        && a.mode == b.mode
        && a.target == b.target
}

/// What the three views cannot tell alone: answered by reading the local file, or the
/// vault's earlier versions of the path. Each is asked only where the rules need it.
pub(crate) trait Questions {
    /// Whether the local file, of the size and time agreed on, is another file than the one
    /// agreed on (moved or copied over the name: the file system says so) and holds other
    /// bytes than the agreed version. Asked when a file's size and time match the base's.
    fn replaced_by_other_bytes(&mut self) -> bool;
    /// Whether the local file holds the bytes of the vault's version: asked when both sides
    /// changed a file since an agreed version and size and time match.
    fn holds_vaults_bytes(&mut self) -> bool;
    /// Whether the vault's version names the local file's bytes as the version it replaced:
    /// asked when both sides changed a file differently (a sync cut off after it sent the
    /// local file, before it noted it agreed: another device replaced it since, knowingly).
    fn vault_made_from_local(&mut self) -> bool;
    /// Whether the vault's version was made from a version older than the base's, never from
    /// ours: asked when a file unchanged here changed there. Followed back through the versions
    /// each one replaced, its line meets what ours replaced (or a new file's empty start)
    /// before it meets ours: the two syncs overlapped, and ours lost in the vault. A line that
    /// meets ours, or a version this replica never saw, is no sign of that.
    fn vault_forked_before_base(&mut self) -> bool;
    /// Whether the vault's deletion note deleted a version made without ours (followed back,
    /// its line meets what ours replaced before it meets ours), and ours lives on nowhere
    /// else: the deleting device never saw ours. Asked when a file unchanged here was deleted
    /// there.
    fn deletion_missed_ours(&mut self) -> bool;
    /// Whether the vault already holds, live and with the local file's bytes (or link's
    /// target), the conflict copy the local version would become: another device kept ours
    /// so first. Asked before making ours a copy when both sides changed.
    fn ours_kept_as_copy(&mut self) -> bool;
}

/// The action for one path.
pub(crate) fn decide(views: &Views<'_>, questions: &mut impl Questions) -> Action {
    let Views {
        local,
        seen,
        base,
        vault,
        deleted,
        first_sync,
        pulled_whole,
        me,
    } = *views;
    let local_changed = seen
        && match (local, base) {
            (None, None) => false,
            (Some(l), Some(b)) => {
                !same_local(l, b)
                    || (l.kind == EntryKind::File && questions.replaced_by_other_bytes())
            }
            _ => true,
        };
    let vault_changed = vault.map(|(entry, _)| entry) != base;
    match (local_changed, vault_changed) {
        (false, false) => Action::Keep,
        (true, false) if local.is_some() => Action::Upload,
        (true, false) => Action::DeleteThere,
        (false, true) => match vault {
            // Changed there from a version before ours (two syncs overlapped, and ours lost in
            // the vault): ours is what the vault's version did not start from, the copy.
            Some((entry, _))
                if local.is_some()
                    && both_files(entry, base)
                    && questions.vault_forked_before_base() =>
            {
                Action::Conflict { ours_win: false }
            }
            Some(_) => Action::Download,
            // Deleted there, a version not made from ours: ours was never seen by the device
            // that deleted, and stays (an edit outlives a deletion made without it).
            None if pulled_whole
                && local.is_some()
                && deleted.is_some()
                && base.is_some_and(|b| b.kind == EntryKind::File && !b.hash.is_empty())
                && questions.deletion_missed_ours() =>
            {
                Action::Upload
            }
            None if !pulled_whole => Action::Keep,
            None if base.is_some() => Action::DeleteHere,
            None => Action::Keep,
        },
        (true, true) => match (local, vault) {
            (None, None) => Action::Forget,
            // Edited here, deleted there: the edit stays.
            (Some(_), None) => Action::Upload,
            // Deleted here, and there the same content written again (a conflict copy that
            // two devices made and sent, a file sent again with other times): no edit, the
            // deletion goes.
            (None, Some((entry, _))) if base.is_some_and(|b| same_content(entry, b)) => {
                Action::DeleteThere
            }
            // Deleted here, edited there: the edit comes back.
            (None, Some(_)) => Action::Download,
            // A folder on one side, a file or link on the other: the folder keeps the name
            // (what it holds are paths of their own), the other becomes the copy.
            (Some(l), Some((entry, _)))
                if l.kind != entry.kind
                    && (l.kind == EntryKind::Dir || entry.kind == EntryKind::Dir) =>
            {
                match l.kind == EntryKind::Dir {
                    true => Action::Conflict { ours_win: true },
                    false => ours_as_copy(questions),
                }
            }
            (Some(l), Some((entry, writer))) => {
                let both_folders = l.kind == EntryKind::Dir && entry.kind == EntryKind::Dir;
                // The same size and time say nothing of whose bytes these are (two edits in
                // one millisecond, files unpacked from an archive, copies moved to one name),
                // so a file's bytes are compared too. In the device's first sync of the folder
                // (nothing agreed on yet), size and time are trusted: a copy of the tree made
                // beforehand is not read whole.
                let same = both_folders
                    || (same_local(l, entry)
                        && ((base.is_none() && first_sync) || questions.holds_vaults_bytes()));
                if same {
                    Action::TakeVault
                } else if l.kind == EntryKind::File
                    && entry.kind == EntryKind::File
                    && !entry.parent.is_empty()
                    && questions.vault_made_from_local()
                {
                    Action::Download
                } else if (l.mtime_ms, me.0) > (entry.mtime_ms, writer.0) {
                    Action::Conflict { ours_win: true }
                } else {
                    ours_as_copy(questions)
                }
            }
        },
    }
}

/// Ours becomes the conflict copy, unless another device made that copy of it already: then
/// the vault's version is taken, and ours comes back as that copy.
fn ours_as_copy(questions: &mut impl Questions) -> Action {
    match questions.ours_kept_as_copy() {
        true => Action::Download,
        false => Action::Conflict { ours_win: false },
    }
}

/// What a path is once `action` is carried out (on every device): a file, folder or link, or
/// nothing. `local` and `vault` are the path's two changed sides, `base` what was agreed.
pub(crate) fn outcome(
    action: Action,
    local: Option<&Entry>,
    base: Option<&Entry>,
    vault: Option<&Entry>,
) -> Option<EntryKind> {
    let kind = |e: Option<&Entry>| e.map(|e| e.kind);
    match action {
        Action::Keep => kind(base).or(kind(local)),
        Action::Upload => kind(local),
        Action::Download | Action::TakeVault => kind(vault),
        Action::DeleteHere | Action::DeleteThere | Action::Forget => None,
        Action::Conflict { ours_win: true } => kind(local),
        Action::Conflict { ours_win: false } => kind(vault),
        Action::SetApart => None,
    }
}

/// The action for a path that must end a folder, because something below it stays (a file
/// made in it here while another device turned it into a file, or the reverse): the side
/// that is a folder keeps the name and the other becomes the copy, as in a conflict. A local
/// file or link where the vault has no folder entry (a folder deleted there, with files made
/// below it again) is set apart. `None` when the local side is no file or link and the vault's
/// is no folder (nothing here to move aside: the paths below report their errors).
pub(crate) fn folder_kept(local: Option<&Entry>, vault: Option<&Entry>) -> Option<Action> {
    let is_dir = |e: &Entry| e.kind == EntryKind::Dir;
    match (local, vault) {
        (Some(l), Some(v)) if is_dir(l) && !is_dir(v) => Some(Action::Conflict { ours_win: true }),
        (Some(l), Some(v)) if is_dir(v) && !is_dir(l) => Some(Action::Conflict { ours_win: false }),
        (Some(l), _) if !is_dir(l) => Some(Action::SetApart),
        _ => None,
    }
}

/// Whether two entries hold the same content: the same kind, and for a file the same known
/// hash, for a link the same target.
fn same_content(a: &Entry, b: &Entry) -> bool {
    a.kind == b.kind
        && match a.kind {
            EntryKind::File => !a.hash.is_empty() && a.hash == b.hash,
            EntryKind::Symlink => a.target == b.target,
            EntryKind::Dir => true,
        }
}

/// Whether the vault's `entry` and the base's are both files, the base's with a known hash.
fn both_files(entry: &Entry, base: Option<&Entry>) -> bool {
    base.is_some_and(|b| {
        entry.kind == EntryKind::File && b.kind == EntryKind::File && !b.hash.is_empty()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: DeviceId = DeviceId([0xA; 16]);
    const THEM: DeviceId = DeviceId([0xB; 16]);

    fn file(size: u64, mtime_ms: u64, hash: &str, parent: &str) -> Entry {
        Entry {
            kind: EntryKind::File,
            size,
            mtime_ms,
            mode: 0o644,
            target: Vec::new(),
            hash: hash.into(),
            parent: parent.into(),
        }
    }

    fn dir() -> Entry {
        Entry {
            kind: EntryKind::Dir,
            size: 0,
            mtime_ms: 5,
            mode: 0o755,
            target: Vec::new(),
            hash: String::new(),
            parent: String::new(),
        }
    }

    /// Fixed answers; `None` fails the test when asked.
    struct Answers {
        replaced: Option<bool>,
        bytes: Option<bool>,
        made_from_local: Option<bool>,
        forked: Option<bool>,
        missed: Option<bool>,
        kept: Option<bool>,
    }

    impl Questions for Answers {
        fn replaced_by_other_bytes(&mut self) -> bool {
            self.replaced.expect("not to be asked")
        }
        fn holds_vaults_bytes(&mut self) -> bool {
            self.bytes.expect("the bytes were not to be compared")
        }
        fn vault_made_from_local(&mut self) -> bool {
            self.made_from_local.expect("not to be asked")
        }
        fn vault_forked_before_base(&mut self) -> bool {
            self.forked.expect("not to be asked")
        }
        fn deletion_missed_ours(&mut self) -> bool {
            self.missed.expect("not to be asked")
        }
        fn ours_kept_as_copy(&mut self) -> bool {
            self.kept.expect("not to be asked")
        }
    }

    const NONE: Answers = Answers {
        replaced: Some(false),
        bytes: None,
        made_from_local: None,
        forked: None,
        missed: None,
        kept: Some(false),
    };

    /// The action for (disk, base, vault), the pull whole and the disk seen, with the byte
    /// comparison answering `bytes` (and failing the test when asked with `None`), the
    /// vault's version not forked before the base's, and not made from the local file.
    fn act(
        local: Option<&Entry>,
        base: Option<&Entry>,
        vault: Option<&Entry>,
        bytes: Option<bool>,
    ) -> Action {
        let views = Views {
            local,
            seen: true,
            base,
            vault: vault.map(|v| (v, THEM)),
            deleted: None,
            first_sync: true,
            pulled_whole: true,
            me: ME,
        };
        decide(
            &views,
            &mut Answers {
                replaced: Some(false),
                bytes,
                made_from_local: Some(false),
                forked: Some(false),
                missed: None,
                kept: Some(false),
            },
        )
    }

    #[test]
    fn one_side_changed_goes_to_the_other() {
        let v1 = file(3, 10, "h1", "");
        let local_v2 = file(4, 20, "", "");
        let v2 = file(4, 20, "h2", "h1");
        let table = [
            (None, None, None, Action::Keep),
            (Some(&local_v2), Some(&v1), Some(&v1), Action::Upload),
            (Some(&local_v2), None, None, Action::Upload),
            (None, Some(&v1), Some(&v1), Action::DeleteThere),
            (Some(&v1), Some(&v1), Some(&v2), Action::Download),
            (None, None, Some(&v2), Action::Download),
            (Some(&v1), Some(&v1), None, Action::DeleteHere),
            (Some(&v1), Some(&v1), Some(&v1), Action::Keep),
        ];
        for (i, (l, b, r, expected)) in table.into_iter().enumerate() {
            assert_eq!(act(l, b, r, None), expected, "row {i}");
        }
    }

    #[test]
    fn another_file_of_the_agreed_size_and_time_with_other_bytes_is_a_change() {
        let v1 = file(3, 10, "h1", "");
        let v2 = file(4, 20, "h2", "h1");
        // (vault, replaced by other bytes, expected)
        let table = [
            (Some(&v1), true, Action::Upload),
            (Some(&v1), false, Action::Keep),
            // Deleted there: the other bytes are an edit the deletion never saw.
            (None, true, Action::Upload),
            (None, false, Action::DeleteHere),
            // Changed there too: both changed, so the bytes decide (here they differ, and
            // ours lost by time).
            (Some(&v2), true, Action::Conflict { ours_win: false }),
            (Some(&v2), false, Action::Download),
        ];
        for (i, (vault, replaced, expected)) in table.into_iter().enumerate() {
            let views = Views {
                local: Some(&v1),
                seen: true,
                base: Some(&v1),
                vault: vault.map(|v| (v, THEM)),
                deleted: None,
                first_sync: false,
                pulled_whole: true,
                me: ME,
            };
            let mut answers = Answers {
                replaced: Some(replaced),
                bytes: Some(false),
                made_from_local: Some(false),
                forked: Some(false),
                missed: Some(false),
                kept: Some(false),
            };
            assert_eq!(decide(&views, &mut answers), expected, "row {i}");
        }
    }

    #[test]
    fn both_sides_changed() {
        let v1 = file(3, 10, "h1", "");
        let ours = file(5, 30, "", "");
        let theirs_older = file(6, 20, "h3", "h1");
        let theirs_newer = file(6, 40, "h3", "h1");
        let table = [
            // Deleted on both sides.
            (None, Some(&v1), None, Action::Forget),
            // Edited here, deleted there; deleted here, edited there: the edit wins.
            (Some(&ours), Some(&v1), None, Action::Upload),
            (None, Some(&v1), Some(&theirs_newer), Action::Download),
            // Deleted here, the same bytes sent again there (other times): the deletion goes.
            (
                None,
                Some(&v1),
                Some(&file(3, 99, "h1", "")),
                Action::DeleteThere,
            ),
            // Different edits: the later keeps the name.
            (
                Some(&ours),
                Some(&v1),
                Some(&theirs_older),
                Action::Conflict { ours_win: true },
            ),
            (
                Some(&ours),
                Some(&v1),
                Some(&theirs_newer),
                Action::Conflict { ours_win: false },
            ),
            // Two folders made on both sides are one folder.
            (Some(&dir()), None, Some(&dir()), Action::TakeVault),
            // A file here, a folder there: a conflict the folder wins, newer or not.
            (
                Some(&ours),
                None,
                Some(&dir()),
                Action::Conflict { ours_win: false },
            ),
        ];
        for (i, (l, b, r, expected)) in table.into_iter().enumerate() {
            assert_eq!(act(l, b, r, None), expected, "row {i}");
        }
    }

    /// A file left alone here, deleted there: deleted here, unless the deletion's note names
    /// a version not made from ours (ours was never seen by the device that deleted).
    #[test]
    fn a_deletion_of_a_version_not_made_from_ours_leaves_ours() {
        let v1 = file(3, 10, "h1", "");
        let note = Deletion {
            hash: "h3".into(),
            parent: "h0".into(),
            earlier: Vec::new(),
            deleted_before: Vec::new(),
        };
        let decided = |deleted: Option<&Deletion>, missed: Option<bool>, base: &Entry| {
            let views = Views {
                local: Some(base),
                seen: true,
                base: Some(base),
                vault: None,
                deleted,
                first_sync: true,
                pulled_whole: true,
                me: ME,
            };
            decide(&views, &mut Answers { missed, ..NONE })
        };
        assert_eq!(decided(Some(&note), Some(true), &v1), Action::Upload);
        assert_eq!(decided(Some(&note), Some(false), &v1), Action::DeleteHere);
        // No note (an older release, a backup): nothing to ask.
        assert_eq!(decided(None, None, &v1), Action::DeleteHere);
        // A link or folder has no line of versions.
        let link = Entry {
            kind: EntryKind::Symlink,
            target: b"x".to_vec(),
            ..file(0, 10, "", "")
        };
        assert_eq!(decided(Some(&note), None, &link), Action::DeleteHere);
    }

    #[test]
    fn the_same_size_and_time_on_both_sides_is_settled_by_the_bytes_once_a_version_was_agreed() {
        let v1 = file(3, 10, "h1", "");
        let ours = file(5, 30, "", "");
        let theirs = file(5, 30, "h2", "h1");
        assert_eq!(
            act(Some(&ours), Some(&v1), Some(&theirs), Some(true)),
            Action::TakeVault
        );
        // Equal ties go to the greater device id: theirs.
        assert_eq!(
            act(Some(&ours), Some(&v1), Some(&theirs), Some(false)),
            Action::Conflict { ours_win: false }
        );
        // No agreed version in the device's first sync: size and time are trusted, the
        // bytes not read.
        assert_eq!(
            act(Some(&ours), None, Some(&theirs), None),
            Action::TakeVault
        );
        // Later syncs read the bytes of a path never agreed on too.
        let views = Views {
            local: Some(&ours),
            seen: true,
            base: None,
            vault: Some((&theirs, THEM)),
            deleted: None,
            first_sync: false,
            pulled_whole: true,
            me: ME,
        };
        let mut differ = Answers {
            bytes: Some(false),
            made_from_local: Some(false),
            ..NONE
        };
        assert_eq!(
            decide(&views, &mut differ),
            Action::Conflict { ours_win: false }
        );
    }

    #[test]
    fn a_change_there_made_from_our_unnoted_version_is_taken() {
        // Our sync sent `ours` and was cut off before noting it agreed; since, another device
        // replaced it, knowingly.
        let v1 = file(3, 10, "h1", "");
        let ours = file(5, 30, "", "");
        let theirs = file(6, 40, "h3", "h2");
        let views = Views {
            local: Some(&ours),
            seen: true,
            base: Some(&v1),
            vault: Some((&theirs, THEM)),
            deleted: None,
            first_sync: true,
            pulled_whole: true,
            me: ME,
        };
        let mut yes = Answers {
            made_from_local: Some(true),
            ..NONE
        };
        assert_eq!(decide(&views, &mut yes), Action::Download);
        let mut no = Answers {
            made_from_local: Some(false),
            ..NONE
        };
        assert_eq!(
            decide(&views, &mut no),
            Action::Conflict { ours_win: false }
        );
    }

    #[test]
    fn a_change_there_is_a_conflict_only_when_it_does_not_follow_our_version() {
        let v1 = file(3, 10, "h1", "");
        // Two edits elsewhere since our sync: v3 replaced v2, which replaced ours.
        let v3 = file(4, 20, "h3", "h2");
        let views = Views {
            local: Some(&v1),
            seen: true,
            base: Some(&v1),
            vault: Some((&v3, THEM)),
            deleted: None,
            first_sync: true,
            pulled_whole: true,
            me: ME,
        };
        let mut follows = Answers {
            forked: Some(false),
            ..NONE
        };
        assert_eq!(decide(&views, &mut follows), Action::Download);
        // Our push lost in the vault to a version that never saw ours: ours is the copy.
        let mut overlapped = Answers {
            forked: Some(true),
            ..NONE
        };
        assert_eq!(
            decide(&views, &mut overlapped),
            Action::Conflict { ours_win: false }
        );
    }

    #[test]
    fn what_is_missing_is_deleted_only_when_it_is_known_to_be() {
        let v1 = file(3, 10, "h1", "");
        // Below a folder that could not be read: not deleted in the vault.
        let views = Views {
            local: None,
            seen: false,
            base: Some(&v1),
            vault: Some((&v1, THEM)),
            deleted: None,
            first_sync: true,
            pulled_whole: true,
            me: ME,
        };
        assert_eq!(decide(&views, &mut Answers { ..NONE }), Action::Keep);
        // A pull that met errors deletes nothing here.
        let views = Views {
            local: Some(&v1),
            seen: true,
            base: Some(&v1),
            vault: None,
            deleted: None,
            first_sync: true,
            pulled_whole: false,
            me: ME,
        };
        assert_eq!(decide(&views, &mut Answers { ..NONE }), Action::Keep);
    }

    #[test]
    fn a_folder_keeps_its_name_over_a_file_or_link() {
        let f = file(3, 10, "h1", "");
        let d = dir();
        let mut link = file(0, 10, "", "");
        link.kind = EntryKind::Symlink;
        link.target = b"elsewhere".to_vec();
        for (here, there, ours_win) in [(&d, &f, true), (&f, &d, false), (&link, &d, false)] {
            // Made on both sides at once, whoever wrote later.
            let views = Views {
                local: Some(here),
                seen: true,
                base: None,
                vault: Some((there, THEM)),
                deleted: None,
                first_sync: true,
                pulled_whole: true,
                me: ME,
            };
            assert_eq!(
                decide(&views, &mut Answers { ..NONE }),
                Action::Conflict { ours_win }
            );
        }
        // Turned into the other on one side only: that side's change is carried over.
        let views = Views {
            local: Some(&f),
            seen: true,
            base: Some(&d),
            vault: Some((&d, THEM)),
            deleted: None,
            first_sync: true,
            pulled_whole: true,
            me: ME,
        };
        assert_eq!(decide(&views, &mut Answers { ..NONE }), Action::Upload);
        let views = Views {
            local: Some(&d),
            seen: true,
            base: Some(&d),
            vault: Some((&f, THEM)),
            deleted: None,
            first_sync: true,
            pulled_whole: true,
            me: ME,
        };
        assert_eq!(decide(&views, &mut Answers { ..NONE }), Action::Download);
        // What the path is afterwards, and which side keeps it when something below stays.
        let download = Action::Download;
        assert_eq!(
            outcome(download, Some(&d), Some(&d), Some(&f)),
            Some(EntryKind::File)
        );
        assert_eq!(
            outcome(Action::Keep, None, Some(&d), Some(&d)),
            Some(EntryKind::Dir)
        );
        assert_eq!(outcome(Action::DeleteHere, None, Some(&f), None), None);
        assert_eq!(
            folder_kept(Some(&d), Some(&f)),
            Some(Action::Conflict { ours_win: true })
        );
        assert_eq!(
            folder_kept(Some(&f), Some(&d)),
            Some(Action::Conflict { ours_win: false })
        );
        assert_eq!(folder_kept(Some(&f), Some(&f)), Some(Action::SetApart));
        assert_eq!(folder_kept(Some(&f), None), Some(Action::SetApart));
        assert_eq!(folder_kept(Some(&d), None), None);
        assert_eq!(folder_kept(None, Some(&f)), None);
    }
}
