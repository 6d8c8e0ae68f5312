//! The device's own log is sacred: a crash between the segment PUT and the manifest PUT never
//! hides a write, and a failure to read our own manifest or published segments stops the push
//! loudly instead of passing as `pushed = 0`.

use bucketsync::folder::FolderBucket;
use bucketsync::{Category, DeviceId, Engine, RequestKind, Timestamp, VaultKey};
use bucketsync_suite::{block_sync, folder_store};

/// The tests' clock: the present, as the wall-clock syncs beside it read it (a reader holds
/// stamps more than a week ahead of its own clock).
static T: std::sync::LazyLock<Timestamp> = std::sync::LazyLock::new(bucketsync_suite::wall_clock);

/// Runs `engine`'s sync by hand and stops right after the store executed the first request of
/// `kind`, before the engine hears of it: a crash there.
fn crash_after(engine: &mut Engine, kind: RequestKind) {
    engine.start_sync(*T).unwrap();
    loop {
        let batch: Vec<_> = std::iter::from_fn(|| engine.poll_request(*T)).collect();
        assert!(
            !batch.is_empty(),
            "the sync ended before a {kind:?} request"
        );
        for request in batch {
            let response = FolderBucket.execute(&request);
            if request.kind == kind {
                return;
            }
            engine.handle_response(request.id, Ok(response), *T);
        }
    }
}

#[test]
fn a_crash_after_the_segment_put_hides_nothing_when_restarted_from_the_pre_sync_state() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::from_bytes([9; 32]);
    let mut a = Engine::new(
        &key,
        folder_store(dir.path()),
        DeviceId([0xA; 16]),
        bucketsync_suite::entropy(),
    );
    a.put("first", "1", *T);
    block_sync(&mut a, &FolderBucket).unwrap();
    a.put("second", "2", Timestamp(T.0 + 1));
    // What a binding that saves only after a sync ends has on disk.
    let before = a.export_state();
    crash_after(&mut a, RequestKind::PutSegment);

    let mut a = Engine::from_state(
        &key,
        folder_store(dir.path()),
        &before,
        bucketsync_suite::entropy(),
    )
    .unwrap();
    let report = block_sync(&mut a, &FolderBucket).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(a.unpushed(), 0, "{report}");

    let mut b = Engine::new(
        &key,
        folder_store(dir.path()),
        DeviceId([0xB; 16]),
        bucketsync_suite::entropy(),
    );
    let report = block_sync(&mut b, &FolderBucket).unwrap();
    assert_eq!(b.get(b"second"), Some(&b"2"[..]), "{report}");
    assert_eq!(report.pulled, 2, "each write stored once: {report}");
}

fn own_manifest(dir: &std::path::Path, key: &VaultKey, device: DeviceId) -> std::path::PathBuf {
    dir.join(key.vault_id().to_string())
        .join("m")
        .join(device.to_string())
}

#[test]
fn an_unreadable_own_published_segment_fails_every_sync_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::from_bytes([9; 32]);
    let me = DeviceId([0xA; 16]);
    let mut a = Engine::new(
        &key,
        folder_store(dir.path()),
        me,
        bucketsync_suite::entropy(),
    );
    let fresh = a.export_state();
    a.put("first", "1", *T);
    block_sync(&mut a, &FolderBucket).unwrap();
    let segment = dir
        .path()
        .join(key.vault_id().to_string())
        .join("s")
        .join(me.to_string());
    let file = std::fs::read_dir(&segment)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&file, b"damaged").unwrap();

    // The same device restarts from a state older than its published log.
    let mut a = Engine::from_state(
        &key,
        folder_store(dir.path()),
        &fresh,
        bucketsync_suite::entropy(),
    )
    .unwrap();
    a.put("second", "2", Timestamp(T.0 + 1));
    for attempt in 0..2 {
        let err = block_sync(&mut a, &FolderBucket).unwrap_err();
        assert_eq!(
            err.category(),
            Category::Corrupt,
            "attempt {attempt}: {err}"
        );
        assert_eq!(a.unpushed(), 1, "attempt {attempt}");
    }
}

/// Someone with the bucket's credentials (and, here, the key, to make the object valid) puts
/// back our manifest with the same sequence number but fewer segments: that is a rollback of
/// our own log, reported, and our manifest is written again from the state.
#[test]
fn our_manifest_with_the_same_sequence_but_fewer_segments_is_a_rollback() {
    use bucketsync::testing::{self, Kind};
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::from_bytes([9; 32]);
    let me = DeviceId([0xA; 16]);
    let mut a = Engine::new(
        &key,
        folder_store(dir.path()),
        me,
        bucketsync_suite::entropy(),
    );
    a.put("first", "1", *T);
    block_sync(&mut a, &FolderBucket).unwrap();
    a.put("second", "2", Timestamp(T.0 + 1));
    block_sync(&mut a, &FolderBucket).unwrap();
    let path = own_manifest(dir.path(), &key, me);
    let name = format!("m/{me}");
    let (version, mut plain) =
        testing::open(&key, Kind::Manifest, &name, std::fs::read(&path).unwrap()).unwrap();
    // Postcard: the device's 16 bytes, then seq and segments, one byte each while small.
    assert_eq!((plain[16], plain[17]), (2, 2), "seq 2 naming 2 segments");
    plain[17] = 1;
    std::fs::write(
        &path,
        testing::seal(&key, Kind::Manifest, version, &name, &plain),
    )
    .unwrap();

    let report = block_sync(&mut a, &FolderBucket).unwrap();
    let rollbacks: Vec<String> = report
        .errors
        .iter()
        .filter(|e| e.category() == Category::Rollback)
        .map(|e| e.to_string())
        .collect();
    assert_eq!(rollbacks.len(), 1, "{report}");
    assert!(rollbacks[0].contains(&name), "{}", rollbacks[0]);
    assert_eq!(
        report.requests_of(RequestKind::PutManifest),
        1,
        "written again"
    );
    // A new device finds both writes.
    let mut c = Engine::new(
        &key,
        folder_store(dir.path()),
        DeviceId([0xC; 16]),
        bucketsync_suite::entropy(),
    );
    let report = block_sync(&mut c, &FolderBucket).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(c.keys(b""), vec![b"first".to_vec(), b"second".to_vec()]);
}

#[test]
fn a_replica_restored_from_a_backup_after_a_late_manifest_put_is_no_rollback_to_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::from_bytes([9; 32]);
    let me = DeviceId([0xA; 16]);
    let engine = |device| {
        Engine::new(
            &key,
            folder_store(dir.path()),
            device,
            bucketsync_suite::entropy(),
        )
    };
    let at = |ms: u64| Timestamp(T.0 + ms);
    let mut a = engine(me);
    let mut b = engine(DeviceId([0xB; 16]));
    a.put("first", "1", at(1));
    block_sync(&mut a, &FolderBucket).unwrap();
    // The backup the state goes back to, and the manifest of that moment (seq 1).
    let backup = a.export_state();
    let path = own_manifest(dir.path(), &key, me);
    let old_manifest = std::fs::read(&path).unwrap();
    for n in 2..=4 {
        a.put(format!("k{n}"), "a's", at(n));
        block_sync(&mut a, &FolderBucket).unwrap();
    }
    // B trusts A's fourth manifest, and publishes after it.
    b.put("b", "b's", at(5));
    block_sync(&mut b, &FolderBucket).unwrap();
    assert_eq!(b.get(b"k4"), Some(&b"a's"[..]));

    // A PUT of the first manifest, from a process killed long ago, lands now; then A's state
    // goes back to the backup.
    std::fs::write(&path, old_manifest).unwrap();
    let mut a = Engine::from_state(
        &key,
        folder_store(dir.path()),
        &backup,
        bucketsync_suite::entropy(),
    )
    .unwrap();
    a.put("after", "written after the restore", at(6));
    let report = block_sync(&mut a, &FolderBucket).unwrap();
    assert_eq!(a.get(b"k4"), Some(&b"a's"[..]), "fetched back: {report}");

    let report = block_sync(&mut b, &FolderBucket).unwrap();
    assert!(report.errors.is_empty(), "{report}: {:?}", report.errors);
    assert_eq!(b.get(b"after"), Some(&b"written after the restore"[..]));
}

const HOUR: u64 = 3_600_000;

/// A vault on the local-folder bucket whose policy runs in hours: a grace period of 8 hours (a
/// heartbeat: one hour), clocks within a second, a checkpoint whenever a segment was pushed
/// since the last one.
struct Hours {
    dir: tempfile::TempDir,
    key: VaultKey,
    policy: bucketsync::CompactionPolicy,
}

impl Hours {
    fn new(key: u8) -> Hours {
        Hours {
            dir: tempfile::tempdir().unwrap(),
            key: VaultKey::from_bytes([key; 32]),
            policy: bucketsync::CompactionPolicy {
                grace_ms: 8 * HOUR,
                max_clock_skew_ms: 1_000,
                min_tail_segments: 1,
                max_tail_segments: 1,
                bytes_ratio: 1,
                segment_overhead_bytes: 0,
                ..bucketsync::CompactionPolicy::default()
            },
        }
    }

    /// The same policy, but tails never make a checkpoint due.
    fn quiet(&self) -> bucketsync::CompactionPolicy {
        bucketsync::CompactionPolicy {
            min_tail_segments: u64::MAX,
            max_tail_segments: u64::MAX,
            ..self.policy
        }
    }

    fn at(hours: u64) -> Timestamp {
        Timestamp(T.0 + hours * HOUR)
    }

    fn engine(&self, id: DeviceId) -> Engine {
        let store = folder_store(self.dir.path());
        let mut e = Engine::new(&self.key, store, id, bucketsync_suite::entropy());
        e.set_compaction(self.policy);
        e
    }

    fn sync(&self, e: &mut Engine, hours: u64) -> bucketsync::SyncReport {
        bucketsync_suite::block_sync_at(e, &FolderBucket, || Hours::at(hours)).unwrap()
    }

    fn vault(&self) -> std::path::PathBuf {
        self.dir.path().join(self.key.vault_id().to_string())
    }
}

/// A replica that starts over leaves its old id's log behind (segments, and checkpoints that
/// each copy the whole vault), and nobody else may delete it. The new id closes it once its own
/// checkpoint covers it, and deletes it a heartbeat later; what the old id wrote still reaches
/// a device that joins, and the replica still answers to its old id.
#[test]
fn a_former_ids_segments_and_checkpoints_are_collected_and_its_writes_still_reach_a_new_device() {
    const A: DeviceId = DeviceId([0xA1; 16]);
    const B: DeviceId = DeviceId([0xB2; 16]);
    let hours = Hours::new(0x5a);
    let at = |h: u64| move || Hours::at(h);
    let engine = |id: DeviceId| hours.engine(id);
    let sync = |e: &mut Engine, h: u64| {
        let report = hours.sync(e, h);
        assert!(report.errors.is_empty(), "{report}");
        report
    };
    let vault = hours.vault();
    let objects = |folder: &str| -> usize {
        std::fs::read_dir(vault.join(folder)).map_or(0, |entries| entries.count())
    };
    let mut a = engine(A);
    let mut b = engine(B);
    // d merges the old id's first segment only, and is back within the grace period, after
    // the rest of that log is gone.
    let mut d = engine(DeviceId([0xD4; 16]));
    for k in ["a1", "a2"] {
        a.put(k, format!("value of {k}"), at(0)());
        sync(&mut a, 0);
        if k == "a1" {
            d.put("d1", "value of d1", at(0)());
            sync(&mut d, 0);
        }
    }
    b.put("b1", "value of b1", at(0)());
    sync(&mut b, 0);
    a.put("a3", "value of a3", at(0)());
    sync(&mut a, 0);
    let (segments, checkpoints) = (format!("s/{A}"), format!("c/{A}"));
    assert!(objects(&segments) >= 3 && objects(&checkpoints) >= 1);
    // b retires a; a starts over when it syncs next, as a new id.
    sync(&mut b, 1);
    b.retire(A).unwrap();
    sync(&mut b, 1);
    let report = sync(&mut a, 2);
    assert_eq!(report.started_over, Some(A), "{report}");
    let new_id = a.device();
    // Hours pass with both devices syncing now and then.
    for hour in [3, 4, 5] {
        sync(&mut a, hour);
        sync(&mut b, hour);
    }
    assert_eq!(
        (objects(&segments), objects(&checkpoints)),
        (0, 0),
        "the old id's log is gone"
    );
    // Its manifest stays, saying where the old log ended; the replica still answers to A.
    assert!(vault.join(format!("m/{A}")).exists());
    assert!(a.was_device(A) && a.device() == new_id);
    // d, back, and a device that joins get everything the old id wrote, from a checkpoint.
    let back = sync(&mut d, 7);
    let mut c = engine(DeviceId([0xC3; 16]));
    let joined = sync(&mut c, 7);
    for (e, report) in [(&d, &back), (&c, &joined)] {
        for k in ["a1", "a2", "a3", "b1", "d1"] {
            assert_eq!(
                e.get(k.as_bytes()),
                Some(format!("value of {k}").as_bytes()),
                "{k}: {report}"
            );
        }
    }
    // And nothing more is written or listed for the old id once a listing found it gone.
    let quiet = sync(&mut a, 8);
    assert_eq!(quiet.requests_of(RequestKind::ListSegments), 0, "{quiet}");
    assert_eq!(quiet.requests_of(RequestKind::PutCheckpoint), 0, "{quiet}");
}

/// After the close, the new id's checkpoint alone covers the old log. When it rots, a device
/// that lacks the old log is stranded; the new id reads its checkpoint back when it sees that,
/// and writes another.
#[test]
fn a_closed_former_log_whose_only_cover_rotted_gets_a_new_one() {
    const A: DeviceId = DeviceId([0xA1; 16]);
    let hours = Hours::new(0x5b);
    let at = |h: u64| move || Hours::at(h);
    let engine = |id: DeviceId| hours.engine(id);
    let sync = |e: &mut Engine, h: u64| hours.sync(e, h);
    // Only a writes checkpoints: b's and d's tails never make one due.
    let quiet = hours.quiet();
    let mut a = engine(A);
    let mut b = engine(DeviceId([0xB2; 16]));
    let mut d = engine(DeviceId([0xD4; 16]));
    b.set_compaction(quiet);
    d.set_compaction(quiet);
    a.put("a1", "value of a1", at(0)());
    sync(&mut a, 0);
    d.put("d1", "value of d1", at(0)());
    sync(&mut d, 0);
    a.put("a2", "value of a2", at(0)());
    sync(&mut a, 0);
    b.put("b1", "value of b1", at(0)());
    sync(&mut b, 0);
    sync(&mut b, 1);
    b.retire(A).unwrap();
    sync(&mut b, 1);
    assert_eq!(sync(&mut a, 2).started_over, Some(A));
    for hour in [3, 4, 5] {
        sync(&mut a, hour);
        sync(&mut b, hour);
    }
    let vault = hours.vault();
    assert!(
        !vault.join(format!("s/{A}")).exists()
            || vault
                .join(format!("s/{A}"))
                .read_dir()
                .unwrap()
                .next()
                .is_none()
    );
    // a's (new id's) checkpoints rot; from here on its tails never make one due either.
    a.set_compaction(quiet);
    for entry in std::fs::read_dir(vault.join(format!("c/{}", a.device()))).unwrap() {
        let path = entry.unwrap().path();
        let mut rotted = std::fs::read(&path).unwrap();
        let middle = rotted.len() / 2;
        rotted[middle] ^= 0x40;
        std::fs::write(&path, rotted).unwrap();
    }
    // d is back: it lacks a2, and nothing it can read has it.
    sync(&mut d, 6);
    assert_eq!(d.get(b"a2"), None);
    // a sees d stranded below its old id's closed log, reads its checkpoint back, writes one.
    let helping = sync(&mut a, 7);
    assert_eq!(
        helping.requests_of(RequestKind::PutCheckpoint),
        1,
        "{helping}"
    );
    let adopted = sync(&mut d, 7);
    assert_eq!(d.get(b"a2"), Some(&b"value of a2"[..]), "{adopted}");
}

/// A state restored from a backup taken while a write was unpushed, after a run this state
/// never knew pushed that write and another device deleted the key: the restored replica,
/// out of touch for longer than the grace period, starts over, and must not write the key
/// again as if it had never gone out (nothing deleted comes back).
///
/// FAILS TODAY (the deleted key comes back), kept to be run by hand
/// (`cargo test --test own_log -- --ignored`) until fixed. A fix must not guess from our
/// manifest in the store which writes the lost run pushed (a write made while that run's
/// sync was under way is not in its push, and a lost run's clock may be ahead of ours: both
/// would lose a write); it should read our segments that the store's manifest names back
/// first, and write again only what is still unpushed after that.
#[test]
#[ignore = "known failing: a restored state writes again what a run it never knew pushed"]
fn a_state_restored_from_a_backup_does_not_write_again_what_a_lost_run_pushed() {
    const DAY: u64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::from_bytes([0x5c; 32]);
    let at = |days: u64| move || Timestamp(T.0 + days * DAY);
    let sync = |e: &mut Engine, days: u64| {
        let report = bucketsync_suite::block_sync_at(e, &FolderBucket, at(days)).unwrap();
        assert!(report.errors.is_empty(), "{report}");
        report
    };
    let mut a = Engine::new(
        &key,
        folder_store(dir.path()),
        DeviceId([0xA1; 16]),
        bucketsync_suite::entropy(),
    );
    let mut b = Engine::new(
        &key,
        folder_store(dir.path()),
        DeviceId([0xB2; 16]),
        bucketsync_suite::entropy(),
    );
    a.put("note", "first draft", at(0)());
    sync(&mut a, 0);
    a.put("note", "second draft", at(0)());
    // The backup: the second draft is not pushed yet.
    let backup = a.export_state();
    let header = a.journal_header().unwrap();
    sync(&mut a, 0);
    sync(&mut b, 0);
    assert_eq!(b.get(b"note"), Some(&b"second draft"[..]));
    b.delete("note", at(1)());
    sync(&mut b, 1);
    sync(&mut a, 1);
    assert_eq!(a.get(b"note"), None);
    // Weeks later the phone is restored from that backup.
    let mut a = Engine::restore(
        &key,
        folder_store(dir.path()),
        &backup,
        &header,
        bucketsync_suite::entropy(),
    )
    .unwrap()
    .engine;
    let report = sync(&mut a, 45);
    assert!(report.started_over.is_some(), "{report}");
    sync(&mut b, 45);
    assert_eq!(a.get(b"note"), None, "{report}");
    assert_eq!(b.get(b"note"), None);
}
