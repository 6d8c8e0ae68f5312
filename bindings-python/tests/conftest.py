"""A real SeaweedFS server for the tests: free ports, fresh data dir, static credentials
(so signatures are checked), stopped by PID at the end, also when tests fail."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ACCESS_KEY = "bucketsync-py-key"
SECRET_KEY = "bucketsync-py-secret-0123456789"


def _weed():
    candidates = [
        os.environ.get("BUCKETSYNC_WEED"),
        str(Path.home() / ".cache/bucketsync/venv/bin/weed"),
        shutil.which("weed"),
    ]
    for c in candidates:
        if c and os.path.exists(c):
            return c
    pytest.fail("weed not found: run `bash scripts/test.sh` (it installs it) or set BUCKETSYNC_WEED")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def signed_curl(*args):
    """curl with AWS Signature Version 4 and the test credentials; returns the HTTP status."""
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--aws-sigv4", "aws:amz:us-east-1:s3",
         "--user", f"{ACCESS_KEY}:{SECRET_KEY}", *args],
        capture_output=True, text=True, check=False,
    )
    return int(out.stdout or 0)


def signed_curl_body(*args):
    """Like signed_curl, but returns the body of a 2xx answer ("" otherwise)."""
    out = subprocess.run(
        ["curl", "-s", "-f", "--aws-sigv4", "aws:amz:us-east-1:s3",
         "--user", f"{ACCESS_KEY}:{SECRET_KEY}", *args],
        capture_output=True, text=True, check=False,
    )
    return out.stdout if out.returncode == 0 else ""


class Server:
    def __init__(self, endpoint, process, scratch=None):
        self.endpoint = endpoint
        self.process = process
        self.scratch = scratch

    def bucket(self, name):
        """Creates the bucket and waits until it takes a write. weed answers ListBuckets before
        its volume server has joined, and a bucket's first write grows volumes for it: on a
        loaded machine writes fail with HTTP 500 for a while. A probe object is written until
        it is accepted (at most 60 s), then deleted."""
        status = signed_curl("-X", "PUT", f"{self.endpoint}/{name}")
        assert status in (200, 409), status
        probe = f"{self.endpoint}/{name}/bucketsync-test-write-probe"
        deadline = time.time() + 60
        while True:
            status = signed_curl("-X", "PUT", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                                 "--data-binary", "probe", probe)
            if status == 200:
                break
            assert time.time() < deadline, f"{name} refused writes for 60 s: HTTP {status}"
            time.sleep(0.2)
        assert signed_curl("-X", "DELETE", probe) == 204
        return name

    def store(self, bucket, prefix=""):
        return f"s3://{bucket}/{prefix}?endpoint={self.endpoint}&path_style=true"

    def stop(self):
        _unregister(self.process.pid)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


def _register(pid):
    """Notes a server's PID in $BUCKETSYNC_PID_DIR so that scripts/test.sh stops exactly its own."""
    folder = os.environ.get("BUCKETSYNC_PID_DIR")
    if folder:
        open(os.path.join(folder, str(pid)), "w").close()


def _unregister(pid):
    folder = os.environ.get("BUCKETSYNC_PID_DIR")
    if folder:
        try:
            os.remove(os.path.join(folder, str(pid)))
        except FileNotFoundError:
            pass


def start_seaweed(root):
    """Starts weed on free ports. A port is free when chosen but released before weed binds it,
    so another process can take it in between: weed is then started again on new ports."""
    for attempt in range(1, 4):
        server, log, lost_race = _start_seaweed_once(root / f"attempt-{attempt}")
        if server:
            return server
        if not lost_race or attempt == 3:
            pytest.fail(f"SeaweedFS did not start (attempt {attempt}):\n{log}")


def _start_seaweed_once(root):
    data = root / "data"
    data.mkdir(parents=True)
    ids = root / "identities.json"
    ids.write_text(json.dumps({"identities": [{
        "name": "tester",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }]}))
    p = _free_ports(10)
    # A Unix socket path is at most 107 bytes: pytest's temporary folders can be longer.
    sockets = tempfile.mkdtemp(prefix="bs-weed-")
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    args = [
        _weed(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.port={p[0]}", f"-s3.config={ids}",
        f"-master.port={p[1]}", f"-master.port.grpc={p[2]}", f"-volume.port={p[3]}",
        f"-volume.port.grpc={p[4]}", f"-filer.port={p[5]}", f"-filer.port.grpc={p[6]}",
        f"-admin.port={p[7]}", f"-admin.port.grpc={p[8]}", f"-s3.port.grpc={p[9]}",
        "-admin.ui=false", "-webdav=false",
        # Otherwise weed allows as many volumes as the free disk holds at 128 MB each, and each
        # bucket takes one: on a nearly full disk the later buckets refuse every write (HTTP 500).
        "-volume.max=1000",
        "-master.telemetry=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.localSocket={sockets}/s3.sock", f"-filer.localSocket={sockets}/filer.sock",
    ]
    log_path = root / "weed.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    _register(process.pid)
    server = Server(f"http://127.0.0.1:{p[0]}", process, scratch=sockets)
    deadline = time.time() + 60
    while True:
        # The log and the exit first: a port taken by another process may never answer.
        text = log_path.read_text(errors="replace")
        lost_race = "address already in use" in text.lower() or "is not available" in text
        if lost_race or process.poll() is not None or time.time() > deadline:
            server.stop()
            return None, text, lost_race
        # A 200 alone is not enough: while weed starts, its S3 port may still belong to another
        # server (a filer answers `GET /` with 200). Only a ListBuckets answer is ours.
        if "ListAllMyBucketsResult" in signed_curl_body("--max-time", "2", f"{server.endpoint}/"):
            return server, text, False
        time.sleep(0.1)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    server = start_seaweed(tmp_path_factory.mktemp("bucketsync-test-weed"))
    yield server
    server.stop()


@pytest.fixture
def credentials():
    import bucketsync
    return bucketsync.Credentials(ACCESS_KEY, SECRET_KEY)


OTHER_KEY = "other-service-key"
OTHER_SECRET = "other-service-secret-0123456789"


@pytest.fixture
def other_service(tmp_path):
    """Another S3 service: s3s-fs accepting only OTHER_KEY, behind a tap that appends every
    byte sent to it to a file (started by the suite's `test-server`, built by scripts/test.sh).
    Yields (endpoint, credentials, seen), seen() being every byte the server was sent."""
    import bucketsync
    binary = os.environ.get("BUCKETSYNC_TEST_SERVER") or str(
        Path(__file__).resolve().parents[2] / "target" / "debug" / "test-server")
    if not os.path.exists(binary):
        pytest.fail(f"{binary} not found: `cargo build --bin test-server` (scripts/test.sh does)")
    tap = tmp_path / "tap.log"
    process = subprocess.Popen([binary, "s3s", "--as", f"{OTHER_KEY}:{OTHER_SECRET}", "--tap", str(tap), "trips"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if not line:
            pytest.fail("the test server exited before it was ready")
        endpoint = json.loads(line)["endpoint"]
        yield endpoint, bucketsync.Credentials(OTHER_KEY, OTHER_SECRET), lambda: tap.read_bytes() if tap.exists() else b""
    finally:
        process.stdin.close()
        process.wait(timeout=30)
