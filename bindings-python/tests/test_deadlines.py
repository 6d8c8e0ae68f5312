"""Deadlines on every request of the built-in HTTP transport (issue 37): a server that accepts
and never answers, or stops halfway through a body, fails sync, put_file, get_file and the
background loop as TimeoutError, and the next attempt goes on once the server answers again."""

import socket
import threading
import time

import pytest

import bucketsync
from bucketsync import Vault, VaultKey

from test_auto_sync import wait_for


class Gate:
    """A proxy in front of SeaweedFS, one HTTP exchange at a time: "pass" forwards, "silent"
    reads the request and never answers, "half" forwards it and relays the answer's head and
    half of its body, then nothing more."""

    def __init__(self, upstream):
        host, port = upstream.split("//")[1].split(":")
        self.upstream = (host, int(port))
        self.mode = "pass"
        self.released = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def store(self, bucket, prefix):
        return f"s3://{bucket}/{prefix}?endpoint={self.endpoint}&path_style=true"

    def close(self):
        self.released.set()
        self.listener.close()

    def _accept(self):
        while not self.released.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        upstream = None
        reader = client.makefile("rb")
        try:
            while True:
                head = _read_head(reader)
                if head is None:
                    return
                body = reader.read(_content_length(head))
                mode = self.mode
                if mode == "silent":
                    self.released.wait()
                    return
                if upstream is None:
                    upstream = socket.create_connection(self.upstream)
                    up_reader = upstream.makefile("rb")
                upstream.sendall(head + body)
                answer_head = _read_head(up_reader)
                if answer_head is None:
                    return
                method = head.split(b" ", 1)[0]
                answer_body = b"" if method == b"HEAD" else _read_body(up_reader, answer_head)
                answer_head = _without_chunking(answer_head, len(answer_body), method)
                if mode == "half" and len(answer_body) > 1:
                    client.sendall(answer_head + answer_body[: len(answer_body) // 2])
                    self.released.wait()
                    return
                client.sendall(answer_head + answer_body)
        except OSError:
            return
        finally:
            client.close()
            if upstream is not None:
                upstream.close()


def _read_head(reader):
    lines = []
    while True:
        line = reader.readline()
        if not line:
            return None
        lines.append(line)
        if line == b"\r\n":
            return b"".join(lines)


def _header(head, name):
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _content_length(head):
    value = _header(head, b"content-length")
    return int(value) if value else 0


def _read_body(reader, head):
    if (_header(head, b"transfer-encoding") or b"").lower() == b"chunked":
        body = b""
        while True:
            size = int(reader.readline().split(b";")[0], 16)
            if size == 0:
                reader.readline()
                return body
            body += reader.read(size)
            reader.readline()
    return reader.read(_content_length(head))


def _without_chunking(head, length, method):
    """The answer's head with its body framed by content-length (the body was read whole)."""
    if (_header(head, b"transfer-encoding") or b"").lower() != b"chunked":
        return head
    lines = [l for l in head.split(b"\r\n") if not l.lower().startswith(b"transfer-encoding")]
    lines.insert(1, b"content-length: %d" % length)
    return b"\r\n".join(lines)


@pytest.fixture
def gate(seaweed):
    gate = Gate(seaweed.endpoint)
    yield gate
    gate.close()


def test_deadlines_on_sync_files_and_the_loop(seaweed, gate, credentials, tmp_path):
    bucket = seaweed.bucket("deadlines")
    key = VaultKey.generate()
    a = Vault.create(seaweed.store(bucket, "d/"), key, credentials=credentials)
    a.put("seed", "1")
    data = bytes(range(256)) * 4096  # 1 MiB: chunked, in a pack
    a.put_file("big", _file(tmp_path, "big", data))
    a.sync()

    # Through the gate while it passes, with the default deadlines: b learns of the file.
    state = tmp_path / "b.state"
    b = Vault.open(gate.store(bucket, "d/"), key, credentials=credentials, state=state)
    b.sync()
    assert b.get("seed") == b"1"
    b.close()

    quick = dict(credentials=credentials, state=state, stall_timeout=1.0, request_timeout=10.0)
    b = Vault.open(gate.store(bucket, "d/"), key, **quick)
    gate.mode = "silent"
    started = time.monotonic()
    with pytest.raises(bucketsync.TimeoutError):
        b.sync()
    print(f"sync against a silent server: TimeoutError after {time.monotonic() - started:.1f} s")
    with pytest.raises(bucketsync.TimeoutError):
        b.put_file("up", _file(tmp_path, "up", b"x" * 300_000))
    with pytest.raises(bucketsync.TimeoutError):
        b.get_file("big", tmp_path / "out-silent")

    gate.mode = "half"
    with pytest.raises(bucketsync.TimeoutError):
        b.get_file("big", tmp_path / "out-half")
    with pytest.raises(bucketsync.TimeoutError):
        b.sync()

    # The loop reports the timeout as its state, and goes on once the server answers.
    gate.mode = "silent"
    events = []
    b.start_auto_sync(interval=1.0, on_event=events.append)
    wait_for(
        "a timeout state from the loop",
        60,
        lambda: any(e.kind == "state" and e.category == "timeout" for e in list(events)),
    )
    gate.mode = "pass"
    a.put("after", "the outage")
    a.sync()
    wait_for("the loop to recover", 60, lambda: b.get("after") == b"the outage")
    b.stop_auto_sync()

    # And every operation goes on.
    b.sync()
    b.get_file("big", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    b.put_file("up", _file(tmp_path, "up", b"x" * 300_000))
    b.close()
    a.close()


def test_deadlines_are_checked(tmp_path):
    key = VaultKey.generate()
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(bucketsync.ConfigError, match="stall_timeout"):
            Vault.open("s3://b/p?endpoint=http://127.0.0.1:9&path_style=true", key, stall_timeout=bad)
        with pytest.raises(bucketsync.ConfigError, match="request_timeout"):
            Vault.open("s3://b/p?endpoint=http://127.0.0.1:9&path_style=true", key, request_timeout=bad)


def _file(tmp_path, name, data):
    path = tmp_path / f"{name}.bin"
    path.write_bytes(data)
    return path
