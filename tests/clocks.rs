//! Clocks that lie: a write stamped far in the future neither wins nor drags other devices'
//! clocks along, and a device whose own clock ran ahead and came back starts over.

use bucketsync::folder::FolderBucket;
use bucketsync::{Category, DeviceId, Engine, Error, SyncReport, Timestamp, VaultKey};
use bucketsync_suite::{folder_store, wall_clock};

const A: DeviceId = DeviceId([0xAA; 16]);
const B: DeviceId = DeviceId([0xBB; 16]);
const C: DeviceId = DeviceId([0xCC; 16]);
const DAY: u64 = 86_400_000;
const YEAR: u64 = 365 * DAY;

/// One sync with the device's wall clock `offset_ms` ahead of the real one.
fn sync_ahead(engine: &mut Engine, offset_ms: u64) -> SyncReport {
    bucketsync_suite::block_sync_at(engine, &FolderBucket, move || {
        Timestamp(wall_clock().0.saturating_add(offset_ms))
    })
    .expect("a clock error is reported, it does not fail the sync")
}

fn ahead(offset_ms: u64) -> Timestamp {
    Timestamp(wall_clock().0.saturating_add(offset_ms))
}

/// The clock errors of a report that hold an object, as (device, object).
fn clock_errors(report: &SyncReport) -> Vec<(DeviceId, String)> {
    report
        .errors
        .iter()
        .filter(|e| e.category() == Category::Clock)
        .filter_map(|e| match e {
            Error::ClockAhead { device, object, .. } => {
                Some((DeviceId::parse(device).unwrap(), object.clone()))
            }
            Error::ClockApart { .. } => None,
            other => panic!("a clock error that is neither ClockAhead nor ClockApart: {other:?}"),
        })
        .collect()
}

/// The clock errors of a report that hold nothing (a manifest stamped ahead by more than two
/// clocks may be apart), as (device, how far ahead).
fn clocks_apart(report: &SyncReport) -> Vec<(DeviceId, u64)> {
    report
        .errors
        .iter()
        .filter_map(|e| match e {
            Error::ClockApart {
                device, ahead_ms, ..
            } => Some((DeviceId::parse(device).unwrap(), *ahead_ms)),
            _ => None,
        })
        .collect()
}

/// The devices the clock errors of a report name.
fn clock_devices(report: &SyncReport) -> Vec<DeviceId> {
    clock_errors(report).into_iter().map(|(d, _)| d).collect()
}

fn engine(dir: &std::path::Path, key: &VaultKey, device: DeviceId) -> Engine {
    Engine::new(key, folder_store(dir), device, bucketsync_suite::entropy())
}

#[test]
fn a_write_from_decades_ahead_neither_wins_nor_moves_other_clocks() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut a = engine(dir.path(), &key, A);
    let mut b = engine(dir.path(), &key, B);
    b.put("shared", "b's first", wall_clock());
    sync_ahead(&mut b, 0);

    // A's clock runs 80 years ahead.
    a.put("shared", "from 2106", ahead(80 * YEAR));
    a.put("only-a", "from 2106", ahead(80 * YEAR));
    sync_ahead(&mut a, 80 * YEAR);

    let report = sync_ahead(&mut b, 0);
    assert_eq!(clock_devices(&report), [A], "{:?}", report.errors);
    assert!(b.clock().wall_ms <= wall_clock().0 + DAY, "{:?}", b.clock());
    let message = report.errors[0].to_string();
    assert!(message.contains(&format!("m/{A}")), "{message}");
    // 80 years less the moments between the write and this sync, in whole tenths of a day.
    assert!(
        message.contains(" is stamped 29199.9 days ahead")
            || message.contains(" is stamped 29200.0 days ahead"),
        "{message}"
    );
    assert_eq!(b.get(b"shared"), Some(&b"b's first"[..]));
    assert_eq!(b.get(b"only-a"), None, "held until B's clock gets there");

    // B writes after A did, in real time: B's write is the one a new device sees.
    b.put("shared", "b's second", wall_clock());
    sync_ahead(&mut b, 0);
    let mut c = engine(dir.path(), &key, C);
    let report = sync_ahead(&mut c, 0);
    assert_eq!(clock_errors(&report).len(), 1, "{:?}", report.errors);
    assert_eq!(c.get(b"shared"), Some(&b"b's second"[..]));
    assert!(c.clock().wall_ms <= wall_clock().0 + DAY);
}

#[test]
fn what_a_device_wrote_before_its_clock_ran_ahead_reaches_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut a = engine(dir.path(), &key, A);
    let mut b = engine(dir.path(), &key, B);
    // A writes in the present, then its date jumps 20 days ahead (beyond the bound of 7, within
    // the grace period of 30) before it syncs: its segment holds both writes, and its manifest
    // is stamped 20 days ahead.
    sync_ahead(&mut a, 0);
    a.put("before", "written in the present", wall_clock());
    a.put("after", "written 20 days ahead", ahead(20 * DAY));
    let report = sync_ahead(&mut a, 20 * DAY);
    assert_eq!(report.started_over, None);

    let report = sync_ahead(&mut b, 0);
    assert_eq!(
        clock_devices(&report),
        [A],
        "said once: {:?}",
        report.errors
    );
    assert_eq!(b.get(b"before"), Some(&b"written in the present"[..]));
    assert_eq!(b.get(b"after"), None, "held until B's clock gets there");
    assert!(b.clock().wall_ms <= wall_clock().0 + DAY, "{:?}", b.clock());

    // The held segment is read again at each sync; nothing else changes, and B is caught up:
    // it writes and compacts as any device does.
    let again = sync_ahead(&mut b, 0);
    assert_eq!(clock_devices(&again), [A], "{:?}", again.errors);
    assert!(again.changed.is_empty(), "{:?}", again.changed);
    b.put("b", "b's", wall_clock());
    sync_ahead(&mut b, 0);
    let mut c = engine(dir.path(), &key, C);
    sync_ahead(&mut c, 0);
    assert_eq!(c.get(b"before"), Some(&b"written in the present"[..]));
    assert_eq!(c.get(b"b"), Some(&b"b's"[..]));
    assert_eq!(c.get(b"after"), None);
}

#[test]
fn a_writer_at_the_end_of_time_does_not_stop_other_clocks() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut a = engine(dir.path(), &key, A);
    let mut b = engine(dir.path(), &key, B);
    a.put("k", "at u64::MAX", Timestamp(u64::MAX));
    sync_ahead(&mut a, u64::MAX);
    let report = sync_ahead(&mut b, 0);
    assert_eq!(clock_errors(&report).len(), 1, "{:?}", report.errors);
    let first = b.put("k", "now", wall_clock());
    let second = b.put("k", "later", wall_clock());
    assert!(first.hlc < second.hlc && second.hlc.wall_ms < u64::MAX / 2);
}

#[test]
fn stamps_within_the_bound_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut a = engine(dir.path(), &key, A);
    let mut b = engine(dir.path(), &key, B);
    // Six days ahead: within the default seven, so merged; but further apart than two clocks
    // may be (twice the default skew of a day), so reported.
    a.put("k", "six days ahead", ahead(6 * DAY));
    sync_ahead(&mut a, 6 * DAY);
    let report = sync_ahead(&mut b, 0);
    assert_eq!(b.get(b"k"), Some(&b"six days ahead"[..]));
    assert!(clock_errors(&report).is_empty(), "{:?}", report.errors);
    let apart = clocks_apart(&report);
    assert!(
        matches!(apart[..], [(A, ms)] if ms > 5 * DAY && ms <= 6 * DAY),
        "{:?}",
        report.errors
    );
}

/// The skew the policy allows: each clock within a day of the true time, so two clocks at most
/// two days apart. A device whose manifests are stamped further ahead than that, though within
/// the seven days beyond which they are held, is reported by every sync while it lasts (its
/// records merged all the same); one within the margin is not. A clock *behind* is reported
/// by the devices it is behind (here c reports b), whose manifests are ahead of it.
#[test]
fn a_clock_further_apart_than_the_skew_allows_is_reported_at_each_sync() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut a = engine(dir.path(), &key, A);
    let mut b = engine(dir.path(), &key, B);
    let mut c = engine(dir.path(), &key, C);
    a.put("a", "from a, 1.5 days ahead", ahead(3 * DAY / 2));
    sync_ahead(&mut a, 3 * DAY / 2);
    b.put("b", "from b, 3 days ahead", ahead(3 * DAY));
    sync_ahead(&mut b, 3 * DAY);

    for round in 0..2 {
        let report = sync_ahead(&mut c, 0);
        assert_eq!(c.get(b"a"), Some(&b"from a, 1.5 days ahead"[..]));
        assert_eq!(c.get(b"b"), Some(&b"from b, 3 days ahead"[..]));
        let apart = clocks_apart(&report);
        assert!(
            matches!(apart[..], [(B, ms)] if ms > 2 * DAY && ms <= 3 * DAY),
            "round {round}: {:?}",
            report.errors
        );
        let message = report.errors[0].to_string();
        assert!(
            message.starts_with(&format!("m/{B} is stamped 2.9 days ahead"))
                || message.starts_with(&format!("m/{B} is stamped 3.0 days ahead")),
            "{message}"
        );
        assert!(
            message.contains("more than the 2.0 days two clocks"),
            "{message}"
        );
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    }
    // a and b are 1.5 days apart: neither reports the other.
    for (engine, offset) in [(&mut a, 3 * DAY / 2), (&mut b, 3 * DAY)] {
        let report = sync_ahead(engine, offset);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }
}

#[test]
fn a_device_whose_clock_ran_ahead_and_came_back_starts_over_and_keeps_its_writes() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut a = engine(dir.path(), &key, A);
    let mut b = engine(dir.path(), &key, B);
    // A's date is set a year ahead by mistake: what it writes then is held by everyone.
    a.put("written-ahead", "a", ahead(YEAR));
    sync_ahead(&mut a, YEAR);
    let report = sync_ahead(&mut b, 0);
    assert_eq!(clock_errors(&report).len(), 1, "{:?}", report.errors);
    assert_eq!(b.get(b"written-ahead"), None);

    // The date is fixed. A's next sync starts over under a new id with a clock of now, and
    // writes again what only its runaway clock had stamped.
    a.put("written-after", "a", wall_clock());
    let report = sync_ahead(&mut a, 0);
    assert_eq!(report.started_over, Some(A), "{report:?}");
    assert_ne!(a.device(), A);
    assert!(a.clock().wall_ms <= wall_clock().0 + DAY, "{:?}", a.clock());
    let mut restamped = report.restamped.clone();
    restamped.sort();
    assert_eq!(
        restamped,
        [b"written-after".to_vec(), b"written-ahead".to_vec()]
    );
    assert_eq!(
        clock_devices(&report),
        [A],
        "the report says why: {:?}",
        report.errors
    );

    // B now has both, and no more clock errors: the old id is retired.
    let report = sync_ahead(&mut b, 0);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(b.get(b"written-ahead"), Some(&b"a"[..]));
    assert_eq!(b.get(b"written-after"), Some(&b"a"[..]));
    let report = sync_ahead(&mut b, 0);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[test]
fn what_a_clock_that_came_back_writes_again_lands_above_what_it_wrote_before_it_ran_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut a = engine(dir.path(), &key, A);
    let mut b = engine(dir.path(), &key, B);
    // A's clock is two days fast (within the bound): its first version reaches B.
    a.put("note", "first", ahead(2 * DAY));
    sync_ahead(&mut a, 2 * DAY);
    sync_ahead(&mut b, 0);
    assert_eq!(b.get(b"note"), Some(&b"first"[..]));

    // Then its date jumps a year ahead: the second version is held by B.
    a.put("note", "second", ahead(YEAR));
    sync_ahead(&mut a, YEAR);
    sync_ahead(&mut b, 0);
    assert_eq!(b.get(b"note"), Some(&b"first"[..]));

    // The date is set right, now two days behind where it was before the jump. A starts over
    // (again: a year's jump had made it look silent for too long, so it started over while
    // ahead too) and writes the second version again: above the first one, or B would keep
    // the first.
    let report = sync_ahead(&mut a, 0);
    let former = report.started_over.expect("started over");
    assert!(a.was_device(former) && a.was_device(A), "{report:?}");
    assert_eq!(report.restamped, [b"note".to_vec()]);
    sync_ahead(&mut b, 0);
    assert_eq!(b.get(b"note"), Some(&b"second"[..]));
    assert_eq!(a.get(b"note"), Some(&b"second"[..]));
}

/// The vault in `tests/fixtures/clock-ahead`: device A, whose date was set to 2106, wrote
/// `from-2106` = `held`. The bindings' tests read it too (its recovery code is beside it).
const FIXTURE_KEY: [u8; 32] = [0x55; 32];
/// 2106-02-07: past 32-bit seconds, as a wrong date might be.
const FAR_AHEAD: u64 = 4_294_967_296_000;

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clock-ahead")
}

/// `cargo test --test clocks -- --ignored` writes the fixture again.
#[test]
#[ignore]
fn write_the_clock_ahead_fixture() {
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bucket")).unwrap();
    let key = VaultKey::from_bytes(FIXTURE_KEY);
    let mut a = engine(&dir.join("bucket"), &key, A);
    a.put("from-2106", "held", Timestamp(FAR_AHEAD));
    sync_ahead(&mut a, FAR_AHEAD - wall_clock().0);
    std::fs::write(dir.join("recovery-code.txt"), key.recovery_code() + "\n").unwrap();
}

#[test]
fn the_clock_ahead_fixture_is_held() {
    let dir = tempfile::tempdir().unwrap();
    for entry in walk(&fixture_dir().join("bucket")) {
        let to = dir.path().join(entry.strip_prefix(fixture_dir()).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, to).unwrap();
    }
    let code = std::fs::read_to_string(fixture_dir().join("recovery-code.txt")).unwrap();
    let key = VaultKey::from_recovery_code(&code).unwrap();
    assert_eq!(key.vault_id(), VaultKey::from_bytes(FIXTURE_KEY).vault_id());
    let mut b = engine(&dir.path().join("bucket"), &key, B);
    let report = sync_ahead(&mut b, 0);
    assert_eq!(
        clock_errors(&report),
        [(A, format!("m/{A}"))],
        "{:?}",
        report.errors
    );
    assert_eq!(b.get(b"from-2106"), None);
    // Once the present gets there (within the bound), it is merged; 6 days ahead is still
    // further than two clocks may be apart, and said so.
    let report = sync_ahead(&mut b, FAR_AHEAD - wall_clock().0 - 6 * DAY);
    assert!(clock_errors(&report).is_empty(), "{:?}", report.errors);
    assert_eq!(clocks_apart(&report).len(), 1, "{:?}", report.errors);
    assert_eq!(clocks_apart(&report)[0].0, A);
    assert_eq!(b.get(b"from-2106"), Some(&b"held"[..]));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
