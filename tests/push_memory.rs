//! What a push holds: a segment is held at most twice while it is sealed, saved and sent (issue 54:
//! it was held about five times over: plaintext, deflated, sealed, signed, the pending copy).
//!
//! A counting allocator keeps the bytes live in the whole process and the most there were
//! while the engine worked (the store's own work, here the local-folder bucket writing the
//! object, is left out: another process on a real store). The peak over what was live before
//! the sync is compared with the segment's size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bucketsync::driver::Transport;
use bucketsync::folder::FolderBucket;
use bucketsync::session::{Durability, Session, SessionOptions, StateLocation};
use bucketsync::{
    CompactionPolicy, DeviceId, Engine, OpenMode, Request, RequestKind, Response, Result,
    SyncReport, VaultKey,
};
use bucketsync_suite::generated::Generated;
use bucketsync_suite::{block_sync, entropy, folder_store, wall_clock};

// ---- The counting allocator ----

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// While above 0, the peak is not raised (requests at the store).
static STORE_AT_WORK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::SeqCst) + size;
    if STORE_AT_WORK.load(Ordering::SeqCst) == 0 {
        PEAK.fetch_max(live, Ordering::SeqCst);
    }
}

// SAFETY: every call is passed on unchanged to the system allocator; counting neither
// allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller's guarantees for `layout` are the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as the new block taken before the old one is given back, as a move does.
        grew(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The tests of this file measure the whole process: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The local-folder bucket, its work left out of the peak.
struct Uncounted(FolderBucket);

impl Transport for Uncounted {
    async fn send(&self, request: Request) -> Result<Response> {
        let _at_work = AtWork::start();
        self.0.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        self.0.sleep(ms).await;
    }
}

/// One request at the store, until dropped (also when its future is).
struct AtWork;

impl AtWork {
    fn start() -> AtWork {
        STORE_AT_WORK.fetch_add(1, Ordering::SeqCst);
        AtWork
    }
}

impl Drop for AtWork {
    fn drop(&mut self) {
        STORE_AT_WORK.fetch_sub(1, Ordering::SeqCst);
    }
}

const VALUE_LEN: usize = 24 << 20;

/// Runs `f`, and returns what it returned with the most bytes live meanwhile over what was
/// live before it (the store's work left out).
fn peak_over<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let out = f();
    let peak = PEAK.load(Ordering::SeqCst) - before;
    eprintln!("peak over what was live before: {peak} bytes");
    (out, peak)
}

/// One sync of `engine` on the local-folder bucket, the store's work not counted.
fn sync_engine(engine: &mut Engine) -> SyncReport {
    futures::executor::block_on(bucketsync::driver::sync(
        engine,
        &Uncounted(FolderBucket),
        wall_clock,
        bucketsync::driver::DEFAULT_CONCURRENCY,
    ))
    .unwrap()
}

/// One sync of `session` on the local-folder bucket, the store's work not counted.
fn sync_session(session: &Session) -> SyncReport {
    futures::executor::block_on(session.sync(
        &Uncounted(FolderBucket),
        bucketsync::driver::DEFAULT_CONCURRENCY,
        |_| {},
    ))
    .unwrap()
}

/// Pushes one record of `value` from a new device, and returns the most bytes the sync held
/// over what was live before it, and the size of the segment it stored.
fn peak_of_a_push(value: Vec<u8>) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut engine = Engine::new(&key, folder_store(dir.path()), DeviceId([7; 16]), entropy());
    engine.put("big", value, wall_clock());
    let (report, peak) = peak_over(|| sync_engine(&mut engine));
    assert_eq!(report.pushed, 1, "{report}");
    let segment = bucketsync_suite::bucket_files(dir.path())
        .into_iter()
        .find(|(name, _)| name.contains("/s/"))
        .map(|(_, bytes)| bytes.len())
        .expect("the segment is in the bucket");
    // And it reads back.
    let mut other = Engine::new(&key, folder_store(dir.path()), DeviceId([8; 16]), entropy());
    block_sync(&mut other, &FolderBucket).unwrap();
    assert_eq!(other.get(b"big").map(<[u8]>::len), Some(VALUE_LEN));
    (peak, segment)
}

#[test]
fn a_segment_that_does_not_deflate_is_held_once_while_pushed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (peak, segment) = peak_of_a_push(Generated::new(1, VALUE_LEN as u64).to_vec());
    assert!(segment > VALUE_LEN, "stored as it is: {segment}");
    assert!(peak >= segment, "the count missed the segment: {peak}");
    // Once, and the few small objects of a sync (a listing, a manifest).
    assert!(
        peak <= segment + segment / 10,
        "the push held {peak} bytes over what was live before it, {:.2} times its segment of {segment}",
        peak as f64 / segment as f64
    );
}

/// Through a session with its state in a file, as every binding opens a vault: the pending
/// segment also goes into the journal, sealed where it is written (it was copied three times on
/// its way there), and a state whose journal outgrew its snapshot is written out whole: the
/// record and the pending segment in one buffer, beside the pending segment itself. So the
/// segment is held twice, and the record once more while the snapshot is written (it was five
/// times the record in all).
#[test]
fn a_sessions_push_holds_its_segment_at_most_twice_and_the_snapshot_the_record_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let state = StateLocation::File {
        path: &dir.path().join("laptop.state"),
        wait: false,
    };
    let session = Session::open(SessionOptions::new(&store, &key, state)).unwrap();
    session
        .put("big", Generated::new(2, VALUE_LEN as u64).to_vec())
        .unwrap();
    let (report, peak) = peak_over(|| sync_session(&session));
    assert_eq!(report.pushed, 1, "{report}");
    assert!(peak >= VALUE_LEN, "the count missed the segment: {peak}");
    assert!(
        peak <= 3 * VALUE_LEN + VALUE_LEN / 10,
        "the session's push held {peak} bytes over what was live before it, {:.2} times the record of {VALUE_LEN}",
        peak as f64 / VALUE_LEN as f64
    );
}

#[test]
fn a_segment_that_deflates_is_held_with_its_deflated_copy_and_no_more() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Text-like: deflates to about a third.
    let words = [
        "alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta ", "eta ",
    ];
    let mut value = Vec::with_capacity(VALUE_LEN);
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    while value.len() < VALUE_LEN {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        value.extend_from_slice(words[(x % 7) as usize].as_bytes());
    }
    value.truncate(VALUE_LEN);
    let (peak, segment) = peak_of_a_push(value);
    eprintln!("segment: {segment} bytes");
    assert!(segment < VALUE_LEN / 2, "deflated: {segment}");
    assert!(peak >= VALUE_LEN, "the count missed the plaintext: {peak}");
    // The plaintext and its deflated copy are held together for a moment (and the deflaters'
    // working memory), no more.
    assert!(
        peak <= VALUE_LEN + segment + VALUE_LEN / 10,
        "the push held {peak} bytes over what was live before it, {:.2} times the record of {VALUE_LEN}",
        peak as f64 / VALUE_LEN as f64
    );
}

/// A checkpoint is built from the replica's records straight into its envelope's buffer,
/// sized once, and sealed there: the vault is held once more while it is written (it was the
/// plaintext, in a buffer grown as it was written, and the sealed copy).
#[test]
fn a_checkpoint_holds_the_vault_once_more_while_it_is_written() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let mut engine = Engine::new(&key, folder_store(dir.path()), DeviceId([9; 16]), entropy());
    engine.set_compaction(CompactionPolicy::NEVER);
    let records = 240;
    let value_len = 100 << 10;
    for i in 0..records {
        let value = Generated::new(100 + i, value_len as u64).to_vec();
        engine.put(format!("record {i:03}"), value, wall_clock());
    }
    block_sync(&mut engine, &FolderBucket).unwrap();
    engine.set_compaction(CompactionPolicy {
        min_tail_segments: 1,
        max_tail_segments: 1,
        ..CompactionPolicy::default()
    });
    let (report, peak) = peak_over(|| sync_engine(&mut engine));
    assert_eq!(
        report.requests_of(RequestKind::PutCheckpoint),
        1,
        "{report}"
    );
    let checkpoint = bucketsync_suite::bucket_files(dir.path())
        .into_iter()
        .find(|(name, _)| name.contains("/c/"))
        .map(|(_, bytes)| bytes.len())
        .expect("the checkpoint is in the bucket");
    let vault = records as usize * value_len;
    assert!(checkpoint > vault, "stored as it is: {checkpoint}");
    assert!(
        peak >= checkpoint,
        "the count missed the checkpoint: {peak}"
    );
    // Once, and the few small objects of a sync.
    assert!(
        peak <= checkpoint + checkpoint / 10,
        "writing the checkpoint held {peak} bytes over what was live before it, {:.2} times the checkpoint of {checkpoint}",
        peak as f64 / checkpoint as f64
    );
    // And it reads back.
    let mut other = Engine::new(&key, folder_store(dir.path()), DeviceId([8; 16]), entropy());
    let report = block_sync(&mut other, &FolderBucket).unwrap();
    assert_eq!(
        report.requests_of(RequestKind::GetCheckpoint),
        1,
        "{report}"
    );
    assert_eq!(other.keys(b"").len(), records as usize);
}

/// In a shared vault every segment is signed, and the signed object is a copy of the envelope
/// behind its prefix (the message the signature covers, another copy, is dropped before it is
/// made). The session's snapshot is never rewritten here: what the push holds at most is the
/// pending segment and its journal entry, twice the segment, as without signing.
#[test]
fn a_signed_segment_is_held_at_most_twice_too() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let bucket = |path: &str| format!("file://{}", dir.path().join(path).display());
    let key = VaultKey::generate().unwrap();
    let open = |store: &str, key: &VaultKey, state: &str, mode| {
        let path = dir.path().join(state);
        let mut options = SessionOptions::new(
            store,
            key,
            StateLocation::File {
                path: &path,
                wait: false,
            },
        );
        options.mode = mode;
        options.durability = Durability {
            compact_min_bytes: u64::MAX,
            ..Durability::default()
        };
        Session::open(options).unwrap()
    };
    let home = open(&bucket("home"), &key, "home.state", OpenMode::Create);
    let shared = home.create_shared(&bucket("shared"), "notes").unwrap();
    sync_session(&home);
    let notes = open(&shared.store, shared.key(), "notes.state", OpenMode::Create);
    notes.enter_shared(&home, &shared).unwrap();
    sync_session(&notes);
    notes
        .put("big", Generated::new(3, VALUE_LEN as u64).to_vec())
        .unwrap();
    let (report, peak) = peak_over(|| sync_session(&notes));
    assert_eq!(report.pushed, 1, "{report}");
    let signed = bucketsync_suite::bucket_files(&dir.path().join("shared"))
        .into_iter()
        .filter(|(name, _)| name.contains("/s/"))
        .map(|(_, bytes)| bytes)
        .max_by_key(Vec::len)
        .expect("the segment is in the bucket");
    assert!(signed.starts_with(b"BKSS"), "the segment is signed");
    assert!(peak >= signed.len(), "the count missed the segment: {peak}");
    // The pending segment and its journal entry.
    assert!(
        peak <= 2 * signed.len() + signed.len() / 10,
        "the signed push held {peak} bytes over what was live before it, {:.2} times its segment of {}",
        peak as f64 / signed.len() as f64,
        signed.len()
    );
}
