//! The S3 benchmark table, on a SeaweedFS server it starts itself:
//! `cargo run --release --example bench_s3` (after `bash scripts/test.sh` installed the server).
//!
//! Prints signing cost, then requests and bytes per sync for our design next to the requests a
//! hishtory-style design needs for the same work: every entry is one object PUT into the inbox
//! of each other device, and each device lists its inbox, GETs every entry and DELETEs it.

use std::time::Instant;

use bucketsync::sign::{SigV4, Signer};
use bucketsync::{
    CompactionPolicy, DeviceId, Engine, Method, Request, RequestId, RequestKind, Store, SyncReport,
    VaultKey,
};
use bucketsync_suite::servers::{http, ServerKind, TestServer};
use bucketsync_suite::{sync, wall_clock};

const DEVICES: u64 = 5;

fn signing_micros(body: usize) -> f64 {
    let signer = SigV4::new(TestServer::credentials(), "us-east-1");
    let template = Request {
        id: RequestId(0),
        kind: RequestKind::PutSegment,
        method: Method::Put,
        url: "http://127.0.0.1:8333/bucket/0f1e2d3c4b5a69788796a5b4c3d2e1f0/s/00112233445566778899aabbccddeeff/0000000000000001".into(),
        headers: vec![("if-none-match".into(), "*".into())],
        body: vec![7; body].into(),
    };
    let runs = 2000;
    let started = Instant::now();
    for _ in 0..runs {
        let mut request = template.clone();
        signer.sign(&mut request, wall_clock()).unwrap();
        std::hint::black_box(&request);
    }
    started.elapsed().as_secs_f64() * 1e6 / runs as f64
}

/// Requests the hishtory-style design makes for `entries` new entries written by one device
/// and read by the `DEVICES - 1` others.
fn inbox_design(entries: u64) -> u64 {
    let readers = DEVICES - 1;
    entries * readers + readers * (1 + 2 * entries)
}

fn row(name: &str, write: &SyncReport, reads: &[SyncReport], entries: u64) -> String {
    let ours = write.requests() + reads.iter().map(SyncReport::requests).sum::<u64>();
    let sent = write.bytes_sent + reads.iter().map(|r| r.bytes_sent).sum::<u64>();
    let received = write.bytes_received + reads.iter().map(|r| r.bytes_received).sum::<u64>();
    let theirs = if entries == 0 {
        DEVICES
    } else {
        inbox_design(entries)
    };
    format!(
        "| {name:<46} | {:>5} | {:>5} | {ours:>5} | {sent:>9} | {received:>9} | {theirs:>7} | {:>7.1}x |",
        write.requests(),
        reads.iter().map(SyncReport::requests).sum::<u64>(),
        theirs as f64 / ours as f64
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("| signing (SigV4, aws-sigv4)          | µs per request |");
    println!("|-------------------------------------|----------------|");
    println!(
        "| GET, empty body                     | {:>14.1} |",
        signing_micros(0)
    );
    println!(
        "| PUT, 1 MiB body (hashes the body)   | {:>14.1} |",
        signing_micros(1 << 20)
    );
    println!();

    let server = TestServer::start(ServerKind::SeaweedFs).await;
    server.create_bucket("bench").await;
    let store = server.store("bench", "bench/");
    let key = VaultKey::generate().unwrap();
    let transport = http();
    let mut devices: Vec<Engine> = (1..=DEVICES as u8)
        .map(|n| {
            let mut e = Engine::new(
                &key,
                store.clone(),
                DeviceId([n; 16]),
                bucketsync_suite::entropy(),
            );
            e.set_credentials(TestServer::credentials());
            e
        })
        .collect();
    for d in devices.iter_mut() {
        sync(d, &transport).await.unwrap();
    }

    println!(
        "SeaweedFS on loopback, {DEVICES} devices; one device writes, the other {} then sync.",
        DEVICES - 1
    );
    println!(
        "| {:<46} | write | reads | total | sent B    | recv B    | inbox   | ratio    | time |",
        "work (requests: ours; inbox = hishtory-style)"
    );
    println!(
        "|{}|-------|-------|-------|-----------|-----------|---------|----------|------|",
        "-".repeat(48)
    );
    let mut entry = 0u64;
    for n in [0u64, 1, 100, 10_000] {
        for _ in 0..n {
            entry += 1;
            devices[0].put(
                format!("history/{entry:08}"),
                format!("cd ~/src/project && cargo test --workspace -- filter_{entry:08}"),
                wall_clock(),
            );
        }
        let started = Instant::now();
        let write = sync(&mut devices[0], &transport).await.unwrap();
        let mut reads = Vec::new();
        for d in devices[1..].iter_mut() {
            reads.push(sync(d, &transport).await.unwrap());
        }
        let name = match n {
            0 => "no-op sync on every device".to_owned(),
            n => format!("push {n} record(s), {} devices pull", DEVICES - 1),
        };
        println!(
            "{} {:>4.0} ms |",
            row(&name, &write, &reads, n),
            started.elapsed().as_secs_f64() * 1e3
        );
    }

    // Every device writes, then a new device catches up on everything.
    for (i, d) in devices.iter_mut().enumerate() {
        for j in 0..2_000 {
            d.put(
                format!("d{i}/{j:05}"),
                format!("entry {j} of device {i} with some command text"),
                wall_clock(),
            );
        }
        sync(d, &transport).await.unwrap();
    }
    let mut newcomer = Engine::new(
        &key,
        store.clone(),
        DeviceId([0xEE; 16]),
        bucketsync_suite::entropy(),
    );
    newcomer.set_credentials(TestServer::credentials());
    let started = Instant::now();
    let catch_up = sync(&mut newcomer, &transport).await.unwrap();
    let total = newcomer.keys(b"").len() as u64;
    // The inbox design gives a new device nothing to read: every entry must be PUT into its
    // inbox again by someone, then listed, fetched and deleted.
    let theirs = total + 1 + 2 * total;
    println!(
        "| {:<46} |     - | {:>5} | {:>5} | {:>9} | {:>9} | {theirs:>7} | {:>7.0}x | {:>4.0} ms |",
        format!("new device catches up: {total} records, {DEVICES} devices"),
        catch_up.requests(),
        catch_up.requests(),
        catch_up.bytes_sent,
        catch_up.bytes_received,
        theirs as f64 / catch_up.requests() as f64,
        started.elapsed().as_secs_f64() * 1e3
    );

    bootstrap_after_history(&store, &transport).await;
}

/// A new device's first sync after 1,000 single-record pushes (by 1 and by 5 devices), without
/// and with checkpoints, on SeaweedFS.
async fn bootstrap_after_history(store: &Store, transport: &impl bucketsync::driver::Transport) {
    println!();
    println!(
        "| new device after 1,000 single-record pushes (SeaweedFS) | requests | recv B | time |"
    );
    println!(
        "|---------------------------------------------------------|----------|--------|------|"
    );
    for devices in [1u8, 5] {
        for (label, policy) in [
            ("no checkpoints (before)", CompactionPolicy::NEVER),
            ("checkpoints", CompactionPolicy::default()),
        ] {
            let key = VaultKey::generate().unwrap();
            let mut writers: Vec<Engine> = (0..devices)
                .map(|d| {
                    let mut e = Engine::new(
                        &key,
                        store.clone(),
                        DeviceId([0x40 + d; 16]),
                        bucketsync_suite::entropy(),
                    );
                    e.set_credentials(TestServer::credentials());
                    e.set_compaction(policy);
                    e
                })
                .collect();
            for i in 0..1_000u32 {
                let writer = &mut writers[(i % u32::from(devices)) as usize];
                writer.put(
                    format!("history/{:04}", i % 300),
                    format!("command number {i} with some text"),
                    wall_clock(),
                );
                sync(writer, transport).await.unwrap();
            }
            let mut new = Engine::new(
                &key,
                store.clone(),
                DeviceId([0xEF; 16]),
                bucketsync_suite::entropy(),
            );
            new.set_credentials(TestServer::credentials());
            let started = Instant::now();
            let report = sync(&mut new, transport).await.unwrap();
            println!(
                "| {:<55} | {:>8} | {:>6} | {:>4.0} ms |",
                format!("{devices} device(s), {label}"),
                report.requests(),
                report.bytes_received,
                started.elapsed().as_secs_f64() * 1e3
            );
        }
    }
}
