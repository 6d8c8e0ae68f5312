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
