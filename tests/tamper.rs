//! Damaged, moved, foreign and replayed objects are each reported with their category, for
//! that object only, and never stop valid objects from importing.

use std::fs;
use std::path::Path;

use bucketsync::folder::FolderBucket;
use bucketsync::{Category, DeviceId, Engine, Error, SyncReport, VaultKey};
use bucketsync_suite::generated::Generated;
use bucketsync_suite::{block_sync, bucket_files, folder_store, wall_clock};

const A: DeviceId = DeviceId([0xAA; 16]);
const B: DeviceId = DeviceId([0xBB; 16]);

/// A vault where A wrote two segments (a1..a3, then a4) and B one (b1, b2).
fn setup(dir: &Path) -> (VaultKey, Engine, Engine) {
    let key = VaultKey::generate().unwrap();
    let mut a = Engine::new(&key, folder_store(dir), A, bucketsync_suite::entropy());
    let mut b = Engine::new(&key, folder_store(dir), B, bucketsync_suite::entropy());
    for k in ["a1", "a2", "a3"] {
        a.put(k, format!("value of {k}"), wall_clock());
    }
    block_sync(&mut a, &FolderBucket).unwrap();
    a.put("a4", "value of a4", wall_clock());
    block_sync(&mut a, &FolderBucket).unwrap();
    b.put("b1", "value of b1", wall_clock());
    b.put("b2", "value of b2", wall_clock());
    block_sync(&mut b, &FolderBucket).unwrap();
    (key, a, b)
}

fn object(dir: &Path, key: &VaultKey, name: &str) -> std::path::PathBuf {
    dir.join(key.vault_id().to_string()).join(name)
}

/// A policy that writes a checkpoint at every sync that pushes a segment.
fn checkpoint_at_every_sync() -> bucketsync::CompactionPolicy {
    bucketsync::CompactionPolicy {
        min_tail_segments: 1,
        max_tail_segments: 1,
        bytes_ratio: 1,
        segment_overhead_bytes: 0,
        ..bucketsync::CompactionPolicy::default()
    }
}

fn seg(device: DeviceId, seq: u64) -> String {
    format!("s/{device}/{seq:016x}")
}

fn man(device: DeviceId) -> String {
    format!("m/{device}")
}

/// A fresh device reads the vault; the sync itself must succeed.
fn fresh_reader(dir: &Path, key: &VaultKey) -> (Engine, SyncReport) {
    let mut c = Engine::new(
        key,
        folder_store(dir),
        DeviceId([0xCC; 16]),
        bucketsync_suite::entropy(),
    );
    let report = block_sync(&mut c, &FolderBucket).expect("object errors do not fail a sync");
    (c, report)
}

fn only_error(report: &SyncReport) -> &Error {
    assert_eq!(
        report.errors.len(),
        1,
        "exactly one error expected: {:?}",
        report.errors
    );
    &report.errors[0]
}

fn has(engine: &Engine, keys: &[&str]) -> bool {
    keys.iter()
        .all(|k| engine.get(k.as_bytes()) == Some(format!("value of {k}").as_bytes()))
}

#[test]
fn any_flipped_byte_is_corrupt_for_that_object_only() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _, _) = setup(dir.path());
    let cases: [(String, &[&str], &[&str]); 3] = [
        // (object to damage, keys that must still import, keys that depend on it)
        (seg(A, 1), &["a4", "b1", "b2"], &["a1", "a2", "a3"]),
        (seg(B, 1), &["a1", "a2", "a3", "a4"], &["b1", "b2"]),
        (man(A), &["b1", "b2"], &["a1", "a4"]),
    ];
    for (name, still, lost) in cases {
        let path = object(dir.path(), &key, &name);
        let original = fs::read(&path).unwrap();
        for i in 0..original.len() {
            let mut bad = original.clone();
            bad[i] ^= 0x01 << (i % 8);
            fs::write(&path, &bad).unwrap();
            let (c, report) = fresh_reader(dir.path(), &key);
            let error = only_error(&report);
            assert_eq!(
                error.category(),
                Category::Corrupt,
                "{name} byte {i}: {error}"
            );
            assert!(error.to_string().contains(&name), "{error} names {name}");
            assert!(
                has(&c, still),
                "{name} byte {i}: valid objects still import"
            );
            assert!(lost.iter().all(|k| c.get(k.as_bytes()).is_none()));
        }
        fs::write(&path, &original).unwrap();
    }
    let (c, report) = fresh_reader(dir.path(), &key);
    assert!(report.errors.is_empty() && has(&c, &["a1", "a2", "a3", "a4", "b1", "b2"]));
}

#[test]
fn truncated_objects_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _, _) = setup(dir.path());
    let path = object(dir.path(), &key, &seg(B, 1));
    let original = fs::read(&path).unwrap();
    for len in [0, 3, 30, original.len() / 2, original.len() - 1] {
        fs::write(&path, &original[..len]).unwrap();
        let (c, report) = fresh_reader(dir.path(), &key);
        assert_eq!(
            only_error(&report).category(),
            Category::Corrupt,
            "length {len}"
        );
        assert!(has(&c, &["a1", "a2", "a3", "a4"]));
    }
}

#[test]
fn an_object_moved_to_another_devices_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _, _) = setup(dir.path());
    // A's first segment put where B's first segment belongs.
    fs::copy(
        object(dir.path(), &key, &seg(A, 1)),
        object(dir.path(), &key, &seg(B, 1)),
    )
    .unwrap();
    let (c, report) = fresh_reader(dir.path(), &key);
    let error = only_error(&report);
    assert_eq!(error.category(), Category::Corrupt);
    assert!(error.to_string().contains("moved here from"), "{error}");
    assert!(has(&c, &["a1", "a2", "a3", "a4"]) && c.get(b"b1").is_none());

    // A's manifest put where B's manifest belongs.
    let dir = tempfile::tempdir().unwrap();
    let (key, _, _) = setup(dir.path());
    fs::copy(
        object(dir.path(), &key, &man(A)),
        object(dir.path(), &key, &man(B)),
    )
    .unwrap();
    let (c, report) = fresh_reader(dir.path(), &key);
    let error = only_error(&report);
    assert!(error.to_string().contains("moved here from"), "{error}");
    assert!(has(&c, &["a1", "a2", "a3", "a4"]));
}

#[test]
fn objects_from_another_vault_are_wrong_vault() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _, _) = setup(dir.path());
    let other_dir = tempfile::tempdir().unwrap();
    let (other_key, _, _) = setup(other_dir.path());
    // The other vault's B manifest and segment copied over ours.
    for name in [man(B), seg(B, 1)] {
        fs::copy(
            object(other_dir.path(), &other_key, &name),
            object(dir.path(), &key, &name),
        )
        .unwrap();
    }
    let (c, report) = fresh_reader(dir.path(), &key);
    let error = only_error(&report);
    assert_eq!(error.category(), Category::WrongVault, "{error}");
    assert!(error.to_string().contains(&man(B)));
    assert!(has(&c, &["a1", "a2", "a3", "a4"]));

    // A local state is bound to its vault as well.
    let mut mine = Engine::new(
        &key,
        folder_store(dir.path()),
        A,
        bucketsync_suite::entropy(),
    );
    mine.put("x", "y", wall_clock());
    let err = Engine::from_state(
        &other_key,
        folder_store(dir.path()),
        &mine.export_state(),
        bucketsync_suite::entropy(),
    )
    .unwrap_err();
    assert_eq!(err.category(), Category::WrongVault);
}

#[test]
fn a_replayed_older_manifest_is_a_rollback_and_the_rest_imports() {
    let dir = tempfile::tempdir().unwrap();
    let (key, mut a, mut b) = setup(dir.path());
    let (mut c, report) = fresh_reader(dir.path(), &key);
    assert!(report.errors.is_empty());
    let old_manifest = fs::read(object(dir.path(), &key, &man(A))).unwrap();

    a.put("a5", "value of a5", wall_clock());
    block_sync(&mut a, &FolderBucket).unwrap();
    block_sync(&mut c, &FolderBucket).unwrap();
    assert!(has(&c, &["a5"]));

    // Someone puts A's older manifest back, while B goes on writing.
    fs::write(object(dir.path(), &key, &man(A)), &old_manifest).unwrap();
    b.put("b3", "value of b3", wall_clock());
    block_sync(&mut b, &FolderBucket).unwrap();
    let report = block_sync(&mut c, &FolderBucket).unwrap();
    let error = only_error(&report);
    assert_eq!(error.category(), Category::Rollback, "{error}");
    assert!(has(&c, &["a1", "a2", "a3", "a4", "a5", "b1", "b2", "b3"]));

    // A notices its own manifest went back and writes a newer one.
    let report = block_sync(&mut a, &FolderBucket).unwrap();
    assert_eq!(only_error(&report).category(), Category::Rollback);
    let report = block_sync(&mut c, &FolderBucket).unwrap();
    assert!(report.errors.is_empty(), "{report}");
}

#[test]
fn no_plaintext_key_or_value_reaches_the_bucket_or_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut a = Engine::new(
        &key,
        folder_store(dir.path()),
        A,
        bucketsync_suite::entropy(),
    );
    let mut b = Engine::new(
        &key,
        folder_store(dir.path()),
        B,
        bucketsync_suite::entropy(),
    );
    let secrets: Vec<(String, String)> = (0..50)
        .map(|i| {
            (
                format!("secret-key-{i:03}"),
                format!("sensitive value number {i:03}"),
            )
        })
        .collect();
    for (k, v) in &secrets[..25] {
        a.put(k.as_str(), v.as_str(), wall_clock());
    }
    for (k, v) in &secrets[25..] {
        b.put(k.as_str(), v.as_str(), wall_clock());
    }
    b.delete("secret-key-030", wall_clock());
    block_sync(&mut a, &FolderBucket).unwrap();
    block_sync(&mut b, &FolderBucket).unwrap();
    block_sync(&mut a, &FolderBucket).unwrap();
    assert_eq!(a.keys(b"").len(), 49, "the data did sync");
    let files = bucket_files(dir.path());
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names.len(),
        5,
        "two manifests, one segment from each device, and the change hint: {names:?}"
    );
    let mut state = a.export_state();
    // And the journal that follows it.
    a.put("secret-key-000", "sensitive-value-000 again", wall_clock());
    state.extend(a.poll_journal().expect("a write was journaled"));
    let mut needles: Vec<&[u8]> = Vec::new();
    for (k, v) in &secrets {
        needles.extend([k.as_bytes(), v.as_bytes()]);
    }
    needles.extend([b"secret-key".as_slice(), b"sensitive".as_slice()]);
    for needle in needles {
        for (name, bytes) in &files {
            assert!(
                !name.as_bytes().windows(needle.len()).any(|w| w == needle),
                "{name}"
            );
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "plaintext in {name}"
            );
        }
        assert!(
            !state.windows(needle.len()).any(|w| w == needle),
            "plaintext in local state"
        );
    }
}

#[test]
fn an_unreadable_segment_is_retried_alone_and_imports_once_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _, _) = setup(dir.path());
    let path = object(dir.path(), &key, &seg(A, 1));
    let original = fs::read(&path).unwrap();
    fs::write(&path, &original[..original.len() - 5]).unwrap();
    let mut c = Engine::new(
        &key,
        folder_store(dir.path()),
        DeviceId([0xCC; 16]),
        bucketsync_suite::entropy(),
    );
    let first = block_sync(&mut c, &FolderBucket).unwrap();
    assert_eq!(only_error(&first).category(), Category::Corrupt);
    assert!(has(&c, &["a4"]) && c.get(b"a1").is_none());
    // The next sync asks again for the broken segment only, not for the one after it.
    let second = block_sync(&mut c, &FolderBucket).unwrap();
    assert_eq!(
        second.requests_of(bucketsync::RequestKind::GetSegment),
        1,
        "{second}"
    );
    assert_eq!(only_error(&second).category(), Category::Corrupt);
    // Once the object reads well again (a flaky transfer, a restored backup), it imports.
    fs::write(&path, &original).unwrap();
    let third = block_sync(&mut c, &FolderBucket).unwrap();
    assert!(third.errors.is_empty(), "{third}");
    assert!(has(&c, &["a1", "a2", "a3", "a4", "b1", "b2"]));
    assert_eq!(block_sync(&mut c, &FolderBucket).unwrap().requests(), 1);
}

#[test]
fn a_segment_its_writer_sealed_unreadable_is_reported_once_and_passed_over() {
    use bucketsync::testing::{seal, Kind};
    let dir = tempfile::tempdir().unwrap();
    let (key, _, _) = setup(dir.path());
    // A's first segment, sealed with the vault's key (it authenticates) around a deflate
    // stream that does not inflate: whoever holds the key wrote it so, and a fetch never
    // reads it otherwise.
    let name = seg(A, 1);
    let unreadable = seal(
        &key,
        Kind::Segment,
        bucketsync::LOG_FORMAT_VERSION,
        &name,
        &[1, 0xff, 0xff, 0xff],
    );
    fs::write(object(dir.path(), &key, &name), unreadable).unwrap();
    let (mut c, first) = fresh_reader(dir.path(), &key);
    let error = only_error(&first);
    assert_eq!(error.category(), Category::Corrupt);
    assert!(error.to_string().contains(&name), "{error}");
    assert!(has(&c, &["a4", "b1", "b2"]) && c.get(b"a1").is_none());
    // Not fetched again, and not reported again: one object, one report.
    let second = block_sync(&mut c, &FolderBucket).unwrap();
    assert!(second.errors.is_empty(), "{second}");
    assert_eq!(
        second.requests_of(bucketsync::RequestKind::GetSegment),
        0,
        "{second}"
    );
}

#[test]
fn a_checkpoint_its_writer_sealed_unreadable_is_not_asked_for_again() {
    use bucketsync::testing::{seal, Kind};
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut a = Engine::new(
        &key,
        folder_store(dir.path()),
        A,
        bucketsync_suite::entropy(),
    );
    a.set_compaction(checkpoint_at_every_sync());
    for k in ["a1", "a2", "a3"] {
        a.put(k, format!("value of {k}"), wall_clock());
        block_sync(&mut a, &FolderBucket).unwrap();
    }
    let vault = dir.path().join(key.vault_id().to_string());
    let checkpoints: Vec<_> = fs::read_dir(vault.join(format!("c/{A}")))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!checkpoints.is_empty(), "a wrote a checkpoint");
    // Every checkpoint of a's authenticates around a plaintext that does not decode, and its
    // segments are gone (as if collected): a new device finds nothing it can read.
    for number in &checkpoints {
        let name = format!("c/{A}/{number}");
        let unreadable = seal(
            &key,
            Kind::Checkpoint,
            bucketsync::LOG_FORMAT_VERSION,
            &name,
            &[0, 0xff],
        );
        fs::write(vault.join(&name), unreadable).unwrap();
    }
    fs::remove_dir_all(vault.join(format!("s/{A}"))).unwrap();
    let (mut c, first) = fresh_reader(dir.path(), &key);
    assert!(
        first
            .errors
            .iter()
            .any(|e| e.category() == Category::Corrupt && e.to_string().contains("c/")),
        "{first}"
    );
    assert!(first.requests_of(bucketsync::RequestKind::GetCheckpoint) >= 1);
    // The same bytes would be read again: the checkpoint is not fetched a second time.
    let second = block_sync(&mut c, &FolderBucket).unwrap();
    assert_eq!(
        second.requests_of(bucketsync::RequestKind::GetCheckpoint),
        0,
        "{second}"
    );
}

#[test]
fn a_segment_rotted_in_the_bucket_is_read_from_a_checkpoint_that_covers_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut a = Engine::new(
        &key,
        folder_store(dir.path()),
        A,
        bucketsync_suite::entropy(),
    );
    // A vault big enough that a device which merged most of it finds a checkpoint not worth
    // fetching for a segment or two.
    for i in 0..300 {
        a.put(
            format!("big{i}"),
            Generated::new(i, 1024).to_vec(),
            wall_clock(),
        );
    }
    block_sync(&mut a, &FolderBucket).unwrap();
    let (mut c, _) = fresh_reader(dir.path(), &key);
    assert_eq!(c.get(b"big299").map(<[u8]>::len), Some(1024));
    // a writes two more segments, then a checkpoint covering all its log, and is gone: its
    // manifest names the checkpoint, and says none of its segments is deleted yet.
    a.put("a5", "value of a5", wall_clock());
    block_sync(&mut a, &FolderBucket).unwrap();
    a.put("a6", "value of a6", wall_clock());
    a.set_compaction(checkpoint_at_every_sync());
    block_sync(&mut a, &FolderBucket).unwrap();
    let vault = dir.path().join(key.vault_id().to_string());
    assert!(
        fs::read_dir(vault.join(format!("c/{A}"))).unwrap().count() > 0,
        "a wrote a checkpoint"
    );
    // The segment holding a5 rots in the bucket: one byte changed, for good.
    let path = object(dir.path(), &key, &seg(A, 2));
    let mut rotted = fs::read(&path).unwrap();
    let middle = rotted.len() / 2;
    rotted[middle] ^= 0x40;
    fs::write(&path, rotted).unwrap();
    // The rot is reported, and a5 comes from the checkpoint, which holds it.
    let first = block_sync(&mut c, &FolderBucket).unwrap();
    assert!(
        first
            .errors
            .iter()
            .any(|e| e.category() == Category::Corrupt && e.to_string().contains(&seg(A, 2))),
        "{first}"
    );
    assert!(has(&c, &["a6"]), "{first}");
    assert!(has(&c, &["a5"]), "a5 never reached c: {first}");
    // Past it for good: the rotted segment is not fetched again.
    let second = block_sync(&mut c, &FolderBucket).unwrap();
    assert!(second.errors.is_empty(), "{second}");
    assert_eq!(
        second.requests_of(bucketsync::RequestKind::GetSegment),
        0,
        "{second}"
    );
}

#[test]
fn a_device_whose_own_manifest_rotted_publishes_again() {
    let dir = tempfile::tempdir().unwrap();
    let (key, mut a, _) = setup(dir.path());
    let path = object(dir.path(), &key, &man(A));
    let mut rotted = fs::read(&path).unwrap();
    let middle = rotted.len() / 2;
    rotted[middle] ^= 0x40;
    fs::write(&path, rotted).unwrap();
    // Before, every sync of a failed on it, for good: nothing a wrote reached anyone again.
    a.put("a5", "value of a5", wall_clock());
    let first = block_sync(&mut a, &FolderBucket).expect("a damaged own manifest is rewritten");
    assert!(
        first
            .errors
            .iter()
            .any(|e| e.category() == Category::Corrupt && e.to_string().contains(&man(A))),
        "{first}"
    );
    assert_eq!(a.unpushed(), 0, "{first}");
    let second = block_sync(&mut a, &FolderBucket).unwrap();
    assert!(second.errors.is_empty(), "{second}");
    let (c, read) = fresh_reader(dir.path(), &key);
    assert!(read.errors.is_empty(), "{read}");
    assert!(
        has(&c, &["a1", "a2", "a3", "a4", "a5", "b1", "b2"]),
        "a: {first} / {second}; c: {read}"
    );
}

#[test]
fn a_retired_devices_rotted_manifest_holds_up_no_collection() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut a = Engine::new(
        &key,
        folder_store(dir.path()),
        A,
        bucketsync_suite::entropy(),
    );
    let mut b = Engine::new(
        &key,
        folder_store(dir.path()),
        B,
        bucketsync_suite::entropy(),
    );
    a.set_compaction(checkpoint_at_every_sync());
    let start = wall_clock().0;
    let at = |day: u64| bucketsync::Timestamp(start + day * 86_400_000);
    b.put("b1", "value of b1", at(0));
    bucketsync_suite::block_sync_at(&mut b, &FolderBucket, || at(0)).unwrap();
    bucketsync_suite::block_sync_at(&mut a, &FolderBucket, || at(0)).unwrap();
    // b's manifest rots, and b is gone for good: a's user retires it.
    let path = object(dir.path(), &key, &man(B));
    let mut rotted = fs::read(&path).unwrap();
    let middle = rotted.len() / 2;
    rotted[middle] ^= 0x40;
    fs::write(&path, rotted).unwrap();
    a.retire(B).unwrap();
    // a writes on, a day apart: its checkpoints cover its segments, which it then deletes.
    let segments = || {
        fs::read_dir(
            dir.path()
                .join(key.vault_id().to_string())
                .join(format!("s/{A}")),
        )
        .map_or(0, |d| d.count())
    };
    let mut deleted = 0;
    for day in 1..8 {
        a.put(format!("a{day}"), format!("value of a{day}"), at(day));
        let report = bucketsync_suite::block_sync_at(&mut a, &FolderBucket, || at(day)).unwrap();
        // b's manifest is read, and found damaged, at every sync.
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.category() == Category::Corrupt && e.to_string().contains(&man(B))),
            "{report}"
        );
        deleted += report.segments_deleted;
    }
    assert!(deleted > 0, "a deleted none of its {} segments", segments());
}

/// A checkpoint rotted after the segments it covers were deleted left every device that joined
/// since without what those segments held, for good while its writer wrote no newer one (a
/// device lost, or one that no longer writes): nobody else had reason to write a checkpoint
/// (the vault's best one covered everything). A caught-up device now reads the stranded
/// device's manifest (it merged fewer of a's segments than a deleted) and writes a checkpoint
/// of its own, which the stranded device adopts; once, and no other device writes one too.
#[test]
fn a_device_stranded_by_a_rotted_checkpoint_is_brought_past_by_a_peers_checkpoint() {
    const HOUR: u64 = 3_600_000;
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    // A grace period of 8 hours: segments go an hour (a heartbeat) after a manifest says so.
    // Clocks within a second of each other.
    let policy = bucketsync::CompactionPolicy {
        grace_ms: 8 * HOUR,
        max_clock_skew_ms: 1_000,
        ..checkpoint_at_every_sync()
    };
    let start = wall_clock().0;
    let at = |hours: u64| move || bucketsync::Timestamp(start + hours * HOUR);
    // Only a writes checkpoints by its policy; the others' tails never make one due.
    let quiet = bucketsync::CompactionPolicy {
        min_tail_segments: u64::MAX,
        max_tail_segments: u64::MAX,
        ..policy
    };
    let engine = |id: u8| {
        let mut e = Engine::new(
            &key,
            folder_store(dir.path()),
            DeviceId([id; 16]),
            bucketsync_suite::entropy(),
        );
        e.set_compaction(if id == 0xAA { policy } else { quiet });
        e
    };
    let sync = |e: &mut Engine, hours: u64| {
        bucketsync_suite::block_sync_at(e, &FolderBucket, at(hours))
            .expect("object errors do not fail a sync")
    };
    let mut a = engine(0xAA);
    let mut c = engine(0xCC);
    let mut d = engine(0xDD);
    for k in ["a1", "a2", "a3"] {
        a.put(k, format!("value of {k}"), at(0)());
        sync(&mut a, 0);
    }
    // Devices that write: each publishes its manifest.
    c.put("c1", "value of c1", at(0)());
    sync(&mut c, 0);
    assert!(has(&c, &["a1", "a2", "a3"]));
    d.put("d1", "value of d1", at(0)());
    sync(&mut d, 0);
    // a's checkpoint covers its log and its manifest says so; an hour later its segments go.
    sync(&mut a, 1);
    sync(&mut c, 1);
    let deleting = sync(&mut a, 3);
    assert!(
        deleting.requests_of(bucketsync::RequestKind::DeleteSegment) > 0,
        "a deleted its segments: {deleting}"
    );
    sync(&mut c, 3);
    sync(&mut d, 3);
    // Then a's checkpoint rots, and a is gone.
    let vault = dir.path().join(key.vault_id().to_string());
    let checkpoints: Vec<_> = fs::read_dir(vault.join(format!("c/{A}")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for path in &checkpoints {
        let mut rotted = fs::read(path).unwrap();
        let middle = rotted.len() / 2;
        rotted[middle] ^= 0x40;
        fs::write(path, rotted).unwrap();
    }
    // A device that joins is stranded: a's records are in no object it can read.
    let mut n = engine(0xEE);
    n.put("n1", "value of n1", at(4)());
    let joined = sync(&mut n, 4);
    assert!(!has(&n, &["a1"]) && has(&n, &["c1"]), "{joined}");
    assert!(
        joined
            .errors
            .iter()
            .any(|e| e.category() == Category::Corrupt),
        "{joined}"
    );
    // c reads n's manifest, and writes a checkpoint of its own.
    let helping = sync(&mut c, 5);
    assert_eq!(
        helping.requests_of(bucketsync::RequestKind::PutCheckpoint),
        1,
        "{helping}"
    );
    // Once: not again at c's next sync, nor by d, also caught up, which finds c's checkpoint
    // covering what n lacks.
    for (e, name) in [(&mut c, "c"), (&mut d, "d")] {
        let report = sync(e, 5);
        assert_eq!(
            report.requests_of(bucketsync::RequestKind::PutCheckpoint),
            0,
            "{name}: {report}"
        );
    }
    // n adopts it: everything a wrote reaches it.
    let adopted = sync(&mut n, 6);
    assert!(has(&n, &["a1", "a2", "a3", "c1", "d1"]), "{adopted}");
    // And once n is past, nobody writes more checkpoints for it.
    sync(&mut n, 7);
    for e in [&mut c, &mut d] {
        let after = sync(e, 8);
        assert_eq!(
            after.requests_of(bucketsync::RequestKind::PutCheckpoint),
            0,
            "{after}"
        );
    }
}

/// The same rot, with no other device to help: the deleting device reads its own checkpoint
/// back once it sees a device stranded below its deletion, finds it damaged, and writes a new
/// one.
#[test]
fn a_device_stranded_by_its_peers_rotted_checkpoint_is_brought_past_by_that_peer() {
    const HOUR: u64 = 3_600_000;
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let policy = bucketsync::CompactionPolicy {
        grace_ms: 8 * HOUR,
        max_clock_skew_ms: 1_000,
        ..checkpoint_at_every_sync()
    };
    let start = wall_clock().0;
    let at = |hours: u64| move || bucketsync::Timestamp(start + hours * HOUR);
    let engine = |id: u8| {
        let mut e = Engine::new(
            &key,
            folder_store(dir.path()),
            DeviceId([id; 16]),
            bucketsync_suite::entropy(),
        );
        e.set_compaction(policy);
        e
    };
    let sync = |e: &mut Engine, hours: u64| {
        bucketsync_suite::block_sync_at(e, &FolderBucket, at(hours))
            .expect("object errors do not fail a sync")
    };
    let mut a = engine(0xAA);
    for k in ["a1", "a2", "a3"] {
        a.put(k, format!("value of {k}"), at(0)());
        sync(&mut a, 0);
    }
    sync(&mut a, 1);
    let deleting = sync(&mut a, 3);
    assert!(
        deleting.requests_of(bucketsync::RequestKind::DeleteSegment) > 0,
        "a deleted its segments: {deleting}"
    );
    // From here on a's tails never make a checkpoint due.
    a.set_compaction(bucketsync::CompactionPolicy {
        min_tail_segments: u64::MAX,
        max_tail_segments: u64::MAX,
        ..policy
    });
    let vault = dir.path().join(key.vault_id().to_string());
    for entry in fs::read_dir(vault.join(format!("c/{A}"))).unwrap() {
        let path = entry.unwrap().path();
        let mut rotted = fs::read(&path).unwrap();
        let middle = rotted.len() / 2;
        rotted[middle] ^= 0x40;
        fs::write(&path, rotted).unwrap();
    }
    // n joins, stranded: a's records are in no object it can read.
    let mut n = engine(0xEE);
    n.put("n1", "value of n1", at(4)());
    let joined = sync(&mut n, 4);
    assert!(!has(&n, &["a1"]), "{joined}");
    // a reads n's manifest, reads its checkpoint back, and writes a new one.
    let helping = sync(&mut a, 5);
    assert_eq!(
        helping.requests_of(bucketsync::RequestKind::PutCheckpoint),
        1,
        "{helping}"
    );
    assert!(
        helping
            .errors
            .iter()
            .any(|e| e.category() == Category::Corrupt),
        "the damage is reported: {helping}"
    );
    let adopted = sync(&mut n, 6);
    assert!(has(&n, &["a1", "a2", "a3", "n1"]), "{adopted}");
    // Once: a reads its checkpoint back at most once a process, and n is past.
    for hours in [7, 8] {
        let after = sync(&mut a, hours);
        assert_eq!(
            after.requests_of(bucketsync::RequestKind::GetCheckpoint)
                + after.requests_of(bucketsync::RequestKind::PutCheckpoint),
            0,
            "{after}"
        );
    }
}
