import gc
import os
import subprocess
import time
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import bucketsync
from bucketsync import Credentials, Vault, VaultKey

from conftest import ACCESS_KEY, SECRET_KEY, start_seaweed

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python" / "history_sync.py"


def test_two_vaults_converge_and_a_third_bootstraps(seaweed, credentials, tmp_path):
    store = seaweed.store(seaweed.bucket("converge"), "py/")
    key = VaultKey.generate()
    with Vault.create(store, key, state=tmp_path / "a.state", credentials=credentials) as a, \
         Vault.open(store, key, state=tmp_path / "b.state", credentials=credentials) as b:
        a.put("notes/a", "from a")
        a.put(b"bin\x00key", b"\xff\x00")
        b.put("notes/b", "from b")
        b.put("shared", "b")
        # A later millisecond: writes in the same one on two unsynced devices are concurrent,
        # and the device id decides.
        time.sleep(0.005)
        a.put("shared", "a, later")
        b.delete("notes/b")
        for vault in (a, b, a):
            report = vault.sync()
            assert report.errors == []
        assert a.keys() == b.keys() == [b"bin\x00key", b"notes/a", b"shared"]
        assert b.get("shared") == b"a, later"
        assert b.get(b"bin\x00key") == b"\xff\x00"
        assert a.get("notes/b") is None
    c = Vault.open(store, key, state=tmp_path / "c.state", credentials=credentials)
    report = c.sync()
    # a pushed three records; b its tombstone and its "shared", which lost to a's later one but
    # still travels so that every device keeps it in that key's history.
    assert report.pulled == 5 and report.requests == 1 + 2 + 2, report
    assert [v["value"] for v in c.history("shared")] == [b"a, later", b"b"]
    assert c.keys(prefix="notes/") == [b"notes/a"]
    assert "SyncReport(pushed=0, pulled=" in repr(report)
    c.close()
    # The state file carries everything across a restart.
    again = Vault.open(store, key, state=tmp_path / "c.state", credentials=credentials)
    assert again.keys() == [b"bin\x00key", b"notes/a", b"shared"]
    assert again.sync().requests == 1


def test_wrong_key_wrong_secret_bad_url_and_unknown_bucket_raise_their_class(seaweed, credentials, tmp_path):
    key = VaultKey.generate()
    store = seaweed.store(seaweed.bucket("errors"))
    Vault.open(store, key, state=tmp_path / "mine.state", credentials=credentials).close()
    with pytest.raises(bucketsync.WrongVaultError) as wrong_key:
        Vault.open(store, VaultKey.generate(), state=tmp_path / "mine.state", credentials=credentials)
    assert wrong_key.value.category == "wrong-vault"
    assert "another vault" in str(wrong_key.value)

    code = key.recovery_code()
    typo = ("1" if code[0] != "1" else "2") + code[1:]
    with pytest.raises(bucketsync.ConfigError, match="checksum does not match"):
        VaultKey.from_recovery_code(typo)

    secret = "not-the-secret-at-all-42"
    vault = Vault.open(store, key, credentials=Credentials(ACCESS_KEY, secret))
    vault.put("k", "v")
    with pytest.raises(bucketsync.AuthError) as auth:
        vault.sync()
    assert "s3://errors/" in str(auth.value) and secret not in str(auth.value)
    assert secret not in repr(Credentials(ACCESS_KEY, secret))

    with pytest.raises(bucketsync.ConfigError, match="unknown parameter"):
        Vault.open("s3://bucket/x?endpoit=http://x", key, credentials=credentials)
    with pytest.raises(bucketsync.ConfigError, match="must start with s3://"):
        Vault.open("http://example.com/bucket", key)

    missing = Vault.open(seaweed.store("no-such-bucket-here"), key, credentials=credentials)
    with pytest.raises(bucketsync.NotFoundError) as not_found:
        missing.sync()
    assert isinstance(not_found.value, bucketsync.Error)


def test_nothing_in_the_state_file_is_lost_after_a_failed_sync(tmp_path, credentials):
    server = start_seaweed(tmp_path / "bucketsync-test-own-server")
    store = server.store(server.bucket("failing"))
    key = VaultKey.generate()
    state = tmp_path / "replica.state"
    with Vault.create(store, key, state=state, credentials=credentials) as vault:
        vault.put("synced", "1")
        vault.sync()
        vault.put("pending", "2")
        server.stop()
        with pytest.raises(bucketsync.NetworkError):
            vault.sync()
    reopened = Vault.open(store, key, state=state, credentials=credentials)
    assert reopened.keys() == [b"pending", b"synced"]
    assert reopened.unpushed == 1


def urllib_transport(request):
    """A transport on Python's own HTTP stack."""
    http_request = urllib.request.Request(
        request.url,
        data=request.body if request.method == "PUT" else None,
        method=request.method,
        headers=dict(request.headers),
    )
    try:
        with urllib.request.urlopen(http_request, timeout=30) as r:
            return bucketsync.Response(r.status, list(r.headers.items()), r.read())
    except urllib.error.HTTPError as e:
        return bucketsync.Response(e.code, list(e.headers.items()), e.read())


def test_a_python_transport_syncs_and_its_exceptions_surface_with_their_cause(seaweed, credentials):
    store = seaweed.store(seaweed.bucket("custom"))
    key = VaultKey.generate()
    seen = []

    def transport(request):
        seen.append(request.method)
        return urllib_transport(request)

    writer = Vault.create(store, key, credentials=credentials, transport=transport)
    writer.put("via", "urllib")
    progress = []
    report = writer.sync(progress=progress.append)
    # The segment, the same create again (the first small push asks whether the store refuses
    # it), the manifest, the change hint.
    assert report.pushed == 1 and seen.count("PUT") == 4, report.requests_by_kind
    assert report.requests_by_kind["check-create"] == 1 and not report.errors, report
    assert progress and progress[-1].requests_done == progress[-1].requests_total == report.requests
    reader = Vault.open(store, key, credentials=credentials)
    reader.sync()
    assert reader.get("via") == b"urllib"

    def broken(request):
        raise ValueError("the proxy is down")

    vault = Vault.open(store, key, credentials=credentials, transport=broken)
    with pytest.raises(bucketsync.Error) as failure:
        vault.sync()
    assert failure.value.category == "network"
    assert isinstance(failure.value.__cause__, ValueError)
    assert "the proxy is down" in str(failure.value)

    vault = Vault.open(store, key, credentials=credentials, transport=lambda r: "not a response")
    with pytest.raises(bucketsync.NetworkError) as bad_answer:
        vault.sync()
    assert isinstance(bad_answer.value.__cause__, TypeError)


def test_values_keys_and_types(tmp_path):
    key = VaultKey.from_recovery_code(VaultKey.generate().recovery_code().lower())
    vault = Vault.open(f"file://{tmp_path / 'bucket'}", key)
    vault.put("ключ", "значение")
    assert vault.get("ключ") == "значение".encode()
    with pytest.raises(TypeError, match="str or bytes"):
        vault.put("k", 42)
    assert repr(key).startswith("VaultKey(vault_id=")
    vault.close()
    with pytest.raises(bucketsync.ConfigError, match="closed"):
        vault.get("k")
    wrapped = key.wrap_with_passphrase("correct horse")
    assert VaultKey.unwrap_with_passphrase(wrapped, "correct horse").recovery_code() == key.recovery_code()


def test_the_history_example_runs_as_written(tmp_path):
    bucket = f"file://{tmp_path / 'bucket'}"
    env = dict(os.environ, BUCKETSYNC_KEY=VaultKey.generate().recovery_code())
    laptop, desktop = tmp_path / "laptop_history", tmp_path / "desktop_history"
    laptop.write_text("ls -la\ngit status\n")
    desktop.write_text("make test\n")

    def run(history, state, *flags):
        out = subprocess.run(
            [sys.executable, str(EXAMPLE), bucket, str(history), "--state", str(state), *flags],
            capture_output=True, text=True, env=env, check=True,
        )
        return out.stdout

    run(laptop, tmp_path / "laptop.state", "--create")
    out = run(desktop, tmp_path / "desktop.state")
    assert "ls -la" in out and "git status" in out and "make test" not in out.split("other machines")[-1]
    laptop.write_text("ls -la\ngit status\ncargo build\n")
    run(laptop, tmp_path / "laptop.state")
    out = run(desktop, tmp_path / "desktop.state")
    assert "cargo build" in out and "git status" not in out


def test_the_vault_can_be_used_during_its_own_sync_but_not_synced_twice(tmp_path):
    vault = Vault.create(f"file://{tmp_path / 'bucket'}", VaultKey.generate())
    vault.put("k", "v")
    seen, conflicts = [], []

    def progress(p):
        seen.append(vault.get("k"))
        if p.requests_done == 1:
            vault.put("during", "the sync")
        try:
            vault.sync()
        except bucketsync.ConflictError as e:
            conflicts.append(e)

    vault.sync(progress=progress)
    assert seen and all(v == b"v" for v in seen)
    assert conflicts and conflicts[0].category == "conflict"
    assert vault.unpushed == 1, "a write made during a sync goes out with the next one"
    assert vault.sync().pushed == 1
    assert repr(vault).startswith("Vault(store='file://")


CHILD = """
import os, sys, urllib.request, urllib.error
import bucketsync
store, code, state, mode = sys.argv[1:5]
creds = bucketsync.Credentials(sys.argv[5], sys.argv[6])

def transport(request):
    http_request = urllib.request.Request(request.url, method=request.method, headers=dict(request.headers),
                                          data=request.body if request.method == "PUT" else None)
    try:
        with urllib.request.urlopen(http_request, timeout=30) as r:
            response = bucketsync.Response(r.status, list(r.headers.items()), r.read())
    except urllib.error.HTTPError as e:
        response = bucketsync.Response(e.code, list(e.headers.items()), e.read())
    if mode == "after-segment-put" and request.method == "PUT" and "/s/" in request.url:
        os._exit(9)  # killed: the segment is in the store, the manifest is not
    return response

vault = bucketsync.Vault.create(store, bucketsync.VaultKey.from_recovery_code(code), state=state,
                                credentials=creds, transport=transport, flush_interval=3600)
for i in range(50):
    vault.put(f"acked/{i}", f"value {i}")
vault.delete("acked/7")
print("acknowledged", flush=True)
if mode == "after-put":
    os._exit(9)  # killed right after put() returned: no sync, no save, no close
vault.sync()
print("not reached", flush=True)
"""


@pytest.mark.parametrize("mode", ["after-put", "after-segment-put"])
def test_a_killed_process_loses_no_acknowledged_write(seaweed, credentials, tmp_path, mode):
    store = seaweed.store(seaweed.bucket(f"kill-{mode}"))
    key = VaultKey.generate()
    state = tmp_path / "killed.state"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, store, key.recovery_code(), str(state), mode, ACCESS_KEY, SECRET_KEY],
        capture_output=True, text=True, check=False,
    )
    assert child.returncode == 9, child.stderr
    assert child.stdout.strip() == "acknowledged"

    # The child was creating the vault; its restart goes on creating it.
    restarted = Vault.create(store, key, state=state, credentials=credentials)
    assert len(restarted.keys("acked/")) == 49
    report = restarted.sync()
    assert report.errors == [] and restarted.unpushed == 0, report
    restarted.close()

    other = Vault.open(store, key, credentials=credentials)
    report = other.sync()
    assert [k.decode() for k in other.keys()] == sorted(f"acked/{i}" for i in range(50) if i != 7)
    assert other.get("acked/7") is None
    assert report.pulled == 50, "every write stored exactly once"


def test_one_writer_per_state_file(tmp_path):
    store = f"file://{tmp_path / 'bucket'}"
    key = VaultKey.generate()
    state = tmp_path / "one.state"
    first = Vault.open(store, key, state=state)
    with pytest.raises(bucketsync.LockedError) as locked:
        Vault.open(store, key, state=state)
    assert locked.value.category == "locked"
    assert first.device in str(locked.value)
    other_process = subprocess.run(
        [sys.executable, "-c",
         "import sys, bucketsync\n"
         "try:\n"
         "    bucketsync.Vault.open(sys.argv[1], bucketsync.VaultKey.from_recovery_code(sys.argv[2]), state=sys.argv[3])\n"
         "except bucketsync.LockedError as e:\n"
         "    print(e.category)\n",
         store, key.recovery_code(), str(state)],
        capture_output=True, text=True, check=True,
    )
    assert other_process.stdout.strip() == "locked", other_process.stderr
    first.put("k", "v")
    first.close()
    with Vault.open(store, key, state=state, wait=True) as second:
        assert second.get("k") == b"v"


def test_an_interrupted_sync_leaves_the_vault_usable(tmp_path, request):
    import _thread

    store = f"file://{tmp_path / 'bucket'}"
    key = VaultKey.generate()
    vault = Vault.create(store, key, state=tmp_path / "s.state")
    for i in range(10):
        vault.put(f"k{i}", "v")

    # A runner started in the background of a shell without job control ignores SIGINT, and
    # interrupt_main() then does nothing: give the test Python's own Ctrl-C handler.
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))

    def ctrl_c(p):
        if p.requests_done == 2:
            _thread.interrupt_main()
            # The callback runs on the thread that called sync(): a loop lets Python act on
            # the interrupt here, before the sync (a few instant folder requests) can end.
            for _ in range(1000):
                pass

    with pytest.raises(KeyboardInterrupt):
        vault.sync(progress=ctrl_c)

    def broken(p):
        raise RuntimeError("the progress bar broke")

    with pytest.raises(RuntimeError, match="progress bar"):
        vault.sync(progress=broken)
    report = vault.sync()
    assert vault.unpushed == 0 and report.errors == []
    other = Vault.open(store, key)
    other.sync()
    assert len(other.keys()) == 10


def test_sync_async_syncs_and_a_cancelled_sync_stops_and_loses_nothing(seaweed, credentials, tmp_path):
    import asyncio
    import socket

    store = seaweed.store(seaweed.bucket("aio"))
    key = VaultKey.generate()

    async def write_and_read():
        writer = Vault.create(store, key, credentials=credentials)
        writer.put("via", "asyncio")
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        beat = asyncio.create_task(ticker())
        report = await writer.sync_async()
        beat.cancel()
        reader = Vault.open(store, key, credentials=credentials)
        await reader.sync_async()
        return report, reader.get("via"), ticks

    report, value, ticks = asyncio.run(write_and_read())
    assert report.pushed == 1 and value == b"asyncio"
    assert ticks > 0, "the event loop ran while the sync did"

    # A store that accepts connections and never answers: the sync hangs until cancelled.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    hung = f"s3://hung/?endpoint=http://127.0.0.1:{port}&path_style=true"
    state = str(tmp_path / "hung.state")

    async def cancel_a_hung_sync():
        vault = Vault.create(hung, key, credentials=credentials, state=state)
        vault.put("kept", "through a cancel")
        task = asyncio.create_task(vault.sync_async())
        await asyncio.sleep(0.3)
        assert not task.done(), "the sync is waiting on the silent store"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=20)
        # The vault is free at once and nothing was lost.
        assert vault.unpushed == 1 and vault.get("kept") == b"through a cancel"
        # A new sync starts (no ConflictError: the cancelled one has ended); its progress
        # callback stops it.
        def stop(progress):
            raise ValueError("stop here")

        with pytest.raises(ValueError, match="stop here"):
            vault.sync(progress=stop)
        vault.close()

    try:
        asyncio.run(cancel_a_hung_sync())
    finally:
        silent.close()


def test_a_vault_dropped_inside_another_vaults_sync_goes_quietly(seaweed, credentials, tmp_path):
    # A transport (or progress) callback runs inside the syncing vault's I/O runtime; a vault
    # made and let go there must shut its own runtime down without a PanicException.
    store = seaweed.store(seaweed.bucket("nested-drop"))
    key = VaultKey.generate()
    caught = []
    previous = sys.unraisablehook
    sys.unraisablehook = caught.append
    try:
        made = []

        def transport(request):
            if not made:
                scratch = Vault.create(f"file://{tmp_path}/scratch", VaultKey.generate())
                scratch.put("k", "v")
                made.append(1)
                del scratch
                gc.collect()
            return urllib_transport(request)

        vault = Vault.create(store, key, credentials=credentials, transport=transport)
        vault.put("a", "b")
        report = vault.sync()
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert made and report.pushed == 1 and not report.errors, report
    assert not caught, [str(c.exc_value) for c in caught]


def test_an_omitted_setting_is_the_cores_default(tmp_path):
    """Every setting left out (or given as None) is the core's default, and a bad one is named."""
    store = f"file://{tmp_path / 'bucket'}"
    key = VaultKey.generate()
    vault = Vault.create(store, key, flush_interval=None, grace_days=None, max_clock_skew_days=None,
                         max_future_days=None)
    vault.put("k", "v")
    assert vault.sync().errors == []
    [me] = vault.devices()
    assert me["this_device"] and not me["stale"]
    assert vault.devices(stale_after_days=None) == vault.devices()
    with pytest.raises(bucketsync.ConfigError, match="stale_after_days"):
        vault.devices(stale_after_days=-1)
    with pytest.raises(bucketsync.ConfigError, match="flush_interval"):
        Vault.open(store, key, flush_interval=float("nan"))
