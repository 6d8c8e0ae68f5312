//! Pack collection: a device deletes its packs that no file references any more, a grace
//! period after every device merged that, and never one another device's file still shares.
//! On the local-folder bucket with a clock that jumps days, then on SeaweedFS and s3s-fs with
//! a grace period of seconds.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bucketsync::driver::{Transport, DEFAULT_CONCURRENCY};
use bucketsync::folder::FolderBucket;
use bucketsync::grant::Role;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::{CompactionPolicy, OpenMode, RequestKind, SyncReport, Timestamp, VaultKey};
use bucketsync_suite::generated::{Compare, Generated};
use bucketsync_suite::servers::{http, ServerKind, TestServer};
use futures::executor::block_on;

const MIB: u64 = 1 << 20;
const DAY: u64 = 86_400_000;

/// A wall clock the test moves.
#[derive(Clone)]
struct Clock(Arc<AtomicU64>);

impl Clock {
    fn at(ms: u64) -> Self {
        Clock(Arc::new(AtomicU64::new(ms)))
    }

    fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Device "a" with its state in the file `state`, default policy.
    fn open_file_state(&self, store: &str, key: &VaultKey, state: &Path) -> Session {
        let now = self.0.clone();
        Session::open(SessionOptions {
            device: Some("a"),
            clock: Arc::new(move || Timestamp(now.load(Ordering::SeqCst))),
            ..SessionOptions::new(
                store,
                key,
                StateLocation::File {
                    path: state,
                    wait: false,
                },
            )
        })
        .unwrap()
    }

    fn open(&self, store: &str, key: &VaultKey, device: &str, policy: CompactionPolicy) -> Session {
        let now = self.0.clone();
        Session::open(SessionOptions {
            device: Some(device),
            mode: OpenMode::JoinOrCreate,
            compaction: policy,
            credentials: Some(TestServer::credentials()),
            clock: Arc::new(move || Timestamp(now.load(Ordering::SeqCst))),
            ..SessionOptions::new(store, key, StateLocation::Memory)
        })
        .unwrap()
    }
}

async fn sync<T: Transport>(session: &Session, t: &T) -> SyncReport {
    let report = session.sync(t, DEFAULT_CONCURRENCY, |_| {}).await.unwrap();
    assert!(report.errors.is_empty(), "{report}: {:?}", report.errors);
    report
}

async fn put<T: Transport>(session: &Session, t: &T, key: &str, seed: u64, len: u64) -> u64 {
    let mut source = Generated::new(seed, len);
    let report = session
        .put_file(key, &mut source, t, None, DEFAULT_CONCURRENCY, |_| {})
        .await
        .unwrap();
    report.packs
}

async fn read_back<T: Transport>(session: &Session, t: &T, key: &str, seed: u64, len: u64) {
    let mut sink = Compare::new(Generated::new(seed, len));
    let found = session
        .get_file(key.as_bytes(), &mut sink, t, DEFAULT_CONCURRENCY, |_| {})
        .await
        .unwrap();
    assert!(found, "{key} is there");
    sink.assert_whole(len);
}

/// The packs of `device` in a folder bucket.
fn folder_packs(bucket: &Path, key: &VaultKey, session: &Session) -> BTreeSet<String> {
    let dir = bucket
        .join(key.vault_id().to_string())
        .join("p")
        .join(session.device().unwrap().to_string());
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// a stores two files; b stores a copy of the second (it references a's chunks, sending
/// nothing); a deletes both. Only the first file's packs go, and not before the grace period
/// has passed; b's copy still reads whole. Once b deletes its copy, the rest goes too.
#[test]
fn packs_no_file_needs_are_deleted_after_the_grace_period_and_shared_ones_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = format!("file://{}", bucket.display());
    let key = VaultKey::generate().unwrap();
    let clock = Clock::at(1_767_225_600_000);
    // A checkpoint at every sync that has a new segment; 30 days of grace, a day of skew.
    let policy = CompactionPolicy {
        min_tail_segments: 1,
        max_tail_segments: 1,
        ..CompactionPolicy::default()
    };
    let a = clock.open(&store, &key, "a", policy);
    let b = clock.open(&store, &key, "b", policy);
    let t = FolderBucket;
    let len = 3 * MIB + 77;
    block_on(async {
        sync(&a, &t).await;
        sync(&b, &t).await;
        assert!(put(&a, &t, "doomed", 1, len).await > 0);
        let doomed = folder_packs(&bucket, &key, &a);
        assert!(put(&a, &t, "shared", 2, len).await > 0);
        let all = folder_packs(&bucket, &key, &a);
        let shared: BTreeSet<String> = all.difference(&doomed).cloned().collect();
        assert!(!doomed.is_empty() && !shared.is_empty());
        sync(&a, &t).await;
        sync(&b, &t).await;
        // The same bytes from b: every chunk is a's already.
        assert_eq!(put(&b, &t, "copy", 2, len).await, 0);
        assert!(folder_packs(&bucket, &key, &b).is_empty());
        sync(&b, &t).await;
        sync(&a, &t).await;

        a.delete("doomed").unwrap();
        a.delete("shared").unwrap();
        sync(&a, &t).await;
        sync(&b, &t).await;
        let mut deleted_on = Vec::new();
        let mut listings = 0;
        for day in 1..=90 {
            clock.advance(DAY);
            let report = sync(&a, &t).await;
            listings += report.requests_of(RequestKind::ListPacks);
            if report.packs_deleted > 0 {
                deleted_on.push((day, report.packs_deleted));
            }
            sync(&b, &t).await;
        }
        // Deleted in one sync, at least the grace period plus twice the skew after the
        // deletion, and only the packs no file references.
        assert_eq!(deleted_on.len(), 1, "{deleted_on:?}");
        let (day, count) = deleted_on[0];
        assert!(day >= 32, "deleted on day {day}");
        assert_eq!(count, doomed.len() as u64);
        assert_eq!(folder_packs(&bucket, &key, &a), shared);
        // About one listing of the packs per grace period, not one per sync.
        assert!(
            listings <= 4,
            "{listings} listings of the packs in 90 syncs"
        );
        read_back(&b, &t, "copy", 2, len).await;
        let fresh = clock.open(&store, &key, "fresh", policy);
        sync(&fresh, &t).await;
        read_back(&fresh, &t, "copy", 2, len).await;
        assert_eq!(
            fresh.read(|e| e.file_info(b"doomed")).unwrap().unwrap(),
            None
        );

        // b deletes its copy: a's last packs go as well, once a's history no longer holds the
        // copy (the grace period after its deletion) and a look after that is due.
        b.delete("copy").unwrap();
        sync(&b, &t).await;
        let mut deleted = 0;
        for _ in 0..150 {
            clock.advance(DAY);
            deleted += sync(&a, &t).await.packs_deleted;
            sync(&b, &t).await;
            sync(&fresh, &t).await;
        }
        assert_eq!(deleted, shared.len() as u64);
        assert!(folder_packs(&bucket, &key, &a).is_empty());
    });
}

/// A device retired before a new one joined does not hold collection up: the newcomer never
/// merged the retired device's segments one by one (it started from a checkpoint), yet its
/// manifest must still show it has merged as much as the looking device had.
#[test]
fn a_device_retired_before_another_joined_does_not_stall_collection() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = format!("file://{}", bucket.display());
    let key = VaultKey::generate().unwrap();
    let clock = Clock::at(1_767_225_600_000);
    let policy = CompactionPolicy {
        min_tail_segments: 1,
        max_tail_segments: 1,
        ..CompactionPolicy::default()
    };
    let a = clock.open(&store, &key, "a", policy);
    let old = clock.open(&store, &key, "old phone", policy);
    let t = FolderBucket;
    block_on(async {
        sync(&a, &t).await;
        for i in 0..3 {
            old.put(format!("from the old phone {i}"), "x").unwrap();
            sync(&old, &t).await;
        }
        sync(&a, &t).await;
        a.retire(old.device().unwrap()).unwrap();
        drop(old);
        sync(&a, &t).await;
        clock.advance(DAY);
        let new = clock.open(&store, &key, "new phone", policy);
        sync(&new, &t).await;
        assert!(put(&a, &t, "doomed", 1, 3 * MIB).await > 0);
        sync(&a, &t).await;
        sync(&new, &t).await;
        a.delete("doomed").unwrap();
        sync(&a, &t).await;
        sync(&new, &t).await;
        let mut deleted = 0;
        for _ in 0..70 {
            clock.advance(DAY);
            deleted += sync(&a, &t).await.packs_deleted;
            sync(&new, &t).await;
        }
        assert!(deleted > 0, "no pack collected in 70 days");
        assert!(folder_packs(&bucket, &key, &a).is_empty());
    });
}

/// A device that started over keeps collecting the packs of its former ids, one id at a time;
/// a former id with no pack left costs a listing, not a grace period of its own. Here two
/// former ids never stored a file: the packs of a file deleted under the current id go within
/// two grace periods, as they would with no former id (before, each empty former id added a
/// grace period to the round).
#[test]
fn former_ids_without_packs_do_not_slow_collection() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = format!("file://{}", bucket.display());
    let key = VaultKey::generate().unwrap();
    let clock = Clock::at(1_767_225_600_000);
    let policy = CompactionPolicy::default();
    let a = clock.open(&store, &key, "a", policy);
    let t = FolderBucket;
    block_on(async {
        a.put("note", "x").unwrap();
        sync(&a, &t).await;
        // Out of touch longer than the grace period, twice: two former ids, no pack under
        // either.
        for _ in 0..2 {
            clock.advance(40 * DAY);
            let report = sync(&a, &t).await;
            assert!(report.started_over.is_some(), "{report}");
        }
        assert!(put(&a, &t, "doomed", 1, 3 * MIB).await > 0);
        sync(&a, &t).await;
        a.delete("doomed").unwrap();
        sync(&a, &t).await;
        let mut deleted_on = None;
        for day in 1..=100 {
            clock.advance(DAY);
            let report = sync(&a, &t).await;
            if report.packs_deleted > 0 && deleted_on.is_none() {
                deleted_on = Some(day);
            }
        }
        let day = deleted_on.expect("no pack collected in 100 days");
        assert!(day <= 70, "collected on day {day}");
        assert!(folder_packs(&bucket, &key, &a).is_empty());
    });
}

/// Devices that never wrote (a merged count of 0) do not hold collection up either.
#[test]
fn devices_that_never_wrote_do_not_stall_collection() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = format!("file://{}", bucket.display());
    let key = VaultKey::generate().unwrap();
    let clock = Clock::at(1_767_225_600_000);
    let policy = CompactionPolicy::default();
    let a = clock.open(&store, &key, "a", policy);
    let quiet = clock.open(&store, &key, "quiet", policy);
    let reader = clock.open(&store, &key, "reader", policy);
    let t = FolderBucket;
    block_on(async {
        sync(&a, &t).await;
        sync(&quiet, &t).await;
        sync(&reader, &t).await;
        assert!(put(&a, &t, "doomed", 1, 3 * MIB).await > 0);
        sync(&a, &t).await;
        a.delete("doomed").unwrap();
        sync(&a, &t).await;
        let mut deleted = 0;
        for _ in 0..70 {
            clock.advance(DAY);
            sync(&quiet, &t).await;
            sync(&reader, &t).await;
            deleted += sync(&a, &t).await.packs_deleted;
        }
        assert!(deleted > 0, "no pack collected in 70 days");
        assert!(folder_packs(&bucket, &key, &a).is_empty());
    });
}

/// A replica whose records are not files never lists packs.
#[test]
fn a_vault_without_files_never_lists_packs() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let clock = Clock::at(1_767_225_600_000);
    let a = clock.open(&store, &key, "a", CompactionPolicy::default());
    block_on(async {
        for day in 0..100 {
            a.put(format!("note {day}"), "text").unwrap();
            let report = sync(&a, &FolderBucket).await;
            assert_eq!(report.requests_of(RequestKind::ListPacks), 0, "{report}");
            clock.advance(DAY);
        }
    });
}

/// The same on SeaweedFS and s3s-fs, with four seconds of grace and no skew: the real LIST
/// and DELETE of packs, signed.
#[tokio::test]
async fn packs_are_collected_on_s3() {
    let policy = CompactionPolicy {
        grace_ms: 4_000,
        max_clock_skew_ms: 0,
        ..CompactionPolicy::default()
    };
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("packgc").await;
        let store = server.store_url("packgc", "v/");
        let key = VaultKey::generate().unwrap();
        let clock = Clock::at(bucketsync_suite::wall_clock().0);
        let a = clock.open(&store, &key, "a", policy);
        let b = clock.open(&store, &key, "b", policy);
        let t = http();
        let len = 2 * MIB + 5;
        put(&a, &t, "doomed", 3, len).await;
        put(&a, &t, "kept", 4, len).await;
        sync(&a, &t).await;
        sync(&b, &t).await;
        let packs_prefix = format!("v/{}/p/{}/", key.vault_id(), a.device().unwrap());
        let s3 = server.store("packgc", "");
        let before = server.list_all(&s3, &packs_prefix).await;
        a.delete("doomed").unwrap();
        sync(&a, &t).await;
        let mut deleted = 0;
        // A bound on syncs, not on seconds: the devices' clock moves half a second per round
        // (well within the grace period, so nobody starts over) until the packs go.
        for _ in 0..60 {
            clock.advance(500);
            deleted += sync(&a, &t).await.packs_deleted;
            sync(&b, &t).await;
            if deleted > 0 {
                break;
            }
        }
        let after = server.list_all(&s3, &packs_prefix).await;
        assert!(deleted > 0, "{kind:?}: nothing deleted");
        assert_eq!(
            after.len() as u64 + deleted,
            before.len() as u64,
            "{kind:?}"
        );
        read_back(&b, &t, "kept", 4, len).await;
        read_back(&a, &t, "kept", 4, len).await;
    }
}

/// The look survives a restart, through the journal and then the snapshot: a reopened replica
/// does not list its packs again before the look is due.
#[test]
fn the_look_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let state = dir.path().join("a.state");
    let t = FolderBucket;
    let open = || {
        Session::open(SessionOptions {
            device: Some("a"),
            ..SessionOptions::new(
                &store,
                &key,
                StateLocation::File {
                    path: &state,
                    wait: false,
                },
            )
        })
        .unwrap()
    };
    block_on(async {
        let a = open();
        put(&a, &t, "file", 61, 2 * MIB).await;
        let report = sync(&a, &t).await;
        assert_eq!(report.requests_of(RequestKind::ListPacks), 1, "{report}");
        drop(a);
        for _ in 0..2 {
            // First from the journal, then from the snapshot written at the reopening.
            let a = open();
            let report = sync(&a, &t).await;
            assert_eq!(report.requests_of(RequestKind::ListPacks), 0, "{report}");
            drop(a);
        }
    });
}

/// The redirects of `device` in a folder bucket.
fn folder_redirects(bucket: &Path, key: &VaultKey, session: &Session) -> BTreeSet<String> {
    let dir = bucket
        .join(key.vault_id().to_string())
        .join("r")
        .join(session.device().unwrap().to_string());
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Bytes of `device`'s packs in a folder bucket.
fn folder_pack_bytes(bucket: &Path, key: &VaultKey, session: &Session) -> u64 {
    let dir = bucket
        .join(key.vault_id().to_string())
        .join("p")
        .join(session.device().unwrap().to_string());
    std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().metadata().unwrap().len()).sum())
        .unwrap_or(0)
}

/// a stores a 12 MiB file and its first 3 MiB as a second file (which references the big
/// file's first chunks, sending nothing for them), then deletes the big one. Its packs are
/// then mostly garbage: a moves the live chunks into a new pack and writes redirects, and the
/// old packs go a grace period later. b, whose records still name the old packs, and a new
/// device read the small file whole; the packs shrink to about the live bytes.
#[test]
fn mostly_garbage_packs_are_repacked_and_readers_follow_the_redirects() {
    with_a_shared_chunk(|| repack_and_follow(false));
}

/// The same in a shared vault under a later key generation (as after a revocation): the files
/// are sealed under it, and so are the repacked pack's index and the redirects; a replica
/// without that generation reads none of them.
#[test]
fn packs_of_a_later_key_generation_are_repacked_under_it() {
    with_a_shared_chunk(|| repack_and_follow(true));
}

/// Runs `scenario` with new vault keys until it ran whole. Chunking is keyed: under about one
/// key in forty the big file's first cut lies past the small file's end, the two share no
/// chunk, and there is nothing to repack (every old pack is all garbage and simply deleted).
fn with_a_shared_chunk(mut scenario: impl FnMut() -> bool) {
    assert!(
        (0..6).any(|_| scenario()),
        "six vault keys in a row gave a small file that shares no chunk with the big one"
    );
}

/// The scenario of the two tests above; `false` when the key made the small file share no
/// chunk with the big one (the scenario needs one), before anything is asserted.
fn repack_and_follow(later_generation: bool) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = format!("file://{}", bucket.display());
    let clock = Clock::at(1_767_225_600_000);
    let policy = CompactionPolicy {
        min_tail_segments: 1,
        max_tail_segments: 1,
        repack_live_percent: 60,
        ..CompactionPolicy::default()
    };
    // A shared vault made in Alice's home, which she shares with Bob and revokes him from at
    // once: her devices write under key generation 1 from the first sync.
    let alice = clock.open(&store, &VaultKey::generate().unwrap(), "alice", policy);
    let shared = later_generation.then(|| alice.create_shared(&store, "scans").unwrap());
    let key = shared
        .as_ref()
        .map_or_else(|| VaultKey::generate().unwrap(), |s| s.key().clone());
    let open = |device: &str| {
        let session = clock.open(&store, &key, device, policy);
        if let Some(shared) = &shared {
            session.enter_shared(&alice, shared).unwrap();
        }
        session
    };
    let a = open("a");
    let b = open("b");
    let t = FolderBucket;
    let (big, small) = (24 * MIB, 3 * MIB);
    block_on(async {
        if later_generation {
            let bob = clock.open(&store, &VaultKey::generate().unwrap(), "bob", policy);
            let bob = bob.identity().unwrap();
            a.share(&alice, &bob.public().to_string(), Role::Write, &t)
                .await
                .unwrap();
            a.revoke(&bob.fingerprint().to_string()).unwrap();
        }
        sync(&a, &t).await;
        sync(&b, &t).await;
        assert!(put(&a, &t, "big", 1, big).await > 0);
        let old_packs = folder_packs(&bucket, &key, &a);
        let mut source = Generated::new(1, small);
        let prefix = a
            .put_file("prefix", &mut source, &t, None, DEFAULT_CONCURRENCY, |_| {})
            .await
            .unwrap();
        if prefix.chunks_reused == 0 {
            return false;
        }
        sync(&a, &t).await;
        sync(&b, &t).await;
        read_back(&b, &t, "prefix", 1, small).await;

        a.delete("big").unwrap();
        sync(&a, &t).await;
        sync(&b, &t).await;
        let (mut repacked, mut deleted) = (0, 0);
        for _ in 0..150 {
            clock.advance(DAY);
            let report = sync(&a, &t).await;
            repacked += report.packs_repacked;
            deleted += report.packs_deleted;
            sync(&b, &t).await;
        }
        assert!(repacked > 0, "nothing repacked in 150 days");
        assert_eq!(folder_redirects(&bucket, &key, &a).len() as u64, repacked);
        // Every pack of the big file went: emptied ones, and repacked ones after their move.
        let now = folder_packs(&bucket, &key, &a);
        assert!(now.is_disjoint(&old_packs), "{now:?} {old_packs:?}");
        assert!(deleted >= old_packs.len() as u64);
        // What is left is about what the small file needs.
        let left = folder_pack_bytes(&bucket, &key, &a);
        assert!(
            left < small + MIB,
            "{left} bytes of packs for a {small}-byte file"
        );

        // b's records name the old packs: it reads through the redirects.
        read_back(&b, &t, "prefix", 1, small).await;
        read_back(&a, &t, "prefix", 1, small).await;
        let fresh = open("fresh");
        sync(&fresh, &t).await;
        read_back(&fresh, &t, "prefix", 1, small).await;
        if later_generation {
            // Sealed under generation 1: a replica without it refuses the file, and read as
            // generation 0 (layout 04 naming generation 0) it is corrupt: the old packs are
            // gone, and their redirects do not open under generation 0.
            let value = a.get(b"prefix").unwrap().unwrap();
            assert_eq!(&value[..9], b"BKSF\x04\0\0\0\x01");
            let without = clock.open(&store, &key, "without", policy);
            let mut as_old = b"BKSF\x04\0\0\0\0".to_vec();
            as_old.extend_from_slice(&value[9..]);
            without.put("prefix", value).unwrap();
            without.put("as generation 0", as_old).unwrap();
            let mut sink = Compare::new(Generated::new(1, small));
            let e = without
                .get_file(b"prefix", &mut sink, &t, DEFAULT_CONCURRENCY, |_| {})
                .await
                .unwrap_err();
            assert_eq!(e.category(), bucketsync::Category::Access, "{e}");
            let e = without
                .get_file(
                    b"as generation 0",
                    &mut sink,
                    &t,
                    DEFAULT_CONCURRENCY,
                    |_| {},
                )
                .await
                .unwrap_err();
            assert_eq!(e.category(), bucketsync::Category::Corrupt, "{e}");
        }
        // A copy stored now references the chunks where they are now, and reads back.
        assert_eq!(put(&b, &t, "copy", 1, small).await, 0);
        sync(&b, &t).await;
        sync(&fresh, &t).await;
        read_back(&fresh, &t, "copy", 1, small).await;
        true
    })
}

/// Repacking on SeaweedFS and s3s-fs, with four seconds of grace: the pack sizes come from the
/// real listing, the live chunks from ranged GETs, and a reader whose records name the old
/// packs follows the redirects once they are gone.
#[tokio::test]
async fn packs_are_repacked_on_s3() {
    let policy = CompactionPolicy {
        grace_ms: 4_000,
        max_clock_skew_ms: 0,
        repack_live_percent: 60,
        ..CompactionPolicy::default()
    };
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("repack").await;
        let store = server.store_url("repack", "v/");
        let t = http();
        let (big, small) = (24 * MIB, 3 * MIB);
        let s3 = server.store("repack", "");
        // Chunking is keyed: under about one key in forty the small file shares no chunk with
        // the big one, and there is nothing to repack (the old packs are all garbage and simply
        // deleted). Such a key is set aside for another, each vault in its own folder.
        let mut keys_tried = 0;
        let (key, clock, a, b, packs_prefix, old) = loop {
            keys_tried += 1;
            assert!(
                keys_tried <= 6,
                "six keys gave a small file sharing no chunk"
            );
            let key = VaultKey::generate().unwrap();
            let clock = Clock::at(bucketsync_suite::wall_clock().0);
            let a = clock.open(&store, &key, "a", policy);
            let b = clock.open(&store, &key, "b", policy);
            put(&a, &t, "big", 5, big).await;
            let packs_prefix = format!("v/{}/p/{}/", key.vault_id(), a.device().unwrap());
            let old: BTreeSet<String> = server
                .list_all(&s3, &packs_prefix)
                .await
                .into_iter()
                .collect();
            let mut source = Generated::new(5, small);
            let prefix = a
                .put_file("prefix", &mut source, &t, None, DEFAULT_CONCURRENCY, |_| {})
                .await
                .unwrap();
            if prefix.chunks_reused > 0 {
                break (key, clock, a, b, packs_prefix, old);
            }
        };
        sync(&a, &t).await;
        sync(&b, &t).await;
        a.delete("big").unwrap();
        sync(&a, &t).await;
        let (mut repacked, mut gone) = (0, false);
        // A bound on syncs, not on seconds: the devices' clock (not the wall's) moves half a
        // second per round, so grace periods and heartbeats pass however loaded the machine
        // is (requests are signed at the store's time whatever this clock says).
        let mut rounds = 0;
        // What a's syncs did, for the message if nothing is repacked.
        let mut reports_of_a = Vec::new();
        for _ in 0..120 {
            rounds += 1;
            clock.advance(500);
            let report = sync(&a, &t).await;
            repacked += report.packs_repacked;
            if reports_of_a.len() < 40 {
                reports_of_a.push(format!(
                    "{report} (packs deleted {}, repacked {})",
                    report.packs_deleted, report.packs_repacked
                ));
            }
            sync(&b, &t).await;
            let now: BTreeSet<String> = server
                .list_all(&s3, &packs_prefix)
                .await
                .into_iter()
                .collect();
            if repacked > 0 && now.is_disjoint(&old) {
                gone = true;
                break;
            }
        }
        assert!(
            repacked > 0,
            "{kind:?}: nothing repacked in {rounds} rounds; a's first syncs:\n{}",
            reports_of_a.join("\n")
        );
        assert!(
            gone,
            "{kind:?}: the old packs are still there after {rounds} rounds"
        );
        println!("{kind:?}: repacked and collected in {rounds} rounds");
        let redirects = format!("v/{}/r/{}/", key.vault_id(), a.device().unwrap());
        assert_eq!(
            server.list_all(&s3, &redirects).await.len() as u64,
            repacked,
            "{kind:?}"
        );
        read_back(&b, &t, "prefix", 5, small).await;
        let fresh = clock.open(&store, &key, "fresh", policy);
        sync(&fresh, &t).await;
        read_back(&fresh, &t, "prefix", 5, small).await;
    }
}

/// `len` bytes of text-like content (numbered lines of words picked by a hash): deflates to
/// about a third, and cuts into varied chunks.
fn text(len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "pack", "chunk", "vault", "record", "device", "bucket", "seal", "index", "redirect",
        "manifest", "segment", "key", "value", "file", "sync", "grace",
    ];
    let mut out = Vec::with_capacity(len + 200);
    let mut line = 0u64;
    while out.len() < len {
        let mut h = line.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        out.extend_from_slice(format!("{line:08}:").as_bytes());
        for _ in 0..10 {
            h = h.rotate_left(5) ^ 0x2545_F491_4F6C_DD1D;
            h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
            out.push(b' ');
            out.extend_from_slice(WORDS[(h >> 60) as usize].as_bytes());
        }
        out.push(b'\n');
        line += 1;
    }
    out.truncate(len);
    out
}

/// Repacking moves deflated chunks (version 10, shorter sealed than their length) byte for
/// byte, and the new pack's index keeps their version: a reader that names the old packs, and
/// a fresh one, read the file back.
#[test]
fn deflated_chunks_are_repacked_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = format!("file://{}", bucket.display());
    let clock = Clock::at(1_767_225_600_000);
    let policy = CompactionPolicy {
        min_tail_segments: 1,
        max_tail_segments: 1,
        repack_live_percent: 60,
        ..CompactionPolicy::default()
    };
    let key = VaultKey::generate().unwrap();
    let a = clock.open(&store, &key, "a", policy);
    let b = clock.open(&store, &key, "b", policy);
    let t = FolderBucket;
    let big = text(24 << 20);
    let small = big[..3 << 20].to_vec();
    let put_bytes = |session: &Session, name: &str, bytes: &[u8]| {
        let mut source = bucketsync::files::ReadSource::new(bytes, Some(bytes.len() as u64));
        block_on(session.put_file(name, &mut source, &t, None, DEFAULT_CONCURRENCY, |_| {}))
            .unwrap()
    };
    let read_bytes = |session: &Session, name: &str| {
        let mut sink = bucketsync::files::WriteSink(Vec::new());
        let found =
            block_on(session.get_file(name.as_bytes(), &mut sink, &t, DEFAULT_CONCURRENCY, |_| {}))
                .unwrap();
        assert!(found, "{name}");
        sink.0
    };
    block_on(sync(&a, &t));
    block_on(sync(&b, &t));
    let stored = put_bytes(&a, "big", &big);
    assert!(stored.bytes_sent < big.len() as u64 / 2, "{stored:?}");
    let old_packs = folder_packs(&bucket, &key, &a);
    let prefix = put_bytes(&a, "prefix", &small);
    assert!(prefix.chunks_reused > 0, "{prefix:?}");
    block_on(sync(&a, &t));
    block_on(sync(&b, &t));
    a.delete("big").unwrap();
    block_on(sync(&a, &t));
    block_on(sync(&b, &t));
    let mut repacked = 0;
    for _ in 0..150 {
        clock.advance(DAY);
        repacked += block_on(sync(&a, &t)).packs_repacked;
        block_on(sync(&b, &t));
    }
    assert!(repacked > 0, "nothing repacked in 150 days");
    let now = folder_packs(&bucket, &key, &a);
    assert!(now.is_disjoint(&old_packs), "{now:?} {old_packs:?}");
    // The new pack's index envelope (its version byte after the magic) says version 10.
    let dir = bucket
        .join(key.vault_id().to_string())
        .join("p")
        .join(a.device().unwrap().to_string());
    for pack in &now {
        let bytes = std::fs::read(dir.join(pack)).unwrap();
        let index_len = u32::from_be_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
        let index = &bytes[bytes.len() - 4 - index_len as usize..];
        assert_eq!((&index[..4], index[4]), (&b"BKSY"[..], 10), "{pack}");
    }
    // b's records name the old packs: it reads through the redirects; so does a fresh replica.
    assert!(read_bytes(&b, "prefix") == small);
    let fresh = clock.open(&store, &key, "fresh", policy);
    block_on(sync(&fresh, &t));
    assert!(read_bytes(&fresh, "prefix") == small);
    // A copy stored now references the moved chunks (no pack sent) and reads back.
    let copy = put_bytes(&b, "copy", &small);
    assert_eq!(copy.packs, 0, "{copy:?}");
    block_on(sync(&b, &t));
    block_on(sync(&fresh, &t));
    assert!(read_bytes(&fresh, "copy") == small);
}

/// A transport whose pack DELETEs are held back to land later, when the test says: the process
/// is killed (its sync cancelled where it stands) as soon as the first one is on its way.
struct DeletesHeld<'t, T> {
    inner: &'t T,
    held: std::sync::Mutex<Vec<bucketsync::Request>>,
    kill: bucketsync::cancel::Cancel,
}

impl<T: Transport> Transport for DeletesHeld<'_, T> {
    async fn send(&self, request: bucketsync::Request) -> bucketsync::Result<bucketsync::Response> {
        if request.method == bucketsync::Method::Delete && request.url.contains("/p/") {
            self.held.lock().unwrap().push(request);
            self.kill.cancel();
            return std::future::pending().await;
        }
        self.inner.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        self.inner.sleep(ms).await;
    }
}

/// A file is deleted and its packs' collection is due: their DELETEs are sent, and the process
/// dies before they are answered. The next process stores a file of the same bytes; the late
/// DELETEs then land. The new file must not have been made of the doomed packs' chunks: it
/// reads back whole, from packs of its own.
#[test]
fn a_restart_never_reuses_chunks_of_packs_whose_deletes_are_on_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = format!("file://{}", bucket.display());
    let key = VaultKey::generate().unwrap();
    let state = dir.path().join("a.state");
    let clock = Clock::at(1_767_225_600_000);
    let open = || clock.open_file_state(&store, &key, &state);
    let t = FolderBucket;
    let held = DeletesHeld {
        inner: &t,
        held: Default::default(),
        kill: Default::default(),
    };
    let len = 3 * MIB + 77;
    block_on(async {
        let a = open();
        assert!(put(&a, &t, "doomed", 1, len).await > 0);
        let doomed = folder_packs(&bucket, &key, &a);
        sync(&a, &t).await;
        a.delete("doomed").unwrap();
        sync(&a, &t).await;
        for _ in 0..90 {
            clock.advance(DAY);
            let synced = held
                .kill
                .run(a.sync(&held, DEFAULT_CONCURRENCY, |_| {}))
                .await;
            if held.kill.is_cancelled() {
                break;
            }
            assert!(synced.unwrap().errors.is_empty());
        }
        let late = std::mem::take(&mut *held.held.lock().unwrap());
        assert!(!late.is_empty(), "the doomed packs' DELETEs were sent");
        drop(a);

        // The next process: the same bytes again.
        let a = open();
        put(&a, &t, "again", 1, len).await;
        sync(&a, &t).await;
        for request in late {
            let response = t.send(request).await.unwrap();
            assert!(
                response.status < 300,
                "the late DELETE landed: {}",
                response.status
            );
        }
        assert!(folder_packs(&bucket, &key, &a).is_disjoint(&doomed));
        read_back(&a, &t, "again", 1, len).await;
        let fresh = clock.open(&store, &key, "fresh", CompactionPolicy::default());
        sync(&fresh, &t).await;
        read_back(&fresh, &t, "again", 1, len).await;
    });
}

/// A state restored from a backup (a phone restored, a VM snapshot) taken while a file was
/// live, after that file was deleted and its packs collected: the restored state still lists
/// the file, and an upload of the same bytes must not reference the chunks of packs that are
/// gone.
#[test]
fn a_state_restored_from_a_backup_never_reuses_chunks_of_packs_collected_since() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = format!("file://{}", bucket.display());
    let key = VaultKey::generate().unwrap();
    let states = dir.path().join("states");
    let backup = dir.path().join("backup");
    std::fs::create_dir_all(&states).unwrap();
    let state = states.join("a.state");
    let clock = Clock::at(1_767_225_600_000);
    let open = || clock.open_file_state(&store, &key, &state);
    let copy_dir = |from: &Path, to: &Path| {
        let _ = std::fs::remove_dir_all(to);
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    };
    let t = FolderBucket;
    let len = 3 * MIB + 77;
    block_on(async {
        let a = open();
        assert!(put(&a, &t, "doomed", 1, len).await > 0);
        sync(&a, &t).await;
        let doomed = folder_packs(&bucket, &key, &a);
        drop(a);
        copy_dir(&states, &backup);

        let a = open();
        a.delete("doomed").unwrap();
        sync(&a, &t).await;
        for _ in 0..90 {
            clock.advance(DAY);
            sync(&a, &t).await;
        }
        assert!(
            folder_packs(&bucket, &key, &a).is_disjoint(&doomed),
            "the packs were collected"
        );
        drop(a);

        // The backup comes back, and the same bytes are stored again before any sync.
        copy_dir(&backup, &states);
        let a = open();
        put(&a, &t, "again", 1, len).await;
        let report = a.sync(&t, DEFAULT_CONCURRENCY, |_| {}).await.unwrap();
        assert!(
            report
                .errors
                .iter()
                .all(|e| e.category() != bucketsync::Category::Corrupt),
            "{report}"
        );
        read_back(&a, &t, "again", 1, len).await;
        let fresh = clock.open(&store, &key, "fresh", CompactionPolicy::default());
        sync(&fresh, &t).await;
        read_back(&fresh, &t, "again", 1, len).await;
    });
}
