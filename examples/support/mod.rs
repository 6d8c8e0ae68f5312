//! What the benchmarks that run whole tools side by side share (`bench_tree`,
//! `bench_bisync`): a loopback proxy that counts each tool's requests, running a tool under GNU
//! time, copying and comparing trees, and the `bucketsync` command itself.
//!
//! Each benchmark uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bucketsync::Method;
use bucketsync_suite::servers::TestServer;

// ---------------------------------------------------------------------------------------------
// The counting proxy.

/// A loopback proxy in front of one server that counts the requests passing through it.
pub struct Counter {
    port: u16,
    requests: Arc<AtomicU64>,
    methods: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Counter {
    pub fn start(upstream: &str) -> Counter {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port for the proxy");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicU64::new(0));
        let methods = Arc::new(Mutex::new(BTreeMap::new()));
        let (counted, by_method) = (requests.clone(), methods.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                let (counted, by_method) = (counted.clone(), by_method.clone());
                std::thread::spawn(move || {
                    if let Ok(server) = TcpStream::connect(&upstream) {
                        relay(client, server, &counted, &by_method);
                    }
                });
            }
        });
        Counter {
            port,
            requests,
            methods,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn take(&self) -> u64 {
        self.requests.swap(0, Ordering::SeqCst)
    }

    /// The requests since the last call, by method (`GET 12, PUT 3`).
    pub fn take_methods(&self) -> String {
        let methods = std::mem::take(&mut *self.methods.lock().unwrap());
        methods
            .iter()
            .map(|(m, n)| format!("{m} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Passes one connection through: answers are copied back as they come, requests are read
/// one by one (headers, then the body as their framing says) and counted.
pub fn relay(
    client: TcpStream,
    server: TcpStream,
    counted: &AtomicU64,
    by_method: &Mutex<BTreeMap<String, u64>>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(mut back_to), Ok(mut from_server)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let answers = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut back_to);
        let _ = back_to.shutdown(Shutdown::Write);
    });
    let mut reader = BufReader::new(client);
    let mut to_server = server;
    let _ = forward_requests(&mut reader, &mut to_server, counted, by_method);
    let _ = to_server.shutdown(Shutdown::Write);
    let _ = answers.join();
}

pub fn forward_requests(
    reader: &mut BufReader<TcpStream>,
    to: &mut TcpStream,
    counted: &AtomicU64,
    by_method: &Mutex<BTreeMap<String, u64>>,
) -> std::io::Result<()> {
    loop {
        let mut head = Vec::new();
        let mut length = 0u64;
        let mut chunked = false;
        loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
            if let Some(v) = text.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if let Some(v) = text.strip_prefix("transfer-encoding:") {
                chunked = v.contains("chunked");
            }
            head.extend_from_slice(&line);
            if line == b"\r\n" || line == b"\n" {
                // Blank lines between requests are not requests.
                if head.len() == line.len() {
                    head.clear();
                    continue;
                }
                break;
            }
        }
        counted.fetch_add(1, Ordering::SeqCst);
        let method = String::from_utf8_lossy(&head)
            .split(' ')
            .next()
            .unwrap_or("")
            .to_owned();
        *by_method.lock().unwrap().entry(method).or_default() += 1;
        to.write_all(&head)?;
        if chunked {
            loop {
                let mut size_line = Vec::new();
                if reader.read_until(b'\n', &mut size_line)? == 0 {
                    return Ok(());
                }
                to.write_all(&size_line)?;
                let text = String::from_utf8_lossy(&size_line);
                let hex = text.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(hex, 16).unwrap_or(0);
                if size == 0 {
                    // Trailers, up to the blank line.
                    loop {
                        let mut trailer = Vec::new();
                        if reader.read_until(b'\n', &mut trailer)? == 0 {
                            return Ok(());
                        }
                        to.write_all(&trailer)?;
                        if trailer == b"\r\n" || trailer == b"\n" {
                            break;
                        }
                    }
                    break;
                }
                // The chunk and its CRLF.
                std::io::copy(&mut reader.by_ref().take(size + 2), to)?;
            }
        } else if length > 0 {
            std::io::copy(&mut reader.by_ref().take(length), to)?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running a tool.

/// What one run of a tool cost.
#[derive(Clone, Copy, Default)]
pub struct Cost {
    pub seconds: f64,
    pub requests: u64,
    /// Peak resident memory in KiB, when GNU time could tell.
    pub rss_kib: Option<u64>,
}

impl Cost {
    /// Two runs one after the other: times and requests add up, memory is the larger peak.
    pub fn then(self, other: Cost) -> Cost {
        Cost {
            seconds: self.seconds + other.seconds,
            requests: self.requests + other.requests,
            rss_kib: match (self.rss_kib, other.rss_kib) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            },
        }
    }
}

pub fn gnu_time() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/time");
    path.exists().then_some(path)
}

/// Runs `program args` with `env`, through GNU time when present, counting its requests;
/// its stdout, and fails the benchmark with its output when it fails.
pub fn run(
    what: &str,
    program: &Path,
    args: &[&str],
    env: &[(&str, String)],
    stdin: Option<&str>,
    counter: &Counter,
) -> (Cost, String) {
    let scratch = tempfile::NamedTempFile::new().unwrap();
    let mut command = match gnu_time() {
        Some(time) => {
            let mut c = Command::new(time);
            c.arg("-f")
                .arg("%M")
                .arg("-o")
                .arg(scratch.path())
                .arg(program);
            c
        }
        None => Command::new(program),
    };
    command.args(args);
    // Every tool here talks plain HTTP to loopback: no proxy, and no CA bundle (rclone's AWS
    // SDK refuses to start when `AWS_CA_BUNDLE` is set, as it is on some machines).
    for var in [
        "AWS_CA_BUNDLE",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        command.env_remove(var);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    counter.take();
    counter.take_methods();
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {}: {e}", program.display()));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let requests = counter.take();
    println!(
        "  {what}: {seconds:.1} s, {requests} requests ({})",
        counter.take_methods()
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        panic!(
            "{what} failed ({:?}):\nstdout: {stdout}\nstderr: {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let rss_kib = std::fs::read_to_string(scratch.path())
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()));
    (
        Cost {
            seconds,
            requests,
            rss_kib,
        },
        stdout,
    )
}

/// The value of `"field":` in a one-object JSON text, as written (strings without quotes).
pub fn json_field(text: &str, field: &str) -> Option<String> {
    let at = text.find(&format!("\"{field}\":"))? + field.len() + 3;
    let rest = text[at..].trim_start();
    if let Some(string) = rest.strip_prefix('"') {
        return string.split('"').next().map(str::to_owned);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_owned())
}

/// Complains when a bucketsync `--json` report lists errors.
pub fn check_errors(what: &str, json: &str) {
    if let Some(at) = json.find("\"errors\":") {
        let rest = json[at + 9..].trim_start();
        if !rest.starts_with("[]") {
            let shown: String = rest.chars().take(600).collect();
            println!("note: {what} reported errors: {shown}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tree.

#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    File { mode: u32, hash: String },
    Link(PathBuf),
    Dir { mode: u32 },
}

/// Every entry under `root` (not `root` itself), by relative path.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    pub fn visit(dir: &Path, rel: &str, out: &mut BTreeMap<String, Node>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap_or_default();
                out.insert(rel, Node::Link(target));
            } else if meta.is_dir() {
                out.insert(rel.clone(), Node::Dir { mode });
                visit(&path, &rel, out);
            } else if meta.is_file() {
                let hash = std::fs::read(&path)
                    .map(|b| blake3::hash(&b).to_hex().to_string())
                    .unwrap_or_else(|e| format!("unreadable: {e}"));
                out.insert(rel, Node::File { mode, hash });
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(root, "", &mut out);
    out
}

/// The differences between two snapshots, each as one line.
pub fn differences(want: &BTreeMap<String, Node>, got: &BTreeMap<String, Node>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, node) in want {
        match got.get(path) {
            None => out.push(format!("missing: {path} ({node:?})")),
            Some(other) if other != node => {
                out.push(format!("differs: {path}: want {node:?}, got {other:?}"))
            }
            _ => {}
        }
    }
    for (path, node) in got {
        if !want.contains_key(path) {
            out.push(format!("extra: {path} ({node:?})"));
        }
    }
    out
}

#[derive(Default)]
pub struct Copied {
    pub files: u64,
    pub dirs: u64,
    pub links: u64,
    pub bytes: u64,
    pub skipped: u64,
}

/// Copies `from` into `to` (links as links), skipping what cannot be read, special files and
/// the names in `leave_out` directly under `from`.
pub fn copy_tree(from: &Path, to: &Path, leave_out: &[&str], tally: &mut Copied) {
    let Ok(entries) = std::fs::read_dir(from) else {
        tally.skipped += 1;
        return;
    };
    if std::fs::create_dir_all(to).is_err() {
        tally.skipped += 1;
        return;
    }
    for entry in entries.flatten() {
        let name = entry.file_name();
        if leave_out.iter().any(|n| name == *n) {
            continue;
        }
        let source = entry.path();
        let target = to.join(&name);
        let Ok(meta) = std::fs::symlink_metadata(&source) else {
            tally.skipped += 1;
            continue;
        };
        if meta.file_type().is_symlink() {
            match std::fs::read_link(&source).and_then(|t| std::os::unix::fs::symlink(t, &target)) {
                Ok(()) => tally.links += 1,
                Err(_) => tally.skipped += 1,
            }
        } else if meta.is_dir() {
            copy_tree(&source, &target, &[], tally);
            tally.dirs += 1;
            let _ = std::fs::set_permissions(&target, meta.permissions());
        } else if meta.is_file() {
            match std::fs::copy(&source, &target) {
                Ok(n) => {
                    tally.files += 1;
                    tally.bytes += n;
                }
                Err(_) => {
                    tally.skipped += 1;
                    let _ = std::fs::remove_file(&target);
                }
            }
        } else {
            tally.skipped += 1;
        }
    }
}

/// A small deterministic generator (xorshift), for choosing files and making new contents.
pub struct Xorshift(pub u64);

impl Xorshift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// ---------------------------------------------------------------------------------------------
// The bucket.

/// The number and total size of the objects in `bucket`, listed straight from the server.
pub async fn bucket_usage(server: &TestServer, bucket: &str) -> (u64, u64) {
    let store = server.store(bucket, "");
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut token: Option<String> = None;
    loop {
        let response = server
            .signed(
                Method::Get,
                store.list_url("", token.as_deref()),
                Vec::new(),
            )
            .await
            .expect("a listing");
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        let page = bucketsync::s3::parse_list(&response.body).expect("a listing page");
        count += page.objects.len() as u64;
        bytes += page.sizes.iter().map(|s| s.unwrap_or(0)).sum::<u64>();
        match page.next_token {
            Some(t) => token = Some(t),
            None => return (count, bytes),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The command under test.
/// The `bucketsync` command: `BUCKETSYNC_CLI`, or built now beside this example.
pub fn bucketsync_cli() -> PathBuf {
    if let Some(path) = std::env::var_os("BUCKETSYNC_CLI") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("this program's path");
    // target/<profile>/examples/<this benchmark>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("an example under target/<profile>/examples")
        .to_path_buf();
    let release = profile_dir.ends_with("release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "-p", "bucketsync-cli"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if release {
        build.arg("--release");
    }
    println!(
        "building the command: cargo build {}-p bucketsync-cli (set BUCKETSYNC_CLI to skip)",
        if release { "--release " } else { "" }
    );
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "building bucketsync-cli failed");
    profile_dir.join("bucketsync")
}

// ---------------------------------------------------------------------------------------------
// The table.

pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

pub fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1u64 << 20) as f64)
}

pub fn rss(cost: &Cost) -> (String, f64) {
    match cost.rss_kib {
        Some(k) => (format!("{:.1} MiB", k as f64 / 1024.0), k as f64),
        None => ("n/a".into(), 0.0),
    }
}

/// The environment of one command-line device of a bench: its store, its key file and state
/// under `work` (named after it), its name, and the test server's keys.
pub fn device_env(store: &str, work: &Path, name: &str) -> Vec<(&'static str, String)> {
    use bucketsync_suite::servers::{ACCESS_KEY, SECRET_KEY};
    vec![
        ("BUCKETSYNC_STORE", store.to_owned()),
        (
            "BUCKETSYNC_KEY_FILE",
            work.join(format!("{name}.key")).display().to_string(),
        ),
        (
            "BUCKETSYNC_STATE",
            work.join(format!("{name}.state")).display().to_string(),
        ),
        ("BUCKETSYNC_DEVICE", name.to_owned()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
    ]
}
