//! Polls of the change hint and the background sync, on the local-folder bucket.
//!
//! The schedule's rules are unit-tested on a made-up clock in `core/src/schedule.rs`; here the
//! loop runs for real (short intervals), against a transport that counts what it sends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bucketsync::auto_sync::{AutoSyncOptions, Event};
use bucketsync::driver::{SyncKind, Transport};
use bucketsync::folder::FolderBucket;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::{
    DeviceId, Engine, Happening, Request, RequestKind, Response, Result, SchedulePolicy,
    ScheduleState, VaultKey,
};
use bucketsync_suite::{block_sync, entropy, folder_store, wall_clock};

/// The folder bucket, counting requests by kind, and refusing all while `offline`.
#[derive(Clone, Default)]
struct Counting {
    sent: Arc<Mutex<Vec<RequestKind>>>,
    offline: Arc<AtomicBool>,
}

impl Counting {
    fn take(&self) -> Vec<RequestKind> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

impl Transport for Counting {
    async fn send(&self, request: Request) -> Result<Response> {
        if self.offline.load(Ordering::SeqCst) {
            return Err(bucketsync::Error::Transport {
                category: bucketsync::Category::Network,
                message: "offline (test)".into(),
            });
        }
        self.sent.lock().unwrap().push(request.kind);
        FolderBucket.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        FolderBucket.sleep(ms).await
    }
}

fn poll(engine: &mut Engine, list_anyway: bool) -> bucketsync::SyncReport {
    futures::executor::block_on(bucketsync::driver::poll(
        engine,
        &FolderBucket,
        wall_clock,
        list_anyway,
    ))
    .expect("poll")
}

#[test]
fn an_idle_poll_is_one_conditional_get_and_a_publish_moves_the_hint() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_store(dir.path());
    let key = VaultKey::generate().unwrap();
    let mut a = Engine::new(&key, store.clone(), DeviceId([1; 16]), entropy());
    let mut b = Engine::new(&key, store.clone(), DeviceId([2; 16]), entropy());
    a.put("k", "1", wall_clock());
    let pushed = block_sync(&mut a, &FolderBucket).unwrap();
    assert_eq!(pushed.requests_of(RequestKind::PutHint), 1, "{pushed}");
    assert!(dir.path().join(format!("{}h", folder(&a))).exists());

    // B's first poll has no ETag yet: it reads the hint and lists.
    let first = poll(&mut b, false);
    assert!(!first.hint_unchanged);
    assert_eq!(first.requests_of(RequestKind::GetHint), 1);
    assert_eq!(first.requests_of(RequestKind::List), 1);
    assert_eq!(b.get(b"k"), Some(&b"1"[..]));

    // Nothing published since: one GET, answered 304, and nothing else.
    let idle = poll(&mut b, false);
    assert!(idle.hint_unchanged, "{idle}");
    assert_eq!(idle.requests(), 1, "{idle}");
    assert!(idle.changed.is_empty());

    // A publishes: the hint moves, and B's next poll lists and pulls.
    a.put("k", "2", wall_clock());
    block_sync(&mut a, &FolderBucket).unwrap();
    let moved = poll(&mut b, false);
    assert!(!moved.hint_unchanged);
    assert_eq!(moved.changed, vec![b"k".to_vec()], "{moved}");
    assert_eq!(b.get(b"k"), Some(&b"2"[..]));

    // B's own write: its poll goes on to push whatever the hint says.
    b.put("mine", "x", wall_clock());
    let push = poll(&mut b, false);
    assert_eq!(push.pushed, 1, "{push}");
    assert_eq!(push.requests_of(RequestKind::PutHint), 1);
    // Its own PUT moved the hint: one more listing, then quiet again.
    assert!(!poll(&mut b, false).hint_unchanged);
    assert!(poll(&mut b, false).hint_unchanged);
    // `list_anyway` lists even when the hint is quiet.
    let forced = poll(&mut b, true);
    assert!(!forced.hint_unchanged);
    assert_eq!(forced.requests_of(RequestKind::List), 1);
}

fn folder(engine: &Engine) -> String {
    format!("{}/", engine.vault_id())
}

#[test]
fn a_deleted_or_frozen_hint_only_delays_until_a_listing() {
    let dir = tempfile::tempdir().unwrap();
    let store = folder_store(dir.path());
    let key = VaultKey::generate().unwrap();
    let mut a = Engine::new(&key, store.clone(), DeviceId([1; 16]), entropy());
    let mut b = Engine::new(&key, store.clone(), DeviceId([2; 16]), entropy());
    a.put("k", "1", wall_clock());
    block_sync(&mut a, &FolderBucket).unwrap();
    poll(&mut b, false);
    assert!(poll(&mut b, false).hint_unchanged);
    let hint = dir.path().join(format!("{}h", folder(&a)));

    // Deleted: the poll lists (and writes a new hint), and the next polls are quiet again.
    std::fs::remove_file(&hint).unwrap();
    let gone = poll(&mut b, false);
    assert!(!gone.hint_unchanged);
    assert_eq!(gone.requests_of(RequestKind::PutHint), 1, "{gone}");
    assert!(hint.exists());
    poll(&mut b, false);
    assert!(poll(&mut b, false).hint_unchanged);

    // Frozen: someone puts the old hint back after A's publish. B's polls see nothing...
    let frozen = std::fs::read(&hint).unwrap();
    a.put("k", "2", wall_clock());
    block_sync(&mut a, &FolderBucket).unwrap();
    std::fs::write(&hint, &frozen).unwrap();
    assert!(poll(&mut b, false).hint_unchanged);
    assert_eq!(b.get(b"k"), Some(&b"1"[..]), "delayed");
    // ... until the full sync the schedule asks for anyway: nothing is lost.
    let full = poll(&mut b, true);
    assert_eq!(full.changed, vec![b"k".to_vec()]);
    assert_eq!(b.get(b"k"), Some(&b"2"[..]));
}

fn open(dir: &std::path::Path, state: &std::path::Path, key: &VaultKey, name: &str) -> Session {
    let url = format!("file://{}", dir.display());
    let mut options = SessionOptions::new(
        &url,
        key,
        StateLocation::File {
            path: state,
            wait: false,
        },
    );
    options.device = Some(name);
    Session::open(options).unwrap()
}

/// Events as they came, shared with the loop's listener.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Event>>>);

impl Seen {
    fn listener(&self) -> impl FnMut(Event) + Send + 'static {
        let seen = self.0.clone();
        move |event| seen.lock().unwrap().push(event)
    }

    fn wait_for(&self, what: &str, timeout: Duration, found: impl Fn(&[Event]) -> bool) {
        let start = Instant::now();
        while !found(&self.0.lock().unwrap()) {
            assert!(
                start.elapsed() < timeout,
                "no {what} within {timeout:?}: {:?}",
                self.0.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Every key of the `Changed` events among `events`.
fn changed_in(events: &[Event]) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Changed(keys) => Some(keys.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn fast_policy(interval_ms: u64) -> AutoSyncOptions {
    AutoSyncOptions {
        policy: SchedulePolicy {
            interval_ms,
            background_interval_ms: interval_ms * 10,
            debounce_ms: 50,
            max_debounce_ms: 200,
            full_sync_interval_ms: 60 * 60 * 1000,
            ..SchedulePolicy::default()
        },
        ..AutoSyncOptions::default()
    }
}

/// Runs `session`'s background sync on a thread of its own, as a binding does.
fn start(
    session: &Arc<Session>,
    transport: &Counting,
    options: AutoSyncOptions,
    seen: &Seen,
) -> std::thread::JoinHandle<Result<()>> {
    let session = session.clone();
    let transport = transport.clone();
    let listener = seen.listener();
    std::thread::spawn(move || {
        futures::executor::block_on(session.auto_sync(&transport, options, listener))
    })
}

#[test]
fn a_background_sync_announces_a_peers_change_and_stays_cheap_while_idle() {
    let bucket = tempfile::tempdir().unwrap();
    let states = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let a = open(bucket.path(), &states.path().join("a"), &key, "a");
    let b = Arc::new(open(bucket.path(), &states.path().join("b"), &key, "b"));
    a.put("hello", "world").unwrap();
    futures::executor::block_on(a.sync(&FolderBucket, 4, |_| {})).unwrap();

    let transport = Counting::default();
    let seen = Seen::default();
    let interval = 200;
    let running = start(&b, &transport, fast_policy(interval), &seen);
    seen.wait_for("first change", Duration::from_secs(10), |events| {
        events
            .iter()
            .any(|e| matches!(e, Event::Changed(k) if k == &[b"hello".to_vec()]))
    });
    assert!(
        futures::executor::block_on(b.auto_sync(&transport, fast_policy(interval), |_| {}))
            .is_err_and(|e| e.category() == bucketsync::Category::Conflict),
        "one background sync per vault"
    );

    // A peer's put reaches B as an event naming the key, with no call to sync.
    a.put("note", "from a").unwrap();
    futures::executor::block_on(a.sync(&FolderBucket, 4, |_| {})).unwrap();
    let pushed_at = Instant::now();
    // About an interval; the bound is generous, so a loaded machine does not fail it.
    seen.wait_for("change of note", Duration::from_secs(30), |events| {
        changed_in(events).contains(&b"note".to_vec())
    });
    assert_eq!(b.get(b"note").unwrap(), Some(b"from a".to_vec()));
    eprintln!("push on A to event on B: {:?}", pushed_at.elapsed());

    // Idle: one conditional GET of the hint per interval, nothing else.
    std::thread::sleep(Duration::from_millis(interval * 2));
    transport.take();
    let window = Duration::from_millis(interval * 10);
    std::thread::sleep(window);
    let idle = transport.take();
    assert!(
        idle.iter().all(|k| *k == RequestKind::GetHint),
        "an idle device only polls: {idle:?}"
    );
    // At most one poll per interval (the point); at least one, however loaded the machine.
    assert!(
        (1..=11).contains(&idle.len()),
        "about one poll per interval over 10 intervals: {}",
        idle.len()
    );

    // B's own write is pushed soon after it, with no call to sync.
    b.put("from-b", "1").unwrap();
    let waited = Instant::now();
    while a.get(b"from-b").unwrap().is_none() {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "B's write never pushed"
        );
        futures::executor::block_on(a.sync(&FolderBucket, 4, |_| {})).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }

    // Stopped: the loop ends and sends nothing more.
    b.stop_auto_sync();
    running.join().unwrap().unwrap();
    transport.take();
    std::thread::sleep(Duration::from_millis(interval * 3));
    assert!(transport.take().is_empty(), "requests after stop");
    let states: Vec<_> = seen
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::State(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert!(states.contains(&ScheduleState::Syncing) && states.contains(&ScheduleState::Idle));
}

#[test]
fn offline_pauses_the_background_sync_and_back_online_resumes_it() {
    let bucket = tempfile::tempdir().unwrap();
    let states = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let a = open(bucket.path(), &states.path().join("a"), &key, "a");
    let b = Arc::new(open(bucket.path(), &states.path().join("b"), &key, "b"));
    let transport = Counting::default();
    let seen = Seen::default();
    let interval = 100;
    let running = start(&b, &transport, fast_policy(interval), &seen);
    seen.wait_for("idle", Duration::from_secs(10), |events| {
        events.contains(&Event::State(ScheduleState::Idle))
    });

    // The network fails: the sync reports it, and backs off.
    transport.offline.store(true, Ordering::SeqCst);
    seen.wait_for("a network error", Duration::from_secs(10), |events| {
        events.contains(&Event::State(ScheduleState::Error(
            bucketsync::Category::Network,
        )))
    });
    // The app says it is offline: no sync until it is back.
    b.notify(Happening::NetworkLost);
    seen.wait_for("offline", Duration::from_secs(10), |events| {
        events.contains(&Event::State(ScheduleState::Offline))
    });
    transport.offline.store(false, Ordering::SeqCst);
    a.put("while-offline", "1").unwrap();
    futures::executor::block_on(a.sync(&FolderBucket, 4, |_| {})).unwrap();
    transport.take();
    std::thread::sleep(Duration::from_millis(interval * 5));
    assert!(transport.take().is_empty(), "no request while offline");
    assert_eq!(b.get(b"while-offline").unwrap(), None);

    b.notify(Happening::NetworkBack);
    seen.wait_for(
        "the change after coming back",
        Duration::from_secs(10),
        |events| changed_in(events).contains(&b"while-offline".to_vec()),
    );
    b.stop_auto_sync();
    running.join().unwrap().unwrap();
}

#[test]
fn a_listener_that_panics_breaks_nothing_and_close_stops_the_loop() {
    let bucket = tempfile::tempdir().unwrap();
    let states = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let a = open(bucket.path(), &states.path().join("a"), &key, "a");
    let b = Arc::new(open(bucket.path(), &states.path().join("b"), &key, "b"));
    let transport = Counting::default();
    let calls = Arc::new(Mutex::new(0u32));
    let counted = calls.clone();
    let b2 = b.clone();
    let t2 = transport.clone();
    let running = std::thread::spawn(move || {
        futures::executor::block_on(b2.auto_sync(&t2, fast_policy(100), move |_| {
            *counted.lock().unwrap() += 1;
            panic!("a listener that throws");
        }))
    });
    a.put("k", "v").unwrap();
    futures::executor::block_on(a.sync(&FolderBucket, 4, |_| {})).unwrap();
    let start = Instant::now();
    while b.get(b"k").unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "the loop died");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        *calls.lock().unwrap() > 1,
        "the listener was called again after panicking"
    );
    b.close().unwrap();
    running.join().unwrap().unwrap();
}

#[test]
fn sync_of_poll_through_a_session_is_one_request_when_quiet() {
    let bucket = tempfile::tempdir().unwrap();
    let states = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let a = open(bucket.path(), &states.path().join("a"), &key, "a");
    a.put("k", "v").unwrap();
    let poll = SyncKind::Poll { list_anyway: false };
    futures::executor::block_on(a.sync_of(&FolderBucket, poll, 4, |_| {})).unwrap();
    futures::executor::block_on(a.sync_of(&FolderBucket, poll, 4, |_| {})).unwrap();
    let quiet = futures::executor::block_on(a.sync_of(&FolderBucket, poll, 4, |_| {})).unwrap();
    assert!(quiet.hint_unchanged, "{quiet}");
    assert_eq!(quiet.requests(), 1);
}

#[test]
fn a_stop_before_the_loop_begins_still_stops_it() {
    let bucket = tempfile::tempdir().unwrap();
    let states = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let a = Arc::new(open(bucket.path(), &states.path().join("a"), &key, "a"));
    for _ in 0..20 {
        // As a binding starts one: registered now, run later on another thread.
        let run = a.prepare_auto_sync().unwrap();
        assert!(
            a.prepare_auto_sync()
                .is_err_and(|e| e.category() == bucketsync::Category::Conflict),
            "one at a time"
        );
        a.stop_auto_sync();
        let session = a.clone();
        let thread = std::thread::spawn(move || {
            futures::executor::block_on(session.run_auto_sync(
                run,
                &FolderBucket,
                fast_policy(10_000),
                |_| {},
            ))
        });
        thread.join().unwrap().unwrap();
    }
    // Dropping a prepared run unregisters it.
    drop(a.prepare_auto_sync().unwrap());
    drop(a.prepare_auto_sync().unwrap());
}

/// A listener stopping the sync from inside, as apps do on their first `Changed`, and then
/// taking its time: it hears nothing more, the thread counts as running until the loop has
/// ended, and a start the moment it no longer counts succeeds (it failed with `Conflict` while the stop let go of the
/// thread at once, which a busy CI machine showed through the Kotlin/Swift binding's test).
#[test]
fn a_loop_stopped_from_its_own_listener_counts_as_running_until_it_has_ended() {
    use bucketsync::auto_sync_thread::AutoSyncThread;
    use std::sync::Weak;

    let bucket = tempfile::tempdir().unwrap();
    let states = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let a = Arc::new(open(bucket.path(), &states.path().join("a"), &key, "a"));
    let thread = Arc::new(AutoSyncThread::default());
    for round in 0..3 {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (me, session): (Weak<AutoSyncThread>, Weak<Session>) =
            (Arc::downgrade(&thread), Arc::downgrade(&a));
        let counted = calls.clone();
        let on_event = move |_: Event| {
            counted.fetch_add(1, Ordering::SeqCst);
            if let (Some(me), Some(session)) = (me.upgrade(), session.upgrade()) {
                me.stop(&session);
                // From its own thread the stop does not wait, and the loop is still here.
                assert!(me.is_running());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        thread
            .start(&a, Arc::new(FolderBucket), fast_policy(10_000), on_event)
            .unwrap_or_else(|e| panic!("start {round}: {e}"));
        assert!(
            thread
                .start(&a, Arc::new(FolderBucket), fast_policy(10_000), |_| {})
                .is_err_and(|e| e.category() == bucketsync::Category::Conflict),
            "one at a time"
        );
        let start = Instant::now();
        while thread.is_running() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the loop never ended"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Nothing more after the stop, though the sync it interrupted may have run on.
        assert_eq!(calls.load(Ordering::SeqCst), 1, "round {round}");
    }
    // From another thread a stop waits for the end.
    thread
        .start(&a, Arc::new(FolderBucket), fast_policy(10_000), |_| {})
        .unwrap();
    thread.stop(&a);
    assert!(!thread.is_running());
    a.prepare_auto_sync().expect("nothing left registered");
}

#[test]
fn timings_in_seconds_become_a_policy_or_an_error_naming_the_setting() {
    use bucketsync::auto_sync::AutoSyncSeconds;
    let names = [
        "interval",
        "debounce",
        "full_sync_interval",
        "background_interval",
    ];
    let seconds = AutoSyncSeconds {
        interval: 2.5,
        debounce: 30.0,
        full_sync_interval: 600.0,
        background_interval: 0.0001,
    };
    let options = AutoSyncOptions::from_seconds(seconds, names).unwrap();
    assert_eq!(options.policy.interval_ms, 2_500);
    assert_eq!(options.policy.debounce_ms, 30_000);
    // A debounce longer than the default's longest wait lengthens that too.
    assert_eq!(options.policy.max_debounce_ms, 30_000);
    assert_eq!(options.policy.full_sync_interval_ms, 600_000);
    assert_eq!(
        options.policy.background_interval_ms, 1,
        "at least a millisecond"
    );
    for (bad, named) in [
        (0.0, "not 0"),
        (-1.0, "not negative"),
        (f64::NAN, "not NaN"),
        (f64::INFINITY, "not infinite"),
    ] {
        let wrong = AutoSyncOptions::from_seconds(
            AutoSyncSeconds {
                full_sync_interval: bad,
                ..seconds
            },
            names,
        )
        .unwrap_err();
        assert_eq!(wrong.category(), bucketsync::Category::Config);
        assert!(wrong.to_string().contains("full_sync_interval"), "{wrong}");
        assert!(wrong.to_string().ends_with(named), "{wrong}");
    }
}
