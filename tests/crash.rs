//! A crash between any two steps of a sync loses nothing and duplicates nothing.
//!
//! The sync is driven one request at a time, persisting the way a host does: a snapshot at the
//! start, then the journal entry after every input, before any request goes out. For every step
//! `k`, a run is cut after the store executed request `k` but before the replica handled its
//! answer, and the replica restarts from its snapshot and journal. Then it syncs normally, and
//! a fresh device checks the store holds every write exactly once.

use std::path::Path;

use bucketsync::folder::FolderBucket;
use bucketsync::{DeviceId, Engine, Timestamp, VaultKey};
use bucketsync_suite::{block_sync, folder_store};

/// The tests' clock: the present, as the wall-clock syncs beside it read it (a reader holds
/// stamps more than a week ahead of its own clock).
static T: std::sync::LazyLock<Timestamp> = std::sync::LazyLock::new(bucketsync_suite::wall_clock);

/// B has written to the vault; A has local writes, including one to a key B also wrote.
fn scenario(dir: &Path, key: &VaultKey) -> Engine {
    let mut b = Engine::new(
        key,
        folder_store(dir),
        DeviceId([0xB; 16]),
        bucketsync_suite::entropy(),
    );
    for i in 0..5 {
        b.put(format!("b{i}"), "from b", *T);
    }
    b.put("shared", "b's version", *T);
    block_sync(&mut b, &FolderBucket).unwrap();
    let mut a = Engine::new(
        key,
        folder_store(dir),
        DeviceId([0xA; 16]),
        bucketsync_suite::entropy(),
    );
    for i in 0..7 {
        a.put(format!("a{i}"), "from a", Timestamp(T.0 + 10));
    }
    a.put("shared", "a's version", Timestamp(T.0 + 10));
    a.delete("b0", Timestamp(T.0 + 10));
    a
}

/// What a host has on disk: a snapshot and the journal after it.
struct Disk {
    snapshot: Vec<u8>,
    journal: Vec<u8>,
}

impl Disk {
    fn append(&mut self, a: &mut Engine) {
        if let Some(entry) = a.poll_journal() {
            self.journal.extend_from_slice(&entry);
        }
    }
}

/// Runs A's sync one request at a time. Returns the number of requests executed and A's disk.
/// With `cut = Some(k)`, stops right after the store executed request `k`, before A learns of
/// it.
fn stepwise(a: &mut Engine, cut: Option<usize>) -> (usize, Disk) {
    let snapshot = a.export_state();
    let mut disk = Disk {
        snapshot,
        journal: a.journal_header().unwrap(),
    };
    let mut executed = 0;
    a.start_sync(*T).unwrap();
    disk.append(a);
    loop {
        let batch: Vec<_> = std::iter::from_fn(|| a.poll_request(*T)).collect();
        disk.append(a);
        if batch.is_empty() {
            break;
        }
        for request in batch {
            let response = FolderBucket.execute(&request);
            executed += 1;
            if cut == Some(executed) {
                return (executed, disk);
            }
            a.handle_response(request.id, Ok(response), *T);
            disk.append(a);
        }
    }
    a.poll_outcome().expect("finished").expect("sync succeeds");
    (executed, disk)
}

#[test]
fn a_crash_between_any_two_steps_loses_and_duplicates_nothing() {
    let key = VaultKey::generate().unwrap();
    let probe = tempfile::tempdir().unwrap();
    let mut a = scenario(probe.path(), &key);
    let (steps, _) = stepwise(&mut a, None);
    assert_eq!(
        steps, 7,
        "list, B's manifest, B's segment, put segment, the same create again (whether the store \
         refuses it: the first small push asks), put manifest, put the change hint"
    );
    let expected: Vec<Vec<u8>> = a.keys(b"");

    for cut in 1..=steps {
        let dir = tempfile::tempdir().unwrap();
        let mut a = scenario(dir.path(), &key);
        let (_, disk) = stepwise(&mut a, Some(cut));
        // The crash: all that survives is what is on disk.
        let restored = Engine::restore(
            &key,
            folder_store(dir.path()),
            &disk.snapshot,
            &disk.journal,
            bucketsync_suite::entropy(),
        )
        .unwrap();
        assert_eq!(restored.journal_keep, Some(disk.journal.len()), "cut {cut}");
        let mut a = restored.engine;
        let report = block_sync(&mut a, &FolderBucket).unwrap();
        assert!(report.errors.is_empty(), "cut {cut}: {report}");
        assert_eq!(a.keys(b""), expected, "cut {cut}: nothing lost locally");
        assert_eq!(a.unpushed(), 0, "cut {cut}");
        assert_eq!(a.get(b"shared"), Some(&b"a's version"[..]));
        assert_eq!(a.get(b"b0"), None, "cut {cut}: the delete holds");

        // A second sync has nothing left to do.
        let again = block_sync(&mut a, &FolderBucket).unwrap();
        assert_eq!(again.requests(), 1, "cut {cut}: {again}");

        // A new device finds every write exactly once: 6 from B, 9 from A.
        let mut c = Engine::new(
            &key,
            folder_store(dir.path()),
            DeviceId([0xC; 16]),
            bucketsync_suite::entropy(),
        );
        let report = block_sync(&mut c, &FolderBucket).unwrap();
        assert_eq!(
            report.pulled, 15,
            "cut {cut}: each write stored once: {report}"
        );
        assert_eq!(c.keys(b""), expected, "cut {cut}");
    }
}

#[test]
fn a_replica_restarted_from_an_old_state_catches_up_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut a = scenario(dir.path(), &key);
    let before = a.export_state();
    block_sync(&mut a, &FolderBucket).unwrap();
    a.put("later", "x", Timestamp(T.0 + 20));
    block_sync(&mut a, &FolderBucket).unwrap();

    // The state file is restored from a backup made before both syncs.
    let mut old = Engine::from_state(
        &key,
        folder_store(dir.path()),
        &before,
        bucketsync_suite::entropy(),
    )
    .unwrap();
    let report = block_sync(&mut old, &FolderBucket).unwrap();
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(old.keys(b""), a.keys(b""));
    assert_eq!(old.unpushed(), 0);
    let mut c = Engine::new(
        &key,
        folder_store(dir.path()),
        DeviceId([0xC; 16]),
        bucketsync_suite::entropy(),
    );
    assert_eq!(block_sync(&mut c, &FolderBucket).unwrap().pulled, 6 + 9 + 1);
}
