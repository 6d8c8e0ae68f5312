//! A vault that lives for years: checkpoints bound what a new device downloads, create and join
//! are told apart, devices have names, a mass deletion needs confirming, and a bucket and state
//! written by the previous release still open.

use std::path::Path;

use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::folder::FolderBucket;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::{Category, CompactionPolicy, Error, OpenMode, RequestKind, SyncReport, VaultKey};
use futures::executor::block_on;

/// A grace period no test outlives.
const CENTURY_MS: u64 = 100 * 365 * 86_400_000;

fn store_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

fn open_as(store: &str, key: &VaultKey, device: Option<&str>, mode: OpenMode) -> Session {
    try_open(store, key, device, mode, CompactionPolicy::default()).unwrap()
}

fn try_open(
    store: &str,
    key: &VaultKey,
    device: Option<&str>,
    mode: OpenMode,
    compaction: CompactionPolicy,
) -> bucketsync::Result<Session> {
    Session::open(SessionOptions {
        device,
        mode,
        compaction,
        ..SessionOptions::new(store, key, StateLocation::Memory)
    })
}

/// Options for a session whose state lives in the file `path` (and its journal beside it).
fn file_state<'a>(store: &'a str, key: &'a VaultKey, path: &'a Path) -> SessionOptions<'a> {
    SessionOptions::new(store, key, StateLocation::File { path, wait: false })
}

fn sync(session: &Session) -> bucketsync::Result<SyncReport> {
    block_on(session.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {}))
}

fn all(session: &Session) -> Vec<(Vec<u8>, Vec<u8>)> {
    session
        .keys(b"")
        .unwrap()
        .into_iter()
        .map(|k| {
            let v = session.get(&k).unwrap().unwrap();
            (k, v)
        })
        .collect()
}

/// `pushes` single-record pushes from each of `devices` devices, each syncing after every write.
fn history(store: &str, key: &VaultKey, devices: usize, pushes: usize, policy: CompactionPolicy) {
    let sessions: Vec<Session> = (0..devices)
        .map(|d| {
            try_open(
                store,
                key,
                Some(&format!("device {d}")),
                OpenMode::JoinOrCreate,
                policy,
            )
            .unwrap()
        })
        .collect();
    for i in 0..pushes {
        for (d, s) in sessions.iter().enumerate() {
            // Overwrites as well as new keys: a history longer than the live data.
            s.put(format!("k{}", (i * 7 + d) % 50), format!("v{i} from {d}"))
                .unwrap();
            sync(s).unwrap();
        }
    }
    for s in &sessions {
        sync(s).unwrap();
    }
}

#[test]
fn a_new_device_bootstraps_from_a_checkpoint_plus_short_tails() {
    for devices in [1, 5] {
        let dir = tempfile::tempdir().unwrap();
        let compacted = store_url(&dir.path().join("compacted"));
        let plain = store_url(&dir.path().join("plain"));
        let key = VaultKey::generate().unwrap();
        let pushes = 300 / devices;
        history(
            &compacted,
            &key,
            devices,
            pushes,
            CompactionPolicy::default(),
        );
        history(&plain, &key, devices, pushes, CompactionPolicy::NEVER);

        let new = open_as(&compacted, &key, None, OpenMode::Join);
        let report = sync(&new).unwrap();
        let before = open_as(&plain, &key, None, OpenMode::Join);
        let old_report = sync(&before).unwrap();
        assert_eq!(
            all(&new),
            all(&before),
            "{devices} devices: same vault either way"
        );
        assert_eq!(all(&new).len(), 50);

        // Without checkpoints: every segment ever written.
        assert_eq!(
            old_report.requests_of(RequestKind::GetSegment),
            (devices * pushes) as u64
        );
        // With them: 1 LIST + D manifests + 1 checkpoint + tails under the policy's minimum.
        assert_eq!(report.requests_of(RequestKind::List), 1);
        assert_eq!(report.requests_of(RequestKind::GetManifest), devices as u64);
        assert_eq!(report.requests_of(RequestKind::GetCheckpoint), 1);
        let tails = report.requests_of(RequestKind::GetSegment);
        assert!(
            tails < 16 + devices as u64,
            "{devices} devices: {tails} tail segments fetched"
        );
        assert!(
            report.bytes_received * 4 < old_report.bytes_received,
            "{devices} devices: {} bytes with checkpoints, {} without",
            report.bytes_received,
            old_report.bytes_received
        );
        assert_eq!(report.changed.len(), 50, "every key is new to a new device");

        // And an up-to-date replica's pull stays one listing.
        let again = sync(&new).unwrap();
        assert_eq!(again.requests(), 1, "{again}");
        assert!(again.changed.is_empty());
    }
}

#[test]
fn writes_go_on_across_compactions_and_an_old_replica_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let a = open_as(&store, &key, Some("a"), OpenMode::Create);
    let b = open_as(&store, &key, Some("b"), OpenMode::JoinOrCreate);
    sync(&a).unwrap();
    sync(&b).unwrap();
    let mut compactions = 0;
    for i in 0..100 {
        a.put(format!("k{i}"), "a").unwrap();
        if i % 10 == 0 {
            a.delete(format!("k{}", i / 2)).unwrap();
        }
        compactions += u32::from(sync(&a).unwrap().compacted);
    }
    assert!(
        compactions >= 5,
        "{compactions} checkpoints written in 100 pushes"
    );
    // Superseded checkpoints are deleted: the one a's manifest names and the one before it stay.
    let a_id = a.read(|e| e.device()).unwrap();
    let kept = std::fs::read_dir(
        dir.path()
            .join("bucket")
            .join(key.vault_id().to_string())
            .join("c")
            .join(a_id.to_string()),
    )
    .unwrap()
    .count();
    assert_eq!(kept, 2, "{compactions} written, {kept} kept");
    // b missed all of it; it takes the checkpoint (cheaper than 100 segments) and the tail.
    let report = sync(&b).unwrap();
    assert_eq!(
        report.requests_of(RequestKind::GetCheckpoint),
        1,
        "{report}"
    );
    assert_eq!(all(&a), all(&b));
    // Deletions survive compaction: a deleted key is a tombstone in the checkpoint.
    assert!(b.get(b"k0").unwrap().is_none());
    assert!(b.read(|e| e.record(b"k0").is_some()).unwrap());
    // b writes on top, a sees it.
    b.put("from-b", "1").unwrap();
    sync(&b).unwrap();
    let report = sync(&a).unwrap();
    assert_eq!(report.changed, vec![b"from-b".to_vec()]);
    assert_eq!(a.get(b"from-b").unwrap().as_deref(), Some(&b"1"[..]));
}

#[test]
fn join_fails_clearly_where_no_vault_exists_and_create_refuses_an_existing_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();

    // Nothing there at all.
    let lost = open_as(&store, &key, None, OpenMode::Join);
    lost.put("k", "v").unwrap();
    let err = sync(&lost).unwrap_err();
    assert_eq!(err.category(), Category::NotFound, "{err}");
    assert!(matches!(err, Error::NoVault { others: 0, .. }), "{err}");
    assert!(err.to_string().contains("no vault for this key"), "{err}");
    // Nothing was written under this key.
    assert!(!dir
        .path()
        .join("bucket")
        .join(key.vault_id().to_string())
        .exists());
    assert_eq!(lost.read(|e| e.unpushed()).unwrap(), 1, "the write is kept");

    // Another vault in the same prefix: a wrong key, probably.
    let other_key = VaultKey::generate().unwrap();
    let other = open_as(&store, &other_key, None, OpenMode::Create);
    sync(&other).unwrap();
    let err = sync(&lost).unwrap_err();
    assert!(matches!(err, Error::NoVault { others: 1, .. }), "{err}");
    assert!(err.to_string().contains("1 other vault"), "{err}");

    // Create publishes the vault even with no records; a second create is refused.
    let first = open_as(&store, &key, Some("first"), OpenMode::Create);
    let report = sync(&first).unwrap();
    assert_eq!(report.requests_of(RequestKind::PutManifest), 1);
    let second = open_as(&store, &key, Some("second"), OpenMode::Create);
    let err = sync(&second).unwrap_err();
    assert_eq!(err.category(), Category::Conflict, "{err}");
    assert!(err.to_string().contains("already exists"), "{err}");

    // Now the join works, and its kept write goes out.
    sync(&lost).unwrap();
    sync(&first).unwrap();
    assert_eq!(first.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    // Once joined, a replica is not checked again.
    assert!(sync(&first).is_ok());
}

#[test]
fn devices_have_names_and_a_last_push() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let state = dir.path().join("laptop.state");
    let open_file = |device: &str| {
        Session::open(SessionOptions {
            device: Some(device),
            ..file_state(&store, &key, &state)
        })
        .unwrap()
    };
    let laptop = open_file("Anna's laptop");
    let id = laptop.read(|e| e.device()).unwrap();
    laptop.put("x", "1").unwrap();
    sync(&laptop).unwrap();
    drop(laptop);
    // Opened again by name: the same device (its id is in the state), renamed.
    let laptop = open_file("Anna's old laptop");
    assert_eq!(laptop.read(|e| e.device()).unwrap(), id);
    sync(&laptop).unwrap();

    let phone = open_as(&store, &key, Some("phone"), OpenMode::Join);
    sync(&phone).unwrap();
    let devices = phone.devices(30 * 86_400_000).unwrap();
    assert_eq!(devices.len(), 2, "{devices:?}");
    let seen = devices.iter().find(|d| d.id == id).unwrap();
    assert_eq!(seen.label, "Anna's old laptop");
    assert!(seen.last_push_ms.is_some() && !seen.stale && !seen.this_device);
    let me = devices.iter().find(|d| d.this_device).unwrap();
    assert_eq!(me.label, "phone");
    // Everyone is stale when nothing counts as recent.
    assert!(phone
        .devices(0)
        .unwrap()
        .iter()
        .any(|d| d.id == id && d.stale));

    let err = Session::open(SessionOptions {
        device: Some(&"x".repeat(65)),
        ..SessionOptions::new(&store, &key, StateLocation::Memory)
    })
    .unwrap_err();
    assert_eq!(err.category(), Category::Config, "{err}");
}

#[test]
fn a_mass_deletion_waits_for_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let a = open_as(&store, &key, Some("a"), OpenMode::Create);
    for i in 0..40 {
        a.put(format!("k{i}"), "v").unwrap();
    }
    sync(&a).unwrap();
    // A few deletions pass.
    for i in 0..12 {
        a.delete(format!("k{i}")).unwrap();
    }
    sync(&a).unwrap();
    // Most of what is left does not.
    for i in 12..35 {
        a.delete(format!("k{i}")).unwrap();
    }
    a.put("new", "kept back too").unwrap();
    let err = sync(&a).unwrap_err();
    assert_eq!(err.category(), Category::Conflict, "{err}");
    assert!(
        matches!(
            err,
            Error::MassDeletion {
                deleting: 23,
                live: 29,
                limit_percent: 50
            }
        ),
        "{err}"
    );
    let b = open_as(&store, &key, Some("b"), OpenMode::Join);
    sync(&b).unwrap();
    assert_eq!(
        b.keys(b"").unwrap().len(),
        28,
        "nothing of that push went out"
    );
    a.confirm_deletions().unwrap();
    sync(&a).unwrap();
    sync(&b).unwrap();
    assert_eq!(b.keys(b"").unwrap().len(), 6);
    // The confirmation was for that push only.
    for i in 35..40 {
        a.delete(format!("k{i}")).unwrap();
    }
    assert!(
        sync(&a).is_ok(),
        "5 deletions are under the guard's minimum"
    );
}

/// Copies a directory tree.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// `tests/fixtures/release-1` was written by the previous release (format version 1, state
/// version 2, journal version 1): device a wrote a0..a4 and deleted a2; device b overwrote a1
/// and wrote b0.
#[test]
fn a_bucket_and_a_state_of_the_previous_release_are_read_and_carried_forward() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-1");
    assert!(
        fixture.join("a.state").is_file() && fixture.join("a.state.journal").is_file(),
        "the fixture's state and journal are in the repository"
    );
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::from_bytes([0x42; 32]);
    let expected: Vec<(Vec<u8>, Vec<u8>)> = [
        ("a0", "from a 0"),
        ("a1", "b overwrote a1"),
        ("a3", "from a 3"),
        ("a4", "from a 4"),
        ("b0", "from b"),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();

    // A new device joins the old bucket.
    let new = open_as(&store, &key, Some("new"), OpenMode::Join);
    sync(&new).unwrap();
    assert_eq!(all(&new), expected);

    // Device a restarts from its old state and journal, and writes on.
    let state = dir.path().join("a.state");
    let a = Session::open(SessionOptions {
        // The fixture's clock stands still while the calendar moves on: no grace period
        // passes in this test, whenever it runs (the next test lets one pass).
        compaction: CompactionPolicy {
            grace_ms: CENTURY_MS,
            ..CompactionPolicy::default()
        },
        ..file_state(&store, &key, &state)
    })
    .unwrap();
    assert_eq!(all(&a), expected);
    a.put("a5", "written by this release").unwrap();
    let report = sync(&a).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    drop(a);
    // Its journal was replaced by one of this release's layout.
    assert_eq!(
        std::fs::read(dir.path().join("a.state.journal")).unwrap()[4],
        10
    );

    sync(&new).unwrap();
    assert_eq!(
        new.get(b"a5").unwrap().as_deref(),
        Some(&b"written by this release"[..])
    );
    // The device that wrote the new objects is on this release's format now.
    let manifest = std::fs::read(
        dir.path()
            .join("bucket")
            .join(key.vault_id().to_string())
            .join("m/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    )
    .unwrap();
    assert_eq!(manifest[4], bucketsync::MANIFEST_VERSION);
}

/// `tests/fixtures/release-2` was written by release 2 (format version 2, state version 3,
/// journal version 2): device a ("laptop", checkpoints every 4 segments) wrote a0..a4 and
/// deleted a2; device b ("phone") overwrote a1 and wrote b0; a wrote a checkpoint, then pushed
/// a5, then wrote a6 without pushing it (it is only in a's journal).
#[test]
fn a_bucket_and_a_state_of_release_2_are_read_and_carried_forward() {
    let published = [
        ("a0", "from a 0"),
        ("a1", "b overwrote a1"),
        ("a3", "from a 3"),
        ("a4", "from a 4"),
        ("a5", "after the checkpoint"),
        ("b0", "from b"),
    ];
    carried_forward("release-2", [0x43; 32], &published, ("a6", "unpushed"));
}

/// What the fixtures of releases 3, 4 and 5 hold in their buckets (the same writes each time).
const PUBLISHED_SINCE_RELEASE_3: [(&str, &str); 8] = [
    ("a0", "from a 0"),
    ("a1", "b overwrote a1"),
    ("a3", "from a 3"),
    ("a4", "from a 4"),
    ("a5", "from a 5"),
    ("a6", "from a 6"),
    ("a7", "from a 7"),
    ("b0", "from b"),
];

/// `tests/fixtures/release-3` was written by release 3 (format version 3,
/// state version 4, journal version 3): as release 2, but a pushed a5..a7 after b's writes
/// (two checkpoints of a's, the older one swept), and a8 is the write only in a's journal.
#[test]
fn a_bucket_and_a_state_of_release_3_are_read_and_carried_forward() {
    carried_forward(
        "release-3",
        [0x44; 32],
        &PUBLISHED_SINCE_RELEASE_3,
        ("a8", "unpushed"),
    );
}

/// `tests/fixtures/release-4` was written by release 4 (format version 4,
/// state version 5, journal version 4), as release 3 (its key is `[0x45; 32]`, a's
/// checkpoints every 4 segments): a wrote a0..a4 and deleted a2, b overwrote a1 and wrote b0,
/// a pushed a5..a7, and a8 is the write only in a's journal.
#[test]
fn a_bucket_and_a_state_of_release_4_are_read_and_carried_forward() {
    carried_forward(
        "release-4",
        [0x45; 32],
        &PUBLISHED_SINCE_RELEASE_3,
        ("a8", "unpushed"),
    );
}

/// `tests/fixtures/release-5` was written by release 5, the one before this (format version 6,
/// state version 7, journal version 6), as release 4 with the key `[0x46; 32]`.
#[test]
fn a_bucket_and_a_state_of_release_5_are_read_and_carried_forward() {
    carried_forward(
        "release-5",
        [0x46; 32],
        &PUBLISHED_SINCE_RELEASE_3,
        ("a8", "unpushed"),
    );
}

/// `tests/fixtures/release-6` was written by release 6 (format version 6,
/// state version 8 with a pack collection look, journal version 7), by
/// `writes_this_releases_fixture` below with the key `[0x47; 32]`: as release 5, plus the file
/// `file/ten-kib` in a pack of a's.
#[test]
fn a_bucket_and_a_state_of_release_6_are_read_and_carried_forward() {
    let ten_kib: Vec<u8> = (0..10_240u32).map(|i| (i * 7 % 251) as u8).collect();
    carried_forward_with_files(
        "release-6",
        [0x47; 32],
        &PUBLISHED_SINCE_RELEASE_3,
        ("a8", "unpushed"),
        &[("file/ten-kib", &ten_kib)],
    );
}

/// `tests/fixtures/release-7` was written by release 7, the one before this (format version 7,
/// state version 9, journal version 8: before sharing signed anything), by
/// `writes_this_releases_fixture` below with the key `[0x48; 32]`: as release 6.
#[test]
fn a_bucket_and_a_state_of_release_7_are_read_and_carried_forward() {
    let ten_kib: Vec<u8> = (0..10_240u32).map(|i| (i * 7 % 251) as u8).collect();
    carried_forward_with_files(
        "release-7",
        [0x48; 32],
        &PUBLISHED_SINCE_RELEASE_3,
        ("a8", "unpushed"),
        &[("file/ten-kib", &ten_kib)],
    );
}

/// `tests/fixtures/release-8` was written by release 8 (format version 9:
/// packs and chunks of version 6, file values of layout 2; state version 10, journal version
/// 9), by `writes_this_releases_fixture` below at commit c2b2eb0 with the key `[0x49; 32]`: as
/// release 7. Then a writes the same file again under another key: its chunk, of version 6, is
/// not referenced by the new file value (layout 4), but stored again as version 10, deflated.
#[test]
fn a_bucket_and_a_state_of_release_8_are_read_and_carried_forward() {
    let ten_kib: Vec<u8> = (0..10_240u32).map(|i| (i * 7 % 251) as u8).collect();
    carried_forward_with_files(
        "release-8",
        [0x49; 32],
        &PUBLISHED_SINCE_RELEASE_3,
        ("a8", "unpushed"),
        &[("file/ten-kib", &ten_kib)],
    );

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-8");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::from_bytes([0x49; 32]);
    let a = Session::open(SessionOptions {
        compaction: CompactionPolicy {
            grace_ms: CENTURY_MS,
            ..CompactionPolicy::default()
        },
        ..file_state(&store, &key, &dir.path().join("a.state"))
    })
    .unwrap();
    let old = a.get(b"file/ten-kib").unwrap().unwrap();
    assert_eq!(
        &old[..5],
        b"BKSF\x02",
        "a file value of layout 2 (chunks of version 6)"
    );
    let mut source = bucketsync::files::ReadSource::new(&ten_kib[..], Some(10_240));
    let report = block_on(a.put_file(
        "file/again",
        &mut source,
        &FolderBucket,
        None,
        DEFAULT_CONCURRENCY,
        |_| {},
    ))
    .unwrap();
    assert_eq!(
        (report.chunks_uploaded, report.chunks_reused),
        (1, 0),
        "{report:?}"
    );
    // 10 KiB of a repeating pattern, deflated.
    assert!(report.bytes_sent < 2_000, "{report:?}");
    let new_value = a.get(b"file/again").unwrap().unwrap();
    assert_eq!(
        &new_value[..9],
        b"BKSF\x04\0\0\0\0",
        "layout 4, generation 0"
    );
    // Stored again once: a third copy references the version 10 chunk.
    let mut source = bucketsync::files::ReadSource::new(&ten_kib[..], Some(10_240));
    let report = block_on(a.put_file(
        "file/third",
        &mut source,
        &FolderBucket,
        None,
        DEFAULT_CONCURRENCY,
        |_| {},
    ))
    .unwrap();
    assert_eq!(
        (report.chunks_uploaded, report.chunks_reused),
        (0, 1),
        "{report:?}"
    );
    let report = sync(&a).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    drop(a);
    let new = open_as(&store, &key, Some("new"), OpenMode::Join);
    sync(&new).unwrap();
    for file in ["file/ten-kib", "file/again", "file/third"] {
        let mut read = Vec::new();
        let found = block_on(new.get_file(
            file.as_bytes(),
            &mut bucketsync::files::WriteSink(&mut read),
            &FolderBucket,
            DEFAULT_CONCURRENCY,
            |_| {},
        ))
        .unwrap();
        assert!(found && read == ten_kib, "{file}");
    }
}

/// `tests/fixtures/release-9` was written by release 9, the one before this (format version 10:
/// packs and chunks of version 10, file values of layout 4; state version 10, journal version
/// 9), by `writes_this_releases_fixture` below at commit 113b3bf with the key `[0x4a; 32]`, as
/// release 7. Its journal is replayed (a8 is only there) and then replaced by one of this
/// release's journal version.
#[test]
fn a_bucket_and_a_state_of_release_9_are_read_and_carried_forward() {
    let ten_kib: Vec<u8> = (0..10_240u32).map(|i| (i * 7 % 251) as u8).collect();
    let journal = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-9/a.state.journal"),
    )
    .unwrap();
    assert_eq!(
        &journal[..5],
        b"BKSJ\x09",
        "the fixture's journal is of version 9"
    );
    carried_forward_with_files(
        "release-9",
        [0x4a; 32],
        &PUBLISHED_SINCE_RELEASE_3,
        ("a8", "unpushed"),
        &[("file/ten-kib", &ten_kib)],
    );
}

/// Writes the fixture that the *next* release reads in its carried-forward test: run it by hand
/// with the release that is about to be replaced, before changing a format, as
/// `BUCKETSYNC_FIXTURE_DIR=tests/fixtures/release-N BUCKETSYNC_FIXTURE_KEY=47 cargo test -p
/// bucketsync-suite --test lifecycle -- --ignored writes_this_releases_fixture` (the key is one byte,
/// in hex, repeated 32 times). Device a ("laptop", a checkpoint every 4 segments) writes a0..a4
/// and deletes a2; b ("phone") overwrites a1 and writes b0; a pushes a5..a7 and the file
/// `file/ten-kib` (one chunk in one pack), syncs again (a caught-up sync holding a file: it
/// looks at its packs), and writes a8 without pushing it: a8 is only in a's journal.
#[test]
#[ignore = "writes a fixture for the next release; run by hand"]
fn writes_this_releases_fixture() {
    let dir = std::path::PathBuf::from(
        std::env::var_os("BUCKETSYNC_FIXTURE_DIR").expect("set BUCKETSYNC_FIXTURE_DIR"),
    );
    let byte = std::env::var("BUCKETSYNC_FIXTURE_KEY").expect("set BUCKETSYNC_FIXTURE_KEY");
    let key = VaultKey::from_bytes([u8::from_str_radix(&byte, 16).expect("one hex byte"); 32]);
    assert!(
        !dir.join("bucket").exists(),
        "{} holds a fixture already",
        dir.display()
    );
    std::fs::create_dir_all(&dir).unwrap();
    let store = store_url(&dir.join("bucket"));
    let every_4 = CompactionPolicy {
        min_tail_segments: 4,
        max_tail_segments: 4,
        ..CompactionPolicy::default()
    };
    let state = dir.join("a.state");
    let a = Session::open(SessionOptions {
        device: Some("laptop"),
        mode: OpenMode::Create,
        compaction: every_4,
        ..file_state(&store, &key, &state)
    })
    .unwrap();
    for i in 0..5 {
        a.put(format!("a{i}"), format!("from a {i}")).unwrap();
        sync(&a).unwrap();
    }
    a.delete("a2").unwrap();
    sync(&a).unwrap();
    let b = open_as(&store, &key, Some("phone"), OpenMode::Join);
    sync(&b).unwrap();
    b.put("a1", "b overwrote a1").unwrap();
    b.put("b0", "from b").unwrap();
    sync(&b).unwrap();
    sync(&a).unwrap();
    for i in 5..8 {
        a.put(format!("a{i}"), format!("from a {i}")).unwrap();
        sync(&a).unwrap();
    }
    let ten_kib: Vec<u8> = (0..10_240u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut source = bucketsync::files::ReadSource::new(&ten_kib[..], Some(10_240));
    block_on(a.put_file(
        "file/ten-kib",
        &mut source,
        &FolderBucket,
        None,
        DEFAULT_CONCURRENCY,
        |_| {},
    ))
    .unwrap();
    let pushed = sync(&a).unwrap();
    sync(&b).unwrap();
    let again = sync(&a).unwrap();
    // Caught up, holding a file: a looked at its packs (and found none unreferenced).
    let looks =
        pushed.requests_of(RequestKind::ListPacks) + again.requests_of(RequestKind::ListPacks);
    assert_eq!(looks, 1, "{pushed}\n{again}");
    a.put("a8", "unpushed").unwrap();
    drop(a);
}

/// A new device joins a fixture's bucket through a's checkpoint; a restarts from the fixture's
/// state and journal, finds its unpushed write there and pushes it in this release's format.
fn carried_forward(
    fixture: &str,
    key: [u8; 32],
    published: &[(&str, &str)],
    unpushed: (&str, &str),
) {
    carried_forward_with_files(fixture, key, published, unpushed, &[]);
}

/// As [`carried_forward`], where the fixture also holds `files` (keys under `file/`, left out
/// of the record comparisons): each reads back whole on the new device and on a.
fn carried_forward_with_files(
    fixture: &str,
    key: [u8; 32],
    published: &[(&str, &str)],
    unpushed: (&str, &str),
    files: &[(&str, &[u8])],
) {
    let records = |session: &Session| -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut all = all(session);
        all.retain(|(k, _)| !k.starts_with(b"file/"));
        all
    };
    let files_read_back = |session: &Session| {
        for (key, bytes) in files {
            let mut read = Vec::new();
            let found = block_on(session.get_file(
                key.as_bytes(),
                &mut bucketsync::files::WriteSink(&mut read),
                &FolderBucket,
                DEFAULT_CONCURRENCY,
                |_| {},
            ))
            .unwrap();
            assert!(found, "{key} is missing");
            assert!(read == *bytes, "{key} does not read back whole");
        }
    };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::from_bytes(key);
    let pairs = |list: &[(&str, &str)]| -> Vec<(Vec<u8>, Vec<u8>)> {
        list.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    };

    // A new device joins the old bucket through a's checkpoint, and knows the labels.
    let new = open_as(&store, &key, Some("new"), OpenMode::Join);
    let report = sync(&new).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.requests_of(RequestKind::GetCheckpoint), 1);
    assert_eq!(records(&new), pairs(published));
    files_read_back(&new);
    let mut labels: Vec<String> = new
        .devices(u64::MAX)
        .unwrap()
        .into_iter()
        .map(|d| d.label)
        .collect();
    labels.sort();
    assert_eq!(labels, ["laptop", "new", "phone"]);

    // Device a restarts from its state and journal: its unpushed write is there, and goes out.
    let state = dir.path().join("a.state");
    let a = Session::open(SessionOptions {
        // The fixture's clock stands still while the calendar moves on: no grace period
        // passes in this test, whenever it runs (another test lets one pass).
        compaction: CompactionPolicy {
            grace_ms: CENTURY_MS,
            ..CompactionPolicy::default()
        },
        ..file_state(&store, &key, &state)
    })
    .unwrap();
    let mut with_unpushed = published.to_vec();
    with_unpushed.push(unpushed);
    with_unpushed.sort();
    assert_eq!(records(&a), pairs(&with_unpushed));
    let report = sync(&a).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.pushed, 1);
    files_read_back(&a);
    let a_id = a.device().unwrap();
    drop(a);
    // Its journal was replaced by one of this release's layout.
    assert_eq!(
        std::fs::read(dir.path().join("a.state.journal")).unwrap()[4],
        10
    );
    sync(&new).unwrap();
    assert_eq!(records(&new), pairs(&with_unpushed));
    let manifest = std::fs::read(
        dir.path()
            .join("bucket")
            .join(key.vault_id().to_string())
            .join(format!("m/{a_id}")),
    )
    .unwrap();
    assert_eq!(manifest[4], bucketsync::MANIFEST_VERSION);
}

/// A state from the release before this one has no record of its last caught-up sync: its last
/// activity stands in. Opened two months later, it starts over, and its unpushed write (only in
/// its journal) goes out under the new id.
#[test]
fn a_state_of_release_2_left_for_two_months_starts_over() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-2");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::from_bytes([0x43; 32]);
    let state = dir.path().join("a.state");
    let open = |clock: std::sync::Arc<dyn Fn() -> bucketsync::Timestamp + Send + Sync>| {
        Session::open(SessionOptions {
            clock,
            ..file_state(&store, &key, &state)
        })
        .unwrap()
    };
    let a = open(bucketsync::session::system_clock());
    let last_activity = a.read(|e| e.clock().wall_ms).unwrap();
    drop(a);
    let later = last_activity + 60 * 86_400_000;
    let a = open(std::sync::Arc::new(move || bucketsync::Timestamp(later)));
    let old_id = a.device().unwrap();
    let report = sync(&a).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.started_over, Some(old_id));
    assert_eq!(report.restamped, vec![b"a6".to_vec()]);
    assert_ne!(a.device().unwrap(), old_id);
    drop(a);
    // An app that names the device by its old id still opens its state.
    let old_hex = old_id.to_string();
    let again = Session::open(SessionOptions {
        device: Some(&old_hex),
        ..file_state(&store, &key, &state)
    })
    .unwrap();
    drop(again);
    let zero_grace = Session::open(SessionOptions {
        compaction: CompactionPolicy {
            grace_ms: 0,
            ..CompactionPolicy::default()
        },
        ..SessionOptions::new(&store, &key, StateLocation::Memory)
    });
    assert_eq!(zero_grace.unwrap_err().category(), Category::Config);
    // On the same clock: two months after the state's last activity may still be in the real
    // future, and a reader holds stamps more than a week ahead of its own (tests/clocks.rs).
    let new = Session::open(SessionOptions {
        device: Some("new"),
        mode: OpenMode::Join,
        clock: std::sync::Arc::new(move || bucketsync::Timestamp(later)),
        ..SessionOptions::new(&store, &key, StateLocation::Memory)
    })
    .unwrap();
    sync(&new).unwrap();
    assert_eq!(new.get(b"a6").unwrap().as_deref(), Some(&b"unpushed"[..]));
    assert_eq!(new.get(b"a2").unwrap(), None);
}

#[test]
fn a_concurrent_loser_stays_readable_in_history_on_both_devices() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let a = open_as(&store, &key, Some("a"), OpenMode::Create);
    sync(&a).unwrap();
    let state = dir.path().join("b.state");
    let open_b = || {
        Session::open(SessionOptions {
            device: Some("b"),
            mode: OpenMode::Join,
            ..file_state(&store, &key, &state)
        })
        .unwrap()
    };
    let b = open_b();
    sync(&b).unwrap();

    // Both edit the same note before either syncs: a's edit is later, so it wins.
    b.put("note", "b's edit").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    a.put("note", "a's edit").unwrap();
    let a_report = sync(&a).unwrap();
    assert!(
        a_report.conflicts.is_empty(),
        "a had nothing to compare yet"
    );
    let b_report = sync(&b).unwrap();
    assert_eq!(
        b_report.conflicts,
        vec![b"note".to_vec()],
        "b's unpushed edit lost"
    );
    assert_eq!(b_report.changed, vec![b"note".to_vec()]);
    sync(&a).unwrap();

    for (name, session) in [("a", &a), ("b", &b)] {
        let versions = session.read(|e| e.history(b"note")).unwrap();
        let values: Vec<Option<&[u8]>> = versions.iter().map(|v| v.value.as_deref()).collect();
        assert_eq!(
            values,
            vec![Some(&b"a's edit"[..]), Some(&b"b's edit"[..])],
            "{name}: the winner, then the loser"
        );
        assert!(versions[0].stamp > versions[1].stamp);
    }

    // Overwrites and deletions go into history too, newest first; it survives a restart (the
    // journal carries it) and a compaction.
    a.put("note", "third").unwrap();
    a.delete("note").unwrap();
    sync(&a).unwrap();
    sync(&b).unwrap();
    drop(b);
    let b = open_b();
    let versions = b.read(|e| e.history(b"note")).unwrap();
    assert_eq!(
        versions.len(),
        3,
        "{versions:?}: b never saw \"third\" (a overwrote it before pushing)"
    );
    assert_eq!(versions[0].value, None, "the deletion is current");
    assert_eq!(versions[1].value.as_deref(), Some(&b"a's edit"[..]));
    assert_eq!(versions[2].value.as_deref(), Some(&b"b's edit"[..]));
    let a_versions = a.read(|e| e.history(b"note")).unwrap();
    assert_eq!(a_versions.len(), 4, "a saw its own \"third\"");
    b.configure(|e| {
        e.set_compaction(CompactionPolicy {
            min_tail_segments: 1,
            max_tail_segments: 1,
            bytes_ratio: 1,
            segment_overhead_bytes: 0,
            ..CompactionPolicy::default()
        })
    })
    .unwrap();
    b.put("other", "x").unwrap();
    assert!(sync(&b).unwrap().compacted);
    assert_eq!(b.read(|e| e.history(b"note")).unwrap().len(), 3);
    // The policy bounds it.
    b.configure(|e| {
        e.set_history_policy(bucketsync::HistoryPolicy {
            versions: 1,
            max_age_ms: u64::MAX,
        })
    })
    .unwrap();
    b.put("note", "again").unwrap();
    assert_eq!(
        b.read(|e| e.history(b"note")).unwrap().len(),
        2,
        "current + 1"
    );
}

#[test]
fn a_device_whose_own_manifest_is_the_vault_joins_it() {
    // A create whose state was lost (or whose answer was lost), reopened to join.
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let id = "0123456789abcdef0123456789abcdef";
    let first = open_as(&store, &key, Some(id), OpenMode::Create);
    first.put("k", "v").unwrap();
    sync(&first).unwrap();
    drop(first);
    let again = open_as(&store, &key, Some(id), OpenMode::Join);
    sync(&again).unwrap();
    assert_eq!(again.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

/// A wall clock the test moves by hand.
#[derive(Clone)]
struct TestClock(std::sync::Arc<std::sync::atomic::AtomicU64>);

const DAY: u64 = 86_400_000;

impl TestClock {
    fn new() -> Self {
        TestClock(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
            1_767_225_600_000,
        )))
    }
    fn advance_days(&self, days: u64) {
        self.0
            .fetch_add(days * DAY, std::sync::atomic::Ordering::SeqCst);
    }
    /// A session on this clock that writes a checkpoint whenever a sync has a new tail segment.
    fn open(&self, store: &str, key: &VaultKey, device: &str, mode: OpenMode) -> Session {
        let every_sync = CompactionPolicy {
            min_tail_segments: 1,
            max_tail_segments: 1,
            bytes_ratio: 1,
            segment_overhead_bytes: 0,
            ..CompactionPolicy::default()
        };
        self.open_with(store, key, device, mode, every_sync)
    }

    fn open_with(
        &self,
        store: &str,
        key: &VaultKey,
        device: &str,
        mode: OpenMode,
        compaction: CompactionPolicy,
    ) -> Session {
        let now = self.0.clone();
        Session::open(SessionOptions {
            device: Some(device),
            mode,
            compaction,
            clock: std::sync::Arc::new(move || {
                bucketsync::Timestamp(now.load(std::sync::atomic::Ordering::SeqCst))
            }),
            ..SessionOptions::new(store, key, StateLocation::Memory)
        })
        .unwrap()
    }
}

/// The case exactly: a device goes offline, a key is deleted elsewhere, the tombstone
/// is collected, the device comes back. Nothing it held comes back; its offline edit does.
#[test]
fn an_offline_device_returns_after_tombstones_were_collected_and_resurrects_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let clock = TestClock::new();
    let a = clock.open(&store, &key, "a", OpenMode::Create);
    a.put("doomed", "old value").unwrap();
    a.put("keep", "kept").unwrap();
    sync(&a).unwrap();
    let b = clock.open(&store, &key, "b", OpenMode::Join);
    let c = clock.open(&store, &key, "c", OpenMode::Join);
    sync(&b).unwrap();
    sync(&c).unwrap();
    assert_eq!(
        c.get(b"doomed").unwrap().as_deref(),
        Some(&b"old value"[..])
    );
    let c_id = c.device().unwrap();

    // c goes offline and edits a note; b deletes "doomed".
    c.put("note", "c's offline edit").unwrap();
    clock.advance_days(1);
    b.delete("doomed").unwrap();
    sync(&b).unwrap();
    sync(&a).unwrap();

    // Weeks pass; a and b keep working. The tombstone is collected once it is past the grace
    // period (30 days plus twice the clock skew) and b has merged a's previous checkpoint.
    let mut collected = 0;
    for day in 0..45 {
        clock.advance_days(1);
        a.put("a's diary", format!("day {day}")).unwrap();
        collected += sync(&a).unwrap().collected;
        b.put("b's diary", format!("day {day}")).unwrap();
        sync(&b).unwrap();
    }
    assert_eq!(collected, 1, "a collected the tombstone of \"doomed\"");
    assert!(
        a.read(|e| e.record(b"doomed").cloned()).unwrap().is_none(),
        "a forgot the tombstone"
    );

    // A new device starts from a's checkpoint: no trace of "doomed".
    let fresh = clock.open(&store, &key, "fresh", OpenMode::Join);
    let report = sync(&fresh).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(fresh.get(b"doomed").unwrap(), None);
    assert!(fresh
        .read(|e| e.record(b"doomed").cloned())
        .unwrap()
        .is_none());

    // c comes back: it starts over under a new id, its offline edit is applied again.
    let report = sync(&c).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.started_over, Some(c_id));
    assert_eq!(report.restamped, vec![b"note".to_vec()]);
    assert_ne!(c.device().unwrap(), c_id);
    assert_eq!(c.get(b"doomed").unwrap(), None, "c's old view is gone");
    assert_eq!(c.get(b"keep").unwrap().as_deref(), Some(&b"kept"[..]));
    assert_eq!(
        c.get(b"note").unwrap().as_deref(),
        Some(&b"c's offline edit"[..])
    );
    for s in [&a, &b, &fresh, &c] {
        sync(s).unwrap();
    }
    for s in [&a, &b, &fresh] {
        assert_eq!(s.get(b"doomed").unwrap(), None);
        assert_eq!(
            s.get(b"note").unwrap().as_deref(),
            Some(&b"c's offline edit"[..])
        );
        assert_eq!(all(s), all(&c));
    }
    // Everyone knows c's old id is retired (c never published under it, so it is not listed).
    assert!(a.read(|e| e.is_retired(c_id)).unwrap());
    assert!(!a.devices(u64::MAX).unwrap().iter().any(|d| d.id == c_id));
}

/// Without a grace period passed, nothing is collected even when every device has merged.
#[test]
fn tombstones_inside_the_grace_period_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let clock = TestClock::new();
    let a = clock.open(&store, &key, "a", OpenMode::Create);
    a.put("doomed", "x").unwrap();
    sync(&a).unwrap();
    a.delete("doomed").unwrap();
    sync(&a).unwrap();
    let mut collected = 0;
    for day in 0..20 {
        clock.advance_days(1);
        a.put("diary", format!("day {day}")).unwrap();
        collected += sync(&a).unwrap().collected;
    }
    assert_eq!(collected, 0);
    let fresh = clock.open(&store, &key, "fresh", OpenMode::Join);
    sync(&fresh).unwrap();
    assert!(fresh
        .read(|e| e.record(b"doomed").cloned())
        .unwrap()
        .is_some_and(|r| r.value.is_none()));
}

/// A device retired from another one starts over when it syncs again, and its unpushed write
/// survives.
#[test]
fn a_retired_device_starts_over_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let clock = TestClock::new();
    let a = clock.open(&store, &key, "a", OpenMode::Create);
    sync(&a).unwrap();
    let b = clock.open(&store, &key, "b", OpenMode::Join);
    b.put("from b", "1").unwrap();
    sync(&b).unwrap();
    let b_id = b.device().unwrap();
    sync(&a).unwrap();
    assert_eq!(
        a.retire(a.device().unwrap()).unwrap_err().category(),
        Category::Config
    );
    a.retire(b_id).unwrap();
    sync(&a).unwrap();

    b.put("from b", "2, written before b knew").unwrap();
    let report = sync(&b).unwrap();
    assert_eq!(report.started_over, Some(b_id));
    assert_eq!(report.restamped, vec![b"from b".to_vec()]);
    sync(&a).unwrap();
    assert_eq!(
        a.get(b"from b").unwrap().as_deref(),
        Some(&b"2, written before b knew"[..])
    );
    let devices = a.devices(u64::MAX).unwrap();
    assert!(devices.iter().any(|d| d.id == b_id && d.retired));
    assert!(devices
        .iter()
        .any(|d| d.id == b.device().unwrap() && !d.retired));
}

/// Segment collection: a device deletes its segments that a checkpoint covers, a heartbeat
/// period (grace / 8) after its manifest said it would. A device that fell behind meanwhile and
/// a new device both start from a checkpoint; nothing is lost and nothing deleted comes back.
#[test]
fn covered_segments_are_deleted_and_a_reader_that_needed_them_adopts_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = store_url(&bucket);
    let key = VaultKey::generate().unwrap();
    let clock = TestClock::new();
    let a = clock.open(&store, &key, "a", OpenMode::Create);
    a.put("a's first", "1").unwrap();
    sync(&a).unwrap();
    let behind = clock.open(&store, &key, "behind", OpenMode::Join);
    behind.put("behind's", "mine").unwrap();
    sync(&behind).unwrap();
    let a_id = a.device().unwrap();
    let segments_of_a = || {
        std::fs::read_dir(
            bucket
                .join(key.vault_id().to_string())
                .join(format!("s/{a_id}")),
        )
        .unwrap()
        .count()
    };

    // a writes on; "behind" stops syncing.
    for i in 0..10 {
        a.put(format!("k{i}"), format!("v{i}")).unwrap();
        if i == 4 {
            a.delete("a's first").unwrap();
        }
        let report = sync(&a).unwrap();
        assert_eq!(report.segments_deleted, 0, "not before a heartbeat period");
    }
    assert_eq!(segments_of_a(), 11);

    // Past the heartbeat period, a's next sync deletes what its checkpoints cover.
    clock.advance_days(4);
    a.put("late", "after four days").unwrap();
    let report = sync(&a).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert!(report.segments_deleted >= 10, "{report}");
    assert_eq!(segments_of_a() as u64, 12 - report.segments_deleted);

    // The device that fell behind cannot fetch those segments: it adopts a's checkpoint.
    let report = sync(&behind).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(
        report.requests_of(RequestKind::GetCheckpoint),
        1,
        "{report}"
    );
    assert_eq!(all(&behind), all(&a));
    assert_eq!(behind.get(b"a's first").unwrap(), None);

    // A new device: one LIST, the manifests, one checkpoint and the short tails.
    let fresh = clock.open(&store, &key, "fresh", OpenMode::Join);
    let report = sync(&fresh).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(
        report.requests_of(RequestKind::GetCheckpoint),
        1,
        "{report}"
    );
    assert!(report.requests_of(RequestKind::GetSegment) <= 2, "{report}");
    assert_eq!(all(&fresh), all(&a));
    for s in [&a, &behind, &fresh] {
        let report = sync(s).unwrap();
        assert!(report.errors.is_empty(), "{report}");
    }
    assert_eq!(all(&behind), all(&a));
}

/// Serves one stale copy of a manifest, once, as a store would to a reader that fetched it
/// just before its device published a newer one; everything else from the folder.
struct StaleManifestOnce {
    name: String,
    old: Vec<u8>,
    served: std::cell::Cell<bool>,
}

impl bucketsync::driver::Transport for StaleManifestOnce {
    async fn send(&self, request: bucketsync::Request) -> bucketsync::Result<bucketsync::Response> {
        if request.kind == RequestKind::GetManifest
            && request.url.ends_with(&self.name)
            && !self.served.replace(true)
        {
            return Ok(bucketsync::Response {
                status: 200,
                headers: Vec::new(),
                body: self.old.clone(),
            });
        }
        FolderBucket.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        FolderBucket.sleep(ms).await
    }
}

/// A reader whose view of a manifest is older than the segments it names (they were deleted
/// meanwhile) meets a 404, reads the manifests again and goes on from a checkpoint: no error.
#[test]
fn a_reader_that_meets_a_deleted_segment_reads_the_manifest_again() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = store_url(&bucket);
    let key = VaultKey::generate().unwrap();
    let clock = TestClock::new();
    let a = clock.open(&store, &key, "a", OpenMode::Create);
    a.put("k0", "v0").unwrap();
    sync(&a).unwrap();
    let reader = clock.open(&store, &key, "reader", OpenMode::Join);
    reader.put("reader's", "mine").unwrap();
    sync(&reader).unwrap();
    let name = format!("m/{}", a.device().unwrap());
    let manifest = bucket.join(key.vault_id().to_string()).join(&name);
    a.put("k1", "v1").unwrap();
    sync(&a).unwrap();
    let old = std::fs::read(&manifest).unwrap();
    for i in 2..8 {
        a.put(format!("k{i}"), format!("v{i}")).unwrap();
        sync(&a).unwrap();
    }
    clock.advance_days(4);
    let report = sync(&a).unwrap();
    assert!(report.segments_deleted >= 2, "{report}");

    let stale = StaleManifestOnce {
        name,
        old,
        served: std::cell::Cell::new(false),
    };
    let report = block_on(reader.sync(&stale, DEFAULT_CONCURRENCY, |_| {})).unwrap();
    assert!(stale.served.get());
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.requests_of(RequestKind::List), 2, "{report}");
    assert_eq!(
        report.requests_of(RequestKind::GetCheckpoint),
        1,
        "{report}"
    );
    assert_eq!(all(&reader), all(&a));
}

/// A device deletes its segments only up to what a checkpoint it wrote or opened itself covers:
/// a reference in another device's manifest could name a damaged object.
#[test]
fn segments_are_not_deleted_on_the_word_of_a_checkpoint_nobody_opened() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = store_url(&bucket);
    let key = VaultKey::generate().unwrap();
    let clock = TestClock::new();
    let a = clock.open(&store, &key, "a", OpenMode::Create);
    sync(&a).unwrap();
    // b never writes a checkpoint, and has no reason to adopt one: it is always caught up.
    let b = clock.open_with(&store, &key, "b", OpenMode::Join, CompactionPolicy::NEVER);
    for i in 0..4 {
        b.put(format!("b{i}"), "from b").unwrap();
        sync(&b).unwrap();
        // a's checkpoints cover b's segments.
        a.put(format!("a{i}"), "from a").unwrap();
        assert!(sync(&a).unwrap().compacted);
    }
    clock.advance_days(4);
    b.put("b4", "from b").unwrap();
    let report = sync(&b).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(report.segments_deleted, 0, "{report}");
    // a deletes its own: its checkpoints are its own.
    a.put("a4", "from a").unwrap();
    assert!(sync(&a).unwrap().segments_deleted > 0);
    let fresh = clock.open(&store, &key, "fresh", OpenMode::Join);
    let report = sync(&fresh).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(all(&fresh), all(&a));
}

/// The clock margin of garbage collection, directed: a's clock runs 5 days ahead of b's and
/// c's, as far apart as the policy allows. c goes offline with an unpushed edit of a key, made
/// an hour before b deletes that key. By a's clock, c has been silent for longer than the grace
/// period 5 days before c, by its own clock, has: c comes back before its own grace period is
/// over, so it does not start over, and pushes its edit with its old stamp. The margin (twice
/// the allowed skew) keeps c active until it returns, so nothing c may hold is collected: c
/// merges the deletion, and its edit loses to it. With the margin removed from the code, a
/// collects the tombstone while c is away (the first assertion fails); in this schedule the
/// checkpoint's horizon then still keeps c's older edit out, so the deletion stands either way.
#[test]
fn a_device_back_just_within_its_grace_period_brings_back_nothing_when_clocks_are_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let clock = TestClock::new();
    let skew = 5 * DAY;
    let policy = CompactionPolicy {
        min_tail_segments: 1,
        max_tail_segments: 1,
        bytes_ratio: 1,
        segment_overhead_bytes: 0,
        max_clock_skew_ms: skew,
        max_future_ms: 4 * skew,
        ..CompactionPolicy::default()
    };
    let open = |device: &str, mode: OpenMode, offset_ms: u64| {
        let now = clock.0.clone();
        Session::open(SessionOptions {
            device: Some(device),
            mode,
            compaction: policy,
            clock: std::sync::Arc::new(move || {
                let now = now.load(std::sync::atomic::Ordering::SeqCst);
                bucketsync::Timestamp(now + offset_ms)
            }),
            ..SessionOptions::new(&store, &key, StateLocation::Memory)
        })
        .unwrap()
    };
    let b = open("b", OpenMode::Create, 0);
    b.put("doomed", "old value").unwrap();
    sync(&b).unwrap();
    let c = open("c", OpenMode::Join, 0);
    sync(&c).unwrap();

    // c goes offline and edits "doomed"; an hour later b deletes it. Then a joins.
    c.put("doomed", "c's offline edit").unwrap();
    clock
        .0
        .fetch_add(DAY / 24, std::sync::atomic::Ordering::SeqCst);
    b.delete("doomed").unwrap();
    sync(&b).unwrap();
    let a = open("a", OpenMode::Join, skew);
    sync(&a).unwrap();

    // 29 days (c's grace period is 30 by its own clock): a and b keep working, each syncing
    // twice a day.
    let mut collected = 0;
    for half_day in 0..58 {
        clock
            .0
            .fetch_add(DAY / 2, std::sync::atomic::Ordering::SeqCst);
        a.put("a's diary", format!("{half_day}")).unwrap();
        collected += sync(&a).unwrap().collected;
        b.put("b's diary", format!("{half_day}")).unwrap();
        collected += sync(&b).unwrap().collected;
    }
    assert_eq!(
        collected, 0,
        "c is active: nothing it may hold is collected"
    );

    // c comes back within its grace period: no start-over, its edit goes out as it was.
    let report = sync(&c).unwrap();
    assert_eq!(report.started_over, None, "{report}");
    let fresh = open("fresh", OpenMode::Join, 0);
    for s in [&a, &b, &c, &fresh, &a, &b, &c, &fresh] {
        sync(s).unwrap();
    }
    for (name, s) in [("a", &a), ("b", &b), ("c", &c), ("fresh", &fresh)] {
        assert_eq!(
            s.get(b"doomed").unwrap(),
            None,
            "the deletion stands on {name}"
        );
        assert_eq!(all(s), all(&a), "{name} agrees with a");
    }
}
