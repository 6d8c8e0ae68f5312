//! The session every binding opens a vault with: puts durable when they return, saves that cost
//! what changed, one writer per state, syncs that are safe to cancel or to panic in, and states
//! written by the previous release still open.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Context;

use bucketsync::driver::{Transport, DEFAULT_CONCURRENCY};
use bucketsync::folder::FolderBucket;
use bucketsync::session::{Durability, Session, SessionOptions, StateLocation};
use bucketsync::{Category, Request, RequestKind, Response, Result, VaultKey};
use futures::executor::block_on;

fn open(store: &str, key: &VaultKey, state: &Path) -> Result<Session> {
    open_with(store, key, state, Durability::default())
}

fn open_with(store: &str, key: &VaultKey, state: &Path, durability: Durability) -> Result<Session> {
    let state = StateLocation::File {
        path: state,
        wait: false,
    };
    Session::open(SessionOptions {
        durability,
        ..SessionOptions::new(store, key, state)
    })
}

fn store_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

fn sync(session: &Session) -> Result<bucketsync::SyncReport> {
    block_on(session.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {}))
}

/// A new device that pulls everything and returns its keys.
fn fresh_view(store: &str, key: &VaultKey) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let other = open(store, key, &dir.path().join("other.state")).unwrap();
    sync(&other).unwrap();
    other.keys(b"").unwrap()
}

#[test]
fn a_put_is_in_the_journal_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let state = dir.path().join("laptop.state");
    let session = open(&store, &key, &state).unwrap();
    let snapshot = std::fs::read(&state).unwrap();
    for i in 0..100 {
        session.put(format!("k{i}"), "v").unwrap();
    }
    session.delete("k7").unwrap();
    // A kill: no close, no save, no destructor that writes anything.
    std::mem::forget(session);
    assert_eq!(
        std::fs::read(&state).unwrap(),
        snapshot,
        "the snapshot was not rewritten"
    );

    // The lock died with the "process"? Not within one process: a forgotten File keeps it.
    // Release it the way the OS does at exit: by reading the files under another lock name.
    let copy = dir.path().join("restarted.state");
    std::fs::copy(&state, &copy).unwrap();
    std::fs::copy(
        dir.path().join("laptop.state.journal"),
        dir.path().join("restarted.state.journal"),
    )
    .unwrap();
    let restarted = open(&store, &key, &copy).unwrap();
    assert_eq!(restarted.keys(b"").unwrap().len(), 99);
    assert_eq!(restarted.read(|e| e.unpushed()).unwrap(), 100);
    sync(&restarted).unwrap();
    assert_eq!(fresh_view(&store, &key).len(), 99);
}

#[test]
fn saving_costs_what_changed_and_the_snapshot_is_rewritten_only_past_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let state = dir.path().join("s.state");
    let journal = dir.path().join("s.state.journal");
    let durability = Durability {
        flush_interval_ms: 0,
        compact_min_bytes: 64 << 10,
    };
    let session = open_with(&store, &key, &state, durability).unwrap();
    for i in 0..2_000 {
        session.put(format!("k{i:05}"), vec![b'x'; 100]).unwrap();
    }
    // Far more than 64 KiB went through the journal, so it was folded into a snapshot at least
    // once, and it is back under the bound now.
    let snapshot_len = std::fs::metadata(&state).unwrap().len();
    let journal_len = std::fs::metadata(&journal).unwrap().len();
    assert!(snapshot_len > 100_000, "snapshot {snapshot_len}");
    assert!(
        journal_len <= snapshot_len.max(64 << 10) + 1_000,
        "journal {journal_len}"
    );

    // One more write appends one entry; the snapshot stays as it is.
    let before = std::fs::read(&state).unwrap();
    session.put("one-more", "v").unwrap();
    let grown = std::fs::metadata(&journal).unwrap().len() - journal_len;
    assert!(
        grown < 300,
        "one small write costs one small entry: {grown} bytes"
    );
    assert_eq!(std::fs::read(&state).unwrap(), before);
    session.close().unwrap();
    let again = open(&store, &key, &state).unwrap();
    assert_eq!(again.keys(b"").unwrap().len(), 2_001);
}

#[test]
fn one_writer_per_state_and_the_second_opener_learns_who_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let state = dir.path().join("s.state");
    let first = open(&store, &key, &state).unwrap();
    let device = first.device().unwrap();
    let err = open(&store, &key, &state).unwrap_err();
    assert_eq!(err.category(), Category::Locked, "{err}");
    assert!(err.to_string().contains(&device.to_string()), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("process {}", std::process::id())),
        "{err}"
    );

    // A waiting opener gets the state once the holder closes.
    let waiter = {
        let (store, key, state) = (store.clone(), key.clone(), state.clone());
        std::thread::spawn(move || {
            let location = StateLocation::File {
                path: &state,
                wait: true,
            };
            Session::open(SessionOptions::new(&store, &key, location)).map(|s| s.device().unwrap())
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    first.put("k", "v").unwrap();
    first.close().unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), device);
    assert_eq!(
        first.put("k", "v").unwrap_err().category(),
        Category::Config,
        "closed"
    );
}

#[test]
fn snapshots_from_many_threads_at_once_do_not_collide() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let state = dir.path().join("s.state");
    let session = Arc::new(open(&store, &key, &state).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let session = session.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    session.put(format!("t{t}/{i}"), "v").unwrap();
                    session.snapshot().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    session.close().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(
        open(&store, &key, &state).unwrap().keys(b"").unwrap().len(),
        100
    );
}

/// Executes requests on the folder, but never answers the first request of `kind` (the store
/// has applied it): a sync stuck there until its future is dropped.
struct HangsOn {
    kind: RequestKind,
    hung: AtomicUsize,
}

impl Transport for HangsOn {
    async fn send(&self, request: Request) -> Result<Response> {
        let response = FolderBucket.execute(&request);
        if request.kind == self.kind && self.hung.fetch_add(1, Ordering::SeqCst) == 0 {
            std::future::pending::<()>().await;
        }
        Ok(response)
    }

    async fn sleep(&self, _ms: u64) {}
}

/// Polls `future` until it is stuck (pending with nothing left to do), then drops it.
fn poll_until_stuck<F: Future>(future: F) {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    for _ in 0..1_000 {
        if future.as_mut().poll(&mut cx).is_ready() {
            panic!("the sync was expected to hang");
        }
    }
}

#[test]
fn a_sync_dropped_mid_flight_leaves_the_vault_usable_and_loses_nothing() {
    for kind in [RequestKind::PutSegment, RequestKind::PutManifest] {
        let dir = tempfile::tempdir().unwrap();
        let store = store_url(&dir.path().join("bucket"));
        let key = VaultKey::generate().unwrap();
        let session = open(&store, &key, &dir.path().join("s.state")).unwrap();
        session.put("before", "1").unwrap();
        let transport = HangsOn {
            kind,
            hung: AtomicUsize::new(0),
        };
        poll_until_stuck(session.sync(&transport, DEFAULT_CONCURRENCY, |_| {}));
        // The cancelled coroutine is gone; the vault is not.
        session.put("after", "2").unwrap();
        let report = block_on(session.sync(&transport, DEFAULT_CONCURRENCY, |_| {}))
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(
            session.read(|e| e.unpushed()).unwrap(),
            0,
            "{kind:?}: {report}"
        );
        assert_eq!(
            fresh_view(&store, &key),
            vec![b"after".to_vec(), b"before".to_vec()],
            "{kind:?}"
        );
    }
}

#[test]
fn a_panic_inside_a_sync_leaves_the_vault_usable() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let session = open(&store, &key, &dir.path().join("s.state")).unwrap();
    session.put("k", "v").unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        block_on(session.sync(&FolderBucket, DEFAULT_CONCURRENCY, |p| {
            if p.requests_done == 1 {
                panic!("a callback panics");
            }
        }))
    }));
    assert!(panicked.is_err());
    assert!(!session.read(|e| e.is_syncing()).unwrap());
    let report = sync(&session).unwrap();
    assert_eq!(report.pushed, 1, "{report}");
    assert_eq!(fresh_view(&store, &key), vec![b"k".to_vec()]);
}

#[test]
fn a_sync_cancelled_by_the_host_stops_and_the_next_one_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(&dir.path().join("bucket"));
    let key = VaultKey::generate().unwrap();
    let session = open(&store, &key, &dir.path().join("s.state")).unwrap();
    session.put("k", "v").unwrap();
    let err = block_on(session.sync(&FolderBucket, 1, |p| {
        if p.requests_done == 1 {
            session.cancel_sync();
        }
    }))
    .unwrap_err();
    assert_eq!(err, bucketsync::Error::Cancelled);
    assert_eq!(sync(&session).unwrap().pushed, 1);
}

#[test]
fn a_state_written_by_the_previous_release_opens_and_syncs() {
    // tests/fixtures/state-v1.bin: state version 1, written by the release before the journal
    // (key 0x42 × 32, device 0a…0a): "pushed" and "from-b" in the store, "unpushed" and a
    // delete of "gone" not yet pushed.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("v1.state");
    std::fs::copy("tests/fixtures/state-v1.bin", &state).unwrap();
    let key = VaultKey::from_bytes([0x42; 32]);
    let store = store_url(&dir.path().join("bucket"));
    let session = open(&store, &key, &state).unwrap();
    assert_eq!(session.device().unwrap().to_string(), "0a".repeat(16));
    assert_eq!(
        session.keys(b"").unwrap(),
        vec![b"from-b".to_vec(), b"pushed".to_vec(), b"unpushed".to_vec()]
    );
    assert_eq!(session.get(b"gone").unwrap(), None);
    assert_eq!(session.read(|e| e.unpushed()).unwrap(), 2);
    assert_eq!(
        session.get(b"unpushed").unwrap().unwrap(),
        b"not yet in the store"
    );
    // Opening rewrote it as the current version, with a journal beside it.
    session.close().unwrap();
    let again = open(&store, &key, &state).unwrap();
    assert_eq!(again.keys(b"").unwrap().len(), 3);
}

/// A flush interval the app leaves out is the core's default; a bad one is named.
#[test]
fn the_flush_interval_an_app_gives_or_the_default() {
    use bucketsync::session::Durability;
    assert_eq!(
        Durability::with_flush_seconds(None, "flush_interval").unwrap(),
        Durability::default()
    );
    assert_eq!(
        Durability::with_flush_seconds(Some(2.5), "flush_interval")
            .unwrap()
            .flush_interval_ms,
        2_500
    );
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        let err = Durability::with_flush_seconds(Some(bad), "flushInterval").unwrap_err();
        assert!(err.to_string().contains("flushInterval"), "{err}");
    }
}
