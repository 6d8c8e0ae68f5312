"""Files through the Python binding: put_file/get_file/file_info over paths and file objects,
between devices on SeaweedFS and on a folder bucket; what fails leaves nothing behind."""

import asyncio
import io
import os
import random
import signal
import socket
from pathlib import Path

import pytest

import bucketsync
from bucketsync import FileInfo, FileProgress, FileReport, Vault, VaultKey

MIB = 1 << 20


def content(size, seed=1):
    return random.Random(seed).randbytes(size)


def folder(tmp_path):
    return f"file://{tmp_path / 'bucket'}"


def leftovers(directory):
    """Temporary files get_file may have left in a folder."""
    return [p.name for p in Path(directory).iterdir() if p.name.endswith(".part")]


def test_a_file_goes_between_devices_through_file_objects_and_is_stored_once(seaweed, credentials, tmp_path):
    store = seaweed.store(seaweed.bucket("files"), "py/")
    key = VaultKey.generate()
    data = content(6 * MIB + 12_345)
    with Vault.create(store, key, state=tmp_path / "a.state", credentials=credentials) as a, \
         Vault.open(store, key, state=tmp_path / "b.state", credentials=credentials) as b:
        seen = []
        # ANCHOR: put_file
        report = a.put_file("photos/cat.jpg", io.BytesIO(data), progress=seen.append)
        # ANCHOR_END: put_file
        assert isinstance(report, FileReport)
        assert report.size == len(data)
        assert report.chunks >= 2 and report.chunks_uploaded == report.chunks and report.chunks_reused == 0
        assert report.packs >= 1 and report.requests >= report.packs
        assert report.bytes_sent > len(data)
        assert repr(report).startswith(f"FileReport(size={len(data)}, chunks={report.chunks}, ")
        assert seen and all(isinstance(p, FileProgress) for p in seen)
        done = [p.bytes_done for p in seen]
        assert done == sorted(done) and done[-1] == len(data)
        assert all(p.bytes_total == len(data) for p in seen), "a BytesIO's length is known"
        assert seen[-1].requests_done == report.requests
        assert "bytes_done=" in repr(seen[-1])

        # ANCHOR: file_info
        info = a.file_info("photos/cat.jpg")
        # ANCHOR_END: file_info
        assert isinstance(info, FileInfo)
        assert (info.size, info.chunks, info.packs) == (len(data), report.chunks, report.packs)
        assert len(info.content_hash) == 64 and "content_hash=" in repr(info)

        assert a.sync().errors == []
        assert b.sync().changed == [b"photos/cat.jpg"]
        assert b.file_info("photos/cat.jpg").content_hash == info.content_hash
        out = io.BytesIO()
        got = []
        assert b.get_file("photos/cat.jpg", out, progress=got.append) is None
        assert out.getvalue() == data
        assert got[-1].bytes_done == got[-1].bytes_total == len(data)

        # The same bytes again, on the other device: nothing but the record goes up.
        again = b.put_file(b"backup/cat.jpg", io.BytesIO(data))
        assert again.chunks == report.chunks and again.chunks_uploaded == 0
        assert again.chunks_reused == report.chunks and again.packs == 0
        assert b.file_info("backup/cat.jpg").content_hash == info.content_hash

        # A file object read from where it stands.
        partly = io.BytesIO(b"skipped" + data[:100_000])
        partly.seek(len(b"skipped"))
        assert b.put_file("tail", partly).size == 100_000
        out = io.BytesIO()
        b.get_file("tail", out)
        assert out.getvalue() == data[:100_000]


def test_paths_round_trip_and_a_failed_read_leaves_no_file(tmp_path):
    vault = Vault.create(folder(tmp_path), VaultKey.generate(), state=tmp_path / "v.state")
    source = tmp_path / "in.bin"
    data = content(3 * MIB, seed=2)
    source.write_bytes(data)
    seen = []
    report = vault.put_file("docs/in.bin", source, progress=seen.append)
    assert report.size == len(data) and seen[0].bytes_total == len(data)
    out = tmp_path / "out" / "copy.bin"
    out.parent.mkdir()
    vault.get_file("docs/in.bin", str(out))
    assert out.read_bytes() == data
    # Over an existing file, through a str path.
    out.write_bytes(b"old")
    vault.get_file("docs/in.bin", str(out))
    assert out.read_bytes() == data
    assert leftovers(out.parent) == []

    # Small files live in their record.
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello")
    report = vault.put_file("small", small)
    assert (report.size, report.chunks, report.packs) == (5, 0, 0)
    assert vault.file_info("small").chunks == 0
    vault.get_file("small", out)
    assert out.read_bytes() == b"hello"

    # A progress callback that raises half-way: the exception, and no file at the path; the
    # partial file stays beside it, and the next read to that path resumes from it.
    target = out.parent / "later.bin"

    def broken(p):
        if p.bytes_done > MIB:
            raise RuntimeError("the progress bar broke")

    with pytest.raises(RuntimeError, match="progress bar"):
        vault.get_file("docs/in.bin", target, progress=broken)
    assert not target.exists()
    [partial] = leftovers(out.parent)
    assert partial.startswith(".later.bin.") and partial.endswith(".part")
    resumed = []
    vault.get_file("docs/in.bin", target, progress=resumed.append)
    assert target.read_bytes() == data and leftovers(out.parent) == []
    # It started where the partial file's whole chunks end (more than a MiB was written, so at
    # least one chunk of 512 KiB or more) and did not fetch those again.
    assert resumed[0].bytes_done >= 512 * 1024 and resumed[0].requests_total == 0

    # A damaged pack: CorruptError, and no file at the path either.
    packs = [p for p in (tmp_path / "bucket").rglob("*") if p.is_file() and "/p/" in p.as_posix()]
    assert packs
    for pack in packs:
        raw = bytearray(pack.read_bytes())
        raw[len(raw) // 3] ^= 0xFF
        pack.write_bytes(bytes(raw))
    never = out.parent / "never.bin"
    with pytest.raises(bucketsync.CorruptError):
        vault.get_file("docs/in.bin", never)
    assert not never.exists() and leftovers(out.parent) == []

    with pytest.raises(FileNotFoundError):
        vault.put_file("nope", tmp_path / "no-such-file")
    with pytest.raises(FileNotFoundError):
        vault.get_file("small", tmp_path / "no-such-dir" / "x")
    assert vault.get("nope") is None
    vault.close()


def test_absent_keys_plain_records_and_wrong_arguments(tmp_path):
    vault = Vault.create(folder(tmp_path), VaultKey.generate())
    target = tmp_path / "absent.bin"
    with pytest.raises(KeyError) as absent:
        vault.get_file("no/such/file", target)
    assert absent.value.args == ("no/such/file",)
    assert not target.exists() and leftovers(tmp_path) == []
    with pytest.raises(KeyError):
        vault.get_file(b"no/such/file", io.BytesIO())
    assert vault.file_info("no/such/file") is None

    vault.put("plain", "a record, not a file")
    with pytest.raises(bucketsync.ConfigError, match="not a file"):
        vault.get_file("plain", target)
    assert not target.exists() and leftovers(tmp_path) == []
    with pytest.raises(bucketsync.ConfigError, match="not a file"):
        vault.file_info("plain")

    # A deleted file is absent.
    vault.put_file("gone", io.BytesIO(b"x" * 10_000))
    vault.delete("gone")
    assert vault.file_info("gone") is None
    with pytest.raises(KeyError):
        vault.get_file("gone", io.BytesIO())

    with pytest.raises(TypeError, match="binary file object"):
        vault.put_file("k", 42)
    with pytest.raises(TypeError, match="binary mode"):
        vault.put_file("k", io.StringIO("text"))
    assert vault.get("k") is None


class Failing(io.RawIOBase):
    """Gives `good` bytes, then raises."""

    def __init__(self, good):
        self.left = good

    def readable(self):
        return True

    def readinto(self, buf):
        if self.left <= 0:
            raise OSError("the disk is gone")
        n = min(len(buf), self.left)
        buf[:n] = b"\xab" * n
        self.left -= n
        return n


def test_what_a_file_object_raises_propagates_and_nothing_is_stored(tmp_path):
    vault = Vault.create(folder(tmp_path), VaultKey.generate())
    with pytest.raises(OSError, match="the disk is gone"):
        vault.put_file("broken", Failing(5 * MIB))
    assert vault.get("broken") is None and vault.file_info("broken") is None

    # What was there stays.
    vault.put_file("kept", io.BytesIO(b"first version" * 1000))
    with pytest.raises(OSError, match="the disk is gone"):
        vault.put_file("kept", Failing(3 * MIB))
    out = io.BytesIO()
    vault.get_file("kept", out)
    assert out.getvalue() == b"first version" * 1000

    class FullDisk(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        vault.get_file("kept", FullDisk())

    # A stream without a length: read to its end, bytes_total None.
    class Stream:
        def __init__(self, data):
            self.inner = io.BytesIO(data)

        def read(self, n=-1):
            return self.inner.read(min(n, 70_000))

    seen = []
    data = content(2 * MIB, seed=3)
    assert vault.put_file("stream", Stream(data), progress=seen.append).size == len(data)
    assert seen and all(p.bytes_total is None for p in seen)
    with open(tmp_path / "stream.bin", "wb") as f:
        vault.get_file("stream", f)
    assert (tmp_path / "stream.bin").read_bytes() == data


def test_ctrl_c_stops_a_transfer_and_a_callback_cannot_nest_one(tmp_path, request):
    import _thread

    vault = Vault.create(folder(tmp_path), VaultKey.generate())
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))

    def ctrl_c(p):
        if p.bytes_done >= MIB:
            _thread.interrupt_main()
            for _ in range(1000):
                pass

    with pytest.raises(KeyboardInterrupt):
        vault.put_file("big", io.BytesIO(content(8 * MIB)), progress=ctrl_c)
    assert vault.file_info("big") is None
    assert vault.put_file("big", io.BytesIO(content(8 * MIB))).size == 8 * MIB

    nested = []

    def progress(p):
        try:
            vault.get_file("big", io.BytesIO())
        except bucketsync.ConflictError as e:
            nested.append(e)

    vault.sync(progress=progress)
    vault.put_file("other", io.BytesIO(content(MIB, seed=4)), progress=progress)
    assert nested and "running on this thread" in str(nested[0])
    assert nested[0].category == "conflict"


def test_async_transfers_and_a_cancelled_one(seaweed, credentials, tmp_path):
    data = content(2 * MIB + 7, seed=5)
    key = VaultKey.generate()

    async def round_trip():
        vault = Vault.create(folder(tmp_path), key)
        report = await vault.put_file_async("a", io.BytesIO(data))
        out = io.BytesIO()
        await vault.get_file_async("a", out)
        with pytest.raises(KeyError):
            await vault.get_file_async("b", io.BytesIO())
        return report, out.getvalue()

    report, back = asyncio.run(round_trip())
    assert report.size == len(data) and back == data

    # A store that accepts connections and never answers: the upload hangs until cancelled.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    hung = f"s3://hung/?endpoint=http://127.0.0.1:{silent.getsockname()[1]}&path_style=true"

    async def cancel_a_hung_upload():
        vault = Vault.create(hung, key, credentials=credentials)
        task = asyncio.create_task(vault.put_file_async("never", io.BytesIO(data)))
        await asyncio.sleep(0.3)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=20)
        assert vault.file_info("never") is None

    try:
        asyncio.run(cancel_a_hung_upload())
    finally:
        silent.close()


def test_open_file_reads_anywhere_as_a_seekable_file_object(tmp_path):
    vault = Vault.create(folder(tmp_path), VaultKey.generate())
    data = content(6 * MIB, seed=7)
    vault.put_file("big", io.BytesIO(data))
    with vault.open_file("big") as f:
        assert (f.size, f.readable(), f.seekable(), f.writable()) == (len(data), True, True, False)
        assert f.read(10) == data[:10] and f.tell() == 10
        assert f.seek(3 * MIB + 5) == 3 * MIB + 5
        assert f.read(1000) == data[3 * MIB + 5 : 3 * MIB + 1005]
        f.seek(-7, io.SEEK_END)
        assert f.read() == data[-7:] and f.read(5) == b""
        f.seek(MIB)
        buf = bytearray(100)
        assert f.readinto(buf) == 100 and bytes(buf) == data[MIB : MIB + 100]
        assert f.seek(-50, io.SEEK_CUR) == MIB + 50
        # The standard library's buffered reader takes it as its raw file.
        f.seek(0)
        assert io.BufferedReader(f, buffer_size=256 * 1024).read() == data
        with pytest.raises(ValueError):
            f.seek(-1)
    assert f.closed
    with pytest.raises(ValueError, match="closed"):
        f.read(1)
    # An overwritten key: a reader opened before reads the version it opened.
    reader = vault.open_file("big")
    vault.put_file("big", io.BytesIO(content(6 * MIB, seed=8)))
    reader.seek(5 * MIB)
    assert reader.read(100) == data[5 * MIB : 5 * MIB + 100]
    with pytest.raises(KeyError):
        vault.open_file("absent")
    vault.put("plain", "x")
    with pytest.raises(bucketsync.ConfigError):
        vault.open_file("plain")
    vault.close()


def test_put_files_shares_packs_and_leaves_out_only_the_files_that_fail(seaweed, credentials, tmp_path):
    store = seaweed.store(seaweed.bucket("batch"), "py/")
    key = VaultKey.generate()
    tree = tmp_path / "tree"
    tree.mkdir()
    files = {}
    for i in range(60):
        data = content(5_000 + 97 * i, seed=100 + i)
        (tree / f"n{i}.txt").write_bytes(data)
        files[f"notes/{i}".encode()] = data
    (tree / "tiny").write_bytes(b"hello")
    files[b"tiny"] = b"hello"
    pairs = [(k, tree / ("tiny" if k == b"tiny" else f"n{k.split(b'/')[1].decode()}.txt")) for k in files]
    # The same key again, later: the later file is the one stored.
    (tree / "again").write_bytes(b"the later one" * 1000)
    pairs.append((b"notes/0", str(tree / "again")))
    files[b"notes/0"] = b"the later one" * 1000
    seen = {}
    with Vault.create(store, key, state=tmp_path / "a.state", credentials=credentials) as a, \
         Vault.open(store, key, state=tmp_path / "b.state", credentials=credentials) as b:
        report = a.put_files(pairs, progress=lambda k, p: seen.setdefault(k, p))
        assert isinstance(report, bucketsync.PutFilesReport)
        assert report.failed == {}
        assert set(report.stored) == set(files)
        assert all(isinstance(r, FileReport) for r in report.stored.values())
        assert report.stored[b"notes/7"].size == len(files[b"notes/7"])
        # 62 files of about 8 kB: one or two packs, not one per file.
        assert 1 <= report.packs <= 2, report
        assert report.requests <= report.packs + 2, report
        assert repr(report).startswith("PutFilesReport(stored=61, failed=0, ")
        assert seen and all(isinstance(p, FileProgress) for p in seen.values())
        assert a.sync().errors == []
        b.sync()
        for k, data in files.items():
            out = io.BytesIO()
            b.get_file(k, out)
            assert out.getvalue() == data, k

        # A missing path is refused before anything is stored.
        # One error category on every platform: config.
        with pytest.raises(bucketsync.ConfigError, match="missing"):
            a.put_files([(b"x", tree / "n1.txt"), (b"y", tree / "missing")])
        assert a.file_info(b"x") is None
        with pytest.raises(bucketsync.ConfigError, match="is a folder, not a file"):
            a.put_files([(b"x", tree)])
        with pytest.raises(TypeError):
            a.put_files([b"not a pair"])

        # A file that cannot be read when its turn comes is left out; the others are stored.
        gone = tree / "gone.txt"
        gone.write_bytes(b"soon gone" * 1000)
        a.put("later", b"what it held")

        def remove_gone(k, _p):
            if gone.exists():
                gone.unlink()

        report = a.put_files([(b"first", tree / "n2.txt"), (b"later", gone), (b"last", tree / "n3.txt")],
                             progress=remove_gone)
        assert set(report.stored) == {b"first", b"last"}
        assert set(report.failed) == {b"later"}
        assert isinstance(report.failed[b"later"], bucketsync.ConfigError)
        assert a.get("later") == b"what it held"

        # An exception from progress stops the batch and propagates.
        def boom(_k, _p):
            raise RuntimeError("stop here")

        with pytest.raises(RuntimeError, match="stop here"):
            a.put_files([(b"stopped", tree / "n4.txt")], progress=boom)
        assert a.file_info(b"stopped") is None
