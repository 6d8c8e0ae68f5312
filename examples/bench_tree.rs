//! A real folder tree backed up, edited, backed up again and restored on a fresh device, with
//! the release `bucketsync` command and with restic, each against its own SeaweedFS server, in
//! one run; printed as a table of ratios (issue 39). Nothing here asserts anything about speed:
//! the figures are from one run on whatever machine runs it.
//!
//! `cargo run --release --example bench_tree` (optionally `-- --tree DIR`).
//!
//! - SeaweedFS comes from `BUCKETSYNC_WEED` (or what `bash scripts/test.sh` installed).
//! - The command is `BUCKETSYNC_CLI` when set; otherwise this runs
//!   `cargo build --release -p bucketsync-cli` itself and takes `target/release/bucketsync`.
//! - restic is taken from `PATH` (`apt-get install restic`); without it its column says so.
//! - Peak RSS needs GNU time at `/usr/bin/time` (`apt-get install time`); without it, "n/a".
//! - `BENCH_TREE_KEEP=1` leaves the work folder in place (see `main`), for runs one after
//!   another.
//!
//! The default tree is a copy of this machine's Python standard library (without
//! `site-packages`) and `/usr/include`, made in a temporary folder so the edits touch nothing
//! of the system. `--tree DIR` copies DIR instead. Links are copied as links; unreadable
//! entries and special files are skipped.
//!
//! Each tool works on its own copy of the tree and its own server, and the same edit is made
//! to each copy between its two backups.
//!
//! The first backup is timed [`FIRST_BACKUPS`] times for each tool, each into a new, empty
//! vault or repository on the same server, and its row gives the median: on this project's
//! 2-core machines the same backup varied by up to a fifth from one run to the next. Its
//! requests, bytes stored and peak RSS are the first one's.
//!
//! Requests are counted by a small HTTP proxy on loopback that this program puts between each
//! tool and its server: it reads each request's framing (headers, then a `Content-Length` or
//! chunked body) on its way to the server and passes the answers back untouched. Bytes stored
//! are the sizes a ListObjectsV2 of the whole bucket reports.

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
use bucketsync_suite::servers::{ServerKind, TestServer, ACCESS_KEY, SECRET_KEY};

const BUCKET: &str = "bench";
const RESTIC_PASSWORD: &str = "bench-tree-password";
const CHANGED: usize = 50;
const ADDED: usize = 10;
const DELETED: usize = 10;
/// How many times the first backup is timed (see the module's docs).
const FIRST_BACKUPS: usize = 3;

/// The median time of a first backup that took `first` seconds and of the same backup made
/// again [`FIRST_BACKUPS`] - 1 times, `again(n)` timing the `n`th (from 1).
fn first_backup_median(first: f64, again: impl FnMut(usize) -> f64) -> f64 {
    let mut seconds: Vec<f64> = std::iter::once(first)
        .chain((1..FIRST_BACKUPS).map(again))
        .collect();
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// The counting proxy.

/// A loopback proxy in front of one server that counts the requests passing through it.
struct Counter {
    port: u16,
    requests: Arc<AtomicU64>,
    methods: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Counter {
    fn start(upstream: &str) -> Counter {
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

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn take(&self) -> u64 {
        self.requests.swap(0, Ordering::SeqCst)
    }

    /// The requests since the last call, by method (`GET 12, PUT 3`).
    fn take_methods(&self) -> String {
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
fn relay(
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

fn forward_requests(
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
struct Cost {
    seconds: f64,
    requests: u64,
    /// Peak resident memory in KiB, when GNU time could tell.
    rss_kib: Option<u64>,
}

impl Cost {
    /// Two runs one after the other: times and requests add up, memory is the larger peak.
    fn then(self, other: Cost) -> Cost {
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

fn gnu_time() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/time");
    path.exists().then_some(path)
}

/// Runs `program args` with `env`, through GNU time when present, counting its requests;
/// its stdout, and fails the benchmark with its output when it fails.
fn run(
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
    for var in [
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
fn json_field(text: &str, field: &str) -> Option<String> {
    let at = text.find(&format!("\"{field}\":"))? + field.len() + 3;
    let rest = text[at..].trim_start();
    if let Some(string) = rest.strip_prefix('"') {
        return string.split('"').next().map(str::to_owned);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_owned())
}

/// Complains when a bucketsync `--json` report lists errors.
fn check_errors(what: &str, json: &str) {
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
enum Node {
    File { mode: u32, hash: String },
    Link(PathBuf),
    Dir { mode: u32 },
}

/// Every entry under `root` (not `root` itself), by relative path.
fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    fn visit(dir: &Path, rel: &str, out: &mut BTreeMap<String, Node>) {
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
fn differences(want: &BTreeMap<String, Node>, got: &BTreeMap<String, Node>) -> Vec<String> {
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
struct Copied {
    files: u64,
    dirs: u64,
    links: u64,
    bytes: u64,
    skipped: u64,
}

/// Copies `from` into `to` (links as links), skipping what cannot be read, special files and
/// the names in `leave_out` directly under `from`.
fn copy_tree(from: &Path, to: &Path, leave_out: &[&str], tally: &mut Copied) {
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
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The edit: `CHANGED` files get bytes flipped in place, `ADDED` new files appear beside
/// others, `DELETED` files go; chosen from the sorted list of regular files by a fixed seed.
fn edit_tree(root: &Path) -> String {
    let snapshot = snapshot(root);
    let mut files: Vec<&String> = snapshot
        .iter()
        .filter(|(_, n)| matches!(n, Node::File { .. }))
        .map(|(p, _)| p)
        .collect();
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    // A partial Fisher-Yates shuffle: the first CHANGED + DELETED are the chosen ones.
    let wanted = (CHANGED + DELETED).min(files.len());
    for i in 0..wanted {
        let j = i + (rng.next() % (files.len() - i) as u64) as usize;
        files.swap(i, j);
    }
    let (changed, rest) = files[..wanted].split_at(CHANGED.min(wanted));
    for path in changed {
        let path = root.join(path);
        let mut bytes = std::fs::read(&path).unwrap_or_default();
        if bytes.is_empty() {
            bytes.extend_from_slice(b"edited\n");
        } else {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x5a;
            bytes[0] ^= 0x01;
        }
        std::fs::write(&path, bytes).expect("an edit");
    }
    for path in rest {
        std::fs::remove_file(root.join(path)).expect("a deletion");
    }
    for (n, near) in changed.iter().take(ADDED).enumerate() {
        let parent = root.join(near).parent().unwrap().to_path_buf();
        let len = 2_000 + (rng.next() % 60_000) as usize;
        let text: String = (0..len)
            .map(|_| (b'a' + (rng.next() % 26) as u8) as char)
            .collect();
        std::fs::write(parent.join(format!("bench-tree-new-{n}.txt")), text).expect("a new file");
    }
    format!(
        "{} files changed, {ADDED} added, {} deleted",
        changed.len(),
        rest.len()
    )
}

// ---------------------------------------------------------------------------------------------
// The bucket.

/// The number and total size of the objects in `bucket`, listed straight from the server.
async fn bucket_usage(server: &TestServer, bucket: &str) -> (u64, u64) {
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
// The two tools.

/// What one tool's runs cost, row by row.
#[derive(Default)]
struct Results {
    first: Cost,
    first_stored: u64,
    first_objects: u64,
    edit: Cost,
    edit_added: i64,
    restore: Cost,
    identical: Option<bool>,
    diffs: Vec<String>,
}

/// The `bucketsync` command: `BUCKETSYNC_CLI`, or built now beside this example.
fn bucketsync_cli() -> PathBuf {
    if let Some(path) = std::env::var_os("BUCKETSYNC_CLI") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("this program's path");
    // target/<profile>/examples/bench_tree
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

fn bucketsync_rows(
    runtime: &tokio::runtime::Runtime,
    cli: &Path,
    tree: &Path,
    work: &Path,
    edit: &mut dyn FnMut(),
) -> (Results, Vec<(String, Cost)>) {
    let server = runtime.block_on(TestServer::start(ServerKind::SeaweedFs));
    runtime.block_on(server.create_bucket(BUCKET));
    runtime.block_on(server.create_bucket("folder"));
    runtime.block_on(server.create_bucket("again"));
    let counter = Counter::start(&server.endpoint);
    let store = |bucket: &str, prefix: &str| {
        format!(
            "s3://{bucket}/{prefix}?endpoint={}&path_style=true&region=us-east-1",
            counter.endpoint()
        )
    };
    let device = |store: &str, name: &str| -> Vec<(&'static str, String)> {
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
    };
    let backups = store(BUCKET, "vault");
    let a = device(&backups, "a");
    let b = device(&backups, "b");
    let tree_arg = tree.to_str().unwrap();
    let mut r = Results::default();

    let (_, init) = run(
        "bucketsync init",
        cli,
        &["--json", "init"],
        &a,
        None,
        &counter,
    );
    let code = json_field(&init, "recovery_code").expect("init prints the recovery code");
    let backup_args = [
        "--json",
        "backup",
        tree_arg,
        "--as",
        "tree",
        "--include-hidden",
        "--delete",
    ];
    let (cost, json) = run(
        "bucketsync backup (first)",
        cli,
        &backup_args,
        &a,
        None,
        &counter,
    );
    check_errors("bucketsync backup (first)", &json);
    r.first = cost;
    let (objects, bytes) = runtime.block_on(bucket_usage(&server, BUCKET));
    r.first_stored = bytes;
    r.first_objects = objects;
    println!(
        "bucketsync first backup: {} files stored, {} packs, {} objects in the bucket; the \
         command's own request count: {}",
        json_field(&json, "files_stored").unwrap_or_default(),
        json_field(&json, "packs").unwrap_or_default(),
        objects,
        json_field(&json, "requests").unwrap_or_default(),
    );
    // The same first backup again, each into a new vault of its own bucket.
    r.first.seconds = first_backup_median(r.first.seconds, |n| {
        let again = device(
            &store("again", &format!("vault-{n}")),
            &format!("again-{n}"),
        );
        run(
            "bucketsync init (again)",
            cli,
            &["--json", "init"],
            &again,
            None,
            &counter,
        );
        let what = format!("bucketsync backup (first, again {n})");
        let (cost, json) = run(&what, cli, &backup_args, &again, None, &counter);
        check_errors(&what, &json);
        cost.seconds
    });

    edit();
    let (cost, json) = run(
        "bucketsync backup (edit)",
        cli,
        &backup_args,
        &a,
        None,
        &counter,
    );
    check_errors("bucketsync backup (edit)", &json);
    r.edit = cost;
    let (_, after) = runtime.block_on(bucket_usage(&server, BUCKET));
    r.edit_added = after as i64 - bytes as i64;
    println!(
        "bucketsync edit backup: {} stored ({} new, {} changed), {} deleted; the command's own \
         request count: {}",
        json_field(&json, "files_stored").unwrap_or_default(),
        json_field(&json, "files_new").unwrap_or_default(),
        json_field(&json, "files_changed").unwrap_or_default(),
        json_field(&json, "deleted").unwrap_or_default(),
        json_field(&json, "requests").unwrap_or_default(),
    );

    let target = work.join("restored");
    let (join, _) = run(
        "bucketsync join",
        cli,
        &["--json", "join"],
        &b,
        Some(&format!("{code}\n")),
        &counter,
    );
    let (restore, json) = run(
        "bucketsync restore",
        cli,
        &[
            "--json",
            "restore",
            "tree",
            "--to",
            target.to_str().unwrap(),
        ],
        &b,
        None,
        &counter,
    );
    check_errors("bucketsync restore", &json);
    println!(
        "bucketsync fresh device: join {:.1} s, {} requests; restore {:.1} s, {} requests, {} \
         files written",
        join.seconds,
        join.requests,
        restore.seconds,
        restore.requests,
        json_field(&json, "files_written").unwrap_or_default()
    );
    r.restore = join.then(restore);
    let diffs = differences(&snapshot(tree), &snapshot(&target));
    r.identical = Some(diffs.is_empty());
    r.diffs = diffs;

    // `folder`: the tree synced both ways into a new vault, then once more after one edit.
    let mut folder_rows = Vec::new();
    let has_folder = Command::new(cli)
        .args(["folder", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_folder {
        let copy = work.join("folder-copy");
        copy_tree(tree, &copy, &[], &mut Copied::default());
        let folders = store("folder", "vault");
        let f = device(&folders, "f");
        run(
            "bucketsync init (folder)",
            cli,
            &["--json", "init"],
            &f,
            None,
            &counter,
        );
        let copy_arg = copy.to_str().unwrap();
        let args = ["--json", "folder", copy_arg, "--as", "tree"];
        let (first, json) = run("bucketsync folder (first)", cli, &args, &f, None, &counter);
        check_errors("bucketsync folder (first)", &json);
        folder_rows.push(("first sync of the tree, new vault".to_owned(), first));
        let one = snapshot(&copy)
            .into_iter()
            .find(|(p, n)| matches!(n, Node::File { .. }) && !p.contains(".bucketsync"))
            .map(|(p, _)| copy.join(p))
            .expect("a file in the tree");
        let mut bytes = std::fs::read(&one).unwrap();
        bytes.extend_from_slice(b"\none more line\n");
        std::fs::write(&one, bytes).unwrap();
        let (again, json) = run("bucketsync folder (edit)", cli, &args, &f, None, &counter);
        check_errors("bucketsync folder (edit)", &json);
        folder_rows.push(("then one file changed".to_owned(), again));
    }
    (r, folder_rows)
}

fn restic_rows(
    runtime: &tokio::runtime::Runtime,
    tree: &Path,
    work: &Path,
    edit: &mut dyn FnMut(),
) -> Results {
    let restic = PathBuf::from("restic");
    let server = runtime.block_on(TestServer::start(ServerKind::SeaweedFs));
    runtime.block_on(server.create_bucket(BUCKET));
    runtime.block_on(server.create_bucket("again"));
    let counter = Counter::start(&server.endpoint);
    let repo = format!("s3:{}/{BUCKET}/restic", counter.endpoint());
    let env: Vec<(&str, String)> = vec![
        ("RESTIC_REPOSITORY", repo),
        ("RESTIC_PASSWORD", RESTIC_PASSWORD.to_owned()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
    ];
    let cache = work.join("restic-cache");
    let cache_arg = format!("--cache-dir={}", cache.display());
    let tree_arg = tree.to_str().unwrap();
    let mut r = Results::default();

    run(
        "restic init",
        &restic,
        &["init", &cache_arg],
        &env,
        None,
        &counter,
    );
    let backup_args = ["backup", "--quiet", "--host", "bench", &cache_arg, tree_arg];
    let (cost, _) = run(
        "restic backup (first)",
        &restic,
        &backup_args,
        &env,
        None,
        &counter,
    );
    r.first = cost;
    let (objects, bytes) = runtime.block_on(bucket_usage(&server, BUCKET));
    r.first_stored = bytes;
    r.first_objects = objects;
    println!("restic first backup: {objects} objects in the bucket");
    // The same first backup again, each into a new repository of its own bucket, with its own
    // cache.
    r.first.seconds = first_backup_median(r.first.seconds, |n| {
        let mut again = env.clone();
        for (name, value) in &mut again {
            if *name == "RESTIC_REPOSITORY" {
                *value = format!("s3:{}/again/restic-{n}", counter.endpoint());
            }
        }
        let cache = format!(
            "--cache-dir={}",
            work.join(format!("restic-cache-again-{n}")).display()
        );
        run(
            "restic init (again)",
            &restic,
            &["init", &cache],
            &again,
            None,
            &counter,
        );
        let args = ["backup", "--quiet", "--host", "bench", &cache, tree_arg];
        let what = format!("restic backup (first, again {n})");
        let (cost, _) = run(&what, &restic, &args, &again, None, &counter);
        cost.seconds
    });

    edit();
    let (cost, _) = run(
        "restic backup (edit)",
        &restic,
        &backup_args,
        &env,
        None,
        &counter,
    );
    r.edit = cost;
    let (_, after) = runtime.block_on(bucket_usage(&server, BUCKET));
    r.edit_added = after as i64 - bytes as i64;

    let fresh_cache = format!("--cache-dir={}", work.join("restic-cache-2").display());
    let target = work.join("restic-restored");
    let (cost, _) = run(
        "restic restore",
        &restic,
        &[
            "restore",
            "latest",
            "--quiet",
            &fresh_cache,
            "--target",
            target.to_str().unwrap(),
        ],
        &env,
        None,
        &counter,
    );
    r.restore = cost;
    // restic restores the absolute path below the target.
    let inside = target.join(tree.strip_prefix("/").unwrap_or(tree));
    let diffs = differences(&snapshot(tree), &snapshot(&inside));
    r.identical = Some(diffs.is_empty());
    r.diffs = diffs;
    r
}

// ---------------------------------------------------------------------------------------------
// The table.

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1u64 << 20) as f64)
}

fn rss(cost: &Cost) -> (String, f64) {
    match cost.rss_kib {
        Some(k) => (format!("{:.1} MiB", k as f64 / 1024.0), k as f64),
        None => ("n/a".into(), 0.0),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .position(|a| a == "--tree")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);

    let cli = bucketsync_cli();
    assert!(
        cli.exists(),
        "no bucketsync command at {} (set BUCKETSYNC_CLI)",
        cli.display()
    );
    let restic_found = Command::new("restic")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());

    let mut work = tempfile::Builder::new()
        .prefix("bench-tree-")
        .tempdir()
        .unwrap();
    // BENCH_TREE_KEEP=1 leaves the work folder (about 1 GB) for the caller to remove: on ext4
    // without a journal, files made within minutes of a removal of thousands cost several
    // times more system time, so a run right after another would start slowed.
    if std::env::var_os("BENCH_TREE_KEEP").is_some_and(|v| v == "1") {
        work.disable_cleanup(true);
        println!("BENCH_TREE_KEEP=1: {} stays", work.path().display());
    }
    let pristine = work.path().join("pristine");
    let mut copied = Copied::default();
    let sources: Vec<(PathBuf, &str, Vec<&str>)> = match &given {
        Some(dir) => vec![(dir.clone(), "tree", vec![])],
        None => {
            let stdlib = Command::new("python3")
                .args([
                    "-c",
                    "import sysconfig;print(sysconfig.get_paths()['stdlib'])",
                ])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .filter(|s| !s.is_empty())
                .expect("python3 prints its standard library's path (or give --tree DIR)");
            vec![
                (
                    PathBuf::from(stdlib),
                    "python-stdlib",
                    vec!["site-packages"],
                ),
                (PathBuf::from("/usr/include"), "include", vec![]),
            ]
        }
    };
    let started = Instant::now();
    for (source, name, leave_out) in &sources {
        copy_tree(source, &pristine.join(name), leave_out, &mut copied);
    }
    println!(
        "tree: {} ({}): {} files, {} folders, {} links, {}; {} entries skipped; copied in {:.1} s",
        sources
            .iter()
            .map(|(s, _, l)| if l.is_empty() {
                s.display().to_string()
            } else {
                format!("{} without {}", s.display(), l.join(", "))
            })
            .collect::<Vec<_>>()
            .join(" + "),
        pristine.display(),
        copied.files,
        copied.dirs,
        copied.links,
        mib(copied.bytes as f64),
        copied.skipped,
        started.elapsed().as_secs_f64()
    );

    // Each tool works on its own copy of the tree, edited the same way between its backups.
    // Nothing is removed before the end (the work folder goes as a whole): on ext4, making
    // files soon after thousands were removed costs several times more system time (new
    // inodes are checked against those recently freed), and a tool that ran after removals
    // would pay for them. About 1 GB on the disk meanwhile.
    let mut edits = String::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let ours_tree = work.path().join("b").join("tree");
    copy_tree(&pristine, &ours_tree, &[], &mut Copied::default());
    let ours_work = work.path().join("b-work");
    std::fs::create_dir_all(&ours_work).unwrap();
    println!("running bucketsync ({})", cli.display());
    let (ours, folder_rows) = bucketsync_rows(&runtime, &cli, &ours_tree, &ours_work, &mut || {
        edits = edit_tree(&ours_tree)
    });

    let theirs = if restic_found {
        let their_tree = work.path().join("r").join("tree");
        copy_tree(&pristine, &their_tree, &[], &mut Copied::default());
        let their_work = work.path().join("r-work");
        std::fs::create_dir_all(&their_work).unwrap();
        println!("running restic");
        let r = restic_rows(&runtime, &their_tree, &their_work, &mut || {
            edit_tree(&their_tree);
        });
        Some(r)
    } else {
        println!("restic is not on PATH (apt-get install restic): its column is skipped");
        None
    };

    println!();
    println!("edit between the backups: {edits}");
    println!(
        "requests: counted by a loopback proxy in front of each tool's own SeaweedFS server; \
         bytes stored: object sizes from a ListObjectsV2 of the bucket; peak RSS: GNU time's \
         %M (max resident set) of the tool's process{}",
        if gnu_time().is_none() {
            " (not installed here: n/a)"
        } else {
            ""
        }
    );
    println!();
    let t = theirs.as_ref();
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut add = |name: &str, ours: (String, f64), theirs: Option<(String, f64)>| {
        let (text, value) = ours;
        let (their_text, their_value) = theirs.unwrap_or(("skipped".into(), 0.0));
        let r = if their_text == "skipped" || value == 0.0 && their_value == 0.0 {
            "-".into()
        } else {
            ratio(value, their_value)
        };
        rows.push([name.to_owned(), text, their_text, r]);
    };
    let secs = |c: &Cost| (format!("{:.1} s", c.seconds), c.seconds);
    let reqs = |c: &Cost| (c.requests.to_string(), c.requests as f64);
    add(
        &format!("first backup: time (median of {FIRST_BACKUPS})"),
        secs(&ours.first),
        t.map(|r| secs(&r.first)),
    );
    add(
        "first backup: requests",
        reqs(&ours.first),
        t.map(|r| reqs(&r.first)),
    );
    let stored = |r: &Results| {
        (
            format!(
                "{} in {} objects",
                mib(r.first_stored as f64),
                r.first_objects
            ),
            r.first_stored as f64,
        )
    };
    add("first backup: bytes stored", stored(&ours), t.map(stored));
    add(
        "first backup: peak RSS",
        rss(&ours.first),
        t.map(|r| rss(&r.first)),
    );
    add(
        "edit backup: time",
        secs(&ours.edit),
        t.map(|r| secs(&r.edit)),
    );
    add(
        "edit backup: requests",
        reqs(&ours.edit),
        t.map(|r| reqs(&r.edit)),
    );
    let added = |r: &Results| {
        (
            format!("{:.1} KiB", r.edit_added as f64 / 1024.0),
            r.edit_added as f64,
        )
    };
    add("edit backup: bytes added", added(&ours), t.map(added));
    add(
        "edit backup: peak RSS",
        rss(&ours.edit),
        t.map(|r| rss(&r.edit)),
    );
    add(
        "restore, fresh device: time",
        secs(&ours.restore),
        t.map(|r| secs(&r.restore)),
    );
    add(
        "restore, fresh device: requests",
        reqs(&ours.restore),
        t.map(|r| reqs(&r.restore)),
    );
    add(
        "restore, fresh device: peak RSS",
        rss(&ours.restore),
        t.map(|r| rss(&r.restore)),
    );
    let same = |r: &Results| {
        let text = match r.identical {
            Some(true) => "yes".to_owned(),
            Some(false) => format!("no ({} paths differ)", r.diffs.len()),
            None => "not checked".to_owned(),
        };
        (text, 0.0)
    };
    add("restored tree = edited tree", same(&ours), t.map(same));

    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([["tree", "bucketsync", "restic", "bucketsync/restic"][i].len()])
                .max()
                .unwrap()
        })
        .collect();
    let line = |cells: [&str; 4]| {
        println!(
            "| {:<w0$} | {:>w1$} | {:>w2$} | {:>w3$} |",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    line(["tree", "bucketsync", "restic", "bucketsync/restic"]);
    println!(
        "|{}|{}:|{}:|{}:|",
        "-".repeat(widths[0] + 2),
        "-".repeat(widths[1] + 1),
        "-".repeat(widths[2] + 1),
        "-".repeat(widths[3] + 1)
    );
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3]]);
    }

    if !folder_rows.is_empty() {
        println!();
        println!("| bucketsync folder (two-way)        | time     | requests | peak RSS   |");
        println!("|------------------------------------|---------:|---------:|-----------:|");
        for (name, cost) in &folder_rows {
            println!(
                "| {name:<34} | {:>6.1} s | {:>8} | {:>10} |",
                cost.seconds,
                cost.requests,
                rss(cost).0
            );
        }
    } else {
        println!("(this bucketsync has no `folder` command: no folder rows)");
    }

    for (tool, r) in [("bucketsync", Some(&ours)), ("restic", t)] {
        if let Some(r) = r {
            if !r.diffs.is_empty() {
                println!();
                println!("{tool}: the restored tree differs from the edited tree:");
                for d in r.diffs.iter().take(40) {
                    println!("  {d}");
                }
                if r.diffs.len() > 40 {
                    println!("  ... and {} more", r.diffs.len() - 40);
                }
            }
        }
    }
}
