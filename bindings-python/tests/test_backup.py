"""Folder backup and restore through the Python binding (Vault.backup / Vault.restore): a tree
between two devices on SeaweedFS, incremental, with a BackupReport; a crafted entry that would
write outside the target is refused."""

import os
import random
from pathlib import Path

import pytest

import bucketsync
from bucketsync import BackupReport, RestoreReport, Vault, VaultKey


def tree(root):
    """Each path below root: kind, permissions, mtime (ms) and content or link target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            if path.is_symlink():
                out[rel] = ("l", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("d", st.st_mode & 0o7777, st.st_mtime_ns // 1_000_000)
            else:
                out[rel] = ("f", st.st_mode & 0o7777, st.st_mtime_ns // 1_000_000, path.read_bytes())
    return out


def test_a_folder_is_backed_up_and_restored_on_another_device(seaweed, credentials, tmp_path):
    store = seaweed.store(seaweed.bucket("backups"), "py/")
    key = VaultKey.generate()
    src = tmp_path / "Photos"
    (src / "2026" / "november").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "2026" / "november" / "cat.jpg").write_bytes(random.Random(1).randbytes(3 << 20))
    (src / "notes ü.txt").write_text("caption")
    (src / ".thumbs").write_text("cache")
    os.chmod(src / "notes ü.txt", 0o600)
    os.symlink("notes ü.txt", src / "latest")
    with Vault.create(store, key, state=tmp_path / "a.state", credentials=credentials) as a, \
         Vault.open(store, key, state=tmp_path / "b.state", credentials=credentials) as b:
        seen = []
        # ANCHOR: backup
        report = a.backup(src, progress=lambda path, p: seen.append(path))
        assert isinstance(report, BackupReport)
        assert report.name == "Photos" and a.backups() == ["Photos"]
        assert (report.files_stored, report.dirs, report.symlinks) == (2, 3, 1), report
        assert (report.files_new, report.files_changed) == (2, 0), report
        assert report.packs >= 1 and report.requests >= report.packs, report
        assert report.errors == [] and not report.dry_run
        assert "2026/november/cat.jpg" in seen
        assert repr(report).startswith("BackupReport(name=\"Photos\", files_stored=2")
        again = a.backup(src)
        assert (again.files_stored, again.files_unchanged, again.bytes_sent) == (0, 2, 0)
        a.sync()

        b.sync()
        to = tmp_path / "restored"
        restored = b.restore(to)
        assert isinstance(restored, RestoreReport)
        assert (restored.name, restored.files_written, restored.errors) == ("Photos", 2, [])
        # ANCHOR_END: backup
        hidden_left_out = {k: v for k, v in tree(src).items() if k != ".thumbs"}
        assert tree(to) == hidden_left_out

        dry = b.restore(tmp_path / "nowhere", dry_run=True)
        assert dry.dry_run and dry.files_written == 2
        assert not (tmp_path / "nowhere").exists()


def test_entries_that_would_escape_are_refused(tmp_path):
    store = f"file://{tmp_path / 'bucket'}"
    with Vault.create(store, VaultKey.generate(), state=tmp_path / "a.state") as a:
        a.put("backup/evil/m/../../escaped", b"BKSM\x01\x01\x00\x00\x00\x00\x00\x00")
        a.put("backup/evil/m/fine", b"BKSM\x01\x01\x00\x00\x00\x00\x00\x00")
        report = a.restore(tmp_path / "target", name="evil")
        assert [path for path, _ in report.errors] == ["../../escaped"]
        error = report.errors[0][1]
        assert isinstance(error, bucketsync.ConfigError) and "backup/evil/m/" in str(error)
        assert (tmp_path / "target" / "fine").is_dir()
        assert not (tmp_path / "escaped").exists()
        a.put("backup/other/m/x", b"BKSM\x01\x01\x00\x00\x00\x00\x00\x00")
        with pytest.raises(bucketsync.ConfigError, match="2 backups"):
            a.restore(tmp_path / "t2")


def test_a_folder_syncs_both_ways(tmp_path):
    store = f"file://{tmp_path / 'bucket'}"
    key = VaultKey.generate()
    on_a, on_b = tmp_path / "a", tmp_path / "b"
    on_a.mkdir()
    on_b.mkdir()
    (on_a / "todo.txt").write_text("from a")
    with Vault.create(store, key, state=tmp_path / "a.state") as a, \
         Vault.open(store, key, state=tmp_path / "b.state") as b:
        # ANCHOR: sync_folder
        sent = a.sync_folder(on_a, name="shared")
        assert isinstance(sent, bucketsync.FolderReport)
        assert (sent.name, sent.uploaded, sent.errors) == ("shared", 1, [])
        got = b.sync_folder(on_b, name="shared")
        assert got.downloaded == 1 and (on_b / "todo.txt").read_text() == "from a"
        (on_b / "todo.txt").unlink()
        assert b.sync_folder(on_b, name="shared").deleted_there == 1
        assert a.sync_folder(on_a, name="shared").deleted_here == 1
        assert not (on_a / "todo.txt").exists()
        # ANCHOR_END: sync_folder
        with pytest.raises(bucketsync.ConfigError, match="nothing was synced"):
            a.sync_folder(tmp_path / "missing", name="shared")


def test_a_folder_sync_deleting_most_files_stops_until_confirmed(tmp_path):
    store = f"file://{tmp_path / 'bucket'}"
    key = VaultKey.generate()
    folder = tmp_path / "notes"
    folder.mkdir()
    for n in range(12):
        (folder / f"{n}.txt").write_text(f"note {n}")
    with Vault.create(store, key, state=tmp_path / "a.state") as a:
        assert a.sync_folder(folder, name="notes").uploaded == 12
        for n in range(10):
            (folder / f"{n}.txt").unlink()
        plan = a.sync_folder(folder, name="notes", dry_run=True)
        assert plan.dry_run and plan.deleted_there == 10
        assert plan.changes[:2] == [("0.txt", "delete-there"), ("1.txt", "delete-there")]
        with pytest.raises(bucketsync.ConflictError, match="would delete 10 of its 12 files"):
            a.sync_folder(folder, name="notes")
        a.confirm_deletions()
        assert a.sync_folder(folder, name="notes").deleted_there == 10


def test_a_restore_takes_only_what_it_is_asked_for_from_a_synced_folder(tmp_path):
    store = f"file://{tmp_path / 'bucket'}"
    key = VaultKey.generate()
    folder = tmp_path / "notes"
    (folder / "deep").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "deep" / "b.txt").write_text("b")
    (folder / "c.jpg").write_bytes(b"c")
    with Vault.create(store, key, state=tmp_path / "a.state") as a:
        a.sync_folder(folder, name="notes")
        with pytest.raises(bucketsync.ConfigError, match="give the name it syncs under"):
            a.restore(tmp_path / "x", synced_folder=True)
        back = tmp_path / "back"
        report = a.restore(back, name="notes", synced_folder=True, only=["deep", "*.jpg"])
        assert report.files_written == 2 and report.errors == []
        assert (back / "deep" / "b.txt").read_text() == "b"
        assert (back / "c.jpg").read_bytes() == b"c"
        assert not (back / "a.txt").exists()


def test_verify_reads_a_backup_back_and_names_damaged_files(tmp_path):
    store = f"file://{tmp_path / 'bucket'}"
    key = VaultKey.generate()
    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(4):
        (folder / f"{n}.bin").write_bytes(random.Random(n).randbytes(200_000))
    with Vault.create(store, key, state=tmp_path / "a.state") as a:
        a.backup(folder, name="docs")
        report = a.verify()
        assert isinstance(report, bucketsync.VerifyReport)
        assert (report.name, report.files_ok, report.damaged) == ("docs", 4, [])
        assert report.bytes_checked == 4 * 200_000
        # Bit rot in a pack: the files it touches are named, as CorruptError.
        packs = [p for p in (tmp_path / "bucket").rglob("*") if p.is_file() and "/p/" in str(p)]
        data = bytearray(packs[0].read_bytes())
        data[len(data) // 2] ^= 0x40
        packs[0].write_bytes(bytes(data))
        found = a.verify("docs")
        assert found.damaged and found.files_ok + len(found.damaged) == 4
        assert all(isinstance(e, bucketsync.CorruptError) for _, e in found.damaged)
        with pytest.raises(bucketsync.ConfigError, match="give 1 to 100"):
            a.verify("docs", sample_percent=0)
        with pytest.raises(bucketsync.ConfigError, match="a sample of 300%"):
            a.verify("docs", sample_percent=300)
        with pytest.raises(OverflowError):
            a.verify("docs", sample_percent=-5)
