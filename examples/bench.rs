//! The benchmark table: `cargo run --release --example bench` (`-- crypto` for the seal and
//! open rows alone, `-- idle` for the idle device's requests and the background sync's delay).
//!
//! Every figure comes from this one run, so ratios between them hold on a noisy machine.

use std::time::{Duration, Instant};

use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::folder::FolderBucket;
use bucketsync::session::{Durability, Session, SessionOptions, StateLocation};
use bucketsync::{
    segment, CompactionPolicy, DeviceId, Engine, Hlc, Record, Records, RequestKind, Schedule,
    Stamp, VaultKey,
};
use bucketsync_suite::{block_sync, folder_store, wall_clock};
use chacha20poly1305::aead::{Aead, AeadInOut, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use futures::executor::block_on;

const MIB: f64 = 1024.0 * 1024.0;

/// Runs `f` repeatedly for at least `min`, returns the best time of one run.
fn best_of(min: Duration, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut best = Duration::MAX;
    let mut runs = 0;
    while runs < 3 || start.elapsed() < min {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
        runs += 1;
    }
    best
}

/// An hour before the bench started: stamps in the present, as a reader holds stamps more than
/// a week ahead of its clock.
static HOUR_AGO: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| wall_clock().0 - 3_600_000);

/// A shell-history-sized record: ~30-byte key, ~120-byte value.
fn history_record(i: u64, device: DeviceId) -> (Vec<u8>, Record) {
    let key = format!("history/{device}/{i:08}").into_bytes();
    let value = format!(
        "cd ~/src/project-{} && cargo test --workspace -- --nocapture filter_{i:08} | tee log.txt",
        i % 97
    )
    .into_bytes();
    let stamp = Stamp {
        hlc: Hlc {
            wall_ms: *HOUR_AGO + i,
            counter: 0,
        },
        device,
    };
    (
        key,
        Record {
            value: Some(value),
            stamp,
        },
    )
}

fn open_session(dir: &std::path::Path, key: &VaultKey, flush_interval_ms: u64) -> Session {
    let store = format!("file://{}", dir.join("bucket").display());
    let state = StateLocation::File {
        path: &dir.join("replica.state"),
        wait: false,
    };
    Session::open(SessionOptions {
        durability: Durability {
            flush_interval_ms,
            ..Durability::default()
        },
        ..SessionOptions::new(&store, key, state)
    })
    .unwrap()
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Puts through the journal, and what a save costs at 10 and at 1M records: the whole snapshot
/// rewritten (what every save did before the journal) against one journal entry synced.
fn durability(key: &VaultKey, rows: &mut Vec<(String, String)>) {
    let me = DeviceId([3; 16]);
    let mut saves = Vec::new();
    let mut noops = Vec::new();
    for n in [10u64, 1_000_000] {
        let dir = tempfile::tempdir().unwrap();
        let vault = open_session(dir.path(), key, 1_000);
        let t = Instant::now();
        for i in 0..n {
            let (k, r) = history_record(i, me);
            vault.put(k, r.value.unwrap()).unwrap();
        }
        let elapsed = t.elapsed();
        if n > 10 {
            rows.push((
                format!("put {n} records, journal synced every 1 s"),
                format!("{:.0} records/s", n as f64 / elapsed.as_secs_f64()),
            ));
        }
        let before = best_of(Duration::from_millis(500), || {
            vault.snapshot().unwrap();
        });
        let snapshot = std::fs::metadata(dir.path().join("replica.state"))
            .unwrap()
            .len();
        // One changed record (the same key again, so the vault keeps its size), saved.
        let mut i = 0u64;
        let after = best_of(Duration::from_millis(500), || {
            vault.put("bench/save", i.to_le_bytes()).unwrap();
            vault.save().unwrap();
            i += 1;
        });
        block_on(vault.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
        let noop = best_of(Duration::from_millis(500), || {
            block_on(vault.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
        });
        // The same no-op sync's engine steps alone (no filesystem): the LIST's answer replayed.
        let list = vault
            .configure(|e| {
                e.start_sync(wall_clock()).unwrap();
                let request = e.poll_request(wall_clock()).unwrap();
                let response = FolderBucket.execute(&request);
                e.cancel_sync();
                response
            })
            .unwrap();
        let steps = best_of(Duration::from_millis(500), || {
            vault
                .configure(|e| {
                    e.start_sync(wall_clock()).unwrap();
                    let request = e.poll_request(wall_clock()).unwrap();
                    e.handle_response(request.id, Ok(list.clone()), wall_clock());
                    assert!(e.poll_request(wall_clock()).is_none());
                    e.poll_outcome().unwrap().unwrap();
                    e.poll_journal()
                })
                .unwrap();
        });
        rows.push((
            format!(
                "save at {n} records: before (whole snapshot, {:.1} MB)",
                snapshot as f64 / 1e6
            ),
            millis(before),
        ));
        rows.push((
            format!("save at {n} records: after (one journal entry + fsync)"),
            format!(
                "{} ({:.0}x less)",
                millis(after),
                before.as_secs_f64() / after.as_secs_f64()
            ),
        ));
        rows.push((
            format!("no-op sync at {n} records (session, folder bucket)"),
            millis(noop),
        ));
        rows.push((
            format!("no-op sync at {n} records: engine steps + journal only"),
            format!("{:.1} µs", steps.as_secs_f64() * 1e6),
        ));
        saves.push(after);
        noops.push(steps);
    }
    rows.push((
        "save at 1M records / save at 10 (bar: the same)".into(),
        format!("{:.2}", saves[1].as_secs_f64() / saves[0].as_secs_f64()),
    ));
    rows.push((
        "no-op sync engine steps at 1M / at 10 (bar: the same)".into(),
        format!("{:.2}", noops[1].as_secs_f64() / noops[0].as_secs_f64()),
    ));
    let dir = tempfile::tempdir().unwrap();
    let vault = open_session(dir.path(), key, 0);
    let n = 2_000u64;
    let t = Instant::now();
    for i in 0..n {
        let (k, r) = history_record(i, me);
        vault.put(k, r.value.unwrap()).unwrap();
    }
    rows.push((
        "put 2000 records, journal synced after each".into(),
        format!("{:.0} records/s", n as f64 / t.elapsed().as_secs_f64()),
    ));
}

/// How many segment objects a folder bucket holds.
fn count_segments(dir: &std::path::Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            count += count_segments(&path);
        } else if path
            .parent()
            .and_then(|p| p.parent())
            .and_then(|p| p.file_name())
            == Some(std::ffi::OsStr::new("s"))
        {
            count += 1;
        }
    }
    count
}

/// What a new device pays after a long history, with and without checkpoints; a 1M-record vault:
/// compaction, bootstrap, and a no-op sync against one of 10 records.
fn lifecycle(key: &VaultKey, rows: &mut Vec<(String, String)>) {
    for devices in [1u8, 5] {
        for (label, policy) in [
            ("no checkpoints (before)", CompactionPolicy::NEVER),
            ("checkpoints (default policy)", CompactionPolicy::default()),
            (
                "checkpoints, covered segments deleted (grace 8 s)",
                CompactionPolicy {
                    grace_ms: 8_000,
                    max_clock_skew_ms: 1_000,
                    ..CompactionPolicy::default()
                },
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut writers: Vec<Engine> = (0..devices)
                .map(|d| {
                    let mut e = Engine::new(
                        key,
                        folder_store(dir.path()),
                        DeviceId([10 + d; 16]),
                        bucketsync_suite::entropy(),
                    );
                    e.set_compaction(policy);
                    e
                })
                .collect();
            let t = Instant::now();
            for i in 0..10_000u64 {
                let writer = &mut writers[(i % u64::from(devices)) as usize];
                let (k, r) = history_record(i % 2_000, writer.device());
                writer.put(k, r.value.unwrap(), wall_clock());
                block_sync(writer, &FolderBucket).unwrap();
            }
            let history = t.elapsed();
            let mut new = Engine::new(
                key,
                folder_store(dir.path()),
                DeviceId([99; 16]),
                bucketsync_suite::entropy(),
            );
            let t = Instant::now();
            let report = block_sync(&mut new, &FolderBucket).unwrap();
            rows.push((
                format!("new device after 10k pushes by {devices} device(s), {label}"),
                format!(
                    "{} requests, {:.2} MiB, {:.0} ms ({} live keys; {} segment objects in the bucket; the 10k pushes took {:.1} s)",
                    report.requests(),
                    report.bytes_received as f64 / MIB,
                    t.elapsed().as_secs_f64() * 1e3,
                    new.keys(b"").len(),
                    count_segments(dir.path()),
                    history.as_secs_f64()
                ),
            ));
        }
    }

    // 1M records: pushed without a checkpoint, then one more write whose sync compacts.
    let dir = tempfile::tempdir().unwrap();
    let mut big = Engine::new(
        key,
        folder_store(dir.path()),
        DeviceId([1; 16]),
        bucketsync_suite::entropy(),
    );
    big.set_compaction(CompactionPolicy::NEVER);
    for i in 0..1_000_000u64 {
        let (k, r) = history_record(i, big.device());
        big.put(k, r.value.unwrap(), wall_clock());
    }
    block_sync(&mut big, &FolderBucket).unwrap();
    big.set_compaction(CompactionPolicy {
        min_tail_segments: 1,
        max_tail_segments: 1,
        bytes_ratio: 1,
        segment_overhead_bytes: 0,
        ..CompactionPolicy::default()
    });
    big.put("one/more", "write", wall_clock());
    let t = Instant::now();
    let compacting = block_sync(&mut big, &FolderBucket).unwrap();
    let compaction = t.elapsed();
    assert!(compacting.compacted);
    rows.push((
        "1M records: the sync that writes the checkpoint".into(),
        format!(
            "{:.0} ms, {:.1} MiB sent",
            compaction.as_secs_f64() * 1e3,
            compacting.bytes_sent as f64 / MIB
        ),
    ));
    let mut new = Engine::new(
        key,
        folder_store(dir.path()),
        DeviceId([2; 16]),
        bucketsync_suite::entropy(),
    );
    let t = Instant::now();
    let bootstrap = block_sync(&mut new, &FolderBucket).unwrap();
    rows.push((
        "1M records: a new device bootstraps".into(),
        format!(
            "{:.0} ms, {} requests, {:.1} MiB received ({:.0} B per record)",
            t.elapsed().as_secs_f64() * 1e3,
            bootstrap.requests(),
            bootstrap.bytes_received as f64 / MIB,
            bootstrap.bytes_received as f64 / 1e6
        ),
    ));
    let noop_big = best_of(Duration::from_millis(500), || {
        block_sync(&mut new, &FolderBucket).unwrap();
    });
    let small_dir = tempfile::tempdir().unwrap();
    let mut small = Engine::new(
        key,
        folder_store(small_dir.path()),
        DeviceId([3; 16]),
        bucketsync_suite::entropy(),
    );
    for i in 0..10 {
        small.put(format!("k{i}"), "v", wall_clock());
    }
    block_sync(&mut small, &FolderBucket).unwrap();
    let noop_small = best_of(Duration::from_millis(500), || {
        block_sync(&mut small, &FolderBucket).unwrap();
    });
    rows.push((
        "no-op sync: 1M-record replica / 10-record replica (bar: ~1)".into(),
        format!(
            "{:.2} ({:.2} ms / {:.2} ms)",
            noop_big.as_secs_f64() / noop_small.as_secs_f64(),
            noop_big.as_secs_f64() * 1e3,
            noop_small.as_secs_f64() * 1e3
        ),
    ));
}

fn main() {
    let min = Duration::from_millis(1500);
    let mut rows: Vec<(String, String)> = Vec::new();
    if std::env::args().any(|a| a == "idle") {
        idle(&VaultKey::generate().unwrap(), &mut rows);
        return print_table(rows);
    }
    if std::env::args().any(|a| a == "sharing") {
        sharing(&mut rows);
        return print_table(rows);
    }

    // Raw XChaCha20-Poly1305 on 1 MiB buffers, in place, from the `chacha20poly1305` crate. Its
    // Poly1305 runs four blocks at a time only when the associated data fills a multiple of
    // four blocks (a 2-byte one does not: each later block is copied once more), so the bar is
    // the faster, 64-byte case; the other is shown for comparison.
    let cipher = XChaCha20Poly1305::new(&[7u8; 32].into());
    let nonce = XNonce::from([9u8; 24]);
    let mut buf = vec![0x5au8; 1 << 20];
    let mut raw_with = |ad: &[u8]| {
        let t = best_of(min, || {
            for _ in 0..16 {
                let tag = cipher
                    .encrypt_inout_detached(&nonce, ad, buf.as_mut_slice().into())
                    .unwrap();
                std::hint::black_box(tag);
            }
        });
        16.0 / t.as_secs_f64()
    };
    let raw_mbs = raw_with(&[1; 64]);
    let raw_short_ad = raw_with(b"ad");
    rows.push((
        "raw XChaCha20-Poly1305 seal, 1 MiB buffers, 64-byte AD".into(),
        format!("{raw_mbs:.0} MB/s"),
    ));
    rows.push((
        "  the same with a 2-byte AD".into(),
        format!("{raw_short_ad:.0} MB/s"),
    ));

    // The envelope and AEAD alone: one 14 MiB value, so serializing is one copy.
    {
        let device = DeviceId([3; 16]);
        let (key, record) = (
            b"big".to_vec(),
            Record {
                value: Some(vec![0x5a; 14 << 20]),
                ..history_record(0, device).1
            },
        );
        let vault_key = VaultKey::generate().unwrap();
        let pairs = [(key.as_slice(), &record)];
        let t = best_of(min, || {
            std::hint::black_box(
                segment::seal(
                    &vault_key,
                    device,
                    1,
                    &pairs,
                    false,
                    &mut bucketsync_suite::entropy(),
                )
                .unwrap(),
            );
        });
        rows.push((
            "  floor: seal of a one-record 14 MiB segment, ratio to raw".into(),
            format!("{:.2}", 14.0 / t.as_secs_f64() / raw_mbs),
        ));
    }

    // Our segment seal: serialize + encrypt a 100k-record batch (not deflated: these rows
    // measure the encoder and the AEAD, as before format 11; a replica deflates where that is
    // shorter, which costs what deflate does).
    let key = VaultKey::generate().unwrap();
    let device = DeviceId([3; 16]);
    let records: Vec<(Vec<u8>, Record)> = (0..100_000).map(|i| history_record(i, device)).collect();
    let pairs: Vec<(&[u8], &Record)> = records.iter().map(|(k, r)| (k.as_slice(), r)).collect();
    let plain_bytes: usize = records
        .iter()
        .map(|(k, r)| k.len() + r.value.as_ref().unwrap().len())
        .sum();
    let mut sealed = Vec::new();
    let seal = best_of(min, || {
        sealed = segment::seal(
            &key,
            device,
            1,
            &pairs,
            false,
            &mut bucketsync_suite::entropy(),
        )
        .unwrap()
    });
    let seal_mbs = sealed.len() as f64 / MIB / seal.as_secs_f64();
    // The same AEAD over as many bytes as the segment holds: in place (memory instead of the
    // 1 MiB buffer above, which stays in the second-level cache), and as the crate seals a
    // message it does not own, into a new buffer (a copy, then two passes).
    let mut big = vec![0x5au8; sealed.len()];
    let raw_in_place_big = {
        let t = best_of(min, || {
            let tag = cipher
                .encrypt_inout_detached(&nonce, &[1; 64], big.as_mut_slice().into())
                .unwrap();
            std::hint::black_box(tag);
        });
        sealed.len() as f64 / MIB / t.as_secs_f64()
    };
    let raw_copying_big = {
        let t = best_of(min, || {
            let payload = Payload {
                msg: &big,
                aad: &[1; 64],
            };
            std::hint::black_box(cipher.encrypt(&nonce, payload).unwrap());
        });
        sealed.len() as f64 / MIB / t.as_secs_f64()
    };
    rows.push((
        format!(
            "raw, 64-byte AD, {:.1} MiB: in place / into a new buffer",
            sealed.len() as f64 / MIB
        ),
        format!("{raw_in_place_big:.0} / {raw_copying_big:.0} MB/s"),
    ));
    rows.push((
        format!(
            "segment seal (serialize+encrypt), 100k records, {:.1} MiB",
            sealed.len() as f64 / MIB
        ),
        format!("{seal_mbs:.0} MB/s"),
    ));
    rows.push((
        "  ratio to raw, 64-byte / 2-byte AD (issue 15's bar >= 0.9)".into(),
        format!("{:.2} / {:.2}", seal_mbs / raw_mbs, seal_mbs / raw_short_ad),
    ));
    rows.push((
        "  ratio to raw of its size, in place / into a new buffer".into(),
        format!(
            "{:.2} / {:.2}",
            seal_mbs / raw_in_place_big,
            seal_mbs / raw_copying_big
        ),
    ));
    // Opened in place, as the engine does: decrypted, and every change decoded and checked as
    // its chunk is decrypted (the view is checked whole); restoring the ciphertext between runs
    // is not timed. Then again with a walk over every change's key afterwards, as a consumer
    // (the merge) does.
    let mut object = sealed.clone();
    let (mut open, mut open_walk) = (Duration::MAX, Duration::MAX);
    let start = Instant::now();
    while start.elapsed() < 2 * min {
        object.clear();
        object.extend_from_slice(&sealed);
        let t = Instant::now();
        let view = segment::open_in_place(&key, device, 1, &mut object).unwrap();
        std::hint::black_box(view.len());
        open = open.min(t.elapsed());
        object.clear();
        object.extend_from_slice(&sealed);
        let t = Instant::now();
        let view = segment::open_in_place(&key, device, 1, &mut object).unwrap();
        std::hint::black_box(view.changes().map(|c| c.key.len()).sum::<usize>());
        open_walk = open_walk.min(t.elapsed());
    }
    let open_mbs = sealed.len() as f64 / MIB / open.as_secs_f64();
    let open_walk_mbs = sealed.len() as f64 / MIB / open_walk.as_secs_f64();
    rows.push((
        "segment open (decrypt+decode+check in place), same batch".into(),
        format!("{open_mbs:.0} MB/s"),
    ));
    rows.push((
        "  ratio to raw, 64-byte / 2-byte AD (the same bar)".into(),
        format!("{:.2} / {:.2}", open_mbs / raw_mbs, open_mbs / raw_short_ad),
    ));
    rows.push((
        "  ratio to raw in place of its size".into(),
        format!("{:.2}", open_mbs / raw_in_place_big),
    ));
    rows.push((
        "  then walking every change's key: MB/s, ratio to raw 64-byte AD".into(),
        format!("{open_walk_mbs:.0} MB/s, {:.2}", open_walk_mbs / raw_mbs),
    ));
    rows.push((
        "  stored bytes per record (key+value = {} B avg)"
            .replace("{}", &format!("{:.0}", plain_bytes as f64 / 1e5)),
        format!("{:.0} B", sealed.len() as f64 / 1e5),
    ));

    // `cargo run --release --example bench -- crypto`: these rows only.
    if std::env::args().any(|a| a == "crypto") {
        return print_table(rows);
    }

    // Merge: 1M records into a replica's map.
    let million: Vec<(Vec<u8>, Record)> = (0..1_000_000)
        .map(|i| history_record(i, DeviceId([(i % 5) as u8; 16])))
        .collect();
    let mut merge_best = Duration::MAX;
    for _ in 0..3 {
        let batch = million.clone();
        let mut map = Records::default();
        let t = Instant::now();
        map.reserve(batch.len());
        for (k, r) in batch {
            map.merge(k, r);
        }
        merge_best = merge_best.min(t.elapsed());
        std::hint::black_box(map.len());
    }
    rows.push((
        "merge 1M records into an empty replica".into(),
        format!(
            "{:.2} M records/s (bar >= 1)",
            1.0 / merge_best.as_secs_f64()
        ),
    ));
    let mut full = Records::default();
    for (k, r) in million.iter().cloned() {
        full.merge(k, r);
    }
    let again = million.clone();
    let t = Instant::now();
    for (k, r) in again {
        full.merge(k, r);
    }
    rows.push((
        "re-merge the same 1M records (all already known)".into(),
        format!("{:.2} M records/s", 1.0 / t.elapsed().as_secs_f64()),
    ));

    // Requests per sync through the local-folder bucket.
    let dir = tempfile::tempdir().unwrap();
    let mut a = Engine::new(
        &key,
        folder_store(dir.path()),
        DeviceId([1; 16]),
        bucketsync_suite::entropy(),
    );
    let mut b = Engine::new(
        &key,
        folder_store(dir.path()),
        DeviceId([2; 16]),
        bucketsync_suite::entropy(),
    );
    for i in 0..10_000u64 {
        let (k, r) = history_record(i, a.device());
        a.put(k, r.value.unwrap(), wall_clock());
    }
    let push = block_sync(&mut a, &FolderBucket).unwrap();
    let puts =
        push.requests_of(RequestKind::PutSegment) + push.requests_of(RequestKind::PutManifest);
    rows.push((
        "push of 10k records: segment + manifest PUTs (bar = 2), and the change hint".into(),
        format!(
            "{puts} PUT + {} hint PUT + {} LIST",
            push.requests_of(RequestKind::PutHint),
            push.requests_of(RequestKind::List)
        ),
    ));
    let noop = block_sync(&mut a, &FolderBucket).unwrap();
    rows.push((
        "no-op sync: requests (bar = 1 LIST)".into(),
        format!("{} ({})", noop.requests(), noop),
    ));
    let t = Instant::now();
    let pull = block_sync(&mut b, &FolderBucket).unwrap();
    rows.push((
        "new device pulls 10k records".into(),
        format!(
            "{} requests, {:.0} ms",
            pull.requests(),
            t.elapsed().as_secs_f64() * 1e3
        ),
    ));

    durability(&key, &mut rows);
    lifecycle(&key, &mut rows);
    idle(&key, &mut rows);
    print_table(rows);
}

/// An idle device syncing every 30 s for an hour, on a made-up clock (the core's schedule
/// decides poll or full sync; every request really goes to the folder bucket): before the
/// change hint, each sync was a LIST; now a poll is a conditional GET, with a full sync every
/// 10 minutes. Then, on the real clock, the delay from a push on A to the `Changed` event on B
/// running the background sync every second.
/// `cargo run --release --example bench -- sharing`: an identity derived from a home key, a
/// grant sealed and opened (the X-Wing and Ed25519 work), and share and accept through
/// sessions on the local-folder bucket with their requests; then a revocation (a new key
/// generation sealed to the members left, the live state re-sealed in a checkpoint), with no
/// records and with 100k live ones.
fn sharing(rows: &mut Vec<(String, String)>) {
    use bucketsync::grant::{self, GenerationKey, Grant, Invitation, Role};
    use bucketsync::identity::Identity;
    use bucketsync::session::{Session, SessionOptions, StateLocation};
    let min = Duration::from_millis(1000);
    let (alice_key, bob_key, emma_key) = (
        VaultKey::from_bytes([1; 32]),
        VaultKey::from_bytes([2; 32]),
        VaultKey::from_bytes([3; 32]),
    );
    let derive = best_of(min, || {
        std::hint::black_box(Identity::of_home(&alice_key));
    });
    rows.push((
        "identity from a home key (X-Wing + Ed25519 key pairs)".into(),
        format!("{:.0} µs", derive.as_secs_f64() * 1e6),
    ));
    let (alice, bob) = (Identity::of_home(&alice_key), Identity::of_home(&bob_key));
    let grant = Grant {
        vault: emma_key.vault_id(),
        label: "emma".into(),
        store: "file:///tmp".into(),
        role: Role::Write,
        keys: vec![GenerationKey {
            generation: 0,
            key: emma_key.clone(),
        }],
        granter: alice.public().clone(),
        granted: wall_clock(),
        founder: alice.fingerprint(),
        statement: None,
    };
    let mut entropy = bucketsync_suite::entropy();
    let mut object = Vec::new();
    let seal = best_of(min, || {
        object = grant::seal(&grant, &[7; 16], &alice, bob.public(), &mut entropy).unwrap();
    });
    let invitation = Invitation {
        store: "file:///tmp".into(),
        vault: grant.vault,
        grant: [7; 16],
        from: alice.fingerprint(),
        signer: None,
    };
    let open = best_of(min, || {
        std::hint::black_box(grant::open(&object, &invitation, &bob).unwrap());
    });
    rows.push((
        "grant sealed (HPKE X-Wing + Ed25519 signature) / opened and checked".into(),
        format!(
            "{:.0} µs / {:.0} µs, {} bytes",
            seal.as_secs_f64() * 1e6,
            open.as_secs_f64() * 1e6,
            object.len()
        ),
    ));

    // Through sessions, with the requests they send, on the local-folder bucket.
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let session = |key: &VaultKey| {
        Session::open(SessionOptions::new(&store, key, StateLocation::Memory)).unwrap()
    };
    let (alice_home, bob_home) = (session(&alice_key), session(&bob_key));
    let emma = alice_home.create_shared(&store, "emma").unwrap();
    let emma_session = session(emma.key());
    emma_session.enter_shared(&alice_home, &emma).unwrap();
    let counted = Counting::default();
    let public = bob_home.identity().unwrap().public().to_string();
    let t = Instant::now();
    let sent = block_on(emma_session.share(&alice_home, &public, Role::Write, &counted)).unwrap();
    let share_time = t.elapsed();
    let share_requests = counted.take();
    let t = Instant::now();
    block_on(bob_home.accept(&sent.to_string(), None, &counted)).unwrap();
    let accept_time = t.elapsed();
    let accept_requests = counted.take();
    rows.push((
        "share / accept through sessions (file:// store)".into(),
        format!(
            "{:.1} ms, {share_requests} / {:.1} ms, {accept_requests}",
            share_time.as_secs_f64() * 1e3,
            accept_time.as_secs_f64() * 1e3,
        ),
    ));

    let small = revocation(0);
    rows.push((
        "revoke Bob (write), Carol (read) left: revoke + Alice's next sync".into(),
        format!(
            "{} (revoke alone {:.0} µs), checkpoint: {} | {}",
            millis(small.revoke_sync),
            small.revoke.as_secs_f64() * 1e6,
            if small.resealed.compacted {
                "yes"
            } else {
                "NO"
            },
            small.resealed
        ),
    ));
    rows.push((
        "Carol's next sync after the revocation (her key grant)".into(),
        format!("{} | {}", millis(small.carol_time), small.carol),
    ));
    const LIVE: u64 = 100_000;
    let big = revocation(LIVE);
    let (push_time, push) = big.push.expect("records were pushed");
    rows.push((
        format!("{}k live records: Alice's initial push", LIVE / 1000),
        format!("{} | {}", millis(push_time), push),
    ));
    rows.push((
        format!("{}k live records: revoke + re-sealing sync", LIVE / 1000),
        format!(
            "{}, checkpoint: {} | {}",
            millis(big.revoke_sync),
            if big.resealed.compacted { "yes" } else { "NO" },
            big.resealed
        ),
    ));
    rows.push((
        format!(
            "{}k live records: re-sealing sync / initial push",
            LIVE / 1000
        ),
        format!(
            "{:.2} ({} / {})",
            big.revoke_sync.as_secs_f64() / push_time.as_secs_f64(),
            millis(big.revoke_sync),
            millis(push_time)
        ),
    ));
    rows.push((
        format!(
            "{}k live records: Carol's next sync after the revocation",
            LIVE / 1000
        ),
        format!("{} | {}", millis(big.carol_time), big.carol),
    ));
}

/// What [`revocation`] measured.
struct Revocation {
    /// Alice's push of the live records before the revocation, when there are any.
    push: Option<(Duration, bucketsync::SyncReport)>,
    /// `revoke` alone (no I/O).
    revoke: Duration,
    /// `revoke` and Alice's next sync.
    revoke_sync: Duration,
    resealed: bucketsync::SyncReport,
    carol_time: Duration,
    carol: bucketsync::SyncReport,
}

/// Alice shares `emma` with Bob (write) and Carol (read) on a fresh local-folder bucket, writes
/// `live` records and pushes them, then revokes Bob: her next sync writes the new key
/// generation's grants (Alice's and Carol's), publishes the revocation and re-seals the live
/// state in a checkpoint. Carol's next sync fetches her grant; afterwards she reads what Alice
/// writes, checked.
fn revocation(live: u64) -> Revocation {
    use bucketsync::grant::Role;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let session = |key: &VaultKey| {
        Session::open(SessionOptions::new(&store, key, StateLocation::Memory)).unwrap()
    };
    let sync = |s: &Session| {
        let report = block_on(s.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
        assert!(report.errors.is_empty(), "{report}: {:?}", report.errors);
        report
    };
    let (alice_home, bob_home, carol_home) = (
        session(&VaultKey::from_bytes([1; 32])),
        session(&VaultKey::from_bytes([2; 32])),
        session(&VaultKey::from_bytes([4; 32])),
    );
    let emma = alice_home.create_shared(&store, "emma").unwrap();
    let alice = session(emma.key());
    alice.enter_shared(&alice_home, &emma).unwrap();
    sync(&alice);
    let public = |home: &Session| home.identity().unwrap().public().to_string();
    let to_bob =
        block_on(alice.share(&alice_home, &public(&bob_home), Role::Write, &FolderBucket)).unwrap();
    let to_carol =
        block_on(alice.share(&alice_home, &public(&carol_home), Role::Read, &FolderBucket))
            .unwrap();
    let member = |home: &Session, invitation: &bucketsync::grant::Invitation| {
        let accepted = block_on(home.accept(&invitation.to_string(), None, &FolderBucket)).unwrap();
        let replica = session(accepted.key());
        replica.enter_shared(home, &accepted).unwrap();
        sync(&replica);
        replica
    };
    let (bob, carol) = (member(&bob_home, &to_bob), member(&carol_home, &to_carol));

    let push = (live > 0).then(|| {
        for i in 0..live {
            alice
                .put(
                    format!("rec/{i:06}"),
                    format!("value of record {i:06} ........."),
                )
                .unwrap();
        }
        let t = Instant::now();
        let report = sync(&alice);
        let took = t.elapsed();
        sync(&bob);
        sync(&carol);
        assert!(carol.get(b"rec/000000").unwrap().is_some());
        (took, report)
    });
    // Alice's replica has merged what Bob and Carol published (their manifests).
    sync(&alice);

    let bob_fingerprint = bob_home.identity().unwrap().fingerprint().to_string();
    let t = Instant::now();
    alice.revoke(&bob_fingerprint).unwrap();
    let revoke = t.elapsed();
    let resealed = sync(&alice);
    let revoke_sync = t.elapsed();
    let t = Instant::now();
    let carol_report = sync(&carol);
    let carol_time = t.elapsed();

    // Carol reads what Alice writes under the new generation, and the records from before.
    alice.put("after", "Bob left").unwrap();
    sync(&alice);
    sync(&carol);
    assert_eq!(
        carol.get(b"after").unwrap().as_deref(),
        Some(&b"Bob left"[..]),
        "Carol reads after the revocation"
    );
    if live > 0 {
        assert!(carol.get(b"rec/000000").unwrap().is_some());
    }
    Revocation {
        push,
        revoke,
        revoke_sync,
        resealed,
        carol_time,
        carol: carol_report,
    }
}

/// The folder bucket, noting the kind of each request it executes.
#[derive(Default)]
struct Counting(std::sync::Mutex<Vec<RequestKind>>);

impl Counting {
    fn take(&self) -> String {
        let kinds = std::mem::take(&mut *self.0.lock().unwrap());
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        format!("{} request(s): {}", names.len(), names.join(", "))
    }
}

impl bucketsync::driver::Transport for Counting {
    async fn send(&self, request: bucketsync::Request) -> bucketsync::Result<bucketsync::Response> {
        self.0.lock().unwrap().push(request.kind);
        FolderBucket.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        FolderBucket.sleep(ms).await
    }
}

fn idle(key: &VaultKey, rows: &mut Vec<(String, String)>) {
    use bucketsync::SchedulePolicy;
    let dir = tempfile::tempdir().unwrap();
    let mut a = Engine::new(
        key,
        folder_store(dir.path()),
        DeviceId([1; 16]),
        bucketsync_suite::entropy(),
    );
    a.put("k", "v", wall_clock());
    block_sync(&mut a, &FolderBucket).unwrap();
    let start = wall_clock();
    let run = |polls: bool| {
        let mut b = Engine::new(
            key,
            folder_store(dir.path()),
            DeviceId([2; 16]),
            bucketsync_suite::entropy(),
        );
        let policy = SchedulePolicy::default();
        let mut schedule = Schedule::new(policy, start, 1);
        let mut counts = std::collections::BTreeMap::<RequestKind, u64>::new();
        let mut syncs = 0;
        let mut now = start;
        while now.0 < start.0 + 3_600_000 {
            if schedule.is_due(now) {
                let list_anyway = schedule.wants_full_sync(now);
                schedule.handle(bucketsync::Happening::SyncStarted, now);
                let at = now;
                let report = if polls {
                    block_on(bucketsync::driver::poll(
                        &mut b,
                        &FolderBucket,
                        || at,
                        list_anyway,
                    ))
                } else {
                    block_on(bucketsync::driver::sync(&mut b, &FolderBucket, || at, 8))
                }
                .unwrap();
                if !report.hint_unchanged {
                    schedule.note_full_sync(now);
                }
                schedule.handle(
                    bucketsync::Happening::SyncEnded(bucketsync::schedule::Ended::Done),
                    now,
                );
                for (kind, n) in report.requests_by_kind {
                    *counts.entry(kind).or_default() += n;
                }
                syncs += 1;
            }
            now.0 += 1_000;
        }
        (syncs, counts)
    };
    let (syncs_before, before) = run(false);
    let (syncs, after) = run(true);
    let of = |c: &std::collections::BTreeMap<RequestKind, u64>, k| c.get(&k).copied().unwrap_or(0);
    let (lists_before, lists, gets) = (
        of(&before, RequestKind::List),
        of(&after, RequestKind::List),
        of(&after, RequestKind::GetHint),
    );
    let others: u64 = after
        .iter()
        .filter(|(k, _)| !matches!(k, RequestKind::List | RequestKind::GetHint))
        .map(|(_, n)| n)
        .sum();
    rows.push((
        "idle device, 1 h at 30 s: before (a LIST a sync)".into(),
        format!("{syncs_before} syncs, {lists_before} LIST"),
    ));
    rows.push((
        "  now (conditional GET of the hint; full sync every 10 min)".into(),
        format!("{syncs} syncs, {gets} GET + {lists} LIST + {others} other"),
    ));
    // A month of 30 days at the list prices in the README (no free tiers).
    let month = 24.0 * 30.0;
    let cost = |lists: u64, gets: u64, list: f64, get: f64| {
        month * (lists as f64 * list + gets as f64 * get) / 1000.0
    };
    for (provider, list, get) in [
        ("AWS S3", 0.005, 0.0004),
        ("R2", 0.0045, 0.00036),
        ("B2", 0.004, 0.0004),
    ] {
        let (was, now) = (
            cost(lists_before, 0, list, get),
            cost(lists, gets, list, get),
        );
        rows.push((
            format!("  a month idle on {provider} (list prices), before -> now"),
            format!("${was:.3} -> ${now:.3} ({:.2} of before)", now / was),
        ));
    }

    // The delay from a push on A to the event on B (background sync every second).
    let states = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let open = |name: &str| {
        let path = states.path().join(name);
        let mut options = SessionOptions::new(
            &url,
            key,
            StateLocation::File {
                path: &path,
                wait: false,
            },
        );
        options.device = Some(name);
        std::sync::Arc::new(Session::open(options).unwrap())
    };
    let (pusher, watcher) = (open("pusher"), open("watcher"));
    let (tell, heard) = std::sync::mpsc::channel();
    let running = {
        let watcher = watcher.clone();
        std::thread::spawn(move || {
            let options = bucketsync::auto_sync::AutoSyncOptions {
                policy: SchedulePolicy {
                    interval_ms: 1_000,
                    ..SchedulePolicy::default()
                },
                ..Default::default()
            };
            block_on(watcher.auto_sync(&FolderBucket, options, move |e| {
                if let bucketsync::auto_sync::Event::Changed(keys) = e {
                    let _ = tell.send((Instant::now(), keys));
                }
            }))
        })
    };
    std::thread::sleep(Duration::from_millis(1_500));
    let mut delays = Vec::new();
    for i in 0..8 {
        pusher.put(format!("delay/{i}"), "x").unwrap();
        block_on(pusher.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
        let pushed = Instant::now();
        loop {
            let (at, keys) = heard.recv_timeout(Duration::from_secs(10)).unwrap();
            if keys.contains(&format!("delay/{i}").into_bytes()) {
                delays.push(at.duration_since(pushed));
                break;
            }
        }
        // Pushes at different points of the interval.
        std::thread::sleep(Duration::from_millis(1_000 + 137 * i));
    }
    watcher.stop_auto_sync();
    running.join().unwrap().unwrap();
    delays.sort();
    let median = delays[delays.len() / 2];
    let worst = *delays.last().unwrap();
    rows.push((
        "push on A -> changed event on B, interval 1 s: median, worst (ratio to interval)".into(),
        format!(
            "{}, {} ({:.2}, {:.2})",
            millis(median),
            millis(worst),
            median.as_secs_f64(),
            worst.as_secs_f64()
        ),
    ));
}

fn print_table(rows: Vec<(String, String)>) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("| {:<width$} | result |", "measure");
    println!("|{}|--------|", "-".repeat(width + 2));
    for (k, v) in rows {
        println!("| {k:<width$} | {v} |");
    }
}
