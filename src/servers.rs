//! Real S3 servers for tests and benchmarks: SeaweedFS (`weed mini`) and s3s-fs, each started on
//! free loopback ports with a fresh data directory and static credentials (so signatures are
//! really checked), and stopped by PID when dropped, also when a test fails; and moto, for what
//! only it reports (the encryption at rest of each object).
//!
//! Binaries are found through `BUCKETSYNC_WEED` / `BUCKETSYNC_S3S_FS` / `BUCKETSYNC_MOTO`, then
//! the cache that `scripts/test.sh` installs them into (`~/.cache/bucketsync`), then `PATH`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bucketsync::driver::Transport;
use bucketsync::reqwest_transport::{HttpOptions, ReqwestTransport};
use bucketsync::sign::{SigV4, Signer};
use bucketsync::{Credentials, Method, Request, RequestId, RequestKind, Response, Store};

use crate::wall_clock;

/// The access key every test server accepts.
pub const ACCESS_KEY: &str = "bucketsync-test-key";
/// Its secret.
pub const SECRET_KEY: &str = "bucketsync-test-secret-0123456789";

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// SeaweedFS: a real distributed store; does not check signed payload hashes.
    SeaweedFs,
    /// s3s-fs: stricter; checks that bodies match their signed hash.
    S3sFs,
    /// moto's server: written to behave as AWS does, and reports each object's server-side
    /// encryption and storage class; takes any credentials (signatures are not checked).
    Moto,
}

impl ServerKind {
    /// Both servers, for suites that must pass on each.
    pub const ALL: [ServerKind; 2] = [ServerKind::SeaweedFs, ServerKind::S3sFs];
}

/// A running test server. Dropping it stops it.
pub struct TestServer {
    /// Which server this is.
    pub kind: ServerKind,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    client: ReqwestTransport,
    /// The one identity it accepts.
    access: (String, String),
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

/// Why one attempt to start a server failed, with its log.
enum Start {
    /// It could not bind a port that was free when chosen.
    PortTaken(String),
    /// It exited or did not answer in time for another reason.
    NotReady(String),
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Whether `body` is an S3 ListBuckets answer.
fn lists_buckets(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).contains("ListAllMyBucketsResult")
}

fn find_binary(env: &str, cached: &str, name: &str) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cached = PathBuf::from(home).join(".cache/bucketsync").join(cached);
    if cached.exists() {
        return cached;
    }
    let on_path = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.exists());
    on_path.unwrap_or_else(|| {
        panic!("{name} not found: run `bash scripts/test.sh` (it installs it), or set {env}")
    })
}

impl TestServer {
    /// Starts a server and waits until a signed ListBuckets answers 200.
    ///
    /// The ports are free when chosen but released before the server binds them, so another
    /// process (any outgoing connection takes an ephemeral port) can take one in between. A
    /// server that fails to bind is stopped and started again on new ports, up to three times.
    pub async fn start(kind: ServerKind) -> TestServer {
        Self::start_as(kind, ACCESS_KEY, SECRET_KEY).await
    }

    /// [`TestServer::start`], the server accepting only the key `access_key` with `secret`:
    /// another service than the usual test server's, for tests of where keys go.
    pub async fn start_as(kind: ServerKind, access_key: &str, secret: &str) -> TestServer {
        let mut attempt = 1;
        loop {
            match Self::start_once(kind, access_key, secret).await {
                Ok(server) => return server,
                Err(Start::PortTaken(log)) if attempt < 3 => {
                    eprintln!("{kind:?} lost a port race (attempt {attempt}); retrying:\n{log}");
                    attempt += 1;
                }
                Err(Start::PortTaken(log)) | Err(Start::NotReady(log)) => {
                    panic!("{kind:?} did not become ready (attempt {attempt}); its log:\n{log}")
                }
            }
        }
    }

    async fn start_once(
        kind: ServerKind,
        access_key: &str,
        secret: &str,
    ) -> Result<TestServer, Start> {
        let dir = tempfile::Builder::new()
            .prefix("bucketsync-test-")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let ports = free_ports(11);
        let s3_port = ports[0];
        let mut command = match kind {
            ServerKind::SeaweedFs => {
                let identities = dir.path().join("identities.json");
                std::fs::write(
                    &identities,
                    format!(
                        r#"{{"identities":[{{"name":"tester","credentials":[{{"accessKey":"{access_key}","secretKey":"{secret}"}}],"actions":["Admin","Read","List","Tagging","Write"]}}]}}"#
                    ),
                )
                .unwrap();
                let mut c = Command::new(find_binary("BUCKETSYNC_WEED", "venv/bin/weed", "weed"));
                let d = data.display();
                c.arg("mini")
                    .arg(format!("-dir={d}"))
                    .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
                    .arg(format!("-s3.port={s3_port}"))
                    .arg(format!("-s3.config={}", identities.display()))
                    .arg(format!("-master.port={}", ports[1]))
                    .arg(format!("-master.port.grpc={}", ports[2]))
                    .arg(format!("-volume.port={}", ports[3]))
                    .arg(format!("-volume.port.grpc={}", ports[4]))
                    .arg(format!("-filer.port={}", ports[5]))
                    .arg(format!("-filer.port.grpc={}", ports[6]))
                    .arg(format!("-admin.port={}", ports[7]))
                    .arg(format!("-admin.port.grpc={}", ports[8]))
                    // Otherwise the S3 port + 10000, which may be taken or above 65535.
                    .arg(format!("-s3.port.grpc={}", ports[9]))
                    .args([
                        "-admin.ui=false",
                        "-webdav=false",
                        "-master.telemetry=false",
                    ])
                    // Otherwise weed allows as many volumes as the free disk holds at 128 MB
                    // each, and each bucket takes one: on a nearly full disk the later buckets
                    // refuse every write (HTTP 500). Volumes are sparse files, so this reserves
                    // nothing.
                    .arg("-volume.max=1000")
                    .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
                    .arg(format!("-s3.localSocket={d}/s3.sock"))
                    .arg(format!("-filer.localSocket={d}/filer.sock"))
                    // Otherwise weed adds these as an extra admin identity.
                    .env_remove("AWS_ACCESS_KEY_ID")
                    .env_remove("AWS_SECRET_ACCESS_KEY");
                c
            }
            ServerKind::S3sFs => {
                let mut c = Command::new(find_binary(
                    "BUCKETSYNC_S3S_FS",
                    "s3s-fs/bin/s3s-fs",
                    "s3s-fs",
                ));
                c.args(["--host", "127.0.0.1", "--port", &s3_port.to_string()])
                    .args(["--access-key", access_key, "--secret-key", secret])
                    .arg(&data);
                c
            }
            ServerKind::Moto => {
                let mut c = Command::new(find_binary(
                    "BUCKETSYNC_MOTO",
                    "venv/bin/moto_server",
                    "moto_server",
                ));
                c.args(["-H", "127.0.0.1", "-p", &s3_port.to_string()]);
                c
            }
        };
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {kind:?}: {e}"));
        register_pid(child.id());
        let mut server = TestServer {
            kind,
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            client: http(),
            access: (access_key.to_owned(), secret.to_owned()),
            child: Some(child),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // The log and the exit are checked before asking: a port taken by another process
            // may accept the connection and never answer.
            let text =
                std::fs::read_to_string(server._dir.path().join("server.log")).unwrap_or_default();
            // weed checks its ports before binding ("is not available"); a bind that loses the
            // race afterwards says "address already in use" (s3s-fs: "Address already in use").
            let lower = text.to_ascii_lowercase();
            if lower.contains("address already in use") || lower.contains("is not available") {
                server.stop();
                return Err(Start::PortTaken(text));
            }
            let exited = server
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited || Instant::now() > deadline {
                let why = if exited {
                    "exited"
                } else {
                    "timed out after 60 s"
                };
                server.stop();
                return Err(Start::NotReady(format!("({why})\n{text}")));
            }
            // A 200 alone is not enough: while weed is still starting, its S3 port may belong to
            // another server (another test's filer answers `GET /` with 200). Only a
            // ListBuckets answer is ours.
            let probe = server.signed(Method::Get, format!("{}/", server.endpoint), Vec::new());
            let ready = tokio::time::timeout(Duration::from_secs(2), probe)
                .await
                .is_ok_and(|r| r.is_ok_and(|r| r.status == 200 && lists_buckets(&r.body)));
            if ready {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The credentials the test servers accept (those started with [`TestServer::start`]).
    pub fn credentials() -> Credentials {
        Credentials::new(ACCESS_KEY, SECRET_KEY, None).unwrap()
    }

    /// The credentials this server accepts.
    pub fn own_credentials(&self) -> Credentials {
        Credentials::new(&self.access.0, &self.access.1, None).unwrap()
    }

    /// `s3://bucket/prefix?endpoint=…&path_style=true`
    pub fn store_url(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "s3://{bucket}/{prefix}?endpoint={}&path_style=true&region=us-east-1",
            self.endpoint
        )
    }

    /// The parsed store for `bucket` and `prefix`.
    pub fn store(&self, bucket: &str, prefix: &str) -> Store {
        Store::parse(&self.store_url(bucket, prefix)).unwrap()
    }

    /// Creates `bucket` (an existing one is fine) and waits until it takes a write.
    ///
    /// weed answers ListBuckets (its filer) before its volume server has joined the master, and
    /// a bucket's first write makes the master grow volumes for it: on a loaded machine, writes
    /// fail with HTTP 500 for a while after both. A probe object is written until it is
    /// accepted (at most 60 s), then deleted, so that the test's own first write is not that
    /// one.
    pub async fn create_bucket(&self, bucket: &str) {
        self.create_bucket_only(bucket).await;
        let probe = format!("{}/{bucket}/bucketsync-test-write-probe", self.endpoint);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self
                .signed(Method::Put, probe.clone(), b"probe".to_vec())
                .await;
            match answer {
                Ok(r) if r.status == 200 => break,
                Ok(r) if Instant::now() > deadline => panic!(
                    "{:?} refused writes to {bucket} for 60 s: {} {}\n{}",
                    self.kind,
                    r.status,
                    String::from_utf8_lossy(&r.body),
                    self.log_tail()
                ),
                Err(e) if Instant::now() > deadline => panic!(
                    "{:?} refused writes to {bucket} for 60 s: {e}\n{}",
                    self.kind,
                    self.log_tail()
                ),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let deleted = self
            .signed(Method::Delete, probe, Vec::new())
            .await
            .unwrap();
        assert_eq!(deleted.status, 204, "delete the write probe in {bucket}");
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self._dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(60);
        format!(
            "{:?} log, last lines:\n{}",
            self.kind,
            lines[from..].join("\n")
        )
    }

    async fn create_bucket_only(&self, bucket: &str) {
        let response = self
            .signed(
                Method::Put,
                format!("{}/{bucket}", self.endpoint),
                Vec::new(),
            )
            .await
            .unwrap();
        assert!(
            response.status == 200 || response.status == 409,
            "create bucket {bucket}: {} {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }

    /// Sends a request signed with the test credentials.
    pub async fn signed(
        &self,
        method: Method,
        url: String,
        body: Vec<u8>,
    ) -> bucketsync::Result<Response> {
        let mut request = Request {
            id: RequestId(0),
            kind: RequestKind::List,
            method,
            url,
            headers: Vec::new(),
            body: body.into(),
        };
        SigV4::new(self.own_credentials(), "us-east-1").sign(&mut request, wall_clock())?;
        self.client.send(request).await
    }

    /// Every key under `prefix` in `store`, following continuation tokens.
    pub async fn list_all(&self, store: &Store, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let response = self
                .signed(
                    Method::Get,
                    store.list_url(prefix, token.as_deref()),
                    Vec::new(),
                )
                .await
                .unwrap();
            assert_eq!(
                response.status,
                200,
                "{}",
                String::from_utf8_lossy(&response.body)
            );
            let page = bucketsync::s3::parse_list(&response.body).unwrap();
            keys.extend(page.objects.into_iter().map(|(k, _)| k));
            match page.next_token {
                Some(t) => token = Some(t),
                None => return keys,
            }
        }
    }

    /// Stops the server now (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        unregister_pid(child.id());
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Notes a server's PID in `$BUCKETSYNC_PID_DIR` (set by `scripts/test.sh`), so that a run
/// killed before its servers stopped cleans up exactly its own servers, by PID.
fn register_pid(pid: u32) {
    if let Some(dir) = std::env::var_os("BUCKETSYNC_PID_DIR") {
        let _ = std::fs::write(std::path::Path::new(&dir).join(pid.to_string()), b"");
    }
}

fn unregister_pid(pid: u32) {
    if let Some(dir) = std::env::var_os("BUCKETSYNC_PID_DIR") {
        let _ = std::fs::remove_file(std::path::Path::new(&dir).join(pid.to_string()));
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A failing test shows what the server said (its data directory goes with it).
        if std::thread::panicking() && self.child.is_some() {
            eprintln!("{}", self.log_tail());
        }
        self.stop();
    }
}

/// A plain reqwest transport with default options.
pub fn http() -> ReqwestTransport {
    ReqwestTransport::new(HttpOptions::default()).expect("HTTP client")
}

/// A tap in front of a server: a loopback port whose connections are passed through to the
/// server byte for byte, keeping every byte the clients sent (request lines, headers, bodies),
/// so that a test can tell exactly what reached that server, whoever sent it. Stopped when
/// dropped.
pub struct Tap {
    /// `http://127.0.0.1:PORT` of the tap.
    pub endpoint: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    port: u16,
}

impl Tap {
    /// A tap in front of `upstream` (`http://127.0.0.1:PORT`); with `log`, what the clients
    /// send is also appended to that file as it passes.
    pub fn start(upstream: &str, log: Option<PathBuf>) -> Tap {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// endpoint")
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let log = log.map(|path| {
            Arc::new(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("the tap's log file"),
            ))
        });
        let (accepted_seen, accepted_stop) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepted_stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut from_client, mut to_server) = (client.try_clone().unwrap(), server);
                let (mut from_server, mut to_client) = (to_server.try_clone().unwrap(), client);
                let (seen, log) = (accepted_seen.clone(), log.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0; 64 << 10];
                    while let Ok(n @ 1..) = from_client.read(&mut buf) {
                        seen.lock().unwrap().extend_from_slice(&buf[..n]);
                        if let Some(log) = &log {
                            let _ = log.lock().unwrap().write_all(&buf[..n]);
                        }
                        if to_server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_server, &mut to_client);
                    let _ = to_client.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Tap {
            endpoint: format!("http://127.0.0.1:{port}"),
            seen,
            stop,
            port,
        }
    }

    /// Everything the clients sent through the tap so far.
    pub fn seen(&self) -> Vec<u8> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests passed (HTTP/1.1 request lines seen; the bodies are sealed, so none
    /// holds one by chance).
    pub fn requests(&self) -> usize {
        let seen = self.seen();
        let end = b" HTTP/1.1\r\n";
        seen.windows(end.len()).filter(|w| w == end).count()
    }

    /// Whether `needle` (a key id) passed the tap in any request.
    pub fn saw(&self, needle: &str) -> bool {
        let seen = self.seen();
        seen.windows(needle.len()).any(|w| w == needle.as_bytes())
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accepting thread, which then ends.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}
