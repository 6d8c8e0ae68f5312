//! Files: throughput, requests, dedup and memory, in one run, printed as a table.
//!
//! `cargo run --release --example bench_files` (set `BUCKETSYNC_WEED` to the `weed` binary for
//! the SeaweedFS rows; `-- --size-mib N` to stream N MiB instead of 1024). Figures are from one
//! run on whatever machine runs it: compare rows with each other, not with another machine.

use std::time::Instant;

use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::folder::FolderBucket;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::transfer::FileReport;
use bucketsync::{driver::Transport, VaultKey};
use bucketsync_suite::generated::{Compare, Generated};
use bucketsync_suite::servers::{http, ServerKind, TestServer};
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const MIB: u64 = 1 << 20;

fn open(store: &str, key: &VaultKey, dir: &std::path::Path, name: &str) -> Session {
    Session::open(SessionOptions {
        credentials: Some(TestServer::credentials()),
        ..SessionOptions::new(
            store,
            key,
            StateLocation::File {
                path: &dir.join(format!("{name}.state")),
                wait: false,
            },
        )
    })
    .expect("open")
}

async fn put<T: Transport>(s: &Session, t: &T, key: &str, mut source: Generated) -> FileReport {
    s.put_file(key, &mut source, t, None, DEFAULT_CONCURRENCY, |_| {})
        .await
        .expect("put_file")
}

/// Reads `key` back, checking every byte; returns the GETs made.
async fn get<T: Transport>(s: &Session, t: &T, key: &str, expected: Generated, len: u64) -> u64 {
    let mut sink = Compare::new(expected);
    let mut gets = 0;
    let found = s
        .get_file(key.as_bytes(), &mut sink, t, DEFAULT_CONCURRENCY, |p| {
            gets = p.requests_done
        })
        .await
        .expect("get_file");
    assert!(found);
    sink.assert_whole(len);
    gets
}

fn mbs(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / MIB as f64 / seconds
}

/// Upload and download of `size` bytes, then the 1-byte edit and the second device, on one
/// store.
async fn store_rows<T: Transport>(
    name: &str,
    store: &str,
    t: &T,
    size: u64,
    rows: &mut Vec<(String, String)>,
) {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let a = open(store, &key, dir.path(), "a");
    let b = open(store, &key, dir.path(), "b");
    let started = Instant::now();
    let up = put(&a, t, "big", Generated::new(1, size)).await;
    let up_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let gets = get(&a, t, "big", Generated::new(1, size), size).await;
    let down_s = started.elapsed().as_secs_f64();
    let gib = size as f64 / (1u64 << 30) as f64;
    rows.push((
        format!("{name}: upload / download {} MiB", size / MIB),
        format!("{:.0} / {:.0} MB/s", mbs(size, up_s), mbs(size, down_s)),
    ));
    rows.push((
        format!("{name}: requests per GiB up / down (bar <= 70)"),
        format!("{:.0} / {:.0}", up.requests as f64 / gib, gets as f64 / gib),
    ));

    // A 1-byte edit in the middle of a 256 MiB file, and the same file from a second device.
    let len = 256 * MIB;
    put(&a, t, "doc", Generated::new(2, len)).await;
    let edit = put(&a, t, "doc", Generated::new(2, len).edited(len / 2, 0)).await;
    rows.push((
        format!("{name}: 1-byte edit in 256 MiB: chunks / PUTs / MiB sent (bar <= 2 / 3)"),
        format!(
            "{} / {} / {:.1}",
            edit.chunks_uploaded,
            edit.requests,
            edit.bytes_sent as f64 / MIB as f64
        ),
    ));
    a.sync(t, DEFAULT_CONCURRENCY, |_| {}).await.unwrap();
    b.sync(t, DEFAULT_CONCURRENCY, |_| {}).await.unwrap();
    let second = put(&b, t, "doc copy", Generated::new(2, len).edited(len / 2, 0)).await;
    rows.push((
        format!("{name}: the same 256 MiB from a second device: bytes sent (bar ~0)"),
        format!("{} B in {} requests", second.bytes_sent, second.requests),
    ));
}

/// Peak resident memory (VmHWM) of this process, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size = args
        .iter()
        .position(|a| a == "--size-mib")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1024)
        * MIB;

    // A child run: stream `size` bytes up and back down on a folder store, and print the peak
    // memory of that alone.
    if args.iter().any(|a| a == "--rss-child") {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("file://{}", dir.path().join("bucket").display());
        let key = VaultKey::generate().unwrap();
        let s = open(&store, &key, dir.path(), "a");
        futures::executor::block_on(async {
            put(&s, &FolderBucket, "big", Generated::new(3, size)).await;
            let up = peak_rss_mib();
            // The peak of the download alone: Linux resets the high-water mark on "5".
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            get(&s, &FolderBucket, "big", Generated::new(3, size), size).await;
            println!("{up:.1} / {:.1}", peak_rss_mib());
        });
        return;
    }

    let mut rows: Vec<(String, String)> = Vec::new();
    let mut data = vec![0u8; 256 << 20];
    Generated::new(9, data.len() as u64).fill(&mut data);
    let key = VaultKey::generate().unwrap();

    let t = Instant::now();
    let lengths = bucketsync::testing::chunk_lengths(&key, &data);
    let chunk_s = t.elapsed().as_secs_f64();
    rows.push((
        format!(
            "raw keyed chunking (FastCDC 2020), {} chunks of {:.2} MiB avg",
            lengths.len(),
            data.len() as f64 / lengths.len() as f64 / MIB as f64
        ),
        format!("{:.0} MB/s (bar >= 1000)", mbs(data.len() as u64, chunk_s)),
    ));
    let t = Instant::now();
    for piece in data.chunks(1 << 20) {
        std::hint::black_box(blake3::keyed_hash(&[7; 32], piece));
    }
    rows.push((
        "raw keyed BLAKE3, 1 MiB pieces".into(),
        format!(
            "{:.0} MB/s",
            mbs(data.len() as u64, t.elapsed().as_secs_f64())
        ),
    ));
    let cipher = XChaCha20Poly1305::new(&[7u8; 32].into());
    let t = Instant::now();
    for piece in data.chunks_mut(1 << 20) {
        let tag = cipher
            .encrypt_inout_detached(&XNonce::from([9u8; 24]), &[1; 64], piece.into())
            .unwrap();
        std::hint::black_box(tag);
    }
    rows.push((
        "raw XChaCha20-Poly1305 seal, 1 MiB pieces".into(),
        format!(
            "{:.0} MB/s",
            mbs(data.len() as u64, t.elapsed().as_secs_f64())
        ),
    ));
    drop(data);

    let dir = tempfile::tempdir().unwrap();
    let folder = format!("file://{}", dir.path().join("bucket").display());
    futures::executor::block_on(store_rows(
        "file://",
        &folder,
        &FolderBucket,
        size,
        &mut rows,
    ));

    if std::env::var_os("BUCKETSYNC_WEED").is_some() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let server = TestServer::start(ServerKind::SeaweedFs).await;
            server.create_bucket("bench").await;
            let store = server.store_url("bench", "files/");
            store_rows("SeaweedFS", &store, &http(), size, &mut rows).await;
        });
    } else {
        rows.push((
            "SeaweedFS rows".into(),
            "skipped: BUCKETSYNC_WEED is not set".into(),
        ));
    }

    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--rss-child", "--size-mib", &(size / MIB).to_string()])
        .output()
        .expect("the child run starts");
    let rss = String::from_utf8_lossy(&child.stdout).trim().to_owned();
    rows.push((
        format!(
            "peak RSS streaming {} MiB up / then down alone, file:// (bar <= 80 MiB)",
            size / MIB
        ),
        format!("{rss} MiB"),
    ));

    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("| {:width$} | result |", "files");
    println!("|{}|--------|", "-".repeat(width + 2));
    for (k, v) in rows {
        println!("| {k:width$} | {v} |");
    }
}
